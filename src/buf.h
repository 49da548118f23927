/* buf.h: the output chunk queue of a connection: memory slices and file
 * ranges, flushed with writev and sendfile, a bounded amount per call. */
#ifndef PT_BUF_H
#define PT_BUF_H

#include "first.h"
#include "sock.h"
#include <sys/types.h>

/* REF: memory the chunk does not own (a cached file's content), sent
 * without a copy; its owner keeps it until the queue is flushed */
enum { PT_CHUNK_MEM = 0, PT_CHUNK_FILE = 1, PT_CHUNK_REF = 2 };

typedef struct pt_chunk {
    struct pt_chunk *next;
    int kind;
    /* MEM: data[off..len) ; REF: ref[off..len) ; FILE: fd, range [foff,
     * foff + flen) */
    size_t off, len, cap;
    const char *ref;
    int fd;
    off_t foff;
    uint64_t flen;
    char data[];
} pt_chunk;

typedef struct pt_cq {
    pt_chunk *head, *tail;
    uint64_t bytes;  /* queued, not yet written */
    pt_chunk *spare; /* one MEM chunk kept for reuse */
} pt_cq;

void pt_cq_init(pt_cq *q);
/* Frees all chunks (file fds are owned by the caller, not closed here). */
void pt_cq_clear(pt_cq *q);
void pt_cq_free(pt_cq *q);
/* Append bytes (copied). 0 or -1 (ENOMEM). */
int pt_cq_append(pt_cq *q, const void *p, size_t len);
int pt_cq_printf(pt_cq *q, const char *fmt, ...) PT_PRINTF(2, 3);
/* Append len bytes at p by reference (not copied): p must stay valid
 * until the queue is flushed or cleared. 0 or -1 (ENOMEM). */
int pt_cq_append_ref(pt_cq *q, const void *p, size_t len);
/* Append a file range; the fd must stay open until the queue is flushed. */
int pt_cq_append_file(pt_cq *q, int fd, off_t off, uint64_t len);
/* Writable tail space of at least want bytes in the last MEM chunk. The
 * caller writes then calls pt_cq_commit. */
char *pt_cq_reserve(pt_cq *q, size_t want);
void pt_cq_commit(pt_cq *q, size_t n);

/* Write as much as possible (at most max bytes). Returns bytes written (>=0),
 * or -1 with errno (EAGAIN when nothing could be written). */
ssize_t pt_cq_flush(pt_cq *q, pt_sock *s, size_t max);
/* Copy at most max bytes from the front into buf and drop them from the
 * queue (file ranges read with pread, so a file is never held in memory
 * whole): the bytes, or -1 with errno when a file cannot be read. HTTP/2
 * takes a stream's body this way, one DATA frame at a time (h2.c). */
ssize_t pt_cq_take(pt_cq *q, void *buf, size_t max);
/* Move n bytes of memory chunks from the front of src to the end of dst:
 * a chunk that goes whole (and is not a sliver) is relinked, not copied.
 * 0, or -1 (ENOMEM; EINVAL when src's front holds fewer memory bytes). An
 * HTTP/2 DATA frame's body goes from its stream's queue to the
 * connection's this way (h2.c). */
int pt_cq_move(pt_cq *dst, pt_cq *src, size_t n);

#endif
