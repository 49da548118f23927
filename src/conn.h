/* conn.h: a client connection and its one request at a time: head, body,
 * response, keep-alive, pipelining, timeouts and lingering close. */
#ifndef PT_CONN_H
#define PT_CONN_H

#include "first.h"
#include "body.h"
#include "buf.h"
#include "chunked.h"
#include "conf.h"
#include "ev.h"
#include "h1_head.h"
#include "limit.h"
#include "worker.h"
#include <string.h>
#include <time.h>

typedef enum pt_conn_state {
    PT_CS_IDLE = 0, /* between requests, no bytes of the next head yet */
    PT_CS_HEAD,     /* reading a request head */
    PT_CS_BODY,     /* reading (discarding or collecting) a request body */
    PT_CS_WRITE,    /* response queued, flushing */
    PT_CS_LINGER,   /* write side shut, draining input before close */
    PT_CS_TUNNEL,   /* after a 101: bytes relayed to and from an upstream (tunnel.c) */
    PT_CS_CLOSED,
} pt_conn_state;

/* What only a request in progress needs: it lives at the start of the
 * connection's pooled block (with the input buffer, the header slots and
 * the path), which an idle keep-alive connection gives back, so an idle
 * connection costs struct pt_conn alone. */
typedef struct pt_req {
    struct pt_conn *conn; /* the connection it came on: socket I/O and framing go through it */
    /* routing: the header slots and the path live in the same block */
    pt_header *hdrs;
    char *path; /* normalised, NUL-terminated */
    size_t path_len;
    const pt_vhost *vhost;
    const pt_location *loc;
    const char *allow;
    pt_head head;
    /* the request's state: [head_len, body_pos) of the input is body read */
    size_t body_pos;
    uint64_t body_left;
    int status;
    bool is_head, head_only, body_chunked;
    bool req_complete; /* head and body read: the request was dispatched */
    bool logged;       /* its access-log line is written */
    bool body_collect;
    /* the response */
    bool chunked_out;         /* response body uses chunked framing */
    struct pt_fent *file_ent; /* the static file being sent (fcache.h) */
    uint64_t head_out_start, head_out_len, bytes_written;
    uint64_t t_start;         /* loop time the head began to arrive (the access log's duration) */
    time_t t_wall;            /* the same instant as wall-clock time (the access log's date) */
    pt_limit_hold limit_hold; /* limit_conn count of the current request (t NULL: none) */
    pt_chunked chunked;
    pt_body body; /* collected request body (CGI, FastCGI) */
    /* the client: the connection's (conn_* of pt_conn) unless real_ip_from
     * let a header name another for this request (realip.c) */
    unsigned char peer_addr[16];
    unsigned char peer_af; /* AF_INET (first 4 bytes of peer_addr), AF_INET6, AF_UNIX */
    uint16_t peer_port;
    unsigned char peer_key[16]; /* the address client limits count by (IPv4 as ::ffff:a.b.c.d) */
    bool local_known;           /* local_ip and local_port hold SERVER_ADDR / SERVER_PORT */
    size_t auth_user_len;       /* 0: nobody was authenticated */
    uint64_t body_t0;    /* loop time the body began: limits.body_min_rate counts from here */
    uint64_t body_rx;    /* body bytes received so far (framing included) */
    uint64_t body_stall; /* a streamed body's reading paused for the upstream since (0: not) */
    uint64_t gw_t_start; /* loop time the gateway started (0: none) */
    uint64_t gw_ms;      /* gateway time, for the access log */
    bool gw_ms_set;
    /* gateways */
    struct pt_gw *gw;         /* the gateway producing the response, NULL when none */
    struct pt_gw_queue *gw_q; /* waiting for a CGI process or FastCGI connection */
    struct pt_req *gw_qnext;  /* the next in that queue */
    const char *gw_q_why;     /* the 503's reason when a gateway queue's wait times out */
    bool gw_done;             /* the gateway delivered the whole response */
    struct pt_redir *redir;   /* the internal redirects' targets, kept until the request ends */
    int redirects;
    int err_status;       /* serving error_page for this status (its status line keeps it); 0: no */
    void *phase_job;      /* a router phase waiting off the loop (router.c), NULL: none */
    bool phases_dispatch; /* after it, the handler at once (a local redirect) */
    /* a backend's headers kept for the file its X-Sendfile named (xsend.c) */
    char *xs_hdrs, *xs_ctype;
    size_t xs_hdrs_len;
    struct pt_tunnel *tunnel; /* PT_CS_TUNNEL: the joined upstream connection (tunnel.c) */
    /* request_buffering = false: the body is read while the gateway runs,
     * body holding only what it has not sent yet (upstream_conn.c) */
    bool body_streaming, body_done;
    /* the response cache (cache.c): what it did (PT_CACHE_*, 0 nothing),
     * go to the backend without it (a fill waited for too long), when the
     * wait began, and the fill this request leads until its gateway takes it */
    int cache_status;
    bool cache_skip;
    uint64_t cache_wait_t0;
    uint64_t cache_gen; /* the entry a fill it waited for made: its answer */
    struct pt_cache_fill *cache_fill;
    struct pt_cache_ent *cache_ent; /* the entry being sent (its file stays open), NULL none */
    /* HTTP/2 (h2_conn.c): the stream (0: HTTP/1.1), the next request of
     * the connection, body bytes a known length still expects, stream
     * state */
    int32_t h2_sid;
    struct pt_req *h2_next, *h2_prev;
    uint64_t h2_left;
    bool h2_known_len, h2_body_end, h2_closed;
    bool h2_rst;       /* RST_STREAM submitted */
    bool h2_wait_body; /* dispatched when its body is complete */
    /* complete when its HEADERS came, routed once the read is parsed:
     * its links on h2_conn.c's ready list */
    struct pt_req *h2_rnext, *h2_rprev;
    uint32_t h2_held;  /* streamed body bytes whose window is not given back yet */
    pt_timer h2_timer; /* the stream's own wait (a gateway queue's) */
    /* Text, last: a request's block is zeroed up to peer_ip only, and
     * these get a NUL first byte (pt_req_zero): each
     * is "" until made, and most requests make none but peer_ip, so 480
     * bytes (8 cache lines) stay untouched. Nothing may follow them. */
    char peer_ip[48];  /* text of the client address, made on first use */
    char local_ip[48]; /* SERVER_ADDR / SERVER_PORT, read once when a gateway needs them */
    char local_port[8];
    char request_id[129]; /* made on first use ("" until then) */
    char auth_user[256];  /* REMOTE_USER after HTTP Basic authentication (router.c) */
} pt_req;

