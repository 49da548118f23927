/* cache.c: the response cache for gateway responses. The index (hash of
 * the key -> expiry, size, LRU clock, the fill in progress) lives in shared
 * memory the master maps before forking, under a process-shared robust
 * mutex, so every worker sees every entry and one fill at a time; entry
 * files under cache_dir hold the key, the stored head and the body, and are
 * checked when read back (key, sizes, owner), never trusted blindly.
 * Semantics after RFC 9111 as a shared cache; knobs after nginx's
 * proxy_cache. Waiters for another request's fill poll the index on a 10 ms
 * timer (no cross-process wake-up needed). */
#include "first.h"
#include "cache.h"
#include "conf.h"
#include "conn.h"
#include "gw.h"
#include "resp.h"
#include "httpdate.h"
#include "log.h"
#include "precond.h"
#include "range.h"
#include "stats.h"
#include "util.h"
#include "zresp.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PT_CACHE_POLL_MS 10
#define PT_CACHE_FILL_MAX_AGE_MS (600 * 1000ULL) /* a fill older than this is dead */
#define PT_CACHE_HEAD_MAX (1024 * 1024)          /* stored head or Vary record, read back */
#define PT_CACHE_MAGIC "PTCACHE1"
#define PT_CACHE_BODY_MEM (64 * 1024) /* a body this small is kept in memory */

/* ---- the shared index ---------------------------------------------------- */

typedef struct cslot {
    uint64_t h0, h1;    /* the key's hash; h0 never 0 for a used slot */
    int64_t expires;    /* unix seconds: fresh before this */
    int64_t pass_until; /* unix seconds: not storable, go straight to the backend */
    uint64_t size;      /* bytes of the entry file (0 when not valid) */
    uint64_t used;      /* LRU clock */
    uint64_t fill_id;   /* the fill in progress, 0 none */
    uint64_t fill_t;    /* CLOCK_MONOTONIC ms it began */
    uint64_t gen;       /* the entry file's generation: a new one per store */
    int32_t filler;     /* its worker's pid */
    uint8_t valid;      /* an entry file is in place */
} cslot;

typedef struct cshm {
    pthread_mutex_t mu;
    uint32_t nslots, nused, cap; /* cap: at most this many used (3/4 of nslots) */
    uint64_t bytes, max_bytes, clock, next_id;
    uint64_t hits, misses, expired, stale, updating, bypass, stores, evictions, purges;
    uint64_t revalidated;
    uint64_t background; /* refreshes started behind a stale answer */
    int scanned;         /* a worker took the scan of cache_dir into this index */
    cslot slots[];
} cshm;

/* A zone: its index, its directory. The master makes them; a worker
 * finds its configuration's zones among them by directory (zone_of). */
typedef struct zone {
    cshm *shm;
    size_t shm_len;
    int dirfd;
    char *dir;
    char *name; /* cache_zones' name, "default" for cache_dir's: the status page's */
    uint32_t entries;
    DIR *scan; /* a worker reading the directory into a fresh index */
} zone;

static zone *g_zones;
static size_t g_nzones;
/* The zone being worked on: set by each entry point (a worker does one
 * thing at a time), read by the index and file helpers below. */
static zone *Z;
/* per worker: the zone of each of its configuration's cache_zones, NULL */
static zone **g_cfgzone;
static size_t g_ncfgzone;

#define CTR(name) __atomic_add_fetch(&Z->shm->name, 1, __ATOMIC_RELAXED)

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void ix_lock(void)
{
    /* a worker killed while holding it leaves it to the next one */
    if (pthread_mutex_lock(&Z->shm->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&Z->shm->mu);
}

static void ix_unlock(void)
{
    pthread_mutex_unlock(&Z->shm->mu);
}

static size_t ix_home(uint64_t h0)
{
    return (size_t)(h0 & (Z->shm->nslots - 1));
}

/* Linear probing; NULL when absent. */
static cslot *ix_find(uint64_t h0, uint64_t h1)
{
    size_t mask = Z->shm->nslots - 1;
    for (size_t i = ix_home(h0), n = 0; n < Z->shm->nslots; i = (i + 1) & mask, n++) {
        cslot *s = &Z->shm->slots[i];
        if (s->h0 == 0)
            return NULL;
        if (s->h0 == h0 && s->h1 == h1)
            return s;
    }
    return NULL;
}

/* Backward-shift deletion keeps every probe chain unbroken (no tombstones). */
static void ix_remove(cslot *s)
{
    size_t mask = Z->shm->nslots - 1, i = (size_t)(s - Z->shm->slots), j = i;
    Z->shm->nused--;
    for (;;) {
        memset(&Z->shm->slots[i], 0, sizeof(cslot));
        for (;;) {
            j = (j + 1) & mask;
            cslot *t = &Z->shm->slots[j];
            if (t->h0 == 0)
                return;
            size_t k = ix_home(t->h0);
            /* t may stay when its home lies cyclically in (i, j] */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            Z->shm->slots[i] = *t;
            i = j;
            break;
        }
    }
}

static void entry_name(uint64_t h0, uint64_t h1, char out[40])
{
    snprintf(out, 40, "%016llx%016llx", (unsigned long long)h0, (unsigned long long)h1);
}

/* The least recently used entry nobody is filling goes (file first); false
 * when there is none. Call locked. */
static bool ix_evict_one(uint64_t keep0, uint64_t keep1)
{
    cslot *victim = NULL;
    for (uint32_t i = 0; i < Z->shm->nslots; i++) {
        cslot *s = &Z->shm->slots[i];
        if (s->h0 == 0 || s->fill_id || (s->h0 == keep0 && s->h1 == keep1))
            continue;
        if (!victim || s->used < victim->used)
            victim = s;
    }
    if (!victim)
        return false;
    if (victim->valid) {
        char name[40];
        entry_name(victim->h0, victim->h1, name);
        unlinkat(Z->dirfd, name, 0);
        Z->shm->bytes -= victim->size;
    }
    ix_remove(victim);
    CTR(evictions);
    return true;
}

/* A slot for h (new and empty, room made by eviction), or NULL. Locked. */
static cslot *ix_insert(uint64_t h0, uint64_t h1)
{
    while (Z->shm->nused >= Z->shm->cap)
        if (!ix_evict_one(0, 0))
            return NULL;
    size_t mask = Z->shm->nslots - 1, i = ix_home(h0);
    while (Z->shm->slots[i].h0 != 0)
        i = (i + 1) & mask;
    cslot *s = &Z->shm->slots[i];
    memset(s, 0, sizeof(*s));
    s->h0 = h0;
    s->h1 = h1;
    Z->shm->nused++;
    return s;
}

static bool filler_alive(const cslot *s, uint64_t now_ms)
{
    if (!s->fill_id)
        return false;
    if (now_ms - s->fill_t > PT_CACHE_FILL_MAX_AGE_MS)
        return false;
    /* a worker that died mid-fill (crash, kill) leaves its lock behind */
    return kill(s->filler, 0) == 0 || errno == EPERM;
}

/* ---- the master ---------------------------------------------------------- */

static int prepare_dir(const pt_config *cfg, const char *d, int *out, char *err, size_t errlen)
{
    bool root = geteuid() == 0;
    if (mkdir(d, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create cache directory %s: %s", d, strerror(errno));
        return -1;
    }
    /* the master runs as root: a path the workers' user could swap for a
     * symlink is not followed, and only root's or the workers' own
     * directory is taken over (DESIGN.md) */
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot open cache directory %s: %s", d, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uid_t owner = cfg->creds.drop ? cfg->creds.uid : geteuid();
    gid_t group = cfg->creds.drop ? cfg->creds.gid : getegid();
    if (st.st_uid != owner && !(root && st.st_uid == 0)) {
        snprintf(err, errlen, "cache directory %s belongs to uid %u, not to the workers' user (%u)",
                 d, (unsigned)st.st_uid, (unsigned)owner);
        close(fd);
        return -1;
    }
    /* only root and the workers' user may enter it */
    if ((root && (fchown(fd, owner, group) < 0)) || fchmod(fd, 0700) < 0) {
        snprintf(err, errlen, "cannot set the owner or mode of cache directory %s: %s", d,
                 strerror(errno));
        close(fd);
        return -1;
    }
    *out = fd;
    return 0;
}

static cshm *map_index(uint32_t entries, uint64_t max_bytes, size_t *len, char *err, size_t errlen)
{
    uint32_t n = 16;
    while (n < entries + entries / 3)
        n *= 2;
    *len = sizeof(cshm) + (size_t)n * sizeof(cslot);
    void *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map a cache index (%zu bytes): %s", *len, strerror(errno));
        return NULL;
    }
    cshm *m = p;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m->mu, &a);
    pthread_mutexattr_destroy(&a);
    m->nslots = n;
    m->cap = entries;
    m->max_bytes = max_bytes;
    return m;
}

static void zones_free(zone *zs, size_t n)
{
    for (size_t i = 0; zs && i < n; i++) {
        if (zs[i].dirfd >= 0)
            close(zs[i].dirfd);
        if (zs[i].shm) /* the workers keep their own mappings */
            munmap(zs[i].shm, zs[i].shm_len);
        free(zs[i].dir);
        free(zs[i].name);
    }
    free(zs);
}

