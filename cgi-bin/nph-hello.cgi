#!/bin/sh
# nph-hello.cgi: a portico sample "non-parsed header" CGI program: its name
# starts with nph-, so portico passes its output to the client verbatim and
# the script writes the status line itself (RFC 3875 §5).
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n'
printf 'hello from a non-parsed-header script\n'
