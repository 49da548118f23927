#!/usr/bin/env bash
# tests/deb.sh: the Debian package end to end, on Debian 12 as root.
# Builds portico's source and binary packages from a clean copy of this tree
# (dpkg-buildpackage -us -uc), checks them with lintian (--fail-on error),
# installs the .deb with apt-get, then runs the INSTALLED /usr/sbin/portico
# with the packaged /etc/portico/portico.conf on a free test port with its
# logs in a scratch directory laid out like /var/log/portico: the package's
# default page, a static page,
# a CGI program under /cgi-bin/, the packaged CGI samples and the libfcgi
# sample app, workers as the configured user, log reopening on SIGUSR1,
# graceful stop on SIGQUIT. systemd-analyze verifies the installed units;
# apt-get purge must remove everything.
#
# Prints TAP ("ok N - ...", "1..N"); exits non-zero if a test failed, and
# then keeps its scratch directory (named at the end). Installs what it
# needs with apt-get (PT_NO_APT=1: don't). PT_DEB_KEEP=DIR: a copy of the
# .deb goes there. It changes the machine's package
# state (a portico package installed before is purged at the start and the
# test's one at the end), so it is not part of "make check".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP tests/deb.sh installs a package: it needs root"
    exit 0
fi
if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "1..0 # SKIP tests/deb.sh needs Debian (apt-get)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
work=$(mktemp -d /tmp/portico-deb.XXXXXX)
log=$work/log
n=0
failed=0
srv_pid=
fcgi_pid=
test_page=
test_cgi=

diag() { sed 's/^/# /'; }
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
}
skip() {
    n=$((n + 1))
    echo "ok $n - $1 # SKIP $2"
}
# t NAME COMMAND...: one test; the command's output goes to the log, and its
# last lines become TAP diagnostics when it fails.
t() {
    local name=$1
    shift
    : >"$log"
    if "$@" >"$log" 2>&1; then
        ok "$name"
    else
        not_ok "$name"
        tail -n 30 "$log" | diag
        return 1
    fi
}
finish() {
    echo "1..$n"
    if [ "$failed" = 0 ]; then
        rm -rf "$work"
        exit 0
    fi
    echo "# $failed of $n failed; build tree and logs kept in $work"
    exit 1
}
cleanup() {
    [ -n "$srv_pid" ] && kill -KILL "$srv_pid" 2>/dev/null
    [ -n "$fcgi_pid" ] && kill -KILL "$fcgi_pid" 2>/dev/null
    [ -n "$test_page" ] && rm -f "$test_page"
    [ -n "$test_cgi" ] && rm -f "$test_cgi"
    true
}
trap cleanup EXIT

# --- what the build and the checks need
apt_install() {
    apt-get install -y -q --no-install-recommends "$@" >"$work/apt.log" 2>&1 ||
        { apt-get update -q >>"$work/apt.log" 2>&1 &&
            apt-get install -y -q --no-install-recommends "$@" >>"$work/apt.log" 2>&1; }
}
if [ -z "${PT_NO_APT:-}" ]; then
    if ! apt_install build-essential dpkg-dev debhelper lintian curl python3 procps systemd; then
        not_ok "install the build tools"
        tail -n 20 "$work/apt.log" | diag
        finish
    fi
fi

# --- 1. build from a clean copy: the files git knows (committed or not,
# ignored ones left out), or the whole tree of an unpacked release tarball
version=$(cd "$top" && dpkg-parsechangelog -S Version 2>/dev/null)
src=$work/portico-${version:-0}
mkdir -p "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - -cf -) | tar -C "$src" -xf -
else
    tar -C "$top" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$src" -xf -
fi
if [ -z "${PT_NO_APT:-}" ] && ! apt-get build-dep -y -q "$src" >"$work/apt.log" 2>&1; then
    not_ok "install the build dependencies (apt-get build-dep)"
    tail -n 20 "$work/apt.log" | diag
    finish
fi
# source and binary packages (-b alone would skip the source package,
# which lintian should see too); the output lands in $work
build() { (cd "$src" && dpkg-buildpackage -us -uc); }
if ! t "dpkg-buildpackage -us -uc builds portico $version" build; then
    finish
