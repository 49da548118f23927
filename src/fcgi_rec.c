#include "first.h"
#include "fcgi_rec.h"

/* fcgi_rec.c: FastCGI 1.0 records on the wire: the encoders for what
 * portico sends (BEGIN_REQUEST, PARAMS, ABORT_REQUEST, GET_VALUES) and the
 * resumable decoder for what a responder's backend sends back. No I/O here. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoding ----------------------------------------------------------- */

void pt_fcgi_header(unsigned char out[FCGI_HEADER_LEN], unsigned type, uint16_t id,
                    uint16_t content_len, uint8_t padding_len)
{
    out[0] = FCGI_VERSION_1;
    out[1] = (unsigned char)type;
    out[2] = (unsigned char)(id >> 8);
    out[3] = (unsigned char)id;
    out[4] = (unsigned char)(content_len >> 8);
    out[5] = (unsigned char)content_len;
    out[6] = padding_len;
    out[7] = 0;
}

void pt_fcgi_begin_request(unsigned char out[16], uint16_t id, uint16_t role, bool keep_conn)
{
    pt_fcgi_header(out, FCGI_BEGIN_REQUEST, id, 8, 0);
    out[8] = (unsigned char)(role >> 8);
    out[9] = (unsigned char)role;
    out[10] = keep_conn ? FCGI_KEEP_CONN : 0;
    memset(out + 11, 0, 5);
}

void pt_fcgi_abort_request(unsigned char out[FCGI_HEADER_LEN], uint16_t id)
{
    pt_fcgi_header(out, FCGI_ABORT_REQUEST, id, 0, 0);
}

/* §3.4: lengths up to 127 take one byte, longer ones four with the top bit
 * set (31 bits of length). */
static size_t pair_len_size(size_t n)
{
    return n < 128 ? 1 : 4;
}

static unsigned char *put_pair_len(unsigned char *q, size_t n)
{
    if (n < 128) {
        *q++ = (unsigned char)n;
        return q;
    }
    *q++ = (unsigned char)(0x80 | (n >> 24));
    *q++ = (unsigned char)(n >> 16);
    *q++ = (unsigned char)(n >> 8);
    *q++ = (unsigned char)n;
    return q;
}

/* padding that brings a content length to a multiple of 8 */
static uint8_t pad8(size_t clen)
{
    return (uint8_t)((8 - (clen & 7)) & 7);
}

void pt_fcgi_params_init(pt_fcgi_params *p, uint16_t id)
{
    memset(p, 0, sizeof(*p));
    p->rec = SIZE_MAX;
    p->id = id;
}

static int params_fail(pt_fcgi_params *p, int err)
{
    p->failed = true;
    p->err = err;
    errno = err;
    return -1;
}

static int params_reserve(pt_fcgi_params *p, size_t more)
{
    size_t cap;
    char *nb;

    if (p->cap - p->len >= more)
        return 0;
    cap = p->cap ? p->cap : 512;
    while (cap - p->len < more)
        cap *= 2;
    nb = realloc(p->buf, cap);
    if (!nb)
        return -1;
    p->buf = nb;
    p->cap = cap;
    return 0;
}

/* Pad the open record and fill in its header. The caller reserved room for
 * the padding (at most 7 bytes). */
static void params_close(pt_fcgi_params *p)
{
    size_t clen = p->len - p->rec - FCGI_HEADER_LEN;
    uint8_t pad = pad8(clen);

    memset(p->buf + p->len, 0, pad);
    p->len += pad;
    pt_fcgi_header((unsigned char *)p->buf + p->rec, FCGI_PARAMS, p->id, (uint16_t)clen, pad);
    p->rec = SIZE_MAX;
}

