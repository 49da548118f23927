/* test_resp.c: the response calls (resp.h) reach the connection's framer
 * and nothing else, so a handler works unchanged whatever the protocol
 * (HTTP/2 streams get their own framer); and the HTTP/1.1 framer frames
 * a body of unknown length as chunks (RFC 9112 §7.1). */
#include "first.h"
#include "conn.h"
#include "h1_resp.h"
#include "resp.h"

#include <stdarg.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"

/* A framer that writes down what it was asked, one line per call. */
static char rec[2048];

static void note(const char *fmt, ...) PT_PRINTF(1, 2);
static void note(const char *fmt, ...)
{
    size_t n = strlen(rec);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rec + n, sizeof(rec) - n, fmt, ap);
    va_end(ap);
}

static void f_begin(pt_req *r, int status, const char *reason)
{
    note("begin %d %s (status %d);", status, reason, r->status);
}
static void f_header(pt_req *r, const char *n, size_t nl, const char *v, size_t vl)
{
    (void)r;
    note("header %.*s=%.*s;", (int)nl, n, (int)vl, v);
}
static void f_header_block(pt_req *r, const char *p, size_t n)
{
    (void)r;
    note("block %zu;", n);
    (void)p;
}
static void f_end_head(pt_req *r, int64_t len)
{
    (void)r;
    note("end %lld;", (long long)len);
}
static void f_end_stream(pt_req *r, int64_t len)
{
    (void)r;
    note("stream %lld;", (long long)len);
}
static void f_body(pt_req *r, const void *p, size_t n)
{
    (void)r;
    (void)p;
    note("body %zu;", n);
}
static void f_body_file(pt_req *r, int fd, off_t off, uint64_t n)
{
    (void)r;
    note("file %d %lld %llu;", fd, (long long)off, (unsigned long long)n);
}
static void f_body_ref(pt_req *r, const void *p, size_t n)
{
    (void)r;
    (void)p;
    note("ref %zu;", n);
}
static char *f_body_reserve(pt_req *r, size_t n)
{
    (void)r;
    note("reserve %zu;", n);
    return NULL;
}
static void f_body_commit(pt_req *r, size_t n)
{
    (void)r;
    note("commit %zu;", n);
}
static void f_body_end(pt_req *r)
{
    (void)r;
    note("body_end;");
}
static int f_interim(pt_req *r, const char *head, size_t n)
{
    (void)r;
    (void)head;
    note("interim %zu;", n);
    return 0;
}
static void f_kick(pt_req *r)
{
    (void)r;
    note("kick;");
}
static void f_reset(pt_req *r)
{
    (void)r;
    note("reset;");
}

static uint64_t f_queued(const pt_req *r)
{
    (void)r;
    note("queued;");
    return 7;
}
static bool f_unqueue(pt_req *r)
{
    (void)r;
    note("unqueue;");
    return false;
}
static void f_cut(pt_req *r, int how)
{
    (void)r;
    note("cut %d;", how);
}
static int f_raw(pt_req *r, const void *p, size_t n)
{
    (void)r;
    (void)p;
    note("raw %zu;", n);
    return -1;
}

static const pt_framer recorder = {
    .begin = f_begin,
    .header = f_header,
    .header_block = f_header_block,
    .end_head = f_end_head,
    .end_stream = f_end_stream,
    .body = f_body,
    .body_file = f_body_file,
    .body_ref = f_body_ref,
    .body_reserve = f_body_reserve,
    .body_commit = f_body_commit,
    .body_end = f_body_end,
    .interim = f_interim,
    .kick = f_kick,
    .reset = f_reset,
    .queued = f_queued,
    .unqueue = f_unqueue,
    .cut = f_cut,
    .raw = f_raw,
};

