/* limit.c: the per-address limit table. A set-associative hash table in one
 * MAP_SHARED mapping: (zone, address) hashes (keyed with a random seed, so
 * clients cannot aim at one set) to a set of PT_LIMIT_WAYS entries guarded by
 * a process-shared robust mutex; a worker that dies holding it does not stop
 * the others. limit_req entries hold a GCRA timestamp and free themselves
 * once the bucket is full again; limit_conn entries hold a count and are
 * freed when it drops to 0. Nothing is allocated per request. */
#include "first.h"
#include "limit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define NS_PER_SEC 1000000000ULL
/* zone field of an entry: zone + 1 (0 = free), this bit for a limit_conn count */
#define CONN_BIT 0x80000000u

typedef struct lentry {
    uint32_t zone;
    uint32_t conns;
    uint64_t tat; /* limit_req: theoretical arrival time (ns, CLOCK_MONOTONIC) */
    unsigned char addr[16];
} lentry;

typedef struct lset {
    _Alignas(64) pthread_mutex_t mu;
    uint32_t epoch; /* bumped by pt_limit_conn_reset: older holds are void */
    _Alignas(64) lentry e[PT_LIMIT_WAYS];
} lset;

struct pt_limit_table {
    size_t nsets;
    size_t map_len;
    uint64_t seed[2];
    lset sets[];
};

static pt_limit_table *g_current;

int pt_limit_parse_rate(const char *s, uint64_t *interval_ns)
{
    const char *slash = strchr(s, '/');
    uint64_t n, per;
    /* "<N>r/s" or "<N>r/m", like nginx's rate= */
    if (!slash || slash - s < 2 || slash[-1] != 'r' ||
        pt_parse_u64(s, (size_t)(slash - s - 1), &n) < 0 ||
        (strcmp(slash + 1, "s") != 0 && strcmp(slash + 1, "m") != 0)) {
        errno = EINVAL;
        return -1;
    }
    per = slash[1] == 's' ? NS_PER_SEC : 60 * NS_PER_SEC;
    if (n < 1 || n > 1000000) {
        errno = ERANGE;
        return -1;
    }
    *interval_ns = per / n;
    return 0;
}

bool pt_limit_gcra(uint64_t *tat, uint64_t now_ns, uint64_t interval_ns, uint32_t burst,
                   uint64_t *wait_ns)
{
    uint64_t t = *tat > now_ns ? *tat : now_ns;
    uint64_t tau = interval_ns * burst; /* at most 6e10 * 1e6: no overflow */
    /* the bucket may run burst intervals ahead of real time, not more */
    if (t - now_ns > tau) {
        *wait_ns = t - now_ns - tau;
        return false;
    }
    *tat = t + interval_ns;
    return true;
}

uint64_t pt_limit_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- the table ------------------------------------------------------------ */

pt_limit_table *pt_limit_table_new(uint32_t entries)
{
    size_t nsets = ((size_t)entries + PT_LIMIT_WAYS - 1) / PT_LIMIT_WAYS;
    size_t len = sizeof(pt_limit_table) + (nsets ? nsets : 1) * sizeof(lset);
    pthread_mutexattr_t ma;
    pt_limit_table *t;
    if (nsets == 0)
        nsets = 1;
    t = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t == MAP_FAILED)
        return NULL;
    t->nsets = nsets;
    t->map_len = len;
    if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed)) {
        /* no entropy yet (early boot): still different per start */
        t->seed[0] = pt_limit_now_ns() ^ ((uint64_t)getpid() << 32);
        t->seed[1] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
    }
    if (pthread_mutexattr_init(&ma) != 0 ||
        pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0) {
        munmap(t, len);
        errno = ENOTSUP;
        return NULL;
    }
    for (size_t i = 0; i < nsets; i++)
        pthread_mutex_init(&t->sets[i].mu, &ma);
    pthread_mutexattr_destroy(&ma);
    return t;
}

void pt_limit_table_free(pt_limit_table *t)
{
    if (t)
        munmap(t, t->map_len);
}

size_t pt_limit_table_entries(const pt_limit_table *t)
{
    return t->nsets * PT_LIMIT_WAYS;
}

void pt_limit_table_set_current(pt_limit_table *t)
{
    /* only this process's mapping goes: workers forked earlier keep theirs */
    if (g_current && g_current != t)
        pt_limit_table_free(g_current);
    g_current = t;
}

