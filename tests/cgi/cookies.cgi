#!/bin/sh
# cookies.cgi: a repeated response header must arrive twice.
printf 'Content-Type: text/x-cookies\nSet-Cookie: a=1; Path=/\nSet-Cookie: b=2; Path=/\n\ncookies\n'
