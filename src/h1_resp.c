/* h1_resp.c: the HTTP/1.1 framer (resp.h): serialises response heads into
 * the connection's output queue, and chunked framing when the length is not
 * known. Date comes from a once-per-second cache (httpdate.c). */
#include "first.h"
#include "h1_resp.h"
#include "conn.h"
#include "httpdate.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* Status line, Date and Server, written straight into the queue (no stdio:
 * this runs once per response). */
static void h1_begin(pt_req *r, int status, const char *reason)
{
    pt_conn *c = r->conn;
    r->head_out_start = c->out.bytes;
    const char *date = pt_httpdate_now();
    size_t rl = strlen(reason), sl = strlen(c->w->server_header);
    size_t need = 9 + 20 + 1 + rl + 8 + PT_HTTPDATE_LEN + 10 + sl + 2;
    char *p = pt_cq_reserve(&c->out, need);
    if (!p)
        return;
    char *s = p;
    memcpy(p, "HTTP/1.1 ", 9);
    p += 9;
    if (status >= 100 && status <= 999) {
        /* RFC 9110 §15: a status code is three digits */
        p[0] = (char)('0' + status / 100);
        p[1] = (char)('0' + status / 10 % 10);
        p[2] = (char)('0' + status % 10);
        p += 3;
    } else {
        p += pt_u64_dec(p, (uint64_t)(status < 0 ? 0 : status));
    }
    *p++ = ' ';
    memcpy(p, reason, rl);
    p += rl;
    memcpy(p, "\r\nDate: ", 8);
    p += 8;
    memcpy(p, date, PT_HTTPDATE_LEN);
    p += PT_HTTPDATE_LEN;
    memcpy(p, "\r\nServer: ", 10);
    p += 10;
    memcpy(p, c->w->server_header, sl);
    p += sl;
    *p++ = '\r';
    *p++ = '\n';
    pt_cq_commit(&c->out, (size_t)(p - s));
}

/* Most field names and many values are 8 to 16 bytes: two overlapping
 * word moves, not a call to memcpy. */
static inline void put_text(char *d, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
        return;
    }
    memcpy(d, s, n);
}

static void h1_header(pt_req *r, const char *name, size_t nl, const char *value, size_t vlen)
{
    char *p = pt_cq_reserve(&r->conn->out, nl + vlen + 4);
    if (!p)
        return;
    put_text(p, name, nl);
    p[nl] = ':';
    p[nl + 1] = ' ';
    put_text(p + nl + 2, value, vlen);
    p[nl + 2 + vlen] = '\r';
    p[nl + 3 + vlen] = '\n';
    pt_cq_commit(&r->conn->out, nl + vlen + 4);
}

static void h1_header_block(pt_req *r, const char *p, size_t n)
{
    pt_cq_append(&r->conn->out, p, n);
}

static void h1_end_head(pt_req *r, int64_t content_length)
{
    static const char cl[] = "Content-Length: ";
    static const char close[] = "Connection: close\r\n\r\n";
    static const char ka[] = "Connection: keep-alive\r\n\r\n";
    pt_conn *c = r->conn;
    char *p = pt_cq_reserve(&c->out, PT_SLEN(cl) + 20 + 2 + PT_SLEN(ka));
    if (p) {
        char *s = p;
        if (content_length >= 0) {
            memcpy(p, cl, PT_SLEN(cl));
            p += PT_SLEN(cl);
            p += pt_u64_dec(p, (uint64_t)content_length);
            *p++ = '\r';
            *p++ = '\n';
        }
        if (c->close_after) {
            memcpy(p, close, PT_SLEN(close));
            p += PT_SLEN(close);
        } else if (r->head.http_minor == 0) {
            memcpy(p, ka, PT_SLEN(ka));
            p += PT_SLEN(ka);
        } else {
            *p++ = '\r';
            *p++ = '\n';
        }
        pt_cq_commit(&c->out, (size_t)(p - s));
    }
    r->head_out_len = c->out.bytes - r->head_out_start;
}

static bool bodiless(const pt_req *r)
{
    return r->is_head || r->status < 200 || r->status == 204 || r->status == 304;
}

