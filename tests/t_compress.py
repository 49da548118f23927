#!/usr/bin/python3
"""t_compress.py: compression on the fly (gzip and br) of static files, CGI
and FastCGI responses, decoded by real clients: curl --compressed, Python's
gzip module and Debian's brotli command.

Covered: exact bytes after decoding (a small and a 5 MiB HTML file, HTTP/1.1
chunked and HTTP/1.0 close-delimited, a CGI stream of unknown length whose
first coded bytes reach the client while the script still waits for a
marker file, a FastCGI response of the libfcgi sample app); the head (Vary,
weak ETag, Content-Encoding, no Content-Length, chunked); what stays as it
is (a Range request, image/png, below compress_min_length, no or refusing
Accept-Encoding, identity preferred, a precompressed sibling, Content-
Encoding set by the program, Cache-Control: no-transform, a location with
compress = false); HEAD and 304; Accept-Encoding weights choosing br or
gzip; the gzip level in the stream's header; the --compress flag; bad
settings refused; a client that stops reading holds bounded memory; clients
that go away mid-response leave no leak (the ASan build reports them).

No test asserts a timing: waits are generous upper bounds."""

import gzip
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(HERE, '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
BROTLI = shutil.which('brotli')
brotli = harness.debian_import('brotli')  # Debian's python3-brotli: decodes an unfinished stream

fetch = harness.fetch


def text_bytes(n, seed=1):
    """Compressible HTML-like bytes, deterministic."""
    words = [b'<div class="row">', b'</div>\n', b'portico ', b'gateway ', b'compression ',
             b'<a href="/x">', b'</a>', b'\t', b'lorem ', b'ipsum ']
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7fffffff
        out += words[(x >> 16) % len(words)]
    return bytes(out[:n])


def unbrotli(data):
    if not BROTLI:
        raise unittest.SkipTest('brotli command not installed')
    p = subprocess.run([BROTLI, '-d', '-c'], input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError('brotli -d failed: %r' % p.stderr)
    return p.stdout


def decode(resp):
    ce = resp.header('Content-Encoding')
    if ce == 'gzip':
        return gzip.decompress(resp.body)
    if ce == 'br':
        return unbrotli(resp.body)
    assert ce is None, ce
    return resp.body


SMALL = text_bytes(1500, 2)
BIG = text_bytes(5 * 1024 * 1024, 3)
TINY = text_bytes(100, 4)
MID = text_bytes(5000, 5)
PNG = b'\x89PNG\r\n\x1a\n' + os.urandom(5000)
PAGE = text_bytes(3000, 6)
PAGE_GZ = gzip.compress(PAGE, 9)
CHUNK1 = text_bytes(4000, 7)
CHUNK2 = text_bytes(30000, 8)

STREAM_CGI = r'''#!/usr/bin/python3
# one piece, then waits for the marker file named by QUERY_STRING, then more
import os, sys, time
out = sys.stdout.buffer
out.write(b'Content-Type: text/plain\r\nETag: "stream-1"\r\n\r\n')
out.write(open(os.path.join(os.path.dirname(__file__), 'chunk1'), 'rb').read())
out.flush()
marker = os.path.join(os.path.dirname(__file__), 'run', os.environ.get('QUERY_STRING', 'x'))
for _ in range(600):
    if os.path.exists(marker):
        break
    time.sleep(0.05)
data = open(os.path.join(os.path.dirname(__file__), 'chunk2'), 'rb').read()
for i in range(0, len(data), 7000):
    out.write(data[i:i + 7000])
    out.flush()
'''

# name: (header lines, body file or None for the standard text)
SIMPLE_CGI = r'''#!/usr/bin/python3
import os, sys
out = sys.stdout.buffer
here = os.path.dirname(__file__)
out.write(open(os.path.join(here, os.path.basename(__file__) + '.head'), 'rb').read())
out.write(b'\r\n')
out.write(open(os.path.join(here, os.path.basename(__file__) + '.body'), 'rb').read())
'''

CGIS = {
    'plain.cgi': (b'Content-Type: text/html\r\nETag: "p-1"\r\n', MID),
    'length.cgi': (b'Content-Type: text/plain\r\nContent-Length: %d\r\n' % len(MID), MID),
    'short.cgi': (b'Content-Type: text/plain\r\nContent-Length: %d\r\n' % len(TINY), TINY),
    'notransform.cgi': (b'Content-Type: text/plain\r\nCache-Control: public, no-transform\r\n',
                        MID),
    'coded.cgi': (b'Content-Type: text/plain\r\nContent-Encoding: gzip\r\n', gzip.compress(MID)),
    'binary.cgi': (b'Content-Type: application/octet-stream\r\n', MID),
    'nocontent.cgi': (b'Status: 204 No Content\r\nContent-Type: text/plain\r\n', b''),
    'big.cgi': (b'Content-Type: text/plain\r\n', BIG),
    'vary.cgi': (b'Content-Type: text/plain\r\nVary: Cookie, accept-encoding\r\n', MID),
}


def build_tree(tmp):
    docroot = os.path.join(tmp, 'www')
    os.makedirs(os.path.join(docroot, 'pre'))
    os.makedirs(os.path.join(docroot, 'off'))
    os.makedirs(os.path.join(docroot, 'min'))
    os.makedirs(os.path.join(docroot, 'fast'))
    os.makedirs(os.path.join(docroot, 'best'))
    files = {
        'small.html': SMALL, 'big.html': BIG, 'tiny.html': TINY, 'img.png': PNG,
        'pre/page.html': PAGE, 'pre/page.html.gz': PAGE_GZ, 'off/small.html': SMALL,
        'min/mid.html': MID, 'fast/big.html': BIG, 'best/big.html': BIG,
        'data.txt': os.urandom(24 * 1024 * 1024),
    }
    for rel, data in files.items():
        with open(os.path.join(docroot, rel), 'wb') as f:
            f.write(data)
    cgi = os.path.join(tmp, 'cgi')
    os.makedirs(os.path.join(cgi, 'run'))
    with open(os.path.join(cgi, 'chunk1'), 'wb') as f:
        f.write(CHUNK1)
    with open(os.path.join(cgi, 'chunk2'), 'wb') as f:
        f.write(CHUNK2)
    with open(os.path.join(cgi, 'stream.cgi'), 'w') as f:
        f.write(STREAM_CGI)
    os.chmod(os.path.join(cgi, 'stream.cgi'), 0o755)
    for name, (head, body) in CGIS.items():
        with open(os.path.join(cgi, name), 'w') as f:
            f.write(SIMPLE_CGI)
        os.chmod(os.path.join(cgi, name), 0o755)
        with open(os.path.join(cgi, name + '.head'), 'wb') as f:
            f.write(head)
        with open(os.path.join(cgi, name + '.body'), 'wb') as f:
            f.write(body)
    return docroot, cgi


CONF = '''
compress = true;
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; },
  { prefix = "/pre/"; precompressed = true; },
  { prefix = "/off/"; compress = false; },
  { prefix = "/min/"; compress_min_length = "10k"; },
  { prefix = "/fast/"; compress_gzip_level = 1; },
  { prefix = "/best/"; compress_gzip_level = 9; }
  @FCGI@
);
@BACKENDS@
'''

FCGI_LOC = ''',
  { prefix = "/hello/"; handler = "fastcgi"; backend = "hello";
    compress_types = [ "application/octet-stream" ]; }'''
FCGI_BACKENDS = '''backends = ( { name = "hello";
  spawn = { program = "@HELLO@"; processes = 1; socket = "@TMP@/hello.sock"; }; } );'''


class Compress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='portico-compress-')
        cls.docroot, cls.cgi = build_tree(cls.tmp)
        has_fcgi = os.access(HELLO, os.X_OK)
        conf = (CONF.replace('@CGI@', cls.cgi)
                .replace('@FCGI@', FCGI_LOC if has_fcgi else '')
                .replace('@BACKENDS@', FCGI_BACKENDS if has_fcgi else '')
                .replace('@HELLO@', HELLO).replace('@TMP@', cls.tmp))
        cls.has_fcgi = has_fcgi
        cls.srv = harness.Server(conf=conf, docroot=cls.docroot)
        cls.srv.start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            shutil.rmtree(cls.srv.tmpdir, ignore_errors=True)
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, target, ae=None, method='GET', headers=(), version='HTTP/1.1', body=None):
        h = list(headers)
        if ae is not None:
            h.append(('Accept-Encoding', ae))
        r = fetch(self.port, method, target, h, body=body, version=version)
        self.assertTrue(r.complete, r.raw[:300])
        return r

    def assert_coded(self, r, coding, original):
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertEqual(r.header('Content-Encoding'), coding, r.raw_head)
        self.assertIsNone(r.header('Content-Length'), r.raw_head)
        self.assertIn('accept-encoding', ', '.join(r.header_all('Vary')).lower(), r.raw_head)
        self.assertEqual(decode(r), original)

    def assert_identity(self, r, original, vary):
        self.assertIsNone(r.header('Content-Encoding'), r.raw_head)
        self.assertEqual(r.body, original)
        self.assertEqual(vary, 'Accept-Encoding' in ' '.join(r.header_all('Vary')), r.raw_head)

    # -- static ---------------------------------------------------------------

    def test_static_small_curl_compressed(self):
        p = harness.curl('--compressed', '-D', '-', '-o', os.path.join(self.tmp, 'c.out'),
                         self.srv.url('/small.html'))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(self.tmp, 'c.out'), 'rb') as f:
            self.assertEqual(f.read(), SMALL)
        self.assertRegex(p.stdout.decode(), r'(?im)^content-encoding: (gzip|br)\r$')

    def test_static_big_curl_compressed(self):
        p = harness.curl('--compressed', '-o', os.path.join(self.tmp, 'b.out'),
                         self.srv.url('/big.html'))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(self.tmp, 'b.out'), 'rb') as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                             hashlib.sha256(BIG).hexdigest())

    def test_static_gzip_head_fields_and_bytes(self):
        for path, data in (('/small.html', SMALL), ('/big.html', BIG)):
            r = self.get(path, 'gzip')
            self.assert_coded(r, 'gzip', data)
            self.assertEqual(r.header('Transfer-Encoding'), 'chunked')
            self.assertTrue(r.header('ETag').startswith('W/"'), r.raw_head)
            self.assertIsNone(r.header('Accept-Ranges'))
            self.assertLess(len(r.body), len(data) // 2)

    def test_static_brotli_bytes(self):
        for path, data in (('/small.html', SMALL), ('/big.html', BIG)):
            self.assert_coded(self.get(path, 'br'), 'br', data)

    def test_static_http10_is_close_delimited(self):
        r = self.get('/big.html', 'gzip', version='HTTP/1.0')
        self.assert_coded(r, 'gzip', BIG)
        self.assertIsNone(r.header('Transfer-Encoding'))
        self.assertTrue(r.closed)

    def test_keepalive_after_a_coded_response(self):
        s = harness.connect(self.port)
        try:
            for path, data in (('/big.html', BIG), ('/small.html', SMALL), ('/img.png', PNG)):
                s.sendall(harness.build_request('GET', path, {'Accept-Encoding': 'gzip'},
                                                close=False))
                r = harness.read_response(s)
                self.assertEqual(decode(r), data)
        finally:
            s.close()

    def test_weights_choose_the_coding(self):
        cases = [
            ('gzip, br', 'br'), ('br, gzip', 'br'), ('gzip;q=1, br;q=0.5', 'gzip'),
            ('br;q=0.9, gzip;q=0.8', 'br'), ('br;q=0, gzip', 'gzip'), ('*', 'br'),
            ('gzip;q=0.5, identity', None), ('gzip;q=0', None), ('identity', None),
            ('deflate', None), ('GZIP', 'gzip'), ('br;q=0.001', 'br'), ('*;q=0', None),
        ]
        for ae, want in cases:
            r = self.get('/small.html', ae)
            self.assertEqual(r.header('Content-Encoding'), want, ae)
            self.assertEqual(decode(r), SMALL, ae)
            self.assertIn('Accept-Encoding', r.header_all('Vary'), ae)

    def test_no_accept_encoding_is_identity_with_vary(self):
        r = self.get('/small.html')
        self.assert_identity(r, SMALL, vary=True)
        self.assertEqual(r.header('Content-Length'), str(len(SMALL)))
        self.assertFalse(r.header('ETag').startswith('W/'), r.raw_head)

    def test_range_request_gets_identity_bytes(self):
        r = self.get('/big.html', 'gzip, br', headers=[('Range', 'bytes=100-1099')])
        self.assertEqual(r.status, 206, r.raw_head)
        self.assert_identity(r, BIG[100:1100], vary=True)
        self.assertFalse(r.header('ETag').startswith('W/'), r.raw_head)

    def test_png_and_short_files_stay_identity(self):
        self.assert_identity(self.get('/img.png', 'gzip, br'), PNG, vary=False)
        r = self.get('/tiny.html', 'gzip, br')
        self.assert_identity(r, TINY, vary=False)
        self.assertEqual(r.header('Content-Length'), str(len(TINY)))
        self.assert_identity(self.get('/min/mid.html', 'gzip, br'), MID, vary=False)

    def test_location_with_compress_off(self):
        self.assert_identity(self.get('/off/small.html', 'gzip, br'), SMALL, vary=False)

    def test_precompressed_sibling_is_preferred(self):
        r = self.get('/pre/page.html', 'gzip')
        self.assertEqual(r.header('Content-Encoding'), 'gzip')
        self.assertEqual(r.body, PAGE_GZ)  # the sibling itself, not coded again
        self.assertEqual(r.header('Content-Length'), str(len(PAGE_GZ)))
        self.assertEqual(r.header_all('Vary'), ['Accept-Encoding'])
        # br has no sibling: coded on the fly
        self.assert_coded(self.get('/pre/page.html', 'br'), 'br', PAGE)

    def test_head_matches_get(self):
        for ae in ('gzip', 'br'):
            g = self.get('/big.html', ae)
            h = self.get('/big.html', ae, method='HEAD')
            self.assertEqual(h.body, b'')
            self.assertEqual(h.rest, b'', 'HEAD sent a body')
            for name in ('Content-Encoding', 'Vary', 'ETag', 'Transfer-Encoding',
                         'Content-Length', 'Content-Type', 'Last-Modified'):
                self.assertEqual(h.header(name), g.header(name), name)

    def test_conditional_304_with_the_weak_etag(self):
        r = self.get('/small.html', 'gzip')
        etag = r.header('ETag')
        self.assertTrue(etag.startswith('W/"'))
        c = self.get('/small.html', 'gzip', headers=[('If-None-Match', etag)])
        self.assertEqual(c.status, 304, c.raw_head)
        self.assertEqual(c.header('ETag'), etag)
        self.assertIn('Accept-Encoding', c.header_all('Vary'))
        self.assertIsNone(c.header('Content-Encoding'))
        self.assertEqual(c.rest, b'')
        # the identity response's strong ETag matches too (weak comparison)
        i = self.get('/small.html')
        c = self.get('/small.html', headers=[('If-None-Match', i.header('ETag'))])
        self.assertEqual(c.status, 304)

    def test_gzip_level_reaches_the_stream(self):
        # RFC 1952 §2.3.1: XFL 4 = fastest, 2 = maximum compression
        fast = self.get('/fast/big.html', 'gzip')
        best = self.get('/best/big.html', 'gzip')
        self.assertEqual(fast.body[8], 4)
        self.assertEqual(best.body[8], 2)
        self.assertEqual(decode(fast), BIG)
        self.assertEqual(decode(best), BIG)
        self.assertGreater(len(fast.body), len(best.body))

    # -- CGI ------------------------------------------------------------------

    def test_cgi_unknown_length_coded(self):
        for ae in ('gzip', 'br'):
            r = self.get('/cgi-bin/plain.cgi', ae)
            self.assert_coded(r, ae, MID)
            self.assertEqual(r.header('ETag'), 'W/"p-1"')
            self.assertEqual(r.header('Transfer-Encoding'), 'chunked')

    def test_cgi_big_stream_coded(self):
        self.assert_coded(self.get('/cgi-bin/big.cgi', 'gzip'), 'gzip', BIG)
        self.assert_coded(self.get('/cgi-bin/big.cgi', 'br'), 'br', BIG)

    def test_cgi_own_vary_is_not_repeated(self):
        r = self.get('/cgi-bin/vary.cgi', 'gzip')
        self.assert_coded(r, 'gzip', MID)
        self.assertEqual(r.header_all('Vary'), ['Cookie, accept-encoding'])

    def test_cgi_content_length_dropped(self):
        r = self.get('/cgi-bin/length.cgi', 'gzip')
        self.assert_coded(r, 'gzip', MID)
        self.assertEqual(r.header('Transfer-Encoding'), 'chunked')
        # and kept without coding
        r = self.get('/cgi-bin/length.cgi')
        self.assertEqual(r.header('Content-Length'), str(len(MID)))
        self.assertEqual(r.body, MID)

    def test_cgi_http10_close_delimited(self):
        r = self.get('/cgi-bin/length.cgi', 'gzip', version='HTTP/1.0')
        self.assert_coded(r, 'gzip', MID)
        self.assertTrue(r.closed)

    def test_cgi_left_alone(self):
        self.assert_identity(self.get('/cgi-bin/short.cgi', 'gzip, br'), TINY, vary=False)
        self.assert_identity(self.get('/cgi-bin/notransform.cgi', 'gzip, br'), MID, vary=False)
        self.assert_identity(self.get('/cgi-bin/binary.cgi', 'gzip, br'), MID, vary=False)
        r = self.get('/cgi-bin/coded.cgi', 'gzip, br')
        self.assertEqual(r.header('Content-Encoding'), 'gzip')
        self.assertEqual(gzip.decompress(r.body), MID)  # once, not twice
        r = self.get('/cgi-bin/nocontent.cgi', 'gzip, br')
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header('Content-Encoding'))
        self.assertEqual(r.rest, b'')
        r = self.get('/cgi-bin/plain.cgi', 'gzip', headers=[('Range', 'bytes=0-9')])
        self.assert_identity(r, MID, vary=True)

    def test_cgi_head(self):
        g = self.get('/cgi-bin/plain.cgi', 'gzip')
        h = self.get('/cgi-bin/plain.cgi', 'gzip', method='HEAD')
        self.assertEqual(h.rest, b'')
        for name in ('Content-Encoding', 'Vary', 'ETag', 'Transfer-Encoding', 'Content-Length'):
            self.assertEqual(h.header(name), g.header(name), name)

    def test_cgi_stream_first_bytes_before_the_script_ends(self):
        for ae in ('gzip', 'br'):
            token = 'go-%s-%d' % (ae, time.monotonic_ns())
            s = harness.connect(self.port, timeout=30)
            try:
                s.sendall(harness.build_request('GET', '/cgi-bin/stream.cgi?' + token,
                                                {'Accept-Encoding': ae}))
                data = b''
                got = b''
                dec = zlib.decompressobj(16 + 15) if ae == 'gzip' else None
                deadline = time.monotonic() + 30
                # the script waits for the marker: all of CHUNK1 must decode first
                while len(got) < len(CHUNK1) and time.monotonic() < deadline:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
                    body = dechunk_partial(data)
                    if body is None:
                        continue
                    got = dec.decompress(body) if dec else brotli_partial(body)
                    if dec:
                        dec = zlib.decompressobj(16 + 15)  # decode from the start each time
                self.assertEqual(got[:len(CHUNK1)], CHUNK1, data[:300])
                self.assertFalse(os.path.exists(os.path.join(self.cgi, 'run', token)))
                open(os.path.join(self.cgi, 'run', token), 'w').close()
                rest, _ = harness.recv_until_close(s, 30)
                r = harness.read_response(data + rest)
                r.raw = data + rest
                self.assertTrue(r.complete)
                self.assert_coded(r, ae, CHUNK1 + CHUNK2)
                self.assertEqual(r.header('ETag'), 'W/"stream-1"')
            finally:
                s.close()

    # -- FastCGI --------------------------------------------------------------

    def test_fastcgi_response_coded(self):
        if not self.has_fcgi:
            self.skipTest('cgi-bin/hello-fcgi not built (libfcgi-dev)')
        data = text_bytes(300000, 9)
        for ae in ('gzip', 'br'):
            r = self.get('/hello/echo', ae, method='POST', body=data)
            self.assert_coded(r, ae, data)
        r = self.get('/hello/echo', None, method='POST', body=data)
        self.assert_identity(r, data, vary=True)
        self.assertEqual(r.header('Content-Length'), str(len(data)))
        # text/plain is not in this location's compress_types
        r = self.get('/hello/env', 'gzip')
        self.assertIsNone(r.header('Content-Encoding'))

    # -- resources --------------------------------------------------------------

    def worker_rss_kib(self):
        # the master's children: the worker, and hello-fcgi when spawned
        pids = [p for p in self.srv.worker_pids()
                if os.readlink('/proc/%d/exe' % p) == os.path.realpath(harness.PORTICO)]
        self.assertEqual(len(pids), 1, self.srv.worker_pids())
        return harness.proc_status(pids[0], 'VmRSS')

    def test_slow_reader_holds_bounded_memory(self):
        # 24 MiB of random bytes served as text/plain: coded output as large
        # as the input; a client that reads nothing must not make portico
        # queue it (one round at a time, only when the queue has drained)
        before = self.worker_rss_kib()
        socks = []
        try:
            for ae in ('gzip', 'br'):
                s = harness.connect(self.port)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.sendall(harness.build_request('GET', '/data.txt', {'Accept-Encoding': ae}))
                socks.append(s)
            time.sleep(1.0)  # not a timing assertion: time for a runaway to show
            grown = self.worker_rss_kib() - before
            self.assertLess(grown, 12 * 1024, 'worker grew by %d KiB' % grown)
            # and the stream is still whole when read
            s = socks[0]
            data, _ = harness.recv_until_close(s, 120)
            r = harness.read_response(data)
            self.assertTrue(r.complete)
            with open(os.path.join(self.docroot, 'data.txt'), 'rb') as f:
                self.assertEqual(decode(r), f.read())
        finally:
            for s in socks:
                s.close()

    def test_clients_leaving_mid_response(self):
        # the coder of each aborted response is freed (ASan's leak check at
        # the worker's exit, in tearDownClass, would report it)
        for path in ('/big.html', '/cgi-bin/big.cgi', '/data.txt'):
            for ae in ('gzip', 'br'):
                s = harness.connect(self.port)
                s.sendall(harness.build_request('GET', path, {'Accept-Encoding': ae}))
                s.recv(1000)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\0\0\0\0\0\0\0')
                s.close()
        token = 'never-%d' % time.monotonic_ns()
        s = harness.connect(self.port)
        s.sendall(harness.build_request('GET', '/cgi-bin/stream.cgi?' + token,
                                        {'Accept-Encoding': 'gzip'}))
        s.recv(100)
        s.close()
        open(os.path.join(self.cgi, 'run', token), 'w').close()
        # still serving
        self.assert_coded(self.get('/small.html', 'gzip'), 'gzip', SMALL)


