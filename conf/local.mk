# conf/: the annotated default configuration and the README demo site.
portico_confdir = $(sysconfdir)/portico
dist_portico_conf_DATA = conf/portico.conf
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
