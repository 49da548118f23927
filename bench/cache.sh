#!/bin/bash
# bench/cache.sh: a cached PHP page, portico's response cache against
# nginx's fastcgi_cache (issue 18: "a cached PHP page (cache hit) against
# nginx fastcgi_cache: >= 1.2x its req/s, or <= 0.8x its server CPU where
# the client is the limit; a cold popular page under 100 concurrent
# clients: exactly one backend request per fill").
#
# One PHP-FPM pool (static, 4 children) serves both servers; page.php sends
# "Cache-Control: max-age=3600" and about 4 KiB of HTML. One worker each,
# pinned to CPU 0 (wrk on CPU 1). Reported per server:
#   cold:  backend requests seen by PHP-FPM when CLIENTS clients ask at once
#          for an entry nobody has asked for yet (page.php sleeps 300 ms, so
#          they all overlap the fill); both servers lock fills (nginx:
#          fastcgi_cache_lock on);
#   hit:   requests/s and server CPU per request (utime + stime of the whole
#          process tree, from /proc) for the cached page, keep-alive.
#
#   apt-get install -y nginx-light wrk curl php8.2-fpm python3
#   cd build && ../bench/cache.sh                 # DURATION=10 CONNS=8 CLIENTS=100
set -euo pipefail

DURATION="${DURATION:-10}"
CONNS="${CONNS:-8}"
CLIENTS="${CLIENTS:-100}"
PORTICO="${PORTICO:-./src/portico}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
FPM="${FPM:-$(ls /usr/sbin/php-fpm* 2>/dev/null | sort -r | head -1)}"
PORT_P="${PORT_P:-28391}"
PORT_N="${PORT_N:-28392}"

BENCH=cache.sh
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
command -v wrk >/dev/null || die "missing wrk (apt-get install -y wrk)"
command -v curl >/dev/null || die "missing curl"
[[ -x "$NGINX" ]] || die "missing nginx (apt-get install -y nginx-light)"
[[ -n "$FPM" && -x "$FPM" ]] || die "missing php-fpm (apt-get install -y php8.2-fpm)"
[[ -x "$PORTICO" ]] || die "no portico at $PORTICO (run from the build directory or set PORTICO)"

bench_begin

mkdir -p "$tmp/www" "$tmp/nginx" "$tmp/ncache"
chmod 755 "$tmp" "$tmp/www"
cat >"$tmp/www/page.php" <<'EOF'
<?php
if (isset($_GET['sleep'])) usleep((int)$_GET['sleep'] * 1000);
header('Cache-Control: max-age=3600');
header('Content-Type: text/html; charset=UTF-8');
echo "<!doctype html><title>cached</title>\n";
for ($i = 0; $i < 64; $i++) echo "<p>row $i of a page PHP made once and the cache keeps.</p>\n";
EOF
chmod 644 "$tmp/www/page.php"

as_root=()
[[ "$(id -u)" == 0 ]] && as_root=(-R)
cat >"$tmp/fpm.conf" <<EOF
[global]
error_log = $tmp/fpm-error.log
daemonize = no
[www]
listen = $tmp/fpm.sock
listen.mode = 0666
pm = static
pm.max_children = 4
access.log = $tmp/fpm-access.log
access.format = "%{REQUEST_URI}e"
EOF

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log stderr warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    fastcgi_cache_path $tmp/ncache levels=1:2 keys_zone=php:10m max_size=1g;
    server {
        listen 127.0.0.1:$PORT_N;
        root $tmp/www;
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$tmp/fpm.sock;
            fastcgi_cache php;
            fastcgi_cache_key \$scheme\$host\$request_uri;
            fastcgi_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
EOF

cold() { # name port: CLIENTS clients at once on a new entry; backend requests
    local name="$1" port="$2" id="cold-$1-$RANDOM" cpids=()
    for _ in $(seq "$CLIENTS"); do
        curl -s -o /dev/null "http://127.0.0.1:$port/page.php?id=$id&sleep=300" &
        cpids+=($!)
    done
    wait "${cpids[@]}" # the servers are children too
    sleep 0.5
    local n
    n="$(grep -c "id=$id&" "$tmp/fpm-access.log" || true)"
    printf '%-8s cold: %d clients at once on a new entry -> %d backend request(s)\n' \
        "$name" "$CLIENTS" "$n"
}

hit() { # name port sid
    local name="$1" port="$2" sid="$3" url="http://127.0.0.1:$2/page.php?hit=1"
    curl -s -o /dev/null "$url"
    curl -s -D "$tmp/h" -o /dev/null "$url"
    grep -qi '^x-cache-status: HIT' "$tmp/h" || die "$name: the page is not a hit: $(cat "$tmp/h")"
    wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null
    local t0 t1 hz out reqs rps
    hz="$(getconf CLK_TCK)"
    t0="$(tree_ticks "$sid")"
    out="$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url")"
    t1="$(tree_ticks "$sid")"
    reqs="$(awk '/requests in/ { print $1 }' <<<"$out")"
    rps="$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")"
    python3 - "$name" "$reqs" "$rps" "$((t1 - t0))" "$hz" <<'EOF'
import sys
name, reqs, rps, ticks, hz = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
print('%-8s hit:  %9s req/s  %7.1f us server CPU per request' % (name, rps, ticks / hz * 1e6 / max(reqs, 1)))
EOF
}

setsid "$FPM" "${as_root[@]}" -F -y "$tmp/fpm.conf" >"$tmp/fpm.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -S "$tmp/fpm.sock" ]] && break; sleep 0.1; done
[[ -S "$tmp/fpm.sock" ]] || die "php-fpm did not start: $(cat "$tmp/fpm.log")"

start portico 0 "http://127.0.0.1:$PORT_P/page.php?warm" "$PORTICO" -D -w 1 -l "127.0.0.1:$PORT_P" -r "$tmp/www" --access-log off \
    --error-log stderr --fastcgi ".php=unix:$tmp/fpm.sock" --cache "$tmp/pcache" \
    -o cache_status_header=true
sid_p="${pids[-1]}"
start nginx 0 "http://127.0.0.1:$PORT_N/page.php?warm" "$NGINX" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx"
sid_n="${pids[-1]}"

echo "# PHP page with Cache-Control: max-age=3600; ${DURATION}s, $CONNS connections, keep-alive;"
echo "# servers on CPU 0, wrk on CPU 1; one PHP-FPM pool (4 children) behind both"
cold nginx "$PORT_N"
cold portico "$PORT_P"
hit nginx "$PORT_N" "$sid_n"
hit portico "$PORT_P" "$sid_p"
