/* conf.c: the configuration loader's core. The file, the flags and the -o
 * overrides all land on ONE libconfig tree that the schema tables validate
 * into the immutable pt_config; plus the per-request vhost and location
 * lookups. Each concern's keys, defaults and readers live in its own
 * src/conf_*.c (limits, cache, compress, phases, tls, upstream), the
 * helpers they share in conf_int.h. */
#include "first.h"
#include "conf.h"
#include "handler.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "rootfile.h"
#include "regex.h"
#include "rewrite.h"
#include "util.h"
#include "conf_int.h"

static const key_spec location_keys[] = {
    {"prefix", K_STR, NULL},
    {"exact", K_STR, NULL},
    {"extension", K_STR, NULL},
    {"regex", K_STR, NULL},
    {"iregex", K_STR, NULL},
    {"stop", K_BOOL, NULL},
    {"rewrite", K_STRS, NULL},
    {"handler", K_STR, NULL},
    {"root", K_STR, NULL},
    {"alias", K_STR, NULL},
    {"dir_listing", K_BOOL, NULL},
    {"follow_symlinks", K_BOOL, NULL},
    {"allow_dotfiles", K_BOOL, NULL},
    {"precompressed", K_BOOL, NULL},
    /* gateways only (handler_keys below) */
    {"dir", K_STR, NULL},
    {"program", K_STR, NULL},
    {"interpreters", K_STRS, NULL},
    {"env", K_STRS, NULL},
    {"pass_env", K_STRS, NULL},
    {"pass_authorization", K_BOOL, NULL},
    {"buffering", K_BOOL, NULL},
    {"timeout", K_DUR, NULL},
    {"rlimit_cpu", K_DUR, NULL},
    {"rlimit_as", K_SIZE, NULL},
    {"rlimit_nproc", K_INT, NULL},
    {"backend", K_STR, NULL},
    {"require_file", K_BOOL, NULL},
    {"status_allow_remote", K_BOOL, NULL},
    {"x_sendfile", K_BOOL, NULL},
    {"sendfile_dirs", K_STRS, NULL},
    {"internal", K_BOOL, NULL},
    {"upgrade", K_BOOL, NULL},
    {"request_buffering", K_BOOL, NULL},
    {"interim_responses", K_BOOL, NULL},
    PHASE_KEYS COMPRESS_KEYS CACHE_KEYS LIMIT_KEYS{NULL, K_INT, NULL},
};

static const key_spec vhost_keys[] = {
    {"names", K_STRS, NULL},
    {"tls", K_GROUP, vhost_tls_keys},
    {"http2", K_BOOL, NULL}, /* its TLS context's ALPN */
    {"acme", K_GROUP, vhost_acme_keys},
    {"default", K_BOOL, NULL},
    {"root", K_STR, NULL},
    {"index", K_STRS, NULL},
    {"dir_listing", K_BOOL, NULL},
    {"follow_symlinks", K_BOOL, NULL},
    {"allow_dotfiles", K_BOOL, NULL},
    {"precompressed", K_BOOL, NULL},
    {"access_log", K_STR, NULL},
    {"locations", K_LIST, location_keys},
    {"rewrite", K_STRS, NULL}, /* server-level (router.c) */
    PHASE_KEYS REALIP_KEYS COMPRESS_KEYS LIMIT_KEYS{NULL, K_INT, NULL},
};

static const key_spec top_keys[] = {
    {"workers", K_INT, NULL},
    {"user", K_STR, NULL},
    {"group", K_STR, NULL},
    {"cgi_user", K_STR, NULL},
    {"cgi_group", K_STR, NULL},
    {"no_new_privs", K_BOOL, NULL},
    {"pid_file", K_STR, NULL},
    {"error_log", K_STR, NULL},
    {"log_level", K_STR, NULL},
    {"access_log", K_STR, NULL},
    {"access_log_format", K_STR, NULL},
    {"request_id", K_STR, NULL},
    {"tmp_dir", K_STR, NULL},
    {"mime_types", K_STR, NULL},
    {"server_tokens", K_BOOL, NULL},
    /* HTTP/2 (h2_conn.c) */
    {"http2", K_BOOL, NULL},
    {"http2_cleartext", K_BOOL, NULL},
    {"http2_max_streams", K_INT, NULL},
    {"listen", K_STRS, NULL},
    {"acme_state_dir", K_STR, NULL},
    {"tls_listen", K_STRS, NULL},
    {"tls", K_GROUP, tls_keys},
    {"root", K_STR, NULL},
    {"index", K_STRS, NULL},
    {"dir_listing", K_BOOL, NULL},
    {"follow_symlinks", K_BOOL, NULL},
    {"allow_dotfiles", K_BOOL, NULL},
    {"precompressed", K_BOOL, NULL},
    {"limits", K_GROUP, limit_keys},
    {"open_file_cache", K_GROUP, fcache_keys},
    {"locations", K_LIST, location_keys},
    {"vhosts", K_LIST, vhost_keys},
    {"cgi_interpreters", K_STRS, NULL},
    {"backends", K_LIST, backend_keys},
    {"proxy_protocol", K_STRS, NULL},
    {"cache_dir", K_STR, NULL},
    {"cache_max_size", K_SIZE, NULL},
    {"cache_entries", K_INT, NULL},
    {"cache_zones", K_LIST, cache_zone_keys},
    {"proxy_protocol_from", K_STRS, NULL},
    {"rewrite", K_STRS, NULL}, /* server-level (router.c), inherited by vhosts */
    {"regex_match_limit", K_INT, NULL},
    {"regex_depth_limit", K_INT, NULL},
    PHASE_KEYS REALIP_KEYS COMPRESS_KEYS CACHE_KEYS LIMIT_KEYS{NULL, K_INT, NULL},
};

static const key_spec *find_key(const key_spec *spec, const char *name)
{
    for (; spec && spec->name; spec++)
        if (strcmp(spec->name, name) == 0)
            return spec;
    return NULL;
}

static int vfail(load_ctx *x, const char *where, const char *fmt, va_list ap) PT_PRINTF(3, 0);
static int vfail(load_ctx *x, const char *where, const char *fmt, va_list ap)
{
    int n = 0;
    if (!x->err || x->errlen == 0)
        return -1;
    if (where)
        n = snprintf(x->err, x->errlen, "%s: ", where);
    if (n >= 0 && (size_t)n < x->errlen)
        vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
    return -1;
}

static int fail(load_ctx *x, const char *where, const char *fmt, ...) PT_PRINTF(3, 4);
static int fail(load_ctx *x, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(x, where, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *file_of(const load_ctx *x, const config_setting_t *s)
{
    const char *f = config_setting_source_file(s);
    return f ? f : x->name ? x->name : "portico";
}

/* Where a setting came from: the flag / -o that set it, else file:line. */
void origin(const load_ctx *x, const config_setting_t *s, char *buf, size_t n)
{
    for (; s; s = config_setting_parent(s)) {
        if (config_setting_get_hook(s)) {
            snprintf(buf, n, "%s", (const char *)config_setting_get_hook(s));
            return;
        }
        if (config_setting_source_line(s) > 0) {
            snprintf(buf, n, "%s:%u", file_of(x, s), config_setting_source_line(s));
            return;
        }
    }
    snprintf(buf, n, "%s", x->name ? x->name : "portico");
}

int fail_at(load_ctx *x, const config_setting_t *s, const char *fmt, ...) PT_PRINTF(3, 4);
int fail_at(load_ctx *x, const config_setting_t *s, const char *fmt, ...)
{
    char where[PATH_MAX + 64];
    va_list ap;
    origin(x, s, where, sizeof(where));
    va_start(ap, fmt);
    vfail(x, where, fmt, ap);
    va_end(ap);
    return -1;
}

int oom(load_ctx *x)
{
    return fail(x, x->name ? x->name : "portico", "out of memory");
}

/* Record "origin: warning: ..." once (a top-level location is built once
 * per vhost). 0, or -1 when out of memory. */
int warn_at(load_ctx *x, const config_setting_t *s, const char *fmt, ...) PT_PRINTF(3, 4);
int warn_at(load_ctx *x, const config_setting_t *s, const char *fmt, ...)
{
    char where[PATH_MAX + 64], *msg = NULL, *line = NULL, **nw;
    pt_config *c = x->c;
    va_list ap;
    int n;
    origin(x, s, where, sizeof(where));
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0 || asprintf(&line, "%s: warning: %s", where, msg) < 0) {
        free(msg);
        return oom(x);
    }
    free(msg);
    for (size_t i = 0; i < c->nwarnings; i++)
        if (strcmp(c->warnings[i], line) == 0) {
            free(line);
            return 0;
        }
    if (!(nw = realloc(c->warnings, (c->nwarnings + 1) * sizeof(*nw)))) {
        free(line);
        return oom(x);
    }
    c->warnings = nw;
    c->warnings[c->nwarnings++] = line;
    return 0;
}

char *xstrdup(load_ctx *x, const char *s)
{
    char *d = strdup(s);
    if (!d)
        oom(x);
    return d;
}

void *xcalloc(load_ctx *x, size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        oom(x);
    return p;
}

/* The setting's path in -o syntax: "limits.max_body", "vhosts.[0].root". */
static size_t spath_r(const config_setting_t *s, char *buf, size_t n)
{
    const config_setting_t *p = config_setting_parent(s);
    size_t off = 0;
    int w;
    if (!p)
        return 0;
    off = spath_r(p, buf, n);
    if (config_setting_is_list(p) || config_setting_is_array(p))
        w = snprintf(buf + off, n - off, "%s[%d]", off ? "." : "", config_setting_index(s));
    else
        w = snprintf(buf + off, n - off, "%s%s", off ? "." : "", config_setting_name(s));
    if (w < 0)
        return off;
    return PT_MIN(off + (size_t)w, n - 1);
}

const char *spath(const config_setting_t *s, char *buf, size_t n)
{
    buf[0] = '\0';
    spath_r(s, buf, n);
    return buf;
}

void free_strv(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* ----------------------------------------------------------- paths */

/* base + p, made absolute, with "//", "." and ".." removed lexically. */
static char *make_abs(const char *base, const char *p)
{
    size_t blen = p[0] == '/' ? 0 : strlen(base);
    char *in = malloc(blen + strlen(p) + 2), *out;
    size_t o = 0;
    if (!in)
        return NULL;
    snprintf(in, blen + strlen(p) + 2, "%.*s/%s", (int)blen, base, p);
    out = malloc(strlen(in) + 2);
    if (!out) {
        free(in);
        return NULL;
    }
    for (char *seg = in; *seg;) {
        char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.')) {
            /* skip */
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, seg, len);
            o += len;
        }
        seg += len + (end ? 1 : 0);
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(in);
    return out;
}

/* The directory relative paths in this setting are resolved against: the
 * file it was written in, or the CWD for flags, -o and defaults. */
static char *base_dir(const load_ctx *x, const config_setting_t *s)
{
    for (; s; s = config_setting_parent(s)) {
        if (config_setting_get_hook(s))
            return make_abs(x->cwd, ".");
        if (config_setting_source_line(s) > 0) {
            const char *f = config_setting_source_file(s);
            char *abs, *slash;
            if (!f || (x->name && strcmp(f, x->name) == 0))
                return make_abs(x->dir, ".");
            /* an @include'd file: libconfig opened include_dir + "/" + name */
            abs = make_abs(x->dir, f);
            if (abs && (slash = strrchr(abs, '/')))
                slash[slash == abs ? 1 : 0] = '\0';
            return abs;
        }
    }
    return make_abs(x->cwd, ".");
}

char *resolve_path(load_ctx *x, const config_setting_t *s, const char *v)
{
    char *base = base_dir(x, s), *abs = base ? make_abs(base, v) : NULL;
    free(base);
    if (!abs)
        oom(x);
    return abs;
}

/* A directory that must exist: made absolute and canonical (realpath), so
 * later "is this inside the root" checks compare like with like. */
int resolve_dir(load_ctx *x, const config_setting_t *s, const char *what, const char *v, char **out)
{
    char *abs, *real;
    struct stat st;
    if (v[0] == '\0')
        return fail_at(x, s, "%s must not be empty", what);
    if (!(abs = resolve_path(x, s, v)))
        return -1;
    real = realpath(abs, NULL);
    if (!real) {
        fail_at(x, s, "%s '%s': %s", what, abs, strerror(errno));
        free(abs);
        return -1;
    }
    if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fail_at(x, s, "%s '%s': %s", what, abs, strerror(ENOTDIR));
        free(abs);
        free(real);
        return -1;
    }
    free(abs);
    *out = real;
    return 0;
}

