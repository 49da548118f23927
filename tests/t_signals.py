"""t_signals.py: process control by signals (nginx meanings): QUIT = graceful
stop that finishes in-flight responses, TERM/INT = fast stop, USR1 = reopen
the logs after rotation, and a SIGKILLed worker is logged and respawned."""

import hashlib
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

BIG_SIZE = 10 * 1024 * 1024
BIG = os.urandom(BIG_SIZE)
BIG_SHA = hashlib.sha256(BIG).hexdigest()
# Long enough that a graceful stop never cuts our deliberately slow client,
# so a prompt exit after TERM/INT really is the fast path.
SLOW_SHUTDOWN = ('-o', 'limits.shutdown_timeout=300s')


def slow_download(port, path='/big.bin', first=64 * 1024):
    """Start GET path on a socket with a tiny receive buffer and read only
    `first` bytes of it. Returns (socket, bytes read so far)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(('127.0.0.1', port))
    s.sendall(('GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
               % path).encode())
    got = bytearray()
    while len(got) < first:
        b = s.recv(4096)
        if not b:
            break
        got += b
    return s, got


def read_to_eof(s, got, timeout=60):
    s.settimeout(timeout)
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        got += b
    return bytes(got)


def split_response(data):
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        raise AssertionError('incomplete response head: %r' % data[:200])
    return harness.read_response(head + sep, 'HEAD'), body


def names_client_port(text, port):
    return re.search(r'127\.0\.0\.1:%d(?!\d)' % port, text) is not None


def message_mentions(text, pid):
    """True if some log line's message (after the 'pid#role: ' prefix)
    names pid as a whole number."""
    pat = re.compile(r'(?<!\d)%d(?!\d)' % pid)
    for line in text.splitlines():
        msg = line.split(': ', 1)[1] if ': ' in line else line
        if pat.search(msg):
            return True
    return False


class GracefulQuit(unittest.TestCase):
    def test_quit_finishes_inflight_download_then_exits_0(self):
        with harness.Server(*SLOW_SHUTDOWN, files={'big.bin': BIG}) as srv:
            s, got = slow_download(srv.port)
            try:
                self.assertGreater(len(got), 0)
                srv.signal(signal.SIGQUIT)
                # listeners close while the response is still in flight
                self.assertTrue(harness.wait_port_closed(srv.port, timeout=20),
                                'new connections still accepted after QUIT')
                data = read_to_eof(s, got)
            finally:
                s.close()
            resp, body = split_response(data)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header('Content-Length'), str(BIG_SIZE))
            self.assertEqual(len(body), BIG_SIZE)
            self.assertEqual(hashlib.sha256(body).hexdigest(), BIG_SHA)
            self.assertTrue(srv.wait_for(lambda: not srv.running, timeout=30),
                            'server still running after QUIT and the last response')
            self.assertEqual(srv.stop(), 0)

    def test_quit_closes_idle_keepalive_connections(self):
        with harness.Server(*SLOW_SHUTDOWN, files={'a.txt': 'a'}) as srv:
            s = srv.connect(timeout=20)
            try:
                s.sendall(b'GET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\n')
                r = harness.read_response(s)
                self.assertEqual((r.status, r.body), (200, b'a'))
                srv.signal(signal.SIGQUIT)
                try:
                    rest = s.recv(1024)
                except ConnectionResetError:
                    rest = b''
                except socket.timeout:
                    self.fail('idle keep-alive connection not closed after QUIT')
                self.assertEqual(rest, b'')
            finally:
                s.close()
            self.assertTrue(srv.wait_for(lambda: not srv.running, timeout=20))
            self.assertEqual(srv.stop(), 0)

    def test_quit_cuts_a_stalled_client_at_shutdown_timeout(self):
        # the graceful stop waits for in-flight responses only up to
        # limits.shutdown_timeout; a client that stopped reading (with a
        # far longer write_timeout) is then cut, and the stop still exits 0
        with harness.Server('-o', 'limits.shutdown_timeout=2s', '-o', 'limits.write_timeout=600s',
                            files={'big.bin': BIG}) as srv:
            s, got = slow_download(srv.port)
            try:
                self.assertGreater(len(got), 0)
                srv.signal(signal.SIGQUIT)
                self.assertTrue(srv.wait_for(lambda: not srv.running, timeout=120),
                                'a stalled client held the graceful stop past shutdown_timeout')
                data = read_to_eof(s, got)
            finally:
                s.close()
            self.assertLess(len(data), BIG_SIZE, 'the stalled download was not cut')
            self.assertRegex(srv.stderr_text(), r'shutdown_timeout reached with 1 connection')
            self.assertEqual(srv.stop(), 0)

    def test_quit_with_no_clients_exits_0(self):
        with harness.Server(files={'a.txt': 'a'}, workers=2) as srv:
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            self.assertEqual(srv.stop(signal.SIGQUIT, timeout=20), 0)
            self.assertTrue(harness.wait_port_closed(srv.port, timeout=5))


class FastStop(unittest.TestCase):
    def check_fast_stop(self, sig):
        with harness.Server(*SLOW_SHUTDOWN, files={'big.bin': BIG, 'a.txt': 'a'},
                            workers=2) as srv:
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            # a stalled client must not delay a fast stop
            s, got = slow_download(srv.port)
            try:
                self.assertGreater(len(got), 0)
                self.assertEqual(srv.stop(sig, timeout=20), 0)
            finally:
                s.close()
            self.assertTrue(harness.wait_port_closed(srv.port, timeout=5))

    def test_term_exits_0_promptly_despite_stalled_client(self):
        self.check_fast_stop(signal.SIGTERM)

    def test_int_exits_0_promptly_despite_stalled_client(self):
        self.check_fast_stop(signal.SIGINT)

    def test_term_idle_server_exits_0(self):
        with harness.Server(files={'a.txt': 'a'}) as srv:
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            self.assertEqual(srv.stop(signal.SIGTERM, timeout=20), 0)


class ReopenLogs(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix='portico-usr1-')
        self.addCleanup(shutil.rmtree, self.base, True)

    @staticmethod
    def read(path):
        try:
            with open(path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    @staticmethod
    def bad_request(port):
        """A request rejected with 400 (two Host fields); returns the client
        port, which the error log line names ("client: 127.0.0.1:PORT")."""
        s = harness.connect(port)
        try:
            cport = s.getsockname()[1]
            s.sendall(b'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')
            r = harness.read_response(s)
        finally:
            s.close()
        assert r.status == 400, r
        return cport

    def test_usr1_reopens_access_and_error_logs_after_rename(self):
        acc = os.path.join(self.base, 'access.log')
        err = os.path.join(self.base, 'error.log')
        with harness.Server('--error-log', err, access_log=acc, workers=2,
                            files={'a.txt': 'a'}) as srv:
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt?before=1')[0], 200)
            self.assertTrue(srv.wait_for(lambda: 'before=1' in self.read(acc)),
                            'access log line missing: %r' % self.read(acc))
            cport = self.bad_request(srv.port)
            self.assertTrue(srv.wait_for(lambda: names_client_port(self.read(err), cport)),
                            'error log line missing: %r' % self.read(err))

            os.rename(acc, acc + '.1')
            os.rename(err, err + '.1')
            srv.signal(signal.SIGUSR1)

            # The reopen is asynchronous: retry until a request lands in the new file.
            n = [0]

            def new_access_line():
                n[0] += 1
                harness.request(srv.port, 'GET', '/a.txt?after=%d' % n[0])
                return 'after=' in self.read(acc)
            self.assertTrue(srv.wait_for(new_access_line, timeout=15, interval=0.2),
                            'no new access log at the original path after USR1')

            ports = []

            def new_error_line():
                ports.append(self.bad_request(srv.port))
                text = self.read(err)
                return any(names_client_port(text, p) for p in ports)
            self.assertTrue(srv.wait_for(new_error_line, timeout=15, interval=0.2),
                            'no new error log at the original path after USR1')

            old_acc, new_acc = self.read(acc + '.1'), self.read(acc)
            self.assertIn('before=1', old_acc)
            self.assertNotIn('before=1', new_acc)
            self.assertRegex(new_acc, r'"GET /a\.txt\?after=\d+ HTTP/1\.1" 200 ')
            self.assertTrue(names_client_port(self.read(err + '.1'), cport))
            self.assertFalse(names_client_port(self.read(err), cport))
            # nothing goes to the old files any more once reopened
            size_before = os.path.getsize(acc + '.1')
            harness.request(srv.port, 'GET', '/a.txt?final=1')
            self.assertTrue(srv.wait_for(lambda: 'final=1' in self.read(acc)))
            self.assertEqual(os.path.getsize(acc + '.1'), size_before)
            self.assertEqual(srv.stop(), 0)

    @staticmethod
    def log_fds(pid, paths):
        """{fd: (target, close-on-exec)} of pid's fds open on one of paths."""
        out = {}
        d = '/proc/%d/fd' % pid
        for n in os.listdir(d):
            try:
                target = os.readlink(os.path.join(d, n))
                with open('/proc/%d/fdinfo/%s' % (pid, n)) as f:
                    flags = int(re.search(r'^flags:\s*([0-7]+)', f.read(), re.M).group(1), 8)
            except (OSError, AttributeError):
                continue
            if target in paths:
                out[int(n)] = (target, bool(flags & 0o2000000))  # O_CLOEXEC
        return out

    def test_reopened_logs_stay_close_on_exec(self):
        # a log fd without close-on-exec would reach whatever the process
        # executes next (a spawned app, a program where close_range is
        # missing): dup2() onto the old fd number clears the flag
        acc = os.path.join(self.base, 'access.log')
        err = os.path.join(self.base, 'error.log')
        names = (acc, err, acc + '.1', err + '.1')
        with harness.Server('--error-log', err, access_log=acc, workers=1,
                            files={'a.txt': 'a'}) as srv:
            self.assertTrue(srv.wait_for(lambda: len(srv.worker_pids()) == 1))
            pids = [srv.pid] + srv.worker_pids()
            for pid in pids:
                fds = self.log_fds(pid, names)
                self.assertEqual(sorted(t for t, _ in fds.values()), [acc, err], fds)
                self.assertTrue(all(c for _, c in fds.values()), (pid, fds))
            os.rename(acc, acc + '.1')
            os.rename(err, err + '.1')
            srv.signal(signal.SIGUSR1)

            def reopened():
                return all(sorted(t for t, _ in self.log_fds(pid, names).values()) == [acc, err]
                           for pid in pids)
            self.assertTrue(srv.wait_for(reopened, timeout=15),
                            {pid: self.log_fds(pid, names) for pid in pids})
            for pid in pids:
                fds = self.log_fds(pid, names)
                self.assertTrue(all(c for _, c in fds.values()),
                                'pid %d: a reopened log lost close-on-exec: %r' % (pid, fds))
            self.assertEqual(srv.stop(), 0)


