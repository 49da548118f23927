"""t_h2_static.py: what static files do over HTTP/1.1 they do over HTTP/2
streams (issue 19: "every handler works over h2 unchanged: static files
(ranges, conditionals, precompressed, the open-file cache ...) and whatever
the other open issues have added (compression)"; tests: "a page with 50
assets", "large downloads with a small client window"). t_h2.py has ranges,
conditionals and many streams; here: a page and its 50 assets fetched by
nghttp on one connection, compression on the fly (gzip, br) and a
precompressed sibling, the open-file cache's entries serving streams, and a
1 MiB file through a 1 KiB stream window; the fields a response takes from
the cache's entry (h2.c remembers the fields a kept block made) follow the
file when it changes."""

import email.utils

import gzip
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import t_h2  # noqa: E402

if t_h2.h2 is not None:
    import h2.settings

CONF = '''
compress = true;
locations = (
  { prefix = "/pre/"; precompressed = true; compress = false; },
  { exact = "/server-status"; handler = "status"; }
);
open_file_cache = { max = 100; valid = "1h"; };
'''
TEXT = b''.join(b'line %d of a text that compresses well\n' % i for i in range(2000))
BROTLI = shutil.which('brotli')


def page():
    """An HTML page naming 50 assets (stylesheets, scripts, images) and the assets."""
    assets = {}
    tags = []
    for i in range(20):
        assets['assets/s%d.css' % i] = b'body { margin: %dpx; }\n' % i * (i + 1)
        tags.append('<link rel="stylesheet" href="/assets/s%d.css">' % i)
    for i in range(15):
        assets['assets/j%d.js' % i] = b'var a%d = 1;\n' % i * (i + 1)
        tags.append('<script src="/assets/j%d.js"></script>' % i)
    for i in range(15):
        assets['assets/i%d.png' % i] = b'\x89PNG\r\n\x1a\n' + bytes(range(256)) * (i + 1)
        tags.append('<img src="/assets/i%d.png">' % i)
    html = '<!doctype html><html><head>%s</head><body>%s</body></html>\n' % (
        ''.join(tags[:35]), ''.join(tags[35:]))
    return html.encode(), assets


