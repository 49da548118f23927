"""t_h2_keepalive.py: limits.keepalive_timeout on an HTTP/2 connection
counts from its last request (as nginx's keepalive_timeout does), not from
its first idle moment: a client asking one request at a time, each
answered within one wake-up of the server, keeps its connection as long as
it goes on asking; once it stops, the connection is closed. h2c prior
knowledge, raw frames (tests/lib/h2raw.py). The pauses between requests
are a fraction of the timeout, so a slow machine only makes them longer
within a generous margin."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import h2raw  # noqa: E402

INDEX = b'hello over h2\n'
TIMEOUT = 3.0  # limits.keepalive_timeout, seconds


@unittest.skipIf(h2raw.hpack is None, 'python3-hpack is not installed')
class H2KeepAlive(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server('-o', 'http2_cleartext=true',
                                  '-o', 'limits.keepalive_timeout=%ds' % TIMEOUT)
        self.srv.write_file('index.html', INDEX)
        self.srv.start()
        self.addCleanup(self.srv.__exit__, None, None, None)

    def test_requests_one_at_a_time_keep_the_connection(self):
        c = h2raw.Conn(self.srv.port)
        self.addCleanup(c.close)
        sid = 1
        start = time.monotonic()
        # three timeouts' worth of requests, one every tenth of a timeout:
        # before the fix the connection was closed TIMEOUT after the first
        while time.monotonic() - start < 3 * TIMEOUT:
            c.send(h2raw.headers(sid, h2raw.request('/index.html')))
            self.assertEqual(c.response(sid), (200, INDEX),
                             'stream %d, %.1f s in: %s' % (sid, time.monotonic() - start,
                                                           self.srv.stderr_text()[-1000:]))
            sid += 2
            time.sleep(TIMEOUT / 10)
        self.assertFalse(c.eof)

    def test_an_idle_connection_is_still_closed(self):
        c = h2raw.Conn(self.srv.port)
        self.addCleanup(c.close)
        c.send(h2raw.headers(1, h2raw.request('/index.html')))
        self.assertEqual(c.response(1), (200, INDEX))
        # closed after the timeout (GOAWAY or not), well within 10 of them
        self.assertTrue(c.closed(timeout=10 * TIMEOUT))


if __name__ == '__main__':
    harness.main()
