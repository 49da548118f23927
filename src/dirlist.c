#include "first.h"
#include "dirlist.h"

/* dirlist.c: owns the HTML directory index: reads a directory with bounded
 * memory (only the first max_entries names in sort order are kept), stats
 * entries without following symlinks, and escapes every name it prints. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

typedef struct dl_ent {
    char *name;
    bool is_dir;
} dl_ent;

typedef struct dl_buf {
    char *p;
    size_t len, cap;
} dl_buf;

static int buf_reserve(dl_buf *b, size_t extra)
{
    if (extra < b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) {
            errno = ENOMEM;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(dl_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_puts(dl_buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

PT_PRINTF(2, 3) static int buf_printf(dl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Appends through one of util.h's escapers, which report the size they
 * needed; grow and retry when it did not fit. */
static int buf_escape(dl_buf *b, size_t (*esc)(const char *, size_t, char *, size_t), const char *s,
                      size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    size_t need = esc(s, n, b->p + b->len, b->cap - b->len);
    if (need >= b->cap - b->len) {
        if (buf_reserve(b, need) < 0)
            return -1;
        need = esc(s, n, b->p + b->len, b->cap - b->len);
    }
    b->len += need;
    return 0;
}

/* Directories first, then byte order of the name (locale-independent). */
static int ent_cmp(const dl_ent *a, const dl_ent *b)
{
    if (a->is_dir != b->is_dir)
        return a->is_dir ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int ent_qsort_cmp(const void *a, const void *b)
{
    return ent_cmp(a, b);
}

/* Max-heap on ent_cmp: the root is the entry to evict when a smaller one
 * arrives, so a huge directory costs O(max_entries) memory. */
static void heap_sift_down(dl_ent *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && ent_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && ent_cmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        dl_ent t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_sift_up(dl_ent *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (ent_cmp(&h[i], &h[parent]) <= 0)
            return;
        dl_ent t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

static bool entry_is_dir(int dirfd, const struct dirent *de)
{
    struct stat st;
    if (de->d_type != DT_UNKNOWN)
        return de->d_type == DT_DIR;
    return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* Reads the directory, keeping the max_entries first entries in sort order
 * (sorted on return) and counting the others in *omitted. */
static int collect(int dirfd, bool show_dot, size_t max_entries, dl_ent **out, size_t *outn,
                   size_t *omitted)
{
    dl_ent *h = NULL;
    size_t n = 0, cap = 0;
    int rc = -1, saved;

    *omitted = 0;
    /* a fresh open file description: the caller's fd offset stays untouched */
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                goto done;
            break;
        }
        const char *name = de->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || (name[0] == '.' && !show_dot))
            continue;
        dl_ent e = {NULL, entry_is_dir(dirfd, de)};
        if (n == max_entries) {
            /* full: only an entry sorting before the current maximum gets in */
            dl_ent probe = {(char *)name, e.is_dir};
            (*omitted)++;
            if (n == 0 || ent_cmp(&probe, &h[0]) >= 0)
                continue;
        }
        if (!(e.name = strdup(name)))
            goto done;
        if (n == max_entries) {
            free(h[0].name);
            h[0] = e;
            heap_sift_down(h, n, 0);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            dl_ent *nh = reallocarray(h, ncap, sizeof(*h));
            if (!nh) {
                free(e.name);
                goto done;
            }
            h = nh;
            cap = ncap;
        }
        h[n] = e;
        heap_sift_up(h, n++);
    }
    if (n)
        qsort(h, n, sizeof(*h), ent_qsort_cmp);
    *out = h;
    *outn = n;
    h = NULL;
    n = 0;
    rc = 0;
done:
    saved = errno;
    for (size_t i = 0; i < n; i++)
        free(h[i].name);
    free(h);
    closedir(d);
    errno = saved;
    return rc;
}

static int put_row(dl_buf *b, int dirfd, const dl_ent *e)
{
    struct stat st;
    char when[32] = "";
    struct tm tm;

    /* the entry may have vanished since readdir: leave it out */
    if (fstatat(dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    bool is_dir = S_ISDIR(st.st_mode);
    const char *slash = is_dir ? "/" : "";
    if (gmtime_r(&st.st_mtime, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);

    size_t nl = strlen(e->name);
    if (buf_puts(b, "<tr><td><a href=\"") < 0 ||
        buf_escape(b, pt_escape_url_path, e->name, nl) < 0 || buf_printf(b, "%s\">", slash) < 0 ||
        buf_escape(b, pt_escape_html, e->name, nl) < 0 ||
        buf_printf(b, "%s</a></td><td>%s</td><td>", slash, when) < 0)
        return -1;
    if (S_ISREG(st.st_mode))
        return buf_printf(b, "%llu</td></tr>\n", (unsigned long long)st.st_size);
    return buf_puts(b, "-</td></tr>\n");
}

int pt_dirlist_html(int dirfd, const char *url_path, bool show_dot, size_t max_entries, char **out,
                    size_t *outlen)
{
    dl_buf b = {0};
    dl_ent *ents = NULL;
    size_t n = 0, omitted = 0, i;
    int rc = -1, saved;

    if (!url_path || !out || !outlen) {
        errno = EINVAL;
        return -1;
    }
    if (collect(dirfd, show_dot, max_entries, &ents, &n, &omitted) < 0)
        return -1;

    size_t pl = strlen(url_path);
    if (buf_puts(&b,
                 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width\">\n<title>Index of ") < 0 ||
        buf_escape(&b, pt_escape_html, url_path, pl) < 0 ||
        buf_puts(&b, "</title>\n<style>body{font-family:sans-serif}td{padding:0 1em 0 0}"
                     "td:last-child{text-align:right}</style>\n</head><body>\n<h1>Index of ") < 0 ||
        buf_escape(&b, pt_escape_html, url_path, pl) < 0 ||
        buf_puts(&b, "</h1>\n<table>\n<tr><th>Name</th><th>Last modified (UTC)</th>"
                     "<th>Size</th></tr>\n") < 0)
        goto done;
    if (strcmp(url_path, "/") != 0 &&
        buf_puts(&b, "<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n") < 0)
        goto done;
    for (i = 0; i < n; i++)
        if (put_row(&b, dirfd, &ents[i]) < 0)
            goto done;
    if (buf_puts(&b, "</table>\n") < 0)
        goto done;
    if (omitted && buf_printf(&b, "<p>%zu more %s not shown.</p>\n", omitted,
                              omitted == 1 ? "entry" : "entries") < 0)
        goto done;
    if (buf_puts(&b, "</body></html>\n") < 0)
        goto done;
    *out = b.p;
    *outlen = b.len;
    b.p = NULL;
    rc = 0;
done:
    saved = errno;
    for (i = 0; i < n; i++)
        free(ents[i].name);
    free(ents);
    free(b.p);
    errno = saved;
    return rc;
}
