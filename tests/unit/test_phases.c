/* test_phases.c: try_files, error_page and add_header parsing (what -t
 * refuses and why), $variable expansion, and the alias offset of a path
 * under a prefix (router.c), whole segments only. */
#include "first.h"
#include "phases.h"
#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static int try_list(const char *const *items, size_t n, pt_try_files **out)
{
    pt_try_files *t = calloc(1, sizeof(*t));
    char why[300];
    for (size_t i = 0; i < n; i++)
        if (pt_phases_try_add(t, items[i], i + 1 == n, why, sizeof(why)) < 0) {
            pt_phases_try_free(t);
            return -1;
        }
    *out = t;
    return 0;
}

static void test_try_files(void)
{
    pt_try_files *t = NULL;
    const char *const wp[] = {"$uri", "$uri/", "/index.php?$query_string"};
    ok(try_list(wp, 3, &t) == 0 && t->n == 3 && t->fallback_status == 0, "WordPress list");
    pt_phases_try_free(t);
    const char *const st[] = {"$uri", "=404"};
    ok(try_list(st, 2, &t) == 0 && t->fallback_status == 404, "=404 fallback");
    pt_phases_try_free(t);
    const char *const bad1[] = {"$uri", "=99"};
    ok(try_list(bad1, 2, &t) < 0, "=99 refused");
    const char *const bad2[] = {"$nope", "/i.php"};
    ok(try_list(bad2, 2, &t) < 0, "unknown variable refused");
    const char *const bad3[] = {"$uri?x", "/i.php"};
    ok(try_list(bad3, 2, &t) < 0, "a query before the last entry refused");
    const char *const bad4[] = {"rel", "/i.php"};
    ok(try_list(bad4, 2, &t) < 0, "a relative entry refused");
    const char *const bad5[] = {"$uri", "/a b"};
    ok(try_list(bad5, 2, &t) < 0, "a space refused");
    const char *const bad6[] = {"$uri", "=404", "/x"};
    ok(try_list(bad6, 3, &t) < 0, "=CODE only last");
    /* a raw query in a path looked for ("/c/$args" with "?../admin/x")
     * would bring dot segments past the normaliser */
    const char *const bad7[] = {"/c/$args", "=404"};
    ok(try_list(bad7, 2, &t) < 0, "$args refused in a path looked for");
    const char *const bad8[] = {"$uri", "/q/$query_string", "/i.php"};
    ok(try_list(bad8, 3, &t) < 0, "$query_string refused in a path looked for");
    const char *const fine[] = {"/cache$uri.html", "$uri", "/i.php?$args"};
    ok(try_list(fine, 3, &t) == 0, "$uri anywhere, $args in the last entry");
    pt_phases_try_free(t);
}

static void test_expand(void)
{
    char out[64];
    pt_phase_vars v = {"/a/b", 4, "x=1&y", 5};
    long n = pt_phases_expand("/index.php?$query_string", &v, out, sizeof(out));
    ok(n > 0 && strcmp(out, "/index.php?x=1&y") == 0, "$query_string");
    n = pt_phases_expand("$uri/", &v, out, sizeof(out));
    ok(n == 5 && strcmp(out, "/a/b/") == 0, "$uri/");
    n = pt_phases_expand("/i?$args", &(pt_phase_vars){"/", 1, NULL, 0}, out, sizeof(out));
    ok(n == 3 && strcmp(out, "/i?") == 0, "no query: empty $args");
    ok(pt_phases_expand("$uri$uri$uri", &v, out, 8) < 0, "too long for out: -1");
}

static void test_error_page(void)
{
    pt_error_pages *e = calloc(1, sizeof(*e));
    char why[300];
    ok(pt_phases_errpage_add(e, "404 /errors/404.html", why, sizeof(why)) == 0, "one status");
    ok(pt_phases_errpage_add(e, "502 503 504 /errors/50x.html", why, sizeof(why)) == 0,
       "three statuses");
    ok(e->n == 4 && strcmp(pt_phases_errpage_find(e, 503), "/errors/50x.html") == 0 &&
           strcmp(pt_phases_errpage_find(e, 404), "/errors/404.html") == 0 &&
           !pt_phases_errpage_find(e, 500),
       "lookup by status");
    ok(pt_phases_errpage_add(e, "404 /again.html", why, sizeof(why)) < 0, "a status twice");
    ok(pt_phases_errpage_add(e, "404", why, sizeof(why)) < 0, "no URI");
    ok(pt_phases_errpage_add(e, "200 /x", why, sizeof(why)) < 0, "200 refused");
    ok(pt_phases_errpage_add(e, "4040 /x", why, sizeof(why)) < 0, "four digits refused");
    ok(pt_phases_errpage_add(e, "/x", why, sizeof(why)) < 0, "no status");
    pt_phases_errpage_free(e);
}

static void test_add_header(void)
{
    pt_add_headers *h = calloc(1, sizeof(*h));
    char why[300];
    ok(pt_phases_header_add(h, "X-Content-Type-Options: nosniff", why, sizeof(why)) == 0 &&
           strcmp(h->v[0].name, "X-Content-Type-Options") == 0 &&
           strcmp(h->v[0].value, "nosniff") == 0,
       "name and value split, blanks trimmed");
    ok(pt_phases_header_add(h, "Strict-Transport-Security:max-age=63072000 ", why, sizeof(why)) ==
               0 &&
           strcmp(h->v[1].value, "max-age=63072000") == 0,
       "no space after the colon");
    ok(pt_phases_header_add(h, "Bad Name: x", why, sizeof(why)) < 0, "space in the name");
    ok(pt_phases_header_add(h, ": x", why, sizeof(why)) < 0, "empty name");
    ok(pt_phases_header_add(h, "NoColon", why, sizeof(why)) < 0, "no colon");
    ok(pt_phases_header_add(h, "X-A: a\r\nX-B: b", why, sizeof(why)) < 0, "CR LF in the value");
    ok(pt_phases_header_add(h, "X-A: a\nb", why, sizeof(why)) < 0, "LF in the value");
    ok(pt_phases_header_add(h, "content-length: 1", why, sizeof(why)) < 0,
       "a field portico writes");
    ok(h->n == 2, "only the good ones kept");
    pt_phases_headers_free(h);
}

static void test_alias_rel(void)
{
    ok(pt_router_alias_rel("/css/", 5, "/css/a.css", 10) == 5, "slash prefix");
    ok(pt_router_alias_rel("/icons", 6, "/icons/a", 8) == 7, "prefix without slash");
    ok(pt_router_alias_rel("/icons", 6, "/icons", 6) == 6, "the prefix itself");
    ok(pt_router_alias_rel("/icons", 6, "/iconsX/a", 9) == -1, "not a whole segment");
    ok(pt_router_alias_rel("/css/", 5, "/other", 6) == -1, "not under the prefix");
}

int main(void)
{
    test_try_files();
    test_expand();
    test_error_page();
    test_add_header();
    test_alias_rel();
    return tap_done();
}
