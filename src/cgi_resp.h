/* cgi_resp.h: the incremental parser for the header block that a CGI script
 * (RFC 3875 §6) or a FastCGI responder writes before its body. Shared by the
 * CGI and FastCGI gateways: there is one such parser in portico. */
#ifndef PT_CGI_RESP_H
#define PT_CGI_RESP_H

#include "first.h"

enum { PT_CGI_RESP_MORE = 0, PT_CGI_RESP_DONE = 1, PT_CGI_RESP_ERROR = 2 };
enum { PT_XSEND_NONE = 0, PT_XSEND_FILE = 1, PT_XSEND_URI = 2 };

typedef struct pt_cgi_hdr {
    uint32_t name_off, name_len, value_off, value_len; /* into pt_cgi_resp.buf */
} pt_cgi_hdr;

typedef struct pt_cgi_resp {
    int state;
    size_t max_size; /* cap for the whole header block (502 beyond) */
    size_t max_hdrs; /* cap for the number of header lines */
    char *buf;       /* copy of the header block (grows up to max_size) */
    size_t len, cap;
    size_t line_start; /* scanning position */
    /* results, valid after PT_CGI_RESP_DONE */
    int status;          /* final status: Status:, else 302 when Location is set, else 200 */
    bool has_status;     /* a Status: line was given */
    char reason[64];     /* reason phrase from Status: (may be empty) */
    pt_str location;     /* into buf; p == NULL when absent */
    bool local_redirect; /* RFC 3875 §6.2.2: Location starts with '/', no Status, no Content-Type */
    bool has_content_type;
    int64_t content_length; /* -1 when absent */
    pt_cgi_hdr *hdrs;       /* headers to pass to the client, in order (Location and Content-Type
                               included; Status, Content-Length, hop-by-hop headers, Date and Server
                               excluded) */
    size_t nhdrs;
    bool no_buffering; /* X-Accel-Buffering: no (the header itself is not passed on) */
    /* X-Sendfile / X-LIGHTTPD-send-file (a file path) or X-Accel-Redirect
     * (a local URI): never passed on, whether honoured or not (they name
     * internal paths); the value is buf[xsend_off, +xsend_len) */
    int xsend_kind; /* PT_XSEND_NONE, PT_XSEND_FILE, PT_XSEND_URI */
    uint32_t xsend_off, xsend_len;
    const char *error; /* static reason after PT_CGI_RESP_ERROR */
    /* set by the caller after init: the block starts with an HTTP status
     * line ("HTTP/1.1 404 Not Found"), as uwsgi applications answer */
    bool status_line;
    /* private to cgi_resp.c */
    size_t nlines;   /* header lines seen (kept or dropped), checked against max_hdrs */
    size_t hdrs_cap; /* allocated entries of hdrs */
} pt_cgi_resp;

void pt_cgi_resp_init(pt_cgi_resp *r, size_t max_size, size_t max_hdrs);
void pt_cgi_resp_free(pt_cgi_resp *r);

/* Feed output bytes (any split). Returns PT_CGI_RESP_MORE (everything
 * consumed, the block is not finished), PT_CGI_RESP_DONE (*consumed = bytes
 * of p that belonged to the header block, including its terminating empty
 * line; the rest of p is body), or PT_CGI_RESP_ERROR (r->error says why).
 * Lines end in LF or CRLF (RFC 3875 §6.2: servers should accept both).
 * Errors: block larger than max_size or more than max_hdrs lines; a line
 * without ':'; a field name that is not a token; CR not followed by LF, NUL
 * or other CTL (except HT) in a value; Status not "NNN[ SP reason]" with
 * 100 <= NNN <= 599; invalid, conflicting or duplicate Content-Length; empty block
 * (first line empty: no header at all) -> error "no header". Values are
 * trimmed of surrounding SP/HT. Repeated headers (Set-Cookie) are kept. */
int pt_cgi_resp_feed(pt_cgi_resp *r, const char *p, size_t len, size_t *consumed);

/* For a codec that parses an HTTP response head itself (proxy.c) and so
 * hands it over without a second parse: the same checks and meanings as
 * feed's, one call per part. status: the status line ("HTTP/1.1 200 OK",
 * no line end); field: a name and its value, trimmed; end: the head is
 * complete (then DONE, as from feed). Each returns PT_CGI_RESP_MORE (DONE)
 * or PT_CGI_RESP_ERROR (r->error says why). reset: empty again, the caps
 * and status_line kept. */
void pt_cgi_resp_reset(pt_cgi_resp *r);
int pt_cgi_resp_status(pt_cgi_resp *r, const char *line, size_t n);
int pt_cgi_resp_field(pt_cgi_resp *r, const char *name, size_t nlen, const char *v, size_t vlen);
int pt_cgi_resp_end(pt_cgi_resp *r);
/* field, for a caller that has checked the name (1*tchar) and the value
 * (no CTL but HT) itself, as proxy.c's one scan of a line does: the
 * meanings and the line count only. */
int pt_cgi_resp_field_checked(pt_cgi_resp *r, const char *name, size_t nlen, const char *v,
                              size_t vlen);
/* field_checked for a field line as it lies in the caller's buffer: the
 * name is line[0, nlen), the value line[voff, +vlen) (voff > nlen), and
 * the bytes between are the line's own (copied along in one step). */
int pt_cgi_resp_line_checked(pt_cgi_resp *r, const char *line, size_t nlen, size_t voff,
                             size_t vlen);

/* Feed end of output: a script that exits mid-block. Returns PT_CGI_RESP_ERROR
 * ("script output ended inside the header block") unless already DONE. */
int pt_cgi_resp_eof(pt_cgi_resp *r);

static inline pt_str pt_cgi_hdr_name(const pt_cgi_resp *r, size_t i)
{
    pt_str s = {r->buf + r->hdrs[i].name_off, r->hdrs[i].name_len};
    return s;
}
static inline pt_str pt_cgi_hdr_value(const pt_cgi_resp *r, size_t i)
{
    pt_str s = {r->buf + r->hdrs[i].value_off, r->hdrs[i].value_len};
    return s;
}

#endif
