#!/bin/sh
# afterwork.cgi: a whole response, stdout closed, then a moment of work
# after it; records run/<QUERY_STRING>.done when that work is finished.
d=$(dirname "$0")/run
printf 'Content-Type: text/plain\n\nanswered\n'
exec >&-
sleep 1
: > "$d/$QUERY_STRING.tmp"
mv "$d/$QUERY_STRING.tmp" "$d/$QUERY_STRING.done"
