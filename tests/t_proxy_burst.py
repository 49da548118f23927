"""t_proxy_burst.py: a burst of clients against an event-driven upstream
that is slow to accept new connections (its CPU busy elsewhere), with no
max_conns and a small queue.

A request on a new connection that goes unanswered while other
connections are served looks like a server whose processes are all pinned
by idle pooled connections (PHP-FPM), and portico caps itself at the
connections answered so far. An event-driven server proves that guess
wrong by answering more connections at once than the cap: the cap is
lifted. A learned cap is a guess, so it never turns a request away with
"the queue is full": requests wait, within queue_timeout, as they would
in the server's listen backlog. Before this, 256 wrk connections through
portico to an nginx upstream sharing a CPU with wrk got 503 for most of
their requests, and the cap fell to 2 in 20 ms while the idle pools were
swept.

The upstream here (tests/lib is not needed: it is a few lines below)
serves every accepted connection at once, keep-alive, and accepts one new
connection per ACCEPT_EVERY seconds. No test asserts a timing: waits are
generous upper bounds."""

import os
import re
import selectors
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

ACCEPT_EVERY = 0.15  # more than the longest stall wait (100 ms)
CLIENTS = 24
ROUNDS = 8
ANSWER = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok'


def ask_until(port, path, stop, bad):
    """Keep-alive GETs of path until stop is set, on a new connection
    whenever one closes (keepalive_requests); each answer that is not 200
    'ok', and an exception, goes to bad."""
    try:
        s = harness.connect(port, timeout=60)
        while not stop.is_set():
            s.sendall(b'GET %s HTTP/1.1\r\nHost: t\r\n\r\n' % path.encode())
            r = harness.read_response(s)
            if (r.status, r.body) != (200, b'ok'):
                bad.append((r.status, r.body[:200]))
            if (r.header('connection') or '').lower() == 'close':
                s.close()
                s = harness.connect(port, timeout=60)
        s.close()
    except Exception as e:  # noqa: BLE001 - reported by the caller
        bad.append(repr(e))


class ThreadUpstream:
    """A test server in one thread: a non-blocking listener and the
    connections it accepted, in a selector with their unparsed bytes.
    Subclasses say what a turn of the thread does (turn: when to accept,
    pump) and what a connection's bytes ask (parse, which returns what it
    left). Counts the connections accepted, and open now and at once."""

    def __init__(self, lsock):
        self.lsock = lsock
        self.lsock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.bufs = {}
        self.accepted = self.open_now = self.max_open = 0
        self.stop_flag = False
        self.thread = threading.Thread(target=self.run, daemon=True)

    @property
    def conns(self):
        return list(self.bufs)

    def run(self):
        while not self.stop_flag:
            self.turn()

    def accept_some(self, most):
        for _ in range(most):
            try:
                c, _ = self.lsock.accept()
            except BlockingIOError:
                return
            c.setblocking(False)
            self.bufs[c] = b''
            self.sel.register(c, selectors.EVENT_READ)
            self.accepted += 1
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)

    def pump(self, wait):
        """Reads what comes within wait seconds; a connection its peer
        closed is closed."""
        for key, _ in self.sel.select(wait):
            c = key.fileobj
            try:
                data = c.recv(65536)
            except OSError:
                data = b''
            if not data:
                self.sel.unregister(c)
                del self.bufs[c]
                c.close()
                self.open_now -= 1
                continue
            self.bufs[c] = self.parse(c, self.bufs[c] + data)

    def stop(self):
        self.stop_flag = True
        self.thread.join(10)
        for c in list(self.bufs):
            c.close()
        self.lsock.close()


def tcp_listener():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', 0))
    ls.listen(1024)
    return ls


def heads(buf):
    """The complete request heads in buf (bodies are not sent here), and
    what is left."""
    n = buf.count(b'\r\n\r\n')
    return n, buf.rsplit(b'\r\n\r\n', 1)[1] if n else buf


class SlowAcceptUpstream(ThreadUpstream):
    """An HTTP/1.1 keep-alive server: every accepted connection is served
    as soon as a request is complete; the listener is looked at only every
    ACCEPT_EVERY seconds, one accept each time."""

    def __init__(self, gate=None):
        # gate: an Event; until it is set only the first connection is
        # accepted and only the first request answered (the later ones
        # held, so that they cannot all go one after another over the
        # first connection), then every one waiting at once
        super().__init__(tcp_listener())
        self.port = self.lsock.getsockname()[1]
        self.gate = gate
        self.answered = 0
        self.held = []
        self.next_accept = 0.0
        self.thread.start()

    def opened(self):
        return self.gate is not None and self.gate.is_set()

    def turn(self):
        now = time.monotonic()
        if self.opened():
            self.accept_some(1024)  # at once, every turn
            for c in self.held:
                c.sendall(ANSWER)
                self.answered += 1
            self.held = []
        elif now >= self.next_accept:
            self.next_accept = now + ACCEPT_EVERY
            if self.gate is None or self.accepted == 0:
                self.accept_some(1)
        self.pump(0.001 if self.opened() else max(0.0, min(0.01, self.next_accept - now)))

    def parse(self, c, buf):
        n, rest = heads(buf)
        for _ in range(n):
            if self.gate is not None and not self.opened() and self.answered >= 1:
                self.held.append(c)
                continue
            c.sendall(ANSWER)
            self.answered += 1
        return rest


