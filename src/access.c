/* access.c: allow / deny rules on the client address. IPv4 peers reaching
 * a dual-stack listener arrive as IPv4 (conn.c unmaps ::ffff:a.b.c.d), so
 * IPv4 rules match them; the same unmapping is applied to rules here. */
#include "first.h"
#include "access.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static bool prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* any bit set beyond the prefix length? */
static bool host_bits(const unsigned char *a, unsigned bytes, unsigned bits)
{
    for (unsigned i = 0; i < bytes * 8; i++)
        if (i >= bits && (a[i / 8] >> (7 - i % 8) & 1))
            return true;
    return false;
}

int pt_access_parse(const char *text, pt_access_rule *r, char *why, size_t whylen)
{
    memset(r, 0, sizeof(*r));
    const char *p = text;
    if (strncmp(p, "allow", 5) == 0 && (p[5] == ' ' || p[5] == '\t')) {
        r->allow = true;
        p += 5;
    } else if (strncmp(p, "deny", 4) == 0 && (p[4] == ' ' || p[4] == '\t')) {
        p += 4;
    } else {
        snprintf(why, whylen, "access rule '%s' must be \"allow ADDRESS\" or \"deny ADDRESS\"",
                 text);
        return -1;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strcspn(p, " \t");
    if (p[len + strspn(p + len, " \t")] != '\0' || len == 0 || len >= 64) {
        snprintf(why, whylen, "access rule '%s': one address, CIDR block or \"all\" expected",
                 text);
        return -1;
    }
    if (len == 3 && memcmp(p, "all", 3) == 0) {
        r->all = true;
        return 0;
    }
    char a[64];
    memcpy(a, p, len);
    a[len] = '\0';
    char *slash = strchr(a, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, a, r->addr) == 1) {
        r->af = AF_INET;
        r->bits = 32;
    } else if (inet_pton(AF_INET6, a, r->addr) == 1) {
        r->af = AF_INET6;
        r->bits = 128;
    } else {
        snprintf(why, whylen, "access rule '%s': '%s' is not an IPv4 or IPv6 address", text, a);
        return -1;
    }
    if (slash) {
        const char *b = slash + 1;
        char *end;
        unsigned long bits = strtoul(b, &end, 10);
        if (!*b || *end || b[0] < '0' || b[0] > '9' || bits > r->bits || (b[0] == '0' && b[1])) {
            snprintf(why, whylen, "access rule '%s': bad prefix length '/%s'", text, b);
            return -1;
        }
        r->bits = (unsigned char)bits;
    }
    unsigned bytes = r->af == AF_INET ? 4 : 16;
    if (host_bits(r->addr, bytes, r->bits)) {
        /* "10.0.0.1/8" would silently mean 10.0.0.0/8: say so instead */
        snprintf(why, whylen, "access rule '%s': address bits set beyond the /%u prefix", text,
                 r->bits);
        return -1;
    }
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (r->af == AF_INET6 && r->bits >= 96 && memcmp(r->addr, mapped, 12) == 0) {
        memmove(r->addr, r->addr + 12, 4);
        memset(r->addr + 4, 0, 12);
        r->af = AF_INET;
        r->bits = (unsigned char)(r->bits - 96);
    }
    return 0;
}

const pt_access_rule *pt_access_match(const pt_access_list *l, int af, const unsigned char *addr)
{
    if (!l)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        const pt_access_rule *r = &l->rules[i];
        if (r->all || (r->af == af && prefix_eq(r->addr, addr, r->bits)))
            return r;
    }
    return NULL;
}

bool pt_access_allowed(const pt_access_list *l, int af, const unsigned char *addr,
                       const pt_access_rule **rule)
{
    const pt_access_rule *r = pt_access_match(l, af, addr);
    if (rule)
        *rule = r;
    return !r || r->allow;
}

void pt_access_list_free(pt_access_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->rules[i].text);
        free(l->rules[i].where);
    }
    free(l->rules);
    free(l);
}