fi
cp "$log" "$work/build.log"
deb=$(find "$work" -maxdepth 1 -name "portico_${version}_*.deb" | head -n 1)
# tests/suite.sh hands the package on to tests/pristine.sh
if [ -n "${PT_DEB_KEEP:-}" ] && [ -n "$deb" ]; then
    cp "$deb" "$PT_DEB_KEEP/"
fi

# --- 2. lintian, error level; warnings shown as diagnostics
if t "lintian --fail-on error on the source and binary packages" \
    lintian --fail-on error --display-info "$work"/portico_*.changes; then
    grep -E '^[EWI]: ' "$log" | diag
fi

# --- 3. install
if dpkg -s portico >/dev/null 2>&1; then
    apt-get purge -y -q portico >/dev/null 2>&1 # a leftover of an earlier run
fi
if ! t "apt-get install ./$(basename "$deb")" apt-get install -y -q "$deb"; then
    finish
fi

installed() {
    local f
    dpkg-query -W -f='${Status}\n' portico | grep -qx "install ok installed" || return 1
    for f in /usr/sbin/portico /etc/portico/portico.conf /etc/logrotate.d/portico \
        /lib/systemd/system/portico.service /lib/systemd/system/portico.socket \
        /usr/libexec/portico/cgi-bin/printenv.cgi /usr/libexec/portico/cgi-bin/upload.cgi \
        /usr/libexec/portico/cgi-bin/nph-hello.cgi /usr/libexec/portico/cgi-bin/hello-fcgi \
        /usr/share/man/man8/portico.8.gz /usr/share/man/man5/portico.conf.5.gz \
        /usr/share/doc/portico/copyright /usr/share/doc/portico/README.Debian \
        /usr/share/portico/index.html /var/www/html/index.portico-debian.html; do
        [ -e "$f" ] || { echo "missing: $f"; return 1; }
    done
}
t "the package is installed with its files" installed
t "/etc/portico/portico.conf is a conffile" \
    grep -q ' /etc/portico/portico.conf ' <<<"$(dpkg-query -W -f='${Conffiles}\n' portico)"
depends=$(dpkg-query -W -f='${Depends}' portico)
echo "# Depends: $depends"
t "it depends on libhttp-parser2.9 and libconfig9" \
    grep -Eq 'libhttp-parser2\.9.*libconfig9|libconfig9.*libhttp-parser2\.9' <<<"$depends"
log_layout() {
    stat -c '%n %U:%G %a' /var/log/portico /var/log/portico/access.log /var/log/portico/error.log &&
        [ "$(stat -c '%U:%G %a' /var/log/portico)" = "root:root 755" ] &&
        [ "$(stat -c '%U:%G %a' /var/log/portico/access.log)" = "www-data:adm 640" ] &&
        [ "$(stat -c '%U:%G %a' /var/log/portico/error.log)" = "www-data:adm 640" ]
}
t "/var/log/portico is root:root 0755, its logs www-data:adm 0640" log_layout
# what deb-systemd-helper enable does, with or without systemd running
t "portico.service is enabled" test "$(readlink /etc/systemd/system/multi-user.target.wants/portico.service)" \
    = /lib/systemd/system/portico.service
t "portico.socket is not enabled" test ! -e /etc/systemd/system/sockets.target.wants/portico.socket
if command -v logrotate >/dev/null 2>&1; then
    t "logrotate accepts /etc/logrotate.d/portico" logrotate -d /etc/logrotate.d/portico
else
    skip "logrotate accepts /etc/logrotate.d/portico" "logrotate is not installed"
fi
t "portico -t accepts the packaged configuration" /usr/sbin/portico -t -c /etc/portico/portico.conf

# --- 4. the installed binary with the packaged configuration, on a test
# port, logs in $work; the samples through --cgi and --fastcgi
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
fcgi_port=$(free_port)
# the logs go to a directory with the owner and mode of /var/log/portico
# (workers that reopen logs on SIGUSR1 meet the same permissions)
chmod 0755 "$work"
logs=$work/logs
install -d -o "$(stat -c %U /var/log/portico)" -g "$(stat -c %G /var/log/portico)" \
    -m "$(stat -c %a /var/log/portico)" "$logs"
