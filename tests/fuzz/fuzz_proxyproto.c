/* fuzz_proxyproto.c: the PROXY protocol parser (pt_proxyproto_parse) and
 * X-Forwarded-For picking (pt_realip_pick). Input: the header bytes; the
 * same bytes, split at '\n', are also the X-Forwarded-For field values.
 * Invariants: a complete header is never longer than the input nor the
 * cap; every prefix of a complete header is incomplete (realip.c consumes
 * an incomplete prefix whole, so any other answer would eat HTTP bytes);
 * a result with an address names IPv4 or IPv6. */
#include "fuzz.h"

#include "proxyproto.h"
#include "realip.h"

#include <sys/socket.h>

static pt_access_list *trusted(void)
{
    static pt_access_list l;
    static pt_access_rule r[2];
    if (!l.rules) {
        char why[128];
        FZ_CHECK(pt_realip_parse_from("10.0.0.0/8", &r[0], why, sizeof(why)) == 0);
        FZ_CHECK(pt_realip_parse_from("2001:db8::/32", &r[1], why, sizeof(why)) == 0);
        l.rules = r;
        l.n = 2;
    }
    return &l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *b = (unsigned char *)fz_dup(data, size);
    pt_proxy_hdr h;
    const char *why;
    int r = pt_proxyproto_parse(b, size, &h, &why);
    FZ_CHECK(r >= -1 && (size_t)(r > 0 ? r : 0) <= size && r <= PT_PROXY_MAX);
    FZ_CHECK(r >= 0 || why != NULL);
    if (r > 0) {
        FZ_CHECK(h.version == 1 || h.version == 2);
        FZ_CHECK(!h.has_addr || h.af == AF_INET || h.af == AF_INET6);
        FZ_CHECK(h.version != 1 || r <= PT_PROXY_V1_MAX);
        for (int i = 0; i < r; i++) {
            pt_proxy_hdr h2;
            FZ_CHECK(pt_proxyproto_parse(b, (size_t)i, &h2, &why) == 0);
        }
    }
    free(b);

    pt_header hdr[8];
    size_t n = 0;
    const char *p = (const char *)data, *end = p + size;
    char *copies[8];
    while (p <= end && n < 8) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        copies[n] = fz_dup(p, (size_t)(e - p));
        hdr[n] = (pt_header){"X-Forwarded-For", copies[n], 15, (uint32_t)(e - p)};
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    int af = 0;
    unsigned char a[16];
    uint16_t port;
    int pr = pt_realip_pick(hdr, n, "x-forwarded-for", 15, trusted(), &af, a, &port);
    FZ_CHECK(pr >= -1 && pr <= 1);
    if (pr == 1)
        FZ_CHECK(af == AF_INET || af == AF_INET6);
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return 0;
}
