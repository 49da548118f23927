# tests/fuzz/: libFuzzer targets (configure --enable-fuzzers, clang only), with
# their seed corpora and every crasher found kept as a regression input.
# `make fuzz-smoke` runs each target briefly over its corpus.
FUZZ_NAMES = h1_head chunked path cgi_resp fcgi_rec conf range proxyproto tls tls_rec h2 \
	proxy_head
FUZZ_TARGETS = \
	tests/fuzz/fuzz_h1_head \
	tests/fuzz/fuzz_chunked \
	tests/fuzz/fuzz_path \
	tests/fuzz/fuzz_cgi_resp \
	tests/fuzz/fuzz_fcgi_rec \
	tests/fuzz/fuzz_conf \
	tests/fuzz/fuzz_range \
	tests/fuzz/fuzz_proxyproto \
	tests/fuzz/fuzz_tls \
	tests/fuzz/fuzz_tls_rec \
	tests/fuzz/fuzz_h2 \
	tests/fuzz/fuzz_proxy_head
EXTRA_DIST += $(FUZZ_TARGETS:=.c) tests/fuzz/fuzz.h tests/fuzz/fuzz_tls_ctx.h tests/fuzz/README \
	tests/fuzz/corpus tests/fuzz/crashers

# seconds per target over its seeds, then from an empty corpus (the seeds
# steer away from what nobody thought of: an authority-form target was found
# from nothing in 20 s, never in 10-minute seeded runs);
# `make fuzz-smoke FUZZ_SMOKE_TIME=600 FUZZ_EMPTY_TIME=600` for a longer run
FUZZ_SMOKE_TIME = 10
FUZZ_EMPTY_TIME = 5
FUZZ_COMMON_FLAGS = -runs=50000000 -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
	-print_final_stats=1
FUZZ_SMOKE_FLAGS = -max_total_time=$(FUZZ_SMOKE_TIME) $(FUZZ_COMMON_FLAGS)
FUZZ_EMPTY_FLAGS = -max_total_time=$(FUZZ_EMPTY_TIME) $(FUZZ_COMMON_FLAGS)

if FUZZERS
noinst_PROGRAMS += $(FUZZ_TARGETS)
tests_fuzz_fuzz_h1_head_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_h1_head_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_chunked_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_chunked_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_path_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_path_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_cgi_resp_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_cgi_resp_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_fcgi_rec_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_fcgi_rec_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_conf_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_conf_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_range_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_range_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_proxyproto_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_proxyproto_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_tls_SOURCES = tests/fuzz/fuzz_tls.c tests/fuzz/fuzz_tls_ctx.c
tests_fuzz_fuzz_tls_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_tls_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_tls_rec_SOURCES = tests/fuzz/fuzz_tls_rec.c tests/fuzz/fuzz_tls_ctx.c
tests_fuzz_fuzz_tls_rec_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_tls_rec_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_h2_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_h2_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_proxy_head_LDADD = $(PT_LIBS)
tests_fuzz_fuzz_proxy_head_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)

# Per target: the kept crashers must not crash any more, then fuzz from the
# seeds, then from nothing. The crashers run unsymbolized, as on a machine
# without llvm-symbolizer, where an LSan suppression by function name matches
# nothing (fuzz_conf/libconfig-token-leak is libconfig's known leak). New
# inputs and artifacts go to a scratch directory (the source tree
# may be read-only), removed on success and kept, with its path printed, on
# failure. One "PASS:"/"FAIL:" line per target, as tests/suite.sh counts them.
fuzz-smoke: $(FUZZ_TARGETS)
	@failed=0; \
	for t in $(FUZZ_NAMES); do \
	  prog=tests/fuzz/fuzz_$$t; \
	  work=`mktemp -d "$${TMPDIR:-/tmp}/portico-fuzz-$$t.XXXXXX"` || exit 1; \
	  mkdir "$$work/corpus" "$$work/empty"; \
	  kept=`find "$(srcdir)/tests/fuzz/crashers/fuzz_$$t" -type f 2>/dev/null | sort`; \
	  if test -n "$$kept" && ! ASAN_OPTIONS="$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}symbolize=0" \
	      $$prog -artifact_prefix="$$work/" $$kept >"$$work/crashers.log" 2>&1; then \
	    echo "FAIL: fuzz_$$t (a kept crasher still fails; log: $$work/crashers.log)"; \
	    tail -n 30 "$$work/crashers.log"; failed=1; continue; \
	  fi; \
	  if ! $$prog $(FUZZ_SMOKE_FLAGS) -artifact_prefix="$$work/" "$$work/corpus" \
	      "$(srcdir)/tests/fuzz/corpus/fuzz_$$t" >"$$work/fuzz.log" 2>&1; then \
	    echo "FAIL: fuzz_$$t (seeded; log and artifacts: $$work)"; \
	    tail -n 40 "$$work/fuzz.log"; failed=1; \
	  elif ! $$prog $(FUZZ_EMPTY_FLAGS) -artifact_prefix="$$work/" "$$work/empty" \
	      >"$$work/empty.log" 2>&1; then \
	    echo "FAIL: fuzz_$$t (from an empty corpus; log and artifacts: $$work)"; \
	    tail -n 40 "$$work/empty.log"; failed=1; \
	  else \
	    runs() { sed -n 's/^stat::number_of_executed_units: *//p' "$$1"; }; \
	    echo "PASS: fuzz_$$t (`runs "$$work/fuzz.log"` runs seeded, `runs "$$work/empty.log"` from empty)"; \
	    rm -rf "$$work"; \
	  fi; \
	done; \
	test $$failed = 0
else
fuzz-smoke:
	@echo "fuzz-smoke: nothing to do: configure with CC=clang --enable-fuzzers to build the fuzz targets"
endif
.PHONY: fuzz-smoke
