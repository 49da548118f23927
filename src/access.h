/* access.h: ordered allow / deny rules on the client address (addresses,
 * CIDR blocks, "all"), nginx's access module semantics: the first rule that
 * matches decides, no match allows. A leaf: parsing and matching only. */
#ifndef PT_ACCESS_H
#define PT_ACCESS_H

#include "first.h"

typedef struct pt_access_rule {
    bool allow;
    bool all;           /* "allow all" / "deny all": any address, Unix sockets too */
    unsigned char af;   /* AF_INET or AF_INET6 (not for "all") */
    unsigned char bits; /* prefix length: 0-32 or 0-128 */
    unsigned char addr[16];
    char *text;  /* as written, for log lines */
    char *where; /* "portico.conf:12" */
} pt_access_rule;

typedef struct pt_access_list {
    pt_access_rule *rules;
    size_t n;
} pt_access_list;

/* Parse "allow 10.0.0.0/8", "deny 2001:db8::/32", "deny all", "allow ::1"
 * into r (text and where stay NULL). An IPv6 rule inside ::ffff:0:0/96 is
 * stored as the IPv4 rule it means. 0, or -1 with a reason in why. */
int pt_access_parse(const char *text, pt_access_rule *r, char *why, size_t whylen);
/* The first rule of l matching the address (af AF_INET: 4 bytes, AF_INET6:
 * 16 bytes, anything else: only "all" rules match), or NULL. */
const pt_access_rule *pt_access_match(const pt_access_list *l, int af, const unsigned char *addr);
/* Whether l lets the address in: no list, no match or an allow rule. */
bool pt_access_allowed(const pt_access_list *l, int af, const unsigned char *addr,
                       const pt_access_rule **rule);
void pt_access_list_free(pt_access_list *l);

#endif
