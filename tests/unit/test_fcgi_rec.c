#include "first.h"
#include "fcgi_rec.h"

/* test_fcgi_rec.c: the FastCGI record codec. Encoders are checked byte by
 * byte against the FastCGI 1.0 layout (§3.3, §3.4, §5.1, §4.1); the decoder
 * against hand-built bytes, every protocol error, and a multi-record stream
 * fed at every split point, byte by byte and at random cuts, each piece in
 * its own exact-size allocation so a read past it trips ASan. */

#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- a growable byte string ---------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes;

static void b_put(bytes *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        while (b->cap - b->len < n)
            b->cap = b->cap ? b->cap * 2 : 256;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Append one record; the padding is filled with 0xAA so a decoder that
 * reports padding as content is caught. */
static void b_record(bytes *b, unsigned type, uint16_t id, const void *content, size_t clen,
                     uint8_t pad)
{
    unsigned char h[FCGI_HEADER_LEN], pb[255];

    pt_fcgi_header(h, type, id, (uint16_t)clen, pad);
    b_put(b, h, sizeof(h));
    b_put(b, content, clen);
    memset(pb, 0xAA, pad);
    b_put(b, pb, pad);
}

static void b_end(bytes *b, uint16_t id, uint32_t app, uint8_t proto, uint8_t pad)
{
    unsigned char body[8] = {(unsigned char)(app >> 24),
                             (unsigned char)(app >> 16),
                             (unsigned char)(app >> 8),
                             (unsigned char)app,
                             proto,
                             0,
                             0,
                             0};
    b_record(b, FCGI_END_REQUEST, id, body, 8, pad);
}

/* ---- decoding runs --------------------------------------------------------- */

typedef struct run {
    bytes out, err;         /* concatenated STDOUT / STDERR */
    int out_ends, err_ends; /* zero-length records seen */
    uint32_t app[4];        /* END_REQUEST statuses in order */
    uint8_t proto[4];
    size_t end_at[4]; /* stream offset right after each END_REQUEST */
    int nend;
    bytes values; /* GET_VALUES_RESULT contents, concatenated */
    int nvalues;
    const char *error;
    bool bad_slice; /* a slice pointed outside the piece fed */
    bool idle;      /* the decoder was idle at the end */
    int events;
} run;

static void run_free(run *r)
{
    free(r->out.p);
    free(r->err.p);
    free(r->values.p);
}

/* Decode in[0..len) cut at cuts[] (sorted, inside (0,len)). Every piece is
 * copied into its own malloc'd buffer of exactly its size. */
static run run_cuts(const unsigned char *in, size_t len, const size_t *cuts, size_t ncuts)
{
    run r;
    pt_fcgi_dec d;
    size_t start = 0, total = 0;

    memset(&r, 0, sizeof(r));
    pt_fcgi_dec_init(&d, 1);
    for (size_t k = 0; k <= ncuts && !r.error; k++) {
        size_t end = k < ncuts ? cuts[k] : len, plen = end - start, off = 0;
        char *piece = malloc(plen ? plen : 1);

        memcpy(piece, in + start, plen);
        while (off < plen) {
            pt_fcgi_event ev;
            size_t n = pt_fcgi_dec_feed(&d, piece + off, plen - off, &ev);

            if (n > plen - off) {
                r.error = "consumed too much";
                break;
            }
            off += n;
            total += n;
            if (ev.type != PT_FCGI_EV_NONE)
                r.events++;
            if (ev.type == PT_FCGI_EV_STDOUT || ev.type == PT_FCGI_EV_STDERR) {
                /* a slice lies inside what this call consumed */
                r.bad_slice |= ev.data < piece + off - n || ev.data + ev.len > piece + off;
                if (ev.len == 0)
                    ev.type == PT_FCGI_EV_STDOUT ? r.out_ends++ : r.err_ends++;
                else
                    b_put(ev.type == PT_FCGI_EV_STDOUT ? &r.out : &r.err, ev.data, ev.len);
            } else if (ev.type == PT_FCGI_EV_END) {
                if (r.nend < 4) {
                    r.app[r.nend] = ev.app_status;
                    r.proto[r.nend] = ev.protocol_status;
                    r.end_at[r.nend] = total;
                }
                r.nend++;
            } else if (ev.type == PT_FCGI_EV_VALUES) {
                b_put(&r.values, ev.data, ev.len);
                r.nvalues++;
            } else if (ev.type == PT_FCGI_EV_ERROR) {
                r.error = ev.error;
                break;
            } else if (n == 0) {
                r.error = "no progress";
                break;
            }
        }
        free(piece);
        start = end;
    }
    r.idle = pt_fcgi_dec_idle(&d);
    pt_fcgi_dec_free(&d);
    return r;
}

static bool b_same(const bytes *a, const bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static bool run_same(const run *a, const run *b)
{
    if (!b_same(&a->out, &b->out) || !b_same(&a->err, &b->err) || !b_same(&a->values, &b->values))
        return false;
    if (a->out_ends != b->out_ends || a->err_ends != b->err_ends || a->nend != b->nend ||
        a->nvalues != b->nvalues || a->bad_slice || b->bad_slice || a->idle != b->idle)
        return false;
    if ((a->error == NULL) != (b->error == NULL) || (a->error && strcmp(a->error, b->error) != 0))
        return false;
    for (int i = 0; i < a->nend && i < 4; i++)
        if (a->app[i] != b->app[i] || a->proto[i] != b->proto[i] || a->end_at[i] != b->end_at[i])
            return false;
    return true;
}

static unsigned rng_state = 2463534242u;
static unsigned rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Whole, at every single split, byte by byte, and at random cut sets: all
 * must equal the whole-buffer run. Returns that run (caller frees). */
static run check_all_splits(const unsigned char *in, size_t len, const char *what)
{
    run whole = run_cuts(in, len, NULL, 0);
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    bool all = true;
    run r;

    for (size_t i = 1; i < len; i++) {
        cuts[0] = i;
        r = run_cuts(in, len, cuts, 1);
        if (!run_same(&whole, &r)) {
            if (all)
                printf("# %s: split at %zu differs\n", what, i);
            all = false;
        }
        run_free(&r);
    }
    ok(all, "dec_%s_same_at_every_split_point", what);

    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    r = run_cuts(in, len, cuts, len ? len - 1 : 0);
    ok(run_same(&whole, &r), "dec_%s_same_byte_by_byte", what);
    run_free(&r);

    all = true;
    for (int t = 0; t < 300 && len > 1; t++) {
        size_t n = 1 + rng() % 12;
        for (size_t k = 0; k < n; k++)
            cuts[k] = 1 + rng() % (len - 1);
        qsort(cuts, n, sizeof(*cuts), cmp_size);
        r = run_cuts(in, len, cuts, n);
        all &= run_same(&whole, &r);
        run_free(&r);
    }
    ok(all, "dec_%s_same_at_random_cuts", what);
    free(cuts);
    return whole;
}

/* ---- decoder tests ----------------------------------------------------------- */

static void test_hand_built(void)
{
    /* §3.3 wire format without the encoder: STDOUT id 1, "hello", 3 pad */
    static const unsigned char rec[] = {0x01, 0x06, 0x00, 0x01, 0x00, 0x05, 0x03, 0x00,
                                        'h',  'e',  'l',  'l',  'o',  0x00, 0x00, 0x00};
    /* §5.5: END_REQUEST appStatus 0x00000102, protocolStatus 3, + 2 pad */
    static const unsigned char end[] = {0x01, 0x03, 0x00, 0x01, 0x00, 0x08, 0x02, 0x00, 0x00,
                                        0x00, 0x01, 0x02, 0x03, 0x00, 0x00, 0x00, 0xEE, 0xEE};
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    size_t n;

    pt_fcgi_dec_init(&d, 1);
    ok(pt_fcgi_dec_idle(&d), "dec_idle_at_start");
    n = pt_fcgi_dec_feed(&d, (const char *)rec, sizeof(rec), &ev);
    ok(ev.type == PT_FCGI_EV_STDOUT && ev.len == 5 && memcmp(ev.data, "hello", 5) == 0,
       "dec_hand_built_stdout_hello");
    ok(ev.data == (const char *)rec + 8, "dec_stdout_is_zero_copy");
    ok(n == sizeof(rec), "dec_consumes_padding_with_last_slice (%zu)", n);
    ok(pt_fcgi_dec_idle(&d), "dec_idle_after_record");

    n = pt_fcgi_dec_feed(&d, (const char *)end, sizeof(end), &ev);
    ok(ev.type == PT_FCGI_EV_END && ev.app_status == 0x102 &&
           ev.protocol_status == FCGI_UNKNOWN_ROLE && n == sizeof(end),
       "dec_hand_built_end_request");
    ok(pt_fcgi_dec_idle(&d), "dec_idle_after_end");
    pt_fcgi_dec_free(&d);

    /* a zero-length STDERR then STDOUT: each stream's end, len 0 */
    static const unsigned char ends[] = {1, 7, 0, 1, 0, 0, 0, 0, 1, 6, 0, 1, 0, 0, 1, 0, 0};
    pt_fcgi_dec_init(&d, 1);
    n = pt_fcgi_dec_feed(&d, (const char *)ends, sizeof(ends), &ev);
    ok(ev.type == PT_FCGI_EV_STDERR && ev.len == 0 && n == 8, "dec_empty_stderr_is_stream_end");
    n = pt_fcgi_dec_feed(&d, (const char *)ends + 8, sizeof(ends) - 8, &ev);
    ok(ev.type == PT_FCGI_EV_STDOUT && ev.len == 0 && n == 9, "dec_empty_stdout_is_stream_end");
    ok(pt_fcgi_dec_idle(&d), "dec_idle_after_empty_records");
    n = pt_fcgi_dec_feed(&d, NULL, 0, &ev);
    ok(n == 0 && ev.type == PT_FCGI_EV_NONE, "dec_empty_feed_is_none");
    pt_fcgi_dec_free(&d);
}

static void test_idle_states(void)
{
    bytes b = {0};
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    size_t n;

    b_record(&b, FCGI_STDOUT, 1, "abcd", 4, 4);
    pt_fcgi_dec_init(&d, 1);
    n = pt_fcgi_dec_feed(&d, (const char *)b.p, 3, &ev);
    ok(n == 3 && ev.type == PT_FCGI_EV_NONE && !pt_fcgi_dec_idle(&d), "dec_not_idle_in_header");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p + 3, 7, &ev); /* header + "ab" */
    ok(n == 7 && ev.type == PT_FCGI_EV_STDOUT && ev.len == 2 && !pt_fcgi_dec_idle(&d),
       "dec_not_idle_in_content");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p + 10, 4, &ev); /* "cd" + 2 of 4 pad */
    ok(n == 4 && ev.type == PT_FCGI_EV_STDOUT && ev.len == 2 && !pt_fcgi_dec_idle(&d),
       "dec_not_idle_in_padding");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p + 14, 2, &ev);
    ok(n == 2 && ev.type == PT_FCGI_EV_NONE && pt_fcgi_dec_idle(&d), "dec_idle_after_padding");
    pt_fcgi_dec_free(&d);
    free(b.p);
}

