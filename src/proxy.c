/* proxy.c: HTTP/1.1 to an upstream server (a reverse proxy) as a codec of
 * the upstream machinery: the client's request re-framed with the collected
 * body's Content-Length, hop-by-hop fields removed and the X-Forwarded-* and
 * Forwarded (RFC 7239) fields added; the answer's head checked strictly for
 * framing (the upstream is trusted no more than a client), re-framed and
 * handed to the shared response side (cgi_resp.c in status_line mode). */
#include "first.h"
#include "proxy.h"
#include "handler.h"
#include "chunked.h"
#include "conf.h"
#include "conn.h"
#include "gw.h"
#include "tls.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- the request -------------------------------------------------------- */

typedef struct pbuf {
    char *p;
    size_t len, cap;
    bool failed;
} pbuf;

/* put's way when the block must grow (or has failed to) */
static void put_grow(pbuf *b, const char *p, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 2048;
        while (cap - b->len < n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Inline: with a literal's length the copy is a few moves, no call. */
static inline void put(pbuf *b, const char *p, size_t n)
{
    if (n > 0 && n <= b->cap - b->len && !b->failed) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
        return;
    }
    put_grow(b, p, n);
}

static void puts_(pbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

#define PUT_LIT(b, lit) put(b, lit, sizeof(lit) - 1)

/* "name: value" CRLF with one capacity check (a field per put was four) */
static void put_field(pbuf *b, const char *n, size_t nl, const char *v, size_t vl)
{
    size_t need = nl + vl + 4;
    if (b->failed || need > b->cap - b->len) {
        put(b, n, nl);
        put(b, ": ", 2);
        put(b, v, vl);
        put(b, "\r\n", 2);
        return;
    }
    char *o = b->p + b->len;
    memcpy(o, n, nl);
    o[nl] = ':';
    o[nl + 1] = ' ';
    if (vl)
        memcpy(o + nl + 2, v, vl);
    o[nl + 2 + vl] = '\r';
    o[nl + 3 + vl] = '\n';
    b->len += need;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The field names the proxy acts on, each recognised by one length and
 * first-letter test and at most one comparison, instead of a comparison
 * per name per field (the per-request cost that made proxy.c the profile's
 * top entry). */
enum {
    PH_OTHER,
    /* PH_HOST to PH_EXPECT: the request fields encode() replaces (a range) */
    PH_HOST,
    PH_CONTENT_LENGTH,
    PH_XFF,
    PH_XFPROTO,
    PH_XFHOST,
    PH_FORWARDED,
    PH_EXPECT,
    PH_REQUEST_ID,
    PH_AUTHORIZATION,
    PH_LOCATION,
    PH_UPGRADE,
    PH_TRANSFER_ENCODING,
    PH_CONNECTION,
    /* RFC 9110 §7.6.1: hop-by-hop by definition, with the two above */
    PH_HOP,
};

/* n is a token: the request's names were checked by its parser (h1_head.c,
 * nghttp2), the response's by parse_head before the lookup */
#define IS(lit, tok) (pt_tok_is(n, lit, sizeof(lit) - 1) ? (tok) : PH_OTHER)

static int name_tok(const char *n, size_t len)
{
    if (len == 0)
        return PH_OTHER;
    unsigned char c0 = pt_lower((unsigned char)n[0]);
    int t = PH_OTHER;
    switch (len) {
    case 2:
        t = IS("te", PH_HOP);
        break;
    case 4:
        t = IS("host", PH_HOST);
        break;
    case 6:
        t = IS("expect", PH_EXPECT);
        break;
    case 7:
        t = c0 == 'u' ? IS("upgrade", PH_UPGRADE) : IS("trailer", PH_HOP);
        break;
    case 8:
        t = IS("location", PH_LOCATION);
        break;
    case 9:
        t = IS("forwarded", PH_FORWARDED);
        break;
    case 10:
        if (c0 == 'c')
            t = IS("connection", PH_CONNECTION);
        else if (c0 == 'k')
            t = IS("keep-alive", PH_HOP);
        break;
    case 12:
        t = IS("x-request-id", PH_REQUEST_ID);
        break;
    case 13:
        t = IS("authorization", PH_AUTHORIZATION);
        break;
    case 14:
        t = IS("content-length", PH_CONTENT_LENGTH);
        break;
    case 15:
        t = IS("x-forwarded-for", PH_XFF);
        break;
    case 16:
        if (c0 == 'x')
            t = IS("x-forwarded-host", PH_XFHOST);
        break;
    case 17:
        t = c0 == 'x' ? IS("x-forwarded-proto", PH_XFPROTO)
                      : IS("transfer-encoding", PH_TRANSFER_ENCODING);
        break;
    default:
        break;
    }
    if (t != PH_OTHER)
        return t;
    /* Proxy-Connection, Proxy-Authorization, Proxy-Authenticate: ours */
    if (len >= 6 && c0 == 'p' && pt_tok_is(n, "proxy-", 6))
        return PH_HOP;
    return PH_OTHER;
}

#undef IS

static bool tok_hop(int tok)
{
    return tok == PH_HOP || tok == PH_CONNECTION || tok == PH_UPGRADE ||
           tok == PH_TRANSFER_ENCODING;
}

/* Does the comma-separated list v (a Connection value) name the field n? */
static bool list_has(const char *v, size_t vlen, const char *n, size_t nlen)
{
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows(v[e - 1]))
            e--;
        if (e - s == nlen && strncasecmp(v + s, n, nlen) == 0)
            return true;
    }
    return false;
}

/* Bit k set: the list v names a field k bytes long (bit 63: 63 or more). */
static uint64_t list_lens(const char *v, size_t vlen)
{
    uint64_t m = 0;
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows(v[e - 1]))
            e--;
        if (e > s)
            m |= (uint64_t)1 << PT_MIN(e - s, (size_t)63);
    }
    return m;
}

