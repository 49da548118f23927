/* conf.h: portico's configuration: the libconfig file, command-line
 * overrides (-o path=value and the short flags), validation with file:line
 * messages, and the immutable pt_config the master builds before forking. */
#ifndef PT_CONF_H
#define PT_CONF_H

#include "first.h"
#include "access.h"
#include "priv.h"
#include "alog.h"
#include <sys/socket.h>

/* PT_MATCH_REGEX: "regex" / "iregex", PCRE2 on the normalised path (regex.c) */
typedef enum pt_match_kind {
    PT_MATCH_PREFIX,
    PT_MATCH_EXACT,
    PT_MATCH_EXT,
    PT_MATCH_REGEX
} pt_match_kind;
/* fastcgi, scgi and uwsgi reach a backend (upstream_conn.c): one codec each;
 * status is the status page (status.c) */
typedef enum pt_handler_kind {
    PT_H_STATIC,
    PT_H_CGI,
    PT_H_FASTCGI,
    PT_H_SCGI,
    PT_H_UWSGI,
    PT_H_STATUS,
    PT_H_PROXY /* HTTP to an upstream server (proxy.c) */
} pt_handler_kind;

typedef struct pt_listen_cfg {
    char *text; /* as written: "127.0.0.1:8080", "[::1]:8080", "*:8080", "8080" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool any_dual; /* "*:PORT" / "PORT": [::] with v6only=0, falling back to 0.0.0.0 */
    bool tls;      /* from tls_listen / --tls: connections speak TLS (tls.c) */

    /* listed in proxy_protocol: a PROXY header comes first (realip.c) */
    bool proxy_protocol;
} pt_listen_cfg;

enum { PT_RID_OFF, PT_RID_ON, PT_RID_CLIENT };
/* tls = { ... }: the server's certificate and protocol settings (tls.c). */
typedef struct pt_tls_cfg {
    /* PEM files, absolute: certificate[i] (full chain) goes with key[i];
     * one per key type (an ECDSA and an RSA one for the same names) */
    char **certificate, **key;
    size_t ncert;
    char *ciphers;                /* TLS 1.2 cipher list (OpenSSL syntax) */
    char *ciphersuites;           /* TLS 1.3 suites */
    char *groups;                 /* key exchange groups, "X25519:P-256" */
    int min_version, max_version; /* TLS1_2_VERSION, TLS1_3_VERSION */
    /* ocsp_response[i]: DER OCSP response stapled with certificate[i]
     * (RFC 6066 §8), re-read when the file changes; "" or absent: none */
    char **ocsp;
    size_t nocsp;
    /* client certificates: CA file (PEM), PT_VERIFY_*, chain depth */
    char *client_ca;
    int verify_client, verify_depth;
    /* a new session ticket key this often; the previous one is accepted
     * too (tls.c) */
    uint64_t ticket_rotate_ms;
    /* TLS 1.3 NewSessionTicket messages after each handshake (tls.c) */
    int tickets;
    /* http2: ALPN offers "h2" ahead of http/1.1 (RFC 9113 §3.2; h2_conn.c) */
    bool http2;
    struct ssl_ctx_st *ctx; /* built by the loader when a listener uses TLS */
} pt_tls_cfg;
enum { PT_VERIFY_OFF, PT_VERIFY_OPTIONAL, PT_VERIFY_REQUIRED };

typedef enum pt_balance { PT_BAL_ROUND_ROBIN, PT_BAL_LEAST_CONN } pt_balance;

/* One FastCGI server of a backend. */
typedef struct pt_fcgi_server {
    char *address; /* as written: "unix:/run/php/php-fpm.sock", "/abs.sock", "127.0.0.1:9000",
                      "[::1]:9000" */
    struct sockaddr_storage addr; /* AF_UNIX (sockaddr_un), AF_INET or AF_INET6 */
    socklen_t addrlen;
    uint32_t weight;    /* 1..1000, default 1 */
    uint32_t max_conns; /* concurrent connections to it, all workers together; 0 = no cap */
    bool backup;        /* used only when every non-backup server is down */
} pt_fcgi_server;

