#include "first.h"
#include "cgi_resp.h"

/* cgi_resp.c: the parser for the header block a CGI script or FastCGI
 * responder writes before its body (RFC 3875 §6). It copies the block into
 * its own capped buffer, line by line, so any split of the input is fine. */

#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The field names with a meaning here, each recognised by its length and
 * first letter before one comparison (a comparison per name per field was a
 * tenth of a proxied request's instructions). */
enum {
    CR_OTHER,
    CR_STATUS,
    CR_CONTENT_LENGTH,
    CR_ACCEL_BUFFERING,
    CR_SENDFILE,
    CR_ACCEL_REDIRECT,
    CR_LOCATION,
    CR_CONTENT_TYPE,
    /* never forwarded: the gateway's own framing replaces them (RFC 9110
     * §7.6.1 hop-by-hop, RFC 9112 §6), or the front end sets them itself */
    CR_DROPPED,
};

/* n is a token: check_field, or the caller of the _checked entries, saw to it */
#define IS(lit, tok) (pt_tok_is(n, lit, sizeof(lit) - 1) ? (tok) : CR_OTHER)

static int name_tok(const char *n, size_t len)
{
    unsigned char c0 = pt_lower((unsigned char)n[0]);
    switch (len) {
    case 2:
        return IS("te", CR_DROPPED);
    case 4:
        return IS("date", CR_DROPPED);
    case 6:
        return c0 == 's' ? (pt_tok_is(n, "status", 6)   ? CR_STATUS
                            : pt_tok_is(n, "server", 6) ? CR_DROPPED
                                                        : CR_OTHER)
                         : CR_OTHER;
    case 7:
        return c0 == 'u' ? IS("upgrade", CR_DROPPED) : IS("trailer", CR_DROPPED);
    case 8:
        return IS("location", CR_LOCATION);
    case 10:
        if (c0 == 'c')
            return IS("connection", CR_DROPPED);
        if (c0 == 'k')
            return IS("keep-alive", CR_DROPPED);
        return IS("x-sendfile", CR_SENDFILE);
    case 12:
        return IS("content-type", CR_CONTENT_TYPE);
    case 14:
        return IS("content-length", CR_CONTENT_LENGTH);
    case 16:
        return c0 == 'p' ? IS("proxy-connection", CR_DROPPED)
                         : IS("x-accel-redirect", CR_ACCEL_REDIRECT);
    case 17:
        return c0 == 'x' ? IS("x-accel-buffering", CR_ACCEL_BUFFERING)
                         : IS("transfer-encoding", CR_DROPPED);
    case 20:
        return IS("x-lighttpd-send-file", CR_SENDFILE);
    default:
        return CR_OTHER;
    }
}

#undef IS

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static int fail(pt_cgi_resp *r, const char *why)
{
    r->state = PT_CGI_RESP_ERROR;
    r->error = why;
    return PT_CGI_RESP_ERROR;
}

void pt_cgi_resp_init(pt_cgi_resp *r, size_t max_size, size_t max_hdrs)
{
    memset(r, 0, sizeof(*r));
    r->state = PT_CGI_RESP_MORE;
    /* offsets in pt_cgi_hdr are 32-bit */
    r->max_size = PT_MIN(max_size, (size_t)UINT32_MAX);
    r->max_hdrs = max_hdrs;
    r->location.p = NULL;
    r->content_length = -1;
}

/* One header block and one field table kept per worker from a finished
 * response for the next one: a malloc and a free of each per response
 * were a tenth of the gateway's own work. Single-threaded workers; bounded
 * (a larger block is freed as before). */
#define SPARE_BUF_MAX 4096
#define SPARE_HDRS_MAX 64
static struct {
    char *buf;
    size_t cap;
    pt_cgi_hdr *hdrs;
    size_t hdrs_cap;
} spare;

void pt_cgi_resp_free(pt_cgi_resp *r)
{
    if (r->buf && !spare.buf && r->cap <= SPARE_BUF_MAX) {
        spare.buf = r->buf;
        spare.cap = r->cap;
    } else {
        free(r->buf);
    }
    if (r->hdrs && !spare.hdrs && r->hdrs_cap <= SPARE_HDRS_MAX) {
        spare.hdrs = r->hdrs;
        spare.hdrs_cap = r->hdrs_cap;
    } else {
        free(r->hdrs);
    }
    r->buf = NULL;
    r->hdrs = NULL;
    r->len = r->cap = r->hdrs_cap = r->nhdrs = 0;
    r->location.p = NULL;
    r->location.len = 0;
}

/* Copy n bytes into buf; the block may never exceed max_size. */
static int append(pt_cgi_resp *r, const char *p, size_t n)
{
    if (n > r->max_size - r->len)
        return fail(r, "header block too large");
    /* nothing to copy (an empty value may have no bytes at all behind it:
     * memcpy from NULL is undefined even for none) */
    if (n == 0)
        return PT_CGI_RESP_MORE;
    if (r->len + n > r->cap && !r->buf && spare.buf && spare.cap >= n && spare.cap <= r->max_size) {
        r->buf = spare.buf;
        r->cap = spare.cap;
        spare.buf = NULL;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 512;
        /* location points into buf: move it along */
        size_t loc_off = r->location.p ? (size_t)(r->location.p - r->buf) : 0;
        char *nb;

        while (cap < r->len + n)
            cap *= 2;
        cap = PT_MIN(cap, r->max_size);
        nb = realloc(r->buf, cap);
        if (!nb)
            return fail(r, "out of memory");
        r->buf = nb;
        r->cap = cap;
        if (r->location.p)
            r->location.p = nb + loc_off;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return PT_CGI_RESP_MORE;
}

static int keep(pt_cgi_resp *r, size_t name_off, size_t name_len, size_t val_off, size_t val_len)
{
    if (r->nhdrs == r->hdrs_cap && !r->hdrs && spare.hdrs && spare.hdrs_cap <= r->max_hdrs) {
        r->hdrs = spare.hdrs;
        r->hdrs_cap = spare.hdrs_cap;
        spare.hdrs = NULL;
    }
    if (r->nhdrs == r->hdrs_cap) {
        size_t cap = PT_MIN(r->hdrs_cap ? r->hdrs_cap * 2 : 16, r->max_hdrs);
        pt_cgi_hdr *nh = realloc(r->hdrs, cap * sizeof(*nh));

        if (!nh)
            return fail(r, "out of memory");
        r->hdrs = nh;
        r->hdrs_cap = cap;
    }
    r->hdrs[r->nhdrs++] =
        (pt_cgi_hdr){(uint32_t)name_off, (uint32_t)name_len, (uint32_t)val_off, (uint32_t)val_len};
    return PT_CGI_RESP_MORE;
}

/* RFC 3875 §6.3.3: Status = "Status:" status-code SP reason-phrase. The
 * reason is optional here, as every server accepts "Status: 404". */
static int parse_status(pt_cgi_resp *r, const char *v, size_t n)
{
    int code;
    size_t i;

    if (n < 3 || (n > 3 && v[3] != ' '))
        return fail(r, "invalid Status");
    for (i = 0; i < 3; i++)
        if (v[i] < '0' || v[i] > '9')
            return fail(r, "invalid Status");
    code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    if (code < 100 || code > 599)
        return fail(r, "invalid Status");
    if (r->has_status)
        return fail(r, "duplicate Status");
    r->has_status = true;
    r->status = code;
    for (i = 3; i < n && is_ws((unsigned char)v[i]); i++)
        ;
    n = PT_MIN(n - i, sizeof(r->reason) - 1);
    memcpy(r->reason, v + i, n);
    r->reason[n] = '\0';
    return PT_CGI_RESP_MORE;
}

/* RFC 9110 §8.6: 1*DIGIT. Repeats must agree (RFC 9112 §6.3 item 5): two
 * different lengths from a backend is the classic smuggling setup. */
static int parse_content_length(pt_cgi_resp *r, const char *v, size_t n)
{
    uint64_t cl;

    if (n == 0 || pt_parse_u64(v, n, &cl) != 0 || cl > (uint64_t)INT64_MAX)
        return fail(r, "invalid Content-Length");
    /* a second Content-Length, even an equal one, is how response
     * smuggling starts: refuse it (RFC 9112 §6.3 allows rejecting) */
    if (r->content_length >= 0)
        return fail(r, (uint64_t)r->content_length != cl ? "conflicting Content-Length"
                                                         : "duplicate Content-Length");
    r->content_length = (int64_t)cl;
    return PT_CGI_RESP_MORE;
}

/* The status line an HTTP-style program (uwsgi) writes first instead of a
 * Status field: HTTP-version SP status-code [SP reason-phrase] (RFC 9112
 * §4, the reason is optional as in parse_status). */
static int status_line(pt_cgi_resp *r, const char *b, size_t n)
{
    r->nlines++;
    if (n < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[7] < '0' || b[7] > '9' || b[8] != ' ')
        return fail(r, "invalid status line");
    for (size_t i = 9; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(r, "invalid character in status line");
    }
    return parse_status(r, b + 9, n - 9);
}

/* A field name (RFC 9110 §5.1: a token) and its value, already trimmed:
 * the value goes to the client verbatim, so any CTL here (CR, LF, NUL)
 * would be response splitting (anchors #13); HT and obs-text are fine. */
static int check_field(pt_cgi_resp *r, const char *name, size_t name_len, const char *v,
                       size_t vlen)
{
    if (name_len == 0)
        return fail(r, "empty header name");
    for (size_t i = 0; i < name_len; i++)
        if (!pt_tchar[(unsigned char)name[i]])
            return fail(r, "invalid header name");
    if (pt_field_value_span(v, vlen) != vlen)
        return fail(r, "invalid character in header value");
    if (++r->nlines > r->max_hdrs)
        return fail(r, "too many header lines");
    return PT_CGI_RESP_MORE;
}

/* What a checked field means: buf[s, +name_len) its name, buf[vs, +vlen)
 * its value. */
static int field(pt_cgi_resp *r, size_t s, size_t name_len, size_t vs, size_t vlen)
{
    const char *name = r->buf + s;
    const char *v = r->buf + vs;

    int tok = name_tok(name, name_len);
    switch (tok) {
    case CR_STATUS:
        return parse_status(r, v, vlen);
    case CR_CONTENT_LENGTH:
        return parse_content_length(r, v, vlen);
    case CR_ACCEL_BUFFERING:
        /* nginx's per-response switch; anything else leaves it as it was */
        if (pt_str_ieq(v, vlen, "no"))
            r->no_buffering = true;
        else if (pt_str_ieq(v, vlen, "yes"))
            r->no_buffering = false;
        return PT_CGI_RESP_MORE;
    case CR_SENDFILE:
    case CR_ACCEL_REDIRECT:
        /* one file per response: two would leave it ambiguous */
        if (r->xsend_kind != PT_XSEND_NONE)
            return fail(r, "duplicate X-Sendfile or X-Accel-Redirect");
        if (vlen == 0)
            return fail(r, "empty X-Sendfile or X-Accel-Redirect");
        r->xsend_kind = tok == CR_SENDFILE ? PT_XSEND_FILE : PT_XSEND_URI;
        r->xsend_off = (uint32_t)vs;
        r->xsend_len = (uint32_t)vlen;
        return PT_CGI_RESP_MORE;
    case CR_DROPPED:
        return PT_CGI_RESP_MORE;
    case CR_LOCATION:
        /* RFC 3875 §6.3.2: one URI; two would leave the target ambiguous */
        if (vlen == 0)
            return fail(r, "empty Location");
        if (r->location.p)
            return fail(r, "duplicate Location");
        r->location.p = v;
        r->location.len = vlen;
        break;
    case CR_CONTENT_TYPE:
        r->has_content_type = true;
        break;
    default:
        break;
    }
    return keep(r, s, name_len, vs, vlen);
}

/* One complete header line buf[s..e) (line terminator removed). */
static int header_line(pt_cgi_resp *r, size_t s, size_t e)
{
    const char *b = r->buf;
    const char *colon;
    size_t name_len, vs, ve;

    /* obs-fold is gone from HTTP (RFC 9112 §5.2) and never needed by CGI */
    if (is_ws((unsigned char)b[s]))
        return fail(r, "header line starts with whitespace (obs-fold)");
    colon = memchr(b + s, ':', e - s);
    if (!colon)
        return fail(r, "invalid header line");
    name_len = (size_t)(colon - (b + s));
    if (name_len == 0)
        return fail(r, "empty header name");
    /* RFC 9112 §5.1: no whitespace between field name and colon */
    if (is_ws((unsigned char)b[s + name_len - 1]))
        return fail(r, "whitespace before colon");
    vs = s + name_len + 1;
    ve = e;
    while (vs < ve && is_ws((unsigned char)b[vs]))
        vs++;
    while (ve > vs && is_ws((unsigned char)b[ve - 1]))
        ve--;
    /* the untrimmed value's CTLs count too (a trailing NUL is one) */
    if (check_field(r, b + s, name_len, b + s + name_len + 1, e - s - name_len - 1) !=
        PT_CGI_RESP_MORE)
        return PT_CGI_RESP_ERROR;
    return field(r, s, name_len, vs, ve - vs);
}

/* The empty line: settle status and redirect kind (RFC 3875 §6.2). */
static int finish(pt_cgi_resp *r)
{
    const char *loc = r->location.p;
    size_t n = r->location.len;

    /* Any Location without Status is a redirect (client-redir-response,
     * §6.2.3), as Apache and lighttpd do; 302 also for a local one, so a
     * caller that does not re-dispatch still answers sanely. */
    if (!r->has_status)
        r->status = loc ? 302 : 200;
    /* §6.2.2 local-redir-response: an abs-path, and neither Status nor a
     * document ("//host" is a network-path reference, i.e. another host) */
    r->local_redirect =
        loc && loc[0] == '/' && !(n > 1 && loc[1] == '/') && !r->has_status && !r->has_content_type;
    r->state = PT_CGI_RESP_DONE;
    return PT_CGI_RESP_DONE;
}

/* A line ended with the LF at buf[len - 1]; it starts at line_start. */
static int end_of_line(pt_cgi_resp *r)
{
    size_t s = r->line_start, e = r->len - 1;
    int rc;

    /* RFC 3875 §6.2 allows LF or CRLF; a CR anywhere else is an error */
    if (e > s && r->buf[e - 1] == '\r')
        e--;
    if (memchr(r->buf + s, '\r', e - s))
        return fail(r, "bare CR in header block");
    if (e == s) {
        if (r->nlines == 0)
            return fail(r, "no header");
        return finish(r);
    }
    if (r->status_line && r->nlines == 0)
        rc = status_line(r, r->buf + s, e - s);
    else
        rc = header_line(r, s, e);
    r->line_start = r->len;
    return rc;
}

int pt_cgi_resp_feed(pt_cgi_resp *r, const char *p, size_t len, size_t *consumed)
{
    size_t i = 0;
    int rc = PT_CGI_RESP_MORE;

    *consumed = 0;
    if (r->state != PT_CGI_RESP_MORE)
        return r->state;
    while (i < len && rc == PT_CGI_RESP_MORE) {
        const char *lf = memchr(p + i, '\n', len - i);
        size_t n = lf ? (size_t)(lf - (p + i)) + 1 : len - i;

        rc = append(r, p + i, n);
        if (rc != PT_CGI_RESP_MORE)
            break;
        i += n;
        if (lf)
            rc = end_of_line(r);
    }
    *consumed = i;
    return rc;
}

int pt_cgi_resp_eof(pt_cgi_resp *r)
{
    if (r->state != PT_CGI_RESP_MORE)
        return r->state;
    return fail(r, r->len == 0 ? "no output" : "script output ended inside the header block");
}

/* ---- a head parsed by the codec ------------------------------------------ */

void pt_cgi_resp_reset(pt_cgi_resp *r)
{
    /* untouched since init (the usual case: the first head of a response):
     * every call that sets a result counts a line, or fails, or copies */
    if (r->state == PT_CGI_RESP_MORE && r->nlines == 0 && r->len == 0 && r->nhdrs == 0)
        return;
    size_t max_size = r->max_size, max_hdrs = r->max_hdrs;
    bool sl = r->status_line;
    pt_cgi_resp_free(r);
    pt_cgi_resp_init(r, max_size, max_hdrs);
    r->status_line = sl;
}

int pt_cgi_resp_status(pt_cgi_resp *r, const char *line, size_t n)
{
    if (r->state != PT_CGI_RESP_MORE)
        return r->state;
    return status_line(r, line, n);
}

int pt_cgi_resp_field(pt_cgi_resp *r, const char *name, size_t nlen, const char *v, size_t vlen)
{
    if (r->state != PT_CGI_RESP_MORE)
        return r->state;
    if (check_field(r, name, nlen, v, vlen) != PT_CGI_RESP_MORE)
        return PT_CGI_RESP_ERROR;
    size_t s = r->len;
    if (append(r, name, nlen) != PT_CGI_RESP_MORE || append(r, v, vlen) != PT_CGI_RESP_MORE)
        return PT_CGI_RESP_ERROR;
    return field(r, s, nlen, s + nlen, vlen);
}

/* a checked field line counted against max_hdrs: PT_CGI_RESP_MORE to go on */
static int checked_line(pt_cgi_resp *r)
{
    if (r->state != PT_CGI_RESP_MORE)
        return r->state;
    if (++r->nlines > r->max_hdrs)
        return fail(r, "too many header lines");
    return PT_CGI_RESP_MORE;
}

int pt_cgi_resp_field_checked(pt_cgi_resp *r, const char *name, size_t nlen, const char *v,
                              size_t vlen)
{
    int st = checked_line(r);
    if (st != PT_CGI_RESP_MORE)
        return st;
    size_t s = r->len;
    if (append(r, name, nlen) != PT_CGI_RESP_MORE || append(r, v, vlen) != PT_CGI_RESP_MORE)
        return PT_CGI_RESP_ERROR;
    return field(r, s, nlen, s + nlen, vlen);
}

int pt_cgi_resp_line_checked(pt_cgi_resp *r, const char *line, size_t nlen, size_t voff,
                             size_t vlen)
{
    int st = checked_line(r);
    if (st != PT_CGI_RESP_MORE)
        return st;
    size_t s = r->len, n = voff + vlen;
    /* name, colon, whitespace and value in one copy; into the room there
     * is without append's call (the cap holds: len <= cap <= max_size) */
    if (n <= r->cap - s) {
        memcpy(r->buf + s, line, n);
        r->len = s + n;
    } else if (append(r, line, n) != PT_CGI_RESP_MORE) {
        return PT_CGI_RESP_ERROR;
    }
    return field(r, s, nlen, s + voff, vlen);
}

int pt_cgi_resp_end(pt_cgi_resp *r)
{
    if (r->state != PT_CGI_RESP_MORE)
        return r->state;
    if (r->nlines == 0)
        return fail(r, "no header");
    return finish(r);
}
