/* tunnel.c: after a 101 Switching Protocols the client connection (through
 * the socket layer, so TLS too) and the upstream connection are joined:
 * bytes are relayed both ways, each way through one bounded buffer. A way
 * whose buffer is full stops reading its source until the other side takes
 * some (flow control: a slow reader holds its writer, never portico's
 * memory). One side's end is passed on as a half-close once its bytes are
 * out; the tunnel ends when both ways have ended, on an error, or when
 * nothing moved for tunnel_timeout. The request's access-log line is
 * written then (conn.c logs it at the close, status 101). */
#include "first.h"
#include "tunnel.h"
#include "conn.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* each way's buffer: a few TCP windows' worth is enough to keep a fast
 * pair busy, and two per tunnel keep ten thousand tunnels near 1.3 GB */
#define PT_TUNNEL_BUF (64u * 1024u)
/* bytes moved per wakeup before other connections get their turn */
#define PT_TUNNEL_PER_WAKEUP (1024u * 1024u)

typedef struct pt_tunnel_way {
    char *buf;
    size_t off, len, cap; /* buf[off..len) waits to be written */
    bool eof;             /* the source ended (read 0) */
    bool shut;            /* ... and its end was passed on (shutdown of the write side) */
} way;

struct pt_tunnel {
    pt_conn *c;
    int ufd;
    pt_io uio;
    pt_tlist *idle;
    way up;   /* client -> upstream */
    way down; /* upstream -> client */
    /* TLS: the client's last read waited to write, its last write to read */
    bool rd_wants_write, wr_wants_read;
};

static void pump(struct pt_tunnel *t);

static void on_upstream_io(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    pump(io->data);
}

static int way_init(way *w, const char *p, size_t n, const char *p2, size_t n2)
{
    w->cap = PT_MAX((size_t)PT_TUNNEL_BUF, n + n2);
    if (!(w->buf = malloc(w->cap)))
        return -1;
    if (n)
        memcpy(w->buf, p, n);
    if (n2)
        memcpy(w->buf + n, p2, n2);
    w->off = 0;
    w->len = n + n2;
    return 0;
}

/* Room to read into: what was written is dropped, the rest moved to the
 * front when that frees at least half the buffer (TLS accepts a moved
 * write buffer: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER in tls.c). */
static size_t way_room(way *w)
{
    if (w->off == w->len) {
        w->off = w->len = 0;
    } else if (w->off >= w->cap / 2) {
        memmove(w->buf, w->buf + w->off, w->len - w->off);
        w->len -= w->off;
        w->off = 0;
    }
    return w->cap - w->len;
}

static void tunnel_log(struct pt_tunnel *t, int level, const char *what, int err)
{
    pt_conn *c = t->c;
    pt_log(level, "tunnel: %s%s%s, client: %s:%u", what, err ? ": " : "", err ? strerror(err) : "",
           pt_conn_peer_ip(c), pt_conn_peer_port(c));
}

/* The end: conn.c closes both sides (pt_tunnel_release) and logs. */
static void finish(struct pt_tunnel *t, const char *why, int err)
{
    if (why)
        tunnel_log(t, PT_LOG_INFO, why, err);
    pt_conn_close(t->c);
}

