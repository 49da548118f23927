/* conf_int.h: what the configuration loader's files (src/conf*.c) share: the
 * schema types, the load context, and the helpers every concern's reader
 * uses. Private to src/conf*.c; the rest of the program sees conf.h only. */
#ifndef PT_CONF_INT_H
#define PT_CONF_INT_H

#include <libconfig.h>
#include <stddef.h>

#include "conf.h"
#include "phases.h"
#include "rewrite.h"

/* ---------------------------------------------------------------- schema */

/* K_SERVERS: an array of strings, or a list mixing strings and groups of
 * sub (a backend's "servers"). K_REQ: a string (a rate or "off") or a group
 * of sub (limit_req). */
typedef enum key_kind {
    K_INT,
    K_BOOL,
    K_STR,
    K_STRS,
    K_SIZE,
    K_DUR,
    K_GROUP,
    K_LIST,
    K_SERVERS,
    K_REQ
} key_kind;

typedef struct key_spec {
    const char *name;
    key_kind kind;
    const struct key_spec *sub; /* members of a group, or of each element of a list */
} key_spec;

#define KB 1024ULL
#define MB (1024ULL * KB)
#define GB (1024ULL * MB)
#define SEC 1000ULL
#define DAY (86400ULL * SEC)

/* limits.cgi_timeout has no pt_limits field: it is the default of every
 * location's timeout_ms (a cgi location may set its own). */
#define CGI_TIMEOUT_DEF (60 * SEC)

typedef struct limit_spec {
    const char *name;
    key_kind kind;
    uint64_t def, min, max;
    size_t off, size;
} limit_spec;

