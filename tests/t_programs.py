#!/usr/bin/env python3
"""t_programs.py: what a hostile program (a CGI script, a PHP file) can do
to the server that runs it, one row per attack, each contained (the matrix
of SECURITY.md, "Hostile programs"). Rows whose mechanism has its own home
are tested there and named in SECURITY.md; this file holds the rest:
flooding the error log through stderr (CGI pipe and FastCGI STDERR
records), where every line is either logged or counted as dropped, and the
log grows by at most PT_ERRLINES_PER_SEC lines a second per program; and
the fds a program holds (none of the server's, even one the server
inherited without close-on-exec, for CGI and spawned FastCGI apps)."""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

PER_SEC = 50  # src/errlines.h PT_ERRLINES_PER_SEC
FLOOD = 3000

FLOOD_CGI = r'''#!/bin/sh
# QUERY_STRING=TAG: FLOOD numbered lines on stderr at once, then a response
i=0
while [ $i -lt %d ]; do echo "flood-$QUERY_STRING-$i"; i=$((i+1)); done >&2
printf 'Content-Type: text/plain\n\nflooded\n'
''' % FLOOD

LONG_CGI = r'''#!/bin/sh
# one 100 KiB stderr "line" without a newline: logged in pieces, rate-limited
head -c 102400 /dev/zero | tr '\0' 'x' >&2
printf 'Content-Type: text/plain\n\nlong\n'
'''

FLOOD_PHP = '''<?php
$t = preg_replace('/[^A-Za-z0-9]/', '', $_GET['t'] ?? 'x');
for ($i = 0; $i < %d; $i++) { error_log("flood-$t-$i"); }
header('Content-Type: text/plain');
echo "flooded\\n";
''' % FLOOD

PROBE_CGI = r"""#!/bin/sh
# what a program running as the workers' user can reach of its worker and
# of the root master: one "name: ok|denied" line each
printf 'Content-Type: text/plain\n\n'
master=$(sed 's/.*) //' /proc/$PPID/stat | cut -d' ' -f2)
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name: ok"; else echo "$name: denied"; fi; }
try master-pid-known test "$master" -gt 1
try signal-master kill -0 "$master"
try master-environ cat /proc/$master/environ
try master-fds ls /proc/$master/fd
try worker-environ cat /proc/$PPID/environ
try worker-fds ls /proc/$PPID/fd
try worker-mem dd if=/proc/$PPID/mem of=/dev/null bs=1 count=1 skip=4096
try signal-worker kill -0 "$PPID"
try append-access-log sh -c ': >> "$1"' - "$LOGS/access.log"
try append-error-log sh -c ': >> "$1"' - "$LOGS/error.log"
"""

NOBODY_CONF = '''
user = "nobody";
group = "nogroup";
@CGI_USER@
workers = 1;
access_log = "@LOGS@/access.log";
error_log = "@LOGS@/error.log";
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@ROOT@/cgi-bin";
                env = [ "LOGS=@LOGS@" ]; } );
'''


def account(test, log, tag_, started):
    """Lines of one flood in the log (only this program's log lines):
    (logged, dropped). Every line is one or the other, and no more than
    PER_SEC a second were logged."""
    logged = re.findall(r'flood-%s-(\d+)' % tag_, log)
    drop_lines = [ln for ln in log.splitlines() if 'stderr lines dropped (rate limit)' in ln]
    dropped = sum(int(re.search(r'(\d+) stderr lines dropped', ln).group(1)) for ln in drop_lines)
    test.assertEqual(len(logged) + dropped, FLOOD,
                     'lines neither logged nor counted: %d logged, %d dropped'
                     % (len(logged), dropped))
    test.assertEqual(len(set(logged)), len(logged), 'a line logged twice')
    elapsed = time.monotonic() - started
    test.assertLessEqual(len(logged), PER_SEC * (int(elapsed) + 2),
                         'more than %d lines a second reached the log' % PER_SEC)
    test.assertGreater(dropped, 0)
    return len(logged), dropped


