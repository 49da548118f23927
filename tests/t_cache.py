"""t_cache.py: the response cache for gateway responses (issue 18 part 1),
in front of a real PHP-FPM (tests/lib/phpfpm.py) running tests/cache/c.php,
which counts its requests per id in a file and answers with the headers its
query asks for (Cache-Control, Expires, Set-Cookie, Vary, ETag, a status, a
delay, a body size).

Covered: MISS then HIT without the backend (by its count); max-age expiry
(EXPIRED) and Expires; no-store, private, no-cache, Set-Cookie not stored
(unless cache_set_cookie); cache_valid for responses that say nothing, and
--cache DIR storing only what backends allow; Authorization bypasses the
cache; a conditional request answered 304 from the cache; Vary variants;
100 concurrent clients on a cold entry -> exactly one backend request; the
entry file checked when read back (another key, truncated); stale while
updating and on backend errors; PURGE from trusted addresses only; LRU
eviction within cache_max_size; the index kept across a reload; the
status page's cache counters and $upstream_cache_status in the access
log. Nothing asserts on timings: waits have generous timeouts."""

import glob
import gzip
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

text_string_to_metric_families = harness.debian_import(
    'prometheus_client.parser').parser.text_string_to_metric_families

HERE = os.path.dirname(os.path.abspath(__file__))
tag = harness.tag


def http_get(port, target, headers=None, method='GET', timeout=30, tls=False):
    if tls:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection('127.0.0.1', port, timeout=timeout, context=ctx)
    else:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        c.request(method, target, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


CONF = '''
cache_dir = "@CACHE@";
cache_max_size = "@MAXSIZE@";
cache_zones = ( { name = "other"; dir = "@CACHE@-other"; max_size = "10M"; entries = 100; } );
backends = ( { name = "php"; servers = [ "@ADDR@" ]; } );
locations = (
  { extension = ".php"; handler = "fastcgi"; backend = "php";
    cache = true; cache_status_header = true;
    cache_purge = [ "127.0.0.1" ];
    cache_use_stale = [ "updating", "error" ];
    @EXTRA@ },
  { prefix = "/valid/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_valid = [ "200 1h", "404 1m" ]; },
  { prefix = "/nopurge/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_purge = [ "10.9.9.9" ]; },
  { prefix = "/cookies/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_set_cookie = true;
    cache_authorized = true; },
  { prefix = "/z/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; compress = true; },
  { prefix = "/fill/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_lock_timeout = "120s"; },
  { prefix = "/lock/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_lock_timeout = "300ms"; },
  { prefix = "/other/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_zone = "other"; },
  { prefix = "/bg/"; handler = "fastcgi"; backend = "php"; program = "@WWW@/c.php";
    cache = true; cache_status_header = true; cache_use_stale = [ "updating" ];
    cache_background_update = true; },
  { prefix = "/status"; handler = "status"; }
);
access_log_format = "$remote_addr \\"$request\\" $status $upstream_cache_status";
'''


@phpfpm.skip_unless_php_fpm
class CacheCase(unittest.TestCase):
    ARGS = ()
    EXTRA = ''
    MAXSIZE = '64M'
    WORKERS = 2
    USE_CONF = True
    TLS = False

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-cache-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.www = os.path.join(cls.base, 'www')
        cls.counts = os.path.join(cls.www, 'counts')
        os.makedirs(cls.counts)
        os.chmod(cls.base, 0o755)
        os.chmod(cls.www, 0o755)
        os.chmod(cls.counts, 0o777)
        shutil.copy(os.path.join(HERE, 'cache', 'c.php'), cls.www)
        cls.cache = os.path.join(cls.base, 'cache')
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', max_children=4)])
        cls.addClassCleanup(cls.fpm.stop)
        cls.fpm.start()
        cls.addr = cls.fpm.pool('www').address

        def sub(s):
            return (s.replace('@ADDR@', cls.addr).replace('@WWW@', cls.www)
                    .replace('@CACHE@', cls.cache).replace('@EXTRA@', cls.EXTRA)
                    .replace('@MAXSIZE@', cls.MAXSIZE))
        cls.conf_text = sub(CONF) if cls.USE_CONF else None
        kw = {}
        if cls.TLS:
            crt, key = os.path.join(cls.base, 'c.crt'), os.path.join(cls.base, 'c.key')
            subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                            'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                            '-days', '30', '-subj', '/CN=localhost'], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cls.conf_text = ('tls_listen = [ "127.0.0.1:@PORT@" ];\n'
                             'tls = { certificate = "%s"; key = "%s"; };\n' % (crt, key)
                             + cls.conf_text)
            kw['listen'] = []
        harness.start_class_server(cls, *[sub(a) for a in cls.ARGS], conf=cls.conf_text,
                                   docroot=cls.www, workers=cls.WORKERS, access_log=True, **kw)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def count(self, id_):
        try:
            with open(os.path.join(self.counts, id_)) as f:
                return int(f.read() or 0)
        except FileNotFoundError:
            return 0

    def get(self, target, headers=None, method='GET'):
        return http_get(self.port, target, headers, method, tls=self.TLS)

    def assertStatus(self, target, want, headers=None, method='GET'):
        st, h, body = self.get(target, headers, method)
        self.assertEqual(st, 200, (target, st, h, body[:300], self.srv.stderr_text()[-2000:]))
        self.assertEqual(h.get('x-cache-status'), want, (target, h, body[:200]))
        return h, body


