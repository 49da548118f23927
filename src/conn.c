/* conn.c: the connection state machine (lighttpd's "loop until the state
 * stops changing"): read head -> validate -> route -> body -> respond ->
 * keep-alive or lingering close. One request at a time per connection, so
 * pipelined requests are answered in order; leftover bytes are parsed after
 * the response is flushed. */
#include "first.h"
#include "conn.h"
#include "locate.h"
#include "alog.h"
#include "cache.h"
#include "handler.h"
#include "h1_resp.h"
#include "h2_conn.h"
#include "log.h"
#include "realip.h"
#include "phases.h"
#include "resolve.h"
#include "router.h"
#include "stats.h"
#include "tls.h"
#include "tunnel.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* bytes one connection may write per wakeup before the others get their
 * turn: 2 MiB, as nginx's sendfile_max_chunk; at 512 KiB a 10 MiB file
 * took twice the wakeups and about 10% more server CPU per request */
#define PT_WRITE_PER_WAKEUP (2048u * 1024u)
#define PT_LINGER_BYTES (64u * 1024u)

static void drive(pt_conn *c);
static void after_phases(pt_conn *c);
static void stream_body(pt_conn *c);
static int eat_body(pt_conn *c);
static void body_error(pt_conn *c, int status, const char *why);
static bool body_too_slow(pt_conn *c);
static void reset_request(pt_conn *c);
static void drop_buffers(pt_conn *c);
/* the request calls of conn.h, on the connection's one request at a time */
static bool conn_error_page(pt_req *r, int status, bool close);
static void conn_reject(pt_req *r, int status, const char *why, bool close);
static const char *conn_request_id(pt_req *r);
static void conn_body_room(pt_conn *c);
static void conn_phases_done(pt_conn *c);
static void conn_redispatch(pt_conn *c);
static int conn_set_path(pt_req *r, const char *path, size_t len);
static int conn_reroute(pt_req *r, const char *uri, size_t len);
static void conn_local_redirect(pt_req *r, const char *loc, size_t len);

static void on_timer(pt_loop *l, pt_timer *t);
static void on_io(pt_loop *l, pt_io *io, uint32_t events);

static const pt_limits *limits(const pt_conn *c)
{
    return &c->w->cfg->limits;
}

