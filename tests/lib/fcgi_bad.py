"""fcgi_bad.py: a FastCGI responder in pure Python (standard library only)
that misbehaves on request, for portico's FastCGI fault tests, plus a small
FastCGI client to check it (and other FastCGI apps) without a web server.

The server runs in threads inside the test process (one acceptor thread,
one thread per connection), listens on 127.0.0.1:0 or on a Unix socket path,
parses BEGIN_REQUEST / PARAMS / STDIN itself and honours FCGI_KEEP_CONN
(keeps the connection for the next request; without it the connection is
closed after END_REQUEST). It counts accepted connections and requests, and
records each request (params as a dict of latin-1 strings, the stdin bytes).

Choosing the behaviour of one request (first match wins):
  1. QUERY_STRING `mode=<mode>`, e.g. "/app/x?mode=split";
  2. a path segment "m" followed by the mode in SCRIPT_NAME + PATH_INFO,
     e.g. "/app/m/split/anything" or "/x.php/m/split";
  3. the server's default mode (constructor argument `mode`, default "ok";
     may be changed later through the attribute).
The other QUERY_STRING parameters are options of the mode (below).

Modes:
  ok              200, JSON body: mode, params, stdin length and sha256,
                  connection id, request number; option status=NNN
  split           the ok response, every byte of the record stream (headers
                  and END_REQUEST included) in its own send, 1 ms apart
  bad_version     a STDOUT record with version 2
  bad_id          a STDOUT record for request id + 1
  bad_type        a PARAMS record back instead of STDOUT
  unknown_type    an FCGI_UNKNOWN_TYPE record
  huge_padding    a valid response in small records, each with 255 bytes of
                  padding; body = HUGE_PADDING_BODY
  stall           reads the request, never answers (until the peer closes)
  close_before    closes right after reading the request
  close_mid       headers and part of the body, then closes
  reset_before    reads the request, then resets the connection (SO_LINGER
                  on with a zero timeout, then close: an RST on TCP)
  reset_mid       headers and part of the body, then resets the connection
  half_header     the first 4 bytes of a STDOUT record header, then closes;
                  stall=1: waits for the peer to close instead
  half_content    a STDOUT record header announcing more content than is
                  sent, then closes; at=head (default) cuts inside the
                  header block (after "X-LEAK: half"), at=body after a
                  whole header block (X-Half: body) and 20 lines "half
                  content line"; stall=1: waits for the peer to close instead
  garbage         no FastCGI at all: an HTTP/1.1 response ("HTTP/1.1 200
                  OK", "LEAK garbage" body), as a web server would answer
  end_first       END_REQUEST before any STDOUT
  giant_headers   a header block of kb= KiB (default 80) of X-Big-N lines
  bad_header      v=cr (CR in a value, default), v=nul (NUL in a value),
                  v=cl (two different Content-Length values)
  stderr          STDERR lines "stderr line one <tag>" and "stderr line two
                  <tag>" interleaved with STDOUT; body "stderr mode body\\n"
  overloaded      END_REQUEST protocolStatus FCGI_OVERLOADED
  cant_mpx        END_REQUEST protocolStatus FCGI_CANT_MPX_CONN
  unknown_role    END_REQUEST protocolStatus FCGI_UNKNOWN_ROLE
  big             mb= MiB (default 8) of big_body(mb); cl=1 adds Content-Length
                  and xsend=PATH "X-Sendfile: PATH"
  slow_client_probe  like big (mb default 16) from a socket with a small
                  send buffer; probe_done(tag) is set once every byte was
                  handed to the kernel; nobuf=1 adds "X-Accel-Buffering: no"
  sse             text/event-stream with "X-Accel-Buffering: no" (nobuf=0
                  leaves it out): "data: 1", then waits for event(tag), then
                  "data: 2" and the end
  recycle         like ok, but after k= (default: the server's recycle_after,
                  3) answered requests on a connection the next request is
                  read and the connection closed without an answer (PHP-FPM
                  pm.max_requests)
  sleep           like ok after s= seconds (default 1) and/or after
                  event(gate) is set (gate=<tag>)
After a protocol violation (bad_version, bad_id, bad_type, unknown_type,
end_first, garbage) the server waits for the peer to close the connection and records
that in Request.peer_closed.

Management records: FCGI_GET_VALUES is answered (FCGI_MAX_CONNS from the
constructor's max_conns_value), other types get FCGI_UNKNOWN_TYPE.

Run it by hand: python3 fcgi_bad.py [--listen 127.0.0.1:9000 | --unix PATH]
[--mode MODE], then e.g. REQUEST_METHOD=GET QUERY_STRING=mode=split
cgi-fcgi -bind -connect 127.0.0.1:9000."""

