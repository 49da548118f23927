#include "first.h"
#include "chunked.h"

/* test_chunked.c: the strict chunked decoder. Every case is fed whole, byte
 * by byte, at every single split point and at random split points (also
 * decoding in place) and must give the same verdict and payload each time. */

#include "tap.h"

#include <stdlib.h>

#define MAX_BODY_DEFAULT 1000000
#define MAX_TRAILER_DEFAULT 256

typedef struct result {
    pt_chunk_rc rc;
    size_t consumed; /* total input bytes used */
    char *payload;
    size_t plen;
} result;

/* Feed in[0..len) cut at the given split points (sorted, in (0,len)). A
 * copy of the input is decoded in place, as the connection code does. */
static result run_splits(const char *in, size_t len, const size_t *cuts, size_t ncuts,
                         uint64_t max_body, size_t max_trailer)
{
    pt_chunked c;
    result r = {PT_CHUNK_MORE, 0, malloc(len + 1), 0};
    char *buf = malloc(len + 1);
    size_t start = 0;

    memcpy(buf, in, len);
    pt_chunked_init(&c, max_body, max_trailer);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        size_t used = 0, olen = 0;
        r.rc = pt_chunked_decode(&c, buf + start, end - start, &used, buf + start, &olen);
        memcpy(r.payload + r.plen, buf + start, olen);
        r.plen += olen;
        r.consumed += used;
        if (r.rc != PT_CHUNK_MORE)
            break;
        if (used != end - start) {
            r.rc = (pt_chunk_rc)99; /* MORE must consume everything */
            break;
        }
        start = end;
    }
    free(buf);
    return r;
}

