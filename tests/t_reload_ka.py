"""t_reload_ka.py: a graceful stop (SIGHUP's old workers, SIGQUIT) loses
no request of a keep-alive client that sends its next request as soon as
it has read a response, whatever handler answered the previous one (CGI,
FastCGI, static as the control; the reverse proxy, uwsgi and SCGI too). A
response completed during the stop says "Connection: close"; a request
that already arrived is answered; a request waiting in a FastCGI queue
when the stop comes is answered too (and one in CGI's queue). Every
request is counted (tests/lib/reloadload.py, shared with t_tls_reload.py);
nothing asserts on timings."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402
import reloadload  # noqa: E402
from reloadload import HELLO, HELLO_RE  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

CONF = '''
workers = @WORKERS@;
listen = [ "127.0.0.1:@PORT@" ];
root = "@ROOT@";
limits = { keepalive_timeout = "30s"; shutdown_timeout = "30s"; defer_accept = "@DEFER@";
           @LIMITS@ };
backends = ( { name = "hello";
               servers = ( { address = "unix:@BASE@/hello.sock"; max_conns = @MAXC@; } ); }
             @PHP_BACKEND@ );
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; },
              { prefix = "/fcgi/"; handler = "fastcgi"; backend = "hello"; }
              @PHP_LOCATION@ );
'''

STATIC_BODY = b'static control\n'
# a CGI program slow enough to hold the one slot while a second request waits
SLOW_CGI = r'''#!/bin/sh
sleep 1.5
printf 'Content-Type: text/plain\r\n\r\nslow %s\n' "$QUERY_STRING"
'''
UPSTREAM_RE = re.compile(rb'^conn \d+ req \d+$')   # tests/lib/http_upstream.py
WSGI_BODY = b'status 200\n'                       # tests/lib/wsgi_app.py


wait_for = reloadload.wait_for


def expected(path, status, body):
    if status != 200:
        return False
    known = reloadload.gateway_answer(path, body)
    if known is not None:
        return known
    if path.startswith('/px/'):
        return UPSTREAM_RE.match(body) is not None
    if path.startswith(('/uw/', '/sc/')):
        return body == WSGI_BODY
    return body == STATIC_BODY


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class GracefulKeepAlive(unittest.TestCase):
    WORKERS = 2
    MAXC = 4
    APPS = 4
    PHP = True
    LIMITS = ''

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
        with open(os.path.join(self.cgi, 'slow.cgi'), 'w') as f:
            f.write(SLOW_CGI)
        os.chmod(os.path.join(self.cgi, 'slow.cgi'), 0o755)
        # APPS processes of the libfcgi sample app on one Unix socket
        self.apps = reloadload.start_fcgi_apps(self, os.path.join(base, 'hello.sock'), self.APPS)
        # PHP-FPM too when installed (the load of the report: PHP and CGI)
        php_be = php_loc = ''
        self.php = self.PHP and phpfpm.find_php_fpm() is not None
        if self.php:
            shutil.copy(os.path.join(HERE, 'fcgi', 'hello.php'), self.root)
            fpm = phpfpm.PhpFpm([phpfpm.Pool('www', max_children=4)])
            self.addCleanup(fpm.stop)
            fpm.start()
            php_be = (', { name = "php"; servers = ( { address = "%s"; max_conns = 4; } ); }'
                      % fpm.pool('www').address)
            php_loc = ', { extension = ".php"; handler = "fastcgi"; backend = "php"; }'
        self.srv.conf = (CONF.replace('@PHP_BACKEND@', php_be).replace('@PHP_LOCATION@', php_loc)
                         .replace('@WORKERS@', str(self.WORKERS))
                         .replace('@LIMITS@', self.LIMITS)
                         .replace('@DEFER@', reloadload.defer_accept(self))
                         .replace('@MAXC@', str(self.MAXC)).replace('@BASE@', base)
                         .replace('@ROOT@', self.root).replace('@CGI@', self.cgi))
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.assertTrue(wait_for(lambda: len(self.srv.worker_pids()) == self.WORKERS, 30),
                        self.srv.worker_pids())

    def paths(self):
        paths = ['/cgi-bin/hello-sh.cgi'] * 3 + ['/fcgi/hello'] * 3 + ['/a.txt'] * 2
        if self.php:
            paths += ['/hello.php'] * 3
        return paths

    def load(self):
        ld = reloadload.Load(self.srv.port, [('ka', p) for p in self.paths()], expected)
        return reloadload.start_load(self, self.srv, ld, 5, 30)

    def test_hups_lose_no_keepalive_request_after_cgi_fastcgi_or_static(self):
        self.hups_lose_nothing()

    def test_quit_answers_every_request_on_a_connection_made_before_it(self):
        self.quit_answers_everything()

    def hups_lose_nothing(self):
        ld = self.load()
        reloadload.hups_answer_everything(self, self.srv, ld, 4, 60)
        for kind in set(ld.clients):
            self.assertGreater(ld.ok.get(kind, 0), 20, ld.summary())

    def quit_answers_everything(self):
        reloadload.quit_answers_everything(self, self.srv, self.load(), 60)


UWSGI = shutil.which('uwsgi') or '/usr/bin/uwsgi'
UWSGI_PLUGIN = '/usr/lib/uwsgi/plugins/python3_plugin.so'
HAVE_UWSGI = os.path.exists(UWSGI) and os.path.exists(UWSGI_PLUGIN)

UPSTREAM_CONF = '''
workers = 2;
listen = [ "127.0.0.1:@PORT@" ];
root = "@ROOT@";
limits = { keepalive_timeout = "30s"; shutdown_timeout = "30s"; defer_accept = "@DEFER@"; };
backends = ( { name = "http"; servers = ( { address = "127.0.0.1:@HTTP@"; max_conns = 4; } ); },
             { name = "uw"; servers = ( "127.0.0.1:@UW@" ); },
             { name = "sc"; servers = ( "127.0.0.1:@SC@" ); } );
locations = ( { prefix = "/px/"; handler = "proxy"; backend = "http"; },
              { prefix = "/uw/"; handler = "uwsgi"; backend = "uw"; },
              { prefix = "/sc/"; handler = "scgi"; backend = "sc"; } );
'''


@unittest.skipUnless(HAVE_UWSGI, 'uwsgi and uwsgi-plugin-python3 are not installed')
class UpstreamKeepAlive(GracefulKeepAlive):
    """The same promise for the handlers of the upstream module that came
    after issue 22: the HTTP reverse proxy (pooled keep-alive connections
    to tests/lib/http_upstream.py, max_conns 4), uwsgi and SCGI (uWSGI
    running tests/lib/wsgi_app.py), static as the control."""

    def setUp(self):
        self.srv = harness.Server(conf='# filled below', docroot=False, workers=None, listen=[])
        base = self.srv.tmpdir
        self.root = os.path.join(base, 'www')
        os.makedirs(self.root)
        with open(os.path.join(self.root, 'a.txt'), 'wb') as f:
            f.write(STATIC_BODY)
        portfile = os.path.join(base, 'http.port')
        up = subprocess.Popen([sys.executable, os.path.join(HERE, 'lib', 'http_upstream.py'),
                               portfile], stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(reloadload.reap, up)
        self.assertTrue(wait_for(lambda: os.path.exists(portfile), 20), 'http_upstream.py')
        with open(portfile) as f:
            http_port = int(f.read())
        # uWSGI (master + 4 processes) on a uwsgi and an SCGI port
        app_dir = os.path.join(base, 'app')
        os.makedirs(app_dir)
        uw_port, sc_port = harness.free_port(), harness.free_port()
        log = open(os.path.join(base, 'uwsgi.log'), 'ab')
        self.addCleanup(log.close)
        uw = subprocess.Popen(
            [UWSGI, '--plugin', 'python3', '--master', '--processes', '4', '--die-on-term',
             '--wsgi-file', os.path.join(HERE, 'lib', 'wsgi_app.py'),
             '--uwsgi-socket', '127.0.0.1:%d' % uw_port,
             '--scgi-socket', '127.0.0.1:%d' % sc_port],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=base,
            env=dict(os.environ, WSGI_TEST_DIR=app_dir), start_new_session=True)
        self.addCleanup(reloadload.reap, uw)

        def listening():
            for port in (uw_port, sc_port):
                try:
                    socket.create_connection(('127.0.0.1', port), timeout=1).close()
                except OSError:
                    return False
            return True
        self.assertTrue(wait_for(listening, 30), 'uWSGI did not start')
        self.srv.conf = (UPSTREAM_CONF.replace('@ROOT@', self.root)
                         .replace('@HTTP@', str(http_port)).replace('@UW@', str(uw_port))
                         .replace('@SC@', str(sc_port))
                         .replace('@DEFER@', reloadload.defer_accept(self)))
        self.srv.start()
        self.addCleanup(self.srv.stop)
        self.assertTrue(wait_for(lambda: len(self.srv.worker_pids()) == 2, 30),
                        self.srv.worker_pids())

    def paths(self):
        return (['/px/conn'] * 3 + ['/uw/?mode=status&code=200'] * 3 +
                ['/sc/?mode=status&code=200'] * 3 + ['/a.txt'] * 2)

    def test_hups_lose_no_keepalive_request_after_proxy_uwsgi_scgi_or_static(self):
        self.hups_lose_nothing()

    def test_quit_answers_every_proxy_uwsgi_scgi_request_made_before_it(self):
        self.quit_answers_everything()

    test_hups_lose_no_keepalive_request_after_cgi_fastcgi_or_static = None
    test_quit_answers_every_request_on_a_connection_made_before_it = None


def get_raw(port, target):
    """A keep-alive GET on a new socket, nothing read yet."""
    s = harness.connect(port, timeout=60)
    s.sendall(harness.build_request('GET', target, close=False))
    return s


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class QueuedAtStop(GracefulKeepAlive):
    """One slow FastCGI process, max_conns = 1: a second request waits in
    the worker's queue when the stop comes and is still answered."""
    WORKERS = 1
    MAXC = 1
    APPS = 1
    PHP = False

    def run_with(self, sig):
        busy = get_raw(self.srv.port, '/fcgi/sleep?1500')
        self.addCleanup(busy.close)
        # the first holds the one connection before the second is sent
        time.sleep(0.3)
        queued = get_raw(self.srv.port, '/fcgi/queued')
        self.addCleanup(queued.close)
        time.sleep(0.3)
        self.srv.signal(sig)
        for s in (busy, queued):
            r = harness.read_response(s)
            self.assertEqual(r.status, 200, self.srv.stderr_text()[-2000:])
            self.assertTrue(HELLO_RE.match(r.body), r.body)
            # completed during the stop: the client must not reuse it
            self.assertEqual((r.header('Connection') or '').lower(), 'close', r)
            data, _ = harness.recv_until_close(s, 30)
            self.assertEqual(data, b'')

    def test_a_queued_fastcgi_request_is_answered_across_a_hup(self):
        self.run_with(signal.SIGHUP)

    def test_a_queued_fastcgi_request_is_answered_across_a_quit(self):
        self.run_with(signal.SIGQUIT)
        self.assertTrue(wait_for(lambda: not self.srv.running, 60))
        self.assertEqual(self.srv.stop(), 0)

    # the keep-alive load tests belong to the base class only
    test_hups_lose_no_keepalive_request_after_cgi_fastcgi_or_static = None
    test_quit_answers_every_request_on_a_connection_made_before_it = None


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class QueuedCgiAtStop(GracefulKeepAlive):
    """The same with CGI's own queue: cgi_max_procs = 1, a slow program
    holds the slot and a second request waits in cgi_queue when the stop
    comes; both are answered, with "Connection: close"."""
    WORKERS = 1
    APPS = 1
    PHP = False
    LIMITS = 'cgi_max_procs = 1; cgi_queue = 4;'

    def run_with(self, sig):
        busy = get_raw(self.srv.port, '/cgi-bin/slow.cgi?busy')
        self.addCleanup(busy.close)
        time.sleep(0.3)
        queued = get_raw(self.srv.port, '/cgi-bin/slow.cgi?queued')
        self.addCleanup(queued.close)
        time.sleep(0.3)
        self.srv.signal(sig)
        for s, name in ((busy, b'busy'), (queued, b'queued')):
            r = harness.read_response(s)
            self.assertEqual((r.status, r.body), (200, b'slow ' + name + b'\n'),
                             self.srv.stderr_text()[-2000:])
            self.assertEqual((r.header('Connection') or '').lower(), 'close', r)
            data, _ = harness.recv_until_close(s, 30)
            self.assertEqual(data, b'')

    def test_a_queued_cgi_request_is_answered_across_a_hup(self):
        self.run_with(signal.SIGHUP)

    def test_a_queued_cgi_request_is_answered_across_a_quit(self):
        self.run_with(signal.SIGQUIT)
        self.assertTrue(wait_for(lambda: not self.srv.running, 60))
        self.assertEqual(self.srv.stop(), 0)

    test_hups_lose_no_keepalive_request_after_cgi_fastcgi_or_static = None
    test_quit_answers_every_request_on_a_connection_made_before_it = None


if __name__ == '__main__':
    harness.main()
