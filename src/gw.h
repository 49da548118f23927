/* gw.h: the gateway path CGI and FastCGI share (DESIGN.md "one code path"):
 * finding the script (path walk: SCRIPT_NAME / PATH_INFO), the request's
 * meta-variables, the response side (header block through cgi_resp.c,
 * framing, buffering with a spill file, back-pressure) and the bounded wait
 * queue for a free process or connection. Only the transport differs. */
#ifndef PT_GW_H
#define PT_GW_H

#include "first.h"
#include "cgi_env.h"
#include "cgi_resp.h"
#include "ev.h"
#include <limits.h>

struct pt_req;
typedef struct pt_gw pt_gw;

/* What the connection may ask of the transport behind a response. */
typedef struct pt_gw_ops {
    /* the client took output: reading the program may go on */
    void (*drain)(pt_gw *g);
    /* the response is complete (or replaced by a local redirect): the
     * connection lets go; the transport finishes on its own */
    void (*detach)(pt_gw *g);
    /* the client went away before the response was complete */
    void (*abort)(pt_gw *g);
} pt_gw_ops;

/* The response-side state; embedded first in each transport's request. */
struct pt_gw {
    const pt_gw_ops *ops;
    struct pt_req *r; /* NULL once detached */
    pt_cgi_resp resp;
    bool nph, headers_done, buffering;
    int64_t cl;    /* Content-Length the program declared, -1 none */
    uint64_t sent; /* body bytes passed on */
    int spill_fd;
    uint64_t spill_off;
    struct pt_compress *z;       /* coding the body on the fly (zresp.c), NULL none */
    struct pt_cache_fill *cache; /* the response is being stored (cache.c), NULL none */
};

void pt_gw_init(pt_gw *g, const pt_gw_ops *ops, struct pt_req *r, bool buffering, bool nph);
/* Free the parser and the spill file. */
void pt_gw_release(pt_gw *g);
/* Attach to / detach from the connection (c->gw, c->gw_done). */
void pt_gw_attach(pt_gw *g, struct pt_req *r);
void pt_gw_unlink(pt_gw *g);

enum { PT_GW_OK = 0, PT_GW_BAD = -1, PT_GW_GONE = 1 };
/* Output bytes of the program. PT_GW_OK; PT_GW_BAD when the header block
 * is invalid (why says how; the transport logs and calls pt_gw_fail);
 * PT_GW_GONE when the connection let go (local redirect: ops->detach has
 * run; drop the rest). */
int pt_gw_output(pt_gw *g, const char *p, size_t n, char *why, size_t whylen);
/* The program's output ended. PT_GW_OK: the response is complete;
 * PT_GW_BAD: no complete header block (why says how; call pt_gw_fail). */
int pt_gw_end(pt_gw *g, char *why, size_t whylen);
/* Should reading the program pause until the client takes some output? */
bool pt_gw_backlogged(const pt_gw *g);
/* The connection's side of a failure: an error page while no status line
 * went out, else the client connection is cut (a truncated response is the
 * only honest signal left; reset when the body is close-delimited). The
 * connection detaches or aborts g later, as after any response. */
void pt_gw_fail(pt_gw *g, int status, const char *why);

/* ---- finding the script ------------------------------------------------- */

typedef struct pt_gw_script {
    char filename[PATH_MAX]; /* SCRIPT_FILENAME */
    char dir[PATH_MAX];      /* its directory (CGI working directory) */
    size_t script_name_len;  /* SCRIPT_NAME = c->path[0..script_name_len) */
    size_t path_info_off;    /* PATH_INFO = c->path + path_info_off */
    const char *doc_root;
    int fd;     /* the checked script (walked; O_RDONLY, or O_PATH when unreadable), or -1 */
    int dir_fd; /* the directory it was found in (walked), or -1 */
    bool dir_fd_owned;
} pt_gw_script;

/* Split c->path for c->loc: a single program (location "program"), a
 * directory walk (location "dir", or the document root for extension
 * locations: the first regular file is the script, which an extension rule
 * requires to end in its extension), or, with walk false, the whole prefix
 * (an application behind a FastCGI prefix). The walk resolves beneath the
 * script directory or the document root under the symlink policy
 * (resolve.c) and leaves the script's fd in s->fd and its directory's in
 * s->dir_fd, which the caller closes
 * (pt_gw_script_close). Returns 0 or an HTTP status (404 nothing there or
 * outside, 403 a directory or a forbidden path, 301 a script directory's
 * directory named without its slash). */
int pt_gw_resolve(struct pt_req *r, pt_gw_script *s, bool walk);
/* Answer pt_gw_resolve's status st: the redirect for 301, else the error
 * (why: for the log). */
void pt_gw_reject(struct pt_req *r, int st, const char *why);
/* Close s->fd (no-op when -1). */
void pt_gw_script_close(pt_gw_script *s);

/* ---- meta-variables ----------------------------------------------------- */

typedef struct pt_gw_env {
    pt_cgi_req req;
    char remote_port[12];
} pt_gw_env;

/* The RFC 3875 request description for the script s of c (cgi_env.c turns
 * it into an envp or FCGI_PARAMS). */
void pt_gw_env_init(pt_gw_env *e, struct pt_req *r, const pt_gw_script *s, const char *path);
/* The same for a transport that needs only some of it: meta false (HTTP)
 * leaves out what only CGI meta-variables carry (REMOTE_PORT, and
 * SERVER_ADDR / SERVER_PORT unless the request has no Host); s NULL: no
 * script (SCRIPT_NAME, PATH_INFO, SCRIPT_FILENAME, DOCUMENT_ROOT empty). */
void pt_gw_env_init_for(pt_gw_env *e, struct pt_req *r, const pt_gw_script *s, const char *path,
                        bool meta);

/* ---- waiting for a slot ------------------------------------------------- */

typedef struct pt_gw_queue {
    struct pt_req *head, *tail;
    unsigned len;
    uint64_t *gauge; /* the status counter that mirrors len (stats.h), or NULL */
} pt_gw_queue;

/* Park c until a slot frees; its timer fires after list's duration, and
 * the connection then answers 503 with why. */
void pt_gw_queue_push(pt_gw_queue *q, struct pt_req *r, pt_tlist *list, const char *why);
/* Take c out of whatever queue holds it (no-op when none). */
void pt_gw_queue_remove(struct pt_req *r);
/* The oldest waiting connection, out of the queue, timer stopped; NULL. */
struct pt_req *pt_gw_queue_pop(pt_gw_queue *q);

#endif