int pt_cache_shared_init(const pt_config *cfg, char *err, size_t errlen)
{
    size_t n = cfg->ncache_zones;
    zone *nz = calloc(n ? n : 1, sizeof(*nz));
    if (!nz) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        nz[i].dirfd = -1;
    for (size_t i = 0; i < n; i++) {
        const pt_cache_zone *cz = &cfg->cache_zones[i];
        if (prepare_dir(cfg, cz->dir, &nz[i].dirfd, err, errlen) < 0 ||
            !(nz[i].dir = strdup(cz->dir)) ||
            !(nz[i].name = strdup(cz->name ? cz->name : "default"))) {
            zones_free(nz, n);
            return -1;
        }
        nz[i].entries = cz->entries;
    }
    for (size_t i = 0; i < n; i++) {
        const pt_cache_zone *cz = &cfg->cache_zones[i];
        /* a reload keeps an index whose directory and size stay: old and
         * new workers share it */
        for (size_t j = 0; j < g_nzones && !nz[i].shm; j++) {
            zone *o = &g_zones[j];
            if (o->shm && strcmp(o->dir, cz->dir) == 0 && o->entries == cz->entries) {
                nz[i].shm = o->shm;
                nz[i].shm_len = o->shm_len;
                o->shm = NULL;
                nz[i].shm->max_bytes = cz->max_size;
            }
        }
        if (!nz[i].shm &&
            !(nz[i].shm = map_index(cz->entries, cz->max_size, &nz[i].shm_len, err, errlen))) {
            /* the kept ones go back (their zones stay current) */
            for (size_t k = 0; k < i; k++)
                for (size_t j = 0; j < g_nzones; j++)
                    if (!g_zones[j].shm && strcmp(g_zones[j].dir, nz[k].dir) == 0 &&
                        g_zones[j].entries == nz[k].entries) {
                        g_zones[j].shm = nz[k].shm;
                        nz[k].shm = NULL;
                    }
            zones_free(nz, n);
            return -1;
        }
    }
    zones_free(g_zones, g_nzones);
    g_zones = nz;
    g_nzones = n;
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

/* Two 64-bit FNV-1a passes with different bases, mixed: a file name, not a
 * proof: the key stored in the file is compared on every read. */
static void key_hash(const char *k, size_t n, uint64_t *h0, uint64_t *h1)
{
    uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ (unsigned char)k[i]) * 0x100000001b3ULL;
        b = (b ^ (unsigned char)k[i]) * 0x100000001b3ULL;
        b ^= b >> 29;
    }
    a ^= a >> 33;
    a *= 0xff51afd7ed558ccdULL;
    a ^= a >> 33;
    b ^= b >> 31;
    b *= 0xc4ceb9fe1a85ec53ULL;
    b ^= b >> 33;
    *h0 = a ? a : 1;
    *h1 = b;
}

/* A growing byte string; short ones (most keys) stay on the stack. */
typedef struct kbuf {
    char *p;
    size_t len, cap;
    bool bad;
    char inl[320];
} kbuf;

static void kinit(kbuf *b)
{
    b->p = b->inl;
    b->len = 0;
    b->cap = sizeof(b->inl);
    b->bad = false;
}

static void kfree(kbuf *b)
{
    if (b->p != b->inl)
        free(b->p);
    b->p = b->inl;
}

