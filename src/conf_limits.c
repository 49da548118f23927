/* conf_limits.c: limits { }, open_file_cache { } and the limit_conn/limit_req
 * zones: their key tables, defaults and readers. */
#include "first.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"
#include "conf_int.h"

/* key, pt_limits field, kind, default, min, max (bytes or ms) */
#define LIMITS(X)                                                                                  \
    X(max_connections, max_connections, K_INT, 1024, 1, 1000000)                                   \
    X(header_buffer, header_buffer, K_SIZE, 8 * KB, 1 * KB, 1 * MB)                                \
    X(max_headers, max_headers, K_INT, 100, 1, 10000)                                              \
    X(max_body, max_body, K_SIZE, 100 * MB, 0, 1ULL << 62)                                         \
    X(body_memory, body_memory, K_SIZE, 64 * KB, 0, 1 * GB)                                        \
    X(max_pipelined, max_pipelined, K_SIZE, 4 * KB, 0, 1 * MB)                                     \
    X(keepalive_requests, keepalive_requests, K_INT, 1000, 1, 1000000000)                          \
    X(tcp_notsent_lowat, tcp_notsent_lowat, K_SIZE, 128 * KB, 0, 256 * MB)                         \
    X(defer_accept, defer_accept_ms, K_DUR, 30 * SEC, 0, DAY)                                      \
    X(max_ranges, max_ranges, K_INT, 16, 1, 64)                                                    \
    X(header_timeout, header_timeout_ms, K_DUR, 30 * SEC, 1, DAY)                                  \
    X(body_timeout, body_timeout_ms, K_DUR, 60 * SEC, 1, DAY)                                      \
    X(body_min_rate, body_min_rate, K_SIZE, 500, 0, 1 * GB)                                        \
    X(keepalive_timeout, keepalive_timeout_ms, K_DUR, 65 * SEC, 1, DAY)                            \
    X(write_timeout, write_timeout_ms, K_DUR, 60 * SEC, 1, DAY)                                    \
    X(shutdown_timeout, shutdown_timeout_ms, K_DUR, 30 * SEC, 1, DAY)                              \
    X(worker_stall_timeout, worker_stall_timeout_ms, K_DUR, 30 * SEC, 0, DAY)                      \
    X(cgi_max_procs, cgi_max_procs, K_INT, 64, 1, 100000)                                          \
    X(cgi_queue, cgi_queue, K_INT, 64, 0, 100000)                                                  \
    X(cgi_queue_timeout, cgi_queue_timeout_ms, K_DUR, 10 * SEC, 1, DAY)                            \
    X(cgi_kill_grace, cgi_kill_grace_ms, K_DUR, 5 * SEC, 1, 3600 * SEC)                            \
    X(gw_header_max, gw_header_max, K_SIZE, 64 * KB, 1 * KB, 16 * MB)                              \
    X(gw_buffer_memory, gw_buffer_memory, K_SIZE, 256 * KB, 0, 1 * GB)                             \
    X(gw_buffer_max, gw_buffer_max, K_SIZE, 1 * GB, 0, 1ULL << 62)                                 \
    X(compress_memory, compress_memory, K_SIZE, 64 * MB, 0, 1ULL << 40)                            \
    X(limit_entries, limit_entries, K_INT, 16384, PT_LIMIT_WAYS, 4194304)

const key_spec limit_keys[] = {LIMITS(LIMIT_KEY){"cgi_timeout", K_DUR, NULL}, {NULL, K_INT, NULL}};
static const limit_spec limit_specs[] = {LIMITS(LIMIT_SPEC)};

const key_spec limit_req_keys[] = {
    {"rate", K_STR, NULL},
    {"burst", K_INT, NULL},
    {NULL, K_INT, NULL},
};

/* key, pt_fcache_cfg field, kind, default, min, max */
#define FCACHE_AMOUNTS(X)                                                                          \
    X(max, max, K_INT, 1000, 0, 1000000)                                                           \
    X(valid, valid_ms, K_DUR, 1 * SEC, 0, DAY)                                                     \
    X(inactive, inactive_ms, K_DUR, 60 * SEC, 1, DAY)                                              \
    X(content_max, content_max, K_SIZE, 16 * KB, 0, 1 * MB)                                        \
    X(content_max_tls, content_max_tls, K_SIZE, 256 * KB, 0, 64 * MB)                              \
    X(content_memory, content_memory, K_SIZE, 32 * MB, 0, 64 * GB)