static void test_end_stops_feed(void)
{
    bytes b = {0};
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    size_t n, endlen;

    b_end(&b, 1, 0, FCGI_REQUEST_COMPLETE, 6);
    endlen = b.len;
    b_record(&b, FCGI_STDOUT, 1, "next", 4, 4); /* the next request's bytes */
    pt_fcgi_dec_init(&d, 1);
    n = pt_fcgi_dec_feed(&d, (const char *)b.p, b.len, &ev);
    ok(ev.type == PT_FCGI_EV_END && n == endlen && pt_fcgi_dec_idle(&d),
       "dec_end_returns_after_its_padding (%zu of %zu)", n, b.len);

    /* END split inside its body and its padding: reported only at the end */
    pt_fcgi_dec_free(&d);
    pt_fcgi_dec_init(&d, 1);
    n = pt_fcgi_dec_feed(&d, (const char *)b.p, 11, &ev);
    ok(n == 11 && ev.type == PT_FCGI_EV_NONE, "dec_end_body_gathered_across_splits");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p + 11, 8, &ev);
    ok(n == 8 && ev.type == PT_FCGI_EV_NONE, "dec_end_waits_for_padding");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p + 19, b.len - 19, &ev);
    ok(n == endlen - 19 && ev.type == PT_FCGI_EV_END && ev.app_status == 0,
       "dec_end_reported_after_padding");
    pt_fcgi_dec_free(&d);
    free(b.p);
}

