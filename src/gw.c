/* gw.c: the gateway path shared by CGI and FastCGI: script resolution by
 * path walk (through the resolver, resolve.c), the request's
 * meta-variables, the response side (header block, framing, buffering with
 * a spill file, back-pressure) and the wait queue.
 * cgi.c and fcgi.c differ only in how bytes reach the program. */
#include "first.h"
#include "gw.h"
#include "regex.h"
#include "router.h"
#include "body.h"
#include "cache.h"
#include "conn.h"
#include "resp.h"
#include "listen.h"
#include "log.h"
#include "resolve.h"
#include "rewrite.h"
#include "stats.h"
#include "tls.h"
#include "util.h"
#include "xsend.h"
#include "zresp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PT_GW_STREAM_HIGH (64u * 1024u) /* unbuffered: stop reading above this */

void pt_gw_init(pt_gw *g, const pt_gw_ops *ops, pt_req *r, bool buffering, bool nph)
{
    const pt_limits *lim = &r->conn->w->cfg->limits;
    g->ops = ops;
    g->r = NULL;
    g->nph = nph;
    g->headers_done = false;
    g->buffering = buffering;
    g->cl = -1;
    g->sent = 0;
    g->spill_fd = -1;
    g->spill_off = 0;
    g->z = NULL;
    g->cache = NULL;
    pt_cgi_resp_init(&g->resp, (size_t)lim->gw_header_max, lim->max_headers);
}

void pt_gw_release(pt_gw *g)
{
    pt_cgi_resp_free(&g->resp);
    pt_compress_free(g->z);
    g->z = NULL;
    if (g->spill_fd >= 0)
        close(g->spill_fd);
    g->spill_fd = -1;
}

void pt_gw_attach(pt_gw *g, pt_req *r)
{
    g->r = r;
    r->gw = g;
    r->gw_done = false;
    g->cache = pt_cache_fill_of(r);
    if (r->gw_t_start == 0)
        r->gw_t_start = r->conn->w->loop.now ? r->conn->w->loop.now : 1;
}

void pt_gw_unlink(pt_gw *g)
{
    pt_req *r = g->r;
    g->r = NULL;
    g->cache = NULL; /* the request's: it ends with the request */
    if (r && r && r->gw == g) {
        r->gw = NULL;
        if (r->gw_t_start && !r->gw_ms_set) {
            r->gw_ms = r->conn->w->loop.now - r->gw_t_start;
            r->gw_ms_set = true;
        }
    }
}

/* ---- response ----------------------------------------------------------- */

void pt_gw_fail(pt_gw *g, int status, const char *why)
{
    pt_req *r = g->r;
    if (!r)
        return;
    /* the connection still points at g: it detaches (or aborts) g when it
     * is done, as for any response */
    if (g->headers_done && !g->nph && r->bytes_written == 0 && r->head_out_start == 0 &&
        pt_resp_unqueue(r)) {
        /* the head is queued but nothing of it reached the client: the
         * status can still say what happened (a 502, not a cut) */
        g->headers_done = false;
    }
    if (g->headers_done) {
        /* RFC 9112 §8: a body without chunked coding or Content-Length
         * (HTTP/1.0, NPH) ends at the close and counts as complete unless
         * the connection reports an error: a reset, not a FIN */
        bool delimited_by_close = !r->chunked_out && (g->cl < 0 || g->z) && !r->is_head &&
                                  r->status != 204 && r->status != 304;
        pt_resp_cut(r, delimited_by_close ? PT_CUT_RESET : PT_CUT_SHORT);
        r->gw_done = true;
        pt_resp_reset(r);
        return;
    }
    g->headers_done = true;
    pt_conn_reject(r, status, why, false);
    r->gw_done = true;
    pt_resp_kick(r);
}

