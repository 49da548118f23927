/* h2.c: HTTP/2 (RFC 9113) over nghttp2, driven by the caller's event loop:
 * no socket, no second loop. Bytes read go to nghttp2_session_mem_recv,
 * frames come out of nghttp2_session_mem_send into the connection's queue
 * a bounded amount at a time. Each stream keeps its request head (decoded
 * HPACK fields as pt_head, so the router and handlers see what HTTP/1.1
 * gives them) and its response queue, from which a data provider cuts one
 * DATA frame at a time (a file range is read a frame's worth at a time). */
#include "first.h"
#include "h2.h"
#include "h2_msg.h"
#include "httpdate.h"
#include "util.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

/* a field's place in a stream's text arena (offsets: the arena grows) */
typedef struct h2_field {
    uint32_t no, nl, vo, vl;
} h2_field;

/* A usual head's text and fields live in the stream's own block: with 100
 * streams in flight, five blocks of their own each went past the free
 * lists' 128 of a size (two per stream of 256 and of 512 bytes) into
 * malloc. A bigger head moves to blocks of its own (grow). The whole
 * stream stays within a 2 KiB block. */
#define H2_IN_TEXT 384
#define H2_IN_FIELDS 12

typedef struct h2_stream {
    struct h2_stream *prev, *next;
    int32_t id;
    /* the request: field text, fields, then the head made of them */
    char *arena;
    size_t alen, acap;
    size_t decoded; /* the fields' bytes, as the arena had them all */
    h2_field *f;
    size_t nf, fcap;
    h2_field method, scheme, path, authority;
    uint32_t ncookie; /* cookie fields among f (joined by make_head) */
    bool has_method, has_path, has_authority;
    bool too_big;   /* over the limits: answered 431 by the owner */
    bool delivered; /* the owner has the request */
    bool malformed; /* RFC 9113 §8.1.1: reset with PROTOCOL_ERROR */
    pt_h2_msg msg;  /* the message rules, field by field (h2_msg.c) */
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
    /* DATA bytes framed, and their count when a stall check began */
    uint64_t sent, mark;
    bool marked;
    void *owner; /* pt_h2_set_owner's */
    /* the :status and content-length digits: the submitted HEADERS point
     * at them (NGHTTP2_NV_FLAG_NO_COPY_*) until it is sent */
    char status_txt[4], cl_txt[24];
    /* the Date (copied) and Server (the owner's) every response has */
    char date_txt[PT_HTTPDATE_LEN];
    bool has_std;
    const char *server;
    size_t server_len;
    /* the first arena, field arrays and head fields (not zeroed) */
    char abuf[H2_IN_TEXT], rabuf[H2_IN_TEXT];
    h2_field fbuf[H2_IN_FIELDS], rfbuf[H2_IN_FIELDS];
    pt_header hbuf[H2_IN_FIELDS + 1];
} h2_stream;
_Static_assert(sizeof(h2_stream) <= 2048, "a stream fits the 2 KiB free list");

struct pt_h2 {
    nghttp2_session *s;
    pt_h2_cbs cbs;
    void *ud;
    pt_h2_limits lim;
    h2_stream *streams;
    size_t nstreams;
    h2_stream *closing; /* the stream whose closed callback runs */
    /* pt_h2_send's queue, where DATA frames from memory go (send_data),
     * and its length when the call began (the bound) */
    pt_cq *out;
    uint64_t out_start, out_max;
    bool out_paused; /* send_data made mem_send return after its frame */
    /* the stream looked up last: a response's calls and a request's
     * fields come one stream at a time, and nghttp2's lookup is a hash
     * search each (about 20 a request before this) */
    h2_stream *last;
    /* graceful stop: the shutdown notice and its PING went out, the final
     * GOAWAY waits for the PING's ACK; then it went out */
    bool goaway_pending, goaway_sent;
    /* hostile clients: streams opened this read round and ever, resets
     * received, DATA bytes framed, and the last bound hit (for the log) */
    uint32_t round_streams, total_streams;
    uint64_t rst_recv;
    bool has_trouble, trouble_conn;
    char *trouble; /* H2_TROUBLE bytes, made at the first bound hit: most
                    * connections never need it, an idle one holds none */
    /* the blocks of a page or more nghttp2 made with the session and keeps
     * for its life (its frame buffer, its stream table): pages of their
     * own, given back to the kernel while the connection is idle */
    struct h2_kept {
        void *p;
        size_t n;
    } kept[4];
    unsigned nkept;
    /* nghttp2's HPACK encoder (hd_find), emptied while idle; NULL when
     * this nghttp2 is not the one it was checked against */
    nghttp2_hd_deflater *hd;
};

/* The PING that follows the shutdown notice (RFC 9113 §6.8). */
static const uint8_t goaway_ping[8] = {'g', 'o', 'a', 'w', 'a', 'y', 0, 1};

/* The bounds nghttp2 enforces itself (nghttp2_option_*), as its 1.52
 * Debian build and nginx 1.25 have them */
#define H2_MAX_SETTINGS 32       /* entries in one SETTINGS frame */
#define H2_MAX_OUTBOUND_ACK 1000 /* PING/SETTINGS ACKs, RST_STREAM queued unsent */
#define H2_RST_BURST 1000        /* RST_STREAM token bucket (CVE-2023-44487) */
#define H2_RST_RATE 33           /* tokens a second */
#define H2_MAX_CONTINUATIONS 8   /* CONTINUATION frames after one HEADERS (2024) */
#define H2_DEFLATE_TABLE 4096    /* our HPACK encoder's dynamic table, whatever asked */
#define H2_TROUBLE 160           /* a bound's log text */

/* ---- memory ------------------------------------------------------------ */

/* A stream's allocations (nghttp2's stream, frames and header copies, this
 * file's arenas) come and go with every request. glibc's per-thread cache
 * keeps 7 blocks of a size: a connection with 100 streams in flight goes
 * past it into the slower bins for most of them. Blocks up to 4 KiB are
 * kept instead on a free list per size (16-byte steps to 512, then 1, 2
 * and 4 KiB), each bounded (the worker is one thread); larger ones are
 * malloc's (the session's frame buffer: pages of its own, below). Under
 * ASan every block is malloc's own, so a use after free is still seen. */
#define MEM_NCLASS 36u /* 0 unused, 1..32: 16..512, 33..35: 1, 2, 4 KiB */
#define MEM_BIG MEM_NCLASS
#define MEM_KEEP 128u /* blocks kept per size: at most about 1.5 MiB */

/* A block's header: its size and class, 16 bytes (max_align_t's 32 on
 * x86-64 doubled what an idle session's thirty-odd small blocks carry; 16
 * keeps malloc's 16-byte alignment for what follows it) */
typedef struct mem_hdr {
    uint32_t size; /* usable bytes (a block of 4 GiB or more is refused) */
    uint32_t cls;
    uint64_t pad;
} mem_hdr;
_Static_assert(sizeof(mem_hdr) == 16, "a block header keeps 16-byte alignment");

#ifndef __SANITIZE_ADDRESS__
static void *mem_free_list[MEM_NCLASS];
static unsigned mem_nfree[MEM_NCLASS];
#endif
/* a session being made: what it allocates lives as long as the connection,
 * so it gets its exact size (an idle connection holds no rounding), and a
 * block of a page or more gets pages of its own (kept_alloc) */
