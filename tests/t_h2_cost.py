"""t_h2_cost.py: what an HTTP/2 connection costs (issue 19). Memory: what
an idle connection holds ("KiB per idle h2 connection"). After its streams are answered, a connection keeps
its nghttp2 session (25.6 KiB allocated in nghttp2 1.52, 16 of them its
frame buffer, 4 its stream table) and nothing of portico's beyond the
connection struct: no request block with an input buffer (h2_conn.c reads
into one buffer per worker), no spare output chunk; and once idle for
200 ms the frame buffer's and the empty stream table's pages go back to
the kernel (h2.c's pt_h2_idle). Measured as bench/tls-idle.py does, on h2c
and over TLS: the growth of the worker's private memory over many idle
connections.
An idle connection also empties our HPACK encoder's dynamic table (the
entries indexed from the responses: RFC 7541 §4.2 lets an encoder shrink
it when it likes, said as a size update at the start of its next header
block), so the next response after an idle period starts with a table
size update to 0 and indexes its fields again.
System calls: a wake-up reads until a short read, not once more to EAGAIN
(epoll is level-triggered), as the HTTP/1.1 side does."""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

h2 = harness.debian_import('h2.config', 'h2.connection', 'h2.events')

BODY = b'x' * 1024
WARM, CONNS = 50, 300


def private_kib(pid):
    """Private_Dirty + Swap: the worker's own heap."""
    with open('/proc/%d/smaps_rollup' % pid) as f:
        t = f.read()
    return sum(int(m) for m in re.findall(r'^(?:Private_Dirty|Swap):\s+(\d+) kB', t, re.M))


def sanitized(pid):
    """ASan's redzones and quarantine make any heap figure meaningless."""
    with open('/proc/%d/maps' % pid) as f:
        return any('libasan' in line or 'libubsan' in line for line in f)


def idle_h2(port, requests=1, tls=None):
    """An h2c connection (h2 by ALPN with a TLS context) that had SETTINGS
    both ways and `requests` streams answered one after the other, then
    stays silent."""
    s = socket.create_connection(('127.0.0.1', port), timeout=30)
    if tls:
        s = tls.wrap_socket(s, server_hostname='localhost')
        assert s.selected_alpn_protocol() == 'h2', 'no h2 by ALPN'
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    for i in range(requests):
        get(s, c, 1 + 2 * i)
    return s


def get(s, c, sid):
    """GET /1k.bin on stream sid, read to its end (and, on the first
    stream, to the server's SETTINGS ack); the bytes as received."""
    c.send_headers(sid, [(':method', 'GET'), (':scheme', 'http'), (':authority', 'localhost'),
                         (':path', '/1k.bin')], end_stream=True)
    s.sendall(c.data_to_send())
    raw, body, ended, acked = b'', b'', False, sid > 1
    while not (ended and acked):
        b = s.recv(65536)
        if not b:
            raise ConnectionError('the server closed an h2 connection')
        raw += b
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
    return raw


def get_raw(s, c, sid):
    """GET /1k.bin on stream sid: the header block of its response as
    sent, and the names in the client's dynamic table after it."""
    raw = get(s, c, sid)
    block, i = None, 0
    while i + 9 <= len(raw) and block is None:  # RFC 9113 §4.1 frames
        n, kind, flags = int.from_bytes(raw[i:i + 3], 'big'), raw[i + 3], raw[i + 4]
        fsid = int.from_bytes(raw[i + 5:i + 9], 'big') & 0x7fffffff
        if kind == 1 and fsid == sid:  # HEADERS: skip the pad length and priority
            p = raw[i + 9:i + 9 + n]
            p = p[1:] if flags & 0x8 else p
            block = p[5:] if flags & 0x20 else p
        i += 9 + n
    assert block is not None, 'no HEADERS for stream %d' % sid
    return block, [e[0] for e in c.decoder.header_table.dynamic_entries]


# KiB per idle h2 connection over TLS: measured 20.1-20.2, 21.24 without
# the HPACK encoder's idle emptying; waited for (the pages go back after
# 200 ms idle) up to 20 s, then asserted
TLS_IDLE_BOUND = 20.9


def kib_per_idle(srv, bound, tls=None):
    """KiB of private memory each of CONNS idle connections adds to the
    worker, waited for until under bound (the pages go back after 200 ms
    idle: a loaded machine may take longer) or 20 s."""
    worker = srv.worker_pids()[0]
    held = [idle_h2(srv.port, tls=tls) for _ in range(WARM)]
    time.sleep(0.3)
    m0 = private_kib(worker)
    held += [idle_h2(srv.port, tls=tls) for _ in range(CONNS)]
    deadline = time.monotonic() + 20
    while True:
        time.sleep(0.5)
        per = (private_kib(worker) - m0) / CONNS
        if per < bound or time.monotonic() > deadline or sanitized(worker):
            break
    for s in held:
        s.close()
    return per, sanitized(worker)


