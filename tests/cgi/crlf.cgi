#!/bin/sh
# crlf.cgi: header lines end in CRLF.
printf 'Content-Type: text/plain\r\nX-Line-End: crlf\r\n\r\ncrlf body\n'