static void kput(kbuf *b, const char *s, size_t n)
{
    if (b->bad || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = PT_MAX(b->cap * 2, b->len + n + 64);
        char *q = b->p == b->inl ? malloc(cap) : realloc(b->p, cap);
        if (!q) {
            b->bad = true;
            return;
        }
        if (b->p == b->inl)
            memcpy(q, b->inl, b->len);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static bool name_is(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* The value of request header name (n bytes, '_' for '-'), or NULL. */
static const pt_header *req_header(const pt_req *r, const char *name, size_t n)
{
    const pt_head *h = &r->head;
    for (size_t i = 0; i < h->nheaders; i++) {
        const pt_header *x = &h->headers[i];
        if (x->name_len != n)
            continue;
        size_t k = 0;
        while (k < n) {
            char a = name[k] == '_' ? '-' : name[k], b = x->name[k];
            if ((a | 32) != (b | 32))
                break;
            k++;
        }
        if (k == n)
            return x;
    }
    return NULL;
}

/* cache_key with its variables: $scheme $host $uri $args $is_args
 * $request_uri $request_method $http_NAME. */
static int key_make(pt_req *r, kbuf *b)
{
    const char *t = r->loc->cache.key;
    const pt_head *h = &r->head;
    while (*t) {
        if (*t != '$') {
            const char *d = strchr(t, '$');
            size_t n = d ? (size_t)(d - t) : strlen(t);
            kput(b, t, n);
            t += n;
            continue;
        }
        const char *v = ++t;
        while ((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
               *t == '_')
            t++;
        size_t n = (size_t)(t - v);
        if (name_is(v, n, "scheme")) {
            kput(b, r->conn->sock.tls ? "https" : "http", r->conn->sock.tls ? 5 : 4);
        } else if (name_is(v, n, "host")) {
            /* lower case, without the port, as nginx's $host */
            pt_str hs = h->host;
            size_t end = hs.len;
            if (hs.len && hs.p[0] != '[') {
                const char *colon = memchr(hs.p, ':', hs.len);
                if (colon)
                    end = (size_t)(colon - hs.p);
            }
            for (size_t i = 0; i < end; i++) {
                char ch = hs.p[i];
                ch = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
                kput(b, &ch, 1);
            }
        } else if (name_is(v, n, "uri")) {
            kput(b, r->path, r->path_len);
        } else if (name_is(v, n, "args")) {
            if (h->has_query)
                kput(b, h->query.p, h->query.len);
        } else if (name_is(v, n, "is_args")) {
            if (h->has_query)
                kput(b, "?", 1);
        } else if (name_is(v, n, "request_uri")) {
            kput(b, h->target.p, h->target.len);
        } else if (name_is(v, n, "request_method")) {
            kput(b, h->method_str.p, h->method_str.len);
        } else if (n > 5 && memcmp(v, "http_", 5) == 0) {
            const pt_header *x = req_header(r, v + 5, n - 5);
            if (x)
                kput(b, x->value, x->value_len);
        } else {
            kput(b, "$", 1);
            kput(b, v, n);
        }
    }
    return b->bad ? -1 : 0;
}

/* The request headers a stored response's Vary names (names: "a\0b\0"),
 * as "name\0value\0" pairs: equal records select the same response
 * (RFC 9111 §4.1). */
static int vary_record(pt_req *r, const char *names, size_t nlen, kbuf *out)
{
    for (size_t i = 0; i < nlen;) {
        size_t n = strlen(names + i);
        const pt_header *x = req_header(r, names + i, n);
        kput(out, names + i, n + 1);
        if (x)
            kput(out, x->value, x->value_len);
        kput(out, "", 1);
        i += n + 1;
    }
    return out->bad ? -1 : 0;
}

/* ---- entry files --------------------------------------------------------- */

typedef struct ehdr {
    char magic[8];
    uint32_t hdr_size; /* sizeof(ehdr): another build's files do not match */
    uint32_t key_len, head_len, vary_len;
    uint32_t vnames_len; /* the Vary names, within vary: the first vnames_len bytes */
    int32_t status;
    uint64_t body_len;
    uint64_t h0, h1;
    int64_t stored; /* unix seconds, the backend's Age taken off */
    int64_t expires;
    int64_t last_modified; /* -1 none */
    uint32_t etag_len;
    uint32_t no_stale; /* must-revalidate, proxy-revalidate, s-maxage: never served stale */
    /* RFC 5861: seconds past expiry the backend allows it to be served while
     * a revalidation is under way (stale-while-revalidate) or in place of an
     * error (stale-if-error); 0 none */
    uint32_t swr, sie;
    char etag[128];
    char reason[64];
} ehdr;

static uint64_t entry_body_off(const ehdr *e)
{
    return sizeof(ehdr) + (uint64_t)e->key_len + e->head_len + e->vary_len;
}

/* A stored head is header lines as sent: "Name: value\r\n", nothing else. */
static bool head_ok(const char *p, size_t n)
{
    if (n && (n < 2 || p[n - 1] != '\n' || p[n - 2] != '\r'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r' && (i + 1 >= n || p[i + 1] != '\n'))
            return false;
        if (ch == '\n' && (i == 0 || p[i - 1] != '\r'))
            return false;
        if (ch == 0 || (ch < 32 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 127)
            return false;
    }
    return true;
}

/* An entry file opened and checked, kept open by the worker: entries never
 * change once renamed in (a new fill is a new file, with a new generation
 * in the index), so a hit costs no open, fstat or read. Counted: a
 * response in flight holds a reference (its sendfile needs the fd). The
 * table is direct-mapped; a replaced entry's fd closes with its last
 * reference (an evicted file's space comes back when its slot is reused). */
typedef struct pt_cache_ent {
    zone *zone;
    uint64_t h0, h1, gen;
    int fd;
    unsigned refs;
    bool listed;           /* in g_went */
    struct timespec ctime; /* as checked: a change of the file means a new check */
    ehdr e;
    char *key, *head, *vary; /* one block: key, then head, then the Vary record, */
    char *body;              /* then a small body (NULL: sent from the file) */
} went;

#define PT_CACHE_WENT 64
static went *g_went[PT_CACHE_WENT];

static void went_put(went *w)
{
    if (!w || --w->refs > 0 || w->listed)
        return;
    close(w->fd);
    free(w->key);
    free(w);
}

/* Read and check fd's entry header for h (st: its fstat): false when it is
 * not an entry portico wrote for h. */
static bool entry_peek(int fd, uint64_t h0, uint64_t h1, ehdr *e, struct stat *st)
{
    /* the workers' user made it: with cgi_user a worker's effective uid is
     * the programs', its real (and file-system) uid stays the user's */
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_uid != getuid() || st->st_nlink != 1 ||
        pread(fd, e, sizeof(*e), 0) != (ssize_t)sizeof(*e))
        return false;
    return memcmp(e->magic, PT_CACHE_MAGIC, 8) == 0 && e->hdr_size == sizeof(ehdr) && e->h0 == h0 &&
           e->h1 == h1 && e->key_len <= PT_CACHE_HEAD_MAX && e->head_len <= PT_CACHE_HEAD_MAX &&
           e->vary_len <= PT_CACHE_HEAD_MAX && e->vnames_len <= e->vary_len &&
           e->etag_len < sizeof(e->etag) && e->status >= 200 && e->status <= 599 &&
           memchr(e->reason, 0, sizeof(e->reason)) != NULL &&
           (uint64_t)st->st_size == entry_body_off(e) + e->body_len;
}

/* Open and check the entry for key: NULL when missing or not what the
 * index says (another key, truncated, a foreign owner, a bad head...). */
static went *entry_open(uint64_t h0, uint64_t h1, const char *key, size_t klen)
{
    char name[40];
    struct stat st;
    entry_name(h0, h1, name);
    int fd = openat(Z->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    went *w = calloc(1, sizeof(*w));
    if (!w)
        goto bad;
    w->fd = fd;
    ehdr *e = &w->e;
    if (!entry_peek(fd, h0, h1, e, &st) || e->key_len != klen)
        goto bad;
    /* a small body rides along: a hit is then one write of head and body */
    size_t n = klen + e->head_len + e->vary_len;
    size_t bn = e->body_len <= PT_CACHE_BODY_MEM ? (size_t)e->body_len : 0;
    if (!(w->key = malloc(n + bn + 1)) ||
        pread(fd, w->key, n + bn, sizeof(ehdr)) != (ssize_t)(n + bn))
        goto bad;
    w->head = w->key + klen;
    w->vary = w->head + e->head_len;
    w->body = bn ? w->vary + e->vary_len : NULL;
    if (memcmp(w->key, key, klen) != 0 || !head_ok(w->head, e->head_len) ||
        (e->vary_len && w->vary[e->vary_len - 1] != '\0') ||
        (e->vnames_len && w->vary[e->vnames_len - 1] != '\0'))
        goto bad;
    w->h0 = h0;
    w->h1 = h1;
    w->refs = 1;
    w->ctime = st.st_ctim;
    return w;
bad:
    if (w)
        free(w->key);
    free(w);
    close(fd);
    return NULL;
}

/* The entry of generation gen for key, referenced (went_put), or NULL. */
static went *went_get(uint64_t h0, uint64_t h1, uint64_t gen, const char *key, size_t klen)
{
    size_t i = (size_t)(h1 % PT_CACHE_WENT);
    went *w = g_went[i];
    struct stat st;
    /* the hash picked the slot; the key itself decides; a file changed
     * since it was checked (written, truncated, unlinked) is checked again */
    if (w && w->zone == Z && w->h0 == h0 && w->h1 == h1 && w->gen == gen && w->e.key_len == klen &&
        memcmp(w->key, key, klen) == 0 && fstat(w->fd, &st) == 0 && st.st_nlink == 1 &&
        (uint64_t)st.st_size == entry_body_off(&w->e) + w->e.body_len &&
        st.st_ctim.tv_sec == w->ctime.tv_sec && st.st_ctim.tv_nsec == w->ctime.tv_nsec) {
        w->refs++;
        return w;
    }
    went *n = entry_open(h0, h1, key, klen);
    if (!n)
        return NULL;
    if (w) {
        g_went[i] = NULL;
        w->listed = false;
        w->refs++;
        went_put(w);
    }
    n->gen = gen;
    n->zone = Z;
    n->listed = true;
    g_went[i] = n;
    return n;
}

/* ---- the connection's side ----------------------------------------------- */

/* What holds a connection while it waits for another request's fill. It
 * stands in c->rq->gw, so the connection treats it as any gateway (a client
 * that leaves aborts it). */
typedef struct cobj {
    pt_gw gw; /* first */
    zone *zone;
    uint64_t h0, h1;
    uint64_t gen0; /* the entry's generation when the wait began */
    bool listed;
    struct cobj *prev, *next;
} cobj;

static cobj *g_waiters; /* this worker's */
static pt_timer g_poll;
static bool g_poll_init;

static void cobj_unlist(cobj *o)
{
    if (!o->listed)
        return;
    if (o->prev)
        o->prev->next = o->next;
    else
        g_waiters = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
    o->listed = false;
}

static void cobj_free(cobj *o)
{
    cobj_unlist(o);
    free(o);
}

static void cobj_drain(pt_gw *g)
{
    (void)g;
}

static void cobj_detach(pt_gw *g)
{
    cobj_free((cobj *)g);
}

static const pt_gw_ops cobj_ops = {cobj_drain, cobj_detach, cobj_detach};

static cobj *cobj_attach(pt_req *r)
{
    cobj *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->gw.ops = &cobj_ops;
    o->gw.r = r;
    o->gw.spill_fd = -1;
    r->gw = &o->gw;
    r->gw_done = false;
    r->conn->state = PT_CS_WRITE;
    return o;
}

const char *pt_cache_status_name(int st)
{
    static const char *const names[] = {NULL,    "MISS",     "BYPASS", "EXPIRED",
                                        "STALE", "UPDATING", "HIT",    "REVALIDATED"};
    return st > 0 && st < (int)PT_ARRAY_LEN(names) ? names[st] : NULL;
}

static void status_header(pt_req *r)
{
    const char *n = pt_cache_status_name(r->cache_status);
    if (n && r->loc->cache.status_header)
        pt_resp_header(r, "X-Cache-Status", n, strlen(n));
}

/* The stored head's lines, one by one: false at the end. */
static bool next_line(const char **p, const char *end, pt_str *n, pt_str *v)
{
    const char *eol = *p < end ? memchr(*p, '\n', (size_t)(end - *p)) : NULL;
    if (!eol)
        return false;
    const char *colon = memchr(*p, ':', (size_t)(eol - *p));
    if (!colon) {
        *p = eol + 1;
        return next_line(p, end, n, v);
    }
    n->p = *p;
    n->len = (size_t)(colon - *p);
    const char *vs = colon + 1, *ve = eol - 1; /* before the CR */
    while (vs < ve && (*vs == ' ' || *vs == '\t'))
        vs++;
    v->p = vs;
    v->len = (size_t)(ve - vs);
    *p = eol + 1;
    return true;
}

/* Compression on the fly of a hit, as for the gateway response it was
 * (zresp.c): only bodies kept in memory are coded (a larger one goes out
 * as it is, with the same Vary). */
static pt_zcoding hit_coding(pt_req *r, const went *en, bool *vary)
{
    pt_zinfo zi = {.status = en->e.status, .length = (int64_t)en->e.body_len};
    const char *p = en->head, *end = en->head + en->e.head_len;
    pt_str n, v;
    *vary = false;
    while (next_line(&p, end, &n, &v)) {
        if (pt_str_ieq(n.p, n.len, "Content-Type")) {
            zi.ctype = v.p;
            zi.ctype_len = v.len;
        } else if (pt_str_ieq(n.p, n.len, "Content-Encoding") ||
                   pt_str_ieq(n.p, n.len, "Content-Range")) {
            zi.has_ce = true;
        } else if (pt_str_ieq(n.p, n.len, "Cache-Control")) {
            for (size_t i = 0; i + 12 <= v.len; i++)
                if (pt_str_ieq(v.p + i, 12, "no-transform"))
                    zi.no_transform = true;
        }
    }
    pt_zcoding zc = pt_zresp_choose(r, &zi, vary);
    return en->body ? zc : PT_ZC_NONE;
}

static int hit_sink(void *arg, const void *p, size_t n)
{
    pt_resp_body(arg, p, n);
    return 0;
}

/* The ranges a hit's Range asks for (pt_range_parse's answer): only for a
 * stored 200 to a GET, and only while If-Range names this entry (RFC 9110
 * §13.1.5; a date counts when strong, a second older than the stored
 * response, §8.8.2.2). */
static int hit_ranges(pt_req *r, const went *en, pt_range *rg, int max)
{
    const ehdr *e = &en->e;
    const pt_head *h = &r->head;
    const pt_header *rh = pt_head_get(h, "Range"), *ir;
    if (!rh || e->status != 200 || h->method != PT_M_GET)
        return 0;
    if ((ir = pt_head_get(h, "If-Range"))) {
        time_t lm = e->last_modified > 0 && e->last_modified < e->stored ? (time_t)e->last_modified
                                                                         : (time_t)-1;
        if (!pt_if_range_ok(ir->value, ir->value_len, e->etag_len ? e->etag : NULL, e->etag_len,
                            lm))
            return 0;
    }
    return pt_range_parse(rh->value, rh->value_len, e->body_len, rg, max);
}

static void hit_slice(pt_req *r, const went *en, const pt_range *rg)
{
    uint64_t len = rg->end - rg->start + 1;
    if (en->body)
        pt_resp_body(r, en->body + rg->start, (size_t)len);
    else
        pt_resp_body_file(r, en->fd, (off_t)(entry_body_off(&en->e) + rg->start), len);
}

/* A 206 (one range, or multipart/byteranges as static files send, RFC
 * 9110 §14.6) or a 416 from the stored body; never compressed. */
static void serve_ranges(pt_req *r, const went *en, const pt_range *rg, int nr, bool zvary)
{
    const ehdr *e = &en->e;
    int64_t age = (int64_t)time(NULL) - e->stored;
    pt_resp_begin(r, nr < 0 ? 416 : 206);
    const char *p = en->head, *end = en->head + e->head_len;
    pt_str n, v, ct = {"application/octet-stream", 24};
    /* the stored lines, but a multipart body has its own Content-Type */
    while (next_line(&p, end, &n, &v)) {
        if (pt_str_ieq(n.p, n.len, "Content-Type")) {
            ct = v;
            if (nr != 1)
                continue;
        }
        pt_resp_header_block(r, n.p, (size_t)(v.p + v.len + 2 - n.p)); /* the line, CRLF */
    }
    pt_resp_headerf(r, "Age", "%lld", (long long)(age > 0 ? age : 0));
    status_header(r);
    pt_zresp_coding_headers(r, PT_ZC_NONE, zvary);
    if (nr < 0) {
        pt_resp_headerf(r, "Content-Range", "bytes */%llu", (unsigned long long)e->body_len);
        pt_resp_end(r, 0);
        return;
    }
    if (nr == 1) {
        pt_resp_headerf(r, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)rg[0].start,
                        (unsigned long long)rg[0].end, (unsigned long long)e->body_len);
        pt_resp_end(r, (int64_t)(rg[0].end - rg[0].start + 1));
        hit_slice(r, en, &rg[0]);
        return;
    }
    char boundary[24], ph[512];
    snprintf(boundary, sizeof(boundary), "%016llx", (unsigned long long)(e->h1 ^ (uint64_t)age));
    uint64_t total = 0;
    int k;
    /* two passes: the length goes out before the parts */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nr; i++) {
            k = snprintf(ph, sizeof(ph),
                         "\r\n--%s\r\nContent-Type: %.*s\r\nContent-Range: bytes %llu-%llu/%llu"
                         "\r\n\r\n",
                         boundary, (int)PT_MIN(ct.len, (size_t)300), ct.p,
                         (unsigned long long)rg[i].start, (unsigned long long)rg[i].end,
                         (unsigned long long)e->body_len);
            size_t hl = k < 0 ? 0 : PT_MIN((size_t)k, sizeof(ph) - 1);
            if (pass == 0) {
                total += hl + (rg[i].end - rg[i].start + 1);
            } else {
                pt_resp_body(r, ph, hl);
                hit_slice(r, en, &rg[i]);
            }
        }
        k = snprintf(ph, sizeof(ph), "\r\n--%s--\r\n", boundary);
        if (pass == 0) {
            pt_resp_headerf(r, "Content-Type", "multipart/byteranges; boundary=%s", boundary);
            pt_resp_end(r, (int64_t)(total + (uint64_t)k));
        } else {
            pt_resp_body(r, ph, (size_t)k);
        }
    }
}

/* Serve en (its reference taken) to c: 304 when the request's validators
 * match, else the stored head and the body straight from the file
 * (sendfile; the reference stays with the request, pt_cache_release), or
 * from memory when small. */
static void serve_entry(pt_req *r, went *en, int st)
{
    const ehdr *e = &en->e;
    const pt_head *h = &r->head;
    r->cache_status = st;
    /* RFC 9111 §4.3.2: a cache answers conditional requests itself */
    pt_precond pc = {.is_get_or_head = true,
                     .etag = e->etag_len ? e->etag : NULL,
                     .etag_len = e->etag_len,
                     .last_modified = e->last_modified > 0 ? (time_t)e->last_modified : 0};
    const pt_header *x;
    if ((x = pt_head_get(h, "If-None-Match")))
        pc.if_none_match = (pt_str){x->value, x->value_len};
    if ((x = pt_head_get(h, "If-Modified-Since")) && e->last_modified > 0)
        pc.if_modified_since = (pt_str){x->value, x->value_len};
    bool not_modified = e->status == 200 && (pc.if_none_match.p || pc.if_modified_since.p) &&
                        pt_precond_eval(&pc) == 304;
    bool bodiless = not_modified || e->status == 204, zvary = false;
    pt_zcoding zc = hit_coding(r, en, &zvary);
    pt_compress *z = NULL;
    pt_range rg[64];
    int max = (int)PT_MIN(r->conn->w->cfg->limits.max_ranges, (uint32_t)PT_ARRAY_LEN(rg));
    int nr = not_modified ? 0 : hit_ranges(r, en, rg, max);
    if (nr != 0) {
        serve_ranges(r, en, rg, nr, zvary);
        goto done;
    }
    if (zc != PT_ZC_NONE && !bodiless && !(z = pt_zresp_coder(r, zc, (int64_t)e->body_len)) &&
        !r->is_head)
        zc = PT_ZC_NONE; /* no memory for a coder: the identity bytes */
    int64_t age = (int64_t)time(NULL) - e->stored;
    pt_resp_begin_reason(r, not_modified ? 304 : e->status, not_modified ? NULL : e->reason);
    if (zc == PT_ZC_NONE) {
        pt_resp_header_block(r, en->head, e->head_len);
    } else {
        /* the coded representation's validators: a weak ETag */
        const char *p = en->head, *end = en->head + e->head_len;
        pt_str n, v;
        while (next_line(&p, end, &n, &v))
            pt_zresp_gw_header(r, n.p, n.len, v.p, v.len, true);
    }
    pt_resp_headerf(r, "Age", "%lld", (long long)(age > 0 ? age : 0));
    status_header(r);
    pt_zresp_coding_headers(r, not_modified ? PT_ZC_NONE : zc, zvary);
    if (zc != PT_ZC_NONE && !not_modified) {
        pt_resp_end_stream(r, -1);
        if (z && pt_compress_write(z, en->body, (size_t)e->body_len, PT_ZM_FINISH, hit_sink, r) < 0)
            pt_resp_cut(r, PT_CUT_SHORT); /* no last chunk: the client sees the cut */
        else
            pt_resp_body_end(r);
    } else {
        pt_resp_end(r, bodiless ? -1 : (int64_t)e->body_len);
        if (!bodiless && en->body)
            pt_resp_body(r, en->body, e->body_len);
        else if (!bodiless && e->body_len)
            pt_resp_body_file(r, en->fd, (off_t)entry_body_off(e), e->body_len);
    }
done:
    pt_compress_free(z);
    went_put(r->cache_ent);
    r->cache_ent = en;
    r->conn->state = PT_CS_WRITE;
}

struct pt_cache_fill {
    zone *zone;
    /* revalidating an expired entry: the entry, the client's conditional
     * headers the validators replaced (restored before anything else reads
     * them) */
    went *reval;
    size_t orig_nheaders;
    struct {
        size_t idx;
        const char *value;
        uint32_t len;
    } saved[2];
    size_t nsaved;
    bool injected;
    char lm[PT_HTTPDATE_LEN + 1];
    uint64_t h0, h1, id;
    char *key;
    size_t key_len;
    int fd;
    char tmp[64];
    uint64_t written, body_len, max;
    ehdr e;
    bool storing, ended;
};

static void fill_unlock(struct pt_cache_fill *f, bool pass)
{
    ix_lock();
    cslot *s = ix_find(f->h0, f->h1);
    if (s && s->fill_id == f->id) {
        s->fill_id = 0;
        s->filler = 0;
        if (pass) /* not storable: the next requests skip the wait for a while */
            s->pass_until = (int64_t)time(NULL) + 5;
        else if (!s->valid)
            ix_remove(s);
    }
    ix_unlock();
}

void pt_cache_fill_free(struct pt_cache_fill *f)
{
    if (!f)
        return;
    Z = f->zone;
    went_put(f->reval);
    if (f->fd >= 0) {
        close(f->fd);
        unlinkat(Z->dirfd, f->tmp, 0);
    }
    if (!f->ended)
        fill_unlock(f, false);
    free(f->key);
    free(f);
}

/* The client's own conditional headers back (the validators the cache
 * sent to the backend were only for the backend). */
static void reval_restore(pt_req *r, struct pt_cache_fill *f)
{
    if (!f || !f->injected || !r)
        return;
    pt_head *h = &r->head;
    for (size_t i = 0; i < f->nsaved; i++) {
        h->headers[f->saved[i].idx].value = f->saved[i].value;
        h->headers[f->saved[i].idx].value_len = f->saved[i].len;
    }
    h->nheaders = f->orig_nheaders;
    f->injected = false;
}

static void reval_set(pt_req *r, struct pt_cache_fill *f, const char *name, const char *v,
                      size_t vl)
{
    pt_head *h = &r->head;
    for (size_t i = 0; i < h->nheaders; i++)
        if (pt_str_ieq(h->headers[i].name, h->headers[i].name_len, name)) {
            if (f->nsaved < PT_ARRAY_LEN(f->saved)) {
                f->saved[f->nsaved].idx = i;
                f->saved[f->nsaved].value = h->headers[i].value;
                f->saved[f->nsaved++].len = h->headers[i].value_len;
                h->headers[i].value = v;
                h->headers[i].value_len = (uint32_t)vl;
            }
            return;
        }
    if (h->nheaders < r->conn->w->cfg->limits.max_headers)
        h->headers[h->nheaders++] = (pt_header){.name = name,
                                                .value = v,
                                                .name_len = (uint32_t)strlen(name),
                                                .value_len = (uint32_t)vl};
}

/* RFC 9111 §4.3.1: the backend is asked with the expired entry's
 * validators; a 304 then freshens the entry (pt_cache_revalidated). Only
 * with an ETag, or with a Last-Modified when the client sent no
 * If-None-Match (which would take precedence, RFC 9110 §13.1.3). */
static void reval_inject(pt_req *r, struct pt_cache_fill *f, went *en)
{
    const ehdr *e = &en->e;
    if (!e->etag_len && (e->last_modified <= 0 || pt_head_get(&r->head, "If-None-Match"))) {
        went_put(en);
        return;
    }
    f->reval = en;
    f->orig_nheaders = r->head.nheaders;
    f->injected = true;
    if (e->etag_len)
        reval_set(r, f, "If-None-Match", e->etag, e->etag_len);
    if (e->last_modified > 0) {
        pt_httpdate_format((time_t)e->last_modified, f->lm);
        reval_set(r, f, "If-Modified-Since", f->lm, PT_HTTPDATE_LEN);
    }
}

void pt_cache_release(pt_req *r)
{
    if (!r)
        return;
    reval_restore(r, r->cache_fill);
    pt_cache_fill_free(r->cache_fill);
    r->cache_fill = NULL;
    went_put(r->cache_ent);
    r->cache_ent = NULL;
}

/* The index's current entry for key, referenced, or NULL. */
static went *current_entry(uint64_t h0, uint64_t h1, const char *key, size_t klen)
{
    uint64_t gen = 0;
    ix_lock();
    const cslot *s = ix_find(h0, h1);
    if (s && s->valid)
        gen = s->gen;
    ix_unlock();
    return gen ? went_get(h0, h1, gen, key, klen) : NULL;
}

bool pt_cache_stale_on_error(pt_req *r, int status, const char *why)
{
    struct pt_cache_fill *f = r ? r->cache_fill : NULL;
    went *en;
    /* nginx's proxy_cache_use_stale error: an expired entry beats an error
     * page (RFC 9111 §4.2.4 allows it when configured) */
    if (!f || status < 500 || r->cache_status != PT_CACHE_EXPIRED || !r->loc)
        return false;
    Z = f->zone;
    reval_restore(r, f);
    if (!(en = current_entry(f->h0, f->h1, f->key, f->key_len)))
        return false;
    /* RFC 5861 §4: the backend's stale-if-error=N allows it N seconds past
     * expiry, without cache_use_stale */
    bool allowed = r->loc->cache.stale_error ||
                   (en->e.sie && (int64_t)time(NULL) < en->e.expires + (int64_t)en->e.sie);
    if (en->e.no_stale || !allowed) {
        went_put(en);
        return false;
    }
    pt_log_info("cache: a stale entry answers instead of %d (%s), client: %s:%u", status,
                why ? why : pt_status_reason(status), pt_conn_req_ip(r), r->peer_port);
    CTR(stale);
    serve_entry(r, en, PT_CACHE_STALE);
    return true;
}

struct pt_cache_fill *pt_cache_fill_of(pt_req *r)
{
    return r ? r->cache_fill : NULL;
}

static bool allowed_purge(const pt_req *r)
{
    const pt_cache_cfg *z = &r->loc->cache;
    pt_access_list l = {(pt_access_rule *)z->purge, z->npurge};
    const pt_access_rule *rule = pt_access_match(&l, r->peer_af, r->peer_addr);
    return rule && rule->allow;
}

static void purge(pt_req *r, uint64_t h0, uint64_t h1)
{
    bool found = false;
    ix_lock();
    cslot *s = ix_find(h0, h1);
    if (s && s->valid) {
        char name[40];
        entry_name(h0, h1, name);
        unlinkat(Z->dirfd, name, 0);
        Z->shm->bytes -= s->size;
        s->valid = 0;
        s->size = 0;
        found = true;
        if (!s->fill_id)
            ix_remove(s);
    }
    ix_unlock();
    if (found)
        CTR(purges);
    static const char done[] = "purged\n";
    if (!found) {
        pt_conn_reject(r, 404, "cache purge: no such entry", false);
        return;
    }
    pt_resp_begin(r, 200);
    pt_resp_header(r, "Content-Type", "text/plain", 10);
    pt_resp_end(r, PT_SLEN(done));
    pt_resp_body(r, done, PT_SLEN(done));
}

static void on_poll(pt_loop *l, pt_timer *t);

static void wait_for_fill(pt_req *r, uint64_t h0, uint64_t h1, uint64_t gen)
{
    cobj *o = cobj_attach(r);
    if (!o) {
        pt_conn_reject(r, 500, "out of memory", true);
        return;
    }
    o->zone = Z;
    o->gen0 = gen;
    o->h0 = h0;
    o->h1 = h1;
    if (!r->cache_wait_t0)
        r->cache_wait_t0 = r->conn->w->loop.now ? r->conn->w->loop.now : 1;
    o->listed = true;
    o->next = g_waiters;
    if (g_waiters)
        g_waiters->prev = o;
    g_waiters = o;
    if (!g_poll_init) {
        pt_timer_init(&g_poll, on_poll, r->conn->w);
        g_poll_init = true;
    }
    if (!pt_timer_armed(&g_poll))
        pt_timer_arm(&r->conn->w->loop, &g_poll, pt_worker_tlist(r->conn->w, PT_CACHE_POLL_MS));
}

/* Every 10 ms: a waiter whose fill ended (or died, or took too long) is
 * dispatched again: it finds the new entry, leads a fill itself, or (after
 * cache_lock_timeout) goes to the backend without the cache. */
static void on_poll(pt_loop *l, pt_timer *t)
{
    pt_worker *w = t->data;
    cobj *wake = NULL;
    uint64_t now = mono_ms();
    int64_t wall = (int64_t)time(NULL);
    for (cobj *o = g_waiters, *next; o; o = next) {
        next = o->next;
        pt_req *r = o->gw.r;
        Z = o->zone;
        ix_lock();
        const cslot *s = ix_find(o->h0, o->h1);
        bool go = !s || !filler_alive(s, now) || (s->valid && wall < s->expires);
        /* the fill it waited for stored or confirmed the entry: that answer
         * is this request's too (collapsed, even when stored already stale
         * as no-cache is: otherwise waiters would revalidate one by one) */
        if (s && s->valid && s->gen != o->gen0 && !s->fill_id)
            r->cache_gen = s->gen;
        ix_unlock();
        if (!go && l->now - r->cache_wait_t0 >= r->loc->cache.lock_timeout_ms) {
            /* nginx's proxy_cache_lock_timeout: to the backend, uncached */
            r->cache_skip = true;
            r->cache_status = PT_CACHE_MISS;
            go = true;
        }
        if (go) {
            cobj_unlist(o);
            o->next = wake;
            wake = o;
        }
    }
    while (wake) {
        cobj *o = wake;
        wake = o->next;
        pt_req *r = o->gw.r;
        r->gw = NULL;
        free(o);
        pt_conn_redispatch(r);
    }
    if (g_waiters)
        pt_timer_arm(&w->loop, &g_poll, pt_worker_tlist(w, PT_CACHE_POLL_MS));
}

/* ---- background updates ------------------------------------------------ */

/* cache_background_update (nginx's proxy_cache_background_update): the
 * request that finds an expired entry is answered with it at once, and the
 * refresh is a request of its own: a connection the worker makes to
 * itself over a socketpair, carrying the client's request line and headers
 * (less conditionals and ranges) from the client's address, so it goes
 * through the same router, access rules, limits, gateway and timeouts as
 * any request, and finishes whether the client stays or not. It takes the
 * fill the first request locked (one per entry); its answer is read here
 * and dropped. */
#define PT_CACHE_BG_MAX 64 /* refreshes in progress per worker */

typedef struct bgref {
    pt_worker *w;
    pt_conn *c;   /* the refresh's connection until it takes f; then NULL */
    uint64_t cid; /* its id: a later connection at the same address is not it */
    struct pt_cache_fill *f;
    pt_io io; /* our end: the answer, read and dropped */
    struct bgref *prev, *next;
} bgref;

static bgref *g_bg;
static unsigned g_nbg;

static void bg_free(bgref *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        g_bg = b->next;
    if (b->next)
        b->next->prev = b->prev;
    g_nbg--;
    pt_io_closing(&b->w->loop, &b->io);
    close(b->io.fd);
    /* a refresh that never reached the cache (refused, timed out before)
     * gives the lock back: the next request refreshes */
    pt_cache_fill_free(b->f);
    free(b);
}

static void on_bg_io(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    bgref *b = io->data;
    char buf[16384];
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(io->fd, buf, sizeof(buf));
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        bg_free(b); /* the refresh connection closed (Connection: close) */
        return;
    }
}

/* The refresh connection's first dispatch: its fill, or NULL (not one). */
static struct pt_cache_fill *bg_take(pt_req *r)
{
    for (bgref *b = g_bg; b; b = b->next)
        if (b->c == r->conn && b->cid == r->conn->id) {
            struct pt_cache_fill *f = b->f;
            b->f = NULL;
            b->c = NULL;
            return f;
        }
    return NULL;
}

static bool bg_hdr_skipped(const pt_header *x)
{
    static const char *const skip[] = {
        "Connection", "Keep-Alive",          "If-None-Match",     "If-Modified-Since",
        "If-Match",   "If-Unmodified-Since", "If-Range",          "Range",
        "Expect",     "Content-Length",      "Transfer-Encoding", "TE",
        "Upgrade",    "Proxy-Connection"};
    for (size_t i = 0; i < PT_ARRAY_LEN(skip); i++)
        if (pt_str_ieq(x->name, x->name_len, skip[i]))
            return true;
    return false;
}

/* Start the refresh of c's expired entry as a request of its own, with f
 * (locked). false: not possible now (the caller refreshes in c itself). */
static bool bg_start(pt_req *r, struct pt_cache_fill *f)
{
    const pt_head *h = &r->head;
    pt_worker *w = r->conn->w;
    /* the refresh is a plain connection: for a TLS client the backend
     * would see no HTTPS and might answer for http (a redirect to https
     * stored for https clients), so such a client refreshes in place */
    if (r->conn->sock.tls || g_nbg >= PT_CACHE_BG_MAX || w->stopping ||
        w->nconns >= w->cfg->limits.max_connections)
        return false;
    kbuf rq;
    kinit(&rq);
    kput(&rq, "GET ", 4);
    kput(&rq, h->target.p, h->target.len);
    kput(&rq, " HTTP/1.1\r\n", 11);
    for (size_t i = 0; i < h->nheaders; i++) {
        const pt_header *x = &h->headers[i];
        if (bg_hdr_skipped(x))
            continue;
        kput(&rq, x->name, x->name_len);
        kput(&rq, ": ", 2);
        kput(&rq, x->value, x->value_len);
        kput(&rq, "\r\n", 2);
    }
    kput(&rq, "Connection: close\r\n\r\n", 21);
    int sv[2] = {-1, -1};
    bgref *b = NULL;
    /* the request must fit the socket buffer in one write */
    if (rq.bad || rq.len > 65536 || !(b = calloc(1, sizeof(*b))) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        free(b);
        kfree(&rq);
        return false;
    }
    /* the client's address: access rules, limits and logs see it */
    struct sockaddr_storage ss;
    unsigned sl = sizeof(sa_family_t);
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    if (r->peer_af == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, r->peer_addr, 4);
        s4->sin_port = htons(r->peer_port);
        sl = sizeof(*s4);
    } else if (r->peer_af == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, r->peer_addr, 16);
        s6->sin6_port = htons(r->peer_port);
        sl = sizeof(*s6);
    }
    b->w = w;
    pt_io_init(&b->io, sv[0], on_bg_io, b);
    PT_STATS_ADD(pt_stats_my->accepted, 1);
    PT_STATS_ADD(pt_stats_my->active, 1);
    uint64_t id = w->conn_seq + 1;
    pt_conn *before = w->conns;
    /* listed first with the next id; nothing to read yet, so it waits for
     * the request below (dispatched from the loop, not from in here) */
    pt_conn_accept(w, sv[1], &ss, sl, false, false, 0);
    bool ok = w->conns != before && w->conns->id == id && w->conns->fd == sv[1];
    if (ok) {
        b->c = w->conns;
        b->cid = id;
    }
    if (!ok && w->conns == before)
        PT_STATS_SUB(pt_stats_my->active, 1); /* no connection was made */
    if (!ok || write(sv[0], rq.p, rq.len) != (ssize_t)rq.len) {
        /* the connection (if any) sees the close and ends */
        close(sv[0]);
        free(b);
        kfree(&rq);
        return false;
    }
    kfree(&rq);
    b->f = f;
    b->next = g_bg;
    if (g_bg)
        g_bg->prev = b;
    g_bg = b;
    g_nbg++;
    pt_io_set(&w->loop, &b->io, EPOLLIN);
    CTR(background);
    return true;
}

