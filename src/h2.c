/* h2.c: HTTP/2 (RFC 9113) over nghttp2, driven by the caller's event loop:
 * no socket, no second loop. Bytes read go to nghttp2_session_mem_recv,
 * frames come out of nghttp2_session_mem_send into the connection's queue
 * a bounded amount at a time. Each stream keeps its request head (decoded
 * HPACK fields as pt_head, so the router and handlers see what HTTP/1.1
 * gives them) and its response queue, from which a data provider cuts one
 * DATA frame at a time (a file range is read a frame's worth at a time). */
#include "first.h"
#include "h2.h"
#include "util.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* a field's place in a stream's text arena (offsets: the arena grows) */
typedef struct h2_field {
    uint32_t no, nl, vo, vl;
} h2_field;

typedef struct h2_stream {
    struct h2_stream *prev, *next;
    int32_t id;
    /* the request: field text, fields, then the head made of them */
    char *arena;
    size_t alen, acap;
    h2_field *f;
    size_t nf, fcap;
    h2_field method, scheme, path, authority;
    bool has_method, has_path, has_authority;
    bool too_big;   /* over the limits: answered 431 by the owner */
    bool delivered; /* the owner has the request */
    pt_header *hdrs;
    pt_head head;
    /* the response: its fields (text in rarena), queued body */
    char *rarena;
    size_t ralen, racap;
    h2_field *rf;
    size_t nrf, rfcap;
    int status;
    pt_cq out;
    bool body_end, deferred, submitted;
} h2_stream;

