#include "first.h"
#include "cgi_env.h"
#include "tap.h"

/* test_cgi_env.c: the RFC 3875 §4.1 meta-variables, exact values and order:
 * standard variables per request shape, the HTTP_* mapping and its
 * exclusions (httpoxy, hop-by-hop, credentials, spoofable names), joining of
 * repeated fields, pass_env/env, and the one-block envp with overrides. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv {
    char *name;
    char *value;
    size_t vlen;
} kv;

#define MAXVARS 256

/* what the callback produced, in order */
typedef struct envmap {
    kv e[MAXVARS];
    size_t n;
    int nulls;    /* callbacks with a NULL name or value */
    int overflow; /* more than MAXVARS callbacks */
} envmap;

static void on_var(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    envmap *m = ctx;

    if (!name || !value) {
        m->nulls++;
        return;
    }
    if (m->n == MAXVARS) {
        m->overflow++;
        return;
    }
    kv *e = &m->e[m->n++];
    e->name = malloc(nlen + 1);
    e->value = malloc(vlen + 1);
    memcpy(e->name, name, nlen);
    e->name[nlen] = '\0';
    memcpy(e->value, value, vlen);
    e->value[vlen] = '\0';
    e->vlen = vlen;
}

static void collect(const pt_cgi_req *r, envmap *m)
{
    memset(m, 0, sizeof(*m));
    pt_cgi_env(r, on_var, m);
}

static void map_free(envmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].name);
        free(m->e[i].value);
    }
    m->n = 0;
}

