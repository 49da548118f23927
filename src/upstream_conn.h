/* upstream_conn.h: requests to application servers over sockets, for every
 * pooled transport (FastCGI, SCGI, uwsgi, HTTP): per-worker backend state, the
 * server choice (upstream.c), connections kept idle, the queue at max_conns,
 * connection caps learned from backlog stalls, timeouts, failover and retry.
 * What differs per protocol is a codec: how the request is framed and how
 * the response bytes are read. */
#ifndef PT_UPSTREAM_CONN_H
#define PT_UPSTREAM_CONN_H

#include "first.h"
#include "cgi_env.h"
#include "ev.h"

struct pt_req;
struct pt_worker;
struct pt_config;
struct pt_backend;
struct pt_handler_worker;

/* Its per-worker state, shared by every codec's handler (handler.h). */
extern const struct pt_handler_worker pt_upstream_conn_worker;

enum {
    PT_UEV_NONE, /* the codec wants more bytes */
    PT_UEV_OUT,  /* response bytes (header block, then body) */
    PT_UEV_ERR,  /* the program's error stream */
    PT_UEV_END,  /* the response is complete */
    PT_UEV_FAIL, /* a protocol failure: status, why, count */
    /* a 101 (HTTP): data/len the head for the client; the bytes after it
     * and the connection itself belong to the new protocol (tunnel.c) */
    PT_UEV_TUNNEL,
    /* a 1xx head (HTTP) for the client, before the final answer */
    PT_UEV_INTERIM
};

typedef struct pt_upstream_ev {
    int type;
    const char *data;
    size_t len;
    int status;     /* PT_UEV_FAIL: what the client gets */
    bool count;     /* PT_UEV_FAIL: counts toward the server's max_fails */
    bool end_after; /* PT_UEV_OUT: and the response is complete (set false before feed) */
    /* PT_UEV_OUT: the codec parsed the head into the gateway's pt_cgi_resp
     * itself (HTTP): it goes out even with no bytes (set false before feed) */
    bool head;
    char why[200];
} pt_upstream_ev;

/* What a protocol tells the shared machinery. Decoder state lives in the
 * request (dec_size bytes, zeroed before dec_init). */
typedef struct pt_upstream_codec {
    const char *name;   /* "fastcgi": the log prefix */
    size_t frame_len;   /* bytes before each body chunk; 0: the body goes raw */
    bool has_end_frame; /* an empty frame ends the body (FastCGI's empty STDIN) */
    bool eof_ends;      /* the server closing the connection ends the response */
    bool status_line;   /* the response starts with an HTTP status line */
    /* the program has an error stream (FastCGI's STDERR): its lines may come
     * long before the header block and keep the read timeout fresh; without
     * one, the header block must come whole within read_timeout */
    bool err_stream;
    /* the request goes on as HTTP (proxy.c): no CGI meta-variables are
     * sent, so none is made (no script split, no local address) */
    bool no_meta_vars;
    size_t dec_size;
    const char *too_big; /* the 431's reason when encode fails with E2BIG */
    /* The bytes before the body, in one malloc'd block (*out): meta-variables
     * from env, and the end frame when body_len is 0 and has_end_frame
     * (*has_end). 0, or -1 with errno (E2BIG: a variable too large for the
     * framing -> 431; ENOMEM). */
    int (*encode)(const pt_cgi_req *env, const struct pt_backend *b, uint64_t body_len, char **out,
                  size_t *len, bool *has_end);
    /* frame_len bytes of frame header for a body chunk of n (0: the end). */
    void (*frame)(char *hdr, size_t n);
    void (*dec_init)(void *dec);
    void (*dec_free)(void *dec);
    /* Decode: returns the bytes of p used; ev says what they were. */
    size_t (*feed)(void *dec, const char *p, size_t n, pt_upstream_ev *ev);
    /* Optional: the request goes to server si of b for client connection c
     * (after dec_init, on every attempt): what the decoder needs to know of
     * the request (HEAD) and of the server (its address). */
    void (*bind)(void *dec, struct pt_req *r, const struct pt_backend *b, size_t si);
    /* Optional, with eof_ends: does the server closing now end the response
     * cleanly (a close-delimited body) rather than cut it? */
    bool (*eof_ok)(void *dec);
    /* After PT_UEV_END: may the connection carry another request? NULL:
     * never (the connection is closed after each request). */
    bool (*reusable)(void *dec, const struct pt_backend *b);
    /* Optional: ask server si of b what it can take; the answer may lower
     * *cap (this worker's connections to it) and *told (the cap the worker
     * was told, which a learned one grows back to) until the worker stops. */
    void (*probe)(struct pt_worker *w, const struct pt_backend *b, size_t si, pt_tlist *timeout,
                  unsigned *cap, unsigned *told);
    /* Optional: the worker stops (probes in flight closed). */
    void (*stop)(struct pt_worker *w);
} pt_upstream_codec;

/* In the master, before the workers fork: the counters all workers share.
 * 0 or -1. */
int pt_upstream_conn_shared_init(const struct pt_config *cfg);
/* In the master: worker id of the current generation died; what it
 * counted in the shared counters is taken off. */
void pt_upstream_conn_worker_lost(int id);
/* Per-worker state for every configured backend. 0 or -1 (ENOMEM). */
int pt_upstream_conn_init(struct pt_worker *w);
/* Answer c (body already collected) through its location's backend,
 * speaking codec. Queues an error response itself when it cannot. */
/* For codecs whose response is the program's output as it comes (SCGI,
 * uwsgi): no decoder state, every byte goes out. */
void pt_upstream_dec_none(void *dec);
size_t pt_upstream_feed_raw(void *dec, const char *p, size_t n, pt_upstream_ev *ev);

void pt_upstream_conn_start(struct pt_req *r, const pt_upstream_codec *codec);
/* Graceful stop begins: idle pooled connections are closed. */
void pt_upstream_conn_quiesce(struct pt_worker *w);
/* Worker stop: close every backend connection, free everything. */
void pt_upstream_conn_shutdown(struct pt_worker *w);

#endif
