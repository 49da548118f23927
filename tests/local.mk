# tests/: C unit tests against libportico.a and Python integration tests,
# all speaking TAP through automake's tap-driver.sh.
UNIT_TESTS = \
	tests/unit/test_util \
	tests/unit/test_chunked \
	tests/unit/test_body \
	tests/unit/test_h1_head \
	tests/unit/test_range \
	tests/unit/test_precond \
	tests/unit/test_httpdate \
	tests/unit/test_mime \
	tests/unit/test_dirlist \
	tests/unit/test_conf \
	tests/unit/test_cgi_env \
	tests/unit/test_cgi_resp \
	tests/unit/test_fcgi_rec \
	tests/unit/test_upstream \
	tests/unit/test_gw_codecs \
	tests/unit/test_limit \
	tests/unit/test_ev \
	tests/unit/test_fcache \
	tests/unit/test_spawn \
	tests/unit/test_cgi_spawn \
	tests/unit/test_errlines \
	tests/unit/test_resolve \
	tests/unit/test_status \
	tests/unit/test_alog \
	tests/unit/test_access \
	tests/unit/test_proxyproto \
	tests/unit/test_htpasswd \
	tests/unit/test_compress \
	tests/unit/test_phases \
	tests/unit/test_regex \
	tests/unit/test_acme_json \
	tests/unit/test_handler \
	tests/unit/test_resp \
	tests/unit/test_h2 \
	tests/unit/test_h2_msg
check_PROGRAMS += $(UNIT_TESTS)
tests_unit_test_util_LDADD = $(PT_LIBS)
tests_unit_test_chunked_LDADD = $(PT_LIBS)
tests_unit_test_body_LDADD = $(PT_LIBS)
tests_unit_test_h1_head_LDADD = $(PT_LIBS)
tests_unit_test_range_LDADD = $(PT_LIBS)
tests_unit_test_precond_LDADD = $(PT_LIBS)
tests_unit_test_httpdate_LDADD = $(PT_LIBS)
tests_unit_test_mime_LDADD = $(PT_LIBS)
tests_unit_test_dirlist_LDADD = $(PT_LIBS)
tests_unit_test_conf_LDADD = $(PT_LIBS)
tests_unit_test_cgi_env_LDADD = $(PT_LIBS)
tests_unit_test_cgi_resp_LDADD = $(PT_LIBS)
tests_unit_test_fcgi_rec_LDADD = $(PT_LIBS)
tests_unit_test_upstream_LDADD = $(PT_LIBS)
tests_unit_test_gw_codecs_LDADD = $(PT_LIBS)
tests_unit_test_limit_LDADD = $(PT_LIBS)
tests_unit_test_ev_LDADD = $(PT_LIBS)
tests_unit_test_fcache_LDADD = $(PT_LIBS)
tests_unit_test_spawn_LDADD = $(PT_LIBS)
tests_unit_test_cgi_spawn_LDADD = $(PT_LIBS)
tests_unit_test_errlines_LDADD = $(PT_LIBS)
tests_unit_test_resolve_LDADD = $(PT_LIBS)
tests_unit_test_status_LDADD = $(PT_LIBS)
tests_unit_test_alog_LDADD = $(PT_LIBS)
tests_unit_test_access_LDADD = $(PT_LIBS)
tests_unit_test_proxyproto_LDADD = $(PT_LIBS)
tests_unit_test_htpasswd_LDADD = $(PT_LIBS)
tests_unit_test_phases_LDADD = $(PT_LIBS)
tests_unit_test_regex_LDADD = $(PT_LIBS)
tests_unit_test_acme_json_LDADD = $(PT_LIBS)
tests_unit_test_handler_LDADD = $(PT_LIBS)
tests_unit_test_resp_LDADD = $(PT_LIBS)
tests_unit_test_h2_LDADD = $(PT_LIBS)
tests_unit_test_h2_msg_LDADD = $(PT_LIBS)
# the decoders check what compress.c codes
tests_unit_test_compress_LDADD = $(PT_LIBS) $(BROTLIDEC_LIBS)
# the test makes libportico.a's allocations fail on purpose
tests_unit_test_spawn_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=calloc
EXTRA_DIST += tests/unit/tap.h

