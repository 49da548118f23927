/* status.c: the status page. A snapshot of the shared counters (stats.c)
 * rendered as text for people, JSON for scripts, or the Prometheus text
 * exposition format 0.0.4 for scrapers; loopback clients only unless the
 * location says status_allow_remote. Also the sampler that keeps each
 * worker's connection-state gauges fresh. */
#include "first.h"
#include "status.h"
#include "cgi.h"
#include "handler.h"
#include "cache.h"
#include "conn.h"
#include "resp.h"
#include "util.h"
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* how often each worker publishes its connection states (ms) */
#define PT_STATUS_SAMPLE_MS 1000

/* ---- choosing the format ------------------------------------------------ */

static bool ci_contains(const char *h, size_t hl, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= hl; i++)
        if (strncasecmp(h + i, needle, nl) == 0)
            return true;
    return false;
}

pt_status_fmt pt_status_format(const char *path, size_t plen, const char *query, size_t qlen,
                               const char *accept, size_t alen)
{
    static const struct {
        const char *name;
        pt_status_fmt f;
    } names[] = {
        {"text", PT_STATUS_TEXT}, {"json", PT_STATUS_JSON}, {"prometheus", PT_STATUS_PROMETHEUS}};
    /* the last format= wins, as most query parsers do */
    pt_status_fmt from_query = PT_STATUS_BAD;
    bool asked = false;
    for (size_t i = 0; query && i < qlen;) {
        const char *amp = memchr(query + i, '&', qlen - i);
        size_t end = amp ? (size_t)(amp - query) : qlen;
        if (end - i >= 7 && memcmp(query + i, "format=", 7) == 0) {
            const char *v = query + i + 7;
            size_t vl = end - i - 7;
            asked = true;
            from_query = PT_STATUS_BAD;
            for (size_t k = 0; k < PT_ARRAY_LEN(names); k++)
                if (strlen(names[k].name) == vl && memcmp(v, names[k].name, vl) == 0)
                    from_query = names[k].f;
        }
        i = end + 1;
    }
    if (asked)
        return from_query;
    if (plen >= 8 && memcmp(path + plen - 8, "/metrics", 8) == 0)
        return PT_STATUS_PROMETHEUS;
    if (accept && ci_contains(accept, alen, "application/json"))
        return PT_STATUS_JSON;
    if (accept && (ci_contains(accept, alen, "version=0.0.4") ||
                   ci_contains(accept, alen, "application/openmetrics-text")))
        return PT_STATUS_PROMETHEUS;
    return PT_STATUS_TEXT;
}

bool pt_status_is_loopback(int af, const unsigned char *addr)
{
    static const unsigned char v6_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (af == AF_UNIX)
        return true; /* only local processes reach a Unix socket */
    if (af == AF_INET)
        return addr[0] == 127; /* RFC 1122 §3.2.1.3: all of 127/8 */
    if (af == AF_INET6)
        return memcmp(addr, v6_lo, 16) == 0; /* RFC 4291 §2.5.3 */
    return false;
}

/* ---- a growing buffer --------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) PT_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = PT_MAX(b->cap * 2, b->len + (size_t)n + 1);
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 if none. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c < 0x80                 ? 1
               : c >= 0xc2 && c <= 0xdf ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (n < 2)
        return n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

/* s escaped for a JSON string (RFC 8259 §7) or a Prometheus label value
 * (backslash, double quote and line feed), into out (cap bytes). Names
 * come from the configuration file as bytes: a byte that is not part of
 * well-formed UTF-8 becomes U+FFFD, since JSON (RFC 8259 §8.1) and the
 * Prometheus text format must be UTF-8, and nothing is cut mid-sequence. */
static const char *escape(const char *s, bool json, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        size_t n = ch >= 0x80 ? utf8_len((const unsigned char *)s) : 1;
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
        } else if (n > 1) {
            memcpy(out + o, s, n);
            o += n;
            s += n - 1;
        } else if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (ch < 0x20 && json) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            out[o++] = '?';
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return out;
}

