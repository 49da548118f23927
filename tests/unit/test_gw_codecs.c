#include "first.h"
#include "scgi.h"
#include "uwsgi.h"
#include "proxy.h"
#include "conf.h"

/* test_gw_codecs.c: the request framing of the SCGI and uwsgi codecs, from
 * the one meta-variable builder: the SCGI netstring (CONTENT_LENGTH first,
 * SCGI=1, nothing else repeated), the uwsgi header and pairs, uwsgi's
 * 64 KiB cap, and that both hand response bytes through untouched; the
 * HTTP request the proxy codec writes (hop-by-hop fields out, forwarding
 * fields in). */

#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, v, sizeof(n) - 1, sizeof(v) - 1                                                         \
    }

static pt_str S(const char *s)
{
    return (pt_str){s, s ? strlen(s) : 0};
}

static pt_cgi_req base(const pt_header *h, size_t nh, int64_t cl)
{
    pt_cgi_req r = {
        .method = S("POST"),
        .request_uri = S("/app/x?a=1"),
        .query = S("a=1"),
        .script_name = S("/app"),
        .path_info = S("/x"),
        .document_root = S("/srv/www"),
        .server_name = S("example.com"),
        .server_port = S("8080"),
        .server_addr = S("127.0.0.1"),
        .remote_addr = S("127.0.0.2"),
        .remote_port = S("54321"),
        .http_major = 1,
        .http_minor = 1,
        .content_length = cl,
        .headers = h,
        .nheaders = nh,
        .server_software = "portico/0.1.0",
        .path = "/usr/bin:/bin",
    };
    return r;
}

static const pt_header hdrs[] = {
    H("Host", "example.com:8080"),
    H("Cookie", "a=1"),
};

/* The value of name in NUL-separated pairs p[0..n), or NULL; *count: how
 * often the name appears. */
static const char *scgi_get(const char *p, size_t n, const char *name, int *count)
{
    const char *found = NULL;
    *count = 0;
    for (size_t i = 0; i < n;) {
        const char *k = p + i;
        size_t kl = strnlen(k, n - i);
        const char *v = k + kl + 1;
        size_t vl = strnlen(v, n - (size_t)(v - p));
        if (strcmp(k, name) == 0) {
            (*count)++;
            found = v;
        }
        i = (size_t)(v - p) + vl + 1;
    }
    return found;
}

static void test_scgi_netstring_has_content_length_first_and_scgi_1(void)
{
    pt_cgi_req r = base(hdrs, PT_ARRAY_LEN(hdrs), 5);
    char *out = NULL;
    size_t len = 0;
    bool has_end = true;
    ok(pt_scgi_codec.encode(&r, NULL, 5, &out, &len, &has_end) == 0, "scgi: encodes");
    ok(!has_end, "scgi: a body follows the head");
    char *colon = memchr(out, ':', len);
    long n = colon ? strtol(out, NULL, 10) : -1;
    ok(colon && n > 0 && (size_t)(colon - out) + 1 + (size_t)n + 1 == len && out[len - 1] == ',',
       "scgi: a netstring: length ':' headers ','");
    const char *h = colon + 1;
    ok(memcmp(h,
              "CONTENT_LENGTH\0"
              "5\0",
              17) == 0,
       "scgi: CONTENT_LENGTH comes first");
    int c;
    const char *v = scgi_get(h, (size_t)n, "CONTENT_LENGTH", &c);
    ok(v && strcmp(v, "5") == 0 && c == 1, "scgi: CONTENT_LENGTH once");
    v = scgi_get(h, (size_t)n, "SCGI", &c);
    ok(v && strcmp(v, "1") == 0 && c == 1, "scgi: SCGI=1");
    v = scgi_get(h, (size_t)n, "PATH_INFO", &c);
    ok(v && strcmp(v, "/x") == 0, "scgi: the builder's variables (PATH_INFO)");
    v = scgi_get(h, (size_t)n, "HTTP_COOKIE", &c);
    ok(v && strcmp(v, "a=1") == 0, "scgi: and the headers (HTTP_COOKIE)");
    free(out);

    r = base(hdrs, PT_ARRAY_LEN(hdrs), -1);
    ok(pt_scgi_codec.encode(&r, NULL, 0, &out, &len, &has_end) == 0 && has_end,
       "scgi: without a body the head is everything");
    colon = memchr(out, ':', len);
    ok(colon && memcmp(colon + 1,
                       "CONTENT_LENGTH\0"
                       "0\0",
                       17) == 0,
       "scgi: CONTENT_LENGTH 0 without a body (the spec requires it)");
    free(out);
}

