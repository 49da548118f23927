"""t_cgi.py: the CGI gateway (RFC 3875) over real sockets with real scripts
from tests/cgi/ (copied into a private directory per test class, never run
from the source tree): routing (script directories, single programs,
extension rules), the meta-variables, request bodies, the script's header
block (Status, Location, local redirects, NPH), broken scripts, stderr
logging, timeouts and process-group kills, concurrency limits, reaping,
response buffering, and real programs: sh, Perl, Python, C, git
http-backend, gitweb and php-cgi.

Path rule asserted for PATH_INFO: the request path is percent-decoded once
(so %2F becomes '/'), then dot segments are removed, then split into
SCRIPT_NAME and PATH_INFO; REQUEST_URI and QUERY_STRING stay raw."""

import hashlib
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

HERE = os.path.dirname(os.path.abspath(__file__))
CGI_SRC = os.path.join(HERE, 'cgi')

TARGET = b'local redirect target\n'
PERL = '/usr/bin/perl'
PYTHON = '/usr/bin/python3'
GIT = shutil.which('git') or '/usr/bin/git'
GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend'
GITWEB = '/usr/share/gitweb/gitweb.cgi'
PHP_CGI = '/usr/bin/php-cgi'

REASONS = {
    403: ('Forbidden',), 404: ('Not Found',), 413: ('Content Too Large', 'Payload Too Large'),
    500: ('Internal Server Error',), 502: ('Bad Gateway',), 503: ('Service Unavailable',),
    504: ('Gateway Timeout',),
}

# The meta-variables every request gets (src/cgi_env.h).
ALWAYS = {'GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_ADDR',
          'SERVER_PROTOCOL', 'REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME',
          'SCRIPT_FILENAME', 'DOCUMENT_ROOT', 'REMOTE_ADDR', 'REMOTE_PORT', 'REQUEST_SCHEME',
          'REDIRECT_STATUS', 'PATH'}

NOLEN_BODY = b''.join(b'line %03d of the unframed body\n' % i for i in range(200))
BIG_BLOCK = bytes(i % 251 for i in range(65536))  # big.cgi's pattern, 16 blocks per MB


# -- helpers ----------------------------------------------------------------

def stage_scripts(dest):
    """Copy tests/cgi/* to dest with fixed modes (the source tree may be
    read-only and its modes are not trusted), plus dest/run/ for markers."""
    os.makedirs(dest)
    for name in sorted(os.listdir(CGI_SRC)):
        src = os.path.join(CGI_SRC, name)
        if not os.path.isfile(src) or name == 'outside.cgi':
            continue
        shutil.copyfile(src, os.path.join(dest, name))
        os.chmod(os.path.join(dest, name), 0o644 if name.endswith(('.c', '.php')) else 0o755)
    os.mkdir(os.path.join(dest, 'run'))


def copy_script(name, dest, mode):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copyfile(os.path.join(CGI_SRC, name), dest)
    os.chmod(dest, mode)


tag = harness.tag
recv_until_close = harness.recv_until_close
build_request = harness.build_request
fetch = harness.fetch


def parse_env(body):
    """env.cgi's body -> (environment dict, meta dict)."""
    env, meta = {}, {}
    for item in body.split(b'\0'):
        if not item:
            continue
        k, _, v = item.partition(b'=')
        k, v = k.decode('latin-1'), v.decode('latin-1')
        (meta if k.startswith('.') else env)[k] = v
    return env, meta


def byte_sum(data):
    return sum(data) % 4294967296


