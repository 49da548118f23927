#!/usr/bin/env python3
"""t_docs.py: the manual pages say everything the program accepts.
Every command-line option of src/main.c appears in portico(8), every key of
the configuration schema in src/conf.c has its entry in portico.conf(5) and
is mentioned in the annotated conf/portico.conf, and both pages are clean
under mandoc -Tlint. The benchmark harness the README's Performance section
names (bench/) is complete and parses."""

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402,F401  (TAP output for automake)

SRCDIR = os.environ.get('PT_SRCDIR') or os.path.join(os.path.dirname(__file__), '..')


def read(*parts):
    with open(os.path.join(SRCDIR, *parts), encoding='utf-8') as f:
        return f.read()


def config_keys():
    """Every key name of the schema tables and the X-macro lists in the
    loader's files (src/conf.c and its per-concern src/conf_*.c)."""
    names = sorted(f for f in os.listdir(os.path.join(SRCDIR, 'src'))
                   if re.fullmatch(r'conf(_\w+)?\.[ch]', f))
    src = ''.join(read('src', f) for f in names)
    keys = set(re.findall(r'\{"([a-z_]+)", K_[A-Z]+', src))
    keys |= set(re.findall(r'^\s*X\(([a-z_]+),', src, re.M))
    return keys


def man_entries(text):
    """The names a man page introduces: a tagged paragraph (.TP then .B/.BR)
    or, for a group, a line of its own showing its syntax (.B "name: { ... };")."""
    names = set(re.findall(r'^\.TP\n\.BR? (?:\\-)*([a-z_][\w\\-]*)', text, re.M))
    return names | set(re.findall(r'^\.B "([a-z_]+): \{ \.\.\. \};"', text, re.M))


