"""t_tls.py: HTTPS (issue 16, first increment): --tls/--cert/--key and
tls_listen + tls = {...}, static files (whole, 1 MiB byte-exact, ranges),
CGI seeing TLS, request bodies, keep-alive, ALPN and protocol versions,
plain HTTP and garbage on a TLS port, a handshake that never comes, -t
checks of the key and the expiry, plain and TLS listeners together, a
reload that loads a renewed certificate, SNI certificates per vhost and
session resumption across workers. Certificates are made at test time
with openssl req (ECDSA P-256 and RSA)."""

import hashlib
import http.client
import os
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

CERTS = tempfile.mkdtemp(prefix='portico-tls-')


def make_cert(name, kind='ec', days=365, dns='localhost'):
    """(cert path, key path) of a self-signed certificate for 127.0.0.1
    and the name dns."""
    crt = os.path.join(CERTS, name + '.crt')
    key = os.path.join(CERTS, name + '.key')
    if kind == 'ec':
        alg = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
    else:
        alg = ['-newkey', 'rsa:2048']
    subprocess.run(['openssl', 'req', '-x509'] + alg +
                   ['-nodes', '-keyout', key, '-out', crt, '-days', str(days),
                    '-subj', '/CN=' + dns,
                    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:' + dns],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


EC_CRT, EC_KEY = make_cert('ec')
RSA_CRT, RSA_KEY = make_cert('rsa', 'rsa')

ENV_CGI = '''#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env
'''

PPID_CGI = '''#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n%s %s\\n' "$PPID" "$SSL_SESSION_RESUMED"
'''

ECHO_CGI = '''#!/bin/sh
printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'
exec cat
'''

GZ = __import__('gzip').compress(b'plain text\n' * 1000)
BIG = bytes((i * 7 + (i >> 11)) & 0xff for i in range(1 << 20))


def tls_server(crt=EC_CRT, key=EC_KEY, extra=(), **kw):
    """A server whose only listener (@PORT@) speaks TLS."""
    srv = harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', crt, '--key', key,
                         '-o', 'log_level=info', *extra, listen=[], **kw)
    srv.write_file('index.html', 'hello over tls\n')
    srv.write_file('big.bin', BIG)
    srv.write_file('mid.bin', BIG[:20000])
    srv.write_file('page.txt', 'plain text\n' * 1000)
    srv.write_file('page.txt.gz', GZ)
    cgi = os.path.join(srv.tmpdir, 'cgi')
    os.makedirs(cgi, exist_ok=True)
    for name, body in (('env.cgi', ENV_CGI), ('echo.cgi', ECHO_CGI), ('ppid.cgi', PPID_CGI)):
        p = os.path.join(cgi, name)
        with open(p, 'w') as f:
            f.write(body)
        os.chmod(p, 0o755)
    srv.args += ['--cgi', '/cgi-bin/=' + cgi]
    return srv


def https(srv, path, *args, crt=EC_CRT):
    r = harness.curl('--cacert', crt, '--resolve', 'localhost:%d:127.0.0.1' % srv.port,
                     *args, 'https://localhost:%d%s' % (srv.port, path))
    return r


def s_client(port, *args, data=b''):
    return subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % port,
                           '-servername', 'localhost', '-CAfile', EC_CRT] + list(args),
                          input=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=30)


