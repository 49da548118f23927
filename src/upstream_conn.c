/* upstream_conn.c: requests to application servers over sockets, shared
 * by the pooled transports. A request's script is resolved like CGI's
 * (gw.c), its meta-variables are built once (cgi_env.c) and framed by the
 * transport's codec, then sent with the collected body over a non-blocking
 * connection: from the worker's idle pool or a new one to the server
 * upstream.c picks. Response bytes go through the codec to the shared
 * response path (gw.c), the error stream to the error log. Failures before
 * anything irreversible fail over or retry; every cause is logged by name. */
#include "first.h"
#include "upstream_conn.h"
#include "handler.h"
#include "body.h"
#include "cgi_env.h"
#include "conn.h"
#include "resp.h"
#include "errlines.h"
#include "gw.h"
#include "log.h"
#include "stats.h"
#include "tunnel.h"
#include "upstream.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define PT_UP_READ 65536
#define PT_UP_BODY_CHUNK 32768 /* a multiple of 8: FastCGI records need no padding */
#define PT_UP_STALL_MS 100     /* the longest wait taken for a backlog stall */
#define PT_UP_SWEEP_MS 10
#define PT_UP_PEAK_MS 2000    /* how long a peak of accepted connections is remembered */
#define PT_UP_FORGET_MS 60000 /* a learned cap unused (nothing queued, no stall) this long goes */

/* waits (ms) after which an unanswered request on a new connection is
 * looked at as stuck in the backlog; one timeout list each */
static const uint32_t stall_steps[5] = {5, 10, 20, 50, 100};

typedef struct uconn uconn;
typedef struct ureq ureq;

/* Per server, what a worker learns of its capacity: the connections it
 * has answered on (accepted), open now and at most at once lately (a cap
 * learned from a stall never goes below what the server took at once), the
 * last stall, and the next step by which a learned cap grows back. */
typedef struct ulearn {
    unsigned open;
    unsigned peak;
    uint64_t peak_at;    /* ms; the peak is forgotten PT_UP_PEAK_MS after */
    uint64_t stalled_at; /* ms; last backlog stall seen, 0 never */
    unsigned step;
} ulearn;

typedef struct ubackend {
    const pt_backend *cfg;
    pt_upstream up;
    uconn **idle; /* per server: the idle pool, most recently used first */
    unsigned *nidle;
    pt_gw_queue q; /* requests waiting while every server is at max_conns */
    /* tl_response: NULL when response_timeout is 0 */
    pt_tlist *tl_connect, *tl_send, *tl_read, *tl_idle, *tl_queue, *tl_tunnel, *tl_response;
    bool *probed;      /* per server: the codec's probe asked */
    unsigned *waiting; /* per server, shared by all workers (see below) */
    unsigned *mine;    /* per server, this worker's part of waiting */
    uint32_t *rt8;     /* per server: moving average of the answer time, ms * 8 */
    /* per server: this worker's share of max_conns, or of what the server
     * told (FCGI_GET_VALUES) if lower; 0: none */
    unsigned *cap_cfg;
    ulearn *learn;    /* per server */
    bool own_waiting; /* waiting is private (no shared map) */
} ubackend;

struct pt_upstream_conn_state {
    ubackend *b;
    size_t nb;
    uconn *all;                      /* every open backend connection */
    const pt_upstream_codec *prober; /* a codec that started probes (stopped at exit) */
    pt_timer sweep;                  /* idle pools checked against the waiting counters */
    pt_io notify;                    /* g_notify: a count went up somewhere */
    pt_timer grow;                   /* learned connection caps creep back up */
    pt_tlist tl_grow;
    pt_tlist tl_sweep;
    pt_tlist tl_stall[5]; /* one per stall_steps entry */
    unsigned nidle;       /* idle connections of this worker, all backends */
};

/* A backend process (a PHP-FPM child, a libfcgi app) stays bound to a kept
 * connection while it sits idle in a pool, so requests on new connections
 * can wait in the listen backlog behind idle connections (nothing tells a
 * Unix-socket client it was not accepted). Every worker counts, in memory
 * the master maps before forking, its requests sent on a new connection
 * that have had no answer for a while (4 times the server's usual answer
 * time, 5 to 100 ms); while a server's count is not zero no worker keeps
 * an idle connection to it (a sweep every PT_UP_SWEEP_MS closes them).
 * Backends that answer in time never trip it, so their pooled connections
 * stay; a max_conns at the backend's process count avoids it altogether.
 * A count going up is told to every worker through an eventfd made with the
 * map (g_notify, edge-triggered in each worker's epoll): idle pools are
 * swept when that happens, not every PT_UP_SWEEP_MS while they hold
 * connections (100 wake-ups a second of an otherwise idle worker; the timed
 * sweep stays only where the eventfd could not be made).
 * Each worker also keeps its own part in a row of its own (by worker id):
 * when a worker dies holding counts (SIGKILL, a crash), the master takes
 * its row off the sums, or pooling to that server would stop for good. */
static unsigned *g_waiting; /* g_nwaiting sums, then one row per worker */
static size_t g_nwaiting, g_nrows;
static int g_notify = -1;

enum { FC_CONNECTING, FC_BUSY, FC_IDLE };

struct uconn {
    pt_worker *w;
    ubackend *b;
    size_t si;
    int fd;
    int state;
    pt_io io;
    pt_timer timer;
    ureq *r;                        /* the request on it (CONNECTING, BUSY) */
    const pt_upstream_codec *codec; /* the protocol it speaks */
    bool answered;                  /* the backend has answered on it (it was accepted) */
    uconn *inext, *iprev;           /* idle pool */
    uconn *anext, *aprev;           /* all connections */
};

struct ureq {
    pt_gw gw; /* first: the response side (gw.c) */
    pt_worker *w;
    ubackend *b;
    const pt_upstream_codec *codec;
    uconn *fc;
    int si;      /* server in use (acquired), -1 none */
    bool *tried; /* per server; tried_few when there are few (no malloc) */
    bool tried_few[8];
    bool attempted;  /* a server was tried: 502 rather than 503 when none is left */
    bool overloaded; /* a server's backlog was full: 503 when none is left */
    char *out;       /* the codec's request head (meta-variables), kept for a retry */
    size_t out_len, out_off;
    uint64_t in_off; /* body bytes sent */
    char *chunk;     /* the body chunk (with its frame header) being sent */
    size_t chunk_len, chunk_off;
    bool stdin_end_sent, sent_all;
    bool out_has_end; /* no body: out ends with the codec's end frame */
    bool got_bytes, reused, retried, ended;
    /* request_buffering = false: the body is sent as the client's bytes
     * arrive (chunked_up: re-framed chunked, HTTP; else in the codec's
     * frames); once one went out the request is never retried (it could
     * not be sent again) */
    bool streaming, chunked_up, body_started;
    bool waiting;    /* counted in b->waiting[si] */
    bool head_timed; /* the read timer runs for the whole header block */
    uint64_t t_sent; /* when the request went out (answer time) */
    pt_timer stall;  /* a new connection's request unanswered for a while */
    pt_timer whole;  /* response_timeout: the whole exchange */
    bool starting;   /* inside pt_upstream_conn_start: errors are plain rejects */
    bool detached;   /* the connection let go: free when not busy and off fc */
    int busy;        /* callbacks on the stack */
    int where_si;    /* the server a log line names (-1: the backend only) */
    /* the log context: the client's address and the request's method and
     * target as they came (ctx_raw), made "addr:port" and an escaped
     * request line by the first log line (ctx_text), not per request */
    bool ctx_ready;
    uint8_t ctx_mlen, ctx_major, ctx_minor;
    uint16_t ctx_tlen, ctx_port;
    bool ctx_cut;
    /* from here on not zeroed at the start (pt_upstream_conn_start) */
    char client[64];
    char reqline[320];
    pt_errlines err;   /* its line[] is not zeroed: len says what is there */
    max_align_t dec[]; /* the codec's decoder state (codec->dec_size bytes) */
};

static void gw_drain(pt_gw *gw);
static void gw_detach(pt_gw *gw);
static void gw_abort(pt_gw *gw);
static const pt_gw_ops up_ops = {gw_drain, gw_detach, gw_abort};