/* Returns PT_GW_GONE after a local redirect. */
static int emit_head(pt_gw *g)
{
    pt_req *r = g->r;
    pt_cgi_resp *cr = &g->resp;
    g->headers_done = true;
    if (cr->local_redirect) {
        /* RFC 3875 §6.2.2: serve the local URI instead; the program's
         * remaining output (there should be none) is dropped */
        g->ops->detach(g);
        pt_conn_local_redirect(r, cr->location.p, cr->location.len);
        return PT_GW_GONE;
    }
    /* X-Sendfile / X-Accel-Redirect: the file or URI instead of the body */
    if (pt_xsend_take(g))
        return PT_GW_GONE;
    /* the backend's 304 to the validators of an expired entry: the entry */
    if (cr->status == 304 && g->cache && pt_cache_revalidated(g)) {
        g->ops->detach(g);
        pt_resp_kick(r);
        return PT_GW_GONE;
    }
    if (cr->status >= 500 && g->cache && pt_cache_stale_on_error(r, cr->status, "backend answer")) {
        /* the stale entry went out instead: the backend's body is dropped */
        g->ops->detach(g);
        pt_resp_kick(r);
        return PT_GW_GONE;
    }
    /* compression on the fly: the coded length is not known in advance */
    bool vary;
    pt_zcoding zc = pt_zresp_gw_choose(r, cr, &vary);
    g->z = pt_zresp_coder(r, zc, cr->content_length);
    if (!g->z && !r->is_head)
        zc = PT_ZC_NONE;
    pt_resp_begin_reason(r, cr->status, cr->reason);
    for (size_t i = 0; i < cr->nhdrs; i++) {
        pt_str n = pt_cgi_hdr_name(cr, i), v = pt_cgi_hdr_value(cr, i);
        pt_zresp_gw_header(r, n.p, n.len, v.p, v.len, zc != PT_ZC_NONE);
    }
    pt_zresp_coding_headers(r, zc, vary);
    g->cl = cr->content_length;
    pt_cache_gw_head(g);
    if (cr->no_buffering)
        g->buffering = false;
    pt_resp_end_stream(r, zc != PT_ZC_NONE ? -1 : g->cl);
    return PT_GW_OK;
}

/* Body bytes (coded, when compressing) to the client: memory while the
 * queue is small, a spill file beyond gw_buffer_memory (only when
 * buffering). */
static void body_put(pt_gw *g, const char *p, size_t n)
{
    pt_req *r = g->r;
    const pt_limits *lim = &r->conn->w->cfg->limits;
    if (g->buffering && pt_resp_queued(r) >= lim->gw_buffer_memory) {
        if (g->spill_fd < 0)
            g->spill_fd = pt_body_tmpfile(r->conn->w->cfg->tmp_dir);
        if (g->spill_fd >= 0) {
            ssize_t wr = pwrite(g->spill_fd, p, n, (off_t)g->spill_off);
            if (wr == (ssize_t)n) {
                pt_resp_body_file(r, g->spill_fd, (off_t)g->spill_off, n);
                g->spill_off += n;
                return;
            }
        }
        /* no spill file (disk full...): memory, and reading pauses */
    }
    pt_resp_body(r, p, n);
}

static int coded_out(void *arg, const void *p, size_t n)
{
    body_put(arg, p, n);
    return 0;
}

/* The program's body bytes: checked against its Content-Length, coded when
 * compressing. Each piece is flushed through the coder: a program that
 * pauses has its output at the client, as without compression (a sync
 * flush costs a few bytes, the window is kept). */
static void body_out(pt_gw *g, const char *p, size_t n)
{
    pt_req *r = g->r;
    if (g->cl >= 0) {
        /* a declared Content-Length is a promise to the client: never more */
        uint64_t room = (uint64_t)g->cl - g->sent;
        if (n > room) {
            pt_log_warn("gateway response longer than its Content-Length; truncated, client: "
                        "%s:%u",
                        pt_conn_req_ip(r), r->peer_port);
            n = (size_t)room;
            pt_resp_cut(r, PT_CUT_NO_REUSE);
        }
    }
    g->sent += n;
    if (n == 0)
        return;
    if (g->cache)
        pt_cache_fill_body(g, p, n); /* the backend's bytes, before any coding */
    if (g->z) {
        if (pt_compress_write(g->z, p, n, PT_ZM_FLUSH, coded_out, g) < 0) {
            pt_log_error("compression failed, client: %s:%u", pt_conn_req_ip(r), r->peer_port);
            pt_resp_cut(r, PT_CUT_SHORT);
        }
        return;
    }
    body_put(g, p, n);
}

