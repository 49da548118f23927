#!/usr/bin/env python3
"""h2load-run.py: runs h2load (nghttp2-client) for peers.sh's HTTP/2
scenarios and prints wrk-report.lua's WRKRESULT line, so the harness
measures, records and reports them as it does wrk's.

  h2load-run.py rate -d SECONDS [--latency] -- H2LOAD-ARGS... URL
      one timed h2load run (-D): requests done, bytes, errors; latency from
      h2load's per-request log with --latency (p50/p99/p99.9), else its
      mean (as p50) and max (as p99 and p99.9): the log costs client CPU.
  h2load-run.py page -d SECONDS -- H2LOAD-ARGS... (with -i URI-FILE)
      a page load repeated for SECONDS: each run is a new connection that
      fetches every URI of the file at once (-c1 -m N -n N); p50/p99/p99.9
      are the time from the connection's start to the last byte of the
      last asset ("finished in"), over the runs.
"""
import os
import re
import subprocess
import sys
import tempfile
import time


def num(pattern, text, default=0.0):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else default


def dur_us(text):
    """h2load's durations: 177us, 1.67ms, 2.00s."""
    m = re.match(r'([\d.]+)(us|ms|s)$', text)
    if not m:
        return 0.0
    return float(m.group(1)) * {'us': 1, 'ms': 1e3, 's': 1e6}[m.group(2)]


def parse(out):
    """The numbers of one h2load run's summary."""
    r = {
        'secs': num(r'^finished in ([\d.]+)s', out),
        'ms': num(r'^finished in ([\d.]+)ms', out, -1.0),
        'done': int(num(r'^requests: .* (\d+) done', out)),
        'ok': int(num(r'^requests: .* (\d+) succeeded', out)),
        'failed': int(num(r'(\d+) failed', out)),
        'errored': int(num(r'(\d+) errored', out)),
        'timeout': int(num(r'(\d+) timeout', out)),
        'bytes': int(num(r'^traffic: .*?\((\d+)\) total', out)),
        'non2xx': sum(int(num(r'(\d+) %s' % k, out)) for k in ('3xx', '4xx', '5xx')),
    }
    if r['ms'] >= 0:  # short runs print milliseconds
        r['secs'] = r['ms'] / 1e3
    m = re.search(r'^time for request:\s+(\S+)\s+(\S+)\s+(\S+)', out, re.M)
    r['mean_us'] = dur_us(m.group(3)) if m else 0.0
    r['max_us'] = dur_us(m.group(2)) if m else 0.0
    return r


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p))]


def result(requests, duration_us, nbytes, p50, p99, p999, status, read_err, timeout):
    print('WRKRESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d p999_us=%d '
          'status=%d connect=0 read=%d write=0 timeout=%d'
          % (requests, duration_us, nbytes, p50, p99, p999, status, read_err, timeout))


def run(args):
    p = subprocess.run(['h2load'] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode(errors='replace')
    sys.stdout.write(out)
    return out


def rate(secs, latency, args):
    log = None
    if latency:
        fd, log = tempfile.mkstemp(prefix='h2load-log.')
        os.close(fd)
        args = ['--log-file=' + log] + args
    try:
        r = parse(run(['-D', str(secs)] + args))
        p50, p99, p999 = r['mean_us'], r['max_us'], r['max_us']
        if log:
            with open(log) as f:
                lat = sorted(int(line.split('\t')[2]) for line in f if line.count('\t') == 2)
            p50, p99, p999 = pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999)
    finally:
        if log:
            os.unlink(log)
    if r['secs'] <= 0 or r['done'] == 0:
        sys.exit('h2load-run: no result from h2load')
    result(r['done'], r['secs'] * 1e6, r['bytes'], p50, p99, p999, r['non2xx'],
           r['failed'] + r['errored'] - r['timeout'], r['timeout'])


def page(secs, args):
    times, requests, nbytes, non2xx, errors = [], 0, 0, 0, 0
    t_end = time.monotonic() + secs
    while time.monotonic() < t_end or not times:
        r = parse(run(args))
        if r['done'] == 0:
            sys.exit('h2load-run: a page load did nothing')
        times.append(r['secs'] * 1e6)
        requests += r['done']
        nbytes += r['bytes']
        non2xx += r['non2xx']
        errors += r['failed'] + r['errored']
    t = sorted(times)
    print('h2load-run: %d page loads, ms: median %.2f, min %.2f, max %.2f'
          % (len(t), pct(t, 0.5) / 1e3, t[0] / 1e3, t[-1] / 1e3))
    result(requests, sum(times), nbytes, pct(t, 0.5), pct(t, 0.99), pct(t, 0.999), non2xx,
           errors, 0)


def main():
    argv = sys.argv[1:]
    if len(argv) < 4 or argv[0] not in ('rate', 'page') or argv[1] != '-d' or '--' not in argv:
        sys.exit(__doc__)
    mode, secs = argv[0], int(argv[2])
    opts, args = argv[3:argv.index('--')], argv[argv.index('--') + 1:]
    if mode == 'rate':
        rate(secs, '--latency' in opts, args)
    else:
        page(secs, args)


if __name__ == '__main__':
    main()
