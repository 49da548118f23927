#!/usr/bin/env bash
# tests/pristine.sh: what a fresh Debian 12 machine lacks shows up here, as a
# failed test, rather than on a user's machine. In a pristine minimal
# Debian 12 root (debootstrap --variant=minbase bookworm, from the mirror
# the host's apt uses; the tarball of it is cached in
# /var/cache/portico-pristine between runs, as are the packages apt fetches
# there), this
#   1. runs the README's first command (taken from the README itself, so the
#      README stays honest), with its final foreground start of the demo
#      replaced by a start in the background, until the demo answers on
#      http://127.0.0.1:8080/;
#   2. installs the portico .deb with "apt-get install" and nothing else,
#      checks that "portico -t" accepts the packaged configuration, and
#      runs the installed binary with the packaged settings on a test port:
#      it must serve its default page at /;
#   3. purges the package, which must leave nothing behind.
# The servers run in a network namespace of their own (unshare -n, with
# only its loopback up): port 8080 of the host is never involved.
# The .deb is $PT_DEB when set (tests/suite.sh passes the one tests/deb.sh
# built), else built here from a clean copy of this tree.
#
# Prints TAP; exits non-zero if a test failed, and then keeps its scratch
# directory. Skips (with the reason) where debootstrap cannot run: not
# root, not Debian, no namespaces or mounts, the mirror not reachable.
# PT_NO_APT=1: install nothing on the host.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
cache=${PT_PRISTINE_CACHE:-/var/cache/portico-pristine}

if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP tests/pristine.sh runs debootstrap and chroot: it needs root"
    exit 0
