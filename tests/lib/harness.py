"""harness.py: shared helpers for portico's integration tests: starting and
stopping a real portico process on 127.0.0.1, raw-socket and http.client
clients, an HTTP/1.x response parser, and a unittest runner that prints TAP.

Standard library only; run with Debian's /usr/bin/python3."""

import atexit
import http.client
import os
import re
import shutil
import signal as _signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
import weakref

__all__ = [
    'tag', 'recv_until_close', 'recv_to_end', 'build_request', 'fetch',
    'PORTICO', 'Server', 'connect', 'raw', 'raw_closed', 'send_recv_responses', 'Response',
    'read_response', 'parse_responses', 'request', 'curl', 'main', 'free_port',
    'ipv6_loopback_ok', 'SANITIZER_MARKERS', 'VALGRIND', 'wait_port_closed',
    'start_class_server', 'stop_class_server',
]


def debian_import(*names):
    """Import the named modules; when one is missing, look again in
    Debian's /usr/lib/python3/dist-packages (the suite installs python3-h2,
    python3-brotli and the like there; a configure that found another
    python3 still finds them). The first name's top-level package, or None
    when they are not installed (tests that need them skip)."""
    import importlib
    for attempt in (0, 1):
        try:
            for n in names:
                importlib.import_module(n)
            return importlib.import_module(names[0].split('.')[0])
        except ImportError:
            if attempt == 0 and '/usr/lib/python3/dist-packages' not in sys.path:
                sys.path.append('/usr/lib/python3/dist-packages')
    return None


def _default_portico():
    p = os.environ.get('PORTICO')
    if p:
        return p
    b = os.environ.get('PT_BUILDDIR')
    if b:
        return os.path.join(b, 'src', 'portico')
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, '..', '..', 'src', 'portico')


PORTICO = _default_portico()

SANITIZER_MARKERS = ('AddressSanitizer', 'LeakSanitizer', 'runtime error:',
                     'UndefinedBehaviorSanitizer')

# PT_VALGRIND=1: every server runs under valgrind memcheck (workers are
# forked, so they are checked too; CGI programs it executes are not). A
# memcheck report in the server's stderr fails the test like a sanitizer's.
VALGRIND = os.environ.get('PT_VALGRIND', '') not in ('', '0')
VALGRIND_CMD = ['valgrind', '-q', '--leak-check=full', '--show-leak-kinds=definite',
                '--errors-for-leak-kinds=definite', '--error-exitcode=99',
                '--child-silent-after-fork=no', '--trace-children=no', '--num-callers=30']
VALGRIND_RE = re.compile(r'^==\d+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|'
                         r'Syscall param|Mismatched free|Source and destination overlap|'
                         r'Jump to the invalid address|Process terminating|'
                         r'\S.* definitely lost in )', re.M)

_tmpdirs = []


@atexit.register
def _cleanup_tmpdirs():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def _mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _tmpdirs.append(d)
    return d


def root_user(conf):
    """A configuration file read by portico started as root must name the
    workers' user: the tests' servers run as whoever runs the suite, so as
    root they say user = "root" unless the test sets a user itself."""
    if os.geteuid() == 0 and not re.search(r'^\s*user\s*[=:]', conf, re.M):
        return 'user = "root"; ' + conf  # same line: line numbers stay
    return conf


def free_port(host='127.0.0.1'):
    """A port that was free a moment ago (bind :0, read it, close)."""
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_ok():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(('::1', 0))
        return True
    except OSError:
        return False


def _proc_stat(pid):
    """(ppid, sid, state) of a /proc entry, or None if it vanished."""
    try:
        with open('/proc/%s/stat' % pid, 'rb') as f:
            data = f.read().decode('ascii', 'replace')
    except OSError:
        return None
    # comm may contain spaces/parens: split after the last ')'
    rest = data[data.rfind(')') + 2:].split()
    return int(rest[1]), int(rest[3]), rest[0]


