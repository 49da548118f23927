#include "first.h"
#include "scgi.h"
#include "uwsgi.h"
#include "proxy.h"
#include "conf.h"
#include "conn.h"
#include "gw.h"
#include "util.h"
#include "worker.h"

/* test_gw_codecs.c: the request framing of the SCGI and uwsgi codecs, from
 * the one meta-variable builder: the SCGI netstring (CONTENT_LENGTH first,
 * SCGI=1, nothing else repeated), the uwsgi header and pairs, uwsgi's
 * 64 KiB cap, and that both hand response bytes through untouched; the
 * HTTP request the proxy codec writes (hop-by-hop fields out, forwarding
 * fields in), and how it reads an upstream's head (strict, in any split). */

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

/* ---- the proxy's reading of an upstream head ------------------------------- */

/* The head b[0, n) fed to a fresh proxy decoder in pieces ending at cuts
 * (ascending), described: "FAIL why", "MORE", or the head the gateway got
 * (status, length, kept fields) and where the body starts. */
static char *px_decode(const char *b, size_t n, const size_t *cuts, size_t ncut)
{
    static pt_config cfg;
    static pt_worker w;
    static pt_conn c;
    static pt_header rh[] = {H("Host", "example.org")};
    pt_req r;
    pt_gw g;
    pt_fcgi_server sv;
    pt_backend bk;
    memset(&r, 0, sizeof(r));
    memset(&g, 0, sizeof(g));
    memset(&sv, 0, sizeof(sv));
    memset(&bk, 0, sizeof(bk));
    cfg.limits.gw_header_max = 2048;
    w.cfg = &cfg;
    c.w = &w;
    r.conn = &c;
    r.gw = &g;
    r.head.headers = rh;
    r.head.nheaders = 1;
    r.head.http_major = r.head.http_minor = 1;
    pt_cgi_resp_init(&g.resp, 2048, 40);
    g.resp.status_line = true;
    sv.address = "127.0.0.1:8000";
    bk.servers = &sv;
    bk.nservers = 1;
    void *d = calloc(1, pt_proxy_codec.dec_size);
    pt_proxy_codec.dec_init(d);
    pt_proxy_codec.bind(d, &r, &bk, 0);
    char *out = malloc(4096);
    size_t o = 0, at = 0;
    o += (size_t)snprintf(out, 4096, "MORE");
    for (size_t k = 0; k <= ncut; k++) {
        size_t end = k < ncut ? cuts[k] : n;
        const char *p = b + at;
        size_t len = end - at;
        at = end;
        while (len > 0) {
            pt_upstream_ev ev = {0};
            size_t used = pt_proxy_codec.feed(d, p, len, &ev);
            p += used;
            len -= used;
            if (ev.type == PT_UEV_FAIL) {
                snprintf(out, 4096, "FAIL %s", ev.why);
                goto done;
            }
            if (ev.type == PT_UEV_OUT && ev.head) {
                pt_cgi_resp *rs = &g.resp;
                o = (size_t)snprintf(out, 4096, "%d cl=%lld body@%zu", rs->status,
                                     (long long)rs->content_length, (size_t)(p - b));
                for (size_t i = 0; i < rs->nhdrs; i++) {
                    pt_str nm = pt_cgi_hdr_name(rs, i), v = pt_cgi_hdr_value(rs, i);
                    o += (size_t)snprintf(out + o, 4096 - o, " [%.*s=%.*s]", (int)nm.len, nm.p,
                                          (int)v.len, v.p);
                }
                goto done;
            }
            if (used == 0)
                break;
        }
    }
done:
    pt_proxy_codec.dec_free(d);
    free(d);
    pt_cgi_resp_free(&g.resp);
    return out;
}

static char *px_whole(const char *b)
{
    return px_decode(b, strlen(b), NULL, 0);
}

/* The head is found, split into fields and checked in one scan over bytes
 * as they lie in the read; a head in pieces is collected and read the same
 * way: every split gives the same answer. */
