#include "first.h"
#include "upstream.h"

/* test_upstream.c: server choice and passive health, on hand-built backends
 * and a fake millisecond clock: smooth WRR order and proportions, least_conn,
 * tried[] skipping, backups, per-worker caps, FULL vs NONE, down/up. */

#include "tap.h"

#include <stdlib.h>

static pt_fcgi_server srv[24];
static pt_backend be;
static pt_upstream up;

/* A backend of n servers with the given weights (a, b, c, ...), round
 * robin, max_fails 1 within 10 s, no caps, no backups. */
static void setup(size_t n, const uint32_t *weights, pt_balance bal)
{
    static char names[24][2];

    memset(srv, 0, sizeof(srv));
    memset(&be, 0, sizeof(be));
    for (size_t i = 0; i < n; i++) {
        names[i][0] = (char)('a' + i);
        srv[i].address = names[i];
        srv[i].weight = weights ? weights[i] : 1;
    }
    be.name = "test";
    be.servers = srv;
    be.nservers = n;
    be.balance = bal;
    be.max_fails = 1;
    be.fail_timeout_ms = 10000;
}

static void start(unsigned nworkers)
{
    if (pt_upstream_init(&up, &be, nworkers) != 0)
        abort();
}

/* Picks as letters ('a' + index, '-' NONE, '+' FULL), acquiring and
 * releasing around each so active counts stay 0 unless hold is set. */
static const char *picks(size_t count, uint64_t now, const bool *tried, bool hold)
{
    static char s[1024];
    size_t k;

    for (k = 0; k < count && k + 1 < sizeof(s); k++) {
        int i = pt_upstream_pick(&up, now, tried);
        s[k] = i == PT_UP_NONE ? '-' : i == PT_UP_FULL ? '+' : (char)('a' + i);
        if (i >= 0 && hold)
            pt_upstream_acquire(&up, (size_t)i);
    }
    s[k] = '\0';
    return s;
}

#define ok_picks(got, want, ...) ok(strcmp((got), (want)) == 0, __VA_ARGS__)

static void test_wrr(void)
{
    static const uint32_t w511[] = {5, 1, 1};
    size_t count[3] = {0};

    setup(3, w511, PT_BAL_ROUND_ROBIN);
    start(1);
    ok_picks(picks(7, 0, NULL, false), "aabacaa", "wrr_5_1_1_smooth_order");
    ok_picks(picks(7, 0, NULL, false), "aabacaa", "wrr_5_1_1_order_repeats");
    for (int k = 0; k < 700; k++)
        count[pt_upstream_pick(&up, 0, NULL)]++;
    ok(count[0] == 500 && count[1] == 100 && count[2] == 100, "wrr_5_1_1_exact_proportions_700");
    pt_upstream_free(&up);

    setup(3, NULL, PT_BAL_ROUND_ROBIN);
    start(1);
    ok_picks(picks(6, 0, NULL, false), "abcabc", "wrr_equal_weights_rotate");
    pt_upstream_free(&up);

    static const uint32_t w31[] = {3, 1};
    setup(2, w31, PT_BAL_ROUND_ROBIN);
    start(1);
    ok_picks(picks(8, 0, NULL, false), "aabaaaba", "wrr_3_1_spreads_the_light_server");
    pt_upstream_free(&up);

    setup(20, NULL, PT_BAL_ROUND_ROBIN);
    start(1);
    ok_picks(picks(40, 0, NULL, false), "abcdefghijklmnopqrstabcdefghijklmnopqrst",
             "wrr_twenty_servers_rotate");
    pt_upstream_free(&up);

    /* a server at its cap sits out without disturbing the others' order */
    setup(3, NULL, PT_BAL_ROUND_ROBIN);
    srv[0].max_conns = 1;
    start(1);
    pt_upstream_acquire(&up, 0);
    ok_picks(picks(4, 0, NULL, false), "bcbc", "wrr_skips_server_at_cap");
    pt_upstream_release(&up, 0);
    ok(strchr(picks(3, 0, NULL, false), 'a') != NULL, "wrr_server_back_under_cap");
    pt_upstream_free(&up);
}