static bool same(const result *a, const result *b)
{
    return a->rc == b->rc && a->consumed == b->consumed && a->plen == b->plen &&
           memcmp(a->payload, b->payload, a->plen) == 0;
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

/* Decode one way (whole), then check that byte-by-byte, every 2-way split
 * and random splits agree. The whole-input result is returned. */
static result decode_all_ways(const char *in, size_t len, uint64_t max_body, size_t max_trailer,
                              bool *consistent)
{
    result whole = run_splits(in, len, NULL, 0, max_body, max_trailer);
    size_t *cuts = malloc((len + 8) * sizeof(size_t));
    bool fine = true;

    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    result r = run_splits(in, len, cuts, len ? len - 1 : 0, max_body, max_trailer);
    fine = fine && same(&whole, &r);
    free(r.payload);

    for (size_t i = 1; i < len && len < 4096 && fine; i++) {
        r = run_splits(in, len, &i, 1, max_body, max_trailer);
        fine = same(&whole, &r);
        free(r.payload);
    }
    for (int t = 0; t < 50 && fine && len > 1; t++) {
        size_t n = rng() % 8;
        for (size_t k = 0; k < n; k++)
            cuts[k] = 1 + rng() % (len - 1);
        qsort(cuts, n, sizeof(size_t), cmp_size);
        r = run_splits(in, len, cuts, n, max_body, max_trailer);
        fine = same(&whole, &r);
        free(r.payload);
    }
    free(cuts);
    *consistent = fine;
    return whole;
}

/* A full message that must decode to want and stop exactly at its end (the
 * tail after the message must be left for the next request). */
static void good_lim(const char *msg, const char *want, uint64_t max_body, size_t max_trailer,
                     const char *name)
{
    static const char tail[] = "GET / HTTP/1.1\r\n";
    size_t mlen = strlen(msg);
    char *in = malloc(mlen + sizeof(tail));
    bool cons;

    memcpy(in, msg, mlen);
    memcpy(in + mlen, tail, sizeof(tail) - 1);
    result r = decode_all_ways(in, mlen + sizeof(tail) - 1, max_body, max_trailer, &cons);
    ok(r.rc == PT_CHUNK_DONE && r.consumed == mlen && r.plen == strlen(want) &&
           memcmp(r.payload, want, r.plen) == 0 && cons,
       "%s", name);
    if (r.rc != PT_CHUNK_DONE || !cons)
        printf("#   rc=%d consumed=%zu of %zu consistent=%d\n", r.rc, r.consumed, mlen, cons);
    free(r.payload);
    free(in);
}

static void good(const char *msg, const char *want, const char *name)
{
    good_lim(msg, want, MAX_BODY_DEFAULT, MAX_TRAILER_DEFAULT, name);
}

static void bad_rc(const char *msg, size_t len, pt_chunk_rc want, uint64_t max_body,
                   size_t max_trailer, const char *name)
{
    bool cons;
    result r = decode_all_ways(msg, len, max_body, max_trailer, &cons);

    ok(r.rc == want && cons, "%s", name);
    if (r.rc != want || !cons)
        printf("#   rc=%d want=%d consistent=%d\n", r.rc, want, cons);
    free(r.payload);
}

static void bad(const char *msg, const char *name)
{
    bad_rc(msg, strlen(msg), PT_CHUNK_BAD, MAX_BODY_DEFAULT, MAX_TRAILER_DEFAULT, name);
}

static void test_valid(void)
{
    good("0\r\n\r\n", "", "chunked empty body");
    good("5\r\nhello\r\n0\r\n\r\n", "hello", "chunked one chunk");
    good("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", "chunked two chunks");
    good("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij",
         "chunked hex digits are case-insensitive");
    good("00000005\r\nhello\r\n000\r\n\r\n", "hello", "chunked leading zeros allowed");
    good("000000000000000F\r\n0123456789abcde\r\n0\r\n\r\n", "0123456789abcde",
         "chunked 16 hex digits accepted");
    good("5;name\r\nhello\r\n0\r\n\r\n", "hello", "chunked ext name only");
    good("5;name=val\r\nhello\r\n0\r\n\r\n", "hello", "chunked ext token value");
    good("5;a=\"q s;\\\"x\"\r\nhello\r\n0\r\n\r\n", "hello", "chunked ext quoted-string value");
    good("5;a=1;b;c=\"\"\r\nhello\r\n0;last=yes\r\n\r\n", "hello", "chunked several ext");
    good("5 ;a\r\nhello\r\n0\t;b\r\n\r\n", "hello", "chunked BWS before ';' (RFC 9112 7.1.1)");
    good("5; a = b ;c\r\nhello\r\n0\r\n\r\n", "hello", "chunked BWS inside ext per grammar");
    good("4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", "chunked data may contain CRLF");
    good("0\r\nX-Sum: abc\r\n\r\n", "", "chunked trailer field accepted and dropped");
    good("0\r\nA: 1\r\nB:\r\nC:\t x y \r\n\r\n", "", "chunked several trailers, empty value");
    good("0\r\nA: caf\xc3\xa9\r\n\r\n", "", "chunked trailer value allows obs-text");
}

static void test_binary(void)
{
    /* payload with NUL, CR, LF and high bytes must pass untouched */
    const char msg[] = "4\r\n\0\r\n\xff\r\n0\r\n\r\n";
    const char want[] = {'\0', '\r', '\n', (char)0xff};
    bool cons;
    result r = decode_all_ways(msg, sizeof(msg) - 1, MAX_BODY_DEFAULT, 0, &cons);
    ok(r.rc == PT_CHUNK_DONE && r.plen == 4 && memcmp(r.payload, want, 4) == 0 && cons,
       "chunked binary payload passes untouched");
    free(r.payload);

    /* a large random body in random chunk sizes */
    size_t plen = 300000, mlen = 0, off = 0;
    char *payload = malloc(plen), *m = malloc(plen * 2 + 64);
    for (size_t i = 0; i < plen; i++)
        payload[i] = (char)rng();
    while (off < plen) {
        size_t n = 1 + rng() % 9000;
        if (n > plen - off)
            n = plen - off;
        mlen += (size_t)sprintf(m + mlen, "%zx\r\n", n);
        memcpy(m + mlen, payload + off, n);
        mlen += n;
        off += n;
        memcpy(m + mlen, "\r\n", 2);
        mlen += 2;
    }
    memcpy(m + mlen, "0\r\n\r\n", 5);
    mlen += 5;
    r = decode_all_ways(m, mlen, plen, 0, &cons);
    ok(r.rc == PT_CHUNK_DONE && r.consumed == mlen && r.plen == plen &&
           memcmp(r.payload, payload, plen) == 0 && cons,
       "chunked 300 KB random body, any split, max_body == size");
    free(r.payload);
    bad_rc(m, mlen, PT_CHUNK_TOO_LARGE, plen - 1, 0, "chunked same body one byte over max_body");
    free(m);
    free(payload);
}

static void test_invalid(void)
{
    bad("\r\n", "chunked rejects empty size");
    bad(";a\r\n0\r\n\r\n", "chunked rejects ext without size");
    bad("-5\r\nhello\r\n0\r\n\r\n", "chunked rejects minus sign");
    bad("+5\r\nhello\r\n0\r\n\r\n", "chunked rejects plus sign");
    bad(" 5\r\nhello\r\n0\r\n\r\n", "chunked rejects space before size");
    bad("\t5\r\nhello\r\n0\r\n\r\n", "chunked rejects tab before size");
    bad("0x5\r\nhello\r\n0\r\n\r\n", "chunked rejects 0x prefix");
    bad("5g\r\nhello\r\n0\r\n\r\n", "chunked rejects non-hex digit");
    bad("5 \r\nhello\r\n0\r\n\r\n", "chunked rejects BWS not followed by ';'");
    bad("5 5\r\nhello\r\n0\r\n\r\n", "chunked rejects space inside size");
    bad("00000000000000005\r\nhello\r\n0\r\n\r\n", "chunked rejects 17 hex digits");
    bad("FFFFFFFFFFFFFFFFF\r\n", "chunked rejects size overflow");
    bad("5\nhello\r\n0\r\n\r\n", "chunked rejects bare LF after size");
    bad("5\rhello\r\n0\r\n\r\n", "chunked rejects bare CR after size");
    bad("5\r\nhello\n0\r\n\r\n", "chunked rejects bare LF after data");
    bad("5\r\nhello\r0\r\n\r\n", "chunked rejects bare CR after data");
    bad("5\r\nhelloXY0\r\n\r\n", "chunked rejects any two bytes in place of CRLF after data");
    bad("5\r\nhello world\r\n0\r\n\r\n", "chunked rejects data longer than size");
    bad("5;\r\nhello\r\n0\r\n\r\n", "chunked rejects ';' without ext name");
    bad("5;=v\r\nhello\r\n0\r\n\r\n", "chunked rejects ext without name");
    bad("5;a=\r\nhello\r\n0\r\n\r\n", "chunked rejects '=' without value");
    bad("5;a=b c\r\nhello\r\n0\r\n\r\n", "chunked rejects two tokens in value");
    bad("5;a@b\r\nhello\r\n0\r\n\r\n", "chunked rejects non-tchar in ext name");
    bad("5;a=\"open\r\nhello\r\n0\r\n\r\n", "chunked rejects unterminated quoted-string");
    bad("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", "chunked rejects junk after quoted-string");
    bad("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", "chunked rejects CTL inside quoted-string");
    bad("5;a=\"\\\x7f\"\r\nhello\r\n0\r\n\r\n", "chunked rejects quoted-pair of DEL");
    bad("5;a\n\r\nhello\r\n0\r\n\r\n", "chunked rejects bare LF after ext");
    bad("5;a \r\nhello\r\n0\r\n\r\n", "chunked rejects trailing BWS after ext name");
    bad("0\r\n\n", "chunked rejects bare LF as final line");
    bad("0\r\n\rX", "chunked rejects bare CR as final line");
    bad("0\r\nX-A : 1\r\n\r\n", "chunked rejects space before colon in trailer");
    bad("0\r\nX-A\r\n\r\n", "chunked rejects trailer without colon");
    bad("0\r\n: v\r\n\r\n", "chunked rejects trailer with empty name");
    bad("0\r\n folded\r\n\r\n", "chunked rejects obs-fold in trailers");
    bad("0\r\nA: 1\nB: 2\r\n\r\n", "chunked rejects bare LF in trailer");
    bad("0\r\nA: 1\r2\r\n\r\n", "chunked rejects bare CR in trailer value");
    bad("0\r\nA: \x01\r\n\r\n", "chunked rejects CTL in trailer value");
    bad("0\r\nA(: 1\r\n\r\n", "chunked rejects non-tchar in trailer name");
}

static void test_limits(void)
{
    char big[2200];

    /* size line cap (max_line = 1024, CRLF not counted) */
    size_t n = (size_t)sprintf(big, "5;");
    while (n < 1024)
        big[n++] = 'x';
    memcpy(big + n, "\r\nhello\r\n0\r\n\r\n", 15);
    good_lim(big, "hello", MAX_BODY_DEFAULT, 0, "chunked size line of exactly 1024 bytes ok");
    n = (size_t)sprintf(big, "5;");
    while (n < 1025)
        big[n++] = 'x';
    memcpy(big + n, "\r\nhello\r\n0\r\n\r\n", 15);
    bad(big, "chunked rejects size line of 1025 bytes");
    n = (size_t)sprintf(big, "5;a=\"");
    while (n < 2100)
        big[n++] = 'q';
    big[n] = '\0';
    bad_rc(big, n, PT_CHUNK_BAD, MAX_BODY_DEFAULT, 0,
           "chunked rejects endless quoted ext before line end");

    /* trailer cap counts all field-line bytes including CRLF */
    good_lim("0\r\nA: 12\r\n\r\n", "", MAX_BODY_DEFAULT, 7,
             "chunked trailer exactly at max_trailer");
    bad_rc("0\r\nA: 123\r\n\r\n", 13, PT_CHUNK_BAD, MAX_BODY_DEFAULT, 7,
           "chunked trailer one byte over max_trailer is BAD");
    bad_rc("0\r\nA: 1\r\n\r\n", 11, PT_CHUNK_BAD, MAX_BODY_DEFAULT, 0,
           "chunked any trailer with max_trailer 0 is BAD");
    good_lim("0\r\n\r\n", "", MAX_BODY_DEFAULT, 0, "chunked no trailer with max_trailer 0 ok");
    n = (size_t)sprintf(big, "0\r\nA:");
    while (n < 1100)
        big[n++] = 'v';
    memcpy(big + n, "\r\n\r\n", 5);
    bad_rc(big, strlen(big), PT_CHUNK_BAD, MAX_BODY_DEFAULT, 100000,
           "chunked trailer line over max_line is BAD");

    /* max_body */
    good_lim("5\r\nhello\r\n0\r\n\r\n", "hello", 5, 0, "chunked body exactly max_body ok");
    good_lim("0\r\n\r\n", "", 0, 0, "chunked empty body with max_body 0 ok");
    bad_rc("6\r\nhello!\r\n0\r\n\r\n", 16, PT_CHUNK_TOO_LARGE, 5, 0,
           "chunked single chunk over max_body is TOO_LARGE");
    bad_rc("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 22, PT_CHUNK_TOO_LARGE, 5, 0,
           "chunked sum of chunks over max_body is TOO_LARGE");
    bad_rc("FFFFFFFFFFFFFFFF\r\n", 18, PT_CHUNK_TOO_LARGE, MAX_BODY_DEFAULT, 0,
           "chunked 16-digit max size is TOO_LARGE, not overflow");

    /* TOO_LARGE as soon as the size is known, before any data or even CRLF */
    pt_chunked c;
    size_t used, olen;
    char buf[32];
    pt_chunked_init(&c, 100, 0);
    ok(pt_chunked_decode(&c, "65", 2, &used, buf, &olen) == PT_CHUNK_MORE,
       "chunked size digits alone need more");
    ok(pt_chunked_decode(&c, ";", 1, &used, buf, &olen) == PT_CHUNK_TOO_LARGE,
       "chunked TOO_LARGE detected when the size ends, before data");
    ok(pt_chunked_decode(&c, "x", 1, &used, buf, &olen) == PT_CHUNK_TOO_LARGE && used == 0,
       "chunked TOO_LARGE is sticky");
    pt_chunked_init(&c, UINT64_MAX, 0);
    ok(pt_chunked_decode(&c, "FFFFFFFFFFFFFFFF\r\nab", 20, &used, buf, &olen) == PT_CHUNK_MORE &&
           olen == 2 && c.chunk_left == UINT64_MAX - 2,
       "chunked max_body UINT64_MAX accepts the largest size");
}

static void test_api(void)
{
    pt_chunked c;
    size_t used = 99, olen = 99;
    char buf[64];
    char in[] = "5\r\nhello\r\n0\r\n\r\nNEXT";

    pt_chunked_init(&c, 1000, 10);
    ok(c.max_line == 1024 && c.max_body == 1000 && c.max_trailer == 10 && c.total == 0,
       "chunked init sets limits and max_line 1024");
    ok(pt_chunked_decode(&c, in, 0, &used, buf, &olen) == PT_CHUNK_MORE && used == 0 && olen == 0,
       "chunked empty input needs more");
    ok(pt_chunked_decode(&c, in, strlen(in), &used, in, &olen) == PT_CHUNK_DONE,
       "chunked in place decodes to DONE");
    ok(used == 15 && olen == 5 && memcmp(in, "hello", 5) == 0,
       "chunked consumed stops after the final CRLF, payload moved to the front");
    ok(memcmp(in + used, "NEXT", 4) == 0, "chunked pipelined bytes after DONE untouched");
    ok(c.total == 5, "chunked total counts payload");
    ok(pt_chunked_decode(&c, "X", 1, &used, buf, &olen) == PT_CHUNK_DONE && used == 0 && olen == 0,
       "chunked after DONE consumes nothing");

    pt_chunked_init(&c, 1000, 10);
    ok(pt_chunked_decode(&c, "5\r\nhe", 5, &used, buf, &olen) == PT_CHUNK_MORE && used == 5 &&
           olen == 2 && memcmp(buf, "he", 2) == 0,
       "chunked partial data is delivered at once");
    ok(pt_chunked_decode(&c, "llo\nX", 5, &used, buf, &olen) == PT_CHUNK_BAD && olen == 3,
       "chunked BAD after data still reports data produced");
    ok(pt_chunked_decode(&c, "\r\n", 2, &used, buf, &olen) == PT_CHUNK_BAD && used == 0,
       "chunked BAD is sticky");
}

/* Random mutations of valid messages: whatever the verdict, every split
 * must agree and the payload can never exceed the input consumed. */
static void test_mutations(void)
{
    static const char *const seeds[] = {
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        "3;a=\"x\\\"y\";b\r\nabc\r\n0;z\r\nT: v\r\nU:\r\n\r\n",
        "A ;k = v\r\n0123456789\r\n0\r\n\r\n",
    };
    static const char alphabet[] = "\r\n;=\" \t:0aF\\x\x7f\x01";
    char m[128];
    bool fine = true;
    int done = 0, badn = 0;

    for (int t = 0; t < 3000 && fine; t++) {
        const char *s = seeds[t % PT_ARRAY_LEN(seeds)];
        size_t len = strlen(s);
        memcpy(m, s, len);
        for (unsigned k = 0, n = 1 + rng() % 3; k < n; k++) {
            size_t pos = rng() % len;
            switch (rng() % 3) {
            case 0: /* replace */
                m[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
                break;
            case 1: /* delete */
                memmove(m + pos, m + pos + 1, len - pos - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < sizeof(m)) {
                    memmove(m + pos + 1, m + pos, len - pos);
                    m[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
                    len++;
                }
                break;
            }
        }
        bool cons;
        result r = decode_all_ways(m, len, 64, 32, &cons);
        fine = cons && r.plen <= r.consumed && r.consumed <= len;
        done += r.rc == PT_CHUNK_DONE;
        badn += r.rc == PT_CHUNK_BAD;
        free(r.payload);
    }
    ok(fine, "chunked 3000 mutated messages: every split agrees");
    ok(done > 0 && badn > 0, "chunked mutations reach both DONE (%d) and BAD (%d)", done, badn);
}

int main(void)
{
    test_valid();
    test_binary();
    test_invalid();
    test_limits();
    test_api();
    test_mutations();
    return tap_done();
}
