"""t_websocket.py: Upgrade through the HTTP reverse proxy (tunnel.c). A
WebSocket server (tests/lib/ws_echo.py on Debian's python3-websockets) and a
real client (the same library) through portico: text and binary messages, a
16 MiB frame, many tunnels at once, over TLS, the idle timeout
(tunnel_timeout), either side closing, the access-log line at the end; a
non-101 answer passed on as a plain response; a 101 without an Upgrade
field (502); an open tunnel kept by the old worker across a reload; flow
control both ways (a
reader that does not read makes portico stop reading the writer: the
worker's memory stays bounded); a raw upstream switching to another
protocol, with bytes sent ahead by both sides and a half-close each way.
What must not tunnel: upgrade = false, HTTP/1.0, static files, and a CGI or
FastCGI program answering "Status: 101" (502).

No test asserts a timing: waits are generous upper bounds."""

import asyncio
import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

try:
    import websockets
except ImportError:
    # the library is Debian's: run under Debian's python when this one
    # (a PYTHON found first on PATH) lacks it
    if os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3') and \
            os.path.exists('/usr/bin/python3'):
        os.execv('/usr/bin/python3', ['/usr/bin/python3', os.path.abspath(__file__)] +
                 sys.argv[1:])
    websockets = None  # python3-websockets is not installed: skipped

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, 'lib')
PY = '/usr/bin/python3'
KEY = base64.b64encode(b'portico-ws-test!').decode()

UP101_CGI = '''#!/bin/sh
printf 'Status: 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n'
printf 'not a tunnel\\n'
'''
UP101_PHP = '''<?php
header("HTTP/1.1 101 Switching Protocols");
header("Upgrade: websocket");
echo "not a tunnel\\n";
'''

CONF = '''
tls_listen = [ "127.0.0.1:@TLSPORT@" ];
tls = { certificate = "@CRT@"; key = "@KEY@"; };
backends = (
  { name = "ws"; servers = ( "127.0.0.1:@WS@" ); },
  { name = "wsidle"; servers = ( "127.0.0.1:@WS@" ); tunnel_timeout = "1s"; },
  { name = "raw"; servers = ( "127.0.0.1:@RAW@" ); }@PHPBK@
);
locations = (
  { prefix = "/ws/"; handler = "proxy"; backend = "ws"; },
  { exact = "/status"; handler = "status"; },
  { prefix = "/idle/"; handler = "proxy"; backend = "wsidle"; },
  { prefix = "/noup/"; handler = "proxy"; backend = "ws"; upgrade = false; },
  { prefix = "/raw/"; handler = "proxy"; backend = "raw"; },
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; }@PHPLOC@
);
'''


def make_cert(base):
    crt, key = os.path.join(base, 'ws.crt'), os.path.join(base, 'ws.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days',
                    '30', '-subj', '/CN=localhost', '-addext',
                    'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


class RawUpstream(harness.TcpUpstream):
    """An upstream that switches to a made-up protocol: its 101 carries the
    first bytes ("hello from upstream\\n") in the same write; then it reads
    until the client's end (a half-close passed on) and answers "got N"
    before closing."""

    def __init__(self):
        self.heads = []
        super().__init__()

    def serve(self, s):
        try:
            s.settimeout(60)
            data = b''
            while b'\r\n\r\n' not in data:
                d = s.recv(65536)
                if not d:
                    return
                data += d
            head, _, rest = data.partition(b'\r\n\r\n')
            self.heads.append(head.decode('latin-1'))
            if head.startswith(b'GET /raw/noupgrade '):
                # RFC 9110 §15.2.2: a 101 must say what it switched to
                s.sendall(b'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n'
                          b'raw bytes')
                time.sleep(1)
                return
            s.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: halfclose/1\r\n'
                      b'Connection: Upgrade\r\n\r\nhello from upstream\n')
            n = len(rest)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                n += len(d)
            s.sendall(b'got %d' % n)
        except OSError:
            pass
        finally:
            s.close()


def read_head(s):
    data = b''
    while b'\r\n\r\n' not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    head, _, rest = data.partition(b'\r\n\r\n')
    return head.decode('latin-1'), rest


def upgrade_request(path, version='1.1', extra=''):
    return ('GET %s HTTP/%s\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
            'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n'
            % (path, version, KEY, extra)).encode()


def ws_frame(payload, opcode=2):
    """A masked client frame (RFC 6455 §5.2; a zero mask key leaves the
    payload as it is)."""
    n = len(payload)
    if n < 126:
        hdr = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, 'big')
    else:
        hdr = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, 'big')
    return hdr + b'\0\0\0\0' + payload


