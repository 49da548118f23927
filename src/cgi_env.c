#include "first.h"
#include "cgi_env.h"

/* cgi_env.c: owns the CGI meta-variables (RFC 3875 §4.1) for both gateways:
 * which request fields become HTTP_* and which never do, the emission order,
 * and the one-block envp handed to execve. */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HDR_NAME_MAX 255
#define SCRATCH_STACK 2048

/* Is n (len bytes) a field that never becomes HTTP_*? A switch on the
 * length, then one comparison: this runs for every field of every request. */
static bool never_passed(const char *n, size_t len)
{
    switch (len) {
    case 2: /* hop-by-hop (RFC 9110 §7.6.1): meaningful to this connection only */
        return pt_name_is(n, "te", 2);
    case 5: /* httpoxy: HTTP_PROXY would steer the script's outgoing requests */
        return pt_name_is(n, "proxy", 5);
    case 7:
        return pt_name_is(n, "trailer", 7) || pt_name_is(n, "upgrade", 7);
    case 10:
        return pt_name_is(n, "connection", 10) || pt_name_is(n, "keep-alive", 10);
    case 12: /* already CONTENT_LENGTH / CONTENT_TYPE (RFC 3875 §4.1.18) */
        return pt_name_is(n, "content-type", 12);
    case 14:
        return pt_name_is(n, "content-length", 14);
    case 16:
        return pt_name_is(n, "proxy-connection", 16);
    case 17:
        return pt_name_is(n, "transfer-encoding", 17);
    case 19:
        return pt_name_is(n, "proxy-authorization", 19);
    default:
        return false;
    }
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

static bool mem_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    }
    return true;
}

/* Is h named lit (n bytes, lower case)? */
static bool named(const pt_header *h, const char *lit, size_t n)
{
    return h->name_len == n && pt_name_is(h->name, lit, n);
}

/* Only [A-Za-z0-9-]: '_' and other token characters would let two distinct
 * fields map to one variable (X-Foo vs X_Foo), a spoofing hazard. */