static pt_h2 *mem_making;
/* the first block made with it: nghttp2's session struct (hd_find) */
static void *making_first;
static size_t making_first_n;

/* An idle connection's memory (issue 19): nghttp2 1.52 keeps a 16 KiB
 * frame buffer and a 4 KiB stream table for the session's life, though
 * between frames the buffer's bytes are dead (nghttp2 resets it before it
 * packs the next frame) and the table of a session without streams is all
 * zeros. Made on pages of their own, their pages go back to the kernel
 * when the connection turns idle (pt_h2_idle) and come back zero-filled
 * when touched. The same path runs under ASan: its allocator gives the
 * aligned block, so a use after free is still seen. */
#define H2_KEPT_MIN 4096u              /* a block this big made with the session is kept apart */
#define H2_FRAMEBUF (9u + 1u + 16384u) /* nghttp2's frame buffer: header, pad length, payload */

static size_t page_size(void)
{
    static size_t page;
    if (!page) {
        long n = sysconf(_SC_PAGESIZE);
        page = n > 0 ? (size_t)n : 4096;
    }
    return page;
}

static size_t page_round(size_t n)
{
    size_t pg = page_size();
    return (n + pg - 1) / pg * pg;
}

/* A block made with the session: on pages of its own, or NULL when it is
 * not one of those (the caller's allocator makes it). */
static void *kept_alloc(size_t n)
{
    pt_h2 *h = mem_making;
    if (n < H2_KEPT_MIN || h->nkept == PT_ARRAY_LEN(h->kept) || n > SIZE_MAX - page_size())
        return NULL;
    void *p;
    if (posix_memalign(&p, page_size(), page_round(n)) != 0)
        return NULL;
    h->kept[h->nkept].p = p;
    h->kept[h->nkept].n = n;
    h->nkept++;
    return p;
}

/* p's place among the kept blocks, or -1 */
static int kept_find(const pt_h2 *h, const void *p)
{
    for (unsigned i = 0; i < h->nkept; i++)
        if (h->kept[i].p == p)
            return (int)i;
    return -1;
}

static void kept_free(pt_h2 *h, int i)
{
    free(h->kept[i].p);
    h->kept[i] = h->kept[--h->nkept];
}

/* Every free and realloc asks first: a kept block starts a page (4 KiB at
 * least), almost no other does, so the answer costs a test and a branch. */
#define KEPT_MAYBE(p) ((p) && ((uintptr_t)(p)&4095u) == 0)

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

#ifndef __SANITIZE_ADDRESS__
/* a block of malloc's with its header */
static void *hdr_alloc(size_t size, unsigned c)
{
    if (size > UINT32_MAX - sizeof(mem_hdr))
        return NULL;
    mem_hdr *m = malloc(sizeof(mem_hdr) + size);
    if (!m)
        return NULL;
    m->size = (uint32_t)size;
    m->cls = c;
    return m + 1;
}
#endif

/* A block made with the session: pages of its own when a page or more,
 * else its exact size; the first one (the session struct) noted. */
__attribute__((noinline)) static void *making_alloc(size_t n)
{
    void *p = kept_alloc(n);
    if (!p)
#ifdef __SANITIZE_ADDRESS__
        p = malloc(n ? n : 1);
#else
        p = hdr_alloc(n, MEM_BIG);
#endif
    if (p && !making_first) {
        making_first = p;
        making_first_n = n;
    }
    return p;
}

#ifndef __SANITIZE_ADDRESS__
/* a block of class c off its free list, NULL when the list is empty */
static inline void *list_pop(unsigned c)
{
    void *p = mem_free_list[c];
    if (p) {
        mem_free_list[c] = *(void **)p;
        mem_nfree[c]--;
    }
    return p;
}
#endif

/* inline: nghttp2 allocates about five blocks a request through ng_malloc */
static inline __attribute__((always_inline)) void *mem_alloc(size_t n)
{
#ifdef __SANITIZE_ADDRESS__
    return mem_making ? making_alloc(n) : malloc(n ? n : 1);
#else
    unsigned c;
    size_t size;
    if (__builtin_expect(mem_making || n > 4096, 0)) {
        if (mem_making)
            return making_alloc(n);
        c = MEM_BIG;
        size = n;
    } else if (n <= 512) {
        c = n ? (unsigned)((n + 15) >> 4) : 1;
        size = (size_t)c << 4;
    } else {
        c = n <= 1024 ? 33 : n <= 2048 ? 34 : 35;
        size = (size_t)1024 << (c - 33);
    }
    void *p = c < MEM_BIG ? list_pop(c) : NULL;
    return p ? p : hdr_alloc(size, c);
#endif
}

static void mem_free(void *p)
{
#ifdef __SANITIZE_ADDRESS__
    free(p);
#else
    if (!p)
        return;
    mem_hdr *m = (mem_hdr *)p - 1;
    unsigned c = m->cls;
    if (c == MEM_BIG || mem_nfree[c] >= MEM_KEEP) {
        free(m);
        return;
    }
    *(void **)p = mem_free_list[c];
    mem_free_list[c] = p;
    mem_nfree[c]++;
#endif
}

static void *mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *p, size_t n)
{
    if (!p)
        return mem_alloc(n); /* nghttp2 makes its frame buffer so */
#ifdef __SANITIZE_ADDRESS__
    return realloc(p, n ? n : 1);
#else
    mem_hdr *m = (mem_hdr *)p - 1;
    if (n <= m->size)
        return p;
    void *q = mem_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, m->size);
    mem_free(p);
    return q;
#endif
}

/* mem_alloc out of line: the callbacks' way when the free list has no
 * block ready (a tail call, so their fast path needs no frame) */
__attribute__((noinline)) static void *mem_alloc_out(size_t n)
{
    return mem_alloc(n);
}

/* nghttp2's blocks a request makes (its stream, frames, a header's copy)
 * are small and their sizes recur: a block off its list in a dozen
 * instructions, anything else mem_alloc's */
static void *ng_malloc(size_t n, void *ud)
{
    (void)ud;
#ifndef __SANITIZE_ADDRESS__
    if (__builtin_expect(n - 1 < 512 && !mem_making, 1)) {
        void *p = list_pop((unsigned)((n + 15) >> 4));
        if (p)
            return p;
    }
#endif
    return mem_alloc_out(n);
}

/* a kept block freed: true, or false when p is not one */
__attribute__((noinline)) static bool kept_release(pt_h2 *h, void *p)
{
    int i = kept_find(h, p);
    if (i < 0)
        return false;
    kept_free(h, i);
    return true;
}

/* a block that may be a kept one: out of line, as it is rare */
__attribute__((noinline)) static void ng_free_kept(void *p, void *ud)
{
    if (!kept_release(ud, p))
        mem_free(p);
}

static void ng_free(void *p, void *ud)
{
    if (__builtin_expect(KEPT_MAYBE(p), 0)) {
        ng_free_kept(p, ud);
        return;
    }
    mem_free(p);
}

static void *ng_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return mem_calloc(n, size);
}

