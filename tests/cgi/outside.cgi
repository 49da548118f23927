#!/bin/sh
# outside.cgi: staged OUTSIDE the CGI directory; must never run. If it does,
# it leaves a marker next to itself and says so.
: > "$(dirname "$0")/OUTSIDE-RAN"
printf 'Content-Type: text/plain\n\nOUTSIDE SCRIPT RAN\n'
