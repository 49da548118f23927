#!/bin/bash
# bench/proxy.sh: the HTTP reverse proxy, portico against nginx (proxy_pass
# with an upstream keepalive pool) and lighttpd (mod_proxy), in front of the
# same fast upstream (issue 17, "Performance": 1 KiB responses, req/s and
# server CPU per request; 1 MiB responses, MiB/s).
#
# The upstream is an nginx serving two static files (1 KiB, 1 MiB) with
# keep-alive, pinned with wrk to CPU 1; each proxy runs one worker on CPU 0
# (the same budget for all), keep-alive on both sides, no access log.
# Reported per proxy and size: requests/s, MiB/s, proxy CPU per request
# (utime + stime of its process tree, from /proc, and the two apart: user
# space, and the kernel with the loopback TCP work it does for the proxy's
# sends) and the non-2xx count.
#
#   apt-get install -y nginx-light lighttpd wrk curl python3
#   cd build && ../bench/proxy.sh                 # DURATION=10 CONNS=16
#   SIZES=1k PROXIES="portico nginx" ../bench/proxy.sh
#   CONNS=256 POOL=512 SIZES=1k PROXIES="portico nginx" ../bench/proxy.sh
#   SIZES=1k PROXIES="portico nginx fwd" ../bench/proxy.sh   # with the floor
#
# fwd (lib/fwd.c, compiled here) is no proxy anyone runs: a client
# connection gets an upstream connection of its own and the bytes go
# through untouched, nothing parsed or rewritten; its CPU per request is
# the kernel's part of proxying on this host (the loopback TCP of both
# sockets, the wakeups), the floor under every real proxy's.
#
# portico's backend keeps up to POOL (64) idle upstream connections per
# worker (keepalive_max), like nginx's "keepalive 64" (at more client
# connections than POOL both open and close upstream connections per
# request, nginx more of them: give POOL >= CONNS), and sends X-Forwarded-For
# alone (forwarded = false), like nginx here (by default portico adds
# X-Forwarded-Proto, X-Forwarded-Host and Forwarded, about 2,100
# instructions more per request for the upstream nginx, which shares CPU 1
# with wrk: bench/upstream-cost.py); lighttpd 1.4's mod_proxy
# opens a connection per request unless proxy.header's upgrade/keep-alive
# options say otherwise (it is measured as Debian ships it).
set -euo pipefail

DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
POOL="${POOL:-64}"
SIZES="${SIZES:-1k 1m}"
PROXIES="${PROXIES:-portico nginx lighttpd}"
PORTICO="${PORTICO:-./src/portico}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
LIGHTTPD="${LIGHTTPD:-$(command -v lighttpd || echo /usr/sbin/lighttpd)}"
PORT_UP="${PORT_UP:-28390}"
PORT_P="${PORT_P:-28391}"
PORT_N="${PORT_N:-28392}"
PORT_L="${PORT_L:-28393}"
PORT_F="${PORT_F:-28394}"

BENCH=proxy.sh
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
command -v wrk >/dev/null || die "missing wrk (apt-get install -y wrk)"
[[ -x "$NGINX" ]] || die "missing nginx (apt-get install -y nginx-light)"
[[ -x "$PORTICO" ]] || die "no portico at $PORTICO (run from the build directory or set PORTICO)"

bench_begin

mkdir -p "$tmp/www" "$tmp/up" "$tmp/nginx" "$tmp/lighttpd"
chmod 755 "$tmp" "$tmp/www"
head -c 1024 /dev/urandom >"$tmp/www/1k"
head -c 1048576 /dev/urandom >"$tmp/www/1m"
chmod 644 "$tmp/www/1k" "$tmp/www/1m"

temp_paths() { # nginx's temp directories, out of /var
    local d="$1"
    printf '    client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n' "$d" "$d" "$d"
    printf '    uwsgi_temp_path %s; scgi_temp_path %s;\n' "$d" "$d"
}

# the upstream: static files, keep-alive without limit
cat >"$tmp/up/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log stderr warn;
pid $tmp/up/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
$(temp_paths "$tmp/up")
    server { listen 127.0.0.1:$PORT_UP; root $tmp/www; }
}
EOF

