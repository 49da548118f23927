"""t_resolve.py: one path resolver for every handler (SECURITY.md "Files").

A table: every handler that looks a request path up (static file, static
index file, gateway index file index.php, CGI directory with sh scripts and
with a compiled program, extension interpreter .pl, FastCGI .php through
PHP-FPM, and a CGI local redirect to a static file and to a .php script)
x every kind of symlink (to a file outside the root, to a directory outside,
dangling, a loop, to a file inside) x follow_symlinks false / true, each
cell with its exact status, and for a 200 the body it must come from.

Layout under a private base directory:
    base/www/   the document root        base/cgi/   the CGI directory
    base/out/   outside: secret.*, index.html
    base/outp/  outside: index.php only (the gateway index of a directory)
In each of www/ and cgi/ the links are
    of<ext>  -> /abs/base/out/secret<ext>     (a file outside, absolute)
    od       -> ../out                        (a directory outside, relative)
    dg<ext>  -> /abs/base/nothing<ext>        (dangling)
    lp<ext>  -> lp<ext>                       (a loop)
    in<ext>  -> /abs/<www or cgi>/real<ext>   (a file inside, absolute)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

PERL = '/usr/bin/perl'
CASES = ('of', 'od', 'dg', 'lp', 'in')
HAVE_FPM = phpfpm.find_php_fpm() is not None
HAVE_CC = shutil.which('cc') is not None
HAVE_PERL = os.access(PERL, os.X_OK)

SH = '#!/bin/sh\nprintf \'Content-Type: text/plain\\r\\n\\r\\n%s\\n\'\n'
PL = '#!/usr/bin/perl\nprint "Content-Type: text/plain\\r\\n\\r\\n%s\\n";\n'
PHP = '<?php echo "%s\\n";\n'
C = ('#include <stdio.h>\nint main(void){fputs("Content-Type: text/plain\\r\\n\\r\\n%s\\n",'
     ' stdout);return 0;}\n')
REDIR = ('#!/bin/sh\nprintf \'Location: %s\\r\\n\\r\\n\' "$QUERY_STRING"\n')


def write(path, text, mode=0o644):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)


def compile_c(path, marker):
    src = path + '.c'
    write(src, C % marker)
    subprocess.run(['cc', '-o', path, src], check=True)
    os.unlink(src)
    os.chmod(path, 0o755)


def links(d, ext, base, real_dir):
    """The five links of the table in directory d for extension ext."""
    os.symlink(os.path.join(base, 'out', 'secret' + ext), os.path.join(d, 'of' + ext))
    if not os.path.lexists(os.path.join(d, 'od')):
        os.symlink('../out', os.path.join(d, 'od'))
    os.symlink(os.path.join(base, 'nothing' + ext), os.path.join(d, 'dg' + ext))
    os.symlink('lp' + ext, os.path.join(d, 'lp' + ext))
    os.symlink(os.path.join(real_dir, 'real' + ext), os.path.join(d, 'in' + ext))


# handler -> (url for a case, marker of what an outside hit serves, marker of
# the inside file, status of a refused (or absent) target besides od)
def url_plain(prefix, ext):
    def f(case):
        return '%s%s%s' % (prefix, 'od/secret' if case == 'od' else case, ext)
    return f


def url_index(prefix):
    def f(case):
        return '/%s-%s/' % (prefix, case)
    return f


HANDLERS = {
    'static': (url_plain('/', '.txt'), 'SECRET-TXT', 'REAL-TXT', 404),
    'index': (url_index('ix'), None, 'REAL-TXT', 403),
    'index.php': (url_index('ixp'), None, 'REAL-PHP', 403),
    'cgi': (url_plain('/cgi-bin/', '.cgi'), 'SECRET-CGI', 'REAL-CGI', 404),
    'cgi-elf': (url_plain('/cgi-bin/', '.elf'), 'SECRET-ELF', 'REAL-ELF', 404),
    'pl': (url_plain('/', '.pl'), 'SECRET-PL', 'REAL-PL', 404),
    'php': (url_plain('/', '.php'), 'SECRET-PHP', 'REAL-PHP', 404),
    'redirect-static': (lambda case: '/cgi-bin/redir.cgi?' + url_plain('/', '.txt')(case),
                        'SECRET-TXT', 'REAL-TXT', 404),
    'redirect-php': (lambda case: '/cgi-bin/redir.cgi?' + url_plain('/', '.php')(case),
                     'SECRET-PHP', 'REAL-PHP', 404),
}
# what an outside index serves: out/index.html (static), outp/index.php
INDEX_SECRET = {'index': ('SECRET-TXT', 'SECRET-INDEX'), 'index.php': ('SECRET-PHP',
                                                                      'SECRET-PHP-INDEX')}


def expected(handler, case, follow):
    """(status, body marker or None) of one cell."""
    url, secret, real, refused = HANDLERS[handler]
    if handler in INDEX_SECRET:
        secret = INDEX_SECRET[handler][1 if case == 'od' else 0]
    if case == 'in':
        return 200, real
    if case in ('of', 'od'):
        if follow:
            return 200, secret
        return (404 if case == 'od' else refused), None
    return refused, None  # dangling, loop: nothing there, never a 500 or a hang


class ResolveCase(unittest.TestCase):
    FOLLOW = False
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        base = cls.base = os.path.realpath(tempfile.mkdtemp(prefix='portico-resolve-'))
        cls.addClassCleanup(shutil.rmtree, base, True)
        www, cgi, out, outp = (os.path.join(base, d) for d in ('www', 'cgi', 'out', 'outp'))
        for d in (www, cgi, out, outp):
            os.mkdir(d)
        # outside
        write(os.path.join(out, 'secret.txt'), 'SECRET-TXT\n')
        write(os.path.join(out, 'index.html'), 'SECRET-INDEX\n')
        write(os.path.join(out, 'secret.cgi'), SH % 'SECRET-CGI', 0o755)
        write(os.path.join(out, 'secret.pl'), PL % 'SECRET-PL', 0o755)
        write(os.path.join(out, 'secret.php'), PHP % 'SECRET-PHP')
        write(os.path.join(outp, 'index.php'), PHP % 'SECRET-PHP-INDEX')
        # inside
        write(os.path.join(www, 'real.txt'), 'REAL-TXT\n')
        write(os.path.join(www, 'real.pl'), PL % 'REAL-PL', 0o755)
        write(os.path.join(www, 'real.php'), PHP % 'REAL-PHP')
        write(os.path.join(cgi, 'real.cgi'), SH % 'REAL-CGI', 0o755)
        write(os.path.join(cgi, 'redir.cgi'), REDIR, 0o755)
        if HAVE_CC:
            compile_c(os.path.join(out, 'secret.elf'), 'SECRET-ELF')
            compile_c(os.path.join(cgi, 'real.elf'), 'REAL-ELF')
        for ext in ('.txt', '.pl', '.php'):
            links(www, ext, base, www)
        for ext in ('.cgi', '.elf'):
            links(cgi, ext, base, cgi)
        # index files: a directory per case whose index is the link
        for prefix, ext, outdir in (('ix', '.txt', '../out'), ('ixp', '.php', '../outp')):
            name = 'index.html' if ext == '.txt' else 'index.php'
            for case in CASES:
                d = os.path.join(www, '%s-%s' % (prefix, case))
                if case == 'od':
                    os.symlink(outdir, d)
                    continue
                os.mkdir(d)
                target = {'of': os.path.join(out, 'secret' + ext),
                          'dg': os.path.join(base, 'nothing' + ext),
                          'lp': name,
                          'in': os.path.join(www, 'real' + ext)}[case]
                os.symlink(target, os.path.join(d, name))

        php = ''
        if HAVE_FPM:
            cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', listen='unix', max_children=4)])
            cls.addClassCleanup(cls.fpm.stop)
            cls.fpm.start()
            php = ('backends = ( { name = "php"; servers = ( "%s" ); } );\n'
                   % cls.fpm.pool('www').address)
        conf = '''
follow_symlinks = %s;
%slocations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%s"; },
  { extension = ".pl"; handler = "cgi"; interpreters = [ ".pl=%s" ]; }%s
);
''' % ('true' if cls.FOLLOW else 'false', php, cgi, PERL,
       ',\n  { extension = ".php"; handler = "fastcgi"; backend = "php"; }' if HAVE_FPM else '')
        harness.start_class_server(cls, conf=conf, docroot=www)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def check(self, handler):
        if handler == 'cgi-elf' and not HAVE_CC:
            self.skipTest('no C compiler (cc)')
        if handler == 'pl' and not HAVE_PERL:
            self.skipTest('no perl')
        if 'php' in handler and not HAVE_FPM:
            self.skipTest('php-fpm not installed (apt-get install php-fpm)')
        wrong = []
        for case in CASES:
            url = HANDLERS[handler][0](case)
            status, marker = expected(handler, case, self.FOLLOW)
            got, _, data = harness.request(self.port, 'GET', url, timeout=30)
            body = data.decode('latin-1')
            if got != status or (marker and marker not in body) or \
                    (status != 200 and 'SECRET' in body):
                wrong.append('%s %s: got %d %r, want %d %s' % (case, url, got, body[:60],
                                                               status, marker or ''))
        self.assertEqual(wrong, [], '\n'.join(wrong) + '\n' + self.srv.stderr_text()[-1500:])


def add_tests(cls):
    for handler in HANDLERS:
        def t(self, h=handler):
            self.check(h)
        setattr(cls, 'test_%s' % handler.replace('.', '_').replace('-', '_'), t)
    return cls


@add_tests
class NoFollow(ResolveCase):
    FOLLOW = False


@add_tests
class Follow(ResolveCase):
    FOLLOW = True


if __name__ == '__main__':
    harness.main()