fi
if [ ! -r /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "1..0 # SKIP tests/pristine.sh needs Debian (apt-get, debootstrap)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
work=$(mktemp -d /var/tmp/portico-pristine.XXXXXX)
work=$(realpath "$work") # as /proc/PID/root names it
root=$work/root
log=$work/log
n=0
failed=0
mounted=()

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
t() { # NAME COMMAND...: one test; the log's tail as diagnostics on failure
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

# Every process whose root is the chroot is one this script started there.
kill_chroot_procs() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    true
}
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null
    done
    mounted=()
}
# Nothing may be mounted below the work directory when it is removed (a bind
# mount of /dev would otherwise be emptied).
still_mounted() {
    awk -v w="$work/" 'index($2 "/", w) == 1 { print $2 }' /proc/self/mounts
}
cleanup() {
    kill_chroot_procs
    sleep 0.2
    unmount_all
    if [ "$failed" = 0 ] && [ -z "$(still_mounted)" ]; then
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
finish() {
    echo "1..$n"
    cleanup
    if [ "$failed" = 0 ]; then
        exit 0
    fi
    if [ -n "$(still_mounted)" ]; then
        echo "# still mounted below $work:"
        still_mounted | diag
    fi
    echo "# $failed of $n failed; root and logs kept in $work"
    exit 1
}
skip_all() {
    echo "1..0 # SKIP $1"
    cleanup
    [ -z "$(still_mounted)" ] && rm -rf --one-file-system "$work"
    exit 0
}

# --- what the host needs
if [ -z "${PT_NO_APT:-}" ]; then
    need=()
    for c in debootstrap:debootstrap curl:curl unshare:util-linux ip:iproute2 \
        dpkg-buildpackage:dpkg-dev dh:debhelper; do
        command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
    done
    if [ "${#need[@]}" -gt 0 ] &&
        ! { apt-get install -y -q --no-install-recommends "${need[@]}" ||
            { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }; } \
            >"$work/apt.log" 2>&1; then
        not_ok "install ${need[*]} on the host"
        tail -n 20 "$work/apt.log" | diag
        finish
    fi
fi
command -v debootstrap >/dev/null 2>&1 || skip_all "debootstrap is not installed (PT_NO_APT)"

# The mirror the host's apt uses for Debian itself (deb822 or one-line
# format), else Debian's redirector.
mirror_of_host() {
    local f
    for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
            /(^|\n)Suites:[^\n]*[ \t]'"$suite"'([ \t]|\n|$)/ {
                for (i = 1; i <= NF; i++)
                    if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); print u[1]; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        sed -n "s|^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+$suite[[:space:]].*|\2|p" "$f"
    done
    echo http://deb.debian.org/debian
}
mirror=$(mirror_of_host | head -n 1)
mirror=${mirror%/}
arch=$(dpkg --print-architecture)
echo "# mirror $mirror, $suite/$arch, cache $cache"
curl -sSf --max-time 30 -o /dev/null "$mirror/dists/$suite/Release" 2>"$work/curl.log" ||
    skip_all "the Debian mirror $mirror cannot be reached ($(head -c 200 "$work/curl.log"))"
unshare -n true 2>/dev/null || skip_all "unshare -n fails here: no network namespaces"

# --- 0. the pristine root: the cached tarball, else debootstrap (and cache it)
tarball=$cache/debootstrap-$suite-$arch-minbase.tar.gz
mkdir -p "$root" "$cache/archives/partial"
# a cache older than 30 days is made anew (its packages would lag too far)
find "$tarball" -mtime +30 -delete 2>/dev/null
fresh_root() {
    if [ -s "$tarball" ]; then
        echo "from $tarball"
        tar -C "$root" --numeric-owner -xpzf "$tarball"
    else
        mkdir -p "$work/boot" &&
            debootstrap --variant=minbase "$suite" "$work/boot" "$mirror" &&
            tar -C "$work/boot" --numeric-owner -czf "$tarball.$$" . &&
            mv "$tarball.$$" "$tarball" &&
            rm -rf --one-file-system "$work/boot" &&
            tar -C "$root" --numeric-owner -xpzf "$tarball"
    fi
}
cached=debootstrapped
[ -s "$tarball" ] && cached="from the cache"
if ! t "a pristine minimal Debian 12 root ($cached)" fresh_root; then
    rm -f "$tarball.$$"
    if grep -qiE 'permission|not permitted|mknod|cannot mount' "$log"; then
        skip_all "debootstrap cannot run here: $(grep -iE 'permission|not permitted|mknod|mount' "$log" | head -n 1)"
    fi
    finish
fi
# the host's name service; /proc and /dev for the builds; apt's downloads
# kept in the cache (they are the same packages, fetched once)
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
mounts() {
    mount -t proc proc "$root/proc" && mounted+=("$root/proc") &&
        mount --bind /dev "$root/dev" && mounted+=("$root/dev") &&
        mount --bind "$cache/archives" "$root/var/cache/apt/archives" &&
        mounted+=("$root/var/cache/apt/archives")
}
t "mount /proc, /dev and the package cache in it" mounts || finish
# in the chroot: root's environment of a fresh login, and no questions
in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive /bin/bash -c "$1"
}

# --- 1. the README's first command, in a clean copy of the source tree:
# the files git knows (committed or not, ignored ones left out), or the
# whole tree of an unpacked release tarball
src=/root/portico
mkdir -p "$work/src" "$root$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
    tar -C "$top" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$work/src" -xf -
fi
cp -a "$work/src/." "$root$src/"
readme_cmd=$(awk '/^```/ { n++; next } n == 1' "$top/README")
echo "# README: $readme_cmd"
# it must end by starting the demo in the foreground: that part runs below
demo_run='./src/portico -c ../conf/demo.conf'
build_cmd=${readme_cmd%" && $demo_run"}
if [ "$build_cmd" = "$readme_cmd" ] || [ -z "$build_cmd" ]; then
    not_ok "the README's first command ends with \"&& $demo_run\""
    finish
fi
t "the README's first command builds portico (up to the demo's start)" \
    in_root "cd $src && $build_cmd" || finish