/* A local FastCGI application portico starts and supervises. */
typedef struct pt_fcgi_spawn {
    char *program; /* absolute path */
    char **args;   /* argv[1..] */
    size_t nargs;
    char **env; /* "NAME=VALUE": the whole environment of the app (plus PATH if not given) */
    size_t nenv;
    uint32_t processes; /* default 1 */
    char *socket;       /* Unix socket path the master binds (given, or made under tmp_dir) */
    bool socket_auto;   /* the path was made up by portico: unlink it at exit */
} pt_fcgi_spawn;

/* A named group of FastCGI servers (config "backends", or one per
 * --fastcgi flag). */
typedef struct pt_backend {
    char *name;              /* [A-Za-z0-9_.-]+ in the file; the PATTERN for a --fastcgi one */
    pt_fcgi_server *servers; /* at least one non-backup; with spawn exactly one,
                                "unix:<spawn->socket>" */
    size_t nservers;
    pt_balance balance;
    uint64_t connect_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t read_timeout_ms; /* no record from the backend for this long: 504 */
    bool keepalive;           /* FCGI_KEEP_CONN and a per-worker idle pool */
    bool via;                 /* HTTP (proxy.c): Via: 1.1 portico both ways */
    /* HTTP (proxy.c): forwarded = false, X-Forwarded-For without
     * X-Forwarded-Proto, X-Forwarded-Host and Forwarded (zero: all four) */
    bool xff_only;
    /* CGI meta-variables an application server needs only (cgi_env.h) */
    bool minimal_variables;
    uint32_t keepalive_max; /* idle connections kept per server per worker */
    uint64_t keepalive_timeout_ms;
    uint32_t max_fails; /* failures within fail_timeout that mark a server down; 0 = never */
    uint64_t fail_timeout_ms;
    uint32_t queue; /* requests waiting per worker when every server is at max_conns */
    uint64_t queue_timeout_ms;
    bool get_values;      /* ask FCGI_GET_VALUES and cap connections at FCGI_MAX_CONNS */
    pt_fcgi_spawn *spawn; /* NULL: the servers run on their own */
    int line;
    /* HTTP: a tunnel after a 101 (tunnel.c) with nothing moving this long is closed */
    uint64_t tunnel_timeout_ms;
    /* the whole exchange, request sent to response end (0: no limit) */
    uint64_t response_timeout_ms;
} pt_backend;

/* One limit_conn or limit_req setting: one count (or bucket) per client
 * address, shared by every request the setting applies to (see
 * portico.conf(5), CLIENT LIMITS). */
typedef struct pt_limit_zone {
    bool is_req;
    uint32_t conn;        /* limit_conn: requests in progress at once */
    uint64_t interval_ns; /* limit_req: one request per interval ... */
    uint32_t burst;       /* ... and this many more at once */
    char *rate;           /* limit_req as written: "10r/s" */
    char *where;          /* where it is set: "portico.conf:12", "-o limit_conn" */
} pt_limit_zone;

/* HTTP Basic authentication (router.c, htpasswd.c) */
typedef struct pt_auth_cfg {
    char *realm;     /* NULL: auth_basic = "off" */
    char *user_file; /* absolute path of the htpasswd file */
} pt_auth_cfg;

/* "return": an answer in place of the handler (router.c) */
typedef struct pt_return_cfg {
    int status;     /* 301/302/303/307/308 with a target, 444 = close, else optional text */
    char *text;     /* the target or body, with $variables; NULL: none */
    bool http_only; /* return_http: not for requests over TLS */
} pt_return_cfg;

/* The router's phase settings of a vhost or a location, resolved at load
 * time: a location's are its own, else its vhost's (else the top level's).
 * The objects belong to pt_config (phase_objs) and may be shared. */
typedef struct pt_phases {
    const pt_access_list *access; /* NULL: no rules */
    const pt_auth_cfg *auth;      /* NULL or realm NULL: no authentication */
    const pt_return_cfg *ret;     /* NULL: none */
    bool auth_own, ret_own;       /* set in the location itself */

    /* real_ip_from and real_ip_header (realip.h), NULL: none */
    const struct pt_realip_cfg *realip;
    /* phases.h; NULL: none. A location's own, else the one above's. */
    const struct pt_try_files *try_files;
    const struct pt_error_pages *error_pages;
    const struct pt_add_headers *add_headers;
    /* "rewrite" at the top level or in a vhost (rewrite.h), run before the
     * location is chosen; NULL: none. Not a location's own (pt_location). */
    const struct pt_rewrites *srv_rewrites;
} pt_phases;
/* Compression on the fly (zresp.c, portico.conf(5) COMPRESSION): set at the
 * top level, in a vhost or a location, each inheriting from the one above. */
