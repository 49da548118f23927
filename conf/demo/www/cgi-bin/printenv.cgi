#!/bin/sh
# printenv.cgi: a portico sample CGI program (RFC 3875): shows the
# meta-variables the server passes, one per line, as plain text.
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n'
env | LC_ALL=C sort
