/* fcgi_spawn.h: local FastCGI applications the master starts and supervises
 * (backend "spawn", like lighttpd's bin-path): a listening Unix socket per
 * backend handed to each process as fd 0 (FCGI_LISTENSOCK_FILENO), restart
 * with back-off, stop after the workers. */
#ifndef PT_FCGI_SPAWN_H
#define PT_FCGI_SPAWN_H

#include "first.h"
#include "conf.h"
#include "ev.h"
#include <sys/types.h>

/* Bind every spawn socket and start the processes; timers go on loop.
 * 0, or -1 with a message in err. */
int pt_spawn_start(const pt_config *cfg, pt_loop *loop, char *err, size_t errlen);
/* In a freshly forked worker: close the inherited app sockets (and the
 * private socket directory). */
void pt_spawn_close_fds(void);
/* A child of the master exited: true when it was an app (restarted unless
 * stopping). */
bool pt_spawn_reaped(pid_t pid, int status);
/* Reload: point the running apps at c's backends of the same name when
 * their spawn settings are unchanged (a made-up socket path is carried
 * over into c). False when some app still needs the old configuration
 * (changed or removed): the caller keeps that one alive. */
bool pt_spawn_rebind(pt_config *c);
/* Does a running app still point into c? */
bool pt_spawn_uses(const pt_config *c);
/* portico is stopping: apps that exit from now on are not restarted. */
void pt_spawn_quiesce(void);
/* Stop every app: TERM, then KILL after grace_ms; waits for them, closes
 * the sockets, unlinks them (while the name still holds the socket bound)
 * and removes the private directory of the made-up ones. */
void pt_spawn_stop(uint64_t grace_ms);

#endif
