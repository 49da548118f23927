#!/bin/sh
# bad-noheader.cgi: an empty header block, then a body.
printf '\r\nbody without any header\n'
