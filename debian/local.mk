# debian/: the Debian packaging (a native package: the release tarball is
# its source). tests/deb.sh builds, lints, installs, runs and purges it.
EXTRA_DIST += debian/changelog debian/control debian/copyright debian/rules \
	debian/source/format debian/README.Debian debian/portico.docs \
	debian/portico.logrotate debian/portico.postinst debian/portico.prerm \
	debian/portico.postrm debian/portico.install debian/index.html \
	tests/deb.sh tests/pristine.sh
