"""t_tls_tickets.py: session ticket keys (issue 16): made by the master,
rotated every tls.ticket_key_rotate, the previous key still accepted (and
its tickets renewed with the current one), older keys gone. Rotation is
watched through the key name at the head of each ticket (openssl sess_id
prints it), never through the clock: a step that a second rotation
overtook is tried again."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

D = tempfile.mkdtemp(prefix='portico-tkt-')
CRT, KEY = os.path.join(D, 'c.pem'), os.path.join(D, 'k.pem')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                '-nodes', '-keyout', KEY, '-out', CRT, '-days', '365', '-subj', '/CN=localhost',
                '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
REQ = b'GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
_n = [0]


def tickets(out):
    """The key names (hex) of the NewSessionTicket messages in s_client
    -msg output: the ticket's first 16 bytes (tls.c)."""
    names = []
    lines = out.decode('latin-1').splitlines()
    for i, line in enumerate(lines):
        if not (line.startswith('<<< ') and line.endswith('NewSessionTicket')):
            continue
        data = bytearray()
        for more in lines[i + 1:]:
            if not more.startswith('    '):
                break
            data += bytes.fromhex(more.strip())
        if 'TLS 1.2' in line:
            at = 10  # type, length, lifetime hint, ticket length (RFC 5077 §3.3)
        else:
            at = 4 + 4 + 4 + 1 + data[12] + 2  # RFC 8446 §4.6.1: ..., nonce, ticket length
        names.append(data[at:at + 16].hex())
    return names


def handshake(port, proto, sess_in=None, names=None):
    """One request over a new connection: (resumed, file of the session
    the server left us or None, key name of the last ticket it sent or
    None when it sent none). names, a list, gets every ticket's key name."""
    _n[0] += 1
    out = os.path.join(D, 'sess%d.pem' % _n[0])
    args = ['openssl', 's_client', '-connect', '127.0.0.1:%d' % port, '-servername', 'localhost',
            '-CAfile', CRT, '-' + proto, '-ign_eof', '-msg', '-sess_out', out]
    if sess_in:
        args += ['-sess_in', sess_in]
    r = subprocess.run(args, input=REQ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert b'HTTP/1.1 200 OK' in r.stdout, r.stdout
    resumed = b'\nReused, ' in r.stdout
    all_names = tickets(r.stdout)
    if names is not None:
        names += all_names
    return resumed, out if os.path.exists(out) else None, all_names[-1] if all_names else None


def tls_server(rotate, workers=1, *more):
    srv = harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', CRT, '--key', KEY,
                         '-o', 'tls.ticket_key_rotate=' + rotate, *more, listen=[],
                         workers=workers)
    srv.write_file('index.html', 'tickets\n')
    return srv


