#include "first.h"
#include "ev.h"
#include "tap.h"

/* test_ev.c: the event loop's dispatch rules: an io removed by a callback
 * earlier in the same batch gets no callback afterwards, so its owner may
 * free it at once (FastCGI connections are). */

#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct obj {
    pt_io io;
    int fds[2];
    int calls;
} obj;

static obj *a, *b;
static int b_calls_seen;

static void on_a(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)io;
    (void)events;
    a->calls++;
    /* free b, whose readiness is in the same batch */
    if (b) {
        pt_io_remove(l, &b->io);
        close(b->fds[0]);
        close(b->fds[1]);
        free(b);
        b = NULL;
    }
}

static void on_b(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)events;
    ((obj *)io->data)->calls++;
    b_calls_seen++;
    if (a) {
        pt_io_closing(l, &a->io);
        close(a->fds[0]);
        close(a->fds[1]);
        free(a);
        a = NULL;
    }
}

/* one batch only: the callbacks must not stop the loop themselves, or the
 * rest of the batch would never be looked at */
static void after_batch(pt_loop *l)
{
    l->stop = true;
}

static obj *make(pt_loop *l, pt_io_cb cb)
{
    obj *o = calloc(1, sizeof(*o));
    if (!o || pipe(o->fds) < 0)
        abort();
    pt_io_init(&o->io, o->fds[0], cb, o);
    if (pt_io_set(l, &o->io, EPOLLIN) < 0 || write(o->fds[1], "x", 1) != 1)
        abort();
    return o;
}

static void test_removed_io_gets_no_callback(void)
{
    pt_loop l;
    ok(pt_loop_init(&l) == 0, "loop starts");
    a = make(&l, on_a);
    b = make(&l, on_b);
    l.after_events = after_batch;
    /* both are readable: one epoll_wait returns both; whichever runs first
     * frees the other */
    pt_loop_run(&l);
    ok((a == NULL) != (b == NULL), "exactly one callback ran and freed the other object");
    ok(b_calls_seen + (a ? a->calls : 0) == 1, "the freed object got no callback");
    obj *left = a ? a : b;
    pt_io_remove(&l, &left->io);
    close(left->fds[0]);
    close(left->fds[1]);
    free(left);
    pt_loop_free(&l);
}

int main(void)
{
    test_removed_io_gets_no_callback();
    return tap_done();
}