import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse

__all__ = ['FakeFcgiServer', 'FcgiClient', 'fcgi_request', 'Request', 'FcgiResponse',
           'big_body', 'HUGE_PADDING_BODY', 'MODES', 'ProtocolError']

# FastCGI 1.0 (fastcgi.h)
VERSION_1 = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR, DATA, \
    GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = range(1, 12)
RESPONDER, AUTHORIZER, FILTER = 1, 2, 3
KEEP_CONN = 1
REQUEST_COMPLETE, CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE = range(4)
HEADER = struct.Struct('>BBHHBx')
FCGI_HEADER_LEN = HEADER.size
MAX_CONTENT = 65535

MODES = ('ok', 'split', 'bad_version', 'bad_id', 'bad_type', 'unknown_type', 'huge_padding',
         'stall', 'close_before', 'close_mid', 'end_first', 'giant_headers', 'bad_header',
         'stderr', 'overloaded', 'cant_mpx', 'unknown_role', 'big', 'slow_client_probe', 'sse',
         'recycle', 'sleep', 'reset_before', 'reset_mid', 'half_header', 'half_content',
         'garbage')

_BLOCK = bytes(i % 251 for i in range(65536))
HUGE_PADDING_BODY = b''.join(b'padded body line %03d\n' % i for i in range(100))


def big_body(mb):
    """The body of mode big / slow_client_probe for mb MiB (a 251-periodic
    byte pattern, the same as tests/cgi/big.cgi)."""
    return _BLOCK * (16 * mb)


class ProtocolError(Exception):
    pass


# -- records ----------------------------------------------------------------

def record(rtype, req_id, content=b'', padding=None, version=VERSION_1, pad_byte=b'\0'):
    """One record; padding None pads the record to a multiple of 8 bytes
    (the spec's recommendation)."""
    if len(content) > MAX_CONTENT:
        raise ValueError('record content over 65535 bytes')
    if padding is None:
        padding = -len(content) % 8
    return HEADER.pack(version, rtype, req_id, len(content), padding) + content + \
        pad_byte * padding


def stream_records(rtype, req_id, data, size=32768, padding=None, end=True):
    """data as records of at most size bytes, plus the empty record that ends
    the stream when end is set."""
    out = [record(rtype, req_id, data[i:i + size], padding) for i in range(0, len(data), size)]
    if end:
        out.append(record(rtype, req_id, b'', padding))
    return b''.join(out)


def end_request(req_id, protocol_status=REQUEST_COMPLETE, app_status=0, padding=None):
    return record(END_REQUEST, req_id, struct.pack('>IB3x', app_status, protocol_status), padding)


def _nv_len(n):
    return struct.pack('>B', n) if n < 128 else struct.pack('>I', n | 0x80000000)


def encode_params(pairs):
    """Name-value pairs (FastCGI spec 3.4) from a dict or a list of pairs;
    str is encoded as latin-1."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    out = []
    for k, v in items:
        k = k.encode('latin-1') if isinstance(k, str) else k
        v = v.encode('latin-1') if isinstance(v, str) else v
        out.append(_nv_len(len(k)) + _nv_len(len(v)) + k + v)
    return b''.join(out)


def decode_params(data):
    """[(name, value)] as bytes; ProtocolError on a truncated pair."""
    out, i, n = [], 0, len(data)

    def length():
        nonlocal i
        if i >= n:
            raise ProtocolError('truncated name-value length')
        if data[i] < 128:
            i += 1
            return data[i - 1]
        if i + 4 > n:
            raise ProtocolError('truncated name-value length')
        v = struct.unpack('>I', data[i:i + 4])[0] & 0x7fffffff
        i += 4
        return v

    while i < n:
        kl = length()
        vl = length()
        if i + kl + vl > n:
            raise ProtocolError('truncated name-value data')
        out.append((data[i:i + kl], data[i + kl:i + kl + vl]))
        i += kl + vl
    return out


class RecordReader:
    """Whole records from a socket. read() returns (version, type, id,
    content, padding_length), or None at EOF on a record boundary; EOF inside
    a record raises ProtocolError."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _need(self, n):
        while len(self.buf) < n:
            try:
                b = self.sock.recv(max(65536, n - len(self.buf)))
            except (ConnectionResetError, BrokenPipeError):
                b = b''
            if not b:
                return False
            self.buf += b
        return True

    def pending(self):
        return len(self.buf)

    def read(self):
        if not self._need(8):
            if self.buf:
                raise ProtocolError('EOF inside a record header')
            return None
        version, rtype, rid, clen, plen = HEADER.unpack(bytes(self.buf[:8]))
        if not self._need(8 + clen + plen):
            raise ProtocolError('EOF inside a record body')
        content = bytes(self.buf[8:8 + clen])
        del self.buf[:8 + clen + plen]
        return version, rtype, rid, content, plen


