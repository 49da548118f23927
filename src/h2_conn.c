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
    H2_HTTP_1_1_REQUIRED = 0xd,
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
};

static pt_req *req_of(pt_conn *c, int32_t sid)
{
    for (pt_req *r = c->h2->reqs; r; r = r->h2_next)
        if (r->h2_sid == sid)
            return r;
    return NULL;
}

static void unlink_req(pt_conn *c, pt_req *r)
{
    for (pt_req **p = &c->h2->reqs; *p; p = &(*p)->h2_next)
        if (*p == r) {
            *p = r->h2_next;
            return;
        }
}

static void dispatch(pt_req *r)
{
    r->req_complete = true;
    pt_handler_start(r);
}

/* past the router: method, limits, then the handler. A handler that
 * takes the request body (the gateways) is not served on streams yet: the
 * stream is refused with HTTP_1_1_REQUIRED, which clients retry over
 * HTTP/1.1 (RFC 9113 §8.1) */
static void after_phases(pt_req *r)
{
    bool has_body = !r->h2_body_end;
    if (!pt_conn_admit(r, has_body))
        return;
    if (pt_handler_of(r->loc)->flags & PT_HF_BODY) {
        r->logged = true; /* the retry over HTTP/1.1 is the one logged */
        pt_h2_reset(r->conn->h2->s, r->h2_sid, H2_HTTP_1_1_REQUIRED);
        return;
    }
    /* a body means nothing to the others (RFC 9110 §9.3.1): dropped */
    dispatch(r);
}

static void on_request(void *ud, int32_t sid, const pt_head *h, bool end)
{
    pt_conn *c = ud;
    pt_worker *w = c->w;
    char *b = pt_worker_block_get(w);
    if (!b) {
        pt_h2_reset(c->h2->s, sid, H2_REFUSED_STREAM);
        return;
    }
    pt_req *r = (pt_req *)(void *)b;
    memset(r, 0, sizeof(*r));
    b += PT_REQ_SIZE;
    r->hdrs = (pt_header *)(void *)(b + w->in_cap);
    r->path = b + w->in_cap + sizeof(pt_header) * w->cfg->limits.max_headers;
    pt_conn_req_init(r, c);
    r->h2_sid = sid;
    r->head = *h;
    r->is_head = h->method == PT_M_HEAD;
    r->t_start = r->body_t0 = w->loop.now;
    r->t_wall = time(NULL);
    r->h2_body_end = end;
    r->h2_next = c->h2->reqs;
    c->h2->reqs = r;
    c->nreq++;
    if (h->error) {
        /* RFC 6585 §5 for a head over the limits, as for HTTP/1.1 */
        bool big = strcmp(h->error, "request head too large") == 0;
        r->req_complete = true;
        pt_conn_reject(r, big ? 431 : 501, h->error, false);
        return;
    }
    if (pt_conn_route(r, !end))
        after_phases(r);
}

static void on_body(void *ud, int32_t sid, const void *p, size_t n)
{
    (void)p;
    pt_req *r = req_of(ud, sid);
    if (r)
        r->body_rx += n; /* no handler on streams takes a body yet */
}

static void on_body_end(void *ud, int32_t sid)
{
    pt_req *r = req_of(ud, sid);
    if (r)
        r->h2_body_end = true;
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
    r->h2_closed = true;
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
    pt_worker_block_put(c->w, r);
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
    };
    struct pt_h2c *h = calloc(1, sizeof(*h));
    if (!h || !(h->s = pt_h2_new(&cbs, c, &hl))) {
        free(h);
        pt_conn_close(c);
        return 1;
    }
    c->h2 = h;
    c->framer = &pt_h2_framer;
    c->state = PT_CS_WRITE; /* never idle between requests: h2_conn.c decides */
    pt_timer_stop(&c->timer);
    size_t n = c->in_len;
    c->in_len = 0;
    h->in_session = true;
    if (pt_h2_recv(h->s, c->in, n) < 0)
        h->fatal = true;
    h->in_session = false;
    pt_h2c_flush(c);
    return 1;
}

