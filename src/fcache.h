/* fcache.h: the open-file cache of a worker: what opening a static file's
 * path found (an open fd and its fstat, or the errno of a failed open), the
 * content of small files and their ready-made validator headers, kept for
 * a short time (open_file_cache.valid) so a hot file costs no system call
 * but the response's own write. */
#ifndef PT_FCACHE_H
#define PT_FCACHE_H

#include "first.h"
#include "precond.h"
#include "httpdate.h"
#include <sys/stat.h>

/* One lookup result. Handed out with a reference (pt_fcache_release). */
typedef struct pt_fent {
    struct pt_fent *hnext;               /* hash chain */
    struct pt_fent *lru_prev, *lru_next; /* most recently used first */
    uint64_t hash;
    uint64_t checked_ms; /* loop time of the open this result comes from */
    uint64_t used_ms;    /* last lookup */
    unsigned refs;
    bool linked; /* in the table (else freed by the last release) */
    int err;     /* 0, or the errno of the failed open (fd -1) */
    bool fstat_failed;
    int fd;
    struct stat st;
    char *data; /* the whole content when cached (st.st_size bytes), else NULL */
    size_t data_len;
    /* "Content-Type: ...\r\nLast-Modified: ...\r\nETag: ...\r\n" for a
     * regular file (hdr_len 0 until made) */
    char *hdr;
    size_t hdr_len;
    size_t ctype_len; /* the Content-Type value's, at hdr + 14 */
    char etag[PT_ETAG_MAX];
    size_t etag_len;
    char lm[PT_HTTPDATE_LEN + 1];
    size_t key_len;
    char key[];
} pt_fent;

typedef struct pt_fcache pt_fcache;

/* NULL when max or valid_ms is 0 (no cache) or out of memory. Content is
 * kept up to content_max bytes a file, content_max_tls for responses that
 * copy it anyway (pt_fcache_load), content_memory bytes in all. errors:
 * failed opens are remembered too. */
pt_fcache *pt_fcache_new(uint32_t max, uint64_t valid_ms, uint64_t inactive_ms,
                         uint64_t content_max, uint64_t content_max_tls, uint64_t content_memory,
                         bool errors);
void pt_fcache_free(pt_fcache *fc);

/* Fresh entry for key (checked less than valid_ms before now), with a
 * reference; NULL when there is none. */
pt_fent *pt_fcache_get(pt_fcache *fc, const void *key, size_t klen, uint64_t now);
/* A new entry for key with the result of an open: takes fd (may be -1).
 * With fc (and a result worth keeping) it replaces any older entry for key
 * in the table; without, it is private and freed on release. Returns the
 * entry with one reference, or NULL (fd closed) when out of memory. */
pt_fent *pt_fcache_put(pt_fcache *fc, const void *key, size_t klen, uint64_t now, int err, int fd,
                       const struct stat *st, bool fstat_failed);
/* Keep the content of a small regular file: reads it and checks with a
 * second fstat that nothing changed meanwhile; else the entry leaves the
 * table (it still serves this one request). copies: for a response whose
 * bytes pass through memory anyway (TLS, HTTP/2), up to content_max_tls;
 * else content_max. may_evict: the least recently used content no response
 * sends makes room within content_memory (else only free room is used);
 * without room the entry stays as it is (its file is sent). */
void pt_fcache_load(pt_fcache *fc, pt_fent *e, bool copies, bool may_evict);
/* Same inode, size, mtime and ctime. */
bool pt_fcache_same_file(const struct stat *a, const struct stat *b);
/* The largest content kept in memory (0 without a cache). */
uint64_t pt_fcache_content_max(const pt_fcache *fc);
/* Content bytes held now (for tests). */
uint64_t pt_fcache_content_bytes(const pt_fcache *fc);
void pt_fcache_release(pt_fcache *fc, pt_fent *e);
/* Close entries unused for inactive_ms. */
void pt_fcache_sweep(pt_fcache *fc, uint64_t now);
/* Close every entry no response uses (out of file descriptors). */
void pt_fcache_trim(pt_fcache *fc);
/* Entries in the table (for tests and logs). */
size_t pt_fcache_count(const pt_fcache *fc);

#endif
