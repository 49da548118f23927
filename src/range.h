/* range.h: byte Range requests (RFC 9110 §14). */
#ifndef PT_RANGE_H
#define PT_RANGE_H

#include "first.h"

typedef struct pt_range {
    uint64_t start, end; /* inclusive, end < size */
} pt_range;

/* Parse a Range header value for a representation of `size` bytes.
 * Returns n > 0: ranges in out[0..n) (satisfiable ones only, sorted by
 * start and with overlapping/adjacent ones coalesced); 0: ignore the header
 * and send the whole representation (not "bytes=", syntax error, or more
 * than max ranges before coalescing); -1: no range satisfiable (416).
 * Forms: "bytes=0-499", "bytes=500-", "bytes=-500", lists with OWS around
 * commas; unit is case-insensitive. */
int pt_range_parse(const char *v, size_t len, uint64_t size, pt_range *out, int max);

#endif