@unittest.skipUnless(h2 is not None, 'python3-h2 is not installed')
class Cost(unittest.TestCase):
    def test_idle_h2_connection_holds_no_request_block(self):
        with harness.Server('-o', 'http2_cleartext=true',
                            '-o', 'limits.max_connections=1000') as srv:
            srv.write_file('1k.bin', BODY)
            per, asan = kib_per_idle(srv, 12.0)
            sys.stdout.write('# %d idle h2c connections: %.2f KiB each\n' % (CONNS, per))
            if asan:
                return
            # measured: 8.0 KiB; 16.6 when the frame buffer and the stream
            # table kept their pages (the frame buffer's first one dirty),
            # 29.0 when the connection kept its request block and a spare
            # 4 KiB chunk
            self.assertLess(per, 12.0, 'KiB per idle h2 connection: %.1f' % per)

    def test_idle_h2_over_tls_gives_nghttp2_pages_back(self):
        certs = tempfile.mkdtemp(prefix='portico-h2cost-')
        crt, key = os.path.join(certs, 'c.crt'), os.path.join(certs, 'c.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '365', '-subj', '/CN=localhost'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_alpn_protocols(['h2'])
        try:
            with harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', crt, '--key', key,
                                '-o', 'http2=true', '-o', 'limits.max_connections=1000',
                                listen=[]) as srv:
                srv.write_file('1k.bin', BODY)
                per, asan = kib_per_idle(srv, TLS_IDLE_BOUND, tls=ctx)
        finally:
            shutil.rmtree(certs, ignore_errors=True)
        sys.stdout.write('# %d idle h2 connections over TLS 1.3: %.2f KiB each\n' % (CONNS, per))
        if asan:
            return
        # measured: 20.1-20.2 KiB (TLS alone 14.0); 21.24 when the HPACK
        # encoder kept the entries it indexed from the responses; 41.4
        # when nghttp2's frame buffer and stream table kept their pages:
        # over TLS the heap they come from was dirtied by the handshake
        self.assertLess(per, TLS_IDLE_BOUND, 'KiB per idle h2 connection over TLS: %.2f' % per)

    def test_idle_h2_connection_empties_hpack_table(self):
        """After an idle period the next response's header block starts
        with a dynamic table size update to 0 (RFC 7541 §6.3: 001xxxxx),
        then back to 4096, and the client's table holds that response's
        fields alone, decoded right."""
        with harness.Server('-o', 'http2_cleartext=true') as srv:
            srv.write_file('1k.bin', BODY)
            s = socket.create_connection(('127.0.0.1', srv.port), timeout=30)
            c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
            c.initiate_connection()
            block, names = get_raw(s, c, 1)
            self.assertTrue(names, 'the first response indexed nothing')
            # the session empties its table once idle for 200 ms: a loaded
            # machine may take longer, so ask again until it shows (20 s)
            deadline, sid = time.monotonic() + 20, 3
            while True:
                time.sleep(0.5)
                block, again = get_raw(s, c, sid)
                if block[:1] == b'\x20' or time.monotonic() > deadline:
                    break
                sid += 2
            s.close()
            self.assertEqual(block[:4], b'\x20\x3f\xe1\x1f',
                             'no size update 0, then 4096, after an idle period: %r' % block[:8])
            self.assertEqual(again, names, 'the table after an idle period')

    @unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
    @unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
    def test_no_read_to_eagain_per_wakeup(self):
        with harness.Server('-o', 'http2_cleartext=true') as srv:
            srv.write_file('1k.bin', BODY)
            conns = []
            trace = harness.strace_during(
                self, srv.worker_pids()[0],
                lambda: conns.append(idle_h2(srv.port, requests=20)),  # 20 wake-ups at least
                lambda: harness.knock(srv.port), 'accept', 'accept,accept4,read,recvfrom')
            conns[0].close()
            fds = re.findall(r'accept4?\(.*\) = (\d+)', trace)
            self.assertEqual(len(fds), 1, trace)
            reads = re.findall(r'(?:read|recvfrom)\(%s,.*' % fds[0], trace)
            eagain = [r for r in reads if 'EAGAIN' in r]
            self.assertGreaterEqual(len(reads), 20, trace)
            # the HTTP/1.1 side's first read may find nothing yet; after
            # that, none (each of the 20 wake-ups did one before)
            self.assertLessEqual(len(eagain), 2, trace)


if __name__ == '__main__':
    harness.main()
