"""t_regex.py: regex locations, location precedence, captures and rewrites
(PCRE2, regex.c, locate.c, rewrite.c), over real sockets.

Covered: the precedence table of portico.conf(5) row by row (exact, a
stopping prefix, regex and extension locations in configuration order,
the longest prefix); iregex matching any case; a regex matched on the
decoded, normalised path; $1..$9 and ${name} in return targets,
percent-encoded again; alias with captures (files beneath the alias
directory, try_files there, no ".." or dotfile made of captures); rewrite
with last (re-routed, the query kept or
replaced, "?" dropping it), no flag, break (the same location), redirect,
permanent and an absolute URL, a rewrite loop ending in 500; a
catastrophic-backtracking pattern against a long path answered (no match)
with the limit logged while another client is served; with the real
PHP-FPM: a .php under a denied prefix and under a stopping prefix never
reaches FPM (its access log), a regex FastCGI location runs its script with
REQUEST_URI kept after a rewrite, and never runs a file its regex does not
match ("/up/img.png/x.php"); portico -t errors with file:line and the PCRE2
offset. Nothing asserts on timings."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402


def get(port, target, timeout=60):
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        s.sendall(('GET %s HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n' %
                   target).encode())
        data, _closed = harness.recv_until_close(s, timeout)
    finally:
        s.close()
    r = harness.read_response(data, 'GET')
    r.raw = data
    return r


def text(r):
    return r.body.decode().strip()


# Each location answers with its own name, so the response says which took
# the request. Backslashes are libconfig's: "\\." is one "\." for PCRE2.
PRECEDENCE_CONF = r'''
locations = (
  { prefix = "/"; return = "200 root"; },
  { prefix = "/docs/"; return = "200 docs-prefix"; },
  { prefix = "/docs/raw/"; stop = true; return = "200 raw-stop"; },
  { exact = "/docs/x.php"; return = "200 exact"; },
  { regex = "^/docs/.*\\.php$"; return = "200 docs-regex"; },
  { extension = ".php"; return = "200 php-ext"; },
  { iregex = "\\.(png|jpe?g)$"; return = "200 image-iregex"; },
  { extension = ".gif"; return = "200 gif-ext"; },
  { regex = "\\.gif$"; return = "200 gif-regex"; },
  { regex = "^/sp ace/(.+)$"; return = "200 decoded $1"; },
  { regex = "^/old/(\\d+)/(?<slug>[^/]+)$"; return = "301 /new/$1/${slug}"; },
  { regex = "^/evil/(a|aa)+$"; return = "200 evil"; }
);
'''


class Precedence(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_class_server(cls, conf=PRECEDENCE_CONF)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_precedence_table(self):
        # (path, the location that takes it, the rule of portico.conf(5))
        rows = [
            ('/docs/x.php', 'exact', 'an exact location first'),
            ('/docs/raw/a.php', 'raw-stop', 'the longest prefix when it has stop = true'),
            ('/docs/raw/a.gif', 'raw-stop', '... over every regex and extension'),
            ('/docs/y.php', 'docs-regex', 'regex before extension in configuration order'),
            ('/y.php', 'php-ext', 'the extension when the earlier regex does not match'),
            ('/a.gif', 'gif-ext', 'extension before regex in configuration order'),
            ('/docs/pic.png', 'image-iregex', 'a regex over the longest prefix'),
            ('/docs/readme', 'docs-prefix', 'the longest prefix last'),
            ('/other', 'root', 'the "/" prefix catches the rest'),
        ]
        for path, want, rule in rows:
            r = get(self.port, path)
            self.assertEqual((r.status, text(r)), (200, want), '%s: %s' % (path, rule))

    def test_iregex_is_caseless(self):
        for path in ('/a.PNG', '/a.Jpeg', '/a.jpg'):
            self.assertEqual(text(get(self.port, path)), 'image-iregex', path)
        # regex is case-sensitive (nginx "~"): ".GIF" is no ".gif"
        self.assertEqual(text(get(self.port, '/docs/Y.PHP')), 'docs-prefix')

    def test_matched_on_the_decoded_normalised_path(self):
        r = get(self.port, '/sp%20ace/./x/../f%2Fg')
        self.assertEqual((r.status, text(r)), (200, 'decoded f/g'))

    def test_captures_in_return(self):
        r = get(self.port, '/old/42/hello')
        self.assertEqual((r.status, r.header('Location')), (301, '/new/42/hello'))
        # a capture is decoded text: encoded again in the target
        r = get(self.port, '/old/7/a%20b%3Fc')
        self.assertEqual((r.status, r.header('Location')), (301, '/new/7/a%20b%3Fc'))

    def test_backtracking_pattern_is_a_non_match_and_logged(self):
        evil = '/evil/' + 'a' * 3000 + 'b'
        results = {}

        def slow():
            results['evil'] = get(self.port, evil)
        t = threading.Thread(target=slow)
        t.start()
        # another client is served meanwhile
        self.assertEqual(text(get(self.port, '/docs/readme')), 'docs-prefix')
        t.join(120)
        self.assertFalse(t.is_alive(), 'no answer to the backtracking path')
        # no match: the "/" prefix takes it
        self.assertEqual((results['evil'].status, text(results['evil'])), (200, 'root'))
        self.assertTrue(self.srv.wait_for_log(r"regex '\^/evil/\(a\|aa\)\+\$' gave up"),
                        self.srv.stderr_text())
        # the pattern still matches what it should
        self.assertEqual(text(get(self.port, '/evil/aaaa')), 'evil')


REWRITE_CONF = r'''
locations = (
  { prefix = "/"; return = "200 root $uri"; },
  { prefix = "/target/"; return = "200 target $uri $request_uri"; },
  { prefix = "/rw/";
    rewrite = [ "^/rw/keep/(.*)$ /target/$1 last",
                "^/rw/query/(.*)$ /target/$1?set=1 redirect",
                "^/rw/drop/(.*)$ /target/$1? redirect",
                "^/rw/chain/(.*)$ /rw/keep/$1",
                "^/rw/break/(.*)$ /files/$1 break",
                "^/rw/perm/(.*)$ /target/$1 permanent",
                "^/rw/temp/(.*)$ /target/$1 redirect",
                "^/rw/abs/(.*)$ https://example.org/$1",
                "^/rw/loop/(.*)$ /loop/$1 last" ]; },
  { prefix = "/loop/"; rewrite = [ "^/loop/(.*)$ /rw/loop/$1 last" ]; }
);
'''


class Rewrite(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.start_class_server(cls, conf=REWRITE_CONF, files={'files/f.txt': 'the file\n'})

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_last_reroutes(self):
        r = get(self.port, '/rw/keep/a/b?x=1')
        # $uri is the new path; $request_uri what the client sent
        self.assertEqual((r.status, text(r)), (200, 'target /target/a/b /rw/keep/a/b?x=1'))

    def test_query_kept_replaced_or_dropped(self):
        r = get(self.port, '/rw/temp/t?x=1&y=2')
        self.assertEqual((r.status, r.header('Location')), (302, '/target/t?x=1&y=2'))
        r = get(self.port, '/rw/query/z?old=1')
        self.assertEqual((r.status, r.header('Location')), (302, '/target/z?set=1'))
        r = get(self.port, '/rw/drop/d?old=1')
        self.assertEqual((r.status, r.header('Location')), (302, '/target/d'))

    def test_no_flag_goes_on_with_the_next_rule(self):
        r = get(self.port, '/rw/chain/c')
        self.assertEqual(text(r), 'target /target/c /rw/chain/c')

    def test_break_stays_in_the_location(self):
        # "/files/f.txt" in the "/rw/" location: served as a static file,
        # not by the "/" prefix's return
        r = get(self.port, '/rw/break/f.txt')
        self.assertEqual((r.status, r.body), (200, b'the file\n'))

    def test_redirects(self):
        r = get(self.port, '/rw/perm/p?q=2')
        self.assertEqual((r.status, r.header('Location')), (301, '/target/p?q=2'))
        r = get(self.port, '/rw/temp/t')
        self.assertEqual((r.status, r.header('Location')), (302, '/target/t'))
        r = get(self.port, '/rw/abs/x%20y')
        self.assertEqual((r.status, r.header('Location')), (302, 'https://example.org/x%20y'))

    def test_rewrite_loop_ends(self):
        self.assertEqual(get(self.port, '/rw/loop/x').status, 500)

    def test_no_rule_matches(self):
        self.assertEqual(get(self.port, '/rw/other').status, 404)


class RegexAlias(unittest.TestCase):
    """nginx's "location ~ ^/users/(.+\\.png)$ { alias /srv/img/$1; }": the
    captures name the file beneath the alias directory, never above it."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-rxalias-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        cls.img = os.path.join(cls.base, 'img')
        os.makedirs(os.path.join(cls.img, 'sub'))
        for rel, body in (('img/a.png', 'png a\n'), ('img/sub/b.png', 'png b\n'),
                          ('img/.h.png', 'hidden\n'), ('secret.png', 'SECRET\n')):
            with open(os.path.join(cls.base, rel), 'w') as f:
                f.write(body)
        conf = r'''
locations = (
  { regex = "^/users/(?<name>.+\\.png)$"; alias = "%(img)s/${name}"; },
  { regex = "^/x(.)(.)/(.*)$"; alias = "%(img)s/$1$2/$3"; follow_symlinks = true; },
  { regex = "^/tf/(.*)$"; alias = "%(img)s/$1"; try_files = [ "$uri", "=410" ]; }
);
''' % {'img': cls.img}
        harness.start_class_server(cls, conf=conf)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_captures_name_the_file(self):
        for path, body in (('/users/a.png', b'png a\n'), ('/users/sub/b.png', b'png b\n'),
                           ('/tf/a.png', b'png a\n')):
            r = get(self.port, path)
            self.assertEqual((r.status, r.body), (200, body), path)
        self.assertEqual(get(self.port, '/users/nope.png').status, 404)

    def test_try_files_looks_below_the_alias(self):
        self.assertEqual(get(self.port, '/tf/nope.png').status, 410)

    def test_captures_cannot_climb_or_show_dotfiles(self):
        # "$1$2" of "/x../secret.png" would be "../secret.png"
        r = get(self.port, '/x../secret.png')
        self.assertEqual(r.status, 404, r.raw)
        self.assertNotIn(b'SECRET', r.raw)
        self.assertEqual(get(self.port, '/users/.h.png').status, 404)


