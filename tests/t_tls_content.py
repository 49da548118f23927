"""t_tls_content.py: files above open_file_cache.content_max kept in memory
for the responses that copy their bytes anyway (issue 16, "static 100 KiB
over TLS"): over TLS (no kernel TLS) and HTTP/2 a 100 KiB or 200 KiB file
up to open_file_cache.content_max_tls goes out from the cached content,
with no fstat or read per request; ranges of it too. The same file over
plain HTTP/1.1 still goes by sendfile (which copies nothing in user
space). The content obeys the cache's rule for kept content (a file
rewritten in place is never sent mixed or under another length), and
content_memory bounds all of it: two files larger than half of it are
both still served right, and content outlives its entry while a stalled
response still sends it. System calls are watched with strace."""

import gzip
import http.client
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import t_h2  # noqa: E402

D = tempfile.mkdtemp(prefix='portico-tlsc-')
F100 = bytes((i * 13 + (i >> 9)) & 0xff for i in range(100 * 1024))
F200 = bytes((i * 7 + (i >> 11)) & 0xff for i in range(200 * 1024))
F10 = F200[:10 * 1024][::-1]  # within content_max: kept for every response
OLD = b'o' * (100 * 1024)
NEW = b'N' * (150 * 1024)
STRACE = shutil.which('strace')
# what reading or checking a file costs the worker
FILE_CALLS = 'pread64,read,readv,preadv,fstat,newfstatat,statx,openat,openat2,sendfile'
_n = [0]


def server(conf='', plain=None, http2=False):
    args = ['--tls', '127.0.0.1:@PORT@', '--cert', t_h2.CRT, '--key', t_h2.KEY]
    if plain:
        args += ['-l', '127.0.0.1:%d' % plain]
    if http2:
        args += ['-o', 'http2=true']
    srv = harness.Server(*args, conf=conf or None, listen=[])
    srv.write_file('100k.bin', F100)
    srv.write_file('200k.bin', F200)
    srv.write_file('10k.bin', F10)
    return srv


class Conn:
    """One keep-alive HTTPS (or plain) connection."""

    def __init__(self, port, tls=True):
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.c = http.client.HTTPSConnection('127.0.0.1', port, timeout=30, context=ctx)
        else:
            self.c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)

    def get(self, path, headers=None):
        self.c.request('GET', path, headers=headers or {})
        r = self.c.getresponse()
        body = r.read()
        cl = r.getheader('Content-Length')
        # the body is exactly the length the head promised
        assert cl is not None and int(cl) == len(body), (cl, len(body))
        return r.status, body, r

    def close(self):
        self.c.close()


def traced(tc, srv, fn, calls=FILE_CALLS):
    """The worker's system calls (of calls) while fn() runs: strace's lines."""
    def poke():
        try:
            c = Conn(srv.port)
            c.get('/nothing-here')
            c.close()
        except (OSError, AssertionError):
            pass
    _n[0] += 1
    # attached once the worker's next wait shows
    trace = harness.strace_during(tc, srv.worker_pids()[0], fn, poke, 'epoll_wait',
                                  calls + ',epoll_wait',
                                  log=os.path.join(D, 'strace-%d.txt' % _n[0]), settle=0.3)
    # strace -qq may split a call over two lines: the named calls only
    named = re.compile(r'\b(%s)\(' % calls.replace(',', '|'))
    return [l for l in trace.splitlines() if named.search(l)]


needs_strace = unittest.skipUnless(STRACE, 'no strace (apt-get install -y strace)')
no_valgrind = unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')


class OverTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.plain = harness.free_port()
        cls.srv = server('open_file_cache = { valid = "1h"; };', plain=cls.plain)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_100k_and_200k_bytes_over_tls(self):
        c = Conn(self.srv.port)
        self.addCleanup(c.close)
        for _ in range(3):
            self.assertEqual(c.get('/100k.bin')[:2], (200, F100))
            self.assertEqual(c.get('/200k.bin')[:2], (200, F200))

    def test_10k_kept_for_every_response_tls_and_plain(self):
        # above a pooled chunk: queued by reference, over TLS and plain
        for conn in (Conn(self.srv.port), Conn(self.plain, tls=False)):
            self.addCleanup(conn.close)
            for _ in range(3):
                self.assertEqual(conn.get('/10k.bin')[:2], (200, F10))
                self.assertEqual(conn.get('/10k.bin', {'Range': 'bytes=100-8999'})[:2],
                                 (206, F10[100:9000]))
                self.assertEqual(conn.get('/100k.bin')[:2], (200, F100))

    @no_valgrind
    @needs_strace
    def test_cached_content_costs_no_fstat_and_no_read(self):
        c = Conn(self.srv.port)
        self.addCleanup(c.close)
        for path in ('/100k.bin', '/200k.bin'):
            c.get(path)  # opened and its content kept

        def five_each():
            for _ in range(5):
                for path, data in (('/100k.bin', F100), ('/200k.bin', F200)):
                    self.assertEqual(c.get(path)[:2], (200, data))
        lines = traced(self, self.srv, five_each)
        # before: an fstat (a file written in place?) and 7 or 13 preads
        # of 16 KiB per response
        self.assertEqual(lines, [], 'file system calls for cached content')

    @no_valgrind
    @needs_strace
    def test_ranges_come_from_the_cached_content(self):
        c = Conn(self.srv.port)
        self.addCleanup(c.close)
        c.get('/200k.bin')

        def ranges():
            st, body, r = c.get('/200k.bin', {'Range': 'bytes=1000-150000'})
            self.assertEqual((st, body), (206, F200[1000:150001]))
            self.assertEqual(r.getheader('Content-Range'), 'bytes 1000-150000/204800')
            st, body, r = c.get('/200k.bin', {'Range': 'bytes=0-99,100000-199999'})
            self.assertEqual(st, 206)
            self.assertIn(F200[:100], body)
            self.assertIn(F200[100000:200000], body)
            self.assertEqual(c.get('/200k.bin', {'Range': 'bytes=-20000'})[:2],
                             (206, F200[-20000:]))
        self.assertEqual(traced(self, self.srv, ranges), [])

    @no_valgrind
    @needs_strace
    def test_plain_http_still_sends_the_file(self):
        # kept in memory for TLS first: plain HTTP/1.1 still uses sendfile
        t = Conn(self.srv.port)
        self.addCleanup(t.close)
        t.get('/100k.bin')
        p = Conn(self.plain, tls=False)
        self.addCleanup(p.close)

        def plain_twice():
            for _ in range(2):
                self.assertEqual(p.get('/100k.bin')[:2], (200, F100))
        lines = traced(self, self.srv, plain_twice, FILE_CALLS + ',sendmsg,writev,write')
        text = '\n'.join(lines)
        self.assertGreaterEqual(len(re.findall(r'\bsendfile\(', text)), 2, text)
        self.assertNotRegex(text, r'\bpread64\(', text)
        # the body is not written from memory either: only heads are
        for l in lines:
            m = re.search(r'\b(sendmsg|writev|write)\(.* = (\d+)$', l)
            self.assertFalse(m and int(m.group(2)) > 4096, l)

    @no_valgrind
    @needs_strace
    def test_precompressed_sibling_from_cached_content(self):
        srv = server('open_file_cache = { valid = "1h"; };\nprecompressed = true;')
        text = b''.join(b'line %d: %08x\n' % (i, (i * 2654435761) & 0xffffffff)
                        for i in range(8000))
        gz = gzip.compress(text, mtime=0)  # a sibling above content_max
        self.assertGreater(len(gz), 16 * 1024)
        self.assertLess(len(text), 256 * 1024)
        srv.write_file('doc.txt', text)
        srv.write_file('doc.txt.gz', gz)
        srv.start()
        self.addCleanup(srv.stop)
        c = Conn(srv.port)
        self.addCleanup(c.close)
        ae = {'Accept-Encoding': 'gzip'}
        c.get('/doc.txt', ae)

        def both():
            st, body, r = c.get('/doc.txt', ae)
            self.assertEqual((st, body, r.getheader('Content-Encoding')), (200, gz, 'gzip'))
            self.assertEqual(c.get('/doc.txt')[:2], (200, text))
        c.get('/doc.txt')
        self.assertEqual(traced(self, srv, both), [])

    def test_head_has_no_body(self):
        c = Conn(self.srv.port)
        self.addCleanup(c.close)
        c.get('/200k.bin')
        c.c.request('HEAD', '/200k.bin')
        r = c.c.getresponse()
        self.assertEqual((r.status, r.getheader('Content-Length'), r.read()),
                         (200, '204800', b''))
        self.assertEqual(c.get('/200k.bin')[:2], (200, F200))


class Limits(unittest.TestCase):
    def start(self, conf):
        srv = server(conf)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    @no_valgrind
    @needs_strace
    def test_above_content_max_tls_is_read_from_the_file(self):
        srv = self.start('open_file_cache = { valid = "1h"; content_max_tls = "150K"; };')
        c = Conn(srv.port)
        self.addCleanup(c.close)
        c.get('/100k.bin')
        c.get('/200k.bin')
        lines = traced(self, srv, lambda: self.assertEqual(c.get('/200k.bin')[:2], (200, F200)))
        self.assertTrue(any('pread64(' in l for l in lines), lines)
        lines = traced(self, srv, lambda: self.assertEqual(c.get('/100k.bin')[:2], (200, F100)))
        self.assertEqual(lines, [])

    def test_memory_budget_two_files_above_half_of_it(self):
        # 300 KiB for all content: 100 KiB + 200 KiB fit, 200 KiB twice not
        srv = self.start('open_file_cache = { valid = "300ms"; content_memory = "300K"; };')
        srv.write_file('200k-b.bin', F200[::-1])
        c = Conn(srv.port)
        self.addCleanup(c.close)
        deadline = time.monotonic() + 3
        n = 0
        while time.monotonic() < deadline or n < 40:
            self.assertEqual(c.get('/200k.bin')[:2], (200, F200))
            self.assertEqual(c.get('/200k-b.bin')[:2], (200, F200[::-1]))
            self.assertEqual(c.get('/100k.bin')[:2], (200, F100))
            n += 1

    def test_content_memory_zero_keeps_nothing_but_serves(self):
        srv = self.start('open_file_cache = { valid = "1h"; content_memory = "0"; };')
        c = Conn(srv.port)
        self.addCleanup(c.close)
        for _ in range(3):
            self.assertEqual(c.get('/200k.bin')[:2], (200, F200))


