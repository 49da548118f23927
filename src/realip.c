/* realip.c: who the client really is when a load balancer stands in
 * between. The PROXY protocol header (proxyproto.c) replaces the peer for
 * the whole connection; X-Forwarded-For from a trusted peer replaces it
 * for one request only, since a balancer's keep-alive connection carries
 * many clients' requests. Both write the same fields conn.c filled at
 * accept, so nothing else needs to know. */
#include "first.h"
#include "realip.h"
#include "conn.h"
#include "log.h"
#include "proxyproto.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int pt_realip_parse_from(const char *text, pt_access_rule *r, char *why, size_t whylen)
{
    char rule[96];
    if (!text[0] || strlen(text) > 64 || strpbrk(text, " \t") || strcmp(text, "all") == 0) {
        snprintf(why, whylen, "'%s': one address or CIDR block expected", text);
        return -1;
    }
    snprintf(rule, sizeof(rule), "allow %s", text);
    if (pt_access_parse(rule, r, why, whylen) < 0) {
        snprintf(why, whylen, "'%s': not an address or CIDR block", text);
        return -1;
    }
    return 0;
}

/* One list element: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
 * "[2001:db8::1]", "[2001:db8::1]:4711"; IPv4-mapped IPv6 is IPv4. */
static bool parse_elem(const char *p, size_t n, int *af, unsigned char *addr, uint16_t *port)
{
    char t[64];
    const char *ps = NULL;
    size_t pl = 0;
    *port = 0;
    if (n == 0 || n >= sizeof(t))
        return false;
    if (p[0] == '[') {
        const char *e = memchr(p, ']', n);
        if (!e)
            return false;
        size_t rest = n - (size_t)(e - p) - 1;
        if (rest) {
            if (e[1] != ':' || rest < 2)
                return false;
            ps = e + 2;
            pl = rest - 1;
        }
        n = (size_t)(e - p) - 1;
        p++;
        memcpy(t, p, n);
        t[n] = '\0';
        if (inet_pton(AF_INET6, t, addr) != 1)
            return false;
        *af = AF_INET6;
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - p) - 1)) {
            /* exactly one colon: IPv4 with a port */
            ps = colon + 1;
            pl = n - (size_t)(colon - p) - 1;
            n = (size_t)(colon - p);
        }
        memcpy(t, p, n);
        t[n] = '\0';
        if (!ps && memchr(t, ':', n)) {
            if (inet_pton(AF_INET6, t, addr) != 1)
                return false;
            *af = AF_INET6;
        } else if (inet_pton(AF_INET, t, addr) == 1) {
            *af = AF_INET;
        } else {
            return false;
        }
    }
    if (ps) {
        unsigned v = 0;
        if (pl == 0 || pl > 5)
            return false;
        for (size_t i = 0; i < pl; i++) {
            if (ps[i] < '0' || ps[i] > '9')
                return false;
            v = v * 10 + (unsigned)(ps[i] - '0');
        }
        if (v > 65535)
            return false;
        *port = (uint16_t)v;
    }
    if (*af == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)addr)) {
        memmove(addr, addr + 12, 4);
        *af = AF_INET;
    }
    return true;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

int pt_realip_pick(const pt_header *h, size_t n, const char *name, size_t name_len,
                   const pt_access_list *trusted, int *af, unsigned char *addr, uint16_t *port)
{
    bool seen = false;
    /* RFC 9110 §5.3: several fields of a list header are one list, in order */
    for (size_t i = n; i-- > 0;) {
        if (h[i].name_len != name_len || strncasecmp(h[i].name, name, name_len) != 0)
            continue;
        const char *v = h[i].value, *end = v + h[i].value_len;
        while (end > v) {
            const char *comma = end;
            while (comma > v && comma[-1] != ',')
                comma--;
            const char *s = comma, *e = end;
            while (s < e && is_ows(*s))
                s++;
            while (e > s && is_ows(e[-1]))
                e--;
            end = comma > v ? comma - 1 : v;
            if (s == e)
                continue; /* empty elements are allowed in a list (RFC 9110 §5.6.1) */
            if (!parse_elem(s, (size_t)(e - s), af, addr, port))
                return -1;
            seen = true;
            if (!pt_access_match(trusted, *af, addr))
                return 1;
        }
    }
    /* every address was a trusted hop: the leftmost is the client */
    return seen ? 1 : 0;
}

