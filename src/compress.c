/* compress.c: gzip (zlib's deflate with the gzip wrapper, RFC 1952) and br
 * (RFC 7932) streams behind one interface. Every allocation of either
 * library goes through a counting allocator, so the memory a stream costs
 * is measured, not guessed (pt_compress_mem). */
#include "first.h"
#include "compress.h"

#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* deflate's state is (1 << (wbits + 2)) + (1 << (mem_level + 9)) bytes
 * (zlib's zconf.h): 256 KiB at zlib's defaults, 15 and 8. Smaller settings
 * cost CPU, not only ratio (measured with bench/gzip.sh on 100 KiB of HTML
 * at level 1: 14/7 and 14/8 took 8% more than nginx, 15/8 as much): they
 * are used only when a known length cannot fill the window, as nginx does */
#define PT_GZ_WBITS 15
#define PT_GZ_MEMLEVEL 8
/* brotli's window: 2^16 = 64 KiB. A stream at qualities 0-6 then holds
 * about 1.8 MiB (mostly the match finder's tables), 2^18 about 2.7 MiB and
 * the default 2^22 several more, for about 1% on a single page (measured on
 * a 120 KiB HTML file at quality 5: 17.3% of its size against 17.1%) */
#define PT_BR_LGWIN 16
#define PT_Z_OUT 16384    /* one output piece */
#define PT_BR_SLICE 16384 /* brotli input per call */

struct pt_compress {
    pt_zcoding coding;
    bool finished;
    size_t mem;     /* bytes allocated by the library */
    size_t pending; /* input since the last flush */
    z_stream zs;
    BrotliEncoderState *br;
    unsigned char out[PT_Z_OUT];
};

/* a size header in front of each block: zlib's free does not say the size */
#define PT_Z_HDR 16

/* what every stream of this process holds: limits.compress_memory */
static size_t g_mem;

static void *count_alloc(pt_compress *z, size_t size)
{
    unsigned char *p = malloc(size + PT_Z_HDR);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof(size));
    z->mem += size;
    g_mem += size;
    return p + PT_Z_HDR;
}

static void count_free(pt_compress *z, void *addr)
{
    if (!addr)
        return;
    unsigned char *p = (unsigned char *)addr - PT_Z_HDR;
    size_t size;
    memcpy(&size, p, sizeof(size));
    z->mem -= size;
    g_mem -= size;
    free(p);
}

static voidpf zl_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size && items > SIZE_MAX / size)
        return NULL;
    return count_alloc(opaque, (size_t)items * size);
}

static void zl_free(voidpf opaque, voidpf addr)
{
    count_free(opaque, addr);
}

static void *br_alloc(void *opaque, size_t size)
{
    return count_alloc(opaque, size);
}

static void br_free(void *opaque, void *addr)
{
    count_free(opaque, addr);
}

