#!/usr/bin/env python3
"""gw-cost.py: what a gateway request costs the front server, in instructions.

Issue 17's "Performance" part compares portico and nginx proxying 1 KiB
answers (HTTP to an nginx upstream, uwsgi to uWSGI, FastCGI to php-fpm).
Wall-clock numbers mean little on a loaded machine; instruction counts
repeat. The method is regex-cost.py's: the front server (one worker) under
valgrind's callgrind, N1 and then N2 keep-alive requests on one connection,
(I(N2) - I(N1)) / (N2 - N1) instructions per request, so start-up cancels
out. The upstream (nginx, uWSGI, php-fpm) runs outside valgrind.

From a build directory:
    ../bench/gw-cost.py [--kinds proxy,uwsgi,php] [--servers portico,nginx]
        [--n1 300 --n2 1300]
Standard library only; needs valgrind, nginx, uwsgi + uwsgi-plugin-python3
and php-fpm8.2 for the kinds that use them."""

import argparse
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'lib'))
import cgcount  # noqa: E402
from cgcount import connect, free_port  # noqa: E402


def hammer(port, path, n):
    """n keep-alive GETs on one connection, each answered 200 with 1 KiB."""
    cgcount.hammer(port, path, n, host='127.0.0.1:%d' % port,
                   extra=b'User-Agent: gw-cost\r\nAccept: */*\r\n')


def wait_socket(path, deadline=20):
    end = time.monotonic() + deadline
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise RuntimeError('no socket ' + path)
        time.sleep(0.1)


def nginx_conf(d, name, port, body):
    os.makedirs(os.path.join(d, name), exist_ok=True)
    t = os.path.join(d, name)
    path = os.path.join(t, 'nginx.conf')
    with open(path, 'w') as f:
        f.write('worker_processes 1;\ndaemon off;\nerror_log stderr warn;\npid %s/nginx.pid;\n'
                'events { worker_connections 1024; }\nhttp {\n access_log off;\n'
                ' keepalive_requests 10000000;\n default_type application/octet-stream;\n'
                ' client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n'
                ' uwsgi_temp_path %s; scgi_temp_path %s;\n%s\n}\n'
                % (t, t, t, t, t, t, body))
    return path


class Upstreams:
    def __init__(self, d):
        self.d = d
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def nginx_cmd(conf):
    return ['nginx', '-c', conf, '-p', os.path.dirname(conf)]


def stop_signal(cmd):
    """nginx stops gracefully on SIGQUIT, portico on SIGTERM."""
    return signal.SIGQUIT if 'nginx' in cmd[0] else signal.SIGTERM


