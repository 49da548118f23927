"""t_proxy.py: portico's HTTP reverse proxy (handler "proxy", --proxy)
against a real application server, Debian's gunicorn (python3-gunicorn)
running tests/lib/wsgi_app.py on a 127.0.0.1 port, [::1] and a Unix socket, and
against tests/lib/http_upstream.py, an upstream that answers in broken and
smuggling-shaped ways.

Covered: the request the application sees (method, target with the prefix
unchanged, query, Host, X-Forwarded-For/Proto/Host, Forwarded), hop-by-hop
fields removed both ways, POST bodies (small, 5 MB, chunked from the client
with CONTENT_LENGTH known upstream), a streamed (chunked) answer, repeated
Set-Cookie, keep-alive reuse of upstream connections, a retry when a pooled
connection was dropped, an unasked 100 (passed on, http.client skips it), HEAD, Location rewriting, a slow upload
that does not hold gunicorn's single sync worker; then the failures: each
broken response shape -> 502 and its log line, an upstream down (502),
silent (504), failover, the max_conns queue; the flag alone.

No test asserts a timing: waits are generous upper bounds."""

import base64
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
import appserver  # noqa: E402
from appserver import Gunicorn, HAVE_GUNICORN  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, 'lib')
PY = '/usr/bin/python3'


HAVE_V6 = appserver.HAVE_V6
tag = harness.tag


def wait_for(pred, timeout=15, interval=0.05):
    return harness.Server.wait_for(pred, timeout, interval)


