/* worker.h: a worker process: one event loop, the inherited listeners, the
 * connections, graceful and fast stop. */
#ifndef PT_WORKER_H
#define PT_WORKER_H

#include "first.h"
#include "conf.h"
#include "ev.h"
#include "listen.h"

typedef struct pt_conn pt_conn;

/* room beyond the longest request path, for an index file name */
#define PT_PATH_SLACK 256

typedef struct pt_worker {
    pt_loop loop;
    const pt_config *cfg;
    int id;
    pt_listener *ls;
    size_t nls;
    pt_io *lio;
    bool accepting; /* listeners registered */
    bool stopping;  /* graceful stop in progress */
    bool emfile_logged;
    unsigned nconns;
    pt_conn *conns; /* all live connections (doubly linked) */
    pt_conn *dead;  /* closed, freed after the event batch */
    pt_tlist t_header, t_body, t_keepalive, t_write, t_linger, t_pause, t_stop, t_stop_idle;
    pt_timer pause_timer, stop_timer;
    int sigfd;
    pt_io sigio;
    uint64_t conn_seq;
    int *acc_handles; /* access-log handle per vhost */
    char server_header[48];
    size_t in_cap;     /* input buffer size of a connection */
    size_t block_size; /* input buffer + header slots + path */
    size_t path_cap;   /* bytes of the path area, NUL excluded */
    void *pool[32];    /* free connection blocks */
    unsigned npool;
    /* an HTTP/2 stream's block: the request and its path area (no input
     * buffer, no header slots: the session holds those), pooled up to one
     * connection's worth of streams so a busy connection does not go
     * through malloc for each */
    size_t sblock_size;
    void **spool;
    unsigned nspool, spool_cap;
    /* open-file cache (NULL when off) and room to build its keys */
    struct pt_fcache *fcache;
    char *fkey;
    size_t fkey_cap;
    pt_tlist t_fcache;
    pt_timer fcache_timer;
    /* CGI (cgi.c) */
    struct pt_cgi_state *cgi;
    pt_tlist t_beat; /* the heartbeat's period: a quarter of worker_stall_timeout */
    pt_timer beat_timer;
    /* FastCGI */
    struct pt_upstream_conn_state *ups; /* upstream_conn.c */
    pt_tlist *tl_extra[64];             /* timeout lists for per-location durations */
    unsigned ntl_extra;
} pt_worker;

/* Before pt_worker_main: where the loop stores its time (pt_now_ms) after
 * every wakeup, for the master's watchdog (worker_stall_timeout). */
void pt_worker_heartbeat_at(uint64_t *beat);
/* Runs the worker until it stops; returns the process exit code. */
int pt_worker_main(const pt_config *cfg, pt_listener *ls, size_t nls, int id);
/* A connection finished (closed): bookkeeping for accept throttling and
 * graceful stop. */
void pt_worker_conn_gone(pt_worker *w);
/* The timeout list for a duration (made on first use; bounded by the
 * number of distinct durations in the configuration). */
pt_tlist *pt_worker_tlist(pt_worker *w, uint64_t ms);
/* Connection buffer blocks (worker->block_size bytes), pooled. */
void *pt_worker_block_get(pt_worker *w);
void pt_worker_block_put(pt_worker *w, void *b);
/* HTTP/2 stream blocks (worker->sblock_size bytes: PT_REQ_SIZE, then the
 * path area), pooled. */
void *pt_worker_sblock_get(pt_worker *w);
void pt_worker_sblock_put(pt_worker *w, void *b);

#endif
