"""t_acme.py: certificates that renew themselves (issue 16 part 2, ACME,
RFC 8555) end to end against Debian's pebble: a vhost with acme = {...}
gets a pebble-issued certificate by http-01 answered on portico's plain
port and serves it on its TLS port without a restart; a restart reuses the
stored certificate; a due certificate is renewed and loaded while a client
loops on https without a failure; an ACME server that is down is retried
with a back-off, logged (and kept across a reload), while portico keeps
serving; the challenge path is answered for any vhost; a TLS listener with
only ACME vhosts serves a self-signed placeholder; acme settings are
checked (-t). Names resolve to
127.0.0.1 through a tiny DNS responder run here (pebble -dnsserver)."""

import os
import pwd
import re
import shutil
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

PEBBLE = shutil.which('pebble')
NAME = 'acme.portico.test'


def dns_responder():
    """A UDP DNS server answering A 127.0.0.1 for every name (no AAAA)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))

    def run():
        while True:
            try:
                q, peer = s.recvfrom(512)
            except OSError:
                return
            if len(q) < 12:
                continue
            end = 12
            while end < len(q) and q[end]:
                end += q[end] + 1
            question = q[12:end + 5]
            qtype = struct.unpack('>H', q[end + 1:end + 3])[0] if end + 3 <= len(q) else 0
            an = 1 if qtype == 1 else 0
            head = q[:2] + struct.pack('>HHHHH', 0x8180, 1, an, 0, 0)
            ans = b''
            if an:
                ans = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes([127, 0, 0, 1])
            try:
                s.sendto(head + question + ans, peer)
            except OSError:
                pass

    threading.Thread(target=run, daemon=True).start()
    return s


class Pebble:
    def __init__(self, http_port, dns_port, tls_port):
        self.dir = tempfile.mkdtemp(prefix='portico-pebble-')
        self.port = harness.free_port()
        self.crt = os.path.join(self.dir, 'cert.pem')
        key = os.path.join(self.dir, 'key.pem')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', self.crt,
                        '-days', '30', '-subj', '/CN=localhost', '-addext',
                        'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conf = os.path.join(self.dir, 'pebble.json')
        with open(conf, 'w') as f:
            f.write('{"pebble": {"listenAddress": "127.0.0.1:%d", '
                    '"managementListenAddress": "127.0.0.1:%d", "certificate": "%s", '
                    '"privateKey": "%s", "httpPort": %d, "tlsPort": %d, '
                    '"ocspResponderURL": "", "externalAccountBindingRequired": false}}'
                    % (self.port, harness.free_port(), self.crt, key, http_port, tls_port))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP='1', PEBBLE_WFE_NONCEREJECT='0',
                   PEBBLE_AUTHZREUSE='0')
        self.log = open(os.path.join(self.dir, 'pebble.log'), 'wb')
        self.proc = subprocess.Popen([PEBBLE, '-config', conf, '-dnsserver',
                                      '127.0.0.1:%d' % dns_port], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError('pebble did not start')

    def url(self):
        return 'https://127.0.0.1:%d/dir' % self.port

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def served_cert(port):
    """The PEM of the certificate the TLS port sends for NAME."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), 10) as s:
        with ctx.wrap_socket(s, server_hostname=NAME) as t:
            return ssl.DER_cert_to_PEM_cert(t.getpeercert(binary_form=True))


def issuer_serial(pem):
    out = subprocess.run(['openssl', 'x509', '-noout', '-issuer', '-serial'], input=pem.encode(),
                         capture_output=True, check=True).stdout.decode()
    return out


