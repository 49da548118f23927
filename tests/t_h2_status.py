"""t_h2_status.py: HTTP/2 in the counters and the client limits (issue 19:
"metrics and limits count streams, not just connections; limit_req applies
per request"). The status page (text, JSON, Prometheus) counts HTTP/2
connections and their streams, streams reset before their end, and every
stream as a request; limit_req takes a token per stream and limit_conn
holds one slot per stream in progress, as nginx counts each HTTP/2 stream as
a connection for limit_conn. Client: python3-h2 (t_h2's)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import t_h2  # noqa: E402

CONF = '''
locations = (
  { prefix = "/r/"; limit_req = { rate = "1r/m"; burst = 3; }; },
  { prefix = "/big/"; limit_conn = 1; },
  { prefix = "/server-status"; handler = "status"; }
);
'''


@unittest.skipIf(t_h2.h2 is None, 'python3-h2 is not installed')
class H2Counters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = t_h2.h2_server(conf=CONF)
        cls.srv.write_file('r/a.txt', 'r\n')
        cls.srv.write_file('big/big.bin', t_h2.BIG)
        cls.srv.write_file('big/small.txt', 'small\n')
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def status(self, fmt):
        r = t_h2.curl(self.srv, '/server-status?format=' + fmt, '--http1.1')
        body, _, code = t_h2.split(r)
        self.assertEqual(code, 200, body)
        return body.decode()

    def test_streams_connections_and_resets_are_counted(self):
        before = json.loads(self.status('json'))['http2']
        c = t_h2.Client(self.srv.port)
        self.addCleanup(c.close)
        sids = [c.request('/index.html') for _ in range(5)]
        c.pump(lambda: all(c.done(s) for s in sids))
        # a big response cut by the client: RST_STREAM (CANCEL) mid-way
        big = c.request('/big/big.bin')
        c.pump(lambda: c.streams[big]['headers'] is not None)
        c.conn.reset_stream(big, 8)
        c.flush()
        self.assertEqual(c.get('/index.html')['headers'][':status'], '200')
        now = json.loads(self.status('json'))
        h = now['http2']
        self.assertEqual(h['connections'], before['connections'] + 1, h)  # c is still open
        self.assertEqual(h['opened'], before['opened'] + 1, h)
        self.assertEqual(h['streams'], before['streams'] + 7, h)
        self.assertEqual(h['resets'], before['resets'] + 1, h)
        self.assertEqual(h['streams_open'], 0, h)
        # every stream is a request too (the status requests are HTTP/1.1)
        text = self.status('text')
        self.assertRegex(text, r'http2: connections \d+, opened \d+, streams open 0, '
                               r'streams \d+, resets \d+\n')
        c.close()
        # the gauge goes down when the connection ends
        self.assertTrue(self.srv.wait_for(lambda: json.loads(self.status('json'))['http2']['connections'] ==
                           before["connections"], timeout=20))
        prom = self.status('prometheus')
        for name in ('portico_http2_connections ', 'portico_http2_connections_total ',
                     'portico_http2_streams_open 0', 'portico_http2_streams_total ',
                     'portico_http2_resets_total '):
            self.assertIn('\n' + name, prom)

    def test_limit_req_takes_a_token_per_stream(self):
        # 8 streams on one connection, burst 3 at 1r/m: the first 4 pass
        c = t_h2.Client(self.srv.port)
        self.addCleanup(c.close)
        sids = [c.request('/r/a.txt') for _ in range(8)]
        c.pump(lambda: all(c.done(s) for s in sids))
        statuses = [c.streams[s]['headers'][':status'] for s in sorted(sids)]
        self.assertEqual(statuses, ['200'] * 4 + ['429'] * 4)
        self.assertEqual(c.streams[sids[0]]['data'], b'r\n')
        self.assertEqual(c.streams[sids[-1]]['headers']['retry-after'], '60')
        self.assertTrue(self.srv.wait_for(
            lambda: '"GET /r/a.txt HTTP/2.0" 429' in self.srv.access_log_text(), timeout=10))
        # the connection goes on
        self.assertEqual(c.get('/index.html')['data'], b'hello over h2\n')

    def test_limit_conn_holds_a_slot_per_stream(self):
        c = t_h2.Client(self.srv.port)
        self.addCleanup(c.close)
        # the 1 MiB response stalls on the flow-control window (nothing is
        # read yet), so its stream holds the location's one slot...
        big = c.request('/big/big.bin')
        small = c.request('/big/small.txt')
        c.pump(lambda: c.done(small))
        self.assertEqual(c.streams[small]['headers'][':status'], '429')
        c.pump(lambda: c.done(big))
        self.assertEqual(c.streams[big]['data'], t_h2.BIG)
        # ...and gives it back when it ends
        self.assertEqual(c.get('/big/small.txt')['data'], b'small\n')


if __name__ == '__main__':
    harness.main()
