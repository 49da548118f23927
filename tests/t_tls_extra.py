"""t_tls_extra.py: HTTPS extras (issue 16): OCSP stapling from a response
file re-read when it changes (openssl ocsp makes the responses, openssl
s_client -status reads what is stapled), client certificates (optional,
required, per vhost) and what programs see of them (SSL_CLIENT_*), and an
http -> https redirect with return_http, the status page's handshake
counters (full, resumed, failed), and testssl.sh's protocol, cipher
and vulnerability checks against the default settings. A CA, its certificates and the OCSP
responses are made at test time."""

import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

D = tempfile.mkdtemp(prefix='portico-tlsx-')


def p(name):
    return os.path.join(D, name)


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(name, cn):
    run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
        '-nodes', '-keyout', p(name + '.key'), '-out', p(name + '.crt'), '-days', '30',
        '-subj', '/CN=' + cn)


def make_leaf(name, ca, subj, serial, san=None):
    run('openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', p(name + '.key'), '-out', p(name + '.csr'), '-subj', subj)
    ext = p(name + '.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName=%s\n' % san if san else 'basicConstraints=CA:FALSE\n')
    run('openssl', 'x509', '-req', '-in', p(name + '.csr'), '-CA', p(ca + '.crt'), '-CAkey',
        p(ca + '.key'), '-set_serial', serial, '-days', '30', '-extfile', ext,
        '-out', p(name + '.crt'))


def ocsp_response(out, cert, serial_hex, revoked=False, ago=None):
    """A DER OCSP response for cert, signed by the CA (openssl ocsp as its
    own responder, from an index file); ago='-3d': made then (faketime),
    valid for a day, so expired now."""
    idx = p('index.txt')
    with open(idx, 'w') as f:
        if revoked:
            f.write('R\t301231235959Z\t250101000000Z\t%s\tunknown\t/CN=x\n' % serial_hex)
        else:
            f.write('V\t301231235959Z\t\t%s\tunknown\t/CN=x\n' % serial_hex)
    run(*(['faketime', '-f', ago] if ago else []), 'openssl', 'ocsp', '-index', idx, '-rsigner', p('ca.crt'), '-rkey', p('ca.key'),
        '-CA', p('ca.crt'), '-issuer', p('ca.crt'), '-cert', cert, '-respout', out,
        '-ndays', '1')


make_ca('ca', 'test-ca')
make_leaf('srv', 'ca', '/CN=localhost', '0x1001', 'IP:127.0.0.1,DNS:localhost')
make_leaf('other', 'ca', '/CN=other.test', '0x1002', 'DNS:other.test')
make_ca('clientca', 'client-ca')
make_leaf('alice', 'clientca', '/O=Example/CN=alice', '0x2a')
make_ca('rogue', 'rogue-ca')
make_leaf('mallory', 'rogue', '/CN=mallory', '0x66')
ocsp_response(p('good.der'), p('srv.crt'), '1001')
ocsp_response(p('revoked.der'), p('srv.crt'), '1001', revoked=True)
ocsp_response(p('other.der'), p('other.crt'), '1002', revoked=True)
FAKETIME = shutil.which('faketime')
if FAKETIME:
    ocsp_response(p('expired.der'), p('srv.crt'), '1001', ago='-3d')

ENV_CGI = '''#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env
'''


def server(tls_extra='', vhosts='', extra_conf=''):
    conf = '''
tls_listen = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%s"; key = "%s"; %s };
%s
%s
''' % (p('srv.crt'), p('srv.key'), tls_extra, vhosts, extra_conf)
    srv = harness.Server('-o', 'log_level=info', conf=conf, listen=[])
    srv.conf = srv.conf.replace('@DOCROOT@', srv.docroot)
    srv.write_file('index.html', 'hello\n')
    cgi = os.path.join(srv.tmpdir, 'cgi')
    os.makedirs(cgi, exist_ok=True)
    with open(os.path.join(cgi, 'env.cgi'), 'w') as f:
        f.write(ENV_CGI)
    os.chmod(os.path.join(cgi, 'env.cgi'), 0o755)
    srv.args += ['--cgi', '/cgi-bin/=' + cgi]
    return srv


def status(port, sni='localhost'):
    """What openssl s_client -status says about the stapled response."""
    r = subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % port,
                        '-servername', sni, '-status', '-CAfile', p('ca.crt')],
                       input=b'', stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = r.stdout.decode('latin-1')
    if 'OCSP response: no response sent' in out:
        return 'none'
    for word in ('good', 'revoked', 'unknown'):
        if 'Cert Status: ' + word in out:
            return word
    return out