class WorkerCrash(unittest.TestCase):
    def test_killed_worker_is_logged_and_respawned(self):
        with harness.Server(files={'a.txt': 'alive'}, workers=2) as srv:
            self.assertTrue(srv.wait_for(lambda: len(srv.worker_pids()) == 2),
                            'expected 2 workers, got %r' % srv.worker_pids())
            before = srv.worker_pids()
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            self.assertTrue(
                srv.wait_for(lambda: (victim not in srv.worker_pids()
                                      and len(srv.worker_pids()) == 2), timeout=15),
                'no replacement worker: before %r, now %r' % (before, srv.worker_pids()))
            after = srv.worker_pids()
            self.assertEqual(len(set(after) - set(before)), 1)
            self.assertIn(before[1], after)
            self.assertTrue(srv.wait_for(lambda: message_mentions(srv.stderr_text(), victim)),
                            'worker death not logged:\n' + srv.stderr_text()[-3000:])
            for i in range(20):
                st, _, body = harness.request(srv.port, 'GET', '/a.txt?i=%d' % i)
                self.assertEqual((st, body), (200, b'alive'))
            self.assertTrue(srv.running)
            self.assertEqual(srv.stop(), 0)

    def test_repeated_worker_kills_keep_service_up(self):
        with harness.Server(files={'a.txt': 'alive'}, workers=1) as srv:
            for _ in range(3):
                self.assertTrue(srv.wait_for(lambda: len(srv.worker_pids()) == 1))
                victim = srv.worker_pids()[0]
                os.kill(victim, signal.SIGKILL)
                self.assertTrue(srv.wait_for(
                    lambda: srv.worker_pids() and victim not in srv.worker_pids(),
                    timeout=15))
                # the listening socket survives in the master: requests keep working
                st, _, body = harness.request(srv.port, 'GET', '/a.txt', timeout=20)
                self.assertEqual((st, body), (200, b'alive'))
            self.assertEqual(srv.stop(), 0)


if __name__ == '__main__':
    harness.main()
