#include "first.h"
#include "util.h"

/* util.c: small pure helpers shared by every module: number/size/duration
 * parsing for the config, percent-decoding and the request-path normaliser,
 * escaping of client bytes for logs, HTML and URLs, and a few fd/clock calls. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

int pt_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || len == 0) {
        errno = EINVAL;
        return -1;
    }
    /* up to 19 digits cannot pass UINT64_MAX (20 digits): no overflow test
     * per digit (a division each) for the lengths every head carries */
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) {
            errno = EINVAL;
            return -1;
        }
        if (i >= 19 && v > (UINT64_MAX - d) / 10) {
            errno = ERANGE;
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Leading decimal digits of s: the number and where the suffix starts. */
static int parse_lead(const char *s, uint64_t *v, const char **rest)
{
    size_t n = 0;

    if (s == NULL) {
        errno = EINVAL;
        return -1;
    }
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    if (pt_parse_u64(s, n, v) < 0)
        return -1;
    *rest = s + n;
    return 0;
}

int pt_parse_size(const char *s, uint64_t *out)
{
    const char *suf;
    uint64_t v;
    unsigned shift = 0;

    if (parse_lead(s, &v, &suf) < 0)
        return -1;
    switch (ascii_lower((unsigned char)*suf)) {
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    case 't':
        shift = 40;
        break;
    default:
        break;
    }
    if (shift)
        suf++;
    if (*suf == 'b' || *suf == 'B')
        suf++;
    if (*suf != '\0') {
        errno = EINVAL;
        return -1;
    }
    if (v > (UINT64_MAX >> shift)) {
        errno = ERANGE;
        return -1;
    }
    *out = v << shift;
    return 0;
}

int pt_parse_duration_ms(const char *s, uint64_t *out)
{
    const char *suf;
    uint64_t v, mul;

    if (parse_lead(s, &v, &suf) < 0)
        return -1;
    /* Units are lower case only: "5M" could mean minutes or months. */
    if (strcmp(suf, "ms") == 0)
        mul = 1;
    else if (strcmp(suf, "") == 0 || strcmp(suf, "s") == 0)
        mul = 1000;
    else if (strcmp(suf, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(suf, "h") == 0)
        mul = 3600 * 1000;
    else if (strcmp(suf, "d") == 0)
        mul = 86400 * 1000;
    else {
        errno = EINVAL;
        return -1;
    }
    if (v > UINT64_MAX / mul) {
        errno = ERANGE;
        return -1;
    }
    *out = v * mul;
    return 0;
}

ssize_t pt_percent_decode(const char *in, size_t len, char *out)
{
    size_t w = 0;

    /* Writes never pass the read position, so out == in works. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = hex_val((unsigned char)in[i + 1]);
            int lo = hex_val((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        out[w++] = (char)c;
    }
    return (ssize_t)w;
}

/* the bytes that may make the normal form differ from the path as sent:
 * '%' (decoded), CTLs and DEL (refused), '/' (a dot segment or an empty
 * one may follow) */
static const unsigned char path_special[256] = {
    [0x00 ... 0x1f] = 1,
    ['%'] = 1,
    ['/'] = 1,
    [0x7f] = 1,
};

/* The usual path ("/img/logo.png") is its own normal form: copied in one
 * pass, 0 when it is, -1 at the first byte that needs the full walk. */
static int path_verbatim(const char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (char)c;
        if (path_special[c] &&
            (c != '/' || (i + 1 < len && (in[i + 1] == '/' || in[i + 1] == '.'))))
            return -1;
    }
    out[len] = '\0';
    return 0;
}

/*
 * The path is decoded exactly once, before dot-segment removal. Hence:
 *  - "%2e%2e" is "..", and is removed like a literal "..";
 *  - "%252e" becomes the literal segment name "%2e" (never decoded again);
 *  - "%2f" becomes a real '/' that separates segments, so "/a%2f..%2fb" is
 *    "/b". The file system would see it that way anyway, and treating it
 *    as one opaque segment would let ".." through unnoticed.
 * Removal is RFC 3986 §5.2.4 on a path that is already absolute: ".." at
 * the root stays at the root, and a path ending in "." or ".." keeps a
 * trailing slash ("/a/b/.." -> "/a/"). Empty segments ("//") collapse.
 */
ssize_t pt_path_normalize(const char *in, size_t len, char *out)
{
    ssize_t dl;
    size_t n, i, w;

    /* origin-form (RFC 9112 §3.2.1) is absolute-path: a leading '/' */
    if (len == 0 || in[0] != '/')
        return -1;
    /* no '%', CTL or DEL, and no '/' followed by '/' or '.': no escape to
     * decode, no byte to refuse, no empty or dot segment to remove */
    if (path_verbatim(in, len, out) == 0)
        return (ssize_t)len;
    dl = pt_percent_decode(in, len, out);
    if (dl < 0)
        return -1;
    n = (size_t)dl;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
    }

    /* In place: w (write) never passes i (read). out[0] is the root '/'. */
    w = 1;
    i = 1;
    while (i < n) {
        size_t j, seglen;
        if (out[i] == '/') {
            i++;
            continue;
        }
        for (j = i; j < n && out[j] != '/'; j++)
            ;
        seglen = j - i;
        if (seglen == 1 && out[i] == '.') {
            /* nothing: w already sits right after a '/' */
        } else if (seglen == 2 && out[i] == '.' && out[i + 1] == '.') {
            if (w > 1) {
                w--; /* drop the '/' that ends the previous segment */
                while (out[w - 1] != '/')
                    w--;
            }
        } else {
            memmove(out + w, out + i, seglen);
            w += seglen;
            if (j < n)
                out[w++] = '/';
        }
        i = j < n ? j + 1 : j;
    }
    out[w] = '\0';
    return (ssize_t)w;
}

static const char hex_upper[] = "0123456789ABCDEF";

/* One byte escaped for a log line; returns its length (1, 2 or 4). */
static size_t log_unit(unsigned char c, char unit[4])
{
    if (c == '\\' || c == '"') {
        unit[0] = '\\';
        unit[1] = (char)c;
        return 2;
    }
    if (c >= 0x20 && c < 0x7f) {
        unit[0] = (char)c;
        return 1;
    }
    unit[0] = '\\';
    unit[1] = 'x';
    unit[2] = hex_upper[c >> 4];
    unit[3] = hex_upper[c & 15];
    return 4;
}

size_t pt_escape_log(const char *in, size_t len, char *out, size_t cap)
{
    char unit[4];
    size_t need = 0, limit, w = 0;

    if (cap == 0)
        return 0;
    limit = cap - 1;
    for (size_t i = 0; i < len && need <= limit; i++)
        need += log_unit((unsigned char)in[i], unit);
    if (need > limit) {
        /* Cut on a whole escape and say so: a half "\x4" would mislead. */
        size_t room = limit >= 3 ? limit - 3 : 0;
        for (size_t i = 0; i < len; i++) {
            size_t ul = log_unit((unsigned char)in[i], unit);
            if (w + ul > room)
                break;
            memcpy(out + w, unit, ul);
            w += ul;
        }
        for (int k = 0; k < 3 && w < limit; k++)
            out[w++] = '.';
    } else {
        for (size_t i = 0; i < len; i++) {
            size_t ul = log_unit((unsigned char)in[i], unit);
            memcpy(out + w, unit, ul);
            w += ul;
        }
    }
    out[w] = '\0';
    return w;
}

/* Shared tail of the snprintf-style escapers: append unit if it fits whole
 * (leaving room for the NUL), always count it in *need. */
static void put_unit(char *out, size_t cap, size_t *need, size_t *w, const char *unit, size_t ul)
{
    if (*w == *need && *need + ul < cap) {
        memcpy(out + *w, unit, ul);
        *w += ul;
    }
    *need += ul;
}

size_t pt_escape_html(const char *in, size_t len, char *out, size_t cap)
{
    size_t need = 0, w = 0;

    for (size_t i = 0; i < len; i++) {
        switch (in[i]) {
        case '&':
            put_unit(out, cap, &need, &w, "&amp;", 5);
            break;
        case '<':
            put_unit(out, cap, &need, &w, "&lt;", 4);
            break;
        case '>':
            put_unit(out, cap, &need, &w, "&gt;", 4);
            break;
        case '"':
            put_unit(out, cap, &need, &w, "&quot;", 6);
            break;
        case '\'':
            put_unit(out, cap, &need, &w, "&#39;", 5);
            break;
        default:
            put_unit(out, cap, &need, &w, in + i, 1);
            break;
        }
    }
    if (cap > 0)
        out[w] = '\0';
    return need;
}

/* RFC 3986 §2.3 unreserved characters */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

size_t pt_escape_url_path(const char *in, size_t len, char *out, size_t cap)
{
    size_t need = 0, w = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_unreserved(c) || c == '/') {
            put_unit(out, cap, &need, &w, in + i, 1);
        } else {
            char unit[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
            put_unit(out, cap, &need, &w, unit, 3);
        }
    }
    if (cap > 0)
        out[w] = '\0';
    return need;
}

