#!/usr/bin/python3
"""t_apps.py: real applications from Debian's archive under portico,
configured by the shipped examples in conf/examples/ (the very files, with
only paths, the listener, the user and the logs changed for the test).

Nagios 4 (nagios4-cgi; conf/examples/nagios4.conf): 401 without or with
wrong credentials, for the CGIs, the aliased static files and the .php
pages alike (the .php never reaching PHP-FPM); with credentials the real
status.cgi names the user it was told (REMOTE_USER: "Logged in as ...")
and shows the hosts only to the user cgi.cfg authorises; both CGI
prefixes; the aliased static directories (/nagios4/ and the longer
/nagios4/stylesheets/ from /etc/nagios4) byte for byte, a symlinked
jQuery; the PHP pages (side.php, index.php as /nagios4/'s index) run from
the alias directory by PHP-FPM; Debian's private-networks rule as access
rules (403 before any password question for a client outside).

DokuWiki (dokuwiki; conf/examples/dokuwiki.conf), in a private copy laid
out as upstream ships it (data/ and conf/ inside the site): data/, conf/,
bin/, inc/ and .ht* denied with 403, their .php files too, which never
reach PHP-FPM (its access log); other clients than local ones denied, as
Debian's apache.conf does; doku.php serves the start page (also as
/dokuwiki/doku.php/start, DokuWiki's userewrite = 2), lib/
assets (CSS through lib/exe/css.php, images) are served; a page created
through the real edit form (session cookie and CSRF token) shows up.

cgit (cgit; conf/examples/cgit.conf): the style sheet and logo of the
/cgit-css/ alias byte for byte and nothing beside them (no listing, no
way out, no "/cgit-cssX"); /cgit redirected to /cgit/; the repository
list, a log and a plain file from the CGI over a real git repository.

Each class is skipped, naming the package, when its application is not
installed. Nothing asserts on timings."""

import base64
import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import phpfpm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, '..', 'conf', 'examples')
HTPASSWD = shutil.which('htpasswd')


def example(name, subs):
    """The shipped example conf/examples/NAME with each (old, new) of subs
    replaced; every old string must be there, so a changed example fails
    here instead of silently testing something else."""
    with open(os.path.join(EXAMPLES, name)) as f:
        text = f.read()
    # what every test server changes: its own listener (-l), logs and user
    subs = [('listen = [ "*:80" ];', ''),
            ('user = "www-data";', ''),
            ('error_log = "/var/log/portico/error.log";', ''),
            ('access_log = "/var/log/portico/access.log";', '')] + list(subs)
    for old, new in subs:
        if old not in text:
            raise AssertionError('%s no longer contains %r' % (name, old))
        text = text.replace(old, new)
    return text


def basic(user, pw):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, pw)).encode()).decode()


def get(port, target, headers=None):
    """(status, {lowercase name: value}, body) of one GET."""
    return harness.request(port, 'GET', target, headers=headers, timeout=60)


