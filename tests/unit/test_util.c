#include "first.h"
#include "util.h"

/* test_util.c: size/duration/number parsing, percent-decoding, the request
 * path normaliser (with a traversal matrix), escapers, fd and clock helpers. */

#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static void test_parse_u64(void)
{
    uint64_t v = 7;

    ok(pt_parse_u64("0", 1, &v) == 0 && v == 0, "u64 parses 0");
    ok(pt_parse_u64("1234567", 7, &v) == 0 && v == 1234567, "u64 parses decimal");
    ok(pt_parse_u64("123xyz", 3, &v) == 0 && v == 123, "u64 honours the length");
    ok(pt_parse_u64("18446744073709551615", 20, &v) == 0 && v == UINT64_MAX,
       "u64 accepts UINT64_MAX");
    errno = 0;
    ok(pt_parse_u64("18446744073709551616", 20, &v) == -1 && errno == ERANGE,
       "u64 rejects UINT64_MAX+1 with ERANGE");
    ok(pt_parse_u64("99999999999999999999999", 23, &v) == -1, "u64 rejects long overflow");
    /* nineteen digits never overflow; from the twentieth on each is checked */
    ok(pt_parse_u64("9999999999999999999", 19, &v) == 0 && v == 9999999999999999999u,
       "u64 accepts nineteen nines");
    errno = 0;
    ok(pt_parse_u64("99999999999999999999", 20, &v) == -1 && errno == ERANGE,
       "u64 rejects twenty nines with ERANGE");
    ok(pt_parse_u64("0000000000000000000000000042", 28, &v) == 0 && v == 42,
       "u64 accepts leading zeros past twenty digits");
    errno = 0;
    ok(pt_parse_u64("184467440737095516150", 21, &v) == -1 && errno == ERANGE,
       "u64 rejects UINT64_MAX times ten");
    ok(pt_parse_u64("12345678901234567:9", 19, &v) == -1, "u64 rejects a colon (after '9')");
    ok(pt_parse_u64("", 0, &v) == -1, "u64 rejects empty");
    ok(pt_parse_u64("-1", 2, &v) == -1, "u64 rejects minus sign");
    ok(pt_parse_u64("+1", 2, &v) == -1, "u64 rejects plus sign");
    ok(pt_parse_u64(" 1", 2, &v) == -1, "u64 rejects leading space");
    ok(pt_parse_u64("1 ", 2, &v) == -1, "u64 rejects trailing space");
    ok(pt_parse_u64("0x10", 4, &v) == -1, "u64 rejects hex");
}

static void test_parse_size(void)
{
    uint64_t v = 0;

    ok(pt_parse_size("512", &v) == 0 && v == 512, "size plain bytes");
    ok(pt_parse_size("8k", &v) == 0 && v == 8192, "size k = 1024");
    ok(pt_parse_size("64K", &v) == 0 && v == 65536, "size K = 1024");
    ok(pt_parse_size("100M", &v) == 0 && v == 100ull << 20, "size M");
    ok(pt_parse_size("1g", &v) == 0 && v == 1ull << 30, "size g");
    ok(pt_parse_size("2T", &v) == 0 && v == 2ull << 40, "size T");
    ok(pt_parse_size("10MB", &v) == 0 && v == 10ull << 20, "size MB suffix");
    ok(pt_parse_size("10kb", &v) == 0 && v == 10240, "size kb suffix");
    ok(pt_parse_size("7B", &v) == 0 && v == 7, "size bare B suffix");
    ok(pt_parse_size("0", &v) == 0 && v == 0, "size zero");
    errno = 0;
    ok(pt_parse_size("", &v) == -1 && errno == EINVAL, "size rejects empty with EINVAL");
    ok(pt_parse_size("M", &v) == -1, "size rejects suffix without number");
    ok(pt_parse_size("-1", &v) == -1, "size rejects negative");
    ok(pt_parse_size("1.5M", &v) == -1, "size rejects fraction");
    ok(pt_parse_size("10 M", &v) == -1, "size rejects inner space");
    ok(pt_parse_size("10MBB", &v) == -1, "size rejects junk after suffix");
    ok(pt_parse_size("10X", &v) == -1, "size rejects unknown suffix");
    ok(pt_parse_size(NULL, &v) == -1, "size rejects NULL");
    errno = 0;
    ok(pt_parse_size("16777216T", &v) == -1 && errno == ERANGE,
       "size rejects 2^64 via suffix with ERANGE");
    ok(pt_parse_size("16777215T", &v) == 0 && v == 16777215ull << 40, "size largest T value");
    ok(pt_parse_size("99999999999999999999", &v) == -1 && errno == ERANGE,
       "size rejects overflowing digits");
}

