/* h2_conn.c: HTTP/2 on a client connection. The session (h2.c) is fed
 * from the connection's own socket events; each stream gets a pt_req from
 * the worker's block pool and goes through the same steps as an HTTP/1.1
 * request (conn.c's route and admit: path, vhost, location, router phases,
 * limits), then to its handler, whose response calls reach this file's
 * framer and become the stream's HEADERS and DATA. A stream's end (its
 * last frame sent, or RST_STREAM from the client) releases the request
 * like a client disconnect, and logs it (HTTP/2.0). */
#include "first.h"
#include "h2_conn.h"
#include "h2.h"
#include "handler.h"
#include "httpdate.h"
#include "log.h"
#include "router.h"
#include "stats.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

/* RFC 9113 §7 error codes used here */
enum {
    H2_NO_ERROR = 0x0,
    H2_INTERNAL_ERROR = 0x2,
    H2_REFUSED_STREAM = 0x7,
    H2_CANCEL = 0x8,
};

/* bytes written per wakeup, as HTTP/1.1 (one client cannot starve others) */
#define H2_WRITE_PER_WAKEUP (2048u * 1024u)
/* frames are made while the connection's queue is below this: the
 * socket, not memory, holds what the client has not taken */
#define H2_OUT_LOW (64u * 1024u)

struct pt_h2c {
    pt_h2 *s;
    pt_req *reqs; /* the streams' requests, linked by h2_next */
    bool fatal;   /* a connection error: send the GOAWAY, then close */
    bool closing; /* pt_h2c_close runs: nothing is sent any more */
    /* inside nghttp2 (its callbacks reach handlers, which kick): the
     * session cannot be entered again, the flush after it sends */
    bool in_session;
    pt_timer idle; /* idle for H2_IDLE_MS: the session's spare pages go back */
    /* requests taken, and their count when the last idle period began:
     * a new request starts a new one (keepalive_timeout counts from it) */
    uint32_t nreq, nreq_idle;
    /* where the client's frames end (h2_feed): preface bytes still to
     * come, payload bytes left of the frame being read, and a frame
     * header split between reads */
    uint32_t pre_left, fskip;
    uint8_t fh[9], fh_have;
    /* this wake-up's: bytes the pieces' flushes may still write (one
     * H2_WRITE_PER_WAKEUP for all), and whether one wrote answers */
    size_t wleft;
    bool fed_out;
    /* pt_h2c_flush runs: a stream's code (a handler's kick, a gateway's
     * body room, the cache waking its waiters) may be on the stack */
    bool kicked;
    bool dead; /* the socket failed while kicked: pt_h2c_io closes */
    /* streams complete with their HEADERS (no body), in the order they
     * came, routed after the read's frames are parsed (run_ready) */
    pt_req *ready, *ready_last;
};

/* An idle connection gives nghttp2's spare pages back (pt_h2_idle) once it
 * stayed idle this long: a client asking one request at a time does not
 * pay a system call and page faults per request */
#define H2_IDLE_MS 200
static pt_tlist t_idle;      /* the worker's: one loop a process */
static pt_loop *t_idle_loop; /* the loop t_idle is registered with */

static void on_idle(pt_loop *l, pt_timer *t)
{
    (void)l;
    pt_conn *c = t->data;
    if (c->h2 && c->out.bytes == 0 && pt_h2_streams(c->h2->s) == 0) {
        pt_h2_idle(c->h2->s);
        pt_tls_buffers_release(&c->sock); /* kept while busy (pt_h2c_detect) */
    }
}

/* A bound the session hit (h2.c names it): one log line with the client */
static void report(pt_conn *c)
{
    if (!c->h2 || c->state == PT_CS_CLOSED)
        return; /* closed from a callback: its session is gone */
    const char *why = pt_h2_trouble(c->h2->s);
    if (why)
        pt_log_info("h2: %s, client: %s:%u", why, pt_conn_peer_ip(c), pt_conn_peer_port(c));
}

static void route(pt_req *r, bool end);

static void ready_unlink(struct pt_h2c *h, pt_req *r)
{
    if (r->h2_rprev)
        r->h2_rprev->h2_rnext = r->h2_rnext;
    else
        h->ready = r->h2_rnext;
    if (r->h2_rnext)
        r->h2_rnext->h2_rprev = r->h2_rprev;
    else
        h->ready_last = r->h2_rprev;
    r->h2_rnext = r->h2_rprev = NULL;
}

static bool is_ready(const struct pt_h2c *h, const pt_req *r)
{
    return r->h2_rprev || h->ready == r;
}

static void ready_push(struct pt_h2c *h, pt_req *r)
{
    r->h2_rprev = h->ready_last;
    if (h->ready_last)
        h->ready_last->h2_rnext = r;
    else
        h->ready = r;
    h->ready_last = r;
}

