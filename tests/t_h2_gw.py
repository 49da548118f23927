"""t_h2_gw.py: the gateways on HTTP/2 streams (issue 19): CGI, FastCGI (the
libfcgi sample app and PHP-FPM), SCGI, uwsgi and the HTTP proxy answer a
stream through the same code as an HTTP/1.1 request (gw.c, upstream_conn.c,
cgi.c). Request bodies are collected per stream (CONTENT_LENGTH known with
and without a content-length field, 1 MiB, 413 past max_body); several
gateway streams and static files share one connection; a client that opens
no flow-control window back-pressures its program and nobody else; a
RST_STREAM stops the program as a client disconnect does over HTTP/1.1; a
program's local redirect and error_page are served on the stream; an
upstream's 103 Early Hints goes out as a HEADERS frame of its own; an nph-
script is refused with a 502 before it runs (its output is HTTP/1.1 bytes);
request_buffering = false streams a body to the upstream before its end; a
static file compressed on the fly goes on as its stream drains; a
RST_STREAM closes a proxied or FastCGI response's upstream connection; an
X-Sendfile file and a cached response are served on a stream. Clients: curl --http2 and python3-h2 (t_h2.py's)."""

import hashlib
import http.server
import json
import os
import shutil
import socketserver
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'lib'))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import scripted_upstream as su  # noqa: E402
import fcgi_bad  # noqa: E402
import phpfpm  # noqa: E402
import t_h2  # noqa: E402
from t_cgi import stage_scripts, parse_env, byte_sum, alive, group_members, proc_stat  # noqa: E402

