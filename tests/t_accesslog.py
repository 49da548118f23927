"""t_accesslog.py: access_log_format over real sockets: the default line is
the combined format with the request and gateway times, as before; "json"
writes one JSON object per request that json.loads reads, with client
bytes escaped; a template of named fields; a bad template is refused by
-t with file:line; and the request id: one per request, logged as
$request_id and handed to CGI programs as REQUEST_ID and HTTP_X_REQUEST_ID
with request_id = "on" (a client's X-Request-ID only with "client", and only
when well-formed); by default programs see no REQUEST_ID.

No test asserts a timing: waits are generous upper bounds."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class LogCase(unittest.TestCase):
    CONF = ''

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix='pt-alog-')
        self.addCleanup(shutil.rmtree, self.base, True)
        cgi = os.path.join(self.base, 'cgi')
        os.mkdir(cgi)
        shutil.copy(os.path.join(HERE, 'cgi', 'env.cgi'), cgi)
        os.chmod(os.path.join(cgi, 'env.cgi'), 0o755)
        conf = self.CONF + '\nlocations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%s"; } );\n' % cgi
        self.srv = harness.Server(conf=conf, access_log=True, files={'a.txt': 'hello\n'})
        self.srv.start()
        self.addCleanup(self.stop)
        self.port = self.srv.port

    def stop(self):
        self.assertEqual(self.srv.stop(), 0)
        shutil.rmtree(self.srv.tmpdir, ignore_errors=True)

    def lines(self, n):
        self.assertTrue(harness.Server.wait_for(
            lambda: len(self.srv.access_log_text().splitlines()) >= n, 20),
            self.srv.access_log_text())
        return self.srv.access_log_text().splitlines()

    def env(self, lines, headers=None):
        """env.cgi's environment; the connection stays open until the log
        has `lines` lines."""
        import http.client
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=20)
        try:
            c.request('GET', '/cgi-bin/env.cgi', headers=headers or {})
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200)
            self.lines(lines)
        finally:
            c.close()
        out = {}
        for item in body.split(b'\0'):
            if b'=' in item:
                k, v = item.split(b'=', 1)
                out[k.decode()] = v.decode('latin-1')
        return out


LINGER_CGI = """#!/bin/sh
# the whole response (by its Content-Length), then work that outlives the
# client while stdout stays open
printf 'Content-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\nhello'
sleep 3
"""

SILENT_CGI = """#!/bin/sh
sleep 5
printf 'Content-Type: text/plain\\r\\n\\r\\nlate\\n'
"""


class CutShort(LogCase):
    """A request whose client leaves before the gateway is done is logged
    too: with the status it was sent, or 499 when nothing was sent."""

    def setUp(self):
        super().setUp()
        cgi = os.path.join(self.base, 'cgi')
        for name, text in (('linger.cgi', LINGER_CGI), ('silent.cgi', SILENT_CGI)):
            with open(os.path.join(cgi, name), 'w') as f:
                f.write(text)
            os.chmod(os.path.join(cgi, name), 0o755)

    def test_client_gone_after_a_complete_response_is_logged_with_its_status(self):
        s = harness.connect(self.port)
        s.sendall(b'GET /cgi-bin/linger.cgi HTTP/1.1\r\nHost: x\r\n\r\n')
        data = b''
        while not data.endswith(b'hello'):
            chunk = s.recv(4096)
            self.assertTrue(chunk, data)
            data += chunk
        s.close()  # before the program exits
        line = self.lines(1)[0]
        self.assertIn('"GET /cgi-bin/linger.cgi HTTP/1.1" 200 5 ', line)

    def test_client_gone_before_any_response_is_logged_as_499(self):
        s = harness.connect(self.port)
        s.sendall(b'GET /cgi-bin/silent.cgi HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertTrue(self.srv.wait_for(self._procs, 20), 'the program never started')
        s.close()
        line = self.lines(1)[0]
        self.assertIn('"GET /cgi-bin/silent.cgi HTTP/1.1" 499 0 ', line)

    def _procs(self):
        out = []
        for name in os.listdir('/proc'):
            if name.isdigit():
                try:
                    with open('/proc/%s/cmdline' % name, 'rb') as f:
                        if b'silent.cgi' in f.read():
                            out.append(int(name))
                except OSError:
                    pass
        return out


class Combined(LogCase):
    def test_default_line_is_combined_plus_times(self):
        harness.request(self.port, 'GET', '/a.txt', headers={'User-Agent': 'ua "x"',
                                                             'Referer': 'http://r/'})
        line = self.lines(1)[0]
        self.assertRegex(line, r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                         r'"GET /a\.txt HTTP/1\.1" 200 6 "http://r/" "ua \\"x\\"" '
                         r'\d+\.\d{3} -$')


class Json(LogCase):
    CONF = 'access_log_format = "json";'

    def test_json_lines_parse_and_escape_client_bytes(self):
        harness.request(self.port, 'GET', '/a.txt?q=%22', headers={'User-Agent': 'a"b\\c\xe9'})
        harness.request(self.port, 'GET', '/missing')
        self.env(3)
        recs = [json.loads(l) for l in self.lines(3)]
        a, m, e = recs
        self.assertEqual((a['status'], a['method'], a['uri'], a['protocol']),
                         (200, 'GET', '/a.txt?q=%22', 'HTTP/1.1'))
        self.assertEqual(a['user_agent'], 'a"b\\c\xe9')
        self.assertEqual(a['body_bytes_sent'], 6)
        self.assertEqual(a['remote_addr'], '127.0.0.1')
        self.assertIsNone(a['gateway_time'])
        self.assertIsNone(a['referer'])
        self.assertRegex(a['time'], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        self.assertRegex(a['request_id'], r'^[0-9a-f]{32}$')
        self.assertEqual(m['status'], 404)
        self.assertNotEqual(a['request_id'], m['request_id'])
        self.assertIsInstance(e['gateway_time'], float)
        self.assertGreater(a['bytes_sent'], a['body_bytes_sent'])
        self.assertGreater(a['bytes_received'], 0)


class Template(LogCase):
    CONF = ('request_id = "on"; '
            'access_log_format = "$status $request_method ${request_uri} $http_x_thing $request_id $$";')

    def test_named_fields_and_request_id_passed_to_programs(self):
        harness.request(self.port, 'GET', '/a.txt', headers={'X-Thing': 'v 1'})
        env = self.env(2, {'X-Request-ID': 'client-chosen'})
        self.assertRegex(env['REQUEST_ID'], r'^[0-9a-f]{32}$')
        # the client's header does not pass as it was sent: not trusted
        self.assertEqual(env['HTTP_X_REQUEST_ID'], env['REQUEST_ID'])
        first, second = self.lines(2)
        self.assertRegex(first, r'^200 GET /a\.txt v 1 [0-9a-f]{32} \$$')
        self.assertEqual(second, '200 GET /cgi-bin/env.cgi - %s $' % env['REQUEST_ID'])


class FromClient(LogCase):
    CONF = 'request_id = "client"; access_log_format = "$request_id";'

    def test_a_well_formed_client_id_is_kept(self):
        env = self.env(1, {'X-Request-ID': 'abc-123_x.y'})
        self.assertEqual((env['REQUEST_ID'], env['HTTP_X_REQUEST_ID']),
                         ('abc-123_x.y', 'abc-123_x.y'))
        env = self.env(2, {'X-Request-ID': 'bad id"'})
        self.assertRegex(env['REQUEST_ID'], r'^[0-9a-f]{32}$')
        self.assertEqual(self.lines(2), ['abc-123_x.y', env['REQUEST_ID']])


class Off(LogCase):
    CONF = 'access_log_format = "$request_id";'

    def test_by_default_programs_get_no_id_and_the_clients_header_passes(self):
        env = self.env(1, {'X-Request-ID': 'from-client'})
        self.assertNotIn('REQUEST_ID', env)
        self.assertEqual(env['HTTP_X_REQUEST_ID'], 'from-client')
        self.assertRegex(self.lines(1)[0], r'^[0-9a-f]{32}$')


class BadTemplate(unittest.TestCase):
    def test_unknown_field_is_a_config_error(self):
        d = tempfile.mkdtemp(prefix='pt-alog-')
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, 'p.conf')
        with open(conf, 'w') as f:
            f.write(harness.root_user('root = "%s";\naccess_log_format = "$status $nope";\n' % d))
        p = subprocess.run([harness.PORTICO, '-t', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn('p.conf:2: access_log_format: unknown field $nope', p.stderr)


if __name__ == '__main__':
    harness.main()
