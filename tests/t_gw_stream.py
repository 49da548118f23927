"""t_gw_stream.py: request_buffering = false for FastCGI, SCGI and uwsgi
(the body goes to the application as it arrives) when the request has a
Content-Length, which becomes CONTENT_LENGTH; a chunked request there is
still collected first (CGI needs CONTENT_LENGTH, RFC 3875 §4.1.2).

Backends: the libfcgi sample cgi-bin/hello-fcgi (its /echo answers while
it reads), and Debian's uWSGI running tests/lib/wsgi_app.py over SCGI and
uwsgi (its progress mode writes the bytes it has read to a file).

Covered: for each protocol, the application sees the first bytes before
the client has sent the last (the client waits for that before sending the
rest: gated on the client side), and gets the body intact with its
CONTENT_LENGTH; a FastCGI connection that carried a streamed body (ended
by its empty FCGI_STDIN) serves the next request; a buffered location
still collects first; a chunked request on a streaming location is
collected (CONTENT_LENGTH known); limits.body_min_rate cuts a streamed
body that trickles (408) while other clients are served.

No test asserts a timing: waits are generous upper bounds."""

import hashlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
from appserver import Uwsgi, HAVE_UWSGI  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(HERE, '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
HAVE_HELLO = os.access(HELLO, os.X_OK)

CONF = '''
limits = { body_timeout = "8s"; body_min_rate = "2K"; };
backends = (
  { name = "hello"; servers = ( "@HELLO@" ); },
  { name = "sc"; servers = ( "127.0.0.1:@SC@" ); },
  { name = "uw"; servers = ( "127.0.0.1:@UW@" ); }
);
locations = (
  { prefix = "/fs/"; handler = "fastcgi"; backend = "hello"; request_buffering = false; },
  { prefix = "/fb/"; handler = "fastcgi"; backend = "hello"; },
  { prefix = "/ss/"; handler = "scgi"; backend = "sc"; request_buffering = false; },
  { prefix = "/us/"; handler = "uwsgi"; backend = "uw"; request_buffering = false; },
  { prefix = "/ub/"; handler = "uwsgi"; backend = "uw"; }
);
'''


def sha(b):
    return hashlib.sha256(b).hexdigest()


def recv_until(s, buf, pred, timeout):
    """Read from s into buf until pred(buf), EOF or timeout: pred(buf)."""
    deadline = time.monotonic() + timeout
    while not pred(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], min(left, 0.5))
        if not r:
            continue
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return pred(buf)


@unittest.skipUnless(HAVE_UWSGI and HAVE_HELLO,
                     'uwsgi, uwsgi-plugin-python3 or cgi-bin/hello-fcgi missing')
