/* static.c: static files. Opens relative to the vhost root fd and decides on
 * fstat of the opened fd (no stat/open race); validators, preconditions in
 * RFC 9110 §13.2.2 order, byte ranges, index files, listings; file bodies go
 * out with sendfile. */
#include "first.h"
#include "static.h"
#include "conn.h"
#include "dirlist.h"
#include "h1_resp.h"
#include "httpdate.h"
#include "log.h"
#include "mime.h"
#include "precond.h"
#include "range.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PT_OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

typedef struct opts {
    bool dir_listing, follow_symlinks, allow_dotfiles;
} opts;

static opts effective_opts(const pt_conn *c)
{
    const pt_vhost *v = c->vhost;
    const pt_location *l = c->loc;
    opts o = {v->dir_listing, v->follow_symlinks, v->allow_dotfiles};
    if (l) {
        if (l->dir_listing >= 0)
            o.dir_listing = l->dir_listing;
        if (l->follow_symlinks >= 0)
            o.follow_symlinks = l->follow_symlinks;
        if (l->allow_dotfiles >= 0)
            o.allow_dotfiles = l->allow_dotfiles;
    }
    return o;
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

/* Is the opened fd's real path inside root_real? (fallback for absolute
 * symlinks that stay inside the root, which RESOLVE_BENEATH refuses) */
static bool fd_is_beneath(int fd, const char *root)
{
    char proc[64], real[PATH_MAX], rootreal[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, real, sizeof(real) - 1);
    if (n < 0)
        return false;
    real[n] = '\0';
    if (!realpath(root, rootreal))
        return false;
    size_t rl = strlen(rootreal);
    if (rl == 1)
        return true;
    return strncmp(real, rootreal, rl) == 0 && (real[rl] == '/' || real[rl] == '\0');
}

/* Open rel below dirfd under the symlink policy. -1 with errno. */
static int open_below(int dirfd, const char *rel, const char *root, bool follow)
{
    if (follow)
        return openat(dirfd, rel, PT_OPEN_FLAGS);
    struct open_how how = {.flags = PT_OPEN_FLAGS,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd >= 0 || (errno != EXDEV && errno != ENOSYS && errno != ELOOP))
        return fd;
    /* RESOLVE_BENEATH refuses every absolute symlink; allow those whose
     * target is still inside the root */
    fd = openat(dirfd, rel, PT_OPEN_FLAGS);
    if (fd < 0)
        return -1;
    if (!fd_is_beneath(fd, root)) {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

static int errno_status(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:
    case ELOOP:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    default:
        return 500;
    }
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

static void redirect_slash(pt_conn *c)
{
    size_t cap = c->path_len * 3 + 2;
    char *loc = malloc(cap + c->head.query.len + 2);
    if (!loc) {
        pt_conn_reject(c, 500, "out of memory", true);
        return;
    }
    size_t n = pt_escape_url_path(c->path, c->path_len, loc, cap);
    if (n + 1 >= cap) {
        free(loc);
        pt_conn_reject(c, 500, "redirect too long", true);
        return;
    }
    loc[n++] = '/';
    if (c->head.has_query) {
        loc[n++] = '?';
        memcpy(loc + n, c->head.query.p, c->head.query.len);
        n += c->head.query.len;
    }
    pt_resp_begin(c, 301);
    pt_resp_header(c, "Location", loc, n);
    pt_resp_header(c, "Content-Type", "text/html; charset=utf-8", 24);
    static const char body[] =
        "<html><head><title>301 Moved Permanently</title></head><body><h1>301 Moved "
        "Permanently</h1></body></html>\n";
    pt_resp_end(c, PT_SLEN(body));
    if (!c->is_head)
        pt_cq_append(&c->out, body, PT_SLEN(body));
    free(loc);
}

static void serve_listing(pt_conn *c, int dirfd)
{
    char *html = NULL;
    size_t len = 0;
    if (pt_dirlist_html(dirfd, c->path, false, 10000, &html, &len) < 0) {
        pt_conn_reject(c, errno_status(errno), "cannot list directory", false);
        return;
    }
    pt_resp_begin(c, 200);
    pt_resp_header(c, "Content-Type", "text/html; charset=utf-8", 24);
    pt_resp_end(c, (int64_t)len);
    if (!c->is_head)
        pt_cq_append(&c->out, html, len);
    free(html);
}

static void content_type(pt_conn *c, const char *name, size_t len)
{
    static const char cs[] = "; charset=utf-8";
    const char *t = pt_mime_type(name, len);
    size_t tl = strlen(t);
    char v[1024];
    if (pt_mime_is_text(t) && tl + PT_SLEN(cs) <= sizeof(v)) {
        memcpy(v, t, tl);
        memcpy(v + tl, cs, PT_SLEN(cs));
        pt_resp_header(c, "Content-Type", v, tl + PT_SLEN(cs));
    } else {
        pt_resp_header(c, "Content-Type", t, tl);
    }
}

static pt_str header_str(const pt_conn *c, const char *name)
{
    const pt_header *h = pt_head_get(&c->head, name);
    pt_str s = {NULL, 0};
    if (h) {
        s.p = h->value;
        s.len = h->value_len;
    }
    return s;
}

static void validators(pt_conn *c, const char *etag, size_t etag_len, const char *lm)
{
    pt_resp_header(c, "Last-Modified", lm, PT_HTTPDATE_LEN);
    pt_resp_header(c, "ETag", etag, etag_len);
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

static void serve_multipart(pt_conn *c, const pt_range *r, int n, uint64_t size, const char *name,
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
        total += part_head(head, sizeof(head), boundary, ctype, &r[i], size) +
                 (r[i].end - r[i].start + 1);
    char tail[64];
    int tl = snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", boundary);
    total += (uint64_t)tl;
    pt_resp_headerf(c, "Content-Type", "multipart/byteranges; boundary=%s", boundary);
    pt_resp_end(c, (int64_t)total);
    if (c->is_head)
        return;
    for (int i = 0; i < n; i++) {
        size_t hl = part_head(head, sizeof(head), boundary, ctype, &r[i], size);
        pt_cq_append(&c->out, head, hl);
        pt_cq_append_file(&c->out, c->file_fd, (off_t)r[i].start, r[i].end - r[i].start + 1);
    }
    pt_cq_append(&c->out, tail, (size_t)tl);
}

/* A small file is read into the output queue behind its headers, so the
 * response leaves in one sendmsg (one segment) instead of a header write
 * and a sendfile; larger files go by sendfile. */
#define PT_STATIC_INLINE (16u * 1024u)

static void body_whole(pt_conn *c, int fd, uint64_t size)
{
    if (size > 0 && size <= PT_STATIC_INLINE) {
        char *dst = pt_cq_reserve(&c->out, (size_t)size);
        if (dst && pread(fd, dst, (size_t)size, 0) == (ssize_t)size) {
            pt_cq_commit(&c->out, (size_t)size);
            return;
        }
    }
    pt_cq_append_file(&c->out, fd, 0, size);
}

static void serve_file(pt_conn *c, int fd, const struct stat *st, const char *name, size_t name_len)
{
    c->file_fd = fd;
    char etag[PT_ETAG_MAX];
    size_t etag_len = pt_etag_make((uint64_t)st->st_ino, (uint64_t)st->st_size, st->st_mtim.tv_sec,
                                   st->st_mtim.tv_nsec, etag);
    char lm[PT_HTTPDATE_LEN + 1];
    pt_httpdate_format(st->st_mtim.tv_sec, lm);

    pt_precond pc = {
        .if_match = header_str(c, "If-Match"),
        .if_none_match = header_str(c, "If-None-Match"),
        .if_modified_since = header_str(c, "If-Modified-Since"),
        .if_unmodified_since = header_str(c, "If-Unmodified-Since"),
        .is_get_or_head = true,
        .etag = etag,
        .etag_len = etag_len,
        .last_modified = st->st_mtim.tv_sec,
    };
    int pst = pt_precond_eval(&pc);
    if (pst == 304) {
        pt_resp_begin(c, 304);
        validators(c, etag, etag_len, lm);
        pt_resp_end(c, -1);
        return;
    }
    if (pst == 412) {
        pt_conn_reject(c, 412, NULL, false);
        return;
    }

    uint64_t size = (uint64_t)st->st_size;
    pt_range ranges[64];
    int nr = 0;
    pt_str rh = header_str(c, "Range");
    if (rh.p && c->head.method == PT_M_GET) {
        pt_str ir = header_str(c, "If-Range");
        /* a Last-Modified less than a second old is only a weak validator
         * (RFC 9110 §8.8.2.2): then no date can match */
        time_t lmv = st->st_mtim.tv_sec < time(NULL) ? st->st_mtim.tv_sec : (time_t)-1;
        if (!ir.p || pt_if_range_ok(ir.p, ir.len, etag, etag_len, lmv)) {
            int max = (int)PT_MIN(c->w->cfg->limits.max_ranges, (uint32_t)PT_ARRAY_LEN(ranges));
            nr = pt_range_parse(rh.p, rh.len, size, ranges, max);
        }
    }
    if (nr < 0) {
        c->allow = "GET, HEAD, OPTIONS";
        pt_resp_begin(c, 416);
        pt_resp_headerf(c, "Content-Range", "bytes */%llu", (unsigned long long)size);
        pt_resp_header(c, "Content-Type", "text/html; charset=utf-8", 24);
        static const char body[] = "<html><head><title>416 Range Not Satisfiable</title></head>"
                                   "<body><h1>416 Range Not Satisfiable</h1></body></html>\n";
        pt_resp_end(c, PT_SLEN(body));
        if (!c->is_head)
            pt_cq_append(&c->out, body, PT_SLEN(body));
        return;
    }
    if (nr == 0) {
        pt_resp_begin(c, 200);
        content_type(c, name, name_len);
        validators(c, etag, etag_len, lm);
        pt_resp_header(c, "Accept-Ranges", "bytes", 5);
        pt_resp_end(c, (int64_t)size);
        if (!c->is_head)
            body_whole(c, fd, size);
        return;
    }
    pt_resp_begin(c, 206);
    validators(c, etag, etag_len, lm);
    pt_resp_header(c, "Accept-Ranges", "bytes", 5);
    if (nr == 1) {
        content_type(c, name, name_len);
        pt_resp_headerf(c, "Content-Range", "bytes %llu-%llu/%llu",
                        (unsigned long long)ranges[0].start, (unsigned long long)ranges[0].end,
                        (unsigned long long)size);
        uint64_t len = ranges[0].end - ranges[0].start + 1;
        pt_resp_end(c, (int64_t)len);
        if (!c->is_head)
            pt_cq_append_file(&c->out, fd, (off_t)ranges[0].start, len);
        return;
    }
    serve_multipart(c, ranges, nr, size, name, name_len);
}

void pt_static_serve(pt_conn *c)
{
    opts o = effective_opts(c);
    if (!o.allow_dotfiles && is_hidden(c->path, c->path_len)) {
        pt_conn_reject(c, 404, "hidden file", false);
        return;
    }
    const char *root = c->vhost->root;
    int rootfd = c->vhost->root_fd, own_root = -1;
    if (c->loc && c->loc->root) {
        root = c->loc->root;
        own_root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (own_root < 0) {
            pt_log_error("cannot open location root \"%s\": %s", root, strerror(errno));
            pt_conn_reject(c, 500, "location root", false);
            return;
        }
        rootfd = own_root;
    }
    const char *rel = c->path_len > 1 ? c->path + 1 : ".";
    int fd = open_below(rootfd, rel, root, o.follow_symlinks);
    if (fd < 0) {
        int e = errno, st = errno_status(e);
        /* a 404 is logged at debug level only: no strerror for nothing */
        pt_conn_reject(c, st, st != 404 || pt_log_level() >= PT_LOG_DEBUG ? strerror(e) : NULL,
                       false);
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        pt_conn_reject(c, 500, "fstat failed", false);
        goto out;
    }
    if (S_ISREG(st.st_mode)) {
        const char *base = strrchr(c->path, '/');
        base = base ? base + 1 : c->path;
        serve_file(c, fd, &st, base, strlen(base));
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        close(fd);
        pt_conn_reject(c, 403, "not a regular file", false);
        goto out;
    }
    if (c->path[c->path_len - 1] != '/') {
        close(fd);
        redirect_slash(c);
        goto out;
    }
    for (size_t i = 0; i < c->vhost->nindex; i++) {
        const char *idx = c->vhost->index[i];
        int ifd = open_below(fd, idx, root, o.follow_symlinks);
        if (ifd < 0)
            continue;
        struct stat ist;
        if (fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode)) {
            close(fd);
            serve_file(c, ifd, &ist, idx, strlen(idx));
            goto out;
        }
        close(ifd);
    }
    if (o.dir_listing) {
        serve_listing(c, fd);
        close(fd);
        goto out;
    }
    close(fd);
    pt_conn_reject(c, 403, "directory index forbidden", false);
out:
    if (own_root >= 0)
        close(own_root);
}
