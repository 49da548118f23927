/* h1_resp.c: serialises response heads into the connection's output queue.
 * Date comes from a once-per-second cache (httpdate.c). */
#include "first.h"
#include "h1_resp.h"
#include "phases.h"
#include "conn.h"
#include "httpdate.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *pt_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 401:
        return "Unauthorized";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

/* add_header of the request's location (or vhost): on the statuses nginx
 * adds them to (success, redirects, 304), on every status with
 * add_header_always. Checked at load time (phases.c): no CR/LF. */
static void add_headers(pt_conn *c, int status)
{
    /* no request (an error before its block was taken): none */
    const pt_req *r = c->rq;
    const pt_add_headers *h = !r         ? NULL
                              : r->loc   ? r->loc->ph.add_headers
                              : r->vhost ? r->vhost->ph.add_headers
                                         : NULL;
    if (!h)
        return;
    bool ok = status == 200 || status == 201 || status == 204 || status == 206 || status == 301 ||
              status == 302 || status == 303 || status == 304 || status == 307 || status == 308;
    if (!ok && !h->always)
        return;
    for (size_t i = 0; i < h->n; i++)
        pt_resp_header(c, h->v[i].name, h->v[i].value, strlen(h->v[i].value));
}

/* Status line, Date and Server, written straight into the queue (no stdio:
 * this runs once per response). */
static void begin(pt_conn *c, int status, const char *reason)
{
    c->rq->status = status;
    c->rq->head_out_start = c->out.bytes;
    const char *date = pt_httpdate_now();
    size_t rl = strlen(reason), sl = strlen(c->w->server_header);
    size_t need = 9 + 20 + 1 + rl + 8 + PT_HTTPDATE_LEN + 10 + sl + 2;
    char *p = pt_cq_reserve(&c->out, need);
    if (!p)
        return;
    char *s = p;
    memcpy(p, "HTTP/1.1 ", 9);
    p += 9;
    p += pt_u64_dec(p, (uint64_t)(status < 0 ? 0 : status));
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
    add_headers(c, status);
}

void pt_resp_begin(pt_conn *c, int status)
{
    /* an error page keeps the status of the error (nginx's error_page) */
    if (c->rq && c->rq->err_status && status == 200)
        status = c->rq->err_status;
    begin(c, status, pt_status_reason(status));
}

void pt_resp_begin_reason(pt_conn *c, int status, const char *reason)
{
    begin(c, status, reason && *reason ? reason : pt_status_reason(status));
}

void pt_resp_header(pt_conn *c, const char *name, const char *value, size_t vlen)
{
    pt_resp_header_n(c, name, strlen(name), value, vlen);
}

void pt_resp_header_n(pt_conn *c, const char *name, size_t nl, const char *value, size_t vlen)
{
    char *p = pt_cq_reserve(&c->out, nl + vlen + 4);
    if (!p)
        return;
    memcpy(p, name, nl);
    p[nl] = ':';
    p[nl + 1] = ' ';
    memcpy(p + nl + 2, value, vlen);
    p[nl + 2 + vlen] = '\r';
    p[nl + 3 + vlen] = '\n';
    pt_cq_commit(&c->out, nl + vlen + 4);
}

void pt_resp_headerf(pt_conn *c, const char *name, const char *fmt, ...)
{
    char v[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pt_resp_header(c, name, v, PT_MIN((size_t)n, sizeof(v) - 1));
}

void pt_resp_end(pt_conn *c, int64_t content_length)
{
    static const char cl[] = "Content-Length: ";
    static const char close[] = "Connection: close\r\n\r\n";
    static const char ka[] = "Connection: keep-alive\r\n\r\n";
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
        } else if (c->rq->head.http_minor == 0) {
            memcpy(p, ka, PT_SLEN(ka));
            p += PT_SLEN(ka);
        } else {
            *p++ = '\r';
            *p++ = '\n';
        }
        pt_cq_commit(&c->out, (size_t)(p - s));
    }
    c->rq->head_out_len = c->out.bytes - c->rq->head_out_start;
}

static bool bodiless(const pt_conn *c)
{
    return c->rq->is_head || c->rq->status < 200 || c->rq->status == 204 || c->rq->status == 304;
}

void pt_resp_end_stream(pt_conn *c, int64_t content_length)
{
    c->rq->chunked_out = false;
    if (c->rq->status < 200 || c->rq->status == 204 || c->rq->status == 304) {
        pt_resp_end(c, -1);
        return;
    }
    if (content_length >= 0) {
        pt_resp_end(c, content_length);
        return;
    }
    if (c->rq->head.http_minor >= 1 && c->rq->head.http_major == 1) {
        /* RFC 9112 §7.1 */
        pt_resp_header(c, "Transfer-Encoding", "chunked", 7);
        c->rq->chunked_out = !c->rq->is_head;
    } else {
        /* HTTP/1.0: the end of the body is the end of the connection */
        c->close_after = true;
    }
    pt_resp_end(c, -1);
}

