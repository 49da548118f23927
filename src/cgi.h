/* cgi.h: the CGI handler (RFC 3875): resolves the script by walking the
 * path, spawns it (cgi_spawn.c) in its own process group, feeds the
 * collected body to stdin, parses its header block (cgi_resp.c) and streams
 * or buffers stdout to the client, logs stderr, enforces timeouts and the
 * per-worker process cap, and reaps every child. */
#ifndef PT_CGI_H
#define PT_CGI_H

#include "first.h"

struct pt_req;
struct pt_worker;
typedef struct pt_cgi pt_cgi;
struct pt_handler;

/* The handler (handler.h) */
extern const struct pt_handler pt_cgi_handler;

/* Answer c (body already collected) with the CGI program its location
 * names. Queues an error response itself when it cannot start. */
void pt_cgi_start(struct pt_req *r);
/* Programs spawned and not yet reaped (the status page's gauge). */
unsigned pt_cgi_running(const struct pt_worker *w);
/* SIGCHLD: reap every exited child of this worker. */
void pt_cgi_reap(struct pt_worker *w);
/* Worker stop: kill what still runs and free everything. */
void pt_cgi_shutdown(struct pt_worker *w);

#endif
