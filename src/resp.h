/* resp.h: the response as a handler makes it (status, headers, body), the
 * same calls whatever carries it: each connection has a framer (HTTP/1.1
 * today, h1_resp.c) that turns them into its protocol's bytes. */
#ifndef PT_RESP_H
#define PT_RESP_H

#include "first.h"
#include <sys/types.h>

struct pt_req;

/* A protocol's side of a response; every call is for one request r. */
typedef struct pt_framer {
    /* the status line (or its equivalent) with Date and Server */
    void (*begin)(struct pt_req *r, int status, const char *reason);
    void (*header)(struct pt_req *r, const char *name, size_t nlen, const char *value, size_t vlen);
    /* header lines already serialised as "Name: value\r\n" (kept blocks) */
    void (*header_block)(struct pt_req *r, const char *p, size_t n);
    /* end of the head: content_length < 0 for none (bodiless statuses) */
    void (*end_head)(struct pt_req *r, int64_t content_length);
    /* end of the head of a body produced piece by piece, length unknown (< 0) or known */
    void (*end_stream)(struct pt_req *r, int64_t content_length);
    void (*body)(struct pt_req *r, const void *p, size_t n);
    void (*body_file)(struct pt_req *r, int fd, off_t off, uint64_t n);
    /* body bytes queued by reference, not copied: p stays valid until the
     * request ends (a cached file's content, held by r->file_ent) */
    void (*body_ref)(struct pt_req *r, const void *p, size_t n);
    /* room for n body bytes written in place (a small file read straight
     * into the output), NULL when there is none; then commit what was put */
    char *(*body_reserve)(struct pt_req *r, size_t n);
    void (*body_commit)(struct pt_req *r, size_t n);
    void (*body_end)(struct pt_req *r);
    /* a 1xx head ahead of the final one (103 Early Hints, RFC 8297), as an
     * HTTP/1.1 upstream sent it ("HTTP/1.1 103 ...\r\n...\r\n\r\n"): 0,
     * or -1 when it could not be queued */
    int (*interim)(struct pt_req *r, const char *head, size_t n);
    /* output was queued or the response finished: send what can be sent */
    void (*kick)(struct pt_req *r);
    /* the response cannot be completed honestly: cut it (HTTP/1.1 closes
     * the connection, as nothing else tells the client) */
    void (*reset)(struct pt_req *r);
    /* response bytes of r queued and not written yet (a producer pauses
     * while it has enough queued: back-pressure per request) */
    uint64_t (*queued)(const struct pt_req *r);
    /* take back a head queued of which no byte went out, true when done
     * (a gateway's failure then still gets its own status); false when
     * the protocol cannot (an HTTP/2 HEADERS frame is submitted) */
    bool (*unqueue)(struct pt_req *r);
    /* the response ends otherwise than its head said (PT_CUT_*) */
    void (*cut)(struct pt_req *r, int how);
    /* bytes a program framed itself (an NPH script's HTTP/1.1 response),
     * passed on verbatim: 0, or -1 when the protocol cannot carry them */
    int (*raw)(struct pt_req *r, const void *p, size_t n);
} pt_framer;

enum {
    /* the response is whole, but the connection must carry no other
     * (HTTP/1.1 closes after it; an HTTP/2 stream is its own) */
    PT_CUT_NO_REUSE = 0,
    /* the body ends short of what the head promised: the client must see
     * a cut (HTTP/1.1 closes; HTTP/2 resets the stream, RFC 9113 §8.1.1) */
    PT_CUT_SHORT = 1,
    /* the same for a close-delimited body (RFC 9112 §8): only a TCP reset
     * tells it from a complete one on HTTP/1.1 */
    PT_CUT_RESET = 2,
};

const char *pt_status_reason(int status);
/* Status line + Date + Server (and the location's add_header). */
void pt_resp_begin(struct pt_req *r, int status);
void pt_resp_header(struct pt_req *r, const char *name, const char *value, size_t vlen);
void pt_resp_headerf(struct pt_req *r, const char *name, const char *fmt, ...) PT_PRINTF(3, 4);
/* Header lines already in "Name: value\r\n" form (a cached or kept block). */
void pt_resp_header_block(struct pt_req *r, const char *p, size_t n);
/* Content-Length (or none when length < 0 for bodiless statuses),
 * Connection, blank line. */
void pt_resp_end(struct pt_req *r, int64_t content_length);
/* Status line with the gateway's own reason phrase (empty: the standard one). */
void pt_resp_begin_reason(struct pt_req *r, int status, const char *reason);
void pt_resp_header_n(struct pt_req *r, const char *name, size_t nlen, const char *value,
                      size_t vlen);
/* Framing for a body produced piece by piece (gateways): Content-Length when
 * known (>= 0), else chunked on HTTP/1.1, else close-delimited. Bodiless
 * statuses (1xx, 204, 304) and HEAD get no body. */
void pt_resp_end_stream(struct pt_req *r, int64_t content_length);
/* Body bytes (copied), with chunked framing when chosen; dropped for HEAD
 * and bodiless statuses. */
void pt_resp_body(struct pt_req *r, const void *p, size_t n);
/* Body bytes that sit in a file (a static file, spilled gateway output). */
void pt_resp_body_file(struct pt_req *r, int fd, off_t off, uint64_t n);
/* Body bytes sent from where they are (no copy): p stays valid and
 * unchanged until the request ends (a cached file's content). */
void pt_resp_body_ref(struct pt_req *r, const void *p, size_t n);
/* Room for n body bytes to write in place, NULL when there is none (then
 * pt_resp_body_file); pt_resp_body_commit says how many were written. Only
 * for a length announced by pt_resp_end. */
char *pt_resp_body_reserve(struct pt_req *r, size_t n);
void pt_resp_body_commit(struct pt_req *r, size_t n);
/* End of the body: the last chunk when chunked. */
void pt_resp_body_end(struct pt_req *r);

/* A relayed 1xx head (the framer's interim): 0, or -1 out of memory. */
int pt_resp_interim(struct pt_req *r, const char *head, size_t n);

/* Output was queued or the response finished (r->gw_done): flush and go on. */
void pt_resp_kick(struct pt_req *r);
/* Nothing honest can be sent any more (a cut response): abort it. */
void pt_resp_reset(struct pt_req *r);
/* The framer's queued, unqueue, cut and raw (above) for r. */
uint64_t pt_resp_queued(const struct pt_req *r);
bool pt_resp_unqueue(struct pt_req *r);
void pt_resp_cut(struct pt_req *r, int how);
int pt_resp_raw(struct pt_req *r, const void *p, size_t n);

/* 301 to the request's path with a '/' added (and its query): a directory
 * named without its slash, for the static handler and script directories. */
void pt_resp_redirect_slash(struct pt_req *r);
/* A complete error response with the small HTML page. close forces
 * Connection: close. The log line is the caller's. */
void pt_resp_error(struct pt_req *r, int status, bool close);
/* The same with "Retry-After: <retry_after_s>" (RFC 9110 §10.2.3); 0 sends
 * none (503 gets its usual 5 seconds). */
void pt_resp_error_retry(struct pt_req *r, int status, bool close, unsigned retry_after_s);

#endif
