#!/usr/bin/python3
"""t_phases3.py: request phases after an internal redirect, server-level
rewrites and the cache of verified credentials, over real sockets.

Covered: a bcrypt password met after an internal redirect (try_files, a
rewrite with "last", a CGI local redirect) is verified by the worker's
helper thread like one met at once, so the one worker (-w 1) answers
another client meanwhile: the order is shown by the server's own debug line
(the password handed to the thread) and the other client's complete answer
while the first has none; the right password after each kind of redirect
gets the file; verified credentials remembered, and a password changed in
the file refused as soon as the file is read again; the verifying thread runs 10 nicer than the loop, under SCHED_BATCH
(the loop has the CPU first); server-level rewrites (top level and vhost,
before the location is chosen, once per request); regex_match_limit and
regex_depth_limit, and the once-a-second throttle of the limit's log line.
Nothing asserts on timings: waits poll with generous
timeouts."""

import base64
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

HTPASSWD = shutil.which('htpasswd')


def basic(user, pw):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, pw)).encode()).decode()


def send(port, path, headers=()):
    s = harness.connect(port, timeout=120)
    hdrs = ''.join('%s: %s\r\n' % kv for kv in headers)
    s.sendall(('GET %s HTTP/1.1\r\nHost: a\r\n%sConnection: close\r\n\r\n' %
               (path, hdrs)).encode())
    return s


def get(port, path, headers=()):
    s = send(port, path, headers)
    data, _ = harness.recv_until_close(s, 120)
    s.close()
    return harness.read_response(data) if data else None


