"""t_h2_prio.py: HTTP/2 response priorities, RFC 9218 (issue 19). The
server sends SETTINGS_NO_RFC7540_PRIORITIES = 1 and schedules DATA by the
`priority` request header (urgency u=0..7, default 3; incremental i) and by
PRIORITY_UPDATE frames. The client (python3-h2 over h2c prior knowledge)
records the order in which DATA frames arrive; every assertion is on that
order, never on time."""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

h2 = harness.debian_import('h2.config', 'h2.connection', 'h2.events', 'h2.settings')

KIB = 1024
SETTINGS_NO_RFC7540_PRIORITIES = 0x9
PRIORITY_UPDATE = 0x10  # RFC 9218 7.1


def blob(n, seed):
    return bytes((i * seed + (i >> 9)) & 0xff for i in range(n))


FILES = {'a.bin': blob(1024 * KIB, 7), 'b.bin': blob(256 * KIB, 11),
         'c.bin': blob(256 * KIB, 13)}


class Client:
    """python3-h2 on one h2c connection, logging (stream, bytes) per DATA
    frame in arrival order; it gives flow-control credit back only when
    told (ack=True), so a test can hold the server at a full window."""

    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=30)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding='utf-8'))
        self.conn.initiate_connection()
        # stream windows that never fill: only the connection's window
        # (65,535 bytes, shared) holds the server back, so which stream it
        # sends next is its scheduler's choice, not a stream's lack of credit
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        self.log = []  # (sid, n) per DATA frame, in order
        self.data = {}
        self.ended = set()
        self.headers = {}
        self.settings = {}
        self.unacked = []
        self.ack = True
        self.flush()

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def request(self, path, priority=None):
        """Queue a request (sent at the next flush); its stream id."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(':method', 'GET'), (':scheme', 'http'), (':authority', 'localhost'),
                (':path', path)]
        if priority is not None:
            hdrs.append(('priority', priority))
        self.conn.send_headers(sid, hdrs, end_stream=True)
        self.data[sid] = b''
        return sid

    def priority_update(self, sid, value):
        """A PRIORITY_UPDATE frame (RFC 9218 7.1) on stream 0, written raw:
        python3-h2 does not know the type."""
        payload = struct.pack('>I', sid) + value.encode()
        self.sock.sendall(struct.pack('>I', len(payload))[1:] + bytes([PRIORITY_UPDATE, 0])
                          + struct.pack('>I', 0) + payload)

    def give_credit(self):
        for n, sid in self.unacked:
            self.conn.acknowledge_received_data(n, sid)
        self.unacked = []

    def pump(self, until, timeout=60):
        deadline = time.time() + timeout
        while not until():
            if time.time() > deadline:
                raise TimeoutError('no answer in time: %r' % self.summary())
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError('the server closed: %r' % self.summary())
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    self.headers[ev.stream_id] = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    self.log.append((ev.stream_id, len(ev.data)))
                    self.data[ev.stream_id] += ev.data
                    self.unacked.append((ev.flow_controlled_length, ev.stream_id))
                    if self.ack:
                        self.give_credit()
                elif isinstance(ev, h2.events.StreamEnded):
                    self.ended.add(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    raise AssertionError('stream %d reset' % ev.stream_id)
                elif isinstance(ev, h2.events.RemoteSettingsChanged):
                    for k, v in ev.changed_settings.items():
                        self.settings[int(k)] = v.new_value
            self.flush()

    def summary(self):
        """The DATA log with runs of one stream merged: [(sid, frames)]."""
        runs = []
        for sid, _ in self.log:
            if runs and runs[-1][0] == sid:
                runs[-1][1] += 1
            else:
                runs.append([sid, 1])
        return runs

    def close(self):
        self.sock.close()


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Priorities(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server('-o', 'http2_cleartext=true')
        for name, body in FILES.items():
            cls.srv.write_file(name, body)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def setUp(self):
        self.c = Client(self.srv.port)

    def tearDown(self):
        self.c.close()

    def check_bodies(self, sids):
        for sid, name in sids.items():
            self.assertEqual(self.c.headers[sid][':status'], '200')
            self.assertTrue(self.c.data[sid] == FILES[name], '%s differs' % name)

    def last(self, sid):
        """The index of the stream's last DATA frame in the log."""
        return max(i for i, (s, _) in enumerate(self.c.log) if s == sid)

    def assert_one_run(self, sid):
        """Every DATA frame of sid came in one run, nothing between."""
        runs = [r for r in self.c.summary() if r[0] == sid]
        self.assertEqual(len(runs), 1, 'stream %d interleaved: %r' % (sid, self.c.summary()))

    def test_settings_say_no_rfc7540_priorities(self):
        # RFC 9218 2.1: the server tells it uses the new scheme
        sid = self.c.request('/b.bin')
        self.c.flush()
        self.c.pump(lambda: sid in self.c.ended)
        self.assertEqual(self.c.settings.get(SETTINGS_NO_RFC7540_PRIORITIES), 1)

    def test_urgent_stream_goes_first(self):
        # a large u=7 stream asked first, a u=0 one after it in the same
        # write: all of the u=0 stream's DATA before the rest of the other
        low = self.c.request('/a.bin', priority='u=7')
        high = self.c.request('/b.bin', priority='u=0')
        self.c.flush()
        self.c.pump(lambda: {low, high} <= self.c.ended)
        self.check_bodies({low: 'a.bin', high: 'b.bin'})
        self.assert_one_run(high)
        self.assertLess(self.last(high), self.last(low), self.c.summary())

    def test_same_urgency_not_incremental_is_one_after_the_other(self):
        # RFC 9218 4.2: non-incremental responses of one urgency are served
        # one at a time, in the order asked (the default: u=3, no i)
        first = self.c.request('/b.bin')
        second = self.c.request('/c.bin')
        self.c.flush()
        self.c.pump(lambda: {first, second} <= self.c.ended)
        self.check_bodies({first: 'b.bin', second: 'c.bin'})
        self.assertEqual([sid for sid, _ in self.c.summary()], [first, second],
                         self.c.summary())

    def test_incremental_streams_share(self):
        # RFC 9218 4.3: incremental responses of one urgency take turns
        first = self.c.request('/b.bin', priority='u=2, i')
        second = self.c.request('/c.bin', priority='u=2, i')
        self.c.flush()
        self.c.pump(lambda: {first, second} <= self.c.ended)
        self.check_bodies({first: 'b.bin', second: 'c.bin'})
        runs = self.c.summary()
        self.assertGreater(len(runs), 2, runs)
        self.assertEqual({sid for sid, _ in runs}, {first, second})

    def test_bad_priority_value_is_the_default(self):
        # RFC 9218 4: a value that does not parse is ignored: u=3, and a
        # u=2 stream asked after it still goes first
        bad = self.c.request('/a.bin', priority='u=9, ??')
        good = self.c.request('/b.bin', priority='u=2')
        self.c.flush()
        self.c.pump(lambda: {bad, good} <= self.c.ended)
        self.check_bodies({bad: 'a.bin', good: 'b.bin'})
        self.assert_one_run(good)
        self.assertLess(self.last(good), self.last(bad), self.c.summary())

    def test_priority_update_reorders_a_stream_in_flight(self):
        # both at the default urgency: a.bin (asked first) has the
        # connection until the window (65,535 bytes) is spent; then a
        # PRIORITY_UPDATE raises c.bin to u=0 before any credit comes back,
        # and all of c.bin comes before the rest of a.bin
        self.c.ack = False
        a = self.c.request('/a.bin')
        c = self.c.request('/c.bin')
        self.c.flush()
        self.c.pump(lambda: sum(n for _, n in self.c.log) >= 65535)
        self.assertEqual({sid for sid, _ in self.c.log}, {a}, self.c.summary())
        seen = len(self.c.log)
        self.c.priority_update(c, 'u=0')
        self.c.ack = True
        self.c.give_credit()
        self.c.flush()
        self.c.pump(lambda: {a, c} <= self.c.ended)
        self.check_bodies({a: 'a.bin', c: 'c.bin'})
        after = [sid for sid, _ in self.c.log[seen:]]
        self.assertEqual(after[0], c, self.c.summary())
        self.assert_one_run(c)

    def test_urgent_static_among_many(self):
        # eight u=6 files, then one u=1: the u=1 one is not behind them
        low = [self.c.request('/a.bin', priority='u=6') for _ in range(8)]
        high = self.c.request('/c.bin', priority='u=1')
        self.c.flush()
        self.c.pump(lambda: set(low + [high]) <= self.c.ended, timeout=120)
        self.assert_one_run(high)
        for sid in low:
            self.assertLess(self.last(high), self.last(sid), self.c.summary())
            self.assertTrue(self.c.data[sid] == FILES['a.bin'])


if __name__ == '__main__':
    harness.main()
