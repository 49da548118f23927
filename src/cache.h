/* cache.h: the response cache for gateway responses (nginx's fastcgi_cache
 * and proxy_cache, RFC 9111 as a shared cache): the index all workers share
 * (mapped by the master), entry files under cache_dir, the lookup before a
 * gateway starts (HIT served from the file, waiting for another request's
 * fill, stale while updating), the fill that tees a gateway's response into
 * a temp file renamed in at its end, PURGE, and the counters. */
#ifndef PT_CACHE_H
#define PT_CACHE_H

#include "first.h"

struct pt_req;
struct pt_config;
struct pt_gw;
struct pt_cache_fill;

/* What the cache did for a request (X-Cache-Status, $upstream_cache_status). */
enum {
    PT_CACHE_NONE = 0,
    PT_CACHE_MISS,
    PT_CACHE_BYPASS,
    PT_CACHE_EXPIRED,
    PT_CACHE_STALE,
    PT_CACHE_UPDATING,
    PT_CACHE_HIT,
    PT_CACHE_REVALIDATED,
};
/* "HIT", "MISS"... ; NULL for PT_CACHE_NONE */
const char *pt_cache_status_name(int st);

/* ---- the master ---- */
/* Make cache_dir (owned by the workers' user, mode 0700) and map the shared
 * index, before the workers fork. A reload with the same cache_dir and
 * cache_entries keeps the index (and the entries). 0, or -1 with err. */
int pt_cache_shared_init(const struct pt_config *cfg, char *err, size_t errlen);

/* ---- a worker ---- */
/* Its start: one worker fills a fresh index from the entry files in
 * cache_dir (in the background); its end: the open entries are closed. */
struct pt_worker;
void pt_cache_worker_start(struct pt_worker *w);
void pt_cache_worker_stop(struct pt_worker *w);

/* ---- the connection (conn.c) ---- */
/* Before c's gateway starts: true when the cache answered (a hit, a stale
 * entry, a purge) or holds c waiting for another request's fill; false:
 * start the gateway (c may now lead a fill, which the gateway takes). */
bool pt_cache_handle(struct pt_req *r);
/* The request ends: its fill, unless complete, is given up (the next
 * request fills), the entry file it sent is closed. */
void pt_cache_release(struct pt_req *r);
/* An error response (status) is about to go out: when the request found
 * an expired entry and its location has cache_use_stale "error", the entry
 * is served instead (STALE) and true returned. */
bool pt_cache_stale_on_error(struct pt_req *r, int status, const char *why);

/* ---- the gateway's response (gw.c) ---- */
/* The fill c leads, if any: the gateway writes into it while attached to c
 * (the request owns it). */
struct pt_cache_fill *pt_cache_fill_of(struct pt_req *r);
/* The header block is parsed (status, headers in g->resp), the head being
 * built: decide whether the response may be stored (RFC 9111 §3) and start
 * its temp file; add X-Cache-Status. */
void pt_cache_gw_head(struct pt_gw *g);
/* Body bytes as the backend sent them (before compression). */
void pt_cache_fill_body(struct pt_gw *g, const void *p, size_t n);
/* The backend answered 304 to the validators the cache sent for an expired
 * entry (RFC 9111 §4.3): the entry is fresh again and answers c; true (the
 * caller detaches the gateway). false: not a revalidation. */
bool pt_cache_revalidated(struct pt_gw *g);
/* The response is complete: the entry is renamed in and indexed. */
void pt_cache_fill_end(struct pt_gw *g);
/* Give up (when not ended) and free. NULL is fine (pt_cache_release). */
void pt_cache_fill_free(struct pt_cache_fill *f);

/* ---- the status page ---- */
typedef struct pt_cache_stats {
    bool on;
    const char *name; /* a zone's (pt_cache_zone_stats), NULL for the sum */
    uint64_t hits, misses, expired, stale, updating, bypass, revalidated, background;
    uint64_t stores, evictions, purges;
    uint64_t entries, bytes, max_bytes;
} pt_cache_stats;
void pt_cache_stats_get(pt_cache_stats *s);
/* Zone i's own figures (i from 0): false past the last zone. */
bool pt_cache_zone_stats(size_t i, pt_cache_stats *s);

#endif