class Basics(CacheCase):

    def test_miss_then_hit_without_backend(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        h, b1 = self.assertStatus(u, 'MISS')
        self.assertEqual(self.count(t), 1)
        h, b2 = self.assertStatus(u, 'HIT')
        self.assertEqual(b1, b2)
        self.assertEqual(h.get('x-backend'), 'php')
        self.assertIn('age', h)
        self.assertEqual(self.count(t), 1, 'a hit went to the backend')
        # another query is another key
        self.assertStatus('/c.php?id=%s&cc=max-age%%3D300&x=1' % t, 'MISS')
        self.assertEqual(self.count(t), 2)

    def test_head_served_from_cache(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        st, h, body = self.get(u, method='HEAD')
        self.assertEqual((st, h.get('x-cache-status'), body), (200, 'HIT', b''))
        self.assertEqual(self.count(t), 1)

    def test_large_body_streamed_and_stored(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300&size=3000000' % t
        h, b1 = self.assertStatus(u, 'MISS')
        self.assertGreater(len(b1), 3000000)
        h, b2 = self.assertStatus(u, 'HIT')
        self.assertEqual(b1, b2)
        self.assertEqual(self.count(t), 1)

    def test_hits_compressed_on_the_fly(self):
        t = tag()
        u = '/z/?id=%s&cc=max-age%%3D300&size=5000&etag=e1' % t
        gz = {'Accept-Encoding': 'gzip'}
        st, h, b = self.get(u, gz)
        self.assertEqual((st, h.get('x-cache-status'), h.get('content-encoding')),
                         (200, 'MISS', 'gzip'))
        plain = gzip.decompress(b)
        self.assertIn(b'n=1', plain)
        st, h, b = self.get(u, gz)
        self.assertEqual((st, h.get('x-cache-status'), h.get('content-encoding'), h.get('etag')),
                         (200, 'HIT', 'gzip', 'W/"e1"'))
        self.assertIn('Accept-Encoding', h.get('vary', ''))
        self.assertEqual(gzip.decompress(b), plain)
        st, h, b = self.get(u)
        self.assertEqual((st, h.get('x-cache-status'), h.get('content-encoding'), b),
                         (200, 'HIT', None, plain))
        st, h, b = self.get(u, {'Accept-Encoding': 'gzip', 'If-None-Match': '"e1"'})
        self.assertEqual((st, b), (304, b''))
        self.assertEqual(self.count(t), 1)

    def test_a_location_in_another_zone(self):
        t = tag()
        u = '/other/?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 1)
        other = self.cache + '-other'
        self.assertEqual(os.stat(other).st_mode & 0o777, 0o700)
        with_t = [f for f in glob.glob(os.path.join(other, '*'))
                  if ('id=%s&' % t).encode() in open(f, 'rb').read(4096)]
        self.assertEqual(len(with_t), 1)
        # an unknown zone is a configuration error
        bad = os.path.join(self.base, 'bad.conf')
        with open(bad, 'w') as f:
            f.write(harness.root_user(
                'cache_dir = "%s"; locations = ( { prefix = "/x/"; handler = "cgi"; dir = "%s"; '
                'cache = true; cache_zone = "nope"; } );' % (self.cache, self.www)))
        p = subprocess.run([harness.PORTICO, '-t', '-c', bad], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"no zone named 'nope'", p.stdout)

    def test_max_age_expires(self):
        # fresh for 3 s, then (cc2) the refreshed copy for 300 s: the HITs
        # hold on a slow machine (a 1 s window was missed under ASan)
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D3&cc2=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        time.sleep(4.2)
        h, b = self.assertStatus(u, 'EXPIRED')
        self.assertIn(b'n=2', b)
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 2)

    def test_s_maxage_wins_over_max_age(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D0,%%20s-maxage%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 1)

    def test_expires_header(self):
        t = tag()
        u = '/c.php?id=%s&exp=300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 1)

    def test_not_stored(self):
        for what in ('cc=no-store', 'cc=private,max-age%3D300', 'cc=max-age%3D300&cookie=1',
                     'cc=max-age%3D300&vary=*', ''):
            t = tag()
            u = '/c.php?id=%s&%s' % (t, what)
            self.assertStatus(u, 'MISS')
            self.assertStatus(u, 'MISS')
            self.assertEqual(self.count(t), 2, what)

    def test_expired_entry_revalidated_with_the_backend(self):
        t = tag()
        # fresh for 3 s: the HIT after the revalidation holds on a slow machine
        u = '/c.php?id=%s&cc=max-age%%3D3&etag=r1&reval=1' % t
        self.assertStatus(u, 'MISS')
        time.sleep(4.2)
        # the backend is asked with If-None-Match: "r1" and answers 304
        h, b = self.assertStatus(u, 'REVALIDATED')
        self.assertIn(b'n=1', b)
        self.assertEqual(h.get('etag'), '"r1"')
        self.assertEqual(self.count(t), 2)
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 2)
        # the client's own validators still decide what it gets
        time.sleep(4.2)
        st, h, b = self.get(u, {'If-None-Match': '"r1"'})
        self.assertEqual((st, h.get('x-cache-status'), b), (304, 'REVALIDATED', b''))
        st, h, b = self.get(u, {'If-None-Match': '"other"'})
        self.assertEqual((st, h.get('x-cache-status')), (200, 'HIT'))
        # Last-Modified alone, and the 304's own Cache-Control
        t2 = tag()
        u2 = '/c.php?id=%s&cc=max-age%%3D1&reval=1&cc304=max-age%%3D300' % t2
        self.assertStatus(u2, 'MISS')
        time.sleep(2.2)
        self.assertStatus(u2, 'REVALIDATED')
        time.sleep(2.2)
        self.assertStatus(u2, 'HIT')  # fresh for 300 s now
        self.assertEqual(self.count(t2), 2)

    def test_no_cache_stored_and_revalidated_at_each_use(self):
        t = tag()
        u = '/c.php?id=%s&cc=no-cache&etag=nc&reval=1' % t
        self.assertStatus(u, 'MISS')
        for n in (2, 3):
            h, b = self.assertStatus(u, 'REVALIDATED')
            self.assertIn(b'n=1', b)
            self.assertEqual(self.count(t), n)
        # concurrent requests wait for one revalidation and share its answer
        results = []
        start = threading.Event()

        u = u.replace('reval=1', 'reval=1&sleep=500')

        def client():
            start.wait()
            results.append(self.get(u))
        self.assertStatus(u, 'MISS')
        before = self.count(t)
        threads = [threading.Thread(target=client) for _ in range(20)]
        for th in threads:
            th.start()
        start.set()
        for th in threads:
            th.join(60)
        self.assertEqual(len(results), 20)
        self.assertEqual({r[0] for r in results}, {200})
        self.assertEqual(self.count(t), before + 1)
        self.assertEqual({r[1].get('x-cache-status') for r in results}, {'REVALIDATED', 'HIT'})
        # a backend that ignores the validators answers 200: refilled
        t2 = tag()
        u2 = '/valid/?id=%s&cc=no-cache' % t2
        self.assertStatus(u2, 'MISS')
        self.assertStatus(u2, 'EXPIRED')  # stored, revalidated: PHP answers 200 again
        self.assertEqual(self.count(t2), 2)

    def test_set_cookie_stored_when_told(self):
        t = tag()
        u = '/cookies/?id=%s&cc=max-age%%3D300&cookie=1' % t
        self.assertStatus(u, 'MISS')
        h, _ = self.assertStatus(u, 'HIT')
        self.assertIn('set-cookie', h)
        self.assertEqual(self.count(t), 1)

    def test_cache_valid_for_silent_responses(self):
        t = tag()
        u = '/valid/?id=%s' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 1)
        # a 404 by its own validity; a 500 is never stored
        t2 = tag()
        for want in ('MISS', 'HIT'):
            st, h, _ = self.get('/valid/?id=%s&st=404' % t2)
            self.assertEqual((st, h.get('x-cache-status')), (404, want))
        t3 = tag()
        for _ in range(2):
            st, h, _ = self.get('/valid/?id=%s&st=500' % t3)
            self.assertEqual((st, h.get('x-cache-status')), (500, 'MISS'))
        self.assertEqual((self.count(t2), self.count(t3)), (1, 2))

    def test_authorization_bypasses(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        auth = {'Authorization': 'Basic dXNlcjpwYXNz'}
        h, b = self.assertStatus(u, 'BYPASS', auth)
        self.assertIn(b'n=2', b)
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 2)
        # cache_authorized = true: they share it
        t2 = tag()
        u2 = '/cookies/?id=%s&cc=max-age%%3D300' % t2
        self.assertStatus(u2, 'MISS', auth)
        self.assertStatus(u2, 'HIT', auth)
        self.assertEqual(self.count(t2), 1)

    def test_request_no_store_is_not_stored(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS', {'Cache-Control': 'no-store'})
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT', {'Cache-Control': 'no-store'})
        self.assertEqual(self.count(t), 2)

    def test_post_not_cached(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        for _ in range(2):
            st, h, _ = self.get(u, method='POST')
            self.assertEqual(st, 200)
            self.assertNotIn('x-cache-status', h)
        self.assertEqual(self.count(t), 2)

    def test_conditional_304_from_cache(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300&etag=v1' % t
        self.assertStatus(u, 'MISS')
        st, h, body = self.get(u, {'If-None-Match': '"v1"'})
        self.assertEqual((st, body, h.get('x-cache-status'), h.get('etag')),
                         (304, b'', 'HIT', '"v1"'))
        st, h, body = self.get(u, {'If-None-Match': '"v2"'})
        self.assertEqual((st, h.get('x-cache-status')), (200, 'HIT'))
        self.assertIn(b'n=1', body)
        st, h, body = self.get(u, {'If-Modified-Since': 'Sun, 02 Jan 2022 00:00:00 GMT'})
        self.assertEqual((st, body), (304, b''))
        st, h, body = self.get(u, {'If-Modified-Since': 'Fri, 31 Dec 2021 00:00:00 GMT'})
        self.assertEqual(st, 200)
        self.assertEqual(self.count(t), 1)

    def test_vary_keeps_variants_apart(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300&vary=Accept-Language' % t
        h, b = self.assertStatus(u, 'MISS', {'Accept-Language': 'de'})
        self.assertIn(b'lang=de', b)
        h, b = self.assertStatus(u, 'HIT', {'Accept-Language': 'de'})
        self.assertIn(b'lang=de', b)
        h, b = self.assertStatus(u, 'MISS', {'Accept-Language': 'fr'})
        self.assertIn(b'lang=fr', b)
        h, b = self.assertStatus(u, 'HIT', {'Accept-Language': 'fr'})
        self.assertIn(b'lang=fr', b)
        self.assertEqual(self.count(t), 2)

    def test_one_fill_for_100_concurrent_clients(self):
        t = tag()
        # the waiters' lock outlasts any slowness of the machine (a waiter
        # past cache_lock_timeout would rightly go to the backend itself)
        u = '/fill/?id=%s&cc=max-age%%3D300&sleep=500' % t
        results = []
        lock = threading.Lock()
        start = threading.Event()

        def client():
            start.wait()
            try:
                st, h, b = self.get(u)
                r = (st, h.get('x-cache-status'), b)
            except Exception as e:  # noqa: BLE001
                r = (0, repr(e), b'')
            with lock:
                results.append(r)
        threads = [threading.Thread(target=client) for _ in range(100)]
        for th in threads:
            th.start()
        start.set()
        for th in threads:
            th.join(120)
        self.assertEqual(len(results), 100)
        self.assertEqual([r for r in results if r[0] != 200], [])
        self.assertEqual(self.count(t), 1, 'the backend saw %d requests' % self.count(t))
        bodies = {r[2] for r in results}
        self.assertEqual(len(bodies), 1)
        self.assertEqual(sum(1 for r in results if r[1] == 'MISS'), 1, results[:5])

    def test_lock_timeout_sends_a_waiter_to_the_backend(self):
        t = tag()
        u = '/lock/?id=%s&cc=max-age%%3D300&sleep=3000' % t
        res = {}
        th = threading.Thread(target=lambda: res.setdefault('filler', self.get(u)))
        th.start()
        self.assertTrue(harness.Server.wait_for(lambda: self.count(t) == 1, 30))
        # waits 300 ms for the fill, then asks the backend itself (not stored)
        st, h, b = self.get(u)
        self.assertEqual((st, h.get('x-cache-status')), (200, 'MISS'))
        self.assertIn(b'n=2', b)
        th.join(60)
        self.assertEqual(res['filler'][1].get('x-cache-status'), 'MISS')
        st, h, b = self.get(u)
        self.assertEqual((st, h.get('x-cache-status')), (200, 'HIT'))
        self.assertIn(b'n=1', b)

    def test_entry_file_checked_when_read(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        files = [f for f in glob.glob(os.path.join(self.cache, '*'))
                 if os.path.getmtime(f) > time.time() - 60]
        victim = None
        for f in files:
            with open(f, 'rb') as fh:
                if ('id=%s&' % t).encode() in fh.read(4096):
                    victim = f
        self.assertIsNotNone(victim, files)
        # truncated: not served, the backend answers again
        with open(victim, 'r+b') as fh:
            fh.truncate(os.path.getsize(victim) - 3)
        h, b = self.assertStatus(u, 'MISS')
        self.assertIn(b'n=2', b)
        self.assertStatus(u, 'HIT')
        # the key inside changed: another key's file under this name is not served
        with open(victim, 'r+b') as fh:
            data = fh.read()
            i = data.index(('id=%s' % t).encode())
            fh.seek(i + 3)
            fh.write(b'Z')
        h, b = self.assertStatus(u, 'MISS')
        self.assertIn(b'n=3', b)

    def test_purge(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        st, _, _ = self.get(u, method='PURGE')
        self.assertEqual(st, 200)
        st, _, _ = self.get(u, method='PURGE')
        self.assertEqual(st, 404)
        self.assertStatus(u, 'MISS')
        self.assertEqual(self.count(t), 2)
        # a location whose cache_purge does not name this client
        u2 = '/nopurge/?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u2, 'MISS')
        st, _, _ = self.get(u2, method='PURGE')
        self.assertEqual(st, 403)
        self.assertStatus(u2, 'HIT')

    def test_stale_while_updating_and_on_error(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D1' % t
        self.assertStatus(u, 'MISS')
        time.sleep(2.2)
        # the backend now fails: the stale entry answers
        down = os.path.join(self.counts, t + '.down')
        open(down, 'w').close()
        try:
            h, b = self.assertStatus(u, 'STALE')
            self.assertIn(b'n=1', b)
        finally:
            os.unlink(down)
        # must-revalidate: never stale, the error goes through
        t3 = tag()
        u3 = '/c.php?id=%s&cc=max-age%%3D1,must-revalidate' % t3
        self.assertStatus(u3, 'MISS')
        time.sleep(2.2)
        down = os.path.join(self.counts, t3 + '.down')
        open(down, 'w').close()
        try:
            st, h, b = self.get(u3)
            self.assertEqual((st, h.get('x-cache-status')), (503, 'EXPIRED'))
        finally:
            os.unlink(down)
        # stale while another request updates it (a slow backend)
        u2 = '/c.php?id=%s&cc=max-age%%3D1&sleep=1500' % (t + 'u')
        self.assertStatus(u2, 'MISS')
        time.sleep(2.2)
        res = {}
        th = threading.Thread(target=lambda: res.setdefault('a', self.get(u2)))
        th.start()
        self.assertTrue(harness.Server.wait_for(lambda: self.count(t + 'u') == 2, 30))
        h, b = self.assertStatus(u2, 'UPDATING')
        self.assertIn(b'n=1', b)
        th.join(60)
        self.assertEqual(res['a'][1].get('x-cache-status'), 'EXPIRED')
        self.assertStatus(u2, 'HIT')

    def test_rfc5861_stale_if_error_from_the_backend(self):
        # /valid/ has no cache_use_stale: only the backend's own
        # stale-if-error=N (RFC 5861 section 4) lets the stale entry answer
        t, t2 = tag(), tag()
        u = '/valid/c?id=%s&cc=max-age%%3D1,stale-if-error%%3D600' % t
        u2 = '/valid/c?id=%s&cc=max-age%%3D1' % t2
        self.assertStatus(u, 'MISS')
        self.assertStatus(u2, 'MISS')
        time.sleep(2.2)
        for x in (t, t2):
            open(os.path.join(self.counts, x + '.down'), 'w').close()
        try:
            h, b = self.assertStatus(u, 'STALE')
            self.assertIn(b'n=1', b)
            st, h, b = self.get(u2)
            self.assertEqual((st, h.get('x-cache-status')), (503, 'EXPIRED'))
        finally:
            for x in (t, t2):
                os.unlink(os.path.join(self.counts, x + '.down'))

    def test_rfc5861_stale_while_revalidate_from_the_backend(self):
        # the backend's stale-while-revalidate=N: while one request
        # refreshes the entry, others get the stale copy (UPDATING) without
        # cache_use_stale; without it they wait for the fresh one
        for swr, want in ((True, 'UPDATING'), (False, 'HIT')):
            t = tag()
            cc = 'max-age%3D1' + (',stale-while-revalidate%3D600' if swr else '')
            u = '/valid/c?id=%s&cc=%s&sleep=1500' % (t, cc)
            self.assertStatus(u, 'MISS')
            time.sleep(2.2)
            res = {}
            th = threading.Thread(target=lambda: res.setdefault('a', self.get(u)))
            th.start()
            self.assertTrue(harness.Server.wait_for(lambda: self.count(t) == 2, 30))
            h, b = self.assertStatus(u, want)
            self.assertIn(b'n=1' if swr else b'n=2', b)
            th.join(60)
            self.assertEqual(res['a'][1].get('x-cache-status'), 'EXPIRED')
            self.assertEqual(self.count(t), 2)

    def test_range_on_a_hit_served_from_the_stored_body(self):
        # RFC 9110 section 14 from the entry, small (memory) and large (file)
        for size in (1000, 200000):
            t = tag()
            u = '/c.php?id=%s&cc=max-age%%3D300&etag=e%s&size=%d' % (t, t, size)
            st, h, full = self.get(u)
            self.assertEqual((st, h.get('x-cache-status')), (200, 'MISS'))
            n = len(full)
            st, h, b = self.get(u, {'Range': 'bytes=10-19'})
            self.assertEqual((st, h.get('x-cache-status')), (206, 'HIT'), h)
            self.assertEqual(h.get('content-range'), 'bytes 10-19/%d' % n)
            self.assertEqual(b, full[10:20])
            st, h, b = self.get(u, {'Range': 'bytes=-5'})
            self.assertEqual((st, b), (206, full[-5:]))
            # multipart/byteranges, parsed by the standard library
            st, h, b = self.get(u, {'Range': 'bytes=0-1,%d-%d' % (n - 100, n - 91)})
            self.assertEqual(st, 206)
            self.assertTrue(h['content-type'].startswith('multipart/byteranges; boundary='))
            import email
            msg = email.message_from_bytes(b'Content-Type: ' + h['content-type'].encode() +
                                           b'\r\n\r\n' + b)
            parts = [(p['Content-Range'], p.get_payload(decode=True)) for p in msg.get_payload()]
            self.assertEqual(parts, [('bytes 0-1/%d' % n, full[0:2]),
                                     ('bytes %d-%d/%d' % (n - 100, n - 91, n), full[n - 100:n - 90])])
            for p in msg.get_payload():
                self.assertEqual(p['Content-Type'], 'text/plain;charset=UTF-8')
            # If-Range: the entry's ETag honours the Range, another sends it all
            st, h, b = self.get(u, {'Range': 'bytes=0-3', 'If-Range': '"e%s"' % t})
            self.assertEqual((st, b), (206, full[:4]))
            st, h, b = self.get(u, {'Range': 'bytes=0-3', 'If-Range': '"other"'})
            self.assertEqual((st, b), (200, full))
            st, h, b = self.get(u, {'Range': 'bytes=%d-' % (n + 10)})
            self.assertEqual((st, h.get('content-range')), (416, 'bytes */%d' % n))
            self.assertEqual(self.count(t), 1, 'a range hit went to the backend')

    def test_background_update_serves_stale_at_once_and_refreshes_once(self):
        import json
        bg0 = json.loads(self.get('/status?format=json')[2])['cache']['background_updates']
        t = tag()
        # the refreshed copy is fresh for 300 s (cc2): seen as a HIT however
        # slow the machine is
        u = '/bg/?id=%s&cc=max-age%%3D1&cc2=max-age%%3D300&sleep=1500' % t
        self.assertStatus(u, 'MISS')
        time.sleep(2.2)
        # the first request after expiry gets the stale copy (it does not
        # wait for the slow backend), and leaves: the refresh goes on
        h, b = self.assertStatus(u, 'UPDATING')
        self.assertIn(b'n=1', b)
        for _ in range(5):
            h, b = self.get(u)[1:]
            self.assertIn(h.get('x-cache-status'), ('UPDATING', 'HIT'), h)
        self.assertTrue(harness.Server.wait_for(lambda: self.count(t) == 2, 30))

        def refreshed():
            st, h, b = self.get(u)
            return h.get('x-cache-status') == 'HIT' and b'n=2' in b
        self.assertTrue(harness.Server.wait_for(refreshed, 30))
        self.assertEqual(self.count(t), 2, 'one refresh for all of them')
        bg1 = json.loads(self.get('/status?format=json')[2])['cache']['background_updates']
        self.assertEqual(bg1 - bg0, 1)
        # the refresh is revalidated with the entry's validators: a 304
        # freshens it (no new body)
        t2 = tag()
        u2 = '/bg/?id=%s&cc=max-age%%3D1&etag=v%s&reval=1&cc304=max-age%%3D300' % (t2, t2)
        self.assertStatus(u2, 'MISS')
        time.sleep(2.2)
        self.assertStatus(u2, 'UPDATING')
        self.assertTrue(harness.Server.wait_for(lambda: self.count(t2) == 2, 30))
        self.assertTrue(harness.Server.wait_for(
            lambda: self.get(u2)[1].get('x-cache-status') == 'HIT', 30))
        self.assertIn(b'n=1', self.assertStatus(u2, 'HIT')[1])

    def test_status_page_and_access_log(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        st, h, body = self.get('/status?format=prometheus')
        self.assertEqual(st, 200)
        text = body.decode()
        for name in ('portico_cache_hits_total', 'portico_cache_misses_total',
                     'portico_cache_bytes', 'portico_cache_entries'):
            self.assertRegex(text, r'(?m)^%s \d+' % name)
        hits = int([l for l in text.splitlines() if l.startswith('portico_cache_hits_total ')][0]
                   .split()[1])
        self.assertGreaterEqual(hits, 1)
        st, h, body = self.get('/status?format=json')
        import json
        j = json.loads(body)
        self.assertGreaterEqual(j['cache']['hits'], 1)
        self.assertGreaterEqual(j['cache']['entries'], 1)
        # the access log's $upstream_cache_status
        self.assertTrue(harness.Server.wait_for(
            lambda: ('id=%s' % t) in self.srv.access_log_text() and
            self.srv.access_log_text().count('id=%s' % t) >= 2, 20))
        lines = [l for l in self.srv.access_log_text().splitlines() if 'id=%s' % t in l]
        # one line each; their order is the order the workers wrote them
        # (the filler logs after its entry is in, which may come second)
        self.assertEqual(sorted(l.split()[-1] for l in lines), ['HIT', 'MISS'], lines)


    def zone_figures(self):
        """{zone: (hits, misses, entries, bytes)} from each format."""
        import json
        st, h, body = self.get('/status?format=json')
        j = json.loads(body)
        fj = {z['name']: (z['hits'], z['misses'] + z['expired'], z['entries'], z['bytes'])
              for z in j['cache']['zones']}
        st, h, body = self.get('/status?format=prometheus')
        fp = {}
        for fam in text_string_to_metric_families(body.decode()):
            if not fam.name.startswith('portico_cache_zone_'):
                continue
            for smp in fam.samples:
                i = ['portico_cache_zone_hits_total', 'portico_cache_zone_misses_total',
                     'portico_cache_zone_entries', 'portico_cache_zone_bytes'].index(smp.name)
                fp.setdefault(smp.labels['zone'], [0, 0, 0, 0])[i] = int(smp.value)
        st, h, body = self.get('/status')
        ft = {}
        import re
        for m in re.finditer(r'(?m)^  cache zone (\S+): hits (\d+), misses (\d+), expired (\d+), '
                             r'stale \d+, entries (\d+), bytes (\d+) of \d+$', body.decode()):
            ft[m.group(1)] = (int(m.group(2)), int(m.group(3)) + int(m.group(4)),
                              int(m.group(5)), int(m.group(6)))
        return fj, {k: tuple(v) for k, v in fp.items()}, ft

    def test_status_page_per_zone(self):
        before = self.zone_figures()
        for f in before:
            self.assertEqual(sorted(f), ['default', 'other'], before)
        t = tag()
        u = '/other/?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        self.assertStatus(u, 'HIT')
        after = self.zone_figures()
        for b, a in zip(before, after):
            self.assertEqual((a['other'][0] - b['other'][0], a['other'][1] - b['other'][1]),
                             (2, 1), (b, a))
            self.assertEqual(a['default'][:2], b['default'][:2])
            self.assertEqual(a['other'][2], b['other'][2] + 1)
            self.assertGreater(a['other'][3], b['other'][3])



class TlsClient(CacheCase):
    TLS = True
    WORKERS = 1

    def test_tls_client_refreshes_in_place_not_in_the_background(self):
        # the refresh connection is plain HTTP: a TLS client's backend might
        # answer it for http (a redirect to https...), so no background
        t = tag()
        u = '/bg/?id=%s&cc=max-age%%3D1' % t
        self.assertStatus(u, 'MISS')
        time.sleep(2.2)
        h, b = self.assertStatus(u, 'EXPIRED')
        self.assertIn(b'n=2', b)

class Eviction(CacheCase):
    MAXSIZE = '200k'
    WORKERS = 1

    def test_lru_eviction_within_max_size(self):
        ids = [tag() for _ in range(6)]
        for i in ids:
            self.assertStatus('/c.php?id=%s&cc=max-age%%3D300&size=60000' % i, 'MISS')
            # the first stays recently used
            self.assertStatus('/c.php?id=%s&cc=max-age%%3D300&size=60000' % ids[0], 'HIT')
        total = sum(os.path.getsize(f) for f in glob.glob(os.path.join(self.cache, '*')))
        self.assertLessEqual(total, 200 * 1024)
        self.assertStatus('/c.php?id=%s&cc=max-age%%3D300&size=60000' % ids[0], 'HIT')
        self.assertStatus('/c.php?id=%s&cc=max-age%%3D300&size=60000' % ids[1], 'MISS')


class Reload(CacheCase):
    WORKERS = 1

    def test_index_survives_reload(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        old = self.srv.worker_pids()
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(harness.Server.wait_for(
            lambda: self.srv.worker_pids() and not set(self.srv.worker_pids()) & set(old), 30))
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 1)


class Restart(CacheCase):
    WORKERS = 1

    def test_entries_found_again_after_a_restart(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        # a temp file a crashed fill left behind goes with the restart
        junk = os.path.join(self.cache, '.tmp.999999999.1')
        open(junk, 'w').close()
        self.srv.stop()
        srv = harness.Server(conf=self.conf_text, docroot=self.www, workers=1)
        srv.start()
        try:
            # one worker reads the directory into the new index (in the background)
            self.assertTrue(harness.Server.wait_for(
                lambda: http_get(srv.port, u)[1].get('x-cache-status') == 'HIT', 30),
                srv.stderr_text()[-2000:])
            self.assertEqual(self.count(t), 1)
            self.assertTrue(harness.Server.wait_for(lambda: not os.path.exists(junk), 30))
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_a_fill_cut_by_a_crash_is_never_served(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300&size=2000000&slow=20' % t
        res = {}

        def slow_client():
            try:
                res['r'] = self.get(u)
            except Exception as e:  # noqa: BLE001
                res['r'] = e
        th = threading.Thread(target=slow_client)
        th.start()
        self.assertTrue(harness.Server.wait_for(
            lambda: self.count(t) == 1 and glob.glob(os.path.join(self.cache, '.tmp.*')), 30))
        old = self.srv.worker_pids()
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        th.join(60)
        self.assertTrue(harness.Server.wait_for(
            lambda: self.srv.worker_pids() and not set(self.srv.worker_pids()) & set(old), 30))
        # the dead worker's fill lock does not hold anyone, its half body is not an entry
        st, h, b = self.get(u)
        self.assertEqual((st, h.get('x-cache-status')), (200, 'MISS'))
        self.assertGreater(len(b), 2000000)
        st, h, b2 = self.get(u)
        self.assertEqual((st, h.get('x-cache-status'), b2), (200, 'HIT', b))
        self.assertEqual(self.count(t), 2)


class Flag(CacheCase):
    """portico --cache DIR --fastcgi .php=ADDR: no file; only what backends
    allow is stored."""
    USE_CONF = False
    ARGS = ('--cache', '@CACHE@', '--fastcgi', '.php=@ADDR@',
            '-o', 'cache_status_header=true')

    def test_flag_caches_what_backends_allow(self):
        t = tag()
        u = '/c.php?id=%s&cc=max-age%%3D300' % t
        self.assertStatus(u, 'MISS')
        self.assertStatus(u, 'HIT')
        self.assertEqual(self.count(t), 1)
        # nothing said: no default validity, never stored
        t2 = tag()
        self.assertStatus('/c.php?id=%s' % t2, 'MISS')
        self.assertStatus('/c.php?id=%s' % t2, 'MISS')
        self.assertEqual(self.count(t2), 2)
        st = os.stat(self.cache)
        self.assertEqual(st.st_mode & 0o777, 0o700)


if __name__ == '__main__':
    harness.main()
