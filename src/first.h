/* first.h: included first by every portico source file. Pulls in config.h
 * (which defines _GNU_SOURCE through AC_USE_SYSTEM_EXTENSIONS) and the few
 * attributes and helpers every file uses. */
#ifndef PT_FIRST_H
#define PT_FIRST_H

#include "config.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PT_UNUSED __attribute__((unused))
#define PT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PT_MAX(a, b) ((a) > (b) ? (a) : (b))
/* length of a string literal, without the NUL */
#define PT_SLEN(s) (sizeof(s) - 1)

/* A borrowed byte range (not NUL-terminated). */
typedef struct pt_str {
    const char *p;
    size_t len;
} pt_str;

#endif
