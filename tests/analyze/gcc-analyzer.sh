#!/bin/sh
# gcc -fanalyzer over src/*.c for `make analyze-gcc`. Its findings, counted
# per file, function and warning (line numbers move with every edit), are
# compared with gcc-analyzer.expected: the false positives accepted so far,
# each explained in README. Ends with one PASS:/FAIL: analyze-gcc line.
# Usage: gcc-analyzer.sh SRCDIR COMPILE-COMMAND...
set -u
srcdir=$1
shift
work=$(mktemp -d "${TMPDIR:-/tmp}/portico-analyzer.XXXXXX") || exit 1
for f in "$srcdir"/src/*.c; do
    if ! LC_ALL=C "$@" -c -o /dev/null "$f" 2>>"$work/log"; then
        tail -n 20 "$work/log"
        echo "FAIL: analyze-gcc (cannot compile $f with -fanalyzer; log: $work/log)"
        exit 1
    fi
done
# "../src/x.c: In function 'f':" names the function of the warnings after it
awk '/: In function / { fn = $0; sub(/.*: In function ./, "", fn); sub(/.:$/, "", fn) }
     /: warning: .*\[-Wanalyzer-[a-z-]*\]$/ {
         file = $1; sub(/:.*/, "", file); sub(/.*\/src\//, "src/", file)
         print file, fn, $NF }' "$work/log" | sort | uniq -c |
    awk '{ print $1, $2, $3, $4 }' >"$work/found"
grep -v -e '^#' -e '^$' "$srcdir/tests/analyze/gcc-analyzer.expected" >"$work/expected"
total=$(awk '{ n += $1 } END { print n + 0 }' "$work/found")
if diff -u "$work/expected" "$work/found" >"$work/diff"; then
    echo "PASS: analyze-gcc ($total findings, all accepted in tests/analyze/gcc-analyzer.expected)"
    rm -rf "$work"
    exit 0
fi
cat "$work/diff"
echo "FAIL: analyze-gcc (findings differ from tests/analyze/gcc-analyzer.expected, +new -gone;"
echo "      the full report: $work/log)"
exit 1
