/* static.c: static files. Opens relative to the vhost root fd and decides on
 * fstat of the opened fd (no stat/open race); validators, preconditions in
 * RFC 9110 §13.2.2 order, byte ranges, index files, listings; file bodies go
 * out with sendfile. What an open found is remembered for a short time by
 * the worker's open-file cache (fcache.c), keyed by everything that decided
 * it: the same open, the same result, only not repeated. */
#include "first.h"
#include "static.h"
#include "handler.h"
#include "rewrite.h"
#include "router.h"
#include "conn.h"
#include "dirlist.h"
#include "fcache.h"
#include "resp.h"
#include "httpdate.h"
#include "log.h"
#include "mime.h"
#include "precond.h"
#include "range.h"
#include "resolve.h"
#include "tls.h"
#include "util.h"
#include "zresp.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define PT_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

typedef struct opts {
    bool dir_listing, follow_symlinks, allow_dotfiles, precompressed;
} opts;

static opts effective_opts(const pt_req *r)
{
    const pt_vhost *v = r->vhost;
    const pt_location *l = r->loc;
    /* a location's values are resolved at load time (conf.c inherit_opts) */
    if (l)
        return (opts){l->dir_listing, l->follow_symlinks, l->allow_dotfiles, l->precompressed};
    return (opts){v->dir_listing, v->follow_symlinks, v->allow_dotfiles, v->precompressed};
}

/* Any segment starting with '.' is hidden, except a leading /.well-known/
 * (RFC 8615). */
static bool is_hidden(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (path[i] == '/' && i + 1 < len && path[i + 1] == '.') {
            if (i == 0 && len >= 12 && memcmp(path, "/.well-known", 12) == 0 &&
                (len == 12 || path[12] == '/'))
                continue;
            return true;
        }
    }
    return false;
}

/* Open rel below dirfd under the symlink policy. -1 with errno. */
static int open_below(int dirfd, const char *rel, const char *root, bool follow)
{
    return pt_resolve_open(dirfd, root, rel, PT_OPEN_FLAGS, follow);
}

static uint64_t rng_next(void)
{
    static uint64_t s;
    if (s == 0 && getrandom(&s, sizeof(s), GRND_NONBLOCK) != sizeof(s))
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s ? s : 1;
}

static void serve_listing(pt_req *r, int dirfd)
{
    char *html = NULL;
    size_t len = 0;
    if (pt_dirlist_html(dirfd, r->path, false, 10000, &html, &len) < 0) {
        pt_conn_reject(r, pt_resolve_status(errno), "cannot list directory", false);
        return;
    }
    pt_resp_begin(r, 200);
    pt_resp_header(r, "Content-Type", "text/html; charset=utf-8", 24);
    pt_resp_end(r, (int64_t)len);
    if (!r->is_head)
        pt_resp_body(r, html, len);
    free(html);
}

/* The Content-Type value for a file name into v (cap 1024); its length. */
static size_t content_type_value(const char *name, size_t len, char *v, size_t cap)
{
    static const char cs[] = "; charset=utf-8";
    const char *t = pt_mime_type(name, len);
    size_t tl = PT_MIN(strlen(t), cap);
    memcpy(v, t, tl);
    if (pt_mime_is_text(t) && tl + PT_SLEN(cs) <= cap) {
        memcpy(v + tl, cs, PT_SLEN(cs));
        tl += PT_SLEN(cs);
    }
    return tl;
}

static void content_type(pt_req *r, const char *name, size_t len)
{
    if (r->xs_ctype) {
        /* X-Sendfile: the backend's Content-Type wins (xsend.c) */
        pt_resp_header(r, "Content-Type", r->xs_ctype, strlen(r->xs_ctype));
        return;
    }
    char v[1024];
    size_t n = content_type_value(name, len, v, sizeof(v));
    pt_resp_header(r, "Content-Type", v, n);
}

/* The request fields a file's response depends on: the preconditions
 * (RFC 9110 §13.1), Range and If-Range (§14.2, §13.1.5); p NULL when
 * absent. */
