/* fuzz_path.c: the request-path normaliser and the router behind it (vhost
 * by Host, location by normalised path) over a fixed configuration. Input:
 * one option byte, then "Host\npath" (no '\n': no Host). */
#include "fuzz.h"

#include "conf.h"
#include "util.h"

/* Static handlers only: the loader needs no file but the root "/". */
static const char conf_text[] = "root = \"/\";\n"
                                "locations = (\n"
                                "  { prefix = \"/downloads/\"; dir_listing = true; },\n"
                                "  { prefix = \"/downloads/deep/\"; },\n"
                                "  { exact = \"/robots.txt\"; },\n"
                                "  { exact = \"/\"; },\n"
                                "  { extension = \".txt\"; },\n"
                                "  { extension = \".tar.gz\"; },\n"
                                "  { extension = \".gz\"; }\n"
                                ");\n"
                                "vhosts = (\n"
                                "  { names = [ \"a.test\", \"www.a.test\" ]; },\n"
                                "  { names = [ \"*.b.test\", \"*.x.b.test\" ]; locations = (\n"
                                "      { prefix = \"/app/\"; }, { extension = \".php\"; } ); },\n"
                                "  { names = [ \"127.0.0.1\", \"[::1]\" ]; },\n"
                                "  { names = [ \"*\" ]; }\n"
                                ");\n";

static pt_config *cfg;

static bool has_seq(const char *s, size_t n, const char *lit)
{
    return memmem(s, n, lit, strlen(lit)) != NULL;
}

/* Does location l match path p[0..n) at all, per the rules in conf.h? */
static bool loc_matches(const pt_location *l, const char *p, size_t n)
{
    const char *slash = memrchr(p, '/', n);
    size_t seg = slash ? n - (size_t)(slash + 1 - p) : n;
    switch (l->match) {
    case PT_MATCH_EXACT:
        return l->pattern_len == n && memcmp(p, l->pattern, n) == 0;
    case PT_MATCH_EXT:
        return seg > l->pattern_len &&
               memcmp(p + n - l->pattern_len, l->pattern, l->pattern_len) == 0;
    case PT_MATCH_PREFIX:
        return l->pattern_len <= n && memcmp(p, l->pattern, l->pattern_len) == 0;
    case PT_MATCH_REGEX:
        return false; /* pt_config_location leaves them to pt_locate */
    }
    return false;
}

static void check_route(const pt_vhost *v, const char *p, size_t n)
{
    const pt_location *l = pt_config_location(v, p, n), *want_exact = NULL, *want_ext = NULL,
                      *want_pre = NULL;
    for (size_t i = 0; i < v->nlocs; i++) {
        const pt_location *k = &v->locs[i];
        if (!loc_matches(k, p, n))
            continue;
        if (k->match == PT_MATCH_EXACT && !want_exact)
            want_exact = k;
        else if (k->match == PT_MATCH_EXT && (!want_ext || k->pattern_len > want_ext->pattern_len))
            want_ext = k;
        else if (k->match == PT_MATCH_PREFIX &&
                 (!want_pre || k->pattern_len > want_pre->pattern_len))
            want_pre = k;
    }
    /* exact, then the longest extension, then the longest prefix ("/" is always there) */
    FZ_CHECK(l != NULL);
    FZ_CHECK(l >= v->locs && l < v->locs + v->nlocs);
    FZ_CHECK(loc_matches(l, p, n));
    FZ_CHECK(l == (want_exact ? want_exact : want_ext ? want_ext : want_pre));
}

static void check_vhost(const char *host, size_t hlen)
{
    const pt_vhost *v = pt_config_vhost(cfg, host, hlen);
    FZ_CHECK(v != NULL && v >= cfg->vhosts && v < cfg->vhosts + cfg->nvhosts);
    /* a host that is exactly one of the names picks that vhost */
    for (size_t i = 0; i < cfg->nvhosts; i++)
        for (size_t j = 0; j < cfg->vhosts[i].nnames; j++) {
            const char *name = cfg->vhosts[i].names[j];
            if (name[0] != '*' && host && fz_ieq(host, hlen, name))
                FZ_CHECK(v == &cfg->vhosts[i]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        char err[512];
        cfg = pt_config_load_string(conf_text, NULL, NULL, err, sizeof(err));
        if (!cfg) {
            fprintf(stderr, "fuzz_path: configuration: %s\n", err);
            abort();
        }
    }
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(p, '\n', len);
    const char *host = NULL;
    size_t hlen = 0;
    if (nl) {
        host = p;
        hlen = (size_t)(nl - p);
        len -= hlen + 1;
        p = nl + 1;
    }
    char *path = fz_dup(p, len);
    char *out = malloc(len + 1);
    FZ_CHECK(out != NULL);
    /* option bit 0: a path that starts with '/', as h1_head hands over */
    if ((opt & 1) && len)
        path[0] = '/';

    ssize_t n = pt_path_normalize(path, len, out);
    if (n >= 0) {
        size_t m = (size_t)n;
        FZ_CHECK(m >= 1 && m <= len && out[0] == '/' && out[m] == '\0');
        FZ_CHECK(path[0] == '/');
        FZ_CHECK(memchr(out, '\0', m) == NULL);
        for (size_t i = 0; i < m; i++)
            FZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
        FZ_CHECK(!has_seq(out, m, "//") && !has_seq(out, m, "/../") && !has_seq(out, m, "/./"));
        FZ_CHECK(!(m >= 3 && memcmp(out + m - 3, "/..", 3) == 0));
        FZ_CHECK(!(m >= 2 && memcmp(out + m - 2, "/.", 2) == 0));
        /* a trailing slash is kept (unless everything above it was removed) */
        if (len > 1 && path[len - 1] == '/' && !memchr(path, '%', len))
            FZ_CHECK(out[m - 1] == '/');
        /* without '%' left to decode, normalising again changes nothing */
        if (!memchr(out, '%', m)) {
            char *again = malloc(m + 1);
            FZ_CHECK(again != NULL);
            FZ_CHECK(pt_path_normalize(out, m, again) == n && memcmp(again, out, m + 1) == 0);
            free(again);
        }
        check_vhost(host, hlen);
        check_route(pt_config_vhost(cfg, host, hlen), out, m);
    } else {
        FZ_CHECK(n == -1);
    }
    free(out);
    free(path);
    return 0;
}
