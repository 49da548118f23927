/* static.h: the static file handler. */
#ifndef PT_STATIC_H
#define PT_STATIC_H

#include "first.h"

struct pt_req;
struct pt_handler;

/* The handler: files beneath the root, and OPTIONS (handler.h) */
extern const struct pt_handler pt_static_handler;

/* Answer a GET or HEAD for c->path from the location's root: queues the
 * whole response (head + memory or file-range body) on c->out. */
void pt_static_serve(struct pt_req *r);
/* Answer with the file rel (relative, no "." or ".." segments) beneath the
 * directory root, under the location's symlink and dotfile policy, as
 * pt_static_serve answers for a request path (X-Sendfile, xsend.c). */
void pt_static_serve_below(struct pt_req *r, const char *root, const char *rel);

#endif
