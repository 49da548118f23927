/* errlines.h: a program's stderr (a CGI pipe or FastCGI STDERR records) cut
 * into log lines and rate-limited, one copy for every gateway. */
#ifndef PT_ERRLINES_H
#define PT_ERRLINES_H

#include "first.h"

#define PT_ERRLINES_LINE 1024  /* longer lines are logged in pieces */
#define PT_ERRLINES_PER_SEC 50 /* per program, per one-second window */

typedef struct pt_errlines {
    char line[PT_ERRLINES_LINE];
    size_t len;
    uint64_t window; /* start of the current window, ms */
    unsigned count, dropped;
} pt_errlines;

/* Called with one escaped line (text != NULL), or with text == NULL and the
 * number of lines the rate limit dropped since the last call. */
typedef void (*pt_errlines_emit)(void *ctx, const char *text, unsigned dropped);

/* Feed n bytes read at time now (ms): complete lines go to emit. */
void pt_errlines_feed(pt_errlines *e, uint64_t now, const char *p, size_t n, pt_errlines_emit emit,
                      void *ctx);

/* The stream ended: the unterminated tail goes out, then how many lines
 * were dropped, so a flood that ends inside its window is still reported. */
void pt_errlines_flush(pt_errlines *e, uint64_t now, pt_errlines_emit emit, void *ctx);

#endif
