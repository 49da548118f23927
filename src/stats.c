/* stats.c: the shared counters. One MAP_SHARED|MAP_ANONYMOUS area made by
 * the master before its first fork and kept for its whole life, so every
 * generation of workers (reloads included) adds to the same sums. Slots are
 * handed out by the master per forked worker and taken back when it is
 * reaped (its gauges zeroed, its sums kept); backend servers are registered
 * by (backend, address) name so a reload that keeps a server keeps its sums.
 * Readers sum all slots; writers never contend. */
#include "first.h"
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "util.h"

const uint32_t pt_stats_le_ms[PT_STATS_NLE] = {5,   10,   25,   50,   100,  250,
                                               500, 1000, 2500, 5000, 10000};

typedef struct sname {
    char backend[64];
    char server[112];
    bool used;
    bool current;     /* in the configuration bound last (stored with release) */
    uint64_t last_on; /* the bind (area->binds) that last had it */
} sname;

typedef struct sslot {
    _Alignas(64) pt_stats_ctr c;
    pt_stats_srv srv[PT_STATS_SERVERS];
} sslot;

typedef struct area {
    uint64_t start_time, start_ms;
    uint64_t worker_restarts, reloads;  /* written by the master only */
    bool taken[PT_STATS_SLOTS];         /* likewise */
    uint64_t binds;                     /* pt_stats_bind calls so far (master) */
    uint64_t slot_bind[PT_STATS_SLOTS]; /* binds when the slot's worker forked */
    sname names[PT_STATS_SERVERS];
    sslot slots[PT_STATS_SLOTS];
} area;

static area *g_area;
static sslot g_private; /* before attach, without an area, or when out of slots */
static pt_stats_srv g_dummy_srv;
static sslot *g_slot = &g_private;
pt_stats_ctr *pt_stats_my = &g_private.c;

