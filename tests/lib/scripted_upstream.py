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


def read_exact(f, n):
    b = f.read(n)
    if len(b) < n:
        raise ValueError('short read')
    return b


def read_scgi(f):
    """An SCGI request (a netstring of NUL-separated pairs, then the body):
    its variables, or None at EOF."""
    ln = b''
    while True:
        ch = f.read(1)
        if not ch:
            return None
        if ch == b':':
            break
        ln += ch
    block = read_exact(f, int(ln) + 1)[:-1]   # the netstring's ","
    items = block.split(b'\0')
    return {items[i].decode('latin-1'): items[i + 1].decode('latin-1')
            for i in range(0, len(items) - 1, 2)}


def read_uwsgi(f):
    """A uwsgi request (4-byte header, then 16-bit length-prefixed pairs)."""
    h = f.read(4)
    if len(h) < 4:
        return None
    size = struct.unpack('<H', h[1:3])[0]
    block = read_exact(f, size)
    v, i = {}, 0
    while i < len(block):
        kl = struct.unpack('<H', block[i:i + 2])[0]
        k = block[i + 2:i + 2 + kl]
        i += 2 + kl
        vl = struct.unpack('<H', block[i:i + 2])[0]
        v[k.decode('latin-1')] = block[i + 2:i + 2 + vl].decode('latin-1')
        i += 2 + vl
    return v


class Upstream:
    """Listens on 127.0.0.1:<port>. scripts: {name: fn(conn, method, headers) -> keep}.
    proto: "http", or "scgi" / "uwsgi" (headers are then the request's
    variables, and a connection carries one request)."""

    def __init__(self, scripts, proto='http'):
        self.proto = proto
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
                if self.proto == 'http':
                    lines = read_head(f)
                    if lines is None:
                        break
                    method, target, _ = lines[0].split(' ', 2)
                    hdrs = {}
                    for line in lines[1:]:
                        k, v = line.split(':', 1)
                        hdrs[k.strip().lower()] = v.strip()
                    n = int(hdrs.get('content-length', '0'))
                else:
                    hdrs = (read_scgi if self.proto == 'scgi' else read_uwsgi)(f)
                    if hdrs is None:
                        break
                    method, target = hdrs['REQUEST_METHOD'], hdrs['REQUEST_URI']
                    n = int(hdrs.get('CONTENT_LENGTH') or '0')
                c.nreq += 1
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


def forever_header(first):
    """A header block that never ends: header lines, forever."""
    def fn(c, method, hdrs):
        c.send(first)
        i = 0
        while True:
            c.send(b''.join(b'X-More-%d: more\r\n' % (i + k) for k in range(1000)))
            i += 1000
    return fn


def trickle(head, body=b'', first=b''):
    """first at once, then the head (then the body) one byte per second."""
    def fn(c, method, hdrs):
        if first:
            c.send(first)
        for b in head + body:
            c.send(bytes([b]))
            time.sleep(1)
        return False
    return fn
