#!/usr/bin/env bash
# h2-cost.sh - what one HTTP/2 request costs the server, in numbers a
# loaded machine does not blur: instructions (callgrind, by library) and
# system calls (strace -c), portico beside nginx and H2O (issue 19).
#
# Each server: one worker (H2O: one thread), the same ECDSA P-256
# certificate, TLS with ALPN h2, GET /1k.bin as h2load's -c1 -m100 (one
# connection, 100 streams in flight), no access log. A run of 100 + 100
# requests and one of 100 + N are measured (two h2load runs each, so the
# same connections); the difference over N - 100 is the cost per request,
# so start-up and the connections' handshakes are not in it. The server
# process with the most instructions is the worker.
#
#   bench/h2-cost.sh --portico build/src/portico [--requests 20000]
#                    [--servers portico,nginx,h2o] [--no-strace]
#                    [--conns 1] [--streams 100] [--rps N] [--keep DIR]
#
# --conns/--streams: h2load's -c/-m (h2-conc is --conns 100 --streams 10;
# then the first run makes as many connections as the second, so their
# handshakes cancel out). --rps: h2load's requests per second per
# connection, so that each read holds few requests, as on a quiet
# machine where the server is not the one slowed down by valgrind: the
# per-round costs then show. --keep DIR: the worker's callgrind files.
set -uo pipefail
PORTICO="" N=20000 SERVERS="portico,nginx,h2o" ST=1 C=1 M=100 RPS="" KEEP=""
while (($#)); do
    case "$1" in
    --portico) PORTICO="$2"; shift 2 ;;
    --requests) N="$2"; shift 2 ;;
    --servers) SERVERS="$2"; shift 2 ;;
    --no-strace) ST=0; shift ;;
    --conns) C="$2"; shift 2 ;;
    --streams) M="$2"; shift 2 ;;
    --rps) RPS="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
die() { echo "h2-cost.sh: $*" >&2; exit 1; }
[[ ",$SERVERS," != *,portico,* || -x "$PORTICO" ]] || die "--portico PATH (a built src/portico) is needed"
[[ -n "$PORTICO" ]] && PORTICO="$(cd "$(dirname "$PORTICO")" && pwd)/$(basename "$PORTICO")"
command -v valgrind >/dev/null || die "missing valgrind (apt-get install -y valgrind)"
command -v h2load >/dev/null || die "missing h2load (apt-get install -y nghttp2-client)"
((ST)) && { command -v strace >/dev/null || die "missing strace (apt-get install -y strace)"; }
[[ ",$SERVERS," != *,nginx,* ]] || command -v nginx >/dev/null || die "missing nginx (apt-get install -y nginx-light)"
[[ ",$SERVERS," != *,h2o,* ]] || command -v h2o >/dev/null || die "missing h2o (apt-get install -y h2o)"

W="$(mktemp -d /tmp/h2-cost.XXXXXX)" || die "mktemp"
SP=""
cleanup() {
    [[ -n "$SP" ]] && { kill -TERM -- "-$SP" 2>/dev/null; wait "$SP" 2>/dev/null; }
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/nginx/tmp" "$W/h2o"
head -c 1024 /dev/urandom >"$W/www/1k.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$W/key.pem" -out "$W/cert.pem" -subj /CN=localhost >/dev/null 2>&1 || die "openssl req"
chmod 644 "$W/key.pem"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ROOT="$( [[ $(id -u) == 0 ]] && echo 1)"
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
$( [[ -n "$ROOT" ]] && echo 'user root root;')
events { worker_connections 1024; use epoll; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_requests 100000000;
    client_body_temp_path $W/nginx/tmp/body;
    proxy_temp_path $W/nginx/tmp/proxy;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:@PORT@ ssl http2;
        root $W/www;
        ssl_certificate $W/cert.pem;
        ssl_certificate_key $W/key.pem;
        ssl_session_tickets on;
        ssl_session_cache shared:SSL:10m;
    }
}
EOF
cat >"$W/h2o/h2o.conf" <<EOF
$( [[ -n "$ROOT" ]] && echo 'user: root')
num-threads: 1
pid-file: $W/h2o/h2o.pid
error-log: $W/h2o/error.log
file.send-compressed: OFF
listen:
  host: 127.0.0.1
  port: @PORT@
  ssl:
    certificate-file: $W/cert.pem
    key-file: $W/key.pem
    ocsp-update-interval: 0
hosts:
  default:
    paths:
      /:
        file.dir: $W/www
EOF