def served_cert(port, sni='localhost'):
    """The DER certificate the server presents for the name sni."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def client_context(crt=EC_CRT):
    ctx = ssl.create_default_context(cafile=crt)
    return ctx


class Https(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tls_server(extra=('-o', 'limits.header_timeout=2s', '-o', 'precompressed=true'))
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_static_file_over_https(self):
        r = https(self.srv, '/index.html')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b'hello over tls\n')

    def test_one_mebibyte_file_is_byte_exact(self):
        # the bounded read-and-encrypt path (no kTLS here) or SSL_sendfile
        r = https(self.srv, '/big.bin')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), hashlib.sha256(BIG).hexdigest())

    def test_range_request_over_https(self):
        r = https(self.srv, '/big.bin', '-r', '100000-100099', '-D', '-')
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.partition(b'\r\n\r\n')
        self.assertIn(b' 206 ', head.split(b'\r\n')[0])
        self.assertEqual(body, BIG[100000:100100])

    def test_precompressed_sibling_and_cached_small_file_over_https(self):
        # the .gz sibling goes out as a file range, a small file from the
        # open-file cache's memory: both through the TLS write path
        for _ in range(2):
            r = https(self.srv, '/page.txt', '-H', 'Accept-Encoding: gzip', '-D', '-')
            head, _, body = r.stdout.partition(b'\r\n\r\n')
            self.assertIn(b'content-encoding: gzip', head.lower())
            self.assertEqual(body, GZ)
            r = https(self.srv, '/index.html')
            self.assertEqual(r.stdout, b'hello over tls\n')

    def test_cgi_sees_https_and_mod_ssl_names(self):
        r = https(self.srv, '/cgi-bin/env.cgi')
        self.assertEqual(r.returncode, 0, r.stderr)
        env = dict(l.split('=', 1) for l in r.stdout.decode().splitlines() if '=' in l)
        self.assertEqual(env.get('HTTPS'), 'on')
        self.assertEqual(env.get('REQUEST_SCHEME'), 'https')
        self.assertIn(env.get('SSL_PROTOCOL'), ('TLSv1.2', 'TLSv1.3'))
        self.assertTrue(env.get('SSL_CIPHER'))
        self.assertEqual(env.get('SSL_TLS_SNI'), 'localhost')
        self.assertEqual(env.get('SSL_SESSION_RESUMED'), 'Initial')
        self.assertEqual(env.get('SERVER_PORT'), str(self.srv.port))

    def test_post_body_reaches_a_cgi_over_https(self):
        body = os.urandom(300000)
        path = os.path.join(self.srv.tmpdir, 'post.bin')
        with open(path, 'wb') as f:
            f.write(body)
        r = https(self.srv, '/cgi-bin/echo.cgi', '--data-binary', '@' + path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, body)

    def test_request_in_one_record_larger_than_the_input_buffer(self):
        # head and body in one TLS record of ~15 KiB, more than the input
        # buffer takes at once: the rest waits decrypted inside OpenSSL,
        # where epoll cannot see it, and must still be read
        body = bytes(range(256)) * 58
        head = ('POST /cgi-bin/echo.cgi HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n'
                'Connection: close\r\n\r\n' % len(body)).encode()
        with socket.create_connection(('127.0.0.1', self.srv.port), timeout=20) as raw:
            with client_context().wrap_socket(raw, server_hostname='localhost') as t:
                t.sendall(head + body)
                data = b''
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        r = harness.parse_responses(data, ['POST'])[0]
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, body)

    def test_idle_connection_trickling_record_bytes_is_closed(self):
        # between requests only a whole request byte counts as input: the
        # bytes of a record that never completes do not hold the idle
        # connection open past keepalive_timeout
        with tls_server(extra=('-o', 'limits.keepalive_timeout=1s')) as srv:
            with socket.create_connection(('127.0.0.1', srv.port), timeout=20) as raw:
                t = client_context().wrap_socket(raw, server_hostname='localhost')
                t.sendall(b'GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n')
                r = harness.read_response(t)
                self.assertEqual(r.status, 200)
                fd = t.fileno()
                os.write(fd, b'\x17\x03\x03\x40\x00')  # a 16 KiB record, byte by byte
                closed = False
                for _ in range(80):
                    time.sleep(0.25)
                    try:
                        os.write(fd, b'x')
                    except OSError:
                        closed = True
                        break
                    if select.select([fd], [], [], 0)[0]:
                        closed = True
                        break
                t.close()
            self.assertTrue(closed, 'the connection stayed open for 20 s of trickled bytes')

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        c = http.client.HTTPSConnection('localhost', self.srv.port, timeout=20,
                                        context=client_context())
        try:
            c.connect()
            first = c.sock
            for i in range(5):
                c.request('GET', '/index.html' if i % 2 == 0 else '/big.bin')
                r = c.getresponse()
                data = r.read()
                self.assertEqual(r.status, 200)
                self.assertEqual(data, b'hello over tls\n' if i % 2 == 0 else BIG)
                self.assertIs(c.sock, first, 'the connection was not reused')
        finally:
            c.close()

    def test_response_head_shares_its_record_with_the_file(self):
        """A static file's head and first bytes come in one TLS record:
        20000 bytes and a head are two records, not three."""
        inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_context().wrap_bio(inb, outb, server_hostname='localhost')
        sock = socket.create_connection(('127.0.0.1', self.srv.port), timeout=20)
        raw = bytearray()

        def record():
            while len(raw) < 5 or len(raw) < 5 + struct.unpack('>H', raw[3:5])[0]:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, 'the server closed the connection')
                raw.extend(chunk)
            n = 5 + struct.unpack('>H', raw[3:5])[0]
            rec = bytes(raw[:n])
            del raw[:n]
            return rec

        def plain(rec):
            inb.write(rec)
            out = b''
            while True:
                try:
                    out += obj.read(65536)
                except ssl.SSLWantReadError:
                    return out

        def response(path):
            obj.write(b'GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n' % path)
            sock.sendall(outb.read())
            data, records = b'', []
            while b'\r\n\r\n' not in data or len(data.split(b'\r\n\r\n', 1)[1]) < int(
                    re.search(rb'Content-Length: (\d+)', data, re.I).group(1)):
                records.append(plain(record()))
                data += records[-1]
            return data.split(b'\r\n\r\n', 1)[1], [r for r in records if r]

        try:
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outb.read())
                    inb.write(record())
            sock.sendall(outb.read())
            body, _ = response(b'/index.html')  # the session tickets come with it
            self.assertEqual(body, b'hello over tls\n')
            body, records = response(b'/mid.bin')
            self.assertEqual(body, BIG[:20000])
            head, first = records[0].split(b'\r\n\r\n', 1)
            self.assertTrue(head.startswith(b'HTTP/1.1 200'), head)
            self.assertEqual(first, BIG[:len(first)])
            self.assertGreater(len(first), 0, 'the head came in a record of its own')
            self.assertEqual(len(records), 2)
        finally:
            sock.close()

    @unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
    @unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
    def test_file_records_but_the_last_are_sent_with_msg_more(self):
        """A file's records go with MSG_MORE but the last, which pushes
        them: full segments, as TCP_CORK, without its system calls."""
        trace = harness.strace_during(
            self, self.srv.worker_pids()[0],
            lambda: self.assertEqual(https(self.srv, '/big.bin').stdout, BIG),
            lambda: https(self.srv, '/index.html'), 'epoll_wait', 'sendmsg,epoll_wait')
        sends = [ln for ln in trace.splitlines()
                 if 'sendmsg(' in ln and not re.search(r'= -1|unfinished', ln)]
        # 1 MiB: 65 records; the tickets, the last and close_notify go without
        self.assertGreater(sum('MSG_MORE' in ln for ln in sends), 50, sends)
        self.assertNotIn('MSG_MORE', sends[-1], sends)

    def test_slow_reader_gets_every_byte_of_two_files_on_one_connection(self):
        """A reader slower than the server: records the socket did not
        take go first on the retry, a second response follows them on the
        same connection, and the last record, held with the close_notify
        after "Connection: close", comes whole however slowly it is read."""
        ctx = client_context()
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(30)
        raw.connect(('127.0.0.1', self.srv.port))
        with ctx.wrap_socket(raw, server_hostname='localhost') as t:
            # the second file's last record is nearly full (16 KiB records)
            self.srv.write_file('big2.bin', BIG[:-700])
            req = b'GET /big%s.bin HTTP/1.1\r\nHost: localhost\r\n'
            t.sendall(req % b'' + b'\r\n' + req % b'2' + b'Connection: close\r\n\r\n')
            data = bytearray()
            while True:
                chunk = t.recv(3000)
                if not chunk:
                    break
                data += chunk
                # the server meets a full socket at the start and the end
                if len(data) < 200000 or len(data) > 2 * len(BIG) - 200000:
                    time.sleep(0.001)
            data = bytes(data)
        parts = data.split(b'HTTP/1.1 200 OK')
        self.assertEqual(len(parts), 3, data[:300])
        self.assertEqual(parts[1].partition(b'\r\n\r\n')[2], BIG)
        self.assertEqual(parts[2].partition(b'\r\n\r\n')[2], BIG[:-700])

    def test_alpn_selects_http11(self):
        r = s_client(self.srv.port, '-alpn', 'h2,http/1.1')
        self.assertIn(b'ALPN protocol: http/1.1', r.stdout)

    def test_tls12_and_tls13_are_accepted(self):
        for flag, name in (('-tls1_2', b'TLSv1.2'), ('-tls1_3', b'TLSv1.3')):
            r = s_client(self.srv.port, flag)
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn(b'New, ' + name + b', Cipher is ', r.stdout)

    def test_tls11_is_refused(self):
        r = s_client(self.srv.port, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0')
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn(b'Cipher is ECDHE', r.stdout)

    def test_plain_http_on_the_tls_port_gets_a_plain_400(self):
        data, closed = harness.raw_closed(self.srv.port, b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertTrue(closed)
        self.assertTrue(data.startswith(b'HTTP/1.1 400 '), data[:200])
        self.assertTrue(self.srv.wait_for_log(r'plain HTTP request sent to a TLS port'))

    def test_garbage_instead_of_a_client_hello_closes_with_one_log_line(self):
        before = self.srv.stderr_text().count('not a TLS ClientHello')
        data, closed = harness.raw_closed(self.srv.port, b'\x01\x02\x03garbage' * 50)
        self.assertEqual(data, b'')
        self.assertTrue(closed)
        self.assertTrue(self.srv.wait_for(
            lambda: self.srv.stderr_text().count('not a TLS ClientHello') > before))
        time.sleep(0.2)
        self.assertEqual(self.srv.stderr_text().count('not a TLS ClientHello'), before + 1)

    def test_client_that_never_sends_a_client_hello_is_closed_at_header_timeout(self):
        s = harness.connect(self.srv.port, timeout=30)
        try:
            self.assertEqual(s.recv(100), b'')  # closed by the server, not by our timeout
        finally:
            s.close()

    def test_unfinished_handshake_is_closed_and_logged_once(self):
        before = self.srv.stderr_text().count('closed before the TLS handshake finished')
        s = harness.connect(self.srv.port, timeout=30)
        try:
            s.sendall(b'\x16\x03\x01\x02\x00\x01')  # a ClientHello record that never ends
            self.assertEqual(s.recv(100), b'')
        finally:
            s.close()
        self.assertTrue(self.srv.wait_for(lambda: self.srv.stderr_text().count(
            'closed before the TLS handshake finished') == before + 1))

    def test_reset_mid_handshake_is_logged_once(self):
        pat = 'closed before the TLS handshake finished|closed during the TLS handshake'
        before = len(re.findall(pat, self.srv.stderr_text()))
        s = harness.connect(self.srv.port)
        s.sendall(b'\x16\x03\x01\x02\x00\x01')
        time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
        self.assertTrue(self.srv.wait_for(
            lambda: len(re.findall(pat, self.srv.stderr_text())) > before))
        time.sleep(0.3)
        self.assertEqual(len(re.findall(pat, self.srv.stderr_text())), before + 1)


class Setup(unittest.TestCase):
    def test_rsa_certificate_serves(self):
        with tls_server(RSA_CRT, RSA_KEY) as srv:
            r = https(srv, '/big.bin', crt=RSA_CRT)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, BIG)

    def test_start_logs_whether_kernel_tls_is_used(self):
        with tls_server() as srv:
            self.assertTrue(srv.wait_for_log(r'TLS: kernel TLS (available|not available)'))

    def test_wrong_key_fails_the_configuration_test(self):
        r = subprocess.run([harness.PORTICO, '-t', '--tls', '127.0.0.1:8443', '--cert', EC_CRT,
                            '--key', RSA_KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 1)
        self.assertIn(('tls.key %s does not match the certificate %s' % (RSA_KEY, EC_CRT))
                      .encode(), r.stderr)

    def test_tls_listener_without_certificate_is_an_error(self):
        r = subprocess.run([harness.PORTICO, '-t', '--tls', '127.0.0.1:8443'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b'needs tls.certificate and tls.key', r.stderr)

    def test_certificate_expiring_soon_is_a_warning(self):
        crt, key = make_cert('soon', days=5)
        r = subprocess.run([harness.PORTICO, '-t', '--tls', '127.0.0.1:8443', '--cert', crt,
                            '--key', key], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(('certificate %s expires within 30 days' % crt).encode(), r.stderr)

    def test_plain_and_tls_listeners_at_once(self):
        plain = harness.free_port()
        with tls_server(extra=('-l', '127.0.0.1:%d' % plain)) as srv:
            r = https(srv, '/index.html')
            self.assertEqual(r.stdout, b'hello over tls\n', r.stderr)
            r = harness.curl('http://127.0.0.1:%d/index.html' % plain)
            self.assertEqual(r.stdout, b'hello over tls\n', r.stderr)
            r = harness.curl('http://127.0.0.1:%d/cgi-bin/env.cgi' % plain)
            self.assertIn(b'REQUEST_SCHEME=http\n', r.stdout)
            self.assertNotIn(b'HTTPS=', r.stdout)

    def test_config_file_tls_listen_and_protocols(self):
        conf = '''
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%s"; key = "%s"; protocols = [ "TLSv1.3" ]; };
''' % (EC_CRT, EC_KEY)
        with harness.Server(conf=conf, listen=[]) as srv:
            srv.write_file('index.html', 'from the file\n')
            r = https(srv, '/index.html')
            self.assertEqual(r.stdout, b'from the file\n', r.stderr)
            self.assertNotEqual(s_client(srv.port, '-tls1_2').returncode, 0)
            self.assertEqual(s_client(srv.port, '-tls1_3').returncode, 0)

    def test_return_target_says_https_on_a_tls_listener(self):
        # the router's $scheme follows the listener (an http->https redirect
        # on the plain one, the same rule serving both)
        conf = '''
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%s"; key = "%s"; };
locations = ( { prefix = "/go/"; return = "301 $scheme://$host/there"; } );
''' % (EC_CRT, EC_KEY)
        with harness.Server(conf=conf, listen=[]) as srv:
            r = https(srv, '/go/x', '-D', '-')
            head = r.stdout.partition(b'\r\n\r\n')[0].lower()
            self.assertIn(b' 301 ', head.split(b'\r\n')[0], r.stdout)
            self.assertIn(b'location: https://localhost/there\r\n', head + b'\r\n')

    def test_session_resumes_on_every_worker(self):
        # the master makes the context (and its ticket keys) before the
        # workers fork: a ticket from one worker is good on the other
        with tls_server(workers=2) as srv:
            ctx = client_context()
            session = None
            seen = {}
            for _ in range(60):
                with socket.create_connection(('127.0.0.1', srv.port), timeout=20) as raw:
                    with ctx.wrap_socket(raw, server_hostname='localhost',
                                         session=session) as t:
                        t.sendall(b'GET /cgi-bin/ppid.cgi HTTP/1.1\r\nHost: localhost\r\n'
                                  b'Connection: close\r\n\r\n')
                        data = b''
                        while True:
                            chunk = t.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        if session is None:
                            session = t.session
                            continue
                        self.assertTrue(t.session_reused)
                r = harness.parse_responses(data)[0]
                ppid, resumed = r.body.decode().split()
                self.assertEqual(resumed, 'Resumed')
                seen[ppid] = seen.get(ppid, 0) + 1
                if len(seen) == 2:
                    break
            if len(seen) < 2:
                self.skipTest('all connections went to one worker: %s' % seen)

    def test_ecdsa_and_rsa_certificates_at_once(self):
        # one of each key type: a client that only verifies RSA signatures
        # gets the RSA certificate, the others the ECDSA one
        with tls_server(extra=('--cert', RSA_CRT, '--key', RSA_KEY)) as srv:
            r = s_client(srv.port, '-sigalgs', 'ECDSA+SHA256')
            self.assertIn(b'Peer signature type: ECDSA', r.stdout)
            r = s_client(srv.port, '-sigalgs', 'rsa_pss_rsae_sha256', '-CAfile', RSA_CRT)
            self.assertIn(b'Peer signature type: RSA-PSS', r.stdout)
            self.assertIn(b'Verify return code: 0', r.stdout)

    def test_certificate_without_its_key_is_an_error(self):
        r = subprocess.run([harness.PORTICO, '-t', '--tls', '127.0.0.1:8443', '--cert', EC_CRT,
                            '--key', EC_KEY, '--cert', RSA_CRT],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b'2 certificate(s) but 1 key(s)', r.stderr)

    def test_sni_picks_the_certificate_of_the_vhost(self):
        ca, ka = make_cert('sni-a', dns='a.test')
        cb, kb = make_cert('sni-b', kind='rsa', dns='b.test')
        conf = '''
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%s"; key = "%s"; };
vhosts = (
  { names = [ "a.test" ]; tls = { certificate = "%s"; key = "%s"; }; },
  { names = [ "b.test" ]; tls = { certificate = "%s"; key = "%s"; }; },
  { default = true; }
);
''' % (EC_CRT, EC_KEY, ca, ka, cb, kb)
        with harness.Server(conf=conf, listen=[]) as srv:
            srv.write_file('index.html', 'sni\n')
            self.assertEqual(served_cert(srv.port, 'a.test'), der(ca))
            self.assertEqual(served_cert(srv.port, 'B.test'), der(cb))
            self.assertEqual(served_cert(srv.port, 'other.test'), der(EC_CRT))
            self.assertEqual(served_cert(srv.port, None), der(EC_CRT))
            r = harness.curl('--cacert', cb, '--resolve', 'b.test:%d:127.0.0.1' % srv.port,
                             'https://b.test:%d/index.html' % srv.port)
            self.assertEqual(r.stdout, b'sni\n', r.stderr)

    def test_session_resumes_after_a_reload(self):
        # the ticket keys come from a secret the master keeps across
        # reloads: a ticket from an old worker is good on the new ones
        with tls_server() as srv:
            ctx = client_context()
            with socket.create_connection(('127.0.0.1', srv.port), timeout=20) as raw:
                with ctx.wrap_socket(raw, server_hostname='localhost') as t:
                    t.sendall(b'GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n')
                    harness.read_response(t)
                    session = t.session
            old = set(srv.worker_pids())
            srv.signal(signal.SIGHUP)
            self.assertTrue(srv.wait_for_log(r'configuration reloaded'))
            self.assertTrue(srv.wait_for(lambda: not old & set(srv.worker_pids())))
            with socket.create_connection(('127.0.0.1', srv.port), timeout=20) as raw:
                with ctx.wrap_socket(raw, server_hostname='localhost', session=session) as t:
                    t.sendall(b'GET /cgi-bin/ppid.cgi HTTP/1.1\r\nHost: localhost\r\n\r\n')
                    r = harness.read_response(t)
                    self.assertTrue(t.session_reused)
            ppid, resumed = r.body.decode().split()
            self.assertEqual(resumed, 'Resumed')
            self.assertNotIn(int(ppid), old)

    def test_reload_under_load_fails_no_request(self):
        # clients keep making new TLS connections while a HUP swaps the
        # certificate: every request is answered (counted, not timed)
        crt = os.path.join(CERTS, 'load.crt')
        key = os.path.join(CERTS, 'load.key')
        c1, k1 = make_cert('load1')
        c2, k2 = make_cert('load2')
        for src, dst in ((c1, crt), (k1, key)):
            with open(src, 'rb') as f, open(dst, 'wb') as g:
                g.write(f.read())
        ctx = ssl.create_default_context(cafile=c1)
        ctx.load_verify_locations(c2)
        with tls_server(crt, key, workers=2) as srv:
            stop = threading.Event()
            results = {'ok': 0, 'errors': []}

            def client():
                while not stop.is_set():
                    c = http.client.HTTPSConnection('localhost', srv.port, timeout=30,
                                                    context=ctx)
                    try:
                        c.request('GET', '/index.html')
                        r = c.getresponse()
                        body = r.read()
                        if r.status == 200 and body == b'hello over tls\n':
                            results['ok'] += 1
                        else:
                            results['errors'].append((r.status, body[:80]))
                    except Exception as e:  # noqa: BLE001 (every failure counts)
                        results['errors'].append(repr(e))
                    finally:
                        c.close()

            threads = [threading.Thread(target=client) for _ in range(3)]
            for t in threads:
                t.start()
            try:
                self.assertTrue(srv.wait_for(lambda: results['ok'] >= 30, timeout=60))
                for src, dst in ((c2, crt), (k2, key)):
                    with open(src, 'rb') as f, open(dst + '.new', 'wb') as g:
                        g.write(f.read())
                    os.rename(dst + '.new', dst)
                srv.signal(signal.SIGHUP)
                self.assertTrue(srv.wait_for_log(r'configuration reloaded'))
                self.assertTrue(srv.wait_for(lambda: served_cert(srv.port) == der(c2)))
                done = results['ok']
                self.assertTrue(srv.wait_for(lambda: results['ok'] >= done + 30, timeout=60))
            finally:
                stop.set()
                for t in threads:
                    t.join(60)
            self.assertEqual(results['errors'], [])

    def test_reload_loads_the_renewed_certificate_and_keeps_serving(self):
        crt = os.path.join(CERTS, 'live.crt')
        key = os.path.join(CERTS, 'live.key')
        c1, k1 = make_cert('gen1')
        c2, k2 = make_cert('gen2')
        for src, dst in ((c1, crt), (k1, key)):
            with open(src, 'rb') as f, open(dst, 'wb') as g:
                g.write(f.read())

        with tls_server(crt, key) as srv:
            self.assertEqual(served_cert(srv.port), der(c1))
            for src, dst in ((c2, crt), (k2, key)):
                with open(src, 'rb') as f, open(dst, 'wb') as g:
                    g.write(f.read())
            srv.signal(signal.SIGHUP)
            self.assertTrue(srv.wait_for_log(r'configuration reloaded'))
            self.assertTrue(srv.wait_for(lambda: served_cert(srv.port) == der(c2)))
            r = https(srv, '/index.html', crt=c2)
            self.assertEqual(r.stdout, b'hello over tls\n', r.stderr)


if __name__ == '__main__':
    harness.main()