void pt_resp_body(pt_conn *c, const void *p, size_t n)
{
    if (n == 0 || bodiless(c))
        return;
    if (c->rq->chunked_out) {
        char hex[24];
        int k = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        pt_cq_append(&c->out, hex, (size_t)k);
        pt_cq_append(&c->out, p, n);
        pt_cq_append(&c->out, "\r\n", 2);
        return;
    }
    pt_cq_append(&c->out, p, n);
}

void pt_resp_body_file(pt_conn *c, int fd, off_t off, uint64_t n)
{
    if (n == 0 || bodiless(c))
        return;
    if (c->rq->chunked_out)
        pt_cq_printf(&c->out, "%llx\r\n", (unsigned long long)n);
    pt_cq_append_file(&c->out, fd, off, n);
    if (c->rq->chunked_out)
        pt_cq_append(&c->out, "\r\n", 2);
}

void pt_resp_body_end(pt_conn *c)
{
    if (c->rq->chunked_out)
        pt_cq_append(&c->out, "0\r\n\r\n", 5);
    c->rq->chunked_out = false;
}

void pt_resp_redirect_slash(pt_conn *c)
{
    size_t cap = c->rq->path_len * 3 + 2;
    char *loc = malloc(cap + c->rq->head.query.len + 2);
    if (!loc) {
        pt_conn_reject(c, 500, "out of memory", true);
        return;
    }
    size_t n = pt_escape_url_path(c->rq->path, c->rq->path_len, loc, cap);
    if (n + 1 >= cap) {
        free(loc);
        pt_conn_reject(c, 500, "redirect too long", true);
        return;
    }
    loc[n++] = '/';
    if (c->rq->head.has_query) {
        loc[n++] = '?';
        memcpy(loc + n, c->rq->head.query.p, c->rq->head.query.len);
        n += c->rq->head.query.len;
    }
    pt_resp_begin(c, 301);
    pt_resp_header(c, "Location", loc, n);
    pt_resp_header(c, "Content-Type", "text/html; charset=utf-8", 24);
    static const char body[] =
        "<html><head><title>301 Moved Permanently</title></head><body><h1>301 Moved "
        "Permanently</h1></body></html>\n";
    pt_resp_end(c, PT_SLEN(body));
    if (!c->rq->is_head)
        pt_cq_append(&c->out, body, PT_SLEN(body));
    free(loc);
}

void pt_resp_error(pt_conn *c, int status, bool close)
{
    pt_resp_error_retry(c, status, close, 0);
}

void pt_resp_error_retry(pt_conn *c, int status, bool close, unsigned retry_after_s)
{
    if (close)
        c->close_after = true;
    const char *reason = pt_status_reason(status);
    /* "<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body></html>\n" */
    static const char a[] = "<html><head><title>", b[] = "</title></head><body><h1>",
                      e[] = "</h1></body></html>\n";
    char line[64], body[256];
    size_t rl = PT_MIN(strlen(reason), (size_t)40);
    size_t ll = pt_u64_dec(line, (uint64_t)(status < 0 ? 0 : status));
    line[ll++] = ' ';
    memcpy(line + ll, reason, rl);
    ll += rl;
    size_t n = 0;
    memcpy(body + n, a, PT_SLEN(a));
    n += PT_SLEN(a);
    memcpy(body + n, line, ll);
    n += ll;
    memcpy(body + n, b, PT_SLEN(b));
    n += PT_SLEN(b);
    memcpy(body + n, line, ll);
    n += ll;
    memcpy(body + n, e, PT_SLEN(e));
    n += PT_SLEN(e);
    pt_resp_begin(c, status);
    pt_resp_header(c, "Content-Type", "text/html; charset=utf-8", 24);
    if (status == 405) {
        const char *allow = c->rq && c->rq->allow ? c->rq->allow : "GET, HEAD, OPTIONS";
        pt_resp_header(c, "Allow", allow, strlen(allow));
    }
    if (retry_after_s)
        pt_resp_headerf(c, "Retry-After", "%u", retry_after_s);
    else if (status == 503)
        pt_resp_header(c, "Retry-After", "5", 1);
    pt_resp_end(c, (int64_t)n);
    if (!c->rq->is_head)
        pt_cq_append(&c->out, body, n);
    else
        c->rq->head_only = true;
}
