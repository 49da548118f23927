/*
 * fwd.c - the least work an HTTP/1.1 reverse proxy can do on this host,
 * to measure the floor of a proxy's server CPU per request in the same run
 * as the real proxies (proxy.sh, PROXIES="... fwd").
 *
 * Each client connection gets its own upstream connection, opened when the
 * client's is accepted and kept as long as it lives, and the bytes go
 * through untouched both ways: one recv and one send per direction and
 * request, the system calls any proxy makes, and nothing parsed, checked
 * or rewritten (no header handling, no framing, no pool, no balancing, no
 * timeouts). It is not a proxy anyone should run; what it costs is the
 * kernel's part of proxying (the loopback TCP of both sockets, the epoll
 * wakeups), which a real proxy pays too, so a real proxy's CPU per request
 * stays above it.
 *
 *   fwd PORT UPSTREAM_PORT      (127.0.0.1 both, single thread, epoll)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* one end of a pair: data.u64 in epoll is (slot << 1) | side */
typedef struct {
    int fd[2]; /* 0: the client's, 1: the upstream's */
} pair;

static pair *pairs;
static size_t npairs;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void close_pair(int ep, size_t slot)
{
    for (int s = 0; s < 2; s++) {
        if (pairs[slot].fd[s] >= 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, pairs[slot].fd[s], NULL);
            close(pairs[slot].fd[s]);
            pairs[slot].fd[s] = -1;
        }
    }
}

/* everything of buf to fd, which is blocking for writes: the answers here
 * are small and the reader is never stalled by us */
static int send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void accept_one(int ep, int lfd, int up_port)
{
    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = loopback(up_port);
    if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(c);
        if (u >= 0)
            close(u);
        return;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    size_t slot = 0;
    while (slot < npairs && pairs[slot].fd[0] >= 0)
        slot++;
    if (slot == npairs) {
        size_t n = npairs ? npairs * 2 : 64;
        pair *np = realloc(pairs, n * sizeof(*np));
        if (!np)
            die("realloc");
        for (size_t i = npairs; i < n; i++)
            np[i].fd[0] = np[i].fd[1] = -1;
        pairs = np;
        npairs = n;
    }
    pairs[slot].fd[0] = c;
    pairs[slot].fd[1] = u;
    for (int s = 0; s < 2; s++) {
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u64 = ((uint64_t)slot << 1) | (uint64_t)s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pairs[slot].fd[s], &ev) < 0)
            die("epoll_ctl");
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fwd PORT UPSTREAM_PORT\n");
        return 2;
    }
    int port = atoi(argv[1]), up_port = atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = loopback(port);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0)
        die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll");
    static char buf[65536];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == UINT64_MAX) {
                accept_one(ep, lfd, up_port);
                continue;
            }
            size_t slot = (size_t)(evs[i].data.u64 >> 1);
            int side = (int)(evs[i].data.u64 & 1);
            int from = pairs[slot].fd[side], to = pairs[slot].fd[!side];
            if (from < 0)
                continue; /* closed by an earlier event of this batch */
            ssize_t r = recv(from, buf, sizeof(buf), MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0 || send_all(to, buf, (size_t)r) < 0)
                close_pair(ep, slot);
        }
    }
}
