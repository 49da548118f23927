/* test_limit.c: the client-limit module: the rate parser, the token-bucket
 * (GCRA) arithmetic, and the shared table: limit_conn counts, limit_req
 * buckets, a full set, eviction, the reset after a lost worker, and counts
 * kept right by several processes at once. */
#include "first.h"
#include "limit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

#define SEC 1000000000ULL

static void addr4(unsigned char a[16], unsigned last)
{
    memset(a, 0, 16);
    a[10] = a[11] = 0xff;
    a[12] = 127;
    a[15] = (unsigned char)last;
}

static void test_parse_rate(void)
{
    uint64_t v = 0;
    ok(pt_limit_parse_rate("10r/s", &v) == 0 && v == SEC / 10, "10r/s is 100ms apart");
    ok(pt_limit_parse_rate("1r/m", &v) == 0 && v == 60 * SEC, "1r/m is 60s apart");
    ok(pt_limit_parse_rate("3r/s", &v) == 0 && v == 333333333, "3r/s rounds down to whole ns");
    ok(pt_limit_parse_rate("1000000r/s", &v) == 0 && v == 1000, "1000000r/s is the maximum");
    errno = 0;
    ok(pt_limit_parse_rate("0r/s", &v) < 0 && errno == ERANGE, "0r/s is out of range");
    errno = 0;
    ok(pt_limit_parse_rate("1000001r/s", &v) < 0 && errno == ERANGE,
       "more than 1000000 is out of range");
    static const char *bad[] = {"",      "r/s",    "10",     "10/s",   "10r/h", "10r/",
                                "-1r/s", "10 r/s", "10r/ss", "1.5r/s", "10R/s", "r/m"};
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        errno = 0;
        ok(pt_limit_parse_rate(bad[i], &v) < 0 && errno == EINVAL, "'%s' is not a rate", bad[i]);
    }
}

static void test_gcra(void)
{
    uint64_t tat = 0, wait = 0, now = 1000 * SEC, iv = 60 * SEC;
    int admitted = 0;
    /* burst 3: four at once, the fifth waits one whole interval */
    for (int i = 0; i < 10; i++)
        admitted += pt_limit_gcra(&tat, now, iv, 3, &wait);
    ok(admitted == 4, "burst 3 admits 4 requests at once (got %d)", admitted);
    ok(wait == iv, "the next is admitted one interval later (wait %llu)", (unsigned long long)wait);
    ok(!pt_limit_gcra(&tat, now + iv - 1, iv, 3, &wait) && wait == 1,
       "one ns early: still refused, 1ns to go");
    ok(pt_limit_gcra(&tat, now + iv, iv, 3, &wait), "after one interval one more is admitted");
    ok(!pt_limit_gcra(&tat, now + iv, iv, 3, &wait), "but only one");
    /* a refusal does not cost anything: the bucket refills in 4 intervals */
    ok(pt_limit_gcra(&tat, now + 5 * iv, iv, 3, &wait), "refilled after waiting");
    admitted = 1;
    for (int i = 0; i < 10; i++)
        admitted += pt_limit_gcra(&tat, now + 5 * iv, iv, 3, &wait);
    ok(admitted == 4, "a full bucket again holds 4 (got %d)", admitted);

    /* burst 0: exactly one per interval, evenly */
    tat = 0;
    admitted = 0;
    for (uint64_t t = 0; t < 10 * SEC; t += SEC / 100)
        admitted += pt_limit_gcra(&tat, now + t, SEC, 0, &wait);
    ok(admitted == 10, "1r/s burst 0 over 10s admits 10 (got %d)", admitted);

    /* the steady rate holds with a burst, once the burst is spent */
    tat = 0;
    admitted = 0;
    for (uint64_t t = 0; t < 10 * SEC; t += SEC / 1000)
        admitted += pt_limit_gcra(&tat, now + t, SEC / 10, 5, &wait);
    ok(admitted == 100 + 5, "10r/s burst 5 over 10s admits 105 (got %d)", admitted);
}

