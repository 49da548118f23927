/* sock.c: the plain implementation of the socket layer: each operation is
 * the one system call it always was, so the plain path costs an indirect
 * call and nothing else. */
#include "first.h"
#include "sock.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t plain_read(pt_sock *s, void *buf, size_t len)
{
    return recv(s->fd, buf, len, 0);
}

static ssize_t plain_writev(pt_sock *s, const struct iovec *iov, int n)
{
    /* sendmsg rather than writev: MSG_NOSIGNAL, no SIGPIPE to ignore */
    struct msghdr mh = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n};
    return sendmsg(s->fd, &mh, MSG_NOSIGNAL);
}

static ssize_t plain_sendfile(pt_sock *s, int fd, off_t *off, size_t len)
{
    return sendfile(s->fd, fd, off, len);
}

static int plain_pending(pt_sock *s)
{
    char ch;
    ssize_t n = recv(s->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return 1;
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
}

void pt_sock_reset(pt_sock *s)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}
