/* chunked.h: portico's own strict decoder for chunked request bodies
 * (RFC 9112 §7.1). Debian's http-parser accepts any two bytes as the CRLF
 * after chunk data, so framing is never left to it. */
#ifndef PT_CHUNKED_H
#define PT_CHUNKED_H

#include "first.h"

typedef enum pt_chunk_rc {
    PT_CHUNK_MORE = 0, /* all input consumed, need more */
    PT_CHUNK_DONE = 1, /* last chunk + trailers + final CRLF seen; *consumed stops right after */
    PT_CHUNK_BAD = 2,  /* framing error: 400 and close */
    PT_CHUNK_TOO_LARGE = 3, /* decoded total would exceed max_body: 413 */
} pt_chunk_rc;

typedef struct pt_chunked {
    int state;
    uint64_t chunk_left; /* data bytes left in the current chunk */
    uint64_t total;      /* decoded bytes so far */
    uint64_t max_body;
    size_t line_len; /* bytes in the current size line / extension / trailer line */
    size_t trailer_bytes;
    size_t max_line;    /* cap for a size line incl. extensions (1024) */
    size_t max_trailer; /* cap for all trailer bytes together */
    int ndigits;
} pt_chunked;

void pt_chunked_init(pt_chunked *c, uint64_t max_body, size_t max_trailer);

/* Decode in[0..inlen). Decoded payload bytes are written to out (capacity >=
 * inlen; out may equal in: the decoder never writes ahead of what it read).
 * *consumed = input bytes used, *outlen = payload bytes produced.
 * Rules: hex size with overflow check, no sign/space before it; optional
 * chunk extensions (BWS ';' token ['=' token|quoted-string]) bounded by
 * max_line; CRLF required after the size line and after the data (bare LF
 * and bare CR rejected); trailer fields are syntax-checked, counted against
 * max_trailer and dropped. */
pt_chunk_rc pt_chunked_decode(pt_chunked *c, const char *in, size_t inlen, size_t *consumed,
                              char *out, size_t *outlen);

#endif