static void *ng_realloc(void *p, size_t n, void *ud)
{
    pt_h2 *h = ud;
    int i = KEPT_MAYBE(p) ? kept_find(h, p) : -1;
    if (i < 0)
        return mem_realloc(p, n);
    if (n <= h->kept[i].n)
        return p;
    void *q = mem_alloc(n); /* grown after the session was made: malloc's */
    if (!q)
        return NULL;
    memcpy(q, p, h->kept[i].n);
    kept_free(h, i);
    return q;
}

static const nghttp2_mem ng_mem = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};

/* ---- the HPACK encoder's table, emptied while idle ------------------- */

/* The entries our HPACK encoder indexed from the responses (date, server,
 * content-type, last-modified...: ten blocks, about 1 KiB a connection)
 * are of no use to a connection that stays idle. RFC 7541 §4.2 lets an
 * encoder shrink its table when it likes, said at the start of its next
 * header block: an idle connection's is emptied (size 0, then back to
 * what the client allows, both said in the next response's HEADERS) and
 * the next response indexes its fields again. nghttp2 1.52 does that
 * (nghttp2_hd_deflate_change_table_size, public) when the peer's SETTINGS
 * asks, but gives no handle on a session's encoder: hd_find finds it in
 * the session struct by its shape just after creation, as 1.52 lays it
 * out on a 64-bit machine; a session that does not show it exactly (another
 * release, a 32-bit build) keeps its table. */
#define HD_WORDS 139 /* the encoder: its table (8 words), 128 buckets, 3 more */

static uintptr_t hd_word(const char *b, size_t i)
{
    uintptr_t w;
    memcpy(&w, b + i * sizeof(w), sizeof(w));
    return w;
}

/* An encoder just made, at b: an empty table of 128 slots (ring buffer:
 * slots, mask, first, length), the allocator (inside the session), 0 of
 * H2_DEFLATE_TABLE bytes used, 128 empty buckets, the cap we set, the
 * smallest size to say (none yet: UINT32_MAX). */
static bool hd_shape(const char *b, const char *s, size_t n)
{
    uintptr_t mem = hd_word(b, 4);
    if (hd_word(b, 1) != 127 || hd_word(b, 0) == 0 || hd_word(b, 2) != 0 || hd_word(b, 3) != 0 ||
        mem < (uintptr_t)s || mem >= (uintptr_t)s + n || hd_word(b, 5) != 0 ||
        hd_word(b, 6) != H2_DEFLATE_TABLE || hd_word(b, 136) != H2_DEFLATE_TABLE ||
        hd_word(b, 137) != UINT32_MAX)
        return false;
    return all_zero(b + 8 * sizeof(uintptr_t), 128 * sizeof(uintptr_t));
}

/* the encoder of the session just made, or NULL */
static nghttp2_hd_deflater *hd_find(nghttp2_session *ng)
{
    static size_t off; /* its place in the struct: the same in every session */
    static int found;  /* 1 found at off, -1 not in this nghttp2, 0 not looked for */
    const char *s = (const char *)ng;
    size_t n = making_first == ng ? making_first_n : 0, need = HD_WORDS * sizeof(uintptr_t);
    if (found < 0 || n < need)
        return NULL;
    if (found > 0)
        return off <= n - need && hd_shape(s + off, s, n) ? (nghttp2_hd_deflater *)(s + off) : NULL;
    found = -1;
    for (size_t o = 0; o <= n - need; o += sizeof(uintptr_t)) {
        if (hd_shape(s + o, s, n)) {
            off = o;
            found = 1;
            return (nghttp2_hd_deflater *)(s + o);
        }
    }
    return NULL;
}

/* the table emptied, its size said again in the next header block */
static void hd_empty(pt_h2 *h)
{
    size_t used = nghttp2_session_get_hd_deflate_dynamic_table_size(h->s);
    /* nothing indexed, or the bytes used are not where they were found */
    if (!h->hd || used == 0 || hd_word((const char *)h->hd, 5) != used)
        return;
    (void)nghttp2_hd_deflate_change_table_size(h->hd, 0);
    (void)nghttp2_hd_deflate_change_table_size(
        h->hd, nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_HEADER_TABLE_SIZE));
}

void pt_h2_idle(pt_h2 *h)
{
    /* nothing queued or half sent (nghttp2's active frame is gone only
     * then; a terminating GOAWAY clears want_read): the frame buffer holds
     * no byte that will be read again */
    bool quiet = pt_h2_want_read(h) && !pt_h2_want_write(h);
    for (unsigned i = 0; i < h->nkept; i++) {
        struct h2_kept *k = &h->kept[i];
        /* any other block only if discarding changes nothing: all zeros */
        if (k->n == H2_FRAMEBUF ? quiet : all_zero(k->p, k->n))
            (void)madvise(k->p, page_round(k->n), MADV_DONTNEED);
    }
    if (quiet)
        hd_empty(h); /* no header block is being packed or waits to be */
}

/* Make room for need elements in *p, which is the stream's own inline
 * array inl (copied out to a block of its own) or a block. */
static int grow_out(void **p, size_t *cap, size_t need, size_t elem, const void *inl)
{
    /* a head's text is a few hundred bytes: text arenas start there, not
     * at 16 bytes doubled five times (a realloc each, every stream) */
    size_t n = *cap ? *cap * 2 : elem == 1 ? 512 : 16;
    while (n < need)
        n *= 2;
    void *q;
    if (*p == inl) {
        if ((q = mem_alloc(n * elem)) != NULL)
            memcpy(q, inl, *cap * elem);
    } else {
        q = mem_realloc(*p, n * elem);
    }
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* the check at every field, inline; the move out of line */
static inline int grow(void **p, size_t *cap, size_t need, size_t elem, const void *inl)
{
    return need <= *cap ? 0 : grow_out(p, cap, need, elem, inl);
}

static void own_free(void *p, const void *inl)
{
    if (p != inl)
        mem_free(p);
}

/* n bytes from s to d: a field's name or value is most often a few to
 * a few dozen bytes, where a call to memcpy costs more than the copy: up
 * to 16 bytes in two overlapping moves */
static inline void copy_short(void *d, const void *s, size_t n)
{
    char *dp = d;
    const char *sp = s;
    uint64_t a, b;
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        memcpy(&a, sp, 8);
        memcpy(&b, sp + n - 8, 8);
        memcpy(dp, &a, 8);
        memcpy(dp + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, sp, 4);
        memcpy(&y, sp + n - 4, 4);
        memcpy(dp, &x, 4);
        memcpy(dp + n - 4, &y, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dp[i] = sp[i];
    }
}

/* Append text to an arena: its offset, or -1. */
static int64_t arena_put(char **a, size_t *len, size_t *cap, const void *p, size_t n,
                         const char *inl)
{
    if (grow((void **)a, cap, *len + n + 1, 1, inl) < 0)
        return -1;
    size_t o = *len;
    memcpy(*a + o, p, n);
    (*a)[o + n] = '\0';
    *len += n + 1;
    return (int64_t)o;
}

static h2_stream *stream_of(pt_h2 *h, int32_t sid)
{
    h2_stream *st = h->last;
    if (st && st->id == sid)
        return st;
    st = nghttp2_session_get_stream_user_data(h->s, sid);
    /* the closing stream is gone for its owner's calls (on_stream_close),
     * though nghttp2 still holds it until the callback returns */
    if (st == h->closing)
        return NULL;
    if (st)
        h->last = st;
    return st;
}

static void stream_free(pt_h2 *h, h2_stream *st)
{
    if (h->last == st)
        h->last = NULL;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->nstreams--;
    pt_cq_free(&st->out); /* file descriptors stay the owner's */
    own_free(st->arena, st->abuf);
    own_free(st->f, st->fbuf);
    own_free(st->hdrs, st->hbuf);
    own_free(st->rarena, st->rabuf);
    own_free(st->rf, st->rfbuf);
    mem_free(st);
}

/* ---- hostile clients ---------------------------------------------------- */

/* A bound hit, for the owner's log: one waits at a time, the first that
 * ends the connection wins over a stream's (conn) */
static void trouble(pt_h2 *h, bool conn, const char *fmt, ...) PT_PRINTF(3, 4);
static void trouble(pt_h2 *h, bool conn, const char *fmt, ...)
{
    if (h->has_trouble && (h->trouble_conn || !conn))
        return;
    if (!h->trouble && !(h->trouble = malloc(H2_TROUBLE)))
        return; /* the bound still holds; only its log line is lost */
    h->trouble_conn = conn;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->trouble, H2_TROUBLE, fmt, ap);
    va_end(ap);
    h->has_trouble = true;
}

