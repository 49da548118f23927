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
/* A complete error response with the small HTML page. close forces
 * Connection: close. The log line is the caller's. */
void pt_resp_error(struct pt_conn *c, int status, bool close);

#endif