h2 = t_h2.h2
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(HERE, '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
UPLOAD = bytes((i * 13 + (i >> 9)) & 0xff for i in range(1 << 20))  # 1 MiB
wait_for = harness.Server.wait_for


class Echo(http.server.BaseHTTPRequestHandler):
    """The proxied application: the body back, with the length it saw."""
    protocol_version = 'HTTP/1.1'

    def do_POST(self):
        if self.headers.get('Transfer-Encoding') == 'chunked':
            body = b''
            while True:
                n = int(self.rfile.readline().split(b';')[0], 16)
                if n == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(n)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('X-Seen-Length', self.headers.get('Content-Length') or '-')
        self.send_header('X-Seen-TE', self.headers.get('Transfer-Encoding') or '-')
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        body = b'proxied ' + self.path.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class EchoServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def cgi_vars(c, method, hdrs):
    """SCGI/uwsgi: a CGI-style answer with what the request carried."""
    body = ('%s %s' % (hdrs.get('REQUEST_METHOD'), hdrs.get('CONTENT_LENGTH') or '-')).encode()
    c.send(b'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s'
           % (len(body), body))
    return False


def uwsgi_vars(c, method, hdrs):
    body = ('%s %s' % (hdrs.get('REQUEST_METHOD'), hdrs.get('CONTENT_LENGTH') or '-')).encode()
    c.send(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s'
           % (len(body), body))
    return False


class EarlyAnswer(harness.TcpUpstream):
    """An upstream that answers after the first 1000 bytes of a body (and
    the request head), without waiting for the rest: only a body streamed
    to it (request_buffering = false) gets it before the client's end."""

    def serve(self, s):
        try:
            data = b''
            while b'\r\n\r\n' not in data:
                b = s.recv(65536)
                if not b:
                    return
                data += b
            body = data.split(b'\r\n\r\n', 1)[1]
            while len(body) < 1000:
                b = s.recv(65536)
                if not b:
                    return
                body += b
            s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly')
            time.sleep(1)
        except OSError:
            pass
        finally:
            s.close()


UP_SCRIPTS = {
    'early-hints': su.raw(b'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n'
                          b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'),
    'forever': su.forever,
}
XSEND_CGI = ('#!/bin/sh\nprintf "X-Sendfile: %s/f.bin\\r\\nContent-Type: application/x-test'
             '\\r\\n\\r\\n" "$DL"\n')

CONF = '''
limits = { cgi_timeout = "20s"; cgi_kill_grace = "1s"; body_timeout = "3s"; };
backends = (
  { name = "hello"; spawn = { program = "@HELLO@"; processes = 1; socket = "@BASE@/hello.sock"; }; },
  { name = "echo"; servers = ( "127.0.0.1:@ECHO@" ); max_fails = 0; },
  { name = "up"; servers = ( "127.0.0.1:@UP@" ); max_fails = 0; read_timeout = "10s"; },
  { name = "sc"; servers = ( "127.0.0.1:@SC@" ); max_fails = 0; },
  { name = "uw"; servers = ( "127.0.0.1:@UW@" ); max_fails = 0; },
  { name = "early"; servers = ( "127.0.0.1:@EARLY@" ); max_fails = 0; },
  { name = "fbad"; servers = ( "@FBAD@" ); max_fails = 0; }
);
locations = (
  { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; },
  { prefix = "/echo/"; handler = "proxy"; backend = "echo"; },
  { prefix = "/up/"; handler = "proxy"; backend = "up"; },
  { prefix = "/sc/"; handler = "scgi"; backend = "sc"; },
  { prefix = "/uw/"; handler = "uwsgi"; backend = "uw"; },
  { prefix = "/err/"; handler = "cgi"; dir = "@CGI@"; error_page = [ "404 /oops.html" ]; },
  { prefix = "/sp/"; handler = "proxy"; backend = "echo"; request_buffering = false; },
  { prefix = "/early/"; handler = "proxy"; backend = "early"; request_buffering = false; },
  { prefix = "/shello/"; handler = "fastcgi"; backend = "hello"; request_buffering = false; },
  { prefix = "/fbad/"; handler = "fastcgi"; backend = "fbad"; },
  { prefix = "/xs/"; handler = "cgi"; dir = "@BASE@/xs"; x_sendfile = true;
    sendfile_dirs = [ "@BASE@/dl" ]; env = [ "DL=@BASE@/dl" ]; },
  { prefix = "/cached/"; handler = "proxy"; backend = "echo"; cache = true;
    cache_status_header = true; cache_valid = [ "200 1h" ]; }
);
cache_dir = "@BASE@/cache";
'''


def upload(c, path, body, headers=(), wait=True):
    """POST body on a new stream of c, as flow control lets it go (the
    server's window); stops when the stream is answered early (413)."""
    sid = c.conn.get_next_available_stream_id()
    hdrs = [(':method', 'POST'), (':scheme', c.scheme), (':authority', 'localhost'),
            (':path', path)] + list(headers)
    c.conn.send_headers(sid, hdrs, end_stream=False)
    c.streams[sid] = {'headers': None, 'data': b'', 'ended': False, 'reset': None}
    off = 0
    while not c.done(sid):
        room = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size,
                   len(body) - off)
        if off == len(body):
            c.conn.end_stream(sid)
            c.flush()
            break
        if room <= 0:
            c.flush()
            c.pump(lambda: c.done(sid) or c.conn.local_flow_control_window(sid) > 0)
            continue
        c.conn.send_data(sid, body[off:off + room])
        off += room
        c.flush()
    if wait:
        c.pump(lambda: c.done(sid))
    return c.streams[sid] if wait else sid


class GwCase(unittest.TestCase):
    """One portico (TLS, http2 = true) with every gateway, for the module."""
    srv = None

    @classmethod
    def setUpClass(cls):
        if GwCase.srv is not None:
            return
        GwCase.echo = EchoServer(('127.0.0.1', 0), Echo)
        threading.Thread(target=GwCase.echo.serve_forever, daemon=True).start()
        GwCase.up = su.Upstream(UP_SCRIPTS)
        GwCase.sc = su.Upstream({'vars': cgi_vars}, 'scgi')
        GwCase.uw = su.Upstream({'vars': uwsgi_vars}, 'uwsgi')
        GwCase.early = EarlyAnswer()
        GwCase.fbad = fcgi_bad.FakeFcgiServer().start()
        srv = t_h2.h2_server('--max-body', '2M', workers=1)
        os.makedirs(os.path.join(srv.tmpdir, 'xs'))
        os.makedirs(os.path.join(srv.tmpdir, 'dl'))
        with open(os.path.join(srv.tmpdir, 'xs', 'send.cgi'), 'w') as f:
            f.write(XSEND_CGI)
        os.chmod(os.path.join(srv.tmpdir, 'xs', 'send.cgi'), 0o755)
        with open(os.path.join(srv.tmpdir, 'dl', 'f.bin'), 'wb') as f:
            f.write(t_h2.BIG)
        cgi = os.path.join(srv.tmpdir, 'scripts')
        stage_scripts(cgi)
        GwCase.cgi = cgi
        GwCase.run_dir = os.path.join(cgi, 'run')
        srv.args += ['--cgi', '/s/=' + cgi]
        srv.conf = (CONF.replace('@HELLO@', HELLO).replace('@BASE@', srv.tmpdir)
                    .replace('@CGI@', cgi)
                    .replace('@ECHO@', str(GwCase.echo.server_address[1]))
                    .replace('@UP@', str(GwCase.up.port))
                    .replace('@SC@', str(GwCase.sc.port))
                    .replace('@UW@', str(GwCase.uw.port))
                    .replace('@EARLY@', str(GwCase.early.port))
                    .replace('@FBAD@', GwCase.fbad.address))
        srv.write_file('target.txt', 'the redirect target\n')
        srv.write_file('oops.html', 'custom not found\n')
        srv.start()
        GwCase.srv = srv
        GwCase.port = srv.port

    @classmethod
    def tearDownModuleState(cls):
        if GwCase.srv is None:
            return
        try:
            rc = GwCase.srv.stop()
            assert rc == 0, 'portico exited with %r on SIGTERM' % rc
        finally:
            shutil.rmtree(GwCase.srv.tmpdir, ignore_errors=True)
            GwCase.srv = None
            GwCase.echo.shutdown()
            GwCase.up.stop()
            GwCase.sc.stop()
            GwCase.uw.stop()
            GwCase.early.stop()
            GwCase.fbad.stop()

    def setUp(self):
        self.c = t_h2.Client(self.port)
        self.assertEqual(self.c.alpn, 'h2')

    def tearDown(self):
        self.c.close()

    def log_tail(self):
        return '\n--- portico log ---\n' + self.srv.stderr_text()[-3000:]

    def post(self, path, body, length=True, headers=()):
        hd = list(headers)
        if length:
            hd.append(('content-length', str(len(body))))
        return upload(self.c, path, body, hd)

    def read_pids(self, name, timeout=20):
        path = os.path.join(self.run_dir, name + '.pids')
        self.assertTrue(wait_for(lambda: os.path.exists(path), timeout),
                        'script never wrote %s%s' % (path, self.log_tail()))
        with open(path) as f:
            return [int(x) for x in f.read().split()]


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Cgi(GwCase):
    def test_cgi_get_over_curl_http2(self):
        body, ver, code = t_h2.split(t_h2.curl(self.srv, '/cgi-bin/hi.cgi', '--http2'))
        self.assertEqual((ver, code, body), ('2', 200, b'hi from cgi\n'))

    def test_cgi_post_with_content_length(self):
        st = self.post('/s/env.cgi', UPLOAD)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        env, meta = parse_env(st['data'])
        self.assertEqual(env.get('CONTENT_LENGTH'), str(len(UPLOAD)))
        self.assertEqual(env.get('SERVER_PROTOCOL'), 'HTTP/2.0')
        self.assertEqual((meta['.body_len'], meta['.body_sum']),
                         (str(len(UPLOAD)), str(byte_sum(UPLOAD))))

    def test_cgi_post_without_content_length_is_collected_first(self):
        # no content-length field: the body is collected, then its length
        # is the CONTENT_LENGTH (RFC 3875 4.1.2), as for chunked HTTP/1.1
        st = self.post('/s/env.cgi', UPLOAD[:300000], length=False)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        env, meta = parse_env(st['data'])
        self.assertEqual(env.get('CONTENT_LENGTH'), '300000')
        self.assertEqual((meta['.body_len'], meta['.body_sum']),
                         ('300000', str(byte_sum(UPLOAD[:300000]))))

    def test_cgi_echo_byte_exact(self):
        st = self.post('/s/echo.cgi', UPLOAD)
        self.assertEqual(st['headers'][':status'], '200')
        self.assertTrue(st['data'] == UPLOAD, 'the echoed 1 MiB differs')

    def test_body_past_max_body_is_413(self):
        big = b'x' * (3 << 20)
        st = self.post('/s/env.cgi', big)  # content-length says so: at once
        self.assertEqual(st['headers'][':status'], '413')
        st = self.post('/s/env.cgi', big, length=False)  # counted as it comes
        self.assertEqual(st['headers'][':status'], '413', self.log_tail())
        # the connection carries on
        self.assertEqual(self.c.get('/cgi-bin/hi.cgi')['data'], b'hi from cgi\n')

    def test_body_that_stops_coming_is_408(self):
        c = self.c
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(':method', 'POST'), (':scheme', 'https'),
                                  (':authority', 'localhost'), (':path', '/s/env.cgi'),
                                  ('content-length', '1000')], end_stream=False)
        c.conn.send_data(sid, b'x' * 10)
        c.streams[sid] = {'headers': None, 'data': b'', 'ended': False, 'reset': None}
        c.flush()
        c.pump(lambda: c.done(sid), timeout=60)
        self.assertEqual(c.streams[sid]['headers'][':status'], '408', self.log_tail())
        self.assertEqual(c.get('/cgi-bin/hi.cgi')['data'], b'hi from cgi\n')

    def test_gateways_and_static_interleaved_on_one_connection(self):
        sids = []
        for i in range(3):
            sids.append(('cgi', self.c.request('/cgi-bin/hi.cgi')))
            sids.append(('static', self.c.request('/f/%d.txt' % i)))
            body = b'%d' % i * 1000
            sids.append(('post', upload(self.c, '/s/echo.cgi', body,
                                        [('content-length', str(len(body)))], wait=False)))
        self.c.pump(lambda: all(self.c.done(s) for _, s in sids))
        for i, (what, sid) in enumerate(sids):
            st = self.c.streams[sid]
            self.assertEqual(st['headers'][':status'], '200', (what, self.log_tail()))
            if what == 'cgi':
                self.assertEqual(st['data'], b'hi from cgi\n')
            elif what == 'static':
                n = i // 3
                self.assertEqual(st['data'], ('file %d\n' % n * (n + 1)).encode())
            else:
                self.assertEqual(st['data'], b'%d' % (i // 3) * 1000)

    def test_local_redirect_on_a_stream(self):
        st = self.c.get('/s/redirect-local.cgi')
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertEqual(st['data'], b'the redirect target\n')

    def test_error_page_on_a_stream(self):
        st = self.c.get('/err/missing.cgi')
        self.assertEqual(st['headers'][':status'], '404')
        self.assertEqual(st['data'], b'custom not found\n')

    def test_nph_script_is_refused_before_it_runs(self):
        st = self.c.get('/s/nph-hello.cgi')
        self.assertEqual(st['headers'][':status'], '502')
        self.assertTrue(self.srv.wait_for_log(r'nph- script cannot answer over HTTP/2', 20),
                        self.log_tail())

    def test_rst_stream_kills_the_program(self):
        t = harness.tag()
        sid = self.c.request('/s/endless.cgi?' + t)
        pids = self.read_pids(t)
        self.c.pump(lambda: len(self.c.streams[sid]['data']) > 100000)
        self.c.conn.reset_stream(sid, error_code=8)  # CANCEL
        self.c.flush()

        def gone():
            return not any(alive(p) for p in pids) and not group_members(pids[0])
        self.assertTrue(wait_for(gone, 30), 'still running: %s%s' %
                        ([(p, proc_stat(p)) for p in pids if alive(p)], self.log_tail()))
        # the connection and its other streams go on
        self.assertEqual(self.c.get('/cgi-bin/hi.cgi')['data'], b'hi from cgi\n')

    def test_small_client_window_back_pressures_the_program_alone(self):
        # a client that never opens its window: the program (8 MiB, not
        # buffered) waits for it, the worker serves others meanwhile
        c = self.c
        c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
        c.flush()
        t = harness.tag()
        sid = c.request('/s/big.cgi?%s&8&nobuf' % t)
        got = {'n': 0}

        def pump_no_ack(until, timeout=30):
            deadline = time.time() + timeout
            while not until():
                self.assertLess(time.time(), deadline, 'no progress' + self.log_tail())
                data = c.sock.recv(65536)
                self.assertTrue(data, 'closed' + self.log_tail())
                for ev in c.conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                        got['n'] += len(ev.data)
                    elif isinstance(ev, h2.events.StreamReset):
                        self.fail('reset %r' % ev)
                c.flush()
        pump_no_ack(lambda: got['n'] >= 1024)
        other = t_h2.Client(self.port)
        try:
            for _ in range(3):
                self.assertEqual(other.get('/f/1.txt')['data'], b'file 1\nfile 1\n')
                self.assertEqual(other.get('/cgi-bin/hi.cgi')['data'], b'hi from cgi\n')
        finally:
            other.close()
        done = os.path.join(self.run_dir, t + '.done')
        self.assertFalse(os.path.exists(done), 'the program finished without a reader')
        self.assertEqual(got['n'], 1024, 'more than the window was sent')
        # now read it all: every byte arrives, and the program finishes
        total = 8 << 20
        c.conn.acknowledge_received_data(got['n'], sid)
        c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        c.conn.increment_flow_control_window(8 << 20)
        c.flush()
        ended = {'v': False}

        def pump_ack(timeout=60):
            deadline = time.time() + timeout
            while not ended['v']:
                self.assertLess(time.time(), deadline, 'stalled at %d%s' % (got['n'], self.log_tail()))
                data = c.sock.recv(65536)
                self.assertTrue(data, 'closed')
                for ev in c.conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                        got['n'] += len(ev.data)
                        c.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                        ended['v'] = True
                c.flush()
        pump_ack()
        self.assertEqual(got['n'], total)
        self.assertTrue(wait_for(lambda: os.path.exists(done), 20), 'never finished')


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Upstreams(GwCase):
    @unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
    def test_fastcgi_libfcgi_app_get_and_post(self):
        st = self.c.get('/hello/')
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertTrue(st['data'].startswith(b'Hello from FastCGI'), st['data'])
        st = self.post('/hello/echo', UPLOAD)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertTrue(st['data'] == UPLOAD, 'FastCGI echo differs')
        st = self.post('/hello/echo', UPLOAD[:5000], length=False)
        self.assertEqual(st['data'], UPLOAD[:5000])

    def test_proxy_get_and_post(self):
        st = self.c.get('/echo/x?y=1')
        self.assertEqual((st['headers'][':status'], st['data']), ('200', b'proxied /echo/x?y=1'))
        st = self.post('/echo/p', UPLOAD)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertTrue(st['data'] == UPLOAD, 'proxied body differs')
        st = self.post('/echo/p', UPLOAD[:7777], length=False)
        self.assertEqual(st['data'], UPLOAD[:7777])
        self.assertEqual(st['headers']['x-seen-length'], '7777')

    def test_early_hints_from_a_proxied_upstream_are_a_headers_frame(self):
        sid = self.c.request('/up/early-hints')
        infos = []
        orig = self.c.conn.receive_data

        def spy(data):
            evs = orig(data)
            for ev in evs:
                if isinstance(ev, h2.events.InformationalResponseReceived):
                    infos.append(dict(ev.headers))
            return evs
        self.c.conn.receive_data = spy
        self.c.pump(lambda: self.c.done(sid))
        st = self.c.streams[sid]
        self.assertEqual((st['headers'][':status'], st['data']), ('200', b'final'))
        self.assertEqual(len(infos), 1, infos)
        self.assertEqual(infos[0][':status'], '103')
        self.assertEqual(infos[0]['link'], '</s.css>; rel=preload')

    def test_streamed_body_to_proxy_with_and_without_length(self):
        # request_buffering = false: sent on as it comes, chunked upstream
        # when the client gave no length (as for HTTP/1.1 chunked)
        st = self.post('/sp/p', UPLOAD)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertTrue(st['data'] == UPLOAD, 'streamed body differs')
        self.assertEqual(st['headers']['x-seen-length'], str(len(UPLOAD)))
        st = self.post('/sp/p', UPLOAD[:100000], length=False)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertTrue(st['data'] == UPLOAD[:100000], 'streamed chunked body differs')
        self.assertEqual(st['headers']['x-seen-te'], 'chunked')

    def test_streamed_body_reaches_the_upstream_before_its_end(self):
        c = self.c
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(':method', 'POST'), (':scheme', 'https'),
                                  (':authority', 'localhost'), (':path', '/early/x'),
                                  ('content-length', '200000')], end_stream=False)
        c.conn.send_data(sid, b'y' * 10000)
        c.conn.send_data(sid, b'y' * 10000)
        c.streams[sid] = {'headers': None, 'data': b'', 'ended': False, 'reset': None}
        c.flush()
        # the answer comes while the client still owes 180000 bytes
        c.pump(lambda: c.done(sid), timeout=60)
        st = c.streams[sid]
        self.assertEqual((st['headers'][':status'], st['data']), ('200', b'early'),
                         self.log_tail())
        self.assertEqual(c.get('/cgi-bin/hi.cgi')['data'], b'hi from cgi\n')

    @unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
    def test_streamed_body_to_fastcgi(self):
        st = self.post('/shello/echo', UPLOAD)
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertTrue(st['data'] == UPLOAD, 'FastCGI streamed echo differs')

    def test_rst_stream_closes_the_proxied_connection(self):
        sid = self.c.request('/up/forever')
        self.c.pump(lambda: len(self.c.streams[sid]['data']) > 200000)
        cid = self.up.served_by('forever')
        self.c.conn.reset_stream(sid, error_code=8)  # CANCEL
        self.c.flush()
        # the upstream's response cannot be finished for nobody: its
        # connection is closed, as for an HTTP/1.1 client gone
        self.assertTrue(wait_for(lambda: self.up.is_closed(cid), 20), self.log_tail())
        st = self.c.get('/echo/after')
        self.assertEqual((st['headers'][':status'], st['data']), ('200', b'proxied /echo/after'))

    def test_rst_stream_closes_the_fastcgi_connection(self):
        f = self.fbad
        # unbuffered (nobuf=1): the upstream cannot finish its 64 MiB
        # before the reset, as a buffered answer could on a loaded machine
        # (a finished upstream's connection is pooled, rightly)
        sid = self.c.request('/fbad/x?mode=slow_client_probe&mb=64&nobuf=1')
        self.c.pump(lambda: len(self.c.streams[sid]['data']) > 200000)
        self.assertTrue(f.wait_for(lambda: len(f._conns) > 0, 5))
        self.c.conn.reset_stream(sid, error_code=8)
        self.c.flush()
        self.assertTrue(f.wait_for(lambda: not f._conns, 20),
                        '%r%s' % (f.snapshot(), self.log_tail()))
        st = self.c.get('/fbad/y?mode=ok')
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertEqual(json.loads(st['data'])['mode'], 'ok')

    def test_x_sendfile_on_a_stream(self):
        st = self.c.get('/xs/send.cgi')
        self.assertEqual(st['headers'][':status'], '200', self.log_tail())
        self.assertEqual(st['headers']['content-type'], 'application/x-test')
        self.assertEqual(st['headers']['content-length'], str(len(t_h2.BIG)))
        self.assertTrue(st['data'] == t_h2.BIG, 'the file named by X-Sendfile, whole')
        self.assertNotIn('x-sendfile', st['headers'])

    def test_cached_response_on_a_stream(self):
        t = harness.tag()
        first = self.c.get('/cached/' + t)
        self.assertEqual(first['headers'][':status'], '200', self.log_tail())
        self.assertEqual(first['headers']['x-cache-status'], 'MISS')
        again = self.c.get('/cached/' + t)
        self.assertEqual(again['headers']['x-cache-status'], 'HIT', self.log_tail())
        self.assertEqual(again['data'], first['data'])
        self.assertEqual(again['data'], b'proxied /cached/' + t.encode())

    def test_scgi_and_uwsgi(self):
        st = self.post('/sc/vars', b'abc')
        self.assertEqual((st['headers'][':status'], st['data']), ('200', b'POST 3'),
                         self.log_tail())
        st = self.post('/uw/vars', b'abcd', length=False)
        self.assertEqual((st['headers'][':status'], st['data']), ('200', b'POST 4'),
                         self.log_tail())


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Queue(unittest.TestCase):
    """cgi_max_procs on streams: a stream waits for a slot with a timer of
    its own (the connection's times the connection) and gets the 503 when
    the wait runs out; a waiting stream runs when a slot frees."""

    def test_streams_wait_for_a_cgi_slot(self):
        srv = t_h2.h2_server('-o', 'limits.cgi_max_procs=1', '-o', 'limits.cgi_queue_timeout=2s')
        cgi = os.path.join(srv.tmpdir, 'scripts')
        stage_scripts(cgi)
        run = os.path.join(cgi, 'run')
        srv.args += ['--cgi', '/s/=' + cgi]
        with srv:
            c = t_h2.Client(srv.port)
            try:
                g = harness.tag()
                a = c.request('/s/hold.cgi?%s.a' % g)
                self.assertTrue(wait_for(lambda: os.path.exists(
                    os.path.join(run, '%s.a.started' % g)), 20), srv.stderr_text()[-2000:])
                b = c.request('/cgi-bin/hi.cgi')
                c.pump(lambda: c.done(b), timeout=60)  # the queue's wait runs out
                self.assertEqual(c.streams[b]['headers'][':status'], '503')
                d = c.request('/s/hold.cgi?%s.d' % g)  # waits, then runs
                open(os.path.join(run, g + '.release'), 'w').close()
                c.pump(lambda: c.done(a) and c.done(d), timeout=60)
                self.assertEqual(c.streams[a]['data'], b'hold %s.a\n' % g.encode())
                self.assertEqual(c.streams[d]['data'], b'hold %s.d\n' % g.encode())
            finally:
                c.close()