def proc_stat(pid):
    """(state, ppid, pgrp, session) of a process, None if it is gone."""
    try:
        with open('/proc/%s/stat' % pid, 'rb') as f:
            data = f.read().decode('ascii', 'replace')
    except OSError:
        return None
    rest = data[data.rfind(')') + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def all_procs():
    for name in os.listdir('/proc'):
        if name.isdigit():
            st = proc_stat(name)
            if st:
                yield int(name), st


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != 'Z'


def group_members(pgid):
    return [p for p, st in all_procs() if st[2] == pgid and st[0] != 'Z']


def children_of(pids):
    """[(pid, state)] of the processes whose parent is in pids."""
    pids = set(pids)
    return [(p, st[0]) for p, st in all_procs() if st[1] in pids]


def kill_quietly(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def wait_for(pred, timeout=15, interval=0.05):
    return harness.Server.wait_for(pred, timeout, interval)


def clean_env(home):
    """Environment for client programs (git, curl): no proxies, private HOME."""
    env = {k: v for k, v in os.environ.items()
           if 'proxy' not in k.lower() and not k.startswith('GIT_')}
    env.update(HOME=home, GIT_CONFIG_NOSYSTEM='1', GIT_TERMINAL_PROMPT='0',
               GIT_AUTHOR_NAME='Portico Test', GIT_AUTHOR_EMAIL='test@example.invalid',
               GIT_COMMITTER_NAME='Portico Test', GIT_COMMITTER_EMAIL='test@example.invalid',
               LC_ALL='C')
    return env


# -- base class ---------------------------------------------------------------

class CgiCase(unittest.TestCase):
    """One server per class. Layout under a private base directory:
    base/cgi/ (the staged scripts, with run/ for their marker files),
    base/www/ (the document root), base/outside.cgi (must never run).
    ARGS and CONF may use @CGI@, @WWW@ and @BASE@."""

    ARGS = ()
    CONF = None
    ENV = None
    WORKERS = 1
    LISTEN = None
    maxDiff = None

    @classmethod
    def prepare(cls):
        pass

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-cgi-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        cls.cgi = os.path.join(cls.base, 'cgi')
        cls.run_dir = os.path.join(cls.cgi, 'run')
        cls.www = os.path.join(cls.base, 'www')
        stage_scripts(cls.cgi)
        os.mkdir(cls.www)
        with open(os.path.join(cls.www, 'target.txt'), 'wb') as f:
            f.write(TARGET)
        copy_script('outside.cgi', os.path.join(cls.base, 'outside.cgi'), 0o755)
        cls.prepare()

        def sub(s):
            return s.replace('@CGI@', cls.cgi).replace('@WWW@', cls.www).replace('@BASE@',
                                                                               cls.base)
        harness.start_class_server(cls, *[sub(a) for a in cls.ARGS],
                                   conf=sub(cls.CONF) if cls.CONF else None, docroot=cls.www,
                                   workers=cls.WORKERS, env=cls.ENV, listen=cls.LISTEN)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    # -- requests
    def get(self, target, method='GET', **kw):
        return fetch(self.port, method, target, **kw)

    def env_req(self, target, method='GET', **kw):
        r = self.get(target, method, **kw)
        self.assertEqual(r.status, 200, 'env.cgi via %s %s: %r\n%s' %
                         (method, target, r.raw[:600], self.log_tail()))
        env, meta = parse_env(r.body)
        self.assertIn('.cwd', meta, 'not env.cgi output: %r' % r.body[:300])
        return r, env, meta

    # -- assertions
    def log_tail(self, n=3000):
        return 'error log tail:\n' + self.srv.stderr_text()[-n:]

    def assert_error(self, r, status):
        """A server-made error page: status with its standard reason, small
        HTML body, Content-Length framing."""
        self.assertEqual(r.status, status, '%r\n%s' % (r.raw[:600], self.log_tail()))
        self.assertIn(r.reason, REASONS[status])
        self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
        title = '%d %s' % (status, r.reason)
        self.assertEqual(r.body.decode('latin-1').rstrip('\n'),
                         '<html><head><title>%s</title></head><body><h1>%s</h1></body></html>' %
                         (title, title))
        self.assertEqual(r.header('Content-Length'), str(len(r.body)))

    def assert_log(self, regex, what, timeout=10):
        self.assertTrue(self.srv.wait_for_log(regex, timeout),
                        'no error log line for %s (/%s/)\n%s' % (what, regex, self.log_tail()))

    def read_pids(self, name, timeout=20):
        """The pids a script recorded in run/<name>.pids (waits for it);
        they are SIGKILLed at cleanup if still around."""
        path = os.path.join(self.run_dir, name + '.pids')
        self.assertTrue(wait_for(lambda: os.path.exists(path), timeout),
                        'script never wrote %s\n%s' % (path, self.log_tail()))
        with open(path) as f:
            pids = [int(x) for x in f.read().split()]
        self.addCleanup(kill_quietly, pids)
        return pids

    def assert_processes_gone(self, pids, timeout=20):
        """Every recorded process and every member of the script's process
        group (the script leads it) has exited."""
        def gone():
            return (not any(alive(p) for p in pids)
                    and not group_members(pids[0]))
        self.assertTrue(wait_for(gone, timeout),
                        'script processes still running: %s\n%s' %
                        ([(p, proc_stat(p)) for p in pids if alive(p)] +
                         group_members(pids[0]), self.log_tail()))

    def assert_no_zombies(self, timeout=15):
        """No child of a worker is left unreaped (state Z) or running."""
        def none_left():
            return not children_of(self.srv.worker_pids())
        self.assertTrue(wait_for(none_left, timeout),
                        'children of workers %s left: %s' %
                        (self.srv.worker_pids(), children_of(self.srv.worker_pids())))

    def assert_still_serving(self):
        r = self.get('/cgi-bin/quick.cgi')
        self.assertEqual((r.status, r.body), (200, b'ok\n'), r.raw[:300])


# -- routing --------------------------------------------------------------------

class Routing(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '--cgi', '/prog=@CGI@/env.cgi')

    @classmethod
    def prepare(cls):
        copy_script('env.cgi', os.path.join(cls.cgi, 'sub', 'env.cgi'), 0o755)
        copy_script('env.cgi', os.path.join(cls.cgi, 'noexec.cgi'), 0o644)

    def test_dir_script_gets_script_name_path_info_query_and_cwd(self):
        _, env, meta = self.env_req('/cgi-bin/env.cgi/extra/path?q=1')
        self.assertEqual(env['SCRIPT_NAME'], '/cgi-bin/env.cgi')
        self.assertEqual(env['PATH_INFO'], '/extra/path')
        self.assertEqual(env['PATH_TRANSLATED'], self.www + '/extra/path')
        self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(self.cgi, 'env.cgi'))
        self.assertEqual(env['QUERY_STRING'], 'q=1')
        self.assertEqual(env['REQUEST_URI'], '/cgi-bin/env.cgi/extra/path?q=1')
        self.assertEqual(env['DOCUMENT_ROOT'], self.www)
        self.assertEqual(meta['.cwd'], os.path.realpath(self.cgi))

    def test_script_in_subdirectory_runs_in_its_own_directory(self):
        _, env, meta = self.env_req('/cgi-bin/sub/env.cgi/x')
        self.assertEqual(env['SCRIPT_NAME'], '/cgi-bin/sub/env.cgi')
        self.assertEqual(env['PATH_INFO'], '/x')
        self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(self.cgi, 'sub', 'env.cgi'))
        self.assertEqual(meta['.cwd'], os.path.realpath(os.path.join(self.cgi, 'sub')))

    def test_missing_script_is_404(self):
        for target in ('/cgi-bin/nope.cgi', '/cgi-bin/nope.cgi/extra', '/cgi-bin/sub/nope.cgi'):
            with self.subTest(target=target):
                self.assert_error(self.get(target), 404)

    def test_non_executable_script_is_403_and_its_source_is_never_served(self):
        for target in ('/cgi-bin/noexec.cgi', '/cgi-bin/noexec.cgi/x', '/cgi-bin/hello.c',
                       '/cgi-bin/hello.php'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assert_error(r, 403)
                for leak in (b'#!/usr/bin/perl', b'getenv', b'<?php'):
                    self.assertNotIn(leak, r.raw)

    def test_cgi_directory_itself_is_403(self):
        for target in ('/cgi-bin/', '/cgi-bin/sub/'):
            with self.subTest(target=target):
                self.assert_error(self.get(target), 403)

    def test_dot_segments_are_removed_before_routing(self):
        for target in ('/cgi-bin/sub/../env.cgi', '/cgi-bin/./env.cgi',
                       '/cgi-bin/sub/%2e%2e/env.cgi'):
            with self.subTest(target=target):
                _, env, _ = self.env_req(target)
                self.assertEqual(env['SCRIPT_NAME'], '/cgi-bin/env.cgi')
                self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(self.cgi, 'env.cgi'))
                self.assertEqual(env['REQUEST_URI'], target)

    def test_nothing_outside_the_cgi_directory_is_executed(self):
        marker = os.path.join(self.base, 'OUTSIDE-RAN')
        for target in ('/cgi-bin/../outside.cgi', '/cgi-bin/%2e%2e/outside.cgi',
                       '/cgi-bin/sub/../../outside.cgi', '/cgi-bin/..%2foutside.cgi',
                       '/cgi-bin/%2E%2E%2Foutside.cgi', '/cgi-bin/../../outside.cgi'):
            with self.subTest(target=target):
                r = self.get(target)
                self.assertIn(r.status, (400, 403, 404), r.raw[:300])
                self.assertNotIn(b'OUTSIDE SCRIPT RAN', r.raw)
                self.assertNotIn(b'#!/bin/sh', r.raw)
                self.assertFalse(os.path.exists(marker), 'outside.cgi was executed')

    def test_program_location_serves_the_whole_prefix(self):
        _, env, _ = self.env_req('/prog/a/b?x=1')
        self.assertEqual(env['SCRIPT_NAME'], '/prog')
        self.assertEqual(env['PATH_INFO'], '/a/b')
        self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(self.cgi, 'env.cgi'))
        self.assertEqual(env['QUERY_STRING'], 'x=1')
        _, env, _ = self.env_req('/prog')
        self.assertEqual(env['SCRIPT_NAME'], '/prog')
        self.assertNotIn('PATH_INFO', env)
        self.assertNotIn('PATH_TRANSLATED', env)

    def test_static_files_outside_the_cgi_prefix_are_still_served(self):
        r = self.get('/target.txt')
        self.assertEqual((r.status, r.body), (200, TARGET))

    def test_every_method_reaches_the_script(self):
        for method in ('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND',
                       'MKCOL', 'PURGE', 'REPORT'):
            body = b'payload-' + method.encode() if method in ('POST', 'PUT', 'PATCH') else None
            with self.subTest(method=method):
                _, env, meta = self.env_req('/cgi-bin/env.cgi', method, body=body)
                self.assertEqual(env['REQUEST_METHOD'], method)
                if body is not None:
                    self.assertEqual(env['CONTENT_LENGTH'], str(len(body)))
                    self.assertEqual(meta['.body_len'], str(len(body)))

    def test_head_runs_the_script_but_sends_no_body(self):
        r = self.get('/cgi-bin/clen.cgi', 'HEAD')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('Content-Type'), 'text/plain')
        self.assertEqual(r.rest, b'', 'HEAD response carries body bytes')


class ExtensionRules(CgiCase):
    ARGS = ('--cgi', '.pl=' + PERL, '--cgi', '.cgi=')

    @classmethod
    def prepare(cls):
        copy_script('env.cgi', os.path.join(cls.www, 'x', 'y.pl'), 0o644)
        copy_script('env.cgi', os.path.join(cls.www, 'run.cgi'), 0o755)
        copy_script('env.cgi', os.path.join(cls.www, 'noexec.cgi'), 0o644)

    def test_interpreter_runs_a_non_executable_script(self):
        _, env, meta = self.env_req('/x/y.pl?a=b')
        self.assertEqual(env['SCRIPT_NAME'], '/x/y.pl')
        self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(self.www, 'x', 'y.pl'))
        self.assertEqual(env['QUERY_STRING'], 'a=b')
        self.assertNotIn('PATH_INFO', env)
        self.assertEqual(meta['.cwd'], os.path.realpath(os.path.join(self.www, 'x')))

    def test_extension_script_takes_path_info(self):
        _, env, _ = self.env_req('/x/y.pl/more/info')
        self.assertEqual(env['SCRIPT_NAME'], '/x/y.pl')
        self.assertEqual(env['PATH_INFO'], '/more/info')
        self.assertEqual(env['PATH_TRANSLATED'], self.www + '/more/info')

    def test_empty_interpreter_runs_the_executable_file_itself(self):
        _, env, _ = self.env_req('/run.cgi')
        self.assertEqual(env['SCRIPT_FILENAME'], os.path.join(self.www, 'run.cgi'))
        self.assertEqual(env['DOCUMENT_ROOT'], self.www)

    def test_non_executable_file_without_interpreter_is_403_source_not_served(self):
        r = self.get('/noexec.cgi')
        self.assert_error(r, 403)
        self.assertNotIn(b'#!/usr/bin/perl', r.raw)

    def test_missing_extension_script_is_404(self):
        self.assert_error(self.get('/nope.pl'), 404)
        self.assert_error(self.get('/x/nope.cgi'), 404)

    def test_other_files_stay_static(self):
        r = self.get('/target.txt')
        self.assertEqual((r.status, r.body), (200, TARGET))


# -- meta-variables -----------------------------------------------------------

