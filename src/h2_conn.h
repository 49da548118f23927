/* h2_conn.h: a client connection that speaks HTTP/2 (RFC 9113): its
 * session (h2.c) fed from the connection's socket, a pt_req per stream run
 * through the same router phases and handlers as HTTP/1.1, and the framer
 * that turns their responses into the stream's frames. conn.c hands the
 * connection over after the TLS handshake chose "h2" (or, with
 * http2_cleartext, when a plain one opens with the client preface). */
#ifndef PT_H2_CONN_H
#define PT_H2_CONN_H

#include "first.h"
#include "conn.h"
#include "resp.h"

struct pt_h2c;

extern const pt_framer pt_h2_framer;

/* At the connection's first bytes: 1 it speaks HTTP/2 now (taken over, or
 * closed), 0 it does not, -1 a plain connection's bytes so far are the
 * start of the preface (wait for more). */
int pt_h2c_detect(pt_conn *c);
/* The connection's socket events and timer, while c->h2 is set. */
void pt_h2c_io(pt_conn *c, uint32_t events);
void pt_h2c_timer(pt_conn *c);
/* Frames to send: write what can be written. */
void pt_h2c_flush(pt_conn *c);
/* Graceful stop: GOAWAY, the streams in flight finish, then the close. */
void pt_h2c_stop(pt_conn *c);
/* The connection closes: every stream still open ends as a client
 * disconnect (a running program is stopped), the session is freed. */
void pt_h2c_close(pt_conn *c);
/* A router phase that waited is over (pt_conn_phases_done), or the
 * handler is asked again (pt_conn_redispatch). */
void pt_h2c_phases_done(pt_req *r);
/* A streamed request body (request_buffering = false) was taken by the
 * gateway: the client may send more (its window is given back). */
void pt_h2c_body_room(pt_req *r);
void pt_h2c_redispatch(pt_req *r);

#endif
