#!/bin/sh
# endless.cgi: headers, then output that never ends. Records its pid in
# run/<QUERY_STRING>.pids first.
d=$(dirname "$0")/run
echo "$$" > "$d/$QUERY_STRING.tmp"
mv "$d/$QUERY_STRING.tmp" "$d/$QUERY_STRING.pids"
printf 'Content-Type: text/plain\n\n'
exec yes 'endless output from a broken script'
