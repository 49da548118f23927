#!/bin/sh
# bad-eof.cgi: output ends inside the header block.
printf 'Content-Type: text/plain\n'