static void on_conn_io(pt_loop *l, pt_io *io, uint32_t ev);
static void on_conn_timer(pt_loop *l, pt_timer *t);
static void try_server(ureq *r);
static void req_enter(ureq *r);
static void req_leave(ureq *r);
static void start_send(ureq *r);
static void do_send(ureq *r);
static void sweep(struct pt_upstream_conn_state *st);

/* ---- logging ------------------------------------------------------------ */

static void ctx_text(ureq *r);

static void req_log(ureq *r, int level, const char *fmt, ...) PT_PRINTF(3, 4);
static void req_log(ureq *r, int level, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* "fastcgi php (unix:/run/php.sock)": made when a line is written, not
     * per request (codec, backend and server outlive r) */
    const pt_backend *bc = r->b->cfg;
    ctx_text(r);
    if (r->where_si >= 0)
        pt_log(level, "%s %s (%s): %s, client: %s, request: \"%s\"", r->codec->name, bc->name,
               bc->servers[r->where_si].address, msg, r->client, r->reqline);
    else
        pt_log(level, "%s %s: %s, client: %s, request: \"%s\"", r->codec->name, bc->name, msg,
               r->client, r->reqline);
}

static void emit_err(void *ctx, const char *text, unsigned dropped)
{
    ureq *r = ctx;
    if (text)
        req_log(r, PT_LOG_WARN, "stderr: %s", text);
    else
        req_log(r, PT_LOG_WARN, "%u stderr lines dropped (rate limit)", dropped);
}

/* Appends s[0, k) to out at its length at (cap bytes, NUL kept, cut to
 * fit); the new length: the log context of every request, made without
 * printf (it was a tenth of a proxied request's instructions). */
static size_t put_at(char *out, size_t cap, size_t at, const char *s, size_t k)
{
    k = PT_MIN(k, cap - 1 - at);
    memcpy(out + at, s, k);
    out[at + k] = '\0';
    return at + k;
}

static size_t put_dec(char *out, size_t cap, size_t at, uint64_t v)
{
    char t[20];
    return put_at(out, cap, at, t, pt_u64_dec(t, v));
}

static void set_where(ureq *r, int si)
{
    r->where_si = si;
}

/* ---- backend connections ------------------------------------------------ */

static void fc_unlink_idle(uconn *fc)
{
    ubackend *b = fc->b;
    if (fc->iprev)
        fc->iprev->inext = fc->inext;
    else if (b->idle[fc->si] == fc)
        b->idle[fc->si] = fc->inext;
    if (fc->inext)
        fc->inext->iprev = fc->iprev;
    fc->inext = fc->iprev = NULL;
    b->nidle[fc->si]--;
    fc->w->ups->nidle--;
}

static void fc_close(uconn *fc)
{
    pt_worker *w = fc->w;
    if (fc->state == FC_IDLE)
        fc_unlink_idle(fc);
    if (fc->answered) {
        ulearn *a = &fc->b->learn[fc->si];
        if (a->open == a->peak) /* the peak held until now */
            a->peak_at = w->loop.now;
        a->open--;
    }
    pt_timer_stop(&fc->timer);
    /* workers never fork and the socket is close-on-exec: close() drops it
     * from epoll, no EPOLL_CTL_DEL first (one system call fewer for every
     * uwsgi and SCGI request, whose connection ends with the response) */
    pt_io_closing(&w->loop, &fc->io);
    if (fc->fd >= 0) /* -1: handed to a tunnel (tunnel_handoff) */
        close(fc->fd);
    if (fc->aprev)
        fc->aprev->anext = fc->anext;
    else
        w->ups->all = fc->anext;
    if (fc->anext)
        fc->anext->aprev = fc->aprev;
    free(fc);
}

static uconn *fc_new(ureq *r, size_t si, int fd)
{
    uconn *fc = calloc(1, sizeof(*fc));
    if (!fc)
        return NULL;
    fc->w = r->w;
    fc->b = r->b;
    fc->si = si;
    fc->fd = fd;
    fc->codec = r->codec;
    pt_io_init(&fc->io, fd, on_conn_io, fc);
    /* registered once for the connection's life, idle or busy (ev.h) */
    pt_io_edge(&fc->io);
    pt_timer_init(&fc->timer, on_conn_timer, fc);
    fc->anext = r->w->ups->all;
    if (fc->anext)
        fc->anext->aprev = fc;
    r->w->ups->all = fc;
    return fc;
}

/* Put a connection whose request ended cleanly back into the pool. */
static void fc_idle(uconn *fc)
{
    ubackend *b = fc->b;
    if (!b->cfg->keepalive || b->nidle[fc->si] >= b->cfg->keepalive_max || fc->w->stopping ||
        __atomic_load_n(&b->waiting[fc->si], __ATOMIC_RELAXED) > 0) {
        fc_close(fc);
        return;
    }
    fc->r = NULL;
    fc->state = FC_IDLE;
    fc->iprev = NULL;
    fc->inext = b->idle[fc->si];
    if (fc->inext)
        fc->inext->iprev = fc;
    b->idle[fc->si] = fc;
    b->nidle[fc->si]++;
    struct pt_upstream_conn_state *st = fc->w->ups;
    if (st->nidle++ == 0 && !st->notify.registered)
        pt_timer_arm(&fc->w->loop, &st->sweep, &st->tl_sweep);
    /* watched for the backend closing it (PHP-FPM pm.max_requests,
     * request_terminate_timeout...) */
    pt_io_set(&fc->w->loop, &fc->io, EPOLLIN | EPOLLRDHUP);
    pt_timer_arm(&fc->w->loop, &fc->timer, b->tl_idle);
}

static void kick_queue(ubackend *b, pt_worker *w)
{
    /* bounded: a request that finds no room goes back to the tail */
    for (unsigned n = b->q.len; n > 0 && b->q.head; n--) {
        if (!pt_upstream_has_room(&b->up, w->loop.now))
            return;
        pt_req *r = pt_gw_queue_pop(&b->q);
        ureq *ur = (ureq *)r->gw;
        if (ur) {
            /* the request waited whole (params built): only a server is missing */
            req_enter(ur);
            try_server(ur);
            req_leave(ur);
        }
        pt_resp_kick(r);
    }
}

static void wait_mark(ureq *r, bool on)
{
    if (!on)
        pt_timer_stop(&r->stall);
    if (r->waiting == on || r->si < 0)
        return;
    r->waiting = on;
    /* the row first when counting up, last when counting down: the
     * master's clean-up never takes off more than the sum holds */
    if (on) {
        __atomic_add_fetch(&r->b->mine[r->si], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&r->b->waiting[r->si], 1, __ATOMIC_RELAXED);
        struct pt_upstream_conn_state *st = r->w->ups;
        if (st->notify.registered) {
            /* every worker (this one too) sweeps its idle pools */
            uint64_t one = 1;
            if (write(st->notify.fd, &one, sizeof(one)) < 0)
                sweep(st); /* cannot be: the count would be full */
        }
    } else {
        __atomic_sub_fetch(&r->b->waiting[r->si], 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&r->b->mine[r->si], 1, __ATOMIC_RELAXED);
    }
}

/* Server si is held by a cap learned from a stall, below what it was
 * told (max_conns, FCGI_MAX_CONNS). */
static bool learned(const ubackend *b, size_t si)
{
    return b->learn[si].stalled_at && b->up.s[si].cap != b->cap_cfg[si];
}

/* A cap learned for r's server: lowered to cap (never raised by this),
 * the stall dated now and the growth back started again from one. True
 * when it was lowered. */
static bool hold_at(ureq *r, unsigned cap)
{
    ubackend *b = r->b;
    size_t si = (size_t)r->si;
    pt_up_server *s = &b->up.s[si];
    b->learn[si].stalled_at = r->w->loop.now ? r->w->loop.now : 1;
    b->learn[si].step = 1;
    if (s->cap != 0 && s->cap <= cap)
        return false;
    s->cap = cap;
    struct pt_upstream_conn_state *st = r->w->ups;
    if (!pt_timer_armed(&st->grow))
        pt_timer_arm(&r->w->loop, &st->grow, &st->tl_grow);
    return true;
}

