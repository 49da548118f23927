/* test_h2_msg.c: h2_msg.c, the RFC 9113 §8 request rules and the RFC 9218
 * priority field, without a session (t_h2_rules.py checks them on the
 * wire). */
#include "first.h"
#include "h2_msg.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>

static int field(pt_h2_msg *m, const char *n, const char *v, bool trailer)
{
    return pt_h2_msg_field(m, (const uint8_t *)n, strlen(n), (const uint8_t *)v, strlen(v),
                           trailer);
}

/* a GET head of four pseudo-fields, then extra (name, value) pairs */
static int head(pt_h2_msg *m, const char *const *extra)
{
    pt_h2_msg_init(m);
    if (field(m, ":method", "GET", false) != PT_H2_METHOD ||
        field(m, ":scheme", "https", false) != PT_H2_SCHEME ||
        field(m, ":path", "/", false) != PT_H2_PATH ||
        field(m, ":authority", "localhost", false) != PT_H2_AUTHORITY)
        return -1;
    for (; extra && extra[0]; extra += 2)
        if (field(m, extra[0], extra[1], false) < 0)
            return -1;
    return 0;
}

static bool prio(const char *v, int u, bool inc)
{
    uint8_t uu = 3;
    bool ii = false;
    if (pt_h2_msg_priority(v, strlen(v), &uu, &ii) != 0)
        return u < 0;
    return uu == u && ii == inc;
}

/* the first field of a head: the pseudo-field name (its value v), or a
 * regular field v: "" (its name v) */
static int first(const char *name, const uint8_t *v, size_t n)
{
    pt_h2_msg m;
    pt_h2_msg_init(&m);
    if (name[0] == ':')
        return pt_h2_msg_field(&m, (const uint8_t *)name, strlen(name), v, n, false);
    return pt_h2_msg_field(&m, v, n, (const uint8_t *)"1", 1, false);
}

/* Every byte a name, :path or :authority must not hold is refused at
 * every offset of every length from 1 to 40 (the byte checks go four
 * bytes a step), and a clean one of each length passes. */
static void test_bad_byte_at_every_offset(void)
{
    static const struct {
        const char *name; /* the pseudo-field, or "" for a regular field's name */
        const char *bad;  /* its bad bytes, NUL among them */
        size_t nbad;
    } t[] = {
        {"", "A :\x7f\x80\0", 6},
        {":path", " \x7f\x1f\t\0", 5},
        {":authority", "/?# \x80\0", 6},
    };
    int wrong = 0;
    for (size_t k = 0; k < PT_ARRAY_LEN(t); k++) {
        uint8_t v[40];
        for (size_t n = 1; n <= sizeof(v); n++) {
            memset(v, 'a', n);
            if (strcmp(t[k].name, ":path") == 0)
                v[0] = '/';
            if (first(t[k].name, v, n) < 0)
                wrong++;
            for (size_t b = 0; b < t[k].nbad; b++)
                for (size_t at = 0; at < n; at++) {
                    uint8_t keep = v[at];
                    v[at] = (uint8_t)t[k].bad[b];
                    if (first(t[k].name, v, n) >= 0)
                        wrong++;
                    v[at] = keep;
                }
        }
    }
    ok(wrong == 0, "a bad byte is refused at every offset of names, :path, :authority of 1 to 40");
}

/* :method and :scheme, and every name one byte away from them, which is
 * no request's pseudo-field (RFC 9113 §8.3) */
static void test_pseudo_names_exactly(void)
{
    static const char *const names[] = {":method", ":scheme"};
    int wrong = 0;
    for (size_t k = 0; k < PT_ARRAY_LEN(names); k++) {
        uint8_t n[7];
        memcpy(n, names[k], 7);
        pt_h2_msg m;
        pt_h2_msg_init(&m);
        if (pt_h2_msg_field(&m, n, 7, (const uint8_t *)"GET", 3, false) < 0)
            wrong++;
        for (size_t at = 1; at < 7; at++) {
            n[at] ^= 0x01;
            pt_h2_msg_init(&m);
            if (pt_h2_msg_field(&m, n, 7, (const uint8_t *)"GET", 3, false) >= 0)
                wrong++;
            n[at] ^= 0x01;
        }
    }
    ok(wrong == 0, ":method and :scheme known, a name a byte from either refused");
}