int pt_fcgi_params_add(pt_fcgi_params *p, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    size_t plen;
    unsigned char *q;

    if (p->failed) {
        errno = p->err;
        return -1;
    }
    /* a pair must fit one record's content on its own */
    if (nlen > FCGI_MAX_LENGTH || vlen > FCGI_MAX_LENGTH)
        return params_fail(p, E2BIG);
    plen = pair_len_size(nlen) + pair_len_size(vlen) + nlen + vlen;
    if (plen > FCGI_MAX_LENGTH)
        return params_fail(p, E2BIG);
    /* room for: this pair, padding of the record being closed (7), a new
     * header, and the closing padding (7) so close never reallocates */
    if (params_reserve(p, plen + 2 * 7 + FCGI_HEADER_LEN) < 0)
        return params_fail(p, ENOMEM);
    if (p->rec != SIZE_MAX && p->len - p->rec - FCGI_HEADER_LEN + plen > FCGI_MAX_LENGTH)
        params_close(p);
    if (p->rec == SIZE_MAX) {
        p->rec = p->len;
        p->len += FCGI_HEADER_LEN;
    }
    q = (unsigned char *)p->buf + p->len;
    q = put_pair_len(q, nlen);
    q = put_pair_len(q, vlen);
    if (nlen)
        memcpy(q, name, nlen);
    if (vlen)
        memcpy(q + nlen, value, vlen);
    p->len += plen;
    return 0;
}

int pt_fcgi_params_finish(pt_fcgi_params *p)
{
    if (p->failed) {
        errno = p->err;
        return -1;
    }
    if (params_reserve(p, 7 + FCGI_HEADER_LEN) < 0)
        return params_fail(p, ENOMEM);
    if (p->rec != SIZE_MAX)
        params_close(p);
    /* §3.3: an empty record ends the PARAMS stream */
    pt_fcgi_header((unsigned char *)p->buf + p->len, FCGI_PARAMS, p->id, 0, 0);
    p->len += FCGI_HEADER_LEN;
    return 0;
}

void pt_fcgi_params_free(pt_fcgi_params *p)
{
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
    p->rec = SIZE_MAX;
}

size_t pt_fcgi_get_values(unsigned char out[128])
{
    static const char *const names[] = {FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS};
    unsigned char *q = out + FCGI_HEADER_LEN;
    size_t clen;
    uint8_t pad;

    /* §4.1: the names with empty values */
    for (size_t i = 0; i < PT_ARRAY_LEN(names); i++) {
        size_t n = strlen(names[i]);
        q = put_pair_len(q, n);
        q = put_pair_len(q, 0);
        memcpy(q, names[i], n);
        q += n;
    }
    clen = (size_t)(q - out) - FCGI_HEADER_LEN;
    pad = pad8(clen);
    memset(q, 0, pad);
    pt_fcgi_header(out, FCGI_GET_VALUES, FCGI_NULL_REQUEST_ID, (uint16_t)clen, pad);
    return FCGI_HEADER_LEN + clen + pad;
}

/* One §3.4 length at p[*off..len): false when it runs past the end. */
static bool get_pair_len(const unsigned char *p, size_t len, size_t *off, size_t *n)
{
    if (*off >= len)
        return false;
    if (p[*off] < 0x80) {
        *n = p[(*off)++];
        return true;
    }
    if (len - *off < 4)
        return false;
    *n = ((size_t)(p[*off] & 0x7f) << 24) | ((size_t)p[*off + 1] << 16) |
         ((size_t)p[*off + 2] << 8) | p[*off + 3];
    *off += 4;
    return true;
}

/* Walk the pairs; cb NULL only validates. */
static int walk_pairs(const char *p, size_t len,
                      void (*cb)(void *ctx, const char *name, size_t nlen, const char *value,
                                 size_t vlen),
                      void *ctx)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t off = 0, nlen, vlen;

    while (off < len) {
        if (!get_pair_len(u, len, &off, &nlen) || !get_pair_len(u, len, &off, &vlen))
            return -1;
        if (nlen > len - off || vlen > len - off - nlen)
            return -1;
        if (cb)
            cb(ctx, p + off, nlen, p + off + nlen, vlen);
        off += nlen + vlen;
    }
    return 0;
}