static void test_conn(void)
{
    pt_limit_table *t = pt_limit_table_new(16);
    unsigned char a[16], b[16];
    pt_limit_hold h[4];
    memset(h, 0, sizeof(h));
    ok(t != NULL, "table mapped");
    if (!t)
        return;
    ok(pt_limit_table_entries(t) == 16, "16 entries");
    addr4(a, 1);
    addr4(b, 2);
    ok(pt_limit_conn_acquire(t, 0, 2, a, &h[0]) == PT_LIMIT_OK, "first of 2 admitted");
    ok(pt_limit_conn_acquire(t, 0, 2, a, &h[1]) == PT_LIMIT_OK, "second of 2 admitted");
    ok(pt_limit_conn_acquire(t, 0, 2, a, &h[2]) == PT_LIMIT_OVER, "third refused");
    ok(pt_limit_conn_acquire(t, 0, 2, b, &h[2]) == PT_LIMIT_OK, "another address is counted alone");
    ok(pt_limit_conn_acquire(t, 1, 1, a, &h[3]) == PT_LIMIT_OK, "another zone is counted alone");
    ok(pt_limit_conn_count(t, 0, a) == 2, "count 2");
    pt_limit_conn_release(&h[0]);
    ok(h[0].t == NULL, "a released hold is cleared");
    pt_limit_conn_release(&h[0]);
    ok(pt_limit_conn_count(t, 0, a) == 1, "released once, however often called");
    ok(pt_limit_conn_acquire(t, 0, 2, a, &h[0]) == PT_LIMIT_OK, "admitted again after a release");
    for (int i = 0; i < 4; i++)
        pt_limit_conn_release(&h[i]);
    ok(pt_limit_conn_count(t, 0, a) == 0 && pt_limit_conn_count(t, 0, b) == 0 &&
           pt_limit_conn_count(t, 1, a) == 0,
       "all counts back to 0");

    /* a full table: 16 addresses in use, the 17th finds no entry */
    pt_limit_hold many[17];
    memset(many, 0, sizeof(many));
    int okc = 0;
    for (unsigned i = 0; i < 16; i++) {
        addr4(a, 10 + i);
        okc += pt_limit_conn_acquire(t, 0, 1, a, &many[i]) == PT_LIMIT_OK;
    }
    ok(okc == 16, "16 addresses fill 16 entries");
    addr4(a, 100);
    ok(pt_limit_conn_acquire(t, 0, 1, a, &many[16]) == PT_LIMIT_FULL, "the 17th: table full");
    uint64_t wait;
    ok(pt_limit_req(t, 1, SEC, 0, a, pt_limit_now_ns(), &wait) == PT_LIMIT_FULL,
       "limit_req cannot evict limit_conn counts in use");
    pt_limit_conn_release(&many[3]);
    ok(pt_limit_conn_acquire(t, 0, 1, a, &many[16]) == PT_LIMIT_OK,
       "a released entry is taken by a new address");

    /* a lost worker: the master forgets every count; old holds are void */
    pt_limit_conn_reset(t);
    addr4(a, 10);
    ok(pt_limit_conn_count(t, 0, a) == 0, "reset: counts gone");
    pt_limit_hold fresh = {0};
    ok(pt_limit_conn_acquire(t, 0, 1, a, &fresh) == PT_LIMIT_OK, "admitted after the reset");
    for (unsigned i = 0; i < 17; i++)
        pt_limit_conn_release(&many[i]);
    ok(pt_limit_conn_count(t, 0, a) == 1, "releases of holds from before the reset are ignored");
    pt_limit_conn_release(&fresh);
    ok(pt_limit_conn_count(t, 0, a) == 0, "the new hold is released normally");
    pt_limit_table_free(t);
}

