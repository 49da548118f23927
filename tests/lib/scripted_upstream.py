"""scripted_upstream.py: a raw-socket upstream for the hostile-upstream
tests, run in the test's own process (threads). Each request's path's last
segment names a script: a function that writes whatever bytes it likes on
the socket (smuggling shapes, garbage, resets, silence, endless bodies)
and says whether the connection reads a next request afterwards.

Unlike a real server the broken shapes keep the connection open: whether a
connection is used again after a broken response is then portico's choice
alone, and the "conn" script, which answers "conn N req M", shows it.
Standard library only.
"""

import socket
import struct
import threading
import time


class Conn:
    def __init__(self, sock, cid):
        self.sock = sock
        self.cid = cid
        self.nreq = 0
        self.sent = 0

    def send(self, data):
        self.sock.sendall(data)
        self.sent += len(data)

    def reset(self):
        """Close with a RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.sock.close()


def read_head(f):
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            return None
        if line in (b'\r\n', b'\n'):
            return lines
        lines.append(line.decode('latin-1').rstrip('\r\n'))


class Upstream:
    """Listens on 127.0.0.1:<port>. scripts: {name: fn(conn, method, headers) -> keep}."""

    def __init__(self, scripts):
        self.scripts = dict(scripts)
        self.lock = threading.Lock()
        self.count = 0
        self.closed = set()   # connection ids the peer (portico) closed
        self.conns = {}
        self.last = {}        # script name -> the connection id that ran it last
        self.stopping = False
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.count += 1
                c = Conn(s, self.count)
                self.conns[c.cid] = c
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.sock.makefile('rb')
        try:
            while True:
                lines = read_head(f)
                if lines is None:
                    break
                c.nreq += 1
                method, target, _ = lines[0].split(' ', 2)
                hdrs = {}
                for line in lines[1:]:
                    k, v = line.split(':', 1)
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get('content-length', '0'))
                if n:
                    f.read(n)
                what = target.split('?')[0].rstrip('/').rsplit('/', 1)[-1]
                fn = self.scripts.get(what)
                with self.lock:
                    self.last[what] = c.cid
                if fn is None:
                    c.send(b'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
                    continue
                if not fn(c, method, hdrs):
                    break
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.closed.add(c.cid)
            try:
                c.sock.close()
            except OSError:
                pass

    def is_closed(self, cid):
        with self.lock:
            return cid in self.closed

    def served_by(self, what):
        with self.lock:
            return self.last.get(what)

    def stop(self):
        self.stopping = True
        self.ls.close()
        with self.lock:
            conns = list(self.conns.values())
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def conn_script(c, method, hdrs):
    body = b'conn %d req %d' % (c.cid, c.nreq)
    c.send(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body))
    return True


def raw(data, keep=True):
    """A script that sends data and keeps the connection (reads on)."""
    def fn(c, method, hdrs):
        c.send(data)
        return keep
    return fn


def silent(c, method, hdrs):
    """Reads the request, never answers; the connection stays open until
    portico closes it."""
    try:
        while c.sock.recv(65536):
            pass
    except OSError:
        pass
    return False


def forever(c, method, hdrs):
    """A close-delimited body that never ends (until portico goes away)."""
    c.send(b'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n')
    block = b'f' * 65536
    while True:
        c.send(block)


def trickle(head, body=b''):
    """The head (then the body) one byte per second."""
    def fn(c, method, hdrs):
        for b in head + body:
            c.send(bytes([b]))
            time.sleep(1)
        return False
    return fn
