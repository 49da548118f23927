#include "first.h"
#include "precond.h"
#include "tap.h"

/* test_precond.c: ETag minting, entity-tag list matching, each step of the
 * RFC 9110 §13.2.2 evaluation order and the precedence between the steps,
 * and If-Range (§13.1.5). */

#include <stdio.h>
#include <string.h>

#define LM ((time_t)784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */
#define D_LM "Sun, 06 Nov 1994 08:49:37 GMT"
#define D_BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define D_AFTER "Sun, 06 Nov 1994 08:49:38 GMT"
#define ETAG "\"abc\""

static pt_str S(const char *s)
{
    return (pt_str){s, s ? strlen(s) : 0};
}

/* A request with the given headers (NULL = absent) against ETAG / LM. */
static int eval(bool get, const char *im, const char *inm, const char *ims, const char *ius)
{
    pt_precond p = {
        .if_match = S(im),
        .if_none_match = S(inm),
        .if_modified_since = S(ims),
        .if_unmodified_since = S(ius),
        .is_get_or_head = get,
        .etag = ETAG,
        .etag_len = strlen(ETAG),
        .last_modified = LM,
    };
    return pt_precond_eval(&p);
}

static int eval_tag(const char *cur, bool get, const char *im, const char *inm)
{
    pt_precond p = {
        .if_match = S(im),
        .if_none_match = S(inm),
        .is_get_or_head = get,
        .etag = cur,
        .etag_len = cur ? strlen(cur) : 0,
        .last_modified = LM,
    };
    return pt_precond_eval(&p);
}

static bool etag_chars_ok(const char *e, size_t n)
{
    if (n < 2 || e[0] != '"' || e[n - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c < 0x21 || c == '"' || c == 0x7f)
            return false;
    }
    return true;
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* a quoted strong tag of 11 base64url digits, its NUL after it */
static bool etag_shape_ok(const char *e, size_t n)
{
    if (n != PT_ETAG_LEN || e[n] != '\0' || !etag_chars_ok(e, n))
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_b64url(e[i]))
            return false;
    return true;
}

/* Does the tag show x's lower-case hex digits? */
static bool shows_hex(const char *e, uint64_t x)
{
    char h[24];
    snprintf(h, sizeof(h), "%llx", (unsigned long long)x);
    return strstr(e, h) != NULL;
}

static void test_etag_make(void)
{
    char a[PT_ETAG_MAX], b[PT_ETAG_MAX];
    size_t n = pt_etag_make(0x8e1f, 0x400, (time_t)0x5f3c2a1b, 0x1a2b3c, a);
    ok(etag_shape_ok(a, n), "ETag is 11 base64url digits, quoted (%zu bytes)", n);
    ok(etag_chars_ok(a, n), "ETag is a quoted strong opaque-tag");
    /* no seed: two workers, or a restart, give a file the same tag */
    ok_mem(a, n, "\"3SG2mFzdMV8\"", "ETag of known inputs is the same in every process");
    ok(!shows_hex(a, 0x8e1f) && !shows_hex(a, 0x5f3c2a1b),
       "ETag shows neither the inode nor the mtime (CVE-2003-1418)");

    n = pt_etag_make(0, 0, 0, 0, a);
    ok(etag_shape_ok(a, n), "all-zero inputs");

    pt_etag_make(1, 2, 3, 4, a);
    pt_etag_make(1, 2, 3, 4, b);
    ok(strcmp(a, b) == 0, "same inputs give the same ETag");
    pt_etag_make(2, 2, 3, 4, b);
    ok(strcmp(a, b) != 0, "inode change changes the ETag");
    pt_etag_make(1, 3, 3, 4, b);
    ok(strcmp(a, b) != 0, "size change changes the ETag");
    pt_etag_make(1, 2, 4, 4, b);
    ok(strcmp(a, b) != 0, "mtime seconds change changes the ETag");
    pt_etag_make(1, 2, 3, 5, b);
    ok(strcmp(a, b) != 0, "mtime nanoseconds change changes the ETag");

    n = pt_etag_make(UINT64_MAX, UINT64_MAX, (time_t)-1, 999999999, a);
    ok(etag_shape_ok(a, n), "extreme inputs give the same shape");
    pt_etag_make(UINT64_MAX - 1, UINT64_MAX, (time_t)-1, 999999999, b);
    ok(strcmp(a, b) != 0, "huge inodes still change the ETag");
    pt_etag_make(UINT64_MAX, UINT64_MAX, (time_t)-1, 999999998, b);
    ok(strcmp(a, b) != 0, "and nanoseconds do too");

    /* one bit of any field flipped (nanoseconds are below 2^30): no two
     * of these versions and the base share a tag */
    static char seen[1 + 64 * 3 + 30][PT_ETAG_MAX];
    const uint64_t base[4] = {0x1234567ULL, 1024, 1700000000, 123456789};
    const int width[4] = {64, 64, 64, 30};
    int bad = 0, k = 0, same = 0;
    pt_etag_make(base[0], base[1], (time_t)base[2], (long)base[3], seen[k++]);
    for (int f = 0; f < 4; f++) {
        for (int bit = 0; bit < width[f]; bit++) {
            uint64_t v[4] = {base[0], base[1], base[2], base[3]};
            v[f] ^= 1ULL << bit;
            n = pt_etag_make(v[0], v[1], (time_t)v[2], (long)v[3], seen[k]);
            if (!etag_shape_ok(seen[k], n))
                bad++;
            k++;
        }
    }
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            same += strcmp(seen[i], seen[j]) == 0;
    ok(bad == 0, "every tag has the shape");
    ok(same == 0, "a one-bit change of any field changes the tag");

    n = pt_etag_make(0x8e1f, 0x400, (time_t)0x5f3c2a1b, 0x1a2b3c, a);
    pt_precond p = {.if_none_match = {a, n}, .is_get_or_head = true, .etag = a, .etag_len = n};
    ok(pt_precond_eval(&p) == 304, "a minted ETag matches itself in If-None-Match");
}

