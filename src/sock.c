/* sock.c: the plain implementation of the socket layer: each operation is
 * the one system call it always was, so the plain path costs an indirect
 * call and nothing else. */
#include "first.h"
#include "sock.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* An edge-triggered socket that gave or took less than asked is drained
 * (or full) for now: TCP queues what comes after with a new edge, as
 * nginx's ngx_unix_recv assumes with EPOLLRDHUP. */
static void drained(pt_sock *s, ssize_t n, size_t len, uint32_t bit)
{
    if (s->edge && ((n < 0 && errno == EAGAIN) || (n > 0 && (size_t)n < len)))
        pt_io_drained(s->edge, bit);
}

static ssize_t plain_read(pt_sock *s, void *buf, size_t len)
{
    ssize_t n = recv(s->fd, buf, len, 0);
    drained(s, n, len, EPOLLIN);
    if (s->edge && n > 0 && (size_t)n == len)
        pt_io_full(s->edge);
    return n;
}

static ssize_t plain_writev(pt_sock *s, const struct iovec *iov, int n)
{
    /* sendmsg rather than writev: MSG_NOSIGNAL, no SIGPIPE to ignore */
    struct msghdr mh = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n};
    ssize_t r = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
    if (s->edge && r >= 0) {
        size_t len = 0;
        for (int i = 0; i < n; i++)
            len += iov[i].iov_len;
        drained(s, r, len, EPOLLOUT);
    } else
        drained(s, r, 0, EPOLLOUT);
    return r;
}

static ssize_t plain_sendfile(pt_sock *s, int fd, off_t *off, size_t len)
{
    ssize_t r = sendfile(s->fd, fd, off, len);
    /* short can be the file's end too: only EAGAIN says the socket is full */
    drained(s, r, 0, EPOLLOUT);
    return r;
}

static int plain_pending(pt_sock *s)
{
    char ch;
    ssize_t n = recv(s->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return 1;
    drained(s, n, 1, EPOLLIN);
    return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}

static void plain_shutdown(pt_sock *s)
{
    if (!(s->flags & PT_SOCK_CLOSING))
        shutdown(s->fd, SHUT_WR);
}

static void plain_close(pt_sock *s)
{
    close(s->fd);
    s->fd = -1;
}

const pt_sock_ops pt_sock_plain = {
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .pending = plain_pending,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

void pt_sock_init_plain(pt_sock *s, int fd)
{
    s->ops = &pt_sock_plain;
    s->fd = fd;
    s->flags = 0;
    s->tls = NULL;
    s->owner = NULL;
    s->edge = NULL;
}

void pt_sock_reset(pt_sock *s)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}