/* The streams a read completed, routed and answered one after another
 * once its frames are parsed, not between them: one stream's path
 * through the router, its handler and the framer runs while the last
 * one's code is still in the instruction cache, where interleaved with
 * nghttp2's parser and OpenSSL's each found it evicted. Still inside the
 * session as far as kicks go (in_session): the flush after sends. A
 * stream reset meanwhile left the list (on_closed). A stream with a body
 * is routed from the parser (its DATA follows): the ones before it are
 * run first, so streams are routed in the order they came (limit_req,
 * queues). */
static void run_ready(pt_conn *c)
{
    while (c->state != PT_CS_CLOSED && c->h2 && c->h2->ready) {
        pt_req *r = c->h2->ready;
        ready_unlink(c->h2, r);
        route(r, true);
    }
}

/* Bytes read into the session: false when the connection must end (its
 * GOAWAY, if any, is queued) */
static bool h2_recv(pt_conn *c, const void *p, size_t n)
{
    struct pt_h2c *h = c->h2;
    h->in_session = true;
    int rc = pt_h2_recv(h->s, p, n);
    /* a bound of ours hit (a callback failed: rapid reset) or a fatal
     * error: the waiting streams end with the connection (on_closed),
     * unanswered. A protocol error nghttp2 answers with its own GOAWAY
     * still reads as consumed: those are routed, as they were when
     * routed from the parser, and their answers go nowhere. */
    if (rc == 0)
        run_ready(c);
    if (c->h2)
        c->h2->in_session = false;
    report(c);
    return rc == 0;
}

/* Streams ended by the client between two flushes of a long read: the
 * answers to the first ones leave while the rest are made, so the client
 * reads (and asks again) while the server works, instead of the two
 * taking turns over whole batches */
#define H2_FEED_STREAMS 16

static size_t flush(pt_conn *c, size_t budget);

/* How many of p's n bytes to give the session before flushing: up to the
 * end of the frame that ends the H2_FEED_STREAMS-th stream, or all */
static size_t feed_cut(struct pt_h2c *h, const uint8_t *p, size_t n)
{
    size_t i = 0;
    unsigned ended = 0;
    if (h->pre_left) {
        size_t k = PT_MIN((size_t)h->pre_left, n);
        h->pre_left -= (uint32_t)k;
        i = k;
    }
    while (i < n) {
        if (h->fskip) {
            size_t k = PT_MIN((size_t)h->fskip, n - i);
            h->fskip -= (uint32_t)k;
            i += k;
            if (h->fskip == 0 && ended >= H2_FEED_STREAMS)
                return i;
            continue;
        }
        const uint8_t *f;
        if (h->fh_have == 0 && n - i >= 9) {
            f = p + i; /* the whole header in this read: read in place */
            i += 9;
        } else { /* split between reads: gathered a byte at a time */
            h->fh[h->fh_have++] = p[i++];
            if (h->fh_have < 9)
                continue;
            h->fh_have = 0;
            f = h->fh;
        }
        h->fskip = (uint32_t)f[0] << 16 | (uint32_t)f[1] << 8 | f[2];
        /* HEADERS or DATA with END_STREAM (RFC 9113 §6.1, §6.2) */
        if ((f[3] == 0x0 || f[3] == 0x1) && (f[4] & 0x1))
            ended++;
        if (h->fskip == 0 && ended >= H2_FEED_STREAMS)
            return i;
    }
    return n;
}

/* A read given to the session in pieces (feed_cut), the answers made so
 * far flushed between them */
static bool h2_feed(pt_conn *c, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        struct pt_h2c *h = c->h2;
        size_t k = feed_cut(h, p, n);
        /* the wake-up's write bound spent: the rest in one piece (walked
         * all the same, so the next read's cuts stay on frame ends) */
        while (k < n && h->wleft < H2_OUT_LOW)
            k += feed_cut(h, p + k, n - k);
        if (!h2_recv(c, p, k))
            return false;
        p += k;
        n -= k;
        if (n == 0 || c->state == PT_CS_CLOSED || !c->h2)
            break;
        /* one round of at most H2_OUT_LOW, taken from the wake-up's bound */
        size_t w = flush(c, H2_OUT_LOW);
        if (c->state == PT_CS_CLOSED || !c->h2)
            break;
        h->wleft -= PT_MIN(w, h->wleft);
        h->fed_out |= w > 0;
    }
    return true;
}

/* the session keeps each stream's request: no search over a hundred */
static pt_req *req_of(pt_conn *c, int32_t sid)
{
    return pt_h2_owner(c->h2->s, sid);
}

static void unlink_req(pt_conn *c, pt_req *r)
{
    pt_h2_set_owner(c->h2->s, r->h2_sid, NULL);
    if (r->h2_prev)
        r->h2_prev->h2_next = r->h2_next;
    else if (c->h2->reqs == r)
        c->h2->reqs = r->h2_next;
    if (r->h2_next)
        r->h2_next->h2_prev = r->h2_prev;
    r->h2_next = r->h2_prev = NULL;
}

static void dispatch(pt_req *r)
{
    r->req_complete = true;
    pt_handler_start(r);
}

