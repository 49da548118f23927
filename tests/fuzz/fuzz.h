/* fuzz.h: shared by the libFuzzer targets in tests/fuzz/: the entry point's
 * prototype (the build uses -Wmissing-prototypes), an invariant check that
 * aborts so libFuzzer keeps the input as a crasher, and small helpers. */
#ifndef PT_FUZZ_H
#define PT_FUZZ_H

#include "first.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a finding like a crash: say which one, then abort. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* [p, p+n) lies inside [base, base+len): compared as integers, since the
 * pointers may belong to different objects when the check fails. */
static inline bool fz_inside(const void *base, size_t len, const void *p, size_t n)
{
    uintptr_t b = (uintptr_t)base, q = (uintptr_t)p;
    return q >= b && n <= len && q - b <= len - n;
}

/* An exact-size heap copy, so ASan sees a read one byte past the end. */
static inline char *fz_dup(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    FZ_CHECK(c != NULL);
    if (n)
        memcpy(c, p, n);
    return c;
}

/* Deterministic split sizes derived from the input (xorshift on a seed). */
static inline uint32_t fz_next(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* The next piece length: 1..cap, at most left. */
static inline size_t fz_piece(uint32_t *s, unsigned cap, size_t left)
{
    size_t n = 1 + fz_next(s) % cap;
    return n < left ? n : left;
}

static inline uint32_t fz_seed(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

static inline bool fz_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static inline bool fz_ieq(const char *a, size_t n, const char *lit)
{
    if (n != strlen(lit))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)lit[i];
        if ((x >= 'A' && x <= 'Z' ? x + 32 : x) != (y >= 'A' && y <= 'Z' ? y + 32 : y))
            return false;
    }
    return true;
}

#endif
