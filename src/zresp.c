/* zresp.c: compression on the fly, the response side. The decision follows
 * RFC 9110 §12.5.3 (Accept-Encoding, weights; br before gzip at equal
 * weight, as it is smaller at a like cost) and leaves alone what must not be
 * transformed: ranges, bodiless statuses, a coding already applied,
 * no-transform. A static file is read and coded in bounded rounds, one per
 * drained output queue: the connection's back-pressure is the queue. */
#include "first.h"
#include "zresp.h"
#include "cgi_resp.h"
#include "conn.h"
#include "fcache.h"
#include "gw.h"
#include "h1_head.h"
#include "resp.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* input coded per round of a static file: the output of one round (at most
 * this, for incompressible data) is what a slow client can hold queued */
#define PT_ZF_ROUND (128u * 1024u)
#define PT_ZF_READ (32u * 1024u)

const pt_compress_cfg *pt_zresp_cfg(const pt_req *r)
{
    if (!r)
        return NULL;
    if (r->loc)
        return &r->loc->compress;
    return r->vhost ? &r->vhost->compress : NULL;
}

/* Is the media type t (parameters cut off) in the list? "type/ *" covers
 * a whole top-level type. */
static bool type_listed(const char *types, const char *t, size_t tl)
{
    while (tl > 0 && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
        tl--;
    const char *slash = memchr(t, '/', tl);
    if (!slash)
        return false;
    size_t major = (size_t)(slash - t);
    for (const char *p = types; *p; p += strlen(p) + 1) {
        size_t pl = strlen(p);
        if (pl == major + 2 && p[pl - 1] == '*' && strncasecmp(p, t, major + 1) == 0)
            return true;
        if (pl == tl && strncasecmp(p, t, tl) == 0)
            return true;
    }
    return false;
}

/* The best weight (0-1000) of coding over every Accept-Encoding field; -1
 * when none names it (or "*"). */
static int accept_q(const pt_req *r, const char *coding)
{
    int q = -1;
    const pt_head *h = &r->head;
    for (size_t i = 0; i < h->nheaders; i++)
        if (pt_str_ieq(h->headers[i].name, h->headers[i].name_len, "accept-encoding"))
            q = PT_MAX(q, pt_accept_q(h->headers[i].value, h->headers[i].value_len, coding));
    return q;
}

pt_zcoding pt_zresp_choose(const pt_req *r, const pt_zinfo *i, bool *vary)
{
    const pt_compress_cfg *z = pt_zresp_cfg(r);
    *vary = false;
    if (!z || !z->on)
        return PT_ZC_NONE;
    /* bodiless and partial responses are never coded: a 206's ranges are
     * of the identity bytes */
    if (i->status < 200 || i->status == 204 || i->status == 206 || i->status == 304)
        return PT_ZC_NONE;
    if (i->has_ce || i->no_transform || !i->ctype)
        return PT_ZC_NONE;
    /* a program's header value is a slice, not a string */
    const char *semi = memchr(i->ctype, ';', i->ctype_len);
    size_t tl = semi ? (size_t)(semi - i->ctype) : i->ctype_len;
    if (!type_listed(z->types, i->ctype, tl))
        return PT_ZC_NONE;
    if (i->length >= 0 && (uint64_t)i->length < z->min_length)
        return PT_ZC_NONE;
    *vary = true;
    /* a range request gets the identity bytes (their offsets are those of
     * the identity representation) */
    if (pt_head_get(&r->head, "Range"))
        return PT_ZC_NONE;
    int br = accept_q(r, "br"), gz = accept_q(r, "gzip"), id = accept_q(r, "identity");
    pt_zcoding zc = PT_ZC_NONE;
    int best = 0;
    if (br > 0 && br >= gz) {
        zc = PT_ZC_BR;
        best = br;
    } else if (gz > 0) {
        zc = PT_ZC_GZIP;
        best = gz;
    }
    /* identity named with a higher weight is what the client prefers */
    if (zc != PT_ZC_NONE && id > best)
        zc = PT_ZC_NONE;
    return zc;
}

/* A stream's tables at their largest (measured with pt_compress_mem: zlib
 * window 15 / memLevel 8, brotli's 64 KiB window at quality 5-7), taken
 * before it starts so that the budget holds when all of them grow. */
#define PT_Z_GZIP_PEAK (280 * 1024)
#define PT_Z_BR_PEAK (1900 * 1024)

pt_compress *pt_zresp_coder(const pt_req *r, pt_zcoding zc, int64_t length)
{
    const pt_compress_cfg *z = pt_zresp_cfg(r);
    if (r->is_head || zc == PT_ZC_NONE || !z)
        return NULL;
    /* limits.compress_memory: beyond it responses go out uncompressed
     * (slow readers of many large compressible responses would otherwise
     * hold megabytes each) */
    size_t peak = zc == PT_ZC_GZIP ? PT_Z_GZIP_PEAK : PT_Z_BR_PEAK;
    if (pt_compress_mem_total() + peak > r->conn->w->cfg->limits.compress_memory) {
        static uint64_t said;
        if (r->conn->w->loop.now - said >= 60000 || !said) {
            said = r->conn->w->loop.now ? r->conn->w->loop.now : 1;
            pt_log_info("limits.compress_memory (%llu bytes) in use: responses go out "
                        "uncompressed for now",
                        (unsigned long long)r->conn->w->cfg->limits.compress_memory);
        }
        return NULL;
    }
    pt_compress *s =
        pt_compress_new(zc, zc == PT_ZC_GZIP ? z->gzip_level : z->brotli_level, length);
    if (!s)
        pt_log_error("cannot start %s compression: out of memory", pt_compress_token(zc));
    return s;
}

/* ---- gateways ----------------------------------------------------------- */

/* Does a comma-separated header value (a slice) list the token t? */
static bool has_token(const char *v, size_t n, const char *t)
{
    size_t tl = strlen(t);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, t, tl) == 0 &&
            (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ' || v[i - 1] == '\t') &&
            (i + tl == n || v[i + tl] == ',' || v[i + tl] == ' ' || v[i + tl] == '\t' ||
             v[i + tl] == '='))
            return true;
    return false;
}