static void test_least_conn(void)
{
    setup(2, NULL, PT_BAL_LEAST_CONN);
    start(1);
    ok_picks(picks(4, 0, NULL, false), "abab", "lc_equal_idle_servers_alternate");
    picks(4, 0, NULL, true);
    ok(up.s[0].active == 2 && up.s[1].active == 2, "lc_fills_evenly");
    /* active a=2, b=2 */
    pt_upstream_release(&up, 1);
    ok_picks(picks(1, 0, NULL, false), "b", "lc_picks_least_active");
    pt_upstream_release(&up, 0);
    pt_upstream_release(&up, 0);
    ok_picks(picks(3, 0, NULL, false), "aaa", "lc_stays_on_least_active");
    ok(up.s[0].active == 0 && up.s[1].active == 1, "lc_acquire_release_counts");
    pt_upstream_release(&up, 0); /* never below zero */
    ok(up.s[0].active == 0, "lc_release_does_not_underflow");
    pt_upstream_free(&up);

    /* active / weight: a (weight 2) with 2 ties b (weight 1) with 1 */
    static const uint32_t w21[] = {2, 1};
    setup(2, w21, PT_BAL_LEAST_CONN);
    start(1);
    pt_upstream_acquire(&up, 0);
    pt_upstream_acquire(&up, 1);
    ok_picks(picks(1, 0, NULL, false), "a", "lc_divides_by_weight");
    pt_upstream_acquire(&up, 0);
    /* 2/2 == 1/1: the tie is broken round-robin by weight */
    ok_picks(picks(3, 0, NULL, false), "aba", "lc_ties_weighted_round_robin");
    pt_upstream_free(&up);

    /* tried servers are skipped even when least loaded */
    setup(3, NULL, PT_BAL_LEAST_CONN);
    start(1);
    pt_upstream_acquire(&up, 1);
    pt_upstream_acquire(&up, 2);
    pt_upstream_acquire(&up, 2);
    bool tried[3] = {true, false, false};
    ok_picks(picks(1, 0, tried, false), "b", "lc_skips_tried");
    pt_upstream_free(&up);
}

static void test_tried(void)
{
    bool tried[3] = {false, true, false};

    setup(3, NULL, PT_BAL_ROUND_ROBIN);
    start(1);
    ok_picks(picks(4, 0, tried, false), "acac", "tried_server_skipped");
    tried[0] = tried[2] = true;
    ok_picks(picks(2, 0, tried, false), "--", "all_tried_is_none");
    ok_picks(picks(3, 0, NULL, false), "abc", "tried_null_means_none_tried");
    pt_upstream_free(&up);
}

static void test_backup(void)
{
    bool tried[3] = {true, true, false};

    setup(3, NULL, PT_BAL_ROUND_ROBIN);
    srv[2].backup = true;
    start(1);
    ok_picks(picks(6, 0, NULL, false), "ababab", "backup_unused_while_primaries_up");
    ok_picks(picks(2, 0, tried, false), "cc", "backup_when_primaries_tried");
    ok(pt_upstream_fail(&up, 0, 1000), "fail_marks_a_down");
    ok_picks(picks(3, 1000, NULL, false), "bbb", "backup_unused_while_one_primary_up");
    ok(pt_upstream_fail(&up, 1, 1000), "fail_marks_b_down");
    ok_picks(picks(2, 1000, NULL, false), "cc", "backup_when_primaries_down");
    ok(pt_upstream_has_room(&up, 1000), "has_room_with_backup");
    ok(pt_upstream_fail(&up, 2, 1000), "fail_marks_backup_down");
    ok_picks(picks(1, 1000, NULL, false), "-", "none_when_backup_down_too");
    ok(!pt_upstream_has_room(&up, 1000), "no_room_when_all_down");
    ok_picks(picks(2, 11000, NULL, false), "ab", "primaries_back_after_fail_timeout");
    pt_upstream_free(&up);

    /* primaries up but full: queue (FULL), the backup is not a spill-over */
    setup(2, NULL, PT_BAL_ROUND_ROBIN);
    srv[0].max_conns = 1;
    srv[1].backup = true;
    start(1);
    pt_upstream_acquire(&up, 0);
    ok_picks(picks(1, 0, NULL, false), "+", "full_primary_does_not_spill_to_backup");
    ok(!pt_upstream_has_room(&up, 0), "has_room_agrees_with_pick_on_backup");
    pt_upstream_free(&up);

    /* several backups take turns */
    setup(3, NULL, PT_BAL_ROUND_ROBIN);
    srv[1].backup = srv[2].backup = true;
    start(1);
    pt_upstream_fail(&up, 0, 0);
    ok_picks(picks(4, 5, NULL, false), "bcbc", "backups_rotate");
    pt_upstream_free(&up);
}

static void test_caps(void)
{
    static const struct {
        uint32_t max_conns;
        unsigned workers, cap;
    } cases[] = {{5, 2, 3},
                 {4, 2, 2},
                 {1, 8, 1},
                 {0, 4, 0},
                 {100000, 3, 33334},
                 {7, 1, 7},
                 {7, 0, 7} /* 0 workers: as 1 */,
                 {9, 9, 1}};

    for (size_t k = 0; k < PT_ARRAY_LEN(cases); k++) {
        setup(1, NULL, PT_BAL_ROUND_ROBIN);
        srv[0].max_conns = cases[k].max_conns;
        start(cases[k].workers);
        ok(up.n == 1 && up.s[0].cap == cases[k].cap && up.s[0].cfg == &srv[0],
           "cap_%u_over_%u_workers_is_%u", cases[k].max_conns, cases[k].workers, cases[k].cap);
        pt_upstream_free(&up);
    }

    setup(2, NULL, PT_BAL_ROUND_ROBIN);
    srv[0].max_conns = 3;
    srv[1].max_conns = 1;
    start(2); /* caps 2 and 1 */
    ok_picks(picks(4, 0, NULL, true), "aba+", "full_when_every_server_at_cap");
    ok(!pt_upstream_has_room(&up, 0), "no_room_when_full");
    ok(up.s[0].active == 2 && up.s[1].active == 1, "caps_respected");
    pt_upstream_release(&up, 1);
    ok(pt_upstream_has_room(&up, 0), "room_after_release");
    ok_picks(picks(2, 0, NULL, true), "b+", "freed_slot_is_used");
    /* FULL is not NONE: a full server that is also down makes it NONE */
    pt_upstream_fail(&up, 0, 0);
    pt_upstream_fail(&up, 1, 0);
    ok_picks(picks(1, 0, NULL, false), "-", "none_beats_full_when_down");
    pt_upstream_free(&up);
}

