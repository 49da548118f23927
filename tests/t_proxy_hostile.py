"""t_proxy_hostile.py: the HTTP reverse proxy against a hostile upstream
(tests/lib/scripted_upstream.py, a raw socket scripted per request):
smuggling shapes in its responses, garbage, resets, never answering,
answering forever, trickling.

For each shape: the client gets the right status (502 or 504), or a cut
response when the head had already gone out; portico logs a line naming
the cause; the upstream connection that carried the broken response is
closed, never taken from the pool again (the scripted upstream keeps it
open, so that is portico's decision alone); and other clients of the same
(single) worker are served meanwhile.

No test asserts a timing: waits are generous upper bounds."""

import os
import re
import select
import shutil
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import scripted_upstream as su  # noqa: E402

OK = b'HTTP/1.1 200 OK\r\n'
CHUNKED = OK + b'Transfer-Encoding: chunked\r\n\r\n'


def interim_forever(c, method, hdrs):
    """103 Early Hints, again and again, never the final answer."""
    try:
        while True:
            c.send(b'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n')
    except OSError:
        return False


def late_extra(c, method, hdrs):
    """A complete answer, then (a moment later, in its own segment) bytes
    shaped as the next answer: they must never reach a client."""
    c.send(OK + b'Content-Length: 5\r\n\r\nhello')
    time.sleep(0.3)
    c.send(OK + b'Content-Length: 8\r\n\r\nsmuggled')
    return True


def forever_unbuffered(c, method, hdrs):
    """su.forever, asking for its answer not to be buffered."""
    c.send(b'HTTP/1.1 200 OK\r\nX-Accel-Buffering: no\r\n\r\n')
    block = b'f' * 65536
    while True:
        c.send(block)


def split_head(c, method, hdrs):
    """An interim answer and the first part of the final head, then (in a
    segment of its own) the rest of it and the body: the head is put
    together from two reads."""
    c.send(b'HTTP/1.1 100 Continue\r\n\r\n' + OK + b'X-Part: one\r\nSet-Cookie: a=1\r\nX-Cu')
    time.sleep(0.3)
    c.send(b't: two\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nfinal')
    return True


def reset_after(data):
    def fn(c, method, hdrs):
        c.send(data)
        time.sleep(0.2)  # the bytes reach portico before the RST
        c.reset()
        return False
    return fn


