/* cgi_env.h: RFC 3875 §4.1 meta-variables plus the de-facto ones, built in
 * one place for both gateways: CGI turns them into an envp, FastCGI into
 * FCGI_PARAMS, through the same callback. */
#ifndef PT_CGI_ENV_H
#define PT_CGI_ENV_H

#include "first.h"
#include "h1_head.h"

typedef void (*pt_env_cb)(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen);

/* Everything the builder needs, already resolved by the router (no
 * pt_conn here, so the builder is testable and fuzzable on its own). */
typedef struct pt_cgi_req {
    pt_str method;      /* REQUEST_METHOD */
    pt_str request_uri; /* REQUEST_URI: the raw target as sent (absolute-form: its path+query) */
    pt_str query;       /* QUERY_STRING: raw, "" when absent (always set) */
    pt_str script_name; /* SCRIPT_NAME: URL path of the script, decoded */
    pt_str path_info;   /* PATH_INFO: decoded; len 0 = absent (then no PATH_INFO and no
                           PATH_TRANSLATED) */
    pt_str script_filename;     /* SCRIPT_FILENAME: absolute file name of the script */
    pt_str document_root;       /* DOCUMENT_ROOT; PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO */
    pt_str server_name;         /* SERVER_NAME: Host without port (or the local address) */
    pt_str server_port;         /* SERVER_PORT: local port, decimal */
    pt_str server_addr;         /* SERVER_ADDR */
    pt_str remote_addr;         /* REMOTE_ADDR */
    pt_str remote_port;         /* REMOTE_PORT */
    int http_major, http_minor; /* SERVER_PROTOCOL "HTTP/1.1" */
    bool https;                 /* HTTPS=on and REQUEST_SCHEME=https; else REQUEST_SCHEME=http */
    /* with https, mod_ssl's names (NULL: not emitted): SSL_PROTOCOL,
     * SSL_CIPHER, SSL_TLS_SNI; SSL_SESSION_RESUMED "Resumed" / "Initial" */
    const char *ssl_protocol, *ssl_cipher, *ssl_sni;
    bool ssl_resumed;
    /* client certificates (NULL: not emitted): SSL_CLIENT_VERIFY,
     * SSL_CLIENT_S_DN, SSL_CLIENT_I_DN, SSL_CLIENT_SERIAL, SSL_CLIENT_CERT */
    const char *ssl_client_verify, *ssl_client_s_dn, *ssl_client_i_dn, *ssl_client_serial,
        *ssl_client_cert;
    int64_t content_length;   /* CONTENT_LENGTH (decimal) when >= 0: the collected body's size */
    const pt_header *headers; /* request header fields -> HTTP_* */
    size_t nheaders;
    bool pass_authorization; /* HTTP_AUTHORIZATION passed (RFC 3875 §4.1.18 lets servers withhold
                                credentials; FastCGI/PHP needs them) */
    pt_str auth_type; /* AUTH_TYPE / REMOTE_USER when the server authenticated; len 0 = unset */
    pt_str remote_user;
    int redirect_status;         /* REDIRECT_STATUS (php-cgi insists on it); 0 = unset */
    const char *server_software; /* SERVER_SOFTWARE, e.g. "portico/0.1.0" */
    char *const *env;            /* extra "NAME=VALUE" entries from the location, emitted last */
    size_t nenv;
    char *const *pass_env; /* names copied from portico's own environment when set */
    size_t npass_env;
    const char *path; /* PATH for the script, e.g. "/usr/local/bin:/usr/bin:/bin" */
    /* REQUEST_ID and HTTP_X_REQUEST_ID (replacing the client's); len 0: unset */
    pt_str request_id;
    bool upgrade; /* HTTP proxy: the location lets Upgrade requests through (tunnel.c) */
    /* an application server's set (minimal_variables): no GATEWAY_INTERFACE,
     * SERVER_SOFTWARE, SERVER_ADDR, SCRIPT_FILENAME, PATH_TRANSLATED,
     * REDIRECT_STATUS or PATH */
    bool minimal;
    /* HTTP proxy, request_buffering = false: the body follows as it comes,
     * content_length is the client's (-1: chunked) */
    bool body_stream;
} pt_cgi_req;

