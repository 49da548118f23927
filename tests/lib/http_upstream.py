"""http_upstream.py: a small HTTP/1.1 upstream for t_proxy.py that answers
in shapes a real application server never would. Standard library only.

    http_upstream.py PORTFILE

listens on a random 127.0.0.1 port (written to PORTFILE) and answers each
request by its path's last segment:
  conn        200 "conn N req M": which connection (counted from 1) and which
              request on it, keep-alive
  retry       like conn, but a second request on a connection is met with a
              close and no answer (a pooled connection the server dropped)
  bad-cl, cl-te, two-cl, te-gzip, big-header, bare-cr, obs-fold,
  trunc-chunked, bad-chunk, after-end, status-garbage, ws-colon, bad-name,
  no-colon, nul-value, del-hop, ctl-interim
              broken or smuggling-shaped responses
  hop         hop-by-hop fields in the answer (Connection: close, X-Hop;
              Keep-Alive) next to a kept one (X-Kept)
  interim     a 100 Continue, then the answer
  head        Content-Length: 10 and no body (asked with HEAD)
  redirect    302 to http://<its own address>/there
  close       a body ended by the close (no length)
  chunked     a chunked body in three chunks
"""

import socket
import sys
import threading

conn_count = 0
lock = threading.Lock()


def read_head(f):
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            return None
        if line in (b'\r\n', b'\n'):
            return lines
        lines.append(line.decode('latin-1').rstrip('\r\n'))


def answer(s, f, cid, nreq, port):
    lines = read_head(f)
    if lines is None:
        return False
    method, target, _ = lines[0].split(' ', 2)
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(':', 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get('content-length', '0'))
    if n:
        f.read(n)
    what = target.split('?')[0].rstrip('/').rsplit('/', 1)[-1]

    def ok(body, extra=b''):
        s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s' % (len(body), extra, body))

    if what == 'retry' and nreq > 1:
        return False
    if what in ('conn', 'retry'):
        ok(b'conn %d req %d' % (cid, nreq))
        return True
    raw = {
        'bad-cl': b'HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nhello world!',
        'cl-te': b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n'
                 b'5\r\nhello\r\n0\r\n\r\n',
        'two-cl': b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
        'te-gzip': b'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
        'big-header': b'HTTP/1.1 200 OK\r\nX-Big: ' + b'a' * 100000 + b'\r\n'
                      b'Content-Length: 2\r\n\r\nok',
        'bare-cr': b'HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 0\r\nContent-Length: 2\r\n\r\nok',
        'obs-fold': b'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\nok',
        'trunc-chunked': b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                         b'10\r\nonly part',
        'bad-chunk': b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                     b'5\r\nhelloXX0\r\n\r\n',
        'status-garbage': b'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok',
        # a field line's every way to be wrong, one per response (the
        # long value puts its NUL past the first eight bytes)
        'ws-colon': b'HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok',
        'bad-name': b'HTTP/1.1 200 OK\r\nX(A): 1\r\nContent-Length: 2\r\n\r\nok',
        'no-colon': b'HTTP/1.1 200 OK\r\nX-A 1\r\nContent-Length: 2\r\n\r\nok',
        'nul-value': b'HTTP/1.1 200 OK\r\nX-A: 0123456789\x00x\r\nContent-Length: 2\r\n\r\nok',
        'del-hop': b'HTTP/1.1 200 OK\r\nKeep-Alive: a\x7f\r\nContent-Length: 2\r\n\r\nok',
        'ctl-interim': b'HTTP/1.1 103 Early Hints\r\nLink: \x01\r\n\r\n'
                       b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
        'after-end': b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'
                     b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled',
        'hop': b'HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n'
               b'Keep-Alive: timeout=5\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok',
        'interim': b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n'
                   b'after 1',
        'head': b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Head: 1\r\n\r\n',
        'redirect': b'HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/there?x=1\r\n'
                    b'Content-Length: 0\r\n\r\n' % port,
        'close': b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close',
        'chunked': b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                   b'4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\nX-Trailer: t\r\n\r\n',
    }.get(what)
    if raw is None:
        s.sendall(b'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')
        return True
    s.sendall(raw)
    # the broken shapes end the exchange with the close
    return what in ('interim', 'head', 'redirect', 'chunked')


def serve(s, port):
    global conn_count
    with lock:
        conn_count += 1
        cid = conn_count
    f = s.makefile('rb')
    nreq = 0
    try:
        while True:
            nreq += 1
            if not answer(s, f, cid, nreq, port):
                break
    except (OSError, ValueError):
        pass
    finally:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', 0))
    ls.listen(64)
    port = ls.getsockname()[1]
    with open(sys.argv[1] + '.tmp', 'w') as pf:
        pf.write(str(port))
    import os
    os.rename(sys.argv[1] + '.tmp', sys.argv[1])
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, port), daemon=True).start()


if __name__ == '__main__':
    main()