/* RFC 9110 §7.6.1: Connection, the fields it names, and the fields that
 * are hop-by-hop by definition never cross a proxy. tok: name_tok(n);
 * conn_lens: list_lens of every Connection field of hs (the lists are
 * scanned only for a name of a length they hold). */
static bool hop_by_hop(const pt_header *hs, size_t nh, uint64_t conn_lens, int tok, const char *n,
                       size_t nlen)
{
    if (tok_hop(tok))
        return true;
    if (!((conn_lens >> PT_MIN(nlen, (size_t)63)) & 1))
        return false;
    for (size_t i = 0; i < nh; i++)
        if (name_tok(hs[i].name, hs[i].name_len) == PH_CONNECTION &&
            list_has(hs[i].value, hs[i].value_len, n, nlen))
            return true;
    return false;
}

/* RFC 9110 §7.8: a request asks to switch protocols with an Upgrade field
 * and a Connection field naming it; an Upgrade in an HTTP/1.0 request is
 * ignored (its Connection semantics predate it). */
static bool wants_upgrade(const pt_header *hs, size_t nh, int major, int minor)
{
    bool up = false, conn = false;
    if (major != 1 || minor < 1)
        return false;
    for (size_t i = 0; i < nh; i++) {
        /* the two names are 7 and 10 bytes long: no lookup for the others */
        if (hs[i].name_len != 7 && hs[i].name_len != 10)
            continue;
        int t = name_tok(hs[i].name, hs[i].name_len);
        if (t == PH_UPGRADE && hs[i].value_len > 0)
            up = true;
        else if (t == PH_CONNECTION && list_has(hs[i].value, hs[i].value_len, "upgrade", 7))
            conn = true;
    }
    return up && conn;
}

/* A Forwarded parameter value: a token as is, anything else quoted (RFC
 * 7239 §4; an IPv6 address in brackets must be quoted, §6). */
static void put_fwd_value(pbuf *b, const char *v, size_t n)
{
    /* tchar (RFC 9110 §5.6.2) as a bit set over ASCII */
    static const uint64_t tchar[2] = {0x03ff6cfa00000000u, 0x57ffffffc7fffffeu};
    bool token = n > 0;
    for (size_t i = 0; i < n && token; i++) {
        unsigned char c = (unsigned char)v[i];
        token = c < 128 && (tchar[c >> 6] >> (c & 63)) & 1;
    }
    if (token) {
        put(b, v, n);
        return;
    }
    /* a quoted-string: the runs between the bytes to escape at once */
    put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] != '"' && v[i] != '\\')
            continue;
        put(b, v + run, i - run);
        put(b, "\\", 1);
        run = i;
    }
    put(b, v + run, n - run);
    put(b, "\"", 1);
}

/* The client's own fields named name, joined into one list field (RFC
 * 9110 §5.3), before the element a proxy appends; false: there were none. */
static bool client_list(pbuf *b, const pt_cgi_req *env, const char *name, int tok)
{
    bool any = false;
    for (size_t i = 0; i < env->nheaders; i++) {
        const pt_header *h = &env->headers[i];
        if (name_tok(h->name, h->name_len) != tok)
            continue;
        if (!any) {
            puts_(b, name);
            PUT_LIT(b, ": ");
        } else {
            PUT_LIT(b, ", ");
        }
        put(b, h->value, h->value_len);
        any = true;
    }
    return any;
}

/* the request fields whose classes encode() keeps between its two loops */
#define PX_TOKS 64