void pt_conn_accept(pt_worker *w, int fd, const void *peer, unsigned peerlen, bool tls, bool proxy,
                    unsigned listener)
{
    pt_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->listener = (uint16_t)listener;
    pt_sock_init_plain(&c->sock, fd);
    c->sock.owner = c;
    if (tls && pt_tls_sock_init(&c->sock, w->cfg->tls.ctx, fd) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->id = ++w->conn_seq;
    c->framer = &pt_h1_framer;
    /* the text form is made only when a log line or a gateway needs it */
    const struct sockaddr *sa = peer;
    c->conn_af = AF_UNIX;
    if (peerlen >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = peer;
        c->conn_af = AF_INET;
        memcpy(c->conn_addr, &s4->sin_addr, 4);
        c->conn_port = ntohs(s4->sin_port);
    } else if (peerlen >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = peer;
        /* a v4-mapped client is the IPv4 one (its limit key is the same) */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            c->conn_af = AF_INET;
            memcpy(c->conn_addr, &s6->sin6_addr.s6_addr[12], 4);
        } else {
            c->conn_af = AF_INET6;
            memcpy(c->conn_addr, &s6->sin6_addr, 16);
        }
        c->conn_port = ntohs(s6->sin6_port);
    }
    pt_realip_accept(c, proxy);
    pt_cq_init(&c->out);
    pt_io_init(&c->io, fd, on_io, c);
    if (!c->sock.tls) {
        /* TLS stays level-triggered: OpenSSL reads ahead of what it hands
         * over, so a short SSL_read says nothing of the socket */
        pt_io_edge(&c->io);
        c->sock.edge = &c->io;
    }
    pt_timer_init(&c->timer, on_timer, c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    reset_request(c);
    c->state = PT_CS_IDLE;
    /* the first request's head must arrive within header_timeout */
    pt_timer_arm(&w->loop, &c->timer, &w->t_header);
    /* A client usually sends its request right behind the handshake: read
     * at once; epoll is asked only when there is nothing yet (drive). */
    on_io(&w->loop, &c->io, EPOLLIN);
}

static void addr_text(char *t, int af, const unsigned char *addr)
{
    if (af == AF_INET) {
        pt_ipv4_text(t, addr);
        return;
    }
    if (af == AF_UNIX || !inet_ntop(af, addr, t, 48))
        snprintf(t, 48, "unix");
}

const char *pt_conn_req_ip(pt_req *r)
{
    if (r->peer_ip[0] != '\0')
        return r->peer_ip;
    pt_conn *c = r->conn;
    /* realip may have named another client for this request */
    if (r->peer_af != AF_INET || c->conn_af != AF_INET || memcmp(r->peer_addr, c->conn_addr, 4)) {
        addr_text(r->peer_ip, r->peer_af, r->peer_addr);
        return r->peer_ip;
    }
    if (!c->ip4_text[0])
        pt_ipv4_text(c->ip4_text, c->conn_addr);
    memcpy(r->peer_ip, c->ip4_text, sizeof(c->ip4_text)); /* every keep-alive request's */
    return r->peer_ip;
}

const char *pt_conn_peer_ip(pt_conn *c)
{
    /* kept with the request; without one (a connection-level log line) made each time */
    static char idle[48];
    if (c->rq)
        return pt_conn_req_ip(c->rq);
    addr_text(idle, c->conn_af, c->conn_addr);
    return idle;
}

uint16_t pt_conn_peer_port(const pt_conn *c)
{
    return c->rq ? c->rq->peer_port : c->conn_port;
}

/* The targets of a request's internal redirects (local redirects,
 * try_files, error_page), newest first, each block linked to the one
 * before. The head's target, path and query may point into any of them
 * until the request ends. */
struct pt_redir {
    struct pt_redir *prev;
    char text[];
};

static char *redir_push(pt_req *r, const char *s, size_t len)
{
    struct pt_redir *b = malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    b->prev = r->redir;
    memcpy(b->text, s, len);
    b->text[len] = '\0';
    r->redir = b;
    return b->text;
}

static void access_log(pt_req *r);

static void release_request(pt_conn *c)
{
    pt_tunnel_release(c);
    pt_conn_req_end(c->rq);
}

void pt_conn_req_end(pt_req *r)
{
    if (r && r->limit_hold.t)
        pt_limit_conn_release(&r->limit_hold);
    pt_handler_done(r);
    if (!r)
        return;
    pt_body_free(&r->body);
    while (r->redir) {
        struct pt_redir *prev = r->redir->prev;
        free(r->redir);
        r->redir = prev;
    }
}

void pt_conn_req_init(pt_req *r, pt_conn *c)
{
    r->conn = c;
    pt_realip_reset(r); /* the client is the connection's until realip says otherwise */
    pt_body_init(&r->body, (size_t)limits(c)->body_memory, c->w->cfg->tmp_dir);
    r->allow = "GET, HEAD, OPTIONS";
}

void pt_conn_log(pt_req *r)
{
    r->logged = true;
    access_log(r);
    pt_stats_request(r->status, (r->h2_sid ? 0 : r->conn->head_len) + r->body_rx, r->bytes_written);
}

static void log_request(pt_conn *c);

void pt_conn_close(pt_conn *c)
{
    if (c->state == PT_CS_CLOSED)
        return;
    pt_worker *w = c->w;
    pt_h2c_close(c); /* HTTP/2: its streams end as client disconnects */
    /* a dispatched request cut short (the client left, a write failed) is
     * logged and counted too: with the status sent, or 499 (nginx's "client
     * closed the request") when nothing was */
    if (c->rq && c->rq->req_complete && !c->rq->logged) {
        if (!c->rq->status)
            c->rq->status = 499;
        log_request(c);
    }
    /* workers never fork, so the socket is not shared: close() unregisters it */
    pt_io_closing(&w->loop, &c->io);
    pt_timer_stop(&c->timer);
    pt_sock_close(&c->sock);
    c->fd = -1;
    c->state = PT_CS_CLOSED;
    pt_router_abort(c->rq);
    /* the client is gone: the program has nobody to answer (a request
     * waiting for a slot leaves the queue). Once the whole response is out
     * (gw_done), closing the connection is no reason to kill it: a program
     * may still be at work after closing its stdout; release_request
     * detaches it, and it has its timeout to exit */
    if (!c->rq || !c->rq->gw_done)
        pt_handler_release(c->rq, true);
    release_request(c);
    pt_cq_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->dead_next = w->dead;
    w->dead = c;
    pt_worker_conn_gone(w);
}

void pt_conn_free(pt_conn *c)
{
    drop_buffers(c);
    pt_realip_free(c);
    free(c);
}

/* An idle connection at a graceful stop is not closed at once: its client
 * may be sending the next request right now, and closing would lose it
 * (with unread bytes, close() even sends a reset). It gets a short grace;
 * a request that comes is answered with "Connection: close" (start_request
 * sees stopping). Only a client that waits longer than the grace meets the
 * race RFC 9112 §9.6 leaves to every server closing an idle connection. */
static void stop_grace(pt_conn *c)
{
    if (c->timer.list != &c->w->t_stop_idle)
        pt_timer_arm(&c->w->loop, &c->timer, &c->w->t_stop_idle);
}

void pt_conn_stop(pt_conn *c)
{
    if (c->state == PT_CS_LINGER || c->state == PT_CS_CLOSED)
        return;
    if (c->h2) {
        pt_h2c_stop(c); /* GOAWAY: the streams taken finish */
        return;
    }
    /* A connection accepted before the stop but without its first request
     * yet is no idle one: its client connected to send it, and over TLS it
     * may be in the middle of its handshake, whose next flight needs a
     * round trip through the client. It keeps header_timeout (running
     * since the accept), as it would have had from the next generation had
     * the stop left it in the listen queue; the request is answered with
     * "Connection: close". */
    if (c->state == PT_CS_IDLE && c->in_len == 0 && c->nreq == 0)
        return;
    if (c->state == PT_CS_IDLE && c->in_len == 0) {
        stop_grace(c);
        return;
    }
    /* a request in progress (a gateway's above all) is answered; its
     * response says "Connection: close" unless its head is already queued,
     * then the connection gets the grace after it (drive) */
    if (!c->rq || c->rq->status == 0)
        c->close_after = true;
}

/* Bytes waiting in the socket's receive buffer (the next request of a
 * connection about to be closed as idle). Over TLS the first part of a
 * record counts only at a graceful stop, which shutdown_timeout bounds:
 * otherwise a client trickling record bytes would keep an idle connection
 * for ever, where a plain one starts header_timeout with its first byte. */
static bool input_waiting(pt_conn *c)
{
    int n = pt_sock_pending(&c->sock);
    return n == 1 || (n == 2 && c->w->stopping);
}

/* The request's first line, raw (0: none): HTTP/1.1's as sent; an HTTP/2
 * stream's made from its pseudo-fields into tmp, as nginx logs it. */
static size_t first_line(const pt_req *r, const char **out, char *tmp, size_t cap)
{
    const pt_conn *c = r->conn;
    if (r->h2_sid) {
        int n =
            snprintf(tmp, cap, "%.*s %.*s HTTP/2.0", (int)PT_MIN(r->head.method_str.len, 64),
                     r->head.method_str.p, (int)PT_MIN(r->head.target.len, 1024), r->head.target.p);
        *out = tmp;
        return n < 0 ? 0 : PT_MIN((size_t)n, cap - 1);
    }
    const char *p = c->in;
    size_t len = p ? (c->head_len ? c->head_len : c->in_len) : 0;
    while (len >= 2 && p[0] == '\r' && p[1] == '\n') {
        p += 2;
        len -= 2;
    }
    const char *nl = len ? memchr(p, '\n', len) : NULL;
    size_t l = nl ? (size_t)(nl - p) : len;
    if (l > 0 && p[l - 1] == '\r')
        l--;
    *out = p;
    return l;
}

/* Escaped first line of the head for logs ("-" when none). */
static void request_line(const pt_req *r, char *out, size_t cap)
{
    char tmp[1100];
    const char *p = NULL;
    size_t l = first_line(r, &p, tmp, sizeof(tmp));
    if (l == 0) {
        snprintf(out, cap, "-");
        return;
    }
    pt_escape_log(p, PT_MIN(l, (size_t)1024), out, cap);
}

static const pt_location *route(const pt_vhost *v, const char *path, size_t len);
static void index_reroute(pt_req *r);

static bool conn_error_page(pt_req *r, int status, bool close)
{
    if (!r)
        return false;
    pt_conn *c = r->conn;
    const pt_head *h = &r->head;
    /* a body left unread, or another method: the plain page (nginx sends
     * error pages to GET and HEAD only); an error while serving the error
     * page gets the plain page too, so nothing loops */
    if (close || r->err_status || !r->loc || !r->vhost ||
        (h->method != PT_M_GET && h->method != PT_M_HEAD))
        return false;
    const char *page = pt_phases_errpage_find(r->loc->ph.error_pages, status);
    if (!page)
        return false;
    const pt_location *was = r->loc;
    const pt_auth_cfg *authed = pt_router_authed(r);
    r->err_status = status;
    if (conn_reroute(r, page, strlen(page)) < 0 || !r->loc ||
        !(pt_handler_of(r->loc)->flags & PT_HF_FILES) || !pt_router_errpage_ok(r, authed)) {
        /* error pages are static files (a gateway may be the one failing) */
        r->loc = was;
        return false;
    }
    c->state = PT_CS_WRITE;
    r->req_complete = true;
    pt_handler_start(r);
    return true;
}

static void conn_reject(pt_req *r, int status, const char *why, bool close)
{
    pt_conn *c = r->conn;
    /* a missing file is routine (nginx's log_not_found off): debug only */
    int level = status == 404 ? PT_LOG_DEBUG : PT_LOG_INFO;
    if (pt_log_level() >= level) {
        char rl[1100];
        request_line(r, rl, sizeof(rl));
        pt_log(level, "%d %s%s%s%s, client: %s:%u, request: \"%s\"", status,
               pt_status_reason(status), why ? " (" : "", why ? why : "", why ? ")" : "",
               pt_conn_req_ip(r), r->peer_port, rl);
    }
    if (!close && pt_cache_stale_on_error(r, status, why))
        return;
    if (conn_error_page(r, status, close))
        return;
    /* the error page itself failed: the plain page, with the first status */
    pt_resp_error(r, r && r->err_status ? r->err_status : status, close);
    c->state = PT_CS_WRITE;
}

static const char *conn_request_id(pt_req *r)
{
    if (!r)
        return "-";
    pt_conn *c = r->conn;
    if (!r->request_id[0])
        pt_alog_request_id(c->head_len || r->h2_sid ? &r->head : NULL,
                           c->w->cfg->request_id == PT_RID_CLIENT, r->request_id);
    return r->request_id;
}

/* The line's fields come from the connection; the format (access_log_format)
 * and the escaping are alog.c's. */
static void access_log(pt_req *r)
{
    pt_conn *c = r->conn;
    int h = r->vhost ? c->w->acc_handles[r->vhost - c->w->cfg->vhosts] : pt_access_log_default();
    if (h < 0)
        return;
    const pt_alog_fmt *f = &c->w->cfg->access_log_format;
    char tmp[1100];
    const char *p = NULL;
    size_t l = first_line(r, &p, tmp, sizeof(tmp));
    if (l == 0) {
        p = "-";
        l = 1;
    }
    const pt_head *hd = c->head_len || r->h2_sid ? &r->head : NULL;
    pt_alog_rec rec = {
        .remote_addr = pt_conn_req_ip(r),
        .remote_port = r->peer_port,
        .t_wall = r->t_wall,
        .request_line = p,
        .request_line_len = PT_MIN(l, (size_t)1024),
        .head = hd,
        .status = r->status,
        .body_bytes = r->bytes_written > r->head_out_len ? r->bytes_written - r->head_out_len : 0,
        .bytes_sent = r->bytes_written,
        .bytes_received = (r->h2_sid ? 0 : c->head_len) + r->body_rx,
        .request_ms = c->w->loop.now - r->t_start,
        .gateway_ms = -1,
        .request_id = f->uses_request_id ? conn_request_id(r) : NULL,
        .host = NULL,
        .proxy_addr = c->tcp_addr,
        .proxy_af = c->tcp_af,
        .cache_status = pt_cache_status_name(r->cache_status),
    };
    /* the time spent in the gateway (CGI or FastCGI) */
    if (r->gw_t_start)
        rec.gateway_ms = (int64_t)(r->gw_ms_set ? r->gw_ms : c->w->loop.now - r->gw_t_start);
    char host[256];
    if (hd && hd->host.len) {
        size_t hl = PT_MIN(hd->host.len, sizeof(host) - 1);
        memcpy(host, hd->host.p, hl);
        host[hl] = '\0';
        rec.host = host;
    }
    char line[4096];
    size_t n = pt_alog_format(f, &rec, line, sizeof(line));
    if (n > 0)
        pt_access_log_write(h, line, n);
}

/* pt_req_zero zeroes pt_req but its text buffers, which must come last */
_Static_assert(sizeof(pt_req) - (offsetof(pt_req, auth_user) + sizeof(((pt_req *)0)->auth_user)) <
                       _Alignof(pt_req) &&
                   offsetof(pt_req, local_ip) == offsetof(pt_req, peer_ip) + 48 &&
                   offsetof(pt_req, local_port) == offsetof(pt_req, local_ip) + 48 &&
                   offsetof(pt_req, request_id) == offsetof(pt_req, local_port) + 8 &&
                   offsetof(pt_req, auth_user) == offsetof(pt_req, request_id) + 129,
               "pt_req's text buffers are its last fields, in this order");

/* One pooled block per active connection: the request state (pt_req),
 * the input buffer, header slots and the normalised path. Idle keep-alive
 * connections give it back, so memory per idle connection is the struct
 * alone, and the pool keeps the hot path free of malloc. */
static int ensure_buffers(pt_conn *c)
{
    if (c->rq)
        return 0;
    pt_worker *w = c->w;
    char *b = pt_worker_block_get(w);
    if (!b)
        return -1;
    c->rq = (pt_req *)(void *)b;
    pt_req_zero(c->rq);
    c->rq->conn = c;
    pt_realip_reset(c->rq); /* the client is the connection's until realip says otherwise */
    pt_body_init(&c->rq->body, (size_t)limits(c)->body_memory, w->cfg->tmp_dir);
    b += PT_REQ_SIZE;
    c->in = b;
    c->in_cap = w->in_cap;
    c->rq->hdrs = (pt_header *)(void *)(b + w->in_cap);
    c->rq->path = b + w->in_cap + sizeof(pt_header) * limits(c)->max_headers;
    c->rq->allow = "GET, HEAD, OPTIONS";
    return 0;
}

/* Only between requests: the request state must be released already. */
static void drop_buffers(pt_conn *c)
{
    if (c->rq)
        pt_worker_block_put(c->w, c->rq);
    c->rq = NULL;
    c->in = NULL;
    c->in_cap = 0;
}

static void shrink_idle(pt_conn *c)
{
    if (c->in_len == 0)
        drop_buffers(c);
    pt_cq_free(&c->out);
}

static void reset_request(pt_conn *c)
{
    release_request(c);
    if (c->rq) {
        memset(&c->rq->head, 0, sizeof(c->rq->head));
        c->rq->request_id[0] = '\0';
        pt_body_init(&c->rq->body, (size_t)limits(c)->body_memory, c->w->cfg->tmp_dir);
    }
    c->head_len = 0;
    if (c->rq) {
        c->rq->head_out_start = c->rq->head_out_len = c->rq->bytes_written = 0;
        c->rq->chunked_out = false;
        c->rq->body_pos = 0;
        c->rq->is_head = c->rq->head_only = c->rq->body_chunked = false;
        c->rq->req_complete = c->rq->logged = c->rq->body_collect = false;
        c->rq->body_left = 0;
        c->rq->status = 0;
        c->rq->vhost = NULL;
        c->rq->loc = NULL;
        c->rq->allow = "GET, HEAD, OPTIONS";
        c->rq->gw_done = false;
        c->rq->gw_t_start = c->rq->gw_ms = 0;
        c->rq->gw_ms_set = false;
        c->rq->redirects = 0;
        c->rq->err_status = 0;
        c->rq->body_t0 = c->rq->body_rx = c->rq->body_stall = 0;
        c->rq->body_streaming = c->rq->body_done = false;
        c->rq->cache_status = 0;
        c->rq->cache_skip = false;
        c->rq->cache_wait_t0 = c->rq->cache_gen = 0;
        c->rq->phases_dispatch = false;
    }
    pt_realip_reset(c->rq);
}

static ssize_t read_some(pt_conn *c);

/* Wait for input; false when there is none. TLS may need to write first
 * (a handshake flight), or hold decrypted bytes that epoll cannot show (a
 * record longer than the room that was left): those are read now, and
 * true says go on. */
static bool more_input(pt_conn *c)
{
    if (c->sock.flags & PT_SOCK_BUFFERED) {
        ssize_t n = read_some(c);
        if (n > 0) {
            if (c->state == PT_CS_BODY)
                c->rq->body_rx += (uint64_t)n;
            return true;
        }
        if (n == 0 || n == -2) {
            pt_conn_close(c);
            return true;
        }
    }
    uint32_t ev = EPOLLIN | EPOLLRDHUP;
    if (c->sock.flags & PT_SOCK_WANT_WRITE)
        ev |= EPOLLOUT;
    pt_io_set(&c->w->loop, &c->io, ev);
    return false;
}

/* A request head that begins on a TLS port without a handshake: plain
 * HTTP, answered with a plain 400 and a close (nginx's "The plain HTTP
 * request was sent to HTTPS port"). */
static void plain_on_tls(pt_conn *c)
{
    c->sock.flags &= ~(unsigned)PT_SOCK_PLAIN_ON_TLS;
    c->state = PT_CS_HEAD;
    c->rq->t_start = c->w->loop.now;
    c->rq->t_wall = time(NULL);
    conn_reject(c->rq, 400, "plain HTTP request sent to a TLS port", true);
}

/* Read once into the input buffer. Returns >0 bytes, 0 on EOF, -1 on
 * EAGAIN (nothing to do), -2 on a hard error. */
static ssize_t read_some(pt_conn *c)
{
    if (ensure_buffers(c) < 0)
        return -2;
    size_t space = c->in_cap - c->in_len;
    if (space == 0)
        return -1;
    ssize_t n = pt_sock_read(&c->sock, c->in + c->in_len, space);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            return -2;
        if (c->state == PT_CS_IDLE && c->in_len == 0)
            drop_buffers(c); /* nothing came: an idle connection holds no block */
        return -1;
    }
    c->in_len += (size_t)n;
    return n;
}