class CgiStderr(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-prog-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cgi)
        for name, text in (('flood.cgi', FLOOD_CGI), ('long.cgi', LONG_CGI)):
            with open(os.path.join(cgi, name), 'w') as f:
                f.write(text)
            os.chmod(os.path.join(cgi, name), 0o755)
        harness.start_class_server(cls, '--cgi', '/cgi-bin/=' + cgi)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_stderr_flood_is_rate_limited_and_every_line_logged_or_counted(self):
        t = harness.tag()
        started = time.monotonic()
        r = harness.fetch(self.port, 'GET', '/cgi-bin/flood.cgi?' + t)
        self.assertEqual((r.status, r.body), (200, b'flooded\n'))
        # the dropped count comes when the program's stderr ends
        self.assertTrue(self.srv.wait_for_log(r'stderr lines dropped \(rate limit\)[^\n]*', 20),
                        self.srv.stderr_text()[-2000:])
        self.assertTrue(self.srv.wait_for(
            lambda: self._total(t) == FLOOD, 20), 'flood not accounted for')
        log = '\n'.join(ln for ln in self.srv.stderr_text().splitlines() if 'flood.cgi' in ln)
        account(self, log, t, started)

    def _total(self, t):
        log = self.srv.stderr_text()
        n = len(re.findall(r'flood-%s-\d+' % t, log))
        for m in re.finditer(r'cgi [^\n]*flood\.cgi[^\n]*: (\d+) stderr lines dropped', log):
            n += int(m.group(1))  # one flood per class run at a time
        return n

    def test_a_line_without_newline_is_cut_and_rate_limited(self):
        before = self.srv.stderr_text()
        r = harness.fetch(self.port, 'GET', '/cgi-bin/long.cgi')
        self.assertEqual((r.status, r.body), (200, b'long\n'))
        self.assertTrue(self.srv.wait_for(
            lambda: 'long.cgi' in self.srv.stderr_text()[len(before):]
            and 'dropped' in self.srv.stderr_text()[len(before):], 20))
        new = self.srv.stderr_text()[len(before):]
        pieces = [ln for ln in new.splitlines() if 'long.cgi' in ln and 'xxxx' in ln]
        # 100 KiB in 1 KiB pieces: at most PER_SEC per second reach the log
        self.assertGreater(len(pieces), 0)
        self.assertLessEqual(len(pieces), PER_SEC * 3)
        for ln in pieces:
            self.assertLessEqual(max(len(run) for run in re.findall('x+', ln)), 1024)
        m = re.search(r'long\.cgi[^\n]*: (\d+) stderr lines dropped', new)
        self.assertIsNotNone(m, new[-1500:])
        self.assertEqual(len(pieces) + int(m.group(1)), 100)


