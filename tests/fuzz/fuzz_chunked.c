/* fuzz_chunked.c: the strict chunked decoder. Decoded output is never longer
 * than what was consumed, consumed never exceeds the input, and feeding the
 * same bytes in pieces (or in place, as conn.c does) gives the same result.
 * The first byte selects max_body, max_trailer and the split pattern. */
#include "fuzz.h"

#include "chunked.h"

static const uint64_t max_body_tab[] = {0, 16, 4096, UINT64_MAX};
static const size_t max_trailer_tab[] = {0, 8, 1024, 65536};

typedef struct result {
    pt_chunk_rc rc;
    size_t consumed, outlen;
    uint64_t total;
} result;

static void check_one(const pt_chunked *c, pt_chunk_rc rc, size_t inlen, size_t consumed,
                      size_t outlen)
{
    FZ_CHECK(rc == PT_CHUNK_MORE || rc == PT_CHUNK_DONE || rc == PT_CHUNK_BAD ||
             rc == PT_CHUNK_TOO_LARGE);
    FZ_CHECK(consumed <= inlen);
    FZ_CHECK(outlen <= consumed);
    /* MORE means every byte was taken */
    if (rc == PT_CHUNK_MORE)
        FZ_CHECK(consumed == inlen);
    if (rc != PT_CHUNK_TOO_LARGE)
        FZ_CHECK(c->total <= c->max_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    uint64_t max_body = max_body_tab[opt & 3];
    size_t max_trailer = max_trailer_tab[(opt >> 2) & 3];
    const char *src = (const char *)data + 1;
    size_t len = size - 1;
    char *in = fz_dup(src, len), *out = fz_dup("", len), *out2 = fz_dup("", len);
    pt_chunked c;
    result whole;

    /* 1. whole, separate output */
    pt_chunked_init(&c, max_body, max_trailer);
    whole.rc = pt_chunked_decode(&c, in, len, &whole.consumed, out, &whole.outlen);
    check_one(&c, whole.rc, len, whole.consumed, whole.outlen);
    FZ_CHECK(c.total == whole.outlen);
    whole.total = c.total;
    FZ_CHECK(memcmp(in, src, len) == 0); /* input untouched */

    /* 2. whole, in place (conn.c decodes into its input buffer) */
    {
        size_t consumed = 0, outlen = 0;
        pt_chunked_init(&c, max_body, max_trailer);
        pt_chunk_rc rc = pt_chunked_decode(&c, in, len, &consumed, in, &outlen);
        FZ_CHECK(rc == whole.rc && consumed == whole.consumed && outlen == whole.outlen);
        FZ_CHECK(memcmp(in, out, outlen) == 0);
        memcpy(in, src, len);
    }

    /* 3. in pieces at data-derived points, until the decoder stops */
    {
        uint32_t s = fz_seed(data, size);
        size_t pos = 0, produced = 0;
        unsigned step_cap = (opt & 0x10) ? 3 : (opt & 0x20) ? 17 : 257;
        pt_chunk_rc rc = PT_CHUNK_MORE;
        pt_chunked_init(&c, max_body, max_trailer);
        while (pos < len) {
            size_t piece = fz_piece(&s, step_cap, len - pos);
            size_t consumed = 0, outlen = 0;
            rc = pt_chunked_decode(&c, in + pos, piece, &consumed, out2 + produced, &outlen);
            check_one(&c, rc, piece, consumed, outlen);
            pos += consumed;
            produced += outlen;
            if (rc != PT_CHUNK_MORE)
                break;
        }
        FZ_CHECK(rc == whole.rc);
        FZ_CHECK(pos == whole.consumed);
        FZ_CHECK(produced == whole.outlen && c.total == whole.total);
        FZ_CHECK(memcmp(out2, out, produced) == 0);
    }

    /* 4. DONE stops right after the final CRLF: the rest is the next request */
    if (whole.rc == PT_CHUNK_DONE)
        FZ_CHECK(whole.consumed >= 5 && memcmp(in + whole.consumed - 2, "\r\n", 2) == 0);

    free(in);
    free(out);
    free(out2);
    return 0;
}