# nginx as the proxy: HTTP/1.1 upstream with a keepalive pool
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log stderr warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
$(temp_paths "$tmp/nginx")
    upstream up { server 127.0.0.1:$PORT_UP; keepalive $POOL; }
    server {
        listen 127.0.0.1:$PORT_N;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF

cat >"$tmp/lighttpd/lighttpd.conf" <<EOF
server.document-root = "$tmp/www"
server.bind = "127.0.0.1"
server.port = $PORT_L
server.modules = ( "mod_proxy" )
server.max-keep-alive-requests = 10000000
server.errorlog = "$tmp/lighttpd/error.log"
proxy.server = ( "" => ( ( "host" => "127.0.0.1", "port" => $PORT_UP ) ) )
proxy.forwarded = ( "for" => 1 )
EOF

cat >"$tmp/portico.conf" <<EOF
user = "$(id -un)";
workers = 1;
access_log = "off";
backends = ( { name = "up"; servers = ( "127.0.0.1:$PORT_UP" ); keepalive_max = $POOL; forwarded = false; } );
locations = ( { prefix = "/"; handler = "proxy"; backend = "up"; } );
EOF

run() { # name port sid size
    local name="$1" port="$2" sid="$3" size="$4"
    curl -s -o "$tmp/got" "http://127.0.0.1:$port/$size"
    cmp -s "$tmp/got" "$tmp/www/$size" || die "$name: /$size is not the file"
    taskset -c 1 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/$size" >/dev/null
    local t0 t1 hz out
    hz="$(getconf CLK_TCK)"
    t0="$(tree_ticks_split "$sid")"
    out="$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/$size")"
    t1="$(tree_ticks_split "$sid")"
    python3 - "$name" "$size" "$t0" "$t1" "$hz" "$DURATION" "$out" <<'EOF'
import re, sys
name, size, hz, dur = sys.argv[1], sys.argv[2], int(sys.argv[5]), float(sys.argv[6])
(u0, k0), (u1, k1) = (map(int, sys.argv[3].split())), (map(int, sys.argv[4].split()))
out = sys.argv[7]
reqs = int(re.search(r'(\d+) requests in', out).group(1))
bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
nbytes = {'1k': 1024, '1m': 1048576}[size]
per = 1e6 / hz / max(reqs, 1)
print('%-9s %-3s %10.0f req/s %9.1f MiB/s %8.1f us CPU/req (user %.1f, kernel %.1f)  %s non-2xx'
      % (name, size, reqs / dur, reqs * nbytes / dur / 1048576, (u1 - u0 + k1 - k0) * per,
         (u1 - u0) * per, (k1 - k0) * per, bad.group(1) if bad else 0))
EOF
}

start upstream 1 "http://127.0.0.1:$PORT_UP/1k" "$NGINX" -c "$tmp/up/nginx.conf" -p "$tmp/up"
echo "# proxy on CPU 0, upstream nginx and wrk on CPU 1, ${DURATION}s, $CONNS connections, keep-alive"
for p in $PROXIES; do
    case "$p" in
    portico) start portico 0 "http://127.0.0.1:$PORT_P/1k" "$PORTICO" -D -c "$tmp/portico.conf" -l "127.0.0.1:$PORT_P" \
        --error-log stderr ;;
    nginx) start nginx 0 "http://127.0.0.1:$PORT_N/1k" "$NGINX" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" ;;
    lighttpd)
        [[ -x "$LIGHTTPD" ]] || { echo "# lighttpd not installed: skipped"; continue; }
        start lighttpd 0 "http://127.0.0.1:$PORT_L/1k" "$LIGHTTPD" -D -f "$tmp/lighttpd/lighttpd.conf" ;;
    fwd)
        cc -O2 -o "$tmp/fwd" "$(dirname "$0")/lib/fwd.c" || die "cannot compile lib/fwd.c"
        start fwd 0 "http://127.0.0.1:$PORT_F/1k" "$tmp/fwd" "$PORT_F" "$PORT_UP" ;;
    *) die "unknown proxy $p" ;;
    esac
    sid="${pids[-1]}"
    port_var="PORT_$(tr a-z A-Z <<<"${p:0:1}")"
    for size in $SIZES; do
        run "$p" "${!port_var}" "$sid" "$size"
    done
    kill -TERM -- "-$sid" 2>/dev/null || true
    sleep 0.3
done
