/* fcgi.c: FastCGI as a codec of the upstream machinery (upstream_conn.c):
 * the request head is FCGI_BEGIN_REQUEST + FCGI_PARAMS from the one
 * meta-variable builder, the body goes as FCGI_STDIN records, the response
 * is decoded record by record (fcgi_rec.c) into STDOUT, STDERR and
 * END_REQUEST. Also the FCGI_GET_VALUES probe that caps connections. */
#include "first.h"
#include "fcgi.h"
#include "handler.h"
#include "conf.h"
#include "conn.h"
#include "fcgi_rec.h"
#include "log.h"
#include "upstream_conn.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PT_FCGI_ID 1

/* ---- the codec ---------------------------------------------------------- */

static void add_param(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    pt_fcgi_params_add(ctx, name, nlen, value, vlen);
}

static int encode(const pt_cgi_req *env, const pt_backend *b, uint64_t body_len, char **out,
                  size_t *len, bool *has_end)
{
    pt_fcgi_params p;
    pt_fcgi_params_init(&p, PT_FCGI_ID);
    int rc = pt_cgi_env_try(env, add_param, &p);
    if (rc == 0)
        rc = pt_fcgi_params_finish(&p);
    if (rc < 0) {
        int e = errno;
        pt_fcgi_params_free(&p);
        errno = e;
        return -1;
    }
    /* without a body the empty STDIN record rides along: one send */
    *has_end = body_len == 0;
    *len = 16 + p.len + (*has_end ? FCGI_HEADER_LEN : 0);
    if (!(*out = malloc(*len))) {
        pt_fcgi_params_free(&p);
        errno = ENOMEM;
        return -1;
    }
    pt_fcgi_begin_request((unsigned char *)*out, PT_FCGI_ID, FCGI_RESPONDER, b->keepalive);
    memcpy(*out + 16, p.buf, p.len);
    if (*has_end)
        pt_fcgi_header((unsigned char *)*out + 16 + p.len, FCGI_STDIN, PT_FCGI_ID, 0, 0);
    pt_fcgi_params_free(&p);
    return 0;
}

/* Collected bodies go in chunks a multiple of 8 bytes long, and a
 * streamed one as it comes: no padding either way (§3.3 recommends
 * alignment, it does not require it) */
static void frame(char *hdr, size_t n)
{
    pt_fcgi_header((unsigned char *)hdr, FCGI_STDIN, PT_FCGI_ID, (uint16_t)n, 0);
}

static void dec_init(void *dec)
{
    pt_fcgi_dec_init(dec, PT_FCGI_ID);
}

static void dec_free(void *dec)
{
    pt_fcgi_dec_free(dec);
}

static void fail(pt_upstream_ev *ev, int status, bool count, const char *why)
{
    ev->type = PT_UEV_FAIL;
    ev->status = status;
    ev->count = count;
    snprintf(ev->why, sizeof(ev->why), "%s", why);
}

static size_t feed(void *dec, const char *p, size_t n, pt_upstream_ev *ev)
{
    pt_fcgi_event fe;
    size_t used = pt_fcgi_dec_feed(dec, p, n, &fe);
    ev->type = PT_UEV_NONE;
    ev->data = fe.data;
    ev->len = fe.len;
    switch (fe.type) {
    case PT_FCGI_EV_NONE:
    case PT_FCGI_EV_VALUES: /* not asked on request connections: ignored */
        break;
    case PT_FCGI_EV_STDOUT:
        ev->type = PT_UEV_OUT;
        break;
    case PT_FCGI_EV_STDERR:
        ev->type = PT_UEV_ERR;
        break;
    case PT_FCGI_EV_END:
        /* FCGI_END_REQUEST (FastCGI §5.5) */
        switch (fe.protocol_status) {
        case FCGI_REQUEST_COMPLETE:
            ev->type = PT_UEV_END;
            snprintf(ev->why, sizeof(ev->why),
                     "protocol error: END_REQUEST before the response header");
            break;
        case FCGI_OVERLOADED:
            fail(ev, 503, false, "overloaded");
            break;
        case FCGI_CANT_MPX_CONN:
            fail(ev, 502, false, "refused the request (cant_mpx_conn)");
            break;
        case FCGI_UNKNOWN_ROLE:
            fail(ev, 502, false, "refused the request (unknown_role)");
            break;
        default:
            fail(ev, 502, true, "protocol error: unknown END_REQUEST protocol status");
            break;
        }
        break;
    case PT_FCGI_EV_ERROR:
        ev->type = PT_UEV_FAIL;
        ev->status = 502;
        ev->count = true;
        snprintf(ev->why, sizeof(ev->why), "protocol error: %s", fe.error);
        break;
    }
    return used;
}

