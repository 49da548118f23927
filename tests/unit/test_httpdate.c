#include "first.h"
#include "httpdate.h"
#include "tap.h"

/* test_httpdate.c: IMF-fixdate output, strict parsing of the three formats
 * of RFC 9110 §5.6.7, the RFC 850 century rule, and the Date cache. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_1994 ((time_t)784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */

static bool parses_to(const char *s, time_t want)
{
    time_t t = 0;
    return pt_httpdate_parse(s, strlen(s), &t) == 0 && t == want;
}

static bool rejects(const char *s)
{
    time_t t = 12345;
    return pt_httpdate_parse(s, strlen(s), &t) == -1 && t == 12345;
}

/* 2025-06-01 00:00:00 UTC */
#define NOW_2025 ((time_t)1748736000)

static bool parses_at(const char *s, time_t now, time_t want)
{
    time_t t = 0;
    return pt_httpdate_parse_at(s, strlen(s), now, &t) == 0 && t == want;
}

static void test_format(void)
{
    char out[PT_HTTPDATE_LEN + 1];
    pt_httpdate_format(T_1994, out);
    ok(strcmp(out, "Sun, 06 Nov 1994 08:49:37 GMT") == 0, "format RFC 9110 example");
    pt_httpdate_format(0, out);
    ok(strcmp(out, "Thu, 01 Jan 1970 00:00:00 GMT") == 0, "format the epoch");
    pt_httpdate_format(951782400, out);
    ok(strcmp(out, "Tue, 29 Feb 2000 00:00:00 GMT") == 0, "format a leap day");
    pt_httpdate_format(1483228799, out);
    ok(strcmp(out, "Sat, 31 Dec 2016 23:59:59 GMT") == 0, "format end of year");
    pt_httpdate_format((time_t)-1, out);
    ok(strcmp(out, "Wed, 31 Dec 1969 23:59:59 GMT") == 0, "format just before the epoch");
    if (sizeof(time_t) > 4) {
        pt_httpdate_format((time_t)253402300799LL, out);
        ok(strcmp(out, "Fri, 31 Dec 9999 23:59:59 GMT") == 0, "format the last 4-digit second");
        pt_httpdate_format((time_t)253402300800LL, out);
        ok(strcmp(out, "Fri, 31 Dec 9999 23:59:59 GMT") == 0, "year 10000 is clamped to 9999");
        pt_httpdate_format((time_t)INT64_MAX, out);
        ok(strlen(out) == PT_HTTPDATE_LEN && out[28] == 'T', "INT64_MAX still gives 29 bytes");
        pt_httpdate_format((time_t)INT64_MIN, out);
        ok(strcmp(out, "Sat, 01 Jan 0000 00:00:00 GMT") == 0, "INT64_MIN clamps to year 0000");
        pt_httpdate_format((time_t)-62167219200LL, out);
        ok(strcmp(out, "Sat, 01 Jan 0000 00:00:00 GMT") == 0, "format year 0000");
    }
    time_t samples[] = {0, 1, 59, 86399, 86400, T_1994, 951782400, 1700000000, 2147483647};
    int bad = 0;
    for (size_t i = 0; i < PT_ARRAY_LEN(samples); i++) {
        pt_httpdate_format(samples[i], out);
        if (strlen(out) != PT_HTTPDATE_LEN || !parses_to(out, samples[i]))
            bad++;
    }
    ok(bad == 0, "format then parse round-trips %zu samples", PT_ARRAY_LEN(samples));
}

