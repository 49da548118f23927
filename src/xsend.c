/* xsend.c: a backend's X-Sendfile / X-LIGHTTPD-send-file (a file path,
 * opened beneath one of the location's sendfile_dirs with its symlink
 * policy) or X-Accel-Redirect (a local URI, an internal redirect that may
 * reach "internal" locations). The file goes through static.c: ranges,
 * preconditions, sendfile and the open-file cache all apply. */
#include "first.h"
#include "xsend.h"
#include "cgi_resp.h"
#include "conn.h"
#include "resp.h"
#include "gw.h"
#include "log.h"
#include "static.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Backend headers that describe its own body, not the file: the file's
 * validators and framing replace them (as lighttpd does). */
static const char *const replaced[] = {
    "ETag",          "Last-Modified",    "Accept-Ranges",
    "Content-Range", "Content-Encoding", "Content-Location",
    "Location",      "Content-Type",
};

static bool is_replaced(pt_str n)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(replaced); i++)
        if (pt_str_ieq(n.p, n.len, replaced[i]))
            return true;
    return false;
}

/* Keep the backend's own headers (Content-Disposition, Cache-Control,
 * Set-Cookie...) on the connection, as raw header lines, and its
 * Content-Type apart (the file's MIME type when it set none). */
static bool keep_headers(pt_req *r, const pt_cgi_resp *cr)
{
    pt_xsend_release(r); /* an earlier X-Accel-Redirect's, when it led here */
    size_t need = 1;
    for (size_t i = 0; i < cr->nhdrs; i++)
        need += pt_cgi_hdr_name(cr, i).len + pt_cgi_hdr_value(cr, i).len + 4;
    char *h = malloc(need);
    if (!h)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < cr->nhdrs; i++) {
        pt_str k = pt_cgi_hdr_name(cr, i), v = pt_cgi_hdr_value(cr, i);
        if (pt_str_ieq(k.p, k.len, "Content-Type") && !r->xs_ctype) {
            r->xs_ctype = strndup(v.p, v.len);
            if (!r->xs_ctype) {
                free(h);
                return false;
            }
        }
        if (is_replaced(k))
            continue;
        memcpy(h + n, k.p, k.len);
        n += k.len;
        memcpy(h + n, ": ", 2);
        memcpy(h + n + 2, v.p, v.len);
        n += 2 + v.len;
        memcpy(h + n, "\r\n", 2);
        n += 2;
    }
    r->xs_hdrs = h;
    r->xs_hdrs_len = n;
    return true;
}

/* The allowed directory path lies beneath, and the rest of path relative
 * to it; NULL when path is not absolute, has "." or ".." segments, or lies
 * outside every directory (string comparison on whole segments; the open
 * beneath the directory's fd then keeps symlinks and renames in). */
static const char *below_dirs(const pt_location *l, const char *path, const char **dir)
{
    if (path[0] != '/')
        return NULL;
    for (const char *s = path; *s;) {
        while (*s == '/')
            s++;
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return NULL;
        s += len;
    }
    for (size_t i = 0; i < l->nsendfile_dirs; i++) {
        const char *d = l->sendfile_dirs[i];
        size_t dl = strcmp(d, "/") == 0 ? 0 : strlen(d);
        if (strncmp(path, d, dl) != 0 || path[dl] != '/')
            continue;
        const char *rel = path + dl;
        while (*rel == '/')
            rel++;
        if (*rel == '\0')
            return NULL; /* the directory itself */
        *dir = d;
        return rel;
    }
    return NULL;
}

bool pt_xsend_take(pt_gw *g)
{
    pt_req *r = g->r;
    const pt_cgi_resp *cr = &g->resp;
    const char *what = cr->xsend_kind == PT_XSEND_FILE ? "X-Sendfile" : "X-Accel-Redirect";
    if (cr->xsend_kind == PT_XSEND_NONE)
        return false;
    if (!r->loc || !r->loc->x_sendfile) {
        /* stripped all the same: it names a path the client has no use for */
        pt_log_info("%s from the backend ignored (x_sendfile is off), client: %s:%u", what,
                    pt_conn_req_ip(r), r->peer_port);
        return false;
    }
    if (cr->status != 200) {
        /* as mod_xsendfile: only a successful answer hands over a file */
        pt_log_info("%s from the backend ignored with status %d, client: %s:%u", what, cr->status,
                    pt_conn_req_ip(r), r->peer_port);
        return false;
    }
    /* copies first: detaching may free the transport and its parser */
    char *val = strndup(cr->buf + cr->xsend_off, cr->xsend_len);
    bool ok = val && keep_headers(r, cr);
    int kind = cr->xsend_kind;
    g->headers_done = true;
    g->ops->detach(g);
    if (!ok) {
        free(val);
        pt_xsend_release(r);
        pt_conn_reject(r, 500, "out of memory", false);
        pt_resp_kick(r);
        return true;
    }
    if (kind == PT_XSEND_URI) {
        if (val[0] != '/') {
            char esc[600];
            pt_escape_log(val, PT_MIN(strlen(val), (size_t)512), esc, sizeof(esc));
            pt_log_error("X-Accel-Redirect \"%s\" is not a local URI, client: %s:%u", esc,
                         pt_conn_req_ip(r), r->peer_port);
            pt_xsend_release(r);
            pt_conn_reject(r, 502, NULL, false);
            pt_resp_kick(r);
        } else {
            pt_conn_local_redirect(r, val, strlen(val));
        }
        free(val);
        return true;
    }
    const char *dir = NULL, *rel = below_dirs(r->loc, val, &dir);
    if (!rel) {
        /* a backend bug or an injected path: the operator needs to see it */
        char esc[600];
        pt_escape_log(val, PT_MIN(strlen(val), (size_t)512), esc, sizeof(esc));
        pt_log_error("X-Sendfile \"%s\" is not beneath the location's sendfile_dirs, client: "
                     "%s:%u",
                     esc, pt_conn_req_ip(r), r->peer_port);
        pt_xsend_release(r);
        pt_conn_reject(r, 403, NULL, false);
    } else {
        pt_static_serve_below(r, dir, rel);
    }
    free(val);
    pt_resp_kick(r);
    return true;
}

void pt_xsend_release(pt_req *r)
{
    if (!r)
        return;
    free(r->xs_hdrs);
    free(r->xs_ctype);
    r->xs_hdrs = NULL;
    r->xs_ctype = NULL;
    r->xs_hdrs_len = 0;
}