typedef struct cond_fields {
    pt_str if_match, if_none_match, if_modified_since, if_unmodified_since, range, if_range;
} cond_fields;

/* the first of each, in one pass over the head (a by-name lookup apiece
 * walked it six times, every request) */
static void cond_fields_of(const pt_req *r, cond_fields *cf)
{
    memset(cf, 0, sizeof(*cf));
    for (size_t i = 0; i < r->head.nheaders; i++) {
        const pt_header *h = &r->head.headers[i];
        const char *n = h->name;
        pt_str *d = NULL;
        switch (h->name_len) {
        case 5:
            d = pt_name_is(n, "range", 5) ? &cf->range : NULL;
            break;
        case 8:
            d = pt_name_is(n, "if-match", 8)   ? &cf->if_match
                : pt_name_is(n, "if-range", 8) ? &cf->if_range
                                               : NULL;
            break;
        case 13:
            d = pt_name_is(n, "if-none-match", 13) ? &cf->if_none_match : NULL;
            break;
        case 17:
            d = pt_name_is(n, "if-modified-since", 17) ? &cf->if_modified_since : NULL;
            break;
        case 19:
            d = pt_name_is(n, "if-unmodified-since", 19) ? &cf->if_unmodified_since : NULL;
            break;
        default:
            break;
        }
        if (d && !d->p)
            *d = (pt_str){h->value, h->value_len};
    }
}

/* The backend's own headers when it named this file by X-Sendfile. */
static void xs_headers(pt_req *r)
{
    if (r->xs_hdrs_len)
        pt_resp_header_block(r, r->xs_hdrs, r->xs_hdrs_len);
}

static void validators(pt_req *r, const char *etag, size_t etag_len, const char *lm)
{
    xs_headers(r);
    pt_resp_header(r, "Last-Modified", lm, PT_HTTPDATE_LEN);
    pt_resp_header(r, "ETag", etag, etag_len);
}

/* A small file is read into the output queue behind its headers, so the
 * response leaves in one sendmsg (one segment) instead of a header write
 * and a sendfile; larger files go by sendfile. */
#define PT_STATIC_INLINE (16u * 1024u)
/* Kept content longer than this is queued by reference: a copy would not
 * fit in the head's pooled chunk and cost a malloc and a memcpy */
#define PT_STATIC_REF 4096u

/* The response's bytes pass through user space anyway (TLS without kernel
 * TLS; an HTTP/2 stream's DATA frames): a file's content kept in memory
 * saves its reads there, where plain HTTP/1.1's sendfile copies nothing. */
static bool copies_body(const pt_req *r)
{
    return r->h2_sid != 0 || pt_tls_copies(&r->conn->sock);
}

/* Is e's body sent from its kept content (no fstat, no read)? Content
 * above content_max only where the bytes are copied anyway. */
static bool from_memory(const pt_req *r, const pt_fent *e)
{
    return e->data && (e->data_len <= pt_fcache_content_max(r->conn->w->fcache) || copies_body(r));
}

/* Bytes [off, off + len) of e's body (the caller checked the range). */
static void body_part(pt_req *r, const pt_fent *e, uint64_t off, uint64_t len)
{
    if (!from_memory(r, e))
        pt_resp_body_file(r, e->fd, (off_t)off, len);
    else if (len > PT_STATIC_REF)
        pt_resp_body_ref(r, e->data + off, (size_t)len); /* held by r->file_ent */
    else
        pt_resp_body(r, e->data + off, (size_t)len);
}

/* One part head of a multipart/byteranges body (RFC 9110 §14.6). */
static size_t part_head(char *buf, size_t cap, const char *boundary, const char *ctype,
                        const pt_range *r, uint64_t size)
{
    int k = snprintf(buf, cap,
                     "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                     boundary, ctype, (unsigned long long)r->start, (unsigned long long)r->end,
                     (unsigned long long)size);
    return k < 0 ? 0 : PT_MIN((size_t)k, cap - 1);
}