static void test_every_response_call_goes_to_the_connections_framer(void)
{
    pt_conn c;
    pt_req r;
    memset(&c, 0, sizeof(c));
    memset(&r, 0, sizeof(r));
    c.framer = &recorder;
    r.conn = &c;
    rec[0] = '\0';
    pt_resp_begin(&r, 200);
    pt_resp_header(&r, "ETag", "\"x\"", 3);
    pt_resp_headerf(&r, "Age", "%d", 7);
    pt_resp_header_block(&r, "A: b\r\n", 6);
    pt_resp_end_stream(&r, -1);
    pt_resp_body(&r, "hello", 5);
    pt_resp_body_file(&r, 3, 10, 20);
    pt_resp_body_ref(&r, "cached", 6);
    pt_resp_body_end(&r);
    pt_resp_interim(&r, "HTTP/1.1 103 Early Hints\r\n\r\n", 28);
    pt_resp_kick(&r);
    pt_resp_reset(&r);
    ok(strcmp(rec, "begin 200 OK (status 200);header ETag=\"x\";header Age=7;block 6;"
                   "stream -1;body 5;file 3 10 20;ref 6;body_end;interim 28;kick;reset;") == 0,
       "each call reaches the framer in order, the status set first: %s", rec);
    /* what a gateway asks of the request, not of the connection (gw.c) */
    rec[0] = '\0';
    uint64_t q = pt_resp_queued(&r);
    bool un = pt_resp_unqueue(&r);
    pt_resp_cut(&r, PT_CUT_SHORT);
    int raw = pt_resp_raw(&r, "HTTP/1.1 200 OK\r\n", 17);
    ok(q == 7 && !un && raw == -1 && strcmp(rec, "queued;unqueue;cut 1;raw 17;") == 0,
       "a gateway's queue size, head take-back, cut and raw bytes are the framer's: %s", rec);
    ok(c.out.bytes == 0, "nothing is written into the connection's queue behind its back");
}

static void test_error_page_is_framed_and_keeps_error_page_status(void)
{
    pt_conn c;
    pt_req r;
    memset(&c, 0, sizeof(c));
    memset(&r, 0, sizeof(r));
    c.framer = &recorder;
    r.conn = &c;
    rec[0] = '\0';
    pt_resp_error(&r, 404, false);
    ok(strncmp(rec,
               "begin 404 Not Found (status 404);header Content-Type=text/html; charset=utf-8;"
               "end ",
               strlen("begin 404 Not Found (status 404);header Content-Type=text/html; "
                      "charset=utf-8;end ")) == 0 &&
           strstr(rec, ";body ") != NULL && !c.close_after,
       "an error page is begin, Content-Type, end with its length, body: %s", rec);
    rec[0] = '\0';
    memset(&r, 0, sizeof(r));
    r.conn = &c;
    r.is_head = true;
    pt_resp_error(&r, 503, true);
    ok(strstr(rec, "header Retry-After=5;") && !strstr(rec, "body") && r.head_only && c.close_after,
       "HEAD: no body, Retry-After on 503, close asked: %s", rec);
    rec[0] = '\0';
    memset(&r, 0, sizeof(r));
    r.conn = &c;
    r.err_status = 404;
    pt_resp_begin(&r, 200);
    ok(strcmp(rec, "begin 404 Not Found (status 404);") == 0,
       "an error_page's 200 keeps the error's status: %s", rec);
}

/* A request on an HTTP/1.1 connection whose framer writes into c.out */
typedef struct h1_fixture {
    pt_worker w;
    pt_conn c;
    pt_req r;
} h1_fixture;

static void h1_fixture_init(h1_fixture *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->w.server_header, sizeof(f->w.server_header), "portico");
    f->c.w = &f->w;
    f->c.framer = &pt_h1_framer;
    pt_cq_init(&f->c.out);
    f->r.conn = &f->c;
    f->r.head.http_major = 1;
    f->r.head.http_minor = 1;
}

static void test_h1_framer_chunks_a_body_of_unknown_length(void)
{
    h1_fixture f;
    h1_fixture_init(&f);
    pt_resp_begin(&f.r, 200);
    pt_resp_end_stream(&f.r, -1);
    pt_resp_body(&f.r, "hello", 5);
    pt_resp_body_end(&f.r);
    char all[1024];
    size_t n = 0;
    for (pt_chunk *k = f.c.out.head; k && n < sizeof(all); k = k->next) {
        size_t l = k->len - k->off;
        if (k->kind == PT_CHUNK_MEM && n + l <= sizeof(all)) {
            memcpy(all + n, k->data + k->off, l);
            n += l;
        }
    }
    all[n < sizeof(all) ? n : sizeof(all) - 1] = '\0';
    ok(strncmp(all, "HTTP/1.1 200 OK\r\nDate: ", 23) == 0, "status line, then Date");
    const char *te = strstr(all, "\r\nServer: portico\r\nTransfer-Encoding: chunked\r\n\r\n");
    ok(te != NULL, "Server, then Transfer-Encoding: chunked and the blank line");
    ok(te && strcmp(te + strlen("\r\nServer: portico\r\nTransfer-Encoding: chunked\r\n\r\n"),
                    "5\r\nhello\r\n0\r\n\r\n") == 0,
       "the body as one chunk and the last chunk");
    ok(f.c.out.bytes == n, "all of it in the connection's queue (%zu bytes)", n);
    pt_cq_free(&f.c.out);
}