/* A new stream from the client: 0, or the callback error that ends the
 * connection. */
static int bound_new_stream(pt_h2 *h, int32_t sid)
{
    /* rapid reset (CVE-2023-44487): a stream reset as soon as it opens never
     * counts against SETTINGS_MAX_CONCURRENT_STREAMS, so, as nginx does, more
     * than twice that many opened in one read round ends the connection */
    if (++h->round_streams > 2 * h->lim.max_streams) {
        trouble(h, true,
                "rapid reset: over %u streams opened in one read, GOAWAY ENHANCE_YOUR_CALM",
                2 * h->lim.max_streams);
        (void)nghttp2_session_terminate_session(h->s, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    h->total_streams++;
    /* stream 2^31-1 is the client's last (RFC 9113 §5.1.1): say so, and
     * let it finish; a cap on streams over the connection's life ends it
     * the same way (nginx's keepalive_requests), a client reconnects */
    if (sid >= INT32_MAX - 1) {
        trouble(h, false, "stream ids exhausted (stream %d), GOAWAY", (int)sid);
        (void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_NO_ERROR, NULL, 0);
        h->goaway_sent = true; /* no notice first: no stream after this one counts */
    } else if (h->lim.max_requests && h->total_streams == h->lim.max_requests) {
        (void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_NO_ERROR, NULL, 0);
        h->goaway_sent = true;
    }
    return 0;
}

/* nghttp2's own bounds end a connection by an error from mem_recv */
static void recv_error(pt_h2 *h, int rc)
{
    switch (rc) {
    case NGHTTP2_ERR_FLOODED:
        trouble(h, true, "flood: over %u PING/SETTINGS ACKs or resets queued, not read",
                H2_MAX_OUTBOUND_ACK);
        break;
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS:
        trouble(h, true, "CONTINUATION flood: over %u CONTINUATION frames in one header block",
                H2_MAX_CONTINUATIONS);
        break;
    case NGHTTP2_ERR_TOO_MANY_SETTINGS:
        trouble(h, true, "SETTINGS flood: over %u entries in one frame", H2_MAX_SETTINGS);
        break;
    default:
        trouble(h, true, "connection error: %s", nghttp2_strerror(rc));
    }
}

/* The length of p's first n bytes that are printable ASCII */
static size_t printable(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] >= 0x20 && p[i] < 0x7f)
        i++;
    return i;
}

/* A GOAWAY with an error code that nghttp2 sent on its own */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    (void)s;
    pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_GOAWAY || fr->goaway.error_code == NGHTTP2_NO_ERROR)
        return 0;
    if (fr->goaway.error_code == NGHTTP2_INTERNAL_ERROR && h->rst_recv >= H2_RST_BURST)
        trouble(h, true, "rapid reset: RST_STREAM over %u then %u a second, GOAWAY INTERNAL_ERROR",
                H2_RST_BURST, H2_RST_RATE);
    else if (fr->goaway.opaque_data_len == 0)
        trouble(h, true, "connection error, GOAWAY %s",
                nghttp2_http2_strerror(fr->goaway.error_code));
    else /* nghttp2 says why in the debug data: its own text, made printable */
        trouble(h, true, "connection error, GOAWAY %s (%.*s)",
                nghttp2_http2_strerror(fr->goaway.error_code),
                (int)printable(fr->goaway.opaque_data, PT_MIN(fr->goaway.opaque_data_len, 80)),
                (const char *)fr->goaway.opaque_data);
    return 0;
}

void pt_h2_round(pt_h2 *h)
{
    h->round_streams = 0;
}

const char *pt_h2_trouble(pt_h2 *h)
{
    if (!h->has_trouble)
        return NULL;
    h->has_trouble = false;
    return h->trouble; /* valid until the next call into the session */
}

/* Its response waits for the client's window alone: bytes queued, none
 * may go (RFC 9113 §6.9) */
static bool stream_stalled(const pt_h2 *h, const h2_stream *st, bool conn_shut)
{
    return st->submitted && st->out.bytes > 0 &&
           (conn_shut || nghttp2_session_get_stream_remote_window_size(h->s, st->id) <= 0);
}

bool pt_h2_stalled(const pt_h2 *h)
{
    bool conn_shut = nghttp2_session_get_remote_window_size(h->s) <= 0;
    for (const h2_stream *st = h->streams; st; st = st->next)
        if (stream_stalled(h, st, conn_shut))
            return true;
    return false;
}

void pt_h2_stall_mark(pt_h2 *h)
{
    bool conn_shut = nghttp2_session_get_remote_window_size(h->s) <= 0;
    for (h2_stream *st = h->streams; st; st = st->next) {
        st->marked = stream_stalled(h, st, conn_shut);
        st->mark = st->sent;
    }
}

size_t pt_h2_stall_reset(pt_h2 *h, uint32_t code)
{
    bool conn_shut = nghttp2_session_get_remote_window_size(h->s) <= 0;
    size_t n = 0;
    /* the RST_STREAM closes a stream when it is sent: the list holds */
    for (h2_stream *st = h->streams; st; st = st->next)
        if (st->marked && st->sent == st->mark && stream_stalled(h, st, conn_shut) &&
            nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, code) == 0)
            n++;
    pt_h2_stall_mark(h);
    return n;
}

/* ---- requests ----------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    int rc = bound_new_stream(h, fr->hd.stream_id);
    if (rc != 0)
        return rc;
    h2_stream *st = mem_alloc(sizeof(*st));
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM: this one only */
    memset(st, 0, offsetof(h2_stream, abuf));
    pt_h2_msg_init(&st->msg);
    st->arena = st->abuf;
    st->acap = sizeof(st->abuf);
    st->rarena = st->rabuf;
    st->racap = sizeof(st->rabuf);
    st->f = st->fbuf;
    st->fcap = PT_ARRAY_LEN(st->fbuf);
    st->rf = st->rfbuf;
    st->rfcap = PT_ARRAY_LEN(st->rfbuf);
    st->id = fr->hd.stream_id;
    pt_cq_init(&st->out);
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->nstreams++;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    h->last = st; /* its fields come next */
    return 0;
}

