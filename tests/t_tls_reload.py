"""t_tls_reload.py: t_reload_ka.py over TLS (issue 16: a HUP loads renewed
certificates with zero failed requests; issue 22's rule for every
handler). Keep-alive HTTPS clients sending their next request as soon as
they have read a response, and clients making a new TLS connection (a full
handshake) per request, on static, CGI, FastCGI (libfcgi) and PHP-FPM
locations, across several HUPs and a QUIT. A connection accepted by an old
worker while its handshake is still under way, a keep-alive connection
whose next request is on its way, and a connection made before the stop
whose first request (or handshake) comes after the grace idle connections
get, are all answered. Orderly closes send close_notify. Every request is
counted; nothing asserts on timings."""

import os
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
import reloadload  # noqa: E402
from reloadload import HELLO  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

CONF = '''
workers = @WORKERS@;
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "@CRT@"; key = "@KEY@"; };
root = "@ROOT@";
limits = { keepalive_timeout = "30s"; shutdown_timeout = "30s"; defer_accept = "@DEFER@"; };
backends = ( { name = "hello";
               servers = ( { address = "unix:@BASE@/hello.sock"; max_conns = 4; } ); }
             @PHP_BACKEND@ );
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; },
              { prefix = "/fcgi/"; handler = "fastcgi"; backend = "hello"; }
              @PHP_LOCATION@ );
'''

STATIC_BODY = b'static over tls\n'


