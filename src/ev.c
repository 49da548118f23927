/* ev.c: epoll loop and FIFO timeout lists. Level-triggered semantics for
 * every fd: back-pressure is dropping EPOLLIN, and a handler may stop
 * reading without draining. An edge-triggered fd (pt_io_edge) keeps them in
 * user space: the kernel polls it once per event, not once more at the next
 * epoll_wait, and a change of interest costs no epoll_ctl. */
#include "first.h"
#include "ev.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
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
    free(l->pend);
    l->pend = NULL;
    l->pend_n = l->pend_cap = 0;
    if (l->epfd >= 0)
        close(l->epfd);
    l->epfd = -1;
}

void pt_io_init(pt_io *io, int fd, pt_io_cb cb, void *data)
{
    io->fd = fd;
    io->events = 0;
    io->registered = false;
    io->is_edge = false;
    io->is_pending = false;
    io->is_full = false;
    io->ready = 0;
    io->armed = 0;
    io->cb = cb;
    io->data = data;
}

void pt_io_edge(pt_io *io)
{
    io->is_edge = true;
}

/* poll(2) and epoll share the bit values this file passes between them */
_Static_assert(POLLIN == EPOLLIN && POLLOUT == EPOLLOUT && POLLRDHUP == EPOLLRDHUP &&
                   POLLERR == EPOLLERR && POLLHUP == EPOLLHUP,
               "poll and epoll event bits differ");

/* What a level-triggered registration would report for io now, as far as
 * the loop knows: errors and hang-ups whatever the interest (epoll_ctl(2)). */
static uint32_t edge_due(const pt_io *io)
{
    return io->ready & (io->events | EPOLLERR | EPOLLHUP);
}

static void pending_unlink(pt_loop *l, pt_io *io)
{
    if (!io->is_pending)
        return;
    io->is_pending = false;
    for (int i = 0; i < l->pend_n; i++)
        if (l->pend[i] == io) {
            l->pend[i] = l->pend[--l->pend_n];
            return;
        }
}

/* An edge fd whose wanted events may still hold gets no new edge: the loop
 * must look again itself, or the wake-up is lost. */
static void pending_add(pt_loop *l, pt_io *io)
{
    if (l->pend_n == l->pend_cap) {
        int cap = l->pend_cap ? 2 * l->pend_cap : 64;
        pt_io **p = realloc(l->pend, (size_t)cap * sizeof(*p));
        if (!p) {
            /* no memory to remember it: let the kernel do it, level-
             * triggered from now on (it reports what is ready at once) */
            struct epoll_event ev = {.events = io->events, .data.ptr = io};
            if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0)
                io->is_edge = false;
            return;
        }
        l->pend = p;
        l->pend_cap = cap;
    }
    l->pend[l->pend_n++] = io;
    io->is_pending = true;
}

static inline void pending_check(pt_loop *l, pt_io *io)
{
    if (!io->is_pending && io->registered && edge_due(io))
        pending_add(l, io);
}

int pt_io_change(pt_loop *l, pt_io *io, uint32_t events)
{
    if (events == io->events && io->registered)
        return 0;
    if (io->is_edge && events) {
        /* not all three at once: a fresh socket is writable, and an
         * EPOLLOUT nobody waits for would cost a wake-up of its own */
        uint32_t arm = (events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP)) | io->armed;
        if (!io->registered || arm != io->armed) {
            struct epoll_event ev = {.events = arm | EPOLLET, .data.ptr = io};
            int op = io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
            if (epoll_ctl(l->epfd, op, io->fd, &ev) < 0)
                return -1;
            if (!io->registered)
                io->ready = 0;
            /* both queue an event if the fd is ready now (epoll_ctl(2)) */
            io->registered = true;
            io->armed = (uint16_t)arm;
        }
        io->events = events;
        pending_check(l, io);
        return 0;
    }
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
    pending_unlink(l, io);
    io->ready = 0;
    io->armed = 0;
    /* from the entry being dispatched: the loop then knows io is gone */
    for (int i = l->batch_i; i < l->batch_n; i++)
        if (l->batch[i].data.ptr == io)
            l->batch[i].data.ptr = NULL;
}

void pt_io_remove(pt_loop *l, pt_io *io)
{
    if (!io->registered) {
        pending_unlink(l, io);
        return;
    }
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

void pt_timer_unlink(pt_timer *t)
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
    if (t->deadline < l->next_due)
        l->next_due = t->deadline;
}

static int next_timeout(const pt_loop *l)
{
    if (l->next_due == UINT64_MAX)
        return -1;
    if (l->next_due <= l->now)
        return 0;
    uint64_t d = l->next_due - l->now;
    return d > 60000 ? 60000 : (int)d;
}

