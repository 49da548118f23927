/* locate.c: the location lookup of every request (locate.h). One pass over
 * the vhost's locations finds the exact match, the longest prefix and the
 * longest extension; regex locations are matched only when neither an exact
 * location nor a stopping prefix has decided, and only those configured
 * before the extension location that would otherwise win. */
#include "first.h"
#include "locate.h"
#include "regex.h"

#include <string.h>

/* An extension location ending a segment before the last ("/a.cgi/x":
 * the script segment, the rest is PATH_INFO): the first such segment, and
 * in it the first location in configuration order. */
static const pt_location *middle_ext(const pt_vhost *v, const char *path, size_t len)
{
    for (size_t i = 1; i < len; i++) {
        if (path[i] != '/')
            continue;
        for (size_t k = 0; k < v->nlocs; k++) {
            const pt_location *e = &v->locs[k];
            if (e->match != PT_MATCH_EXT || e->pattern_len >= i)
                continue;
            if (memcmp(path + i - e->pattern_len, e->pattern, e->pattern_len) == 0 &&
                path[i - e->pattern_len - 1] != '/')
                return e;
        }
    }
    return NULL;
}

const pt_location *pt_locate(const pt_vhost *v, const char *path, size_t len)
{
    const pt_location *ext = NULL, *pre = NULL;
    const char *slash = len ? memrchr(path, '/', len) : NULL;
    size_t seg = slash ? len - (size_t)(slash + 1 - path) : len;
    bool any_regex = false, any_ext = false;
    for (size_t i = 0; i < v->nlocs; i++) {
        const pt_location *l = &v->locs[i];
        size_t pl = l->pattern_len;
        switch (l->match) {
        case PT_MATCH_EXACT:
            if (pl == len && memcmp(path, l->pattern, len) == 0)
                return l;
            break;
        case PT_MATCH_EXT:
            any_ext = true;
            /* the longest extension: ".tar.gz" over ".gz"; "/.txt" is a
             * dotfile, not an extension */
            if (seg > pl && memcmp(path + len - pl, l->pattern, pl) == 0 &&
                (!ext || pl > ext->pattern_len))
                ext = l;
            break;
        case PT_MATCH_PREFIX:
            if (pl <= len && memcmp(path, l->pattern, pl) == 0 && (!pre || pl > pre->pattern_len))
                pre = l;
            break;
        case PT_MATCH_REGEX:
            any_regex = true;
            break;
        }
    }
    /* nginx's "^~": the longest prefix decides before any pattern */
    if (pre && pre->stop)
        return pre;
    if (!ext && any_ext)
        ext = middle_ext(v, path, len);
    if (any_regex)
        for (size_t i = 0; i < v->nlocs; i++) {
            const pt_location *l = &v->locs[i];
            if (l == ext)
                return ext; /* configured before every matching regex */
            if (l->match == PT_MATCH_REGEX && pt_regex_match(l->rx, path, len, NULL, 0))
                return l;
        }
    return ext ? ext : pre;
}
