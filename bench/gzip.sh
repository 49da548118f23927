#!/bin/bash
# bench/gzip.sh: compression on the fly, portico against nginx's gzip filter
# at the same level (issue 18: "gzip of a 100 KiB HTML response at the same
# level: server us per request <= nginx's").
#
# One worker each, pinned to CPU 0 (the client, wrk, to CPU 1); GET of a
# 100 KiB HTML file with "Accept-Encoding: gzip", keep-alive. Reported per
# server: requests/s, server CPU per request (utime + stime of the whole
# process tree, from /proc) and per MiB of input, and the coded size.
# portico is also measured with brotli ("Accept-Encoding: br") at its
# default quality, for reference.
#
#   apt-get install -y nginx-light wrk curl python3
#   cd build && ../bench/gzip.sh                  # LEVEL=6 DURATION=10 CONNS=8
#   LEVEL=1 ../bench/gzip.sh                      # nginx's own default level
#
# Notes: nginx's zlib window and memLevel follow the response length
# (gzip_window 15, gzip_hash 8 by default: 256 KiB of deflate state); portico
# uses 14 / 7 (128 KiB). Both use Debian's zlib.
set -euo pipefail

LEVEL="${LEVEL:-6}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-8}"
PORTICO="${PORTICO:-./src/portico}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
SIZE="${SIZE:-102400}"
PORT_P="${PORT_P:-28381}"
PORT_N="${PORT_N:-28382}"

BENCH=gzip.sh
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
command -v wrk >/dev/null || die "missing wrk (apt-get install -y wrk)"
[[ -x "$NGINX" ]] || die "missing nginx (apt-get install -y nginx-light)"
[[ -x "$PORTICO" ]] || die "no portico at $PORTICO (run from the build directory or set PORTICO)"

bench_begin

mkdir -p "$tmp/www" "$tmp/nginx"
chmod 755 "$tmp" "$tmp/www" # nginx's workers run as nobody when started as root
# real HTML when the system has some (Debian's documentation), else markup
# made up here; cut to SIZE bytes either way
python3 - "$tmp/www/page.html" "$SIZE" <<'EOF'
import glob, sys
path, size = sys.argv[1], int(sys.argv[2])
data = b''
for f in sorted(glob.glob('/usr/share/doc/*/*.html')) + sorted(glob.glob('/usr/share/doc/*/*/*.html')):
    try:
        data += open(f, 'rb').read()
    except OSError:
        pass
    if len(data) >= size:
        break
if len(data) < size:
    words = [b'<div class="row">', b'</div>\n', b'<a href="/x">', b'</a>', b'portico ',
             b'gateway ', b'compression ', b'lorem ', b'ipsum ', b'<p>', b'</p>\n']
    x = 1
    while len(data) < size:
        x = (x * 1103515245 + 12345) & 0x7fffffff
        data += words[(x >> 16) % len(words)]
open(path, 'wb').write(data[:size])
EOF

chmod 644 "$tmp/www/page.html"

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log stderr warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000;
    gzip on;
    gzip_comp_level $LEVEL;
    gzip_types text/html;
    gzip_min_length 256;
    gzip_vary on;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    server { listen 127.0.0.1:$PORT_N; root $tmp/www; }
}
EOF

check() { # port coding: the decoded body must be the file
    local port="$1" coding="$2"
    curl -s -H "Accept-Encoding: $coding" -D "$tmp/h" -o "$tmp/b" "http://127.0.0.1:$port/page.html"
    grep -qi "^content-encoding: $coding" "$tmp/h" || die "port $port: no $coding: $(cat "$tmp/h")"
    if [[ "$coding" == gzip ]]; then gzip -dc <"$tmp/b" >"$tmp/d"; else brotli -dc <"$tmp/b" >"$tmp/d"; fi
    cmp -s "$tmp/d" "$tmp/www/page.html" || die "port $port: $coding body does not decode to the file"
    stat -c %s "$tmp/b"
}

run() { # name port sid coding
    local name="$1" port="$2" sid="$3" coding="$4" coded
    coded="$(check "$port" "$coding")"
    wrk -t1 -c"$CONNS" -d2s -H "Accept-Encoding: $coding" "http://127.0.0.1:$port/page.html" >/dev/null
    local t0 t1 hz out reqs rps
    hz="$(getconf CLK_TCK)"
    t0="$(tree_ticks "$sid")"
    out="$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "Accept-Encoding: $coding" \
        "http://127.0.0.1:$port/page.html")"
    t1="$(tree_ticks "$sid")"
    reqs="$(awk '/requests in/ { print $1 }' <<<"$out")"
    rps="$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")"
    python3 - "$name" "$coding" "$LEVEL" "$reqs" "$rps" "$((t1 - t0))" "$hz" "$SIZE" "$coded" <<'EOF'
import sys
name, coding, level, reqs, rps, ticks, hz, size, coded = sys.argv[1:]
reqs, ticks, hz, size, coded = int(reqs), int(ticks), int(hz), int(size), int(coded)
us = ticks / hz * 1e6 / max(reqs, 1)
level = level if coding == 'gzip' else '5'  # brotli: portico's default quality
print('%-8s %-5s q %-2s %9s req/s  %7.1f us/req  %6.1f ms CPU per MiB in  %6d bytes out (%.1f%%)'
      % (name, coding, level, rps, us, us * 1048576 / size / 1000, coded, 100.0 * coded / size))
EOF
}

start portico 0 "http://127.0.0.1:$PORT_P/page.html" "$PORTICO" -D -w 1 -l "127.0.0.1:$PORT_P" -r "$tmp/www" --access-log off \
    --error-log stderr --compress -o "compress_gzip_level=$LEVEL"
sid_p="${pids[-1]}"
start nginx 0 "http://127.0.0.1:$PORT_N/page.html" "$NGINX" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx"
sid_n="${pids[-1]}"

echo "# $SIZE-byte HTML, ${DURATION}s, $CONNS connections, keep-alive; servers on CPU 0, wrk on CPU 1"
run nginx "$PORT_N" "$sid_n" gzip
run portico "$PORT_P" "$sid_p" gzip
if command -v brotli >/dev/null; then
    run portico "$PORT_P" "$sid_p" br
fi