/* --------------------------------------------------- Forwarded (RFC 7239) */

/* What one forwarded-element says about the node it came from. */
enum { FWD_NONE, FWD_ADDR, FWD_UNKNOWN, FWD_BAD };

typedef struct fwd_ent {
    unsigned char kind, af;
    uint16_t port;
    unsigned char addr[16];
} fwd_ent;

/* the rightmost elements kept: the client is found right to left, and a
 * chain of more trusted proxies than this is not believed */
#define FWD_KEEP 32

static bool is_tchar(char ch)
{
    /* RFC 9110 §5.6.2 */
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_obf(const char *p, size_t n)
{
    /* RFC 7239 §6.3, §6.2: obfnode / obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-") */
    if (n < 2 || p[0] != '_')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '.' || p[i] == '_' || p[i] == '-'))
            return false;
    return true;
}

/* A for= value (unquoted) into e (RFC 7239 §6): an IPv4 address or an
 * IPv6 one in brackets, each with an optional port (an obfuscated port
 * counts as none); "unknown" or an obfuscated name hides the node. */
static void fwd_node(const char *v, size_t n, fwd_ent *e)
{
    const char *colon = NULL;
    e->kind = FWD_BAD;
    if (n == 0)
        return;
    if (v[0] == '[') {
        const char *rb = memchr(v, ']', n);
        colon = rb && (size_t)(rb - v) + 1 < n ? rb + 1 : NULL;
        if (colon && *colon != ':')
            return;
    } else {
        colon = memchr(v, ':', n);
    }
    size_t node_len = colon ? (size_t)(colon - v) : n;
    if ((node_len == 7 && strncasecmp(v, "unknown", 7) == 0) || is_obf(v, node_len)) {
        e->kind = FWD_UNKNOWN;
        return;
    }
    /* an IPv6 address must stand in brackets (§6); parse_elem takes it bare */
    if (v[0] != '[' && colon && memchr(colon + 1, ':', n - node_len - 1))
        return;
    if (colon && is_obf(colon + 1, n - node_len - 1))
        n = node_len; /* the port is hidden: none */
    int af = 0;
    if (parse_elem(v, n, &af, e->addr, &e->port)) {
        e->af = (unsigned char)af;
        e->kind = FWD_ADDR;
    }
}

/* One forwarded-element from *pp (up to end): its for= node into e; *pp
 * is left after the element's comma. False for an empty element. */
static bool fwd_element(const char **pp, const char *end, fwd_ent *e)
{
    const char *p = *pp;
    bool any = false, seen_for = false;
    memset(e, 0, sizeof(*e));
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        if (p == end || *p == ',')
            break;
        if (*p == ';') {
            p++;
            continue;
        }
        any = true;
        const char *name = p;
        while (p < end && is_tchar(*p))
            p++;
        size_t name_len = (size_t)(p - name);
        if (name_len == 0 || p == end || *p != '=')
            goto bad;
        p++;
        char val[64];
        size_t vl = 0;
        bool too_long = false;
        if (p < end && *p == '"') {
            /* quoted-string with quoted-pairs (RFC 9110 §5.6.4) */
            for (p++;; p++) {
                if (p == end)
                    goto bad;
                if (*p == '"')
                    break;
                if (*p == '\\' && ++p == end)
                    goto bad;
                if (vl < sizeof(val))
                    val[vl++] = *p;
                else
                    too_long = true;
            }
            p++;
        } else {
            /* a token; ':' and brackets too, as some proxies leave them unquoted */
            for (; p < end && (is_tchar(*p) || *p == ':' || *p == '[' || *p == ']'); p++) {
                if (vl < sizeof(val))
                    val[vl++] = *p;
                else
                    too_long = true;
            }
            if (vl == 0)
                goto bad;
        }
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ';' && *p != ',')
            goto bad;
        if (name_len == 3 && strncasecmp(name, "for", 3) == 0) {
            /* §4: a parameter at most once per element */
            if (seen_for || too_long)
                goto bad;
            seen_for = true;
            fwd_node(val, vl, e);
        }
    }
    *pp = p < end ? p + 1 : p;
    return any;