SCRIPTS = {
    'conn': su.conn_script,
    'sink': lambda c, m, h: su.raw(OK + b'Content-Length: 3\r\n\r\ngot')(c, m, h),
    # the head: framing that could smuggle, or is not HTTP/1.x at all
    'cl-te': su.raw(OK + b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
                    b'5\r\nhello\r\n0\r\n\r\n'),
    'te-cl': su.raw(OK + b'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n'
                    b'5\r\nhello\r\n0\r\n\r\n'),
    'two-cl': su.raw(OK + b'Content-Length: 5\r\nContent-Length: 13\r\n\r\nhello'),
    'cl-list': su.raw(OK + b'Content-Length: 5, 13\r\n\r\nhello'),
    'te-gzip-chunked': su.raw(OK + b'Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'),
    'te-chunked-gzip': su.raw(OK + b'Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'),
    'te-two': su.raw(OK + b'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n'
                     b'0\r\n\r\n'),
    'big-header': su.raw(OK + b'X-Big: ' + b'a' * 100000 + b'\r\nContent-Length: 2\r\n\r\nok'),
    'many-headers': su.raw(OK + b''.join(b'X-H%d: v\r\n' % i for i in range(400)) +
                           b'Content-Length: 2\r\n\r\nok'),
    'nul-value': su.raw(OK + b'X-A: a\x00b\r\nContent-Length: 2\r\n\r\nok'),
    'nul-name': su.raw(OK + b'X-\x00A: a\r\nContent-Length: 2\r\n\r\nok'),
    'bare-cr': su.raw(OK + b'X-A: 1\rContent-Length: 0\r\nContent-Length: 2\r\n\r\nok'),
    'obs-fold': su.raw(OK + b'X-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\nok'),
    'space-colon': su.raw(OK + b'Content-Length : 2\r\n\r\nok'),
    'status-http2': su.raw(b'HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    'status-icy': su.raw(b'ICY 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    'status-short': su.raw(b'HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok'),
    'status-none': su.raw(b'hello there\r\n\r\n'),
    'garbage': su.raw(bytes(range(256)) * 4 + b'\r\n\r\n'),
    'interim-forever': interim_forever,
    'split-head': split_head,
    'reset-head': reset_after(OK + b'Content-Len'),
    # the body: the head went out, the client sees the cut
    'chunk-overflow': su.raw(CHUNKED + b'1' + b'f' * 20 + b'\r\nhello\r\n0\r\n\r\n'),
    'chunk-negative': su.raw(CHUNKED + b'-5\r\nhello\r\n0\r\n\r\n'),
    'chunk-no-crlf': su.raw(CHUNKED + b'5\r\nhelloXX0\r\n\r\n'),
    'chunk-ext-huge': su.raw(CHUNKED + b'5;e=' + b'x' * 100000 + b'\r\nhello\r\n0\r\n\r\n'),
    'trailers-huge': su.raw(CHUNKED + b'5\r\nhello\r\n0\r\nX-T: ' + b'a' * 100000 +
                            b'\r\n\r\n'),
    'reset-body': reset_after(OK + b'Content-Length: 100\r\n\r\n0123456789'),
    'reset-chunked': reset_after(CHUNKED + b'a\r\n0123456789\r\n'),
    # no body allowed: the bytes after the head are not the next answer
    '204-body': su.raw(b'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8'
                       b'\r\n\r\nsmuggled'),
    '304-body': su.raw(b'HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\nsmuggled'),
    'head-body': su.raw(OK + b'Content-Length: 8\r\n\r\nsmuggled'),
    'cl-extra': su.raw(OK + b'Content-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n'
                       b'Content-Length: 8\r\n\r\nsmuggled'),
    'late-extra': late_extra,
    # heads longer than proxy.c's table of line ends (48 lines): what
    # lies past it is read as carefully as what lies before
    'long-head': su.raw(OK + b'X-Early: gone\r\n' +
                        b''.join(b'X-H%d: v\r\n' % i for i in range(55)) +
                        b'Connection: x-early\r\nContent-Length: 2\r\nX-Late: here\r\n\r\nok'),
    'long-head-cl-te': su.raw(OK + b'Content-Length: 2\r\n' +
                              b''.join(b'X-H%d: v\r\n' % i for i in range(55)) +
                              b'Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
    # interim answers before the final one
    'early-hints': su.raw(b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n'
                          b'Link: </s.css>; rel=preload\r\n\r\n' + OK +
                          b'Content-Length: 5\r\n\r\nfinal'),
    # a 100 nobody asked for (RFC 9110 §15.2.1 allows it), a 103 with a
    # length field, which a 1xx cannot have (§8.6), and a hop-by-hop field
    'continue': su.raw(b'HTTP/1.1 100 Continue\r\n\r\n' + OK + b'Content-Length: 5\r\n\r\nfinal'),
    'hints-cl': su.raw(b'HTTP/1.1 103 Early Hints\r\nContent-Length: 3\r\nKeep-Alive: 5\r\n'
                       b'Link: </a.js>; rel=preload\r\n\r\n' + OK +
                       b'Content-Length: 5\r\n\r\nfinal'),
    # slowness
    'silent': su.silent,
    'hold': su.silent,
    'forever': su.forever,
    'forever-nobuf': forever_unbuffered,
    'trickle-body': su.trickle(b'', b'x' * 100, OK + b'Content-Length: 100\r\n\r\n'),
    'trickle-head': su.trickle(OK + b'X-Slow: ' + b's' * 60 + b'\r\nContent-Length: 2\r\n\r\n',
                               b'ok'),
}


def cgi_scripts(status_line):
    """The shapes for SCGI (a CGI header block, RFC 3875 §6) and uwsgi (an
    HTTP status line, then the same block); the server closes after each."""
    st = (lambda s: b'HTTP/1.1 ' + s + b'\r\n') if status_line else \
        (lambda s: b'Status: ' + s + b'\r\n')
    ok = st(b'200 OK')
    return {
        'conn': su.raw(ok + b'Content-Type: text/plain\r\n\r\nfine', keep=False),
        'big-header': su.raw(ok + b'X-Big: ' + b'a' * 100000 + b'\r\n\r\nok', keep=False),
        'endless-header': su.forever_header(ok),
        'bad-status': su.raw(st(b'abc') + b'\r\nok', keep=False),
        'status-1xx': su.raw(st(b'103 Early Hints') + b'\r\nok', keep=False),
        'status-600': su.raw(st(b'600 Nope') + b'\r\nok', keep=False),
        'garbage': su.raw(bytes(range(256)) * 4 + b'\r\n\r\n', keep=False),
        'nul-value': su.raw(ok + b'X-A: a\x00b\r\n\r\nok', keep=False),
        'obs-fold': su.raw(ok + b'X-A: 1\r\n  folded\r\n\r\nok', keep=False),
        'no-output': su.raw(b'', keep=False),
        'reset-head': reset_after(ok + b'Content-Ty'),
        'cut-body': su.raw(ok + b'Content-Length: 100\r\n\r\n0123456789', keep=False),
        'silent': su.silent,
        'trickle-head': su.trickle(ok + b'X-Slow: ' + b's' * 60 + b'\r\n\r\n', b'ok'),
    }


CONF = '''
limits = { gw_buffer_max = "4M"; gw_buffer_memory = "256K"; body_timeout = "2s";
           body_min_rate = "2K"; };
backends = (
  { name = "h"; servers = ( "127.0.0.1:@H@" ); max_fails = 0; read_timeout = "3s"; },
  { name = "rt"; servers = ( "127.0.0.1:@H@" ); max_fails = 0; read_timeout = "60s";
    response_timeout = "4s"; },
  { name = "sc"; servers = ( "127.0.0.1:@SC@" ); max_fails = 0; read_timeout = "3s"; },
  { name = "uw"; servers = ( "127.0.0.1:@UW@" ); max_fails = 0; read_timeout = "3s"; },
  { name = "dead"; servers = ( "@DEAD@", "@DEAD2@" ); max_fails = 1; fail_timeout = "300s"; },
  { name = "dead1"; servers = ( "@DEAD3@" ); max_fails = 1; fail_timeout = "300s"; },
  { name = "busy"; servers = ( { address = "127.0.0.1:@H@"; max_conns = 1; } ); queue = 0;
    max_fails = 0; read_timeout = "3s"; }
);
locations = (
  { prefix = "/h/"; handler = "proxy"; backend = "h"; },
  { prefix = "/h1x/"; handler = "proxy"; backend = "h"; interim_responses = false; },
  { prefix = "/s/"; handler = "proxy"; backend = "h"; buffering = false; },
  { prefix = "/st/"; handler = "proxy"; backend = "h"; request_buffering = false; },
  { prefix = "/rt/"; handler = "proxy"; backend = "rt"; },
  { prefix = "/sc/"; handler = "scgi"; backend = "sc"; },
  { prefix = "/uw/"; handler = "uwsgi"; backend = "uw"; },
  { prefix = "/dead/"; handler = "proxy"; backend = "dead"; },
  { prefix = "/dead1/"; handler = "proxy"; backend = "dead1"; },
  { prefix = "/busy/"; handler = "proxy"; backend = "busy"; }
);
'''


def sanitized(pid):
    """ASan keeps freed memory in quarantine (256 MiB): RSS says nothing."""
    with open('/proc/%d/maps' % pid) as f:
        return 'libasan' in f.read()


class HostileCase(unittest.TestCase):
    """One scripted upstream and one portico (-w 1) for the module."""
    srv = None

    @classmethod
    def setUpClass(cls):
        if HostileCase.srv is not None:
            return
        HostileCase.up = su.Upstream(SCRIPTS)
        HostileCase.sc = su.Upstream(cgi_scripts(False), 'scgi')
        HostileCase.uw = su.Upstream(cgi_scripts(True), 'uwsgi')
        conf = (CONF.replace('@H@', str(HostileCase.up.port))
                .replace('@SC@', str(HostileCase.sc.port))
                .replace('@UW@', str(HostileCase.uw.port))
                .replace('@DEAD@', '127.0.0.1:%d' % harness.free_port())
                .replace('@DEAD2@', '127.0.0.1:%d' % harness.free_port())
                .replace('@DEAD3@', '127.0.0.1:%d' % harness.free_port()))
        srv = harness.Server(conf=conf, workers=1)
        srv.write_file('static.txt', 'static here')
        srv.start()
        HostileCase.srv = srv
        HostileCase.port = srv.port

    @classmethod
    def tearDownModuleState(cls):
        if HostileCase.srv is not None:
            try:
                rc = HostileCase.srv.stop()
                assert rc == 0, 'portico exited with %r on SIGTERM' % rc
            finally:
                shutil.rmtree(HostileCase.srv.tmpdir, ignore_errors=True)
                HostileCase.srv = None
                HostileCase.up.stop()
                HostileCase.sc.stop()
                HostileCase.uw.stop()

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def assert_log(self, regex, what):
        self.assertTrue(self.srv.wait_for_log(regex, 20), 'no log line for %s (%s)%s' %
                        (what, regex, self.log_tail()))

    def req(self, path, method='GET', timeout=60):
        return harness.request(self.port, method, path, timeout=timeout)

    def raw_get(self, path, method='GET', timeout=60):
        """The whole byte stream the client gets, until portico closes."""
        data, closed = harness.raw_closed(
            self.port, b'%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' %
            (method.encode(), path.encode()), timeout)
        self.assertTrue(closed, 'portico did not close: %r' % data[:300])
        return data

    def pooled(self, prefix='/h/'):
        """A request that leaves an idle connection in the pool: its id."""
        st, _, body = self.req(prefix + 'conn')
        self.assertEqual(st, 200, body + self.log_tail().encode())
        m = re.match(rb'conn (\d+) req (\d+)$', body)
        self.assertTrue(m, body)
        return int(m.group(1))

    def assert_not_reused(self, cid, prefix='/h/'):
        """The connection cid carried a broken answer: portico closed it,
        and the next request gets a new connection."""
        self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(cid), 20),
                        'portico kept upstream connection %d open' % cid + self.log_tail())
        nxt = self.pooled(prefix)
        self.assertNotEqual(nxt, cid)

    def assert_others_served(self):
        """Another client of the same worker: a static file and a proxied
        request."""
        st, _, body = self.req('/static.txt', timeout=30)
        self.assertEqual((st, body), (200, b'static here'))
        st, _, body = self.req('/h/conn', timeout=30)
        self.assertEqual(st, 200, body)

    def run_beside(self, fn):
        """fn() in a thread while other clients are served."""
        out = {}

        def run():
            try:
                out['r'] = fn()
            except Exception as e:  # noqa: BLE001
                out['e'] = e
        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.5)  # the slow request is under way (not a timing assertion)
        self.assert_others_served()
        t.join(120)
        self.assertFalse(t.is_alive())
        if 'e' in out:
            raise out['e']
        return out['r']