static bool name_chars_ok(const char *s, size_t n)
{
    static const bool ok[256] = {
        ['-'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1};

    if (n == 0 || n > HDR_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!ok[(unsigned char)s[i]])
            return false;
    }
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Is name one of the comma-separated tokens of a Connection value? */
static bool token_listed(const char *v, size_t vlen, const char *name, size_t nlen)
{
    size_t i = 0;

    while (i < vlen) {
        while (i < vlen && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < vlen && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (end - start == nlen && mem_ieq(v + start, name, nlen))
            return true;
    }
    return false;
}

/* What one look at the request's fields finds, so that each field is
 * classified once per build (not once to size the scratch space and again
 * to emit). */
#define SCAN_FLAGS 128
enum { F_EMIT = 1, F_JOIN = 2 };
typedef struct env_scan {
    size_t first_conn;   /* the first Connection field; nheaders: none */
    const pt_header *ct; /* the first Content-Type, or NULL */
    size_t need;         /* scratch bytes for joins and PATH_TRANSLATED */
    /* F_EMIT / F_JOIN of the first SCAN_FLAGS fields (the rest are
     * classified again when emitted: max_headers may be large) */
    unsigned char flags[SCAN_FLAGS];
} env_scan;

/* Depends on the field name only, so all fields of one name agree. */
static bool header_passed(const pt_cgi_req *r, const env_scan *sc, const pt_header *h)
{
    if (!name_chars_ok(h->name, h->name_len) || never_passed(h->name, h->name_len))
        return false;
    /* the request id portico settled on replaces what the client sent */
    if (r->request_id.len && named(h, "x-request-id", PT_SLEN("X-Request-ID")))
        return false;
    /* RFC 3875 §4.1.18 lets a server withhold credentials */
    if (!r->pass_authorization && named(h, "authorization", PT_SLEN("Authorization")))
        return false;
    /* fields named in Connection are hop-by-hop too (RFC 9110 §7.6.1) */
    for (size_t j = sc->first_conn; j < r->nheaders; j++) {
        const pt_header *c = &r->headers[j];
        if (named(c, "connection", PT_SLEN("Connection")) &&
            token_listed(c->value, c->value_len, h->name, h->name_len))
            return false;
    }
    return true;
}

static bool same_name(const pt_header *a, const pt_header *b)
{
    return a->name_len == b->name_len && mem_ieq(a->name, b->name, a->name_len);
}

/* F_EMIT when field i becomes a variable: passed, and the first of its name
 * (a repeated field is emitted where it first occurs); F_JOIN too when a
 * later field has its name. O(n^2) in the number of fields, which the
 * request limits keep to a few hundred at most; the length is compared
 * first, so most pairs cost one comparison. */
static unsigned classify(const pt_cgi_req *r, const env_scan *sc, size_t i)
{
    const pt_header *h = &r->headers[i];

    if (!header_passed(r, sc, h))
        return 0;
    for (size_t j = 0; j < i; j++) {
        if (same_name(&r->headers[j], h))
            return 0;
    }
    for (size_t j = i + 1; j < r->nheaders; j++) {
        if (same_name(&r->headers[j], h))
            return F_EMIT | F_JOIN;
    }
    return F_EMIT;
}

static unsigned flags_of(const pt_cgi_req *r, const env_scan *sc, size_t i)
{
    return i < SCAN_FLAGS ? sc->flags[i] : classify(r, sc, i);
}

/* RFC 9113 §8.2.3 (and RFC 6265 §5.4): cookie-pairs are joined with "; ",
 * everything else as a list (RFC 9110 §5.3). */
static const char *join_sep(const pt_header *h)
{
    return named(h, "cookie", PT_SLEN("Cookie")) ? "; " : ", ";
}

/* The joined length of the group starting at i (empty members are left
 * out). */
static size_t group_size(const pt_cgi_req *r, size_t i)
{
    size_t total = 0, nonempty = 0;

    for (size_t j = i; j < r->nheaders; j++) {
        if (!same_name(&r->headers[j], &r->headers[i]))
            continue;
        if (r->headers[j].value_len > 0) {
            total += r->headers[j].value_len + (nonempty ? 2 : 0);
            nonempty++;
        }
    }
    return total;
}

static size_t group_join(const pt_cgi_req *r, size_t i, char *out)
{
    const char *sep = join_sep(&r->headers[i]);
    size_t o = 0;

    for (size_t j = i; j < r->nheaders; j++) {
        const pt_header *h = &r->headers[j];
        if (!same_name(h, &r->headers[i]) || h->value_len == 0)
            continue;
        if (o > 0) {
            memcpy(out + o, sep, 2);
            o += 2;
        }
        memcpy(out + o, h->value, h->value_len);
        o += h->value_len;
    }
    return o;
}

static pt_str nonnull(pt_str s)
{
    return s.p ? s : (pt_str){"", 0};
}

/* RFC 3875 §4.1.6 leaves the mapping to the server: DOCUMENT_ROOT +
 * PATH_INFO, without a doubled '/' at the seam. */
static size_t translated_root_len(const pt_cgi_req *r)
{
    pt_str root = nonnull(r->document_root), info = nonnull(r->path_info);

    if (root.len > 0 && root.p[root.len - 1] == '/' && info.len > 0 && info.p[0] == '/')
        return root.len - 1;
    return root.len;
}

static void scan(const pt_cgi_req *r, env_scan *sc)
{
    sc->first_conn = r->nheaders;
    sc->ct = NULL;
    sc->need = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const pt_header *h = &r->headers[i];
        if (h->name_len == PT_SLEN("Connection") && sc->first_conn == r->nheaders &&
            pt_name_is(h->name, "connection", PT_SLEN("Connection")))
            sc->first_conn = i;
        else if (h->name_len == PT_SLEN("Content-Type") && !sc->ct &&
                 pt_name_is(h->name, "content-type", PT_SLEN("Content-Type")))
            sc->ct = h;
    }
    if (r->path_info.p && r->path_info.len > 0)
        sc->need = translated_root_len(r) + r->path_info.len;
    for (size_t i = 0; i < r->nheaders; i++) {
        unsigned f = classify(r, sc, i);
        if (i < SCAN_FLAGS)
            sc->flags[i] = (unsigned char)f;
        if (f & F_JOIN)
            sc->need = PT_MAX(sc->need, group_size(r, i));
    }
}

static void emit(pt_env_cb cb, void *ctx, const char *name, const char *v, size_t vlen)
{
    cb(ctx, name, strlen(name), v ? v : "", v ? vlen : 0);
}

static void emit_str(pt_env_cb cb, void *ctx, const char *name, pt_str s)
{
    s = nonnull(s);
    emit(cb, ctx, name, s.p, s.len);
}

static void emit_cstr(pt_env_cb cb, void *ctx, const char *name, const char *v)
{
    emit(cb, ctx, name, v, v ? strlen(v) : 0);
}

static void emit_standard(const pt_cgi_req *r, const env_scan *sc, pt_env_cb cb, void *ctx,
                          char *scratch)
{
    char num[32];
    int n;

    /* minimal: what a WSGI-style application server reads (PEP 3333's
     * set, nginx's uwsgi_params), each variable being work for it */
    bool full = !r->minimal;
    if (full) {
        emit_cstr(cb, ctx, "GATEWAY_INTERFACE", "CGI/1.1");
        emit_cstr(cb, ctx, "SERVER_SOFTWARE",
                  r->server_software ? r->server_software : PACKAGE_NAME "/" PACKAGE_VERSION);
    }
    emit_str(cb, ctx, "SERVER_NAME", r->server_name);
    emit_str(cb, ctx, "SERVER_PORT", r->server_port);
    if (full)
        emit_str(cb, ctx, "SERVER_ADDR", r->server_addr);
    memcpy(num, "HTTP/", 5);
    n = (int)(5 + pt_u64_dec(num + 5, (uint64_t)PT_MAX(r->http_major, 0)));
    num[n++] = '.';
    n += (int)pt_u64_dec(num + n, (uint64_t)PT_MAX(r->http_minor, 0));
    emit(cb, ctx, "SERVER_PROTOCOL", num, (size_t)n);
    emit_str(cb, ctx, "REQUEST_METHOD", r->method);
    emit_str(cb, ctx, "REQUEST_URI", r->request_uri);
    /* RFC 3875 §4.1.7: always set, "" without a query */
    emit_str(cb, ctx, "QUERY_STRING", r->query);
    emit_str(cb, ctx, "SCRIPT_NAME", r->script_name);
    if (full)
        emit_str(cb, ctx, "SCRIPT_FILENAME", r->script_filename);
    emit_str(cb, ctx, "DOCUMENT_ROOT", r->document_root);
    emit_str(cb, ctx, "REMOTE_ADDR", r->remote_addr);
    emit_str(cb, ctx, "REMOTE_PORT", r->remote_port);
    emit_cstr(cb, ctx, "REQUEST_SCHEME", r->https ? "https" : "http");
    if (r->https) {
        emit_cstr(cb, ctx, "HTTPS", "on");
        if (r->ssl_protocol)
            emit_cstr(cb, ctx, "SSL_PROTOCOL", r->ssl_protocol);
        if (r->ssl_cipher)
            emit_cstr(cb, ctx, "SSL_CIPHER", r->ssl_cipher);
        if (r->ssl_sni)
            emit_cstr(cb, ctx, "SSL_TLS_SNI", r->ssl_sni);
        if (r->ssl_protocol)
            emit_cstr(cb, ctx, "SSL_SESSION_RESUMED", r->ssl_resumed ? "Resumed" : "Initial");
        static const struct {
            const char *name;
            size_t off;
        } client[] = {
            {"SSL_CLIENT_VERIFY", offsetof(pt_cgi_req, ssl_client_verify)},
            {"SSL_CLIENT_S_DN", offsetof(pt_cgi_req, ssl_client_s_dn)},
            {"SSL_CLIENT_I_DN", offsetof(pt_cgi_req, ssl_client_i_dn)},
            {"SSL_CLIENT_SERIAL", offsetof(pt_cgi_req, ssl_client_serial)},
            {"SSL_CLIENT_CERT", offsetof(pt_cgi_req, ssl_client_cert)},
        };
        for (size_t i = 0; i < PT_ARRAY_LEN(client); i++) {
            const char *v = *(const char *const *)((const char *)r + client[i].off);
            if (v)
                emit_cstr(cb, ctx, client[i].name, v);
        }
    }

    /* RFC 3875 §4.1.6: PATH_TRANSLATED only exists with a PATH_INFO */
    if (r->path_info.p && r->path_info.len > 0) {
        emit_str(cb, ctx, "PATH_INFO", r->path_info);
        if (full) {
            size_t rl = translated_root_len(r);
            if (rl > 0)
                memcpy(scratch, r->document_root.p, rl);
            memcpy(scratch + rl, r->path_info.p, r->path_info.len);
            emit(cb, ctx, "PATH_TRANSLATED", scratch, rl + r->path_info.len);
        }
    }

    if (r->content_length >= 0) {
        n = (int)pt_u64_dec(num, (uint64_t)r->content_length);
        emit(cb, ctx, "CONTENT_LENGTH", num, (size_t)n);
    }
    const pt_header *ct = sc->ct;
    if (ct && ct->value_len > 0)
        emit(cb, ctx, "CONTENT_TYPE", ct->value, ct->value_len);

    if (r->auth_type.p && r->auth_type.len > 0)
        emit_str(cb, ctx, "AUTH_TYPE", r->auth_type);
    if (r->remote_user.p && r->remote_user.len > 0)
        emit_str(cb, ctx, "REMOTE_USER", r->remote_user);
    if (r->redirect_status > 0 && full) {
        n = (int)pt_u64_dec(num, (uint64_t)r->redirect_status);
        emit(cb, ctx, "REDIRECT_STATUS", num, (size_t)n);
    }
    if (full)
        emit_cstr(cb, ctx, "PATH", r->path ? r->path : PT_CGI_DEFAULT_PATH);
    if (r->request_id.p && r->request_id.len > 0) {
        emit_str(cb, ctx, "REQUEST_ID", r->request_id);
        emit_str(cb, ctx, "HTTP_X_REQUEST_ID", r->request_id);
    }
}

/* Eight bytes of a name of [A-Za-z0-9-] as a variable's: letters upper
 * case, '-' as '_'. Every byte is below 0x80, so adding per byte carries
 * into no neighbour. */
static uint64_t var_word(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, highs = ones * 0x80;
    uint64_t ge_a = w + ones * (0x80 - 'a');       /* high bit: byte >= 'a' */
    uint64_t gt_z = w + ones * (0x80 - ('z' + 1)); /* high bit: byte > 'z' */
    w -= ((ge_a & ~gt_z) & highs) >> 2;            /* 0x20 off each lower-case letter */
    uint64_t x = w ^ (ones * '-');                 /* zero where a '-' is */
    uint64_t dash = ~(((x & ~highs) + ~highs) | x) & highs;
    return w + (dash >> 7) * ('_' - '-');
}

/* out = name (n bytes of [A-Za-z0-9-], name_chars_ok) as a variable's
 * name: a word at a time, the last word overlapping the one before (the
 * mapping of a mapped byte is itself). */
static void var_name(char *out, const char *name, size_t n)
{
    if (n < 8) {
        for (size_t k = 0; k < n; k++) {
            char c = name[k];
            out[k] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - ('a' - 'A')) : c;
        }
        return;
    }
    uint64_t w;
    for (size_t k = 0; k + 8 <= n; k += 8) {
        memcpy(&w, name + k, 8);
        w = var_word(w);
        memcpy(out + k, &w, 8);
    }
    memcpy(&w, name + n - 8, 8);
    w = var_word(w);
    memcpy(out + n - 8, &w, 8);
}

