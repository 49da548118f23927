/* worker.c: a worker process: accepts on the inherited listeners (with
 * EPOLLEXCLUSIVE, so one worker wakes per connection), runs connections,
 * obeys the signals the master forwards. */
#include "first.h"
#include "worker.h"
#include "cache.h"
#include "fcache.h"
#include "handler.h"
#include "conn.h"
#include "h1_head.h"
#include "log.h"
#include "regex.h"
#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* what a graceful stop takes from the accept queue before letting go */
#define PT_ACCEPT_BATCH 64

static void listeners_on(pt_worker *w)
{
    if (w->accepting || w->stopping)
        return;
    for (size_t i = 0; i < w->nls; i++)
        if (pt_io_add_exclusive(&w->loop, &w->lio[i], EPOLLIN) < 0)
            pt_log_error("cannot watch listener %s: %s", w->ls[i].text, strerror(errno));
    w->accepting = true;
}

static void listeners_off(pt_worker *w)
{
    if (!w->accepting)
        return;
    for (size_t i = 0; i < w->nls; i++)
        pt_io_remove(&w->loop, &w->lio[i]);
    w->accepting = false;
}

/* Responses leave in one write, yet the tail of a file sent after its head
 * must not wait for an ACK (Nagle): TCP_NODELAY. The master sets it on the
 * listening sockets, which accepted ones inherit on Linux; this checks that
 * once per listener (sockets from systemd may lack it) instead of paying a
 * system call per connection. */