static const char *const class_names[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

/* The backend entries ("" server) in order, each followed by its servers. */
static void each_backend(const pt_stats_snap *s,
                         void (*fn)(sbuf *b, const pt_stats_snap *s, size_t bi), sbuf *b)
{
    for (size_t i = 0; i < s->nsrv; i++)
        if (s->srv[i].server[0] == '\0')
            fn(b, s, i);
}

/* ---- plain text --------------------------------------------------------- */

static void text_backend(sbuf *b, const pt_stats_snap *s, size_t bi)
{
    char e[256];
    const pt_stats_snap_srv *be = &s->srv[bi];
    sb_printf(b, "backend %s: queued %llu\n", escape(be->backend, false, e, sizeof(e)),
              (unsigned long long)be->sum.queued);
    for (size_t i = 0; i < s->nsrv; i++) {
        const pt_stats_snap_srv *v = &s->srv[i];
        if (v->server[0] == '\0' || strcmp(v->backend, be->backend) != 0)
            continue;
        unsigned long long avg = v->sum.lat_count ? v->sum.lat_sum_ms / v->sum.lat_count : 0;
        sb_printf(b,
                  "  server %s: %s, requests %llu, failures %llu, connections %llu, "
                  "responses %llu (average %llu ms)\n",
                  escape(v->server, false, e, sizeof(e)), v->down ? "DOWN" : "up",
                  (unsigned long long)v->sum.requests, (unsigned long long)v->sum.failures,
                  (unsigned long long)v->sum.active, (unsigned long long)v->sum.lat_count, avg);
    }
}

static void render_text(sbuf *b, const pt_stats_snap *s)
{
    const pt_stats_ctr *c = &s->c;
    sb_printf(b, "portico %s\n", PACKAGE_VERSION);
    sb_printf(b, "uptime: %llu s, workers: %u, worker restarts: %llu, reloads: %llu\n",
              (unsigned long long)s->uptime_s, s->workers, (unsigned long long)s->worker_restarts,
              (unsigned long long)s->reloads);
    sb_printf(b, "connections: active %llu, accepted %llu, reading %llu, writing %llu, idle %llu\n",
              (unsigned long long)c->active, (unsigned long long)c->accepted,
              (unsigned long long)c->reading, (unsigned long long)c->writing,
              (unsigned long long)c->idle);
    sb_printf(b, "requests: %llu (1xx %llu, 2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu)\n",
              (unsigned long long)c->requests, (unsigned long long)c->status[1],
              (unsigned long long)c->status[2], (unsigned long long)c->status[3],
              (unsigned long long)c->status[4], (unsigned long long)c->status[5]);
    sb_printf(b, "bytes: received %llu, sent %llu\n", (unsigned long long)c->bytes_in,
              (unsigned long long)c->bytes_out);
    sb_printf(b, "cgi: started %llu, running %llu, queued %llu\n",
              (unsigned long long)c->cgi_started, (unsigned long long)c->cgi_running,
              (unsigned long long)c->cgi_queued);
    sb_printf(b, "client limits: limit_conn %llu, limit_req %llu, table full %llu\n",
              (unsigned long long)c->limit_conn, (unsigned long long)c->limit_req,
              (unsigned long long)c->limit_full);
    pt_cache_stats cs;
    pt_cache_stats_get(&cs);
    if (cs.on)
        sb_printf(b,
                  "cache: hits %llu, misses %llu, expired %llu, revalidated %llu, stale %llu, "
                  "updating %llu, bypass %llu, stores %llu, evictions %llu, purges %llu, "
                  "entries %llu, bytes %llu of %llu\n",
                  (unsigned long long)cs.hits, (unsigned long long)cs.misses,
                  (unsigned long long)cs.expired, (unsigned long long)cs.revalidated,
                  (unsigned long long)cs.stale, (unsigned long long)cs.updating,
                  (unsigned long long)cs.bypass, (unsigned long long)cs.stores,
                  (unsigned long long)cs.evictions, (unsigned long long)cs.purges,
                  (unsigned long long)cs.entries, (unsigned long long)cs.bytes,
                  (unsigned long long)cs.max_bytes);
    char e[256];
    for (size_t i = 0; pt_cache_zone_stats(i, &cs); i++)
        sb_printf(b,
                  "  cache zone %s: hits %llu, misses %llu, expired %llu, stale %llu, "
                  "entries %llu, bytes %llu of %llu\n",
                  escape(cs.name, false, e, sizeof(e)), (unsigned long long)cs.hits,
                  (unsigned long long)cs.misses, (unsigned long long)cs.expired,
                  (unsigned long long)(cs.stale + cs.updating), (unsigned long long)cs.entries,
                  (unsigned long long)cs.bytes, (unsigned long long)cs.max_bytes);
    sb_printf(b, "tls handshakes: full %llu, resumed %llu, failed %llu\n",
              (unsigned long long)c->tls_full, (unsigned long long)c->tls_resumed,
              (unsigned long long)c->tls_failed);
    sb_printf(b, "tunnels: open %llu, opened %llu\n", (unsigned long long)c->tunnels,
              (unsigned long long)c->tunnels_opened);
    sb_printf(
        b, "http2: connections %llu, opened %llu, streams open %llu, streams %llu, resets %llu\n",
        (unsigned long long)c->h2_conns, (unsigned long long)c->h2_opened,
        (unsigned long long)c->h2_streams_open, (unsigned long long)c->h2_streams,
        (unsigned long long)c->h2_resets);
    each_backend(s, text_backend, b);
}

/* ---- JSON --------------------------------------------------------------- */

static void json_backend(sbuf *b, const pt_stats_snap *s, size_t bi)
{
    char e[256];
    const pt_stats_snap_srv *be = &s->srv[bi];
    bool first = true;
    for (size_t i = 0; i < bi; i++)
        first &= s->srv[i].server[0] != '\0';
    sb_printf(b, "%s{\"name\":\"%s\",\"queued\":%llu,\"servers\":[", first ? "" : ",",
              escape(be->backend, true, e, sizeof(e)), (unsigned long long)be->sum.queued);
    bool sfirst = true;
    for (size_t i = 0; i < s->nsrv; i++) {
        const pt_stats_snap_srv *v = &s->srv[i];
        if (v->server[0] == '\0' || strcmp(v->backend, be->backend) != 0)
            continue;
        sb_printf(b,
                  "%s{\"address\":\"%s\",\"up\":%s,\"down_workers\":%u,\"requests\":%llu,"
                  "\"failures\":%llu,\"connections\":%llu,\"response_ms\":{\"count\":%llu,"
                  "\"sum\":%llu,\"buckets\":{",
                  sfirst ? "" : ",", escape(v->server, true, e, sizeof(e)),
                  v->down ? "false" : "true", v->down, (unsigned long long)v->sum.requests,
                  (unsigned long long)v->sum.failures, (unsigned long long)v->sum.active,
                  (unsigned long long)v->sum.lat_count, (unsigned long long)v->sum.lat_sum_ms);
        uint64_t cum = 0;
        for (int k = 0; k < PT_STATS_NBUCKETS; k++) {
            cum += v->sum.lat[k];
            if (k < PT_STATS_NLE)
                sb_printf(b, "\"%u\":%llu,", pt_stats_le_ms[k], (unsigned long long)cum);
            else
                sb_printf(b, "\"+Inf\":%llu}}}", (unsigned long long)cum);
        }
        sfirst = false;
    }
    sb_printf(b, "]}");
}

static void render_json(sbuf *b, const pt_stats_snap *s)
{
    const pt_stats_ctr *c = &s->c;
    sb_printf(b,
              "{\"version\":\"%s\",\"start_time\":%llu,\"uptime_seconds\":%llu,\"workers\":%u,"
              "\"worker_restarts\":%llu,\"reloads\":%llu,",
              PACKAGE_VERSION, (unsigned long long)s->start_time, (unsigned long long)s->uptime_s,
              s->workers, (unsigned long long)s->worker_restarts, (unsigned long long)s->reloads);
    sb_printf(b,
              "\"connections\":{\"accepted\":%llu,\"active\":%llu,\"reading\":%llu,"
              "\"writing\":%llu,\"idle\":%llu},",
              (unsigned long long)c->accepted, (unsigned long long)c->active,
              (unsigned long long)c->reading, (unsigned long long)c->writing,
              (unsigned long long)c->idle);
    sb_printf(b, "\"requests\":{\"total\":%llu", (unsigned long long)c->requests);
    for (int k = 1; k < 6; k++)
        sb_printf(b, ",\"%s\":%llu", class_names[k], (unsigned long long)c->status[k]);
    sb_printf(b, "},\"bytes\":{\"received\":%llu,\"sent\":%llu},", (unsigned long long)c->bytes_in,
              (unsigned long long)c->bytes_out);
    sb_printf(b, "\"cgi\":{\"started\":%llu,\"running\":%llu,\"queued\":%llu},",
              (unsigned long long)c->cgi_started, (unsigned long long)c->cgi_running,
              (unsigned long long)c->cgi_queued);
    sb_printf(b, "\"limits\":{\"limit_conn\":%llu,\"limit_req\":%llu,\"table_full\":%llu},",
              (unsigned long long)c->limit_conn, (unsigned long long)c->limit_req,
              (unsigned long long)c->limit_full);
    pt_cache_stats cs;
    pt_cache_stats_get(&cs);
    if (cs.on)
        sb_printf(b,
                  "\"cache\":{\"hits\":%llu,\"misses\":%llu,\"expired\":%llu,"
                  "\"revalidated\":%llu,\"stale\":%llu,"
                  "\"updating\":%llu,\"bypass\":%llu,\"stores\":%llu,\"evictions\":%llu,"
                  "\"purges\":%llu,\"entries\":%llu,\"bytes\":%llu,\"max_bytes\":%llu,"
                  "\"background_updates\":%llu,\"zones\":[",
                  (unsigned long long)cs.hits, (unsigned long long)cs.misses,
                  (unsigned long long)cs.expired, (unsigned long long)cs.revalidated,
                  (unsigned long long)cs.stale, (unsigned long long)cs.updating,
                  (unsigned long long)cs.bypass, (unsigned long long)cs.stores,
                  (unsigned long long)cs.evictions, (unsigned long long)cs.purges,
                  (unsigned long long)cs.entries, (unsigned long long)cs.bytes,
                  (unsigned long long)cs.max_bytes, (unsigned long long)cs.background);
    char e[256];
    bool cache_on = cs.on;
    for (size_t i = 0; cache_on && pt_cache_zone_stats(i, &cs); i++)
        sb_printf(b,
                  "%s{\"name\":\"%s\",\"hits\":%llu,\"misses\":%llu,\"expired\":%llu,"
                  "\"stale\":%llu,\"updating\":%llu,\"entries\":%llu,\"bytes\":%llu,"
                  "\"max_bytes\":%llu}",
                  i ? "," : "", escape(cs.name, true, e, sizeof(e)), (unsigned long long)cs.hits,
                  (unsigned long long)cs.misses, (unsigned long long)cs.expired,
                  (unsigned long long)cs.stale, (unsigned long long)cs.updating,
                  (unsigned long long)cs.entries, (unsigned long long)cs.bytes,
                  (unsigned long long)cs.max_bytes);
    if (cache_on)
        sb_printf(b, "]},");
    sb_printf(b, "\"tls_handshakes\":{\"full\":%llu,\"resumed\":%llu,\"failed\":%llu},",
              (unsigned long long)c->tls_full, (unsigned long long)c->tls_resumed,
              (unsigned long long)c->tls_failed);
    sb_printf(b, "\"tunnels\":{\"open\":%llu,\"opened\":%llu},", (unsigned long long)c->tunnels,
              (unsigned long long)c->tunnels_opened);
    sb_printf(b,
              "\"http2\":{\"connections\":%llu,\"opened\":%llu,\"streams_open\":%llu,"
              "\"streams\":%llu,\"resets\":%llu},",
              (unsigned long long)c->h2_conns, (unsigned long long)c->h2_opened,
              (unsigned long long)c->h2_streams_open, (unsigned long long)c->h2_streams,
              (unsigned long long)c->h2_resets);
    sb_printf(b, "\"backends\":[");
    each_backend(s, json_backend, b);
    sb_printf(b, "]}\n");
}

/* ---- Prometheus text exposition format 0.0.4 ---------------------------- */

static void prom_head(sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_one(sbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    prom_head(b, name, type, help);
    sb_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* One family over every server: field picks the value. */
static void prom_servers(sbuf *b, const pt_stats_snap *s, const char *name, const char *type,
                         const char *help, uint64_t (*field)(const pt_stats_snap_srv *))
{
    char eb[256], es[256];
    prom_head(b, name, type, help);
    for (size_t i = 0; i < s->nsrv; i++) {
        const pt_stats_snap_srv *v = &s->srv[i];
        if (v->server[0] == '\0')
            continue;
        sb_printf(b, "%s{backend=\"%s\",server=\"%s\"} %llu\n", name,
                  escape(v->backend, false, eb, sizeof(eb)),
                  escape(v->server, false, es, sizeof(es)), (unsigned long long)field(v));
    }
}

static uint64_t f_requests(const pt_stats_snap_srv *v)
{
    return v->sum.requests;
}
static uint64_t f_failures(const pt_stats_snap_srv *v)
{
    return v->sum.failures;
}
static uint64_t f_active(const pt_stats_snap_srv *v)
{
    return v->sum.active;
}
static uint64_t f_up(const pt_stats_snap_srv *v)
{
    return v->down == 0;
}

/* The response cache's counters (cache.c), when it is on. */
static void prom_cache(sbuf *b)
{
    pt_cache_stats cs;
    pt_cache_stats_get(&cs);
    if (!cs.on)
        return;
    prom_one(b, "portico_cache_hits_total", "counter", "Responses answered from the cache.",
             cs.hits);
    prom_one(b, "portico_cache_misses_total", "counter",
             "Cacheable requests the backend answered (no entry, or an expired one).",
             cs.misses + cs.expired);
    prom_one(b, "portico_cache_stale_total", "counter",
             "Expired entries answered (backend failing, or another request updating).",
             cs.stale + cs.updating);
    prom_one(b, "portico_cache_revalidated_total", "counter",
             "Expired entries the backend confirmed (304) and the cache answered.", cs.revalidated);
    prom_one(b, "portico_cache_bypass_total", "counter",
             "Requests that skipped the cache (Authorization).", cs.bypass);
    prom_one(b, "portico_cache_stores_total", "counter", "Responses stored.", cs.stores);
    prom_one(b, "portico_cache_evictions_total", "counter",
             "Entries removed to stay within cache_max_size or cache_entries.", cs.evictions);
    prom_one(b, "portico_cache_purges_total", "counter", "Entries removed by PURGE.", cs.purges);
    prom_one(b, "portico_cache_background_updates_total", "counter",
             "Refreshes started behind a stale answer (cache_background_update).", cs.background);
    prom_one(b, "portico_cache_entries", "gauge", "Entries in the cache index.", cs.entries);
    prom_one(b, "portico_cache_bytes", "gauge", "Bytes of the entry files.", cs.bytes);
    prom_one(b, "portico_cache_max_bytes", "gauge", "cache_max_size.", cs.max_bytes);
    /* each zone's own (cache_zones), labelled */
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"portico_cache_zone_hits_total", "counter", "Responses a zone answered."},
        {"portico_cache_zone_misses_total", "counter", "A zone's misses (expired ones too)."},
        {"portico_cache_zone_entries", "gauge", "Entries in a zone's index."},
        {"portico_cache_zone_bytes", "gauge", "Bytes of a zone's entry files."},
    };
    char e[256];
    for (size_t f = 0; f < PT_ARRAY_LEN(fam); f++) {
        prom_head(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; pt_cache_zone_stats(i, &cs); i++) {
            uint64_t v = f == 0   ? cs.hits
                         : f == 1 ? cs.misses + cs.expired
                         : f == 2 ? cs.entries
                                  : cs.bytes;
            sb_printf(b, "%s{zone=\"%s\"} %llu\n", fam[f].name,
                      escape(cs.name, false, e, sizeof(e)), (unsigned long long)v);
        }
    }
}

static void render_prometheus(sbuf *b, const pt_stats_snap *s)
{
    const pt_stats_ctr *c = &s->c;
    char eb[256], es[256];
    prom_one(b, "portico_start_time_seconds", "gauge",
             "When the server started, in seconds since the Unix epoch.", s->start_time);
    prom_one(b, "portico_workers", "gauge", "Worker processes running.", s->workers);
    prom_one(b, "portico_worker_restarts_total", "counter",
             "Workers the master replaced after they died.", s->worker_restarts);
    prom_one(b, "portico_reloads_total", "counter", "Configuration reloads (SIGHUP) done.",
             s->reloads);
    prom_one(b, "portico_connections_accepted_total", "counter", "Client connections accepted.",
             c->accepted);
    prom_one(b, "portico_connections_active", "gauge", "Client connections open.", c->active);
    prom_head(b, "portico_connections", "gauge",
              "Client connections by state (sampled each second per worker).");
    sb_printf(b, "portico_connections{state=\"reading\"} %llu\n", (unsigned long long)c->reading);
    sb_printf(b, "portico_connections{state=\"writing\"} %llu\n", (unsigned long long)c->writing);
    sb_printf(b, "portico_connections{state=\"idle\"} %llu\n", (unsigned long long)c->idle);
    prom_head(b, "portico_requests_total", "counter", "Requests answered, by status class.");
    for (int k = 1; k < 6; k++)
        sb_printf(b, "portico_requests_total{class=\"%s\"} %llu\n", class_names[k],
                  (unsigned long long)c->status[k]);
    if (c->status[0])
        sb_printf(b, "portico_requests_total{class=\"other\"} %llu\n",
                  (unsigned long long)c->status[0]);
    prom_one(b, "portico_received_bytes_total", "counter",
             "Request bytes received (heads and bodies).", c->bytes_in);
    prom_one(b, "portico_sent_bytes_total", "counter", "Response bytes sent (heads and bodies).",
             c->bytes_out);
    prom_one(b, "portico_tunnels_open", "gauge",
             "Tunnels open (WebSocket and other Upgrades through the proxy).", c->tunnels);
    prom_one(b, "portico_tunnels_opened_total", "counter", "Tunnels opened.", c->tunnels_opened);
    prom_one(b, "portico_http2_connections", "gauge", "HTTP/2 connections open.", c->h2_conns);
    prom_one(b, "portico_http2_connections_total", "counter", "HTTP/2 connections started.",
             c->h2_opened);
    prom_one(b, "portico_http2_streams_open", "gauge", "HTTP/2 streams (requests) in progress.",
             c->h2_streams_open);
    prom_one(b, "portico_http2_streams_total", "counter",
             "HTTP/2 streams (requests) received; each is also counted in portico_requests_total.",
             c->h2_streams);
    prom_one(b, "portico_http2_resets_total", "counter",
             "HTTP/2 streams the client reset (RST_STREAM) before their response ended.",
             c->h2_resets);
    prom_one(b, "portico_cgi_started_total", "counter", "CGI processes started.", c->cgi_started);
    prom_one(b, "portico_cgi_running", "gauge", "CGI processes running.", c->cgi_running);
    prom_one(b, "portico_cgi_queued", "gauge", "Requests waiting for a CGI process slot.",
             c->cgi_queued);
    prom_head(b, "portico_limit_rejections_total", "counter",
              "Requests refused by client limits (limit_conn, limit_req) or a full limit table.");
    sb_printf(b, "portico_limit_rejections_total{limit=\"limit_conn\"} %llu\n",
              (unsigned long long)c->limit_conn);
    sb_printf(b, "portico_limit_rejections_total{limit=\"limit_req\"} %llu\n",
              (unsigned long long)c->limit_req);
    sb_printf(b, "portico_limit_rejections_total{limit=\"table_full\"} %llu\n",
              (unsigned long long)c->limit_full);
    prom_cache(b);
    prom_head(b, "portico_tls_handshakes_total", "counter",
              "TLS handshakes: finished with a new session (full) or a resumed one, or failed.");
    sb_printf(b, "portico_tls_handshakes_total{result=\"full\"} %llu\n",
              (unsigned long long)c->tls_full);
    sb_printf(b, "portico_tls_handshakes_total{result=\"resumed\"} %llu\n",
              (unsigned long long)c->tls_resumed);
    sb_printf(b, "portico_tls_handshakes_total{result=\"failed\"} %llu\n",
              (unsigned long long)c->tls_failed);
    prom_head(b, "portico_backend_queued", "gauge",
              "Requests waiting for a connection to a backend's servers.");
    for (size_t i = 0; i < s->nsrv; i++)
        if (s->srv[i].server[0] == '\0')
            sb_printf(b, "portico_backend_queued{backend=\"%s\"} %llu\n",
                      escape(s->srv[i].backend, false, eb, sizeof(eb)),
                      (unsigned long long)s->srv[i].sum.queued);
    prom_servers(b, s, "portico_backend_requests_total", "counter",
                 "Requests sent to a backend server.", f_requests);
    prom_servers(b, s, "portico_backend_failures_total", "counter",
                 "Failed exchanges with a backend server (connect, protocol, timeout).",
                 f_failures);
    prom_servers(b, s, "portico_backend_connections", "gauge",
                 "Requests in progress on a backend server.", f_active);
    prom_servers(b, s, "portico_backend_up", "gauge",
                 "1 when no worker holds the backend server down (passive health).", f_up);
    prom_head(b, "portico_backend_response_seconds", "histogram",
              "Time from sending a request to a backend server to the end of its response.");
    for (size_t i = 0; i < s->nsrv; i++) {
        const pt_stats_snap_srv *v = &s->srv[i];
        if (v->server[0] == '\0')
            continue;
        escape(v->backend, false, eb, sizeof(eb));
        escape(v->server, false, es, sizeof(es));
        uint64_t cum = 0;
        for (int k = 0; k < PT_STATS_NBUCKETS; k++) {
            cum += v->sum.lat[k];
            char le[16];
            if (k < PT_STATS_NLE)
                snprintf(le, sizeof(le), "%g", pt_stats_le_ms[k] / 1000.0);
            else
                snprintf(le, sizeof(le), "+Inf");
            sb_printf(b,
                      "portico_backend_response_seconds_bucket{backend=\"%s\",server=\"%s\","
                      "le=\"%s\"} %llu\n",
                      eb, es, le, (unsigned long long)cum);
        }
        sb_printf(b, "portico_backend_response_seconds_sum{backend=\"%s\",server=\"%s\"} %.3f\n",
                  eb, es, (double)v->sum.lat_sum_ms / 1000.0);
        sb_printf(b, "portico_backend_response_seconds_count{backend=\"%s\",server=\"%s\"} %llu\n",
                  eb, es, (unsigned long long)v->sum.lat_count);
    }
}

int pt_status_render(const pt_stats_snap *s, pt_status_fmt f, char **out, size_t *len)
{
    sbuf b = {NULL, 0, 0, false};
    if (f == PT_STATUS_JSON)
        render_json(&b, s);
    else if (f == PT_STATUS_PROMETHEUS)
        render_prometheus(&b, s);
    else
        render_text(&b, s);
    if (b.oom || !b.p) {
        free(b.p);
        errno = ENOMEM;
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ---- the handler -------------------------------------------------------- */

static void sample(pt_worker *w)
{
    uint64_t reading = 0, writing = 0, idle = 0;
    for (const pt_conn *c = w->conns; c; c = c->next) {
        if (c->state == PT_CS_IDLE && c->nreq > 0 && c->in_len == 0)
            idle++; /* keep-alive, between requests */
        else if (c->state == PT_CS_IDLE || c->state == PT_CS_HEAD || c->state == PT_CS_BODY)
            reading++;
        else
            writing++;
    }
    PT_STATS_SET(pt_stats_my->reading, reading);
    PT_STATS_SET(pt_stats_my->writing, writing);
    PT_STATS_SET(pt_stats_my->idle, idle);
    PT_STATS_SET(pt_stats_my->cgi_running, pt_cgi_running(w));
}

void pt_status_serve(pt_req *r)
{
    const pt_head *h = &r->head;
    if (!r->loc->status_allow_remote && !pt_status_is_loopback(r->peer_af, r->peer_addr)) {
        pt_conn_reject(r, 403, "status page: not a loopback client (status_allow_remote)", false);
        return;
    }
    if (h->method != PT_M_GET && h->method != PT_M_HEAD) {
        r->allow = "GET, HEAD";
        pt_conn_reject(r, 405, NULL, false);
        return;
    }
    const pt_header *acc = pt_head_get(h, "Accept");
    pt_status_fmt f = pt_status_format(r->path, r->path_len, h->query.p, h->query.len,
                                       acc ? acc->value : NULL, acc ? acc->value_len : 0);
    if (f == PT_STATUS_BAD) {
        pt_conn_reject(r, 400, "status page: unknown format (text, json or prometheus)", false);
        return;
    }
    sample(r->conn->w);
    pt_stats_snap *s = malloc(sizeof(*s));
    char *body = NULL;
    size_t len = 0;
    if (!s || pt_stats_snapshot(s) < 0 || pt_status_render(s, f, &body, &len) < 0) {
        free(s);
        pt_conn_reject(r, 500, "status page: no counters (out of memory?)", false);
        return;
    }
    free(s);
    static const char *const types[] = {"text/plain; charset=utf-8", "application/json",
                                        "text/plain; version=0.0.4; charset=utf-8"};
    pt_resp_begin(r, 200);
    pt_resp_header(r, "Content-Type", types[f], strlen(types[f]));
    pt_resp_header(r, "Cache-Control", "no-store", 8);
    /* the same URL answers in three formats */
    pt_resp_header(r, "Vary", "Accept", 6);
    pt_resp_end(r, (int64_t)len);
    if (!r->is_head)
        pt_resp_body(r, body, len);
    free(body);
}

static pt_tlist g_tl;
static pt_timer g_timer;

static void on_sample(pt_loop *l, pt_timer *t)
{
    sample(l->data);
    pt_timer_arm(l, t, &g_tl);
}

void pt_status_worker_start(pt_worker *w)
{
    const pt_config *cfg = w->cfg;
    bool any = false;
    for (size_t i = 0; i < cfg->nvhosts && !any; i++)
        for (size_t k = 0; k < cfg->vhosts[i].nlocs && !any; k++)
            any = cfg->vhosts[i].locs[k].handler == PT_H_STATUS;
    /* no status location, nobody reads the gauges: no timer */
    if (!any)
        return;
    pt_tlist_init(&w->loop, &g_tl, PT_STATUS_SAMPLE_MS);
    pt_timer_init(&g_timer, on_sample, w);
    pt_timer_arm(&w->loop, &g_timer, &g_tl);
}

void pt_status_worker_stop(pt_worker *w)
{
    (void)w;
    pt_timer_stop(&g_timer);
}

static int status_worker_init(pt_worker *w)
{
    pt_status_worker_start(w);
    return 0;
}

static const pt_handler_worker status_worker = {
    .init = status_worker_init,
    .stop = pt_status_worker_stop,
};

/* It reads no body and answers 405 itself (GET and HEAD only), but it has
 * always been given every method and a collected body: kept as it was. */
const pt_handler pt_status_handler = {
    .name = "status",
    .kind = PT_H_STATUS,
    .flags = PT_HF_BODY | PT_HF_METHODS,
    .start = pt_status_serve,
    .worker = &status_worker,
};
