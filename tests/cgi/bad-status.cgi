#!/bin/sh
# bad-status.cgi: a Status line outside 100..599.
printf 'Status: 99 Bottles\nContent-Type: text/plain\n\nbody\n'