class Hostile:
    """tests/lib/http_upstream.py on a random port."""

    def __init__(self, base):
        self.portfile = os.path.join(base, 'hostile.port')
        self.proc = subprocess.Popen([PY, os.path.join(LIB, 'http_upstream.py'), self.portfile],
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_for(lambda: os.path.exists(self.portfile), 20):
            self.stop()
            raise RuntimeError('http_upstream.py did not start')
        self.port = int(open(self.portfile).read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(20)


CONF = '''
backends = (
  { name = "gt"; servers = ( "127.0.0.1:@GT@" ); },
  { name = "gtu"; servers = ( "unix:@GTSOCK@" ); },
  { name = "gt6"; servers = ( "@GT6@" ); },
  { name = "gtvia"; servers = ( "127.0.0.1:@GT@" ); via = true; },
  { name = "gtxff"; servers = ( "127.0.0.1:@GT@" ); forwarded = false; },
  { name = "sync"; servers = ( "127.0.0.1:@SYNC@" ); },
  { name = "bad"; servers = ( "127.0.0.1:@BAD@" ); max_fails = 0; },
  { name = "down"; servers = ( "@DEAD0@" ); max_fails = 0; },
  { name = "silent"; servers = ( "127.0.0.1:@SILENT@" ); read_timeout = "1s"; max_fails = 0; },
  { name = "two"; servers = ( "@DEAD1@", "127.0.0.1:@GT@" ); fail_timeout = "120s"; },
  { name = "q"; servers = ( { address = "127.0.0.1:@GT@"; max_conns = 1; } ); }
);
locations = (
  { prefix = "/app/"; handler = "proxy"; backend = "gt"; },
  { prefix = "/unix/"; handler = "proxy"; backend = "gtu"; },
  { prefix = "/v6/"; handler = "proxy"; backend = "gt6"; },
  { prefix = "/via/"; handler = "proxy"; backend = "gtvia"; },
  { prefix = "/xff/"; handler = "proxy"; backend = "gtxff"; },
  { prefix = "/sync/"; handler = "proxy"; backend = "sync"; },
  { prefix = "/bad/"; handler = "proxy"; backend = "bad"; },
  { prefix = "/down/"; handler = "proxy"; backend = "down"; },
  { prefix = "/silent/"; handler = "proxy"; backend = "silent"; },
  { prefix = "/two/"; handler = "proxy"; backend = "two"; },
  { prefix = "/q/"; handler = "proxy"; backend = "q"; },
  { prefix = "/auth/"; handler = "proxy"; backend = "gt"; auth_basic = "R";
    auth_basic_user_file = "@HTPASSWD@"; },
  { prefix = "/authpass/"; handler = "proxy"; backend = "gt"; auth_basic = "R";
    auth_basic_user_file = "@HTPASSWD@"; pass_authorization = true; }
);
'''


@unittest.skipUnless(HAVE_GUNICORN, 'python3-gunicorn is not installed')
class ProxyCase(unittest.TestCase):
    """One set of upstreams and one portico (-w 1) for the whole module."""
    maxDiff = None
    srv = None

    @classmethod
    def setUpClass(cls):
        if ProxyCase.srv is not None:
            return
        base = tempfile.mkdtemp(prefix='pt-proxy-')
        ProxyCase.base = base
        ProxyCase.gt = Gunicorn(base, 'gthread').start()
        ProxyCase.sync = Gunicorn(base, 'sync').start()
        ProxyCase.bad = Hostile(base)
        # a listener that never accepts: nothing ever answers
        ProxyCase.silent = socket.socket()
        ProxyCase.silent.bind(('127.0.0.1', 0))
        ProxyCase.silent.listen(16)
        dead = ['127.0.0.1:%d' % harness.free_port() for _ in range(2)]
        # without IPv6 loopback the [::1] backend is the IPv4 one (ProxyIpv6 skips)
        gt6 = '[::1]:%d' % cls.gt.port6 if cls.gt.port6 else '127.0.0.1:%d' % cls.gt.port
        conf = (CONF.replace('@GT@', str(cls.gt.port)).replace('@GTSOCK@', cls.gt.sock)
                .replace('@GT6@', gt6)
                .replace('@SYNC@', str(cls.sync.port)).replace('@BAD@', str(cls.bad.port))
                .replace('@SILENT@', str(ProxyCase.silent.getsockname()[1])))
        for i, d in enumerate(dead):
            conf = conf.replace('@DEAD%d@' % i, d)
        # {SHA} (htpasswd -s) of "pw" for "u": portico checks it itself
        htpasswd = os.path.join(base, 'htpasswd')
        with open(htpasswd, 'w') as f:
            f.write('u:{SHA}%s\n' % base64.b64encode(hashlib.sha1(b'pw').digest()).decode())
        os.chmod(htpasswd, 0o644)
        os.chmod(base, 0o755)
        conf = conf.replace('@HTPASSWD@', htpasswd)
        ProxyCase.dead = dead
        srv = harness.Server(conf=conf, workers=1)
        srv.start()
        ProxyCase.srv = srv
        ProxyCase.port = srv.port

    @classmethod
    def tearDownModuleState(cls):
        if ProxyCase.srv is not None:
            try:
                rc = ProxyCase.srv.stop()
                assert rc == 0, 'portico exited with %r on SIGTERM' % rc
            finally:
                shutil.rmtree(ProxyCase.srv.tmpdir, ignore_errors=True)
                ProxyCase.srv = None
            ProxyCase.gt.stop()
            ProxyCase.sync.stop()
            ProxyCase.bad.stop()
            ProxyCase.silent.close()
            shutil.rmtree(ProxyCase.base, ignore_errors=True)

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def assert_log(self, regex, what):
        self.assertTrue(self.srv.wait_for_log(regex, 15), 'no log line for %s (%s)%s' %
                        (what, regex, self.log_tail()))

    def req(self, method, path, headers=None, body=None, timeout=30):
        return harness.request(self.port, method, path, headers=headers, body=body,
                               timeout=timeout)

    def exchange(self, wire, method='GET', timeout=30):
        s = harness.connect(self.port, timeout=timeout)
        try:
            s.sendall(wire)
            return harness.read_response(s, method)
        finally:
            s.close()

    def env(self, method, path, headers=None, body=None):
        st, _, data = self.req(method, path, headers, body)
        self.assertEqual(st, 200, data[:500] + self.log_tail().encode())
        return json.loads(data)


def tearDownModule():
    ProxyCase.tearDownModuleState()


class Exchange:
    """The same checks over TCP and a Unix socket (PREFIX)."""
    PREFIX = None

    def test_get_reaches_the_app_with_the_prefix_and_query_unchanged(self):
        e = self.env('GET', self.PREFIX + 'a/b?x=1&y=%20z')
        self.assertEqual(e['REQUEST_METHOD'], 'GET')
        # the target is passed as is (nginx's proxy_pass without a URI)
        self.assertEqual(e['PATH_INFO'], self.PREFIX + 'a/b')
        self.assertEqual(e['QUERY_STRING'], 'x=1&y=%20z')
        self.assertEqual(e['SERVER_PROTOCOL'], 'HTTP/1.1')
        self.assertEqual(e['body_len'], 0)

    def test_forwarding_fields_name_the_client(self):
        r = self.exchange(b'GET ' + self.PREFIX.encode() + b'f HTTP/1.1\r\nHost: example.test:81'
                          b'\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: close\r\n\r\n')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['HTTP_HOST'], 'example.test:81')
        self.assertEqual(e['HTTP_X_FORWARDED_FOR'], '192.0.2.7, 127.0.0.1')
        self.assertEqual(e['HTTP_X_FORWARDED_PROTO'], 'http')
        self.assertEqual(e['HTTP_X_FORWARDED_HOST'], 'example.test:81')
        self.assertEqual(e['HTTP_FORWARDED'], 'for=127.0.0.1;proto=http;host="example.test:81"')

    def test_http10_request_without_host_is_sent_with_one(self):
        # RFC 9112 §3.2: an HTTP/1.1 request has a Host; the client's 1.0
        # one had none, so the name portico answers by is set
        r = self.exchange(b'GET ' + self.PREFIX.encode() + b'h10 HTTP/1.0\r\n\r\n')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual((e['HTTP_HOST'], e['SERVER_PROTOCOL']), ('127.0.0.1', 'HTTP/1.1'))
        self.assertEqual(e['HTTP_X_FORWARDED_HOST'], '127.0.0.1')

    def test_request_without_host_names_the_address_it_reached(self):
        # HTTP/1.0 may omit Host; the upstream still gets one: the local
        # address (SERVER_NAME's fallback), the one CGI value HTTP needs
        r = self.exchange(b'GET ' + self.PREFIX.encode() + b'nohost HTTP/1.0\r\n'
                          b'X-Forwarded-For: 192.0.2.9\r\n\r\n')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['HTTP_HOST'], '127.0.0.1')
        self.assertEqual(e['HTTP_X_FORWARDED_HOST'], '127.0.0.1')
        self.assertEqual(e['HTTP_X_FORWARDED_FOR'], '192.0.2.9, 127.0.0.1')

    def test_hop_by_hop_request_fields_do_not_reach_the_app(self):
        r = self.exchange(b'GET ' + self.PREFIX.encode() + b'h HTTP/1.1\r\nHost: t\r\n'
                          b'Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n'
                          b'TE: trailers\r\nProxy-Authorization: Basic eDp5\r\n'
                          b'Upgrade: websocket\r\nX-Other: kept\r\n\r\n')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        for k in ('HTTP_X_SECRET', 'HTTP_KEEP_ALIVE', 'HTTP_TE', 'HTTP_PROXY_AUTHORIZATION',
                  'HTTP_UPGRADE'):
            self.assertNotIn(k, e)
        self.assertNotIn('x-secret', e.get('HTTP_CONNECTION', '').lower())
        self.assertEqual(e['HTTP_X_OTHER'], 'kept')

    def test_long_heads_then_a_short_one_reach_the_app_exactly(self):
        # the request head is built in a block the worker keeps: it grows
        # for a long head, and what a long head left there never leaks into
        # the next, shorter one
        for n, fill in ((3000, b'a'), (60, b'b'), (7000, b'c'), (10, b'd')):
            r = self.exchange(b'GET ' + self.PREFIX.encode() + b'long HTTP/1.1\r\nHost: t\r\n'
                              b'X-Fill: ' + fill * n + b'\r\nX-Empty:\r\nConnection: close\r\n\r\n')
            self.assertEqual(r.status, 200, r.body[:300])
            e = json.loads(r.body)
            self.assertEqual(e['HTTP_X_FILL'], (fill * n).decode())
            self.assertEqual(e.get('HTTP_X_EMPTY'), '')
            self.assertEqual(e['PATH_INFO'], self.PREFIX + 'long')
            self.assertEqual(e['HTTP_X_FORWARDED_FOR'], '127.0.0.1')

    def test_small_post_body_arrives_with_its_length(self):
        body = b'name=value&other=thing'
        e = self.env('POST', self.PREFIX + 'form', {
            'Content-Type': 'application/x-www-form-urlencoded'}, body)
        self.assertEqual(e['REQUEST_METHOD'], 'POST')
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
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
        r = self.exchange(b'POST ' + self.PREFIX.encode() + b'chunked HTTP/1.1\r\nHost: t\r\n'
                          b'Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n' + wire,
                          'POST')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['CONTENT_LENGTH'], str(len(body)))
        self.assertEqual(e['body_sha256'], hashlib.sha256(body).hexdigest())

    def test_streamed_answer_arrives_whole(self):
        r = self.exchange(b'GET ' + self.PREFIX.encode() + b's?mode=stream HTTP/1.1\r\n'
                          b'Host: t\r\nConnection: close\r\n\r\n')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'part 0\npart 1\npart 2\n')

    def test_repeated_set_cookie_fields_both_reach_the_client(self):
        r = self.exchange(b'GET ' + self.PREFIX.encode() + b'c?mode=cookies HTTP/1.1\r\n'
                          b'Host: t\r\nConnection: close\r\n\r\n')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header_all('Set-Cookie'), ['a=1; Path=/', 'b=2; Path=/'])
        self.assertEqual(r.body, b'two cookies\n')

    def test_status_other_than_200_is_passed_on(self):
        st, _, data = self.req('GET', self.PREFIX + 's?mode=status&code=404')
        self.assertEqual((st, data), (404, b'status 404\n'))

    def test_upstream_connection_is_reused(self):
        if self.PREFIX == '/unix/':
            self.skipTest('a Unix socket has no port to tell connections apart')
        ports = set()
        for i in range(4):
            e = self.env('GET', self.PREFIX + 'k?i=%d' % i)
            ports.add(e['REMOTE_PORT'])
        # one worker, one request at a time: the pooled connection serves all
        self.assertEqual(len(ports), 1, ports)


