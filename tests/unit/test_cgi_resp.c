#include "first.h"
#include "cgi_resp.h"

/* test_cgi_resp.c: the CGI/FastCGI response-header parser. Rules one by one
 * (RFC 3875 §6, response splitting, caps), then every split of several
 * blocks must give the same result and leave the body bytes untouched. */

#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SIZE 8192
#define MAX_HDRS 100
#define S(lit) lit, PT_SLEN(lit)

static size_t consume_violations; /* MORE that did not take a whole piece */

/* Feed in[0..len) cut at cuts[] (sorted, inside (0,len)); stops at DONE or
 * ERROR. *total = bytes of in that belonged to the header block. */
static int run(pt_cgi_resp *r, const char *in, size_t len, const size_t *cuts, size_t ncuts,
               size_t *total)
{
    size_t start = 0;
    int rc = PT_CGI_RESP_MORE;

    *total = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t used = 12345;

        rc = pt_cgi_resp_feed(r, in + start, end - start, &used);
        if (rc == PT_CGI_RESP_DONE) {
            *total = start + used;
            break;
        }
        if (rc == PT_CGI_RESP_ERROR)
            break;
        if (used != end - start)
            consume_violations++;
        start = end;
    }
    return rc;
}

static int parse_lim(pt_cgi_resp *r, const char *in, size_t len, size_t max_size, size_t max_hdrs,
                     size_t *total)
{
    pt_cgi_resp_init(r, max_size, max_hdrs);
    return run(r, in, len, NULL, 0, total);
}

static int parse(pt_cgi_resp *r, const char *in, size_t len)
{
    size_t total;
    return parse_lim(r, in, len, MAX_SIZE, MAX_HDRS, &total);
}

/* Everything the caller can observe, as one string (malloc'd). */
static char *describe(const pt_cgi_resp *r, int rc, size_t total)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);

    fprintf(f, "rc=%d", rc);
    if (rc == PT_CGI_RESP_ERROR) {
        fprintf(f, " err=%s", r->error);
    } else if (rc == PT_CGI_RESP_DONE) {
        fprintf(f, " total=%zu status=%d has_status=%d reason=[%s] ct=%d cl=%lld nb=%d lr=%d",
                total, r->status, r->has_status, r->reason, r->has_content_type,
                (long long)r->content_length, r->no_buffering, r->local_redirect);
        if (r->location.p)
            fprintf(f, " loc=[%.*s]", (int)r->location.len, r->location.p);
        for (size_t i = 0; i < r->nhdrs; i++) {
            pt_str nm = pt_cgi_hdr_name(r, i), v = pt_cgi_hdr_value(r, i);
            fprintf(f, "\n%.*s=[%.*s]", (int)nm.len, nm.p, (int)v.len, v.p);
        }
    }
    fclose(f);
    return out;
}

static bool hdr_is(const pt_cgi_resp *r, size_t i, const char *name, const char *value)
{
    if (i >= r->nhdrs)
        return false;
    pt_str nm = pt_cgi_hdr_name(r, i), v = pt_cgi_hdr_value(r, i);
    return nm.len == strlen(name) && memcmp(nm.p, name, nm.len) == 0 && v.len == strlen(value) &&
           memcmp(v.p, value, v.len) == 0;
}

static bool loc_is(const pt_cgi_resp *r, const char *s)
{
    return r->location.p && r->location.len == strlen(s) &&
           memcmp(r->location.p, s, r->location.len) == 0;
}

/* Parse a whole block; true when it fails with exactly this reason. */
static bool fails_with(const char *in, size_t len, const char *why)
{
    pt_cgi_resp r;
    int rc = parse(&r, in, len);
    bool res = rc == PT_CGI_RESP_ERROR && r.error && strcmp(r.error, why) == 0;

    if (!res)
        printf("# got rc=%d error=%s\n", rc, r.error ? r.error : "(none)");
    pt_cgi_resp_free(&r);
    return res;
}

/* Parse a whole block; the status it ends with, or -1. */
static int status_of(const char *in, size_t len)
{
    pt_cgi_resp r;
    int st = parse(&r, in, len) == PT_CGI_RESP_DONE ? r.status : -1;

    pt_cgi_resp_free(&r);
    return st;
}

/* Every split into two and three pieces and byte by byte must describe the
 * same result as feeding the whole input at once. */
static void check_splits(const char *name, const char *in, size_t len, size_t max_size,
                         size_t max_hdrs, int want_rc)
{
    pt_cgi_resp r;
    size_t total, bad2 = 0, bad3 = 0, runs3 = 0;
    int rc = parse_lim(&r, in, len, max_size, max_hdrs, &total);
    char *ref = describe(&r, rc, total);
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));

    ok(rc == want_rc, "%s: whole input gives %s", name,
       want_rc == PT_CGI_RESP_DONE ? "DONE" : "ERROR");
    pt_cgi_resp_free(&r);
    for (size_t k = 0; k <= len; k++) {
        pt_cgi_resp_init(&r, max_size, max_hdrs);
        rc = run(&r, in, len, &k, 1, &total);
        char *d = describe(&r, rc, total);
        bad2 += strcmp(d, ref) != 0;
        free(d);
        pt_cgi_resp_free(&r);
    }
    ok(bad2 == 0, "%s: all %zu two-piece splits give the same result", name, len + 1);

    for (size_t i = 1; i < len; i++) {
        for (size_t j = i + 1; j < len; j++) {
            size_t c2[2] = {i, j};
            pt_cgi_resp_init(&r, max_size, max_hdrs);
            rc = run(&r, in, len, c2, 2, &total);
            char *d = describe(&r, rc, total);
            bad3 += strcmp(d, ref) != 0;
            runs3++;
            free(d);
            pt_cgi_resp_free(&r);
        }
    }
    ok(bad3 == 0, "%s: all %zu three-piece splits give the same result", name, runs3);

    for (size_t k = 0; k + 1 < len; k++)
        cuts[k] = k + 1;
    pt_cgi_resp_init(&r, max_size, max_hdrs);
    rc = run(&r, in, len, cuts, len ? len - 1 : 0, &total);
    char *d = describe(&r, rc, total);
    ok(strcmp(d, ref) == 0, "%s: byte by byte gives the same result", name);
    free(d);
    pt_cgi_resp_free(&r);
    free(cuts);
    free(ref);
}