struct pt_h2 {
    nghttp2_session *s;
    pt_h2_cbs cbs;
    void *ud;
    pt_h2_limits lim;
    h2_stream *streams;
    size_t nstreams;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    /* a head's text is a few hundred bytes: text arenas start there, not
     * at 16 bytes doubled five times (a realloc each, every stream) */
    size_t n = *cap ? *cap * 2 : elem == 1 ? 512 : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Append text to an arena: its offset, or -1. */
static int64_t arena_put(char **a, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (grow((void **)a, cap, *len + n + 1, 1) < 0)
        return -1;
    size_t o = *len;
    memcpy(*a + o, p, n);
    (*a)[o + n] = '\0';
    *len += n + 1;
    return (int64_t)o;
}

static h2_stream *stream_of(pt_h2 *h, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(h->s, sid);
}

static void stream_free(pt_h2 *h, h2_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->nstreams--;
    pt_cq_free(&st->out); /* file descriptors stay the owner's */
    free(st->arena);
    free(st->f);
    free(st->hdrs);
    free(st->rarena);
    free(st->rf);
    free(st);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM: this one only */
    st->id = fr->hd.stream_id;
    pt_cq_init(&st->out);
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->nstreams++;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static bool lit_eq(const uint8_t *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* nghttp2 has checked the field already (RFC 9113 §8.2: lowercase names,
 * no connection-specific fields, pseudo-fields first and known, no CR LF
 * NUL in values); what is left is keeping it within the limits. */
static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers are not passed on (as for HTTP/1.1) */
    h2_stream *st = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
    if (!st || st->too_big)
        return 0;
    /* the decoded size counts, as SETTINGS_MAX_HEADER_LIST_SIZE does
     * (RFC 9113 §6.5.2: 32 octets per field): an HPACK bomb stops here */
    if (st->alen + nl + vl + 32 > h->lim.header_bytes || st->nf >= h->lim.max_headers) {
        st->too_big = true;
        return 0;
    }
    int64_t no = arena_put(&st->arena, &st->alen, &st->acap, name, nl);
    int64_t vo = no < 0 ? -1 : arena_put(&st->arena, &st->alen, &st->acap, value, vl);
    if (vo < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    h2_field fl = {(uint32_t)no, (uint32_t)nl, (uint32_t)vo, (uint32_t)vl};
    if (nl > 0 && name[0] == ':') {
        if (lit_eq(name, nl, ":method")) {
            st->method = fl;
            st->has_method = true;
        } else if (lit_eq(name, nl, ":path")) {
            st->path = fl;
            st->has_path = true;
        } else if (lit_eq(name, nl, ":authority")) {
            st->authority = fl;
            st->has_authority = true;
        } else if (lit_eq(name, nl, ":scheme")) {
            st->scheme = fl;
        }
        return 0;
    }
    if (grow((void **)&st->f, &st->fcap, st->nf + 1, sizeof(h2_field)) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->f[st->nf++] = fl;
    return 0;
}

static pt_method method_of(const char *m, size_t n)
{
    static const struct {
        const char *s;
        pt_method m;
    } t[] = {
        {"GET", PT_M_GET},     {"HEAD", PT_M_HEAD},     {"POST", PT_M_POST},
        {"PUT", PT_M_PUT},     {"DELETE", PT_M_DELETE}, {"OPTIONS", PT_M_OPTIONS},
        {"PATCH", PT_M_PATCH}, {"TRACE", PT_M_TRACE},   {"CONNECT", PT_M_CONNECT},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(t); i++)
        if (n == strlen(t[i].s) && memcmp(m, t[i].s, n) == 0)
            return t[i].m;
    return PT_M_OTHER;
}

static bool field_is(const h2_stream *st, const h2_field *f, const char *lit)
{
    return f->nl == strlen(lit) && memcmp(st->arena + f->no, lit, f->nl) == 0;
}

/* The head as HTTP/1.1 parsing would give it: :authority is the Host
 * (RFC 9113 §8.3.1), cookie crumbs joined with "; " (§8.2.3). */
static int make_head(h2_stream *st)
{
    /* the joined cookie goes into the arena first: pointers come after */
    size_t ncookie = 0, cookie_len = 0;
    bool has_host = false;
    for (size_t i = 0; i < st->nf; i++) {
        if (field_is(st, &st->f[i], "cookie")) {
            ncookie++;
            cookie_len += st->f[i].vl + 2;
        } else if (field_is(st, &st->f[i], "host")) {
            has_host = true;
        }
    }
    h2_field joined = {0, 6, 0, 0};
    if (ncookie > 1) {
        char *tmp = malloc(cookie_len + 1);
        if (!tmp)
            return -1;
        size_t k = 0;
        for (size_t i = 0; i < st->nf; i++) {
            if (!field_is(st, &st->f[i], "cookie"))
                continue;
            if (k) {
                memcpy(tmp + k, "; ", 2);
                k += 2;
            }
            memcpy(tmp + k, st->arena + st->f[i].vo, st->f[i].vl);
            k += st->f[i].vl;
        }
        int64_t no = arena_put(&st->arena, &st->alen, &st->acap, "cookie", 6);
        int64_t vo = no < 0 ? -1 : arena_put(&st->arena, &st->alen, &st->acap, tmp, k);
        free(tmp);
        if (vo < 0)
            return -1;
        joined = (h2_field){(uint32_t)no, 6, (uint32_t)vo, (uint32_t)k};
    }
    st->hdrs = calloc(st->nf + 1, sizeof(pt_header));
    if (!st->hdrs)
        return -1;
    pt_head *hd = &st->head;
    size_t n = 0;
    bool cookie_done = false;
    for (size_t i = 0; i < st->nf; i++) {
        h2_field f = st->f[i];
        if (ncookie > 1 && field_is(st, &f, "cookie")) {
            if (cookie_done)
                continue;
            cookie_done = true;
            f = joined;
        }
        st->hdrs[n++] = (pt_header){st->arena + f.no, st->arena + f.vo, f.nl, f.vl};
    }
    if (st->has_authority && !has_host) /* HTTP_HOST for the gateways */
        st->hdrs[n++] = (pt_header){"host", st->arena + st->authority.vo, 4, st->authority.vl};
    hd->headers = st->hdrs;
    hd->nheaders = n;
    hd->http_major = 2;
    hd->http_minor = 0;
    hd->keep_alive = true;
    hd->content_length = -1;
    hd->method_str = (pt_str){st->arena + st->method.vo, st->method.vl};
    hd->method = method_of(hd->method_str.p, hd->method_str.len);
    if (hd->method == PT_M_CONNECT) {
        hd->authority_form = true;
    } else if (st->has_path) {
        const char *p = st->arena + st->path.vo;
        size_t pl = st->path.vl;
        hd->target = (pt_str){p, pl};
        const char *q = memchr(p, '?', pl);
        hd->path = (pt_str){p, q ? (size_t)(q - p) : pl};
        hd->has_query = q != NULL;
        hd->query = q ? (pt_str){q + 1, pl - (size_t)(q - p) - 1} : (pt_str){NULL, 0};
    }
    if (st->has_authority)
        hd->host = (pt_str){st->arena + st->authority.vo, st->authority.vl};
    for (size_t i = 0; i < n; i++) {
        const pt_header *x = &st->hdrs[i];
        if (!st->has_authority && x->name_len == 4 && memcmp(x->name, "host", 4) == 0)
            hd->host = (pt_str){x->value, x->value_len};
        if (x->name_len == 14 && memcmp(x->name, "content-length", 14) == 0) {
            /* nghttp2 checked it is digits and matches the DATA */
            int64_t v = 0;
            for (size_t k = 0; k < x->value_len && v < INT64_MAX / 10 - 10; k++)
                v = v * 10 + (x->value[k] - '0');
            hd->content_length = v;
        }
    }
    if (st->too_big)
        hd->error = "request head too large";
    else if (hd->method == PT_M_OTHER)
        hd->error = "unknown method";
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_HEADERS && fr->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
    if (!st)
        return 0;
    bool end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (fr->hd.type == NGHTTP2_HEADERS && fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (make_head(st) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->delivered = true;
        h->cbs.request(h->ud, st->id, &st->head, end);
        return 0;
    }
    /* the end of a body: its last DATA frame, or trailers */
    if (end && st->delivered)
        h->cbs.body_end(h->ud, st->id);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *p, size_t n,
                         void *ud)
{
    (void)flags;
    pt_h2 *h = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, sid);
    if (st && st->delivered && n)
        h->cbs.body(h->ud, sid, p, n);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    pt_h2 *h = ud;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, sid);
    if (!st)
        return 0;
    /* unknown to nghttp2 from now: the owner may call back in, and the
     * head it was given stays valid until it returns */
    nghttp2_session_set_stream_user_data(s, sid, NULL);
    if (st->delivered)
        h->cbs.closed(h->ud, sid, code);
    stream_free(h, st);
    return 0;
}

pt_h2 *pt_h2_new(const pt_h2_cbs *cbs, void *ud, const pt_h2_limits *lim)
{
    pt_h2 *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cbs = *cbs;
    h->ud = ud;
    h->lim = *lim;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        free(h);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt = NULL;
    int rc = nghttp2_option_new(&opt);
    if (rc == 0) {
        /* streams beyond the advertised limit are refused by nghttp2 itself
         * (RFC 9113 §5.1.2), before a client saw our SETTINGS too */
        nghttp2_option_set_max_settings(opt, 32);
        /* RFC 9218 §7.1: PRIORITY_UPDATE frames reach nghttp2's scheduler */
        nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_PRIORITY_UPDATE);
        rc = nghttp2_session_server_new2(&h->s, cb, h, opt);
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        free(h);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)lim->header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* RFC 9218 §2.1: extensible priorities instead of RFC 7540's tree.
         * nghttp2 then reads the priority field and PRIORITY_UPDATE and
         * picks DATA by urgency, one non-incremental response at a time,
         * incremental ones in turn; closed streams are not kept. A client
         * that signals nothing gets u=3 for all: FIFO among equals. */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, PT_ARRAY_LEN(iv)) != 0) {
        pt_h2_free(h);
        return NULL;
    }
    return h;
}

