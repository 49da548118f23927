/* conf_cache.c: the response cache settings (cache_* keys, cache_zones): key
 * table, defaults and readers. */
#include "first.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "conf_int.h"

const key_spec cache_zone_keys[] = {
    {"name", K_STR, NULL},    {"dir", K_STR, NULL}, {"max_size", K_SIZE, NULL},
    {"entries", K_INT, NULL}, {NULL, K_INT, NULL},
};

/* --------------------------------------------------------- response cache */

void cache_defaults(pt_cache_cfg *z)
{
    memset(z, 0, sizeof(*z));
    /* scheme, host, path and query: nginx's default key, decoded path */
    snprintf(z->key, sizeof(z->key), "$scheme://$host$uri$is_args$args");
    z->zone = -1;
    z->methods = 1u << PT_M_GET | 1u << PT_M_HEAD;
    z->lock_timeout_ms = 5 * SEC;
}

static const char *const cache_method_names[] = {
    [PT_M_GET] = "GET",     [PT_M_HEAD] = "HEAD",     [PT_M_POST] = "POST",
    [PT_M_PUT] = "PUT",     [PT_M_DELETE] = "DELETE", [PT_M_OPTIONS] = "OPTIONS",
    [PT_M_PATCH] = "PATCH",
};

static const char *str_elem(const config_setting_t *s, int i)
{
    return config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s)
                                                        : config_setting_get_string_elem(s, i);
}

static int str_count(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_STRING ? 1 : config_setting_length(s);
}

/* cache_valid = ["200 302 10m", "404 1m", "any 30s"]: statuses, then a duration */
static int get_cache_valid(load_ctx *x, const config_setting_t *s, pt_cache_cfg *z)
{
    z->nvalid = 0;
    for (int i = 0; i < str_count(s); i++) {
        char buf[256], *save = NULL, *tok[PT_CACHE_VALID_MAX + 1];
        size_t nt = 0;
        snprintf(buf, sizeof(buf), "%s", str_elem(s, i));
        for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
            if (nt == PT_ARRAY_LEN(tok))
                return fail_at(x, s, "cache_valid: too many statuses in '%s'", str_elem(s, i));
            tok[nt++] = t;
        }
        uint64_t ms;
        if (nt < 2 || pt_parse_duration_ms(tok[nt - 1], &ms) < 0)
            return fail_at(x, s,
                           "cache_valid: '%s' is not \"STATUS... DURATION\" (e.g. \"200 10m\")",
                           str_elem(s, i));
        for (size_t k = 0; k + 1 < nt; k++) {
            int st = 0;
            if (strcmp(tok[k], "any") != 0) {
                char *end;
                long v = strtol(tok[k], &end, 10);
                if (*end || v < 200 || v > 599 || v == 206 || v == 304)
                    return fail_at(x, s, "cache_valid: '%s' is not a cacheable status or \"any\"",
                                   tok[k]);
                st = (int)v;
            }
            if (z->nvalid == PT_CACHE_VALID_MAX)
                return fail_at(x, s, "cache_valid: more than %d statuses", PT_CACHE_VALID_MAX);
            z->valid[z->nvalid].status = st;
            z->valid[z->nvalid++].ms = ms;
        }
    }
    return 0;
}

