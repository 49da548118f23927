/* fcache.c: the open-file cache (see fcache.h): a hash table of lookup
 * results with an LRU list, bounded by entry count, the content it keeps
 * by a byte total (the least recently used content goes first, its entry
 * stays as an open file). Nothing here decides
 * what a path means: static.c opens, this only remembers the outcome for
 * open_file_cache.valid, keyed by everything that decided it. */
#include "first.h"
#include "fcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct pt_fcache {
    pt_fent **buckets;
    size_t nbuckets; /* a power of two */
    uint64_t seed;   /* the key hash's, random */
    pt_fent *lru_head, *lru_tail;
    size_t count;
    uint32_t max;
    uint64_t valid_ms, inactive_ms, content_max;
    uint64_t content_max_tls; /* for responses that copy anyway (>= content_max) */
    uint64_t content_memory;  /* all content held, at most */
    uint64_t content_bytes;   /* held now, by entries in the table or in use */
    bool errors;
};

/* Keys are paths of a few dozen bytes, hashed at every request: eight
 * bytes a step (a byte at a time, FNV-1a, was half of a hit's cost), from
 * a random seed, so which paths share a bucket is not known outside */
static uint64_t hash_key(uint64_t seed, const void *key, size_t len)
{
    const uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xff51afd7ed558ccdULL;
    const unsigned char *p = key;
    uint64_t h = seed ^ (len * k1), w = 0;
    if (len >= 8) {
        /* whole words, then the last eight bytes (overlapping the one
         * before rather than a loop over the tail) */
        for (size_t i = 0; i + 8 < len; i += 8) {
            memcpy(&w, p + i, 8);
            h = (h ^ w) * k1;
            h = (h << 31 | h >> 33) * k2;
        }
        memcpy(&w, p + len - 8, 8);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        w = (uint64_t)a << 32 | b;
    } else if (len > 0) {
        w = (uint64_t)p[0] << 16 | (uint64_t)p[len / 2] << 8 | p[len - 1];
    }
    h = (h ^ w) * k1;
    /* the bucket is the low bits: every bit of the key reaches them */
    h ^= h >> 33;
    h *= k2;
    h ^= h >> 29;
    return h;
}

pt_fcache *pt_fcache_new(uint32_t max, uint64_t valid_ms, uint64_t inactive_ms,
                         uint64_t content_max, uint64_t content_max_tls, uint64_t content_memory,
                         bool errors)
{
    if (max == 0 || valid_ms == 0)
        return NULL;
    pt_fcache *fc = calloc(1, sizeof(*fc));
    if (!fc)
        return NULL;
    fc->nbuckets = 16;
    while (fc->nbuckets < (size_t)max * 2)
        fc->nbuckets *= 2;
    fc->buckets = calloc(fc->nbuckets, sizeof(*fc->buckets));
    if (!fc->buckets) {
        free(fc);
        return NULL;
    }
    if (getrandom(&fc->seed, sizeof(fc->seed), GRND_NONBLOCK) != sizeof(fc->seed))
        fc->seed = (uint64_t)(uintptr_t)fc ^ (uint64_t)getpid() << 32;
    fc->max = max;
    fc->valid_ms = valid_ms;
    fc->inactive_ms = inactive_ms;
    fc->content_max = content_max;
    fc->content_max_tls = PT_MAX(content_max, content_max_tls);
    fc->content_memory = content_memory;
    fc->errors = errors;
    return fc;
}

static void drop_content(pt_fcache *fc, pt_fent *e)
{
    if (!e->data)
        return;
    if (fc)
        fc->content_bytes -= e->data_len;
    free(e->data);
    e->data = NULL;
    e->data_len = 0;
}

static void ent_free(pt_fcache *fc, pt_fent *e)
{
    if (e->fd >= 0)
        close(e->fd);
    drop_content(fc, e);
    free(e->hdr);
    free(e);
}

