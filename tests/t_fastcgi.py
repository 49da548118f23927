"""t_fastcgi.py: portico's FastCGI gateway against backends that need no PHP:
the deliberately broken Python server of tests/lib/fcgi_bad.py, the libfcgi
sample app cgi-bin/hello-fcgi (spawned by portico and standalone) and
Debian's fcgiwrap running the CGI scripts of tests/cgi/.

Covered: the --fastcgi flag (extension and prefix forms, TCP and Unix
addresses); the params a backend sees (SCRIPT_NAME / PATH_INFO found by
walking the filesystem, 404 without forwarding for a missing script, no
CR/LF/NUL, HTTP_HOST as sent, Authorization, no HTTP_PROXY, CONTENT_LENGTH
of a chunked upload, dir aliases, program and app prefixes, index files);
every fault of fcgi_bad.py with its status and error-log phrase (and the
server keeps serving); the keep-alive pool (reuse counted on the backend,
PHP-FPM style recycling, idle closes); balancing (refused, full Unix
backlog and connect timeout with failover, weights, backup, all down) and
the max_conns / FCGI_MAX_CONNS queue; read_timeout; response
buffering vs streaming (X-Accel-Buffering, SSE) and big bodies; spawn of
hello-fcgi (two processes, respawn, nothing left after stop); the access
log's gateway-time field.

The first two classes check the test tools themselves (fcgi_bad.py and
hello-fcgi through a FastCGI client written here and libfcgi's cgi-fcgi),
so they pass without any gateway in portico.

No test asserts a timing: waits are generous upper bounds."""

import glob
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import fcgi_bad as fb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CGI_SRC = os.path.join(HERE, 'cgi')
BUILDDIR = os.environ.get('PT_BUILDDIR') or os.path.join(HERE, '..')
HELLO = os.path.abspath(os.path.join(BUILDDIR, 'cgi-bin', 'hello-fcgi'))
FCGIWRAP = '/usr/sbin/fcgiwrap'
CGI_FCGI = shutil.which('cgi-fcgi') or '/usr/bin/cgi-fcgi'

REASONS = {
    400: ('Bad Request',), 404: ('Not Found',), 502: ('Bad Gateway',),
    503: ('Service Unavailable',), 504: ('Gateway Timeout',),
}


# -- helpers ----------------------------------------------------------------

tag = harness.tag
recv_until_close = harness.recv_until_close
build_request = harness.build_request


def wait_for(pred, timeout=15, interval=0.05):
    return harness.Server.wait_for(pred, timeout, interval)


def recv_until(s, needle, timeout):
    """Read until needle shows up (or EOF/timeout); returns what was read."""
    data = b''
    deadline = time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        data += b
    return data


def response_of(data, method='GET', lport=None, closed=True):
    resp = harness.read_response(data, method)
    resp.raw = data
    resp.closed = closed
    resp.lport = lport
    return resp


fetch = harness.fetch


