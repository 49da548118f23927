#!/bin/sh
# redirect-local-cgi.cgi: local redirect to another script, with a query.
printf 'Location: /cgi-bin/env.cgi/after?via=redirect\n\n'
