"""t_inherit.py: option inheritance (location <- vhost <- top level) is
resolved when the configuration is loaded, so a reload that changes a
top-level value reaches every location that does not set its own, and
leaves alone those that do."""

import base64
import hashlib
import http.client
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

CONF = '''
workers = 1;
listen = [ "127.0.0.1:@PORT@" ];
root = "@ROOT@";
dir_listing = @TOP@;
allow_dotfiles = @TOP@;
locations = (
  { prefix = "/pub/"; },
  { prefix = "/own/"; dir_listing = false; allow_dotfiles = false; }
);
'''


class Inherit(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(conf='# filled below', docroot=False, workers=None, listen=[])
        self.root = os.path.join(self.srv.tmpdir, 'www')
        for d in ('pub', 'own', 'top'):
            os.makedirs(os.path.join(self.root, d))
            with open(os.path.join(self.root, d, 'file.txt'), 'w') as f:
                f.write('in %s\n' % d)
            with open(os.path.join(self.root, d, '.env'), 'w') as f:
                f.write('secret of %s\n' % d)
        self.srv.conf = self.text('false')
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def text(self, top):
        return CONF.replace('@ROOT@', self.root).replace('@TOP@', top)

    def get(self, path):
        c = http.client.HTTPConnection('127.0.0.1', self.srv.port, timeout=30)
        try:
            c.request('GET', path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def test_reload_of_a_top_level_value_reaches_locations_that_do_not_set_it(self):
        # generation one: listing and dotfiles off everywhere
        for d in ('/pub/', '/own/', '/top/'):
            self.assertNotEqual(self.get(d)[0], 200, d)
            self.assertEqual(self.get(d + '.env')[0], 404, d)
            self.assertEqual(self.get(d + 'file.txt')[0], 200, d)
        old = set(self.srv.worker_pids())
        with open(self.srv.conf_path, 'w') as f:
            f.write(harness.root_user(self.text('true').replace('@PORT@', str(self.srv.port))))
        self.srv.signal(signal.SIGHUP)
        # the old worker may answer a while longer: wait until it is gone
        self.assertTrue(harness.Server.wait_for(
            lambda: old and not (old & set(self.srv.worker_pids())) and self.srv.worker_pids(),
            timeout=60), self.srv.stderr_text()[-2000:])
        # the silent prefix and the implicit "/" take the new top-level value
        for d in ('/pub/', '/top/'):
            st, body = self.get(d)
            self.assertEqual(st, 200, d)
            self.assertIn(b'file.txt', body)
            self.assertEqual(self.get(d + '.env'), (200, ('secret of %s\n' % d[1:-1]).encode()))
        # the location that says false keeps saying it
        self.assertNotEqual(self.get('/own/')[0], 200)
        self.assertEqual(self.get('/own/.env')[0], 404)


ERRP_CONF = '''
locations = (
  { prefix = "/a/"; error_page = [ "404 /hidden/404.html" ]; },
  { prefix = "/hidden/"; access = [ "deny all" ]; },
  { prefix = "/b/"; error_page = [ "404 /locked/404.html" ]; },
  { prefix = "/locked/"; auth_basic = "Locked"; auth_basic_user_file = "@HT@"; },
  { prefix = "/c/"; auth_basic = "Locked"; auth_basic_user_file = "@HT@";
    error_page = [ "404 /locked/404.html" ]; },
  { prefix = "/d/"; error_page = [ "404 /open/404.html" ]; },
  { prefix = "/e/"; error_page = [ "404 /errs/404.html" ]; },
  { prefix = "/errs/"; internal = true; }
);
'''


class ErrorPages(unittest.TestCase):
    """An error page is an internal redirect: its location's access rules
    and authentication hold (as nginx runs those phases again). A page the
    client may not read is not served: the plain page, original status."""

    @classmethod
    def setUpClass(cls):
        srv = harness.Server(conf='# below')
        ht = os.path.join(srv.tmpdir, 'htpasswd')
        sha = base64.b64encode(hashlib.sha1(b'pw').digest()).decode()
        with open(ht, 'w') as f:
            f.write('alice:{SHA}%s\n' % sha)
        srv.conf = ERRP_CONF.replace('@HT@', ht)
        for d in ('hidden', 'locked', 'open', 'errs'):
            srv.write_file('%s/404.html' % d, '%s page\n' % d)
        srv.start()
        cls.srv = srv
        cls.addClassCleanup(srv.stop)
        cls.auth = {'Authorization': 'Basic ' + base64.b64encode(b'alice:pw').decode()}

    def get(self, path, headers=None):
        return harness.request(self.srv.port, 'GET', path, headers=headers)

    def test_open_error_page_is_served_with_the_original_status(self):
        st, _, body = self.get('/d/nope')
        self.assertEqual((st, body), (404, b'open page\n'))

    def test_error_page_in_an_internal_location(self):
        self.assertEqual(self.get('/errs/404.html')[0], 404)
        st, _, body = self.get('/e/nope')
        self.assertEqual((st, body), (404, b'errs page\n'))

    def test_denied_error_page_is_not_served(self):
        self.assertEqual(self.get('/hidden/404.html')[0], 403)
        st, _, body = self.get('/a/nope')
        self.assertEqual(st, 404)
        self.assertNotIn(b'hidden page', body)
        self.assertIn(b'404 Not Found', body)

    def test_protected_error_page_is_not_served_nor_asks_for_a_password(self):
        st, h, body = self.get('/b/nope')
        self.assertEqual(st, 404)
        self.assertNotIn(b'locked page', body)
        self.assertNotIn('www-authenticate', h)
        # credentials the request's own location never checked open nothing
        st, h, body = self.get('/b/nope', self.auth)
        self.assertEqual(st, 404)
        self.assertNotIn(b'locked page', body)

    def test_protected_error_page_is_served_after_the_same_authentication(self):
        self.assertEqual(self.get('/c/nope')[0], 401)
        st, _, body = self.get('/c/nope', self.auth)
        self.assertEqual((st, body), (404, b'locked page\n'))


ENV_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'SCRIPT_FILENAME=%s\\nSCRIPT_NAME=%s\\nPATH_INFO=%s\\nDOCUMENT_ROOT=%s\\nPWD=%s\\n' \\
  "$SCRIPT_FILENAME" "$SCRIPT_NAME" "$PATH_INFO" "$DOCUMENT_ROOT" "$(pwd)"
"""

RX_CONF = '''
locations = (
  { regex = "^/t/(.+\\\\.cgi)$"; handler = "cgi"; alias = "@APPS@/$1"; }
);
'''


class RegexAliasGateway(unittest.TestCase):
    """A regex location's alias with captures names a CGI script beneath
    the alias directory (nginx's alias in "location ~"), found by the same
    resolver as any script: symlink and dot-file policy, nothing after it."""

    @classmethod
    def setUpClass(cls):
        srv = harness.Server(conf='# below')
        cls.apps = os.path.realpath(os.path.join(srv.tmpdir, 'apps'))
        outside = os.path.join(srv.tmpdir, 'outside')
        for d in ('tool', '.hid', 'x'):
            os.makedirs(os.path.join(cls.apps, d))
        os.makedirs(outside)
        for p in ('tool/run.cgi', 'tool/img.png', '.hid/run.cgi', 'x/run.cgi'):
            with open(os.path.join(cls.apps, p), 'w') as f:
                f.write(ENV_CGI)
            os.chmod(os.path.join(cls.apps, p), 0o755)
        with open(os.path.join(outside, 'evil.cgi'), 'w') as f:
            f.write(ENV_CGI)
        os.chmod(os.path.join(outside, 'evil.cgi'), 0o755)
        os.symlink(os.path.join(outside, 'evil.cgi'), os.path.join(cls.apps, 'tool', 'evil.cgi'))
        srv.conf = RX_CONF.replace('@APPS@', cls.apps)
        srv.start()
        cls.srv = srv
        cls.addClassCleanup(srv.stop)

    def get(self, path):
        return harness.request(self.srv.port, 'GET', path)

    def test_script_named_by_the_captures_runs_in_the_alias_directory(self):
        st, _, body = self.get('/t/tool/run.cgi')
        self.assertEqual(st, 200, body)
        env = dict(l.split('=', 1) for l in body.decode().splitlines())
        tool = os.path.join(self.apps, 'tool')
        self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(tool, 'run.cgi'))
        self.assertEqual(env['SCRIPT_NAME'], '/t/tool/run.cgi')
        self.assertEqual(env['PATH_INFO'], '')
        self.assertEqual(env['DOCUMENT_ROOT'], self.apps)
        self.assertEqual(env['PWD'], tool)

    def test_a_file_before_the_end_of_the_name_is_not_run(self):
        # "(.+\\.cgi)" of "tool/img.png/x.cgi": img.png is no script
        st, _, body = self.get('/t/tool/img.png/x.cgi')
        self.assertEqual(st, 404)
        self.assertNotIn(b'SCRIPT_FILENAME', body)

    def test_missing_dotfile_and_escaping_symlink_are_refused(self):
        self.assertEqual(self.get('/t/tool/none.cgi')[0], 404)
        st, _, body = self.get('/t/.hid/run.cgi')
        self.assertEqual(st, 404)
        st, _, body = self.get('/t/tool/evil.cgi')
        self.assertIn(st, (403, 404))
        self.assertNotIn(b'SCRIPT_FILENAME', body)
        self.assertEqual(self.get('/t/x/run.cgi')[0], 200)


PHP = '''<?php
header('Content-Type: application/json');
echo json_encode(array('SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'] ?? null,
  'SCRIPT_FILENAME' => $_SERVER['SCRIPT_FILENAME'] ?? null,
  'DOCUMENT_ROOT' => $_SERVER['DOCUMENT_ROOT'] ?? null));
'''


@phpfpm.skip_unless_php_fpm
class RegexAliasFastCGI(unittest.TestCase):
    """The same through PHP-FPM: the captures name SCRIPT_FILENAME."""

    @classmethod
    def setUpClass(cls):
        srv = harness.Server(conf='# below')
        cls.apps = os.path.realpath(os.path.join(srv.tmpdir, 'apps'))
        os.makedirs(os.path.join(cls.apps, 'v2'))
        with open(os.path.join(cls.apps, 'v2', 'api.php'), 'w') as f:
            f.write(PHP)
        os.chmod(srv.tmpdir, 0o755)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www')])
        cls.fpm.start()
        cls.addClassCleanup(cls.fpm.stop)
        srv.conf = '''
backends = ( { name = "php"; servers = ( "%s" ); } );
locations = (
  { regex = "^/api/(v[0-9]+)/(\\\\w+)$"; handler = "fastcgi"; backend = "php";
    alias = "%s/$1/$2.php"; }
);
''' % (cls.fpm.pools[0].address, cls.apps)
        srv.start()
        cls.srv = srv
        cls.addClassCleanup(srv.stop)

    def test_captures_name_the_php_script(self):
        st, _, body = harness.request(self.srv.port, 'GET', '/api/v2/api')
        self.assertEqual(st, 200, body)
        j = json.loads(body)
        self.assertEqual(j['SCRIPT_FILENAME'], os.path.join(self.apps, 'v2', 'api.php'))
        self.assertEqual(j['SCRIPT_NAME'], '/api/v2/api')
        self.assertEqual(j['DOCUMENT_ROOT'], self.apps)
        self.assertEqual(harness.request(self.srv.port, 'GET', '/api/v3/api')[0], 404)


DIR_CONF = '''
index = [ "index.html", "index.cgi" ];
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@APPS@"; },
  { prefix = "/al/"; handler = "cgi"; alias = "@APPS@"; },
  { exact = "/al"; return = "410"; }
);
'''


class ScriptDirectories(unittest.TestCase):
    """Index files in a script directory, and its subdirectories named
    without their slash redirected to it (301) as static directories are,
    rather than a 403; the gateway prefix itself too ("/cgi-bin")."""

    @classmethod
    def setUpClass(cls):
        srv = harness.Server(conf='# below')
        cls.apps = os.path.realpath(os.path.join(srv.tmpdir, 'apps'))
        os.makedirs(os.path.join(cls.apps, 'sub'))
        for p in ('index.cgi', 'sub/index.cgi'):
            with open(os.path.join(cls.apps, p), 'w') as f:
                f.write(ENV_CGI)
            os.chmod(os.path.join(cls.apps, p), 0o755)
        srv.conf = DIR_CONF.replace('@APPS@', cls.apps)
        srv.start()
        cls.srv = srv
        cls.addClassCleanup(srv.stop)

    def get(self, path):
        return harness.request(self.srv.port, 'GET', path)

    def test_index_file_of_a_script_directory_runs(self):
        for pfx in ('/cgi-bin/', '/al/'):
            for d in ('', 'sub/'):
                st, _, body = self.get(pfx + d)
                self.assertEqual(st, 200, pfx + d)
                self.assertIn(('SCRIPT_FILENAME=%s/%sindex.cgi' % (self.apps, d)).encode(), body)

    def test_directory_without_slash_is_redirected(self):
        for pfx in ('/cgi-bin/', '/al/'):
            st, h, _ = self.get(pfx + 'sub?a=b')
            self.assertEqual(st, 301, pfx)
            self.assertTrue(h['location'].endswith(pfx + 'sub/?a=b'), h['location'])
        self.assertEqual(self.get('/cgi-bin/sub/none')[0], 404)

    def test_gateway_prefix_without_its_slash_is_redirected(self):
        # nginx's rule for a prefix location ending in '/' that passes to a
        # backend: no exact location needed for the application's root
        st, h, _ = self.get('/cgi-bin?a=b')
        self.assertEqual(st, 301)
        self.assertTrue(h['location'].endswith('/cgi-bin/?a=b'), h['location'])
        # an exact location for the path still wins
        self.assertEqual(self.get('/al')[0], 410)
        self.assertEqual(self.get('/cgi-bi')[0], 404)


if __name__ == '__main__':
    harness.main()