class AcmeSettings(unittest.TestCase):
    def test_5_settings_checked(self):
        base = 'user = "root"; acme_state_dir = "/var/lib/portico-test-acme"; '
        cases = (
            ('vhosts = ( { names = [ "*.a.test" ]; acme = { directory = "https://x/d"; }; } );',
             b'wildcard'),
            ('vhosts = ( { names = [ "a.test" ]; acme = { email = "a@b"; }; } );',
             b'acme needs directory'),
            ('vhosts = ( { names = [ "a.test" ]; acme = { directory = "http://x/d"; }; } );',
             b'must be an https:// URL'),
            ('vhosts = ( { names = [ "a.test" ]; acme = { directory = "https://x/d"; '
             'renew_before = "soon"; }; } );', b'not a duration'),
            ('vhosts = ( { names = [ "a.test" ]; acme = { directory = "https://x/d"; '
             'staging = true; }; } );', b'staging'),
            ('vhosts = ( { names = [ "a.test" ]; acme = { directory = "https://x/d"; '
             'order_timeout = "0s"; }; } );', b'acme.order_timeout: not within'),
        )
        d = tempfile.mkdtemp(prefix='portico-acme-t-')
        for conf, want in cases:
            path = os.path.join(d, 'p.conf')
            with open(path, 'w') as f:
                f.write(base + conf)
            r = subprocess.run([harness.PORTICO, '-t', '-c', path], capture_output=True)
            self.assertEqual(r.returncode, 1, (conf, r.stderr))
            self.assertIn(want, r.stderr, conf)
        with open(path, 'w') as f:
            f.write('user = "root"; acme_state_dir = "relative"; ')
        r = subprocess.run([harness.PORTICO, '-t', '-c', path], capture_output=True)
        self.assertIn(b'acme_state_dir must be an absolute path', r.stderr)
        # a TLS listener with only ACME vhosts needs no certificate of its own
        with open(path, 'w') as f:
            f.write(base + 'tls_listen = [ "127.0.0.1:8443" ]; vhosts = ( { names = [ "a.test" ]; '
                    'acme = { directory = "https://x/d"; }; } );')
        r = subprocess.run([harness.PORTICO, '-t', '-c', path], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)


@unittest.skipUnless(os.geteuid() == 0, 'needs root: "user" and "cgi_user" apply only then')
class AcmeStateDir(unittest.TestCase):
    """The ACME process (root) refuses a state directory whose parent the
    workers' user or the programs' user (cgi_user) could write: either
    could put a directory of its own in its place."""

    def run_with_parent_of(self, owner):
        srv = harness.Server(workers=1, conf='# below')
        os.chmod(srv.tmpdir, 0o755)
        parent = os.path.join(srv.tmpdir, 'state')
        os.mkdir(parent, 0o755)
        os.chown(parent, pwd.getpwnam(owner).pw_uid, -1)
        srv.conf = ('user = "nobody"; cgi_user = "daemon"; acme_state_dir = "%s/acme"; '
                    'vhosts = ( { names = [ "a.test" ]; '
                    'acme = { directory = "https://127.0.0.1:1/d"; }; } );' % parent)
        srv.start()
        self.addCleanup(srv.stop)
        return srv, parent

    def check(self, owner, who):
        srv, parent = self.run_with_parent_of(owner)
        pat = (r'acme: state directory %s/acme: the directory %s belongs to %s' %
               (re.escape(parent), re.escape(parent), re.escape(who)))
        self.assertTrue(srv.wait_for_log(pat, 30), srv.stderr_text()[-2000:])
        self.assertFalse(os.path.exists(os.path.join(parent, 'acme')))

    def test_parent_of_the_workers_user_is_refused(self):
        self.check('nobody', "the workers' user")

    def test_parent_of_the_programs_user_is_refused(self):
        self.check('daemon', "the programs' user (cgi_user)")