static int encode(const pt_cgi_req *env, const pt_backend *bk, uint64_t body_len, char **out,
                  size_t *len, bool *has_end)
{
    /* built in a block kept for the worker's life (grown as a head needs),
     * then copied out at its size: a fresh 2 KiB block per request went
     * through malloc's slow path, an exact one comes from its cache */
    static pbuf keep;
    pbuf b = {keep.p, 0, keep.cap, false};
    /* one look at the client's names: which of the lists it has, whether
     * it asks to Upgrade (wants_upgrade's test); the names' classes kept
     * for the copy below */
    const pt_header *host = NULL;
    bool has_xff = false, has_fwd = false, up = false, conn_up = false;
    uint64_t conn_lens = 0;
    unsigned char toks[PX_TOKS] = {0};
    for (size_t i = 0; i < env->nheaders; i++) {
        const pt_header *h = &env->headers[i];
        int t = name_tok(h->name, h->name_len);
        if (i < PX_TOKS)
            toks[i] = (unsigned char)t;
        if (t == PH_HOST && !host)
            host = h;
        has_xff |= t == PH_XFF;
        has_fwd |= t == PH_FORWARDED;
        up |= t == PH_UPGRADE && h->value_len > 0;
        if (t == PH_CONNECTION) {
            conn_lens |= list_lens(h->value, h->value_len);
            conn_up = conn_up || (env->upgrade && list_has(h->value, h->value_len, "upgrade", 7));
        }
    }
    /* a body still streaming cannot share the connection with a tunnel */
    bool upgrade = env->upgrade && !env->body_stream && up && conn_up && env->http_major == 1 &&
                   env->http_minor >= 1;
    pt_str hv = host ? (pt_str){host->value, host->value_len} : env->server_name;
    char num[24];

    /* the target as the client sent it (origin-form): the location's
     * prefix is passed unchanged, like nginx's proxy_pass without a URI;
     * the fixed texts between the values go in whole (a put each) */
    put(&b, env->method.p, env->method.len);
    put(&b, " ", 1);
    put(&b, env->request_uri.p, env->request_uri.len);
    PUT_LIT(&b, " HTTP/1.1\r\nHost: ");
    put(&b, hv.p, hv.len);

    /* X-Forwarded-For: the client's list, then the address we saw */
    if (has_xff) {
        PUT_LIT(&b, "\r\n");
        if (client_list(&b, env, "X-Forwarded-For", PH_XFF))
            PUT_LIT(&b, ", ");
        else
            PUT_LIT(&b, "X-Forwarded-For: ");
    } else {
        PUT_LIT(&b, "\r\nX-Forwarded-For: ");
    }
    put(&b, env->remote_addr.p, env->remote_addr.len);
    /* false: X-Forwarded-For alone, as nginx is usually told to send; the
     * client's other forwarding fields are dropped all the same (replaced,
     * never passed on, so that a client cannot forge them) */
    if (!bk->xff_only) {
        if (env->https)
            PUT_LIT(&b, "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ");
        else
            PUT_LIT(&b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ");
        put(&b, hv.p, hv.len);

        /* Forwarded (RFC 7239 §4): earlier proxies' elements, then ours */
        if (has_fwd) {
            PUT_LIT(&b, "\r\n");
            if (client_list(&b, env, "Forwarded", PH_FORWARDED))
                PUT_LIT(&b, ", for=");
            else
                PUT_LIT(&b, "Forwarded: for=");
        } else {
            PUT_LIT(&b, "\r\nForwarded: for=");
        }
        if (memchr(env->remote_addr.p, ':', env->remote_addr.len)) {
            char v6[80];
            int n = snprintf(v6, sizeof(v6), "[%.*s]",
                             (int)PT_MIN(env->remote_addr.len, (size_t)64), env->remote_addr.p);
            put_fwd_value(&b, v6, (size_t)n);
        } else {
            put_fwd_value(&b, env->remote_addr.p, env->remote_addr.len);
        }
        if (env->https)
            PUT_LIT(&b, ";proto=https;host=");
        else
            PUT_LIT(&b, ";proto=http;host=");
        put_fwd_value(&b, hv.p, hv.len);
    }
    PUT_LIT(&b, "\r\n");

    for (size_t i = 0; i < env->nheaders; i++) {
        const pt_header *h = &env->headers[i];
        const char *n = h->name;
        size_t nl = h->name_len;
        int t = i < PX_TOKS ? toks[i] : name_tok(n, nl);
        /* replaced above or below; Expect was answered here (the body is
         * complete); Upgrade goes on below when the location lets it */
        if ((t >= PH_HOST && t <= PH_EXPECT) ||
            hop_by_hop(env->headers, env->nheaders, conn_lens, t, n, nl))
            continue;
        if (t == PH_REQUEST_ID && env->request_id.len)
            continue;
        /* the password portico checked itself stays here unless the
         * location says pass_authorization (as for every gateway) */
        if (!env->pass_authorization && t == PH_AUTHORIZATION)
            continue;
        put_field(&b, n, nl, h->value, h->value_len);
    }
    /* the one hop-by-hop exchange that crosses: the answer may be a 101
     * and the connection a tunnel (tunnel.c) */
    if (upgrade && client_list(&b, env, "Upgrade", PH_UPGRADE))
        PUT_LIT(&b, "\r\nConnection: upgrade\r\n");
    /* RFC 9110 §7.6.3: after the client's own Via fields, in order */
    if (bk->via)
        PUT_LIT(&b, "Via: 1.1 portico\r\n");
    if (env->request_id.len) {
        PUT_LIT(&b, "X-Request-Id: ");
        put(&b, env->request_id.p, env->request_id.len);
        PUT_LIT(&b, "\r\n");
    }
    if (env->body_stream) {
        /* request_buffering = false: the body follows as it arrives, framed
         * as the client framed it (RFC 9112 §6.1, §6.2) */
        if (env->content_length >= 0) {
            PUT_LIT(&b, "Content-Length: ");
            put(&b, num, pt_u64_dec(num, (uint64_t)env->content_length));
            PUT_LIT(&b, "\r\n");
        } else {
            PUT_LIT(&b, "Transfer-Encoding: chunked\r\n");
        }
    } else if (body_len > 0 || env->content_length >= 0) {
        /* RFC 9112 §6.3: the collected body, however the client framed it */
        PUT_LIT(&b, "Content-Length: ");
        put(&b, num, pt_u64_dec(num, body_len));
        PUT_LIT(&b, "\r\n");
    }
    PUT_LIT(&b, "\r\n");
    /* a failed regrowth left the block as it was */
    keep.p = b.p;
    keep.cap = b.cap;
    if (b.failed || !(*out = malloc(b.len))) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(*out, b.p, b.len);
    *len = b.len;
    *has_end = !env->body_stream && body_len == 0;
    return 0;
}

/* ---- the response ------------------------------------------------------- */

#define PT_PX_MAX_INTERIM 16

enum { PX_HEAD, PX_CL, PX_CHUNKED, PX_CLOSE, PX_DONE, PX_TUNNEL };

typedef struct pdec {
    int state;
    bool is_head;      /* the request was HEAD: no body whatever the head says */
    bool keep;         /* HTTP/1.1 without Connection: close */
    bool via;          /* the backend's via: add ours to the answer */
    bool upgrade;      /* the request asked to Upgrade and went on with it: a 101 may come */
    unsigned interims; /* 1xx heads seen so far */
    /* 1xx heads (but 101) go on to the client: HTTP/1.1 and not turned
     * off (interim_responses); expected: the client's Expect, which portico
     * answered itself (a 100 from the upstream would repeat it) */
    bool pass_interim, expected;
    int status;        /* of the head just parsed */
    size_t max;        /* gw_header_max */
    const char *addr;  /* the server's address ("127.0.0.1:8000"), for Location */
    char self[300];    /* "http://host" of the client's view, for Location */
    pbuf in;           /* the head as received */
    pbuf out;          /* a 101's head as passed on; a rewritten Location */
    pt_cgi_resp *resp; /* the gateway's response parser: the final head goes there */
    uint64_t left;     /* PX_CL: body bytes to come */
    pt_chunked ch;
    char *cbuf; /* PX_CHUNKED: decoded bytes */
} pdec;

/* RFC 9110 §15.2: a proxy forwards 1xx answers, but never to an HTTP/1.0
 * client (it cannot tell them from the final one). They go out as the
 * HTTP/1.1 head that came; the framer makes them its protocol's (an HTTP/2
 * stream's HEADERS frame, h2_conn.c). */
static void pass_interim_bind(pdec *x, const pt_req *r)
{
    const pt_head *h = &r->head;
    x->pass_interim = r->loc && r->loc->interim_responses &&
                      (h->http_major > 1 || (h->http_major == 1 && h->http_minor >= 1));
    x->expected = h->expect_continue;
}

/* Does the 1xx just parsed go on to the client? Not a 100 when the
 * client's Expect was answered here (RFC 9110 §10.1.1: Expect is hop by
 * hop; the upstream never saw it). */
static bool interim_passes(const pdec *x)
{
    return x->pass_interim && !(x->status == 100 && x->expected);
}

static void dec_init(void *d)
{
    (void)d; /* zeroed by the caller */
}

static void dec_free(void *d)
{
    pdec *x = d;
    free(x->in.p);
    free(x->out.p);
    free(x->cbuf);
    x->in = (pbuf){0};
    x->out = (pbuf){0};
    x->cbuf = NULL;
}

static void dec_bind(void *d, pt_req *r, const pt_backend *b, size_t si)
{
    pdec *x = d;
    x->is_head = r->is_head || r->head.method == PT_M_HEAD;
    x->max = (size_t)r->conn->w->cfg->limits.gw_header_max;
    x->addr = b->servers[si].address;
    x->via = b->via;
    x->resp = r->gw ? &r->gw->resp : NULL;
    pass_interim_bind(x, r);
    x->upgrade =
        r->loc && r->loc->upgrade && !r->body_streaming &&
        wants_upgrade(r->head.headers, r->head.nheaders, r->head.http_major, r->head.http_minor);
    /* "scheme://Host", copied (the client may go while the head is read) */
    const char *host = "";
    size_t hl = 0;
    for (size_t i = 0; i < r->head.nheaders; i++) {
        const pt_header *h = &r->head.headers[i];
        if (h->name_len == 4 && pt_tok_is(h->name, "host", 4)) {
            host = h->value;
            hl = h->value_len;
            break;
        }
    }
    x->self[0] = '\0';
    if (hl > 0 && hl <= 250) {
        pt_tls_info ti;
        size_t sl = PT_SLEN("http://");
        if (pt_tls_info_get(&r->conn->sock, &ti))
            memcpy(x->self, "https://", ++sl);
        else
            memcpy(x->self, "http://", sl);
        memcpy(x->self + sl, host, hl);
        x->self[sl + hl] = '\0';
    }
}

static size_t fail(pt_upstream_ev *ev, const char *why)
{
    ev->type = PT_UEV_FAIL;
    ev->status = 502;
    ev->count = true;
    snprintf(ev->why, sizeof(ev->why), "invalid response header: %s", why);
    return 0;
}

/* A Location naming the server by the address we reached it at becomes
 * the client's view of us (nginx's proxy_redirect default, for a prefix
 * passed unchanged): "http://127.0.0.1:8000/x" -> "http://example.org/x". */
static void put_location(pdec *x, const char *v, size_t n)
{
    size_t al = strlen(x->addr);
    if (x->self[0] && n >= 7 + al && strncasecmp(v, "http://", 7) == 0 &&
        strncasecmp(v + 7, x->addr, al) == 0 && (n == 7 + al || v[7 + al] == '/')) {
        puts_(&x->out, x->self);
        put(&x->out, v + 7 + al, n - 7 - al);
        return;
    }
    put(&x->out, v, n);
}

static int oom(pt_upstream_ev *ev)
{
    ev->type = PT_UEV_FAIL;
    ev->status = 500;
    ev->count = false;
    snprintf(ev->why, sizeof(ev->why), "out of memory");
    return 0;
}

/* One field passed on: into the shared response parser's result (the
 * final answer: no second parse), or re-serialised for the client (a 101,
 * whose head tunnel.c sends as it is, or a 1xx passed on). */
static bool pass(pdec *x, bool ser, const char *n, size_t nl, const char *v, size_t vl)
{
    /* parse_head checked name and value as cgi_resp.c would */
    if (!ser)
        return pt_cgi_resp_field_checked(x->resp, n, nl, v, vl) != PT_CGI_RESP_ERROR;
    put(&x->out, n, nl);
    put(&x->out, ": ", 2);
    put(&x->out, v, vl);
    put(&x->out, "\r\n", 2);
    return true;
}

/* Why the field line l[0, n) (no line end, no leading whitespace) is
 * invalid, in the order of the checks: a CR anywhere, the colon, the
 * whitespace before it (RFC 9112 §5.1), the name, the value. */
static const char *line_error(const char *l, size_t n)
{
    if (memchr(l, '\r', n))
        return "bare CR";
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l)
        return "invalid header line";
    if (is_ows(colon[-1]))
        return "whitespace before colon";
    for (const char *c = l; c < colon; c++)
        if (!pt_tchar[(unsigned char)*c])
            return "invalid header name";
    return "invalid character in header value";
}