/* request_buffering = false, HTTP/1.1's rule (conn.c): the upstream gets
 * the body as it comes; one without a length only where the transport
 * frames it (HTTP's chunked), for CONTENT_LENGTH must be known otherwise */
static bool streams_body(const pt_req *r)
{
    unsigned f = pt_handler_of(r->loc)->flags;
    return r->loc && !r->loc->request_buffering && (f & PT_HF_STREAM_BODY) &&
           (r->head.content_length >= 0 || (f & PT_HF_STREAM_CHUNKED));
}

/* past the router: method, limits, then the handler: at once, or, for a
 * handler that takes the body (the gateways), once the body is collected
 * (on_body: memory, then an unlinked temp file), so CONTENT_LENGTH is
 * known as for a chunked HTTP/1.1 body (RFC 3875 §4.1.2) and a slow
 * uploader holds no program; or streaming it (request_buffering = false) */
static void after_phases(pt_req *r)
{
    bool has_body = !r->h2_body_end;
    if (!pt_conn_admit(r, has_body))
        return;
    if (has_body && r->body_collect && streams_body(r)) {
        /* bytes come as the upstream takes them: the client's window is
         * given back then (pt_h2c_body_room), so the stream holds at most
         * one window of it here */
        r->body_streaming = true;
        if (r->head.content_length < 0)
            r->head.is_chunked = true; /* sent on chunked, as HTTP/1.1's */
        dispatch(r);
        return;
    }
    if (has_body && r->body_collect) {
        r->h2_wait_body = true; /* on_body_end dispatches */
        return;
    }
    /* a body means nothing to the others (RFC 9110 §9.3.1): dropped */
    dispatch(r);
}

/* A body being collected that stops (or trickles) is answered 408, as
 * HTTP/1.1's (the rest of it is refused with the stream) */
static bool collecting(const pt_req *r)
{
    return r->body_collect && !r->h2_body_end && !r->req_complete && !r->status;
}

static void body_failed(pt_req *r, int status, const char *why)
{
    r->body_collect = false;
    r->h2_wait_body = false;
    r->req_complete = true;
    pt_timer_stop(&r->h2_timer);
    pt_conn_reject(r, status, why, true);
}

/* A streamed body that cannot go on: as HTTP/1.1's (conn.c body_error),
 * an upstream that has not begun its answer gets a cut request and the
 * client the status; otherwise the stream is cut. */
static void stream_failed(pt_req *r, int status, const char *why)
{
    r->body_done = true;
    pt_timer_stop(&r->h2_timer);
    if (r->gw && r->status == 0 && r->bytes_written == 0) {
        pt_handler_release(r, true);
        pt_conn_reject(r, status, why, true);
        return;
    }
    pt_log_info("%s while streaming the request body; stream reset, client: %s:%u", why,
                pt_conn_req_ip(r), r->peer_port);
    pt_resp_reset(r);
}

/* The stream's own timer: a gateway queue's wait (cgi_max_procs,
 * max_conns) ran out, 503, as HTTP/1.1's connection timer answers it
 * (conn.c); or its body stopped coming (body_timeout) */
static void on_req_timer(pt_loop *l, pt_timer *t)
{
    (void)l;
    pt_req *r = t->data;
    if (r->gw_q) {
        const char *why = r->gw_q_why;
        pt_handler_release(r, false);
        pt_conn_reject(r, 503, why, false);
    } else if (collecting(r)) {
        body_failed(r, 408, "client sent no body in time");
    } else if (r->body_streaming && !r->body_done && r->h2_held == 0) {
        stream_failed(r, 408, "client sent no body in time");
    }
    pt_h2c_flush(r->conn);
}

static void on_request(void *ud, int32_t sid, const pt_head *h, bool end)
{
    pt_conn *c = ud;
    pt_worker *w = c->w;
    char *b = pt_worker_sblock_get(w);
    if (!b) {
        pt_h2_reset(c->h2->s, sid, H2_REFUSED_STREAM);
        return;
    }
    PT_STATS_ADD(pt_stats_my->h2_streams, 1);
    PT_STATS_ADD(pt_stats_my->h2_streams_open, 1);
    c->h2->nreq++;
    pt_req *r = (pt_req *)(void *)b;
    pt_req_zero(r);
    r->path = b + PT_REQ_SIZE; /* the head's fields stay in the session */
    pt_conn_req_init(r, c);
    r->h2_sid = sid;
    r->head = *h;
    r->is_head = h->method == PT_M_HEAD;
    r->t_start = r->body_t0 = w->loop.now;
    r->t_wall = time(NULL);
    r->h2_body_end = end;
    pt_timer_init(&r->h2_timer, on_req_timer, r);
    r->h2_next = c->h2->reqs;
    if (r->h2_next)
        r->h2_next->h2_prev = r;
    c->h2->reqs = r;
    pt_h2_set_owner(c->h2->s, sid, r);
    c->nreq++;
    if (h->error) {
        /* RFC 6585 §5 for a head over the limits, as for HTTP/1.1 */
        bool big = strcmp(h->error, "request head too large") == 0;
        r->req_complete = true;
        pt_conn_reject(r, big ? 431 : 501, h->error, false);
        return;
    }
    if (end) { /* routed after the read (run_ready) */
        ready_push(c->h2, r);
        return;
    }
    run_ready(c); /* the streams before it first: in order */
    if (c->state == PT_CS_CLOSED || !c->h2)
        return;
    route(r, false);
}

