/* notify.h: the systemd service-manager protocol: sd_notify(3) datagrams to
 * $NOTIFY_SOCKET (READY=1, RELOADING=1, STOPPING=1, STATUS=) and removing
 * the variables it passes from what child processes inherit. */
#ifndef PT_NOTIFY_H
#define PT_NOTIFY_H

#include "first.h"

/* Send one datagram "fmt..." (newline-separated VAR=VALUE lines) to
 * $NOTIFY_SOCKET: a path, or an abstract name when it starts with '@'.
 * Nothing when the variable is unset. Returns 0, or -1 (logged as a warning). */
int pt_notify(const char *fmt, ...) PT_PRINTF(1, 2);

/* The master is serving: READY=1, MAINPID (the pid that changed if --daemon
 * forked) and STATUS=status. */
void pt_notify_ready(const char *status);
/* A configuration reload begins (RELOADING=1 with MONOTONIC_USEC, as
 * Type=notify-reload expects); call pt_notify_ready() when it is done. For
 * the reload code: portico does not reload yet. */
void pt_notify_reloading(void);
/* A stop begins: STOPPING=1 and STATUS=status. */
void pt_notify_stopping(const char *status);

/* Remove NOTIFY_SOCKET from this process's environment (a worker calls it
 * right after fork: only the master speaks to the manager). */
void pt_notify_forget(void);

/* Unset the variable name and wipe its "NAME=value" bytes in place, so that
 * neither getenv(), exec'd children nor /proc/PID/environ of this process and
 * the ones it forks show it any more. */
void pt_env_drop(const char *name);

#endif