/* A request on a new connection got no answer while the worker's other
 * connections to the server did: the server takes about that many
 * connections from this worker. Until it is known to take more, requests
 * beyond that wait in the worker's queue (FIFO) instead of in the
 * backend's listen backlog behind idle connections. The cap grows back
 * while requests are queued and no stall is seen: by one after a second,
 * then by twice the last step every second (1, 2, 4, ...: a server whose
 * processes are all taken stalls again one connection over, as with an
 * increase by one; one that was only slow to accept, an event-driven
 * server whose CPU was busy, is not held at a few connections for
 * minutes), up to the configured max_conns share. The same evidence comes
 * from a server that is slow to accept for any reason, so a learned cap
 * never turns a request away (held_by_learned_cap). */
static void learn_cap(ureq *r)
{
    ubackend *b = r->b;
    size_t si = (size_t)r->si;
    uint64_t now = r->w->loop.now;
    ulearn *a = &b->learn[si];
    unsigned answered = a->open;
    if (answered == 0)
        return; /* nothing answers: a slow backend, not a full one */
    /* connections closed since (an idle pool swept for this very stall)
     * freed what they held: the server took the recent peak at once */
    unsigned cap = now - a->peak_at <= PT_UP_PEAK_MS ? PT_MAX(a->peak, answered) : answered;
    if (!hold_at(r, cap))
        return;
    char seen[48] = "";
    if (cap > answered)
        snprintf(seen, sizeof(seen), " (%u at once lately)", cap);
    pt_log_info("%s %s (%s): a request waited on a new connection while %u others were "
                "served%s: at most %u connections from this worker for now (max_conns sets it)",
                r->codec->name, b->cfg->name, b->cfg->servers[si].address, answered, seen, cap);
}

/* The server answered on one more of this worker's connections: it
 * accepted it. */
static void accepted(ureq *r, uconn *fc)
{
    uint64_t now = r->w->loop.now;
    ulearn *a = &r->b->learn[fc->si];
    a->open++;
    if (a->open >= a->peak || now - a->peak_at > PT_UP_PEAK_MS) {
        a->peak = a->open;
        a->peak_at = now;
    }
}

static void on_grow(pt_loop *l, pt_timer *t)
{
    struct pt_upstream_conn_state *st = t->data;
    bool again = false;
    for (size_t i = 0; i < st->nb; i++) {
        ubackend *b = &st->b[i];
        for (size_t si = 0; si < b->cfg->nservers; si++) {
            pt_up_server *s = &b->up.s[si];
            if (!learned(b, si))
                continue;
            ulearn *a = &b->learn[si];
            again = true;
            if (!b->q.head) {
                /* a guess from a minute ago says little of the next burst */
                if (l->now - a->stalled_at >= PT_UP_FORGET_MS) {
                    s->cap = b->cap_cfg[si];
                    a->stalled_at = 0;
                    pt_log_debug("%s (%s): the learned cap is forgotten", b->cfg->name,
                                 b->cfg->servers[si].address);
                }
                continue;
            }
            if (l->now - a->stalled_at < 1000)
                continue;
            unsigned top = b->cap_cfg[si] ? b->cap_cfg[si] : 100000;
            unsigned step = a->step ? a->step : 1;
            s->cap = s->cap < top && step < top - s->cap ? s->cap + step : top;
            a->step = step < top ? step * 2 : top;
            if (s->cap == top) {
                s->cap = b->cap_cfg[si];
                a->stalled_at = 0;
            }
            pt_log_debug("%s (%s): the learned cap grows to %u", b->cfg->name,
                         b->cfg->servers[si].address, s->cap);
            kick_queue(b, l->data);
        }
    }
    if (again)
        pt_timer_arm(l, t, &st->tl_grow);
}

static void on_stall(pt_loop *l, pt_timer *t)
{
    (void)l;
    ureq *r = t->data;
    if (r->fc && r->b->cfg->servers[r->si].addr.ss_family == AF_UNIX) {
        /* on a Unix socket the kernel tells: bytes we sent that nobody has
         * read yet mean no process accepted the connection; a read request
         * is merely slow */
        int unread = 0;
        if (ioctl(r->fc->fd, SIOCOUTQ, &unread) == 0 && unread == 0)
            return;
    }
    wait_mark(r, true);
    learn_cap(r);
}

/* Idle connections to a server some request waits for are closed. */
static void sweep(struct pt_upstream_conn_state *st)
{
    for (size_t i = 0; i < st->nb; i++) {
        ubackend *b = &st->b[i];
        for (size_t si = 0; si < b->cfg->nservers; si++)
            if (b->idle[si] && __atomic_load_n(&b->waiting[si], __ATOMIC_RELAXED) > 0)
                while (b->idle[si])
                    fc_close(b->idle[si]);
    }
}

static void on_sweep(pt_loop *l, pt_timer *t)
{
    struct pt_upstream_conn_state *st = t->data;
    sweep(st);
    if (st->nidle > 0)
        pt_timer_arm(l, t, &st->tl_sweep);
}

static void on_notify(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    /* never read: a worker reading the count to zero before another's
     * epoll_wait looked at it would hide the event from that one. Each
     * write is an edge for every worker, the count only grows (2^64
     * stalls away from full) */
    sweep(io->data);
}

/* The request lets go of its backend connection and server slot. */
static void req_drop_conn(ureq *r, bool reusable)
{
    wait_mark(r, false);
    pt_timer_stop(&r->whole);
    uconn *fc = r->fc;
    if (fc) {
        r->fc = NULL;
        fc->r = NULL;
        if (reusable)
            fc_idle(fc);
        else
            fc_close(fc);
    }
    if (r->si >= 0) {
        pt_upstream_release(&r->b->up, (size_t)r->si);
        r->si = -1;
        kick_queue(r->b, r->w);
    }
}

static void req_free(ureq *r)
{
    pt_errlines_flush(&r->err, r->w->loop.now, emit_err, r); /* a cut stream's count too */
    req_drop_conn(r, false);
    pt_gw_release(&r->gw);
    r->codec->dec_free(r->dec);
    free(r->out);
    free(r->chunk);
    if (r->tried != r->tried_few)
        free(r->tried);
    free(r);
}

static void req_enter(ureq *r)
{
    r->busy++;
}

static void req_leave(ureq *r)
{
    /* detached but still on its connection: draining (detach) */
    if (--r->busy == 0 && r->detached && !r->fc)
        req_free(r);
}

/* ---- failing ------------------------------------------------------------ */

/* The request cannot be answered by the backend: status to the client (or
 * the client connection cut when the response already began). */
static void req_fail(ureq *ur, int status, const char *why)
{
    req_drop_conn(ur, false);
    pt_req *r = ur->gw.r;
    if (!r)
        return;
    if (ur->starting) {
        /* still inside pt_upstream_conn_start: the caller's drive() sends it */
        pt_gw_unlink(&ur->gw);
        ur->detached = true;
        pt_conn_reject(r, status, why, false);
        return;
    }
    pt_gw_fail(&ur->gw, status, why);
}

/* A server failed before the request reached it (connect refused, timed
 * out, backlog full): count it and try another. */
static void server_failed(ureq *r, const char *why)
{
    req_log(r, PT_LOG_ERROR, "%s", why);
    if (r->si >= 0 && pt_upstream_fail(&r->b->up, (size_t)r->si, r->w->loop.now))
        req_log(r, PT_LOG_WARN, "server marked down for %llu ms",
                (unsigned long long)r->b->cfg->fail_timeout_ms);
    req_drop_conn(r, false);
    try_server(r);
}

/* A Unix socket's listen backlog is full: the server is overloaded, not
 * down, and it is not counted toward max_fails (one full backlog took the
 * only server out for fail_timeout, every request meanwhile a 503: 143,964
 * of 144,227 with 256 clients against 4 uWSGI processes). This worker's
 * other connections to it are what it takes now: a cap learned at that
 * many, and the request waits in the queue for one of them to end. With
 * none, another server takes it, or it is answered 503. */