static bool method_allowed_static(pt_method m)
{
    return m == PT_M_GET || m == PT_M_HEAD || m == PT_M_OPTIONS;
}

/* What the request's handler asks of the connection (PT_HF_*). */
static bool handler_wants(const pt_location *l, unsigned flag)
{
    return (pt_handler_of(l)->flags & flag) != 0;
}

static void dispatch(pt_conn *c)
{
    c->state = PT_CS_WRITE;
    c->rq->req_complete = true;
    pt_handler_start(c->rq);
}

/* Location for a normalised path: the precedence lives in locate.c. */
static const pt_location *route(const pt_vhost *v, const char *path, size_t len)
{
    return pt_locate(v, path, len);
}

/* A directory whose index file is served by a gateway ("index.php" with a
 * ".php" FastCGI rule): route to that file, as nginx's index + try_files
 * and lighttpd's index-file.names do. The vhost's index order holds: an
 * earlier index file that exists stays a static answer. The file is looked
 * for by the resolver beneath the root (rootfd) under the directory's
 * symlink policy; the gateway resolves its script again under its own. */
static int try_index(pt_req *r, int rootfd, const char *root, size_t off, bool follow,
                     bool keep_loc, const char *idx, size_t il)
{
    pt_conn *c = r->conn;
    if (r->path_len + il > c->w->path_cap)
        return -1;
    memcpy(r->path + r->path_len, idx, il);
    r->path[r->path_len + il] = '\0';
    struct stat st;
    int fd = pt_resolve_stat(rootfd, root, r->path + off, O_PATH | O_CLOEXEC, follow, &st);
    if (fd >= 0)
        close(fd);
    if (fd < 0 || !S_ISREG(st.st_mode)) {
        r->path[r->path_len] = '\0';
        return 0;
    }
    /* a script directory keeps its location: the index is its script */
    const pt_location *l = keep_loc ? r->loc : route(r->vhost, r->path, r->path_len + il);
    if (l && !handler_wants(l, PT_HF_FILES)) {
        r->path_len += il;
        r->loc = l;
    } else {
        r->path[r->path_len] = '\0';
    }
    return 1;
}