static void test_parse_duration(void)
{
    uint64_t v = 0;

    ok(pt_parse_duration_ms("30", &v) == 0 && v == 30000, "duration plain = seconds");
    ok(pt_parse_duration_ms("30s", &v) == 0 && v == 30000, "duration s");
    ok(pt_parse_duration_ms("500ms", &v) == 0 && v == 500, "duration ms");
    ok(pt_parse_duration_ms("5m", &v) == 0 && v == 300000, "duration m");
    ok(pt_parse_duration_ms("1h", &v) == 0 && v == 3600000, "duration h");
    ok(pt_parse_duration_ms("1d", &v) == 0 && v == 86400000, "duration d");
    ok(pt_parse_duration_ms("0", &v) == 0 && v == 0, "duration zero");
    ok(pt_parse_duration_ms("", &v) == -1, "duration rejects empty");
    ok(pt_parse_duration_ms("s", &v) == -1, "duration rejects unit alone");
    ok(pt_parse_duration_ms("-5s", &v) == -1, "duration rejects negative");
    ok(pt_parse_duration_ms("5x", &v) == -1, "duration rejects unknown unit");
    ok(pt_parse_duration_ms("5 s", &v) == -1, "duration rejects inner space");
    ok(pt_parse_duration_ms("5sec", &v) == -1, "duration rejects long unit names");
    errno = 0;
    ok(pt_parse_duration_ms("18446744073709551615s", &v) == -1 && errno == ERANGE,
       "duration rejects overflow after scaling with ERANGE");
    ok(pt_parse_duration_ms("18446744073709551615ms", &v) == 0 && v == UINT64_MAX,
       "duration ms keeps the full range");
}

static void test_percent_decode(void)
{
    char out[64];
    ssize_t n;

    n = pt_percent_decode("a%20b", 5, out);
    ok_mem(out, (size_t)n, "a b", "percent decodes %%20");
    n = pt_percent_decode("%2f%2F%7e%7E", 12, out);
    ok_mem(out, (size_t)n, "//~~", "percent hex digits are case-insensitive");
    n = pt_percent_decode("%252e", 5, out);
    ok_mem(out, (size_t)n, "%2e", "percent decodes only once");
    n = pt_percent_decode("a+b", 3, out);
    ok_mem(out, (size_t)n, "a+b", "percent keeps '+' (not form encoding)");
    n = pt_percent_decode("%00", 3, out);
    ok(n == 1 && out[0] == '\0', "percent decodes %%00 to a NUL byte");
    ok(pt_percent_decode("%G1", 3, out) == -1, "percent rejects non-hex %%G1");
    ok(pt_percent_decode("%4", 2, out) == -1, "percent rejects truncated %%4");
    ok(pt_percent_decode("abc%", 4, out) == -1, "percent rejects trailing %%");
    ok(pt_percent_decode("%%41", 4, out) == -1, "percent rejects %%%%");
    ok(pt_percent_decode("", 0, out) == 0, "percent empty input is empty");
    char inplace[] = "x%41%42y";
    n = pt_percent_decode(inplace, strlen(inplace), inplace);
    ok_mem(inplace, (size_t)n, "xABy", "percent decodes in place");
}

/* Normalise a NUL-free literal; returns the output or NULL on rejection. */
static const char *norm(const char *in)
{
    static char out[8192];
    ssize_t n = pt_path_normalize(in, strlen(in), out);

    if (n < 0)
        return NULL;
    if ((size_t)n != strlen(out))
        return "(length mismatch)";
    return out;
}

#define NORM_OK(in, want, ...)                                                                     \
    do {                                                                                           \
        const char *got_ = norm(in);                                                               \
        ok(got_ != NULL && strcmp(got_, want) == 0, __VA_ARGS__);                                  \
        if (got_ == NULL || strcmp(got_, want) != 0)                                               \
            printf("#   in=\"%s\" got=\"%s\" want=\"%s\"\n", in, got_ ? got_ : "(rejected)",       \
                   want);                                                                          \
    } while (0)

#define NORM_BAD(in, ...) ok(norm(in) == NULL, __VA_ARGS__)

