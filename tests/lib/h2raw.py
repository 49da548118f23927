"""h2raw.py: a raw HTTP/2 client for tests (RFC 9113): frames built by hand
with struct and HPACK fields written as literals or static-table indexes
(RFC 7541), so a test can send what no real client would (HEADERS+RST_STREAM
pairs by the thousand, CONTINUATION without END_HEADERS, a dynamic-table
entry referenced many times, PINGs it never reads the answers of, stream
ids at 2^31-1). No state machine: the caller says which frame goes next.
Standard library only."""

import socket
import struct
import sys
import time

try:
    import hpack
except ImportError:
    # Debian's python3-hpack, for another python3 (as t_h2.py does)
    sys.path.append('/usr/lib/python3/dist-packages')
    try:
        import hpack
    except ImportError:
        hpack = None  # tests that need it skip

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'

# frame types (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
# flags
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
# settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, \
    MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = range(1, 7)
# error codes (RFC 9113 §7)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
CANCEL, ENHANCE_YOUR_CALM = 0x8, 0xb


def frame(ftype, flags, sid, payload=b''):
    n = len(payload)
    return struct.pack('>BHBBI', n >> 16, n & 0xffff, ftype, flags, sid & 0x7fffffff) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b''.join(struct.pack('>HI', k, v) for k, v in pairs))


def ping(data=b'\0' * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, data[:8].ljust(8, b'\0'))


def rst_stream(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack('>I', code))


def window_update(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack('>I', inc))


def headers(sid, block, end_stream=True, end_headers=True):
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, sid, block)


def continuation(sid, block, end_headers=False):
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, sid, block)


# ---- HPACK (RFC 7541), enough to say anything -------------------------------

def hpack_int(v, prefix_bits, first=0):
    """§5.1: an integer with an N-bit prefix; first holds the pattern bits."""
    top = (1 << prefix_bits) - 1
    if v < top:
        return bytes([first | v])
    out = [first | top]
    v -= top
    while v >= 128:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _str(s):
    s = s.encode() if isinstance(s, str) else s
    return hpack_int(len(s), 7) + s  # H=0: no Huffman


def literal(name, value, index=False):
    """§6.2.1 (index=True: added to the dynamic table) or §6.2.2."""
    return (b'\x40' if index else b'\x00') + _str(name) + _str(value)


def indexed(i):
    """§6.1: a field from the static (1..61) or dynamic (62..) table."""
    return hpack_int(i, 7, 0x80)


def table_size(n):
    """§6.3: dynamic table size update."""
    return hpack_int(n, 5, 0x20)


def request(path='/', authority='localhost', method='GET', scheme='http', extra=()):
    """A request's header block, every field a literal (no table state)."""
    b = literal(':method', method) + literal(':scheme', scheme) + literal(':path', path)
    b += literal(':authority', authority)
    for n, v in extra:
        b += literal(n, v)
    return b


# ---- a connection ------------------------------------------------------------

class Conn:
    """A socket speaking raw frames: send() bytes, next_frame() what came
    back; every frame read is also kept per stream (fields, bodies, ended)
    and GOAWAYs in goaways, whoever reads it."""

    def __init__(self, port, host='127.0.0.1', timeout=10, rcvbuf=None, preface=True):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect((host, port))
        self.buf = b''
        self.eof = False
        self.dec = hpack.Decoder()  # the server's HPACK table, in frame order
        self.fields = {}  # sid -> the last header block decoded [(name, value)]
        self.goaways = []  # (last stream id, error code) of each GOAWAY read
        self.bodies = {}  # sid -> DATA received
        self.ended = {}  # sid -> 'end' (END_STREAM) or 'reset'
        self.auto_window = True  # give DATA's window back as it is read
        if preface:
            self.send(PREFACE + settings())

    def send(self, data):
        """True if it all went, False if the server closed on us."""
        try:
            self.s.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, timeout):
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            d = b''
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def next_frame(self, timeout=10):
        """(type, flags, sid, payload), or None at EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], 'big')
                if len(self.buf) >= 9 + n:
                    t, fl, sid = self.buf[3], self.buf[4], \
                        struct.unpack('>I', self.buf[5:9])[0] & 0x7fffffff
                    p = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    if t == HEADERS:
                        self.fields[sid] = self.dec.decode(_block_of(p, fl), raw=True)
                    elif t == DATA:
                        self.bodies[sid] = self.bodies.get(sid, b'') + p
                        if p and self.auto_window:
                            self.send(window_update(0, len(p)) + window_update(sid, len(p)))
                    elif t == RST_STREAM:
                        self.ended[sid] = 'reset'
                    if t in (HEADERS, DATA) and fl & END_STREAM:
                        self.ended[sid] = 'end'
                    if t == GOAWAY and len(p) >= 8:
                        last, code = struct.unpack('>II', p[:8])
                        self.goaways.append((last & 0x7fffffff, code))
                    return t, fl, sid, p
            left = deadline - time.monotonic()
            if self.eof or left <= 0 or not self._fill(left):
                return None

    def until(self, pred, timeout=20):
        """Frames until pred(frame) is true: (that frame, all seen), or
        (None, all seen) at EOF or timeout. SETTINGS get their ACK."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.next_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return None, seen
            seen.append(f)
            if f[0] == SETTINGS and not f[1] & ACK:
                self.send(settings(ack=True))
            if pred(f):
                return f, seen
            if time.monotonic() >= deadline:
                return None, seen

    def goaway(self, timeout=20):
        """(last stream id, error code) of the first GOAWAY received (read
        now if none came yet), or None."""
        if not self.goaways:
            self.until(lambda f: f[0] == GOAWAY, timeout)
        return self.goaways[0] if self.goaways else None

    def response(self, sid, timeout=20):
        """(status, body) of stream sid read to END_STREAM (windows given
        back as DATA comes); None on EOF, reset or timeout."""
        deadline = time.monotonic() + timeout
        while sid not in self.ended:
            f = self.next_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return None
            if f[0] == SETTINGS and not f[1] & ACK:
                self.send(settings(ack=True))
        if self.ended[sid] == 'reset':
            return None
        return int(dict(self.fields[sid])[b':status']), self.bodies.get(sid, b'')

    def closed(self, timeout=20):
        """True once the server has closed (EOF or reset)."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.buf = b''
            self._fill(max(0.01, deadline - time.monotonic()))
        return self.eof

    def close(self):
        self.s.close()


def _block_of(p, flags):
    """A HEADERS frame's field block, padding and priority taken off."""
    if flags & PADDED:
        pad = p[0]
        p = p[1:len(p) - pad]
    if flags & PRIO:
        p = p[5:]
    return p