bool pt_gw_backlogged(const pt_gw *g)
{
    const pt_req *r = g->r;
    if (!r)
        return false;
    const pt_limits *lim = &r->conn->w->cfg->limits;
    /* the request's own queue: an HTTP/2 stream's, not the connection's */
    uint64_t queued = pt_resp_queued(r);
    if (!g->buffering || !g->headers_done)
        return queued >= PT_GW_STREAM_HIGH;
    if (queued >= PT_MAX(lim->gw_buffer_max, (uint64_t)PT_GW_STREAM_HIGH))
        return true;
    /* buffering, but the spill file is unusable: memory bound */
    return g->spill_fd < 0 && queued >= lim->gw_buffer_memory && g->spill_off > 0;
}

static void nph_status(pt_gw *g, const char *p, size_t n)
{
    /* "HTTP/1.1 200 OK": the status for the access log */
    if (n >= 12 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);
        if (sp && (size_t)(sp - p) + 4 <= n)
            g->r->status = atoi(sp + 1);
    }
    if (g->r->status == 0)
        g->r->status = 200;
}

int pt_gw_output(pt_gw *g, const char *p, size_t n, char *why, size_t whylen)
{
    pt_req *r = g->r;
    if (!r)
        return PT_GW_GONE;
    if (g->nph) {
        if (!g->headers_done) {
            g->headers_done = true;
            nph_status(g, p, n);
        }
        /* verbatim, HEAD included; the program frames its own response */
        if (pt_resp_raw(r, p, n) < 0) {
            snprintf(why, whylen, "NPH output cannot be passed on");
            return PT_GW_BAD;
        }
        return PT_GW_OK;
    }
    if (!g->headers_done) {
        size_t used = 0;
        int rc = pt_cgi_resp_feed(&g->resp, p, n, &used);
        if (rc == PT_CGI_RESP_MORE)
            return PT_GW_OK;
        if (rc == PT_CGI_RESP_ERROR) {
            snprintf(why, whylen, "invalid response header: %s", g->resp.error);
            return PT_GW_BAD;
        }
        if (g->resp.status < 200) {
            /* an interim response cannot be relayed as the final one */
            snprintf(why, whylen, "invalid response header: 1xx status");
            return PT_GW_BAD;
        }
        if (emit_head(g) == PT_GW_GONE)
            return PT_GW_GONE;
        p += used;
        n -= used;
    }
    body_out(g, p, n);
    return PT_GW_OK;
}

int pt_gw_end(pt_gw *g, char *why, size_t whylen)
{
    pt_req *r = g->r;
    if (!r)
        return PT_GW_OK;
    if (!g->headers_done && !g->nph) {
        pt_cgi_resp_eof(&g->resp);
        snprintf(why, whylen, "invalid response header: %s",
                 g->resp.error ? g->resp.error : "no output");
        return PT_GW_BAD;
    }
    /* HEAD, 204 and 304 carry a Content-Length but no body (RFC 9110 §8.6) */
    if (g->cl >= 0 && g->sent < (uint64_t)g->cl && !r->is_head && r->status != 204 &&
        r->status != 304) {
        pt_log_warn("gateway response ended before its Content-Length, client: %s:%u",
                    pt_conn_req_ip(r), r->peer_port);
        pt_resp_cut(r, PT_CUT_SHORT);
    } else if (!g->nph) {
        if (g->z && pt_compress_write(g->z, NULL, 0, PT_ZM_FINISH, coded_out, g) < 0) {
            pt_resp_cut(r, PT_CUT_SHORT); /* no last chunk: the client sees the cut */
        } else {
            pt_resp_body_end(r);
            if (g->cache)
                pt_cache_fill_end(g);
        }
    }
    r->gw_done = true;
    pt_resp_kick(r);
    return PT_GW_OK;
}

/* ---- finding the script ------------------------------------------------- */

static bool is_hidden_seg(const char *p, size_t len)
{
    return len > 0 && p[0] == '.';
}

/* Walk rel (normalised, no leading '/') beneath base (its fd basefd):
 * the first regular file is the script. Each candidate prefix is opened
 * by the resolver, under the symlink policy, and judged on fstat of what
 * was opened; the script's fd goes to *fd (the caller runs what was
 * checked). Returns 0 or an HTTP status; *script_len = bytes of rel
 * naming the script. An extension rule names only files with it. */
