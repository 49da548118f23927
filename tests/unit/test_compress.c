#include "first.h"
#include "compress.h"
#include "tap.h"

/* test_compress.c: the gzip and br streams of compress.c decode (with
 * zlib's inflate and libbrotlidec) to exactly the bytes fed, whatever the
 * pieces; a flush makes everything fed so far decodable (streaming); the
 * end is a complete stream; a stream's memory stays within the bound the
 * documentation states. */

#include <brotli/decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct sinkbuf {
    unsigned char *p;
    size_t len, cap;
    int fail_after; /* calls before the sink refuses; -1 never */
} sinkbuf;

static int sink(void *arg, const void *p, size_t n)
{
    sinkbuf *s = arg;
    if (s->fail_after == 0)
        return -1;
    if (s->fail_after > 0)
        s->fail_after--;
    if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2;
        unsigned char *q = realloc(s->p, cap);
        if (!q)
            return -1;
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    return 0;
}

/* Decode all of in (gzip) into out (cap); the decoded length, or -1 on a
 * corrupt stream; *complete: the stream's trailer was seen. */
static long gunzip(const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                   bool *complete)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + 15) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    long got = (long)(cap - zs.avail_out);
    *complete = rc == Z_STREAM_END;
    inflateEnd(&zs);
    return rc == Z_OK || rc == Z_STREAM_END || (rc == Z_BUF_ERROR && n == 0) ? got : -1;
}

static long unbrotli(const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                     bool *complete)
{
    BrotliDecoderState *d = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    size_t avail_in = n, avail_out = cap;
    const uint8_t *next_in = in;
    uint8_t *next_out = out;
    BrotliDecoderResult rc =
        BrotliDecoderDecompressStream(d, &avail_in, &next_in, &avail_out, &next_out, NULL);
    BrotliDecoderDestroyInstance(d);
    *complete = rc == BROTLI_DECODER_RESULT_SUCCESS;
    return rc == BROTLI_DECODER_RESULT_ERROR ? -1 : (long)(cap - avail_out);
}

static long decode(pt_zcoding zc, const sinkbuf *s, unsigned char *out, size_t cap, bool *complete)
{
    return zc == PT_ZC_GZIP ? gunzip(s->p, s->len, out, cap, complete)
                            : unbrotli(s->p, s->len, out, cap, complete);
}

/* Text-like input: repetitive markup with some noise, and a random tail. */
static unsigned char *make_input(size_t n)
{
    static const char *words[] = {"<div class=\"item\">", "</div>\n",        "portico ", "gateway ",
                                  "compression ",         "<a href=\"/x\">", "</a>",     "\t"};
    unsigned char *p = malloc(n);
    unsigned x = 12345;
    size_t i = 0;
    while (i < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 8];
        size_t l = strlen(w);
        if (i > n * 7 / 8) { /* incompressible tail */
            p[i++] = (unsigned char)(x >> 8);
            continue;
        }
        for (size_t k = 0; k < l && i < n; k++)
            p[i++] = (unsigned char)w[k];
    }
    return p;
}

static void test_round_trip(pt_zcoding zc, int level, size_t n, size_t piece, pt_zmode mode)
{
    const char *name = pt_compress_token(zc);
    unsigned char *in = make_input(n), *out = malloc(n + 16);
    sinkbuf s = {NULL, 0, 0, -1};
    pt_compress *z = pt_compress_new(zc, level, -1);
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        rc = pt_compress_write(z, in + off, k, mode, sink, &s);
    }
    if (rc == 0)
        rc = pt_compress_write(z, NULL, 0, PT_ZM_FINISH, sink, &s);
    bool complete = false;
    long got = decode(zc, &s, out, n + 16, &complete);
    ok(rc == 0 && complete && got == (long)n && memcmp(in, out, n) == 0,
       "%s level %d: %zu bytes in pieces of %zu (%s) decode to the same bytes (%zu coded)", name,
       level, n, piece, mode == PT_ZM_FLUSH ? "flushed" : "unflushed", s.len);
    pt_compress_free(z);
    free(s.p);
    free(in);
    free(out);
}

static void test_flush_streams(pt_zcoding zc)
{
    const char *name = pt_compress_token(zc);
    unsigned char *in = make_input(50000), out[60000];
    sinkbuf s = {NULL, 0, 0, -1};
    pt_compress *z = pt_compress_new(zc, 6, -1);
    /* held back without a flush (a small piece at level 6 stays inside) */
    pt_compress_write(z, in, 300, PT_ZM_MORE, sink, &s);
    ok(pt_compress_pending(z) == 300, "%s: 300 bytes pending before a flush", name);
    ok(pt_compress_write(z, in + 300, 700, PT_ZM_FLUSH, sink, &s) == 0, "%s: a flush succeeds",
       name);
    ok(pt_compress_pending(z) == 0, "%s: nothing pending after a flush", name);
    bool complete = true;
    long got = decode(zc, &s, out, sizeof(out), &complete);
    ok(got == 1000 && memcmp(in, out, 1000) == 0 && !complete,
       "%s: after a flush the 1000 bytes fed decode, the stream not yet ended", name);
    size_t before = s.len;
    ok(pt_compress_write(z, NULL, 0, PT_ZM_FLUSH, sink, &s) == 0 && s.len == before,
       "%s: a flush with nothing pending writes nothing", name);
    ok(pt_compress_write(z, in + 1000, 2000, PT_ZM_FINISH, sink, &s) == 0,
       "%s: the finish succeeds", name);
    got = decode(zc, &s, out, sizeof(out), &complete);
    ok(got == 3000 && memcmp(in, out, 3000) == 0 && complete, "%s: the finished stream is whole",
       name);
    ok(pt_compress_write(z, in, 10, PT_ZM_MORE, sink, &s) < 0, "%s: a write after the end fails",
       name);
    pt_compress_free(z);
    free(s.p);
    free(in);
}

