#!/usr/bin/env bash
# The whole test suite, as CI and the README run it: installs the Debian
# packages it needs (when root on Debian), then
#   1. make distcheck: plain -Werror build, unit + integration tests from the
#      release tarball, install/uninstall check;
#   2. cppcheck over src/: make analyze (tests/analyze/), plain build;
#   3. valgrind memcheck over t_http, t_static, t_fastcgi and t_cgi (plain
#      build);
#   4. an AddressSanitizer + UBSan build running the same tests;
#   5. a clang build with the libFuzzer targets: make fuzz-smoke;
#   6. the Debian package: build, lintian, install, run, purge (tests/deb.sh,
#      as root on Debian only);
#   7. a pristine minimal Debian 12 root (debootstrap, cached): the README's
#      first command until the demo answers, then that package installed
#      with apt-get alone, serving its default page, and purged
#      (tests/pristine.sh, as root on Debian only).
# Ends with the line "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=${JOBS:-2}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${PT_NO_APT:-}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    # llvm: llvm-symbolizer, so that sanitizer reports name their functions;
    # nagios4-cgi, dokuwiki, cgit: real applications for tests/t_apps.py (no
    # web server comes with them under --no-install-recommends); iproute2:
    # "ip addr" finds the non-loopback address t_status's NotLoopback needs
    # (minimal Debian has no iproute2: the test would skip there)
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends \
        build-essential autoconf automake pkg-config cppcheck \
        libhttp-parser-dev libconfig-dev libfcgi-dev libfcgi-bin libssl-dev openssl testssl.sh libcrypt-dev apache2-utils whois \
        zlib1g-dev libbrotli-dev libpcre2-dev libnghttp2-dev brotli python3-brotli \
        clang libclang-rt-14-dev llvm valgrind \
        python3 python3-prometheus-client curl ca-certificates strace iproute2 git gitweb perl php-cgi php-fpm fcgiwrap uwsgi uwsgi-plugin-python3 python3-gunicorn python3-websockets python3-h2 nghttp2-client systemd mandoc pebble faketime \
        nagios4-cgi dokuwiki cgit >/dev/null || { echo "apt-get install failed"; exit 1; }
fi

log=$(mktemp -d /tmp/portico-suite.XXXXXX)
status=0

run() { # name, command...
    local name=$1; shift
    echo "=== $name"
    touch "$log/$name.start"
    local t0=$SECONDS
    if ! "$@" >"$log/$name.out" 2>&1; then
        status=1
        echo "--- $name FAILED; last lines:"
        tail -n 40 "$log/$name.out"
        # the failing tests' own logs
        find "$top"/build-* -name test-suite.log -newer "$log/$name.start" \
            -exec tail -n 150 {} \; 2>/dev/null
        # and why each failed, kept for the end of the output (where a
        # reader of a long CI log looks first)
        find "$top"/build-* -name '*.trs' -newer "$log/$name.start" 2>/dev/null |
            while read -r trs; do
                grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || continue
                echo "--- $name: ${trs%.trs}.log"
                grep -E -A30 '^(not ok|Traceback|FAIL:|ERROR:)' "${trs%.trs}.log" | head -n 80
            done >>"$log/why-failed.txt"
    fi
    # make -j's test drivers share its stdout, and one's line can be cut by
    # another's ("... - SmugglPASS: tests/t_realip.py 1 - ..."): a result
    # glued to a line's text starts a line of its own before the count, or
    # it (even a FAIL) would go uncounted ("# XFAIL: 0" is a summary line)
    sed -E 's/([^#[:space:]X])((XPASS|XFAIL|PASS|FAIL|ERROR|SKIP): [^ ])/\1\n\2/g' "$log/$name.out" |
        grep -E '^(PASS|FAIL|ERROR|XPASS|XFAIL|SKIP): ' >"$log/$name.results" || true
    grep -E '^(FAIL|ERROR|XPASS): ' "$log/$name.results" || true
    echo "    ($((SECONDS - t0)) s) $(grep -c '^PASS: ' "$log/$name.results") passed, $(grep -cE '^(FAIL|ERROR|XPASS): ' "$log/$name.results") failed, $(grep -c '^SKIP: ' "$log/$name.results") skipped"
}

