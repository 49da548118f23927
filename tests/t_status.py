"""t_status.py: the status page (handler "status", --status PATH) over real
sockets: the shared counters move by exactly the known traffic (static 200s
and 404s, a CGI script, FastCGI requests to the libfcgi sample app spawned
by portico and to a server that refuses), summed across two workers, kept
across a reload (SIGHUP) and across a worker the master replaced after a
SIGKILL (which it counts); client-limit rejections; the three formats (the
JSON parsed by json.loads, the Prometheus text parsed by Debian's
python3-prometheus-client), how the format is chosen, and loopback-only
access (403 to a client on a non-loopback address of this host, when it
has one; the decision itself is unit-tested in tests/unit/test_status.c).

No test asserts a timing: waits are generous upper bounds."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

_pc = harness.debian_import('prometheus_client.parser')
text_string_to_metric_families = _pc.parser.text_string_to_metric_families if _pc else None

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(HERE, '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))


def wait_for(pred, timeout=20):
    return harness.Server.wait_for(pred, timeout)


def get(port, path, headers=None, method='GET', host='127.0.0.1'):
    return harness.request(port, method, path, headers=headers, host=host)


def non_loopback_address():
    """An IPv4 address of this host outside 127/8 (None when it has none)."""
    try:
        out = subprocess.run(['ip', '-o', '-4', 'addr', 'show'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if 'inet' in parts:
            a = parts[parts.index('inet') + 1].split('/')[0]
            if not a.startswith('127.'):
                try:
                    s = socket.socket()
                    s.bind((a, 0))
                    s.close()
                    return a
                except OSError:
                    continue
    return None


class StatusCase(unittest.TestCase):
    """A server per test (the counters are the server's life), two workers,
    with CGI, a FastCGI app portico spawns and a FastCGI server that is not
    there."""
    maxDiff = None
    WORKERS = 2
    EXTRA_LOCATIONS = ''
    EXTRA_TOP = ''

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix='pt-status-')
        self.addCleanup(shutil.rmtree, self.base, True)
        cgi = os.path.join(self.base, 'cgi')
        os.mkdir(cgi)
        os.mkdir(os.path.join(cgi, 'run'))
        self.run_dir = os.path.join(cgi, 'run')
        for name in ('pid.cgi', 'hello-sh.cgi', 'gate.cgi'):
            shutil.copy(os.path.join(HERE, 'cgi', name), cgi)
            os.chmod(os.path.join(cgi, name), 0o755)
        self.dead = '127.0.0.1:%d' % harness.free_port()
        # a backup (as dead): a backend's only server is never marked down
        backends = ('{ name = "dead"; servers = ( "%s", { address = "127.0.0.1:%d"; '
                    'backup = true; } ); }' % (self.dead, harness.free_port()))
        locs = ('{ exact = "/status"; handler = "status"; },\n'
                '{ exact = "/metrics"; handler = "status"; },\n'
                '{ prefix = "/cgi-bin/"; handler = "cgi"; dir = "%s"; },\n'
                '{ prefix = "/dead/"; handler = "fastcgi"; backend = "dead"; },\n'
                '{ prefix = "/limited/"; limit_req = "1r/m"; }' % cgi)
        self.hello_sock = os.path.join(self.base, 'hello.sock')
        if os.access(HELLO, os.X_OK):
            backends += (',\n{ name = "hello"; spawn = { program = "%s"; socket = "%s"; }; }'
                         % (HELLO, self.hello_sock))
            locs += ',\n{ prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; }'
        if self.EXTRA_LOCATIONS:
            locs += ',\n' + self.EXTRA_LOCATIONS.replace('@CGI@', cgi)
        conf = self.EXTRA_TOP + 'backends = ( %s );\nlocations = ( %s );\n' % (backends, locs)
        self.srv = harness.Server(conf=conf, workers=self.WORKERS, listen=self.listen(),
                                  files={'index.html': 'hello\n', 'limited/a': 'a\n'})
        self.srv.start()
        self.addCleanup(self.stop)
        self.port = self.srv.port
        self.reads = 0  # status pages read so far: they count as 2xx themselves

    def listen(self):
        return None

    def stop(self):
        rc = self.srv.stop()
        self.assertEqual(rc, 0, 'portico exited with %r' % rc)
        shutil.rmtree(self.srv.tmpdir, ignore_errors=True)

    def status(self, path='/status?format=json', headers=None):
        st, h, body = get(self.port, path, headers)
        self.assertEqual(st, 200, body[:300])
        self.reads += 1
        return h, body

    def json(self):
        h, body = self.status()
        self.assertEqual(h['content-type'], 'application/json')
        return json.loads(body)

    def settled(self, want):
        """The JSON page once the requests counted, less the status pages
        read before it, are want: a worker counts a request when it has
        written the response, which its client (and then another worker)
        may see a moment earlier."""
        last = {}

        def done():
            last['j'] = self.json()
            return last['j']['requests']['total'] - (self.reads - 1) == want
        wait_for(done)
        return last['j']

    def ok(self, path, want=200):
        st, _, body = get(self.port, path)
        self.assertEqual(st, want, '%s: %r\n%s' % (path, body[:300], self.srv.stderr_text()[-2000:]))
        return body

    def workers(self):
        """The master's children that are portico (not the spawned app)."""
        exe = os.path.realpath(harness.PORTICO)
        out = []
        for p in self.srv.worker_pids():
            try:
                if os.path.realpath('/proc/%d/exe' % p) == exe:
                    out.append(p)
            except OSError:
                pass
        return out

    def server_of(self, j, backend):
        for b in j['backends']:
            if b['name'] == backend:
                return b, b['servers'][0]  # the first, not a backup
        self.fail('backend %s not in %r' % (backend, j['backends']))


class Counters(StatusCase):

    def test_counts_static_cgi_and_fastcgi_across_two_workers(self):
        # a baseline: the harness's readiness probe is a connection too
        j0 = self.json()
        # CGI: pid.cgi names its worker; new connections until both
        # workers have answered, so the sums below span two slots
        pids = set()
        cgi = 0
        while len(pids) < 2 and cgi < 300:
            pids.add(int(self.ok('/cgi-bin/pid.cgi')))
            cgi += 1
        self.assertEqual(len(pids), 2, 'one worker answered every request')
        for _ in range(7):
            self.ok('/index.html')
        for _ in range(3):
            self.ok('/missing', 404)
        fcgi = 0
        if os.access(HELLO, os.X_OK):
            for _ in range(4):
                self.assertIn(b'Hello from FastCGI', self.ok('/hello/x'))
                fcgi += 1
        j = self.settled(cgi + 10 + fcgi)
        r = j['requests']
        prior = self.reads - 1  # status pages read before this one
        self.assertEqual(j0['requests']['total'], 0)
        self.assertEqual(r['2xx'], cgi + 7 + fcgi + prior)
        self.assertEqual(r['4xx'], 3)
        self.assertEqual((r['1xx'], r['3xx'], r['5xx']), (0, 0, 0))
        self.assertEqual(r['total'], cgi + 10 + fcgi + prior)
        self.assertEqual(j['cgi']['started'], cgi)
        self.assertEqual(j['cgi']['running'], 0)
        self.assertEqual(j['cgi']['queued'], 0)
        self.assertEqual(j['workers'], 2)
        self.assertEqual(j['connections']['accepted'] - j0['connections']['accepted'],
                         cgi + 10 + fcgi + prior)
        self.assertGreaterEqual(j['connections']['active'], 1)
        self.assertGreaterEqual(j['connections']['writing'], 1)
        self.assertGreater(j['bytes']['received'], 0)
        self.assertGreater(j['bytes']['sent'], 0)
        self.assertEqual((j['worker_restarts'], j['reloads']), (0, 0))
        if fcgi:
            b, s = self.server_of(j, 'hello')
            self.assertEqual(s['address'], 'unix:' + self.hello_sock)
            self.assertEqual((s['requests'], s['failures'], s['connections']), (fcgi, 0, 0))
            self.assertTrue(s['up'])
            self.assertEqual(s['response_ms']['count'], fcgi)
            self.assertEqual(s['response_ms']['buckets']['+Inf'], fcgi)
            self.assertEqual(b['queued'], 0)
        b, s = self.server_of(j, 'dead')
        self.assertEqual((s['requests'], s['failures']), (0, 0))
        self.assertTrue(s['up'])

    def test_backend_failure_and_down_state(self):
        st, _, _ = get(self.port, '/dead/x')
        self.assertIn(st, (502, 503))
        j = self.settled(1)
        _, s = self.server_of(j, 'dead')
        self.assertEqual((s['requests'], s['failures']), (1, 1))
        # max_fails 1, fail_timeout 10s: the worker that tried holds it down
        self.assertFalse(s['up'])
        self.assertEqual(s['down_workers'], 1)
        self.assertEqual(j['requests']['5xx'], 1)

    def test_limit_req_rejections(self):
        self.ok('/limited/a')
        self.ok('/limited/a', 429)
        self.ok('/limited/a', 429)
        j = self.json()
        self.assertEqual(j['limits'], {'limit_conn': 0, 'limit_req': 2, 'table_full': 0})

    def test_sums_survive_a_reload(self):
        for _ in range(5):
            self.ok('/index.html')
        before = self.json()
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.json()['reloads'] == 1))
        # the old generation leaves: two workers again
        self.assertTrue(wait_for(lambda: self.json()['workers'] == 2))
        for _ in range(3):
            self.ok('/index.html')
        after = self.settled(8)
        self.assertEqual(after['requests']['2xx'], 8 + self.reads - 1)
        self.assertGreaterEqual(after['connections']['accepted'],
                                before['connections']['accepted'] + 3)
        self.assertEqual(after['worker_restarts'], 0)

    def test_killed_worker_is_counted_and_its_sums_stay(self):
        for _ in range(6):
            self.ok('/index.html')
        self.assertEqual(self.settled(6)['requests']['2xx'], 6 + self.reads - 1)
        victim = self.workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: victim not in self.workers()
                                 and len(self.workers()) == 2))
        self.assertTrue(self.srv.wait_for_log(r'exited on signal 9; respawning'))
        j = self.settled(6)
        self.assertEqual(j['worker_restarts'], 1)
        self.assertEqual(j['workers'], 2)
        # a worker counts a request just after writing its response: the
        # status page read last before the kill may have been the victim's,
        # answered but not yet counted when SIGKILL came (one, at most)
        self.assertIn(j['requests']['2xx'], (6 + self.reads - 1, 6 + self.reads - 2))
        self.assertEqual(j['reloads'], 0)


