/* listen.c: binds the configured addresses. "*:PORT" means every interface:
 * one dual-stack [::] socket, or 0.0.0.0 when the host has no IPv6.
 * Socket activation follows sd_listen_fds(3): the passed fds start at 3. */
#include "first.h"
#include "listen.h"
#include "log.h"
#include "notify.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
    /* accepted sockets inherit it: no setsockopt per connection */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, sa, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* One configured address; "*:PORT" falls back to every IPv4 interface on a
 * host without IPv6. */
static int bind_cfg(const pt_listen_cfg *lc)
{
    int fd = bind_one((const struct sockaddr *)&lc->addr, lc->addrlen, lc->any_dual);
    if (fd < 0 && lc->any_dual && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_port = ((const struct sockaddr_in6 *)&lc->addr)->sin6_port;
        sin.sin_addr.s_addr = htonl(INADDR_ANY);
        fd = bind_one((const struct sockaddr *)&sin, sizeof(sin), false);
    }
    return fd;
}

enum { SD_LISTEN_FDS_START = 3 };

/* Is the socket bound to ss the one configured as lc? */
static bool matches(const pt_listen_cfg *lc, const struct sockaddr_storage *ss)
{
    const struct sockaddr_in6 *c6 = (const struct sockaddr_in6 *)&lc->addr;
    const struct sockaddr_in *c4 = (const struct sockaddr_in *)&lc->addr;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    if (lc->any_dual) {
        /* "*:PORT": whatever the unit's BindIPv6Only= made of it */
        if (ss->ss_family == AF_INET6)
            return s6->sin6_port == c6->sin6_port && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
        return ss->ss_family == AF_INET && s4->sin_port == c6->sin6_port &&
               s4->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    if (ss->ss_family != lc->addr.ss_family)
        return false;
    if (ss->ss_family == AF_INET6)
        return s6->sin6_port == c6->sin6_port &&
               memcmp(&s6->sin6_addr, &c6->sin6_addr, sizeof(s6->sin6_addr)) == 0;
    return s4->sin_port == c4->sin_port && s4->sin_addr.s_addr == c4->sin_addr.s_addr;
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
}

/* Take over the sockets systemd passed (if they are for this process) into
 * the slots of the listeners they match. 0, or -1 with err. */
static int adopt(const pt_config *c, pt_listener *ls, char *err, size_t errlen)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    long pid = 0, nfds = 0;
    bool ours = false, bad = false;
    if (pid_s && fds_s) {
        char *end;
        errno = 0;
        pid = strtol(pid_s, &end, 10);
        ours = !errno && *pid_s && !*end && pid == (long)getpid();
        errno = 0;
        nfds = strtol(fds_s, &end, 10);
        bad = errno || !*fds_s || *end || nfds < 0 || nfds > INT_MAX - SD_LISTEN_FDS_START;
    }
    char fds_copy[32];
    snprintf(fds_copy, sizeof(fds_copy), "%s", fds_s ? fds_s : "");
    /* not for any child: a CGI script or a restarted portico must not take
     * them for its own (sd_listen_fds(3) unset_environment) */
    pt_env_drop("LISTEN_PID");
    pt_env_drop("LISTEN_FDS");
    pt_env_drop("LISTEN_FDNAMES");
    if (!ours)
        return 0;
    if (bad) {
        snprintf(err, errlen, "socket activation: LISTEN_FDS='%s' is not a count", fds_copy);
        return -1;
    }
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + (int)nfds; fd++) {
        int type = 0, acc = 0;
        socklen_t tl = sizeof(type), al = sizeof(acc);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || type != SOCK_STREAM || !acc ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
            snprintf(err, errlen,
                     "socket activation: fd %d is not a listening TCP socket (portico takes "
                     "ListenStream= addresses only)",
                     fd);
            return -1;
        }
        char text[64];
        addr_text(&ss, text, sizeof(text));
        size_t i;
        for (i = 0; i < c->nlisten; i++)
            if (ls[i].fd < 0 && matches(&c->listen[i], &ss))
                break;
        if (i == c->nlisten) {
            /* systemd would keep it open and queue connections nobody
             * accepts: refuse to start instead */
            char conf[256] = "";
            size_t off = 0;
            for (size_t k = 0; k < c->nlisten && off < sizeof(conf); k++)
                off += (size_t)snprintf(conf + off, sizeof(conf) - off, "%s%s", k ? ", " : "",
                                        c->listen[k].text);
            snprintf(err, errlen,
                     "socket activation: the passed socket %s (fd %d) matches no configured "
                     "listen address (listen: %s); add it to listen or remove it from the "
                     "socket unit",
                     text, fd, conf);
            return -1;
        }
        /* as bind_one() makes its own: never inherited by exec, never blocking */
        int fl = fcntl(fd, F_GETFL);
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fl < 0 ||
            fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            snprintf(err, errlen, "socket activation: fd %d: %s", fd, strerror(errno));
            return -1;
        }
        ls[i].fd = fd;
        ls[i].activated = true;
    }
    return 0;
}