def htpasswd(path, user, pw, cost, create=False):
    subprocess.run([HTPASSWD, '-bB' + ('c' if create else ''), '-C', str(cost), path, user, pw],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@unittest.skipUnless(HTPASSWD, 'needs htpasswd (apache2-utils)')
class SlowHashAfterRedirect(unittest.TestCase):
    """/slow/ asks for a password; /tf/ (try_files), /rw/ (rewrite last)
    and a CGI's local redirect lead there internally."""

    HANDED = r'password of user "%s" handed to the verifying thread'

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-phases3-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        ht = os.path.join(cls.base, 'htpasswd')
        # cost 14: the better part of a second of CPU, so the order shown
        # below holds with a wide margin on a loaded machine
        htpasswd(ht, 'slow', 'pw-slow', 14, create=True)
        for u in ('r1', 'r2', 'r3'):
            htpasswd(ht, u, 'pw-' + u, 5)  # bcrypt is always handed to the thread
        cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cgi)
        with open(os.path.join(cgi, 'to-slow.cgi'), 'w') as f:
            f.write('#!/bin/sh\nprintf "Location: /slow/f.txt\\n\\n"\n')
        os.chmod(os.path.join(cgi, 'to-slow.cgi'), 0o755)
        conf = '''
log_level = "debug";
locations = (
  { prefix = "/slow/"; auth_basic = "S"; auth_basic_user_file = "%(ht)s"; },
  { prefix = "/tf/"; try_files = [ "$uri", "/slow/f.txt" ]; },
  { prefix = "/rw/"; rewrite = [ "^/rw/(.*)$ /slow/$1 last" ]; },
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%(cgi)s"; }
);
''' % {'ht': ht, 'cgi': cgi}
        harness.start_class_server(cls, conf=conf, workers=1)
        cls.srv.write_file('slow/f.txt', 'slow secret\n')
        cls.srv.write_file('pub.txt', 'public\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def handed(self, user):
        return len(re.findall(self.HANDED % user, self.srv.stderr_text()))

    def other_client_first(self, path):
        for attempt in range(3):
            before = self.handed('slow')
            # a wrong password: never cached, so every attempt verifies anew
            a = send(self.port, path, [('Authorization', basic('slow', 'wrong%d' % attempt))])
            # ordering: the worker has read A and handed its password over;
            # a worker verifying in its loop never says so (and answers
            # nobody until it is done)
            ok = harness.Server.wait_for(lambda: self.handed('slow') > before, 60)
            self.assertTrue(ok, 'the password after %s was not verified off the loop: %s'
                            % (path, self.srv.stderr_text()[-1500:]))
            r = get(self.port, '/pub.txt')
            self.assertEqual((r.status, r.body), (200, b'public\n'))
            a.setblocking(False)
            try:
                early = a.recv(1)
            except BlockingIOError:
                early = b''
            a.setblocking(True)
            a.settimeout(120)
            data, _ = harness.recv_until_close(a, 120)
            a.close()
            self.assertTrue((early + data).startswith(b'HTTP/1.1 401'), (early + data)[:300])
            if early == b'':
                return
        self.fail('after %s, A was answered before B three times' % path)

    def test_try_files_redirect_verifies_off_the_loop(self):
        self.other_client_first('/tf/missing')

    def test_rewrite_last_verifies_off_the_loop(self):
        self.other_client_first('/rw/f.txt')

    def test_cgi_local_redirect_verifies_off_the_loop(self):
        self.other_client_first('/cgi-bin/to-slow.cgi')

    def test_verifying_thread_yields_to_the_loop(self):
        # after a verification the worker has its verifying thread, which
        # runs 10 nicer than the loop under SCHED_BATCH: the loop has the CPU first
        r = get(self.port, '/slow/f.txt', [('Authorization', basic('slow', 'nice'))])
        self.assertEqual(r.status, 401)
        threads = []
        for pid in self.srv.worker_pids():
            for tid in sorted(os.listdir('/proc/%d/task' % pid), key=lambda t: t != str(pid)):
                with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                    st = f.read().rsplit(')', 1)[1].split()
                # fields after "comm": nice is the 19th of stat, policy the 41st
                threads.append((int(st[19 - 3]), int(st[41 - 3])))
        loop = threads[0]  # the worker's main thread (its tid is its pid): the loop
        self.assertEqual(loop[1], 0, 'the loop stays SCHED_OTHER: %r' % threads)
        self.assertIn((min(loop[0] + 10, 19), 3), threads,
                      'no thread 10 nicer than the loop, SCHED_BATCH: %r' % threads)

    def test_right_password_after_each_redirect(self):
        for user, path in (('r1', '/tf/missing'), ('r2', '/rw/f.txt'),
                           ('r3', '/cgi-bin/to-slow.cgi')):
            r = get(self.port, path, [('Authorization', basic(user, 'pw-' + user))])
            self.assertEqual((r.status, r.body), (200, b'slow secret\n'), path)
            self.assertEqual(self.handed(user), 1, 'verified by the thread once: ' + user)
            # and without a password: the challenge, after the redirect too
            r = get(self.port, path)
            self.assertEqual(r.status, 401, path)
            self.assertTrue(r.header('WWW-Authenticate'))



@unittest.skipUnless(HTPASSWD, 'needs htpasswd (apache2-utils)')
class RememberedCredentials(unittest.TestCase):
    """Verified credentials are remembered by the worker (bcrypt once per
    user and password), under a key that includes the stored hash: a
    password changed in the file is refused as soon as the file is read
    again, though the old one was remembered."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-phases3-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.ht = os.path.join(cls.base, 'htpasswd')
        htpasswd(cls.ht, 'ann', 'old-pw', 5, create=True)
        htpasswd(cls.ht, 'bob', 'bob-pw', 5)
        conf = ('log_level = "debug";\nlocations = ( { prefix = "/p/"; auth_basic = "P"; '
                'auth_basic_user_file = "%s"; } );\n' % cls.ht)
        harness.start_class_server(cls, conf=conf, workers=1)
        cls.srv.write_file('p/f.txt', 'private\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def status(self, user, pw):
        return get(self.port, '/p/f.txt', [('Authorization', basic(user, pw))]).status

    def handed(self, user):
        return len(re.findall(r'password of user "%s" handed to the verifying thread' % user,
                              self.srv.stderr_text()))

    def test_changed_password_refused_once_the_file_is_read(self):
        self.assertEqual([self.status('ann', 'old-pw') for _ in range(3)], [200] * 3)
        self.assertEqual(self.handed('ann'), 1, 'bcrypt once, then remembered')
        tmp = self.ht + '.new'
        htpasswd(tmp, 'ann', 'new-pw', 5, create=True)
        htpasswd(tmp, 'bob', 'bob-pw', 5)
        os.rename(tmp, self.ht)
        # the file is looked at at most once a second: poll until the new
        # password is taken, then the remembered old one must be refused
        ok = harness.Server.wait_for(lambda: self.status('ann', 'new-pw') == 200, 30)
        self.assertTrue(ok, 'the new password never took effect')
        self.assertEqual(self.status('ann', 'old-pw'), 401,
                         'a remembered password outlived its change in the file')
        self.assertEqual(self.status('ann', 'new-pw'), 200)


class ServerRewrite(unittest.TestCase):
    """rewrite at the top level (inherited by vhosts) and in a vhost, run
    before the location is chosen."""

    @classmethod
    def setUpClass(cls):
        conf = '''
rewrite = [ "^/old/(.*)$ /new/$1 permanent", "^/top/(.*)$ /t/$1 last",
            "^/sneak/(.*)$ /private/$1 last", "^/ext/(.*)$ https://example.org/$1" ];
locations = (
  { prefix = "/t/"; return = "200 top $uri $request_uri"; },
  { prefix = "/private/"; access = [ "deny all" ]; },
  { prefix = "/tf/"; try_files = [ "$uri", "/old/fallback.txt" ]; }
);
vhosts = (
  { names = [ "v.test" ];
    rewrite = [ "^/a/(.*)$ /b/$1", "^/b/(.*)$ /c/$1 last", "^/c/(.*)$ /never/$1" ];
    locations = ( { prefix = "/c/"; return = "200 c $uri $request_uri"; },
                  { regex = "^/never/"; return = "200 never"; } ); },
  { names = [ "off.test" ]; rewrite = [ ]; },
  { names = [ "*" ]; }
);
'''
        harness.start_class_server(cls, conf=conf)
        cls.srv.write_file('old/fallback.txt', 'fallback\n')
        cls.srv.write_file('old/x.txt', 'old x\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def req(self, target, host='a.test'):
        s = harness.connect(self.port, timeout=30)
        s.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' %
                   (target, host)).encode())
        data, _ = harness.recv_until_close(s, 30)
        s.close()
        return harness.read_response(data)

    def test_redirects_keep_the_query(self):
        r = self.req('/old/x.txt?q=1')
        self.assertEqual((r.status, r.header('Location')), (301, '/new/x.txt?q=1'))
        r = self.req('/ext/p')
        self.assertEqual((r.status, r.header('Location')), (302, 'https://example.org/p'))

    def test_location_chosen_after_the_rewrite(self):
        # /top/ has no location of its own: the rewritten path's is used
        r = self.req('/top/y')
        self.assertEqual((r.status, r.body), (200, b'top /t/y /top/y\n'))

    def test_new_location_phases_apply(self):
        self.assertEqual(self.req('/sneak/f.txt').status, 403)

    def test_vhost_rules_chain_until_last(self):
        r = self.req('/a/z', host='v.test')
        self.assertEqual((r.status, r.body), (200, b'c /c/z /a/z\n'))
        # the vhost's own list replaces the top level's
        self.assertEqual(self.req('/old/x.txt', host='v.test').status, 200)

    def test_empty_list_turns_inherited_rules_off(self):
        r = self.req('/old/x.txt', host='off.test')
        self.assertEqual((r.status, r.body), (200, b'old x\n'))

    def test_not_again_after_an_internal_redirect(self):
        # try_files falls back to /old/fallback.txt: served, not redirected
        r = self.req('/tf/missing')
        self.assertEqual((r.status, r.body), (200, b'fallback\n'))

    def test_errors_name_the_line(self):
        d = tempfile.mkdtemp(prefix='portico-phases3-')
        self.addCleanup(shutil.rmtree, d, True)
        p = os.path.join(d, 'p.conf')
        for conf, needle in (
                ('rewrite = [\n "^/(x /y" ];\n', 'p.conf:3: rewrite:'),
                ('vhosts = ( { names = [ "a" ];\n rewrite = "^/x y"; } );\n',
                 "p.conf:3: rewrite '^/x y': the replacement must start with '/'")):
            with open(p, 'w') as f:
                f.write(harness.root_user('root = "%s";\n%s' % (d, conf)))
            r = subprocess.run([harness.PORTICO, '-t', '-c', p], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(needle, r.stdout.decode())



class RegexLimits(unittest.TestCase):
    """regex_match_limit: a match that needs more steps gives up (a
    non-match, logged); the log line comes at most once a second, the next
    one saying that more were not logged."""

    @classmethod
    def setUpClass(cls):
        conf = '''
regex_match_limit = 1000;
locations = (
  { regex = "^/m/(?:a|aa)+z|^/m/"; return = "200 matched"; },
  { regex = "^/evil/(a|aa)+$"; return = "200 evil"; }
);
'''
        harness.start_class_server(cls, conf=conf)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_lower_match_limit_gives_up(self):
        # a few thousand steps: a match under the default 100000 (unit test)
        line = r"regex '\^/m/[^']*' gave up on a path of 19 bytes"

        def gave_up():
            # the line may wait for the once-a-second throttle (another test)
            self.assertEqual(get(self.port, '/m/' + 'a' * 16).status, 404,
                             'the regex gave up: no location')
            return re.search(line, self.srv.stderr_text())
        self.assertTrue(harness.Server.wait_for(gave_up, 60, interval=0.3),
                        self.srv.stderr_text()[-2000:])
        self.assertEqual(get(self.port, '/m/a').status, 200, 'an easy path still matches')

    def test_limit_log_line_at_most_once_a_second(self):
        evil = '/evil/' + 'a' * 60 + 'b'
        line = r"regex '\^/evil/\(a\|aa\)\+\$' gave up"
        n = 50
        s = harness.connect(self.port, timeout=60)
        s.sendall(('GET %s HTTP/1.1\r\nHost: a\r\n\r\n' % evil).encode() * n)
        rs = harness.send_recv_responses(s, n)
        s.close()
        self.assertEqual([r.status for r in rs], [404] * n)
        self.assertTrue(self.srv.wait_for_log(line))
        logged = len(re.findall(line, self.srv.stderr_text()))
        # 50 hits logged once a second would take 49 seconds: far fewer lines
        self.assertLess(logged, n // 2, 'not throttled: %d lines' % logged)
        # a later hit, a second on, says that some were not logged
        more = line + r"[^\n]*, and more since the last line"

        def hit_and_look():
            get(self.port, evil)
            return re.search(more, self.srv.stderr_text())
        self.assertTrue(harness.Server.wait_for(hit_and_look, 60, interval=0.3),
                        self.srv.stderr_text()[-2000:])

    def test_errors_name_the_line(self):
        d = tempfile.mkdtemp(prefix='portico-phases3-')
        self.addCleanup(shutil.rmtree, d, True)
        p = os.path.join(d, 'p.conf')
        for conf, needle in (
                ('regex_match_limit = 5;\n', "p.conf:2: 'regex_match_limit' must be between 100"),
                ('regex_depth_limit = 0;\n', "p.conf:2: 'regex_depth_limit' must be between 10")):
            with open(p, 'w') as f:
                f.write(harness.root_user('root = "%s";\n%s' % (d, conf)))
            r = subprocess.run([harness.PORTICO, '-t', '-c', p], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(needle, r.stdout.decode())


if __name__ == '__main__':
    harness.main()
