/* fuzz_h2.c: the HTTP/2 input path as the worker feeds it (h2_conn.c): the
 * client preface, then the input's bytes into pt_h2_recv in pieces, with an
 * owner that answers streams the ways handlers do (a body from memory, a
 * file range, a bodiless 204, a reset, a body that comes a piece later, 431
 * for a head over the limits), and pt_h2_send drained into a bounded queue
 * after each piece as pt_h2c_flush does, the client taking it all. The first
 * byte picks the limits and the split pattern. Invariants: the owner hears
 * of a stream only between its request and its close, never twice; the
 * queue stays bounded; freeing the session closes every stream left. */
#include "fuzz.h"

#include "buf.h"
#include "h2.h"

#include <fcntl.h>
#include <unistd.h>

#define MAX_OWN 512
#define OUT_MAX (64u * 1024u) /* h2_conn.c's H2_OUT_LOW */

typedef struct own {
    int32_t sid;
    bool open, later;
} own;

typedef struct fz {
    pt_h2 *h;
    own s[MAX_OWN];
    size_t n, open;
    uint32_t seed;
    int zero_fd; /* a file range of zeros: read a frame at a time */
} fz;

static fz F;

static own *find(int32_t sid)
{
    for (size_t i = 0; i < F.n; i++)
        if (F.s[i].sid == sid && F.s[i].open)
            return &F.s[i];
    return NULL;
}

static void answer(int32_t sid, int status, const char *body, bool body_now)
{
    size_t bl = body ? strlen(body) : 0;
    if (pt_h2_resp_begin(F.h, sid, status) < 0)
        return;
    (void)pt_h2_resp_std(F.h, sid, "Sun, 06 Nov 1994 08:49:37 GMT", "portico", 7);
    (void)pt_h2_resp_header(F.h, sid, "Content-Type", 12, "text/plain", 10);
    static const char block[] = "X-A: 1\r\nConnection: close\r\nX-B:2\n";
    (void)pt_h2_resp_header_block(F.h, sid, block, PT_SLEN(block));
    if (!body) {
        (void)pt_h2_resp_end_head(F.h, sid, -1, false);
        return;
    }
    (void)pt_h2_resp_end_head(F.h, sid, body_now ? (int64_t)bl : -1, true);
    if (body_now) {
        (void)pt_h2_body(F.h, sid, body, bl);
        (void)pt_h2_body_end(F.h, sid);
    }
}

static void on_request(void *ud, int32_t sid, const pt_head *h, bool end)
{
    (void)ud;
    (void)end;
    FZ_CHECK(find(sid) == NULL); /* one request per stream */
    FZ_CHECK(h->http_major == 2);
    if (F.n == MAX_OWN) {
        (void)pt_h2_reset(F.h, sid, 0x7); /* REFUSED_STREAM, as a full pool does */
        return;
    }
    own *o = &F.s[F.n++];
    *o = (own){sid, true, false};
    F.open++;
    if (h->error) {
        answer(sid, 431, "too large\n", true);
        return;
    }
    switch (fz_next(&F.seed) % 6) {
    case 0:
        answer(sid, 200, "hello\n", true);
        break;
    case 1:
        (void)pt_h2_reset(F.h, sid, 0x8);
        break;
    case 2:
        answer(sid, 204, NULL, false);
        break;
    case 3:
        if (pt_h2_resp_begin(F.h, sid, 200) == 0 &&
            pt_h2_resp_end_head(F.h, sid, 40000, true) == 0) {
            (void)pt_h2_body_file(F.h, sid, F.zero_fd, 0, 40000);
            (void)pt_h2_body_end(F.h, sid);
        }
        break;
    case 4: /* the body comes later, without a length */
        answer(sid, 200, "", false);
        o->later = true;
        break;
    default:
        break; /* answered when the session is freed (a slow handler) */
    }
}

/* Odd streams' bytes are held, as a body streamed to an upstream is, and
 * their window given back at once by a later consume; even streams' go
 * back as they arrive. */
