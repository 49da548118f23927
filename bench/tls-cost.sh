#!/usr/bin/env bash
# tls-cost.sh - what one new TLS connection costs the server's worker, in
# numbers a loaded machine does not blur: system calls (strace -c) and
# instructions (callgrind, by library), for portico and nginx side by side.
#
# Each server: one worker, the same ECDSA P-256 certificate, nginx with
# peers.sh's TLS settings (ssl_session_tickets on, shared session cache).
# The client is lib/tlsconn.c, one connection at a time, each a GET /1k.bin
# with "Connection: close": N full handshakes, then N resumed ones (-r).
# Under callgrind the instrumentation is on only while those N run, so
# start-up is not in the figures.  --keepalive measures instead what one
# 100 KiB response over a TLS keep-alive connection costs (wrk, one
# connection, SECONDS long), beside nginx and lighttpd (mod_openssl): the
# worker's CPU time per response (utime+stime: noisy on a loaded machine,
# compare runs made back to back), system calls, and instructions
# (instrumented while wrk runs: its one handshake, some 2.8 M
# instructions, is shared by all the responses, alike for each server).
# See README.md.
#
#   bench/tls-cost.sh --portico build/src/portico [--conns 200] [--no-nginx]
#                     [--no-callgrind] [--no-strace]
#                     [--keepalive [SECONDS]] [--no-lighttpd]
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORTICO="" N=200 NGINX=1 CG=1 ST=1 KA=0 KA_S=8 LIGHTTPD=1
while (($#)); do
    case "$1" in
    --portico) PORTICO="$2"; shift 2 ;;
    --conns) N="$2"; shift 2 ;;
    --no-nginx) NGINX=0; shift ;;
    --no-callgrind) CG=0; shift ;;
    --no-strace) ST=0; shift ;;
    --no-lighttpd) LIGHTTPD=0; shift ;;
    --keepalive) KA=1; shift; [[ "${1:-}" =~ ^[0-9]+$ ]] && { KA_S="$1"; shift; } ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
die() { echo "tls-cost.sh: $*" >&2; exit 1; }
[[ -x "$PORTICO" ]] || die "--portico PATH (a built src/portico) is needed"
PORTICO="$(cd "$(dirname "$PORTICO")" && pwd)/$(basename "$PORTICO")"
((ST)) && { command -v strace >/dev/null || die "missing strace (apt-get install -y strace)"; }
((CG)) && { command -v valgrind >/dev/null || die "missing valgrind (apt-get install -y valgrind)"; }
((NGINX)) && { command -v nginx >/dev/null || die "missing nginx (apt-get install -y nginx-light)"; }
if ((KA)); then
    command -v wrk >/dev/null || die "missing wrk (apt-get install -y wrk)"
    ((LIGHTTPD)) && ! { command -v lighttpd >/dev/null && [[ -e /usr/lib/lighttpd/mod_openssl.so ]]; } &&
        die "missing lighttpd (apt-get install -y lighttpd lighttpd-mod-openssl), or --no-lighttpd"
fi

W="$(mktemp -d /tmp/tls-cost.XXXXXX)" || die "mktemp"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do [[ -n "$p" ]] && { kill -TERM -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; }; done
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/www" "$W/nginx/tmp"
head -c 1024 /dev/urandom >"$W/www/1k.bin"
head -c 102400 /dev/urandom >"$W/www/100k.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$W/key.pem" -out "$W/cert.pem" -subj /CN=localhost >/dev/null 2>&1 || die "openssl req"
cc -O2 -pthread -o "$W/tlsconn" "$HERE/lib/tlsconn.c" -lssl -lcrypto || die "cannot build tlsconn.c"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PP="$(port)" PN="$(port)" PL="$(port)"
U="$( [[ $(id -u) == 0 ]] && echo 'user root root;')"
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
$U
events { worker_connections 4096; use epoll; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    client_body_temp_path $W/nginx/tmp/body;
    fastcgi_temp_path $W/nginx/tmp/fastcgi;
    proxy_temp_path $W/nginx/tmp/proxy;
    uwsgi_temp_path $W/nginx/tmp/uwsgi;
    scgi_temp_path $W/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$PN ssl;
        server_name localhost;
        root $W/www;
        ssl_certificate $W/cert.pem;
        ssl_certificate_key $W/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        ssl_session_cache shared:SSL:10m;
    }
}
EOF
mkdir -p "$W/lighttpd"
cat >"$W/lighttpd/lighttpd.conf" <<EOF
server.document-root = "$W/www"
server.bind = "127.0.0.1"
server.port = $PL
server.errorlog = "$W/lighttpd/error.log"
server.network-backend = "sendfile"
mimetype.assign = ( "" => "application/octet-stream" )
server.modules = ( "mod_openssl" )
ssl.engine = "enable"
ssl.pemfile = "$W/cert.pem"
ssl.privkey = "$W/key.pem"
EOF
cmd_of() { # server -> command
    case "$1" in
    lighttpd) echo "lighttpd -D -f $W/lighttpd/lighttpd.conf" ;;
    portico) echo "$PORTICO -D -w 1 -l 127.0.0.1:$(port) --tls 127.0.0.1:$PP --cert $W/cert.pem --key $W/key.pem -r $W/www -o log_level=warn" ;;
    nginx) echo "nginx -c $W/nginx/nginx.conf -p $W/nginx" ;;
    esac
}
port_of() { case "$1" in portico) echo "$PP" ;; nginx) echo "$PN" ;; *) echo "$PL" ;; esac; }