/* Runs the due timers and sets next_due to the earliest deadline left; a
 * callback that arms a timer lowers it itself (pt_timer_arm), whichever
 * list it uses. Nothing can be due before next_due: the lists, one per
 * timeout class (dozens), are walked only when something may be. */
static void run_timers(pt_loop *l)
{
    if (l->now < l->next_due)
        return;
    l->timer_walks++;
    l->next_due = UINT64_MAX;
    for (pt_tlist *tl = l->lists; tl; tl = tl->next_list) {
        while (tl->head.next != &tl->head && tl->head.next->deadline <= l->now) {
            pt_timer *t = tl->head.next;
            pt_timer_stop(t);
            t->cb(l, t);
            if (l->stop) {
                l->next_due = 0; /* the walk is unfinished: the next one redoes it */
                return;
            }
        }
        if (tl->head.next != &tl->head && tl->head.next->deadline < l->next_due)
            l->next_due = tl->head.next->deadline;
    }
}

static void dispatch(pt_loop *l, struct epoll_event *evs, int n)
{
    l->batch = evs;
    l->batch_n = n;
    for (l->batch_i = 0; l->batch_i < n && !l->stop; l->batch_i++) {
        pt_io *io = evs[l->batch_i].data.ptr;
        /* NULL: a callback earlier in this batch removed it */
        if (!io || !io->registered)
            continue;
        uint32_t ev = evs[l->batch_i].events;
        if (io->is_edge) {
            io->ready |= (uint16_t)ev;
            ev = edge_due(io);
            /* an edge for what the owner does not want now is kept in
             * `ready` for the pt_io_set that wants it again */
            if (!ev)
                continue;
            pending_unlink(l, io);
            io->is_full = false;
        }
        io->cb(l, io, ev);
        /* still there (not struck) and stopped before draining: look again */
        if (evs[l->batch_i].data.ptr == io && io->is_edge)
            pending_check(l, io);
    }
    l->batch_n = 0;
}

/* The pending edge fds, as the kernel re-polls a level-triggered fd it
 * reported: one poll(2) says which wanted events still hold; those are
 * dispatched, the rest forgotten until their next edge. */
static void run_pending(pt_loop *l)
{
    struct pollfd pf[PT_EV_MAX_EVENTS];
    struct epoll_event evs[PT_EV_MAX_EVENTS];
    int n = 0, npoll = 0;
    /* the oldest taken out of the array first: callbacks may add to it */
    int take = l->pend_n < PT_EV_MAX_EVENTS ? l->pend_n : PT_EV_MAX_EVENTS;
    pt_io *ios[PT_EV_MAX_EVENTS];
    memcpy(ios, l->pend, (size_t)take * sizeof(*ios));
    l->pend_n -= take;
    memmove(l->pend, l->pend + take, (size_t)l->pend_n * sizeof(*ios));
    for (int i = 0; i < take; i++) {
        pt_io *io = ios[i];
        io->is_pending = false;
        /* after a full read, no poll: its callback reads at once, and a
         * read that finds nothing clears `ready` as a poll would; it can
         * loop only while reads fill their buffers */
        pf[n].fd = io->is_full ? -1 : io->fd;
        pf[n].events = (short)(io->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP));
        pf[n].revents = 0;
        npoll += !io->is_full;
        evs[n].data.ptr = io;
        n++;
    }
    if (n == 0)
        return;
    if (npoll > 0 && poll(pf, (nfds_t)n, 0) < 0) {
        /* EINTR or ENOMEM: dispatch them all; a reader meets EAGAIN at worst */
        for (int i = 0; i < n; i++)
            pf[i].revents = pf[i].events;
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
        pt_io *io = evs[i].data.ptr;
        if (pf[i].fd >= 0) { /* polled (poll skips a negative fd) */
            uint32_t asked = (uint32_t)pf[i].events | EPOLLERR | EPOLLHUP;
            uint32_t got = (uint32_t)(unsigned short)pf[i].revents;
            io->ready = (uint16_t)((io->ready & ~asked) | (got & asked));
        }
        if (edge_due(io)) {
            evs[m].data.ptr = io;
            evs[m].events = edge_due(io);
            m++;
        }
    }
    dispatch(l, evs, m);
}

int pt_loop_run(pt_loop *l)
{
    struct epoll_event evs[PT_EV_MAX_EVENTS];
    while (!l->stop) {
        bool busy = l->pend_n > 0;
        int n = epoll_wait(l->epfd, evs, PT_EV_MAX_EVENTS, busy ? 0 : next_timeout(l));
        l->now = pt_now_ms();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        dispatch(l, evs, n);
        if (!l->stop && l->pend_n > 0)
            run_pending(l);
        if (!l->stop)
            run_timers(l);
        if (l->after_events)
            l->after_events(l);
    }
    return 0;
}