#define PT_COMPRESS_TYPES_CAP 512
typedef struct pt_compress_cfg {
    bool on;             /* compress = true: gzip and br */
    int gzip_level;      /* compress_gzip_level, 1-9 */
    int brotli_level;    /* compress_brotli_level, 0-11 */
    uint64_t min_length; /* compress_min_length: smaller known lengths stay as they are */
    char types[PT_COMPRESS_TYPES_CAP]; /* compress_types: each NUL-terminated, then "" */
} pt_compress_cfg;

/* The response cache of a location (cache.c, portico.conf(5) RESPONSE
 * CACHE): the top level's settings, then the location's own. Plain data. */
#define PT_CACHE_VALID_MAX 16
#define PT_CACHE_PURGE_MAX 16
/* A cache zone: where entry files live and how many there may be. The
 * top-level cache_dir is zone 0, "default"; cache_zones add named ones. */
typedef struct pt_cache_zone {
    char *name;
    char *dir;         /* absolute */
    uint64_t max_size; /* the entry files together */
    uint32_t entries;  /* index entries */
} pt_cache_zone;

typedef struct pt_cache_cfg {
    bool on;          /* cache = true (gateway locations only) */
    int zone;         /* cache_zone: index into pt_config.cache_zones, -1: the default */
    char key[256];    /* cache_key: a template of $scheme $host $uri $args... */
    unsigned methods; /* cache_methods: bit (1u << pt_method); GET and HEAD */
    struct {
        int status; /* 0: any other */
        uint64_t ms;
    } valid[PT_CACHE_VALID_MAX]; /* cache_valid: when the backend says nothing */
    size_t nvalid;
    uint64_t lock_timeout_ms; /* cache_lock_timeout: waiting for another's fill */
    bool stale_updating;      /* cache_use_stale "updating" */
    bool stale_error;         /* cache_use_stale "error" */
    bool set_cookie;          /* cache_set_cookie: store responses that set cookies */
    bool authorized;          /* cache_authorized: requests with Authorization use it */
    bool status_header;       /* cache_status_header: X-Cache-Status */
    bool background_update;   /* cache_background_update: refresh behind a stale answer */
    pt_access_rule purge[PT_CACHE_PURGE_MAX]; /* cache_purge: who may PURGE */
    size_t npurge;
} pt_cache_cfg;

/* pt_location.own_opts: the setting is written in the location itself
 * (gw.c: a location under a mapping prefix takes the prefix's policy
 * unless it has its own) */
#define PT_OWN_DIR_LISTING 1u
#define PT_OWN_FOLLOW_SYMLINKS 2u
#define PT_OWN_ALLOW_DOTFILES 4u
#define PT_OWN_PRECOMPRESSED 8u

