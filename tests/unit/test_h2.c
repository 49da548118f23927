#include "first.h"
#include "h2.h"

/* test_h2.c: the HTTP/2 session (h2.c) against nghttp2's own client, bytes
 * passed in memory both ways: request heads as pt_head, cookies joined,
 * limits, bodies both ways (a file range read a frame at a time through
 * flow control), several streams at once, RST_STREAM, GOAWAY. */

#include "tap.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <unistd.h>

#define MAXS 16

/* what the server side saw */
typedef struct srv_stream {
    int32_t sid;
    char method[16], path[256], query[256], host[256], cookie[256], xfoo[64];
    bool has_host_field, end_stream, body_end, closed;
    int xf_ok; /* x-fNN fields whose value is 40 times 'a' + NN */
    int64_t content_length;
    const char *error;
    char body[4096];
    size_t blen, got; /* kept, received */
    uint32_t close_code;
} srv_stream;

/* the owner holds what it receives (a body streamed to an upstream) */
static bool hold_body;

static srv_stream srv[MAXS];
static int nsrv;

static srv_stream *srv_of(int32_t sid)
{
    for (int i = 0; i < nsrv; i++)
        if (srv[i].sid == sid)
            return &srv[i];
    return NULL;
}

static void cpy(char *d, size_t cap, const char *p, size_t n)
{
    n = n < cap - 1 ? n : cap - 1;
    memcpy(d, p ? p : "", n);
    d[n] = '\0';
}

static void on_request(void *ud, int32_t sid, const pt_head *h, bool end)
{
    (void)ud;
    srv_stream *s = &srv[nsrv++];
    memset(s, 0, sizeof(*s));
    s->sid = sid;
    cpy(s->method, sizeof(s->method), h->method_str.p, h->method_str.len);
    cpy(s->path, sizeof(s->path), h->path.p, h->path.len);
    cpy(s->query, sizeof(s->query), h->query.p, h->query.len);
    cpy(s->host, sizeof(s->host), h->host.p, h->host.len);
    for (size_t i = 0; i < h->nheaders; i++) {
        const pt_header *x = &h->headers[i];
        if (x->name_len == 6 && memcmp(x->name, "cookie", 6) == 0)
            cpy(s->cookie, sizeof(s->cookie), x->value, x->value_len);
        if (x->name_len == 4 && memcmp(x->name, "host", 4) == 0)
            s->has_host_field = true;
        if (x->name_len == 5 && memcmp(x->name, "x-foo", 5) == 0)
            cpy(s->xfoo, sizeof(s->xfoo), x->value, x->value_len);
        if (x->name_len == 5 && memcmp(x->name, "x-f", 3) == 0 && x->value_len == 40) {
            char want = (char)('a' + atoi(x->name + 3) % 26);
            size_t j = 0;
            while (j < 40 && x->value[j] == want)
                j++;
            s->xf_ok += j == 40;
        }
    }
    s->end_stream = end;
    s->content_length = h->content_length;
    s->error = h->error;
}

static bool on_body(void *ud, int32_t sid, const void *p, size_t n)
{
    (void)ud;
    srv_stream *s = srv_of(sid);
    if (s && s->blen + n <= sizeof(s->body)) {
        memcpy(s->body + s->blen, p, n);
        s->blen += n;
    }
    if (s)
        s->got += n;
    return hold_body; /* stored: the window goes back at once */
}

static void on_body_end(void *ud, int32_t sid)
{
    (void)ud;
    srv_stream *s = srv_of(sid);
    if (s)
        s->body_end = true;
}

static void on_closed(void *ud, int32_t sid, uint32_t code)
{
    (void)ud;
    srv_stream *s = srv_of(sid);
    if (s) {
        s->closed = true;
        s->close_code = code;
    }
}

/* what the client saw */
typedef struct cli_stream {
    int32_t sid;
    char status[8], first_status[8], link[64], clen[24], xa[16], xb[16], ctype[64];
    char names[512]; /* every regular field's name, each followed by ',' */
    char date[32], server[32];
    bool has_connection, closed, headers_end_stream;
    char *body;
    size_t blen;
    uint32_t close_code;
} cli_stream;