/* Cache-Control directives (RFC 9111 §5.2.2) of one field value. */
typedef struct cc_info {
    bool no_store, priv, no_cache, must_revalidate;
    int64_t max_age, s_maxage; /* -1 absent */
    int64_t swr, sie;          /* RFC 5861 §3, §4: -1 absent */
} cc_info;

static int64_t cc_seconds(const char *p, size_t n)
{
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    int64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        /* RFC 9111 §1.2.2: too large is as good as 2^31 */
        v = v > 2147483648LL ? v : v * 10 + (p[i] - '0');
    }
    return v;
}

static void cc_parse(const char *p, size_t n, cc_info *cc)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        size_t a = i;
        while (i < n && p[i] != ',' && p[i] != '=')
            i++;
        size_t nl = i - a;
        while (nl && (p[a + nl - 1] == ' ' || p[a + nl - 1] == '\t'))
            nl--;
        const char *v = NULL;
        size_t vl = 0;
        if (i < n && p[i] == '=') {
            v = p + ++i;
            bool q = i < n && p[i] == '"';
            if (q)
                i++;
            while (i < n && (q ? p[i] != '"' : p[i] != ','))
                i++;
            if (q && i < n)
                i++;
            vl = (size_t)(p + i - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
        }
        if (pt_str_ieq(p + a, nl, "no-store"))
            cc->no_store = true;
        else if (pt_str_ieq(p + a, nl, "private"))
            cc->priv = true;
        else if (pt_str_ieq(p + a, nl, "no-cache"))
            cc->no_cache = true;
        else if (pt_str_ieq(p + a, nl, "must-revalidate") ||
                 pt_str_ieq(p + a, nl, "proxy-revalidate"))
            cc->must_revalidate = true;
        else if (pt_str_ieq(p + a, nl, "max-age") && v)
            cc->max_age = cc_seconds(v, vl);
        else if (pt_str_ieq(p + a, nl, "s-maxage") && v)
            cc->s_maxage = cc_seconds(v, vl);
        else if (pt_str_ieq(p + a, nl, "stale-while-revalidate") && v)
            cc->swr = cc_seconds(v, vl);
        else if (pt_str_ieq(p + a, nl, "stale-if-error") && v)
            cc->sie = cc_seconds(v, vl);
    }
}