class BrokenHead(HostileCase):
    """A broken head: 502, its own log line, the connection dropped."""

    CASES = {
        'cl-te': 'both Content-Length and Transfer-Encoding',
        'te-cl': 'both Content-Length and Transfer-Encoding',
        'two-cl': 'repeated Content-Length',
        'cl-list': 'invalid Content-Length',
        'te-gzip-chunked': 'Transfer-Encoding other than chunked',
        'te-chunked-gzip': 'Transfer-Encoding other than chunked',
        'te-two': 'repeated Transfer-Encoding',
        'big-header': r'too large \(gw_header_max\)',
        'many-headers': 'too many header lines',
        'nul-value': 'invalid character in header value',
        'nul-name': 'invalid header name',
        'bare-cr': 'bare CR',
        'obs-fold': 'obs-fold',
        'space-colon': 'whitespace before colon',
        'status-http2': 'invalid status line',
        'status-icy': 'invalid status line',
        'status-short': 'invalid status line',
        'status-none': 'invalid status line',
        'garbage': 'invalid status line',
    }

    def test_each_broken_head_is_502_with_its_log_line_and_the_connection_dropped(self):
        for what, why in self.CASES.items():
            for prefix in ('/h/', '/s/'):
                with self.subTest(what=what, prefix=prefix):
                    cid = self.pooled(prefix)
                    st, _, _ = self.req(prefix + what)
                    self.assertEqual(st, 502, what + self.log_tail())
                    self.assert_log(r'proxy h \(127\.0\.0\.1:\d+\): invalid response header: '
                                    r'%s.*, client: .*"GET %s%s' % (why, prefix, what), what)
                    self.assert_not_reused(cid, prefix)

    def test_reset_mid_head_is_502(self):
        self.pooled()
        st, _, _ = self.req('/h/reset-head')
        self.assertEqual(st, 502, self.log_tail())
        self.assert_log(r'proxy h .*closed the connection before the response header: '
                        r'Connection reset by peer.*"GET /h/reset-head', 'the reset')
        self.assert_others_served()

    def test_no_header_bytes_reach_the_client_from_a_broken_head(self):
        # the 502 is portico's own page: nothing of the upstream's head
        data = self.raw_get('/h/nul-value')
        self.assertTrue(data.startswith(b'HTTP/1.1 502 '), data[:200])
        self.assertNotIn(b'X-A', data)