static void test_no_headers(void)
{
    ok(eval(true, NULL, NULL, NULL, NULL) == 0, "no conditional headers: proceed (GET)");
    ok(eval(false, NULL, NULL, NULL, NULL) == 0, "no conditional headers: proceed (PUT)");
}

static void test_if_match(void)
{
    ok(eval(true, ETAG, NULL, NULL, NULL) == 0, "If-Match: same tag passes");
    ok(eval(true, "\"xyz\"", NULL, NULL, NULL) == 412, "If-Match: other tag fails with 412");
    ok(eval(false, "\"xyz\"", NULL, NULL, NULL) == 412, "If-Match: 412 for non-GET too");
    ok(eval(true, "*", NULL, NULL, NULL) == 0, "If-Match: * passes when the file exists");
    ok(eval(true, " * ", NULL, NULL, NULL) == 0, "If-Match: * with OWS");
    ok(eval(true, "W/" ETAG, NULL, NULL, NULL) == 412, "If-Match: weak tag never matches");
    ok(eval(true, "\"xyz\", " ETAG, NULL, NULL, NULL) == 0, "If-Match: match later in list");
    ok(eval(true, ETAG ", \"xyz\"", NULL, NULL, NULL) == 0, "If-Match: match first in list");
    ok(eval(true, "\"xyz\" ,\t" ETAG, NULL, NULL, NULL) == 0, "If-Match: OWS around comma");
    ok(eval(true, ", ," ETAG ",", NULL, NULL, NULL) == 0, "If-Match: empty list elements");
    ok(eval(true, "W/\"xyz\", W/" ETAG, NULL, NULL, NULL) == 412, "If-Match: only weak tags");
    ok(eval(true, "\"ABC\"", NULL, NULL, NULL) == 412, "If-Match: comparison is case-sensitive");
    ok(eval(true, "\"abc \"", NULL, NULL, NULL) == 412, "If-Match: space in tag is invalid");
    ok(eval(true, "abc", NULL, NULL, NULL) == 412, "If-Match: unquoted tag fails");
    ok(eval(true, "\"abc", NULL, NULL, NULL) == 412, "If-Match: unterminated tag fails");
    ok(eval(true, ETAG " " ETAG, NULL, NULL, NULL) == 412, "If-Match: missing comma fails");
    ok(eval(true, "w/" ETAG, NULL, NULL, NULL) == 412, "If-Match: lower-case w/ is invalid");
    ok(eval(true, "*, " ETAG, NULL, NULL, NULL) == 412, "If-Match: * inside a list is invalid");
    ok(eval(true, "", NULL, NULL, NULL) == 412, "If-Match: empty value fails");
    ok(eval(true, " , ", NULL, NULL, NULL) == 412, "If-Match: list with no members fails");
    ok(eval(true, ETAG ", junk", NULL, NULL, NULL) == 412,
       "If-Match: match followed by garbage fails");
    ok(eval_tag("W/" ETAG, true, "W/" ETAG, NULL) == 412,
       "If-Match: weak current tag never matches (strong comparison)");
    ok(eval_tag("W/" ETAG, true, ETAG, NULL) == 412,
       "If-Match: strong request tag vs weak current tag fails");
    ok(eval_tag("W/" ETAG, true, "*", NULL) == 0, "If-Match: * passes with a weak current tag");
    ok(eval_tag(NULL, true, ETAG, NULL) == 412, "If-Match: no current ETag, tag fails");
    ok(eval_tag(NULL, true, "*", NULL) == 0, "If-Match: no current ETag, * passes");
    ok(eval_tag("\"a\\\"b\"", true, "\"a\\\"b\"", NULL) == 412,
       "If-Match: a quote ends the tag; no escaping (\"a\\\" then junk)");
    ok(eval_tag("\"\x80\xff\"", true, "\"\x80\xff\"", NULL) == 0,
       "If-Match: obs-text bytes allowed in tags");
    ok(eval_tag("\"\"", true, "\"\"", NULL) == 0, "If-Match: empty opaque-tag matches itself");
}

