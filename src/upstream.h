/* upstream.h: choosing a server of a backend for the next request (smooth
 * weighted round-robin or least-connections, backup servers) and passive
 * health (max_fails within fail_timeout marks a server down). Per worker,
 * pure bookkeeping: no sockets here. */
#ifndef PT_UPSTREAM_H
#define PT_UPSTREAM_H

#include "first.h"
#include "conf.h"

typedef struct pt_up_server {
    const pt_fcgi_server *cfg;
    struct pt_stats_srv *st; /* its status counters (stats.h) */
    int64_t current;         /* smooth WRR state */
    unsigned active;         /* requests this worker has on the server now */
    unsigned cap;            /* this worker's share of max_conns; 0 = no cap */
    unsigned fails;          /* failures counted in the current window */
    uint64_t fail_start;     /* ms: first failure of the window */
    uint64_t down_until;     /* ms: 0 = up */
} pt_up_server;

typedef struct pt_upstream {
    const pt_backend *cfg;
    pt_up_server *s;
    size_t n;
} pt_upstream;

/* Per-worker state for a backend: the cap of each server is its max_conns
 * divided by the worker count, rounded up (at least 1 when max_conns > 0).
 * 0, or -1 on ENOMEM. */
int pt_upstream_init(pt_upstream *u, const pt_backend *b, unsigned nworkers);
void pt_upstream_free(pt_upstream *u);

enum { PT_UP_NONE = -1, PT_UP_FULL = -2 };
/* The server for the next request at time now (ms), skipping servers whose
 * tried[i] is set (tried may be NULL). Candidates: non-backup servers that
 * are up (down_until <= now) and not tried; if there are none, backup
 * servers on the same terms. Among candidates, those under their cap compete
 * by smooth weighted round-robin (nginx's algorithm: every candidate's
 * current += weight, pick the largest, subtract the candidates' total
 * weight from it) or least active/weight (ties: round-robin order). Returns
 * the index, PT_UP_FULL when candidates exist but all are at their cap (the
 * caller queues), PT_UP_NONE when every server is down or tried (503). A
 * server whose down_until has passed is up again (one probe request: its
 * fail count restarts). */
int pt_upstream_pick(pt_upstream *u, uint64_t now, const bool *tried);
/* Bookkeeping around a request on server i. */
void pt_upstream_acquire(pt_upstream *u, size_t i);
void pt_upstream_release(pt_upstream *u, size_t i);
/* A connect or protocol failure on server i at now: counts toward
 * max_fails within fail_timeout (a window opens at the first failure);
 * reaching max_fails marks it down until now + fail_timeout. max_fails 0
 * never marks down. Returns true when this call marked it down. A failure
 * while it is already down (a request that was in flight) is not counted. */
bool pt_upstream_fail(pt_upstream *u, size_t i, uint64_t now);
/* A request on server i got a response: the failure count resets. */
void pt_upstream_ok(pt_upstream *u, size_t i);
/* Is any server with spare capacity up right now (for the queue)? */
bool pt_upstream_has_room(const pt_upstream *u, uint64_t now);

#endif
