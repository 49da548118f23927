#!/bin/sh
# quick.cgi: the smallest valid response.
printf 'Content-Type: text/plain\n\nok\n'
