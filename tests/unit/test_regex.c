/* test_regex.c: PCRE2 patterns (regex.c), the location precedence table
 * (locate.c) and rewrite rules (rewrite.c), without sockets. */
#include "first.h"
#include "conf.h"
#include "locate.h"
#include "regex.h"
#include "rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static void test_regex_captures_and_case(void)
{
    char err[512];
    pt_regex *rx = pt_regex_compile("^/u/(\\d+)/(?<name>[a-z]+)$", false, err, sizeof(err));
    long ov[2 * PT_REGEX_NCAPS];
    ok(rx != NULL, "a pattern with a named group compiles");
    ok(pt_regex_match(rx, "/u/42/bob", 9, ov, PT_REGEX_NCAPS) == 1, "it matches");
    ok(ov[2] == 3 && ov[3] == 5 && ov[4] == 6 && ov[5] == 9, "$1 and $2 are where they are");
    ok(ov[6] == -1, "a group the pattern lacks is unset");
    ok(pt_regex_group(rx, "name", 4) == 2 && pt_regex_group(rx, "nope", 4) == -1,
       "named groups resolve to their numbers");
    ok(pt_regex_match(rx, "/u/42/BOB", 9, NULL, 0) == 0, "case-sensitive by default (nginx ~)");
    pt_regex_free(rx);
    rx = pt_regex_compile("\\.PHP$", true, err, sizeof(err));
    ok(rx && pt_regex_match(rx, "/a.php", 6, NULL, 0) == 1, "caseless matches any case (~*)");
    pt_regex_free(rx);
    /* the subject is bytes, not text: a NUL-free path with any octet */
    rx = pt_regex_compile("^/caf.$", false, err, sizeof(err));
    ok(rx && pt_regex_match(rx, "/caf\xe9", 5, NULL, 0) == 1, "bytes, not UTF-8");
    pt_regex_free(rx);
}