class ManPages(unittest.TestCase):
    def test_schema_is_not_empty(self):
        keys = config_keys()
        # the test below means nothing if the patterns stop matching conf.c
        for k in ('listen', 'root', 'max_connections', 'shutdown_timeout', 'limit_req',
                  'open_file_cache', 'backends', 'spawn', 'rlimit_nproc'):
            self.assertIn(k, keys)

    def test_every_setting_has_an_entry_in_portico_conf_5(self):
        entries = man_entries(read('man', 'portico.conf.5'))
        missing = sorted(k for k in config_keys() if k not in entries and k != 'true')
        self.assertEqual(missing, [], 'settings without a .TP entry in portico.conf(5)')

    def test_every_setting_is_named_in_the_annotated_default(self):
        text = read('conf', 'portico.conf')
        missing = sorted(k for k in config_keys()
                         if k != 'true' and not re.search(r'\b%s\b' % k, text))
        self.assertEqual(missing, [], 'settings conf/portico.conf never mentions')

    def test_every_option_is_in_portico_8_and_in_the_usage(self):
        main = read('src', 'main.c')
        longs = re.findall(r'^\s*\{"([a-z-]+)", (?:no|required)_argument', main, re.M)
        shorts = re.search(r'getopt_long\(argc, argv, "([^"]+)"', main).group(1).replace(':', '')
        self.assertIn('daemon', longs)
        self.assertIn('p', shorts)
        page = read('man', 'portico.8')
        usage = subprocess.run([harness.PORTICO, '-h'], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30).stdout.decode()
        for o in longs:
            self.assertRegex(page, r'\\-\\-%s\b' % re.escape(o).replace('\\-', r'\\-'),
                             '--%s missing from portico(8)' % o)
            self.assertIn('--' + o, usage)
        for o in shorts:
            self.assertIn('  -%s' % o, usage)
            self.assertRegex(page, r'\\-%s\b' % o, '-%s missing from portico(8)' % o)

    def test_mandoc_lint_is_clean(self):
        mandoc = shutil.which('mandoc')
        if not mandoc:
            self.skipTest('mandoc not installed')
        for page in ('portico.8', 'portico.conf.5'):
            p = subprocess.run([mandoc, '-Tlint', '-W', 'style', os.path.join(SRCDIR, 'man', page)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            out = p.stdout.decode('utf-8', 'replace')
            self.assertEqual((p.returncode, out), (0, ''), page)


class BenchHarness(unittest.TestCase):
    """bench/ runs nothing here (it needs nginx, lighttpd and wrk, and
    measures): only that what the README tells users to run is intact."""

    def test_scripts_parse_and_peers_sh_prints_its_usage(self):
        bench = os.path.join(SRCDIR, 'bench')
        for f in ('peers.sh', 'cgi-limit.sh', 'peers-target.sh', 'examples/nginx-target.sh',
                  'gzip.sh', 'cache.sh', 'tls-cost.sh', 'h2-cost.sh', 'proxy.sh', 'pairs.sh',
                  'lib/common.sh'):
            p = subprocess.run(['bash', '-n', os.path.join(bench, f)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, (f, p.stdout))
        for f in ('lib/benchlib.py', 'idle-load.py', 'lib/h2load-run.py', 'tls-idle.py'):
            with open(os.path.join(bench, f), encoding='utf-8') as fh:
                compile(fh.read(), f, 'exec')
        for f in ('lib/hello.c', 'lib/hello-min.c', 'lib/probe.c', 'lib/spawnbench.c',
                  'lib/wrk-report.lua'):
            self.assertTrue(os.path.isfile(os.path.join(bench, f)), f)
        p = subprocess.run(['bash', os.path.join(bench, 'peers.sh'), '--help'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = p.stdout.decode('utf-8', 'replace')
        self.assertEqual(p.returncode, 0, out)
        self.assertIn('--target NAME', out)
        self.assertIn('h2o', out)  # the HTTP/2 peer (issue 19)
        readme = read('README')
        self.assertIn("../bench/peers.sh --target portico --cmd 'exec ../bench/peers-target.sh'",
                      readme)
        self.assertIn('--scenarios h2-1k,h2-conc,h2-page', readme)

    def test_ceiling_peer_serves_what_the_sanity_check_expects(self):
        """lib/ceiling.c answers the static scenarios correctly (peers.sh
        measures it as the client's limit), and 404 for the rest."""
        tmp = tempfile.mkdtemp(prefix='portico-ceiling-')
        self.addCleanup(shutil.rmtree, tmp, True)
        exe = os.path.join(tmp, 'ceiling')
        p = subprocess.run(['cc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', exe,
                            os.path.join(SRCDIR, 'bench', 'lib', 'ceiling.c')],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        files = {'1k.bin': os.urandom(1024), '100k.bin': os.urandom(100 * 1024),
                 '10m.bin': os.urandom(10 << 20)}
        for name, data in files.items():
            with open(os.path.join(tmp, name), 'wb') as f:
                f.write(data)
        port = harness.free_port('127.0.0.1')
        proc = subprocess.Popen([exe, str(port), tmp], stdin=subprocess.DEVNULL)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.assertTrue(harness.wait_port_open(port), 'ceiling did not listen')
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        for name, data in files.items():  # one keep-alive connection
            c.request('GET', '/' + name)
            r = c.getresponse()
            self.assertEqual((r.status, r.read() == data, r.will_close), (200, True, False), name)
        c.request('GET', '/hello.php')
        r = c.getresponse()
        self.assertEqual((r.status, len(r.read())), (404, 90))
        c.request('GET', '/1k.bin', headers={'Connection': 'close'})
        r = c.getresponse()
        self.assertEqual((r.status, r.read() == files['1k.bin'], r.will_close), (200, True, True))
        c.close()

    def test_fwd_floor_passes_bytes_through_on_an_upstream_connection_per_client(self):
        """lib/fwd.c, proxy.sh's floor: what a client sends reaches the
        upstream untouched, the answer comes back untouched, a keep-alive
        client keeps its one upstream connection, and two clients have two;
        a client that closes closes its upstream connection."""
        tmp = tempfile.mkdtemp(prefix='portico-fwd-')
        self.addCleanup(shutil.rmtree, tmp, True)
        exe = os.path.join(tmp, 'fwd')
        p = subprocess.run(['cc', '-O2', '-Wall', '-Wextra', '-Werror', '-Wshadow', '-o', exe,
                            os.path.join(SRCDIR, 'bench', 'lib', 'fwd.c')],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        body = os.urandom(1024)
        seen = []  # (upstream connection number, raw request head)
        closed = []
        lock = threading.Lock()
        up = socket.socket()
        up.bind(('127.0.0.1', 0))
        up.listen(16)
        self.addCleanup(up.close)

        def serve(conn, k):
            buf = b''
            with conn:
                while True:
                    while b'\r\n\r\n' not in buf:
                        d = conn.recv(65536)
                        if not d:
                            with lock:
                                closed.append(k)
                            return
                        buf += d
                    head, buf = buf.split(b'\r\n\r\n', 1)
                    with lock:
                        seen.append((k, head))
                    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(body) + body)

        def accept_loop():
            k = 0
            while True:
                try:
                    conn, _ = up.accept()
                except OSError:
                    return
                k += 1
                threading.Thread(target=serve, args=(conn, k), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
        port = harness.free_port('127.0.0.1')
        proc = subprocess.Popen([exe, str(port), str(up.getsockname()[1])],
                                stdin=subprocess.DEVNULL)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.assertTrue(harness.wait_port_open(port), 'fwd did not listen')
        a = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        b = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        for c, path in ((a, '/one'), (b, '/two'), (a, '/three')):
            c.request('GET', path, headers={'X-Mark': path})
            r = c.getresponse()
            self.assertEqual((r.status, r.read() == body), (200, True), path)
        a.close()
        b.close()
        deadline = time.monotonic() + 30
        while len(closed) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        with lock:
            by_path = {h.split(b' ')[1].decode(): (k, h) for k, h in seen}
        # the probe connections before a and b got upstream connections too
        self.assertEqual(sorted(by_path), ['/one', '/three', '/two'])
        self.assertEqual(by_path['/one'][0], by_path['/three'][0])
        self.assertNotEqual(by_path['/one'][0], by_path['/two'][0])
        self.assertIn(b'\r\nX-Mark: /two', by_path['/two'][1])
        self.assertTrue(by_path['/two'][1].startswith(b'GET /two HTTP/1.1\r\nHost: 127.0.0.1:'))
        self.assertIn(by_path['/one'][0], closed)
        self.assertIn(by_path['/two'][0], closed)

    def test_tlsconn_makes_full_handshakes_unless_told_to_resume(self):
        """lib/tlsconn.c, peers.sh's tls-full client: every connection a
        full handshake (wrk resumes, which is why it exists); with -r it
        resumes like wrk. Its WRKRESULT line is what peers.sh reads."""
        tmp = tempfile.mkdtemp(prefix='portico-tlsconn-')
        self.addCleanup(shutil.rmtree, tmp, True)
        exe, crt, key = (os.path.join(tmp, n) for n in ('tlsconn', 'c.pem', 'k.pem'))
        p = subprocess.run(['cc', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', exe,
                            os.path.join(SRCDIR, 'bench', 'lib', 'tlsconn.c'), '-lssl',
                            '-lcrypto'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout)
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days',
                        '365', '-subj', '/CN=localhost'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        body = os.urandom(1024)
        srv = harness.Server('--tls', '127.0.0.1:@PORT@', '--cert', crt, '--key', key,
                             listen=[], files={'1k.bin': body})
        with srv:
            for mode in ('full', 'resume'):
                for proto in ('1.3', '1.2'):
                    args = [exe, '-p', str(srv.port), '-u', '/1k.bin', '-c', '2', '-d', '1',
                            '-V', proto] + (['-r'] if mode == 'resume' else [])
                    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       timeout=120)
                    out = p.stdout.decode('utf-8', 'replace')
                    self.assertEqual(p.returncode, 0, out)
                    m = re.search(r'(\d+) resumed handshakes', out)
                    w = dict(kv.split('=') for kv in
                             re.search(r'^WRKRESULT (.*)$', out, re.M).group(1).split())
                    n = int(w['requests'])
                    self.assertGreater(n, 2, out)
                    for e in ('connect', 'read', 'write', 'status', 'timeout'):
                        self.assertEqual(w[e], '0', (e, out))
                    self.assertGreaterEqual(int(w['bytes']), n * len(body), out)
                    if mode == 'full':
                        self.assertEqual(m.group(1), '0', (proto, out))
                    else:  # the first connection of each thread is full
                        self.assertGreaterEqual(int(m.group(1)), n - 2, (proto, out))


if __name__ == '__main__':
    harness.main()