static int walk(int basefd, const char *base, const char *path, const char *rel, size_t rlen,
                const pt_location *loc, bool allow_dot, bool follow, size_t *script_len, int *fd,
                int *dirfd)
{
    char buf[PATH_MAX];
    if (rlen >= sizeof(buf))
        return 404;
    size_t i = 0;
    int last = -1, rc = 403; /* the last directory: the script's */
    while (i < rlen) {
        size_t j = i;
        while (j < rlen && rel[j] != '/')
            j++;
        if (j == i)
            break; /* "dir/" itself: no script named */
        if (!allow_dot && is_hidden_seg(rel + i, j - i)) {
            rc = 404;
            break;
        }
        memcpy(buf, rel, j);
        buf[j] = '\0';
        struct stat st;
        /* readable when it can be (cgi.c looks for "#!"), else O_PATH */
        int f = pt_resolve_stat(basefd, base, buf, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                                follow, &st);
        if (f < 0 && errno == EACCES)
            f = pt_resolve_stat(basefd, base, buf, O_PATH | O_CLOEXEC, follow, &st);
        if (f < 0) {
            rc = pt_resolve_status(errno) == 403 ? 403 : 404;
            break;
        }
        if (S_ISREG(st.st_mode)) {
            bool wrong_ext =
                loc->match == PT_MATCH_EXT &&
                (j - i <= loc->pattern_len ||
                 memcmp(rel + j - loc->pattern_len, loc->pattern, loc->pattern_len) != 0);
            /* a regex location's script is a path its regex matches: "\.php$"
             * never runs "/up/img.png" for "/up/img.png/x.php" */
            bool wrong_rx = loc->match == PT_MATCH_REGEX && !loc->alias_tmpl &&
                            !pt_regex_match(loc->rx, path, (size_t)(rel + j - path), NULL, 0);
            /* a regex alias's captures name the script itself (rel is
             * their name, not the path): nothing may follow it, so
             * "(.+\.php)" never runs "img.png" of "img.png/x.php" */
            if (loc->alias_tmpl && j < rlen)
                wrong_rx = true;
            if (wrong_ext || wrong_rx) {
                close(f);
                rc = 404;
                break;
            }
            *script_len = j;
            *fd = f;
            *dirfd = last;
            return 0;
        }
        if (!S_ISDIR(st.st_mode)) {
            close(f);
            break;
        }
        if (last >= 0)
            close(last);
        last = f;
        i = j + 1;
    }
    if (last >= 0)
        close(last);
    /* a script directory's subdirectory named without its slash (or the
     * location's own "/cgi-bin"): 301 to the slash, where its index file
     * runs, as for static directories (nginx and lighttpd do the same) */
    if (rc == 403 && loc->match == PT_MATCH_PREFIX && !loc->alias_tmpl &&
        (rlen == 0 || i == rlen + 1) && rel[(ptrdiff_t)rlen - 1] != '/')
        return 301;
    return rc; /* 403: only directories, nothing to run */
}

/* Without the file check (FastCGI require_file = false): the first segment
 * ending in the extension names the script. */
static int split_ext(const char *rel, size_t rlen, const pt_location *loc, size_t *script_len)
{
    size_t i = 0;
    while (i < rlen) {
        size_t j = i;
        while (j < rlen && rel[j] != '/')
            j++;
        if (j - i > loc->pattern_len &&
            memcmp(rel + j - loc->pattern_len, loc->pattern, loc->pattern_len) == 0) {
            *script_len = j;
            return 0;
        }
        i = j + 1;
    }
    return 404;
}

/* The prefix location through whose alias or root an extension or exact
 * location without a directory of its own finds its scripts, or NULL;
 * *skip: the bytes of path the alias stands for. The path is mapped before
 * the handler is chosen, as lighttpd's alias.url and Apache's Alias are:
 * Nagios' /nagios4/side.php runs from the directory /nagios4/ is aliased to. */
static const pt_location *mapped_by(const pt_req *r, const pt_location *loc, const char *path,
                                    size_t plen, size_t *skip)
{
    if (loc->match == PT_MATCH_PREFIX || loc->root || loc->alias || loc->cgi_dir ||
        loc->cgi_program)
        return NULL;
    const pt_location *pre = pt_router_prefix(r->vhost, path, plen);
    if (!pre || (!pre->alias && !pre->root))
        return NULL;
    *skip = 0;
    if (pre->alias) {
        ssize_t o = pt_router_alias_rel(pre->pattern, pre->pattern_len, path, plen);
        if (o < 0)
            return NULL; /* "/iconsX.php" is not under "/icons" */
        *skip = (size_t)o;
    }
    return pre;
}