static void nodelay(pt_listener *ls, int fd)
{
    int one = 1;
    if (ls->nodelay_inherited == 0) {
        setsockopt(ls->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int v = 0;
        socklen_t vl = sizeof(v);
        ls->nodelay_inherited =
            getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v ? 1 : -1;
    }
    if (ls->nodelay_inherited < 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Up to max connections from one listener, fewer when its queue empties. */
static void accept_some(pt_loop *l, pt_io *io, int max)
{
    pt_worker *w = l->data;
    for (int i = 0; i < max; i++) {
        if (w->nconns >= w->cfg->limits.max_connections) {
            listeners_off(w);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop accepting for a moment instead of
                 * spinning on a readable listener */
                /* cached files hold descriptors: give back the unused */
                pt_fcache_trim(w->fcache);
                if (!w->emfile_logged)
                    pt_log_error("accept() failed: %s; pausing accepts", strerror(errno));
                w->emfile_logged = true;
                listeners_off(w);
                pt_timer_arm(l, &w->pause_timer, &w->t_pause);
            }
            return;
        }
        if (w->emfile_logged) {
            pt_log_info("accepting connections again");
            w->emfile_logged = false;
        }
        if (ss.ss_family != AF_UNIX)
            nodelay(&w->ls[io - w->lio], fd);
        PT_STATS_ADD(pt_stats_my->accepted, 1);
        PT_STATS_ADD(pt_stats_my->active, 1);
        size_t li = (size_t)(io - w->lio);
        pt_conn_accept(w, fd, &ss, len, w->ls[li].cfg->tls, w->ls[li].cfg->proxy_protocol,
                       (unsigned)li + 1);
        /* full: off at once, or EPOLLEXCLUSIVE may wake this worker (and
         * no other) for the next connection, which would then wait */
        if (w->nconns >= w->cfg->limits.max_connections)
            listeners_off(w);
    }
}

/* One connection per wake-up, as nginx without multi_accept: accepting
 * until EAGAIN costs a failed accept4(2) per wake-up, and under a load of
 * new connections (a TLS handshake each) a wake-up mostly finds one. The
 * listener is level-triggered: one still queued wakes the next turn of
 * the loop, after the events already due, so a burst is taken at one
 * connection per turn without starving the connections being served. */
static void on_accept(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)events;
    accept_some(l, io, 1);
}

static void on_pause_end(pt_loop *l, pt_timer *t)
{
    (void)t;
    pt_worker *w = l->data;
    /* emfile_logged stays set until an accept works again: one line per
     * episode, not one per retry */
    if (w->nconns < w->cfg->limits.max_connections)
        listeners_on(w);
}

static void on_stop_timeout(pt_loop *l, pt_timer *t)
{
    (void)t;
    pt_worker *w = l->data;
    pt_log_warn("shutdown_timeout reached with %u connection(s) open; closing them", w->nconns);
    l->stop = true;
}

void pt_worker_conn_gone(pt_worker *w)
{
    w->nconns--;
    PT_STATS_SUB(pt_stats_my->active, 1);
    if (w->stopping) {
        if (w->nconns == 0)
            w->loop.stop = true;
        return;
    }
    if (!w->accepting && !pt_timer_armed(&w->pause_timer) &&
        w->nconns < w->cfg->limits.max_connections)
        listeners_on(w);
}

pt_tlist *pt_worker_tlist(pt_worker *w, uint64_t ms)
{
    for (unsigned i = 0; i < w->ntl_extra; i++)
        if (w->tl_extra[i]->duration_ms == ms)
            return w->tl_extra[i];
    if (w->ntl_extra == PT_ARRAY_LEN(w->tl_extra))
        return w->tl_extra[w->ntl_extra - 1]; /* more distinct timeouts than slots */
    pt_tlist *tl = malloc(sizeof(*tl));
    if (!tl)
        return &w->t_write;
    pt_tlist_init(&w->loop, tl, ms);
    w->tl_extra[w->ntl_extra++] = tl;
    return tl;
}

void *pt_worker_block_get(pt_worker *w)
{
    if (w->npool > 0)
        return w->pool[--w->npool];
    return malloc(w->block_size);
}

void pt_worker_block_put(pt_worker *w, void *b)
{
    if (w->npool < PT_ARRAY_LEN(w->pool))
        w->pool[w->npool++] = b;
    else
        free(b);
}

void *pt_worker_sblock_get(pt_worker *w)
{
    if (w->nspool > 0)
        return w->spool[--w->nspool];
    return malloc(w->sblock_size);
}

void pt_worker_sblock_put(pt_worker *w, void *b)
{
    if (w->nspool < w->spool_cap)
        w->spool[w->nspool++] = b;
    else
        free(b);
}

static void on_fcache_sweep(pt_loop *l, pt_timer *t)
{
    pt_worker *w = l->data;
    pt_fcache_sweep(w->fcache, l->now);
    pt_timer_arm(l, t, &w->t_fcache);
}

/* The open-file cache: each positive entry holds a descriptor, so at most a
 * quarter of the open-file limit goes to it. */
static int fcache_start(pt_worker *w)
{
    const pt_fcache_cfg *fc = &w->cfg->open_file_cache;
    uint32_t max = fc->max;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        max > rl.rlim_cur / 4) {
        max = (uint32_t)(rl.rlim_cur / 4);
        if (w->id == 0)
            pt_log_info("open_file_cache.max lowered to %u: a quarter of the open-file limit %llu",
                        max, (unsigned long long)rl.rlim_cur);
    }
    w->fcache = pt_fcache_new(max, fc->valid_ms, fc->inactive_ms, fc->content_max,
                              fc->content_max_tls, fc->content_memory, fc->errors);
    if (!w->fcache)
        return max == 0 || fc->valid_ms == 0 ? 0 : -1;
    /* a key: kind, policy, root (a path at most), the request path, an index name */
    w->fkey_cap = 8 + PATH_MAX + w->path_cap + 256;
    if (!(w->fkey = malloc(w->fkey_cap)))
        return -1;
    /* sweep often enough that an unused entry is closed within about
     * 1.5 x inactive */
    uint64_t every = PT_MAX(PT_MIN(fc->inactive_ms / 2, (uint64_t)30000), (uint64_t)100);
    pt_tlist_init(&w->loop, &w->t_fcache, every);
    pt_timer_init(&w->fcache_timer, on_fcache_sweep, w);
    pt_timer_arm(&w->loop, &w->fcache_timer, &w->t_fcache);
    return 0;
}