class BrokenBody(HostileCase):
    """A broken body after a good head: the head went out, the client sees
    the cut (no last chunk, or fewer bytes than the length), portico logs
    it and drops the connection."""

    CASES = {
        'chunk-overflow': 'invalid chunked response body',
        'chunk-negative': 'invalid chunked response body',
        'chunk-no-crlf': 'invalid chunked response body',
        'chunk-ext-huge': 'invalid chunked response body',
        'trailers-huge': 'invalid chunked response body',
        'reset-body': 'closed the connection before the end of the response: '
                      'Connection reset by peer',
        'reset-chunked': 'closed the connection before the end of the response: '
                         'Connection reset by peer',
    }

    def test_each_broken_body_cuts_the_response(self):
        for what, why in self.CASES.items():
            for prefix in ('/h/', '/s/'):
                with self.subTest(what=what, prefix=prefix):
                    cid = self.pooled(prefix)
                    data = self.raw_get(prefix + what)
                    if data.startswith(b'HTTP/1.1 502 '):
                        pass  # nothing had gone out yet: a 502 is right too
                    else:
                        r = harness.read_response(data)
                        self.assertEqual(r.status, 200, data[:300])
                        self.assertFalse(r.complete, 'a cut response looks complete: %r' %
                                         data[:300])
                    self.assert_log(r'proxy h .*%s.*"GET %s%s' % (why, prefix, what), what)
                    if not what.startswith('reset'):
                        self.assert_not_reused(cid, prefix)


