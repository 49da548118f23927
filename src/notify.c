/* notify.c: sd_notify(3) without libsystemd: the protocol is one AF_UNIX
 * datagram of "VAR=VALUE\n" lines to the socket named by $NOTIFY_SOCKET;
 * the manager reads the sender's credentials (SO_PASSCRED) on its side. */
#include "first.h"
#include "notify.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int pt_notify(const char *fmt, ...)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t plen = strlen(path);
    /* '/' a file system socket, '@' the abstract namespace (sd_notify(3)) */
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
        pt_log_warn("NOTIFY_SOCKET '%s' is not an absolute path or @name; not notifying", path);
        return -1;
    }
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    socklen_t slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
                                 (path[0] == '/')); /* a path includes its NUL */

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1; /* a long STATUS= is cut, not dropped */

    /* non-blocking: a stuck manager must never stall the master */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        pt_log_warn("sd_notify: socket: %s", strerror(errno));
        return -1;
    }
    ssize_t w = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sun, slen);
    int e = errno;
    close(fd);
    if (w != n) {
        pt_log_warn("sd_notify to %s failed: %s", path, w < 0 ? strerror(e) : "short write");
        return -1;
    }
    return 0;
}

void pt_notify_ready(const char *status)
{
    pt_notify("READY=1\nMAINPID=%d\nSTATUS=%s", (int)getpid(), status);
}

void pt_notify_reloading(void)
{
    /* systemd >= 253 matches RELOADING=1 to the reload by this timestamp */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pt_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
              (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
}

void pt_notify_stopping(const char *status)
{
    pt_notify("STOPPING=1\nSTATUS=%s", status);
}

void pt_notify_forget(void)
{
    pt_env_drop("NOTIFY_SOCKET");
}

void pt_env_drop(const char *name)
{
    size_t len = strlen(name);
    char *hit[8];
    size_t nhit = 0;
    for (char **e = environ; e && *e && nhit < PT_ARRAY_LEN(hit); e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            hit[nhit++] = *e;
    unsetenv(name);
    /* unsetenv() only drops the pointer: the bytes stay in the initial
     * environment block that /proc/PID/environ shows and fork copies.
     * Nothing keeps a pointer to them (portico never setenv()s these), so
     * wiping them is safe. */
    for (size_t i = 0; i < nhit; i++)
        memset(hit[i], '\0', strlen(hit[i]));
}
