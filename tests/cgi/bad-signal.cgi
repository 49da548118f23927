#!/bin/sh
# bad-signal.cgi: killed by a signal before writing anything.
kill -KILL $$