def _procs_where(pred):
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        st = _proc_stat(name)
        if st and pred(st):
            out.append(int(name))
    return out


def fill_unix_backlog(path, keep, most=100):
    """Connects to the Unix socket at path until its listen backlog is full
    (a non-blocking connect fails with EAGAIN); the connected sockets are
    appended to keep, for the caller to close. RuntimeError when `most`
    did not fill it."""
    for _ in range(most):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            s.close()
            return
        keep.append(s)
    raise RuntimeError('could not fill the backlog of a Unix socket')


def wait_port_closed(port, host='127.0.0.1', timeout=20):
    """True once nothing accepts connections on host:port any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s = connect(port, timeout=2, host=host)
            s.close()
        except OSError:
            return True
        time.sleep(0.1)
    return False


def wait_port_open(port, host='127.0.0.1', timeout=20):
    """True once something accepts connections on host:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connect(port, timeout=2, host=host).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_class_server(cls, *args, **kw):
    """setUpClass: start the server a TestCase class shares as cls.srv
    (its port in cls.port)."""
    cls.srv = Server(*args, **kw)
    cls.srv.start()
    cls.port = cls.srv.port
    return cls.srv


def stop_class_server(cls):
    """tearDownClass: stop the server cls itself started (not one a base
    class started), assert it exited cleanly and remove its files."""
    srv = cls.__dict__.get('srv')
    if srv is None:
        return
    try:
        rc = srv.stop()
        assert rc == 0, 'portico exited with %r on SIGTERM' % rc
    finally:
        shutil.rmtree(srv.tmpdir, ignore_errors=True)