class Environment(CgiCase):
    ENV = {'SECRET_TOKEN': 'x-secret-42'}
    CONF = '''
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@";
    env = [ "LOC_VAR=location value", "LOC_OTHER=x=y" ]; },
  { prefix = "/pass/"; handler = "cgi"; dir = "@CGI@";
    pass_env = [ "SECRET_TOKEN", "PT_TEST_UNSET_VARIABLE" ]; pass_authorization = true;
    env = [ "PATH=/opt/custom/bin:/usr/bin:/bin" ]; }
);
'''

    def test_exact_variable_set_for_a_plain_get(self):
        _, env, _ = self.env_req('/cgi-bin/env.cgi', headers={'User-Agent': 't-cgi/1.0'})
        self.assertEqual(set(env), ALWAYS | {'HTTP_HOST', 'HTTP_USER_AGENT', 'LOC_VAR',
                                             'LOC_OTHER'})

    def test_meta_variable_values(self):
        r, env, _ = self.env_req('/cgi-bin/env.cgi', host='localhost:%d' % self.port,
                                 headers={'User-Agent': 't-cgi/1.0'})
        expect = {
            'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_SOFTWARE': 'portico/0.1.0',
            'SERVER_PROTOCOL': 'HTTP/1.1', 'SERVER_PORT': str(self.port),
            'SERVER_ADDR': '127.0.0.1', 'SERVER_NAME': 'localhost', 'REMOTE_ADDR': '127.0.0.1',
            'REMOTE_PORT': str(r.lport), 'REQUEST_SCHEME': 'http', 'REQUEST_METHOD': 'GET',
            'REDIRECT_STATUS': '200', 'PATH': '/usr/local/bin:/usr/bin:/bin',
            'HTTP_HOST': 'localhost:%d' % self.port, 'HTTP_USER_AGENT': 't-cgi/1.0',
            'DOCUMENT_ROOT': self.www, 'LOC_VAR': 'location value', 'LOC_OTHER': 'x=y',
        }
        self.assertEqual({k: env.get(k) for k in expect}, expect)
        self.assertNotIn('HTTPS', env)

    def test_server_name_is_host_without_port(self):
        for host, name in (('www.example.test:1234', 'www.example.test'),
                           ('plain.example.test', 'plain.example.test')):
            with self.subTest(host=host):
                _, env, _ = self.env_req('/cgi-bin/env.cgi', host=host)
                self.assertEqual(env['SERVER_NAME'], name)
                self.assertEqual(env['HTTP_HOST'], host)

    def test_http10_request_sets_server_protocol(self):
        _, env, _ = self.env_req('/cgi-bin/env.cgi', version='HTTP/1.0')
        self.assertEqual(env['SERVER_PROTOCOL'], 'HTTP/1.0')

    def test_query_string_is_raw_and_always_set(self):
        for target, qs in (('/cgi-bin/env.cgi', ''), ('/cgi-bin/env.cgi?', ''),
                           ('/cgi-bin/env.cgi?a=%20b&c&d=e%2Bf+g', 'a=%20b&c&d=e%2Bf+g')):
            with self.subTest(target=target):
                _, env, _ = self.env_req(target)
                self.assertEqual(env['QUERY_STRING'], qs)
                self.assertEqual(env['REQUEST_URI'], target)

    def test_path_info_is_decoded_once_and_normalised(self):
        for target, pi in (('/cgi-bin/env.cgi/a%20b%2Fc', '/a b/c'),
                           ('/cgi-bin/env.cgi/x/../y/./z', '/y/z'),
                           ('/cgi-bin/env.cgi/%2541', '/%41'),
                           ('/cgi-bin/env.cgi/', '/')):
            with self.subTest(target=target):
                _, env, _ = self.env_req(target)
                self.assertEqual(env['SCRIPT_NAME'], '/cgi-bin/env.cgi')
                self.assertEqual(env['PATH_INFO'], pi)
                self.assertEqual(env['PATH_TRANSLATED'], self.www + pi)
                self.assertEqual(env['REQUEST_URI'], target)

    def test_request_headers_become_http_variables(self):
        _, env, _ = self.env_req('/cgi-bin/env.cgi', headers=[
            ('X-Foo', 'bar baz'), ('Accept', 'text/plain'), ('X-Multi', 'one'),
            ('X-Multi', 'two'), ('Cookie', 'a=1'), ('Cookie', 'b=2'), ('X-Dash-Ok', '1')])
        self.assertEqual(env.get('HTTP_X_FOO'), 'bar baz')
        self.assertEqual(env.get('HTTP_ACCEPT'), 'text/plain')
        self.assertEqual(env.get('HTTP_X_MULTI'), 'one, two')  # RFC 3875 §4.1.18
        self.assertEqual(env.get('HTTP_COOKIE'), 'a=1; b=2')
        self.assertEqual(env.get('HTTP_X_DASH_OK'), '1')

    def test_proxy_header_never_becomes_http_proxy(self):
        # httpoxy (CVE-2016-5385)
        _, env, _ = self.env_req('/cgi-bin/env.cgi',
                                 headers={'Proxy': 'http://evil.example:8080/'})
        self.assertNotIn('HTTP_PROXY', env)
        self.assertFalse([k for k, v in env.items() if 'evil.example' in v], env)

    def test_authorization_withheld_by_default_passed_when_configured(self):
        auth = {'Authorization': 'Basic dXNlcjpwYXNz',
                'Proxy-Authorization': 'Basic cHJveHk6c2VjcmV0'}
        _, env, _ = self.env_req('/cgi-bin/env.cgi', headers=auth)
        self.assertNotIn('HTTP_AUTHORIZATION', env)
        self.assertNotIn('HTTP_PROXY_AUTHORIZATION', env)
        self.assertFalse([k for k, v in env.items() if 'dXNlcjpwYXNz' in v or 'cHJveH' in v])
        _, env, _ = self.env_req('/pass/env.cgi', headers=auth)
        self.assertEqual(env.get('HTTP_AUTHORIZATION'), 'Basic dXNlcjpwYXNz')
        self.assertNotIn('HTTP_PROXY_AUTHORIZATION', env)

    def test_hop_by_hop_and_underscore_headers_are_not_passed(self):
        _, env, _ = self.env_req('/cgi-bin/env.cgi', headers=[
            ('Connection', 'close, X-Hop'), ('X-Hop', 'secret-hop'), ('TE', 'trailers'),
            ('Keep-Alive', 'timeout=5'), ('Proxy-Connection', 'keep-alive'),
            ('X_Under', 'under-value'), ('X-Kept', 'kept')])
        for name in ('HTTP_CONNECTION', 'HTTP_X_HOP', 'HTTP_TE', 'HTTP_KEEP_ALIVE',
                     'HTTP_PROXY_CONNECTION', 'HTTP_X_UNDER'):
            self.assertNotIn(name, env)
        self.assertFalse([k for k, v in env.items() if v in ('secret-hop', 'under-value')])
        self.assertEqual(env.get('HTTP_X_KEPT'), 'kept')

    def test_content_variables_only_with_a_body(self):
        _, env, meta = self.env_req('/cgi-bin/env.cgi')
        self.assertNotIn('CONTENT_LENGTH', env)
        self.assertNotIn('CONTENT_TYPE', env)
        body = b'a=1&b=2'
        _, env, meta = self.env_req('/cgi-bin/env.cgi', 'POST', body=body, headers={
            'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual(env.get('CONTENT_LENGTH'), '7')
        self.assertEqual(env.get('CONTENT_TYPE'), 'application/x-www-form-urlencoded')
        self.assertNotIn('HTTP_CONTENT_LENGTH', env)
        self.assertNotIn('HTTP_CONTENT_TYPE', env)
        self.assertEqual((meta['.body_len'], meta['.body_sum']), ('7', str(byte_sum(body))))

    def test_chunked_upload_gets_its_decoded_size_as_content_length(self):
        chunks = [b'x' * 1000, b'y' * 7, os.urandom(40000)]
        body = b''.join(chunks)
        _, env, meta = self.env_req('/cgi-bin/env.cgi', 'POST', chunks=chunks)
        self.assertEqual(env.get('CONTENT_LENGTH'), str(len(body)))
        self.assertNotIn('HTTP_TRANSFER_ENCODING', env)
        self.assertEqual(meta['.body_len'], str(len(body)))
        self.assertEqual(meta['.body_sum'], str(byte_sum(body)))

    def test_server_environment_is_not_leaked_pass_env_copies_named_variables(self):
        _, env, _ = self.env_req('/cgi-bin/env.cgi')
        self.assertNotIn('SECRET_TOKEN', env)
        self.assertFalse([k for k, v in env.items() if 'x-secret-42' in v])
        for name in ('HOME', 'USER', 'PWD', 'ASAN_OPTIONS', 'PORTICO'):
            self.assertNotIn(name, env)
        _, env, _ = self.env_req('/pass/env.cgi')
        self.assertEqual(env.get('SECRET_TOKEN'), 'x-secret-42')
        self.assertNotIn('PT_TEST_UNSET_VARIABLE', env)

    def test_location_env_can_override_path(self):
        _, env, _ = self.env_req('/pass/env.cgi')
        self.assertEqual(env['PATH'], '/opt/custom/bin:/usr/bin:/bin')


# -- request bodies --------------------------------------------------------------

def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(('::1', 0))
        s.close()
        return True
    except OSError:
        return False


class LocalAddress(CgiCase):
    """SERVER_ADDR and SERVER_PORT (RFC 3875 §4.1.14-15) are the address
    and port the client reached: a listener bound to one address knows
    them from the start (no getsockname(2) per request), a wildcard
    listener's connections ask their own socket, so a client on 127.0.0.1
    and one on ::1 each see theirs, never "0.0.0.0" or "::"."""

    LISTEN = ['*:@PORT@']
    CONF = '''
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; } );
'''

    def env_at(self, host):
        s = harness.connect(self.port, 30, host)
        try:
            s.sendall(b'GET /cgi-bin/env.cgi HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
            data = b''
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        finally:
            s.close()
        head, _, body = data.partition(b'\r\n\r\n')
        self.assertTrue(head.startswith(b'HTTP/1.1 200'), data[:300])
        env, _ = parse_env(body)
        return env

    def test_the_address_reached_over_ipv4(self):
        env = self.env_at('127.0.0.1')
        self.assertEqual((env.get('SERVER_ADDR'), env.get('SERVER_PORT')),
                         ('127.0.0.1', str(self.port)))

    def test_the_address_reached_over_ipv6(self):
        if not ipv6_loopback():
            self.skipTest('no IPv6 loopback')
        env = self.env_at('::1')
        self.assertEqual((env.get('SERVER_ADDR'), env.get('SERVER_PORT')),
                         ('::1', str(self.port)))


class LocalAddressFixed(LocalAddress):
    """The same through listeners bound to one address each: their text
    is made once, when the worker starts."""

    LISTEN = ['127.0.0.1:@PORT@', '[::1]:@PORT@']

    @classmethod
    def setUpClass(cls):
        if not ipv6_loopback():
            cls.LISTEN = ['127.0.0.1:@PORT@']
        super().setUpClass()


class Bodies(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')

    def test_binary_post_is_echoed_byte_exact(self):
        data = os.urandom(5 * 1024 * 1024) + b'\0\r\n\r\n\0'
        status, hdrs, body = harness.request(self.port, 'POST', '/cgi-bin/echo.cgi', body=data,
                                             headers={'Content-Type': 'application/x-bin'},
                                             timeout=60)
        self.assertEqual(status, 200)
        self.assertEqual(len(body), len(data))
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_chunked_post_is_decoded_for_the_script(self):
        data = os.urandom(300000)
        sizes = [1, 4095, 65536, 100000, 7]
        chunks, pos = [], 0
        for n in sizes:
            chunks.append(data[pos:pos + n])
            pos += n
        chunks.append(data[pos:])
        r = self.get('/cgi-bin/echo.cgi', 'POST', chunks=chunks)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertTrue(r.complete)
        self.assertEqual(r.body, data)

    @unittest.skipUnless(shutil.which('curl'), 'curl not installed')
    def test_chunked_post_from_curl_is_decoded(self):
        data = os.urandom(1024 * 1024 + 17)
        path = os.path.join(self.base, 'upload-%s.bin' % tag())
        with open(path, 'wb') as f:
            f.write(data)
        p = subprocess.run(['curl', '-sS', '--noproxy', '*', '-H', 'Transfer-Encoding: chunked',
                            '-H', 'Content-Type: application/octet-stream',
                            '--data-binary', '@' + path, self.srv.url('/cgi-bin/echo.cgi')],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=clean_env(self.base))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_script_echoing_while_reading_does_not_deadlock(self):
        data = os.urandom(2 * 1024 * 1024)
        status, _, body = harness.request(self.port, 'POST', '/cgi-bin/interleave.cgi',
                                          body=data, timeout=60)
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_expect_100_continue_then_body_reaches_the_script(self):
        s = harness.connect(self.port, 30)
        try:
            s.sendall(build_request('POST', '/cgi-bin/echo.cgi', headers={
                'Content-Length': '11', 'Expect': '100-continue'}))
            r1 = harness.read_response(s)
            self.assertEqual((r1.version, r1.status), ('HTTP/1.1', 100))
            s.sendall(b'hello world')
            r2 = harness.read_response(s)
        finally:
            s.close()
        self.assertEqual((r2.status, r2.body), (200, b'hello world'))

    def test_keep_alive_connection_serves_several_script_responses(self):
        s = harness.connect(self.port, 30)
        try:
            req = b''.join(build_request('GET', t, close=False) for t in
                           ('/cgi-bin/clen.cgi', '/cgi-bin/nolen.cgi', '/cgi-bin/lf.cgi'))
            s.sendall(req)
            rs = harness.send_recv_responses(s, 3)
        finally:
            s.close()
        self.assertEqual([r.status for r in rs], [200, 200, 200])
        self.assertEqual([r.body for r in rs], [b'hello\n', NOLEN_BODY, b'lf body\n'])


class BodyLimit(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '--max-body', '64k')

    def test_content_length_over_max_body_is_413_before_the_body_is_sent(self):
        s = harness.connect(self.port, 30)
        try:
            s.sendall(build_request('POST', '/cgi-bin/echo.cgi',
                                    headers={'Content-Length': '100000'}))
            r = harness.read_response(s)
        finally:
            s.close()
        r.raw = r.raw_head + r.body
        self.assert_error(r, 413)

    def test_expect_100_continue_over_max_body_gets_413_and_no_100(self):
        s = harness.connect(self.port, 30)
        try:
            s.sendall(build_request('POST', '/cgi-bin/echo.cgi', headers={
                'Content-Length': '100000', 'Expect': '100-continue'}))
            r = harness.read_response(s)
        finally:
            s.close()
        r.raw = r.raw_head + r.body
        self.assert_error(r, 413)

    def test_chunked_body_growing_past_max_body_is_413(self):
        s = harness.connect(self.port, 30)
        try:
            s.sendall(build_request('POST', '/cgi-bin/echo.cgi',
                                    headers={'Transfer-Encoding': 'chunked'}))
            piece = b'%x\r\n%s\r\n' % (16384, b'z' * 16384)
            try:
                for _ in range(16):  # 256k, four times the limit
                    s.sendall(piece)
                s.sendall(b'0\r\n\r\n')
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, _ = recv_until_close(s, 30)
        finally:
            s.close()
        r = harness.read_response(data)
        r.raw = data
        self.assert_error(r, 413)
        self.assertNotIn(b'zzzz', data)


# -- the script's header block --------------------------------------------------------

class ScriptOutput(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')

    def test_status_header_sets_the_response_status(self):
        r = self.get('/cgi-bin/status.cgi')
        self.assertEqual((r.status, r.reason), (404, 'Not Found'))
        self.assertEqual(r.body, b'script says not found\n')
        self.assertIsNone(r.header('Status'))

    def test_absolute_location_without_status_is_302(self):
        r = self.get('/cgi-bin/redirect-abs.cgi')
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header('Location'), 'http://example.com/')

    def test_status_301_with_location_is_kept(self):
        r = self.get('/cgi-bin/redirect-301.cgi')
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header('Location'), 'http://example.com/moved')
        self.assertEqual(r.body, b'moved\n')

    def test_local_redirect_is_served_internally(self):
        # RFC 3875 §6.2.2: the client sees the target, not a redirect.
        r = self.get('/cgi-bin/redirect-local.cgi')
        self.assertEqual((r.status, r.body), (200, TARGET))
        self.assertIsNone(r.header('Location'))

    def test_local_redirect_to_a_script_is_a_get(self):
        _, env, _ = self.env_req('/cgi-bin/redirect-local-cgi.cgi', 'POST', body=b'k=v')
        self.assertEqual(env['REQUEST_METHOD'], 'GET')
        self.assertEqual(env['SCRIPT_NAME'], '/cgi-bin/env.cgi')
        self.assertEqual(env['PATH_INFO'], '/after')
        self.assertEqual(env['QUERY_STRING'], 'via=redirect')

    def test_local_redirect_loop_stops_after_ten_hops(self):
        counter = os.path.join(self.run_dir, 'loop.count')
        r = self.get('/cgi-bin/redirect-loop.cgi')
        self.assertIn(r.status, (500, 502), r.raw[:300])
        self.assert_error(r, r.status)
        with open(counter) as f:
            runs = len(f.read().split())
        self.assertGreaterEqual(runs, 2, 'the local redirect was not followed at all')
        self.assertLessEqual(runs, 11, 'more than 10 internal redirects')
        self.assert_log(r'(?i)redirect', 'the redirect loop')

    def test_content_type_is_passed(self):
        r = self.get('/cgi-bin/cookies.cgi')
        self.assertEqual(r.header('Content-Type'), 'text/x-cookies')

    def test_repeated_set_cookie_headers_both_arrive(self):
        r = self.get('/cgi-bin/cookies.cgi')
        self.assertEqual(r.header_all('Set-Cookie'), ['a=1; Path=/', 'b=2; Path=/'])

    def test_script_content_length_is_honoured(self):
        r = self.get('/cgi-bin/clen.cgi')
        self.assertEqual(r.header('Content-Length'), '6')
        self.assertIsNone(r.header('Transfer-Encoding'))
        self.assertEqual(r.body, b'hello\n')
        self.assertEqual(r.rest, b'hello\n')

    def test_no_content_length_is_chunked_on_http11(self):
        r = self.get('/cgi-bin/nolen.cgi')
        self.assertEqual(r.status, 200)
        self.assertEqual((r.header('Transfer-Encoding') or '').lower(), 'chunked')
        self.assertIsNone(r.header('Content-Length'))
        self.assertTrue(r.complete)
        self.assertEqual(r.body, NOLEN_BODY)

    def test_no_content_length_is_close_delimited_on_http10(self):
        r = self.get('/cgi-bin/nolen.cgi', version='HTTP/1.0')
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header('Transfer-Encoding'))
        self.assertTrue(r.closed)
        self.assertEqual(r.rest, NOLEN_BODY)

    def test_lf_only_header_lines_are_accepted(self):
        r = self.get('/cgi-bin/lf.cgi')
        self.assertEqual((r.status, r.header('X-Line-End'), r.body), (200, 'lf', b'lf body\n'))

    def test_crlf_header_lines_are_accepted(self):
        r = self.get('/cgi-bin/crlf.cgi')
        self.assertEqual((r.status, r.header('X-Line-End'), r.body),
                         (200, 'crlf', b'crlf body\n'))

    def test_response_carries_date_and_server_once(self):
        r = self.get('/cgi-bin/crlf.cgi')
        self.assertEqual(len(r.header_all('Date')), 1)
        self.assertEqual(r.header_all('Server'), ['portico/0.1.0'])

    def test_nph_script_output_is_passed_verbatim_then_closed(self):
        # RFC 3875 §5: no headers added, nothing changed; keep-alive requested.
        data, closed = harness.raw_closed(
            self.port, build_request('GET', '/cgi-bin/nph-hello.cgi', close=False), timeout=20)
        self.assertEqual(data, b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n'
                               b'X-Nph: verbatim\r\n\r\nnph body\n')
        self.assertTrue(closed, 'connection left open after an nph- response')

    def test_stderr_lines_go_to_the_error_log_tagged_not_to_the_client(self):
        t = tag()
        r = self.get('/cgi-bin/stderr.cgi?' + t)
        self.assertEqual((r.status, r.body), (200, b'body ok\n'))
        self.assertNotIn(b'stderr-line', r.raw)
        pid = int(r.header('X-Pid'))
        for line in ('stderr-line-one ' + t, 'stderr-line-two ' + t):
            self.assert_log(r'^(?=.*%s)(?=.*stderr\.cgi)(?=.*\b%d\b)'
                            r'(?=.*client: 127\.0\.0\.1:%d(?!\d)).*$' % (line, pid, r.lport),
                            'stderr line %r tagged with script, pid %d and client' % (line, pid))


class BadScripts(CgiCase):
    """Each broken script: 502 with the server's error page, nothing of the
    script's output leaks, an error log line names the script; the server
    keeps serving."""
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')

    def check_502(self, name, leak=None, cause=None):
        r = self.get('/cgi-bin/' + name)
        self.assert_error(r, 502)
        if leak:
            self.assertNotIn(leak, r.raw)
        regex = r'^(?=.*%s)' % name.replace('.', r'\.')
        if cause:
            regex += r'(?=.*%s)' % cause
        self.assert_log(regex + '.*$', name + (' and ' + cause if cause else ''))
        self.assert_still_serving()
        return r

    def test_no_output_at_all_is_502(self):
        self.check_502('bad-empty.cgi')

    def test_empty_header_block_is_502(self):
        self.check_502('bad-noheader.cgi', b'body without any header')

    def test_output_without_header_block_is_502(self):
        self.check_502('bad-line.cgi', b'hello')

    def test_nul_in_header_value_is_502(self):
        self.check_502('bad-nul.cgi', b'X-Bad')

    def test_invalid_status_line_is_502(self):
        self.check_502('bad-status.cgi', b'Bottles')

    def test_header_block_over_gw_header_max_is_502(self):
        self.check_502('bad-bighdr.cgi', b'X-Big')

    def test_output_ending_inside_header_block_is_502(self):
        self.check_502('bad-eof.cgi')

    @unittest.skipIf(harness.VALGRIND, 'valgrind cannot go on after a failed execve')
    def test_exec_failure_is_502_with_the_reason_logged(self):
        self.check_502('bad-interp.cgi', b'interpreter', 'No such file or directory')

    def test_script_killed_by_a_signal_before_headers_is_502(self):
        self.check_502('bad-signal.cgi')


# -- timeouts, kills and reaping --------------------------------------------------------

class Timeouts(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'limits.cgi_timeout=2s',
            '-o', 'limits.cgi_kill_grace=1s')

    def test_silent_script_gets_504_and_its_process_group_is_killed(self):
        t = tag()
        r = self.get('/cgi-bin/sleep.cgi?' + t, timeout=60)
        pids = self.read_pids(t)
        self.assert_error(r, 504)
        self.assert_processes_gone(pids)
        self.assert_no_zombies()
        self.assert_still_serving()

    def test_script_stalling_after_headers_is_cut_off_truncated(self):
        t = tag()
        data, closed = harness.raw_closed(
            self.port, build_request('GET', '/cgi-bin/stall.cgi?' + t, close=False), timeout=60)
        pids = self.read_pids(t)
        self.assertTrue(closed, 'connection not closed after the script timed out')
        r = harness.read_response(data)
        self.assertEqual(r.status, 200, data[:300])
        self.assertIn(b'partial-body', data)
        self.assertFalse(r.complete, 'a timed-out response must not look complete: %r' % data)
        self.assertFalse(data.endswith(b'0\r\n\r\n'))
        self.assert_processes_gone(pids)
        self.assert_no_zombies()

    def test_script_stalling_after_headers_cuts_an_http10_response_with_a_reset(self):
        # RFC 9112 §8: an HTTP/1.0 body (no chunked coding, no Content-Length)
        # ends at the close and counts as complete unless the connection
        # reports an error: the cut must be a reset, not a FIN
        t = tag()
        s = socket.create_connection(('127.0.0.1', self.port), timeout=60)
        self.addCleanup(s.close)
        s.sendall(build_request('GET', '/cgi-bin/stall.cgi?' + t, version='HTTP/1.0'))
        data, reset = harness.recv_to_end(s, 60)
        pids = self.read_pids(t)
        r = harness.read_response(data)
        self.assertEqual(r.status, 200, data[:300])
        self.assertIsNone(r.header('Content-Length'))
        self.assertIsNone(r.header('Transfer-Encoding'))
        self.assertIn(b'partial-body', data)
        self.assertTrue(reset, 'a cut HTTP/1.0 response ended in a FIN: %r' % data)
        self.assert_processes_gone(pids)
        self.assert_no_zombies()
        self.assert_still_serving()


class LocationTimeout(CgiCase):
    CONF = '''
locations = ( { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; timeout = "1s"; } );
limits: { cgi_kill_grace = "1s"; };
'''

    def test_location_timeout_setting_gives_504(self):
        t = tag()
        r = self.get('/cgi-bin/sleep.cgi?' + t, timeout=60)
        pids = self.read_pids(t)
        self.assert_error(r, 504)
        self.assert_processes_gone(pids)


class ResourceLimits(CgiCase):
    """rlimit_cpu/as/nproc are in place when the program starts (set
    between vfork and exec, never after the program runs)."""
    CONF = '''
locations = (
  { prefix = "/lim/"; handler = "cgi"; dir = "@CGI@";
    rlimit_cpu = "7s"; rlimit_as = "512M"; rlimit_nproc = 4321; },
  { prefix = "/lim-interp/"; handler = "cgi"; dir = "@CGI@"; rlimit_cpu = 9;
    interpreters = [ ".lim=/bin/sh" ]; },
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; }
);
'''
    SCRIPT = (b'#!/bin/sh\nprintf \'Content-Type: text/plain\\r\\n\\r\\n\'\n'
              b'cat /proc/self/limits\nprintf \'argv:%s\\n\' "$0"\n')

    @classmethod
    def prepare(cls):
        for name, mode in (('limits.cgi', 0o755), ('limits.lim', 0o644)):
            with open(os.path.join(cls.cgi, name), 'wb') as f:
                f.write(cls.SCRIPT)
            os.chmod(os.path.join(cls.cgi, name), mode)

    def limits(self, target):
        r = self.get(target)
        self.assertEqual(r.status, 200, '%r\n%s' % (r.raw[:600], self.log_tail()))
        text = r.body.decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)', line)
            if m:
                out[m.group(1)] = (m.group(2), m.group(3))
        return out, text

    def test_limits_are_set_soft_and_hard(self):
        lim, text = self.limits('/lim/limits.cgi')
        self.assertEqual(lim['Max cpu time'], ('7', '7'), text)
        self.assertEqual(lim['Max address space'], (str(512 << 20),) * 2, text)
        self.assertEqual(lim['Max processes'], ('4321', '4321'), text)
        # the program itself runs, with its own name
        self.assertIn('argv:' + os.path.join(self.cgi, 'limits.cgi'), text)

    def test_interpreter_scripts_get_the_limits_too(self):
        lim, text = self.limits('/lim-interp/limits.lim')
        self.assertEqual(lim['Max cpu time'], ('9', '9'), text)
        self.assertIn('argv:' + os.path.join(self.cgi, 'limits.lim'), text)

    def test_without_limits_nothing_is_lowered(self):
        lim, text = self.limits('/cgi-bin/limits.cgi')
        self.assertEqual(lim['Max cpu time'][0], 'unlimited', text)
        self.assertEqual(lim['Max address space'][0], 'unlimited', text)

    def test_missing_interpreter_under_limits_is_502_and_logged(self):
        r = self.get('/lim/bad-interp.cgi')
        self.assert_error(r, 502)
        # under valgrind vfork is a fork, and valgrind ends the child itself
        # when its execve fails: its own line names the program and errno
        self.assert_log(r'bad-interp\.cgi.*No such file or directory|'
                        r'cannot execute .*bad-interp\.cgi' +
                        (r'|execve\(.*bad-interp\.cgi.*failed, errno 2' if harness.VALGRIND
                         else ''), 'exec failure')
        self.assert_still_serving()


class FdHygiene(CgiCase):
    """A CGI program gets its three pipes and nothing else of the worker:
    no listening socket, no other client's connection, no log or spill
    file (O_CLOEXEC everywhere, closefrom as a belt)."""
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')
    SCRIPT = (b'#!/usr/bin/python3\nimport os\nfds = {}\n'
              b'for fd in os.listdir("/proc/self/fd"):\n'
              b'    try:\n        fds[int(fd)] = os.readlink("/proc/self/fd/" + fd)\n'
              b'    except OSError:\n        pass\n'
              b'print("Content-Type: text/plain\\r\\n\\r\\n", end="")\n'
              b'for fd in sorted(fds):\n    print(fd, fds[fd])\n')

    @classmethod
    def prepare(cls):
        path = os.path.join(cls.cgi, 'fds.cgi')
        with open(path, 'wb') as f:
            f.write(cls.SCRIPT)
        os.chmod(path, 0o755)

    def test_program_sees_only_its_pipes(self):
        # other clients hold connections to the same worker meanwhile
        others = [harness.connect(self.port) for _ in range(5)]
        try:
            for s in others:
                s.sendall(b'GET /target.txt HTTP/1.1\r\nHost: x\r\n\r\n')
            body = b'x' * (200 * 1024)  # spooled to a temp file first
            r = self.get('/cgi-bin/fds.cgi', 'POST', body=body)
        finally:
            for s in others:
                s.close()
        self.assertEqual(r.status, 200, r.raw[:500])
        fds = {}
        for line in r.body.decode().splitlines():
            fd, _, target = line.partition(' ')
            fds[int(fd)] = target
        for fd in (0, 1, 2):
            self.assertTrue(fds.get(fd, '').startswith('pipe:') or
                            (fd == 0 and fds.get(fd, '').startswith('/')), (fd, fds))
        extra = {fd: t for fd, t in fds.items()
                 if fd > 2 and not re.match(r'^/proc/\d+/fd$', t)}
        self.assertEqual(extra, {}, fds)

    def test_request_without_body_gives_dev_null_as_stdin(self):
        # no pipe to set up and close at once: the worker's /dev/null
        for _ in range(2):
            r = self.get('/cgi-bin/fds.cgi')
            self.assertEqual(r.status, 200, r.raw[:500])
            fds = dict(line.split(' ', 1) for line in r.body.decode().splitlines())
            self.assertEqual(fds.get('0'), '/dev/null', fds)
            self.assertTrue(fds.get('1', '').startswith('pipe:'), fds)
            self.assertEqual(sorted(fd for fd, t in fds.items()
                                    if fd not in ('0', '1', '2') and
                                    not re.match(r'^/proc/\d+/fd$', t)), [], fds)
        # a program reading its stdin gets end of file at once
        r = self.get('/cgi-bin/echo.cgi')
        self.assertEqual((r.status, r.body), (200, b''), r.raw[:500])


class BrokenPrograms(CgiCase):
    """Scripts that misbehave after their headers: endless output, and
    stdout closed while they keep running."""
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'limits.write_timeout=2s',
            '-o', 'limits.cgi_timeout=3s', '-o', 'limits.cgi_kill_grace=1s')

    def test_endless_output_to_a_client_that_leaves_is_killed(self):
        t = tag()
        s = harness.connect(self.port, 30)
        got = 0
        try:
            s.sendall(build_request('GET', '/cgi-bin/endless.cgi?' + t, close=False))
            pids = self.read_pids(t)
            while got < 4 << 20:
                b = s.recv(65536)
                self.assertTrue(b, 'closed after %d bytes' % got)
                got += len(b)
        finally:
            s.close()
        self.assert_processes_gone(pids, timeout=30)
        self.assert_no_zombies()
        self.assert_still_serving()

    def test_endless_output_to_a_client_that_stops_reading_is_cut(self):
        t = tag()
        s = harness.connect(self.port, 60)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            s.sendall(build_request('GET', '/cgi-bin/endless.cgi?' + t, close=False))
            pids = self.read_pids(t)
            # never read: the response buffer fills (gw_buffer_max bounds it),
            # then write_timeout cuts the connection and the script goes
            self.assert_processes_gone(pids, timeout=60)
            self.assert_log(r'client timed out while reading the response.*endless\.cgi',
                            'the write timeout', timeout=30)
        finally:
            s.close()
        self.assert_no_zombies()
        self.assert_still_serving()

    def test_stdout_closed_early_response_complete_and_script_reaped(self):
        t = tag()
        r = self.get('/cgi-bin/closeout.cgi?' + t, timeout=60)
        self.assertEqual((r.status, r.body), (200, b'all of it\n'), r.raw[:300])
        pids = self.read_pids(t)
        # the script lingers without output: cgi_timeout ends it, and its child
        self.assert_processes_gone(pids, timeout=60)
        self.assert_no_zombies()
        self.assert_still_serving()

    def test_work_after_a_complete_response_is_not_cut_by_the_close(self):
        # Connection: close; the response is whole when stdout closes, so
        # closing the connection detaches the script instead of killing it
        t = tag()
        r = self.get('/cgi-bin/afterwork.cgi?' + t, timeout=60)
        self.assertEqual((r.status, r.body), (200, b'answered\n'), r.raw[:300])
        done = os.path.join(self.run_dir, t + '.done')
        self.assertTrue(wait_for(lambda: os.path.exists(done), 30), self.log_tail())
        self.assert_no_zombies()