class SlowAcceptBurst(unittest.TestCase):
    def test_burst_is_served_whole_while_a_cap_is_learned(self):
        up = SlowAcceptUpstream()
        self.addCleanup(up.stop)
        conf = '''
log_level = "info";
backends = ( { name = "app"; servers = ( "127.0.0.1:%d" ); queue = 2; } );
locations = ( { prefix = "/"; handler = "proxy"; backend = "app"; } );
''' % up.port
        srv = harness.Server(conf=conf, workers=1, access_log=True)
        srv.start()
        self.addCleanup(srv.stop)
        # one connection answered and pooled first: the burst's new
        # connections are then the ones that wait while it is served
        st, _, body = harness.request(srv.port, 'GET', '/warm', timeout=30)
        self.assertEqual((st, body), (200, b'ok'))
        results, lock = [], threading.Lock()
        go = threading.Barrier(CLIENTS)

        def client(i):
            got = []
            try:
                s = harness.connect(srv.port, timeout=60)
                go.wait(30)
                for k in range(ROUNDS):
                    s.sendall(b'GET /b/%d/%d HTTP/1.1\r\nHost: t\r\n\r\n' % (i, k))
                    r = harness.read_response(s)
                    got.append((r.status, r.body))
                s.close()
            except Exception as e:  # noqa: BLE001 - reported below
                got.append(repr(e))
            with lock:
                results.append(got)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        log = srv.stderr_text()
        want = [[(200, b'ok')] * ROUNDS] * CLIENTS
        self.assertEqual(results, want, log[-3000:])
        # its count goes up after the answer went out
        srv.wait_for(lambda: up.answered >= CLIENTS * ROUNDS + 1, 15)
        self.assertEqual(up.answered, CLIENTS * ROUNDS + 1)
        # the stall was seen and a cap learned from it (the shape this
        # test builds), yet nobody was turned away
        self.assertTrue(srv.wait_for_log(r'proxy app \([^)]*\): a request waited on a new '
                                         r'connection while \d+ others were served', 10), log)
        self.assertNotIn('queue is full', log)
        n = CLIENTS * ROUNDS + 1  # a line is written after its response went out
        srv.wait_for(lambda: len(re.findall(r'" (\d{3}) ', srv.access_log_text())) >= n, 15)
        statuses = re.findall(r'" (\d{3}) ', srv.access_log_text())
        self.assertEqual(statuses, ['200'] * n)

    def test_a_learned_cap_grows_back_in_doubling_steps(self):
        """The stall is seen (cap 1: the warm-up's connection), then the
        server accepts at once from then on. With clients keeping requests
        queued the cap grows back by 1, 2, 4, ... a second: steps of more
        than one connection, which an increase by one never takes."""
        gate = threading.Event()
        up = SlowAcceptUpstream(gate)
        self.addCleanup(up.stop)
        self.addCleanup(gate.set)
        conf = '''
log_level = "debug";
backends = ( { name = "app"; servers = ( "127.0.0.1:%d" ); } );
locations = ( { prefix = "/"; handler = "proxy"; backend = "app"; } );
''' % up.port
        srv = harness.Server(conf=conf, workers=1)
        srv.start()
        self.addCleanup(srv.stop)
        st, _, body = harness.request(srv.port, 'GET', '/warm', timeout=30)
        self.assertEqual((st, body), (200, b'ok'))
        socks = []
        for i in range(8):
            s = harness.connect(srv.port, timeout=60)
            self.addCleanup(s.close)
            s.sendall(b'GET /b/%d HTTP/1.1\r\nHost: t\r\n\r\n' % i)
            socks.append(s)
        self.assertTrue(srv.wait_for_log(r'proxy app \([^)]*\): a request waited on a new '
                                         r'connection while 1 others were served: at most 1 '
                                         r'connections', 30), srv.stderr_text())
        gate.set()
        got = [(r.status, r.body) for r in (harness.read_response(s) for s in socks)]
        self.assertEqual(got, [(200, b'ok')] * 8, srv.stderr_text()[-3000:])
        stop, bad = threading.Event(), []

        def grown():
            return [int(v) for v in re.findall(r'app \([^)]*\): the learned cap grows to (\d+)',
                                               srv.stderr_text())]
        threads = [threading.Thread(target=ask_until, args=(srv.port, '/g/%d' % i, stop, bad))
                   for i in range(16)]
        for t in threads:
            t.start()
        try:
            reached = srv.wait_for(lambda: any(v >= 8 for v in grown()), 60)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(bad, [], srv.stderr_text()[-4000:])
        caps = grown()
        self.assertTrue(reached, (caps, srv.stderr_text()[-3000:]))
        steps = [b - a for a, b in zip([1] + caps, caps)]
        self.assertTrue(any(d >= 2 for d in steps), (caps, srv.stderr_text()[-3000:]))


