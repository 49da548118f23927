"""t_idle.py: many idle keep-alive connections on one worker. An idle
connection holds no request buffers (they come back on its next readable
event), so thousands of them cost little memory, the worker keeps
answering other clients, and every idle connection still works for its
next request. Over TLS (issue 16: no more than nginx's, about 15 KiB),
an idle connection also gives back OpenSSL's record buffers
(SSL_MODE_RELEASE_BUFFERS), keeping only the SSL object and its keys.
Nothing is timed; memory is compared only without sanitizers (ASan
multiplies every allocation)."""

import os
import resource
import selectors
import socket
import ssl
import subprocess
import tempfile
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

WANT = 2000
BODY = b'x' * 1024


def private_kib(pid):
    """What the process alone holds: Private_Dirty + Swap (its heap)."""
    with open('/proc/%d/smaps_rollup' % pid) as f:
        return sum(int(line.split()[1]) for line in f
                   if line.startswith(('Private_Dirty:', 'Swap:')))


def sanitized(pid):
    with open('/proc/%d/maps' % pid) as f:
        return any('libasan' in line or 'libubsan' in line for line in f)


def request(port):
    return ('GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n' % port).encode()


def open_idle(port, n, batch=50):
    """n connections, each after one complete keep-alive exchange; at most
    batch requests in flight at a time."""
    req = request(port)
    sel = selectors.DefaultSelector()
    held, pending, started = [], 0, 0
    resp_len = None
    while len(held) < n:
        while started < n and pending < batch:
            s = socket.create_connection(('127.0.0.1', port), timeout=30)
            s.sendall(req)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, [b''])
            started += 1
            pending += 1
        events = sel.select(timeout=30)
        if not events:
            raise AssertionError('no response within 30 s (%d held)' % len(held))
        for key, _ in events:
            s, buf = key.fileobj, key.data
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError('the server closed an idle connection')
            buf[0] += chunk
            if resp_len is None and b'\r\n\r\n' in buf[0]:
                head = buf[0].split(b'\r\n\r\n')[0]
                resp_len = len(head) + 4 + len(BODY)
            if resp_len is not None and len(buf[0]) >= resp_len:
                assert buf[0].endswith(BODY), buf[0][:200]
                sel.unregister(s)
                pending -= 1
                held.append(s)
    return held


class IdleConnections(unittest.TestCase):
    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 2 * WANT + 200  # both ends live in this machine's fd tables
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.n = min(WANT, (soft - 200) // 2)
        if self.n < 500:
            self.skipTest('open-file limit %d too low' % soft)
        self.srv = harness.Server('-o', 'limits.max_connections=%d' % (self.n + 100),
                                  '-o', 'limits.keepalive_timeout=5m')
        self.srv.write_file('1k.bin', BODY)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.socks = []
        self.addCleanup(lambda: [s.close() for s in self.socks])

    def test_thousands_of_idle_connections_stay_cheap_and_usable(self):
        port = self.srv.port
        (pid,) = self.srv.worker_pids()
        # one request in flight at a time: the worker needs one request
        # block, from its pool, and the growth is the idle connections'
        # own state
        self.socks = open_idle(port, 50, batch=1)
        before = harness.proc_status(pid, 'VmRSS')
        self.socks += open_idle(port, self.n - 50, batch=1)
        after = harness.proc_status(pid, 'VmRSS')
        per_conn = (after - before) / (self.n - 50)
        sys.stdout.write('# %d idle connections: worker RSS %d -> %d KiB, %.2f KiB each\n' %
                         (self.n, before, after, per_conn))
        if not sanitized(pid):
            # the connection state alone (about 0.4 KiB); with its request
            # buffers one would take over 20 KiB
            self.assertLess(per_conn, 0.6)
        # another client is answered while they all stay open
        st, _, body = harness.request(port, 'GET', '/1k.bin')
        self.assertEqual((st, body), (200, BODY))
        # and every idle connection takes its next request
        req = request(port)
        for s in self.socks:
            s.setblocking(True)
            s.settimeout(30)
            s.sendall(req)
        for s in self.socks:
            r = harness.read_response(s)
            self.assertEqual((r.status, r.body), (200, BODY))


TLS_WANT = 500  # each costs this test a handshake


def tls_idle(ctx, port, n, session=None):
    """n TLS connections, each after one answered keep-alive request."""
    held = []
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=30),
                            server_hostname='localhost', session=session)
        s.sendall(request(port))
        r = harness.read_response(s)
        assert (r.status, r.body) == (200, BODY), r
        held.append(s)
    return held


class IdleTlsConnections(unittest.TestCase):
    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 2 * TLS_WANT + 300
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
            self.skipTest('open-file limit too low')
        d = tempfile.mkdtemp(prefix='portico-idle-tls-')
        self.addCleanup(subprocess.run, ['rm', '-rf', d])
        crt, key = os.path.join(d, 'ec.crt'), os.path.join(d, 'ec.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '30', '-subj', '/CN=localhost'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.srv = harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', crt, '--key', key,
                                  '-o', 'limits.max_connections=%d' % (2 * TLS_WANT),
                                  '-o', 'limits.keepalive_timeout=5m', listen=[])
        self.srv.write_file('1k.bin', BODY)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.socks = []
        self.addCleanup(lambda: [s.close() for s in self.socks])

    def check(self, version, resume):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = version
        port = self.srv.port
        (pid,) = self.srv.worker_pids()
        self.socks = tls_idle(ctx, port, 50)
        session = self.socks[0].session if resume else None
        self.socks += tls_idle(ctx, port, 10, session)
        before = private_kib(pid)
        more = tls_idle(ctx, port, TLS_WANT, session)
        self.socks += more
        after = private_kib(pid)
        per_conn = (after - before) / TLS_WANT
        sys.stdout.write('# %s%s: %d idle TLS connections, %.2f KiB each\n' %
                         (version.name, ' resumed' if resume else '', TLS_WANT, per_conn))
        if resume:
            self.assertTrue(all(s.session_reused for s in more))
        if not sanitized(pid):
            # measured 13-14 KiB (OpenSSL 3.0: the SSL object 7.5, two
            # AES-GCM contexts 2, the session 1); with the read buffer
            # kept 29.5 KiB, with the request block kept 36
            self.assertLess(per_conn, 22)
        for s in self.socks:
            s.sendall(request(port))
        for s in self.socks:
            r = harness.read_response(s)
            self.assertEqual((r.status, r.body), (200, BODY))

    def test_idle_tls13_connection_gives_back_its_buffers(self):
        self.check(ssl.TLSVersion.TLSv1_3, False)

    def test_idle_resumed_tls12_connection_gives_back_its_buffers(self):
        self.check(ssl.TLSVersion.TLSv1_2, True)


if __name__ == '__main__':
    harness.main()