static void lru_unlink(pt_fcache *fc, pt_fent *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        fc->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        fc->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(pt_fcache *fc, pt_fent *e)
{
    e->lru_prev = NULL;
    e->lru_next = fc->lru_head;
    if (fc->lru_head)
        fc->lru_head->lru_prev = e;
    else
        fc->lru_tail = e;
    fc->lru_head = e;
}

/* Out of the table; freed now or by the last response that uses it. */
static void evict(pt_fcache *fc, pt_fent *e)
{
    pt_fent **pp = &fc->buckets[e->hash & (fc->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    lru_unlink(fc, e);
    e->linked = false;
    fc->count--;
    if (e->refs == 0)
        ent_free(fc, e);
}

void pt_fcache_free(pt_fcache *fc)
{
    if (!fc)
        return;
    /* responses still holding entries are gone by now (workers close
     * every connection first) */
    while (fc->lru_head)
        evict(fc, fc->lru_head);
    free(fc->buckets);
    free(fc);
}

static pt_fent *find(pt_fcache *fc, uint64_t h, const void *key, size_t klen)
{
    for (pt_fent *e = fc->buckets[h & (fc->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->key_len == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

pt_fent *pt_fcache_get(pt_fcache *fc, const void *key, size_t klen, uint64_t now)
{
    if (!fc)
        return NULL;
    uint64_t h = hash_key(fc->seed, key, klen);
    pt_fent *e = find(fc, h, key, klen);
    /* older than valid: the caller opens again and puts the new result */
    if (!e || now - e->checked_ms >= fc->valid_ms)
        return NULL;
    e->used_ms = now;
    if (fc->lru_head != e) {
        lru_unlink(fc, e);
        lru_push(fc, e);
    }
    e->refs++;
    return e;
}

/* Failures that say something lasting about the path; EMFILE, ENOMEM and
 * the like are the worker's trouble of the moment. */
static bool err_cacheable(int err)
{
    switch (err) {
    case 0:
    case ENOENT:
    case ENOTDIR:
    case EXDEV:
    case ELOOP:
    case ENAMETOOLONG:
    case EACCES:
    case EPERM:
        return true;
    default:
        return false;
    }
}

pt_fent *pt_fcache_put(pt_fcache *fc, const void *key, size_t klen, uint64_t now, int err, int fd,
                       const struct stat *st, bool fstat_failed)
{
    pt_fent *e = malloc(sizeof(*e) + klen);
    if (!e) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->err = err;
    e->fd = fd;
    e->fstat_failed = fstat_failed;
    if (st)
        e->st = *st;
    e->checked_ms = e->used_ms = now;
    e->refs = 1;
    e->key_len = klen;
    if (klen)
        memcpy(e->key, key, klen);
    if (!fc || fstat_failed || !err_cacheable(err) || (err && !fc->errors))
        return e;
    e->hash = hash_key(fc->seed, key, klen);
    pt_fent *old = find(fc, e->hash, key, klen);
    if (old)
        evict(fc, old);
    while (fc->count >= fc->max && fc->lru_tail)
        evict(fc, fc->lru_tail);
    pt_fent **b = &fc->buckets[e->hash & (fc->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    lru_push(fc, e);
    e->linked = true;
    fc->count++;
    return e;
}

uint64_t pt_fcache_content_max(const pt_fcache *fc)
{
    return fc ? fc->content_max : 0;
}

uint64_t pt_fcache_content_bytes(const pt_fcache *fc)
{
    return fc ? fc->content_bytes : 0;
}

bool pt_fcache_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Room for n more bytes of content within content_memory: the content of
 * the least recently used entries no response is sending goes (may_evict
 * false: only what is free already). */
static bool content_room(pt_fcache *fc, uint64_t n, bool may_evict)
{
    if (n > fc->content_memory)
        return false;
    for (pt_fent *e = fc->lru_tail; may_evict && e && fc->content_bytes + n > fc->content_memory;
         e = e->lru_prev)
        if (e->data && e->refs == 0)
            drop_content(fc, e);
    return fc->content_bytes + n <= fc->content_memory;
}

void pt_fcache_load(pt_fcache *fc, pt_fent *e, bool copies, bool may_evict)
{
    if (!fc)
        return;
    uint64_t max = copies ? fc->content_max_tls : fc->content_max;
    if (!e->linked || e->data || e->fd < 0 || !S_ISREG(e->st.st_mode) || e->st.st_size <= 0 ||
        (uint64_t)e->st.st_size > max || !content_room(fc, (uint64_t)e->st.st_size, may_evict))
        return;
    size_t n = (size_t)e->st.st_size;
    char *d = malloc(n);
    struct stat again;
    if (d && pread(e->fd, d, n, 0) == (ssize_t)n && fstat(e->fd, &again) == 0 &&
        pt_fcache_same_file(&e->st, &again)) {
        e->data = d;
        e->data_len = n;
        fc->content_bytes += n;
        return;
    }
    /* being written right now (or unreadable): serve this request from the
     * file as an uncached one would, and remember nothing */
    free(d);
    evict(fc, e);
}

void pt_fcache_release(pt_fcache *fc, pt_fent *e)
{
    (void)fc;
    if (!e)
        return;
    if (--e->refs == 0 && !e->linked)
        ent_free(fc, e);
}

void pt_fcache_sweep(pt_fcache *fc, uint64_t now)
{
    if (!fc)
        return;
    while (fc->lru_tail && now - fc->lru_tail->used_ms >= fc->inactive_ms)
        evict(fc, fc->lru_tail);
}

void pt_fcache_trim(pt_fcache *fc)
{
    if (!fc)
        return;
    pt_fent *e = fc->lru_head;
    while (e) {
        pt_fent *next = e->lru_next;
        if (e->refs == 0)
            evict(fc, e);
        e = next;
    }
}

size_t pt_fcache_count(const pt_fcache *fc)
{
    return fc ? fc->count : 0;
}
