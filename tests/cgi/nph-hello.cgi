#!/bin/sh
# nph-hello.cgi: non-parsed headers (RFC 3875 §5): the script speaks HTTP.
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Nph: verbatim\r\n\r\nnph body\n'