static void serve_multipart(pt_req *r, const pt_range *rg, int n, uint64_t size, const char *name,
                            size_t name_len)
{
    char boundary[40];
    snprintf(boundary, sizeof(boundary), "%016llx%08llx", (unsigned long long)rng_next(),
             (unsigned long long)(rng_next() & 0xffffffffu));
    const char *t = pt_mime_type(name, name_len);
    char ctype[320], head[512];
    snprintf(ctype, sizeof(ctype), "%s%s", t, pt_mime_is_text(t) ? "; charset=utf-8" : "");
    /* two passes over the same formatting: the length must be known before
     * the first byte goes out */
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += part_head(head, sizeof(head), boundary, ctype, &rg[i], size) +
                 (rg[i].end - rg[i].start + 1);
    char tail[64];
    int tl = snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", boundary);
    total += (uint64_t)tl;
    pt_resp_headerf(r, "Content-Type", "multipart/byteranges; boundary=%s", boundary);
    pt_resp_end(r, (int64_t)total);
    if (r->is_head)
        return;
    for (int i = 0; i < n; i++) {
        size_t hl = part_head(head, sizeof(head), boundary, ctype, &rg[i], size);
        pt_resp_body(r, head, hl);
        body_part(r, r->file_ent, rg[i].start, rg[i].end - rg[i].start + 1);
    }
    pt_resp_body(r, tail, (size_t)tl);
}

static void body_whole(pt_req *r, int fd, uint64_t size)
{
    if (size > 0 && size <= PT_STATIC_INLINE) {
        char *dst = pt_resp_body_reserve(r, (size_t)size);
        if (dst && pread(fd, dst, (size_t)size, 0) == (ssize_t)size) {
            pt_resp_body_commit(r, (size_t)size);
            return;
        }
    }
    pt_resp_body_file(r, fd, 0, size);
}

/* The validators of a regular file's entry, and the header block of its
 * 200 response ("Content-Type", "Last-Modified", "ETag", "Accept-Ranges"):
 * made once per entry, so a cached file's head is a copy. */
static void entry_headers(pt_fent *e, const char *name, size_t name_len)
{
    const struct stat *st = &e->st;
    e->etag_len = pt_etag_make((uint64_t)st->st_ino, (uint64_t)st->st_size, st->st_mtim.tv_sec,
                               st->st_mtim.tv_nsec, e->etag);
    pt_httpdate_format(st->st_mtim.tv_sec, e->lm);
    char ct[1024];
    size_t ctl = content_type_value(name, name_len, ct, sizeof(ct));
    size_t cap = 14 + ctl + 17 + PT_HTTPDATE_LEN + 8 + e->etag_len + 24 + 1;
    char *h = malloc(cap);
    if (!h)
        return; /* the headers are then written one by one */
    int n = snprintf(h, cap,
                     "Content-Type: %.*s\r\nLast-Modified: %s\r\nETag: %.*s\r\n"
                     "Accept-Ranges: bytes\r\n",
                     (int)ctl, ct, e->lm, (int)e->etag_len, e->etag);
    if (n <= 0 || (size_t)n >= cap) {
        free(h);
        return;
    }
    e->hdr = h;
    e->hdr_len = (size_t)n;
    e->ctype_len = ctl;
}

/* The media type of e's file as its Content-Type says it (a charset
 * parameter may follow): the entry's, made once, or looked up. */
static pt_str entry_ctype(const pt_fent *e, const char *name, size_t name_len)
{
    if (e->hdr)
        return (pt_str){e->hdr + PT_SLEN("Content-Type: "), e->ctype_len};
    const char *t = pt_mime_type(name, name_len);
    return (pt_str){t, strlen(t)};
}

/* With precompressed on, the response depends on Accept-Encoding (RFC 9110
 * §12.5.5); a precompressed sibling goes out with its content coding. */
static void coding_headers(pt_req *r, const char *coding, bool vary)
{
    if (coding)
        pt_resp_header(r, "Content-Encoding", coding, strlen(coding));
    if (vary)
        pt_resp_header(r, "Vary", "Accept-Encoding", 15);
}