static void test_regex_errors_name_the_offset(void)
{
    char err[512];
    ok(pt_regex_compile("^/(a", false, err, sizeof(err)) == NULL &&
           strstr(err, "missing closing parenthesis at offset 4") != NULL,
       "a bad pattern is refused with PCRE2's reason and offset (%s)", err);
    char big[PT_REGEX_MAX_LEN + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ok(pt_regex_compile(big, false, err, sizeof(err)) == NULL && strstr(err, "at most"),
       "a pattern longer than PT_REGEX_MAX_LEN is refused");
}

static void test_regex_limit_is_a_non_match(void)
{
    char err[512], path[4096];
    pt_regex *rx = pt_regex_compile("^/(a|aa)+$", false, err, sizeof(err));
    path[0] = '/';
    memset(path + 1, 'a', 200);
    path[201] = 'b';
    unsigned long before = pt_regex_limit_hits();
    ok(rx && pt_regex_match(rx, path, 202, NULL, 0) == 0, "catastrophic backtracking: no match");
    ok(pt_regex_limit_hits() == before + 1, "... because the match limit was hit");
    ok(pt_regex_match(rx, path, 201, NULL, 0) == 1, "the same pattern still matches a good path");
    pt_regex_free(rx);
}

/* regex_match_limit: a match needing a few thousand steps succeeds under
 * the default limit and gives up under a lower one */
static void test_regex_limits_are_settable(void)
{
    char err[512], path[64];
    pt_regex *rx = pt_regex_compile("^/m/(?:a|aa)+z|^/m/", false, err, sizeof(err));
    snprintf(path, sizeof(path), "/m/%s", "aaaaaaaaaaaaaaaa");
    size_t len = strlen(path);
    ok(rx && pt_regex_match(rx, path, len, NULL, 0) == 1, "matches under the default limits");
    unsigned long before = pt_regex_limit_hits();
    pt_regex_set_limits(1000, PT_REGEX_DEPTH_LIMIT);
    ok(rx && pt_regex_match(rx, path, len, NULL, 0) == 0, "gives up under a match limit of 1000");
    ok(pt_regex_limit_hits() == before + 1, "... counted as a limit hit");
    pt_regex_set_limits(0, 0);
    ok(rx && pt_regex_match(rx, path, len, NULL, 0) == 1, "0 restores the defaults");
    pt_regex_free(rx);
}

/* The literals portico checks before calling PCRE2 must never turn a match
 * into a non-match: each pattern against paths it matches and does not. */
static void test_literal_prefilter_agrees_with_pcre2(void)
{
    static const struct {
        const char *re;
        bool caseless;
        const char *path;
        int want;
    } rows[] = {
        {"^/app/(.+)\\.php$", false, "/app/x.php", 1},
        {"^/app/(.+)\\.php$", false, "/apx/x.php", 0},
        {"^/app/(.+)\\.php$", false, "/app/x.phps", 0},
        {"^/ab?c", false, "/ac", 1}, /* an optional literal ends the prefix */
        {"^/ab*c", false, "/ac", 1},
        {"^/ab{0,2}c", false, "/ac", 1},
        {"^/ab+c", false, "/abbc", 1},
        {"(?i)^/IMG/", false, "/img/a", 1}, /* a leading (?i) folds the literals */
        {"^/IMG/", true, "/Img/a", 1},
        {"\\.PHP$", true, "/a.php", 1},
        {"^/a|\\.b$", false, "/x.b", 1},       /* top-level alternatives: no literals */
        {"(?x) \\.php $", false, "/a.php", 1}, /* (?x): spaces are not literals */
        {"^/a(?i)B", false, "/ab", 1},
        {"x\\$", false, "/ax$", 1}, /* an escaped '$' anchors nothing */
        {"\\\\$", false, "/a\\", 1},
        {"[.]php$", false, "/a.php", 1},
        {"\\Q.php\\E$", false, "/a.php", 1},
        {"^/[]a]b", false, "/]b", 1},
        {"\\d$", false, "/a1", 1},
        {"php$", false, "/a.php\n", 1}, /* '$' before a final newline is PCRE2's */
    };
    char err[512];
    for (size_t i = 0; i < PT_ARRAY_LEN(rows); i++) {
        pt_regex *rx = pt_regex_compile(rows[i].re, rows[i].caseless, err, sizeof(err));
        int got = rx ? pt_regex_match(rx, rows[i].path, strlen(rows[i].path), NULL, 0) : -1;
        ok(got == rows[i].want, "row %zu: %s%s matches: %d (got %d)", i, rows[i].re,
           rows[i].caseless ? " (caseless)" : "", rows[i].want, got);
        pt_regex_free(rx);
    }
}

static const char *where(const pt_vhost *v, const char *path)
{
    const pt_location *l = pt_locate(v, path, strlen(path));
    return l ? l->pattern : "(none)";
}

/* portico.conf(5), LOCATION PRECEDENCE, row by row */
static void test_precedence_table(void)
{
    char err[1024];
    const char *text = "root = \"/tmp\";\n"
                       "locations = (\n"
                       "  { prefix = \"/\"; },\n"
                       "  { prefix = \"/docs/\"; },\n"
                       "  { prefix = \"/docs/raw/\"; stop = true; },\n"
                       "  { prefix = \"/conf/\"; access = [ \"deny all\" ]; },\n"
                       "  { exact = \"/docs/x.php\"; },\n"
                       "  { regex = \"^/docs/.*\\\\.php$\"; },\n"
                       "  { extension = \".php\"; },\n"
                       "  { iregex = \"\\\\.(png|jpg)$\"; },\n"
                       "  { extension = \".gif\"; },\n"
                       "  { regex = \"\\\\.gif$\"; },\n"
                       "  { extension = \".cgi\"; }\n"
                       ");\n";
    pt_config *c = pt_config_load_string(text, NULL, NULL, err, sizeof(err));
    ok(c != NULL, "the table's configuration loads (%s)", c ? "" : err);
    if (!c)
        return;
    const pt_vhost *v = &c->vhosts[0];
    static const struct {
        const char *path, *want, *why;
    } rows[] = {
        {"/docs/x.php", "/docs/x.php", "exact wins over everything"},
        {"/docs/raw/a.php", "/docs/raw/", "a stopping prefix wins over regex and extension"},
        {"/docs/raw/", "/docs/raw/", "... and over the shorter prefix"},
        {"/docs/y.php", "^/docs/.*\\.php$", "regex before extension: the first in order wins"},
        {"/y.php", ".php", "the extension when the earlier regex does not match"},
        {"/conf/local.php", ".php", "a plain prefix does not stop (its deny still holds)"},
        {"/img/A.PNG", "\\.(png|jpg)$", "iregex is caseless"},
        {"/docs/a.png", "\\.(png|jpg)$", "regex over the longest prefix"},
        {"/a.gif", ".gif", "extension before regex: the first in order wins"},
        {"/docs/readme", "/docs/", "the longest prefix last"},
        {"/s.cgi/extra/path", ".cgi", "an extension ending an earlier segment (PATH_INFO)"},
        {"/docs/raw/s.cgi/x", "/docs/raw/", "... not under a stopping prefix"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(rows); i++) {
        const char *got = where(v, rows[i].path);
        ok(strcmp(got, rows[i].want) == 0, "%s: %s -> %s (got %s)", rows[i].why, rows[i].path,
           rows[i].want, got);
    }
    pt_config_free(c);
}

static void test_rewrite_parse(void)
{
    char why[512];
    pt_rewrite_rule r;
    ok(pt_rewrite_parse("^/a/(.*)$ /b/$1 last", &r, why, sizeof(why)) == 0 && r.flag == PT_RW_LAST,
       "REGEX REPLACEMENT last");
    pt_regex_free(r.rx);
    free(r.repl);
    ok(pt_rewrite_parse("^/a$ /b", &r, why, sizeof(why)) == 0 && r.flag == PT_RW_NEXT,
       "no flag: the next rule");
    pt_regex_free(r.rx);
    free(r.repl);
    ok(pt_rewrite_parse("^/a$ /b/$2", &r, why, sizeof(why)) < 0 && strstr(why, "no such group"),
       "a reference to a group the regex lacks is refused (%s)", why);
    ok(pt_rewrite_parse("^/a$ /b nope", &r, why, sizeof(why)) < 0 && strstr(why, "unknown flag"),
       "an unknown flag is refused");
    ok(pt_rewrite_parse("^/(a /b", &r, why, sizeof(why)) < 0 && strstr(why, "offset"),
       "a bad regex names its offset (%s)", why);
    ok(pt_rewrite_ref_len("${name}x") == 7 && pt_rewrite_ref_len("$1") == 2 &&
           pt_rewrite_ref_len("$uri") == 0 && pt_rewrite_ref_len("${}") == 0,
       "capture references: $N and ${name}, not variables");
}

int main(void)
{
    test_regex_captures_and_case();
    test_regex_errors_name_the_offset();
    test_regex_limit_is_a_non_match();
    test_regex_limits_are_settable();
    test_literal_prefilter_agrees_with_pcre2();
    test_precedence_table();
    test_rewrite_parse();
    return tap_done();
}
