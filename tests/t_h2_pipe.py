"""t_h2_pipe.py: a read holding many requests is answered as it is worked
through (issue 19, h2-1k). A client that keeps 100 streams in flight
sends its next batch of requests in one write; if the server frames and
writes the answers only after the whole batch, the two sides take turns
and each waits for the other. portico gives the session a read in
pieces, ending after every 16th stream the client finished, and writes
what those answered before it goes on. The client sees it in the order
of frames: a PING written after 40 requests in one write is acknowledged
only after the answers to the first 16 (nghttp2 puts a PING ACK ahead of
every HEADERS and DATA it has queued). A connection error in the middle of
such a read (rapid reset) still reaches the client: the close lingers on
the input the server will not read."""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import h2raw  # noqa: E402
import t_h2  # noqa: E402
from t_h2_goaway import (DATA, END_HEADERS, END_STREAM, HEADERS, PING, SETTINGS, ACK,  # noqa: E402
                         Raw, frame, get_headers, status_of)

FEED = 16  # streams given to the session before a flush (h2_conn.c)
RST_BURST = 1000  # nghttp2's RST_STREAM bucket as portico sets it (h2.c)


def batch(first_sid, n, path='/index.html'):
    return b''.join(frame(HEADERS, END_STREAM | END_HEADERS, first_sid + 2 * i, get_headers(path))
                    for i in range(n))


def finished(frames):
    """Streams whose last frame arrived, in order."""
    return [s for t, fl, s, p in frames if t in (DATA, HEADERS) and fl & END_STREAM and s]


class Pipelined(unittest.TestCase):
    def raw(self, srv):
        c = Raw(srv.port)
        self.addCleanup(c.close)
        c.until(lambda f: f[0] == SETTINGS and f[1] & ACK)  # our SETTINGS taken
        return c

    def test_answers_leave_before_the_rest_of_the_read_is_parsed(self):
        with t_h2.h2_server() as srv:
            c = self.raw(srv)
            c.send(batch(1, 40) + frame(PING, 0, 0, b'pipeline'))
            seen, ack = c.until(lambda f: f[0] == PING and f[1] & ACK)
            self.assertIsNotNone(ack)
            self.assertEqual(ack[3], b'pipeline')
            done = finished(seen)
            # the first pieces' streams went out whole before the PING was read
            self.assertGreaterEqual(len(done), 2 * FEED, done)
            self.assertEqual(done[:2 * FEED], list(range(1, 4 * FEED, 2)))
            rest, _ = c.until(lambda f: len(finished(c.frames)) == 40)
            self.assertEqual(sorted(finished(c.frames)), list(range(1, 80, 2)))
            for sid in range(1, 80, 2):
                self.assertEqual(status_of(c.frames, sid), 200, sid)
                body = b''.join(p for t, fl, s, p in c.frames if t == DATA and s == sid)
                self.assertEqual(body, b'hello over h2\n')

    def test_a_small_batch_is_one_piece(self):
        with t_h2.h2_server() as srv:
            c = self.raw(srv)
            c.send(batch(1, FEED - 1) + frame(PING, 0, 0, b'one-read'))
            seen, ack = c.until(lambda f: f[0] == PING and f[1] & ACK)
            self.assertIsNotNone(ack)
            # all of it parsed before anything was framed: the ACK first
            self.assertEqual(finished(seen), [])
            c.until(lambda f: len(finished(c.frames)) == FEED - 1)
            self.assertEqual(sorted(finished(c.frames)), list(range(1, 2 * FEED - 1, 2)))

    def test_frames_split_anywhere_across_writes(self):
        # the cut points follow frame headers split between reads, a
        # CONTINUATION, a request with a body, and a PING in between
        with t_h2.h2_server() as srv:
            c = self.raw(srv)
            hb = get_headers('/index.html')
            data = batch(1, 20)
            data += frame(HEADERS, END_STREAM, 41, hb[:3]) + frame(9, END_HEADERS, 41, hb[3:])
            data += frame(PING, 0, 0, b'12345678')
            data += batch(43, 20)
            for i in range(0, len(data), 7):
                c.send(data[i:i + 7])
            c.until(lambda f: len(finished(c.frames)) == 41)
            self.assertEqual(sorted(finished(c.frames)), list(range(1, 83, 2)))
            for sid in range(1, 83, 2):
                self.assertEqual(status_of(c.frames, sid), 200, sid)
            self.assertTrue(any(f[0] == PING and f[1] & ACK for f in c.frames))

    def test_goaway_reaches_a_client_still_sending(self):
        # Pairs of a finished request and its RST_STREAM, a little over
        # the reset bucket, then more frames, in one write: the connection
        # error comes while the client is still sending, with its answers
        # still on their way. A close on unread input is a TCP reset, which
        # drops what the server had written but not yet sent (the GOAWAY
        # behind the answers): the input is drained first (lingering
        # close), so the client reads the answers, then the GOAWAY, then
        # the end. http2_max_streams 1000: the streams-per-read bound
        # (2000) is not the one that ends it.
        srv = harness.Server('-o', 'http2_cleartext=true', '-o', 'log_level=info',
                             '-o', 'http2_max_streams=1000',
                             '-o', 'limits.keepalive_requests=1000000')
        srv.write_file('index.html', b'hello over h2\n')
        srv.start()
        self.addCleanup(srv.__exit__, None, None, None)
        for _ in range(6):  # the race is lost often, not always, without it
            c = h2raw.Conn(srv.port)
            self.addCleanup(c.close)
            block = h2raw.request('/index.html')
            n = RST_BURST + 50
            pairs = b''.join(h2raw.headers(sid, block) + h2raw.rst_stream(sid)
                             for sid in range(1, 2 * n, 2))
            # never read by the server: it stops at the connection error
            tail = frame(PING, 0, 0, b'trailing') * 2048
            c.send(pairs + tail)
            g = c.goaway()
            self.assertIsNotNone(g, 'no GOAWAY:\n' + srv.stderr_text()[-2000:])
            self.assertEqual(g[1], h2raw.INTERNAL_ERROR, g)
            self.assertTrue(c.closed())
        self.assertTrue(srv.wait_for_log(r'h2: rapid reset: RST_STREAM over %d' % RST_BURST,
                                         timeout=30), srv.stderr_text()[-2000:])


if __name__ == '__main__':
    harness.main()
