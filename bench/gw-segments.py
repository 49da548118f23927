#!/usr/bin/env python3
"""gw-segments.py: the TCP segments a gateway request costs, beside nginx.

Issue 17: behind portico the upstream and the client (on the other CPU)
did more work per request than behind nginx; a segment more per request
(a response written in two sends, an ACK on its own) is work for all
three. Loopback's counters are global, so the script re-runs itself in a
network namespace of its own (unshare -rn), where /proc/net/snmp counts
only its own traffic: the same upstreams and client as gw-cost.py, the
front server warmed up, then the Tcp OutSegs and the TcpExt counters'
growth over N keep-alive requests on one connection, divided by N.
Every segment on loopback is sent once: OutSegs counts client, front and
upstream together.

From a build directory:
    ../bench/gw-segments.py [--kinds proxy,uwsgi] [--servers portico,nginx]
        [--n 2000]
Standard library only; needs unshare (util-linux), ip (iproute2) and the
upstreams gw-cost.py needs."""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time

_spec = importlib.util.spec_from_file_location(
    'gwcost', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gw-cost.py'))
gwcost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gwcost)

# the TcpExt counters worth a look per request (the rest stay near zero)
EXT = ('DelayedACKs', 'TCPPureAcks', 'TCPHPAcks', 'TCPAutoCorking', 'TCPOrigDataSent')


def snmp():
    """{'Tcp.OutSegs': n, 'TcpExt.DelayedACKs': n, ...} of this namespace."""
    out = {}
    for path in ('/proc/net/snmp', '/proc/net/netstat'):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            pre = names.split(':')[0]
            for k, v in zip(names.split()[1:], values.split()[1:]):
                out[pre + '.' + k] = int(v)
    return out


def measure(cmd, port, path, n):
    with gwcost.running(cmd):
        gwcost.hammer(port, path, 50)  # the pools are warm: steady state only
        time.sleep(0.5)
        before = snmp()
        gwcost.hammer(port, path, n)
        time.sleep(0.5)  # delayed ACKs have gone out
        after = snmp()
    return {k: (after[k] - before.get(k, 0)) / n for k in after}


def main():
    ap = gwcost.parser('proxy,uwsgi')
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--in-netns', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not a.in_netns:
        if not shutil.which('unshare'):
            sys.exit('unshare (util-linux) is needed')
        # root needs no user namespace (and nginx's worker wants its nobody)
        flags = '-n' if os.geteuid() == 0 else '-rn'
        os.execvp('unshare', ['unshare', flags, sys.executable, os.path.abspath(__file__),
                              '--in-netns'] + sys.argv[1:])
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    for kind, server, d, port, path, cmd in gwcost.fronts(a, 'portico-gwseg-'):
        c = measure(cmd, port, path, a.n)
        print('%-6s %-8s %5.2f segments/request  ' % (kind, server, c['Tcp.OutSegs']) +
              ' '.join('%s %.2f' % (k, c['TcpExt.' + k]) for k in EXT
                       if 'TcpExt.' + k in c), flush=True)


if __name__ == '__main__':
    main()
