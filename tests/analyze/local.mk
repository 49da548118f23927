# tests/analyze/: static analysis on demand (make check does not run it).
# `make analyze`: cppcheck over src/; the false positives accepted in
# tests/analyze/cppcheck.supp aside, any finding fails (tests/suite.sh runs
# it). `make analyze-gcc`: gcc -fanalyzer over src/*.c, compared with
# tests/analyze/gcc-analyzer.expected (about half a minute; not in CI).
# tests/analyze/README says why each accepted finding is not a bug.
EXTRA_DIST += tests/analyze/README tests/analyze/cppcheck.supp \
	tests/analyze/cppcheck-linux.cfg tests/analyze/gcc-analyzer.sh \
	tests/analyze/gcc-analyzer.expected

CPPCHECK = cppcheck
# information: reports suppressions that no longer match (unmatchedSuppression).
# -UPT_NO_STATS: that configuration is a measuring build only (stats.h)
CPPCHECK_FLAGS = -UPT_NO_STATS --enable=warning,portability,performance,information \
	--library=posix --library=tests/analyze/cppcheck-linux.cfg \
	--suppressions-list=tests/analyze/cppcheck.supp --inline-suppr \
	--std=c11 --force --quiet --error-exitcode=1 \
	--template='{file}:{line}:{column}: {severity}: {message} [{id}]'

# From the source directory, so that file names (and the suppressions)
# read src/...; config.h comes from the build directory.
analyze:
	@if ! command -v $(CPPCHECK) >/dev/null 2>&1; then \
	  echo "FAIL: analyze-cppcheck ($(CPPCHECK) not found; Debian: apt-get install cppcheck)"; \
	  exit 1; \
	fi; \
	if (cd $(srcdir) && $(CPPCHECK) $(CPPCHECK_FLAGS) -I src -I '$(abs_top_builddir)' src); then \
	  echo "PASS: analyze-cppcheck"; \
	else \
	  echo "FAIL: analyze-cppcheck (fix the findings above, or accept a false positive with its reason in tests/analyze/cppcheck.supp)"; \
	  exit 1; \
	fi

ANALYZER_CFLAGS = -O0 -fanalyzer -Wno-error
analyze-gcc:
	@$(SHELL) $(srcdir)/tests/analyze/gcc-analyzer.sh $(srcdir) $(COMPILE) $(ANALYZER_CFLAGS)

.PHONY: analyze analyze-gcc
