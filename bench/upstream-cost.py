#!/usr/bin/env python3
"""upstream-cost.py: what a gateway request costs the upstream, by front.

In proxy.sh and uwsgi.sh the upstream (nginx serving a file, or uWSGI) and
wrk share CPU 1 while the front server has CPU 0 to itself; when CPU 1 is
the limit, requests/s follow the upstream's cost per request, and that
depends on what the front sends it (variables, header fields). This is
gw-cost.py turned around: the front (portico or nginx) runs natively, the
upstream under callgrind (one process), N1 then N2 keep-alive requests on
one client connection, the upstream restarted for each count, and
(I(N2) - I(N1)) / (N2 - N1) is its instructions per request.

From a build directory:
    ../bench/upstream-cost.py [--kinds proxy,uwsgi] [--servers portico,nginx]
        [--n1 100 --n2 600]
(FORWARDED=true: portico's proxy sends its default forwarding fields;
MINIMAL=false: its uwsgi gateway the full CGI set of variables.)
Standard library only; needs valgrind, nginx, uwsgi + uwsgi-plugin-python3."""

import importlib.util
import os
import shutil
import signal
import sys
import tempfile

_spec = importlib.util.spec_from_file_location(
    'gwcost', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gw-cost.py'))
gwcost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gwcost)

class Kind:
    """An upstream that can be started under callgrind and again."""

    def __init__(self, kind, d):
        self.kind, self.d = kind, d
        self.out = os.path.join(d, 'cg')
        os.makedirs(self.out, exist_ok=True)
        os.chmod(self.out, 0o777)  # nginx's worker runs as nobody
        if kind == 'proxy':
            self.cmd, self.uport = gwcost.proxy_upstream(d)
            self.path = '/1k'
            # FORWARDED=true: portico's default fields (X-Forwarded-Proto,
            # X-Forwarded-Host, Forwarded); else X-Forwarded-For alone, as
            # the nginx below sends (proxy.sh)
            self.pconf, self.nbody = gwcost.proxy_fronts(self.uport,
                                                         os.environ.get('FORWARDED', 'false'))
        elif kind == 'uwsgi':
            self.cmd, self.sock = gwcost.uwsgi_upstream(d, '--processes', '1')
            self.path = '/'
            # MINIMAL=false: portico's full CGI set of variables
            self.pconf, self.nbody = gwcost.uwsgi_fronts(self.sock,
                                                         os.environ.get('MINIMAL', 'true'))
        else:
            raise SystemExit('unknown kind ' + kind)

    def instructions(self, front_port, n):
        if self.kind == 'uwsgi' and os.path.exists(self.sock):
            os.unlink(self.sock)

        def drive():
            if self.kind == 'proxy':
                gwcost.connect(self.uport).close()
            else:
                gwcost.wait_socket(self.sock, 120)
            gwcost.hammer(front_port, self.path, n)
        stop = signal.SIGQUIT if self.kind == 'proxy' else signal.SIGINT
        return gwcost.cgcount.instructions(self.cmd, drive, self.out, stop)


def main():
    ap = gwcost.parser('proxy,uwsgi')
    ap.add_argument('--n1', type=int, default=100)
    ap.add_argument('--n2', type=int, default=600)
    a = ap.parse_args()
    if not shutil.which('valgrind'):
        sys.exit('valgrind is needed (apt-get install valgrind)')
    for kind in a.kinds.split(','):
        d = tempfile.mkdtemp(prefix='portico-upcost-')
        os.chmod(d, 0o755)
        try:
            k = Kind(kind, d)
            for server in a.servers.split(','):
                port = gwcost.free_port()
                with gwcost.running(gwcost.front_cmd(server, a.portico, d, port, k.pconf,
                                                     k.nbody)):
                    gwcost.connect(port).close()
                    i1 = k.instructions(port, a.n1)
                    i2 = k.instructions(port, a.n2)
                print('%-6s upstream behind %-8s %8.0f instructions/request' %
                      (kind, server, (i2 - i1) / (a.n2 - a.n1)), flush=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