# SERVER-COMMAND CHECK-FUNCTION: runs the server (in the chroot, cwd DIR) in a
# network namespace with only a loopback, calls the check there, stops it.
# Both run in one "unshare -n" shell; the check's functions are exported.
in_netns() {
    local dir=$1 cmd=$2 check=$3
    unshare -n -- bash -c '
        ip link set lo up || exit 1
        chroot "$1" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            /bin/bash -c "cd $2 && exec $3" </dev/null >"$5" 2>&1 &
        pid=$!
        "$4" "$pid"
        rc=$?
        kill -QUIT "$pid" 2>/dev/null
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        exit $rc' in_netns "$root" "$dir" "$cmd" "$check" "$work/server.out"
}
# answers PID URL TEXT: the server at URL answers 200 with TEXT in the body
answers() {
    local pid=$1 url=$2 text=$3 i code
    for i in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || { echo "the server exited"; cat "$work/server.out"; return 1; }
        code=$(curl -s --max-time 5 -o "$work/body" -w '%{http_code}' "$url") && [ "$code" != 000 ] && break
        sleep 0.1
    done
    echo "GET $url: $code after $((i / 10)) s"
    head -c 2000 "$work/body"
    [ "$code" = 200 ] && grep -q "$text" "$work/body"
}
demo_answers() { answers "$1" http://127.0.0.1:8080/ portico; }
export -f answers demo_answers
export work
t "the README's demo answers on http://127.0.0.1:8080/" \
    in_netns "$src/build" "$demo_run" demo_answers

# --- 2. the package, installed with apt-get alone
build_deb() {
    local b=$work/deb version
    version=$(cd "$top" && dpkg-parsechangelog -S Version) || return 1
    mkdir -p "$b/portico-$version" &&
        cp -a "$work/src/." "$b/portico-$version/" &&
        { [ -n "${PT_NO_APT:-}" ] || apt-get build-dep -y -q "$b/portico-$version"; } &&
        (cd "$b/portico-$version" && dpkg-buildpackage -us -uc -b) || return 1
    PT_DEB=$(find "$b" -maxdepth 1 -name "portico_${version}_*.deb" | head -n 1)
    [ -n "$PT_DEB" ]
}
if [ -n "${PT_DEB:-}" ]; then
    echo "# the package: $PT_DEB"
else
    t "build the package on the host (dpkg-buildpackage -us -uc -b)" build_deb || finish
fi
cp "$PT_DEB" "$root/tmp/" || { not_ok "copy $PT_DEB into the root"; finish; }
deb_in_root=/tmp/$(basename "$PT_DEB")
t "apt-get install -y $deb_in_root" in_root "apt-get install -y $deb_in_root" || finish
t "portico -t accepts the packaged configuration" \
    in_root "portico -t -c /etc/portico/portico.conf"
t "the document root /var/www/html has the default page and nothing else" \
    in_root 'ls -la /var/www/html && [ "$(ls -A /var/www/html)" = index.portico-debian.html ]'
port=8081
default_page() { answers "$1" "http://127.0.0.1:$2/" "<h1>portico answered</h1>"; }
packaged_default_page() { default_page "$1" "$port"; }
export -f default_page packaged_default_page
export port
t "the installed portico serves its default page at / with the packaged settings (port $port)" \
    in_netns / "/usr/sbin/portico -c /etc/portico/portico.conf -o listen=127.0.0.1:$port" \
    packaged_default_page
t "its access log has the request" in_root 'grep -q "\"GET / HTTP/1.1\" 200" /var/log/portico/access.log'

# --- 3. purge
t "apt-get purge -y portico" in_root "apt-get purge -y portico"
purged() {
    local p
    in_root "! dpkg -s portico" || return 1
    for p in /usr/sbin/portico /etc/portico /var/log/portico /usr/share/portico \
        /usr/share/doc/portico /var/www/html/index.portico-debian.html \
        /etc/systemd/system/multi-user.target.wants/portico.service /var/www; do
        if [ -e "$root$p" ] || [ -L "$root$p" ]; then
            echo "left behind: $p"
            return 1
        fi
    done
}
t "purge leaves nothing of it behind" purged

finish