/* Does c select the stored response en (RFC 9111 §4.1)? */
static bool vary_matches(pt_req *r, const went *en)
{
    if (!en->e.vary_len)
        return true;
    kbuf vr;
    kinit(&vr);
    bool same = vary_record(r, en->vary, en->e.vnames_len, &vr) == 0 &&
                vr.len == en->e.vary_len - en->e.vnames_len &&
                memcmp(vr.p, en->vary + en->e.vnames_len, vr.len) == 0;
    kfree(&vr);
    return same;
}

static bool req_no_store(const pt_req *r)
{
    const pt_head *h = &r->head;
    cc_info cc = {.max_age = -1, .s_maxage = -1, .swr = -1, .sie = -1};
    for (size_t i = 0; i < h->nheaders; i++)
        if (pt_str_ieq(h->headers[i].name, h->headers[i].name_len, "Cache-Control"))
            cc_parse(h->headers[i].value, h->headers[i].value_len, &cc);
    return cc.no_store;
}

bool pt_cache_handle(pt_req *r)
{
    const pt_cache_cfg *z = &r->loc->cache;
    const pt_head *h = &r->head;
    int zi = z->zone;
    if (zi < 0 || (size_t)zi >= g_ncfgzone || !(Z = g_cfgzone[zi]) || r->cache_skip)
        return false;
    /* an internal redirect's second dispatch: the first fill is over */
    pt_cache_release(r);
    struct pt_cache_fill *bf = g_bg ? bg_take(r) : NULL;
    if (bf) {
        /* a background refresh: it fills, with the entry's validators */
        Z = bf->zone;
        r->cache_fill = bf;
        r->cache_status = PT_CACHE_EXPIRED;
        went *en = current_entry(bf->h0, bf->h1, bf->key, bf->key_len);
        if (en && vary_matches(r, en))
            reval_inject(r, bf, en);
        else
            went_put(en);
        return false;
    }
    bool is_purge = h->method == PT_M_OTHER && z->npurge &&
                    pt_str_ieq(h->method_str.p, h->method_str.len, "PURGE");
    if (is_purge && !allowed_purge(r)) {
        pt_conn_reject(r, 403, "cache purge from an address not in cache_purge", false);
        return true;
    }
    if (!is_purge && !(z->methods & (1u << h->method)))
        return false;
    if (!is_purge && !z->authorized && pt_head_get(h, "Authorization")) {
        /* RFC 9111 §3.5: another user's answer is never theirs */
        r->cache_status = PT_CACHE_BYPASS;
        CTR(bypass);
        return false;
    }
    kbuf kb;
    kinit(&kb);
    if (key_make(r, &kb) < 0) {
        kfree(&kb);
        return false;
    }
    uint64_t h0, h1;
    key_hash(kb.p, kb.len, &h0, &h1);
    if (is_purge) {
        kfree(&kb);
        purge(r, h0, h1);
        return true;
    }
    int64_t wall = (int64_t)time(NULL);
    uint64_t now = mono_ms(), gen = 0;
    bool has_entry = false, fresh = false, filling = false;
    ix_lock();
    cslot *s = ix_find(h0, h1);
    if (s) {
        has_entry = s->valid;
        gen = s->gen;
        fresh = s->valid && (wall < s->expires || (r->cache_gen && s->gen == r->cache_gen));
        filling = filler_alive(s, now);
        if (fresh)
            s->used = ++Z->shm->clock;
        if (!s->valid && !filling && s->pass_until > wall) {
            ix_unlock();
            kfree(&kb);
            r->cache_status = PT_CACHE_MISS;
            CTR(misses);
            return false;
        }
    }
    ix_unlock();

    bool vary_miss = false;
    if (has_entry && (fresh || filling)) {
        went *en = went_get(h0, h1, gen, kb.p, kb.len);
        /* cache_use_stale updating, or the backend's own RFC 5861 §3
         * stale-while-revalidate=N for N seconds past expiry */
        bool no_stale =
            en && !fresh &&
            (en->e.no_stale ||
             !(z->stale_updating || (en->e.swr && wall < en->e.expires + (int64_t)en->e.swr)));
        if (no_stale) {
            went_put(en); /* must-revalidate: wait for the fill instead */
            en = NULL;
        }
        if (en) {
            if (!vary_matches(r, en)) {
                /* another variant: this request's own answer replaces it */
                vary_miss = true;
                went_put(en);
            }
            if (!vary_miss) {
                kfree(&kb);
                if (fresh)
                    CTR(hits);
                else
                    CTR(updating);
                serve_entry(r, en, fresh ? PT_CACHE_HIT : PT_CACHE_UPDATING);
                return true;
            }
        } else if (!no_stale) {
            /* gone or damaged: forget it */
            ix_lock();
            if ((s = ix_find(h0, h1)) && s->valid && s->gen == gen) {
                Z->shm->bytes -= s->size;
                s->valid = 0;
                s->size = 0;
            }
            ix_unlock();
            has_entry = false;
        }
    }
    if (filling && !vary_miss) {
        kfree(&kb);
        /* one fill at a time: wait for its entry */
        wait_for_fill(r, h0, h1, gen);
        return true;
    }
    if (vary_miss)
        has_entry = false; /* another variant's entry: a miss for this one */
    r->cache_status = has_entry ? PT_CACHE_EXPIRED : PT_CACHE_MISS;
    if (has_entry)
        CTR(expired);
    else
        CTR(misses);
    struct pt_cache_fill *f = NULL;
    /* HEAD has no body to store; a concurrent fill owns the slot; RFC 9111
     * §5.2.1.5: the answer to a request with no-store is not stored */
    if (h->method != PT_M_GET || filling || req_no_store(r) || !(f = calloc(1, sizeof(*f))) ||
        !(f->key = malloc(kb.len + 1))) {
        free(f);
        kfree(&kb);
        return false;
    }
    f->fd = -1;
    f->zone = Z;
    f->h0 = h0;
    f->h1 = h1;
    memcpy(f->key, kb.p, kb.len);
    f->key_len = kb.len;
    kfree(&kb);
    ix_lock();
    s = ix_find(h0, h1);
    if (!s)
        s = ix_insert(h0, h1);
    if (s && !filler_alive(s, now)) {
        f->id = ++Z->shm->next_id;
        s->fill_id = f->id;
        s->filler = (int32_t)getpid();
        s->fill_t = now;
        s->used = ++Z->shm->clock;
    }
    ix_unlock();
    if (!f->id) {
        /* the table is full of fills, or another took it just now */
        f->ended = true;
        pt_cache_fill_free(f);
        return false;
    }
    if (has_entry && z->background_update) {
        /* the stale entry now, the refresh behind it (when a stale answer
         * is allowed: cache_use_stale updating, or RFC 5861's window) */
        went *en = went_get(h0, h1, gen, f->key, f->key_len);
        if (en && !en->e.no_stale &&
            (z->stale_updating || (en->e.swr && wall < en->e.expires + (int64_t)en->e.swr)) &&
            vary_matches(r, en) && bg_start(r, f)) {
            Z = f->zone;
            CTR(updating);
            serve_entry(r, en, PT_CACHE_UPDATING);
            return true;
        }
        went_put(en);
    }
    r->cache_fill = f;
    if (has_entry) {
        went *en = went_get(h0, h1, gen, f->key, f->key_len);
        if (en && vary_matches(r, en))
            reval_inject(r, f, en);
        else
            went_put(en);
    }
    return false;
}