static void test_parse_good(void)
{
    ok(parses_to("Sun, 06 Nov 1994 08:49:37 GMT", T_1994), "parse IMF-fixdate");
    ok(parses_to("Sunday, 06-Nov-94 08:49:37 GMT", T_1994), "parse RFC 850");
    ok(parses_to("Sun Nov  6 08:49:37 1994", T_1994), "parse asctime with SP DIGIT day");
    ok(parses_to("Sun Nov 06 08:49:37 1994", T_1994), "parse asctime with 2DIGIT day");
    ok(parses_to("Thu, 01 Jan 1970 00:00:00 GMT", 0), "parse the epoch (0)");
    ok(parses_to("Wed, 31 Dec 1969 23:59:59 GMT", (time_t)-1),
       "parse 1969-12-31 23:59:59 (-1 is a valid result)");
    ok(parses_to("Tue, 29 Feb 2000 00:00:00 GMT", 951782400), "Feb 29 in a 400-year leap year");
    ok(parses_to("Thu, 29 Feb 2024 12:00:00 GMT", 1709208000), "Feb 29 in a leap year");
    ok(parses_to("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800),
       "leap second 60 accepted (weekday of the :59 day)");
    ok(parses_to("Wednesday, 09-Sep-09 01:46:40 GMT", 1252460800), "RFC 850 Wednesday (longest)");
    ok(parses_to("Fri Dec 31 23:59:59 1999", 946684799), "asctime two-digit day");
    if (sizeof(time_t) > 4)
        ok(parses_to("Mon, 01 Jan 1900 00:00:00 GMT", (time_t)-2208988800LL),
           "parse a date before the epoch (1900)");
    ok(pt_httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMTxyz", 29, &(time_t){0}) == 0,
       "len bounds the input");
}

static void test_parse_bad(void)
{
    ok(rejects(""), "reject empty");
    ok(rejects("garbage"), "reject garbage");
    ok(rejects("Sun, 06 Nov 1994 08:49:37 GMT "), "reject trailing space");
    ok(rejects(" Sun, 06 Nov 1994 08:49:37 GMT"), "reject leading space");
    ok(rejects("Sun, 06 Nov 1994 08:49:37 UTC"), "reject UTC instead of GMT");
    ok(rejects("Sun, 06 Nov 1994 08:49:37 gmt"), "reject lower-case gmt (case-sensitive)");
    ok(rejects("sun, 06 Nov 1994 08:49:37 GMT"), "reject lower-case day name");
    ok(rejects("Sun, 06 nov 1994 08:49:37 GMT"), "reject lower-case month");
    ok(rejects("Sun, 06 NOV 1994 08:49:37 GMT"), "reject upper-case month");
    ok(rejects("Mon, 06 Nov 1994 08:49:37 GMT"), "reject a weekday that does not match");
    ok(rejects("Sux, 06 Nov 1994 08:49:37 GMT"), "reject unknown day name");
    ok(rejects("Sun, 06 Nox 1994 08:49:37 GMT"), "reject unknown month");
    ok(rejects("Sun, 6 Nov 1994 08:49:37 GMT"), "reject one-digit day in IMF-fixdate");
    ok(rejects("Sun,  6 Nov 1994 08:49:37 GMT"), "reject space-padded day in IMF-fixdate");
    ok(rejects("Sun, 06 Nov 94 08:49:37 GMT"), "reject two-digit year in IMF-fixdate");
    ok(rejects("Sun, 06 Nov 1994 08:49:37 +0000"), "reject numeric zone");
    ok(rejects("Sun, 06 Nov 1994 08:49 GMT"), "reject missing seconds");
    ok(rejects("Sun, 06 Nov 1994 8:49:37 GMT"), "reject one-digit hour");
    ok(rejects("Sun, 06 Nov 1994 08.49.37 GMT"), "reject wrong time separators");
    ok(rejects("Sun 06 Nov 1994 08:49:37 GMT"), "reject missing comma");
    ok(rejects("Sun, 06-Nov-1994 08:49:37 GMT"), "reject dashes in IMF-fixdate");
    ok(rejects("Mon, 32 Nov 1994 08:49:37 GMT"), "reject day 32");
    ok(rejects("Thu, 31 Nov 1994 08:49:37 GMT"), "reject Nov 31");
    ok(rejects("Sat, 00 Nov 1994 08:49:37 GMT"), "reject day 00");
    ok(rejects("Mon, 29 Feb 1999 00:00:00 GMT"), "reject Feb 29 in a common year");
    ok(rejects("Thu, 29 Feb 1900 00:00:00 GMT"), "reject Feb 29 1900 (century rule)");
    ok(rejects("Sun, 06 Nov 1994 24:00:00 GMT"), "reject hour 24");
    ok(rejects("Sun, 06 Nov 1994 08:60:00 GMT"), "reject minute 60");
    ok(rejects("Sun, 06 Nov 1994 08:49:61 GMT"), "reject second 61");
    ok(rejects("Sun, 06 Nov 1994 08:-9:37 GMT"), "reject a sign inside a field");
    ok(rejects("Sun, 0x Nov 1994 08:49:37 GMT"), "reject non-digit day");
    ok(rejects("Sun, 06 Nov 19a4 08:49:37 GMT"), "reject non-digit year");
    time_t t = 5;
    ok(pt_httpdate_parse("Sun, 06 Nov 1994 08:49:37 G\0T", 29, &t) == -1 && t == 5,
       "reject embedded NUL");
    ok(pt_httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &t) == -1,
       "reject a truncated length");
    ok(pt_httpdate_parse(NULL, 0, &t) == -1, "reject NULL");

    ok(rejects("Sun, 06-Nov-94 08:49:37 GMT"), "reject RFC 850 with short day name");
    ok(rejects("sunday, 06-Nov-94 08:49:37 GMT"), "reject RFC 850 lower-case day name");
    ok(rejects("Sunday, 06-Nov-1994 08:49:37 GMT"), "reject RFC 850 four-digit year");
    ok(rejects("Sunday, 06 Nov 94 08:49:37 GMT"), "reject RFC 850 without dashes");
    ok(rejects("Sunday, 06-Nov-94 08:49:37 UTC"), "reject RFC 850 without GMT");
    ok(rejects("Sunday, 06-Nov-94 08:49:37 GMT "), "reject RFC 850 with trailing space");
    ok(rejects("Monday, 06-Nov-94 08:49:37 GMT"), "reject RFC 850 wrong weekday");
    ok(rejects("Sundayy, 06-Nov-94 08:49:37 GMT"), "reject RFC 850 unknown day name");
    ok(rejects("Sunday, 6-Nov-94 08:49:37 GMT"), "reject RFC 850 one-digit day");

    ok(rejects("Sun Nov 6 08:49:37 1994"), "reject asctime with a single space before the day");
    ok(rejects("Sun Nov  6 08:49:37 94"), "reject asctime two-digit year");
    ok(rejects("Sun Nov  6 08:49:37 1994 "), "reject asctime trailing space");
    ok(rejects("Sun Nov  6 08:49:37 GMT 1994"), "reject asctime with zone");
    ok(rejects("Sun Nov 6  08:49:37 1994"), "reject asctime misplaced padding");
    ok(rejects("Sun Nov    08:49:37 1994"), "reject asctime with blank day");
    ok(rejects("Mon Nov  6 08:49:37 1994"), "reject asctime wrong weekday");
    ok(rejects("Sun, Nov  6 08:49:37 1994"), "reject asctime with comma");
}

