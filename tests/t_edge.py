"""t_edge.py: no lost wake-up on the edge-triggered sockets (a plain client
connection and the upstream connections are registered with EPOLLET, and
ev.c keeps level-triggered semantics for them in user space).

Each case is a way an edge could be consumed while its owner did not want
the event, or a reader could stop before the socket was drained: requests
pipelined in one segment (more than the input buffer holds, and behind a
slow upstream answer), a request that arrives while the upstream is slow or
while the answer before it waits for a slow reader (the edge comes when
input is not wanted), a
body that trickles in, a client that reads nothing for a while (back-pressure
on both sides, then resume), a pooled idle upstream connection the upstream
closes (noticed at once, not at keepalive_timeout), a keep-alive client
pausing between requests, and a TLS client sending two requests in one
record. A Python upstream here answers with keep-alive.

No test asserts a timing: waits are generous upper bounds."""

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

CONF = '''
tls_listen = [ "127.0.0.1:@TLSPORT@" ];
tls = { certificate = "@CRT@"; key = "@KEY@"; };
backends = (
  { name = "up"; servers = ( "127.0.0.1:@UP@" ); keepalive_timeout = "1h"; }
);
locations = (
  { prefix = "/"; handler = "proxy"; backend = "up"; }
);
'''


def pattern(n):
    return (b'0123456789abcdef' * (n // 16 + 1))[:n]


class Upstream:
    """HTTP/1.1 with keep-alive. /slow/MS answers after MS ms, /big/N with
    N bytes, /echo with the sha256 of the body, /closeidle answers and then
    closes its side once idle, and records whether portico closed its side
    too (it noticed); anything else answers its path."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.noticed = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def stop(self):
        self.ls.close()

    def run(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        buf = b''
        try:
            while True:
                while b'\r\n\r\n' not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b'\r\n\r\n', 1)
                lines = head.decode('latin-1').split('\r\n')
                path = lines[0].split(' ')[1]
                clen = 0
                for ln in lines[1:]:
                    k, _, v = ln.partition(':')
                    if k.strip().lower() == 'content-length':
                        clen = int(v.strip())
                while len(buf) < clen:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:clen], buf[clen:]
                if path.startswith('/slow/'):
                    time.sleep(int(path[6:]) / 1000)
                    out = path.encode()
                elif path.startswith('/big/'):
                    out = pattern(int(path[5:]))
                elif path == '/echo':
                    out = hashlib.sha256(body).hexdigest().encode()
                else:
                    out = path.encode()
                s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(out) + out)
                if path == '/closeidle':
                    time.sleep(0.3)
                    s.shutdown(socket.SHUT_WR)
                    s.settimeout(30)
                    if s.recv(1) == b'':
                        self.noticed.set()
                    return
        except OSError:
            return
        finally:
            s.close()


class EdgeCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='pt-edge-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.up = Upstream()
        cls.addClassCleanup(cls.up.stop)
        cls.crt, key = os.path.join(cls.base, 'c.crt'), os.path.join(cls.base, 'c.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cls.crt,
                        '-days', '30', '-subj', '/CN=localhost', '-addext',
                        'subjectAltName=IP:127.0.0.1'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.tls_port = harness.free_port()
        conf = (CONF.replace('@UP@', str(cls.up.port)).replace('@TLSPORT@', str(cls.tls_port))
                .replace('@CRT@', cls.crt).replace('@KEY@', key))
        harness.start_class_server(cls, conf=conf, workers=1)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def get(self, path):
        return b'GET %s HTTP/1.1\r\nHost: t\r\n\r\n' % path.encode()

    def expect(self, sock, paths):
        got = harness.send_recv_responses(sock, len(paths))
        self.assertEqual([r.status for r in got], [200] * len(paths), self.log_tail())
        self.assertEqual([r.body for r in got], [p.encode() for p in paths], self.log_tail())

    def test_pipelined_requests_in_one_segment_behind_a_slow_answer(self):
        paths = ['/slow/300', '/a', '/b', '/slow/100', '/c']
        with harness.connect(self.port, timeout=60) as s:
            s.sendall(b''.join(self.get(p) for p in paths))
            self.expect(s, paths)

    def test_more_pipelined_requests_than_the_input_buffer_holds(self):
        paths = ['/p%04d/%s' % (i, 'x' * 40) for i in range(600)]
        with harness.connect(self.port, timeout=60) as s:
            s.sendall(b''.join(self.get(p) for p in paths))
            self.expect(s, paths)

    def test_request_arriving_while_the_upstream_is_slow(self):
        with harness.connect(self.port, timeout=60) as s:
            s.sendall(self.get('/slow/600'))
            time.sleep(0.2)
            s.sendall(self.get('/later'))
            self.expect(s, ['/slow/600', '/later'])

    def test_body_trickling_in_pieces(self):
        body = os.urandom(300000)
        with harness.connect(self.port, timeout=60) as s:
            s.sendall(b'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n'
                      % len(body))
            for i in range(0, len(body), 75000):
                time.sleep(0.15)
                s.sendall(body[i:i + 75000])
            r = harness.read_response(s)
            self.assertEqual(r.status, 200, self.log_tail())
            self.assertEqual(r.body, hashlib.sha256(body).hexdigest().encode())
            s.sendall(self.get('/after'))
            self.expect(s, ['/after'])

    def test_slow_reader_gets_a_big_answer_whole_then_the_next(self):
        n = 12 * 1024 * 1024
        with harness.connect(self.port, timeout=60) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(self.get('/big/%d' % n))
            # nothing read: both sockets fill, portico stops reading upstream
            time.sleep(1.5)
            r = harness.read_response(s)
            self.assertEqual(r.status, 200, self.log_tail())
            self.assertEqual(len(r.body), n)
            self.assertEqual(r.body, pattern(n))
            s.sendall(self.get('/next'))
            self.expect(s, ['/next'])

    def test_request_arriving_while_the_answer_waits_for_the_reader(self):
        # the second request comes while portico waits to write, not to read
        n = 12 * 1024 * 1024
        with harness.connect(self.port, timeout=60) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(self.get('/big/%d' % n))
            time.sleep(1)
            s.sendall(self.get('/queued'))
            time.sleep(0.5)
            r = harness.read_response(s)
            self.assertEqual(r.status, 200, self.log_tail())
            self.assertEqual(r.body, pattern(n))
            self.expect(s, ['/queued'])

    def test_keepalive_client_pausing_between_requests(self):
        with harness.connect(self.port, timeout=60) as s:
            for i in range(3):
                s.sendall(self.get('/k%d' % i))
                self.expect(s, ['/k%d' % i])
                time.sleep(0.3)

    def test_idle_pooled_connection_closed_by_the_upstream_is_noticed(self):
        with harness.connect(self.port, timeout=60) as s:
            s.sendall(self.get('/closeidle'))
            self.expect(s, ['/closeidle'])
        # keepalive_timeout is an hour: only the close's event ends it
        self.assertTrue(self.up.noticed.wait(20), self.log_tail())
        with harness.connect(self.port, timeout=60) as s:
            s.sendall(self.get('/again'))
            self.expect(s, ['/again'])

    def test_tls_two_requests_in_one_record(self):
        ctx = ssl.create_default_context(cafile=self.crt)
        raw = socket.create_connection(('127.0.0.1', self.tls_port), timeout=60)
        with ctx.wrap_socket(raw, server_hostname='127.0.0.1') as s:
            # one write: one TLS record holding both requests
            s.sendall(self.get('/t1') + self.get('/t2'))
            self.expect(s, ['/t1', '/t2'])


if __name__ == '__main__':
    harness.main()