#define FCACHE_SPEC(key, field, kind, def, lo, hi)                                                 \
    {#key, kind, def, lo, hi, offsetof(pt_fcache_cfg, field), sizeof(((pt_fcache_cfg *)0)->field)},

const key_spec fcache_keys[] = {FCACHE_AMOUNTS(LIMIT_KEY){"errors", K_BOOL, NULL},
                                {NULL, K_INT, NULL}};
static const limit_spec fcache_specs[] = {FCACHE_AMOUNTS(FCACHE_SPEC)};

/* -------------------------------------------------------------- limits */

/* Fill the fields of base (a pt_limits or pt_backend) that specs describe
 * from the members of g, or with their defaults. */
int get_amounts(load_ctx *x, const config_setting_t *g, const limit_spec *specs, size_t n,
                void *base)
{
    for (size_t i = 0; i < n; i++) {
        const limit_spec *ls = &specs[i];
        const config_setting_t *s = member(g, ls->name);
        uint64_t v = ls->def;
        char *field = (char *)base + ls->off;
        if (s) {
            if (ls->kind == K_INT) {
                long long v_int = 0;
                if (get_int(x, s, (long long)ls->min, (long long)ls->max, &v_int) < 0)
                    return -1;
                v = (uint64_t)v_int;
            } else if (get_amount(x, s, ls->kind, ls->min, ls->max, &v) < 0) {
                return -1;
            }
        }
        if (ls->size == sizeof(uint32_t)) {
            uint32_t v32 = (uint32_t)v;
            memcpy(field, &v32, sizeof(v32));
        } else {
            memcpy(field, &v, sizeof(v));
        }
    }
    return 0;
}

int build_limits(load_ctx *x, const config_setting_t *root)
{
    const config_setting_t *g = member(root, "limits"), *t = member(g, "cgi_timeout");
    x->cgi_timeout_ms = CGI_TIMEOUT_DEF;
    if (t && get_amount(x, t, K_DUR, 1, DAY, &x->cgi_timeout_ms) < 0)
        return -1;
    return get_amounts(x, g, limit_specs, PT_ARRAY_LEN(limit_specs), &x->c->limits);
}

/* ------------------------------------------------------- client limits */

/* The zone of a limit_conn / limit_req setting: one per setting, however
 * many vhosts and locations inherit it (a top-level location is built once
 * per vhost, yet counts as one). *out is -1 when the setting turns the
 * limit off. */
static int get_zone(load_ctx *x, const config_setting_t *s, bool is_req, int *out)
{
    pt_config *c = x->c;
    pt_limit_zone z = {.is_req = is_req}, *nz;
    const config_setting_t *r = s, *b, **ns;
    char p[256], where[PATH_MAX + 64];
    long long n;
    for (size_t i = 0; i < c->nzones; i++)
        if (x->zone_src[i] == s) {
            *out = (int)i;
            return 0;
        }
    *out = -1;
    if (!is_req) {
        if (get_int(x, s, 0, 1000000, &n) < 0)
            return -1;
        if (n == 0)
            return 0;
        z.conn = (uint32_t)n;
    } else {
        const char *rate;
        if (config_setting_is_group(s)) {
            if (!(r = member(s, "rate")))
                return fail_at(x, s, "'%s' needs a rate (rate = \"10r/s\";)",
                               spath(s, p, sizeof(p)));
            if ((b = member(s, "burst"))) {
                if (get_int(x, b, 0, 1000000, &n) < 0)
                    return -1;
                z.burst = (uint32_t)n;
            }
        }
        rate = config_setting_get_string(r);
        if (strcmp(rate, "off") == 0)
            return 0;
        if (pt_limit_parse_rate(rate, &z.interval_ns) < 0)
            return fail_at(x, r,
                           "'%s': invalid rate '%s' (\"10r/s\" or \"30r/m\" with 1 to 1000000 "
                           "requests, or \"off\")",
                           spath(r, p, sizeof(p)), rate);
    }
    origin(x, s, where, sizeof(where));
    if (!(nz = realloc(c->zones, (c->nzones + 1) * sizeof(*nz))))
        return oom(x);
    c->zones = nz;
    if (!(ns = realloc(x->zone_src, (c->nzones + 1) * sizeof(*ns))))
        return oom(x);
    x->zone_src = ns;
    if ((is_req && !(z.rate = xstrdup(x, config_setting_get_string(r)))) ||
        !(z.where = xstrdup(x, where))) {
        free(z.rate);
        return -1;
    }
    ns[c->nzones] = s;
    nz[c->nzones] = z;
    *out = (int)c->nzones++;
    return 0;
}

/* The limits group g sets for itself, over the inherited ones in conn/req. */
int get_limits(load_ctx *x, const config_setting_t *g, int *conn, int *req)
{
    const config_setting_t *s;
    if ((s = member(g, "limit_conn")) && get_zone(x, s, false, conn) < 0)
        return -1;
    if ((s = member(g, "limit_req")) && get_zone(x, s, true, req) < 0)
        return -1;
    return 0;
}

int build_fcache(load_ctx *x, const config_setting_t *root)
{
    const config_setting_t *g = member(root, "open_file_cache");
    x->c->open_file_cache.errors = true;
    opt_bool(g, "errors", &x->c->open_file_cache.errors);
    return get_amounts(x, g, fcache_specs, PT_ARRAY_LEN(fcache_specs), &x->c->open_file_cache);
}
