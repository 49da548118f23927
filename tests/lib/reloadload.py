"""reloadload.py: the keep-alive load and the checks shared by the graceful
stop tests (t_reload_ka.py, plain HTTP; t_tls_reload.py, over TLS): client
threads sending their next request as soon as they have read a response,
every request accounted for across HUPs and a QUIT, and the libfcgi sample
app those tests run on a Unix socket of their own. Nothing here asserts on
timings: every wait is a generous upper bound."""

import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import harness

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(TESTS, '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
HELLO_RE = re.compile(rb'^Hello from FastCGI: pid \d+, request \d+\n$')
CGI_BODY = b'hello from sh: GET \n'          # tests/cgi/hello-sh.cgi
PHP_BODY = b'hello from php-fpm GET '        # tests/fcgi/hello.php


def wait_for(pred, timeout):
    return harness.Server.wait_for(pred, timeout)


def gateway_answer(path, body):
    """For the CGI, FastCGI and PHP paths the reload tests share: is body
    that program's answer? None for any other path (the caller decides)."""
    if path.startswith('/cgi-bin/'):
        return body == CGI_BODY
    if path.startswith('/fcgi/'):
        return HELLO_RE.match(body) is not None
    if path.endswith('.php'):
        return body == PHP_BODY
    return None


class Load:
    """Client threads, each on one (mode, path):
    'ka':    http.client keep-alive, the next request at once; a response
             with "Connection: close" makes it connect anew (unless no_new
             is set: then it stops);
    'new':   a new connection per request (over TLS a full handshake: the
             context keeps no sessions), kept-alive framing;
    'close': a new connection per request with "Connection: close", read to
             the end of the stream.
    ctx: an ssl.SSLContext for TLS, None for plain HTTP. expected(path,
    status, body) judges an answer. Every request is counted: answered as
    expected (ok, per (mode, path)), answered wrongly (bad), or failed
    (mode, path, nth on its connection, made before no_new, error)."""

    def __init__(self, port, clients, expected, ctx=None, limit=120):
        self.port = port
        self.clients = clients
        self.expected = expected
        self.ctx = ctx
        self.stop = threading.Event()
        self.no_new = threading.Event()  # set before SIGQUIT: no new connections
        self.lock = threading.Lock()
        self.ok = {}
        self.sent = 0
        self.bad = []
        self.failed = []
        self.conns = 0
        self.limit = limit  # seconds a client runs at most, whatever happens
        self.threads = [threading.Thread(target=self.client, args=c, daemon=True)
                        for c in clients]

    def _count(self, mode, path, status, body):
        with self.lock:
            if self.expected(path, status, body):
                self.ok[(mode, path)] = self.ok.get((mode, path), 0) + 1
            else:
                self.bad.append((mode, path, status, body[:200]))

    def _fail(self, mode, path, nth, before, e):
        with self.lock:
            self.failed.append((mode, path, nth, before, repr(e)))

    def _connect(self):
        """A socket (TLS when ctx is set), and whether its TCP connection
        was made before no_new; (None, None) when the connect failed
        (nothing was sent: not a lost request, the listener is gone after
        QUIT); (error, before) when the TLS handshake failed."""
        try:
            s = socket.create_connection(('127.0.0.1', self.port), 60)
        except OSError:
            return None, None
        before = not self.no_new.is_set()
        if self.ctx is None:
            return s, before
        try:
            return self.ctx.wrap_socket(s), before
        except (OSError, ssl.SSLError) as e:
            s.close()
            return e, before

    def client(self, mode, path):
        conn = None
        nth = 0
        before = True
        deadline = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < deadline:
            if conn is None:
                if self.no_new.is_set():
                    return
                t, before = self._connect()
                if t is None:
                    time.sleep(0.01)
                    continue
                with self.lock:
                    self.conns += 1
                    self.sent += 1
                if isinstance(t, Exception):
                    self._fail(mode, path, 1, before, t)
                    continue
                if mode == 'close':
                    self.one_close(t, path, before)
                    continue
                conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=60)
                conn.sock = t
                nth = 1
            else:
                nth += 1
                with self.lock:
                    self.sent += 1
            try:
                conn.request('GET', path)
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException) as e:
                self._fail(mode, path, nth, before, e)
                conn.close()
                conn = None
                continue
            self._count(mode, path, r.status, body)
            if r.will_close or mode == 'new':
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def one_close(self, t, path, before):
        try:
            with t:
                t.sendall(b'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
                          % path.encode())
                data = b''
                while True:
                    b = t.recv(65536)
                    if not b:
                        break
                    data += b
        except (OSError, ssl.SSLError) as e:
            self._fail('close', path, 1, before, e)
            return
        rs = harness.parse_responses(data)
        if len(rs) != 1 or not rs[0].complete:
            with self.lock:
                self.bad.append(('close', path, 0, data[:200]))
            return
        self._count('close', path, rs[0].status, rs[0].body)

    def total(self):
        with self.lock:
            return sum(self.ok.values())

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(90)
        return not any(t.is_alive() for t in self.threads)

    def lost(self):
        """Failures a graceful stop must not cause: all but the first
        request of a connection made after no_new (its connect may have
        landed in the listen queue after the last listener was closed)."""
        return [f for f in self.failed if f[3] or f[2] > 1]

    def summary(self):
        kinds = {}
        for f in self.failed:
            kinds[(f[0], f[1])] = kinds.get((f[0], f[1]), 0) + 1
        return 'sent %d, ok %d %s, bad %d, failed %d %s on %d connections: %s %s' % (
            self.sent, self.total(), self.ok, len(self.bad), len(self.failed), kinds,
            self.conns, self.failed[:10], self.bad[:5])