/* A request block made new, for HTTP/1.1's request and HTTP/2's streams
 * alike: zeroed up to its text, each text "" (a block handed back by an
 * earlier request still holds that one's) */
static inline void pt_req_zero(pt_req *r)
{
    memset(r, 0, offsetof(pt_req, peer_ip));
    r->peer_ip[0] = r->local_ip[0] = r->local_port[0] = '\0';
    r->request_id[0] = r->auth_user[0] = '\0';
}

/* room for pt_req at the start of a block, the input buffer 16-aligned */
#define PT_REQ_SIZE ((sizeof(pt_req) + 15) & ~(size_t)15)

struct pt_conn {
    pt_io io;
    pt_timer timer;
    pt_worker *w;
    pt_conn *prev, *next, *dead_next;
    int fd;
    pt_conn_state state;
    pt_sock sock;                   /* every byte to and from the client goes through it (sock.h) */
    const struct pt_framer *framer; /* turns its requests' responses into bytes (resp.h) */
    struct pt_h2c *h2;              /* it speaks HTTP/2 (h2_conn.c), NULL: HTTP/1.1 */
    uint64_t id;
    unsigned nreq;
    uint16_t listener; /* index + 1 in the worker's listeners; 0: none */

    /* the pooled block (NULL while idle): rq, then the input buffer, where
     * [0, head_len) is the current head and body bytes follow it */
    pt_req *rq;
    char *in;
    size_t in_len, in_cap;
    size_t head_len;
    pt_cq out;

    /* the current request */
    bool close_after;

    /* the connection's client (the TCP peer, or the PROXY protocol
     * header's); each request's own is its peer_* (realip.c) */
    unsigned char conn_addr[16];
    unsigned char conn_af;
    uint16_t conn_port;
    unsigned char tcp_addr[16], tcp_af; /* the peer as accepted ($proxy_addr) */
    /* conn_addr as text when it is IPv4 ("": not made yet, or IPv6):
     * a request from it copies its peer_ip from here, not formatting it */
    char ip4_text[16];
    bool proxy_pending;       /* its listener wants a PROXY header, not read yet */
    uint16_t proxy_len;       /* of the header so far (at most PT_PROXY_MAX) */
    unsigned char *proxy_buf; /* the header so far */
};

