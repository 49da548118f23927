#!/bin/sh
# redirect-local.cgi: local redirect (RFC 3875 §6.2.2) to a static file.
printf 'Location: /target.txt\n\n'
