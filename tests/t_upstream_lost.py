"""t_upstream_lost.py: a worker killed while it counts a request in the
counters all workers share (a request waiting unread in a FastCGI
server's backlog) does not leave its count behind: the master takes it
off, and the next worker keeps pooling connections to that server. The
backend is a Unix socket the test accepts on by hand, then fcgi_bad's
server on the same path."""

import os
import signal
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import fcgi_bad as fb  # noqa: E402

STDIN_END = fb.HEADER.pack(1, fb.STDIN, 1, 0, 0)


class WorkerLost(unittest.TestCase):
    def test_killed_worker_leaves_no_waiting_count(self):
        d = tempfile.mkdtemp(prefix='portico-uplost-')
        path = os.path.join(d, 'f.sock')
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        lsock.listen(16)
        os.chmod(path, 0o777)
        conf = '''
log_level = "info";
backends = ( { name = "app"; servers = ( "unix:%s" ); keepalive = true; max_fails = 0; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "app"; } );
''' % path
        held, answered = [], threading.Event()

        def first():
            # one connection, answered in part and then held: the server is
            # "busy"; a second connection sits in the backlog unread
            c, _ = lsock.accept()
            held.append(c)
            data = b''
            while STDIN_END not in data:
                more = c.recv(65536)
                if not more:
                    return
                data += more
            c.sendall(fb.record(fb.STDOUT, 1, b'Content-Type: text/plain\r\n\r\nstart'))
            answered.set()

        threading.Thread(target=first, daemon=True).start()
        clients = []
        with harness.Server(conf=conf, workers=1) as srv:
            try:
                for name in ('one', 'two'):
                    s = harness.connect(srv.port, 30)
                    s.sendall(b'GET /app/%s HTTP/1.1\r\nHost: x\r\n\r\n' % name.encode())
                    clients.append(s)
                    if name == 'one':
                        self.assertTrue(answered.wait(30))
                self.assertTrue(srv.wait_for_log(r'a request waited on a new connection while '
                                                 r'1 others were served', 30),
                                srv.stderr_text())
                old = srv.worker_pids()
                self.assertEqual(len(old), 1)
                os.kill(old[0], signal.SIGKILL)
                self.assertTrue(srv.wait_for_log(r'exited on signal 9; respawning', 30))
                self.assertTrue(srv.wait_for(lambda: srv.worker_pids() and
                                             srv.worker_pids() != old, 30))
            finally:
                for s in clients + held:
                    s.close()
                lsock.close()
            os.unlink(path)
            with fb.FakeFcgiServer(unix=path) as fake:
                os.chmod(path, 0o777)
                for i in range(4):
                    r = harness.request(srv.port, 'GET', '/app/seq/%d' % i, timeout=30)
                    self.assertEqual(r[0], 200, r)
                conns = {q.conn_id for q in fake.reqs}
                # the dead worker's count would keep every worker from
                # keeping a connection: one connection per request
                self.assertEqual(len(conns), 1, 'no pooling after a worker died: %s' % conns)


if __name__ == '__main__':
    harness.main()