static void test_stream_splits(void)
{
    bytes b = {0};
    unsigned char big[300];
    run r;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7 + 1);
    /* request 1 */
    b_record(&b, FCGI_STDOUT, 1, "Content-Type: text/plain\r\n\r\n", 28, 0);
    b_record(&b, FCGI_STDERR, 1, "warn one\n", 9, 7);
    b_record(&b, FCGI_STDOUT, 1, big, sizeof(big), 255);
    b_record(&b, FCGI_STDERR, 1, "warn two\n", 9, 1);
    b_record(&b, FCGI_STDOUT, 1, "x", 1, 0);
    b_record(&b, FCGI_STDERR, 1, NULL, 0, 5);
    b_record(&b, FCGI_STDOUT, 1, NULL, 0, 0);
    b_end(&b, 1, 0x01020304, FCGI_REQUEST_COMPLETE, 0);
    size_t end1 = b.len;
    /* request 2 on the same (kept) connection */
    b_record(&b, FCGI_STDOUT, 1, "second", 6, 2);
    b_record(&b, FCGI_STDOUT, 1, NULL, 0, 255);
    b_end(&b, 1, 7, FCGI_OVERLOADED, 255);

    r = check_all_splits(b.p, b.len, "stream");
    ok(r.error == NULL && r.nend == 2, "dec_stream_two_ends");
    ok(r.out.len == 28 + 300 + 1 + 6 && memcmp(r.out.p, "Content-Type", 12) == 0 &&
           memcmp(r.out.p + 28, big, 300) == 0 && r.out.p[328] == 'x' &&
           memcmp(r.out.p + 329, "second", 6) == 0,
       "dec_stream_stdout_concatenated");
    ok_mem(r.err.p, r.err.len, "warn one\nwarn two\n", "dec_stream_stderr_concatenated");
    ok(r.out_ends == 2 && r.err_ends == 1, "dec_stream_stream_ends_reported");
    ok(r.app[0] == 0x01020304 && r.proto[0] == FCGI_REQUEST_COMPLETE && r.app[1] == 7 &&
           r.proto[1] == FCGI_OVERLOADED,
       "dec_stream_end_statuses");
    ok(r.end_at[0] == end1 && r.end_at[1] == b.len, "dec_stream_end_offsets");
    ok(r.idle, "dec_stream_idle_at_end");
    run_free(&r);
    free(b.p);
}