def make_cert(d):
    crt = os.path.join(d, 'tls.crt')
    key = os.path.join(d, 'tls.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                    '-days', '365', '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


def expected(path, status, body):
    if status != 200:
        return False
    known = reloadload.gateway_answer(path, body)
    return known if known is not None else body == STATIC_BODY


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class TlsGracefulReload(unittest.TestCase):
    WORKERS = 2
    HUPS = int(os.environ.get('PT_TLS_RELOAD_HUPS', '5'))

    def setUp(self):
        self.srv = harness.Server(conf='# filled below', docroot=False, workers=None, listen=[])
        base = self.srv.tmpdir
        self.root = os.path.join(base, 'www')
        self.cgi = os.path.join(base, 'cgi')
        os.makedirs(self.root)
        os.makedirs(self.cgi)
        with open(os.path.join(self.root, 'a.txt'), 'wb') as f:
            f.write(STATIC_BODY)
        shutil.copy(os.path.join(HERE, 'cgi', 'hello-sh.cgi'), self.cgi)
        os.chmod(os.path.join(self.cgi, 'hello-sh.cgi'), 0o755)
        certs = tempfile.mkdtemp(prefix='portico-tlsreload-')
        self.addCleanup(shutil.rmtree, certs, True)
        crt, key = make_cert(certs)
        # no session cache: every new connection is a full handshake
        self.ctx = ssl.create_default_context(cafile=crt)
        self.ctx.check_hostname = False
        # the libfcgi sample app, started here so it outlives every reload
        reloadload.start_fcgi_apps(self, os.path.join(base, 'hello.sock'), 4)
        php_be = php_loc = ''
        self.php = phpfpm.find_php_fpm() is not None
        if self.php:
            shutil.copy(os.path.join(HERE, 'fcgi', 'hello.php'), self.root)
            fpm = phpfpm.PhpFpm([phpfpm.Pool('www', max_children=4)])
            self.addCleanup(fpm.stop)
            fpm.start()
            php_be = (', { name = "php"; servers = ( { address = "%s"; max_conns = 4; } ); }'
                      % fpm.pool('www').address)
            php_loc = ', { extension = ".php"; handler = "fastcgi"; backend = "php"; }'
        self.srv.conf = (CONF.replace('@PHP_BACKEND@', php_be).replace('@PHP_LOCATION@', php_loc)
                         .replace('@WORKERS@', str(self.WORKERS)).replace('@BASE@', base)
                         .replace('@CRT@', crt).replace('@KEY@', key)
                         .replace('@DEFER@', reloadload.defer_accept(self))
                         .replace('@ROOT@', self.root).replace('@CGI@', self.cgi))
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.assertTrue(harness.Server.wait_for(
            lambda: len(self.srv.worker_pids()) == self.WORKERS, 30), self.srv.worker_pids())

    def load(self):
        paths = ['/cgi-bin/hello-sh.cgi', '/fcgi/hello', '/a.txt']
        if self.php:
            paths.append('/hello.php')
        clients = [('ka', p) for p in paths for _ in range(2)]
        clients += [('new', p) for p in paths]
        clients += [('close', '/a.txt'), ('close', '/cgi-bin/hello-sh.cgi')]
        ld = reloadload.Load(self.srv.port, clients, expected, ctx=self.ctx, limit=180)
        return reloadload.start_load(self, self.srv, ld, 3, 60)

    def test_hups_answer_every_https_request(self):
        reloadload.hups_answer_everything(self, self.srv, self.load(), self.HUPS, 90)

    def test_quit_answers_every_https_request_on_a_connection_made_before_it(self):
        reloadload.quit_answers_everything(self, self.srv, self.load(), 90)


class Handshake:
    """A TLS client driven by hand over a socket (ssl.MemoryBIO), so that a
    test can stop between any two of its flights."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname='localhost')

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def hello(self):
        """Send the ClientHello and read the server's first flight, kept
        unprocessed (the client's answer is not sent yet)."""
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.flush()
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError('closed before the server hello')
        self.inc.write(data)

    def finish(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError('closed during the handshake')
                self.inc.write(data)
        self.flush()

    def request(self, target, close=False):
        """One request with keep-alive framing (or Connection: close); the
        whole stream until the server closes, decrypted."""
        self.obj.write(b'GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n' %
                       (target.encode(), b'Connection: close\r\n' if close else b''))
        self.flush()
        plain = b''
        while True:
            try:
                got = self.obj.read(65536)
                if not got:
                    break
                plain += got
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                break
            data = self.sock.recv(65536)
            if not data:
                break
            self.inc.write(data)
        return plain


FRESH_CONF = '''
listen = [ "127.0.0.1:@PORT@" ];
tls_listen = [ "127.0.0.1:%d" ];
tls = { certificate = "%s"; key = "%s"; };
limits = { header_timeout = "60s"; shutdown_timeout = "60s"; defer_accept = "%s"; };
'''


class FreshBase(unittest.TestCase):
    """A connection the old worker accepted before the stop has not sent
    its (first) request yet: whenever the request comes within
    header_timeout, it is answered ("Connection: close"), over TLS whatever
    the state of its handshake, and over plain HTTP. The client waits well
    past the short grace an idle keep-alive connection gets."""

    PAUSE = 2.5  # longer than that grace (1s)
    # accepted before the stop: with limits.defer_accept a connection that
    # has sent nothing stays in the kernel (DeferredAtReload below)
    DEFER = '0'

    def setUp(self):
        certs = tempfile.mkdtemp(prefix='portico-tlsreload-')
        self.addCleanup(shutil.rmtree, certs, True)
        crt, key = make_cert(certs)
        self.ctx = ssl.create_default_context(cafile=crt)
        self.ctx.check_hostname = False
        self.tls_port = harness.free_port()
        self.srv = harness.Server(conf=FRESH_CONF % (self.tls_port, crt, key, self.DEFER),
                                  listen=[], files={'a.txt': STATIC_BODY})
        self.srv.start()
        self.addCleanup(self.srv.stop)
        # the TLS listener is up too
        self.assertTrue(harness.Server.wait_for(self.probe, 30))

    def probe(self):
        try:
            with socket.create_connection(('127.0.0.1', self.tls_port), 5):
                return True
        except OSError:
            return False

    def stop(self, sig):
        """The signal; back when the old worker has certainly begun its stop
        and its grace for idle connections is over."""
        old = set(self.srv.worker_pids())
        self.assertEqual(len(old), 1)
        self.srv.signal(sig)
        if sig == signal.SIGHUP:
            self.assertTrue(self.srv.wait_for_log(r'configuration reloaded', 30))
            self.assertTrue(harness.Server.wait_for(
                lambda: len(set(self.srv.worker_pids()) - old) == 1, 30))
        time.sleep(self.PAUSE)

    def check(self, data, sig):
        r = harness.read_response(data)
        self.assertEqual((r.status, r.body), (200, STATIC_BODY), self.srv.stderr_text()[-2000:])
        self.assertEqual((r.header('Connection') or '').lower(), 'close')
        if sig == signal.SIGQUIT:
            self.assertTrue(harness.Server.wait_for(lambda: not self.srv.running, 30))
            self.assertEqual(self.srv.stop(), 0)

    def tcp(self, port):
        s = socket.create_connection(('127.0.0.1', port), 60)
        self.addCleanup(s.close)
        # accepted by the worker that is about to stop (an accept wakes it
        # at once; the stop would take it from the queue anyway)
        time.sleep(0.3)
        return s

    def handshake_begun(self, sig):
        h = Handshake(self.tcp(self.tls_port), self.ctx)
        h.hello()
        self.stop(sig)
        h.finish()
        self.check(h.request('/a.txt'), sig)

    def handshake_not_begun(self, sig):
        h = Handshake(self.tcp(self.tls_port), self.ctx)
        self.stop(sig)
        h.hello()
        h.finish()
        self.check(h.request('/a.txt'), sig)

    def handshake_done(self, sig):
        h = Handshake(self.tcp(self.tls_port), self.ctx)
        h.hello()
        h.finish()
        self.stop(sig)
        self.check(h.request('/a.txt'), sig)

    def plain(self, sig):
        s = self.tcp(self.srv.port)
        self.stop(sig)
        s.sendall(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')
        data, _ = harness.recv_until_close(s, 60)
        self.check(data, sig)


class FreshConnectionAtStop(FreshBase):
    def test_hup_tls_handshake_begun_before_it(self):
        self.handshake_begun(signal.SIGHUP)

    def test_quit_tls_handshake_begun_before_it(self):
        self.handshake_begun(signal.SIGQUIT)

    def test_hup_tls_connection_made_before_it_shakes_hands_after(self):
        self.handshake_not_begun(signal.SIGHUP)

    def test_quit_tls_connection_made_before_it_shakes_hands_after(self):
        self.handshake_not_begun(signal.SIGQUIT)

    def test_hup_tls_handshake_done_before_it_request_after(self):
        self.handshake_done(signal.SIGHUP)

    def test_quit_tls_handshake_done_before_it_request_after(self):
        self.handshake_done(signal.SIGQUIT)

    def test_hup_plain_connection_made_before_it_request_after(self):
        self.plain(signal.SIGHUP)

    def test_quit_plain_connection_made_before_it_request_after(self):
        self.plain(signal.SIGQUIT)


class DeferredAtReload(FreshBase):
    """With limits.defer_accept (the default) a connection that has sent
    nothing before a reload was never the old worker's: its request, after
    the reload, goes to a new worker, which answers it as any other (and
    keeps the connection open)."""

    DEFER = '60s'

    def test_hup_plain_connection_made_before_it_request_after(self):
        s = self.tcp(self.srv.port)
        self.stop(signal.SIGHUP)
        s.sendall(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
        data, _ = harness.recv_until_close(s, 60)
        r = harness.read_response(data)
        self.assertEqual((r.status, r.body), (200, STATIC_BODY), self.srv.stderr_text()[-2000:])

    def test_hup_tls_connection_made_before_it_shakes_hands_after(self):
        h = Handshake(self.tcp(self.tls_port), self.ctx)
        self.stop(signal.SIGHUP)
        h.hello()
        h.finish()
        r = harness.read_response(h.request('/a.txt', close=True))
        self.assertEqual((r.status, r.body), (200, STATIC_BODY), self.srv.stderr_text()[-2000:])


CN_CONF = '''
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%s"; key = "%s"; };
limits = { keepalive_timeout = "1s"; };
'''


class CloseNotify(unittest.TestCase):
    """Every orderly close of a TLS connection begins with close_notify
    (RFC 8446 §6.1), so the client can tell the end of the stream from a
    truncation (RFC 9112 §9.8): after a response to "Connection: close" or
    to HTTP/1.0, at the keep-alive timeout, and for an idle connection at a
    graceful stop. The client reads with ragged EOFs reported."""

    def setUp(self):
        certs = tempfile.mkdtemp(prefix='portico-tlsreload-')
        self.addCleanup(shutil.rmtree, certs, True)
        crt, key = make_cert(certs)
        self.ctx = ssl.create_default_context(cafile=crt)
        self.ctx.check_hostname = False
        self.srv = harness.Server(conf=CN_CONF % (crt, key), listen=[],
                                  files={'a.txt': STATIC_BODY})
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def exchange(self, req, then=None):
        s = socket.create_connection(('127.0.0.1', self.srv.port), 60)
        with self.ctx.wrap_socket(s, suppress_ragged_eofs=False) as t:
            t.sendall(req)
            data = b''
            if then:
                data += t.recv(65536)
                then()
            while True:
                try:
                    b = t.recv(65536)
                except ssl.SSLEOFError as e:
                    self.fail('closed without close_notify after %r: %r' % (data, e))
                if not b:
                    break
                data += b
        r = harness.read_response(data)
        self.assertEqual((r.status, r.body), (200, STATIC_BODY), data)
        return r

    def test_response_to_connection_close(self):
        self.exchange(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')

    def test_response_to_http_1_0(self):
        self.exchange(b'GET /a.txt HTTP/1.0\r\n\r\n')

    def test_keepalive_timeout(self):
        r = self.exchange(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')
        self.assertNotEqual((r.header('Connection') or '').lower(), 'close')

    def test_idle_connection_at_quit(self):
        self.exchange(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n',
                      then=lambda: self.srv.signal(signal.SIGQUIT))
        self.assertTrue(harness.Server.wait_for(lambda: not self.srv.running, 30))
        self.assertEqual(self.srv.stop(), 0)


class PartialRecordAtStop(unittest.TestCase):
    """A keep-alive TLS connection idle at a graceful stop whose next
    request has begun to arrive when its grace ends, but not a whole TLS
    record of it (a record split across TCP segments): answered, as a
    partial head is over plain HTTP."""

    PAUSE = 2.5  # longer than the grace (1s)

    def setUp(self):
        certs = tempfile.mkdtemp(prefix='portico-tlsreload-')
        self.addCleanup(shutil.rmtree, certs, True)
        crt, key = make_cert(certs)
        self.ctx = ssl.create_default_context(cafile=crt)
        self.ctx.check_hostname = False
        self.srv = harness.Server(conf=CN_CONF.replace('"1s"', '"60s"') % (crt, key), listen=[],
                                  files={'a.txt': STATIC_BODY})
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def run_with(self, sig):
        s = socket.create_connection(('127.0.0.1', self.srv.port), 60)
        self.addCleanup(s.close)
        h = Handshake(s, self.ctx)
        h.hello()
        h.finish()
        h.obj.write(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')
        h.flush()
        first = b''
        while STATIC_BODY not in first:
            try:
                first += h.obj.read(65536)
            except ssl.SSLWantReadError:
                data = s.recv(65536)
                self.assertTrue(data, first)
                h.inc.write(data)
        self.assertNotIn(b'Connection: close', first)
        # the next request's record: its first bytes now, the rest after
        # the grace
        h.obj.write(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')
        record = h.out.read()
        self.srv.signal(sig)
        s.sendall(record[:10])
        time.sleep(self.PAUSE)
        try:
            s.sendall(record[10:])
        except OSError as e:
            self.fail('connection closed with a request half-way: %r' % e)
        plain = b''
        while True:
            try:
                got = h.obj.read(65536)
                if not got:
                    break
                plain += got
                continue
            except ssl.SSLWantReadError:
                pass
            data = s.recv(65536)
            if not data:
                break
            h.inc.write(data)
        r = harness.read_response(plain)
        self.assertIsNotNone(r, 'no response: %r\n%s' % (plain, self.srv.stderr_text()[-2000:]))
        self.assertEqual((r.status, r.body), (200, STATIC_BODY))
        self.assertEqual((r.header('Connection') or '').lower(), 'close')

    def test_quit(self):
        self.run_with(signal.SIGQUIT)
        self.assertTrue(harness.Server.wait_for(lambda: not self.srv.running, 30))
        self.assertEqual(self.srv.stop(), 0)

    def test_hup(self):
        self.run_with(signal.SIGHUP)


if __name__ == '__main__':
    harness.main()
