/* acme_json.c: what the ACME client needs of JSON (RFC 8259) and base64url
 * (RFC 4648 §5): a strict reader of members, array elements and ASCII
 * strings, bounded by the text's end and a nesting depth, and an encoder. */
#include "first.h"
#include "acme_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ base64url */

/* RFC 4648 §5, no padding (RFC 7515 §2) */
char *pt_acme_b64url(const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5), *o = out;
    if (!out)
        return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = tab[v >> 6 & 63];
    }
    *o = '\0';
    return out;
}

/* ----------------------------------------------------------------- JSON
 * A strict reader of just what ACME answers need: find a member of an
 * object, the n-th element of an array, a string's value. Bounded by the
 * end of the text and a nesting depth; anything malformed is "absent". */
#define PT_ACME_JSON_DEPTH 16

static const char *ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_value(const char *p, const char *e, int depth);

static const char *skip_string(const char *p, const char *e)
{
    if (p >= e || *p != '"')
        return NULL;
    for (p++; p < e; p++) {
        if (*p == '\\') {
            if (++p >= e)
                return NULL;
        } else if (*p == '"') {
            return p + 1;
        } else if ((unsigned char)*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

static const char *skip_container(const char *p, const char *e, int depth, char close)
{
    bool obj = close == '}';
    p = ws(p + 1, e);
    if (p < e && *p == close)
        return p + 1;
    for (;;) {
        if (obj) {
            if (!(p = skip_string(p, e)) || (p = ws(p, e)) >= e || *p != ':')
                return NULL;
            p = ws(p + 1, e);
        }
        if (!(p = skip_value(p, e, depth + 1)) || (p = ws(p, e)) >= e)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = ws(p + 1, e);
    }
}

unsigned long pt_acme_json_skipped;

static const char *skip_value(const char *p, const char *e, int depth)
{
    pt_acme_json_skipped++;
    if (depth > PT_ACME_JSON_DEPTH || (p = ws(p, e)) >= e)
        return NULL;
    switch (*p) {
    case '"':
        return skip_string(p, e);
    case '{':
        return skip_container(p, e, depth, '}');
    case '[':
        return skip_container(p, e, depth, ']');
    case 't':
    case 'f':
    case 'n': {
        const char *lit = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        size_t n = strlen(lit);
        return (size_t)(e - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
    }
    default: {
        /* a number: its characters (ACME's numbers are not read, only
         * stepped over) */
        const char *start = p;
        if (*p != '-' && (*p < '0' || *p > '9'))
            return NULL;
        while (p < e && *p && strchr("-+.0123456789eE", *p))
            p++;
        return p > start ? p : NULL;
    }
    }
}

/* the value of member key of the object at p, or NULL */
const char *pt_acme_json_get(const char *p, const char *e, const char *key)
{
    if (!p || (p = ws(p, e)) >= e || *p != '{')
        return NULL;
    size_t klen = strlen(key);
    p = ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *k = p + 1, *ke = skip_string(p, e);
        if (!ke || (p = ws(ke, e)) >= e || *p != ':')
            return NULL;
        const char *v = ws(p + 1, e);
        if ((size_t)(ke - 1 - k) == klen && memcmp(k, key, klen) == 0)
            return v;
        if (!(p = skip_value(v, e, 1)) || (p = ws(p, e)) >= e || *p != ',')
            return NULL;
        p = ws(p + 1, e);
    }
    return NULL;
}

/* element i of the array at p, or NULL */
const char *pt_acme_json_elem(const char *p, const char *e, size_t i)
{
    if (!p || (p = ws(p, e)) >= e || *p != '[')
        return NULL;
    p = ws(p + 1, e);
    if (p < e && *p == ']')
        return NULL;
    for (size_t n = 0;; n++) {
        if (n == i)
            return p;
        if (!(p = skip_value(p, e, 1)) || (p = ws(p, e)) >= e || *p != ',')
            return NULL;
        p = ws(p + 1, e);
    }
}

/* the element after the one at p: only that one is stepped over (a
 * walk by index would step over 0 + 1 + ... + n-1 of them) */
const char *pt_acme_json_next(const char *p, const char *e)
{
    if (!p || !(p = skip_value(p, e, 1)) || (p = ws(p, e)) >= e || *p != ',')
        return NULL;
    return ws(p + 1, e);
}

/* the string at p into out (escapes of ASCII only: ACME's URLs, tokens
 * and statuses are ASCII); false when not a string or too long */
bool pt_acme_json_str(const char *p, const char *e, char *out, size_t cap)
{
    const char *end = p ? skip_string(p, e) : NULL;
    size_t n = 0;
    if (!end)
        return false;
    for (p++; p < end - 1; p++) {
        char ch = *p;
        if (ch == '\\') {
            ch = *++p;
            if (ch == 'n')
                ch = '\n';
            else if (ch == 't')
                ch = '\t';
            else if (ch == 'u') {
                unsigned v;
                if (end - 1 - p < 5 || sscanf(p + 1, "%4x", &v) != 1 || v == 0 || v > 0x7f)
                    return false;
                ch = (char)v;
                p += 4;
            } else if (!ch || !strchr("\"\\/", ch))
                return false;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = ch;
    }
    out[n] = '\0';
    return true;
}
