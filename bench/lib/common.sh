# bench/lib/common.sh: what the side-by-side scripts (gzip.sh, cache.sh,
# proxy.sh, uwsgi.sh, auth.sh) share. Sourced with BENCH set to the
# script's name; bench_begin then makes the temp directory that is removed,
# with every server start started, when the script exits.

die() { echo "$BENCH: $*" >&2; exit 1; }

bench_begin() {
    tmp="$(mktemp -d "/tmp/portico-${BENCH%.sh}-bench.XXXXXX")"
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
    sleep 0.3
    rm -rf "$tmp"
}

# start NAME CPU READY COMMAND...: COMMAND in a session of its own on CPU,
# its output in $tmp/NAME.log; READY is a URL it must answer, or
# unix:PATH, a socket it must create, within 10 s
start() {
    local name="$1" cpu="$2" ready="$3"
    shift 3
    setsid taskset -c "$cpu" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        if [[ "$ready" == unix:* ]]; then
            [[ -S "${ready#unix:}" ]] && return 0
        else
            curl -s -o /dev/null "$ready" && return 0
        fi
        sleep 0.1
    done
    cat "$tmp/$name.log" >&2
    die "$name did not start"
}

# tree_ticks_split SID: "utime stime" of every process in session SID, in
# clock ticks (user space; the kernel, softirq work done in the process's
# context included)
tree_ticks_split() {
    local sid="$1" u=0 k=0 f s rest
    for f in /proc/[0-9]*/stat; do
        s="$(cat "$f" 2>/dev/null)" || continue
        rest="${s##*) }"
        # shellcheck disable=SC2206
        local a=($rest)
        [[ "${a[3]}" == "$sid" ]] || continue
        u=$((u + a[11]))
        k=$((k + a[12]))
    done
    echo "$u $k"
}

# tree_ticks SID: utime + stime of every process in session SID, in clock ticks
tree_ticks() {
    local t
    read -r -a t <<<"$(tree_ticks_split "$1")"
    echo $((t[0] + t[1]))
}