/* Accepted sockets inherit the listener's TCP_NOTSENT_LOWAT: the kernel
 * then queues at most about that many unsent response bytes per
 * connection (writes see EAGAIN beyond it) instead of up to the whole
 * autotuned send buffer (4 MiB on Debian 12) for a client that stalls.
 * Sending from the worker in small steps also keeps the transmit work in
 * the worker rather than in the processing of the client's ACKs. 0
 * restores the system default.
 * TCP_DEFER_ACCEPT (Apache's "AcceptFilter http data", nginx's "listen
 * ... deferred"): the kernel hands over a connection once its first bytes
 * (a request, a ClientHello, a PROXY header) are there, so the worker
 * reads them at once instead of finding nothing, asking epoll and waking
 * again, and a client that connects and sends nothing holds no descriptor
 * and no connection state. After the period (whole seconds, rounded by
 * the kernel to its SYN-ACK retransmissions) such a client is accepted
 * anyway and header_timeout runs from there: so at most header_timeout.
 * Both are set on every listener at start and at each reload (kept and
 * systemd sockets too). */
static void set_sockopts(const pt_config *c, pt_listener *ls, size_t n)
{
    int v = (int)c->limits.tcp_notsent_lowat;
    uint64_t ms = PT_MIN(c->limits.defer_accept_ms, c->limits.header_timeout_ms);
    int secs = (int)PT_MIN(ms / 1000, (uint64_t)INT_MAX);
    for (size_t i = 0; i < n; i++) {
        if (ls[i].fd < 0)
            continue;
        if (setsockopt(ls[i].fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v)) < 0)
            pt_log_warn("listen %s: cannot set TCP_NOTSENT_LOWAT: %s", ls[i].text, strerror(errno));
        if (setsockopt(ls[i].fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) < 0)
            pt_log_warn("listen %s: cannot set TCP_DEFER_ACCEPT: %s", ls[i].text, strerror(errno));
    }
}

int pt_listen_open(const pt_config *c, pt_listener **out, size_t *n, char *err, size_t errlen)
{
    pt_listener *ls = calloc(c->nlisten ? c->nlisten : 1, sizeof(*ls));
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        ls[i].fd = -1;
        ls[i].cfg = &c->listen[i];
        snprintf(ls[i].text, sizeof(ls[i].text), "%s", c->listen[i].text);
    }
    if (adopt(c, ls, err, errlen) < 0) {
        pt_listen_close(ls, c->nlisten);
        return -1;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        const pt_listen_cfg *lc = &c->listen[i];
        if (ls[i].activated)
            continue;
        int fd = bind_cfg(lc);
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", lc->text, strerror(errno));
            pt_listen_close(ls, c->nlisten);
            return -1;
        }
        ls[i].fd = fd;
    }
    set_sockopts(c, ls, c->nlisten);
    *out = ls;
    *n = c->nlisten;
    return 0;
}

int pt_listen_reload(const pt_config *c, pt_listener *old, size_t nold, pt_listener **out,
                     size_t *n, char *err, size_t errlen)
{
    pt_listener *ls = calloc(c->nlisten ? c->nlisten : 1, sizeof(*ls));
    bool *taken = calloc(nold ? nold : 1, sizeof(*taken));
    if (!ls || !taken) {
        free(ls);
        free(taken);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        const pt_listen_cfg *lc = &c->listen[i];
        ls[i].fd = -1;
        ls[i].cfg = lc;
        snprintf(ls[i].text, sizeof(ls[i].text), "%s", lc->text);
        /* an address still configured keeps its socket: nothing queued on
         * it is lost, and a socket systemd passed cannot be bound again */
        for (size_t j = 0; j < nold; j++) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            if (taken[j] || old[j].fd < 0 ||
                getsockname(old[j].fd, (struct sockaddr *)&ss, &sl) < 0 || !matches(lc, &ss))
                continue;
            taken[j] = true;
            ls[i].fd = old[j].fd;
            ls[i].activated = old[j].activated;
            break;
        }
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        const pt_listen_cfg *lc = &c->listen[i];
        if (ls[i].fd >= 0)
            continue;
        int fd = bind_cfg(lc);
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", lc->text, strerror(errno));
            /* only what was bound here goes; the kept sockets stay with old */
            for (size_t k = 0; k < i; k++) {
                bool kept = false;
                for (size_t j = 0; j < nold; j++)
                    kept |= taken[j] && old[j].fd == ls[k].fd;
                if (!kept && ls[k].fd >= 0)
                    close(ls[k].fd);
            }
            free(ls);
            free(taken);
            return -1;
        }
        ls[i].fd = fd;
    }
    for (size_t j = 0; j < nold; j++)
        if (!taken[j] && old[j].fd >= 0)
            close(old[j].fd); /* no longer configured (old workers hold their copies) */
    free(old);
    free(taken);
    set_sockopts(c, ls, c->nlisten);
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

bool pt_listen_local_text(const struct sockaddr_storage *ss, char ip[48], char port[8])
{
    unsigned p = 0;
    bool own = false;
    memcpy(ip, "127.0.0.1", sizeof("127.0.0.1"));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, 48);
        p = ntohs(s4->sin_port);
        own = s4->sin_addr.s_addr != htonl(INADDR_ANY);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, 48);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, 48);
        p = ntohs(s6->sin6_port);
        own = !IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
    }
    port[pt_u64_dec(port, p)] = '\0'; /* at most 5 digits */
    return own;
}

void pt_listen_local(pt_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    l->local_fixed = false;
    if (l->fd >= 0 && getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0)
        l->local_fixed = pt_listen_local_text(&ss, l->local_ip, l->local_port);
}
