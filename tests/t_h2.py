"""t_h2.py: HTTP/2 (issue 19, step B): ALPN "h2" on a TLS listener with
http2 = true (and http/1.1 clients on it unaffected; off by default), h2c
prior knowledge on a plain listener with http2_cleartext = true; static
files over streams (many on one connection, a 1 MiB file through flow
control, a range, a 304, a 404, HEAD), SETTINGS_MAX_CONCURRENT_STREAMS
from http2_max_streams, a head over the limits (431), the access log's
HTTP/2.0 lines, a gateway's location answered on its stream (t_h2_gw.py
has the gateways), and GOAWAY at a reload. Clients: curl --http2,
nghttp and python3-h2."""

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

h2 = harness.debian_import('h2.config', 'h2.connection', 'h2.events')

CERTS = tempfile.mkdtemp(prefix='portico-h2-')
CRT = os.path.join(CERTS, 'c.crt')
KEY = os.path.join(CERTS, 'c.key')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                'ec_paramgen_curve:P-256', '-nodes', '-keyout', KEY, '-out', CRT, '-days', '365',
                '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

BIG = bytes((i * 7 + (i >> 11)) & 0xff for i in range(1 << 20))
HI_CGI = '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nhi from cgi\\n"\n'
HAVE_NGHTTP = shutil.which('nghttp') is not None


def h2_server(*extra, http2=True, **kw):
    """A TLS listener (@PORT@) and a plain one, a docroot and a CGI dir."""
    args = ['--tls', '127.0.0.1:@PORT@', '--cert', CRT, '--key', KEY, '-o', 'log_level=info']
    if http2:
        args += ['-o', 'http2=true']
    srv = harness.Server(*args, *extra, listen=[], access_log=True, **kw)
    srv.write_file('index.html', 'hello over h2\n')
    srv.write_file('big.bin', BIG)
    for i in range(20):
        srv.write_file('f/%d.txt' % i, 'file %d\n' % i * (i + 1))
    cgi = os.path.join(srv.tmpdir, 'cgi')
    os.makedirs(cgi, exist_ok=True)
    with open(os.path.join(cgi, 'hi.cgi'), 'w') as f:
        f.write(HI_CGI)
    os.chmod(os.path.join(cgi, 'hi.cgi'), 0o755)
    srv.args += ['--cgi', '/cgi-bin/=' + cgi]
    return srv


def curl(srv, path, *args):
    return harness.curl('-k', '-o', '-', '-w', '\n%{http_version} %{http_code}', *args,
                        'https://localhost:%d%s' % (srv.port, path),
                        '--resolve', 'localhost:%d:127.0.0.1' % srv.port)


def split(r):
    """(body, http version, status) of a curl -w run."""
    body, _, tail = r.stdout.rpartition(b'\n')
    ver, code = tail.decode().split()
    return body, ver, int(code)


