/* ev.c: epoll loop and FIFO timeout lists. Level-triggered: back-pressure is
 * dropping EPOLLIN, and a handler may stop reading without draining. */
#include "first.h"
#include "ev.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int pt_loop_init(pt_loop *l)
{
    memset(l, 0, sizeof(*l));
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -1;
    l->now = pt_now_ms();
    return 0;
}

void pt_loop_free(pt_loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
}

void pt_io_init(pt_io *io, int fd, pt_io_cb cb, void *data)
{
    io->fd = fd;
    io->events = 0;
    io->registered = false;
    io->cb = cb;
    io->data = data;
}

int pt_io_set(pt_loop *l, pt_io *io, uint32_t events)
{
    if (events == io->events && io->registered)
        return 0;
    if (events == 0) {
        pt_io_remove(l, io);
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.ptr = io};
    int op = io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, io->fd, &ev) < 0)
        return -1;
    io->registered = true;
    io->events = events;
    return 0;
}

int pt_io_add_exclusive(pt_loop *l, pt_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLEXCLUSIVE, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -1;
    io->registered = true;
    io->events = events;
    return 0;
}

/* Events of io still waiting in the batch being dispatched are dropped:
 * the io (and whatever holds it) may be freed before the loop gets there. */
static void strike_pending(pt_loop *l, pt_io *io)
{
    for (int i = l->batch_i + 1; i < l->batch_n; i++)
        if (l->batch[i].data.ptr == io)
            l->batch[i].data.ptr = NULL;
}

void pt_io_remove(pt_loop *l, pt_io *io)
{
    if (!io->registered)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = false;
    io->events = 0;
    strike_pending(l, io);
}

void pt_io_closing(pt_loop *l, pt_io *io)
{
    if (!io->registered)
        return;
    io->registered = false;
    io->events = 0;
    strike_pending(l, io);
}

void pt_tlist_init(pt_loop *l, pt_tlist *tl, uint64_t duration_ms)
{
    tl->head.prev = tl->head.next = &tl->head;
    tl->head.list = tl;
    tl->duration_ms = duration_ms;
    tl->next_list = l->lists;
    l->lists = tl;
}

void pt_timer_init(pt_timer *t, pt_timer_cb cb, void *data)
{
    t->prev = t->next = NULL;
    t->list = NULL;
    t->cb = cb;
    t->data = data;
}

void pt_timer_stop(pt_timer *t)
{
    if (!t->list)
        return;
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->list = NULL;
}

void pt_timer_arm(pt_loop *l, pt_timer *t, pt_tlist *tl)
{
    pt_timer_stop(t);
    t->deadline = l->now + tl->duration_ms;
    /* append at the tail: every entry has the same duration, so FIFO order
     * is deadline order */
    t->prev = tl->head.prev;
    t->next = &tl->head;
    tl->head.prev->next = t;
    tl->head.prev = t;
    t->list = tl;
}

static int next_timeout(pt_loop *l)
{
    uint64_t best = UINT64_MAX;
    for (pt_tlist *tl = l->lists; tl; tl = tl->next_list) {
        if (tl->head.next != &tl->head && tl->head.next->deadline < best)
            best = tl->head.next->deadline;
    }
    if (best == UINT64_MAX)
        return -1;
    if (best <= l->now)
        return 0;
    uint64_t d = best - l->now;
    return d > 60000 ? 60000 : (int)d;
}

static void run_timers(pt_loop *l)
{
    for (pt_tlist *tl = l->lists; tl; tl = tl->next_list) {
        while (tl->head.next != &tl->head && tl->head.next->deadline <= l->now) {
            pt_timer *t = tl->head.next;
            pt_timer_stop(t);
            t->cb(l, t);
            if (l->stop)
                return;
        }
    }
}

int pt_loop_run(pt_loop *l)
{
    struct epoll_event evs[PT_EV_MAX_EVENTS];
    while (!l->stop) {
        int n = epoll_wait(l->epfd, evs, PT_EV_MAX_EVENTS, next_timeout(l));
        l->now = pt_now_ms();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        l->batch = evs;
        l->batch_n = n;
        for (l->batch_i = 0; l->batch_i < n && !l->stop; l->batch_i++) {
            pt_io *io = evs[l->batch_i].data.ptr;
            /* NULL: a callback earlier in this batch removed it */
            if (!io || !io->registered)
                continue;
            io->cb(l, io, evs[l->batch_i].events);
        }
        l->batch_n = 0;
        if (!l->stop)
            run_timers(l);
        if (l->after_events)
            l->after_events(l);
    }
    return 0;
}