int pt_gw_resolve(pt_req *r, pt_gw_script *scr, bool do_walk)
{
    const pt_location *loc = r->loc;
    const char *path = r->path;
    size_t plen = r->path_len;
    size_t map_skip = 0;
    const pt_location *map = mapped_by(r, loc, path, plen, &map_skip);
    scr->filename[0] = scr->dir[0] = '\0';
    scr->fd = scr->dir_fd = -1;
    scr->dir_fd_owned = false;
    /* an aliased gateway's DOCUMENT_ROOT is its alias, as nginx's
     * $document_root and lighttpd's basedir are */
    scr->doc_root = loc->alias ? loc->alias : loc->root ? loc->root : r->vhost->root;
    if (map)
        scr->doc_root = map->alias ? map->alias : map->root;
    size_t pfx = loc->match == PT_MATCH_PREFIX ? loc->pattern_len : 0;
    if (pfx > 0 && loc->pattern[pfx - 1] == '/')
        pfx--; /* keep the '/' in the remainder */
    if (pfx > plen)
        pfx = plen; /* "/app" for a "/app/" location */
    if (loc->alias && !loc->alias_tmpl &&
        pt_router_alias_rel(loc->pattern, loc->pattern_len, path, plen) < 0)
        return 404; /* "/cgitX" under "/cgit": not the alias's */

    if (loc->cgi_program || (!do_walk && !loc->cgi_dir && loc->match == PT_MATCH_PREFIX)) {
        /* one program for the whole prefix: SCRIPT_NAME is the prefix */
        if (loc->cgi_program) {
            snprintf(scr->filename, sizeof(scr->filename), "%s", loc->cgi_program);
        } else {
            /* root + prefix, every request of an application: no printf */
            const char *root = strcmp(scr->doc_root, "/") == 0 ? "" : scr->doc_root;
            size_t rl = strlen(root);
            if (rl + pfx >= sizeof(scr->filename))
                return 404;
            memcpy(scr->filename, root, rl);
            memcpy(scr->filename + rl, path, pfx);
            scr->filename[rl + pfx] = '\0';
        }
        scr->script_name_len = pfx;
        scr->path_info_off = pfx;
    } else {
        const char *base = loc->cgi_dir ? loc->cgi_dir : scr->doc_root;
        size_t skip = loc->cgi_dir ? pfx : map_skip; /* URL part that maps onto base */
        /* the mapping prefix's symlink and dot-file policy, unless loc has its own */
        const pt_location *pol = map ? map : loc;
        const char *rel = path + skip;
        size_t rlen = plen - skip;
        /* a regex location's alias: the name its captures make, beneath
         * the alias directory (cgi_dir), found by the same walk */
        static char rx_name[PATH_MAX];
        if (loc->alias_tmpl) {
            long n = pt_rewrite_alias_rel(loc, path, plen, rx_name, sizeof(rx_name));
            if (n < 0)
                return 404;
            rel = rx_name;
            rlen = (size_t)n;
        }
        while (rlen > 0 && *rel == '/') {
            rel++;
            rlen--;
        }
        size_t slen = 0;
        bool allow_dot =
            loc->own_opts & PT_OWN_ALLOW_DOTFILES ? loc->allow_dotfiles : pol->allow_dotfiles;
        bool follow =
            loc->own_opts & PT_OWN_FOLLOW_SYMLINKS ? loc->follow_symlinks : pol->follow_symlinks;
        int st = 0;
        if (do_walk) {
            /* beneath the script directory, or the document root */
            int basefd = loc->cgi_dir ? loc->dir_fd
                         : map        ? (map->cgi_dir ? map->dir_fd : -1)
                         : loc->root  ? -1
                                      : r->vhost->root_fd;
            int own = -1;
            if (basefd < 0)
                basefd = own = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (basefd < 0)
                st = pt_resolve_status(errno);
            else
                st = walk(basefd, base, path, rel, rlen, loc, allow_dot, follow, &slen, &scr->fd,
                          &scr->dir_fd);
            scr->dir_fd_owned = scr->dir_fd >= 0;
            if (!st && scr->dir_fd < 0) {
                /* the script sits in base itself: its working directory */
                scr->dir_fd = basefd;
                scr->dir_fd_owned = own >= 0;
                own = -1;
            }
            if (own >= 0)
                close(own);
        } else if (loc->match == PT_MATCH_EXT)
            st = split_ext(rel, rlen, loc, &slen);
        else
            slen = rlen; /* prefix + dir without the file check: all of it */
        if (st)
            return st;
        /* base "/" rel: joined without printf (every request of a script) */
        const char *b = strcmp(base, "/") == 0 ? "" : base;
        size_t bl = strlen(b);
        if (bl + 1 + slen >= sizeof(scr->filename)) {
            pt_gw_script_close(scr);
            return 404;
        }
        memcpy(scr->filename, b, bl);
        scr->filename[bl] = '/';
        memcpy(scr->filename + bl + 1, rel, slen);
        scr->filename[bl + 1 + slen] = '\0';
        /* SCRIPT_NAME is the whole path under a regex alias (nginx's
         * $fastcgi_script_name there), PATH_INFO empty */
        size_t consumed = loc->alias_tmpl ? plen : (size_t)(rel - path) + slen;
        scr->script_name_len = consumed;
        scr->path_info_off = consumed;
    }
    /* the directory: up to the last '/' ("/" without one) */
    const char *slash = strrchr(scr->filename, '/');
    size_t dl = slash ? (size_t)(slash - scr->filename) : 1;
    memcpy(scr->dir, slash && slash != scr->filename ? scr->filename : "/", dl);
    scr->dir[dl] = '\0';
    return 0;
}