void pt_h2_free(pt_h2 *h)
{
    if (!h)
        return;
    /* the streams still open end like a reset: their owners let go */
    while (h->streams) {
        h2_stream *st = h->streams;
        int32_t sid = st->id;
        nghttp2_session_set_stream_user_data(h->s, sid, NULL);
        if (st->delivered)
            h->cbs.closed(h->ud, sid, NGHTTP2_CANCEL);
        stream_free(h, st);
    }
    nghttp2_session_del(h->s);
    free(h);
}

int pt_h2_recv(pt_h2 *h, const void *p, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(h->s, p, n);
    return r < 0 || (size_t)r != n ? -1 : 0;
}

ssize_t pt_h2_send(pt_h2 *h, pt_cq *out, size_t max)
{
    size_t total = 0;
    while (total < max) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(h->s, &d);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (pt_cq_append(out, d, (size_t)n) < 0)
            return -1;
        total += (size_t)n;
    }
    return (ssize_t)total;
}

bool pt_h2_want_read(const pt_h2 *h)
{
    return nghttp2_session_want_read(h->s) != 0;
}

bool pt_h2_want_write(const pt_h2 *h)
{
    return nghttp2_session_want_write(h->s) != 0;
}

void pt_h2_goaway(pt_h2 *h)
{
    int32_t last = nghttp2_session_get_last_proc_stream_id(h->s);
    (void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}

size_t pt_h2_streams(const pt_h2 *h)
{
    return h->nstreams;
}

/* ---- responses --------------------------------------------------------- */

int pt_h2_resp_begin(pt_h2 *h, int32_t sid, int status)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted || status < 100 || status > 999)
        return -1;
    st->status = status;
    st->nrf = 0;
    st->ralen = 0;
    return 0;
}

/* RFC 9113 §8.2.2: no connection-specific fields in HTTP/2 */
static bool connection_specific(const char *n, size_t l)
{
    static const struct {
        const char *s;
        size_t len;
    } t[] = {{"connection", 10},
             {"keep-alive", 10},
             {"proxy-connection", 16},
             {"transfer-encoding", 17},
             {"upgrade", 7}};
    /* every response field passes here: the length decides first */
    for (size_t i = 0; i < PT_ARRAY_LEN(t); i++)
        if (l == t[i].len && strncasecmp(n, t[i].s, l) == 0)
            return true;
    return false;
}