class NoBody(HostileCase):
    """Bytes where no body may be (204, 304, HEAD, beyond Content-Length):
    the answer passes without them, they are logged, the connection is
    dropped, and they never answer a later request."""

    def check(self, path, method, status, body):
        cid = self.pooled()
        st, _, data = self.req(path, method)
        self.assertEqual((st, data), (status, body), self.log_tail())
        self.assert_log(r'proxy h .*bytes after the end of the response.*"%s %s' %
                        (method, path), path)
        self.assert_not_reused(cid)
        for _ in range(3):
            st, _, data = self.req('/h/conn')
            self.assertNotIn(b'smuggled', data)

    def test_204_with_a_body(self):
        self.check('/h/204-body', 'GET', 204, b'')

    def test_304_with_a_body(self):
        self.check('/h/304-body', 'GET', 304, b'')

    def test_head_answered_with_a_body(self):
        self.check('/h/head-body', 'HEAD', 200, b'')

    def test_more_bytes_than_content_length(self):
        self.check('/h/cl-extra', 'GET', 200, b'hello')

    def test_late_bytes_on_a_pooled_connection_are_not_the_next_answer(self):
        st, _, data = self.req('/h/late-extra')
        self.assertEqual((st, data), (200, b'hello'))
        served = self.up.served_by('late-extra')
        # the extra bytes reach the idle connection: portico drops it
        self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(served), 20),
                        'the idle connection that got bytes stayed open' + self.log_tail())
        self.assert_log(r'proxy h .*bytes on an idle connection', 'the idle bytes')
        st, _, data = self.req('/h/conn')
        self.assertEqual(st, 200)
        self.assertNotIn(b'smuggled', data)


class LongHead(HostileCase):
    """A head of more lines than the proxy's table of line ends."""

    def test_fields_past_the_line_table_are_passed_and_dropped_as_before(self):
        st, hdrs, body = self.req('/h/long-head')
        self.assertEqual((st, body), (200, b'ok'), self.log_tail())
        self.assertEqual(hdrs.get('x-late'), 'here')
        self.assertEqual(hdrs.get('x-h54'), 'v')
        self.assertNotIn('x-early', hdrs)  # named by a Connection past the table

    def test_framing_conflict_past_the_line_table_is_502(self):
        cid = self.pooled()
        st, _, _ = self.req('/h/long-head-cl-te')
        self.assertEqual(st, 502, self.log_tail())
        self.assert_log(r'invalid response header: both Content-Length and Transfer-Encoding.*'
                        r'"GET /h/long-head-cl-te', 'cl-te past the table')
        self.assert_not_reused(cid)


class Interim(HostileCase):
    """1xx answers of the upstream (RFC 9110 §15.2: a proxy forwards them):
    an HTTP/1.1 client gets each, with its fields (103 Early Hints' Link),
    ahead of the final answer; an HTTP/1.0 client none (it cannot tell them
    from the final one); a 100 not when portico answered the client's
    Expect itself; at most 16; none with interim_responses = false, which
    is what Python's http.client (3.11) needs: it takes a 103 for the
    final answer."""

    def exchange(self, head, body=b'', expect=False):
        """The answers on one connection up to the final one: [Response]."""
        s = harness.connect(self.port, timeout=60)
        try:
            s.sendall(head)
            out = []
            if expect:
                out.append(harness.read_response(s))  # portico's own 100
                s.sendall(body)
            elif body:
                s.sendall(body)
            while True:
                r = harness.read_response(s)
                out.append(r)
                if r.status >= 200:
                    return out
        finally:
            s.close()

    def test_100_and_103_reach_an_http11_client_with_their_fields(self):
        rs = self.exchange(b'GET /h/early-hints HTTP/1.1\r\nHost: t\r\n\r\n')
        self.assertEqual([(r.status, r.version) for r in rs],
                         [(100, 'HTTP/1.1'), (103, 'HTTP/1.1'), (200, 'HTTP/1.1')],
                         self.log_tail())
        self.assertEqual(rs[1].header('Link'), '</s.css>; rel=preload')
        self.assertEqual(rs[2].body, b'final')

    def test_a_1xx_loses_its_length_and_hop_by_hop_fields(self):
        rs = self.exchange(b'GET /h/hints-cl HTTP/1.1\r\nHost: t\r\n\r\n')
        self.assertEqual([r.status for r in rs], [103, 200], self.log_tail())
        self.assertEqual(rs[0].header('Link'), '</a.js>; rel=preload')
        self.assertIsNone(rs[0].header('Content-Length'))
        self.assertIsNone(rs[0].header('Keep-Alive'))
        self.assertEqual(rs[1].body, b'final')

    def test_an_http10_client_gets_only_the_final_answer(self):
        rs = self.exchange(b'GET /h/early-hints HTTP/1.0\r\nHost: t\r\n\r\n')
        self.assertEqual([r.status for r in rs], [200], self.log_tail())
        self.assertEqual(rs[0].body, b'final')

    def test_upstream_100_is_not_repeated_after_portico_answered_expect(self):
        rs = self.exchange(b'POST /h/early-hints HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n'
                           b'Expect: 100-continue\r\n\r\n', b'hello', expect=True)
        # portico's 100 (asked for), the upstream's 103, the answer: one 100
        self.assertEqual([r.status for r in rs], [100, 103, 200], self.log_tail())
        self.assertEqual(rs[1].header('Link'), '</s.css>; rel=preload')

    def test_http_client_gets_the_final_answer_after_an_unasked_100(self):
        st, _, data = self.req('/h/continue')
        self.assertEqual((st, data), (200, b'final'), self.log_tail())

    def test_interim_responses_false_drops_them_for_http_client(self):
        st, _, data = self.req('/h1x/early-hints')
        self.assertEqual((st, data), (200, b'final'), self.log_tail())

    def test_a_head_in_two_reads_after_an_interim_one(self):
        # the 100 is parsed where it lies; the final head is collected
        # across the reads and handed on whole, each field once
        st, hdrs, data = self.req('/h/split-head')
        self.assertEqual((st, data), (200, b'final'), self.log_tail())
        self.assertEqual(hdrs.get('x-part'), 'one')
        self.assertEqual(hdrs.get('x-cut'), 'two')
        self.assertIn('a=1', str(hdrs.get('set-cookie')))
        self.assertIn('b=2', str(hdrs.get('set-cookie')))

    def test_endless_interim_answers_stop_at_16_then_502(self):
        rs = self.exchange(b'GET /h/interim-forever HTTP/1.1\r\nHost: t\r\n\r\n')
        self.assertEqual([r.status for r in rs], [103] * 16 + [502], self.log_tail())
        cid = self.pooled('/h1x/')
        st, _, _ = self.run_beside(lambda: self.req('/h1x/interim-forever'))
        self.assertEqual(st, 502, self.log_tail())
        self.assert_log(r'proxy h \(127\.0\.0\.1:\d+\): invalid response header: too many '
                        r'interim responses.*"GET /h1x/interim-forever', 'the endless 1xx')
        self.assert_not_reused(cid, '/h1x/')


