/* fuzz_fcgi_rec.c: the FastCGI record decoder (what a backend sends), the
 * name-value pair walker and the PARAMS builder. The decoder must report the
 * same events whether the bytes arrive whole or split at a data-derived
 * point; pairs walked from the input and re-encoded by the builder must
 * decode back to themselves. First byte: request id and split pattern. */
#include "fuzz.h"

#include "fcgi_rec.h"

/* The decoder's events with stream data glued together, so that two ways of
 * slicing the same bytes compare equal. */
typedef struct entry {
    pt_fcgi_ev_type type;
    bool end; /* stream end (len 0) */
    char *data;
    size_t len;
    uint32_t app_status;
    uint8_t protocol_status;
    const char *error;
} entry;

typedef struct trace {
    entry *e;
    size_t n, cap;
    size_t consumed; /* up to and including END_REQUEST, or everything */
    bool idle;
} trace;

static entry *trace_add(trace *t, pt_fcgi_ev_type type)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->e = realloc(t->e, t->cap * sizeof(*t->e));
        FZ_CHECK(t->e != NULL);
    }
    entry *e = &t->e[t->n++];
    memset(e, 0, sizeof(*e));
    e->type = type;
    return e;
}

static void append(entry *e, const char *p, size_t n)
{
    e->data = realloc(e->data, e->len + n + 1);
    FZ_CHECK(e->data != NULL);
    memcpy(e->data + e->len, p, n);
    e->len += n;
}

static void on_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    const pt_fcgi_event *ev = ctx;
    FZ_CHECK(fz_inside(ev->data, ev->len, name, nlen) && fz_inside(ev->data, ev->len, value, vlen));
}

/* Feed p[0..len) in pieces of at most cap bytes (cap 0: whole). */
static void decode(const char *p, size_t len, uint16_t id, uint32_t seed, unsigned cap, trace *t)
{
    pt_fcgi_dec d;
    size_t pos = 0;
    bool over = false, dead = false;
    pt_fcgi_dec_init(&d, id);
    while (pos < len && !over) {
        size_t piece = cap ? fz_piece(&seed, cap, len - pos) : len - pos;
        /* each piece in its own allocation: slices must point into it */
        char *buf = fz_dup(p + pos, piece);
        size_t off = 0;
        while (off < piece && !over) {
            pt_fcgi_event ev;
            size_t n = pt_fcgi_dec_feed(&d, buf + off, piece - off, &ev);
            FZ_CHECK(n <= piece - off);
            /* progress, or an event to report */
            FZ_CHECK(n > 0 || ev.type != PT_FCGI_EV_NONE);
            switch (ev.type) {
            case PT_FCGI_EV_NONE:
                FZ_CHECK(n == piece - off); /* it only stops early for an event */
                break;
            case PT_FCGI_EV_STDOUT:
            case PT_FCGI_EV_STDERR: {
                entry *e = t->n ? &t->e[t->n - 1] : NULL;
                FZ_CHECK(ev.len <= n);
                if (ev.len) {
                    FZ_CHECK(fz_inside(buf + off, n, ev.data, ev.len));
                    if (!e || e->type != ev.type || e->end)
                        e = trace_add(t, ev.type);
                    append(e, ev.data, ev.len);
                } else {
                    e = trace_add(t, ev.type);
                    e->end = true;
                }
                break;
            }
            case PT_FCGI_EV_END: {
                entry *e = trace_add(t, ev.type);
                e->app_status = ev.app_status;
                e->protocol_status = ev.protocol_status;
                /* the record is over: the decoder is between records */
                FZ_CHECK(pt_fcgi_dec_idle(&d));
                over = true;
                break;
            }
            case PT_FCGI_EV_VALUES: {
                entry *e = trace_add(t, ev.type);
                FZ_CHECK(ev.len <= 65535 && (ev.len == 0 || ev.data != NULL));
                if (ev.len)
                    append(e, ev.data, ev.len);
                int rc = pt_fcgi_pairs(ev.data, ev.len, on_pair, &ev);
                FZ_CHECK(rc == 0 || rc == -1);
                break;
            }
            case PT_FCGI_EV_ERROR: {
                entry *e = trace_add(t, ev.type);
                FZ_CHECK(ev.error != NULL);
                e->error = ev.error;
                /* a dead decoder swallows everything and stays dead */
                FZ_CHECK(n == piece - off && !pt_fcgi_dec_idle(&d));
                pt_fcgi_event again;
                FZ_CHECK(pt_fcgi_dec_feed(&d, "x", 1, &again) == 1 &&
                         again.type == PT_FCGI_EV_ERROR && strcmp(again.error, ev.error) == 0);
                over = dead = true;
                break;
            }
            default:
                FZ_CHECK(!"unknown event type");
            }
            off += n;
        }
        pos += off;
        free(buf);
    }
    t->consumed = dead ? len : pos; /* after an error all input counts as consumed */
    t->idle = pt_fcgi_dec_idle(&d);
    pt_fcgi_dec_free(&d);
}

