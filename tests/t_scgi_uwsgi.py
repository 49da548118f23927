"""t_scgi_uwsgi.py: portico's SCGI and uwsgi gateways (handler "scgi" and
"uwsgi", the --scgi and --uwsgi flags) against a real application server:
Debian's uWSGI with its python3 plugin running tests/lib/wsgi_app.py,
listening with --uwsgi-socket and --scgi-socket on 127.0.0.1 ports and on
Unix sockets, and with --http-socket (uWSGI over HTTP, through the reverse
proxy).

Covered, for each protocol over TCP and a Unix socket: the CGI variables the
application sees for a GET with a query (REQUEST_METHOD, SCRIPT_NAME,
PATH_INFO, QUERY_STRING, CONTENT_LENGTH; SCGI=1 over SCGI), POST bodies
(small, 5 MB, and a chunked request whose CONTENT_LENGTH is known), a
repeated Set-Cookie, a status other than 200, keep-alive with the client.
Then the failures: a backend that is down (502 and its log line), a silent
one (504 after read_timeout), failover to a second server, the max_conns
queue, and uwsgi's 64 KiB cap on the variables (431 and a log line); the
flags alone.

No test asserts a timing: waits are generous upper bounds."""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
from appserver import Uwsgi, HAVE_UWSGI  # noqa: E402

tag = harness.tag


def wait_for(pred, timeout=15, interval=0.05):
    return harness.Server.wait_for(pred, timeout, interval)


CONF = '''
backends = (
  { name = "uw"; servers = ( "127.0.0.1:@UW@" ); },
  { name = "uwunix"; servers = ( "unix:@UWSOCK@" ); },
  { name = "sc"; servers = ( "127.0.0.1:@SC@" ); },
  { name = "scunix"; servers = ( "unix:@SCSOCK@" ); },
  { name = "down"; servers = ( "@DEAD0@" ); max_fails = 0; },
  { name = "silent"; servers = ( "127.0.0.1:@SILENT@" ); read_timeout = "1s"; max_fails = 0; },
  { name = "twouw"; servers = ( "@DEAD1@", "127.0.0.1:@UW@" ); fail_timeout = "120s"; },
  { name = "twosc"; servers = ( "@DEAD2@", "127.0.0.1:@SC@" ); fail_timeout = "120s"; },
  { name = "quw"; servers = ( { address = "127.0.0.1:@UW@"; max_conns = 1; } ); },
  { name = "qsc"; servers = ( { address = "127.0.0.1:@SC@"; max_conns = 1; } ); },
  { name = "uwhttp"; servers = ( "127.0.0.1:@HT@" ); },
  { name = "uwmin"; servers = ( "unix:@UWSOCK@" ); minimal_variables = true; },
  { name = "scmin"; servers = ( "unix:@SCSOCK@" ); minimal_variables = true; }
);
locations = (
  { prefix = "/uw/"; handler = "uwsgi"; backend = "uw"; },
  { prefix = "/uwu/"; handler = "uwsgi"; backend = "uwunix"; },
  { prefix = "/sc/"; handler = "scgi"; backend = "sc"; },
  { prefix = "/scu/"; handler = "scgi"; backend = "scunix"; },
  { prefix = "/down-uwsgi/"; handler = "uwsgi"; backend = "down"; },
  { prefix = "/down-scgi/"; handler = "scgi"; backend = "down"; },
  { prefix = "/silent-uwsgi/"; handler = "uwsgi"; backend = "silent"; },
  { prefix = "/silent-scgi/"; handler = "scgi"; backend = "silent"; },
  { prefix = "/two-uwsgi/"; handler = "uwsgi"; backend = "twouw"; },
  { prefix = "/two-scgi/"; handler = "scgi"; backend = "twosc"; },
  { prefix = "/q-uwsgi/"; handler = "uwsgi"; backend = "quw"; },
  { prefix = "/q-scgi/"; handler = "scgi"; backend = "qsc"; },
  { prefix = "/uwh/"; handler = "proxy"; backend = "uwhttp"; },
  { prefix = "/uwmin/"; handler = "uwsgi"; backend = "uwmin"; },
  { prefix = "/scmin/"; handler = "scgi"; backend = "scmin"; }
);
'''


