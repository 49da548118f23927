"""t_phases2.py: the router's second increment: alias and index files for
gateway directories, over real sockets.

Covered: alias for a static prefix location (files, the alias directory
itself, its index, a subdirectory's 301, a symlink out of the alias
directory -> 404 under follow_symlinks = false, ".." and "%2e%2e" escapes
that cannot leave it, "/prefixX" that is not under an alias without a
trailing slash); alias for a CGI directory (SCRIPT_NAME keeps the URL
prefix, SCRIPT_FILENAME and DOCUMENT_ROOT are the alias's) and for PHP-FPM;
a ".php" extension location under a static prefix with alias or root
(the script found there, as Nagios' /nagios4/side.php needs);
index.php of a FastCGI "dir" location (phpMyAdmin's "/phpmyadmin/");
try_files WordPress-style in front of PHP-FPM (REQUEST_URI kept,
QUERY_STRING as given, POST body kept, real files and directories served,
"=404", a redirect loop ending in 500, a CGI local redirect whose target
meets try_files); error_page for 404 (static), 403 (access), 502/503 (a
FastCGI backend that is down) with the status kept, HEAD, POST getting the
plain page, a missing page giving the plain page (no loop); add_header on
static, gateway and error responses with and without add_header_always;
configuration mistakes with file:line.
Nothing asserts on timings."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402


def get(port, target, headers=(), method='GET', body=None, timeout=30):
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        hdrs = ''.join('%s: %s\r\n' % kv for kv in headers)
        if body is not None:
            hdrs += 'Content-Length: %d\r\n' % len(body)
        s.sendall(('%s %s HTTP/1.1\r\nHost: example.test\r\n%sConnection: close\r\n\r\n' %
                   (method, target, hdrs)).encode() + (body or b''))
        data, _closed = harness.recv_until_close(s, timeout)
    finally:
        s.close()
    r = harness.read_response(data, method)
    r.raw = data
    return r


ENV_CGI = r'''#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "SCRIPT_NAME=$SCRIPT_NAME"
echo "SCRIPT_FILENAME=$SCRIPT_FILENAME"
echo "DOCUMENT_ROOT=$DOCUMENT_ROOT"
echo "PATH_INFO=$PATH_INFO"
echo "REQUEST_URI=$REQUEST_URI"
'''

FRONT_PHP = '''<?php
header('Content-Type: application/json');
echo json_encode(array(
  'REQUEST_URI' => $_SERVER['REQUEST_URI'] ?? null,
  'QUERY_STRING' => $_SERVER['QUERY_STRING'] ?? null,
  'SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'] ?? null,
  'SCRIPT_FILENAME' => $_SERVER['SCRIPT_FILENAME'] ?? null,
  'DOCUMENT_ROOT' => $_SERVER['DOCUMENT_ROOT'] ?? null,
  'METHOD' => $_SERVER['REQUEST_METHOD'] ?? null,
  'WHO' => basename(__FILE__),
  'BODY' => file_get_contents('php://input'),
));
'''


def env_lines(text):
    return dict(line.split('=', 1) for line in text.splitlines() if '=' in line)


class Alias(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-alias-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.css = os.path.join(cls.base, 'share', 'cgit')
        os.makedirs(os.path.join(cls.css, 'sub'))
        with open(os.path.join(cls.css, 'cgit.css'), 'w') as f:
            f.write('body { color: red }\n')
        with open(os.path.join(cls.css, 'index.html'), 'w') as f:
            f.write('alias index\n')
        with open(os.path.join(cls.base, 'share', 'secret.txt'), 'w') as f:
            f.write('SECRET next to the alias\n')
        os.symlink(os.path.join(cls.base, 'share', 'secret.txt'),
                   os.path.join(cls.css, 'out.txt'))
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.makedirs(cls.cgi)
        p = os.path.join(cls.cgi, 'env.cgi')
        with open(p, 'w') as f:
            f.write(ENV_CGI)
        os.chmod(p, 0o755)
        conf = '''
follow_symlinks = false;
locations = (
  { prefix = "/cgit-css/"; alias = "%(css)s/"; },
  { prefix = "/icons"; alias = "%(css)s"; },
  { prefix = "/scripts/"; handler = "cgi"; alias = "%(cgi)s"; }
);
''' % {'css': cls.css, 'cgi': cls.cgi}
        harness.start_class_server(cls, conf=conf)
        cls.srv.write_file('cgit-css/cgit.css', 'FROM THE ROOT\n')
        cls.srv.write_file('iconsX/f.txt', 'root iconsX\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_static_file_under_the_alias(self):
        r = get(self.port, '/cgit-css/cgit.css')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'body { color: red }\n')
        r = get(self.port, '/icons/cgit.css')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'body { color: red }\n')

    def test_directory_index_and_slash_redirect(self):
        r = get(self.port, '/cgit-css/')
        self.assertEqual((r.status, r.body), (200, b'alias index\n'))
        self.assertEqual(get(self.port, '/icons').status, 301)
        r = get(self.port, '/icons/')
        self.assertEqual((r.status, r.body), (200, b'alias index\n'))
        r = get(self.port, '/cgit-css/sub')
        self.assertEqual(r.status, 301)
        self.assertTrue(r.header('Location').endswith('/cgit-css/sub/'), r.header('Location'))

    def test_symlink_out_of_the_alias_is_404(self):
        r = get(self.port, '/cgit-css/out.txt')
        self.assertEqual(r.status, 404)
        self.assertNotIn(b'SECRET', r.raw)

    def test_dot_dot_cannot_escape(self):
        for t in ('/cgit-css/../share/secret.txt', '/cgit-css/%2e%2e/secret.txt',
                  '/cgit-css/..%2fsecret.txt', '/icons/../secret.txt', '/icons..%2fsecret.txt',
                  '/cgit-css/sub/../../secret.txt'):
            r = get(self.port, t)
            self.assertNotIn(b'SECRET', r.raw, t)
            self.assertIn(r.status, (400, 404), t)

    def test_prefix_without_slash_does_not_glue_segments(self):
        # "/iconsX/f.txt" would be "<alias>X/f.txt" with a naive join
        r = get(self.port, '/iconsX/f.txt')
        self.assertEqual(r.status, 404)

    def test_cgi_alias_variables(self):
        r = get(self.port, '/scripts/env.cgi/extra?q=1')
        self.assertEqual(r.status, 200, r.raw)
        e = env_lines(r.body.decode())
        self.assertEqual(e['SCRIPT_NAME'], '/scripts/env.cgi')
        self.assertEqual(e['SCRIPT_FILENAME'], os.path.join(self.cgi, 'env.cgi'))
        self.assertEqual(e['DOCUMENT_ROOT'], self.cgi)
        self.assertEqual(e['PATH_INFO'], '/extra')
        self.assertEqual(e['REQUEST_URI'], '/scripts/env.cgi/extra?q=1')


@phpfpm.skip_unless_php_fpm
class PhpAlias(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-phpal-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.pma = os.path.join(cls.base, 'phpmyadmin')
        os.makedirs(os.path.join(cls.pma, 'sub'))
        for rel in ('index.php', 'sub/index.php', 'front.php'):
            with open(os.path.join(cls.pma, rel), 'w') as f:
                f.write(FRONT_PHP)
        os.chmod(cls.base, 0o755)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www')])
        cls.fpm.start()
        cls.addClassCleanup(cls.fpm.stop)
        conf = '''
index = [ "index.php", "index.html" ];
backends = ( { name = "php"; servers = ( "%(addr)s" ); } );
locations = (
  { prefix = "/phpmyadmin/"; handler = "fastcgi"; backend = "php"; alias = "%(pma)s"; },
  { prefix = "/pma-dir/"; handler = "fastcgi"; backend = "php"; dir = "%(pma)s"; },
  { prefix = "/nagios4/"; alias = "%(pma)s"; },
  { prefix = "/rooted/"; root = "%(base)s"; },
  { extension = ".php"; handler = "fastcgi"; backend = "php"; }
);
''' % {'addr': cls.fpm.pools[0].address, 'pma': cls.pma, 'base': cls.base}
        os.makedirs(os.path.join(cls.base, 'rooted'))
        with open(os.path.join(cls.base, 'rooted', 'r.php'), 'w') as f:
            f.write(FRONT_PHP)
        harness.start_class_server(cls, conf=conf)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def php(self, target):
        r = get(self.port, target)
        self.assertEqual(r.status, 200, r.raw)
        return json.loads(r.body)

    def test_aliased_script(self):
        j = self.php('/phpmyadmin/front.php?x=1')
        self.assertEqual(j['SCRIPT_NAME'], '/phpmyadmin/front.php')
        self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.pma, 'front.php'))
        self.assertEqual(j['DOCUMENT_ROOT'], self.pma)
        self.assertEqual(j['REQUEST_URI'], '/phpmyadmin/front.php?x=1')

    def test_directory_serves_index_php(self):
        for pfx in ('/phpmyadmin/', '/pma-dir/'):
            j = self.php(pfx)
            self.assertEqual(j['SCRIPT_NAME'], pfx + 'index.php')
            self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.pma, 'index.php'))
            self.assertEqual(j['REQUEST_URI'], pfx)
            j = self.php(pfx + 'sub/?a=b')
            self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.pma, 'sub', 'index.php'))
            self.assertEqual(j['QUERY_STRING'], 'a=b')

    def test_extension_location_under_a_static_alias(self):
        # Nagios' /nagios4/side.php: the .php location finds the script
        # where the static prefix's alias maps the path (lighttpd's
        # alias.url, Apache's Alias), not beneath the document root
        j = self.php('/nagios4/front.php/x?y=1')
        self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.pma, 'front.php'))
        self.assertEqual(j['SCRIPT_NAME'], '/nagios4/front.php')
        self.assertEqual(j['DOCUMENT_ROOT'], self.pma)
        j = self.php('/nagios4/sub/')  # the static alias's index.php
        self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.pma, 'sub', 'index.php'))
        self.assertEqual(get(self.port, '/nagios4/nope.php').status, 404)
        # a prefix with a root of its own: the script is looked for there
        j = self.php('/rooted/r.php')
        self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.base, 'rooted', 'r.php'))
        self.assertEqual(j['DOCUMENT_ROOT'], self.base)

    def test_missing_script_is_404(self):
        self.assertEqual(get(self.port, '/phpmyadmin/nope.php').status, 404)
        self.assertEqual(get(self.port, '/phpmyadmin/../x.php').status, 404)


@phpfpm.skip_unless_php_fpm
class TryFiles(unittest.TestCase):
    """WordPress's permalinks: the file or directory if it is there, else
    /index.php with the original REQUEST_URI."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-try-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        cls.www = os.path.join(cls.base, 'www')
        for d in ('www', 'www/sub', 'www/wp-admin', 'www/strict'):
            os.makedirs(os.path.join(cls.base, d))
        files = {'index.php': FRONT_PHP, 'wp-admin/index.php': FRONT_PHP,
                 'readme.html': 'readme file\n', 'sub/index.html': 'sub index\n',
                 'strict/f.txt': 'strict file\n'}
        for rel, text in files.items():
            with open(os.path.join(cls.www, rel), 'w') as f:
                f.write(text)
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.makedirs(cls.cgi)
        p = os.path.join(cls.cgi, 'redir.cgi')
        with open(p, 'w') as f:
            f.write('#!/bin/sh\nprintf "Location: /2024/redirected?q=1\\r\\n\\r\\n"\n')
        os.chmod(p, 0o755)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www')])
        cls.fpm.start()
        cls.addClassCleanup(cls.fpm.stop)
        conf = '''
vhosts = ( { default = true; root = "%(www)s";
  index = [ "index.php", "index.html" ];
  try_files = [ "$uri", "$uri/", "/index.php?$query_string" ];
  locations = (
    { prefix = "/strict/"; try_files = [ "$uri", "=404" ]; },
    { prefix = "/loop/"; try_files = [ "$uri", "/loop/again" ]; },
    { prefix = "/cgi/"; handler = "cgi"; alias = "%(cgi)s"; },
    { extension = ".php"; handler = "fastcgi"; backend = "php"; }
  ); } );
backends = ( { name = "php"; servers = ( "%(addr)s" ); } );
''' % {'addr': cls.fpm.pools[0].address, 'www': cls.www, 'cgi': cls.cgi}
        harness.start_class_server(cls, conf=conf, docroot=False)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def front(self, target, **kw):
        r = get(self.port, target, **kw)
        self.assertEqual(r.status, 200, r.raw)
        j = json.loads(r.body)
        self.assertEqual(j['SCRIPT_NAME'], '/index.php')
        self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.www, 'index.php'))
        return j

    def test_pretty_permalink_goes_to_the_front_controller(self):
        j = self.front('/2024/01/post/')
        self.assertEqual(j['REQUEST_URI'], '/2024/01/post/')
        self.assertEqual(j['QUERY_STRING'], '')

    def test_query_string_as_given(self):
        j = self.front('/wp-json/x?a=1&b=%20')
        self.assertEqual(j['REQUEST_URI'], '/wp-json/x?a=1&b=%20')
        self.assertEqual(j['QUERY_STRING'], 'a=1&b=%20')

    def test_post_keeps_method_and_body(self):
        j = self.front('/wp-json/x', method='POST', body=b'k=v')
        self.assertEqual((j['METHOD'], j['BODY']), ('POST', 'k=v'))

    def test_real_files_and_directories_stay(self):
        r = get(self.port, '/readme.html')
        self.assertEqual((r.status, r.body), (200, b'readme file\n'))
        r = get(self.port, '/sub/')
        self.assertEqual((r.status, r.body), (200, b'sub index\n'))
        j = json.loads(get(self.port, '/wp-admin/').body)
        self.assertEqual(j['SCRIPT_NAME'], '/wp-admin/index.php')

    def test_missing_script_goes_to_the_front_controller(self):
        j = self.front('/nope.php?x')
        self.assertEqual(j['REQUEST_URI'], '/nope.php?x')

    def test_cgi_local_redirect_then_try_files(self):
        # a CGI local redirect is a new GET whose REQUEST_URI is its target;
        # that target meets try_files like any request
        j = self.front('/cgi/redir.cgi')
        self.assertEqual(j['REQUEST_URI'], '/2024/redirected?q=1')
        self.assertEqual(j['QUERY_STRING'], 'q=1')

    def test_status_fallback(self):
        self.assertEqual(get(self.port, '/strict/f.txt').status, 200)
        self.assertEqual(get(self.port, '/strict/nope').status, 404)

    def test_redirect_loop_ends(self):
        self.assertEqual(get(self.port, '/loop/x').status, 500)
        self.assertTrue(self.srv.wait_for_log(r'more than 10 internal redirects'))