static void test_empty(pt_zcoding zc)
{
    sinkbuf s = {NULL, 0, 0, -1};
    unsigned char out[16];
    pt_compress *z = pt_compress_new(zc, 1, -1);
    bool complete = false;
    int rc = pt_compress_write(z, NULL, 0, PT_ZM_FINISH, sink, &s);
    long got = decode(zc, &s, out, sizeof(out), &complete);
    ok(rc == 0 && s.len > 0 && got == 0 && complete, "%s: an empty body is a valid empty stream",
       pt_compress_token(zc));
    pt_compress_free(z);
    free(s.p);
}

static void test_sink_failure(pt_zcoding zc)
{
    unsigned char *in = make_input(200000);
    sinkbuf s = {NULL, 0, 0, 1};
    pt_compress *z = pt_compress_new(zc, 1, -1);
    ok(pt_compress_write(z, in, 200000, PT_ZM_FINISH, sink, &s) < 0,
       "%s: a sink that refuses fails the write", pt_compress_token(zc));
    pt_compress_free(z);
    free(s.p);
    free(in);
}

/* The per-response cost portico.conf(5) documents: gzip within 300 KiB
 * at any level (windowBits 15, memLevel 8), br within 2 MiB at the
 * on-the-fly qualities 0-7 (lgwin 16); a small known length costs less. */
static void test_memory_bound(void)
{
    unsigned char *in = make_input(1 << 20);
    size_t worst_gz = 0, worst_br = 0;
    for (int level = 1; level <= 9; level++) {
        sinkbuf s = {NULL, 0, 0, -1};
        pt_compress *z = pt_compress_new(PT_ZC_GZIP, level, -1);
        pt_compress_write(z, in, 1 << 20, PT_ZM_FLUSH, sink, &s);
        if (pt_compress_mem(z) > worst_gz)
            worst_gz = pt_compress_mem(z);
        pt_compress_free(z);
        free(s.p);
    }
    for (int level = 0; level <= 7; level++) {
        sinkbuf s = {NULL, 0, 0, -1};
        pt_compress *z = pt_compress_new(PT_ZC_BR, level, -1);
        pt_compress_write(z, in, 1 << 20, PT_ZM_FLUSH, sink, &s);
        if (pt_compress_mem(z) > worst_br)
            worst_br = pt_compress_mem(z);
        pt_compress_free(z);
        free(s.p);
    }
    printf("# memory per stream: gzip %zu bytes, br (0-7) %zu bytes\n", worst_gz, worst_br);
    ok(worst_gz > 0 && worst_gz <= 300 * 1024, "gzip: a stream holds at most 300 KiB (%zu)",
       worst_gz);
    ok(worst_br > 0 && worst_br <= 2048 * 1024, "br 0-7: a stream holds at most 2 MiB (%zu)",
       worst_br);
    /* a 2000-byte input: small tables, and still the same bytes back */
    static const pt_zcoding codings[] = {PT_ZC_GZIP, PT_ZC_BR};
    for (size_t i = 0; i < 2; i++) {
        sinkbuf s = {NULL, 0, 0, -1};
        unsigned char out[4000];
        bool complete = false;
        pt_compress *z = pt_compress_new(codings[i], 5, 2000);
        int rc = pt_compress_write(z, in, 2000, PT_ZM_FINISH, sink, &s);
        size_t mem = pt_compress_mem(z);
        long got = decode(codings[i], &s, out, sizeof(out), &complete);
        ok(rc == 0 && complete && got == 2000 && memcmp(in, out, 2000) == 0 &&
               mem < (i == 0 ? worst_gz / 4 : worst_br / 2),
           "%s: a 2000-byte input's stream holds %zu bytes and decodes",
           pt_compress_token(codings[i]), mem);
        pt_compress_free(z);
        free(s.p);
    }
    free(in);
}

int main(void)
{
    ok(pt_compress_new(PT_ZC_NONE, 1, -1) == NULL, "no stream for the identity coding");
    ok(strcmp(pt_compress_token(PT_ZC_GZIP), "gzip") == 0 &&
           strcmp(pt_compress_token(PT_ZC_BR), "br") == 0,
       "Content-Encoding tokens");
    static const pt_zcoding codings[] = {PT_ZC_GZIP, PT_ZC_BR};
    for (size_t i = 0; i < 2; i++) {
        pt_zcoding zc = codings[i];
        test_round_trip(zc, zc == PT_ZC_GZIP ? 6 : 5, 1, 1, PT_ZM_MORE);
        test_round_trip(zc, zc == PT_ZC_GZIP ? 6 : 5, 300000, 300000, PT_ZM_MORE);
        test_round_trip(zc, zc == PT_ZC_GZIP ? 1 : 0, 300000, 4096, PT_ZM_MORE);
        test_round_trip(zc, zc == PT_ZC_GZIP ? 9 : 11, 100000, 777, PT_ZM_FLUSH);
        test_round_trip(zc, zc == PT_ZC_GZIP ? 6 : 5, 5 << 20, 65536, PT_ZM_FLUSH);
        test_round_trip(zc, zc == PT_ZC_GZIP ? 42 : -3, 20000, 1000, PT_ZM_MORE); /* clamped */
        test_flush_streams(zc);
        test_empty(zc);
        test_sink_failure(zc);
    }
    test_memory_bound();
    return tap_done();
}