#define LIMIT_KEY(key, field, kind, def, lo, hi) {#key, kind, NULL},
#define LIMIT_SPEC(key, field, kind, def, lo, hi)                                                  \
    {#key, kind, def, lo, hi, offsetof(pt_limits, field), sizeof(((pt_limits *)0)->field)},

/* at the top level, in a vhost and in a location */
#define LIMIT_KEYS {"limit_conn", K_INT, NULL}, {"limit_req", K_REQ, limit_req_keys},

/* the router's phases (router.c): at the top level, in a vhost and in a location */
#define PHASE_KEYS                                                                                 \
    {"access", K_STRS, NULL}, {"auth_basic", K_STR, NULL}, {"auth_basic_user_file", K_STR, NULL},  \
        {"return", K_STR, NULL}, {"return_http", K_STR, NULL}, {"try_files", K_STRS, NULL},        \
        {"error_page", K_STRS, NULL}, {"add_header", K_STRS, NULL},                                \
        {"add_header_always", K_BOOL, NULL},
/* the real client address (realip.c): at the top level and in a vhost */
#define REALIP_KEYS {"real_ip_from", K_STRS, NULL}, {"real_ip_header", K_STR, NULL},
/* compression on the fly: at the top level, in a vhost and in a location */
#define COMPRESS_KEYS                                                                              \
    {"compress", K_BOOL, NULL}, {"compress_types", K_STRS, NULL},                                  \
        {"compress_min_length", K_SIZE, NULL}, {"compress_gzip_level", K_INT, NULL},               \
        {"compress_brotli_level", K_INT, NULL},

/* the response cache (cache.c): at the top level and in a gateway location */
#define CACHE_KEYS                                                                                 \
    {"cache", K_BOOL, NULL}, {"cache_zone", K_STR, NULL}, {"cache_key", K_STR, NULL},              \
        {"cache_methods", K_STRS, NULL}, {"cache_valid", K_STRS, NULL},                            \
        {"cache_lock_timeout", K_DUR, NULL}, {"cache_use_stale", K_STRS, NULL},                    \
        {"cache_set_cookie", K_BOOL, NULL}, {"cache_authorized", K_BOOL, NULL},                    \
        {"cache_status_header", K_BOOL, NULL}, {"cache_purge", K_STRS, NULL},                      \
        {"cache_background_update", K_BOOL, NULL},

#define H_CGI (1u << PT_H_CGI)
#define H_FCGI (1u << PT_H_FASTCGI)
/* the handlers that reach a backend */
#define H_UP (H_FCGI | (1u << PT_H_SCGI) | (1u << PT_H_UWSGI))
/* HTTP reaches a backend too, but has no script or meta-variables */
#define H_PROXY (1u << PT_H_PROXY)
#define H_STATUS (1u << PT_H_STATUS)

/* ------------------------------------------------------- load context */

typedef struct load_ctx {
    config_t lc;
    const char *name; /* file (or string name) for messages; NULL: flags only */
    char *dir;        /* its directory: base of relative paths written in it */
    char *cwd;        /* base of relative paths given by flags and -o */
    char **labels;    /* "-o path" / "--flag": hooks naming overridden settings */
    size_t nlabels;
    char *err;
    size_t errlen;
    pt_config *c;
    uint64_t cgi_timeout_ms;           /* limits.cgi_timeout */
    const config_setting_t **zone_src; /* the setting of each of c->zones */
} load_ctx;

typedef struct defaults {
    char *root;
    char **index;
    size_t nindex;
    bool dir_listing, follow_symlinks, allow_dotfiles, precompressed;
    const config_setting_t *locations;
    char **interp_exts, **interp_paths; /* cgi_interpreters, split */
    size_t ninterp;
    int limit_conn, limit_req; /* zones inherited by locations, -1 none */
    pt_phases ph;              /* access, auth_basic, return inherited */
    pt_compress_cfg compress;  /* inherited by vhosts and locations */
    pt_cache_cfg cache;        /* inherited by gateway locations */
} defaults;

/* The shared helpers keep their short names in the loader's code; the
 * linker sees them pt_conf_-prefixed like every other exported symbol. */

/* conf.c: errors with file:line, allocation, paths and typed values */
#define origin pt_conf_origin
void origin(const load_ctx *x, const config_setting_t *s, char *buf, size_t n);
#define fail_at pt_conf_fail_at
int fail_at(load_ctx *x, const config_setting_t *s, const char *fmt, ...) PT_PRINTF(3, 4);
#define oom pt_conf_oom
int oom(load_ctx *x);
#define warn_at pt_conf_warn_at
int warn_at(load_ctx *x, const config_setting_t *s, const char *fmt, ...) PT_PRINTF(3, 4);
#define xstrdup pt_conf_xstrdup
char *xstrdup(load_ctx *x, const char *s);
#define xcalloc pt_conf_xcalloc
void *xcalloc(load_ctx *x, size_t n, size_t size);
#define spath pt_conf_spath
const char *spath(const config_setting_t *s, char *buf, size_t n);
#define free_strv pt_conf_free_strv
void free_strv(char **v, size_t n);
#define resolve_path pt_conf_resolve_path
char *resolve_path(load_ctx *x, const config_setting_t *s, const char *v);
#define resolve_dir pt_conf_resolve_dir
int resolve_dir(load_ctx *x, const config_setting_t *s, const char *what, const char *v,
                char **out);
#define member pt_conf_member
const config_setting_t *member(const config_setting_t *g, const char *name);
#define get_int pt_conf_get_int
int get_int(load_ctx *x, const config_setting_t *s, long long lo, long long hi, long long *out);
#define get_amount pt_conf_get_amount
int get_amount(load_ctx *x, const config_setting_t *s, key_kind kind, uint64_t lo, uint64_t hi,
               uint64_t *out);
#define opt_bool pt_conf_opt_bool
void opt_bool(const config_setting_t *g, const char *name, bool *out);
#define get_strs pt_conf_get_strs
int get_strs(load_ctx *x, const config_setting_t *s, char ***out, size_t *nout);
#define unix_addr pt_conf_unix_addr
int unix_addr(const char *path, struct sockaddr_storage *ss, socklen_t *len);
#define fcgi_addr pt_conf_fcgi_addr
int fcgi_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *why, size_t n);

/* conf_limits.c */
#define limit_keys pt_conf_limit_keys
extern const key_spec limit_keys[];
#define limit_req_keys pt_conf_limit_req_keys
extern const key_spec limit_req_keys[];
#define fcache_keys pt_conf_fcache_keys
extern const key_spec fcache_keys[];
#define get_amounts pt_conf_get_amounts
int get_amounts(load_ctx *x, const config_setting_t *g, const limit_spec *specs, size_t n,
                void *base);