@phpfpm.skip_unless_php_fpm
class PhpStderr(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-prog-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        www = os.path.join(cls.base, 'www')
        os.mkdir(www)
        with open(os.path.join(www, 'flood.php'), 'w') as f:
            f.write(FLOOD_PHP)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', listen='unix', max_children=2)])
        cls.addClassCleanup(cls.fpm.stop)
        cls.fpm.start()
        harness.start_class_server(cls, '--fastcgi', '.php=' + cls.fpm.pool('www').address,
                                   docroot=www)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_php_stderr_flood_is_rate_limited_and_every_line_logged_or_counted(self):
        t = harness.tag().replace('-', '')
        started = time.monotonic()
        r = harness.fetch(self.port, 'GET', '/flood.php?t=' + t)
        self.assertEqual((r.status, r.body), (200, b'flooded\n'), r.raw[:300])
        ok = self.srv.wait_for(
            lambda: re.search(r'stderr lines dropped \(rate limit\)[^\n]*flood\.php\?t=' + t,
                              self.srv.stderr_text()), 20)
        self.assertTrue(ok, self.srv.stderr_text()[-2000:])
        # PHP-FPM joins its messages with "; " into one stream without
        # newlines: the log gets 1 KiB pieces, and the rest is counted
        log = [ln for ln in self.srv.stderr_text().splitlines() if 't=' + t in ln]
        pieces = [ln for ln in log if ' stderr: ' in ln]
        m = [re.search(r'(\d+) stderr lines dropped', ln) for ln in log]
        dropped = sum(int(x.group(1)) for x in m if x)
        self.assertGreater(dropped, 0)
        self.assertGreater(len(pieces), 0)
        self.assertLessEqual(len(pieces), PER_SEC * (int(time.monotonic() - started) + 2))


@unittest.skipUnless(os.geteuid() == 0, 'needs root: the master must be able to change users')
class ReachOfAProgram(unittest.TestCase):
    """Master as root, workers and programs as nobody: a program can neither
    signal the master nor read its memory, environment or fds, nor those of
    its worker (workers that changed their ids are not dumpable, so
    ptrace-class access is refused even for the same user)."""

    CGI_USER = ''
    # what a program may not do without cgi_user (it is the workers' user)
    DENIED = ('signal-master', 'master-environ', 'master-fds', 'worker-environ', 'worker-fds',
              'worker-mem')

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(workers=None, conf=NOBODY_CONF, error_log=None)
        os.chmod(cls.srv.tmpdir, 0o755)
        cls.logs = os.path.join(cls.srv.tmpdir, 'logs')
        os.mkdir(cls.logs, 0o755)
        os.chmod(cls.srv.docroot, 0o755)
        p = cls.srv.write_file('cgi-bin/probe.cgi', PROBE_CGI)
        os.chmod(p, 0o755)
        os.chmod(os.path.dirname(p), 0o755)
        cls.srv.conf = cls.srv.conf.replace('@ROOT@', cls.srv.docroot).replace(
            '@LOGS@', cls.logs).replace('@CGI_USER@', cls.CGI_USER)
        cls.srv.start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_a_program_cannot_reach_the_master_or_its_worker(self):
        r = harness.fetch(self.port, 'GET', '/cgi-bin/probe.cgi')
        self.assertEqual(r.status, 200, r.raw[:300])
        got = dict(ln.split(': ') for ln in r.body.decode().splitlines() if ': ' in ln)
        self.assertEqual(got.pop('master-pid-known'), 'ok', r.body)
        self.assertEqual({k: got.get(k) for k in self.DENIED},
                         {k: 'denied' for k in self.DENIED}, r.body)


class ReachOfAProgramUnderCgiUser(ReachOfAProgram):
    """With cgi_user (the recommended setup) a program also cannot signal
    its worker, nor write the logs (the workers' user owns them)."""
    CGI_USER = 'cgi_user = "daemon";'
    DENIED = ReachOfAProgram.DENIED + ('signal-worker', 'append-access-log', 'append-error-log')


BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(os.path.dirname(__file__), '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
STRAY_FD = 1500  # above the 1024 fds the spawn used to close

# started by whoever runs portico, with an fd left open (no close-on-exec)
STRAY_WRAPPER = '''
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.dup2(fd, %d, inheritable=True)
os.close(fd)
os.execv(sys.argv[2], sys.argv[2:])
''' % STRAY_FD

FDS_CGI = r'''#!/bin/sh
printf 'Content-Type: text/plain\n\n'
for f in /proc/$$/fd/*; do echo "${f##*/} $(readlink "$f")"; done
'''


class StrayFdServer(harness.Server):
    """portico started with an inherited fd STRAY_FD open on a file."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.stray = os.path.join(self.tmpdir, 'stray-inherited-file')
        open(self.stray, 'w').close()

    def _cmd(self, port):
        return [sys.executable, '-c', STRAY_WRAPPER, self.stray] + super()._cmd(port)


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class InheritedFds(unittest.TestCase):
    """A program holds none of the server's fds, not even one the server
    inherited without close-on-exec from whoever started it, however high
    its number: CGI programs and spawned FastCGI apps alike."""

    @classmethod
    def setUpClass(cls):
        cls.srv = StrayFdServer(workers=1, conf='''
backends = ( { name = "hello"; spawn = { program = "%s"; processes = 1; }; } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; },
              { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@ROOT@/cgi-bin"; } );
''' % HELLO)
        p = cls.srv.write_file('cgi-bin/fds.cgi', FDS_CGI)
        os.chmod(p, 0o755)
        cls.srv.conf = cls.srv.conf.replace('@ROOT@', cls.srv.docroot)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def fds(self, pid):
        d = '/proc/%d/fd' % pid
        out = {}
        for n in os.listdir(d):
            try:
                out[int(n)] = os.readlink(os.path.join(d, n))
            except OSError:
                pass
        return out

    def test_the_master_holds_the_stray_fd(self):
        # else the tests below would prove nothing
        self.assertEqual(self.fds(self.srv.pid).get(STRAY_FD), self.srv.stray)

    def test_spawned_fastcgi_app_holds_none(self):
        r = harness.fetch(self.srv.port, 'GET', '/hello/')
        self.assertEqual(r.status, 200, r.raw[:300])
        m = re.match(rb'^Hello from FastCGI: pid (\d+)', r.body)
        self.assertTrue(m, r.body)
        fds = self.fds(int(m.group(1)))
        self.assertNotIn(self.srv.stray, fds.values(), fds)
        # 0 its listening socket, 1 /dev/null, 2 the server's stderr; above
        # that only what it opened itself (the accepted connection)
        self.assertTrue(fds[0].startswith('socket:'), fds)
        self.assertEqual(fds[1], '/dev/null', fds)
        self.assertEqual({n: t for n, t in fds.items() if n > 2 and not t.startswith('socket:')},
                         {}, fds)

    def test_cgi_program_holds_none(self):
        r = harness.fetch(self.srv.port, 'GET', '/cgi-bin/fds.cgi')
        self.assertEqual(r.status, 200, r.raw[:300])
        fds = dict(ln.split(' ', 1) for ln in r.body.decode().splitlines() if ' ' in ln)
        # (the shell's own fds aside: t_cgi FdHygiene checks the rest)
        self.assertNotIn(self.srv.stray, fds.values(), r.body)
        self.assertNotIn(str(STRAY_FD), fds, r.body)


if __name__ == '__main__':
    harness.main()