bad:
    /* the rest of this element (quotes respected) is skipped */
    e->kind = FWD_BAD;
    for (bool q = false; p < end && (q || *p != ','); p++) {
        if (*p == '\\' && q && p + 1 < end)
            p++;
        else if (*p == '"')
            q = !q;
    }
    *pp = p < end ? p + 1 : p;
    return true;
}

int pt_realip_pick_forwarded(const pt_header *h, size_t n, const pt_access_list *trusted, int *af,
                             unsigned char *addr, uint16_t *port)
{
    fwd_ent ring[FWD_KEEP];
    size_t count = 0;
    /* RFC 9110 §5.3: several fields are one list, in order */
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len != 9 || strncasecmp(h[i].name, "Forwarded", 9) != 0)
            continue;
        const char *p = h[i].value, *end = p + h[i].value_len;
        while (p < end) {
            fwd_ent e;
            if (fwd_element(&p, end, &e))
                ring[count++ % FWD_KEEP] = e;
        }
    }
    size_t kept = PT_MIN(count, (size_t)FWD_KEEP);
    for (size_t k = 0; k < kept; k++) {
        const fwd_ent *e = &ring[(count - 1 - k) % FWD_KEEP];
        if (e->kind == FWD_BAD)
            return -1;
        if (e->kind != FWD_ADDR)
            return 0; /* the hop hid (or did not name) its client: the peer it is */
        *af = e->af;
        memcpy(addr, e->addr, 16);
        *port = e->port;
        if (!pt_access_match(trusted, e->af, e->addr))
            return 1;
    }
    /* every address was a trusted hop: the leftmost, if it was kept */
    return count == 0 ? 0 : count > FWD_KEEP ? -1 : 1;
}

/* ------------------------------------------------------- the connection */

/* The request's client (X-Forwarded-For may name another per request);
 * the connection's own stays in conn_*. */
static void set_peer(pt_req *r, int af, const unsigned char *addr, uint16_t port)
{
    r->peer_af = (unsigned char)af;
    memset(r->peer_addr, 0, sizeof(r->peer_addr));
    memcpy(r->peer_addr, addr, af == AF_INET ? 4 : 16);
    r->peer_port = port;
    if (af == AF_INET) {
        /* the limit key of an IPv4 client, as a dual-stack listener sees it */
        memset(r->peer_key, 0, 10);
        r->peer_key[10] = r->peer_key[11] = 0xff;
        memcpy(r->peer_key + 12, addr, 4);
    } else {
        memcpy(r->peer_key, addr, 16);
    }
    r->peer_ip[0] = '\0';
}

void pt_realip_accept(pt_conn *c, bool proxy)
{
    c->tcp_af = c->conn_af;
    memcpy(c->tcp_addr, c->conn_addr, 16);
    c->proxy_pending = proxy;
}

void pt_realip_free(pt_conn *c)
{
    free(c->proxy_buf);
    c->proxy_buf = NULL;
    c->proxy_len = 0;
}

static int proxy_fail(pt_conn *c, const char *why)
{
    /* one line per connection: a scanner on the port logs no more than that */
    pt_log_info("closing connection: %s, client: %s:%u", why, pt_conn_peer_ip(c),
                pt_conn_peer_port(c));
    pt_realip_free(c);
    return -1;
}

/* proxy_protocol_from: who may name the client in a PROXY header. Unix
 * socket peers are local (the socket's permissions guard it). */
static bool proxy_trusted(const pt_conn *c)
{
    const pt_access_list *l = c->w->cfg->proxy_from;
    return !l || c->conn_af == AF_UNIX || pt_access_match(l, c->conn_af, c->conn_addr);
}