static int find(const envmap *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->e[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static int count(const envmap *m, const char *name)
{
    int c = 0;

    for (size_t i = 0; i < m->n; i++)
        c += strcmp(m->e[i].name, name) == 0;
    return c;
}

static int count_prefix(const envmap *m, const char *prefix)
{
    int c = 0;

    for (size_t i = 0; i < m->n; i++)
        c += strncmp(m->e[i].name, prefix, strlen(prefix)) == 0;
    return c;
}

static bool val_is(const envmap *m, const char *name, const char *expect)
{
    int i = find(m, name);
    bool good = i >= 0 && count(m, name) == 1 && m->e[i].vlen == strlen(expect) &&
                memcmp(m->e[i].value, expect, m->e[i].vlen) == 0;

    if (!good)
        printf("#   %s: got %s%s%s\n", name, i >= 0 ? "\"" : "",
               i >= 0 ? m->e[i].value : "(absent)", i >= 0 ? "\"" : "");
    return good;
}

/* every name emitted once, and each a valid shell-style name */
static bool names_sane(const envmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const char *s = m->e[i].name;
        if (!*s || count(m, s) != 1)
            return false;
        for (; *s; s++) {
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
                return false;
        }
    }
    return true;
}

#define IS(m, name, expect, ctx) ok(val_is(m, name, expect), "%s: %s=\"%s\"", ctx, name, expect)
#define ABSENT(m, name, ctx) ok(find(m, name) < 0, "%s: no %s", ctx, name)
#define BEFORE(m, a, b, ctx)                                                                       \
    ok(find(m, a) >= 0 && find(m, b) >= 0 && find(m, a) < find(m, b), "%s: %s before %s", ctx, a, b)

#define H(n, v)                                                                                    \
    {                                                                                              \
        .name = n, .value = v, .name_len = sizeof(n) - 1, .value_len = sizeof(v) - 1               \
    }

static pt_str S(const char *s)
{
    return (pt_str){s, s ? strlen(s) : 0};
}

static pt_cgi_req base(const pt_header *h, size_t nh)
{
    pt_cgi_req r = {
        .method = S("GET"),
        .request_uri = S("/cgi-bin/env.cgi?a=1&b=%20"),
        .query = S("a=1&b=%20"),
        .script_name = S("/cgi-bin/env.cgi"),
        .script_filename = S("/srv/www/cgi-bin/env.cgi"),
        .document_root = S("/srv/www"),
        .server_name = S("example.com"),
        .server_port = S("8080"),
        .server_addr = S("127.0.0.1"),
        .remote_addr = S("127.0.0.2"),
        .remote_port = S("54321"),
        .http_major = 1,
        .http_minor = 1,
        .content_length = -1,
        .headers = h,
        .nheaders = nh,
        .server_software = "portico/0.1.0",
        .path = "/usr/bin:/bin",
    };
    return r;
}

static const pt_header get_hdrs[] = {
    H("Host", "example.com:8080"),
    H("User-Agent", "curl/8.0.1"),
    H("Accept", "*/*"),
};

static void test_plain_get(void)
{
    const char *c = "GET with query";
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    collect(&r, &m);
    IS(&m, "GATEWAY_INTERFACE", "CGI/1.1", c);
    IS(&m, "SERVER_SOFTWARE", "portico/0.1.0", c);
    IS(&m, "SERVER_NAME", "example.com", c);
    IS(&m, "SERVER_PORT", "8080", c);
    IS(&m, "SERVER_ADDR", "127.0.0.1", c);
    IS(&m, "SERVER_PROTOCOL", "HTTP/1.1", c);
    IS(&m, "REQUEST_METHOD", "GET", c);
    IS(&m, "REQUEST_URI", "/cgi-bin/env.cgi?a=1&b=%20", c);
    IS(&m, "QUERY_STRING", "a=1&b=%20", c);
    IS(&m, "SCRIPT_NAME", "/cgi-bin/env.cgi", c);
    IS(&m, "SCRIPT_FILENAME", "/srv/www/cgi-bin/env.cgi", c);
    IS(&m, "DOCUMENT_ROOT", "/srv/www", c);
    IS(&m, "REMOTE_ADDR", "127.0.0.2", c);
    IS(&m, "REMOTE_PORT", "54321", c);
    IS(&m, "REQUEST_SCHEME", "http", c);
    IS(&m, "PATH", "/usr/bin:/bin", c);
    IS(&m, "HTTP_HOST", "example.com:8080", c);
    IS(&m, "HTTP_USER_AGENT", "curl/8.0.1", c);
    IS(&m, "HTTP_ACCEPT", "*/*", c);
    ABSENT(&m, "HTTPS", c);
    ABSENT(&m, "PATH_INFO", c);
    ABSENT(&m, "PATH_TRANSLATED", c);
    ABSENT(&m, "CONTENT_LENGTH", c);
    ABSENT(&m, "CONTENT_TYPE", c);
    ABSENT(&m, "AUTH_TYPE", c);
    ABSENT(&m, "REMOTE_USER", c);
    ABSENT(&m, "REDIRECT_STATUS", c);
    ok(m.n == 19, "%s: exactly 16 standard + 3 HTTP_* variables (got %zu)", c, m.n);
    ok(m.nulls == 0 && m.overflow == 0, "%s: callback never gets NULL name or value", c);
    ok(names_sane(&m), "%s: every name emitted once and [A-Z0-9_] only", c);

    /* the documented fixed order */
    static const char *const order[] = {
        "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "SERVER_NAME",     "SERVER_PORT",
        "SERVER_ADDR",       "SERVER_PROTOCOL", "REQUEST_METHOD",  "REQUEST_URI",
        "QUERY_STRING",      "SCRIPT_NAME",     "SCRIPT_FILENAME", "DOCUMENT_ROOT",
        "REMOTE_ADDR",       "REMOTE_PORT",     "REQUEST_SCHEME",  "PATH",
        "HTTP_HOST",         "HTTP_USER_AGENT", "HTTP_ACCEPT",
    };
    bool in_order = m.n == PT_ARRAY_LEN(order);
    for (size_t i = 0; in_order && i < PT_ARRAY_LEN(order); i++)
        in_order = strcmp(m.e[i].name, order[i]) == 0;
    ok(in_order, "%s: standard variables in documented order, then HTTP_* in request order", c);
    map_free(&m);
}

/* minimal_variables: an application server gets the PEP 3333 set and
 * what nginx's uwsgi_params sends, none of the CGI process's own */
static void test_minimal_set_leaves_out_the_cgi_process_variables(void)
{
    const char *c = "minimal";
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    r.minimal = true;
    r.redirect_status = 200;
    r.path_info = S("/x/y");
    collect(&r, &m);
    static const char *const gone[] = {
        "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "SERVER_ADDR", "SCRIPT_FILENAME",
        "PATH_TRANSLATED",   "REDIRECT_STATUS", "PATH"};
    for (size_t i = 0; i < PT_ARRAY_LEN(gone); i++)
        ABSENT(&m, gone[i], c);
    IS(&m, "SERVER_NAME", "example.com", c);
    IS(&m, "SERVER_PORT", "8080", c);
    IS(&m, "SERVER_PROTOCOL", "HTTP/1.1", c);
    IS(&m, "REQUEST_METHOD", "GET", c);
    IS(&m, "SCRIPT_NAME", "/cgi-bin/env.cgi", c);
    IS(&m, "PATH_INFO", "/x/y", c);
    IS(&m, "QUERY_STRING", "a=1&b=%20", c);
    IS(&m, "REMOTE_ADDR", "127.0.0.2", c);
    IS(&m, "HTTP_HOST", "example.com:8080", c);
    ok(m.n == 15, "%s: 12 standard + 3 HTTP_* variables (got %zu)", c, m.n);
    ok(names_sane(&m), "%s: every name emitted once and [A-Z0-9_] only", c);
    map_free(&m);
}

static void test_query_shapes(void)
{
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    r.request_uri = S("/cgi-bin/env.cgi?");
    r.query = S("");
    collect(&r, &m);
    IS(&m, "QUERY_STRING", "", "empty query");
    IS(&m, "REQUEST_URI", "/cgi-bin/env.cgi?", "empty query");
    map_free(&m);

    r.request_uri = S("/cgi-bin/env.cgi");
    r.query = (pt_str){NULL, 0};
    collect(&r, &m);
    IS(&m, "QUERY_STRING", "", "no query (NULL slice)");
    ok(m.nulls == 0, "no query: QUERY_STRING value pointer is not NULL");
    IS(&m, "REQUEST_URI", "/cgi-bin/env.cgi", "no query");
    map_free(&m);
}

static void test_path_info(void)
{
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    /* the caller already decoded; "%2F" here is literal text */
    r.path_info = S("/a b/%2F");
    r.request_uri = S("/cgi-bin/env.cgi/a%20b/%252F");
    collect(&r, &m);
    IS(&m, "PATH_INFO", "/a b/%2F", "PATH_INFO as given");
    IS(&m, "PATH_TRANSLATED", "/srv/www/a b/%2F", "PATH_INFO as given");
    IS(&m, "SCRIPT_NAME", "/cgi-bin/env.cgi", "PATH_INFO as given");
    IS(&m, "REQUEST_URI", "/cgi-bin/env.cgi/a%20b/%252F", "PATH_INFO as given");
    ok(find(&m, "PATH_TRANSLATED") == find(&m, "PATH_INFO") + 1,
       "PATH_TRANSLATED follows PATH_INFO");
    BEFORE(&m, "REQUEST_SCHEME", "PATH_INFO", "PATH_INFO");
    map_free(&m);

    r.document_root = S("/srv/www/");
    collect(&r, &m);
    IS(&m, "PATH_TRANSLATED", "/srv/www/a b/%2F", "root with trailing slash: one '/' at the seam");
    map_free(&m);

    r.document_root = S("/");
    collect(&r, &m);
    IS(&m, "PATH_TRANSLATED", "/a b/%2F", "root \"/\": no doubled slash");
    map_free(&m);

    r.document_root = S("");
    collect(&r, &m);
    IS(&m, "PATH_TRANSLATED", "/a b/%2F", "empty DOCUMENT_ROOT");
    map_free(&m);

    r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    r.path_info = (pt_str){NULL, 0};
    collect(&r, &m);
    ABSENT(&m, "PATH_INFO", "PATH_INFO absent");
    ABSENT(&m, "PATH_TRANSLATED", "PATH_INFO absent");
    map_free(&m);

    r.path_info = S("");
    collect(&r, &m);
    ABSENT(&m, "PATH_INFO", "PATH_INFO of length 0");
    ABSENT(&m, "PATH_TRANSLATED", "PATH_INFO of length 0");
    map_free(&m);

    /* longer than the builder's stack scratch: the malloc path */
    static char longinfo[5001];
    longinfo[0] = '/';
    memset(longinfo + 1, 'p', sizeof(longinfo) - 2);
    r.path_info = S(longinfo);
    collect(&r, &m);
    int i = find(&m, "PATH_TRANSLATED");
    ok(i >= 0 && m.e[i].vlen == 8 + 5000 && memcmp(m.e[i].value, "/srv/www/ppp", 12) == 0 &&
           m.e[i].value[m.e[i].vlen - 1] == 'p',
       "5000-byte PATH_INFO: PATH_TRANSLATED complete");
    map_free(&m);
}

static void test_post(void)
{
    static const pt_header post_hdrs[] = {
        H("Host", "example.com"),
        H("Content-Type", "application/x-www-form-urlencoded"),
        H("Content-Length", "11"),
    };
    const char *c = "POST";
    pt_cgi_req r = base(post_hdrs, PT_ARRAY_LEN(post_hdrs));
    envmap m;

    r.method = S("POST");
    r.content_length = 11;
    collect(&r, &m);
    IS(&m, "REQUEST_METHOD", "POST", c);
    IS(&m, "CONTENT_LENGTH", "11", c);
    IS(&m, "CONTENT_TYPE", "application/x-www-form-urlencoded", c);
    ABSENT(&m, "HTTP_CONTENT_TYPE", c);
    ABSENT(&m, "HTTP_CONTENT_LENGTH", c);
    IS(&m, "HTTP_HOST", "example.com", c);
    BEFORE(&m, "CONTENT_LENGTH", "CONTENT_TYPE", c);
    BEFORE(&m, "CONTENT_TYPE", "PATH", c);
    map_free(&m);

    r.content_length = 0;
    collect(&r, &m);
    IS(&m, "CONTENT_LENGTH", "0", "empty body");
    map_free(&m);

    /* the body was collected (chunked or not): CONTENT_LENGTH is its size */
    r.content_length = 1099511627776LL;
    collect(&r, &m);
    IS(&m, "CONTENT_LENGTH", "1099511627776", "1 TiB body");
    map_free(&m);

    static const pt_header odd_ct[] = {
        H("content-type", "text/plain"),
        H("CONTENT-TYPE", "text/html"),
    };
    r = base(odd_ct, PT_ARRAY_LEN(odd_ct));
    collect(&r, &m);
    IS(&m, "CONTENT_TYPE", "text/plain", "lower-case content-type, first one wins");
    ABSENT(&m, "HTTP_CONTENT_TYPE", "lower-case content-type");
    ABSENT(&m, "CONTENT_LENGTH", "content_length -1");
    map_free(&m);

    static const pt_header empty_ct[] = {H("Content-Type", "")};
    r = base(empty_ct, PT_ARRAY_LEN(empty_ct));
    collect(&r, &m);
    ABSENT(&m, "CONTENT_TYPE", "empty Content-Type (RFC 3875 §4.1.3 unset)");
    map_free(&m);
}

static void test_https_version_redirect_auth(void)
{
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    r.https = true;
    collect(&r, &m);
    IS(&m, "HTTPS", "on", "https");
    IS(&m, "REQUEST_SCHEME", "https", "https");
    BEFORE(&m, "REQUEST_SCHEME", "HTTPS", "https");
    map_free(&m);

    r.https = false;
    collect(&r, &m);
    ABSENT(&m, "HTTPS", "plain http");
    IS(&m, "REQUEST_SCHEME", "http", "plain http");
    map_free(&m);

    r = base(NULL, 0);
    r.http_minor = 0;
    collect(&r, &m);
    IS(&m, "SERVER_PROTOCOL", "HTTP/1.0", "HTTP/1.0");
    ABSENT(&m, "HTTP_HOST", "HTTP/1.0 without Host");
    ok(count_prefix(&m, "HTTP_") == 0, "no headers: no HTTP_* at all");
    map_free(&m);

    r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    r.redirect_status = 200;
    collect(&r, &m);
    IS(&m, "REDIRECT_STATUS", "200", "REDIRECT_STATUS set");
    BEFORE(&m, "REDIRECT_STATUS", "PATH", "REDIRECT_STATUS set");
    map_free(&m);

    r.redirect_status = 404;
    collect(&r, &m);
    IS(&m, "REDIRECT_STATUS", "404", "REDIRECT_STATUS from an error handler");
    map_free(&m);

    r.redirect_status = 0;
    collect(&r, &m);
    ABSENT(&m, "REDIRECT_STATUS", "REDIRECT_STATUS 0");
    map_free(&m);

    r.auth_type = S("Basic");
    r.remote_user = S("alice");
    collect(&r, &m);
    IS(&m, "AUTH_TYPE", "Basic", "authenticated");
    IS(&m, "REMOTE_USER", "alice", "authenticated");
    BEFORE(&m, "AUTH_TYPE", "REMOTE_USER", "authenticated");
    map_free(&m);

    r.auth_type = S("");
    r.remote_user = (pt_str){NULL, 0};
    collect(&r, &m);
    ABSENT(&m, "AUTH_TYPE", "not authenticated");
    ABSENT(&m, "REMOTE_USER", "not authenticated");
    map_free(&m);
}

/* mod_ssl's names for programs behind HTTPS, only with https */
static void test_tls_connection_has_mod_ssl_variables(void)
{
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    r.https = true;
    r.ssl_protocol = "TLSv1.3";
    r.ssl_cipher = "TLS_AES_128_GCM_SHA256";
    r.ssl_sni = "example.org";
    r.ssl_resumed = true;
    collect(&r, &m);
    IS(&m, "SSL_PROTOCOL", "TLSv1.3", "tls");
    IS(&m, "SSL_CIPHER", "TLS_AES_128_GCM_SHA256", "tls");
    IS(&m, "SSL_TLS_SNI", "example.org", "tls");
    IS(&m, "SSL_SESSION_RESUMED", "Resumed", "tls");
    map_free(&m);

    r.ssl_sni = NULL;
    r.ssl_resumed = false;
    collect(&r, &m);
    ABSENT(&m, "SSL_TLS_SNI", "tls without SNI");
    IS(&m, "SSL_SESSION_RESUMED", "Initial", "tls, full handshake");
    map_free(&m);

    r.https = false;
    collect(&r, &m);
    ok(count_prefix(&m, "SSL_") == 0, "plain http: no SSL_* variables");
    map_free(&m);
}

static const pt_header mixed_hdrs[] = {
    H("Host", "example.com:8080"),
    H("User-Agent", "Mozilla/5.0"),
    H("Proxy", "http://evil.example:3128/"),
    H("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
    H("Connection", "keep-alive, X-Hop"),
    H("Keep-Alive", "timeout=5"),
    H("TE", "trailers"),
    H("Trailer", "X-T"),
    H("Upgrade", "websocket"),
    H("Transfer-Encoding", "chunked"),
    H("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
    H("Proxy-Connection", "keep-alive"),
    H("X-Hop", "1"),
    H("X_Foo", "spoof"),
    H("X-Foo", "a"),
    H("Cookie", "a=1"),
    H("x-foo", "b"),
    H("Cookie", "b=2"),
    H("Content-Length", "5"),
    H("Content-Type", "text/plain"),
    H("X.Bad", "dot"),
    H("X-Bad\x01", "ctl"),
    H("X-Bad\xc3\xa9", "utf8"),
    H("Accept-Language", "en"),
    H("DNT", "1"),
    H("X-Empty", ""),
};

static void test_http_mapping(void)
{
    const char *c = "HTTP_* mapping";
    pt_cgi_req r = base(mixed_hdrs, PT_ARRAY_LEN(mixed_hdrs));
    envmap m;

    r.content_length = 5;
    collect(&r, &m);
    IS(&m, "HTTP_HOST", "example.com:8080", c);
    IS(&m, "HTTP_USER_AGENT", "Mozilla/5.0", c);
    ABSENT(&m, "HTTP_PROXY", "httpoxy (CVE-2016-5385)");
    ABSENT(&m, "HTTP_AUTHORIZATION", "credentials withheld by default");
    ABSENT(&m, "HTTP_CONNECTION", "hop-by-hop");
    ABSENT(&m, "HTTP_KEEP_ALIVE", "hop-by-hop");
    ABSENT(&m, "HTTP_TE", "hop-by-hop");
    ABSENT(&m, "HTTP_TRAILER", "hop-by-hop");
    ABSENT(&m, "HTTP_UPGRADE", "hop-by-hop");
    ABSENT(&m, "HTTP_TRANSFER_ENCODING", "hop-by-hop");
    ABSENT(&m, "HTTP_PROXY_AUTHORIZATION", "hop-by-hop");
    ABSENT(&m, "HTTP_PROXY_CONNECTION", "hop-by-hop");
    ABSENT(&m, "HTTP_X_HOP", "field named in Connection (RFC 9110 §7.6.1)");
    IS(&m, "HTTP_X_FOO", "a, b", "X-Foo + x-foo joined; X_Foo (underscore) dropped");
    IS(&m, "HTTP_COOKIE", "a=1; b=2", "Cookie joined with \"; \"");
    ABSENT(&m, "HTTP_CONTENT_LENGTH", c);
    ABSENT(&m, "HTTP_CONTENT_TYPE", c);
    IS(&m, "CONTENT_TYPE", "text/plain", c);
    IS(&m, "CONTENT_LENGTH", "5", c);
    ABSENT(&m, "HTTP_X_BAD", "names with '.', CTL or non-ASCII bytes dropped");
    IS(&m, "HTTP_ACCEPT_LANGUAGE", "en", c);
    IS(&m, "HTTP_DNT", "1", c);
    IS(&m, "HTTP_X_EMPTY", "", "empty value kept");
    ok(count_prefix(&m, "HTTP_") == 7, "%s: exactly 7 HTTP_* variables (got %d)", c,
       count_prefix(&m, "HTTP_"));
    ok(names_sane(&m), "%s: every name once, [A-Z0-9_] only", c);
    BEFORE(&m, "HTTP_USER_AGENT", "HTTP_X_FOO", "request order");
    BEFORE(&m, "HTTP_X_FOO", "HTTP_COOKIE", "joined field at its first occurrence");
    BEFORE(&m, "HTTP_COOKIE", "HTTP_ACCEPT_LANGUAGE", "joined field at its first occurrence");
    BEFORE(&m, "PATH", "HTTP_HOST", "HTTP_* after the standard variables");
    map_free(&m);

    r.pass_authorization = true;
    collect(&r, &m);
    IS(&m, "HTTP_AUTHORIZATION", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "pass_authorization");
    ABSENT(&m, "HTTP_PROXY_AUTHORIZATION", "pass_authorization keeps Proxy-Authorization out");
    ABSENT(&m, "HTTP_PROXY", "pass_authorization: still no HTTP_PROXY");
    BEFORE(&m, "HTTP_USER_AGENT", "HTTP_AUTHORIZATION", "pass_authorization");
    map_free(&m);
}

static void test_connection_tokens(void)
{
    static const pt_header h[] = {
        H("Connection", "close"),
        H("X-A", "1"),
        H("connection", "  x-a ,\tX-B,,"),
        H("X-B", "2"),
        H("X-C", "3"),
        H("X-AB", "4"),
    };
    const char *c = "Connection tokens";
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h));
    envmap m;

    collect(&r, &m);
    ABSENT(&m, "HTTP_X_A", "field listed (lower-case, with OWS) in a second Connection");
    ABSENT(&m, "HTTP_X_B", "field listed after a tab");
    IS(&m, "HTTP_X_C", "3", "field not listed in Connection kept");
    IS(&m, "HTTP_X_AB", "4", "token match is whole-token, not prefix");
    ABSENT(&m, "HTTP_CONNECTION", c);
    map_free(&m);
}

static void test_names_and_joins(void)
{
    /* names point into a larger buffer: must honour name_len */
    static const char buf[] = "User-AgentXYZ";
    static char n255[256], n256[257];
    memset(n255, 'a', 255);
    memset(n256, 'b', 256);
    pt_header h[] = {
        {.name = buf, .value = "ua", .name_len = 10, .value_len = 2},
        H("x-MiXeD-cAsE", "m"),
        H("X-1", "digit"),
        {.name = n255, .value = "long", .name_len = 255, .value_len = 4},
        {.name = n256, .value = "toolong", .name_len = 256, .value_len = 7},
        H("X-Three", "1"),
        H("X-Three", ""),
        H("X-THREE", "3"),
        H("X-None", ""),
        H("x-none", ""),
        H("Accept", "text/html"),
        H("Accept", "*/*;q=0.1"),
        H("", "empty name"),
    };
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h));
    envmap m;

    collect(&r, &m);
    IS(&m, "HTTP_USER_AGENT", "ua", "name not NUL-terminated: name_len honoured");
    ABSENT(&m, "HTTP_USER_AGENTXYZ", "name not NUL-terminated");
    IS(&m, "HTTP_X_MIXED_CASE", "m", "mixed case upper-cased");
    IS(&m, "HTTP_X_1", "digit", "digits kept");
    char want[5 + 255 + 1];
    memcpy(want, "HTTP_", 5);
    memset(want + 5, 'A', 255);
    want[260] = '\0';
    IS(&m, want, "long", "255-byte name kept");
    ok(count_prefix(&m, "HTTP_BBB") == 0, "256-byte name dropped");
    IS(&m, "HTTP_X_THREE", "1, 3", "three fields joined, empty member left out");
    IS(&m, "HTTP_X_NONE", "", "all-empty repeated field gives \"\"");
    IS(&m, "HTTP_ACCEPT", "text/html, */*;q=0.1", "Accept joined with \", \"");
    ok(names_sane(&m), "names/joins: every name once, [A-Z0-9_] only");
    ok(count(&m, "HTTP_") == 0, "empty field name dropped");
    map_free(&m);

    /* a join longer than the builder's stack scratch: the malloc path */
    static char big_a[3001], big_b[3001];
    memset(big_a, 'a', 3000);
    memset(big_b, 'b', 3000);
    pt_header bh[] = {
        {.name = "X-Big", .value = big_a, .name_len = 5, .value_len = 3000},
        {.name = "X-Big", .value = big_b, .name_len = 5, .value_len = 3000},
    };
    r = base(bh, PT_ARRAY_LEN(bh));
    collect(&r, &m);
    int i = find(&m, "HTTP_X_BIG");
    ok(i >= 0 && m.e[i].vlen == 6002 && memcmp(m.e[i].value, big_a, 3000) == 0 &&
           memcmp(m.e[i].value + 3000, ", ", 2) == 0 &&
           memcmp(m.e[i].value + 3002, big_b, 3000) == 0,
       "6002-byte joined value complete");
    map_free(&m);

    ok(pt_cgi_env_try(&r, on_var, &m) == 0, "pt_cgi_env_try returns 0");
    map_free(&m);
}