# -- server -----------------------------------------------------------------

class Request:
    """What the fake server saw of one request."""

    def __init__(self, conn_id, req_id, role, flags, number):
        self.conn_id = conn_id      # which accepted connection (1, 2, ...)
        self.req_id = req_id
        self.role = role
        self.flags = flags
        self.keep_conn = bool(flags & KEEP_CONN)
        self.number = number        # 1-based, over the server's lifetime
        self.raw_params = []        # [(bytes, bytes)] in the order sent
        self.params = {}            # str -> str (latin-1), last one wins
        self.stdin = b''
        self.mode = None
        self.opts = {}
        self.aborted = False
        self.answered = False       # END_REQUEST written
        self.done = threading.Event()  # handler finished (answered or not)
        self.peer_closed = None     # protocol-error modes: did the peer close?

    def __repr__(self):
        return '<Request #%d conn %d mode %s %s>' % (self.number, self.conn_id, self.mode,
                                                     self.params.get('REQUEST_URI'))


class _Conn:
    def __init__(self, sock, cid):
        self.sock = sock
        self.id = cid
        self.reader = RecordReader(sock)
        self.served = 0       # requests answered on this connection
        self.idle = False     # waiting for the next request after >= 1 answered
        self.closed = False
        self.wlock = threading.Lock()

    def send(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def shutdown(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Drop(Exception):
    """Close the connection without any further answer."""


def _reset(conn):
    """Close conn with an RST instead of a FIN: SO_LINGER on with a zero
    timeout makes close() abort the connection (on TCP; a Unix socket just
    closes)."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    raise _Drop()


class FakeFcgiServer:
    """A FastCGI responder with selectable misbehaviour (see the module doc).

    FakeFcgiServer(unix=None, mode='ok', recycle_after=3, max_conns_value=None,
                   host='127.0.0.1', port=0)
    .address      the string for portico's config: "127.0.0.1:PORT" or "unix:PATH"
    .connections  accepted connections; .requests BEGIN_REQUESTs seen
    .answered     END_REQUESTs written; .active / .max_active handlers running
    .reqs         [Request] in arrival order
    Thread-safe readers: snapshot(), wait_requests(n), wait_for(pred)."""

    def __init__(self, unix=None, mode='ok', recycle_after=3, max_conns_value=None,
                 host='127.0.0.1', port=0, record_size=32768):
        self.unix = unix
        self.mode = mode
        self.recycle_after = recycle_after
        self.max_conns_value = max_conns_value
        self.host = host
        self.bind_port = port
        self.record_size = record_size
        self.lock = threading.Condition()
        self.stopping = threading.Event()
        self.listener = None
        self.port = None
        self.address = None
        self._events = {}
        self._probes = {}
        self._conns = {}
        self._threads = []
        self._acceptor = None
        self.reset()

    # -- lifecycle
    def start(self):
        if self.unix:
            try:
                os.unlink(self.unix)
            except FileNotFoundError:
                pass
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.unix)
            self.address = 'unix:' + self.unix
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.host, self.bind_port))
            self.port = s.getsockname()[1]
            self.address = '%s:%d' % (self.host, self.port)
        s.listen(128)
        s.settimeout(0.1)
        self.listener = s
        self.stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, name='fcgi_bad-accept',
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self):
        """Close the listener (new connects are refused) and every connection,
        release every waiting handler, join the threads."""
        self.stopping.set()
        with self.lock:
            for ev in self._events.values():
                ev.set()
        if self._acceptor is not None:
            self._acceptor.join(10)  # it closes the listener on its way out
            self._acceptor = None
        with self.lock:
            conns = list(self._conns.values())
        for c in conns:
            c.shutdown()
        for t in list(self._threads):
            t.join(10)
        self._threads = [t for t in self._threads if t.is_alive()]
        if self.unix:
            try:
                os.unlink(self.unix)
            except FileNotFoundError:
                pass

    def __enter__(self):
        if self.listener is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def reset(self):
        """Forget the counters and records (the connections stay, and so
        does .active: handlers still running keep counting)."""
        with self.lock:
            self.connections = 0
            self.requests = 0
            self.answered = 0
            self.active = getattr(self, 'active', 0)
            self.max_active = self.active
            self.get_values = 0
            self.peer_closes = 0
            self.reqs = []
            self.lock.notify_all()

    # -- test-facing helpers
    def snapshot(self):
        with self.lock:
            return {'connections': self.connections, 'requests': self.requests,
                    'answered': self.answered, 'active': self.active,
                    'max_active': self.max_active, 'open': len(self._conns)}

    def wait_for(self, pred, timeout=20):
        """Wait until pred() (called with the lock held) is true."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.1))
            return True

    def wait_requests(self, n, timeout=20):
        return self.wait_for(lambda: self.requests >= n, timeout)

    def event(self, name):
        """A threading.Event the sse and sleep modes wait on (set by stop too)."""
        with self.lock:
            ev = self._events.get(name)
            if ev is None:
                ev = self._events[name] = threading.Event()
                if self.stopping.is_set():
                    ev.set()
            return ev

    def release(self, name):
        self.event(name).set()

    def probe_done(self, tag):
        """Set when slow_client_probe with tag= has written everything."""
        with self.lock:
            ev = self._probes.get(tag)
            if ev is None:
                ev = self._probes[tag] = threading.Event()
            return ev

    def close_idle(self):
        """Close (FIN) every connection waiting for its next request after
        having answered at least one: what a backend does to idle keep-alive
        connections. Returns how many."""
        with self.lock:
            idle = [c for c in self._conns.values() if c.idle]
        for c in idle:
            c.shutdown()
        return len(idle)

    def requests_with(self, mode):
        with self.lock:
            return [r for r in self.reqs if r.mode == mode]

    # -- internals
    def _accept_loop(self):
        lst = self.listener
        try:
            self._accept_until_stopped(lst)
        finally:
            lst.close()
            self.listener = None

    def _accept_until_stopped(self, lst):
        while not self.stopping.is_set():
            try:
                sock, _ = lst.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            if sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                conn = _Conn(sock, self.connections)
                self._conns[id(conn)] = conn
                self.lock.notify_all()
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name='fcgi_bad-conn-%d' % conn.id)
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
            t.start()

    def _serve(self, conn):
        try:
            while not self.stopping.is_set():
                req = self._read_request(conn)
                if req is None:
                    break
                with self.lock:
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                try:
                    keep = self._handle(conn, req)
                except _Drop:
                    keep = False
                except (BrokenPipeError, ConnectionResetError, OSError):
                    keep = False
                finally:
                    with self.lock:
                        self.active -= 1
                        self.lock.notify_all()
                    req.done.set()
                if not (keep and req.keep_conn):
                    break
        except ProtocolError as e:
            sys.stderr.write('fcgi_bad: connection %d: %s\n' % (conn.id, e))
        finally:
            conn.closed = True
            with self.lock:
                self._conns.pop(id(conn), None)
                self.lock.notify_all()
            try:
                conn.sock.close()
            except OSError:
                pass

    def _read_request(self, conn):
        """The next complete request on conn (BEGIN_REQUEST, PARAMS until the
        empty record, STDIN until the empty record), or None at EOF."""
        req = None
        params = bytearray()
        stdin = bytearray()
        params_done = False
        conn.idle = conn.served > 0
        try:
            while True:
                rec = conn.reader.read()
                if rec is None:
                    with self.lock:
                        self.peer_closes += 1
                    return None
                conn.idle = False
                version, rtype, rid, content, _ = rec
                if version != VERSION_1:
                    raise ProtocolError('record version %d' % version)
                if rid == 0:
                    self._management(conn, rtype, content)
                    conn.idle = req is None and conn.served > 0
                    continue
                if rtype == BEGIN_REQUEST:
                    if req is not None:
                        # a second request while one is open: no multiplexing
                        conn.send(end_request(rid, CANT_MPX_CONN))
                        continue
                    role, flags = struct.unpack('>HB5x', content[:8])
                    with self.lock:
                        self.requests += 1
                        req = Request(conn.id, rid, role, flags, self.requests)
                        self.reqs.append(req)
                        self.lock.notify_all()
                elif req is None or rid != req.req_id:
                    continue  # records of an aborted/unknown request: ignored
                elif rtype == ABORT_REQUEST:
                    req.aborted = True
                    conn.send(end_request(rid))
                    return self._read_request(conn) if req.keep_conn else None
                elif rtype == PARAMS:
                    if content:
                        params += content
                    else:
                        params_done = True
                elif rtype == STDIN:
                    if content:
                        stdin += content
                    elif params_done:
                        break
                elif rtype == DATA:
                    pass
                else:
                    raise ProtocolError('unexpected record type %d' % rtype)
        finally:
            conn.idle = False
        req.raw_params = decode_params(bytes(params))
        req.params = {k.decode('latin-1'): v.decode('latin-1') for k, v in req.raw_params}
        req.stdin = bytes(stdin)
        req.mode, req.opts = self._mode_of(req)
        return req

    def _management(self, conn, rtype, content):
        if rtype == GET_VALUES:
            with self.lock:
                self.get_values += 1
            known = {'FCGI_MAX_CONNS': str(self.max_conns_value or 100),
                     'FCGI_MAX_REQS': str(self.max_conns_value or 100),
                     'FCGI_MPXS_CONNS': '0'}
            asked = [k.decode('latin-1') for k, _ in decode_params(content)]
            ans = [(k, known[k]) for k in asked if k in known]
            conn.send(record(GET_VALUES_RESULT, 0, encode_params(ans)))
        else:
            conn.send(record(UNKNOWN_TYPE, 0, struct.pack('>B7x', rtype)))

    def _mode_of(self, req):
        qs = req.params.get('QUERY_STRING', '')
        opts = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))
        mode = opts.pop('mode', None)
        if mode is None:
            segs = (req.params.get('SCRIPT_NAME', '') + req.params.get('PATH_INFO', '')).split('/')
            for i, s in enumerate(segs[:-1]):
                if s == 'm' and segs[i + 1]:
                    mode = segs[i + 1]
                    break
        return mode or self.mode, opts

    # -- answers
    def _finish(self, conn, req, data, bytewise=False):
        if bytewise:
            for i in range(len(data)):
                conn.send(data[i:i + 1])
                time.sleep(0.001)
        else:
            conn.send(data)
        with self.lock:
            self.answered += 1
            conn.served += 1
            self.lock.notify_all()
        req.answered = True

    def _ok_body(self, conn, req):
        return json.dumps({
            'mode': req.mode, 'params': req.params, 'stdin_len': len(req.stdin),
            'stdin_sha256': hashlib.sha256(req.stdin).hexdigest(), 'conn': conn.id,
            'request': req.number, 'keep_conn': req.keep_conn,
        }, sort_keys=True).encode('utf-8') + b'\n'

    def _ok_response(self, conn, req, padding=None):
        head = 'Content-Type: application/json\r\nX-Fake-Conn: %d\r\nX-Fake-Request: %d\r\n' % (
            conn.id, req.number)
        if 'status' in req.opts:
            head = 'Status: %s\r\n' % req.opts['status'] + head
        data = head.encode('latin-1') + b'\r\n' + self._ok_body(conn, req)
        return (stream_records(STDOUT, req.req_id, data, self.record_size, padding) +
                end_request(req.req_id, padding=padding))

    def _wait_peer_close(self, conn, req, timeout=30):
        """After a protocol violation: read (and drop) until the peer closes."""
        conn.sock.settimeout(timeout)
        try:
            while True:
                b = conn.sock.recv(65536)
                if not b:
                    req.peer_closed = True
                    return
        except socket.timeout:
            req.peer_closed = False
        except OSError:
            req.peer_closed = True
        finally:
            if req.peer_closed:
                with self.lock:
                    self.peer_closes += 1
                    self.lock.notify_all()

    def _wait_event(self, name, timeout=60):
        ev = self.event(name)
        ev.wait(timeout)

    def _handle(self, conn, req):
        """Answer req; True to keep the connection (when FCGI_KEEP_CONN)."""
        rid, o = req.req_id, req.opts
        if req.role != RESPONDER:
            self._finish(conn, req, end_request(rid, UNKNOWN_ROLE))
            return True
        m = req.mode
        if m == 'ok':
            self._finish(conn, req, self._ok_response(conn, req))
        elif m == 'split':
            self._finish(conn, req, self._ok_response(conn, req), bytewise=True)
        elif m == 'bad_version':
            conn.send(record(STDOUT, rid, b'Content-Type: text/plain\r\n\r\nLEAK bad_version\n',
                             version=2))
            self._wait_peer_close(conn, req)
            return False
        elif m == 'bad_id':
            conn.send(record(STDOUT, rid + 1, b'Content-Type: text/plain\r\n\r\nLEAK bad_id\n') +
                      end_request(rid + 1))
            self._wait_peer_close(conn, req)
            return False
        elif m == 'bad_type':
            conn.send(record(PARAMS, rid, encode_params({'LEAK': 'bad_type'})))
            self._wait_peer_close(conn, req)
            return False
        elif m == 'unknown_type':
            conn.send(record(UNKNOWN_TYPE, 0, struct.pack('>B7x', 77)))
            self._wait_peer_close(conn, req)
            return False
        elif m == 'end_first':
            conn.send(end_request(rid))
            self._wait_peer_close(conn, req)
            return False
        elif m == 'huge_padding':
            data = b'Content-Type: text/plain\r\nX-Padded: yes\r\n\r\n' + HUGE_PADDING_BODY
            self._finish(conn, req, stream_records(STDOUT, rid, data, 100, 255) +
                         end_request(rid, padding=255))
        elif m == 'stall':
            self._wait_peer_close(conn, req, timeout=120)
            return False
        elif m == 'close_before':
            raise _Drop()
        elif m == 'close_mid':
            conn.send(record(STDOUT, rid, b'Content-Type: text/plain\r\n\r\n' +
                             b'partial body line\n' * 20))
            time.sleep(0.2)
            raise _Drop()
        elif m == 'reset_before':
            _reset(conn)
        elif m == 'reset_mid':
            conn.send(record(STDOUT, rid, b'Content-Type: text/plain\r\n\r\n' +
                             b'partial body line\n' * 20))
            time.sleep(0.2)
            _reset(conn)
        elif m in ('half_header', 'half_content'):
            if m == 'half_header':
                conn.send(record(STDOUT, rid, b'Content-Type: text/plain\r\n\r\n')[:4])
            else:
                if o.get('at', 'head') == 'head':
                    data = b'Content-Type: text/plain\r\nX-LEAK: half_content\r\n\r\nLEAK\n'
                    cut = data.index(b'X-LEAK: half') + len(b'X-LEAK: half')
                else:
                    data = b'Content-Type: text/plain\r\nX-Half: body\r\n\r\n' + \
                        b'half content line\n' * 20 + b'LEAK never sent\n' * 20
                    cut = data.index(b'LEAK never sent')
                conn.send(record(STDOUT, rid, data)[:FCGI_HEADER_LEN + cut])
            if o.get('stall') == '1':
                self._wait_peer_close(conn, req, timeout=120)
                return False
            raise _Drop()
        elif m == 'garbage':
            conn.send(b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n'
                      b'\r\nLEAK garbage\n')
            self._wait_peer_close(conn, req)
            return False
        elif m == 'giant_headers':
            kb = int(o.get('kb', 80))
            lines, size, i = [], 0, 0
            while size < kb * 1024:
                line = b'X-Big-%d: %s\r\n' % (i, b'b' * 1000)
                lines.append(line)
                size += len(line)
                i += 1
            data = b'Content-Type: text/plain\r\n' + b''.join(lines) + b'\r\nLEAK giant\n'
            self._finish(conn, req, stream_records(STDOUT, rid, data, self.record_size) +
                         end_request(rid))
        elif m == 'bad_header':
            bad = {'cr': b'X-Bad: one\rtwo\r\n', 'nul': b'X-Bad: one\0two\r\n',
                   'cl': b'Content-Length: 5\r\nContent-Length: 6\r\n'}[o.get('v', 'cr')]
            data = b'Content-Type: text/plain\r\n' + bad + b'\r\nLEAKB\n'
            self._finish(conn, req, stream_records(STDOUT, rid, data) + end_request(rid))
        elif m == 'stderr':
            t = o.get('tag', '-').encode('latin-1')
            self._finish(conn, req, b''.join([
                record(STDOUT, rid, b'Content-Type: text/plain\r\n\r\n'),
                record(STDERR, rid, b'stderr line one ' + t + b'\n'),
                record(STDOUT, rid, b'stderr mode '),
                record(STDERR, rid, b'stderr line two ' + t + b'\n'),
                record(STDOUT, rid, b'body\n'),
                record(STDERR, rid, b''), record(STDOUT, rid, b''), end_request(rid)]))
        elif m in ('overloaded', 'cant_mpx', 'unknown_role'):
            st = {'overloaded': OVERLOADED, 'cant_mpx': CANT_MPX_CONN,
                  'unknown_role': UNKNOWN_ROLE}[m]
            self._finish(conn, req, end_request(rid, st))
        elif m in ('big', 'slow_client_probe'):
            probe = m == 'slow_client_probe'
            mb = int(o.get('mb', 16 if probe else 8))
            if probe:
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            head = b'Content-Type: application/octet-stream\r\n'
            if o.get('cl') == '1':
                head += b'Content-Length: %d\r\n' % (mb * 1048576)
            if o.get('nobuf') == '1':
                head += b'X-Accel-Buffering: no\r\n'
            if 'xsend' in o:
                head += b'X-Sendfile: ' + o['xsend'].encode('latin-1') + b'\r\n'
            conn.send(record(STDOUT, rid, head + b'\r\n'))
            for _ in range(16 * mb):
                conn.send(stream_records(STDOUT, rid, _BLOCK, self.record_size, end=False))
            self._finish(conn, req, record(STDOUT, rid, b'') + end_request(rid))
            if probe:
                self.probe_done(o.get('tag', '-')).set()
        elif m == 'sse':
            head = b'Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n'
            if o.get('nobuf', '1') != '0':
                head += b'X-Accel-Buffering: no\r\n'
            conn.send(record(STDOUT, rid, head + b'\r\ndata: 1\n\n'))
            self._wait_event(o.get('tag', '-'))
            self._finish(conn, req, record(STDOUT, rid, b'data: 2\n\n') + record(STDOUT, rid) +
                         end_request(rid))
        elif m == 'recycle':
            k = int(o.get('k', self.recycle_after))
            if conn.served >= k:
                raise _Drop()
            self._finish(conn, req, self._ok_response(conn, req))
        elif m == 'sleep':
            if 'gate' in o:
                self._wait_event(o['gate'])
            if 's' in o or 'gate' not in o:
                self.stopping.wait(float(o.get('s', 1)))
            self._finish(conn, req, self._ok_response(conn, req))
        else:
            data = b'Status: 500 Unknown Fake Mode\r\nContent-Type: text/plain\r\n\r\n' \
                   b'fcgi_bad: unknown mode ' + m.encode('latin-1', 'replace') + b'\n'
            self._finish(conn, req, stream_records(STDOUT, rid, data) + end_request(rid))
        return True