/* past the head: the router's phases, then (after_phases) the handler */
static void route(pt_req *r, bool end)
{
    pt_worker *w = r->conn->w;
    bool go = pt_conn_route(r, !end);
    /* the location is known now (a phase may still wait): a gateway's
     * body is collected from the first DATA frame on */
    r->body_collect = !end && r->loc && !r->status && (pt_handler_of(r->loc)->flags & PT_HF_BODY);
    if (r->body_collect) /* body_timeout: between DATA frames */
        pt_timer_arm(&w->loop, &r->h2_timer, &w->t_body);
    if (go)
        after_phases(r);
}

/* A stream's body bytes through HTTP/1.1's checks (conn.c): max_body
 * against total (RFC 9110 §15.5.14), the shared store (memory, then a file
 * past body_memory), body_min_rate. 0 when stored, else the status that
 * refuses the body, with why (a literal, or buf). */
static int store_body(pt_req *r, const void *p, size_t n, uint64_t total, const char **why,
                      char *buf, size_t bn)
{
    const pt_config *cfg = r->conn->w->cfg;
    if (total > cfg->limits.max_body) {
        *why = "request body over max_body";
        return 413;
    }
    if (pt_body_append(&r->body, p, n) < 0) {
        pt_log_error("cannot store a request body in %s: %s", cfg->tmp_dir, strerror(errno));
        *why = "request body storage failed";
        return 500;
    }
    *why = buf;
    return pt_conn_body_slow(r, buf, bn) ? 408 : 0;
}

/* Request body bytes: stored for a gateway, dropped for the others (or
 * once the request is answered); their flow-control window goes back as
 * they arrive (false): what is stored goes to a file past body_memory and
 * max_body bounds the whole, so a stream pins bounded memory. A streamed
 * body's bytes are held (true) until the upstream took them. */
static bool on_body(void *ud, int32_t sid, const void *p, size_t n)
{
    pt_conn *c = ud;
    pt_req *r = req_of(c, sid);
    if (!r)
        return false;
    r->body_rx += n;
    char buf[128];
    const char *why;
    int st;
    if (r->body_streaming) {
        if (r->body_done)
            return false;
        if ((st = store_body(r, p, n, r->body_rx, &why, buf, sizeof(buf))) != 0) {
            stream_failed(r, st, why);
            return false;
        }
        /* held: the window comes back when the upstream took them; the
         * client is not idle meanwhile, the upstream is slow (the wait
         * does not count against body_min_rate, as for HTTP/1.1) */
        r->h2_held += (uint32_t)n;
        if (!r->body_stall)
            r->body_stall = c->w->loop.now ? c->w->loop.now : 1;
        pt_timer_stop(&r->h2_timer);
        pt_handler_drain(r);
        return true;
    }
    if (!collecting(r))
        return false;
    /* the rest of a refused body goes with the stream (nghttp2 resets it
     * once the answer is out) */
    if ((st = store_body(r, p, n, r->body.len + n, &why, buf, sizeof(buf))) != 0)
        body_failed(r, st, why);
    else
        pt_timer_arm(&c->w->loop, &r->h2_timer, &c->w->t_body);
    return false; /* stored (or refused): the window goes back at once */
}

static void on_body_end(void *ud, int32_t sid)
{
    pt_req *r = req_of(ud, sid);
    if (!r)
        return;
    if (r->body_streaming && !r->body_done) {
        r->h2_body_end = r->body_done = true;
        pt_timer_stop(&r->h2_timer);
        pt_handler_drain(r); /* the upstream sends the end */
        return;
    }
    bool whole = collecting(r);
    r->h2_body_end = true;
    if (!whole)
        return;
    pt_timer_stop(&r->h2_timer);
    /* collected whole: its length is known (CONTENT_LENGTH), also when a
     * router phase still waits (it dispatches at once then) */
    r->head.content_length = (int64_t)r->body.len;
    if (r->h2_wait_body) {
        r->h2_wait_body = false;
        dispatch(r);
    }
}

/* The stream is over: answered, or reset by the client (a disconnect for
 * its request: a program still running is stopped). */
