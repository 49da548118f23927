#!/bin/sh
# redirect-loop.cgi: local redirect to itself; counts its runs in run/.
echo run >> "$(dirname "$0")/run/loop.count"
printf 'Location: /cgi-bin/redirect-loop.cgi\n\n'
