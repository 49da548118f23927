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
#include "tls.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the request -------------------------------------------------------- */

typedef struct pbuf {
    char *p;
    size_t len, cap;
    bool failed;
} pbuf;

static void put(pbuf *b, const char *p, size_t n)
{
    if (b->failed)
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

static void puts_(pbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
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

/* RFC 9110 §7.6.1: Connection, the fields it names, and the fields that
 * are hop-by-hop by definition never cross a proxy. */
static bool hop_by_hop(const pt_header *hs, size_t nh, const char *n, size_t nlen)
{
    static const char *const fixed[] = {"Connection", "Keep-Alive",        "TE",
                                        "Trailer",    "Transfer-Encoding", "Upgrade"};
    for (size_t i = 0; i < PT_ARRAY_LEN(fixed); i++)
        if (pt_str_ieq(n, nlen, fixed[i]))
            return true;
    /* Proxy-Connection, Proxy-Authorization, Proxy-Authenticate: ours */
    if (nlen >= 6 && strncasecmp(n, "Proxy-", 6) == 0)
        return true;
    for (size_t i = 0; i < nh; i++)
        if (pt_str_ieq(hs[i].name, hs[i].name_len, "Connection") &&
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
        if (pt_str_ieq(hs[i].name, hs[i].name_len, "Upgrade") && hs[i].value_len > 0)
            up = true;
        else if (pt_str_ieq(hs[i].name, hs[i].name_len, "Connection") &&
                 list_has(hs[i].value, hs[i].value_len, "upgrade", 7))
            conn = true;
    }
    return up && conn;
}

static const pt_header *find(const pt_cgi_req *env, const char *name)
{
    for (size_t i = 0; i < env->nheaders; i++)
        if (pt_str_ieq(env->headers[i].name, env->headers[i].name_len, name))
            return &env->headers[i];
    return NULL;
}

/* A Forwarded parameter value: a token as is, anything else quoted (RFC
 * 7239 §4; an IPv6 address in brackets must be quoted, §6). */
static void put_fwd_value(pbuf *b, const char *v, size_t n)
{
    bool token = n > 0;
    for (size_t i = 0; i < n && token; i++)
        token = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
                (v[i] >= '0' && v[i] <= '9') || strchr("!#$%&'*+-.^_`|~", v[i]);
    if (token) {
        put(b, v, n);
        return;
    }
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            put(b, "\\", 1);
        put(b, v + i, 1);
    }
    put(b, "\"", 1);
}

/* The client's own fields named name, joined into one list field (RFC
 * 9110 §5.3), before the element a proxy appends; false: there were none. */
static bool client_list(pbuf *b, const pt_cgi_req *env, const char *name)
{
    bool any = false;
    for (size_t i = 0; i < env->nheaders; i++) {
        const pt_header *h = &env->headers[i];
        if (!pt_str_ieq(h->name, h->name_len, name))
            continue;
        if (!any) {
            puts_(b, name);
            puts_(b, ": ");
        } else {
            puts_(b, ", ");
        }
        put(b, h->value, h->value_len);
        any = true;
    }
    return any;
}

static int encode(const pt_cgi_req *env, const pt_backend *bk, uint64_t body_len, char **out,
                  size_t *len, bool *has_end)
{
    pbuf b = {0};
    const char *proto = env->https ? "https" : "http";
    const pt_header *host = find(env, "Host");
    /* a body still streaming cannot share the connection with a tunnel */
    bool upgrade = env->upgrade && !env->body_stream &&
                   wants_upgrade(env->headers, env->nheaders, env->http_major, env->http_minor);
    pt_str hv = host ? (pt_str){host->value, host->value_len} : env->server_name;
    char num[24];

    /* the target as the client sent it (origin-form): the location's
     * prefix is passed unchanged, like nginx's proxy_pass without a URI */
    put(&b, env->method.p, env->method.len);
    put(&b, " ", 1);
    put(&b, env->request_uri.p, env->request_uri.len);
    puts_(&b, " HTTP/1.1\r\nHost: ");
    put(&b, hv.p, hv.len);
    puts_(&b, "\r\n");

    /* X-Forwarded-For: the client's list, then the address we saw */
    puts_(&b, client_list(&b, env, "X-Forwarded-For") ? ", " : "X-Forwarded-For: ");
    put(&b, env->remote_addr.p, env->remote_addr.len);
    puts_(&b, "\r\nX-Forwarded-Proto: ");
    puts_(&b, proto);
    puts_(&b, "\r\nX-Forwarded-Host: ");
    put(&b, hv.p, hv.len);
    puts_(&b, "\r\n");

    /* Forwarded (RFC 7239 §4): earlier proxies' elements, then ours */
    puts_(&b, client_list(&b, env, "Forwarded") ? ", for=" : "Forwarded: for=");
    if (memchr(env->remote_addr.p, ':', env->remote_addr.len)) {
        char v6[80];
        int n = snprintf(v6, sizeof(v6), "[%.*s]", (int)PT_MIN(env->remote_addr.len, (size_t)64),
                         env->remote_addr.p);
        put_fwd_value(&b, v6, (size_t)n);
    } else {
        put_fwd_value(&b, env->remote_addr.p, env->remote_addr.len);
    }
    puts_(&b, ";proto=");
    puts_(&b, proto);
    puts_(&b, ";host=");
    put_fwd_value(&b, hv.p, hv.len);
    puts_(&b, "\r\n");

    for (size_t i = 0; i < env->nheaders; i++) {
        const pt_header *h = &env->headers[i];
        const char *n = h->name;
        size_t nl = h->name_len;
        /* replaced above or below; Expect was answered here (the body is
         * complete); Upgrade goes on below when the location lets it */
        if (pt_str_ieq(n, nl, "Host") || pt_str_ieq(n, nl, "Content-Length") ||
            pt_str_ieq(n, nl, "X-Forwarded-For") || pt_str_ieq(n, nl, "X-Forwarded-Proto") ||
            pt_str_ieq(n, nl, "X-Forwarded-Host") || pt_str_ieq(n, nl, "Forwarded") ||
            pt_str_ieq(n, nl, "Expect") || hop_by_hop(env->headers, env->nheaders, n, nl))
            continue;
        if (pt_str_ieq(n, nl, "X-Request-Id") && env->request_id.len)
            continue;
        /* the password portico checked itself stays here unless the
         * location says pass_authorization (as for every gateway) */
        if (!env->pass_authorization && pt_str_ieq(n, nl, "Authorization"))
            continue;
        put(&b, n, nl);
        puts_(&b, ": ");
        put(&b, h->value, h->value_len);
        puts_(&b, "\r\n");
    }
    /* the one hop-by-hop exchange that crosses: the answer may be a 101
     * and the connection a tunnel (tunnel.c) */
    if (upgrade && client_list(&b, env, "Upgrade"))
        puts_(&b, "\r\nConnection: upgrade\r\n");
    /* RFC 9110 §7.6.3: after the client's own Via fields, in order */
    if (bk->via)
        puts_(&b, "Via: 1.1 portico\r\n");
    if (env->request_id.len) {
        puts_(&b, "X-Request-Id: ");
        put(&b, env->request_id.p, env->request_id.len);
        puts_(&b, "\r\n");
    }
    if (env->body_stream) {
        /* request_buffering = false: the body follows as it arrives, framed
         * as the client framed it (RFC 9112 §6.1, §6.2) */
        if (env->content_length >= 0) {
            snprintf(num, sizeof(num), "%" PRId64, env->content_length);
            puts_(&b, "Content-Length: ");
            puts_(&b, num);
            puts_(&b, "\r\n");
        } else {
            puts_(&b, "Transfer-Encoding: chunked\r\n");
        }
    } else if (body_len > 0 || env->content_length >= 0) {
        /* RFC 9112 §6.3: the collected body, however the client framed it */
        snprintf(num, sizeof(num), "%" PRIu64, body_len);
        puts_(&b, "Content-Length: ");
        puts_(&b, num);
        puts_(&b, "\r\n");
    }
    puts_(&b, "\r\n");
    if (b.failed) {
        free(b.p);
        errno = ENOMEM;
        return -1;
    }
    *out = b.p;
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
    unsigned interims; /* 1xx heads skipped so far */
    size_t max;        /* gw_header_max */
    const char *addr;  /* the server's address ("127.0.0.1:8000"), for Location */
    char self[300];    /* "http://host" of the client's view, for Location */
    pbuf in;           /* the head as received */
    pbuf out;          /* the head as passed on */
    uint64_t left;     /* PX_CL: body bytes to come */
    pt_chunked ch;
    char *cbuf; /* PX_CHUNKED: decoded bytes */
} pdec;

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
    x->upgrade =
        r->loc && r->loc->upgrade && !r->body_streaming &&
        wants_upgrade(r->head.headers, r->head.nheaders, r->head.http_major, r->head.http_minor);
    pt_tls_info ti;
    const char *host = "";
    size_t hl = 0;
    for (size_t i = 0; i < r->head.nheaders; i++) {
        const pt_header *h = &r->head.headers[i];
        if (pt_str_ieq(h->name, h->name_len, "Host")) {
            host = h->value;
            hl = h->value_len;
            break;
        }
    }
    snprintf(x->self, sizeof(x->self), "%s://%.*s",
             pt_tls_info_get(&r->conn->sock, &ti) ? "https" : "http", (int)PT_MIN(hl, (size_t)250),
             host);
    if (hl == 0 || hl > 250)
        x->self[0] = '\0';
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

/* The whole head is in x->in: check the framing (RFC 9112 §6.3) and build
 * the head passed on. Returns 0, or fail()'s value with ev set; *interim:
 * a 1xx to skip. */
static int parse_head(pdec *x, pt_upstream_ev *ev, bool *interim)
{
    const char *p = x->in.p;
    size_t n = x->in.len;
    const char *nl = memchr(p, '\n', n);
    size_t ll = (size_t)(nl - p);
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
    bool has_upgrade = false;
    x->keep = p[7] == '1';
    x->out.len = 0;
    put(&x->out, p, ll);
    put(&x->out, "\r\n", 2);

    bool has_cl = false, has_te = false;
    uint64_t cl = 0;
    const char *conn = NULL;
    size_t conn_len = 0;
    /* first pass: Connection names the fields to drop */
    for (size_t i = (size_t)(nl - p) + 1; i < n;) {
        const char *e = memchr(p + i, '\n', n - i);
        size_t s = i, le = (size_t)(e - p);
        i = le + 1;
        if (le > s && p[le - 1] == '\r')
            le--;
        if (le == s)
            break;
        if (le - s > 11 && strncasecmp(p + s, "Connection:", 11) == 0) {
            if (conn)
                return (int)fail(ev, "repeated Connection");
            conn = p + s + 11;
            conn_len = le - s - 11;
        }
    }
    if (conn && list_has(conn, conn_len, "close", 5))
        x->keep = false;
    for (size_t i = (size_t)(nl - p) + 1; i < n;) {
        const char *e = memchr(p + i, '\n', n - i);
        size_t s = i, le = (size_t)(e - p);
        i = le + 1;
        if (le > s && p[le - 1] == '\r')
            le--;
        if (le == s)
            break;
        /* RFC 9112 §5.2, §2.2: no obs-fold, no bare CR from an upstream */
        if (is_ows(p[s]))
            return (int)fail(ev, "obs-fold");
        if (memchr(p + s, '\r', le - s))
            return (int)fail(ev, "bare CR");
        const char *colon = memchr(p + s, ':', le - s);
        if (!colon || colon == p + s)
            return (int)fail(ev, "invalid header line");
        size_t nlen = (size_t)(colon - (p + s));
        size_t vs = nlen + 1 + s, ve = le;
        while (vs < ve && is_ows(p[vs]))
            vs++;
        while (ve > vs && is_ows(p[ve - 1]))
            ve--;
        const char *name = p + s, *v = p + vs;
        size_t vlen = ve - vs;
        if (pt_str_ieq(name, nlen, "Content-Length")) {
            if (has_cl)
                return (int)fail(ev, "repeated Content-Length");
            if (vlen == 0 || pt_parse_u64(v, vlen, &cl) != 0 || cl > (uint64_t)INT64_MAX)
                return (int)fail(ev, "invalid Content-Length");
            has_cl = true;
        } else if (pt_str_ieq(name, nlen, "Transfer-Encoding")) {
            /* only chunked is decoded: anything else would leave the
             * body's end to a guess (RFC 9112 §6.3 item 4) */
            if (has_te)
                return (int)fail(ev, "repeated Transfer-Encoding");
            if (!pt_str_ieq(v, vlen, "chunked"))
                return (int)fail(ev, "Transfer-Encoding other than chunked");
            has_te = true;
            continue;
        }
        if (tunnel && pt_str_ieq(name, nlen, "Upgrade")) {
            has_upgrade = true; /* the protocol switched to: the client must see it */
        } else if (tunnel && pt_str_ieq(name, nlen, "Content-Length")) {
            continue; /* RFC 9110 §8.6: none in a 1xx; what follows is not a body */
        } else if (hop_by_hop(NULL, 0, name, nlen) ||
                   (conn && list_has(conn, conn_len, name, nlen))) {
            continue;
        }
        put(&x->out, name, nlen);
        put(&x->out, ": ", 2);
        if (pt_str_ieq(name, nlen, "Location"))
            put_location(x, v, vlen);
        else
            put(&x->out, v, vlen);
        put(&x->out, "\r\n", 2);
    }
    if (has_cl && has_te)
        return (int)fail(ev, "both Content-Length and Transfer-Encoding");
    if (tunnel && !has_upgrade)
        return (int)fail(ev, "101 Switching Protocols without Upgrade");
    if (tunnel)
        put(&x->out, "Connection: upgrade\r\n", PT_SLEN("Connection: upgrade\r\n"));
    if (x->via)
        put(&x->out, "Via: 1.1 portico\r\n", PT_SLEN("Via: 1.1 portico\r\n"));
    put(&x->out, "\r\n", 2);
    if (x->out.failed) {
        ev->type = PT_UEV_FAIL;
        ev->status = 500;
        ev->count = false;
        snprintf(ev->why, sizeof(ev->why), "out of memory");
        return 0;
    }
    if (*interim)
        return 1;
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
        if (!(x->cbuf = malloc(65536))) {
            ev->type = PT_UEV_FAIL;
            ev->status = 500;
            ev->count = false;
            snprintf(ev->why, sizeof(ev->why), "out of memory");
            return 0;
        }
    }
    return 1;
}

static size_t feed_head(pdec *x, const char *p, size_t n, pt_upstream_ev *ev)
{
    /* take bytes up to the head's end only: look for it one line at a time */
    size_t used = 0;
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
        if (parse_head(x, ev, &interim) == 0)
            return 0;
        if (interim) {
            /* RFC 9110 §15.2: 1xx (100 Continue, 103 Early Hints) precede the
             * answer; an endless stream of them is not one */
            if (++x->interims > PT_PX_MAX_INTERIM)
                return fail(ev, "too many interim responses");
            x->in.len = 0;
            continue;
        }
        /* a 101: the bytes after its head are the new protocol's */
        ev->type = x->state == PX_TUNNEL ? PT_UEV_TUNNEL : PT_UEV_OUT;
        ev->data = x->out.p;
        ev->len = x->out.len;
        ev->end_after = x->state == PX_DONE;
        return used;
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
    .flags = PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY,
    .start = pt_proxy_start,
    .worker = &pt_upstream_conn_worker,
};
