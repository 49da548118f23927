#!/usr/bin/python3
# hello.py: a Python CGI that hashes its body (CONTENT_LENGTH bytes).
import hashlib
import os
import sys

n = int(os.environ.get('CONTENT_LENGTH') or 0)
body = sys.stdin.buffer.read(n) if n else b''
sys.stdout.write('Content-Type: text/plain\n\n')
sys.stdout.write('hello from python: %s %s %s\n' % (os.environ['REQUEST_METHOD'],
                                                   os.environ['QUERY_STRING'],
                                                   hashlib.sha256(body).hexdigest()))