/* A block followed by body bytes: consumed stops right after the blank line
 * in every split, and the body is left for the caller. */
static void check_body_boundary(const char *name, const char *in, size_t len, size_t hdr_len)
{
    size_t wrong = 0;

    for (size_t k = 0; k <= len; k++) {
        pt_cgi_resp r;
        size_t total;

        pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
        if (run(&r, in, len, &k, 1, &total) != PT_CGI_RESP_DONE || total != hdr_len ||
            r.len != hdr_len)
            wrong++;
        pt_cgi_resp_free(&r);
    }
    ok(wrong == 0, "%s: every split stops exactly at byte %zu, body untouched", name, hdr_len);
}

static void test_basics(void)
{
    pt_cgi_resp r;
    size_t used;
    static const char crlf[] = "Content-Type: text/html\r\nX-Powered-By: sh\r\n\r\n";

    int rc = parse(&r, S(crlf));
    ok(rc == PT_CGI_RESP_DONE, "CRLF document response is DONE");
    ok(r.status == 200 && !r.has_status && r.reason[0] == '\0',
       "no Status and no Location gives 200 with an empty reason");
    ok(r.has_content_type, "Content-Type is noticed");
    ok(r.nhdrs == 2 && hdr_is(&r, 0, "Content-Type", "text/html") &&
           hdr_is(&r, 1, "X-Powered-By", "sh"),
       "headers kept in order with name and value");
    ok(r.content_length == -1 && r.location.p == NULL && !r.local_redirect && !r.no_buffering,
       "absent Content-Length is -1, no Location, no redirect, buffering on");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Content-Type: text/plain\nX-A: 1\n\n"));
    ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 2 && hdr_is(&r, 1, "X-A", "1"),
       "LF-only lines are accepted (RFC 3875 §6.2)");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Content-Type: text/plain\r\nX-A: 1\nX-B: 2\r\n\n"));
    ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 3 && hdr_is(&r, 2, "X-B", "2"),
       "mixed CRLF and LF lines are accepted");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_feed(&r, S("Content-Type: a/b\r\n\r\nBODY\r\n\r\nX: y\r\n"), &used);
    ok(rc == PT_CGI_RESP_DONE && used == PT_SLEN("Content-Type: a/b\r\n\r\n"),
       "consumed ends at the blank line; body bytes are not taken");
    ok(r.nhdrs == 1, "header-like lines in the body are not parsed");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("content-TYPE: text/x\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.has_content_type && hdr_is(&r, 0, "content-TYPE", "text/x"),
       "names are recognised case-insensitively and kept as written");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("X-A: \t v a l \t\r\nX-Empty:\r\nX-Ws: \t \r\nX-Tab: a\tb\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && hdr_is(&r, 0, "X-A", "v a l"),
       "values are trimmed of surrounding SP/HT, inner spaces kept");
    ok(hdr_is(&r, 1, "X-Empty", "") && hdr_is(&r, 2, "X-Ws", ""),
       "empty and all-whitespace values are kept as empty");
    ok(hdr_is(&r, 3, "X-Tab", "a\tb"), "HT inside a value is allowed");
    ok(!r.has_content_type && r.status == 200, "no Content-Type: has_content_type stays false");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Set-Cookie: a=1\r\nContent-Type: text/html\r\nSet-Cookie: b=2; Path=/\r\n"
                     "Set-Cookie: a=1\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 4 && hdr_is(&r, 0, "Set-Cookie", "a=1") &&
           hdr_is(&r, 2, "Set-Cookie", "b=2; Path=/") && hdr_is(&r, 3, "Set-Cookie", "a=1"),
       "repeated Set-Cookie are all kept, in order, even identical ones");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("X-Fancy: caf\xc3\xa9 \xff\x80\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && hdr_is(&r, 0, "X-Fancy", "caf\xc3\xa9 \xff\x80"),
       "obs-text (bytes >= 0x80) in values passes byte-exact");
    pt_cgi_resp_free(&r);
}