static void test_pass_env_and_env(void)
{
    static char *const pass[] = {"PT_TEST_LANG", "PT_TEST_UNSET", "", "A=B", "PT_TEST_EMPTY"};
    static char *const env[] = {"FOO=bar", "EMPTY=", "NOEQ", "=x", "EQ=b=c"};
    const char *c = "pass_env/env";
    pt_cgi_req r = base(get_hdrs, PT_ARRAY_LEN(get_hdrs));
    envmap m;

    setenv("PT_TEST_LANG", "C.UTF-8", 1);
    setenv("PT_TEST_EMPTY", "", 1);
    unsetenv("PT_TEST_UNSET");
    r.pass_env = pass;
    r.npass_env = PT_ARRAY_LEN(pass);
    r.env = env;
    r.nenv = PT_ARRAY_LEN(env);
    collect(&r, &m);
    IS(&m, "PT_TEST_LANG", "C.UTF-8", "pass_env copies a set variable");
    IS(&m, "PT_TEST_EMPTY", "", "pass_env copies a set-but-empty variable");
    ABSENT(&m, "PT_TEST_UNSET", "pass_env skips an unset variable");
    IS(&m, "FOO", "bar", c);
    IS(&m, "EMPTY", "", "env entry with empty value");
    ABSENT(&m, "NOEQ", "env entry without '=' skipped");
    ok(count(&m, "") == 0, "env entry with empty name skipped");
    IS(&m, "EQ", "b=c", "env value split at the first '='");
    BEFORE(&m, "HTTP_ACCEPT", "PT_TEST_LANG", "pass_env after HTTP_*");
    BEFORE(&m, "PT_TEST_EMPTY", "FOO", "env after pass_env");
    ok(m.n > 0 && strcmp(m.e[m.n - 1].name, "EQ") == 0, "env entries emitted last");
    map_free(&m);

    r.server_software = NULL;
    r.path = NULL;
    collect(&r, &m);
    IS(&m, "SERVER_SOFTWARE", PACKAGE_NAME "/" PACKAGE_VERSION, "default SERVER_SOFTWARE");
    IS(&m, "PATH", PT_CGI_DEFAULT_PATH, "default PATH");
    map_free(&m);
}

