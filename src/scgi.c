/* scgi.c: SCGI (python.ca/scgi/protocol.txt) as a codec of the upstream
 * machinery: the meta-variables from the one builder as a netstring of
 * NUL-separated names and values, CONTENT_LENGTH first and SCGI=1, then the
 * body raw; the answer is a CGI response (cgi_resp.c) that ends when the
 * server closes the connection, so nothing is pooled. */
#include "first.h"
#include "scgi.h"
#include "handler.h"
#include "conn.h"
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* room left before the headers for the netstring's "<length>:" */
#define PT_SCGI_PREFIX 24

typedef struct scgi_buf {
    char *p;
    size_t len, cap;
    bool failed;
} scgi_buf;

/* Append n bytes of p (NULL: n bytes of room, zeroed). */
static void put(scgi_buf *b, const char *p, size_t n)
{
    if (b->failed)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 2048;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (p)
        memcpy(b->p + b->len, p, n);
    else
        memset(b->p + b->len, 0, n);
    b->len += n;
}

static void add_var(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    /* the spec wants CONTENT_LENGTH first, which encode put there */
    if (nlen == PT_SLEN("CONTENT_LENGTH") && memcmp(name, "CONTENT_LENGTH", nlen) == 0)
        return;
    put(ctx, name, nlen);
    put(ctx, "", 1);
    put(ctx, value, vlen);
    put(ctx, "", 1);
}

static int encode(const pt_cgi_req *env, const pt_backend *b, uint64_t body_len, char **out,
                  size_t *len, bool *has_end)
{
    (void)b;
    scgi_buf h = {0};
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, body_len);

    put(&h, NULL, PT_SCGI_PREFIX);
    /* "CONTENT_LENGTH" NUL length NUL "SCGI" NUL "1" NUL: always, even 0 */
    put(&h, "CONTENT_LENGTH", sizeof("CONTENT_LENGTH"));
    put(&h, num, (size_t)n + 1);
    put(&h,
        "SCGI\0"
        "1",
        sizeof("SCGI\0"
               "1"));
    if (pt_cgi_env_try(env, add_var, &h) < 0)
        h.failed = true;
    put(&h, ",", 1);
    if (h.failed) {
        free(h.p);
        errno = ENOMEM;
        return -1;
    }
    /* the netstring's length counts the headers only (not ',') */
    n = snprintf(num, sizeof(num), "%zu:", h.len - PT_SCGI_PREFIX - 1);
    size_t start = PT_SCGI_PREFIX - (size_t)n;
    memcpy(h.p + start, num, (size_t)n);
    memmove(h.p, h.p + start, h.len - start);
    *out = h.p;
    *len = h.len - start;
    *has_end = body_len == 0; /* no end frame: nothing more to send */
    return 0;
}

const pt_upstream_codec pt_scgi_codec = {
    .name = "scgi",
    .eof_ends = true,
    .too_big = "a request header is too large for SCGI",
    .encode = encode,
    .dec_init = pt_upstream_dec_none,
    .dec_free = pt_upstream_dec_none,
    .feed = pt_upstream_feed_raw,
};

void pt_scgi_start(pt_req *r)
{
    pt_upstream_conn_start(r, &pt_scgi_codec);
}

const pt_handler pt_scgi_handler = {
    .name = "scgi",
    .kind = PT_H_SCGI,
    .flags = PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY,
    .start = pt_scgi_start,
    .worker = &pt_upstream_conn_worker,
};
