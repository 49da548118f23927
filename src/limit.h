/* limit.h: per-client-address limits (limit_conn, limit_req) kept in one
 * fixed-size table in shared memory that the master maps before forking, so
 * every worker of a generation counts together; plus the pure parts (the
 * rate parser and the token-bucket step) the unit tests check alone. */
#ifndef PT_LIMIT_H
#define PT_LIMIT_H

#include "first.h"

/* The table's ways per set: an address hashes to one set and lives in one of
 * its entries, so a lookup reads a fixed handful of entries under one lock. */
#define PT_LIMIT_WAYS 16

typedef struct pt_limit_table pt_limit_table;

typedef enum pt_limit_rc {
    PT_LIMIT_OK,   /* admitted */
    PT_LIMIT_OVER, /* over the limit: 429 */
    PT_LIMIT_FULL, /* no entry free for a new address: 503 */
} pt_limit_rc;

/* A limit_conn count a request holds, to give back when it ends. */
typedef struct pt_limit_hold {
    pt_limit_table *t;
    uint32_t set, way, epoch;
} pt_limit_hold;

/* "10r/s", "600r/m" (1 to 1000000 requests) as the interval between two
 * requests in nanoseconds. 0, or -1 with errno = EINVAL / ERANGE. */
int pt_limit_parse_rate(const char *s, uint64_t *interval_ns);

/* One request against a bucket in GCRA form: *tat is the theoretical arrival
 * time of the next request (0 = fresh bucket); interval_ns * (burst + 1)
 * requests fit at once, then one per interval_ns. Admitted: true, *tat
 * advanced. Refused: false, *wait_ns = how long until one would be admitted. */
bool pt_limit_gcra(uint64_t *tat, uint64_t now_ns, uint64_t interval_ns, uint32_t burst,
                   uint64_t *wait_ns);

/* A table of at least `entries` entries (rounded up to a multiple of
 * PT_LIMIT_WAYS) in MAP_SHARED|MAP_ANONYMOUS memory, for the processes forked
 * after this. NULL with errno on failure. */
pt_limit_table *pt_limit_table_new(uint32_t entries);
void pt_limit_table_free(pt_limit_table *t);
/* The number of entries (after rounding). */
size_t pt_limit_table_entries(const pt_limit_table *t);

/* The table of the current generation: set by the master (replacing and
 * unmapping its previous one) before it forks the workers that use it. */
void pt_limit_table_set_current(pt_limit_table *t);
pt_limit_table *pt_limit_table_current(void);

/* limit_conn: take one of `max` requests at once for (zone, addr). addr is
 * 16 bytes (IPv4 as ::ffff:a.b.c.d). OK fills *h. */
pt_limit_rc pt_limit_conn_acquire(pt_limit_table *t, uint32_t zone, uint32_t max,
                                  const unsigned char addr[16], pt_limit_hold *h);
/* Give the count back (once; h->t becomes NULL). */
void pt_limit_conn_release(pt_limit_hold *h);
/* Requests held now for (zone, addr) (tests, diagnostics). */
uint32_t pt_limit_conn_count(pt_limit_table *t, uint32_t zone, const unsigned char addr[16]);

/* limit_req: one request for (zone, addr) at now_ns (CLOCK_MONOTONIC). OVER
 * sets *wait_ns. A new address that finds its set full takes the entry of
 * the limit_req state closest to expiry (that address then starts afresh);
 * FULL only when every entry of the set is a limit_conn count in use. */
pt_limit_rc pt_limit_req(pt_limit_table *t, uint32_t zone, uint64_t interval_ns, uint32_t burst,
                         const unsigned char addr[16], uint64_t now_ns, uint64_t *wait_ns);

/* A worker died holding counts: forget every limit_conn count (requests of
 * the other workers still running are then not counted; their releases are
 * ignored). Run by the master before it respawns the worker. */
void pt_limit_conn_reset(pt_limit_table *t);

/* Tests only: take the lock of (zone, addr)'s set and keep it, as a process
 * killed inside the table would. */
void pt_limit_test_lock(pt_limit_table *t, uint32_t zone, const unsigned char addr[16]);

/* CLOCK_MONOTONIC in nanoseconds (the same clock in every process). */
uint64_t pt_limit_now_ns(void);

#endif