int pt_fcgi_pairs(const char *p, size_t len,
                  void (*cb)(void *ctx, const char *name, size_t nlen, const char *value,
                             size_t vlen),
                  void *ctx)
{
    /* validate everything first so cb never sees part of a bad block */
    if (len == 0)
        return 0;
    if (walk_pairs(p, len, NULL, NULL) < 0)
        return -1;
    return walk_pairs(p, len, cb, ctx);
}

/* ---- decoding ----------------------------------------------------------- */

enum {
    S_HEADER,  /* gathering the 8 header bytes (d->hlen so far) */
    S_CONTENT, /* d->content_left bytes of content to go */
    S_PADDING, /* d->padding_left bytes of padding to skip */
};

/* The reasons a dead decoder keeps reporting; d->state holds the index once
 * d->dead is set (the struct has no room for a pointer). */
enum {
    E_VERSION,
    E_ID,
    E_TYPE,
    E_END_LEN,
    E_UNKNOWN_TYPE,
    E_VALUES_ID,
    E_NOMEM,
};
static const char *const errors[] = {
    [E_VERSION] = "bad version",
    [E_ID] = "unexpected request id",
    [E_TYPE] = "unexpected record type",
    [E_END_LEN] = "bad END_REQUEST length",
    [E_UNKNOWN_TYPE] = "backend sent FCGI_UNKNOWN_TYPE",
    [E_VALUES_ID] = "GET_VALUES_RESULT with a non-zero request id",
    [E_NOMEM] = "out of memory",
};

void pt_fcgi_dec_init(pt_fcgi_dec *d, uint16_t id)
{
    memset(d, 0, sizeof(*d));
    d->id = id;
    d->state = S_HEADER;
}

void pt_fcgi_dec_free(pt_fcgi_dec *d)
{
    free(d->values);
    d->values = NULL;
    d->values_len = 0;
}

bool pt_fcgi_dec_idle(const pt_fcgi_dec *d)
{
    return !d->dead && d->state == S_HEADER && d->hlen == 0;
}

/* Kill the decoder; a dead one swallows all input (so a careless loop ends). */
static size_t dec_error(pt_fcgi_dec *d, int why, size_t len, pt_fcgi_event *ev)
{
    d->dead = true;
    d->state = why;
    ev->type = PT_FCGI_EV_ERROR;
    ev->error = errors[why];
    return len;
}

/* A complete header in d->hdr: check it and set up the record. Returns an
 * E_* code, or -1 when the record is acceptable. */
static int dec_header(pt_fcgi_dec *d)
{
    const unsigned char *h = d->hdr;
    size_t clen = ((size_t)h[4] << 8) | h[5];

    if (h[0] != FCGI_VERSION_1)
        return E_VERSION;
    d->type = h[1];
    d->rid = (uint16_t)((h[2] << 8) | h[3]);
    d->content_left = clen;
    d->padding_left = h[6];
    switch (d->type) {
    case FCGI_STDOUT:
    case FCGI_STDERR:
        if (d->rid != d->id)
            return E_ID;
        break;
    case FCGI_END_REQUEST:
        if (d->rid != d->id)
            return E_ID;
        /* §5.5: the body is exactly an FCGI_EndRequestBody */
        if (clen != sizeof(FCGI_EndRequestBody))
            return E_END_LEN;
        d->small_len = 0;
        break;
    case FCGI_GET_VALUES_RESULT:
        /* §4.1: a management record */
        if (d->rid != FCGI_NULL_REQUEST_ID)
            return E_VALUES_ID;
        free(d->values);
        d->values = NULL;
        d->values_len = 0;
        if (clen && !(d->values = malloc(clen)))
            return E_NOMEM;
        break;
    case FCGI_UNKNOWN_TYPE:
        /* §4.2: the backend did not understand a record portico sent */
        return E_UNKNOWN_TYPE;
    default:
        /* §3.3/§6: the other types flow only from the web server to the
         * application, or are unknown */
        return E_TYPE;
    }
    return -1;
}