class ErrorPagesAndHeaders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-errp-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.makedirs(cls.cgi)
        p = os.path.join(cls.cgi, 'env.cgi')
        with open(p, 'w') as f:
            f.write(ENV_CGI)
        os.chmod(p, 0o755)
        down = harness.free_port()
        conf = '''
error_page = [ "404 /errors/404.html", "403 /errors/403.html", "502 503 504 /errors/50x.html" ];
add_header = [ "X-Content-Type-Options: nosniff", "Strict-Transport-Security: max-age=63072000" ];
backends = ( { name = "down"; servers = ( "127.0.0.1:%(down)d" ); } );
locations = (
  { prefix = "/denied/"; access = [ "deny all" ]; },
  { prefix = "/down/"; handler = "fastcgi"; backend = "down"; program = "%(cgi)s/env.cgi"; },
  { prefix = "/loop/"; error_page = [ "404 /loop/missing.html" ]; },
  { prefix = "/always/"; add_header = [ "X-Always: yes" ]; add_header_always = true;
    error_page = [ "404 /always/404.html" ]; },
  { prefix = "/cgi/"; handler = "cgi"; alias = "%(cgi)s"; }
);
''' % {'down': down, 'cgi': cls.cgi}
        harness.start_class_server(cls, conf=conf)
        cls.srv.write_file('errors/404.html', 'custom 404 page\n')
        cls.srv.write_file('errors/403.html', 'custom 403 page\n')
        cls.srv.write_file('errors/50x.html', 'custom 50x page\n')
        cls.srv.write_file('f.txt', 'a file\n')
        cls.srv.write_file('always/f.txt', 'always file\n')
        cls.srv.write_file('always/404.html', 'always 404\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_404_from_static_keeps_the_status(self):
        r = get(self.port, '/nope.html')
        self.assertEqual((r.status, r.body), (404, b'custom 404 page\n'))
        r = get(self.port, '/nope.html', method='HEAD')
        self.assertEqual((r.status, r.body), (404, b''))
        self.assertEqual(r.header('Content-Length'), str(len('custom 404 page\n')))

    def test_403_from_access_rules(self):
        r = get(self.port, '/denied/x')
        self.assertEqual((r.status, r.body), (403, b'custom 403 page\n'))

    def test_502_from_a_backend_that_is_down(self):
        # 502 when the connection is refused; 503 once the server is held
        # down (max_fails): the page covers both, the status stays
        r = get(self.port, '/down/x')
        self.assertIn(r.status, (502, 503))
        self.assertEqual(r.body, b'custom 50x page\n')
        self.assertIsNone(r.header('X-Content-Type-Options'))

    def test_post_gets_the_plain_page(self):
        r = get(self.port, '/down/x', method='POST', body=b'a=b')
        self.assertIn(r.status, (502, 503))
        self.assertNotIn(b'custom', r.body)
        self.assertIn(b'<h1>%d ' % r.status, r.body)

    def test_missing_error_page_gives_the_plain_page(self):
        r = get(self.port, '/loop/x')
        self.assertEqual(r.status, 404)
        self.assertIn(b'404 Not Found', r.body)

    def test_error_page_itself_is_200(self):
        r = get(self.port, '/errors/404.html')
        self.assertEqual((r.status, r.body), (200, b'custom 404 page\n'))

    def test_add_header_on_static_and_gateway(self):
        for t in ('/f.txt', '/cgi/env.cgi'):
            r = get(self.port, t)
            self.assertEqual(r.status, 200, t)
            self.assertEqual(r.header('X-Content-Type-Options'), 'nosniff', t)
            self.assertEqual(r.header('Strict-Transport-Security'), 'max-age=63072000', t)

    def test_add_header_not_on_errors_without_always(self):
        r = get(self.port, '/nope.html')
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header('X-Content-Type-Options'))

    def test_add_header_always(self):
        r = get(self.port, '/always/nope')
        self.assertEqual((r.status, r.body), (404, b'always 404\n'))
        self.assertEqual(r.header('X-Always'), 'yes')
        r = get(self.port, '/always/f.txt')
        self.assertEqual((r.status, r.header('X-Always')), (200, 'yes'))
        # a location's own list replaces the inherited one as a whole
        self.assertIsNone(r.header('X-Content-Type-Options'))


