/* util.h: small pure helpers: size/duration parsing, percent-decoding, the
 * request-path normaliser, and escaping of client bytes for logs and HTML. */
#ifndef PT_UTIL_H
#define PT_UTIL_H

#include "first.h"
#include <string.h>

/* "100M", "8k", "64K", "1G", "512" (bytes); suffixes k/K=1024, m/M, g/G, t/T.
 * Optional trailing "B"/"b" ("10MB"). Rejects empty, negative, junk, overflow.
 * Returns 0, or -1 with errno=EINVAL/ERANGE. */
int pt_parse_size(const char *s, uint64_t *out);

/* "30s", "500ms", "5m", "1h", "1d", plain "30" = seconds. Result in ms.
 * Returns 0, or -1 with errno=EINVAL/ERANGE. */
int pt_parse_duration_ms(const char *s, uint64_t *out);

/* Decimal unsigned with overflow check, no sign, no spaces: 0 or -1. */
int pt_parse_u64(const char *s, size_t len, uint64_t *out);

/* Percent-decode in[0..len) into out (capacity >= len). Returns decoded
 * length, or -1 on a malformed escape (%G1, truncated %4). */
ssize_t pt_percent_decode(const char *in, size_t len, char *out);

/* Request-path normaliser (RFC 3986 §5.2.4 + portico's rules).
 * Input: the raw path of the request target (starts with '/', no query).
 * Percent-decodes exactly once, then rejects NUL and other CTLs (0x00-0x1f,
 * 0x7f), removes "." and ".." segments (never above the root), collapses
 * repeated slashes. Keeps a trailing slash. out needs capacity >= len + 1;
 * result is NUL-terminated and always starts with '/'.
 * Returns the output length, or -1 (the caller answers 400). */
ssize_t pt_path_normalize(const char *in, size_t len, char *out);

/* Escape client-supplied bytes for a log line: printable ASCII except '\\'
 * and '"' is copied, everything else becomes \xHH (and \\ \"). Writes at
 * most cap-1 bytes plus NUL (truncating with "..." when it had to cut).
 * Returns the length written. */
size_t pt_escape_log(const char *in, size_t len, char *out, size_t cap);

/* HTML-escape (& < > " ') into out; returns bytes needed (may exceed cap:
 * then out holds a truncated, still NUL-terminated prefix). */
size_t pt_escape_html(const char *in, size_t len, char *out, size_t cap);

/* Percent-encode a path for use in a URL (keeps unreserved and '/'). Same
 * return convention as pt_escape_html. */
size_t pt_escape_url_path(const char *in, size_t len, char *out, size_t cap);

/* ASCII case-insensitive comparison of a slice with a C string. */
bool pt_str_ieq(const char *a, size_t alen, const char *lit);
/* n (len bytes) is lit (lower case, len bytes), in any case: the header
 * name switches of the gateways, after they matched the length (inline:
 * a call per comparison would cost as much as the comparison). */
static inline unsigned char pt_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}
static inline bool pt_name_is(const char *n, const char *lit, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (pt_lower((unsigned char)n[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

/* pt_name_is for a name known to be a token (1*tchar, RFC 9110 §5.6.2)
 * and lit of lower-case letters, digits and '-': eight bytes per step.
 * Every byte of such a lit has bit 0x20 set, so OR-ing it into the name
 * folds the case of letters; among tchars only a letter's other case folds
 * onto a letter, and nothing folds onto a digit or '-' (a CR would become
 * '-', a CTL a digit: not tchars). The response and proxy field switches
 * run it for every field. */
static inline bool pt_tok_is(const char *n, const char *lit, size_t len)
{
    const uint64_t fold = 0x2020202020202020u;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t a, b;
        memcpy(&a, n + i, 8);
        memcpy(&b, lit + i, 8);
        if ((a | fold) != b)
            return false;
    }
    if (i + 4 <= len) {
        uint32_t a, b;
        memcpy(&a, n + i, 4);
        memcpy(&b, lit + i, 4);
        if ((a | (uint32_t)fold) != b)
            return false;
        i += 4;
    }
    for (; i < len; i++)
        if ((unsigned char)(n[i] | 0x20) != (unsigned char)lit[i])
            return false;
    return true;
}

/* tchar (RFC 9110 §5.6.2: "!#$%&'*+-.^_`|~", digits and letters) as a
 * 256-entry table: one load per byte of a field name. */
extern const unsigned char pt_tchar[256];

/* The offset of the first byte in v[0, n) that a field value may not hold
 * (a CTL other than HT: NUL, CR, LF... and DEL, RFC 9110 §5.5), or n when
 * there is none. Eight bytes per step: values are most of a head. */
size_t pt_field_value_span(const char *v, size_t n);

/* The weight an Accept-Encoding field value (RFC 9110 §12.5.3) gives the
 * content coding `coding`, in thousandths (0-1000): its own element's, else
 * that of "*"; -1 when the value names neither. An element whose weight
 * does not parse counts as q=0. */
int pt_accept_q(const char *p, size_t n, const char *coding);

/* Decimal digits of v at out (room for 20), no NUL; returns the count. */
size_t pt_u64_dec(char *out, uint64_t v);
/* An IPv4 address (4 bytes, network order) in dotted-quad text, as
 * inet_ntop(3) writes it, into out (at least 16 bytes, NUL-terminated);
 * the length. Every request that reaches a gateway or a log needs it:
 * no printf (glibc's inet_ntop formats with sprintf). */
size_t pt_ipv4_text(char *out, const unsigned char a[4]);

/* fd helpers: 0 or -1 with errno. */
int pt_fd_nonblock(int fd);
int pt_fd_cloexec(int fd);

/* Monotonic milliseconds and wall-clock seconds. */
uint64_t pt_now_ms(void);

#endif