class Tickets(unittest.TestCase):
    def next_key(self, srv, proto, name):
        """Wait for a fresh ticket under another key than name: its name."""
        for _ in range(600):
            _, _, now = handshake(srv.port, proto)
            if now and now != name:
                return now
        self.fail('the ticket key never changed')

    def rotation(self, proto):
        with tls_server('3s') as srv:
            for _ in range(10):
                _, s1, k1 = handshake(srv.port, proto)
                self.assertIsNotNone(k1)
                k2 = self.next_key(srv, proto, k1)
                resumed, _, renewed = handshake(srv.port, proto, s1)
                if handshake(srv.port, proto)[2] != k2:
                    continue  # a second rotation came in between: again
                # the previous key is accepted, and the client leaves with
                # a ticket under the current one
                self.assertTrue(resumed, 'a ticket of the previous key did not resume')
                self.assertEqual(renewed, k2)
                break
            else:
                self.skipTest('rotations too fast for this machine')
            # two rotations later the key of s1 is gone
            k3 = self.next_key(srv, proto, k2)
            self.assertNotIn(k3, (k1, k2))
            resumed, _, _ = handshake(srv.port, proto, s1)
            self.assertFalse(resumed, 'a ticket of an aged-out key resumed')

    def test_previous_key_resumes_and_renews_aged_out_key_does_not_tls12(self):
        self.rotation('tls1_2')

    def test_previous_key_resumes_and_renews_aged_out_key_does_not_tls13(self):
        self.rotation('tls1_3')

    def test_key_stays_across_workers_and_a_reload(self):
        # the default hour: no rotation during the test; every worker of
        # both generations issues tickets under the same key and takes the
        # first session
        with tls_server('1h', workers=2) as srv:
            _, s1, k1 = handshake(srv.port, 'tls1_2')
            for _ in range(8):
                resumed, _, _ = handshake(srv.port, 'tls1_2', s1)
                self.assertTrue(resumed)
                self.assertEqual(handshake(srv.port, 'tls1_2')[2], k1)
            old = set(srv.worker_pids())
            srv.signal(signal.SIGHUP)
            self.assertTrue(srv.wait_for_log(r'configuration reloaded'))
            self.assertTrue(srv.wait_for(lambda: not old & set(srv.worker_pids())))
            self.assertTrue(handshake(srv.port, 'tls1_2', s1)[0])
            self.assertEqual(handshake(srv.port, 'tls1_2')[2], k1)

    def test_tls13_resumption_leaves_a_new_ticket(self):
        # RFC 8446 §C.4: clients use a TLS 1.3 ticket once, so a resumed
        # handshake must leave them another; otherwise every other
        # connection of a client that always resumes (wrk, browsers) is a
        # full handshake
        with tls_server('1h') as srv:
            resumed, s, _ = handshake(srv.port, 'tls1_3')
            self.assertFalse(resumed)
            for i in range(4):
                resumed, s, name = handshake(srv.port, 'tls1_3', s)
                self.assertTrue(resumed, 'resumption %d in a chain was a full handshake' % (i + 1))
                self.assertIsNotNone(name, 'resumption %d left no ticket' % (i + 1))

    def test_rotation_period_is_checked(self):
        for bad in ('0s', '8d', 'soon'):
            r = subprocess.run([harness.PORTICO, '-t', '--tls', '127.0.0.1:8443', '--cert', CRT,
                                '--key', KEY, '-o', 'tls.ticket_key_rotate=' + bad],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(b'tls.ticket_key_rotate', r.stderr)


class TicketCount(unittest.TestCase):
    """tls.tickets: TLS 1.3 NewSessionTicket messages after a full
    handshake (RFC 8446 §4.6.1), 1 by default where OpenSSL sends 2: each
    costs the server a session encoding, a ticket encryption and a record.
    A resumption leaves one in any case (OpenSSL's rule)."""

    def sent(self, srv, sess=None):
        names = []
        resumed, out, _ = handshake(srv.port, 'tls1_3', sess, names)
        self.assertEqual(resumed, sess is not None)
        return len(names), out

    def test_one_ticket_after_a_full_handshake_by_default(self):
        with tls_server('1h') as srv:
            n, sess = self.sent(srv)
            self.assertEqual(n, 1)
            # and that one ticket resumes, and the resumption leaves one
            self.assertEqual(self.sent(srv, sess)[0], 1)

    def test_tickets_setting_sets_the_count(self):
        for want in (0, 3):
            with tls_server('1h', 1, '-o', 'tls.tickets=%d' % want) as srv:
                self.assertEqual(self.sent(srv)[0], want)

    def test_tickets_setting_is_checked(self):
        for bad in ('9', '-1', '"two"'):
            r = subprocess.run([harness.PORTICO, '-t', '--tls', '127.0.0.1:8443', '--cert', CRT,
                                '--key', KEY, '-o', 'tls.tickets=' + bad],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn(b'tls.tickets', r.stderr)


CTX13 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX13.check_hostname = False
CTX13.verify_mode = ssl.CERT_NONE
CTX13.minimum_version = ssl.TLSVersion.TLSv1_3


def tls13_client(ctx=CTX13):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    return ctx.wrap_bio(inc, out, server_hostname='localhost'), inc, out


def read_to_end(sock, obj, inc):
    got = b''
    while True:
        try:
            more = obj.read(65536)
            if not more:
                return got  # close_notify
            got += more
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            return got
        data = sock.recv(65536)
        if not data:
            return got
        inc.write(data)


class Segments(unittest.TestCase):
    """What a TLS connection costs in system calls: the TLS 1.3 tickets
    go out with the response, not each in a write of its own, a close
    after the response is close(2) alone (no shutdown(2) first), and the
    first bytes are read once (no MSG_PEEK first)."""

    def test_tls13_tickets_wait_for_the_response(self):
        with tls_server('1h') as srv:
            obj, inc, out = tls13_client()
            sock = socket.create_connection(('127.0.0.1', srv.port), timeout=60)
            self.addCleanup(sock.close)
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if out.pending:
                        sock.sendall(out.read())
                    data = sock.recv(65536)
                    self.assertTrue(data, 'closed during the handshake')
                    inc.write(data)
            sock.sendall(out.read())  # the client's Finished
            # OpenSSL alone sends its two NewSessionTicket records now; they
            # wait for the response here (nothing comes without a request)
            sock.settimeout(2)
            with self.assertRaises(socket.timeout, msg='records came before any request'):
                sock.recv(65536)
            sock.settimeout(60)
            obj.write(REQ)
            sock.sendall(out.read())
            body = read_to_end(sock, obj, inc)
            self.assertTrue(body.startswith(b'HTTP/1.1 200 OK'), body[:200])
            self.assertTrue(body.endswith(b'tickets\n'), body[-200:])
            # the tickets came, with the response: the session resumes
            self.assertTrue(obj.session is not None and obj.session.has_ticket)
            obj2, inc2, out2 = tls13_client()
            obj2.session = obj.session
            s2 = socket.create_connection(('127.0.0.1', srv.port), timeout=60)
            self.addCleanup(s2.close)
            while True:
                try:
                    obj2.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    if out2.pending:
                        s2.sendall(out2.read())
                    data = s2.recv(65536)
                    self.assertTrue(data)
                    inc2.write(data)
            obj2.write(REQ)
            s2.sendall(out2.read())
            self.assertTrue(read_to_end(s2, obj2, inc2).startswith(b'HTTP/1.1 200 OK'))
            self.assertTrue(obj2.session_reused)

    def traced(self, srv, fn, more=''):
        """The worker's socket system calls (and the calls in more, ',a,b')
        while fn() runs (strace): the trace, and the descriptor of the one
        connection accepted."""
        _n[0] += 1
        trace = harness.strace_during(
            self, srv.worker_pids()[0], fn, lambda: harness.knock(srv.port), 'accept',
            'accept,accept4,write,writev,sendmsg,sendto,shutdown,recvfrom' + more,
            log=os.path.join(D, 'strace-%d.txt' % _n[0]))
        fds = re.findall(r'accept4?\(.*\) = (\d+)', trace)
        self.assertEqual(len(fds), 1, trace)
        return trace, fds[0]

    def check_calls(self, trace, fd, sends, what):
        writes = re.findall(r'(?:write|writev|sendmsg|sendto)\(%s,' % fd, trace)
        self.assertLessEqual(len(writes), sends, (what, trace))
        self.assertNotIn('shutdown(%s,' % fd, trace, (what, trace))
        # the first bytes are read, not peeked at and read again
        self.assertNotRegex(trace, r'recvfrom\(%s,.*MSG_PEEK' % fd, (what, trace))
        # one connection per wake-up: no accept4 left to fail with EAGAIN
        self.assertNotRegex(trace, r'accept4?\(.*= -1 EAGAIN', (what, trace))

    @unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
    @unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
    def test_full_handshake_and_close_system_calls(self):
        for proto in ('tls1_3', 'tls1_2'):
            with tls_server('1h') as srv:
                trace, fd = self.traced(srv, lambda: handshake(srv.port, proto))
                # TLS 1.3: the server's flight; tickets, response and
                # close_notify in one (5 before the tickets waited for the
                # response, 3 before the close_notify went with it). TLS
                # 1.2: two flights (the ticket is in the second), response
                # with close_notify
                self.check_calls(trace, fd, 2 if proto == 'tls1_3' else 3, proto)

    @unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
    @unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
    def test_no_read_right_after_a_handshake_flight(self):
        # the client answers the server's flight only after its own key
        # exchange and signature check: a read at once would find nothing
        # (an EAGAIN read per handshake); the worker goes to epoll instead
        for proto in ('tls1_3', 'tls1_2'):
            with tls_server('1h') as srv:
                trace, fd = self.traced(srv, lambda: handshake(srv.port, proto),
                                        ',epoll_ctl,epoll_wait')
                calls = [l.split(None, 1)[1] for l in trace.splitlines()
                         if re.match(r'\d+ +\w+\(', l)]
                first = next(i for i, c in enumerate(calls)
                             if re.match(r'(?:sendmsg|sendto|write|writev)\(%s,' % fd, c))
                self.assertLess(first + 1, len(calls), (proto, trace))
                self.assertFalse(calls[first + 1].startswith('recvfrom(%s,' % fd), (proto, trace))

    @unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
    @unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
    def test_full_handshake_random_draws(self):
        # OpenSSL 3's DRBG checks for a fork with a getpid(2) per call. Its
        # own draws in a TLS 1.3 full handshake: the server random, the key
        # share, the signature's nonce, the ticket's age_add. The session ID
        # and the ticket IV come from tls.c's block, filled by the first
        # handshake (7 before: a second ticket cost 2, the session ID 1)
        with tls_server('1h') as srv:
            handshake(srv.port, 'tls1_3')
            trace, _ = self.traced(srv, lambda: handshake(srv.port, 'tls1_3'), ',getpid')
            self.assertLessEqual(len(re.findall(r'^\d+ +getpid\(', trace, re.M)), 4, trace)

    @unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
    @unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
    def test_resumed_handshake_and_close_system_calls(self):
        for proto in ('tls1_3', 'tls1_2'):
            with tls_server('1h') as srv:
                _, sess, _ = handshake(srv.port, proto)
                self.assertTrue(sess)
                got = []
                trace, fd = self.traced(
                    srv, lambda: got.append(handshake(srv.port, proto, sess_in=sess)))
                self.assertTrue(got[0][0], (proto, 'not resumed'))
                # the server's flight (TLS 1.3: with its Finished; 1.2: with
                # its ChangeCipherSpec and Finished), then the response with
                # the new ticket (1.3) and the close_notify
                self.check_calls(trace, fd, 2, proto)


if __name__ == '__main__':
    harness.main()