server_cmd() { # name port -> the command line (foreground)
    case "$1" in
    portico) echo "$PORTICO -D -w 1 -l 127.0.0.1:$(port) --tls 127.0.0.1:$2 --cert $W/cert.pem" \
        "--key $W/key.pem -r $W/www -o http2=true -o log_level=error -o limits.keepalive_requests=100000000" ;;
    nginx) sed "s/@PORT@/$2/" "$W/nginx/nginx.conf" >"$W/nginx/run.conf"
        echo "nginx -c $W/nginx/run.conf -p $W/nginx" ;;
    h2o) sed "s/@PORT@/$2/" "$W/h2o/h2o.conf" >"$W/h2o/run.conf"
        echo "h2o -c $W/h2o/run.conf" ;;
    esac
}
wait_port() {
    local i
    for ((i = 0; i < 300; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# the warm-up: as many connections as the measured run, M requests each
N0=$((C * M))
((N > N0)) || die "--requests must be more than conns x streams ($N0)"
load() { # port extra
    local rps=()
    [[ -n "$RPS" ]] && rps=(--rps "$RPS")
    h2load -n "$N0" -c "$C" -m "$M" "${rps[@]}" "https://127.0.0.1:$1/1k.bin" >/dev/null 2>&1
    if (($2 > 0)); then
        h2load -n "$2" -c "$C" -m "$M" "${rps[@]}" "https://127.0.0.1:$1/1k.bin" >"$W/h2load.txt" 2>&1
        grep -q " $2 succeeded" "$W/h2load.txt" || { cat "$W/h2load.txt" >&2; die "h2load failed"; }
    fi
}
# instructions of the busiest server process after 100 (+ extra) requests
instructions() { # name extra -> "total lib=n lib=n ..."
    local p cmd
    p="$(port)"
    cmd="$(server_cmd "$1" "$p")"
    rm -f "$W"/cg.*
    # shellcheck disable=SC2086
    setsid valgrind --tool=callgrind --callgrind-out-file="$W/cg.%p" --trace-children=yes \
        $cmd >"$W/$1-cg.log" 2>&1 &
    SP=$!
    wait_port "$p" || { tail "$W/$1-cg.log" >&2; die "$1 did not start under callgrind"; }
    load "$p" "$2"
    kill -TERM -- "-$SP" 2>/dev/null
    wait "$SP" 2>/dev/null
    SP=""
    local f best="" bn=0 n
    for f in "$W"/cg.*; do
        n="$(sed -n 's/^summary: //p' "$f")"
        [[ -n "$n" ]] && ((n > bn)) && { bn="$n"; best="$f"; }
    done
    [[ -n "$best" ]] || die "no callgrind output for $1"
    [[ -n "$KEEP" ]] && mkdir -p "$KEEP" && cp "$best" "$KEEP/$1-$2.cg"
    echo -n "$bn"
    callgrind_annotate --threshold=100 --inclusive=no "$best" 2>/dev/null |
        awk '/^-+$/ { sec++ } sec == 6 && /\]$/ { gsub(",", "", $1); o = $NF; gsub(/[][]/, "", o);
                sub(/.*\//, "", o); sub(/\.so.*/, "", o); s[o] += $1 }
             END { for (o in s) printf " %s=%d", o, s[o] }'
    echo
}
syscalls() { # name -> system calls per request (strace -c -f: all its processes, start-up too)
    local p cmd
    p="$(port)"
    cmd="$(server_cmd "$1" "$p")"
    # shellcheck disable=SC2086
    setsid strace -f -c -o "$W/$1-st.txt" $cmd >"$W/$1-st.log" 2>&1 &
    SP=$!
    wait_port "$p" || die "$1 did not start under strace"
    load "$p" "$N"
    kill -TERM -- "-$SP" 2>/dev/null
    wait "$SP" 2>/dev/null
    SP=""
    awk -v n="$N" '$NF == "total" { printf "%.2f", $4 / n }' "$W/$1-st.txt"
}

echo "| server | instructions per h2 request | by library | system calls per request |"
echo "|---|--:|---|--:|"
IFS=',' read -r -a list <<<"$SERVERS"
for s in "${list[@]}"; do
    # the same connections in both runs: only N - N0 requests differ
    read -r -a a0 < <(instructions "$s" "$N0")
    read -r -a a1 < <(instructions "$s" "$N")
    per=$(((a1[0] - a0[0]) / (N - N0)))
    libs=""
    for kv in "${a1[@]:1}"; do
        k="${kv%%=*}" v1="${kv#*=}" v0=0
        for kv0 in "${a0[@]:1}"; do [[ "${kv0%%=*}" == "$k" ]] && v0="${kv0#*=}"; done
        d=$(((v1 - v0) / (N - N0)))
        ((d >= 100)) && libs+="$k $d, "
    done
    sc="-"
    ((ST)) && sc="$(syscalls "$s")"
    echo "| $s | $per | ${libs%, } | $sc |"
done