class ProxyTcp(Exchange, ProxyCase):
    PREFIX = '/app/'


class ProxyUnix(Exchange, ProxyCase):
    PREFIX = '/unix/'


@unittest.skipUnless(HAVE_V6, 'no IPv6 loopback')
class ProxyIpv6(Exchange, ProxyCase):
    """A backend server at [::1]:PORT."""
    PREFIX = '/v6/'

    def test_the_server_is_reached_over_ipv6(self):
        self.assertEqual(self.env('GET', '/v6/x')['REMOTE_ADDR'], '::1')


class Authorization(ProxyCase):
    """The password portico checked itself is not forwarded (as for every
    gateway), unless pass_authorization says so; an application's own
    credentials pass by default."""
    CRED = {'Authorization': 'Basic ' + base64.b64encode(b'u:pw').decode()}

    def test_checked_password_stays_here(self):
        st, _, _ = self.req('GET', '/auth/x')
        self.assertEqual(st, 401)
        e = self.env('GET', '/auth/x', self.CRED)
        self.assertNotIn('HTTP_AUTHORIZATION', e)

    def test_pass_authorization_forwards_it(self):
        e = self.env('GET', '/authpass/x', self.CRED)
        self.assertEqual(e.get('HTTP_AUTHORIZATION'), self.CRED['Authorization'])

    def test_an_applications_own_credentials_pass(self):
        e = self.env('GET', '/app/x', self.CRED)
        self.assertEqual(e.get('HTTP_AUTHORIZATION'), self.CRED['Authorization'])


