/* test_errlines.c: a program's stderr as log lines: LF and CRLF endings,
 * overlong lines in pieces, the per-second cap, and the dropped count
 * reported at the next window and when the stream ends. */
#include "first.h"
#include "errlines.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"

static char got[64][PT_ERRLINES_LINE + 8];
static unsigned ngot, dropped_total, drop_reports;

static void emit(void *ctx, const char *text, unsigned dropped)
{
    (void)ctx;
    if (!text) {
        dropped_total += dropped;
        drop_reports++;
        return;
    }
    if (ngot < PT_ARRAY_LEN(got))
        snprintf(got[ngot], sizeof(got[0]), "%s", text);
    ngot++;
}

static void reset(pt_errlines *e)
{
    memset(e, 0, sizeof(*e));
    ngot = dropped_total = drop_reports = 0;
}

static void test_lines_end_at_lf_and_lose_a_cr(void)
{
    pt_errlines e;
    reset(&e);
    pt_errlines_feed(&e, 5000, "one\ntw", 6, emit, NULL);
    pt_errlines_feed(&e, 5000, "o\r\nthree", 8, emit, NULL);
    ok(ngot == 2 && !strcmp(got[0], "one") && !strcmp(got[1], "two"),
       "a line split across reads is one line, its CR dropped");
    pt_errlines_flush(&e, 5000, emit, NULL);
    ok(ngot == 3 && !strcmp(got[2], "three") && drop_reports == 0,
       "the unterminated tail goes out when the stream ends");
}

static void test_an_overlong_line_goes_out_in_pieces(void)
{
    pt_errlines e;
    reset(&e);
    char big[PT_ERRLINES_LINE * 2 + 10];
    memset(big, 'x', sizeof(big));
    pt_errlines_feed(&e, 5000, big, sizeof(big), emit, NULL);
    pt_errlines_flush(&e, 5000, emit, NULL);
    ok(ngot == 3 && strlen(got[0]) == PT_ERRLINES_LINE && strlen(got[2]) == 10,
       "2 full pieces and the rest");
}

static void test_control_bytes_are_escaped(void)
{
    pt_errlines e;
    reset(&e);
    pt_errlines_feed(&e, 5000, "a\033[31mb\n", 9, emit, NULL);
    ok(ngot == 1 && strchr(got[0], '\033') == NULL, "no raw ESC reaches the log");
}

static void test_more_than_the_cap_a_second_is_counted_not_logged(void)
{
    pt_errlines e;
    reset(&e);
    for (int i = 0; i < 500; i++)
        pt_errlines_feed(&e, 5000 + (uint64_t)i, "line\n", 5, emit, NULL);
    ok(ngot == PT_ERRLINES_PER_SEC, "%u lines logged in the first second", ngot);
    ok(drop_reports == 0, "the count waits for the window's end");
    pt_errlines_flush(&e, 5500, emit, NULL);
    ok(drop_reports == 1 && dropped_total == 500 - PT_ERRLINES_PER_SEC,
       "the end of the stream reports the %u dropped lines", dropped_total);
    pt_errlines_flush(&e, 5600, emit, NULL);
    ok(drop_reports == 1, "a second flush reports nothing new");
}

static void test_a_new_window_reports_and_logs_again(void)
{
    pt_errlines e;
    reset(&e);
    for (int i = 0; i < 60; i++)
        pt_errlines_feed(&e, 5000, "a\n", 2, emit, NULL);
    pt_errlines_feed(&e, 6000, "b\n", 2, emit, NULL);
    ok(drop_reports == 1 && dropped_total == 10, "10 dropped reported at the next second");
    ok(ngot == PT_ERRLINES_PER_SEC + 1 && !strcmp(got[PT_ERRLINES_PER_SEC], "b"),
       "the next second logs again");
}

int main(void)
{
    test_lines_end_at_lf_and_lose_a_cr();
    test_an_overlong_line_goes_out_in_pieces();
    test_control_bytes_are_escaped();
    test_more_than_the_cap_a_second_is_counted_not_logged();
    test_a_new_window_reports_and_logs_again();
    return tap_done();
}