/* RFC 3875 §4.1.18: "HTTP_" + name upper-cased with '-' -> '_'; repeated
 * fields become one variable. */
static void emit_http(const pt_cgi_req *r, const env_scan *sc, pt_env_cb cb, void *ctx,
                      char *scratch)
{
    char name[5 + HDR_NAME_MAX + 1];

    memcpy(name, "HTTP_", 5);
    for (size_t i = 0; i < r->nheaders; i++) {
        const pt_header *h = &r->headers[i];
        unsigned f = flags_of(r, sc, i);
        if (!(f & F_EMIT))
            continue;
        var_name(name + 5, h->name, h->name_len);
        name[5 + h->name_len] = '\0';

        if (!(f & F_JOIN))
            cb(ctx, name, 5 + h->name_len, h->value ? h->value : "", h->value ? h->value_len : 0);
        else
            cb(ctx, name, 5 + h->name_len, scratch, group_join(r, i, scratch));
    }
}

static void emit_pass_env(const pt_cgi_req *r, pt_env_cb cb, void *ctx)
{
    for (size_t i = 0; i < r->npass_env; i++) {
        const char *name = r->pass_env[i];
        if (!name || !name[0] || strchr(name, '='))
            continue;
        const char *v = getenv(name);
        if (v)
            cb(ctx, name, strlen(name), v, strlen(v));
    }
}

