"""phpfpm.py: a private PHP-FPM for the integration tests. Starts Debian's
php-fpm in the foreground with its own generated configuration (no php.ini:
every setting the tests rely on is a php_admin_value of the pool), waits
until every pool's socket accepts, and stops it so that no php-fpm process is
left behind. Works as root (CI: -R, pools run as root) and as a normal user.

Standard library only.

    fpm = PhpFpm([Pool('unix'), Pool('tcp', listen='tcp', max_requests=5)])
    fpm.start()
    fpm.pool('unix').address      # 'unix:/tmp/ptfpm-xxx/unix.sock'
    fpm.pool('tcp').address       # '127.0.0.1:41234'
    fpm.stop()                    # raises AssertionError if something was left
"""

import glob
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

__all__ = ['find_php_fpm', 'skip_unless_php_fpm', 'Pool', 'PhpFpm', 'fcgi_probe']

# Settings every pool gets; the tests upload and stream several megabytes and
# need a fatal error to turn into a 500 (display_errors off, PHP main.c sets
# 500 only then) and PHP's own messages on FCGI_STDERR (no error_log file).
DEFAULT_INI = {
    'upload_max_filesize': '64M',
    'post_max_size': '80M',
    'max_file_uploads': '20',
    'memory_limit': '256M',
    'output_buffering': '0',
    'zlib.output_compression': '0',
    'display_errors': '0',
    'display_startup_errors': '0',
    'log_errors': '1',
    'html_errors': '0',
    'error_reporting': str(32767),
    'max_execution_time': '120',
    'max_input_time': '120',
    'expose_php': '0',
    'default_charset': 'UTF-8',
    'fastcgi.logging': '1',
    'variables_order': 'EGPCS',
    'request_order': 'GP',
    'date.timezone': 'UTC',
}


def find_php_fpm():
    """Path of a php-fpm binary, or None. $PHP_FPM wins, then Debian's
    /usr/sbin/php-fpm8.2, then any php-fpm* on /usr/sbin or $PATH."""
    env = os.environ.get('PHP_FPM')
    if env:
        return env if os.access(env, os.X_OK) else None
    cands = ['/usr/sbin/php-fpm8.2'] + sorted(glob.glob('/usr/sbin/php-fpm*'), reverse=True)
    w = shutil.which('php-fpm')
    if w:
        cands.append(w)
    for c in cands:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def skip_unless_php_fpm(obj):
    """Decorator for a TestCase class or method: skipped without php-fpm."""
    return unittest.skipUnless(find_php_fpm(),
                               'php-fpm not installed (apt-get install php-fpm)')(obj)


def _free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Pool:
    """One FPM pool.

    listen: 'unix' (a socket in the FPM's temp directory) or 'tcp'
            (127.0.0.1 and a free port).
    pm, max_children, max_requests, start_servers...: the pm.* settings;
            pm='static' by default (the number of children is then fixed).
    ini:    extra php_admin_value settings (override DEFAULT_INI).
    access_log: True writes FPM's per-request access log (see
            PhpFpm.access_log_lines()).
    extra:  raw "key = value" pool directives.
    """

    def __init__(self, name, listen='unix', pm='static', max_children=2, max_requests=0,
                 ini=None, access_log=True, extra=None, backlog=None):
        if listen not in ('unix', 'tcp'):
            raise ValueError('listen must be "unix" or "tcp"')
        if not name.replace('_', '').replace('-', '').isalnum():
            raise ValueError('pool name %r: letters, digits, - and _ only' % name)
        self.name = name
        self.listen = listen
        self.pm = pm
        self.max_children = max_children
        self.max_requests = max_requests
        self.ini = dict(DEFAULT_INI)
        self.ini.update(ini or {})
        self.access_log = access_log
        self.extra = dict(extra or {})
        self.backlog = backlog
        self.socket_path = None
        self.port = None
        self.access_log_path = None

    @property
    def address(self):
        """The address in portico's syntax: 'unix:/abs/path' or '127.0.0.1:PORT'."""
        if self.listen == 'unix':
            return 'unix:' + self.socket_path
        return '127.0.0.1:%d' % self.port

    def connect(self, timeout=5):
        if self.listen == 'unix':
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = self.socket_path
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = ('127.0.0.1', self.port)
        s.settimeout(timeout)
        try:
            s.connect(target)
        except BaseException:
            s.close()
            raise
        return s

    def _conf(self, tmpdir, as_root):
        if self.listen == 'unix':
            self.socket_path = os.path.join(tmpdir, self.name + '.sock')
            listen = self.socket_path
        else:
            listen = '127.0.0.1:%d' % self.port
        lines = ['[%s]' % self.name, 'listen = ' + listen]
        if self.backlog is not None:
            lines.append('listen.backlog = %d' % self.backlog)
        if as_root:
            # FPM refuses root children unless -R; run them as the caller (root)
            # so they can read the test's private (0700) temp directories.
            user = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            lines += ['user = ' + user, 'group = ' + group]
        if self.listen == 'unix':
            lines.append('listen.mode = 0666')
        lines += ['pm = ' + self.pm, 'pm.max_children = %d' % self.max_children,
                  'pm.max_requests = %d' % self.max_requests]
        if self.pm == 'dynamic':
            lines += ['pm.start_servers = 1', 'pm.min_spare_servers = 1',
                      'pm.max_spare_servers = %d' % self.max_children]
        elif self.pm == 'ondemand':
            lines.append('pm.process_idle_timeout = 10s')
        lines += ['catch_workers_output = yes', 'decorate_workers_output = no',
                  'clear_env = yes', 'security.limit_extensions = .php',
                  'request_terminate_timeout = 300s']
        if self.access_log:
            self.access_log_path = os.path.join(tmpdir, self.name + '-access.log')
            # one line per request the pool answered: method, status, script, raw URI
            lines += ['access.log = ' + self.access_log_path,
                      'access.format = "%m %s %{SCRIPT_FILENAME}e %{REQUEST_URI}e"']
        for k, v in self.extra.items():
            lines.append('%s = %s' % (k, v))
        for k, v in self.ini.items():
            lines.append('php_admin_value[%s] = %s' % (k, v))
        return '\n'.join(lines) + '\n'