/* ------------------------------------------- phase 1: keys and types */

static int check_group(load_ctx *x, const config_setting_t *g, const key_spec *spec);

static bool is_str_seq(const config_setting_t *s)
{
    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return false;
    for (int i = 0; i < config_setting_length(s); i++)
        if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING)
            return false;
    return true;
}

static int check_type(load_ctx *x, const config_setting_t *s, const key_spec *k)
{
    char p[256];
    int t = config_setting_type(s);
    bool is_int = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
    const char *want = "";
    switch (k->kind) {
    case K_INT:
        if (is_int)
            return 0;
        want = "an integer";
        break;
    case K_BOOL:
        if (t == CONFIG_TYPE_BOOL)
            return 0;
        want = "true or false";
        break;
    case K_STR:
        if (t == CONFIG_TYPE_STRING)
            return 0;
        want = "a string";
        break;
    case K_STRS:
        if (t == CONFIG_TYPE_STRING || is_str_seq(s))
            return 0;
        want = "an array of strings [ \"...\", ... ]";
        break;
    case K_SIZE:
        if (t == CONFIG_TYPE_STRING || is_int)
            return 0;
        want = "a size (\"8k\", \"100M\" or a number of bytes)";
        break;
    case K_DUR:
        if (t == CONFIG_TYPE_STRING || is_int)
            return 0;
        want = "a duration (\"30s\", \"500ms\", \"5m\" or a number of seconds)";
        break;
    case K_GROUP:
        if (t == CONFIG_TYPE_GROUP)
            return check_group(x, s, k->sub);
        want = "a group { ... }";
        break;
    case K_LIST:
        if (t == CONFIG_TYPE_LIST || (t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)) {
            for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (!config_setting_is_group(e))
                    return fail_at(x, e, "'%s' must be a group { ... }", spath(e, p, sizeof(p)));
                if (check_group(x, e, k->sub) < 0)
                    return -1;
            }
            return 0;
        }
        want = "a list ( { ... }, ... )";
        break;
    case K_SERVERS:
        if (t == CONFIG_TYPE_STRING || (t == CONFIG_TYPE_ARRAY && is_str_seq(s)))
            return 0;
        if (t == CONFIG_TYPE_LIST) {
            for (int i = 0; i < config_setting_length(s); i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (config_setting_type(e) == CONFIG_TYPE_STRING)
                    continue;
                if (!config_setting_is_group(e))
                    return fail_at(x, e, "'%s' must be an address or a group { address = ...; }",
                                   spath(e, p, sizeof(p)));
                if (check_group(x, e, k->sub) < 0)
                    return -1;
            }
            return 0;
        }
        want = "an array of addresses [ \"...\", ... ] or a list ( \"...\", { address = ...; } )";
        break;
    case K_REQ:
        if (t == CONFIG_TYPE_STRING)
            return 0;
        if (t == CONFIG_TYPE_GROUP)
            return check_group(x, s, k->sub);
        want = "a rate (\"10r/s\"), \"off\" or a group { rate = \"10r/s\"; burst = 20; }";
        break;
    }
    return fail_at(x, s, "'%s' must be %s", spath(s, p, sizeof(p)), want);
}

/* libconfig accepts any key; a typo must not be silently ignored. */
static int check_group(load_ctx *x, const config_setting_t *g, const key_spec *spec)
{
    char p[256];
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const key_spec *k = find_key(spec, config_setting_name(s));
        if (!k)
            return fail_at(x, s, "unknown setting '%s'", spath(s, p, sizeof(p)));
        if (check_type(x, s, k) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------- phase 2: values */

const config_setting_t *member(const config_setting_t *g, const char *name)
{
    return g ? config_setting_get_member(g, name) : NULL;
}

int get_int(load_ctx *x, const config_setting_t *s, long long lo, long long hi, long long *out)
{
    char p[256];
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi)
        return fail_at(x, s, "'%s' must be between %lld and %lld", spath(s, p, sizeof(p)), lo, hi);
    *out = v;
    return 0;
}

static void fmt_size(uint64_t v, char *buf, size_t n)
{
    static const char units[] = "kMGT";
    int u = -1;
    while (v >= 1024 && v % 1024 == 0 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, n, "%llu", (unsigned long long)v);
    else
        snprintf(buf, n, "%llu%c", (unsigned long long)v, units[u]);
}

static void fmt_dur(uint64_t ms, char *buf, size_t n)
{
    if (ms % DAY == 0)
        snprintf(buf, n, "%llud", (unsigned long long)(ms / DAY));
    else if (ms % SEC == 0)
        snprintf(buf, n, "%llus", (unsigned long long)(ms / SEC));
    else
        snprintf(buf, n, "%llums", (unsigned long long)ms);
}

/* A size or duration: a string for util.c's parser, or a plain integer
 * (bytes / seconds). */
int get_amount(load_ctx *x, const config_setting_t *s, key_kind kind, uint64_t lo, uint64_t hi,
               uint64_t *out)
{
    char p[256], a[32], b[32];
    uint64_t v;
    const char *what = kind == K_SIZE ? "size" : "duration";
    spath(s, p, sizeof(p));
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        const char *str = config_setting_get_string(s);
        int rc = kind == K_SIZE ? pt_parse_size(str, &v) : pt_parse_duration_ms(str, &v);
        if (rc < 0)
            return fail_at(x, s, "'%s': invalid %s '%s' (%s)", p, what, str,
                           kind == K_SIZE ? "e.g. \"8k\", \"100M\", \"1G\""
                                          : "e.g. \"500ms\", \"30s\", \"5m\", \"1h\"");
    } else {
        long long n = config_setting_get_int64(s);
        if (n < 0)
            return fail_at(x, s, "'%s': a %s cannot be negative", p, what);
        v = (uint64_t)n;
        if (kind == K_DUR) {
            if (v > UINT64_MAX / SEC)
                return fail_at(x, s, "'%s': %s too large", p, what);
            v *= SEC;
        }
    }
    if (v < lo || v > hi) {
        if (kind == K_SIZE) {
            fmt_size(lo, a, sizeof(a));
            fmt_size(hi, b, sizeof(b));
        } else {
            fmt_dur(lo, a, sizeof(a));
            fmt_dur(hi, b, sizeof(b));
        }
        return fail_at(x, s, "'%s' must be between %s and %s", p, a, b);
    }
    *out = v;
    return 0;
}

void opt_bool(const config_setting_t *g, const char *name, bool *out)
{
    const config_setting_t *s = member(g, name);
    if (s)
        *out = config_setting_get_bool(s) != 0;
}

/* A location's boolean that falls back to its vhost's: own gets bit when
 * it is written here (the value is filled in by inherit_opts otherwise). */
static void opt_own(const config_setting_t *g, const char *name, bool *out, unsigned *own,
                    unsigned bit)
{
    const config_setting_t *s = member(g, name);
    if (s) {
        *out = config_setting_get_bool(s) != 0;
        *own |= bit;
    }
}

/* A string array (or one string) as a malloc'd vector. */
int get_strs(load_ctx *x, const config_setting_t *s, char ***out, size_t *nout)
{
    size_t n = config_setting_type(s) == CONFIG_TYPE_STRING ? 1 : (size_t)config_setting_length(s);
    char **v = xcalloc(x, n + 1, sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *str = config_setting_type(s) == CONFIG_TYPE_STRING
                              ? config_setting_get_string(s)
                              : config_setting_get_string_elem(s, (int)i);
        if (!(v[i] = xstrdup(x, str))) {
            free_strv(v, i);
            return -1;
        }
    }
    *out = v;
    *nout = n;
    return 0;
}