/* ---- the fill ------------------------------------------------------------ */

/* Statuses RFC 9110 §15.1 calls heuristically cacheable (206 aside: no
 * ranges here); cache_valid may add others. */
static bool status_cacheable(int st)
{
    static const int ok[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    for (size_t i = 0; i < PT_ARRAY_LEN(ok); i++)
        if (ok[i] == st)
            return true;
    return false;
}

/* Headers that describe the connection or this one exchange, not the
 * stored response (RFC 9111 §3.1), or that the hit makes itself. */
static bool header_not_stored(pt_str n)
{
    static const char *const skip[] = {"Connection", "Keep-Alive",     "Transfer-Encoding", "Age",
                                       "Date",       "X-Cache-Status", "Proxy-Connection",  "TE",
                                       "Trailer",    "Upgrade"};
    for (size_t i = 0; i < PT_ARRAY_LEN(skip); i++)
        if (pt_str_ieq(n.p, n.len, skip[i]))
            return true;
    return false;
}

/* How long the response stays fresh (seconds), or -1: not storable. */
/* swr, sie: RFC 5861's windows, set when the response has them. */
static int64_t fill_lifetime(pt_req *r, const pt_cgi_resp *cr, int status, kbuf *vnames,
                             int64_t *age, bool *no_stale, uint32_t *swr, uint32_t *sie)
{
    const pt_cache_cfg *z = &r->loc->cache;
    cc_info cc = {.max_age = -1, .s_maxage = -1, .swr = -1, .sie = -1};
    int64_t expires = -1, now = (int64_t)time(NULL);
    bool has_expires = false, validator = false;
    *age = 0;
    for (size_t i = 0; i < cr->nhdrs; i++) {
        pt_str n = pt_cgi_hdr_name(cr, i), v = pt_cgi_hdr_value(cr, i);
        if (pt_str_ieq(n.p, n.len, "ETag") || pt_str_ieq(n.p, n.len, "Last-Modified"))
            validator = true;
        if (pt_str_ieq(n.p, n.len, "Cache-Control")) {
            cc_parse(v.p, v.len, &cc);
        } else if (pt_str_ieq(n.p, n.len, "Expires")) {
            time_t t;
            has_expires = true;
            /* RFC 9111 §5.3: an invalid date means already expired */
            expires = pt_httpdate_parse(v.p, v.len, &t) == 0 ? (int64_t)t : 0;
        } else if (pt_str_ieq(n.p, n.len, "Set-Cookie") && !z->set_cookie) {
            return -1;
        } else if (pt_str_ieq(n.p, n.len, "Age")) {
            *age = cc_seconds(v.p, v.len) > 0 ? cc_seconds(v.p, v.len) : 0;
        } else if (pt_str_ieq(n.p, n.len, "Vary")) {
            /* names, lower case; "*" never matches a later request */
            for (size_t k = 0; k < v.len;) {
                while (k < v.len && (v.p[k] == ' ' || v.p[k] == '\t' || v.p[k] == ','))
                    k++;
                size_t a = k;
                while (k < v.len && v.p[k] != ',' && v.p[k] != ' ' && v.p[k] != '\t')
                    k++;
                if (k == a)
                    continue;
                if (k - a == 1 && v.p[a] == '*')
                    return -1;
                for (size_t j = a; j < k; j++) {
                    char ch = v.p[j];
                    ch = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
                    kput(vnames, &ch, 1);
                }
                kput(vnames, "", 1);
            }
        }
    }
    /* RFC 9111 §3: no-store and private forbid a shared cache to store;
     * no-cache asks for a revalidation at every use (§5.2.2.4): stored
     * already stale when it has a validator to revalidate with */
    if (cc.no_store || cc.priv || vnames->bad || (cc.no_cache && !validator))
        return -1;
    if (cc.swr >= 0)
        *swr = (uint32_t)PT_MIN(cc.swr, (int64_t)INT32_MAX);
    if (cc.sie >= 0)
        *sie = (uint32_t)PT_MIN(cc.sie, (int64_t)INT32_MAX);
    if (cc.no_cache && (status_cacheable(status) || status == 200)) {
        *no_stale = true;
        return 0;
    }
    /* RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10: a stale copy of these must
     * not be used without the origin, not even when the origin fails */
    *no_stale = cc.must_revalidate || cc.s_maxage >= 0;
    int64_t life = -1;
    if (cc.s_maxage >= 0)
        life = cc.s_maxage;
    else if (cc.max_age >= 0)
        life = cc.max_age;
    else if (has_expires)
        life = expires - now;
    else {
        for (size_t i = 0; i < z->nvalid && life < 0; i++)
            if (z->valid[i].status == status)
                life = (int64_t)(z->valid[i].ms / 1000);
        for (size_t i = 0; i < z->nvalid && life < 0; i++)
            if (z->valid[i].status == 0)
                life = (int64_t)(z->valid[i].ms / 1000);
    }
    bool listed = false;
    for (size_t i = 0; i < z->nvalid; i++)
        listed |= z->valid[i].status == status;
    if (!status_cacheable(status) && !listed)
        return -1;
    life -= *age;
    return life > 0 ? life : -1;
}

static bool fill_write(struct pt_cache_fill *f, const void *p, size_t n)
{
    if (!f->storing || n == 0)
        return f->storing;
    if (f->written + n > f->max || pwrite(f->fd, p, n, (off_t)f->written) != (ssize_t)n) {
        /* too big for the cache, or the disk is full: this one stays out */
        close(f->fd);
        unlinkat(Z->dirfd, f->tmp, 0);
        f->fd = -1;
        f->storing = false;
        return false;
    }
    f->written += n;
    return true;
}

void pt_cache_gw_head(pt_gw *g)
{
    pt_req *r = g->r;
    struct pt_cache_fill *f = g->cache;
    const pt_cgi_resp *cr = &g->resp;
    if (r->cache_status)
        status_header(r);
    if (!f)
        return;
    Z = f->zone;
    reval_restore(r, f);
    kbuf vnames, vrec, head;
    kinit(&vnames);
    kinit(&vrec);
    kinit(&head);
    int64_t age = 0;
    bool no_stale = false;
    uint32_t swr = 0, sie = 0;
    int64_t life = fill_lifetime(r, cr, cr->status, &vnames, &age, &no_stale, &swr, &sie);
    if (life < 0 || vary_record(r, vnames.p, vnames.len, &vrec) < 0) {
        kfree(&vnames);
        kfree(&vrec);
        fill_unlock(f, true);
        f->ended = true;
        return;
    }
    ehdr *e = &f->e;
    memset(e, 0, sizeof(*e));
    memcpy(e->magic, PT_CACHE_MAGIC, 8);
    e->hdr_size = sizeof(ehdr);
    e->h0 = f->h0;
    e->h1 = f->h1;
    e->status = cr->status;
    snprintf(e->reason, sizeof(e->reason), "%s", cr->reason);
    int64_t now = (int64_t)time(NULL);
    e->stored = now - age;
    e->expires = now + life;
    e->last_modified = -1;
    e->no_stale = no_stale;
    e->swr = swr;
    e->sie = sie;
    for (size_t i = 0; i < cr->nhdrs; i++) {
        pt_str n = pt_cgi_hdr_name(cr, i), v = pt_cgi_hdr_value(cr, i);
        if (header_not_stored(n))
            continue;
        if (pt_str_ieq(n.p, n.len, "ETag") && v.len < sizeof(e->etag)) {
            memcpy(e->etag, v.p, v.len);
            e->etag_len = (uint32_t)v.len;
        } else if (pt_str_ieq(n.p, n.len, "Last-Modified")) {
            time_t t;
            if (pt_httpdate_parse(v.p, v.len, &t) == 0)
                e->last_modified = (int64_t)t;
        }
        kput(&head, n.p, n.len);
        kput(&head, ": ", 2);
        kput(&head, v.p, v.len);
        kput(&head, "\r\n", 2);
    }
    e->key_len = (uint32_t)f->key_len;
    e->head_len = (uint32_t)head.len;
    e->vnames_len = (uint32_t)vnames.len;
    e->vary_len = (uint32_t)(vnames.len + vrec.len);
    static unsigned seq;
    snprintf(f->tmp, sizeof(f->tmp), ".tmp.%d.%u", (int)getpid(), ++seq);
    f->max = Z->shm->max_bytes / 2;
    if (!head.bad && head.len <= PT_CACHE_HEAD_MAX)
        f->fd =
            openat(Z->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    f->storing = f->fd >= 0;
    if (!f->storing)
        pt_log_warn("cache: cannot create a temp file in %s: %s", Z->dir ? Z->dir : "cache_dir",
                    head.bad ? "out of memory" : strerror(errno));
    /* the entry's head now (its body_len at the end), the body follows */
    f->written = 0;
    if (fill_write(f, e, sizeof(*e)) && fill_write(f, f->key, f->key_len) &&
        fill_write(f, head.p, head.len) && fill_write(f, vnames.p, vnames.len))
        fill_write(f, vrec.p, vrec.len);
    kfree(&vnames);
    kfree(&vrec);
    kfree(&head);
    if (!f->storing) {
        fill_unlock(f, false);
        f->ended = true;
    }
}

bool pt_cache_revalidated(pt_gw *g)
{
    pt_req *r = g->r;
    struct pt_cache_fill *f = g->cache;
    const pt_cgi_resp *cr = &g->resp;
    if (!r || !f || !f->reval || f->ended || cr->status != 304)
        return false;
    Z = f->zone;
    reval_restore(r, f);
    went *en = f->reval;
    f->reval = NULL;
    f->ended = true;
    /* RFC 9111 §4.3.4: the 304's freshness replaces the stored one; when
     * it says nothing, the stored response's own lifetime starts again */
    kbuf vn;
    kinit(&vn);
    int64_t age = 0, now = (int64_t)time(NULL);
    bool no_stale = en->e.no_stale;
    uint32_t swr = en->e.swr, sie = en->e.sie;
    int64_t life = fill_lifetime(r, cr, en->e.status, &vn, &age, &no_stale, &swr, &sie);
    kfree(&vn);
    if (life < 0)
        life = PT_MAX(en->e.expires - en->e.stored, (int64_t)0);
    ehdr e = en->e;
    e.stored = now - age;
    e.expires = now + life;
    e.swr = swr;
    e.sie = sie;
    /* the file says it too (a restart's scan, the other workers' open
     * copies, which see the change and read it again) */
    char name[40];
    entry_name(f->h0, f->h1, name);
    int fd = openat(Z->dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        if (pwrite(fd, &e, sizeof(e), 0) != (ssize_t)sizeof(e))
            pt_log_warn("cache: cannot update the entry %s: %s", name, strerror(errno));
        close(fd);
    }
    ix_lock();
    cslot *s = ix_find(f->h0, f->h1);
    if (s && s->fill_id == f->id) {
        s->fill_id = 0;
        s->filler = 0;
        if (s->valid) {
            s->expires = e.expires;
            s->gen = f->id; /* every worker reads the entry again */
            s->used = ++Z->shm->clock;
        }
    }
    ix_unlock();
    CTR(revalidated);
    en->e.stored = e.stored; /* this worker's copy: Age from now */
    en->e.expires = e.expires;
    en->e.swr = swr;
    en->e.sie = sie;
    serve_entry(r, en, PT_CACHE_REVALIDATED);
    return true;
}

void pt_cache_fill_body(pt_gw *g, const void *p, size_t n)
{
    struct pt_cache_fill *f = g->cache;
    if (!f || f->ended)
        return;
    Z = f->zone;
    if (fill_write(f, p, n)) {
        f->body_len += n;
    } else {
        /* too large to store (or no room on disk): the requests waiting
         * go to the backend now, not one after another */
        fill_unlock(f, true);
        f->ended = true;
    }
}

void pt_cache_fill_end(pt_gw *g)
{
    struct pt_cache_fill *f = g->cache;
    if (!f || f->ended || !f->storing)
        return;
    Z = f->zone;
    f->ended = true;
    f->e.body_len = f->body_len;
    bool ok = (g->cl < 0 || (uint64_t)g->cl == f->body_len) &&
              pwrite(f->fd, &f->e, sizeof(f->e), 0) == (ssize_t)sizeof(f->e);
    close(f->fd);
    f->fd = -1;
    uint64_t size = f->written;
    char name[40];
    entry_name(f->h0, f->h1, name);
    ix_lock();
    cslot *s = ix_find(f->h0, f->h1);
    /* purged, or the lock was taken over meanwhile: this copy is not wanted */
    if (ok && s && s->fill_id == f->id && renameat(Z->dirfd, f->tmp, Z->dirfd, name) == 0) {
        if (s->valid)
            Z->shm->bytes -= s->size;
        s->valid = 1;
        s->size = size;
        s->expires = f->e.expires;
        s->pass_until = 0;
        s->fill_id = 0;
        s->filler = 0;
        s->gen = f->id; /* unique: the workers' open entries of older ones are stale */
        s->used = ++Z->shm->clock;
        Z->shm->bytes += size;
        CTR(stores);
        while (Z->shm->bytes > Z->shm->max_bytes && ix_evict_one(f->h0, f->h1))
            ;
    } else {
        unlinkat(Z->dirfd, f->tmp, 0);
        if (s && s->fill_id == f->id) {
            s->fill_id = 0;
            s->filler = 0;
            if (!s->valid)
                ix_remove(s);
        }
    }
    ix_unlock();
}

/* Add zone z's counters to st. */
static void zone_stats_add(zone *z, pt_cache_stats *st)
{
    Z = z;
    st->on = true;
    st->hits += __atomic_load_n(&Z->shm->hits, __ATOMIC_RELAXED);
    st->misses += __atomic_load_n(&Z->shm->misses, __ATOMIC_RELAXED);
    st->expired += __atomic_load_n(&Z->shm->expired, __ATOMIC_RELAXED);
    st->stale += __atomic_load_n(&Z->shm->stale, __ATOMIC_RELAXED);
    st->updating += __atomic_load_n(&Z->shm->updating, __ATOMIC_RELAXED);
    st->bypass += __atomic_load_n(&Z->shm->bypass, __ATOMIC_RELAXED);
    st->stores += __atomic_load_n(&Z->shm->stores, __ATOMIC_RELAXED);
    st->evictions += __atomic_load_n(&Z->shm->evictions, __ATOMIC_RELAXED);
    st->purges += __atomic_load_n(&Z->shm->purges, __ATOMIC_RELAXED);
    st->revalidated += __atomic_load_n(&Z->shm->revalidated, __ATOMIC_RELAXED);
    st->background += __atomic_load_n(&Z->shm->background, __ATOMIC_RELAXED);
    ix_lock();
    st->entries += Z->shm->nused;
    st->bytes += Z->shm->bytes;
    st->max_bytes += Z->shm->max_bytes;
    ix_unlock();
}

void pt_cache_stats_get(pt_cache_stats *st)
{
    memset(st, 0, sizeof(*st));
    /* every zone together */
    for (size_t i = 0; i < g_nzones; i++)
        if (g_zones[i].shm)
            zone_stats_add(&g_zones[i], st);
}

bool pt_cache_zone_stats(size_t i, pt_cache_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (i >= g_nzones || !g_zones[i].shm)
        return false;
    zone_stats_add(&g_zones[i], st);
    st->name = g_zones[i].name;
    return true;
}

/* ---- the worker ---------------------------------------------------------- */

/* A fresh index (the master started, or cache_entries changed) is filled
 * from the entry files already in its directory by one worker, a few
 * hundred names per 10 ms so that it keeps serving meanwhile; temp files
 * of fills whose worker is gone are removed, files that are no entry too. */
static pt_timer g_scan_timer;
static pt_worker *g_worker;

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static void scan_one(const char *name)
{
    if (strncmp(name, ".tmp.", 5) == 0) {
        long pid = strtol(name + 5, NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            unlinkat(Z->dirfd, name, 0);
        return;
    }
    uint64_t h[2] = {0, 0};
    size_t n = strlen(name);
    if (n != 32)
        return;
    for (size_t i = 0; i < n; i++) {
        int v = hexval(name[i]);
        if (v < 0)
            return;
        h[i / 16] = h[i / 16] << 4 | (uint64_t)v;
    }
    ehdr e;
    struct stat st;
    int fd = openat(Z->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    bool ok = entry_peek(fd, h[0], h[1], &e, &st);
    close(fd);
    if (!ok) {
        unlinkat(Z->dirfd, name, 0); /* damaged, or another build's */
        return;
    }
    ix_lock();
    if (!ix_find(h[0], h[1])) {
        cslot *s = ix_insert(h[0], h[1]);
        if (s) {
            s->valid = 1;
            s->size = (uint64_t)st.st_size;
            s->expires = e.expires;
            s->gen = ++Z->shm->next_id;
            s->used = 0; /* older than anything used since the start */
            Z->shm->bytes += s->size;
            while (Z->shm->bytes > Z->shm->max_bytes && ix_evict_one(h[0], h[1]))
                ;
        }
    }
    ix_unlock();
}

static void on_scan(pt_loop *l, pt_timer *t)
{
    int budget = 256;
    bool more = false;
    for (size_t i = 0; i < g_nzones; i++) {
        Z = &g_zones[i];
        struct dirent *d = NULL;
        while (Z->scan && budget > 0 && (d = readdir(Z->scan))) {
            scan_one(d->d_name);
            budget--;
        }
        if (Z->scan && !d && budget > 0) {
            closedir(Z->scan);
            Z->scan = NULL;
        }
        more |= Z->scan != NULL;
    }
    if (more)
        pt_timer_arm(l, t, pt_worker_tlist(g_worker, PT_CACHE_POLL_MS));
}

void pt_cache_worker_start(pt_worker *w)
{
    const pt_config *cfg = w->cfg;
    bool scanning = false;
    g_worker = w;
    /* this configuration's zones, by directory (the master made them) */
    g_ncfgzone = 0;
    free(g_cfgzone);
    g_cfgzone = cfg->ncache_zones ? calloc(cfg->ncache_zones, sizeof(*g_cfgzone)) : NULL;
    if (g_cfgzone)
        g_ncfgzone = cfg->ncache_zones;
    for (size_t i = 0; i < g_ncfgzone; i++)
        for (size_t j = 0; j < g_nzones; j++)
            if (g_zones[j].shm && strcmp(g_zones[j].dir, cfg->cache_zones[i].dir) == 0)
                g_cfgzone[i] = &g_zones[j];
    for (size_t j = 0; j < g_nzones; j++) {
        Z = &g_zones[j];
        if (!Z->shm || __atomic_exchange_n(&Z->shm->scanned, 1, __ATOMIC_ACQ_REL))
            continue;
        int fd = openat(Z->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0 && !(Z->scan = fdopendir(fd)))
            close(fd);
        scanning |= Z->scan != NULL;
    }
    if (scanning) {
        pt_timer_init(&g_scan_timer, on_scan, NULL);
        pt_timer_arm(&w->loop, &g_scan_timer, pt_worker_tlist(w, PT_CACHE_POLL_MS));
    }
}

void pt_cache_worker_stop(pt_worker *w)
{
    (void)w;
    pt_timer_stop(&g_scan_timer);
    for (size_t j = 0; j < g_nzones; j++)
        if (g_zones[j].scan) {
            closedir(g_zones[j].scan);
            g_zones[j].scan = NULL;
        }
    if (g_poll_init)
        pt_timer_stop(&g_poll);
    while (g_bg)
        bg_free(g_bg);
    for (size_t i = 0; i < PT_CACHE_WENT; i++) {
        went *e = g_went[i];
        g_went[i] = NULL;
        if (e) {
            e->listed = false;
            e->refs++;
            went_put(e);
        }
    }
    free(g_cfgzone);
    g_cfgzone = NULL;
    g_ncfgzone = 0;
}