void pt_gw_reject(pt_req *r, int st, const char *why)
{
    if (st == 301) {
        pt_resp_redirect_slash(r);
        return;
    }
    pt_conn_reject(r, st, why, false);
}

void pt_gw_script_close(pt_gw_script *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->dir_fd >= 0 && s->dir_fd_owned)
        close(s->dir_fd);
    s->fd = s->dir_fd = -1;
    s->dir_fd_owned = false;
}

/* ---- meta-variables ----------------------------------------------------- */

/* SERVER_ADDR and SERVER_PORT: the request keeps them once read. A
 * listener bound to one address already knows them (no system call per
 * request); a wildcard one's connection asks its socket. */
static void local_addr(pt_req *r)
{
    if (r->local_known)
        return;
    const pt_conn *c = r->conn;
    const pt_listener *l = c->listener ? &c->w->ls[c->listener - 1] : NULL;
    if (l && l->local_fixed) {
        memcpy(r->local_ip, l->local_ip, sizeof(r->local_ip));
        memcpy(r->local_port, l->local_port, sizeof(r->local_port));
    } else {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0)
            ss.ss_family = AF_UNSPEC;
        pt_listen_local_text(&ss, r->local_ip, r->local_port);
    }
    r->local_known = true;
}

void pt_gw_env_init(pt_gw_env *e, pt_req *r, const pt_gw_script *s, const char *path)
{
    pt_gw_env_init_for(e, r, s, path, true);
}