/* The request's field for a pseudo-header field (h2_msg.c let only the
 * known ones through, each once, RFC 9113 §8.3.1) */
static h2_field *pseudo_slot(h2_stream *st, int kind)
{
    switch (kind) {
    case PT_H2_PATH:
        st->has_path = true;
        return &st->path;
    case PT_H2_METHOD:
        st->has_method = true;
        return &st->method;
    case PT_H2_SCHEME:
        return &st->scheme;
    default:
        st->has_authority = true;
        return &st->authority;
    }
}

/* A malformed request (RFC 9113 §8.1.1): a stream error PROTOCOL_ERROR.
 * The reset is queued first, so the INTERNAL_ERROR one nghttp2 would add
 * for a failed header callback finds the stream closing already, and the
 * rest of the block is decoded without callbacks (nghttp2's own path for
 * its messaging checks, which are off: pt_h2_new). */
static void malformed(pt_h2 *h, h2_stream *st)
{
    st->malformed = true;
    (void)nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
}

/* Each field is checked here (h2_msg.c: RFC 9113 §8.2 and §8.3, field
 * bytes, pseudo-fields first and known, no connection-specific fields)
 * and kept within the limits. */
static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    pt_h2 *h = ud;
    if (fr->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2_stream *st = stream_of(h, fr->hd.stream_id);
    if (!st)
        return 0;
    /* trailers are checked, not passed on (as for HTTP/1.1) */
    bool trailer = fr->headers.cat != NGHTTP2_HCAT_REQUEST;
    int kind = pt_h2_msg_field(&st->msg, name, nl, value, vl, trailer);
    if (kind < 0) {
        malformed(h, st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (trailer || st->too_big)
        return 0;
    /* the decoded size counts, as SETTINGS_MAX_HEADER_LIST_SIZE does
     * (RFC 9113 §6.5.2: 32 octets per field): an HPACK bomb stops here */
    if (st->decoded + nl + vl + 32 > h->lim.header_bytes || st->nf >= h->lim.max_headers) {
        st->too_big = true;
        trouble(h, false,
                "request head over %zu bytes or %zu fields decoded (HPACK bomb?), stream %d: 431",
                h->lim.header_bytes, h->lim.max_headers, (int)st->id);
        return 0;
    }
    st->decoded += nl + vl + 2;
    h2_field *slot = NULL;
    if (kind != PT_H2_REGULAR) {
        slot = pseudo_slot(st, kind);
    } else if (grow((void **)&st->f, &st->fcap, st->nf + 1, sizeof(h2_field), st->fbuf) < 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    /* name and value, each NUL-ended, in one step (a pseudo-header's
     * value alone: its name is known) */
    size_t nn = slot ? 0 : nl + 1, o = st->alen;
    if (grow((void **)&st->arena, &st->acap, o + nn + vl + 1, 1, st->abuf) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    char *d = st->arena + o;
    if (nn) {
        copy_short(d, name, nl);
        d[nl] = '\0';
    }
    copy_short(d + nn, value, vl);
    d[nn + vl] = '\0';
    st->alen = o + nn + vl + 1;
    h2_field fl = {(uint32_t)o, (uint32_t)nl, (uint32_t)(o + nn), (uint32_t)vl};
    if (slot) {
        *slot = fl;
    } else {
        st->f[st->nf++] = fl;
        if (nl == 6 && memcmp(name, "cookie", 6) == 0)
            st->ncookie++;
    }
    return 0;
}

static pt_method method_of(const char *m, size_t n)
{
    if (n == 3 && memcmp(m, "GET", 3) == 0) /* most of them */
        return PT_M_GET;
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
    /* the joined cookie goes into the arena first: pointers come after.
     * The header callback counted the crumbs and h2_msg.c saw any host
     * field: no walk over the fields by name for a request without */
    size_t ncookie = st->ncookie, cookie_len = 0;
    bool has_host = pt_h2_msg_has_host(&st->msg);
    h2_field joined = {0, 6, 0, 0};
    if (ncookie > 1) {
        for (size_t i = 0; i < st->nf; i++)
            if (field_is(st, &st->f[i], "cookie"))
                cookie_len += st->f[i].vl + 2;
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
        int64_t no = arena_put(&st->arena, &st->alen, &st->acap, "cookie", 6, st->abuf);
        int64_t vo = no < 0 ? -1 : arena_put(&st->arena, &st->alen, &st->acap, tmp, k, st->abuf);
        free(tmp);
        if (vo < 0)
            return -1;
        joined = (h2_field){(uint32_t)no, 6, (uint32_t)vo, (uint32_t)k};
    }
    st->hdrs = st->nf + 1 <= PT_ARRAY_LEN(st->hbuf) ? st->hbuf
                                                    : mem_alloc((st->nf + 1) * sizeof(pt_header));
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
    /* h2_msg.c parsed it (digits, once) and checks it against the DATA */
    hd->content_length = pt_h2_msg_content_length(&st->msg);
    if (!st->has_authority && pt_h2_msg_has_host(&st->msg))
        for (size_t i = 0; i < n; i++) {
            const pt_header *x = &st->hdrs[i];
            if (x->name_len == 4 && memcmp(x->name, "host", 4) == 0)
                hd->host = (pt_str){x->value, x->value_len};
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
    if (fr->hd.type == NGHTTP2_PING && (fr->hd.flags & NGHTTP2_FLAG_ACK) && h->goaway_pending &&
        memcmp(fr->ping.opaque_data, goaway_ping, sizeof(goaway_ping)) == 0) {
        /* the client has seen the notice: every stream it sent before
         * came ahead of this ACK (one ordered byte stream); one it had
         * queued behind the ACK it refuses itself now (nghttp2 clients
         * send ACKs first), so the last processed now is the last */
        h->goaway_pending = false;
        h->goaway_sent = true;
        int32_t last = nghttp2_session_get_last_proc_stream_id(s);
        return nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0) == 0
                   ? 0
                   : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (fr->hd.type == NGHTTP2_RST_STREAM)
        h->rst_recv++;
    if (fr->hd.type != NGHTTP2_HEADERS && fr->hd.type != NGHTTP2_DATA)
        return 0;
    h2_stream *st = stream_of(h, fr->hd.stream_id);
    if (!st)
        return 0;
    bool end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (st->malformed)
        return 0;
    if (fr->hd.type == NGHTTP2_HEADERS && fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
        /* RFC 9113 §8.3.1: the pseudo-fields the method needs */
        if (pt_h2_msg_head_end(&st->msg, end) < 0) {
            malformed(h, st);
            return 0;
        }
        /* RFC 9218 §4: the priority field (nghttp2 reads it only with
         * its messaging checks on); a PRIORITY_UPDATE later overrides */
        if (pt_h2_msg_has_priority(&st->msg)) {
            nghttp2_extpri pri = {st->msg.urgency, st->msg.incremental};
            (void)nghttp2_session_change_extpri_stream_priority(s, st->id, &pri, 0);
        }
        if (make_head(st) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        st->delivered = true;
        h->cbs.request(h->ud, st->id, &st->head, end);
        return 0;
    }
    /* the end of a body: its last DATA frame, or trailers; RFC 9113
     * §8.1.1: as long as content-length said */
    bool trailers = fr->hd.type == NGHTTP2_HEADERS;
    if ((end || trailers) && pt_h2_msg_end(&st->msg, trailers, end) < 0) {
        malformed(h, st);
        return 0;
    }
    if (end && st->delivered)
        h->cbs.body_end(h->ud, st->id);
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *p, size_t n,
                         void *ud)
{
    (void)flags;
    pt_h2 *h = ud;
    h2_stream *st = stream_of(h, sid);
    if (st && !st->malformed && pt_h2_msg_data(&st->msg, n) < 0)
        malformed(h, st); /* RFC 9113 §8.1.1: past its content-length */
    if (st && st->malformed) {
        /* the stream is going: the connection's window alone comes back */
        (void)nghttp2_session_consume_connection(s, n);
        return 0;
    }
    bool held = st && st->delivered && n && h->cbs.body(h->ud, sid, p, n);
    /* the window is the owner's to give back when it holds the bytes
     * (no automatic WINDOW_UPDATE, pt_h2_new) */
    if (!held && n)
        (void)nghttp2_session_consume(s, sid, n);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    pt_h2 *h = ud;
    h2_stream *st = stream_of(h, sid);
    if (!st)
        return 0;
    /* unknown from now to the owner, which may call back in (stream_of
     * skips h->closing: nghttp2 drops the stream and its pointer when this
     * returns, no map update needed); the head it was given stays valid
     * until it returns */
    (void)s;
    h->last = NULL;
    if (st->delivered) {
        h->closing = st;
        /* its reset may come after nghttp2 closed it (both sides done) */
        h->cbs.closed(h->ud, sid, st->malformed ? NGHTTP2_PROTOCOL_ERROR : code);
        h->closing = NULL;
    }
    stream_free(h, st);
    return 0;
}

static int send_data(nghttp2_session *s, nghttp2_frame *fr, const uint8_t *hd, size_t len,
                     nghttp2_data_source *src, void *ud);

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
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_option *opt = NULL;
    int rc = nghttp2_option_new(&opt);
    if (rc == 0) {
        /* streams beyond the advertised limit are refused by nghttp2 itself
         * (RFC 9113 §5.1.2), before a client saw our SETTINGS too */
        nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
        /* the flood and reset bounds, said here so they do not change with
         * a library update (RFC 9113 §10.5) */
        nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
        nghttp2_option_set_stream_reset_rate_limit(opt, H2_RST_BURST, H2_RST_RATE);
        nghttp2_option_set_max_continuations(opt, H2_MAX_CONTINUATIONS);
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, H2_DEFLATE_TABLE);
        /* closed streams kept for RFC 7540's priority tree: memory a rapid
         * reset would fill; RFC 9218 priorities need none of it */
        nghttp2_option_set_no_closed_streams(opt, 1);
        /* request bodies give their window back when stored or sent on
         * (pt_h2_consume): a body streamed to an upstream is held by the
         * client, not by our memory (RFC 9113 §5.2) */
        nghttp2_option_set_no_auto_window_update(opt, 1);
        /* RFC 9113 §8's message rules are portico's own (h2_msg.c), checked
         * in the header callback that visits every field anyway: nghttp2's
         * repeat cost about 1,100 instructions a request */
        nghttp2_option_set_no_http_messaging(opt, 1);
        /* RFC 9218 §7.1: PRIORITY_UPDATE frames reach nghttp2's scheduler */
        nghttp2_option_set_builtin_recv_extension_type(opt, NGHTTP2_PRIORITY_UPDATE);
        nghttp2_mem mem = ng_mem;
        mem.mem_user_data = h; /* the blocks it keeps, known per session */
        mem_making = h;
        making_first = NULL;
        rc = nghttp2_session_server_new3(&h->s, cb, h, opt, &mem);
        mem_making = NULL;
        if (rc == 0)
            h->hd = hd_find(h->s);
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
        h->last = NULL;
        if (st->delivered) {
            h->closing = st;
            h->cbs.closed(h->ud, sid, NGHTTP2_CANCEL);
            h->closing = NULL;
        }
        stream_free(h, st);
    }
    nghttp2_session_del(h->s);
    free(h->trouble);
    free(h);
}

int pt_h2_recv(pt_h2 *h, const void *p, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(h->s, p, n);
    if (r < 0)
        recv_error(h, (int)r);
    return r < 0 || (size_t)r != n ? -1 : 0;
}

ssize_t pt_h2_send(pt_h2 *h, pt_cq *out, size_t max)
{
    /* DATA frames from memory are appended by send_data meanwhile */
    h->out = out;
    h->out_start = out->bytes;
    h->out_max = max;
    ssize_t rc = 0;
    while (out->bytes - h->out_start < max) {
        const uint8_t *d;
        ssize_t n = nghttp2_session_mem_send(h->s, &d);
        if (n < 0 || (n > 0 && pt_cq_append(out, d, (size_t)n) < 0)) {
            rc = -1;
            break;
        }
        if (n == 0 && !h->out_paused)
            break;
        h->out_paused = false;
    }
    h->out_paused = false;
    h->out = NULL;
    return rc < 0 ? -1 : (ssize_t)(out->bytes - h->out_start);
}

bool pt_h2_want_read(const pt_h2 *h)
{
    return nghttp2_session_want_read(h->s) != 0;
}

bool pt_h2_want_write(const pt_h2 *h)
{
    return nghttp2_session_want_write(h->s) != 0;
}

/* RFC 9113 §6.8: a GOAWAY naming the last stream at once loses the
 * requests a busy client sent meanwhile (it gets them refused, and a client
 * such as h2load counts them failed). First a GOAWAY with 2^31-1 that stops
 * new streams, and a PING; the real last stream id goes out when the PING
 * comes back (on_frame_recv). A client that never answers stays until the
 * stop's idle grace or the worker's shutdown timeout. */
void pt_h2_goaway(pt_h2 *h)
{
    if (h->goaway_pending || h->goaway_sent)
        return;
    if (nghttp2_submit_shutdown_notice(h->s) != 0 ||
        nghttp2_submit_ping(h->s, NGHTTP2_FLAG_NONE, goaway_ping) != 0) {
        int32_t last = nghttp2_session_get_last_proc_stream_id(h->s);
        (void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
        h->goaway_sent = true;
        return;
    }
    h->goaway_pending = true;
}

size_t pt_h2_streams(const pt_h2 *h)
{
    return h->nstreams;
}

void pt_h2_set_owner(pt_h2 *h, int32_t sid, void *owner)
{
    /* the closing stream's owner lets go of it in its closed callback */
    if (h->closing && h->closing->id == sid) {
        h->closing->owner = owner;
        return;
    }
    h2_stream *st = stream_of(h, sid);
    if (st)
        st->owner = owner;
}

void *pt_h2_owner(pt_h2 *h, int32_t sid)
{
    /* the closing stream first: nghttp2 no longer knows it (a lookup
     * for nothing at every stream's end) */
    if (h->closing && h->closing->id == sid)
        return h->closing->owner;
    h2_stream *st = stream_of(h, sid);
    return st ? st->owner : NULL;
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
    st->has_std = false;
    return 0;
}

int pt_h2_resp_std(pt_h2 *h, int32_t sid, const char *date, const char *server, size_t sl)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted)
        return -1;
    memcpy(st->date_txt, date, PT_HTTPDATE_LEN);
    st->server = server;
    st->server_len = sl;
    st->has_std = true;
    return 0;
}

/* RFC 9113 §8.2.2: no connection-specific fields in HTTP/2 */
static bool connection_specific(const char *n, size_t l)
{
    /* every response field passes here: the length decides first */
    switch (l) {
    case 7:
        return pt_name_is(n, "upgrade", 7);
    case 10:
        return pt_name_is(n, "connection", 10) || pt_name_is(n, "keep-alive", 10);
    case 16:
        return pt_name_is(n, "proxy-connection", 16);
    case 17:
        return pt_name_is(n, "transfer-encoding", 17);
    default:
        return false;
    }
}

/* Field names are lowercase on the wire (RFC 9113 §8.2.1), and every
 * response field passes here: the copy is made lowercase a word at a time
 * (bytes 'A'..'Z' get 0x20, all others, non-ASCII too, stay), the last
 * word overlapping the one before rather than a loop over the tail. */
static uint64_t lower8(uint64_t w)
{
    const uint64_t hi = 0x8080808080808080u, lo7 = 0x7f7f7f7f7f7f7f7fu;
    uint64_t b = w & lo7;
    /* a byte's high bit: >= 'A' (0x41), > 'Z' (0x5a); b <= 0x7f, so no
     * carry crosses into the next byte */
    uint64_t ge_a = b + 0x3f3f3f3f3f3f3f3fu, gt_z = b + 0x2525252525252525u;
    return w | ((ge_a & ~gt_z & ~w) & hi) >> 2;
}

static void lower_copy(char *d, const char *s, size_t n)
{
    uint64_t w;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&w, s + i, 8);
            w = lower8(w);
            memcpy(d + i, &w, 8);
        }
        memcpy(&w, s + n - 8, 8);
        w = lower8(w);
        memcpy(d + n - 8, &w, 8);
    } else if (n >= 4) {
        uint32_t x;
        memcpy(&x, s, 4);
        x = (uint32_t)lower8(x);
        memcpy(d, &x, 4);
        memcpy(&x, s + n - 4, 4);
        x = (uint32_t)lower8(x);
        memcpy(d + n - 4, &x, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = (char)pt_lower((unsigned char)s[i]);
    }
}

int pt_h2_resp_header(pt_h2 *h, int32_t sid, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted)
        return -1;
    /* the framer's length is the one that counts (end_head adds it) */
    if (nl == 0 || connection_specific(name, nl) ||
        (nl == 14 && pt_name_is(name, "content-length", 14)))
        return 0;
    /* name and value, each NUL-ended, in one step of the arena */
    size_t o = st->ralen;
    if ((o + nl + vl + 2 > st->racap &&
         grow((void **)&st->rarena, &st->racap, o + nl + vl + 2, 1, st->rabuf) < 0) ||
        (st->nrf == st->rfcap &&
         grow((void **)&st->rf, &st->rfcap, st->nrf + 1, sizeof(h2_field), st->rfbuf) < 0))
        return -1;
    char *d = st->rarena + o;
    lower_copy(d, name, nl);
    d[nl] = '\0';
    memcpy(d + nl + 1, value, vl);
    d[nl + 1 + vl] = '\0';
    st->ralen = o + nl + vl + 2;
    st->rf[st->nrf++] = (h2_field){(uint32_t)o, (uint32_t)nl, (uint32_t)(o + nl + 1), (uint32_t)vl};
    return 0;
}