class ClientDisconnect(CgiCase):
    # The script timeout is long: only the disconnect can end these scripts.
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'limits.cgi_timeout=120s',
            '-o', 'limits.cgi_kill_grace=1s')

    def test_disconnect_kills_a_silent_script(self):
        t = tag()
        s = harness.connect(self.port, 30)
        s.sendall(build_request('GET', '/cgi-bin/sleep.cgi?' + t, close=False))
        pids = self.read_pids(t)
        s.close()
        self.assert_processes_gone(pids, timeout=30)
        self.assert_no_zombies()

    def test_disconnect_kills_a_script_that_already_sent_headers(self):
        t = tag()
        s = harness.connect(self.port, 30)
        try:
            s.sendall(build_request('GET', '/cgi-bin/stall.cgi?' + t, close=False))
            pids = self.read_pids(t)
            got = b''
            deadline = time.monotonic() + 30
            while b'partial-body' not in got and time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            self.assertIn(b'partial-body', got)
        finally:
            s.close()
        self.assert_processes_gone(pids, timeout=30)
        self.assert_no_zombies()


class Concurrency(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'limits.cgi_max_procs=2',
            '-o', 'limits.cgi_queue=1')

    def started(self, group):
        return sorted(n[len(group) + 1:-len('.started')] for n in os.listdir(self.run_dir)
                      if n.startswith(group + '.') and n.endswith('.started'))

    def release(self, group):
        open(os.path.join(self.run_dir, group + '.release'), 'w').close()

    def test_requests_beyond_procs_and_queue_get_503_queued_one_completes(self):
        g = tag()
        self.addCleanup(self.release, g)
        socks = {}
        self.addCleanup(lambda: [s.close() for s in socks.values()])

        def send(name):
            s = harness.connect(self.port, 60)
            s.sendall(build_request('GET', '/cgi-bin/gate.cgi?%s.%s' % (g, name)))
            socks[name] = s

        send('a')
        send('b')
        self.assertTrue(wait_for(lambda: self.started(g) == ['a', 'b'], 20),
                        'two scripts did not start: %s\n%s' % (self.started(g), self.log_tail()))
        send('c')
        time.sleep(0.5)  # lets c reach the queue first; the asserts accept either order
        send('d')
        ready, _, _ = select.select([socks['c'], socks['d']], [], [], 20)
        self.assertTrue(ready, 'neither the queued nor the excess request was answered')
        rejected = 'c' if socks['c'] in ready else 'd'
        queued = 'd' if rejected == 'c' else 'c'
        r = harness.read_response(socks[rejected])
        r.raw = r.raw_head + r.body
        self.assert_error(r, 503)
        self.assertIsNotNone(r.header('Retry-After'))
        self.assertEqual(self.started(g), ['a', 'b'], 'more than cgi_max_procs scripts ran')
        self.release(g)
        for name in ('a', 'b', queued):
            r = harness.read_response(socks[name])
            self.assertEqual((r.status, r.body), (200, ('gate %s.%s\n' % (g, name)).encode()))
        self.assertEqual(self.started(g), sorted(['a', 'b', queued]))


