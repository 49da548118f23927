#!/bin/sh
# redirect-301.cgi: client redirect with an explicit status and a body.
printf 'Status: 301 Moved Permanently\nLocation: http://example.com/moved\n'
printf 'Content-Type: text/plain\n\nmoved\n'