static cli_stream cli[MAXS];
static int ncli;
static bool goaway_seen;
static int32_t goaway_last;
static uint32_t remote_max_streams;

static cli_stream cli_none; /* a stream the client does not know: all empty */

static cli_stream *cli_of(int32_t sid)
{
    for (int i = 0; i < ncli; i++)
        if (cli[i].sid == sid)
            return &cli[i];
    return &cli_none;
}

static int c_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                    const uint8_t *v, size_t vl, uint8_t fl, void *ud)
{
    (void)s;
    (void)fl;
    (void)ud;
    cli_stream *c = cli_of(f->hd.stream_id);
    if (c == &cli_none)
        return 0;
#define GRAB(lit, dst)                                                                             \
    if (nl == strlen(lit) && memcmp(n, lit, nl) == 0)                                              \
        cpy(dst, sizeof(dst), (const char *)v, vl);
    if (nl == 7 && memcmp(n, ":status", 7) == 0 && !c->first_status[0])
        cpy(c->first_status, sizeof(c->first_status), (const char *)v, vl);
    GRAB(":status", c->status)
    GRAB("link", c->link)
    GRAB("content-length", c->clen)
    GRAB("x-a", c->xa)
    GRAB("x-b", c->xb)
    GRAB("content-type", c->ctype)
    GRAB("date", c->date)
    GRAB("server", c->server)
    if (nl == 10 && memcmp(n, "connection", 10) == 0)
        c->has_connection = true;
    size_t k = strlen(c->names);
    if (nl && n[0] != ':' && k + nl + 2 < sizeof(c->names)) {
        memcpy(c->names + k, n, nl);
        c->names[k + nl] = ',';
        c->names[k + nl + 1] = '\0';
    }
    return 0;
}

static int c_data(nghttp2_session *s, uint8_t fl, int32_t sid, const uint8_t *p, size_t n, void *ud)
{
    (void)s;
    (void)fl;
    (void)ud;
    cli_stream *c = cli_of(sid);
    if (c != &cli_none) {
        c->body = realloc(c->body, c->blen + n + 1);
        memcpy(c->body + c->blen, p, n);
        c->blen += n;
        c->body[c->blen] = '\0';
    }
    return 0;
}

static int c_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        goaway_seen = true;
        goaway_last = f->goaway.last_stream_id;
    }
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK))
        remote_max_streams =
            nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    if (f->hd.type == NGHTTP2_HEADERS && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        cli_stream *c = cli_of(f->hd.stream_id);
        if (c)
            c->headers_end_stream = true;
    }
    return 0;
}

static int c_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    (void)s;
    (void)ud;
    cli_stream *c = cli_of(sid);
    if (c) {
        c->closed = true;
        c->close_code = code;
    }
    return 0;
}

static nghttp2_session *client_new(void)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
    nghttp2_session *s;
    nghttp2_session_client_new(&s, cb, NULL);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    return s;
}

/* the bound pt_h2_send is given each round */
static size_t pump_max = 64 * 1024;

/* both ways until neither side has anything to say; false: the server
 * called it a connection error */
static bool pump(nghttp2_session *c, pt_h2 *h)
{
    for (int round = 0; round < 10000; round++) {
        bool moved = false;
        const uint8_t *d;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(c, &d)) > 0) {
            moved = true;
            if (pt_h2_recv(h, d, (size_t)n) < 0)
                return false;
        }
        pt_cq q;
        pt_cq_init(&q);
        ssize_t k = pt_h2_send(h, &q, pump_max);
        if (k > (ssize_t)(pump_max + 16384 + 9))
            return false; /* past the bound by more than a frame */
        if (k < 0)
            return false;
        char buf[8192];
        ssize_t t;
        while ((t = pt_cq_take(&q, buf, sizeof(buf))) > 0) {
            moved = true;
            nghttp2_session_mem_recv(c, (const uint8_t *)buf, (size_t)t);
        }
        pt_cq_free(&q);
        if (!moved)
            return true;
    }
    return true;
}