tag=portico-deb-test-$$
mkdir -p /var/www/html /usr/lib/cgi-bin
test_page=/var/www/html/$tag.html
printf 'portico package test %s\n' "$tag" >"$test_page"
chmod 0644 "$test_page"
test_cgi=/usr/lib/cgi-bin/$tag.cgi
install -m 0755 /usr/libexec/portico/cgi-bin/printenv.cgi "$test_cgi"

/usr/libexec/portico/cgi-bin/hello-fcgi -s "127.0.0.1:$fcgi_port" >"$work/hello-fcgi.out" 2>&1 &
fcgi_pid=$!
# Not a job-control shell: the background child is no process-group leader,
# so setsid execs portico in place, in a session of its own (pid = session
# id): whatever is left of that session after the stop is a leaked process.
setsid /usr/sbin/portico -c /etc/portico/portico.conf \
    -o "listen=127.0.0.1:$port" -o workers=2 \
    -o "error_log=$logs/error.log" -o "access_log=$logs/access.log" \
    -o "pid_file=$logs/portico.pid" \
    --cgi "/samples/=/usr/libexec/portico/cgi-bin" \
    --fastcgi "/fcgi/=127.0.0.1:$fcgi_port" \
    </dev/null >"$work/portico.out" 2>&1 &
srv_pid=$!
base=http://127.0.0.1:$port

# get PATH [curl options]: the response body, then the status on a line of
# its own
get() {
    local path=$1
    shift
    curl -sS --max-time 30 -w '\n%{http_code}\n' "$@" "$base$path"
}
up() {
    for _ in $(seq 1 300); do
        kill -0 "$srv_pid" 2>/dev/null || { echo "portico exited"; return 1; }
        if [ "$(ps -o sid= -p "$srv_pid" | tr -d ' ')" = "$srv_pid" ] &&
            curl -s --max-time 5 -o /dev/null "$base/"; then
            return 0
        fi
        sleep 0.1
    done
    echo "no answer on $base"
    return 1
}
if ! t "the installed portico starts with the packaged configuration on port $port" up; then
    cat "$work/portico.out" "$logs/error.log" 2>/dev/null | tail -n 20 | diag
fi
t "it wrote its pid file" test "$(cat "$logs/portico.pid" 2>/dev/null)" = "$srv_pid"
# the user of the packaged configuration, if it names one
conf_user=$(sed -n 's/^[[:space:]]*user[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
    /etc/portico/portico.conf | head -n 1)
workers_as() {
    local users
    users=$(ps -o user= --ppid "$srv_pid" | sort -u)
    echo "master: $(ps -o user= -p "$srv_pid"), workers: $users"
    [ -n "$users" ] && [ "$users" = "$1" ]
}
if [ -n "$conf_user" ]; then
    t "the workers run as $conf_user, the user of the packaged configuration" workers_as "$conf_user"
else
    skip "the workers run as the configured user" "the packaged configuration names no user"
fi