def dechunk_partial(data):
    """The body bytes of the complete chunks received so far (None before
    the end of the head)."""
    head, sep, rest = data.partition(b'\r\n\r\n')
    if not sep:
        return None
    body = bytearray()
    while True:
        line, sep, after = rest.partition(b'\r\n')
        if not sep:
            break
        size = int(line.split(b';')[0], 16)
        if size == 0 or len(after) < size + 2:
            break
        body += after[:size]
        rest = after[size + 2:]
    return bytes(body)


def brotli_partial(body):
    """What python3-brotli decodes of an unfinished stream (the brotli
    command prints nothing for one)."""
    if brotli is None:
        raise unittest.SkipTest('python3-brotli not installed')
    return brotli.Decompressor().process(body)


class Flag(unittest.TestCase):
    """--compress alone turns on gzip and br for the usual text types."""

    def test_flag_turns_compression_on(self):
        with harness.Server('--compress', files={'a.html': SMALL, 'a.js': SMALL,
                                                 'a.json': SMALL, 'a.svg': SMALL,
                                                 'a.png': PNG}) as srv:
            for name in ('a.html', 'a.js', 'a.json', 'a.svg'):
                r = fetch(srv.port, 'GET', '/' + name, [('Accept-Encoding', 'br, gzip')])
                self.assertEqual(r.header('Content-Encoding'), 'br', name)
                self.assertEqual(decode(r), SMALL)
                r = fetch(srv.port, 'GET', '/' + name, [('Accept-Encoding', 'gzip')])
                self.assertEqual(r.header('Content-Encoding'), 'gzip', name)
                self.assertEqual(decode(r), SMALL)
            r = fetch(srv.port, 'GET', '/a.png', [('Accept-Encoding', 'br, gzip')])
            self.assertIsNone(r.header('Content-Encoding'))

    def test_off_without_flag(self):
        with harness.Server(files={'a.html': SMALL}) as srv:
            r = fetch(srv.port, 'GET', '/a.html', [('Accept-Encoding', 'br, gzip')])
            self.assertIsNone(r.header('Content-Encoding'))
            self.assertIsNone(r.header('Vary'))
            self.assertEqual(r.body, SMALL)

    def test_compress_memory_bounds_the_streams_of_a_worker(self):
        # room for one gzip stream: a reader that stalls holds it, the next
        # response goes out uncompressed, and once the stalled client is
        # gone compression comes back
        with harness.Server('--compress', '-o', 'limits.compress_memory=400K',
                            files={'big.html': BIG, 'a.html': SMALL}) as srv:
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(('127.0.0.1', srv.port))
            slow.sendall(b'GET /big.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n')
            self.assertIn(b'Content-Encoding: gzip', slow.recv(1024))
            r = fetch(srv.port, 'GET', '/a.html', [('Accept-Encoding', 'gzip')])
            self.assertEqual((r.status, r.header('Content-Encoding'), r.body), (200, None, SMALL))
            self.assertTrue(srv.wait_for_log(r'limits\.compress_memory .* uncompressed'))
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            slow.close()  # a reset: the worker drops the stream
            self.assertTrue(srv.wait_for(lambda: fetch(
                srv.port, 'GET', '/a.html', [('Accept-Encoding', 'gzip')]).header(
                'Content-Encoding') == 'gzip', 20))

    def test_bad_settings_are_refused(self):
        for setting, phrase in (('compress_gzip_level=0', 'between 1 and 9'),
                                ('compress_brotli_level=12', 'between 0 and 11'),
                                ('compress_min_length=lots', 'invalid size'),
                                ('compress_types="html"', 'not a media type')):
            p = subprocess.run([harness.PORTICO, '-t', '-o', setting], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(p.returncode, 1, setting)
            self.assertIn(phrase, p.stderr.decode(), setting)


if __name__ == '__main__':
    harness.main()
