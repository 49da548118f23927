#include "first.h"
#include "h1_head.h"
/* h1_head.c: HTTP/1.1 request heads (RFC 9112, RFC 9110). Finds the end of the
 * head, pre-scans it strictly, runs http-parser once over exactly the head and
 * then applies portico's own framing rules. The only user of <http_parser.h>. */

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- character classes (ASCII only, independent of the locale) ---- */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_xdigit(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 9110 §5.6.2 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~" (util.c's
 * table: one load per byte) */
static bool is_tchar(unsigned char c)
{
    return pt_tchar[c];
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool slice_ieq_n(const char *p, size_t n, const char *lit, size_t litlen)
{
    size_t i;

    if (n != litlen)
        return false;
    for (i = 0; i < n; i++)
        if (ascii_lower((unsigned char)p[i]) != ascii_lower((unsigned char)lit[i]))
            return false;
    return true;
}

/* lit is a string literal: its length is a constant */
#define slice_ieq(p, n, lit) slice_ieq_n((p), (n), (lit), PT_SLEN(lit))

static inline pt_str trim_ows(const char *p, size_t n)
{
    while (n > 0 && is_ows(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_ows(p[n - 1]))
        n--;
    return (pt_str){p, n};
}

static bool is_token(const char *p, size_t n)
{
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return false;
    return true;
}

/* ---- public: setup and version ---- */

void pt_h1_global_init(uint32_t header_buffer)
{
    /* Backstop only: portico enforces header_buffer itself, so leave room. */
    uint32_t cap = header_buffer > UINT32_MAX - 1024 ? UINT32_MAX : header_buffer + 1024;

    http_parser_set_max_header_size(cap);
}

const char *pt_h1_parser_version(void)
{
    static char ver[32];
    unsigned long v = http_parser_version();

    snprintf(ver, sizeof(ver), "%lu.%lu.%lu", (v >> 16) & 255, (v >> 8) & 255, v & 255);
    return ver;
}

const pt_header *pt_head_get(const pt_head *h, const char *name)
{
    size_t i, nl = strlen(name);

    for (i = 0; i < h->nheaders; i++)
        if (h->headers[i].name_len == nl && slice_ieq_n(h->headers[i].name, nl, name, nl))
            return &h->headers[i];
    return NULL;
}

/* ---- framing ---- */

int pt_h1_find_head_end(const char *buf, size_t len, size_t limit)
{
    size_t n, start = 0, j;
    bool seen_lf = false;

    if (limit > INT32_MAX)
        limit = INT32_MAX; /* the length is returned as an int */
    n = PT_MIN(len, limit);

    /* RFC 9112 §2.2: ignore empty lines before the request line. */
    while (start + 1 < n && buf[start] == '\r' && buf[start + 1] == '\n')
        start += 2;
    /* A method is a token: anything else (TLS hello, binary junk) is hopeless. */
    if (start < n && buf[start] != '\r' && !is_tchar((unsigned char)buf[start]))
        return -400;
    /* LF by LF with memchr: this runs over every byte of every head. A bare
     * CR inside a complete head is pt_h1_parse_head's to refuse (400 too). */
    for (j = start; j < n; j++) {
        const char *lf = memchr(buf + j, '\n', n - j);
        if (!lf)
            break;
        j = (size_t)(lf - buf);
        /* RFC 9112 §2.2 lets us reject bare LF; we do, so never wait for more. */
        if (j == 0 || buf[j - 1] != '\r')
            return -400;
        if (j >= start + 3 && buf[j - 2] == '\n')
            return (int)(j + 1);
        seen_lf = true;
    }
    /* not complete: a bare CR (RFC 9112 §2.2) already makes it hopeless */
    for (const char *cr = memchr(buf + start, '\r', n - start); cr;
         cr = memchr(cr + 1, '\r', n - (size_t)(cr - buf) - 1)) {
        size_t k = (size_t)(cr - buf);
        if (k + 1 < len && buf[k + 1] != '\n')
            return -400;
    }
    if (len >= limit) {
        if (start >= n)
            return -400; /* nothing but empty lines */
        return seen_lf ? -431 : -414;
    }
    return 0;
}

/* ---- strict pre-scan (closes the gaps of the non-strict Debian build) ---- */

typedef struct prescan {
    pt_str method;
    pt_str target;
    int major, minor;
    size_t nfields;
    bool tab_at_line_end; /* a field line ends in HTAB (OWS), see pt_h1_parse_head */
} prescan;

static int prescan_head(const char *buf, size_t len, size_t max_headers, prescan *ps,
                        const char **err)
{
    size_t i = 0, s;

    /* A head ends in CRLF CRLF (pt_h1_find_head_end). With that LF last,
     * the scans of the target and of field names below stop at it at the
     * latest: they need no bound check per byte. */
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0) {
        *err = "head not terminated by an empty line";
        return 400;
    }
    while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
        i += 2;

    /* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3) */
    for (s = i; i < len && is_tchar((unsigned char)buf[i]); i++)
        ;
    if (i == s || i >= len || buf[i] != ' ') {
        *err = "malformed method in request line";
        return 400;
    }
    ps->method = (pt_str){buf + s, i - s};
    i++;
    /* RFC 9112 §3.2: no whitespace or CTL in the target; obs-text refused too */
    for (s = i; (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f; i++)
        ;
    if (i == s) {
        *err = "empty request-target or extra whitespace";
        return 400;
    }
    ps->target = (pt_str){buf + s, i - s};
    if (i >= len || buf[i] != ' ') {
        if (i < len && buf[i] == '\r')
            *err = "request line without HTTP-version (HTTP/0.9)";
        else
            *err = "invalid character in request-target";
        return 400;
    }
    i++;
    /* HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3) */
    if (len - i < 10 || memcmp(buf + i, "HTTP/", 5) != 0 || !is_digit(buf[i + 5]) ||
        buf[i + 6] != '.' || !is_digit(buf[i + 7])) {
        *err = "malformed HTTP-version";
        return 400;
    }
    if (buf[i + 8] != '\r' || buf[i + 9] != '\n') {
        *err = buf[i + 8] == '\n' ? "bare LF in request line" : "junk after HTTP-version";
        return 400;
    }
    ps->major = buf[i + 5] - '0';
    ps->minor = buf[i + 7] - '0';
    i += 10;

    for (;;) {
        if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n') {
            i += 2;
            break;
        }
        if (i >= len) {
            *err = "head not terminated by an empty line";
            return 400;
        }
        if (is_ows(buf[i])) {
            *err = "obs-fold line folding"; /* RFC 9112 §5.2: reject */
            return 400;
        }
        for (s = i; is_tchar((unsigned char)buf[i]); i++)
            ;
        if (i >= len || buf[i] != ':') {
            if (i < len && is_ows(buf[i]))
                *err = "whitespace between field name and colon"; /* RFC 9112 §5.1 MUST */
            else if (i == s && i < len && buf[i] == '\r')
                *err = "bare CR";
            else if (i >= len || buf[i] == '\r' || buf[i] == '\n')
                *err = "field line without colon";
            else
                *err = "invalid character in field name";
            return 400;
        }
        if (i == s) {
            *err = "empty field name";
            return 400;
        }
        /* field-value: VCHAR / obs-text / SP / HT only (RFC 9110 §5.5),
         * eight bytes per step up to the first byte that is none: the CR
         * of the line end, or an error */
        i++;
        s = i;
        i += pt_field_value_span(buf + i, len - i);
        ps->tab_at_line_end |= i > s && buf[i - 1] == '\t';
        if (i < len && buf[i] != '\r') {
            *err = buf[i] == '\n' ? "bare LF" : "control character in field value";
            return 400;
        }
        if (i + 1 >= len || buf[i + 1] != '\n') {
            *err = i >= len ? "head not terminated by an empty line" : "bare CR";
            return 400;
        }
        i += 2;
        if (++ps->nfields > max_headers) {
            *err = "too many header fields";
            return 431;
        }
    }
    if (i != len) {
        *err = "bytes after the end of the head";
        return 400;
    }
    return 0;
}

/* ---- http-parser glue: callbacks only record slices into the caller's buffer ---- */

enum cb_last { CB_NONE, CB_FIELD, CB_VALUE };

typedef struct cb_ctx {
    const char *base; /* the bytes http-parser reads (a private copy, see below) */
    const char *orig; /* the caller's buffer: every slice points here */
    pt_head *out;
    size_t max_headers;
    pt_str url;
    enum cb_last last;
    bool headers_done;
    bool keep_alive;
    bool too_many;
} cb_ctx;

/* A slice of what http-parser read, as a slice of the caller's buffer. */
static const char *map_at(const cb_ctx *c, const char *at)
{
    return c->orig + (at - c->base);
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    cb_ctx *c = p->data;
    at = map_at(c, at);

    if (c->url.p == NULL)
        c->url = (pt_str){at, n};
    else if (at == c->url.p + c->url.len)
        c->url.len += n;
    else
        return -1;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    cb_ctx *c = p->data;
    at = map_at(c, at);
    pt_head *h = c->out;
    pt_header *hd;

    if (c->last == CB_FIELD) {
        /* a split name: only a contiguous continuation can be a slice */
        hd = &h->headers[h->nheaders - 1];
        if (at != hd->name + hd->name_len)
            return -1;
        hd->name_len += (uint32_t)n;
        return 0;
    }
    if (h->nheaders >= c->max_headers) {
        c->too_many = true;
        return -1;
    }
    hd = &h->headers[h->nheaders++];
    *hd = (pt_header){.name = at, .name_len = (uint32_t)n, .value = "", .value_len = 0};
    c->last = CB_FIELD;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    cb_ctx *c = p->data;
    at = map_at(c, at);
    pt_head *h = c->out;
    pt_header *hd;

    if (h->nheaders == 0)
        return -1;
    hd = &h->headers[h->nheaders - 1];
    if (c->last == CB_VALUE) {
        /* obs-fold would arrive here non-contiguously; it was refused already */
        if (at != hd->value + hd->value_len)
            return -1;
        hd->value_len += (uint32_t)n;
        return 0;
    }
    hd->value = at;
    hd->value_len = (uint32_t)n;
    c->last = CB_VALUE;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    cb_ctx *c = p->data;

    c->headers_done = true;
    c->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

/* ---- semantic checks ---- */

/* RFC 9110 §7.2 Host = uri-host [":" port]. Policy stricter than RFC 3986:
 * reg-name limited to unreserved characters, no empty labels, port 1-5 digits. */
static bool host_is_valid(const char *p, size_t n, bool need_port)
{
    size_t i = 0, d;
    unsigned long port = 0;
    bool colon = false;

    if (n == 0)
        return false;
    if (p[0] == '[') {
        for (i = 1; i < n && p[i] != ']'; i++) {
            if (!is_xdigit((unsigned char)p[i]) && p[i] != ':' && p[i] != '.')
                return false; /* IPvFuture not accepted */
            colon |= p[i] == ':';
        }
        if (i >= n || !colon)
            return false;
        i++;
    } else {
        /* 1: ALPHA / DIGIT / "-" / "_" / "~", 2: ".", 3: ":" ends it */
        static const unsigned char cls[256] = {
            ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['-'] = 1,
            ['_'] = 1,         ['~'] = 1,         ['.'] = 2,         [':'] = 3,
        };
        for (; i < n; i++) {
            unsigned char k = cls[(unsigned char)p[i]];
            if (k == 1)
                continue;
            if (k == 3)
                break;
            if (k == 0 || i == 0 || p[i - 1] == '.')
                return false; /* or an empty DNS label: ".x", "a..b", ".." */
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return !need_port;
    if (p[i++] != ':' || n - i == 0 || n - i > 5)
        return false;
    for (d = i; d < n; d++) {
        if (!is_digit((unsigned char)p[d]))
            return false;
        port = port * 10 + (unsigned long)(p[d] - '0');
    }
    return port <= 65535;
}

static void split_query(pt_head *out, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);

    if (q == NULL) {
        out->path = (pt_str){p, n};
        return;
    }
    out->path = (pt_str){p, (size_t)(q - p)};
    out->query = (pt_str){q + 1, n - (size_t)(q - p) - 1};
    out->has_query = true;
}

/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static size_t scheme_len(const char *t, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!is_alpha(c) && (i == 0 || (!is_digit(c) && c != '+' && c != '-' && c != '.')))
            break;
    }
    return i;
}

/* RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT only),
 * asterisk-form (OPTIONS only). */
static int check_target(pt_head *out)
{
    const char *t = out->target.p, *a, *end = out->target.p + out->target.len, *r;
    size_t n = out->target.len, i;

    if (memchr(t, '#', n) != NULL) {
        out->error = "fragment in request-target";
        return 400;
    }
    if (out->method == PT_M_CONNECT) {
        if (!host_is_valid(t, n, true)) {
            out->error = "CONNECT needs authority-form host:port";
            return 400;
        }
        /* RFC 9112 §3.2.3: only CONNECT has it, and it has no path */
        out->authority_form = true;
        out->path = (pt_str){t, 0};
        return 0;
    }
    if (t[0] == '/') {
        split_query(out, t, n);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (out->method != PT_M_OPTIONS) {
            out->error = "asterisk-form only with OPTIONS";
            return 400;
        }
        out->path = out->target;
        return 0;
    }
    /* absolute-form: scheme "://" authority path-abempty [ "?" query ] */
    i = scheme_len(t, n);
    if (i == 0 || n - i < 3 || memcmp(t + i, "://", 3) != 0) {
        out->error = "invalid request-target form";
        return 400;
    }
    if (!slice_ieq(t, i, "http") && !slice_ieq(t, i, "https")) {
        out->error = "unsupported scheme in absolute-form";
        return 400;
    }
    a = t + i + 3;
    for (r = a; r < end && *r != '/' && *r != '?'; r++)
        ;
    /* userinfo is deprecated and a phishing vector (RFC 9110 §4.2.4) */
    if (memchr(a, '@', (size_t)(r - a)) != NULL || !host_is_valid(a, (size_t)(r - a), false)) {
        out->error = "invalid authority in absolute-form";
        return 400;
    }
    out->absolute_form = true;
    out->host = (pt_str){a, (size_t)(r - a)}; /* RFC 9112 §3.2.2: authority wins over Host */
    split_query(out, r, (size_t)(end - r));
    if (out->path.len == 0)
        out->path = (pt_str){"/", 1}; /* RFC 9112 §3.2.1: empty path means "/" */
    return 0;
}

/* The fields the framing rules below look at, noted in the one pass over
 * the fields: a name is compared only when its length is one of theirs. */
typedef struct known_fields {
    const pt_header *host, *cl;
    size_t nhost, ncl, nte, nexpect;
} known_fields;

static void note_known(known_fields *k, const pt_header *h)
{
    switch (h->name_len) {
    case PT_SLEN("host"):
        if (slice_ieq(h->name, h->name_len, "host")) {
            k->host = h;
            k->nhost++;
        }
        break;
    case PT_SLEN("expect"):
        k->nexpect += slice_ieq(h->name, h->name_len, "expect");
        break;
    case PT_SLEN("content-length"):
        if (slice_ieq(h->name, h->name_len, "content-length")) {
            k->cl = h;
            k->ncl++;
        }
        break;
    case PT_SLEN("transfer-encoding"):
        k->nte += slice_ieq(h->name, h->name_len, "transfer-encoding");
        break;
    }
}

static int check_host(pt_head *out, const known_fields *k)
{
    const pt_header *host = k->host;
    size_t count = k->nhost;

    /* RFC 9112 §3.2: 400 for no Host on 1.1, more than one Host, or an invalid one */
    if (count > 1) {
        out->error = "duplicate Host";
        return 400;
    }
    if (count == 0) {
        if (out->http_minor >= 1) {
            out->error = "missing Host on HTTP/1.1";
            return 400;
        }
        return 0;
    }
    if (host->value_len == 0) {
        if (out->http_minor >= 1) {
            out->error = "empty Host on HTTP/1.1";
            return 400;
        }
    } else if (!host_is_valid(host->value, host->value_len, false)) {
        out->error = "invalid Host";
        return 400;
    }
    if (!out->absolute_form)
        out->host = (pt_str){host->value, host->value_len};
    return 0;
}

static int check_content_length(pt_head *out, const known_fields *k)
{
    const pt_header *cl = k->cl;
    size_t i, count = k->ncl;
    uint64_t v = 0;

    if (count == 0)
        return 0;
    /* RFC 9112 §6.3: anything but one plain decimal is unrecoverable framing */
    if (count > 1) {
        out->error = "duplicate Content-Length";
        return 400;
    }
    if (cl->value_len == 0) {
        out->error = "empty Content-Length";
        return 400;
    }
    for (i = 0; i < cl->value_len; i++) {
        unsigned char c = (unsigned char)cl->value[i];
        if (!is_digit(c)) {
            out->error = "invalid Content-Length";
            return 400;
        }
        if (v > ((uint64_t)INT64_MAX - (c - '0')) / 10) {
            out->error = "Content-Length overflow";
            return 400;
        }
        v = v * 10 + (c - '0');
    }
    out->content_length = (int64_t)v;
    return 0;
}

static int check_transfer_encoding(pt_head *out)
{
    size_t i, lines = 0, elems = 0, chunked = 0;
    bool last_chunked = false, bad = false;

    for (i = 0; i < out->nheaders; i++) {
        const pt_header *h = &out->headers[i];
        const char *p = h->value, *end = h->value + h->value_len;

        if (!slice_ieq(h->name, h->name_len, "transfer-encoding"))
            continue;
        lines++;
        /* several lines are one comma list (RFC 9110 §5.3) */
        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            pt_str el = trim_ows(p, (size_t)(e - p));

            /* empty list elements are refused outright: framing must be unambiguous */
            if (!is_token(el.p, el.len))
                bad = true;
            last_chunked = slice_ieq(el.p, el.len, "chunked");
            chunked += last_chunked;
            elems++;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    if (lines == 0)
        return 0;
    if (out->http_minor == 0) {
        out->error = "Transfer-Encoding on HTTP/1.0"; /* RFC 9112 §6.1: faulty framing */
        return 400;
    }
    if (out->content_length >= 0) {
        out->error = "both Content-Length and Transfer-Encoding"; /* RFC 9112 §6.1 */
        return 400;
    }
    if (bad) {
        out->error = "invalid Transfer-Encoding list";
        return 400;
    }
    if (!last_chunked || chunked > 1) {
        out->error = "chunked is not the final transfer coding once"; /* RFC 9112 §6.3 */
        return 400;
    }
    if (elems > 1) {
        out->error = "unsupported transfer coding"; /* RFC 9112 §6.1: 501 */
        return 501;
    }
    out->is_chunked = true;
    return 0;
}

static void check_expect(pt_head *out)
{
    size_t i;

    /* RFC 9110 §10.1.1: a 1.0 client cannot have meant 100-continue */
    if (out->http_minor == 0)
        return;
    for (i = 0; i < out->nheaders; i++) {
        const pt_header *h = &out->headers[i];
        if (slice_ieq(h->name, h->name_len, "expect") &&
            slice_ieq(h->value, h->value_len, "100-continue"))
            out->expect_continue = true;
    }
}

static pt_method method_of(pt_str m)
{
    /* methods are case-sensitive (RFC 9110 §9.1) */
    switch (m.len) {
    case 3:
        if (memcmp(m.p, "GET", 3) == 0)
            return PT_M_GET;
        if (memcmp(m.p, "PUT", 3) == 0)
            return PT_M_PUT;
        break;
    case 4:
        if (memcmp(m.p, "HEAD", 4) == 0)
            return PT_M_HEAD;
        if (memcmp(m.p, "POST", 4) == 0)
            return PT_M_POST;
        break;
    case 5:
        if (memcmp(m.p, "PATCH", 5) == 0)
            return PT_M_PATCH;
        if (memcmp(m.p, "TRACE", 5) == 0)
            return PT_M_TRACE;
        break;
    case 6:
        if (memcmp(m.p, "DELETE", 6) == 0)
            return PT_M_DELETE;
        break;
    case 7:
        if (memcmp(m.p, "OPTIONS", 7) == 0)
            return PT_M_OPTIONS;
        if (memcmp(m.p, "CONNECT", 7) == 0)
            return PT_M_CONNECT;
        break;
    }
    return PT_M_OTHER;
}

static int map_parser_error(enum http_errno e, pt_head *out)
{
    switch (e) {
    case HPE_INVALID_METHOD:
        /* the pre-scan proved it is a token, so it is merely unknown ("get"
         * included: methods are case-sensitive) -> RFC 9110 §9.1 501 */
        out->error = "unknown method";
        return 501;
    case HPE_HEADER_OVERFLOW:
        out->error = "head larger than the parser's cap";
        return 431;
    default:
        out->error = http_errno_description(e);
        return 400;
    }
}

int pt_h1_parse_head(const char *buf, size_t head_len, pt_header *hdr_space, size_t max_headers,
                     pt_head *out)
{
    static const http_parser_settings settings = {
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
    };
    http_parser parser;
    prescan ps = {0};
    known_fields known = {0};
    cb_ctx ctx = {0};
    size_t i, done;
    int rc;

    *out = (pt_head){.headers = hdr_space, .content_length = -1};
    if (head_len > UINT32_MAX) {
        out->error = "head too large";
        return 431;
    }
    rc = prescan_head(buf, head_len, max_headers, &ps, &out->error);
    /* keep what is known for the log line even when failing */
    out->method_str = ps.method;
    out->target = ps.target;
    if (rc != 0)
        return rc;
    out->method = method_of(ps.method);
    out->http_major = ps.major;
    /* RFC 9110 §6.2: higher 1.x minors are answered as 1.1 */
    out->http_minor = ps.minor > 1 ? 1 : ps.minor;
    if (ps.major != 1) {
        out->error = "unsupported HTTP major version";
        return 505;
    }

    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &ctx;
    ctx.out = out;
    ctx.max_headers = max_headers;
    ctx.base = ctx.orig = buf;
    /* Debian's http-parser skips only SP after a Content-Length or
     * Transfer-Encoding value, yet HTAB is OWS too (RFC 9112 §5): when a
     * field line ends in HTAB, the parser reads a copy with that OWS as SP
     * (slices still point into buf). */
    char *copy = NULL;
    if (ps.tab_at_line_end) {
        if (!(copy = malloc(head_len))) {
            out->error = "out of memory";
            return 400;
        }
        memcpy(copy, buf, head_len);
        for (size_t k = 0; k + 1 < head_len; k++)
            if (copy[k + 1] == '\r')
                for (size_t j = k + 1; j > 0 && is_ows(copy[j - 1]); j--)
                    copy[j - 1] = ' ';
        ctx.base = copy;
    }
    done = http_parser_execute(&parser, &settings, ctx.base, head_len);
    free(copy);
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK) {
        if (ctx.too_many) {
            out->error = "too many header fields";
            return 431;
        }
        return map_parser_error(HTTP_PARSER_ERRNO(&parser), out);
    }
    /* Two parsers, one view: any disagreement is a smuggling attempt or a bug. */
    if (done != head_len || !ctx.headers_done || ctx.url.p != ps.target.p ||
        ctx.url.len != ps.target.len || out->nheaders != ps.nfields ||
        parser.http_major != ps.major || parser.http_minor != ps.minor) {
        out->error = "head parsers disagree";
        return 400;
    }
    for (i = 0; i < out->nheaders; i++) {
        pt_header *h = &out->headers[i];
        pt_str v = trim_ows(h->value, h->value_len);
        h->value = v.p;
        h->value_len = (uint32_t)v.len;
        note_known(&known, h);
    }

    rc = check_target(out);
    if (rc == 0)
        rc = check_host(out, &known);
    if (rc == 0)
        rc = check_content_length(out, &known);
    if (rc == 0 && known.nte > 0)
        rc = check_transfer_encoding(out);
    if (rc != 0)
        return rc;
    if (out->is_chunked != ((parser.flags & F_CHUNKED) != 0) ||
        (out->content_length >= 0) != ((parser.flags & F_CONTENTLENGTH) != 0) ||
        (out->content_length >= 0 && (uint64_t)out->content_length != parser.content_length)) {
        out->error = "head parsers disagree on framing";
        return 400;
    }
    if (known.nexpect > 0)
        check_expect(out);
    out->keep_alive = ctx.keep_alive;
    return 0;
}