static int get_index(load_ctx *x, const config_setting_t *s, char ***out, size_t *nout)
{
    char p[256];
    if (get_strs(x, s, out, nout) < 0)
        return -1;
    for (size_t i = 0; i < *nout; i++) {
        const char *f = (*out)[i];
        /* index names are single file names, looked up in the directory */
        if (!f[0] || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0) {
            fail_at(x, s, "'%s': invalid index file name '%s' (a file name, no '/')",
                    spath(s, p, sizeof(p)), f);
            free_strv(*out, *nout);
            *out = NULL;
            *nout = 0;
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- listen */

static bool parse_port(const char *s, uint16_t *port)
{
    uint64_t v;
    if (!s[0] || strlen(s) > 5 || pt_parse_u64(s, strlen(s), &v) < 0 || v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* "IPv4:PORT", "[IPv6]:PORT", "*:PORT" or "PORT"; numeric only, no DNS.
 * Returns NULL, or why the text is not an address. */
static const char *addr_parse(const char *text, bool allow_any, pt_listen_cfg *l)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port, *colon;
    size_t hlen;
    bool v6 = false;
    uint16_t pnum;
    memset(l, 0, sizeof(*l));
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (!rb || rb[1] != ':')
            return "expected [IPv6]:PORT";
        hlen = (size_t)(rb - text - 1);
        if (hlen >= sizeof(host))
            return "not a numeric IPv6 address";
        memcpy(host, text + 1, hlen);
        port = rb + 2;
        v6 = true;
    } else if ((colon = strrchr(text, ':'))) {
        if (strchr(text, ':') != colon)
            return "IPv6 addresses need brackets, e.g. [::1]:8080";
        hlen = (size_t)(colon - text);
        if (hlen >= sizeof(host))
            return "not a numeric IPv4 address";
        memcpy(host, text, hlen);
        port = colon + 1;
    } else {
        if (!allow_any)
            return "expected ADDRESS:PORT";
        hlen = 1;
        host[0] = '*';
        port = text;
    }
    host[hlen] = '\0';
    if (!parse_port(port, &pnum))
        return "port must be a number from 1 to 65535";
    if (!v6 && allow_any && strcmp(host, "*") == 0) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l->addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_any;
        a6->sin6_port = htons(pnum);
        l->addrlen = sizeof(*a6);
        l->any_dual = true;
    } else if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&l->addr;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return "not a numeric IPv6 address";
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(pnum);
        l->addrlen = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&l->addr;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return allow_any ? "not a numeric IPv4 address (no DNS lookups: use e.g. "
                               "127.0.0.1:8080, [::1]:8080 or *:8080)"
                             : "not a numeric IPv4 address (no DNS lookups: use e.g. "
                               "127.0.0.1:9000, [::1]:9000 or unix:/run/app.sock)";
        a4->sin_family = AF_INET;
        a4->sin_port = htons(pnum);
        l->addrlen = sizeof(*a4);
    }
    return NULL;
}

/* A Unix socket address; -1 when path does not fit in sun_path (with its NUL). */
int unix_addr(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t plen = strlen(path);
    if (plen >= sizeof(un->sun_path))
        return -1;
    memset(ss, 0, sizeof(*ss));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, plen + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
    return 0;
}

/* A FastCGI server: "unix:/path" or "/path" (Unix socket), numeric
 * "IPv4:PORT" or "[IPv6]:PORT" (no DNS: a worker never blocks). 0, or -1
 * with the reason in why. */
int fcgi_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *why, size_t n)
{
    const char *path = strncmp(text, "unix:", 5) == 0 ? text + 5 : text[0] == '/' ? text : NULL;
    pt_listen_cfg l;
    const char *bad;
    if (path) {
        if (path[0] != '/') {
            snprintf(why, n, "expected unix:/absolute/path");
            return -1;
        }
        if (unix_addr(path, ss, len) < 0) {
            snprintf(why, n, "Unix socket path too long (%zu bytes, at most %zu)", strlen(path),
                     sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
            return -1;
        }
        return 0;
    }
    if (!strchr(text, ':')) {
        snprintf(why, n, "expected unix:/path, /path, IPv4:PORT or [IPv6]:PORT");
        return -1;
    }
    if ((bad = addr_parse(text, false, &l))) {
        snprintf(why, n, "%s", bad);
        return -1;
    }
    memcpy(ss, &l.addr, sizeof(*ss));
    *len = l.addrlen;
    return 0;
}

static uint16_t addr_port(const pt_listen_cfg *l)
{
    if (l->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
}

static bool addr_is_any(const pt_listen_cfg *l)
{
    if (l->addr.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&l->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&l->addr)->sin6_addr);
}

/* Would binding both fail with EADDRINUSE? Same address, or a wildcard
 * that already covers the other one's family ("*" covers both). */
static bool addr_overlaps(const pt_listen_cfg *a, const pt_listen_cfg *b)
{
    if (addr_port(a) != addr_port(b))
        return false;
    if (a->any_dual || b->any_dual)
        return true;
    if (a->addr.ss_family != b->addr.ss_family)
        return false;
    return addr_is_any(a) || addr_is_any(b) || memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* proxy_protocol: listeners (as written in listen or tls_listen) whose
 * connections begin with a PROXY protocol header (realip.c) */
static int mark_proxy_protocol(load_ctx *x, const config_setting_t *s)
{
    if (!s)
        return 0;
    char **v = NULL;
    size_t n = 0;
    int rc = -1;
    if (get_strs(x, s, &v, &n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        pt_listen_cfg a;
        memset(&a, 0, sizeof(a));
        const char *why = addr_parse(v[i], true, &a);
        if (why) {
            fail_at(x, s, "proxy_protocol '%s': %s", v[i], why);
            goto out;
        }
        size_t j = 0;
        for (; j < x->c->nlisten; j++) {
            pt_listen_cfg *l = &x->c->listen[j];
            if (l->any_dual == a.any_dual && l->addrlen == a.addrlen &&
                memcmp(&l->addr, &a.addr, a.addrlen) == 0)
                break;
        }
        if (j == x->c->nlisten) {
            fail_at(x, s, "proxy_protocol '%s': not an address of listen or tls_listen", v[i]);
            goto out;
        }
        x->c->listen[j].proxy_protocol = true;
    }
    rc = 0;
out:
    free_strv(v, n);
    return rc;
}

/* listen (plain) and tls_listen (TLS) together: one address space, so an
 * address in both is an overlap. Without either, "*:8080" plain. */
static int build_listen(load_ctx *x, const config_setting_t *root)
{
    pt_config *c = x->c;
    const config_setting_t *src[2] = {member(root, "listen"), member(root, "tls_listen")};
    char **v[2] = {NULL, NULL};
    size_t n[2] = {0, 0};
    int rc = -1;
    for (int t = 0; t < 2; t++) {
        if (!src[t])
            continue;
        if (get_strs(x, src[t], &v[t], &n[t]) < 0)
            goto out;
        if (n[t] == 0) {
            fail_at(x, src[t], "%s: at least one address is needed", t ? "tls_listen" : "listen");
            goto out;
        }
    }
    if (!src[0] && !src[1]) {
        if (!(v[0] = xcalloc(x, 2, sizeof(*v[0]))) || !(v[0][0] = xstrdup(x, "*:8080")))
            goto out;
        n[0] = 1;
    }
    if (!(c->listen = xcalloc(x, n[0] + n[1], sizeof(*c->listen))))
        goto out;
    for (int t = 0; t < 2; t++) {
        const char *what = t ? "tls_listen" : "listen";
        for (size_t i = 0; i < n[t]; i++) {
            pt_listen_cfg *l = &c->listen[c->nlisten];
            const char *why = addr_parse(v[t][i], true, l);
            if (why) {
                fail_at(x, src[t], "%s '%s': %s", what, v[t][i], why);
                goto out;
            }
            l->text = v[t][i];
            l->tls = t == 1;
            v[t][i] = NULL;
            c->nlisten++;
            for (size_t j = 0; j + 1 < c->nlisten; j++)
                if (addr_overlaps(&c->listen[j], l)) {
                    fail_at(x, src[t], "%s '%s': %s '%s'", what, l->text,
                            l->addrlen == c->listen[j].addrlen &&
                                    memcmp(&l->addr, &c->listen[j].addr, l->addrlen) == 0
                                ? "duplicate of"
                                : "overlaps",
                            c->listen[j].text);
                    goto out;
                }
        }
    }
    if (mark_proxy_protocol(x, member(root, "proxy_protocol")) < 0)
        goto out;
    rc = 0;
out:
    free_strv(v[0], n[0]);
    free_strv(v[1], n[1]);
    return rc;
}

/* ----------------------------------------------------------- locations */

static const char *match_name(pt_match_kind m)
{
    return m == PT_MATCH_EXACT   ? "exact"
           : m == PT_MATCH_EXT   ? "extension"
           : m == PT_MATCH_REGEX ? "regex"
                                 : "prefix";
}

/* alias = "/srv/images/$1" in a regex location (nginx's alias with
 * captures): the directory before the first capture, which must exist, and
 * the rest, expanded per request (rewrite.c). For a gateway the directory
 * is its script directory and the name the captures make is the script
 * (gw.c), as nginx's $request_filename under such an alias. */
static int get_regex_alias(load_ctx *x, const config_setting_t *g, const config_setting_t *s,
                           pt_location *l)
{
    const char *v = config_setting_get_string(s), *d = strchr(v, '$');
    char why[700];
    if (member(g, "root"))
        return fail_at(x, s, "a location takes 'root' or 'alias', not both");
    if (l->handler == PT_H_STATUS || l->handler == PT_H_PROXY)
        return fail_at(x, s, "the alias of a regex location applies to static files and scripts");
    if (!d || !pt_rewrite_ref_len(d))
        return fail_at(x, s,
                       "the alias of a regex location names the file with a capture: "
                       "\"/srv/images/$1\"");
    const char *slash = d;
    while (slash > v && slash[-1] != '/')
        slash--;
    if (slash == v)
        return fail_at(x, s, "alias '%s' must start with a directory", v);
    if (pt_rewrite_check_refs(slash, l->rx, why, sizeof(why)) < 0)
        return fail_at(x, s, "alias: %s", why);
    char *dir = xstrdup(x, v);
    if (!dir)
        return -1;
    dir[slash - v] = '\0';
    int rc = resolve_dir(x, s, "alias", dir, &l->alias);
    free(dir);
    if (rc < 0 || !(l->alias_tmpl = xstrdup(x, slash)))
        return -1;
    if (l->handler != PT_H_STATIC && !(l->cgi_dir = xstrdup(x, l->alias)))
        return -1;
    return 0;
}

/* alias = "/usr/share/cgit/": a prefix location's own directory for what
 * follows the prefix (nginx's alias, lighttpd's alias.url). For a gateway it
 * is the script directory, the same as "dir". */
static int get_alias(load_ctx *x, const config_setting_t *g, pt_location *l)
{
    const config_setting_t *s = member(g, "alias");
    if (!s)
        return 0;
    if (l->match == PT_MATCH_REGEX)
        return get_regex_alias(x, g, s, l);
    if (l->match != PT_MATCH_PREFIX)
        return fail_at(x, s,
                       "'alias' only applies to prefix locations (and regex ones, with captures)");
    if (member(g, "root"))
        return fail_at(x, s, "a location takes 'root' or 'alias', not both");
    if (member(g, "dir") || member(g, "program"))
        return fail_at(x, s, "a location takes 'alias' or '%s', not both",
                       member(g, "dir") ? "dir" : "program");
    if (resolve_dir(x, s, "alias", config_setting_get_string(s), &l->alias) < 0)
        return -1;
    if (l->handler != PT_H_STATIC && l->handler != PT_H_STATUS &&
        !(l->cgi_dir = xstrdup(x, l->alias)))
        return -1;
    return 0;
}

/* regex, iregex, stop and rewrite (locate.c, rewrite.c): a pattern
 * compiled once, here; its errors name the offset PCRE2 stopped at */
static int get_regex_keys(load_ctx *x, const config_setting_t *g, const config_setting_t *ps,
                          pt_location *l)
{
    const config_setting_t *s;
    char why[700];
    if (l->match == PT_MATCH_REGEX &&
        !(l->rx = pt_regex_compile(l->pattern, member(g, "iregex") != NULL, why, sizeof(why))))
        return fail_at(x, ps, "%s", why);
    if ((s = member(g, "stop"))) {
        if (l->match != PT_MATCH_PREFIX)
            return fail_at(x, s, "'stop' only applies to prefix locations");
        l->stop = config_setting_get_bool(s);
    }
    if ((s = member(g, "rewrite"))) {
        if (!(l->rewrites = xcalloc(x, 1, sizeof(*l->rewrites))) ||
            get_rewrite_rules(x, s, l->rewrites) < 0)
            return -1;
    }
    /* "return 301 /new/$1": the groups must be the location's own */
    if (l->ph.ret_own && l->ph.ret->text &&
        pt_rewrite_check_refs(l->ph.ret->text, l->rx, why, sizeof(why)) < 0)
        return fail_at(x, member(g, "return") ? member(g, "return") : member(g, "return_http"),
                       "return: %s", why);
    return 0;
}

static int build_location(load_ctx *x, const config_setting_t *g, const defaults *d, pt_location *l)
{
    static const struct {
        const char *key;
        pt_match_kind kind;
    } kinds[] = {{"prefix", PT_MATCH_PREFIX},
                 {"exact", PT_MATCH_EXACT},
                 {"extension", PT_MATCH_EXT},
                 {"regex", PT_MATCH_REGEX},
                 {"iregex", PT_MATCH_REGEX}};
    const config_setting_t *ps = NULL, *s;
    const char *pat, *h = "static";
    int found = 0;
    l->line = (int)config_setting_source_line(g);
    for (size_t i = 0; i < PT_ARRAY_LEN(kinds); i++)
        if ((s = member(g, kinds[i].key))) {
            ps = s;
            l->match = kinds[i].kind;
            found++;
        }
    if (found != 1)
        return fail_at(x, g,
                       "a location needs exactly one of prefix, exact, extension, regex or iregex");
    pat = config_setting_get_string(ps);
    if (l->match == PT_MATCH_EXT) {
        if (pat[0] != '.' || pat[1] == '\0' || strchr(pat, '/'))
            return fail_at(x, ps, "extension '%s' must start with '.' and contain no '/'", pat);
    } else if (l->match == PT_MATCH_REGEX) {
        if (!pat[0])
            return fail_at(x, ps, "an empty regex would match every path: use prefix = \"/\"");
    } else if (pat[0] != '/') {
        return fail_at(x, ps, "%s '%s' must start with '/'", match_name(l->match), pat);
    }
    if (!(l->pattern = xstrdup(x, pat)))
        return -1;
    l->pattern_len = strlen(pat);
    l->limit_conn = d->limit_conn;
    l->limit_req = d->limit_req;
    if (get_limits(x, g, &l->limit_conn, &l->limit_req) < 0)
        return -1;
    l->ph = d->ph;
    if (get_phases(x, g, true, &l->ph) < 0 || get_regex_keys(x, g, ps, l) < 0)
        return -1;
    /* an exact or extension location cannot lift the authentication of
     * the prefix it lies under (see portico.conf(5), REQUEST PHASES) */
    if (l->match != PT_MATCH_PREFIX && l->ph.auth_own && !l->ph.auth->realm)
        return fail_at(x, member(g, "auth_basic"),
                       "auth_basic = \"off\" only applies to a prefix location");
    if ((s = member(g, "handler")))
        h = config_setting_get_string(s);
    if (!(l->h = pt_handler_find(h)))
        return fail_at(x, s, "unknown handler '%s' (%s)", h, pt_handler_names());
    l->handler = (pt_handler_kind)l->h->kind;
    if (check_handler_keys(x, g, l->handler) < 0)
        return -1;
    if ((s = member(g, "root")) &&
        resolve_dir(x, s, "root", config_setting_get_string(s), &l->root) < 0)
        return -1;
    if (get_alias(x, g, l) < 0)
        return -1;
    opt_own(g, "dir_listing", &l->dir_listing, &l->own_opts, PT_OWN_DIR_LISTING);
    opt_own(g, "follow_symlinks", &l->follow_symlinks, &l->own_opts, PT_OWN_FOLLOW_SYMLINKS);
    opt_own(g, "allow_dotfiles", &l->allow_dotfiles, &l->own_opts, PT_OWN_ALLOW_DOTFILES);
    opt_own(g, "precompressed", &l->precompressed, &l->own_opts, PT_OWN_PRECOMPRESSED);
    l->compress = d->compress;
    if (get_compress(x, g, &l->compress) < 0)
        return -1;
    l->buffering = true;
    /* WebSocket and other Upgrades pass a proxy location unless refused
     * (tunnel.c): an upstream that does not speak them answers plainly */
    l->upgrade = true;
    l->request_buffering = true;
    l->interim_responses = true;
    l->timeout_ms = x->cgi_timeout_ms;
    /* applications behind a backend (PHP, WSGI) authenticate themselves:
     * FastCGI, SCGI and uwsgi pass credentials by default; CGI keeps RFC
     * 3875 §4.1.18's choice to withhold them. */
    l->pass_authorization =
        (l->handler >= PT_H_FASTCGI && l->handler <= PT_H_UWSGI) || l->handler == PT_H_PROXY;
    l->pass_authorization_set = member(g, "pass_authorization") != NULL;
    l->require_file = l->handler >= PT_H_FASTCGI && l->handler <= PT_H_UWSGI;
    opt_bool(g, "status_allow_remote", &l->status_allow_remote);
    opt_bool(g, "internal", &l->internal);
    if (l->handler == PT_H_STATIC || l->handler == PT_H_STATUS) {
        if ((s = member(g, "cache")) && config_setting_get_bool(s))
            return fail_at(x, s, "'cache' applies to gateway locations only");
        return 0;
    }
    l->cache = d->cache;
    if (get_cache(x, g, &l->cache) < 0)
        return -1;
    if (l->cache.on && l->cache.zone < 0) {
        /* no zone named: the default one, cache_dir */
        if (x->c->ncache_zones == 0 || strcmp(x->c->cache_zones[0].name, "default") != 0)
            return fail_at(x, member(g, "cache") ? member(g, "cache") : g,
                           "'cache' needs cache_dir (where the bodies are kept) or a "
                           "cache_zone");
        l->cache.zone = 0;
    }
    if (build_gateway(x, g, l) < 0)
        return -1;
    return l->handler == PT_H_CGI ? build_cgi(x, g, d, l) : build_fastcgi(x, g, l);
}

static int build_locations(load_ctx *x, const config_setting_t *list, const defaults *d,
                           pt_vhost *v)
{
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    bool has_root = false;
    /* one spare slot for the implicit "/" */
    if (!(v->locs = xcalloc(x, n + 1, sizeof(*v->locs))))
        return -1;
    for (size_t i = 0; i <= n; i++)
        v->locs[i].dir_fd = -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        pt_location *l = &v->locs[v->nlocs++];
        if (build_location(x, g, d, l) < 0)
            return -1;
        for (size_t j = 0; j + 1 < v->nlocs; j++)
            if (v->locs[j].match == l->match && strcmp(v->locs[j].pattern, l->pattern) == 0) {
                if (v->locs[j].line == 0) /* made by an earlier --cgi */
                    return fail_at(x, g, "duplicate location %s '%s' (given twice)",
                                   match_name(l->match), l->pattern);
                return fail_at(x, g, "duplicate location %s '%s' (first at line %d)",
                               match_name(l->match), l->pattern, v->locs[j].line);
            }
        if (l->match == PT_MATCH_PREFIX && strcmp(l->pattern, "/") == 0)
            has_root = true;
    }
    if (!has_root) {
        /* every path must resolve to some location */
        pt_location *l = &v->locs[v->nlocs++];
        l->match = PT_MATCH_PREFIX;
        l->handler = PT_H_STATIC;
        l->h = pt_handler_find("static");
        l->compress = d->compress;
        l->buffering = true;
        l->timeout_ms = x->cgi_timeout_ms;
        l->limit_conn = d->limit_conn;
        l->limit_req = d->limit_req;
        l->ph = d->ph;
        l->ph.auth_own = l->ph.ret_own = false;
        if (!(l->pattern = xstrdup(x, "/")))
            return -1;
        l->pattern_len = 1;
    }
    return 0;
}

/* -------------------------------------------------------------- vhosts */

static bool host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '_';
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Lower-case, strip a trailing dot, check the shape of a vhost name: it is
 * compared with the Host field's uri-host (RFC 9110 §7.2), so no port. */
static int norm_name(load_ctx *x, const config_setting_t *s, char *name)
{
    size_t len = strlen(name);
    const char *h = name;
    for (size_t i = 0; i < len; i++)
        name[i] = lower(name[i]);
    if (len > 1 && name[len - 1] == '.')
        name[--len] = '\0';
    if (len == 0 || len > 253)
        return fail_at(x, s, "vhost name '%s': must be 1 to 253 characters", name);
    if (strcmp(name, "*") == 0)
        return 0;
    if (name[0] == '[') {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a;
        if (name[len - 1] == ']' && len - 2 < sizeof(buf)) {
            memcpy(buf, name + 1, len - 2);
            buf[len - 2] = '\0';
            if (inet_pton(AF_INET6, buf, &a) == 1)
                return 0;
        }
        return fail_at(x, s, "vhost name '%s': not a valid [IPv6] literal", name);
    }
    if (name[0] == '*') {
        if (name[1] != '.' || name[2] == '\0')
            return fail_at(x, s, "vhost name '%s': a wildcard must look like '*.example.org'",
                           name);
        h = name + 2;
    }
    const char *labels = h;
    for (; *h; h++)
        if (!host_char(*h))
            return fail_at(x, s,
                           "vhost name '%s': invalid character '%c' (letters, digits, '-', '.', "
                           "a leading '*.'; no port)",
                           name, *h);
    /* one trailing dot is the same host (stripped above, as requests'
     * Host is): any other empty label could never match a request */
    if (labels[0] == '.' || strstr(labels, "..") || name[len - 1] == '.')
        return fail_at(x, s, "vhost name '%s': empty label", name);
    return 0;
}

/* Option inheritance, once at load time (location <- vhost <- top level;
 * the vhost already holds the top level's where it is silent), so that no
 * request walks the chain. A reload builds a new configuration and so
 * resolves again. */
static void inherit_opts(pt_vhost *v)
{
    for (size_t i = 0; i < v->nlocs; i++) {
        pt_location *l = &v->locs[i];
        if (!(l->own_opts & PT_OWN_DIR_LISTING))
            l->dir_listing = v->dir_listing;
        if (!(l->own_opts & PT_OWN_FOLLOW_SYMLINKS))
            l->follow_symlinks = v->follow_symlinks;
        if (!(l->own_opts & PT_OWN_ALLOW_DOTFILES))
            l->allow_dotfiles = v->allow_dotfiles;
        if (!(l->own_opts & PT_OWN_PRECOMPRESSED))
            l->precompressed = v->precompressed;
    }
}

/* g NULL: the implicit default vhost. Unset settings come from the top level. */
static int build_vhost(load_ctx *x, const config_setting_t *g, const defaults *d, pt_vhost *v)
{
    const config_setting_t *s;
    defaults vd = *d; /* with the vhost's own limits, for its locations */
    v->line = g ? (int)config_setting_source_line(g) : 0;
    if ((s = member(g, "names"))) {
        if (get_strs(x, s, &v->names, &v->nnames) < 0)
            return -1;
        for (size_t i = 0; i < v->nnames; i++) {
            if (norm_name(x, s, v->names[i]) < 0)
                return -1;
            if (strcmp(v->names[i], "*") == 0)
                v->is_default = true;
        }
    }
    if (v->nnames == 0)
        v->is_default = true;
    if ((s = member(g, "default"))) {
        if (config_setting_get_bool(s))
            v->is_default = true;
        else if (v->is_default)
            return fail_at(x, s, "a vhost without names (or with '*') is the default");
    }
    if ((s = member(g, "root"))) {
        if (resolve_dir(x, s, "root", config_setting_get_string(s), &v->root) < 0)
            return -1;
    } else if (!(v->root = xstrdup(x, d->root))) {
        return -1;
    }
    if ((s = member(g, "index"))) {
        if (get_index(x, s, &v->index, &v->nindex) < 0)
            return -1;
    } else {
        if (!(v->index = xcalloc(x, d->nindex + 1, sizeof(*v->index))))
            return -1;
        for (; v->nindex < d->nindex; v->nindex++)
            if (!(v->index[v->nindex] = xstrdup(x, d->index[v->nindex])))
                return -1;
    }
    v->dir_listing = d->dir_listing;
    v->follow_symlinks = d->follow_symlinks;
    v->allow_dotfiles = d->allow_dotfiles;
    v->precompressed = d->precompressed;
    opt_bool(g, "dir_listing", &v->dir_listing);
    opt_bool(g, "follow_symlinks", &v->follow_symlinks);
    opt_bool(g, "allow_dotfiles", &v->allow_dotfiles);
    opt_bool(g, "precompressed", &v->precompressed);
    if ((s = member(g, "tls"))) {
        if (get_pairs(x, s, &v->tls_certificate, &v->tls_key, &v->tls_ncert) < 0)
            return -1;
        if (v->tls_ncert == 0)
            return fail_at(x, s, "a vhost's tls needs a certificate and its key");
        v->tls_verify_client = v->tls_verify_depth = -1;
        if (get_tls_extra(x, s, v->tls_ncert, &v->tls_ocsp, &v->tls_nocsp, &v->tls_client_ca,
                          &v->tls_verify_client, &v->tls_verify_depth) < 0)
            return -1;
    }
    if ((s = member(g, "acme")) && get_acme(x, s, v) < 0)
        return -1;
    if (get_compress(x, g, &vd.compress) < 0)
        return -1;
    v->compress = vd.compress;
    if ((s = member(g, "access_log"))) {
        const char *a = config_setting_get_string(s);
        if (!a[0])
            return fail_at(x, s, "access_log must not be empty (use \"off\")");
        if (strcmp(a, "off") == 0 || strcmp(a, "stderr") == 0 || strcmp(a, "stdout") == 0)
            v->access_log = xstrdup(x, a);
        else
            v->access_log = resolve_path(x, s, a);
        if (!v->access_log)
            return -1;
    }
    if (get_limits(x, g, &vd.limit_conn, &vd.limit_req) < 0)
        return -1;
    if (get_phases(x, g, false, &vd.ph) < 0 || get_realip(x, g, &vd.ph) < 0 ||
        get_server_rewrites(x, g, &vd.ph) < 0)
        return -1;
    v->ph = vd.ph;
    s = member(g, "locations");
    if (build_locations(x, s ? s : d->locations, &vd, v) < 0)
        return -1;
    inherit_opts(v);
    return 0;
}

static int build_vhosts(load_ctx *x, const config_setting_t *root, const defaults *d)
{
    pt_config *c = x->c;
    const config_setting_t *list = member(root, "vhosts");
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    const pt_vhost *def = NULL;
    if (!(c->vhosts = xcalloc(x, n + 1, sizeof(*c->vhosts))))
        return -1;
    for (size_t i = 0; i <= n; i++)
        c->vhosts[i].root_fd = -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        pt_vhost *v = &c->vhosts[c->nvhosts++];
        if (build_vhost(x, g, d, v) < 0)
            return -1;
        for (size_t k = 0; k < v->nnames; k++)
            for (size_t j = 0; j < i; j++)
                for (size_t m = 0; m < c->vhosts[j].nnames; m++)
                    if (strcmp(c->vhosts[j].names[m], v->names[k]) == 0)
                        return fail_at(x, member(g, "names"),
                                       "vhost name '%s' is already used by the vhost at line %d",
                                       v->names[k], c->vhosts[j].line);
        for (size_t k = 0; k < v->nnames; k++)
            for (size_t m = 0; m < k; m++)
                if (strcmp(v->names[m], v->names[k]) == 0)
                    return fail_at(x, member(g, "names"), "vhost name '%s' is listed twice",
                                   v->names[k]);
        if (v->is_default) {
            if (def)
                return fail_at(x, g,
                               "only one vhost may be the default (the vhost at line %d already "
                               "is; a vhost without names or with '*' is a default)",
                               def->line);
            def = v;
        }
    }
    if (!def) {
        /* unmatched Host values go to a vhost built from the top level */
        pt_vhost *v = &c->vhosts[c->nvhosts++];
        if (build_vhost(x, NULL, d, v) < 0)
            return -1;
    }
    return 0;
}

/* ----------------------------------------------------------- top level */

static int opt_file(load_ctx *x, const config_setting_t *root, const char *name, char **out)
{
    const config_setting_t *s = member(root, name);
    const char *v;
    if (!s)
        return 0;
    v = config_setting_get_string(s);
    if (!v[0])
        return fail_at(x, s, "%s must not be empty", name);
    free(*out);
    *out = resolve_path(x, s, v);
    return *out ? 0 : -1;
}

static int build_logs(load_ctx *x, const config_setting_t *root)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    static const int level_vals[] = {PT_LOG_ERROR, PT_LOG_WARN, PT_LOG_INFO, PT_LOG_DEBUG};
    pt_config *c = x->c;
    const config_setting_t *s;
    if ((s = member(root, "error_log"))) {
        const char *v = config_setting_get_string(s);
        if (strcmp(v, "off") == 0 || strcmp(v, "stdout") == 0)
            return fail_at(x, s, "error_log must be \"stderr\" or a file, not \"%s\"", v);
        if (strcmp(v, "stderr") != 0 && opt_file(x, root, "error_log", &c->error_log) < 0)
            return -1;
    }
    if (!c->error_log && !(c->error_log = xstrdup(x, "stderr")))
        return -1;
    c->log_level = PT_LOG_INFO;
    if ((s = member(root, "log_level"))) {
        const char *v = config_setting_get_string(s);
        size_t i;
        for (i = 0; i < PT_ARRAY_LEN(levels) && strcmp(levels[i], v) != 0; i++)
            ;
        if (i == PT_ARRAY_LEN(levels))
            return fail_at(x, s, "log_level '%s': must be error, warn, info or debug", v);
        c->log_level = level_vals[i];
    }
    if ((s = member(root, "access_log"))) {
        const char *v = config_setting_get_string(s);
        if (strcmp(v, "stderr") == 0 || strcmp(v, "stdout") == 0) {
            if (!(c->access_log = xstrdup(x, v)))
                return -1;
        } else if (strcmp(v, "off") != 0 && opt_file(x, root, "access_log", &c->access_log) < 0) {
            return -1;
        }
    }
    char aerr[160];
    s = member(root, "access_log_format");
    if (pt_alog_parse(s ? config_setting_get_string(s) : "combined", &c->access_log_format, aerr,
                      sizeof(aerr)) < 0)
        return s ? fail_at(x, s, "access_log_format: %s", aerr) : oom(x);
    if ((s = member(root, "request_id"))) {
        const char *v = config_setting_get_string(s);
        if (strcmp(v, "off") == 0)
            c->request_id = PT_RID_OFF;
        else if (strcmp(v, "on") == 0)
            c->request_id = PT_RID_ON;
        else if (strcmp(v, "client") == 0)
            c->request_id = PT_RID_CLIENT;
        else
            return fail_at(x, s, "request_id '%s': must be off, on or client", v);
    }
    return 0;
}

