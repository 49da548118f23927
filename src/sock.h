/* sock.h: the one socket layer of a client connection. Every read, write,
 * file send, shutdown, reset and close goes through a small table of
 * operations (plain here, TLS in tls.c), so handlers never know which. */
#ifndef PT_SOCK_H
#define PT_SOCK_H

#include "first.h"
#include "ev.h"
#include <sys/types.h>
#include <sys/uio.h>

typedef struct pt_sock pt_sock;

/* Every call returns like the system call it replaces: bytes (>= 0), or
 * -1 with errno (EAGAIN: try again when the socket is ready). */
typedef struct pt_sock_ops {
    ssize_t (*read)(pt_sock *s, void *buf, size_t len);
    ssize_t (*writev)(pt_sock *s, const struct iovec *iov, int n);
    /* at most len bytes of fd from *off; *off is advanced by what was sent */
    ssize_t (*sendfile)(pt_sock *s, int fd, off_t *off, size_t len);
    /* optional: the memory bytes, then at most len bytes of fd from off, in
     * one go; returns what was sent of both together (TLS: a response head
     * and its file's first bytes in one record, not a record each) */
    ssize_t (*headfile)(pt_sock *s, const struct iovec *iov, int n, int fd, off_t off, size_t len);
    /* input waiting: 1 yes, 0 not now, -1 the peer closed (or an error),
     * 2 (TLS) only the beginning of a record, nothing to read yet */
    int (*pending)(pt_sock *s);
    void (*shutdown)(pt_sock *s);
    void (*close)(pt_sock *s);
} pt_sock_ops;

enum {
    PT_SOCK_WANT_READ = 1,    /* TLS: the last call waits for input, whatever it did */
    PT_SOCK_WANT_WRITE = 2,   /* TLS: the last call waits for room to write */
    PT_SOCK_PLAIN_ON_TLS = 4, /* TLS port, but the client speaks plain HTTP */
    PT_SOCK_BUFFERED = 8,     /* TLS: input decrypted but not yet read; epoll cannot tell */
    /* the close follows the shutdown at once: close(2) sends the FIN, so
     * no shutdown(2) (one system call fewer per connection, as nginx) */
    PT_SOCK_CLOSING = 16,
    /* conn: the connection closes, without lingering, once the output
     * queue is sent; buf: this write hands over the queue's end. Both: TLS
     * sends its close_notify with the last record (one write, not two) */
    PT_SOCK_LAST = 32,
    PT_SOCK_TAIL = 64,
};

struct pt_sock {
    const pt_sock_ops *ops;
    int fd;
    unsigned flags;
    void *tls;             /* SSL * (tls.c) */
    struct pt_conn *owner; /* for log lines */
    /* plain and edge-triggered: a read or write that stops short says so
     * here (pt_io_drained), so the loop knows the socket is drained */
    pt_io *edge;
};

extern const pt_sock_ops pt_sock_plain;

void pt_sock_init_plain(pt_sock *s, int fd);

static inline ssize_t pt_sock_read(pt_sock *s, void *buf, size_t len)
{
    return s->ops->read(s, buf, len);
}
static inline ssize_t pt_sock_writev(pt_sock *s, const struct iovec *iov, int n)
{
    return s->ops->writev(s, iov, n);
}
static inline ssize_t pt_sock_sendfile(pt_sock *s, int fd, off_t *off, size_t len)
{
    return s->ops->sendfile(s, fd, off, len);
}
static inline int pt_sock_pending(pt_sock *s)
{
    return s->ops->pending(s);
}
static inline void pt_sock_shutdown(pt_sock *s)
{
    s->ops->shutdown(s);
}
static inline void pt_sock_close(pt_sock *s)
{
    s->ops->close(s);
}
/* The next close sends a reset instead of a FIN (SO_LINGER 0): a body
 * framed by the close must not look complete after an error. */
void pt_sock_reset(pt_sock *s);

#endif