start() { # server [valgrind...] -> sets SRV (session leader) and WRK (its worker)
    local p i
    p="$(port_of "$1")"
    shift_args=("${@:2}")
    # shellcheck disable=SC2046
    setsid "${shift_args[@]}" $(cmd_of "$1") >"$W/$1.log" 2>&1 </dev/null &
    SRV=$!
    PIDS+=("$SRV")
    for ((i = 0; i < 600; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
        kill -0 "$SRV" 2>/dev/null || die "$1 did not start: $(tail -n 3 "$W/$1.log")"
        sleep 0.1
    done
    "$W/tlsconn" -p "$p" -u /1k.bin -c 1 -n 5 -d 300 >/dev/null # warm-up, and a first session
    WRK="$(ps -o pid= --ppid "$SRV" | tr -d ' ' | head -1)"
    # lighttpd is one process, its own worker (under valgrind as well)
    [[ "$1" == lighttpd ]] && WRK="$SRV"
    [[ -n "$WRK" ]] || die "$1: no worker process"
}
stop() {
    local p keep=()
    kill -TERM -- "-$SRV" 2>/dev/null
    wait "$SRV" 2>/dev/null
    for p in "${PIDS[@]}"; do [[ "$p" == "$SRV" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
load() { # server mode
    local r=""
    [[ "$2" == resumed ]] && r=-r
    "$W/tlsconn" -p "$(port_of "$1")" -u /1k.bin -c 1 -n "$N" -d 3600 $r | head -1
}

SERVERS=(portico)
((NGINX)) && SERVERS+=(nginx)
if ((KA)); then
    ((LIGHTTPD)) && SERVERS+=(lighttpd)
    ka_wrk() { # server seconds -> responses
        wrk -t1 -c1 -d"$2" "https://127.0.0.1:$(port_of "$1")/100k.bin" | awk '/requests in/ { print $1 }'
    }
    echo "# per response: GET /100k.bin over one TLS keep-alive connection (wrk -t1 -c1, ${KA_S}s)"
    echo "## CPU time of the worker (utime+stime)"
    for s in "${SERVERS[@]}"; do
        start "$s"
        a="$(awk '{ print $14 + $15 }' "/proc/$WRK/stat")"
        n="$(ka_wrk "$s" "$KA_S")"
        b="$(awk '{ print $14 + $15 }' "/proc/$WRK/stat")"
        stop
        awk -v n="$n" -v t="$((b - a))" -v hz="$(getconf CLK_TCK)" -v who="$s" \
            'BEGIN { printf "%-10s %6.1f us per response (%d responses)\n", who, t * 1e6 / hz / n, n }'
    done
    if ((ST)); then
        echo "## system calls of the worker (strace -c)"
        for s in "${SERVERS[@]}"; do
            start "$s"
            strace -c -f -p "$WRK" -o "$W/st" 2>/dev/null &
            sp=$!
            sleep 1
            n="$(ka_wrk "$s" "$KA_S")"
            sleep 0.5
            kill -INT "$sp"; wait "$sp" 2>/dev/null
            stop
            awk -v n="$n" -v who="$s" '
                $1 ~ /^[0-9.]+$/ && $NF != "total" { c[$NF] = $4; if (NF == 6) e[$NF] = $5; t += $4 }
                END { printf "%-10s %6.2f:", who, t / n
                      for (k in c) if (c[k] / n >= 0.01) printf " %s=%.2f%s", k, c[k] / n, (k in e) ? "(" sprintf("%.2f", e[k] / n) " failed)" : ""
                      printf "\n" }' "$W/st"
        done
    fi
    if ((CG)); then
        echo "## instructions of the worker (callgrind), by object"
        for s in "${SERVERS[@]}"; do
            start "$s" valgrind --tool=callgrind --instr-atstart=no --trace-children=yes \
                --callgrind-out-file="$W/cg.%p"
            callgrind_control -i on "$WRK" >/dev/null 2>&1
            n="$(ka_wrk "$s" "$KA_S")"
            callgrind_control -i off "$WRK" >/dev/null 2>&1
            stop
            f="$(ls -S "$W"/cg."$WRK"* 2>/dev/null | head -1)"
            [[ -n "$f" && -n "$n" ]] || { echo "$s: no callgrind output"; continue; }
            callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null >"$W/annot"
            awk -v n="$n" -v who="$s" '
                /PROGRAM TOTALS/ { t = $1; gsub(",", "", t) }
                /\[.*\]$/ { ir = $1; gsub(",", "", ir); if (ir !~ /^[0-9]+$/) next
                            o = $NF; gsub(/[][]/, "", o); sub(/.*\//, "", o); b[o] += ir }
                END { printf "%-10s %9d Ir:", who, t / n
                      for (k in b) if (b[k] / n >= 1000) printf " %s=%d", k, b[k] / n
                      printf "\n" }' "$W/annot"
            rm -f "$W"/cg.*
        done
    fi
    exit 0
fi
echo "# per connection: $N connections one at a time, GET /1k.bin, Connection: close"
if ((ST)); then
    echo "## system calls of the worker (strace -c)"
    for s in "${SERVERS[@]}"; do
        for m in full resumed; do
            start "$s"
            strace -c -p "$WRK" -o "$W/st" 2>/dev/null &
            sp=$!
            sleep 1
            res="$(load "$s" "$m")"
            sleep 0.5
            kill -INT "$sp"; wait "$sp" 2>/dev/null
            stop
            awk -v n="$N" -v who="$s $m" '
                $1 ~ /^[0-9.]+$/ && $NF != "total" { c[$NF] = $4; if (NF == 6) e[$NF] = $5; t += $4 }
                END { printf "%-16s %6.2f:", who, t / n
                      for (k in c) printf " %s=%.2f%s", k, c[k] / n, (k in e) ? "(" sprintf("%.2f", e[k] / n) " failed)" : ""
                      printf "\n" }' "$W/st"
            grep -q ' 0 resumed' <<<"$res" && [[ "$m" == resumed ]] && echo "  (no handshake resumed: $res)"
        done
    done
fi
if ((CG)); then
    echo "## instructions of the worker (callgrind), by object"
    for s in "${SERVERS[@]}"; do
        for m in full resumed; do
            start "$s" valgrind --tool=callgrind --instr-atstart=no --trace-children=yes \
                --callgrind-out-file="$W/cg.%p"
            # valgrind's master: its first child is the worker
            callgrind_control -i on "$WRK" >/dev/null 2>&1
            load "$s" "$m" >/dev/null
            callgrind_control -i off "$WRK" >/dev/null 2>&1
            stop
            f="$(ls -S "$W"/cg."$WRK"* 2>/dev/null | head -1)"
            [[ -n "$f" ]] || { echo "$s $m: no callgrind output"; continue; }
            callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null >"$W/annot"
            awk -v n="$N" -v who="$s $m" '
                /PROGRAM TOTALS/ { t = $1; gsub(",", "", t) }
                /\[.*\]$/ { ir = $1; gsub(",", "", ir); if (ir !~ /^[0-9]+$/) next
                            o = $NF; gsub(/[][]/, "", o); sub(/.*\//, "", o); b[o] += ir }
                END { printf "%-16s %9d Ir:", who, t / n
                      for (k in b) if (b[k] / n >= 1000) printf " %s=%d", k, b[k] / n
                      printf "\n" }' "$W/annot"
            rm -f "$W"/cg.*
        done
    done
fi
