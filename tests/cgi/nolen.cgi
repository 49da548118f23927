#!/bin/sh
# nolen.cgi: no Content-Length (LF-only lines): the server chunks (HTTP/1.1)
# or closes (HTTP/1.0) to delimit the body.
printf 'Content-Type: text/plain\n\n'
i=0
while [ $i -lt 200 ]; do
    printf 'line %03d of the unframed body\n' $i
    i=$((i + 1))
done
