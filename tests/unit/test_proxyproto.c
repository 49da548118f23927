/* test_proxyproto.c: the PROXY protocol parser (HAProxy's spec, v1 text
 * and v2 binary: addresses, UNKNOWN and LOCAL, TLVs skipped, every kind of
 * malformed header refused, prefixes reported as incomplete) and
 * X-Forwarded-For picking (rightmost untrusted, trusted hops skipped,
 * ports, IPv6, garbage). */
#include "first.h"
#include "proxyproto.h"
#include "realip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tap.h"

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int parse(const void *p, size_t n, pt_proxy_hdr *h)
{
    const char *why;
    /* an exact copy, so a read past the end is seen under ASan */
    unsigned char *b = malloc(n ? n : 1);
    memcpy(b, p, n);
    int r = pt_proxyproto_parse(b, n, h, &why);
    free(b);
    return r;
}

static int parse_s(const char *s, pt_proxy_hdr *h)
{
    return parse(s, strlen(s), h);
}

/* every proper prefix of a valid header is "incomplete", never an error */
static bool prefixes_incomplete(const void *p, size_t n)
{
    pt_proxy_hdr h;
    for (size_t i = 0; i < n; i++)
        if (parse(p, i, &h) != 0)
            return false;
    return true;
}

static void test_v1_addresses(void)
{
    pt_proxy_hdr h;
    const char *t4 = "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\r\nGET /";
    ok(parse_s(t4, &h) == (int)(strchr(t4, '\n') - t4 + 1), "TCP4: the header's length only");
    char a[64];
    inet_ntop(AF_INET, h.src, a, sizeof(a));
    ok(h.version == 1 && h.has_addr && h.af == AF_INET && strcmp(a, "192.0.2.1") == 0 &&
           h.src_port == 4711 && h.dst_port == 80,
       "TCP4 source %s:%u", a, h.src_port);
    ok(parse_s("PROXY TCP6 2001:db8::1 ::1 65535 443\r\n", &h) > 0 && h.af == AF_INET6 &&
           h.src_port == 65535 && h.src[0] == 0x20 && h.src[15] == 1,
       "TCP6");
    ok(parse_s("PROXY UNKNOWN\r\n", &h) == 15 && !h.has_addr, "UNKNOWN alone keeps the peer");
    ok(parse_s("PROXY UNKNOWN 1 2 3 4\r\n", &h) > 0 && !h.has_addr,
       "UNKNOWN: the rest of the line is ignored");
    ok(prefixes_incomplete(t4, strchr(t4, '\n') - t4 + 1), "every prefix of TCP4 is incomplete");
}

static void test_v1_rejects(void)
{
    pt_proxy_hdr h;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80 9\r\n",
        "PROXY TCP4  192.0.2.1 198.51.100.2 4711 80\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 4711 80 \r\n",
        "PROXY TCP4 2001:db8::1 198.51.100.2 4711 80\r\n",
        "PROXY TCP6 192.0.2.1 ::1 4711 80\r\n",
        "PROXY TCP4 192.0.2.256 198.51.100.2 4711 80\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 80\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 0471 80\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 -1 80\r\n",
        "PROXY UDP4 192.0.2.1 198.51.100.2 1 80\r\n",
        "PROXY tcp4 192.0.2.1 198.51.100.2 1 80\r\n",
        "PROXY TCP4 192.0.2.1\t198.51.100.2 1 80\r\n",
        "PROXY\r\n",
        "proxy TCP4 192.0.2.1 198.51.100.2 1 80\r\n",
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++)
        ok(parse_s(bad[i], &h) < 0, "rejects %zu: %.*s", i, (int)strcspn(bad[i], "\r\n"), bad[i]);
    char big[200];
    memset(big, '1', sizeof(big));
    memcpy(big, "PROXY TCP4 ", 11);
    ok(parse(big, PT_PROXY_V1_MAX - 1, &h) == 0, "106 bytes without CRLF: incomplete");
    ok(parse(big, PT_PROXY_V1_MAX, &h) < 0, "107 bytes without CRLF: too long");
    ok(parse("PROXY TCP4 1\x01", 13, &h) < 0, "a control byte before the end");
    ok(parse("PROXY \r", 7, &h) == 0, "a CR last may be the end's first half");
}

