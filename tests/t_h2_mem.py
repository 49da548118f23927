"""t_h2_mem.py: what an idle HTTP/2 connection holds (issue 19, "KiB per
idle h2 connection"). After its streams are answered, a connection keeps
its nghttp2 session (25.6 KiB allocated in nghttp2 1.52, 16 of them its
frame buffer) and nothing of portico's beyond the connection struct: no request
block with an input buffer (h2_conn.c reads into one buffer per worker),
no spare output chunk. Measured as bench/tls-idle.py does, on h2c: the
growth of the worker's private memory over many idle connections."""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    sys.path.append('/usr/lib/python3/dist-packages')  # Debian's python3-h2
    try:
        import h2.config
        import h2.connection
        import h2.events
    except ImportError:
        h2 = None

BODY = b'x' * 1024
WARM, CONNS = 50, 300


def private_kib(pid):
    """Private_Dirty + Swap: the worker's own heap."""
    with open('/proc/%d/smaps_rollup' % pid) as f:
        t = f.read()
    return sum(int(m) for m in re.findall(r'^(?:Private_Dirty|Swap):\s+(\d+) kB', t, re.M))


def idle_h2(port):
    """An h2c connection that had SETTINGS both ways and one stream
    answered, then stays silent."""
    s = socket.create_connection(('127.0.0.1', port), timeout=30)
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.send_headers(1, [(':method', 'GET'), (':scheme', 'http'), (':authority', 'localhost'),
                       (':path', '/1k.bin')], end_stream=True)
    s.sendall(c.data_to_send())
    body, ended, acked = b'', False, False
    while not (ended and acked):
        b = s.recv(65536)
        if not b:
            raise ConnectionError('the server closed an h2 connection')
        for ev in c.receive_data(b):
            if isinstance(ev, h2.events.DataReceived):
                body += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, h2.events.SettingsAcknowledged):
                acked = True
        out = c.data_to_send()
        if out:
            s.sendall(out)
    assert body == BODY, 'wrong body'
    return s


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class IdleMemory(unittest.TestCase):
    def test_idle_h2_connection_holds_no_request_block(self):
        with harness.Server('-o', 'http2_cleartext=true',
                            '-o', 'limits.max_connections=1000') as srv:
            srv.write_file('1k.bin', BODY)
            worker = srv.worker_pids()[0]
            held = [idle_h2(srv.port) for _ in range(WARM)]
            time.sleep(0.3)
            m0 = private_kib(worker)
            held += [idle_h2(srv.port) for _ in range(CONNS)]
            time.sleep(0.3)
            m1 = private_kib(worker)
            per = (m1 - m0) / CONNS
            for s in held:
                s.close()
            # measured: 15.6 KiB (nghttp2's session: 25.6 KiB allocated,
            # its 16 KiB frame buffer mostly untouched), 29.0 when the
            # connection kept its request block and a spare 4 KiB chunk
            self.assertLess(per, 22.0, 'KiB per idle h2 connection: %.1f' % per)


if __name__ == '__main__':
    harness.main()