static void h1_end_stream(pt_req *r, int64_t content_length)
{
    r->chunked_out = false;
    if (r->status < 200 || r->status == 204 || r->status == 304) {
        h1_end_head(r, -1);
        return;
    }
    if (content_length >= 0) {
        h1_end_head(r, content_length);
        return;
    }
    if (r->head.http_minor >= 1 && r->head.http_major == 1) {
        /* RFC 9112 §7.1 */
        h1_header(r, "Transfer-Encoding", 17, "chunked", 7);
        r->chunked_out = !r->is_head;
    } else {
        /* HTTP/1.0: the end of the body is the end of the connection */
        r->conn->close_after = true;
    }
    h1_end_head(r, -1);
}

static void h1_body(pt_req *r, const void *p, size_t n)
{
    pt_cq *out = &r->conn->out;
    if (n == 0 || bodiless(r))
        return;
    if (r->chunked_out) {
        char hex[24];
        int k = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        pt_cq_append(out, hex, (size_t)k);
        pt_cq_append(out, p, n);
        pt_cq_append(out, "\r\n", 2);
        return;
    }
    pt_cq_append(out, p, n);
}

static void h1_body_file(pt_req *r, int fd, off_t off, uint64_t n)
{
    pt_cq *out = &r->conn->out;
    if (n == 0 || bodiless(r))
        return;
    if (r->chunked_out)
        pt_cq_printf(out, "%llx\r\n", (unsigned long long)n);
    pt_cq_append_file(out, fd, off, n);
    if (r->chunked_out)
        pt_cq_append(out, "\r\n", 2);
}

static void h1_body_ref(pt_req *r, const void *p, size_t n)
{
    pt_cq *out = &r->conn->out;
    if (n == 0 || bodiless(r))
        return;
    if (r->chunked_out)
        pt_cq_printf(out, "%zx\r\n", n);
    pt_cq_append_ref(out, p, n);
    if (r->chunked_out)
        pt_cq_append(out, "\r\n", 2);
}

static char *h1_body_reserve(pt_req *r, size_t n)
{
    /* in place only where no framing goes around the bytes */
    if (r->chunked_out || bodiless(r))
        return NULL;
    return pt_cq_reserve(&r->conn->out, n);
}

static void h1_body_commit(pt_req *r, size_t n)
{
    pt_cq_commit(&r->conn->out, n);
}

static void h1_body_end(pt_req *r)
{
    if (r->chunked_out)
        pt_cq_append(&r->conn->out, "0\r\n\r\n", 5);
    r->chunked_out = false;
}

/* HTTP/1.1 to HTTP/1.1: the upstream's 1xx head goes out as it came (the
 * codec checked it, RFC 9110 §15.2) */
static int h1_interim(pt_req *r, const char *head, size_t n)
{
    return pt_cq_append(&r->conn->out, head, n) < 0 ? -1 : 0;
}

/* One request at a time: the connection's state machine is the request's. */
static void h1_kick(pt_req *r)
{
    pt_conn_kick(r->conn);
}

static void h1_reset(pt_req *r)
{
    pt_conn_close(r->conn);
}

/* one request at a time: the connection's queue is the request's */
static uint64_t h1_queued(const pt_req *r)
{
    return r->conn->out.bytes;
}

static bool h1_unqueue(pt_req *r)
{
    pt_cq_clear(&r->conn->out);
    r->chunked_out = false;
    return true;
}

static void h1_cut(pt_req *r, int how)
{
    if (how == PT_CUT_RESET)
        pt_sock_reset(&r->conn->sock);
    r->conn->close_after = true;
}

static int h1_raw(pt_req *r, const void *p, size_t n)
{
    if (n == 0)
        return 0; /* asked whether raw bytes can go: they can */
    /* the program frames its own response: nothing can follow it */
    r->conn->close_after = true;
    return pt_cq_append(&r->conn->out, p, n) < 0 ? -1 : 0;
}

const pt_framer pt_h1_framer = {
    .begin = h1_begin,
    .header = h1_header,
    .header_block = h1_header_block,
    .end_head = h1_end_head,
    .end_stream = h1_end_stream,
    .body = h1_body,
    .body_file = h1_body_file,
    .body_ref = h1_body_ref,
    .body_reserve = h1_body_reserve,
    .body_commit = h1_body_commit,
    .body_end = h1_body_end,
    .interim = h1_interim,
    .kick = h1_kick,
    .reset = h1_reset,
    .queued = h1_queued,
    .unqueue = h1_unqueue,
    .cut = h1_cut,
    .raw = h1_raw,
};