@unittest.skipUnless(HAVE_UWSGI, 'uwsgi and uwsgi-plugin-python3 are not installed')
class GwCase(unittest.TestCase):
    """One uWSGI and one portico (-w 1) for the whole module's classes."""
    maxDiff = None
    app = None
    srv = None

    @classmethod
    def setUpClass(cls):
        if GwCase.srv is not None:
            return
        base = tempfile.mkdtemp(prefix='pt-scgi-')
        GwCase.base = base
        GwCase.app = Uwsgi(base).start()
        # a listener that never accepts: connections complete in its
        # backlog and nothing ever answers
        GwCase.silent = socket.socket()
        GwCase.silent.bind(('127.0.0.1', 0))
        GwCase.silent.listen(16)
        dead = ['127.0.0.1:%d' % harness.free_port() for _ in range(3)]
        conf = (CONF.replace('@UW@', str(cls.app.uw_port)).replace('@SC@', str(cls.app.sc_port))
                .replace('@HT@', str(cls.app.ht_port))
                .replace('@UWSOCK@', cls.app.uw_sock).replace('@SCSOCK@', cls.app.sc_sock)
                .replace('@SILENT@', str(GwCase.silent.getsockname()[1])))
        for i, d in enumerate(dead):
            conf = conf.replace('@DEAD%d@' % i, d)
        GwCase.dead = dead
        srv = harness.Server('-o', 'limits.header_buffer=128K', conf=conf, workers=1)
        srv.start()
        GwCase.srv = srv
        GwCase.port = srv.port

    @classmethod
    def tearDownModuleState(cls):
        if GwCase.srv is not None:
            try:
                rc = GwCase.srv.stop()
                assert rc == 0, 'portico exited with %r on SIGTERM' % rc
            finally:
                shutil.rmtree(GwCase.srv.tmpdir, ignore_errors=True)
                GwCase.srv = None
        if GwCase.app is not None:
            GwCase.app.stop()
            GwCase.app = None
            GwCase.silent.close()
            shutil.rmtree(GwCase.base, ignore_errors=True)

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def assert_log(self, regex, what):
        self.assertTrue(self.srv.wait_for_log(regex, 15), 'no log line for %s (%s)%s' %
                        (what, regex, self.log_tail()))

    def req(self, method, path, headers=None, body=None, timeout=30):
        return harness.request(self.port, method, path, headers=headers, body=body,
                               timeout=timeout)

    def env(self, method, path, headers=None, body=None):
        st, hdrs, data = self.req(method, path, headers, body)
        self.assertEqual(st, 200, data[:500] + self.log_tail().encode())
        return json.loads(data)


def tearDownModule():
    GwCase.tearDownModuleState()


class Exchange:
    """The same checks through each protocol and socket kind (PREFIX)."""
    PREFIX = None
    SCGI = False

    def test_get_with_query_gives_the_cgi_variables(self):
        e = self.env('GET', self.PREFIX + 'a/b?x=1&y=%20z')
        self.assertEqual(e['REQUEST_METHOD'], 'GET')
        self.assertEqual(e['SCRIPT_NAME'], self.PREFIX.rstrip('/'))
        self.assertEqual(e['PATH_INFO'], '/a/b')
        self.assertEqual(e['QUERY_STRING'], 'x=1&y=%20z')
        self.assertEqual(e['REQUEST_URI'], self.PREFIX + 'a/b?x=1&y=%20z')
        self.assertEqual(e['body_len'], 0)
        if self.SCGI:
            # the SCGI spec: CONTENT_LENGTH always (first), and SCGI=1
            self.assertEqual(e['CONTENT_LENGTH'], '0')
            self.assertEqual(e['SCGI'], '1')
        else:
            self.assertNotIn('SCGI', e)

    def test_small_post_body_arrives_with_its_length(self):
        body = b'name=value&other=thing'
        e = self.env('POST', self.PREFIX + 'form', {
            'Content-Type': 'application/x-www-form-urlencoded'}, body)
        self.assertEqual(e['REQUEST_METHOD'], 'POST')
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual(e['CONTENT_TYPE'], 'application/x-www-form-urlencoded')
        self.assertEqual(e['body_len'], len(body))
        self.assertEqual(e['body_sha256'], hashlib.sha256(body).hexdigest())

    def test_5mb_post_body_arrives_intact(self):
        body = os.urandom(5 * 1024 * 1024)
        e = self.env('POST', self.PREFIX + 'upload', {'Content-Type': 'application/octet-stream'},
                     body)
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual(e['body_len'], len(body))
        self.assertEqual(e['body_sha256'], hashlib.sha256(body).hexdigest())

    def test_chunked_request_reaches_the_app_with_content_length(self):
        parts = [b'first chunk ', os.urandom(70000), b' last']
        body = b''.join(parts)
        wire = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in parts) + b'0\r\n\r\n'
        s = harness.connect(self.port)
        try:
            s.sendall(b'POST ' + self.PREFIX.encode() + b'chunked HTTP/1.1\r\nHost: t\r\n'
                      b'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n' + wire)
            r = harness.read_response(s, 'POST')
        finally:
            s.close()
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual(e['body_sha256'], hashlib.sha256(body).hexdigest())

    def test_repeated_set_cookie_fields_both_reach_the_client(self):
        s = harness.connect(self.port)
        try:
            s.sendall(b'GET ' + self.PREFIX.encode() + b'c?mode=cookies HTTP/1.1\r\nHost: t\r\n'
                      b'Connection: close\r\n\r\n')
            r = harness.read_response(s)
        finally:
            s.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header_all('Set-Cookie'), ['a=1; Path=/', 'b=2; Path=/'])
        self.assertEqual(r.body, b'two cookies\n')

    def test_status_other_than_200_is_passed_on(self):
        st, _, data = self.req('GET', self.PREFIX + 's?mode=status&code=404')
        self.assertEqual((st, data), (404, b'status 404\n'))
        st, _, data = self.req('GET', self.PREFIX + 's?mode=status&code=201')
        self.assertEqual((st, data), (201, b'status 201\n'))

    def test_keep_alive_client_gets_several_answers_on_one_connection(self):
        s = harness.connect(self.port)
        try:
            req = b'GET ' + self.PREFIX.encode() + b'k?i=%d HTTP/1.1\r\nHost: t\r\n\r\n'
            for i in range(3):
                s.sendall(req % i)
                r = harness.read_response(s)
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.body)['QUERY_STRING'], 'i=%d' % i)
        finally:
            s.close()


