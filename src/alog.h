/* alog.h: access-log line formats: named fields in a template ("$status
 * $request_time", as nginx's log_format), the built-in "combined" line and
 * JSON lines; parsed once at configuration load, rendered per request from
 * a plain record (no pt_conn here, so the unit tests drive it alone). Also
 * the request id. */
#ifndef PT_ALOG_H
#define PT_ALOG_H

#include "first.h"
#include "h1_head.h"
#include <time.h>

typedef struct pt_alog_item {
    int var;    /* a field (enum in alog.c), or -1 for literal text */
    char *text; /* literal text, or the header name of $http_NAME ('_' as '-') */
    size_t len;
} pt_alog_item;

typedef struct pt_alog_fmt {
    pt_alog_item *items;
    size_t n;
    bool json; /* one JSON object per line, every field by name */
    bool uses_request_id;
} pt_alog_fmt;

/* "combined" (the default), "json", or a template of text and $name /
 * ${name} fields (see portico.conf(5)). 0, or -1 with a message in err
 * (unknown field, out of memory). */
int pt_alog_parse(const char *spec, pt_alog_fmt *f, char *err, size_t errlen);
void pt_alog_free(pt_alog_fmt *f);

/* What a line may say about one request. */
typedef struct pt_alog_rec {
    const char *remote_addr;
    unsigned remote_port;
    time_t t_wall;
    const char *request_line; /* raw first line of the head, or "-"; escaped when written */
    size_t request_line_len;
    const pt_head *head; /* NULL when no head was parsed */
    int status;
    uint64_t body_bytes, bytes_sent, bytes_received;
    uint64_t request_ms;
    int64_t gateway_ms; /* -1: no gateway */
    const char *request_id;
    const char *host; /* vhost's first name or the Host as sent; may be NULL */
    /* $proxy_addr: the TCP peer (4 or 16 bytes by proxy_af; NULL: none) */
    const unsigned char *proxy_addr;
    int proxy_af;
    const char *cache_status; /* $upstream_cache_status: "HIT"...; NULL: the cache did nothing */
} pt_alog_rec;

/* The line (with '\n') into out; its length (cut at cap - 1, never
 * mid-escape). Client bytes are escaped (\" \\ \xNN; JSON: RFC 8259). */
size_t pt_alog_format(const pt_alog_fmt *f, const pt_alog_rec *r, char *out, size_t cap);

/* A request id: X-Request-ID as sent when from_client and it is 1..128 of
 * [A-Za-z0-9._:+/=-], else 32 hex digits made from a per-process random
 * prefix and a counter. out: at least 129 bytes. */
void pt_alog_request_id(const pt_head *h, bool from_client, char *out);
/* Is v a usable client-supplied request id? */
bool pt_alog_request_id_ok(const char *v, size_t len);

#endif