void pt_tunnel_start(pt_conn *c, int ufd, pt_tlist *idle, const char *head, size_t hlen,
                     const char *rest, size_t rlen)
{
    struct pt_tunnel *t = calloc(1, sizeof(*t));
    /* the client's bytes after its request (sent ahead of the 101) */
    size_t used = PT_MAX(c->rq->body_pos, c->head_len);
    size_t early = c->in_len > used ? c->in_len - used : 0;
    if (!t || way_init(&t->up, c->in + used, early, NULL, 0) < 0 ||
        way_init(&t->down, head, hlen, rest, rlen) < 0) {
        pt_log_error("tunnel: out of memory, client: %s:%u", pt_conn_peer_ip(c),
                     pt_conn_peer_port(c));
        if (t) {
            free(t->up.buf);
            free(t);
        }
        close(ufd);
        pt_sock_reset(&c->sock);
        pt_conn_close(c);
        return;
    }
    c->in_len = used;
    t->c = c;
    t->ufd = ufd;
    t->idle = idle;
    pt_io_init(&t->uio, ufd, on_upstream_io, t);
    c->rq->tunnel = t;
    c->state = PT_CS_TUNNEL;
    PT_STATS_ADD(pt_stats_my->tunnels, 1);
    PT_STATS_ADD(pt_stats_my->tunnels_opened, 1);
    /* the access log: status 101, the head, then the tunnel's bytes */
    c->rq->status = 101;
    c->rq->head_out_start = c->rq->bytes_written;
    c->rq->head_out_len = hlen;
    pt_timer_arm(&c->w->loop, &c->timer, idle);
    pump(t);
}

/* Read from the client into t->up. 1 moved, 0 nothing now, -1 finished. */
static int client_read(struct pt_tunnel *t, size_t *budget)
{
    if (*budget == 0)
        return 0; /* a zero-length read would look like the end */
    pt_conn *c = t->c;
    size_t room = way_room(&t->up);
    if (t->up.eof || room == 0)
        return 0;
    ssize_t n = pt_sock_read(&c->sock, t->up.buf + t->up.len, PT_MIN(room, *budget));
    t->rd_wants_write = n < 0 && (c->sock.flags & PT_SOCK_WANT_WRITE);
    if (n > 0) {
        t->up.len += (size_t)n;
        c->rq->body_rx += (uint64_t)n;
        *budget -= PT_MIN(*budget, (size_t)n);
        return 1;
    }
    if (n == 0) {
        t->up.eof = true;
        return 1;
    }
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    finish(t, "reading from the client failed", errno);
    return -1;
}