class Causes(HostileCase):
    """502, 503 and 504 each say why, in the answer's log line: a server
    refusing the connection (502, and it is marked down), every server
    down (503 \"no live server\"), every server at max_conns with the queue
    full (503 \"backend busy\"), a server that does not answer (504)."""

    def test_refused_is_502_then_no_live_server_is_503(self):
        st, _, _ = self.req('/dead/x')
        self.assertEqual(st, 502, self.log_tail())
        self.assert_log(r'proxy dead \(127\.0\.0\.1:\d+\): connect failed: Connection refused'
                        r'.*"GET /dead/x', 'the refused connection')
        self.assert_log(r'proxy dead .*server marked down', 'the server marked down')
        st, _, _ = self.req('/dead/y')
        self.assertEqual(st, 503, self.log_tail())
        self.assert_log(r'proxy dead: no live server.*"GET /dead/y', 'no live server')

    def test_a_backends_only_server_is_never_marked_down(self):
        # nothing to fail over to: every request tries it (a restarting
        # application server refuses connections for a moment)
        for i in range(3):
            st, _, _ = self.req('/dead1/%d' % i)
            self.assertEqual(st, 502, self.log_tail())
        rx = r'proxy dead1 \(127\.0\.0\.1:\d+\): connect failed: Connection refused'
        self.assertTrue(self.srv.wait_for(
            lambda: len(re.findall(rx, self.srv.stderr_text())) == 3, 15), self.log_tail())
        self.assertNotRegex(self.srv.stderr_text(), r'proxy dead1 .*(marked down|no live server)')

    def test_full_server_and_queue_is_503_and_silence_504(self):
        out = {}
        t = threading.Thread(target=lambda: out.update(r=self.req('/busy/hold')))
        t.start()
        try:
            self.assertTrue(harness.Server.wait_for(
                lambda: self.up.served_by('hold') is not None, 30), self.log_tail())
            st, _, _ = self.req('/busy/conn')
            self.assertEqual(st, 503, self.log_tail())
            self.assert_log(r'proxy busy: every server at max_conns and the queue is full'
                            r'.*"GET /busy/conn', 'the full queue')
        finally:
            t.join(120)
        self.assertEqual(out['r'][0], 504, self.log_tail())
        self.assert_log(r'proxy busy \(127\.0\.0\.1:\d+\): read timed out.*"GET /busy/hold',
                        'the silent server')


