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
#   FLOOR=fwd PAIRS=12 ../bench/pairs.sh proxy nginx   # and the floor in each
#
# Prints each pair (req/s and µs CPU per request of both, user space and
# kernel apart, and the ratios), then the medians. The environment goes
# through to the bench script (PORTICO, DURATION, SIZES, CONNS).
set -euo pipefail
BENCH="${1:-proxy}"
PEER="${2:-nginx}"
PAIRS="${PAIRS:-10}"
FLOOR="${FLOOR:-}"
export DURATION="${DURATION:-3}" SIZES="${SIZES:-1k}"
here="$(cd "$(dirname "$0")" && pwd)"
[[ "$BENCH" == proxy ]] || { echo "pairs.sh: only proxy, not $BENCH" >&2; exit 2; }
script="$here/proxy.sh"
one() { # front -> "req/s us user kernel" of its line
    PROXIES="$1" "$script" 2>/dev/null | awk -v f="$1" '$1 == f {
        for (i = 2; i <= NF; i++) {
            if ($i == "req/s") r = $(i-1); if ($i == "us") u = $(i-1)
            if ($i == "(user") us = $(i+1); if ($i == "kernel") k = $(i+1)
        }
        sub(/,/, "", us); sub(/\)/, "", k); print r, u, us, k; exit }'
}
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= PAIRS; i++)); do
    f="- - - -"
    if ((i % 2)); then
        a="$(one portico)"; b="$(one "$PEER")"; [[ -z "$FLOOR" ]] || f="$(one "$FLOOR")"
    else
        [[ -z "$FLOOR" ]] || f="$(one "$FLOOR")"; b="$(one "$PEER")"; a="$(one portico)"
    fi
    [[ -n "$a" && -n "$b" && -n "$f" ]] || { echo "pairs.sh: pair $i gave no result (is $script runnable?)" >&2; exit 1; }
    echo "$i $a $b $f" | tee -a "$out" | awk -v p="$PEER" -v fl="$FLOOR" '{
        printf "pair %d: portico %s req/s %s us (user %s, kernel %s); %s %s req/s %s us (user %s, kernel %s); rate %.2fx, CPU %.2fx", $1, $2, $3, $4, $5, p, $6, $7, $8, $9, $2/$6, $3/$7
        if (fl != "") printf "; %s %s us (user %s, kernel %s), %.2fx %s", fl, $11, $12, $13, $11/$7, p
        printf "\n" }'
done
awk -v p="$PEER" -v fl="$FLOOR" '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
{ n++; r[n] = $2 / $6; c[n] = $3 / $7; pu[n] = $4; pk[n] = $5; qu[n] = $8; qk[n] = $9
  if (fl != "") { fc[n] = $11 / $7; fu[n] = $12; fk[n] = $13 } }
END { printf "%d pairs against %s: median rate %.3fx, median CPU per request %.3fx\n", n, p, med(r, n), med(c, n)
    printf "medians, us per request: portico user %.2f, kernel %.2f; %s user %.2f, kernel %.2f\n",
        med(pu, n), med(pk, n), p, med(qu, n), med(qk, n)
    if (fl != "")
        printf "the floor, %s: median CPU per request %.3fx %s'"'"'s; user %.2f, kernel %.2f us\n",
            fl, med(fc, n), p, med(fu, n), med(fk, n) }' "$out"