static size_t v2(unsigned char *b, unsigned vc, unsigned fam, const void *body, size_t n)
{
    memcpy(b, sig, 12);
    b[12] = (unsigned char)vc;
    b[13] = (unsigned char)fam;
    b[14] = (unsigned char)(n >> 8);
    b[15] = (unsigned char)n;
    memcpy(b + 16, body, n);
    return 16 + n;
}

static void test_v2(void)
{
    pt_proxy_hdr h;
    unsigned char b[600], body[300];
    /* TCP4 192.0.2.1:4711 -> 198.51.100.2:80, then TLVs: ALPN and NOOP */
    unsigned char t4[] = {192, 0,  2,    1, 198, 51,  100, 2,    0x12, 0x67,
                          0,   80, 0x01, 0, 2,   'h', '2', 0x04, 0,    0};
    size_t n = v2(b, 0x21, 0x11, t4, sizeof(t4));
    memcpy(b + n, "GET", 3);
    ok(parse(b, n + 3, &h) == (int)n && h.version == 2 && h.has_addr && h.af == AF_INET &&
           h.src[0] == 192 && h.src[3] == 1 && h.src_port == 4711 && h.dst_port == 80,
       "TCP4 with TLVs skipped");
    ok(prefixes_incomplete(b, n), "every prefix of a v2 header is incomplete");
    memset(body, 0, sizeof(body));
    body[0] = 0x20;
    body[15] = 7;
    body[32] = 0x01;
    body[33] = 0xbb;
    n = v2(b, 0x21, 0x21, body, 36);
    ok(parse(b, n, &h) == (int)n && h.af == AF_INET6 && h.src[15] == 7 && h.src_port == 443,
       "TCP6 (STREAM over INET6)");
    n = v2(b, 0x20, 0x00, body, 0);
    ok(parse(b, n, &h) == 16 && !h.has_addr, "LOCAL keeps the peer");
    n = v2(b, 0x20, 0x11, t4, 12);
    ok(parse(b, n, &h) == (int)n && !h.has_addr, "LOCAL with addresses keeps the peer too");
    n = v2(b, 0x21, 0x00, body, 0);
    ok(parse(b, n, &h) == 16 && !h.has_addr, "PROXY over UNSPEC keeps the peer");
    n = v2(b, 0x21, 0x31, body, 216);
    ok(parse(b, n, &h) == (int)n && !h.has_addr, "UNIX addresses keep the peer");
    n = v2(b, 0x21, 0x12, t4, 12);
    ok(parse(b, n, &h) == (int)n && h.has_addr, "DGRAM over INET carries a client");

    n = v2(b, 0x11, 0x11, t4, 12);
    ok(parse(b, n, &h) < 0, "version 1 in the binary form");
    n = v2(b, 0x22, 0x11, t4, 12);
    ok(parse(b, n, &h) < 0, "command 2");
    n = v2(b, 0x21, 0x41, t4, 12);
    ok(parse(b, n, &h) < 0, "family 4");
    n = v2(b, 0x21, 0x13, t4, 12);
    ok(parse(b, n, &h) < 0, "transport 3");
    n = v2(b, 0x21, 0x11, t4, 11);
    ok(parse(b, n, &h) < 0, "address block shorter than TCP4's");
    n = v2(b, 0x21, 0x21, body, 35);
    ok(parse(b, n, &h) < 0, "address block shorter than TCP6's");
    unsigned char badtlv[] = {192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2, 0x01, 0, 9, 'x'};
    n = v2(b, 0x21, 0x11, badtlv, sizeof(badtlv));
    ok(parse(b, n, &h) < 0, "a TLV longer than what is left");
    unsigned char cut[] = {192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2, 0x01, 0};
    n = v2(b, 0x21, 0x11, cut, sizeof(cut));
    ok(parse(b, n, &h) < 0, "a TLV cut in its header");
    b[0] = 0x0d;
    memcpy(b, sig, 12);
    b[11] = 0x0b;
    ok(parse(b, 16, &h) < 0, "a wrong signature byte");
    ok(parse(b, 11, &h) == 0, "a signature prefix is incomplete");
    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = 0x11;
    b[14] = 0xff;
    b[15] = 0xff;
    ok(parse(b, 16, &h) < 0, "a length over the cap");
}

