"""t_service.py: running under systemd: sd_notify readiness (READY=1 with
MAINPID and STATUS, STOPPING=1 on QUIT and TERM) to a path or an abstract
NOTIFY_SOCKET, socket activation (LISTEN_PID/LISTEN_FDS matched to the
listen addresses), none of it leaking into workers, and the shipped units
(systemd-analyze verify, make install)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

SRCDIR = os.environ.get('PT_SRCDIR') or os.path.join(os.path.dirname(__file__), '..')
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(os.path.dirname(__file__), '..')


class NotifyListener:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, abstract=False):
        self.dir = tempfile.mkdtemp(prefix='portico-notify-')
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = 'portico-test-%d-%s' % (os.getpid(), os.path.basename(self.dir))
            self.sock.bind('\0' + name)
            self.env_value = '@' + name
        else:
            path = os.path.join(self.dir, 'notify')
            self.sock.bind(path)
            self.env_value = path
        self.messages = []

    def wait(self, key, timeout=20):
        """The first message (as a dict) that has key, reading as needed."""
        for m in self.messages:
            if key in m:
                return m
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                raise AssertionError('no %s message within %ss; got %r' %
                                     (key, timeout, self.messages))
            m = dict(l.split('=', 1) for l in data.decode().split('\n') if '=' in l)
            self.messages.append(m)
            if key in m:
                return m

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def environ_of(pid):
    with open('/proc/%d/environ' % pid, 'rb') as f:
        return [e.decode('utf-8', 'replace') for e in f.read().split(b'\0') if e]


def names(env):
    return {e.split('=', 1)[0] for e in env}


class Notify(unittest.TestCase):
    def run_and_stop(self, sig, abstract=False, workers=2):
        n = NotifyListener(abstract)
        self.addCleanup(n.close)
        srv = harness.Server(workers=workers, env={'NOTIFY_SOCKET': n.env_value},
                             files={'a.txt': 'a'})
        with srv:
            ready = n.wait('READY')  # the port already accepts: start() checked
            self.assertEqual(ready['READY'], '1')
            self.assertEqual(int(ready['MAINPID']), srv.pid)
            self.assertEqual(ready['STATUS'], 'serving on 127.0.0.1:%d; %d worker%s' %
                             (srv.port, workers, '' if workers == 1 else 's'))
            self.assertFalse(any('STOPPING' in m for m in n.messages))
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            self.assertEqual(srv.stop(sig), 0)
            stopping = n.wait('STOPPING')
            self.assertEqual(stopping['STOPPING'], '1')
            self.assertIn('stopping', stopping['STATUS'])
        return n

    def test_ready_then_stopping_on_quit(self):
        n = self.run_and_stop(signal.SIGQUIT)
        self.assertEqual(n.messages[-1]['STATUS'], 'stopping gracefully')

    def test_ready_then_stopping_on_term(self):
        self.run_and_stop(signal.SIGTERM, workers=1)

    def test_stopping_on_int(self):
        self.run_and_stop(signal.SIGINT, workers=1)

    def test_abstract_namespace_socket(self):
        self.run_and_stop(signal.SIGQUIT, abstract=True)

    def test_one_ready_only(self):
        n = NotifyListener()
        self.addCleanup(n.close)
        with harness.Server(workers=2, env={'NOTIFY_SOCKET': n.env_value},
                            files={'a.txt': 'a'}) as srv:
            n.wait('READY')
            # a worker killed and respawned is no new start-up
            w = srv.worker_pids()[0]
            os.kill(w, signal.SIGKILL)
            self.assertTrue(srv.wait_for(lambda: len(srv.worker_pids()) == 2 and
                                         w not in srv.worker_pids(), 20))
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            srv.stop(signal.SIGQUIT)
            n.wait('STOPPING')
        self.assertEqual(sum('READY' in m for m in n.messages), 1, n.messages)

    def test_reload_sends_reloading_then_ready(self):
        n = NotifyListener()
        self.addCleanup(n.close)
        with harness.Server(workers=1, env={'NOTIFY_SOCKET': n.env_value},
                            files={'a.txt': 'a'}) as srv:
            n.wait('READY')
            srv.signal(signal.SIGHUP)
            reloading = n.wait('RELOADING')
            self.assertEqual(reloading['RELOADING'], '1')
            self.assertIn('MONOTONIC_USEC', reloading)
            # READY=1 again after the reload (the second READY message)
            deadline = time.monotonic() + 20
            while sum('READY' in m for m in n.messages) < 2 and time.monotonic() < deadline:
                try:
                    n.sock.settimeout(1)
                    data = n.sock.recv(4096)
                    n.messages.append(dict(l.split('=', 1) for l in data.decode().split('\n')
                                           if '=' in l))
                except socket.timeout:
                    pass
            kinds = [k for m in n.messages for k in ('READY', 'RELOADING') if k in m]
            self.assertEqual(kinds, ['READY', 'RELOADING', 'READY'], n.messages)
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            srv.stop(signal.SIGQUIT)
            n.wait('STOPPING')

    def test_workers_do_not_see_notify_socket(self):
        n = NotifyListener()
        self.addCleanup(n.close)
        with harness.Server(workers=2, env={'NOTIFY_SOCKET': n.env_value}) as srv:
            n.wait('READY')
            self.assertIn('NOTIFY_SOCKET', names(environ_of(srv.pid)))
            workers = srv.worker_pids()
            self.assertEqual(len(workers), 2)
            for w in workers:
                # READY follows the forks, not each worker's first steps: a
                # worker just forked may not have wiped its copy yet
                deadline = time.monotonic() + 10
                try:
                    env = names(environ_of(w))
                    while 'NOTIFY_SOCKET' in env and time.monotonic() < deadline:
                        time.sleep(0.05)
                        env = names(environ_of(w))
                except PermissionError:
                    # workers are not dumpable: without CAP_SYS_PTRACE (a
                    # container's root) even root may not read their environ,
                    # which is the point; test_cgi_script_does_not_see_notify_socket
                    # still checks what their programs inherit
                    self.skipTest('worker %d is not dumpable and this runner may not '
                                  'read its environ' % w)
                self.assertNotIn('NOTIFY_SOCKET', env)
                self.assertIn('PATH', env)  # the rest is still there

    def test_cgi_script_does_not_see_notify_socket(self):
        n = NotifyListener()
        self.addCleanup(n.close)
        srv = harness.Server('--cgi', '/cgi-bin/=@CGI@', workers=1,
                             env={'NOTIFY_SOCKET': n.env_value, 'LISTEN_FDS': '1',
                                  'LISTEN_PID': '1'})
        cgi = os.path.join(srv.tmpdir, 'cgi')
        os.mkdir(cgi)
        with open(os.path.join(cgi, 'env.cgi'), 'w') as f:
            f.write('#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nenv\n')
        os.chmod(os.path.join(cgi, 'env.cgi'), 0o755)
        srv.args = [a.replace('@CGI@', cgi) for a in srv.args]
        with srv:
            n.wait('READY')
            status, _, body = harness.request(srv.port, 'GET', '/cgi-bin/env.cgi')
            self.assertEqual(status, 200)
            self.assertIn(b'GATEWAY_INTERFACE=CGI/1.1', body)
            for v in (b'NOTIFY_SOCKET', b'LISTEN_FDS', b'LISTEN_PID'):
                self.assertNotIn(v, body)

    def test_unset_means_silent(self):
        with harness.Server(workers=1, env={'NOTIFY_SOCKET': ''}, files={'a.txt': 'a'}) as srv:
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            self.assertEqual(srv.stop(signal.SIGQUIT), 0)
            self.assertNotIn('notify', srv.stderr_text().lower())

    def test_bad_notify_socket_is_a_warning_not_a_failure(self):
        with harness.Server(workers=1, env={'NOTIFY_SOCKET': '/nonexistent/notify'},
                            files={'a.txt': 'a'}) as srv:
            self.assertTrue(srv.wait_for_log(r'sd_notify to /nonexistent/notify failed'))
            self.assertEqual(harness.request(srv.port, 'GET', '/a.txt')[0], 200)
            self.assertEqual(srv.stop(signal.SIGQUIT), 0)

    def test_daemon_reports_its_new_pid(self):
        n = NotifyListener()
        self.addCleanup(n.close)
        d = tempfile.mkdtemp(prefix='portico-svc-daemon-')
        self.addCleanup(shutil.rmtree, d, True)
        pidf = os.path.join(d, 'portico.pid')
        port = harness.free_port()
        env = dict(os.environ, NOTIFY_SOCKET=n.env_value)
        pid = None
        try:
            p = subprocess.run([harness.PORTICO, '--daemon', '-l', '127.0.0.1:%d' % port,
                                '-w', '1', '-r', d, '--error-log', os.path.join(d, 'err.log'),
                                '-o', 'pid_file=%s' % pidf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                               timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            ready = n.wait('READY')
            pid = int(ready['MAINPID'])
            self.assertTrue(harness.Server.wait_for(
                lambda: os.path.exists(pidf) and open(pidf).read().strip() == str(pid), 20))
            os.kill(pid, signal.SIGQUIT)
            self.assertEqual(n.wait('STOPPING')['STOPPING'], '1')
            self.assertTrue(harness.wait_port_closed(port))
            self.assertTrue(harness.Server.wait_for(
                lambda: harness._proc_stat(pid) is None, 20))
            pid = None
        finally:
            if pid:
                try:
                    os.killpg(harness._proc_stat(pid)[1], signal.SIGKILL)
                except (OSError, TypeError):
                    pass
        with open(os.path.join(d, 'err.log')) as f:
            log = f.read()
        for m in harness.SANITIZER_MARKERS:
            self.assertNotIn(m, log)


class ActivatedServer(harness.Server):
    """A server started the way systemd does socket activation: the sockets
    on fds 3.., LISTEN_FDS, and LISTEN_PID = the server's own pid (set by a
    /bin/sh wrapper that then execs portico, keeping its pid)."""

    def __init__(self, socks, *args, listen_pid=None, **kw):
        super().__init__(*args, **kw)
        self.socks = socks
        self.listen_pid = listen_pid

    def start(self, timeout=20, expect_fail=False):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        env['LISTEN_FDS'] = str(len(self.socks))
        env['LISTEN_FDNAMES'] = ':'.join('http' for _ in self.socks)
        self.port = self.fixed_port
        self.cmd = self._cmd(self.port)
        pid_expr = '$$' if self.listen_pid is None else str(self.listen_pid)
        wrapper = ['/bin/sh', '-c', 'LISTEN_PID=%s; export LISTEN_PID; exec "$0" "$@"' % pid_expr]
        # park the sockets high, then put them on 3, 4, ... in the child
        high = [os.dup2(s.fileno(), 200 + i) for i, s in enumerate(self.socks)]

        def to_fds_from_3():
            for i in range(len(high)):
                os.dup2(200 + i, 3 + i)

        try:
            with open(self.stderr_path, 'ab') as errf:
                self.proc = subprocess.Popen(wrapper + self.cmd, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=errf,
                                             start_new_session=True, env=env, cwd=self.cwd,
                                             pass_fds=[3 + i for i in range(len(high))],
                                             preexec_fn=to_fds_from_3)
        finally:
            for fd in high:
                os.close(fd)
        self.pid = self.proc.pid
        self._stopped_rc = None
        if expect_fail:
            self.proc.wait(timeout)
            self._stopped_rc = self.proc.returncode
            return self
        deadline = harness.time.monotonic() + timeout
        while harness.time.monotonic() < deadline and self.proc.poll() is None:
            try:
                harness.connect(self.port, timeout=1, host=self.host).close()
                return self
            except OSError:
                harness.time.sleep(0.05)
        raise RuntimeError('activated portico did not serve: %s\n%s' %
                           (self.cmd, self.stderr_text()))


def listening(host='127.0.0.1', port=0, family=socket.AF_INET, v6only=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((host, port))
    s.listen(16)
    return s


class SocketActivation(unittest.TestCase):
    def serve(self, srv, port, host='127.0.0.1'):
        status, _, body = harness.request(port, 'GET', '/a.txt', host=host)
        self.assertEqual((status, body), (200, b'activated'))

    def test_one_passed_socket_serves(self):
        s = listening()
        port = s.getsockname()[1]
        # -l names the passed address: binding it ourselves would fail, the
        # test holds it (EADDRINUSE), so serving proves the fd was adopted
        srv = ActivatedServer([s], listen=['127.0.0.1:%d' % port], port=port, workers=2,
                              files={'a.txt': 'activated'})
        with srv:
            s.close()
            self.serve(srv, port)
            self.assertRegex(srv.stderr_text(), r'listening on 127\.0\.0\.1:%d \(socket passed'
                             % port)
            # nothing of LISTEN_* reaches the master's environment block or a worker's
            for pid in [srv.pid] + srv.worker_pids():
                env = names(environ_of(pid))
                for v in ('LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'):
                    self.assertNotIn(v, env, 'pid %d' % pid)
            # CLOEXEC and non-blocking, as portico's own listeners
            with open('/proc/%d/fdinfo/3' % srv.pid) as f:
                flags = int(re.search(r'flags:\s*([0-7]+)', f.read()).group(1), 8)
            self.assertTrue(flags & os.O_NONBLOCK)
            self.assertTrue(flags & 0o2000000)  # O_CLOEXEC
            self.assertEqual(srv.stop(signal.SIGQUIT), 0)
        self.assertTrue(harness.wait_port_closed(port))

    def test_passed_socket_gets_defer_accept(self):
        # limits.defer_accept (t_defer_accept.py) applies to a socket
        # systemd passed as to one portico bound; the kernel reports the
        # period rounded up to its SYN-ACK retransmissions (1+2+4 s)
        s = listening()
        self.addCleanup(s.close)
        port = s.getsockname()[1]
        self.assertEqual(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT), 0)
        srv = ActivatedServer([s], '-o', 'limits.defer_accept=5s', listen=['127.0.0.1:%d' % port],
                              port=port, files={'a.txt': 'activated'})
        with srv:
            self.serve(srv, port)
            self.assertEqual(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT), 7)

    def test_two_passed_sockets_and_one_bound(self):
        a, b = listening(), listening()
        pa, pb = a.getsockname()[1], b.getsockname()[1]
        pc = harness.free_port()
        srv = ActivatedServer([a, b], port=pb, workers=1, files={'a.txt': 'activated'},
                              listen=['127.0.0.1:%d' % pc, '127.0.0.1:%d' % pb,
                                      '127.0.0.1:%d' % pa])
        with srv:
            a.close()
            b.close()
            for p in (pa, pb, pc):
                self.serve(srv, p)
            text = srv.stderr_text()
            self.assertRegex(text, r'listening on 127\.0\.0\.1:%d \(socket passed' % pa)
            self.assertRegex(text, r'listening on 127\.0\.0\.1:%d \(socket passed' % pb)
            self.assertRegex(text, r'listening on 127\.0\.0\.1:%d\n' % pc)

    def test_any_address_listener_takes_a_wildcard_socket(self):
        if harness.ipv6_loopback_ok():
            s = listening('::', 0, socket.AF_INET6, v6only=False)
        else:
            s = listening('0.0.0.0')
        port = s.getsockname()[1]
        srv = ActivatedServer([s], '-p', str(port), listen=[], port=port, workers=1,
                              files={'a.txt': 'activated'})
        with srv:
            s.close()
            self.serve(srv, port)

    def test_unmatched_passed_socket_is_an_error(self):
        s = listening()
        port = s.getsockname()[1]
        other = harness.free_port()
        srv = ActivatedServer([s], listen=['127.0.0.1:%d' % other], port=other, workers=1)
        try:
            srv.start(expect_fail=True)
            self.assertEqual(srv.proc.returncode, 1)
            self.assertIn('socket activation: the passed socket 127.0.0.1:%d (fd 3) matches no '
                          'configured listen address (listen: 127.0.0.1:%d)' % (port, other),
                          srv.stderr_text())
        finally:
            s.close()
            shutil.rmtree(srv.tmpdir, ignore_errors=True)

    def test_not_a_listening_socket_is_an_error(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(('127.0.0.1', 0))  # bound, never listen()ed
        srv = ActivatedServer([s], port=s.getsockname()[1], workers=1)
        try:
            srv.start(expect_fail=True)
            self.assertEqual(srv.proc.returncode, 1)
            self.assertIn('fd 3 is not a listening TCP socket', srv.stderr_text())
        finally:
            s.close()
            shutil.rmtree(srv.tmpdir, ignore_errors=True)

    def test_other_pid_means_not_for_us(self):
        # LISTEN_PID of another process: ignore the fds, bind as usual
        s = listening()
        port = harness.free_port()
        srv = ActivatedServer([s], listen_pid=1, listen=['127.0.0.1:%d' % port], port=port,
                              workers=1, files={'a.txt': 'activated'})
        with srv:
            self.serve(srv, port)
            self.assertNotIn('socket passed', srv.stderr_text())
            for pid in [srv.pid] + srv.worker_pids():
                self.assertNotIn('LISTEN_FDS', names(environ_of(pid)))
        s.close()

    def test_daemon_is_ignored_with_socket_activation(self):
        s = listening()
        port = s.getsockname()[1]
        srv = ActivatedServer([s], '--daemon', listen=['127.0.0.1:%d' % port], port=port,
                              workers=1, files={'a.txt': 'activated'})
        with srv:
            s.close()
            self.serve(srv, port)
            self.assertIn('--daemon ignored: socket activation implies the foreground',
                          srv.stderr_text())
            self.assertIsNone(srv.proc.poll())  # the pid the manager knows still serves

    def test_notify_with_socket_activation(self):
        n = NotifyListener()
        self.addCleanup(n.close)
        s = listening()
        port = s.getsockname()[1]
        srv = ActivatedServer([s], listen=['127.0.0.1:%d' % port], port=port, workers=1,
                              env={'NOTIFY_SOCKET': n.env_value}, files={'a.txt': 'activated'})
        with srv:
            s.close()
            ready = n.wait('READY')
            self.assertEqual(int(ready['MAINPID']), srv.pid)
            self.serve(srv, port)
            srv.stop(signal.SIGTERM)
            n.wait('STOPPING')


class Units(unittest.TestCase):
    def service_text(self):
        path = os.path.join(BUILDDIR, 'conf', 'portico.service')
        if not os.path.exists(path):
            self.skipTest('conf/portico.service not generated')
        with open(path) as f:
            return f.read()

    def test_service_has_configured_paths(self):
        text = self.service_text()
        self.assertNotIn('@', text.replace('$MAINPID', ''))
        self.assertNotIn('${prefix}', text)
        m = re.search(r'^ExecStart=(/\S+)/portico -c (/\S+)/portico/portico\.conf$', text, re.M)
        self.assertTrue(m, text)
        self.assertRegex(text, r'(?m)^ExecStartPre=%s/portico -t -c %s/portico/portico\.conf$'
                         % (re.escape(m.group(1)), re.escape(m.group(2))))
        for line in ('Type=notify', 'KillSignal=SIGQUIT', 'KillMode=mixed',
                     'ExecReload=/bin/kill -HUP $MAINPID', 'NoNewPrivileges=yes',
                     'PrivateTmp=yes', 'RuntimeDirectory=portico', 'LogsDirectory=portico',
                     'LogsDirectoryMode=0755', 'Restart=on-failure'):
            self.assertIn('\n' + line + '\n', text)
        self.assertNotIn('MemoryDenyWriteExecute', text.replace('# MemoryDeny', ''))
        self.assertNotRegex(text, r'(?m)^(Requires|BindsTo)=.*portico\.socket')

    def test_systemd_analyze_verify(self):
        sa = shutil.which('systemd-analyze')
        if not sa:
            self.skipTest('systemd-analyze not installed')
        text = self.service_text()
        d = tempfile.mkdtemp(prefix='portico-units-')
        self.addCleanup(shutil.rmtree, d, True)
        # verify checks that ExecStart= exists: point it at the build tree
        text = re.sub(r'(?m)^(ExecStart(?:Pre)?=)\S+/portico', r'\1' + harness.PORTICO, text)
        with open(os.path.join(d, 'portico.service'), 'w') as f:
            f.write(text)
        shutil.copy(os.path.join(SRCDIR, 'conf', 'portico.socket'), d)
        p = subprocess.run([sa, 'verify', '--man=no', 'portico.service', 'portico.socket'],
                           cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           env=dict(os.environ, SYSTEMD_LOG_COLOR='0'))
        out = p.stdout.decode('utf-8', 'replace')
        if p.returncode != 0 and re.search(r'(?i)bus|Failed to (initialize|connect)', out) and \
                'portico.' not in out:
            self.skipTest('systemd-analyze cannot run here: ' + out.strip()[:200])
        self.assertEqual(p.returncode, 0, out)
        # unknown keys and bad values are only warnings: none allowed either
        self.assertNotRegex(out, r'portico\.(service|socket):\d+:', out)

    def test_make_install_puts_units_in_unit_dir(self):
        mk = os.path.join(BUILDDIR, 'Makefile')
        if not os.path.exists(mk) or not shutil.which('make'):
            self.skipTest('no build tree')
        with open(mk) as f:
            m = re.search(r'^systemdsystemunitdir = (.*)$', f.read(), re.M)
        if not m:
            self.skipTest('configured --without-systemdsystemunitdir')
        dest = tempfile.mkdtemp(prefix='portico-destdir-')
        self.addCleanup(shutil.rmtree, dest, True)
        env = dict(os.environ)
        for v in ('MAKEFLAGS', 'MAKELEVEL', 'MFLAGS'):
            env.pop(v, None)
        p = subprocess.run(['make', '-s', 'install-systemdsystemunitDATA', 'DESTDIR=' + dest],
                           cwd=BUILDDIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120, env=env)
        self.assertEqual(p.returncode, 0, p.stdout)
        found = []
        for root, _dirs, files in os.walk(dest):
            for f in files:
                found.append(os.path.join(root, f))
        names_found = sorted(os.path.basename(f) for f in found)
        self.assertEqual(names_found, ['portico.service', 'portico.socket'], found)
        unitdir = m.group(1).strip()
        want = dest + unitdir if unitdir.startswith('/') else None
        for f in found:
            if want:
                self.assertEqual(os.path.dirname(f), want)
            else:
                self.assertTrue(os.path.dirname(f).endswith('/systemd/system'), found)


def makefile_dirs():
    """The installation directories configure chose, expanded as make would."""
    vals = {}
    with open(os.path.join(BUILDDIR, 'Makefile')) as f:
        for line in f:
            m = re.match(r'^(\w+) = (.*)$', line.rstrip('\n'))
            if m:
                vals[m.group(1)] = m.group(2).strip()

    def expand(v, depth=0):
        return re.sub(r'\$[{(](\w+)[})]', lambda m: expand(vals.get(m.group(1), ''), depth + 1),
                      v) if depth < 20 else v
    return {k: expand(vals[k]) for k in ('sysconfdir', 'localstatedir', 'runstatedir')}


class InstalledConfig(unittest.TestCase):
    def test_make_install_puts_the_configured_dirs_in_portico_conf(self):
        dirs = makefile_dirs()
        dest = tempfile.mkdtemp(prefix='portico-destdir-')
        self.addCleanup(shutil.rmtree, dest, True)
        env = dict(os.environ)
        for v in ('MAKEFLAGS', 'MAKELEVEL', 'MFLAGS'):
            env.pop(v, None)
        p = subprocess.run(['make', '-s', 'install-portico_confDATA', 'DESTDIR=' + dest],
                           cwd=BUILDDIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120, env=env)
        self.assertEqual(p.returncode, 0, p.stdout)
        path = dest + dirs['sysconfdir'] + '/portico/portico.conf'
        with open(path) as f:
            text = f.read()
        self.assertIn('pid_file = "%s/portico.pid";' % dirs['runstatedir'], text)
        self.assertIn('error_log = "%s/log/portico/error.log";' % dirs['localstatedir'], text)
        self.assertIn('access_log = "%s/log/portico/access.log";' % dirs['localstatedir'], text)
        self.assertIn('portico -t -c %s/portico/portico.conf' % dirs['sysconfdir'], text)
        # PHP-FPM's socket is not ours: it stays where Debian's php-fpm has it
        self.assertIn('"unix:/run/php/php-fpm.sock"', text)
        # and the result is still a valid configuration
        p = subprocess.run([harness.PORTICO, '-t', '-c', path, '-r', dest, '-o', 'user=root'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout)


if __name__ == '__main__':
    harness.main()