static void server_full(ureq *r)
{
    size_t si = (size_t)r->si;
    unsigned others = r->b->up.s[si].active - 1; /* this request holds a slot */
    if (others > 0) {
        req_log(r, PT_LOG_WARN,
                "connect failed: backlog full (overloaded); at most %u "
                "connections from this worker for now",
                others);
        hold_at(r, others);
        r->tried[si] = false; /* back to it when a connection ends */
    } else {
        req_log(r, PT_LOG_WARN, "connect failed: backlog full (overloaded)");
        r->overloaded = true;
    }
    req_drop_conn(r, false);
    try_server(r);
}

/* The exchange broke after the request went out. */
static void exchange_failed(ureq *r, int status, const char *why, bool count)
{
    req_log(r, status >= 500 && status != 503 ? PT_LOG_ERROR : PT_LOG_WARN, "%s", why);
    if (count && r->si >= 0)
        pt_upstream_fail(&r->b->up, (size_t)r->si, r->w->loop.now);
    req_fail(r, status, why);
}

/* ---- connecting --------------------------------------------------------- */

static void connect_new(ureq *r, size_t si)
{
    const pt_fcgi_server *sv = &r->b->cfg->servers[si];
    int fd = socket(sv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    char why[256];
    if (fd < 0) {
        snprintf(why, sizeof(why), "socket failed: %s", strerror(errno));
        server_failed(r, why);
        return;
    }
    uconn *fc = fc_new(r, si, fd);
    if (!fc) {
        close(fd);
        server_failed(r, "out of memory");
        return;
    }
    fc->r = r;
    r->fc = fc;
    r->reused = false;
    if (connect(fd, (const struct sockaddr *)&sv->addr, sv->addrlen) == 0) {
        fc->state = FC_BUSY;
        start_send(r);
        return;
    }
    if (errno == EINPROGRESS) {
        fc->state = FC_CONNECTING;
        pt_io_set(&r->w->loop, &fc->io, EPOLLOUT);
        pt_timer_arm(&r->w->loop, &fc->timer, r->b->tl_connect);
        return;
    }
    if (errno == EAGAIN && sv->addr.ss_family == AF_UNIX) {
        server_full(r);
        return;
    }
    snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
    server_failed(r, why);
}

/* A server is held below what it was told (max_conns, FCGI_MAX_CONNS) by a
 * cap learned from a stall: a guess, which turns nobody away. Requests it
 * holds back wait however many they are, as they would in the server's
 * listen backlog without it, queue_timeout still bounding each wait. Their
 * number is bounded as that of requests in flight without any cap
 * (max_conns = 0): by the client connections and their HTTP/2 streams; a
 * queued one holds its request block and head, not a socket. */
static bool held_by_learned_cap(const ubackend *b)
{
    for (size_t si = 0; si < b->cfg->nservers; si++)
        if (learned(b, si))
            return true;
    return false;
}

/* Choose a server and get a connection to it, or answer. */
static void try_server(ureq *ur)
{
    pt_worker *w = ur->w;
    ubackend *b = ur->b;
    for (;;) {
        int i = pt_upstream_pick(&b->up, w->loop.now, ur->tried);
        if (i == PT_UP_NONE) {
            set_where(ur, -1);
            if (ur->overloaded) {
                req_fail(ur, 503, "backend overloaded");
            } else if (ur->attempted) {
                req_fail(ur, 502, "no server could be reached");
            } else {
                req_log(ur, PT_LOG_ERROR, "no live server");
                req_fail(ur, 503, "no live server");
            }
            return;
        }
        if (i == PT_UP_FULL) {
            /* the remaining servers are busy: wait in the queue, from
             * scratch (nothing was sent anywhere) */
            pt_req *r = ur->gw.r;
            if (!r)
                return;
            if (b->q.len >= b->cfg->queue && !held_by_learned_cap(b)) {
                set_where(ur, -1);
                req_log(ur, PT_LOG_WARN, "every server at max_conns and the queue is full");
                req_fail(ur, 503, "backend busy");
                return;
            }
            /* the request stays attached to its connection: kick_queue
             * resumes it here */
            pt_gw_queue_push(&b->q, r, b->tl_queue,
                             "no backend connection free within "
                             "queue_timeout");
            if (!ur->starting)
                pt_resp_kick(r);
            return;
        }
        if (ur->codec->probe && b->cfg->get_values && !b->probed[i]) {
            /* the answer caps later requests */
            b->probed[i] = true;
            w->ups->prober = ur->codec;
            ur->codec->probe(w, b->cfg, (size_t)i, b->tl_read, &b->up.s[i].cap, &b->cap_cfg[i]);
        }
        ur->tried[i] = true;
        ur->attempted = true;
        ur->si = i;
        ur->retried = false;
        pt_upstream_acquire(&b->up, (size_t)i);
        set_where(ur, i);
        uconn *fc = b->idle[i];
        /* a backend may serve locations of several protocols */
        if (fc && fc->codec == ur->codec) {
            fc_unlink_idle(fc);
            pt_timer_stop(&fc->timer);
            fc->state = FC_BUSY;
            fc->r = ur;
            ur->fc = fc;
            ur->reused = true;
            start_send(ur);
            return;
        }
        connect_new(ur, (size_t)i);
        return;
    }
}

/* ---- sending ------------------------------------------------------------ */

/* A streamed body has nothing to send until the client sends more. */
static bool stream_waiting(const ureq *r)
{
    return r->streaming && !r->stdin_end_sent && r->out_off >= r->out_len &&
           r->chunk_off >= r->chunk_len && r->gw.r && r->in_off >= r->gw.r->body.len &&
           !r->gw.r->body_done;
}

static void io_update(ureq *r)
{
    uconn *fc = r->fc;
    if (!fc || fc->state != FC_BUSY)
        return;
    uint32_t ev = 0;
    if (!r->sent_all && !stream_waiting(r))
        ev |= EPOLLOUT;
    if (!r->ended && !pt_gw_backlogged(&r->gw))
        ev |= EPOLLIN | EPOLLRDHUP; /* as in the idle pool: no epoll_ctl between */
    pt_io_set(&r->w->loop, &fc->io, ev);
    if (ev & EPOLLIN) {
        /* read_timeout is between reads, except for the header block: an
         * upstream sending a byte a second (or 1xx after 1xx) would keep
         * re-arming it, so the head must come whole within one period */
        bool head = r->sent_all && !r->gw.headers_done && !r->codec->err_stream;
        if (!(head && r->head_timed && pt_timer_armed(&fc->timer)))
            pt_timer_arm(&r->w->loop, &fc->timer, r->sent_all ? r->b->tl_read : r->b->tl_send);
        r->head_timed = head;
    } else if (ev & EPOLLOUT)
        pt_timer_arm(&r->w->loop, &fc->timer, r->b->tl_send);
    else
        pt_timer_stop(&fc->timer); /* the client is slow: its write timeout runs */
}

static void start_send(ureq *r)
{
    r->out_off = 0;
    r->in_off = 0;
    r->chunk_len = r->chunk_off = 0;
    r->stdin_end_sent = r->out_has_end;
    r->sent_all = false;
    r->got_bytes = r->ended = false;
    r->head_timed = false;
    r->codec->dec_free(r->dec);
    memset(r->dec, 0, r->codec->dec_size);
    r->codec->dec_init(r->dec);
    if (r->codec->bind && r->gw.r)
        r->codec->bind(r->dec, r->gw.r, r->b->cfg, (size_t)r->si);
    r->fc->state = FC_BUSY;
    wait_mark(r, false);
    r->t_sent = r->w->loop.now;
    if (r->b->tl_response)
        pt_timer_arm(&r->w->loop, &r->whole, r->b->tl_response);
    if (!r->reused) {
        uint32_t want = r->b->rt8[r->si] / 2 + 5; /* 4 x average + 5 ms */
        size_t k = 0;
        while (k < 4 && stall_steps[k] < want)
            k++;
        pt_timer_arm(&r->w->loop, &r->stall, &r->w->ups->tl_stall[k]);
    }
    do_send(r); /* optimistic: a fresh or idle socket has room */
}

/* A pooled connection the backend had closed (PHP-FPM recycling a child)
 * failed before any answer: once more, on a new connection to the same
 * server. False when that was done already or the connection was new. */
static bool retry_fresh(ureq *r, const char *why)
{
    if (!r->reused || r->retried || r->body_started)
        return false;
    req_log(r, PT_LOG_DEBUG, "reused connection failed (%s); retrying on a new one", why);
    uconn *old = r->fc;
    r->fc = NULL;
    old->r = NULL;
    fc_close(old);
    r->retried = true;
    connect_new(r, (size_t)r->si);
    return true;
}

/* 0: all sent or would block; -1: the send failed (errno). */
static int send_some(uconn *fc, const char *p, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fc->fd, p + *off, len - *off, MSG_NOSIGNAL);
        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            pt_io_drained(&fc->io, EPOLLOUT);
            return 0;
        }
        return -1;
    }
    return 0;
}