static void test_rfc850_century(void)
{
    ok(parses_at("Sunday, 06-Nov-94 08:49:37 GMT", NOW_2025, T_1994), "'94' in 2025 is 1994");
    ok(parses_at("Sunday, 01-Jun-25 00:00:00 GMT", NOW_2025, NOW_2025), "'25' in 2025 is 2025");
    /* 2075-06-01 is exactly 50 years ahead: not "more than 50", so kept */
    ok(parses_at("Saturday, 01-Jun-75 00:00:00 GMT", NOW_2025, (time_t)3326572800LL),
       "'75' in 2025 is 2075 (50 years ahead)");
    ok(parses_at("Tuesday, 01-Jun-76 00:00:00 GMT", NOW_2025, (time_t)202435200),
       "'76' in 2025 is 1976 (51 years ahead means previous century)");
    ok(parses_at("Saturday, 01-Jan-00 00:00:00 GMT", NOW_2025, (time_t)946684800),
       "'00' in 2025 is 2000");
    ok(parses_at("Sunday, 06-Nov-94 08:49:37 GMT", (time_t)820454400 /* 1996 */, T_1994),
       "'94' in 1996 is 1994");
    ok(parses_at("Thursday, 01-Jan-70 00:00:00 GMT", (time_t)820454400, 0), "'70' in 1996 is 1970");
    if (sizeof(time_t) > 4) {
        /* in 2090, '30' is 40 years ahead (2130), not 60 years back */
        time_t now2090 = (time_t)3786912000LL; /* 2090-01-01 */
        ok(parses_at("Sunday, 01-Jan-30 00:00:00 GMT", now2090, (time_t)5049129600LL),
           "'30' in 2090 is 2130");
        ok(parses_at("Sunday, 01-Jan-90 00:00:00 GMT", now2090, now2090), "'90' in 2090 is 2090");
    }
    ok(pt_httpdate_parse_at("Sunday, 06-Nov-94 08:49:37 GMT", 30, NOW_2025, &(time_t){0}) == 0,
       "parse_at takes the length");
}