/* The envp the rules predict: pt_cgi_env's output with later duplicates
 * replacing earlier ones in place; compared string by string. */
static void check_envp(const pt_cgi_req *r, const char *c)
{
    envmap m;
    char *exp[MAXVARS];
    size_t nexp = 0, nall = 0, bytes = 0;

    collect(r, &m);
    for (size_t i = 0; i < m.n; i++) {
        char *s;
        if (memchr(m.e[i].value, '\0', m.e[i].vlen))
            continue;
        if (asprintf(&s, "%s=%s", m.e[i].name, m.e[i].value) < 0)
            abort();
        bytes += strlen(s) + 1;
        nall++;
        size_t k, nl = strlen(m.e[i].name) + 1;
        for (k = 0; k < nexp && strncmp(exp[k], s, nl) != 0; k++)
            ;
        if (k < nexp)
            free(exp[k]);
        else
            nexp++;
        exp[k] = s;
    }

    char **envp = pt_cgi_envp(r);
    ok(envp != NULL, "%s: envp built", c);
    if (!envp)
        goto out;
    size_t n = 0;
    while (n < MAXVARS && envp[n])
        n++;
    ok(n == nexp, "%s: NULL-terminated after %zu entries (got %zu)", c, nexp, n);
    bool same = n == nexp;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(envp[i], exp[i]) == 0;
    ok(same, "%s: entries and order as emitted, duplicates resolved in place", c);
    /* one block: pointers sized for every emitted entry (replaced ones
     * included), then the strings */
    const char *lo = (const char *)(envp + n + 1);
    const char *hi = (const char *)envp + (nall + 1) * sizeof(char *) + bytes;
    bool inside = true;
    for (size_t i = 0; i < n; i++)
        inside = inside && envp[i] >= lo && envp[i] + strlen(envp[i]) < hi;
    ok(inside, "%s: strings live in the same block as the pointers", c);
    free(envp);
out:
    for (size_t i = 0; i < nexp; i++)
        free(exp[i]);
    map_free(&m);
}

