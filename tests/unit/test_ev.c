#include "first.h"
#include "ev.h"
#include "tap.h"

/* test_ev.c: the event loop's dispatch rules: an io removed by a callback
 * earlier in the same batch gets no callback afterwards, so its owner may
 * free it at once (FastCGI connections are). Its timeout lists: walked
 * only when a timer may be due, and a timer armed from a timer's callback
 * still fires. */

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

static int wakeups;

static void count_wakeups(pt_loop *l)
{
    if (++wakeups == 100)
        l->stop = true;
}

static void on_ready(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)l;
    (void)io;
    (void)events; /* never read: the pipe stays readable, every wait returns */
}

static void on_never(pt_loop *l, pt_timer *t)
{
    (void)l;
    (void)t;
}

static void test_timer_lists_walked_only_when_due(void)
{
    pt_loop l;
    pt_tlist tl[30];
    pt_timer t;
    ok(pt_loop_init(&l) == 0, "loop starts");
    for (int i = 0; i < 30; i++)
        pt_tlist_init(&l, &tl[i], 60000);
    pt_timer_init(&t, on_never, NULL);
    pt_timer_arm(&l, &t, &tl[5]);
    obj *o = make(&l, on_ready);
    wakeups = 0;
    l.after_events = count_wakeups;
    pt_loop_run(&l);
    ok(wakeups == 100, "100 wakeups");
    ok(l.timer_walks <= 1, "nothing due for a minute: the lists were walked %llu times, not 100",
       (unsigned long long)l.timer_walks);
    ok(pt_timer_armed(&t), "the timer is still armed");
    pt_io_remove(&l, &o->io);
    close(o->fds[0]);
    close(o->fds[1]);
    free(o);
    pt_loop_free(&l);
}

static pt_tlist *later;
static pt_timer second;
static int second_fired;

static void on_second(pt_loop *l, pt_timer *t)
{
    (void)t;
    second_fired++;
    l->stop = true;
}

static void on_first(pt_loop *l, pt_timer *t)
{
    (void)t;
    pt_timer_arm(l, &second, later);
}

static void test_timer_armed_by_a_timer_fires(void)
{
    pt_loop l;
    pt_tlist now_list, in_1ms;
    pt_timer first;
    ok(pt_loop_init(&l) == 0, "loop starts");
    /* in_1ms is walked before now_list (the newest list comes first), so
     * the timer armed in it comes after its list's turn in that walk */
    pt_tlist_init(&l, &now_list, 0);
    pt_tlist_init(&l, &in_1ms, 1);
    later = &in_1ms;
    pt_timer_init(&first, on_first, NULL);
    pt_timer_init(&second, on_second, NULL);
    pt_timer_arm(&l, &first, &now_list);
    second_fired = 0;
    alarm(10); /* a lost timer would leave epoll_wait without a timeout */
    pt_loop_run(&l);
    alarm(0);
    ok(second_fired == 1, "the timer armed by the first one's callback fired");
    pt_loop_free(&l);
}

int main(void)
{
    test_removed_io_gets_no_callback();
    test_timer_lists_walked_only_when_due();
    test_timer_armed_by_a_timer_fires();
    return tap_done();
}