static void test_now(void)
{
    time_t before = time(NULL);
    const char *a = pt_httpdate_now();
    time_t after = time(NULL), t = 0;
    ok(a && strlen(a) == PT_HTTPDATE_LEN, "now() is 29 bytes");
    ok(a && pt_httpdate_parse(a, strlen(a), &t) == 0 && t >= before && t <= after,
       "now() parses back to the current time");
    char copy[PT_HTTPDATE_LEN + 1];
    memcpy(copy, a, sizeof(copy));
    const char *b = pt_httpdate_now();
    time_t t2 = 0;
    ok(b && pt_httpdate_parse(b, strlen(b), &t2) == 0 && t2 >= t && t2 <= time(NULL),
       "second call is current too");
    ok(a == b, "now() returns the same cache buffer");
}

/* The hand-written calendar arithmetic agrees with gmtime_r + strftime
 * for every day of 1600..2400 and for random seconds across 0000..9999. */
static void test_format_matches_gmtime(void)
{
    char out[PT_HTTPDATE_LEN + 1], want[64];
    int bad = 0;
    struct tm tm;
    for (int64_t d = -135140; d <= 157067 && bad < 5; d++) {
        time_t t = (time_t)(d * 86400 + (d & 1 ? 86399 : (d % 86400 + 86400) % 86400));
        pt_httpdate_format(t, out);
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (strcmp(out, want) != 0) {
            printf("# %lld: got %s want %s\n", (long long)t, out, want);
            bad++;
        }
    }
    ok(bad == 0, "format = gmtime_r for every day 1600..2400");
    uint64_t x = 88172645463325252ULL;
    bad = 0;
    for (int i = 0; i < 200000 && bad < 5; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* -62167219200 .. 253402300799: years 0000 to 9999 */
        time_t t = (time_t)((int64_t)(x % 315569520000ULL) - 62167219200LL);
        pt_httpdate_format(t, out);
        gmtime_r(&t, &tm);
        snprintf(want, sizeof(want), "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                 &"SunMonTueWedThuFriSat"[tm.tm_wday * 3], tm.tm_mday,
                 &"JanFebMarAprMayJunJulAugSepOctNovDec"[tm.tm_mon * 3], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (strcmp(out, want) != 0) {
            printf("# %lld: got %s want %s\n", (long long)t, out, want);
            bad++;
        }
    }
    ok(bad == 0, "format = gmtime_r for 200000 random seconds of 0000..9999");
}

int main(void)
{
    test_format();
    test_format_matches_gmtime();
    test_parse_good();
    test_parse_bad();
    test_rfc850_century();
    test_now();
    return tap_done();
}