static void emit_location_env(const pt_cgi_req *r, pt_env_cb cb, void *ctx)
{
    for (size_t i = 0; i < r->nenv; i++) {
        const char *e = r->env[i];
        const char *eq = e ? strchr(e, '=') : NULL;
        if (!eq || eq == e)
            continue;
        cb(ctx, e, (size_t)(eq - e), eq + 1, strlen(eq + 1));
    }
}

int pt_cgi_env_try(const pt_cgi_req *r, pt_env_cb cb, void *ctx)
{
    char stackbuf[SCRATCH_STACK];
    char *scratch = stackbuf;
    env_scan sc;

    scan(r, &sc);
    /* allocate before the first callback so a failure emits nothing */
    if (sc.need > sizeof(stackbuf)) {
        scratch = malloc(sc.need);
        if (!scratch) {
            errno = ENOMEM;
            return -1;
        }
    }
    emit_standard(r, &sc, cb, ctx, scratch);
    emit_http(r, &sc, cb, ctx, scratch);
    emit_pass_env(r, cb, ctx);
    emit_location_env(r, cb, ctx);
    if (scratch != stackbuf)
        free(scratch);
    return 0;
}

void pt_cgi_env(const pt_cgi_req *r, pt_env_cb cb, void *ctx)
{
    (void)pt_cgi_env_try(r, cb, ctx);
}

