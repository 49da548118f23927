/* body.h: storage for a collected request body: memory up to a threshold,
 * then an unlinked temp file (O_TMPFILE in tmp_dir, falling back to
 * mkstemp + unlink), so the size is always known before a handler runs. */
#ifndef PT_BODY_H
#define PT_BODY_H

#include "first.h"

typedef struct pt_body {
    char *mem; /* heap buffer while in memory */
    size_t mem_len, mem_cap;
    int fd;           /* -1 while in memory */
    uint64_t len;     /* total bytes stored */
    size_t mem_limit; /* spill threshold */
    const char *tmp_dir;
} pt_body;

void pt_body_init(pt_body *b, size_t mem_limit, const char *tmp_dir);
/* Append; spills to a temp file when mem_len would pass mem_limit.
 * Returns 0 or -1 with errno (disk full, EMFILE...). */
int pt_body_append(pt_body *b, const void *data, size_t len);
/* Read len bytes at offset off into dst (pread for the file). Returns bytes
 * read, or -1. */
ssize_t pt_body_read(const pt_body *b, uint64_t off, void *dst, size_t len);
bool pt_body_in_memory(const pt_body *b);
/* Frees memory and closes the file (which disappears: it was never linked). */
void pt_body_free(pt_body *b);

/* An unnamed read-write temp file in dir (NULL: /tmp): O_TMPFILE, or
 * mkostemp + unlink where O_TMPFILE is unsupported. fd (O_CLOEXEC) or -1. */
int pt_body_tmpfile(const char *dir);
/* The mkostemp + unlink path alone (exposed so tests can reach it). */
int pt_body_tmpfile_fallback(const char *dir);

#endif