class Drain(unittest.TestCase):
    """A producer that goes on when its stream's queue empties: a big
    static file compressed on the fly is coded a round at a time (zresp.c),
    each round when the client took the last one."""

    def test_compressed_file_comes_whole_over_h2(self):
        text = ''.join('line %d of a text file\n' % i for i in range(200000)).encode()
        srv = t_h2.h2_server('--compress')
        srv.write_file('big.txt', text)
        with srv:
            r = t_h2.curl(srv, '/big.txt', '--http2', '--compressed')
            body, ver, code = t_h2.split(r)
            self.assertEqual((ver, code), ('2', 200))
            self.assertTrue(body == text, 'the decoded file differs (%d bytes)' % len(body))


@phpfpm.skip_unless_php_fpm
@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Php(unittest.TestCase):
    def test_php_fpm_get_and_upload(self):
        fpm = phpfpm.PhpFpm([phpfpm.Pool('unix')])
        fpm.start()
        self.addCleanup(fpm.stop)
        srv = t_h2.h2_server('--fastcgi', '.php=' + fpm.pool('unix').address)
        for name in ('hello.php', 'upload.php'):
            shutil.copyfile(os.path.join(HERE, 'fcgi', name), os.path.join(srv.docroot, name))
        with srv:
            c = t_h2.Client(srv.port)
            try:
                st = c.get('/hello.php')
                self.assertEqual(st['headers'][':status'], '200', srv.stderr_text()[-2000:])
                st = upload(c, '/upload.php', UPLOAD,
                            [('content-type', 'application/octet-stream'),
                             ('content-length', str(len(UPLOAD)))])
                self.assertEqual(st['headers'][':status'], '200', srv.stderr_text()[-2000:])
                out = json.loads(st['data'])
                self.assertEqual(out['content_length'], str(len(UPLOAD)))
                self.assertIn(hashlib.sha256(UPLOAD).hexdigest(), json.dumps(out))
            finally:
                c.close()


def tearDownModule():
    GwCase.tearDownModuleState()


if __name__ == '__main__':
    harness.main()