static void test_values(void)
{
    bytes b = {0};
    run r;
    static const char pairs[] = "\x0e\x01"
                                "FCGI_MAX_CONNS"
                                "8"
                                "\x0d\x02"
                                "FCGI_MAX_REQS"
                                "16";

    b_record(&b, FCGI_GET_VALUES_RESULT, 0, pairs, sizeof(pairs) - 1, 3);
    b_record(&b, FCGI_STDOUT, 1, "after", 5, 3);
    r = check_all_splits(b.p, b.len, "values");
    ok(r.error == NULL && r.nvalues == 1 && r.values.len == sizeof(pairs) - 1 &&
           memcmp(r.values.p, pairs, r.values.len) == 0,
       "dec_values_gathered");
    ok_mem(r.out.p, r.out.len, "after", "dec_values_then_stdout");
    run_free(&r);

    /* an empty GET_VALUES_RESULT */
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    unsigned char h[8];
    pt_fcgi_header(h, FCGI_GET_VALUES_RESULT, 0, 0, 0);
    pt_fcgi_dec_init(&d, 1);
    size_t n = pt_fcgi_dec_feed(&d, (const char *)h, 8, &ev);
    ok(n == 8 && ev.type == PT_FCGI_EV_VALUES && ev.len == 0 && ev.data != NULL,
       "dec_empty_values");
    /* two in a row: the second replaces the first */
    b.len = 0;
    b_record(&b, FCGI_GET_VALUES_RESULT, 0,
             "\x01\x01"
             "ab",
             4, 4);
    b_record(&b, FCGI_GET_VALUES_RESULT, 0,
             "\x01\x01"
             "cd",
             4, 0);
    n = pt_fcgi_dec_feed(&d, (const char *)b.p, b.len, &ev);
    ok(n == 16 && ev.type == PT_FCGI_EV_VALUES && ev.len == 4 && memcmp(ev.data + 2, "ab", 2) == 0,
       "dec_values_first");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p + 16, b.len - 16, &ev);
    ok(n == 12 && ev.type == PT_FCGI_EV_VALUES && ev.len == 4 && memcmp(ev.data + 2, "cd", 2) == 0,
       "dec_values_second");
    pt_fcgi_dec_free(&d);
    free(b.p);
}

/* Feed a lone header (and some content) and expect the error reason. */
static const char *error_of(unsigned char version, unsigned type, uint16_t id, uint16_t clen)
{
    static char content[64];
    unsigned char h[8];
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    const char *why = NULL;

    pt_fcgi_header(h, type, id, clen, 0);
    h[0] = version;
    pt_fcgi_dec_init(&d, 1);
    size_t n = pt_fcgi_dec_feed(&d, (const char *)h, 8, &ev);
    if (ev.type == PT_FCGI_EV_ERROR && n == 8)
        why = ev.error;
    else if (ev.type == PT_FCGI_EV_NONE || ev.type == PT_FCGI_EV_STDOUT) {
        pt_fcgi_dec_feed(&d, content, PT_MIN(clen, sizeof(content)), &ev);
        if (ev.type == PT_FCGI_EV_ERROR)
            why = ev.error;
    }
    pt_fcgi_dec_free(&d);
    return why ? why : "(none)";
}

#define ok_error(got, want, ...) ok(strcmp((got), (want)) == 0, __VA_ARGS__)

