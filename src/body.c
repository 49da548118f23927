#include "first.h"
#include "body.h"

/* body.c: a collected request body, in memory up to mem_limit and then in
 * an unnamed temp file, so CONTENT_LENGTH is known before a CGI or FastCGI
 * handler starts and a slow uploader never holds a backend. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PT_BODY_DEFAULT_TMP "/tmp"

void pt_body_init(pt_body *b, size_t mem_limit, const char *tmp_dir)
{
    memset(b, 0, sizeof(*b));
    b->fd = -1;
    b->mem_limit = mem_limit;
    b->tmp_dir = tmp_dir;
}

int pt_body_tmpfile_fallback(const char *dir)
{
    char path[PATH_MAX];
    int fd, n;

    n = snprintf(path, sizeof(path), "%s/portico-body-XXXXXX", dir ? dir : PT_BODY_DEFAULT_TMP);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC); /* mode 0600 */
    if (fd < 0)
        return -1;
    /* Unlink at once: the data must vanish with the fd, even on a crash. */
    if (unlink(path) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int pt_body_tmpfile(const char *dir)
{
    int fd = open(dir ? dir : PT_BODY_DEFAULT_TMP, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd >= 0)
        return fd;
    /* Kernels or file systems without O_TMPFILE answer with one of these
     * (EISDIR: O_TMPFILE's O_DIRECTORY bit alone was understood). */
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == ENOENT || errno == EINVAL)
        return pt_body_tmpfile_fallback(dir);
    return -1;
}

/* pwrite all of data at off, retrying on EINTR and short writes. */
static int write_full(int fd, const char *data, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, data, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = ENOSPC;
            return -1;
        }
        data += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Move what is in memory to a new temp file. On failure nothing changes. */
static int spill(pt_body *b)
{
    int fd = pt_body_tmpfile(b->tmp_dir);

    if (fd < 0)
        return -1;
    if (write_full(fd, b->mem, b->mem_len, 0) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    free(b->mem);
    b->mem = NULL;
    b->mem_len = b->mem_cap = 0;
    b->fd = fd;
    return 0;
}

int pt_body_append(pt_body *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (b->len + len < b->len) {
        errno = EOVERFLOW;
        return -1;
    }
    if (b->fd < 0 && len <= b->mem_limit - b->mem_len) {
        if (b->mem_len + len > b->mem_cap) {
            size_t cap = b->mem_cap ? b->mem_cap : 4096;
            while (cap < b->mem_len + len && cap <= SIZE_MAX / 2)
                cap *= 2;
            if (cap < b->mem_len + len)
                cap = b->mem_len + len;
            /* growth past the limit would be memory never used */
            if (cap > b->mem_limit)
                cap = b->mem_limit;
            char *p = realloc(b->mem, cap);
            if (p == NULL)
                return -1;
            b->mem = p;
            b->mem_cap = cap;
        }
        memcpy(b->mem + b->mem_len, data, len);
        b->mem_len += len;
        b->len += len;
        return 0;
    }
    if (b->fd < 0 && spill(b) < 0)
        return -1;
    /* pwrite at b->len: a failed earlier append leaves no stray offset */
    if (write_full(b->fd, data, len, b->len) < 0)
        return -1;
    b->len += len;
    return 0;
}

ssize_t pt_body_read(const pt_body *b, uint64_t off, void *dst, size_t len)
{
    size_t want, got = 0;

    if (off >= b->len)
        return 0;
    want = b->len - off < len ? (size_t)(b->len - off) : len;
    if (want > SSIZE_MAX)
        want = SSIZE_MAX;
    if (b->fd < 0) {
        memcpy(dst, b->mem + off, want);
        return (ssize_t)want;
    }
    while (got < want) {
        ssize_t n = pread(b->fd, (char *)dst + got, want - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break; /* file shorter than recorded: report what is there */
        got += (size_t)n;
    }
    return (ssize_t)got;
}

bool pt_body_in_memory(const pt_body *b)
{
    return b->fd < 0;
}

void pt_body_free(pt_body *b)
{
    free(b->mem);
    if (b->fd >= 0)
        close(b->fd);
    /* keep the settings so the struct can collect the next request's body */
    pt_body_init(b, b->mem_limit, b->tmp_dir);
}