/* The 200 response for e coded on the fly in zc: no Content-Length (the
 * coded length is known at the end), chunked on HTTP/1.1; a weak ETag (RFC
 * 9110 §8.8.1: the same validator for another coding must not be strong);
 * no Accept-Ranges (ranges are of the identity bytes). HEAD gets the same
 * head and no body. */
static void serve_coded(pt_req *r, pt_fent *e, const char *name, size_t name_len, pt_zcoding zc)
{
    pt_compress *z = pt_zresp_coder(r, zc, (int64_t)e->st.st_size);
    if (!z && !r->is_head) {
        /* out of memory: the identity bytes, by sendfile */
        pt_resp_begin(r, 200);
        content_type(r, name, name_len);
        validators(r, e->etag, e->etag_len, e->lm);
        pt_resp_header(r, "Accept-Ranges", "bytes", 5);
        coding_headers(r, NULL, true);
        pt_resp_end(r, (int64_t)e->st.st_size);
        if (from_memory(r, e))
            body_part(r, e, 0, (uint64_t)e->st.st_size);
        else
            body_whole(r, e->fd, (uint64_t)e->st.st_size);
        return;
    }
    pt_resp_begin(r, 200);
    content_type(r, name, name_len);
    xs_headers(r);
    pt_resp_header(r, "Last-Modified", e->lm, PT_HTTPDATE_LEN);
    pt_resp_headerf(r, "ETag", "W/%.*s", (int)e->etag_len, e->etag);
    pt_zresp_coding_headers(r, zc, true);
    pt_resp_end_stream(r, -1);
    if (r->is_head)
        return;
    if (pt_zresp_file(r, z, (uint64_t)e->st.st_size) < 0) {
        /* the head is queued: only a cut connection can say it failed */
        r->conn->close_after = true;
        pt_resp_reset(r);
    }
}

/* The response for a regular file; the connection keeps e (its fd may be
 * sent from) until the response is done. name is the file's name as
 * requested (its MIME type), coding the content coding of e when e is a
 * precompressed sibling of that file, vary whether Accept-Encoding chose. */
