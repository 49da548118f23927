"""t_cli.py: portico's command line: -V, -h, exit codes, -t validation with
file:line messages, flags overriding the config file, -o settings, the
listeners of -p / -l, log flags and --daemon."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

FLAGS = ['-c', '-t', '-V', '-h', '--daemon', '-w', '-l', '-p', '-r', '--cgi', '--fastcgi',
         '--max-body', '--error-log', '--access-log', '-o']


def run(*args, timeout=20, cwd=None):
    return subprocess.run([harness.PORTICO] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          cwd=cwd, start_new_session=True)


def text(p):
    return p.stdout.decode('utf-8', 'replace') + p.stderr.decode('utf-8', 'replace')


def http_get(port, path, host='127.0.0.1', extra=b''):
    data = harness.raw(port, b'GET ' + path.encode() + b' HTTP/1.1\r\nHost: x\r\n'
                       b'Connection: close\r\n' + extra + b'\r\n', host=host)
    return harness.parse_responses(data)[0]


class CliBase(unittest.TestCase):
    def tmp(self):
        d = tempfile.mkdtemp(prefix='portico-cli-')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', d]))
        return d

    def write(self, d, name, content):
        p = os.path.join(d, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if name.endswith('.conf') and isinstance(content, str):
            content = harness.root_user(content)
        with open(p, 'w' if isinstance(content, str) else 'wb') as f:
            f.write(content)
        return p

    def server(self, *args, **kw):
        s = harness.Server(*args, **kw)
        s.start()
        self.addCleanup(s.__exit__, None, None, None)
        return s


class Info(CliBase):
    def test_version_names_portico_http_parser_and_libconfig(self):
        p = run('-V')
        self.assertEqual(p.returncode, 0, text(p))
        out = text(p)
        self.assertIn('portico 0.1.0', out)
        self.assertRegex(out, r'http-parser 2\.9\.\d')
        self.assertRegex(out, r'libconfig 1\.5')

    def test_help_exits_0_and_lists_every_flag(self):
        p = run('-h')
        self.assertEqual(p.returncode, 0, text(p))
        out = p.stdout.decode()
        self.assertIn('usage', out.lower())
        for f in FLAGS:
            self.assertRegex(out, r'(^|[\s\[|,])' + re.escape(f) + r'\b', f)

    def test_unknown_flag_exits_2_with_usage_on_stderr(self):
        for args in (['--no-such-flag'], ['-Z'], ['-w']):
            with self.subTest(args=args):
                p = run(*args)
                self.assertEqual(p.returncode, 2, text(p))
                self.assertIn('usage', p.stderr.decode().lower())

    def test_stray_argument_exits_2(self):
        p = run('stray-operand')
        self.assertEqual(p.returncode, 2, text(p))


GOOD_CONF = '''# a valid configuration
workers = 2;
log_level = "warn";
server_tokens = false;
listen = [ "127.0.0.1:1", "[::1]:1" ];
root = "%(root)s";
index = [ "index.html", "index.htm" ];
limits: {
  header_buffer = "16k";
  max_body = "1M";
  header_timeout = "5s";
  keepalive_timeout = 30;
  write_timeout = "500ms";
};
vhosts = (
  { names = [ "example.org", "*.example.org" ];
    root = "%(root)s";
    locations = (
      { prefix = "/downloads/"; handler = "static"; dir_listing = true; },
      { exact = "/robots.txt"; root = "%(root)s"; },
      { extension = ".txt"; }
    );
  }
);
'''

FASTCGI_CONF = '''# FastCGI backends and locations
backends = (
  { name = "php";
    servers = ( "unix:/run/php/php8.2-fpm.sock",
                { address = "127.0.0.1:9000"; weight = 2; max_conns = 8; },
                { address = "[::1]:9000"; backup = true; } );
    balance = "least_conn";
    read_timeout = "30s";
  },
  { name = "app";
    spawn = { program = "app"; processes = 2; args = [ "-x" ]; env = [ "A=1" ]; };
  }
);
locations = (
  { extension = ".php"; handler = "fastcgi"; backend = "php"; },
  { prefix = "/blog/"; handler = "fastcgi"; backend = "php"; dir = "."; require_file = false; },
  { prefix = "/app/"; handler = "fastcgi"; backend = "app"; buffering = false; }
);
'''


class CheckConfig(CliBase):
    def test_t_with_good_config_exits_0(self):
        d = self.tmp()
        conf = self.write(d, 'good.conf', GOOD_CONF % {'root': d})
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 0, text(p))
        self.assertIn('portico: configuration ok', text(p))

    def test_t_without_config_file_exits_0(self):
        p = run('-t', '-p', '8080', '-r', '/')
        self.assertEqual(p.returncode, 0, text(p))
        self.assertIn('configuration ok', text(p))

    def check_bad(self, body, line):
        d = self.tmp()
        conf = self.write(d, 'bad.conf', body)
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 1, text(p))
        err = p.stderr.decode()
        self.assertRegex(err, r'(?m)^' + re.escape(conf) + ':%d: \\S' % line)
        self.assertNotIn('configuration ok', text(p))

    def test_unknown_top_level_key_reports_its_line(self):
        self.check_bad('workers = 1;\n\n# comment\nno_such_key = 3;\n', 4)

    def test_unknown_key_in_limits_reports_its_line(self):
        self.check_bad('limits: {\n  max_body = "1M";\n  max_bodyy = "2M";\n};\n', 3)

    def test_unknown_key_in_vhost_reports_its_line(self):
        self.check_bad('vhosts = (\n  { names = [ "a" ];\n    rooot = "/";\n  }\n);\n', 3)

    def test_wrong_type_reports_its_line(self):
        self.check_bad('log_level = "info";\nworkers = "two";\n', 2)

    def test_wrong_type_bool_reports_its_line(self):
        self.check_bad('\ndir_listing = "yes";\n', 2)

    def test_bad_size_reports_its_line(self):
        self.check_bad('limits: {\n  header_buffer = "8k";\n  max_body = "10Q";\n};\n', 3)

    def test_bad_duration_reports_its_line(self):
        self.check_bad('limits: {\n  header_timeout = "5 fortnights";\n};\n', 2)

    def test_negative_size_reports_its_line(self):
        self.check_bad('limits: {\n\n  max_body = -5;\n};\n', 3)

    def test_location_without_match_reports_its_line(self):
        self.check_bad('locations = (\n  { handler = "static"; }\n);\n', 2)

    def test_libconfig_syntax_error_reports_its_line(self):
        self.check_bad('workers = 1;\nroot = ;\n', 2)

    def test_missing_config_file_exits_1(self):
        p = run('-t', '-c', '/nonexistent/portico.conf')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertIn('/nonexistent/portico.conf', p.stderr.decode())

    def test_o_override_with_bad_value_reports_the_setting(self):
        p = run('-t', '-r', '/', '-o', 'limits.max_body=banana')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertRegex(p.stderr.decode(), r'(?m)^-o limits\.max_body: \S')

    def test_o_override_of_unknown_setting_exits_1(self):
        p = run('-t', '-r', '/', '-o', 'limits.no_such=1')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertIn('limits.no_such', p.stderr.decode())

    def test_o_without_equals_exits_nonzero(self):
        p = run('-t', '-r', '/', '-o', 'workers')
        self.assertIn(p.returncode, (1, 2), text(p))
        self.assertIn('workers', p.stderr.decode())

    def test_o_override_is_validated_over_a_good_file(self):
        d = self.tmp()
        conf = self.write(d, 'good.conf', GOOD_CONF % {'root': d})
        p = run('-t', '-c', conf, '-o', 'limits.header_timeout=soon')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertRegex(p.stderr.decode(), r'(?m)^-o limits\.header_timeout: \S')

    def test_bad_max_body_flag_reports_the_flag(self):
        p = run('-t', '-r', '/', '--max-body', '12 parsecs')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertRegex(p.stderr.decode(), r'(?m)^--max-body: \S')

    def test_cgi_flag_directory_is_accepted(self):
        d = self.tmp()
        p = run('-t', '-r', '/', '--cgi', '/cgi-bin/=' + d)
        self.assertEqual(p.returncode, 0, text(p))

    def test_cgi_flag_missing_path_is_an_error(self):
        p = run('-t', '-r', '/', '--cgi', '/cgi-bin/=/nonexistent/portico-cgi-dir')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertRegex(p.stderr.decode(), r'(?m)^--cgi')

    def test_fastcgi_flag_is_accepted(self):
        p = run('-t', '-r', '/', '--fastcgi', '.php=127.0.0.1:9000,unix:/run/php.sock')
        self.assertEqual(p.returncode, 0, text(p))
        self.assertIn('portico: configuration ok', text(p))

    def test_fastcgi_flag_prefix_and_ipv6_are_accepted(self):
        p = run('-t', '-r', '/', '--fastcgi', '/app/=[::1]:9000',
                '--fastcgi', '.php=/run/php/php-fpm.sock')
        self.assertEqual(p.returncode, 0, text(p))

    def test_cgi_flag_syntax_checked(self):
        p = run('-t', '-r', '/', '--cgi', 'no-equals-sign')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertIn('--cgi', p.stderr.decode())

    def test_malformed_fastcgi_flag_exits_1_naming_the_flag(self):
        for arg in ('php=127.0.0.1:9000', '.php=', '.php', '.php=127.0.0.1:1,,127.0.0.1:2'):
            with self.subTest(arg=arg):
                p = run('-t', '-r', '/', '--fastcgi', arg)
                self.assertEqual(p.returncode, 1, text(p))
                self.assertRegex(p.stderr.decode(),
                                 r"(?m)^--fastcgi: '" + re.escape(arg) + "': expected PATTERN=")
                self.assertNotIn('configuration ok', text(p))

    def test_fastcgi_flag_bad_address_is_blamed_on_the_flag(self):
        for arg, why in (('.php=localhost:9000', "localhost:9000': not a numeric IPv4"),
                         ('/app/=unix:app.sock', "unix:app.sock': expected unix:/"),
                         ('.php=/' + 'a' * 120, 'Unix socket path too long')):
            with self.subTest(arg=arg):
                p = run('-t', '-r', '/', '--fastcgi', arg)
                self.assertEqual(p.returncode, 1, text(p))
                self.assertRegex(p.stderr.decode(), r'(?m)^--fastcgi ' + re.escape(arg) +
                                 ": server '.*" + re.escape(why))

    def test_fastcgi_flag_duplicating_a_file_backend_is_an_error(self):
        d = self.tmp()
        conf = self.write(d, 'f.conf', 'backends = (\n  { name = ".php";'
                          ' servers = [ "127.0.0.1:9000" ]; }\n);\n')
        p = run('-t', '-c', conf, '--fastcgi', '.php=127.0.0.1:9001')
        self.assertEqual(p.returncode, 1, text(p))
        self.assertIn("--fastcgi .php=127.0.0.1:9001: duplicate backend '.php' (first at line 2)",
                      p.stderr.decode())

    def test_fastcgi_backend_and_location_are_accepted(self):
        d = self.tmp()
        self.write(d, 'app', '#!/bin/sh\n')
        os.chmod(os.path.join(d, 'app'), 0o755)
        conf = self.write(d, 'f.conf', FASTCGI_CONF)
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 0, text(p))
        self.assertIn('portico: configuration ok', text(p))
        self.assertNotIn('warning', text(p))

    def test_fastcgi_unknown_backend_reports_its_line(self):
        self.check_bad('backends = ( { name = "php"; servers = [ "127.0.0.1:9000" ]; } );\n'
                       'locations = (\n  { extension = ".php"; handler = "fastcgi";\n'
                       '    backend = "pgp"; }\n);\n', 4)

    def test_fastcgi_location_without_backend_reports_its_line(self):
        self.check_bad('locations = (\n  { extension = ".php"; handler = "fastcgi"; }\n);\n', 2)

    def test_fastcgi_bad_backend_setting_reports_its_line(self):
        self.check_bad('backends = (\n  { name = "php";\n    servers = [ "127.0.0.1:9000" ];\n'
                       '    balance = "random"; }\n);\n', 4)

    def test_cgi_only_key_on_fastcgi_location_is_an_error(self):
        d = self.tmp()
        conf = self.write(d, 'f.conf', 'backends = ( { name = "php"; servers = "/run/p.sock"; } );'
                          '\nlocations = (\n  { extension = ".php"; handler = "fastcgi";'
                          ' backend = "php";\n    timeout = "5s"; }\n);\n')
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 1, text(p))
        self.assertIn(conf + ':4: \'timeout\' only applies to handler "cgi"', p.stderr.decode())

    def test_unused_fastcgi_backend_is_only_a_warning(self):
        d = self.tmp()
        conf = self.write(d, 'f.conf', 'workers = 1;\nbackends = ( { name = "spare";'
                          ' servers = [ "127.0.0.1:9000" ]; } );\n')
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 0, text(p))
        self.assertIn(conf + ":2: warning: backend 'spare' is not used by any location",
                      p.stderr.decode())

    def test_cgi_location_handler_is_accepted(self):
        d = self.tmp()
        conf = self.write(d, 'c.conf', 'locations = (\n  { prefix = "/cgi-bin/";'
                          ' handler = "cgi"; dir = "."; }\n);\n')
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 0, text(p))

    def test_cgi_key_on_static_location_is_an_error(self):
        d = self.tmp()
        conf = self.write(d, 'c.conf', 'locations = (\n  { prefix = "/x/";'
                          ' handler = "static"; program = "/bin/true"; }\n);\n')
        p = run('-t', '-c', conf)
        self.assertEqual(p.returncode, 1, text(p))
        self.assertRegex(p.stderr.decode(), r'c\.conf:2: ')


class Listen(CliBase):
    def test_p_alone_serves_the_current_directory(self):
        d = self.tmp()
        self.write(d, 'here.txt', 'from cwd')
        srv = self.server('-p', '@PORT@', listen=[], docroot=False, cwd=d)
        r = http_get(srv.port, '/here.txt')
        self.assertEqual((r.status, r.body), (200, b'from cwd'))

    def test_p_listens_on_ipv6_loopback_too(self):
        if not harness.ipv6_loopback_ok():
            self.skipTest('no IPv6 loopback')
        d = self.tmp()
        self.write(d, 'here.txt', 'v6')
        srv = self.server('-p', '@PORT@', listen=[], docroot=False, cwd=d)
        r = http_get(srv.port, '/here.txt', host='::1')
        self.assertEqual((r.status, r.body), (200, b'v6'))

    def test_l_ipv4_binds_exactly_that_address(self):
        srv = self.server(files={'a.txt': 'v4'})
        r = http_get(srv.port, '/a.txt')
        self.assertEqual((r.status, r.body), (200, b'v4'))
        if harness.ipv6_loopback_ok():
            with self.assertRaises(OSError):
                harness.connect(srv.port, timeout=3, host='::1').close()

    def test_l_ipv6_loopback(self):
        if not harness.ipv6_loopback_ok():
            self.skipTest('no IPv6 loopback')
        srv = self.server(files={'a.txt': 'v6only'}, listen=['[::1]:@PORT@'], host='::1')
        r = http_get(srv.port, '/a.txt', host='::1')
        self.assertEqual((r.status, r.body), (200, b'v6only'))
        with self.assertRaises(OSError):
            harness.connect(srv.port, timeout=3, host='127.0.0.1').close()

    def test_l_repeated_binds_each_address(self):
        if not harness.ipv6_loopback_ok():
            self.skipTest('no IPv6 loopback')
        srv = self.server(files={'a.txt': 'both'},
                          listen=['127.0.0.1:@PORT@', '[::1]:@PORT@'])
        for host in ('127.0.0.1', '::1'):
            r = http_get(srv.port, '/a.txt', host=host)
            self.assertEqual((r.status, r.body), (200, b'both'), host)

    def test_l_replaces_the_config_files_listen(self):
        other = harness.free_port()
        srv = self.server(conf='listen = [ "127.0.0.1:%d" ];\n' % other,
                          files={'a.txt': 'x'})
        self.assertEqual(http_get(srv.port, '/a.txt').status, 200)
        with self.assertRaises(OSError):
            harness.connect(other, timeout=3).close()

    def test_w_sets_the_number_of_workers(self):
        srv = self.server('-w', '3', workers=None)
        self.assertTrue(srv.wait_for(lambda: len(srv.worker_pids()) == 3, timeout=10),
                        srv.worker_pids())


class Harness(CliBase):
    def test_a_port_taken_after_free_port_is_never_mistaken_for_ours(self):
        # another test's server takes the port between free_port() and our
        # bind (parallel make check): our start must not settle on it
        import socket
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(('127.0.0.1', 0))
        taken.listen(16)
        port = taken.getsockname()[1]
        real, picks = harness.free_port, []

        def pick(host='127.0.0.1'):
            picks.append(port if not picks else real(host))
            return picks[-1]

        harness.free_port = pick
        self.addCleanup(setattr, harness, 'free_port', real)
        srv = self.server(files={'a.txt': 'ours'})
        self.assertEqual(len(picks), 2, picks)
        self.assertNotEqual(srv.port, port)
        r = http_get(srv.port, '/a.txt')
        self.assertEqual((r.status, r.body), (200, b'ours'))


class Overrides(CliBase):
    def test_r_sets_the_document_root(self):
        d = self.tmp()
        self.write(d, 'r.txt', 'root file')
        cwd = self.tmp()
        self.write(cwd, 'c.txt', 'cwd file')
        srv = self.server(docroot=d, cwd=cwd)
        self.assertEqual(http_get(srv.port, '/r.txt').body, b'root file')
        self.assertEqual(http_get(srv.port, '/c.txt').status, 404)

    def test_config_root_is_used(self):
        a = self.tmp()
        self.write(a, 'f.txt', 'A')
        srv = self.server(conf='root = "%s";\n' % a, docroot=False)
        self.assertEqual(http_get(srv.port, '/f.txt').body, b'A')

    def test_relative_root_is_made_absolute_against_cwd(self):
        d = self.tmp()
        self.write(d, 'www/f.txt', 'relative')
        srv = self.server(docroot='www', cwd=d)
        self.assertEqual(http_get(srv.port, '/f.txt').body, b'relative')

    def test_r_flag_overrides_config_root(self):
        a, b = self.tmp(), self.tmp()
        self.write(a, 'f.txt', 'A')
        self.write(b, 'f.txt', 'B')
        srv = self.server(conf='root = "%s";\n' % a, docroot=b)
        self.assertEqual(http_get(srv.port, '/f.txt').body, b'B')

    def test_o_overrides_flag_and_file(self):
        a, b, c = self.tmp(), self.tmp(), self.tmp()
        for d, v in ((a, 'A'), (b, 'B'), (c, 'C')):
            self.write(d, 'f.txt', v)
        srv = self.server('-o', 'root=%s' % c, conf='root = "%s";\n' % a, docroot=b)
        self.assertEqual(http_get(srv.port, '/f.txt').body, b'C')

    def test_o_max_body_takes_effect(self):
        srv = self.server('-o', 'limits.max_body=10', files={'a.txt': 'x'})
        r = http_get(srv.port, '/a.txt', extra=b'Content-Length: 11\r\n')
        self.assertEqual(r.status, 413)

    def test_max_body_flag_takes_effect_and_accepts_suffix(self):
        srv = self.server('--max-body', '1k', files={'a.txt': 'x'})
        self.assertEqual(http_get(srv.port, '/a.txt', extra=b'Content-Length: 1025\r\n').status,
                         413)
        data = harness.raw(srv.port, b'GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
                           b'Content-Length: 1024\r\n\r\n' + b'y' * 1024)
        self.assertEqual(harness.parse_responses(data)[0].status, 200)

    def test_o_string_array_index(self):
        srv = self.server('-o', 'index=index.htm,home.html',
                          files={'home.html': 'home', 'sub/index.htm': 'htm'})
        self.assertEqual(http_get(srv.port, '/').body, b'home')
        self.assertEqual(http_get(srv.port, '/sub/').body, b'htm')

    def test_o_bool_dir_listing(self):
        srv = self.server('-o', 'dir_listing=true', files={'d/listed-file.txt': 'x'})
        r = http_get(srv.port, '/d/')
        self.assertEqual(r.status, 200)
        self.assertIn(b'listed-file.txt', r.body)

    def test_dir_listing_off_by_default(self):
        srv = self.server(files={'d/listed-file.txt': 'x'})
        self.assertEqual(http_get(srv.port, '/d/').status, 403)

    def test_server_tokens_false_hides_version(self):
        srv = self.server('-o', 'server_tokens=false', files={'a.txt': 'x'})
        self.assertEqual(http_get(srv.port, '/a.txt').header('Server'), 'portico')


class Logs(CliBase):
    def test_access_log_flag_writes_combined_lines(self):
        d = self.tmp()
        log = os.path.join(d, 'access.log')
        srv = self.server(access_log=log, files={'a.txt': 'hello'})
        harness.raw(srv.port, b'GET /a.txt?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: test-agent/1.0'
                    b'\r\nReferer: http://ref.example/\r\nConnection: close\r\n\r\n')
        harness.raw(srv.port, b'GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        pat = (r'(?m)^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
               r'"GET /a\.txt\?q=1 HTTP/1\.1" 200 5 "http://ref\.example/" "test-agent/1\.0" '
               r'\d+\.\d{3} -$')
        seen = srv.wait_for(lambda: re.search(pat, srv.access_log_text()) and
                            '/missing' in srv.access_log_text(), timeout=10)
        if not seen:
            srv.stop()
        text_ = srv.access_log_text()
        self.assertRegex(text_, pat)
        self.assertRegex(text_, r'(?m)^127\.0\.0\.1 - - \[[^]]+\] "GET /missing HTTP/1\.1" 404 '
                         r'\d+ "-" "-" \d+\.\d{3} -$')

    def test_error_log_flag_writes_to_file(self):
        d = self.tmp()
        log = os.path.join(d, 'error.log')
        srv = self.server(error_log=log, files={'a.txt': 'x'})
        s = harness.connect(srv.port)
        lport = s.getsockname()[1]
        s.sendall(b'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n')
        out = s.recv(4096)
        s.close()
        self.assertTrue(out.startswith(b'HTTP/1.1 501 '), out)

        def read():
            try:
                with open(log) as f:
                    return f.read()
            except OSError:
                return ''
        self.assertTrue(srv.wait_for(lambda: re.search(
            r'(?m)^(?=.*\b501\b)(?=.*client: 127\.0\.0\.1:%d(?!\d)).*$' % lport, read()),
            timeout=10), read())
        self.assertNotRegex(srv.stderr_text(), r'client: 127\.0\.0\.1:%d(?!\d)' % lport)


class Daemon(CliBase):
    def test_daemon_detaches_writes_pid_file_and_stops_on_term(self):
        d = self.tmp()
        self.write(d, 'a.txt', 'daemon')
        pidf = os.path.join(d, 'portico.pid')
        errlog = os.path.join(d, 'error.log')
        port = harness.free_port()
        daemon_pid = daemon_sid = None
        outp = os.path.join(d, 'launcher.out')
        try:
            # stdio to files (not pipes): the launcher's return must not depend on
            # the daemon closing our pipes; the fd check below covers that.
            with open(outp, 'wb') as out:
                p = subprocess.run([harness.PORTICO, '--daemon', '-l', '127.0.0.1:%d' % port,
                                    '-w', '1', '-r', d, '--error-log', errlog,
                                    '-o', 'pid_file=%s' % pidf], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=out, timeout=30)
            self.assertEqual(p.returncode, 0, open(outp).read())
            self.assertTrue(harness.Server.wait_for(
                lambda: os.path.exists(pidf) and open(pidf).read().strip().isdigit(), 20))
            daemon_pid = int(open(pidf).read().strip())
            daemon_sid = harness._proc_stat(daemon_pid)[1]
            self.assertTrue(_alive(daemon_pid))
            # detached: a new session, not our child
            self.assertNotEqual(daemon_sid, os.getsid(0))
            self.assertNotEqual(harness._proc_stat(daemon_pid)[0], os.getpid())
            # stdio detached from the launcher's files (daemon(3) semantics)
            for fd in (0, 1, 2):
                self.assertNotEqual(os.path.realpath('/proc/%d/fd/%d' % (daemon_pid, fd)),
                                    os.path.realpath(outp), 'daemon kept fd %d' % fd)
            self.assertTrue(harness.Server.wait_for(lambda: _can_connect(port), 20))
            r = http_get(port, '/a.txt')
            self.assertEqual((r.status, r.body), (200, b'daemon'))
            os.kill(daemon_pid, signal.SIGTERM)
            self.assertTrue(harness.wait_port_closed(port, timeout=20), 'port still open')
            self.assertTrue(harness.Server.wait_for(lambda: not _alive(daemon_pid), 20))
            self.assertTrue(harness.Server.wait_for(lambda: not _procs_with_arg(d), 20),
                            'workers left behind')
        finally:
            # whatever we started (found by our unique temp dir in argv) must go
            for pid in _procs_with_arg(d):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            with open(errlog) as f:
                log = f.read()
        except OSError:
            log = ''
        for m in harness.SANITIZER_MARKERS:
            self.assertNotIn(m, log)


def _can_connect(port):
    try:
        harness.connect(port, timeout=1).close()
        return True
    except OSError:
        return False


def _procs_with_arg(arg):
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if arg.encode() in argv and _alive(int(name)):
            out.append(int(name))
    return out


def _alive(pid):
    st = harness._proc_stat(pid)
    return st is not None and st[2] != 'Z'


if __name__ == '__main__':
    harness.main()
