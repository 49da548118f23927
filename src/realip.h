/* realip.h: the real client address behind a load balancer: the PROXY
 * protocol header on listeners that ask for it (per connection), and
 * X-Forwarded-For from trusted peers (per request, the router's first
 * phase). Everything that reads c->peer_* (logs, gateways, limits, access
 * rules, the status page) then sees the client, not the balancer. */
#ifndef PT_REALIP_H
#define PT_REALIP_H

#include "first.h"
#include "access.h"
#include "h1_head.h"

struct pt_conn;
struct pt_req;

/* real_ip_from / real_ip_header of a vhost (or the top level) */
typedef struct pt_realip_cfg {
    pt_access_list from; /* trusted peers: allow rules only */
    char *header;        /* "X-Forwarded-For" unless set */
    size_t header_len;
    bool is_forwarded; /* header is RFC 7239's Forwarded: its for= parameters */
} pt_realip_cfg;

/* Parse one real_ip_from or proxy_protocol_from entry ("10.0.0.0/8",
 * "::1") into r. 0 or -1 with why (which the caller prefixes with the
 * setting's name). */
int pt_realip_parse_from(const char *text, pt_access_rule *r, char *why, size_t whylen);

/* The client named by the header fields called name among h[0..n), read
 * right to left (fields last to first): the first address that trusted
 * does not match, or the leftmost when all are trusted (nginx's
 * real_ip_recursive on). Returns 1 with *af, addr (4 or 16 bytes) and
 * *port (0 when none was written), 0 when there is no such field, -1 when
 * an element reached is not an address. */
int pt_realip_pick(const pt_header *h, size_t n, const char *name, size_t name_len,
                   const pt_access_list *trusted, int *af, unsigned char *addr, uint16_t *port);

/* The same for RFC 7239 Forwarded fields: the for= node of each element,
 * right to left; an element that hides its node ("unknown", "_obfuscated")
 * or names none ends the search with 0 (the peer is kept, since who sent
 * it is not known); -1 when an element reached is malformed. IPv6 is
 * "[...]" (quoted), ports are taken and obfuscated ones dropped. */
int pt_realip_pick_forwarded(const pt_header *h, size_t n, const pt_access_list *trusted, int *af,
                             unsigned char *addr, uint16_t *port);

/* conn.c: a new connection (its peer_* set from accept); proxy: its
 * listener expects a PROXY protocol header first. */
void pt_realip_accept(struct pt_conn *c, bool proxy);
/* Read (part of) the PROXY header: 1 done (the address taken), 0 wait for
 * more input, -1 bad header or closed (logged; close the connection). */
int pt_realip_proxy_read(struct pt_conn *c);
/* Between requests: the connection's address again. */
void pt_realip_reset(struct pt_req *r);
/* The router's first phase: X-Forwarded-For (or real_ip_header) from a
 * peer in the vhost's real_ip_from replaces the address for this request. */
void pt_realip_request(struct pt_req *r);
/* Release what the connection holds (its partial PROXY header). */
void pt_realip_free(struct pt_conn *c);

#endif
