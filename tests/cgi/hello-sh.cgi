#!/bin/sh
# hello-sh.cgi: a POSIX shell CGI.
printf 'Content-Type: text/plain\n\nhello from sh: %s %s\n' "$REQUEST_METHOD" "$QUERY_STRING"