/* The next body chunk into r->chunk behind the codec's frame header, then
 * the codec's end frame if it has one (FastCGI §5.3: an empty STDIN). */
static int next_chunk(ureq *r)
{
    const pt_body *body = &r->gw.r->body;
    size_t hl = r->codec->frame_len;
    if (!r->chunk && !(r->chunk = malloc(hl + PT_UP_BODY_CHUNK)))
        return -1;
    size_t n = 0;
    if (r->in_off < body->len) {
        size_t want = (size_t)PT_MIN(body->len - r->in_off, (uint64_t)PT_UP_BODY_CHUNK);
        ssize_t got = pt_body_read(body, r->in_off, r->chunk + hl, want);
        if (got <= 0)
            return -1;
        n = (size_t)got;
        r->in_off += n;
        if (r->in_off == body->len && !r->codec->has_end_frame)
            r->stdin_end_sent = true;
    } else {
        r->stdin_end_sent = true;
    }
    if (hl)
        r->codec->frame(r->chunk, n);
    r->chunk_len = hl + n;
    r->chunk_off = 0;
    return 0;
}

/* The next piece of a streamed body (request_buffering = false): what the
 * client has sent so far, then the end. 0: r->chunk holds it; 1: nothing
 * until the client sends more; -1: failed. Sent bytes are dropped from the
 * connection's body store, so it holds at most the unsent window. */
static int next_stream_chunk(ureq *ur)
{
    pt_req *r = ur->gw.r;
    pt_body *body = &r->body;
    if (!ur->chunk && !(ur->chunk = malloc(PT_UP_BODY_CHUNK + 12 + ur->codec->frame_len)))
        return -1;
    ur->chunk_len = ur->chunk_off = 0;
    if (ur->in_off >= body->len && body->len > 0) {
        size_t lim = body->mem_limit;
        const char *dir = body->tmp_dir;
        pt_body_free(body);
        pt_body_init(body, lim, dir);
        ur->in_off = 0;
        pt_conn_body_room(r);
    }
    if (ur->in_off >= body->len) {
        if (!r->body_done)
            return 1;
        /* RFC 9112 §7.1: the last chunk, no trailers */
        if (ur->chunked_up) {
            memcpy(ur->chunk, "0\r\n\r\n", 5);
            ur->chunk_len = 5;
        } else if (ur->codec->has_end_frame) {
            ur->codec->frame(ur->chunk, 0); /* FastCGI §5.3: an empty STDIN */
            ur->chunk_len = ur->codec->frame_len;
        }
        ur->stdin_end_sent = true;
        return 0;
    }
    /* a fixed-width chunk-size (leading zeros are allowed, RFC 9112 §7.1),
     * or the codec's frame header (FastCGI) */
    size_t hl = ur->chunked_up ? 10 : ur->codec->frame_len;
    size_t want = (size_t)PT_MIN(body->len - ur->in_off, (uint64_t)PT_UP_BODY_CHUNK);
    ssize_t got = pt_body_read(body, ur->in_off, ur->chunk + hl, want);
    if (got <= 0)
        return -1;
    ur->in_off += (uint64_t)got;
    ur->chunk_len = hl + (size_t)got;
    if (ur->chunked_up) {
        char h[24];
        snprintf(h, sizeof(h), "%08x\r\n", (unsigned)got); /* got <= PT_UP_BODY_CHUNK */
        memcpy(ur->chunk, h, 10);
        memcpy(ur->chunk + ur->chunk_len, "\r\n", 2);
        ur->chunk_len += 2;
    } else if (hl) {
        ur->codec->frame(ur->chunk, (size_t)got);
    }
    ur->body_started = true;
    return 0;
}

static void do_send(ureq *r)
{
    uconn *fc = r->fc;
    for (;;) {
        if (r->out_off < r->out_len) {
            if (send_some(fc, r->out, r->out_len, &r->out_off) < 0)
                break;
            if (r->out_off < r->out_len) {
                io_update(r);
                return;
            }
            continue;
        }
        if (r->chunk_off < r->chunk_len) {
            if (send_some(fc, r->chunk, r->chunk_len, &r->chunk_off) < 0)
                break;
            if (r->chunk_off < r->chunk_len) {
                io_update(r);
                return;
            }
            continue;
        }
        if (r->stdin_end_sent) {
            r->sent_all = true;
            io_update(r);
            return;
        }
        int nc = !r->gw.r ? -1 : r->streaming ? next_stream_chunk(r) : next_chunk(r);
        if (nc < 0) {
            exchange_failed(r, 500, "cannot read the request body", false);
            return;
        }
        if (nc > 0) {
            io_update(r); /* the client's next bytes come first (gw_drain) */
            return;
        }
    }
    int e = errno;
    if (r->got_bytes) {
        /* the backend answered already and stopped reading (e.g. an early
         * 413): let the answer through */
        r->sent_all = true;
        io_update(r);
        return;
    }
    if (retry_fresh(r, strerror(e)))
        return;
    char why[200];
    snprintf(why, sizeof(why), "send failed: %s", strerror(e));
    exchange_failed(r, 502, why, true);
}

/* ---- receiving ---------------------------------------------------------- */

/* The codec saw the response end (ev->why: what to log when no header
 * block came first). extra: bytes followed it in the read. */
/* An end that needs no reason: every field but why's 200 bytes, which
 * on_end reads as a string only (a designated initializer cleared them
 * all for every response) */
static void end_ev(pt_upstream_ev *e)
{
    e->type = PT_UEV_END;
    e->data = NULL;
    e->len = 0;
    e->status = 0;
    e->count = e->end_after = e->head = false;
    e->why[0] = '\0';
}

static void on_end(ureq *r, const pt_upstream_ev *ev, bool extra)
{
    r->ended = true;
    pt_errlines_flush(&r->err, r->w->loop.now, emit_err, r);
    if (!r->gw.headers_done && !r->gw.nph) {
        char why[200];
        if (r->gw.resp.len == 0)
            snprintf(why, sizeof(why), "%s", ev->why);
        else
            (void)pt_gw_end(&r->gw, why, sizeof(why));
        exchange_failed(r, 502, why, true);
        return;
    }
    pt_upstream_ok(&r->b->up, (size_t)r->si);
    pt_stats_latency(r->b->up.s[r->si].st, r->w->loop.now - r->t_sent);
    /* the connection goes back to the pool before the response completes
     * (completing may free r) */
    req_drop_conn(r, !extra && r->stdin_end_sent && r->chunk_off >= r->chunk_len &&
                         r->codec->reusable && r->codec->reusable(r->dec, r->b->cfg));
    char why[200];
    (void)pt_gw_end(&r->gw, why, sizeof(why));
}

/* The server switched protocols (a 101 to an Upgrade request): its
 * connection leaves the pool for good and, with the client's, becomes a
 * tunnel (tunnel.c) that starts with the 101's head for the client and the
 * bytes that followed it (rest). r lets go of both. */