/* A kept block (a cached file's "Content-Type: ...\r\nLast-Modified: ..."
 * lines, static.c) comes again with every response of its file: cutting
 * it into lines and lowercasing its names cost about 1,000 instructions a
 * response. What a block made of the stream's fields (its arena text, its
 * fields) is remembered with the block's own bytes, and a block equal to
 * one remembered is copied in one step. The bytes are the key (the
 * address only picks the slot): a block changed in place, or a new one
 * where an old one was, never finds another's fields. */
#define BLK_SLOTS 8u
#define BLK_MAX 512u  /* a block's bytes: larger ones are cut every time */
#define BLK_FIELDS 8u /* its fields */

typedef struct blk_memo {
    uint32_t n, tlen, nf; /* n 0: an empty slot */
    char raw[BLK_MAX];    /* the block as given */
    char text[BLK_MAX];   /* what it put in the arena (never more than n) */
    h2_field f[BLK_FIELDS];
} blk_memo;
static blk_memo blk_memos[BLK_SLOTS]; /* the worker's (one thread) */

static blk_memo *blk_slot(const char *p)
{
    return &blk_memos[((uintptr_t)p >> 4) % BLK_SLOTS];
}

/* The fields a remembered block made, appended to st: 0, or -1 when the
 * block is not the slot's (or out of memory: the caller cuts it then). */