PY_TESTS = \
	tests/t_phases2.py \
	tests/t_apps.py \
	tests/t_regex.py \
	tests/t_cli.py \
	tests/t_sendfile.py \
	tests/t_http.py \
	tests/t_static.py \
	tests/t_filecache.py \
	tests/t_resolve.py \
	tests/t_idle.py \
	tests/t_signals.py \
	tests/t_reload.py \
	tests/t_reload_ka.py \
	tests/t_inherit.py \
	tests/t_status.py \
	tests/t_accesslog.py \
	tests/t_service.py \
	tests/t_cgi.py \
	tests/t_fastcgi.py \
	tests/t_php.py \
	tests/t_scgi_uwsgi.py \
	tests/t_proxy.py \
	tests/t_proxy_hostile.py \
	tests/t_websocket.py \
	tests/t_proxy_stream.py \
	tests/t_gw_stream.py \
	tests/t_gw_spawn.py \
	tests/t_gw_syscalls.py \
	tests/t_gw_head_hold.py \
	tests/t_edge.py \
	tests/t_hostile.py \
	tests/t_priv.py \
	tests/t_rootfiles.py \
	tests/t_limits.py \
	tests/t_phases.py \
	tests/t_phases3.py \
	tests/t_realip.py \
	tests/t_programs.py \
	tests/t_tls.py \
	tests/t_h2.py \
	tests/t_h2_status.py \
	tests/t_h2_static.py \
	tests/t_h2_goaway.py tests/t_h2_pipe.py \
	tests/t_h2_attack.py \
	tests/t_h2_gw.py \
	tests/t_h2_prio.py \
	tests/t_h2_rules.py \
	tests/t_h2_keepalive.py \
	tests/t_h2_cost.py \
	tests/t_tls_extra.py \
	tests/t_tls_tickets.py \
	tests/t_defer_accept.py \
	tests/t_tls_content.py \
	tests/t_tls_reload.py \
	tests/t_upstream_lost.py \
	tests/t_proxy_burst.py \
	tests/t_acme.py \
	tests/t_compress.py \
	tests/t_cache.py \
	tests/t_docs.py
TESTS += $(UNIT_TESTS) $(PY_TESTS)
EXTRA_DIST += $(PY_TESTS) tests/soak/reload_soak.py tests/lib/harness.py tests/lib/fcgi_bad.py tests/lib/phpfpm.py tests/lib/wsgi_app.py tests/lib/http_upstream.py tests/lib/reloadload.py tests/lib/scripted_upstream.py tests/lib/ws_echo.py tests/lib/appserver.py tests/fcgi/hello.php tests/fcgi/env.php tests/fcgi/upload.php tests/fcgi/big.php tests/fcgi/status.php tests/fcgi/fatal.php tests/fcgi/stderr.php tests/fcgi/cookies.php tests/fcgi/stream.php tests/fcgi/sleep.php tests/fcgi/index.php tests/cache/c.php
EXTRA_DIST += tests/lib/h2raw.py
EXTRA_DIST += \
	tests/cgi/bad-bighdr.cgi \
	tests/cgi/bad-empty.cgi \
	tests/cgi/bad-eof.cgi \
	tests/cgi/bad-interp.cgi \
	tests/cgi/bad-line.cgi \
	tests/cgi/bad-noheader.cgi \
	tests/cgi/bad-nul.cgi \
	tests/cgi/bad-signal.cgi \
	tests/cgi/bad-status.cgi \
	tests/cgi/big.cgi \
	tests/cgi/clen.cgi \
	tests/cgi/cookies.cgi \
	tests/cgi/crlf.cgi \
	tests/cgi/echo.cgi \
	tests/cgi/env.cgi \
	tests/cgi/gate.cgi \
	tests/cgi/hello-sh.cgi \
	tests/cgi/hello.c \
	tests/cgi/hello.php \
	tests/cgi/hello.pl \
	tests/cgi/hello.py \
	tests/cgi/hold.cgi \
	tests/cgi/interleave.cgi \
	tests/cgi/lf.cgi \
	tests/cgi/nolen.cgi \
	tests/cgi/nph-hello.cgi \
	tests/cgi/outside.cgi \
	tests/cgi/pid.cgi \
	tests/cgi/quick.cgi \
	tests/cgi/redirect-301.cgi \
	tests/cgi/redirect-abs.cgi \
	tests/cgi/redirect-local-cgi.cgi \
	tests/cgi/redirect-local.cgi \
	tests/cgi/redirect-loop.cgi \
	tests/cgi/sleep.cgi \
	tests/cgi/stall.cgi \
	tests/cgi/endless.cgi \
	tests/cgi/closeout.cgi \
	tests/cgi/afterwork.cgi \
	tests/cgi/status.cgi \
	tests/cgi/stderr.cgi

TEST_EXTENSIONS = .py
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
PY_LOG_DRIVER = $(LOG_DRIVER)
PY_LOG_COMPILER = $(PYTHON)
AM_TESTS_ENVIRONMENT = \
	PORTICO='$(abs_top_builddir)/src/portico'; export PORTICO; \
	PT_SRCDIR='$(abs_top_srcdir)'; export PT_SRCDIR; \
	PT_BUILDDIR='$(abs_top_builddir)'; export PT_BUILDDIR; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE; \
	ASAN_OPTIONS='detect_leaks=1:abort_on_error=1:log_exe_name=1'; export ASAN_OPTIONS; \
	UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1'; export UBSAN_OPTIONS;