static void tunnel_handoff(ureq *ur, const char *head, size_t hlen, const char *rest, size_t rlen)
{
    pt_req *r = ur->gw.r;
    uconn *fc = ur->fc;
    ur->ended = true;
    pt_errlines_flush(&ur->err, ur->w->loop.now, emit_err, ur);
    pt_upstream_ok(&ur->b->up, (size_t)ur->si);
    pt_stats_latency(ur->b->up.s[ur->si].st, ur->w->loop.now - ur->t_sent);
    int fd = -1;
    if (r && !ur->detached) {
        fd = fc->fd;
        pt_io_remove(&ur->w->loop, &fc->io);
        fc->fd = -1;
    }
    /* the server slot is free again: a tunnel is not a request in progress
     * (max_conns counts those) */
    req_drop_conn(ur, false);
    if (fd < 0)
        return; /* nobody is left to tunnel for */
    pt_gw_unlink(&ur->gw);
    ur->detached = true; /* freed by req_leave */
    req_log(ur, PT_LOG_DEBUG, "101 Switching Protocols: tunnel");
    pt_tunnel_start(r->conn, fd, ur->b->tl_tunnel, head, hlen, rest, rlen);
}

/* A 1xx head (103 Early Hints...) goes out ahead of the final answer;
 * nothing of it is kept for the response side (cache, compression). */
static void pass_interim(ureq *ur, const pt_upstream_ev *ev)
{
    pt_req *r = ur->gw.r;
    if (!r || ur->gw.headers_done || ur->detached)
        return;
    if (pt_resp_interim(r, ev->data, ev->len) < 0)
        req_log(ur, PT_LOG_WARN, "out of memory: a %.12s not passed on", ev->data + 9);
}

/* Feed what the backend sent. Returns false when r must not be touched for
 * this read any more (failed, ended, redirected). */
static bool on_bytes(ureq *r, const char *p, size_t n)
{
    while (n > 0) {
        pt_upstream_ev ev;
        ev.end_after = false;
        ev.head = false;
        size_t used = r->codec->feed(r->dec, p, n, &ev);
        p += used;
        n -= used;
        switch (ev.type) {
        case PT_UEV_NONE:
            break;
        case PT_UEV_OUT:
            if ((ev.len || ev.head) && r->gw.r) {
                char why[200];
                int rc = pt_gw_output(&r->gw, ev.data, ev.len, why, sizeof(why));
                if (rc == PT_GW_BAD) {
                    exchange_failed(r, 502, why, true);
                    return false;
                }
                if (rc == PT_GW_GONE && !r->fc)
                    return false;
                if (rc == PT_GW_GONE)
                    break; /* detached, draining: the rest is decoded and dropped */
                if (r->codec->eof_ends && r->gw.headers_done && r->gw.cl >= 0 &&
                    r->gw.sent >= (uint64_t)r->gw.cl && n == 0) {
                    /* the declared length is complete: no need to wait for
                     * the close (the client may send its next request) */
                    pt_upstream_ev end;
                    end_ev(&end);
                    on_end(r, &end, false);
                    return false;
                }
            }
            if (ev.end_after) {
                /* the codec knows the framing (HTTP): the end came with it */
                pt_upstream_ev end;
                end_ev(&end);
                if (n > 0)
                    req_log(r, PT_LOG_WARN,
                            "%zu bytes after the end of the response: connection not reused", n);
                on_end(r, &end, n > 0);
                return false;
            }
            break;
        case PT_UEV_ERR:
            pt_errlines_feed(&r->err, r->w->loop.now, ev.data, ev.len, emit_err, r);
            break;
        case PT_UEV_END:
            on_end(r, &ev, n > 0);
            return false;
        case PT_UEV_TUNNEL:
            tunnel_handoff(r, ev.data, ev.len, p, n);
            return false;
        case PT_UEV_INTERIM:
            pass_interim(r, &ev);
            break;
        case PT_UEV_FAIL:
            r->ended = true;
            pt_errlines_flush(&r->err, r->w->loop.now, emit_err, r);
            exchange_failed(r, ev.status, ev.why, ev.count);
            return false;
        }
    }
    return true;
}

static void on_eof(ureq *r, int err)
{
    if (!r->got_bytes && retry_fresh(r, "closed by the backend"))
        return;
    char why[200];
    if (!err && r->codec->eof_ends && (!r->codec->eof_ok || r->codec->eof_ok(r->dec))) {
        /* SCGI, uwsgi: the server closing is the end of the response */
        pt_upstream_ev ev = {.type = PT_UEV_END};
        snprintf(ev.why, sizeof(ev.why), "closed the connection before the response header");
        on_end(r, &ev, false);
        return;
    }
    if (!r->gw.headers_done)
        snprintf(why, sizeof(why), "closed the connection before the response header%s%s",
                 err ? ": " : "", err ? strerror(err) : "");
    else
        snprintf(why, sizeof(why), "closed the connection before the end of the response%s%s",
                 err ? ": " : "", err ? strerror(err) : "");
    exchange_failed(r, 502, why, true);
}

static void do_recv(ureq *r)
{
    char buf[PT_UP_READ];
    uconn *fc = r->fc;
    ssize_t n = recv(fc->fd, buf, sizeof(buf), 0);
    if ((n < 0 && errno == EAGAIN) || (n > 0 && (size_t)n < sizeof(buf)))
        pt_io_drained(&fc->io, EPOLLIN); /* a new edge comes with more */
    else if (n > 0)
        pt_io_full(&fc->io);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        on_eof(r, n < 0 ? errno : 0);
        return;
    }
    if (!fc->answered) {
        fc->answered = true;
        accepted(r, fc);
    }
    if (!r->got_bytes) {
        /* answer time: a moving average over about 8 requests */
        uint64_t ms = PT_MIN(r->w->loop.now - r->t_sent, (uint64_t)10000);
        uint32_t *avg = &r->b->rt8[r->si];
        *avg = *avg - *avg / 8 + (uint32_t)ms;
    }
    r->got_bytes = true;
    wait_mark(r, false);
    bool had_head = r->gw.headers_done;
    if (!on_bytes(r, buf, (size_t)n))
        return;
    /* a drained response (X-Sendfile, a local redirect) has no client any
     * more, but bytes still coming keep its read timeout fresh */
    if (r->fc)
        io_update(r);
    /* A head that came alone (nginx upstreams write it, then sendfile the
     * body) waits for the body when buffering, as nginx's postpone_output
     * holds it: one send and one segment to the client, not two. Streamed
     * answers (X-Accel-Buffering: no) get their head at once. */
    if (!had_head && r->gw.headers_done && r->gw.sent == 0 && r->gw.buffering)
        return;
    if (r->fc && r->gw.r)
        pt_resp_kick(r->gw.r);
}

/* ---- events ------------------------------------------------------------- */

static void idle_event(uconn *fc)
{
    /* an idle connection has nothing to say: data or EOF both end it */
    char ch;
    ssize_t n = recv(fc->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN)
        pt_io_drained(&fc->io, EPOLLIN);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) /* never taken as the next request's answer (smuggling) */
        pt_log_warn("%s %s (%s): bytes on an idle connection: closed", fc->codec->name,
                    fc->b->cfg->name, fc->b->cfg->servers[fc->si].address);
    fc_close(fc);
}

