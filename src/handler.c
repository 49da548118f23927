/* handler.c: the table of handlers and the connection's side of the handler
 * interface (handler.h). The one file that lists every handler; the
 * connection code reaches them only through here. */
#include "first.h"
#include "handler.h"
#include "cache.h"
#include "cgi.h"
#include "conf.h"
#include "conn.h"
#include "fcache.h"
#include "fcgi.h"
#include "gw.h"
#include "proxy.h"
#include "scgi.h"
#include "static.h"
#include "status.h"
#include "uwsgi.h"
#include "xsend.h"

#include <stdio.h>
#include <string.h>

/* The order is the one of "unknown handler" messages and of the worker
 * hooks (init, quiesce, child, stop). */
static const pt_handler *const table[] = {
    &pt_static_handler, &pt_cgi_handler,   &pt_fcgi_handler,   &pt_scgi_handler,
    &pt_uwsgi_handler,  &pt_proxy_handler, &pt_status_handler,
};

const pt_handler *pt_handler_find(const char *name)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(table); i++)
        if (strcmp(table[i]->name, name) == 0)
            return table[i];
    return NULL;
}

const char *pt_handler_names(void)
{
    static char list[256];
    if (list[0])
        return list;
    size_t len = 0, n = PT_ARRAY_LEN(table);
    for (size_t i = 0; i < n && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", table[i]->name,
                                i + 2 < n    ? ", "
                                : i + 2 == n ? " or "
                                             : "");
    return list;
}

const pt_handler *pt_handler_of(const pt_location *l)
{
    return l && l->h ? l->h : &pt_static_handler;
}

void pt_handler_start(pt_req *r)
{
    /* the response cache answers before a gateway starts (cache.c) */
    if (r->loc && r->loc->cache.on && pt_cache_handle(r))
        return;
    pt_handler_of(r->loc)->start(r);
}

void pt_handler_drain(pt_req *r)
{
    if (r && r->gw)
        r->gw->ops->drain(r->gw);
}

void pt_handler_release(pt_req *r, bool abort)
{
    pt_gw_queue_remove(r);
    pt_gw *g = r ? r->gw : NULL;
    if (!g)
        return;
    r->gw = NULL;
    if (abort)
        g->ops->abort(g);
    else
        g->ops->detach(g);
}

void pt_handler_done(pt_req *r)
{
    if (r && r->file_ent) {
        pt_fcache_release(r->conn->w->fcache, r->file_ent);
        r->file_ent = NULL;
    }
    pt_handler_release(r, false);
    pt_xsend_release(r);
    pt_cache_release(r);
}

/* Has an earlier handler of the table the same worker hooks? They run once. */
static bool seen_before(size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (table[k]->worker == table[i]->worker)
            return true;
    return false;
}

int pt_handler_worker_init(pt_worker *w)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(table); i++) {
        const pt_handler_worker *hw = table[i]->worker;
        if (hw && hw->init && !seen_before(i) && hw->init(w) < 0)
            return -1;
    }
    return 0;
}

#define EACH_WORKER_HOOK(hook, w)                                                                  \
    for (size_t i = 0; i < PT_ARRAY_LEN(table); i++) {                                             \
        const pt_handler_worker *hw = table[i]->worker;                                            \
        if (hw && hw->hook && !seen_before(i))                                                     \
            hw->hook(w);                                                                           \
    }

void pt_handler_worker_quiesce(pt_worker *w)
{
    EACH_WORKER_HOOK(quiesce, w)
}

void pt_handler_worker_child(pt_worker *w)
{
    EACH_WORKER_HOOK(child, w)
}

void pt_handler_worker_stop(pt_worker *w)
{
    EACH_WORKER_HOOK(stop, w)
}
