#!/bin/sh
# lf.cgi: header lines end in bare LF (RFC 3875 §6.2 lets scripts do this).
printf 'Content-Type: text/plain\nX-Line-End: lf\n\nlf body\n'
