/* fcgi.h: the FastCGI gateway (responder role): a codec of the upstream
 * machinery (upstream_conn.h): meta-variables as FCGI_PARAMS, the collected
 * body as FCGI_STDIN over pooled connections (FCGI_KEEP_CONN); STDOUT goes
 * through the shared response path, STDERR to the error log. */
#ifndef PT_FCGI_H
#define PT_FCGI_H

#include "first.h"
#include "upstream_conn.h"

struct pt_req;
struct pt_handler;

/* The handler (handler.h) */
extern const struct pt_handler pt_fcgi_handler;

extern const pt_upstream_codec pt_fcgi_codec;

/* Answer c (body already collected) through its location's backend.
 * Queues an error response itself when it cannot. */
void pt_fcgi_start(struct pt_req *r);

#endif
