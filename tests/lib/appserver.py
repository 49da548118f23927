"""appserver.py: the Debian application servers the gateway tests run
tests/lib/wsgi_app.py under, started and stopped the same way: gunicorn
(HTTP, t_proxy*.py) and uWSGI (uwsgi, SCGI and HTTP, t_scgi_uwsgi.py,
t_gw_*.py). Each runs in a session of its own with WSGI_TEST_DIR set to
its directory (the application's counters, gates and progress files),
logging to a file under the base directory. Standard library only."""

import json
import os
import shutil
import signal
import socket
import subprocess

import harness

LIB = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(LIB, 'wsgi_app.py')
PY = '/usr/bin/python3'
UWSGI = shutil.which('uwsgi') or '/usr/bin/uwsgi'
UWSGI_PLUGIN = '/usr/lib/uwsgi/plugins/python3_plugin.so'

HAVE_GUNICORN = subprocess.run([PY, '-c', 'import gunicorn'], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode == 0
HAVE_UWSGI = os.path.exists(UWSGI) and os.path.exists(UWSGI_PLUGIN)
HAVE_V6 = harness.ipv6_loopback_ok()


def tcp_up(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


class AppServer:
    """What every server here shares: its directory (WSGI_TEST_DIR), log,
    start (cmd, then wait until ready()), stop (SIGTERM to its session,
    SIGKILL if it lingers), the application's counters and gates."""
    NAME = 'server'

    def __init__(self, base, dirname):
        self.base = base
        self.dir = os.path.join(base, dirname)
        os.mkdir(self.dir)
        self.log = os.path.join(base, dirname + '.log')
        self.proc = None

    def command(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def start(self):
        env = dict(os.environ, WSGI_TEST_DIR=self.dir)
        with open(self.log, 'ab') as lf:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=lf, env=env, start_new_session=True,
                                         cwd=self.base)
        if not harness.Server.wait_for(self.ready, 30):
            self.stop()
            raise RuntimeError('%s did not start:\n%s' % (self.NAME,
                                                           open(self.log).read()[-3000:]))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(20)

    def counters(self):
        try:
            with open(os.path.join(self.dir, 'counters.json')) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {'active': 0, 'max_active': 0, 'started': 0}

    def open_gate(self, name):
        open(os.path.join(self.dir, name), 'w').close()

    def progress(self, name):
        """Bytes of a body the application's progress mode has read."""
        try:
            with open(os.path.join(self.dir, 'progress-' + name)) as f:
                return int(f.read() or 0)
        except (OSError, ValueError):
            return 0


class Gunicorn(AppServer):
    """gunicorn with one worker process: kind "gthread" (keep-alive, 4
    threads) on a port and a Unix socket, and on [::1] when the host has
    IPv6 loopback (port6, else 0); or "sync" (one request at a time, on a
    port)."""
    NAME = 'gunicorn'

    def __init__(self, base, kind):
        super().__init__(base, 'app-' + kind)
        self.kind = kind
        self.port = harness.free_port()
        self.port6 = harness.free_port('::1') if HAVE_V6 and kind == 'gthread' else 0
        self.sock = os.path.join(base, kind + '.sock')
        self.log = os.path.join(base, kind + '.log')

    def command(self):
        cmd = [PY, '-m', 'gunicorn', '--chdir', LIB, '-w', '1', '-k', self.kind,
               '-b', '127.0.0.1:%d' % self.port, '--keep-alive', '60', '--timeout', '120']
        if self.kind == 'gthread':
            cmd += ['--threads', '4', '-b', 'unix:' + self.sock]
            if self.port6:
                cmd += ['-b', '[::1]:%d' % self.port6]
        return cmd + ['wsgi_app:application']

    def ready(self):
        return tcp_up(self.port) and (self.kind != 'gthread' or os.path.exists(self.sock))


class Uwsgi(AppServer):
    """uWSGI (master + 2 processes) on five sockets: uwsgi and SCGI, each
    on a TCP port and a Unix socket under base, and HTTP on a port."""
    NAME = 'uWSGI'

    def __init__(self, base):
        super().__init__(base, 'app')
        self.uw_port = harness.free_port()
        self.sc_port = harness.free_port()
        self.ht_port = harness.free_port()
        self.uw_sock = os.path.join(base, 'uw.sock')
        self.sc_sock = os.path.join(base, 'sc.sock')
        self.log = os.path.join(base, 'uwsgi.log')

    def command(self):
        return [UWSGI, '--plugin', 'python3', '--master', '--processes', '2', '--die-on-term',
                '--buffer-size', '65535', '--wsgi-file', APP,
                '--uwsgi-socket', '127.0.0.1:%d' % self.uw_port, '--uwsgi-socket', self.uw_sock,
                '--scgi-socket', '127.0.0.1:%d' % self.sc_port, '--scgi-socket', self.sc_sock,
                '--http-socket', '127.0.0.1:%d' % self.ht_port]

    def ready(self):
        return (all(tcp_up(p) for p in (self.uw_port, self.sc_port, self.ht_port)) and
                os.path.exists(self.uw_sock) and os.path.exists(self.sc_sock))