typedef struct pt_location {
    pt_match_kind match;
    char *pattern; /* "/prefix/", "/exact", ".ext", or the regex */
    size_t pattern_len;
    /* regex locations, rewrites and stop (locate.c, rewrite.c) */
    struct pt_regex *rx;          /* PT_MATCH_REGEX: compiled once, here */
    struct pt_rewrites *rewrites; /* "rewrite": NULL none */
    bool stop;                    /* a prefix that wins over regex and extension locations */
    /* alias of a regex location: the file below alias, with captures
     * ("$1" of alias = "/srv/img/$1"); NULL for a prefix's alias */
    char *alias_tmpl;
    pt_handler_kind handler;
    /* its interface (handler.h), found by name at load */
    const struct pt_handler *h;
    char *root; /* NULL: the vhost's root */
    /* alias (prefix locations): the rest of the path after the prefix maps
     * below this directory (router.c pt_router_base); for a gateway it is
     * its script directory (cgi_dir) and DOCUMENT_ROOT */
    char *alias;
    /* the location's own value, else the vhost's (which is the top
     * level's unless the vhost sets it): resolved once at load time, so a
     * request reads a plain boolean; own says which were written here */
    bool dir_listing, follow_symlinks, allow_dotfiles;
    bool precompressed; /* serve NAME.br / NAME.gz when accepted */
    unsigned own_opts;  /* PT_OWN_* bits */
    pt_compress_cfg compress;
    /* handler "cgi" (see portico.conf(5)) */
    char *cgi_dir;       /* prefix location: scripts live here (path walk below it) */
    int dir_fd;          /* cgi_dir's O_PATH fd (pt_config_open_roots), or -1 */
    char *cgi_program;   /* prefix location: this one program serves the whole prefix */
    char **interpreters; /* ".pl=/usr/bin/perl" split: ext[i] -> interp[i] */
    char **interp_paths;
    size_t ninterpreters;
    char **env; /* extra "NAME=VALUE" for the script */
    size_t nenv;
    char **pass_env; /* names copied from portico's own environment */
    size_t npass_env;
    bool pass_authorization;
    bool buffering;        /* read the script's output ahead of a slow client */
    uint64_t timeout_ms;   /* no output for this long: the script is killed */
    uint64_t rlimit_cpu;   /* seconds, 0 = unset */
    uint64_t rlimit_as;    /* bytes, 0 = unset */
    uint64_t rlimit_nproc; /* 0 = unset */
    /* handler "fastcgi" (dir, program, env, pass_authorization and buffering
     * above apply too; program = a fixed SCRIPT_FILENAME) */
    const pt_backend *backend; /* into pt_config.backends */
    /* The script must exist as a regular file (404 otherwise): extension
     * locations and prefix ones with cgi_dir only. (An exact fastcgi
     * location is an application location for that one path.) */
    bool require_file;
    /* client limits: indexes into pt_config.zones, -1 none */
    int limit_conn, limit_req;
    /* handler "status": clients beyond loopback may read it */
    bool status_allow_remote;
    pt_phases ph;
    /* pass_authorization written in the file: it holds also when portico
     * authenticated the request itself */
    bool pass_authorization_set;
    /* X-Sendfile / X-Accel-Redirect from the backend (xsend.c): honoured
     * when x_sendfile; a file only beneath one of sendfile_dirs (realpath,
     * no trailing slash) */
    bool x_sendfile;
    char **sendfile_dirs;
    size_t nsendfile_dirs;
    /* reachable only by internal redirects (404 to a client), as nginx's
     * "internal" */
    bool internal;
    pt_cache_cfg cache;
    int line;
    /* handler "proxy": a request asking to Upgrade (WebSocket) is passed
     * on with its Upgrade field and tunnelled after a 101 (tunnel.c) */
    bool upgrade;
    /* handler "proxy", "fastcgi", "scgi", "uwsgi": the body is collected
     * before the request is sent (false: it goes to the upstream as it
     * arrives; for the CGI-style ones only with a Content-Length) */
    bool request_buffering;
    bool interim_responses; /* proxy: 1xx from the upstream go on to HTTP/1.1 clients */
} pt_location;

/* acme = { ... } of a vhost (acme.c): its names get a certificate from
 * this ACME server (RFC 8555), kept under acme_state_dir. */
typedef struct pt_acme_cfg {
    char *directory; /* https URL of the directory resource */
    char *email;     /* account contact, NULL: none */
    char *ca_file;   /* trust for the ACME server's TLS; NULL: the system's */
    uint64_t renew_before_ms;
    uint64_t order_timeout_ms;  /* one attempt (order to certificate) at most */
    bool tls_alpn;              /* challenge = "tls-alpn-01" (RFC 8737), else http-01 */
    char *cert_file, *key_file; /* <acme_state_dir>/certs/<first name>/ */
} pt_acme_cfg;

typedef struct pt_vhost {
    char **names; /* lower-case; "*.example.org" wildcard suffix; "*" or none = default */
    size_t nnames;
    bool is_default;
    char *root;  /* absolute, no trailing slash (except "/") */
    int root_fd; /* O_PATH|O_DIRECTORY, opened by pt_config_open_roots() */
    char **index;
    size_t nindex;
    bool dir_listing, follow_symlinks, allow_dotfiles, precompressed;
    pt_compress_cfg compress;
    char *access_log; /* NULL: the global one; "off": none */
    /* tls = { certificate; key; }: sent to clients naming this vhost by
     * SNI (RFC 6066 §3); the context is built like the top-level one */
    char **tls_certificate, **tls_key;
    size_t tls_ncert;
    /* tls = { ocsp_response; client_ca; verify_client; verify_depth; }:
     * unset ones are the top level's (ocsp goes with the certificates) */
    char **tls_ocsp;
    size_t tls_nocsp;
    char *tls_client_ca;
    int tls_verify_client, tls_verify_depth; /* -1: the top level's */
    struct ssl_ctx_st *tls_ctx;
    pt_acme_cfg *acme; /* NULL: certificates are the operator's business */
    pt_location *locs;
    size_t nlocs;
    pt_phases ph;
    int line;
} pt_vhost;