static void on_closed(void *ud, int32_t sid, uint32_t code)
{
    pt_conn *c = ud;
    pt_req *r = req_of(c, sid);
    if (!r)
        return;
    unlink_req(c, r);
    if (is_ready(c->h2, r))
        ready_unlink(c->h2, r);
    r->h2_closed = true;
    PT_STATS_SUB(pt_stats_my->h2_streams_open, 1);
    if (code != H2_NO_ERROR)
        PT_STATS_ADD(pt_stats_my->h2_resets, 1);
    pt_timer_stop(&r->h2_timer);
    if (r->h2_held && !c->h2->closing) /* the connection's window is shared */
        pt_h2_consume(c->h2->s, sid, r->h2_held);
    r->h2_held = 0;
    if (code != H2_NO_ERROR && !r->logged && r->req_complete)
        pt_log_debug("HTTP/2 stream %d reset (error code %u), client: %s:%u", sid, code,
                     pt_conn_req_ip(r), r->peer_port);
    if (!r->logged) {
        if (!r->status || (code != H2_NO_ERROR && !r->h2_body_end))
            r->status = r->status ? r->status : 499;
        pt_conn_log(r);
    }
    pt_router_abort(r);
    if (!r->gw_done)
        pt_handler_release(r, code != H2_NO_ERROR);
    pt_conn_req_end(r);
    pt_worker_sblock_put(c->w, r);
}

int pt_h2c_detect(pt_conn *c)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (c->sock.tls) {
        if (!pt_tls_alpn_h2(&c->sock))
            return 0;
    } else {
        if (!c->w->cfg->http2_cleartext)
            return 0;
        size_t n = PT_MIN(c->in_len, PT_SLEN(preface));
        if (memcmp(c->in, preface, n) != 0)
            return 0;
        if (n < PT_SLEN(preface))
            return -1;
    }
    static const pt_h2_cbs cbs = {on_request, on_body, on_body_end, on_closed};
    const pt_limits *lim = &c->w->cfg->limits;
    pt_h2_limits hl = {
        .max_streams = c->w->cfg->http2_max_streams,
        .header_bytes = lim->header_buffer,
        .max_headers = lim->max_headers,
        .max_requests = lim->keepalive_requests, /* as nginx, for HTTP/2 too */
    };
    struct pt_h2c *h = calloc(1, sizeof(*h));
    if (!h || !(h->s = pt_h2_new(&cbs, c, &hl))) {
        free(h);
        pt_conn_close(c);
        return 1;
    }
    c->h2 = h;
    c->framer = &pt_h2_framer;
    /* a round of reads and writes allocated and freed OpenSSL's record
     * buffers each time (RELEASE_BUFFERS, for an idle connection's
     * memory): an h2 connection keeps them until on_idle */
    pt_tls_buffers_hold(&c->sock);
    if (t_idle_loop != &c->w->loop) {
        pt_tlist_init(&c->w->loop, &t_idle, H2_IDLE_MS);
        t_idle_loop = &c->w->loop;
    }
    pt_timer_init(&h->idle, on_idle, c);
    PT_STATS_ADD(pt_stats_my->h2_conns, 1);
    PT_STATS_ADD(pt_stats_my->h2_opened, 1);
    c->state = PT_CS_WRITE; /* never idle between requests: h2_conn.c decides */
    pt_timer_stop(&c->timer);
    size_t n = c->in_len;
    c->in_len = 0;
    h->pre_left = 24; /* RFC 9113 §3.4: the client's preface */
    h->wleft = H2_WRITE_PER_WAKEUP;
    pt_h2_round(h->s);
    if (!h2_feed(c, c->in, n))
        h->fatal = true;
    pt_h2c_flush(c);
    return 1;
}

void pt_h2c_io(pt_conn *c, uint32_t events)
{
    struct pt_h2c *h = c->h2;
    if ((events & EPOLLERR) || h->dead) {
        pt_conn_close(c);
        return;
    }
    pt_h2_round(h->s);
    h->wleft = H2_WRITE_PER_WAKEUP;
    h->fed_out = false;
    /* one buffer for every connection of the worker (one thread):
     * nghttp2 keeps what it needs of a read, so a connection holds no
     * input buffer of its own between reads */
    static char rbuf[16384];
    for (int i = 0; i < 16 && !h->fatal && pt_h2_want_read(h->s); i++) {
        ssize_t n = pt_sock_read(&c->sock, rbuf, sizeof(rbuf));
        if (n == 0) {
            pt_conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            pt_conn_close(c);
            return;
        }
        if (!h2_feed(c, rbuf, (size_t)n))
            h->fatal = true;
        if (c->state == PT_CS_CLOSED || !c->h2)
            return; /* closed, or lingering (h is gone) */
        /* a short read took what the socket had (more wakes us again,
         * edge-triggered too: sock.c marks it drained): a read to EAGAIN
         * would be a system call for nothing at every wake-up. Bytes
         * OpenSSL read ahead are not in the socket: they keep the loop
         * going (BUFFERED) */
        if ((size_t)n < sizeof(rbuf) && !(c->sock.flags & PT_SOCK_BUFFERED))
            break;
        /* answers went out mid-read: the client's next requests are a
         * new round (rapid-reset's count of streams opened in one) */
        if (h->fed_out)
            break;
    }
    (void)flush(c, PT_MAX(h->wleft, (size_t)H2_OUT_LOW));
}