PHP = '''<?php
header('Content-Type: application/json');
echo json_encode(array(
  'REQUEST_URI' => $_SERVER['REQUEST_URI'] ?? null,
  'QUERY_STRING' => $_SERVER['QUERY_STRING'] ?? null,
  'SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'] ?? null,
  'WHO' => basename(__FILE__),
));
'''


@phpfpm.skip_unless_php_fpm
class PhpBehindRegex(unittest.TestCase):
    """DokuWiki's conf/ and data/ and an upload directory in front of the
    real PHP-FPM: what a deny or a stopping prefix keeps never reaches it."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-regex-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        cls.www = os.path.join(cls.base, 'www')
        for rel in ('index.php', 'doku.php', 'conf/local.php', 'data/pages/x.php',
                    'up/img.png', 'up/real.php'):
            p = os.path.join(cls.www, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, 'w') as f:
                f.write(PHP)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www')])
        cls.fpm.start()
        cls.addClassCleanup(cls.fpm.stop)
        conf = r'''
root = "%(www)s";
backends = ( { name = "php"; servers = ( "%(addr)s" ); } );
locations = (
  { prefix = "/conf/"; access = [ "deny all" ]; },
  { prefix = "/data/"; stop = true; return = "404"; },
  { regex = "\\.php$"; handler = "fastcgi"; backend = "php"; },
  { prefix = "/wiki/"; rewrite = [ "^/wiki/(?<page>[^/]+)$ /doku.php?id=${page} last" ]; },
  { prefix = "/app/"; rewrite = [ "^/app/ /index.php last" ]; }
);
''' % {'addr': cls.fpm.pools[0].address, 'www': cls.www}
        harness.start_class_server(cls, conf=conf, docroot=False)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def fpm_saw(self, needle):
        return [l for l in self.fpm.access_log_lines('www') if needle in l[3] or needle in l[2]]

    def test_php_runs(self):
        r = get(self.port, '/index.php')
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(json.loads(r.body)['WHO'], 'index.php')

    def test_php_under_a_denied_prefix_never_reaches_fpm(self):
        self.assertEqual(get(self.port, '/conf/local.php').status, 403)
        self.assertEqual(get(self.port, '/data/pages/x.php').status, 404)
        get(self.port, '/index.php')  # FPM writes its log line per request: a marker after
        self.assertTrue(harness.Server.wait_for(lambda: self.fpm_saw('index.php')))
        self.assertEqual(self.fpm_saw('local.php'), [])
        self.assertEqual(self.fpm_saw('pages/x.php'), [])

    def test_rewrite_to_php_keeps_request_uri(self):
        r = get(self.port, '/wiki/start?do=edit')
        self.assertEqual(r.status, 200, r.raw)
        j = json.loads(r.body)
        self.assertEqual(j['WHO'], 'doku.php')
        self.assertEqual(j['SCRIPT_NAME'], '/doku.php')
        self.assertEqual(j['QUERY_STRING'], 'id=start')
        self.assertEqual(j['REQUEST_URI'], '/wiki/start?do=edit')

    def test_internal_rewrite_keeps_the_query(self):
        r = get(self.port, '/app/some/route?a=1&b=2')
        self.assertEqual(r.status, 200, r.raw)
        j = json.loads(r.body)
        self.assertEqual((j['WHO'], j['QUERY_STRING']), ('index.php', 'a=1&b=2'))
        self.assertEqual(j['REQUEST_URI'], '/app/some/route?a=1&b=2')

    def test_regex_gateway_never_runs_a_file_its_regex_does_not_match(self):
        # cgi.fix_pathinfo's hole: "img.png" must not run as PHP
        self.assertEqual(get(self.port, '/up/img.png/x.php').status, 404)
        r = get(self.port, '/up/real.php')
        self.assertEqual((r.status, json.loads(r.body)['WHO']), (200, 'real.php'))
        self.assertEqual(self.fpm_saw('img.png'), [])


class ConfigErrors(unittest.TestCase):
    def check(self, conf, needle):
        d = tempfile.mkdtemp(prefix='portico-regex-')
        self.addCleanup(shutil.rmtree, d, True)
        p = os.path.join(d, 'p.conf')
        with open(p, 'w') as f:
            f.write(harness.root_user('root = "%s";\n%s' % (d, conf)))
        r = subprocess.run([harness.PORTICO, '-t', '-c', p], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        out = r.stdout.decode()
        self.assertNotEqual(r.returncode, 0, out)
        self.assertIn(needle, out)

    def test_bad_regex_names_line_and_offset(self):
        self.check('locations = (\n { regex = "^/(a"; } );\n',
                   "p.conf:3: regex '^/(a': missing closing parenthesis at offset 4")
        self.check('locations = ( { prefix = "/a/";\n rewrite = [\n "^/(x /y" ]; } );\n',
                   "p.conf:4: rewrite: regex '^/(x': missing closing parenthesis at offset 4")

    def test_too_long_regex(self):
        self.check('locations = (\n { regex = "%s"; } );\n' % ('a' * 1001),
                   'p.conf:3: regex is 1001 characters long, at most 1000')

    def test_mistakes(self):
        self.check('locations = (\n { exact = "/a"; stop = true; } );\n',
                   "p.conf:3: 'stop' only applies to prefix locations")
        self.check('locations = (\n { regex = "^/a"; return = "301 /$2"; } );\n',
                   "p.conf:3: return: '$2': regex '^/a' has no such group")
        self.check('locations = (\n { prefix = "/a"; return = "301 /${x}"; } );\n',
                   'captures need a regex location')
        self.check('locations = ( { prefix = "/a/";\n rewrite = [ "^/x /y nope" ]; } );\n',
                   "p.conf:3: rewrite '^/x /y nope': unknown flag")
        self.check('vhosts = ( { default = true;\n return = "301 /$1"; } );\n',
                   "p.conf:3: return: '$1': captures need a regex location")
        self.check('locations = (\n { regex = "^/(.*)$"; alias = "/tmp/"; } );\n',
                   'p.conf:3: the alias of a regex location names the file with a capture')
        self.check('locations = (\n { regex = "^/(.*)$"; handler = "status"; alias = "/tmp/$1"; } );\n',
                   'p.conf:3: the alias of a regex location applies to static files and scripts')
        self.check('locations = (\n { regex = "^/a"; iregex = "^/b"; } );\n',
                   'exactly one of prefix, exact, extension, regex or iregex')


if __name__ == '__main__':
    harness.main()