class Formats(StatusCase):
    WORKERS = 1

    def test_text_is_the_default(self):
        h, body = self.status('/status')
        self.assertEqual(h['content-type'], 'text/plain; charset=utf-8')
        self.assertEqual(h['cache-control'], 'no-store')
        text = body.decode()
        self.assertTrue(text.startswith('portico '), text)
        self.assertIn('requests: 0 (1xx 0, 2xx 0, 3xx 0, 4xx 0, 5xx 0)', text)
        self.assertIn('backend dead: queued 0', text)
        self.assertIn('  server %s: up, requests 0, failures 0' % self.dead, text)

    def test_json_by_accept_and_by_query(self):
        h, body = self.status('/status', {'Accept': 'application/json'})
        self.assertEqual(h['content-type'], 'application/json')
        j = json.loads(body)
        for k in ('version', 'start_time', 'uptime_seconds', 'workers', 'worker_restarts',
                  'reloads', 'connections', 'requests', 'bytes', 'cgi', 'limits', 'backends'):
            self.assertIn(k, j)
        self.assertEqual(set(j['connections']),
                         {'accepted', 'active', 'reading', 'writing', 'idle'})
        # the query wins over Accept
        h, body = self.status('/status?format=text', {'Accept': 'application/json'})
        self.assertTrue(h['content-type'].startswith('text/plain; charset'))

    def test_prometheus_by_path_query_and_accept(self):
        want = 'text/plain; version=0.0.4; charset=utf-8'
        self.assertEqual(self.status('/metrics')[0]['content-type'], want)
        self.assertEqual(self.status('/status?format=prometheus')[0]['content-type'], want)
        # what Prometheus itself sends
        acc = ('application/openmetrics-text;version=1.0.0,application/openmetrics-text;'
               'version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1')
        self.assertEqual(self.status('/status', {'Accept': acc})[0]['content-type'], want)

    def test_unknown_format_and_other_methods_are_refused(self):
        st, _, _ = get(self.port, '/status?format=xml')
        self.assertEqual(st, 400)
        st, h, _ = get(self.port, '/status', method='POST')
        self.assertEqual(st, 405)
        self.assertEqual(h['allow'], 'GET, HEAD')
        st, h, body = get(self.port, '/status', method='HEAD')
        self.assertEqual((st, body), (200, b''))

    @unittest.skipIf(text_string_to_metric_families is None,
                     'python3-prometheus-client is not installed')
    def test_prometheus_output_parses_with_a_real_parser(self):
        for _ in range(3):
            self.ok('/index.html')
        self.ok('/missing', 404)
        if os.access(HELLO, os.X_OK):
            self.ok('/hello/x')
        _, body = self.status('/metrics')
        fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
        for name, typ in (('portico_requests', 'counter'), ('portico_connections', 'gauge'),
                          ('portico_worker_restarts', 'counter'), ('portico_reloads', 'counter'),
                          ('portico_backend_requests', 'counter'),
                          ('portico_backend_up', 'gauge'),
                          ('portico_backend_response_seconds', 'histogram'),
                          ('portico_limit_rejections', 'counter'),
                          ('portico_cgi_running', 'gauge')):
            self.assertIn(name, fams, sorted(fams))
            self.assertEqual(fams[name].type, typ, name)
        req = {s.labels['class']: s.value for s in fams['portico_requests'].samples
               if s.name == 'portico_requests_total'}
        self.assertEqual(req, {'1xx': 0, '2xx': 3 + os.access(HELLO, os.X_OK), '3xx': 0,
                               '4xx': 1, '5xx': 0})
        up = {s.labels['server']: s.value for s in fams['portico_backend_up'].samples}
        self.assertEqual(up[self.dead], 1)
        if os.access(HELLO, os.X_OK):
            h = [s for s in fams['portico_backend_response_seconds'].samples
                 if s.labels.get('backend') == 'hello']
            buckets = [s for s in h if s.name.endswith('_bucket')]
            self.assertEqual([b.labels['le'] for b in buckets][-1], '+Inf')
            self.assertEqual(len(buckets), 12)
            self.assertEqual(buckets[-1].value, 1)
            counts = [b.value for b in buckets]
            self.assertEqual(counts, sorted(counts))  # cumulative