void pt_h2c_flush(pt_conn *c)
{
    struct pt_h2c *h = c->h2;
    if (!h)
        return;
    bool was = h->kicked;
    h->kicked = true;
    (void)flush(c, H2_WRITE_PER_WAKEUP);
    h->kicked = was; /* a kicked flush never ends the connection: h lives */
}

/* The connection must end (dead: at once, else once its GOAWAY is out).
 * Not from a kicked flush: the code that kicked may hold its stream's
 * request, or another stream's, and ending frees every stream's (a use
 * after free); the loop comes back to it at once (EPOLLOUT) and
 * pt_h2c_io's flush ends it. True: so deferred. */
static bool defer_end(pt_conn *c, bool dead)
{
    struct pt_h2c *h = c->h2;
    if (!h->kicked)
        return false;
    h->dead |= dead;
    pt_io_set(&c->w->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    return true;
}

/* GOAWAY sent and every stream done, or a connection error's GOAWAY out:
 * the streams end as client disconnects, then a lingering close */
static void end_conn(pt_conn *c)
{
    pt_h2c_close(c);
    if (c->state == PT_CS_CLOSED)
        return;
    pt_tls_buffers_release(&c->sock); /* held while HTTP/2 was busy */
    pt_conn_linger(c);
}

/* Frames and writes up to budget bytes: the bytes written */
static size_t flush(pt_conn *c, size_t budget)
{
    struct pt_h2c *h = c->h2;
    if (!h || h->closing || h->in_session || h->dead || c->state == PT_CS_CLOSED)
        return 0;
    pt_worker *w = c->w;
    size_t budget0 = budget;
    bool wrote = false;
    /* the session framed all it had (short of the bound): writing to the
     * socket makes no new frame, so no second call that finds none */
    bool drained = false;
    for (;;) {
        if (c->out.bytes < H2_OUT_LOW && !drained) {
            h->in_session = true;
            ssize_t k = pt_h2_send(h->s, &c->out, H2_OUT_LOW);
            h->in_session = false;
            report(c);
            if (k < 0) {
                if (!defer_end(c, true))
                    pt_conn_close(c);
                return budget0 - budget;
            }
            drained = (size_t)k < H2_OUT_LOW;
        }
        if (c->out.bytes == 0)
            break;
        ssize_t n = pt_cq_flush(&c->out, &c->sock, budget);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            if (!defer_end(c, true))
                pt_conn_close(c);
            return budget0 - budget;
        }
        if (n <= 0)
            break;
        wrote = true;
        budget -= PT_MIN((size_t)n, budget);
        if (budget == 0)
            break;
    }
    /* streams whose clients took all their queued bytes: their producers
     * may go on, as HTTP/1.1's when the connection's queue empties
     * (back-pressure per stream, not per connection) */
    h->in_session = true; /* a producer's kick (or cut) waits: the list stays whole */
    for (pt_req *r = h->reqs; r; r = r->h2_next)
        if (r->gw && !r->gw_done && pt_h2_queued(h->s, r->h2_sid) == 0)
            pt_handler_drain(r);
    h->in_session = false;
    bool want_read = !h->fatal && pt_h2_want_read(h->s);
    bool want_write = pt_h2_want_write(h->s);
    /* a connection error's GOAWAY goes if the socket takes it (RFC 9113
     * §5.4.1); a client that does not read (a flood) is not waited for */
    if (c->out.bytes > 0 && h->fatal) {
        if (!defer_end(c, true))
            pt_conn_close(c);
        return budget0 - budget;
    }
    if (c->out.bytes == 0 && (h->fatal || (!want_read && !want_write))) {
        /* GOAWAY sent and every stream done (or a connection error): an
         * orderly close, close_notify first over TLS. The client may still
         * be sending (the rest of a flood, requests written before it read
         * the GOAWAY): closing on unread input would be a reset, which can
         * destroy the GOAWAY and the last answers before the client reads
         * them, so the input is drained (bounded) first */
        if (!defer_end(c, false))
            end_conn(c);
        return budget0 - budget;
    }
    uint32_t ev = EPOLLRDHUP;
    if (want_read)
        ev |= EPOLLIN;
    /* EPOLLOUT: output waits, or TLS holds decrypted input epoll cannot see */
    if (c->out.bytes > 0 || want_write || (c->sock.flags & (PT_SOCK_WANT_WRITE | PT_SOCK_BUFFERED)))
        ev |= EPOLLOUT;
    pt_io_set(&w->loop, &c->io, ev);
    if (c->out.bytes > 0) {
        if (wrote || !pt_timer_armed(&c->timer) || c->timer.list != &w->t_write)
            pt_timer_arm(&w->loop, &c->timer, &w->t_write);
    } else if (pt_h2_streams(h->s) == 0) {
        pt_cq_free(&c->out); /* idle: its spare chunk back to the pool */
        /* an idle period starts: after each request, even one answered
         * within a wake-up (its stream never left the timer stopped),
         * else a client asking one request at a time was cut
         * keepalive_timeout after its first one, however busy */
        pt_tlist *idle = w->stopping ? &w->t_stop_idle : &w->t_keepalive;
        if (h->nreq != h->nreq_idle || !pt_timer_armed(&c->timer) || c->timer.list != idle) {
            h->nreq_idle = h->nreq;
            pt_timer_arm(&w->loop, &c->timer, idle);
            pt_timer_arm(&w->loop, &h->idle, &t_idle); /* an idle period starts */
        }
    } else if (pt_h2_stalled(h->s)) {
        /* a zero-window stall: the client's window, not the socket, holds
         * a response; write_timeout bounds it per stream, as it does a
         * client that stops reading, and only a stream's own DATA counts
         * as progress (PINGs answered do not) */
        if (!pt_timer_armed(&c->timer) || c->timer.list != &w->t_write) {
            pt_h2_stall_mark(h->s);
            pt_timer_arm(&w->loop, &c->timer, &w->t_write);
        }
    } else {
        pt_timer_stop(&c->timer); /* streams at work: their handlers' own timeouts */
    }
    return budget0 - budget;
}