static int build_misc(load_ctx *x, const config_setting_t *root)
{
    pt_config *c = x->c;
    const config_setting_t *s;
    const char *tmp = getenv("TMPDIR");
    long long w = 0;
    if ((s = member(root, "workers")) && get_int(x, s, 0, 1024, &w) < 0)
        return -1;
    if (w == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        w = n > 0 ? PT_MIN(n, 1024) : 1;
    }
    c->workers = (int)w;
    /* PCRE2's limits for every regex match (regex.c): what a path may cost */
    long long ml = PT_REGEX_MATCH_LIMIT, dl = PT_REGEX_DEPTH_LIMIT;
    if (((s = member(root, "regex_match_limit")) && get_int(x, s, 100, 100000000, &ml) < 0) ||
        ((s = member(root, "regex_depth_limit")) && get_int(x, s, 10, 10000000, &dl) < 0))
        return -1;
    c->regex_match_limit = (uint32_t)ml;
    c->regex_depth_limit = (uint32_t)dl;
    if ((s = member(root, "user")) && !(c->user = xstrdup(x, config_setting_get_string(s))))
        return -1;
    if ((s = member(root, "group")) && !(c->group = xstrdup(x, config_setting_get_string(s))))
        return -1;
    if (c->group && !c->user)
        return fail_at(x, s, "'group' needs 'user'");
    if (c->user) {
        char e[256];
        if (pt_priv_resolve(c->user, c->group, &c->creds, e, sizeof(e)) < 0)
            return fail_at(x, member(root, strncmp(e, "unknown group", 13) == 0 ? "group" : "user"),
                           "%s", e);
    }
    if ((s = member(root, "cgi_user")) && !(c->cgi_user = xstrdup(x, config_setting_get_string(s))))
        return -1;
    if ((s = member(root, "cgi_group")) &&
        !(c->cgi_group = xstrdup(x, config_setting_get_string(s))))
        return -1;
    if (c->cgi_group && !c->cgi_user)
        return fail_at(x, s, "'cgi_group' needs 'cgi_user'");
    if (c->cgi_user) {
        char e[256];
        if (pt_priv_resolve(c->cgi_user, c->cgi_group, &c->cgi_creds, e, sizeof(e)) < 0)
            return fail_at(
                x, member(root, strncmp(e, "unknown group", 13) == 0 ? "cgi_group" : "cgi_user"),
                "%s", e);
    }
    c->no_new_privs = true;
    opt_bool(root, "no_new_privs", &c->no_new_privs);
    if (opt_file(x, root, "pid_file", &c->pid_file) < 0)
        return -1;
    if ((s = member(root, "tmp_dir"))) {
        if (resolve_dir(x, s, "tmp_dir", config_setting_get_string(s), &c->tmp_dir) < 0)
            return -1;
    } else if (!(c->tmp_dir = resolve_path(x, NULL, tmp && tmp[0] ? tmp : "/tmp"))) {
        return -1;
    }
    if (!(c->mime_types = xstrdup(x, "/etc/mime.types")) ||
        opt_file(x, root, "mime_types", &c->mime_types) < 0)
        return -1;
    if (!(c->server_name = xstrdup(x, "portico")))
        return -1;
    c->server_tokens = true;
    opt_bool(root, "server_tokens", &c->server_tokens);
    opt_bool(root, "http2_cleartext", &c->http2_cleartext);
    long long ms = 128; /* nghttp2's and nginx's default */
    if ((s = member(root, "http2_max_streams")) && get_int(x, s, 1, 65536, &ms) < 0)
        return -1;
    c->http2_max_streams = (uint32_t)ms;
    return 0;
}

