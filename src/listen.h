/* listen.h: listening sockets: bound by the master (or passed by systemd
 * socket activation), inherited by workers. */
#ifndef PT_LISTEN_H
#define PT_LISTEN_H

#include "first.h"
#include "conf.h"

#include <sys/socket.h>

typedef struct pt_listener {
    int fd;
    char text[64]; /* printable address */
    const pt_listen_cfg *cfg;
    bool activated; /* passed by the service manager (LISTEN_FDS), not bound here */
    /* worker-side: does an accepted socket inherit TCP_NODELAY from this
     * listener (Linux does)? 0 not known yet, 1 yes, -1 no: set it on each */
    int nodelay_inherited;
    /* worker-side: SERVER_ADDR / SERVER_PORT of every connection it
     * accepts, when it is bound to one address (local_fixed); a wildcard
     * listener's connections ask getsockname(2) each */
    bool local_fixed;
    char local_ip[48];
    char local_port[8];
} pt_listener;

/* Bind and listen every configured address. With socket activation
 * (LISTEN_PID = our pid, LISTEN_FDS = N) the sockets on fds 3..3+N-1 are
 * used for the configured addresses they are bound to (getsockname; "*:PORT"
 * takes [::]:PORT or 0.0.0.0:PORT) and only the rest is bound; a passed
 * socket no configured address matches is an error. LISTEN_PID, LISTEN_FDS
 * and LISTEN_FDNAMES are removed from the environment in any case.
 * Returns 0, or -1 with err. */
int pt_listen_open(const pt_config *c, pt_listener **out, size_t *n, char *err, size_t errlen);
/* Reload: the listeners of c, reusing old's socket for every address that
 * is still configured and binding the new ones. On success old (array and
 * the sockets not reused) is released; on failure nothing changes. 0 or -1
 * with err. */
int pt_listen_reload(const pt_config *c, pt_listener *old, size_t nold, pt_listener **out,
                     size_t *n, char *err, size_t errlen);
void pt_listen_close(pt_listener *ls, size_t n);
/* A local socket address as SERVER_ADDR / SERVER_PORT text (RFC 3875
 * §4.1.14-15: a v4-mapped address is the IPv4 one). Anything but IPv4 and
 * IPv6 is "127.0.0.1" and "0". Returns true for an address of its own
 * (not 0.0.0.0 / ::, not AF_UNIX). */
bool pt_listen_local_text(const struct sockaddr_storage *ss, char ip[48], char port[8]);
/* Worker start: fills l's local_* from its socket. */
void pt_listen_local(pt_listener *l);

#endif
