"""t_inherit.py: option inheritance (location <- vhost <- top level) is
resolved when the configuration is loaded, so a reload that changes a
top-level value reaches every location that does not set its own, and
leaves alone those that do."""

import http.client
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

CONF = '''
workers = 1;
listen = [ "127.0.0.1:@PORT@" ];
root = "@ROOT@";
dir_listing = @TOP@;
allow_dotfiles = @TOP@;
locations = (
  { prefix = "/pub/"; },
  { prefix = "/own/"; dir_listing = false; allow_dotfiles = false; }
);
'''


class Inherit(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(conf='# filled below', docroot=False, workers=None, listen=[])
        self.root = os.path.join(self.srv.tmpdir, 'www')
        for d in ('pub', 'own', 'top'):
            os.makedirs(os.path.join(self.root, d))
            with open(os.path.join(self.root, d, 'file.txt'), 'w') as f:
                f.write('in %s\n' % d)
            with open(os.path.join(self.root, d, '.env'), 'w') as f:
                f.write('secret of %s\n' % d)
        self.srv.conf = self.text('false')
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def text(self, top):
        return CONF.replace('@ROOT@', self.root).replace('@TOP@', top)

    def get(self, path):
        c = http.client.HTTPConnection('127.0.0.1', self.srv.port, timeout=30)
        try:
            c.request('GET', path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def test_reload_of_a_top_level_value_reaches_locations_that_do_not_set_it(self):
        # generation one: listing and dotfiles off everywhere
        for d in ('/pub/', '/own/', '/top/'):
            self.assertNotEqual(self.get(d)[0], 200, d)
            self.assertEqual(self.get(d + '.env')[0], 404, d)
            self.assertEqual(self.get(d + 'file.txt')[0], 200, d)
        old = set(self.srv.worker_pids())
        with open(self.srv.conf_path, 'w') as f:
            f.write(harness.root_user(self.text('true').replace('@PORT@', str(self.srv.port))))
        self.srv.signal(signal.SIGHUP)
        # the old worker may answer a while longer: wait until it is gone
        self.assertTrue(harness.Server.wait_for(
            lambda: old and not (old & set(self.srv.worker_pids())) and self.srv.worker_pids(),
            timeout=60), self.srv.stderr_text()[-2000:])
        # the silent prefix and the implicit "/" take the new top-level value
        for d in ('/pub/', '/top/'):
            st, body = self.get(d)
            self.assertEqual(st, 200, d)
            self.assertIn(b'file.txt', body)
            self.assertEqual(self.get(d + '.env'), (200, ('secret of %s\n' % d[1:-1]).encode()))
        # the location that says false keeps saying it
        self.assertNotEqual(self.get('/own/')[0], 200)
        self.assertEqual(self.get('/own/.env')[0], 404)


if __name__ == '__main__':
    harness.main()
