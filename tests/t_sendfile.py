"""t_sendfile.py: X-Sendfile / X-LIGHTTPD-send-file / X-Accel-Redirect from
gateway programs (issue 18 part 3).

A CGI script (and a PHP-FPM script, below) answers with a header naming a
5 MiB file beneath the location's sendfile_dirs: the client gets the file
byte for byte with the file's Content-Length, ETag and Last-Modified, the
backend's Content-Disposition and Content-Type, never the backend's body;
ranges (206), If-None-Match (304) and HEAD work as for a static file. A path
outside the allowed directories, with "..", or through a symlink leading out
(follow_symlinks = false) is refused (403 / 404) with an error-log line; a
missing file is 404. With x_sendfile off the header is stripped and the
backend's body goes out. X-Accel-Redirect reaches an "internal" location
that clients cannot reach (404). A script that writes 20 MiB after the
header is drained, not buffered or blocked: it finishes and is reaped."""

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import fcgi_bad as fb  # noqa: E402
import harness  # noqa: E402
import phpfpm  # noqa: E402

BIG = bytes((i * 7 + i // 4096) % 256 for i in range(5 * 1024 * 1024))
SMALL = b'internal location file\n'
SECRET = b'secret outside the allowed directory\n'

SCRIPT = r'''#!/bin/sh
# the answer depends on QUERY_STRING; DL is the allowed directory
hdr() { printf '%s\r\n' "$@"; }
case "$QUERY_STRING" in
big)
  hdr 'Content-Type: application/octet-stream' \
      'Content-Disposition: attachment; filename="big.bin"' \
      'ETag: "from-backend"' 'Last-Modified: Thu, 01 Jan 1970 00:00:00 GMT' \
      'Content-Length: 12' "X-Sendfile: $DL/big.bin" ''
  printf 'BACKEND-BODY' ;;
lighttpd)
  hdr 'Content-Type: text/plain' "X-LIGHTTPD-send-file: $DL/big.bin" ''
  printf 'BACKEND-BODY' ;;
outside)
  hdr 'Content-Type: text/plain' "X-Sendfile: $BASE/secret/s.txt" '' ;;
dotdot)
  hdr 'Content-Type: text/plain' "X-Sendfile: $DL/../secret/s.txt" '' ;;
symlink)
  hdr 'Content-Type: text/plain' "X-Sendfile: $DL/link-out" '' ;;
missing)
  hdr 'Content-Type: text/plain' "X-Sendfile: $DL/nope.bin" '' ;;
accel)
  hdr 'Content-Type: text/plain' 'Content-Disposition: inline' \
      'X-Accel-Redirect: /protected/small.txt' ''
  printf 'BACKEND-BODY' ;;
notfound)
  hdr 'Status: 404 Not Found' 'Content-Type: text/plain' "X-Sendfile: $DL/big.bin" ''
  printf 'BACKEND-404' ;;
accelhost)
  hdr 'Content-Type: text/plain' 'X-Accel-Redirect: http://example.org/x' '' ;;
flood)
  hdr 'Content-Type: application/octet-stream' "X-Sendfile: $DL/big.bin" ''
  head -c 20971520 /dev/zero
  : > "$BASE/run/flood-done-$$" ;;
esac
'''


def md5(b):
    return hashlib.md5(b).hexdigest()


class SendfileBase(unittest.TestCase):
    maxDiff = None

    @classmethod
    def stage(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-xs-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        cls.dl = os.path.join(cls.base, 'dl')
        for d in ('dl', 'secret', 'cgi', 'protected', 'run', 'www'):
            os.mkdir(os.path.join(cls.base, d))
        with open(os.path.join(cls.dl, 'big.bin'), 'wb') as f:
            f.write(BIG)
        with open(os.path.join(cls.base, 'secret', 's.txt'), 'wb') as f:
            f.write(SECRET)
        with open(os.path.join(cls.base, 'protected', 'small.txt'), 'wb') as f:
            f.write(SMALL)
        os.symlink(os.path.join(cls.base, 'secret', 's.txt'), os.path.join(cls.dl, 'link-out'))

    def sub(self, s):
        return s

    def check_big(self, r, ctype='application/octet-stream'):
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(len(r.body), len(BIG))
        self.assertEqual(md5(r.body), md5(BIG))
        self.assertNotIn(b'BACKEND-BODY', r.raw)
        self.assertEqual(r.header('Content-Length'), str(len(BIG)))
        st = os.stat(os.path.join(self.dl, 'big.bin'))
        self.assertNotEqual(r.header('ETag'), '"from-backend"')
        self.assertIsNotNone(r.header('ETag'))
        self.assertEqual(r.header('Last-Modified'),
                         time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(st.st_mtime)))
        self.assertTrue(r.header('Content-Type').startswith(ctype), r.header('Content-Type'))
        self.assertIsNone(r.header('X-Sendfile'))
        self.assertIsNone(r.header('X-LIGHTTPD-send-file'))

    def get(self, target, method='GET', headers=()):
        return harness.fetch(self.port, method, target, headers=headers, timeout=60)

    def log(self):
        return self.srv.stderr_text()


class Cgi(SendfileBase):
    @classmethod
    def setUpClass(cls):
        cls.stage()
        cgi = os.path.join(cls.base, 'cgi', 'xs.cgi')
        with open(cgi, 'w') as f:
            f.write(SCRIPT)
        os.chmod(cgi, 0o755)
        conf = '''
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@B@/cgi"; x_sendfile = true;
    sendfile_dirs = [ "@B@/dl" ]; follow_symlinks = false;
    env = [ "DL=@B@/dl", "BASE=@B@" ]; },
  { prefix = "/off/"; handler = "cgi"; dir = "@B@/cgi";
    env = [ "DL=@B@/dl", "BASE=@B@" ]; },
  { prefix = "/protected/"; root = "@B@"; internal = true; }
);
'''.replace('@B@', cls.base)
        harness.start_class_server(cls, conf=conf, docroot=os.path.join(cls.base, 'www'))

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_file_served_with_its_validators_and_backend_headers(self):
        r = self.get('/cgi-bin/xs.cgi?big')
        self.check_big(r)
        self.assertEqual(r.header('Content-Disposition'), 'attachment; filename="big.bin"')

    def test_lighttpd_alias(self):
        r = self.get('/cgi-bin/xs.cgi?lighttpd')
        self.check_big(r, 'text/plain')

    def test_range_is_206_of_the_file(self):
        r = self.get('/cgi-bin/xs.cgi?big', headers=[('Range', 'bytes=1000-1999')])
        self.assertEqual(r.status, 206, r.raw[:500])
        self.assertEqual(r.body, BIG[1000:2000])
        self.assertEqual(r.header('Content-Range'), 'bytes 1000-1999/%d' % len(BIG))
        self.assertEqual(r.header('Content-Disposition'), 'attachment; filename="big.bin"')

    def test_if_none_match_is_304(self):
        etag = self.get('/cgi-bin/xs.cgi?big').header('ETag')
        r = self.get('/cgi-bin/xs.cgi?big', headers=[('If-None-Match', etag)])
        self.assertEqual(r.status, 304, r.raw[:500])
        self.assertEqual(r.body, b'')
        self.assertEqual(r.header('ETag'), etag)

    def test_head(self):
        r = self.get('/cgi-bin/xs.cgi?big', method='HEAD')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('Content-Length'), str(len(BIG)))
        self.assertEqual(r.rest, b'')

    def test_outside_allowed_dirs_is_403_and_logged(self):
        r = self.get('/cgi-bin/xs.cgi?outside')
        self.assertEqual(r.status, 403)
        self.assertNotIn(SECRET, r.raw)
        self.srv.wait_for_log(r'X-Sendfile "[^"]*/secret/s\.txt" is not beneath')

    def test_dotdot_refused(self):
        r = self.get('/cgi-bin/xs.cgi?dotdot')
        self.assertEqual(r.status, 403)
        self.assertNotIn(SECRET, r.raw)

    def test_symlink_out_refused(self):
        r = self.get('/cgi-bin/xs.cgi?symlink')
        self.assertEqual(r.status, 404)
        self.assertNotIn(SECRET, r.raw)

    def test_missing_file_is_404(self):
        self.assertEqual(self.get('/cgi-bin/xs.cgi?missing').status, 404)

    def test_disabled_strips_header_and_sends_body(self):
        r = self.get('/off/xs.cgi?big')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'BACKEND-BODY')
        self.assertIsNone(r.header('X-Sendfile'))
        self.assertNotIn(self.dl.encode(), r.raw)

    def test_accel_redirect_to_internal_location(self):
        r = self.get('/cgi-bin/xs.cgi?accel')
        self.assertEqual(r.status, 200, r.raw[:500])
        self.assertEqual(r.body, SMALL)
        self.assertEqual(r.header('Content-Disposition'), 'inline')
        self.assertIsNone(r.header('X-Accel-Redirect'))

    def test_other_status_ignores_the_header(self):
        r = self.get('/cgi-bin/xs.cgi?notfound')
        self.assertEqual((r.status, r.body), (404, b'BACKEND-404'))
        self.assertIsNone(r.header('X-Sendfile'))
        self.assertNotIn(self.dl.encode(), r.raw)

    def test_accel_redirect_not_local_is_502(self):
        self.assertEqual(self.get('/cgi-bin/xs.cgi?accelhost').status, 502)
        self.srv.wait_for_log(r'X-Accel-Redirect "http://example.org/x" is not a local URI')

    def test_internal_location_unreachable_directly(self):
        self.assertEqual(self.get('/protected/small.txt').status, 404)

    def test_large_body_after_header_is_drained(self):
        r = self.get('/cgi-bin/xs.cgi?flood')
        self.assertEqual(r.status, 200)
        self.assertEqual(md5(r.body), md5(BIG))
        # the script wrote all 20 MiB (not blocked on a full pipe) and exited
        run = os.path.join(self.base, 'run')
        self.assertTrue(harness.Server.wait_for(
            lambda: any(n.startswith('flood-done-') for n in os.listdir(run)), timeout=60))
        r = self.get('/cgi-bin/xs.cgi?big', headers=[('Range', 'bytes=0-9')])
        self.assertEqual(r.body, BIG[:10])