#define build_limits pt_conf_build_limits
int build_limits(load_ctx *x, const config_setting_t *root);
#define get_limits pt_conf_get_limits
int get_limits(load_ctx *x, const config_setting_t *g, int *conn, int *req);
#define build_fcache pt_conf_build_fcache
int build_fcache(load_ctx *x, const config_setting_t *root);

/* conf_cache.c */
#define cache_zone_keys pt_conf_cache_zone_keys
extern const key_spec cache_zone_keys[];
#define cache_defaults pt_conf_cache_defaults
void cache_defaults(pt_cache_cfg *z);
#define get_cache pt_conf_get_cache
int get_cache(load_ctx *x, const config_setting_t *g, pt_cache_cfg *z);
#define build_cache_zone pt_conf_build_cache_zone
int build_cache_zone(load_ctx *x, const config_setting_t *root);

/* conf_compress.c */
#define compress_defaults pt_conf_compress_defaults
void compress_defaults(pt_compress_cfg *z);
#define get_compress pt_conf_get_compress
int get_compress(load_ctx *x, const config_setting_t *g, pt_compress_cfg *z);

/* conf_phases.c */
#define free_phase_objs pt_conf_free_phase_objs
void free_phase_objs(pt_config *c);
#define get_realip pt_conf_get_realip
int get_realip(load_ctx *x, const config_setting_t *g, pt_phases *ph);
#define get_proxy_from pt_conf_get_proxy_from
int get_proxy_from(load_ctx *x, const config_setting_t *root, const pt_phases *top);
#define get_phases pt_conf_get_phases
int get_phases(load_ctx *x, const config_setting_t *g, bool is_loc, pt_phases *ph);
#define get_rewrite_rules pt_conf_get_rewrite_rules
int get_rewrite_rules(load_ctx *x, const config_setting_t *s, pt_rewrites *rw);
#define get_server_rewrites pt_conf_get_server_rewrites
int get_server_rewrites(load_ctx *x, const config_setting_t *g, pt_phases *ph);

/* conf_tls.c */
#define vhost_tls_keys pt_conf_vhost_tls_keys
extern const key_spec vhost_tls_keys[];
#define vhost_acme_keys pt_conf_vhost_acme_keys
extern const key_spec vhost_acme_keys[];
#define tls_keys pt_conf_tls_keys
extern const key_spec tls_keys[];
#define get_pairs pt_conf_get_pairs
int get_pairs(load_ctx *x, const config_setting_t *g, char ***cert, char ***key, size_t *n);
#define get_tls_extra pt_conf_get_tls_extra
int get_tls_extra(load_ctx *x, const config_setting_t *g, size_t ncert, char ***ocsp, size_t *nocsp,
                  char **ca, int *verify, int *depth);
#define build_tls pt_conf_build_tls
int build_tls(load_ctx *x, const config_setting_t *root);
#define get_acme pt_conf_get_acme
int get_acme(load_ctx *x, const config_setting_t *g, pt_vhost *v);
#define build_acme pt_conf_build_acme
int build_acme(load_ctx *x, const config_setting_t *root);
#define build_tls_vhosts pt_conf_build_tls_vhosts
int build_tls_vhosts(load_ctx *x, const config_setting_t *root);

/* conf_upstream.c */
#define backend_keys pt_conf_backend_keys
extern const key_spec backend_keys[];
#define get_interps pt_conf_get_interps
int get_interps(load_ctx *x, const config_setting_t *s, char ***exts, char ***paths, size_t *n);
#define build_gateway pt_conf_build_gateway
int build_gateway(load_ctx *x, const config_setting_t *g, pt_location *l);
#define build_cgi pt_conf_build_cgi
int build_cgi(load_ctx *x, const config_setting_t *g, const defaults *d, pt_location *l);
#define build_fastcgi pt_conf_build_fastcgi
int build_fastcgi(load_ctx *x, const config_setting_t *g, pt_location *l);
#define check_handler_keys pt_conf_check_handler_keys
int check_handler_keys(load_ctx *x, const config_setting_t *g, pt_handler_kind h);
#define build_backends pt_conf_build_backends
int build_backends(load_ctx *x, const config_setting_t *root);
#define warn_unused_backends pt_conf_warn_unused_backends
int warn_unused_backends(load_ctx *x, const config_setting_t *root);

#endif