int pt_stats_init(void)
{
    if (g_area)
        return 0;
    void *p = mmap(NULL, sizeof(area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    g_area = p;
    g_area->start_time = (uint64_t)time(NULL);
    g_area->start_ms = pt_now_ms();
    return 0;
}

void pt_stats_free(void)
{
    if (g_area)
        munmap(g_area, sizeof(area));
    g_area = NULL;
    g_slot = &g_private;
    pt_stats_my = &g_private.c;
}

/* used is stored (release) after the strings are written, and loaded
 * (acquire) before they are read: a worker never compares a half-written
 * name */
static int find_name(const char *backend, const char *server)
{
    for (int i = 0; i < PT_STATS_SERVERS; i++) {
        const sname *n = &g_area->names[i];
        if (__atomic_load_n(&n->used, __ATOMIC_ACQUIRE) && strcmp(n->backend, backend) == 0 &&
            strcmp(n->server, server) == 0)
            return i;
    }
    return -1;
}

/* Name i is in no configuration now, and no live worker was forked while
 * it was in one (a worker keeps the counters it found at its start): its
 * entry may take another name. */
static bool name_free(int i)
{
    const sname *n = &g_area->names[i];
    if (!n->used)
        return true;
    if (n->current || n->last_on == g_area->binds)
        return false;
    for (int k = 0; k < PT_STATS_SLOTS; k++)
        if (g_area->taken[k] && g_area->slot_bind[k] <= n->last_on)
            return false;
    return true;
}

static void bind_one(const char *backend, const char *server)
{
    /* names too long to store are not counted rather than confused */
    if (strlen(backend) >= sizeof(g_area->names[0].backend) ||
        strlen(server) >= sizeof(g_area->names[0].server))
        return;
    int i = find_name(backend, server);
    /* a never used entry first, then one a renamed server left */
    for (int k = 0; i < 0 && k < PT_STATS_SERVERS; k++)
        if (!g_area->names[k].used)
            i = k;
    for (int k = 0; i < 0 && k < PT_STATS_SERVERS; k++)
        if (name_free(k))
            i = k;
    if (i < 0)
        return;
    sname *n = &g_area->names[i];
    if (!n->used || strcmp(n->backend, backend) != 0 || strcmp(n->server, server) != 0) {
        /* a new name starts from zero in every slot: nobody writes these
         * counters now (name_free), and the sums were the old name's */
        __atomic_store_n(&n->used, false, __ATOMIC_RELEASE);
        for (int k = 0; k < PT_STATS_SLOTS; k++)
            memset(&g_area->slots[k].srv[i], 0, sizeof(g_area->slots[k].srv[i]));
        snprintf(n->backend, sizeof(n->backend), "%s", backend);
        snprintf(n->server, sizeof(n->server), "%s", server);
        __atomic_store_n(&n->used, true, __ATOMIC_RELEASE);
    }
    n->last_on = g_area->binds;
    __atomic_store_n(&n->current, true, __ATOMIC_RELEASE);
}

void pt_stats_bind(const pt_config *cfg)
{
    if (!g_area)
        return;
    g_area->binds++;
    for (size_t b = 0; b < cfg->nbackends; b++) {
        const pt_backend *be = &cfg->backends[b];
        bind_one(be->name, "");
        for (size_t s = 0; s < be->nservers; s++)
            bind_one(be->name, be->servers[s].address);
    }
    /* the names of this configuration are marked: the others leave the
     * page now (not before: a reader never sees an empty list) */
    for (int i = 0; i < PT_STATS_SERVERS; i++)
        if (g_area->names[i].last_on != g_area->binds)
            __atomic_store_n(&g_area->names[i].current, false, __ATOMIC_RELEASE);
}

int pt_stats_slot_take(void)
{
    if (!g_area)
        return -1;
    for (int i = 0; i < PT_STATS_SLOTS; i++)
        if (!g_area->taken[i]) {
            g_area->taken[i] = true;
            g_area->slot_bind[i] = g_area->binds;
            return i;
        }
    return -1;
}

void pt_stats_slot_put(int i)
{
    if (!g_area || i < 0 || i >= PT_STATS_SLOTS)
        return;
    /* the worker is dead: what it held now is nothing */
    sslot *s = &g_area->slots[i];
    PT_STATS_SET(s->c.active, 0);
    PT_STATS_SET(s->c.reading, 0);
    PT_STATS_SET(s->c.writing, 0);
    PT_STATS_SET(s->c.idle, 0);
    PT_STATS_SET(s->c.cgi_running, 0);
    PT_STATS_SET(s->c.cgi_queued, 0);
    PT_STATS_SET(s->c.tunnels, 0);
    PT_STATS_SET(s->c.h2_conns, 0);
    PT_STATS_SET(s->c.h2_streams_open, 0);
    for (int k = 0; k < PT_STATS_SERVERS; k++) {
        PT_STATS_SET(s->srv[k].active, 0);
        PT_STATS_SET(s->srv[k].queued, 0);
        PT_STATS_SET(s->srv[k].down_until, 0);
    }
    g_area->taken[i] = false;
}

void pt_stats_worker_restarted(void)
{
    if (g_area)
        PT_STATS_ADD(g_area->worker_restarts, 1);
}

void pt_stats_reloaded(void)
{
    if (g_area)
        PT_STATS_ADD(g_area->reloads, 1);
}

void pt_stats_attach(int i)
{
    if (g_area && i >= 0 && i < PT_STATS_SLOTS)
        g_slot = &g_area->slots[i];
    else
        g_slot = &g_private;
    pt_stats_my = &g_slot->c;
}

pt_stats_srv *pt_stats_server(const char *backend, const char *server)
{
    int i = g_area && g_slot != &g_private ? find_name(backend, server ? server : "") : -1;
    return i < 0 ? &g_dummy_srv : &g_slot->srv[i];
}

#ifndef PT_NO_STATS
void pt_stats_request(int status, uint64_t bytes_in, uint64_t bytes_out)
{
    pt_stats_ctr *c = pt_stats_my;
    int k = status >= 100 && status < 600 ? status / 100 : 0;
    PT_STATS_ADD(c->requests, 1);
    PT_STATS_ADD(c->status[k], 1);
    PT_STATS_ADD(c->bytes_in, bytes_in);
    PT_STATS_ADD(c->bytes_out, bytes_out);
}
#endif

void pt_stats_latency(pt_stats_srv *s, uint64_t ms)
{
    size_t b = 0;
    while (b < PT_STATS_NLE && ms > pt_stats_le_ms[b])
        b++;
    PT_STATS_ADD(s->lat[b], 1);
    PT_STATS_ADD(s->lat_count, 1);
    PT_STATS_ADD(s->lat_sum_ms, ms);
}

static uint64_t ld(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void add_ctr(pt_stats_ctr *to, const pt_stats_ctr *from)
{
    /* the struct is all uint64_t: sum it field by field as an array */
    uint64_t *t = (uint64_t *)(void *)to;
    const uint64_t *f = (const uint64_t *)(const void *)from;
    for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
        t[i] += ld(&f[i]);
}

static void add_srv(pt_stats_snap_srv *to, const pt_stats_srv *from, uint64_t now)
{
    to->sum.requests += ld(&from->requests);
    to->sum.failures += ld(&from->failures);
    to->sum.active += ld(&from->active);
    to->sum.queued += ld(&from->queued);
    to->sum.lat_count += ld(&from->lat_count);
    to->sum.lat_sum_ms += ld(&from->lat_sum_ms);
    for (int b = 0; b < PT_STATS_NBUCKETS; b++)
        to->sum.lat[b] += ld(&from->lat[b]);
    if (ld(&from->down_until) > now)
        to->down++;
}

int pt_stats_snapshot(pt_stats_snap *s)
{
    memset(s, 0, sizeof(*s));
    if (!g_area)
        return -1;
    uint64_t now = pt_now_ms();
    s->start_time = g_area->start_time;
    s->uptime_s = (now - g_area->start_ms) / 1000;
    s->worker_restarts = ld(&g_area->worker_restarts);
    s->reloads = ld(&g_area->reloads);
    int map[PT_STATS_SERVERS];
    for (int i = 0; i < PT_STATS_SERVERS; i++) {
        const sname *n = &g_area->names[i];
        map[i] = -1;
        if (!__atomic_load_n(&n->current, __ATOMIC_ACQUIRE) ||
            !__atomic_load_n(&n->used, __ATOMIC_ACQUIRE))
            continue;
        pt_stats_snap_srv *o = &s->srv[s->nsrv];
        snprintf(o->backend, sizeof(o->backend), "%s", n->backend);
        snprintf(o->server, sizeof(o->server), "%s", n->server);
        map[i] = (int)s->nsrv++;
    }
    for (int k = 0; k < PT_STATS_SLOTS; k++) {
        const sslot *sl = &g_area->slots[k];
        s->workers += g_area->taken[k];
        add_ctr(&s->c, &sl->c);
        for (int i = 0; i < PT_STATS_SERVERS; i++)
            if (map[i] >= 0)
                add_srv(&s->srv[map[i]], &sl->srv[i], now);
    }
    return 0;
}
