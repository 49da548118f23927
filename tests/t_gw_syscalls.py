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
import subprocess
import sys
import tempfile
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
        cls.base = tempfile.mkdtemp(prefix='pt-gwsys-')
        cls.app = Uwsgi(cls.base).start()
        portfile = os.path.join(cls.base, 'up.port')
        cls.up = subprocess.Popen([PY, os.path.join(LIB, 'http_upstream.py'), portfile],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        assert harness.Server.wait_for(lambda: os.path.exists(portfile), 30)
        with open(portfile) as f:
            up_port = int(f.read())
        conf = (CONF.replace('@UP@', str(up_port)).replace('@UWSOCK@', cls.app.uw_sock)
                .replace('@SCSOCK@', cls.app.sc_sock))
        cls.srv = harness.Server(conf=conf, workers=1)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.srv.stop()
            assert rc == 0, 'portico exited with %r' % rc
        finally:
            shutil.rmtree(cls.srv.tmpdir, ignore_errors=True)
            os.killpg(cls.up.pid, signal.SIGTERM)
            cls.up.wait(20)
            cls.app.stop()
            shutil.rmtree(cls.base, ignore_errors=True)

    def calls(self, path):
        """System calls of the worker, by name, over N keep-alive requests
        for path on a connection that served some before strace attached."""
        port = self.srv.port
        sock = socket.create_connection(('127.0.0.1', port), timeout=30)
        log = os.path.join(self.srv.tmpdir, 'strace-gw.txt')
        if os.path.exists(log):
            os.unlink(log)
        try:
            for _ in range(3):  # the upstream pool is warm
                keepalive_get(sock, path, port)
            st = subprocess.Popen(['strace', '-f', '-qq', '-o', log,
                                   '-p', str(self.srv.worker_pids()[0])],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 30
                while 'recvfrom' not in read(log):
                    self.assertLess(time.monotonic(), deadline, 'strace did not attach')
                    keepalive_get(sock, path, port)
                    time.sleep(0.2)
                time.sleep(0.2)
                skip = len(read(log))
                for _ in range(N):
                    keepalive_get(sock, path, port)
                time.sleep(0.5)
            finally:
                st.send_signal(signal.SIGINT)
                st.wait(timeout=60)
        finally:
            sock.close()
        text = read(log)[skip:]
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


if __name__ == '__main__':
    harness.main()