/* QUIT (from the master at a reload, too): the listeners go, every
 * request that has arrived is answered and each connection closes after
 * its response ("Connection: close") or, idle, after a short grace. */
static void graceful_stop(pt_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    /* Connections the kernel completed are in the shared accept queue and
     * their clients may have sent a request: take them before letting go,
     * so that the last close of the listener at a stop resets none of
     * them, and none waits unaccepted because EPOLLEXCLUSIVE woke this
     * worker for it. stopping is set: they are answered with close. */
    if (w->accepting)
        for (size_t i = 0; i < w->nls; i++)
            if (w->lio[i].registered)
                accept_some(&w->loop, &w->lio[i], PT_ACCEPT_BATCH);
    listeners_off(w);
    for (size_t i = 0; i < w->nls; i++) {
        close(w->ls[i].fd);
        w->ls[i].fd = -1;
    }
    /* idle pooled FastCGI connections pin backend processes the next
     * generation of workers needs */
    pt_handler_worker_quiesce(w);
    pt_conn *c = w->conns;
    while (c) {
        pt_conn *n = c->next;
        pt_conn_stop(c);
        c = n;
    }
    if (w->nconns == 0)
        w->loop.stop = true;
    else
        pt_timer_arm(&w->loop, &w->stop_timer, &w->t_stop);
}

static void on_signal(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)events;
    pt_worker *w = l->data;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGQUIT:
            graceful_stop(w);
            break;
        case SIGTERM:
        case SIGINT:
            l->stop = true;
            break;
        case SIGCHLD:
            pt_handler_worker_child(w);
            break;
        case SIGUSR1:
            if (pt_log_reopen() < 0)
                pt_log_error("reopening logs failed: %s", strerror(errno));
            break;
        default:
            break;
        }
    }
}

/* The master's watchdog reads this (a page it shares with this worker
 * alone): the loop's time after every wakeup. */
static uint64_t *heartbeat;

void pt_worker_heartbeat_at(uint64_t *beat)
{
    heartbeat = beat;
}

/* Only wakes an idle worker, so that its heartbeat stays fresh. */
static void on_beat(pt_loop *l, pt_timer *t)
{
    pt_worker *w = l->data;
    pt_timer_arm(l, t, &w->t_beat);
}

static void free_dead(pt_loop *l)
{
    pt_worker *w = l->data;
    if (heartbeat)
        __atomic_store_n(heartbeat, l->now, __ATOMIC_RELAXED);
    while (w->dead) {
        pt_conn *c = w->dead;
        w->dead = c->dead_next;
        pt_conn_free(c);
    }
}