static int blk_replay(h2_stream *st, const blk_memo *m, const char *p, size_t n)
{
    if (m->n != n || memcmp(m->raw, p, n) != 0)
        return -1;
    size_t o = st->ralen;
    if (grow((void **)&st->rarena, &st->racap, o + m->tlen, 1, st->rabuf) < 0 ||
        grow((void **)&st->rf, &st->rfcap, st->nrf + m->nf, sizeof(h2_field), st->rfbuf) < 0)
        return -1;
    memcpy(st->rarena + o, m->text, m->tlen);
    h2_field *f = st->rf + st->nrf;
    memcpy(f, m->f, m->nf * sizeof(*f));
    /* a block is usually the first text of the response's arena */
    for (uint32_t i = 0; o && i < m->nf; i++) {
        f[i].no += (uint32_t)o;
        f[i].vo += (uint32_t)o;
    }
    st->nrf += m->nf;
    st->ralen = o + m->tlen;
    return 0;
}

/* Remember what block p made: the stream's fields from nrf0 and its
 * arena text from ralen0 on */
static void blk_keep(blk_memo *m, const h2_stream *st, const char *p, size_t n, size_t nrf0,
                     size_t ralen0)
{
    size_t nf = st->nrf - nrf0, tlen = st->ralen - ralen0;
    if (n == 0 || n > BLK_MAX || nf > BLK_FIELDS || tlen > BLK_MAX)
        return;
    memcpy(m->raw, p, n);
    memcpy(m->text, st->rarena + ralen0, tlen);
    for (size_t i = 0; i < nf; i++) {
        h2_field f = st->rf[nrf0 + i];
        m->f[i] = (h2_field){f.no - (uint32_t)ralen0, f.nl, f.vo - (uint32_t)ralen0, f.vl};
    }
    m->n = (uint32_t)n;
    m->tlen = (uint32_t)tlen;
    m->nf = (uint32_t)nf;
}

int pt_h2_resp_header_block(pt_h2 *h, int32_t sid, const char *p, size_t n)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted)
        return -1;
    blk_memo *m = blk_slot(p);
    if (blk_replay(st, m, p, n) == 0)
        return 0;
    size_t nrf0 = st->nrf, ralen0 = st->ralen;
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
    blk_keep(m, st, p, n, nrf0, ralen0);
    return 0;
}

/* The memory bytes at the front of a queue, up to max (a file range
 * ends them) */