void pt_gw_env_init_for(pt_gw_env *e, pt_req *r, const pt_gw_script *s, const char *path, bool meta)
{
    const pt_head *h = &r->head;
    /* HTTP (meta false) reads the local address only for a request without
     * Host (the Host it sends upstream is then SERVER_NAME's fallback) */
    bool local = meta || h->host.len == 0;
    if (local)
        local_addr(r);
    const char *lip = local ? r->local_ip : "";
    const char *lport = local ? r->local_port : "";
    size_t rplen = meta ? pt_u64_dec(e->remote_port, r->peer_port) : 0;
    e->remote_port[rplen] = '\0';

    pt_str host = h->host;
    /* SERVER_NAME: the Host without its port (or the local address) */
    if (host.len) {
        if (host.p[0] == '[') {
            const char *end = memchr(host.p, ']', host.len);
            if (end)
                host.len = (size_t)(end - host.p) + 1;
        } else {
            const char *colon = memchr(host.p, ':', host.len);
            if (colon)
                host.len = (size_t)(colon - host.p);
        }
    } else {
        host.p = lip;
        host.len = strlen(lip);
    }
    const pt_location *loc = r->loc;
    const char *peer = pt_conn_req_ip(r);
    /* in place: the struct is large, a copy of it costs as much as its fill */
    pt_cgi_req *rq = &e->req;
    *rq = (pt_cgi_req){
        .method = h->method_str,
        .request_uri = h->target,
        .query = {h->has_query ? h->query.p : "", h->has_query ? h->query.len : 0},
        .server_name = host,
        .server_port = {lport, local ? strlen(lport) : 0},
        .server_addr = {lip, local ? strlen(lip) : 0},
        .remote_addr = {peer, strlen(peer)},
        .remote_port = {e->remote_port, rplen},
        .http_major = h->http_major,
        .http_minor = h->http_minor,
        .https = false, /* below, from the socket layer */
        .content_length = r->body_streaming ? (h->is_chunked ? -1 : h->content_length)
                          : (h->is_chunked || h->content_length >= 0) ? (int64_t)r->body.len
                                                                      : -1,
        .headers = h->headers,
        .nheaders = h->nheaders,
        /* credentials portico checked itself stay here unless asked for */
        .pass_authorization =
            loc->pass_authorization && (r->auth_user_len == 0 || loc->pass_authorization_set),
        .auth_type = {r->auth_user_len ? "Basic" : NULL, r->auth_user_len ? 5 : 0},
        .remote_user = {r->auth_user, r->auth_user_len},
        .redirect_status = 200,
        .server_software = r->conn->w->server_header,
        .env = loc->env,
        .nenv = loc->nenv,
        .pass_env = loc->pass_env,
        .npass_env = loc->npass_env,
        .path = path,
        .upgrade = loc->upgrade,
        .body_stream = r->body_streaming,
    };
    if (s) {
        /* the script's variables: none for HTTP, which has no script */
        rq->script_name = (pt_str){r->path, s->script_name_len};
        rq->path_info = (pt_str){r->path + s->path_info_off, r->path_len - s->path_info_off};
        rq->script_filename = (pt_str){s->filename, strlen(s->filename)};
        rq->document_root = (pt_str){s->doc_root, strlen(s->doc_root)};
    }
    /* REQUEST_ID only when asked for: programs see the variables they saw
     * before unless the configuration says otherwise */
    if (r->conn->w->cfg->request_id != PT_RID_OFF) {
        const char *id = pt_conn_request_id(r);
        rq->request_id = (pt_str){id, strlen(id)};
    }
    if (h->absolute_form) {
        /* REQUEST_URI is the origin-form part of an absolute-form target */
        const char *end = h->target.p + h->target.len;
        if (h->path.p >= h->target.p && h->path.p <= end) {
            rq->request_uri.p = h->path.p;
            rq->request_uri.len = (size_t)(end - h->path.p);
        }
    }
    pt_tls_info ti;
    if (pt_tls_info_get(&r->conn->sock, &ti)) {
        rq->https = true;
        rq->ssl_protocol = ti.protocol;
        rq->ssl_cipher = ti.cipher;
        rq->ssl_sni = ti.sni;
        rq->ssl_resumed = ti.resumed;
        rq->ssl_client_verify = ti.client_verify;
        rq->ssl_client_s_dn = ti.client_s_dn;
        rq->ssl_client_i_dn = ti.client_i_dn;
        rq->ssl_client_serial = ti.client_serial;
        rq->ssl_client_cert = ti.client_cert;
    }
}

/* ---- waiting for a slot ------------------------------------------------- */

void pt_gw_queue_push(pt_gw_queue *q, pt_req *r, pt_tlist *list, const char *why)
{
    r->gw_q = q;
    r->gw_q_why = why;
    r->gw_qnext = NULL;
    if (q->tail)
        q->tail->gw_qnext = r;
    else
        q->head = r;
    q->tail = r;
    q->len++;
    if (q->gauge)
        PT_STATS_SET(*q->gauge, q->len);
    pt_timer_arm(&r->conn->w->loop, pt_conn_req_timer(r), list);
}

void pt_gw_queue_remove(pt_req *r)
{
    pt_gw_queue *q = r ? r->gw_q : NULL;
    if (!q)
        return;
    pt_req **pp = &q->head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->gw_qnext;
    }
    if (*pp) {
        *pp = r->gw_qnext;
        if (q->tail == r)
            q->tail = prev;
        q->len--;
        if (q->gauge)
            PT_STATS_SET(*q->gauge, q->len);
    }
    r->gw_qnext = NULL;
    r->gw_q = NULL;
}

pt_req *pt_gw_queue_pop(pt_gw_queue *q)
{
    pt_req *r = q->head;
    if (!r)
        return NULL;
    pt_gw_queue_remove(r);
    pt_timer_stop(pt_conn_req_timer(r));
    return r;
}
