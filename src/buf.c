/* buf.c: the output chunk queue. Memory chunks go out with writev (head and
 * small bodies in one call); file ranges with sendfile. */
#include "first.h"
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define PT_CHUNK_MIN 4096
#define PT_CHUNK_POOL 64

/* Free PT_CHUNK_MIN memory chunks of this process (workers are single
 * threaded): a response head costs no malloc, and a queue can give its
 * chunks back while its connection is idle. */
static pt_chunk *g_pool[PT_CHUNK_POOL];
static unsigned g_npool;

static pt_chunk *pool_get(void)
{
    if (g_npool > 0)
        return g_pool[--g_npool];
    return malloc(sizeof(pt_chunk) + PT_CHUNK_MIN);
}

static void pool_put(pt_chunk *c)
{
#ifdef __SANITIZE_ADDRESS__
    /* ASan catches a use after free only when memory really is freed */
    free(c);
    return;
#endif
    if (g_npool < PT_CHUNK_POOL)
        g_pool[g_npool++] = c;
    else
        free(c);
}

void pt_cq_init(pt_cq *q)
{
    q->head = q->tail = NULL;
    q->bytes = 0;
    q->spare = NULL;
}

static void chunk_release(pt_cq *q, pt_chunk *c)
{
    if (c->kind == PT_CHUNK_MEM && c->cap == PT_CHUNK_MIN) {
        if (q->spare == NULL)
            q->spare = c;
        else
            pool_put(c);
        return;
    }
    free(c);
}

void pt_cq_clear(pt_cq *q)
{
    pt_chunk *c = q->head;
    while (c) {
        pt_chunk *n = c->next;
        chunk_release(q, c);
        c = n;
    }
    q->head = q->tail = NULL;
    q->bytes = 0;
}

void pt_cq_free(pt_cq *q)
{
    pt_cq_clear(q);
    if (q->spare)
        pool_put(q->spare);
    q->spare = NULL;
}

static void link_tail(pt_cq *q, pt_chunk *c)
{
    c->next = NULL;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
}

static pt_chunk *new_mem(pt_cq *q, size_t want)
{
    pt_chunk *c;
    size_t cap = want > PT_CHUNK_MIN ? want : PT_CHUNK_MIN;
    if (cap == PT_CHUNK_MIN && q->spare) {
        c = q->spare;
        q->spare = NULL;
    } else if (cap == PT_CHUNK_MIN) {
        c = pool_get();
        if (!c)
            return NULL;
    } else {
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
    }
    c->kind = PT_CHUNK_MEM;
    c->off = c->len = 0;
    c->cap = cap;
    c->fd = -1;
    c->ref = c->data;
    link_tail(q, c);
    return c;
}

char *pt_cq_reserve(pt_cq *q, size_t want)
{
    pt_chunk *c = q->tail;
    if (!c || c->kind != PT_CHUNK_MEM || c->cap - c->len < want) {
        c = new_mem(q, want);
        if (!c)
            return NULL;
    }
    return c->data + c->len;
}

void pt_cq_commit(pt_cq *q, size_t n)
{
    q->tail->len += n;
    q->bytes += n;
}

int pt_cq_append(pt_cq *q, const void *p, size_t len)
{
    while (len > 0) {
        pt_chunk *c = q->tail;
        if (!c || c->kind != PT_CHUNK_MEM || c->cap == c->len) {
            c = new_mem(q, len);
            if (!c)
                return -1;
        }
        size_t n = PT_MIN(len, c->cap - c->len);
        memcpy(c->data + c->len, p, n);
        c->len += n;
        q->bytes += n;
        p = (const char *)p + n;
        len -= n;
    }
    return 0;
}

int pt_cq_printf(pt_cq *q, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(tmp))
        return pt_cq_append(q, tmp, (size_t)n);
    char *p = pt_cq_reserve(q, (size_t)n + 1);
    if (!p)
        return -1;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pt_cq_commit(q, (size_t)n);
    return 0;
}

int pt_cq_append_ref(pt_cq *q, const void *p, size_t len)
{
    if (len == 0)
        return 0;
    pt_chunk *c = malloc(sizeof(*c));
    if (!c)
        return -1;
    c->kind = PT_CHUNK_REF;
    c->ref = p;
    c->off = 0;
    c->len = c->cap = len;
    c->fd = -1;
    c->foff = 0;
    c->flen = 0;
    link_tail(q, c);
    q->bytes += len;
    return 0;
}

int pt_cq_append_file(pt_cq *q, int fd, off_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    pt_chunk *c = malloc(sizeof(*c));
    if (!c)
        return -1;
    c->kind = PT_CHUNK_FILE;
    c->ref = NULL;
    c->fd = fd;
    c->foff = off;
    c->flen = len;
    c->off = c->len = c->cap = 0;
    link_tail(q, c);
    q->bytes += len;
    return 0;
}

