# cgi-bin/: sample CGI programs shipped as examples (installed with the package).
# Programs, one of them compiled: libexec, not the architecture-independent
# datadir (PREFIX/libexec/portico/cgi-bin).
cgisamplesdir = $(pkglibexecdir)/cgi-bin
dist_cgisamples_SCRIPTS = cgi-bin/printenv.cgi cgi-bin/upload.cgi cgi-bin/nph-hello.cgi

# the libfcgi sample application (FastCGI, socket on fd 0 or FCGI_WEB_SERVER_ADDRS-style standalone)
if HAVE_FCGI
cgisamples_PROGRAMS = cgi-bin/hello-fcgi
cgi_bin_hello_fcgi_SOURCES = cgi-bin/hello-fcgi.c
cgi_bin_hello_fcgi_LDADD = $(FCGI_LIBS)
cgi_bin_hello_fcgi_CPPFLAGS = $(FCGI_CFLAGS)
endif