static void test_path_basic(void)
{
    NORM_OK("/", "/", "path root stays root");
    NORM_OK("/index.html", "/index.html", "path plain file unchanged");
    NORM_OK("/a/b/c", "/a/b/c", "path plain nested unchanged");
    NORM_OK("/a/b/", "/a/b/", "path keeps trailing slash");
    NORM_OK("/../a", "/a", "path .. at root stays at root");
    NORM_OK("/a/./b/../c", "/a/c", "path removes . and ..");
    NORM_OK("/a/..", "/", "path /a/.. is root");
    NORM_OK("/a/b/..", "/a/", "path trailing .. keeps slash (RFC 3986 5.2.4)");
    NORM_OK("/a/b/.", "/a/b/", "path trailing . keeps slash");
    NORM_OK("/a/.", "/a/", "path /a/. is /a/");
    NORM_OK("/.", "/", "path /. is root");
    NORM_OK("/..", "/", "path /.. is root");
    NORM_OK("/./", "/", "path /./ is root");
    NORM_OK("/../", "/", "path /../ is root");
    NORM_OK("//a///b//", "/a/b/", "path collapses repeated slashes");
    NORM_OK("//", "/", "path // is root");
    NORM_OK("/a//..", "/", "path empty segment before .. collapses first");
    NORM_OK("/a/b/../../c", "/c", "path two .. pop two segments");
    NORM_OK("/...", "/...", "path ... is an ordinary name");
    NORM_OK("/..a/a..", "/..a/a..", "path names starting/ending with .. are ordinary");
    NORM_OK("/.hidden", "/.hidden", "path dotfile name kept");
    NORM_OK("/a%20b", "/a b", "path decodes space");
    NORM_OK("/caf%C3%A9", "/caf\xc3\xa9", "path keeps UTF-8 bytes");
    NORM_OK("/a\\..\\b", "/a\\..\\b", "path backslash is an ordinary byte on POSIX");
    NORM_OK("/a\\b/..", "/", "path backslash name popped by ..");
    NORM_OK("/%5c..%5c/x", "/\\..\\/x", "path encoded backslash kept literally");
    NORM_BAD("", "path rejects empty input");
    NORM_BAD("a/b", "path rejects relative input");
    NORM_BAD("%2fa", "path rejects input whose '/' is encoded");
    NORM_BAD("*", "path rejects asterisk-form");
}

static void test_path_traversal(void)
{
    /* encoded dots */
    NORM_OK("/%2e%2e/etc/passwd", "/etc/passwd", "traversal %%2e%%2e is .. and stays in root");
    NORM_OK("/%2E%2E/etc/passwd", "/etc/passwd", "traversal upper-case %%2E%%2E");
    NORM_OK("/%2e%2E/x", "/x", "traversal mixed case %%2e%%2E");
    NORM_OK("/.%2e/x", "/x", "traversal half encoded .%%2e");
    NORM_OK("/%2e./x", "/x", "traversal half encoded %%2e.");
    NORM_OK("/a/%2e/b", "/a/b", "traversal encoded single dot removed");
    NORM_OK("/a/b/%2e%2e", "/a/", "traversal trailing encoded .. keeps slash");
    /* double encoding is decoded once only */
    NORM_OK("/%252e%252e/x", "/%2e%2e/x", "traversal double-encoded dots stay literal");
    NORM_OK("/%252E/x", "/%2E/x", "traversal double-encoded upper stays literal");
    NORM_OK("/a/%252e%252e%252fb", "/a/%2e%2e%2fb", "traversal double-encoded slash stays literal");
    /* encoded slashes take part in segment processing */
    NORM_OK("/a%2f..%2fb", "/b", "traversal %%2f separates segments");
    NORM_OK("/a%2F..%2Fb", "/b", "traversal %%2F upper-case separates segments");
    NORM_OK("/%2f%2f..%2f..%2fetc", "/etc", "traversal %%2f.. chain stays in root");
    NORM_OK("/..%2f..%2f..%2fetc%2fpasswd", "/etc/passwd", "traversal ..%%2f chain stays in root");
    NORM_OK("/a/b%2f%2e%2e", "/a/", "traversal encoded /.. at end");
    /* many .. never escape */
    NORM_OK("/../../../../../../../../etc/passwd", "/etc/passwd", "traversal many .. capped");
    NORM_OK("/a/../../b/../../../c", "/c", "traversal interleaved .. capped");
    NORM_OK("/a/b/c/../../../../../", "/", "traversal excess .. leaves root with slash");
    /* NUL and CTLs */
    NORM_BAD("/a%00.html", "traversal rejects %%00");
    NORM_BAD("/%00", "traversal rejects lone %%00");
    NORM_BAD("/a%0a", "traversal rejects %%0a");
    NORM_BAD("/a%0D%0Ab", "traversal rejects encoded CRLF");
    NORM_BAD("/a%09b", "traversal rejects encoded TAB");
    NORM_BAD("/a%1fb", "traversal rejects %%1f");
    NORM_BAD("/a%7fb", "traversal rejects %%7f (DEL)");
    NORM_BAD("/a\tb", "traversal rejects raw TAB");
    NORM_BAD("/a\nb", "traversal rejects raw LF");
    NORM_BAD("/a\x7f", "traversal rejects raw DEL");
    NORM_BAD("/a\x01", "traversal rejects raw 0x01");
    NORM_OK("/a%20b", "/a b", "traversal space (0x20) is not a CTL");
    NORM_OK("/%80%ff", "/\x80\xff", "traversal high bytes are not CTLs");
    /* malformed escapes */
    NORM_BAD("/a%2", "traversal rejects truncated escape");
    NORM_BAD("/a%zz", "traversal rejects non-hex escape");
    NORM_BAD("/%", "traversal rejects bare %%");
    /* a raw NUL inside the given length */
    {
        char out[16];
        ok(pt_path_normalize("/a\0b", 4, out) == -1, "traversal rejects raw NUL in the slice");
    }
    NORM_OK("/%2e%2e%2e", "/...", "traversal encoded ... is an ordinary name");
}