bool pt_str_ieq(const char *a, size_t alen, const char *lit)
{
    size_t i;

    for (i = 0; i < alen; i++) {
        if (lit[i] == '\0' ||
            ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)lit[i]))
            return false;
    }
    return lit[i] == '\0';
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
static int parse_qvalue(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1') || (n > 1 && (p[1] != '.' || n > 5)))
        return -1;
    int q = (p[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9' || (p[0] == '1' && p[i] != '0'))
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q;
}

int pt_accept_q(const char *p, size_t n, const char *coding)
{
    int own = -1, star = -1;
    const char *end = p + n;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        /* element: OWS coding OWS *( ";" OWS param ) OWS */
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        const char *t = p;
        while (p < e && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - t);
        int q = 1000;
        while (p < e) {
            const char *semi = memchr(p, ';', (size_t)(e - p));
            if (!semi)
                break;
            const char *v = semi + 1, *ve;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            ve = memchr(v, ';', (size_t)(e - v));
            ve = ve ? ve : e;
            size_t vl = (size_t)(ve - v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                q = parse_qvalue(v + 2, vl - 2);
                if (q < 0)
                    q = 0; /* unparseable: never taken as acceptance */
            }
            p = ve;
        }
        if (tlen > 0 && pt_str_ieq(t, tlen, coding))
            own = own < 0 ? q : PT_MAX(own, q);
        else if (tlen == 1 && t[0] == '*')
            star = star < 0 ? q : PT_MAX(star, q);
        p = comma ? comma + 1 : end;
    }
    return own >= 0 ? own : star;
}

int pt_fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    if (fl & O_NONBLOCK)
        return 0;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

int pt_fd_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);

    if (fl < 0)
        return -1;
    if (fl & FD_CLOEXEC)
        return 0;
    return fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0 ? -1 : 0;
}