static int32_t get(nghttp2_session *c, const char *method, const char *path,
                   const nghttp2_nv *extra, size_t nextra, nghttp2_data_provider *dp)
{
    nghttp2_nv nv[48];
    size_t k = 0;
#define NV(n, v)                                                                                   \
    nv[k++] =                                                                                      \
        (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    NV(":method", method);
    NV(":scheme", "https");
    NV(":path", path);
    NV(":authority", "example.org");
    for (size_t i = 0; i < nextra && k < 48; i++)
        nv[k++] = extra[i];
    int32_t sid = nghttp2_submit_request(c, NULL, nv, k, dp, NULL);
    cli_stream *s = &cli[ncli++];
    memset(s, 0, sizeof(*s));
    s->sid = sid;
    return sid;
}

static const char *upload = "name=value&x=y";
static size_t upload_off;

static ssize_t up_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *fl,
                       nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)src;
    (void)ud;
    size_t n = PT_MIN(len, strlen(upload) - upload_off);
    memcpy(buf, upload + upload_off, n);
    upload_off += n;
    if (upload_off == strlen(upload))
        *fl |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* a body of big_len bytes, as the window lets it go */
static size_t big_len, big_off;

static ssize_t big_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *fl,
                        nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)src;
    (void)ud;
    size_t n = PT_MIN(len, big_len - big_off);
    memset(buf, 'b', n);
    big_off += n;
    if (big_off == big_len)
        *fl |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static pt_h2 *server_new(void)
{
    static const pt_h2_cbs cbs = {on_request, on_body, on_body_end, on_closed};
    pt_h2_limits lim = {.max_streams = 7, .header_bytes = 4096, .max_headers = 20};
    return pt_h2_new(&cbs, NULL, &lim);
}

static void reset_all(void)
{
    for (int i = 0; i < ncli; i++)
        free(cli[i].body);
    ncli = nsrv = 0;
    goaway_seen = false;
}