static int count_envp(char **envp, const char *prefix)
{
    int c = 0;

    for (size_t i = 0; envp[i]; i++)
        c += strncmp(envp[i], prefix, strlen(prefix)) == 0;
    return c;
}

static int index_envp(char **envp, const char *prefix)
{
    for (size_t i = 0; envp[i]; i++) {
        if (strncmp(envp[i], prefix, strlen(prefix)) == 0)
            return (int)i;
    }
    return -1;
}

static void test_envp(void)
{
    static char *const pass[] = {"LANG"};
    static char *const env[] = {"PATH=/opt/bin", "LANG=env", "X=1", "X=2", "HTTP_HOST=forced"};
    static const pt_header h[] = {
        H("Host", "example.com"),
        H("User-Agent", "ua"),
        {.name = "X-Nul", .value = "a\0b", .name_len = 5, .value_len = 3},
    };
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h));

    setenv("LANG", "pass", 1);
    r.pass_env = pass;
    r.npass_env = 1;
    r.env = env;
    r.nenv = PT_ARRAY_LEN(env);

    char **envp = pt_cgi_envp(&r);
    ok(envp != NULL, "envp: built");
    if (envp) {
        ok(strcmp(envp[0], "GATEWAY_INTERFACE=CGI/1.1") == 0, "envp: first entry");
        ok(count_envp(envp, "PATH=") == 1, "envp: one PATH= entry");
        int p = index_envp(envp, "PATH=");
        ok(p >= 0 && strcmp(envp[p], "PATH=/opt/bin") == 0, "envp: location env overrides PATH");
        ok(p >= 0 && p < index_envp(envp, "HTTP_"), "envp: overridden PATH keeps its position");
        ok(count_envp(envp, "LANG=") == 1, "envp: one LANG= entry");
        int l = index_envp(envp, "LANG=");
        ok(l >= 0 && strcmp(envp[l], "LANG=env") == 0, "envp: env LANG beats pass_env LANG");
        ok(count_envp(envp, "X=") == 1 && index_envp(envp, "X=2") >= 0,
           "envp: repeated env name, last wins");
        ok(count_envp(envp, "HTTP_HOST=") == 1 && index_envp(envp, "HTTP_HOST=forced") >= 0,
           "envp: env may override an HTTP_* variable");
        ok(index_envp(envp, "HTTP_X_NUL=") < 0, "envp: value with NUL skipped");
        ok(index_envp(envp, "HTTP_USER_AGENT=ua") > index_envp(envp, "HTTP_HOST="),
           "envp: order otherwise preserved");
        free(envp);
    }

    envmap m;
    collect(&r, &m);
    int i = find(&m, "HTTP_X_NUL");
    ok(i >= 0 && m.e[i].vlen == 3, "pt_cgi_env passes the NUL value through (length-based)");
    map_free(&m);

    check_envp(&r, "envp with overrides");
    r = base(mixed_hdrs, PT_ARRAY_LEN(mixed_hdrs));
    check_envp(&r, "envp for the HTTP_* mix");
    r.pass_authorization = true;
    r.https = true;
    r.path_info = S("/x");
    r.redirect_status = 200;
    check_envp(&r, "envp with every optional variable");
}

