#include "first.h"
#include "range.h"
#include "tap.h"

/* test_range.c: Range header parsing (RFC 9110 §14.1.1, §14.2): forms,
 * list syntax, satisfiability, clipping, sorting and coalescing, caps. */

#include <string.h>

#define MAXR 8

static pt_range r[MAXR + 1];

static int parse(const char *v, uint64_t size)
{
    memset(r, 0xa5, sizeof(r));
    return pt_range_parse(v, strlen(v), size, r, MAXR);
}

static int parse_max(const char *v, uint64_t size, int max)
{
    memset(r, 0xa5, sizeof(r));
    return pt_range_parse(v, strlen(v), size, r, max);
}

static bool is1(int n, uint64_t s, uint64_t e)
{
    return n == 1 && r[0].start == s && r[0].end == e;
}

static bool at(int i, uint64_t s, uint64_t e)
{
    return r[i].start == s && r[i].end == e;
}

static void test_forms(void)
{
    ok(is1(parse("bytes=0-499", 10000), 0, 499), "first-last: first 500 bytes");
    ok(is1(parse("bytes=500-999", 10000), 500, 999), "first-last: second 500 bytes");
    ok(is1(parse("bytes=5-5", 10000), 5, 5), "first-last with first == last is one byte");
    ok(is1(parse("bytes=-500", 10000), 9500, 9999), "suffix: last 500 bytes");
    ok(is1(parse("bytes=9500-", 10000), 9500, 9999), "first-: from 9500 to the end");
    ok(is1(parse("bytes=0-", 10000), 0, 9999), "first-: the whole representation");
    ok(is1(parse("bytes=0-0", 1), 0, 0), "one-byte representation, first byte");
    ok(is1(parse("bytes=-1", 1), 0, 0), "suffix 1 of a one-byte representation");
    ok(is1(parse("bytes=9999-9999", 10000), 9999, 9999), "the very last byte");
    ok(is1(parse("bytes=0-99999", 10000), 0, 9999), "last-pos beyond the end is clipped");
    ok(is1(parse("bytes=9000-10000", 10000), 9000, 9999), "last-pos == size is clipped");
    ok(is1(parse("bytes=-20000", 10000), 0, 9999), "suffix longer than size: whole");
    ok(is1(parse("bytes=-10000", 10000), 0, 9999), "suffix equal to size: whole");
    ok(is1(parse("bytes=007-010", 10000), 7, 10), "leading zeros are digits");
}

static void test_unit(void)
{
    ok(is1(parse("Bytes=0-1", 100), 0, 1), "unit is case-insensitive (Bytes)");
    ok(is1(parse("BYTES=0-1", 100), 0, 1), "unit is case-insensitive (BYTES)");
    ok(parse("bits=0-1", 100) == 0, "other unit: ignore");
    ok(parse("items=0-1", 100) == 0, "unknown unit: ignore");
    ok(parse("bytes 0-1", 100) == 0, "missing '=': ignore");
    ok(parse("bytes =0-1", 100) == 0, "space before '=': ignore");
    ok(parse("bytes0-1", 100) == 0, "no separator: ignore");
    ok(parse("byte=0-1", 100) == 0, "'byte' is not 'bytes'");
    ok(parse("", 100) == 0, "empty value: ignore");
    ok(parse("bytes", 100) == 0, "unit alone: ignore");
    ok(pt_range_parse(NULL, 0, 100, r, MAXR) == 0, "NULL value: ignore");
    ok(pt_range_parse("bytes=0-1", 8, 100, r, MAXR) == 1 && at(0, 0, 99),
       "len bounds the value (\"bytes=0-\")");
}