def get_from(port, src, target, headers=''):
    """One GET from the source address src: the parsed response."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(60)
    try:
        s.bind((src, 0))
        s.connect(('127.0.0.1', port))
        s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n' %
                   (target, headers)).encode())
        data, _closed = harness.recv_until_close(s, 60)
    finally:
        s.close()
    return harness.read_response(data)


def text_of(html):
    return re.sub(r'\s+', ' ', re.sub(r'<[^>]*>', ' ', html))


def read(path):
    with open(path, 'rb') as f:
        return f.read()


# -------------------------------------------------------------- Nagios 4

NAGIOS_CGI = '/usr/lib/cgi-bin/nagios4'
NAGIOS_HTDOCS = '/usr/share/nagios4/htdocs'

# One host with one service: the object file doubles as the object cache
# the CGIs read (Nagios writes the same syntax); the status file is what a
# running Nagios would have written.
NAGIOS_OBJECTS = '''
define command {
    command_name check_true
    command_line /bin/true
}
define timeperiod {
    timeperiod_name always
    alias Always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}
define contact {
    contact_name nagiosadmin
    alias Nagios Admin
    host_notifications_enabled 0
    service_notifications_enabled 0
    host_notification_period always
    service_notification_period always
    host_notification_options n
    service_notification_options n
    host_notification_commands check_true
    service_notification_commands check_true
}
define host {
    host_name web1
    alias Web server one
    address 127.0.0.1
    check_command check_true
    max_check_attempts 1
    check_period always
    contacts nagiosadmin
    notification_period always
}
define service {
    host_name web1
    service_description HTTP
    check_command check_true
    max_check_attempts 1
    check_interval 5
    retry_interval 1
    check_period always
    contacts nagiosadmin
    notification_period always
}
'''

NAGIOS_STATUS = '''info {
	created=%(now)d
	version=4.4.6
	}

programstatus {
	nagios_pid=1
	daemon_mode=1
	program_start=%(now)d
	enable_notifications=1
	active_service_checks_enabled=1
	passive_service_checks_enabled=1
	active_host_checks_enabled=1
	passive_host_checks_enabled=1
	enable_event_handlers=1
	enable_flap_detection=1
	}

hoststatus {
	host_name=web1
	current_state=0
	has_been_checked=1
	plugin_output=UP from the portico test
	last_check=%(now)d
	}

servicestatus {
	host_name=web1
	service_description=HTTP
	current_state=0
	has_been_checked=1
	plugin_output=HTTP OK from the portico test
	last_check=%(now)d
	}
'''


@unittest.skipUnless(os.path.isfile(os.path.join(NAGIOS_CGI, 'status.cgi')) and
                     os.path.isfile('/etc/nagios4/cgi.cfg'),
                     'Nagios 4 CGIs not installed (apt-get install nagios4-cgi)')
@unittest.skipUnless(HTPASSWD, 'htpasswd not installed (apt-get install apache2-utils)')
@phpfpm.skip_unless_php_fpm
class Nagios(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-nagios-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        b = cls.base
        with open(os.path.join(b, 'objects.cfg'), 'w') as f:
            f.write(NAGIOS_OBJECTS)
        with open(os.path.join(b, 'status.dat'), 'w') as f:
            f.write(NAGIOS_STATUS % {'now': int(time.time())})
        with open(os.path.join(b, 'nagios.cfg'), 'w') as f:
            f.write('cfg_file=%(b)s/objects.cfg\nobject_cache_file=%(b)s/objects.cfg\n'
                    'status_file=%(b)s/status.dat\nlog_file=%(b)s/nagios.log\n' % {'b': b})
        # Debian's cgi.cfg with what the example tells the admin to change:
        # use_authentication=1 (and our main configuration file)
        with open('/etc/nagios4/cgi.cfg') as f:
            cgi = f.read()
        cgi, n = re.subn(r'(?m)^use_authentication=0$', 'use_authentication=1', cgi)
        assert n == 1, 'Debian cgi.cfg changed: no use_authentication=0'
        cgi, n = re.subn(r'(?m)^main_config_file=.*$', 'main_config_file=%s/nagios.cfg' % b, cgi)
        assert n == 1
        with open(os.path.join(b, 'cgi.cfg'), 'w') as f:
            f.write(cgi)
        # the htpasswd file the example names, made by the real htpasswd:
        # nagiosadmin (bcrypt), authorised for everything in cgi.cfg, and
        # guest (htpasswd's default APR1-MD5), a valid user cgi.cfg knows nothing of
        cls.htpasswd = os.path.join(b, 'htpasswd.users')
        for user, flags in (('nagiosadmin', ['-B', '-C', '5']), ('guest', ['-m'])):
            subprocess.run([HTPASSWD, '-b'] + (['-c'] if user == 'nagiosadmin' else []) + flags +
                           [cls.htpasswd, user, 'pw-' + user], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www')])
        cls.fpm.start()
        cls.addClassCleanup(cls.fpm.stop)
        conf = example('nagios4.conf', [
            ('"/etc/nagios4/htpasswd.users"', '"%s"' % cls.htpasswd),
            ('NAGIOS_CGI_CONFIG=/etc/nagios4/cgi.cfg', 'NAGIOS_CGI_CONFIG=%s/cgi.cfg' % b),
            ('"unix:/run/php/php-fpm.sock"', '"%s"' % cls.fpm.pools[0].address)])
        harness.start_class_server(cls, conf=conf)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def as_user(self, target, user='nagiosadmin', pw=None):
        st, hdrs, body = get(self.port, target,
                             {'Authorization': basic(user, pw or 'pw-' + user)})
        return st, hdrs, body

    def test_no_credentials_401_everywhere(self):
        for target in ('/cgi-bin/nagios4/status.cgi?host=all', '/nagios4/cgi-bin/tac.cgi',
                       '/nagios4/images/logofullsize.png', '/nagios4/stylesheets/common.css',
                       '/nagios4/side.php', '/nagios4/', '/'):
            st, hdrs, body = get(self.port, target)
            self.assertEqual(st, 401, target)
            self.assertIn('Basic realm="Nagios4"', hdrs.get('www-authenticate', ''), target)
            self.assertNotIn(b'web1', body)
        # the .php pages never ran: PHP-FPM saw no request
        self.assertEqual(self.fpm.access_log_lines('www'), [])

    def test_wrong_password_and_unknown_user_401(self):
        self.assertEqual(self.as_user('/cgi-bin/nagios4/status.cgi', pw='wrong')[0], 401)
        self.assertEqual(self.as_user('/cgi-bin/nagios4/status.cgi', user='mallory')[0], 401)

    def test_cgi_sees_the_authenticated_user(self):
        for pfx in ('/cgi-bin/nagios4/', '/nagios4/cgi-bin/'):
            st, _h, body = self.as_user(pfx + 'status.cgi?host=all')
            self.assertEqual(st, 200, body[-500:])
            t = text_of(body.decode('utf-8', 'replace'))
            self.assertIn('Logged in as nagiosadmin', t)
            # authorised by cgi.cfg (authorized_for_all_hosts=nagiosadmin)
            self.assertIn('HTTP OK from the portico test', t)
            self.assertIn('web1', t)

    def test_other_user_is_not_authorised_by_nagios(self):
        st, _h, body = self.as_user('/cgi-bin/nagios4/status.cgi?host=all', user='guest')
        self.assertEqual(st, 200)
        t = text_of(body.decode('utf-8', 'replace'))
        self.assertIn('Logged in as guest', t)
        self.assertIn('do not have permission', t)
        self.assertNotIn('HTTP OK from the portico test', t)

    def test_aliased_static_directories(self):
        st, hdrs, body = self.as_user('/nagios4/images/logofullsize.png')
        self.assertEqual(st, 200)
        self.assertEqual(body, read(os.path.join(NAGIOS_HTDOCS, 'images', 'logofullsize.png')))
        self.assertEqual(hdrs.get('content-type'), 'image/png')
        # the longer prefix wins: Debian keeps the style sheets in /etc
        st, _h, body = self.as_user('/nagios4/stylesheets/common.css')
        self.assertEqual(st, 200)
        self.assertEqual(body, read('/etc/nagios4/stylesheets/common.css'))
        # a symbolic link to libjs-jquery, allowed by the example
        st, _h, body = self.as_user('/nagios4/js/jquery-1.12.4.min.js')
        self.assertEqual(st, 200)
        self.assertEqual(body, read(os.path.join(NAGIOS_HTDOCS, 'js', 'jquery-1.12.4.min.js')))
        self.assertEqual(self.as_user('/nagios4/stylesheets/../../../etc/passwd')[0], 404)
        self.assertEqual(self.as_user('/nagios4/nothing-here.css')[0], 404)

    def test_php_pages_from_the_alias_directory(self):
        st, _h, body = self.as_user('/nagios4/side.php')
        self.assertEqual(st, 200, body[-500:])
        self.assertIn(b'/cgi-bin/nagios4/tac.cgi', body)
        self.assertNotIn(b'<?php', body)
        # /nagios4/ is its index.php (the frames around side.php and main.php)
        st, _h, body = self.as_user('/nagios4/')
        self.assertEqual(st, 200, body[-500:])
        self.assertIn(b'side.php', body)
        self.assertNotIn(b'<?php', body)

    def test_private_networks_only(self):
        # Debian's "Require ip" as access rules, checked before the
        # password: this server takes 127.0.0.1 alone as its private network
        conf = example('nagios4.conf', [
            ('"allow 127.0.0.0/8"', '"allow 127.0.0.1"'),
            ('"/etc/nagios4/htpasswd.users"', '"%s"' % self.htpasswd),
            ('NAGIOS_CGI_CONFIG=/etc/nagios4/cgi.cfg', 'NAGIOS_CGI_CONFIG=%s/cgi.cfg' % self.base),
            ('"unix:/run/php/php-fpm.sock"', '"%s"' % self.fpm.pools[0].address)])
        with harness.Server(conf=conf) as srv:
            auth = 'Authorization: %s\r\n' % basic('nagiosadmin', 'pw-nagiosadmin')
            for src, hdrs, want in (('127.0.0.2', auth, 403), ('127.0.0.2', '', 403),
                                    ('127.0.0.1', '', 401), ('127.0.0.1', auth, 200)):
                r = get_from(srv.port, src, '/cgi-bin/nagios4/tac.cgi', hdrs)
                self.assertEqual(r.status, want, (src, hdrs))
                if want == 403:
                    self.assertIsNone(r.header('WWW-Authenticate'))

    def test_root_redirects_to_nagios(self):
        st, hdrs, _b = self.as_user('/')
        self.assertEqual(st, 302)
        self.assertEqual(hdrs.get('location'), '/nagios4/')



# -------------------------------------------------------------- DokuWiki

DOKUWIKI = '/usr/share/dokuwiki'
DW_PANIC = 'dont-panic-if-you-see-this-in-your-logs-it-means-your-directory-permissions-are-correct.png'
DW_LOCAL = """<?php
$conf['title'] = 'Portico test wiki';
$conf['savedir'] = './data';
$conf['useacl'] = 1;
$conf['superuser'] = '@admin';
$conf['userewrite'] = 2;
$conf['updatecheck'] = 0;
$conf['send404'] = 1;
"""


def dokuwiki_site(base):
    """A private DokuWiki laid out as upstream ships it: Debian's code
    copied (symbolic links kept), without Debian's inc/preload.php that
    points at /etc/dokuwiki and /var/lib/dokuwiki, and data/ and conf/ of
    its own inside the site."""
    site = os.path.join(base, 'dokuwiki')
    shutil.copytree(DOKUWIKI, site, symlinks=True)
    os.unlink(os.path.join(site, 'inc', 'preload.php'))
    conf = os.path.join(site, 'conf')
    os.mkdir(conf)
    for name in os.listdir('/etc/dokuwiki'):
        src = os.path.join('/etc/dokuwiki', name)
        if name.endswith(('.conf', '.php', '.css', '.json')) and os.path.isfile(src) and \
                not os.path.islink(src) and name not in ('local.php', 'apache.conf',
                                                         'lighttpd.conf'):
            shutil.copy(src, conf)
    with open(os.path.join(conf, 'local.php'), 'w') as f:
        f.write(DW_LOCAL)
    # an editor, with a bcrypt hash made by the real htpasswd (DokuWiki
    # checks $2y$ hashes itself); anonymous visitors may only read
    h = subprocess.run([HTPASSWD, '-nbB', '-C', '5', 'editor', 'pw-editor'], check=True,
                       stdout=subprocess.PIPE).stdout.decode().strip().split(':', 1)[1]
    with open(os.path.join(conf, 'users.auth.php'), 'w') as f:
        f.write('editor:%s:Editor:editor@example.test:user\n' % h)
    with open(os.path.join(conf, 'acl.auth.php'), 'w') as f:
        f.write('*               @ALL          1\n*               @user         8\n')
    data = os.path.join(site, 'data')
    for d in ('pages', 'attic', 'meta', 'media', 'media_attic', 'media_meta', 'cache', 'index',
              'locks', 'tmp', 'log'):
        os.makedirs(os.path.join(data, d))
    with open(os.path.join(data, 'pages', 'start.txt'), 'w') as f:
        f.write('====== Portico start page ======\n\nServed through **PHP-FPM**.\n')
    with open(os.path.join(data, DW_PANIC), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n not really\n')
    # a PHP file where none should run from (DokuWiki's cache could hold one)
    with open(os.path.join(data, 'cache', 'evil.php'), 'w') as f:
        f.write('<?php echo "evil ran";\n')
    with open(os.path.join(conf, 'evil.php'), 'w') as f:
        f.write('<?php echo "evil ran";\n')
    return site


@unittest.skipUnless(os.path.isfile(os.path.join(DOKUWIKI, 'doku.php')),
                     'DokuWiki not installed (apt-get install dokuwiki)')
@phpfpm.skip_unless_php_fpm
class DokuWiki(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-dokuwiki-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        cls.site = dokuwiki_site(cls.base)
        cls.fpm = phpfpm.PhpFpm([phpfpm.Pool('www', max_children=2)])
        cls.fpm.start()
        cls.addClassCleanup(cls.fpm.stop)
        conf = example('dokuwiki.conf', [
            ('alias = "/usr/share/dokuwiki"', 'alias = "%s"' % cls.site),
            ('"unix:/run/php/php-fpm.sock"', '"%s"' % cls.fpm.pools[0].address)])
        harness.start_class_server(cls, conf=conf)

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def fpm_scripts(self):
        return '\n'.join(' '.join(t) for t in self.fpm.access_log_lines('www'))

    def test_protected_directories_403(self):
        for target in ('/dokuwiki/data/pages/start.txt', '/dokuwiki/data/' + DW_PANIC,
                       '/dokuwiki/data/', '/dokuwiki/data', '/dokuwiki/conf/local.php',
                       '/dokuwiki/conf/users.auth.php', '/dokuwiki/conf/mime.conf',
                       '/dokuwiki/bin/dwpage.php', '/dokuwiki/inc/init.php',
                       '/dokuwiki/inc/Ui/Admin.php', '/dokuwiki/vendor/autoload.php',
                       '/dokuwiki/data/cache/evil.php', '/dokuwiki/conf/evil.php',
                       '/dokuwiki/conf/evil.php/x?y=1', '/dokuwiki/lib/../conf/evil.php',
                       '/dokuwiki/%63onf/evil.php', '/dokuwiki//conf/evil.php'):
            st, _h, body = get(self.port, target)
            if target == '/dokuwiki/data':
                # the directory without its slash: a redirect to the
                # denied one, nothing of it
                self.assertEqual(st, 301, target)
                self.assertEqual(get(self.port, '/dokuwiki/data/')[0], 403)
                continue
            self.assertEqual(st, 403, target)
            self.assertNotIn(b'Portico start page', body)
            self.assertNotIn(b'evil ran', body)
            self.assertNotIn(b'$conf', body)
        for target in ('/dokuwiki/.htaccess', '/dokuwiki/inc/.htaccess'):
            self.assertIn(get(self.port, target)[0], (403, 404), target)
        # Debian's "Allow from localhost": another client gets nothing,
        # not even doku.php
        for target in ('/dokuwiki/doku.php?id=start&x=remote', '/dokuwiki/lib/exe/css.php'):
            self.assertEqual(get_from(self.port, '127.0.0.2', target).status, 403)
        # none of those .php files reached PHP-FPM
        self.assertNotRegex(self.fpm_scripts(),
                            r'evil|init\.php|dwpage|Admin\.php|autoload|x=remote')

    def test_start_page_through_doku_php(self):
        for target in ('/dokuwiki/', '/dokuwiki/doku.php', '/dokuwiki/doku.php?id=start'):
            st, hdrs, body = get(self.port, target)
            self.assertEqual(st, 200, (target, body[-800:]))
            t = body.decode('utf-8', 'replace')
            self.assertIn('Portico start page', t, target)
            self.assertIn('<strong>PHP-FPM</strong>', t, target)
            self.assertIn('Portico test wiki', t, target)
        # DokuWiki's own nice URLs (userewrite = 2): the page id as
        # PATH_INFO of doku.php, which runs from the alias directory
        st, _h, body = get(self.port, '/dokuwiki/doku.php/start')
        self.assertEqual(st, 200)
        self.assertIn(b'Portico start page', body)
        self.assertIn(b'href="/dokuwiki/doku.php/start', body)
        st, _h, _b = get(self.port, '/')
        self.assertEqual(st, 302)
        # a page that does not exist yet: DokuWiki's own 404 (send404)
        st, _h, body = get(self.port, '/dokuwiki/doku.php?id=no:such:page')
        self.assertEqual(st, 404)
        self.assertIn(b'This topic does not exist yet', body)

    def test_lib_assets(self):
        st, hdrs, body = get(self.port, '/dokuwiki/lib/images/license/button/cc-by-sa.png')
        self.assertEqual(st, 200)
        self.assertEqual(body, read(os.path.join(DOKUWIKI, 'lib/images/license/button/cc-by-sa.png')))
        # the style sheets, put together by lib/exe/css.php from the
        # template (lib/tpl: a symbolic link into /var/lib/dokuwiki)
        st, hdrs, body = get(self.port, '/dokuwiki/lib/exe/css.php?t=dokuwiki&tseed=1')
        self.assertEqual(st, 200, body[-500:])
        self.assertIn('text/css', hdrs.get('content-type', ''))
        self.assertIn(b'.dokuwiki', body)
        st, _h, body = get(self.port, '/dokuwiki/lib/tpl/dokuwiki/images/logo.png')
        self.assertEqual(st, 200)
        self.assertTrue(body.startswith(b'\x89PNG'))

    def test_create_a_page_through_the_edit_form(self):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = 'http://127.0.0.1:%d/dokuwiki/doku.php' % self.port

        def form(html, form_id):
            m = re.search(r'<form [^>]*id="%s".*?</form>' % form_id, html, re.S)
            self.assertTrue(m, form_id)
            return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                   m.group(0)))

        def post(fields):
            with opener.open(base, data=urllib.parse.urlencode(fields).encode(),
                             timeout=60) as r:  # redirects followed
                return r.read().decode('utf-8')

        def page_text():
            try:
                with open(os.path.join(self.site, 'data', 'pages', 'portico', 'hello.txt')) as f:
                    return f.read()
            except FileNotFoundError:
                return ''

        # anonymous visitors may read only: no edit form for them
        with opener.open(base + '?id=portico:hello&do=edit', timeout=60) as r:
            self.assertNotIn('dw__editform', r.read().decode('utf-8'))
        # log in through DokuWiki's login form (its session cookie)
        with opener.open(base + '?id=start&do=login', timeout=60) as r:
            fields = form(r.read().decode('utf-8'), 'dw__login')
        fields.update({'u': 'editor', 'p': 'pw-editor'})
        self.assertIn('Log Out', post(fields))
        self.assertTrue(any(c.name == 'DokuWiki' for c in jar), list(jar))
        # the edit form, with its CSRF token
        with opener.open(base + '?id=portico:hello&do=edit', timeout=60) as r:
            fields = form(r.read().decode('utf-8'), 'dw__editform')
        self.assertTrue(fields.get('sectok'), fields)
        # a post without the token changes nothing
        post(dict(fields, sectok='', wikitext='forged', summary='x', **{'do[save]': '1'}))
        self.assertNotIn('forged', page_text())
        text = 'Hello from **portico** at %d.' % os.getpid()
        page = post(dict(fields, wikitext=text, summary='made by t_apps', **{'do[save]': '1'}))
        self.assertIn('Hello from <strong>portico</strong> at %d.' % os.getpid(), page)
        self.assertIn(text, page_text())
        # the stored page itself stays out of reach
        self.assertEqual(get(self.port, '/dokuwiki/data/pages/portico/hello.txt')[0], 403)
        st, _h, body = get(self.port, '/dokuwiki/doku.php?id=portico:hello')
        self.assertEqual(st, 200)
        self.assertIn(b'Hello from <strong>portico</strong>', body)


# -------------------------------------------------------------- cgit

CGIT = '/usr/lib/cgit/cgit.cgi'
CGIT_CSS = '/usr/share/cgit'


@unittest.skipUnless(os.access(CGIT, os.X_OK), 'cgit not installed (apt-get install cgit)')
@unittest.skipUnless(shutil.which('git'), 'git not installed')
class Cgit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-cgit-')
        cls.addClassCleanup(shutil.rmtree, cls.base, True)
        os.chmod(cls.base, 0o755)
        repo = os.path.join(cls.base, 'demo')
        env = dict(os.environ, GIT_AUTHOR_NAME='T', GIT_AUTHOR_EMAIL='t@example.test',
                   GIT_COMMITTER_NAME='T', GIT_COMMITTER_EMAIL='t@example.test',
                   HOME=cls.base)
        subprocess.run(['git', 'init', '-q', '-b', 'main', repo], check=True, env=env)
        with open(os.path.join(repo, 'README'), 'w') as f:
            f.write('portico cgit test readme\n')
        subprocess.run(['git', '-C', repo, 'add', 'README'], check=True, env=env)
        subprocess.run(['git', '-C', repo, 'commit', '-q', '-m', 'First commit via portico'],
                       check=True, env=env)
        # Debian's /etc/cgitrc with one repository
        cls.cgitrc = os.path.join(cls.base, 'cgitrc')
        with open('/etc/cgitrc') as f:
            rc = f.read()
        with open(cls.cgitrc, 'w') as f:
            f.write(rc + '\ncache-size=0\nrepo.url=demo\nrepo.path=%s/.git\n'
                    'repo.desc=the portico test repository\n' % repo)
        conf = example('cgit.conf', [
            ('CGIT_CONFIG=/etc/cgitrc', 'CGIT_CONFIG=%s' % cls.cgitrc)])
        harness.start_class_server(cls, conf=conf, env={'HOME': cls.base})

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)

    def test_aliased_style_sheet_and_logo(self):
        for name, ctype in (('cgit.css', 'text/css'), ('cgit.png', 'image/png')):
            st, hdrs, body = get(self.port, '/cgit-css/' + name)
            self.assertEqual(st, 200, name)
            self.assertEqual(body, read(os.path.join(CGIT_CSS, name)))
            self.assertTrue(hdrs.get('content-type', '').startswith(ctype), hdrs)
        # nothing else: no listing, no way out of the directory
        self.assertIn(get(self.port, '/cgit-css/')[0], (403, 404))
        self.assertEqual(get(self.port, '/cgit-css/nope.css')[0], 404)
        self.assertEqual(get(self.port, '/cgit-css/%2e%2e/cgit/cgit.cgi')[0], 404)
        self.assertEqual(get(self.port, '/cgit-cssX/cgit.css')[0], 404)

    def test_repository_pages(self):
        st, hdrs, _b = get(self.port, '/cgit')
        self.assertEqual(st, 301)
        self.assertEqual(hdrs.get('location'), '/cgit/')
        st, _h, body = get(self.port, '/cgit/')
        self.assertEqual(st, 200, body[-500:])
        self.assertIn(b'the portico test repository', body)
        self.assertIn(b"href='/cgit-css/cgit.css'", body)
        st, _h, body = get(self.port, '/cgit/demo/log/')
        self.assertEqual(st, 200)
        self.assertIn(b'First commit via portico', body)
        st, _h, body = get(self.port, '/cgit/demo/plain/README')
        self.assertEqual(st, 200)
        self.assertEqual(body, b'portico cgit test readme\n')


if __name__ == '__main__':
    harness.main()