int pt_h2_resp_header(pt_h2 *h, int32_t sid, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted)
        return -1;
    if (nl == 0 || connection_specific(name, nl))
        return 0;
    int64_t no = arena_put(&st->rarena, &st->ralen, &st->racap, name, nl);
    int64_t vo = no < 0 ? -1 : arena_put(&st->rarena, &st->ralen, &st->racap, value, vl);
    if (vo < 0 || grow((void **)&st->rf, &st->rfcap, st->nrf + 1, sizeof(h2_field)) < 0)
        return -1;
    /* field names are lowercase on the wire (RFC 9113 §8.2.1) */
    for (size_t i = 0; i < nl; i++) {
        char c = st->rarena[no + (int64_t)i];
        if (c >= 'A' && c <= 'Z')
            st->rarena[no + (int64_t)i] = (char)(c + 32);
    }
    st->rf[st->nrf++] = (h2_field){(uint32_t)no, (uint32_t)nl, (uint32_t)vo, (uint32_t)vl};
    return 0;
}

int pt_h2_resp_header_block(pt_h2 *h, int32_t sid, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* one line [i, end), its CR LF (or LF) dropped */
        const char *nlp = memchr(p + i, '\n', n - i);
        size_t next = nlp ? (size_t)(nlp - p) + 1 : n;
        size_t end = nlp ? (size_t)(nlp - p) : n;
        if (end > i && p[end - 1] == '\r')
            end--;
        const char *colon = memchr(p + i, ':', end - i);
        if (colon) {
            size_t v = (size_t)(colon - p) + 1;
            while (v < end && (p[v] == ' ' || p[v] == '\t'))
                v++;
            if (pt_h2_resp_header(h, sid, p + i, (size_t)(colon - (p + i)), p + v, end - v) < 0)
                return -1;
        }
        i = next;
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)ud;
    h2_stream *st = src->ptr;
    if (st->out.bytes == 0) {
        if (st->body_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = true; /* resumed when the producer queues more */
        return NGHTTP2_ERR_DEFERRED;
    }
    ssize_t n = pt_cq_take(&st->out, buf, len);
    if (n <= 0) /* a file shrank under us: the length promised is a lie, cut */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (st->out.bytes == 0 && st->body_end)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
}

int pt_h2_resp_end_head(pt_h2 *h, int32_t sid, int64_t content_length, bool body)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted || st->status == 0)
        return -1;
    /* the digits without printf (every response); nghttp2 takes lengths */
    char status[24], cl[24];
    size_t sl = pt_u64_dec(status, (uint64_t)(st->status > 0 ? st->status : 0));
    size_t cll = content_length >= 0 ? pt_u64_dec(cl, (uint64_t)content_length) : 0;
    nghttp2_nv *nv = calloc(st->nrf + 2, sizeof(*nv));
    if (!nv)
        return -1;
    size_t k = 0;
    nv[k++] =
        (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, (size_t)sl, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < st->nrf; i++) {
        h2_field f = st->rf[i];
        /* ours is the one that counts */
        if (f.nl == 14 && memcmp(st->rarena + f.no, "content-length", 14) == 0)
            continue;
        nv[k++] = (nghttp2_nv){(uint8_t *)st->rarena + f.no, (uint8_t *)st->rarena + f.vo, f.nl,
                               f.vl, NGHTTP2_NV_FLAG_NONE};
    }
    if (content_length >= 0)
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, (size_t)cll,
                               NGHTTP2_NV_FLAG_NONE};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    int rc = nghttp2_submit_response(h->s, sid, nv, k, body ? &dp : NULL);
    free(nv);
    if (rc != 0)
        return -1;
    st->submitted = true;
    if (!body)
        st->body_end = true;
    return 0;
}

static void resume(pt_h2 *h, h2_stream *st)
{
    if (st->deferred && st->submitted) {
        st->deferred = false;
        (void)nghttp2_session_resume_data(h->s, st->id);
    }
}

int pt_h2_body(pt_h2 *h, int32_t sid, const void *p, size_t n)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->body_end)
        return -1;
    if (n && pt_cq_append(&st->out, p, n) < 0)
        return -1;
    resume(h, st);
    return 0;
}

int pt_h2_body_file(pt_h2 *h, int32_t sid, int fd, off_t off, uint64_t n)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->body_end)
        return -1;
    if (n && pt_cq_append_file(&st->out, fd, off, n) < 0)
        return -1;
    resume(h, st);
    return 0;
}

int pt_h2_body_end(pt_h2 *h, int32_t sid)
{
    h2_stream *st = stream_of(h, sid);
    if (!st)
        return -1;
    st->body_end = true;
    resume(h, st);
    return 0;
}

uint64_t pt_h2_queued(pt_h2 *h, int32_t sid)
{
    h2_stream *st = stream_of(h, sid);
    return st ? st->out.bytes : 0;
}

int pt_h2_reset(pt_h2 *h, int32_t sid, uint32_t code)
{
    return nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, sid, code) == 0 ? 0 : -1;
}
