"""t_gw_head_hold.py: an upstream's response head that arrives alone waits
for the first body bytes when the response is buffered, so the client gets
head and body in one send (one TCP segment, one wake-up), as nginx's
postpone_output does; a streamed response (X-Accel-Buffering: no) gets its
head at once.

An nginx upstream writes its head, then sendfile()s the body: portico often
read the head alone and sent it alone (5% of the requests of
bench/gw-syscalls.py on a loaded machine, more when the upstream runs on
another CPU). Here a scripted upstream (HTTP for "proxy", the uwsgi
protocol for "uwsgi") sends the head, then holds the body until the test
lets it go.

No test asserts a timing: the buffered case checks that the client has
nothing to read while the upstream holds the body (a slow machine can only
make that pass, never fail), the streamed one waits generously for the
head."""

import os
import select
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

BODY = b'hello'


class HoldingUpstream:
    """Answers each request with a head, then waits for go() before the
    body. kind: 'http' (keep-alive) or 'uwsgi' (one request, then close)."""

    def __init__(self, kind):
        self.kind = kind
        self.ls = socket.socket()
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.head_sent = threading.Event()
        self.release = threading.Event()
        self.extra = b''
        self.done = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def read_request(self, c):
        buf = b''
        if self.kind == 'http':
            while b'\r\n\r\n' not in buf:
                d = c.recv(65536)
                if not d:
                    return False
                buf += d
            return True
        # uwsgi: a 4-byte header (modifier1, vars size LE16, modifier2), the vars
        while len(buf) < 4 or len(buf) < 4 + struct.unpack('<H', buf[1:3])[0]:
            d = c.recv(65536)
            if not d:
                return False
            buf += d
        return True

    def run(self):
        while not self.done:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with c:
                while self.read_request(c):
                    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
                              b'Content-Length: %d\r\n%s\r\n' % (len(BODY), self.extra))
                    self.head_sent.set()
                    self.release.wait(120)
                    c.sendall(BODY)
                    if self.kind == 'uwsgi':
                        break

    def stop(self):
        self.done = True
        self.release.set()
        self.ls.close()


CONF = '''
backends = (
  { name = "h"; servers = ( "127.0.0.1:@H@" ); },
  { name = "u"; servers = ( "127.0.0.1:@U@" ); }
);
locations = (
  { prefix = "/p/"; handler = "proxy"; backend = "h"; },
  { prefix = "/u/"; handler = "uwsgi"; backend = "u"; }
);
'''


class HeadHold(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ups = {'p': HoldingUpstream('http'), 'u': HoldingUpstream('uwsgi')}
        for u in cls.ups.values():
            cls.addClassCleanup(u.stop)  # after tearDownClass, and if setUpClass fails
        conf = CONF.replace('@H@', str(cls.ups['p'].port)).replace('@U@', str(cls.ups['u'].port))
        harness.start_class_server(cls, conf=conf, workers=1)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def exchange(self, which, extra, wait_head):
        """A GET through the upstream which holds its body; returns (bytes
        the client could read while the body was held, the response)."""
        up = self.ups[which]
        up.extra = extra
        up.head_sent.clear()
        up.release.clear()
        s = harness.connect(self.srv.port, timeout=60)
        try:
            s.sendall(b'GET /%s/x HTTP/1.1\r\nHost: t\r\n\r\n' % which.encode())
            self.assertTrue(up.head_sent.wait(60), 'the upstream saw no request')
            early = b''
            if select.select([s], [], [], wait_head)[0]:
                early = s.recv(65536)
            up.release.set()
            data = early
            while b'\r\n\r\n' not in data or len(data.split(b'\r\n\r\n', 1)[1]) < len(BODY):
                d = s.recv(65536)
                self.assertTrue(d, 'closed before the whole response: %r' % data)
                data += d
            return early, harness.read_response(data)
        finally:
            s.close()

    def test_buffered_head_waits_for_the_body_proxy(self):
        early, r = self.exchange('p', b'', 2)
        self.assertEqual(early, b'', 'the head went out alone' + self.srv.stderr_text()[-2000:])
        self.assertEqual((r.status, r.body), (200, BODY))

    def test_buffered_head_waits_for_the_body_uwsgi(self):
        early, r = self.exchange('u', b'', 2)
        self.assertEqual(early, b'', 'the head went out alone' + self.srv.stderr_text()[-2000:])
        self.assertEqual((r.status, r.body), (200, BODY))

    def test_streamed_head_goes_out_at_once(self):
        for which in ('p', 'u'):
            with self.subTest(which=which):
                early, r = self.exchange(which, b'X-Accel-Buffering: no\r\n', 60)
                self.assertTrue(early.startswith(b'HTTP/1.1 200'), early)
                self.assertNotIn(BODY, early)
                self.assertEqual((r.status, r.body), (200, BODY))


if __name__ == '__main__':
    harness.main()
