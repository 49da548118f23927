"""t_proxy_stream.py: the HTTP reverse proxy with request_buffering = false
(the body goes to the upstream as it arrives) and a gunicorn restart under
load, against Debian's gunicorn running tests/lib/wsgi_app.py (tests/lib/appserver.py's
Gunicorn).

Covered: an upload with Content-Length and a chunked one reach gunicorn
before the client has sent them whole (the application's progress file
shows bytes while the upload waits), intact, framed as the client framed
them, over TLS too; an upstream that reads nothing holds the uploader (the
client's sending stalls, plain and TLS) while the worker's memory stays
bounded; a streamed POST on a pooled connection that dies is a 502 after
one attempt, a buffered one is retried; clients doing GETs while gunicorn reloads its workers
(SIGHUP, closing the idle keep-alive connections portico pooled) see no
failure (the retry on a fresh connection).

No test asserts a timing: waits are generous upper bounds."""

import hashlib
import json
import os
import select
import shutil
import ssl
import subprocess
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
from appserver import Gunicorn, HAVE_GUNICORN  # noqa: E402

CONF = '''
tls_listen = [ "127.0.0.1:@TLSPORT@" ];
tls = { certificate = "@CRT@"; key = "@KEY@"; };
backends = (
  { name = "gt"; servers = ( "127.0.0.1:@GT@" ); },
  { name = "re"; servers = ( "127.0.0.1:@RE@" ); },
  { name = "drop"; servers = ( "127.0.0.1:@DROP@" ); max_fails = 0; }
);
locations = (
  { prefix = "/drop/s/"; handler = "proxy"; backend = "drop"; request_buffering = false; },
  { prefix = "/drop/b/"; handler = "proxy"; backend = "drop"; },
  { prefix = "/stream/"; handler = "proxy"; backend = "gt"; request_buffering = false; },
  { prefix = "/buffered/"; handler = "proxy"; backend = "gt"; },
  { prefix = "/re/"; handler = "proxy"; backend = "re"; }
);
'''


class DropUpstream(harness.TcpUpstream):
    """An HTTP upstream that answers a GET with keep-alive, and drops a
    connection that brings a POST after an earlier request once it has seen
    the POST's head and some of its body (a pooled connection dying under a
    request); a POST on a fresh connection is read whole and answered. It
    counts the POST heads it sees."""

    def __init__(self):
        self.posts = 0
        super().__init__()

    def serve(self, s):
        buf, served = b'', 0
        try:
            s.settimeout(60)
            while True:
                while b'\r\n\r\n' not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b'\r\n\r\n')
                if head.startswith(b'POST'):
                    self.posts += 1
                    cl = [int(x.split(b':')[1]) for x in head.split(b'\r\n')
                          if x.lower().startswith(b'content-length:')]
                    if served:
                        while not buf:
                            buf += s.recv(65536)
                        return  # dropped with the request on it
                    while len(buf) < cl[0]:
                        d = s.recv(65536)
                        if not d:
                            return
                        buf += d
                    n, buf = cl[0], buf[cl[0]:]
                    body = b'got %d' % n
                else:
                    body = b'get'
                s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body))
                served += 1
        except OSError:
            pass
        finally:
            s.close()


