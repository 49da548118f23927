/* router.c: the request phases between the location and the handler, in
 * the order nginx and lighttpd users expect: the real client address
 * (X-Forwarded-For from a trusted proxy, realip.c), access rules, then HTTP Basic
 * authentication, then rewrites (rewrite.c) and "return". Settings are resolved
 * at load time (conf.c: a location's own, else its vhost's); what depends on
 * the path is resolved here: the longest prefix location a path lies under
 * keeps its access rules, authentication and return even when an exact,
 * regex or extension location takes the request (a ".php" under a denied
 * prefix never reaches PHP-FPM). */
#include "first.h"
#include "router.h"
#include "acme.h"
#include "conn.h"
#include "authq.h"
#include "resp.h"
#include "htpasswd.h"
#include "log.h"
#include "realip.h"
#include "phases.h"
#include "resolve.h"
#include "rewrite.h"
#include "util.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

/* "client: 192.0.2.1:5678, request: \"GET / HTTP/1.1\"" for log lines */
static void log_ctx(pt_req *r, char *out, size_t cap)
{
    const pt_head *h = &r->head;
    char m[32], t[1100];
    pt_escape_log(h->method_str.p, PT_MIN(h->method_str.len, (size_t)16), m, sizeof(m));
    pt_escape_log(h->target.p, PT_MIN(h->target.len, (size_t)1024), t, sizeof(t));
    snprintf(out, cap, "client: %s:%u, request: \"%s %s HTTP/%d.%d\"", pt_conn_req_ip(r),
             pt_conn_peer_port(r->conn), m, t, h->http_major, h->http_minor);
}

const pt_location *pt_router_prefix(const pt_vhost *v, const char *path, size_t len)
{
    const pt_location *best = NULL;
    for (size_t i = 0; i < v->nlocs; i++) {
        const pt_location *l = &v->locs[i];
        if (l->match == PT_MATCH_PREFIX && l->pattern_len <= len &&
            memcmp(l->pattern, path, l->pattern_len) == 0 &&
            (!best || l->pattern_len > best->pattern_len))
            best = l;
    }
    return best;
}

ssize_t pt_router_alias_rel(const char *pat, size_t plen, const char *path, size_t len)
{
    if (plen > len || memcmp(pat, path, plen) != 0)
        return -1;
    if (plen > 0 && pat[plen - 1] != '/' && plen < len && path[plen] != '/')
        return -1;
    size_t i = plen;
    while (i < len && path[i] == '/')
        i++;
    return (ssize_t)i;
}

