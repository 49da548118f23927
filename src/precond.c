#include "first.h"
#include "precond.h"

/* precond.c: owns validators and conditional requests: the ETag we mint for a
 * file, entity-tag list matching, the RFC 9110 §13.2.2 evaluation order and
 * If-Range. */

#include <string.h>

#include "httpdate.h"

/* splitmix64 finaliser: every input bit reaches every output bit */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

size_t pt_etag_make(uint64_t ino, uint64_t size, time_t mtime, long mtime_nsec,
                    char out[PT_ETAG_MAX])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t sec = (uint64_t)(int64_t)mtime;
    uint64_t nsec = (uint32_t)mtime_nsec;
    /* Two chains over all four fields, folded into 64 bits. Each chain is
     * a bijection of the inode once the rest is fixed; their fold is not,
     * so the inode (CVE-2003-1418) is not read back from a tag by algebra.
     * No seed: every worker, and every run, gives a file the same tag. So
     * no secret either: where nanoseconds are 0 (a filesystem of whole
     * seconds), size and mtime known, a search over inode numbers finds
     * the one that gives the tag; the tag only stops showing it. */
    uint64_t a = mix64(ino ^ mix64(size ^ mix64(sec ^ mix64(nsec))));
    uint64_t b = mix64(sec ^ mix64(nsec ^ mix64(ino ^ mix64(size + 0x9e3779b97f4a7c15ULL))));
    uint64_t v = a ^ (b << 32 | b >> 32);
    /* short because it is sent with every response (HPACK never indexes
     * etag: it is Huffman-coded each time): 64 bits in 11 base64url digits */
    out[0] = '"';
    for (int i = 0; i < 10; i++)
        out[1 + i] = b64url[v >> (58 - 6 * i) & 63];
    out[11] = b64url[v << 2 & 63]; /* the last 4 bits, as base64 ends 8 bytes */
    out[12] = '"';
    out[PT_ETAG_LEN] = '\0';
    return PT_ETAG_LEN;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3) */
static bool is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* One entity-tag at s[*i]: sets the opaque-tag (quotes included) and
 * weakness, advances *i. Returns 0, or -1 on bad syntax. */
static int parse_etag(const char *s, size_t len, size_t *i, pt_str *opaque, bool *is_weak)
{
    size_t p = *i;
    *is_weak = false;
    /* weak = %s"W/": case-sensitive */
    if (len - p >= 2 && s[p] == 'W' && s[p + 1] == '/') {
        *is_weak = true;
        p += 2;
    }
    if (p >= len || s[p] != '"')
        return -1;
    size_t q = p + 1;
    while (q < len && s[q] != '"') {
        if (!is_etagc((unsigned char)s[q]))
            return -1;
        q++;
    }
    if (q >= len)
        return -1;
    opaque->p = s + p;
    opaque->len = q + 1 - p;
    *i = q + 1;
    return 0;
}

/* The current ETag as opaque-tag + weakness; false when there is none. */
static bool current_etag(const pt_precond *p, pt_str *opaque, bool *is_weak)
{
    size_t i = 0;
    if (!p->etag || p->etag_len == 0)
        return false;
    return parse_etag(p->etag, p->etag_len, &i, opaque, is_weak) == 0 && i == p->etag_len;
}

enum { LIST_BAD = -1, LIST_NOMATCH = 0, LIST_MATCH = 1 };

/* Matches a field value of the form "*" / #entity-tag (RFC 9110 §13.1.1,
 * §13.1.2) against the current tag; strong comparison needs both sides
 * strong, weak comparison only compares the opaque-tags (§8.8.3.2). */
static int list_match(pt_str v, const pt_precond *p, bool strong)
{
    size_t i = 0, members = 0;
    pt_str cur = {0}, tag;
    bool cur_weak = false, weak;
    bool have_cur = current_etag(p, &cur, &cur_weak);
    int result = LIST_NOMATCH;

    while (v.len > 0 && is_ows(v.p[0])) {
        v.p++;
        v.len--;
    }
    while (v.len > 0 && is_ows(v.p[v.len - 1]))
        v.len--;
    /* "*" matches any current representation, and we always have one */
    if (v.len == 1 && v.p[0] == '*')
        return LIST_MATCH;

    while (i < v.len) {
        while (i < v.len && (is_ows(v.p[i]) || v.p[i] == ','))
            i++;
        if (i == v.len)
            break;
        if (parse_etag(v.p, v.len, &i, &tag, &weak) < 0)
            return LIST_BAD;
        members++;
        while (i < v.len && is_ows(v.p[i]))
            i++;
        if (i < v.len && v.p[i] != ',')
            return LIST_BAD;
        if (have_cur && tag.len == cur.len && memcmp(tag.p, cur.p, cur.len) == 0 &&
            (!strong || (!weak && !cur_weak)))
            result = LIST_MATCH; /* keep going: the rest must still parse */
    }
    return members ? result : LIST_BAD;
}

static bool parse_date(pt_str v, time_t *t)
{
    return pt_httpdate_parse(v.p, v.len, t) == 0;
}

int pt_precond_eval(const pt_precond *p)
{
    time_t t;

    /* Steps 1-2: If-Match, else If-Unmodified-Since. A malformed If-Match
     * cannot be shown to match, so it fails like a mismatch. */
    if (p->if_match.p) {
        if (list_match(p->if_match, p, true) != LIST_MATCH)
            return 412;
    } else if (p->if_unmodified_since.p && parse_date(p->if_unmodified_since, &t)) {
        if (p->last_modified > t)
            return 412;
    }
    /* Steps 3-4: If-None-Match, else (GET/HEAD only) If-Modified-Since.
     * A malformed If-None-Match matches nothing, so the request proceeds. */
    if (p->if_none_match.p) {
        if (list_match(p->if_none_match, p, false) == LIST_MATCH)
            return p->is_get_or_head ? 304 : 412;
    } else if (p->is_get_or_head && p->if_modified_since.p &&
               parse_date(p->if_modified_since, &t)) {
        if (p->last_modified <= t)
            return 304;
    }
    return 0;
}

bool pt_if_range_ok(const char *v, size_t len, const char *etag, size_t etag_len,
                    time_t last_modified)
{
    time_t t;
    if (!v || len == 0)
        return false;
    /* RFC 9110 §13.1.5: a DQUOTE (or W/) says entity-tag, else HTTP-date.
     * Only a strong, byte-identical tag matches. */
    if (v[0] == '"' || (len >= 2 && v[0] == 'W' && v[1] == '/')) {
        if (!etag || etag_len < 2 || etag[0] != '"')
            return false;
        return len == etag_len && memcmp(v, etag, len) == 0;
    }
    return pt_httpdate_parse(v, len, &t) == 0 && t == last_modified;
}
