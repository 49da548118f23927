"""t_limits.py: limits per client address over real sockets. limit_req (a
token bucket with a burst: exactly burst + 1 requests at once, then 429 with
Retry-After), limit_conn (requests in progress: held CGI requests and a
client that does not read; the count comes back however a request ends),
other addresses and unlimited locations unaffected, one count for all
workers, a full table, a lost worker, reload, and configuration errors.
Rates are per minute: everything is counted, nothing depends on timing.

Clients bind to 127.0.0.x source addresses (any of 127/8 works on Linux
loopback), one address per test, since the limit state lives as long as the
server does."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CGI_SRC = os.path.join(HERE, 'cgi')
SCRIPTS = ('hold.cgi', 'pid.cgi', 'sleep.cgi', 'bad-empty.cgi', 'quick.cgi')
BIG = 32 << 20  # more than a socket's buffers on both sides can take


def conn_from(port, src, timeout=30, dst='127.0.0.1'):
    """A connection to dst:port from the source address src."""
    s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect((dst, port))
    except BaseException:
        s.close()
        raise
    return s


def send(s, target, method='GET', body=None):
    s.sendall(harness.build_request(method, target, body=body, close=False))


def ask(s, target, method='GET', body=None):
    """One keep-alive request on s and its response."""
    send(s, target, method, body)
    return harness.read_response(s, method)


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rpartition(')')[2].split()[0] != 'Z'
    except OSError:
        return False


def wait_for(pred, timeout=30):
    return harness.Server.wait_for(pred, timeout)


class LimitCase(unittest.TestCase):
    """One server per class, configured by CONF (@CGI@: the staged scripts,
    with run/ for their marker files)."""

    CONF = ''
    ARGS = ()
    WORKERS = 1
    LISTEN = None

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-limits-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.cgi = os.path.join(cls.base, 'cgi')
        cls.run_dir = os.path.join(cls.cgi, 'run')
        cls.www = os.path.join(cls.base, 'www')
        os.makedirs(cls.run_dir)
        for name in SCRIPTS:
            shutil.copyfile(os.path.join(CGI_SRC, name), os.path.join(cls.cgi, name))
            os.chmod(os.path.join(cls.cgi, name), 0o755)
        for d in ('r', 'one', 'free', 'big'):
            os.makedirs(os.path.join(cls.www, d))
            with open(os.path.join(cls.www, d, 'a.txt'), 'w') as f:
                f.write('%s\n' % d)
        with open(os.path.join(cls.www, 'index.html'), 'w') as f:
            f.write('index\n')
        with open(os.path.join(cls.www, 'big', 'big.bin'), 'wb') as f:
            f.truncate(BIG)
        harness.start_class_server(cls, *cls.ARGS, conf=cls.CONF.replace('@CGI@', cls.cgi),
                                   docroot=cls.www, workers=cls.WORKERS, listen=cls.LISTEN)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def log_tail(self, n=3000):
        return 'error log tail:\n' + self.srv.stderr_text()[-n:]

    def assert_log(self, regex, what):
        self.assertTrue(self.srv.wait_for_log(regex, 20),
                        'no error log line for %s (/%s/)\n%s' % (what, regex, self.log_tail()))

    def conn(self, src, timeout=30):
        s = conn_from(self.port, src, timeout)
        self.addCleanup(s.close)
        return s

    def assert_status(self, r, status, what=''):
        self.assertEqual(r.status, status, '%s: %r\n%s' % (what, r, self.log_tail()))

    def assert_429(self, r, retry_after):
        self.assert_status(r, 429)
        self.assertEqual(r.reason, 'Too Many Requests')
        self.assertEqual(r.header('Retry-After'), str(retry_after))
        self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
        self.assertIn(b'429 Too Many Requests', r.body)

    # -- hold.cgi: requests in progress until released
    def release(self, group):
        open(os.path.join(self.run_dir, group + '.release'), 'w').close()

    def hold(self, s, group, name):
        """Start hold.cgi?group.name on s; returns the pid of the worker
        that runs it once it has started."""
        send(s, '/cgi-bin/hold.cgi?%s.%s' % (group, name))
        path = os.path.join(self.run_dir, '%s.%s.started' % (group, name))
        ok = wait_for(lambda: os.path.exists(path) or select.select([s], [], [], 0)[0])
        if not os.path.exists(path):
            r = harness.read_response(s) if ok else None
            self.fail('hold %s.%s did not start: %r\n%s' % (group, name, r, self.log_tail()))
        with open(path) as f:
            return int(f.read())

    def held(self, s, group, name):
        r = harness.read_response(s)
        self.assertEqual((r.status, r.body), (200, ('hold %s.%s\n' % (group, name)).encode()))


# -- limit_req --------------------------------------------------------------------

class LimitReq(LimitCase):
    CONF = '''
locations = (
  { prefix = "/r/"; limit_req = { rate = "1r/m"; burst = 3; }; },
  { prefix = "/one/"; limit_req = "1r/m"; },
  { prefix = "/free/"; }
);
'''
    LISTEN = ['127.0.0.1:@PORT@'] + (['[::1]:@PORT@'] if harness.ipv6_loopback_ok() else [])

    def test_burst_3_admits_4_then_429_with_retry_after(self):
        s = self.conn('127.0.0.11')
        statuses = []
        for i in range(8):
            r = ask(s, '/r/a.txt')
            statuses.append(r.status)
            if r.status == 200:
                self.assertEqual(r.body, b'r\n')
            else:
                # 1r/m: the next token comes a whole minute later
                self.assert_429(r, 60)
        # all on one connection: a 429 keeps the connection open
        self.assertEqual(statuses, [200] * 4 + [429] * 4)
        self.assert_log(r'\[warn\] \d+#worker 0: limiting requests \(limit_req 1r/m burst 3 per '
                        r'address, set at \S+portico\.conf:3\), retry after 60s, client: '
                        r'127\.0\.0\.11:\d+, request: "GET /r/a\.txt HTTP/1\.1"',
                        'the 429 at warn with zone and address')

    def test_every_connection_of_an_address_counts(self):
        statuses = []
        for i in range(6):
            s = self.conn('127.0.0.12')
            statuses.append(ask(s, '/r/a.txt').status)
            s.close()
        self.assertEqual(statuses, [200] * 4 + [429] * 2)

    def test_other_addresses_are_not_affected(self):
        a, b = self.conn('127.0.0.13'), self.conn('127.0.0.14')
        self.assertEqual([ask(a, '/r/a.txt').status for _ in range(5)], [200] * 4 + [429])
        self.assertEqual([ask(b, '/r/a.txt').status for _ in range(5)], [200] * 4 + [429])
        self.assert_429(ask(a, '/r/a.txt'), 60)

    def test_location_without_limits_is_not_affected(self):
        s = self.conn('127.0.0.15')
        self.assertEqual([ask(s, '/r/a.txt').status for _ in range(5)], [200] * 4 + [429])
        for _ in range(10):
            self.assertEqual(ask(s, '/free/a.txt').status, 200)
            self.assertEqual(ask(s, '/').status, 200)

    def test_burst_0_admits_one(self):
        s = self.conn('127.0.0.16')
        self.assert_status(ask(s, '/one/a.txt'), 200)
        self.assert_429(ask(s, '/one/a.txt'), 60)
        self.assert_429(ask(s, '/one/a.txt'), 60)

    def test_head_gets_a_bodiless_429(self):
        s = self.conn('127.0.0.17')
        self.assert_status(ask(s, '/one/a.txt', 'HEAD'), 200)
        r = ask(s, '/one/a.txt', 'HEAD')
        self.assertEqual((r.status, r.body, r.header('Retry-After')), (429, b'', '60'))
        self.assert_429(ask(s, '/one/a.txt'), 60)  # the connection is still in step

    def test_ipv6_client_has_its_own_bucket(self):
        if not harness.ipv6_loopback_ok():
            self.skipTest('no IPv6 loopback')
        s = conn_from(self.port, '::1', dst='::1')
        self.addCleanup(s.close)
        self.assertEqual([ask(s, '/one/a.txt').status for _ in range(3)], [200, 429, 429])
        self.assert_log(r'limiting requests \(limit_req 1r/m burst 0 [^\n]*client: ::1:\d+',
                        'an IPv6 address in the log')
        t = self.conn('127.0.0.18')
        self.assertEqual(ask(t, '/one/a.txt').status, 200)


# -- limit_conn -------------------------------------------------------------------

class LimitConn(LimitCase):
    CONF = '''
limits = { cgi_kill_grace = "1s"; };
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; limit_conn = 2; },
  { prefix = "/short/"; handler = "cgi"; dir = "@CGI@"; limit_conn = 1; timeout = "1s"; },
  { prefix = "/big/"; limit_conn = 1; },
  { prefix = "/free/"; handler = "cgi"; dir = "@CGI@"; }
);
'''

    def test_third_request_in_progress_is_429_until_one_ends(self):
        g = harness.tag()
        self.addCleanup(self.release, g)
        s1, s2, s3 = (self.conn('127.0.0.21') for _ in range(3))
        self.hold(s1, g, 'a')
        self.hold(s2, g, 'b')
        self.assert_429(ask(s3, '/cgi-bin/pid.cgi'), 1)
        self.assert_log(r'\[warn\] [^\n]*limiting requests \(limit_conn 2 per address, set at '
                        r'\S+portico\.conf:4\), retry after 1s, client: 127\.0\.0\.21:\d+, '
                        r'request: "GET /cgi-bin/pid\.cgi HTTP/1\.1"', 'the limit_conn 429')
        # another address, and a location without limits, are served
        self.assert_status(ask(self.conn('127.0.0.22'), '/cgi-bin/pid.cgi'), 200)
        self.assert_status(ask(self.conn('127.0.0.21'), '/free/pid.cgi'), 200)
        self.release(g)
        self.held(s1, g, 'a')
        self.held(s2, g, 'b')
        # the 429's connection was kept and the address is admitted again
        self.assert_status(ask(s3, '/cgi-bin/pid.cgi'), 200)
        self.assert_status(ask(s3, '/cgi-bin/pid.cgi'), 200)

    def test_aborted_requests_give_their_counts_back(self):
        for rnd in range(4):
            tags = [harness.tag(), harness.tag()]
            socks = [self.conn('127.0.0.23') for _ in tags]
            for s, t in zip(socks, tags):
                send(s, '/cgi-bin/sleep.cgi?' + t)
            pids = []
            for s, t in zip(socks, tags):
                path = os.path.join(self.run_dir, t + '.pids')
                wait_for(lambda: os.path.exists(path) or select.select([s], [], [], 0)[0])
                self.assertTrue(os.path.exists(path), 'round %d: request not admitted: %r\n%s' % (
                    rnd, harness.read_response(s) if not os.path.exists(path) else None,
                    self.log_tail()))
                with open(path) as f:
                    pids += [int(p) for p in f.read().split()]
            for s in socks:
                s.close()  # the client goes away mid-request
            self.assertTrue(wait_for(lambda: not any(alive(p) for p in pids)),
                            'scripts still running: %s' % pids)

    def test_script_timeouts_give_their_counts_back(self):
        s = self.conn('127.0.0.24')
        for i in range(3):
            r = ask(s, '/short/sleep.cgi?' + harness.tag())
            self.assert_status(r, 504, 'request %d' % i)

    def test_gateway_errors_give_their_counts_back(self):
        s = self.conn('127.0.0.25')
        for i in range(5):
            self.assert_status(ask(s, '/cgi-bin/bad-empty.cgi'), 502, 'request %d' % i)
            self.assert_status(ask(s, '/cgi-bin/missing.cgi'), 404, 'request %d' % i)
        self.assert_status(ask(s, '/cgi-bin/quick.cgi'), 200)

    def test_a_429_with_an_unread_body_closes(self):
        g = harness.tag()
        self.addCleanup(self.release, g)
        s1, s2, s3 = (self.conn('127.0.0.26') for _ in range(3))
        self.hold(s1, g, 'a')
        self.hold(s2, g, 'b')
        send(s3, '/cgi-bin/pid.cgi', 'POST', body=b'x' * 100)
        data, closed = harness.recv_until_close(s3, 30)
        r = harness.read_response(data)
        self.assert_429(r, 1)
        self.assertEqual(r.header('Connection'), 'close')
        self.assertTrue(closed)
        self.release(g)
        self.held(s1, g, 'a')
        self.held(s2, g, 'b')

    def test_a_client_that_does_not_read_holds_its_count(self):
        a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(a.close)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        a.settimeout(60)
        a.bind(('127.0.0.27', 0))
        a.connect(('127.0.0.1', self.port))
        send(a, '/big/big.bin')
        head = b''
        while b'\r\n\r\n' not in head:
            head += a.recv(1024)
        self.assertTrue(head.startswith(b'HTTP/1.1 200 '), head[:200])
        # the response cannot be finished while a reads nothing
        b = self.conn('127.0.0.27')
        self.assert_429(ask(b, '/big/a.txt'), 1)
        self.assert_status(ask(self.conn('127.0.0.28'), '/big/a.txt'), 200)
        rest = head.partition(b'\r\n\r\n')[2]
        got = len(rest)
        while got < BIG:
            n = len(a.recv(1 << 20))
            self.assertGreater(n, 0, 'closed after %d of %d bytes' % (got, BIG))
            got += n
        self.assertEqual(got, BIG)
        self.assert_status(ask(b, '/big/a.txt'), 200)
        self.assert_status(ask(a, '/big/a.txt'), 200)


# -- all workers count together ---------------------------------------------------

class Workers(LimitCase):
    """Two workers that take at most 2 connections each: four connections
    end up two on each, which /pin/pid.cgi tells apart."""

    WORKERS = 2
    CONF = '''
limits = { max_connections = 2; };
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; limit_conn = 2; },
  { prefix = "/r/"; limit_req = { rate = "1r/m"; burst = 1; }; },
  { prefix = "/pin/"; handler = "cgi"; dir = "@CGI@"; }
);
'''

    def pinned(self, src):
        """Two connections on each worker: ((a1, a2), (b1, b2))."""
        by = {}
        for _ in range(4):
            s = self.conn(src, 60)
            r = ask(s, '/pin/pid.cgi')
            self.assert_status(r, 200)
            by.setdefault(int(r.body), []).append(s)
        self.assertEqual(sorted(len(v) for v in by.values()), [2, 2], by)
        self.assertEqual(sorted(by), sorted(self.srv.worker_pids()))
        return list(by.values())

    def test_limit_conn_is_one_count_for_all_workers(self):
        (a1, a2), (b1, b2) = self.pinned('127.0.0.31')
        g = harness.tag()
        self.addCleanup(self.release, g)
        wa = self.hold(a1, g, 'a')
        wb = self.hold(b1, g, 'b')
        self.assertNotEqual(wa, wb)
        # each worker holds one; together they are at the limit of 2
        self.assert_429(ask(a2, '/cgi-bin/pid.cgi'), 1)
        self.assert_429(ask(b2, '/cgi-bin/pid.cgi'), 1)
        self.release(g)
        self.held(a1, g, 'a')
        self.held(b1, g, 'b')
        self.assert_status(ask(b2, '/cgi-bin/pid.cgi'), 200)
        self.assert_status(ask(a2, '/cgi-bin/pid.cgi'), 200)

    def test_limit_req_is_one_bucket_for_all_workers(self):
        (a1, a2), (b1, b2) = self.pinned('127.0.0.32')
        self.assert_status(ask(a1, '/r/a.txt'), 200)
        self.assert_status(ask(b1, '/r/a.txt'), 200)
        # burst 1: two in all, although each worker has seen only one
        self.assert_429(ask(a2, '/r/a.txt'), 60)
        self.assert_429(ask(b2, '/r/a.txt'), 60)


# -- a full table, a lost worker, reload ------------------------------------------

class TableFull(LimitCase):
    ARGS = ('-o', 'limits.limit_entries=16')
    CONF = '''
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; limit_conn = 1; },
  { prefix = "/free/"; }
);
'''

    def test_a_new_address_finds_no_room_503(self):
        g = harness.tag()
        self.addCleanup(self.release, g)
        socks = []
        for i in range(16):
            s = self.conn('127.0.0.%d' % (41 + i))
            self.hold(s, g, str(i))
            socks.append(s)
        s = self.conn('127.0.0.57')
        r = ask(s, '/cgi-bin/pid.cgi')
        self.assert_status(r, 503)
        self.assertEqual(r.header('Retry-After'), '1')
        self.assert_log(r'\[warn\] [^\n]*limit table full \(limits\.limit_entries = 16\): no room '
                        r'for a new address \(limit_conn 1, set at \S+\), client: 127\.0\.0\.57:',
                        'the full table')
        self.assert_status(ask(s, '/free/a.txt'), 200)
        self.release(g)
        for i, t in enumerate(socks):
            self.held(t, g, str(i))
        self.assert_status(ask(s, '/cgi-bin/pid.cgi'), 200)


class LostWorker(LimitCase):
    CONF = '''
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; limit_conn = 1; } );
'''

    def test_counts_of_a_killed_worker_are_reset(self):
        g = harness.tag()
        self.addCleanup(self.release, g)
        s1 = self.conn('127.0.0.61')
        w = self.hold(s1, g, 'a')
        self.assertEqual(self.srv.worker_pids(), [w])
        self.assert_429(ask(self.conn('127.0.0.61'), '/cgi-bin/pid.cgi'), 1)
        os.kill(w, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: len(self.srv.worker_pids()) == 1 and
                                 self.srv.worker_pids() != [w]), self.log_tail())
        self.assert_log(r'limit_conn counts reset after the loss of worker 0', 'the reset')
        # without the reset the dead worker's count would block this address for good
        r = ask(self.conn('127.0.0.61'), '/cgi-bin/pid.cgi')
        self.assert_status(r, 200)
        self.assertNotEqual(int(r.body), w)


class Reload(LimitCase):
    CONF = '''
locations = ( { prefix = "/one/"; limit_req = "1r/m"; } );
'''

    def test_a_reload_starts_a_new_table(self):
        s = self.conn('127.0.0.71')
        self.assertEqual([ask(s, '/one/a.txt').status for _ in range(2)], [200, 429])
        s.close()
        old = self.srv.worker_pids()
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.srv.worker_pids() and
                                 not set(old) & set(self.srv.worker_pids())), self.log_tail())
        s = self.conn('127.0.0.71')
        self.assertEqual([ask(s, '/one/a.txt').status for _ in range(2)], [200, 429])


# -- configuration ----------------------------------------------------------------

class Config(unittest.TestCase):
    def check(self, body, *args):
        d = tempfile.mkdtemp(prefix='portico-limits-conf-')
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, 'p.conf')
        with open(conf, 'w') as f:
            f.write(harness.root_user('root = "%s";\n' % d + body))
        p = subprocess.run([harness.PORTICO, '-t', '-c', conf] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        return conf, p.returncode, (p.stdout + p.stderr).decode('utf-8', 'replace')

    def bad(self, body, line, message, *args):
        conf, rc, out = self.check(body, *args)
        self.assertEqual(rc, 1, out)
        where = re.escape(conf) + ':%d' % line if line else re.escape('-o ' + args[-1].split('=')[0])
        self.assertRegex(out, r'(?m)^(portico: )?%s: %s' % (where, re.escape(message)))

    def test_valid_limits_load(self):
        _, rc, out = self.check('limit_conn = 10;\nlimit_req = { rate = "10r/s"; burst = 20; };\n'
                                'locations = ( { prefix = "/a/"; limit_req = "off"; '
                                'limit_conn = 0; } );\nlimits = { limit_entries = 1024; };\n')
        self.assertEqual(rc, 0, out)
        self.assertIn('configuration ok', out)

    def test_bad_values_are_errors_with_file_and_line(self):
        self.bad('\nlimit_conn = -1;\n', 3, "'limit_conn' must be between 0 and 1000000")
        self.bad('limit_req = "10r/h";\n', 2, "'limit_req': invalid rate '10r/h'")
        self.bad('\n\nlocations = ( { prefix = "/";\n  limit_req = { burst = 3; }; } );\n', 5,
                 "'locations.[0].limit_req' needs a rate")
        self.bad('limit_req = { rate = "1r/s"; burst = "3"; };\n', 2,
                 "'limit_req.burst' must be an integer")
        self.bad('limits = { limit_entries = 1; };\n', 2,
                 "'limits.limit_entries' must be between 16 and 4194304")

    def test_overrides_are_checked_and_blamed(self):
        self.bad('', 0, "'limit_req': invalid rate 'lots'", '-o', 'limit_req=lots')
        conf, rc, out = self.check('', '-o', 'limit_conn=5', '-o', 'limit_req.rate=2r/m', '-o',
                                   'limit_req.burst=4')
        self.assertEqual(rc, 0, out)


if __name__ == '__main__':
    harness.main()