static bool reusable(void *dec, const pt_backend *b)
{
    return b->keepalive && pt_fcgi_dec_idle(dec);
}

static void probe_start(pt_worker *w, const pt_backend *bc, size_t si, pt_tlist *timeout,
                        unsigned *cap, unsigned *told);
static void probes_stop(pt_worker *w);

const pt_upstream_codec pt_fcgi_codec = {
    .name = "fastcgi",
    .frame_len = FCGI_HEADER_LEN,
    .has_end_frame = true,
    .err_stream = true,
    .dec_size = sizeof(pt_fcgi_dec),
    .too_big = "a request header is too large for FastCGI",
    .encode = encode,
    .frame = frame,
    .dec_init = dec_init,
    .dec_free = dec_free,
    .feed = feed,
    .reusable = reusable,
    .probe = probe_start,
    .stop = probes_stop,
};

void pt_fcgi_start(pt_req *r)
{
    pt_upstream_conn_start(r, &pt_fcgi_codec);
}

const pt_handler pt_fcgi_handler = {
    .name = "fastcgi",
    .kind = PT_H_FASTCGI,
    .flags = PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_INDEX_EXT | PT_HF_STREAM_BODY,
    .start = pt_fcgi_start,
    .worker = &pt_upstream_conn_worker,
};

/* ---- FCGI_GET_VALUES ---------------------------------------------------- */

/* A one-off connection asking a server FCGI_GET_VALUES (FastCGI §4.1). */
typedef struct fprobe {
    pt_worker *w;
    const pt_backend *bc;
    size_t si;
    unsigned *cap;  /* the worker's cap for the server (upstream.c) */
    unsigned *told; /* ... and what it was told (upstream_conn.c) */
    int fd;
    bool connected;
    pt_io io;
    pt_timer timer;
    unsigned char req[128];
    size_t req_len, req_off;
    pt_fcgi_dec dec;
    struct fprobe *next, *prev;
} fprobe;

static fprobe *g_probes; /* in flight, this worker (one per process) */

static void probe_close(fprobe *pr)
{
    pt_worker *w = pr->w;
    pt_timer_stop(&pr->timer);
    pt_io_remove(&w->loop, &pr->io);
    close(pr->fd);
    pt_fcgi_dec_free(&pr->dec);
    if (pr->prev)
        pr->prev->next = pr->next;
    else
        g_probes = pr->next;
    if (pr->next)
        pr->next->prev = pr->prev;
    free(pr);
}

static void probes_stop(pt_worker *w)
{
    (void)w;
    while (g_probes)
        probe_close(g_probes);
}

typedef struct probe_vals {
    long max_conns, max_reqs;
} probe_vals;

static void on_value(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    probe_vals *v = ctx;
    char num[24];
    if (vlen == 0 || vlen >= sizeof(num))
        return;
    memcpy(num, value, vlen);
    num[vlen] = '\0';
    char *end;
    long n = strtol(num, &end, 10);
    if (*end || n <= 0)
        return;
    if (nlen == PT_SLEN(FCGI_MAX_CONNS) && memcmp(name, FCGI_MAX_CONNS, nlen) == 0)
        v->max_conns = n;
    else if (nlen == PT_SLEN(FCGI_MAX_REQS) && memcmp(name, FCGI_MAX_REQS, nlen) == 0)
        v->max_reqs = n;
}