pt_limit_table *pt_limit_table_current(void)
{
    return g_current;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static lset *set_of(pt_limit_table *t, uint32_t zone, const unsigned char addr[16])
{
    uint64_t a, b;
    memcpy(&a, addr, 8);
    memcpy(&b, addr + 8, 8);
    uint64_t h = mix(t->seed[0] ^ zone);
    h = mix(h ^ a ^ t->seed[1]);
    h = mix(h ^ b);
    return &t->sets[h % t->nsets];
}

static void set_lock(lset *s)
{
    /* the previous owner died inside: an entry may be half written, which
     * at worst miscounts one address; the set stays usable */
    if (pthread_mutex_lock(&s->mu) == EOWNERDEAD)
        pthread_mutex_consistent(&s->mu);
}

static void set_unlock(lset *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* The entry for key in s, or NULL with *spare = the entry a new key may
 * take (free, expired, else the limit_req state closest to expiry; NULL when
 * every entry is a limit_conn count in use). */
static lentry *lookup(lset *s, uint32_t key, const unsigned char addr[16], uint64_t now,
                      lentry **spare)
{
    lentry *free_e = NULL, *oldest = NULL;
    for (int i = 0; i < PT_LIMIT_WAYS; i++) {
        lentry *e = &s->e[i];
        if (e->zone == key && memcmp(e->addr, addr, 16) == 0)
            return e;
        if (free_e)
            continue;
        if (e->zone == 0 || (!(e->zone & CONN_BIT) && e->tat <= now))
            free_e = e;
        else if (!(e->zone & CONN_BIT) && (!oldest || e->tat < oldest->tat))
            oldest = e;
    }
    *spare = free_e ? free_e : oldest;
    return NULL;
}

static void take(lentry *e, uint32_t key, const unsigned char addr[16])
{
    e->zone = key;
    e->conns = 0;
    e->tat = 0;
    memcpy(e->addr, addr, 16);
}

pt_limit_rc pt_limit_conn_acquire(pt_limit_table *t, uint32_t zone, uint32_t max,
                                  const unsigned char addr[16], pt_limit_hold *h)
{
    uint32_t key = (zone + 1) | CONN_BIT;
    lset *s = set_of(t, zone, addr);
    lentry *spare = NULL, *e;
    pt_limit_rc rc = PT_LIMIT_OK;
    uint64_t now = pt_limit_now_ns();
    set_lock(s);
    e = lookup(s, key, addr, now, &spare);
    if (!e && spare) {
        e = spare;
        take(e, key, addr);
    }
    if (!e)
        rc = PT_LIMIT_FULL;
    else if (e->conns >= max)
        rc = PT_LIMIT_OVER;
    else {
        e->conns++;
        h->t = t;
        h->set = (uint32_t)(s - t->sets);
        h->way = (uint32_t)(e - s->e);
        h->epoch = s->epoch;
    }
    set_unlock(s);
    return rc;
}

void pt_limit_conn_release(pt_limit_hold *h)
{
    pt_limit_table *t = h->t;
    if (!t)
        return;
    lset *s = &t->sets[h->set];
    set_lock(s);
    if (s->epoch == h->epoch) {
        lentry *e = &s->e[h->way];
        if ((e->zone & CONN_BIT) && e->conns > 0 && --e->conns == 0)
            e->zone = 0;
    }
    set_unlock(s);
    h->t = NULL;
}

uint32_t pt_limit_conn_count(pt_limit_table *t, uint32_t zone, const unsigned char addr[16])
{
    lset *s = set_of(t, zone, addr);
    lentry *spare, *e;
    uint32_t n;
    set_lock(s);
    e = lookup(s, (zone + 1) | CONN_BIT, addr, 0, &spare);
    n = e ? e->conns : 0;
    set_unlock(s);
    return n;
}

pt_limit_rc pt_limit_req(pt_limit_table *t, uint32_t zone, uint64_t interval_ns, uint32_t burst,
                         const unsigned char addr[16], uint64_t now_ns, uint64_t *wait_ns)
{
    uint32_t key = zone + 1;
    lset *s = set_of(t, zone, addr);
    lentry *spare = NULL, *e;
    pt_limit_rc rc = PT_LIMIT_OK;
    set_lock(s);
    e = lookup(s, key, addr, now_ns, &spare);
    if (!e && spare) {
        e = spare;
        take(e, key, addr);
    }
    if (!e)
        rc = PT_LIMIT_FULL;
    else if (!pt_limit_gcra(&e->tat, now_ns, interval_ns, burst, wait_ns))
        rc = PT_LIMIT_OVER;
    set_unlock(s);
    return rc;
}

void pt_limit_conn_reset(pt_limit_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nsets; i++) {
        lset *s = &t->sets[i];
        set_lock(s);
        s->epoch++;
        for (int j = 0; j < PT_LIMIT_WAYS; j++)
            if (s->e[j].zone & CONN_BIT)
                s->e[j].zone = 0;
        set_unlock(s);
    }
}

void pt_limit_test_lock(pt_limit_table *t, uint32_t zone, const unsigned char addr[16])
{
    set_lock(set_of(t, zone, addr));
}