/* The id portico settled on is REQUEST_ID and HTTP_X_REQUEST_ID; the
 * client's X-Request-ID does not pass beside it. */
static void test_request_id_replaces_the_clients(void)
{
    static const pt_header h[] = {H("Host", "a"), H("X-Request-ID", "forged")};
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h));
    envmap m;
    collect(&r, &m);
    ok(val_is(&m, "HTTP_X_REQUEST_ID", "forged") && count(&m, "REQUEST_ID") == 0,
       "no id set: the client's header passes as any other");
    map_free(&m);
    r.request_id = S("0123abcd");
    collect(&r, &m);
    ok(val_is(&m, "REQUEST_ID", "0123abcd") && val_is(&m, "HTTP_X_REQUEST_ID", "0123abcd") &&
           count(&m, "HTTP_X_REQUEST_ID") == 1,
       "an id set: REQUEST_ID and HTTP_X_REQUEST_ID carry it, once");
    map_free(&m);
}

/* Every byte value in a field name: only [A-Za-z0-9-] makes a variable
 * (one name table decides, see cgi_env.c). */
static void test_every_name_byte(void)
{
    static char names[256][3];
    pt_header h[256];
    for (int b = 0; b < 256; b++) {
        names[b][0] = 'X';
        names[b][1] = '-';
        names[b][2] = (char)b;
        h[b] = (pt_header){.name = names[b], .value = "v", .name_len = 3, .value_len = 1};
    }
    int bad = 0;
    for (int lo = 0; lo < 256; lo += 64) {
        pt_cgi_req r = base(h + lo, 64);
        envmap m;
        collect(&r, &m);
        for (int b = lo; b < lo + 64; b++) {
            bool want = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                        (b >= '0' && b <= '9') || b == '-';
            char var[] = {'H', 'T', 'T', 'P', '_', 'X', '_', (char)b, '\0'};
            if (b >= 'a' && b <= 'z')
                var[7] = (char)(b - 32);
            else if (b == '-')
                var[7] = '_';
            /* a lower-case letter and its capital are one variable */
            if (want && b >= 'a' && b <= 'z')
                continue;
            if (want != (b != 0 && find(&m, var) >= 0)) {
                printf("#   byte %d: %s\n", b, want ? "missing" : "passed");
                bad++;
            }
        }
        ok(names_sane(&m), "name bytes %d-%d: every name once, [A-Z0-9_] only", lo, lo + 63);
        map_free(&m);
    }
    ok(bad == 0, "every name byte: [A-Za-z0-9-] passes, nothing else");
}