static void test_proxy_head_reads_the_same_in_any_split(void)
{
    static const char head[] =
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 09:47:00 GMT\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 4\r\n"
        "Connection: keep-alive, X-Hop\r\nX-Hop: gone\r\nX-Empty:\r\nX-Blank:   \r\n"
        "X-Tab:\tv\tw\t\r\nx_under.dot~: 1\r\nX-Obs: \x80\xff\r\n"
        "A-Header-Name-Longer-Than-Sixteen: a value that runs well past thirty-two bytes\n"
        "ETag: \"65-400\"\r\n\r\nbody";
    static const char want[] =
        "200 cl=4 body@341 [Content-Type=application/octet-stream] [X-Empty=] [X-Blank=] "
        "[X-Tab=v\tw] [x_under.dot~=1] [X-Obs=\x80\xff] "
        "[A-Header-Name-Longer-Than-Sixteen=a value that runs well past thirty-two bytes] "
        "[ETag=\"65-400\"]";
    size_t n = strlen(head);
    char *whole = px_whole(head);
    ok(strcmp(whole, want) == 0, "proxy: a head in one read: %s", whole);
    size_t differ = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        char *t = px_decode(head, n, &cut, 1);
        differ += strcmp(t, want) != 0;
        if (strcmp(t, want) != 0 && differ == 1)
            printf("# cut at %zu: %s\n", cut, t);
        free(t);
        size_t three[2] = {cut / 2, cut};
        t = px_decode(head, n, three, 2);
        differ += strcmp(t, want) != 0;
        free(t);
    }
    ok(differ == 0, "proxy: the head cut anywhere, in two or three reads, reads the same");
    /* LF alone ends a line too (RFC 9112 §2.2) */
    char *lf = px_whole("HTTP/1.1 404 Not Found\nContent-Length: 0\nX-A: b\n\n");
    ok(strcmp(lf, "404 cl=0 body@49 [X-A=b]") == 0, "proxy: lines ending in LF alone: %s", lf);
    free(lf);
    free(whole);
}

/* Each broken line is a 502 with its own reason, wherever the bad byte is
 * (sixteen bytes at a time, eight, or one: each path sees it). */
static void test_proxy_head_refuses_each_broken_line(void)
{
    static const struct {
        const char *line, *why;
    } cases[] = {
        {" folded", "obs-fold"},
        {"\tfolded", "obs-fold"},
        {"Content-Length: 1\r\nContent-Length: 1", "repeated Content-Length"},
        {"Content-Length: 1,1", "invalid Content-Length"},
        {"Content-Length:", "invalid Content-Length"},
        {"Transfer-Encoding: gzip", "Transfer-Encoding other than chunked"},
        {"X-A: a\rb", "bare CR"},
        {"X-A: b\r\r", "bare CR"},
        {"X-A : b", "whitespace before colon"},
        {"X-A", "invalid header line"},
        {":b", "invalid header line"},
        {"X@A: b", "invalid header name"},
        {"Connection: a\r\nConnection: b", "repeated Connection"},
        {"Location: /a\r\nLocation: /b", "duplicate Location"},
        /* the rewritten value of an empty one has no bytes behind it at all
         * (the sanitizer build aborted in cgi_resp.c's copy) */
        {"Location:", "empty Location"},
    };
    for (size_t k = 0; k < PT_ARRAY_LEN(cases); k++) {
        char b[256];
        snprintf(b, sizeof(b), "HTTP/1.1 200 OK\r\nX-Before: 1\r\n%s\r\nX-After: 2\r\n\r\n",
                 cases[k].line);
        char *t = px_whole(b);
        char want[128];
        snprintf(want, sizeof(want), "FAIL invalid response header: %s", cases[k].why);
        ok(strcmp(t, want) == 0, "proxy: %s (%s)", cases[k].why, t);
        free(t);
    }
    /* a CTL or DEL at each position of values up to 40 bytes is refused;
     * HT and obs-text there pass */
    static const unsigned char ctl[] = {0x00, 0x01, 0x0b, 0x1f, 0x7f};
    size_t missed = 0, refused = 0;
    for (size_t len = 1; len <= 40; len++) {
        for (size_t pos = 0; pos + 1 < len; pos++) {
            for (size_t c = 0; c < PT_ARRAY_LEN(ctl) + 2; c++) {
                char b[128];
                int m = snprintf(b, sizeof(b), "HTTP/1.1 200 OK\r\nX-V: ");
                memset(b + m, 'v', len);
                b[(size_t)m + pos] = c < PT_ARRAY_LEN(ctl) ? (char)ctl[c] : c == 5 ? '\t' : '\x90';
                memcpy(b + m + len, "\r\n\r\n", 5);
                char *t = px_decode(b, (size_t)m + len + 4, NULL, 0);
                bool failed = strncmp(t, "FAIL", 4) == 0;
                if (c < PT_ARRAY_LEN(ctl))
                    missed += !failed;
                else
                    refused += failed;
                free(t);
            }
        }
    }
    ok(missed == 0 && refused == 0,
       "proxy: CTLs at every value position refused (%zu missed), "
       "HT and obs-text passed (%zu refused)",
       missed, refused);
    /* each byte at each position of a name: a tchar passes, ':' ends the
     * name early (the rest is value), anything else is refused */
    size_t wrong = 0;
    for (size_t len = 1; len <= 20; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int c = 1; c < 256; c++) {
                if (c == '\r' || c == '\n')
                    continue;
                char b[128];
                int m = snprintf(b, sizeof(b), "HTTP/1.1 200 OK\r\n");
                memset(b + m, 'N', len);
                b[(size_t)m + pos] = (char)c;
                memcpy(b + m + len, ": v\r\n\r\n", 8);
                char *t = px_decode(b, (size_t)m + len + 7, NULL, 0);
                bool good = pt_tchar[c] || (c == ':' && pos > 0);
                wrong += good != (strncmp(t, "FAIL", 4) != 0);
                free(t);
            }
        }
    }
    ok(wrong == 0, "proxy: every byte at every name position is judged as a tchar (%zu wrong)",
       wrong);
}

