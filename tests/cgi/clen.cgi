#!/bin/sh
# clen.cgi: the script frames its own body (CRLF header lines).
printf 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'
