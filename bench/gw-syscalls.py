#!/usr/bin/env python3
"""gw-syscalls.py: the system calls a gateway request costs the front server.

Issue 17's proxy and uwsgi rows: the instructions per request are at or
below nginx's (gw-cost.py), so what is left of the server's CPU is mostly
the kernel, and a system call is a fixed cost (on a VM, often a trip to the
hypervisor). This counts them, per kind, beside nginx, with the same
upstreams and the same client as gw-cost.py (whose setup it reuses): the
front server (one worker) is warmed up, strace attaches to its worker
(strace -c -f -p), N keep-alive requests go over CONNS connections (one
request in flight on each), strace detaches. Counts are divided by N.
Counts, unlike timings, repeat on a loaded machine (epoll_wait less so with
CONNS > 1: how many events one wake-up finds depends on timing).

From a build directory:
    ../bench/gw-syscalls.py [--kinds proxy,uwsgi] [--servers portico,nginx]
        [--n 2000] [--conns 1]
Standard library only; needs strace, nginx, uwsgi + uwsgi-plugin-python3
(and php-fpm8.2 for the php kind)."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

_spec = importlib.util.spec_from_file_location(
    'gwcost', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gw-cost.py'))
gwcost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gwcost)


def children(pid):
    """The worker processes: the front server's children (recursively)."""
    out = []
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(children(k))
    return out


def parse_summary(path):
    """strace -c's table: {syscall: calls}."""
    calls = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[0][0].isdigit():
                continue
            name = parts[-1]
            if name == 'total':
                continue
            # % time, seconds, usecs/call, calls, [errors], syscall
            calls[name] = calls.get(name, 0) + int(parts[3])
    return calls


def count(cmd, port, path, n, conns, outdir, trace=False):
    with gwcost.running(cmd) as p:
        gwcost.hammer(port, path, 50)  # the pools are warm: steady state only
        workers = []
        for _ in range(100):
            workers = children(p.pid)
            if workers:
                break
            time.sleep(0.1)
        if not workers:
            raise RuntimeError('no worker process under %d' % p.pid)
        out = os.path.join(outdir, 'strace.out')
        st = subprocess.Popen(['strace', '-tt' if trace else '-c', '-f', '-o', out] +
                              [a for w in workers for a in ('-p', str(w))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached
        per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
        errs = []

        def one(k):
            try:
                gwcost.hammer(port, path, k)
            except Exception as e:  # reported below
                errs.append(e)
        ts = [threading.Thread(target=one, args=(k,)) for k in per]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        time.sleep(0.5)  # the connections' closes are not counted
        st.send_signal(signal.SIGINT)
        st.wait(60)
        if errs:
            raise errs[0]
        if trace:
            with open(out) as f:
                return f.read()
        return parse_summary(out)


def main():
    ap = gwcost.parser('proxy,uwsgi')
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--conns', type=int, default=1)
    ap.add_argument('--trace', action='store_true',
                    help='print what strace -tt sees of the N requests instead of counts')
    a = ap.parse_args()
    if not shutil.which('strace'):
        sys.exit('strace is needed (apt-get install strace)')
    for kind, server, d, port, path, cmd in gwcost.fronts(a, 'portico-gwsys-'):
        calls = count(cmd, port, path, a.n, a.conns, d, a.trace)
        if a.trace:
            print('# %s %s\n%s' % (kind, server, calls), flush=True)
            continue
        total = sum(calls.values())
        row = ' '.join('%s %.2f' % (k, v / a.n)
                       for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
                       if v / a.n >= 0.005)
        print('%-6s %-8s %6.2f syscalls/request: %s' % (kind, server, total / a.n, row),
              flush=True)


if __name__ == '__main__':
    main()