/* "0" to "255": the digits left-aligned in four bytes, the count last */
#define PT_OCT(n)                                                                                  \
    {                                                                                              \
        (char)((n) >= 100  ? '0' + (n) / 100                                                       \
               : (n) >= 10 ? '0' + (n) / 10                                                        \
                           : '0' + (n)),                                                           \
            (char)((n) >= 100  ? '0' + (n) / 10 % 10                                               \
                   : (n) >= 10 ? '0' + (n) % 10                                                    \
                               : 0),                                                               \
            (char)((n) >= 100 ? '0' + (n) % 10 : 0),                                               \
            (char)((n) >= 100  ? 3                                                                 \
                   : (n) >= 10 ? 2                                                                 \
                               : 1)                                                                \
    }
#define PT_OCT4(n) PT_OCT(n), PT_OCT((n) + 1), PT_OCT((n) + 2), PT_OCT((n) + 3)
#define PT_OCT16(n) PT_OCT4(n), PT_OCT4((n) + 4), PT_OCT4((n) + 8), PT_OCT4((n) + 12)
#define PT_OCT64(n) PT_OCT16(n), PT_OCT16((n) + 16), PT_OCT16((n) + 32), PT_OCT16((n) + 48)

size_t pt_ipv4_text(char *out, const unsigned char a[4])
{
    /* a table load and one four-byte store per octet, no division: the
     * store's spare bytes are overwritten by the dot or the NUL after it
     * (the longest address, 15 bytes and a NUL, stays within 16) */
    static const char oct[256][4] = {PT_OCT64(0), PT_OCT64(64), PT_OCT64(128), PT_OCT64(192)};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        const char *d = oct[a[i]];
        memcpy(out + n, d, 4);
        n += (size_t)d[3];
        out[n++] = i < 3 ? '.' : '\0';
    }
    return n - 1;
}

#undef PT_OCT64
#undef PT_OCT16
#undef PT_OCT4
#undef PT_OCT

size_t pt_u64_dec(char *out, uint64_t v)
{
    /* the digit count first, then two digits per division, written from the
     * end: every request formats a port, a status and a length or two */
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    static const uint64_t pow10[19] = {10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u,
                                       1000000000000000000u,
                                       10000000000000000000u};
    size_t n = 1;
    while (n < 20 && v >= pow10[n - 1])
        n++;
    size_t i = n;
    while (v >= 100) {
        size_t d = (size_t)(v % 100) * 2;
        v /= 100;
        out[--i] = pairs[d + 1];
        out[--i] = pairs[d];
    }
    if (v >= 10) {
        out[--i] = pairs[v * 2 + 1];
        out[--i] = pairs[v * 2];
    } else {
        out[--i] = (char)('0' + v);
    }
    return n;
}

uint64_t pt_now_ms(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC never fails on Linux; timeouts must not jump with NTP. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const unsigned char pt_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

size_t pt_field_value_span(const char *v, size_t n)
{
    static const bool bad[256] = {[0 ... 8] = true, [10 ... 0x1f] = true, [0x7f] = true};
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    /* a word with no byte below 0x20 and none equal to 0x7f is clean (the
     * borrow trick of "Bit Twiddling Hacks": exact as a yes/no); a word
     * that may hold one, HT included, is looked at byte by byte */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, v + i, 8);
        uint64_t del = w ^ (ones * 0x7f);
        if ((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs)
            for (size_t k = i; k < i + 8; k++)
                if (bad[(unsigned char)v[k]])
                    return k;
    }
    /* the tail as the last eight bytes, which overlap clean ones: a clean
     * word ends the scan without a byte loop */
    if (i < n && n >= 8) {
        uint64_t w;
        memcpy(&w, v + n - 8, 8);
        uint64_t del = w ^ (ones * 0x7f);
        if (!((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & highs))
            return n;
    }
    for (; i < n; i++)
        if (bad[(unsigned char)v[i]])
            return i;
    return n;
}
