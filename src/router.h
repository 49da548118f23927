/* router.h: the request phases between the parsed head and the handler
 * (DESIGN.md): real client address (realip.c) -> access rules ->
 * authentication -> return. conn.c picks the vhost and the location, then
 * asks the router; later phases (rewrite, try-files, error pages) slot in
 * here. */
#ifndef PT_ROUTER_H
#define PT_ROUTER_H

#include "first.h"
#include "conf.h"

struct pt_req;

typedef enum pt_route_rc {
    PT_ROUTE_CONTINUE, /* go on to the handler */
    PT_ROUTE_DONE,     /* answered (403, 401, 500, return) or closed (444) */
    PT_ROUTE_WAIT,     /* a password is being verified off the loop: the router
                          calls pt_conn_phases_done (go on) or pt_conn_kick
                          (answered) when it is known */
} pt_route_rc;

/* Run the phases for c's vhost, location and normalised path. has_body:
 * the request's body is unread, so an answer closes the connection.
 * A slow hash is verified by the helper thread (authq.c): PT_ROUTE_WAIT.
 * Sets the authenticated user (c->rq->auth_user) for the gateways. */
pt_route_rc pt_router_run(struct pt_req *r, bool has_body);
/* The connection is going away: drop what it waits for. */
void pt_router_abort(struct pt_req *r);

/* Error pages (portico.conf(5), REQUEST PHASES). Before the internal
 * redirect to the page: the authentication c's request passed (NULL: none).
 * After it: may the page at c's new location be served? Its access rules
 * hold, and authentication it asks for must be the one passed already (no
 * password is asked for a page); false is logged. */
const pt_auth_cfg *pt_router_authed(const struct pt_req *r);
bool pt_router_errpage_ok(struct pt_req *r, const pt_auth_cfg *authed);

/* Parse a "return" value ("301 https://example.org$request_uri", "403",
 * "410 gone for good", "444") into r. 0, or -1 with a reason. */
int pt_router_parse_return(const char *text, pt_return_cfg *r, char *why, size_t whylen);

/* The longest prefix location of v matching path (NULL when none). */
const pt_location *pt_router_prefix(const pt_vhost *v, const char *path, size_t len);

/* An aliased prefix location: the offset in path (len bytes, normalised,
 * under the prefix pat of plen bytes) where the part relative to the alias
 * directory starts (past any '/'), or -1 when the prefix ends inside a
 * segment ("/icons" and "/iconsX/..": nginx's off-by-slash alias hole is
 * closed). The relative part is empty for the alias directory itself. */
ssize_t pt_router_alias_rel(const char *pat, size_t plen, const char *path, size_t len);

/* The directory c->loc's paths map onto (a location's root or alias, or the
 * vhost's root) and the relative name of path in it, for the resolver:
 * *rel points into path ("." for the directory itself; for a regex
 * location's alias, into a buffer the next call reuses), *fd is an O_PATH fd
 * (*own: the caller closes it). -1 when the path cannot map (404). */
int pt_router_base(const struct pt_req *r, const pt_location *l, const char *path, size_t len,
                   const char **root, int *fd, bool *own, const char **rel);

#endif