int main(void)
{
    /* one request, a response with fields, a kept block, memory and a file */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        nghttp2_nv extra[] = {
            {(uint8_t *)"cookie", (uint8_t *)"a=1", 6, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"x-foo", (uint8_t *)"bar", 5, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"cookie", (uint8_t *)"b=2", 6, 3, NGHTTP2_NV_FLAG_NONE},
        };
        int32_t sid = get(c, "GET", "/a/b?x=1&y", extra, 3, NULL);
        ok(pump(c, h), "preface, SETTINGS and a request go through");
        ok(remote_max_streams == 7, "SETTINGS_MAX_CONCURRENT_STREAMS is the limit");
        ok(nsrv == 1 && srv[0].sid == sid, "the request reached its owner");
        ok(strcmp(srv[0].method, "GET") == 0 && strcmp(srv[0].path, "/a/b") == 0 &&
               strcmp(srv[0].query, "x=1&y") == 0,
           "method, path and query");
        ok(strcmp(srv[0].host, "example.org") == 0 && srv[0].has_host_field,
           ":authority is the Host, also as a field");
        ok(strcmp(srv[0].cookie, "a=1; b=2") == 0, "cookie crumbs joined (RFC 9113 8.2.3)");
        ok(strcmp(srv[0].xfoo, "bar") == 0, "an ordinary field");
        ok(srv[0].end_stream && srv[0].content_length == -1 && !srv[0].error,
           "no body, no length, no error");

        char tmpl[] = "/tmp/pt_h2_XXXXXX";
        int fd = mkstemp(tmpl);
        unlink(tmpl);
        ok(write(fd, "--world--", 9) == 9, "file written");
        ok(pt_h2_resp_begin(h, sid, 200) == 0, "begin");
        pt_h2_resp_header(h, sid, "Content-Type", 12, "text/plain", 10);
        pt_h2_resp_header(h, sid, "Connection", 10, "close", 5);
        pt_h2_resp_header_block(h, sid, "X-A: 1\r\nX-B:  two\r\n", 19);
        ok(pt_h2_resp_end_head(h, sid, 11, true) == 0, "end of the head");
        pt_h2_body(h, sid, "hello ", 6);
        pt_h2_body_file(h, sid, fd, 2, 5);
        pt_h2_body_end(h, sid);
        pump(c, h);
        cli_stream *r = cli_of(sid);
        ok(strcmp(r->status, "200") == 0 && strcmp(r->clen, "11") == 0, "status and length");
        ok(strcmp(r->ctype, "text/plain") == 0 && strcmp(r->xa, "1") == 0 &&
               strcmp(r->xb, "two") == 0,
           "fields, names lowercased, a kept block split");
        ok(!r->has_connection, "no connection-specific field (RFC 9113 8.2.2)");
        ok(r->blen == 11 && memcmp(r->body, "hello world", 11) == 0, "body: memory then file");
        ok(r->closed && r->close_code == 0 && srv[0].closed && srv[0].close_code == 0,
           "the stream closed cleanly on both sides");
        ok(pt_h2_streams(h) == 0, "no stream left");
        close(fd);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* several streams at once, answered in reverse order; a big file
     * through flow control; a bodiless answer */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        int32_t a = get(c, "GET", "/1", NULL, 0, NULL);
        int32_t b = get(c, "GET", "/2", NULL, 0, NULL);
        int32_t d = get(c, "HEAD", "/3", NULL, 0, NULL);
        pump(c, h);
        ok(nsrv == 3 && pt_h2_streams(h) == 3, "three streams open on one connection");
        size_t big = 300 * 1024;
        char *blob = malloc(big);
        for (size_t i = 0; i < big; i++)
            blob[i] = (char)('a' + i % 26);
        char tmpl[] = "/tmp/pt_h2_XXXXXX";
        int fd = mkstemp(tmpl);
        unlink(tmpl);
        ok(write(fd, blob, big) == (ssize_t)big, "big file written");
        pt_h2_resp_begin(h, d, 304);
        pt_h2_resp_end_head(h, d, -1, false);
        pt_h2_resp_begin(h, b, 200);
        pt_h2_resp_end_head(h, b, (int64_t)big, true);
        pt_h2_body_file(h, b, fd, 0, big);
        ok(pt_h2_queued(h, b) == big, "the file range is queued, not read");
        pt_h2_body_end(h, b);
        pt_h2_resp_begin(h, a, 200);
        pt_h2_resp_end_head(h, a, -1, true);
        pump(c, h);
        pt_h2_body(h, a, "late", 4); /* a producer that comes back later */
        pt_h2_body_end(h, a);
        pump(c, h);
        ok(cli_of(d)->headers_end_stream && cli_of(d)->blen == 0 &&
               strcmp(cli_of(d)->status, "304") == 0,
           "304: HEADERS with END_STREAM, no DATA");
        ok(cli_of(b)->blen == big && memcmp(cli_of(b)->body, blob, big) == 0,
           "300 KiB file intact past the 64 KiB window");
        ok(cli_of(a)->blen == 4 && memcmp(cli_of(a)->body, "late", 4) == 0 && cli_of(a)->closed,
           "a deferred body resumes when bytes come");
        ok(pt_h2_streams(h) == 0, "all closed");
        /* idle: the frame buffer's and the empty stream table's pages go
         * back (zero-filled when touched again); the next frames are packed
         * whole, and a call while a response waits discards nothing live */
        pt_h2_idle(h);
        int32_t e = get(c, "GET", "/4", NULL, 0, NULL);
        pump(c, h);
        pt_h2_resp_begin(h, e, 200);
        pt_h2_resp_end_head(h, e, 5, true);
        pt_h2_body(h, e, "again", 5);
        pt_h2_body_end(h, e);
        pt_h2_idle(h);
        pump(c, h);
        ok(strcmp(cli_of(e)->status, "200") == 0 && cli_of(e)->blen == 5 &&
               memcmp(cli_of(e)->body, "again", 5) == 0 && cli_of(e)->closed,
           "after an idle connection gave its pages back, a stream is answered whole");
        free(blob);
        close(fd);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* an upload; a reset from the client; GOAWAY with a stream in flight */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        nghttp2_data_provider dp = {.read_callback = up_read};
        char clen[8];
        snprintf(clen, sizeof(clen), "%zu", strlen(upload));
        nghttp2_nv extra[] = {
            {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), NGHTTP2_NV_FLAG_NONE},
        };
        int32_t p = get(c, "POST", "/up", extra, 1, &dp);
        int32_t x = get(c, "GET", "/slow", NULL, 0, NULL);
        pump(c, h);
        srv_stream *sp = srv_of(p), *sx = srv_of(x);
        ok(sp && !sp->end_stream && sp->content_length == (int64_t)strlen(upload),
           "POST: a body follows, its length known");
        ok(sp && sp->body_end && sp->blen == strlen(upload) &&
               memcmp(sp->body, upload, sp->blen) == 0,
           "the body arrives whole, then its end");
        nghttp2_submit_rst_stream(c, NGHTTP2_FLAG_NONE, x, NGHTTP2_CANCEL);
        pump(c, h);
        ok(sx && sx->closed && sx->close_code == NGHTTP2_CANCEL,
           "RST_STREAM reaches the owner as a close with its code");
        ok(pt_h2_resp_begin(h, x, 200) == -1, "a reset stream takes no response");
        pt_h2_goaway(h);
        pump(c, h);
        ok(goaway_seen && goaway_last == x, "GOAWAY names the last stream taken");
        int32_t late = get(c, "GET", "/late", NULL, 0, NULL);
        pump(c, h);
        ok(srv_of(late) == NULL, "no new stream after GOAWAY");
        pt_h2_resp_begin(h, p, 201);
        pt_h2_resp_end_head(h, p, 0, false);
        pump(c, h);
        ok(strcmp(cli_of(p)->status, "201") == 0 && cli_of(p)->closed,
           "the stream in flight finishes after GOAWAY");
        ok(!pt_h2_want_read(h) && !pt_h2_want_write(h), "then the session is done");
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* limits: a head too large; a stream left open when the connection goes */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        static char longv[5000];
        memset(longv, 'v', sizeof(longv) - 1);
        nghttp2_nv extra[] = {
            {(uint8_t *)"x-long", (uint8_t *)longv, 6, strlen(longv), NGHTTP2_NV_FLAG_NONE},
        };
        int32_t s1 = get(c, "GET", "/big", extra, 1, NULL);
        pump(c, h);
        ok(srv_of(s1) && srv_of(s1)->error != NULL, "a head over header_bytes is flagged (431)");
        pt_h2_free(h);
        ok(srv_of(s1)->closed, "freeing the session releases its open streams");
        nghttp2_session_del(c);
        reset_all();
    }

    /* a 1xx ahead of the response (103 Early Hints, RFC 8297) */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        int32_t sid = get(c, "GET", "/hints", NULL, 0, NULL);
        pump(c, h);
        const char *hints = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
                            "Connection: x\r\n\r\n";
        ok(pt_h2_interim(h, sid, hints, strlen(hints)) == 0, "a 103 is queued");
        pt_h2_resp_begin(h, sid, 204);
        pt_h2_resp_end_head(h, sid, -1, false);
        ok(pt_h2_interim(h, sid, hints, strlen(hints)) == -1, "none after the response's head");
        pump(c, h);
        cli_stream *cs = cli_of(sid);
        ok(strcmp(cs->first_status, "103") == 0 && strcmp(cs->status, "204") == 0 &&
               strcmp(cs->link, "</a.css>; rel=preload") == 0 && !cs->has_connection && cs->closed,
           "HEADERS 103 with its fields (no connection-specific one), then the response's: "
           "%s %s %s",
           cs->first_status, cs->status, cs->link);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* a held body: the window comes back only with pt_h2_consume */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        big_len = 100000;
        big_off = 0;
        hold_body = true;
        nghttp2_data_provider dp = {.read_callback = big_read};
        int32_t sid = get(c, "POST", "/stream", NULL, 0, &dp);
        pump(c, h);
        srv_stream *ss = srv_of(sid);
        ok(ss && ss->got == 65535 && !ss->body_end,
           "held bytes: the client stops at the stream's window (%zu)", ss ? ss->got : 0);
        pt_h2_consume(h, sid, ss->got);
        pump(c, h);
        ok(ss->got == big_len && ss->body_end, "given back: the rest comes (%zu)", ss->got);
        hold_body = false;
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* response field names of every length up to past two words, in mixed
     * case with the token characters either side of 'A'..'Z' and 'a'..'z'
     * ('^', '_', '`', '|', '~', digits): lowercase on the wire, nothing
     * else changed (RFC 9113 8.2.1), and a Content-Length among them is
     * dropped for the framer's own */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        int32_t sid = get(c, "GET", "/names", NULL, 0, NULL);
        pump(c, h);
        static const char *in[] = {"A",
                                   "zB",
                                   "X-Y",
                                   "ETag",
                                   "Vary^",
                                   "SeRvIcE",
                                   "X-`Az|~",
                                   "X-Abcdef",
                                   "X-AbcdefG",
                                   "Last-Modified",
                                   "Content-Length",
                                   "X-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ-_`^|~"};
        static const char want[] =
            "date,server,a,zb,x-y,etag,vary^,service,x-`az|~,x-abcdef,x-abcdefg,"
            "last-modified,x-0123456789-abcdefghijklmnopqrstuvwxyz-_`^|~,"
            "content-length,";
        pt_h2_resp_begin(h, sid, 200);
        /* the date is copied (the worker's clock text changes), the
         * server name is the caller's to keep */
        char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";
        pt_h2_resp_std(h, sid, date, "portico/x", 9);
        memset(date, 'X', sizeof(date) - 1);
        for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
            pt_h2_resp_header(h, sid, in[i], strlen(in[i]), "v", 1);
        pt_h2_resp_end_head(h, sid, 0, false);
        pump(c, h);
        cli_stream *r = cli_of(sid);
        ok(strcmp(r->names, want) == 0, "response names lowercased at every length (%s)", r->names);
        ok(strcmp(r->clen, "0") == 0, "the framer's content-length, not the handler's");
        ok(strcmp(r->date, "Sun, 06 Nov 1994 08:49:37 GMT") == 0 &&
               strcmp(r->server, "portico/x") == 0,
           "date and server first, the date as it was when given (%s, %s)", r->date, r->server);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* a head past what a stream holds in its own block (12 fields, 384
     * bytes of text, each side): the request's and the response's fields
     * move to blocks of their own whole, cookie crumbs joined after */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        enum { NX = 16 }; /* under max_headers (20) with the two cookies */
        static char names[NX][8], values[NX][41];
        nghttp2_nv extra[NX + 2];
        for (int i = 0; i < NX; i++) {
            snprintf(names[i], sizeof(names[i]), "x-f%02d", i);
            memset(values[i], 'a' + i % 26, 40);
            values[i][40] = '\0';
            extra[i] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)values[i], 5, 40,
                                    NGHTTP2_NV_FLAG_NONE};
        }
        extra[NX] = (nghttp2_nv){(uint8_t *)"cookie", (uint8_t *)"a=1", 6, 3, NGHTTP2_NV_FLAG_NONE};
        extra[NX + 1] =
            (nghttp2_nv){(uint8_t *)"cookie", (uint8_t *)"b=2", 6, 3, NGHTTP2_NV_FLAG_NONE};
        int32_t sid = get(c, "GET", "/big/head?q=1", extra, NX + 2, NULL);
        pump(c, h);
        srv_stream *ss = srv_of(sid);
        ok(ss && ss->xf_ok == NX && strcmp(ss->path, "/big/head") == 0 &&
               strcmp(ss->query, "q=1") == 0 && strcmp(ss->cookie, "a=1; b=2") == 0 &&
               strcmp(ss->host, "example.org") == 0 && !ss->error,
           "a big request head arrives whole (%d of %d fields)", ss ? ss->xf_ok : -1, NX);
        pt_h2_resp_begin(h, sid, 200);
        for (int i = 0; i < NX; i++)
            pt_h2_resp_header(h, sid, names[i], 5, values[i], 40);
        pt_h2_resp_header(h, sid, "Content-Type", 12, "text/x-big", 10);
        pt_h2_resp_end_head(h, sid, 0, false);
        pump(c, h);
        cli_stream *r = cli_of(sid);
        ok(strcmp(r->status, "200") == 0 && strcmp(r->ctype, "text/x-big") == 0 &&
               strlen(r->names) == NX * 6 + 13 + 15,
           "a big response head goes out whole (%s)", r->names);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* response bodies from memory go as DATA frames without a copy into
     * nghttp2 (NO_COPY): pieces of every size, several streams at once, a
     * file range between memory pieces, a body past the 16 KiB frame and
     * the 64 KiB window, a send bound of 1000 bytes (a frame waits) */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        enum { NS = 5, LEN = 100000 };
        int32_t sid[NS];
        for (int i = 0; i < NS; i++)
            sid[i] = get(c, "GET", "/mem", NULL, 0, NULL);
        pump(c, h);
        char *blob = malloc(LEN);
        for (size_t i = 0; i < LEN; i++)
            blob[i] = (char)('A' + i * 7 % 53);
        char tmpl[] = "/tmp/pt_h2_XXXXXX";
        int fd = mkstemp(tmpl);
        unlink(tmpl);
        ok(write(fd, blob, LEN) == LEN, "file for the middle written");
        static const size_t piece[] = {1, 255, 256, 257, 4095, 4096, 4097, 9, 16384, 16393, 700};
        for (int i = 0; i < NS; i++) {
            pt_h2_resp_begin(h, sid[i], 200);
            pt_h2_resp_end_head(h, sid[i], LEN, true);
            size_t off = 0;
            for (size_t k = (size_t)i; off < LEN; k++) {
                size_t n = PT_MIN(piece[k % (sizeof(piece) / sizeof(piece[0]))], LEN - off);
                if (i == 2 && k == 6)
                    pt_h2_body_file(h, sid[i], fd, (off_t)off, n);
                else
                    pt_h2_body(h, sid[i], blob + off, n);
                off += n;
            }
            pt_h2_body_end(h, sid[i]);
        }
        pump_max = 1000;
        bool pumped = pump(c, h);
        pump_max = 64 * 1024;
        int whole = 0;
        for (int i = 0; i < NS; i++)
            whole += cli_of(sid[i])->blen == LEN && memcmp(cli_of(sid[i])->body, blob, LEN) == 0 &&
                     cli_of(sid[i])->closed && cli_of(sid[i])->close_code == 0;
        ok(pumped && whole == NS, "memory bodies intact, in order, within the bound (%d of %d)",
           whole, NS);
        ok(pt_h2_streams(h) == 0, "all closed");
        free(blob);
        close(fd);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* an idle connection empties our HPACK encoder's table (RFC 7541
     * §4.2: size 0, then back, said at the start of the next header
     * block): the next response indexes its fields again, so the
     * client's table holds that response's fields alone, decoded right */
    {
        pt_h2 *h = server_new();
        nghttp2_session *c = client_new();
        static const char *types[] = {"text/aaaa", "text/bbbb", "text/cccc"};
        size_t table[3];
        for (int i = 0; i < 3; i++) {
            int32_t sid = get(c, "GET", "/idle", NULL, 0, NULL);
            pump(c, h);
            pt_h2_resp_begin(h, sid, 200);
            pt_h2_resp_std(h, sid, "Sun, 06 Nov 1994 08:49:37 GMT", "portico/x", 9);
            pt_h2_resp_header(h, sid, "Content-Type", 12, types[i], 9);
            pt_h2_resp_end_head(h, sid, 0, false);
            pump(c, h);
            cli_stream *r = cli_of(sid);
            ok(strcmp(r->status, "200") == 0 && strcmp(r->ctype, types[i]) == 0 &&
                   strcmp(r->date, "Sun, 06 Nov 1994 08:49:37 GMT") == 0 &&
                   strcmp(r->server, "portico/x") == 0,
               "response %d decoded whole (%s)", i, r->ctype);
            table[i] = nghttp2_session_get_hd_inflate_dynamic_table_size(c);
            if (i == 1)
                pt_h2_idle(h);
        }
        ok(table[0] > 0 && table[1] > table[0],
           "a busy connection indexes a new field beside the old (%zu, %zu)", table[0], table[1]);
        ok(table[2] == table[0],
           "after an idle period the table holds the next response's fields alone (%zu, %zu)",
           table[2], table[0]);
        pt_h2_free(h);
        nghttp2_session_del(c);
        reset_all();
    }

    /* not HTTP/2 at all */
    {
        pt_h2 *h = server_new();
        const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        ok(pt_h2_recv(h, junk, strlen(junk)) < 0, "no client preface: a connection error");
        pt_h2_free(h);
    }
    return tap_done();
}