/* Names of 1 to 24 bytes with each of [A-Za-z0-9-] at each position (the
 * builder maps eight bytes at a time, the last word overlapping): HTTP_ and
 * the name upper-cased, '-' as '_'. */
static void test_name_mapping_every_position(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-";
    int bad = 0, n = 0;
    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t a = 0; a < sizeof(alpha) - 1; a++) {
                char nm[32], want[40];
                for (size_t k = 0; k < len; k++)
                    nm[k] = "xY-7q"[(k + a) % 5];
                nm[at] = alpha[a];
                memcpy(want, "HTTP_", 5);
                for (size_t k = 0; k < len; k++) {
                    char c = nm[k];
                    want[5 + k] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
                }
                want[5 + len] = '\0';
                pt_header h[] = {
                    {.name = nm, .value = "v", .name_len = (uint32_t)len, .value_len = 1}};
                pt_cgi_req r = base(h, 1);
                envmap m;
                collect(&r, &m);
                if (!val_is(&m, want, "v") && bad++ < 5)
                    printf("#   name %.*s\n", (int)len, nm);
                map_free(&m);
                n++;
            }
        }
    }
    ok(bad == 0, "%d names of 1-24 bytes map to HTTP_ names exactly", n);
}

/* The excluded names in any case, and names of the same lengths that are
 * not excluded (the exclusion looks at the length first). */