/* One scan of the upstream head finds each line's end, splits name and
 * value and classifies the name at once (a memchr per line, a second look
 * for "Connection:", a tchar loop and a value check each were one more
 * pass over the same bytes); parse_head() then reads the table. A field
 * line is valid when its name is 1*tchar, a colon follows, and its value
 * holds no CTL but HT (RFC 9110 §5.1, §5.5) up to CRLF or LF. */
#define PX_LINES 48
typedef struct px_line {
    uint32_t s, le;  /* the line's first byte, its LF */
    uint32_t vs, vl; /* the value, OWS trimmed */
    uint32_t nlen;
    int tok; /* name_tok() of the name */
} px_line;

enum { SL_FIELD, SL_END, SL_MORE, SL_BAD };

typedef struct px_head {
    size_t sl; /* the status line's LF */
    /* the first field lines (later ones are scanned again, through the
     * last entry) */
    px_line l[PX_LINES + 1];
    size_t nf;           /* field lines, all of them */
    size_t bad;          /* the first invalid line's index (SIZE_MAX when none) */
    const char *bad_why; /* why it is invalid */
    const char *conn;    /* the Connection field's value, as in the line */
    size_t conn_len;
    bool conn_repeated;
} px_head;

#if defined(__SSE2__)
/* Sixteen bytes at a time where the compiler targets SSE2 (every x86-64):
 * the bytes before the first one in a set, or 16. Each test is exact per
 * byte; the scalar loops after them decide the rest. */