class QueueTimeout(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'limits.cgi_max_procs=1',
            '-o', 'limits.cgi_queue=4', '-o', 'limits.cgi_queue_timeout=1s')

    def test_request_waiting_too_long_for_a_slot_gets_503(self):
        g = tag()
        release = os.path.join(self.run_dir, g + '.release')
        self.addCleanup(lambda: open(release, 'w').close())
        s1 = harness.connect(self.port, 60)
        self.addCleanup(s1.close)
        s1.sendall(build_request('GET', '/cgi-bin/gate.cgi?%s.a' % g))
        started = os.path.join(self.run_dir, g + '.a.started')
        self.assertTrue(wait_for(lambda: os.path.exists(started), 20))
        r = self.get('/cgi-bin/gate.cgi?%s.b' % g, timeout=30)
        self.assert_error(r, 503)
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, g + '.b.started')))
        open(release, 'w').close()
        r = harness.read_response(s1)
        self.assertEqual((r.status, r.body), (200, ('gate %s.a\n' % g).encode()))


class Reaping(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')

    def test_no_zombies_after_500_sequential_requests(self):
        import http.client
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        try:
            bad = []
            for i in range(500):
                c.request('GET', '/cgi-bin/quick.cgi?%d' % i)
                resp = c.getresponse()
                body = resp.read()
                if (resp.status, body) != (200, b'ok\n'):
                    bad.append((i, resp.status, body[:100]))
                    break  # e.g. unreaped children holding every CGI slot
                if resp.will_close:
                    c.close()
        finally:
            c.close()
        self.assertEqual(bad, [])
        self.assert_no_zombies()


ESCAPE_CGI = b"""#!/usr/bin/python3
# ?MODE-TAG: a setsid grandchild holding stdout and stderr sleeps long under
# the name portico-escapee-TAG; the script itself exits (MODE exit) or
# hangs (MODE hang), writing nothing either way
import os, sys, time
mode, tagv = os.environ['QUERY_STRING'].split('-', 1)
if os.fork() == 0:
    os.setsid()
    os.execv('/bin/sleep', ['portico-escapee-' + tagv, '300'])
if mode == 'hang':
    time.sleep(300)
"""


# A well-behaved background job: detached (setsid, no pipes of ours) under
# the name portico-bgjob-<query>, then a normal response.
BGJOB_CGI = b"""#!/usr/bin/python3
import os
if os.fork() == 0:
    os.setsid()
    fd = os.open('/dev/null', os.O_RDWR)
    for i in range(3):
        os.dup2(fd, i)
    os.execv('/bin/sleep', ['portico-bgjob-' + os.environ['QUERY_STRING'], '300'])
print('Content-Type: text/plain\\n\\nstarted')
"""


def escapees(t, prefix='portico-escapee-'):
    """Pids of the processes named portico-escapee-<t>."""
    want = (prefix + t).encode()
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                argv0 = f.read().split(b'\0')[0]
        except OSError:
            continue
        st = proc_stat(name)
        if argv0 == want and st and st[0] != 'Z':
            out.append(int(name))
    return out


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


class Escapees(CgiCase):
    """Item 4 of the security issue: a program's setsid grandchild leaves
    the process group that the timeout kills. The worker adopts orphans
    (child subreaper), kills what a timed-out program left wherever it
    went, and closes its ends of the pipes at the end of the grace."""
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'limits.cgi_timeout=1s',
            '-o', 'limits.cgi_kill_grace=1s')

    @classmethod
    def prepare(cls):
        for name, text in (('escape.cgi', ESCAPE_CGI), ('bgjob.cgi', BGJOB_CGI)):
            p = os.path.join(cls.cgi, name)
            with open(p, 'wb') as f:
                f.write(text)
            os.chmod(p, 0o755)

    def test_background_job_of_an_earlier_program_survives_a_later_timeout(self):
        t = tag()
        self.addCleanup(lambda: kill_quietly(escapees(t) + escapees(t, 'portico-bgjob-')))
        r = self.get('/cgi-bin/bgjob.cgi?' + t)
        self.assertEqual((r.status, r.body), (200, b'started\n'), r.raw[:300])
        self.assertTrue(wait_for(lambda: escapees(t, 'portico-bgjob-'), 10))
        r = self.get('/cgi-bin/escape.cgi?exit-' + t, timeout=60)
        self.assert_error(r, 504)
        self.assertTrue(wait_for(lambda: not escapees(t), 30), self.log_tail())
        self.assertTrue(escapees(t, 'portico-bgjob-'), 'the earlier background job was killed')

    def test_setsid_grandchildren_of_timed_out_programs_die_and_fds_come_back(self):
        t = tag()
        self.addCleanup(lambda: kill_quietly(escapees(t)))
        self.assert_still_serving()
        (worker,) = self.srv.worker_pids()
        base = fd_count(worker)
        for i in range(4):
            for mode in ('exit', 'hang'):
                r = self.get('/cgi-bin/escape.cgi?%s-%s' % (mode, t), timeout=60)
                self.assert_error(r, 504)
        # before the fix 8 sleepers stayed, each holding two pipes the
        # worker kept reading (16 more fds)
        self.assertTrue(wait_for(lambda: not escapees(t), 30),
                        'escaped grandchildren still running: %s\n%s' %
                        (escapees(t), self.log_tail()))
        self.assertTrue(wait_for(lambda: fd_count(worker) <= base, 30),
                        'worker fds: %d before, %d after' % (base, fd_count(worker)))
        self.assert_no_zombies()
        self.assert_still_serving()


