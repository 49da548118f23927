#!/bin/sh
# bad-line.cgi: no header block at all: "hello", then a body.
printf 'hello\n\nbody\n'