class UwsgiTcp(Exchange, GwCase):
    PREFIX = '/uw/'


class UwsgiUnix(Exchange, GwCase):
    PREFIX = '/uwu/'


class ScgiTcp(Exchange, GwCase):
    PREFIX = '/sc/'
    SCGI = True


class ScgiUnix(Exchange, GwCase):
    PREFIX = '/scu/'
    SCGI = True


class UwsgiHttp(Exchange, GwCase):
    """uWSGI's own HTTP parser (--http-socket) behind the reverse proxy:
    the same application, reached over HTTP/1.x instead of a CGI framing."""
    PREFIX = '/uwh/'

    def test_get_with_query_gives_the_cgi_variables(self):
        # a proxy passes the target unchanged: uWSGI makes it all PATH_INFO
        e = self.env('GET', self.PREFIX + 'a/b?x=1&y=%20z')
        self.assertEqual(e['REQUEST_METHOD'], 'GET')
        self.assertEqual(e['PATH_INFO'], '/uwh/a/b')
        self.assertEqual(e['QUERY_STRING'], 'x=1&y=%20z')
        self.assertEqual(e['REQUEST_URI'], '/uwh/a/b?x=1&y=%20z')
        self.assertEqual(e['body_len'], 0)
        self.assertEqual(e['HTTP_X_FORWARDED_FOR'], '127.0.0.1')
        self.assertNotIn('SCGI', e)

    def test_a_head_request_gets_no_body(self):
        st, hdrs, data = self.req('HEAD', self.PREFIX + 'h')
        self.assertEqual((st, data), (200, b''))


class MinimalVariables(GwCase):
    """minimal_variables = true: the application gets the variables an
    application server reads (PEP 3333's, nginx's uwsgi_params), not the
    CGI process's own (each one is work for it: uWSGI spent 14% more
    instructions per request on portico's full set, bench/upstream-cost.py)."""
    CGI_ONLY = ('GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'SERVER_ADDR', 'SCRIPT_FILENAME',
                'PATH_TRANSLATED', 'PATH')

    def names(self, path):
        st, _, data = self.req('GET', path)
        self.assertEqual(st, 200, data[:500] + self.log_tail().encode())
        return set(json.loads(data))

    def test_minimal_backends_leave_out_the_cgi_process_variables(self):
        for full, minimal in (('/uwu/', '/uwmin/'), ('/scu/', '/scmin/')):
            got = self.names(full + 'a/b?mode=names')
            self.assertTrue(set(self.CGI_ONLY) <= got, (full, sorted(got)))
            got = self.names(minimal + 'a/b?mode=names')
            self.assertFalse(set(self.CGI_ONLY) & got, (minimal, sorted(got)))
            for k in ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SERVER_NAME',
                      'SERVER_PORT', 'SERVER_PROTOCOL', 'REMOTE_ADDR', 'HTTP_HOST'):
                self.assertIn(k, got, minimal)


