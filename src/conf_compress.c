/* conf_compress.c: on-the-fly compression settings (compress*): defaults and
 * reader. */
#include "first.h"

#include <string.h>

#include "conf_int.h"

/* ---------------------------------------------------------- compression */

/* What "compress" turns on when nothing else is said: the usual text
 * types, as nginx's and lighttpd's examples list them. */
static const char *const compress_default_types[] = {
    "text/*",
    "application/javascript",
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/ld+json",
    "application/manifest+json",
    "application/wasm",
    "image/svg+xml",
    "font/ttf",
    "font/otf",
    NULL,
};

void compress_defaults(pt_compress_cfg *z)
{
    memset(z, 0, sizeof(*z));
    /* zlib's own default level (Apache's and lighttpd's too): about 15%
     * smaller than level 1 for HTML at three times its CPU; brotli 5 is
     * smaller still for less CPU than gzip 6 (portico.conf(5), gzip.sh) */
    z->gzip_level = 6;
    z->brotli_level = 5;
    z->min_length = 256;
    size_t n = 0;
    for (size_t i = 0; compress_default_types[i]; i++) {
        size_t l = strlen(compress_default_types[i]) + 1;
        memcpy(z->types + n, compress_default_types[i], l);
        n += l;
    }
    z->types[n] = '\0';
}

/* The compress_* settings of group g over *z (what the level above gave). */
int get_compress(load_ctx *x, const config_setting_t *g, pt_compress_cfg *z)
{
    const config_setting_t *s;
    long long v;
    opt_bool(g, "compress", &z->on);
    if ((s = member(g, "compress_gzip_level"))) {
        if (get_int(x, s, 1, 9, &v) < 0)
            return -1;
        z->gzip_level = (int)v;
    }
    if ((s = member(g, "compress_brotli_level"))) {
        if (get_int(x, s, 0, 11, &v) < 0)
            return -1;
        z->brotli_level = (int)v;
    }
    if ((s = member(g, "compress_min_length")) &&
        get_amount(x, s, K_SIZE, 0, 1ULL << 40, &z->min_length) < 0)
        return -1;
    if ((s = member(g, "compress_types"))) {
        bool one = config_setting_type(s) == CONFIG_TYPE_STRING;
        int n = one ? 1 : config_setting_length(s);
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            const char *t =
                one ? config_setting_get_string(s) : config_setting_get_string_elem(s, i);
            size_t l = strlen(t);
            if (l == 0 || !memchr(t, '/', l) || strpbrk(t, " \t;,"))
                return fail_at(x, s,
                               "compress_types: '%s' is not a media type (type/subtype, "
                               "or type/*)",
                               t);
            if (off + l + 2 > sizeof(z->types))
                return fail_at(x, s, "compress_types: more than %zu bytes of types",
                               sizeof(z->types) - 2);
            for (size_t k = 0; k <= l; k++) /* media types are case-insensitive */
                z->types[off + k] = (char)((t[k] >= 'A' && t[k] <= 'Z') ? t[k] + 32 : t[k]);
            off += l + 1;
        }
        z->types[off] = '\0';
    }
    return 0;
}
