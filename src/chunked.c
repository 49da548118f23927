#include "first.h"
#include "chunked.h"

/* chunked.c: the strict, resumable decoder for chunked request bodies
 * (RFC 9112 §7.1). One byte-level state machine, so any split of the input
 * across reads gives the same result; nothing is buffered between calls. */

#include <string.h>

enum {
    S_SIZE_START,   /* first hex digit of chunk-size */
    S_SIZE,         /* more hex digits */
    S_BWS_SEMI,     /* BWS that may only be followed by ';' */
    S_EXT_PRE_NAME, /* after ';': BWS, then chunk-ext-name */
    S_EXT_NAME,     /* inside chunk-ext-name */
    S_EXT_NAME_BWS, /* BWS after the name: '=' or ';' must follow */
    S_EXT_PRE_VAL,  /* after '=': BWS, then token or quoted-string */
    S_EXT_TOKVAL,   /* inside a token value */
    S_EXT_QS,       /* inside a quoted-string value */
    S_EXT_QS_ESC,   /* after '\' in a quoted-string */
    S_EXT_QS_END,   /* right after the closing DQUOTE */
    S_SIZE_LF,      /* CR of the size line seen */
    S_DATA,         /* chunk-data */
    S_DATA_CR,      /* CRLF after chunk-data */
    S_DATA_LF,
    S_TR_START, /* start of a trailer field line, or the final CRLF */
    S_TR_NAME,  /* field-name */
    S_TR_VALUE, /* after ':' up to CR */
    S_TR_LF,    /* CR of a trailer line seen */
    S_FINAL_LF, /* CR of the final empty line seen */
    S_DONE,
    S_BAD,
    S_TOO_LARGE,
};

/* tchar, RFC 9110 §5.6.2 */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* qdtext, RFC 9110 §5.6.4 (obs-text included) */
static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII lower case; digits are already handled */
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void pt_chunked_init(pt_chunked *c, uint64_t max_body, size_t max_trailer)
{
    memset(c, 0, sizeof(*c));
    c->state = S_SIZE_START;
    c->max_body = max_body;
    c->max_trailer = max_trailer;
    c->max_line = 1024;
}

/* One byte of a size line (chunk-size [chunk-ext] CRLF). Returns the next
 * state. */
static int size_line_byte(pt_chunked *c, unsigned char ch)
{
    int d;

    /* max_line counts the line without its CRLF */
    if (c->state != S_SIZE_LF && ch != '\r' && ++c->line_len > c->max_line)
        return S_BAD;
    switch (c->state) {
    case S_SIZE_START:
        /* no sign, no leading space, no empty size (RFC 9112 §7.1) */
        d = hex_digit(ch);
        if (d < 0)
            return S_BAD;
        c->chunk_left = (uint64_t)d;
        c->ndigits = 1;
        return S_SIZE;
    case S_SIZE:
        d = hex_digit(ch);
        if (d >= 0) {
            /* 16 hex digits fill a uint64_t: a 17th is an overflow */
            if (++c->ndigits > 16)
                return S_BAD;
            c->chunk_left = c->chunk_left << 4 | (uint64_t)d;
            return S_SIZE;
        }
        if (ch != '\r' && ch != ';' && !is_ws(ch))
            return S_BAD;
        /* the size is complete: enforce max_body before its data arrives */
        if (c->chunk_left > c->max_body - c->total)
            return S_TOO_LARGE;
        return ch == '\r' ? S_SIZE_LF : ch == ';' ? S_EXT_PRE_NAME : S_BWS_SEMI;
    case S_BWS_SEMI:
        /* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ) */
        if (is_ws(ch))
            return S_BWS_SEMI;
        return ch == ';' ? S_EXT_PRE_NAME : S_BAD;
    case S_EXT_PRE_NAME:
        if (is_ws(ch))
            return S_EXT_PRE_NAME;
        return is_tchar(ch) ? S_EXT_NAME : S_BAD;
    case S_EXT_NAME:
        if (is_tchar(ch))
            return S_EXT_NAME;
        if (ch == '\r')
            return S_SIZE_LF;
        if (ch == ';')
            return S_EXT_PRE_NAME;
        if (ch == '=')
            return S_EXT_PRE_VAL;
        return is_ws(ch) ? S_EXT_NAME_BWS : S_BAD;
    case S_EXT_NAME_BWS:
        if (is_ws(ch))
            return S_EXT_NAME_BWS;
        if (ch == ';')
            return S_EXT_PRE_NAME;
        return ch == '=' ? S_EXT_PRE_VAL : S_BAD;
    case S_EXT_PRE_VAL:
        if (is_ws(ch))
            return S_EXT_PRE_VAL;
        if (ch == '"')
            return S_EXT_QS;
        return is_tchar(ch) ? S_EXT_TOKVAL : S_BAD;
    case S_EXT_TOKVAL:
        if (is_tchar(ch))
            return S_EXT_TOKVAL;
        if (ch == '\r')
            return S_SIZE_LF;
        if (ch == ';')
            return S_EXT_PRE_NAME;
        return is_ws(ch) ? S_BWS_SEMI : S_BAD;
    case S_EXT_QS:
        if (ch == '"')
            return S_EXT_QS_END;
        if (ch == '\\')
            return S_EXT_QS_ESC;
        return is_qdtext(ch) ? S_EXT_QS : S_BAD;
    case S_EXT_QS_ESC:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return (ch == '\t' || ch >= 0x20) && ch != 0x7f ? S_EXT_QS : S_BAD;
    case S_EXT_QS_END:
        if (ch == '\r')
            return S_SIZE_LF;
        if (ch == ';')
            return S_EXT_PRE_NAME;
        return is_ws(ch) ? S_BWS_SEMI : S_BAD;
    case S_SIZE_LF:
        /* bare CR is never a line end (RFC 9112 §2.2) */
        if (ch != '\n')
            return S_BAD;
        c->line_len = 0;
        return c->chunk_left == 0 ? S_TR_START : S_DATA;
    default:
        return S_BAD;
    }
}

