#!/bin/sh
# hold.cgi?GROUP.TAG: writes the pid of the process that started it (the
# worker) to run/GROUP.TAG.started, then holds the request until the test
# creates run/GROUP.release (gives up after about a minute).
d=$(dirname "$0")/run
group=${QUERY_STRING%%.*}
echo "$PPID" > "$d/$QUERY_STRING.tmp"
mv "$d/$QUERY_STRING.tmp" "$d/$QUERY_STRING.started"
n=0
while [ ! -e "$d/$group.release" ] && [ $n -lt 1200 ]; do
    sleep 0.05
    n=$((n + 1))
done
printf 'Content-Type: text/plain\n\nhold %s\n' "$QUERY_STRING"