class Slow(HostileCase):
    """Upstreams that never answer, answer forever, or trickle."""

    def test_never_answering_is_504(self):
        for prefix in ('/h/', '/s/'):
            with self.subTest(prefix=prefix):
                st, _, _ = self.run_beside(lambda: self.req(prefix + 'silent'))
                self.assertEqual(st, 504, self.log_tail())
                self.assert_log(r'proxy h .*read timed out.*"GET %ssilent' % prefix, 'timeout')

    def test_trickled_head_is_504_after_the_read_timeout(self):
        # one byte a second: each byte would re-arm a per-read timeout
        # for ever; the head must come whole within read_timeout
        st, _, _ = self.run_beside(lambda: self.req('/h/trickle-head', timeout=90))
        self.assertEqual(st, 504, self.log_tail())
        self.assert_log(r'proxy h .*read timed out.*response header.*"GET /h/trickle-head',
                        'the head timeout')

    def test_trickled_body_meets_response_timeout(self):
        # a byte a second never meets read_timeout; response_timeout (4s
        # on /rt/) bounds the whole exchange: the client sees the cut
        data = self.run_beside(lambda: self.raw_get('/rt/trickle-body', timeout=90))
        r = harness.read_response(data)
        self.assertEqual(r.status, 200, data[:300])
        self.assertFalse(r.complete, data[:300])
        self.assertLess(len(r.body), 100)
        self.assert_log(r'proxy rt .*response timed out \(response_timeout\) in the body.*'
                        r'"GET /rt/trickle-body', 'the response timeout')
        cid = self.up.served_by('trickle-body')
        self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(cid), 30))

    def test_response_timeout_before_the_head_is_504(self):
        st, _, _ = self.run_beside(lambda: self.req('/rt/silent', timeout=90))
        self.assertEqual(st, 504, self.log_tail())
        self.assert_log(r'proxy rt .*response timed out \(response_timeout\), .*"GET /rt/silent',
                        'the response timeout')

    def stream_forever(self, prefix, nbytes):
        """A client reads nbytes of an endless answer, then leaves."""
        s = harness.connect(self.port, timeout=60)
        try:
            s.sendall(b'GET %sforever HTTP/1.1\r\nHost: t\r\n\r\n' % prefix.encode())
            got = 0
            while got < nbytes:
                b = s.recv(1 << 20)
                if not b:
                    break
                got += len(b)
            return got
        finally:
            s.close()

    def test_answering_forever_streams_with_bounded_memory(self):
        pid = self.srv.worker_pids()[0]
        before = harness.proc_status(pid, 'VmRSS')
        for prefix in ('/h/', '/s/'):
            with self.subTest(prefix=prefix):
                got = self.run_beside(lambda: self.stream_forever(prefix, 64 << 20))
                self.assertGreaterEqual(got, 64 << 20)
                cid = self.up.served_by('forever')
                # the client left: portico lets go of the upstream too
                self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(cid), 30),
                                'the endless upstream connection stayed open' + self.log_tail())
        grew = harness.proc_status(pid, 'VmRSS') - before
        if not sanitized(pid):
            self.assertLess(grew, 48 * 1024, 'worker RSS grew by %d KiB' % grew)

    def test_answering_forever_to_a_client_that_does_not_read_is_bounded(self):
        pid = self.srv.worker_pids()[0]
        before = harness.proc_status(pid, 'VmRSS')
        for prefix in ('/h/', '/s/'):
            with self.subTest(prefix=prefix):
                self.up.last.pop('forever', None)
                s = harness.connect(self.port, timeout=60)
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                    s.sendall(b'GET %sforever HTTP/1.1\r\nHost: t\r\n\r\n' % prefix.encode())
                    self.assertTrue(harness.Server.wait_for(
                        lambda: self.up.served_by('forever'), 30))
                    cid = self.up.served_by('forever')
                    self.assertTrue(harness.Server.wait_for(
                        lambda: self.up.conns[cid].sent > (1 << 20), 30))
                    time.sleep(3)  # room to run away, if it could
                    sent = self.up.conns[cid].sent
                    # gw_buffer_max (4M) plus the sockets' buffers, far from
                    # what 3 s of loopback would carry unbounded
                    self.assertLess(sent, 40 << 20, 'the upstream sent %d bytes' % sent)
                    self.assert_others_served()
                finally:
                    s.close()
                self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(cid), 30))
        grew = harness.proc_status(pid, 'VmRSS') - before
        if not sanitized(pid):
            self.assertLess(grew, 48 * 1024, 'worker RSS grew by %d KiB' % grew)


class AccelBuffering(HostileCase):
    """An answer the client does not read: buffered (the default) it goes
    on into a spill file (gw_buffer_memory, then tmp_dir); with
    X-Accel-Buffering: no from the upstream the worker stops reading the
    upstream instead and keeps no spill file."""

    @staticmethod
    def spill_files(pid):
        n = 0
        for fd in os.listdir('/proc/%d/fd' % pid):
            try:
                n += os.readlink('/proc/%d/fd/%s' % (pid, fd)).endswith('(deleted)')
            except OSError:
                pass
        return n

    def test_x_accel_buffering_no_reads_the_upstream_at_the_clients_pace(self):
        pid = self.srv.worker_pids()[0]
        base = self.spill_files(pid)
        for what, spills in (('forever', True), ('forever-nobuf', False)):
            with self.subTest(what=what):
                self.up.last.pop(what, None)
                s = harness.connect(self.port, timeout=60)
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                    s.sendall(b'GET /h/%s HTTP/1.1\r\nHost: t\r\n\r\n' % what.encode())
                    self.assertTrue(harness.Server.wait_for(
                        lambda: self.up.served_by(what), 30))
                    conn = self.up.conns[self.up.served_by(what)]
                    # the upstream's sending settles once nothing takes more
                    # (not a timing assertion: a slow machine settles later)
                    seen, still = -1, 0
                    deadline = time.monotonic() + 60
                    while still < 3 and time.monotonic() < deadline:
                        still = still + 1 if conn.sent == seen else 0
                        seen = conn.sent
                        time.sleep(0.5)
                    self.assertGreater(conn.sent, 1 << 18)
                    self.assertEqual(self.spill_files(pid) > base, spills,
                                     'upstream sent %d bytes' % conn.sent + self.log_tail())
                finally:
                    s.close()
                self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(conn.cid), 30))