/* One byte of the trailer section (RFC 9112 §7.1.2). Fields are checked
 * for syntax only and dropped: nothing downstream reads them. */
static int trailer_byte(pt_chunked *c, unsigned char ch)
{
    if (c->state == S_FINAL_LF)
        return ch == '\n' ? S_DONE : S_BAD;
    if (c->state == S_TR_START && ch == '\r')
        return S_FINAL_LF;
    if (++c->trailer_bytes > c->max_trailer)
        return S_BAD;
    if (c->state != S_TR_LF && ch != '\r' && ++c->line_len > c->max_line)
        return S_BAD;
    switch (c->state) {
    case S_TR_START:
        /* a leading SP/HT would be obs-fold (RFC 9112 §5.2): rejected */
        return is_tchar(ch) ? S_TR_NAME : S_BAD;
    case S_TR_NAME:
        /* no whitespace between name and colon (RFC 9112 §5.1) */
        if (is_tchar(ch))
            return S_TR_NAME;
        return ch == ':' ? S_TR_VALUE : S_BAD;
    case S_TR_VALUE:
        if (ch == '\r')
            return S_TR_LF;
        /* field-vchar / SP / HTAB (RFC 9110 §5.5); other CTLs are errors */
        return (ch == '\t' || ch >= 0x20) && ch != 0x7f ? S_TR_VALUE : S_BAD;
    case S_TR_LF:
        if (ch != '\n')
            return S_BAD;
        c->line_len = 0;
        return S_TR_START;
    default:
        return S_BAD;
    }
}

pt_chunk_rc pt_chunked_decode(pt_chunked *c, const char *in, size_t inlen, size_t *consumed,
                              char *out, size_t *outlen)
{
    size_t i = 0, o = 0;
    pt_chunk_rc rc = PT_CHUNK_MORE;

    while (i < inlen) {
        if (c->state == S_DATA) {
            size_t n = inlen - i;
            if (n > c->chunk_left)
                n = (size_t)c->chunk_left;
            /* o <= i always, so with out == in this only moves bytes back */
            if (out + o != in + i)
                memmove(out + o, in + i, n);
            i += n;
            o += n;
            c->chunk_left -= n;
            c->total += n;
            if (c->chunk_left == 0)
                c->state = S_DATA_CR;
            continue;
        }
        if (c->state >= S_DONE)
            break;
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case S_DATA_CR:
            /* RFC 9112 §7.1: chunk-data is followed by exactly CRLF */
            c->state = ch == '\r' ? S_DATA_LF : S_BAD;
            break;
        case S_DATA_LF:
            c->state = ch == '\n' ? S_SIZE_START : S_BAD;
            break;
        case S_TR_START:
        case S_TR_NAME:
        case S_TR_VALUE:
        case S_TR_LF:
        case S_FINAL_LF:
            c->state = trailer_byte(c, ch);
            break;
        default:
            c->state = size_line_byte(c, ch);
            break;
        }
        if (c->state == S_BAD || c->state == S_TOO_LARGE)
            break;
        i++;
        if (c->state == S_DONE)
            break;
    }

    if (c->state == S_DONE)
        rc = PT_CHUNK_DONE;
    else if (c->state == S_BAD)
        rc = PT_CHUNK_BAD;
    else if (c->state == S_TOO_LARGE)
        rc = PT_CHUNK_TOO_LARGE;
    *consumed = i;
    *outlen = o;
    return rc;
}
