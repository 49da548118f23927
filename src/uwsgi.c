/* uwsgi.c: the uwsgi protocol (uWSGI's "The uwsgi protocol" page) as a
 * codec of the upstream machinery: a 4-byte header (modifier1 0 = WSGI,
 * datasize as 16-bit little-endian, modifier2 0), the meta-variables from
 * the one builder as 16-bit-length-prefixed name and value pairs, then the
 * body raw. The application answers with an HTTP status line and header
 * block (cgi_resp.c's status_line mode), ended by the server closing. */
#include "first.h"
#include "uwsgi.h"
#include "handler.h"
#include "conn.h"
#include "conf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PT_UWSGI_MAX 65535 /* datasize is 16 bits: the whole vars block */

typedef struct uwsgi_buf {
    char *p;
    size_t len;
    int err; /* ENOMEM, E2BIG */
} uwsgi_buf;

static void put_u16(char *p, size_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)(v >> 8);
}

static void add_var(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    uwsgi_buf *b = ctx;
    size_t need = 2 + nlen + 2 + vlen;
    if (b->err)
        return;
    /* b->p holds the 4-byte header and at most PT_UWSGI_MAX bytes of vars */
    if (need > PT_UWSGI_MAX - (b->len - 4)) {
        b->err = E2BIG;
        return;
    }
    put_u16(b->p + b->len, nlen);
    memcpy(b->p + b->len + 2, name, nlen);
    put_u16(b->p + b->len + 2 + nlen, vlen);
    memcpy(b->p + b->len + 4 + nlen, value, vlen);
    b->len += need;
}

static int encode(const pt_cgi_req *env, const pt_backend *bk, uint64_t body_len, char **out,
                  size_t *len, bool *has_end)
{
    (void)bk;
    /* built in one block of the largest size the protocol allows (no
     * regrowth), kept for the worker's life: a fresh 64 KiB block per
     * request cost more than the variables; the request keeps an exact copy */
    static char *block;
    if (!block && !(block = malloc(4 + PT_UWSGI_MAX))) {
        errno = ENOMEM;
        return -1;
    }
    uwsgi_buf b = {block, 4, 0};
    if (pt_cgi_env_try(env, add_var, &b) < 0)
        b.err = ENOMEM;
    if (b.err) {
        errno = b.err;
        return -1;
    }
    b.p[0] = 0; /* modifier1 0: a WSGI request */
    put_u16(b.p + 1, b.len - 4);
    b.p[3] = 0;
    if (!(*out = malloc(b.len))) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(*out, b.p, b.len);
    *len = b.len;
    *has_end = body_len == 0;
    return 0;
}

const pt_upstream_codec pt_uwsgi_codec = {
    .name = "uwsgi",
    .eof_ends = true,
    .status_line = true,
    /* nginx answers such a request with an error too; 431 says whose:
     * the client's headers (RFC 6585 §5) */
    .too_big = "the request's variables exceed uwsgi's 64 KiB",
    .encode = encode,
    .dec_init = pt_upstream_dec_none,
    .dec_free = pt_upstream_dec_none,
    .feed = pt_upstream_feed_raw,
};

void pt_uwsgi_start(pt_req *r)
{
    pt_upstream_conn_start(r, &pt_uwsgi_codec);
}

const pt_handler pt_uwsgi_handler = {
    .name = "uwsgi",
    .kind = PT_H_UWSGI,
    .flags = PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY,
    .start = pt_uwsgi_start,
    .worker = &pt_upstream_conn_worker,
};
