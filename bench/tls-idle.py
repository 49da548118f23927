#!/usr/bin/env python3
"""tls-idle.py: memory per idle TLS keep-alive connection, portico beside
nginx and lighttpd (mod_openssl), same ECDSA P-256 certificate and the
system's OpenSSL for all (issue 16: "KiB per idle TLS keep-alive
connection", goal <= nginx's).

Each server runs with one worker on a TLS port. For each case (TLS 1.3 and
1.2, a full handshake or a resumed session by ticket) a fresh server gets
50 warm-up connections, then --conns more; every connection has had one
GET /1k.bin answered and then stays silent. The worker's private memory
(Private_Dirty + Swap of /proc/PID/smaps_rollup) before and after the
--conns gives KiB per idle connection. A fresh server per case, because a
heap that freed the previous case's connections would absorb the next
ones and show nothing.

The h2 case (issue 19, "KiB per idle h2 connection", goal <= nginx's):
TLS 1.3 with ALPN h2, SETTINGS exchanged and one stream answered, then
silence; portico gets http2 = true, nginx `listen ... ssl http2`, lighttpd
offers h2 by default. It needs python3-h2.

    bench/tls-idle.py [--portico ./src/portico] [--conns 2000]
                      [--servers portico,nginx,lighttpd] [--cases tls13,tls13-resumed,...]

nginx: ssl_session_tickets on, ssl_session_cache shared:SSL:10m (its usual
settings; the shared cache is not private memory). lighttpd needs the
lighttpd-mod-openssl package (else it is skipped). Everything stays on
127.0.0.1; needs root or a hard RLIMIT_NOFILE of 2 * conns + 500.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    sys.path.append('/usr/lib/python3/dist-packages')  # Debian's python3-h2
    try:
        import h2.config
        import h2.connection
        import h2.events
    except ImportError:
        h2 = None

CASES = {
    'tls13': (ssl.TLSVersion.TLSv1_3, False),
    # HTTP/2 by ALPN (issue 19, "KiB per idle h2 connection"): the
    # connection has exchanged SETTINGS and had one stream answered
    'h2': (ssl.TLSVersion.TLSv1_3, False),
    'tls13-resumed': (ssl.TLSVersion.TLSv1_3, True),
    'tls12': (ssl.TLSVersion.TLSv1_2, False),
    'tls12-resumed': (ssl.TLSVersion.TLSv1_2, True),
}
BODY = os.urandom(1024)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def private_kib(pid):
    """Private_Dirty + Swap: what this process alone holds (its heap)."""
    with open('/proc/%d/smaps_rollup' % pid) as f:
        t = f.read()
    return sum(int(m) for m in re.findall(r'^(?:Private_Dirty|Swap):\s+(\d+) kB', t, re.M))


def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def client_ctx(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    ctx.h2 = False
    return ctx


def get_h2(s, port):
    """SETTINGS both ways and one answered GET /1k.bin over HTTP/2."""
    if s.selected_alpn_protocol() != 'h2':
        sys.exit('tls-idle: no h2 by ALPN on port %d' % port)
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.send_headers(1, [(':method', 'GET'), (':scheme', 'https'), (':authority', 'localhost'),
                       (':path', '/1k.bin')], end_stream=True)
    s.sendall(c.data_to_send())
    body, ended, acked = b'', False, False
    while not (ended and acked):
        b = s.recv(65536)
        if not b:
            sys.exit('tls-idle: the server closed an h2 connection on port %d' % port)
        for ev in c.receive_data(b):
            if isinstance(ev, h2.events.DataReceived):
                body += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, h2.events.SettingsAcknowledged):
                acked = True
        out = c.data_to_send()
        if out:
            s.sendall(out)
    if body != BODY:
        sys.exit('tls-idle: wrong h2 body on port %d' % port)
    return s


def get(ctx, port, session=None):
    """A TLS connection with one answered GET /1k.bin, kept open."""
    raw = socket.create_connection(('127.0.0.1', port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname='localhost', session=session)
    if ctx.h2:
        return get_h2(s, port)
    s.sendall(b'GET /1k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n')
    buf = b''
    while True:
        head, sep, body = buf.partition(b'\r\n\r\n')
        m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
        if sep and m and len(body) >= int(m.group(1)):
            if body[:int(m.group(1))] != BODY:
                sys.exit('tls-idle: wrong body on port %d' % port)
            return s
        b = s.recv(65536)
        if not b:
            sys.exit('tls-idle: the server closed a connection on port %d' % port)
        buf += b


def hold(ctx, port, n, session):
    """n idle connections; how many resumed."""
    held, resumed = [], 0
    for _ in range(n):
        s = get(ctx, port, session)
        resumed += s.session_reused
        held.append(s)
    return held, resumed


class Server:
    def __init__(self, name, work, port, conns, a, http2=False):
        self.name, self.port = name, port
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        log = open(os.path.join(d, 'stderr.log'), 'w')
        crt, key, root = a.crt, a.key, a.root
        if name == 'portico':
            cmd = [a.portico, '-D', '-w', '1', '--tls', '127.0.0.1:%d' % port, '--cert', crt,
                   '--key', key, '-r', root, '-o', 'log_level=warn',
                   '-o', 'limits.keepalive_timeout=600s',
                   '-o', 'limits.max_connections=%d' % (conns + 500)]
            if http2:
                cmd += ['-o', 'http2=true']
        elif name == 'nginx':
            user = 'user root root;' if os.geteuid() == 0 else ''
            with open(os.path.join(d, 'nginx.conf'), 'w') as f:
                f.write('''worker_processes 1;
daemon off;
master_process on;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
worker_rlimit_nofile %(fds)d;
%(user)s
events { worker_connections %(fds)d; use epoll; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_timeout 600s;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    server {
        listen 127.0.0.1:%(port)d ssl%(http2)s;
        server_name localhost;
        root %(root)s;
        ssl_certificate %(crt)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        ssl_session_cache shared:SSL:10m;
    }
}
''' % dict(d=d, fds=conns + 500, user=user, port=port, root=root, crt=crt, key=key,
           http2=' http2' if http2 else ''))
            cmd = [a.nginx, '-c', os.path.join(d, 'nginx.conf'), '-p', d]
        else:
            with open(os.path.join(d, 'lighttpd.conf'), 'w') as f:
                f.write('''server.document-root = "%(root)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(d)s/error.log"
server.modules = ( "mod_openssl" )
server.max-fds = %(fds)d
server.max-connections = %(conns)d
server.max-keep-alive-idle = 600
server.max-keep-alive-requests = 1000
mimetype.assign = ( "" => "application/octet-stream" )
ssl.engine = "enable"
ssl.pemfile = "%(crt)s"
ssl.privkey = "%(key)s"
''' % dict(d=d, fds=2 * conns + 500, conns=conns + 200, port=port, root=root, crt=crt,
                key=key))
            cmd = [a.lighttpd, '-D', '-f', os.path.join(d, 'lighttpd.conf')]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), 1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    sys.exit('tls-idle: %s did not start (%s)' % (name, d))
                time.sleep(0.1)
        self.worker = self.proc.pid
        if name != 'lighttpd':
            while not children(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.worker = children(self.proc.pid)[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure(name, case, work, a):
    version, resume = CASES[case]
    ctx = client_ctx(version)
    if case == 'h2':
        ctx.set_alpn_protocols(['h2'])
        ctx.h2 = True
    srv = Server(name, work, free_port(), a.conns + 50, a, http2=case == 'h2')
    held = []
    try:
        first = get(ctx, srv.port)
        session = first.session if resume else None
        held.append(first)
        warm, _ = hold(ctx, srv.port, 49, session)
        held += warm
        time.sleep(0.2)
        m0 = private_kib(srv.worker)
        more, resumed = hold(ctx, srv.port, a.conns, session)
        held += more
        time.sleep(0.5)
        m1 = private_kib(srv.worker)
        # still there, all of them
        if srv.proc.poll() is not None:
            sys.exit('tls-idle: %s exited' % name)
        return (m1 - m0) / a.conns, resumed
    finally:
        for s in held:
            s.close()
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--portico', default='./src/portico')
    ap.add_argument('--nginx', default=shutil.which('nginx') or '/usr/sbin/nginx')
    ap.add_argument('--lighttpd', default=shutil.which('lighttpd') or '/usr/sbin/lighttpd')
    ap.add_argument('--conns', type=int, default=2000)
    ap.add_argument('--servers', default='portico,nginx,lighttpd')
    ap.add_argument('--cases', default=','.join(CASES))
    a = ap.parse_args()
    need = 2 * a.conns + 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))
    except (ValueError, OSError):
        sys.exit('tls-idle: RLIMIT_NOFILE hard limit %d < %d (run as root)' % (hard, need))
    servers = a.servers.split(',')
    if 'lighttpd' in servers and not os.path.exists('/usr/lib/lighttpd/mod_openssl.so'):
        print('# lighttpd skipped: no mod_openssl (apt-get install lighttpd-mod-openssl)')
        servers.remove('lighttpd')
    work = tempfile.mkdtemp(prefix='tls-idle.')
    try:
        a.root = os.path.join(work, 'root')
        os.mkdir(a.root)
        with open(os.path.join(a.root, '1k.bin'), 'wb') as f:
            f.write(BODY)
        a.crt, a.key = os.path.join(work, 'ec.crt'), os.path.join(work, 'ec.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', a.key, '-out', a.crt,
                        '-days', '30', '-subj', '/CN=localhost'], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(a.key, 0o644)
        cases = a.cases.split(',')
        if 'h2' in cases and h2 is None:
            print('# h2 skipped: no python3-h2 (apt-get install python3-h2)')
            cases.remove('h2')
        print('| KiB per idle TLS connection (%d, ECDSA P-256, %s) | %s |'
              % (a.conns, ssl.OPENSSL_VERSION, ' | '.join(cases)))
        print('|---|%s' % ('--:|' * len(cases)))
        for name in servers:
            cells = []
            for case in cases:
                per, resumed = measure(name, case, work, a)
                want = a.conns if CASES[case][1] else 0
                cells.append('%.2f%s' % (per, '' if resumed == want else
                                         ' (%d resumed)' % resumed))
            print('| %s | %s |' % (name, ' | '.join(cells)))
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