def send_only(port, target, rcvbuf=None, timeout=60):
    """Connect and send a GET, read nothing: the socket (closed at cleanup
    by the caller) and its local port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(('127.0.0.1', port))
    s.sendall(build_request('GET', target))
    return s


def read_reply(s, timeout=60):
    data, closed = recv_until_close(s, timeout)
    if not data:
        raise AssertionError('no response (closed=%s)' % closed)
    return response_of(data, 'GET', s.getsockname()[1], closed)


def proc_info(pid):
    """(ppid, sid, state, exe) of a process, None when gone."""
    try:
        with open('/proc/%s/stat' % pid, 'rb') as f:
            data = f.read().decode('ascii', 'replace')
        exe = os.readlink('/proc/%s/exe' % pid)
    except OSError:
        return None
    rest = data[data.rfind(')') + 2:].split()
    return int(rest[1]), int(rest[3]), rest[0], exe


def alive(pid):
    st = proc_info(pid)
    return st is not None and st[2] != 'Z'


def procs_running(exe):
    """Live processes whose executable is exe: {pid: (ppid, sid)}."""
    want = os.path.realpath(exe)
    out = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            st = proc_info(name)
            if st and st[2] != 'Z' and st[3] == want:
                out[int(name)] = (st[0], st[1])
    return out


def kill_quietly(pids, sig=signal.SIGKILL):
    for p in pids:
        try:
            os.kill(p, sig)
        except OSError:
            pass


def wait_connectable(address, timeout=20):
    def ok():
        try:
            fb.FcgiClient(address, timeout=2).close()
            return True
        except OSError:
            return False
    return wait_for(ok, timeout, 0.05)


def stage_cgi_scripts(dest):
    """tests/cgi/* copied to dest with fixed modes (never run from the
    source tree)."""
    os.makedirs(dest)
    for name in sorted(os.listdir(CGI_SRC)):
        src = os.path.join(CGI_SRC, name)
        if os.path.isfile(src) and name != 'outside.cgi':
            shutil.copyfile(src, os.path.join(dest, name))
            os.chmod(os.path.join(dest, name), 0o644 if name.endswith(('.c', '.php')) else 0o755)
    os.mkdir(os.path.join(dest, 'run'))


def parse_nul_env(body):
    """env.cgi's NUL-separated NAME=VALUE body -> (env, meta)."""
    env, meta = {}, {}
    for item in body.split(b'\0'):
        if item:
            k, _, v = item.partition(b'=')
            k, v = k.decode('latin-1'), v.decode('latin-1')
            (meta if k.startswith('.') else env)[k] = v
    return env, meta


def sha(data):
    return hashlib.sha256(data).hexdigest()


# == the tools themselves (no portico) =========================================

class FakeServerSelfTest(unittest.TestCase):
    """fcgi_bad.py behaves as documented, seen from a plain FastCGI client."""

    @classmethod
    def setUpClass(cls):
        cls.fake = fb.FakeFcgiServer(recycle_after=2).start()
        cls.addClassCleanup(cls.fake.stop)

    def setUp(self):
        # handlers of the previous test end when they see its client close
        # (stall, protocol violations...): start from none running, or
        # they count in this test's active/max_active
        self.assertTrue(self.fake.wait_for(lambda: self.fake.active == 0, 30),
                        self.fake.snapshot())
        self.fake.reset()

    def client(self):
        c = fb.FcgiClient(self.fake.address)
        self.addCleanup(c.close)
        return c

    def send(self, uri, body=b'', keep_conn=False, extra=None):
        c = self.client()
        c.send_request(fb.cgi_params(uri, 'POST' if body else 'GET', body, extra), body,
                       keep_conn)
        return c

    def test_ok_echoes_params_and_stdin(self):
        body = os.urandom(70000)
        r = fb.fcgi_request(self.fake.address, '/x/y?mode=ok&a=1', 'POST', body,
                            extra={'HTTP_HOST': 'h.test', 'LONG': 'v' * 300})
        self.assertEqual((r.protocol_status, r.app_status), (fb.REQUEST_COMPLETE, 0))
        status, hdrs, out = r.cgi()
        self.assertEqual(status, 200)
        self.assertIn(('Content-Type', 'application/json'), hdrs)
        j = json.loads(out)
        self.assertEqual(j['params']['HTTP_HOST'], 'h.test')
        self.assertEqual(j['params']['LONG'], 'v' * 300)
        self.assertEqual((j['stdin_len'], j['stdin_sha256']), (len(body), sha(body)))
        self.assertEqual(j['mode'], 'ok')
        (req,) = self.fake.reqs
        self.assertEqual(req.stdin, body)
        self.assertEqual(req.params['QUERY_STRING'], 'mode=ok&a=1')
        self.assertEqual(req.opts, {'a': '1'})

    def test_mode_from_path_segment_and_default(self):
        r = fb.fcgi_request(self.fake.address, '/app/m/huge_padding/rest')
        self.assertEqual(r.cgi()[2], fb.HUGE_PADDING_BODY)
        r = fb.fcgi_request(self.fake.address, '/plain')
        self.assertEqual(json.loads(r.cgi()[2])['mode'], 'ok')
        self.assertEqual([q.mode for q in self.fake.reqs], ['huge_padding', 'ok'])

    def test_keep_conn_keeps_the_connection_and_without_it_closes(self):
        c = self.client()
        for i in range(3):
            r = c.request(fb.cgi_params('/k?mode=ok'), keep_conn=True)
            self.assertEqual(r.protocol_status, 0)
        self.assertEqual(self.fake.snapshot()['connections'], 1)
        r = c.request(fb.cgi_params('/k?mode=ok'), keep_conn=False)
        self.assertEqual(r.protocol_status, 0)
        self.assertEqual(c.read_records(5), ([], True), 'not closed without FCGI_KEEP_CONN')
        self.assertEqual([q.conn_id for q in self.fake.reqs], [1, 1, 1, 1])

    def test_split_sends_one_byte_per_write_and_parses(self):
        r = fb.fcgi_request(self.fake.address, '/s?mode=split')
        self.assertEqual(r.protocol_status, 0)
        self.assertEqual(json.loads(r.cgi()[2])['mode'], 'split')

    def first_records(self, mode):
        c = self.send('/p?mode=' + mode)
        recs, closed = c.read_records(0.5)
        self.assertTrue(recs, 'no record for mode ' + mode)
        return c, recs, closed

    def test_protocol_violations_look_as_documented_then_wait_for_close(self):
        for mode, check in (
                ('bad_version', lambda r: r[0] == 2 and r[1] == fb.STDOUT),
                ('bad_id', lambda r: r[2] == 2 and r[1] == fb.STDOUT),
                ('bad_type', lambda r: r[1] == fb.PARAMS and r[2] == 1),
                ('unknown_type', lambda r: r[1] == fb.UNKNOWN_TYPE and r[2] == 0),
                ('end_first', lambda r: r[1] == fb.END_REQUEST and r[2] == 1)):
            with self.subTest(mode=mode):
                self.fake.reset()
                c, recs, closed = self.first_records(mode)
                self.assertTrue(check(recs[0]), recs[0])
                self.assertFalse(closed, 'the fake should wait for the peer to close')
                c.close()
                (req,) = self.fake.reqs
                self.assertTrue(req.done.wait(10))
                self.assertTrue(req.peer_closed)

    def test_huge_padding_pads_every_record_with_255(self):
        c = self.send('/p?mode=huge_padding')
        recs, _ = c.read_records(2)
        self.assertGreater(len(recs), 5)
        self.assertEqual({r[4] for r in recs}, {255})
        out = b''.join(r[3] for r in recs if r[1] == fb.STDOUT)
        self.assertTrue(out.endswith(fb.HUGE_PADDING_BODY))

    def test_stall_never_answers(self):
        c = self.send('/p?mode=stall')
        self.assertEqual(c.read_records(1), ([], False))

    def test_close_before_closes_without_a_record(self):
        c = self.send('/p?mode=close_before')
        self.assertEqual(c.read_records(5), ([], True))

    def test_close_mid_sends_headers_then_closes_without_end_request(self):
        c = self.send('/p?mode=close_mid')
        recs, closed = c.read_records(5)
        self.assertTrue(closed)
        self.assertEqual([r[1] for r in recs], [fb.STDOUT])
        self.assertIn(b'\r\n\r\npartial body line\n', recs[0][3])

    def raw_until_reset(self, c, timeout=10):
        """Bytes read from c until the connection is reset; fails on an
        orderly close (FIN) or a timeout."""
        data = b''
        deadline = time.monotonic() + timeout
        while True:
            c.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                b = c.sock.recv(65536)
            except ConnectionResetError:
                return data
            except socket.timeout:
                self.fail('no reset within %ss (read %r)' % (timeout, data))
            if not b:
                self.fail('closed (FIN), not reset (read %r)' % data)
            data += b

    def test_reset_before_resets_without_a_record(self):
        c = self.send('/p?mode=reset_before')
        self.assertEqual(self.raw_until_reset(c), b'')
        (req,) = self.fake.reqs
        self.assertTrue(req.done.wait(10))
        self.assertFalse(req.answered)

    def test_reset_mid_sends_headers_then_resets_without_end_request(self):
        c = self.send('/p?mode=reset_mid')
        data = self.raw_until_reset(c)
        version, rtype, rid, clen, plen = fb.HEADER.unpack(data[:8])
        self.assertEqual((version, rtype, rid), (1, fb.STDOUT, 1))
        self.assertEqual(len(data), 8 + clen + plen, 'one record, nothing after it')
        self.assertIn(b'\r\n\r\npartial body line\n', data[8:8 + clen])

    def test_half_header_sends_four_bytes_of_a_record_header(self):
        c = self.send('/p?mode=half_header')
        data, closed = recv_until_close(c.sock, 10)
        self.assertEqual((data, closed), (bytes([1, fb.STDOUT, 0, 1]), True))
        c = self.send('/p?mode=half_header&stall=1')
        data, closed = recv_until_close(c.sock, 1)
        self.assertEqual((data, closed), (bytes([1, fb.STDOUT, 0, 1]), False))
        c.close()
        req = self.fake.reqs[-1]
        self.assertTrue(req.done.wait(10))
        self.assertTrue(req.peer_closed)

    def test_half_content_announces_more_than_it_sends(self):
        for opts, closed, ends in (('', True, b'X-LEAK: half'),
                                   ('&at=body', True, b'\r\n\r\n' + b'half content line\n' * 20),
                                   ('&stall=1', False, b'X-LEAK: half')):
            with self.subTest(opts=opts):
                c = self.send('/p?mode=half_content' + opts)
                data, was_closed = recv_until_close(c.sock, 10 if closed else 1)
                self.assertEqual(was_closed, closed)
                version, rtype, rid, clen, plen = fb.HEADER.unpack(data[:8])
                self.assertEqual((version, rtype, rid), (1, fb.STDOUT, 1))
                self.assertLess(len(data) - 8, clen)
                self.assertTrue(data.endswith(ends), data)
                self.assertEqual(b'\r\n\r\n' in data, bool(opts == '&at=body'))

    def test_garbage_answers_http_then_waits_for_close(self):
        c = self.send('/p?mode=garbage')
        data, closed = recv_until_close(c.sock, 1)
        self.assertTrue(data.startswith(b'HTTP/1.1 200 OK\r\n'), data)
        self.assertTrue(data.endswith(b'\r\n\r\nLEAK garbage\n'), data)
        self.assertFalse(closed, 'the fake should wait for the peer to close')
        c.close()
        (req,) = self.fake.reqs
        self.assertTrue(req.done.wait(10))
        self.assertTrue(req.peer_closed)

    def test_giant_headers_size(self):
        r = fb.fcgi_request(self.fake.address, '/p?mode=giant_headers&kb=40')
        head = r.stdout.partition(b'\r\n\r\n')[0]
        self.assertGreater(len(head), 40 * 1024)
        self.assertLess(len(head), 42 * 1024)

    def test_bad_header_variants(self):
        for v, bad in (('cr', b'X-Bad: one\rtwo\r\n'), ('nul', b'X-Bad: one\0two\r\n'),
                       ('cl', b'Content-Length: 5\r\nContent-Length: 6\r\n')):
            with self.subTest(v=v):
                r = fb.fcgi_request(self.fake.address, '/p?mode=bad_header&v=' + v)
                self.assertIn(bad, r.stdout.partition(b'\r\n\r\n')[0] + b'\r\n')

    def test_stderr_interleaves_stderr_and_stdout(self):
        r = fb.fcgi_request(self.fake.address, '/p?mode=stderr&tag=T9')
        types = [rec[1] for rec in r.records if rec[3] and rec[1] != fb.END_REQUEST]
        self.assertEqual(types, [fb.STDOUT, fb.STDERR, fb.STDOUT, fb.STDERR, fb.STDOUT])
        self.assertEqual(r.stderr, b'stderr line one T9\nstderr line two T9\n')
        self.assertEqual(r.cgi()[2], b'stderr mode body\n')

    def test_end_request_protocol_statuses(self):
        for mode, st in (('overloaded', fb.OVERLOADED), ('cant_mpx', fb.CANT_MPX_CONN),
                         ('unknown_role', fb.UNKNOWN_ROLE)):
            with self.subTest(mode=mode):
                r = fb.fcgi_request(self.fake.address, '/p?mode=' + mode)
                self.assertEqual((r.stdout, r.protocol_status), (b'', st))

    def test_big_body_and_content_length(self):
        r = fb.fcgi_request(self.fake.address, '/p?mode=big&mb=3&cl=1', timeout=60)
        status, hdrs, body = r.cgi()
        self.assertIn(('Content-Length', str(3 * 1048576)), hdrs)
        self.assertEqual(sha(body), sha(fb.big_body(3)))

    def test_slow_client_probe_signals_when_everything_is_written(self):
        c = self.send('/p?mode=slow_client_probe&mb=16&tag=P1&nobuf=1')
        # 16 MB do not fit in the socket buffers while the client reads nothing
        self.assertFalse(self.fake.probe_done('P1').wait(1), 'done before the client read')
        r = c.read_response()
        self.assertTrue(self.fake.probe_done('P1').wait(10))
        status, hdrs, body = r.cgi()
        self.assertIn(('X-Accel-Buffering', 'no'), hdrs)
        self.assertEqual(sha(body), sha(fb.big_body(16)))

    def test_sse_waits_for_the_event(self):
        c = self.send('/p?mode=sse&tag=E1')
        recs, _ = c.read_records(1)
        out = b''.join(r[3] for r in recs if r[1] == fb.STDOUT)
        self.assertTrue(out.endswith(b'\r\n\r\ndata: 1\n\n'), out)
        self.assertIn(b'X-Accel-Buffering: no', out)
        self.assertFalse([r for r in recs if r[1] == fb.END_REQUEST])
        self.fake.release('E1')
        r = c.read_response()
        self.assertEqual((r.stdout, r.protocol_status), (b'data: 2\n\n', 0))

    def test_recycle_closes_after_k_answered_requests_on_a_connection(self):
        c = self.client()
        for i in range(2):
            self.assertEqual(c.request(fb.cgi_params('/r?mode=recycle'), keep_conn=True)
                             .protocol_status, 0)
        r = c.request(fb.cgi_params('/r?mode=recycle'), keep_conn=True)
        self.assertEqual((r.records, r.closed), ([], True))
        r = fb.fcgi_request(self.fake.address, '/r?mode=recycle', keep_conn=True)
        self.assertEqual(r.protocol_status, 0, 'a fresh connection is answered')

    def test_sleep_gate_holds_until_released_and_counts_concurrency(self):
        c1 = self.send('/s?mode=sleep&gate=G1', keep_conn=True)
        c2 = self.send('/s?mode=sleep&gate=G1', keep_conn=True)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.active == 2, 10))
        self.assertEqual(c1.read_records(0.3), ([], False))
        self.fake.release('G1')
        for c in (c1, c2):
            self.assertEqual(c.read_response().protocol_status, 0)
        self.assertEqual(self.fake.snapshot()['max_active'], 2)
        r = fb.fcgi_request(self.fake.address, '/s?mode=sleep&s=0.05')
        self.assertEqual(r.protocol_status, 0)

    def test_get_values_and_unknown_management_records(self):
        c = self.client()
        self.assertEqual(c.get_values(['FCGI_MAX_CONNS', 'FCGI_MPXS_CONNS']),
                         {'FCGI_MAX_CONNS': '100', 'FCGI_MPXS_CONNS': '0'})
        c.sock.sendall(fb.record(42, 0, b''))
        recs, _ = c.read_records(1)
        self.assertEqual([(r[1], r[3][:1]) for r in recs], [(fb.UNKNOWN_TYPE, b'\x2a')])

    def test_close_idle_closes_only_connections_between_requests(self):
        idle = self.client()
        self.assertEqual(idle.request(fb.cgi_params('/i'), keep_conn=True).protocol_status, 0)
        busy = self.send('/i?mode=sleep&gate=G2', keep_conn=True)
        self.assertTrue(self.fake.wait_for(lambda: self.fake.active == 1, 10))
        self.assertTrue(wait_for(lambda: self.fake.close_idle() == 1, 5))
        self.assertEqual(idle.read_records(5), ([], True))
        self.fake.release('G2')
        self.assertEqual(busy.read_response().protocol_status, 0)

    def test_unix_socket_listener(self):
        d = tempfile.mkdtemp(prefix='pt-fb-')
        self.addCleanup(shutil.rmtree, d, True)
        with fb.FakeFcgiServer(unix=os.path.join(d, 'f.sock')) as f:
            self.assertTrue(f.address.startswith('unix:/'))
            r = fb.fcgi_request(f.address, '/u?mode=ok')
            self.assertEqual(json.loads(r.cgi()[2])['params']['QUERY_STRING'], 'mode=ok')
            self.assertEqual(f.snapshot()['connections'], 1)
        self.assertFalse(os.path.exists(os.path.join(d, 'f.sock')))

    @unittest.skipUnless(os.access(CGI_FCGI, os.X_OK), 'cgi-fcgi missing (libfcgi-bin)')
    def test_libfcgi_cgi_fcgi_client_agrees(self):
        # cgi-fcgi cannot take split record headers (it does pointer
        # arithmetic on an FCGI_Header *), so only whole-record modes here.
        env = {'PATH': '/usr/bin:/bin', 'REQUEST_METHOD': 'POST', 'CONTENT_LENGTH': '5',
               'QUERY_STRING': 'mode=ok', 'SCRIPT_NAME': '/cf', 'HTTP_X_TEST': 'yes'}
        p = subprocess.run([CGI_FCGI, '-bind', '-connect', self.fake.address], env=env,
                           input=b'hello', stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout.partition(b'\r\n\r\n')[2])
        self.assertEqual(j['params']['HTTP_X_TEST'], 'yes')
        self.assertEqual((j['stdin_len'], j['stdin_sha256']), (5, sha(b'hello')))
        env['QUERY_STRING'] = 'mode=huge_padding'
        p = subprocess.run([CGI_FCGI, '-bind', '-connect', self.fake.address], env=env,
                           input=b'hello', stdout=subprocess.PIPE, timeout=30)
        self.assertEqual((p.returncode, p.stdout.partition(b'\r\n\r\n')[2]),
                         (0, fb.HUGE_PADDING_BODY))


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class HelloFcgiDirect(unittest.TestCase):
    """cgi-bin/hello-fcgi on its own: -s ADDRESS and the socket on fd 0."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='pt-hello-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.address = '127.0.0.1:%d' % harness.free_port()
        cls.proc = cls.start_app(['-s', cls.address])
        if not wait_connectable(cls.address):
            raise RuntimeError('hello-fcgi -s %s did not come up' % cls.address)

    @classmethod
    def start_app(cls, args, stdin=subprocess.DEVNULL):
        errf = open(os.path.join(cls.base, 'stderr-%s.log' % tag()), 'wb')
        p = subprocess.Popen([HELLO] + args, stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=errf, start_new_session=True)
        errf.close()
        p.errpath = errf.name
        cls.addClassCleanup(cls.reap, p)
        return p

    @staticmethod
    def reap(p):
        if p.poll() is None:
            kill_quietly([p.pid])
            p.wait(10)

    def assert_no_sanitizer_report(self, p):
        with open(p.errpath, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
        for m in harness.SANITIZER_MARKERS:
            self.assertNotIn(m, text)

    def test_env_lists_every_param_sorted(self):
        r = fb.fcgi_request(self.address, '/env', extra={'ZZ_LAST': 'z', 'AA_FIRST': 'a b'})
        status, hdrs, body = r.cgi()
        self.assertEqual(status, 200)
        self.assertIn(('Content-Type', 'text/plain'), hdrs)
        lines = body.decode().splitlines()
        self.assertEqual(lines, sorted(lines))
        for want in ('AA_FIRST=a b', 'ZZ_LAST=z', 'PATH_INFO=/env', 'REQUEST_METHOD=GET'):
            self.assertIn(want, lines)

    def test_echo_returns_the_body(self):
        data = os.urandom(300000) + b'\0\r\n'
        r = fb.fcgi_request(self.address, '/echo', 'POST', data, timeout=60)
        status, hdrs, body = r.cgi()
        self.assertIn(('Content-Type', 'application/octet-stream'), hdrs)
        self.assertEqual(sha(body), sha(data))

    def test_status_is_418(self):
        status, hdrs, body = fb.fcgi_request(self.address, '/status').cgi()
        self.assertEqual(status, 418)
        self.assertIn(('Status', "418 I'm a teapot"), hdrs)

    def test_stderr_goes_to_fcgi_stderr(self):
        r = fb.fcgi_request(self.address, '/stderr')
        self.assertEqual(r.cgi()[0], 200)
        self.assertRegex(r.stderr, rb'^hello-fcgi: a line on stderr from pid \d+\n$')

    def test_hello_counts_requests_on_a_kept_connection(self):
        with fb.FcgiClient(self.address) as c:
            bodies = [c.request(fb.cgi_params('/'), keep_conn=True).cgi()[2] for _ in range(3)]
        m = [re.match(rb'^Hello from FastCGI: pid (\d+), request (\d+)\n$', b) for b in bodies]
        self.assertTrue(all(m), bodies)
        self.assertEqual(len({x.group(1) for x in m}), 1)
        self.assertEqual(int(m[0].group(1)), self.proc.pid)
        n = [int(x.group(2)) for x in m]
        self.assertEqual(n, [n[0], n[0] + 1, n[0] + 2])

    def test_serves_on_a_listening_socket_passed_as_fd_0(self):
        path = os.path.join(self.base, 'fd0.sock')
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(16)
        p = self.start_app([], stdin=ls.fileno())
        ls.close()
        r = fb.fcgi_request('unix:' + path, '/hi')
        self.assertEqual(r.cgi()[2], b'Hello from FastCGI: pid %d, request 1\n' % p.pid)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)
        self.assert_no_sanitizer_report(p)

    def test_sigterm_exits_cleanly_idle_and_after_the_current_request(self):
        address = '127.0.0.1:%d' % harness.free_port()
        p = self.start_app(['-s', address])
        self.assertTrue(wait_connectable(address))
        c = fb.FcgiClient(address, timeout=30)
        self.addCleanup(c.close)
        c.send_request(fb.cgi_params('/sleep?1000'))
        time.sleep(0.3)  # lets the app take the request (either order is a clean exit)
        p.send_signal(signal.SIGTERM)
        r = c.read_response()
        if r.ended:
            self.assertTrue(r.cgi()[2].startswith(b'Hello from FastCGI'))
        self.assertEqual(p.wait(15), 0)
        self.assert_no_sanitizer_report(p)
        q = self.start_app(['-s', '127.0.0.1:%d' % harness.free_port()])
        time.sleep(0.2)
        q.send_signal(signal.SIGTERM)
        self.assertEqual(q.wait(15), 0)

    @unittest.skipUnless(os.access(CGI_FCGI, os.X_OK), 'cgi-fcgi missing (libfcgi-bin)')
    def test_cgi_fcgi_talks_to_it(self):
        p = subprocess.run([CGI_FCGI, '-bind', '-connect', self.address],
                           env={'PATH': '/usr/bin:/bin', 'REQUEST_METHOD': 'GET',
                                'PATH_INFO': '/status'},
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b"Status: 418 I'm a teapot\r\n"), p.stdout)


# == portico ===================================================================

class FcgiCase(unittest.TestCase):
    """One portico per class (-w 1), plus fake FastCGI servers started first.
    FAKES: kwargs of fcgi_bad.FakeFcgiServer, one dict per server ('unix'
    is a file name under the class's base directory). CONF and ARGS may use
    @FAKE0@.. (the servers' addresses as portico is given them), @DEAD0@ and
    @DEAD1@ (addresses that refuse connections), @WWW@ (document root),
    @BASE@ and @HELLO@."""

    FAKES = ()
    CONF = None
    ARGS = ()
    WORKERS = 1
    ACCESS_LOG = None
    maxDiff = None

    @classmethod
    def prepare(cls):
        """Files and processes the class needs before portico starts."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='pt-fcgi-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.www = os.path.join(cls.base, 'www')
        os.mkdir(cls.www)
        cls.fakes = []
        for kw in cls.FAKES:
            kw = dict(kw)
            if kw.get('unix'):
                kw['unix'] = os.path.join(cls.base, kw['unix'])
            f = fb.FakeFcgiServer(**kw).start()
            cls.addClassCleanup(f.stop)
            cls.fakes.append(f)
        cls.fake = cls.fakes[0] if cls.fakes else None
        cls.dead = ['127.0.0.1:%d' % harness.free_port() for _ in range(2)]
        cls.prepare()

        def sub(s):
            for i, f in enumerate(cls.fakes):
                s = s.replace('@FAKE%d@' % i, f.address)
            for i, d in enumerate(cls.dead):
                s = s.replace('@DEAD%d@' % i, d)
            return (s.replace('@WWW@', cls.www).replace('@BASE@', cls.base)
                    .replace('@HELLO@', HELLO))
        harness.start_class_server(cls, *[sub(a) for a in cls.ARGS],
                                   conf=sub(cls.CONF) if cls.CONF else None, docroot=cls.www,
                                   workers=cls.WORKERS, access_log=cls.ACCESS_LOG)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    @classmethod
    def write(cls, rel, content=b'', base=None, mode=0o644):
        path = os.path.join(base or cls.www, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.chmod(path, mode)
        return path

    def setUp(self):
        for f in self.fakes:
            f.reset()

    # -- requests
    def get(self, target, method='GET', **kw):
        return fetch(self.port, method, target, **kw)

    def ok_json(self, target, method='GET', **kw):
        r = self.get(target, method, **kw)
        self.assertEqual(r.status, 200, '%s %s: %r\n%s' % (method, target, r.raw[:600],
                                                           self.log_tail()))
        return r, json.loads(r.body)

    def params(self, target, method='GET', **kw):
        """The params the backend saw for target (the ok mode's echo)."""
        return self.ok_json(target, method, **kw)[1]['params']

    # -- assertions
    def log_tail(self, n=3000):
        return 'error log tail:\n' + self.srv.stderr_text()[-n:]

    def assert_error(self, r, status):
        """A server-made error page: status, standard reason, small HTML body."""
        self.assertEqual(r.status, status, '%r\n%s' % (r.raw[:600], self.log_tail()))
        self.assertIn(r.reason, REASONS[status])
        self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
        title = '%d %s' % (status, r.reason)
        self.assertEqual(r.body.decode('latin-1').rstrip('\n'),
                         '<html><head><title>%s</title></head><body><h1>%s</h1></body></html>' %
                         (title, title))

    def gw_regex(self, phrase, backend=None, address=None, lport=None):
        """A log line with phrase (a regex), naming "fastcgi BACKEND (ADDRESS)"
        and the client."""
        rx = r'^(?=.*%s)' % phrase
        if backend is not None:
            rx += r'(?=.*fastcgi %s \(%s\))' % (re.escape(backend), re.escape(address))
        if lport is not None:
            rx += r'(?=.*client: 127\.0\.0\.1:%d(?!\d))' % lport
        return rx + '.*$'

    def assert_log(self, regex, what, timeout=10):
        self.assertTrue(self.srv.wait_for_log(regex, timeout),
                        'no error log line for %s (/%s/)\n%s' % (what, regex, self.log_tail()))

    def log_count(self, regex):
        return len(re.findall(regex, self.srv.stderr_text(), re.M))

    def fake_reqs(self, fake, t):
        """The requests fake saw whose QUERY_STRING or path carries tag t."""
        with fake.lock:
            return [r for r in fake.reqs if t in r.params.get('QUERY_STRING', '') or
                    t in r.params.get('REQUEST_URI', '')]


# -- the flag ------------------------------------------------------------------

class FlagForms(FcgiCase):
    """--fastcgi PATTERN=ADDRESS[,ADDRESS]: .ext and /prefix/, TCP, unix:PATH
    and a bare /PATH, several servers."""
    FAKES = ({}, {'unix': 'u1.sock'}, {'unix': 'u2.sock'}, {}, {})
    ARGS = ('--fastcgi', '.php=@FAKE0@', '--fastcgi', '/app/=@FAKE1@',
            '--fastcgi', '/plain/=@BASE@/u2.sock', '--fastcgi', '/multi/=@FAKE3@,@FAKE4@')

    @classmethod
    def prepare(cls):
        cls.write('a.php', '<?php never read by portico')
        cls.write('static.txt', 'static file\n')

    def test_extension_form_over_tcp(self):
        p = self.params('/a.php/x?q=1')
        self.assertEqual((p['SCRIPT_NAME'], p['PATH_INFO'], p['QUERY_STRING']),
                         ('/a.php', '/x', 'q=1'))
        self.assertEqual(p['SCRIPT_FILENAME'], os.path.join(self.www, 'a.php'))
        self.assertEqual(self.fakes[0].snapshot()['requests'], 1)

    def test_prefix_form_over_a_unix_socket(self):
        p = self.params('/app/x/y')
        self.assertEqual((p['SCRIPT_NAME'], p['PATH_INFO']), ('/app', '/x/y'))
        self.assertEqual(self.fakes[1].snapshot()['requests'], 1)
        self.assertEqual(self.fakes[0].snapshot()['requests'], 0)

    def test_bare_absolute_path_is_a_unix_socket(self):
        p = self.params('/plain/z')
        self.assertEqual((p['SCRIPT_NAME'], p['PATH_INFO']), ('/plain', '/z'))
        self.assertEqual(self.fakes[2].snapshot()['requests'], 1)

    def test_several_addresses_share_the_requests(self):
        for i in range(4):
            self.params('/multi/%d' % i)
        self.assertEqual([self.fakes[3].requests, self.fakes[4].requests], [2, 2])

    def test_other_paths_stay_static(self):
        r = self.get('/static.txt')
        self.assertEqual((r.status, r.body), (200, b'static file\n'))
        self.assertEqual(sum(f.requests for f in self.fakes), 0)

    def test_flag_validates_with_t_and_errors_blame_the_flag(self):
        ok = subprocess.run([harness.PORTICO, '-t', '-r', self.www, '--fastcgi',
                             '.php=127.0.0.1:9000,unix:/run/x.sock,[::1]:9001'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        bad = subprocess.run([harness.PORTICO, '-t', '-r', self.www, '--fastcgi',
                              '.php=localhost:9000'], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(bad.returncode, 1)
        self.assertIn('--fastcgi', bad.stderr.decode())
        self.assertIn('.php=localhost:9000', bad.stderr.decode())


# -- params -------------------------------------------------------------------

class Params(FcgiCase):
    FAKES = ({},)
    CONF = '''
index = [ "index.php", "index.html" ];
backends = ( { name = "app"; servers = ( "@FAKE0@" ); max_fails = 0; } );
locations = (
  { extension = ".php"; handler = "fastcgi"; backend = "app"; },
  { prefix = "/blog/"; handler = "fastcgi"; backend = "app"; dir = "@BASE@/blog"; },
  { prefix = "/rooted/"; handler = "fastcgi"; backend = "app"; dir = "@BASE@/blog";
    root = "@BASE@/other"; },
  { prefix = "/app/"; handler = "fastcgi"; backend = "app"; env = [ "APP_ENV=test" ]; },
  { prefix = "/front/"; handler = "fastcgi"; backend = "app";
    program = "@BASE@/front/index.php"; },
  { prefix = "/noauth/"; handler = "fastcgi"; backend = "app"; pass_authorization = false; }
);
'''

    @classmethod
    def prepare(cls):
        cls.write('a.php')
        cls.write('sub/b.php')
        cls.write('d.php/c.php')  # a directory named like a script
        cls.write('uploads/evil.jpg', 'GIF89a <?php system($_GET["c"]); ?>')
        cls.write('dir/index.php')
        cls.write('blog/sub/page.blog', base=cls.base)
        cls.write('blog/top.blog', base=cls.base)
        os.makedirs(os.path.join(cls.base, 'other'))
        cls.write('front/index.php', base=cls.base)

    def assert_not_forwarded(self, target, status=404, **kw):
        before = self.fake.snapshot()['requests']
        r = self.get(target, **kw)
        self.assert_error(r, status)
        self.assertEqual(self.fake.snapshot()['requests'], before,
                         '%s reached the backend' % target)

    def test_extension_script_found_by_walking_rest_is_path_info(self):
        r, j = self.ok_json('/a.php/x/y?q=1&r=%20')
        p = j['params']
        expect = {
            'SCRIPT_NAME': '/a.php', 'PATH_INFO': '/x/y', 'QUERY_STRING': 'q=1&r=%20',
            'REQUEST_URI': '/a.php/x/y?q=1&r=%20', 'SCRIPT_FILENAME': self.www + '/a.php',
            'DOCUMENT_ROOT': self.www, 'PATH_TRANSLATED': self.www + '/x/y',
            'REQUEST_METHOD': 'GET', 'GATEWAY_INTERFACE': 'CGI/1.1', 'REDIRECT_STATUS': '200',
            'SERVER_PROTOCOL': 'HTTP/1.1', 'SERVER_PORT': str(self.port),
            'REMOTE_ADDR': '127.0.0.1', 'REMOTE_PORT': str(r.lport), 'REQUEST_SCHEME': 'http',
        }
        self.assertEqual({k: p.get(k) for k in expect}, expect)
        self.assertTrue(j['keep_conn'], 'FCGI_KEEP_CONN not set although keepalive is on')
        (req,) = self.fake.reqs
        self.assertEqual((req.role, req.req_id), (fb.RESPONDER, 1))

    def test_script_in_a_subdirectory_and_directory_named_like_a_script(self):
        p = self.params('/sub/b.php/p')
        self.assertEqual((p['SCRIPT_NAME'], p['PATH_INFO']), ('/sub/b.php', '/p'))
        p = self.params('/d.php/c.php/x')
        self.assertEqual((p['SCRIPT_NAME'], p['PATH_INFO']), ('/d.php/c.php', '/x'))
        self.assertEqual(p['SCRIPT_FILENAME'], self.www + '/d.php/c.php')
        p = self.params('/a.php')
        self.assertEqual(p['SCRIPT_NAME'], '/a.php')
        self.assertEqual(p.get('PATH_INFO', ''), '')

    def test_missing_script_is_404_and_the_backend_sees_nothing(self):
        for target in ('/nope.php', '/nope.php/x', '/sub/nope.php', '/d.php',
                       '/uploads/evil.jpg/x.php', '/uploads/evil.jpg/x.php/y'):
            with self.subTest(target=target):
                self.assertNotEqual(self.get(target).status, 200)
                self.assertEqual(self.fake.snapshot()['requests'], 0, target)
        self.assert_not_forwarded('/nope.php')
        self.assert_not_forwarded('/uploads/evil.jpg/x.php')

    def test_cr_lf_nul_in_the_path_never_reach_the_backend(self):
        for target in ('/a.php/%0d%0aX-Injected:%201', '/a.php/x%0a', '/a.php/%00',
                       '/a%00.php', '/sub%0d/b.php', '/app/%0a', '/blog/top.blog/%00x'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assert_error(r, 400)
        for req in self.fake.reqs:
            for k, v in req.raw_params:
                self.assertFalse(re.search(rb'[\r\n\0]', k + v), (k, v))
        self.assertEqual(self.fake.snapshot()['requests'], 0)

    def test_http_host_exactly_as_sent(self):
        for host in ('Example.COM:8080', 'www.example.test', '127.0.0.1:%d' % self.port):
            with self.subTest(host=host):
                p = self.params('/a.php', host=host)
                self.assertEqual(p['HTTP_HOST'], host)

    def test_authorization_is_passed_by_default_and_can_be_withheld(self):
        auth = {'Authorization': 'Bearer abc.def', 'Proxy-Authorization': 'Basic cHJveHk6cw=='}
        p = self.params('/a.php', headers=auth)
        self.assertEqual(p.get('HTTP_AUTHORIZATION'), 'Bearer abc.def')
        self.assertNotIn('HTTP_PROXY_AUTHORIZATION', p)
        p = self.params('/noauth/x', headers=auth)
        self.assertNotIn('HTTP_AUTHORIZATION', p)

    def test_proxy_header_never_becomes_http_proxy(self):
        p = self.params('/a.php', headers={'Proxy': 'http://evil.example:3128/'})
        self.assertNotIn('HTTP_PROXY', p)
        self.assertFalse([k for k, v in p.items() if 'evil.example' in v])

    def test_chunked_upload_arrives_with_content_length(self):
        chunks = [b'x' * 1000, b'y' * 7, os.urandom(100000)]
        body = b''.join(chunks)
        r = self.get('/a.php', 'POST', chunks=chunks,
                     headers={'Content-Type': 'application/octet-stream'})
        self.assertEqual(r.status, 200, r.raw[:300])
        j = json.loads(r.body)
        self.assertEqual(j['params'].get('CONTENT_LENGTH'), str(len(body)))
        self.assertEqual(j['params'].get('CONTENT_TYPE'), 'application/octet-stream')
        self.assertNotIn('HTTP_TRANSFER_ENCODING', j['params'])
        (req,) = self.fake.reqs
        self.assertEqual(req.stdin, body)

    def test_plain_post_body_is_byte_exact(self):
        body = os.urandom(300000) + b'\0\r\n\r\n'
        r = self.get('/a.php', 'POST', body=body)
        self.assertEqual(r.status, 200)
        (req,) = self.fake.reqs
        self.assertEqual(req.params.get('CONTENT_LENGTH'), str(len(body)))
        self.assertEqual(sha(req.stdin), sha(body))

    def test_request_headers_become_http_params(self):
        p = self.params('/a.php', headers=[('X-Foo', 'bar'), ('Cookie', 'a=1'),
                                           ('Cookie', 'b=2'), ('User-Agent', 'ua/1')])
        self.assertEqual((p.get('HTTP_X_FOO'), p.get('HTTP_COOKIE'), p.get('HTTP_USER_AGENT')),
                         ('bar', 'a=1; b=2', 'ua/1'))

    def test_prefix_dir_alias_walks_below_the_dir(self):
        p = self.params('/blog/sub/page.blog/extra/more?x=1')
        expect = {'SCRIPT_NAME': '/blog/sub/page.blog', 'PATH_INFO': '/extra/more',
                  'SCRIPT_FILENAME': self.base + '/blog/sub/page.blog',
                  'DOCUMENT_ROOT': self.www, 'QUERY_STRING': 'x=1'}
        self.assertEqual({k: p.get(k) for k in expect}, expect)
        p = self.params('/rooted/top.blog/z')
        expect = {'SCRIPT_NAME': '/rooted/top.blog', 'PATH_INFO': '/z',
                  'SCRIPT_FILENAME': self.base + '/blog/top.blog',
                  'DOCUMENT_ROOT': self.base + '/other'}
        self.assertEqual({k: p.get(k) for k in expect}, expect)
        self.fake.reset()
        self.assert_not_forwarded('/blog/sub/missing.blog')
        self.assert_not_forwarded('/blog/nothing/here')

    def test_app_prefix_gets_the_rest_as_path_info(self):
        p = self.params('/app/x/y?z')
        expect = {'SCRIPT_NAME': '/app', 'PATH_INFO': '/x/y', 'QUERY_STRING': 'z',
                  'SCRIPT_FILENAME': self.www + '/app', 'DOCUMENT_ROOT': self.www,
                  'APP_ENV': 'test', 'REQUEST_URI': '/app/x/y?z'}
        self.assertEqual({k: p.get(k) for k in expect}, expect)

    def test_program_prefix_has_a_fixed_script_filename(self):
        p = self.params('/front/a/b')
        expect = {'SCRIPT_NAME': '/front', 'PATH_INFO': '/a/b',
                  'SCRIPT_FILENAME': self.base + '/front/index.php'}
        self.assertEqual({k: p.get(k) for k in expect}, expect)

    def test_directory_index_php_goes_to_the_extension_location(self):
        p = self.params('/dir/')
        self.assertEqual(p['SCRIPT_NAME'], '/dir/index.php')
        self.assertEqual(p['SCRIPT_FILENAME'], self.www + '/dir/index.php')


# -- the keep-alive pool -------------------------------------------------------

class Pool(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "app"; servers = ( "@FAKE0@" ); keepalive = true; max_fails = 0; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "app"; } );
'''

    def test_twenty_sequential_requests_use_one_backend_connection(self):
        for i in range(20):
            self.params('/app/seq/%d' % i)
        conns = {r.conn_id for r in self.fake.reqs}
        self.assertEqual(len(self.fake.reqs), 20)
        self.assertEqual(len(conns), 1, 'pool not reused: connections %s' % sorted(conns))
        self.assertTrue(all(r.keep_conn for r in self.fake.reqs))
        self.assertLessEqual(self.fake.snapshot()['connections'], 1)

    def test_requests_on_one_client_connection_reuse_it_too(self):
        s = harness.connect(self.port, 30)
        try:
            s.sendall(b''.join(build_request('GET', '/app/ka/%d' % i, close=False)
                               for i in range(5)))
            rs = harness.send_recv_responses(s, 5)
        finally:
            s.close()
        self.assertEqual([r.status for r in rs], [200] * 5)
        self.assertEqual(len({r.conn_id for r in self.fake.reqs}), 1)


class NoKeepalive(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "app"; servers = ( "@FAKE0@" ); keepalive = false; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "app"; } );
'''

    def test_every_request_gets_its_own_connection_without_keep_conn(self):
        for i in range(20):
            self.params('/app/seq/%d' % i)
        self.assertEqual(len({r.conn_id for r in self.fake.reqs}), 20)
        self.assertFalse([r for r in self.fake.reqs if r.keep_conn])
        self.assertEqual(self.fake.snapshot()['connections'], 20)
        self.assertTrue(self.fake.wait_for(lambda: not self.fake._conns, 10),
                        'connections left open without FCGI_KEEP_CONN')


class PoolFaults(FcgiCase):
    """Backends that close pooled connections: zero client errors."""
    FAKES = ({},)
    CONF = '''
backends = ( { name = "app"; servers = ( "@FAKE0@" ); max_fails = 0; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "app"; } );
'''

    def test_recycling_backend_costs_no_request(self):
        # PHP-FPM pm.max_requests: the child reads the next request and exits
        bad = []
        for i in range(100):
            r = self.get('/app/r/%d?mode=recycle&k=3' % i)
            if r.status != 200:
                bad.append((i, r.status))
        self.assertEqual(bad, [], self.log_tail())
        # the fake marks a request answered just after its last write: wait
        def n_answered():
            return sum(1 for r in self.fake.reqs if r.answered)
        self.fake.wait_for(lambda: n_answered() >= 100, 10)
        with self.fake.lock:
            self.assertEqual(n_answered(), 100)
        self.assertGreater(self.fake.snapshot()['connections'], 1, 'recycling never happened')
        self.assertGreater(len(self.fake.reqs), 100, 'no retried request seen')

    def test_backend_closing_idle_connections_costs_no_request(self):
        bad = []
        for i in range(20):
            r = self.get('/app/idle/%d' % i)
            if r.status != 200:
                bad.append((i, r.status))
            self.fake.wait_for(lambda: self.fake.active == 0, 10)
            wait_for(lambda: self.fake.close_idle() > 0, 5)
            if i % 2:
                # half of the rounds give portico time to see the FIN first
                time.sleep(0.2)
        self.assertEqual(bad, [], self.log_tail())
        self.assertGreaterEqual(self.fake.snapshot()['connections'], 10)


# -- faults ---------------------------------------------------------------------

class Faults(FcgiCase):
    """Every misbehaviour of fcgi_bad.py: the status of the spec, its log
    phrase naming the backend, server and client, nothing of the broken
    output leaks, and the next request is served by the same worker with no
    other process in the server's session. /good/ is a second, healthy
    backend for the clients that must not notice; /patient/ reaches the
    faulty server without bad's short read_timeout."""
    FAKES = ({}, {})
    CONF = '''
backends = ( { name = "bad"; servers = ( "@FAKE0@" ); read_timeout = "2s"; max_fails = 0; },
             { name = "patient"; servers = ( "@FAKE0@" ); max_fails = 0; },
             { name = "good"; servers = ( "@FAKE1@" ); } );
locations = ( { prefix = "/bad/"; handler = "fastcgi"; backend = "bad"; },
              { prefix = "/patient/"; handler = "fastcgi"; backend = "patient"; },
              { prefix = "/good/"; handler = "fastcgi"; backend = "good"; } );
limits: { gw_header_max = "16k"; };
'''

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not wait_for(cls.srv.worker_pids, 20):
            raise RuntimeError('portico started no worker')
        cls.worker0 = cls.srv.worker_pids()

    def check(self, mode, status, phrase, opts='', leak=b'LEAK'):
        t = tag()
        r = self.get('/bad/%s?mode=%s&t=%s%s' % (t, mode, t, opts), timeout=60)
        if status is not None:
            self.assert_error(r, status)
        if leak:
            self.assertNotIn(leak, r.raw)
        if phrase:
            self.assert_log(self.gw_regex(phrase, 'bad', self.fake.address, r.lport),
                            '%s: %s' % (mode, phrase))
        self.assert_still_serving()
        return r, t

    def assert_still_serving(self):
        r = self.get('/bad/after?mode=ok')
        self.assertEqual(r.status, 200, '%r\n%s' % (r.raw[:300], self.log_tail()))
        self.assertEqual(json.loads(r.body)['mode'], 'ok')
        self.assert_no_stray_process()

    def assert_no_stray_process(self):
        """The server's session is the master and the worker it started
        with: the worker did not die (and get replaced), and nothing else
        was started or left behind (the harness checks the same at stop)."""
        self.assertEqual(sorted(self.srv._session_pids()), sorted([self.srv.pid] + self.worker0),
                         self.log_tail())

    def check_cut(self, mode, phrase, opts=''):
        """A fault that may come after the response header went out: a
        502 page when it did not, else a cut connection whose response
        never looks complete; the log line either way."""
        t = tag()
        r = self.get('/bad/x?mode=%s&t=%s%s' % (mode, t, opts), timeout=60)
        if r.status == 502:
            self.assert_error(r, 502)
        else:
            # headers already went out: the client connection is cut
            self.assertEqual(r.status, 200, r.raw[:300])
            self.assertTrue(r.closed)
            self.assertFalse(r.complete, 'a cut response must not look complete: %r' % r.raw)
        self.assertNotIn(b'LEAK', r.raw)
        self.assert_log(self.gw_regex(phrase, 'bad', self.fake.address, r.lport), mode)
        self.assert_still_serving()
        return r, t

    def assert_backend_conn_closed(self, t):
        reqs = self.fake_reqs(self.fake, t)
        self.assertTrue(reqs)
        for req in reqs:
            self.assertTrue(req.done.wait(40))
            self.assertTrue(req.peer_closed, 'portico kept the connection after a protocol error')

    def test_split_records_byte_by_byte_are_reassembled(self):
        t = tag()
        r = self.get('/bad/x?mode=split&t=' + t)
        self.assertEqual(r.status, 200, r.raw[:300])
        j = json.loads(r.body)
        self.assertEqual((j['mode'], j['params']['QUERY_STRING']), ('split', 'mode=split&t=' + t))

    def test_maximal_padding_is_skipped(self):
        r = self.get('/bad/x?mode=huge_padding')
        self.assertEqual((r.status, r.header('X-Padded'), r.body),
                         (200, 'yes', fb.HUGE_PADDING_BODY))

    def test_bad_version_is_502_protocol_error(self):
        _, t = self.check('bad_version', 502, 'protocol error: ')
        self.assert_backend_conn_closed(t)

    def test_wrong_request_id_is_502_protocol_error(self):
        _, t = self.check('bad_id', 502, 'protocol error: ')
        self.assert_backend_conn_closed(t)

    def test_unexpected_record_type_is_502_protocol_error(self):
        _, t = self.check('bad_type', 502, 'protocol error: ')
        self.assert_backend_conn_closed(t)

    def test_unknown_type_record_is_502_protocol_error(self):
        _, t = self.check('unknown_type', 502, 'protocol error: ')
        self.assert_backend_conn_closed(t)

    def test_end_request_before_headers_is_502_protocol_error(self):
        _, t = self.check('end_first', 502, 'protocol error: ')
        self.assert_backend_conn_closed(t)

    def test_close_before_the_header_is_502(self):
        self.check('close_before', 502, 'closed the connection before the response header')

    def test_close_in_the_body_never_looks_complete(self):
        self.check_cut('close_mid', 'closed the connection')

    def test_cut_close_delimited_body_ends_in_a_reset(self):
        # RFC 9112 §8: without chunked framing or Content-Length (an
        # HTTP/1.0 client) a body ends at the close, and is complete unless
        # the connection signals an error: a cut must be a reset, not a FIN
        for mode, opts in (('close_mid', ''), ('reset_mid', ''), ('half_content', '&at=body'),
                           ('half_content', '&at=body&stall=1')):
            with self.subTest(mode=mode, opts=opts):
                t = tag()
                s = harness.connect(self.port, 60)
                self.addCleanup(s.close)
                s.sendall(build_request('GET', '/bad/x?mode=%s&t=%s%s' % (mode, t, opts),
                                        version='HTTP/1.0'))
                data, reset = harness.recv_to_end(s, 60)
                r = response_of(data, lport=s.getsockname()[1])
                if r.status != 502:
                    self.assertEqual(r.status, 200, data[:300])
                    self.assertIsNone(r.header('Transfer-Encoding'))
                    self.assertIsNone(r.header('Content-Length'))
                    self.assertTrue(reset, 'a cut HTTP/1.0 response ended in a FIN: %r' % data)
                self.assertNotIn(b'LEAK', data)
                self.assert_log(self.gw_regex('(closed the connection|read timed out)', 'bad',
                                              self.fake.address, r.lport), mode)
                self.assert_still_serving()

    def test_reset_before_the_header_is_502(self):
        self.check('reset_before', 502, 'closed the connection before the response header: '
                   'Connection reset by peer')

    def test_reset_in_the_body_never_looks_complete(self):
        self.check_cut('reset_mid', 'closed the connection before the (end of the response|'
                       'response header): Connection reset by peer')

    def test_half_record_header_then_close_is_502(self):
        self.check('half_header', 502, 'closed the connection before the response header')

    def test_half_record_content_in_the_header_block_then_close_is_502(self):
        self.check('half_content', 502, 'closed the connection before the response header')

    def test_half_record_content_in_the_body_never_looks_complete(self):
        self.check_cut('half_content', 'closed the connection before the end of the response',
                       '&at=body')

    def test_half_record_header_then_silence_is_504_after_read_timeout(self):
        _, t = self.check('half_header', 504, 'read timed out', '&stall=1')
        self.assert_backend_conn_closed(t)

    def test_half_record_content_then_silence_is_504_after_read_timeout(self):
        _, t = self.check('half_content', 504, 'read timed out', '&stall=1')
        self.assert_backend_conn_closed(t)

    def test_half_record_in_the_body_then_silence_never_looks_complete(self):
        _, t = self.check_cut('half_content', 'read timed out', '&at=body&stall=1')
        self.assert_backend_conn_closed(t)

    def test_http_response_instead_of_records_is_502_protocol_error(self):
        r, t = self.check('garbage', 502, 'protocol error: bad version')
        self.assertNotIn(b'200 OK', r.raw)
        self.assert_backend_conn_closed(t)

    def test_faults_leave_concurrent_clients_alone(self):
        good, t = self.fakes[1], tag()
        # one response in its body (streamed), one still waiting for its header
        streaming = send_only(self.port, '/good/sse?mode=sse&tag=' + t)
        self.addCleanup(streaming.close)
        head = recv_until(streaming, b'data: 1\n\n', 30)
        self.assertIn(b'data: 1\n\n', head, self.log_tail())
        waiting = send_only(self.port, '/good/gate?mode=sleep&gate=' + t)
        self.addCleanup(waiting.close)
        self.assertTrue(good.wait_for(lambda: good.active == 2, 30), good.snapshot())
        # and one on another connection to the faulty server itself
        sibling = send_only(self.port, '/patient/gate?mode=sleep&gate=' + t)
        self.addCleanup(sibling.close)
        self.assertTrue(self.fake.wait_for(
            lambda: [q for q in self.fake.reqs if q.mode == 'sleep' and not q.done.is_set()], 30))
        for mode, status in (('reset_before', 502), ('reset_mid', None), ('half_header', 502),
                             ('half_content', 502), ('half_content&at=body', None),
                             ('garbage', 502), ('close_before', 502), ('bad_id', 502),
                             ('half_header&stall=1', 504)):
            with self.subTest(mode=mode):
                r = self.get('/bad/c?mode=%s&t=%s' % (mode, t), timeout=60)
                if status:
                    self.assert_error(r, status)
                else:
                    self.assertTrue(r.status == 502 or not r.complete, r.raw[:300])
                self.assertNotIn(b'LEAK', r.raw)
        self.assertEqual(good.snapshot()['requests'], 2, 'a healthy request was sent again')
        good.release(t)
        data, closed = recv_until_close(streaming, 30)
        r = response_of(head + data, closed=closed)
        self.assertEqual((r.status, r.complete, r.body), (200, True, b'data: 1\n\ndata: 2\n\n'))
        r = read_reply(waiting)
        self.assertEqual((r.status, r.complete), (200, True), r.raw[:300])
        self.assertEqual(json.loads(r.body)['mode'], 'sleep')
        self.assertEqual(good.snapshot()['requests'], 2)
        self.fake.release(t)
        r = read_reply(sibling)
        self.assertEqual((r.status, r.complete), (200, True), r.raw[:300])
        self.assertEqual(json.loads(r.body)['mode'], 'sleep')
        self.assertEqual(len(self.fake.requests_with('sleep')), 1, 'the sibling was sent again')
        self.assert_still_serving()

    def test_header_block_over_gw_header_max_is_502(self):
        self.check('giant_headers', 502, 'invalid response header: ', '&kb=32',
                   leak=b'X-Big-')

    def test_cr_in_a_header_value_is_502(self):
        self.check('bad_header', 502, 'invalid response header: ', '&v=cr', leak=b'LEAKB')

    def test_nul_in_a_header_value_is_502(self):
        self.check('bad_header', 502, 'invalid response header: ', '&v=nul', leak=b'LEAKB')

    def test_conflicting_content_length_is_502(self):
        self.check('bad_header', 502, 'invalid response header: ', '&v=cl', leak=b'LEAKB')

    def test_stderr_records_are_logged_as_warnings_not_sent(self):
        t = tag()
        r = self.get('/bad/x?mode=stderr&tag=%s&t=%s' % (t, t))
        self.assertEqual((r.status, r.body), (200, b'stderr mode body\n'))
        self.assertNotIn(b'stderr line', r.raw)
        for line in ('stderr line one ' + t, 'stderr line two ' + t):
            self.assert_log(r'^(?=.*fastcgi bad \(%s\): stderr: %s)'
                            r'(?=.*client: 127\.0\.0\.1:%d(?!\d)).*$' %
                            (re.escape(self.fake.address), line, r.lport), line)

    def test_overloaded_is_503(self):
        self.check('overloaded', 503, 'overloaded')

    def test_cant_mpx_conn_is_502(self):
        self.check('cant_mpx', 502, r'refused the request \(cant_mpx_conn\)')

    def test_unknown_role_is_502(self):
        self.check('unknown_role', 502, r'refused the request \(unknown_role\)')

    def test_silent_backend_is_504_after_read_timeout(self):
        _, t = self.check('stall', 504, 'read timed out')
        self.assert_backend_conn_closed(t)


# -- balancing and queueing --------------------------------------------------------

class FailoverDead(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "two"; servers = ( "@DEAD0@", "@FAKE0@" ); fail_timeout = "120s"; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "two"; } );
'''

    def test_refused_server_fails_over_and_is_marked_down_once(self):
        statuses = [self.get('/app/%d' % i).status for i in range(10)]
        self.assertEqual(statuses, [200] * 10, self.log_tail())
        self.assertEqual(self.fake.snapshot()['requests'], 10)
        rx = self.gw_regex('connect failed: Connection refused', 'two', self.dead[0])
        self.assert_log(rx, 'the refused server')
        self.assertEqual(self.log_count(rx), 1, 'the down server was tried again\n' +
                         self.log_tail())


class BacklogFull(FcgiCase):
    """A Unix socket whose listen backlog is full makes a non-blocking
    connect fail with EAGAIN: that server is overloaded, fail over."""
    FAKES = ({},)
    CONF = '''
backends = ( { name = "bf"; servers = ( "unix:@BASE@/full.sock", "@FAKE0@" ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "bf"; } );
'''

    @classmethod
    def prepare(cls):
        cls.full = os.path.join(cls.base, 'full.sock')
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(cls.full)
        ls.listen(0)  # never accepted
        cls.addClassCleanup(ls.close)
        socks = []
        cls.addClassCleanup(lambda: [s.close() for s in socks])
        harness.fill_unix_backlog(cls.full, socks)

    def test_full_backlog_fails_over_and_is_logged(self):
        for i in range(3):
            self.params('/app/%d' % i)
        self.assertEqual(self.fake.snapshot()['requests'], 3)
        self.assert_log(self.gw_regex(r'backlog full \(overloaded\)', 'bf', 'unix:' + self.full),
                        'the full Unix socket')


class ConnectTimeout(FcgiCase):
    """A TCP listener whose accept queue is full drops SYNs, so connect
    hangs until connect_timeout: 502 alone, a failover with a second server."""
    FAKES = ({},)
    CONF = '''
backends = ( { name = "alone"; servers = ( "@HOLE@" ); connect_timeout = "1s"; },
             { name = "pair"; servers = ( "@HOLE@", "@FAKE0@" ); connect_timeout = "1s"; } );
locations = ( { prefix = "/alone/"; handler = "fastcgi"; backend = "alone"; },
              { prefix = "/pair/"; handler = "fastcgi"; backend = "pair"; } );
'''

    @classmethod
    def prepare(cls):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(('127.0.0.1', 0))
        ls.listen(0)  # never accepted
        cls.addClassCleanup(ls.close)
        cls.hole = '127.0.0.1:%d' % ls.getsockname()[1]
        for _ in range(64):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            cls.addClassCleanup(s.close)
            s.connect_ex(ls.getsockname())
            _, w, _ = select.select([], [s], [], 1.5)
            if not w:
                break  # this SYN was dropped: the queue is full
        else:
            raise RuntimeError('could not fill the accept queue of a TCP socket')
        cls.CONF = cls.CONF.replace('@HOLE@', cls.hole)

    def test_connect_timeout_alone_is_502(self):
        r = self.get('/alone/x', timeout=60)
        self.assert_error(r, 502)
        self.assert_log(self.gw_regex('connect timed out', 'alone', self.hole, r.lport),
                        'connect timeout')

    def test_connect_timeout_fails_over_to_the_next_server(self):
        for i in range(2):  # whichever server round-robin picks first
            p = self.params('/pair/%d' % i, timeout=60)
            self.assertEqual(p['SCRIPT_NAME'], '/pair')
        self.assert_log(self.gw_regex('connect timed out', 'pair', self.hole),
                        'connect timeout before the failover')


class GetValues(FcgiCase):
    """get_values = true: FCGI_MAX_CONNS from the backend caps the
    connections like max_conns (requests queue, never 502)."""
    FAKES = ({'max_conns_value': 1},)
    CONF = '''
backends = ( { name = "gv"; servers = ( "@FAKE0@" ); get_values = true; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "gv"; } );
'''

    def test_fcgi_max_conns_caps_the_connections(self):
        self.params('/app/first')
        self.assertTrue(self.fake.wait_for(lambda: self.fake.get_values >= 1, 10),
                        'FCGI_GET_VALUES never asked\n' + self.log_tail())
        self.assert_log(r'fastcgi gv .*FCGI_MAX_CONNS', 'the GET_VALUES answer')
        self.fake.reset()
        g = tag()
        self.addCleanup(self.fake.release, g)
        s1 = send_only(self.port, '/app/1?mode=sleep&gate=' + g)
        self.addCleanup(s1.close)
        self.assertTrue(self.fake.wait_requests(1, 20), self.log_tail())
        s2 = send_only(self.port, '/app/2?mode=sleep&gate=' + g)
        self.addCleanup(s2.close)
        time.sleep(1)  # room for a wrong second connection to show up
        self.assertEqual(self.fake.snapshot()['requests'], 1, 'FCGI_MAX_CONNS=1 exceeded')
        self.fake.release(g)
        self.assertEqual((read_reply(s1).status, read_reply(s2).status), (200, 200))
        self.assertEqual(self.fake.snapshot()['max_active'], 1)


class Weights(FcgiCase):
    FAKES = ({}, {})
    CONF = '''
backends = ( { name = "w"; servers = ( { address = "@FAKE0@"; weight = 3; },
                                       { address = "@FAKE1@"; weight = 1; } ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "w"; } );
'''

    def test_three_to_one_over_forty_requests(self):
        for i in range(40):
            self.params('/app/%d' % i)
        self.assertEqual([self.fakes[0].requests, self.fakes[1].requests], [30, 10])


class Backup(FcgiCase):
    FAKES = ({}, {})
    CONF = '''
backends = ( { name = "b"; fail_timeout = "120s";
               servers = ( "@FAKE0@", { address = "@FAKE1@"; backup = true; } ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "b"; } );
'''

    def test_backup_only_when_the_primary_is_down(self):
        for i in range(10):
            self.params('/app/p/%d' % i)
        self.assertEqual([self.fakes[0].requests, self.fakes[1].requests], [10, 0])
        self.fakes[0].stop()  # connections closed, then refused
        statuses = [self.get('/app/b/%d' % i).status for i in range(10)]
        self.assertEqual(statuses, [200] * 10, self.log_tail())
        self.assertEqual(self.fakes[1].requests, 10)


class AllDown(FcgiCase):
    CONF = '''
backends = ( { name = "dead"; servers = ( "@DEAD0@", "@DEAD1@" ); fail_timeout = "120s"; } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "dead"; } );
'''

    def test_every_server_down_is_503(self):
        first = self.get('/app/first')
        self.assertIn(first.status, (502, 503), first.raw[:300])
        self.assert_error(first, first.status)
        for i in range(3):
            r = self.get('/app/%d' % i)
            self.assert_error(r, 503)
        self.assert_log(r'^(?=.*no live server)(?=.*fastcgi dead).*$', 'all servers down')


class QueueAtMaxConns(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "q"; servers = ( { address = "@FAKE0@"; max_conns = 1; } ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "q"; } );
'''

    def test_second_request_waits_for_the_connection_instead_of_502(self):
        g = tag()
        self.addCleanup(self.fake.release, g)
        s1 = send_only(self.port, '/app/1?mode=sleep&gate=' + g)
        self.addCleanup(s1.close)
        self.assertTrue(self.fake.wait_requests(1, 20), self.log_tail())
        s2 = send_only(self.port, '/app/2?mode=sleep&gate=' + g)
        self.addCleanup(s2.close)
        time.sleep(1)  # room for a wrong second connection to show up
        self.assertEqual(self.fake.snapshot()['requests'], 1, 'max_conns = 1 exceeded')
        self.fake.release(g)
        r1, r2 = read_reply(s1), read_reply(s2)
        self.assertEqual((r1.status, r2.status), (200, 200), self.log_tail())
        self.assertEqual(self.fake.snapshot()['max_active'], 1)


class QueueZero(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "q"; queue = 0;
               servers = ( { address = "@FAKE0@"; max_conns = 1; } ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "q"; } );
'''

    def test_full_server_without_queue_is_503(self):
        g = tag()
        self.addCleanup(self.fake.release, g)
        s1 = send_only(self.port, '/app/1?mode=sleep&gate=' + g)
        self.addCleanup(s1.close)
        self.assertTrue(self.fake.wait_requests(1, 20), self.log_tail())
        self.assert_error(self.get('/app/2?mode=ok'), 503)
        self.fake.release(g)
        self.assertEqual(read_reply(s1).status, 200)
        self.assertEqual(self.fake.snapshot()['requests'], 1)


class QueueTimeout(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "q"; queue_timeout = "1s";
               servers = ( { address = "@FAKE0@"; max_conns = 1; } ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "q"; } );
'''

    def test_request_waiting_too_long_is_503(self):
        g = tag()
        self.addCleanup(self.fake.release, g)
        s1 = send_only(self.port, '/app/1?mode=sleep&gate=' + g)
        self.addCleanup(s1.close)
        self.assertTrue(self.fake.wait_requests(1, 20), self.log_tail())
        r2 = self.get('/app/2?mode=ok', timeout=60)
        self.assert_error(r2, 503)
        # the 503 ends the exchange (Connection: close): the connection
        # closes, it does not wait on for the queued request's backend
        self.assertTrue(r2.closed, self.log_tail())
        self.assertEqual(self.fake.snapshot()['answered'], 0)
        self.fake.release(g)
        self.assertEqual(read_reply(s1).status, 200)
        self.assertEqual(self.fake.snapshot()['requests'], 1)


# -- buffering, streaming, big bodies ---------------------------------------------------

class Buffering(FcgiCase):
    FAKES = ({},)
    CONF = '''
backends = ( { name = "app"; servers = ( "@FAKE0@" ); max_fails = 0; } );
locations = (
  { prefix = "/app/"; handler = "fastcgi"; backend = "app"; },
  { prefix = "/stream/"; handler = "fastcgi"; backend = "app"; buffering = false; }
);
'''

    def slow_client(self, target):
        s = send_only(self.port, target, rcvbuf=32768, timeout=120)
        self.addCleanup(s.close)
        return s

    def check_body(self, s, mb):
        r = read_reply(s, 120)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.complete)
        self.assertEqual(len(r.body), mb * 1048576)
        self.assertEqual(sha(r.body), sha(fb.big_body(mb)))
        return r

    def test_backend_finishes_while_a_slow_client_reads_nothing(self):
        t = tag()
        s = self.slow_client('/app/x?mode=slow_client_probe&mb=16&tag=' + t)
        self.assertTrue(self.fake.probe_done(t).wait(60),
                        'the backend was held by a slow client although buffering is on\n' +
                        self.log_tail())
        self.check_body(s, 16)

    def check_streamed(self, target, t, mb=32):
        s = self.slow_client(target)
        self.assertFalse(self.fake.probe_done(t).wait(3),
                         'the backend finished while the client read nothing: buffered')
        r = self.check_body(s, mb)
        self.assertTrue(self.fake.probe_done(t).wait(30))
        return r

    def test_x_accel_buffering_no_streams_and_is_not_passed_on(self):
        t = tag()
        r = self.check_streamed('/app/x?mode=slow_client_probe&mb=32&nobuf=1&tag=' + t, t)
        self.assertIsNone(r.header('X-Accel-Buffering'))

    def test_buffering_false_location_streams(self):
        t = tag()
        self.check_streamed('/stream/x?mode=slow_client_probe&mb=32&tag=' + t, t)

    def test_sse_event_arrives_before_the_backend_ends(self):
        t = tag()
        self.addCleanup(self.fake.release, t)
        s = send_only(self.port, '/app/events?mode=sse&tag=' + t, timeout=30)
        self.addCleanup(s.close)
        got = recv_until(s, b'data: 1\n\n', 20)
        self.assertIn(b'data: 1\n\n', got, 'first event not delivered while the backend waits\n'
                      + self.log_tail())
        (req,) = self.fake_reqs(self.fake, t)
        self.assertFalse(req.done.is_set())
        self.assertIn(b'text/event-stream', got)
        self.fake.release(t)
        rest, closed = recv_until_close(s, 30)
        r = response_of(got + rest)
        self.assertEqual((r.status, r.body), (200, b'data: 1\n\ndata: 2\n\n'))
        self.assertTrue(r.complete)

    def test_big_response_is_intact(self):
        for opts in ('', '&cl=1'):
            with self.subTest(opts=opts):
                status, hdrs, body = harness.request(self.port, 'GET',
                                                     '/app/big?mode=big&mb=32' + opts,
                                                     timeout=120)
                self.assertEqual(status, 200)
                self.assertEqual(len(body), 32 * 1048576)
                self.assertEqual(sha(body), sha(fb.big_body(32)))
                if opts:
                    self.assertEqual(hdrs.get('content-length'), str(32 * 1048576))


# -- hello-fcgi spawned by portico -----------------------------------------------------

HELLO_RE = re.compile(rb'^Hello from FastCGI: pid (\d+), request (\d+)\n$')


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class Spawn(FcgiCase):
    CONF = '''
backends = ( { name = "hello";
               spawn = { program = "@HELLO@"; processes = 2; socket = "@BASE@/hello.sock"; };
           } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; } );
'''

    def hello_pids(self):
        return {p for p, (ppid, sid) in procs_running(HELLO).items()
                if ppid == self.srv.pid or sid == self.srv.pid}

    def hello(self, target='/hello/'):
        r = self.get(target)
        self.assertEqual(r.status, 200, '%r\n%s' % (r.raw[:300], self.log_tail()))
        m = HELLO_RE.match(r.body)
        self.assertTrue(m, r.body)
        return int(m.group(1))

    def concurrent_pids(self):
        socks = [send_only(self.port, '/hello/sleep?1500') for _ in range(2)]
        try:
            rs = [read_reply(s, 30) for s in socks]
        finally:
            for s in socks:
                s.close()
        pids = set()
        for r in rs:
            self.assertEqual(r.status, 200, r.raw[:300])
            pids.add(int(HELLO_RE.match(r.body).group(1)))
        return pids

    def test_two_processes_share_the_requests(self):
        self.assertTrue(wait_for(lambda: len(self.hello_pids()) == 2, 20),
                        'hello-fcgi processes: %s' % self.hello_pids())
        self.assertIn(self.hello(), self.hello_pids())
        pids = self.concurrent_pids()
        self.assertEqual(pids, self.hello_pids())

    def test_killed_process_is_respawned_and_requests_keep_working(self):
        self.assertTrue(wait_for(lambda: len(self.hello_pids()) == 2, 20))
        victim = self.hello()
        os.kill(victim, signal.SIGKILL)
        for i in range(10):
            self.assertNotEqual(self.hello('/hello/after/%d' % i), victim)
        self.assertTrue(wait_for(lambda: len(self.hello_pids()) == 2 and
                                 victim not in self.hello_pids(), 30),
                        'not respawned: %s\n%s' % (self.hello_pids(), self.log_tail()))
        self.assertEqual(self.concurrent_pids(), self.hello_pids())

    def test_params_status_echo_and_stderr(self):
        r = self.get('/hello/env?a=1')
        lines = r.body.decode().splitlines()
        self.assertIn('SCRIPT_NAME=/hello', lines)
        self.assertIn('PATH_INFO=/env', lines)
        self.assertIn('QUERY_STRING=a=1', lines)
        r = self.get('/hello/status')
        self.assertEqual((r.status, r.reason, r.body), (418, "I'm a teapot", b"I'm a teapot\n"))
        data = os.urandom(1024 * 1024)
        r = self.get('/hello/echo', 'POST', body=data)
        self.assertEqual((r.status, sha(r.body)), (200, sha(data)))
        r = self.get('/hello/stderr')
        self.assertEqual(r.status, 200)
        self.assert_log(r'^(?=.*fastcgi hello)(?=.*stderr: hello-fcgi: a line on stderr'
                        r' from pid \d+)(?=.*client: 127\.0\.0\.1:%d(?!\d)).*$' % r.lport,
                        'hello-fcgi stderr')


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class SpawnStop(unittest.TestCase):
    """Stopping portico stops the apps it spawned and removes the socket it
    made up (<tmp_dir>/portico-<pid>-<random>/<name>.sock) and its private
    directory."""

    def test_no_app_process_left_after_stop(self):
        base = tempfile.mkdtemp(prefix='pt-fcgi-')
        self.addCleanup(shutil.rmtree, base, True)
        os.mkdir(os.path.join(base, 'tmp'))
        conf = '''
tmp_dir = "%s/tmp";
backends = ( { name = "hello"; spawn = { program = "%s"; processes = 3; }; } );
locations = ( { prefix = "/hello/"; handler = "fastcgi"; backend = "hello"; } );
''' % (base, HELLO)
        srv = harness.Server(conf=conf, workers=1, env={"RUNTIME_DIRECTORY": ""})
        self.addCleanup(shutil.rmtree, srv.tmpdir, True)
        srv.start()
        try:
            def mine():
                return {p for p, (ppid, sid) in procs_running(HELLO).items()
                        if ppid == srv.pid or sid == srv.pid}
            self.assertTrue(wait_for(lambda: len(mine()) == 3, 20), mine())
            pids = mine()
            self.addCleanup(kill_quietly, pids)
            socks = glob.glob(os.path.join(base, 'tmp', 'portico-%d-*' % srv.pid, 'hello.sock'))
            self.assertEqual(len(socks), 1, os.listdir(os.path.join(base, 'tmp')))
            sock = socks[0]
            # private: only portico's user may enter (0710 with the workers'
            # group when it drops privileges: t_rootfiles.py)
            self.assertEqual(os.stat(os.path.dirname(sock)).st_mode & 0o777, 0o700)
            r = fetch(srv.port, 'GET', '/hello/')
            self.assertEqual(r.status, 200, srv.stderr_text()[-2000:])
        finally:
            rc = srv.stop()
        self.assertEqual(rc, 0)
        self.assertTrue(wait_for(lambda: not [p for p in pids if alive(p)], 10),
                        'left running: %s' % [p for p in pids if alive(p)])
        self.assertFalse(os.path.exists(sock), 'spawn socket left behind')
        self.assertEqual(os.listdir(os.path.join(base, 'tmp')), [], 'socket directory left behind')


@unittest.skipUnless(os.access(HELLO, os.X_OK), 'cgi-bin/hello-fcgi not built (libfcgi-dev)')
class Standalone(FcgiCase):
    """hello-fcgi started by the test: on a Unix socket passed as its fd 0,
    and with -s HOST:PORT."""
    CONF = '''
backends = ( { name = "fd0"; servers = ( "unix:@BASE@/fd0.sock" ); },
             { name = "tcp"; servers = ( "@BASE_TCP@" ); } );
locations = ( { prefix = "/fd0/"; handler = "fastcgi"; backend = "fd0"; },
              { prefix = "/tcp/"; handler = "fastcgi"; backend = "tcp"; } );
'''

    @classmethod
    def prepare(cls):
        path = os.path.join(cls.base, 'fd0.sock')
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        ls.listen(16)
        cls.p_fd0 = subprocess.Popen([HELLO], stdin=ls.fileno(), stdout=subprocess.DEVNULL,
                                     start_new_session=True)
        ls.close()
        cls.tcp = '127.0.0.1:%d' % harness.free_port()
        cls.p_tcp = subprocess.Popen([HELLO, '-s', cls.tcp], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, start_new_session=True)
        for p in (cls.p_fd0, cls.p_tcp):
            cls.addClassCleanup(HelloFcgiDirect.reap, p)
        if not wait_connectable(cls.tcp):
            raise RuntimeError('hello-fcgi -s did not come up')
        cls.CONF = cls.CONF.replace('@BASE_TCP@', cls.tcp)

    def test_app_on_fd0_unix_socket(self):
        r = self.get('/fd0/')
        self.assertEqual(r.status, 200, self.log_tail())
        self.assertEqual(int(HELLO_RE.match(r.body).group(1)), self.p_fd0.pid)

    def test_app_with_its_own_tcp_socket(self):
        r = self.get('/tcp/')
        self.assertEqual(r.status, 200, self.log_tail())
        self.assertEqual(int(HELLO_RE.match(r.body).group(1)), self.p_tcp.pid)

    def test_kept_connection_counts_requests_in_one_process(self):
        counts = [int(HELLO_RE.match(self.get('/tcp/n').body).group(2)) for _ in range(5)]
        self.assertEqual(counts, list(range(counts[0], counts[0] + 5)))


# -- fcgiwrap running the CGI test scripts ------------------------------------------------

@unittest.skipUnless(os.access(FCGIWRAP, os.X_OK), 'fcgiwrap not installed')
class Fcgiwrap(FcgiCase):
    CONF = '''
backends = ( { name = "fcgiwrap"; servers = ( "unix:@BASE@/fcgiwrap.sock" ); max_fails = 0;
               send_timeout = "20s"; } );
locations = ( { prefix = "/cgi/"; handler = "fastcgi"; backend = "fcgiwrap";
                dir = "@BASE@/cgi"; } );
'''

    @classmethod
    def prepare(cls):
        cls.cgi = os.path.join(cls.base, 'cgi')
        stage_cgi_scripts(cls.cgi)
        sock = os.path.join(cls.base, 'fcgiwrap.sock')
        errf = open(os.path.join(cls.base, 'fcgiwrap.log'), 'wb')
        cls.wrap = subprocess.Popen([FCGIWRAP, '-s', 'unix:' + sock], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=errf,
                                    start_new_session=True)
        errf.close()

        def stop_wrap():
            try:
                os.killpg(cls.wrap.pid, signal.SIGTERM)
                cls.wrap.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(cls.wrap.pid, signal.SIGKILL)
            except OSError:
                pass
        cls.addClassCleanup(stop_wrap)
        if not wait_connectable('unix:' + sock):
            raise RuntimeError('fcgiwrap did not come up')

    def test_env_cgi_sees_the_cgi_variables(self):
        r = self.get('/cgi/env.cgi/x/y?q=1', headers={'X-Test': 'yes'})
        self.assertEqual(r.status, 200, '%r\n%s' % (r.raw[:400], self.log_tail()))
        env, meta = parse_nul_env(r.body)
        expect = {'SCRIPT_NAME': '/cgi/env.cgi', 'PATH_INFO': '/x/y', 'QUERY_STRING': 'q=1',
                  'SCRIPT_FILENAME': self.cgi + '/env.cgi', 'REQUEST_METHOD': 'GET',
                  'GATEWAY_INTERFACE': 'CGI/1.1', 'HTTP_X_TEST': 'yes',
                  'DOCUMENT_ROOT': self.www}
        self.assertEqual({k: env.get(k) for k in expect}, expect)
        self.assertEqual(meta['.body_len'], '0')

    def test_echo_cgi_returns_a_posted_body(self):
        # fcgiwrap writes the whole body to the script before it reads any
        # output, so an echo bigger than the two pipe buffers deadlocks inside
        # fcgiwrap itself: 48 KB stays clear of that.
        data = os.urandom(48 * 1024) + b'\0\r\n'
        r = self.get('/cgi/echo.cgi', 'POST', body=data, timeout=60)
        self.assertEqual(r.status, 200, self.log_tail())
        self.assertEqual(sha(r.body), sha(data))

    def test_chunked_post_reaches_the_script_with_its_length(self):
        chunks = [b'a' * 10, os.urandom(70000)]
        r = self.get('/cgi/env.cgi', 'POST', chunks=chunks)
        env, meta = parse_nul_env(r.body)
        n = sum(map(len, chunks))
        self.assertEqual((env.get('CONTENT_LENGTH'), meta['.body_len']), (str(n), str(n)))

    def test_missing_script_is_404(self):
        self.assert_error(self.get('/cgi/nope.cgi'), 404)


# -- access log ------------------------------------------------------------------------

class AccessLog(FcgiCase):
    FAKES = ({},)
    ACCESS_LOG = True
    CONF = '''
backends = ( { name = "app"; servers = ( "@FAKE0@" ); } );
locations = ( { prefix = "/app/"; handler = "fastcgi"; backend = "app"; } );
'''

    @classmethod
    def prepare(cls):
        cls.write('static.txt', 'static\n')

    def line_for(self, t):
        found = []

        def seek():
            found[:] = [l for l in self.srv.access_log_text().splitlines() if t in l]
            return found
        self.assertTrue(wait_for(seek, 10), 'no access log line for %s:\n%s' %
                        (t, self.srv.access_log_text()[-2000:]))
        return found[0]

    def test_last_field_is_the_gateway_time_or_dash(self):
        t1, t2 = tag(), tag()
        self.assertEqual(self.get('/app/x?t=' + t1).status, 200)
        self.assertEqual(self.get('/static.txt?t=' + t2).status, 200)
        self.assertRegex(self.line_for(t1).split()[-1], r'^\d+\.\d+$')
        self.assertEqual(self.line_for(t2).split()[-1], '-')


if __name__ == '__main__':
    harness.main()