/* The cache_* settings of group g over *z (what the level above gave). */
int get_cache(load_ctx *x, const config_setting_t *g, pt_cache_cfg *z)
{
    const config_setting_t *s;
    opt_bool(g, "cache", &z->on);
    if ((s = member(g, "cache_zone"))) {
        const char *n = config_setting_get_string(s);
        size_t i = 0;
        while (i < x->c->ncache_zones && strcmp(x->c->cache_zones[i].name, n) != 0)
            i++;
        if (i == x->c->ncache_zones)
            return fail_at(x, s,
                           "cache_zone: no zone named '%s' (cache_dir is \"default\", "
                           "cache_zones the others)",
                           n);
        z->zone = (int)i;
    }
    opt_bool(g, "cache_set_cookie", &z->set_cookie);
    opt_bool(g, "cache_authorized", &z->authorized);
    opt_bool(g, "cache_status_header", &z->status_header);
    opt_bool(g, "cache_background_update", &z->background_update);
    if ((s = member(g, "cache_key"))) {
        const char *k = config_setting_get_string(s);
        if (!k[0] || strlen(k) >= sizeof(z->key))
            return fail_at(x, s, "cache_key must be 1 to %zu bytes", sizeof(z->key) - 1);
        snprintf(z->key, sizeof(z->key), "%s", k);
    }
    if ((s = member(g, "cache_methods"))) {
        z->methods = 0;
        for (int i = 0; i < str_count(s); i++) {
            const char *m = str_elem(s, i);
            size_t k = 0;
            while (k < PT_ARRAY_LEN(cache_method_names) &&
                   !(cache_method_names[k] && strcmp(cache_method_names[k], m) == 0))
                k++;
            if (k == PT_ARRAY_LEN(cache_method_names))
                return fail_at(x, s, "cache_methods: unknown method '%s'", m);
            z->methods |= 1u << k;
        }
    }
    if ((s = member(g, "cache_valid")) && get_cache_valid(x, s, z) < 0)
        return -1;
    if ((s = member(g, "cache_lock_timeout")) &&
        get_amount(x, s, K_DUR, 1, DAY, &z->lock_timeout_ms) < 0)
        return -1;
    if ((s = member(g, "cache_use_stale"))) {
        z->stale_updating = z->stale_error = false;
        for (int i = 0; i < str_count(s); i++) {
            const char *v = str_elem(s, i);
            if (strcmp(v, "updating") == 0)
                z->stale_updating = true;
            else if (strcmp(v, "error") == 0)
                z->stale_error = true;
            else if (strcmp(v, "off") != 0)
                return fail_at(x, s, "cache_use_stale: '%s' is not updating, error or off", v);
        }
    }
    if ((s = member(g, "cache_purge"))) {
        z->npurge = 0;
        for (int i = 0; i < str_count(s); i++) {
            char rule[128], why[256];
            if (z->npurge == PT_CACHE_PURGE_MAX)
                return fail_at(x, s, "cache_purge: more than %d addresses", PT_CACHE_PURGE_MAX);
            /* an address or CIDR block, parsed as an access rule (access.c) */
            snprintf(rule, sizeof(rule), "allow %s", str_elem(s, i));
            if (pt_access_parse(rule, &z->purge[z->npurge], why, sizeof(why)) < 0)
                return fail_at(x, s, "cache_purge: %s", why);
            z->npurge++;
        }
    }
    return 0;
}

/* One zone from a group (dir, max_size, entries, each prefixed by pfx). */
static int get_cache_zone(load_ctx *x, const config_setting_t *g, const char *pfx, pt_cache_zone *z)
{
    const config_setting_t *s;
    char k[32];
    long long n;
    z->max_size = 1 * GB;
    z->entries = 10000;
    snprintf(k, sizeof(k), "%sdir", pfx);
    if ((s = member(g, k))) {
        const char *v = config_setting_get_string(s);
        if (!v[0])
            return fail_at(x, s, "%s must not be empty", k);
        /* created by the master when missing (cache.c) */
        if (!(z->dir = resolve_path(x, s, v)))
            return -1;
    }
    snprintf(k, sizeof(k), "%smax_size", pfx);
    if ((s = member(g, k)) && get_amount(x, s, K_SIZE, 64 * KB, 1ULL << 50, &z->max_size) < 0)
        return -1;
    snprintf(k, sizeof(k), "%sentries", pfx);
    if ((s = member(g, k))) {
        if (get_int(x, s, 16, 16 * 1024 * 1024, &n) < 0)
            return -1;
        z->entries = (uint32_t)n;
    }
    return 0;
}

/* cache_dir (zone 0, "default") and the cache_zones list */
int build_cache_zone(load_ctx *x, const config_setting_t *root)
{
    pt_config *c = x->c;
    const config_setting_t *list = member(root, "cache_zones");
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    if (!(c->cache_zones = xcalloc(x, n + 1, sizeof(*c->cache_zones))))
        return -1;
    pt_cache_zone *dz = &c->cache_zones[0];
    if (get_cache_zone(x, root, "cache_", dz) < 0)
        return -1;
    if (dz->dir) {
        c->ncache_zones = 1;
        if (!(dz->name = xstrdup(x, "default")))
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i), *s;
        pt_cache_zone *z = &c->cache_zones[c->ncache_zones];
        memset(z, 0, sizeof(*z));
        if (!(s = member(g, "name")) || !member(g, "dir"))
            return fail_at(x, g, "a cache zone needs a name and a dir");
        if (!(z->name = xstrdup(x, config_setting_get_string(s))))
            return -1;
        c->ncache_zones++;
        if (get_cache_zone(x, g, "", z) < 0)
            return -1;
        for (size_t j = 0; j + 1 < c->ncache_zones; j++) {
            if (strcmp(c->cache_zones[j].name, z->name) == 0)
                return fail_at(x, s, "duplicate cache zone '%s'", z->name);
            if (strcmp(c->cache_zones[j].dir, z->dir) == 0)
                return fail_at(x, g, "cache zones '%s' and '%s' share the directory %s",
                               c->cache_zones[j].name, z->name, z->dir);
        }
    }
    return 0;
}