/* execve can carry neither a NUL inside a string nor '=' inside a name. */
static bool envp_entry_ok(const char *name, size_t nlen, const char *value, size_t vlen)
{
    return nlen > 0 && !memchr(name, '\0', nlen) && !memchr(name, '=', nlen) &&
           !memchr(value, '\0', vlen);
}

typedef struct envp_count {
    size_t n, bytes;
} envp_count;

static void on_count(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    envp_count *c = ctx;

    if (!envp_entry_ok(name, nlen, value, vlen))
        return;
    c->n++;
    c->bytes += nlen + vlen + 2;
}

typedef struct envp_fill {
    char **vec;
    size_t n, cap;
    char *p, *end;
    bool is_short; /* the second pass wanted more than the first counted */
} envp_fill;

static void on_fill(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    envp_fill *f = ctx;
    size_t i;

    if (!envp_entry_ok(name, nlen, value, vlen))
        return;
    if (f->n >= f->cap || (size_t)(f->end - f->p) < nlen + vlen + 2) {
        f->is_short = true;
        return;
    }
    char *s = f->p;
    memcpy(s, name, nlen);
    s[nlen] = '=';
    memcpy(s + nlen + 1, value, vlen);
    s[nlen + 1 + vlen] = '\0';
    f->p += nlen + vlen + 2;

    /* A later entry replaces an earlier one in place (so env can override
     * PATH). O(n^2) over a few hundred entries; the replaced string's bytes
     * stay unused in the block. */
    for (i = 0; i < f->n; i++) {
        if (strncmp(f->vec[i], name, nlen) == 0 && f->vec[i][nlen] == '=')
            break;
    }
    f->vec[i] = s;
    if (i == f->n)
        f->n++;
}

char **pt_cgi_envp(const pt_cgi_req *r)
{
    envp_count c = {0, 0};
    size_t vec_bytes, total;
    char **block;

    if (pt_cgi_env_try(r, on_count, &c) < 0)
        return NULL;
    if (__builtin_mul_overflow(c.n + 1, sizeof(char *), &vec_bytes) ||
        __builtin_add_overflow(vec_bytes, c.bytes, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    block = malloc(total);
    if (!block)
        return NULL;

    envp_fill f = {
        .vec = block,
        .n = 0,
        .cap = c.n,
        .p = (char *)block + vec_bytes,
        .end = (char *)block + total,
        .is_short = false,
    };
    if (pt_cgi_env_try(r, on_fill, &f) < 0 || f.is_short) {
        /* both passes see the same request and environ; this is a guard */
        int e = f.is_short ? EAGAIN : errno;
        free(block);
        errno = e;
        return NULL;
    }
    block[f.n] = NULL;
    return block;
}