/* Would the index file idx of the directory c->rq->path go to a gateway? */
static bool index_leaves_static(pt_req *r, const char *idx, size_t il)
{
    pt_conn *c = r->conn;
    if (r->path_len + il > c->w->path_cap)
        return false;
    memcpy(r->path + r->path_len, idx, il);
    const pt_location *l = route(r->vhost, r->path, r->path_len + il);
    r->path[r->path_len] = '\0';
    return l && !handler_wants(l, PT_HF_FILES);
}

/* The "index<ext>" name of an extension rule e whose handler offers one
 * (FastCGI's "index.php") in name (64 bytes): its length, 0 when none. */
static size_t ext_index_name(const pt_location *e, char *name)
{
    if (e->match != PT_MATCH_EXT || !handler_wants(e, PT_HF_INDEX_EXT) || e->pattern_len > 50)
        return 0;
    return (size_t)snprintf(name, 64, "index%s", e->pattern);
}

/* A gateway location whose paths map onto a directory of scripts ("dir"
 * or "alias"): a directory there is served by its index file, as every
 * peer does (phpMyAdmin's "/phpmyadmin/" is its index.php). */
static bool is_script_dir(const pt_location *l)
{
    return handler_wants(l, PT_HF_SCRIPT_DIR) && l->cgi_dir && !l->cgi_program;
}

static void index_reroute(pt_req *r)
{
    const pt_vhost *v = r->vhost;
    if (!r->loc || r->path_len == 0 || r->path[r->path_len - 1] != '/')
        return;
    bool gw_dir = is_script_dir(r->loc);
    if (r->loc->alias_tmpl)
        return; /* a regex location's alias: its index files are static */
    if (!handler_wants(r->loc, PT_HF_FILES) && !gw_dir)
        return;
    /* when every candidate stays static, the static handler finds the
     * index itself: no look at the file system here */
    bool away = gw_dir;
    char name[64];
    for (size_t i = 0; i < v->nindex && !away; i++)
        away = index_leaves_static(r, v->index[i], strlen(v->index[i]));
    for (size_t k = 0; k < v->nlocs && !away; k++) {
        size_t n = ext_index_name(&v->locs[k], name);
        away = n > 0 && index_leaves_static(r, name, n);
    }
    if (!away)
        return;
    const char *root, *rel;
    int rootfd;
    bool own, follow = pt_resolve_follow(v, r->loc);
    if (gw_dir) {
        /* a script directory: "dir" maps what follows the prefix, as alias */
        const pt_location *l = r->loc;
        size_t pfx = l->pattern_len;
        if (pfx > 0 && l->pattern[pfx - 1] == '/')
            pfx--;
        root = l->cgi_dir;
        rootfd = l->dir_fd;
        own = false;
        size_t off = PT_MIN(pfx, r->path_len);
        while (off < r->path_len && r->path[off] == '/')
            off++;
        rel = r->path + off;
    } else if (pt_router_base(r, r->loc, r->path, r->path_len, &root, &rootfd, &own, &rel) < 0) {
        return; /* the static handler reports it */
    }
    size_t off = (size_t)(rel[0] == '.' && rel[1] == '\0' ? r->path_len : (size_t)(rel - r->path));
    if (rootfd < 0)
        return; /* the handler reports it */
    for (size_t i = 0; i < v->nindex; i++)
        if (try_index(r, rootfd, root, off, follow, gw_dir, v->index[i], strlen(v->index[i])) != 0)
            goto out;
    /* then "index.php" for a ".php" FastCGI rule, like php -S and
     * lighttpd's default index-file.names */
    for (size_t k = 0; k < v->nlocs; k++) {
        size_t n = ext_index_name(&v->locs[k], name);
        if (n > 0 && try_index(r, rootfd, root, off, follow, gw_dir, name, n) != 0)
            goto out;
    }
out:
    if (own)
        close(rootfd);
}

/* limit_conn and limit_req of the request's location, checked before any
 * work (and before the body is read): over either, 429 with Retry-After
 * (RFC 6585 §4). Returns true when the request was refused. */
static bool over_limits(pt_req *r, bool has_body)
{
    pt_conn *c = r->conn;
    const pt_location *l = r->loc;
    const pt_limit_zone *z = NULL;
    pt_limit_table *t = pt_limit_table_current();
    pt_limit_rc rc = PT_LIMIT_OK;
    uint64_t wait_ns = 1000000000ULL; /* limit_conn: nothing says when one ends */
    if (!t)
        return false;
    if (l->limit_conn >= 0) {
        z = &c->w->cfg->zones[l->limit_conn];
        rc =
            pt_limit_conn_acquire(t, (uint32_t)l->limit_conn, z->conn, r->peer_key, &r->limit_hold);
    }
    if (rc == PT_LIMIT_OK && l->limit_req >= 0) {
        z = &c->w->cfg->zones[l->limit_req];
        rc = pt_limit_req(t, (uint32_t)l->limit_req, z->interval_ns, z->burst, r->peer_key,
                          pt_limit_now_ns(), &wait_ns);
    }
    if (rc == PT_LIMIT_OK)
        return false;
    if (rc == PT_LIMIT_FULL)
        PT_STATS_ADD(pt_stats_my->limit_full, 1);
    else if (z->is_req)
        PT_STATS_ADD(pt_stats_my->limit_req, 1);
    else
        PT_STATS_ADD(pt_stats_my->limit_conn, 1);
    /* whole seconds, rounded up: a client that waits that long is admitted */
    unsigned secs = (unsigned)PT_MAX(PT_MIN((wait_ns + 999999999ULL) / 1000000000ULL, 86400ULL), 1);
    char rl[1100], what[96];
    request_line(r, rl, sizeof(rl));
    if (z->is_req)
        snprintf(what, sizeof(what), "limit_req %s burst %u", z->rate, z->burst);
    else
        snprintf(what, sizeof(what), "limit_conn %u", z->conn);
    if (rc == PT_LIMIT_FULL)
        pt_log_warn("limit table full (limits.limit_entries = %zu): no room for a new address "
                    "(%s, set at %s), client: %s:%u, request: \"%s\"",
                    pt_limit_table_entries(t), what, z->where, pt_conn_req_ip(r), r->peer_port, rl);
    else
        pt_log_warn("limiting requests (%s per address, set at %s), retry after %us, client: "
                    "%s:%u, request: \"%s\"",
                    what, z->where, secs, pt_conn_req_ip(r), r->peer_port, rl);
    /* an unread body would be taken for the next request: close after it */
    pt_resp_error_retry(r, rc == PT_LIMIT_FULL ? 503 : 429, has_body, secs);
    c->state = PT_CS_WRITE;
    return true;
}

