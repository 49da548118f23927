/* phases.h: the settings of the later request phases (try_files,
 * error_page, add_header): parsing and checking at load time, and the
 * expansion of their $variables per request. Pure: no connection here, so
 * the unit tests reach every rule. router.c applies them. */
#ifndef PT_PHASES_H
#define PT_PHASES_H

#include "first.h"

#include <stdbool.h>
#include <stddef.h>

/* try_files = [ "$uri", "$uri/", "/index.php?$query_string" ]: every entry
 * but the last is a path looked for (a trailing '/' asks for a directory);
 * the last is a URI the request is redirected to internally, or "=CODE". */
typedef struct pt_try_files {
    char **items;
    size_t n;            /* >= 2 */
    int fallback_status; /* "=404": 404; 0: items[n-1] is a URI */
} pt_try_files;

/* error_page = [ "404 /errors/404.html", "502 503 504 /errors/50x.html" ] */
typedef struct pt_error_page {
    int status;
    const char *uri; /* into uris */
} pt_error_page;
typedef struct pt_error_pages {
    pt_error_page *v;
    size_t n;
    char **uris;
    size_t nuris;
} pt_error_pages;

/* add_header = [ "X-Content-Type-Options: nosniff" ] (+ add_header_always) */
typedef struct pt_add_header {
    char *name, *value;
} pt_add_header;
typedef struct pt_add_headers {
    pt_add_header *v;
    size_t n;
    bool always; /* also on error responses (4xx, 5xx) */
} pt_add_headers;

/* Parse one entry into the objects; 0, or -1 with a reason in why. Each
 * *_add grows its object; *_done checks the whole (try_files: >= 2). */
int pt_phases_try_add(pt_try_files *t, const char *item, bool last, char *why, size_t whylen);
int pt_phases_errpage_add(pt_error_pages *e, const char *text, char *why, size_t whylen);
int pt_phases_header_add(pt_add_headers *h, const char *text, char *why, size_t whylen);

void pt_phases_try_free(pt_try_files *t);
void pt_phases_errpage_free(pt_error_pages *e);
void pt_phases_headers_free(pt_add_headers *h);

/* The page for status in e, or NULL. */
const char *pt_phases_errpage_find(const pt_error_pages *e, int status);

/* What the $variables of try_files stand for in one request. */
typedef struct pt_phase_vars {
    const char *uri; /* the normalised path */
    size_t uri_len;
    const char *query; /* without '?'; may be NULL */
    size_t query_len;
} pt_phase_vars;

/* Expand t into out (cap bytes, NUL-terminated): $uri, $query_string and
 * $args. The length, or -1 when it does not fit. */
long pt_phases_expand(const char *t, const pt_phase_vars *v, char *out, size_t cap);

#endif