static void serve_file(pt_req *r, pt_fent *e, const char *name, size_t name_len, const char *coding,
                       bool vary)
{
    r->file_ent = e;
    const struct stat *st = &e->st;
    if (e->etag_len == 0)
        entry_headers(e, name, name_len);
    const char *etag = e->etag, *lm = e->lm;
    size_t etag_len = e->etag_len;

    cond_fields cf;
    cond_fields_of(r, &cf);
    pt_precond pc = {
        .if_match = cf.if_match,
        .if_none_match = cf.if_none_match,
        .if_modified_since = cf.if_modified_since,
        .if_unmodified_since = cf.if_unmodified_since,
        .is_get_or_head = true,
        .etag = etag,
        .etag_len = etag_len,
        .last_modified = st->st_mtim.tv_sec,
    };
    int pst = pt_precond_eval(&pc);
    /* compression on the fly (zresp.c) of a file that is not itself coded */
    bool zvary = false;
    pt_zcoding zc = PT_ZC_NONE;
    if (!coding) {
        pt_str t = entry_ctype(e, name, name_len);
        pt_zinfo zi = {
            .status = 200, .ctype = t.p, .ctype_len = t.len, .length = (int64_t)st->st_size};
        zc = pt_zresp_choose(r, &zi, &zvary);
    }
    if (pst == 304) {
        pt_resp_begin(r, 304);
        /* the validators of the representation a 200 would have sent */
        if (zc != PT_ZC_NONE) {
            xs_headers(r);
            pt_resp_header(r, "Last-Modified", lm, PT_HTTPDATE_LEN);
            pt_resp_headerf(r, "ETag", "W/%.*s", (int)etag_len, etag);
        } else {
            validators(r, etag, etag_len, lm);
        }
        coding_headers(r, NULL, vary || zvary);
        pt_resp_end(r, -1);
        return;
    }
    if (pst == 412) {
        pt_conn_reject(r, 412, NULL, false);
        return;
    }

    uint64_t size = (uint64_t)st->st_size;
    pt_range ranges[64];
    int nr = 0;
    pt_str rh = cf.range;
    if (rh.p && r->head.method == PT_M_GET) {
        pt_str ir = cf.if_range;
        /* a Last-Modified less than a second old is only a weak validator
         * (RFC 9110 §8.8.2.2): then no date can match */
        time_t lmv = st->st_mtim.tv_sec < time(NULL) ? st->st_mtim.tv_sec : (time_t)-1;
        if (!ir.p || pt_if_range_ok(ir.p, ir.len, etag, etag_len, lmv)) {
            int max =
                (int)PT_MIN(r->conn->w->cfg->limits.max_ranges, (uint32_t)PT_ARRAY_LEN(ranges));
            nr = pt_range_parse(rh.p, rh.len, size, ranges, max);
        }
    }
    if (nr < 0) {
        r->allow = "GET, HEAD, OPTIONS";
        pt_resp_begin(r, 416);
        pt_resp_headerf(r, "Content-Range", "bytes */%llu", (unsigned long long)size);
        pt_resp_header(r, "Content-Type", "text/html; charset=utf-8", 24);
        static const char body[] = "<html><head><title>416 Range Not Satisfiable</title></head>"
                                   "<body><h1>416 Range Not Satisfiable</h1></body></html>\n";
        pt_resp_end(r, PT_SLEN(body));
        if (!r->is_head)
            pt_resp_body(r, body, PT_SLEN(body));
        return;
    }
    if (nr == 0 && zc != PT_ZC_NONE) {
        serve_coded(r, e, name, name_len, zc);
        return;
    }
    if (nr == 0) {
        pt_resp_begin(r, 200);
        if (e->hdr && !r->xs_hdrs) {
            pt_resp_header_block(r, e->hdr, e->hdr_len);
        } else {
            content_type(r, name, name_len);
            validators(r, etag, etag_len, lm);
            pt_resp_header(r, "Accept-Ranges", "bytes", 5);
        }
        coding_headers(r, coding, vary || zvary);
        pt_resp_end(r, (int64_t)size);
        if (r->is_head)
            return;
        if (from_memory(r, e))
            body_part(r, e, 0, size);
        else
            body_whole(r, e->fd, size);
        return;
    }
    pt_resp_begin(r, 206);
    validators(r, etag, etag_len, lm);
    pt_resp_header(r, "Accept-Ranges", "bytes", 5);
    coding_headers(r, coding, vary || zvary);
    if (nr == 1) {
        content_type(r, name, name_len);
        pt_resp_headerf(r, "Content-Range", "bytes %llu-%llu/%llu",
                        (unsigned long long)ranges[0].start, (unsigned long long)ranges[0].end,
                        (unsigned long long)size);
        uint64_t len = ranges[0].end - ranges[0].start + 1;
        pt_resp_end(r, (int64_t)len);
        if (!r->is_head)
            body_part(r, e, ranges[0].start, len);
        return;
    }
    serve_multipart(r, ranges, nr, size, name, name_len);
}

/* Where a lookup starts: the vhost's root fd, or a location's own root,
 * opened only when the cache cannot answer. */
typedef struct root_ref {
    const char *path;
    int fd;
    bool is_loc; /* fd is ours (opened from path) once >= 0 */
    int vhost;   /* index of the vhost, for the key */
} root_ref;

/* The cache key: what decides the outcome of the open. Kind ('P' a request
 * path, 'I' an index file in the directory rel; the precompressed siblings
 * of each have kinds of their own, see sibling_codings), the symlink
 * policy, the root (a vhost's root fd, or a location's root path), rel, and
 * for an index the index name. 0 when it does not fit (then nothing is
 * cached). */
static size_t make_key(char *k, size_t cap, char kind, bool follow, const root_ref *r,
                       const char *rel, size_t rel_len, const char *idx)
{
    size_t il = idx ? strlen(idx) + 1 : 0;
    size_t rl = r->is_loc ? strlen(r->path) + 1 : sizeof(int);
    size_t need = 3 + rl + rel_len + il;
    if (need > cap)
        return 0;
    size_t n = 0;
    k[n++] = kind;
    k[n++] = follow ? 'f' : 'b';
    k[n++] = r->is_loc ? 'L' : 'V';
    if (r->is_loc)
        memcpy(k + n, r->path, rl);
    else
        memcpy(k + n, &r->vhost, rl);
    n += rl;
    memcpy(k + n, rel, rel_len);
    n += rel_len;
    if (idx) {
        k[n++] = '\0';
        memcpy(k + n, idx, il - 1);
        n += il - 1;
    }
    return n;
}