class AcmeDeadline(unittest.TestCase):
    def test_7_trickling_server_ends_at_order_timeout(self):
        # an ACME "server" that answers every request one byte a second:
        # no socket timeout ever fires, the attempt's deadline does, and
        # the back-off follows
        d = tempfile.mkdtemp(prefix='portico-acme-slow-')
        crt, key = os.path.join(d, 'c.pem'), os.path.join(d, 'k.pem')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '30', '-subj', '/CN=localhost', '-addext',
                        'subjectAltName=IP:127.0.0.1'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        lsock = socket.socket()
        lsock.bind(('127.0.0.1', 0))
        lsock.listen(8)
        stop = threading.Event()

        def trickle(c):
            try:
                with ctx.wrap_socket(c, server_side=True) as t:
                    t.recv(4096)
                    for b in b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{' * 100:
                        if stop.wait(1):
                            return
                        t.sendall(bytes([b]))
            except OSError:
                pass

        def serve():
            while not stop.is_set():
                try:
                    c, _ = lsock.accept()
                except OSError:
                    return
                threading.Thread(target=trickle, args=(c,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        conf = '''
log_level = "info";
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%s"; key = "%s"; };
acme_state_dir = "%s";
vhosts = ( { names = [ "slow.portico.test" ];
             acme = { directory = "https://127.0.0.1:%d/dir"; ca_file = "%s";
                      order_timeout = "3s"; }; } );
''' % (crt, key, os.path.join(d, 'state'), lsock.getsockname()[1], crt)
        try:
            with harness.Server(conf=conf, listen=[]) as srv:
                self.assertTrue(srv.wait_for_log(
                    r'acme: certificate for slow.portico.test failed \(attempt 1\): the attempt '
                    r'took longer than acme.order_timeout \(3s\); retrying in 60s', 60),
                    srv.stderr_text())
        finally:
            stop.set()
            lsock.close()


@unittest.skipUnless(PEBBLE, 'pebble (Debian package "pebble") is not installed')
class AcmeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = dns_responder()
        cls.plain = harness.free_port()
        cls.alpn_tls = harness.free_port()
        cls.pebble = Pebble(cls.plain, cls.dns.getsockname()[1], cls.alpn_tls)
        cls.state = tempfile.mkdtemp(prefix='portico-acme-')
        # the default certificate, sent until ACME got one
        cls.tmp = tempfile.mkdtemp(prefix='portico-acme-def-')
        cls.def_crt = os.path.join(cls.tmp, 'd.crt')
        cls.def_key = os.path.join(cls.tmp, 'd.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', cls.def_key, '-out',
                        cls.def_crt, '-days', '30', '-subj', '/CN=default.invalid'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        cls.pebble.stop()
        cls.dns.close()

    def conf(self, tls_port, directory=None, renew='30d', default_cert=True,
             challenge='http-01'):
        tls = 'tls = { certificate = "%s"; key = "%s"; };' % (self.def_crt, self.def_key)
        return '''
log_level = "info";
tls_listen = [ "127.0.0.1:%d" ];
%s
acme_state_dir = "%s";
vhosts = ( { names = [ "%s" ];
             acme = { directory = "%s"; email = "admin@portico.test";
                      ca_file = "%s"; renew_before = "%s"; challenge = "%s"; }; } );
''' % (tls_port, tls if default_cert else '', self.state, NAME,
            directory or self.pebble.url(), self.pebble.crt, renew, challenge)

    def server(self, tls_port, **kw):
        srv = harness.Server(conf=self.conf(tls_port, **kw), port=self.plain)
        srv.write_file('index.html', 'hello\n')
        return srv

    def wait_issuer(self, port, pred, timeout=60, srv=None):
        deadline = time.monotonic() + timeout
        last = ''
        while time.monotonic() < deadline:
            try:
                last = issuer_serial(served_cert(port))
                if pred(last):
                    return last
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.3)
        self.fail('served certificate stays: %s\n%s' % (last, srv.stderr_text() if srv else ''))

    def test_1_issue_restart_renew(self):
        tls_port = harness.free_port()
        srv = self.server(tls_port)
        with srv:
            self.assertTrue(srv.wait_for_log(r'acme: certificate for %s obtained' % NAME, 60),
                            srv.stderr_text())
            first = self.wait_issuer(tls_port, lambda t: 'Pebble' in t, srv=srv)
            self.assertIn('Pebble', first)
            st = os.stat(os.path.join(self.state, 'certs', NAME, 'key.pem'))
            self.assertEqual(st.st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(self.state).st_mode & 0o777, 0o711)
        # a restart: the stored certificate at once, no new order
        srv = self.server(tls_port)
        with srv:
            self.assertEqual(self.wait_issuer(tls_port, lambda t: 'Pebble' in t), first)
            time.sleep(1)
            self.assertNotIn('requesting a certificate', srv.stderr_text())
        # due (renew_before longer than its life, and older than the hour a
        # certificate is kept at least): renewed and loaded, no restart, no
        # failed request meanwhile
        cert = os.path.join(self.state, 'certs', NAME, 'cert.pem')
        old = time.time() - 7200
        os.utime(cert, (old, old))
        srv = self.server(tls_port)
        with srv:
            self.assertEqual(self.wait_issuer(tls_port, lambda t: 'Pebble' in t), first)
            failures, done = [], threading.Event()
            count = [0]

            def loop():
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                while not done.is_set():
                    try:
                        with socket.create_connection(('127.0.0.1', tls_port), 10) as s:
                            # a response cut short without close_notify
                            # counts as a failure too
                            with ctx.wrap_socket(s, server_hostname=NAME,
                                                 suppress_ragged_eofs=False) as t:
                                t.sendall(b'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close'
                                          b'\r\n\r\n' % NAME.encode())
                                data = b''
                                while True:
                                    b = t.recv(4096)
                                    if not b:
                                        break
                                    data += b
                        if not data.startswith(b'HTTP/1.1 200'):
                            failures.append(data[:80])
                        count[0] += 1
                    except (OSError, ssl.SSLError) as e:
                        failures.append(repr(e))

            th = threading.Thread(target=loop)
            th.start()
            try:
                with open(srv.conf_path, 'w') as f:
                    f.write(harness.root_user(self.conf(tls_port, renew='36500d')))
                srv.signal(__import__('signal').SIGHUP)
                second = self.wait_issuer(tls_port, lambda t: 'Pebble' in t and t != first,
                                          timeout=90)
                time.sleep(1)
            finally:
                done.set()
                th.join(30)
            self.assertNotEqual(second, first)
            self.assertEqual(failures, [])
            self.assertGreater(count[0], 0)

    def test_2_ca_down_backs_off_and_serves(self):
        state = tempfile.mkdtemp(prefix='portico-acme-down-')
        saved, self.state = self.state, state
        try:
            tls_port = harness.free_port()
            dead = 'https://127.0.0.1:%d/dir' % harness.free_port()
            srv = self.server(tls_port, directory=dead)
            with srv:
                self.assertTrue(srv.wait_for_log(r'acme: certificate for %s failed \(attempt 1\).*retrying in 60s'
                                 % NAME, 60), srv.stderr_text())
                # the default certificate, and requests answered
                self.assertIn('default.invalid', issuer_serial(served_cert(tls_port)))
                self.assertEqual(harness.request(srv.port, 'GET', '/', headers={'Host': NAME})[0],
                                 200)
                # a reload keeps the back-off: the new ACME process waits
                srv.signal(__import__('signal').SIGHUP)
                self.assertTrue(srv.wait_for_log(r'acme: certificate for %s: after 1 failure\(s\), '
                                                 r'next attempt in \d+s' % NAME, 30),
                                srv.stderr_text())
                self.assertNotIn('attempt 2', srv.stderr_text())
        finally:
            self.state = saved

    def test_4_placeholder_without_a_default_certificate(self):
        tls_port = harness.free_port()
        state = tempfile.mkdtemp(prefix='portico-acme-ph-')
        saved, self.state = self.state, state
        try:
            srv = self.server(tls_port, directory='https://127.0.0.1:1/dir', default_cert=False)
            with srv:
                self.assertIn('portico placeholder', issuer_serial(served_cert(tls_port)))
        finally:
            self.state = saved

    def test_6_tls_alpn_01(self):
        state = tempfile.mkdtemp(prefix='portico-acme-alpn-')
        saved, self.state = self.state, state
        try:
            srv = self.server(self.alpn_tls, challenge='tls-alpn-01')
            with srv:
                self.assertTrue(srv.wait_for_log(r'acme: certificate for %s obtained' % NAME, 60),
                                srv.stderr_text())
                self.assertIn('proved by tls-alpn-01', srv.stderr_text())
                self.wait_issuer(self.alpn_tls, lambda t: 'Pebble' in t, srv=srv)
                self.assertEqual([f for f in os.listdir(os.path.join(state, 'challenges'))], [])
        finally:
            self.state = saved

    def test_3_challenge_path_for_any_vhost(self):
        tls_port = harness.free_port()
        state = tempfile.mkdtemp(prefix='portico-acme-ch-')
        saved, self.state = self.state, state
        try:
            srv = self.server(tls_port, directory='https://127.0.0.1:1/dir')
            with srv:
                srv.wait_for_log(r'acme: certificate for', timeout=30)
                with open(os.path.join(state, 'challenges', 'tok_en-1'), 'w') as f:
                    f.write('tok_en-1.thumb')
                r = harness.request(srv.port, 'GET', '/.well-known/acme-challenge/tok_en-1',
                                    headers={'Host': 'other.example'})
                self.assertEqual((r[0], r[2]), (200, b'tok_en-1.thumb'))
                r = harness.request(srv.port, 'GET', '/.well-known/acme-challenge/missing',
                                    headers={'Host': NAME})
                self.assertEqual(r[0], 404)
                r = harness.request(srv.port, 'GET', '/.well-known/acme-challenge/a.b',
                                    headers={'Host': NAME})
                self.assertEqual(r[0], 404)
        finally:
            self.state = saved


if __name__ == '__main__':
    harness.main()
