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
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import cgcount  # noqa: E402


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


def hammer(port, n):
    cgcount.hammer(port, '/index.html', n)


def instructions(portico, conf, port, n, outdir, drive=hammer):
    """Instructions of portico (one worker) while drive(port, n) runs."""
    cmd = [portico, '-D', '-w', '1', '-c', conf]
    return cgcount.instructions(cmd, lambda: drive(port, n), outdir)


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
            port = cgcount.free_port()
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