class NoNewPrivs(CgiCase):
    """Programs start with no_new_privs: set-user-ID bits and file
    capabilities give them nothing."""
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')
    WANT = '1'
    SCRIPT = (b"#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
              b"grep '^NoNewPrivs:' /proc/self/status\n")

    @classmethod
    def prepare(cls):
        p = os.path.join(cls.cgi, 'nnp.cgi')
        with open(p, 'wb') as f:
            f.write(cls.SCRIPT)
        os.chmod(p, 0o755)

    def test_program_status_shows_no_new_privs(self):
        r = self.get('/cgi-bin/nnp.cgi')
        self.assertEqual(r.status, 200, '%r\n%s' % (r.raw[:300], self.log_tail()))
        self.assertEqual(r.body.split(), [b'NoNewPrivs:', self.WANT.encode()])


class NoNewPrivsOff(NoNewPrivs):
    """no_new_privs = false: for legacy programs that need set-user-ID
    helpers."""
    ARGS = ('--cgi', '/cgi-bin/=@CGI@', '-o', 'no_new_privs=false')
    WANT = '0'


# -- response buffering ---------------------------------------------------------------

class Buffering(CgiCase):
    CONF = '''
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "@CGI@"; },
  { prefix = "/stream/"; handler = "cgi"; dir = "@CGI@"; buffering = false; }
);
'''

    def start_slow_client(self, target):
        """A client with a small receive buffer that sends the request and
        then reads nothing."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        s.settimeout(60)
        s.connect(('127.0.0.1', self.port))
        s.sendall(build_request('GET', target))
        return s

    def check_full_body(self, s, mb):
        data, closed = recv_until_close(s, 120)
        r = harness.read_response(data)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.complete)
        self.assertEqual(len(r.body), mb * 1024 * 1024)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                         hashlib.sha256(BIG_BLOCK * (16 * mb)).hexdigest())
        return r

    def test_buffered_script_finishes_before_a_slow_client_reads(self):
        t = tag()
        s = self.start_slow_client('/cgi-bin/big.cgi?%s&8' % t)
        done = os.path.join(self.run_dir, t + '.done')
        self.assertTrue(wait_for(lambda: os.path.exists(done), 60),
                        'script blocked on a slow client although buffering is on\n' +
                        self.log_tail())
        self.check_full_body(s, 8)

    def check_streamed(self, target, t):
        s = self.start_slow_client(target)
        done = os.path.join(self.run_dir, t + '.done')
        # 16 MB cannot fit in the pipe and socket buffers while nobody reads
        self.assertFalse(wait_for(lambda: os.path.exists(done), 2),
                         'script finished while the client read nothing: output was buffered')
        r = self.check_full_body(s, 16)
        self.assertTrue(wait_for(lambda: os.path.exists(done), 30))
        return r

    def test_buffering_false_location_streams(self):
        t = tag()
        self.check_streamed('/stream/big.cgi?%s&16' % t, t)

    def test_x_accel_buffering_no_streams_and_is_not_passed_on(self):
        t = tag()
        r = self.check_streamed('/cgi-bin/big.cgi?%s&16&nobuf' % t, t)
        self.assertIsNone(r.header('X-Accel-Buffering'))


# -- real programs --------------------------------------------------------------------

class RealPrograms(CgiCase):
    ARGS = ('--cgi', '/cgi-bin/=@CGI@')

    def test_shell_script(self):
        r = self.get('/cgi-bin/hello-sh.cgi?x=1')
        self.assertEqual((r.status, r.body), (200, b'hello from sh: GET x=1\n'))

    @unittest.skipUnless(os.access(PERL, os.X_OK), 'perl not installed')
    def test_perl_script_reads_its_body(self):
        r = self.get('/cgi-bin/hello.pl?y', 'POST', body=b'abc')
        self.assertEqual((r.status, r.body), (200, b'hello from perl: POST y 3\n'))

    @unittest.skipUnless(os.access(PYTHON, os.X_OK), '/usr/bin/python3 not installed')
    def test_python_script_reads_its_body(self):
        body = os.urandom(100000)
        r = self.get('/cgi-bin/hello.py?z', 'POST', body=body)
        self.assertEqual(r.status, 200, r.raw[:300])
        self.assertEqual(r.body, ('hello from python: POST z %s\n' %
                                  hashlib.sha256(body).hexdigest()).encode())

    @unittest.skipUnless(shutil.which('cc'), 'no C compiler (cc)')
    def test_compiled_c_program(self):
        exe = os.path.join(self.cgi, 'hello-c.cgi')
        p = subprocess.run(['cc', '-o', exe, os.path.join(CGI_SRC, 'hello.c')],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120, cwd=self.base)
        self.assertEqual(p.returncode, 0, p.stdout)
        r = self.get('/cgi-bin/hello-c.cgi?q=2')
        self.assertEqual((r.status, r.header('X-Lang'), r.body),
                         (200, 'C', b'hello from C: GET q=2\n'))


def run_git(args, env, cwd=None, timeout=120):
    p = subprocess.run([GIT] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError('git %s failed (%d):\n%s%s' % (' '.join(args), p.returncode,
                                                             p.stdout.decode('utf-8', 'replace'),
                                                             p.stderr.decode('utf-8', 'replace')))
    return p.stdout.decode().strip()


def file_sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_repo(base, bare_path, message):
    """A bare repository with one commit (README), made with local git only."""
    env = clean_env(os.path.join(base, 'home'))
    os.makedirs(env['HOME'], exist_ok=True)
    seed = os.path.join(base, 'seed-' + tag())
    run_git(['init', '-q', '--bare', bare_path], env)
    run_git(['init', '-q', seed], env)
    with open(os.path.join(seed, 'README'), 'w') as f:
        f.write('seed for portico tests\n')
    run_git(['add', 'README'], env, seed)
    run_git(['commit', '-q', '-m', message], env, seed)
    run_git(['push', '-q', bare_path, 'HEAD:refs/heads/master'], env, seed)
    run_git(['symbolic-ref', 'HEAD', 'refs/heads/master'], env, bare_path)
    shutil.rmtree(seed)
    return env


@unittest.skipUnless(shutil.which('git') and os.access(GIT_HTTP_BACKEND, os.X_OK),
                     'git http-backend not installed (apt-get install git)')
class GitHttpBackend(CgiCase):
    CONF = '''
locations = (
  { prefix = "/git"; handler = "cgi"; program = "%s";
    env = [ "GIT_PROJECT_ROOT=@BASE@/repos", "GIT_HTTP_EXPORT_ALL=1" ]; }
);
''' % GIT_HTTP_BACKEND

    @classmethod
    def prepare(cls):
        bare = os.path.join(cls.base, 'repos', 'project.git')
        os.makedirs(os.path.dirname(bare))
        cls.git_env = make_repo(cls.base, bare, 'initial commit')
        run_git(['config', 'http.receivepack', 'true'], cls.git_env, bare)
        cls.bare = bare

    def test_clone_push_large_chunked_commit_and_reclone(self):
        env = self.git_env
        url = self.srv.url('/git/project.git')
        c1 = os.path.join(self.base, 'clone1')
        run_git(['clone', '-q', url, c1], env)
        with open(os.path.join(c1, 'README')) as f:
            self.assertEqual(f.read(), 'seed for portico tests\n')
        with open(os.path.join(c1, 'big.bin'), 'wb') as f:
            f.write(os.urandom(3 * 1024 * 1024))
        run_git(['add', 'big.bin'], env, c1)
        run_git(['commit', '-q', '-m', 'several megabytes'], env, c1)
        trace = os.path.join(self.base, 'push-trace.txt')
        penv = dict(env, GIT_TRACE_CURL=trace, GIT_TRACE_CURL_NO_DATA='1')
        run_git(['-c', 'http.postBuffer=65536', 'push', '-q', 'origin', 'HEAD:master'], penv, c1)
        with open(trace, 'rb') as f:
            self.assertIn(b'transfer-encoding: chunked', f.read().lower(),
                          'git did not send a chunked body; the test lost its point')
        head = run_git(['rev-parse', 'HEAD'], env, c1)
        self.assertEqual(run_git(['rev-parse', 'master'], env, self.bare), head)
        c2 = os.path.join(self.base, 'clone2')
        run_git(['clone', '-q', url, c2], env)
        self.assertEqual(run_git(['rev-parse', 'HEAD'], env, c2), head)
        self.assertEqual(file_sha256(os.path.join(c2, 'big.bin')),
                         file_sha256(os.path.join(c1, 'big.bin')))
        run_git(['fsck', '--strict'], env, self.bare)


@unittest.skipUnless(shutil.which('git') and os.access(GITWEB, os.R_OK),
                     'gitweb not installed (apt-get install gitweb)')
class Gitweb(CgiCase):
    CONF = '''
locations = (
  { prefix = "/gitweb"; handler = "cgi"; program = "%s";
    env = [ "GITWEB_CONFIG=@BASE@/gitweb.conf", "GITWEB_CONFIG_SYSTEM=@BASE@/none.conf" ]; }
);
''' % GITWEB

    @classmethod
    def prepare(cls):
        projects = os.path.join(cls.base, 'projects')
        os.makedirs(projects)
        make_repo(cls.base, os.path.join(projects, 'demo-project.git'), 'gitweb seed commit')
        with open(os.path.join(cls.base, 'gitweb.conf'), 'w') as f:
            f.write('our $projectroot = "%s";\nour $GIT = "%s";\n'
                    'our $site_name = "portico gitweb test";\n' % (projects, GIT))

    def test_project_list_shows_the_repository(self):
        r = self.get('/gitweb/', timeout=60)
        self.assertEqual(r.status, 200, r.raw[:600])
        self.assertIn('text/html', r.header('Content-Type') or '')
        self.assertIn(b'demo-project.git', r.body)

    def test_project_summary_shows_the_commit(self):
        r = self.get('/gitweb/?p=demo-project.git;a=summary', timeout=60)
        self.assertEqual(r.status, 200, r.raw[:600])
        self.assertIn(b'gitweb seed commit', r.body)


@unittest.skipUnless(os.access(PHP_CGI, os.X_OK), 'php-cgi not installed (apt-get install php-cgi)')
class PhpCgi(CgiCase):
    CONF = '''
locations = ( { extension = ".php"; handler = "cgi"; interpreters = [ ".php=%s" ]; } );
''' % PHP_CGI

    @classmethod
    def prepare(cls):
        copy_script('hello.php', os.path.join(cls.www, 'hello.php'), 0o644)

    def test_php_cgi_runs_a_script_as_interpreter(self):
        r = self.get('/hello.php?a=1')
        self.assertEqual((r.status, r.body), (200, b'ok GET a=1'), r.raw[:600])
        r = self.get('/hello.php', 'POST', body=b'x=1',
                     headers={'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual((r.status, r.body), (200, b'ok POST '), r.raw[:600])


if __name__ == '__main__':
    harness.main()
