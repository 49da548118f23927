# src/: libportico.a holds everything but main.c, so unit tests and fuzzers link it.
noinst_LIBRARIES += src/libportico.a
src_libportico_a_SOURCES = \
	src/first.h \
	src/util.c src/util.h \
	src/errlines.c src/errlines.h \
	src/chunked.c src/chunked.h \
	src/body.c src/body.h \
	src/h1_head.c src/h1_head.h \
	src/mime.c src/mime.h \
	src/httpdate.c src/httpdate.h \
	src/range.c src/range.h \
	src/precond.c src/precond.h \
	src/dirlist.c src/dirlist.h \
	src/conf.c src/conf.h src/conf_int.h \
	src/conf_limits.c src/conf_cache.c src/conf_compress.c \
	src/conf_phases.c src/conf_tls.c src/conf_upstream.c \
	src/priv.c src/priv.h \
	src/log.c src/log.h \
	src/rootfile.c src/rootfile.h \
	src/buf.c src/buf.h \
	src/sock.c src/sock.h \
	src/tls.c src/tls.h \
	src/acme.c src/acme.h \
	src/acme_json.c src/acme_json.h \
	src/ev.c src/ev.h \
	src/notify.c src/notify.h \
	src/listen.c src/listen.h \
	src/access.c src/access.h \
	src/htpasswd.c src/htpasswd.h \
	src/authq.c src/authq.h \
	src/router.c src/router.h \
	src/regex.c src/regex.h \
	src/rewrite.c src/rewrite.h \
	src/locate.c src/locate.h \
	src/proxyproto.c src/proxyproto.h \
	src/realip.c src/realip.h \
	src/phases.c src/phases.h \
	src/conn.c src/conn.h \
	src/handler.c src/handler.h \
	src/h1_resp.c src/h1_resp.h \
	src/h2.c src/h2.h \
	src/h2_msg.c src/h2_msg.h \
	src/h2_conn.c src/h2_conn.h \
	src/resp.c src/resp.h \
	src/compress.c src/compress.h \
	src/zresp.c src/zresp.h \
	src/xsend.c src/xsend.h \
	src/cache.c src/cache.h \
	src/fcache.c src/fcache.h \
	src/resolve.c src/resolve.h \
	src/static.c src/static.h \
	src/cgi_env.c src/cgi_env.h \
	src/cgi_resp.c src/cgi_resp.h \
	src/gw.c src/gw.h \
	src/cgi.c src/cgi.h \
	src/cgi_spawn.c src/cgi_spawn.h \
	src/fcgi_rec.c src/fcgi_rec.h \
	src/upstream.c src/upstream.h \
	src/fcgi.c src/fcgi.h \
	src/upstream_conn.c src/upstream_conn.h \
	src/scgi.c src/scgi.h \
	src/uwsgi.c src/uwsgi.h \
	src/proxy.c src/proxy.h \
	src/tunnel.c src/tunnel.h \
	src/fcgi_spawn.c src/fcgi_spawn.h \
	src/worker.c src/worker.h \
	src/limit.c src/limit.h \
	src/master.c src/master.h \
	src/alog.c src/alog.h \
	src/stats.c src/stats.h \
	src/status.c src/status.h

sbin_PROGRAMS += src/portico
src_portico_SOURCES = src/main.c
src_portico_LDADD = src/libportico.a $(LIBCONFIG_LIBS) $(HTTP_PARSER_LIBS) $(OPENSSL_LIBS)
PT_LIBS = src/libportico.a $(LIBCONFIG_LIBS) $(HTTP_PARSER_LIBS) $(OPENSSL_LIBS)
# HTTP Basic authentication (htpasswd.c): libcrypto's digests, libcrypt's crypt_rn
src_portico_LDADD += $(LIBCRYPTO_LIBS) $(LIBCRYPT_LIBS)
PT_LIBS += $(LIBCRYPTO_LIBS) $(LIBCRYPT_LIBS)
# compression on the fly (compress.c): zlib and libbrotlienc
src_portico_LDADD += $(ZLIB_LIBS) $(BROTLIENC_LIBS)
PT_LIBS += $(ZLIB_LIBS) $(BROTLIENC_LIBS)
# regex locations and rewrites (regex.c): PCRE2
src_portico_LDADD += $(PCRE2_LIBS)
PT_LIBS += $(PCRE2_LIBS)
# HTTP/2 (h2.c): nghttp2
src_portico_LDADD += $(NGHTTP2_LIBS)
PT_LIBS += $(NGHTTP2_LIBS)