static pt_access_list *trusted(void)
{
    static const char *const from[] = {"127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"};
    pt_access_list *l = calloc(1, sizeof(*l));
    l->rules = calloc(3, sizeof(*l->rules));
    char why[256];
    for (size_t i = 0; i < 3; i++)
        if (pt_realip_parse_from(from[i], &l->rules[l->n], why, sizeof(why)) == 0)
            l->n++;
    return l;
}

/* the address picked from the X-Forwarded-For values (one field each), as
 * text with ":port" when one was written; "none" or "bad" */
static const char *pick_as(bool rfc7239, const pt_access_list *l, const char *const *vals,
                           size_t nv)
{
    static char out[80];
    pt_header h[4];
    for (size_t i = 0; i < nv; i++) {
        h[i].name = rfc7239 ? "forwarded" : "x-forwarded-for";
        h[i].name_len = rfc7239 ? 9 : 15;
        h[i].value = vals[i];
        h[i].value_len = (uint32_t)strlen(vals[i]);
    }
    int af;
    unsigned char a[16];
    uint16_t port;
    int r = rfc7239 ? pt_realip_pick_forwarded(h, nv, l, &af, a, &port)
                    : pt_realip_pick(h, nv, "X-Forwarded-For", 15, l, &af, a, &port);
    if (r <= 0)
        return r == 0 ? "none" : "bad";
    inet_ntop(af, a, out, sizeof(out));
    if (port)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), ":%u", port);
    return out;
}

#define PICK_AS(rfc7239, l, expect, ...)                                                           \
    do {                                                                                           \
        static const char *const v_[] = {__VA_ARGS__};                                             \
        const char *got_ = pick_as(rfc7239, l, v_, PT_ARRAY_LEN(v_));                              \
        ok(strcmp(got_, expect) == 0, "%s -> %s (got %s)", v_[0], expect, got_);                   \
    } while (0)
#define PICK(l, expect, ...) PICK_AS(false, l, expect, __VA_ARGS__)
#define FWD(l, expect, ...) PICK_AS(true, l, expect, __VA_ARGS__)

static void test_forwarded_for(void)
{
    pt_access_list *l = trusted();
    char why[256];
    pt_access_rule r;
    ok(l->n == 3, "three trusted blocks");
    ok(pt_realip_parse_from("all", &r, why, sizeof(why)) < 0, "real_ip_from rejects \"all\"");
    ok(pt_realip_parse_from("deny 1.2.3.4", &r, why, sizeof(why)) < 0, "and rule syntax");
    PICK(l, "203.0.113.5", "203.0.113.5");
    PICK(l, "203.0.113.5", "6.6.6.6, 203.0.113.5, 10.1.1.1,10.2.2.2");
    PICK(l, "10.0.0.1", "10.0.0.1, 10.0.0.2");
    PICK(l, "203.0.113.1", "203.0.113.1", "10.0.0.3");
    PICK(l, "203.0.113.9", "10.0.0.3", "203.0.113.9");
    PICK(l, "192.0.2.8:8080", "192.0.2.8:8080");
    PICK(l, "2001:db8::5:1234", "[2001:db8::5]:1234");
    PICK(l, "2001:db8::6", "[2001:db8::6]");
    PICK(l, "2001:db8::7", "2001:db8::7 , 2001:db8:ffff::9");
    PICK(l, "192.0.2.9", "::ffff:192.0.2.9");
    PICK(l, "203.0.113.6", "bogus, 203.0.113.6");
    PICK(l, "203.0.113.7", ", 203.0.113.7 ,,");
    PICK(l, "none", " , ");
    PICK(l, "bad", "203.0.113.5, bogus");
    PICK(l, "bad", "1.2.3");
    PICK(l, "bad", "192.0.2.1:99999");
    PICK(l, "bad", "192.0.2.1:");
    PICK(l, "bad", "[2001:db8::1");
    PICK(l, "bad", "[2001:db8::1]x");
    PICK(l, "bad", "[192.0.2.1]");
    PICK(l, "bad", "unknown");
    PICK(l, "bad", "_hidden");
    pt_access_list_free(l);
}

