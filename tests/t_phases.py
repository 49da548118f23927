#!/usr/bin/python3
"""t_phases.py: the router's request phases (access rules, HTTP Basic
authentication, return) over real sockets.

Covered: allow/deny lists with IPv4 CIDR blocks (clients bound to 127.0.0.2
and 127.0.0.3), IPv6 over ::1, IPv4 clients of a dual-stack listener matched
by IPv4 rules, "all", first match wins, inheritance (top level -> location),
the 403 log line naming the rule; a .php file under a denied or protected
prefix never reaching PHP-FPM (its access log); Basic authentication against
htpasswd files made by the real htpasswd (-B, -m, -s, -2, -5) and mkpasswd
(sha-512, yescrypt); 401 with WWW-Authenticate for a wrong password, an
unknown user and no credentials; REMOTE_USER and AUTH_TYPE for CGI and
PHP-FPM, Authorization withheld unless pass_authorization says so; the file
edited while running; an unreadable file -> 500; return with 301/302/303/
307/308 (variables), 410 with text, 403 without, 444 (close), also under an
extension location; configuration mistakes reported with file:line.
Nothing asserts on timings: waits poll with generous timeouts."""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HTPASSWD = shutil.which('htpasswd')
MKPASSWD = shutil.which('mkpasswd')


def basic(user, pw):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, pw)).encode()).decode()


