"""t_h2_goaway.py: a graceful stop or reload on an HTTP/2 connection loses
no request the client sent (issue 19: "Graceful stop and reload send GOAWAY
with the last stream id and let streams in flight finish"). RFC 9113 §6.8:
the server first sends GOAWAY with 2^31-1 (no new streams) and a PING;
a request the client sent before it saw that notice is still answered;
the GOAWAY naming the real last stream follows the PING's ACK, then the
connection closes. Under h2load, every stream the server received gets its
200. The client here writes frames by hand, so that it can send a request
after the notice has left the server, as a busy client's request on the
wire does."""

import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import t_h2  # noqa: E402

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 1, 4, 1


def frame(ftype, flags, sid, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        '>I', sid) + payload


def get_headers(path):
    """HPACK without the dynamic table: :method GET, :scheme https (static
    indexes), :authority and :path as literals without indexing."""
    def lit(index, value):
        v = value.encode()
        return bytes([index, len(v)]) + v
    return b'\x82\x87' + lit(1, 'localhost') + lit(4, path)


class Raw:
    def __init__(self, port):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(['h2'])
        s = socket.create_connection(('127.0.0.1', port), timeout=30)
        self.s = ctx.wrap_socket(s, server_hostname='localhost')
        assert self.s.selected_alpn_protocol() == 'h2'
        self.buf = b''
        self.frames = []  # every frame received
        self.s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.s.sendall(data)

    def next_frame(self):
        """(type, flags, stream, payload), None at the close. SETTINGS are
        acknowledged and DATA given its window back on the way."""
        while True:
            if len(self.buf) >= 9:
                n = struct.unpack('>I', b'\0' + self.buf[:3])[0]
                if len(self.buf) >= 9 + n:
                    t, fl = self.buf[3], self.buf[4]
                    sid = struct.unpack('>I', self.buf[5:9])[0] & 0x7fffffff
                    p = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    if t == SETTINGS and not fl & ACK:
                        self.send(frame(SETTINGS, ACK, 0))
                    if t == DATA and p and not fl & END_STREAM:
                        inc = struct.pack('>I', len(p))
                        try:
                            self.send(frame(WINDOW, 0, 0, inc) + frame(WINDOW, 0, sid, inc))
                        except OSError:
                            pass  # the server may be closing: what it sent is still read
                    self.frames.append((t, fl, sid, p))
                    return t, fl, sid, p
            try:
                d = self.s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                d = b''
            if not d:
                return None
            self.buf += d

    def until(self, pred):
        seen = []
        while True:
            f = self.next_frame()
            if f is None:
                return seen, None
            seen.append(f)
            if pred(f):
                return seen, f

    def close(self):
        self.s.close()


def status_of(frames, sid):
    """The :status of stream sid's HEADERS (static-table indexes for 200/404)."""
    for t, fl, s, p in frames:
        if t == HEADERS and s == sid:
            return {0x88: 200, 0x8d: 404}.get(p[0], 'other %r' % p[:8])
    return None