class Rewritten(unittest.TestCase):
    """A file written in place: every answer is the old file or the new
    one, whole, with its own length (Conn.get checks Content-Length)."""

    def test_rewritten_in_place_over_tls_is_never_mixed(self):
        srv = server('open_file_cache = { valid = "200ms"; };')
        srv.start()
        self.addCleanup(srv.stop)
        path = srv.write_file('w.bin', OLD)
        c = Conn(srv.port)
        self.addCleanup(c.close)
        for _ in range(2):
            self.assertEqual(c.get('/w.bin')[:2], (200, OLD))
        with open(path, 'r+b') as f:
            f.write(NEW)
        seen = []

        def done():
            st, body, _ = c.get('/w.bin')
            seen.append(len(body))
            self.assertIn(body, (OLD, NEW), 'neither the old nor the new file')
            return body == NEW
        self.assertTrue(harness.Server.wait_for(done, timeout=10, interval=0.02),
                        'still the old file after 10 s: %r' % seen[-3:])
        # and back to a shorter one, written while being served
        with open(path, 'wb') as f:
            f.write(OLD)
        self.assertTrue(harness.Server.wait_for(lambda: c.get('/w.bin')[1] == OLD, timeout=10,
                                                interval=0.02))


class Lifetime(unittest.TestCase):
    def test_content_outlives_its_entry_while_a_slow_reader_gets_it(self):
        # a response stalled in the middle of 4 MiB of kept content; the
        # file is replaced meanwhile and its entry with it: the stalled
        # response still gets the old content, whole (the entry's memory
        # goes with the last response that sends it; ASan would see it
        # freed early)
        big_old = bytes((i * 31 + (i >> 13)) & 0xff for i in range(4 << 20))
        big_new = big_old[::-1]
        srv = server('open_file_cache = { valid = "100ms"; content_max_tls = "8M"; };')
        path = srv.write_file('huge.bin', big_old)
        srv.start()
        self.addCleanup(srv.stop)
        c = Conn(srv.port)
        self.addCleanup(c.close)
        self.assertEqual(c.get('/huge.bin')[:2], (200, big_old))
        slow = Conn(srv.port)
        self.addCleanup(slow.close)
        slow.c.connect()
        slow.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.c.request('GET', '/huge.bin')
        r = slow.c.getresponse()
        first = r.read(64 * 1024)
        tmp = os.path.join(os.path.dirname(path), '.huge.new')
        with open(tmp, 'wb') as f:
            f.write(big_new)
        os.rename(tmp, path)
        self.assertTrue(harness.Server.wait_for(lambda: c.get('/huge.bin')[1] == big_new,
                                                timeout=10, interval=0.05))
        # and once more, so the replaced entry is gone from the table
        time.sleep(0.2)
        self.assertEqual(c.get('/huge.bin')[:2], (200, big_new))
        rest = r.read()
        self.assertTrue(first + rest == big_old, 'the stalled response is not the old file')
        self.assertEqual(slow.get('/huge.bin')[:2], (200, big_new))


@unittest.skipIf(t_h2.h2 is None, 'python3-h2 is not installed')
class OverH2(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = server('open_file_cache = { valid = "1h"; };', http2=True)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_h2_streams_from_cached_content(self):
        h = t_h2.Client(self.srv.port)
        self.addCleanup(h.close)
        self.assertEqual(h.alpn, 'h2')
        h.get('/100k.bin')
        h.get('/200k.bin')

        def streams():
            sids = [h.request(p) for p in ('/100k.bin', '/200k.bin', '/100k.bin')]
            rg = h.request('/200k.bin', headers=[('range', 'bytes=5000-104999')])
            h.pump(lambda: all(h.done(s) for s in sids + [rg]))
            self.assertEqual([h.streams[s]['data'] for s in sids], [F100, F200, F100])
            self.assertEqual(h.streams[rg]['headers'][':status'], '206')
            self.assertEqual(h.streams[rg]['data'], F200[5000:105000])
        if STRACE and not harness.VALGRIND:
            self.assertEqual(traced(self, self.srv, streams), [])
        else:
            streams()


if __name__ == '__main__':
    harness.main()