static void on_conn_io(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    uconn *fc = io->data;
    if (fc->state == FC_IDLE) {
        idle_event(fc);
        return;
    }
    ureq *r = fc->r;
    if (!r) {
        fc_close(fc);
        return;
    }
    req_enter(r);
    if (fc->state == FC_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(fc->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        pt_timer_stop(&fc->timer);
        if (err) {
            char why[200];
            snprintf(why, sizeof(why), "connect failed: %s", strerror(err));
            server_failed(r, why);
        } else {
            start_send(r);
        }
        req_leave(r);
        return;
    }
    if ((ev & EPOLLOUT) && !r->sent_all)
        do_send(r);
    if (r->fc == fc && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && !r->ended)
        do_recv(r);
    req_leave(r);
}

/* response_timeout: a server answering slowly but steadily (a byte a
 * second) never meets read_timeout; this bounds the whole exchange. */
static void on_whole(pt_loop *l, pt_timer *t)
{
    (void)l;
    ureq *r = t->data;
    if (!r->fc || r->ended)
        return;
    req_enter(r);
    exchange_failed(r, 504,
                    r->gw.headers_done ? "response timed out (response_timeout) in the body"
                                       : "response timed out (response_timeout)",
                    !r->detached);
    req_leave(r);
}

static void on_conn_timer(pt_loop *l, pt_timer *t)
{
    (void)l;
    uconn *fc = t->data;
    if (fc->state == FC_IDLE) {
        fc_close(fc);
        return;
    }
    ureq *r = fc->r;
    if (!r) {
        fc_close(fc);
        return;
    }
    req_enter(r);
    if (fc->state == FC_CONNECTING)
        server_failed(r, "connect timed out");
    else if (!r->sent_all)
        exchange_failed(r, 504, "send timed out", true);
    else if (r->head_timed && !r->gw.headers_done)
        exchange_failed(r, 504, "read timed out before the whole response header", true);
    else /* a drained response's slowness is not the server's failure */
        exchange_failed(r, 504, "read timed out", !r->detached);
    req_leave(r);
}

/* ---- the connection's side ---------------------------------------------- */

static void gw_drain(pt_gw *gw)
{
    ureq *r = (ureq *)gw;
    if (r->fc && r->fc->state == FC_BUSY)
        io_update(r);
}

static void detach(pt_gw *gw, bool drain)
{
    ureq *r = (ureq *)gw;
    pt_gw_unlink(gw);
    r->detached = true;
    if (drain && gw->headers_done && r->fc && r->fc->state == FC_BUSY && r->sent_all && !r->ended) {
        /* the body is not wanted (X-Sendfile, local redirect): read it to
         * the end of the response and discard it (on_bytes), under the read
         * timeout, so the connection can be kept; r is freed when that ends */
        io_update(r);
        return;
    }
    /* a request still running on the backend (failure, client gone)
     * leaves its connection unusable */
    req_drop_conn(r, false);
    if (r->busy == 0)
        req_free(r);
}

static void gw_detach(pt_gw *gw)
{
    detach(gw, true);
}

static void gw_abort(pt_gw *gw)
{
    detach(gw, false);
}

/* ---- start -------------------------------------------------------------- */

/* The log context as it came: the client's address, the method (20 bytes
 * at most) and the target (200) raw in reqline; two copies per request. */
static void ctx_raw(ureq *ur, pt_req *r)
{
    const char *ip = pt_conn_req_ip(r);
    size_t il = PT_MIN(strlen(ip), sizeof(ur->client) - 8); /* room for ":65535" */
    memcpy(ur->client, ip, il);
    ur->client[il] = '\0';
    ur->ctx_port = r->peer_port;
    size_t ml = PT_MIN(r->head.method_str.len, (size_t)20);
    size_t tl = PT_MIN(r->head.target.len, (size_t)200);
    _Static_assert(sizeof(ur->reqline) >= 220, "the raw method and target fit");
    if (ml)
        memcpy(ur->reqline, r->head.method_str.p, ml);
    if (tl)
        memcpy(ur->reqline + ml, r->head.target.p, tl);
    ur->ctx_mlen = (uint8_t)ml;
    ur->ctx_tlen = (uint16_t)tl;
    ur->ctx_cut = r->head.target.len > 200;
    ur->ctx_major = (uint8_t)PT_MAX(r->head.http_major, 0);
    ur->ctx_minor = (uint8_t)PT_MAX(r->head.http_minor, 0);
    ur->ctx_ready = false;
}

/* The log context as text, once: "addr:port" and the request line,
 * escaped (the target is the client's bytes). */
static void ctx_text(ureq *ur)
{
    if (ur->ctx_ready)
        return;
    char line[sizeof(ur->reqline)];
    size_t n = sizeof(line);
    size_t at = put_at(line, n, 0, ur->reqline, ur->ctx_mlen);
    at = put_at(line, n, at, " ", 1);
    at += pt_escape_log(ur->reqline + ur->ctx_mlen, ur->ctx_tlen, line + at,
                        PT_MIN(n - at, (size_t)256));
    at = ur->ctx_cut ? put_at(line, n, at, "... HTTP/", 9) : put_at(line, n, at, " HTTP/", 6);
    at = put_dec(line, n, at, ur->ctx_major);
    at = put_at(line, n, at, ".", 1);
    at = put_dec(line, n, at, ur->ctx_minor);
    memcpy(ur->reqline, line, at + 1);
    at = strlen(ur->client);
    at = put_at(ur->client, sizeof(ur->client), at, ":", 1);
    put_dec(ur->client, sizeof(ur->client), at, ur->ctx_port);
    ur->ctx_ready = true;
}

/* The worker's state for a backend: same index as in the configuration. */
static ubackend *backend_of(pt_worker *w, const pt_backend *bc)
{
    struct pt_upstream_conn_state *st = w->ups;
    if (!st || !bc || bc < w->cfg->backends || bc >= w->cfg->backends + st->nb)
        return NULL;
    return &st->b[bc - w->cfg->backends];
}

/* The body's length for the codec's head: what was collected, or, for a
 * body still streaming in, the length the client announced (conn.c streams
 * a body of unknown length only to codecs that can frame it, HTTP). */
static uint64_t body_len_of(const pt_req *r)
{
    const pt_head *h = &r->head;
    if (r->body_streaming && !h->is_chunked && h->content_length > 0)
        return (uint64_t)h->content_length;
    return r->body.len;
}

void pt_upstream_conn_start(pt_req *r, const pt_upstream_codec *codec)
{
    pt_worker *w = r->conn->w;
    const pt_location *loc = r->loc;
    ubackend *b = backend_of(w, loc->backend);
    if (!b) {
        pt_conn_reject(r, 500, "no backend for this location", false);
        return;
    }
    /* an application behind a prefix has no file to find; otherwise the
     * path is split by walking the filesystem, never by a pattern */
    bool app = loc->match == PT_MATCH_PREFIX && !loc->cgi_dir && !loc->cgi_program;
    pt_gw_script s;
    /* HTTP sends no script's variables: an application behind a prefix
     * needs no split at all (an alias still checks its prefix) */
    bool split = !codec->no_meta_vars || !app || loc->alias;
    int st = split ? pt_gw_resolve(r, &s, loc->require_file && !app && !loc->cgi_program) : 0;
    /* the backend opens SCRIPT_FILENAME itself, in another process: what
     * portico promises is the check (beneath the root, the symlink policy),
     * see SECURITY.md */
    if (split)
        pt_gw_script_close(&s);
    if (st) {
        pt_gw_reject(r, st, st == 404 ? "no such script" : "not a script");
        return;
    }
    /* zeroed but for the log texts and the stderr line buffer (set before
     * use): 1.5 KiB less to clear for every request */
    ureq *ur = malloc(sizeof(*ur) + codec->dec_size);
    if (ur) {
        memset(ur, 0, offsetof(ureq, client));
        ur->client[0] = ur->reqline[0] = '\0';
        _Static_assert(offsetof(pt_errlines, line) == 0, "the line buffer comes first");
        memset(&ur->err.len, 0, sizeof(ur->err) - offsetof(pt_errlines, len));
        memset(ur->dec, 0, codec->dec_size);
        ur->tried = b->cfg->nservers <= PT_ARRAY_LEN(ur->tried_few)
                        ? ur->tried_few
                        : calloc(b->cfg->nservers, sizeof(bool));
    }
    if (!ur || !ur->tried) {
        if (ur)
            free(ur);
        pt_conn_reject(r, 500, "out of memory", true);
        return;
    }
    ur->w = w;
    ur->b = b;
    ur->codec = codec;
    ur->si = -1;
    ur->streaming = r->body_streaming;
    ur->chunked_up = ur->streaming && r->head.is_chunked;
    pt_timer_init(&ur->stall, on_stall, ur);
    pt_timer_init(&ur->whole, on_whole, ur);
    ctx_raw(ur, r);
    set_where(ur, -1);
    codec->dec_init(ur->dec);
    pt_gw_init(&ur->gw, &up_ops, r, loc->buffering, false);
    /* uwsgi applications answer with an HTTP status line (cgi_resp.c) */
    ur->gw.resp.status_line = codec->status_line;

    /* the request head, built once (kept for a retry); without a body the
     * codec's end frame rides along: one send */
    pt_gw_env ge;
    pt_gw_env_init_for(&ge, r, split ? &s : NULL, NULL, !codec->no_meta_vars);
    ge.req.minimal = b->cfg->minimal_variables;
    if (codec->encode(&ge.req, b->cfg, body_len_of(r), &ur->out, &ur->out_len, &ur->out_has_end) <
        0) {
        int e = errno;
        pt_gw_release(&ur->gw);
        codec->dec_free(ur->dec);
        if (ur->tried != ur->tried_few)
            free(ur->tried);
        free(ur);
        if (e == E2BIG)
            pt_conn_reject(r, 431, codec->too_big, false);
        else
            pt_conn_reject(r, 500, "out of memory", true);
        return;
    }

    pt_gw_attach(&ur->gw, r);
    r->conn->state = PT_CS_WRITE;
    ur->starting = true;
    req_enter(ur);
    try_server(ur);
    ur->starting = false;
    req_leave(ur);
}

/* ---- worker life -------------------------------------------------------- */

int pt_upstream_conn_shared_init(const pt_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nbackends; i++)
        n += cfg->backends[i].nservers;
    /* the previous generation's workers keep their own mapping of the old
     * counters; the master lets go of it (one map per reload leaked) */
    if (g_waiting)
        munmap(g_waiting, g_nwaiting * (g_nrows + 1) * sizeof(unsigned));
    g_waiting = NULL;
    g_nwaiting = g_nrows = 0;
    /* likewise its eventfd: the old workers hold their own */
    if (g_notify >= 0)
        close(g_notify);
    g_notify = -1;
    size_t rows = cfg->workers > 0 ? (size_t)cfg->workers : 1;
    if (n == 0)
        return 0;
    void *p = mmap(NULL, n * (rows + 1) * sizeof(unsigned), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    g_waiting = p;
    g_nwaiting = n;
    g_nrows = rows;
    /* without it the workers sweep on a timer (see g_waiting) */
    g_notify = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return 0;
}

void pt_upstream_conn_worker_lost(int id)
{
    if (!g_waiting || id < 0 || (size_t)id >= g_nrows)
        return;
    unsigned *row = g_waiting + g_nwaiting * ((size_t)id + 1);
    for (size_t i = 0; i < g_nwaiting; i++) {
        unsigned v = __atomic_exchange_n(&row[i], 0, __ATOMIC_RELAXED);
        if (v)
            __atomic_sub_fetch(&g_waiting[i], v, __ATOMIC_RELAXED);
    }
}

int pt_upstream_conn_init(pt_worker *w)
{
    const pt_config *cfg = w->cfg;
    if (cfg->nbackends == 0)
        return 0;
    struct pt_upstream_conn_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -1;
    w->ups = st;
    st->b = calloc(cfg->nbackends, sizeof(*st->b));
    if (!st->b)
        return -1;
    st->nb = cfg->nbackends;
    pt_tlist_init(&w->loop, &st->tl_sweep, PT_UP_SWEEP_MS);
    pt_tlist_init(&w->loop, &st->tl_grow, 1000);
    pt_timer_init(&st->grow, on_grow, st);
    for (size_t k = 0; k < PT_ARRAY_LEN(stall_steps); k++)
        pt_tlist_init(&w->loop, &st->tl_stall[k], stall_steps[k]);
    pt_timer_init(&st->sweep, on_sweep, st);
    /* shared with every worker of this generation: never closed here, and
     * removed from epoll by hand at the end (a close would not do it) */
    pt_io_init(&st->notify, g_notify, on_notify, st);
    if (g_notify >= 0 && g_waiting && pt_io_set(&w->loop, &st->notify, EPOLLIN | EPOLLET) < 0)
        pt_log_warn("upstream: watching the stall eventfd: %s; idle pools swept on a timer",
                    strerror(errno));
    size_t off = 0;
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const pt_backend *bc = &cfg->backends[i];
        ubackend *b = &st->b[i];
        b->cfg = bc;
        b->q.gauge = &pt_stats_server(bc->name, NULL)->queued;
        if (pt_upstream_init(&b->up, bc, (unsigned)cfg->workers) < 0)
            return -1;
        b->idle = calloc(bc->nservers, sizeof(*b->idle));
        b->nidle = calloc(bc->nservers, sizeof(*b->nidle));
        b->probed = calloc(bc->nservers, sizeof(*b->probed));
        b->rt8 = calloc(bc->nservers, sizeof(*b->rt8));
        b->cap_cfg = calloc(bc->nservers, sizeof(*b->cap_cfg));
        b->learn = calloc(bc->nservers, sizeof(*b->learn));
        if (!b->rt8 || !b->cap_cfg || !b->learn)
            return -1;
        for (size_t si = 0; si < bc->nservers; si++)
            b->cap_cfg[si] = b->up.s[si].cap;
        if (g_waiting && off + bc->nservers <= g_nwaiting && w->id >= 0 &&
            (size_t)w->id < g_nrows) {
            b->waiting = g_waiting + off;
            b->mine = g_waiting + g_nwaiting * ((size_t)w->id + 1) + off;
        } else if (!(b->waiting = calloc(2 * bc->nservers, sizeof(*b->waiting)))) {
            return -1; /* no shared map (unit tests): this worker alone */
        } else {
            b->mine = b->waiting + bc->nservers;
            b->own_waiting = true;
        }
        off += bc->nservers;
        if (!b->idle || !b->nidle || !b->probed)
            return -1;
        b->tl_connect = pt_worker_tlist(w, bc->connect_timeout_ms);
        b->tl_send = pt_worker_tlist(w, bc->send_timeout_ms);
        b->tl_read = pt_worker_tlist(w, bc->read_timeout_ms);
        b->tl_idle = pt_worker_tlist(w, bc->keepalive_timeout_ms);
        b->tl_queue = pt_worker_tlist(w, bc->queue_timeout_ms);
        b->tl_tunnel = pt_worker_tlist(w, bc->tunnel_timeout_ms);
        b->tl_response =
            bc->response_timeout_ms ? pt_worker_tlist(w, bc->response_timeout_ms) : NULL;
    }
    return 0;
}