static int client_write(struct pt_tunnel *t, size_t *budget)
{
    if (*budget == 0)
        return 0;
    pt_conn *c = t->c;
    if (c->out.bytes > 0) {
        /* queued before the switch (an interim 100 Continue) */
        ssize_t n = pt_cq_flush(&c->out, &c->sock, *budget);
        if (n > 0)
            c->rq->bytes_written += (uint64_t)n;
        if (n < 0 && errno != EAGAIN) {
            finish(t, "writing to the client failed", errno);
            return -1;
        }
        if (c->out.bytes > 0)
            return n > 0;
    }
    way *w = &t->down;
    if (w->off == w->len)
        return 0;
    struct iovec iov = {w->buf + w->off, PT_MIN(w->len - w->off, *budget)};
    ssize_t n = pt_sock_writev(&c->sock, &iov, 1);
    t->wr_wants_read = n < 0 && (c->sock.flags & PT_SOCK_WANT_READ);
    if (n > 0) {
        w->off += (size_t)n;
        c->rq->bytes_written += (uint64_t)n;
        *budget -= PT_MIN(*budget, (size_t)n);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    finish(t, "writing to the client failed", n < 0 ? errno : EPIPE);
    return -1;
}

static int upstream_read(struct pt_tunnel *t, size_t *budget)
{
    if (*budget == 0)
        return 0;
    size_t room = way_room(&t->down);
    if (t->down.eof || room == 0)
        return 0;
    ssize_t n = recv(t->ufd, t->down.buf + t->down.len, PT_MIN(room, *budget), 0);
    if (n > 0) {
        t->down.len += (size_t)n;
        *budget -= PT_MIN(*budget, (size_t)n);
        return 1;
    }
    if (n == 0) {
        t->down.eof = true;
        return 1;
    }
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    finish(t, "reading from the upstream failed", errno);
    return -1;
}

static int upstream_write(struct pt_tunnel *t, size_t *budget)
{
    if (*budget == 0)
        return 0;
    way *w = &t->up;
    if (w->off == w->len)
        return 0;
    ssize_t n = send(t->ufd, w->buf + w->off, PT_MIN(w->len - w->off, *budget), MSG_NOSIGNAL);
    if (n > 0) {
        w->off += (size_t)n;
        *budget -= PT_MIN(*budget, (size_t)n);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    finish(t, "writing to the upstream failed", n < 0 ? errno : EPIPE);
    return -1;
}

/* Move what can be moved now, then wait for what each side can do next. */
static void pump(struct pt_tunnel *t)
{
    pt_conn *c = t->c;
    pt_worker *w = c->w;
    size_t budget = PT_TUNNEL_PER_WAKEUP;
    bool moved = false;
    for (;;) {
        int r, any = 0;
        if ((r = client_read(t, &budget)) < 0)
            return;
        any |= r;
        if ((r = upstream_write(t, &budget)) < 0)
            return;
        any |= r;
        if ((r = upstream_read(t, &budget)) < 0)
            return;
        any |= r;
        if ((r = client_write(t, &budget)) < 0)
            return;
        any |= r;
        /* a side's end goes on once its bytes are out: a half-close, the
         * other way keeps flowing (RFC 9293 §3.6) */
        if (t->up.eof && !t->up.shut && t->up.off == t->up.len) {
            shutdown(t->ufd, SHUT_WR);
            t->up.shut = true;
        }
        if (t->down.eof && !t->down.shut && t->down.off == t->down.len && c->out.bytes == 0) {
            pt_sock_shutdown(&c->sock);
            t->down.shut = true;
        }
        if (t->up.shut && t->down.shut) {
            finish(t, NULL, 0);
            return;
        }
        moved |= any != 0;
        if (!any || budget == 0)
            break;
    }
    bool want_read = !t->up.eof && way_room(&t->up) > 0;
    bool want_write = t->down.off < t->down.len || c->out.bytes > 0;
    uint32_t cev = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0);
    if (want_read && t->rd_wants_write)
        cev |= EPOLLOUT;
    if (want_write && t->wr_wants_read)
        cev |= EPOLLIN;
    /* TLS input already decrypted shows on no epoll event: come back
     * through a writable wakeup when the budget ran out with it waiting */
    if (want_read && (c->sock.flags & PT_SOCK_BUFFERED))
        cev |= EPOLLOUT;
    uint32_t uev = (!t->down.eof && way_room(&t->down) > 0 ? EPOLLIN : 0) |
                   (t->up.off < t->up.len ? EPOLLOUT : 0);
    if (pt_io_set(&w->loop, &c->io, cev) < 0 || pt_io_set(&w->loop, &t->uio, uev) < 0) {
        finish(t, "epoll_ctl failed", errno);
        return;
    }
    /* idle means nothing moved either way, a full buffer included */
    if (moved)
        pt_timer_arm(&w->loop, &c->timer, t->idle);
}

void pt_tunnel_client_io(pt_conn *c, uint32_t events)
{
    (void)events;
    if (c->rq && c->rq->tunnel)
        pump(c->rq->tunnel);
}

void pt_tunnel_timeout(pt_conn *c)
{
    struct pt_tunnel *t = c->rq ? c->rq->tunnel : NULL;
    if (!t) {
        pt_conn_close(c);
        return;
    }
    tunnel_log(t, PT_LOG_INFO, "nothing moved for tunnel_timeout; closing", 0);
    finish(t, NULL, 0);
}

void pt_tunnel_release(pt_conn *c)
{
    struct pt_tunnel *t = c->rq ? c->rq->tunnel : NULL;
    if (!t)
        return;
    c->rq->tunnel = NULL;
    PT_STATS_SUB(pt_stats_my->tunnels, 1);
    pt_io_remove(&c->w->loop, &t->uio);
    close(t->ufd);
    free(t->up.buf);
    free(t->down.buf);
    free(t);
}
