/* h2.h: HTTP/2 (RFC 9113) on one connection: an nghttp2 session fed from
 * portico's own event loop (bytes read go in, frames to write come out,
 * bounded), its streams' request heads decoded into pt_head, and each
 * stream's response taken from its own bounded queue. It knows no socket
 * and no handler: the connection owns the I/O and the requests. */
#ifndef PT_H2_H
#define PT_H2_H

#include "first.h"
#include "buf.h"
#include "h1_head.h"

typedef struct pt_h2 pt_h2;

/* What the session tells its owner; ud is pt_h2_new's. */
typedef struct pt_h2_cbs {
    /* a stream's request head is complete; end_stream: no body follows.
     * h stays valid until the stream is closed. */
    void (*request)(void *ud, int32_t sid, const pt_head *h, bool end_stream);
    /* request body bytes: false, their flow-control window is given back
     * at once (the owner stored or dropped them); true, the owner holds
     * them until it calls pt_h2_consume (a body streamed to an upstream:
     * the client sends no faster than the upstream takes) */
    bool (*body)(void *ud, int32_t sid, const void *p, size_t n);
    void (*body_end)(void *ud, int32_t sid);
    /* the stream is gone: answered (code 0) or reset (RST_STREAM, a
     * connection error): its request must be released like a client
     * disconnect */
    void (*closed)(void *ud, int32_t sid, uint32_t code);
} pt_h2_cbs;

typedef struct pt_h2_limits {
    uint32_t max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS */
    size_t header_bytes;   /* a request head's fields, decoded (431 past it) */
    size_t max_headers;    /* fields per request */
    uint32_t max_requests; /* streams over the connection's life, then GOAWAY (0: no cap) */
} pt_h2_limits;

/* The server side of a connection whose client preface comes next (ALPN
 * "h2" or h2c prior knowledge); SETTINGS are queued at once. NULL: out of
 * memory. */
pt_h2 *pt_h2_new(const pt_h2_cbs *cbs, void *ud, const pt_h2_limits *lim);
void pt_h2_free(pt_h2 *h);

/* Bytes read from the client: 0, or -1 when the connection must end
 * (a connection error: the GOAWAY is queued, send it, then close). */
int pt_h2_recv(pt_h2 *h, const void *p, size_t n);
/* Frames to write, appended to out, about max bytes at most: the bytes,
 * or -1 on a fatal error. */
ssize_t pt_h2_send(pt_h2 *h, pt_cq *out, size_t max);
/* The session wants to read more / has frames to send; neither: done. */
bool pt_h2_want_read(const pt_h2 *h);
bool pt_h2_want_write(const pt_h2 *h);
/* Graceful stop (RFC 9113 §6.8): GOAWAY naming the last stream taken;
 * streams in flight finish, no new ones start. */
void pt_h2_goaway(pt_h2 *h);
/* Streams open now. */
size_t pt_h2_streams(const pt_h2 *h);
/* The connection turned idle (no stream, nothing to write): the session's
 * long-lived pages it can do without until the next frame go back to the
 * kernel (a system call: once an idle period, not per wake-up). */
void pt_h2_idle(pt_h2 *h);
/* The owner's pointer for a stream (its request), kept by the session so
 * that a callback finds it without a search; NULL when there is none. It
 * is still there inside the stream's closed callback. */
void pt_h2_set_owner(pt_h2 *h, int32_t sid, void *owner);
void *pt_h2_owner(pt_h2 *h, int32_t sid);

/* ---- hostile clients: the bounds (SECURITY.md's HTTP/2 rows) ------------ */
/* A new read round of the event loop: streams opened in one round are
 * counted (rapid reset, CVE-2023-44487). */
void pt_h2_round(pt_h2 *h);
/* Why the session ended the connection or refused the client (a bound it
 * hit: rapid reset, a flood, CONTINUATION without end...), once; NULL when
 * nothing new happened. The owner logs it with the client's address. */
const char *pt_h2_trouble(pt_h2 *h);
/* Zero-window stalls: a stream's response waits for the client's
 * flow-control window alone. The owner marks the stalled streams when it
 * starts its write timeout; when that expires, the streams still stalled
 * since the mark, without a DATA byte sent, are reset (nginx's send_timeout
 * per stream) and the others marked anew: the number reset. */
bool pt_h2_stalled(const pt_h2 *h);
void pt_h2_stall_mark(pt_h2 *h);
size_t pt_h2_stall_reset(pt_h2 *h, uint32_t code);

/* A stream's response, in the order a framer gets it (resp.h): the head
 * fields collected, then submitted at end_head. Names are lowercased and
 * connection-specific fields dropped (RFC 9113 §8.2.2). */
int pt_h2_resp_begin(pt_h2 *h, int32_t sid, int status);
/* The Date (PT_HTTPDATE_LEN bytes, copied) and Server fields, first after
 * :status; server is not copied: it must outlive the stream. */
int pt_h2_resp_std(pt_h2 *h, int32_t sid, const char *date, const char *server, size_t sl);
int pt_h2_resp_header(pt_h2 *h, int32_t sid, const char *name, size_t nl, const char *value,
                      size_t vl);
/* "Name: value\r\n" lines (a kept block) */
int pt_h2_resp_header_block(pt_h2 *h, int32_t sid, const char *p, size_t n);
/* content_length >= 0 adds content-length; body false: HEADERS with
 * END_STREAM (HEAD, 204, 304), else DATA frames follow from the queue. */
int pt_h2_resp_end_head(pt_h2 *h, int32_t sid, int64_t content_length, bool body);
int pt_h2_body(pt_h2 *h, int32_t sid, const void *p, size_t n);
/* a file range, read in windows of one DATA frame when it is sent; the fd
 * stays open until the stream is closed */
int pt_h2_body_file(pt_h2 *h, int32_t sid, int fd, off_t off, uint64_t n);
/* bytes queued by reference (copied into DATA frames as they are sent):
 * p stays valid until the stream is closed */
int pt_h2_body_ref(pt_h2 *h, int32_t sid, const void *p, size_t n);
int pt_h2_body_end(pt_h2 *h, int32_t sid);
/* Response bytes of the stream not yet framed: a producer waits while it
 * has enough queued (back-pressure per stream, not per connection). */
uint64_t pt_h2_queued(pt_h2 *h, int32_t sid);
/* A 1xx head as an HTTP/1.1 upstream sent it ("HTTP/1.1 103 ...\r\n"
 * fields "\r\n\r\n") as a HEADERS frame without END_STREAM, before the
 * response's: 0, or -1 (the response is submitted, out of memory). */
int pt_h2_interim(pt_h2 *h, int32_t sid, const char *head, size_t n);
/* Give back n bytes of flow-control window the owner held (its body
 * callback returned true), to the stream and the connection; a stream
 * already closed gives back the connection's part alone. */
void pt_h2_consume(pt_h2 *h, int32_t sid, size_t n);
/* Cut a stream (RST_STREAM with code, RFC 9113 §6.4). */
int pt_h2_reset(pt_h2 *h, int32_t sid, uint32_t code);

#endif