PHP = '''<?php
header('Content-Type: application/octet-stream');
header('Content-Disposition: attachment; filename="big.bin"');
header('X-Sendfile: @DL@/big.bin');
echo str_repeat("BACKEND-BODY", 100000);
'''
PHP_ACCEL = '''<?php
header('X-Accel-Redirect: /protected/small.txt');
echo "BACKEND-BODY";
'''


@phpfpm.skip_unless_php_fpm
class Php(SendfileBase):
    @classmethod
    def setUpClass(cls):
        cls.stage()
        www = os.path.join(cls.base, 'www')
        with open(os.path.join(www, 'dl.php'), 'w') as f:
            f.write(PHP.replace('@DL@', cls.dl))
        with open(os.path.join(www, 'accel.php'), 'w') as f:
            f.write(PHP_ACCEL)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', listen='unix', max_children=2)])
        cls.addClassCleanup(cls.fpm.stop)
        cls.fpm.start()
        conf = '''
backends = ( { name = "php"; servers = ( "@ADDR@" ); } );
locations = (
  { extension = ".php"; handler = "fastcgi"; backend = "php"; x_sendfile = true;
    sendfile_dirs = [ "@B@/dl" ]; },
  { prefix = "/protected/"; root = "@B@"; internal = true; }
);
'''.replace('@B@', cls.base).replace('@ADDR@', cls.fpm.pool('www').address)
        harness.start_class_server(cls, conf=conf, docroot=www)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_php_x_sendfile(self):
        for _ in range(3):  # the backend connection is drained or dropped each time
            r = self.get('/dl.php')
            self.check_big(r)
            self.assertEqual(r.header('Content-Disposition'), 'attachment; filename="big.bin"')

    def test_php_range(self):
        r = self.get('/dl.php', headers=[('Range', 'bytes=-100')])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.body, BIG[-100:])

    def test_php_accel_redirect(self):
        r = self.get('/accel.php')
        self.assertEqual((r.status, r.body), (200, SMALL))


class FastcgiKeepAlive(SendfileBase):
    """A FastCGI backend's body after X-Sendfile is read to END_REQUEST and
    dropped, so its kept-alive connection serves the next request."""

    @classmethod
    def setUpClass(cls):
        cls.stage()
        cls.fake = fb.FakeFcgiServer().start()
        cls.addClassCleanup(cls.fake.stop)
        conf = '''
backends = ( { name = "app"; servers = ( "@ADDR@" ); } );
locations = (
  { prefix = "/app/"; handler = "fastcgi"; backend = "app"; x_sendfile = true;
    sendfile_dirs = [ "@B@/dl" ]; }
);
'''.replace('@B@', cls.base).replace('@ADDR@', cls.fake.address)
        harness.start_class_server(cls, conf=conf, docroot=os.path.join(cls.base, 'www'))

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_backend_body_drained_connection_kept(self):
        self.fake.reset()
        for _ in range(3):
            r = self.get('/app/x?mode=big&mb=3&xsend=' + self.dl + '/big.bin')
            self.check_big(r)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.answered == 3), self.fake.snapshot())
        self.assertEqual(self.fake.connections, 1, self.fake.snapshot())


if __name__ == '__main__':
    harness.main()