/* The scan reads the whole head before judging it: the reasons come in
 * the order of the checks, not of the bytes (a repeated Connection first,
 * then each line in turn), and only for a head that is complete. */
static void test_proxy_head_reasons_keep_their_order(void)
{
    char *t = px_whole("HTTP/1.1 200 OK\r\nX-A\r\nConnection: a\r\nConnection: b\r\n\r\n");
    ok(strcmp(t, "FAIL invalid response header: repeated Connection") == 0,
       "proxy: a repeated Connection after a broken line is the reason: %s", t);
    free(t);
    t = px_whole("HTTP/1.1 200 OK\r\nContent-Length: x\r\nX-A\r\n\r\n");
    ok(strcmp(t, "FAIL invalid response header: invalid Content-Length") == 0,
       "proxy: a bad length before a broken line is the reason: %s", t);
    free(t);
    t = px_whole("HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: x\r\n\r\n");
    ok(strcmp(t, "FAIL invalid response header: invalid header line") == 0,
       "proxy: a broken line before a bad length is the reason: %s", t);
    free(t);
    t = px_whole("HTTP/1.1 200 OK\r\nX-A\r\nX-B: b\r\n");
    ok(strcmp(t, "MORE") == 0, "proxy: an unfinished head waits, even with a broken line: %s", t);
    free(t);
    /* a head past the line table (48 lines): the later lines as the first */
    char b[2048];
    size_t n = (size_t)snprintf(b, sizeof(b), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(b + n, sizeof(b) - n, "Keep-Alive: %d\r\n", i);
    snprintf(b + n, sizeof(b) - n, "X-Last: 1\r\nContent-Length: 0\r\n\r\n");
    t = px_whole(b);
    ok(strncmp(t, "200 cl=0 ", 9) == 0 && strstr(t, " [X-Last=1]"),
       "proxy: fields past the line table are read: %s", t);
    free(t);
    snprintf(b + n, sizeof(b) - n, "X-Last: 1\r\nX-Bad : 1\r\n\r\n");
    t = px_whole(b);
    ok(strcmp(t, "FAIL invalid response header: whitespace before colon") == 0,
       "proxy: a broken line past the line table is found: %s", t);
    free(t);
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
    test_proxy_head_reads_the_same_in_any_split();
    test_proxy_head_refuses_each_broken_line();
    test_proxy_head_reasons_keep_their_order();
    return tap_done();
}