class HeldUnixUpstream(ThreadUpstream):
    """An HTTP/1.1 server on a Unix socket with a listen backlog of one:
    it accepts only while `accepting` is set and answers only once `gate`
    is set, so its backlog can be filled at will."""

    def __init__(self, path):
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(1)
        super().__init__(ls)
        self.accepting, self.gate = threading.Event(), threading.Event()
        self.served = 0
        self.thread.start()

    def turn(self):
        if self.accepting.is_set():
            self.accept_some(1)
        if self.gate.is_set():
            self.pump(0.002)
        else:
            time.sleep(0.002)

    def parse(self, c, buf):
        n, rest = heads(buf)
        for _ in range(n):
            c.sendall(ANSWER)
            self.served += 1
        return rest


class FullBacklog(unittest.TestCase):
    """A Unix socket's full listen backlog (EAGAIN from connect) is an
    overloaded server, not a dead one: it is never marked down for it.
    With connections of this worker on it, the request waits in the queue
    for one of them (the cap is learned at that many); with none, it is
    503 and the next request, once the backlog drained, is served. Before,
    one full backlog took the only server out for fail_timeout: 502, then
    503 "no live server" for everything (256 wrk clients against 4 uWSGI
    processes: 143,964 of 144,227 requests)."""

    def setUp(self):
        d = tempfile.mkdtemp(prefix='pt-burst-')
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        self.path = os.path.join(d, 'up.sock')
        self.up = HeldUnixUpstream(self.path)
        self.addCleanup(self.up.stop)
        os.chmod(self.path, 0o777)
        conf = '''
log_level = "info";
backends = ( { name = "app"; servers = ( "unix:%s" ); queue = 0; } );
locations = ( { prefix = "/"; handler = "proxy"; backend = "app"; } );
''' % self.path
        self.srv = harness.Server(conf=conf, workers=1, access_log=True)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def send(self, name):
        s = harness.connect(self.srv.port, timeout=60)
        self.addCleanup(s.close)
        s.sendall(b'GET /%s HTTP/1.1\r\nHost: t\r\n\r\n' % name.encode())
        return s

    def test_requests_beyond_a_full_backlog_wait_for_a_connection(self):
        self.up.accepting.set()
        held = [self.send('held%d' % i) for i in range(2)]
        self.assertTrue(self.srv.wait_for(lambda: len(self.up.conns) == 2, 30))
        self.up.accepting.clear()
        # the backlog takes what it takes, then connects fail with EAGAIN
        more = [self.send('more%d' % i) for i in range(6)]
        self.assertTrue(self.srv.wait_for_log(r'proxy app \(unix:[^)]*\): connect failed: '
                                              r'backlog full \(overloaded\); at most \d+ '
                                              r'connections from this worker', 30),
                        self.srv.stderr_text())
        self.up.accepting.set()
        self.up.gate.set()
        got = [(r.status, r.body) for r in (harness.read_response(s) for s in held + more)]
        self.assertEqual(got, [(200, b'ok')] * 8, self.srv.stderr_text()[-3000:])
        log = self.srv.stderr_text()
        self.assertNotIn('marked down', log)
        self.assertNotIn('no live server', log)

    def test_a_full_backlog_alone_is_503_and_the_server_stays_up(self):
        fill = []
        self.addCleanup(lambda: [c.close() for c in fill])
        harness.fill_unix_backlog(self.path, fill)
        st, _, _ = harness.request(self.srv.port, 'GET', '/first', timeout=30)
        self.assertEqual(st, 503, self.srv.stderr_text())
        self.assertTrue(self.srv.wait_for_log(r'proxy app \(unix:[^)]*\): connect failed: '
                                              r'backlog full \(overloaded\), client', 10),
                        self.srv.stderr_text())
        for c in fill:
            c.close()
        self.up.accepting.set()
        self.up.gate.set()
        # closed before being accepted, they stay queued until accepted
        self.assertTrue(self.srv.wait_for(lambda: self.up.accepted >= len(fill), 30))
        st, _, body = harness.request(self.srv.port, 'GET', '/second', timeout=30)
        self.assertEqual((st, body), (200, b'ok'), self.srv.stderr_text())
        self.assertNotIn('marked down', self.srv.stderr_text())


