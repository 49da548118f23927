#!/bin/sh
# hello.cgi: the demo site's CGI program (RFC 3875): headers, a blank line,
# then the body.
printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
cat <<HTML
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hello from CGI</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>Hello from a CGI program</h1>
<p>This page was written by <code>cgi-bin/hello.cgi</code>, a shell script that
portico ran for your request (pid $$, method $REQUEST_METHOD).</p>
<p><a href="/">back</a></p></body></html>
HTML