static void test_errors(void)
{
    static const unsigned bad_types[] = {0,
                                         FCGI_BEGIN_REQUEST,
                                         FCGI_ABORT_REQUEST,
                                         FCGI_PARAMS,
                                         FCGI_STDIN,
                                         FCGI_DATA,
                                         FCGI_GET_VALUES,
                                         12,
                                         200,
                                         255};

    ok_error(error_of(0, FCGI_STDOUT, 1, 0), "bad version", "dec_rejects_version_0");
    ok_error(error_of(2, FCGI_STDOUT, 1, 0), "bad version", "dec_rejects_version_2");
    ok_error(error_of(0, FCGI_END_REQUEST, 1, 8), "bad version", "dec_rejects_bad_version_first");
    ok_error(error_of(1, FCGI_STDOUT, 2, 5), "unexpected request id", "dec_rejects_stdout_id_2");
    ok_error(error_of(1, FCGI_STDERR, 0, 5), "unexpected request id", "dec_rejects_stderr_id_0");
    ok_error(error_of(1, FCGI_END_REQUEST, 0x0101, 8), "unexpected request id",
             "dec_rejects_end_request_wrong_id");
    for (size_t i = 0; i < PT_ARRAY_LEN(bad_types); i++)
        ok_error(error_of(1, bad_types[i], 1, 8), "unexpected record type",
                 "dec_rejects_record_type_%u", bad_types[i]);
    ok_error(error_of(1, FCGI_END_REQUEST, 1, 7), "bad END_REQUEST length",
             "dec_rejects_end_request_length_7");
    ok_error(error_of(1, FCGI_END_REQUEST, 1, 9), "bad END_REQUEST length",
             "dec_rejects_end_request_length_9");
    ok_error(error_of(1, FCGI_END_REQUEST, 1, 0), "bad END_REQUEST length",
             "dec_rejects_end_request_length_0");
    ok_error(error_of(1, FCGI_UNKNOWN_TYPE, 0, 8), "backend sent FCGI_UNKNOWN_TYPE",
             "dec_rejects_unknown_type");
    ok_error(error_of(1, FCGI_UNKNOWN_TYPE, 1, 8), "backend sent FCGI_UNKNOWN_TYPE",
             "dec_rejects_unknown_type_with_id");
    ok(strstr(error_of(1, FCGI_GET_VALUES_RESULT, 1, 0), "request id") != NULL,
       "dec_rejects_values_result_with_request_id");
    ok_error(error_of(1, FCGI_STDOUT, 1, 5), "(none)", "dec_accepts_good_stdout_header");

    /* dead stays dead: later input, good or empty, errors again */
    bytes b = {0};
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    size_t n;
    b_record(&b, FCGI_STDOUT, 1, "ok", 2, 0);
    pt_fcgi_dec_init(&d, 1);
    unsigned char h[8];
    pt_fcgi_header(h, FCGI_STDOUT, 3, 0, 0);
    n = pt_fcgi_dec_feed(&d, (const char *)h, 8, &ev);
    ok(ev.type == PT_FCGI_EV_ERROR && n == 8, "dec_error_consumes_input");
    n = pt_fcgi_dec_feed(&d, (const char *)b.p, b.len, &ev);
    ok(ev.type == PT_FCGI_EV_ERROR && strcmp(ev.error, "unexpected request id") == 0 && n == b.len,
       "dec_dead_after_error");
    n = pt_fcgi_dec_feed(&d, NULL, 0, &ev);
    ok(ev.type == PT_FCGI_EV_ERROR && n == 0, "dec_dead_on_empty_feed");
    ok(!pt_fcgi_dec_idle(&d), "dec_dead_is_not_idle");
    pt_fcgi_dec_free(&d);

    /* an error after good records, at every split: same output, same reason */
    b.len = 0;
    b_record(&b, FCGI_STDOUT, 1, "good", 4, 4);
    b_record(&b, FCGI_STDERR, 1, "e", 1, 7);
    b_record(&b, FCGI_PARAMS, 1, "zz", 2, 6);
    b_record(&b, FCGI_STDOUT, 1, "never", 5, 3);
    run r = check_all_splits(b.p, b.len, "error_stream");
    ok(r.error && strcmp(r.error, "unexpected record type") == 0 && r.out.len == 4 &&
           memcmp(r.out.p, "good", 4) == 0 && r.err.len == 1,
       "dec_error_after_good_records");
    run_free(&r);
    free(b.p);
}

/* Random and mutated input: must never crash or read out of bounds (ASan),
 * and must always make progress. */
static void test_garbage(void)
{
    bytes good = {0};
    bool fine = true;

    b_record(&good, FCGI_STDOUT, 1, "hello world", 11, 5);
    b_record(&good, FCGI_STDERR, 1, "e", 1, 0);
    b_record(&good, FCGI_GET_VALUES_RESULT, 0,
             "\x01\x01"
             "ab",
             4, 4);
    b_end(&good, 1, 1, 0, 3);
    for (int t = 0; t < 3000; t++) {
        unsigned char buf[96];
        size_t len = t < 1500 ? good.len : 1 + rng() % sizeof(buf);
        size_t cuts[4];
        if (t < 1500) {
            memcpy(buf, good.p, len);
            for (int k = 0; k < 3; k++)
                buf[rng() % len] = (unsigned char)rng();
        } else {
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)(i % 8 == 0 ? 1 : rng());
        }
        size_t nc = len > 1 ? rng() % 4 : 0;
        for (size_t k = 0; k < nc; k++)
            cuts[k] = 1 + rng() % (len - 1);
        qsort(cuts, nc, sizeof(*cuts), cmp_size);
        run r = run_cuts(buf, len, cuts, nc);
        if (r.bad_slice || (r.error && strcmp(r.error, "no progress") == 0) ||
            (r.error && strcmp(r.error, "consumed too much") == 0))
            fine = false;
        run_free(&r);
    }
    ok(fine, "dec_survives_garbage_and_mutations");
    free(good.p);
}

/* ---- encoder tests ------------------------------------------------------------ */