static void test_req(void)
{
    pt_limit_table *t = pt_limit_table_new(16);
    unsigned char a[16];
    uint64_t now = pt_limit_now_ns(), wait = 0;
    int n = 0;
    if (!t) {
        ok(0, "table mapped");
        return;
    }
    addr4(a, 1);
    for (int i = 0; i < 10; i++)
        n += pt_limit_req(t, 0, 60 * SEC, 3, a, now, &wait) == PT_LIMIT_OK;
    ok(n == 4, "1r/m burst 3: 4 admitted (got %d)", n);
    ok(pt_limit_req(t, 0, 60 * SEC, 3, a, now, &wait) == PT_LIMIT_OVER && wait == 60 * SEC,
       "then refused for 60s");
    ok(pt_limit_req(t, 0, 60 * SEC, 3, a, now + 60 * SEC, &wait) == PT_LIMIT_OK,
       "one more after 60s");

    /* 16 other addresses: the set is full of live buckets; the one closest
     * to expiry makes room (that address starts afresh) */
    for (unsigned i = 0; i < 15; i++) {
        addr4(a, 10 + i);
        ok(pt_limit_req(t, 0, 60 * SEC, 0, a, now + i + 1, &wait) == PT_LIMIT_OK,
           "address %u admitted", 10 + i);
    }
    addr4(a, 200);
    ok(pt_limit_req(t, 0, 60 * SEC, 0, a, now + 100, &wait) == PT_LIMIT_OK,
       "a 17th address is admitted (evicts the oldest bucket)");
    addr4(a, 10);
    ok(pt_limit_req(t, 0, 60 * SEC, 0, a, now + 101, &wait) == PT_LIMIT_OK,
       "the evicted address (the oldest) starts afresh");
    addr4(a, 24);
    ok(pt_limit_req(t, 0, 60 * SEC, 0, a, now + 102, &wait) == PT_LIMIT_OVER,
       "a recent address is still limited");
    /* expired buckets are free entries */
    addr4(a, 1);
    ok(pt_limit_req(t, 0, 60 * SEC, 0, a, now + 3600 * SEC, &wait) == PT_LIMIT_OK,
       "an hour later everything has expired");
    pt_limit_table_free(t);
}

/* Four processes take and give back counts of one address as fast as they
 * can, never more than max at once; at the end the count is 0. */
static void test_processes(void)
{
    enum { NPROC = 4, ROUNDS = 20000, MAX = 3 };
    pt_limit_table *t = pt_limit_table_new(1024);
    pid_t pids[NPROC];
    unsigned char a[16];
    int bad = 0;
    if (!t) {
        ok(0, "table mapped");
        return;
    }
    addr4(a, 7);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            int over = 0;
            for (int i = 0; i < ROUNDS; i++) {
                pt_limit_hold h = {0};
                pt_limit_rc rc = pt_limit_conn_acquire(t, 0, MAX, a, &h);
                if (rc == PT_LIMIT_OK) {
                    if (pt_limit_conn_count(t, 0, a) > MAX)
                        over++;
                    pt_limit_conn_release(&h);
                } else if (rc == PT_LIMIT_FULL) {
                    over++;
                }
            }
            _exit(over ? 1 : 0);
        }
    }
    for (int p = 0; p < NPROC; p++) {
        int st = 0;
        if (pids[p] < 0 || waitpid(pids[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            bad++;
    }
    ok(bad == 0, "%d processes never saw more than %d at once", NPROC, MAX);
    ok(pt_limit_conn_count(t, 0, a) == 0, "the count is back to 0 (%u)",
       pt_limit_conn_count(t, 0, a));

    /* limit_req across processes: each takes one token from a 1r/m burst 9
     * bucket; exactly 10 are admitted in all */
    int admitted = 0;
    uint64_t now = pt_limit_now_ns();
    for (int p = 0; p < 20; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            uint64_t w;
            _exit(pt_limit_req(t, 5, 60 * SEC, 9, a, now, &w) == PT_LIMIT_OK ? 0 : 1);
        }
        int st = 0;
        if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st))
            admitted += WEXITSTATUS(st) == 0;
    }
    ok(admitted == 10, "20 processes share one bucket: 10 admitted (got %d)", admitted);
    pt_limit_table_free(t);
}

/* A process that dies holding a set's lock: the next one still gets in. */
static void test_dead_owner(void)
{
    pt_limit_table *t = pt_limit_table_new(16);
    unsigned char a[16];
    pt_limit_hold h = {0};
    if (!t) {
        ok(0, "table mapped");
        return;
    }
    addr4(a, 9);
    pid_t pid = fork();
    if (pid == 0) {
        /* take the set's lock and die with it */
        pt_limit_test_lock(t, 0, a);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    ok(pt_limit_conn_acquire(t, 0, 1, a, &h) == PT_LIMIT_OK,
       "a lock left by a dead process is recovered");
    pt_limit_conn_release(&h);
    pt_limit_table_free(t);
}

int main(void)
{
    test_parse_rate();
    test_gcra();
    test_conn();
    test_req();
    test_processes();
    test_dead_owner();
    return tap_done();
}