pt_zcoding pt_zresp_gw_choose(const pt_req *r, const pt_cgi_resp *cr, bool *vary)
{
    pt_zinfo i = {.status = cr->status, .length = cr->content_length};
    bool says_vary = false;
    const pt_compress_cfg *z = pt_zresp_cfg(r);
    /* compression off (the default): the fields need no look */
    if (!z || !z->on) {
        *vary = false;
        return PT_ZC_NONE;
    }
    for (size_t k = 0; k < cr->nhdrs; k++) {
        pt_str n = pt_cgi_hdr_name(cr, k), v = pt_cgi_hdr_value(cr, k);
        /* one comparison per field at most: the names differ in length */
        switch (n.len) {
        case 12:
            if (pt_str_ieq(n.p, n.len, "content-type")) {
                i.ctype = v.p;
                i.ctype_len = v.len;
            }
            break;
        case 16:
            i.has_ce |= pt_str_ieq(n.p, n.len, "content-encoding");
            break;
        case 13:
            if (pt_str_ieq(n.p, n.len, "cache-control"))
                i.no_transform |= has_token(v.p, v.len, "no-transform");
            else /* a part of something: leave it as it is */
                i.has_ce |= pt_str_ieq(n.p, n.len, "content-range");
            break;
        case 4:
            if (pt_str_ieq(n.p, n.len, "vary"))
                says_vary |= has_token(v.p, v.len, "accept-encoding") || has_token(v.p, v.len, "*");
            break;
        default:
            break;
        }
    }
    pt_zcoding zc = pt_zresp_choose(r, &i, vary);
    if (says_vary)
        *vary = false; /* the program's Vary says it already */
    return zc;
}

void pt_zresp_gw_header_coded(pt_req *r, const char *n, size_t nl, const char *v, size_t vl)
{
    if (pt_str_ieq(n, nl, "etag") && vl > 0 && v[0] == '"') {
        char w[512];
        if (vl + 2 <= sizeof(w)) {
            w[0] = 'W';
            w[1] = '/';
            memcpy(w + 2, v, vl);
            pt_resp_header_n(r, n, nl, w, vl + 2);
        }
        return; /* too long to weaken: better none than a false strong one */
    }
    if (pt_str_ieq(n, nl, "accept-ranges"))
        return; /* ranges are not offered for the coded bytes */
    pt_resp_header_n(r, n, nl, v, vl);
}