static void test_fixed_records(void)
{
    unsigned char h[8], br[16], ar[8];
    static const unsigned char want_h[] = {1, 6, 0x12, 0x34, 0xAB, 0xCD, 0xEF, 0};
    static const unsigned char want_br[] = {1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    static const unsigned char want_br2[] = {1, 1, 0x12, 0x34, 0, 8, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0};
    static const unsigned char want_ar[] = {1, 2, 0x12, 0x34, 0, 0, 0, 0};

    pt_fcgi_header(h, FCGI_STDOUT, 0x1234, 0xABCD, 0xEF);
    ok(memcmp(h, want_h, 8) == 0, "enc_header_layout_big_endian");
    memset(br, 0x55, sizeof(br));
    pt_fcgi_begin_request(br, 1, FCGI_RESPONDER, true);
    ok(memcmp(br, want_br, 16) == 0, "enc_begin_request_responder_keep_conn");
    memset(br, 0x55, sizeof(br));
    pt_fcgi_begin_request(br, 0x1234, 0x0203, false);
    ok(memcmp(br, want_br2, 16) == 0, "enc_begin_request_role_and_id_no_keep_conn");
    memset(ar, 0x55, sizeof(ar));
    pt_fcgi_abort_request(ar, 0x1234);
    ok(memcmp(ar, want_ar, 8) == 0, "enc_abort_request_layout");

    /* what portico sends is refused by the backend-side decoder checks */
    pt_fcgi_dec d;
    pt_fcgi_event ev;
    pt_fcgi_dec_init(&d, 1);
    pt_fcgi_begin_request(br, 1, FCGI_RESPONDER, true);
    pt_fcgi_dec_feed(&d, (const char *)br, 16, &ev);
    ok(ev.type == PT_FCGI_EV_ERROR && strcmp(ev.error, "unexpected record type") == 0,
       "dec_rejects_begin_request_from_backend");
    pt_fcgi_dec_free(&d);
}

static void collect_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    bytes *b = ctx;
    uint32_t l[2] = {(uint32_t)nlen, (uint32_t)vlen};
    b_put(b, l, sizeof(l));
    b_put(b, name, nlen);
    b_put(b, value, vlen);
}

static void test_get_values(void)
{
    unsigned char out[128];
    static const unsigned char want[] = {
        1,  9,   0,   0,   0,   48,  0,   0, /* header: id 0, 48 bytes, no padding */
        14, 0,   'F', 'C', 'G', 'I', '_', 'M', 'A', 'X', '_', 'C', 'O', 'N', 'N', 'S',
        13, 0,   'F', 'C', 'G', 'I', '_', 'M', 'A', 'X', '_', 'R', 'E', 'Q', 'S', 15,
        0,  'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_', 'C', 'O', 'N', 'N', 'S'};
    size_t n = pt_fcgi_get_values(out);

    ok(n == sizeof(want) && memcmp(out, want, n) == 0, "enc_get_values_byte_by_byte (%zu)", n);
    ok(n % 8 == 0 && n <= 128, "enc_get_values_aligned");
    bytes got = {0};
    ok(pt_fcgi_pairs((const char *)out + 8, n - 8, collect_pair, &got) == 0 &&
           got.len == 3 * 8 + 14 + 13 + 15,
       "enc_get_values_pairs_walk");
    free(got.p);
}

/* Split an encoded PARAMS stream into records, checking each header, and
 * walk each record's pairs on its own (a pair must not straddle records).
 * Returns false on any violation; pairs are appended to *pairs, record
 * content lengths to lens[] (at most maxrec). */
static bool parse_params(const pt_fcgi_params *p, uint16_t id, bytes *pairs, size_t *lens,
                         size_t maxrec, size_t *nrec)
{
    const unsigned char *b = (const unsigned char *)p->buf;
    size_t off = 0;

    *nrec = 0;
    while (off < p->len) {
        if (p->len - off < 8)
            return false;
        size_t clen = ((size_t)b[off + 4] << 8) | b[off + 5], pad = b[off + 6];
        if (b[off] != 1 || b[off + 1] != FCGI_PARAMS || b[off + 2] != (id >> 8) ||
            b[off + 3] != (id & 0xff) || b[off + 7] != 0)
            return false;
        if ((clen + pad) % 8 != 0 || pad > 7 || p->len - off - 8 < clen + pad)
            return false;
        if (pt_fcgi_pairs((const char *)b + off + 8, clen, collect_pair, pairs) < 0)
            return false;
        if (*nrec < maxrec)
            lens[*nrec] = clen;
        (*nrec)++;
        off += 8 + clen + pad;
        if (clen == 0) /* the stream's end must be the last record */
            return off == p->len;
    }
    return false;
}