static void start_request(pt_conn *c)
{
    const pt_limits *lim = limits(c);
    pt_head *h = &c->rq->head;
    c->nreq++;
    c->rq->is_head = h->method == PT_M_HEAD;
    if (!h->keep_alive || c->nreq >= lim->keepalive_requests || c->w->stopping)
        c->close_after = true;

    bool has_body = h->is_chunked || h->content_length > 0;
    if (pt_conn_route(c->rq, has_body))
        after_phases(c);
}

bool pt_conn_route(pt_req *r, bool has_body)
{
    pt_conn *c = r->conn;
    pt_head *h = &r->head;
    if (h->authority_form || h->method == PT_M_CONNECT) {
        /* RFC 9110 §9.3.6: CONNECT asks a proxy for a tunnel; an origin
         * server refuses it (as nginx does). Close: bytes behind it may be
         * the tunnel's (a TLS hello sent ahead), never a next request. */
        conn_reject(r, 405, "CONNECT: not a proxy", true);
        return false;
    }
    if (h->target.len == 1 && h->target.p[0] == '*') {
        if (h->method != PT_M_OPTIONS) {
            conn_reject(r, 400, "asterisk-form needs OPTIONS", true);
            return false;
        }
        return true;
    }
    ssize_t n = pt_path_normalize(h->path.p, h->path.len, r->path);
    if (n < 0) {
        conn_reject(r, 400, "invalid path", true);
        return false;
    }
    r->path_len = (size_t)n;
    r->vhost = pt_config_vhost(c->w->cfg, h->host.p, h->host.len);
    if (pt_tls_misdirected(&c->sock, r->vhost)) {
        conn_reject(r, 421,
                    "Host names a virtual host that asks for client certificates, "
                    "the TLS handshake (SNI) chose another",
                    has_body);
        return false;
    }
    r->loc = route(r->vhost, r->path, r->path_len);
    index_reroute(r);
    if (r->loc && r->loc->internal) {
        /* only internal redirects (X-Accel-Redirect, local redirects)
         * reach it, as nginx's "internal" */
        conn_reject(r, 404, "internal location", has_body);
        return false;
    }
    /* access rules, authentication, return (router.c) */
    pt_route_rc rc = pt_router_run(r, has_body);
    if (rc == PT_ROUTE_WAIT && !r->h2_sid)
        c->state = PT_CS_WRITE; /* nothing to send yet: see waiting() */
    return rc == PT_ROUTE_CONTINUE;
}

bool pt_conn_admit(pt_req *r, bool has_body)
{
    const pt_limits *lim = limits(r->conn);
    const pt_head *h = &r->head;
    if (!handler_wants(r->loc, PT_HF_METHODS) && !method_allowed_static(h->method)) {
        /* the body was not read: the connection cannot be reused */
        conn_reject(r, 405, NULL, has_body);
        return false;
    }
    if (h->content_length >= 0 && (uint64_t)h->content_length > lim->max_body) {
        /* RFC 9110 §15.5.14: refuse before reading; no 100 Continue */
        conn_reject(r, 413, "Content-Length over max_body", true);
        return false;
    }
    if (r->loc && (r->loc->limit_conn >= 0 || r->loc->limit_req >= 0) && over_limits(r, has_body))
        return false;
    return true;
}

/* The request past the router's phases: method, body, limits, handler. */
static void after_phases(pt_conn *c)
{
    const pt_limits *lim = limits(c);
    pt_head *h = &c->rq->head;
    bool has_body = h->is_chunked || h->content_length > 0;
    if (!pt_conn_admit(c->rq, has_body))
        return;
    if (!has_body) {
        dispatch(c);
        return;
    }
    /* A gateway gets the whole body first, so CONTENT_LENGTH is always
     * known and a slow uploader never holds a process or a FastCGI backend
     * (RFC 3875 §4.1.2). A body on
     * GET/HEAD/OPTIONS has no meaning for static files (RFC 9110 §9.3.1)
     * but must be read to keep the connection in sync. */
    c->rq->body_collect = handler_wants(c->rq->loc, PT_HF_BODY);
    c->rq->body_chunked = h->is_chunked;
    c->rq->body_left = h->is_chunked ? 0 : (uint64_t)h->content_length;
    if (h->is_chunked)
        pt_chunked_init(&c->rq->chunked, lim->max_body, lim->header_buffer);
    c->rq->body_pos = c->head_len;
    c->rq->body_t0 = c->w->loop.now;
    c->rq->body_rx = c->in_len - c->head_len;
    c->state = PT_CS_BODY;
    if (h->expect_continue && c->in_len == c->head_len) {
        pt_cq_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        ssize_t w = pt_cq_flush(&c->out, &c->sock, PT_WRITE_PER_WAKEUP);
        (void)w;
    }
    if (c->rq->loc && !c->rq->loc->request_buffering &&
        handler_wants(c->rq->loc, PT_HF_STREAM_BODY) &&
        (!h->is_chunked || handler_wants(c->rq->loc, PT_HF_STREAM_CHUNKED))) {
        /* the upstream gets the body as it arrives: the gateway starts now
         * and the body is read alongside (stream_body) */
        c->rq->body_streaming = true;
        dispatch(c);
        if (c->state == PT_CS_WRITE)
            stream_body(c);
        return;
    }
    pt_timer_arm(&c->w->loop, &c->timer, &c->w->t_body);
}

/* request_buffering = false: body bytes waiting for the gateway stop the
 * reading of more at this many (back-pressure: a slow upstream holds the
 * uploader, not the worker's memory) */
#define PT_STREAM_HIGH (64u * 1024u)

static bool stream_wants_input(const pt_conn *c)
{
    return c->rq && c->rq->body_streaming && !c->rq->body_done && c->rq->gw &&
           c->rq->body.len < PT_STREAM_HIGH;
}

/* Read and decode what the client sent of a streamed body, while the
 * gateway has room for it; the gateway sends it on (drive -> drain). */
static void stream_body(pt_conn *c)
{
    pt_req *rq = c->rq;
    for (int i = 0; i < 16; i++) {
        int r = eat_body(c);
        if (r < 0)
            return;
        if (r == 1) {
            rq->body_done = true;
            return;
        }
        if (!stream_wants_input(c)) {
            /* back-pressure: the upstream is slow, not the client, so the
             * pause does not count against body_min_rate */
            if (!rq->body_stall)
                rq->body_stall = c->w->loop.now ? c->w->loop.now : 1;
            return;
        }
        if (rq->body_stall) {
            rq->body_t0 += c->w->loop.now - rq->body_stall;
            rq->body_stall = 0;
        }
        ssize_t n = read_some(c);
        if (n == -1)
            return;
        if (n == 0 || n == -2) {
            body_error(c, 400, "client closed the connection before the end of the body");
            return;
        }
        rq->body_rx += (uint64_t)n;
        /* a body trickled below the minimum rate is cut off as a collected
         * one is: it would hold an upstream connection (and the backend
         * process behind it) for as long as it trickles */
        if (body_too_slow(c))
            return;
    }
}