static_page() {
    local out
    out=$(get "/$tag.html") && echo "$out" &&
        [ "$(head -n 1 <<<"$out")" = "portico package test $tag" ] &&
        [ "$(tail -n 1 <<<"$out")" = 200 ]
}
t "GET a static page from /var/www/html" static_page
# the package's default page, at / unless the machine has an index.html
default_page() {
    local out path=/
    [ -e /var/www/html/index.html ] && path=/index.portico-debian.html
    echo "GET $path"
    out=$(get "$path") && echo "$out" &&
        grep -q "<h1>portico answered</h1>" <<<"$out" &&
        grep -q "/etc/portico/portico.conf" <<<"$out" &&
        [ "$(tail -n 1 <<<"$out")" = 200 ]
}
t "the default page /var/www/html/index.portico-debian.html is served" default_page
cgi_bin() {
    local out
    out=$(get "/cgi-bin/$tag.cgi/x?q=1") && echo "$out" &&
        grep -qx "GATEWAY_INTERFACE=CGI/1.1" <<<"$out" &&
        grep -qx "SCRIPT_NAME=/cgi-bin/$tag.cgi" <<<"$out" &&
        grep -qx "PATH_INFO=/x" <<<"$out" &&
        grep -qx "QUERY_STRING=q=1" <<<"$out" &&
        [ "$(tail -n 1 <<<"$out")" = 200 ]
}
t "GET /cgi-bin/ runs a program in /usr/lib/cgi-bin" cgi_bin
samples() {
    local out
    out=$(get /samples/printenv.cgi) && echo "$out" &&
        grep -qx "SCRIPT_FILENAME=/usr/libexec/portico/cgi-bin/printenv.cgi" <<<"$out" &&
        out=$(printf hello | get /samples/upload.cgi --data-binary @-) && echo "$out" &&
        grep -qx "sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" <<<"$out" &&
        out=$(get /samples/nph-hello.cgi -i) && echo "$out" &&
        grep -q "^HTTP/1.1 200 OK" <<<"$out" && grep -q "non-parsed-header" <<<"$out"
}
t "the packaged CGI samples run (printenv.cgi, upload.cgi, nph-hello.cgi)" samples
fcgi_sample() {
    local out
    out=$(get /fcgi/) && echo "$out" &&
        grep -q "^Hello from FastCGI" <<<"$out" && [ "$(tail -n 1 <<<"$out")" = 200 ]
}
t "the packaged libfcgi sample app answers through --fastcgi" fcgi_sample
t "the access log has the requests" grep -q "GET /$tag.html HTTP/1.1\" 200" "$logs/access.log"

# logrotate's way: the file is renamed, SIGUSR1 makes the master reopen it
reopened() {
    mv "$logs/access.log" "$logs/access.log.1" && kill -USR1 "$srv_pid" || return 1
    for _ in $(seq 1 300); do
        curl -s --max-time 5 -o /dev/null "$base/$tag.html?after-usr1"
        if grep -q "after-usr1" "$logs/access.log" 2>/dev/null; then
            # a worker that cannot reopen (as its user) says so
            ! grep "reopening logs failed" "$logs/error.log"
            return
        fi
        sleep 0.1
    done
    ls -l "$logs"
    return 1
}
t "SIGUSR1 reopens the logs" reopened

# graceful stop: the master exits 0 and leaves no process behind
stop() {
    kill -QUIT "$srv_pid" || return 1
    for _ in $(seq 1 600); do
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$srv_pid" 2>/dev/null; then
        echo "still running 60 s after SIGQUIT"
        return 1
    fi
    wait "$srv_pid"
    stop_status=$?
    echo "exit status $stop_status"
    [ "$stop_status" = 0 ]
}
none_left() {
    local left
    left=$(pgrep -s "$1" | tr '\n' ,)
    [ -z "$left" ] && return 0
    ps -o pid,args -p "${left%,}"
    return 1
}
if t "SIGQUIT stops it with exit status 0" stop; then
    t "no process of it is left" none_left "$srv_pid"
    srv_pid=
else
    not_ok "no process of it is left (not stopped)"
fi
kill -TERM "$fcgi_pid" 2>/dev/null
wait "$fcgi_pid" 2>/dev/null
fcgi_pid=
rm -f "$test_page" "$test_cgi"
test_page=
test_cgi=

# --- 5. the installed units
verify_units() {
    local out rc
    out=$(systemd-analyze verify /lib/systemd/system/portico.service \
        /lib/systemd/system/portico.socket 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" = 0 ] && ! grep -q portico <<<"$out"
}
t "systemd-analyze verify accepts portico.service and portico.socket" verify_units

# --- 6. purge
t "apt-get purge -y portico" apt-get purge -y -q portico
purged() {
    local p
    ! dpkg-query -W -f='${Status}\n' portico 2>/dev/null | grep -q " installed" || return 1
    for p in /usr/sbin/portico /etc/portico /var/log/portico /etc/logrotate.d/portico \
        /lib/systemd/system/portico.service /lib/systemd/system/portico.socket \
        /usr/libexec/portico /usr/share/doc/portico /usr/share/portico \
        /var/www/html/index.portico-debian.html \
        /etc/systemd/system/multi-user.target.wants/portico.service; do
        if [ -e "$p" ] || [ -L "$p" ]; then
            echo "left behind: $p"
            return 1
        fi
    done
}
t "purge removed the files, the configuration, the logs and the unit links" purged

finish