int pt_realip_proxy_read(pt_conn *c)
{
    /* refused before a byte is read: anyone else could claim any address */
    if (!c->proxy_buf && !proxy_trusted(c))
        return proxy_fail(c, "PROXY protocol header expected from a peer not in "
                             "proxy_protocol_from");
    if (!c->proxy_buf && !(c->proxy_buf = malloc(PT_PROXY_MAX)))
        return proxy_fail(c, "out of memory for the PROXY protocol header");
    /* Peek first and take only the header's bytes: what follows belongs
     * to HTTP or to the TLS handshake, which read the socket themselves. */
    ssize_t n = recv(c->fd, c->proxy_buf + c->proxy_len, PT_PROXY_MAX - c->proxy_len, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return proxy_fail(c, n == 0 ? "closed before the PROXY protocol header ended"
                                    : "error reading the PROXY protocol header");
    pt_proxy_hdr hd;
    const char *why;
    size_t have = c->proxy_len + (size_t)n;
    int r = pt_proxyproto_parse(c->proxy_buf, have, &hd, &why);
    if (r < 0)
        return proxy_fail(c, why);
    if (r == 0 && have >= PT_PROXY_MAX)
        return proxy_fail(c, "PROXY protocol header too long");
    /* incomplete: every byte peeked is header; complete: up to its end */
    size_t take = r == 0 ? (size_t)n : (size_t)r - c->proxy_len;
    ssize_t got = recv(c->fd, c->proxy_buf + c->proxy_len, take, 0);
    if (got != (ssize_t)take)
        return proxy_fail(c, "error reading the PROXY protocol header");
    c->proxy_len = (uint16_t)(c->proxy_len + take);
    if (r == 0)
        return 0;
    pt_realip_free(c);
    c->proxy_pending = false;
    if (hd.has_addr) {
        unsigned char a[16];
        int af = hd.af;
        memcpy(a, hd.src, 16);
        if (af == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)a)) {
            memmove(a, a + 12, 4);
            af = AF_INET;
        }
        char from[48] = "unix";
        if (c->conn_af != AF_UNIX)
            inet_ntop(c->conn_af, c->conn_addr, from, sizeof(from));
        c->conn_af = (unsigned char)af;
        memset(c->conn_addr, 0, sizeof(c->conn_addr));
        memcpy(c->conn_addr, a, af == AF_INET ? 4 : 16);
        c->conn_port = hd.src_port;
        c->ip4_text[0] = '\0'; /* the text of the address it replaced */
        pt_realip_reset(c->rq);
        pt_log_debug("PROXY protocol v%d: client %s:%u via %s", hd.version, pt_conn_peer_ip(c),
                     pt_conn_peer_port(c), from);
    }
    return 1;
}

void pt_realip_reset(pt_req *r)
{
    if (!r)
        return; /* a request takes the connection's client when it begins */
    const pt_conn *c = r->conn;
    if (r->peer_af != c->conn_af || r->peer_port != c->conn_port ||
        memcmp(r->peer_addr, c->conn_addr, 16) != 0) {
        if (c->conn_af == AF_INET || c->conn_af == AF_INET6) {
            set_peer(r, c->conn_af, c->conn_addr, c->conn_port); /* and its limit key */
        } else {
            r->peer_af = c->conn_af;
            memcpy(r->peer_addr, c->conn_addr, 16);
            r->peer_port = c->conn_port;
            memset(r->peer_key, 0, sizeof(r->peer_key));
            r->peer_ip[0] = '\0';
        }
    }
}

void pt_realip_request(pt_req *rq)
{
    const pt_realip_cfg *rc = rq->vhost ? rq->vhost->ph.realip : NULL;
    pt_realip_reset(rq);
    if (!rc || !pt_access_match(&rc->from, rq->peer_af, rq->peer_addr))
        return;
    const pt_head *h = &rq->head;
    int af = 0;
    unsigned char a[16] = {0};
    uint16_t port = 0;
    int r = rc->is_forwarded
                ? pt_realip_pick_forwarded(h->headers, h->nheaders, &rc->from, &af, a, &port)
                : pt_realip_pick(h->headers, h->nheaders, rc->header, rc->header_len, &rc->from,
                                 &af, a, &port);
    if (r == 0)
        return;
    if (r < 0) {
        /* the peer is trusted, yet sent what no balancer writes: said once
         * per worker at info, then at debug */
        static bool said;
        char peer[48];
        snprintf(peer, sizeof(peer), "%s", pt_conn_req_ip(rq));
        if (!said)
            pt_log_info("%s from trusted peer %s holds something not an address: kept the "
                        "peer's (further ones are logged at debug level)",
                        rc->header, peer);
        else
            pt_log_debug("%s from trusted peer %s holds something not an address: kept the "
                         "peer's",
                         rc->header, peer);
        said = true;
        return;
    }
    set_peer(rq, af, a, port);
}
