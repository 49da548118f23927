"""t_gw_syscalls.py: the system calls a gateway request costs the worker
(issue 17: instructions per proxied or uwsgi request are below nginx's, so
the kernel's part is what is left). strace follows the one worker while a
keep-alive client sends N requests on a warm connection; counts per kind of
call are checked against what each request needs, nothing about timings:
  - HTTP proxy over a pooled upstream connection: no epoll_ctl at all (the
    pooled connection keeps one interest set, idle or busy), one send of the
    request upstream and one of the answer (head and body together);
  - uwsgi and SCGI (a connection per request, the protocol's end is the
    close): one epoll_ctl (the new socket's registration), none to remove
    it before close() (which does that).
Upstreams: tests/lib/http_upstream.py (HTTP, keep-alive) and uWSGI
(tests/lib/appserver.py) over Unix sockets."""

import collections
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
from appserver import Uwsgi, HAVE_UWSGI  # noqa: E402

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib')
PY = '/usr/bin/python3'
N = 20
WRITES = ('sendmsg', 'sendto', 'writev', 'write', 'sendfile')

CONF = '''
backends = (
  { name = "up"; servers = ( "127.0.0.1:@UP@" ); },
  { name = "uw"; servers = ( "unix:@UWSOCK@" ); },
  { name = "sc"; servers = ( "unix:@SCSOCK@" ); }
);
locations = (
  { prefix = "/px/"; handler = "proxy"; backend = "up"; },
  { prefix = "/uw/"; handler = "uwsgi"; backend = "uw"; },
  { prefix = "/sc/"; handler = "scgi"; backend = "sc"; }
);
'''


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ''


def keepalive_get(sock, path, port):
    """One GET on sock; returns the response (status line checked)."""
    sock.sendall(b'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n' % (path.encode(), port))
    buf = b''
    while True:
        end = buf.find(b'\r\n\r\n')
        if end >= 0:
            m = re.search(rb'(?i)\r\ncontent-length: *(\d+)', buf[:end])
            assert m, buf[:300]
            if len(buf) >= end + 4 + int(m.group(1)):
                assert buf.startswith(b'HTTP/1.1 200'), buf[:300]
                assert len(buf) == end + 4 + int(m.group(1)), 'bytes after the answer'
                return buf
        chunk = sock.recv(65536)
        assert chunk, 'closed after %r' % buf[:300]
        buf += chunk