static int build_defaults(load_ctx *x, const config_setting_t *root, defaults *d)
{
    const config_setting_t *s = member(root, "root");
    if (resolve_dir(x, s, "root", s ? config_setting_get_string(s) : ".", &d->root) < 0)
        return -1;
    if ((s = member(root, "index"))) {
        if (get_index(x, s, &d->index, &d->nindex) < 0)
            return -1;
    } else {
        if (!(d->index = xcalloc(x, 2, sizeof(*d->index))) ||
            !(d->index[0] = xstrdup(x, "index.html")))
            return -1;
        d->nindex = 1;
    }
    opt_bool(root, "dir_listing", &d->dir_listing);
    opt_bool(root, "follow_symlinks", &d->follow_symlinks);
    opt_bool(root, "allow_dotfiles", &d->allow_dotfiles);
    opt_bool(root, "precompressed", &d->precompressed);
    compress_defaults(&d->compress);
    if (get_compress(x, root, &d->compress) < 0)
        return -1;
    cache_defaults(&d->cache);
    if (build_cache_zone(x, root) < 0 || get_cache(x, root, &d->cache) < 0)
        return -1;
    d->limit_conn = d->limit_req = -1;
    if (get_limits(x, root, &d->limit_conn, &d->limit_req) < 0)
        return -1;
    if (get_phases(x, root, false, &d->ph) < 0 || get_realip(x, root, &d->ph) < 0 ||
        get_proxy_from(x, root, &d->ph) < 0 || get_server_rewrites(x, root, &d->ph) < 0)
        return -1;
    d->locations = member(root, "locations");
    if ((s = member(root, "cgi_interpreters")) &&
        get_interps(x, s, &d->interp_exts, &d->interp_paths, &d->ninterp) < 0)
        return -1;
    return 0;
}

static int build(load_ctx *x)
{
    const config_setting_t *root = config_root_setting(&x->lc);
    defaults d = {0};
    int rc = -1;
    if (check_group(x, root, top_keys) < 0 || build_misc(x, root) < 0 || build_logs(x, root) < 0 ||
        build_listen(x, root) < 0 || build_tls(x, root) < 0 || build_limits(x, root) < 0 ||
        build_fcache(x, root) < 0 || build_defaults(x, root, &d) < 0 ||
        build_backends(x, root) < 0 || build_acme(x, root) < 0 || build_vhosts(x, root, &d) < 0 ||
        build_tls_vhosts(x, root) < 0 || warn_unused_backends(x, root) < 0)
        goto out;
    rc = 0;
out:
    free(d.root);
    free_strv(d.index, d.nindex);
    free_strv(d.interp_exts, d.ninterp);
    free_strv(d.interp_paths, d.ninterp);
    return rc;
}

/* ----------------------------------------------- overrides (-o, flags) */

