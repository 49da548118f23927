/* h2_msg.c: RFC 9113 §8's rules for an HTTP/2 request, field by field,
 * with RFC 9218's priority field parsed on the way (an RFC 8941
 * dictionary). nghttp2 did this with its HTTP messaging on, at about 1,100
 * instructions a request for checks portico half repeated: its header
 * callback visits every field anyway. As strict as nghttp2 1.52 was: the
 * same bytes are refused in names and values, and every refusal is a
 * malformed request (nghttp2 reset the stream for a bad regular field as
 * well, having no invalid-header callback). */
#include "first.h"
#include "h2_msg.h"
#include "util.h"

#include <string.h>

enum {
    F_METHOD = 1u << 0,
    F_SCHEME = 1u << 1,
    F_PATH = 1u << 2,
    F_AUTHORITY = 1u << 3,
    F_HOST = PT_H2_SEEN_HOST,
    F_REGULAR = 1u << 5, /* a regular field came: no pseudo-header after it (§8.3) */
    F_CL = PT_H2_SEEN_CL,
    F_CONNECT = 1u << 7,
    F_OPTIONS = 1u << 8,
    F_PATH_SLASH = 1u << 9,
    F_PATH_STAR = 1u << 10,
    F_SCHEME_HTTP = 1u << 11,
    F_PRIO = PT_H2_SEEN_PRIO, /* a priority field parsed */
    F_BAD_PRIO = 1u << 13,    /* one did not: the default, and no later one read */
};

/* a field name's bytes: tchar, lowercase (§8.2.1: uppercase is malformed) */
static const unsigned char name_ok[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['a' ... 'z'] = 1,
};
/* :path: any visible byte or one of 0x80-0xff (nghttp2's, RFC 3986 loosely) */
static const unsigned char path_ok[256] = {[0x21 ... 0x7e] = 1, [0x80 ... 0xff] = 1};
/* :authority and host (RFC 3986 §3.2: reg-name, IP literal, port, userinfo) */
static const unsigned char authority_ok[256] = {
    ['!'] = 1, ['$' ... '.'] = 1, ['0' ... ';'] = 1, ['='] = 1, ['@' ... '['] = 1,
    [']'] = 1, ['_'] = 1,         ['a' ... 'z'] = 1, ['~'] = 1,
};

void pt_h2_msg_init(pt_h2_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->urgency = 3; /* RFC 9218 §4.1 */
}

/* four bytes of p in tbl */
static inline unsigned in4(const unsigned char *tbl, const uint8_t *p)
{
    return (unsigned)(tbl[p[0]] & tbl[p[1]] & tbl[p[2]] & tbl[p[3]]);
}

/* every byte of p[0, n) in tbl: four a step, no branch per byte, the last
 * step the last four bytes (overlapping the one before) rather than a
 * byte loop. Names and pseudo-header values are a few to a few dozen
 * bytes: inline, at three places. */
static inline __attribute__((always_inline)) bool all_in(const unsigned char *tbl, const uint8_t *p,
                                                         size_t n)
{
    if (n < 4) {
        unsigned ok = 1;
        for (size_t i = 0; i < n; i++)
            ok &= tbl[p[i]];
        return ok != 0;
    }
    unsigned ok = in4(tbl, p + n - 4);
    for (size_t i = 0; i + 4 < n; i += 4)
        ok &= in4(tbl, p + i);
    return ok != 0;
}

/* a pseudo-header field once, with a value (§8.3.1) */
static bool once(pt_h2_msg *m, uint32_t flag, size_t vl)
{
    if ((m->seen & flag) || vl == 0)
        return false;
    m->seen |= flag;
    return true;
}

/* n (seven bytes) is lit: two overlapping four-byte words (GCC 12 left
 * one of the two seven-byte memcmp in pseudo() a call into libc) */
static inline bool is7(const uint8_t *n, const char *lit)
{
    uint32_t a, b, c, d;
    memcpy(&a, n, 4);
    memcpy(&b, n + 3, 4);
    memcpy(&c, lit, 4);
    memcpy(&d, lit + 3, 4);
    return ((a ^ c) | (b ^ d)) == 0;
}

static bool lit_ieq(const uint8_t *v, size_t vl, const char *lit, size_t n)
{
    return vl == n && pt_name_is((const char *)v, lit, n);
}

/* RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static bool scheme_ok(const uint8_t *v, size_t n)
{
    if (n == 0 || !((v[0] | 0x20) >= 'a' && (v[0] | 0x20) <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++) {
        uint8_t c = v[i];
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static int pseudo(pt_h2_msg *m, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl,
                  bool trailer)
{
    /* §8.1: none in trailers; §8.3: all before the regular fields */
    if (trailer || (m->seen & F_REGULAR))
        return -1;
    switch (nl) {
    case 5:
        if (memcmp(n, ":path", 5) != 0 || !all_in(path_ok, v, vl) || !once(m, F_PATH, vl))
            return -1;
        if (v[0] == '/')
            m->seen |= F_PATH_SLASH;
        else if (vl == 1 && v[0] == '*')
            m->seen |= F_PATH_STAR;
        return PT_H2_PATH;
    case 7:
        if (is7(n, ":method")) {
            /* GET is most of them: no byte loop */
            if (!(vl == 3 && memcmp(v, "GET", 3) == 0) && !all_in(pt_tchar, v, vl))
                return -1;
            if (!once(m, F_METHOD, vl))
                return -1;
            if (vl == 7 && memcmp(v, "CONNECT", 7) == 0)
                m->seen |= F_CONNECT;
            else if (vl == 7 && memcmp(v, "OPTIONS", 7) == 0)
                m->seen |= F_OPTIONS;
            return PT_H2_METHOD;
        }
        if (is7(n, ":scheme")) {
            if (!once(m, F_SCHEME, vl))
                return -1;
            /* https and http, as sent, need no byte loop */
            if (!(vl == 5 && memcmp(v, "https", 5) == 0) &&
                !(vl == 4 && memcmp(v, "http", 4) == 0)) {
                if (!scheme_ok(v, vl))
                    return -1;
                if (!lit_ieq(v, vl, "http", 4) && !lit_ieq(v, vl, "https", 5))
                    return PT_H2_SCHEME;
            }
            m->seen |= F_SCHEME_HTTP;
            return PT_H2_SCHEME;
        }
        return -1;
    case 10:
        if (memcmp(n, ":authority", 10) != 0 || !all_in(authority_ok, v, vl) ||
            !once(m, F_AUTHORITY, vl))
            return -1;
        return PT_H2_AUTHORITY;
    }
    /* :status, :protocol (no SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441
     * §3) and any other: not a request's (§8.3) */
    return -1;
}

/* content-length: digits only, no sign, no overflow, once */
static int content_length(pt_h2_msg *m, const uint8_t *v, size_t vl)
{
    if ((m->seen & F_CL) || vl == 0)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (INT64_MAX - (v[i] - '0')) / 10)
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    m->cl = n;
    m->seen |= F_CL;
    return 0;
}