def fcgi_record(kind, rid, content):
    pad = (-len(content)) % 8
    return struct.pack('>BBHHBB', 1, kind, rid, len(content), pad, 0) + content + b'\0' * pad


class GatedFcgi(ThreadUpstream):
    """A FastCGI server that answers FCGI_GET_VALUES with FCGI_MAX_CONNS =
    MAXC and every request with "ok"; while `gate` is clear it accepts
    nothing and holds its answers (but the first)."""
    MAXC = 2

    def __init__(self):
        super().__init__(tcp_listener())
        self.port = self.lsock.getsockname()[1]
        self.gate = threading.Event()
        self.gate.set()
        self.answered = 0
        self.held = []
        self.thread.start()

    def answer(self, c, rid):
        out = b'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok'
        c.sendall(fcgi_record(6, rid, out) + fcgi_record(6, rid, b'') +
                  fcgi_record(3, rid, struct.pack('>IB3x', 0, 0)))
        self.answered += 1

    def turn(self):
        if self.gate.is_set():
            for c, rid in self.held:
                self.answer(c, rid)
            self.held = []
            self.accept_some(1024)
        self.pump(0.002)

    def parse(self, c, buf):
        while len(buf) >= 8:
            _, kind, rid, clen, plen, _ = struct.unpack('>BBHHBB', buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            buf = buf[8 + clen + plen:]
            if kind == 9:  # FCGI_GET_VALUES
                v = str(self.MAXC).encode()
                c.sendall(fcgi_record(10, 0, bytes([14, len(v)]) + b'FCGI_MAX_CONNS' + v))
            elif kind == 5 and clen == 0:  # the end of FCGI_STDIN
                if self.gate.is_set() or self.answered == 0:
                    self.answer(c, rid)
                else:
                    self.held.append((c, rid))
        return buf

    def stop(self):
        self.gate.set()
        super().stop()


class ProbedCap(unittest.TestCase):
    """A cap the server told (FCGI_MAX_CONNS) is not a learned one: after a
    stall, queued demand never grows past it (it was grown 1, 2, 4, ... to
    no cap at all, the FastCGI server then taking more connections than it
    said it could)."""

    def test_a_told_cap_is_not_grown_past(self):
        up = GatedFcgi()
        self.addCleanup(up.stop)
        conf = '''
log_level = "debug";
backends = ( { name = "gv"; servers = ( "127.0.0.1:%d" ); get_values = true; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "gv"; } );
''' % up.port
        srv = harness.Server(conf=conf, workers=1)
        srv.start()
        self.addCleanup(srv.stop)
        st, _, body = harness.request(srv.port, 'GET', '/app/warm', timeout=30)
        self.assertEqual((st, body), (200, b'ok'), srv.stderr_text())
        self.assertTrue(srv.wait_for_log(r'FCGI_MAX_CONNS=2 ', 10), srv.stderr_text())
        # a new connection nobody accepts while the pooled one is served
        up.gate.clear()
        socks = []
        for i in range(4):
            s = harness.connect(srv.port, timeout=60)
            self.addCleanup(s.close)
            s.sendall(b'GET /app/b%d HTTP/1.1\r\nHost: t\r\n\r\n' % i)
            socks.append(s)
        self.assertTrue(srv.wait_for_log(r'a request waited on a new connection', 30),
                        srv.stderr_text())
        up.gate.set()
        self.assertEqual([harness.read_response(s).status for s in socks], [200] * 4)
        up.max_open = up.open_now
        stop, bad = threading.Event(), []

        threads = [threading.Thread(target=ask_until, args=(srv.port, '/app/g%d' % i, stop, bad))
                   for i in range(8)]
        for t in threads:
            t.start()
        # queued demand for several grow ticks (one a second); a cap grown
        # past 2 shows in the log and at the server
        time.sleep(4)
        stop.set()
        for t in threads:
            t.join(60)
        grown = re.findall(r'gv \([^)]*\): the learned cap grows to (\d+)', srv.stderr_text())
        self.assertEqual(bad, [], srv.stderr_text()[-3000:])
        self.assertTrue(all(0 < int(v) <= 2 for v in grown), grown)
        self.assertLessEqual(up.max_open, 2, srv.stderr_text()[-3000:])


if __name__ == '__main__':
    harness.main()