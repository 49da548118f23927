#!/bin/sh
# bad-empty.cgi: exits without writing anything.
exit 0