static bool parse_bool_word(const char *v, int *out)
{
    static const char *const yes[] = {"true", "on", "yes", "1"};
    static const char *const no[] = {"false", "off", "no", "0"};
    for (size_t i = 0; i < PT_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

/* Replace parent.<k->name> with value converted to the schema's type. */
static int set_leaf(load_ctx *x, const char *label, config_setting_t *parent, const key_spec *k,
                    const char *value)
{
    config_setting_t *s;
    long long n = 0;
    int b = 0;
    if (k->kind == K_INT) {
        char *end;
        errno = 0;
        n = strtoll(value, &end, 10);
        if (!value[0] || *end || errno || value[0] == ' ' || value[0] == '+')
            return fail(x, label, "'%s' is not an integer", value);
    } else if (k->kind == K_BOOL && !parse_bool_word(value, &b)) {
        return fail(x, label, "'%s' is not a boolean (true/false, on/off, yes/no, 1/0)", value);
    }
    if (config_setting_get_member(parent, k->name))
        config_setting_remove(parent, k->name);
    switch (k->kind) {
    case K_INT:
        if (n >= INT_MIN && n <= INT_MAX) {
            if ((s = config_setting_add(parent, k->name, CONFIG_TYPE_INT)))
                config_setting_set_int(s, (int)n);
        } else if ((s = config_setting_add(parent, k->name, CONFIG_TYPE_INT64))) {
            config_setting_set_int64(s, n);
        }
        break;
    case K_BOOL:
        if ((s = config_setting_add(parent, k->name, CONFIG_TYPE_BOOL)))
            config_setting_set_bool(s, b);
        break;
    case K_STRS:
    case K_SERVERS:
        if ((s = config_setting_add(parent, k->name, CONFIG_TYPE_ARRAY)) && value[0]) {
            /* comma-separated, blanks around items ignored */
            for (const char *p = value;; p++) {
                const char *e = strchr(p, ',');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                char *item;
                while (len && (*p == ' ' || *p == '\t'))
                    p++, len--;
                while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                    len--;
                if (len == 0)
                    return fail(x, label, "empty item in '%s'", value);
                if (!(item = strndup(p, len)))
                    return oom(x);
                config_setting_set_string_elem(s, -1, item);
                free(item);
                if (!e)
                    break;
                p = e;
            }
        }
        break;
    default: /* K_STR, K_SIZE, K_DUR: validated with the file's values */
        if ((s = config_setting_add(parent, k->name, CONFIG_TYPE_STRING)))
            config_setting_set_string(s, value);
        break;
    }
    if (!s)
        return oom(x);
    config_setting_set_hook(s, (void *)label);
    return 0;
}

/* "-o path", "--cgi ARG": owned by the context, pointed at by the settings' hooks */
static const char *add_label(load_ctx *x, const char *flag, const char *path)
{
    char **nl = realloc(x->labels, (x->nlabels + 1) * sizeof(*nl));
    char *l;
    if (!nl || asprintf(&l, "%s %s", flag, path) < 0) {
        if (nl)
            x->labels = nl;
        oom(x);
        return NULL;
    }
    x->labels = nl;
    x->labels[x->nlabels++] = l;
    return l;
}

/* Walk a path ("limits.max_body", "vhosts.[0].root") through the schema,
 * creating missing groups, and set its leaf. label prefixes messages. */
static int set_path(load_ctx *x, const char *label, const char *path, const char *value)
{
    config_setting_t *cur = config_root_setting(&x->lc);
    const key_spec *spec = top_keys, *k = NULL;
    char *dup = strdup(path), *save = NULL, *tok, *next;
    int rc = -1;
    if (!dup)
        return oom(x);
    for (tok = strtok_r(dup, ".", &save); tok; tok = next) {
        next = strtok_r(NULL, ".", &save);
        if (!spec) {
            /* after a list: "[N]" selects an existing element */
            char *end;
            unsigned long idx;
            if (tok[0] != '[' || tok[1] < '0' || tok[1] > '9')
                goto unknown;
            idx = strtoul(tok + 1, &end, 10);
            if (end[0] != ']' || end[1] != '\0')
                goto unknown;
            if (!cur || idx >= (unsigned long)config_setting_length(cur)) {
                fail(x, label, "no element [%lu] in '%s' (it has %d)", idx, k->name,
                     cur ? config_setting_length(cur) : 0);
                goto out;
            }
            cur = config_setting_get_elem(cur, (unsigned)idx);
            if (!config_setting_is_group(cur)) {
                fail(x, label, "element [%lu] of '%s' is not a group", idx, k->name);
                goto out;
            }
            spec = k->sub;
            if (!next) {
                fail(x, label, "name a setting of the element, e.g. %s.root", path);
                goto out;
            }
            continue;
        }
        if (!(k = find_key(spec, tok)))
            goto unknown;
        if (k->kind == K_GROUP || (k->kind == K_REQ && next)) {
            config_setting_t *child = config_setting_get_member(cur, tok);
            if (!next) {
                fail(x, label, "'%s' is a group; set one of its settings, e.g. %s.%s=...", path,
                     path, k->sub[0].name);
                goto out;
            }
            if (child && !config_setting_is_group(child)) {
                config_setting_remove(cur, tok);
                child = NULL;
            }
            if (!child && !(child = config_setting_add(cur, tok, CONFIG_TYPE_GROUP))) {
                oom(x);
                goto out;
            }
            cur = child;
            spec = k->sub;
        } else if (k->kind == K_LIST) {
            if (!next) {
                fail(x, label, "'%s' is a list; set a setting of one element, e.g. %s.[0].%s=...",
                     path, path, k->sub[0].name);
                goto out;
            }
            cur = config_setting_get_member(cur, tok);
            spec = NULL;
        } else {
            if (next)
                goto unknown;
            rc = set_leaf(x, label, cur, k, value);
            goto out;
        }
    }
unknown:
    fail(x, label, "unknown setting");
out:
    free(dup);
    return rc;
}

static int apply_override(load_ctx *x, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *path;
    const char *label;
    int rc;
    if (!eq || eq == arg)
        return fail(x, "-o", "'%s': expected SETTING=VALUE", arg);
    if (!(path = strndup(arg, (size_t)(eq - arg))))
        return oom(x);
    label = add_label(x, "-o", path);
    rc = label ? set_path(x, label, path, eq + 1) : -1;
    free(path);
    return rc;
}

static int add_route(load_ctx *x, char ***v, size_t *n, const char *arg)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return oom(x);
    *v = nv;
    if (!(nv[*n] = xstrdup(x, arg)))
        return -1;
    (*n)++;
    return 0;
}

static config_setting_t *add_str(config_setting_t *g, const char *name, const char *v)
{
    config_setting_t *s = config_setting_add(g, name, CONFIG_TYPE_STRING);
    return s && config_setting_set_string(s, v) ? s : NULL;
}

/* The top-level list the flags append to, created when missing; *out NULL
 * when the file gave it a wrong type (the schema check reports that). */
static int top_list(load_ctx *x, const char *name, config_setting_t **out)
{
    config_setting_t *root = config_root_setting(&x->lc);
    config_setting_t *list = config_setting_get_member(root, name);
    *out = NULL;
    if (list && config_setting_is_array(list) && config_setting_length(list) == 0) {
        /* "locations = [ ];" is an empty list to the schema */
        config_setting_remove(root, name);
        list = NULL;
    }
    if (list && !config_setting_is_list(list))
        return 0;
    if (!list && !(list = config_setting_add(root, name, CONFIG_TYPE_LIST)))
        return oom(x);
    *out = list;
    return 0;
}

/* --cgi PREFIX=PATH becomes a location group appended to the top-level
 * locations (before the implicit "/"), blamed on the flag in messages. */
static int add_cgi_location(load_ctx *x, const char *arg)
{
    config_setting_t *list, *g, *s;
    const char *eq = strchr(arg, '='), *label;
    char *pat = NULL, *abs = NULL;
    bool is_ext = arg[0] == '.';
    struct stat st = {0};
    int rc = -1;
    if (!eq || eq == arg || (arg[0] != '/' && !is_ext) || (!is_ext && !eq[1]))
        return fail(x, "--cgi",
                    "'%s': expected PREFIX=PATH, e.g. /cgi-bin/=/usr/lib/cgi-bin, "
                    "/git=/usr/lib/git-core/git-http-backend or .pl=/usr/bin/perl",
                    arg);
    if (!(label = add_label(x, "--cgi", arg)))
        return -1;
    if (eq[1]) {
        /* the kind of PATH decides the mapping, so it must exist now */
        if (!(abs = make_abs(x->cwd, eq + 1)))
            return oom(x);
        if (stat(abs, &st) < 0) {
            fail(x, label, "%s", strerror(errno));
            goto out;
        }
        if (is_ext ? !S_ISREG(st.st_mode) : !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
            fail(x, label, "%s",
                 is_ext ? "the interpreter is not a regular file"
                        : "not a directory or a regular file");
            goto out;
        }
        if (S_ISREG(st.st_mode) && access(abs, X_OK) < 0) {
            fail(x, label, "'%s' is not executable", abs);
            goto out;
        }
    }
    if (top_list(x, "locations", &list) < 0)
        goto out;
    if (!list) {
        rc = 0; /* a wrong type: the schema check reports it */
        goto out;
    }
    if (!(g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP)) ||
        !(pat = strndup(arg, (size_t)(eq - arg))) ||
        !add_str(g, is_ext ? "extension" : "prefix", pat) || !add_str(g, "handler", "cgi")) {
        oom(x);
        goto out;
    }
    config_setting_set_hook(g, (void *)label);
    if (is_ext) {
        /* an empty PATH runs the script itself: no inherited cgi_interpreters either */
        char *entry = NULL;
        if (!(s = config_setting_add(g, "interpreters", CONFIG_TYPE_ARRAY)) ||
            (abs && (asprintf(&entry, "%s=%s", pat, abs) < 0 ||
                     !config_setting_set_string_elem(s, -1, entry)))) {
            free(entry);
            oom(x);
            goto out;
        }
        free(entry);
    } else if (!add_str(g, S_ISDIR(st.st_mode) ? "dir" : "program", abs)) {
        oom(x);
        goto out;
    }
    rc = 0;
out:
    free(pat);
    free(abs);
    return rc;
}

/* --fastcgi PATTERN=ADDRESS[,ADDRESS...] becomes a backend named PATTERN
 * with those servers and a location { extension|prefix = PATTERN; handler =
 * "fastcgi"; backend = PATTERN; }, both blamed on the flag; the addresses
 * meet the same checks as the file's. --scgi and --uwsgi alike (flag is
 * "--" handler). */
static int add_upstream(load_ctx *x, const char *flag, const char *arg)
{
    const char *handler = flag + 2;
    config_setting_t *list, *g, *s;
    const char *eq = strchr(arg, '='), *label;
    char *pat = NULL;
    bool ok = eq && eq != arg && (arg[0] == '/' || arg[0] == '.');
    int rc = -1;
    for (const char *p = eq ? eq + 1 : NULL; ok;) {
        const char *e = strchr(p, ',');
        ok = e ? e > p : p[0] != '\0';
        if (!e)
            break;
        p = e + 1;
    }
    if (!ok)
        return fail(x, flag,
                    "'%s': expected PATTERN=ADDRESS[,ADDRESS...], e.g. "
                    ".php=unix:/run/php/php-fpm.sock or /app/=127.0.0.1:9000",
                    arg);
    if (!(label = add_label(x, flag, arg)))
        return -1;
    if (!(pat = strndup(arg, (size_t)(eq - arg)))) {
        oom(x);
        goto out;
    }
    if (top_list(x, "backends", &list) < 0)
        goto out;
    if (list) {
        if (!(g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP)) || !add_str(g, "name", pat) ||
            !(s = config_setting_add(g, "servers", CONFIG_TYPE_ARRAY))) {
            oom(x);
            goto out;
        }
        config_setting_set_hook(g, (void *)label);
        for (const char *p = eq + 1;;) {
            const char *e = strchr(p, ',');
            char *item = strndup(p, e ? (size_t)(e - p) : strlen(p));
            if (!item || !config_setting_set_string_elem(s, -1, item)) {
                free(item);
                oom(x);
                goto out;
            }
            free(item);
            if (!e)
                break;
            p = e + 1;
        }
    }
    if (top_list(x, "locations", &list) < 0)
        goto out;
    if (list) {
        if (!(g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP)) ||
            !add_str(g, arg[0] == '.' ? "extension" : "prefix", pat) ||
            !add_str(g, "handler", handler) || !add_str(g, "backend", pat)) {
            oom(x);
            goto out;
        }
        config_setting_set_hook(g, (void *)label);
    }
    rc = 0;
out:
    free(pat);
    return rc;
}

/* --status PATH becomes a location { exact = PATH; handler = "status"; }
 * blamed on the flag: loopback clients only, as the default says. */
static int add_status(load_ctx *x, const char *arg)
{
    config_setting_t *list, *g;
    const char *label;
    if (arg[0] != '/')
        return fail(x, "--status", "'%s': expected a path starting with '/', e.g. /status", arg);
    if (!(label = add_label(x, "--status", arg)) || top_list(x, "locations", &list) < 0)
        return -1;
    if (!list)
        return 0; /* a wrong type: the schema check reports it */
    if (!(g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP)) || !add_str(g, "exact", arg) ||
        !add_str(g, "handler", "status"))
        return oom(x);
    config_setting_set_hook(g, (void *)label);
    return 0;
}

/* --auth PREFIX=HTPASSWD: auth_basic for a top-level prefix location (the
 * one with that prefix, else a new static one; .php files beneath meet it
 * through the router's prefix rule), realm "Restricted". */
static int add_auth(load_ctx *x, const char *arg)
{
    config_setting_t *list, *g = NULL, *s;
    const char *eq = strchr(arg, '='), *label;
    char *pat = NULL, *abs = NULL;
    int rc = -1;
    if (!eq || arg[0] != '/' || !eq[1])
        return fail(x, "--auth",
                    "'%s': expected PREFIX=HTPASSWD, e.g. /admin/=/etc/portico/htpasswd", arg);
    if (!(label = add_label(x, "--auth", arg)))
        return -1;
    if (!(pat = strndup(arg, (size_t)(eq - arg))) || !(abs = make_abs(x->cwd, eq + 1))) {
        oom(x);
        goto out;
    }
    if (top_list(x, "locations", &list) < 0)
        goto out;
    if (!list) {
        rc = 0; /* a wrong type: the schema check reports it */
        goto out;
    }
    for (int i = 0; i < config_setting_length(list) && !g; i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        const config_setting_t *p = config_setting_is_group(e) ? member(e, "prefix") : NULL;
        if (p && config_setting_type(p) == CONFIG_TYPE_STRING &&
            strcmp(config_setting_get_string(p), pat) == 0)
            g = e;
    }
    if (g && (member(g, "auth_basic") || member(g, "auth_basic_user_file"))) {
        fail(x, label, "the location with prefix '%s' sets auth_basic already", pat);
        goto out;
    }
    if (!g) {
        if (!(g = config_setting_add(list, NULL, CONFIG_TYPE_GROUP)) ||
            !add_str(g, "prefix", pat)) {
            oom(x);
            goto out;
        }
        config_setting_set_hook(g, (void *)label);
    }
    if (!(s = add_str(g, "auth_basic", "Restricted"))) {
        oom(x);
        goto out;
    }
    config_setting_set_hook(s, (void *)label);
    if (!(s = add_str(g, "auth_basic_user_file", abs))) {
        oom(x);
        goto out;
    }
    config_setting_set_hook(s, (void *)label);
    rc = 0;
out:
    free(pat);
    free(abs);
    return rc;
}