# -- client -----------------------------------------------------------------

class FcgiResponse:
    """One request's outcome as a FastCGI client sees it."""

    def __init__(self):
        self.records = []        # (version, type, id, content, padding) in order
        self.stdout = b''
        self.stderr = b''
        self.app_status = None
        self.protocol_status = None  # None: no END_REQUEST (connection closed)
        self.closed = False          # EOF seen

    @property
    def ended(self):
        return self.protocol_status is not None

    def cgi(self):
        """(status, [(name, value)], body) of the CGI response in stdout."""
        head, sep, body = self.stdout.partition(b'\r\n\r\n')
        if not sep:
            head, sep, body = self.stdout.partition(b'\n\n')
        hdrs, status = [], 200
        for line in head.replace(b'\r\n', b'\n').split(b'\n'):
            if not line:
                continue
            k, _, v = line.partition(b':')
            k, v = k.decode('latin-1'), v.strip().decode('latin-1')
            if k.lower() == 'status':
                status = int(v[:3])
            hdrs.append((k, v))
        return status, hdrs, body


class FcgiClient:
    """A FastCGI web-server side for tests: connect, send requests (one at a
    time, optionally FCGI_KEEP_CONN), read the records back."""

    def __init__(self, address, timeout=20):
        self.address = address
        if address.startswith('unix:') or address.startswith('/'):
            path = address[5:] if address.startswith('unix:') else address
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = path
        else:
            host, _, port = address.rpartition(':')
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host.strip('[]'), int(port))
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(target)
        except BaseException:
            self.sock.close()
            raise
        self.reader = RecordReader(self.sock)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send_request(self, params, stdin=b'', keep_conn=False, req_id=1, role=RESPONDER):
        out = [record(BEGIN_REQUEST, req_id,
                      struct.pack('>HB5x', role, KEEP_CONN if keep_conn else 0))]
        out.append(stream_records(PARAMS, req_id, encode_params(params)))
        out.append(stream_records(STDIN, req_id, stdin))
        self.sock.sendall(b''.join(out))

    def read_response(self, req_id=1):
        r = FcgiResponse()
        while True:
            try:
                rec = self.reader.read()
            except ProtocolError:
                rec = None
            if rec is None:
                r.closed = True
                return r
            r.records.append(rec)
            version, rtype, rid, content, _ = rec
            if rid != req_id or version != VERSION_1:
                continue
            if rtype == STDOUT:
                r.stdout += content
            elif rtype == STDERR:
                r.stderr += content
            elif rtype == END_REQUEST:
                r.app_status, r.protocol_status = struct.unpack('>IB3x', content[:8])
                return r

    def read_records(self, timeout=2):
        """Every record until EOF or until nothing came for timeout seconds:
        (records, closed)."""
        out = []
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while True:
                rec = self.reader.read()
                if rec is None:
                    return out, True
                out.append(rec)
        except socket.timeout:
            return out, False
        except ProtocolError:
            return out, True
        finally:
            self.sock.settimeout(old)

    def request(self, params, stdin=b'', keep_conn=False, req_id=1, role=RESPONDER):
        self.send_request(params, stdin, keep_conn, req_id, role)
        return self.read_response(req_id)

    def get_values(self, names):
        self.sock.sendall(record(GET_VALUES, 0, encode_params([(n, '') for n in names])))
        while True:
            rec = self.reader.read()
            if rec is None:
                return None
            if rec[1] == GET_VALUES_RESULT:
                return {k.decode(): v.decode() for k, v in decode_params(rec[3])}