static unsigned u16(const char *p)
{
    return (unsigned char)p[0] | (unsigned)(unsigned char)p[1] << 8;
}

static void test_uwsgi_header_and_pairs(void)
{
    pt_cgi_req r = base(hdrs, PT_ARRAY_LEN(hdrs), 5);
    char *out = NULL;
    size_t len = 0;
    bool has_end = true;
    ok(pt_uwsgi_codec.encode(&r, NULL, 5, &out, &len, &has_end) == 0 && !has_end, "uwsgi: encodes");
    ok(out[0] == 0 && out[3] == 0, "uwsgi: modifier1 and modifier2 are 0 (WSGI)");
    ok(u16(out + 1) == len - 4, "uwsgi: datasize (16-bit LE) is the size of the vars");
    bool walked = true, saw_pi = false, saw_cl = false;
    for (size_t i = 4; i < len && walked;) {
        if (len - i < 2) {
            walked = false;
            break;
        }
        unsigned kl = u16(out + i);
        const char *k = out + i + 2;
        if (len - i < 4u + kl) {
            walked = false;
            break;
        }
        unsigned vl = u16(out + i + 2 + kl);
        const char *v = k + kl + 2;
        if (len - i < 4u + kl + vl) {
            walked = false;
            break;
        }
        saw_pi |= kl == 9 && memcmp(k, "PATH_INFO", 9) == 0 && vl == 2 && memcmp(v, "/x", 2) == 0;
        saw_cl |= kl == 14 && memcmp(k, "CONTENT_LENGTH", 14) == 0 && vl == 1 && v[0] == '5';
        i += 4u + kl + vl;
    }
    ok(walked, "uwsgi: the pairs fill the block exactly");
    ok(saw_pi && saw_cl, "uwsgi: the builder's variables (PATH_INFO, CONTENT_LENGTH)");
    free(out);
}

static void test_uwsgi_vars_over_64k_are_refused(void)
{
    static char big[70000];
    memset(big, 'v', sizeof(big) - 1);
    pt_header h[2] = {H("Host", "example.com"), {"X-Big", big, 5, 0}};
    char *out = NULL;
    size_t len = 0;
    bool has_end;

    h[1].value_len = 60000;
    pt_cgi_req r = base(h, 2, -1);
    ok(pt_uwsgi_codec.encode(&r, NULL, 0, &out, &len, &has_end) == 0 && len > 60000 &&
           u16(out + 1) == len - 4,
       "uwsgi: 60000 bytes of header fit");
    free(out);

    h[1].value_len = 65535 - 100;
    r = base(h, 2, -1);
    out = NULL;
    errno = 0;
    ok(pt_uwsgi_codec.encode(&r, NULL, 0, &out, &len, &has_end) < 0 && errno == E2BIG && !out,
       "uwsgi: vars over 64 KiB fail with E2BIG (431)");
    h[1].value_len = sizeof(big) - 1;
    r = base(h, 2, -1);
    errno = 0;
    ok(pt_uwsgi_codec.encode(&r, NULL, 0, &out, &len, &has_end) < 0 && errno == E2BIG,
       "uwsgi: a single value over 64 KiB fails with E2BIG, no 16-bit wrap");
}

static void test_responses_pass_through(void)
{
    const pt_upstream_codec *cs[2] = {&pt_scgi_codec, &pt_uwsgi_codec};
    for (size_t i = 0; i < 2; i++) {
        pt_upstream_ev ev;
        const char in[] = "Status: 200 OK\r\n\r\nbody";
        size_t used = cs[i]->feed(NULL, in, sizeof(in) - 1, &ev);
        ok(used == sizeof(in) - 1 && ev.type == PT_UEV_OUT && ev.data == in &&
               ev.len == sizeof(in) - 1,
           "%s: response bytes go to the response parser as they are", cs[i]->name);
        ok(cs[i]->eof_ends && !cs[i]->reusable, "%s: the close ends it; never pooled", cs[i]->name);
    }
    ok(pt_uwsgi_codec.status_line && !pt_scgi_codec.status_line,
       "uwsgi answers with a status line, SCGI with a CGI header block");
}

/* RFC 9110 §7.6.1: Connection, what it names, and the fixed hop-by-hop
 * fields never reach the upstream; RFC 7239 §6: an IPv6 node is quoted. */
