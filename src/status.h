/* status.h: the "status" handler: the shared counters (stats.h) as plain
 * text, JSON or the Prometheus text exposition format 0.0.4, for loopback
 * clients unless the location allows others; and the pure parts (format
 * choice, the loopback test, the renderers) the unit tests check alone. */
#ifndef PT_STATUS_H
#define PT_STATUS_H

#include "first.h"
#include "stats.h"

struct pt_req;
struct pt_worker;
struct pt_handler;

/* The handler (handler.h) */
extern const struct pt_handler pt_status_handler;

typedef enum pt_status_fmt {
    PT_STATUS_BAD = -1, /* ?format= names no format: 400 */
    PT_STATUS_TEXT = 0,
    PT_STATUS_JSON,
    PT_STATUS_PROMETHEUS,
} pt_status_fmt;

/* The format for a request: ?format=text|json|prometheus first, then a path
 * ending in "/metrics" (Prometheus' default scrape path), then an Accept
 * header naming application/json, or the exposition format
 * ("version=0.0.4", "application/openmetrics-text": we answer 0.0.4), else
 * text. query/accept may be NULL. */
pt_status_fmt pt_status_format(const char *path, size_t plen, const char *query, size_t qlen,
                               const char *accept, size_t alen);

/* Loopback: 127.0.0.0/8, ::1, and Unix sockets. addr holds 4 bytes for
 * AF_INET (IPv4-mapped addresses arrive as AF_INET), 16 for AF_INET6. */
bool pt_status_is_loopback(int af, const unsigned char *addr);

/* The page for s in format f, in a malloc'd buffer. 0, or -1 on ENOMEM. */
int pt_status_render(const pt_stats_snap *s, pt_status_fmt f, char **out, size_t *len);

/* The handler: a dispatched request of a handler = "status" location. */
void pt_status_serve(struct pt_req *r);

/* In a worker whose configuration has a status location: publish the
 * connection states and running CGI count to the shared slot now and then
 * (counting them per transition would cost every request). */
void pt_status_worker_start(struct pt_worker *w);
void pt_status_worker_stop(struct pt_worker *w);

#endif
