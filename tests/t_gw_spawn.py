"""t_gw_spawn.py: a backend's spawn (the master runs the program with the
listening socket on its fd 0, lighttpd's bin-path) for SCGI and uwsgi
locations, where it makes sense: uWSGI takes an inherited socket on fd 0
("uwsgi socket 0 inherited") and speaks uwsgi on it, or SCGI with
--protocol scgi. Debian's uWSGI runs tests/lib/wsgi_app.py.

Covered: a request through each protocol reaches the spawned uWSGI and is
answered with the CGI variables (SCGI=1 over SCGI); after portico stops,
no uWSGI process is left.

No test asserts a timing: waits are generous upper bounds."""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
from appserver import APP, UWSGI, HAVE_UWSGI  # noqa: E402

# --die-on-term: uWSGI's master takes SIGTERM for a reload otherwise
# (portico's stop would then need its KILL)
ARGS = '"--plugin", "python3", "--wsgi-file", "%s", "--master", "--processes", "1", ' \
    '"--die-on-term", "--buffer-size", "65535"' % APP

CONF = '''
backends = (
  { name = "uw"; spawn = { program = "@UWSGI@"; args = [ @ARGS@ ];
                           env = [ "WSGI_TEST_DIR=@DIR@" ]; }; },
  { name = "sc"; spawn = { program = "@UWSGI@"; args = [ @ARGS@, "--protocol", "scgi" ];
                           env = [ "WSGI_TEST_DIR=@DIR@" ]; }; }
);
locations = (
  { prefix = "/uw/"; handler = "uwsgi"; backend = "uw"; },
  { prefix = "/sc/"; handler = "scgi"; backend = "sc"; }
);
'''


def app_procs(base):
    """pids of the processes started with WSGI_TEST_DIR=base (the spawned
    uWSGI master and its workers, wherever they were reparented)."""
    want = b'WSGI_TEST_DIR=' + base.encode() + b'\0'
    out = set()
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % d, 'rb') as f:
                if want in f.read() + b'\0':
                    out.add(int(d))
        except OSError:
            continue
    return out


@unittest.skipUnless(HAVE_UWSGI, 'uwsgi and uwsgi-plugin-python3 are not installed')
class SpawnUwsgi(unittest.TestCase):

    def test_spawned_uwsgi_serves_uwsgi_and_scgi_and_is_gone_after_stop(self):
        base = tempfile.mkdtemp(prefix='pt-gwspawn-')
        self.addCleanup(shutil.rmtree, base, True)
        os.chmod(base, 0o755)
        conf = (CONF.replace('@ARGS@', ARGS).replace('@UWSGI@', UWSGI)
                .replace('@DIR@', base))
        srv = harness.Server(conf=conf, workers=1)
        self.addCleanup(shutil.rmtree, srv.tmpdir, True)
        srv.start()
        stopped = False
        try:
            for prefix, scgi in (('/uw/', None), ('/sc/', '1')):
                # the spawned server may still be loading the application
                ok = harness.Server.wait_for(
                    lambda: harness.request(srv.port, 'GET', prefix + 'e?x=1',
                                            timeout=30)[0] == 200, 60, 0.5)
                self.assertTrue(ok, srv.stderr_text()[-3000:])
                st, _, data = harness.request(srv.port, 'GET', prefix + 'e?x=1', timeout=30)
                e = json.loads(data)
                self.assertEqual((e['REQUEST_METHOD'], e['QUERY_STRING'], e.get('SCGI')),
                                 ('GET', 'x=1', scgi))
            self.assertTrue(app_procs(base), 'no uWSGI running')
            rc = srv.stop()
            stopped = True
            self.assertEqual(rc, 0)
            self.assertTrue(harness.Server.wait_for(lambda: not app_procs(base), 30),
                            'left running: %s' % app_procs(base))
        finally:
            if not stopped:
                srv.stop()


if __name__ == '__main__':
    harness.main()