class PhpFpm:
    """A php-fpm master (-F, -n) with the given pools in its own session.

    tmpdir: where config, sockets and logs go (default: a fresh one, removed by
    stop()). The master's error log (with the workers' captured output) is
    .error_log; see error_log_text()."""

    def __init__(self, pools, binary=None, tmpdir=None, log_level='notice'):
        if not pools:
            raise ValueError('at least one pool')
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise ValueError('pool names must be unique')
        self.pools = list(pools)
        self.binary = binary or find_php_fpm()
        self.log_level = log_level
        self._own_tmpdir = tmpdir is None
        # short prefix: Unix socket paths must fit sun_path (108 bytes)
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix='ptfpm-', dir='/tmp')
        self.conf_path = os.path.join(self.tmpdir, 'php-fpm.conf')
        self.error_log = os.path.join(self.tmpdir, 'fpm-error.log')
        self.pid_path = os.path.join(self.tmpdir, 'fpm.pid')
        self.stderr_path = os.path.join(self.tmpdir, 'fpm-stderr.log')
        self.proc = None
        self.pid = None
        self.final_log = ''

    def pool(self, name):
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    # -- configuration -----------------------------------------------------
    def _write_conf(self):
        as_root = os.geteuid() == 0
        text = ['[global]', 'pid = ' + self.pid_path, 'error_log = ' + self.error_log,
                'log_level = ' + self.log_level, 'daemonize = no',
                # children that die are logged and replaced, never restart the master
                'emergency_restart_threshold = 0', 'process_control_timeout = 10s', '']
        for p in self.pools:
            if p.listen == 'tcp':
                p.port = _free_tcp_port()
            text.append(p._conf(self.tmpdir, as_root))
        with open(self.conf_path, 'w') as f:
            f.write('\n'.join(text))

    def command(self):
        cmd = [self.binary, '-n', '-F', '-y', self.conf_path, '-p', self.tmpdir]
        if os.geteuid() == 0:
            cmd.append('-R')
        return cmd

    # -- lifecycle ---------------------------------------------------------
    def start(self, timeout=30):
        if self.binary is None:
            raise unittest.SkipTest('php-fpm not installed')
        last = ''
        for _attempt in range(5):
            # fresh logs per attempt: a retry must not see the last one's errors
            for path in (self.stderr_path, self.error_log):
                if os.path.exists(path):
                    os.unlink(path)
            self._write_conf()
            for p in self.pools:
                if p.socket_path and os.path.exists(p.socket_path):
                    os.unlink(p.socket_path)
            errf = open(self.stderr_path, 'ab')
            try:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=errf, stderr=errf, cwd=self.tmpdir,
                                             start_new_session=True,
                                             env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                                                  'LC_ALL': 'C'})
            finally:
                errf.close()
            self.pid = self.proc.pid
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if all(self._accepts(p) for p in self.pools):
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self._kill_session()
                raise RuntimeError('php-fpm did not accept within %ss\ncmd: %s\nlog:\n%s' %
                                   (timeout, ' '.join(self.command()), self.log_text()))
            last = self.log_text()
            self._kill_session()
            # a TCP port taken between choosing and binding: try another
            if 'Address already in use' in last:
                continue
            break
        raise RuntimeError('php-fpm exited with %s\ncmd: %s\nconfig:\n%s\nlog:\n%s' %
                           (self.proc.returncode, ' '.join(self.command()),
                            open(self.conf_path).read(), last))

    @staticmethod
    def _accepts(pool):
        if pool.listen == 'unix' and not os.path.exists(pool.socket_path):
            return False
        try:
            pool.connect(timeout=1).close()
            return True
        except OSError:
            return False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def session_pids(self):
        """Live processes of the FPM's session (master and children)."""
        if self.pid is None:
            return []
        out = []
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % name, 'rb') as f:
                    data = f.read().decode('ascii', 'replace')
            except OSError:
                continue
            rest = data[data.rfind(')') + 2:].split()
            if int(rest[3]) == self.pid and rest[0] != 'Z':
                out.append(int(name))
        return out

    def child_pids(self):
        """The pool children now alive (parent = the master)."""
        return [p for p in self.session_pids() if p != self.pid]

    def _kill_session(self):
        for p in self.session_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, timeout=20):
        """Graceful stop (QUIT, then TERM, then KILL); raises AssertionError
        when FPM needed more than QUIT or left a process behind."""
        problems = self.stop_quietly(timeout)
        if problems:
            raise AssertionError('; '.join(problems) + '\nphp-fpm log:\n' +
                                 self.log_text()[-4000:])

    def stop_quietly(self, timeout=20):
        """Like stop(), but returns the problems as a list of strings. Removes
        the temp directory it created (logs stay readable in .final_log)."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGTERM, 10)):
                try:
                    os.kill(self.pid, sig)
                except OSError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    problems.append('php-fpm ignored %s for %ss' % (sig.name, wait))
            if self.proc.poll() is None:
                self._kill_session()
        # the children leave with the master; wait a moment, then kill leftovers
        deadline = time.monotonic() + 10
        while self.session_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.session_pids()
        if left:
            problems.append('php-fpm processes left behind: %s' % left)
            self._kill_session()
        if self._own_tmpdir and os.path.isdir(self.tmpdir):
            self.final_log = self.log_text()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return problems

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        problems = self.stop_quietly()
        if problems and exc_type is None:
            raise AssertionError('; '.join(problems))
        return False

    # -- logs --------------------------------------------------------------
    def log_text(self):
        """The master's error log plus anything it printed before opening it."""
        out = []
        for path in (self.stderr_path, self.error_log):
            try:
                with open(path, 'rb') as f:
                    out.append(f.read().decode('utf-8', 'replace'))
            except OSError:
                pass
        return ''.join(out) or self.final_log

    def access_log_lines(self, pool_name):
        """[(method, status, script_filename, request_uri)] of the requests the
        pool answered (FPM writes the line when the request ends)."""
        p = self.pool(pool_name)
        if not p.access_log_path:
            return []
        try:
            with open(p.access_log_path, 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split(' ', 3)
            if len(parts) == 4:
                out.append(tuple(parts))
        return out


def fcgi_probe(pool, script, query='', method='GET', body=b'', extra_env=None, timeout=30):
    """Run one request straight against the pool with libfcgi's cgi-fcgi
    (a check of the FPM side that does not involve portico). Returns the raw
    CGI response (header block + body), or None when cgi-fcgi is missing."""
    exe = shutil.which('cgi-fcgi')
    if not exe:
        return None
    addr = pool.socket_path if pool.listen == 'unix' else '127.0.0.1:%d' % pool.port
    env = {'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_PROTOCOL': 'HTTP/1.1',
           'REQUEST_METHOD': method, 'SCRIPT_FILENAME': script,
           'SCRIPT_NAME': '/' + os.path.basename(script), 'REQUEST_URI':
           '/' + os.path.basename(script) + ('?' + query if query else ''),
           'QUERY_STRING': query, 'REDIRECT_STATUS': '200', 'SERVER_NAME': 'localhost',
           'SERVER_PORT': '80', 'REMOTE_ADDR': '127.0.0.1', 'DOCUMENT_ROOT':
           os.path.dirname(script)}
    if body:
        env['CONTENT_LENGTH'] = str(len(body))
        env['CONTENT_TYPE'] = 'application/octet-stream'
    env.update(extra_env or {})
    r = subprocess.run([exe, '-bind', '-connect', addr], input=body, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.stdout
