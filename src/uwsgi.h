/* uwsgi.h: the uwsgi-protocol gateway: a codec of the upstream machinery
 * (upstream_conn.h). */
#ifndef PT_UWSGI_H
#define PT_UWSGI_H

#include "first.h"
#include "upstream_conn.h"

struct pt_req;
struct pt_handler;

/* The handler (handler.h) */
extern const struct pt_handler pt_uwsgi_handler;

extern const pt_upstream_codec pt_uwsgi_codec;

/* Answer c (body already collected) through its location's backend. */
void pt_uwsgi_start(struct pt_req *r);

#endif