/* The answer caps this worker's connections to the server at its share
 * of the smaller of FCGI_MAX_CONNS and FCGI_MAX_REQS (no multiplexing). */
static void probe_apply(fprobe *pr, const char *p, size_t len)
{
    probe_vals v = {0, 0};
    const pt_backend *bc = pr->bc;
    if (pt_fcgi_pairs(p, len, on_value, &v) < 0)
        return;
    long lim = v.max_conns;
    if (v.max_reqs && (!lim || v.max_reqs < lim))
        lim = v.max_reqs;
    if (lim <= 0) {
        pt_log_info("fastcgi %s (%s): FCGI_GET_VALUES answered without limits", bc->name,
                    bc->servers[pr->si].address);
        return;
    }
    unsigned nw = pr->w->cfg->workers > 0 ? (unsigned)pr->w->cfg->workers : 1;
    unsigned share = (unsigned)((lim + nw - 1) / nw);
    if (*pr->cap == 0 || share < *pr->cap)
        *pr->cap = share;
    if (*pr->told == 0 || share < *pr->told)
        *pr->told = share;
    pt_log_info("fastcgi %s (%s): FCGI_MAX_CONNS=%ld FCGI_MAX_REQS=%ld: at most %u connections "
                "per worker",
                bc->name, bc->servers[pr->si].address, v.max_conns, v.max_reqs, *pr->cap);
}
static void probe_io(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    fprobe *pr = io->data;
    if (!pr->connected) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(pr->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            probe_close(pr);
            return;
        }
        pr->connected = true;
    }
    if ((ev & EPOLLOUT) && pr->req_off < pr->req_len) {
        ssize_t n = send(pr->fd, pr->req + pr->req_off, pr->req_len - pr->req_off, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            probe_close(pr);
            return;
        }
        if (n > 0)
            pr->req_off += (size_t)n;
        if (pr->req_off == pr->req_len)
            pt_io_set(&pr->w->loop, &pr->io, EPOLLIN);
        return;
    }
    char buf[4096];
    ssize_t n = recv(pr->fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        probe_close(pr);
        return;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        pt_fcgi_event e;
        off += pt_fcgi_dec_feed(&pr->dec, buf + off, (size_t)n - off, &e);
        if (e.type == PT_FCGI_EV_VALUES)
            probe_apply(pr, e.data, e.len);
        if (e.type != PT_FCGI_EV_NONE) {
            probe_close(pr); /* answered, or something else: done either way */
            return;
        }
    }
}

static void probe_timer(pt_loop *l, pt_timer *t)
{
    (void)l;
    probe_close(t->data);
}

static void probe_start(pt_worker *w, const pt_backend *bc, size_t si, pt_tlist *timeout,
                        unsigned *cap, unsigned *told)
{
    const pt_fcgi_server *sv = &bc->servers[si];
    fprobe *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return;
    pr->fd = socket(sv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pr->fd < 0) {
        free(pr);
        return;
    }
    pr->w = w;
    pr->bc = bc;
    pr->si = si;
    pr->cap = cap;
    pr->told = told;
    pr->req_len = pt_fcgi_get_values(pr->req);
    pt_fcgi_dec_init(&pr->dec, 0);
    pt_io_init(&pr->io, pr->fd, probe_io, pr);
    pt_timer_init(&pr->timer, probe_timer, pr);
    pr->next = g_probes;
    if (pr->next)
        pr->next->prev = pr;
    g_probes = pr;
    if (connect(pr->fd, (const struct sockaddr *)&sv->addr, sv->addrlen) < 0 &&
        errno != EINPROGRESS) {
        probe_close(pr);
        return;
    }
    pt_io_set(&w->loop, &pr->io, EPOLLOUT);
    pt_timer_arm(&w->loop, &pr->timer, timeout);
}