static void test_path_long(void)
{
    enum { N = 6000 };
    char *in = malloc(N + 1), *out = malloc(N + 1);
    size_t i;
    ssize_t n;

    /* "/a/a/a/..." : long, unchanged */
    for (i = 0; i < N; i += 2) {
        in[i] = '/';
        in[i + 1] = 'a';
    }
    n = pt_path_normalize(in, N, out);
    ok(n == N && memcmp(in, out, N) == 0 && out[N] == '\0', "long path of 3000 segments kept");

    /* "/../../..." : every .. at root */
    for (i = 0; i + 3 <= N; i += 3)
        memcpy(in + i, "/..", 3);
    n = pt_path_normalize(in, i, out);
    ok(n == 1 && strcmp(out, "/") == 0, "long path of 2000 .. stays at root");

    /* 1000 segments then 1000 .. then x */
    size_t w = 0;
    for (i = 0; i < 1000; i++) {
        memcpy(in + w, "/d", 2);
        w += 2;
    }
    for (i = 0; i < 1000; i++) {
        memcpy(in + w, "/..", 3);
        w += 3;
    }
    memcpy(in + w, "/x", 2);
    w += 2;
    n = pt_path_normalize(in, w, out);
    ok(n == 2 && strcmp(out, "/x") == 0, "long path: 1000 .. undo 1000 segments");

    /* one long segment, all encoded: decodes to a third of the size */
    w = 0;
    in[w++] = '/';
    while (w + 3 <= N) {
        memcpy(in + w, "%41", 3);
        w += 3;
    }
    n = pt_path_normalize(in, w, out);
    ok(n == (ssize_t)(1 + (w - 1) / 3) && out[1] == 'A' && out[n - 1] == 'A',
       "long fully encoded segment decodes");

    /* output never longer than input, over a sweep of awkward inputs */
    static const char *const pieces[] = {"/", "//", ".", "..", "%2e", "%2f", "a", "%41", "/.."};
    unsigned seed = 12345;
    bool fine = true;
    for (int t = 0; t < 2000 && fine; t++) {
        w = 0;
        in[w++] = '/';
        while (w < 200) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % PT_ARRAY_LEN(pieces)];
            memcpy(in + w, p, strlen(p));
            w += strlen(p);
        }
        memset(out, 'Z', w + 2);
        n = pt_path_normalize(in, w, out);
        if (n < 1 || (size_t)n > w || out[0] != '/' || out[n] != '\0' || out[w + 1] != 'Z' ||
            strstr(out, "//") != NULL || strstr(out, "/../") != NULL || strstr(out, "/./") != NULL)
            fine = false;
        size_t ln = (size_t)n;
        if (fine && ln >= 3 && strcmp(out + ln - 3, "/..") == 0)
            fine = false;
        if (fine && ln >= 2 && strcmp(out + ln - 2, "/.") == 0)
            fine = false;
        /* normalising again is a no-op when the output has no '%' */
        if (fine && strchr(out, '%') == NULL) {
            char again[256];
            ssize_t m = pt_path_normalize(out, ln, again);
            if (m != n || strcmp(again, out) != 0)
                fine = false;
        }
    }
    ok(fine, "random dot/slash mixes: bounded, rooted, no dot segments, idempotent");
    free(in);
    free(out);
}

