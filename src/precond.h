/* precond.h: validators and conditional requests (RFC 9110 §8.8, §13). */
#ifndef PT_PRECOND_H
#define PT_PRECOND_H

#include "first.h"
#include <time.h>

#define PT_ETAG_MAX 48
#define PT_ETAG_LEN 13 /* what pt_etag_make mints, its quotes included */

/* Strong ETag for one version of a file: a hash of its mtime (seconds +
 * nanoseconds), size and inode in 11 base64url digits, quoted, e.g.
 * "\"Vb1Lq0yC2Zg\"". The same inputs give the same tag in every process;
 * the inode does not show in it. Returns its length, PT_ETAG_LEN. */
size_t pt_etag_make(uint64_t ino, uint64_t size, time_t mtime, long mtime_nsec,
                    char out[PT_ETAG_MAX]);

typedef struct pt_precond {
    pt_str if_match, if_none_match, if_modified_since, if_unmodified_since; /* p==NULL: absent */
    bool is_get_or_head;
    const char *etag; /* quoted current ETag */
    size_t etag_len;
    time_t last_modified;
} pt_precond;

/* Evaluate in RFC 9110 §13.2.2 order: If-Match (strong compare, "*"),
 * else If-Unmodified-Since; If-None-Match (weak compare, "*"), else (only for
 * GET/HEAD) If-Modified-Since. Unparseable dates are ignored.
 * Returns 0 (go on), 304 or 412. */
int pt_precond_eval(const pt_precond *p);

/* If-Range (RFC 9110 §13.1.5): true when the Range should be honoured:
 * value is the current strong ETag (exact), or an HTTP date exactly equal to
 * last_modified. A weak ETag never matches. */
bool pt_if_range_ok(const char *v, size_t len, const char *etag, size_t etag_len,
                    time_t last_modified);

#endif
