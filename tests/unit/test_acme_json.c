#include "first.h"
#include "acme_json.h"
#include "tap.h"

/* test_acme_json.c: the ACME client's JSON reader (members, elements,
 * strings; malformed, truncated and too deep input is "absent") and its
 * base64url encoder (RFC 4648 §10 vectors, url alphabet, no padding). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool str_of(const char *json, const char *key, const char *want)
{
    char out[256];
    const char *e = json + strlen(json);
    return pt_acme_json_str(pt_acme_json_get(json, e, key), e, out, sizeof(out)) &&
           strcmp(out, want) == 0;
}

static bool absent(const char *json, const char *key)
{
    char out[256];
    const char *e = json + strlen(json);
    return !pt_acme_json_str(pt_acme_json_get(json, e, key), e, out, sizeof(out));
}

static void test_members(void)
{
    const char *dir = " { \"keyChange\": \"https://x/k\", \"meta\": {\"termsOfService\": \"t\", "
                      "\"n\": [1, -2.5e3, true, false, null]},\n\"newNonce\":\"https://x/n\" } ";
    ok(str_of(dir, "newNonce", "https://x/n"), "a member after a nested object");
    ok(str_of(dir, "keyChange", "https://x/k"), "the first member");
    ok(absent(dir, "termsOfService"), "a nested member is not a top-level one");
    ok(absent(dir, "missing"), "a missing member");
    ok(str_of("{\"a\":\"x\\\"y\\\\z\\/\\u0041\"}", "a", "x\"y\\z/A"), "escapes");
    ok(absent("{\"a\":\"\\u00e9\"}", "a"), "a non-ASCII escape is refused");
    ok(absent("{\"a\":\"x\ny\"}", "a"), "a raw control character is refused");
    ok(absent("{\"a\":\"abc", "a"), "an unterminated string");
    ok(absent("{\"b\":tru,\"a\":\"x\"}", "a"), "a broken literal before the member");
    ok(absent("{\"b\":+1,\"a\":\"x\"}", "a"), "a number with a plus");
    ok(absent("[\"a\",\"x\"]", "a"), "not an object");
    ok(absent("{\"a\" \"x\"}", "a"), "no colon");
    ok(str_of("{\"a\":\"x\"", "a", "x"), "the member is found before the missing brace");
    char small[4];
    const char *j = "{\"a\":\"abcd\"}";
    ok(!pt_acme_json_str(pt_acme_json_get(j, j + strlen(j), "a"), j + strlen(j), small,
                         sizeof(small)),
       "a string too long for the buffer");
    /* the end bounds the reader, not a NUL */
    const char *cut = "{\"a\":\"xy\"}";
    ok(!pt_acme_json_str(pt_acme_json_get(cut, cut + 7, "a"), cut + 7, small, sizeof(small)),
       "a text cut short inside a string");
    ok(pt_acme_json_get(cut, cut + 3, "a") == NULL, "a text cut short inside a key");
}

static void test_elements(void)
{
    const char *o =
        "{\"authorizations\": [ \"https://x/a/1\" , \"https://x/a/2\" ], "
        "\"challenges\": [{\"type\":\"dns-01\"},{\"type\":\"http-01\",\"token\":\"T\"}]}";
    const char *e = o + strlen(o), *a = pt_acme_json_get(o, e, "authorizations");
    char out[64];
    ok(pt_acme_json_str(pt_acme_json_elem(a, e, 1), e, out, sizeof(out)) &&
           strcmp(out, "https://x/a/2") == 0,
       "the second element");
    ok(pt_acme_json_elem(a, e, 2) == NULL, "past the end");
    ok(pt_acme_json_elem(pt_acme_json_get(o, e, "none"), e, 0) == NULL, "of nothing");
    ok(pt_acme_json_elem("[]", "[]" + 2, 0) == NULL, "an empty array");
    const char *c = pt_acme_json_elem(pt_acme_json_get(o, e, "challenges"), e, 1);
    ok(pt_acme_json_str(pt_acme_json_get(c, e, "token"), e, out, sizeof(out)) &&
           strcmp(out, "T") == 0,
       "a member of an element");
    /* nesting deeper than PT_ACME_JSON_DEPTH is malformed */
    char deep[256] = "{\"x\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, ",\"a\":\"y\"}");
    ok(absent(deep, "a"), "too deep");
}

/* A walk over a large array steps over each element once (a walk by
 * index was quadratic: a server's long challenge list cost n^2/2). */
static void test_walk(void)
{
    enum { N = 50000 };
    size_t cap = (size_t)N * 24 + 16, n = 0;
    char *j = malloc(cap), *w = j;
    if (!j) {
        ok(false, "memory for a large array");
        return;
    }
    w += sprintf(w, "[");
    for (int i = 0; i < N; i++)
        w += sprintf(w, "%s{\"n\":\"%d\"}", i ? ", " : "", i);
    sprintf(w, "]");
    const char *e = j + strlen(j), *last = NULL;
    unsigned long before = pt_acme_json_skipped;
    for (const char *c = pt_acme_json_elem(j, e, 0); c; c = pt_acme_json_next(c, e)) {
        last = c;
        n++;
    }
    unsigned long steps = pt_acme_json_skipped - before;
    char out[16];
    ok(n == N, "every element of a %d-element array", N);
    ok(last && pt_acme_json_str(pt_acme_json_get(last, e, "n"), e, out, sizeof(out)) &&
           strcmp(out, "49999") == 0,
       "the last element");
    /* an object element and its member value: two values each */
    ok(steps <= 2ul * N + 2, "the walk stepped over %lu values for %d elements", steps, N);
    ok(pt_acme_json_next(pt_acme_json_elem("[1 2]", "[1 2]" + 5, 0), "[1 2]" + 5) == NULL,
       "a missing comma ends the walk");
    ok(pt_acme_json_next("1, ", "1, " + 3) != NULL &&
           pt_acme_json_next(pt_acme_json_next("1, ", "1, " + 3), "1, " + 3) == NULL,
       "a text ending after a comma");
    free(j);
}

static bool b64(const char *in, const char *want)
{
    char *got = pt_acme_b64url((const unsigned char *)in, strlen(in));
    bool r = got && strcmp(got, want) == 0;
    free(got);
    return r;
}

static void test_b64url(void)
{
    ok(b64("", ""), "empty");
    ok(b64("f", "Zg"), "f");
    ok(b64("fo", "Zm8"), "fo");
    ok(b64("foo", "Zm9v"), "foo");
    ok(b64("foob", "Zm9vYg"), "foob");
    ok(b64("fooba", "Zm9vYmE"), "fooba");
    ok(b64("foobar", "Zm9vYmFy"), "foobar");
    unsigned char hi[] = {0xfb, 0xff, 0xbf};
    char *g = pt_acme_b64url(hi, sizeof(hi));
    ok(g && strcmp(g, "-_-_") == 0, "the url alphabet (- and _)");
    free(g);
}

int main(void)
{
    test_members();
    test_elements();
    test_walk();
    test_b64url();
    return tap_done();
}