/* The normal form the long way, as pt_path_normalize made it before its
 * one-pass case for a path that is already normal: decode, refuse CTLs
 * and DEL, then remove empty and dot segments. */
static ssize_t norm_ref(const char *in, size_t len, char *out)
{
    if (len == 0 || in[0] != '/')
        return -1;
    ssize_t dl = pt_percent_decode(in, len, out);
    if (dl < 0)
        return -1;
    size_t n = (size_t)dl, w = 1, i = 1;
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)out[k] < 0x20 || out[k] == 0x7f)
            return -1;
    while (i < n) {
        if (out[i] == '/') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && out[j] != '/')
            j++;
        if (j - i == 1 && out[i] == '.') {
        } else if (j - i == 2 && out[i] == '.' && out[i + 1] == '.') {
            if (w > 1) {
                w--;
                while (out[w - 1] != '/')
                    w--;
            }
        } else {
            memmove(out + w, out + i, j - i);
            w += j - i;
            if (j < n)
                out[w++] = '/';
        }
        i = j < n ? j + 1 : j;
    }
    out[w] = '\0';
    return (ssize_t)w;
}

/* A path already in normal form is copied as it is; any byte that could
 * change it ('%', a CTL, DEL, "//", "/.") sends it the long way */
static void test_path_verbatim_or_not(void)
{
    NORM_OK("/.well-known/acme", "/.well-known/acme", "path a dot-name segment is kept");
    NORM_OK("/a/.b/c.", "/a/.b/c.", "path dots inside names are kept");
    NORM_OK("/a//b", "/a/b", "path empty segment removed");
    NORM_OK("/a/b//", "/a/b/", "path trailing empty segment removed");
    NORM_OK("//", "/", "path // is root");
    NORM_OK("/a/.", "/a/", "path trailing . removed");
    NORM_OK("/a/b/..", "/a/", "path trailing .. removed");
    NORM_OK("/a%2fb", "/a/b", "path escape decoded");
    NORM_BAD("/a\x7f", "path DEL refused");
    NORM_BAD("/a\x01b", "path CTL refused");
    NORM_BAD("/a\x1f", "path last CTL refused");
    NORM_BAD("/a/\t", "path CTL after a slash refused");
    NORM_OK("/a\x80\xff", "/a\x80\xff", "path bytes over 0x7f kept");
    /* the same answer as the long way over random mixes of the bytes that
     * matter, in place too */
    static const char alpha[] = "/.%2eEfa\x7f\x01\x80";
    char in[40], out[41], want[41];
    unsigned seed = 4242;
    int diff = 0;
    for (int t = 0; t < 200000 && !diff; t++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 16) % (sizeof(in) - 1);
        in[0] = '/';
        for (size_t i = 1; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
        }
        ssize_t w = norm_ref(in, len, want), n = pt_path_normalize(in, len, out);
        if (n != w || (n >= 0 && memcmp(out, want, (size_t)n + 1) != 0))
            diff = 1;
        n = pt_path_normalize(in, len, in);
        if (n != w || (n >= 0 && memcmp(in, want, (size_t)n + 1) != 0))
            diff = 1;
        if (diff)
            printf("#   case %d differs from the long way\n", t);
    }
    ok(!diff, "path normal form as the long way makes it, 200000 random paths");
}