static int apply_gateways(load_ctx *x, const pt_cli *cli)
{
    pt_config *c = x->c;
    for (size_t i = 0; i < cli->ncgi; i++) {
        if (add_cgi_location(x, cli->cgi[i]) < 0)
            return -1;
        if (add_route(x, &c->cgi_routes, &c->ncgi_routes, cli->cgi[i]) < 0)
            return -1;
    }
    for (size_t i = 0; i < cli->nfastcgi; i++) {
        if (add_upstream(x, "--fastcgi", cli->fastcgi[i]) < 0)
            return -1;
        if (add_route(x, &c->fastcgi_routes, &c->nfastcgi_routes, cli->fastcgi[i]) < 0)
            return -1;
    }
    for (size_t i = 0; i < cli->nscgi; i++)
        if (add_upstream(x, "--scgi", cli->scgi[i]) < 0)
            return -1;
    for (size_t i = 0; i < cli->nuwsgi; i++)
        if (add_upstream(x, "--uwsgi", cli->uwsgi[i]) < 0)
            return -1;
    for (size_t i = 0; i < cli->nproxy; i++) {
        /* a prefix only: an extension means nothing to an HTTP upstream */
        if (cli->proxy[i][0] != '/')
            return fail(x, "--proxy",
                        "'%s': expected PREFIX=ADDRESS[,ADDRESS...], e.g. /app/=127.0.0.1:8000",
                        cli->proxy[i]);
        if (add_upstream(x, "--proxy", cli->proxy[i]) < 0)
            return -1;
    }
    if (cli->status && add_status(x, cli->status) < 0)
        return -1;
    /* after --cgi: "--cgi /cgi-bin/=DIR --auth /cgi-bin/=FILE" protects that location */
    for (size_t i = 0; i < cli->nauth; i++)
        if (add_auth(x, cli->auth[i]) < 0)
            return -1;
    return 0;
}

/* A repeatable file flag (--cert, --key) as one list setting. */
static int set_files(load_ctx *x, const char *flag, const char *path, const char **v, size_t n)
{
    size_t len = 1, o = 0;
    int rc;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i][0] || strchr(v[i], ','))
            return fail(x, flag, "'%s': expected one file name without a comma", v[i]);
        len += strlen(v[i]) + 1;
    }
    char *all = malloc(len);
    if (!all)
        return oom(x);
    all[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(all + o, len - o, "%s%s", o ? "," : "", v[i]);
    rc = set_path(x, flag, path, all);
    free(all);
    return rc;
}

/* The flags are overrides like -o, so everything meets one validator. */
static int apply_cli(load_ctx *x, const pt_cli *cli)
{
    char buf[32];
    if (cli->workers != -1) {
        snprintf(buf, sizeof(buf), "%d", cli->workers);
        if (set_path(x, "-w", "workers", buf) < 0)
            return -1;
    }
    if (cli->nlisten || cli->port) {
        size_t len = 1, o = 0;
        char *all;
        uint16_t port;
        int rc;
        if (cli->port && !parse_port(cli->port, &port))
            return fail(x, "-p", "'%s': port must be a number from 1 to 65535", cli->port);
        for (size_t i = 0; i < cli->nlisten; i++)
            len += strlen(cli->listen[i]) + 1;
        len += cli->port ? strlen(cli->port) + 3 : 0;
        if (!(all = malloc(len)))
            return oom(x);
        all[0] = '\0';
        for (size_t i = 0; i < cli->nlisten; i++) {
            if (!cli->listen[i][0] || strchr(cli->listen[i], ',')) {
                free(all);
                return fail(x, "-l", "'%s': expected one ADDRESS:PORT", cli->listen[i]);
            }
            o += (size_t)snprintf(all + o, len - o, "%s%s", o ? "," : "", cli->listen[i]);
        }
        if (cli->port)
            snprintf(all + o, len - o, "%s*:%s", o ? "," : "", cli->port);
        rc = set_path(x, cli->nlisten ? "-l" : "-p", "listen", all);
        free(all);
        if (rc < 0)
            return -1;
    }
    if (cli->ntls_listen) {
        size_t len = 1, o = 0;
        char *all;
        int rc;
        for (size_t i = 0; i < cli->ntls_listen; i++)
            len += strlen(cli->tls_listen[i]) + 1;
        if (!(all = malloc(len)))
            return oom(x);
        all[0] = '\0';
        for (size_t i = 0; i < cli->ntls_listen; i++) {
            if (!cli->tls_listen[i][0] || strchr(cli->tls_listen[i], ',')) {
                free(all);
                return fail(x, "--tls", "'%s': expected one ADDRESS:PORT", cli->tls_listen[i]);
            }
            o += (size_t)snprintf(all + o, len - o, "%s%s", o ? "," : "", cli->tls_listen[i]);
        }
        rc = set_path(x, "--tls", "tls_listen", all);
        free(all);
        if (rc < 0)
            return -1;
    }
    if (set_files(x, "--cert", "tls.certificate", cli->tls_cert, cli->ntls_cert) < 0 ||
        set_files(x, "--key", "tls.key", cli->tls_key, cli->ntls_key) < 0)
        return -1;
    if (cli->root && set_path(x, "-r", "root", cli->root) < 0)
        return -1;
    if (cli->max_body && set_path(x, "--max-body", "limits.max_body", cli->max_body) < 0)
        return -1;
    if (cli->error_log && set_path(x, "--error-log", "error_log", cli->error_log) < 0)
        return -1;
    if (cli->access_log && set_path(x, "--access-log", "access_log", cli->access_log) < 0)
        return -1;
    if (cli->compress && set_path(x, "--compress", "compress", "true") < 0)
        return -1;
    /* --cache DIR: every gateway location, validity only as backends say */
    if (cli->cache && (set_path(x, "--cache", "cache_dir", cli->cache) < 0 ||
                       set_path(x, "--cache", "cache", "true") < 0))
        return -1;
    if (apply_gateways(x, cli) < 0)
        return -1;
    for (size_t i = 0; i < cli->noverrides; i++)
        if (apply_override(x, cli->overrides[i]) < 0)
            return -1;
    return 0;
}