class FrameReader:
    """Unmasked server frames from a raw socket."""

    def __init__(self, s, buf=b''):
        self.s, self.buf = s, buf

    def need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError('connection closed')
            self.buf += d

    def frame(self):
        self.need(2)
        op, n = self.buf[0] & 0x0f, self.buf[1] & 0x7f
        off = 2
        if n == 126:
            self.need(4)
            n, off = int.from_bytes(self.buf[2:4], 'big'), 4
        elif n == 127:
            self.need(10)
            n, off = int.from_bytes(self.buf[2:10], 'big'), 10
        self.need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return op, payload


@unittest.skipUnless(websockets, 'python3-websockets is not installed')
class WebSocketCase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='pt-ws-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        portfile = os.path.join(cls.base, 'ws.port')
        cls.events = os.path.join(cls.base, 'ws.events')
        cls.ws = subprocess.Popen([PY, os.path.join(LIB, 'ws_echo.py'), portfile, cls.events],
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        cls.addClassCleanup(cls.stop_proc, cls.ws)
        if not harness.Server.wait_for(lambda: os.path.exists(portfile), 30):
            raise RuntimeError('ws_echo.py did not start')
        cls.ws_port = int(open(portfile).read())
        cls.raw = RawUpstream()
        cls.addClassCleanup(cls.raw.stop)
        cls.crt, key = make_cert(cls.base)
        cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cgi)
        with open(os.path.join(cgi, 'up101.cgi'), 'w') as f:
            f.write(UP101_CGI)
        os.chmod(os.path.join(cgi, 'up101.cgi'), 0o755)
        os.chmod(cgi, 0o755)
        cls.fpm = None
        phpbk = phploc = ''
        if phpfpm.find_php_fpm():
            cls.www = os.path.join(cls.base, 'www')
            os.mkdir(cls.www)
            with open(os.path.join(cls.www, 'up101.php'), 'w') as f:
                f.write(UP101_PHP)
            os.chmod(cls.www, 0o755)
            cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', listen='unix', max_children=2)])
            cls.addClassCleanup(cls.fpm.stop)
            cls.fpm.start()
            phpbk = ',\n  { name = "php"; servers = ( "%s" ); }' % cls.fpm.pool('www').address
            phploc = (',\n  { extension = ".php"; handler = "fastcgi"; backend = "php"; '
                      'root = "%s"; }' % cls.www)
        cls.tls_port = harness.free_port()
        conf = (CONF.replace('@WS@', str(cls.ws_port)).replace('@RAW@', str(cls.raw.port))
                .replace('@TLSPORT@', str(cls.tls_port)).replace('@CRT@', cls.crt)
                .replace('@KEY@', key).replace('@CGI@', cgi).replace('@PHPBK@', phpbk)
                .replace('@PHPLOC@', phploc))
        harness.start_class_server(cls, conf=conf, workers=1, access_log=True,
                                   files={'static.txt': 'a static file\n'})
        if not harness.Server.wait_for(lambda: cls.try_connect(cls.tls_port), 20):
            raise RuntimeError('no TLS listener')

    @staticmethod
    def try_connect(port):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return True
        except OSError:
            return False

    @staticmethod
    def stop_proc(p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    # -- helpers
    def uri(self, path, tls=False):
        if tls:
            return 'wss://127.0.0.1:%d%s' % (self.tls_port, path)
        return 'ws://127.0.0.1:%d%s' % (self.port, path)

    def run_async(self, coro, timeout=120):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    def connect(self, path, tls=False, **kw):
        kw.setdefault('max_size', None)
        kw.setdefault('ping_interval', None)
        if tls:
            ctx = ssl.create_default_context(cafile=self.crt)
            kw['ssl'] = ctx
        return websockets.connect(self.uri(path, tls), open_timeout=30, close_timeout=30, **kw)

    def log_tail(self):
        return ('\n--- portico log ---\n' + self.srv.stderr_text()[-3000:] +
                '\n--- access log ---\n' + self.srv.access_log_text()[-2000:])

    def event_for(self, path, pred=lambda e: True):
        found = []

        def look():
            try:
                with open(self.events) as f:
                    for line in f:
                        e = json.loads(line)
                        if e['path'] == path and pred(e):
                            found.append(e)
                            return True
            except OSError:
                pass
            return False
        harness.Server.wait_for(look, 30)
        return found[0] if found else None

    def raw_conn(self, timeout=60):
        return harness.connect(self.port, timeout=timeout)

    def worker_rss(self):
        pids = self.srv.worker_pids()
        self.assertEqual(len(pids), 1)
        return pids[0], harness.proc_status(pids[0], 'VmRSS')

    def tunnels(self):
        st, _, body = harness.request(self.port, 'GET', '/status?format=json', timeout=30)
        self.assertEqual(st, 200, body)
        return json.loads(body)['tunnels']

    # -- WebSocket through the proxy
    def test_open_tunnels_are_counted_on_the_status_page(self):
        opened = self.tunnels()['opened']
        async def go():
            ws = await self.connect('/ws/echo?who=counted')
            await ws.send('one')
            await ws.recv()
            # the tunnel is open while the status page is asked
            t = await asyncio.get_running_loop().run_in_executor(None, self.tunnels)
            await ws.close()
            return t
        t = self.run_async(go())
        self.assertGreaterEqual(t['open'], 1)
        self.assertEqual(t['opened'], opened + 1)
        self.assertTrue(harness.Server.wait_for(lambda: self.tunnels()['open'] == 0, 30),
                        self.tunnels())
        st, _, body = harness.request(self.port, 'GET', '/status?format=prometheus', timeout=30)
        self.assertIn(b'portico_tunnels_open 0', body)
        self.assertIn(b'portico_tunnels_opened_total %d' % (opened + 1), body)
        st, _, body = harness.request(self.port, 'GET', '/status', timeout=30)
        self.assertIn(b'tunnels: open 0, opened %d' % (opened + 1), body)

    def test_text_and_binary_messages_are_echoed(self):
        async def go():
            async with self.connect('/ws/echo') as ws:
                await ws.send('hello, tunnel')
                self.assertEqual(await ws.recv(), 'hello, tunnel')
                blob = bytes(range(256)) * 40
                await ws.send(blob)
                self.assertEqual(await ws.recv(), blob)
                await ws.send('')
                self.assertEqual(await ws.recv(), '')
        self.run_async(go())

    def test_handshake_reaches_the_upstream_with_upgrade_and_forwarding_fields(self):
        async def go():
            async with self.connect('/ws/headers') as ws:
                return json.loads(await ws.recv())
        h = self.run_async(go())
        self.assertEqual(h['upgrade'], 'websocket')
        self.assertEqual(h['connection'].lower(), 'upgrade')
        self.assertEqual(h['x-forwarded-for'], '127.0.0.1')
        self.assertEqual(h['x-forwarded-proto'], 'http')
        self.assertIn('sec-websocket-key', h)

    def test_16mib_frame_both_ways(self):
        big = os.urandom(16 << 20)

        async def go():
            async with self.connect('/ws/echo') as ws:
                await ws.send(big)
                return await ws.recv()
        self.assertTrue(self.run_async(go()) == big, 'the 16 MiB message came back changed')

    def test_many_tunnels_at_once(self):
        n = 60

        async def one(i):
            async with self.connect('/ws/echo') as ws:
                for k in range(3):
                    msg = os.urandom(1000 * (i % 7) + k)
                    await ws.send(msg)
                    if await ws.recv() != msg:
                        return False
                await ws.send('tunnel %d' % i)
                return await ws.recv() == 'tunnel %d' % i

        async def go():
            return await asyncio.gather(*[one(i) for i in range(n)])
        self.assertEqual(self.run_async(go()), [True] * n)

    def test_over_tls(self):
        blob = os.urandom(4 << 20)

        async def go():
            async with self.connect('/ws/echo', tls=True) as ws:
                await ws.send('over tls')
                self.assertEqual(await ws.recv(), 'over tls')
                await ws.send(blob)
                return await ws.recv()
        self.assertTrue(self.run_async(go()) == blob, 'the 4 MiB message came back changed')

    def test_idle_tunnel_is_closed_after_tunnel_timeout(self):
        async def go():
            async with self.connect('/idle/echo') as ws:
                await ws.send('once')
                self.assertEqual(await ws.recv(), 'once')
                try:
                    await asyncio.wait_for(ws.recv(), 60)
                except websockets.ConnectionClosed:
                    return 'closed'
                return 'still open'
        self.assertEqual(self.run_async(go()), 'closed', self.log_tail())
        self.assertTrue(self.srv.wait_for_log(r'tunnel: nothing moved for tunnel_timeout', 20),
                        self.log_tail())
        # the upstream's side was closed too
        self.assertIsNotNone(self.event_for('/idle/echo'), 'the upstream never saw the end')
        self.assertTrue(harness.Server.wait_for(lambda: re.search(
            r'"GET /idle/echo HTTP/1.1" 101 \d+', self.srv.access_log_text()), 20),
            self.log_tail())

    def test_upstream_closing_reaches_the_client_and_the_access_log(self):
        async def go():
            async with self.connect('/ws/close') as ws:
                await ws.send('bye?')
                try:
                    await ws.recv()
                except websockets.ConnectionClosed as e:
                    return e.code, e.reason
        self.assertEqual(self.run_async(go()), (4001, 'server says bye'))
        # the line is written when the tunnel ends: status 101, and the bytes
        # to the client after the 101's head (the close frame)
        pat = r'"GET /ws/close HTTP/1.1" 101 (\d+)'
        harness.Server.wait_for(lambda: re.search(pat, self.srv.access_log_text()), 20)
        m = re.search(pat, self.srv.access_log_text())
        self.assertTrue(m, self.log_tail())
        self.assertGreater(int(m.group(1)), 0)

    def test_client_closing_reaches_the_upstream(self):
        async def go():
            ws = await self.connect('/ws/echo?who=closer')
            await ws.send('x' * 10)
            await ws.recv()
            await ws.close(code=4002, reason='client says bye')
        self.run_async(go())
        e = self.event_for('/ws/echo', lambda e: e['code'] == 4002)
        self.assertIsNotNone(e, 'the upstream did not see the client close with 4002')
        self.assertEqual(e['got'], 10)

    def test_non_101_answer_is_a_plain_response_and_the_connection_goes_on(self):
        s = self.raw_conn()
        try:
            s.sendall(upgrade_request('/ws/plain'))
            r = harness.read_response(s)
            self.assertEqual(r.status, 403)
            self.assertEqual(r.body, b'no upgrade here\n')
            self.assertEqual(r.header('X-From'), 'ws_echo')
            self.assertIsNone(r.header('Upgrade'))
            s.sendall(b'GET /static.txt HTTP/1.1\r\nHost: t\r\n\r\n')
            r = harness.read_response(s)
            self.assertEqual((r.status, r.body), (200, b'a static file\n'))
        finally:
            s.close()

    def test_location_with_upgrade_false_passes_no_upgrade(self):
        async def go():
            try:
                async with self.connect('/noup/echo'):
                    return 101
            except websockets.InvalidStatusCode as e:
                return e.status_code
        # the server sees a plain GET: 426 Upgrade Required (or a 400)
        self.assertIn(self.run_async(go()), (400, 426))

    def test_http10_upgrade_is_not_tunnelled(self):
        s = self.raw_conn()
        try:
            s.sendall(upgrade_request('/ws/echo', '1.0'))
            head, _ = read_head(s)
        finally:
            s.close()
        self.assertNotIn(' 101 ', head.split('\r\n')[0], head)

    # -- flow control
    def test_slow_client_reader_keeps_the_worker_memory_bounded(self):
        pid, before = self.worker_rss()
        s = self.raw_conn(timeout=120)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(upgrade_request('/ws/push?mb=64'))
            head, rest = read_head(s)
            self.assertIn(' 101 ', head.split('\r\n')[0], head)
            # nobody reads: the upstream pushes 64 MiB as fast as it is let
            time.sleep(4)
            grown = harness.proc_status(pid, 'VmRSS') - before
            self.assertLess(grown, 16 * 1024, 'the worker grew by %d KiB' % grown)
            fr = FrameReader(s, rest)
            total = 0
            while True:
                op, payload = fr.frame()
                if op == 1:
                    self.assertEqual(payload, b'done')
                    break
                self.assertEqual(op, 2)
                total += len(payload)
            self.assertEqual(total, 64 << 20)
        finally:
            s.close()

    def test_slow_upstream_reader_keeps_the_worker_memory_bounded(self):
        pid, before = self.worker_rss()
        s = self.raw_conn(timeout=120)
        try:
            s.sendall(upgrade_request('/ws/hold'))
            head, _ = read_head(s)
            self.assertIn(' 101 ', head.split('\r\n')[0], head)
            flen = len(ws_frame(b'u' * (1 << 20)))
            data = memoryview(ws_frame(b'u' * (1 << 20)) * 64)
            # push until nothing moves for 2 s: the upstream reads nothing
            s.setblocking(False)
            off = 0
            while off < len(data):
                if not select.select([], [s], [], 2)[1]:
                    break
                try:
                    off += s.send(data[off:off + (1 << 20)])
                except BlockingIOError:
                    pass
            self.assertLess(off, len(data), '64 MiB went into an upstream that reads nothing')
            grown = harness.proc_status(pid, 'VmRSS') - before
            self.assertLess(grown, 16 * 1024, 'the worker grew by %d KiB' % grown)
            # the upstream reads on: the cut frame is completed, nothing is lost
            open(self.events + '.gate', 'w').close()
            s.settimeout(120)
            frames = (off + flen - 1) // flen
            s.sendall(data[off:frames * flen])
            s.sendall(ws_frame(b'end', 1))
            op, payload = FrameReader(s).frame()
        finally:
            s.close()
        self.assertEqual((op, payload), (1, b'got %d' % (frames << 20)))

    # -- another protocol, bytes ahead, half-close
    def test_raw_upgrade_with_bytes_ahead_and_half_close_both_ways(self):
        s = self.raw_conn()
        try:
            # the client's first bytes ride behind its request, before any 101
            ahead = b'A' * 5000
            s.sendall(b'GET /raw/x HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n'
                      b'Upgrade: halfclose/1\r\n\r\n' + ahead)
            head, rest = read_head(s)
            self.assertIn(' 101 ', head.split('\r\n')[0], head)
            self.assertIn('upgrade: halfclose/1', head.lower())
            self.assertIn('connection: upgrade', head.lower())
            more = os.urandom(300000)
            s.sendall(more)
            # our end goes on to the upstream, which answers after it
            s.shutdown(socket.SHUT_WR)
            data, reset = harness.recv_to_end(s, 60)
        finally:
            s.close()
        # the upstream's end reaches us as a FIN after its last bytes
        self.assertFalse(reset)
        self.assertEqual(rest + data, b'hello from upstream\ngot %d' % (len(ahead) + len(more)))
        self.assertIn('upgrade: halfclose/1', self.raw.heads[-1].lower())

    def test_101_without_upgrade_field_is_a_502(self):
        s = self.raw_conn()
        try:
            s.sendall(b'GET /raw/noupgrade HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n'
                      b'Upgrade: halfclose/1\r\n\r\n')
            r = harness.read_response(s)
        finally:
            s.close()
        self.assertEqual(r.status, 502)
        self.assertTrue(self.srv.wait_for_log(r'101 Switching Protocols without Upgrade', 20),
                        self.log_tail())

    def test_open_tunnel_survives_a_reload(self):
        async def go():
            async with self.connect('/ws/echo') as ws:
                await ws.send('before')
                self.assertEqual(await ws.recv(), 'before')
                old = set(self.srv.worker_pids())
                self.srv.signal(signal.SIGHUP)
                # a new generation of workers starts; the old one keeps the tunnel
                self.assertTrue(harness.Server.wait_for(
                    lambda: set(self.srv.worker_pids()) - old, 30), 'no new worker')
                await ws.send('after the reload')
                self.assertEqual(await ws.recv(), 'after the reload')
            async with self.connect('/ws/echo') as ws:
                await ws.send('new worker')
                self.assertEqual(await ws.recv(), 'new worker')
            return old
        old = self.run_async(go())
        # once its last tunnel ended, the old worker exits
        self.assertTrue(harness.Server.wait_for(
            lambda: not (set(self.srv.worker_pids()) & old), 30), self.log_tail())

    # -- what must not tunnel
    def test_static_location_ignores_upgrade(self):
        s = self.raw_conn()
        try:
            s.sendall(upgrade_request('/static.txt'))
            r = harness.read_response(s)
        finally:
            s.close()
        self.assertEqual((r.status, r.body), (200, b'a static file\n'))
        self.assertIsNone(r.header('Upgrade'))

    def test_cgi_status_101_is_a_502(self):
        s = self.raw_conn()
        try:
            s.sendall(upgrade_request('/cgi-bin/up101.cgi'))
            r = harness.read_response(s)
        finally:
            s.close()
        self.assertEqual(r.status, 502, r)
        self.assertIsNone(r.header('Upgrade'))

    def test_fastcgi_status_101_is_a_502(self):
        if not self.fpm:
            self.skipTest('php-fpm is not installed')
        s = self.raw_conn()
        try:
            s.sendall(upgrade_request('/up101.php'))
            r = harness.read_response(s)
        finally:
            s.close()
        self.assertEqual(r.status, 502, r)
        self.assertIsNone(r.header('Upgrade'))


if __name__ == '__main__':
    harness.main()