static void test_escape_log(void)
{
    char out[64];
    size_t n;

    n = pt_escape_log("GET /a b", 8, out, sizeof(out));
    ok_mem(out, n, "GET /a b", "log keeps printable ASCII");
    n = pt_escape_log("a\"b\\c", 5, out, sizeof(out));
    ok_mem(out, n, "a\\\"b\\\\c", "log escapes quote and backslash");
    n = pt_escape_log("\r\n\x00\x7f\xff", 5, out, sizeof(out));
    ok_mem(out, n, "\\x0D\\x0A\\x00\\x7F\\xFF", "log hex-escapes CTLs, DEL and high bytes");
    ok(out[n] == '\0', "log output is NUL-terminated");
    n = pt_escape_log("abcdefghij", 10, out, 8);
    ok_mem(out, n, "abcd...", "log truncates with ... inside cap");
    n = pt_escape_log("abcdefg", 7, out, 8);
    ok_mem(out, n, "abcdefg", "log exact fit is not truncated");
    n = pt_escape_log("ab\x01\x02", 4, out, 8);
    ok_mem(out, n, "ab...", "log never splits a \\xHH escape");
    n = pt_escape_log("abcdef", 6, out, 3);
    ok_mem(out, n, "..", "log tiny cap still NUL-terminated");
    out[0] = 'Q';
    n = pt_escape_log("abc", 3, out, 0);
    ok(n == 0 && out[0] == 'Q', "log cap 0 writes nothing");
    n = pt_escape_log("", 0, out, sizeof(out));
    ok(n == 0 && out[0] == '\0', "log empty input");
}