class GracefulGoaway(unittest.TestCase):
    def test_request_sent_after_the_notice_is_answered(self):
        with t_h2.h2_server() as srv:
            c = Raw(srv.port)
            self.addCleanup(c.close)
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, get_headers('/index.html')))
            seen, _ = c.until(lambda f: f[0] == DATA and f[2] == 1 and f[1] & END_STREAM)
            self.assertEqual(status_of(seen, 1), 200)
            srv.signal(signal.SIGHUP)
            # the notice and a PING, in either order
            c.until(lambda f: f[0] == GOAWAY)
            goaways = [f for f in c.frames if f[0] == GOAWAY]
            self.assertEqual(len(goaways), 1, 'a GOAWAY before the close')
            last, code = struct.unpack('>II', goaways[0][3][:8])
            self.assertEqual((last & 0x7fffffff, code), (0x7fffffff, 0), 'the notice first')
            if not any(f[0] == PING and not f[1] & ACK for f in c.frames):
                c.until(lambda f: f[0] == PING and not f[1] & ACK)
            ping = [f for f in c.frames if f[0] == PING and not f[1] & ACK][0]
            # a request already on its way when the notice left the server,
            # then the PING's ACK
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, get_headers('/index.html')) +
                   frame(PING, ACK, 0, ping[3]))
            _, g = c.until(lambda f: f[0] == GOAWAY)
            self.assertIsNotNone(g, 'the final GOAWAY')
            last, code = struct.unpack('>II', g[3][:8])
            self.assertEqual((last & 0x7fffffff, code), (3, 0), 'it names stream 3')
            c.until(lambda f: False)  # to the close
            self.assertEqual(status_of(c.frames, 3), 200, c.frames)
            body = b''.join(p for t, fl, s, p in c.frames if t == DATA and s == 3)
            self.assertEqual(body, b'hello over h2\n')
            self.assertTrue(srv.wait_for(
                lambda: srv.access_log_text().count('"GET /index.html HTTP/2.0" 200') == 2))

    def test_no_new_stream_after_the_final_goaway(self):
        with t_h2.h2_server() as srv:
            c = Raw(srv.port)
            self.addCleanup(c.close)
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, get_headers('/big.bin')))
            c.until(lambda f: f[0] == HEADERS and f[2] == 1)
            srv.signal(signal.SIGHUP)
            if not any(f[0] == PING and not f[1] & ACK for f in c.frames):
                c.until(lambda f: f[0] == PING and not f[1] & ACK)
            ping = [f for f in c.frames if f[0] == PING and not f[1] & ACK][0]
            c.send(frame(PING, ACK, 0, ping[3]))
            _, g = c.until(lambda f: f[0] == GOAWAY and
                           struct.unpack('>I', f[3][:4])[0] != 0x7fffffff)
            self.assertIsNotNone(g, 'the final GOAWAY')
            self.assertEqual(struct.unpack('>I', g[3][:4])[0], 1)
            # a stream opened after it is ignored (RFC 9113 §6.8), the one
            # in flight still finishes: 1 MiB through the flow-control window
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, get_headers('/index.html')))
            c.until(lambda f: False)  # to the close
            self.assertFalse([f for f in c.frames if f[2] == 5], 'stream 5 was answered')
            got = b''.join(p for t, fl, s, p in c.frames if t == DATA and s == 1)
            self.assertTrue(got == t_h2.BIG, 'the 1 MiB response whole')

    def test_an_idle_client_that_ignores_the_notice_has_the_stop_grace(self):
        # an idle connection whose client never acknowledges a graceful
        # stop's PING is closed after the stop's short idle grace, not at
        # its keepalive_timeout or shutdown_timeout (both far beyond this
        # test's socket timeout, 30 s)
        with t_h2.h2_server('-o', 'limits.keepalive_timeout=600s',
                            '-o', 'limits.shutdown_timeout=600s') as srv:
            c = Raw(srv.port)
            self.addCleanup(c.close)
            c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, get_headers('/index.html')))
            seen, _ = c.until(lambda f: f[0] == DATA and f[2] == 1 and f[1] & END_STREAM)
            self.assertEqual(status_of(seen, 1), 200)
            srv.signal(signal.SIGHUP)  # a reload: the old worker stops gracefully
            c.until(lambda f: f[0] == PING and not f[1] & ACK)  # never answered
            _, end = c.until(lambda f: False)  # the close, within the socket's timeout
            self.assertIsNone(end)
            self.assertFalse(srv.wait_for_log(r'shutdown_timeout reached', timeout=1))

    @unittest.skipUnless(shutil.which('h2load'), 'h2load is not installed')
    def test_h2load_streams_received_are_all_answered(self):
        with t_h2.h2_server('-o', 'limits.keepalive_requests=1000000', workers=2) as srv:
            p = subprocess.Popen(['h2load', '-c4', '-m10', '-n', '400000',
                                  'https://127.0.0.1:%d/index.html' % srv.port],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertTrue(srv.wait_for(
                lambda: srv.access_log_text().count('HTTP/2.0" 200') > 2000, timeout=60))
            srv.signal(signal.SIGHUP)
            out = p.communicate(timeout=300)[0].decode()
            m = re.search(r'requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, '
                          r'(\d+) failed, (\d+) errored, (\d+) timeout', out)
            self.assertIsNotNone(m, out)
            total, started, done, ok, failed, errored, timeout = map(int, m.groups())
            self.assertEqual(started, done, out)
            self.assertEqual(timeout, 0, out)
            # h2load 1.52 never opens a new connection after a GOAWAY, and
            # fails the requests it had queued but not sent when it came
            # (at most -m per connection): every one the server received
            # got its 200, and none was cut
            self.assertGreaterEqual(ok, done - 4 * 10, out)
            time.sleep(0.5)
            log = srv.access_log_text()
            self.assertEqual(len(re.findall(r'HTTP/2\.0" (?!200)', log)), 0, log[-2000:])
            self.assertEqual(log.count('HTTP/2.0" 200'), ok, out)


if __name__ == '__main__':
    harness.main()
