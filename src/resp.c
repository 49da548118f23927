/* resp.c: the response calls handlers make (resp.h), passed to the
 * connection's framer; what is the same for every protocol lives here: the
 * reason phrases, add_header, error_page's kept status and the error page. */
#include "first.h"
#include "resp.h"
#include "phases.h"
#include "conn.h"
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
static void add_headers(pt_req *r, int status)
{
    const pt_add_headers *h = r->loc     ? r->loc->ph.add_headers
                              : r->vhost ? r->vhost->ph.add_headers
                                         : NULL;
    if (!h)
        return;
    bool ok = status == 200 || status == 201 || status == 204 || status == 206 || status == 301 ||
              status == 302 || status == 303 || status == 304 || status == 307 || status == 308;
    if (!ok && !h->always)
        return;
    for (size_t i = 0; i < h->n; i++)
        pt_resp_header(r, h->v[i].name, h->v[i].value, strlen(h->v[i].value));
}

static void begin(pt_req *r, int status, const char *reason)
{
    r->status = status;
    r->conn->framer->begin(r, status, reason);
    add_headers(r, status);
}

void pt_resp_begin(pt_req *r, int status)
{
    /* an error page keeps the status of the error (nginx's error_page) */
    if (r->err_status && status == 200)
        status = r->err_status;
    begin(r, status, pt_status_reason(status));
}

void pt_resp_begin_reason(pt_req *r, int status, const char *reason)
{
    begin(r, status, reason && *reason ? reason : pt_status_reason(status));
}

void pt_resp_header(pt_req *r, const char *name, const char *value, size_t vlen)
{
    r->conn->framer->header(r, name, strlen(name), value, vlen);
}

void pt_resp_header_n(pt_req *r, const char *name, size_t nl, const char *value, size_t vlen)
{
    r->conn->framer->header(r, name, nl, value, vlen);
}

void pt_resp_headerf(pt_req *r, const char *name, const char *fmt, ...)
{
    char v[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    pt_resp_header(r, name, v, PT_MIN((size_t)n, sizeof(v) - 1));
}

void pt_resp_header_block(pt_req *r, const char *p, size_t n)
{
    if (n > 0)
        r->conn->framer->header_block(r, p, n);
}

void pt_resp_end(pt_req *r, int64_t content_length)
{
    r->conn->framer->end_head(r, content_length);
}

void pt_resp_end_stream(pt_req *r, int64_t content_length)
{
    r->conn->framer->end_stream(r, content_length);
}

void pt_resp_body(pt_req *r, const void *p, size_t n)
{
    r->conn->framer->body(r, p, n);
}

void pt_resp_body_file(pt_req *r, int fd, off_t off, uint64_t n)
{
    r->conn->framer->body_file(r, fd, off, n);
}

void pt_resp_body_ref(pt_req *r, const void *p, size_t n)
{
    r->conn->framer->body_ref(r, p, n);
}

char *pt_resp_body_reserve(pt_req *r, size_t n)
{
    return r->conn->framer->body_reserve(r, n);
}

void pt_resp_body_commit(pt_req *r, size_t n)
{
    r->conn->framer->body_commit(r, n);
}

void pt_resp_body_end(pt_req *r)
{
    r->conn->framer->body_end(r);
}

int pt_resp_interim(pt_req *r, const char *head, size_t n)
{
    return r->conn->framer->interim(r, head, n);
}

void pt_resp_kick(pt_req *r)
{
    r->conn->framer->kick(r);
}

void pt_resp_reset(pt_req *r)
{
    r->conn->framer->reset(r);
}

uint64_t pt_resp_queued(const pt_req *r)
{
    return r->conn->framer->queued(r);
}

bool pt_resp_unqueue(pt_req *r)
{
    return r->conn->framer->unqueue(r);
}

void pt_resp_cut(pt_req *r, int how)
{
    r->conn->framer->cut(r, how);
}

int pt_resp_raw(pt_req *r, const void *p, size_t n)
{
    return r->conn->framer->raw(r, p, n);
}

void pt_resp_redirect_slash(pt_req *r)
{
    size_t cap = r->path_len * 3 + 2;
    char *loc = malloc(cap + r->head.query.len + 2);
    if (!loc) {
        pt_conn_reject(r, 500, "out of memory", true);
        return;
    }
    size_t n = pt_escape_url_path(r->path, r->path_len, loc, cap);
    if (n + 1 >= cap) {
        free(loc);
        pt_conn_reject(r, 500, "redirect too long", true);
        return;
    }
    loc[n++] = '/';
    if (r->head.has_query) {
        loc[n++] = '?';
        memcpy(loc + n, r->head.query.p, r->head.query.len);
        n += r->head.query.len;
    }
    pt_resp_begin(r, 301);
    pt_resp_header(r, "Location", loc, n);
    pt_resp_header(r, "Content-Type", "text/html; charset=utf-8", 24);
    static const char body[] =
        "<html><head><title>301 Moved Permanently</title></head><body><h1>301 Moved "
        "Permanently</h1></body></html>\n";
    pt_resp_end(r, PT_SLEN(body));
    if (!r->is_head)
        pt_resp_body(r, body, PT_SLEN(body));
    free(loc);
}

void pt_resp_error(pt_req *r, int status, bool close)
{
    pt_resp_error_retry(r, status, close, 0);
}

void pt_resp_error_retry(pt_req *r, int status, bool close, unsigned retry_after_s)
{
    if (close)
        r->conn->close_after = true;
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
    pt_resp_begin(r, status);
    pt_resp_header(r, "Content-Type", "text/html; charset=utf-8", 24);
    if (status == 405) {
        const char *allow = r->allow ? r->allow : "GET, HEAD, OPTIONS";
        pt_resp_header(r, "Allow", allow, strlen(allow));
    }
    if (retry_after_s)
        pt_resp_headerf(r, "Retry-After", "%u", retry_after_s);
    else if (status == 503)
        pt_resp_header(r, "Retry-After", "5", 1);
    pt_resp_end(r, (int64_t)n);
    if (!r->is_head)
        pt_resp_body(r, body, n);
    else
        r->head_only = true;
}