static void test_escape_html_url(void)
{
    char out[64];
    size_t n;

    n = pt_escape_html("<a href=\"x\">&'</a>", 18, out, sizeof(out));
    ok(strcmp(out, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;") == 0 && n == strlen(out),
       "html escapes & < > \" '");
    n = pt_escape_html("a<b", 3, out, 5);
    ok(n == 6 && strcmp(out, "a") == 0, "html reports needed size, truncates on whole entity");
    n = pt_escape_html("abc", 3, out, 4);
    ok(n == 3 && strcmp(out, "abc") == 0, "html exact fit");
    n = pt_escape_html("abc", 3, NULL, 0);
    ok(n == 3, "html cap 0 only measures");
    n = pt_escape_html("\xc3\xa9", 2, out, sizeof(out));
    ok(n == 2 && strcmp(out, "\xc3\xa9") == 0, "html leaves UTF-8 bytes");

    n = pt_escape_url_path("/a b/c%d?e#f", 12, out, sizeof(out));
    ok(strcmp(out, "/a%20b/c%25d%3Fe%23f") == 0 && n == strlen(out),
       "url keeps / and escapes space %% ? #");
    n = pt_escape_url_path("AZaz09-._~", 10, out, sizeof(out));
    ok(strcmp(out, "AZaz09-._~") == 0 && n == 10, "url keeps unreserved");
    n = pt_escape_url_path("\xc3\xa9\"<", 4, out, sizeof(out));
    ok(strcmp(out, "%C3%A9%22%3C") == 0 && n == 12, "url escapes high bytes and quotes");
    n = pt_escape_url_path("a b", 3, out, 4);
    ok(n == 5 && strcmp(out, "a") == 0, "url truncates on whole escape, reports need");
}

static void test_misc(void)
{
    ok(pt_str_ieq("Content-Length", 14, "content-length"), "ieq ignores case");
    ok(pt_str_ieq("CHUNKED", 7, "chunked"), "ieq upper vs lower");
    ok(!pt_str_ieq("chunked", 6, "chunked"), "ieq shorter slice differs");
    ok(!pt_str_ieq("chunkedx", 8, "chunked"), "ieq longer slice differs");
    ok(pt_str_ieq("", 0, ""), "ieq empty equals empty");
    ok(!pt_str_ieq("a\0", 2, "a"), "ieq NUL in slice is not the end");
    ok(!pt_str_ieq("\xc9", 1, "\xe9"), "ieq folds ASCII only");

    int p[2];
    ok(pipe(p) == 0, "pipe for fd helpers");
    ok(pt_fd_nonblock(p[0]) == 0 && (fcntl(p[0], F_GETFL) & O_NONBLOCK), "fd_nonblock sets it");
    ok(pt_fd_nonblock(p[0]) == 0, "fd_nonblock is idempotent");
    ok(pt_fd_cloexec(p[1]) == 0 && (fcntl(p[1], F_GETFD) & FD_CLOEXEC), "fd_cloexec sets it");
    close(p[0]);
    close(p[1]);
    errno = 0;
    ok(pt_fd_nonblock(p[0]) == -1 && errno == EBADF, "fd_nonblock on closed fd fails EBADF");
    ok(pt_fd_cloexec(-1) == -1, "fd_cloexec on -1 fails");

    uint64_t t0 = pt_now_ms();
    usleep(20000);
    uint64_t t1 = pt_now_ms();
    ok(t1 >= t0 + 15 && t1 < t0 + 5000, "now_ms advances with time (%llu ms)",
       (unsigned long long)(t1 - t0));
}

/* pt_tok_is against pt_name_is, its bytewise reference, for every tchar
 * at every position of names of 1 to 20 bytes (the eight-, four- and
 * one-byte steps), in both cases. */
static void test_tok_is(void)
{
    static const char *const lits[] = {"a",
                                       "te",
                                       "host",
                                       "server",
                                       "abcdefgh",
                                       "location",
                                       "content-type",
                                       "content-length",
                                       "x-forwarded-proto",
                                       "proxy-authorization",
                                       "x-lighttpd-send-file",
                                       "x-0123456789"};
    int bad = 0, checked = 0;
    for (size_t k = 0; k < PT_ARRAY_LEN(lits); k++) {
        const char *lit = lits[k];
        size_t n = strlen(lit);
        char name[32], up[32];
        for (size_t i = 0; i < n; i++)
            up[i] = (char)(lit[i] >= 'a' && lit[i] <= 'z' ? lit[i] - 32 : lit[i]);
        bad += !pt_tok_is(lit, lit, n) || !pt_tok_is(up, lit, n);
        for (size_t i = 0; i < n; i++) {
            for (int b = 0; b < 256; b++) {
                if (!pt_tchar[b])
                    continue;
                memcpy(name, (i & 1) ? up : lit, n);
                name[i] = (char)b;
                bad += pt_tok_is(name, lit, n) != pt_name_is(name, lit, n);
                checked++;
            }
        }
    }
    ok(bad == 0 && checked > 9000, "pt_tok_is agrees with pt_name_is on %d token names (%d not)",
       checked, bad);
}

static void test_u64_dec(void)
{
    char b[24], w[24];
    static const uint64_t v[] = {
        0,         1, 9, 10, 99, 100, 1024, 4294967295ULL, 4294967296ULL, 999999999999999999ULL,
        UINT64_MAX};
    int bad = 0;
    for (size_t i = 0; i < PT_ARRAY_LEN(v); i++) {
        size_t n = pt_u64_dec(b, v[i]);
        snprintf(w, sizeof(w), "%llu", (unsigned long long)v[i]);
        if (n != strlen(w) || memcmp(b, w, n) != 0)
            bad++;
    }
    ok(bad == 0, "pt_u64_dec writes the decimal digits, 0 and UINT64_MAX included");

    /* each digit count's edges (10^k - 1, 10^k, 10^k + 1), every value
     * below 100000, and a spread of large ones */
    bad = 0;
    uint64_t p = 1, x = 88172645463325252ULL;
    for (int k = 0; k < 20; k++, p *= 10) {
        uint64_t e[] = {p - 1, p, p + 1};
        for (size_t j = 0; j < 3; j++) {
            size_t n = pt_u64_dec(b, e[j]);
            snprintf(w, sizeof(w), "%llu", (unsigned long long)e[j]);
            bad += n != strlen(w) || memcmp(b, w, n) != 0;
        }
    }
    for (uint64_t u = 0; u < 100000; u++) {
        size_t n = pt_u64_dec(b, u);
        snprintf(w, sizeof(w), "%llu", (unsigned long long)u);
        bad += n != strlen(w) || memcmp(b, w, n) != 0;
    }
    for (int k = 0; k < 100000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t u = x >> (k % 64);
        size_t n = pt_u64_dec(b, u);
        snprintf(w, sizeof(w), "%llu", (unsigned long long)u);
        bad += n != strlen(w) || memcmp(b, w, n) != 0;
    }
    ok(bad == 0, "pt_u64_dec: every digit count's edges, all values below 100000, 100000 others");
}

/* RFC 9110 §12.5.3 Accept-Encoding weights */
static void test_accept_q(void)
{
    static const struct {
        const char *v, *coding;
        int q;
    } t[] = {
        {"gzip", "gzip", 1000},
        {"gzip, deflate, br", "br", 1000},
        {"deflate", "gzip", -1},
        {"", "gzip", -1},
        {"gzip;q=0", "gzip", 0},
        {"gzip;q=0.5", "gzip", 500},
        {"gzip; q=0.123", "gzip", 123},
        {"gzip ;Q=1.000", "gzip", 1000},
        {"GZip;q=0.8", "gzip", 800},
        {"br;q=0.4, gzip;q=0.5", "br", 400},
        {"*", "br", 1000},
        {"*;q=0.1", "gzip", 100},
        {"*, gzip;q=0", "gzip", 0},
        {"gzip;q=0, *", "gzip", 0},
        {"gzip;q=0, *", "br", 1000},
        {"gzip;q=2", "gzip", 0},
        {"gzip;q=1.5", "gzip", 0},
        {"gzip;q=0.1234", "gzip", 0},
        {"gzip;q=", "gzip", 0},
        {"gzip;q=.5", "gzip", 0},
        {"gzip;level=9;q=0.7", "gzip", 700},
        {"x-gzip", "gzip", -1},
        {"gzipper", "gzip", -1},
        {" , ,gzip,", "gzip", 1000},
        {"gzip;q=0, gzip;q=0.3", "gzip", 300},
    };
    int bad = 0;
    for (size_t i = 0; i < PT_ARRAY_LEN(t); i++) {
        int q = pt_accept_q(t[i].v, strlen(t[i].v), t[i].coding);
        if (q != t[i].q) {
            printf("# \"%s\" for %s: %d, expected %d\n", t[i].v, t[i].coding, q, t[i].q);
            bad++;
        }
    }
    ok(bad == 0, "pt_accept_q: weights, \"*\", q=0 refusals, invalid weights count as 0");
}

static void test_ipv4_text(void)
{
    /* every value of each byte position against inet_ntop, plus a sweep */
    int bad = 0;
    unsigned char a[4];
    char got[16], want[16];
    for (unsigned v = 0; v < 256 * 4; v++) {
        memset(a, (int)(v * 7 % 256), 4);
        a[v / 256] = (unsigned char)(v % 256);
        size_t n = pt_ipv4_text(got, a);
        inet_ntop(AF_INET, a, want, sizeof(want));
        if (strcmp(got, want) != 0 || n != strlen(want)) {
            printf("# %s, expected %s\n", got, want);
            bad++;
        }
    }
    ok(bad == 0, "pt_ipv4_text agrees with inet_ntop, lengths included");
    memset(a, 255, 4);
    ok(pt_ipv4_text(got, a) == 15 && strcmp(got, "255.255.255.255") == 0, "the longest fits 16");
}

/* RFC 9110 §5.5 and §5.6.2 spelled out per byte, for the tables to agree */
static bool ref_value_ok(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void test_field_value_span_rejects_every_ctl_but_ht(void)
{
    /* every byte value at every offset of values 1 to 19 bytes long, in a
     * clean value of each of three fillers (ASCII, obs-text, HT) */
    int bad = 0;
    const unsigned char fill[] = {'a', 0xe9, '\t'};
    char v[20];
    for (size_t f = 0; f < sizeof(fill); f++)
        for (size_t n = 1; n < sizeof(v); n++)
            for (size_t at = 0; at < n; at++)
                for (unsigned c = 0; c < 256; c++) {
                    memset(v, fill[f], sizeof(v));
                    v[at] = (char)c;
                    size_t want = ref_value_ok((unsigned char)c) ? n : at;
                    size_t got = pt_field_value_span(v, n);
                    if (got != want && bad++ < 5)
                        printf("# byte 0x%02x at %zu of %zu (fill 0x%02x): %zu, expected %zu\n", c,
                               at, n, fill[f], got, want);
                }
    ok(bad == 0, "pt_field_value_span: the first CTL (HT allowed) or DEL at any offset");
    /* two bad bytes: the first one counts; an empty value is clean */
    memcpy(v, "abcdefgh\r\nijklmn\0", 17);
    ok(pt_field_value_span(v, 17) == 8, "the first of two bad bytes");
    ok(pt_field_value_span(v, 0) == 0, "an empty value");
    int tbad = 0;
    for (unsigned c = 0; c < 256; c++)
        if ((pt_tchar[c] != 0) != ref_tchar((unsigned char)c) && tbad++ < 5)
            printf("# pt_tchar[0x%02x] = %d\n", c, pt_tchar[c]);
    ok(tbad == 0, "pt_tchar: exactly RFC 9110's tchar, for all 256 byte values");
}

int main(void)
{
    test_field_value_span_rejects_every_ctl_but_ht();
    test_accept_q();
    test_ipv4_text();
    test_u64_dec();
    test_tok_is();
    test_parse_u64();
    test_parse_size();
    test_parse_duration();
    test_percent_decode();
    test_path_basic();
    test_path_traversal();
    test_path_long();
    test_path_verbatim_or_not();
    test_escape_log();
    test_escape_html_url();
    test_misc();
    return tap_done();
}