pt_compress *pt_compress_new(pt_zcoding coding, int level, int64_t length)
{
    if (coding != PT_ZC_GZIP && coding != PT_ZC_BR)
        return NULL;
    pt_compress *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->coding = coding;
    if (coding == PT_ZC_GZIP) {
        level = level < 1 ? 1 : level > 9 ? 9 : level;
        z->zs.zalloc = zl_alloc;
        z->zs.zfree = zl_free;
        z->zs.opaque = z;
        int wbits = PT_GZ_WBITS, mem_level = PT_GZ_MEMLEVEL;
        /* a window larger than the whole input buys nothing (zlib's gzip
         * wrapper takes 9 at least) */
        while (length >= 0 && wbits > 9 && length < (1 << (wbits - 1)) - 262) {
            wbits--;
            mem_level = mem_level > 1 ? mem_level - 1 : 1;
        }
        /* windowBits + 16: the gzip header and trailer, not zlib's */
        if (deflateInit2(&z->zs, level, Z_DEFLATED, wbits + 16, mem_level, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            free(z);
            return NULL;
        }
        return z;
    }
    level = level < 0 ? 0 : level > 11 ? 11 : level;
    z->br = BrotliEncoderCreateInstance(br_alloc, br_free, z);
    if (!z->br) {
        free(z);
        return NULL;
    }
    BrotliEncoderSetParameter(z->br, BROTLI_PARAM_QUALITY, (uint32_t)level);
    BrotliEncoderSetParameter(z->br, BROTLI_PARAM_LGWIN, PT_BR_LGWIN);
    BrotliEncoderSetParameter(z->br, BROTLI_PARAM_MODE, BROTLI_MODE_TEXT);
    if (length >= 0) /* the encoder sizes its tables for a small input */
        BrotliEncoderSetParameter(z->br, BROTLI_PARAM_SIZE_HINT,
                                  length > (1 << 30) ? (1u << 30) : (uint32_t)length);
    return z;
}

static int write_gzip(pt_compress *z, const void *in, size_t n, pt_zmode mode,
                      pt_compress_sink sink, void *arg)
{
    int flush = mode == PT_ZM_FINISH ? Z_FINISH : mode == PT_ZM_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    const unsigned char *p = in;
    /* avail_in is a uInt: feed a huge input in slices */
    do {
        size_t take = n > (1u << 30) ? (1u << 30) : n;
        int f = take == n ? flush : Z_NO_FLUSH;
        z->zs.next_in = (Bytef *)(uintptr_t)p;
        z->zs.avail_in = (uInt)take;
        for (;;) {
            z->zs.next_out = z->out;
            z->zs.avail_out = sizeof(z->out);
            int rc = deflate(&z->zs, f);
            if (rc == Z_STREAM_ERROR)
                return -1;
            size_t got = sizeof(z->out) - z->zs.avail_out;
            if (got && sink(arg, z->out, got) < 0)
                return -1;
            if (rc == Z_STREAM_END)
                break;
            /* done when the input is taken and the output buffer was not
             * filled (for a flush: deflate had room to finish it) */
            if (z->zs.avail_in == 0 && z->zs.avail_out != 0)
                break;
            if (rc == Z_BUF_ERROR && z->zs.avail_in == 0)
                break; /* nothing left to do */
        }
        p += take;
        n -= take;
    } while (n > 0);
    return 0;
}

static int write_br(pt_compress *z, const void *in, size_t n, pt_zmode mode, pt_compress_sink sink,
                    void *arg)
{
    BrotliEncoderOperation op = mode == PT_ZM_FINISH  ? BROTLI_OPERATION_FINISH
                                : mode == PT_ZM_FLUSH ? BROTLI_OPERATION_FLUSH
                                                      : BROTLI_OPERATION_PROCESS;
    const uint8_t *next_in = in;
    size_t avail_in = n;
    if (n > PT_BR_SLICE && mode != PT_ZM_MORE) {
        /* the encoder sizes its command buffers by the input of one call:
         * a large piece goes in slices, the mode applies to the last */
        size_t head = n - n % PT_BR_SLICE;
        if (head == n)
            head -= PT_BR_SLICE;
        if (write_br(z, in, head, PT_ZM_MORE, sink, arg) < 0)
            return -1;
        next_in += head;
        avail_in -= head;
    } else if (n > PT_BR_SLICE) {
        for (size_t off = 0; off < n; off += PT_BR_SLICE)
            if (write_br(z, next_in + off, n - off < PT_BR_SLICE ? n - off : PT_BR_SLICE,
                         PT_ZM_MORE, sink, arg) < 0)
                return -1;
        return 0;
    }
    for (;;) {
        uint8_t *next_out = z->out;
        size_t avail_out = sizeof(z->out);
        if (!BrotliEncoderCompressStream(z->br, op, &avail_in, &next_in, &avail_out, &next_out,
                                         NULL))
            return -1;
        size_t got = sizeof(z->out) - avail_out;
        if (got && sink(arg, z->out, got) < 0)
            return -1;
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(z->br)) {
            if (op == BROTLI_OPERATION_FINISH && !BrotliEncoderIsFinished(z->br))
                continue;
            break;
        }
    }
    return 0;
}

int pt_compress_write(pt_compress *z, const void *in, size_t n, pt_zmode mode,
                      pt_compress_sink sink, void *arg)
{
    if (z->finished)
        return -1;
    if (n == 0 && mode == PT_ZM_MORE)
        return 0;
    if (n == 0 && mode == PT_ZM_FLUSH && z->pending == 0)
        return 0; /* nothing to flush: no empty block */
    int rc = z->coding == PT_ZC_GZIP ? write_gzip(z, in, n, mode, sink, arg)
                                     : write_br(z, in, n, mode, sink, arg);
    z->pending = mode == PT_ZM_MORE ? z->pending + n : 0;
    if (mode == PT_ZM_FINISH)
        z->finished = true;
    return rc;
}

size_t pt_compress_pending(const pt_compress *z)
{
    return z->pending;
}

size_t pt_compress_mem(const pt_compress *z)
{
    return sizeof(*z) + z->mem;
}

size_t pt_compress_mem_total(void)
{
    return g_mem;
}

void pt_compress_free(pt_compress *z)
{
    if (!z)
        return;
    if (z->coding == PT_ZC_GZIP)
        deflateEnd(&z->zs);
    else if (z->br)
        BrotliEncoderDestroyInstance(z->br);
    free(z);
}

const char *pt_compress_token(pt_zcoding coding)
{
    return coding == PT_ZC_GZIP ? "gzip" : coding == PT_ZC_BR ? "br" : "identity";
}