static unsigned sse_first(__m128i bad)
{
    unsigned m = (unsigned)_mm_movemask_epi8(bad);
    return m ? (unsigned)__builtin_ctz(m) : 16;
}
#endif

/* The end of the field name that starts at p[i]: the first byte of p[i,
 * lim) that is no tchar, or lim. */
static size_t name_stop(const char *p, size_t i, size_t lim)
{
#if defined(__SSE2__)
    /* letters, digits and '-' (nearly every name) sixteen at a time; the
     * loop below takes the other tchars on */
    for (; i + 16 <= lim; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* x | 0x20 is a lower-case letter only for a letter; the signed
         * compare after the shift tests a range */
        __m128i lo = _mm_add_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8(0x1f));
        __m128i dg = _mm_add_epi8(x, _mm_set1_epi8(0x50));
        __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(lo, _mm_set1_epi8(-102)),
                                               _mm_cmplt_epi8(dg, _mm_set1_epi8(-118))),
                                  _mm_cmpeq_epi8(x, _mm_set1_epi8('-')));
        unsigned k = sse_first(_mm_xor_si128(ok, _mm_set1_epi8(-1)));
        if (k < 16) {
            i += k;
            break;
        }
    }
#endif
    while (i < lim && pt_tchar[(unsigned char)p[i]])
        i++;
    return i;
}

/* The first byte of p[i, lim) that no field value holds (a CTL but HT, or
 * DEL: the line's own CR or LF ends a valid one), or lim. A word of eight
 * with no byte below 0x20 and none equal to 0x7f is skipped at once; in
 * one that may hold such a byte, the candidates are looked at in order
 * (the lowest flag of the borrow trick is exact, the higher ones are
 * checked against the table: an HT passes). */
static size_t value_stop(const char *p, size_t i, size_t lim)
{
    static const bool bad[256] = {[0 ... 8] = true, [10 ... 0x1f] = true, [0x7f] = true};
#if defined(__SSE2__)
    for (; i + 16 <= lim; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
        __m128i no = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('\t')), ctl),
                                  _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f)));
        unsigned k = sse_first(no);
        if (k < 16)
            return i + k;
    }
