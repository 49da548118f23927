/* fcgi.h: the FastCGI gateway (responder role): a request's script is found
 * like CGI's (gw.c), its meta-variables go out as FCGI_PARAMS and the
 * collected body as FCGI_STDIN over a pooled, non-blocking backend
 * connection chosen by upstream.c; STDOUT goes through the shared response
 * path, STDERR to the error log. */
#ifndef PT_FCGI_H
#define PT_FCGI_H

#include "first.h"

struct pt_conn;
struct pt_worker;

/* In the master, before the workers fork: the counters all workers share
 * (see fcgi.c). 0 or -1. */
struct pt_config;
int pt_fcgi_shared_init(const struct pt_config *cfg);
/* Per-worker state for every configured backend. 0 or -1 (ENOMEM). */
int pt_fcgi_init(struct pt_worker *w);
/* Answer c (body already collected) through its location's backend.
 * Queues an error response itself when it cannot. */
void pt_fcgi_start(struct pt_conn *c);
/* Graceful stop begins: idle pooled connections are closed (requests in
 * progress keep theirs, which are not pooled again). */
void pt_fcgi_quiesce(struct pt_worker *w);
/* Worker stop: close every backend connection, free everything. */
void pt_fcgi_shutdown(struct pt_worker *w);

#endif