class CgiStyle(HostileCase):
    """SCGI and uwsgi carry a CGI-style header block: the shapes where they
    differ from HTTP (RFC 3875 §6; uwsgi answers with a status line)."""

    BROKEN = {
        'big-header': 'too large',
        'endless-header': 'too many header lines',
        'bad-status': 'invalid Status',
        'status-1xx': '1xx status',
        'status-600': 'invalid Status',
        'garbage': 'invalid header line|invalid status line',
        'nul-value': 'invalid character in header value',
        'obs-fold': 'obs-fold|invalid header',
        'no-output': 'closed the connection before the response header',
        'reset-head': 'Connection reset by peer',
    }

    def each(self, fn):
        for name, prefix in (('scgi', '/sc/'), ('uwsgi', '/uw/')):
            with self.subTest(proto=name):
                fn(name, prefix)

    def test_a_good_answer(self):
        def check(name, prefix):
            st, _, data = self.req(prefix + 'conn')
            self.assertEqual((st, data), (200, b'fine'), self.log_tail())
        self.each(check)

    def test_each_broken_header_block_is_502_with_its_log_line(self):
        def check(name, prefix):
            for what, why in self.BROKEN.items():
                with self.subTest(what=what):
                    st, _, data = self.req(prefix + what)
                    self.assertEqual(st, 502, what + self.log_tail())
                    self.assertNotIn(b'ok', data)
                    self.assert_log(r'%s %s \(127\.0\.0\.1:\d+\): .*(%s).*"GET %s%s' %
                                    (name, prefix.strip('/'), why, prefix, what), what)
        self.each(check)

    def test_a_cut_body_is_cut_for_the_client(self):
        def check(name, prefix):
            data = self.raw_get(prefix + 'cut-body')
            r = harness.read_response(data)
            self.assertEqual(r.status, 200, data[:300])
            self.assertFalse(r.complete, data[:300])
            self.assert_log(r'gateway response ended before its Content-Length', 'the cut')
        self.each(check)

    def test_never_answering_is_504(self):
        def check(name, prefix):
            st, _, _ = self.run_beside(lambda: self.req(prefix + 'silent'))
            self.assertEqual(st, 504, self.log_tail())
            self.assert_log(r'%s %s .*read timed out.*"GET %ssilent' %
                            (name, prefix.strip('/'), prefix), 'the timeout')
        self.each(check)

    def test_trickled_header_block_is_504(self):
        def check(name, prefix):
            st, _, _ = self.run_beside(lambda: self.req(prefix + 'trickle-head', timeout=90))
            self.assertEqual(st, 504, self.log_tail())
            self.assert_log(r'%s %s .*read timed out before the whole response header.*'
                            r'"GET %strickle-head' % (name, prefix.strip('/'), prefix),
                            'the head timeout')
        self.each(check)


class SlowUpload(HostileCase):
    """limits.body_min_rate for a body streamed to the upstream
    (request_buffering = false) as for a collected one."""

    def trickle_body(self, path):
        """A body announced as 100000 bytes, sent 10 bytes at a time with
        pauses, until portico answers: the response."""
        s = harness.connect(self.port, timeout=60)
        try:
            s.sendall(b'POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n' %
                      path.encode())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    s.sendall(b'x' * 10)
                except OSError:
                    break
                r, _, _ = select.select([s], [], [], 0.3)
                if r:
                    break
            return harness.read_response(s, 'POST')
        finally:
            s.close()

    def test_trickled_streamed_body_is_408(self):
        r = self.trickle_body('/st/sink')
        self.assertEqual(r.status, 408, self.log_tail())
        self.assert_log(r'under body_min_rate', 'the slow body')
        # the upstream got a cut request: its connection is closed
        cid = self.up.served_by('sink')
        if cid is not None:
            self.assertTrue(harness.Server.wait_for(lambda: self.up.is_closed(cid), 20))
        self.assert_others_served()

    def test_trickled_collected_body_is_408_too(self):
        r = self.trickle_body('/h/sink')
        self.assertEqual(r.status, 408, self.log_tail())

    def test_a_streamed_body_at_a_good_rate_passes(self):
        st, _, data = harness.request(self.port, 'POST', '/st/sink', body=b'y' * 300000,
                                      timeout=60)
        self.assertEqual((st, data), (200, b'got'), self.log_tail())


def tearDownModule():
    HostileCase.tearDownModuleState()


if __name__ == '__main__':
    harness.main()