/* Take over an accepted socket (non-blocking); tls: from a TLS listener;
 * proxy: a PROXY protocol header comes first (realip.c); listener: its
 * index + 1 in w->ls (0: none, a socketpair of the worker's own). */
void pt_conn_accept(pt_worker *w, int fd, const void *peer, unsigned peerlen, bool tls, bool proxy,
                    unsigned listener);
/* The client's address as text ("192.0.2.1", "2001:db8::1", "unix"). */
const char *pt_conn_peer_ip(pt_conn *c);
/* The client's port: the current request's, else the connection's. */
uint16_t pt_conn_peer_port(const pt_conn *c);
/* The request's client address as text, made on first use. */
const char *pt_conn_req_ip(pt_req *r);
/* The current request's id (alog.h), made on first use. */
const char *pt_conn_request_id(pt_req *r);
/* Close now (no response). */
void pt_conn_close(pt_conn *c);
/* A lingering close: our side shut, what the client still sends read and
 * dropped (bounded in bytes and by the linger timer), then the close. A
 * close with unread input is a reset, and a reset can destroy the last
 * bytes still in flight to the client (a response, a GOAWAY). */
void pt_conn_linger(pt_conn *c);
/* Graceful stop: a connection idle between requests is closed after a short
 * grace (a request already on its way is still answered, with close); a
 * request in progress is answered, with close unless its head is out. */
void pt_conn_stop(pt_conn *c);
/* Log a rejected request and queue its error page; the connection closes
 * after it when close is set. */
void pt_conn_reject(pt_req *r, int status, const char *why, bool close);
/* error_page: serve the page the request's location names for status
 * (GET and HEAD only, once per request) by an internal redirect to a
 * static file, the status kept. false: none applies, the caller answers. */
bool pt_conn_error_page(pt_req *r, int status, bool close);
/* The router's phases, which waited (PT_ROUTE_WAIT), let the request go on
 * to its body and handler. */
void pt_conn_phases_done(pt_req *r);
/* Dispatch the request to its handler again (the cache's waiters). */
void pt_conn_redispatch(pt_req *r);
/* A gateway queued output or finished: flush and go on. */
void pt_conn_kick(pt_conn *c);
/* A gateway's script answered with a local redirect: serve that path as a
 * new GET (HEAD stays HEAD) within the same response. */
void pt_conn_local_redirect(pt_req *r, const char *loc, size_t len);
/* An internal redirect that keeps the request (method, body, REQUEST_URI):
 * the path and query of uri (len bytes, as on a request line) become the
 * request's, routed again (try_files, error_page). -1 when it is invalid. */
int pt_conn_reroute(pt_req *r, const char *uri, size_t len);
/* The same with a path that is already decoded and normalised (a file
 * try_files found), the query kept. */
int pt_conn_set_path(pt_req *r, const char *path, size_t len);

/* limits.body_min_rate, after Apache's mod_reqtimeout MinRate: the body
 * may take body_timeout plus one second per body_min_rate bytes received
 * (body_timeout alone is measured between reads: one byte now and then
 * would hold the request forever). true, with why for the 408's log line,
 * when r's body is slower; checked when bytes arrive. */
bool pt_conn_body_slow(pt_req *r, char *why, size_t whylen);

/* A streamed request body (request_buffering = false) was taken by the
 * gateway: reading the client may go on (sets interest only). */
void pt_conn_body_room(pt_req *r);

/* ---- the protocol-neutral steps of a request (HTTP/2 streams, h2_conn.c) */
/* A new request of c: its client, body store and defaults. */
void pt_conn_req_init(pt_req *r, pt_conn *c);
/* Path, virtual host, location and the router's phases: true, on to
 * pt_conn_admit; false: answered (or a phase waits: pt_conn_phases_done). */
bool pt_conn_route(pt_req *r, bool has_body);
/* Method, max_body, limit_conn and limit_req: true, the handler may have
 * it; false: answered. */
bool pt_conn_admit(pt_req *r, bool has_body);
/* Its access-log line and counters. */
void pt_conn_log(pt_req *r);
/* Give back what the request holds (limit count, handler state, body). */
void pt_conn_req_end(pt_req *r);

/* The timer that bounds r's wait in a gateway queue: HTTP/1.1's is the
 * connection's, an HTTP/2 stream has its own (its connection's times the
 * connection); when it fires the request is answered 503 (gw_q_why). */
pt_timer *pt_conn_req_timer(pt_req *r);

/* Release what a closed connection still holds (called after the event batch). */
void pt_conn_free(pt_conn *c);

#endif