class NotLoopback(StatusCase):
    """A client on a non-loopback address of this host: 403, unless the
    location sets status_allow_remote."""
    WORKERS = 1
    EXTRA_LOCATIONS = '{ exact = "/open-status"; handler = "status"; status_allow_remote = true; }'

    def setUp(self):
        self.addr = non_loopback_address()
        if not self.addr:
            self.skipTest('this host has no non-loopback IPv4 address')
        super().setUp()

    def listen(self):
        return ['127.0.0.1:@PORT@', '%s:@PORT@' % self.addr]

    def test_non_loopback_client_gets_403(self):
        st, _, _ = get(self.port, '/status', host=self.addr)
        self.assertEqual(st, 403)
        self.assertTrue(self.srv.wait_for_log(r'403 Forbidden \(status page: not a loopback'))
        st, _, _ = get(self.port, '/status')
        self.assertEqual(st, 200)
        st, _, body = get(self.port, '/open-status?format=json', host=self.addr)
        self.assertEqual(st, 200)
        self.assertIn('requests', json.loads(body))


class Flag(unittest.TestCase):
    """--status PATH alone serves the page (loopback clients)."""

    def test_status_flag(self):
        srv = harness.Server('--status', '/server-status', files={'a': 'a'})
        srv.start()
        try:
            harness.request(srv.port, 'GET', '/a')
            st, h, body = harness.request(srv.port, 'GET', '/server-status?format=json')
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(body)['requests']['2xx'], 1)
            st, _, _ = harness.request(srv.port, 'GET', '/server-status/x')
            self.assertEqual(st, 404)
        finally:
            self.assertEqual(srv.stop(), 0)
            shutil.rmtree(srv.tmpdir, ignore_errors=True)

    def test_status_flag_needs_a_path(self):
        p = subprocess.run([harness.PORTICO, '-t', '--status', 'status'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--status: 'status': expected a path starting with '/'", p.stderr)

    def test_allow_remote_only_for_status_locations(self):
        d = tempfile.mkdtemp(prefix='pt-status-')
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, 'p.conf')
        with open(conf, 'w') as f:
            f.write(harness.root_user('root = "%s";\nlocations = ( { prefix = "/x/"; '
                                      'status_allow_remote = true; } );\n' % d))
        p = subprocess.run([harness.PORTICO, '-t', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("'status_allow_remote' only applies to handler \"status\"", p.stderr)



class CgiAndLimitGauges(StatusCase):
    """CGI processes running and queued (cgi_max_procs 1) and limit_conn
    rejections, as the three formats show them while requests are held."""
    WORKERS = 1
    EXTRA_TOP = 'limits = { cgi_max_procs = 1; };\n'
    EXTRA_LOCATIONS = '{ prefix = "/held/"; handler = "cgi"; dir = "@CGI@"; limit_conn = 1; }'

    def started(self, name):
        return os.path.exists(os.path.join(self.run_dir, name + '.started'))

    @unittest.skipIf(text_string_to_metric_families is None,
                     'python3-prometheus-client is not installed')
    def test_cgi_running_queued_and_limit_conn_rejections(self):
        import threading
        res = []
        ths = [threading.Thread(target=lambda n=n: res.append(
            get(self.port, '/cgi-bin/gate.cgi?g.%d' % n)[0])) for n in range(3)]
        for th in ths:
            th.start()
        try:
            # one script runs, two wait for its slot
            self.assertTrue(wait_for(lambda: self.json()['cgi'] ==
                                     {'started': 1, 'running': 1, 'queued': 2}, 60),
                            self.json()['cgi'])
            _, body = self.status('/metrics')
            fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
            self.assertEqual(fams['portico_cgi_running'].samples[0].value, 1)
            self.assertEqual(fams['portico_cgi_queued'].samples[0].value, 2)
            self.assertEqual(fams['portico_cgi_started'].samples[0].value, 1)
            _, body = self.status('/status')
            self.assertIn('cgi: started 1, running 1, queued 2', body.decode())
            # a second request in progress from this address: 429, counted
            held = threading.Thread(target=lambda: res.append(
                get(self.port, '/held/gate.cgi?h.1')[0]))
            held.start()
            ths.append(held)
            open(os.path.join(self.run_dir, 'g.release'), 'w').close()
            self.assertTrue(wait_for(lambda: self.started('h.1'), 60))
            st, _, _ = get(self.port, '/held/gate.cgi?h.2')
            self.assertEqual(st, 429)
            j = self.json()
            self.assertEqual(j['limits']['limit_conn'], 1)
            _, body = self.status('/metrics')
            fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
            lim = {x.labels['limit']: x.value for x in fams['portico_limit_rejections'].samples}
            self.assertEqual(lim['limit_conn'], 1)
            _, body = self.status('/status')
            self.assertIn('client limits: limit_conn 1,', body.decode())
        finally:
            for g in ('g', 'h'):
                open(os.path.join(self.run_dir, g + '.release'), 'w').close()
            for th in ths:
                th.join(60)
        self.assertEqual(sorted(res), [200] * 4)
        self.assertTrue(wait_for(lambda: self.json()['cgi'] ==
                                 {'started': 4, 'running': 0, 'queued': 0}, 60))


if __name__ == '__main__':
    harness.main()
