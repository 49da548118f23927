#include "first.h"
#include "httpdate.h"

/* httpdate.c: owns HTTP-date text (RFC 9110 §5.6.7): formatting as
 * IMF-fixdate, strict parsing of the three accepted formats, and the cached
 * Date header value. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char wday_short[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wday_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char month_name[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian, the
 * era arithmetic of "days_from_civil" run backwards): no gmtime_r, whose
 * time-zone lock and normalisation cost more than the rest of a response. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11], from March */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void pt_httpdate_format(time_t t, char out[PT_HTTPDATE_LEN + 1])
{
    /* IMF-fixdate has a 4DIGIT year: clamp anything outside 0000..9999 so
     * the output is always exactly 29 bytes. */
    static const int64_t min_t = -62167219200LL; /* 0000-01-01 00:00:00 */
    static const int64_t max_t = 253402300799LL; /* 9999-12-31 23:59:59 */
    int64_t s = (int64_t)t;
    if (s < min_t)
        s = min_t;
    if (s > max_t)
        s = max_t;
    int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
    int64_t sec = s - days * 86400;
    int64_t year;
    int mon, mday;
    civil_from_days(days, &year, &mon, &mday);
    int wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    memcpy(out, wday_short[wday], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, mday);
    out[7] = ' ';
    memcpy(out + 8, month_name[mon - 1], 3);
    out[11] = ' ';
    put2(out + 12, (int)(year / 100));
    put2(out + 14, (int)(year % 100));
    out[16] = ' ';
    put2(out + 17, (int)(sec / 3600));
    out[19] = ':';
    put2(out + 20, (int)(sec / 60 % 60));
    out[22] = ':';
    put2(out + 23, (int)(sec % 60));
    memcpy(out + 25, " GMT", 5);
}

/* n ASCII digits at s, no sign, no spaces. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Day and month names are case-sensitive (%s"..." in RFC 9110 §5.6.7). */
static int find_name(const char *s, size_t n, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == n && memcmp(s, names[i], n) == 0)
            return (int)i;
    return -1;
}

static int find_short(const char *s, const char (*names)[4], size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (memcmp(s, names[i], 3) == 0)
            return (int)i;
    return -1;
}

/* "HH:MM:SS"; second 60 is a leap second (RFC 9110 §5.6.7). */
static int parse_time(const char *s, struct tm *tm)
{
    if (s[2] != ':' || s[5] != ':')
        return -1;
    tm->tm_hour = digits(s, 2);
    tm->tm_min = digits(s + 3, 2);
    tm->tm_sec = digits(s + 6, 2);
    if (tm->tm_hour < 0 || tm->tm_hour > 23 || tm->tm_min < 0 || tm->tm_min > 59 ||
        tm->tm_sec < 0 || tm->tm_sec > 60)
        return -1;
    return 0;
}

static bool is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Validates the calendar date and the weekday, which RFC 5322 §3.3 requires
 * to be the day implied by the date, then converts with timegm. */
static int finish(struct tm *tm, int wday, time_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long year = (long)tm->tm_year + 1900;
    int max = mdays[tm->tm_mon] + (tm->tm_mon == 1 && is_leap(year));
    if (tm->tm_mday < 1 || tm->tm_mday > max)
        return -1;
    /* convert 23:59:60 as :59 so normalisation cannot move the weekday */
    int leap = tm->tm_sec == 60;
    tm->tm_sec -= leap;
    tm->tm_isdst = 0;
    tm->tm_wday = -1;
    errno = 0;
    time_t t = timegm(tm);
    /* -1 is also 1969-12-31 23:59:59; only errno tells an overflow apart */
    if (t == (time_t)-1 && errno == EOVERFLOW)
        return -1;
    if (tm->tm_wday != wday)
        return -1;
    *out = t + leap;
    return 0;
}

int pt_httpdate_parse_at(const char *s, size_t len, time_t now, time_t *out)
{
    struct tm tm = {0};
    int wday;

    if (!s || len < 24)
        return -1;
    if (len == PT_HTTPDATE_LEN && s[3] == ',') {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        if ((wday = find_short(s, wday_short, 7)) < 0 || s[4] != ' ' || s[7] != ' ' ||
            s[11] != ' ' || s[16] != ' ' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
            return -1;
        tm.tm_mday = digits(s + 5, 2);
        tm.tm_mon = find_short(s + 8, month_name, 12);
        int year = digits(s + 12, 4);
        if (tm.tm_mday < 0 || tm.tm_mon < 0 || year < 0 || parse_time(s + 17, &tm) < 0)
            return -1;
        tm.tm_year = year - 1900;
        return finish(&tm, wday, out);
    }
    if (len == 24 && s[3] == ' ') {
        /* asctime: "Sun Nov  6 08:49:37 1994"; the day is 2DIGIT or SP DIGIT */
        if ((wday = find_short(s, wday_short, 7)) < 0 || s[7] != ' ' || s[10] != ' ' ||
            s[19] != ' ')
            return -1;
        tm.tm_mon = find_short(s + 4, month_name, 12);
        tm.tm_mday = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
        int year = digits(s + 20, 4);
        if (tm.tm_mday < 0 || tm.tm_mon < 0 || year < 0 || parse_time(s + 11, &tm) < 0)
            return -1;
        tm.tm_year = year - 1900;
        return finish(&tm, wday, out);
    }
    /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
    const char *comma = memchr(s, ',', PT_MIN(len, (size_t)10));
    if (!comma)
        return -1;
    size_t nl = (size_t)(comma - s);
    if ((wday = find_name(s, nl, wday_long, 7)) < 0 || len != nl + 24)
        return -1;
    const char *d = comma + 1;
    if (d[0] != ' ' || d[3] != '-' || d[7] != '-' || d[10] != ' ' || d[19] != ' ' ||
        memcmp(d + 20, "GMT", 3) != 0)
        return -1;
    tm.tm_mday = digits(d + 1, 2);
    tm.tm_mon = find_short(d + 4, month_name, 12);
    int yy = digits(d + 8, 2);
    if (tm.tm_mday < 0 || tm.tm_mon < 0 || yy < 0 || parse_time(d + 11, &tm) < 0)
        return -1;
    /* RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
     * the future means the most recent past year with those digits. */
    struct tm now_tm;
    if (!gmtime_r(&now, &now_tm))
        return -1;
    long now_year = (long)now_tm.tm_year + 1900;
    long year = now_year - now_year % 100 + yy;
    if (year > now_year + 50)
        year -= 100;
    else if (year + 100 <= now_year + 50)
        year += 100;
    tm.tm_year = (int)(year - 1900);
    return finish(&tm, wday, out);
}

int pt_httpdate_parse(const char *s, size_t len, time_t *out)
{
    return pt_httpdate_parse_at(s, len, time(NULL), out);
}

const char *pt_httpdate_now(void)
{
    static _Thread_local char cache[PT_HTTPDATE_LEN + 1];
    static _Thread_local time_t cached_at = (time_t)-1;
    time_t now = time(NULL);
    if (now != cached_at || cache[0] == '\0') {
        pt_httpdate_format(now, cache);
        cached_at = now;
    }
    return cache;
}