def proc_status(pid, key):
    """A /proc/PID/status value in KiB (VmRSS, VmHWM)."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def knock(port, host='127.0.0.1'):
    """A connection opened and closed at once, if the server takes it: a
    poke for strace_during."""
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError:
        pass


def strace_during(tc, pid, fn, poke, seen, calls=None, log=None, settle=0.5):
    """What strace -f -qq writes of process pid's system calls while fn()
    runs (calls: its trace= list; None, every call). strace attaching
    shows only in its log, so poke() runs until a call named seen is
    there (a call name, or any text); the calls until then, and settle seconds more, are left out.
    After fn(), settle seconds let the last calls be written before strace
    detaches (also when fn() raises). log: strace's file (default in a
    temporary directory)."""
    if log is None:
        log = os.path.join(_mkdtemp('pt-strace-'), 'strace.txt')

    def text():
        try:
            with open(log) as f:
                return f.read()
        except FileNotFoundError:
            return ''
    st = subprocess.Popen(['strace', '-f', '-qq', '-o', log] +
                          (['-e', 'trace=' + calls] if calls else []) + ['-p', str(pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while seen not in text():
            tc.assertLess(time.monotonic(), deadline, 'strace did not attach')
            poke()
            time.sleep(0.2)
        time.sleep(settle)  # the poke's own calls
        skip = len(text())
        fn()
        time.sleep(settle)
    finally:
        st.send_signal(_signal.SIGINT)
        st.wait(timeout=60)
    return text()[skip:]


class TcpUpstream:
    """A made-up upstream in threads of the test: it listens on 127.0.0.1
    (a free port, in .port) and hands each connection to serve(sock), which
    a subclass writes, in a thread of its own; stop() closes the listener.
    A subclass sets up its own state before calling this __init__, which
    starts accepting at once."""

    def __init__(self, backlog=16):
        self.ls = socket.socket()
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(backlog)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return  # stop() closed the listener
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        raise NotImplementedError

    def stop(self):
        self.ls.close()


def _listening_inodes(port):
    """Inodes of the sockets listening on TCP port (any address)."""
    out = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == '0A' and int(fields[1].rsplit(':', 1)[1], 16) == port:
                        out.add(fields[9])
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return out


def _socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir('/proc/%d/fd' % pid)
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:['):
            out.add(link[8:-1])
    return out


def listener_owned_by_other(port, pids):
    """True when something listens on port and a process outside pids
    holds that socket while none of pids does: the port was taken by
    another test's server between free_port() and our bind (parallel
    test runs), so a connect there reaches the wrong server."""
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    for p in pids:
        if inodes & _socket_inodes(p):
            return False
    for name in os.listdir('/proc'):
        if name.isdigit() and int(name) not in pids and inodes & _socket_inodes(int(name)):
            return True
    return False


class Server:
    """A portico process in the foreground, in its own session.

    Extra keyword arguments beyond the brief's API:
      listen: list of -l values replacing the default ['127.0.0.1:@PORT@'];
              [] adds no -l at all (the config file's or -p's listeners apply).
      host:   the address to connect to (default 127.0.0.1; '::1' for IPv6).
      docroot=False: do not pass -r (use the config file's root).
      cwd:    working directory of the process (default: .tmpdir).
    The string '@PORT@' is replaced by the chosen port in args, listen and conf.
    access_log=True picks <tmpdir>/access.log (see .access_log, access_log_text()).
    error_log: value of --error-log (default 'stderr', captured by stderr_text());
               None passes no --error-log.
    """

    def __init__(self, *args, conf=None, docroot=None, workers=1, env=None, files=None,
                 access_log=None, port=None, listen=None, host='127.0.0.1', cwd=None,
                 error_log='stderr'):
        self.args = [str(a) for a in args]
        self.conf = conf
        self.workers = workers
        self.env = env
        self.fixed_port = port
        self.listen = listen
        self.host = host
        self.tmpdir = _mkdtemp('portico-test-')
        if docroot is None:
            docroot = os.path.join(self.tmpdir, 'docroot')
            os.mkdir(docroot)
            self.pass_root = True
        elif docroot is False:
            docroot = None
            self.pass_root = False
        else:
            self.pass_root = True
        self.docroot = docroot
        if access_log is True:
            access_log = os.path.join(self.tmpdir, 'access.log')
        self.access_log = access_log
        self.cwd = cwd or self.tmpdir
        self.error_log = error_log
        self.port = None
        self.pid = None
        self.proc = None
        self.conf_path = None
        self.stderr_path = os.path.join(self.tmpdir, 'stderr.log')
        self.stdout_path = os.path.join(self.tmpdir, 'stdout.log')
        self._stopped_rc = None
        if files:
            for rel, content in files.items():
                self.write_file(rel, content)

    # -- files ------------------------------------------------------------
    def write_file(self, rel, content):
        path = os.path.join(self.docroot, rel.lstrip('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, str):
            content = content.encode('utf-8')
        with open(path, 'wb') as f:
            f.write(content)
        return path

    # -- lifecycle --------------------------------------------------------
    def _cmd(self, port):
        sub = lambda s: s.replace('@PORT@', str(port))
        cmd = (VALGRIND_CMD if VALGRIND else []) + [PORTICO]
        if self.conf is not None:
            self.conf_path = os.path.join(self.tmpdir, 'portico.conf')
            with open(self.conf_path, 'w') as f:
                f.write(root_user(sub(self.conf)))
            cmd += ['-c', self.conf_path]
        listen = ['127.0.0.1:@PORT@'] if self.listen is None else self.listen
        for l in listen:
            cmd += ['-l', sub(l)]
        if self.workers is not None:
            cmd += ['-w', str(self.workers)]
        if self.error_log is not None:
            cmd += ['--error-log', self.error_log]
        if self.access_log is not None:
            cmd += ['--access-log', self.access_log]
        if self.pass_root and self.docroot is not None:
            cmd += ['-r', self.docroot]
        cmd += [sub(a) for a in self.args]
        return cmd

    def start(self, timeout=20):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        last_err = ''
        for _attempt in range(5):
            port = self.fixed_port or free_port('::1' if ':' in self.host else '127.0.0.1')
            self.port = port
            self.cmd = self._cmd(port)
            errf = open(self.stderr_path, 'ab')
            outf = open(self.stdout_path, 'ab')
            self._stderr_offset = errf.tell()
            try:
                self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=outf,
                                             stderr=errf, start_new_session=True, env=env,
                                             cwd=self.cwd)
            finally:
                errf.close()
                outf.close()
            self.pid = self.proc.pid
            self._stopped_rc = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    s = connect(port, timeout=1, host=self.host)
                    s.close()
                except OSError:
                    time.sleep(0.05)
                    continue
                if not listener_owned_by_other(port, [self.pid] + self._session_pids()):
                    return self
                # someone else's listener: ours fails with "in use" (retried)
                time.sleep(0.05)
            if self.proc.poll() is None:
                self._kill_all()
                raise RuntimeError('portico did not accept connections on port %d within %ss\n'
                                   'cmd: %s\nstderr:\n%s' % (port, timeout, ' '.join(self.cmd),
                                                            self.stderr_text()))
            last_err = self.stderr_text()
            self._reap_session()
            if 'in use' in last_err and not self.fixed_port:
                continue
            break
        raise RuntimeError('portico exited with %s before serving\ncmd: %s\nstderr:\n%s' %
                           (self.proc.returncode, ' '.join(self.cmd), last_err))

    def _session_pids(self):
        if self.pid is None:
            return []
        return [p for p in _procs_where(lambda st: st[1] == self.pid and st[2] != 'Z')]

    def _reap_session(self):
        for p in self._session_pids():
            try:
                os.kill(p, _signal.SIGKILL)
            except OSError:
                pass

    def _kill_all(self):
        try:
            os.killpg(self.pid, _signal.SIGKILL)
        except OSError:
            pass
        self._reap_session()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path):
        h = '[%s]' % self.host if ':' in self.host else self.host
        return 'http://%s:%d%s' % (h, self.port, path)

    def stderr_text(self):
        try:
            with open(self.stderr_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def access_log_text(self):
        try:
            with open(self.access_log, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except (OSError, TypeError):
            return ''

    def wait_for_log(self, regex, timeout=10):
        return self.wait_for(lambda: re.search(regex, self.stderr_text(), re.M), timeout)

    @staticmethod
    def wait_for(pred, timeout=10, interval=0.05):
        deadline = time.monotonic() + timeout
        while True:
            r = pred()
            if r:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def worker_pids(self):
        if not self.running:
            return []
        return sorted(_procs_where(lambda st: st[0] == self.pid and st[2] != 'Z'))

    def signal(self, sig):
        os.kill(self.pid, sig)

    def connect(self, timeout=10):
        return connect(self.port, timeout, host=self.host)

    def stop(self, sig=_signal.SIGTERM, timeout=20):
        """Stop the server; returns its exit code. Raises AssertionError on a
        sanitizer report in stderr, on a hang, or if processes of its session
        are left behind (those are SIGKILLed first)."""
        if self.proc is None:
            return None
        if self._stopped_rc is not None:
            return self._stopped_rc
        problems = []
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append('portico did not exit within %ss of signal %s' % (timeout, sig))
                self._kill_all()
        rc = self.proc.returncode
        self._stopped_rc = rc
        # Workers should be gone with the master; allow a short grace for exit.
        if not self.wait_for(lambda: not self._session_pids(), timeout=5):
            left = self._session_pids()
            self._reap_session()
            problems.append('processes left behind in the server session: %s' % left)
        text = self.stderr_text()
        for m in SANITIZER_MARKERS:
            if m in text:
                problems.append('sanitizer report (%s) in stderr' % m)
                break
        m = VALGRIND_RE.search(text)
        if m:
            problems.append('valgrind report (%s) in stderr' % m.group(0))
        if problems:
            raise AssertionError('; '.join(problems) + '\nstderr:\n' + text[-8000:])
        return rc

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.proc is not None and self._stopped_rc is None:
                try:
                    self.stop()
                except AssertionError:
                    if exc_type is None:
                        raise
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return False


# -- clients --------------------------------------------------------------

def connect(port, timeout=10, host='127.0.0.1'):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def raw_closed(port, data, timeout=10, host='127.0.0.1'):
    """Send data, then read until the server closes or timeout.
    Returns (bytes, closed): closed is True on EOF or reset, False on timeout."""
    s = connect(port, timeout, host)
    chunks = []
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            chunks.append(b)
    finally:
        s.close()
    return b''.join(chunks), closed


def raw(port, data, timeout=10, host='127.0.0.1'):
    """Send data, read until the server closes the connection (or timeout)."""
    return raw_closed(port, data, timeout, host)[0]


class Response:
    def __init__(self, version, status, reason, headers, body=b'', complete=True):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.complete = complete
        self.raw_head = b''

    def header(self, name):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return None

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def __repr__(self):
        return '<Response %s %d %s %r body=%d bytes>' % (self.version, self.status, self.reason,
                                                         self.headers, len(self.body))


class _Reader:
    """Byte source over a socket, a file object or a bytes buffer."""

    def __init__(self, src, initial=b''):
        self.src = src
        self.buf = bytearray(initial)
        self.eof = False

    def _fill(self):
        if self.eof or self.src is None:
            self.eof = True
            return False
        try:
            if hasattr(self.src, 'recv'):
                b = self.src.recv(65536)
            elif hasattr(self.src, 'read1'):
                b = self.src.read1(65536)
            else:
                b = self.src.read(65536)
        except ConnectionResetError:
            b = b''
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def readline(self):
        """One line including its LF; b'' at EOF; partial line at EOF returned as is."""
        start = 0
        while True:
            i = self.buf.find(b'\n', start)
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            start = len(self.buf)
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read(self, n):
        while len(self.buf) < n and self._fill():
            pass
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_all(self):
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def at_end(self):
        return not self.buf and (self.eof or not self._fill())


_leftover = weakref.WeakKeyDictionary()


def _read_one(r, method='GET'):
    """Parse one response from reader r; None at clean EOF. Raises ValueError
    on something that is not an HTTP/1.x response."""
    line = r.readline()
    if line == b'':
        return None
    head = bytearray(line)
    m = re.match(rb'^(HTTP/\d\.\d) (\d{3})(?: ([^\r\n]*))?\r?\n$', line)
    if not m:
        raise ValueError('not an HTTP status line: %r' % line[:200])
    version = m.group(1).decode()
    status = int(m.group(2))
    reason = (m.group(3) or b'').decode('latin-1')
    headers = []
    complete = True
    while True:
        h = r.readline()
        head += h
        if h in (b'\r\n', b'\n'):
            break
        if not h.endswith(b'\n'):
            complete = False
            break
        k, sep, v = h.rstrip(b'\r\n').partition(b':')
        if not sep:
            raise ValueError('bad response header line: %r' % h)
        headers.append((k.decode('latin-1'), v.strip(b' \t').decode('latin-1')))
    resp = Response(version, status, reason, headers, b'', complete)
    resp.raw_head = bytes(head)
    if not complete:
        return resp
    if method == 'HEAD' or 100 <= status < 200 or status in (204, 304):
        return resp
    te = resp.header('Transfer-Encoding')
    cl = resp.header('Content-Length')
    if te and 'chunked' in te.lower():
        body = bytearray()
        while True:
            sl = r.readline()
            if not sl.endswith(b'\n'):
                resp.complete = False
                break
            size = int(sl.split(b';')[0].strip(), 16)
            if size == 0:
                while True:  # trailers
                    t = r.readline()
                    if t in (b'\r\n', b'\n', b''):
                        break
                break
            data = r.read(size)
            body += data
            if len(data) < size:
                resp.complete = False
                break
            r.readline()
        resp.body = bytes(body)
    elif cl is not None:
        n = int(cl)
        resp.body = r.read(n)
        resp.complete = len(resp.body) == n
    else:
        resp.body = r.read_all()
    return resp


def _methods_for(methods, n):
    if methods is None:
        return ['GET'] * n
    if isinstance(methods, str):
        return [methods] * n
    methods = list(methods)
    return methods + ['GET'] * (n - len(methods))


def read_response(sock_or_file, method='GET'):
    """Read one response from a socket (bytes read past it are kept for the
    next call on the same socket) or a binary file object."""
    if isinstance(sock_or_file, (bytes, bytearray)):
        return _read_one(_Reader(None, sock_or_file), method)
    if isinstance(sock_or_file, socket.socket):
        r = _Reader(sock_or_file, _leftover.get(sock_or_file, b''))
        try:
            resp = _read_one(r, method)
        finally:
            _leftover[sock_or_file] = bytes(r.buf)
        if resp is None:
            raise ConnectionError('connection closed before a response')
        return resp
    resp = _read_one(_Reader(sock_or_file), method)
    if resp is None:
        raise ConnectionError('end of file before a response')
    return resp


def send_recv_responses(sock, n, head_only_methods=()):
    """Read n responses from sock. head_only_methods: either the request
    methods in order ('GET', 'HEAD', ...) or the 0-based indexes of the
    responses that carry no body (answers to HEAD)."""
    items = list(head_only_methods)
    if items and all(isinstance(i, int) for i in items):
        methods = ['HEAD' if i in items else 'GET' for i in range(n)]
    else:
        methods = _methods_for(items, n)
    return [read_response(sock, methods[i]) for i in range(n)]


def parse_responses(data, methods=None):
    """All responses in data (a complete byte string). methods: request
    methods in order (a HEAD response has no body)."""
    r = _Reader(None, data)
    out = []
    ms = list(methods) if methods is not None and not isinstance(methods, str) else None
    i = 0
    while True:
        if ms is not None:
            m = ms[i] if i < len(ms) else 'GET'
        else:
            m = methods if isinstance(methods, str) else 'GET'
        resp = _read_one(r, m)
        if resp is None:
            break
        out.append(resp)
        if 100 <= resp.status < 200:
            continue  # interim: does not consume a request
        i += 1
    return out


def request(port, method, path, headers=None, body=None, timeout=10, host='127.0.0.1'):
    """One request via http.client -> (status, {lowercase name: value}, body)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            k = k.lower()
            hdrs[k] = hdrs[k] + ', ' + v if k in hdrs else v
        return r.status, hdrs, data
    finally:
        c.close()


def curl(*args, timeout=30):
    return subprocess.run(['curl', '-sS'] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


# -- TAP runner -----------------------------------------------------------

class _TapResult(unittest.TestResult):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.n = 0
        self.failed = 0

    def _name(self, test):
        if isinstance(test, unittest.TestCase):
            return '%s.%s' % (type(test).__name__, test._testMethodName)
        return str(test)

    def _emit(self, line, diag=None):
        self.n += 1
        self.out.write(line % self.n + '\n')
        if diag:
            for l in diag.rstrip('\n').split('\n'):
                self.out.write('# ' + l + '\n')
        self.out.flush()

    def addSuccess(self, test):
        self._emit('ok %d - ' + self._name(test).replace('%', '%%'))

    def addFailure(self, test, err):
        self.failed += 1
        self._emit('not ok %d - ' + self._name(test).replace('%', '%%'),
                   self._exc_info_to_string(err, test))

    addError = addFailure

    def addSkip(self, test, reason):
        self._emit('ok %d - ' + self._name(test).replace('%', '%%') + ' # SKIP ' +
                   reason.replace('%', '%%').replace('\n', ' '))

    def addExpectedFailure(self, test, err):
        self._emit('not ok %d - ' + self._name(test).replace('%', '%%') + ' # TODO expected')

    def addUnexpectedSuccess(self, test):
        self._emit('ok %d - ' + self._name(test).replace('%', '%%') + ' # TODO unexpected')

    def addSubTest(self, test, subtest, err):
        if err is not None:
            # a failing subTest fails its test; report it as its own line
            self.failed += 1
            desc = '%s.%s %s' % (type(test).__name__, test._testMethodName,
                                 subtest._subDescription())
            self._emit('not ok %d - ' + desc.replace('%', '%%'),
                       self._exc_info_to_string(err, test))


# -- raw request helpers shared by the gateway tests ---------------------------

def tag():
    return 't' + uuid.uuid4().hex[:12]


def _recv_end(s, timeout):
    """Read until the peer ends the connection or timeout. Returns (bytes,
    how): how is 'fin', 'reset', or None after timeout."""
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b''.join(chunks), None
        s.settimeout(left)
        try:
            b = s.recv(262144)
        except socket.timeout:
            return b''.join(chunks), None
        except ConnectionResetError:
            return b''.join(chunks), 'reset'
        if not b:
            return b''.join(chunks), 'fin'
        chunks.append(b)


def recv_until_close(s, timeout):
    """Read until EOF/reset or timeout. Returns (bytes, closed)."""
    data, how = _recv_end(s, timeout)
    return data, how is not None


def recv_to_end(s, timeout=60):
    """Read until the peer ends the connection. Returns (bytes, reset): True
    for an RST, False for a FIN. AssertionError after timeout."""
    data, how = _recv_end(s, timeout)
    if how is None:
        raise AssertionError('connection still open after %ss: %r' % (timeout, data[:300]))
    return data, how == 'reset'


def build_request(method, target, headers=(), body=None, chunks=None, host='localhost',
                  version='HTTP/1.1', close=True):
    lines = ['%s %s %s' % (method, target, version)]
    if host is not None:
        lines.append('Host: ' + host)
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {k.lower() for k, _ in hdrs}
    if chunks is not None:
        hdrs.append(('Transfer-Encoding', 'chunked'))
        body = b''.join(b'%x\r\n%s\r\n' % (len(c), c) for c in chunks if c) + b'0\r\n\r\n'
    elif body is not None and 'content-length' not in names:
        hdrs.append(('Content-Length', str(len(body))))
    if close and version == 'HTTP/1.1' and 'connection' not in names:
        hdrs.append(('Connection', 'close'))
    lines += ['%s: %s' % kv for kv in hdrs]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + (body or b'')


def fetch(port, method, target, headers=(), body=None, chunks=None, host='localhost',
          version='HTTP/1.1', close=True, timeout=30):
    """One request on a fresh socket, the target sent byte for byte; reads
    until the server closes. Returns the first harness.Response with .raw
    (all bytes), .rest (bytes after the head), .closed and .lport."""
    req = build_request(method, target, headers, body, chunks, host, version, close)
    s = connect(port, timeout)
    lport = s.getsockname()[1]
    try:
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = recv_until_close(s, timeout)
    finally:
        s.close()
    if not data:
        raise AssertionError('no response to %s %s (closed=%s)' % (method, target, closed))
    resp = read_response(data, method)
    resp.raw = data
    resp.rest = data.partition(b'\r\n\r\n')[2]
    resp.closed = closed
    resp.lport = lport
    return resp


def main():
    """Run the calling module's TestCase classes, printing TAP. Optional
    argv: test name filters (substring of Class.method)."""
    mod = sys.modules['__main__']
    suite = unittest.TestLoader().loadTestsFromModule(mod)
    filters = sys.argv[1:]

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flatten(t)
            else:
                yield t

    tests = list(flatten(suite))
    if filters:
        tests = [t for t in tests
                 if any(f in '%s.%s' % (type(t).__name__, getattr(t, '_testMethodName', ''))
                        for f in filters)]
    result = _TapResult(sys.stdout)
    # Run class by class so setUpClass/tearDownClass fixtures work.
    unittest.TestSuite(tests).run(result)
    sys.stdout.write('1..%d\n' % result.n)
    sys.stdout.flush()
    sys.exit(0 if result.failed == 0 else 1)