static void test_proxy_request_drops_hop_by_hop_and_adds_forwarding(void)
{
    static const pt_header h[] = {
        H("Host", "example.com:8080"),
        H("Connection", "keep-alive, X-Secret"),
        H("X-Secret", "1"),
        H("Keep-Alive", "5"),
        H("Upgrade", "websocket"),
        H("Proxy-Authorization", "Basic eDp5"),
        H("Transfer-Encoding", "chunked"),
        H("Expect", "100-continue"),
        H("X-Forwarded-For", "192.0.2.7"),
        H("Forwarded", "for=192.0.2.7"),
        H("Cookie", "a=1"),
    };
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h), 5);
    r.remote_addr = S("::1");
    r.https = true;
    pt_backend b = {0};
    char *out = NULL;
    size_t len = 0;
    bool end = true;
    int rc = pt_proxy_codec.encode(&r, &b, 5, &out, &len, &end);
    ok(rc == 0 && !end, "proxy: encoded, the body follows");
    char *t = rc == 0 ? strndup(out, len) : NULL;
    ok(t && strncmp(t, "POST /app/x?a=1 HTTP/1.1\r\nHost: example.com:8080\r\n", 49) == 0,
       "proxy: the target unchanged, the client's Host");
    ok(t && strstr(t, "\r\nX-Forwarded-For: 192.0.2.7, ::1\r\n"),
       "proxy: X-Forwarded-For appended");
    ok(t && strstr(t, "\r\nX-Forwarded-Proto: https\r\n"), "proxy: X-Forwarded-Proto https");
    ok(t && strstr(t, "\r\nForwarded: for=192.0.2.7, for=\"[::1]\";proto=https;"
                      "host=\"example.com:8080\"\r\n"),
       "proxy: Forwarded appended, IPv6 quoted in brackets");
    ok(t && strstr(t, "\r\nContent-Length: 5\r\n\r\n"), "proxy: Content-Length, then the end");
    ok(t && strstr(t, "\r\nCookie: a=1\r\n"), "proxy: other fields kept");
    const char *gone[] = {"Connection:", "X-Secret",          "Keep-Alive", "Upgrade",
                          "Proxy-",      "Transfer-Encoding", "Expect",     "Via"};
    for (size_t i = 0; i < PT_ARRAY_LEN(gone); i++)
        ok(t && !strstr(t, gone[i]), "proxy: no %s", gone[i]);
    free(t);
    free(out);
    b.via = true;
    out = NULL;
    rc = pt_proxy_codec.encode(&r, &b, 0, &out, &len, &end);
    t = rc == 0 ? strndup(out, len) : NULL;
    ok(t && end && strstr(t, "\r\nVia: 1.1 portico\r\n"), "proxy: via adds Via");
    free(t);
    free(out);
}

/* The proxy classifies field names by length and first letter before one
 * comparison: every case of a name it acts on is caught, and names of the
 * same length or first letter that are not those pass untouched. */
static void test_proxy_request_names_in_any_case(void)
{
    static const pt_header h[] = {
        H("hOST", "example.com"),
        H("tE", "trailers"),
        H("Proxy-X", "1"),
        H("PROXY-CONNECTION", "close"),
        H("kEEP-aLIVE", "5"),
        H("connection", "X-GONE, x-also-gone"),
        H("x-gone", "1"),
        H("X-ALSO-GONE", "1"),
        H("X-FORWARDED-PROTO", "ftp"),
        H("x-forwarded-HOST", "evil"),
        H("Trailers", "kept1"),
        H("Keep-Alivx", "kept2"),
        H("X-Forwarded-Hosts", "kept3"),
        H("Transfer-Encodinx", "kept4"),
        H("Hostname", "kept5"),
        H("Te-X", "kept6"),
        H("Connectio", "kept7"),
        H("Proxy", "kept8"),
        H("X-Gon", "kept9"),
    };
    pt_cgi_req r = base(h, PT_ARRAY_LEN(h), 0);
    pt_backend b = {0};
    char *out = NULL;
    size_t len = 0;
    bool end = false;
    int rc = pt_proxy_codec.encode(&r, &b, 0, &out, &len, &end);
    char *t = rc == 0 ? strndup(out, len) : NULL;
    ok(t && strstr(t, "\r\nHost: example.com\r\n") && strstr(t, "X-Forwarded-Proto: http\r\n") &&
           strstr(t, "X-Forwarded-Host: example.com\r\n"),
       "proxy: Host found in any case, the X-Forwarded-* fields are ours");
    const char *gone[] = {
        "tE:", "Proxy-X", "PROXY-", "kEEP", "connection:", "x-gone", "X-ALSO", "ftp", "evil"};
    for (size_t i = 0; i < PT_ARRAY_LEN(gone); i++)
        ok(t && !strstr(t, gone[i]), "proxy: %s dropped in any case", gone[i]);
    for (int i = 1; i <= 9; i++) {
        char v[16];
        snprintf(v, sizeof(v), ": kept%d\r\n", i);
        ok(t && strstr(t, v), "proxy: lookalike name %d passes", i);
    }
    free(t);
    free(out);

    /* RFC 7239 §4: a value that is no token is a quoted-string, with '"'
     * and '\\' escaped (the runs between them copied whole) */
    static const pt_header q[] = {H("Host", "a\"b\\c:1")};
    r = base(q, PT_ARRAY_LEN(q), 0);
    out = NULL;
    rc = pt_proxy_codec.encode(&r, &b, 0, &out, &len, &end);
    t = rc == 0 ? strndup(out, len) : NULL;
    ok(t && strstr(t, ";host=\"a\\\"b\\\\c:1\"\r\n"), "proxy: Forwarded host quoted and escaped");
    free(t);
    free(out);
}

