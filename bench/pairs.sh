#!/bin/bash
# bench/pairs.sh: interleaved A/B runs of proxy.sh, portico against one
# peer, and the medians of their ratios (uwsgi.sh already runs its two
# fronts back to back in every run). On a shared or noisy
# machine one run says little (the same binaries have given 0.77x and
# 1.16x in two runs a minute apart); pairs run back to back, the order
# swapped in every other pair, share the machine's state, and the median
# of many pair ratios is what the README's tables report.
#
#   cd build && PAIRS=12 ../bench/pairs.sh proxy nginx    # SIZES=1k DURATION=3
#   PAIRS=6 ../bench/pairs.sh proxy lighttpd
#
# Prints each pair (req/s and µs CPU per request of both, and the ratios),
# then the medians. The environment goes through to the bench script
# (PORTICO, DURATION, SIZES, CONNS).
set -euo pipefail
BENCH="${1:-proxy}"
PEER="${2:-nginx}"
PAIRS="${PAIRS:-10}"
export DURATION="${DURATION:-3}" SIZES="${SIZES:-1k}"
here="$(cd "$(dirname "$0")" && pwd)"
[[ "$BENCH" == proxy ]] || { echo "pairs.sh: only proxy, not $BENCH" >&2; exit 2; }
script="$here/proxy.sh"
one() { # front -> "req/s us" of its line
    PROXIES="$1" "$script" 2>/dev/null | awk -v f="$1" '$1 == f {
        for (i = 2; i <= NF; i++) { if ($i == "req/s") r = $(i-1); if ($i == "us") u = $(i-1) }
        print r, u; exit }'
}
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= PAIRS; i++)); do
    if ((i % 2)); then a="$(one portico)"; b="$(one "$PEER")"; else b="$(one "$PEER")"; a="$(one portico)"; fi
    [[ -n "$a" && -n "$b" ]] || { echo "pairs.sh: pair $i gave no result (is $script runnable?)" >&2; exit 1; }
    echo "$i $a $b" | tee -a "$out" | awk -v p="$PEER" '{printf "pair %d: portico %s req/s %s us; %s %s req/s %s us; rate %.2fx, CPU %.2fx\n", $1, $2, $3, p, $4, $5, $2/$4, $3/$5}'
done
awk -v p="$PEER" '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ n++; r[n] = $2 / $4; c[n] = $3 / $5 }
END { printf "%d pairs against %s: median rate %.3fx, median CPU per request %.3fx\n", n, p, med(r, n), med(c, n) }' "$out"
