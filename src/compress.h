/* compress.h: content-coding streams for compression on the fly (gzip on
 * zlib, br on libbrotlienc): feed bytes, flush, finish; the output goes to
 * a sink in pieces of a bounded internal buffer. A leaf: no connection,
 * no configuration, unit-tested on its own (tests/unit/test_compress.c). */
#ifndef PT_COMPRESS_H
#define PT_COMPRESS_H

#include "first.h"
#include <stddef.h>
#include <stdint.h>

typedef enum pt_zcoding { PT_ZC_NONE = 0, PT_ZC_GZIP, PT_ZC_BR } pt_zcoding;

/* What pt_compress_write does after taking the input. */
typedef enum pt_zmode {
    PT_ZM_MORE = 0, /* the library may hold output back (best ratio) */
    PT_ZM_FLUSH,    /* everything given so far can be decoded by the client */
    PT_ZM_FINISH,   /* the end of the stream (trailer written) */
} pt_zmode;

/* Receives compressed bytes; returns 0, or -1 to stop (the write fails). */
typedef int (*pt_compress_sink)(void *arg, const void *p, size_t n);

typedef struct pt_compress pt_compress;

/* A stream in coding at level (gzip 1-9, br 0-11; clamped); length is the
 * input's size when known (smaller tables for small inputs), else -1.
 * NULL: out of memory (or PT_ZC_NONE). */
pt_compress *pt_compress_new(pt_zcoding coding, int level, int64_t length);
/* Compress n bytes of in, then act on mode; output through sink. 0, or -1
 * (a library error, a sink failure, or a write after FINISH). */
int pt_compress_write(pt_compress *z, const void *in, size_t n, pt_zmode mode,
                      pt_compress_sink sink, void *arg);
/* Input bytes taken since the last flush (0: nothing held back). */
size_t pt_compress_pending(const pt_compress *z);
/* Bytes the stream holds (library state and buffers): the per-response
 * cost documented in portico.conf(5). */
size_t pt_compress_mem(const pt_compress *z);
/* What all the streams of this process hold now (library allocations). */
size_t pt_compress_mem_total(void);
void pt_compress_free(pt_compress *z);

/* The token of a coding in Content-Encoding ("gzip", "br"). */
const char *pt_compress_token(pt_zcoding coding);

#endif
