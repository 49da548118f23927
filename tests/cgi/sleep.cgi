#!/bin/sh
# sleep.cgi: never writes; a child sleeps too (the whole process group must
# be killed). Records "script-pid child-pid" in run/<QUERY_STRING>.pids.
d=$(dirname "$0")/run
sleep 1000 &
echo "$$ $!" > "$d/$QUERY_STRING.tmp"
mv "$d/$QUERY_STRING.tmp" "$d/$QUERY_STRING.pids"
wait
