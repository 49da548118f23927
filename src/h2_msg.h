/* h2_msg.h: the rules an HTTP/2 request must keep as a message (RFC 9113
 * §8), checked field by field as HPACK decodes them: field bytes,
 * pseudo-header fields, connection-specific fields, content-length
 * against the DATA received, trailers, and the RFC 9218 priority field.
 * nghttp2's own HTTP messaging checks are off (h2.c): a request that
 * breaks one of these is malformed, a stream error PROTOCOL_ERROR
 * (§8.1.1). No allocation, no session: a small state per stream. */
#ifndef PT_H2_MSG_H
#define PT_H2_MSG_H

#include "first.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pt_h2_msg {
    uint32_t seen;    /* what came (flags, h2_msg.c) */
    int64_t cl;       /* content-length, when seen */
    uint64_t got;     /* DATA bytes received */
    uint8_t urgency;  /* RFC 9218 §4.1, default 3 */
    bool incremental; /* §4.2 */
} pt_h2_msg;

void pt_h2_msg_init(pt_h2_msg *m);
/* What a field was: a regular one, or a request's pseudo-header field */
enum { PT_H2_REGULAR, PT_H2_METHOD, PT_H2_SCHEME, PT_H2_PATH, PT_H2_AUTHORITY };
/* A decoded field of the request's head (trailer false) or of its
 * trailers: what it was (PT_H2_*), or -1 when it makes the request
 * malformed. */
int pt_h2_msg_field(pt_h2_msg *m, const uint8_t *name, size_t nl, const uint8_t *value, size_t vl,
                    bool trailer);
/* The head is complete (end_stream: no body follows): 0, or -1 when a
 * pseudo-header field is missing or wrong for the method, or a body
 * announced did not come. */
int pt_h2_msg_head_end(pt_h2_msg *m, bool end_stream);
/* n DATA bytes: -1 once they go past the content-length. */
int pt_h2_msg_data(pt_h2_msg *m, size_t n);
/* The request ended (END_STREAM on DATA, or trailers with end_stream):
 * -1 when the DATA received differ from the content-length, or trailers
 * came without END_STREAM. */
int pt_h2_msg_end(pt_h2_msg *m, bool trailers, bool end_stream);
/* what came, as m->seen has it (the accessors below: inline, as a head's
 * end asks them of every request) */
enum { PT_H2_SEEN_HOST = 1u << 4, PT_H2_SEEN_CL = 1u << 6, PT_H2_SEEN_PRIO = 1u << 12 };
/* The content-length (-1: none, or CONNECT's, which has no body length). */
static inline int64_t pt_h2_msg_content_length(const pt_h2_msg *m)
{
    return (m->seen & PT_H2_SEEN_CL) ? m->cl : -1;
}
/* A valid priority field was read (its urgency and incremental are m's). */
static inline bool pt_h2_msg_has_priority(const pt_h2_msg *m)
{
    return (m->seen & PT_H2_SEEN_PRIO) != 0;
}
/* Has a host field (the head's Host when :authority is absent). */
static inline bool pt_h2_msg_has_host(const pt_h2_msg *m)
{
    return (m->seen & PT_H2_SEEN_HOST) != 0;
}

/* An RFC 9218 priority field value (an RFC 8941 dictionary): u= and i
 * applied over *urgency and *incremental, other members skipped; 0, or
 * -1 when it does not parse (nothing changed then). */
int pt_h2_msg_priority(const char *v, size_t n, uint8_t *urgency, bool *incremental);

#endif
