/* handler.h: what answers a request once the router's phases let it through
 * (DESIGN.md "handler"): one pt_handler per kind of answer, found from the
 * request's location (pt_location.h, set when the configuration is loaded),
 * so the connection code (conn.c, worker.c) names no handler, and the few
 * calls each side makes of the other. */
#ifndef PT_HANDLER_H
#define PT_HANDLER_H

#include "first.h"

struct pt_req;
struct pt_worker;
struct pt_location;

/* What the connection does for a handler before and around start. */
enum {
    /* the request body is collected first (memory, then an unlinked temp
     * file), so its length is known when start runs (RFC 3875 §4.1.2) and a
     * slow uploader holds no program; without it the body is read and
     * dropped (RFC 9110 §9.3.1: it means nothing to a file) */
    PT_HF_BODY = 1u << 0,
    /* start sees every method; without it only GET, HEAD and OPTIONS come
     * through and the others get 405 with Allow */
    PT_HF_METHODS = 1u << 1,
    /* it answers with files beneath a root: error pages are served by it
     * (an internal redirect whose location lacks it is refused), and the
     * index file of a directory stays with it unless the file's own
     * location says otherwise */
    PT_HF_FILES = 1u << 2,
    /* a location of it with "dir" (or "alias") is a directory of scripts:
     * a request for a directory there goes to the directory's index file */
    PT_HF_SCRIPT_DIR = 1u << 3,
    /* an extension location of it (".php") makes "index<ext>" an index
     * file name for every directory, like php -S and lighttpd */
    PT_HF_INDEX_EXT = 1u << 4,
    /* with the location's request_buffering = false it starts as soon as
     * the head is read and takes the body as it arrives (conn.c reads it
     * while the gateway has room); without it, PT_HF_BODY collects first */
    PT_HF_STREAM_BODY = 1u << 5,
    /* with PT_HF_STREAM_BODY: a body without a length (chunked) streams
     * too (HTTP frames it chunked again); without it such a body is
     * collected first, for CONTENT_LENGTH must be known (RFC 3875 §4.1.2) */
    PT_HF_STREAM_CHUNKED = 1u << 6,
};

/* Per-worker state that a handler, or a family of handlers, keeps (spawned
 * programs, pooled backend connections, timers). Every hook is optional;
 * handlers sharing one object (FastCGI, SCGI, uwsgi and HTTP share the
 * upstream module's) have it run once per worker. */
typedef struct pt_handler_worker {
    int (*init)(struct pt_worker *w);     /* the worker starts: 0, or -1 (out of memory) */
    void (*quiesce)(struct pt_worker *w); /* graceful stop begins: let idle things go */
    void (*child)(struct pt_worker *w);   /* SIGCHLD: reap what exited */
    void (*stop)(struct pt_worker *w);    /* the worker exits, connections closed: free all */
} pt_handler_worker;

typedef struct pt_handler {
    const char *name; /* as a location's handler = "..." names it */
    int kind;         /* its pt_handler_kind: conf.c's checks of handler-only keys */
    unsigned flags;   /* PT_HF_* */
    /* The request r is complete (body collected with PT_HF_BODY) and its
     * connection's state is PT_CS_WRITE. Queue the whole response now
     * (pt_resp_*, resp.h: the connection's framer makes the bytes), or an
     * error (pt_conn_reject), or attach something that answers later: a
     * struct pt_gw (gw.h) in r->gw, whose ops are the per-request half of
     * this interface (drain: the client took the output, more is welcome;
     * detach: the response is over, finish alone; abort: the client left,
     * stop), or park r in a pt_gw_queue until a slot frees. The connection
     * flushes and waits while r->gw is set and r->gw_done is not. A handler
     * reaches the connection (r->conn) for its worker and socket alone. */
    void (*start)(struct pt_req *r);
    const pt_handler_worker *worker; /* NULL: no state of its own */
} pt_handler;

/* The calls a handler makes back, the whole set (keep it small: an HTTP/2
 * stream will take the same ones):
 *  - pt_resp_begin / _header / _end, pt_resp_body / _body_file / _body_end,
 *    pt_resp_error (resp.h): the response, framed by the connection's framer;
 *  - pt_conn_reject (conn.h): log the reason and answer with an error page;
 *  - pt_resp_kick: output was queued or the response finished (r->gw_done);
 *  - pt_conn_local_redirect: a program's "Location: /path" (RFC 3875 §6.2.2);
 *  - pt_resp_reset: nothing honest can be sent any more (a cut response);
 *  - pt_conn_req_ip, pt_conn_request_id, r->peer_*: for logs and meta-variables.
 * Each takes the request (pt_resp_kick / pt_resp_reset stand for the
 * connection's kick and close): with HTTP/2 they act on the request's
 * stream, with HTTP/1.1 on the connection's one request.
 *
 * Adding a handler "name":
 *  1. name.c: its start (and, if it keeps per-worker state, a
 *     pt_handler_worker) and one definition,
 *         const pt_handler pt_name_handler = {.name = "name", .kind = PT_H_NAME,
 *                                             .flags = ..., .start = start};
 *     declared in name.h;
 *  2. handler.c: one line in the table (its place orders the worker hooks);
 *  3. conf.h / conf.c, until each module owns its keys: PT_H_NAME, its
 *     handler_name(), and the location keys only it takes (handler_keys);
 *  4. portico.conf(5) and conf/portico.conf: the handler = "name" value.
 * Nothing in conn.c, worker.c or the router changes. A handler that talks
 * to an application server over a socket is a codec of the upstream module
 * instead (upstream_conn.h: framing and decoding only; servers, pooling,
 * queue and timeouts are shared), its start one call of
 * pt_upstream_conn_start and its worker hooks pt_upstream_conn_worker. A
 * program's response (header block, buffering, X-Sendfile, compression) is
 * gw.c's whatever the transport. */

/* The handler named name ("static", "cgi", ...), NULL when none is. */
const pt_handler *pt_handler_find(const char *name);
/* The names, in order, as an English list ("static, cgi or status"). */
const char *pt_handler_names(void);
/* l's handler; the static handler for no location (OPTIONS *). */
const pt_handler *pt_handler_of(const struct pt_location *l);

/* ---- what the connection calls ------------------------------------------ */

/* Hand the complete request to its location's handler. */
void pt_handler_start(struct pt_req *r);
/* The client took every byte queued so far: the producer may go on. */
void pt_handler_drain(struct pt_req *r);
/* The connection lets go of what answers the request: it leaves any queue
 * it waits in, and a producer detaches (finishes on its own) or, with
 * abort, is stopped (the client is gone: a CGI program is killed). */
void pt_handler_release(struct pt_req *r, bool abort);
/* The request ends: release it, and give back what handlers held for it
 * (the open-file cache's entry, X-Sendfile's kept headers). */
void pt_handler_done(struct pt_req *r);

/* Each pt_handler_worker once, in the table's order. */
int pt_handler_worker_init(struct pt_worker *w);
void pt_handler_worker_quiesce(struct pt_worker *w);
void pt_handler_worker_child(struct pt_worker *w);
void pt_handler_worker_stop(struct pt_worker *w);

#endif