static size_t mem_front(const pt_cq *q, size_t max)
{
    size_t n = 0;
    for (const pt_chunk *c = q->head; c && c->kind == PT_CHUNK_MEM && n < max; c = c->next)
        n += c->len - c->off;
    return PT_MIN(n, max);
}

static ssize_t read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    h2_stream *st = src->ptr;
    if (st->out.bytes == 0) {
        if (st->body_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            ((pt_h2 *)ud)->last = st; /* as below */
            return 0;
        }
        st->deferred = true; /* resumed when the producer queues more */
        return NGHTTP2_ERR_DEFERRED;
    }
    /* bytes in memory are not copied into nghttp2's frame buffer: the
     * frame's header and they go to the connection's queue when the frame
     * is sent (send_data), chunks relinked where they can be */
    ssize_t n = (ssize_t)mem_front(&st->out, len);
    if (n > 0) {
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    } else if ((n = pt_cq_take(&st->out, buf, len)) <= 0) {
        /* a file shrank under us: the length promised is a lie, cut */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->sent += (uint64_t)n;
    /* the bytes left after this frame (a NO_COPY frame's are still queued;
     * none can be added once body_end is set) */
    uint64_t left = st->out.bytes - (*flags & NGHTTP2_DATA_FLAG_NO_COPY ? (uint64_t)n : 0);
    if (left == 0 && st->body_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        /* the stream closes when this frame is sent: on_stream_close
         * finds it here, not by a search of nghttp2's stream map */
        ((pt_h2 *)ud)->last = st;
    }
    return n;
}

/* A DATA frame read_body left in the stream's queue (NO_COPY): its 9
 * bytes of header, then its body, onto the connection's queue. Past
 * pt_h2_send's bound it waits (nghttp2 calls again on the next send). */
static int send_data(nghttp2_session *s, nghttp2_frame *fr, const uint8_t *hd, size_t len,
                     nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)fr; /* no padding: no select_padding callback */
    pt_h2 *h = ud;
    h2_stream *st = src->ptr;
    if (!h->out)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (h->out->bytes - h->out_start >= h->out_max)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (pt_cq_append(h->out, hd, 9) < 0 || pt_cq_move(h->out, &st->out, len) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* out of memory: the connection ends */
    if (h->out->bytes - h->out_start < h->out_max)
        return 0;
    /* mem_send would go on to the next frame past the bound: it returns
     * now, the frame counted as sent, and pt_h2_send ends */
    h->out_paused = true;
    return NGHTTP2_ERR_PAUSE;
}

int pt_h2_resp_end_head(pt_h2 *h, int32_t sid, int64_t content_length, bool body)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->submitted || st->status == 0)
        return -1;
    /* the digits without printf (every response); nghttp2 takes lengths.
     * Every name and value stays where it is until the HEADERS frame is
     * sent (the stream's arena takes no more fields once submitted, and a
     * stream closed first never has its HEADERS packed), so nghttp2 does
     * not copy them: NO_COPY */
    const uint8_t nc = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    int sv = st->status > 0 && st->status < 1000 ? st->status : 0;
    st->status_txt[0] = (char)('0' + sv / 100);
    st->status_txt[1] = (char)('0' + sv / 10 % 10);
    st->status_txt[2] = (char)('0' + sv % 10);
    size_t cll = content_length >= 0 ? pt_u64_dec(st->cl_txt, (uint64_t)content_length) : 0;
    nghttp2_nv local[32], *nv = local;
    if (st->nrf + 4 > PT_ARRAY_LEN(local) && !(nv = calloc(st->nrf + 4, sizeof(*nv))))
        return -1;
    size_t k = 0;
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st->status_txt, 7, 3, nc};
    if (st->has_std) {
        nv[k++] = (nghttp2_nv){(uint8_t *)"date", (uint8_t *)st->date_txt, 4, PT_HTTPDATE_LEN, nc};
        nv[k++] = (nghttp2_nv){(uint8_t *)"server", (uint8_t *)st->server, 6, st->server_len, nc};
    }
    for (size_t i = 0; i < st->nrf; i++) {
        h2_field f = st->rf[i]; /* no content-length among them (resp_header) */
        nv[k++] = (nghttp2_nv){(uint8_t *)st->rarena + f.no, (uint8_t *)st->rarena + f.vo, f.nl,
                               f.vl, nc};
    }
    if (content_length >= 0)
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)st->cl_txt, 14, cll, nc};
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    int rc = nghttp2_submit_response(h->s, sid, nv, k, body ? &dp : NULL);
    if (nv != local)
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

int pt_h2_body_ref(pt_h2 *h, int32_t sid, const void *p, size_t n)
{
    h2_stream *st = stream_of(h, sid);
    if (!st || st->body_end)
        return -1;
    if (n && pt_cq_append_ref(&st->out, p, n) < 0)
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

int pt_h2_interim(pt_h2 *h, int32_t sid, const char *head, size_t n)
{
    h2_stream *st = stream_of(h, sid);
    /* "HTTP/1.1 1xx": the codec checked the status line (RFC 9110 §15.2) */
    if (!st || st->submitted || n < 12 || head[9] != '1')
        return -1;
    enum { MAXF = 32 };
    nghttp2_nv nv[MAXF + 1];
    char *names = malloc(n); /* lowercased copies (RFC 9113 §8.2.1) */
    if (!names)
        return -1;
    size_t k = 0;
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)head + 9, 7, 3, NGHTTP2_NV_FLAG_NONE};
    const char *nl = memchr(head, '\n', n);
    size_t i = nl ? (size_t)(nl - head) + 1 : n;
    while (i < n && k <= MAXF) {
        const char *e = memchr(head + i, '\n', n - i);
        size_t next = e ? (size_t)(e - head) + 1 : n;
        size_t end = e ? (size_t)(e - head) : n;
        if (end > i && head[end - 1] == '\r')
            end--;
        const char *colon = memchr(head + i, ':', end - i);
        size_t fl = colon ? (size_t)(colon - (head + i)) : 0;
        if (fl > 0 && !connection_specific(head + i, fl)) {
            size_t v = (size_t)(colon - head) + 1;
            while (v < end && (head[v] == ' ' || head[v] == '\t'))
                v++;
            for (size_t j = 0; j < fl; j++)
                names[i + j] = (char)pt_lower((unsigned char)head[i + j]);
            nv[k++] = (nghttp2_nv){(uint8_t *)names + i, (uint8_t *)head + v, fl, end - v,
                                   NGHTTP2_NV_FLAG_NONE};
        }
        i = next;
    }
    /* nghttp2 copies the fields; no END_STREAM: the response follows */
    int rc = nghttp2_submit_headers(h->s, NGHTTP2_FLAG_NONE, sid, NULL, nv, k, NULL);
    free(names);
    return rc < 0 ? -1 : 0;
}

void pt_h2_consume(pt_h2 *h, int32_t sid, size_t n)
{
    if (n == 0)
        return;
    if (stream_of(h, sid))
        (void)nghttp2_session_consume(h->s, sid, n);
    else
        (void)nghttp2_session_consume_connection(h->s, n);
}

int pt_h2_reset(pt_h2 *h, int32_t sid, uint32_t code)
{
    return nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, sid, code) == 0 ? 0 : -1;
}