static void test_syntax(void)
{
    ok(parse("bytes=", 100) == 0, "empty range-set: ignore");
    ok(parse("bytes=,", 100) == 0, "only an empty element: ignore");
    ok(parse("bytes= , ,", 100) == 0, "only empty elements: ignore");
    ok(parse("bytes=5-4", 100) == 0, "first > last is invalid: ignore");
    ok(parse("bytes=5-4,0-1", 100) == 0, "an invalid spec first voids the header");
    ok(parse("bytes=0-1,5-4", 100) == 0, "an invalid spec later voids the header");
    ok(parse("bytes=200-,5-4", 100) == 0, "syntax error wins over unsatisfiable");
    ok(parse("bytes=abc", 100) == 0, "letters: ignore");
    ok(parse("bytes=1-2-3", 100) == 0, "two dashes: ignore");
    ok(parse("bytes=--1", 100) == 0, "double-dash suffix: ignore");
    ok(parse("bytes=-", 100) == 0, "lone dash: ignore");
    ok(parse("bytes=1", 100) == 0, "number without dash: ignore");
    ok(parse("bytes=0 -1", 100) == 0, "space inside a spec: ignore");
    ok(parse("bytes=0- 1", 100) == 0, "space after the dash: ignore");
    ok(parse("bytes=- 1", 100) == 0, "space inside a suffix: ignore");
    ok(parse("bytes=0-1;", 100) == 0, "trailing ';': ignore");
    ok(parse("bytes=+1-2", 100) == 0, "plus sign: ignore");
    ok(parse("bytes=-+1", 100) == 0, "plus sign in a suffix: ignore");
    ok(parse("bytes=0x10-", 100) == 0, "hex: ignore");
    ok(parse("bytes=1.5-2", 100) == 0, "decimal point: ignore");
    ok(parse("bytes=0-1 2-3", 100) == 0, "missing comma between specs: ignore");
    ok(parse("bytes=0-1;2-3", 100) == 0, "';' as separator: ignore");
    ok(pt_range_parse("bytes=0-1\0,2-3", 14, 100, r, MAXR) == 0, "embedded NUL: ignore");
}

static void test_lists(void)
{
    int n = parse("bytes=0-0,-1", 10000);
    ok(n == 2 && at(0, 0, 0) && at(1, 9999, 9999), "first and last byte: two ranges");
    n = parse("bytes=1-2, ,5-6", 100);
    ok(n == 2 && at(0, 1, 2) && at(1, 5, 6), "empty list element is allowed");
    n = parse("bytes=,1-2,,5-6,", 100);
    ok(n == 2 && at(0, 1, 2) && at(1, 5, 6), "leading/trailing empty elements are allowed");
    n = parse("bytes= 1-2 ,\t5-6 ", 100);
    ok(n == 2 && at(0, 1, 2) && at(1, 5, 6), "OWS (SP, HTAB) around commas");
    n = parse("bytes=90-99,0-9", 100);
    ok(n == 2 && at(0, 0, 9) && at(1, 90, 99), "ranges are sorted by start");
    n = parse("bytes=50-59,-10,0-9", 100);
    ok(n == 3 && at(0, 0, 9) && at(1, 50, 59) && at(2, 90, 99), "three ranges sorted");
}

static void test_coalesce(void)
{
    ok(is1(parse("bytes=500-600,601-999", 10000), 500, 999), "adjacent ranges coalesce");
    ok(is1(parse("bytes=601-999,500-600", 10000), 500, 999), "adjacent ranges out of order");
    ok(is1(parse("bytes=500-700,601-999", 10000), 500, 999), "overlapping ranges coalesce");
    ok(is1(parse("bytes=0-100,10-20", 10000), 0, 100), "contained range disappears");
    ok(is1(parse("bytes=10-20,0-100", 10000), 0, 100), "containing range later");
    ok(is1(parse("bytes=0-0,1-1,2-2,3-3", 10000), 0, 3), "chain of single bytes coalesces");
    ok(is1(parse("bytes=0-9,0-9,0-9", 100), 0, 9), "duplicates coalesce");
    ok(is1(parse("bytes=-10,90-", 100), 90, 99), "suffix and first- for the same bytes");
    ok(is1(parse("bytes=0-,5-10", 100), 0, 99), "open range swallows the rest");
    int n = parse("bytes=0-1,3-4", 100);
    ok(n == 2 && at(0, 0, 1) && at(1, 3, 4), "a one-byte gap keeps ranges apart");
    n = parse("bytes=0-1,2-3,10-20,15-30,50-", 100);
    ok(n == 3 && at(0, 0, 3) && at(1, 10, 30) && at(2, 50, 99), "mixed coalescing");
    ok(is1(parse("bytes=0-5,3-", 10), 0, 9), "clipped ranges coalesce");
}

