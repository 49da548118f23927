#!/bin/sh
# upload.cgi: a portico sample CGI program: reads the request body
# (CONTENT_LENGTH bytes on stdin, also for chunked uploads, which portico
# collects first) and answers with its size and SHA-256.
# Try: curl --data-binary @file http://127.0.0.1:8080/cgi-bin/upload.cgi
len=${CONTENT_LENGTH:-0}
case $len in *[!0-9]*|'') len=0 ;; esac
sum=$(head -c "$len" | sha256sum | cut -d' ' -f1)
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
printf 'method: %s\nbytes: %s\nsha256: %s\n' "$REQUEST_METHOD" "$len" "$sum"