void pt_h2c_io(pt_conn *c, uint32_t events)
{
    struct pt_h2c *h = c->h2;
    if (events & EPOLLERR) {
        pt_conn_close(c);
        return;
    }
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
        h->in_session = true;
        if (pt_h2_recv(h->s, rbuf, (size_t)n) < 0)
            h->fatal = true;
        h->in_session = false;
        if (c->state == PT_CS_CLOSED)
            return;
        /* a short read took what the socket had (epoll is level-triggered:
         * more wakes us again): a read to EAGAIN would be a system call
         * for nothing at every wake-up. Bytes OpenSSL read ahead are not
         * in the socket: they keep the loop going (BUFFERED) */
        if ((size_t)n < sizeof(rbuf) && !(c->sock.flags & PT_SOCK_BUFFERED))
            break;
    }
    pt_h2c_flush(c);
}

void pt_h2c_flush(pt_conn *c)
{
    struct pt_h2c *h = c->h2;
    if (!h || h->closing || h->in_session || c->state == PT_CS_CLOSED)
        return;
    pt_worker *w = c->w;
    size_t budget = H2_WRITE_PER_WAKEUP;
    bool wrote = false;
    for (;;) {
        if (c->out.bytes < H2_OUT_LOW) {
            h->in_session = true;
            ssize_t k = pt_h2_send(h->s, &c->out, H2_OUT_LOW);
            h->in_session = false;
            if (k < 0) {
                pt_conn_close(c);
                return;
            }
        }
        if (c->out.bytes == 0)
            break;
        ssize_t n = pt_cq_flush(&c->out, &c->sock, budget);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            pt_conn_close(c);
            return;
        }
        if (n <= 0)
            break;
        wrote = true;
        budget -= PT_MIN((size_t)n, budget);
        if (budget == 0)
            break;
    }
    bool want_read = !h->fatal && pt_h2_want_read(h->s);
    bool want_write = pt_h2_want_write(h->s);
    if (c->out.bytes == 0 && (h->fatal || (!want_read && !want_write))) {
        /* GOAWAY sent and every stream done (or a connection error): an
         * orderly close, close_notify first over TLS */
        c->sock.flags |= PT_SOCK_CLOSING;
        pt_sock_shutdown(&c->sock);
        pt_conn_close(c);
        return;
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
        if (!pt_timer_armed(&c->timer) || c->timer.list != &w->t_keepalive)
            pt_timer_arm(&w->loop, &c->timer, w->stopping ? &w->t_stop_idle : &w->t_keepalive);
    } else {
        pt_timer_stop(&c->timer); /* streams at work: their handlers' own timeouts */
    }
}

void pt_h2c_timer(pt_conn *c)
{
    if (c->out.bytes > 0)
        pt_log_info("client timed out while reading HTTP/2 frames, client: %s:%u",
                    pt_conn_peer_ip(c), pt_conn_peer_port(c));
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
    const char *srv = r->conn->w->server_header;
    pt_h2_resp_header(s, r->h2_sid, "date", 4, pt_httpdate_now(), PT_HTTPDATE_LEN);
    pt_h2_resp_header(s, r->h2_sid, "server", 6, srv, strlen(srv));
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

static int h2_interim(pt_req *r, const char *head, size_t n)
{
    (void)r;
    (void)head;
    (void)n;
    return 0; /* 1xx relay on streams: not yet (dropped, as a client may) */
}

static void h2_kick(pt_req *r)
{
    pt_h2c_flush(r->conn);
}

static void h2_reset(pt_req *r)
{
    pt_h2 *s = sess(r);
    if (s)
        pt_h2_reset(s, r->h2_sid, H2_INTERNAL_ERROR);
    pt_h2c_flush(r->conn);
}

const pt_framer pt_h2_framer = {
    .begin = h2_begin,
    .header = h2_header,
    .header_block = h2_header_block,
    .end_head = h2_end_head,
    .end_stream = h2_end_stream,
    .body = h2_body,
    .body_file = h2_body_file,
    .body_reserve = h2_body_reserve,
    .body_commit = h2_body_commit,
    .body_end = h2_body_end,
    .interim = h2_interim,
    .kick = h2_kick,
    .reset = h2_reset,
};
