"""t_phases2.py: the router's second increment: alias and index files for
gateway directories, over real sockets.

Covered: alias for a static prefix location (files, the alias directory
itself, its index, a subdirectory's 301, a symlink out of the alias
directory -> 404 under follow_symlinks = false, ".." and "%2e%2e" escapes
that cannot leave it, "/prefixX" that is not under an alias without a
trailing slash); alias for a CGI directory (SCRIPT_NAME keeps the URL
prefix, SCRIPT_FILENAME and DOCUMENT_ROOT are the alias's) and for PHP-FPM;
index.php of a FastCGI "dir" location (phpMyAdmin's "/phpmyadmin/");
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
  { prefix = "/pma-dir/"; handler = "fastcgi"; backend = "php"; dir = "%(pma)s"; }
);
''' % {'addr': cls.fpm.pools[0].address, 'pma': cls.pma}
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

    def test_missing_script_is_404(self):
        self.assertEqual(get(self.port, '/phpmyadmin/nope.php').status, 404)
        self.assertEqual(get(self.port, '/phpmyadmin/../x.php').status, 404)


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


if __name__ == '__main__':
    harness.main()
