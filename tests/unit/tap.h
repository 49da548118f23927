/* tap.h: a tiny TAP producer for the C unit tests (read by automake's
 * tap-driver.sh). Each check is one "ok N - name" line. */
#ifndef PT_TAP_H
#define PT_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                              \
    do {                                                                                           \
        int ok_ = !!(cond);                                                                        \
        tap_n++;                                                                                   \
        if (!ok_)                                                                                  \
            tap_failed++;                                                                          \
        printf("%sok %d - ", ok_ ? "" : "not ", tap_n);                                            \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (!ok_)                                                                                  \
            printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
    } while (0)

/* compare a (ptr,len) with a C string */
#define ok_mem(p, n, s, ...) ok((n) == strlen(s) && memcmp((p), (s), (n)) == 0, __VA_ARGS__)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    fflush(stdout);
    return tap_failed ? 1 : 0;
}

#endif