def https(srv, path, *args, name='localhost'):
    return harness.curl('--cacert', p('ca.crt'), '--resolve', '%s:%d:127.0.0.1' % (name, srv.port),
                        *args, 'https://%s:%d%s' % (name, srv.port, path))


class OcspStapling(unittest.TestCase):
    def test_response_is_stapled_and_reread_when_the_file_changes(self):
        live = p('live.der')
        with open(p('good.der'), 'rb') as f, open(live, 'wb') as g:
            g.write(f.read())
        with server('ocsp_response = "%s";' % live) as srv:
            self.assertEqual(status(srv.port), 'good')
            # replaced as a responder-fetching job would: a new file renamed
            # into place, no reload
            tmp = live + '.new'
            with open(p('revoked.der'), 'rb') as f, open(tmp, 'wb') as g:
                g.write(f.read())
            os.rename(tmp, live)
            self.assertTrue(srv.wait_for(lambda: status(srv.port) == 'revoked', timeout=30))
            self.assertTrue(srv.wait_for_log(r'ocsp_response .*read again'))

    def test_no_response_without_the_setting(self):
        with server() as srv:
            self.assertEqual(status(srv.port), 'none')

    def test_a_vhost_staples_its_own_response(self):
        vh = '''vhosts = ( { names = [ "other.test" ]; root = "@DOCROOT@";
  tls = { certificate = "%s"; key = "%s"; ocsp_response = "%s"; }; } );''' % (
            p('other.crt'), p('other.key'), p('other.der'))
        with server('ocsp_response = "%s";' % p('good.der'), vh) as srv:
            self.assertEqual(status(srv.port), 'good')
            self.assertEqual(status(srv.port, 'other.test'), 'revoked')

    def test_a_file_that_is_no_ocsp_response_is_a_config_error(self):
        conf = os.path.join(D, 'bad.conf')
        with open(conf, 'w') as f:
            f.write('tls_listen = [ "127.0.0.1:8443" ]; root = "%s";\n'
                    'tls = { certificate = "%s"; key = "%s"; ocsp_response = "%s"; };\n'
                    % (D, p('srv.crt'), p('srv.key'), p('srv.crt')))
        r = subprocess.run([harness.PORTICO, '-t', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'not a DER OCSP response', r.stderr)

    def test_a_response_for_another_certificate_is_never_stapled(self):
        # at load: a configuration error, like a key that does not match
        conf = os.path.join(D, 'wrong.conf')
        with open(conf, 'w') as f:
            f.write('tls_listen = [ "127.0.0.1:8443" ]; root = "%s";\n'
                    'tls = { certificate = "%s"; key = "%s"; ocsp_response = "%s"; };\n'
                    % (D, p('srv.crt'), p('srv.key'), p('other.der')))
        r = subprocess.run([harness.PORTICO, '-t', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'not a response for the certificate it goes with', r.stderr)
        # later, as the file changes: logged once, the last good one stays
        live = p('live-wrong.der')
        shutil.copy(p('good.der'), live)
        with server('ocsp_response = "%s";' % live) as srv:
            self.assertEqual(status(srv.port), 'good')
            shutil.copy(p('other.der'), live + '.new')
            os.rename(live + '.new', live)
            line = r'ocsp_response .*live-wrong.der: not a response for the certificate'
            self.assertTrue(srv.wait_for(lambda: status(srv.port) == 'good' and
                                         re.search(line, srv.stderr_text()), timeout=30),
                            srv.stderr_text())
            # more handshakes past the next look at the file: no new line
            end = time.monotonic() + 7
            while time.monotonic() < end:
                self.assertEqual(status(srv.port), 'good')
            self.assertEqual(len(re.findall(line, srv.stderr_text())), 1, srv.stderr_text())

    @unittest.skipUnless(FAKETIME, 'faketime (Debian package "faketime") is not installed')
    def test_an_expired_response_is_not_stapled(self):
        live = p('live-expired.der')
        shutil.copy(p('expired.der'), live)
        # an expired file is no configuration error (the job that renews
        # it may be late): a warning, and nothing stapled until it is
        with server('ocsp_response = "%s";' % live) as srv:
            self.assertTrue(srv.wait_for_log(r'live-expired.der: expired'), srv.stderr_text())
            self.assertEqual(status(srv.port), 'none')
            shutil.copy(p('good.der'), live + '.new')
            os.rename(live + '.new', live)
            self.assertTrue(srv.wait_for(lambda: status(srv.port) == 'good', timeout=30))
            # and a good file replaced by an expired one keeps the good one
            shutil.copy(p('expired.der'), live + '.new')
            os.rename(live + '.new', live)
            # (the file is looked at from handshakes)
            line = r'live-expired.der: expired.*stapling the last one read while in date'
            self.assertTrue(srv.wait_for(lambda: status(srv.port) == 'good' and
                                         re.search(line, srv.stderr_text()), timeout=30),
                            srv.stderr_text())
            self.assertEqual(status(srv.port), 'good')


CLIENT_OPTIONAL = 'client_ca = "%s"; verify_client = "optional";' % p('clientca.crt')
CLIENT_REQUIRED = 'client_ca = "%s"; verify_client = "required";' % p('clientca.crt')
ALICE = ('--cert', p('alice.crt'), '--key', p('alice.key'))
MALLORY = ('--cert', p('mallory.crt'), '--key', p('mallory.key'))


def env_of(out):
    return out.decode('latin-1')


class ClientCertificates(unittest.TestCase):
    def test_optional_with_a_certificate_programs_see_it(self):
        with server(CLIENT_OPTIONAL) as srv:
            r = https(srv, '/cgi-bin/env.cgi', *ALICE)
            self.assertEqual(r.returncode, 0, r.stderr)
            e = env_of(r.stdout)
            self.assertIn('SSL_CLIENT_VERIFY=SUCCESS\n', e)
            self.assertIn('SSL_CLIENT_S_DN=CN=alice,O=Example\n', e)
            self.assertIn('SSL_CLIENT_I_DN=CN=client-ca\n', e)
            self.assertIn('SSL_CLIENT_SERIAL=2A\n', e)
            with open(p('alice.crt')) as f:
                pem = f.read()
            self.assertIn('SSL_CLIENT_CERT=' + pem, e)

    def test_optional_without_a_certificate_says_none(self):
        with server(CLIENT_OPTIONAL) as srv:
            r = https(srv, '/cgi-bin/env.cgi')
            self.assertEqual(r.returncode, 0, r.stderr)
            e = env_of(r.stdout)
            self.assertIn('SSL_CLIENT_VERIFY=NONE\n', e)
            self.assertNotIn('SSL_CLIENT_S_DN', e)

    def test_a_certificate_of_another_ca_fails_the_handshake(self):
        with server(CLIENT_OPTIONAL) as srv:
            r = https(srv, '/index.html', *MALLORY)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(r.stdout, b'')
            self.assertTrue(srv.wait_for_log(r'TLS handshake failed'))

    def test_required_without_a_certificate_fails_the_handshake(self):
        with server(CLIENT_REQUIRED) as srv:
            r = https(srv, '/index.html')
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(r.stdout, b'')
            r = https(srv, '/index.html', *ALICE)
            self.assertEqual(r.stdout, b'hello\n', r.stderr)

    def test_no_client_variables_when_not_asked_for(self):
        with server() as srv:
            r = https(srv, '/cgi-bin/env.cgi', *ALICE)
            self.assertIn('HTTPS=on\n', env_of(r.stdout))
            self.assertNotIn('SSL_CLIENT_', env_of(r.stdout))

    def test_a_vhost_requires_certificates_the_default_does_not(self):
        vh = '''vhosts = ( { names = [ "other.test" ]; root = "@DOCROOT@";
  tls = { certificate = "%s"; key = "%s"; %s }; } );''' % (
            p('other.crt'), p('other.key'), CLIENT_REQUIRED)
        with server('', vh) as srv:
            self.assertEqual(https(srv, '/index.html').stdout, b'hello\n')
            r = https(srv, '/index.html', name='other.test')
            self.assertNotEqual(r.returncode, 0)
            r = https(srv, '/index.html', *ALICE, name='other.test')
            self.assertEqual(r.stdout, b'hello\n', r.stderr)
            # no certificate, SNI of the open default, Host of the vhost
            # that requires one: its rules never ran, so 421, not the file
            r = https(srv, '/index.html', '-D', '-', '-H', 'Host: other.test')
            self.assertIn(b' 421 ', r.stdout.split(b'\r\n')[0], r.stdout)
            self.assertNotIn(b'hello', r.stdout)

    def test_a_session_of_the_open_default_does_not_resume_into_the_vhost(self):
        # a session made without a certificate under the default's rules,
        # offered with the SNI of the vhost that requires one: no request
        # may reach that vhost without a certificate (a full handshake,
        # which then fails, or at most a 421 from the Host check)
        vh = '''vhosts = ( { names = [ "other.test" ]; root = "@DOCROOT@";
  tls = { certificate = "%s"; key = "%s"; %s }; } );''' % (
            p('other.crt'), p('other.key'), CLIENT_REQUIRED)
        sess = os.path.join(D, 'sess.pem')
        with server('', vh) as srv:
            base = ['openssl', 's_client', '-connect', '127.0.0.1:%d' % srv.port,
                    '-CAfile', p('ca.crt'), '-tls1_2', '-ign_eof']
            first = subprocess.run(base + ['-servername', 'localhost', '-sess_out', sess],
                                   input=b'GET /index.html HTTP/1.1\r\nHost: localhost\r\n'
                                   b'Connection: close\r\n\r\n', stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30)
            self.assertIn(b'hello', first.stdout)
            second = subprocess.run(base + ['-servername', 'other.test', '-sess_in', sess],
                                    input=b'GET /index.html HTTP/1.1\r\nHost: other.test\r\n'
                                    b'Connection: close\r\n\r\n', stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, timeout=30)
            out = second.stdout
            self.assertNotIn(b'\r\n\r\nhello', out, out[-1500:])
            self.assertNotIn(b'HTTP/1.1 200', out, out[-1500:])
            # it may resume (tickets are shared), but then meets the 421
            if b'Reused,' in out:
                self.assertIn(b'HTTP/1.1 421 ', out, out[-1500:])

    def test_verify_client_without_client_ca_is_a_config_error(self):
        conf = os.path.join(D, 'noca.conf')
        with open(conf, 'w') as f:
            f.write('tls_listen = [ "127.0.0.1:8443" ]; root = "%s";\n'
                    'tls = { certificate = "%s"; key = "%s"; verify_client = "required"; };\n'
                    % (D, p('srv.crt'), p('srv.key')))
        r = subprocess.run([harness.PORTICO, '-t', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'tls.verify_client needs tls.client_ca', r.stderr)


class RedirectToHttps(unittest.TestCase):
    def test_return_http_redirects_plain_requests_and_serves_https_ones(self):
        plain = harness.free_port()
        with server(extra_conf='listen = [ "127.0.0.1:%d" ];\n'
                    'return_http = "301 https://$host:@PORT@$request_uri";' % plain) as srv:
            r = harness.curl('-D', '-', '-H', 'Host: localhost:%d' % plain,
                             'http://127.0.0.1:%d/a/b?c=d' % plain)
            head = r.stdout.partition(b'\r\n\r\n')[0].lower()
            self.assertIn(b' 301 ', head.split(b'\r\n')[0], r.stdout)
            self.assertIn(b'\r\nlocation: https://localhost:%d/a/b?c=d' % srv.port, head)
            # followed, it ends at the file over https (no loop)
            r = harness.curl('-L', '--cacert', p('ca.crt'), '--resolve',
                             'localhost:%d:127.0.0.1' % srv.port, '--resolve',
                             'localhost:%d:127.0.0.1' % plain,
                             'http://localhost:%d/index.html' % plain)
            self.assertEqual(r.stdout, b'hello\n', r.stderr)

    def test_return_and_return_http_together_are_an_error(self):
        conf = os.path.join(D, 'both.conf')
        with open(conf, 'w') as f:
            f.write('listen = [ "127.0.0.1:8080" ]; root = "%s";\n'
                    'return = "404"; return_http = "301 https://$host$request_uri";\n' % D)
        r = subprocess.run([harness.PORTICO, '-t', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b'return and return_http', r.stderr)


TESTSSL = shutil.which('testssl') or shutil.which('testssl.sh')


@unittest.skipUnless(TESTSSL, 'testssl.sh is not installed (Debian package testssl.sh)')
class HandshakeCounters(unittest.TestCase):
    def test_status_counts_full_resumed_and_failed_handshakes(self):
        import socket
        import ssl
        run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
            '-nodes', '-keyout', p('hs.key'), '-out', p('hs.crt'), '-days', '30',
            '-subj', '/CN=localhost')
        tport = harness.free_port()
        srv = harness.Server('--tls', '127.0.0.1:%d' % tport, '--cert', p('hs.crt'),
                             '--key', p('hs.key'), '--status', '/status')
        srv.write_file('index.html', 'hi\n')
        srv.start()
        self.addCleanup(srv.stop)

        def counters():
            st, _, body = harness.request(srv.port, 'GET', '/status?format=json')
            self.assertEqual(st, 200)
            return json.loads(body)['tls_handshakes']

        self.assertEqual(counters(), {'full': 0, 'resumed': 0, 'failed': 0})

        ctxs = {}
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            ctx = ctxs[version] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ctx.maximum_version = version

        def fetch(version, session=None):
            ctx = ctxs[version]
            with ctx.wrap_socket(socket.create_connection(('127.0.0.1', tport), timeout=30),
                                 server_hostname='localhost', session=session) as s:
                s.sendall(b'GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n')
                r = harness.read_response(s)
                self.assertEqual(r.body, b'hi\n')
                return s.session, s.session_reused

        fetch(ssl.TLSVersion.TLSv1_3)
        sess, _ = fetch(ssl.TLSVersion.TLSv1_2)
        _, reused = fetch(ssl.TLSVersion.TLSv1_2, sess)
        self.assertTrue(reused)
        # a broken ClientHello, a byte that starts no TLS record, and a
        # client that leaves mid-handshake: three failures
        for junk in (b'\x16\x03\x01\x00\x05hello', b'\x00\x01\x02',
                     b'\x16\x03\x01\x02\x00\x01'):
            with socket.create_connection(('127.0.0.1', tport), timeout=30) as s:
                s.sendall(junk)
                if junk.endswith(b'\x01'):
                    s.shutdown(socket.SHUT_WR)
                harness.recv_until_close(s, 30)
        # plain HTTP on the TLS port is no handshake at all
        with socket.create_connection(('127.0.0.1', tport), timeout=30) as s:
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertIn(b' 400 ', harness.recv_until_close(s, 30)[0])
        self.assertEqual(counters(), {'full': 2, 'resumed': 1, 'failed': 3})
        _, _, text = harness.request(srv.port, 'GET', '/status')
        self.assertIn(b'tls handshakes: full 2, resumed 1, failed 3', text)
        _, _, prom = harness.request(srv.port, 'GET', '/status?format=prometheus')
        self.assertIn(b'portico_tls_handshakes_total{result="failed"} 3', prom)


class TestSsl(unittest.TestCase):
    def test_default_settings_pass_testssl(self):
        # the bar: no protocol below TLS 1.2, no weak cipher, no
        # vulnerability it tests for reported; an ECDSA and an RSA
        # certificate so that the RSA-only checks (ROBOT...) run too.
        # Protocols, cipher categories, vulnerabilities: ~20 s, no network
        out = os.path.join(D, 'testssl.json')
        run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('rsa.key'),
            '-out', p('rsa.crt'), '-days', '30', '-subj', '/CN=localhost',
            '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost')
        with harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', p('srv.crt'), '--key',
                            p('srv.key'), '--cert', p('rsa.crt'), '--key', p('rsa.key'),
                            listen=[]) as srv:
            srv.write_file('index.html', 'hello\n')
            if os.path.exists(out):
                os.unlink(out)
            r = subprocess.run([TESTSSL, '-p', '-s', '-U', '--quiet', '--color', '0',
                                '--warnings', 'off', '--jsonfile', out,
                                '127.0.0.1:%d' % srv.port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
            self.assertTrue(os.path.exists(out), r.stdout[-2000:])
            with open(out) as f:
                found = {x['id']: x for x in json.load(f)}
        for proto in ('SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'):
            self.assertEqual(found[proto]['finding'], 'not offered', proto)
        self.assertIn('offered', found['TLS1_2']['finding'])
        self.assertIn('offered', found['TLS1_3']['finding'])
        for weak in ('NULL', 'aNULL', 'EXPORT', 'LOW', '3DES_IDEA', 'AVERAGE'):
            self.assertEqual(found['cipherlist_' + weak]['finding'], 'not offered', weak)
        for vuln in ('heartbleed', 'CCS', 'ticketbleed', 'ROBOT', 'secure_client_renego',
                     'CRIME_TLS', 'BREACH', 'POODLE_SSL', 'fallback_SCSV', 'SWEET32', 'FREAK',
                     'DROWN', 'LOGJAM', 'BEAST', 'LUCKY13', 'RC4'):
            self.assertIn(vuln, found)
        bad = ['%s: %s %s' % (k, x['severity'], x['finding']) for k, x in found.items()
               if x['severity'] in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL') or
               'VULNERABLE' in x['finding'].upper().replace('NOT VULNERABLE', '')]
        self.assertEqual(bad, [])


if __name__ == '__main__':
    harness.main()
