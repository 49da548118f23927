#include "first.h"
#include "range.h"

/* range.c: owns the Range header value (RFC 9110 §14.1.1, §14.2): parses the
 * byte range-set against a representation size, drops unsatisfiable specs,
 * then sorts and coalesces what is left. */

#include <stdlib.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1*DIGIT. Values beyond 2^64-1 saturate: they are valid syntax, merely
 * unsatisfiable (first-pos) or clipped (last-pos, suffix-length). */
static size_t parse_pos(const char *s, size_t len, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && is_digit(s[i])) {
        unsigned d = (unsigned)(s[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        i++;
    }
    *out = v;
    return i;
}

static int range_cmp(const void *a, const void *b)
{
    const pt_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

enum { SPEC_SYNTAX = -1, SPEC_UNSAT = 0, SPEC_OK = 1 };

/* One range-spec, without surrounding OWS: int-range or suffix-range. */
static int parse_spec(const char *s, size_t len, uint64_t size, pt_range *r)
{
    uint64_t first, last;
    size_t n = parse_pos(s, len, &first);
    if (n == len || s[n] != '-')
        return SPEC_SYNTAX;
    if (n == 0) {
        /* suffix-range "-N": the last N bytes; N == 0 selects nothing */
        if (len == 1 || parse_pos(s + 1, len - 1, &last) != len - 1)
            return SPEC_SYNTAX;
        if (last == 0 || size == 0)
            return SPEC_UNSAT;
        r->start = last >= size ? 0 : size - last;
        r->end = size - 1;
        return SPEC_OK;
    }
    size_t rest = len - n - 1;
    if (rest == 0) {
        last = UINT64_MAX;
    } else {
        if (parse_pos(s + n + 1, rest, &last) != rest)
            return SPEC_SYNTAX;
        /* §14.1.1: a last-pos below first-pos makes the range-spec invalid */
        if (last < first)
            return SPEC_SYNTAX;
    }
    if (first >= size)
        return SPEC_UNSAT;
    r->start = first;
    r->end = last >= size ? size - 1 : last;
    return SPEC_OK;
}

int pt_range_parse(const char *v, size_t len, uint64_t size, pt_range *out, int max)
{
    static const char unit[] = "bytes=";
    size_t i, specs = 0;
    int n = 0;

    if (!v || max < 1 || len < PT_SLEN(unit))
        return 0;
    for (i = 0; i < PT_SLEN(unit); i++) {
        char c = v[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + ('a' - 'A'));
        if (c != unit[i])
            return 0;
    }

    /* range-set = 1#range-spec; empty list elements are allowed
     * (RFC 9110 §5.6.1.2), but at least one spec must be present. */
    while (i < len) {
        while (i < len && is_ows(v[i]))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && !is_ows(v[i]))
            i++;
        size_t end = i;
        while (i < len && is_ows(v[i]))
            i++;
        if (i < len && v[i] != ',')
            return 0; /* whitespace inside a spec */
        i++;
        if (end == start)
            continue;
        if (++specs > (size_t)max)
            return 0; /* too many: ignore the header rather than do the work */
        pt_range r;
        int rc = parse_spec(v + start, end - start, size, &r);
        if (rc == SPEC_SYNTAX)
            return 0;
        if (rc == SPEC_OK)
            out[n++] = r;
    }
    if (specs == 0)
        return 0;
    if (n == 0)
        return -1;

    /* §14.2 lets the server coalesce: merge overlapping or adjacent ranges
     * so a client cannot make us send the same bytes many times. */
    qsort(out, (size_t)n, sizeof(*out), range_cmp);
    int w = 0;
    for (int k = 1; k < n; k++) {
        if (out[k].start <= out[w].end + 1) {
            if (out[k].end > out[w].end)
                out[w].end = out[k].end;
        } else {
            out[++w] = out[k];
        }
    }
    return w + 1;
}
