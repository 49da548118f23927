#include "first.h"
#include "upstream.h"
#include "stats.h"

/* upstream.c: which server of a backend gets the next request in this
 * worker (smooth weighted round-robin or least connections, backups last,
 * per-worker connection caps) and passive health from counted failures. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pt_upstream_init(pt_upstream *u, const pt_backend *b, unsigned nworkers)
{
    memset(u, 0, sizeof(*u));
    u->cfg = b;
    if (nworkers == 0)
        nworkers = 1;
    if (b->nservers) {
        u->s = calloc(b->nservers, sizeof(*u->s));
        if (!u->s) {
            errno = ENOMEM;
            return -1;
        }
    }
    u->n = b->nservers;
    for (size_t i = 0; i < u->n; i++) {
        const pt_fcgi_server *c = &b->servers[i];
        u->s[i].cfg = c;
        u->s[i].st = pt_stats_server(b->name, c->address);
        /* the cap is for all workers together: round up so the total is
         * never below max_conns and each worker gets at least one */
        u->s[i].cap =
            c->max_conns ? (unsigned)((c->max_conns + (uint64_t)nworkers - 1) / nworkers) : 0;
    }
    return 0;
}

void pt_upstream_free(pt_upstream *u)
{
    free(u->s);
    u->s = NULL;
    u->n = 0;
}

static bool is_up(const pt_up_server *s, uint64_t now)
{
    return s->down_until <= now;
}

static bool has_spare(const pt_up_server *s)
{
    return s->cap == 0 || s->active < s->cap;
}

static int64_t weight_of(const pt_up_server *s)
{
    return s->cfg->weight ? s->cfg->weight : 1;
}

/* Is server i a candidate: up, not tried, and of the wanted kind? */
static bool is_candidate(const pt_upstream *u, size_t i, uint64_t now, const bool *tried,
                         bool backup)
{
    return u->s[i].cfg->backup == backup && is_up(&u->s[i], now) && !(tried && tried[i]);
}

/* The candidates are the non-backup servers, or if none qualifies the
 * backup ones. false when neither kind has a candidate. */
static bool candidate_kind(const pt_upstream *u, uint64_t now, const bool *tried, bool *backup)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < u->n; i++) {
            if (is_candidate(u, i, now, tried, pass == 1)) {
                *backup = pass == 1;
                return true;
            }
        }
    }
    return false;
}

/* a->active / a->weight < b->active / b->weight, without division */
static int cmp_load(const pt_up_server *a, const pt_up_server *b)
{
    uint64_t l = (uint64_t)a->active * (uint64_t)weight_of(b);
    uint64_t r = (uint64_t)b->active * (uint64_t)weight_of(a);
    return l < r ? -1 : l > r;
}

/* Does server i compete in this pick: a candidate with room, and for
 * least_conn (least >= 0) as lightly loaded as server least? */
static bool in_round(const pt_upstream *u, size_t i, uint64_t now, const bool *tried, bool backup,
                     int least)
{
    if (!is_candidate(u, i, now, tried, backup) || !has_spare(&u->s[i]))
        return false;
    return least < 0 || cmp_load(&u->s[i], &u->s[least]) == 0;
}

int pt_upstream_pick(pt_upstream *u, uint64_t now, const bool *tried)
{
    bool backup;
    int least = -1, best = -1;
    int64_t total = 0;

    /* a server past its down time is up again, with a fresh fail count */
    for (size_t i = 0; i < u->n; i++) {
        pt_up_server *s = &u->s[i];
        if (s->down_until && s->down_until <= now) {
            s->down_until = 0;
            s->fails = 0;
            s->fail_start = 0;
        }
    }
    if (!candidate_kind(u, now, tried, &backup))
        return PT_UP_NONE;
    if (u->cfg->balance == PT_BAL_LEAST_CONN) {
        /* only the least loaded compete; weighted round-robin among them
         * breaks ties, so equal idle servers alternate (as nginx does) */
        for (size_t i = 0; i < u->n; i++)
            if (in_round(u, i, now, tried, backup, -1) &&
                (least < 0 || cmp_load(&u->s[i], &u->s[least]) < 0))
                least = (int)i;
        if (least < 0)
            return PT_UP_FULL;
    }
    /* nginx's smooth weighted round-robin: each competitor gains its
     * weight, the largest wins and pays back the round's total, which
     * spreads a heavy server's turns evenly (5,1,1: a a b a c a a) */
    for (size_t i = 0; i < u->n; i++) {
        if (!in_round(u, i, now, tried, backup, least))
            continue;
        u->s[i].current += weight_of(&u->s[i]);
        total += weight_of(&u->s[i]);
        if (best < 0 || u->s[i].current > u->s[best].current)
            best = (int)i;
    }
    if (best < 0)
        return PT_UP_FULL;
    u->s[best].current -= total;
    return best;
}

void pt_upstream_acquire(pt_upstream *u, size_t i)
{
    u->s[i].active++;
    PT_STATS_ADD(u->s[i].st->requests, 1);
    PT_STATS_SET(u->s[i].st->active, u->s[i].active);
}

void pt_upstream_release(pt_upstream *u, size_t i)
{
    if (u->s[i].active)
        u->s[i].active--;
    PT_STATS_SET(u->s[i].st->active, u->s[i].active);
}

bool pt_upstream_fail(pt_upstream *u, size_t i, uint64_t now)
{
    pt_up_server *s = &u->s[i];
    uint64_t window = u->cfg->fail_timeout_ms;

    PT_STATS_ADD(s->st->failures, 1);
    /* a backend's only server is never marked down (nginx does the same):
     * with nothing to fail over to, that would only answer every request
     * of the next fail_timeout 503 "no live server" (an application
     * server restarted with a moment of refused connections: 10 s of
     * 503s), where trying it answers each as it can */
    if (u->cfg->max_fails == 0 || u->n == 1)
        return false;
    /* already down (a request that was in flight when it went down) */
    if (s->down_until > now)
        return false;
    if (s->fails == 0 || now < s->fail_start || now - s->fail_start >= window) {
        s->fails = 0;
        s->fail_start = now;
    }
    if (++s->fails < u->cfg->max_fails)
        return false;
    /* down for one fail_timeout (a zero fail_timeout leaves it up) */
    s->down_until = now > UINT64_MAX - window ? UINT64_MAX : now + window;
    PT_STATS_SET(s->st->down_until, s->down_until);
    return true;
}

void pt_upstream_ok(pt_upstream *u, size_t i)
{
    u->s[i].fails = 0;
    u->s[i].fail_start = 0;
}

bool pt_upstream_has_room(const pt_upstream *u, uint64_t now)
{
    bool backup;

    /* the same candidates as pick (without tried), so a queued request is
     * only woken when pick would give it a server */
    if (!candidate_kind(u, now, NULL, &backup))
        return false;
    for (size_t i = 0; i < u->n; i++)
        if (is_candidate(u, i, now, NULL, backup) && has_spare(&u->s[i]))
            return true;
    return false;
}