static void test_health(void)
{
    setup(2, NULL, PT_BAL_ROUND_ROBIN);
    be.max_fails = 3;
    be.fail_timeout_ms = 10000;
    start(1);
    ok(!pt_upstream_fail(&up, 0, 1000) && !pt_upstream_fail(&up, 0, 2000),
       "fail_below_max_fails_keeps_up");
    ok_picks(picks(2, 2000, NULL, false), "ab", "still_picked_below_max_fails");
    /* the window opened at 1000 closes at 11000: the count starts over */
    ok(!pt_upstream_fail(&up, 0, 11000), "fail_window_expiry_resets_count");
    ok(up.s[0].fails == 1 && up.s[0].fail_start == 11000, "new_window_opens");
    ok(!pt_upstream_fail(&up, 0, 12000), "second_fail_in_new_window");
    ok(pt_upstream_fail(&up, 0, 20999), "third_fail_in_window_marks_down");
    ok(up.s[0].down_until == 30999, "down_for_fail_timeout");
    ok(!pt_upstream_fail(&up, 0, 21000), "fail_while_down_does_not_mark_again");
    ok(up.s[0].down_until == 30999, "fail_while_down_keeps_down_time");
    ok_picks(picks(3, 25000, NULL, false), "bbb", "down_server_not_picked");
    ok(pt_upstream_has_room(&up, 25000), "room_on_the_other_server");
    ok_picks(picks(1, 30998, NULL, false), "b", "down_until_the_last_ms");
    ok(strchr(picks(2, 30999, NULL, false), 'a') != NULL, "up_again_at_down_until");
    ok(up.s[0].down_until == 0 && up.s[0].fails == 0, "revived_server_fail_count_restarts");
    ok(!pt_upstream_fail(&up, 0, 31000), "revived_needs_max_fails_again");

    /* a success resets the count */
    ok(!pt_upstream_fail(&up, 1, 40000) && !pt_upstream_fail(&up, 1, 40001), "two_fails_on_b");
    pt_upstream_ok(&up, 1);
    ok(up.s[1].fails == 0, "ok_resets_fail_count");
    ok(!pt_upstream_fail(&up, 1, 40002) && !pt_upstream_fail(&up, 1, 40003),
       "after_ok_two_more_fails_keep_up");
    ok(pt_upstream_fail(&up, 1, 40004), "third_consecutive_fail_marks_down");
    pt_upstream_free(&up);

    /* max_fails 0: never down */
    setup(1, NULL, PT_BAL_ROUND_ROBIN);
    be.max_fails = 0;
    start(1);
    bool marked = false;
    for (int k = 0; k < 100; k++)
        marked |= pt_upstream_fail(&up, 0, (uint64_t)k);
    ok(!marked && up.s[0].down_until == 0, "max_fails_0_never_marks_down");
    ok_picks(picks(1, 100, NULL, false), "a", "max_fails_0_still_picked");
    pt_upstream_free(&up);

    /* max_fails 1: the first failure marks down; both gone is NONE */
    setup(2, NULL, PT_BAL_ROUND_ROBIN);
    start(1);
    ok(pt_upstream_fail(&up, 0, 500), "max_fails_1_marks_down_at_once");
    ok(pt_upstream_fail(&up, 1, 500), "max_fails_1_marks_the_other_down");
    ok_picks(picks(1, 600, NULL, false), "-", "every_server_down_is_none");
    ok(!pt_upstream_has_room(&up, 600) && pt_upstream_has_room(&up, 10500),
       "has_room_follows_the_clock");
    ok(strchr(picks(2, 10500, NULL, false), 'a') != NULL, "servers_back");
    pt_upstream_free(&up);

    /* a backend's only server is never marked down: it is always tried */
    setup(1, NULL, PT_BAL_ROUND_ROBIN);
    start(1);
    marked = false;
    for (int k = 0; k < 10; k++)
        marked |= pt_upstream_fail(&up, 0, 500 + (uint64_t)k);
    ok(!marked && up.s[0].down_until == 0, "single_server_never_marked_down");
    ok_picks(picks(1, 600, NULL, false), "a", "single_server_still_picked");
    pt_upstream_free(&up);
}

int main(void)
{
    test_wrr();
    test_least_conn();
    test_tried();
    test_backup();
    test_caps();
    test_health();
    return tap_done();
}