/* What opening rel below base finds (base -1: the root of r), through the
 * cache. NULL after queuing an error response. */
static pt_fent *lookup(pt_req *r, root_ref *ref, char kind, int base, const char *rel,
                       size_t rel_len, const char *idx, bool follow)
{
    pt_worker *w = r->conn->w;
    char *key = w->fkey;
    size_t klen = w->fcache ? make_key(key, w->fkey_cap, kind, follow, ref, rel, rel_len, idx) : 0;
    pt_fent *e = klen ? pt_fcache_get(w->fcache, key, klen, w->loop.now) : NULL;
    if (e && e->fd >= 0 && S_ISREG(e->st.st_mode) && !from_memory(r, e)) {
        /* its body will be read from the file: a file written in place
         * since must not go out under the old length and validators */
        struct stat now;
        if (fstat(e->fd, &now) < 0 || !pt_fcache_same_file(&e->st, &now)) {
            pt_fcache_release(w->fcache, e);
            e = NULL;
        } else if (!e->data) {
            /* opened for a response that could send the file (or its
             * content made room for others): keep it now where there is
             * free room (evicting others for it would let two files take
             * turns at every request) */
            pt_fcache_load(w->fcache, e, copies_body(r), false);
        }
    }
    if (e)
        return e;
    if (base < 0 && ref->fd < 0) {
        ref->fd = open(ref->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (ref->fd < 0) {
            pt_log_error("cannot open location root \"%s\": %s", ref->path, strerror(errno));
            pt_conn_reject(r, 500, "location root", false);
            return NULL;
        }
    }
    const char *name = idx ? idx : rel;
    int dirfd = base >= 0 ? base : ref->fd;
    int fd = open_below(dirfd, name, ref->path, follow);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && pt_fcache_count(w->fcache) > 0) {
        /* the cache holds descriptors: give them back and try once more */
        pt_fcache_trim(w->fcache);
        fd = open_below(dirfd, name, ref->path, follow);
    }
    int err = fd < 0 ? errno : 0;
    struct stat st;
    bool fstat_failed = false;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        fstat_failed = true;
        err = errno;
        close(fd);
        fd = -1;
    }
    e = pt_fcache_put(klen ? w->fcache : NULL, key, klen, w->loop.now, err, fd,
                      fd >= 0 ? &st : NULL, fstat_failed);
    if (!e) {
        pt_conn_reject(r, 500, "out of memory", false);
        return NULL;
    }
    if (fd >= 0 && S_ISREG(st.st_mode))
        pt_fcache_load(w->fcache, e, copies_body(r), true);
    return e;
}

/* Precompressed siblings (NAME.br, NAME.gz), best first; each has cache
 * kinds of its own, for a request path and for an index file. */
static const struct {
    const char *coding, *ext;
    char kind_path, kind_index;
} sibling_codings[] = {
    {"br", ".br", 'b', 'B'},
    {"gzip", ".gz", 'g', 'G'},
};

/* The weight (0-1000) the request gives coding k of sibling_codings, over
 * every Accept-Encoding line; 0 when it names it nowhere (no field means
 * identity, as with nginx's gzip_static). */
static int coding_q(const pt_req *r, size_t k)
{
    int q = 0;
    for (size_t i = 0; i < r->head.nheaders; i++) {
        const pt_header *h = &r->head.headers[i];
        if (pt_str_ieq(h->name, h->name_len, "accept-encoding"))
            q = PT_MAX(q, pt_accept_q(h->value, h->value_len, sibling_codings[k].coding));
    }
    return q;
}

/* The precompressed sibling of the regular file name (below base, or the
 * request path when base is -1) in coding k: a regular file, or NULL with
 * *queued false. NULL with *queued true: an error response went out. */
