"""t_defer_accept.py: limits.defer_accept (TCP_DEFER_ACCEPT on the
listening sockets): a client that connects and sends nothing is not handed
to a worker (not accepted, not active, no header_timeout running) until
its first bytes come; one that then sends is served as usual, plain and
TLS; 0 turns it off. The accept counters on the status page tell it
apart: without the option the worker accepts every idle connection before
the status request queued behind them.

No test asserts a timing: the deferral here (2 minutes) outlasts any wait."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

IDLE = 20
LONG = ('-o', 'limits.header_timeout=2m', '-o', 'limits.defer_accept=2m')


def connections(port):
    st, _, body = harness.request(port, 'GET', '/status?format=json')
    assert st == 200, (st, body[:200])
    return json.loads(body)['connections']


def idle_clients(port, n=IDLE):
    """n connections that send nothing (connect(2) completes all the same)."""
    return [socket.create_connection(('127.0.0.1', port), timeout=60) for _ in range(n)]


class DeferAccept(unittest.TestCase):
    def server(self, *args, **kw):
        srv = harness.Server('--status', '/status', *args, files={'a.txt': 'deferred\n'}, **kw)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def held(self, socks):
        self.addCleanup(lambda: [s.close() for s in socks])
        return socks

    def test_connect_only_clients_are_not_accepted_until_they_send(self):
        srv = self.server(*LONG)
        before = connections(srv.port)
        socks = self.held(idle_clients(srv.port))
        after = connections(srv.port)
        # the second status request alone; without defer_accept all 21
        self.assertEqual(after['accepted'] - before['accepted'], 1, (before, after))
        # the status connections alone (the first one's close may not be
        # seen yet); without defer_accept 20 more
        self.assertLessEqual(after['active'], 2, after)
        # one of them speaks: accepted now, and served
        s = socks[0]
        s.sendall(b'GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        r = harness.read_response(s)
        self.assertEqual((r.status, r.body), (200, b'deferred\n'))
        # and a new client right after, as usual
        st, _, body = harness.request(srv.port, 'GET', '/a.txt')
        self.assertEqual((st, body), (200, b'deferred\n'))
        last = connections(srv.port)
        self.assertEqual(last['accepted'] - after['accepted'], 3, (after, last))
        # the rest never got a 408 or a close: nothing to read yet
        for q in socks[1:]:
            q.setblocking(False)
            with self.assertRaises(BlockingIOError):
                q.recv(1)

    def test_off_accepts_connect_only_clients_at_once(self):
        srv = self.server('-o', 'limits.defer_accept=0')
        before = connections(srv.port)
        self.held(idle_clients(srv.port))
        after = connections(srv.port)
        self.assertEqual(after['accepted'] - before['accepted'], IDLE + 1, (before, after))
        self.assertGreaterEqual(after['active'], IDLE + 1, after)

    def test_tls_client_is_served_after_a_deferred_accept(self):
        d = tempfile.mkdtemp(prefix='portico-defer-')
        self.addCleanup(shutil.rmtree, d, True)
        crt, key = os.path.join(d, 'c.pem'), os.path.join(d, 'k.pem')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '30', '-subj', '/CN=localhost'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tls_port = harness.free_port()
        srv = self.server('--tls', '127.0.0.1:%d' % tls_port, '--cert', crt, '--key', key, *LONG)
        before = connections(srv.port)
        socks = self.held(idle_clients(tls_port, 5))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = b'GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'

        def get(sock):
            with ctx.wrap_socket(sock, server_hostname='localhost') as t:
                t.sendall(req)
                r = harness.read_response(t)
            self.assertEqual((r.status, r.body), (200, b'deferred\n'))

        # a new client queued behind the idle ones on the same listener
        get(socket.create_connection(('127.0.0.1', tls_port), timeout=60))
        after = connections(srv.port)
        # it and the status request; without defer_accept the 5 idle too
        self.assertEqual(after['accepted'] - before['accepted'], 2, (before, after))
        # the ClientHello of an idle one is a first byte like any other
        get(socks[0])

    def test_bad_values_are_refused(self):
        for bad in ('-1s', 'soon', '2d'):
            r = subprocess.run([harness.PORTICO, '-t', '-l', '127.0.0.1:8080', '-o',
                                'limits.defer_accept=' + bad],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(b'defer_accept', r.stderr)


if __name__ == '__main__':
    harness.main()