typedef struct pt_limits {
    uint32_t max_connections; /* per worker */
    uint32_t header_buffer;   /* request line + headers, bytes */
    uint32_t max_headers;     /* header field count */
    uint64_t max_body;
    uint64_t body_memory;   /* in-memory body threshold before spilling */
    uint32_t max_pipelined; /* bytes read ahead while a response is pending */
    uint32_t keepalive_requests;
    uint32_t tcp_notsent_lowat; /* unsent bytes per connection; 0: system default */
    /* TCP_DEFER_ACCEPT on the listeners, at most header_timeout; 0: off */
    uint64_t defer_accept_ms;
    uint32_t max_ranges;
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t body_min_rate; /* bytes/s a body averages after body_timeout; 0: off */
    uint64_t keepalive_timeout_ms;
    uint64_t write_timeout_ms;
    uint64_t shutdown_timeout_ms;
    /* a worker whose loop is stuck this long is replaced; 0: off */
    uint64_t worker_stall_timeout_ms;
    /* gateways (CGI and FastCGI) */
    uint32_t cgi_max_procs; /* concurrent CGI processes per worker */
    uint32_t cgi_queue;     /* requests waiting for a CGI slot per worker (503 beyond) */
    uint64_t cgi_queue_timeout_ms;
    uint64_t cgi_kill_grace_ms; /* SIGTERM, then SIGKILL after this */
    uint64_t gw_header_max;     /* response header block from a script/backend */
    uint64_t gw_buffer_memory;  /* response bytes held in memory per request before spilling */
    uint64_t gw_buffer_max;     /* response bytes buffered per request at most */
    uint64_t compress_memory;   /* all on-the-fly compressors of a worker together */
    uint32_t limit_entries;     /* client-limit table entries, all workers together */
} pt_limits;

/* The open-file cache of each worker (fcache.h). */
typedef struct pt_fcache_cfg {
    uint32_t max;         /* entries per worker; 0 = no cache */
    uint64_t valid_ms;    /* how long an open's result is used; 0 = no cache */
    uint64_t inactive_ms; /* entries unused this long are closed */
    uint64_t content_max; /* files up to this size are kept in memory */
    /* the same for responses that copy a file's bytes anyway (TLS without
     * kernel TLS, HTTP/2): sendfile is no use to them */
    uint64_t content_max_tls;
    uint64_t content_memory; /* all content kept, per worker */
    bool errors;             /* remember failed opens (404, 403) too */
} pt_fcache_cfg;

typedef struct pt_config {
    char *file;  /* NULL when flags only */
    int workers; /* resolved: >= 1 */
    char *user, *group;
    pt_creds creds; /* resolved user/group; creds.drop: the children change to them */
    char *cgi_user, *cgi_group;
    pt_creds cgi_creds; /* resolved cgi_user/cgi_group; drop: programs change to them */
    bool no_new_privs;  /* programs start with PR_SET_NO_NEW_PRIVS */
    char *pid_file;
    char *error_log;  /* "stderr" or a path */
    int log_level;    /* PT_LOG_* */
    char *access_log; /* path, "stderr"/"stdout", or NULL for off */
    /* what a line says: "combined", "json" or a template (alog.h) */
    pt_alog_fmt access_log_format;
    /* request ids for programs: PT_RID_OFF (logs only), _ON, _CLIENT */
    int request_id;
    char *tmp_dir;
    char *mime_types;
    char *server_name;  /* SERVER_SOFTWARE-ish banner token; "portico" */
    bool server_tokens; /* include the version in Server: */
    /* HTTP/2 (h2_conn.c): prior knowledge on plain listeners (RFC 9113
     * §3.3), SETTINGS_MAX_CONCURRENT_STREAMS */
    bool http2_cleartext;
    uint32_t http2_max_streams;
    pt_listen_cfg *listen;
    size_t nlisten;
    pt_tls_cfg tls;
    char *acme_state_dir; /* absolute; certificates and the ACME account key */
    bool acme_any;        /* a vhost has acme: workers answer http-01 challenges */
    pt_limits limits;
    /* proxy_protocol_from (or the top-level real_ip_from): peers allowed
     * to send a PROXY header; NULL: any peer */
    const pt_access_list *proxy_from;
    /* regex_match_limit, regex_depth_limit: PCRE2's, for every match */
    uint32_t regex_match_limit, regex_depth_limit;
    pt_fcache_cfg open_file_cache;
    pt_vhost *vhosts; /* at least one; exactly one is_default */
    size_t nvhosts;
    pt_backend *backends;
    size_t nbackends;
    /* the response cache's zones (cache.c): cache_dir (with cache_max_size
     * and cache_entries) is "default", cache_zones the named ones */
    pt_cache_zone *cache_zones;
    size_t ncache_zones;
    pt_limit_zone *zones; /* limit_conn / limit_req settings in use */
    size_t nzones;
    /* The flags as given: --cgi and --fastcgi ones become top-level
     * locations (--fastcgi also a backend named after its pattern). */
    char **cgi_routes;
    size_t ncgi_routes;
    char **fastcgi_routes;
    size_t nfastcgi_routes;
    /* access lists, auth and return settings (pt_phases point here) */
    struct pt_phase_obj *phase_objs;
    size_t nphase_objs;
    /* Problems that do not stop the server, as whole lines
     * ("file:line: warning: cgi dir '/usr/lib/cgi-bin' does not exist"):
     * print them for -t, log them at start-up. */
    char **warnings;
    size_t nwarnings;
} pt_config;