static pt_fent *sibling(pt_req *r, root_ref *ref, int k, int base, const char *rel, size_t rel_len,
                        const char *idx, bool follow, bool *queued)
{
    char nm[PATH_MAX];
    const char *ext = sibling_codings[k].ext;
    const char *stem = idx ? idx : rel;
    size_t sl = idx ? strlen(idx) : rel_len;
    pt_fent *s;

    *queued = false;
    if (sl + strlen(ext) >= sizeof(nm))
        return NULL;
    memcpy(nm, stem, sl);
    strcpy(nm + sl, ext);
    if (idx)
        s = lookup(r, ref, sibling_codings[k].kind_index, base, rel, rel_len, nm, follow);
    else
        s = lookup(r, ref, sibling_codings[k].kind_path, -1, nm, sl + strlen(ext), NULL, follow);
    if (!s) {
        *queued = true;
        return NULL;
    }
    if (s->fd < 0 || s->fstat_failed || !S_ISREG(s->st.st_mode)) {
        pt_fcache_release(r->conn->w->fcache, s);
        return NULL;
    }
    return s;
}

/* Serve the regular file e (name: its last segment or index name), or its
 * precompressed sibling when on and accepted. false: an error response was
 * queued instead and e is still the caller's. */
static bool serve_regular(pt_req *r, const opts *o, root_ref *ref, pt_fent *e, int base,
                          const char *rel, size_t rel_len, const char *idx, const char *name)
{
    /* the accepted codings by weight, ties in table order */
    int order[PT_ARRAY_LEN(sibling_codings)], q[PT_ARRAY_LEN(sibling_codings)], n = 0;
    for (size_t k = 0; o->precompressed && k < PT_ARRAY_LEN(sibling_codings); k++) {
        int w = coding_q(r, k), j = n++;
        for (; j > 0 && q[j - 1] < w; j--) {
            order[j] = order[j - 1];
            q[j] = q[j - 1];
        }
        order[j] = (int)k;
        q[j] = w;
    }
    for (int i = 0; i < n && q[i] > 0; i++) {
        bool queued;
        pt_fent *s =
            sibling(r, ref, order[i], base, rel, rel_len, idx, o->follow_symlinks, &queued);
        if (queued)
            return false;
        if (s) {
            serve_file(r, s, name, strlen(name), sibling_codings[order[i]].coding, true);
            pt_fcache_release(r->conn->w->fcache, e);
            return true;
        }
    }
    serve_file(r, e, name, strlen(name), NULL, o->precompressed);
    return true;
}

/* The open the entry remembers failed: answer it (true) or go on. */
static bool refused(pt_req *r, const pt_fent *e)
{
    if (e->fstat_failed) {
        pt_conn_reject(r, 500, "fstat failed", false);
        return true;
    }
    if (!e->err)
        return false;
    int st = pt_resolve_status(e->err);
    /* a 404 is logged at debug level only: no strerror for nothing */
    pt_conn_reject(r, st, st != 404 || pt_log_level() >= PT_LOG_DEBUG ? strerror(e->err) : NULL,
                   false);
    return true;
}