class ConfigErrors(unittest.TestCase):
    def check(self, conf, needle):
        d = tempfile.mkdtemp(prefix='portico-phases2-')
        self.addCleanup(shutil.rmtree, d, True)
        os.mkdir(os.path.join(d, 'a'))
        p = os.path.join(d, 'p.conf')
        with open(p, 'w') as f:
            f.write(harness.root_user('root = "%s";\n%s' % (d, conf.replace('@D@', d))))
        r = subprocess.run([harness.PORTICO, '-t', '-c', p], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = r.stdout.decode()
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn(needle, out)

    def test_alias_mistakes(self):
        self.check('locations = ( {\n extension = ".x"; alias = "@D@/a"; } );\n',
                   'p.conf:3: \'alias\' only applies to prefix locations')
        self.check('locations = ( { prefix = "/a/";\n alias = "@D@/a"; root = "@D@"; } );\n',
                   'p.conf:3: a location takes \'root\' or \'alias\'')
        self.check('locations = ( { prefix = "/a/"; handler = "cgi";\n alias = "@D@/a"; '
                   'dir = "@D@/a"; } );\n', "p.conf:3: a location takes 'alias' or 'dir'")
        self.check('locations = ( { prefix = "/a/";\n alias = "@D@/nope"; } );\n', 'p.conf:3: alias')

    def test_phase_mistakes(self):
        self.check('try_files = [\n "$uri" ];\n', 'p.conf:2: try_files needs')
        self.check('try_files = [ "$uri",\n "$nope", "/i.php" ];\n', 'p.conf:3: try_files')
        self.check('try_files = [ "$uri",\n "=99" ];\n', 'p.conf:3: try_files')
        self.check('error_page = [\n "404" ];\n', 'p.conf:3: error_page')
        self.check('error_page = [\n "200 /x.html" ];\n', 'p.conf:3: error_page')
        self.check('add_header = [\n "Bad Name: x" ];\n', 'p.conf:3: add_header')
        self.check('add_header = [\n "X-A: one\\r\\nX-B: two" ];\n', 'p.conf:3: add_header')
        self.check('add_header = [\n "Content-Length: 5" ];\n', 'p.conf:3: add_header')
        self.check('add_header_always = true;\n', 'needs add_header')


if __name__ == '__main__':
    harness.main()