static void conn_body_room(pt_conn *c)
{
    if (c->state != PT_CS_WRITE || c->out.bytes > 0 || !stream_wants_input(c))
        return;
    /* decrypted TLS input shows on no epoll event: a writable one wakes us */
    pt_io_set(&c->w->loop, &c->io,
              EPOLLIN | EPOLLRDHUP | (c->sock.flags & PT_SOCK_BUFFERED ? EPOLLOUT : 0));
}

static void conn_phases_done(pt_conn *c)
{
    if (c->rq->phases_dispatch) {
        c->rq->phases_dispatch = false;
        dispatch(c); /* a local redirect's new request: no body, no limits again */
    } else {
        after_phases(c);
    }
    drive(c);
}

/* A request body that cannot be read on: the error page; or, when it
 * streams to a gateway that may be answering already (request_buffering =
 * false), the connection closed (the upstream sees a cut request). */
static void body_error(pt_conn *c, int status, const char *why)
{
    if (!c->rq->body_streaming) {
        conn_reject(c->rq, status, why, true);
        return;
    }
    if (c->rq->gw && c->rq->status == 0 && c->out.bytes == 0 && c->rq->bytes_written == 0) {
        /* the upstream has not begun its answer: it gets a cut request and
         * the client the status a collected body would have had */
        pt_handler_release(c->rq, true);
        conn_reject(c->rq, status, why, true);
        return;
    }
    char rl[1100];
    request_line(c->rq, rl, sizeof(rl));
    pt_log_info("%s while streaming the request body; closing, client: %s:%u, request: \"%s\"", why,
                pt_conn_peer_ip(c), pt_conn_peer_port(c), rl);
    pt_conn_close(c);
}

/* Consume body bytes in the buffer. Returns 1 when the body is complete,
 * 0 when more is needed, -1 after queuing an error. */
static int eat_body(pt_conn *c)
{
    size_t avail = c->in_len - c->rq->body_pos;
    if (!c->rq->body_chunked) {
        size_t n = (size_t)PT_MIN((uint64_t)avail, c->rq->body_left);
        if (c->rq->body_collect && n &&
            pt_body_append(&c->rq->body, c->in + c->rq->body_pos, n) < 0) {
            pt_log_error("cannot store a request body in %s: %s", c->w->cfg->tmp_dir,
                         strerror(errno));
            body_error(c, 500, "request body storage failed");
            return -1;
        }
        c->rq->body_pos += n;
        c->rq->body_left -= n;
        if (c->rq->body_left == 0)
            return 1;
    } else if (avail > 0) {
        size_t consumed = 0, outlen = 0;
        char *p = c->in + c->rq->body_pos;
        pt_chunk_rc rc = pt_chunked_decode(&c->rq->chunked, p, avail, &consumed, p, &outlen);
        c->rq->body_pos += consumed;
        if (c->rq->body_collect && outlen && pt_body_append(&c->rq->body, p, outlen) < 0) {
            pt_log_error("cannot store a request body in %s: %s", c->w->cfg->tmp_dir,
                         strerror(errno));
            body_error(c, 500, "request body storage failed");
            return -1;
        }
        if (rc == PT_CHUNK_DONE)
            return 1;
        if (rc == PT_CHUNK_BAD) {
            body_error(c, 400, "invalid chunked framing");
            return -1;
        }
        if (rc == PT_CHUNK_TOO_LARGE) {
            body_error(c, 413, "chunked body over max_body");
            return -1;
        }
    }
    /* keep the head, drop what the body used, make room to read more */
    size_t rest = c->in_len - c->rq->body_pos;
    memmove(c->in + c->head_len, c->in + c->rq->body_pos, rest);
    c->in_len = c->head_len + rest;
    c->rq->body_pos = c->head_len;
    return 0;
}

/* limits.body_min_rate (conn.h); a client that sends nothing meets
 * body_timeout instead. Returns true after queuing the 408. */
bool pt_conn_body_slow(pt_req *r, char *why, size_t whylen)
{
    const pt_limits *lim = limits(r->conn);
    uint64_t rate = lim->body_min_rate;
    if (rate == 0)
        return false;
    uint64_t ms = r->conn->w->loop.now - r->body_t0;
    uint64_t allowed =
        lim->body_timeout_ms + r->body_rx / rate * 1000 + r->body_rx % rate * 1000 / rate;
    if (ms <= allowed)
        return false;
    snprintf(why, whylen, "request body at %llu bytes/s, under body_min_rate %llu",
             (unsigned long long)(r->body_rx * 1000 / ms), (unsigned long long)rate);
    return true;
}

static bool body_too_slow(pt_conn *c)
{
    char why[128];
    if (!pt_conn_body_slow(c->rq, why, sizeof(why)))
        return false;
    body_error(c, 408, why);
    return true;
}

static void log_request(pt_conn *c)
{
    pt_conn_log(c->rq);
}

/* the bytes of the input the request took */
static size_t request_used(const pt_conn *c)
{
    return c->rq->body_pos > c->head_len ? c->rq->body_pos : c->head_len;
}

/* The client asked for the close and sent nothing beyond its request
 * (RFC 9112 §9.6: it must not send more): the connection closes once the
 * response is out, without lingering. */
static bool closes_clean(const pt_conn *c)
{
    return c->close_after && c->rq->req_complete && !c->rq->head.keep_alive &&
           c->in_len == request_used(c);
}

void pt_conn_linger(pt_conn *c)
{
    pt_sock_shutdown(&c->sock);
    c->state = PT_CS_LINGER;
    c->in_len = 0;
    pt_io_set(&c->w->loop, &c->io, EPOLLIN | EPOLLRDHUP);
    pt_timer_arm(&c->w->loop, &c->timer, &c->w->t_linger);
}

static void finish_request(pt_conn *c)
{
    /* answered before its streamed body was all read: the rest of it would
     * be taken for the next request */
    if (c->rq->body_streaming && !c->rq->body_done)
        c->close_after = true;
    log_request(c);
    pt_timer_stop(&c->timer);
    if (closes_clean(c)) {
        /* The client asked for the close and sent nothing beyond its
         * request (RFC 9112 §9.6: it must not send more): nothing unread
         * can turn the close into a reset, so no lingering is needed.
         * Over TLS the close_notify goes first (RFC 8446 §6.1): without
         * it a close-delimited body cannot be told from a truncated one
         * (RFC 9112 §9.8). */
        c->sock.flags |= PT_SOCK_CLOSING;
        pt_sock_shutdown(&c->sock);
        pt_conn_close(c);
        return;
    }
    if (c->close_after) {
        release_request(c);
        pt_conn_linger(c);
        return;
    }
    size_t used = request_used(c), rest = c->in_len - used;
    if (rest == 0) {
        /* nothing pipelined: the block goes back to the pool, and the
         * next request's ensure_buffers zeroes it whole, so resetting its
         * fields one by one first would be lost work */
        release_request(c);
        c->head_len = 0;
        c->in_len = 0;
        c->state = PT_CS_IDLE;
        shrink_idle(c);
        return;
    }
    memmove(c->in, c->in + used, rest);
    c->in_len = rest;
    reset_request(c);
    c->state = PT_CS_IDLE;
}

