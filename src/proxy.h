/* proxy.h: the HTTP reverse proxy: HTTP/1.1 to upstream servers as a codec
 * of the upstream machinery (upstream_conn.h). */
#ifndef PT_PROXY_H
#define PT_PROXY_H

#include "first.h"
#include "upstream_conn.h"

struct pt_req;
struct pt_handler;

/* The handler (handler.h) */
extern const struct pt_handler pt_proxy_handler;

extern const pt_upstream_codec pt_proxy_codec;

/* Answer c (body already collected) through its location's backend. */
void pt_proxy_start(struct pt_req *r);

#endif