static void trace_free(trace *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].data);
    free(t->e);
}

static void compare(const trace *a, const trace *b)
{
    FZ_CHECK(a->n == b->n);
    FZ_CHECK(a->consumed == b->consumed);
    FZ_CHECK(a->idle == b->idle);
    for (size_t i = 0; i < a->n; i++) {
        const entry *x = &a->e[i], *y = &b->e[i];
        FZ_CHECK(x->type == y->type && x->end == y->end && x->len == y->len);
        FZ_CHECK(x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
        FZ_CHECK(x->app_status == y->app_status && x->protocol_status == y->protocol_status);
        FZ_CHECK((x->error == NULL) == (y->error == NULL));
        FZ_CHECK(!x->error || strcmp(x->error, y->error) == 0);
    }
}

/* ---- pairs -> builder -> records -> pairs ---- */

typedef struct pairs {
    struct {
        const char *name, *value;
        size_t nlen, vlen;
    } v[64];
    size_t n;
    bool overflow;
} pairs;

static void collect(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    pairs *ps = ctx;
    if (ps->n == PT_ARRAY_LEN(ps->v)) {
        ps->overflow = true;
        return;
    }
    ps->v[ps->n].name = name;
    ps->v[ps->n].nlen = nlen;
    ps->v[ps->n].value = value;
    ps->v[ps->n].vlen = vlen;
    ps->n++;
}

typedef struct cursor {
    const pairs *want;
    size_t i;
} cursor;

static void expect(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    cursor *c = ctx;
    FZ_CHECK(c->i < c->want->n);
    FZ_CHECK(nlen == c->want->v[c->i].nlen && vlen == c->want->v[c->i].vlen);
    FZ_CHECK(nlen == 0 || memcmp(name, c->want->v[c->i].name, nlen) == 0);
    FZ_CHECK(vlen == 0 || memcmp(value, c->want->v[c->i].value, vlen) == 0);
    c->i++;
}

static void roundtrip(const char *p, size_t len, uint16_t id)
{
    pairs ps = {.n = 0};
    int rc = pt_fcgi_pairs(p, len, collect, &ps);
    if (rc != 0 || ps.overflow)
        return;
    pt_fcgi_params b;
    pt_fcgi_params_init(&b, id);
    for (size_t i = 0; i < ps.n; i++)
        FZ_CHECK(pt_fcgi_params_add(&b, ps.v[i].name, ps.v[i].nlen, ps.v[i].value, ps.v[i].vlen) ==
                 0);
    FZ_CHECK(pt_fcgi_params_finish(&b) == 0);
    /* records: PARAMS, this id, padded to 8, each holding whole pairs, the
     * last one empty (FastCGI spec §3.3, §5.2) */
    cursor c = {&ps, 0};
    size_t off = 0;
    bool last = false;
    FZ_CHECK(b.len % 8 == 0);
    while (off < b.len) {
        const unsigned char *h = (const unsigned char *)b.buf + off;
        FZ_CHECK(!last && b.len - off >= FCGI_HEADER_LEN);
        FZ_CHECK(h[0] == FCGI_VERSION_1 && h[1] == FCGI_PARAMS);
        FZ_CHECK(((h[2] << 8) | h[3]) == id);
        size_t clen = ((size_t)h[4] << 8) | h[5], pad = h[6];
        FZ_CHECK((clen + pad) % 8 == 0 && pad < 8);
        FZ_CHECK(b.len - off - FCGI_HEADER_LEN >= clen + pad);
        FZ_CHECK(pt_fcgi_pairs(b.buf + off + FCGI_HEADER_LEN, clen, expect, &c) == 0);
        last = clen == 0;
        off += FCGI_HEADER_LEN + clen + pad;
    }
    FZ_CHECK(last && c.i == ps.n);
    pt_fcgi_params_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    uint16_t id = (opt & 1) ? 1 : (uint16_t)(opt >> 1); /* fcgi.c uses 1, probes 0 */
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t seed = fz_seed(data, size);
    trace whole = {0}, split = {0}, split2 = {0};

    decode(p, len, id, 0, 0, &whole);
    /* one data-derived cut, then many small pieces */
    decode(p, len, id, seed, (unsigned)(len / 2 + 1), &split);
    decode(p, len, id, seed, (opt & 0x80) ? 1 : 9, &split2);
    compare(&whole, &split);
    compare(&whole, &split2);
    trace_free(&whole);
    trace_free(&split);
    trace_free(&split2);

    roundtrip(p, len, id);
    return 0;
}