class Failures:
    PROTO = None

    def test_backend_down_is_502_with_a_log_line(self):
        st, _, _ = self.req('GET', '/down-%s/x' % self.PROTO)
        self.assertEqual(st, 502, self.log_tail())
        self.assert_log(r'%s down \(%s\): connect failed: Connection refused' %
                        (self.PROTO, re.escape(self.dead[0])), 'the refused connection')

    def test_silent_backend_is_504_after_read_timeout(self):
        st, _, _ = self.req('GET', '/silent-%s/x' % self.PROTO, timeout=60)
        self.assertEqual(st, 504, self.log_tail())
        self.assert_log(r'%s silent \(127\.0\.0\.1:\d+\): read timed out' % self.PROTO,
                        'the read timeout')

    def test_failover_to_the_second_server(self):
        dead = self.dead[1] if self.PROTO == 'uwsgi' else self.dead[2]
        for i in range(6):
            e = self.env('GET', '/two-%s/f?i=%d' % (self.PROTO, i))
            self.assertEqual(e['QUERY_STRING'], 'i=%d' % i)
        rx = r'%s two\w+ \(%s\): connect failed: Connection refused' % (self.PROTO,
                                                                        re.escape(dead))
        self.assert_log(rx, 'the refused first server')
        # marked down after the first failure (max_fails 1): tried once
        self.assertEqual(len(re.findall(rx, self.srv.stderr_text())), 1, self.log_tail())

    def test_max_conns_queues_the_second_request(self):
        g = tag()
        self.addCleanup(self.app.open_gate, g)
        before = self.app.counters()['started']
        path = ('GET /q-%s/sleep?mode=sleep&gate=%s HTTP/1.1\r\nHost: t\r\n'
                'Connection: close\r\n\r\n' % (self.PROTO, g)).encode()
        s1 = harness.connect(self.port, timeout=60)
        self.addCleanup(s1.close)
        s1.sendall(path)
        self.assertTrue(wait_for(lambda: self.app.counters()['started'] == before + 1, 20),
                        self.log_tail())
        s2 = harness.connect(self.port, timeout=60)
        self.addCleanup(s2.close)
        s2.sendall(path)
        time.sleep(1)  # room for a wrong second connection to show up
        c = self.app.counters()
        self.assertEqual(c['started'], before + 1, 'max_conns = 1 exceeded')
        self.app.open_gate(g)
        r1, r2 = harness.read_response(s1), harness.read_response(s2)
        self.assertEqual((r1.status, r2.status), (200, 200), self.log_tail())
        self.assertEqual(self.app.counters()['started'], before + 2)
        self.assertEqual(self.app.counters()['active'], 0)


class UwsgiFailures(Failures, GwCase):
    PROTO = 'uwsgi'

    def test_variables_over_64k_are_431_with_a_log_line(self):
        # uwsgi's datasize is 16 bits: the vars block cannot exceed 64 KiB
        hdrs = {'X-Big-%d' % i: 'v' * 7000 for i in range(10)}
        st, _, _ = self.req('GET', '/uw/big', hdrs)
        self.assertEqual(st, 431, self.log_tail())
        self.assert_log(r"431 .*variables exceed uwsgi's 64 KiB", 'the 431')
        # just under the cap still goes through
        hdrs = {'X-Big-%d' % i: 'v' * 7000 for i in range(8)}
        e = self.env('GET', '/uw/big', hdrs)
        self.assertEqual(e['HTTP_X_BIG_7'], 'v' * 7000)


class ScgiFailures(Failures, GwCase):
    PROTO = 'scgi'


@unittest.skipUnless(HAVE_UWSGI, 'uwsgi and uwsgi-plugin-python3 are not installed')
class Flags(unittest.TestCase):
    """--uwsgi and --scgi alone build the backend and the location, like
    --fastcgi (TCP and Unix addresses, several servers)."""

    def test_flags_route_to_uwsgi_and_scgi(self):
        GwCase.setUpClass()
        app = GwCase.app
        dead = '127.0.0.1:%d' % harness.free_port()
        with harness.Server('--uwsgi', '/fu/=%s,127.0.0.1:%d' % (dead, app.uw_port),
                            '--uwsgi', '/fuu/=unix:' + app.uw_sock,
                            '--scgi', '/fs/=127.0.0.1:%d' % app.sc_port,
                            '--scgi', '/fsu/=unix:' + app.sc_sock) as srv:
            for prefix, is_scgi in (('/fu/', False), ('/fuu/', False), ('/fs/', True),
                                    ('/fsu/', True)):
                for i in range(2):
                    st, _, data = harness.request(srv.port, 'GET', prefix + 'p?q=%d' % i)
                    self.assertEqual(st, 200, srv.stderr_text()[-2000:])
                    e = json.loads(data)
                    self.assertEqual((e['SCRIPT_NAME'], e['PATH_INFO'], e['QUERY_STRING']),
                                     (prefix.rstrip('/'), '/p', 'q=%d' % i))
                    self.assertEqual(e.get('SCGI'), '1' if is_scgi else None)

    def test_bad_flag_is_refused(self):
        r = subprocess.run([harness.PORTICO, '-t', '--scgi', 'noslash'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'--scgi', r.stderr)
        r = subprocess.run([harness.PORTICO, '-t', '--uwsgi', '/x/='], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'--uwsgi', r.stderr)


if __name__ == '__main__':
    harness.main()
