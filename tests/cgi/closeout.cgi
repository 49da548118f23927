#!/bin/sh
# closeout.cgi: a whole response, then stdout closed while the script (and
# a child) keep running. Records "script-pid child-pid" in
# run/<QUERY_STRING>.pids before it answers.
d=$(dirname "$0")/run
sleep 1000 >/dev/null 2>&1 &
echo "$$ $!" > "$d/$QUERY_STRING.tmp"
mv "$d/$QUERY_STRING.tmp" "$d/$QUERY_STRING.pids"
printf 'Content-Type: text/plain\n\nall of it\n'
exec >&-
wait
