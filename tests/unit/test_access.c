/* test_access.c: allow / deny rules: parsing (addresses, CIDR blocks,
 * "all", mistakes), IPv4 and IPv6 prefixes, IPv4-mapped rules, and nginx's
 * order: the first matching rule decides, no match allows. */
#include "first.h"
#include "access.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tap.h"

static pt_access_list *list(const char *const *rules, size_t n)
{
    pt_access_list *l = calloc(1, sizeof(*l));
    l->rules = calloc(n, sizeof(*l->rules));
    char why[256];
    for (size_t i = 0; i < n; i++)
        if (pt_access_parse(rules[i], &l->rules[l->n], why, sizeof(why)) == 0)
            l->n++;
    return l;
}

/* is text (an IPv4 or IPv6 address) let in by l? */
static bool lets_in(const pt_access_list *l, const char *text)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, text, a) == 1)
        return pt_access_allowed(l, AF_INET, a, NULL);
    if (inet_pton(AF_INET6, text, a) == 1)
        return pt_access_allowed(l, AF_INET6, a, NULL);
    return false;
}

static void test_parse_rejects_mistakes(void)
{
    pt_access_rule r;
    char why[256];
    static const char *const bad[] = {"permit 10.0.0.0/8",  "allow",
                                      "allow 10.0.0.0/33",  "allow 10.0.0.1/8",
                                      "deny ::1/129",       "allow 10.0.0.0/",
                                      "allow 10.0.0.0/08",  "allow 10.0.0.0 extra",
                                      "deny host.example",  "allow 10.0.0.256",
                                      "deny 2001:db8::1/32"};
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++)
        ok(pt_access_parse(bad[i], &r, why, sizeof(why)) < 0, "rejects '%s' (%s)", bad[i], why);
    ok(pt_access_parse("deny  all", &r, why, sizeof(why)) == 0 && r.all && !r.allow,
       "\"deny all\" (two spaces)");
    ok(pt_access_parse("allow 192.0.2.7", &r, why, sizeof(why)) == 0 && r.allow &&
           r.af == AF_INET && r.bits == 32,
       "a lone IPv4 address is a /32");
    ok(pt_access_parse("allow 2001:db8::/32", &r, why, sizeof(why)) == 0 && r.af == AF_INET6 &&
           r.bits == 32,
       "an IPv6 block");
}

static void test_ipv4_cidr_and_first_match_wins(void)
{
    static const char *const rules[] = {"deny 10.1.0.0/16", "allow 10.0.0.0/8", "allow 192.0.2.1",
                                        "deny all"};
    pt_access_list *l = list(rules, 4);
    ok(l->n == 4, "four rules");
    ok(lets_in(l, "10.2.3.4"), "10.2.3.4 allowed by 10.0.0.0/8");
    ok(!lets_in(l, "10.1.3.4"), "10.1.3.4 denied: the earlier deny 10.1.0.0/16 wins");
    ok(lets_in(l, "192.0.2.1"), "192.0.2.1 allowed (/32)");
    ok(!lets_in(l, "192.0.2.2"), "192.0.2.2 denied by deny all");
    ok(!lets_in(l, "11.0.0.0"), "11.0.0.0 denied (just outside /8)");
    ok(!lets_in(l, "::1"), "an IPv6 client meets deny all");
    ok(!pt_access_allowed(l, AF_UNIX, (const unsigned char *)"", NULL),
       "a Unix-socket client meets deny all");
    pt_access_list_free(l);
}

static void test_odd_prefix_lengths(void)
{
    static const char *const rules[] = {"allow 172.16.0.0/12", "deny all"};
    pt_access_list *l = list(rules, 2);
    ok(lets_in(l, "172.31.255.255") && lets_in(l, "172.16.0.0"), "/12: both ends inside");
    ok(!lets_in(l, "172.32.0.0") && !lets_in(l, "172.15.255.255"), "/12: both neighbours out");
    pt_access_list_free(l);
    /* 0.0.0.0/0 is every IPv4 address, and no IPv6 one */
    static const char *const r2[] = {"deny 0.0.0.0/0"};
    l = list(r2, 1);
    ok(!lets_in(l, "203.0.113.9") && lets_in(l, "2001:db8::1"), "0.0.0.0/0: IPv4 only");
    pt_access_list_free(l);
}

static void test_ipv6_cidr(void)
{
    static const char *const rules[] = {"allow ::1", "allow 2001:db8:ab00::/40", "deny all"};
    pt_access_list *l = list(rules, 3);
    ok(lets_in(l, "::1"), "::1 allowed");
    ok(lets_in(l, "2001:db8:abff:1::5"), "inside the /40");
    ok(!lets_in(l, "2001:db8:ac00::1"), "outside the /40");
    ok(!lets_in(l, "::2"), "::2 denied");
    ok(!lets_in(l, "127.0.0.1"), "an IPv4 client is not ::1");
    pt_access_list_free(l);
}

static void test_no_match_allows(void)
{
    static const char *const rules[] = {"deny 198.51.100.0/24"};
    pt_access_list *l = list(rules, 1);
    ok(lets_in(l, "198.51.101.1"), "no rule matches: allowed (nginx)");
    ok(!lets_in(l, "198.51.100.77"), "the deny matches");
    ok(pt_access_allowed(NULL, AF_INET, (const unsigned char *)"\x01\x02\x03\x04", NULL),
       "no list: allowed");
    pt_access_list_free(l);
}

static void test_mapped_ipv6_rule_is_an_ipv4_rule(void)
{
    /* conn.c gives an IPv4 client on a dual-stack listener as AF_INET */
    static const char *const rules[] = {"deny ::ffff:10.0.0.0/104", "deny ::ffff:192.0.2.1"};
    pt_access_list *l = list(rules, 2);
    ok(l->n == 2 && l->rules[0].af == AF_INET && l->rules[0].bits == 8, "stored as 10.0.0.0/8");
    ok(!lets_in(l, "10.9.9.9") && !lets_in(l, "192.0.2.1"), "IPv4 clients denied");
    ok(lets_in(l, "11.0.0.1"), "others allowed");
    pt_access_list_free(l);
}

int main(void)
{
    test_parse_rejects_mistakes();
    test_ipv4_cidr_and_first_match_wins();
    test_odd_prefix_lengths();
    test_ipv6_cidr();
    test_no_match_allows();
    test_mapped_ipv6_rule_is_an_ipv4_rule();
    return tap_done();
}
