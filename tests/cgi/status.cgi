#!/bin/sh
# status.cgi: RFC 3875 §6.3.3 Status header.
printf 'Status: 404 Not Found\nContent-Type: text/plain\n\nscript says not found\n'