static bool on_body(void *ud, int32_t sid, const void *p, size_t n)
{
    (void)ud;
    FZ_CHECK(find(sid) != NULL);
    FZ_CHECK(p != NULL && n > 0);
    if ((sid & 2) == 0)
        return false;
    pt_h2_consume(F.h, sid, n);
    return true;
}

static void on_body_end(void *ud, int32_t sid)
{
    (void)ud;
    FZ_CHECK(find(sid) != NULL);
}

static void on_closed(void *ud, int32_t sid, uint32_t code)
{
    (void)ud;
    (void)code;
    own *o = find(sid);
    if (!o && F.n == MAX_OWN)
        return;          /* one refused */
    FZ_CHECK(o != NULL); /* closed once, after its request */
    o->open = false;
    F.open--;
}

static void later_bodies(void)
{
    for (size_t i = 0; i < F.n; i++)
        if (F.s[i].open && F.s[i].later) {
            F.s[i].later = false;
            (void)pt_h2_body(F.h, F.s[i].sid, "later\n", 6);
            (void)pt_h2_body_end(F.h, F.s[i].sid);
        }
}

/* the client takes every byte: the queue never holds more than a round's */
static void drain(pt_cq *q)
{
    for (int i = 0; i < 64; i++) {
        ssize_t k = pt_h2_send(F.h, q, OUT_MAX);
        FZ_CHECK(q->bytes <= OUT_MAX + 80u * 1024u);
        pt_cq_clear(q);
        if (k <= 0)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const uint32_t streams_tab[] = {1, 4, 100, 128};
    static const uint32_t requests_tab[] = {0, 1, 3, 1000};
    if (size < 1)
        return 0;
    if (F.zero_fd <= 0)
        F.zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    FZ_CHECK(F.zero_fd > 0);
    uint8_t opt = data[0];
    memset(F.s, 0, sizeof(F.s));
    F.n = F.open = 0;
    F.seed = fz_seed(data, size);
    static const pt_h2_cbs cbs = {on_request, on_body, on_body_end, on_closed};
    pt_h2_limits lim = {
        .max_streams = streams_tab[opt & 3],
        .header_bytes = (opt & 4) ? 256 : 8192,
        .max_headers = (opt & 8) ? 4 : 100,
        .max_requests = requests_tab[(opt >> 4) & 3],
    };
    F.h = pt_h2_new(&cbs, NULL, &lim);
    FZ_CHECK(F.h != NULL);
    pt_cq q;
    pt_cq_init(&q);
    /* the preface as h2_conn.c hands it over: with the first bytes */
    char *in = fz_dup(data + 1, size - 1);
    size_t left = size - 1, off = 0;
    bool alive = pt_h2_recv(F.h, preface, PT_SLEN(preface)) == 0;
    unsigned cap = (opt & 0x40) ? 7 : 4096;
    while (alive && left > 0) {
        size_t k = fz_piece(&F.seed, cap, left);
        if ((fz_next(&F.seed) & 3) == 0)
            pt_h2_round(F.h); /* a new wakeup of the event loop */
        alive = pt_h2_recv(F.h, in + off, k) == 0;
        (void)pt_h2_trouble(F.h);
        off += k;
        left -= k;
        later_bodies();
        if (pt_h2_stalled(F.h)) { /* the write timeout's two ends */
            if (fz_next(&F.seed) & 1)
                pt_h2_stall_mark(F.h);
            else
                (void)pt_h2_stall_reset(F.h, 0x8);
        }
        drain(&q);
        /* h2_conn.c calls it once idle; it must be safe between any two
         * calls: it discards only what is dead or all zeros */
        if ((fz_next(&F.seed) & 3) == 0)
            pt_h2_idle(F.h);
        FZ_CHECK(pt_h2_streams(F.h) >= F.open);
        if (!pt_h2_want_read(F.h) && !pt_h2_want_write(F.h))
            break;
    }
    if (opt & 0x80) { /* a graceful stop in flight */
        pt_h2_goaway(F.h);
        drain(&q);
    }
    pt_h2_free(F.h);
    FZ_CHECK(F.open == 0); /* every stream the owner had was closed */
    pt_cq_free(&q);
    free(in);
    return 0;
}
