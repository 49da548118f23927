# conf/: the annotated default configuration and the README demo site.
portico_confdir = $(sysconfdir)/portico
dist_portico_conf_DATA = conf/portico.conf
EXTRA_DIST += conf/demo.conf conf/demo/www/index.html conf/demo/www/style.css \
	conf/demo/www/cgi-bin/hello.cgi conf/demo/www/cgi-bin/printenv.cgi conf/demo/www/files/lorem.txt conf/demo/www/files/README.txt