static void test_exclusions_any_case(void)
{
    static const pt_header h[] = {
        H("tE", "x"),
        H("PROXY", "x"),
        H("TrAiLeR", "x"),
        H("UPGRADE", "x"),
        H("CONNECTION", "x"),
        H("keep-ALIVE", "x"),
        H("CONTENT-type", "x"),
        H("Content-LENGTH", "x"),
        H("proxy-CONNECTION", "x"),
        H("TRANSFER-encoding", "x"),
        H("Proxy-AUTHORIZATION", "x"),
        H("Te2", "same length+1"),
        H("Tf", "near"),
        H("Proxz", "near"),
        H("Trailes", "near"),
        H("Upgradf", "near"),
        H("Connectioo", "near"),
        H("Keep-Alivf", "near"),
        H("Content-Typf", "near"),
        H("Content-Lengti", "near"),
        H("Proxy-Connectioo", "near"),
        H("Transfer-Encodinf", "near"),
        H("Proxy-Authorizatioo", "near"),
    };
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h));
    envmap m;
    collect(&r, &m);
    static const char *const gone[] = {"HTTP_TE",
                                       "HTTP_PROXY",
                                       "HTTP_TRAILER",
                                       "HTTP_UPGRADE",
                                       "HTTP_CONNECTION",
                                       "HTTP_KEEP_ALIVE",
                                       "HTTP_CONTENT_TYPE",
                                       "HTTP_CONTENT_LENGTH",
                                       "HTTP_PROXY_CONNECTION",
                                       "HTTP_TRANSFER_ENCODING",
                                       "HTTP_PROXY_AUTHORIZATION"};
    for (size_t i = 0; i < PT_ARRAY_LEN(gone); i++)
        ABSENT(&m, gone[i], "excluded in any case");
    static const char *const kept[] = {"HTTP_TE2",
                                       "HTTP_TF",
                                       "HTTP_PROXZ",
                                       "HTTP_TRAILES",
                                       "HTTP_UPGRADF",
                                       "HTTP_CONNECTIOO",
                                       "HTTP_KEEP_ALIVF",
                                       "HTTP_CONTENT_TYPF",
                                       "HTTP_CONTENT_LENGTI",
                                       "HTTP_PROXY_CONNECTIOO",
                                       "HTTP_TRANSFER_ENCODINF",
                                       "HTTP_PROXY_AUTHORIZATIOO"};
    for (size_t i = 0; i < PT_ARRAY_LEN(kept); i++)
        ok(find(&m, kept[i]) >= 0, "near miss passed: %s", kept[i]);
    IS(&m, "CONTENT_TYPE", "x", "CONTENT_TYPE from a field in any case");
    map_free(&m);
}

/* More fields than the builder classifies up front (its first 128): a
 * repeated name across the seam, one past it, a Connection past it naming
 * an early field, and the first Content-Type past it. */
static void test_many_fields(void)
{
    enum { N = 200 };
    static char names[N][8];
    static pt_header h[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "X-F%d", i);
        h[i] = (pt_header){
            .name = names[i], .value = "v", .name_len = (uint32_t)strlen(names[i]), .value_len = 1};
    }
    h[5] = (pt_header)H("X-Seam", "early");
    h[150] = (pt_header)H("x-seam", "late");
    h[140] = (pt_header)H("X-Late", "1");
    h[190] = (pt_header)H("X-LATE", "2");
    h[3] = (pt_header)H("X-Gone", "hop");
    h[170] = (pt_header)H("Connection", "x-gone");
    h[160] = (pt_header)H("Content-Type", "text/late");
    h[180] = (pt_header)H("Content-Type", "text/second");
    h[199] = (pt_header)H("X-Seam", "last");
    pt_cgi_req r = base(h, N);
    envmap m;
    collect(&r, &m);
    ok(m.overflow == 0, "many fields: all collected");
    IS(&m, "HTTP_X_SEAM", "early, late, last", "many fields: a join across the seam");
    IS(&m, "HTTP_X_LATE", "1, 2", "many fields: a join past the seam");
    ABSENT(&m, "HTTP_X_GONE", "many fields: named by a late Connection");
    IS(&m, "CONTENT_TYPE", "text/late", "many fields: the first Content-Type");
    BEFORE(&m, "HTTP_X_F4", "HTTP_X_SEAM", "many fields: join at its first occurrence");
    BEFORE(&m, "HTTP_X_SEAM", "HTTP_X_F6", "many fields: join at its first occurrence");
    BEFORE(&m, "HTTP_X_F139", "HTTP_X_LATE", "many fields: late join in place");
    BEFORE(&m, "HTTP_X_LATE", "HTTP_X_F141", "many fields: late join in place");
    ok(find(&m, "HTTP_X_F198") >= 0 && find(&m, "HTTP_X_F129") >= 0,
       "many fields: plain fields past the seam");
    ok(names_sane(&m), "many fields: every name once");
    map_free(&m);
}

int main(void)
{
    test_request_id_replaces_the_clients();
    test_plain_get();
    test_minimal_set_leaves_out_the_cgi_process_variables();
    test_query_shapes();
    test_path_info();
    test_post();
    test_https_version_redirect_auth();
    test_tls_connection_has_mod_ssl_variables();
    test_http_mapping();
    test_connection_tokens();
    test_names_and_joins();
    test_every_name_byte();
    test_name_mapping_every_position();
    test_exclusions_any_case();
    test_many_fields();
    test_pass_env_and_env();
    test_envp();
    return tap_done();
}