def cgi_params(uri='/', method='GET', body=b'', extra=None):
    """A minimal CGI param set for uri (path?query)."""
    path, _, qs = uri.partition('?')
    p = {'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_PROTOCOL': 'HTTP/1.1',
         'REQUEST_METHOD': method, 'REQUEST_URI': uri, 'QUERY_STRING': qs,
         'SCRIPT_NAME': '', 'PATH_INFO': path, 'SERVER_NAME': 'localhost',
         'SERVER_PORT': '80', 'REMOTE_ADDR': '127.0.0.1'}
    if body:
        p['CONTENT_LENGTH'] = str(len(body))
    if extra:
        p.update(extra)
    return p


def fcgi_request(address, uri='/', method='GET', body=b'', extra=None, timeout=20,
                 keep_conn=False):
    """One request on a fresh connection -> FcgiResponse."""
    with FcgiClient(address, timeout) as c:
        return c.request(cgi_params(uri, method, body, extra), body, keep_conn)


# -- by hand ----------------------------------------------------------------

def _main():
    ap = argparse.ArgumentParser(description='a misbehaving FastCGI server for tests')
    ap.add_argument('--listen', default='127.0.0.1:9000', help='HOST:PORT (default %(default)s)')
    ap.add_argument('--unix', help='listen on this Unix socket path instead')
    ap.add_argument('--mode', default='ok', choices=MODES, help='default mode')
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(':')
    srv = FakeFcgiServer(unix=a.unix, mode=a.mode, host=host or '127.0.0.1', port=int(port))
    srv.start()
    sys.stderr.write('fcgi_bad: listening on %s (default mode %s); Ctrl-C stops\n' %
                     (srv.address, a.mode))
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            with srv.lock:
                new = srv.reqs[seen:]
                seen = len(srv.reqs)
            for r in new:
                sys.stderr.write('fcgi_bad: #%d conn %d mode %s %s %s\n' % (
                    r.number, r.conn_id, r.mode, r.params.get('REQUEST_METHOD'),
                    r.params.get('REQUEST_URI', r.params.get('PATH_INFO'))))
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == '__main__':
    _main()