static void on_timer(pt_loop *l, pt_timer *t)
{
    pt_conn *c = t->data;
    if (c->h2) {
        pt_h2c_timer(c);
        return;
    }
    if (c->rq && c->rq->gw_q) {
        const char *why = c->rq->gw_q_why;
        /* out of the queue; a FastCGI request waits whole (params built)
         * for a connection: nothing reached a backend, let it go, or the
         * connection would wait for its response after the 503 */
        pt_handler_release(c->rq, false);
        conn_reject(c->rq, 503, why, false);
        drive(c);
        return;
    }
    if (c->state == PT_CS_TUNNEL) {
        pt_tunnel_timeout(c);
        return;
    }
    if (c->proxy_pending) {
        pt_log_info("closing connection: no PROXY protocol header in time, client: %s:%u",
                    pt_conn_peer_ip(c), pt_conn_peer_port(c));
        pt_conn_close(c);
        return;
    }
    switch (c->state) {
    case PT_CS_HEAD:
        if (c->in_len > 0) {
            conn_reject(c->rq, 408, "client sent no complete head in time", true);
            drive(c);
            return;
        }
        pt_conn_close(c);
        return;
    case PT_CS_BODY:
        conn_reject(c->rq, 408, "client sent no body in time", true);
        drive(c);
        return;
    case PT_CS_WRITE: {
        char rl[1100];
        request_line(c->rq, rl, sizeof(rl));
        pt_log_info("client timed out while reading the response, client: %s:%u, request: "
                    "\"%s\"",
                    pt_conn_peer_ip(c), pt_conn_peer_port(c), rl);
        pt_conn_close(c);
        return;
    }
    case PT_CS_IDLE:
        /* a request that arrived with the timeout (same loop turn) is
         * answered rather than reset by the close */
        if (input_waiting(c)) {
            on_io(l, &c->io, EPOLLIN);
            return;
        }
        /* an orderly close between requests: close_notify over TLS */
        c->sock.flags |= PT_SOCK_CLOSING;
        pt_sock_shutdown(&c->sock);
        pt_conn_close(c);
        return;
    default:
        pt_conn_close(c);
        return;
    }
}

/* Nothing to send now, but a response will come: from a gateway, or
 * after a router phase that waits (a password verified off the loop). */
static bool waiting(const pt_conn *c)
{
    return c->rq && (c->rq->gw_q || (c->rq->gw && !c->rq->gw_done) || c->rq->phase_job);
}