void pt_upstream_conn_quiesce(pt_worker *w)
{
    struct pt_upstream_conn_state *st = w->ups;
    if (!st)
        return;
    uconn *fc = st->all;
    while (fc) {
        uconn *n = fc->anext;
        if (fc->state == FC_IDLE)
            fc_close(fc);
        fc = n;
    }
}

void pt_upstream_conn_shutdown(pt_worker *w)
{
    struct pt_upstream_conn_state *st = w->ups;
    if (!st)
        return;
    /* connections are closed (and their requests freed) before this */
    while (st->all) {
        uconn *fc = st->all;
        if (fc->r) {
            ureq *r = fc->r;
            r->fc = NULL;
            fc->r = NULL;
            if (r->detached && r->busy == 0) {
                /* discarding a body nobody wants (detach): nothing else
                 * holds it */
                r->si = -1;
                req_free(r);
            }
        }
        fc_close(fc);
    }
    if (st->prober && st->prober->stop)
        st->prober->stop(w);
    pt_timer_stop(&st->sweep);
    pt_timer_stop(&st->grow);
    pt_io_remove(&w->loop, &st->notify);
    for (size_t i = 0; i < st->nb; i++) {
        pt_upstream_free(&st->b[i].up);
        free(st->b[i].probed);
        free(st->b[i].rt8);
        free(st->b[i].cap_cfg);
        free(st->b[i].learn);
        if (st->b[i].own_waiting)
            free(st->b[i].waiting);
        free(st->b[i].idle);
        free(st->b[i].nidle);
    }
    free(st->b);
    free(st);
    w->ups = NULL;
}

void pt_upstream_dec_none(void *dec)
{
    (void)dec;
}

size_t pt_upstream_feed_raw(void *dec, const char *p, size_t n, pt_upstream_ev *ev)
{
    (void)dec;
    ev->type = PT_UEV_OUT;
    ev->data = p;
    ev->len = n;
    return n;
}

const pt_handler_worker pt_upstream_conn_worker = {
    .init = pt_upstream_conn_init,
    .quiesce = pt_upstream_conn_quiesce,
    .stop = pt_upstream_conn_shutdown,
};