/* The record just ended (padding included): report END / VALUES. */
static bool dec_record_done(pt_fcgi_dec *d, pt_fcgi_event *ev)
{
    const unsigned char *b = d->small;

    d->state = S_HEADER;
    d->hlen = 0;
    if (d->type == FCGI_END_REQUEST) {
        ev->type = PT_FCGI_EV_END;
        ev->app_status =
            ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        ev->protocol_status = b[4];
        return true;
    }
    if (d->type == FCGI_GET_VALUES_RESULT) {
        ev->type = PT_FCGI_EV_VALUES;
        ev->data = d->values ? d->values : "";
        ev->len = d->values_len;
        return true;
    }
    return false;
}

/* Skip what padding p[pos..len) holds; true when the record is over. */
static bool dec_skip_padding(pt_fcgi_dec *d, size_t len, size_t *pos)
{
    size_t n = PT_MIN(d->padding_left, len - *pos);

    *pos += n;
    d->padding_left -= n;
    if (d->padding_left)
        return false;
    d->state = S_HEADER;
    d->hlen = 0;
    return true;
}

size_t pt_fcgi_dec_feed(pt_fcgi_dec *d, const char *p, size_t len, pt_fcgi_event *ev)
{
    size_t pos = 0, n;
    int why;

    memset(ev, 0, sizeof(*ev));
    if (d->dead) {
        ev->type = PT_FCGI_EV_ERROR;
        ev->error = errors[d->state];
        return len;
    }
    for (;;) {
        switch (d->state) {
        case S_HEADER:
            if (pos == len)
                return pos;
            n = PT_MIN(FCGI_HEADER_LEN - d->hlen, len - pos);
            memcpy(d->hdr + d->hlen, p + pos, n);
            d->hlen += n;
            pos += n;
            if (d->hlen < FCGI_HEADER_LEN)
                return pos;
            why = dec_header(d);
            if (why >= 0)
                return dec_error(d, why, len, ev);
            d->state = S_CONTENT;
            if (d->content_left == 0 && (d->type == FCGI_STDOUT || d->type == FCGI_STDERR)) {
                /* §3.3: an empty stream record ends that stream */
                ev->type = d->type == FCGI_STDOUT ? PT_FCGI_EV_STDOUT : PT_FCGI_EV_STDERR;
                ev->data = p + pos;
                ev->len = 0;
                d->state = S_PADDING;
                dec_skip_padding(d, len, &pos);
                return pos;
            }
            break;
        case S_CONTENT:
            if (d->content_left == 0) {
                d->state = S_PADDING;
                break;
            }
            if (pos == len)
                return pos;
            n = PT_MIN(d->content_left, len - pos);
            if (d->type == FCGI_STDOUT || d->type == FCGI_STDERR) {
                ev->type = d->type == FCGI_STDOUT ? PT_FCGI_EV_STDOUT : PT_FCGI_EV_STDERR;
                ev->data = p + pos;
                ev->len = n;
                pos += n;
                d->content_left -= n;
                if (d->content_left == 0) {
                    /* eat the padding now if it is here, so the caller
                     * sees an idle decoder as early as possible */
                    d->state = S_PADDING;
                    dec_skip_padding(d, len, &pos);
                }
                return pos;
            }
            if (d->type == FCGI_END_REQUEST) {
                memcpy(d->small + d->small_len, p + pos, n);
                d->small_len += n;
            } else { /* FCGI_GET_VALUES_RESULT */
                memcpy(d->values + d->values_len, p + pos, n);
                d->values_len += n;
            }
            pos += n;
            d->content_left -= n;
            break;
        case S_PADDING:
        default:
            if (d->padding_left && pos == len)
                return pos;
            /* END and VALUES are reported only once their padding is
             * gone: the bytes after them belong to the caller */
            if (dec_skip_padding(d, len, &pos) && dec_record_done(d, ev))
                return pos;
            break;
        }
    }
}
