"""t_rootfiles.py: the paths the root master writes by name (SECURITY.md,
"Paths the root master writes"). Logs and the pid file are never opened
through a symbolic link, only as a regular file with one link (a FIFO is
refused without hanging), and only a file portico created is handed to the
workers' user: a log swapped for a link to /etc/shadow at SIGUSR1 leaves
/etc/shadow alone. A log directory the workers' user can write is warned
about at -t and start-up, a pid file there is refused; the same for a
directory the programs' user (cgi_user) can write. Spawned FastCGI
sockets live in a fresh private directory, born with their final owner and
mode. Most tests need root (skipped otherwise); the refusals also run as
any user."""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(os.path.dirname(__file__), '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
ROOT = os.geteuid() == 0
NOBODY = pwd.getpwnam('nobody').pw_uid
NOGROUP = pwd.getpwnam('nobody').pw_gid
DAEMON = pwd.getpwnam('daemon').pw_uid  # the programs' user (cgi_user) here
DAEMON_GID = pwd.getpwnam('daemon').pw_gid
SECRET = b'root:$y$secret:19000:0:99999:7:::\n'


def run(args, timeout=20):
    """portico with args until it exits; a server that starts (and would
    never exit) is killed with its session and reported as started."""
    p = subprocess.Popen([harness.PORTICO] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return None, out + err
    return p.returncode, out + err


class Base(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix='pt-rootfiles-')
        self.addCleanup(shutil.rmtree, self.d, True)
        # the workers' user must reach the logs (it reopens them)
        os.chmod(self.d, 0o755)
        self.logs = os.path.join(self.d, 'logs')
        os.mkdir(self.logs, 0o755)
        self.www = os.path.join(self.d, 'www')
        os.mkdir(self.www, 0o755)
        # stands for /etc/shadow: root's, 0600, outside the log directory
        self.shadow = os.path.join(self.d, 'shadow')
        with open(self.shadow, 'wb') as f:
            f.write(SECRET)
        os.chmod(self.shadow, 0o600)
        self.shadow_st = os.stat(self.shadow)
        self.acc = os.path.join(self.logs, 'access.log')
        self.err = os.path.join(self.logs, 'error.log')

    def conf(self, extra=''):
        path = os.path.join(self.d, 'portico.conf')
        with open(path, 'w') as f:
            f.write('%sworkers = 1;\nroot = "%s";\nerror_log = "%s";\naccess_log = "%s";\n%s'
                    % ('user = "nobody";\n' if ROOT else '', self.www, self.err, self.acc,
                       extra))
        return path

    def start_args(self, extra=''):
        return ['-D', '-c', self.conf(extra), '-l', '127.0.0.1:%d' % harness.free_port()]

    def assert_shadow_untouched(self):
        st = os.lstat(self.shadow)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode),
                         (self.shadow_st.st_uid, self.shadow_st.st_gid, self.shadow_st.st_mode))
        with open(self.shadow, 'rb') as f:
            self.assertEqual(f.read(), SECRET)

    def error_log(self):
        try:
            with open(self.err, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''


class StartRefuses(Base):
    """At start-up a log that is not a plain regular file is refused, with
    the path and the reason, and nothing is written through it."""

    def test_log_symlink_is_refused_at_start(self):
        os.symlink(self.shadow, self.acc)
        rc, out = run(self.start_args())
        self.assertIsNotNone(rc, 'started through a symbolic link:\n' + out)
        self.assertNotEqual(rc, 0)
        self.assertIn('cannot open access log %s: is a symbolic link' % self.acc, out)
        self.assert_shadow_untouched()

    def test_error_log_symlink_is_refused_at_start(self):
        os.symlink(self.shadow, self.err)
        rc, out = run(self.start_args())
        self.assertIsNotNone(rc, 'started through a symbolic link:\n' + out)
        self.assertIn('cannot open error log %s: is a symbolic link' % self.err, out)
        self.assert_shadow_untouched()

    def test_fifo_log_is_refused_without_hanging(self):
        # open(O_WRONLY) of a FIFO without a reader blocks: the master would
        # hang before serving
        os.mkfifo(self.acc)
        rc, out = run(self.start_args())
        self.assertIsNotNone(rc, 'hung or started on a FIFO:\n' + out)
        self.assertIn('cannot open access log %s: is a FIFO, not a regular file' % self.acc, out)

    def test_directory_log_is_refused(self):
        os.mkdir(self.err)
        rc, out = run(self.start_args())
        self.assertIsNotNone(rc, out)
        self.assertIn('cannot open error log %s: is a directory, not a regular file' % self.err,
                      out)

    def test_hard_link_log_is_refused(self):
        # a second name for /etc/shadow made in a writable log directory
        # (fs.protected_hardlinks stops it for other users' files, not root's)
        os.link(self.shadow, self.acc)
        rc, out = run(self.start_args())
        self.assertIsNotNone(rc, 'started on a hard link:\n' + out)
        self.assertIn('cannot open access log %s: has 2 hard links' % self.acc, out)
        with open(self.shadow, 'rb') as f:
            self.assertEqual(f.read(), SECRET)

    def test_pid_file_symlink_is_refused(self):
        run_dir = os.path.join(self.d, 'run')
        os.mkdir(run_dir, 0o755)
        pidf = os.path.join(run_dir, 'portico.pid')
        os.symlink(self.shadow, pidf)
        rc, out = run(self.start_args('pid_file = "%s";\n' % pidf))
        self.assertIsNotNone(rc, 'started with a symlinked pid file:\n' + out)
        self.assertNotEqual(rc, 0)
        self.assertRegex(self.error_log() + out,
                         'cannot write pid file %s: is a symbolic link' % re.escape(pidf))
        self.assert_shadow_untouched()
        self.assertTrue(os.path.islink(pidf))


class DevNull(Base):
    def test_logs_sent_to_dev_null_are_accepted(self):
        # a character device cannot be planted by a user (only root makes
        # device nodes) and is never handed over: /dev/null stays usable
        before = os.stat('/dev/null')
        port = harness.free_port()
        path = os.path.join(self.d, 'null.conf')
        with open(path, 'w') as f:
            f.write('%sworkers = 1;\nroot = "%s";\nerror_log = "/dev/null";\n'
                    'access_log = "/dev/null";\n' % ('user = "nobody";\n' if ROOT else '', self.www))
        srv = harness.Server(conf=open(path).read(), docroot=False, workers=None, error_log=None,
                             port=port)
        with open(os.path.join(self.www, 'a.txt'), 'w') as f:
            f.write('a\n')
        srv.start()
        try:
            r = harness.fetch(srv.port, 'GET', '/a.txt')
            self.assertEqual((r.status, r.body), (200, b'a\n'))
        finally:
            self.assertEqual(srv.stop(), 0)
        after = os.stat('/dev/null')
        self.assertEqual((after.st_uid, after.st_gid, after.st_mode),
                         (before.st_uid, before.st_gid, before.st_mode))


class PidFile(Base):
    def test_stale_pid_file_is_rewritten_and_removed_at_stop(self):
        pidf = os.path.join(self.logs, 'portico.pid')
        with open(pidf, 'w') as f:
            f.write('999999\n')
        srv = harness.Server(conf=open(self.conf('pid_file = "%s";\n' % pidf)).read(),
                             workers=1, error_log=None)
        srv.start()
        try:
            self.assertEqual(open(pidf).read(), '%d\n' % srv.pid)
        finally:
            srv.stop()
        self.assertFalse(os.path.exists(pidf), 'pid file left behind')

    @unittest.skipUnless(ROOT, 'needs root: a file of another user')
    def test_pid_file_of_another_user_is_refused(self):
        pidf = os.path.join(self.logs, 'portico.pid')
        with open(pidf, 'w') as f:
            f.write('1\n')
        os.chown(pidf, 1, 1)
        rc, out = run(self.start_args('pid_file = "%s";\n' % pidf))
        self.assertIsNotNone(rc, out)
        self.assertIn('cannot write pid file %s: exists and belongs to uid 1' % pidf,
                      self.error_log())
        self.assertEqual(open(pidf).read(), '1\n')


@unittest.skipUnless(ROOT, 'needs root: the master hands logs to the workers\' user')
class Rotation(Base):
    def start(self):
        srv = harness.Server(conf=open(self.conf()).read(), workers=1, error_log=None)
        srv.start()
        self.addCleanup(srv.stop)
        return srv

    def test_usr1_does_not_follow_a_log_swapped_for_a_symlink(self):
        srv = self.start()
        self.assertEqual(os.stat(self.acc).st_uid, NOBODY)  # created now: handed over
        harness.fetch(srv.port, 'GET', '/before')
        # what a script running as the workers' user could do in a log
        # directory it can write (CVE-2016-1247)
        for path in (self.acc, self.err):
            os.rename(path, path + '.1')
            os.symlink(self.shadow, path)
        srv.signal(signal.SIGUSR1)
        self.assertTrue(harness.Server.wait_for(lambda: re.search(
            r'master: cannot reopen access log %s: is a symbolic link.*still writing to the old'
            % re.escape(self.acc), open(self.err + '.1').read()), 20),
            open(self.err + '.1').read())
        harness.Server.wait_for(lambda: open(self.err + '.1').read().count(
            'cannot reopen access log') >= 2, 10)
        r = harness.fetch(srv.port, 'GET', '/after')
        self.assertEqual(r.status, 404)
        self.assertTrue(srv.running)
        self.assert_shadow_untouched()
        self.assertTrue(harness.Server.wait_for(
            lambda: '/after' in open(self.acc + '.1').read(), 10))

    def test_existing_log_keeps_its_owner(self):
        # found there, not created: nginx-like, used but not handed over
        with open(self.acc, 'w'):
            pass
        os.chown(self.acc, 1, 4)
        os.chmod(self.acc, 0o640)
        self.start()
        st = os.stat(self.acc)
        self.assertEqual((st.st_uid, st.st_gid), (1, 4))
        self.assertEqual(os.stat(self.err).st_uid, NOBODY)


@unittest.skipUnless(ROOT, 'needs root: "user" applies only then')
class WritableDirectory(Base):
    """-t (and start-up, reload) names a directory of a root-written path
    that the workers' user could write, and why."""

    def test_log_dir_of_the_workers_user_is_warned_about(self):
        os.chown(self.logs, NOBODY, 0)
        rc, out = run(['-t', '-c', self.conf()])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"warning: error_log '%s': the directory %s belongs to the "
                         r"workers' user \(uid %d\)" % (re.escape(self.err),
                                                       re.escape(self.logs), NOBODY))
        self.assertIn("access_log '%s'" % self.acc, out)

    def test_group_and_world_writable_log_dirs_are_warned_about(self):
        os.chown(self.logs, 0, NOGROUP)
        os.chmod(self.logs, 0o775)
        rc, out = run(['-t', '-c', self.conf()])
        self.assertEqual(rc, 0, out)
        self.assertIn('the directory %s is writable by group %d, a group of the workers\' user'
                      % (self.logs, NOGROUP), out)
        os.chown(self.logs, 0, 0)
        os.chmod(self.logs, 0o1777)
        rc, out = run(['-t', '-c', self.conf()])
        self.assertEqual(rc, 0, out)
        self.assertIn('the directory %s is writable by every user (sticky)' % self.logs, out)

    def test_root_only_log_dir_is_quiet(self):
        rc, out = run(['-t', '-c', self.conf()])
        self.assertEqual(rc, 0, out)
        self.assertNotIn('warning', out)

    def test_pid_file_in_a_dir_the_workers_user_can_write_is_refused(self):
        run_dir = os.path.join(self.d, 'run')
        os.mkdir(run_dir, 0o755)
        os.chown(run_dir, NOBODY, NOGROUP)
        pidf = os.path.join(run_dir, 'portico.pid')
        rc, out = run(['-t', '-c', self.conf('pid_file = "%s";\n' % pidf)])
        self.assertEqual(rc, 1, out)
        self.assertIn("pid_file '%s': the directory %s belongs to the workers' user"
                      % (pidf, run_dir), out)
        self.assertNotIn('configuration ok', out)

    # the programs' user (cgi_user) is who a hostile script runs as: a
    # directory it can write is as dangerous as one of the workers' user
    def test_log_dir_of_the_programs_user_is_warned_about(self):
        os.chown(self.logs, DAEMON, 0)
        rc, out = run(['-t', '-c', self.conf('cgi_user = "daemon";\n')])
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"warning: error_log '%s': the directory %s belongs to the "
                         r"programs' user \(cgi_user\) \(uid %d\)" % (
                             re.escape(self.err), re.escape(self.logs), DAEMON))
        self.assertIn("access_log '%s'" % self.acc, out)
        # group-writable by a group of cgi_user's
        os.chown(self.logs, 0, DAEMON_GID)
        os.chmod(self.logs, 0o775)
        rc, out = run(['-t', '-c', self.conf('cgi_user = "daemon";\n')])
        self.assertEqual(rc, 0, out)
        self.assertIn("the directory %s is writable by group %d, a group of the programs' user"
                      % (self.logs, DAEMON_GID), out)

    def test_pid_file_in_a_dir_the_programs_user_can_write_is_refused(self):
        run_dir = os.path.join(self.d, 'run')
        os.mkdir(run_dir, 0o755)
        os.chown(run_dir, DAEMON, DAEMON_GID)
        pidf = os.path.join(run_dir, 'portico.pid')
        rc, out = run(['-t', '-c', self.conf('cgi_user = "daemon";\npid_file = "%s";\n' % pidf)])
        self.assertEqual(rc, 1, out)
        self.assertIn("pid_file '%s': the directory %s belongs to the programs' user"
                      % (pidf, run_dir), out)
        self.assertNotIn('configuration ok', out)