void pt_zresp_coding_headers(pt_req *r, pt_zcoding zc, bool vary)
{
    if (zc != PT_ZC_NONE) {
        const char *t = pt_compress_token(zc);
        pt_resp_header(r, "Content-Encoding", t, strlen(t));
    }
    if (vary)
        pt_resp_header(r, "Vary", "Accept-Encoding", 15);
}

/* ---- static files ------------------------------------------------------- */

/* The producer behind a compressed static file: a "gateway" to the
 * connection (gw.h's ops), so the connection drives it as it drives a
 * program: drain when the queue is empty, detach or abort at the end. */
typedef struct zfile {
    pt_gw gw; /* first: the connection holds &gw */
    pt_compress *z;
    uint64_t off, size;
} zfile;

static int to_body(void *arg, const void *p, size_t n)
{
    pt_resp_body(arg, p, n);
    return 0;
}

static void zf_free(zfile *f)
{
    pt_compress_free(f->z);
    free(f);
}

/* Code one round of the file. Returns 0, or -1 after a read or coder
 * failure (the response is cut: its head is out). */
static int zf_round(zfile *f)
{
    pt_req *r = f->gw.r;
    const struct pt_fent *e = r->file_ent;
    uint64_t done = 0;
    char buf[PT_ZF_READ];
    while (f->off < f->size && done < PT_ZF_ROUND) {
        size_t want = (size_t)PT_MIN((uint64_t)sizeof(buf), f->size - f->off);
        const char *p = buf;
        if (e->data) {
            p = e->data + f->off;
        } else {
            ssize_t n = pread(e->fd, buf, want, (off_t)f->off);
            if (n <= 0) {
                /* shorter than its fstat said: truncated under us */
                pt_log_error("cannot read a file to compress: %s, client: %s:%u",
                             n < 0 ? strerror(errno) : "file shrank", pt_conn_req_ip(r),
                             r->peer_port);
                return -1;
            }
            want = (size_t)n;
        }
        f->off += want;
        done += want;
        pt_zmode m = f->off == f->size ? PT_ZM_FINISH : PT_ZM_MORE;
        if (pt_compress_write(f->z, p, want, m, to_body, r) < 0)
            return -1;
    }
    if (f->size == 0 && pt_compress_write(f->z, NULL, 0, PT_ZM_FINISH, to_body, r) < 0)
        return -1;
    if (f->off == f->size) {
        pt_resp_body_end(r);
        r->gw_done = true;
    }
    return 0;
}

static void zf_drain(pt_gw *g)
{
    zfile *f = (zfile *)g;
    pt_req *r = g->r;
    if (!r || r->gw_done)
        return;
    if (zf_round(f) < 0) {
        r->conn->close_after = true;
        r->gw_done = true;
        pt_resp_reset(r);
        return;
    }
    /* the queue is flushed when the socket says it has room: one round
     * per wakeup, so other connections get their turn */
    pt_io_set(&r->conn->w->loop, &r->conn->io, EPOLLOUT);
}

static void zf_detach(pt_gw *g)
{
    pt_gw_unlink(g);
    zf_free((zfile *)g);
}

static const pt_gw_ops zfile_ops = {zf_drain, zf_detach, zf_detach};

int pt_zresp_file(pt_req *r, pt_compress *z, uint64_t size)
{
    zfile *f = calloc(1, sizeof(*f));
    if (!f) {
        pt_compress_free(z);
        return -1;
    }
    f->gw.ops = &zfile_ops;
    f->gw.spill_fd = -1;
    f->gw.cl = -1;
    f->gw.headers_done = true;
    f->gw.r = r;
    f->z = z;
    f->size = size;
    r->gw = &f->gw;
    r->gw_done = false;
    /* the first round goes out with the head */
    if (zf_round(f) < 0) {
        r->gw = NULL;
        zf_free(f);
        return -1;
    }
    return 0;
}
