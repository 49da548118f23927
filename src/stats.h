/* stats.h: the server's counters for the status page, in one shared mapping
 * the master makes at start-up and keeps across reloads (so the sums only
 * reset at a restart). Each worker writes only its own slot (no locks, no
 * atomic read-modify-write on the hot path); a reader sums the slots. */
#ifndef PT_STATS_H
#define PT_STATS_H

#include "first.h"
#include "conf.h"

/* Worker slots: current and retiring workers together (a reload overlaps
 * two generations). A worker beyond them counts into a private slot. */
#define PT_STATS_SLOTS 128
/* Backend servers (and backends) with their own counters, all generations
 * together; more are served but not counted. */
#define PT_STATS_SERVERS 64
/* Upper bounds (ms) of the gateway response-time buckets; one more: +Inf. */
#define PT_STATS_NLE 11
#define PT_STATS_NBUCKETS (PT_STATS_NLE + 1)
extern const uint32_t pt_stats_le_ms[PT_STATS_NLE];

/* One backend server's counters in one slot (a backend's own entry uses
 * queued only). lat[] counts per bucket, not cumulated. */
typedef struct pt_stats_srv {
    uint64_t requests, failures;
    uint64_t active, queued; /* gauges */
    uint64_t down_until;     /* ms, CLOCK_MONOTONIC: this worker's passive health */
    uint64_t lat_count, lat_sum_ms, lat[PT_STATS_NBUCKETS];
} pt_stats_srv;

/* The per-worker scalar counters; gauges are marked. */
typedef struct pt_stats_ctr {
    uint64_t accepted;
    uint64_t active, reading, writing, idle; /* gauges */
    uint64_t requests, status[6];            /* status[k]: kxx, status[0]: other */
    uint64_t bytes_in, bytes_out;
    uint64_t cgi_started;
    uint64_t cgi_running, cgi_queued; /* gauges */
    uint64_t limit_conn, limit_req, limit_full;
    /* TLS handshakes finished with a new session or a resumed one, and
     * failed (garbage, an alert, a close or a timeout before the end) */
    uint64_t tls_full, tls_resumed, tls_failed;
    uint64_t tunnels; /* gauge: open tunnels (WebSocket and other Upgrades, tunnel.c) */
    uint64_t tunnels_opened;
    /* HTTP/2: connections (a gauge and a sum), their streams (a gauge and
     * a sum; each stream is also one of requests), streams the client reset */
    uint64_t h2_conns, h2_opened;
    uint64_t h2_streams_open, h2_streams, h2_resets;
} pt_stats_ctr;

/* ---- the master --------------------------------------------------------- */

/* Map the area (once, before the first fork). 0 or -1 with errno. */
int pt_stats_init(void);
/* Unmap (the master at exit). */
void pt_stats_free(void);
/* Register cfg's backends and servers by name (kept across reloads, so a
 * server that stays keeps its sums); the status page shows cfg's. */
void pt_stats_bind(const pt_config *cfg);
/* A free slot for a worker about to be forked, -1 when none. */
int pt_stats_slot_take(void);
/* The worker of slot i is gone: its gauges are zeroed, its sums stay for
 * the next worker that takes the slot. */
void pt_stats_slot_put(int i);
void pt_stats_worker_restarted(void);
void pt_stats_reloaded(void);

/* ---- a worker ----------------------------------------------------------- */

/* The forked worker writes slot i from now on (-1: a private one). */
void pt_stats_attach(int i);
/* The counters of a backend's server (server NULL: the backend's own
 * entry), in this worker's slot; a private dummy when not registered. */
pt_stats_srv *pt_stats_server(const char *backend, const char *server);

/* This process's scalar counters (a private dummy before attach). */
extern pt_stats_ctr *pt_stats_my;

/* Single writer per slot: a relaxed load and store are plain moves, and a
 * reader in another process never sees a torn 64-bit value. */
#define PT_STATS_ADD(field, n)                                                                     \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (uint64_t)(n),        \
                     __ATOMIC_RELAXED)
#define PT_STATS_SUB(field, n)                                                                     \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) - (uint64_t)(n),        \
                     __ATOMIC_RELAXED)
#define PT_STATS_SET(field, v) __atomic_store_n(&(field), (uint64_t)(v), __ATOMIC_RELAXED)

/* A build without the counting (CPPFLAGS=-DPT_NO_STATS), only to measure
 * what it costs (bench/status-cost.py): the page then shows zeros. */
#ifdef PT_NO_STATS
#undef PT_STATS_ADD
#undef PT_STATS_SUB
#undef PT_STATS_SET
#define PT_STATS_ADD(field, n) ((void)sizeof(field), (void)sizeof(n))
#define PT_STATS_SUB(field, n) ((void)sizeof(field), (void)sizeof(n))
#define PT_STATS_SET(field, v) ((void)sizeof(field), (void)sizeof(v))
#endif

/* A request finished (the access log's moment). */
void pt_stats_request(int status, uint64_t bytes_in, uint64_t bytes_out);
/* A gateway response took ms (request sent to the end of the response). */
void pt_stats_latency(pt_stats_srv *s, uint64_t ms);
#ifdef PT_NO_STATS
#define pt_stats_request(st, in, out) ((void)(st), (void)(in), (void)(out))
#endif

/* ---- reading ------------------------------------------------------------ */

typedef struct pt_stats_snap_srv {
    char backend[64];
    char server[112]; /* "" for the backend's own entry */
    pt_stats_srv sum; /* down_until: unused */
    uint32_t down;    /* workers that hold the server down now */
} pt_stats_snap_srv;

typedef struct pt_stats_snap {
    uint64_t start_time; /* wall clock, seconds */
    uint64_t uptime_s;
    uint64_t worker_restarts, reloads;
    uint32_t workers; /* slots in use */
    pt_stats_ctr c;
    size_t nsrv;
    pt_stats_snap_srv srv[PT_STATS_SERVERS];
} pt_stats_snap;

/* Sum every slot into *s (registered servers of the current configuration
 * only). -1 when there is no area. */
int pt_stats_snapshot(pt_stats_snap *s);

#endif
