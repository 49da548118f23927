/* h1_head.h: HTTP/1.1 request heads. Finds the end of the head, pre-validates
 * it strictly (Debian's http-parser is built non-strict, see DESIGN.md), then
 * feeds exactly the head to http-parser once. The only file that includes
 * <http_parser.h>. */
#ifndef PT_H1_HEAD_H
#define PT_H1_HEAD_H

#include "first.h"

/* Methods portico knows; values are portico's own, not http-parser's. */
typedef enum pt_method {
    PT_M_OTHER = 0, /* a valid token http-parser knows but portico does not handle */
    PT_M_GET,
    PT_M_HEAD,
    PT_M_POST,
    PT_M_PUT,
    PT_M_DELETE,
    PT_M_OPTIONS,
    PT_M_PATCH,
    PT_M_TRACE,
    PT_M_CONNECT,
} pt_method;

typedef struct pt_header {
    const char *name;
    const char *value; /* leading/trailing OWS trimmed */
    uint32_t name_len;
    uint32_t value_len;
} pt_header;

typedef struct pt_head {
    pt_method method;
    pt_str method_str;
    pt_str target; /* raw request-target as sent */
    pt_str path;   /* raw path (origin-form path, or path of absolute-form), no query;
                    * "*" for asterisk-form, empty for authority-form */
    pt_str query;  /* raw query without '?'; query.p == NULL when there was no '?' */
    bool has_query;
    pt_str host; /* absolute-form authority if given, else the Host header value; may be empty */
    bool absolute_form;
    bool authority_form; /* CONNECT host:port, and only CONNECT: no path at all */
    int http_major, http_minor;
    pt_header *headers; /* points into caller-provided space */
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    bool is_chunked;
    bool keep_alive;      /* per version + Connection header (http_should_keep_alive) */
    bool expect_continue; /* Expect: 100-continue (HTTP/1.1 only) */
    const char *error;    /* short reason when parse fails (for the log) */
} pt_head;

/* Call once per process at worker start: sets http-parser's (process-global)
 * header size cap as a backstop to portico's own. */
void pt_h1_global_init(uint32_t header_buffer);

/* Look for the end of the request head in buf[0..len).
 * Returns >0: head length (through the blank line), 0: not complete yet,
 * or a negative HTTP status: -414 when len >= limit and no LF was seen yet
 * (request line too long), -431 when len >= limit otherwise, -400 for bytes
 * that can never start a valid head. Leading empty lines (CRLF) before the
 * request line are part of the returned head (RFC 9112 §2.2). Only CRLF CRLF
 * ends a head; a bare LF line ending makes it invalid later (400). A bare CR
 * is -400 while the head is incomplete; in a complete head it is left to
 * pt_h1_parse_head (400), so a complete head costs one memchr per line. */
int pt_h1_find_head_end(const char *buf, size_t len, size_t limit);

/* Validate and parse buf[0..head_len). hdr_space holds max_headers entries.
 * Returns 0 on success, else the HTTP status to answer (400, 431, 501, 505),
 * with out->error set to a short reason. Checks (portico's own, before and
 * after http-parser): bare CR, bare LF, obs-fold, whitespace before ':',
 * non-token field names, lines without ':', CTLs in values (HT allowed),
 * request line exactly METHOD SP target SP HTTP/1.x, CTL/SP in the target,
 * more than max_headers fields (431), CL+TE (400), duplicate or invalid
 * Content-Length (400), TE on HTTP/1.0 (400), TE other than exactly
 * "chunked" (501; "chunked" case-insensitive), missing/duplicate/empty Host
 * on HTTP/1.1 (400), invalid Host syntax (400), HTTP/2+ (505), HTTP/0.9 (400),
 * a method that is not a token (400), any unknown token method, lower-case
 * included since methods are case-sensitive (501),
 * CONNECT: its authority-form target "host:port" is required (400 else) and
 * returned as authority_form with an empty path; answering it (405: portico is
 * an origin server, not a proxy) is left to the caller. Asterisk-form "*" only
 * with OPTIONS (400 else), returned as the path "*".
 * Absolute-form "http://host[:port]/path?q": host taken from it (RFC 9112
 * §3.2.2); other schemes (https ok too) -> 400 for anything but http/https. */
int pt_h1_parse_head(const char *buf, size_t head_len, pt_header *hdr_space, size_t max_headers,
                     pt_head *out);

/* Case-insensitive header lookup: first match or NULL. */
const pt_header *pt_head_get(const pt_head *h, const char *name);

/* Version strings for -V. */
const char *pt_h1_parser_version(void);

#endif