/* Command-line input to the loader. */
typedef struct pt_cli {
    const char *conf_file; /* -c */
    int workers;           /* -w, -1 unset */
    const char **listen;   /* -l (repeatable) */
    size_t nlisten;
    const char **tls_listen; /* --tls (repeatable) */
    size_t ntls_listen;
    const char **tls_cert, **tls_key; /* --cert, --key (repeatable, in pairs) */
    size_t ntls_cert, ntls_key;
    const char *port; /* -p */
    const char *root; /* -r */
    const char **cgi; /* --cgi PREFIX=PATH */
    size_t ncgi;
    const char **fastcgi; /* --fastcgi PATTERN=ADDR[,ADDR...] */
    size_t nfastcgi;
    const char **scgi; /* --scgi PATTERN=ADDR[,ADDR...] */
    size_t nscgi;
    const char **uwsgi; /* --uwsgi PATTERN=ADDR[,ADDR...] */
    size_t nuwsgi;
    const char **proxy; /* --proxy PREFIX=ADDR[,ADDR...] */
    size_t nproxy;
    const char **auth; /* --auth PREFIX=HTPASSWD */
    size_t nauth;
    const char *max_body;   /* --max-body */
    const char *error_log;  /* --error-log */
    const char *access_log; /* --access-log */
    const char *status;     /* --status PATH */
    bool compress;          /* --compress */
    const char *cache;      /* --cache DIR */
    const char **overrides; /* -o path=value */
    size_t noverrides;
} pt_cli;

/* Build the configuration: read the file (if any), apply the flags, then
 * the -o overrides, then validate everything. On error returns NULL and
 * writes "file:line: message" (or "-o path: message" / "--flag: message")
 * into err. */
pt_config *pt_config_load(const pt_cli *cli, char *err, size_t errlen);
/* Same, from a string (unit tests and the fuzzer); name is used in messages,
 * and relative paths / @include in text resolve against name's directory
 * (the CWD when name has no '/'). name NULL: "(string)"; cli NULL: no flags. */
pt_config *pt_config_load_string(const char *text, const char *name, const pt_cli *cli, char *err,
                                 size_t errlen);
/* Open every vhost root as an O_PATH directory fd. 0 or -1 with err. */
int pt_config_open_roots(pt_config *c, char *err, size_t errlen);
void pt_config_free(pt_config *c);

/* The vhost for a Host value (port, trailing dot stripped, case-insensitive):
 * exact name, then the longest wildcard suffix, then the default. */
const pt_vhost *pt_config_vhost(const pt_config *c, const char *host, size_t len);
/* The location for a normalised path without regex locations, stop and
 * PATH_INFO segments (unit tests, fuzzers): exact match, then extension (of
 * the last path segment), then the longest prefix; NULL when none matches.
 * Requests use pt_locate (locate.h). */
const pt_location *pt_config_location(const pt_vhost *v, const char *path, size_t len);

#endif