void pt_static_serve(pt_req *r)
{
    opts o = effective_opts(r);
    if (!o.allow_dotfiles && is_hidden(r->path, r->path_len)) {
        pt_conn_reject(r, 404, "hidden file", false);
        return;
    }
    pt_fcache *fc = r->conn->w->fcache;
    root_ref ref = {r->vhost->root, r->vhost->root_fd, false,
                    (int)(r->vhost - r->conn->w->cfg->vhosts)};
    const char *rel = r->path_len > 1 ? r->path + 1 : ".";
    size_t rel_len = r->path_len > 1 ? r->path_len - 1 : 1;
    if (r->loc && (r->loc->root || r->loc->alias)) {
        ref.path = r->loc->alias ? r->loc->alias : r->loc->root;
        ref.fd = -1;
        ref.is_loc = true;
    }
    static char rx_name[PATH_MAX];
    if (r->loc && r->loc->alias_tmpl) {
        /* a regex location's alias: the name its captures make */
        long n = pt_rewrite_alias_rel(r->loc, r->path, r->path_len, rx_name, sizeof(rx_name));
        if (n < 0) {
            pt_conn_reject(r, 404, "outside the alias", false);
            return;
        }
        rel = rx_name;
        rel_len = (size_t)n;
    } else if (r->loc && r->loc->alias) {
        /* what follows the prefix, beneath the alias directory */
        ssize_t off =
            pt_router_alias_rel(r->loc->pattern, r->loc->pattern_len, r->path, r->path_len);
        if (off < 0) {
            pt_conn_reject(r, 404, "outside the alias", false);
            return;
        }
        rel = (size_t)off < r->path_len ? r->path + off : ".";
        rel_len = strlen(rel);
    }
    pt_fent *e = lookup(r, &ref, 'P', -1, rel, rel_len, NULL, o.follow_symlinks);
    if (!e)
        goto out;
    if (refused(r, e))
        goto out;
    if (S_ISREG(e->st.st_mode)) {
        const char *base = strrchr(r->path, '/');
        base = base ? base + 1 : r->path;
        if (serve_regular(r, &o, &ref, e, -1, rel, rel_len, NULL, base))
            e = NULL; /* the connection's now, or released */
        goto out;
    }
    if (!S_ISDIR(e->st.st_mode)) {
        pt_conn_reject(r, 403, "not a regular file", false);
        goto out;
    }
    if (r->path[r->path_len - 1] != '/') {
        pt_resp_redirect_slash(r);
        goto out;
    }
    for (size_t i = 0; i < r->vhost->nindex; i++) {
        const char *idx = r->vhost->index[i];
        pt_fent *ie = lookup(r, &ref, 'I', e->fd, rel, rel_len, idx, o.follow_symlinks);
        if (!ie)
            goto out;
        if (ie->fd >= 0 && S_ISREG(ie->st.st_mode)) {
            if (!serve_regular(r, &o, &ref, ie, e->fd, rel, rel_len, idx, idx))
                pt_fcache_release(fc, ie);
            goto out;
        }
        pt_fcache_release(fc, ie);
    }
    if (o.dir_listing) {
        serve_listing(r, e->fd);
        goto out;
    }
    pt_conn_reject(r, 403, "directory index forbidden", false);
out:
    pt_fcache_release(fc, e);
    if (ref.is_loc && ref.fd >= 0)
        close(ref.fd);
}

void pt_static_serve_below(pt_req *r, const char *root, const char *rel)
{
    opts o = effective_opts(r);
    size_t rel_len = strlen(rel);
    if (!o.allow_dotfiles && (rel[0] == '.' || is_hidden(rel, rel_len))) {
        pt_conn_reject(r, 404, "hidden file", false);
        return;
    }
    /* a root of its own in the cache key: the same open, the same answer */
    root_ref ref = {root, -1, true, 0};
    pt_fent *e = lookup(r, &ref, 'P', -1, rel, rel_len, NULL, o.follow_symlinks);
    if (!e)
        goto out;
    if (refused(r, e))
        goto out;
    if (!S_ISREG(e->st.st_mode)) {
        pt_conn_reject(r, 403, "not a regular file", false);
        goto out;
    }
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    if (serve_regular(r, &o, &ref, e, -1, rel, rel_len, NULL, base))
        e = NULL;
out:
    pt_fcache_release(r->conn->w->fcache, e);
    if (ref.fd >= 0)
        close(ref.fd);
}

static void start(pt_req *r)
{
    /* RFC 9110 §9.3.7: the methods a file allows (also for "OPTIONS *") */
    if (r->head.method == PT_M_OPTIONS) {
        pt_resp_begin(r, 200);
        pt_resp_header(r, "Allow", r->allow, strlen(r->allow));
        pt_resp_end(r, 0);
        return;
    }
    pt_static_serve(r);
}

const pt_handler pt_static_handler = {
    .name = "static",
    .kind = PT_H_STATIC,
    .flags = PT_HF_FILES,
    .start = start,
};