int main(void)
{
    pt_h2_msg m;
    test_bad_byte_at_every_offset();
    test_pseudo_names_exactly();
    ok(head(&m, NULL) == 0 && pt_h2_msg_head_end(&m, true) == 0, "a plain GET is well-formed");
    ok(head(&m, (const char *[]){"user-agent", "x/1 (y)", "x-e", "", NULL}) == 0,
       "ordinary fields, an empty value");
    ok(head(&m, (const char *[]){"X-A", "1", NULL}) < 0, "an uppercase name is malformed");
    ok(head(&m, (const char *[]){"x-a", " 1", NULL}) < 0, "a leading space is malformed");
    ok(head(&m, (const char *[]){"x-a", "1\t", NULL}) < 0, "a trailing tab is malformed");
    ok(head(&m, (const char *[]){"x-a", "a\x7f", NULL}) < 0, "DEL in a value is malformed");
    ok(head(&m, (const char *[]){"te", "trailers", NULL}) == 0, "TE: trailers");
    ok(head(&m, (const char *[]){"te", "gzip", NULL}) < 0, "TE: gzip is malformed");
    ok(head(&m, (const char *[]){"keep-alive", "1", NULL}) < 0, "keep-alive is malformed");
    pt_h2_msg_init(&m);
    ok(field(&m, "x-a", "1", false) == PT_H2_REGULAR && field(&m, ":path", "/", false) < 0,
       "a pseudo-field after a regular one is malformed");
    pt_h2_msg_init(&m);
    ok(field(&m, ":method", "GET", false) == PT_H2_METHOD && field(&m, ":method", "GET", false) < 0,
       "a pseudo-field twice is malformed");
    pt_h2_msg_init(&m);
    ok(field(&m, ":method", "GET", false) >= 0 && field(&m, ":path", "/", false) >= 0 &&
           field(&m, ":authority", "a", false) >= 0 && pt_h2_msg_head_end(&m, true) < 0,
       "no :scheme is malformed");
    pt_h2_msg_init(&m);
    ok(field(&m, ":method", "CONNECT", false) >= 0 && field(&m, ":authority", "a:1", false) >= 0 &&
           pt_h2_msg_head_end(&m, false) == 0 && pt_h2_msg_content_length(&m) == -1,
       "CONNECT: :method and :authority");

    /* content-length against DATA (RFC 9113 §8.1.1) */
    ok(head(&m, (const char *[]){"content-length", "5", NULL}) == 0 &&
           pt_h2_msg_head_end(&m, false) == 0 && pt_h2_msg_data(&m, 2) == 0 &&
           pt_h2_msg_data(&m, 3) == 0 && pt_h2_msg_end(&m, false, true) == 0,
       "5 bytes for content-length 5");
    ok(head(&m, (const char *[]){"content-length", "5", NULL}) == 0 && pt_h2_msg_data(&m, 6) < 0,
       "more DATA than content-length");
    ok(head(&m, (const char *[]){"content-length", "5", NULL}) == 0 && pt_h2_msg_data(&m, 4) == 0 &&
           pt_h2_msg_end(&m, false, true) < 0,
       "less DATA than content-length");
    ok(head(&m, (const char *[]){"content-length", "5", NULL}) == 0 &&
           pt_h2_msg_head_end(&m, true) < 0,
       "content-length 5 and no DATA");
    ok(head(&m, (const char *[]){"content-length", "9223372036854775808", NULL}) < 0,
       "content-length past INT64_MAX");
    ok(head(&m, (const char *[]){"content-length", "9223372036854775807", NULL}) == 0,
       "content-length INT64_MAX");
    ok(head(&m, NULL) == 0 && field(&m, "x-t", "1", true) == PT_H2_REGULAR &&
           field(&m, ":path", "/", true) < 0 && pt_h2_msg_end(&m, true, false) < 0,
       "trailers: no pseudo-field, END_STREAM");

    /* RFC 9218 priority (an RFC 8941 dictionary) */
    ok(prio("u=0", 0, false), "u=0");
    ok(prio("u=5, i", 5, true), "u=5, i");
    ok(prio("i=?0, u=7", 7, false), "i=?0, u=7");
    ok(prio("i=?1;x=1", 3, true), "i with a parameter");
    ok(prio("", 3, false), "empty: the default");
    ok(prio("  u=1", 1, false), "leading spaces");
    ok(prio("u=1,i", 1, true), "no space after the comma");
    ok(prio("a=(1 2 \"x\");p, b=:YWI=:, c=?1, d=tok/x:y, e=-1.5, u=2", 2, false),
       "other members of every type are skipped");
    ok(prio("u=2, u=4", 4, false), "the last u wins");
    ok(prio("u=8", -1, false), "u=8 is refused");
    ok(prio("u=-1", -1, false), "u=-1 is refused");
    ok(prio("u=1.0", -1, false), "a decimal u is refused");
    ok(prio("u=\"1\"", -1, false), "a string u is refused");
    ok(prio("i=1", -1, false), "an integer i is refused");
    ok(prio("u=1,", -1, false), "a trailing comma is refused");
    ok(prio("U=1", -1, false), "an uppercase key is refused");
    ok(prio("u=9, ??", -1, false), "garbage is refused");
    ok(prio("a=\"x", -1, false), "an open string is refused");
    ok(prio("a=(1", -1, false), "an open inner list is refused");
    ok(prio("a=1234567890123456", -1, false), "an integer of 16 digits is refused");
    pt_h2_msg_init(&m);
    ok(field(&m, "priority", "u=1", false) == PT_H2_REGULAR && pt_h2_msg_has_priority(&m) &&
           m.urgency == 1,
       "a priority field is read");
    ok(field(&m, "priority", "u=9", false) == PT_H2_REGULAR && !pt_h2_msg_has_priority(&m) &&
           m.urgency == 3,
       "a bad one after it: the default (nghttp2's rule)");
    ok(field(&m, "priority", "u=1", false) == PT_H2_REGULAR && !pt_h2_msg_has_priority(&m),
       "and no later one is read");
    return tap_done();
}
