#!/bin/sh
# pid.cgi: answers with the pid of the process that started it (the worker).
printf 'Content-Type: text/plain\n\n%s\n' "$PPID"