static void test_unsatisfiable(void)
{
    ok(parse("bytes=10000-", 10000) == -1, "first == size: unsatisfiable");
    ok(parse("bytes=10000-10005", 10000) == -1, "range beyond the end: unsatisfiable");
    ok(parse("bytes=20000-30000", 10000) == -1, "range far beyond: unsatisfiable");
    ok(parse("bytes=-0", 10000) == -1, "suffix 0: unsatisfiable");
    ok(parse("bytes=-0,20000-", 10000) == -1, "all specs unsatisfiable");
    ok(is1(parse("bytes=-0,0-1", 10000), 0, 1), "unsatisfiable suffix 0 dropped, rest kept");
    ok(is1(parse("bytes=0-1,10000-", 10000), 0, 1), "unsatisfiable spec dropped");
    ok(is1(parse("bytes=20000-,5-9", 10000), 5, 9), "unsatisfiable first, good second");
    ok(parse("bytes=0-", 0) == -1, "size 0: first- unsatisfiable");
    ok(parse("bytes=0-0", 0) == -1, "size 0: first-last unsatisfiable");
    ok(parse("bytes=-5", 0) == -1, "size 0: suffix unsatisfiable");
    ok(parse("bytes=5-4", 0) == 0, "size 0: syntax error still ignored, not 416");
    ok(parse("bytes=", 0) == 0, "size 0: empty set still ignored");
}

static void test_big_numbers(void)
{
    ok(is1(parse("bytes=0-99999999999999999999999", 10000), 0, 9999),
       "last-pos beyond 2^64 is clipped");
    ok(parse("bytes=99999999999999999999-", 10000) == -1, "first-pos beyond 2^64: unsatisfiable");
    ok(is1(parse("bytes=-99999999999999999999", 10000), 0, 9999),
       "suffix beyond 2^64: whole representation");
    ok(parse("bytes=18446744073709551615-18446744073709551615", UINT64_MAX) == -1,
       "first-pos == size == 2^64-1: unsatisfiable");
    ok(is1(parse("bytes=0-", UINT64_MAX), 0, UINT64_MAX - 1), "size 2^64-1: end is size-1");
    ok(is1(parse("bytes=-1", UINT64_MAX), UINT64_MAX - 1, UINT64_MAX - 1), "size 2^64-1: suffix 1");
    int n = parse("bytes=0-0,18446744073709551613-", UINT64_MAX);
    ok(n == 2 && at(1, UINT64_MAX - 2, UINT64_MAX - 1), "coalescing near 2^64 does not wrap");
    ok(parse("bytes=99999999999999999999-99999999999999999998", 10000) == -1,
       "two saturated positions: unsatisfiable, not a crash");
}

static void test_caps(void)
{
    ok(parse_max("bytes=0-1,3-4,6-7", 100, 2) == 0, "more specs than max: ignore");
    ok(parse_max("bytes=0-1,3-4,6-7", 100, 3) == 3, "exactly max specs: honoured");
    ok(parse_max("bytes=0-1,1-2,2-3", 100, 2) == 0, "max counts specs before coalescing");
    ok(parse_max("bytes=0-1,,,,3-4", 100, 2) == 2, "empty elements do not count toward max");
    ok(parse_max("bytes=500-,600-,700-", 100, 2) == 0, "unsatisfiable specs count toward max");
    ok(parse_max("bytes=0-1", 100, 0) == 0, "max 0: ignore");
    ok(pt_range_parse("bytes=0-1", 9, 100, NULL, 0) == 0, "max 0 never touches out");
    ok(parse_max("bytes=0-1", 100, -3) == 0, "negative max: ignore");
    ok(parse_max("bytes=5-6,0-1", 100, 1) == 0, "max 1 with two specs: ignore");
    ok(parse_max("bytes=0-1", 100, 1) == 1 && at(0, 0, 1) && r[1].start == 0xa5a5a5a5a5a5a5a5ULL,
       "max 1 writes one range only");

    char many[4096] = "bytes=";
    for (int i = 0; i < 300; i++) {
        char spec[32];
        snprintf(spec, sizeof(spec), "%s%d-%d", i ? "," : "", i * 2, i * 2);
        strcat(many, spec);
    }
    pt_range big[300];
    ok(pt_range_parse(many, strlen(many), 10000, big, 300) == 300,
       "300 separate single-byte ranges at max 300");
    ok(pt_range_parse(many, strlen(many), 10000, big, 299) == 0, "300 ranges at max 299: ignore");
}

int main(void)
{
    test_forms();
    test_unit();
    test_syntax();
    test_lists();
    test_coalesce();
    test_unsatisfiable();
    test_big_numbers();
    test_caps();
    return tap_done();
}