/* RFC 7239 Forwarded: the for= of each element, right to left */
static void test_rfc7239_forwarded(void)
{
    pt_access_list *l = trusted();
    /* the RFC's own examples (§4, §7.1) */
    FWD(l, "2001:db8:cafe::17:4711", "for=\"[2001:db8:cafe::17]:4711\"");
    FWD(l, "192.0.2.60", "for=192.0.2.60;proto=http;by=203.0.113.43");
    FWD(l, "198.51.100.17", "for=192.0.2.43, for=198.51.100.17");
    FWD(l, "192.0.2.43", "for=192.0.2.43, for=10.1.1.1;proto=https");
    FWD(l, "192.0.2.43", "for=192.0.2.43", "for=10.1.1.1");
    FWD(l, "192.0.2.44", "For=\"192.0.2.44\"", "FOR=10.1.1.1");
    FWD(l, "192.0.2.45", "proto=https ; for=192.0.2.45 ; host=example.test");
    FWD(l, "192.0.2.46:8080", "for=\"192.0.2.46:8080\"");
    FWD(l, "192.0.2.47:81", "for=192.0.2.47:81");
    /* an obfuscated port is none; quoted-pairs are unescaped */
    FWD(l, "2001:db8::8", "for=\"[2001:db8::8]:_p0rt\"");
    FWD(l, "192.0.2.48", "for=\"192.0.2.\\48\"");
    /* all trusted: the leftmost; IPv4-mapped is IPv4 */
    FWD(l, "10.0.0.1", "for=10.0.0.1, for=10.0.0.2");
    FWD(l, "192.0.2.49", "for=\"[::ffff:192.0.2.49]\"");
    /* a hop that hides its client, or names none: stop, keep the peer */
    FWD(l, "none", "for=192.0.2.50, for=unknown");
    FWD(l, "none", "for=192.0.2.50, for=_hidden, for=10.0.0.9");
    FWD(l, "none", "for=192.0.2.50, for=\"_gazonk:_p\"");
    FWD(l, "none", "for=192.0.2.50, proto=https");
    FWD(l, "none", "for=UNKNOWN");
    FWD(l, "none", "");
    FWD(l, "none", " , ,");
    /* what lies left of the client is never looked at */
    FWD(l, "192.0.2.51", "for=garbage=x, for=1.2.3, for=\"[::1\", for=192.0.2.51");
    FWD(l, "192.0.2.52", "for=unknown, for=192.0.2.52");
    /* a quoted comma does not split elements */
    FWD(l, "192.0.2.53", "for=192.0.2.53;ext=\"a,b\"");
    /* malformed where it is reached: kept the peer, logged by the caller */
    FWD(l, "bad", "for=2001:db8::1");
    FWD(l, "bad", "for=\"[2001:db8::1\"");
    FWD(l, "bad", "for=192.0.2.54;for=192.0.2.55");
    FWD(l, "bad", "for=192.0.2.56 x");
    FWD(l, "bad", "for=\"192.0.2.57");
    FWD(l, "bad", "for=");
    FWD(l, "bad", "for=192.0.2.58:99999");
    FWD(l, "bad", "for=1.2.3");
    FWD(l, "bad", "for=\"\"");
    FWD(l, "bad", "for=_");
    FWD(l, "bad", "for=\"[::1]x_ab\"");
    FWD(l, "bad", "=192.0.2.59");
    FWD(l, "bad", "for=192.0.2.60, for=10.0.0.1 ; for=10.0.0.2");
    pt_access_list_free(l);
}

int main(void)
{
    test_v1_addresses();
    test_v1_rejects();
    test_v2();
    test_forwarded_for();
    test_rfc7239_forwarded();
    return tap_done();
}
