/* static.h: the static file handler. */
#ifndef PT_STATIC_H
#define PT_STATIC_H

#include "first.h"

struct pt_conn;

/* Answer a GET or HEAD for c->path from the location's root: queues the
 * whole response (head + memory or file-range body) on c->out. */
void pt_static_serve(struct pt_conn *c);

#endif