def start_load(test, srv, ld, at_least, timeout=60):
    """Start ld (stopped at the test's cleanup) and wait until every client
    kind has been answered at_least times."""
    ld.start()
    test.addCleanup(ld.finish)
    kinds = set(ld.clients)
    test.assertTrue(wait_for(lambda: len(ld.ok) == len(kinds) and
                             min(ld.ok.values()) >= at_least, timeout),
                    ld.summary() + srv.stderr_text()[-2000:])
    return ld


def hups_answer_everything(test, srv, ld, hups, timeout=90):
    """hups reloads under ld, each waited for (the old generation gone and
    the clients going on), then every request sent was answered."""
    for i in range(hups):
        old = set(srv.worker_pids())
        before = ld.total()
        srv.signal(signal.SIGHUP)
        test.assertTrue(wait_for(
            lambda: len(re.findall(r'configuration reloaded', srv.stderr_text())) == i + 1 and
            not (old & set(srv.worker_pids())) and ld.total() > before + 100, timeout),
            'reload %d: %s\n%s' % (i + 1, ld.summary(), srv.stderr_text()[-3000:]))
    test.assertTrue(ld.finish(), 'a client thread hung')
    test.assertEqual((ld.failed, ld.bad), ([], []), ld.summary() + '\n' +
                     srv.stderr_text()[-3000:])
    test.assertEqual(ld.sent, ld.total(), ld.summary())


def quit_answers_everything(test, srv, ld, timeout=90):
    """Clients open no connection from now on; QUIT comes after, so a
    connection established before that point was queued or accepted by a
    worker before the stop: every request on it is answered."""
    ld.no_new.set()
    srv.signal(signal.SIGQUIT)
    test.assertTrue(wait_for(lambda: not srv.running, timeout),
                    'still running after QUIT: ' + ld.summary())
    test.assertTrue(ld.finish(), 'a client thread hung')
    test.assertEqual(srv.stop(), 0)
    test.assertEqual((ld.lost(), ld.bad), ([], []), ld.summary() + '\n' +
                     srv.stderr_text()[-3000:])
    test.assertEqual(ld.sent - len(ld.failed), ld.total(), ld.summary())


def defer_accept(test):
    """limits.defer_accept for test's server: "0" for a SIGQUIT test, the
    default otherwise. A stop closes the listeners, and with defer_accept
    a connection whose first bytes come after that was never accepted and
    gets a reset (portico.conf(5), as nginx's "deferred"); a client cannot
    tell whether its bytes came before, so the QUIT tests, which count
    every request on a connection made before the stop, run without it.
    HUPs keep the listeners, and run with the default."""
    return '0' if test._testMethodName.startswith('test_quit') else '30s'


def reap(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def start_fcgi_apps(test, path, n):
    """n processes of the libfcgi sample app cgi-bin/hello-fcgi on the Unix
    socket path (their fd 0), started by the test so they outlive every
    reload; stopped at the test's cleanup."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(128)
    apps = []
    for _ in range(n):
        p = subprocess.Popen([HELLO], stdin=ls.fileno(), stdout=subprocess.DEVNULL,
                             start_new_session=True)
        apps.append(p)
        test.addCleanup(reap, p)
    ls.close()
    return apps