/* h1_begin writes a three-digit code itself (RFC 9110 §15), anything else
 * through pt_u64_dec */
static void test_h1_status_line_has_the_codes_digits(void)
{
    static const int codes[] = {100, 101, 200, 204, 404, 418, 500, 599, 999, 1000, 0};
    for (size_t i = 0; i < PT_ARRAY_LEN(codes); i++) {
        h1_fixture f;
        h1_fixture_init(&f);
        pt_resp_begin_reason(&f.r, codes[i], "X");
        char want[32];
        int wl = snprintf(want, sizeof(want), "HTTP/1.1 %d X\r\nDate: ", codes[i]);
        const pt_chunk *k = f.c.out.head;
        ok(k && k->kind == PT_CHUNK_MEM && k->len - k->off >= (size_t)wl &&
               memcmp(k->data + k->off, want, (size_t)wl) == 0,
           "status %d: \"HTTP/1.1 %d X\"", codes[i], codes[i]);
        pt_cq_free(&f.c.out);
    }
}

/* h1_header copies short names and values by words: every length from 0
 * to 20 comes out exactly */
static void test_h1_header_of_every_short_length_is_exact(void)
{
    static const char text[] = "abcdefghijklmnopqrstuvwxyz";
    int bad = 0;
    for (size_t nl = 1; nl <= 20; nl++) {
        for (size_t vl = 0; vl <= 20; vl++) {
            h1_fixture f;
            h1_fixture_init(&f);
            pt_resp_header_n(&f.r, text, nl, text + 3, vl);
            char want[64];
            int wl =
                snprintf(want, sizeof(want), "%.*s: %.*s\r\n", (int)nl, text, (int)vl, text + 3);
            const pt_chunk *k = f.c.out.head;
            if (!k || k->len - k->off != (size_t)wl || memcmp(k->data + k->off, want, (size_t)wl))
                bad++;
            pt_cq_free(&f.c.out);
        }
    }
    ok(bad == 0, "name and value of every length up to 20 are copied exactly (%d wrong)", bad);
}

/* pt_conn_req_ip: the connection keeps the text of its IPv4 address, and
 * a request whose client realip changed gets its own address's text */
static void test_req_ip_text_is_the_requests_address(void)
{
    pt_conn c;
    pt_req r;
    static const unsigned char a[4] = {192, 0, 2, 1}, b[4] = {198, 51, 100, 77};
    const unsigned char *seq[] = {b, a, a, b, a, b};
    const char *want[] = {"198.51.100.77", "192.0.2.1", "192.0.2.1",
                          "198.51.100.77", "192.0.2.1", "198.51.100.77"};
    memset(&c, 0, sizeof(c));
    c.conn_af = AF_INET;
    memcpy(c.conn_addr, a, 4);
    for (size_t i = 0; i < PT_ARRAY_LEN(seq); i++) {
        memset(&r, 0, sizeof(r));
        r.conn = &c;
        r.peer_af = AF_INET;
        memcpy(r.peer_addr, seq[i], 4);
        ok(strcmp(pt_conn_req_ip(&r), want[i]) == 0, "request %zu: %s", i, want[i]);
    }
    memset(&r, 0, sizeof(r));
    r.conn = &c;
    r.peer_af = AF_INET6;
    r.peer_addr[15] = 1;
    ok(strcmp(pt_conn_req_ip(&r), "::1") == 0, "IPv6: its own text");
}

int main(void)
{
    test_req_ip_text_is_the_requests_address();
    test_h1_header_of_every_short_length_is_exact();
    test_every_response_call_goes_to_the_connections_framer();
    test_error_page_is_framed_and_keeps_error_page_status();
    test_h1_framer_chunks_a_body_of_unknown_length();
    test_h1_status_line_has_the_codes_digits();
    return tap_done();
}