static void test_status(void)
{
    pt_cgi_resp r;
    int rc;

    rc = parse(&r, S("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 404 && r.has_status, "Status with reason sets 404");
    ok(strcmp(r.reason, "Not Found") == 0, "reason phrase is kept");
    ok(r.nhdrs == 1 && hdr_is(&r, 0, "Content-Type", "text/plain"),
       "Status itself is not passed on");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Status: 201\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 201 && r.has_status && r.reason[0] == '\0',
       "Status without reason gives an empty reason");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("sTaTuS:   503   Busy now \r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 503 && strcmp(r.reason, "Busy now") == 0,
       "Status name is case-insensitive; extra spaces around the reason trimmed");
    pt_cgi_resp_free(&r);

    char longst[200] = "Status: 500 ";
    size_t n = strlen(longst);
    memset(longst + n, 'R', 100);
    memcpy(longst + n + 100, "\r\n\r\n", 4);
    rc = parse(&r, longst, n + 104);
    ok(rc == PT_CGI_RESP_DONE && r.status == 500 && strlen(r.reason) == sizeof(r.reason) - 1,
       "a reason longer than 63 bytes is truncated and NUL-terminated");
    pt_cgi_resp_free(&r);

    ok(status_of(S("Status: 100\r\n\r\n")) == 100, "Status: 100 is the lowest accepted");
    ok(status_of(S("Status: 599 X\r\n\r\n")) == 599, "Status: 599 is the highest accepted");
    ok(fails_with(S("Status: 99\r\n\r\n"), "invalid Status"),
       "Status: 99 (two digits) is an error");
    ok(fails_with(S("Status: 099\r\n\r\n"), "invalid Status"), "Status: 099 (< 100) is an error");
    ok(fails_with(S("Status: 600\r\n\r\n"), "invalid Status"), "Status: 600 is an error");
    ok(fails_with(S("Status: abc\r\n\r\n"), "invalid Status"), "Status: abc is an error");
    ok(fails_with(S("Status: 200x\r\n\r\n"), "invalid Status"), "Status: 200x is an error");
    ok(fails_with(S("Status: 2000\r\n\r\n"), "invalid Status"), "Status: 2000 is an error");
    ok(fails_with(S("Status: -200\r\n\r\n"), "invalid Status"), "Status: -200 is an error");
    ok(fails_with(S("Status:\r\n\r\n"), "invalid Status"), "empty Status is an error");
    ok(fails_with(S("Status: 200\tOK\r\n\r\n"), "invalid Status"),
       "Status code and reason must be separated by SP");
    ok(fails_with(S("Status: 200 OK\r\nStatus: 404 Nope\r\n\r\n"), "duplicate Status"),
       "a second Status is an error");
}

/* Parse a whole block in status-line mode (uwsgi): rc, r left to free. */
static int parse_sl(pt_cgi_resp *r, const char *in, size_t len)
{
    size_t total;
    pt_cgi_resp_init(r, MAX_SIZE, MAX_HDRS);
    r->status_line = true;
    return run(r, in, len, NULL, 0, &total);
}

static bool sl_fails_with(const char *in, size_t len, const char *why)
{
    pt_cgi_resp r;
    int rc = parse_sl(&r, in, len);
    bool res = rc == PT_CGI_RESP_ERROR && r.error && strcmp(r.error, why) == 0;
    if (!res)
        printf("# got rc=%d error=%s\n", rc, r.error ? r.error : "(none)");
    pt_cgi_resp_free(&r);
    return res;
}

static void test_status_line_mode(void)
{
    pt_cgi_resp r;
    int rc;

    rc = parse_sl(&r, S("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                        "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nbody"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 404 && r.has_status &&
           strcmp(r.reason, "Not Found") == 0,
       "status line mode: the status and reason come from the HTTP status line");
    ok(r.nhdrs == 3 && hdr_is(&r, 1, "Set-Cookie", "a=1") && hdr_is(&r, 2, "Set-Cookie", "b=2"),
       "status line mode: the header fields after it are kept, repeats too");
    pt_cgi_resp_free(&r);

    rc = parse_sl(&r, S("HTTP/1.0 204 No Content\n\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 204 && r.nhdrs == 0,
       "status line mode: a status line alone is a complete block");
    pt_cgi_resp_free(&r);

    rc = parse_sl(&r, S("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 302 && !r.local_redirect,
       "status line mode: a Location with a status line is no local redirect");
    pt_cgi_resp_free(&r);

    ok(sl_fails_with(S("Content-Type: text/plain\r\n\r\n"), "invalid status line"),
       "status line mode: a block without the status line is an error");
    ok(sl_fails_with(S("HTTP/2 200 OK\r\n\r\n"), "invalid status line"),
       "status line mode: only HTTP/1.x");
    ok(sl_fails_with(S("HTTP/1.1 2000 OK\r\n\r\n"), "invalid Status"),
       "status line mode: a four-digit code is an error");
    ok(sl_fails_with(S("HTTP/1.1 200 O\x01K\r\n\r\n"), "invalid character in status line"),
       "status line mode: a CTL in the reason is an error (response splitting)");
    ok(sl_fails_with(S("HTTP/1.1 200 OK\r\nStatus: 404\r\n\r\n"), "duplicate Status"),
       "status line mode: a Status field as well is an error");
    ok(status_of(S("HTTP/1.1 200 OK\r\n\r\n")) == -1,
       "without the mode an HTTP status line is no header line");
}

static void test_location(void)
{
    pt_cgi_resp r;
    int rc;

    rc = parse(&r, S("Location: http://example.com/x?y=1\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 302 && !r.local_redirect,
       "absolute Location without Status: client redirect, 302");
    ok(loc_is(&r, "http://example.com/x?y=1") && r.nhdrs == 1 &&
           hdr_is(&r, 0, "Location", "http://example.com/x?y=1"),
       "Location value is exposed and passed on");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Location: //other.example/x\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 302 && !r.local_redirect,
       "network-path Location (//host) is a client redirect, not local");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Location: /local/page?q=1\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.local_redirect && loc_is(&r, "/local/page?q=1"),
       "Location: /path alone is a local redirect (RFC 3875 §6.2.2)");
    ok(r.status == 302, "local redirect still carries a sane status (302)");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Location: /local\r\nContent-Type: text/html\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && !r.local_redirect && r.status == 302,
       "Location: /path with Content-Type is not a local redirect");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Status: 301 Moved\r\nLocation: /new\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && !r.local_redirect && r.status == 301,
       "Location: /path with Status is not local; the Status is kept");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Location: https://e.example/\r\nStatus: 303 See Other\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 303 && strcmp(r.reason, "See Other") == 0,
       "absolute Location with Status keeps the Status");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Location: other.html\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.status == 302 && !r.local_redirect,
       "relative Location without Status is a client redirect too (302)");
    pt_cgi_resp_free(&r);

    ok(fails_with(S("Location: /a\r\nLocation: /b\r\n\r\n"), "duplicate Location"),
       "two Location headers are an error");
    ok(fails_with(S("Location:  \r\n\r\n"), "empty Location"), "empty Location is an error");

    /* location must follow the buffer when it grows */
    char big[3000];
    size_t n = 0;
    n += (size_t)sprintf(big, "Location: /moved\r\nX-Pad: ");
    memset(big + n, 'p', 2500);
    n += 2500;
    memcpy(big + n, "\r\n\r\n", 4);
    n += 4;
    rc = parse(&r, big, n);
    ok(rc == PT_CGI_RESP_DONE && loc_is(&r, "/moved") && r.location.p >= r.buf &&
           r.location.p < r.buf + r.len,
       "location still points into buf after the buffer grew");
    pt_cgi_resp_free(&r);
}