/* RFC 9110 §7.8: an Upgrade request goes on with its Upgrade field and a
 * Connection naming it only where the location lets it (upgrade) and only
 * from HTTP/1.1; otherwise both stay hop-by-hop. */
static void test_proxy_request_passes_upgrade_only_when_allowed(void)
{
    static const pt_header h[] = {
        H("Host", "t"),
        H("Connection", "keep-alive, Upgrade"),
        H("Upgrade", "websocket"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    };
    pt_backend b = {0};
    for (int k = 0; k < 4; k++) {
        pt_cgi_req r = base(h, PT_ARRAY_LEN(h), 0);
        r.content_length = -1;
        r.upgrade = k != 1;     /* k 1: the location refuses */
        r.http_minor = k != 2;  /* k 2: HTTP/1.0 */
        r.body_stream = k == 3; /* k 3: a body streaming (request_buffering = false) */
        char *out = NULL;
        size_t len = 0;
        bool end = false;
        int rc = pt_proxy_codec.encode(&r, &b, 0, &out, &len, &end);
        char *t = rc == 0 ? strndup(out, len) : NULL;
        bool up = t && strstr(t, "\r\nUpgrade: websocket\r\nConnection: upgrade\r\n");
        ok(k == 0 ? up : t && !strstr(t, "Upgrade") && !strstr(t, "Connection"), "proxy: %s",
           k == 0   ? "an Upgrade request goes on with Upgrade and Connection"
           : k == 1 ? "upgrade = false: no Upgrade, no Connection"
           : k == 2 ? "HTTP/1.0: Upgrade ignored"
                    : "a streamed body: no Upgrade (the connection cannot also be a tunnel)");
        ok(t && strstr(t, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
           "proxy: the WebSocket fields are end-to-end");
        free(t);
        free(out);
    }
}

/* request_buffering = false: the body follows the head as it arrives,
 * framed as the client framed it (RFC 9112 §6.1, §6.2). */
static void test_proxy_streamed_body_keeps_the_client_framing(void)
{
    static const pt_header h[] = {H("Host", "t"), H("Content-Length", "1234")};
    pt_backend b = {0};
    for (int k = 0; k < 2; k++) {
        pt_cgi_req r = base(h, PT_ARRAY_LEN(h), k == 0 ? 1234 : -1);
        r.body_stream = true;
        char *out = NULL;
        size_t len = 0;
        bool end = true;
        int rc = pt_proxy_codec.encode(&r, &b, 0, &out, &len, &end);
        char *t = rc == 0 ? strndup(out, len) : NULL;
        ok(t && !end &&
               strstr(t, k == 0 ? "\r\nContent-Length: 1234\r\n\r\n"
                                : "\r\nTransfer-Encoding: chunked\r\n\r\n") &&
               !strstr(t, k == 0 ? "Transfer-Encoding" : "Content-Length"),
           "proxy: a streamed body goes %s, the body to follow",
           k == 0 ? "with the client's Content-Length" : "chunked when the length is unknown");
        free(t);
        free(out);
    }
}

int main(void)
{
    test_scgi_netstring_has_content_length_first_and_scgi_1();
    test_uwsgi_header_and_pairs();
    test_uwsgi_vars_over_64k_are_refused();
    /* again after a 60000-byte packet and two refused ones: the worker's
     * kept block gives the short packet exactly, nothing of the long one */
    test_uwsgi_header_and_pairs();
    test_responses_pass_through();
    test_proxy_request_drops_hop_by_hop_and_adds_forwarding();
    test_proxy_request_names_in_any_case();
    test_proxy_request_passes_upgrade_only_when_allowed();
    test_proxy_streamed_body_keeps_the_client_framing();
    return tap_done();
}
