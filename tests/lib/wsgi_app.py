"""wsgi_app.py: the small WSGI application t_scgi_uwsgi.py runs under uWSGI
(over the uwsgi protocol and over SCGI). Standard library only.

The query string chooses what it does (mode=...):
  env (default)  JSON: the CGI variables it was given, the body's length and
                 SHA-256 as read from wsgi.input, the worker's pid
  names          JSON: the names of every variable whose value is a string
  cookies        two Set-Cookie fields
  stream         a body of 3 parts without a length (a server frames it chunked)
  status         the status code= given (reason "Custom Reason")
  progress       reads the body 16 KiB at a time, writing the bytes read so
                 far to the file progress-NAME (name=NAME) of WSGI_TEST_DIR
                 after each read, after waiting for the file gate=NAME
                 there if given (a slow reader); then answers as env does
  sleep          waits until the file gate=NAME exists in WSGI_TEST_DIR
                 (20 s at most), counting requests in progress there
                 (active, max_active, started) to show a max_conns cap
"""

import fcntl
import hashlib
import json
import os
import time
import urllib.parse

VARS = ('REQUEST_METHOD', 'PATH_INFO', 'SCRIPT_NAME', 'QUERY_STRING', 'CONTENT_LENGTH',
        'CONTENT_TYPE', 'SERVER_PROTOCOL', 'REQUEST_URI', 'SERVER_NAME', 'SERVER_PORT',
        'REMOTE_ADDR', 'REMOTE_PORT', 'SCGI')


def _counters(change):
    """Apply change to the JSON counters of the test directory, under a lock."""
    path = os.path.join(os.environ['WSGI_TEST_DIR'], 'counters.json')
    with open(path + '.lock', 'a') as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                c = json.load(f)
        except (OSError, ValueError):
            c = {'active': 0, 'max_active': 0, 'started': 0}
        change(c)
        with open(path + '.tmp', 'w') as f:
            json.dump(c, f)
        os.rename(path + '.tmp', path)


def _enter(c):
    c['active'] += 1
    c['started'] += 1
    c['max_active'] = max(c['max_active'], c['active'])


def _leave(c):
    c['active'] -= 1


def application(environ, start_response):
    q = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
    mode = q.get('mode', ['env'])[0]
    if mode == 'cookies':
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Set-Cookie', 'a=1; Path=/'), ('Set-Cookie', 'b=2; Path=/')])
        return [b'two cookies\n']
    if mode == 'names':
        body = json.dumps(sorted(k for k, v in environ.items() if isinstance(v, str))).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    if mode == 'stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (b'part %d\n' % i for i in range(3))
    if mode == 'status':
        code = q.get('code', ['418'])[0]
        start_response(code + ' Custom Reason', [('Content-Type', 'text/plain')])
        return [b'status ' + code.encode() + b'\n']
    if mode == 'sleep':
        _counters(_enter)
        try:
            gate = os.path.join(os.environ['WSGI_TEST_DIR'], os.path.basename(q['gate'][0]))
            deadline = time.monotonic() + 20
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            _counters(_leave)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'slept\n']
    h = hashlib.sha256()
    n = 0
    inp = environ['wsgi.input']
    progress = None
    if mode == 'progress':
        tdir = os.environ['WSGI_TEST_DIR']
        progress = os.path.join(tdir, 'progress-' + os.path.basename(q['name'][0]))
        if 'gate' in q:
            gate = os.path.join(tdir, os.path.basename(q['gate'][0]))
            deadline = time.monotonic() + 60
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)
    while True:
        chunk = inp.read(16384 if progress else 65536)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
        if progress:
            with open(progress + '.tmp', 'w') as f:
                f.write(str(n))
            os.rename(progress + '.tmp', progress)
    out = {k: environ[k] for k in VARS if k in environ}
    out.update({k: v for k, v in environ.items() if k.startswith('HTTP_')})
    out['body_len'] = n
    out['body_sha256'] = h.hexdigest()
    out['pid'] = os.getpid()
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
