/* h1_resp.h: HTTP/1.1 response heads (status line, Date, Server, framing and
 * Connection), error pages, and the reason phrases. */
#ifndef PT_H1_RESP_H
#define PT_H1_RESP_H

#include "first.h"

struct pt_conn;

const char *pt_status_reason(int status);
/* Status line + Date + Server. */
void pt_resp_begin(struct pt_conn *c, int status);
void pt_resp_header(struct pt_conn *c, const char *name, const char *value, size_t vlen);
void pt_resp_headerf(struct pt_conn *c, const char *name, const char *fmt, ...) PT_PRINTF(3, 4);
/* Content-Length (or none when length < 0 for bodiless statuses),
 * Connection, blank line. */
void pt_resp_end(struct pt_conn *c, int64_t content_length);
/* Status line with the gateway's own reason phrase (empty: the standard one). */
void pt_resp_begin_reason(struct pt_conn *c, int status, const char *reason);
void pt_resp_header_n(struct pt_conn *c, const char *name, size_t nlen, const char *value,
                      size_t vlen);
/* Framing for a body produced piece by piece (gateways): Content-Length when
 * known (>= 0), else chunked on HTTP/1.1, else close-delimited. Bodiless
 * statuses (1xx, 204, 304) and HEAD get no body. */
void pt_resp_end_stream(struct pt_conn *c, int64_t content_length);
/* Body bytes (copied), with chunked framing when chosen; dropped for HEAD
 * and bodiless statuses. */
void pt_resp_body(struct pt_conn *c, const void *p, size_t n);
/* Body bytes that sit in a file (spilled gateway output). */
void pt_resp_body_file(struct pt_conn *c, int fd, off_t off, uint64_t n);
/* End of the body: the last chunk when chunked. */
void pt_resp_body_end(struct pt_conn *c);

/* 301 to the request's path with a '/' added (and its query): a directory
 * named without its slash, for the static handler and script directories. */
void pt_resp_redirect_slash(struct pt_conn *c);
/* A complete error response with the small HTML page. close forces
 * Connection: close. The log line is the caller's. */
void pt_resp_error(struct pt_conn *c, int status, bool close);
/* The same with "Retry-After: <retry_after_s>" (RFC 9110 §10.2.3); 0 sends
 * none (503 gets its usual 5 seconds). */
void pt_resp_error_retry(struct pt_conn *c, int status, bool close, unsigned retry_after_s);

#endif
