"""cgcount.py - counting what a server does per request, in instructions
(valgrind's callgrind), for the bench/*-cost.py scripts.

The method: the server under callgrind (children traced), a driver makes N1
and then N2 keep-alive requests, and (I(N2) - I(N1)) / (N2 - N1) is the
instructions per request, so start-up and shutdown cancel out. Instruction
counts repeat on a noisy machine where timings do not. Standard library
only."""

import glob
import os
import re
import signal
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def connect(port, deadline=120):
    """A connection to the server on 127.0.0.1:port, waiting while it starts."""
    end = time.monotonic() + deadline
    while True:
        try:
            return socket.create_connection(('127.0.0.1', port), timeout=60)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def hammer(port, path, n, host='bench', extra=b''):
    """n keep-alive GETs of path on one connection, each a 200 with a
    Content-Length or chunked."""
    req = ('GET %s HTTP/1.1\r\nHost: %s\r\n' % (path, host)).encode() + extra + b'\r\n'
    s = connect(port)
    buf = b''
    for _ in range(n):
        s.sendall(req)
        while True:
            head_end = buf.find(b'\r\n\r\n')
            if head_end >= 0:
                head = buf[:head_end]
                m = re.search(rb'(?i)\r\ncontent-length: *(\d+)', head)
                if m:
                    total = head_end + 4 + int(m.group(1))
                elif b'chunked' in head.lower():
                    e = buf.find(b'\r\n0\r\n\r\n', head_end)
                    total = e + 7 if e >= 0 else len(buf) + 1
                else:
                    raise RuntimeError('no framing: %r' % head[:200])
                if len(buf) >= total:
                    if not buf.startswith(b'HTTP/1.1 200'):
                        raise RuntimeError('not a 200: %r' % buf[:200])
                    buf = buf[total:]
                    break
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError('connection closed')
            buf += chunk
    s.close()


def instructions(cmd, drive, outdir, stop=signal.SIGTERM):
    """Total instructions of cmd and its children while drive() runs
    against it; stop is the signal that ends the server."""
    for f in glob.glob(os.path.join(outdir, 'cg.*')):
        os.unlink(f)
    vg = ['valgrind', '--tool=callgrind', '--trace-children=yes',
          '--callgrind-out-file=%s/cg.%%p' % outdir]
    p = subprocess.Popen(vg + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        drive()
    finally:
        os.killpg(p.pid, stop)
        p.wait(120)
        time.sleep(1)  # a traced child writes its file after the parent is gone
    total = 0
    for f in glob.glob(os.path.join(outdir, 'cg.*')):
        with open(f) as fh:
            for line in fh:
                if line.startswith('summary:') or line.startswith('totals:'):
                    total += int(line.split()[1])
                    break
    return total


def per_request(cmd, drive_n, n1, n2, outdir, stop=signal.SIGTERM):
    """(I(N1), I(N2), instructions per request); drive_n(n) makes n requests."""
    i1 = instructions(cmd, lambda: drive_n(n1), outdir, stop)
    i2 = instructions(cmd, lambda: drive_n(n2), outdir, stop)
    return i1, i2, (i2 - i1) / (n2 - n1)