class Via(ProxyCase):

    def test_via_is_added_both_ways_only_when_the_backend_asks(self):
        r = self.exchange(b'GET /via/v HTTP/1.1\r\nHost: t\r\nVia: 1.0 first\r\n'
                          b'Connection: close\r\n\r\n')
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(json.loads(r.body)['HTTP_VIA'], '1.0 first,1.1 portico')
        self.assertEqual(r.header('Via'), '1.1 portico')
        r = self.exchange(b'GET /app/v HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        self.assertNotIn('HTTP_VIA', json.loads(r.body))
        self.assertIsNone(r.header('Via'))


class ForwardedOff(ProxyCase):

    def test_forwarded_false_sends_x_forwarded_for_alone_and_drops_forgeries(self):
        r = self.exchange(b'GET /xff/f HTTP/1.1\r\nHost: example.test\r\n'
                          b'X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\n'
                          b'X-Forwarded-Host: evil.test\r\nForwarded: for=192.0.2.8\r\n'
                          b'Connection: close\r\n\r\n')
        self.assertEqual(r.status, 200, r.body[:300])
        e = json.loads(r.body)
        self.assertEqual(e['HTTP_X_FORWARDED_FOR'], '192.0.2.7, 127.0.0.1')
        self.assertEqual(e['HTTP_HOST'], 'example.test')
        for k in ('HTTP_X_FORWARDED_PROTO', 'HTTP_X_FORWARDED_HOST', 'HTTP_FORWARDED'):
            self.assertNotIn(k, e)


class Upstream(ProxyCase):
    """Shapes a real application server does not produce."""

    def test_upstream_hop_by_hop_fields_do_not_reach_the_client(self):
        r = self.exchange(b'GET /bad/hop HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        self.assertEqual((r.status, r.body), (200, b'ok'))
        self.assertIsNone(r.header('X-Hop'))
        self.assertIsNone(r.header('Keep-Alive'))
        self.assertEqual(r.header('X-Kept'), 'yes')
        # the upstream's "close" is not the client's: its connection stays
        s = harness.connect(self.port)
        try:
            for _ in range(2):
                s.sendall(b'GET /bad/hop HTTP/1.1\r\nHost: t\r\n\r\n')
                r = harness.read_response(s)
                self.assertEqual(r.status, 200)
                self.assertNotIn('close', (r.header('Connection') or '').lower())
        finally:
            s.close()

    def test_interim_100_then_the_answer_for_http_client(self):
        st, _, data = self.req('GET', '/bad/interim')
        self.assertEqual((st, data), (200, b'after 1'))

    def test_head_answer_has_no_body_and_keeps_the_connection(self):
        s = harness.connect(self.port)
        try:
            s.sendall(b'HEAD /bad/head HTTP/1.1\r\nHost: t\r\n\r\n')
            r = harness.read_response(s, 'HEAD')
            self.assertEqual(r.status, 200, self.log_tail())
            self.assertEqual((r.header('X-Head'), r.header('Content-Length')), ('1', '10'))
            self.assertEqual(r.body, b'')
            # a HEAD answer with a Content-Length is complete without a body
            self.assertNotIn('close', (r.header('Connection') or '').lower())
            s.sendall(b'GET /bad/chunked HTTP/1.1\r\nHost: t\r\n\r\n')
            r = harness.read_response(s)
            self.assertEqual((r.status, r.body), (200, b'one two three'))
        finally:
            s.close()

    def test_chunked_and_close_delimited_bodies(self):
        st, _, data = self.req('GET', '/bad/chunked')
        self.assertEqual((st, data), (200, b'one two three'))
        st, _, data = self.req('GET', '/bad/close')
        self.assertEqual((st, data), (200, b'until the close'))

    def test_location_naming_the_upstream_is_rewritten(self):
        r = self.exchange(b'GET /bad/redirect HTTP/1.1\r\nHost: front.test\r\n'
                          b'Connection: close\r\n\r\n')
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header('Location'), 'http://front.test/there?x=1')

    def test_retry_on_a_fresh_connection_after_a_dropped_pooled_one(self):
        st, _, first = self.req('GET', '/bad/retry')
        self.assertEqual(st, 200)
        # the pooled connection is taken again; the upstream drops it
        # without an answer: portico tries once more on a new one
        st, _, second = self.req('GET', '/bad/retry')
        self.assertEqual(st, 200, self.log_tail())
        c1 = int(first.split()[1])
        self.assertEqual(second, b'conn %d req 1' % (c1 + 1))

    def test_broken_responses_are_502_with_a_log_line(self):
        cases = {
            'bad-cl': 'invalid Content-Length',
            'cl-te': 'both Content-Length and Transfer-Encoding',
            'two-cl': 'repeated Content-Length',
            'te-gzip': 'Transfer-Encoding other than chunked',
            'big-header': r'too large \(gw_header_max\)',
            'bare-cr': 'bare CR',
            'obs-fold': 'obs-fold',
            'status-garbage': 'invalid status line',
            'ws-colon': 'whitespace before colon',
            'bad-name': 'invalid header name',
            'no-colon': 'invalid header line',
            'nul-value': 'invalid character in header value',
            # checked before it is dropped, and in a 1xx never passed on
            'del-hop': 'invalid character in header value',
            'ctl-interim': 'invalid character in header value',
        }
        for what, why in cases.items():
            with self.subTest(what=what):
                st, _, _ = self.req('GET', '/bad/' + what)
                self.assertEqual(st, 502, what + self.log_tail())
                self.assert_log(r'proxy bad \(127\.0\.0\.1:\d+\): invalid response header: %s, '
                                r'client: .*"GET /bad/%s' % (why, what), what)

    def test_broken_chunked_body_cuts_the_response(self):
        for what, why in (('trunc-chunked', 'closed the connection before the end'),
                          ('bad-chunk', 'invalid chunked response body')):
            with self.subTest(what=what):
                s = harness.connect(self.port)
                try:
                    s.sendall(b'GET /bad/%s HTTP/1.1\r\nHost: t\r\n\r\n' % what.encode())
                    data = harness.recv_until_close(s, 30)
                finally:
                    s.close()
                # the status line may have gone out: then the client sees
                # the cut (no last chunk), never a complete response
                self.assertNotIn(b'\r\n0\r\n\r\n', data)
                self.assert_log(r'proxy bad .*%s.*"GET /bad/%s' % (why, what), what)

    def test_bytes_after_the_end_are_not_taken_for_the_next_answer(self):
        st, _, data = self.req('GET', '/bad/after-end')
        self.assertEqual((st, data), (200, b'hello'))
        self.assert_log(r'proxy bad .*bytes after the end of the response', 'the extra bytes')
        st, _, data = self.req('GET', '/bad/chunked')
        self.assertEqual((st, data), (200, b'one two three'))


class Failures(ProxyCase):

    def test_upstream_down_is_502_with_a_log_line(self):
        st, _, _ = self.req('GET', '/down/x')
        self.assertEqual(st, 502, self.log_tail())
        self.assert_log(r'proxy down \(%s\): connect failed: Connection refused' %
                        re.escape(self.dead[0]), 'the refused connection')

    def test_log_context_escapes_and_cuts_a_long_target(self):
        # the request line of the log context: escaped (the quote), cut
        # after 200 bytes of target with "...", the version after it
        tgt = '/down/' + 'q"' + 'x' * 300
        r = self.exchange(('GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
                           % tgt).encode())
        self.assertEqual(r.status, 502, self.log_tail())
        self.assert_log(r'proxy down \(%s\): connect failed: .*, client: 127\.0\.0\.1:\d+, '
                        r'request: "GET /down/q\\"x{192}\.\.\. HTTP/1\.1"'
                        % re.escape(self.dead[0]), 'the cut request line')

    def test_silent_upstream_is_504_after_read_timeout(self):
        st, _, _ = self.req('GET', '/silent/x', timeout=60)
        self.assertEqual(st, 504, self.log_tail())
        self.assert_log(r'proxy silent \(127\.0\.0\.1:\d+\): read timed out', 'the read timeout')

    def test_failover_to_the_second_server(self):
        for i in range(4):
            e = self.env('GET', '/two/f?i=%d' % i)
            self.assertEqual(e['QUERY_STRING'], 'i=%d' % i)
        self.assert_log(r'proxy two \(%s\): connect failed: Connection refused' %
                        re.escape(self.dead[1]), 'the refused first server')

    def test_max_conns_queues_the_second_request(self):
        g = tag()
        self.addCleanup(self.gt.open_gate, g)
        before = self.gt.counters()['started']
        path = ('GET /q/sleep?mode=sleep&gate=%s HTTP/1.1\r\nHost: t\r\n'
                'Connection: close\r\n\r\n' % g).encode()
        s1 = harness.connect(self.port, timeout=60)
        self.addCleanup(s1.close)
        s1.sendall(path)
        self.assertTrue(wait_for(lambda: self.gt.counters()['started'] == before + 1, 20),
                        self.log_tail())
        s2 = harness.connect(self.port, timeout=60)
        self.addCleanup(s2.close)
        s2.sendall(path)
        time.sleep(1)  # room for a wrong second connection to show up
        self.assertEqual(self.gt.counters()['started'], before + 1, 'max_conns = 1 exceeded')
        self.gt.open_gate(g)
        r1, r2 = harness.read_response(s1), harness.read_response(s2)
        self.assertEqual((r1.status, r2.status), (200, 200), self.log_tail())
        self.assertEqual(self.gt.counters()['started'], before + 2)


class SlowUpload(ProxyCase):

    def test_slow_upload_does_not_hold_the_single_sync_worker(self):
        """gunicorn's one sync worker serves one request at a time: were the
        upload passed through as it trickles in, the other clients would
        wait behind it. The body (50 MiB, sent in pieces with pauses) is
        collected first, so other clients are answered, by that same one
        worker, while the upload is still unfinished; the upload reaches
        gunicorn whole."""
        body = os.urandom(50 * 1024 * 1024)
        s1 = harness.connect(self.port, timeout=120)
        self.addCleanup(s1.close)
        s1.sendall(b'POST /sync/up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n'
                   b'Connection: close\r\n\r\n' % len(body))
        piece, pids = 256 * 1024, set()
        for i, off in enumerate(range(0, len(body), piece)):
            s1.sendall(body[off:off + piece])
            time.sleep(0.005)
            if i % 50 == 25:
                # the upload is under way: another client's request goes through
                e = self.env('GET', '/sync/other?who=%d' % i)
                self.assertEqual(e['QUERY_STRING'], 'who=%d' % i)
                pids.add(e['pid'])
        self.assertEqual(len(pids), 1, pids)  # gunicorn's one worker served them all
        r = harness.read_response(s1, 'POST')
        self.assertEqual(r.status, 200, self.log_tail())
        e = json.loads(r.body)
        self.assertEqual((e['body_len'], e['body_sha256']),
                         (len(body), hashlib.sha256(body).hexdigest()))
        self.assertEqual(e['pid'], pids.pop())


@unittest.skipUnless(HAVE_GUNICORN, 'python3-gunicorn is not installed')
class Flags(unittest.TestCase):
    """--proxy alone builds the backend and the location, like --fastcgi."""

    def test_flag_routes_to_http_servers(self):
        ProxyCase.setUpClass()
        gt = ProxyCase.gt
        dead = '127.0.0.1:%d' % harness.free_port()
        with harness.Server('--proxy', '/fp/=%s,127.0.0.1:%d' % (dead, gt.port),
                            '--proxy', '/fpu/=unix:' + gt.sock) as srv:
            for prefix in ('/fp/', '/fpu/'):
                for i in range(2):
                    st, _, data = harness.request(srv.port, 'GET', prefix + 'p?q=%d' % i)
                    self.assertEqual(st, 200, srv.stderr_text()[-2000:])
                    e = json.loads(data)
                    self.assertEqual((e['PATH_INFO'], e['QUERY_STRING']),
                                     (prefix + 'p', 'q=%d' % i))

    def test_ten_servers_fail_over_past_nine_refusing_ones(self):
        """More servers than a request's inline record of tried ones holds
        (8): the record is allocated, and every request reaches the live one."""
        ProxyCase.setUpClass()
        gt = ProxyCase.gt
        # nine distinct ports: free_port() may hand out one twice, and a
        # repeated server is a configuration error
        ports = set()
        while len(ports) < 9:
            ports.add(harness.free_port())
        dead = ['127.0.0.1:%d' % p for p in sorted(ports)]
        with harness.Server('--proxy', '/fp/=%s,127.0.0.1:%d' % (','.join(dead), gt.port)) as srv:
            for i in range(12):
                st, _, data = harness.request(srv.port, 'GET', '/fp/p?q=%d' % i)
                self.assertEqual(st, 200, srv.stderr_text()[-2000:])
                self.assertEqual(json.loads(data)['QUERY_STRING'], 'q=%d' % i)
            self.assertTrue(srv.wait_for_log(r'connect failed: Connection refused', 15),
                            'no refused server was tried' + srv.stderr_text()[-2000:])

    def test_https_client_is_forwarded_as_https(self):
        ProxyCase.setUpClass()
        d = tempfile.mkdtemp(prefix='pt-proxy-tls-')
        self.addCleanup(shutil.rmtree, d, True)
        crt, key = os.path.join(d, 'c.crt'), os.path.join(d, 'c.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '2', '-subj', '/CN=localhost',
                        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', crt, '--key', key,
                            '--proxy', '/tp/=127.0.0.1:%d' % ProxyCase.gt.port,
                            listen=[]) as srv:
            r = harness.curl('-s', '--cacert', crt, '--resolve',
                             'localhost:%d:127.0.0.1' % srv.port,
                             'https://localhost:%d/tp/x' % srv.port)
            self.assertEqual(r.returncode, 0, srv.stderr_text()[-2000:])
            e = json.loads(r.stdout)
            self.assertEqual(e['HTTP_X_FORWARDED_PROTO'], 'https')
            self.assertEqual(e['HTTP_FORWARDED'],
                             'for=127.0.0.1;proto=https;host="localhost:%d"' % srv.port)

    def test_bad_flag_is_refused(self):
        for arg in ('noslash', '.php=127.0.0.1:1'):
            r = subprocess.run([harness.PORTICO, '-t', '--proxy', arg], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertNotEqual(r.returncode, 0, arg)
            self.assertIn(b'--proxy', r.stderr)


if __name__ == '__main__':
    harness.main()