/* --------------------------------------------- big-integer pre-scan */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return NULL;
    for (;;) {
        size_t r;
        if (n + 4096 + 1 > cap) {
            char *nb;
            if (cap >= (16u << 20)) {
                errno = EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 8192;
            if (!(nb = realloc(buf, cap)))
                goto fail;
            buf = nb;
        }
        errno = 0;
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                errno = errno ? errno : EIO; /* EISDIR for a directory */
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_xdigit(char ch)
{
    return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) || ch == '-' ||
           ch == '_' || ch == '*';
}

/* libconfig 1.5 reads an integer literal beyond 32 bits with atoi-style
 * wrapping (3000000000 -> -1294967296, 5000000000 -> 705032704) and no
 * error: report such literals before parsing instead of using a wrong value. */
static int scan_ints(load_ctx *x, const char *t, size_t len, const char *fname, int depth)
{
    unsigned line = 1;
    size_t i = 0;
    while (i < len) {
        char ch = t[i];
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == '#' || (ch == '/' && i + 1 < len && t[i + 1] == '/')) {
            while (i < len && t[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < len && t[i + 1] == '*') {
            for (i += 2; i < len && !(t[i] == '*' && i + 1 < len && t[i + 1] == '/'); i++)
                line += t[i] == '\n';
            i += 2;
        } else if (ch == '"') {
            for (i++; i < len && t[i] != '"'; i++) {
                if (t[i] == '\\' && i + 1 < len)
                    i++;
                line += t[i] == '\n';
            }
            i++;
        } else if (ch == '@' && len - i > 8 && strncmp(t + i, "@include", 8) == 0) {
            /* scan the included file too (libconfig resolves it against include_dir) */
            const char *q = memchr(t + i, '"', len - i), *e;
            i += 8;
            if (q && (e = memchr(q + 1, '"', len - (size_t)(q + 1 - t))) && depth < 10 && x->dir &&
                !memchr(q, '\n', (size_t)(e - q))) {
                char *rel = strndup(q + 1, (size_t)(e - q - 1)), *p = NULL, *body;
                size_t blen;
                int rc = 0;
                if (rel && asprintf(&p, "%s/%s", x->dir, rel) >= 0 && (body = slurp(p, &blen))) {
                    rc = scan_ints(x, body, blen, rel, depth + 1);
                    free(body);
                }
                free(p);
                free(rel);
                if (rc < 0)
                    return -1;
                i = (size_t)(e - t) + 1;
            }
        } else if (is_name_char(ch) && !is_digit(ch) && ch != '-') {
            while (i < len && is_name_char(t[i]))
                i++;
        } else if (is_digit(ch) ||
                   ((ch == '-' || ch == '+') && i + 1 < len && is_digit(t[i + 1]))) {
            size_t start = i;
            bool neg = ch == '-', hex = false;
            uint64_t v = 0;
            if (ch == '-' || ch == '+')
                i++;
            if (t[i] == '0' && i + 1 < len && (t[i + 1] == 'x' || t[i + 1] == 'X')) {
                hex = true;
                for (i += 2; i < len && is_xdigit(t[i]); i++)
                    v = v > (1ULL << 40)
                            ? v
                            : v * 16 + (uint64_t)(is_digit(t[i]) ? t[i] - '0'
                                                                 : (t[i] | 0x20) - 'a' + 10);
            } else {
                for (; i < len && is_digit(t[i]); i++)
                    v = v > (1ULL << 40) ? v : v * 10 + (uint64_t)(t[i] - '0');
            }
            if (!hex && i < len && (t[i] == '.' || t[i] == 'e' || t[i] == 'E')) {
                /* a float: skip it */
                while (i < len &&
                       (is_digit(t[i]) || t[i] == '.' || t[i] == 'e' || t[i] == 'E' ||
                        ((t[i] == '-' || t[i] == '+') && (t[i - 1] == 'e' || t[i - 1] == 'E'))))
                    i++;
                continue;
            }
            if (i < len && t[i] == 'L') {
                while (i < len && t[i] == 'L')
                    i++;
                continue;
            }
            if (v > (neg ? 2147483648ULL : 2147483647ULL))
                return fail(x, NULL,
                            "%s:%u: integer %.*s is out of range for libconfig (it would wrap "
                            "silently); write sizes as strings (\"5G\") or add an L suffix",
                            fname, line, (int)PT_MIN(i - start, 40), t + start);
        } else {
            i++;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- load */

static int parse_error(load_ctx *x)
{
    const char *f = config_error_file(&x->lc);
    if (config_error_type(&x->lc) == CONFIG_ERR_FILE_IO)
        return fail(x, x->name, "cannot read: %s", strerror(errno));
    return fail(x, NULL, "%s:%d: %s", f ? f : x->name, config_error_line(&x->lc),
                config_error_text(&x->lc));
}

/* Who the workers run as, for a real start (not for a string): the master
 * started as root drops to "user" in its children, and refuses to run them
 * as root from a configuration file that does not say so (user = "root").
 * From flags alone (a developer's quick start) it warns instead. */
static int decide_identity(load_ctx *x)
{
    pt_config *c = x->c;
    const config_setting_t *root = config_root_setting(&x->lc);
    uid_t me = geteuid();
    if (me == 0) {
        if (!c->user) {
            if (c->file)
                return fail(x, c->file,
                            "portico runs as root and 'user' is not set: workers and CGI "
                            "programs would run as root; set user = \"www-data\"; (or "
                            "user = \"root\"; to allow it)");
            return warn_at(x, NULL,
                           "running as root without 'user': workers and CGI programs run as "
                           "root (-o user=NAME drops privileges)");
        }
        c->creds.drop = c->creds.uid != 0 || c->creds.gid != 0;
        /* programs under an identity of their own: not the workers' uid,
         * so that they cannot signal a worker (kill(2) compares uids) */
        if (c->cgi_user) {
            if (c->cgi_creds.uid == c->creds.uid)
                return fail_at(x, member(root, "cgi_user"),
                               "cgi_user '%s' must differ from user: programs running as the "
                               "workers' user can signal them",
                               c->cgi_user);
            if (c->cgi_creds.uid == 0)
                return fail_at(x, member(root, "cgi_user"),
                               "cgi_user '%s' is root: programs must not run as root", c->cgi_user);
            c->cgi_creds.drop = true;
        }
        return 0;
    }
    if (c->cgi_user && c->cgi_creds.uid != me)
        warn_at(x, member(root, "cgi_user"),
                "cgi_user '%s' is not applied: portico was not started as root", c->cgi_user);
    if (c->user && c->creds.uid != me && c->creds.uid != 0)
        return warn_at(x, member(root, "user"),
                       "user '%s' is not applied: portico was not started as root", c->user);
    return 0;
}

/* One file the master writes as root, in a directory the workers' user
 * (or the programs' user, cgi_user: a program is the likeliest to plant a
 * link) can write: a pid file there is refused (root's tools trust its
 * content: logrotate and start-stop-daemon signal the pid it holds),
 * anything else is warned about (opened without following links all the
 * same). */
static int check_dir(load_ctx *x, const char *key, const char *path, bool top, bool refuse)
{
    char why[PATH_MAX + 128];
    const config_setting_t *at = top ? member(config_root_setting(&x->lc), key) : NULL;
    const pt_creds *prog = &x->c->cgi_creds;
    if (!path || path[0] != '/')
        return 0;
    if (pt_rootfile_dir_writable(path, &x->c->creds, "the workers' user", why, sizeof(why)) < 1 &&
        (!prog->drop || pt_rootfile_dir_writable(path, prog, "the programs' user (cgi_user)", why,
                                                 sizeof(why)) < 1))
        return 0;
    if (refuse)
        return fail_at(x, at,
                       "%s '%s': %s: that user could make root signal any process; use a "
                       "directory only root can write (such as /run)",
                       key, path, why);
    return warn_at(x, at,
                   "%s '%s': %s: that user can replace what root opens there; use a directory "
                   "only root can write (such as /var/log/portico)",
                   key, path, why);
}

/* Started as root with "user": the directories of every path the master
 * writes by name (DESIGN.md: nothing an unprivileged user can influence). */
static int check_master_paths(load_ctx *x)
{
    pt_config *c = x->c;
    if (!c->creds.drop || geteuid() != 0)
        return 0;
    if (check_dir(x, "pid_file", c->pid_file, true, true) < 0 ||
        check_dir(x, "error_log", c->error_log, true, false) < 0 ||
        check_dir(x, "access_log", c->access_log, true, false) < 0)
        return -1;
    for (size_t i = 0; i < c->nvhosts; i++)
        if (check_dir(x, "access_log", c->vhosts[i].access_log, false, false) < 0)
            return -1;
    for (size_t i = 0; i < c->nbackends; i++)
        if (c->backends[i].spawn && !c->backends[i].spawn->socket_auto &&
            check_dir(x, "spawn socket", c->backends[i].spawn->socket, false, false) < 0)
            return -1;
    return 0;
}

static pt_config *load(const pt_cli *cli, const char *text, const char *name, char *err,
                       size_t errlen)
{
    static const pt_cli no_cli = {.workers = -1};
    load_ctx x = {.name = name, .err = err, .errlen = errlen};
    pt_config *c = NULL;
    bool ok = false;
    if (err && errlen)
        err[0] = '\0';
    if (!cli)
        cli = &no_cli;
    config_init(&x.lc);
    if (!(x.cwd = getcwd(NULL, 0))) {
        fail(&x, "portico", "cannot get the current directory: %s", strerror(errno));
        goto out;
    }
    if (!(x.c = c = xcalloc(&x, 1, sizeof(*c))))
        goto out;
    if (name) {
        char *slash;
        if (!(c->file = xstrdup(&x, name)) || !(x.dir = make_abs(x.cwd, name))) {
            oom(&x);
            goto out;
        }
        slash = strrchr(x.dir, '/');
        slash[slash == x.dir ? 1 : 0] = '\0';
        config_set_include_dir(&x.lc, x.dir);
        if (text) {
            if (scan_ints(&x, text, strlen(text), name, 0) < 0)
                goto out;
            if (!config_read_string(&x.lc, text)) {
                parse_error(&x);
                goto out;
            }
        } else {
            size_t len;
            char *body = slurp(name, &len);
            int rc;
            if (!body) {
                fail(&x, name, "cannot read: %s", strerror(errno));
                goto out;
            }
            rc = scan_ints(&x, body, len, name, 0);
            free(body);
            if (rc < 0)
                goto out;
            if (!config_read_file(&x.lc, name)) {
                parse_error(&x);
                goto out;
            }
        }
    }
    if (apply_cli(&x, cli) < 0 || build(&x) < 0)
        goto out;
    if (!text && (decide_identity(&x) < 0 || check_master_paths(&x) < 0))
        goto out;
    ok = true;
out:
    config_destroy(&x.lc);
    free_strv(x.labels, x.nlabels);
    free(x.zone_src);
    free(x.dir);
    free(x.cwd);
    if (!ok) {
        pt_config_free(c);
        return NULL;
    }
    return c;
}

pt_config *pt_config_load(const pt_cli *cli, char *err, size_t errlen)
{
    return load(cli, NULL, cli ? cli->conf_file : NULL, err, errlen);
}

pt_config *pt_config_load_string(const char *text, const char *name, const pt_cli *cli, char *err,
                                 size_t errlen)
{
    return load(cli, text ? text : "", name ? name : "(string)", err, errlen);
}

int pt_config_open_roots(pt_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nvhosts; i++) {
        pt_vhost *v = &c->vhosts[i];
        if (v->root_fd >= 0)
            continue;
        v->root_fd = open(v->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (v->root_fd < 0) {
            if (err && errlen)
                snprintf(err, errlen, "root '%s': %s", v->root, strerror(errno));
            return -1;
        }
        /* a gateway's script directory: the scripts are resolved beneath
         * it (resolve.c); one missing now is looked for per request */
        for (size_t j = 0; j < v->nlocs; j++) {
            pt_location *l = &v->locs[j];
            if (l->cgi_dir && l->dir_fd < 0)
                l->dir_fd = open(l->cgi_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
    }
    return 0;
}

void pt_config_free(pt_config *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->user);
    free(c->group);
    pt_priv_free(&c->creds);
    free(c->cgi_user);
    free(c->cgi_group);
    pt_priv_free(&c->cgi_creds);
    free(c->pid_file);
    free(c->error_log);
    free(c->access_log);
    pt_alog_free(&c->access_log_format);
    free(c->tmp_dir);
    for (size_t i = 0; i < c->ncache_zones; i++) {
        free(c->cache_zones[i].name);
        free(c->cache_zones[i].dir);
    }
    free(c->cache_zones);
    free(c->acme_state_dir);
    free(c->mime_types);
    free(c->server_name);
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i].text);
    free(c->listen);
    pt_tls_ctx_free(&c->tls);
    free_strv(c->tls.certificate, c->tls.ncert);
    free_strv(c->tls.key, c->tls.ncert);
    free(c->tls.ciphers);
    free(c->tls.ciphersuites);
    free(c->tls.groups);
    free_strv(c->tls.ocsp, c->tls.nocsp);
    free(c->tls.client_ca);
    for (size_t i = 0; i < c->nvhosts; i++) {
        pt_vhost *v = &c->vhosts[i];
        free_strv(v->names, v->nnames);
        free(v->root);
        if (v->root_fd >= 0)
            close(v->root_fd);
        free_strv(v->index, v->nindex);
        free(v->access_log);
        pt_tls_ctx_release(v->tls_ctx);
        free_strv(v->tls_certificate, v->tls_ncert);
        free_strv(v->tls_key, v->tls_ncert);
        free_strv(v->tls_ocsp, v->tls_nocsp);
        free(v->tls_client_ca);
        if (v->acme) {
            free(v->acme->directory);
            free(v->acme->email);
            free(v->acme->ca_file);
            free(v->acme->cert_file);
            free(v->acme->key_file);
            free(v->acme);
        }
        for (size_t j = 0; j < v->nlocs; j++) {
            pt_location *l = &v->locs[j];
            free(l->pattern);
            pt_regex_free(l->rx);
            free(l->alias_tmpl);
            pt_rewrites_free(l->rewrites);
            free(l->root);
            free(l->alias);
            free(l->cgi_dir);
            if (l->dir_fd >= 0)
                close(l->dir_fd);
            free(l->cgi_program);
            free_strv(l->interpreters, l->ninterpreters);
            free_strv(l->interp_paths, l->ninterpreters);
            free_strv(l->env, l->nenv);
            free_strv(l->pass_env, l->npass_env);
            free_strv(l->sendfile_dirs, l->nsendfile_dirs);
        }
        free(v->locs);
    }
    free(c->vhosts);
    for (size_t i = 0; i < c->nbackends; i++) {
        pt_backend *b = &c->backends[i];
        free(b->name);
        for (size_t j = 0; j < b->nservers; j++)
            free(b->servers[j].address);
        free(b->servers);
        if (b->spawn) {
            free(b->spawn->program);
            free_strv(b->spawn->args, b->spawn->nargs);
            free_strv(b->spawn->env, b->spawn->nenv);
            free(b->spawn->socket);
            free(b->spawn);
        }
    }
    free(c->backends);
    for (size_t i = 0; i < c->nzones; i++) {
        free(c->zones[i].rate);
        free(c->zones[i].where);
    }
    free(c->zones);
    free_strv(c->cgi_routes, c->ncgi_routes);
    free_strv(c->fastcgi_routes, c->nfastcgi_routes);
    free_strv(c->warnings, c->nwarnings);
    free_phase_objs(c);
    free(c);
}

/* ------------------------------------------------ per-request lookups */

static bool ieq_n(const char *a, const char *lower_b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower_b[i])
            return false;
    return true;
}

const pt_vhost *pt_config_vhost(const pt_config *c, const char *host, size_t len)
{
    const pt_vhost *def = NULL, *best = NULL;
    size_t best_len = 0;
    if (!host)
        len = 0;
    /* RFC 9110 §7.2: Host = uri-host [ ":" port ]; an IPv6 literal keeps its brackets */
    if (len && host[0] == '[') {
        const char *rb = memchr(host, ']', len);
        len = rb ? (size_t)(rb - host) + 1 : len;
    } else if (len) {
        const char *colon = memchr(host, ':', len);
        len = colon ? (size_t)(colon - host) : len;
    }
    /* "example.org." is the same host (fully qualified) */
    if (len > 1 && host[len - 1] == '.')
        len--;
    for (size_t i = 0; i < c->nvhosts; i++) {
        const pt_vhost *v = &c->vhosts[i];
        if (v->is_default && !def)
            def = v;
        for (size_t j = 0; j < v->nnames && len; j++) {
            const char *n = v->names[j];
            size_t nlen = strlen(n);
            if (n[0] == '*') {
                /* "*.example.org" matches any name ending in ".example.org" */
                nlen--;
                if (nlen > 0 && len > nlen && nlen > best_len &&
                    ieq_n(host + len - nlen, n + 1, nlen)) {
                    best = v;
                    best_len = nlen;
                }
            } else if (nlen == len && ieq_n(host, n, len)) {
                return v;
            }
        }
    }
    return best ? best : def;
}

const pt_location *pt_config_location(const pt_vhost *v, const char *path, size_t len)
{
    const pt_location *ext = NULL, *pre = NULL;
    const char *slash = len ? memrchr(path, '/', len) : NULL;
    size_t seg = slash ? len - (size_t)(slash + 1 - path) : len;
    for (size_t i = 0; i < v->nlocs; i++) {
        const pt_location *l = &v->locs[i];
        size_t pl = l->pattern_len;
        switch (l->match) {
        case PT_MATCH_EXACT:
            if (pl == len && memcmp(path, l->pattern, len) == 0)
                return l;
            break;
        case PT_MATCH_EXT:
            /* the longest extension wins: ".tar.gz" over ".gz"; "/.txt" is a dotfile, not an
             * extension */
            if (seg > pl && memcmp(path + len - pl, l->pattern, pl) == 0 &&
                (!ext || pl > ext->pattern_len))
                ext = l;
            break;
        case PT_MATCH_REGEX:
            break; /* requests go through pt_locate (locate.c) */
        case PT_MATCH_PREFIX:
            if (pl <= len && memcmp(path, l->pattern, pl) == 0 && (!pre || pl > pre->pattern_len))
                pre = l;
            break;
        }
    }
    return ext ? ext : pre;
}