static void test_if_unmodified_since(void)
{
    ok(eval(false, NULL, NULL, NULL, D_LM) == 0, "IUS equal to Last-Modified passes");
    ok(eval(false, NULL, NULL, NULL, D_AFTER) == 0, "IUS after Last-Modified passes");
    ok(eval(false, NULL, NULL, NULL, D_BEFORE) == 412, "IUS before Last-Modified: 412");
    ok(eval(true, NULL, NULL, NULL, D_BEFORE) == 412, "IUS before Last-Modified: 412 on GET");
    ok(eval(false, NULL, NULL, NULL, "Sunday, 06-Nov-94 08:49:36 GMT") == 412,
       "IUS in RFC 850 format");
    ok(eval(false, NULL, NULL, NULL, "Sun Nov  6 08:49:36 1994") == 412, "IUS in asctime format");
    ok(eval(false, NULL, NULL, NULL, "yesterday") == 0, "IUS invalid date is ignored");
    ok(eval(false, NULL, NULL, NULL, D_BEFORE " ") == 0, "IUS with junk after is ignored");
    ok(eval(false, NULL, NULL, NULL, "") == 0, "IUS empty is ignored");
    ok(eval(false, ETAG, NULL, NULL, D_BEFORE) == 0,
       "IUS ignored when If-Match is present (and passes)");
    ok(eval(false, "*", NULL, NULL, D_BEFORE) == 0, "IUS ignored when If-Match is *");
    ok(eval(false, "\"xyz\"", NULL, NULL, D_AFTER) == 412,
       "failing If-Match is not rescued by a passing IUS");
}

static void test_if_none_match(void)
{
    ok(eval(true, NULL, ETAG, NULL, NULL) == 304, "INM: same tag on GET is 304");
    ok(eval(false, NULL, ETAG, NULL, NULL) == 412, "INM: same tag on other methods is 412");
    ok(eval(true, NULL, "W/" ETAG, NULL, NULL) == 304, "INM: weak comparison matches W/ tag");
    ok(eval_tag("W/" ETAG, true, NULL, ETAG) == 304, "INM: weak current tag matches too");
    ok(eval_tag("W/" ETAG, true, NULL, "W/" ETAG) == 304, "INM: weak vs weak matches");
    ok(eval(true, NULL, "*", NULL, NULL) == 304, "INM: * on GET is 304");
    ok(eval(false, NULL, "*", NULL, NULL) == 412, "INM: * on PUT is 412");
    ok(eval(true, NULL, "\"xyz\"", NULL, NULL) == 0, "INM: other tag proceeds");
    ok(eval(true, NULL, "\"xyz\", W/\"q\",\t" ETAG, NULL, NULL) == 304, "INM: match in list");
    ok(eval(true, NULL, ",," ETAG, NULL, NULL) == 304, "INM: empty list elements");
    ok(eval(true, NULL, "\"ABC\"", NULL, NULL) == 0, "INM: comparison is case-sensitive");
    ok(eval(true, NULL, "abc", NULL, NULL) == 0, "INM: unquoted tag is ignored (proceed)");
    ok(eval(true, NULL, ETAG ", junk", NULL, NULL) == 0,
       "INM: malformed list is ignored even with a match in it");
    ok(eval(true, NULL, "", NULL, NULL) == 0, "INM: empty value proceeds");
    ok(eval_tag(NULL, true, NULL, ETAG) == 0, "INM: no current ETag, tag does not match");
    ok(eval_tag(NULL, true, NULL, "*") == 304, "INM: no current ETag, * still matches");
}