@unittest.skipIf(harness.VALGRIND, 'strace and valgrind do not mix')
@unittest.skipUnless(shutil.which('strace'), 'no strace (apt-get install -y strace)')
@unittest.skipUnless(HAVE_UWSGI, 'uwsgi and uwsgi-plugin-python3 are not installed')
class GatewaySyscalls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # class cleanups run last first, after tearDownClass (and if
        # setUpClass fails)
        cls.base = tempfile.mkdtemp(prefix='pt-gwsys-')
        cls.addClassCleanup(shutil.rmtree, cls.base, ignore_errors=True)
        cls.app = Uwsgi(cls.base).start()
        cls.addClassCleanup(cls.app.stop)
        portfile = os.path.join(cls.base, 'up.port')
        cls.up = subprocess.Popen([PY, os.path.join(LIB, 'http_upstream.py'), portfile],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        cls.addClassCleanup(lambda: (os.killpg(cls.up.pid, signal.SIGTERM), cls.up.wait(20)))
        assert harness.Server.wait_for(lambda: os.path.exists(portfile), 30)
        with open(portfile) as f:
            up_port = int(f.read())
        conf = (CONF.replace('@UP@', str(up_port)).replace('@UWSOCK@', cls.app.uw_sock)
                .replace('@SCSOCK@', cls.app.sc_sock))
        harness.start_class_server(cls, conf=conf, workers=1)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def calls(self, path):
        """System calls of the worker, by name, over N keep-alive requests
        for path on a connection that served some before strace attached."""
        port = self.srv.port
        sock = socket.create_connection(('127.0.0.1', port), timeout=30)
        try:
            for _ in range(3):  # the upstream pool is warm
                keepalive_get(sock, path, port)

            def n_gets():
                for _ in range(N):
                    keepalive_get(sock, path, port)
            text = harness.strace_during(self, self.srv.worker_pids()[0], n_gets,
                                         lambda: keepalive_get(sock, path, port), 'recvfrom')
        finally:
            sock.close()
        count = collections.Counter()
        for ln in text.splitlines():
            m = re.match(r'(?:\[pid +\d+\] |\d+ +)?(?:<\.\.\. )?(\w+)\(', ln)
            if m and 'resumed>' not in ln:
                count[m.group(1)] += 1
        return count, text

    def test_proxied_keepalive_request_needs_no_epoll_ctl_and_two_sends(self):
        count, text = self.calls('/px/conn')
        self.assertLessEqual(count['epoll_ctl'], 1, text)
        self.assertEqual(sum(count[w] for w in WRITES), 2 * N, text)
        self.assertEqual(count['recvfrom'], 2 * N, text)

    def test_uwsgi_request_registers_its_socket_once_and_never_removes_it(self):
        count, text = self.calls('/uw/x')
        self.assertEqual(count['socket'], N, text)
        self.assertLessEqual(count['epoll_ctl'], N + 1, text)
        self.assertNotIn('EPOLL_CTL_DEL', text)

    def test_scgi_request_registers_its_socket_once_and_never_removes_it(self):
        count, text = self.calls('/sc/x')
        self.assertEqual(count['socket'], N, text)
        self.assertLessEqual(count['epoll_ctl'], N + 1, text)
        self.assertNotIn('EPOLL_CTL_DEL', text)

    def test_idle_worker_with_a_pooled_connection_sleeps(self):
        """A pooled upstream connection does not keep the worker awake: its
        idle pool is swept when some request waits for a server (an eventfd
        every worker watches), not on a 10 ms timer while it holds one."""
        port = self.srv.port
        with socket.create_connection(('127.0.0.1', port), timeout=30) as sock:
            keepalive_get(sock, '/px/conn', port)
        time.sleep(0.3)  # the client connection is closed and forgotten
        log = os.path.join(self.srv.tmpdir, 'strace-idle.txt')
        st = subprocess.Popen(['strace', '-f', '-qq', '-o', log, '-e', 'trace=epoll_wait',
                               '-p', str(self.srv.worker_pids()[0])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2.0)
        finally:
            st.send_signal(signal.SIGINT)
            st.wait(timeout=60)
        waits = [ln for ln in read(log).splitlines() if 'epoll_wait(' in ln]
        # a 10 ms sweep would be about 200 in 2 s
        self.assertLess(len(waits), 20, waits[:40])


class UnixUpstream:
    """An HTTP/1.1 upstream on a Unix socket, in threads of the test: it
    answers GET /ok/... at once with the pid of the worker on the other end
    (SO_PEERCRED), /hold/... never; it accepts only while accepting is set
    (else new connections wait in its backlog, unread). It notes the pid of
    every connection and when each was closed by the worker."""

    def __init__(self, path):
        self.path = path
        self.ls = socket.socket(socket.AF_UNIX)
        self.ls.bind(path)
        os.chmod(path, 0o777)
        self.ls.listen(64)
        self.ls.settimeout(0.1)
        self.accepting = threading.Event()
        self.accepting.set()
        self.paused = threading.Event()  # the accept loop saw accepting cleared
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.conns = []  # [pid, closed]
        self.threads = [threading.Thread(target=self.accept_loop, daemon=True)]
        self.threads[0].start()

    def accept_loop(self):
        while not self.stop.is_set():
            if not self.accepting.is_set():
                self.paused.set()
                time.sleep(0.02)
                continue
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            cred = c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i'))
            rec = [struct.unpack('3i', cred)[0], False]
            with self.lock:
                self.conns.append(rec)
            t = threading.Thread(target=self.serve, args=(c, rec), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, c, rec):
        buf = b''
        c.settimeout(0.2)
        try:
            while not self.stop.is_set():
                end = buf.find(b'\r\n\r\n')
                if end >= 0:
                    target = buf.split(b' ', 2)[1]
                    buf = buf[end + 4:]
                    if target.startswith(b'/ok/'):
                        body = b'%d' % rec[0]
                        c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s'
                                  % (len(body), body))
                    continue
                try:
                    more = c.recv(65536)
                except socket.timeout:
                    continue
                if not more:
                    break
                buf += more
        except OSError:
            pass
        finally:
            rec[1] = True
            c.close()

    def close(self):
        self.stop.set()
        self.ls.close()
        for t in self.threads:
            t.join(5)


class StallSweepsOtherWorkers(unittest.TestCase):
    """A request waiting unread in a server's backlog (on a new connection
    while the server's processes are pinned) makes every worker close its
    idle connections to that server: the eventfd wakes the other worker at
    once (keepalive_timeout is 60 s: without the sweep they would stay)."""

    def test_idle_connections_of_the_other_worker_are_closed(self):
        base = tempfile.mkdtemp(prefix='pt-gwsweep-')
        os.chmod(base, 0o755)
        up = UnixUpstream(os.path.join(base, 'up.sock'))
        conf = """
backends = ( { name = "u"; servers = ( "unix:%s" ); read_timeout = "60s"; max_fails = 0; } );
locations = ( { prefix = "/"; handler = "proxy"; backend = "u"; } );
""" % up.path
        srv = harness.Server(conf=conf, workers=2)
        srv.start()
        socks = []
        try:
            port = srv.port
            def worker_of(s, path):
                return int(keepalive_get(s, path, port).split(b'\r\n\r\n', 1)[1])
            # client connections on both workers (the answer names the
            # worker): connections opened in bursts, so that one worker is
            # busy accepting when the kernel wakes the other (EPOLLEXCLUSIVE
            # wakes an epoll with a waiter)
            on = {}
            for _ in range(20):
                burst = [socket.create_connection(('127.0.0.1', port), timeout=30)
                         for _ in range(16)]
                socks += burst
                for k, s in enumerate(burst):
                    on.setdefault(worker_of(s, '/ok/%d' % k), []).append(s)
                if len(on) == 2:
                    break
            if len(on) < 2:
                self.skipTest('the kernel gave every connection to one worker')
            # a: the worker with fewer client connections; b needs more
            # client connections than pooled upstream ones
            (pa, ca), (pb, cb) = sorted(on.items(), key=lambda kv: len(kv[1]))

            def pooled(pid):
                with up.lock:
                    return [rec for rec in up.conns if rec[0] == pid and not rec[1]]
            a_idle = pooled(pa)
            self.assertGreaterEqual(len(a_idle), 1, up.conns)
            nb = len(pooled(pb))
            if nb >= len(cb):
                self.skipTest('worker b has as many pooled connections as client ones')
            up.accepting.clear()
            self.assertTrue(up.paused.wait(10))
            # b's pooled connections get a request each that is never
            # answered; the next one takes a new connection, unread
            for s in cb[:nb + 1]:
                s.sendall(b'GET /hold/b HTTP/1.1\r\nHost: x\r\n\r\n')
            self.assertTrue(srv.wait_for(lambda: all(rec[1] for rec in a_idle), 20),
                            'worker a kept its idle connections: %r\n%s'
                            % (up.conns, srv.stderr_text()[-2000:]))
        finally:
            for s in socks:
                s.close()
            srv.stop()
            shutil.rmtree(srv.tmpdir, ignore_errors=True)
            up.close()
            shutil.rmtree(base, ignore_errors=True)

if __name__ == '__main__':
    harness.main()
