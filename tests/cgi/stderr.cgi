#!/bin/sh
# stderr.cgi: two diagnostic lines on stderr, then a normal response.
echo "stderr-line-one $QUERY_STRING" >&2
echo "stderr-line-two $QUERY_STRING" >&2
printf 'Content-Type: text/plain\nX-Pid: %s\n\nbody ok\n' "$$"