static void test_if_modified_since(void)
{
    ok(eval(true, NULL, NULL, D_LM, NULL) == 304, "IMS equal to Last-Modified: 304");
    ok(eval(true, NULL, NULL, D_AFTER, NULL) == 304, "IMS after Last-Modified: 304");
    ok(eval(true, NULL, NULL, "Sun, 06 Nov 2095 08:49:37 GMT", NULL) == 304,
       "IMS far in the future is just compared: 304");
    ok(eval(true, NULL, NULL, D_BEFORE, NULL) == 0, "IMS before Last-Modified: proceed");
    ok(eval(false, NULL, NULL, D_LM, NULL) == 0, "IMS ignored for non-GET/HEAD");
    ok(eval(true, NULL, NULL, "not a date", NULL) == 0, "IMS invalid date ignored");
    ok(eval(true, NULL, NULL, D_LM ", " D_LM, NULL) == 0, "IMS with two members ignored");
    ok(eval(true, NULL, NULL, "Sunday, 06-Nov-94 08:49:37 GMT", NULL) == 304,
       "IMS in RFC 850 format");
    ok(eval(true, NULL, NULL, "Sun Nov  6 08:49:37 1994", NULL) == 304, "IMS in asctime format");
    ok(eval(true, NULL, "\"xyz\"", D_LM, NULL) == 0,
       "IMS ignored when If-None-Match is present (non-matching INM wins)");
    ok(eval(true, NULL, "abc", D_LM, NULL) == 0, "IMS ignored even when INM is malformed");
    ok(eval(true, NULL, ETAG, D_BEFORE, NULL) == 304,
       "matching INM gives 304 even if IMS says modified");
}

static void test_precedence(void)
{
    ok(eval(true, "\"xyz\"", ETAG, NULL, NULL) == 412, "If-Match failure beats INM 304");
    ok(eval(true, "\"xyz\"", NULL, D_LM, NULL) == 412, "If-Match failure beats IMS 304");
    ok(eval(true, NULL, ETAG, NULL, D_BEFORE) == 412, "IUS failure beats INM 304");
    ok(eval(true, NULL, NULL, D_LM, D_BEFORE) == 412, "IUS failure beats IMS 304");
    ok(eval(true, ETAG, ETAG, NULL, NULL) == 304, "If-Match passes, then INM gives 304");
    ok(eval(false, ETAG, ETAG, NULL, NULL) == 412, "If-Match passes, then INM gives 412 on PUT");
    ok(eval(true, ETAG, NULL, D_LM, NULL) == 304, "If-Match passes, then IMS gives 304");
    ok(eval(true, NULL, NULL, D_LM, D_AFTER) == 304, "IUS passes, then IMS gives 304");
    ok(eval(true, ETAG, "\"xyz\"", D_LM, D_BEFORE) == 0,
       "If-Match passes (IUS skipped), INM passes (IMS skipped): proceed");
    ok(eval(true, "*", "*", NULL, NULL) == 304, "If-Match * passes, INM * gives 304");
    ok(eval(false, "*", "*", NULL, NULL) == 412, "If-Match * passes, INM * gives 412 on PUT");
    ok(eval(true, "\"xyz\"", "\"xyz\"", D_BEFORE, D_AFTER) == 412,
       "all four present: If-Match decides first");
}

static bool if_range(const char *v, const char *etag)
{
    return pt_if_range_ok(v, strlen(v), etag, etag ? strlen(etag) : 0, LM);
}

static void test_if_range(void)
{
    ok(if_range(ETAG, ETAG), "If-Range: same strong tag honours Range");
    ok(!if_range("\"xyz\"", ETAG), "If-Range: other tag sends the whole file");
    ok(!if_range("W/" ETAG, ETAG), "If-Range: weak tag never matches");
    ok(!if_range("W/" ETAG, "W/" ETAG), "If-Range: weak current tag never matches");
    ok(!if_range(ETAG, "W/" ETAG), "If-Range: strong request vs weak current tag fails");
    ok(!if_range("\"ABC\"", ETAG), "If-Range: tag comparison is exact");
    ok(!if_range(ETAG " ", ETAG), "If-Range: trailing junk after the tag fails");
    ok(!if_range(ETAG ", " ETAG, ETAG), "If-Range: a list is not allowed");
    ok(!if_range(ETAG, NULL), "If-Range: tag without a current ETag fails");
    ok(if_range(D_LM, ETAG), "If-Range: date equal to Last-Modified honours Range");
    ok(if_range("Sunday, 06-Nov-94 08:49:37 GMT", ETAG), "If-Range: RFC 850 date equal");
    ok(!if_range(D_BEFORE, ETAG), "If-Range: earlier date fails");
    ok(!if_range(D_AFTER, ETAG), "If-Range: later date fails (must be exact)");
    ok(if_range(D_LM, NULL), "If-Range: date works without an ETag");
    ok(!if_range("garbage", ETAG), "If-Range: garbage fails");
    ok(!if_range("", ETAG), "If-Range: empty fails");
    ok(!pt_if_range_ok(NULL, 0, ETAG, strlen(ETAG), LM), "If-Range: NULL fails");
    ok(pt_if_range_ok(ETAG "x", 5, ETAG "y", 5, LM), "If-Range: lengths bound both tags");
}

int main(void)
{
    test_etag_make();
    test_no_headers();
    test_if_match();
    test_if_unmodified_since();
    test_if_none_match();
    test_if_modified_since();
    test_precedence();
    test_if_range();
    return tap_done();
}
