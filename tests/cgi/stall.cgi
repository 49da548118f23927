#!/bin/sh
# stall.cgi: headers and a bit of body, then silence. Records its pid in
# run/<QUERY_STRING>.pids first.
d=$(dirname "$0")/run
echo "$$" > "$d/$QUERY_STRING.tmp"
mv "$d/$QUERY_STRING.tmp" "$d/$QUERY_STRING.pids"
printf 'Content-Type: text/plain\n\npartial-body\n'
exec sleep 1000
