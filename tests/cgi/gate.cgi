#!/bin/sh
# gate.cgi?GROUP.TAG: marks run/GROUP.TAG.started, then holds its CGI slot
# until the test creates run/GROUP.release (gives up after about a minute).
d=$(dirname "$0")/run
group=${QUERY_STRING%%.*}
: > "$d/$QUERY_STRING.started"
n=0
while [ ! -e "$d/$group.release" ] && [ $n -lt 1200 ]; do
    sleep 0.05
    n=$((n + 1))
done
printf 'Content-Type: text/plain\n\ngate %s\n' "$QUERY_STRING"
