"""t_idle.py: many idle keep-alive connections on one worker. An idle
connection holds no request buffers (they come back on its next readable
event), so thousands of them cost little memory, the worker keeps
answering other clients, and every idle connection still works for its
next request. Nothing is timed; memory is compared only without
sanitizers (ASan multiplies every allocation)."""

import os
import resource
import selectors
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

WANT = 2000
BODY = b'x' * 1024


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


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
        before = rss_kib(pid)
        self.socks += open_idle(port, self.n - 50, batch=1)
        after = rss_kib(pid)
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


if __name__ == '__main__':
    harness.main()
