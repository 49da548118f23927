/* tunnel.h: a client connection and an upstream connection joined after a
 * 101 Switching Protocols (WebSocket and other Upgrades, RFC 9110 §7.8):
 * bytes relayed both ways, each way through a bounded buffer, until both
 * ways have ended or nothing moved for the backend's tunnel_timeout. */
#ifndef PT_TUNNEL_H
#define PT_TUNNEL_H

#include "first.h"
#include "ev.h"

struct pt_conn;

/* c (its request dispatched to a proxy location) becomes a tunnel to the
 * connected socket ufd, which it owns from now on: head (the 101's head for
 * the client) and rest (bytes the server sent after it) go out first; bytes
 * the client sent after its request are passed on first. idle: the timeout
 * list of tunnel_timeout. When something fails the connection is closed. */
void pt_tunnel_start(struct pt_conn *c, int ufd, pt_tlist *idle, const char *head, size_t hlen,
                     const char *rest, size_t rlen);
/* Events on the client's socket (conn.c, state PT_CS_TUNNEL). */
void pt_tunnel_client_io(struct pt_conn *c, uint32_t events);
/* The idle timeout ran out (conn.c's timer, state PT_CS_TUNNEL). */
void pt_tunnel_timeout(struct pt_conn *c);
/* The connection closes: the upstream side and the buffers go. */
void pt_tunnel_release(struct pt_conn *c);

#endif
