"""t_static.py: the static file handler over real sockets: index files,
directory redirects and listings, validators and conditional requests
(RFC 9110 §13), byte ranges (RFC 9110 §14), HEAD, MIME types, path
normalisation and traversal, symlink and dot-file policy, vhosts, locations
and the access log. Clients: raw sockets, http.client and curl."""

import gzip
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

# Fixed mtime of the test files, so Last-Modified is known exactly.
MTIME = 1577836800  # Wed, 01 Jan 2020 00:00:00 GMT
MTIME_HTTP = 'Wed, 01 Jan 2020 00:00:00 GMT'
PAST_HTTP = 'Mon, 01 Jan 1990 00:00:00 GMT'
FUTURE_HTTP = 'Fri, 01 Jan 2100 00:00:00 GMT'

SECRET = b'TOP-SECRET-7f3a9c outside the docroot\n'
HELLO = b'hello world\n'
DIGITS = b'0123456789abcdefghijklmnopqrstuvwxyz'  # 36 bytes: easy range arithmetic
BIG_SIZE = 10 * 1024 * 1024


# -- helpers ----------------------------------------------------------------

def fetch(port, method, target, headers=(), host='localhost', version='HTTP/1.1', timeout=10):
    """One request on a fresh raw socket with Connection: close; the target
    is sent byte for byte (no client-side normalisation). Returns a
    harness.Response whose .rest holds every byte after the head (for HEAD
    and 304 that must be empty) and whose .body is the decoded body."""
    lines = ['%s %s %s' % (method, target, version)]
    if host is not None:
        lines.append('Host: ' + host)
    if isinstance(headers, dict):
        headers = list(headers.items())
    lines += ['%s: %s' % kv for kv in headers]
    lines.append('Connection: close')
    req = ('\r\n'.join(lines) + '\r\n\r\n').encode('utf-8', 'surrogateescape')
    data = harness.raw(port, req, timeout=timeout)
    head, sep, rest = data.partition(b'\r\n\r\n')
    if not sep:
        raise AssertionError('no complete response head for %s %r: %r' % (method, target,
                                                                         data[:300]))
    resp = harness.read_response(data, method)
    resp.rest = rest
    resp.raw = data
    return resp


def norm_ct(v):
    return (v or '').replace(' ', '').lower()


def etag_opaque(etag):
    return etag[2:] if etag.startswith('W/') else etag


def parse_byteranges(resp):
    """Parse a multipart/byteranges body exactly (RFC 9110 §14.6): returns a
    list of (content_range, content_type, data). Every part's length comes
    from its Content-Range, so stray or missing bytes are detected."""
    ct = resp.header('Content-Type') or ''
    m = re.match(r'^multipart/byteranges\s*;\s*boundary=("?)([^";\s]+)\1\s*$', ct, re.I)
    if not m:
        raise AssertionError('not multipart/byteranges with a boundary: %r' % ct)
    delim = b'--' + m.group(2).encode('ascii')
    body = resp.body
    parts = []
    pos = body.find(delim)
    if pos < 0:
        raise AssertionError('boundary not found in body')
    # only CRLF may precede the first delimiter (a preamble is legal but we send none)
    if body[:pos] not in (b'', b'\r\n'):
        raise AssertionError('unexpected preamble %r' % body[:pos])
    while True:
        pos += len(delim)
        if body[pos:pos + 2] == b'--':
            tail = body[pos + 2:]
            if tail not in (b'', b'\r\n'):
                raise AssertionError('junk after close delimiter: %r' % tail[:100])
            return parts
        if body[pos:pos + 2] != b'\r\n':
            raise AssertionError('delimiter not followed by CRLF at %d' % pos)
        pos += 2
        end = body.find(b'\r\n\r\n', pos)
        if end < 0:
            raise AssertionError('unterminated part header')
        hdrs = {}
        for line in body[pos:end].split(b'\r\n'):
            k, _, v = line.partition(b':')
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        pos = end + 4
        cr = hdrs.get('content-range', '')
        mm = re.match(r'^bytes (\d+)-(\d+)/(\d+)$', cr)
        if not mm:
            raise AssertionError('bad part Content-Range %r' % cr)
        n = int(mm.group(2)) - int(mm.group(1)) + 1
        parts.append((cr, hdrs.get('content-type'), body[pos:pos + n]))
        pos += n
        if body[pos:pos + 2 + len(delim)] != b'\r\n' + delim:
            raise AssertionError('part data not followed by CRLF + delimiter at %d' % pos)
        pos += 2


def set_mtime(root):
    """Give every regular file and directory under root the fixed MTIME."""
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + dirnames:
            p = os.path.join(dirpath, n)
            if os.path.islink(p) or not (os.path.isfile(p) or os.path.isdir(p)):
                continue
            os.utime(p, (MTIME, MTIME))


def make_tree(base, files):
    for rel, content in files.items():
        p = os.path.join(base, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, str):
            content = content.encode('utf-8')
        with open(p, 'wb') as f:
            f.write(content)


class ServerCase(unittest.TestCase):
    """One server per class. Layout under a private base directory:
    base/secret (outside the root), base/outside/ (a directory outside),
    base/www/ (the docroot). Subclasses set FILES, ARGS, CONF (a function
    of base returning config text or None) and may override populate()."""

    FILES = {}
    ARGS = ()
    WORKERS = 1
    ACCESS_LOG = False

    @classmethod
    def conf(cls, base):
        return None

    @classmethod
    def populate(cls, base, www):
        pass

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-static-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.www = os.path.join(cls.base, 'www')
        os.mkdir(cls.www)
        with open(os.path.join(cls.base, 'secret'), 'wb') as f:
            f.write(SECRET)
        os.mkdir(os.path.join(cls.base, 'outside'))
        with open(os.path.join(cls.base, 'outside', 'file.txt'), 'wb') as f:
            f.write(SECRET)
        make_tree(cls.www, cls.FILES)
        cls.populate(cls.base, cls.www)
        set_mtime(cls.www)
        log = os.path.join(cls.base, 'access.log') if cls.ACCESS_LOG else None
        harness.start_class_server(cls, *cls.ARGS, conf=cls.conf(cls.base), docroot=cls.www,
                                   workers=cls.WORKERS, access_log=log)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def get(self, target, headers=(), method='GET', **kw):
        return fetch(self.port, method, target, headers, **kw)

    def assertNotSecret(self, resp, what=''):
        self.assertNotIn(b'TOP-SECRET', resp.raw, 'secret leaked for %s' % what)


# -- the plain file server -----------------------------------------------

BIG = os.urandom(BIG_SIZE)


