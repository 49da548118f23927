#!/usr/bin/env python3
"""reload_soak.py: the operator's soak of the reload issue, by hand (not in
the suite: it runs for minutes). Keep-alive clients on a shell CGI, the
libfcgi sample app, PHP-FPM (when installed) and a static file, each
sending its next request as soon as it has read a response, while the
server gets a SIGHUP every INTERVAL seconds; every request is accounted for.
Uses t_reload_ka.py's load and set-up. From a build directory:

    PT_BUILDDIR=$PWD python3 ../tests/soak/reload_soak.py [SECONDS [INTERVAL [CLIENTS]]]

Prints the totals and exits 0 when no request failed or was answered wrongly."""

import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', 'lib'))
import t_reload_ka  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 120
INTERVAL = float(sys.argv[2]) if len(sys.argv) > 2 else 10
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 32


class Soak(t_reload_ka.GracefulKeepAlive):
    def runTest(self):
        kinds = ['/cgi-bin/hello-sh.cgi', '/fcgi/hello', '/a.txt'] + (
            ['/hello.php'] if self.php else [])
        paths = [kinds[i % len(kinds)] for i in range(CLIENTS)]
        ld = t_reload_ka.Load(self.srv.port, paths)
        ld.limit = SECONDS + 60
        ld.start()
        end = time.monotonic() + SECONDS
        hups = 0
        while time.monotonic() < end:
            time.sleep(min(INTERVAL, max(0.0, end - time.monotonic())))
            if time.monotonic() < end:
                self.srv.signal(signal.SIGHUP)
                hups += 1
        self.assertTrue(ld.finish(), 'a client thread hung')
        print('%d HUPs in %d s: %s' % (hups, SECONDS, ld.summary()), flush=True)
        self.assertEqual((ld.failed, ld.bad), ([], []))
        self.assertEqual(ld.sent, ld.total())


if __name__ == '__main__':
    r = unittest.TextTestRunner(verbosity=2).run(Soak())
    sys.exit(0 if r.wasSuccessful() else 1)
