#!/bin/sh
# redirect-abs.cgi: client redirect (RFC 3875 §6.2.3): 302 implied.
printf 'Location: http://example.com/\n\n'