@unittest.skipUnless(HAVE_GUNICORN, 'python3-gunicorn is not installed')
class StreamCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='pt-pstream-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        cls.gt = Gunicorn(cls.base, 'gthread').start()
        cls.addClassCleanup(cls.gt.stop)
        # its own gunicorn: the restart test reloads it
        os.mkdir(os.path.join(cls.base, 're'))
        cls.re = Gunicorn(os.path.join(cls.base, 're'), 'gthread').start()
        cls.addClassCleanup(cls.re.stop)
        cls.drop = DropUpstream()
        cls.addClassCleanup(cls.drop.stop)
        cls.crt, key = os.path.join(cls.base, 'c.crt'), os.path.join(cls.base, 'c.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cls.crt,
                        '-days', '30', '-subj', '/CN=localhost', '-addext',
                        'subjectAltName=IP:127.0.0.1'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.tls_port = harness.free_port()
        conf = (CONF.replace('@GT@', str(cls.gt.port)).replace('@RE@', str(cls.re.port))
                .replace('@DROP@', str(cls.drop.port)).replace('@TLSPORT@', str(cls.tls_port))
                .replace('@CRT@', cls.crt).replace('@KEY@', key))
        harness.start_class_server(cls, conf=conf, workers=1)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def progress(self, name):
        try:
            with open(os.path.join(self.gt.dir, 'progress-' + name)) as f:
                return int(f.read() or 0)
        except (OSError, ValueError):
            return 0

    def connect(self, tls):
        if not tls:
            return harness.connect(self.port, timeout=60)
        ctx = ssl.create_default_context(cafile=self.crt)
        deadline = time.monotonic() + 20
        while True:
            try:
                raw = socket.create_connection(('127.0.0.1', self.tls_port), timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return ctx.wrap_socket(raw, server_hostname='127.0.0.1')

    def upload_in_two_halves(self, path, name, chunked, wait=30, tls=False):
        first, second = os.urandom(200000), os.urandom(300000)
        body = first + second
        s = self.connect(tls)
        try:
            head = 'POST %s?mode=progress&name=%s HTTP/1.1\r\nHost: t\r\n' % (path, name)
            if chunked:
                head += 'Transfer-Encoding: chunked\r\n\r\n'
                s.sendall(head.encode() + b'%x\r\n%s\r\n' % (len(first), first))
            else:
                head += 'Content-Length: %d\r\n\r\n' % len(body)
                s.sendall(head.encode() + first)
            # the application reads the body while the rest is not sent
            seen = harness.Server.wait_for(lambda: self.progress(name) > 0, wait)
            if chunked:
                s.sendall(b'%x\r\n%s\r\n0\r\n\r\n' % (len(second), second))
            else:
                s.sendall(second)
            r = harness.read_response(s, 'POST')
        finally:
            s.close()
        return seen, body, r

    def test_upload_with_length_reaches_gunicorn_before_it_ends(self):
        seen, body, r = self.upload_in_two_halves('/stream/cl', 'cl', False)
        self.assertTrue(seen, 'gunicorn saw nothing before the upload ended' + self.log_tail())
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual((e['body_len'], e['body_sha256']),
                         (len(body), hashlib.sha256(body).hexdigest()))

    def test_chunked_upload_reaches_gunicorn_chunked_before_it_ends(self):
        seen, body, r = self.upload_in_two_halves('/stream/ch', 'ch', True)
        self.assertTrue(seen, 'gunicorn saw nothing before the upload ended' + self.log_tail())
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        # the length is unknown: chunked to the upstream too (RFC 9112 §7.1)
        self.assertEqual(e.get('HTTP_TRANSFER_ENCODING'), 'chunked')
        self.assertNotIn('CONTENT_LENGTH', e)
        self.assertEqual((e['body_len'], e['body_sha256']),
                         (len(body), hashlib.sha256(body).hexdigest()))

    def test_chunked_upload_over_tls_streams_too(self):
        seen, body, r = self.upload_in_two_halves('/stream/tls', 'tls', True, tls=True)
        self.assertTrue(seen, 'gunicorn saw nothing before the upload ended' + self.log_tail())
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual((e['body_len'], e['body_sha256']),
                         (len(body), hashlib.sha256(body).hexdigest()))

    def test_buffered_location_still_collects_first(self):
        seen, body, r = self.upload_in_two_halves('/buffered/b', 'buf', False, 3)
        self.assertFalse(seen, 'a buffered location passed a partial body on')
        self.assertEqual(json.loads(r.body)['body_len'], len(body))

    def upload_to_an_upstream_that_reads_nothing(self, tls):
        pid = self.srv.worker_pids()[0]
        before = harness.proc_status(pid, 'VmRSS')
        total = 64 << 20
        data = memoryview(os.urandom(1 << 20) * 64)
        name = 'slowtls' if tls else 'slow'
        s = self.connect(tls)
        try:
            s.sendall(b'POST /stream/slow?mode=progress&name=%s&gate=%sgate HTTP/1.1\r\n'
                      b'Host: t\r\nContent-Length: %d\r\n\r\n' % (name.encode(), name.encode(),
                                                                   total))
            s.setblocking(False)
            off = 0
            while off < total:
                if not select.select([], [s], [], 2)[1]:
                    break
                try:
                    off += s.send(data[off:off + (1 << 20)])
                except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            self.assertLess(off, total, '64 MiB went into an upstream that reads nothing')
            grown = harness.proc_status(pid, 'VmRSS') - before
            self.assertLess(grown, 16 * 1024, 'the worker grew by %d KiB' % grown)
            self.gt.open_gate(name + 'gate')
            s.settimeout(120)
            s.sendall(data[off:])
            r = harness.read_response(s, 'POST')
        finally:
            s.close()
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual((e['body_len'], e['body_sha256']),
                         (total, hashlib.sha256(data).hexdigest()))

    def test_upstream_that_reads_nothing_holds_the_uploader_not_memory(self):
        self.upload_to_an_upstream_that_reads_nothing(False)

    def test_upstream_that_reads_nothing_holds_a_tls_uploader_too(self):
        self.upload_to_an_upstream_that_reads_nothing(True)

    def post_on_a_reused_connection(self, prefix):
        s = harness.connect(self.port, timeout=60)
        try:
            # the GET leaves an idle pooled connection; the POST reuses it
            s.sendall(b'GET %sg HTTP/1.1\r\nHost: t\r\n\r\n' % prefix)
            r = harness.read_response(s)
            self.assertEqual((r.status, r.body), (200, b'get'))
            before = self.drop.posts
            body = os.urandom(100000)
            s.sendall(b'POST %sp HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s'
                      % (prefix, len(body), body))
            r = harness.read_response(s, 'POST')
        finally:
            s.close()
        return r, self.drop.posts - before

    def test_streamed_request_is_never_retried(self):
        r, posts = self.post_on_a_reused_connection(b'/drop/s/')
        # its body went out already: it cannot be sent again
        self.assertEqual((r.status, posts), (502, 1), r.body[:300])

    def test_buffered_request_is_retried_on_a_fresh_connection(self):
        r, posts = self.post_on_a_reused_connection(b'/drop/b/')
        self.assertEqual((r.status, r.body, posts), (200, b'got 100000', 2))

    def test_gunicorn_reload_under_load_fails_no_get(self):
        stop = threading.Event()
        results = []

        def client(k):
            i = 0
            while not stop.is_set():
                try:
                    st, _, data = harness.request(self.port, 'GET', '/re/get?c=%d&i=%d' % (k, i),
                                                  timeout=60)
                    results.append(st if st != 200 or json.loads(data)['QUERY_STRING'] ==
                                   'c=%d&i=%d' % (k, i) else -1)
                except Exception as e:  # noqa: B902 - any failure counts
                    results.append(repr(e))
                i += 1
        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            # SIGHUP: gunicorn starts new workers and stops the old ones,
            # closing the keep-alive connections portico keeps in its pool
            for _ in range(5):
                n = len(results)
                harness.Server.wait_for(lambda: len(results) >= n + 20, 30)
                os.kill(self.re.proc.pid, signal.SIGHUP)
                time.sleep(1)
            n = len(results)
            harness.Server.wait_for(lambda: len(results) >= n + 20, 30)
        finally:
            stop.set()
            for t in threads:
                t.join(90)
        bad = [x for x in results if x != 200]
        self.assertGreater(len(results), 100)
        self.assertEqual(bad, [], self.log_tail())


if __name__ == '__main__':
    harness.main()