#endif
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    for (; i + 8 <= lim; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t del = w ^ (ones * 0x7f);
        uint64_t m = (((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs;
        for (; m; m &= m - 1) {
            size_t k = i + ((size_t)__builtin_ctzll(m) >> 3);
            if (bad[(unsigned char)p[k]])
                return k;
        }
    }
    for (; i < lim; i++)
        if (bad[(unsigned char)p[i]])
            return i;
    return lim;
}

/* The line that starts at s (below lim): SL_FIELD (a valid field line, *l
 * filled), SL_END (the empty line), SL_BAD (an invalid line: l->le only)
 * or SL_MORE (no LF before lim). */
__attribute__((always_inline)) static inline int scan_line(const char *p, size_t s, size_t lim,
                                                           px_line *l)
{
    size_t i = name_stop(p, s, lim);
    if (i < lim && i > s && p[i] == ':') {
        /* OWS is no CTL: the value's scan starts at the colon, its
         * trimming is bounded by the CTL found */
        size_t j = value_stop(p, i + 1, lim), vs = i + 1;
        while (vs < j && is_ows(p[vs]))
            vs++;
        /* the value's first CTL is its line's end: CRLF or LF */
        size_t le = j < lim && p[j] == '\r' ? j + 1 : j;
        if (le < lim && p[le] == '\n') {
            size_t ve = j;
            while (ve > vs && is_ows(p[ve - 1]))
                ve--;
            *l = (px_line){(uint32_t)s,         (uint32_t)le,      (uint32_t)vs,
                           (uint32_t)(ve - vs), (uint32_t)(i - s), name_tok(p + s, i - s)};
            return SL_FIELD;
        }
        i = j;
    } else if (i == s && i < lim &&
               (p[s] == '\n' || (p[s] == '\r' && s + 1 < lim && p[s + 1] == '\n'))) {
        l->le = (uint32_t)(p[s] == '\n' ? s : s + 1);
        return SL_END;
    }
    if (i >= lim)
        return SL_MORE;
    const char *lf = memchr(p + i, '\n', lim - i);
    if (!lf)
        return SL_MORE;
    l->le = (uint32_t)(lf - p);
    return SL_BAD;
}

/* The length of the head at the start of p (through its empty line), or 0
 * when it does not end within lim bytes (or starts with an empty line:
 * the slow path says why that is wrong); h gets the lines, the first
 * invalid one and the Connection field. */
static size_t scan_head(const char *p, size_t lim, px_head *h)
{
    const char *lf = memchr(p, '\n', lim);
    if (!lf || lf == p || (lf == p + 1 && p[0] == '\r'))
        return 0;
    h->sl = (size_t)(lf - p);
    h->nf = 0;
    h->bad = SIZE_MAX;
    h->conn = NULL;
    h->conn_repeated = false;
    for (size_t s = h->sl + 1;; h->nf++) {
        if (s >= lim)
            return 0;
        px_line *l = &h->l[PT_MIN(h->nf, (size_t)PX_LINES)];
        int rc = scan_line(p, s, lim, l);
        if (rc == SL_MORE)
            return 0;
        if (rc == SL_END)
            return l->le + 1;
        size_t le = l->le;
        /* Connection names the fields to drop, wherever it stands; an
         * invalid line that reads "Connection:" counts too (the repeat is
         * the error then, as it is whatever the order) */
        if (rc == SL_BAD || l->tok == PH_CONNECTION) {
            /* the line without its line end, as the checks below read it */
            size_t e = le > s && p[le - 1] == '\r' ? le - 1 : le;
            if (rc == SL_BAD && h->bad == SIZE_MAX) {
                h->bad = h->nf;
                /* RFC 9112 §5.2, §2.2: no obs-fold, no bare CR from an upstream */
                h->bad_why = is_ows(p[s]) ? "obs-fold" : line_error(p + s, e - s);
            }
            if (e - s > 11 && p[s + 10] == ':' && strncasecmp(p + s, "Connection:", 11) == 0) {
                h->conn_repeated |= h->conn != NULL;
                h->conn = p + s + 11;
                h->conn_len = e - s - 11;
            }
        }
        s = le + 1;
    }
}

/* The whole head is p[0, n): check the framing (RFC 9112 §6.3) and hand
 * the head on: the final answer's fields go straight into the gateway's
 * pt_cgi_resp (checked there as any program's head is), a 101's are
 * re-serialised, as is a 1xx that goes on to the client. Returns 0, or
 * fail()'s value with ev set; *interim: a 1xx (passed on when
 * interim_passes()). */
static int parse_head(pdec *x, const char *p, size_t n, const px_head *h, pt_upstream_ev *ev,
                      bool *interim)
{
    size_t ll = h->sl;
    if (ll > 0 && p[ll - 1] == '\r')
        ll--;
    if (ll < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
        (ll > 12 && p[12] != ' '))
        return (int)fail(ev, "invalid status line");
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    /* RFC 9110 §15.2.2: a 101 answers an Upgrade request only; after it
     * the connection speaks the new protocol (PX_TUNNEL) */
    bool tunnel = status == 101;
    if (tunnel && !x->upgrade)
        return (int)fail(ev, "101 Switching Protocols to a request without Upgrade");
    *interim = status < 200 && !tunnel;
    x->status = status;
    /* a 1xx passed on is re-serialised like a 101; one that is not is
     * checked and skipped: nothing of it is kept */
    bool relay = *interim && interim_passes(x);
    bool ser = tunnel || relay;
    bool keep_fields = !*interim || relay;
    bool has_upgrade = false;
    x->keep = p[7] == '1';
    if (ser) {
        x->out.len = 0;
        if (relay) {
            /* passed on as our own HTTP/1.1 answer (RFC 9110 §6.2) */
            PUT_LIT(&x->out, "HTTP/1.1");
            put(&x->out, p + 8, ll - 8);
        } else {
            put(&x->out, p, ll);
        }
        put(&x->out, "\r\n", 2);
    } else if (keep_fields) {
        if (!x->resp)
            return (int)fail(ev, "no response parser");
        pt_cgi_resp_reset(x->resp);
        if (pt_cgi_resp_status(x->resp, p, ll) == PT_CGI_RESP_ERROR)
            return (int)fail(ev, x->resp->error);
    }

    bool has_cl = false, has_te = false;
    uint64_t cl = 0;
    if (h->conn_repeated)
        return (int)fail(ev, "repeated Connection");
    const char *conn = h->conn;
    size_t conn_len = h->conn_len;
    /* the lengths of the names Connection lists: a field of another
     * length is not among them (no list scan per field, nor for "close"
     * in "keep-alive") */
    uint64_t conn_lens = conn ? list_lens(conn, conn_len) : 0;
    if ((conn_lens >> 5) & 1 && list_has(conn, conn_len, "close", 5))
        x->keep = false;
    for (size_t k = 0, at = h->sl + 1; k < h->nf; k++) {
        if (k == h->bad)
            return (int)fail(ev, h->bad_why);
        px_line l;
        if (k < PX_LINES)
            l = h->l[k];
        else if (scan_line(p, at, n, &l) != SL_FIELD) /* valid: scan_head saw it */
            return (int)fail(ev, "invalid header line");
        at = l.le + 1;
        size_t s = l.s, nlen = l.nlen, vs = l.vs, vlen = l.vl;
        int t = l.tok;
        const char *name = p + s, *v = p + vs;
        if (t == PH_OTHER) {
            /* a field the proxy has no business with (most of them): what
             * the general path below does for it, in short */
            if (((conn_lens >> PT_MIN(nlen, (size_t)63)) & 1 &&
                 list_has(conn, conn_len, name, nlen)) ||
                !keep_fields)
                continue;
            if (!ser) {
                if (pt_cgi_resp_line_checked(x->resp, name, nlen, vs - s, vlen) ==
                    PT_CGI_RESP_ERROR)
                    return (int)fail(ev, x->resp->error);
            } else if (!pass(x, ser, name, nlen, v, vlen)) {
                return (int)fail(ev, x->resp->error);
            }
            continue;
        }
        if (t == PH_CONTENT_LENGTH) {
            if (has_cl)
                return (int)fail(ev, "repeated Content-Length");
            if (vlen == 0 || pt_parse_u64(v, vlen, &cl) != 0 || cl > (uint64_t)INT64_MAX)
                return (int)fail(ev, "invalid Content-Length");
            has_cl = true;
        } else if (t == PH_TRANSFER_ENCODING) {
            /* only chunked is decoded: anything else would leave the
             * body's end to a guess (RFC 9112 §6.3 item 4) */
            if (has_te)
                return (int)fail(ev, "repeated Transfer-Encoding");
            if (!pt_str_ieq(v, vlen, "chunked"))
                return (int)fail(ev, "Transfer-Encoding other than chunked");
            has_te = true;
            continue;
        }
        if (tunnel && t == PH_UPGRADE) {
            has_upgrade = true; /* the protocol switched to: the client must see it */
        } else if (ser && t == PH_CONTENT_LENGTH) {
            continue; /* RFC 9110 §8.6: none in a 1xx; what follows is not a body */
        } else if (tok_hop(t) || ((conn_lens >> PT_MIN(nlen, (size_t)63)) & 1 &&
                                  list_has(conn, conn_len, name, nlen))) {
            continue;
        }
        if (!keep_fields)
            continue;
        if (t == PH_LOCATION && !ser) {
            /* the rewritten value, in x->out (unused for a final answer) */
            x->out.len = 0;
            put_location(x, v, vlen);
            if (x->out.failed)
                return oom(ev);
            v = x->out.p;
            vlen = x->out.len;
        } else if (t == PH_LOCATION) {
            put(&x->out, name, nlen);
            put(&x->out, ": ", 2);
            put_location(x, v, vlen);
            put(&x->out, "\r\n", 2);
            continue;
        }
        if (!ser && v == p + vs) {
            /* the final answer's field as it lies in the line: one copy */
            if (pt_cgi_resp_line_checked(x->resp, name, nlen, vs - s, vlen) == PT_CGI_RESP_ERROR)
                return (int)fail(ev, x->resp->error);
        } else if (!pass(x, ser, name, nlen, v, vlen)) {
            return (int)fail(ev, x->resp->error);
        }
    }
    if (has_cl && has_te)
        return (int)fail(ev, "both Content-Length and Transfer-Encoding");
    if (tunnel && !has_upgrade)
        return (int)fail(ev, "101 Switching Protocols without Upgrade");
    if (*interim) {
        if (relay)
            put(&x->out, "\r\n", 2);
        return x->out.failed ? oom(ev) : 1;
    }
    if (tunnel)
        put(&x->out, "Connection: upgrade\r\n", PT_SLEN("Connection: upgrade\r\n"));
    if (x->via && !pass(x, tunnel, "Via", 3, "1.1 portico", 11))
        return (int)fail(ev, x->resp->error);
    if (tunnel)
        put(&x->out, "\r\n", 2);
    else if (pt_cgi_resp_end(x->resp) == PT_CGI_RESP_ERROR)
        return (int)fail(ev, x->resp->error);
    if (x->out.failed)
        return oom(ev);
    if (tunnel) {
        x->state = PX_TUNNEL;
        x->keep = false;
        return 1;
    }
    /* RFC 9112 §6.3 items 1-2: no body whatever the head says */
    if (x->is_head || status == 204 || status == 304)
        x->state = PX_DONE;
    else if (has_te)
        x->state = PX_CHUNKED;
    else if (has_cl)
        x->state = cl ? PX_CL : PX_DONE;
    else
        x->state = PX_CLOSE;
    if (x->state == PX_CLOSE)
        x->keep = false;
    x->left = cl;
    if (x->state == PX_CHUNKED) {
        pt_chunked_init(&x->ch, UINT64_MAX, x->max);
        if (!(x->cbuf = malloc(65536)))
            return oom(ev);
    }
    return 1;
}

/* The head parsed: what the upstream machinery is told. */
static size_t head_out(pdec *x, pt_upstream_ev *ev, size_t used)
{
    /* a 101: the bytes after its head are the new protocol's */
    if (x->state == PX_TUNNEL) {
        ev->type = PT_UEV_TUNNEL;
        ev->data = x->out.p;
        ev->len = x->out.len;
    } else {
        /* the head is in the gateway's parser already: no bytes */
        ev->type = PT_UEV_OUT;
        ev->head = true;
        ev->data = "";
        ev->len = 0;
    }
    ev->end_after = x->state == PX_DONE;
    return used;
}

/* A 1xx for the client: its re-serialised head (the final one follows). */
static size_t interim_out(pdec *x, pt_upstream_ev *ev, size_t used)
{
    ev->type = PT_UEV_INTERIM;
    ev->data = x->out.p;
    ev->len = x->out.len;
    return used;
}

static size_t feed_head(pdec *x, const char *p, size_t n, pt_upstream_ev *ev)
{
    size_t used = 0;
    /* the usual case: whole heads at the start of what was read, parsed
     * where they lie (no copy, no second look for the line ends) */
    while (x->in.len == 0 && used < n) {
        px_head h;
        size_t end = scan_head(p + used, PT_MIN(n - used, x->max), &h);
        if (end == 0)
            break;
        bool interim = false;
        if (parse_head(x, p + used, end, &h, ev, &interim) == 0)
            return 0;
        used += end;
        if (!interim)
            return head_out(x, ev, used);
        /* RFC 9110 §15.2: 1xx (100 Continue, 103 Early Hints) precede the
         * answer; an endless stream of them is not one */
        if (++x->interims > PT_PX_MAX_INTERIM)
            return fail(ev, "too many interim responses");
        if (interim_passes(x))
            return interim_out(x, ev, used);
    }
    /* a head in pieces: collected up to its end, one line at a time */
    while (used < n) {
        const char *lf = memchr(p + used, '\n', n - used);
        size_t take = lf ? (size_t)(lf - (p + used)) + 1 : n - used;
        if (x->in.len + take > x->max)
            return fail(ev, "too large (gw_header_max)");
        size_t before = x->in.len;
        put(&x->in, p + used, take);
        used += take;
        if (x->in.failed)
            break; /* out of memory: answered below */
        if (!lf)
            break;
        /* the line just ended is empty: the head is complete */
        size_t ls = before;
        while (ls > 0 && x->in.p[ls - 1] != '\n')
            ls--;
        size_t lend = x->in.len - 1;
        if (lend > ls && x->in.p[lend - 1] == '\r')
            lend--;
        if (lend != ls)
            continue;
        if (ls == 0)
            return fail(ev, "invalid status line");
        bool interim = false;
        px_head h;
        if (scan_head(x->in.p, x->in.len, &h) != x->in.len)
            return fail(ev, "invalid header line"); /* not reached: the head is complete */
        if (parse_head(x, x->in.p, x->in.len, &h, ev, &interim) == 0)
            return 0;
        if (interim) {
            if (++x->interims > PT_PX_MAX_INTERIM)
                return fail(ev, "too many interim responses");
            x->in.len = 0;
            if (interim_passes(x))
                return interim_out(x, ev, used);
            continue;
        }
        return head_out(x, ev, used);
    }
    if (x->in.failed)
        return fail(ev, "out of memory");
    ev->type = PT_UEV_NONE;
    return used;
}

static size_t feed(void *d, const char *p, size_t n, pt_upstream_ev *ev)
{
    pdec *x = d;
    ev->type = PT_UEV_NONE;
    switch (x->state) {
    case PX_HEAD:
        return feed_head(x, p, n, ev);
    case PX_CL: {
        size_t k = (size_t)PT_MIN((uint64_t)n, x->left);
        x->left -= k;
        ev->type = PT_UEV_OUT;
        ev->data = p;
        ev->len = k;
        if (x->left == 0) {
            x->state = PX_DONE;
            ev->end_after = true;
        }
        return k;
    }
    case PX_CHUNKED: {
        size_t used = 0, got = 0;
        size_t take = PT_MIN(n, (size_t)65536);
        pt_chunk_rc rc = pt_chunked_decode(&x->ch, p, take, &used, x->cbuf, &got);
        if (rc == PT_CHUNK_BAD || rc == PT_CHUNK_TOO_LARGE) {
            ev->type = PT_UEV_FAIL;
            ev->status = 502;
            ev->count = true;
            snprintf(ev->why, sizeof(ev->why), "invalid chunked response body");
            return 0;
        }
        ev->type = PT_UEV_OUT;
        ev->data = x->cbuf;
        ev->len = got;
        if (rc == PT_CHUNK_DONE) {
            x->state = PX_DONE;
            ev->end_after = true;
        }
        return used;
    }
    case PX_CLOSE:
        ev->type = PT_UEV_OUT;
        ev->data = p;
        ev->len = n;
        return n;
    default:
        /* bytes after the end: upstream_conn.c drops the connection */
        ev->type = PT_UEV_FAIL;
        ev->status = 502;
        ev->count = true;
        snprintf(ev->why, sizeof(ev->why), "bytes after the end of the response");
        return 0;
    }
}

static bool eof_ok(void *d)
{
    return ((pdec *)d)->state == PX_CLOSE;
}

static bool reusable(void *d, const pt_backend *b)
{
    (void)b;
    pdec *x = d;
    return x->state == PX_DONE && x->keep;
}

const pt_upstream_codec pt_proxy_codec = {
    .name = "proxy",
    .eof_ends = true,
    .status_line = true,
    .no_meta_vars = true,
    .dec_size = sizeof(pdec),
    .too_big = "the request head is too large",
    .encode = encode,
    .dec_init = dec_init,
    .dec_free = dec_free,
    .bind = dec_bind,
    .eof_ok = eof_ok,
    .feed = feed,
    .reusable = reusable,
};

void pt_proxy_start(pt_req *r)
{
    pt_upstream_conn_start(r, &pt_proxy_codec);
}

const pt_handler pt_proxy_handler = {
    .name = "proxy",
    .kind = PT_H_PROXY,
    .flags =
        PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY | PT_HF_STREAM_CHUNKED,
    .start = pt_proxy_start,
    .worker = &pt_upstream_conn_worker,
};
