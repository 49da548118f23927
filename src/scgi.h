/* scgi.h: the SCGI gateway: a codec of the upstream machinery
 * (upstream_conn.h). */
#ifndef PT_SCGI_H
#define PT_SCGI_H

#include "first.h"
#include "upstream_conn.h"

struct pt_req;
struct pt_handler;

/* The handler (handler.h) */
extern const struct pt_handler pt_scgi_handler;

extern const pt_upstream_codec pt_scgi_codec;

/* Answer c (body already collected) through its location's backend. */
void pt_scgi_start(struct pt_req *r);

#endif
