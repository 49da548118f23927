/* proxyproto.c: strict PROXY protocol parsing (HAProxy's proxy-protocol.txt
 * §2.1 text and §2.2 binary). Anything the spec does not allow is refused:
 * the header says who the client is, so a sloppy reading lets a client
 * choose its own address. */
#include "first.h"
#include "proxyproto.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char v2sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                        0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* a decimal port: 1-5 digits, no leading zero (§2.1), at most 65535 */
static bool v1_port(const char *p, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (p[0] == '0' && n > 1))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool v1_addr(int af, const char *p, size_t n, unsigned char *out)
{
    char t[48];
    if (n == 0 || n >= sizeof(t))
        return false;
    memcpy(t, p, n);
    t[n] = '\0';
    /* inet_pton takes IPv4 only in dotted-quad form; IPv6 in any valid form */
    return inet_pton(af, t, out) == 1;
}

static int parse_v1(const unsigned char *buf, size_t len, pt_proxy_hdr *out, const char **why)
{
    static const char magic[] = "PROXY ";
    size_t m = len < 6 ? len : 6;
    if (memcmp(buf, magic, m) != 0)
        return *why = "not a PROXY protocol header", -1;
    const unsigned char *lf = memchr(buf, '\n', len < PT_PROXY_V1_MAX ? len : PT_PROXY_V1_MAX);
    if (!lf) {
        if (len >= PT_PROXY_V1_MAX)
            return *why = "PROXY v1 header longer than 107 bytes", -1;
        /* only printable bytes (and the CR) may come before the end */
        for (size_t i = 0; i < len; i++)
            if ((buf[i] < 0x20 || buf[i] > 0x7e) && !(buf[i] == '\r' && i + 1 == len))
                return *why = "PROXY v1 header with a control byte", -1;
        return 0;
    }
    size_t hl = (size_t)(lf - buf) + 1;
    if (hl < 8 || buf[hl - 2] != '\r')
        return *why = "PROXY v1 header not ended by CRLF", -1;
    const char *p = (const char *)buf + 6, *end = (const char *)buf + hl - 2;
    for (const char *q = p; q < end; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            return *why = "PROXY v1 header with a control byte", -1;
    memset(out, 0, sizeof(*out));
    out->version = 1;
    /* fields separated by exactly one space */
    const char *f[6];
    size_t fl[6], nf = 0;
    while (p <= end && nf < 6) {
        const char *s = memchr(p, ' ', (size_t)(end - p));
        const char *e = s ? s : end;
        f[nf] = p;
        fl[nf++] = (size_t)(e - p);
        if (!s)
            break;
        p = s + 1;
    }
    if (nf >= 1 && fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0)
        return (int)hl; /* §2.1: the rest of the line is ignored */
    if (nf != 5 || f[4] + fl[4] != end)
        return *why = "PROXY v1 header needs 6 fields", -1;
    if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
        out->af = AF_INET;
    else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
        out->af = AF_INET6;
    else
        return *why = "PROXY v1 header: unknown protocol", -1;
    if (!v1_addr(out->af, f[1], fl[1], out->src) || !v1_addr(out->af, f[2], fl[2], out->dst))
        return *why = "PROXY v1 header: bad address", -1;
    if (!v1_port(f[3], fl[3], &out->src_port) || !v1_port(f[4], fl[4], &out->dst_port))
        return *why = "PROXY v1 header: bad port", -1;
    out->has_addr = true;
    return (int)hl;
}

static int parse_v2(const unsigned char *buf, size_t len, pt_proxy_hdr *out, const char **why)
{
    if (len < 16)
        return 0;
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
    unsigned fam = buf[13] >> 4, proto = buf[13] & 0x0f;
    size_t alen = (size_t)buf[14] << 8 | buf[15];
    if (ver != 2)
        return *why = "PROXY v2 header: bad version", -1;
    if (cmd > 1)
        return *why = "PROXY v2 header: bad command", -1;
    if (fam > 3 || proto > 2)
        return *why = "PROXY v2 header: bad family", -1;
    if (alen > PT_PROXY_V2_MAX_LEN)
        return *why = "PROXY v2 header too long", -1;
    /* the address block must hold the family's addresses (§2.2) */
    size_t need = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (cmd == 1 && proto != 0 && alen < need)
        return *why = "PROXY v2 header: address block too short", -1;
    if (len < 16 + alen)
        return 0;
    memset(out, 0, sizeof(*out));
    out->version = 2;
    const unsigned char *a = buf + 16;
    /* LOCAL (health checks from the balancer itself), UNSPEC and UNIX keep
     * the peer; only a STREAM or DGRAM over IPv4 / IPv6 carries a client */
    if (cmd == 0 || proto == 0 || fam == 0 || fam == 3)
        return (int)(16 + alen);
    if (fam == 1) {
        out->af = AF_INET;
        memcpy(out->src, a, 4);
        memcpy(out->dst, a + 4, 4);
        out->src_port = (uint16_t)(a[8] << 8 | a[9]);
        out->dst_port = (uint16_t)(a[10] << 8 | a[11]);
    } else {
        out->af = AF_INET6;
        memcpy(out->src, a, 16);
        memcpy(out->dst, a + 16, 16);
        out->src_port = (uint16_t)(a[32] << 8 | a[33]);
        out->dst_port = (uint16_t)(a[34] << 8 | a[35]);
    }
    /* TLVs after the addresses are skipped, but must be well formed */
    size_t off = need;
    while (off < alen) {
        if (alen - off < 3 || alen - off - 3 < ((size_t)a[off + 1] << 8 | a[off + 2]))
            return *why = "PROXY v2 header: truncated TLV", -1;
        off += 3 + ((size_t)a[off + 1] << 8 | a[off + 2]);
    }
    out->has_addr = true;
    return (int)(16 + alen);
}

int pt_proxyproto_parse(const unsigned char *buf, size_t len, pt_proxy_hdr *out, const char **why)
{
    *why = NULL;
    if (len == 0)
        return 0;
    if (buf[0] == 'P')
        return parse_v1(buf, len, out, why);
    size_t m = len < 12 ? len : 12;
    if (memcmp(buf, v2sig, m) != 0)
        return *why = "not a PROXY protocol header", -1;
    return parse_v2(buf, len, out, why);
}
