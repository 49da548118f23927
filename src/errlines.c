/* errlines.c: stderr of programs to log lines: split at LF (a CR before it
 * dropped), overlong lines cut, at most PT_ERRLINES_PER_SEC lines a second
 * per program, and the dropped ones counted and reported, never silently
 * lost. */
#include "first.h"
#include "errlines.h"
#include "util.h"

static void line_out(pt_errlines *e, uint64_t now, pt_errlines_emit emit, void *ctx)
{
    if (now - e->window >= 1000) {
        if (e->dropped)
            emit(ctx, NULL, e->dropped);
        e->window = now;
        e->count = 0;
        e->dropped = 0;
    }
    if (++e->count > PT_ERRLINES_PER_SEC) {
        e->dropped++;
    } else {
        char esc[PT_ERRLINES_LINE * 4 + 8];
        pt_escape_log(e->line, e->len, esc, sizeof(esc));
        emit(ctx, esc, 0);
    }
    e->len = 0;
}

void pt_errlines_feed(pt_errlines *e, uint64_t now, const char *p, size_t n, pt_errlines_emit emit,
                      void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n') {
            if (e->len && e->line[e->len - 1] == '\r')
                e->len--;
            line_out(e, now, emit, ctx);
            continue;
        }
        if (e->len == sizeof(e->line))
            line_out(e, now, emit, ctx); /* an overlong line goes out in pieces */
        e->line[e->len++] = ch;
    }
}

void pt_errlines_flush(pt_errlines *e, uint64_t now, pt_errlines_emit emit, void *ctx)
{
    if (e->len)
        line_out(e, now, emit, ctx);
    if (e->dropped)
        emit(ctx, NULL, e->dropped);
    e->dropped = 0;
}