static void linger_read(pt_conn *c)
{
    char tmp[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = pt_sock_read(&c->sock, tmp, sizeof(tmp));
        if (n > 0) {
            c->in_len += (size_t)n;
            if (c->in_len > PT_LINGER_BYTES) {
                pt_conn_close(c);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        pt_conn_close(c);
        return;
    }
}

static void on_io(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)l;
    pt_conn *c = io->data;
    if (c->h2) {
        pt_h2c_io(c, events);
        return;
    }
    if (c->state == PT_CS_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == PT_CS_TUNNEL) {
        pt_tunnel_client_io(c, events);
        return;
    }
    if (events & EPOLLERR) {
        pt_conn_close(c);
        return;
    }
    if (c->proxy_pending) {
        /* the PROXY protocol header, before HTTP and before a TLS hello */
        int r = pt_realip_proxy_read(c);
        if (r < 0) {
            pt_conn_close(c);
            return;
        }
        if (r == 0) {
            pt_io_set(&c->w->loop, &c->io, EPOLLIN | EPOLLRDHUP);
            return;
        }
    }
    if (c->state == PT_CS_WRITE && c->rq && c->rq->body_streaming && !c->rq->body_done &&
        waiting(c)) {
        /* a streamed body goes on arriving (a FIN may follow its last bytes) */
        stream_body(c);
        if (c->state != PT_CS_CLOSED)
            drive(c);
        return;
    }
    if (c->state == PT_CS_WRITE && waiting(c) && (events & (EPOLLRDHUP | EPOLLHUP))) {
        /* the client went away while its script runs: stop the script */
        pt_log_info("client closed the connection while a gateway request was running, "
                    "client: %s:%u",
                    pt_conn_peer_ip(c), pt_conn_peer_port(c));
        pt_conn_close(c);
        return;
    }
    if (c->state == PT_CS_WRITE && waiting(c) && (events & EPOLLIN)) {
        /* input while the gateway works: the end of the stream, or a
         * pipelined request that waits its turn (then stop watching input) */
        int n = pt_sock_pending(&c->sock);
        if (n < 0) {
            pt_conn_close(c);
            return;
        }
        if (n > 0)
            pt_io_set(&c->w->loop, &c->io, EPOLLRDHUP);
        return;
    }
    if (((events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) ||
         ((events & EPOLLOUT) && (c->sock.flags & PT_SOCK_WANT_WRITE))) &&
        (c->state == PT_CS_IDLE || c->state == PT_CS_HEAD || c->state == PT_CS_BODY)) {
        ssize_t n = read_some(c);
        if (n == 0 || n == -2) {
            /* client went away (or a hard error): nothing left to answer */
            pt_conn_close(c);
            return;
        }
        if (n > 0 && (c->sock.flags & PT_SOCK_PLAIN_ON_TLS))
            plain_on_tls(c);
        if (n > 0 && c->state == PT_CS_BODY) {
            c->rq->body_rx += (uint64_t)n;
            pt_timer_arm(&c->w->loop, &c->timer, &c->w->t_body);
        }
    }
    drive(c);
}

static void conn_redispatch(pt_conn *c)
{
    dispatch(c);
    drive(c);
}

void pt_conn_kick(pt_conn *c)
{
    if (c->h2)
        pt_h2c_flush(c);
    else if (c->state == PT_CS_WRITE)
        drive(c);
}

static int conn_set_path(pt_req *r, const char *path, size_t len)
{
    pt_conn *c = r->conn;
    if (len == 0 || path[0] != '/' || len >= c->w->path_cap)
        return -1;
    memmove(r->path, path, len);
    r->path[len] = '\0';
    r->path_len = len;
    r->loc = route(r->vhost, r->path, r->path_len);
    index_reroute(r);
    return 0;
}

static int conn_reroute(pt_req *r, const char *uri, size_t len)
{
    pt_conn *c = r->conn;
    if (len > limits(c)->header_buffer || len >= c->w->path_cap)
        return -1;
    const char *q = memchr(uri, '?', len);
    size_t plen = q ? (size_t)(q - uri) : len;
    char *copy = redir_push(r, uri, len);
    if (!copy)
        return -1;
    ssize_t n = pt_path_normalize(copy, plen, r->path);
    if (n < 0)
        return -1;
    pt_head *h = &r->head;
    h->path.p = copy;
    h->path.len = plen;
    h->has_query = q != NULL;
    h->query.p = q ? copy + plen + 1 : NULL;
    h->query.len = q ? len - plen - 1 : 0;
    r->path_len = (size_t)n;
    r->loc = route(r->vhost, r->path, r->path_len);
    index_reroute(r);
    r->status = 0;
    return 0;
}

/* After a step of a request's internal redirect: HTTP/1.1 drives its
 * connection; an HTTP/2 stream's connection sends what it can. */
static void settle(pt_req *r)
{
    if (r->h2_sid)
        pt_h2c_flush(r->conn);
    else
        drive(r->conn);
}

static void conn_local_redirect(pt_req *r, const char *loc, size_t len)
{
    pt_conn *c = r->conn;
    pt_handler_release(r, false);
    r->gw_done = false;
    /* RFC 3875 §6.2.2: a new request for the local URI; a loop ends here */
    if (++r->redirects > 10) {
        conn_reject(r, 502, "more than 10 local redirects", false);
        settle(r);
        return;
    }
    if (len > limits(c)->header_buffer) {
        conn_reject(r, 502, "local redirect target too long", false);
        settle(r);
        return;
    }
    pt_body_free(&r->body);
    pt_body_init(&r->body, (size_t)limits(c)->body_memory, c->w->cfg->tmp_dir);
    pt_head *h = &r->head;
    h->method = r->is_head ? PT_M_HEAD : PT_M_GET;
    h->method_str.p = r->is_head ? "HEAD" : "GET";
    h->method_str.len = r->is_head ? 4 : 3;
    h->content_length = -1;
    h->is_chunked = false;
    /* the same internal redirect as try_files', but a new request: GET,
     * no body, the target is REQUEST_URI */
    if (conn_reroute(r, loc, len) < 0) {
        conn_reject(r, 502, "invalid local redirect target", false);
        settle(r);
        return;
    }
    h->target.p = h->path.p; /* the text pt_conn_reroute kept */
    h->target.len = len;
    /* the new path meets its own location's rules, as nginx's internal
     * redirects do: a script cannot hand out what a deny keeps */
    pt_route_rc rc = pt_router_run(r, false);
    if (rc == PT_ROUTE_CONTINUE) {
        if (r->h2_sid) {
            pt_h2c_redispatch(r); /* the handler, then what it queued goes */
            return;
        }
        dispatch(c);
    } else if (rc == PT_ROUTE_WAIT) {
        /* a password verified off the loop: then straight to the handler,
         * as above (pt_conn_phases_done) */
        if (!r->h2_sid)
            c->state = PT_CS_WRITE;
        r->phases_dispatch = true;
    }
    settle(r);
}

static void drive(pt_conn *c)
{
    pt_worker *w = c->w;
    for (;;) {
        switch (c->state) {
        case PT_CS_IDLE:
        case PT_CS_HEAD: {
            if (c->in_len == 0) {
                if (c->state == PT_CS_IDLE && c->nreq > 0) {
                    /* stopping: the response just sent began before the
                     * stop and promised keep-alive, so the client may send
                     * its next request at once: the grace, not a close */
                    if (w->stopping)
                        stop_grace(c);
                    else if (!pt_timer_armed(&c->timer) || c->timer.list != &w->t_keepalive)
                        pt_timer_arm(&w->loop, &c->timer, &w->t_keepalive);
                }
                if (more_input(c))
                    continue;
                return;
            }
            if (c->state == PT_CS_IDLE && c->nreq == 0 &&
                (c->sock.tls || c->w->cfg->http2_cleartext)) {
                /* HTTP/2 chosen by ALPN, or a plain client's preface */
                int h2 = pt_h2c_detect(c);
                if (h2 > 0) {
                    /* the session took the bytes read; HTTP/2 reads into
                     * h2_conn.c's buffer and each stream has its own block:
                     * the connection's goes back to the pool (idle memory) */
                    if (c->state != PT_CS_CLOSED)
                        drop_buffers(c);
                    return;
                }
                if (h2 < 0) {
                    if (more_input(c))
                        continue;
                    return;
                }
            }
            if (c->state == PT_CS_IDLE) {
                /* first bytes of a head: header_timeout runs from here and is
                 * not refreshed by later bytes (slowloris). The request's log
                 * time starts here too, so a head rejected before it is
                 * complete (400, 408, 414, 431...) is logged when it came. */
                c->state = PT_CS_HEAD;
                c->rq->t_start = w->loop.now;
                c->rq->t_wall = time(NULL);
                if (c->nreq > 0 || !pt_timer_armed(&c->timer))
                    pt_timer_arm(&w->loop, &c->timer, &w->t_header);
            }
            int r = pt_h1_find_head_end(c->in, c->in_len, limits(c)->header_buffer);
            if (r == 0) {
                if (more_input(c))
                    continue;
                return;
            }
            if (r < 0) {
                conn_reject(c->rq, -r,
                            -r == 414   ? "request line too long"
                            : -r == 431 ? "request head too large"
                                        : "malformed request",
                            true);
                continue;
            }
            c->head_len = (size_t)r;
            int st = pt_h1_parse_head(c->in, c->head_len, c->rq->hdrs, limits(c)->max_headers,
                                      &c->rq->head);
            if (st != 0) {
                conn_reject(c->rq, st, c->rq->head.error, true);
                continue;
            }
            pt_timer_stop(&c->timer);
            start_request(c);
            continue;
        }
        case PT_CS_BODY: {
            int r = eat_body(c);
            if (r < 0)
                continue;
            if (r == 1) {
                pt_timer_stop(&c->timer);
                dispatch(c);
                continue;
            }
            if (body_too_slow(c))
                continue;
            if (more_input(c))
                continue;
            return;
        }
        case PT_CS_WRITE: {
            if (c->out.bytes > 0) {
                /* the whole rest of the response is queued, and the close
                 * follows it: TLS may put its close_notify in the last write */
                if (!waiting(c) && !c->rq->body_streaming && closes_clean(c))
                    c->sock.flags |= PT_SOCK_LAST;
                ssize_t n = pt_cq_flush(&c->out, &c->sock, PT_WRITE_PER_WAKEUP);
                if (n < 0 && errno != EAGAIN) {
                    pt_conn_close(c);
                    return;
                }
                if (n > 0) {
                    c->rq->bytes_written += (uint64_t)n;
                    pt_timer_arm(&w->loop, &c->timer, &w->t_write);
                } else if (!pt_timer_armed(&c->timer)) {
                    pt_timer_arm(&w->loop, &c->timer, &w->t_write);
                }
                if (c->out.bytes > 0) {
                    /* no EPOLLIN while responding: that is the back-pressure
                     * on pipelining clients */
                    pt_io_set(&w->loop, &c->io,
                              EPOLLOUT | (c->sock.flags & PT_SOCK_WANT_READ ? EPOLLIN : 0));
                    return;
                }
            }
            if (waiting(c)) {
                /* everything sent so far; the gateway has more to come.
                 * Watch for the client going away; EPOLLIN stays (no
                 * epoll_ctl per request) until pipelined bytes show up,
                 * see on_io. */
                if (!c->rq->gw_q)
                    pt_timer_stop(&c->timer);
                if (c->rq && c->rq->body_streaming && !c->rq->body_done) {
                    /* the streamed body is read while there is room for it */
                    uint32_t ev = 0;
                    if (stream_wants_input(c))
                        ev = EPOLLIN | EPOLLRDHUP |
                             (c->sock.flags & PT_SOCK_BUFFERED ? EPOLLOUT : 0);
                    pt_io_set(&w->loop, &c->io, ev);
                } else if (c->io.events != EPOLLRDHUP) {
                    pt_io_set(&w->loop, &c->io, EPOLLIN | EPOLLRDHUP);
                }
                pt_handler_drain(c->rq);
                return;
            }
            finish_request(c);
            if (c->state == PT_CS_LINGER || c->state == PT_CS_CLOSED)
                return;
            continue;
        }
        case PT_CS_LINGER:
        case PT_CS_TUNNEL: /* tunnel.c moves the bytes */
        case PT_CS_CLOSED:
            return;
        }
    }
}

/* ---- what a request's handler and phases ask (conn.h) ------------------- */
/* HTTP/1.1 carries one request at a time: the connection's request is r. */

void pt_conn_reject(pt_req *r, int status, const char *why, bool close)
{
    conn_reject(r, status, why, close);
}

bool pt_conn_error_page(pt_req *r, int status, bool close)
{
    return conn_error_page(r, status, close);
}

const char *pt_conn_request_id(pt_req *r)
{
    return conn_request_id(r);
}

void pt_conn_body_room(pt_req *r)
{
    if (r->h2_sid)
        pt_h2c_body_room(r);
    else
        conn_body_room(r->conn);
}

void pt_conn_phases_done(pt_req *r)
{
    if (r->h2_sid)
        pt_h2c_phases_done(r);
    else
        conn_phases_done(r->conn);
}

void pt_conn_redispatch(pt_req *r)
{
    if (r->h2_sid)
        pt_h2c_redispatch(r);
    else
        conn_redispatch(r->conn);
}

int pt_conn_set_path(pt_req *r, const char *path, size_t len)
{
    return conn_set_path(r, path, len);
}

int pt_conn_reroute(pt_req *r, const char *uri, size_t len)
{
    return conn_reroute(r, uri, len);
}

pt_timer *pt_conn_req_timer(pt_req *r)
{
    return r->h2_sid ? &r->h2_timer : &r->conn->timer;
}

void pt_conn_local_redirect(pt_req *r, const char *loc, size_t len)
{
    conn_local_redirect(r, loc, len);
}