class Client:
    """A python3-h2 client on one TLS (or plain) connection."""

    def __init__(self, port, tls=True, alpn=('h2',)):
        s = socket.create_connection(('127.0.0.1', port), timeout=20)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(list(alpn))
            s = ctx.wrap_socket(s, server_hostname='localhost')
            self.alpn = s.selected_alpn_protocol()
        self.sock = s
        self.scheme = 'https' if tls else 'http'
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
        self.conn.initiate_connection()
        self.streams = {}
        self.goaway = None
        self.closed = False
        self.remote_settings = {}
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method='GET', headers=(), body=None):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(':method', method), (':scheme', self.scheme), (':authority', 'localhost'),
                (':path', path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.streams[sid] = {'headers': None, 'data': b'', 'ended': False, 'reset': None}
        self.flush()
        return sid

    def done(self, sid):
        s = self.streams[sid]
        return s['ended'] or s['reset'] is not None

    def pump(self, until, timeout=30):
        deadline = time.time() + timeout
        while not until():
            if time.time() > deadline:
                raise TimeoutError('no answer in time')
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                data = b''
            if not data:
                self.closed = True
                return
            for ev in self.conn.receive_data(data):
                st = self.streams.get(getattr(ev, 'stream_id', None))
                if isinstance(ev, h2.events.ResponseReceived):
                    st['headers'] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    st['data'] += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    st['ended'] = True
                elif isinstance(ev, h2.events.StreamReset):
                    st['reset'] = ev.error_code
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.goaway = ev
                elif isinstance(ev, h2.events.RemoteSettingsChanged):
                    for k, v in ev.changed_settings.items():
                        self.remote_settings[int(k)] = v.new_value
            self.flush()

    def get(self, path, **kw):
        sid = self.request(path, **kw)
        self.pump(lambda: self.done(sid))
        return self.streams[sid]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Curl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = h2_server()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_static_file_over_h2(self):
        body, ver, code = split(curl(self.srv, '/index.html', '--http2'))
        self.assertEqual((ver, code, body), ('2', 200, b'hello over h2\n'))

    def test_http11_client_on_the_same_listener(self):
        body, ver, code = split(curl(self.srv, '/index.html', '--http1.1'))
        self.assertEqual((ver, code, body), ('1.1', 200, b'hello over h2\n'))

    def test_big_file_byte_exact(self):
        body, ver, code = split(curl(self.srv, '/big.bin', '--http2'))
        self.assertEqual((ver, code), ('2', 200))
        self.assertTrue(body == BIG, 'the 1 MiB file differs over h2')

    def test_range(self):
        r = curl(self.srv, '/big.bin', '--http2', '-r', '100-199', '-D', '/dev/stderr')
        body, ver, code = split(r)
        self.assertEqual((ver, code), ('2', 206))
        self.assertEqual(body, BIG[100:200])
        self.assertIn(b'content-range: bytes 100-199/1048576', r.stderr)

    def test_not_modified(self):
        r = curl(self.srv, '/index.html', '--http2', '-D', '/dev/stderr')
        etag = [l.split(b':', 1)[1].strip() for l in r.stderr.splitlines()
                if l.lower().startswith(b'etag:')][0]
        body, ver, code = split(curl(self.srv, '/index.html', '--http2',
                                     '-H', 'If-None-Match: ' + etag.decode()))
        self.assertEqual((ver, code, body), ('2', 304, b''))

    def test_not_found(self):
        body, ver, code = split(curl(self.srv, '/nope.html', '--http2'))
        self.assertEqual((ver, code), ('2', 404))
        self.assertIn(b'404 Not Found', body)

    def test_gateway_location_answers_over_h2(self):
        body, ver, code = split(curl(self.srv, '/cgi-bin/hi.cgi', '--http2'))
        self.assertEqual((ver, code, body), ('2', 200, b'hi from cgi\n'))

    def test_access_log_says_http2(self):
        split(curl(self.srv, '/index.html?from=log', '--http2'))
        self.assertTrue(self.srv.wait_for(
            lambda: '"GET /index.html?from=log HTTP/2.0" 200' in self.srv.access_log_text()),
            self.srv.access_log_text())

    @unittest.skipUnless(HAVE_NGHTTP, 'nghttp (nghttp2-client) is not installed')
    def test_nghttp_several_streams(self):
        urls = ['https://127.0.0.1:%d/f/%d.txt' % (self.srv.port, i) for i in range(8)]
        r = subprocess.run(['nghttp', '-nv'] + urls, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors='replace')
        self.assertEqual(r.returncode, 0, out)
        self.assertEqual(out.count(':status: 200'), 8, out)


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Streams(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = h2_server('-o', 'http2_max_streams=7', '-o', 'limits.header_buffer=4k')
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def setUp(self):
        self.c = Client(self.srv.port)
        self.assertEqual(self.c.alpn, 'h2')

    def tearDown(self):
        self.c.close()

    def test_many_streams_on_one_connection(self):
        # 20 requests, at most 7 open at a time (the server's SETTINGS)
        self.c.pump(lambda: 3 in self.c.remote_settings)
        self.assertEqual(self.c.remote_settings.get(3), 7)  # MAX_CONCURRENT_STREAMS
        sids = {}
        for first in range(0, 20, 7):
            batch = [self.c.request('/f/%d.txt' % i) for i in range(first, min(first + 7, 20))]
            sids.update(zip(batch, range(first, first + 7)))
            self.c.pump(lambda: all(self.c.done(s) for s in batch))
        self.assertEqual(len(sids), 20)
        for sid, i in sids.items():
            st = self.c.streams[sid]
            self.assertEqual(st['headers'][':status'], '200')
            self.assertEqual(st['data'], ('file %d\n' % i * (i + 1)).encode())

    def test_big_file_and_small_ones_interleaved(self):
        big = self.c.request('/big.bin')
        small = [self.c.request('/f/%d.txt' % i) for i in range(5)]
        self.c.pump(lambda: all(self.c.done(s) for s in [big] + small))
        self.assertTrue(self.c.streams[big]['data'] == BIG)
        self.assertEqual(self.c.streams[big]['headers']['content-length'], str(len(BIG)))
        for i, s in enumerate(small):
            self.assertEqual(self.c.streams[s]['data'], ('file %d\n' % i * (i + 1)).encode())

    def test_head_has_no_body(self):
        st = self.c.get('/index.html', method='HEAD')
        self.assertEqual(st['headers'][':status'], '200')
        self.assertEqual(st['headers']['content-length'], '14')
        self.assertEqual(st['data'], b'')

    def test_no_connection_specific_fields(self):
        st = self.c.get('/index.html')
        for name in ('connection', 'keep-alive', 'transfer-encoding'):
            self.assertNotIn(name, st['headers'])
        self.assertIn('date', st['headers'])

    def test_head_over_the_limit_is_431(self):
        st = self.c.get('/index.html', headers=[('x-big', 'v' * 6000)])
        self.assertEqual(st['headers'][':status'], '431')

    def test_gateway_stream_is_answered(self):
        st = self.c.get('/cgi-bin/hi.cgi')
        self.assertEqual((st['reset'], st['data']), (None, b'hi from cgi\n'))
        # the connection goes on
        self.assertEqual(self.c.get('/index.html')['data'], b'hello over h2\n')

    def test_body_to_a_static_file_is_dropped(self):
        st = self.c.get('/index.html', method='GET', body=b'x' * 1000,
                        headers=[('content-length', '1000')])
        self.assertEqual(st['headers'][':status'], '200')
        self.assertEqual(st['data'], b'hello over h2\n')


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class StreamText(unittest.TestCase):
    """A stream's request block comes back to the next stream (the worker's
    spool): the text a request makes on first use (its client address,
    its request id) is the next stream's own, not the one before's."""

    @classmethod
    def setUpClass(cls):
        cls.srv = h2_server(conf='request_id = "on"; real_ip_from = [ "127.0.0.1" ];\n'
                            'access_log_format = "$remote_addr $request_id $request_uri";\n')
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_a_reused_block_keeps_no_text_of_the_stream_before(self):
        c = Client(self.srv.port)
        try:
            for i, extra in enumerate([[('x-forwarded-for', '192.0.2.7')], [], []]):
                st = c.get('/index.html?n=%d' % i, headers=extra)
                self.assertEqual(st['headers'][':status'], '200')
        finally:
            c.close()
        self.assertTrue(self.srv.wait_for(
            lambda: len(self.srv.access_log_text().splitlines()) >= 3),
            self.srv.access_log_text())
        lines = [l.split() for l in self.srv.access_log_text().splitlines()]
        self.assertEqual([(l[0], l[2]) for l in lines],
                         [('192.0.2.7', '/index.html?n=0'), ('127.0.0.1', '/index.html?n=1'),
                          ('127.0.0.1', '/index.html?n=2')])
        ids = [l[1] for l in lines]
        for i in ids:
            self.assertRegex(i, r'^[0-9a-f]{32}$')
        self.assertEqual(len(set(ids)), 3, ids)


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Settings(unittest.TestCase):
    def test_http2_is_off_by_default(self):
        with h2_server(http2=False) as srv:
            body, ver, code = split(curl(srv, '/index.html', '--http2'))
            self.assertEqual((ver, code), ('1.1', 200))
            c = Client(srv.port, alpn=('h2', 'http/1.1'))
            self.assertEqual(c.alpn, 'http/1.1')
            c.close()

    def test_h2c_prior_knowledge_needs_http2_cleartext(self):
        with harness.Server('-o', 'http2_cleartext=true') as srv:
            srv.write_file('index.html', 'plain h2\n')
            c = Client(srv.port, tls=False)
            st = c.get('/index.html')
            self.assertEqual((st['headers'][':status'], st['data']), ('200', b'plain h2\n'))
            c.close()
            # HTTP/1.1 still works on it
            r = harness.curl('-o', '/dev/null', '-w', '%{http_version} %{http_code}',
                             srv.url('/index.html'))
            self.assertEqual(r.stdout, b'1.1 200')
        with harness.Server() as srv:
            srv.write_file('index.html', 'plain h2\n')
            r = harness.curl('--http2-prior-knowledge', '-o', '/dev/null', '-w',
                             '%{http_code}', srv.url('/index.html'))
            self.assertNotEqual(r.stdout, b'200')

    def test_goaway_at_reload(self):
        with h2_server() as srv:
            c = Client(srv.port)
            self.assertEqual(c.get('/index.html')['data'], b'hello over h2\n')
            srv.signal(signal.SIGHUP)
            c.pump(lambda: c.goaway is not None or c.closed, timeout=60)
            self.assertIsNotNone(c.goaway, 'no GOAWAY before the close')
            self.assertEqual(c.goaway.error_code, 0)
            c.close()

    def test_bad_value_is_an_error(self):
        r = subprocess.run([harness.PORTICO, '-t', '-o', 'http2_max_streams=0', '-r', CERTS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'http2_max_streams', r.stdout)


if __name__ == '__main__':
    harness.main()
