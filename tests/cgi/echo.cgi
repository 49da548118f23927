#!/bin/sh
# echo.cgi: the request body back, byte for byte.
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec cat
