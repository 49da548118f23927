# conf/: the annotated default configuration and the README demo site.
portico_confdir = $(sysconfdir)/portico
# conf/portico.conf names Debian's layout; the installed copy gets the
# configured --sysconfdir, --localstatedir (logs) and --runstatedir (pid file)
portico_conf_DATA = conf/inst/portico.conf
EXTRA_DIST += conf/portico.conf
CLEANFILES += conf/inst/portico.conf
conf/inst/portico.conf: $(srcdir)/conf/portico.conf Makefile
	$(AM_V_GEN)$(MKDIR_P) conf/inst && \
	sed -e 's|/etc/portico/|$(sysconfdir)/portico/|g' \
		-e 's|/var/log/portico/|$(localstatedir)/log/portico/|g' \
		-e 's|"/run/portico.pid"|"$(runstatedir)/portico.pid"|g' \
		$(srcdir)/conf/portico.conf >$@.tmp && mv $@.tmp $@
EXTRA_DIST += conf/demo.conf conf/demo/www/index.html conf/demo/www/style.css \
	conf/demo/www/cgi-bin/hello.cgi conf/demo/www/cgi-bin/printenv.cgi conf/demo/www/files/lorem.txt conf/demo/www/files/README.txt

# systemd units: portico.service gets the configured paths here (not from
# AC_CONFIG_FILES, which would leave ${prefix} unexpanded); portico.socket is
# static. Generated even with --without-systemdsystemunitdir, for the tests.
EXTRA_DIST += conf/portico.service.in conf/portico.socket
CLEANFILES += conf/portico.service
if HAVE_SYSTEMDUNITDIR
systemdsystemunit_DATA = conf/portico.service conf/portico.socket
else
noinst_DATA = conf/portico.service
endif
conf/portico.service: $(srcdir)/conf/portico.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		$(srcdir)/conf/portico.service.in >$@.tmp && mv $@.tmp $@
# distcheck installs into a private prefix: the units must follow it there
AM_DISTCHECK_CONFIGURE_FLAGS = --with-systemdsystemunitdir=$$dc_install_base/lib/systemd/system

# the packaged configuration's log directory (its files are created by the
# master at start-up)
install-data-local:
	$(MKDIR_P) '$(DESTDIR)$(localstatedir)/log/portico'

# conf/examples/: portico configured for applications from Debian's archive,
# installed with the documentation; tests/t_apps.py runs these very files
portico_examplesdir = $(docdir)/examples
dist_portico_examples_DATA = conf/examples/nagios4.conf conf/examples/dokuwiki.conf \
	conf/examples/cgit.conf