void pt_h2c_timer(pt_conn *c)
{
    if (c->out.bytes > 0) {
        pt_log_info("client timed out while reading HTTP/2 frames, client: %s:%u",
                    pt_conn_peer_ip(c), pt_conn_peer_port(c));
    } else if (c->h2 && pt_h2_stalled(c->h2->s)) {
        /* the streams, not the connection: its other streams may go on */
        size_t n = pt_h2_stall_reset(c->h2->s, H2_CANCEL);
        if (n)
            pt_log_info("h2: zero-window stall: %zu stream(s) reset, no WINDOW_UPDATE within "
                        "write_timeout, client: %s:%u",
                        n, pt_conn_peer_ip(c), pt_conn_peer_port(c));
        pt_h2c_flush(c);
        return;
    }
    pt_conn_close(c);
}

void pt_h2c_stop(pt_conn *c)
{
    pt_h2_goaway(c->h2->s);
    pt_h2c_flush(c);
}

void pt_h2c_close(pt_conn *c)
{
    struct pt_h2c *h = c->h2;
    if (!h)
        return;
    h->closing = true;
    pt_timer_stop(&h->idle);
    PT_STATS_SUB(pt_stats_my->h2_conns, 1);
    pt_h2_free(h->s); /* on_closed for every stream still open */
    c->h2 = NULL;
    free(h);
}

void pt_h2c_phases_done(pt_req *r)
{
    if (r->phases_dispatch) {
        r->phases_dispatch = false;
        dispatch(r);
    } else {
        after_phases(r);
    }
    pt_h2c_flush(r->conn);
}

void pt_h2c_body_room(pt_req *r)
{
    pt_conn *c = r->conn;
    if (!c->h2 || r->h2_closed || r->h2_held == 0)
        return;
    pt_h2_consume(c->h2->s, r->h2_sid, r->h2_held);
    r->h2_held = 0;
    if (r->body_stall) {
        r->body_t0 += c->w->loop.now - r->body_stall;
        r->body_stall = 0;
    }
    if (!r->body_done) /* now the client owes the next bytes */
        pt_timer_arm(&c->w->loop, &r->h2_timer, &c->w->t_body);
    pt_h2c_flush(c); /* the WINDOW_UPDATE */
}

void pt_h2c_redispatch(pt_req *r)
{
    dispatch(r);
    pt_h2c_flush(r->conn);
}

/* ---- the framer (resp.h) ------------------------------------------------ */

static pt_h2 *sess(const pt_req *r)
{
    return r->conn->h2 ? r->conn->h2->s : NULL;
}

static bool bodiless(const pt_req *r)
{
    return r->is_head || r->status < 200 || r->status == 204 || r->status == 304;
}

static void h2_begin(pt_req *r, int status, const char *reason)
{
    (void)reason; /* HTTP/2 has no reason phrase (RFC 9113 §8.3.2) */
    pt_h2 *s = sess(r);
    if (!s || pt_h2_resp_begin(s, r->h2_sid, status) < 0)
        return;
    /* the worker's server_header lives as long as the worker */
    const char *srv = r->conn->w->server_header;
    pt_h2_resp_std(s, r->h2_sid, pt_httpdate_now(), srv, strlen(srv));
}

static void h2_header(pt_req *r, const char *name, size_t nl, const char *value, size_t vl)
{
    pt_h2 *s = sess(r);
    if (s)
        pt_h2_resp_header(s, r->h2_sid, name, nl, value, vl);
}

static void h2_header_block(pt_req *r, const char *p, size_t n)
{
    pt_h2 *s = sess(r);
    if (s)
        pt_h2_resp_header_block(s, r->h2_sid, p, n);
}

