"""t_reload.py: configuration reload on SIGHUP. The new configuration is
validated first (an error keeps the old one serving); new workers start,
old workers finish what they are doing and exit; listening sockets survive;
no request is lost while a client keeps requests flowing (counted, never
timed)."""

import http.client
import os
import re
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

CONF = '''
workers = 2;
listen = [ "127.0.0.1:@PORT@" ];
root = "@ROOT@";
limits = { keepalive_timeout = "30s"; };
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; } );
'''

SLOW_CGI = '''#!/bin/sh
sleep "${QUERY_STRING:-2}"
printf 'Content-Type: text/plain\\r\\n\\r\\nslow done\\n'
'''


class Reload(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Server(conf='# filled below', docroot=False, workers=None, listen=[])
        base = self.srv.tmpdir
        self.root = os.path.join(base, 'www')
        self.cgi = os.path.join(base, 'cgi')
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.cgi, exist_ok=True)
        with open(os.path.join(self.root, 'a.txt'), 'w') as f:
            f.write('generation one\n')
        with open(os.path.join(self.cgi, 'slow.cgi'), 'w') as f:
            f.write(SLOW_CGI)
        os.chmod(os.path.join(self.cgi, 'slow.cgi'), 0o755)
        self.srv.conf = CONF.replace('@ROOT@', self.root).replace('@CGI@', self.cgi)
        self.srv.start()
        self.addCleanup(self.srv.stop)
        # the port answers as soon as one worker runs: wait for both, so
        # the "old generation" below is complete
        self.assertTrue(harness.Server.wait_for(lambda: len(self.srv.worker_pids()) == 2,
                                                timeout=30), self.srv.worker_pids())

    def rewrite(self, conf):
        text = conf.replace('@ROOT@', self.root).replace('@CGI@', self.cgi)
        text = text.replace('@PORT@', str(self.srv.port))
        with open(self.srv.conf_path, 'w') as f:
            f.write(harness.root_user(text))

    def get(self, path, timeout=30):
        c = http.client.HTTPConnection('127.0.0.1', self.srv.port, timeout=timeout)
        try:
            c.request('GET', path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def test_hup_applies_a_new_root_and_new_workers_replace_old_ones(self):
        self.assertEqual(self.get('/a.txt'), (200, b'generation one\n'))
        old = set(self.srv.worker_pids())
        root2 = os.path.join(self.srv.tmpdir, 'www2')
        os.makedirs(root2)
        with open(os.path.join(root2, 'a.txt'), 'w') as f:
            f.write('generation two\n')
        self.rewrite(CONF.replace('@ROOT@', root2).replace('workers = 2;', 'workers = 3;'))
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(harness.Server.wait_for(
            lambda: self.get('/a.txt')[1] == b'generation two\n', timeout=30),
            self.srv.stderr_text()[-2000:])
        # the old workers finish and leave; three new ones remain
        self.assertTrue(harness.Server.wait_for(
            lambda: not (old & set(self.srv.worker_pids())) and len(self.srv.worker_pids()) == 3,
            timeout=60), (old, self.srv.worker_pids()))
        self.assertTrue(self.srv.wait_for_log(r'reload', timeout=10))

    def test_a_bad_config_keeps_the_old_one_serving(self):
        self.rewrite(CONF + 'no_such_setting = 1;\n')
        old = set(self.srv.worker_pids())
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(self.srv.wait_for_log(r'reload failed[^\n]*no_such_setting', timeout=20),
                        self.srv.stderr_text()[-2000:])
        self.assertEqual(self.get('/a.txt'), (200, b'generation one\n'))
        self.assertEqual(set(self.srv.worker_pids()), old)
        # and a later good reload still works
        self.rewrite(CONF)
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(harness.Server.wait_for(
            lambda: not (old & set(self.srv.worker_pids())), timeout=30))
        self.assertEqual(self.get('/a.txt'), (200, b'generation one\n'))

    def test_ten_reloads_under_load_lose_no_request(self):
        stop = threading.Event()
        counts = {'ok': 0}
        errors = []
        lock = threading.Lock()

        def client(n):
            c = None
            while not stop.is_set():
                if c is None:
                    c = http.client.HTTPConnection('127.0.0.1', self.srv.port, timeout=30)
                try:
                    c.request('GET', '/a.txt?c=%d' % n)
                    r = c.getresponse()
                    body = r.read()
                    ok = r.status == 200 and body == b'generation one\n'
                    with lock:
                        if ok:
                            counts['ok'] += 1
                        else:
                            errors.append((r.status, body[:100]))
                    if r.will_close:
                        c.close()
                        c = None
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    with lock:
                        errors.append(repr(e))
                    c.close()
                    c = None
            if c:
                c.close()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(10):
                before = counts['ok']
                self.srv.signal(signal.SIGHUP)
                # wait until the reload was done and requests went on
                harness.Server.wait_for(lambda: counts['ok'] > before + 20, timeout=30)
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(errors, [], self.srv.stderr_text()[-3000:])
        self.assertGreater(counts['ok'], 200)
        self.assertEqual(len(re.findall(r'reloaded', self.srv.stderr_text())), 10)

    def test_a_slow_cgi_in_flight_during_hup_completes(self):
        result = {}

        def slow():
            result['r'] = self.get('/cgi-bin/slow.cgi?2', timeout=60)
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        self.srv.signal(signal.SIGHUP)
        t.join(60)
        self.assertEqual(result.get('r'), (200, b'slow done\n'), self.srv.stderr_text()[-2000:])

    def test_a_slow_cgi_in_flight_during_quit_completes(self):
        result = {}

        def slow():
            result['r'] = self.get('/cgi-bin/slow.cgi?2', timeout=60)
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        self.srv.signal(signal.SIGQUIT)
        t.join(60)
        self.assertEqual(result.get('r'), (200, b'slow done\n'), self.srv.stderr_text()[-2000:])

    def test_a_cgi_outliving_shutdown_timeout_is_cut_and_killed_at_quit(self):
        # QUIT waits for in-flight requests only up to limits.shutdown_timeout:
        # then the client connection is cut, the program's process group is
        # killed, and the master still exits 0 with nothing left behind
        self.rewrite(CONF.replace('keepalive_timeout = "30s";',
                                  'keepalive_timeout = "30s"; shutdown_timeout = "2s";'))
        self.srv.signal(signal.SIGHUP)
        self.assertTrue(self.srv.wait_for_log(r'reloaded', timeout=30), self.srv.stderr_text())
        result = {}

        def slow():
            try:
                result['r'] = self.get('/cgi-bin/slow.cgi?1000', timeout=120)
            except (http.client.HTTPException, OSError) as e:
                result['r'] = e
        t = threading.Thread(target=slow)
        t.start()

        def sleeping():
            for pid in self.srv._session_pids():
                try:
                    with open('/proc/%d/cmdline' % pid, 'rb') as f:
                        if f.read() == b'sleep\x001000\x00':
                            return pid
                except OSError:
                    pass
            return None
        self.assertTrue(harness.Server.wait_for(sleeping, timeout=30), 'the CGI never started')
        self.srv.signal(signal.SIGQUIT)
        self.assertTrue(harness.Server.wait_for(lambda: not self.srv.running, timeout=120),
                        'a CGI program held the graceful stop past shutdown_timeout')
        t.join(120)
        self.assertIn('r', result)
        self.assertNotEqual(result['r'], (200, b'slow done\n'))
        # stop() fails on any process of the session left behind
        self.assertEqual(self.srv.stop(), 0)


if __name__ == '__main__':
    harness.main()
