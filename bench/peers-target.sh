#!/bin/sh
# peers-target.sh: run portico under the side-by-side benchmark harness
# (peers.sh --target portico --cmd 'exec bench/peers-target.sh'), with the
# settings every peer gets there: the worker count, keep-alive timeout and
# request count, room for the idle-connection test, no access log; HTTP/2
# on the TLS port when the run has h2 scenarios (BENCH_HTTP2), and then the
# h2 runs' keep-alive request count (h2load does not reconnect after the
# GOAWAY that ends a connection's streams; portico has one count for all
# its listeners, so run h2 scenarios apart from the HTTP/1.1 ones).
# PORTICO picks the binary (default: ./src/portico of the current build
# directory); PORTICO_ARGS adds flags, e.g. -o open_file_cache.max=0.
: "${BENCH_PORT:?run me from peers.sh}"
requests="$BENCH_KEEPALIVE_REQUESTS"
[ -n "${BENCH_HTTP2:-}" ] && requests="${BENCH_H2_CONN_REQUESTS:-$requests}"
exec "${PORTICO:-./src/portico}" -D -w "$BENCH_WORKERS" -l "$BENCH_HOST:$BENCH_PORT" \
    -r "$BENCH_DOCROOT" \
    -o limits.keepalive_timeout="${BENCH_KEEPALIVE_TIMEOUT}s" \
    -o limits.keepalive_requests="$requests" \
    -o limits.max_connections="$BENCH_MAX_CONNS" \
    -o log_level=warn \
    --fastcgi ".php=unix:$BENCH_FPM_SOCKET" \
    --cgi "$BENCH_CGI_PREFIX=$BENCH_CGI_DIR" \
    ${BENCH_TLS_PORT:+--tls "$BENCH_HOST:$BENCH_TLS_PORT" --cert "$BENCH_TLS_CERT" --key "$BENCH_TLS_KEY"} \
    ${BENCH_HTTP2:+-o http2=true} \
    ${PORTICO_ARGS:-}