static void consume(pt_cq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0 && q->head) {
        pt_chunk *c = q->head;
        if (c->kind != PT_CHUNK_FILE) {
            size_t avail = c->len - c->off;
            if (n < avail) {
                c->off += n;
                return;
            }
            n -= avail;
        } else {
            if (n < c->flen) {
                c->foff += (off_t)n;
                c->flen -= n;
                return;
            }
            n -= c->flen;
        }
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        chunk_release(q, c);
    }
    /* drop leading empty memory chunks */
    while (q->head && q->head->kind != PT_CHUNK_FILE && q->head->off == q->head->len) {
        pt_chunk *c = q->head;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        chunk_release(q, c);
    }
}

/* Tell the socket layer whether this write empties the queue. */
static void queue_tail(pt_sock *s, bool tail)
{
    if (tail)
        s->flags |= PT_SOCK_TAIL;
    else
        s->flags &= ~(unsigned)PT_SOCK_TAIL;
}

ssize_t pt_cq_flush(pt_cq *q, pt_sock *s, size_t max)
{
    size_t total = 0;
    while (q->head && total < max) {
        pt_chunk *c = q->head;
        ssize_t w;
        if (c->kind != PT_CHUNK_FILE) {
            struct iovec iov[32];
            int n = 0;
            pt_chunk *k = c;
            for (; k && k->kind != PT_CHUNK_FILE && n < 32; k = k->next) {
                if (k->len == k->off)
                    continue;
                iov[n].iov_base = (char *)(uintptr_t)k->ref + k->off;
                iov[n].iov_len = k->len - k->off;
                n++;
            }
            if (n == 0) {
                consume(q, 0);
                continue;
            }
            pt_chunk *f = c;
            while (f && f->kind != PT_CHUNK_FILE)
                f = f->next;
            if (f && s->ops->headfile && f->flen && n < 32) {
                queue_tail(s, !f->next && f->flen <= (1u << 30));
                w = s->ops->headfile(s, iov, n, f->fd, f->foff,
                                     (size_t)PT_MIN(f->flen, (uint64_t)(1u << 30)));
                goto sent;
            }
            queue_tail(s, !k);
            /* No MSG_MORE before a file range (nginx's default, tcp_nopush
             * off): holding the head back for the sendfile cost 43 us of
             * server CPU per 100 KiB response against 27 us without, at
             * the same throughput (bench/peers.sh static-100k, REPEAT=5) */
            w = pt_sock_writev(s, iov, n);
        } else {
            off_t o = c->foff;
            size_t want = (size_t)PT_MIN(c->flen, (uint64_t)(max - total));
            if (want > (1u << 30))
                want = 1u << 30;
            queue_tail(s, !c->next && want == c->flen);
            w = pt_sock_sendfile(s, c->fd, &o, want);
            if (w == 0) {
                /* file shrank under us: cannot honour the promised length */
                errno = EIO;
                return -1;
            }
        }
    sent:
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN && total > 0)
                return (ssize_t)total;
            return -1;
        }
        consume(q, (size_t)w);
        total += (size_t)w;
    }
    return (ssize_t)total;
}

ssize_t pt_cq_take(pt_cq *q, void *buf, size_t max)
{
    char *o = buf;
    size_t got = 0;
    for (pt_chunk *c = q->head; c && got < max; c = c->next) {
        if (c->kind != PT_CHUNK_FILE) {
            size_t n = PT_MIN(max - got, c->len - c->off);
            memcpy(o + got, c->ref + c->off, n);
            got += n;
            continue;
        }
        size_t want = (size_t)PT_MIN((uint64_t)(max - got), c->flen);
        ssize_t n = pread(c->fd, o + got, want, c->foff);
        if (n < 0 && got == 0)
            return -1;
        if (n <= 0)
            break; /* the file shrank or failed: the next call says so */
        got += (size_t)n;
        if ((size_t)n < want)
            break;
    }
    consume(q, got);
    return (ssize_t)got;
}

int pt_cq_move(pt_cq *dst, pt_cq *src, size_t n)
{
    while (n > 0) {
        pt_chunk *c = src->head;
        if (!c || c->kind != PT_CHUNK_MEM) {
            errno = EINVAL;
            return -1;
        }
        size_t avail = c->len - c->off;
        /* a sliver is copied: relinked, it would be an iovec of its own */
        if (avail <= n && avail >= 256) {
            src->head = c->next;
            if (!src->head)
                src->tail = NULL;
            src->bytes -= avail;
            link_tail(dst, c);
            dst->bytes += avail;
            n -= avail;
            continue;
        }
        size_t k = PT_MIN(n, avail);
        if (pt_cq_append(dst, c->data + c->off, k) < 0)
            return -1;
        consume(src, k);
        n -= k;
    }
    return 0;
}