static void test_params_small(void)
{
    pt_fcgi_params p;
    static const unsigned char want_empty[] = {1, 4, 0, 1, 0, 0, 0, 0};

    pt_fcgi_params_init(&p, 1);
    ok(pt_fcgi_params_finish(&p) == 0 && p.len == 8 && memcmp(p.buf, want_empty, 8) == 0,
       "params_empty_is_one_empty_record");
    pt_fcgi_params_free(&p);

    /* 127 and 128: the 1-byte / 4-byte length boundary (§3.4) */
    char n127[127], v128[128], n128[128], v127[127];
    memset(n127, 'a', 127);
    memset(v128, 'b', 128);
    memset(n128, 'c', 128);
    memset(v127, 'd', 127);
    pt_fcgi_params_init(&p, 0x0102);
    ok(pt_fcgi_params_add(&p, n127, 127, v128, 128) == 0 &&
           pt_fcgi_params_add(&p, n128, 128, v127, 127) == 0 &&
           pt_fcgi_params_add(&p, "E", 1, "", 0) == 0 && pt_fcgi_params_finish(&p) == 0,
       "params_boundary_lengths_added");
    const unsigned char *b = (const unsigned char *)p.buf;
    size_t clen = (1 + 4 + 127 + 128) + (4 + 1 + 128 + 127) + (1 + 1 + 1);
    ok(b[0] == 1 && b[1] == FCGI_PARAMS && b[2] == 1 && b[3] == 2 && b[4] == (clen >> 8) &&
           b[5] == (clen & 0xff) && b[6] == (8 - clen % 8) % 8,
       "params_record_header");
    ok(b[8] == 127 && b[9] == 0x80 && b[10] == 0 && b[11] == 0 && b[12] == 128 && b[13] == 'a',
       "params_name_127_one_byte_value_128_four_bytes");
    const unsigned char *q = b + 8 + 1 + 4 + 127 + 128;
    ok(q[0] == 0x80 && q[1] == 0 && q[2] == 0 && q[3] == 128 && q[4] == 127 && q[5] == 'c',
       "params_name_128_four_bytes_value_127_one_byte");
    q += 4 + 1 + 128 + 127;
    ok(q[0] == 1 && q[1] == 0 && q[2] == 'E', "params_empty_value");
    size_t pad = b[6];
    for (size_t i = 0; i < pad; i++)
        if (b[8 + clen + i] != 0)
            pad = 999;
    ok(pad < 8, "params_padding_is_zero_bytes");
    ok(p.len == 8 + clen + b[6] + 8 &&
           memcmp(b + 8 + clen + b[6], "\x01\x04\x01\x02\x00\x00\x00\x00", 8) == 0,
       "params_ends_with_empty_record");
    bytes pairs = {0};
    size_t lens[4], nrec;
    ok(parse_params(&p, 0x0102, &pairs, lens, 4, &nrec) && nrec == 2, "params_parse_back");
    free(pairs.p);
    pt_fcgi_params_free(&p);
}

static void test_params_limits(void)
{
    pt_fcgi_params p;
    size_t vmax = FCGI_MAX_LENGTH - 4 - 4 - 200; /* name 200, value: fills a record */
    char *v = malloc(FCGI_MAX_LENGTH + 2), name[200];
    bytes pairs = {0};
    size_t lens[8], nrec;

    memset(v, 'v', FCGI_MAX_LENGTH + 2);
    memset(name, 'n', sizeof(name));

    /* a pair of exactly 65535 bytes fills one record */
    pt_fcgi_params_init(&p, 1);
    ok(pt_fcgi_params_add(&p, name, 200, v, vmax) == 0, "params_pair_exactly_filling_a_record");
    ok(pt_fcgi_params_add(&p, "A", 1, "1", 1) == 0 && pt_fcgi_params_finish(&p) == 0,
       "params_next_pair_added");
    ok(parse_params(&p, 1, &pairs, lens, 8, &nrec) && nrec == 3 && lens[0] == FCGI_MAX_LENGTH &&
           lens[1] == 4 && lens[2] == 0,
       "params_full_record_then_new_record");
    ok((unsigned char)p.buf[6] == 1, "params_full_record_padding_1");
    pt_fcgi_params_free(&p);
    free(pairs.p);

    /* a small pair first: the big one goes to its own record */
    pairs = (bytes){0};
    pt_fcgi_params_init(&p, 1);
    ok(pt_fcgi_params_add(&p, "A", 1, "1", 1) == 0 &&
           pt_fcgi_params_add(&p, name, 200, v, vmax) == 0 && pt_fcgi_params_finish(&p) == 0 &&
           parse_params(&p, 1, &pairs, lens, 8, &nrec) && nrec == 3 && lens[0] == 4 &&
           lens[1] == FCGI_MAX_LENGTH,
       "params_pair_never_straddles_records");
    pt_fcgi_params_free(&p);
    free(pairs.p);

    /* one byte more cannot fit any record */
    pt_fcgi_params_init(&p, 1);
    ok(pt_fcgi_params_add(&p, "A", 1, "1", 1) == 0, "params_small_before_e2big");
    errno = 0;
    ok(pt_fcgi_params_add(&p, name, 200, v, vmax + 1) == -1 && errno == E2BIG,
       "params_e2big_for_65536_byte_pair");
    errno = 0;
    ok(pt_fcgi_params_add(&p, "B", 1, "2", 1) == -1 && errno == E2BIG,
       "params_add_after_failure_fails");
    errno = 0;
    ok(pt_fcgi_params_finish(&p) == -1 && errno == E2BIG, "params_finish_reports_e2big");
    pt_fcgi_params_free(&p);

    pt_fcgi_params_init(&p, 1);
    errno = 0;
    ok(pt_fcgi_params_add(&p, v, FCGI_MAX_LENGTH + 1, "", 0) == -1 && errno == E2BIG,
       "params_e2big_for_huge_name");
    pt_fcgi_params_free(&p);
    pt_fcgi_params_init(&p, 1);
    ok(pt_fcgi_params_add(&p, "", 0, v, FCGI_MAX_LENGTH - 5) == 0 && pt_fcgi_params_finish(&p) == 0,
       "params_largest_value_with_empty_name");
    pt_fcgi_params_free(&p);
    free(v);
}

