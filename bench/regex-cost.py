#!/usr/bin/env python3
"""regex-cost.py: what regex locations cost per request, in instructions.

Runs portico (one worker) under valgrind's callgrind twice per
configuration, once with N1 and once with N2 keep-alive requests for a 1 KiB
static file, and takes (I(N2) - I(N1)) / (N2 - N1) as the instructions per
request, so start-up (compiling the expressions, forking) cancels out. The
configurations: "none" (only the "/" prefix) and "regex" (COUNT regex
locations before it, none of which matches the requested path, so every
request tries all of them: the worst case). Instruction counts are
repeatable on a noisy machine where timings are not.

From a build directory:
    ../bench/regex-cost.py --portico ./src/portico [--count 50] [--n1 500 --n2 2500]
Standard library only; needs valgrind."""

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def patterns(count):
    """COUNT expressions of the kinds people write, none matching /index.html."""
    kinds = [
        r'^/app%d/(.+)\\.php$',
        r'\\.(ext%d|bak|old)$',
        r'^/api/v%d/users/(?<id>\\d+)$',
        r'(?i)^/Images%d/.*\\.(png|jpe?g|gif)$',
        r'^/([a-z]+)/archive%d/(\\d{4})/(\\d{2})/?$',
    ]
    return [kinds[i % len(kinds)] % i for i in range(count)]


def write_conf(d, name, count, root, port):
    locs = ''.join('  { regex = "%s"; return = "200 r%d"; },\n' % (p, i)
                   for i, p in enumerate(patterns(count)))
    path = os.path.join(d, name + '.conf')
    user = 'user = "root";\n' if os.geteuid() == 0 else ''
    with open(path, 'w') as f:
        f.write('%sroot = "%s";\nerror_log = "%s/%s.err";\nlisten = [ "127.0.0.1:%d" ];\n'
                'limits = { keepalive_requests = 1000000; };\n'
                'locations = (\n%s  { prefix = "/"; }\n);\n' % (user, root, d, name, port, locs))
    return path


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def hammer(port, n):
    req = b'GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n'
    deadline = time.monotonic() + 120
    while True:
        try:
            s = socket.create_connection(('127.0.0.1', port), timeout=60)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    buf = b''
    for _ in range(n):
        s.sendall(req)
        while True:
            head_end = buf.find(b'\r\n\r\n')
            if head_end >= 0:
                m = re.search(rb'Content-Length: (\d+)', buf[:head_end])
                total = head_end + 4 + int(m.group(1))
                if len(buf) >= total:
                    assert buf.startswith(b'HTTP/1.1 200'), buf[:80]
                    buf = buf[total:]
                    break
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError('connection closed')
            buf += chunk
    s.close()


def instructions(portico, conf, port, n, outdir):
    for f in glob.glob(os.path.join(outdir, 'cg.*')):
        os.unlink(f)
    cmd = ['valgrind', '--tool=callgrind', '--trace-children=yes',
           '--callgrind-out-file=%s/cg.%%p' % outdir, portico, '-D', '-w', '1', '-c', conf]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        hammer(port, n)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(120)
    total = 0
    for f in glob.glob(os.path.join(outdir, 'cg.*')):
        with open(f) as fh:
            for line in fh:
                if line.startswith('summary:') or line.startswith('totals:'):
                    total += int(line.split()[1])
                    break
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--portico', default='./src/portico')
    ap.add_argument('--count', type=int, default=50)
    ap.add_argument('--n1', type=int, default=500)
    ap.add_argument('--n2', type=int, default=2500)
    a = ap.parse_args()
    if not shutil.which('valgrind'):
        sys.exit('valgrind is needed (apt-get install valgrind)')
    d = tempfile.mkdtemp(prefix='portico-regex-cost-')
    try:
        root = os.path.join(d, 'www')
        os.mkdir(root)
        os.chmod(d, 0o755)
        with open(os.path.join(root, 'index.html'), 'w') as f:
            f.write('x' * 1023 + '\n')
        per = {}
        for name, count in (('none', 0), ('regex', a.count)):
            port = free_port()
            conf = write_conf(d, name, count, root, port)
            i1 = instructions(a.portico, conf, port, a.n1, d)
            i2 = instructions(a.portico, conf, port, a.n2, d)
            per[name] = (i2 - i1) / (a.n2 - a.n1)
            print('%-5s %2d regex locations: %d / %d instructions for %d / %d requests: '
                  '%.0f per request' % (name, count, i1, i2, a.n1, a.n2, per[name]))
        diff = per['regex'] - per['none']
        print('%d regex locations add %.0f instructions per request (%.1f per location)' %
              (a.count, diff, diff / max(a.count, 1)))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
