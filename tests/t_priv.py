"""t_priv.py: privilege drop. Started as root, the master keeps root and the
workers, the CGI programs they run and spawned FastCGI apps run as "user"
(real, effective, saved and filesystem ids, supplementary groups) before
any request is read; logs stay writable across SIGUSR1 and a reload can
change the user. A configuration file without "user" is refused as root.
Most tests need root (skipped otherwise); the non-root behaviour is checked
with setpriv."""

import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(os.path.dirname(__file__), '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
ROOT = os.geteuid() == 0
NOBODY = 65534
NOGROUP = 65534

ID_CGI = r'''#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
grep -E '^(Uid|Gid|Groups):' /proc/self/status
if [ -n "$CONTENT_LENGTH" ]; then printf 'body:%s\n' "$(wc -c | tr -d ' ')"; fi
'''


def status_ids(text):
    """{'Uid': [r, e, s, fs], 'Gid': [...], 'Groups': [...]} from /proc status lines."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(':')
        if k in ('Uid', 'Gid', 'Groups'):
            out[k] = [int(x) for x in v.split()]
    return out


def proc_ids(pid):
    with open('/proc/%d/status' % pid) as f:
        return status_ids(f.read())


def get(port, path, body=None, timeout=30):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        c.request('POST' if body is not None else 'GET', path, body=body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def world_readable_tmpdir(srv):
    """The harness's scratch dir is 0700; an unprivileged worker must
    reach the document root and the scripts in it."""
    os.chmod(srv.tmpdir, 0o755)
    os.chmod(srv.docroot, 0o755)


@unittest.skipUnless(ROOT, 'needs root: the master must be able to change users')
class DropToNobody(unittest.TestCase):
    CONF = '''
user = "nobody";
group = "nogroup";
workers = 2;
access_log = "@TMP@/logs/access.log";
error_log = "@TMP@/logs/error.log";
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@ROOT@/cgi-bin"; },
              { prefix = "/"; handler = "static"; } );
'''

    def setUp(self):
        self.srv = harness.Server(workers=None, error_log=None)
        world_readable_tmpdir(self.srv)
        self.logs = os.path.join(self.srv.tmpdir, 'logs')
        os.mkdir(self.logs, 0o755)
        self.srv.write_file('index.html', 'hello\n')
        secret = self.srv.write_file('secret.txt', 'root only\n')
        os.chmod(secret, 0o600)
        cgi = self.srv.write_file('cgi-bin/id.cgi', ID_CGI)
        os.chmod(cgi, 0o755)
        os.chmod(os.path.dirname(cgi), 0o755)
        self.srv.conf = self.CONF.replace('@TMP@', self.srv.tmpdir).replace(
            '@ROOT@', self.srv.docroot)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def error_log(self):
        with open(os.path.join(self.logs, 'error.log'), errors='replace') as f:
            return f.read()

    def test_cgi_script_runs_as_nobody(self):
        st, body = get(self.srv.port, '/cgi-bin/id.cgi')
        self.assertEqual(st, 200, body)
        ids = status_ids(body.decode())
        self.assertEqual(ids['Uid'], [NOBODY] * 4, body)
        self.assertEqual(ids['Gid'], [NOGROUP] * 4, body)
        # nobody's supplementary groups from the group database: none but
        # its primary group; root's (0) never survives
        self.assertNotIn(0, ids['Groups'], body)

    def test_workers_run_as_nobody_and_master_stays_root(self):
        workers = self.srv.worker_pids()
        self.assertEqual(len(workers), 2, '%s running=%s\n%s\n%s' % (
            workers, self.srv.running, self.srv.stderr_text(), self.error_log()))
        # a worker changes user right after fork, before it accepts: one
        # just forked may not have got there yet
        self.assertTrue(harness.Server.wait_for(
            lambda: all(proc_ids(p)['Uid'][0] == NOBODY for p in workers), 20))
        for pid in workers:
            ids = proc_ids(pid)
            self.assertEqual(ids['Uid'], [NOBODY] * 4, pid)
            self.assertEqual(ids['Gid'], [NOGROUP] * 4, pid)
            self.assertNotIn(0, ids['Groups'])
        self.assertEqual(proc_ids(self.srv.pid)['Uid'], [0] * 4)

    def test_file_only_root_can_read_is_forbidden(self):
        st, _ = get(self.srv.port, '/index.html')
        self.assertEqual(st, 200)
        st, body = get(self.srv.port, '/secret.txt')
        self.assertEqual(st, 403, body)
        self.assertNotIn(b'root only', body)

    def test_request_body_spooled_to_disk_as_nobody(self):
        # 300 KiB > limits.body_memory (64k): spooled to tmp_dir by the worker
        data = b'x' * (300 * 1024)
        st, body = get(self.srv.port, '/cgi-bin/id.cgi', body=data)
        self.assertEqual(st, 200, body)
        self.assertIn(b'body:%d\n' % len(data), body)

    def test_logs_reopened_by_workers_after_rotation(self):
        st, _ = get(self.srv.port, '/index.html?before')
        self.assertEqual(st, 200)
        acc = os.path.join(self.logs, 'access.log')
        self.assertTrue(harness.Server.wait_for(
            lambda: 'before' in open(acc).read(), 10))
        os.rename(acc, acc + '.1')
        os.rename(os.path.join(self.logs, 'error.log'), os.path.join(self.logs, 'error.log.1'))
        self.srv.signal(signal.SIGUSR1)
        self.assertTrue(harness.Server.wait_for(lambda: os.path.exists(acc), 10))
        # the master created the new file and handed it to the workers' user
        self.assertEqual(os.stat(acc).st_uid, NOBODY)
        # the signal reaches each worker in its own time: wait until every
        # worker holds the new file (its fd table shows the path), then each
        # request must land there
        def reopened(pid):
            fd_dir = '/proc/%d/fd' % pid
            links = set()
            for fd in os.listdir(fd_dir):
                try:
                    links.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
            return acc in links and acc + '.1' not in links
        self.assertTrue(harness.Server.wait_for(
            lambda: all(reopened(p) for p in self.srv.worker_pids()), 20))
        for i in range(20):
            st, _ = get(self.srv.port, '/index.html?after%d' % i)
            self.assertEqual(st, 200)
        self.assertTrue(harness.Server.wait_for(
            lambda: all('after%d ' % i in open(acc).read() for i in range(20)), 10),
            open(acc).read())
        with open(acc + '.1') as f:
            self.assertNotIn('after', f.read())
        self.assertNotIn('reopening logs failed', self.error_log())
        self.assertNotRegex(self.error_log(), r'cannot (re)?open')


@unittest.skipUnless(ROOT, 'needs root')
class ReloadChangesUser(unittest.TestCase):
    CONF = '''
user = "@USER@";
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@ROOT@/cgi-bin"; } );
'''

    def start_as_nobody(self):
        """A one-worker server as nobody with cgi-bin/id.cgi."""
        srv = harness.Server(workers=1)
        world_readable_tmpdir(srv)
        cgi = srv.write_file('cgi-bin/id.cgi', ID_CGI)
        os.chmod(cgi, 0o755)
        os.chmod(os.path.dirname(cgi), 0o755)
        srv.conf = self.CONF.replace('@USER@', 'nobody').replace('@ROOT@', srv.docroot)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def test_hup_with_a_new_user_applies_to_new_workers(self):
        srv = self.start_as_nobody()
        st, body = get(srv.port, '/cgi-bin/id.cgi')
        self.assertEqual(status_ids(body.decode())['Uid'][0], NOBODY, body)
        daemon = pwd.getpwnam('daemon')
        with open(srv.conf_path, 'w') as f:
            f.write(self.CONF.replace('@USER@', 'daemon').replace('@ROOT@', srv.docroot))
        srv.signal(signal.SIGHUP)

        def new_user():
            try:
                st, body = get(srv.port, '/cgi-bin/id.cgi')
            except OSError:
                return False
            return st == 200 and status_ids(body.decode())['Uid'] == [daemon.pw_uid] * 4
        self.assertTrue(harness.Server.wait_for(new_user, 30), srv.stderr_text())
        ids = status_ids(get(srv.port, '/cgi-bin/id.cgi')[1].decode())
        self.assertEqual(ids['Gid'], [daemon.pw_gid] * 4)

    def test_hup_without_user_is_refused_and_old_workers_serve(self):
        srv = self.start_as_nobody()
        before = set(srv.worker_pids())
        with open(srv.conf_path, 'w') as f:
            f.write('workers = 1;\n')  # no user: refused as root
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"reload failed: .*'user' is not set", 20)
        self.assertEqual(set(srv.worker_pids()), before)
        st, body = get(srv.port, '/cgi-bin/id.cgi')
        self.assertEqual(st, 200)
        self.assertEqual(status_ids(body.decode())['Uid'][0], NOBODY)


@unittest.skipUnless(ROOT, 'needs root')
@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class SpawnedAppDrops(unittest.TestCase):
    def test_spawned_fastcgi_app_runs_as_nobody(self):
        srv = harness.Server(workers=1)
        world_readable_tmpdir(srv)
        # the build tree may sit where nobody cannot reach: a copy of the app
        app = os.path.join(srv.tmpdir, 'hello-fcgi')
        shutil.copy(HELLO, app)
        os.chmod(app, 0o755)
        srv.conf = '''
user = "nobody";
backends = ( { name = "hello";
               spawn = { program = "%s"; processes = 1; socket = "%s/hello.sock"; }; } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; } );
''' % (app, srv.tmpdir)
        srv.start()
        self.addCleanup(srv.stop)
        st, body = get(srv.port, '/hello/')
        self.assertEqual(st, 200, body + srv.stderr_text().encode())
        m = re.match(rb'^Hello from FastCGI: pid (\d+)', body)
        self.assertTrue(m, body)
        ids = proc_ids(int(m.group(1)))
        self.assertEqual(ids['Uid'], [NOBODY] * 4)
        self.assertEqual(ids['Gid'], [NOGROUP] * 4)
        # born 0660 in the workers' group (umask and fsgid at bind), never
        # chown'ed or chmod'ed by name: root keeps the owner
        st = os.stat(os.path.join(srv.tmpdir, 'hello.sock'))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, NOGROUP, 0o660))


@unittest.skipUnless(ROOT, 'needs root')
class Refusal(unittest.TestCase):
    def setUp(self):
        self.d = harness._mkdtemp('portico-priv-')

    def run_t(self, conf_text, *extra, prefix=()):
        path = os.path.join(self.d, 'p.conf')
        with open(path, 'w') as f:
            f.write(conf_text)
        os.chmod(self.d, 0o755)
        os.chmod(path, 0o644)
        return subprocess.run(list(prefix) + [harness.PORTICO, '-t', '-c', path, '-r', self.d]
                              + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30)

    def test_config_file_without_user_is_refused_as_root(self):
        p = self.run_t('workers = 1;\n')
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"portico runs as root and 'user' is not set", p.stdout)

    def test_user_root_allows_it(self):
        p = self.run_t('workers = 1;\n', '-o', 'user=root')
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertNotIn(b'warning', p.stdout)

    def test_unknown_user_is_a_config_error_with_its_line(self):
        p = self.run_t('workers = 1;\nuser = "no-such-user-here";\n')
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertRegex(p.stdout, rb"p\.conf:2: unknown user 'no-such-user-here'")

    def test_flags_only_as_root_warns(self):
        p = subprocess.run([harness.PORTICO, '-t', '-r', self.d], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn(b"running as root without 'user'", p.stdout)

    @unittest.skipUnless(shutil.which('setpriv'), 'setpriv (util-linux) missing')
    def test_not_root_user_is_not_applied_but_loads(self):
        # run the check as nobody: "user" cannot be applied, only a warning
        p = self.run_t('user = "www-data";\n',
                       prefix=('setpriv', '--reuid=%d' % NOBODY, '--regid=%d' % NOGROUP,
                               '--clear-groups'))
        if p.returncode == 126 or b'Permission denied' in p.stdout:
            self.skipTest('the build tree is not reachable by nobody')
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn(b"user 'www-data' is not applied: portico was not started as root",
                      p.stdout)


# Reports the program's ids and whether it could signal its worker (its
# parent: vfork) with signal 0 and with SIGSTOP.
SIGNAL_ID_CGI = r'''#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapBnd):' /proc/self/status
kill -0 $PPID 2>/dev/null; echo "kill0:$?"
kill -STOP $PPID 2>/dev/null; echo "killstop:$?"
'''


def status_field(text, key):
    for line in text.splitlines():
        if line.startswith(key + ':'):
            return line.split(':', 1)[1].strip()
    return None


@unittest.skipUnless(ROOT, 'needs root: the master must be able to change users')
class ProgramIdentity(unittest.TestCase):
    """Item 3 of the security issue: with cgi_user, programs run under an
    identity of their own and cannot signal (stop, kill) their worker, which
    keeps "user" as its real and saved uid and its file-system uid."""
    CONF = '''
user = "nobody";
group = "nogroup";
cgi_user = "daemon";
workers = 1;
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@ROOT@/cgi-bin"; },
              { prefix = "/"; handler = "static"; } );
'''

    def setUp(self):
        self.daemon = pwd.getpwnam('daemon')
        self.srv = harness.Server(workers=None)
        world_readable_tmpdir(self.srv)
        self.srv.write_file('index.html', 'hello\n')
        cgi = self.srv.write_file('cgi-bin/sig.cgi', SIGNAL_ID_CGI)
        os.chmod(cgi, 0o755)
        os.chmod(os.path.dirname(cgi), 0o755)
        self.srv.conf = self.CONF.replace('@ROOT@', self.srv.docroot)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def test_program_runs_as_cgi_user_and_cannot_signal_its_worker(self):
        (worker,) = self.srv.worker_pids()
        st, body = get(self.srv.port, '/cgi-bin/sig.cgi')
        self.assertEqual(st, 200, body + self.srv.stderr_text().encode())
        text = body.decode()
        ids = status_ids(text)
        d = self.daemon
        self.assertEqual(ids['Uid'], [d.pw_uid] * 4, text)
        self.assertEqual(ids['Gid'], [d.pw_gid] * 4, text)
        self.assertEqual(sorted(ids['Groups']),
                         sorted(set(os.getgrouplist('daemon', d.pw_gid))), text)
        # EPERM: neither signal 0 nor SIGSTOP reaches the worker
        self.assertIn('kill0:1', text)
        self.assertIn('killstop:1', text)
        self.assertIn(harness._proc_stat(worker)[2], ('S', 'R'))
        # the worker: real, saved and file-system uid nobody, effective daemon
        self.assertEqual(proc_ids(worker)['Uid'], [NOBODY, d.pw_uid, NOBODY, NOBODY])
        self.assertEqual(proc_ids(worker)['Gid'], [NOGROUP, d.pw_gid, NOGROUP, NOGROUP])
        st, body = get(self.srv.port, '/index.html')
        self.assertEqual((st, body), (200, b'hello\n'))
        self.assertEqual(self.srv.worker_pids(), [worker])

    def test_programs_have_no_new_privs_and_no_bounding_set(self):
        st, body = get(self.srv.port, '/cgi-bin/sig.cgi')
        self.assertEqual(st, 200, body)
        text = body.decode()
        self.assertEqual(status_field(text, 'NoNewPrivs'), '1', text)
        self.assertEqual(int(status_field(text, 'CapBnd'), 16), 0, text)


@unittest.skipUnless(ROOT, 'needs root')
class LegacySetuidPrograms(ProgramIdentity):
    """no_new_privs = false: set-user-ID helpers work again (the bounding
    set stays whole)."""
    CONF = ProgramIdentity.CONF + 'no_new_privs = false;\n'

    def test_programs_have_no_new_privs_and_no_bounding_set(self):
        st, body = get(self.srv.port, '/cgi-bin/sig.cgi')
        self.assertEqual(st, 200, body)
        text = body.decode()
        self.assertEqual(status_field(text, 'NoNewPrivs'), '0', text)
        self.assertNotEqual(int(status_field(text, 'CapBnd'), 16), 0, text)


@unittest.skipUnless(ROOT, 'needs root')
class RootWorkerCgiUser(unittest.TestCase):
    """user = "root" with cgi_user: the root worker's child sets the
    supplementary groups itself."""

    def test_program_takes_all_of_cgi_users_ids(self):
        srv = harness.Server(workers=1)
        world_readable_tmpdir(srv)
        cgi = srv.write_file('cgi-bin/sig.cgi', SIGNAL_ID_CGI)
        os.chmod(cgi, 0o755)
        os.chmod(os.path.dirname(cgi), 0o755)
        srv.conf = ('cgi_user = "daemon";\nlocations = ( { prefix = "/cgi-bin/"; handler = "cgi"; '
                    'dir = "%s/cgi-bin"; } );\n' % srv.docroot)
        srv.start()
        self.addCleanup(srv.stop)
        st, body = get(srv.port, '/cgi-bin/sig.cgi')
        self.assertEqual(st, 200, body + srv.stderr_text().encode())
        text = body.decode()
        ids = status_ids(text)
        d = pwd.getpwnam('daemon')
        self.assertEqual(ids['Uid'], [d.pw_uid] * 4, text)
        self.assertEqual(ids['Gid'], [d.pw_gid] * 4, text)
        self.assertEqual(sorted(ids['Groups']),
                         sorted(set(os.getgrouplist('daemon', d.pw_gid))), text)
        self.assertIn('killstop:1', text)


@unittest.skipUnless(ROOT, 'needs root')
class CgiUserRefusals(unittest.TestCase):
    def run_t(self, conf_text):
        d = harness._mkdtemp('portico-priv-')
        path = os.path.join(d, 'p.conf')
        with open(path, 'w') as f:
            f.write(conf_text)
        return subprocess.run([harness.PORTICO, '-t', '-c', path, '-r', d],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)

    def test_cgi_user_equal_to_user_is_refused(self):
        p = self.run_t('user = "nobody";\ncgi_user = "nobody";\n')
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"p.conf:2: cgi_user 'nobody' must differ from user", p.stdout)

    def test_cgi_user_root_is_refused(self):
        p = self.run_t('user = "nobody";\ncgi_user = "root";\n')
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"cgi_user 'root' is root", p.stdout)

    def test_cgi_group_needs_cgi_user(self):
        p = self.run_t('user = "nobody";\ncgi_group = "daemon";\n')
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"'cgi_group' needs 'cgi_user'", p.stdout)


@unittest.skipUnless(ROOT, 'needs root')
@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class SpawnedAppAsCgiUser(unittest.TestCase):
    def test_spawned_fastcgi_app_runs_as_cgi_user_with_no_new_privs(self):
        srv = harness.Server(workers=1)
        world_readable_tmpdir(srv)
        app = os.path.join(srv.tmpdir, 'hello-fcgi')
        shutil.copy(HELLO, app)
        os.chmod(app, 0o755)
        srv.conf = '''
user = "nobody";
cgi_user = "daemon";
backends = ( { name = "hello";
               spawn = { program = "%s"; processes = 1; socket = "%s/hello.sock"; }; } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; } );
''' % (app, srv.tmpdir)
        srv.start()
        self.addCleanup(srv.stop)
        st, body = get(srv.port, '/hello/')
        self.assertEqual(st, 200, body + srv.stderr_text().encode())
        m = re.match(rb'^Hello from FastCGI: pid (\d+)', body)
        self.assertTrue(m, body)
        pid = int(m.group(1))
        d = pwd.getpwnam('daemon')
        self.assertEqual(proc_ids(pid)['Uid'], [d.pw_uid] * 4)
        self.assertEqual(proc_ids(pid)['Gid'], [d.pw_gid] * 4)
        with open('/proc/%d/status' % pid) as f:
            self.assertEqual(status_field(f.read(), 'NoNewPrivs'), '1')
        # born in cgi_user's group (the workers hold it as a supplementary
        # group), 0660, never chown'ed or chmod'ed by name (SECURITY.md)
        st = os.stat(os.path.join(srv.tmpdir, 'hello.sock'))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, d.pw_gid, 0o660))

FORK_CGI = r'''#!/usr/bin/python3
import os, signal, sys, time
kids, refused = [], 0
for i in range(60):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
sys.stdout.write('Content-Type: text/plain\r\n\r\nforked:%d refused:%d\n' % (len(kids), refused))
'''


@unittest.skipUnless(ROOT, 'needs root: RLIMIT_NPROC does not bind root')
class ForkBomb(unittest.TestCase):
    def test_rlimit_nproc_stops_a_fork_loop_and_others_are_served(self):
        srv = harness.Server(workers=1)
        world_readable_tmpdir(srv)
        cgi = srv.write_file('cgi-bin/fork.cgi', FORK_CGI)
        os.chmod(cgi, 0o755)
        os.chmod(os.path.dirname(cgi), 0o755)
        srv.write_file('index.html', 'still here\n')
        srv.conf = '''
user = "nobody";
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%s/cgi-bin"; rlimit_nproc = 12; },
              { prefix = "/"; handler = "static"; } );
''' % srv.docroot
        srv.start()
        self.addCleanup(srv.stop)
        st, body = get(srv.port, '/cgi-bin/fork.cgi', timeout=60)
        self.assertEqual(st, 200, body)
        m = re.match(rb'forked:(\d+) refused:(\d+)', body)
        self.assertTrue(m, body)
        forked, refused = int(m.group(1)), int(m.group(2))
        # the user's processes (worker, script, its children) stay within 12
        self.assertLess(forked, 12, body)
        self.assertEqual(forked + refused, 60)
        self.assertGreater(refused, 0)
        st, body = get(srv.port, '/index.html')
        self.assertEqual((st, body), (200, b'still here\n'))


if __name__ == '__main__':
    harness.main()