@contextlib.contextmanager
def running(cmd):
    """A server (its own process group) while the with block runs."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        yield p
    finally:
        os.killpg(p.pid, stop_signal(cmd))
        p.wait(60)


# The upstreams and the front configurations every gateway bench uses
# (gw-cost, gw-syscalls, gw-segments, upstream-cost), so that their rows
# measure the same setup.

def proxy_upstream(d):
    """An nginx serving d/www/1k: returns (its command, its port)."""
    www = os.path.join(d, 'www')
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, '1k'), 'wb') as f:
        f.write(os.urandom(1024))
    uport = free_port()
    conf = nginx_conf(d, 'up', uport, ' sendfile on;\n keepalive_timeout 300s;\n'
                      ' server { listen 127.0.0.1:%d; root %s; }' % (uport, www))
    return nginx_cmd(conf), uport


def proxy_fronts(uport, forwarded='false'):
    """(portico backend+location text, nginx server body) in front of the
    upstream on uport; forwarded = false: X-Forwarded-For alone, as the
    nginx below is told (proxy.sh)."""
    pconf = ('backends = ( { name = "up"; servers = ( "127.0.0.1:%d" ); keepalive_max = 64;'
             ' forwarded = %s; } );\n'
             'locations = ( { prefix = "/"; handler = "proxy"; backend = "up"; } );\n'
             % (uport, forwarded))
    nbody = (' upstream up { server 127.0.0.1:%d; keepalive 64; }\n'
             ' server { listen 127.0.0.1:%%d; location / { proxy_pass http://up;'
             ' proxy_http_version 1.1; proxy_set_header Connection "";'
             ' proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }' % uport)
    return pconf, nbody


def uwsgi_upstream(d, *opts):
    """A WSGI app answering 1 KiB, under uWSGI (opts: process options) on
    d/app.sock: returns (its command, the socket's path)."""
    app = os.path.join(d, 'app.py')
    with open(app, 'w') as f:
        f.write("BODY = b'x' * 1023 + b'\\n'\n\n\ndef application(environ, start_response):\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain'),"
                " ('Content-Length', '1024')])\n    return [BODY]\n")
    sock = os.path.join(d, 'app.sock')
    return (['uwsgi', '--plugin', 'python3'] + list(opts) +
            ['--die-on-term', '--disable-logging', '--wsgi-file', app, '--uwsgi-socket', sock,
             '--chmod-socket=666'], sock)


def uwsgi_fronts(sock, minimal='true'):
    """(portico backend+location text, nginx server body) in front of
    uWSGI on sock; minimal_variables: the variables nginx's uwsgi_params
    sends (uwsgi.sh)."""
    pconf = ('backends = ( { name = "app"; servers = ( "unix:%s" );'
             ' minimal_variables = %s; } );\n'
             'locations = ( { prefix = "/"; handler = "uwsgi"; backend = "app"; } );\n'
             % (sock, minimal))
    nbody = (' server { listen 127.0.0.1:%%d; location / { include /etc/nginx/uwsgi_params;'
             ' uwsgi_pass unix:%s; } }' % sock)
    return pconf, nbody


def setup(kind, d, up):
    """Starts the upstream; returns (request path, portico backend+location
    text, nginx server body)."""
    if kind == 'proxy':
        cmd, uport = proxy_upstream(d)
        up.start(cmd)
        connect(uport).close()
        return ('/1k',) + proxy_fronts(uport)
    if kind == 'uwsgi':
        cmd, sock = uwsgi_upstream(d, '--master', '--processes', '2')
        up.start(cmd)
        wait_socket(sock)
        return ('/',) + uwsgi_fronts(sock)
    if kind == 'php':
        www = os.path.join(d, 'php')
        os.makedirs(www, exist_ok=True)
        os.chmod(d, 0o755)
        os.chmod(www, 0o755)
        with open(os.path.join(www, 'k.php'), 'w') as f:
            f.write("<?php header('Content-Type: text/plain'); echo str_repeat('x', 1023), \"\\n\";\n")
        os.chmod(os.path.join(www, 'k.php'), 0o644)
        sock = os.path.join(d, 'fpm.sock')
        fconf = os.path.join(d, 'fpm.conf')
        user = '' if os.geteuid() else 'user = nobody\ngroup = nogroup\n'
        with open(fconf, 'w') as f:
            f.write('[global]\nerror_log = %s/fpm.log\ndaemonize = no\n[www]\n%slisten = %s\n'
                    'listen.mode = 0666\npm = static\npm.max_children = 2\n'
                    % (d, user, sock))
        up.start(['php-fpm8.2', '-n', '-y', fconf, '-F'] + (['-R'] if os.geteuid() == 0 else []))
        wait_socket(sock)
        pconf = ('root = "%s";\nbackends = ( { name = "php"; servers = ( "unix:%s" ); } );\n'
                 'locations = ( { extension = ".php"; handler = "fastcgi"; backend = "php"; },'
                 ' { prefix = "/"; } );\n' % (www, sock))
        nbody = (' server { listen 127.0.0.1:%%d; root %s; location ~ \\.php$ {'
                 ' include /etc/nginx/fastcgi_params;'
                 ' fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;'
                 ' fastcgi_pass unix:%s; fastcgi_keep_conn on; } }' % (www, sock))
        return '/k.php', pconf, nbody
    raise SystemExit('unknown kind ' + kind)


def front_cmd(server, portico, d, port, pconf, nbody):
    """The command of a front server, 'portico' (the binary portico) or
    'nginx', one worker on 127.0.0.1:port, its configuration written in d:
    pconf is portico's backends and locations, nbody nginx's server body
    with %d for the port."""
    if server == 'portico':
        conf = os.path.join(d, 'portico.conf')
        user = 'user = "root";\n' if os.geteuid() == 0 else ''
        with open(conf, 'w') as f:
            f.write('%sworkers = 1;\naccess_log = "off";\nerror_log = "%s/p.err";\n'
                    'listen = [ "127.0.0.1:%d" ];\n'
                    'limits = { keepalive_requests = 1000000; };\n%s'
                    % (user, d, port, pconf))
        return [portico, '-D', '-c', conf]
    return nginx_cmd(nginx_conf(d, 'front', port, nbody % port))


def fronts(a, prefix):
    """For each kind of a.kinds (its upstream started in a new directory)
    and each server of a.servers: (kind, server, the directory, port, the
    request path, the front's command). The upstream stops and the
    directory goes when the kind is done or the caller leaves the loop."""
    for kind in a.kinds.split(','):
        d = tempfile.mkdtemp(prefix=prefix)
        os.chmod(d, 0o755)
        up = Upstreams(d)
        try:
            path, pconf, nbody = setup(kind, d, up)
            for server in a.servers.split(','):
                port = free_port()
                yield (kind, server, d, port, path,
                       front_cmd(server, a.portico, d, port, pconf, nbody))
        finally:
            up.stop()
            shutil.rmtree(d, ignore_errors=True)


def parser(kinds):
    """The options every gateway bench takes; a script adds its own."""
    ap = argparse.ArgumentParser()
    ap.add_argument('--portico', default='./src/portico')
    ap.add_argument('--kinds', default=kinds)
    ap.add_argument('--servers', default='portico,nginx')
    return ap


def instructions(cmd, port, path, n, outdir):
    return cgcount.instructions(cmd, lambda: hammer(port, path, n), outdir, stop_signal(cmd))


def main():
    ap = parser('proxy,uwsgi,php')
    ap.add_argument('--n1', type=int, default=300)
    ap.add_argument('--n2', type=int, default=1300)
    ap.add_argument('--keep', help='keep the callgrind files of the N2 run here')
    a = ap.parse_args()
    if not shutil.which('valgrind'):
        sys.exit('valgrind is needed (apt-get install valgrind)')
    for kind, server, d, port, path, cmd in fronts(a, 'portico-gwcost-'):
        out = os.path.join(d, 'cg')
        os.makedirs(out, exist_ok=True)
        os.chmod(out, 0o777)  # nginx's worker runs as nobody
        i1 = instructions(cmd, port, path, a.n1, out)
        i2 = instructions(cmd, port, path, a.n2, out)
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            for f in glob.glob(os.path.join(out, 'cg.*')):
                shutil.copy(f, os.path.join(a.keep, '%s-%s-%s' % (kind, server,
                                                                  os.path.basename(f))))
        print('%-6s %-8s %8.0f instructions/request' %
              (kind, server, (i2 - i1) / (a.n2 - a.n1)), flush=True)


if __name__ == '__main__':
    main()