/* Emit every variable once, through cb. Rules:
 * - GATEWAY_INTERFACE=CGI/1.1, SERVER_SOFTWARE, SERVER_NAME, SERVER_PORT,
 *   SERVER_ADDR, SERVER_PROTOCOL, REQUEST_METHOD, REQUEST_URI, QUERY_STRING
 *   (always, "" when absent), SCRIPT_NAME, SCRIPT_FILENAME, DOCUMENT_ROOT,
 *   REMOTE_ADDR, REMOTE_PORT, REQUEST_SCHEME, HTTPS (only when https, then
 *   SSL_PROTOCOL, SSL_CIPHER, SSL_TLS_SNI, SSL_SESSION_RESUMED when given),
 *   PATH_INFO + PATH_TRANSLATED (only with a PATH_INFO), CONTENT_LENGTH (only
 *   when >= 0), CONTENT_TYPE (only when the request has one), AUTH_TYPE and
 *   REMOTE_USER (only when set), REDIRECT_STATUS (when > 0), PATH.
 * - minimal: none of GATEWAY_INTERFACE, SERVER_SOFTWARE, SERVER_ADDR,
 *   SCRIPT_FILENAME, PATH_TRANSLATED, REDIRECT_STATUS, PATH.
 * - HTTP_* for each request header: name upper-cased, '-' -> '_'. Skipped:
 *   Content-Length and Content-Type (already CONTENT_*), Proxy (httpoxy,
 *   CVE-2016-5385), hop-by-hop fields (Connection, Keep-Alive, TE, Trailer,
 *   Transfer-Encoding, Upgrade, Proxy-Connection, Proxy-Authorization, and
 *   fields named in Connection), Authorization unless pass_authorization,
 *   any name containing '_' or a byte outside [A-Za-z0-9-] (two fields that
 *   would map to one variable are a spoofing hazard: nginx's
 *   underscores_in_headers off). Repeated fields are joined with ", "
 *   (Cookie with "; ") into one variable (RFC 3875 §4.1.18).
 * - then pass_env entries present in environ, then the location's env. */
void pt_cgi_env(const pt_cgi_req *r, pt_env_cb cb, void *ctx);

/* An envp for execve built with pt_cgi_env in ONE allocation (pointers and
 * strings in the same block). Later entries with the same name replace
 * earlier ones (so a location's env can override PATH). Returns NULL on
 * ENOMEM; free() the result. */
char **pt_cgi_envp(const pt_cgi_req *r);

/* Added by the implementation (no existing signature changed):
 *
 * Emission order of pt_cgi_env, fixed: GATEWAY_INTERFACE, SERVER_SOFTWARE,
 * SERVER_NAME, SERVER_PORT, SERVER_ADDR, SERVER_PROTOCOL, REQUEST_METHOD,
 * REQUEST_URI, QUERY_STRING, SCRIPT_NAME, SCRIPT_FILENAME, DOCUMENT_ROOT,
 * REMOTE_ADDR, REMOTE_PORT, REQUEST_SCHEME, [HTTPS, [SSL_*]], [PATH_INFO,
 * PATH_TRANSLATED], [CONTENT_LENGTH], [CONTENT_TYPE], [AUTH_TYPE],
 * [REMOTE_USER], [REDIRECT_STATUS], PATH; then HTTP_* in request order (a
 * repeated field at the position of its first occurrence); then pass_env;
 * then env. Callback arguments: name and value are never NULL, not
 * NUL-terminated, and valid only during the call. A pt_str with p == NULL
 * is emitted as "". server_software NULL -> PACKAGE_NAME "/" PACKAGE_VERSION;
 * path NULL -> PT_CGI_DEFAULT_PATH. An empty Content-Type gives no
 * CONTENT_TYPE (RFC 3875 §4.1.3: unset lets the script decide). Empty values
 * are left out of a join ("a" + "" -> "a"). env entries without '=' or with
 * an empty name are skipped. PATH_TRANSLATED drops one '/' at the seam when
 * DOCUMENT_ROOT ends with '/' ("/" + "/x" -> "/x").
 *
 * pt_cgi_env needs scratch space only to join repeated fields or build a
 * long PATH_TRANSLATED; beyond 2 KiB it mallocs once, before the first
 * callback. pt_cgi_env_try reports that failure: returns 0, or -1 with
 * errno=ENOMEM and no callback made. pt_cgi_env then emits nothing. */
int pt_cgi_env_try(const pt_cgi_req *r, pt_env_cb cb, void *ctx);

#define PT_CGI_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

#endif
