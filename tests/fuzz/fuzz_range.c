/* fuzz_range.c: Range and conditional request headers: pt_range_parse,
 * pt_precond_eval, pt_if_range_ok and the HTTP-date parser they use, and
 * the Accept-Encoding weights of precompressed files (pt_accept_q).
 * Input: option byte (representation size, range cap), then header values
 * separated by '\n': Range, If-Range, If-Match, If-None-Match,
 * If-Modified-Since, If-Unmodified-Since, Accept-Encoding. */
#include "fuzz.h"

#include "httpdate.h"
#include "precond.h"
#include "range.h"
#include "util.h"

static const uint64_t size_tab[] = {0, 1, 2, 100, 1000, 1ULL << 31, INT64_MAX, UINT64_MAX};
static const int max_tab[] = {1, 2, 16, 64};

/* a field in its own exact allocation; p == NULL when absent */
static pt_str field(const char **p, const char *end)
{
    pt_str s = {NULL, 0};
    if (*p >= end)
        return s;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = nl ? nl : end;
    s.p = fz_dup(*p, (size_t)(e - *p));
    s.len = (size_t)(e - *p);
    *p = nl ? nl + 1 : end;
    return s;
}

static void check_date(pt_str s)
{
    time_t t;
    if (!s.p || pt_httpdate_parse(s.p, s.len, &t) < 0)
        return;
    /* what parses formats as IMF-fixdate and parses back to the same time */
    if (t >= 0 && t < 253402300800) { /* years 1970..9999 */
        char out[PT_HTTPDATE_LEN + 1];
        time_t back;
        pt_httpdate_format(t, out);
        FZ_CHECK(strlen(out) == PT_HTTPDATE_LEN);
        FZ_CHECK(pt_httpdate_parse(out, PT_HTTPDATE_LEN, &back) == 0 && back == t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    uint64_t rsize = size_tab[opt & 7];
    int max = max_tab[(opt >> 3) & 3];
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    pt_str range = field(&p, end), if_range = field(&p, end), im = field(&p, end),
           inm = field(&p, end), ims = field(&p, end), ius = field(&p, end),
           ae = field(&p, end);

    /* Accept-Encoding: a weight in thousandths or -1; "*" never outweighs
     * a coding's own element */
    if (ae.p) {
        static const char *const codings[] = {"gzip", "br", "identity", "*"};
        for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
            int q = pt_accept_q(ae.p, ae.len, codings[i]);
            FZ_CHECK(q >= -1 && q <= 1000);
        }
    }

    /* Range: satisfiable ranges only, inside [0, size), sorted, coalesced */
    if (range.p) {
        pt_range out[64];
        int n = pt_range_parse(range.p, range.len, rsize, out, max);
        FZ_CHECK(n >= -1 && n <= max);
        if (rsize == 0)
            FZ_CHECK(n <= 0);
        for (int i = 0; i < n; i++) {
            FZ_CHECK(out[i].start <= out[i].end && out[i].end < rsize);
            if (i > 0)
                FZ_CHECK(out[i].start > out[i - 1].end + 1);
        }
    }

    char etag[PT_ETAG_MAX];
    size_t etag_len = pt_etag_make(1234567, rsize, 784111777, 123456789, etag);
    FZ_CHECK(etag_len > 2 && etag_len < PT_ETAG_MAX && etag[0] == '"' && etag[etag_len - 1] == '"');
    time_t lm = (opt & 0x20) ? 784111777 : 0;

    if (if_range.p) {
        bool ok = pt_if_range_ok(if_range.p, if_range.len, etag, etag_len, lm);
        /* RFC 9110 §13.1.5: a weak validator never matches */
        if (if_range.len >= 2 && memcmp(if_range.p, "W/", 2) == 0)
            FZ_CHECK(!ok);
        if (if_range.len == etag_len && memcmp(if_range.p, etag, etag_len) == 0)
            FZ_CHECK(ok);
    }

    for (int get = 0; get < 2; get++) {
        pt_precond pc = {
            .if_match = im,
            .if_none_match = inm,
            .if_modified_since = ims,
            .if_unmodified_since = ius,
            .is_get_or_head = get,
            .etag = etag,
            .etag_len = etag_len,
            .last_modified = lm,
        };
        int st = pt_precond_eval(&pc);
        FZ_CHECK(st == 0 || st == 304 || st == 412);
        /* RFC 9110 §13.1.2: 304 only for GET/HEAD, else 412 */
        if (!get)
            FZ_CHECK(st != 304);
        /* no conditional header: nothing to evaluate */
        if (!im.p && !inm.p && !ims.p && !ius.p)
            FZ_CHECK(st == 0);
    }

    check_date(if_range);
    check_date(ims);
    check_date(ius);
    {
        /* RFC 850 two-digit years are anchored to "now" */
        time_t t, now = (opt & 0x40) ? 4102444800 /* 2100 */ : 946684800 /* 2000 */;
        if (ims.p && pt_httpdate_parse_at(ims.p, ims.len, now, &t) == 0 && t >= 0 &&
            t < 253402300800) {
            char out[PT_HTTPDATE_LEN + 1];
            time_t back;
            pt_httpdate_format(t, out);
            FZ_CHECK(pt_httpdate_parse_at(out, PT_HTTPDATE_LEN, now, &back) == 0 && back == t);
        }
    }
    free((void *)range.p);
    free((void *)if_range.p);
    free((void *)im.p);
    free((void *)inm.p);
    free((void *)ims.p);
    free((void *)ius.p);
    free((void *)ae.p);
    return 0;
}
