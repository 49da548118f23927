# cgi-bin/: sample CGI programs shipped as examples (installed with the package).
cgisamplesdir = $(pkgdatadir)/cgi-bin
dist_cgisamples_SCRIPTS = cgi-bin/printenv.cgi cgi-bin/upload.cgi cgi-bin/nph-hello.cgi