int pt_router_base(const pt_req *r, const pt_location *l, const char *path, size_t len,
                   const char **root, int *fd, bool *own, const char **rel)
{
    const pt_vhost *v = r->vhost;
    size_t off = 1;
    *own = false;
    if (l && l->alias_tmpl) {
        /* a regex location's alias: the name its captures make */
        static char name[PATH_MAX];
        if (pt_rewrite_alias_rel(l, path, len, name, sizeof(name)) < 0)
            return -1;
        *root = l->alias;
        *rel = name;
        *fd = open(*root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *own = *fd >= 0;
        return *fd < 0 ? -1 : 0;
    }
    if (l && l->alias) {
        ssize_t o = pt_router_alias_rel(l->pattern, l->pattern_len, path, len);
        if (o < 0)
            return -1;
        off = (size_t)o;
        *root = l->alias;
    } else {
        *root = l && l->root ? l->root : v->root;
    }
    *rel = off < len ? path + off : ".";
    if (l && (l->alias || l->root)) {
        *fd = open(*root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        *own = *fd >= 0;
    } else {
        *fd = v->root_fd;
    }
    return *fd < 0 ? -1 : 0;
}

/* An answer of our own: status, one extra header, a body (copied). */
static void answer(pt_req *r, int status, bool close, const char *hname, const char *hval,
                   size_t hlen, const char *ctype, const char *body, size_t blen)
{
    if (close)
        r->conn->close_after = true;
    pt_resp_begin(r, status);
    if (hname)
        pt_resp_header(r, hname, hval, hlen);
    if (ctype)
        pt_resp_header(r, "Content-Type", ctype, strlen(ctype));
    pt_resp_end(r, (int64_t)blen);
    if (r->is_head)
        r->head_only = true;
    else if (blen)
        pt_resp_body(r, body, blen);
    r->conn->state = PT_CS_WRITE;
}

/* ------------------------------------------------------------ access */

static bool access_denied(pt_req *r, const pt_access_list *l, bool has_body)
{
    const pt_access_rule *rule;
    if (!l || pt_access_allowed(l, r->peer_af, r->peer_addr, &rule))
        return false;
    char ctx[1300];
    log_ctx(r, ctx, sizeof(ctx));
    pt_log_warn("access forbidden by rule \"%s\" (%s), %s", rule->text, rule->where, ctx);
    if (pt_conn_error_page(r, 403, has_body))
        return true;
    pt_resp_error(r, 403, has_body);
    r->conn->state = PT_CS_WRITE;
    return true;
}

/* --------------------------------------------------- authentication */

/* Failed logins are logged, but at most LOG_BURST lines per client per
 * second (a password guesser would otherwise fill the disk); a table of
 * recent clients, one slot per address hash. */
#define LOG_SLOTS 64
#define LOG_BURST 3

static struct {
    unsigned char key[16];
    uint64_t second;
    unsigned lines, dropped;
} fail_log[LOG_SLOTS];

static void log_failure(pt_req *r, const char *fmt, ...) PT_PRINTF(2, 3);
static void log_failure(pt_req *r, const char *fmt, ...)
{
    unsigned h = 0;
    for (int i = 0; i < 16; i++)
        h = h * 31 + r->peer_key[i];
    __typeof__(&fail_log[0]) s = &fail_log[h % LOG_SLOTS];
    uint64_t sec = r->conn->w->loop.now / 1000;
    if (memcmp(s->key, r->peer_key, 16) != 0 || s->second != sec) {
        unsigned dropped = memcmp(s->key, r->peer_key, 16) == 0 ? s->dropped : 0;
        memcpy(s->key, r->peer_key, 16);
        s->second = sec;
        s->lines = 0;
        s->dropped = 0;
        if (dropped)
            pt_log_warn("%u more authentication failures from %s not logged", dropped,
                        pt_conn_req_ip(r));
    }
    if (s->lines >= LOG_BURST) {
        s->dropped++;
        return;
    }
    s->lines++;
    char ctx[1300], msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_ctx(r, ctx, sizeof(ctx));
    pt_log_warn("%s, %s", msg, ctx);
}

static void challenge(pt_req *r, const pt_auth_cfg *a, bool has_body)
{
    /* RFC 7617 §2.1: the charset parameter tells clients to send UTF-8 */
    char v[300];
    int n = snprintf(v, sizeof(v), "Basic realm=\"%s\", charset=\"UTF-8\"", a->realm);
    static const char page[] = "<html><head><title>401 Unauthorized</title></head><body><h1>401 "
                               "Unauthorized</h1></body></html>\n";
    answer(r, 401, has_body, "WWW-Authenticate", v, (size_t)PT_MIN(n, (int)sizeof(v) - 1),
           "text/html; charset=utf-8", page, PT_SLEN(page));
}

static void server_error(pt_req *r, bool has_body)
{
    pt_resp_error(r, 500, has_body);
    r->conn->state = PT_CS_WRITE;
}

/* The user:password of "Authorization: Basic <token68>" (RFC 7617 §2),
 * decoded into buf: false when absent or malformed. */
static bool basic_credentials(const pt_req *r, unsigned char *buf, size_t cap, size_t *len)
{
    const pt_header *h = pt_head_get(&r->head, "Authorization");
    if (!h || h->value_len < 6 || !pt_str_ieq(h->value, 5, "basic") || h->value[5] != ' ')
        return false;
    const char *p = h->value + 6, *end = h->value + h->value_len;
    while (p < end && *p == ' ')
        p++;
    ssize_t n = pt_base64_decode(p, (size_t)(end - p), buf, cap);
    if (n < 0)
        return false;
    *len = (size_t)n;
    return true;
}

typedef enum auth_rc { AUTH_OK, AUTH_DONE, AUTH_WAIT } auth_rc;

/* verifications handed to the helper thread at once, per worker: beyond
 * it a password guesser gets 503s rather than an ever longer queue */
#define MAX_WAITING 256

static void set_user(pt_req *r, const char *user, size_t ulen)
{
    /* the name as the file spells it, for REMOTE_USER */
    size_t n = PT_MIN(ulen, sizeof(r->auth_user) - 1);
    memcpy(r->auth_user, user, n);
    r->auth_user[n] = '\0';
    r->auth_user_len = n;
}

/* The answer to a verification: AUTH_OK, or AUTH_DONE after queuing 401 or 500. */
static auth_rc verdict(pt_req *r, const pt_auth_cfg *a, int rc, const char *user, size_t ulen,
                       bool has_body)
{
    char u[300];
    pt_escape_log(user, PT_MIN(ulen, (size_t)255), u, sizeof(u));
    if (rc < 0) {
        char ctx[1300];
        log_ctx(r, ctx, sizeof(ctx));
        pt_log_error("auth_basic_user_file \"%s\": the hash of user \"%s\" is in a format "
                     "portico cannot check, %s",
                     a->user_file, u, ctx);
        server_error(r, has_body);
        return AUTH_DONE;
    }
    if (rc == 0) {
        log_failure(r, "user \"%s\": password mismatch (\"%s\")", u, a->user_file);
        challenge(r, a, has_body);
        return AUTH_DONE;
    }
    set_user(r, user, ulen);
    return AUTH_OK;
}

static void on_verified(pt_authq_job *j);

/* user:password (len bytes in cred) against a's file */
static auth_rc check_credentials(pt_req *r, const pt_auth_cfg *a, bool has_body,
                                 const unsigned char *cred, size_t len)
{
    const unsigned char *colon = memchr(cred, ':', len);
    if (!colon) {
        log_failure(r, "malformed Basic credentials");
        challenge(r, a, has_body);
        return AUTH_DONE;
    }
    const char *user = (const char *)cred, *pw = (const char *)colon + 1;
    size_t ulen = (size_t)(colon - cred), pwlen = len - ulen - 1;
    const char *hash;
    char err[200];
    uint64_t now = r->conn->w->loop.now;
    if (pt_htpasswd_lookup(a->user_file, user, ulen, now, &hash, err, sizeof(err)) < 0) {
        /* fail closed: nobody gets in while the file cannot be read */
        char ctx[1300];
        log_ctx(r, ctx, sizeof(ctx));
        pt_log_error("auth_basic_user_file \"%s\": %s, %s", a->user_file, err, ctx);
        server_error(r, has_body);
        return AUTH_DONE;
    }
    if (!hash) {
        char u[300];
        pt_escape_log(user, PT_MIN(ulen, (size_t)255), u, sizeof(u));
        log_failure(r, "user \"%s\" was not found in \"%s\"", u, a->user_file);
        challenge(r, a, has_body);
        return AUTH_DONE;
    }
    if (pt_htpasswd_cached(user, ulen, pw, pwlen, hash, now)) {
        set_user(r, user, ulen);
        return AUTH_OK;
    }
    if (pt_htpasswd_is_slow(hash)) {
        /* bcrypt and friends take milliseconds: off the loop, so that the
         * worker's other clients are not kept waiting (after an internal
         * redirect too: the caller goes on when the answer comes) */
        if (pt_authq_pending() >= MAX_WAITING) {
            char ctx[1300];
            log_ctx(r, ctx, sizeof(ctx));
            pt_log_warn("%u password verifications waiting: refused, %s", MAX_WAITING, ctx);
            pt_resp_error(r, 503, has_body);
            r->conn->state = PT_CS_WRITE;
            return AUTH_DONE;
        }
        pt_authq_job *j = pt_authq_job_new(user, ulen, pw, pwlen, hash, on_verified, r);
        if (j && pt_authq_submit(&r->conn->w->loop, j) == 0) {
            if (pt_log_level() >= PT_LOG_DEBUG) {
                char u[300], ctx[1300];
                pt_escape_log(user, PT_MIN(ulen, (size_t)255), u, sizeof(u));
                log_ctx(r, ctx, sizeof(ctx));
                pt_log_debug("password of user \"%s\" handed to the verifying thread, %s", u, ctx);
            }
            r->phase_job = j;
            return AUTH_WAIT;
        }
        /* no thread: verify here after all (slow, but correct) */
        pt_authq_job_free(j);
    }
    int rc = pt_htpasswd_verify(hash, pw, pwlen);
    if (rc == 1)
        pt_htpasswd_remember(user, ulen, pw, pwlen, hash, now);
    return verdict(r, a, rc, user, ulen, has_body);
}

static auth_rc authenticate(pt_req *r, const pt_auth_cfg *a, bool has_body)
{
    if (!a || !a->realm)
        return AUTH_OK;
    unsigned char cred[1024];
    size_t len = 0;
    if (!basic_credentials(r, cred, sizeof(cred), &len)) {
        /* no credentials is the normal first step of a login: not logged
         * (what a malformed token decoded to is wiped) */
        OPENSSL_cleanse(cred, sizeof(cred));
        challenge(r, a, has_body);
        return AUTH_DONE;
    }
    auth_rc rc = check_credentials(r, a, has_body, cred, len);
    /* the password leaves no copy on the stack, whatever the answer */
    OPENSSL_cleanse(cred, len);
    return rc;
}

/* -------------------------------------------------------------- return */

int pt_router_parse_return(const char *text, pt_return_cfg *r, char *why, size_t whylen)
{
    char *end;
    long st = strtol(text, &end, 10);
    memset(r, 0, sizeof(*r));
    if (end == text || text[0] < '1' || text[0] > '9' || end - text != 3 || st < 200 || st > 599 ||
        (*end && *end != ' ')) {
        snprintf(why, whylen, "return '%s': must start with a status 200-599", text);
        return -1;
    }
    r->status = (int)st;
    while (*end == ' ')
        end++;
    bool redirect = st == 301 || st == 302 || st == 303 || st == 307 || st == 308;
    if (redirect && !*end) {
        snprintf(why, whylen, "return '%s': a %ld redirect needs a target", text, st);
        return -1;
    }
    if ((st == 444 || (st >= 300 && st < 400 && !redirect)) && *end) {
        snprintf(why, whylen, "return '%s': status %ld takes no text", text, st);
        return -1;
    }
    if (st >= 300 && st < 400 && !redirect) {
        snprintf(why, whylen, "return '%s': 3xx statuses are 301, 302, 303, 307 and 308", text);
        return -1;
    }
    /* only the variables we know: a typo fails at load time, not per request */
    for (const char *p = end; (p = strchr(p, '$')); p++) {
        static const char *const vars[] = {"$request_uri", "$uri", "$host", "$scheme"};
        /* captures ($1, ${name}): checked against the location's regex */
        bool ok = pt_rewrite_ref_len(p) > 0;
        for (size_t i = 0; i < PT_ARRAY_LEN(vars) && !ok; i++)
            ok = strncmp(p, vars[i], strlen(vars[i])) == 0;
        if (!ok) {
            snprintf(why, whylen,
                     "return '%s': unknown variable at '%.20s' ($request_uri, $uri, $host, "
                     "$scheme, $1..$9, ${name})",
                     text, p);
            return -1;
        }
    }
    if (*end && !(r->text = strdup(end))) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* Append v (n bytes) to out, percent-encoding what may not stand in a
 * header value as it is (URL only). */
static size_t put(char *out, size_t at, size_t cap, const char *v, size_t n, bool url)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (url && (ch <= 0x20 || ch >= 0x7f)) {
            if (at + 3 < cap) {
                out[at++] = '%';
                out[at++] = hex[ch >> 4];
                out[at++] = hex[ch & 15];
            }
        } else if (at + 1 < cap) {
            out[at++] = (char)ch;
        }
    }
    return at;
}

static size_t expand(pt_req *r, const char *t, char *out, size_t cap, bool url)
{
    const pt_head *h = &r->head;
    size_t at = 0;
    pt_str host = h->host;
    /* $host: the Host without its port, as nginx's */
    if (host.len && host.p[0] == '[') {
        const char *e = memchr(host.p, ']', host.len);
        if (e)
            host.len = (size_t)(e - host.p) + 1;
    } else if (host.len) {
        const char *colon = memchr(host.p, ':', host.len);
        if (colon)
            host.len = (size_t)(colon - host.p);
    }
    if (!host.len) {
        host.p = "localhost";
        host.len = 9;
    }
    pt_rewrite_caps caps = {.rx = NULL};
    bool caps_known = false;
    while (*t) {
        size_t rl = pt_rewrite_ref_len(t);
        if (rl) {
            /* a regex location's captures, from its match on the path */
            if (!caps_known)
                pt_rewrite_loc_caps(r, &caps);
            caps_known = true;
            at = pt_rewrite_put_ref(&caps, t, rl, out, at, cap);
            t += rl;
        } else if (strncmp(t, "$request_uri", 12) == 0) {
            /* origin-form, also for an absolute-form target (as REQUEST_URI) */
            pt_str ru = h->target;
            if (h->absolute_form && h->path.p >= ru.p && h->path.p <= ru.p + ru.len) {
                ru.len -= (size_t)(h->path.p - ru.p);
                ru.p = h->path.p;
            }
            at = put(out, at, cap, ru.p, ru.len, url);
            t += 12;
        } else if (strncmp(t, "$uri", 4) == 0) {
            at = put(out, at, cap, r->path, r->path_len, url);
            t += 4;
        } else if (strncmp(t, "$host", 5) == 0) {
            at = put(out, at, cap, host.p, host.len, url);
            t += 5;
        } else if (strncmp(t, "$scheme", 7) == 0) {
            bool tls = r->conn->sock.tls != NULL;
            at = put(out, at, cap, tls ? "https" : "http", tls ? 5 : 4, url);
            t += 7;
        } else {
            at = put(out, at, cap, t, 1, url);
            t++;
        }
    }
    out[at] = '\0';
    return at;
}

static void do_return(pt_req *r, const pt_return_cfg *rc, bool has_body)
{
    int st = rc->status;
    if (st == 444) {
        /* nginx's 444: no answer at all, the connection just ends */
        char ctx[1300];
        log_ctx(r, ctx, sizeof(ctx));
        pt_log_info("closed without a response (return 444), %s", ctx);
        pt_resp_reset(r);
        return;
    }
    char buf[4096];
    if (st >= 300 && st < 400) {
        size_t n = expand(r, rc->text, buf, sizeof(buf), true);
        answer(r, st, has_body, "Location", buf, n, NULL, NULL, 0);
        return;
    }
    if (!rc->text) {
        pt_resp_error(r, st, has_body);
        r->conn->state = PT_CS_WRITE;
        return;
    }
    size_t n = expand(r, rc->text, buf, sizeof(buf) - 1, false);
    buf[n++] = '\n';
    answer(r, st, has_body, "X-Content-Type-Options", "nosniff", 7, "text/plain; charset=utf-8",
           buf, n);
}

/* --------------------------------------------------------------- run */

/* The longest prefix location the path lies under: its access rules,
 * authentication and return hold under an exact or extension location too. */
static const pt_location *prefix_of(const pt_req *r)
{
    const pt_location *pre = NULL;
    if (r->loc->match != PT_MATCH_PREFIX)
        pre = pt_router_prefix(r->vhost, r->path, r->path_len);
    return pre ? pre : r->loc;
}

static const pt_auth_cfg *auth_of(const pt_req *r, const pt_location *pre)
{
    return r->loc->ph.auth_own ? r->loc->ph.auth : pre->ph.auth;
}

/* ---------------------------------------------------------- error pages */

const pt_auth_cfg *pt_router_authed(const pt_req *r)
{
    if (!r || !r->vhost || !r->loc || !r->auth_user_len)
        return NULL;
    const pt_auth_cfg *a = auth_of(r, prefix_of(r));
    return a && a->realm ? a : NULL;
}

/* nginx runs an error page's access and auth phases again (an internal
 * redirect is a new pass through the phases): a denied or protected page is
 * not served. Unlike nginx, a page behind a password is not challenged for
 * (a 404 must not turn into a login prompt): only a request that passed
 * the same realm and user file sees it; the others get the plain page with
 * the original status, as lighttpd answers when its error handler fails. */
bool pt_router_errpage_ok(pt_req *r, const pt_auth_cfg *authed)
{
    const pt_location *loc = r->loc, *pre = prefix_of(r);
    const pt_access_rule *rule;
    const char *why = NULL;
    if ((loc->ph.access && !pt_access_allowed(loc->ph.access, r->peer_af, r->peer_addr, &rule)) ||
        (pre->ph.access && !pt_access_allowed(pre->ph.access, r->peer_af, r->peer_addr, &rule)))
        why = "its location denies this client";
    const pt_auth_cfg *a = auth_of(r, pre);
    if (!why && a && a->realm &&
        !(authed && strcmp(a->realm, authed->realm) == 0 &&
          strcmp(a->user_file, authed->user_file) == 0))
        why = "its location asks for authentication the request did not pass";
    if (!why)
        return true;
    char ctx[1300];
    log_ctx(r, ctx, sizeof(ctx));
    pt_log_info("error page \"%.*s\" not served: %s, %s", (int)PT_MIN(r->path_len, 256), r->path,
                why, ctx);
    return false;
}

/* ----------------------------------------------------------- try_files */

/* The phases again for the request's new path (its own location's access
 * rules, authentication, return and try_files, as nginx's internal
 * redirects), at most 10 times per request. It may wait for a password
 * like the first run: every caller passes PT_ROUTE_WAIT on. */
static pt_route_rc rerun(pt_req *r, bool has_body, const char *what)
{
    if (++r->redirects > 10) {
        pt_conn_reject(r, 500, what, has_body);
        return PT_ROUTE_DONE;
    }
    return pt_router_run(r, has_body);
}

/* Is what the path names (beneath c->rq->loc's root or alias) there, as a
 * directory when it ends in '/', else as a regular file? */
static bool path_exists(const pt_req *r, const char *path, size_t len)
{
    const char *root, *rel;
    int fd;
    bool own, want_dir = path[len - 1] == '/';
    if (pt_router_base(r, r->loc, path, len, &root, &fd, &own, &rel) < 0)
        return false;
    struct stat st;
    int f = pt_resolve_stat(fd, root, rel, O_PATH | O_CLOEXEC, pt_resolve_follow(r->vhost, r->loc),
                            &st);
    if (own)
        close(fd);
    if (f < 0)
        return false;
    close(f);
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

/* nginx's try_files: the first entry that exists is served (by the
 * location it routes to); else the last entry, a URI the request is
 * redirected to internally (method, body and REQUEST_URI kept), or a
 * status. */
static pt_route_rc try_files(pt_req *r, const pt_try_files *t, bool has_body)
{
    const pt_head *h = &r->head;
    pt_phase_vars v = {r->path, r->path_len, h->has_query ? h->query.p : NULL,
                       h->has_query ? h->query.len : 0};
    char buf[PATH_MAX];
    for (size_t i = 0; i + 1 < t->n; i++) {
        long n = pt_phases_expand(t->items[i], &v, buf, sizeof(buf));
        while (n > 1 && buf[n - 1] == '/' && buf[n - 2] == '/')
            buf[--n] = '\0'; /* "$uri/" of "/dir/" */
        if (n <= 0 || buf[0] != '/' || !path_exists(r, buf, (size_t)n))
            continue;
        if ((size_t)n == r->path_len && memcmp(buf, r->path, (size_t)n) == 0)
            return PT_ROUTE_CONTINUE;
        if (pt_conn_set_path(r, buf, (size_t)n) < 0) {
            pt_conn_reject(r, 500, "try_files: path too long", has_body);
            return PT_ROUTE_DONE;
        }
        /* the new path meets its own location's phases */
        return rerun(r, has_body, "try_files: more than 10 internal redirects");
    }
    if (t->fallback_status) {
        pt_conn_reject(r, t->fallback_status, "try_files", has_body);
        return PT_ROUTE_DONE;
    }
    long n = pt_phases_expand(t->items[t->n - 1], &v, buf, sizeof(buf));
    if (n < 0 || pt_conn_reroute(r, buf, (size_t)n) < 0) {
        pt_conn_reject(r, 500, "try_files: invalid fallback", has_body);
        return PT_ROUTE_DONE;
    }
    return rerun(r, has_body, "try_files: more than 10 internal redirects");
}

/* the phases after authentication */
static pt_route_rc after_auth(pt_req *r, const pt_location *pre, bool has_body)
{
    bool broke = false;
    if (r->loc->rewrites) {
        char buf[4096];
        int st = 0;
        switch (pt_rewrite_run(r, buf, sizeof(buf), &st)) {
        case PT_RWR_NONE:
            break;
        case PT_RWR_REROUTE:
            return rerun(r, has_body, "rewrite: more than 10 internal redirects");
        case PT_RWR_BREAK:
            broke = true; /* as nginx's break: no return of this location either */
            break;
        case PT_RWR_REDIRECT:
            answer(r, st, has_body, "Location", buf, strlen(buf), NULL, NULL, 0);
            return PT_ROUTE_DONE;
        case PT_RWR_ERROR:
            pt_conn_reject(r, 500, "rewrite: invalid or too long a URI", has_body);
            return PT_ROUTE_DONE;
        }
    }
    const pt_return_cfg *ret = r->loc->ph.ret_own ? r->loc->ph.ret : pre->ph.ret;
    if (ret && !broke && !(ret->http_only && r->conn->sock.tls)) {
        do_return(r, ret, has_body);
        return PT_ROUTE_DONE;
    }
    if (r->loc->ph.try_files)
        return try_files(r, r->loc->ph.try_files, has_body);
    return PT_ROUTE_CONTINUE;
}

/* An ACME http-01 challenge (RFC 8555 §8.3): answered before any other
 * phase, since the CA must reach the token whatever the rules say. */
static bool is_acme(const pt_req *r)
{
    return r->conn->w->cfg->acme_any && r->path_len > sizeof(PT_ACME_CHALLENGE_PREFIX) - 1 &&
           memcmp(r->path, PT_ACME_CHALLENGE_PREFIX, sizeof(PT_ACME_CHALLENGE_PREFIX) - 1) == 0;
}

/* "/cgit" when a gateway prefix "/cgit/" exists and no exact location
 * claims the path: 301 to "/cgit/" (nginx does the same for a prefix
 * location ending in '/' that passes to a backend), so that an
 * application's root needs no location of its own for the redirect. */
static bool gateway_slash(pt_req *r, bool has_body)
{
    const pt_vhost *v = r->vhost;
    size_t plen = r->path_len;
    if (r->loc->match == PT_MATCH_EXACT || plen == 0 || r->path[plen - 1] == '/')
        return false;
    for (size_t i = 0; i < v->nlocs; i++) {
        const pt_location *l = &v->locs[i];
        if (l->pattern_len != plen + 1 || l->match != PT_MATCH_PREFIX ||
            l->handler == PT_H_STATIC || l->handler == PT_H_STATUS ||
            memcmp(l->pattern, r->path, plen) != 0)
            continue;
        if (has_body)
            r->conn->close_after = true; /* the body stays unread */
        pt_resp_redirect_slash(r);
        r->conn->state = PT_CS_WRITE;
        return true;
    }
    return false;
}

/* The vhost's (or top level's) rewrites, once per request on the URI the
 * client sent, as nginx's server-level rewrites; the location is chosen
 * again for the new path (pt_conn_reroute). */
static pt_route_rc server_rewrite(pt_req *r, bool has_body)
{
    char buf[4096];
    int st = 0;
    switch (pt_rewrite_server(r, r->vhost->ph.srv_rewrites, buf, sizeof(buf), &st)) {
    case PT_RWR_REDIRECT:
        answer(r, st, has_body, "Location", buf, strlen(buf), NULL, NULL, 0);
        return PT_ROUTE_DONE;
    case PT_RWR_ERROR:
        pt_conn_reject(r, 500, "rewrite: invalid or too long a URI", has_body);
        return PT_ROUTE_DONE;
    default:
        return PT_ROUTE_CONTINUE;
    }
}

pt_route_rc pt_router_run(pt_req *r, bool has_body)
{
    r->auth_user_len = 0;
    r->auth_user[0] = '\0';
    /* first: every later phase, log line and limit sees the real client */
    pt_realip_request(r);
    /* internal redirects (redirects > 0) do not meet them again */
    if (r->vhost && r->vhost->ph.srv_rewrites && r->redirects == 0 && !is_acme(r) &&
        server_rewrite(r, has_body) == PT_ROUTE_DONE)
        return PT_ROUTE_DONE;
    const pt_location *loc = r->loc;
    if (!r->vhost || !loc)
        return PT_ROUTE_CONTINUE;
    if (is_acme(r)) {
        char ka[512];
        ssize_t n = pt_acme_challenge(r->conn->w->cfg, r->path, r->path_len, ka, sizeof(ka));
        if (n < 0)
            pt_resp_error(r, 404, has_body);
        else
            answer(r, 200, has_body, NULL, NULL, 0, "application/octet-stream", ka, (size_t)n);
        r->conn->state = PT_CS_WRITE;
        return PT_ROUTE_DONE;
    }
    if (r->redirects == 0 && gateway_slash(r, has_body))
        return PT_ROUTE_DONE;
    const pt_location *pre = prefix_of(r);
    if (access_denied(r, loc->ph.access, has_body))
        return PT_ROUTE_DONE;
    if (pre->ph.access != loc->ph.access && access_denied(r, pre->ph.access, has_body))
        return PT_ROUTE_DONE;
    switch (authenticate(r, auth_of(r, pre), has_body)) {
    case AUTH_DONE:
        return PT_ROUTE_DONE;
    case AUTH_WAIT:
        return PT_ROUTE_WAIT;
    case AUTH_OK:
        break;
    }
    return after_auth(r, pre, has_body);
}

/* The helper thread's answer, in the loop: the request goes on where it
 * stopped (the same location, path and settings: nothing changed them). */
static void on_verified(pt_authq_job *j)
{
    pt_req *r = j->owner;
    if (!r) {
        pt_authq_job_free(j); /* the client has gone */
        return;
    }
    r->phase_job = NULL;
    const pt_head *h = &r->head;
    bool has_body = h->is_chunked || h->content_length > 0;
    const pt_location *pre = prefix_of(r);
    if (j->rc == 1)
        pt_htpasswd_remember(j->user, j->ulen, j->pw, j->pwlen, j->hash, r->conn->w->loop.now);
    auth_rc rc = verdict(r, auth_of(r, pre), j->rc, j->user, j->ulen, has_body);
    pt_authq_job_free(j);
    /* the later phases may redirect internally and wait again */
    pt_route_rc next = rc == AUTH_OK ? after_auth(r, pre, has_body) : PT_ROUTE_DONE;
    if (next == PT_ROUTE_CONTINUE)
        pt_conn_phases_done(r);
    else if (next == PT_ROUTE_DONE && r->conn->state != PT_CS_CLOSED)
        pt_resp_kick(r);
}

void pt_router_abort(pt_req *r)
{
    if (!r)
        return; /* idle: nothing waits */
    pt_authq_job *j = r->phase_job;
    if (j)
        j->owner = NULL;
    r->phase_job = NULL;
}