static void test_content_length(void)
{
    pt_cgi_resp r;
    int rc;

    rc = parse(&r, S("Content-Type: a/b\r\nContent-Length: 42\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.content_length == 42, "Content-Length is parsed");
    ok(r.nhdrs == 1 && hdr_is(&r, 0, "Content-Type", "a/b"), "Content-Length is not passed on");
    pt_cgi_resp_free(&r);

    ok(fails_with(S("Content-Length: 7\r\ncontent-length: 7\r\n\r\n"), "duplicate Content-Length"),
       "duplicate Content-Length, even with the same value, is an error");

    rc = parse(&r, S("Content-Length: 0\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.content_length == 0, "Content-Length: 0 is valid");
    pt_cgi_resp_free(&r);

    rc = parse(&r, S("Content-Length: 9223372036854775807\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.content_length == INT64_MAX, "INT64_MAX Content-Length is ok");
    pt_cgi_resp_free(&r);

    ok(fails_with(S("Content-Length: 7\r\nContent-Length: 8\r\n\r\n"),
                  "conflicting Content-Length"),
       "duplicate Content-Length with different values is an error");
    ok(fails_with(S("Content-Length: 9223372036854775808\r\n\r\n"), "invalid Content-Length"),
       "Content-Length above INT64_MAX is an error");
    ok(fails_with(S("Content-Length: 99999999999999999999999\r\n\r\n"), "invalid Content-Length"),
       "Content-Length that overflows 64 bits is an error");
    ok(fails_with(S("Content-Length: +5\r\n\r\n"), "invalid Content-Length"),
       "Content-Length with a + sign is an error");
    ok(fails_with(S("Content-Length: -5\r\n\r\n"), "invalid Content-Length"),
       "negative Content-Length is an error");
    ok(fails_with(S("Content-Length: 5a\r\n\r\n"), "invalid Content-Length"),
       "Content-Length with trailing junk is an error");
    ok(fails_with(S("Content-Length: 5, 5\r\n\r\n"), "invalid Content-Length"),
       "Content-Length list is an error");
    ok(fails_with(S("Content-Length:\r\n\r\n"), "invalid Content-Length"),
       "empty Content-Length is an error");
}

static void test_dropped(void)
{
    static const char *const names[] = {
        "Connection: close", "Keep-Alive: timeout=5", "TRANSFER-ENCODING: chunked", "TE: trailers",
        "Trailer: X-T",      "upgrade: websocket",    "Proxy-Connection: x",        "Date: today",
        "Server: evil/1.0",  "X-Accel-Buffering: no",
    };

    for (size_t i = 0; i < PT_ARRAY_LEN(names); i++) {
        char block[128];
        pt_cgi_resp r;
        int n = snprintf(block, sizeof(block), "X-Before: 1\r\n%s\r\nX-After: 2\r\n\r\n", names[i]);
        int rc = parse(&r, block, (size_t)n);

        ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 2 && hdr_is(&r, 0, "X-Before", "1") &&
               hdr_is(&r, 1, "X-After", "2"),
           "\"%s\" is not passed on", names[i]);
        pt_cgi_resp_free(&r);
    }

    pt_cgi_resp r;
    int rc = parse(&r, S("X-Accel-Buffering: no\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.no_buffering, "X-Accel-Buffering: no turns buffering off");
    pt_cgi_resp_free(&r);
    rc = parse(&r, S("x-accel-buffering: NO\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.no_buffering, "X-Accel-Buffering name and value ignore case");
    pt_cgi_resp_free(&r);
    rc = parse(&r, S("X-Accel-Buffering: yes\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && !r.no_buffering, "X-Accel-Buffering: yes keeps buffering");
    pt_cgi_resp_free(&r);
    rc = parse(&r, S("X-Accel-Buffering: no\r\nX-Accel-Buffering: yes\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && !r.no_buffering, "the last X-Accel-Buffering wins");
    pt_cgi_resp_free(&r);
}

/* X-Sendfile / X-Accel-Redirect name server paths: recorded for xsend.c,
 * never passed on; one per response. */
static void test_xsend(void)
{
    static const struct {
        const char *line;
        int kind;
        const char *value;
    } cases[] = {
        {"X-Sendfile: /srv/dl/a.iso", PT_XSEND_FILE, "/srv/dl/a.iso"},
        {"x-lighttpd-send-file:  /srv/b ", PT_XSEND_FILE, "/srv/b"},
        {"X-Accel-Redirect: /protected/a?x=1", PT_XSEND_URI, "/protected/a?x=1"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        char block[128];
        pt_cgi_resp r;
        int n = snprintf(block, sizeof(block), "X-Before: 1\r\n%s\r\nX-After: 2\r\n\r\n",
                         cases[i].line);
        int rc = parse(&r, block, (size_t)n);
        ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 2 && r.xsend_kind == cases[i].kind &&
               r.xsend_len == strlen(cases[i].value) &&
               memcmp(r.buf + r.xsend_off, cases[i].value, r.xsend_len) == 0,
           "\"%s\" is recorded and not passed on", cases[i].line);
        pt_cgi_resp_free(&r);
    }
    pt_cgi_resp r;
    int rc = parse(&r, S("Content-Type: a/b\r\n\r\n"));
    ok(rc == PT_CGI_RESP_DONE && r.xsend_kind == PT_XSEND_NONE, "no X-Sendfile: none recorded");
    pt_cgi_resp_free(&r);
    ok(fails_with(S("X-Sendfile: /a\r\nX-Accel-Redirect: /b\r\n\r\n"),
                  "duplicate X-Sendfile or X-Accel-Redirect"),
       "two of them are an error");
    ok(fails_with(S("X-Sendfile:\r\n\r\n"), "empty X-Sendfile or X-Accel-Redirect"),
       "an empty one is an error");
}

static void test_bad_lines(void)
{
    ok(fails_with(S("\r\nbody"), "no header"), "empty header block (CRLF) is \"no header\"");
    ok(fails_with(S("\nbody"), "no header"), "empty header block (LF) is \"no header\"");
    ok(fails_with(S("hello world\n\n"), "invalid header line"),
       "garbage first line (the lighttpd 200 case) is an error");
    ok(fails_with(S("<html><body>hi</body></html>\n"), "invalid header line"),
       "HTML without headers is an error");
    ok(fails_with(S("HTTP/1.1 200 OK\r\nContent-Type: a/b\r\n\r\n"), "invalid header line"),
       "a status line from a non-nph script is an error");
    ok(fails_with(S("Content-Type: a/b\r\njunk line\r\n\r\n"), "invalid header line"),
       "a later line without ':' is an error");
    ok(fails_with(S("Bad Name: x\r\n\r\n"), "invalid header name"),
       "space inside a field name is an error");
    ok(fails_with(S("X(A): x\r\n\r\n"), "invalid header name"), "non-tchar in a name is an error");
    ok(fails_with(S("X\xc3\xa9: x\r\n\r\n"), "invalid header name"),
       "obs-text in a name is an error");
    ok(fails_with(S(": x\r\n\r\n"), "empty header name"), "empty field name is an error");
    ok(fails_with(S("X-A : v\r\n\r\n"), "whitespace before colon"),
       "space between name and colon is an error");
    ok(fails_with(S("X-A\t: v\r\n\r\n"), "whitespace before colon"),
       "tab between name and colon is an error");
    ok(fails_with(S("X-A: v\r\n continued\r\n\r\n"),
                  "header line starts with whitespace (obs-fold)"),
       "obs-fold with SP is an error");
    ok(fails_with(S("X-A: v\n\tcontinued\n\n"), "header line starts with whitespace (obs-fold)"),
       "obs-fold with HT is an error");
    ok(fails_with(S(" X-A: v\r\n\r\n"), "header line starts with whitespace (obs-fold)"),
       "leading whitespace on the first line is an error");
}

static void test_splitting(void)
{
    ok(fails_with(S("X-A: v\rSet-Cookie: evil\r\n\r\n"), "bare CR in header block"),
       "bare CR inside a value is an error (response splitting)");
    ok(fails_with(S("X-A: v\r\r\n\r\n"), "bare CR in header block"), "CR CR LF is an error");
    ok(fails_with(S("X-A: v\r\n\r\r\n"), "bare CR in header block"),
       "a blank line of CR CR LF is an error");
    ok(fails_with(S("X-A\r: v\r\n\r\n"), "bare CR in header block"), "CR in a name is an error");
    ok(fails_with(S("X-A: a\0b\r\n\r\n"), "invalid character in header value"),
       "NUL in a value is an error");
    ok(fails_with(S("X-A: a\x01\r\n\r\n"), "invalid character in header value"),
       "SOH in a value is an error");
    ok(fails_with(S("X-A: \x1b[31m\r\n\r\n"), "invalid character in header value"),
       "ESC in a value is an error");
    ok(fails_with(S("X-A: a\x7f\r\n\r\n"), "invalid character in header value"),
       "DEL in a value is an error");
    ok(fails_with(S("X\0A: v\r\n\r\n"), "invalid header name"), "NUL in a name is an error");
    ok(fails_with(S("Location: /a\0\r\n\r\n"), "invalid character in header value"),
       "NUL in Location is an error");
}

static void test_limits(void)
{
    static const char blk[] = "Content-Type: text/html\r\nX-A: 1\r\n\r\n";
    static const char blk_body[] = "Content-Type: text/html\r\nX-A: 1\r\n\r\nbody bytes";
    pt_cgi_resp r;
    size_t total, used;
    int rc;

    rc = parse_lim(&r, S(blk), PT_SLEN(blk), MAX_HDRS, &total);
    ok(rc == PT_CGI_RESP_DONE && total == PT_SLEN(blk), "block of exactly max_size is accepted");
    ok(r.cap <= PT_SLEN(blk), "buffer never grows beyond max_size");
    pt_cgi_resp_free(&r);

    rc = parse_lim(&r, S(blk), PT_SLEN(blk) - 1, MAX_HDRS, &total);
    ok(rc == PT_CGI_RESP_ERROR && strcmp(r.error, "header block too large") == 0,
       "block one byte over max_size is an error");
    pt_cgi_resp_free(&r);

    rc = parse_lim(&r, S(blk_body), PT_SLEN(blk), MAX_HDRS, &total);
    ok(rc == PT_CGI_RESP_DONE && total == PT_SLEN(blk),
       "body bytes after the block do not count against max_size");
    pt_cgi_resp_free(&r);

    /* a line that never ends is refused once it passes the cap */
    pt_cgi_resp_init(&r, 100, MAX_HDRS);
    char a[60];
    memset(a, 'a', sizeof(a));
    rc = pt_cgi_resp_feed(&r, a, sizeof(a), &used);
    ok(rc == PT_CGI_RESP_MORE && used == sizeof(a), "an unfinished line under the cap waits");
    rc = pt_cgi_resp_feed(&r, a, sizeof(a), &used);
    ok(rc == PT_CGI_RESP_ERROR && strcmp(r.error, "header block too large") == 0 && r.len <= 100,
       "an endless line fails as soon as it passes max_size, without an LF");
    pt_cgi_resp_free(&r);

    static const char three[] = "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n";
    static const char four[] = "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\n\r\n";
    static const char four_dropped[] = "X-A: 1\r\nDate: x\r\nServer: y\r\nStatus: 200\r\n\r\n";
    rc = parse_lim(&r, S(three), MAX_SIZE, 3, &total);
    ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 3, "exactly max_hdrs header lines are accepted");
    pt_cgi_resp_free(&r);
    rc = parse_lim(&r, S(four), MAX_SIZE, 3, &total);
    ok(rc == PT_CGI_RESP_ERROR && strcmp(r.error, "too many header lines") == 0,
       "one line over max_hdrs is an error");
    pt_cgi_resp_free(&r);
    rc = parse_lim(&r, S(four_dropped), MAX_SIZE, 3, &total);
    ok(rc == PT_CGI_RESP_ERROR && strcmp(r.error, "too many header lines") == 0,
       "dropped lines (Date, Server, Status) count against max_hdrs too");
    pt_cgi_resp_free(&r);

    /* many kept headers: the hdrs array grows past its first allocation */
    char *many = malloc(200 * 16 + 8);
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(many + n, "X-H%03d: v%03d\r\n", i, i);
    n += (size_t)sprintf(many + n, "\r\n");
    rc = parse_lim(&r, many, n, 65536, 200, &total);
    ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 200 && hdr_is(&r, 0, "X-H000", "v000") &&
           hdr_is(&r, 199, "X-H199", "v199"),
       "200 headers with max_hdrs 200 are all kept in order");
    pt_cgi_resp_free(&r);
    free(many);

    /* one very long header within the cap */
    size_t vlen = 60000;
    char *huge = malloc(vlen + 64);
    n = (size_t)sprintf(huge, "Set-Cookie: ");
    for (size_t i = 0; i < vlen; i++)
        huge[n + i] = (char)('a' + i % 26);
    n += vlen;
    n += (size_t)sprintf(huge + n, "\r\n\r\n");
    rc = parse_lim(&r, huge, n, 65536, MAX_HDRS, &total);
    ok(rc == PT_CGI_RESP_DONE && r.nhdrs == 1 && pt_cgi_hdr_value(&r, 0).len == vlen &&
           memcmp(pt_cgi_hdr_value(&r, 0).p, huge + 12, vlen) == 0,
       "a 60000-byte header within a 64 KiB cap is kept intact");
    pt_cgi_resp_free(&r);
    size_t *cuts = malloc(n * sizeof(*cuts));
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    pt_cgi_resp_init(&r, 65536, MAX_HDRS);
    rc = run(&r, huge, n, cuts, n - 1, &total);
    ok(rc == PT_CGI_RESP_DONE && total == n && pt_cgi_hdr_value(&r, 0).len == vlen,
       "the 60000-byte header fed byte by byte gives the same header");
    pt_cgi_resp_free(&r);
    free(cuts);
    rc = parse_lim(&r, huge, n, n - 1, MAX_HDRS, &total);
    ok(rc == PT_CGI_RESP_ERROR, "the same header with the cap one byte short is an error");
    pt_cgi_resp_free(&r);
    free(huge);

    rc = parse_lim(&r, S(blk), 0, MAX_HDRS, &total);
    ok(rc == PT_CGI_RESP_ERROR && strcmp(r.error, "header block too large") == 0,
       "max_size 0 refuses any output");
    pt_cgi_resp_free(&r);
}

static void test_eof_and_sticky(void)
{
    pt_cgi_resp r;
    size_t used;
    int rc;

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_eof(&r);
    ok(rc == PT_CGI_RESP_ERROR && strcmp(r.error, "no output") == 0,
       "eof before any byte is \"no output\"");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_feed(&r, S("Content-Type: text/html\r\n"), &used);
    ok(rc == PT_CGI_RESP_MORE && used == PT_SLEN("Content-Type: text/html\r\n"),
       "a header without the blank line wants more");
    rc = pt_cgi_resp_eof(&r);
    ok(rc == PT_CGI_RESP_ERROR &&
           strcmp(r.error, "script output ended inside the header block") == 0,
       "eof after complete lines but no blank line is an error");
    rc = pt_cgi_resp_feed(&r, S("\r\n"), &used);
    ok(rc == PT_CGI_RESP_ERROR && used == 0, "feed after an error stays ERROR and consumes 0");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_feed(&r, S("Content-Ty"), &used);
    rc = pt_cgi_resp_eof(&r);
    ok(rc == PT_CGI_RESP_ERROR &&
           strcmp(r.error, "script output ended inside the header block") == 0,
       "eof in the middle of a line is an error");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_feed(&r, S("Content-Type: a/b\r\n\r"), &used);
    ok(rc == PT_CGI_RESP_MORE, "CR of the blank line alone waits for LF");
    rc = pt_cgi_resp_eof(&r);
    ok(rc == PT_CGI_RESP_ERROR, "eof between CR and LF of the blank line is an error");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_feed(&r, "", 0, &used);
    ok(rc == PT_CGI_RESP_MORE && used == 0, "an empty feed is harmless");
    rc = pt_cgi_resp_feed(&r, S("Status: 204\n\nXYZ"), &used);
    ok(rc == PT_CGI_RESP_DONE && used == PT_SLEN("Status: 204\n\n"), "then the block completes");
    rc = pt_cgi_resp_feed(&r, S("X-Late: 1\r\n\r\n"), &used);
    ok(rc == PT_CGI_RESP_DONE && used == 0 && r.nhdrs == 0 && r.status == 204,
       "feed after DONE stays DONE, consumes 0 and changes nothing");
    ok(pt_cgi_resp_eof(&r) == PT_CGI_RESP_DONE, "eof after DONE is DONE");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    rc = pt_cgi_resp_feed(&r, S("bad line\n"), &used);
    const char *err = r.error;
    ok(rc == PT_CGI_RESP_ERROR && pt_cgi_resp_feed(&r, S("X: y\n\n"), &used) == PT_CGI_RESP_ERROR &&
           r.error == err && pt_cgi_resp_eof(&r) == PT_CGI_RESP_ERROR && r.error == err,
       "after ERROR both feed and eof keep the first error");
    pt_cgi_resp_free(&r);

    pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
    pt_cgi_resp_free(&r);
    pt_cgi_resp_free(&r);
    ok(r.buf == NULL && r.hdrs == NULL, "free on an unused parser, twice, is safe");

    rc = parse(&r, S("Content-Type: a/b\r\nX: 1\r\n\r\n"));
    pt_cgi_resp_free(&r);
    pt_cgi_resp_free(&r);
    ok(rc == PT_CGI_RESP_DONE && r.buf == NULL && r.hdrs == NULL && r.nhdrs == 0,
       "free after use, twice, is safe and clears the pointers");
}

static void test_split_matrix(void)
{
    static const char doc[] = "Status: 404 Not Found\r\nContent-Type: text/html; charset=utf-8\r\n"
                              "Set-Cookie: a=1\r\nContent-Length: 12\r\nSet-Cookie: b=2\r\n"
                              "X-Accel-Buffering: no\r\nConnection: close\r\n\r\nHello world!";
    static const char lf[] = "Location: /go/here?x=1\nX-Obs: \xe2\x82\xac\n\nbody\n";
    static const char mixed[] =
        "Content-Type: text/plain\nLocation: http://h.example/\r\nX-Tab:\tv\t\r\n\nrest";
    static const char bad_cr[] = "Content-Type: a/b\r\nX-A: v\rX-Injected: 1\r\n\r\n";
    static const char bad_nul[] = "Content-Type: a/b\r\nX-A: v\0w\r\n\r\n";
    static const char bad_cl[] =
        "Content-Length: 5\r\nContent-Type: a/b\r\nContent-Length: 6\r\n\r\n";
    static const char garbage[] = "hello world\r\nContent-Type: a/b\r\n\r\n";

    check_splits("document response", S(doc), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_DONE);
    check_body_boundary("document response", S(doc), PT_SLEN(doc) - PT_SLEN("Hello world!"));
    check_splits("LF local redirect", S(lf), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_DONE);
    check_body_boundary("LF local redirect", S(lf), PT_SLEN(lf) - PT_SLEN("body\n"));
    check_splits("mixed line ends", S(mixed), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_DONE);
    check_body_boundary("mixed line ends", S(mixed), PT_SLEN(mixed) - PT_SLEN("rest"));
    check_splits("bare CR", S(bad_cr), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_ERROR);
    check_splits("NUL in value", S(bad_nul), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_ERROR);
    check_splits("conflicting Content-Length", S(bad_cl), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_ERROR);
    check_splits("garbage first line", S(garbage), MAX_SIZE, MAX_HDRS, PT_CGI_RESP_ERROR);
    /* the cap is hit at the same verdict wherever the input is cut */
    check_splits("exactly max_size", S(doc), PT_SLEN(doc) - PT_SLEN("Hello world!"), MAX_HDRS,
                 PT_CGI_RESP_DONE);
    check_splits("one over max_size", S(doc), PT_SLEN(doc) - PT_SLEN("Hello world!") - 1, MAX_HDRS,
                 PT_CGI_RESP_ERROR);

    /* and the reference results are the expected ones */
    pt_cgi_resp r;
    int rc = parse(&r, S(doc));
    ok(rc == PT_CGI_RESP_DONE && r.status == 404 && r.content_length == 12 && r.no_buffering &&
           r.nhdrs == 3 && hdr_is(&r, 1, "Set-Cookie", "a=1") && hdr_is(&r, 2, "Set-Cookie", "b=2"),
       "document response: 404, length 12, unbuffered, three headers kept");
    pt_cgi_resp_free(&r);
    rc = parse(&r, S(lf));
    ok(rc == PT_CGI_RESP_DONE && r.local_redirect && hdr_is(&r, 1, "X-Obs", "\xe2\x82\xac"),
       "LF block: local redirect with an obs-text header");
    pt_cgi_resp_free(&r);
    rc = parse(&r, S(mixed));
    ok(rc == PT_CGI_RESP_DONE && r.status == 302 && !r.local_redirect &&
           hdr_is(&r, 2, "X-Tab", "v"),
       "mixed block: client redirect, tabs trimmed");
    pt_cgi_resp_free(&r);

    ok(consume_violations == 0, "MORE always consumed the whole piece");
}

/* A head given part by part (pt_cgi_resp_status/_field/_end, the HTTP
 * proxy's way: it parsed the head itself) must come out exactly as the
 * same head fed as bytes in status line mode: one parser, two doors. */
static void test_parsed_head(void)
{
    static const struct {
        const char *line;
        const char *fields[8][2];
    } cases[] = {
        {"HTTP/1.1 200 OK",
         {{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"set-cookie", "b=2"}}},
        {"HTTP/1.1 302 Found", {{"Location", "/x"}, {"Date", "now"}, {"Server", "up"}}},
        {"HTTP/1.0 404 Not Found",
         {{"Content-Length", "12"}, {"X-Accel-Buffering", "no"}, {"Keep-Alive", "5"}}},
        {"HTTP/1.1 200 OK", {{"X-Accel-Redirect", "/int/f"}, {"ETag", "\"e\""}}},
        {"HTTP/1.1 200 OK", {{"X-Sendfile", "/f"}, {"Proxy-Connection", "x"}, {"Via", "1.1 p"}}},
        {"HTTP/1.1 200 OK", {{"Content-Length", "1"}, {"content-length", "1"}}},
        {"HTTP/1.1 200 OK", {{"Status", "201"}}},
        {"HTTP/1.1 200 OK", {{"X-Bad", "a\x01b"}}},
        {"HTTP/1.1 200 OK", {{"Bad Name", "v"}}},
        {"HTTP/1.1 200 OK", {{"Location", "/a"}, {"Location", "/b"}}},
        {"HTTP/1.1 2000 OK", {{"A", "b"}}},
    };
    for (size_t k = 0; k < PT_ARRAY_LEN(cases); k++) {
        char bytes[1024];
        size_t n = (size_t)snprintf(bytes, sizeof(bytes), "%s\r\n", cases[k].line);
        pt_cgi_resp a, b;
        pt_cgi_resp_init(&b, MAX_SIZE, MAX_HDRS);
        b.status_line = true;
        int rb = pt_cgi_resp_status(&b, cases[k].line, strlen(cases[k].line));
        for (size_t i = 0; i < 8 && cases[k].fields[i][0]; i++) {
            const char *nm = cases[k].fields[i][0], *v = cases[k].fields[i][1];
            n += (size_t)snprintf(bytes + n, sizeof(bytes) - n, "%s: %s\r\n", nm, v);
            if (rb != PT_CGI_RESP_ERROR)
                rb = pt_cgi_resp_field(&b, nm, strlen(nm), v, strlen(v));
        }
        if (rb != PT_CGI_RESP_ERROR)
            rb = pt_cgi_resp_end(&b);
        n += (size_t)snprintf(bytes + n, sizeof(bytes) - n, "\r\n");
        pt_cgi_resp_init(&a, MAX_SIZE, MAX_HDRS);
        a.status_line = true;
        size_t total;
        int ra = run(&a, bytes, n, NULL, 0, &total);
        char *da = describe(&a, ra, 0), *db = describe(&b, rb, 0);
        ok(strcmp(da, db) == 0, "parsed head %zu (%s) as fed bytes", k, cases[k].line);
        /* the same fields as lines in a buffer, name and value apart by
         * ":" and some whitespace (line_checked: checked fields only) */
        bool checkable = true;
        for (size_t i = 0; i < 8 && cases[k].fields[i][0]; i++)
            for (const char *q = cases[k].fields[i][1]; *q; q++)
                checkable &= (unsigned char)*q >= 0x20 && *q != 0x7f;
        for (size_t i = 0; i < 8 && cases[k].fields[i][0]; i++)
            checkable &= !strchr(cases[k].fields[i][0], ' ');
        if (checkable) {
            pt_cgi_resp c;
            pt_cgi_resp_init(&c, MAX_SIZE, MAX_HDRS);
            c.status_line = true;
            int rc = pt_cgi_resp_status(&c, cases[k].line, strlen(cases[k].line));
            for (size_t i = 0; i < 8 && cases[k].fields[i][0]; i++) {
                const char *nm = cases[k].fields[i][0], *v = cases[k].fields[i][1];
                char line[128];
                int gap = 1 + (int)(i % 3); /* ":", ": ", ":  " */
                int len = snprintf(line, sizeof(line), "%s:%*s%s", nm, gap - 1, "", v);
                if (rc != PT_CGI_RESP_ERROR)
                    rc = pt_cgi_resp_line_checked(&c, line, strlen(nm), strlen(nm) + (size_t)gap,
                                                  (size_t)len - strlen(nm) - (size_t)gap);
                memset(line, '#', sizeof(line)); /* the parser kept its own copy */
            }
            if (rc != PT_CGI_RESP_ERROR)
                rc = pt_cgi_resp_end(&c);
            char *dc = describe(&c, rc, 0);
            ok(strcmp(da, dc) == 0, "head %zu (%s) from lines in place as fed bytes", k,
               cases[k].line);
            if (strcmp(da, dc) != 0)
                printf("# fed:\n# %s\n# in place:\n# %s\n", da, dc);
            free(dc);
            pt_cgi_resp_free(&c);
        }
        if (strcmp(da, db) != 0)
            printf("# fed:\n# %s\n# parsed:\n# %s\n", da, db);
        free(da);
        free(db);
        pt_cgi_resp_free(&a);
        /* reset: empty again for the next answer (an interim one was skipped) */
        pt_cgi_resp_reset(&b);
        ok(b.nhdrs == 0 && b.state == PT_CGI_RESP_MORE && b.status_line && b.max_hdrs == MAX_HDRS,
           "reset after parsed head %zu", k);
        pt_cgi_resp_free(&b);
    }
}

/* The value check looks at eight bytes at once: a CTL or DEL at every
 * position of values around that width is still found, and HT and
 * obs-text (0x80-0xff) at every position still pass. */
static void test_ctl_every_position(void)
{
    static const unsigned char bad[] = {0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x7f};
    size_t missed = 0, refused = 0;
    for (size_t len = 1; len <= 24; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            char v[24];
            memset(v, 'a', sizeof(v));
            pt_cgi_resp r;
            for (size_t b = 0; b < sizeof(bad); b++) {
                v[pos] = (char)bad[b];
                pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
                pt_cgi_resp_status(&r, S("HTTP/1.1 200 OK"));
                if (pt_cgi_resp_field(&r, S("X-V"), v, len) != PT_CGI_RESP_ERROR)
                    missed++;
                pt_cgi_resp_free(&r);
            }
            const unsigned char good[] = {'\t', 0x80, 0xff, 0x20, 0x7e};
            for (size_t g = 0; g < sizeof(good); g++) {
                v[pos] = (char)good[g];
                pt_cgi_resp_init(&r, MAX_SIZE, MAX_HDRS);
                pt_cgi_resp_status(&r, S("HTTP/1.1 200 OK"));
                if (pt_cgi_resp_field(&r, S("X-V"), v, len) == PT_CGI_RESP_ERROR)
                    refused++;
                pt_cgi_resp_free(&r);
            }
        }
    }
    ok(missed == 0, "every CTL and DEL at every position is refused (%zu missed)", missed);
    ok(refused == 0, "HT, SP and obs-text at every position pass (%zu refused)", refused);
}

/* A finished response's blocks serve the next response: never past the
 * next one's own caps, never showing the last one's bytes. */
static void test_blocks_reused(void)
{
    static const char big[] = "Status: 200\r\nX-A: 0123456789012345678901234567890123456789\r\n"
                              "X-B: b\r\nX-C: c\r\n\r\n";
    static const char small[] = "X-D: d\r\n\r\n";
    pt_cgi_resp r;
    size_t total;
    for (int round = 0; round < 3; round++) {
        ok(parse(&r, big, PT_SLEN(big)) == PT_CGI_RESP_DONE && r.nhdrs == 3,
           "round %d: a response of three fields", round);
        pt_cgi_resp_free(&r);
        /* the kept 512-byte block is larger than this response's cap */
        ok(parse_lim(&r, big, PT_SLEN(big), 40, MAX_HDRS, &total) == PT_CGI_RESP_ERROR &&
               r.cap <= 40,
           "round %d: a 40-byte cap holds with a larger block kept", round);
        pt_cgi_resp_free(&r);
        ok(parse_lim(&r, big, PT_SLEN(big), MAX_SIZE, 2, &total) == PT_CGI_RESP_ERROR &&
               r.hdrs_cap <= 2,
           "round %d: a two-line cap holds with a larger table kept", round);
        pt_cgi_resp_free(&r);
        ok(parse(&r, small, PT_SLEN(small)) == PT_CGI_RESP_DONE && r.nhdrs == 1 &&
               pt_cgi_hdr_name(&r, 0).len == 3 && memcmp(pt_cgi_hdr_name(&r, 0).p, "X-D", 3) == 0 &&
               pt_cgi_hdr_value(&r, 0).len == 1 && pt_cgi_hdr_value(&r, 0).p[0] == 'd',
           "round %d: the next response sees its own field only", round);
        pt_cgi_resp_free(&r);
    }
}

int main(void)
{
    test_basics();
    test_status();
    test_status_line_mode();
    test_location();
    test_content_length();
    test_dropped();
    test_xsend();
    test_bad_lines();
    test_splitting();
    test_limits();
    test_eof_and_sticky();
    test_split_matrix();
    test_parsed_head();
    test_blocks_reused();
    test_ctl_every_position();
    return tap_done();
}