class GwStream(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='pt-gwstream-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.app = Uwsgi(cls.base).start()
        cls.addClassCleanup(cls.app.stop)
        cls.hello_addr = '127.0.0.1:%d' % harness.free_port()
        errf = open(os.path.join(cls.base, 'hello.log'), 'wb')
        cls.hello = subprocess.Popen([HELLO, '-s', cls.hello_addr], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=errf,
                                     start_new_session=True)
        errf.close()
        cls.addClassCleanup(cls.stop_hello)
        host, port = cls.hello_addr.split(':')

        def up():
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                return False
        if not harness.Server.wait_for(up, 30):
            raise RuntimeError('hello-fcgi -s %s did not come up' % cls.hello_addr)
        conf = (CONF.replace('@HELLO@', cls.hello_addr).replace('@SC@', str(cls.app.sc_port))
                .replace('@UW@', str(cls.app.uw_port)))
        harness.start_class_server(cls, conf=conf, workers=1)

    @classmethod
    def stop_hello(cls):
        if cls.hello.poll() is None:
            cls.hello.terminate()
            try:
                cls.hello.wait(10)
            except subprocess.TimeoutExpired:
                cls.hello.kill()
                cls.hello.wait(10)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def upload_in_two_halves(self, path, seen_pred, chunked=False, wait=30):
        """Send a head and the first part of a body, wait (at most wait s)
        until seen_pred(bytes the client got so far) says the application
        has some of it, then the rest: (seen, body, response)."""
        first, second = os.urandom(200000), os.urandom(300000)
        body = first + second
        s = harness.connect(self.port, timeout=60)
        try:
            head = 'POST %s HTTP/1.1\r\nHost: t\r\n' % path
            if chunked:
                head += 'Transfer-Encoding: chunked\r\n\r\n'
                s.sendall(head.encode() + b'%x\r\n%s\r\n' % (len(first), first))
            else:
                head += 'Content-Length: %d\r\n\r\n' % len(body)
                s.sendall(head.encode() + first)
            got = bytearray()
            seen = seen_pred(s, got, wait)
            if chunked:
                s.sendall(b'%x\r\n%s\r\n0\r\n\r\n' % (len(second), second))
            else:
                s.sendall(second)
            rest = self.read_rest(s, got)
            r = harness.read_response(bytes(got) + rest, 'POST')
        finally:
            s.close()
        return seen, body, r

    @staticmethod
    def read_rest(s, got):
        """The rest of one response whose start is in got (Content-Length)."""
        recv_until(s, got, lambda b: b'\r\n\r\n' in b, 60)
        head = bytes(got).split(b'\r\n\r\n', 1)[0].lower()
        n = 0
        for line in head.split(b'\r\n'):
            if line.startswith(b'content-length:'):
                n = int(line.split(b':', 1)[1])
        want = len(bytes(got).split(b'\r\n\r\n', 1)[0]) + 4 + n
        rest = bytearray()
        recv_until(s, rest, lambda b: len(got) + len(b) >= want, 60)
        return bytes(rest)

    def wsgi_seen(self, name):
        return lambda s, got, wait: harness.Server.wait_for(lambda: self.app.progress(name) > 0,
                                                            wait)

    @staticmethod
    def echo_answering(s, got, wait):
        """hello-fcgi's /echo writes its head and the bytes as it reads
        them: the response begins while the upload is unfinished."""
        return recv_until(s, got, lambda b: b'\r\n\r\n' in b, wait)

    def test_fastcgi_app_answers_before_the_upload_ends(self):
        seen, body, r = self.upload_in_two_halves('/fs/echo', self.echo_answering)
        self.assertTrue(seen, 'hello-fcgi saw nothing before the upload ended' + self.log_tail())
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual((len(r.body), sha(r.body)), (len(body), sha(body)))
        # the connection that carried it ended its FCGI_STDIN: it serves on
        for _ in range(3):
            st, _, data = harness.request(self.port, 'GET', '/fs/env', timeout=60)
            self.assertEqual(st, 200, data[:300] + self.log_tail().encode())
            self.assertIn(b'PATH_INFO=/env\n', data)

    def test_fastcgi_buffered_location_still_collects_first(self):
        seen, body, r = self.upload_in_two_halves('/fb/echo', self.echo_answering, wait=3)
        self.assertFalse(seen, 'a buffered location passed a partial body on')
        self.assertEqual(sha(r.body), sha(body))

    def check_wsgi_stream(self, prefix, name):
        seen, body, r = self.upload_in_two_halves(
            prefix + 'p?mode=progress&name=' + name, self.wsgi_seen(name))
        self.assertTrue(seen, 'the application saw nothing before the upload ended' +
                        self.log_tail())
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual((e['body_len'], e['body_sha256']), (len(body), sha(body)))

    def test_scgi_app_reads_the_body_before_the_upload_ends(self):
        self.check_wsgi_stream('/ss/', 'sc')

    def test_uwsgi_app_reads_the_body_before_the_upload_ends(self):
        self.check_wsgi_stream('/us/', 'uw')

    def test_uwsgi_buffered_location_still_collects_first(self):
        seen, body, r = self.upload_in_two_halves('/ub/p?mode=progress&name=ub',
                                                  self.wsgi_seen('ub'), wait=3)
        self.assertFalse(seen, 'a buffered location passed a partial body on')
        self.assertEqual(json.loads(r.body)['body_len'], len(body))

    def test_chunked_request_is_collected_with_its_length(self):
        seen, body, r = self.upload_in_two_halves('/us/p?mode=progress&name=ch',
                                                  self.wsgi_seen('ch'), chunked=True, wait=3)
        self.assertFalse(seen, 'a chunked body went to uwsgi before its length was known')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual((e['body_len'], e['body_sha256']), (len(body), sha(body)))

    def test_trickled_streamed_body_is_408_and_others_served(self):
        s = harness.connect(self.port, timeout=60)
        try:
            s.sendall(b'POST /ss/p?mode=progress&name=slow HTTP/1.1\r\nHost: t\r\n'
                      b'Content-Length: 100000\r\n\r\n')
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    s.sendall(b'x' * 10)
                except OSError:
                    break
                r, _, _ = select.select([s], [], [], 0.3)
                if r:
                    break
            r = harness.read_response(s, 'POST')
        finally:
            s.close()
        self.assertEqual(r.status, 408, self.log_tail())
        self.assertTrue(self.srv.wait_for_log(r'under body_min_rate', 20), self.log_tail())

        def app_saw_it():
            with open(self.app.log, errors='replace') as f:
                return 'name=slow' in f.read()
        # it was streamed: uWSGI had the request (and logs its cut body)
        self.assertTrue(harness.Server.wait_for(app_saw_it, 30), 'uWSGI never saw the request')
        st, _, data = harness.request(self.port, 'GET', '/ss/e', timeout=60)
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(json.loads(data)['REQUEST_METHOD'], 'GET')


if __name__ == '__main__':
    harness.main()