int pt_h2_msg_field(pt_h2_msg *m, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl,
                    bool trailer)
{
    if (nl == 0)
        return -1;
    if (n[0] == ':')
        return pseudo(m, n, nl, v, vl, trailer);
    if (!all_in(name_ok, n, nl))
        return -1;
    m->seen |= F_REGULAR;
    /* the fields with rules of their own, by length first */
    switch (nl) {
    case 2: /* §8.2.2: TE only as "trailers" */
        if (n[0] == 't' && n[1] == 'e')
            return lit_ieq(v, vl, "trailers", 8) ? PT_H2_REGULAR : -1;
        break;
    case 4:
        if (memcmp(n, "host", 4) == 0)
            return all_in(authority_ok, v, vl) && once(m, F_HOST, vl) ? PT_H2_REGULAR : -1;
        break;
    case 7:
        if (memcmp(n, "upgrade", 7) == 0)
            return -1;
        break;
    case 8:
        if (memcmp(n, "priority", 8) != 0 || trailer || (m->seen & F_BAD_PRIO))
            break;
        /* RFC 9218 §4: one that does not parse is ignored, as are later
         * ones (nghttp2's rule): the default urgency stays */
        if (pt_h2_msg_priority((const char *)v, vl, &m->urgency, &m->incremental) == 0) {
            m->seen |= F_PRIO;
        } else {
            m->seen = (m->seen & ~(uint32_t)F_PRIO) | F_BAD_PRIO;
            m->urgency = 3;
            m->incremental = false;
        }
        break;
    case 10: /* §8.2.2: connection-specific fields */
        if (memcmp(n, "connection", 10) == 0 || memcmp(n, "keep-alive", 10) == 0)
            return -1;
        break;
    case 14:
        if (memcmp(n, "content-length", 14) == 0)
            return content_length(m, v, vl);
        break;
    case 16:
        if (memcmp(n, "proxy-connection", 16) == 0)
            return -1;
        break;
    case 17:
        if (memcmp(n, "transfer-encoding", 17) == 0)
            return -1;
        break;
    }
    /* §8.2.1: no NUL, CR, LF (nor other CTLs but HT, nor DEL), no
     * leading or trailing SP or HT */
    if (vl > 0 && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        return -1;
    return pt_field_value_span((const char *)v, vl) == vl ? PT_H2_REGULAR : -1;
}

int pt_h2_msg_head_end(pt_h2_msg *m, bool end_stream)
{
    if (m->seen & F_CONNECT) {
        /* §8.5: :method and :authority alone; the body is a tunnel's */
        if ((m->seen & (F_SCHEME | F_PATH)) || !(m->seen & F_AUTHORITY))
            return -1;
        m->seen &= ~(uint32_t)F_CL;
    } else {
        /* §8.3.1: :method, :scheme and :path, and a target host; an http
         * or https :path is absolute ("/...") or OPTIONS' "*" */
        if ((m->seen & (F_METHOD | F_SCHEME | F_PATH)) != (F_METHOD | F_SCHEME | F_PATH) ||
            !(m->seen & (F_AUTHORITY | F_HOST)))
            return -1;
        if ((m->seen & F_SCHEME_HTTP) && !(m->seen & F_PATH_SLASH) &&
            !((m->seen & F_OPTIONS) && (m->seen & F_PATH_STAR)))
            return -1;
    }
    return end_stream ? pt_h2_msg_end(m, false, true) : 0;
}

int pt_h2_msg_data(pt_h2_msg *m, size_t n)
{
    m->got += n;
    /* §8.1.1: more DATA than content-length said */
    return (m->seen & F_CL) && m->got > (uint64_t)m->cl ? -1 : 0;
}

int pt_h2_msg_end(pt_h2_msg *m, bool trailers, bool end_stream)
{
    if (trailers && !end_stream) /* §8.1: trailers end the stream */
        return -1;
    return (m->seen & F_CL) && m->got != (uint64_t)m->cl ? -1 : 0;
}

/* ---- RFC 8941 structured fields: enough to walk a dictionary ----------- */

enum { SF_INT, SF_DEC, SF_STR, SF_TOK, SF_BIN, SF_BOOL, SF_LIST };

typedef struct sf {
    const char *p, *end;
} sf;

static bool sf_lc(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool sf_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void sf_sp(sf *s)
{
    while (s->p < s->end && *s->p == ' ')
        s->p++;
}

/* §3.1.2 key: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ) */
static bool sf_key(sf *s, const char **k, size_t *kl)
{
    const char *b = s->p;
    if (s->p == s->end || !(sf_lc(*s->p) || *s->p == '*'))
        return false;
    for (s->p++; s->p < s->end; s->p++) {
        char c = *s->p;
        if (!(sf_lc(c) || sf_digit(c) || c == '_' || c == '-' || c == '.' || c == '*'))
            break;
    }
    *k = b;
    *kl = (size_t)(s->p - b);
    return true;
}

/* §4.2.3.1 a bare item: its type, or -1; an integer's or boolean's value
 * in *iv */
static int sf_bare(sf *s, int64_t *iv)
{
    if (s->p == s->end)
        return -1;
    char c = *s->p;
    if (c == '-' || sf_digit(c)) { /* §4.2.4 integer or decimal */
        int64_t neg = c == '-' ? -1 : 1, v = 0;
        if (c == '-')
            s->p++;
        size_t nd = 0;
        while (s->p < s->end && sf_digit(*s->p)) {
            if (++nd > 15)
                return -1;
            v = v * 10 + (*s->p++ - '0');
        }
        if (nd == 0)
            return -1;
        if (s->p < s->end && *s->p == '.') {
            if (nd > 12)
                return -1;
            s->p++;
            size_t nf = 0;
            while (s->p < s->end && sf_digit(*s->p) && nf < 4) {
                s->p++;
                nf++;
            }
            return nf >= 1 && nf <= 3 ? SF_DEC : -1;
        }
        *iv = neg * v;
        return SF_INT;
    }
    if (c == '"') { /* §4.2.5 string */
        for (s->p++; s->p < s->end; s->p++) {
            unsigned char d = (unsigned char)*s->p;
            if (d == '\\') {
                if (++s->p == s->end || (*s->p != '"' && *s->p != '\\'))
                    return -1;
            } else if (d == '"') {
                s->p++;
                return SF_STR;
            } else if (d < 0x20 || d > 0x7e) {
                return -1;
            }
        }
        return -1;
    }
    if (c == ':') { /* §4.2.7 byte sequence */
        for (s->p++; s->p < s->end; s->p++) {
            char d = *s->p;
            if (d == ':') {
                s->p++;
                return SF_BIN;
            }
            if (!(((d | 0x20) >= 'a' && (d | 0x20) <= 'z') || sf_digit(d) || d == '+' || d == '/' ||
                  d == '='))
                return -1;
        }
        return -1;
    }
    if (c == '?') { /* §4.2.8 boolean */
        if (s->end - s->p < 2 || (s->p[1] != '0' && s->p[1] != '1'))
            return -1;
        *iv = s->p[1] == '1';
        s->p += 2;
        return SF_BOOL;
    }
    if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '*') { /* §4.2.6 token */
        for (s->p++; s->p < s->end; s->p++) {
            unsigned char d = (unsigned char)*s->p;
            if (!pt_tchar[d] && d != ':' && d != '/')
                break;
        }
        return SF_TOK;
    }
    return -1;
}

/* §4.2.3.2 parameters: *( ";" *SP key [ "=" bare-item ] ) */
static bool sf_params(sf *s)
{
    while (s->p < s->end && *s->p == ';') {
        s->p++;
        sf_sp(s);
        const char *k;
        size_t kl;
        int64_t iv;
        if (!sf_key(s, &k, &kl))
            return false;
        if (s->p < s->end && *s->p == '=') {
            s->p++;
            if (sf_bare(s, &iv) < 0)
                return false;
        }
    }
    return true;
}

static int sf_item(sf *s, int64_t *iv)
{
    int t = sf_bare(s, iv);
    return t >= 0 && sf_params(s) ? t : -1;
}

/* §4.2.1.2 an inner list: "(" *SP [ item *( 1*SP item ) *SP ] ")" params */
static int sf_inner_list(sf *s)
{
    int64_t iv;
    s->p++;
    for (;;) {
        sf_sp(s);
        if (s->p == s->end)
            return -1;
        if (*s->p == ')') {
            s->p++;
            return sf_params(s) ? SF_LIST : -1;
        }
        if (sf_item(s, &iv) < 0)
            return -1;
        if (s->p == s->end || (*s->p != ' ' && *s->p != ')'))
            return -1;
    }
}

int pt_h2_msg_priority(const char *v, size_t n, uint8_t *urgency, bool *incremental)
{
    sf s = {v, v + n};
    uint8_t u = *urgency;
    bool inc = *incremental;
    sf_sp(&s);
    while (s.p < s.end) { /* §4.2.2 dictionary */
        const char *k;
        size_t kl;
        int64_t iv = 1;
        int t;
        if (!sf_key(&s, &k, &kl))
            return -1;
        if (s.p < s.end && *s.p == '=') {
            if (++s.p == s.end)
                return -1;
            t = *s.p == '(' ? sf_inner_list(&s) : sf_item(&s, &iv);
        } else {
            t = sf_params(&s) ? SF_BOOL : -1; /* a bare key is true */
        }
        if (t < 0)
            return -1;
        /* RFC 9218 §4: u an integer 0-7, i a boolean; a wrong type or
         * range fails the field, other keys are extensions */
        if (kl == 1 && k[0] == 'u') {
            if (t != SF_INT || iv < 0 || iv > 7)
                return -1;
            u = (uint8_t)iv;
        } else if (kl == 1 && k[0] == 'i') {
            if (t != SF_BOOL)
                return -1;
            inc = iv != 0;
        }
        while (s.p < s.end && (*s.p == ' ' || *s.p == '\t'))
            s.p++;
        if (s.p == s.end)
            break;
        if (*s.p++ != ',')
            return -1;
        while (s.p < s.end && (*s.p == ' ' || *s.p == '\t'))
            s.p++;
        if (s.p == s.end)
            return -1; /* a trailing comma */
    }
    *urgency = u;
    *incremental = inc;
    return 0;
}