autoreconf -fi >"$log/autoreconf.out" 2>&1 || { cat "$log/autoreconf.out"; echo "0 passed, 1 failed"; exit 1; }

plain() {
    rm -rf "$top/build-plain" && mkdir -p "$top/build-plain" && cd "$top/build-plain" &&
        ../configure -q && make -j"$jobs" && make -j"$jobs" distcheck
}
sanitized() {
    rm -rf "$top/build-asan" && mkdir -p "$top/build-asan" && cd "$top/build-asan" &&
        ../configure -q --enable-sanitizers && make -j"$jobs" && make -j"$jobs" check
}
# clang's warnings differ from gcc's: the gcc builds above enforce -Werror,
# this one is about what the fuzz targets find (one PASS/FAIL per target).
fuzzing() {
    rm -rf "$top/build-fuzz" && mkdir -p "$top/build-fuzz" && cd "$top/build-fuzz" &&
        CC=clang ../configure -q --enable-fuzzers --enable-sanitizers &&
        make -j"$jobs" && make fuzz-smoke
}
run plain plain
# cppcheck (a few seconds): new findings fail, accepted false positives are
# listed with their reasons in tests/analyze/cppcheck.supp
analysis() {
    cd "$top/build-plain" && make analyze
}
run analyze analysis
# valgrind memcheck over the HTTP front end, static files, the FastCGI
# gateway (the worker's most stateful code) and the CGI gateway with its
# vfork spawn (a fork under valgrind), on the plain build: a memcheck report
# in a server's stderr fails the test (harness.py)
memcheck() {
    cd "$top/build-plain" &&
        PT_VALGRIND=1 make -j"$jobs" check \
            TESTS="tests/t_http.py tests/t_static.py tests/t_fastcgi.py tests/t_cgi.py"
}
run valgrind memcheck
run asan sanitized
run fuzz fuzzing
# tap_script NAME: runs tests/NAME.sh, whose TAP becomes automake-style
# result lines (a skipped whole script: one SKIP line with its reason)
tap_script() {
    local name=$1 rc
    bash "$top/tests/$name.sh" >"$log/$name.tap" 2>&1
    rc=$?
    cat "$log/$name.tap"
    sed -n -e "s/^ok \([0-9]*\) - \(.*\) # SKIP.*\$/SKIP: tests\/$name.sh \1 - \2/p" \
        -e "/# SKIP/!s/^ok \([0-9]*\) - /PASS: tests\/$name.sh \1 - /p" \
        -e "s/^not ok \([0-9]*\) - /FAIL: tests\/$name.sh \1 - /p" \
        -e "s/^1\.\.0 # SKIP \(.*\)\$/SKIP: tests\/$name.sh - \1/p" "$log/$name.tap"
    return $rc
}
# the Debian package end to end (build, lintian, install, run, purge): as
# root on Debian only, since it changes the machine's packages
# (PT_NO_DEB=1 skips it). It leaves a copy of the package for the next step.
mkdir -p "$log/deb"
debian_package() {
    PT_DEB_KEEP=$log/deb tap_script deb
}
if [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && [ -z "${PT_NO_DEB:-}" ]; then
    run deb debian_package
fi
# What a fresh Debian 12 machine lacks (two minutes at first, then about one
# with the cached root): as root on Debian only (debootstrap, chroot,
# mounts, a network namespace); PT_NO_PRISTINE=1 skips it. It builds the
# package itself when the step above did not.
pristine_root() {
    local deb
    deb=$(find "$log/deb" -name 'portico_*.deb' | head -n 1)
    PT_DEB=$deb tap_script pristine
}
if [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && [ -z "${PT_NO_PRISTINE:-}" ]; then
    run pristine pristine_root
fi

passed=$(cat "$log"/*.results | grep -c '^PASS: ')
failed=$(cat "$log"/*.results | grep -cE '^(FAIL|ERROR|XPASS): ')
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
    failed=1 # a build step failed before any test could
fi
if [ -s "$log/why-failed.txt" ]; then
    echo "=== why the failed tests failed"
    head -n 300 "$log/why-failed.txt"
fi
echo "logs: $log"
echo "$passed passed, $failed failed"
[ "$status" = 0 ] && [ "$failed" = 0 ]
