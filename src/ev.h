/* ev.h: the event loop: epoll with callbacks per fd, and timeout lists in
 * which every entry shares one duration, so each list stays sorted by
 * deadline and add/refresh/remove are O(1) (DESIGN.md, Event loop). An fd
 * is level-triggered, or edge-triggered with level semantics kept in user
 * space (pt_io_edge): its owner sees the same events either way. */
#ifndef PT_EV_H
#define PT_EV_H

#include "first.h"
#include <stdint.h>
#include <sys/epoll.h>

typedef struct pt_loop pt_loop;
typedef struct pt_io pt_io;
typedef void (*pt_io_cb)(pt_loop *l, pt_io *io, uint32_t events);

struct pt_io {
    int fd;
    uint32_t events; /* currently registered interest (edge: wanted) */
    /* edge: registered once, EPOLLET, the kernel's interest only growing
     * (`armed`); `events` is then only what the owner wants now, and
     * `ready` what the kernel last said may still hold, until a read or
     * write that stops short clears it. 16 bits hold every epoll event but
     * EPOLLET and keep this 32 bytes (an upstream connection's allocation
     * stays in its malloc size class) */
    uint16_t ready;
    uint16_t armed;
    bool registered;
    bool is_edge;
    bool is_pending; /* edge: in the loop's pending array */
    bool is_full;    /* edge: its callback's last read filled the buffer */
    pt_io_cb cb;
    void *data;
};

typedef struct pt_timer pt_timer;
typedef struct pt_tlist pt_tlist;
typedef void (*pt_timer_cb)(pt_loop *l, pt_timer *t);

struct pt_timer {
    pt_timer *prev, *next;
    pt_tlist *list; /* NULL when not armed */
    uint64_t deadline;
    pt_timer_cb cb;
    void *data;
};

struct pt_tlist {
    pt_timer head; /* sentinel of a circular list */
    uint64_t duration_ms;
    pt_tlist *next_list;
};

#define PT_EV_MAX_EVENTS 256

struct pt_loop {
    int epfd;
    bool stop;
    /* the batch being dispatched: an io removed meanwhile is struck from
     * its rest, so its owner may be freed at once */
    struct epoll_event *batch;
    int batch_i, batch_n;
    uint64_t now; /* monotonic ms, refreshed every wakeup */
    pt_tlist *lists;
    /* no armed timer is due before this (a lower bound: arming lowers it,
     * stopping leaves it): a wakeup before it walks no list, and a stale
     * bound costs one early wakeup and one walk that sets it right */
    uint64_t next_due;
    uint64_t timer_walks; /* walks of the lists (a count for the tests) */
    /* edge fds whose wanted events may still hold: polled (one poll(2)
     * for all of them) and dispatched before the next epoll_wait, as the
     * kernel re-polls a level-triggered fd it reported */
    pt_io **pend;
    int pend_n, pend_cap;
    void (*after_events)(pt_loop *l); /* called after each batch (deferred frees) */
    void *data;
};

int pt_loop_init(pt_loop *l);
void pt_loop_free(pt_loop *l);
/* Runs until l->stop. Returns 0, or -1 when epoll_wait fails for real. */
int pt_loop_run(pt_loop *l);

void pt_io_init(pt_io *io, int fd, pt_io_cb cb, void *data);
/* Before the first pt_io_set: register io edge-triggered; the kernel's
 * interest only grows (an EPOLL_CTL_MOD the first time an event is wanted,
 * never one to drop it: back-pressure costs no system call). Its readers and
 * writers call pt_io_drained when a call stops short of what was asked or
 * meets EAGAIN; one that never does costs a poll(2), not a lost event. */
void pt_io_edge(pt_io *io);
/* The kernel has nothing more of `bits` (EPOLLIN, EPOLLOUT) for io now: a
 * new edge will come when it has. */
static inline void pt_io_drained(pt_io *io, uint32_t bits)
{
    io->ready &= (uint16_t)~bits;
}
/* A read filled what it was given: more is likely waiting, so the loop
 * calls back without asking poll(2) first (the call is a read either way). */
static inline void pt_io_full(pt_io *io)
{
    io->is_full = true;
}
/* pt_io_set's work when the interest changes. */
int pt_io_change(pt_loop *l, pt_io *io, uint32_t events);
/* Sets the interest (EPOLLIN/EPOLLOUT/...); 0 removes the fd from epoll.
 * Most calls change nothing (a request sets what it already has): those
 * cost a compare here, not a call. Edge fds too: what is due changes only
 * with `events`, an event or a callback, and the last two check it
 * themselves. */
static inline int pt_io_set(pt_loop *l, pt_io *io, uint32_t events)
{
    if (events == io->events && io->registered)
        return 0;
    return pt_io_change(l, io, events);
}
/* Like pt_io_set for a shared listening socket: EPOLLEXCLUSIVE. */
int pt_io_add_exclusive(pt_loop *l, pt_io *io, uint32_t events);
void pt_io_remove(pt_loop *l, pt_io *io);
/* The fd is about to be closed and no other process shares it: closing
 * drops the epoll registration, so this only forgets it (no system call). */
void pt_io_closing(pt_loop *l, pt_io *io);

void pt_tlist_init(pt_loop *l, pt_tlist *tl, uint64_t duration_ms);
void pt_timer_init(pt_timer *t, pt_timer_cb cb, void *data);
/* (Re)arm t in list tl: deadline = now + tl->duration_ms. */
void pt_timer_arm(pt_loop *l, pt_timer *t, pt_tlist *tl);
/* pt_timer_stop's work for an armed timer. */
void pt_timer_unlink(pt_timer *t);
/* Most calls find the timer stopped already: a compare, not a call. */
static inline void pt_timer_stop(pt_timer *t)
{
    if (t->list)
        pt_timer_unlink(t);
}
static inline bool pt_timer_armed(const pt_timer *t)
{
    return t->list != NULL;
}

#endif
