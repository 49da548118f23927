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

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile

_spec = importlib.util.spec_from_file_location(
    'gwcost', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gw-cost.py'))
gwcost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gwcost)

APP = ("BODY = b'x' * 1023 + b'\\n'\n\n\ndef application(environ, start_response):\n"
       "    start_response('200 OK', [('Content-Type', 'text/plain'),"
       " ('Content-Length', '1024')])\n    return [BODY]\n")


class Kind:
    """An upstream that can be started under callgrind and again."""

    def __init__(self, kind, d):
        self.kind, self.d = kind, d
        self.out = os.path.join(d, 'cg')
        os.makedirs(self.out, exist_ok=True)
        os.chmod(self.out, 0o777)  # nginx's worker runs as nobody
        if kind == 'proxy':
            www = os.path.join(d, 'www')
            os.makedirs(www, exist_ok=True)
            with open(os.path.join(www, '1k'), 'wb') as f:
                f.write(os.urandom(1024))
            self.uport = gwcost.free_port()
            self.conf = gwcost.nginx_conf(d, 'up', self.uport,
                                          ' sendfile on;\n keepalive_timeout 300s;\n'
                                          ' server { listen 127.0.0.1:%d; root %s; }'
                                          % (self.uport, www))
            self.path = '/1k'
            # FORWARDED=true: portico's default fields (X-Forwarded-Proto,
            # X-Forwarded-Host, Forwarded); else X-Forwarded-For alone, as
            # the nginx below sends (proxy.sh)
            self.pconf = ('backends = ( { name = "up"; servers = ( "127.0.0.1:%d" );'
                          ' keepalive_max = 64; forwarded = %s; } );\nlocations = ( {'
                          ' prefix = "/"; handler = "proxy"; backend = "up"; } );\n'
                          % (self.uport, os.environ.get('FORWARDED', 'false')))
            self.nbody = (' upstream up { server 127.0.0.1:%d; keepalive 64; }\n'
                          ' server { listen 127.0.0.1:%%d; location / { proxy_pass http://up;'
                          ' proxy_http_version 1.1; proxy_set_header Connection "";'
                          ' proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }'
                          % self.uport)
        elif kind == 'uwsgi':
            self.app = os.path.join(d, 'app.py')
            with open(self.app, 'w') as f:
                f.write(APP)
            self.sock = os.path.join(d, 'app.sock')
            self.path = '/'
            # MINIMAL=false: portico's full CGI set of variables
            self.pconf = ('backends = ( { name = "app"; servers = ( "unix:%s" );'
                          ' minimal_variables = %s; } );\nlocations = ( { prefix = "/";'
                          ' handler = "uwsgi"; backend = "app"; } );\n'
                          % (self.sock, os.environ.get('MINIMAL', 'true')))
            self.nbody = (' server { listen 127.0.0.1:%%d; location / {'
                          ' include /etc/nginx/uwsgi_params; uwsgi_pass unix:%s; } }' % self.sock)
        else:
            raise SystemExit('unknown kind ' + kind)

    def instructions(self, front_port, n):
        if self.kind == 'proxy':
            cmd = ['nginx', '-c', self.conf, '-p', os.path.dirname(self.conf)]
        else:
            if os.path.exists(self.sock):
                os.unlink(self.sock)
            cmd = ['uwsgi', '--plugin', 'python3', '--processes', '1', '--die-on-term',
                   '--disable-logging', '--wsgi-file', self.app, '--uwsgi-socket', self.sock,
                   '--chmod-socket=666']

        def drive():
            if self.kind == 'proxy':
                gwcost.connect(self.uport).close()
            else:
                gwcost.wait_socket(self.sock, 120)
            gwcost.hammer(front_port, self.path, n)
        stop = signal.SIGQUIT if self.kind == 'proxy' else signal.SIGINT
        return gwcost.cgcount.instructions(cmd, drive, self.out, stop)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--portico', default='./src/portico')
    ap.add_argument('--kinds', default='proxy,uwsgi')
    ap.add_argument('--servers', default='portico,nginx')
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
                if server == 'portico':
                    conf = os.path.join(d, 'portico.conf')
                    user = 'user = "root";\n' if os.geteuid() == 0 else ''
                    with open(conf, 'w') as f:
                        f.write('%sworkers = 1;\naccess_log = "off";\nerror_log = "%s/p.err";\n'
                                'listen = [ "127.0.0.1:%d" ];\n'
                                'limits = { keepalive_requests = 1000000; };\n%s'
                                % (user, d, port, k.pconf))
                    cmd = [a.portico, '-D', '-c', conf]
                else:
                    conf = gwcost.nginx_conf(d, 'front', port, k.nbody % port)
                    cmd = ['nginx', '-c', conf, '-p', os.path.dirname(conf)]
                front = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
                try:
                    gwcost.connect(port).close()
                    i1 = k.instructions(port, a.n1)
                    i2 = k.instructions(port, a.n2)
                finally:
                    os.killpg(front.pid, signal.SIGQUIT if server == 'nginx' else signal.SIGTERM)
                    front.wait(60)
                print('%-6s upstream behind %-8s %8.0f instructions/request' %
                      (kind, server, (i2 - i1) / (a.n2 - a.n1)), flush=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == '__main__':
    main()