@unittest.skipUnless(ROOT, 'needs root: sockets handed to the workers\' group')
@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class SpawnSocket(Base):
    def test_made_up_socket_lives_in_a_fresh_private_directory(self):
        tmp = os.path.join(self.d, 'tmp')
        os.mkdir(tmp)
        os.chmod(tmp, 0o1777)  # like /tmp: anyone may create names
        app = os.path.join(self.d, 'hello-fcgi')
        shutil.copy(HELLO, app)
        os.chmod(app, 0o755)
        conf = open(self.conf('''tmp_dir = "%s";
backends = ( { name = "hello"; spawn = { program = "%s"; processes = 1; }; } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; } );
''' % (tmp, app))).read()
        # no systemd RuntimeDirectory=: tmp_dir is the base
        srv = harness.Server(conf=conf, workers=1, error_log=None,
                             env={'RUNTIME_DIRECTORY': ''})
        srv.start()
        try:
            r = harness.fetch(srv.port, 'GET', '/hello/')
            self.assertEqual(r.status, 200, self.error_log())
            # not the old predictable <tmp_dir>/portico-<pid>-hello.sock
            self.assertFalse(os.path.exists(os.path.join(tmp, 'portico-%d-hello.sock' % srv.pid)))
            socks = glob.glob(os.path.join(tmp, 'portico-%d-*' % srv.pid, 'hello.sock'))
            self.assertEqual(len(socks), 1, os.listdir(tmp))
            d = os.path.dirname(socks[0])
            self.assertRegex(os.path.basename(d), r'^portico-%d-[0-9a-f]{16}$' % srv.pid)
            st = os.lstat(d)
            # root's, the workers' group may only traverse it
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (0, NOGROUP, 0o710))
            st = os.lstat(socks[0])
            # born with its owner and mode (umask and fsgid at bind): no
            # chown or chmod by name
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (0, NOGROUP, 0o660))
        finally:
            srv.stop()
        self.assertFalse(os.path.exists(d), 'private socket directory left behind')

    def test_runtime_directory_is_preferred(self):
        # systemd's RuntimeDirectory= (/run/portico) rather than tmp_dir
        rt = os.path.join(self.d, 'rt')
        os.mkdir(rt, 0o755)
        app = os.path.join(self.d, 'hello-fcgi')
        shutil.copy(HELLO, app)
        os.chmod(app, 0o755)
        conf = self.conf('''backends = ( { name = "hello"; spawn = { program = "%s"; }; } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; } );
''' % app)
        srv = harness.Server(conf=open(conf).read(), workers=1, error_log=None,
                             env={'RUNTIME_DIRECTORY': rt})
        srv.start()
        try:
            socks = glob.glob(os.path.join(rt, 'portico-%d-*' % srv.pid, 'hello.sock'))
            self.assertEqual(len(socks), 1, os.listdir(rt))
            r = harness.fetch(srv.port, 'GET', '/hello/')
            self.assertEqual(r.status, 200, self.error_log())
        finally:
            srv.stop()
        self.assertEqual(os.listdir(rt), [])


if __name__ == '__main__':
    harness.main()
