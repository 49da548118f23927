/* listen.c: binds the configured addresses. "*:PORT" means every interface:
 * one dual-stack [::] socket, or 0.0.0.0 when the host has no IPv6. */
#include "first.h"
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bind_one(const struct sockaddr *sa, socklen_t len, bool dual)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof(int));
    if (bind(fd, sa, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int pt_listen_open(const pt_config *c, pt_listener **out, size_t *n, char *err, size_t errlen)
{
    pt_listener *ls = calloc(c->nlisten ? c->nlisten : 1, sizeof(*ls));
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        const pt_listen_cfg *lc = &c->listen[i];
        int fd = bind_one((const struct sockaddr *)&lc->addr, lc->addrlen, lc->any_dual);
        if (fd < 0 && lc->any_dual && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
            /* no IPv6 on this host: fall back to every IPv4 interface */
            struct sockaddr_in sin = {.sin_family = AF_INET};
            sin.sin_port = ((const struct sockaddr_in6 *)&lc->addr)->sin6_port;
            sin.sin_addr.s_addr = htonl(INADDR_ANY);
            fd = bind_one((const struct sockaddr *)&sin, sizeof(sin), false);
        }
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", lc->text, strerror(errno));
            pt_listen_close(ls, i);
            return -1;
        }
        ls[i].fd = fd;
        ls[i].cfg = lc;
        snprintf(ls[i].text, sizeof(ls[i].text), "%s", lc->text);
    }
    *out = ls;
    *n = c->nlisten;
    return 0;
}

void pt_listen_close(pt_listener *ls, size_t n)
{
    if (!ls)
        return;
    for (size_t i = 0; i < n; i++)
        if (ls[i].fd >= 0)
            close(ls[i].fd);
    free(ls);
}
