#!/usr/bin/env python3
"""status-cost.py: what the status page and its metrics cost per request, in instructions.

Issue 18's performance line: "the status page and metrics cost nothing
measurable on static-1k (<= 2% with them on)". The method is regex-cost.py's
(same helpers): portico with one worker under valgrind's callgrind, N1 and
then N2 keep-alive requests for a 1 KiB static file, (I(N2) - I(N1)) /
(N2 - N1) instructions per request, so start-up cancels out; instruction
counts repeat on a noisy machine where timings do not.

Three runs:
  base    the --baseline build (configured with CPPFLAGS=-DPT_NO_STATS: no
          counting at all) without a status location;
  counted the normal build (the counters are always kept) without one;
  status  the normal build with an "exact /status" location (handler
          "status") before "/" and the page scraped once in Prometheus
          format before the requests (its cost is not per request).
The result: status against base, in instructions and percent.

From a build directory:
    mkdir ../build-nostats && cd ../build-nostats &&
        ../configure -q CPPFLAGS=-DPT_NO_STATS && make -j2 src/portico && cd -
    ../bench/status-cost.py --portico ./src/portico \\
        --baseline ../build-nostats/src/portico [--n1 500 --n2 2500]
Standard library only; needs valgrind."""

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location('regex_cost', os.path.join(HERE, 'regex-cost.py'))
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)


def write_conf(d, name, status, root, port):
    loc = '  { exact = "/status"; handler = "status"; },\n' if status else ''
    path = os.path.join(d, name + '.conf')
    user = 'user = "root";\n' if os.geteuid() == 0 else ''
    with open(path, 'w') as f:
        f.write('%sroot = "%s";\nerror_log = "%s/%s.err";\nlisten = [ "127.0.0.1:%d" ];\n'
                'limits = { keepalive_requests = 1000000; };\n'
                'locations = (\n%s  { prefix = "/"; }\n);\n' % (user, root, d, name, port, loc))
    return path


def scrape_then_hammer(port, n):
    """One Prometheus scrape of the page, then the static requests."""
    s = rc.cgcount.connect(port)
    s.sendall(b'GET /status?format=prometheus HTTP/1.1\r\nHost: bench\r\n'
              b'Connection: close\r\n\r\n')
    out = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    assert out.startswith(b'HTTP/1.1 200') and b'portico_requests_total' in out, out[:200]
    rc.hammer(port, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--portico', default='./src/portico')
    ap.add_argument('--baseline', required=True,
                    help='a portico built with CPPFLAGS=-DPT_NO_STATS')
    ap.add_argument('--n1', type=int, default=500)
    ap.add_argument('--n2', type=int, default=2500)
    a = ap.parse_args()
    if not shutil.which('valgrind'):
        sys.exit('valgrind is needed (apt-get install valgrind)')
    d = tempfile.mkdtemp(prefix='portico-status-cost-')
    try:
        root = os.path.join(d, 'www')
        os.mkdir(root)
        os.chmod(d, 0o755)
        with open(os.path.join(root, 'index.html'), 'w') as f:
            f.write('x' * 1023 + '\n')
        per = {}
        for name, binary, status in (('base', a.baseline, False), ('counted', a.portico, False),
                                     ('status', a.portico, True)):
            port = rc.cgcount.free_port()
            conf = write_conf(d, name, status, root, port)
            drive = scrape_then_hammer if status else rc.hammer
            i1 = rc.instructions(binary, conf, port, a.n1, d, drive)
            i2 = rc.instructions(binary, conf, port, a.n2, d, drive)
            per[name] = (i2 - i1) / (a.n2 - a.n1)
            print('%-7s %d / %d instructions for %d / %d requests: %.0f per request' %
                  (name, i1, i2, a.n1, a.n2, per[name]))
        for name in ('counted', 'status'):
            diff = per[name] - per['base']
            print('%-7s vs base: %+.0f instructions per request (%+.2f%%)' %
                  (name, diff, 100.0 * diff / per['base']))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