class StaticFiles(ServerCase):
    NO_CACHE = False
    FILES = {
        'index.html': '<html><body>root index</body></html>\n',
        'hello.txt': HELLO,
        'digits.txt': DIGITS,
        'page.html': '<p>page</p>',
        'style.css': 'body{}',
        'app.js': 'var x;',
        'image.png': b'\x89PNG\r\n\x1a\n' + b'\0' * 24,
        'data.unknownext': b'\x00\x01',
        'LOUD.CSS': 'p{}',
        'empty.txt': b'',
        'big.bin': BIG,
        'my file \u00e9.txt': 'utf-8 name\n',
        'dir/index.html': 'dir index\n',
        'noindex/file.txt': 'x',
        'a/b.txt': 'in a\n',
        '.htpasswd': 'user:hash\n',
        '.git/config': '[core]\n',
        'sub/.hidden': 'hidden\n',
        '.well-known/x': 'well known\n',
    }

    @classmethod
    def populate(cls, base, www):
        # symlinks: one leading outside the root (file and directory), one inside
        os.symlink(os.path.join(base, 'secret'), os.path.join(www, 'link-out'))
        os.symlink(os.path.join(base, 'outside'), os.path.join(www, 'dirlink-out'))
        os.symlink('../secret', os.path.join(www, 'rel-link-out'))
        os.symlink('hello.txt', os.path.join(www, 'link-in'))
        os.symlink(os.path.join(www, 'a'), os.path.join(www, 'dirlink-in'))

    # index, redirects, errors

    def test_root_serves_index_html(self):
        r = self.get('/')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'<html><body>root index</body></html>\n')
        self.assertEqual(norm_ct(r.header('Content-Type')), 'text/html;charset=utf-8')

    def test_subdirectory_with_slash_serves_its_index(self):
        r = self.get('/dir/')
        self.assertEqual((r.status, r.body), (200, b'dir index\n'))

    def test_directory_without_slash_is_301_to_slash(self):
        r = self.get('/dir')
        self.assertEqual(r.status, 301)
        loc = urllib.parse.urlsplit(r.header('Location') or '')
        self.assertEqual(loc.path, '/dir/')
        self.assertEqual(loc.query, '')

    def test_directory_redirect_keeps_query(self):
        r = self.get('/dir?a=1&b=x%20y')
        self.assertEqual(r.status, 301)
        loc = urllib.parse.urlsplit(r.header('Location') or '')
        self.assertEqual((loc.path, loc.query), ('/dir/', 'a=1&b=x%20y'))

    def test_directory_redirect_via_http_client(self):
        st, h, _ = harness.request(self.port, 'GET', '/noindex')
        self.assertEqual(st, 301)
        self.assertEqual(urllib.parse.urlsplit(h.get('location', '')).path, '/noindex/')

    def test_directory_without_index_is_403_when_listing_off(self):
        r = self.get('/noindex/')
        self.assertEqual(r.status, 403)
        self.assertNotIn(b'file.txt', r.body)

    def test_missing_file_is_404_with_html_error_page(self):
        r = self.get('/no-such-file.txt')
        self.assertEqual(r.status, 404)
        self.assertEqual(norm_ct(r.header('Content-Type')), 'text/html;charset=utf-8')
        self.assertIn(b'404 Not Found', r.body)
        self.assertEqual(int(r.header('Content-Length')), len(r.body))

    def test_404_page_does_not_reflect_the_path(self):
        r = self.get('/%3Cscript%3Ealert(1)%3C/script%3E')
        self.assertEqual(r.status, 404)
        self.assertNotIn(b'<script>', r.raw)
        self.assertNotIn(b'alert', r.body)

    def test_file_below_a_regular_file_is_404(self):
        self.assertEqual(self.get('/hello.txt/x').status, 404)

    # content types

    def test_content_type_by_extension(self):
        cases = {
            '/page.html': 'text/html;charset=utf-8',
            '/style.css': 'text/css;charset=utf-8',
            '/app.js': 'text/javascript;charset=utf-8',
            '/image.png': 'image/png',
            '/hello.txt': 'text/plain;charset=utf-8',
            '/data.unknownext': 'application/octet-stream',
            '/LOUD.CSS': 'text/css;charset=utf-8',
        }
        for path, want in cases.items():
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status, 200)
                ct = norm_ct(r.header('Content-Type'))
                if path == '/app.js' and ct.startswith('application/javascript'):
                    ct = 'text/javascript' + ct[len('application/javascript'):]
                self.assertEqual(ct, want)

    # validators

    def test_etag_strong_and_last_modified_present(self):
        r = self.get('/hello.txt')
        self.assertEqual(r.status, 200)
        self.assertRegex(r.header('ETag') or '', r'^"[\x21\x23-\x7e]+"$')
        self.assertEqual(r.header('Last-Modified'), MTIME_HTTP)
        self.assertEqual(r.header('Accept-Ranges'), 'bytes')
        self.assertEqual(r.body, HELLO)
        self.assertEqual(int(r.header('Content-Length')), len(HELLO))

    def test_etag_is_stable_and_differs_between_files(self):
        a1 = self.get('/hello.txt').header('ETag')
        a2 = self.get('/hello.txt').header('ETag')
        b = self.get('/digits.txt').header('ETag')
        self.assertEqual(a1, a2)
        self.assertNotEqual(a1, b)

    def test_etag_changes_when_file_changes(self):
        p = os.path.join(self.www, 'mutable.txt')
        with open(p, 'wb') as f:
            f.write(b'one')
        os.utime(p, (MTIME, MTIME))
        e1 = self.get('/mutable.txt').header('ETag')
        with open(p, 'wb') as f:
            f.write(b'second version')
        os.utime(p, (MTIME + 60, MTIME + 60))
        # the open-file cache may answer from the old file until its entry
        # is older than open_file_cache.valid (1s): wait for the change
        seen = []
        self.assertTrue(harness.Server.wait_for(
            lambda: seen.append(self.get('/mutable.txt', {'If-None-Match': e1})) or
            seen[-1].status != 304, timeout=10), seen[-1:])
        r = seen[-1]
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'second version')
        self.assertNotEqual(r.header('ETag'), e1)
        if self.NO_CACHE:
            self.assertEqual(len(seen), 1, 'without the cache the change shows at once')

    def test_etag_does_not_show_the_inode(self):
        # CVE-2003-1418: a tag made of the inode number tells it to anyone
        st = os.stat(os.path.join(self.www, 'hello.txt'))
        e = self.get('/hello.txt').header('ETag') or ''
        self.assertRegex(e, r'^"[A-Za-z0-9_-]{11}"$')
        for form in ('%x' % st.st_ino, '%d' % st.st_ino):
            if len(form) >= 4:  # shorter ones may turn up by chance
                self.assertNotIn(form, e)

    def test_etag_is_the_same_from_another_server(self):
        # no seed: each worker of another server on the same files gives
        # the tag this one gives (a cache keeps it across a restart)
        e = self.get('/hello.txt').header('ETag')
        with harness.Server(*self.ARGS, docroot=self.www, workers=2) as s:
            for _ in range(8):
                self.assertEqual(fetch(s.port, 'GET', '/hello.txt').header('ETag'), e)

    def etag(self, path='/hello.txt'):
        e = self.get(path).header('ETag')
        self.assertIsNotNone(e)
        return e

    def assert304(self, r, etag):
        self.assertEqual(r.status, 304)
        self.assertEqual(r.rest, b'', '304 must not carry a body')
        self.assertEqual(r.header('ETag'), etag)
        self.assertIsNone(r.header('Transfer-Encoding'))

    def test_if_none_match_exact_is_304_without_body(self):
        e = self.etag()
        self.assert304(self.get('/hello.txt', {'If-None-Match': e}), e)

    def test_if_none_match_list_is_304(self):
        e = self.etag()
        self.assert304(self.get('/hello.txt', {'If-None-Match': '"nope", %s , "other"' % e}), e)

    def test_if_none_match_star_is_304(self):
        e = self.etag()
        self.assert304(self.get('/hello.txt', {'If-None-Match': '*'}), e)

    def test_if_none_match_weak_form_matches_weakly(self):
        e = self.etag()
        self.assert304(self.get('/hello.txt', {'If-None-Match': 'W/' + etag_opaque(e)}), e)

    def test_if_none_match_mismatch_is_200(self):
        r = self.get('/hello.txt', {'If-None-Match': '"not-the-etag"'})
        self.assertEqual((r.status, r.body), (200, HELLO))

    def test_if_modified_since_equal_is_304(self):
        e = self.etag()
        r = self.get('/hello.txt', {'If-Modified-Since': MTIME_HTTP})
        self.assert304(r, e)
        self.assertEqual(r.header('Last-Modified'), MTIME_HTTP)

    def test_if_modified_since_older_is_200(self):
        r = self.get('/hello.txt', {'If-Modified-Since': PAST_HTTP})
        self.assertEqual((r.status, r.body), (200, HELLO))

    def test_if_modified_since_unparseable_is_ignored(self):
        r = self.get('/hello.txt', {'If-Modified-Since': 'yesterday-ish'})
        self.assertEqual((r.status, r.body), (200, HELLO))

    def test_if_match_mismatch_is_412(self):
        r = self.get('/hello.txt', {'If-Match': '"not-the-etag"'})
        self.assertEqual(r.status, 412)
        self.assertNotIn(HELLO, r.body)

    def test_if_match_exact_is_200(self):
        r = self.get('/hello.txt', {'If-Match': self.etag()})
        self.assertEqual((r.status, r.body), (200, HELLO))

    def test_if_match_uses_strong_comparison_so_weak_tag_is_412(self):
        r = self.get('/hello.txt', {'If-Match': 'W/' + etag_opaque(self.etag())})
        self.assertEqual(r.status, 412)

    def test_if_unmodified_since_in_the_past_is_412(self):
        self.assertEqual(self.get('/hello.txt', {'If-Unmodified-Since': PAST_HTTP}).status, 412)

    def test_if_unmodified_since_in_the_future_is_200(self):
        r = self.get('/hello.txt', {'If-Unmodified-Since': FUTURE_HTTP})
        self.assertEqual((r.status, r.body), (200, HELLO))

    def test_if_none_match_takes_precedence_over_if_modified_since(self):
        # RFC 9110 §13.2.2: If-Modified-Since is only evaluated without If-None-Match
        r = self.get('/hello.txt', {'If-None-Match': '"not-the-etag"',
                                    'If-Modified-Since': FUTURE_HTTP})
        self.assertEqual((r.status, r.body), (200, HELLO))
        e = self.etag()
        self.assert304(self.get('/hello.txt', {'If-None-Match': e,
                                               'If-Modified-Since': PAST_HTTP}), e)

    def test_if_match_failure_beats_if_none_match(self):
        r = self.get('/hello.txt', {'If-Match': '"nope"', 'If-None-Match': self.etag()})
        self.assertEqual(r.status, 412)

    def test_head_with_if_none_match_is_304_without_body(self):
        e = self.etag()
        self.assert304(self.get('/hello.txt', {'If-None-Match': e}, method='HEAD'), e)

    # ranges

    def test_single_range_is_206_with_exact_bytes(self):
        r = self.get('/digits.txt', {'Range': 'bytes=2-11'})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header('Content-Range'), 'bytes 2-11/%d' % len(DIGITS))
        self.assertEqual(r.body, DIGITS[2:12])
        self.assertEqual(r.rest, DIGITS[2:12])
        self.assertEqual(int(r.header('Content-Length')), 10)

    def test_suffix_range_returns_last_bytes(self):
        r = self.get('/digits.txt', {'Range': 'bytes=-7'})
        self.assertEqual(r.status, 206)
        n = len(DIGITS)
        self.assertEqual(r.header('Content-Range'), 'bytes %d-%d/%d' % (n - 7, n - 1, n))
        self.assertEqual(r.body, DIGITS[-7:])

    def test_suffix_range_longer_than_file_is_whole_file_206(self):
        r = self.get('/digits.txt', {'Range': 'bytes=-1000'})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header('Content-Range'), 'bytes 0-35/36')
        self.assertEqual(r.body, DIGITS)

    def test_open_ended_range(self):
        r = self.get('/digits.txt', {'Range': 'bytes=30-'})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header('Content-Range'), 'bytes 30-35/36')
        self.assertEqual(r.body, DIGITS[30:])

    def test_range_end_past_eof_is_clamped(self):
        r = self.get('/digits.txt', {'Range': 'bytes=34-999'})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header('Content-Range'), 'bytes 34-35/36')
        self.assertEqual(r.body, DIGITS[34:])

    def test_multiple_ranges_are_multipart_byteranges(self):
        r = self.get('/digits.txt', {'Range': 'bytes=0-1, 5-7,20-29'})
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header('Content-Range'))
        self.assertEqual(int(r.header('Content-Length')), len(r.body))
        parts = parse_byteranges(r)
        self.assertEqual([p[0] for p in parts],
                         ['bytes 0-1/36', 'bytes 5-7/36', 'bytes 20-29/36'])
        self.assertEqual([p[2] for p in parts], [DIGITS[0:2], DIGITS[5:8], DIGITS[20:30]])
        for p in parts:
            self.assertEqual(norm_ct(p[1]), 'text/plain;charset=utf-8')

    def test_multiple_ranges_on_big_file(self):
        r = self.get('/big.bin', {'Range': 'bytes=0-99,5000000-5000999,-50'})
        self.assertEqual(r.status, 206)
        parts = parse_byteranges(r)
        self.assertEqual([p[2] for p in parts],
                         [BIG[:100], BIG[5000000:5001000], BIG[-50:]])

    def test_unsatisfiable_range_is_416_with_size(self):
        r = self.get('/digits.txt', {'Range': 'bytes=36-'})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header('Content-Range'), 'bytes */36')
        self.assertNotIn(DIGITS, r.body)

    def test_head_ignores_unsatisfiable_range(self):
        # RFC 9110 §14.2: range handling is defined for GET only; HEAD ignores Range
        r = self.get('/digits.txt', {'Range': 'bytes=100-200'}, method='HEAD')
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header('Content-Range'))
        self.assertEqual(r.header('Content-Length'), str(len(DIGITS)))
        self.assertEqual(r.rest, b'')

    def test_range_on_empty_file_is_416(self):
        r = self.get('/empty.txt', {'Range': 'bytes=0-0'})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header('Content-Range'), 'bytes */0')

    def test_range_with_unknown_unit_is_ignored(self):
        r = self.get('/digits.txt', {'Range': 'items=0-1'})
        self.assertEqual((r.status, r.body), (200, DIGITS))

    def test_if_range_matching_etag_is_206(self):
        r = self.get('/digits.txt', {'Range': 'bytes=0-3', 'If-Range': self.etag('/digits.txt')})
        self.assertEqual((r.status, r.body), (206, DIGITS[:4]))

    def test_if_range_mismatching_etag_is_full_200(self):
        r = self.get('/digits.txt', {'Range': 'bytes=0-3', 'If-Range': '"stale-etag"'})
        self.assertEqual((r.status, r.body), (200, DIGITS))
        self.assertIsNone(r.header('Content-Range'))

    def test_if_range_matching_date_is_206_and_older_date_200(self):
        r = self.get('/digits.txt', {'Range': 'bytes=0-3', 'If-Range': MTIME_HTTP})
        self.assertEqual((r.status, r.body), (206, DIGITS[:4]))
        r = self.get('/digits.txt', {'Range': 'bytes=0-3', 'If-Range': PAST_HTTP})
        self.assertEqual((r.status, r.body), (200, DIGITS))

    def test_if_range_weak_etag_never_matches(self):
        e = 'W/' + etag_opaque(self.etag('/digits.txt'))
        r = self.get('/digits.txt', {'Range': 'bytes=0-3', 'If-Range': e})
        self.assertEqual((r.status, r.body), (200, DIGITS))

    def test_overlapping_ranges_are_coalesced(self):
        r = self.get('/digits.txt', {'Range': 'bytes=0-5,3-9'})
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header('Content-Range'), 'bytes 0-9/36')
        self.assertEqual(r.body, DIGITS[:10])

    def test_more_ranges_than_max_ranges_sends_whole_file(self):
        many = ','.join('%d-%d' % (i * 2, i * 2) for i in range(17))  # default max 16
        r = self.get('/digits.txt', {'Range': 'bytes=' + many})
        self.assertEqual((r.status, r.body), (200, DIGITS))

    def test_range_partly_unsatisfiable_keeps_satisfiable_part(self):
        r = self.get('/digits.txt', {'Range': 'bytes=1000-2000, 0-2'})
        self.assertEqual(r.status, 206)
        self.assertEqual((r.header('Content-Range'), r.body), ('bytes 0-2/36', DIGITS[:3]))

    def test_304_head_and_206_keep_a_keepalive_connection_in_sync(self):
        e = self.etag()
        reqs = [('GET', 'If-None-Match: %s\r\n' % e), ('HEAD', ''),
                ('GET', 'Range: bytes=0-3\r\n'), ('GET', '')]
        data = ''.join('%s /hello.txt HTTP/1.1\r\nHost: x\r\n%s\r\n' % m for m in reqs)
        s = harness.connect(self.port)
        try:
            s.sendall(data.encode())
            rs = harness.send_recv_responses(s, 4, [m for m, _ in reqs])
        finally:
            s.close()
        self.assertEqual([r.status for r in rs], [304, 200, 206, 200])
        self.assertEqual(rs[2].body, HELLO[:4])
        self.assertEqual(rs[3].body, HELLO)

    def test_range_via_curl(self):
        p = harness.curl('-r', '10-19', self.srv.url('/digits.txt'))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, DIGITS[10:20])

    # HEAD

    def test_head_has_get_headers_and_no_body(self):
        g = self.get('/digits.txt')
        h = self.get('/digits.txt', method='HEAD')
        self.assertEqual(h.status, 200)
        self.assertEqual(h.rest, b'')
        for name in ('Content-Type', 'Content-Length', 'ETag', 'Last-Modified',
                     'Accept-Ranges'):
            self.assertEqual(h.header(name), g.header(name), name)
        self.assertEqual(h.header('Content-Length'), str(len(DIGITS)))

    def test_head_on_big_file_reports_full_length(self):
        h = self.get('/big.bin', method='HEAD')
        self.assertEqual((h.status, h.header('Content-Length'), h.rest),
                         (200, str(BIG_SIZE), b''))

    def test_head_ignores_range(self):
        # RFC 9110 §14.2: GET is the only method with range handling
        h = self.get('/digits.txt', {'Range': 'bytes=0-3'}, method='HEAD')
        self.assertEqual(h.status, 200)
        self.assertIsNone(h.header('Content-Range'))
        self.assertEqual(h.header('Content-Length'), str(len(DIGITS)))
        self.assertEqual(h.rest, b'')

    # sizes and names

    def test_big_file_intact_via_curl(self):
        p = harness.curl(self.srv.url('/big.bin'), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout), BIG_SIZE)
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), hashlib.sha256(BIG).hexdigest())

    def test_big_file_intact_via_http_client(self):
        st, h, body = harness.request(self.port, 'GET', '/big.bin', timeout=60)
        self.assertEqual(st, 200)
        self.assertEqual(h.get('content-length'), str(BIG_SIZE))
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(BIG).hexdigest())

    def test_big_file_intact_twice_on_one_keepalive_connection(self):
        s = harness.connect(self.port, timeout=60)
        try:
            req = b'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'
            s.sendall(req + req)
            rs = harness.send_recv_responses(s, 2)
        finally:
            s.close()
        for r in rs:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == BIG, 'body differs from file')

    def test_zero_byte_file(self):
        r = self.get('/empty.txt')
        self.assertEqual((r.status, r.header('Content-Length'), r.rest), (200, '0', b''))
        p = harness.curl('-o', '-', '-w', '%{http_code}', self.srv.url('/empty.txt'))
        self.assertEqual(p.stdout, b'200')

    def test_file_name_with_space_and_utf8_percent_encoded(self):
        target = '/' + urllib.parse.quote('my file \u00e9.txt')
        r = self.get(target)
        self.assertEqual((r.status, r.body), (200, b'utf-8 name\n'))
        p = harness.curl(self.srv.url(target))
        self.assertEqual(p.stdout, b'utf-8 name\n')
        st, _, body = harness.request(self.port, 'GET', target)
        self.assertEqual((st, body), (200, b'utf-8 name\n'))

    def test_percent_encoded_plain_name_is_decoded(self):
        r = self.get('/%68%65llo.txt')
        self.assertEqual((r.status, r.body), (200, HELLO))

    # path normalisation and traversal

    def test_traversal_matrix_never_leaks_and_has_expected_status(self):
        cases = [
            ('/../secret', 404),
            ('/../../secret', 404),
            ('/%2e%2e/secret', 404),
            ('/%2E%2E%2Fsecret', 404),
            ('/a/../../secret', 404),
            ('/..%2f..%2fsecret', 404),
            ('/%252e%252e/secret', 404),
            ('/%00', 400),
            ('/a%00.html', 400),
            ('/%0a', 400),
            ('/%0d%0aX-Injected:%201', 400),
            ('/%7f', 400),
            ('/..\\..\\secret', 404),
            ('/..%5c..%5csecret', 404),
            ('/dirlink-out/file.txt', 404),
            ('/link-out', 404),
            ('/rel-link-out', 404),
            ('/a/..%2f..%2f..%2fsecret', 404),
            ('//../secret', 404),
        ]
        for target, want in cases:
            with self.subTest(target=target):
                r = self.get(target)
                self.assertNotSecret(r, target)
                self.assertEqual(r.status, want)
                self.assertNotIn(b'X-Injected', r.raw)

    def test_bad_percent_encoding_is_400(self):
        for target in ('/%zz', '/a%2', '/%'):
            with self.subTest(target=target):
                self.assertEqual(self.get(target).status, 400)

    def test_dot_segments_inside_root_resolve(self):
        for target in ('/a/../hello.txt', '/./hello.txt', '/%2e/hello.txt',
                       '/a/%2e%2e/hello.txt', '/../hello.txt', '//hello.txt'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual((r.status, r.body), (200, HELLO))

    def test_symlink_inside_root_pointing_inside_is_served(self):
        r = self.get('/link-in')
        self.assertEqual((r.status, r.body), (200, HELLO))
        r = self.get('/dirlink-in/b.txt')
        self.assertEqual((r.status, r.body), (200, b'in a\n'))

    def test_symlink_pointing_outside_root_is_404_by_default(self):
        for target in ('/link-out', '/rel-link-out', '/dirlink-out/file.txt'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual(r.status, 404)
                self.assertNotSecret(r, target)

    # dot-files

    def test_dotfiles_are_404_by_default(self):
        for target in ('/.htpasswd', '/.git/config', '/.git/', '/sub/.hidden',
                       '/%2ehtpasswd'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual(r.status, 404)
                self.assertNotIn(b'user:hash', r.raw)

    def test_well_known_is_served(self):
        r = self.get('/.well-known/x')
        self.assertEqual((r.status, r.body), (200, b'well known\n'))


class StaticFilesNoCache(StaticFiles):
    """All of StaticFiles again with the open-file cache off: both paths
    must give the same answers."""
    NO_CACHE = True
    ARGS = ('-o', 'open_file_cache.max=0')


class SpecialFiles(ServerCase):
    """Non-regular files; a fifo must neither be served nor block a worker."""
    FILES = {'ok.txt': 'ok\n'}

    @classmethod
    def populate(cls, base, www):
        os.mkfifo(os.path.join(www, 'fifo'))

    def test_fifo_is_403_and_server_keeps_serving(self):
        r = self.get('/fifo', timeout=15)
        self.assertEqual(r.status, 403)
        r = self.get('/ok.txt')
        self.assertEqual((r.status, r.body), (200, b'ok\n'))

    def test_head_fifo_is_403(self):
        r = self.get('/fifo', method='HEAD', timeout=15)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.rest, b'')


class DirListing(ServerCase):
    ARGS = ('-o', 'dir_listing=true')
    FILES = {
        'list/<b>&x.txt': 'tricky\n',
        'list/plain.txt': 'plain\n',
        'list/sub dir/f.txt': 'f',
        'list/.hidden': 'h',
        'withindex/index.html': 'the index\n',
        'withindex/other.txt': 'o',
    }

    def test_listing_shows_names_html_escaped(self):
        r = self.get('/list/')
        self.assertEqual(r.status, 200)
        self.assertEqual(norm_ct(r.header('Content-Type')), 'text/html;charset=utf-8')
        self.assertIn(b'&lt;b&gt;&amp;x.txt', r.body)
        self.assertNotIn(b'<b>&x.txt', r.body)
        self.assertIn(b'plain.txt', r.body)
        self.assertIn(b'sub dir/', r.body)

    def test_listing_links_work(self):
        r = self.get('/list/')
        raw_hrefs = [h.decode() for h in re.findall(rb'href="([^"]*)"', r.body)]
        for h in raw_hrefs:
            self.assertNotRegex(h, r'[<>" ]', 'href not escaped: %r' % h)
        # attribute value -> URL (HTML-unescape) -> file name (percent-decode)
        urls = [html.unescape(h) for h in raw_hrefs]
        target = [u for u in urls if urllib.parse.unquote(u).endswith('<b>&x.txt')]
        self.assertEqual(len(target), 1, urls)
        url = target[0] if target[0].startswith('/') else '/list/' + target[0]
        got = self.get(url)
        self.assertEqual((got.status, got.body), (200, b'tricky\n'))

    def test_listing_hides_dotfiles(self):
        self.assertNotIn(b'.hidden', self.get('/list/').body)

    def test_index_wins_over_listing(self):
        r = self.get('/withindex/')
        self.assertEqual((r.status, r.body), (200, b'the index\n'))

    def test_listing_of_directory_without_slash_redirects(self):
        r = self.get('/list')
        self.assertEqual(r.status, 301)
        self.assertEqual(urllib.parse.urlsplit(r.header('Location')).path, '/list/')

    def test_head_of_listing_has_no_body(self):
        r = self.get('/list/', method='HEAD')
        self.assertEqual((r.status, r.rest), (200, b''))


class FollowSymlinks(ServerCase):
    ARGS = ('-o', 'follow_symlinks=true')
    FILES = {'hello.txt': HELLO}

    @classmethod
    def populate(cls, base, www):
        os.symlink(os.path.join(base, 'secret'), os.path.join(www, 'link-out'))
        os.symlink(os.path.join(base, 'outside'), os.path.join(www, 'dirlink-out'))
        os.symlink('/dev/null', os.path.join(www, 'devnull'))

    def test_symlink_outside_is_served_when_following(self):
        r = self.get('/link-out')
        self.assertEqual((r.status, r.body), (200, SECRET))
        r = self.get('/dirlink-out/file.txt')
        self.assertEqual((r.status, r.body), (200, SECRET))

    def test_traversal_still_blocked_when_following_symlinks(self):
        for target in ('/../secret', '/%2e%2e/secret', '/a/../../secret'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual(r.status, 404)
                self.assertNotSecret(r, target)

    def test_symlink_to_device_is_403(self):
        self.assertEqual(self.get('/devnull').status, 403)


class AllowDotfiles(ServerCase):
    ARGS = ('-o', 'allow_dotfiles=true')
    FILES = {'.htpasswd': 'user:hash\n', 'sub/.hidden': 'h\n'}

    def test_dotfiles_served_when_allowed(self):
        r = self.get('/.htpasswd')
        self.assertEqual((r.status, r.body), (200, b'user:hash\n'))
        r = self.get('/sub/.hidden')
        self.assertEqual((r.status, r.body), (200, b'h\n'))

    def test_dot_segments_are_not_dotfiles(self):
        r = self.get('/../.htpasswd')
        self.assertEqual((r.status, r.body), (200, b'user:hash\n'))
        self.assertNotSecret(self.get('/../secret'), '/../secret')


CSS = b'body { color: red; }\n' * 40
CSS_GZ = gzip.compress(CSS, mtime=0)
CSS_BR = b'not really brotli, but only its name matters to the server\n'
INDEX_HTML = b'<html><body>index</body></html>\n'


class Precompressed(ServerCase):
    """precompressed = true (nginx's gzip_static, for .gz and .br): a
    client that accepts a coding gets the NAME.br / NAME.gz sibling as it is
    on disk, with Content-Encoding, the original's Content-Type and the
    sibling's own validators; Vary: Accept-Encoding on every file response;
    a coding refused with q=0 is never sent; ranges and conditionals apply
    to the representation sent."""
    ARGS = ('-o', 'precompressed=true', '-o', 'open_file_cache.max=0')
    FILES = {
        'style.css': CSS, 'style.css.gz': CSS_GZ, 'style.css.br': CSS_BR,
        'app.js': b'var x = 1;\n' * 50, 'app.js.gz': gzip.compress(b'var x = 1;\n' * 50),
        'plain.txt': b'no siblings\n',
        'dir/index.html': INDEX_HTML, 'dir/index.html.gz': gzip.compress(INDEX_HTML),
        'odd.txt': b'sibling is a directory\n', 'odd.txt.gz/x': b'x',
        'only.gz.txt.gz': b'orphan sibling',
    }

    def enc(self, target, ae, **kw):
        h = {'Accept-Encoding': ae} if ae is not None else {}
        h.update(kw.pop('headers', {}))
        r = self.get(target, h, **kw)
        self.assertEqual(r.header('Vary'), 'Accept-Encoding', r.raw[:400])
        return r

    def test_gzip_accepted_gets_the_gz_sibling_with_the_original_type(self):
        r = self.enc('/app.js', 'gzip, deflate')
        self.assertEqual((r.status, r.header('Content-Encoding')), (200, 'gzip'))
        # the type of app.js (from mime.types), never that of a .gz file
        self.assertEqual(r.header('Content-Type'), self.enc('/app.js', None).header('Content-Type'))
        self.assertIn('javascript', r.header('Content-Type'))
        self.assertEqual(gzip.decompress(r.body), b'var x = 1;\n' * 50)
        self.assertEqual(int(r.header('Content-Length')), len(r.body))

    def test_no_accept_encoding_and_identity_get_the_file_itself(self):
        for ae in (None, 'identity', 'deflate', 'gzip;q=0', 'br;q=0, gzip;q=0', '*;q=0', 'gzip;q=x'):
            with self.subTest(ae=ae):
                r = self.enc('/style.css', ae)
                self.assertEqual((r.status, r.body), (200, CSS))
                self.assertIsNone(r.header('Content-Encoding'))

    def test_weights_choose_between_br_and_gzip(self):
        cases = (('br', CSS_BR), ('gzip', CSS_GZ), ('gzip, br', CSS_BR),
                 ('br;q=0.4, gzip;q=0.5', CSS_GZ), ('*', CSS_BR), ('*, br;q=0', CSS_GZ),
                 ('gzip;q=0, *;q=0.1', CSS_BR), ('GZIP ; Q=1.0', CSS_GZ))
        for ae, body in cases:
            with self.subTest(ae=ae):
                r = self.enc('/style.css', ae)
                self.assertEqual((r.status, r.body), (200, body))
                self.assertEqual(r.header('Content-Encoding'), 'br' if body is CSS_BR else 'gzip')
                self.assertEqual(r.header('Content-Type'), 'text/css; charset=utf-8')

    def test_accepted_coding_without_a_sibling_falls_back(self):
        # br is preferred but app.js has only a .gz: gzip; plain.txt has none
        r = self.enc('/app.js', 'br, gzip;q=0.5')
        self.assertEqual(r.header('Content-Encoding'), 'gzip')
        r = self.enc('/plain.txt', 'br, gzip')
        self.assertEqual((r.status, r.body, r.header('Content-Encoding')),
                         (200, b'no siblings\n', None))
        r = self.enc('/odd.txt', 'gzip')
        self.assertEqual((r.status, r.body, r.header('Content-Encoding')),
                         (200, b'sibling is a directory\n', None))

    def test_a_sibling_alone_does_not_make_the_original_exist(self):
        r = self.get('/only.gz.txt', {'Accept-Encoding': 'gzip'})
        self.assertEqual(r.status, 404)

    def test_index_file_has_its_sibling_too(self):
        r = self.enc('/dir/', 'gzip')
        self.assertEqual((r.status, r.header('Content-Encoding')), (200, 'gzip'))
        self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
        self.assertEqual(gzip.decompress(r.body), INDEX_HTML)

    def test_each_representation_has_its_own_etag_and_conditionals_use_it(self):
        plain = self.enc('/style.css', None)
        gz = self.enc('/style.css', 'gzip')
        self.assertNotEqual(plain.header('ETag'), gz.header('ETag'))
        r = self.enc('/style.css', 'gzip', headers={'If-None-Match': gz.header('ETag')})
        self.assertEqual((r.status, r.body), (304, b''))
        r = self.enc('/style.css', 'gzip', headers={'If-None-Match': plain.header('ETag')})
        self.assertEqual((r.status, r.body), (200, CSS_GZ))

    def test_ranges_apply_to_the_encoded_representation(self):
        r = self.enc('/style.css', 'gzip', headers={'Range': 'bytes=0-9'})
        self.assertEqual((r.status, r.header('Content-Encoding')), (206, 'gzip'))
        self.assertEqual(r.header('Content-Range'), 'bytes 0-9/%d' % len(CSS_GZ))
        self.assertEqual(r.body, CSS_GZ[:10])

    def test_head_matches_get(self):
        g = self.enc('/style.css', 'gzip')
        h = self.enc('/style.css', 'gzip', method='HEAD')
        self.assertEqual((h.status, h.body), (200, b''))
        for k in ('Content-Length', 'Content-Encoding', 'ETag', 'Content-Type'):
            self.assertEqual(h.header(k), g.header(k), k)

    def test_curl_compressed_decodes_it(self):
        curl = shutil.which('curl')
        if not curl:
            self.skipTest('curl not installed')
        out = subprocess.run([curl, '-sS', '--compressed', '-D', '-',
                              'http://127.0.0.1:%d/app.js' % self.port],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60).stdout
        head, _, body = out.partition(b'\r\n\r\n')
        self.assertIn(b'Content-Encoding: gzip', head)
        self.assertEqual(body, b'var x = 1;\n' * 50)


class PrecompressedOff(ServerCase):
    FILES = {'style.css': CSS, 'style.css.gz': CSS_GZ}

    def test_off_by_default_no_vary_and_the_file_itself(self):
        r = self.get('/style.css', {'Accept-Encoding': 'gzip, br'})
        self.assertEqual((r.status, r.body), (200, CSS))
        self.assertIsNone(r.header('Content-Encoding'))
        self.assertIsNone(r.header('Vary'))


class PrecompressedLocation(ServerCase):
    FILES = {'a/style.css': CSS, 'a/style.css.gz': CSS_GZ,
             'b/style.css': CSS, 'b/style.css.gz': CSS_GZ}

    @classmethod
    def conf(cls, base):
        return 'locations = ( { prefix = "/a/"; handler = "static"; precompressed = true; } );\n'

    def test_a_location_turns_it_on_for_its_paths_only(self):
        r = self.get('/a/style.css', {'Accept-Encoding': 'gzip'})
        self.assertEqual((r.header('Content-Encoding'), r.body), ('gzip', CSS_GZ))
        r = self.get('/b/style.css', {'Accept-Encoding': 'gzip'})
        self.assertEqual((r.header('Content-Encoding'), r.body), (None, CSS))


class ManyRanges(ServerCase):
    ARGS = ('-o', 'limits.max_ranges=40')
    FILES = {'digits.txt': DIGITS}

    def test_multipart_with_more_than_16_parts_has_every_part(self):
        # 30 disjoint ranges: every one is answered, none dropped or truncated
        spec = [(i, i) for i in range(0, 60, 2) if i < len(DIGITS)]
        r = self.get('/digits.txt', {'Range': 'bytes=' + ','.join('%d-%d' % x for x in spec)})
        self.assertEqual(r.status, 206)
        self.assertEqual(int(r.header('Content-Length')), len(r.body))
        parts = parse_byteranges(r)
        self.assertEqual(len(parts), len(spec))
        self.assertEqual([p[2] for p in parts], [DIGITS[a:b + 1] for a, b in spec])


SIZES = (0, 1, 1024, 16383, 16384, 16385, 70000)
SIZED = {n: os.urandom(n) for n in SIZES}


class FileSizes(ServerCase):
    """Small files leave with their headers in one write (read into the
    output queue), larger ones by sendfile: both paths, at the boundary,
    must give the exact bytes, for GET, HEAD, pipelined and ranged requests."""
    FILES = {'f%d.bin' % n: data for n, data in SIZED.items()}

    def test_every_size_is_served_exactly(self):
        for n, data in SIZED.items():
            r = self.get('/f%d.bin' % n)
            self.assertEqual((r.status, int(r.header('Content-Length')), r.body),
                             (200, n, data), 'size %d' % n)
            h = self.get('/f%d.bin' % n, method='HEAD')
            self.assertEqual((h.status, int(h.header('Content-Length')), h.body), (200, n, b''))

    def test_pipelined_small_and_large_files_keep_their_order(self):
        names = ['/f16384.bin', '/f1.bin', '/f70000.bin', '/f16385.bin', '/f0.bin']
        req = b''.join(b'GET %s HTTP/1.1\r\nHost: x\r\n\r\n' % n.encode() for n in names)
        out = harness.raw(self.port, req + b'GET /f1024.bin HTTP/1.1\r\nHost: x\r\n'
                          b'Connection: close\r\n\r\n', timeout=20)
        resps = harness.parse_responses(out)
        want = [SIZED[int(n[2:-4])] for n in names] + [SIZED[1024]]
        self.assertEqual([r.body for r in resps], want)

    def test_range_of_a_small_file(self):
        r = self.get('/f16384.bin', {'Range': 'bytes=100-199'})
        self.assertEqual((r.status, r.body), (206, SIZED[16384][100:200]))


# -- vhosts and locations -------------------------------------------------

class Vhosts(ServerCase):
    @classmethod
    def populate(cls, base, www):
        make_tree(www, {'who.txt': 'top-level root\n'})
        for name in ('alpha', 'beta', 'wild', 'fallback'):
            make_tree(os.path.join(base, name), {'who.txt': name + '\n',
                                                 'index.html': 'index of %s\n' % name})

    @classmethod
    def conf(cls, base):
        return '''
vhosts = (
  { names = [ "alpha.test" ]; root = "%(b)s/alpha"; },
  { names = [ "beta.test", "www.beta.test" ]; root = "%(b)s/beta"; },
  { names = [ "*.wild.test" ]; root = "%(b)s/wild"; },
  { names = [ "fallback.test" ]; default = true; root = "%(b)s/fallback"; }
);
''' % {'b': base}

    def who(self, host, target='/who.txt'):
        r = self.get(target, host=host)
        self.assertEqual(r.status, 200, 'Host %r' % host)
        return r.body.decode().strip()

    def test_exact_names_select_vhost(self):
        self.assertEqual(self.who('alpha.test'), 'alpha')
        self.assertEqual(self.who('beta.test'), 'beta')
        self.assertEqual(self.who('www.beta.test'), 'beta')

    def test_host_port_is_stripped_and_case_ignored(self):
        self.assertEqual(self.who('alpha.test:%d' % self.port), 'alpha')
        self.assertEqual(self.who('ALPHA.Test:8080'), 'alpha')
        self.assertEqual(self.who('Beta.TEST'), 'beta')

    def test_wildcard_suffix_matches_subdomain(self):
        self.assertEqual(self.who('x.wild.test'), 'wild')
        self.assertEqual(self.who('WWW.Wild.Test:81'), 'wild')

    def test_unknown_host_uses_default_vhost(self):
        self.assertEqual(self.who('unknown.test'), 'fallback')
        self.assertEqual(self.who('127.0.0.1:%d' % self.port), 'fallback')
        self.assertEqual(self.who('fallback.test'), 'fallback')
        self.assertEqual(self.who('xwild.test'), 'fallback')

    def test_http10_without_host_uses_default_vhost(self):
        r = self.get('/who.txt', host=None, version='HTTP/1.0')
        self.assertEqual((r.status, r.body), (200, b'fallback\n'))

    def test_absolute_form_authority_selects_vhost(self):
        # RFC 9112 §3.2.2: the target's authority wins over the Host header
        r = self.get('http://alpha.test/who.txt', host='beta.test')
        self.assertEqual((r.status, r.body), (200, b'alpha\n'))
        r = self.get('http://ALPHA.TEST:%d/who.txt' % self.port, host='unknown.test')
        self.assertEqual((r.status, r.body), (200, b'alpha\n'))
        r = self.get('http://a.wild.test/', host='alpha.test')
        self.assertEqual((r.status, r.body), (200, b'index of wild\n'))

    def test_vhost_index_and_isolation(self):
        r = self.get('/', host='beta.test')
        self.assertEqual((r.status, r.body), (200, b'index of beta\n'))
        # another vhost's root is not reachable by traversal
        r = self.get('/../alpha/who.txt', host='beta.test')
        self.assertEqual(r.status, 404)
        self.assertNotIn(b'alpha', r.body)

    def test_via_curl_with_resolve(self):
        p = harness.curl('--resolve', 'alpha.test:%d:127.0.0.1' % self.port,
                         'http://alpha.test:%d/who.txt' % self.port)
        self.assertEqual(p.stdout, b'alpha\n', p.stderr)


class Locations(ServerCase):
    FILES = {
        'pub/a.txt': 'a',
        'pub/sub/b.txt': 'b',
        'priv/c.txt': 'c',
        'robots.txt': 'docroot robots\n',
    }

    @classmethod
    def populate(cls, base, www):
        make_tree(os.path.join(base, 'common'), {'robots.txt': 'common robots\n'})

    @classmethod
    def conf(cls, base):
        return '''
locations = (
  { prefix = "/pub/"; handler = "static"; dir_listing = true; },
  { exact = "/robots.txt"; handler = "static"; root = "%s/common"; }
);
''' % base

    def test_prefix_location_enables_listing(self):
        r = self.get('/pub/')
        self.assertEqual(r.status, 200)
        self.assertIn(b'a.txt', r.body)
        self.assertIn(b'sub/', r.body)

    def test_prefix_location_applies_to_subdirectories(self):
        r = self.get('/pub/sub/')
        self.assertEqual(r.status, 200)
        self.assertIn(b'b.txt', r.body)

    def test_outside_location_listing_stays_off(self):
        self.assertEqual(self.get('/priv/').status, 403)
        self.assertEqual(self.get('/').status, 403)

    def test_files_in_location_are_served(self):
        r = self.get('/pub/sub/b.txt')
        self.assertEqual((r.status, r.body), (200, b'b'))

    def test_exact_location_root_replaces_vhost_root(self):
        r = self.get('/robots.txt')
        self.assertEqual((r.status, r.body), (200, b'common robots\n'))


# -- access log -----------------------------------------------------------

LOG_RE = re.compile(
    r'^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "(?P<req>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) '
    r'(?P<size>\d+|-) "(?P<ref>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)" '
    r'(?P<rt>\d+\.\d{3}) (?P<gwt>\d+\.\d{3}|-)$')


class AccessLog(ServerCase):
    ACCESS_LOG = True
    FILES = {'a.txt': 'hello', 'index.html': 'i'}

    def log_lines(self):
        try:
            with open(os.path.join(self.base, 'access.log'), 'rb') as f:
                return f.read().decode('utf-8', 'replace').splitlines()
        except FileNotFoundError:
            return []

    def wait_line(self, needle):
        """The one log line containing needle (the request is unique)."""
        found = []

        def pred():
            found[:] = [ln for ln in self.log_lines() if needle in ln]
            return found
        self.srv.wait_for(pred, timeout=10)
        self.assertEqual(len(found), 1, 'log lines with %r: %r\nall: %r' %
                         (needle, found, self.log_lines()))
        m = LOG_RE.match(found[0])
        self.assertIsNotNone(m, 'not combined+time format: %r' % found[0])
        return m

    def test_curl_get_logged_in_combined_format(self):
        p = harness.curl(self.srv.url('/a.txt?curl=1'))
        self.assertEqual(p.stdout, b'hello')
        m = self.wait_line('/a.txt?curl=1 ')
        self.assertEqual(m.group('ip'), '127.0.0.1')
        self.assertEqual(m.group('req'), 'GET /a.txt?curl=1 HTTP/1.1')
        self.assertEqual((m.group('status'), m.group('size')), ('200', '5'))
        self.assertEqual(m.group('ref'), '-')
        self.assertTrue(m.group('ua').startswith('curl/'), m.group('ua'))
        self.assertEqual(m.group('gwt'), '-')  # a static file: no gateway time
        t = datetime.strptime(m.group('time'), '%d/%b/%Y:%H:%M:%S %z')
        self.assertLess(abs(t - datetime.now(timezone.utc)), timedelta(days=1))

    def test_referer_user_agent_and_404_logged(self):
        r = self.get('/missing-xyz', {'Referer': 'http://ref.example/p', 'User-Agent': 'ua/1.0'})
        self.assertEqual(r.status, 404)
        m = self.wait_line('/missing-xyz')
        self.assertEqual(m.group('req'), 'GET /missing-xyz HTTP/1.1')
        self.assertEqual(m.group('status'), '404')
        self.assertEqual(m.group('size'), r.header('Content-Length'))
        self.assertEqual((m.group('ref'), m.group('ua')), ('http://ref.example/p', 'ua/1.0'))

    def test_head_304_and_416_logged_with_status(self):
        self.get('/a.txt?head=1', method='HEAD')
        self.assertEqual(self.wait_line('/a.txt?head=1').group('status'), '200')
        self.assertTrue(self.wait_line('/a.txt?head=1').group('req').startswith('HEAD '))
        self.get('/a.txt?cond=1', {'If-Modified-Since': FUTURE_HTTP})
        m = self.wait_line('/a.txt?cond=1')
        self.assertEqual(m.group('status'), '304')
        self.assertIn(m.group('size'), ('0', '-'))
        self.get('/a.txt?range=1', {'Range': 'bytes=99-'})
        self.assertEqual(self.wait_line('/a.txt?range=1').group('status'), '416')

    def test_quotes_and_control_bytes_in_fields_are_escaped(self):
        self.get('/a.txt?esc=1', {'User-Agent': 'evil" 200 "x\u00e9', 'Referer': 'r"ef'})
        m = self.wait_line('/a.txt?esc=1')
        self.assertNotIn('\u00e9', m.group(0), 'non-ASCII bytes must be escaped')
        self.assertIn('evil', m.group('ua'))
        self.assertEqual(m.group('status'), '200')

    def test_request_time_has_millisecond_precision(self):
        self.get('/a.txt?rt=1')
        m = self.wait_line('/a.txt?rt=1')
        self.assertRegex(m.group('rt'), r'^\d+\.\d{3}$')

    def test_bad_request_is_logged(self):
        r = self.get('/%00?bad=1')
        self.assertEqual(r.status, 400)
        m = self.wait_line('?bad=1')
        self.assertEqual(m.group('status'), '400')


if __name__ == '__main__':
    harness.main()
