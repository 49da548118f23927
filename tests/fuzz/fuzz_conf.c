/* fuzz_conf.c: the configuration loader from a string, plus command-line
 * flags and -o overrides taken from the input. Load + free never leaks (LSan
 * checks every input), a failure always says why, a success satisfies the
 * documented shape of pt_config. The loader only reads the filesystem
 * (realpath/stat of roots and dirs); "@include" is refused here so no input
 * can make libconfig read an arbitrary file such as /dev/zero.
 * Input: option byte, config text, then optionally "\n--\n" and one flag per
 * line ("o:path=value", "cgi:PREFIX=PATH", "fcgi:PATTERN=ADDR", "listen:",
 * "port:", "root:", "max-body:"). */
#include "fuzz.h"

#include <strings.h>

#include "conf.h"

#define MAX_FLAGS 8

/* libconfig 1.5 (Debian 12) leaks the string token it was scanning when the
 * grammar fails (hyperrealm/libconfig#142, fixed in 1.7 by PR #155): a
 * non-empty one is built by strbuf_append, an empty one calloc'd by the
 * scanner itself. Not portico's to fix. LSan matches a rule against each
 * frame's module before it symbolizes, so the module name works where no
 * llvm-symbolizer is installed (a function name silently matches nothing
 * there). The price: nothing allocated inside libconfig is reported here,
 * not even a config_t that conf.c forgot to destroy; the ASan build's
 * test_conf, which loads configurations with no suppression, still would. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

static bool has_include(const char *p, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i++)
        if (p[i] == '@' && strncasecmp(p + i, "@include", 8) == 0)
            return true;
    return false;
}

static bool starts(const char *s, const char *lit)
{
    return strncmp(s, lit, strlen(lit)) == 0;
}

/* Split the flag lines (in place, in their own NUL-terminated copy). */
static void parse_flags(char *s, pt_cli *cli, const char **ov, const char **cgi, const char **fcgi,
                        const char **listen)
{
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (starts(line, "o:") && cli->noverrides < MAX_FLAGS)
            ov[cli->noverrides++] = line + 2;
        else if (starts(line, "cgi:") && cli->ncgi < MAX_FLAGS)
            cgi[cli->ncgi++] = line + 4;
        else if (starts(line, "fcgi:") && cli->nfastcgi < MAX_FLAGS)
            fcgi[cli->nfastcgi++] = line + 5;
        else if (starts(line, "listen:") && cli->nlisten < MAX_FLAGS)
            listen[cli->nlisten++] = line + 7;
        else if (starts(line, "port:"))
            cli->port = line + 5;
        else if (starts(line, "root:"))
            cli->root = line + 5;
        else if (starts(line, "max-body:"))
            cli->max_body = line + 9;
        else if (starts(line, "workers:"))
            cli->workers = atoi(line + 8) & 0xff;
    }
}

static void check_config(const pt_config *c)
{
    size_t ndefault = 0;
    FZ_CHECK(c->workers >= 1);
    FZ_CHECK(c->nvhosts >= 1);
    FZ_CHECK(c->limits.header_buffer >= 1024 && c->limits.header_buffer <= 1024 * 1024);
    FZ_CHECK(c->limits.max_headers >= 1 && c->limits.max_ranges >= 1 && c->limits.max_ranges <= 64);
    for (size_t i = 0; i < c->nlisten; i++)
        FZ_CHECK(c->listen[i].text && c->listen[i].addrlen > 0 &&
                 c->listen[i].addrlen <= sizeof(c->listen[i].addr));
    for (size_t i = 0; i < c->nvhosts; i++) {
        const pt_vhost *v = &c->vhosts[i];
        ndefault += v->is_default;
        FZ_CHECK(v->root && v->root[0] == '/');
        FZ_CHECK(v->nlocs >= 1);
        for (size_t j = 0; j < v->nlocs; j++) {
            const pt_location *l = &v->locs[j];
            FZ_CHECK(l->pattern && l->pattern_len == strlen(l->pattern) && l->pattern_len > 0);
            if (l->match == PT_MATCH_REGEX)
                FZ_CHECK(l->rx != NULL);
            else
                FZ_CHECK(l->match == PT_MATCH_EXT ? l->pattern[0] == '.' : l->pattern[0] == '/');
            if (l->handler == PT_H_FASTCGI)
                FZ_CHECK(l->backend >= c->backends && l->backend < c->backends + c->nbackends);
            FZ_CHECK(!l->root || l->root[0] == '/');
        }
        /* each name leads back to its vhost */
        for (size_t j = 0; j < v->nnames; j++)
            if (v->names[j][0] != '*')
                FZ_CHECK(pt_config_vhost(c, v->names[j], strlen(v->names[j])) == v);
        /* a location for "/" always exists */
        FZ_CHECK(pt_config_location(v, "/", 1) != NULL);
    }
    FZ_CHECK(ndefault == 1);
    FZ_CHECK(pt_config_vhost(c, NULL, 0) != NULL);
    for (size_t i = 0; i < c->nbackends; i++) {
        const pt_backend *b = &c->backends[i];
        FZ_CHECK(b->name && b->nservers >= 1);
        for (size_t j = 0; j < b->nservers; j++)
            FZ_CHECK(b->servers[j].address && b->servers[j].addrlen > 0 &&
                     b->servers[j].addrlen <= sizeof(b->servers[j].addr));
    }
    for (size_t i = 0; i < c->nwarnings; i++)
        FZ_CHECK(c->warnings[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    uint8_t opt = data[0];
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    if (has_include(p, len))
        return 0;
    /* the text as a C string (an embedded NUL simply ends it) */
    char *text = malloc(len + 1), *flags = NULL;
    FZ_CHECK(text != NULL);
    memcpy(text, p, len);
    text[len] = '\0';
    pt_cli cli = {.workers = -1};
    const char *ov[MAX_FLAGS], *cgi[MAX_FLAGS], *fcgi[MAX_FLAGS], *listen[MAX_FLAGS];
    char *sep = strstr(text, "\n--\n");
    if (sep) {
        *sep = '\0';
        flags = sep + 4;
        parse_flags(flags, &cli, ov, cgi, fcgi, listen);
        cli.overrides = ov;
        cli.cgi = cgi;
        cli.fastcgi = fcgi;
        cli.listen = listen;
    }
    /* bit 0: messages name a file in a directory that does not exist, so
     * relative paths resolve there (and fail) instead of the CWD */
    const char *name = (opt & 1) ? "/nonexistent-portico-fuzz/fuzz.conf" : NULL;
    char err[256];
    memset(err, 0x55, sizeof(err));
    pt_config *c =
        pt_config_load_string(text, name, (opt & 2) || sep ? &cli : NULL, err, sizeof(err));
    if (!c) {
        FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    } else {
        check_config(c);
        pt_config_free(c);
    }
    free(text);
    return 0;
}
