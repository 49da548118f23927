"""t_h2_attack.py: HTTP/2 attacks (issue 19) with a raw client
(tests/lib/h2raw.py) on an h2c prior-knowledge listener: each is bounded,
named in the error log with the client's address, and a normal client is
served meanwhile and after. Rapid reset (CVE-2023-44487: in one read, and
by the thousand), CONTINUATION flood, HPACK bomb, SETTINGS and PING floods
whose ACKs are never read, a zero-window stall (its stream reset after
write_timeout), 100 streams
that read nothing (memory pinned), stream ids at 2^31-1, and
limits.keepalive_requests (streams per connection). The bounds are listed in SECURITY.md."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import h2raw  # noqa: E402

INDEX = b'hello over h2\n'
BIG = 4 * 1024 * 1024  # sparse: 100 streams of it would be 400 MiB if copied
RSS_BOUND_KIB = 48 * 1024


def start(test, *opts):
    srv = harness.Server('-o', 'http2_cleartext=true', '-o', 'log_level=info', *opts)
    srv.write_file('index.html', INDEX)
    with open(srv.write_file('big.bin', b''), 'wb') as f:
        f.truncate(BIG)
    srv.start()
    test.addCleanup(srv.__exit__, None, None, None)
    (wpid,) = srv.worker_pids()
    return srv, wpid


@unittest.skipIf(h2raw.hpack is None, 'python3-hpack is not installed')
class H2Attack(unittest.TestCase):
    def served(self, srv, conn=None):
        """A normal client: a stream on conn (or a new h2 connection) and
        an HTTP/1.1 request both answered."""
        c = conn or h2raw.Conn(srv.port)
        try:
            sid = 1 if conn is None else conn.next_sid
            c.send(h2raw.headers(sid, h2raw.request('/index.html')))
            self.assertEqual(c.response(sid), (200, INDEX), srv.stderr_text()[-2000:])
        finally:
            if conn is None:
                c.close()
        st, _, body = harness.request(srv.port, 'GET', '/index.html')
        self.assertEqual((st, body), (200, INDEX))

    def assert_log(self, srv, regex):
        self.assertTrue(srv.wait_for_log(regex, timeout=30),
                        'no %r in the log:\n%s' % (regex, srv.stderr_text()[-3000:]))

    def assert_rss(self, wpid, rss0, what):
        grown = harness.proc_status(wpid, 'VmHWM') - rss0
        self.assertLess(grown, RSS_BOUND_KIB, '%s: worker peak RSS grew by %d KiB' % (what, grown))

    # ---- rapid reset (CVE-2023-44487) ---------------------------------------

    def test_rapid_reset_in_one_read_is_cut_with_enhance_your_calm(self):
        # http2_max_streams 8: more than 16 streams opened in one read is
        # the bound (nginx's), far below nghttp2's own 1000-reset burst
        srv, _ = start(self, '-o', 'http2_max_streams=8')
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        pairs = b''.join(h2raw.headers(sid, h2raw.request('/index.html')) + h2raw.rst_stream(sid)
                         for sid in range(1, 201, 2))
        c.send(pairs)
        g = c.goaway()
        self.assertIsNotNone(g, 'no GOAWAY')
        self.assertEqual(g[1], h2raw.ENHANCE_YOUR_CALM)
        self.assertLessEqual(g[0], 33)  # the 17th stream's id, or before it
        self.assertTrue(c.closed())
        self.assert_log(srv, r'h2: rapid reset: over 16 streams opened in one read, '
                        r'GOAWAY ENHANCE_YOUR_CALM, client: 127\.0\.0\.1:%d' %
                        c.s.getsockname()[1])
        self.served(srv)

    def test_rapid_reset_by_the_thousand_ends_the_connection_others_served(self):
        # no keepalive_requests cap: the reset bounds alone end it
        srv, wpid = start(self, '-o', 'limits.keepalive_requests=1000000')
        self.served(srv)
        rss0 = harness.proc_status(wpid, 'VmRSS')
        other = h2raw.Conn(srv.port)
        self.addCleanup(other.close)
        other.next_sid = 1
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        block = h2raw.request('/index.html')
        sid = 1
        for _ in range(10):  # 10 x 1000 pairs, or until the server hangs up
            batch = b''
            for _ in range(1000):
                batch += h2raw.headers(sid, block) + h2raw.rst_stream(sid)
                sid += 2
            if not c.send(batch):
                break
            # a client on another connection is answered meanwhile
            self.served(srv, other)
            other.next_sid += 2
        last_code = c.goaway()
        self.assertIsNotNone(last_code, 'no GOAWAY')
        self.assertIn(last_code[1], (h2raw.ENHANCE_YOUR_CALM, h2raw.INTERNAL_ERROR))
        self.assertLess(last_code[0], sid)
        self.assertTrue(c.closed())
        self.assert_log(srv, r'h2: rapid reset: .* client: 127\.0\.0\.1:%d' %
                        c.s.getsockname()[1])
        self.served(srv, other)
        self.served(srv)
        self.assert_rss(wpid, rss0, 'rapid reset')

    def test_streams_reset_in_the_read_that_opened_them_are_never_served(self):
        # the streams a read completes are routed once it is parsed: one
        # reset in the same read never reaches a handler (logged 499, as
        # nginx's "client closed the request"); the streams around it are
        # answered, in order
        srv = harness.Server('-o', 'http2_cleartext=true', access_log=True)
        srv.write_file('index.html', INDEX)
        srv.start()
        self.addCleanup(srv.__exit__, None, None, None)
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        wire = b''
        for sid in range(1, 16, 2):  # 8 streams: below the 16-in-a-read bound
            wire += h2raw.headers(sid, h2raw.request('/index.html?s=%d' % sid))
            if sid % 4 == 3:  # 3, 7, 11, 15 reset at once
                wire += h2raw.rst_stream(sid)
        c.send(wire)
        for sid in (1, 5, 9, 13):
            self.assertEqual(c.response(sid), (200, INDEX), srv.stderr_text()[-2000:])
        self.assertTrue(srv.wait_for(
            lambda: len(srv.access_log_text().splitlines()) >= 8), srv.access_log_text())
        status = {}
        for line in srv.access_log_text().splitlines():
            q = line.split('"')[1].split()[1]  # GET /index.html?s=N HTTP/2.0
            status[int(q.split('=')[1])] = int(line.split('"')[2].split()[0])
        self.assertEqual(status, {1: 200, 3: 499, 5: 200, 7: 499, 9: 200, 11: 499, 13: 200, 15: 499},
                         srv.access_log_text())

    def test_streams_of_one_read_are_routed_in_order_with_and_without_body(self):
        # a stream without a body waits for the read's end, one with a body
        # is routed from the parser (its DATA follows): the one before it
        # still comes first, so limit_req's single token goes to stream 1
        conf = 'locations = ( { prefix = "/one/"; limit_req = "1r/m"; } );\n'
        srv = harness.Server('-o', 'http2_cleartext=true', conf=conf, access_log=True)
        srv.write_file('one/a.txt', 'a\n')
        srv.start()
        self.addCleanup(srv.__exit__, None, None, None)
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        wire = h2raw.headers(1, h2raw.request('/one/a.txt?s=1'))
        wire += h2raw.headers(3, h2raw.request('/one/a.txt?s=3'), end_stream=False)
        wire += h2raw.frame(h2raw.DATA, h2raw.END_STREAM, 3, b'')
        c.send(wire)
        self.assertEqual(c.response(1), (200, b'a\n'), srv.stderr_text()[-2000:])
        self.assertEqual(c.response(3)[0], 429, srv.stderr_text()[-2000:])

    # ---- CONTINUATION flood (2024) --------------------------------------

    def test_continuation_flood_is_closed_with_memory_bounded(self):
        srv, wpid = start(self)
        self.served(srv)
        rss0 = harness.proc_status(wpid, 'VmRSS')
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        c.send(h2raw.headers(1, h2raw.request('/index.html'), end_headers=False))
        # valid fields, never END_HEADERS: 16 KiB a frame
        field = h2raw.literal('x-flood', 'a' * 1000)
        chunk = field * (16384 // len(field))
        sent = 0
        while sent < 10000 and c.send(h2raw.continuation(1, chunk)):
            sent += 1
        self.assertLess(sent, 10000, 'the server took 10000 CONTINUATION frames')
        self.assertTrue(c.closed())
        self.assert_log(srv, r'h2: CONTINUATION flood: over 8 CONTINUATION frames in one header '
                        r'block, client: 127\.0\.0\.1:%d' % c.s.getsockname()[1])
        self.served(srv)
        self.assert_rss(wpid, rss0, 'CONTINUATION flood')

    # ---- HPACK bomb ----------------------------------------------------------

    def test_hpack_bomb_gets_431_without_memory_blowup(self):
        srv, wpid = start(self)
        self.served(srv)
        rss0 = harness.proc_status(wpid, 'VmRSS')
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        # one 4000-byte field in the dynamic table (index 62), referenced
        # by one byte each: 4 frames decode to about 250 MiB
        first = h2raw.request('/index.html') + h2raw.literal('x-bomb', 'b' * 4000, index=True)
        refs = h2raw.indexed(62) * 16000
        c.send(h2raw.headers(1, first + refs[:16384 - len(first)], end_headers=False) +
               h2raw.continuation(1, refs) + h2raw.continuation(1, refs) +
               h2raw.continuation(1, refs, end_headers=True))
        r = c.response(1)
        self.assertIsNotNone(r, srv.stderr_text()[-2000:])
        self.assertEqual(r[0], 431)
        self.assert_log(srv, r'h2: request head over \d+ bytes or \d+ fields decoded \(HPACK '
                        r'bomb\?\), stream 1: 431, client: 127\.0\.0\.1:%d' %
                        c.s.getsockname()[1])
        self.assert_rss(wpid, rss0, 'HPACK bomb')
        # the connection carries on: the table stayed in step
        c.next_sid = 3
        self.served(srv, c)

    # ---- SETTINGS and PING floods, ACKs never read -------------------------

    def flood(self, frame_bytes, what):
        # a long write_timeout: the flood bound, not the timeout, must end it
        srv, wpid = start(self, '-o', 'limits.write_timeout=600s')
        self.served(srv)
        rss0 = harness.proc_status(wpid, 'VmRSS')
        c = h2raw.Conn(srv.port, rcvbuf=4096)
        self.addCleanup(c.close)
        batch = frame_bytes * 1000
        sent, ok = 0, True
        while ok and sent < 4000:  # 4 million frames at most
            try:
                ok = c.send(batch)
            except socket.timeout:  # the server stopped reading: not closed
                break
            sent += 1
        self.assertFalse(ok, '%s: the server took %d frames' % (what, sent * 1000))
        self.assert_log(srv, r'h2: flood: over 1000 PING/SETTINGS ACKs or resets queued, not '
                        r'read, client: 127\.0\.0\.1:%d' % c.s.getsockname()[1])
        self.served(srv)
        self.assert_rss(wpid, rss0, what)

    def test_ping_flood_unread_acks_closed(self):
        self.flood(h2raw.ping(b'pingpong'), 'PING flood')

    def test_settings_flood_unread_acks_closed(self):
        self.flood(h2raw.settings((h2raw.ENABLE_PUSH, 0)), 'SETTINGS flood')

    def test_settings_with_too_many_entries_is_refused(self):
        srv, _ = start(self)
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        c.send(h2raw.settings(*[(h2raw.ENABLE_PUSH, 0)] * 33))
        g = c.goaway()
        self.assertEqual(g and g[1], h2raw.ENHANCE_YOUR_CALM)
        self.assertTrue(c.closed())
        self.assert_log(srv, r'h2: connection error, GOAWAY ENHANCE_YOUR_CALM \(SETTINGS: too '
                        r'many setting entries\), client: 127\.0\.0\.1:%d' %
                        c.s.getsockname()[1])
        self.served(srv)

    # ---- flow control ------------------------------------------------------

    def test_zero_window_stall_is_reset_after_write_timeout(self):
        srv, _ = start(self, '-o', 'limits.write_timeout=2s')
        c = h2raw.Conn(srv.port, preface=False)
        self.addCleanup(c.close)
        c.send(h2raw.PREFACE + h2raw.settings((h2raw.INITIAL_WINDOW_SIZE, 0)) +
               h2raw.headers(1, h2raw.request('/big.bin')))
        f, _ = c.until(lambda f: f[0] == h2raw.HEADERS and f[2] == 1)
        self.assertIsNotNone(f, srv.stderr_text()[-2000:])
        self.assertEqual(dict(c.fields[1])[b':status'], b'200')
        # PINGs answered are no progress: the stalled stream is still reset
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and 1 not in c.ended and not c.eof:
            c.send(h2raw.ping())
            c.until(lambda f: f[0] == h2raw.RST_STREAM, timeout=0.5)
        self.assertEqual(c.ended.get(1), 'reset', 'a zero-window stall was not reset')
        self.assertNotIn(1, c.bodies, 'DATA sent into a zero window')
        self.assert_log(srv, r'h2: zero-window stall: 1 stream\(s\) reset, no WINDOW_UPDATE '
                        r'within write_timeout, client: 127\.0\.0\.1:%d' %
                        c.s.getsockname()[1])
        # the connection is not the stream: with a window it serves again
        c.send(h2raw.settings((h2raw.INITIAL_WINDOW_SIZE, 65535)))
        c.next_sid = 3
        self.served(srv, c)

    def test_100_streams_that_read_nothing_pin_bounded_memory(self):
        srv, wpid = start(self)
        self.served(srv)
        rss0 = harness.proc_status(wpid, 'VmRSS')
        c = h2raw.Conn(srv.port, rcvbuf=4096, preface=False)
        self.addCleanup(c.close)
        # every window wide open, then nothing read
        c.send(h2raw.PREFACE + h2raw.settings((h2raw.INITIAL_WINDOW_SIZE, 2 ** 31 - 1)) +
               h2raw.window_update(0, 2 ** 31 - 1 - 65535) +
               b''.join(h2raw.headers(sid, h2raw.request('/big.bin'))
                        for sid in range(1, 201, 2)))
        # the worker has taken them all (they are in the access log as
        # they end; here: the server is still serving others meanwhile)
        for _ in range(5):
            self.served(srv)
        self.assert_rss(wpid, rss0, '100 streams unread')

    # ---- stream ids and the per-connection cap ------------------------------

    def test_last_stream_id_is_answered_then_goaway(self):
        srv, _ = start(self)
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        sid = 2 ** 31 - 1
        c.send(h2raw.headers(sid, h2raw.request('/index.html')))
        self.assertEqual(c.response(sid), (200, INDEX))
        self.assertEqual(c.goaway(), (sid, h2raw.NO_ERROR))
        self.assertTrue(c.closed())
        self.assert_log(srv, r'h2: stream ids exhausted \(stream 2147483647\), GOAWAY, '
                        r'client: 127\.0\.0\.1:%d' % c.s.getsockname()[1])
        self.served(srv)

    def test_keepalive_requests_ends_the_connection_gracefully(self):
        srv, _ = start(self, '-o', 'limits.keepalive_requests=3')
        c = h2raw.Conn(srv.port)
        self.addCleanup(c.close)
        for sid in (1, 3, 5, 7):
            c.send(h2raw.headers(sid, h2raw.request('/index.html')))
        for sid in (1, 3, 5):
            self.assertEqual(c.response(sid), (200, INDEX))
        self.assertEqual(c.goaway(), (5, h2raw.NO_ERROR))
        self.assertTrue(c.closed())
        self.served(srv)


if __name__ == '__main__':
    harness.main()