int pt_worker_main(const pt_config *cfg, pt_listener *ls, size_t nls, int id)
{
    static pt_worker wk;
    pt_worker *w = &wk;
    memset(w, 0, sizeof(*w));
    char role[32];
    snprintf(role, sizeof(role), "worker %d", id);
    pt_log_set_role(role);
    /* do not outlive the master */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* a program's orphans (a double fork, a setsid daemon) become ours,
     * not init's: cgi.c finds and kills those of a timed-out program, and
     * reaps them all */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    w->cfg = cfg;
    w->id = id;
    w->ls = ls;
    w->nls = nls;
    snprintf(w->server_header, sizeof(w->server_header), "%s%s", "portico",
             cfg->server_tokens ? "/" PACKAGE_VERSION : "");
    pt_h1_global_init(cfg->limits.header_buffer);
    pt_regex_set_limits(cfg->regex_match_limit, cfg->regex_depth_limit);
    /* room beyond a maximal head, so body bytes can always be read; header
     * slots start 16-byte aligned */
    w->in_cap =
        (cfg->limits.header_buffer + PT_MAX(cfg->limits.max_pipelined, 1024u) + 15) & ~(size_t)15;
    w->block_size = PT_REQ_SIZE + w->in_cap + sizeof(pt_header) * cfg->limits.max_headers +
                    cfg->limits.header_buffer + 1 + PT_PATH_SLACK;
    w->path_cap = cfg->limits.header_buffer + PT_PATH_SLACK;
    w->sblock_size = PT_REQ_SIZE + w->path_cap + 1;
    w->spool_cap = PT_MIN(cfg->http2_max_streams, 1024u);
    w->spool = calloc(w->spool_cap, sizeof(*w->spool));
    if (!w->spool)
        w->spool_cap = 0; /* every stream block from malloc, then */

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->sigfd < 0 || pt_loop_init(&w->loop) < 0) {
        pt_log_error("worker start-up failed: %s", strerror(errno));
        return 1;
    }
    w->loop.data = w;
    w->loop.after_events = free_dead;
    const pt_limits *lim = &cfg->limits;
    pt_tlist_init(&w->loop, &w->t_header, lim->header_timeout_ms);
    pt_tlist_init(&w->loop, &w->t_body, lim->body_timeout_ms);
    pt_tlist_init(&w->loop, &w->t_keepalive, lim->keepalive_timeout_ms);
    pt_tlist_init(&w->loop, &w->t_write, lim->write_timeout_ms);
    pt_tlist_init(&w->loop, &w->t_linger, 5000);
    pt_tlist_init(&w->loop, &w->t_pause, 100);
    pt_tlist_init(&w->loop, &w->t_stop, lim->shutdown_timeout_ms);
    /* idle keep-alive connections at a graceful stop: long enough for a
     * request already on its way, short enough not to hold the stop */
    pt_tlist_init(&w->loop, &w->t_stop_idle, PT_MIN(lim->keepalive_timeout_ms, (uint64_t)1000));
    pt_timer_init(&w->pause_timer, on_pause_end, w);
    pt_timer_init(&w->stop_timer, on_stop_timeout, w);
    if (heartbeat && lim->worker_stall_timeout_ms) {
        pt_tlist_init(&w->loop, &w->t_beat,
                      PT_MAX(lim->worker_stall_timeout_ms / 4, (uint64_t)100));
        pt_timer_init(&w->beat_timer, on_beat, w);
        pt_timer_arm(&w->loop, &w->beat_timer, &w->t_beat);
    }
    pt_cache_worker_start(w);

    if (pt_handler_worker_init(w) < 0 || fcache_start(w) < 0) {
        pt_log_error("out of memory");
        return 1;
    }
    w->acc_handles = calloc(cfg->nvhosts, sizeof(int));
    w->lio = calloc(nls ? nls : 1, sizeof(pt_io));
    if (!w->acc_handles || !w->lio) {
        pt_log_error("out of memory");
        return 1;
    }
    for (size_t i = 0; i < cfg->nvhosts; i++) {
        const char *al = cfg->vhosts[i].access_log;
        w->acc_handles[i] = al ? pt_access_log_handle(al) : pt_access_log_default();
    }
    pt_io_init(&w->sigio, w->sigfd, on_signal, w);
    pt_io_set(&w->loop, &w->sigio, EPOLLIN);
    for (size_t i = 0; i < nls; i++) {
        pt_io_init(&w->lio[i], ls[i].fd, on_accept, w);
        pt_listen_local(&ls[i]);
    }
    listeners_on(w);

    int rc = pt_loop_run(&w->loop) < 0 ? 1 : 0;

    while (w->conns)
        pt_conn_close(w->conns);
    free_dead(&w->loop);
    pt_cache_worker_stop(w);
    pt_handler_worker_stop(w);
    pt_fcache_free(w->fcache);
    free(w->fkey);
    for (unsigned i = 0; i < w->ntl_extra; i++)
        free(w->tl_extra[i]);
    pt_loop_free(&w->loop);
    close(w->sigfd);
    while (w->npool > 0)
        free(w->pool[--w->npool]);
    while (w->nspool > 0)
        free(w->spool[--w->nspool]);
    free(w->spool);
    free(w->lio);
    free(w->acc_handles);
    return rc;
}