static void test_params_many(void)
{
    pt_fcgi_params p;
    bytes want = {0}, got = {0};
    size_t lens[64], nrec, npairs = 3000;
    char name[32], *val = malloc(400);
    bool packed = true;

    pt_fcgi_params_init(&p, 1);
    bool added = true;
    for (size_t i = 0; i < npairs; i++) {
        size_t nlen = (size_t)snprintf(name, sizeof(name), "HTTP_X_HEADER_%zu", i);
        size_t vlen = (i * 37) % 300;
        for (size_t k = 0; k < vlen; k++)
            val[k] = (char)('A' + (i + k) % 26);
        added &= pt_fcgi_params_add(&p, name, nlen, val, vlen) == 0;
        collect_pair(&want, name, nlen, val, vlen);
    }
    ok(added && pt_fcgi_params_finish(&p) == 0, "params_many_added");
    ok(parse_params(&p, 1, &got, lens, 64, &nrec) && nrec > 3 && nrec <= 64,
       "params_many_span_records (%zu)", nrec);
    ok(b_same(&want, &got), "params_many_decode_back_identical");
    /* greedy packing: every record but the last two is nearly full (the
     * next pair, at most 4+1+17+299 bytes, did not fit) */
    for (size_t i = 0; i + 2 < nrec && i < 64; i++)
        packed &= lens[i] + 4 + 1 + 17 + 299 > FCGI_MAX_LENGTH;
    ok(packed, "params_many_records_packed");
    pt_fcgi_params_free(&p);
    free(want.p);
    free(got.p);
    free(val);
}

static int pairs_seen;
static void count_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
    (void)ctx, (void)name, (void)nlen, (void)value, (void)vlen;
    pairs_seen++;
}

static void test_pairs_walker(void)
{
    /* "A"="1", 128-byte name = "", "" = 200-byte value */
    bytes b = {0}, got = {0};
    unsigned char l4[4] = {0x80, 0, 0, 128}, l4v[4] = {0x80, 0, 0, 200};
    char big[200];
    size_t bounds[4], nb = 0;
    bool all = true;

    memset(big, 'z', sizeof(big));
    b_put(&b,
          "\x01\x01"
          "A1",
          4);
    bounds[nb++] = b.len;
    b_put(&b, l4, 4);
    b_put(&b, "\x00", 1);
    b_put(&b, big, 128);
    bounds[nb++] = b.len;
    b_put(&b, "\x00", 1);
    b_put(&b, l4v, 4);
    b_put(&b, big, 200);
    bounds[nb++] = b.len;

    ok(pt_fcgi_pairs((const char *)b.p, b.len, collect_pair, &got) == 0 &&
           got.len == 3 * 8 + 2 + 128 + 200,
       "pairs_walks_1_and_4_byte_lengths");
    free(got.p);
    pairs_seen = 0;
    ok(pt_fcgi_pairs(NULL, 0, count_pair, NULL) == 0 && pairs_seen == 0, "pairs_empty_input");

    /* every prefix: whole pairs only are fine, anything else is rejected
     * and then no callback runs at all */
    for (size_t len = 1; len < b.len; len++) {
        bool boundary = false;
        for (size_t k = 0; k < nb; k++)
            boundary |= bounds[k] == len;
        char *copy = malloc(len);
        memcpy(copy, b.p, len);
        pairs_seen = 0;
        int rc = pt_fcgi_pairs(copy, len, count_pair, NULL);
        if (boundary ? rc != 0 : (rc != -1 || pairs_seen != 0)) {
            if (all)
                printf("# prefix %zu: rc %d seen %d\n", len, rc, pairs_seen);
            all = false;
        }
        free(copy);
    }
    ok(all, "pairs_rejects_every_truncation");

    static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'x'};
    ok(pt_fcgi_pairs((const char *)huge, sizeof(huge), count_pair, NULL) == -1,
       "pairs_rejects_huge_lengths");
    static const unsigned char half[] = {0x05, 0x80, 0x00};
    ok(pt_fcgi_pairs((const char *)half, sizeof(half), count_pair, NULL) == -1,
       "pairs_rejects_cut_four_byte_length");
    free(b.p);
}

int main(void)
{
    test_hand_built();
    test_idle_states();
    test_end_stops_feed();
    test_stream_splits();
    test_values();
    test_errors();
    test_garbage();
    test_fixed_records();
    test_get_values();
    test_params_small();
    test_params_limits();
    test_params_many();
    test_pairs_walker();
    return tap_done();
}