static void head_out(pt_req *r, int64_t content_length, bool body)
{
    pt_h2 *s = sess(r);
    r->h2_known_len = body && content_length > 0;
    r->h2_left = r->h2_known_len ? (uint64_t)content_length : 0;
    if (s && pt_h2_resp_end_head(s, r->h2_sid, content_length, body) < 0)
        pt_h2_reset(s, r->h2_sid, H2_INTERNAL_ERROR);
}

static void h2_end_head(pt_req *r, int64_t content_length)
{
    head_out(r, content_length, !bodiless(r) && content_length > 0);
}

static void h2_end_stream(pt_req *r, int64_t content_length)
{
    if (r->status < 200 || r->status == 204 || r->status == 304) {
        head_out(r, -1, false);
        return;
    }
    /* no chunked framing in HTTP/2: DATA frames until END_STREAM */
    head_out(r, content_length, !r->is_head && content_length != 0);
}

/* with a known length the body ends with its last byte */
static void counted(pt_req *r, uint64_t n)
{
    r->bytes_written += n;
    if (!r->h2_known_len)
        return;
    r->h2_left -= PT_MIN(n, r->h2_left);
    if (r->h2_left == 0 && sess(r))
        pt_h2_body_end(sess(r), r->h2_sid);
}

static void h2_body(pt_req *r, const void *p, size_t n)
{
    pt_h2 *s = sess(r);
    if (!s || n == 0 || bodiless(r))
        return;
    if (pt_h2_body(s, r->h2_sid, p, n) < 0)
        return;
    counted(r, n);
}

static void h2_body_file(pt_req *r, int fd, off_t off, uint64_t n)
{
    pt_h2 *s = sess(r);
    if (!s || n == 0 || bodiless(r))
        return;
    if (pt_h2_body_file(s, r->h2_sid, fd, off, n) < 0)
        return;
    counted(r, n);
}

static void h2_body_ref(pt_req *r, const void *p, size_t n)
{
    pt_h2 *s = sess(r);
    if (!s || n == 0 || bodiless(r))
        return;
    if (pt_h2_body_ref(s, r->h2_sid, p, n) < 0)
        return;
    counted(r, n);
}

static char *h2_body_reserve(pt_req *r, size_t n)
{
    (void)r;
    (void)n;
    return NULL; /* the stream's queue takes copies or file ranges */
}

static void h2_body_commit(pt_req *r, size_t n)
{
    (void)r;
    (void)n;
}

static void h2_body_end(pt_req *r)
{
    pt_h2 *s = sess(r);
    if (s)
        pt_h2_body_end(s, r->h2_sid);
}

/* a relayed 1xx (103 Early Hints, RFC 8297) is a HEADERS frame of its
 * own ahead of the response's (RFC 9113 §8.1) */
static int h2_interim(pt_req *r, const char *head, size_t n)
{
    pt_h2 *s = sess(r);
    return s ? pt_h2_interim(s, r->h2_sid, head, n) : 0;
}

static void h2_kick(pt_req *r)
{
    pt_h2c_flush(r->conn);
}

/* RST_STREAM once: the stream is cut (RFC 9113 §8.1.1: a response cut
 * short is an error the client sees, never a complete one) */
static void rst(pt_req *r, uint32_t code)
{
    pt_h2 *s = sess(r);
    if (s && !r->h2_rst && !r->h2_closed) {
        r->h2_rst = true;
        pt_h2_reset(s, r->h2_sid, code);
    }
}

static void h2_reset(pt_req *r)
{
    rst(r, H2_INTERNAL_ERROR);
    pt_h2c_flush(r->conn);
}

static uint64_t h2_queued(const pt_req *r)
{
    pt_h2 *s = sess(r);
    return s ? pt_h2_queued(s, r->h2_sid) : 0;
}

static bool h2_unqueue(pt_req *r)
{
    (void)r;
    return false; /* the HEADERS frame is nghttp2's once submitted */
}

static void h2_cut(pt_req *r, int how)
{
    /* a stream is never reused: a whole response needs nothing more */
    if (how != PT_CUT_NO_REUSE)
        rst(r, H2_INTERNAL_ERROR);
}

static int h2_raw(pt_req *r, const void *p, size_t n)
{
    (void)r;
    (void)p;
    (void)n;
    return -1; /* HTTP/1.1 bytes have no place in a stream */
}

const pt_framer pt_h2_framer = {
    .begin = h2_begin,
    .header = h2_header,
    .header_block = h2_header_block,
    .end_head = h2_end_head,
    .end_stream = h2_end_stream,
    .body = h2_body,
    .body_file = h2_body_file,
    .body_ref = h2_body_ref,
    .body_reserve = h2_body_reserve,
    .body_commit = h2_body_commit,
    .body_end = h2_body_end,
    .interim = h2_interim,
    .kick = h2_kick,
    .reset = h2_reset,
    .queued = h2_queued,
    .unqueue = h2_unqueue,
    .cut = h2_cut,
    .raw = h2_raw,
};
