#!/bin/bash
# bench/uwsgi.sh: the uwsgi protocol, portico (handler = "uwsgi") against
# nginx's uwsgi_pass, in front of the same uWSGI application (issue 17,
# "Performance": uwsgi protocol vs nginx uwsgi_pass to the same uWSGI app).
#
# uWSGI runs a WSGI application answering 1 KiB (its processes on CPU 1,
# with wrk); each front server runs one worker on CPU 0. Both open a
# connection per request (the uwsgi protocol ends a response by closing).
# Reported: requests/s and the front server's CPU per request (utime +
# stime of its process tree, from /proc). portico sends the variables
# nginx's uwsgi_params does (minimal_variables = true): uWSGI shares CPU 1
# with wrk and does about 14% more per request with portico's full CGI set
# (bench/upstream-cost.py).
#
#   apt-get install -y nginx-light uwsgi uwsgi-plugin-python3 wrk curl python3
#   cd build && ../bench/uwsgi.sh                 # DURATION=10 CONNS=16 PROCESSES=4
set -euo pipefail

DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
PROCESSES="${PROCESSES:-4}"
PORTICO="${PORTICO:-./src/portico}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
UWSGI="${UWSGI:-$(command -v uwsgi || echo /usr/bin/uwsgi)}"
PORT_P="${PORT_P:-28395}"
PORT_N="${PORT_N:-28396}"

BENCH=uwsgi.sh
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/lib/common.sh"
command -v wrk >/dev/null || die "missing wrk (apt-get install -y wrk)"
[[ -x "$NGINX" ]] || die "missing nginx (apt-get install -y nginx-light)"
[[ -x "$UWSGI" ]] || die "missing uwsgi (apt-get install -y uwsgi uwsgi-plugin-python3)"
[[ -x "$PORTICO" ]] || die "no portico at $PORTICO (run from the build directory or set PORTICO)"

bench_begin
mkdir -p "$tmp/nginx"
chmod 755 "$tmp"

cat >"$tmp/app.py" <<'EOF'
BODY = b'x' * 1023 + b'\n'


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '1024')])
    return [BODY]
EOF

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log stderr warn;
pid $tmp/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
    server {
        listen 127.0.0.1:$PORT_N;
        location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:$tmp/app.sock; }
    }
}
EOF

cat >"$tmp/portico.conf" <<EOF
user = "$(id -un)";
workers = 1;
access_log = "off";
backends = ( { name = "app"; servers = ( "unix:$tmp/app.sock" ); minimal_variables = true; } );
locations = ( { prefix = "/"; handler = "uwsgi"; backend = "app"; } );
EOF

run() { # name port sid
    local name="$1" port="$2" sid="$3"
    [[ "$(curl -s "http://127.0.0.1:$port/" | wc -c)" == 1024 ]] || die "$name: no 1 KiB answer"
    taskset -c 1 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/" >/dev/null
    local t0 t1 hz out
    hz="$(getconf CLK_TCK)"
    t0="$(tree_ticks "$sid")"
    out="$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/")"
    t1="$(tree_ticks "$sid")"
    python3 - "$name" "$((t1 - t0))" "$hz" "$DURATION" "$out" <<'EOF'
import re, sys
name, ticks, hz, dur, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
reqs = int(re.search(r'(\d+) requests in', out).group(1))
bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
print('%-8s %10.0f req/s %8.1f us CPU/req  %s non-2xx'
      % (name, reqs / dur, ticks / hz * 1e6 / max(reqs, 1), bad.group(1) if bad else 0))
EOF
}

start uwsgi 1 "unix:$tmp/app.sock" "$UWSGI" --plugin python3 --master --processes "$PROCESSES" --die-on-term \
    --disable-logging --wsgi-file "$tmp/app.py" --uwsgi-socket "$tmp/app.sock" --chmod-socket=666
echo "# front server on CPU 0, uWSGI ($PROCESSES processes) and wrk on CPU 1, ${DURATION}s, $CONNS connections"
start portico 0 "http://127.0.0.1:$PORT_P/" "$PORTICO" -D -c "$tmp/portico.conf" -l "127.0.0.1:$PORT_P" --error-log stderr
run portico "$PORT_P" "${pids[-1]}"
kill -TERM -- "-${pids[-1]}" 2>/dev/null || true
start nginx 0 "http://127.0.0.1:$PORT_N/" "$NGINX" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx"
run nginx "$PORT_N" "${pids[-1]}"