class H2Static(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = t_h2.h2_server(conf=CONF)
        html, cls.assets = page()
        cls.srv.write_file('page.html', html)
        for name, data in cls.assets.items():
            cls.srv.write_file(name, data)
        cls.srv.write_file('text.txt', TEXT)
        cls.srv.write_file('pre/doc.txt', TEXT)
        cls.srv.write_file('pre/doc.txt.gz', gzip.compress(TEXT + b'(the .gz sibling)\n'))
        cls.srv.write_file('swap.txt', 'first\n')
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def status(self):
        r = t_h2.curl(self.srv, '/server-status?format=json', '--http1.1')
        body, _, code = t_h2.split(r)
        self.assertEqual(code, 200, body)
        return json.loads(body)['http2']

    @unittest.skipUnless(t_h2.HAVE_NGHTTP, 'nghttp is not installed')
    def test_page_with_50_assets_on_one_connection(self):
        before = self.status()
        p = subprocess.run(['nghttp', '-anv', 'https://127.0.0.1:%d/page.html' % self.srv.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode('utf-8', 'replace')
        self.assertEqual(p.returncode, 0, out[-2000:])
        self.assertEqual(out.count(':status: 200'), 51, out[-2000:])
        for name in self.assets:
            self.assertIn(':path: /' + name, out)
        after = self.status()
        self.assertEqual(after['opened'] - before['opened'], 1, (before, after))
        self.assertEqual(after['streams'] - before['streams'], 51, (before, after))
        log = self.srv.access_log_text()
        self.assertEqual(log.count('"GET /assets/'), 50, log[-3000:])

    def test_gzip_on_the_fly(self):
        r = t_h2.curl(self.srv, '/text.txt', '-H', 'Accept-Encoding: gzip', '-D', '-')
        body, ver, code = t_h2.split(r)
        self.assertEqual((ver, code), ('2', 200))
        head, _, data = body.partition(b'\r\n\r\n')
        self.assertIn(b'content-encoding: gzip', head.lower())
        self.assertIn(b'vary: accept-encoding', head.lower())
        self.assertNotIn(b'content-length', head.lower())  # length unknown ahead
        self.assertEqual(gzip.decompress(data), TEXT)
        self.assertLess(len(data), len(TEXT) // 4)

    @unittest.skipUnless(BROTLI, 'brotli command not installed')
    def test_brotli_on_the_fly(self):
        st = t_h2.Client(self.srv.port)
        self.addCleanup(st.close)
        s = st.get('/text.txt', headers=[('accept-encoding', 'br')])
        self.assertEqual(s['headers']['content-encoding'], 'br')
        out = subprocess.run([BROTLI, '-d', '-c'], input=s['data'], stdout=subprocess.PIPE,
                             check=True, timeout=60).stdout
        self.assertEqual(out, TEXT)

    def test_precompressed_sibling(self):
        st = t_h2.Client(self.srv.port)
        self.addCleanup(st.close)
        s = st.get('/pre/doc.txt', headers=[('accept-encoding', 'gzip')])
        self.assertEqual(s['headers']['content-encoding'], 'gzip')
        self.assertEqual(s['headers']['content-length'], str(len(s['data'])))
        self.assertEqual(gzip.decompress(s['data']), TEXT + b'(the .gz sibling)\n')
        s = st.get('/pre/doc.txt')
        self.assertNotIn('content-encoding', s['headers'])
        self.assertEqual(s['data'], TEXT)

    def test_open_file_cache_serves_streams(self):
        st = t_h2.Client(self.srv.port)
        self.addCleanup(st.close)
        self.assertEqual(st.get('/swap.txt')['data'], b'first\n')
        # a deploy replaces the file by renaming a new one over it: for
        # valid (1h here) the cached result is used, the old file whole
        tmp = os.path.join(self.srv.docroot, '.swap.new')
        with open(tmp, 'w') as f:
            f.write('second, longer\n')
        os.rename(tmp, os.path.join(self.srv.docroot, 'swap.txt'))
        for _ in range(3):
            s = st.get('/swap.txt')
            self.assertEqual((s['data'], s['headers']['content-length']), (b'first\n', '6'))
        # a new connection (another stream, the same worker's cache) too
        other = t_h2.Client(self.srv.port)
        self.addCleanup(other.close)
        self.assertEqual(other.get('/swap.txt')['data'], b'first\n')

    @unittest.skipIf(t_h2.h2 is None, 'python3-h2 is not installed')
    def test_big_file_through_a_small_stream_window(self):
        c = t_h2.Client(self.srv.port)
        self.addCleanup(c.close)
        c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
        c.flush()
        frames = []
        real = c.conn.receive_data

        def spy(data):
            events = real(data)
            frames.extend(len(e.data) for e in events if isinstance(e, t_h2.h2.events.DataReceived))
            return events
        c.conn.receive_data = spy
        s = c.get('/big.bin')
        self.assertEqual(s['headers'][':status'], '200')
        self.assertTrue(s['data'] == t_h2.BIG, 'the 1 MiB file byte for byte')
        self.assertGreaterEqual(len(frames), len(t_h2.BIG) // 1024)
        self.assertLessEqual(max(frames), 1024)
        # the connection carries on
        self.assertEqual(c.get('/index.html')['data'], b'hello over h2\n')



class H2FileChanges(unittest.TestCase):
    """A cached file's Content-Type, Last-Modified and ETag reach a stream
    as a kept block, whose fields h2.c remembers by the block's bytes: a
    file changed in place (the same size: a block of the same length, likely
    at the same address) gets its new fields once the entry is refreshed."""

    @classmethod
    def setUpClass(cls):
        cls.srv = t_h2.h2_server(conf='open_file_cache = { max = 100; valid = "200ms"; };')
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def put(self, data, mtime):
        path = os.path.join(self.srv.docroot, 'v.txt')
        with open(path, 'wb') as f:
            f.write(data)
        os.utime(path, (mtime, mtime))

    def test_fields_follow_a_changed_file(self):
        c = t_h2.Client(self.srv.port)
        self.addCleanup(c.close)
        old, new = b'old\n' * 100, b'new\n' * 100
        lm_old = email.utils.formatdate(1600000000, usegmt=True)
        lm_new = email.utils.formatdate(1600000100, usegmt=True)
        self.put(old, 1600000000)
        for _ in range(3):  # the block parsed once, then remembered
            s = c.get('/v.txt')
            self.assertEqual((s['data'], s['headers']['last-modified']), (old, lm_old))
        etag_old = s['headers']['etag']
        self.assertEqual(s['headers']['content-type'], 'text/plain; charset=utf-8')
        self.put(new, 1600000100)
        seen = []

        def changed():
            s = c.get('/v.txt')
            h = s['headers']
            self.assertIn(s['data'], (old, new))
            seen.append((s['data'] == new, h['last-modified'], h['etag'] == etag_old))
            return s['data'] == new

        self.assertTrue(harness.Server.wait_for(changed, timeout=10, interval=0.02))
        # every answer's fields are its own body's, before and after
        for a in seen:
            self.assertIn(a, ((False, lm_old, True), (True, lm_new, False)))
        for _ in range(3):
            s = c.get('/v.txt')
            h = s['headers']
            self.assertEqual((s['data'], h['last-modified'], h['content-type']),
                             (new, lm_new, 'text/plain; charset=utf-8'))
            self.assertNotEqual(h['etag'], etag_old)
            self.assertEqual(h['accept-ranges'], 'bytes')


if __name__ == '__main__':
    harness.main()