def get(port, target, headers=(), host='127.0.0.1', src=None, method='GET', timeout=30):
    """One request from an optional source address; the parsed response
    (None when the server closed without answering)."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        s.connect((host, port))
        hdrs = ''.join('%s: %s\r\n' % kv for kv in headers)
        s.sendall(('%s %s HTTP/1.1\r\nHost: example.test\r\n%sConnection: close\r\n\r\n' %
                   (method, target, hdrs)).encode())
        data, _closed = harness.recv_until_close(s, timeout)
    finally:
        s.close()
    if not data:
        return None
    r = harness.read_response(data, method)
    r.raw = data
    return r


def make_htpasswd(path):
    """Users in every format, made by the real tools; password 'pw-<user>'."""
    open(path, 'w').close()
    for user, flags in (('bc', ['-B', '-C', '5']), ('md', ['-m']), ('sha1', ['-s']),
                        ('s256', ['-2']), ('s512', ['-5'])):
        subprocess.run([HTPASSWD, '-b'] + flags + [path, user, 'pw-' + user], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(path, 'a') as f:
        for user, method in (('mk512', 'sha-512'), ('yes', 'yescrypt')):
            h = subprocess.run([MKPASSWD, '-m', method, 'pw-' + user], check=True,
                               stdout=subprocess.PIPE).stdout.decode().strip()
            f.write('%s:%s\n' % (user, h))


class Access(unittest.TestCase):
    CONF = '''
access = [ "deny 127.0.0.3" ];
locations = (
  { prefix = "/v4/"; access = [ "deny 127.0.0.2", "allow 127.0.0.0/8", "deny all" ]; },
  { prefix = "/ten/"; access = [ "allow 10.0.0.0/8", "deny all" ]; },
  { prefix = "/order/"; access = [ "allow 127.0.0.1", "deny 127.0.0.0/8", "allow all" ]; },
  { prefix = "/v6/"; access = [ "allow ::1", "deny all" ]; },
  { prefix = "/v6net/"; access = [ "deny ::/120", "allow all" ]; },
  { prefix = "/open/"; access = [ "allow all" ]; }
);
'''

    @classmethod
    def setUpClass(cls):
        cls.v6 = harness.ipv6_loopback_ok()
        harness.start_class_server(cls, conf=cls.CONF,
                                   listen=['*:@PORT@'] if cls.v6 else None)
        for d in ('v4', 'ten', 'order', 'v6', 'v6net', 'open', 'inherit'):
            cls.srv.write_file('%s/f.txt' % d, 'in %s\n' % d)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def status(self, path, src=None, host='127.0.0.1'):
        r = get(self.port, path, src=src, host=host)
        return r.status if r else None

    def test_ipv4_cidr_first_match_wins(self):
        self.assertEqual(self.status('/v4/f.txt'), 200)
        self.assertEqual(self.status('/v4/f.txt', src='127.0.0.2'), 403,
                         'deny 127.0.0.2 comes before allow 127.0.0.0/8')
        self.assertEqual(self.status('/order/f.txt'), 200, 'allow 127.0.0.1 first')
        self.assertEqual(self.status('/order/f.txt', src='127.0.0.2'), 403,
                         'then deny 127.0.0.0/8 before allow all')

    def test_outside_the_block_meets_deny_all(self):
        self.assertEqual(self.status('/ten/f.txt'), 403)
        self.assertTrue(self.srv.wait_for_log(
            r'access forbidden by rule "deny all" \(\S+portico\.conf:5\), client: 127\.0\.0\.1:'
            r'\d+, request: "GET /ten/f\.txt HTTP/1\.1"'), self.srv.stderr_text()[-2000:])

    def test_inherited_from_the_top_level_unless_replaced(self):
        self.assertEqual(self.status('/inherit/f.txt'), 200)
        self.assertEqual(self.status('/inherit/f.txt', src='127.0.0.3'), 403,
                         'a location without access inherits the top level')
        self.assertEqual(self.status('/open/f.txt', src='127.0.0.3'), 200,
                         'a location with its own list replaces it')

    def test_ipv6_and_mapped_ipv4(self):
        if not self.v6:
            self.skipTest('no IPv6 loopback')
        self.assertEqual(self.status('/v6/f.txt', host='::1'), 200)
        # an IPv4 client on the dual-stack listener is ::ffff:127.0.0.1
        # underneath: IPv4 rules see it, "allow ::1" does not
        self.assertEqual(self.status('/v6/f.txt'), 403)
        self.assertEqual(self.status('/v6net/f.txt', host='::1'), 403, '::1 is in ::/120')
        self.assertEqual(self.status('/v6net/f.txt'), 200)
        self.assertEqual(self.status('/v4/f.txt', host='::1'), 403, 'IPv6 meets deny all')
        self.assertEqual(self.status('/v4/f.txt', src='127.0.0.2'), 403,
                         'IPv4 rules match a dual-stack listener\'s IPv4 client')


class ConfigErrors(unittest.TestCase):
    def check(self, conf, needle):
        d = tempfile.mkdtemp(prefix='portico-phases-')
        self.addCleanup(shutil.rmtree, d, True)
        p = os.path.join(d, 'p.conf')
        with open(p, 'w') as f:
            f.write(harness.root_user('root = "%s";\n%s' % (d, conf)))
        r = subprocess.run([harness.PORTICO, '-t', '-c', p], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = r.stdout.decode()
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn(needle, out)

    def test_mistakes_are_errors_with_file_and_line(self):
        self.check('access = [ "allow 10.0.0.1/8" ];\n', 'p.conf:2: access rule')
        self.check('locations = ( { prefix = "/a/";\n access = [ "permit all" ]; } );\n',
                   'p.conf:3: access rule')
        self.check('return = "301";\n', 'needs a target')
        self.check('return = "418 $nope";\n', 'unknown variable')
        self.check('auth_basic = "R";\n', 'needs auth_basic_user_file')
        self.check('locations = ( { extension = ".php"; auth_basic = "off"; } );\n',
                   'only applies to a prefix location')
        self.check('auth_basic = "a\\"b"; auth_basic_user_file = "/x";\n', 'realm')


@unittest.skipUnless(HTPASSWD and MKPASSWD, 'needs htpasswd (apache2-utils) and mkpasswd (whois)')
class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-auth-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.ht = os.path.join(cls.base, 'htpasswd')
        make_htpasswd(cls.ht)
        cls.ht2 = os.path.join(cls.base, 'htpasswd2')
        with open(cls.ht2, 'w') as f:
            f.write('')
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cls.cgi)
        shutil.copyfile(os.path.join(HERE, 'cgi', 'env.cgi'), os.path.join(cls.cgi, 'env.cgi'))
        os.chmod(os.path.join(cls.cgi, 'env.cgi'), 0o755)
        conf = '''
locations = (
  { prefix = "/priv/"; auth_basic = "Private area"; auth_basic_user_file = "%(ht)s"; },
  { prefix = "/priv/open/"; auth_basic = "off"; },
  { prefix = "/edit/"; auth_basic = "Edited"; auth_basic_user_file = "%(ht2)s"; },
  { prefix = "/missing/"; auth_basic = "M"; auth_basic_user_file = "%(base)s/nope"; },
  { prefix = "/dir/"; auth_basic = "D"; auth_basic_user_file = "%(base)s"; },
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%(cgi)s";
    auth_basic = "CGI"; auth_basic_user_file = "%(ht)s"; },
  { prefix = "/cgi-pass/"; handler = "cgi"; dir = "%(cgi)s"; pass_authorization = true;
    auth_basic = "CGI"; auth_basic_user_file = "%(ht)s"; }
);
''' % {'ht': cls.ht, 'ht2': cls.ht2, 'base': cls.base, 'cgi': cls.cgi}
        harness.start_class_server(cls, conf=conf)
        for d in ('priv', 'priv/open', 'edit', 'missing', 'dir'):
            cls.srv.write_file('%s/f.txt' % d, 'secret of %s\n' % d)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def req(self, path, user=None, pw=None, method='GET'):
        h = [('Authorization', basic(user, pw))] if user is not None else []
        return get(self.port, path, headers=h, method=method)

    def assert_challenge(self, r, realm):
        self.assertEqual(r.status, 401, r.raw[:400])
        self.assertEqual(r.header('WWW-Authenticate'),
                         'Basic realm="%s", charset="UTF-8"' % realm)
        self.assertNotIn(b'secret', r.body)

    def test_every_htpasswd_format(self):
        for user in ('bc', 'md', 'sha1', 's256', 's512', 'mk512', 'yes'):
            r = self.req('/priv/f.txt', user, 'pw-' + user)
            self.assertEqual((r.status, r.body), (200, b'secret of priv\n'), user)
            # and twice (the second from the cache of verified credentials)
            self.assertEqual(self.req('/priv/f.txt', user, 'pw-' + user).status, 200, user)
            self.assert_challenge(self.req('/priv/f.txt', user, 'pw-' + user + 'x'),
                                  'Private area')

    def test_no_credentials_unknown_user_and_malformed(self):
        self.assert_challenge(self.req('/priv/f.txt'), 'Private area')
        self.assert_challenge(self.req('/priv/f.txt', 'nobody', 'pw-bc'), 'Private area')
        r = get(self.port, '/priv/f.txt', headers=[('Authorization', 'Basic !!!')])
        self.assert_challenge(r, 'Private area')
        r = get(self.port, '/priv/f.txt', headers=[('Authorization', 'Bearer abc')])
        self.assert_challenge(r, 'Private area')
        self.assertTrue(self.srv.wait_for_log(r'user "nobody" was not found in'),
                        self.srv.stderr_text()[-2000:])
        r = self.req('/priv/f.txt', method='HEAD')
        self.assertEqual(r.status, 401)

    def test_off_in_a_longer_prefix(self):
        self.assertEqual(self.req('/priv/open/f.txt').status, 200)

    def test_cgi_sees_remote_user_without_authorization(self):
        r = self.req('/cgi-bin/env.cgi', 'md', 'pw-md')
        self.assertEqual(r.status, 200, r.raw[:400])
        env = dict(kv.split('=', 1) for kv in r.body.decode().split('\0') if '=' in kv)
        self.assertEqual(env.get('REMOTE_USER'), 'md')
        self.assertEqual(env.get('AUTH_TYPE'), 'Basic')
        self.assertNotIn('HTTP_AUTHORIZATION', env)
        self.assertEqual(self.req('/cgi-bin/env.cgi').status, 401)

    def test_pass_authorization_written_passes_it(self):
        r = self.req('/cgi-pass/env.cgi', 's256', 'pw-s256')
        env = dict(kv.split('=', 1) for kv in r.body.decode().split('\0') if '=' in kv)
        self.assertEqual(env.get('REMOTE_USER'), 's256')
        self.assertEqual(env.get('HTTP_AUTHORIZATION'), basic('s256', 'pw-s256'))

    def test_file_edited_while_running(self):
        self.assert_challenge(self.req('/edit/f.txt', 'new', 'pw-new'), 'Edited')
        tmp = self.ht2 + '.tmp'
        subprocess.run([HTPASSWD, '-cbB', '-C', '5', tmp, 'new', 'pw-new'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.rename(tmp, self.ht2)
        # looked at again at most once a second: poll, no timing asserted
        ok = harness.Server.wait_for(
            lambda: self.req('/edit/f.txt', 'new', 'pw-new').status == 200, 15)
        self.assertTrue(ok, 'the edited file never took effect')
        # and a user removed is refused again
        with open(self.ht2, 'w') as f:
            f.write('# nobody\n')
        ok = harness.Server.wait_for(
            lambda: self.req('/edit/f.txt', 'new', 'pw-new').status == 401, 15)
        self.assertTrue(ok, 'the removed user was still let in')

    def test_unreadable_file_fails_closed(self):
        for path in ('/missing/f.txt', '/dir/f.txt'):
            r = self.req(path, 'bc', 'pw-bc')
            self.assertEqual(r.status, 500, path)
            self.assertNotIn(b'secret', r.body)
        self.assertTrue(self.srv.wait_for_log(r'auth_basic_user_file "\S+/nope": cannot open'),
                        self.srv.stderr_text()[-2000:])


@unittest.skipUnless(HTPASSWD, 'needs htpasswd (apache2-utils)')
class SlowHash(unittest.TestCase):
    """A bcrypt verification (cost 13: about half a second) runs on the
    worker's helper thread: the one worker (-w 1) answers another client
    meanwhile. Ordering only: B's response is complete while A's has not
    begun; a worker that verified in its loop would answer A first."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-slow-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        ht = os.path.join(cls.base, 'htpasswd')
        subprocess.run([HTPASSWD, '-cbB', '-C', '13', ht, 'slow', 'pw-slow'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conf = ('locations = ( { prefix = "/slow/"; auth_basic = "S"; '
                'auth_basic_user_file = "%s"; } );\n' % ht)
        harness.start_class_server(cls, conf=conf, workers=1)
        cls.srv.write_file('slow/f.txt', 'slow secret\n')
        cls.srv.write_file('pub.txt', 'public\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def send(self, path, headers=()):
        s = harness.connect(self.port, timeout=60)
        hdrs = ''.join('%s: %s\r\n' % kv for kv in headers)
        s.sendall(('GET %s HTTP/1.1\r\nHost: a\r\n%sConnection: close\r\n\r\n' %
                   (path, hdrs)).encode())
        return s

    def test_other_clients_answered_during_a_verification(self):
        for attempt in range(3):
            # a wrong password: never cached, so every attempt verifies anew
            a = self.send('/slow/f.txt', [('Authorization', basic('slow', 'wrong%d' % attempt))])
            time.sleep(0.1)  # let the worker read A first (else B first proves nothing)
            b = self.send('/pub.txt')
            data_b, _ = harness.recv_until_close(b, 60)
            b.close()
            a.setblocking(False)
            try:
                early = a.recv(1)
            except BlockingIOError:
                early = b''
            a.setblocking(True)
            a.settimeout(60)
            data_a, _ = harness.recv_until_close(a, 60)
            a.close()
            self.assertTrue(data_b.startswith(b'HTTP/1.1 200'), data_b[:200])
            self.assertTrue((early + data_a).startswith(b'HTTP/1.1 401'), (early + data_a)[:200])
            if early == b'':
                return
        self.fail('A was answered before B three times: the loop waited for bcrypt')

    def test_right_password_then_cached(self):
        for _ in range(2):
            r = get(self.port, '/slow/f.txt', headers=[('Authorization', basic('slow', 'pw-slow'))])
            self.assertEqual((r.status, r.body), (200, b'slow secret\n'))

    def test_client_gone_during_a_verification(self):
        s = self.send('/slow/f.txt', [('Authorization', basic('slow', 'gone'))])
        s.close()
        # the worker drops the answer nobody wants and goes on
        r = get(self.port, '/slow/f.txt', headers=[('Authorization', basic('slow', 'gone2'))])
        self.assertEqual(r.status, 401)
        self.assertEqual(get(self.port, '/pub.txt').status, 200)
        r = get(self.port, '/slow/f.txt', method='POST',
                headers=[('Authorization', basic('slow', 'pw-slow')), ('Content-Length', '0')])
        self.assertEqual(r.status, 405, 'after the phases: the method check')


@unittest.skipUnless(HTPASSWD, 'needs htpasswd (apache2-utils)')
class AuthFlag(unittest.TestCase):
    """--auth PREFIX=HTPASSWD: no configuration file; a new prefix location,
    and one made by --cgi that it protects."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-authflag-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.ht = os.path.join(cls.base, 'ht')
        subprocess.run([HTPASSWD, '-cbB', '-C', '5', cls.ht, 'ann', 'pw-ann'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cgi)
        shutil.copyfile(os.path.join(HERE, 'cgi', 'env.cgi'), os.path.join(cgi, 'env.cgi'))
        os.chmod(os.path.join(cgi, 'env.cgi'), 0o755)
        harness.start_class_server(cls, '--cgi', '/cgi-bin/=' + cgi, '--auth', '/adm/=' + cls.ht,
                                   '--auth', '/cgi-bin/=' + cls.ht)
        cls.srv.write_file('adm/f.txt', 'adm\n')
        cls.srv.write_file('pub.txt', 'pub\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_flag_protects_a_prefix(self):
        r = get(self.port, '/adm/f.txt')
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header('WWW-Authenticate'), 'Basic realm="Restricted", charset="UTF-8"')
        r = get(self.port, '/adm/f.txt', headers=[('Authorization', basic('ann', 'pw-ann'))])
        self.assertEqual((r.status, r.body), (200, b'adm\n'))
        self.assertEqual(get(self.port, '/pub.txt').status, 200)

    def test_flag_protects_a_cgi_location(self):
        self.assertEqual(get(self.port, '/cgi-bin/env.cgi').status, 401)
        r = get(self.port, '/cgi-bin/env.cgi', headers=[('Authorization', basic('ann', 'pw-ann'))])
        self.assertEqual(r.status, 200)
        self.assertIn(b'REMOTE_USER=ann\0', r.body)

    def test_flag_mistakes(self):
        for args, needle in ((['--auth', 'adm=/x'], "expected PREFIX=HTPASSWD"),
                             (['--auth', '/a/=/x', '--auth', '/a/=/y'], 'sets auth_basic already')):
            r = subprocess.run([harness.PORTICO, '-t', '-r', self.base] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(needle, r.stdout.decode())


class Return(unittest.TestCase):
    CONF = '''
locations = (
  { prefix = "/p301/"; return = "301 https://$host$request_uri"; },
  { prefix = "/p302/"; return = "302 /elsewhere$uri"; },
  { prefix = "/p303/"; return = "303 $scheme://other.test/"; },
  { prefix = "/p307/"; return = "307 http://x.test/a b"; },
  { prefix = "/p308/"; return = "308 https://example.org$request_uri"; },
  { prefix = "/gone/"; return = "410 gone from $host"; },
  { prefix = "/no/"; return = "403"; },
  { prefix = "/ok/"; return = "200 fine"; },
  { prefix = "/drop/"; return = "444"; },
  { extension = ".cgi"; handler = "cgi"; }
);
'''

    @classmethod
    def setUpClass(cls):
        harness.start_class_server(cls, conf=cls.CONF)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_redirects(self):
        for path, st, loc in (
                ('/p301/a?b=c', 301, 'https://example.test/p301/a?b=c'),
                ('/p302/x/../y', 302, '/elsewhere/p302/y'),
                ('/p303/', 303, 'http://other.test/'),
                ('/p307/', 307, 'http://x.test/a b'.replace(' ', '%20')),
                ('/p308/q', 308, 'https://example.org/p308/q')):
            r = get(self.port, path)
            self.assertEqual((r.status, r.header('Location')), (st, loc), path)

    def test_request_uri_of_an_absolute_form_target(self):
        r = get(self.port, 'http://abs.test/p308/z?q=1')
        self.assertEqual((r.status, r.header('Location')), (308, 'https://example.org/p308/z?q=1'))

    def test_status_with_and_without_text(self):
        r = get(self.port, '/gone/x')
        self.assertEqual((r.status, r.body), (410, b'gone from example.test\n'))
        self.assertTrue(r.header('Content-Type').startswith('text/plain'))
        r = get(self.port, '/no/x')
        self.assertEqual(r.status, 403)
        self.assertIn(b'403 Forbidden', r.body)
        self.assertEqual((get(self.port, '/ok/').status, get(self.port, '/ok/').body),
                         (200, b'fine\n'))

    def test_444_closes_without_a_response(self):
        data, closed = harness.raw_closed(
            self.port, b'GET /drop/x HTTP/1.1\r\nHost: a\r\n\r\n', timeout=20)
        self.assertEqual((data, closed), (b'', True))

    def test_prefix_return_holds_under_an_extension_location(self):
        r = get(self.port, '/p308/script.cgi')
        self.assertEqual((r.status, r.header('Location')),
                         (308, 'https://example.org/p308/script.cgi'))


@phpfpm.skip_unless_php_fpm
@unittest.skipUnless(HTPASSWD, 'needs htpasswd (apache2-utils)')
class Php(unittest.TestCase):
    """A .php under a denied or protected prefix never reaches PHP-FPM."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-phases-php-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.www = os.path.join(cls.base, 'www')
        for sub in ('', 'conf', 'admin', 'front'):
            os.makedirs(os.path.join(cls.www, sub), exist_ok=True)
            for name in ('hello.php', 'env.php'):
                shutil.copyfile(os.path.join(HERE, 'fcgi', name), os.path.join(cls.www, sub, name))
        cls.ht = os.path.join(cls.base, 'htpasswd')
        subprocess.run([HTPASSWD, '-cbm', cls.ht, 'admin', 'pw-admin'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', listen='unix', max_children=4)])
        cls.addClassCleanup(cls.fpm.stop)
        cls.fpm.start()
        conf = '''
backends = ( { name = "php"; servers = ( "%(addr)s" ); } );
locations = (
  { prefix = "/conf/"; access = [ "deny all" ]; },
  { prefix = "/admin/"; auth_basic = "Admin"; auth_basic_user_file = "%(ht)s"; },
  { prefix = "/front/"; handler = "fastcgi"; backend = "php"; program = "%(www)s/env.php";
    pass_authorization = true; auth_basic = "Admin"; auth_basic_user_file = "%(ht)s"; },
  { extension = ".php"; handler = "fastcgi"; backend = "php"; }
);
''' % {'addr': cls.fpm.pool('www').address, 'ht': cls.ht, 'www': cls.www}
        harness.start_class_server(cls, conf=conf, docroot=cls.www)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def fpm_uris(self):
        return [line[3] for line in self.fpm.access_log_lines('www')]

    def assert_fpm_never_saw(self, needle):
        t = harness.tag()
        uri = '/hello.php?sync=' + t
        self.assertEqual(get(self.port, uri).status, 200)
        self.assertTrue(self.srv.wait_for(lambda: uri in self.fpm_uris(), 30),
                        'FPM access log never showed %s' % uri)
        self.assertEqual([u for u in self.fpm_uris() if needle in u], [])

    def env(self, path, headers=()):
        r = get(self.port, path, headers=headers)
        self.assertEqual(r.status, 200, r.raw[:600])
        return json.loads(r.body.decode())['server']

    def test_php_under_a_denied_prefix_never_reaches_fpm(self):
        t = harness.tag()
        r = get(self.port, '/conf/hello.php?t=' + t)
        self.assertEqual(r.status, 403, r.raw[:400])
        r = get(self.port, '/conf/env.php/x?t=' + t)
        self.assertEqual(r.status, 403, r.raw[:400])
        self.assertEqual(get(self.port, '/hello.php?t=' + t).status, 200, 'outside: runs')
        self.assert_fpm_never_saw('/conf/')

    def test_php_under_a_protected_prefix(self):
        t = harness.tag()
        r = get(self.port, '/admin/env.php?t=' + t)
        self.assertEqual(r.status, 401)
        r = get(self.port, '/admin/env.php?t=' + t, headers=[('Authorization',
                                                            basic('admin', 'wrong'))])
        self.assertEqual(r.status, 401)
        self.assert_fpm_never_saw('/admin/')
        env = self.env('/admin/env.php', [('Authorization', basic('admin', 'pw-admin'))])
        self.assertEqual((env.get('REMOTE_USER'), env.get('AUTH_TYPE')), ('admin', 'Basic'))
        self.assertNotIn('HTTP_AUTHORIZATION', env, 'portico checked it: withheld')
        # without portico's check, FastCGI passes Authorization as before
        env = self.env('/env.php', [('Authorization', basic('u', 'p'))])
        self.assertEqual(env.get('HTTP_AUTHORIZATION'), basic('u', 'p'))
        self.assertNotIn('REMOTE_USER', env)

    def test_pass_authorization_written(self):
        env = self.env('/front/x', [('Authorization', basic('admin', 'pw-admin'))])
        self.assertEqual(env.get('REMOTE_USER'), 'admin')
        self.assertEqual(env.get('HTTP_AUTHORIZATION'), basic('admin', 'pw-admin'))


if __name__ == '__main__':
    harness.main()
