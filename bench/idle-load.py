#!/usr/bin/env python3
"""idle-load.py: does holding many idle keep-alive connections cost the
busy ones anything?

One portico worker pinned to CPU 0 serves a 1 KiB file to wrk (pinned to
CPU 1, 50 keep-alive connections) twice per round: alone, and while this
script holds --conns idle keep-alive connections (each has had one
request answered, then stays silent). Rounds alternate the order so that
drift on a shared machine falls on both sides. Prints req/s and server CPU
time per request for both, their ratios, and the worker's memory per idle
connection; it fails when the server closed an idle connection before its
keep-alive timeout.

    bench/idle-load.py [--portico ./src/portico] [--conns 10000]
                       [--duration 10] [--rounds 3]

Needs a hard RLIMIT_NOFILE of at least conns + 1024 (portico and this script each).
Needs wrk and taskset. Everything stays on 127.0.0.1.
"""
import argparse
import errno
import os
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    with open('/proc/%d/stat' % pid) as f:
        rest = f.read().rsplit(')', 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        m = re.search(r'^VmRSS:\s+(\d+) kB', f.read(), re.M)
    return int(m.group(1))


def worker_of(master, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/task/%d/children' % (master, master)) as f:
                kids = f.read().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.1)
    sys.exit('idle-load: no worker process under %d' % master)


def open_idle(port, n, path):
    """n connections, each with one answered request, left idle."""
    req = ('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % path).encode()
    sel = selectors.DefaultSelector()
    pending, held, started = 0, [], 0
    deadline = time.monotonic() + 120
    while (started < n or pending) and time.monotonic() < deadline:
        while started < n and pending < 500:
            s = socket.socket()
            s.setblocking(False)
            started += 1
            if s.connect_ex(('127.0.0.1', port)) not in (0, errno.EINPROGRESS):
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE, [b''])
            pending += 1
        for key, _ in sel.select(timeout=1):
            s, st = key.fileobj, key.data
            try:
                if key.events == selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    s.send(req)
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                b = s.recv(65536)
                if not b:
                    raise OSError('closed')
                st[0] += b
                head, sep, body = st[0].partition(b'\r\n\r\n')
                m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
                if sep and m and len(body) >= int(m.group(1)):
                    sel.unregister(s)
                    pending -= 1
                    held.append(s)
            except OSError:
                sel.unregister(s)
                pending -= 1
                s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return held


def still_open(conns):
    alive = 0
    for s in conns:
        try:
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b'':
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def run_wrk(port, path, duration, worker):
    c0 = cpu_ticks(worker)
    out = subprocess.run(['taskset', '-c', '1', 'wrk', '-t1', '-c50', '-d%ds' % duration,
                          'http://127.0.0.1:%d%s' % (port, path)],
                         capture_output=True, text=True, check=True).stdout
    c1 = cpu_ticks(worker)
    n = int(re.search(r'(\d+) requests in', out).group(1))
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if bad:
        sys.exit('idle-load: %s error responses under load' % bad.group(1))
    us = (c1 - c0) / os.sysconf('SC_CLK_TCK') * 1e6 / max(n, 1)
    return rps, us


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--portico', default='./src/portico')
    ap.add_argument('--conns', type=int, default=10000)
    ap.add_argument('--duration', type=int, default=10)
    ap.add_argument('--rounds', type=int, default=3)
    a = ap.parse_args()
    for tool in ('wrk', 'taskset'):
        if not shutil.which(tool):
            sys.exit('idle-load: needs %s' % tool)
    need = a.conns + 1024  # each side, the server and this holder, in its own process
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
        except (ValueError, OSError):
            sys.exit('idle-load: RLIMIT_NOFILE hard limit %d < %d (run as root)' % (hard, need))
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    root = tempfile.mkdtemp(prefix='idle-load.')
    try:
        with open(os.path.join(root, '1k.bin'), 'wb') as f:
            f.write(os.urandom(1024))
        port = free_port()
        cmd = ['taskset', '-c', '0', a.portico, '-D', '-w', '1', '-l', '127.0.0.1:%d' % port,
               '-r', root, '-o', 'log_level=warn', '-o', 'limits.keepalive_timeout=600s',
               '-o', 'limits.keepalive_requests=1000000',
               '-o', 'limits.max_connections=%d' % (a.conns + 1024)]
        srv = subprocess.Popen(cmd, stderr=open(os.path.join(root, 'error.log'), 'w'))
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(('127.0.0.1', port), 1).close()
                    break
                except OSError:
                    if srv.poll() is not None or time.monotonic() > deadline:
                        sys.exit('idle-load: portico did not start: %s' %
                                 open(os.path.join(root, 'error.log')).read())
                    time.sleep(0.1)
            worker = worker_of(srv.pid)
            run_wrk(port, '/1k.bin', 2, worker)  # warm-up
            alone, loaded, per_conn, kept = [], [], [], []
            for r in range(a.rounds):
                for what in (('held', 'alone') if r % 2 else ('alone', 'held')):
                    if what == 'alone':
                        alone.append(run_wrk(port, '/1k.bin', a.duration, worker))
                        continue
                    rss0 = rss_kib(worker)
                    conns = open_idle(port, a.conns, '/1k.bin')
                    if len(conns) < a.conns:
                        sys.exit('idle-load: could open only %d of %d idle connections'
                                 % (len(conns), a.conns))
                    per_conn.append((rss_kib(worker) - rss0) / len(conns))
                    loaded.append(run_wrk(port, '/1k.bin', a.duration, worker))
                    kept.append(still_open(conns))
                    for s in conns:
                        s.close()
                    time.sleep(1)
        finally:
            srv.terminate()
            srv.wait(30)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    rps0, rps1 = med(x[0] for x in alone), med(x[0] for x in loaded)
    us0, us1 = med(x[1] for x in alone), med(x[1] for x in loaded)
    print('| static-1k, 1 worker, medians of %d | alone | with %d idle | ratio |'
          % (a.rounds, a.conns))
    print('|---|--:|--:|--:|')
    print('| req/s | %.0f | %.0f | %.2f |' % (rps0, rps1, rps1 / rps0))
    print('| server µs/req | %.2f | %.2f | %.2f |' % (us0, us1, us1 / us0))
    print('worker RSS per idle connection: %.2f KiB (median); idle connections still open '
          'after each loaded run: %s of %d' % (med(per_conn), kept, a.conns))
    if min(kept) < a.conns:
        sys.exit('idle-load: the server closed idle connections before their timeout')


if __name__ == '__main__':
    main()
