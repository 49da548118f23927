#!/bin/sh
# bad-nul.cgi: a NUL byte inside a header value.
printf 'Content-Type: text/plain\nX-Bad: a\000b\n\nbody\n'
