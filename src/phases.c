/* phases.c: try_files, error_page and add_header settings (phases.h).
 * Mistakes are found at load time, with the reason -t prints: a typo in a
 * variable or a header that would split the response (CR/LF) never reaches
 * a request. */
#include "first.h"
#include "phases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const try_vars[] = {"$uri", "$query_string", "$args"};

/* the length of the variable at p, or 0 when unknown */
static size_t var_len(const char *p)
{
    for (size_t i = 0; i < sizeof(try_vars) / sizeof(try_vars[0]); i++) {
        size_t l = strlen(try_vars[i]);
        /* the longest name first would matter for prefixes: none overlap */
        if (strncmp(p, try_vars[i], l) == 0)
            return l;
    }
    return 0;
}

static char *dup(const char *s)
{
    return strdup(s);
}

int pt_phases_try_add(pt_try_files *t, const char *item, bool last, char *why, size_t whylen)
{
    if (last && item[0] == '=') {
        char *end;
        long st = strtol(item + 1, &end, 10);
        if (end == item + 1 || *end || st < 200 || st > 599) {
            snprintf(why, whylen, "try_files '%s': the last entry \"=CODE\" needs 200-599", item);
            return -1;
        }
        t->fallback_status = (int)st;
    } else {
        if (item[0] != '/' && item[0] != '$') {
            snprintf(why, whylen, "try_files '%s': an entry starts with '/' or a $variable", item);
            return -1;
        }
        for (const char *p = item; *p; p++) {
            if ((unsigned char)*p < 0x21 || *p == 0x7f) {
                snprintf(why, whylen, "try_files '%s': no spaces or control characters", item);
                return -1;
            }
            if (*p == '$' && !var_len(p)) {
                snprintf(why, whylen,
                         "try_files '%s': unknown variable at '%.20s' ($uri, $query_string, "
                         "$args)",
                         item, p);
                return -1;
            }
            if (!last && *p == '?') {
                snprintf(why, whylen, "try_files '%s': only the last entry takes a query", item);
                return -1;
            }
            /* a path looked for may hold only $uri (normalised): the raw
             * query would bring ".." and encoded bytes into the file
             * system lookup and the routing of what is found */
            if (!last && *p == '$' && strncmp(p, "$uri", 4) != 0) {
                snprintf(why, whylen,
                         "try_files '%s': only $uri may stand in a path looked for; $args and "
                         "$query_string belong to the last entry",
                         item);
                return -1;
            }
        }
    }
    char **v = realloc(t->items, (t->n + 1) * sizeof(*v));
    if (!v || !(v[t->n] = dup(item))) {
        if (v)
            t->items = v;
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    t->items = v;
    t->n++;
    return 0;
}

void pt_phases_try_free(pt_try_files *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->items[i]);
    free(t->items);
    free(t);
}

int pt_phases_errpage_add(pt_error_pages *e, const char *text, char *why, size_t whylen)
{
    const char *p = text, *uri = strrchr(text, ' ');
    if (!uri || uri[1] != '/') {
        snprintf(why, whylen, "error_page '%s': \"STATUS... /uri\"", text);
        return -1;
    }
    uri++;
    for (const char *q = uri; *q; q++)
        if ((unsigned char)*q < 0x21 || *q == 0x7f) {
            snprintf(why, whylen, "error_page '%s': no control characters in the URI", text);
            return -1;
        }
    char *u = dup(uri);
    char **us = u ? realloc(e->uris, (e->nuris + 1) * sizeof(*us)) : NULL;
    if (!us) {
        free(u);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    e->uris = us;
    us[e->nuris++] = u;
    size_t count = 0;
    while (p < uri - 1) {
        char *end;
        long st = strtol(p, &end, 10);
        if (end - p != 3 || st < 300 || st > 599 || (*end != ' ')) {
            snprintf(why, whylen, "error_page '%s': statuses are 300-599, then one URI", text);
            return -1;
        }
        for (size_t i = 0; i < e->n; i++)
            if (e->v[i].status == (int)st) {
                snprintf(why, whylen, "error_page '%s': status %ld is given twice", text, st);
                return -1;
            }
        pt_error_page *v = realloc(e->v, (e->n + 1) * sizeof(*v));
        if (!v) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        e->v = v;
        v[e->n++] = (pt_error_page){(int)st, u};
        count++;
        p = end;
        while (*p == ' ')
            p++;
    }
    if (!count) {
        snprintf(why, whylen, "error_page '%s': no status before the URI", text);
        return -1;
    }
    return 0;
}

void pt_phases_errpage_free(pt_error_pages *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nuris; i++)
        free(e->uris[i]);
    free(e->uris);
    free(e->v);
    free(e);
}

const char *pt_phases_errpage_find(const pt_error_pages *e, int status)
{
    for (size_t i = 0; e && i < e->n; i++)
        if (e->v[i].status == status)
            return e->v[i].uri;
    return NULL;
}

/* RFC 9110 §5.6.2 tchar */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Fields portico writes itself: a second one would contradict it. */
static const char *const own_fields[] = {
    "content-length", "transfer-encoding", "connection", "date", "server", "content-type"};

int pt_phases_header_add(pt_add_headers *h, const char *text, char *why, size_t whylen)
{
    const char *colon = strchr(text, ':');
    size_t nl = colon ? (size_t)(colon - text) : 0;
    for (size_t i = 0; i < nl; i++)
        if (!is_tchar((unsigned char)text[i]))
            nl = 0;
    if (!nl) {
        snprintf(why, whylen, "add_header '%s': \"Name: value\" with a token name (RFC 9110 §5.1)",
                 text);
        return -1;
    }
    for (size_t i = 0; i < sizeof(own_fields) / sizeof(own_fields[0]); i++)
        if (strlen(own_fields[i]) == nl && strncasecmp(text, own_fields[i], nl) == 0) {
            snprintf(why, whylen, "add_header '%s': portico sets %.*s itself", text, (int)nl, text);
            return -1;
        }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    for (size_t i = 0; i < vl; i++) {
        unsigned char ch = (unsigned char)v[i];
        /* RFC 9110 §5.5: field-vchar, SP and HTAB; CR/LF would split the response */
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            snprintf(why, whylen, "add_header '%s': control characters (CR, LF) in the value",
                     text);
            return -1;
        }
    }
    pt_add_header *a = realloc(h->v, (h->n + 1) * sizeof(*a));
    if (!a) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    h->v = a;
    char *name = strndup(text, nl), *val = strndup(v, vl);
    if (!name || !val) {
        free(name);
        free(val);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    a[h->n++] = (pt_add_header){name, val};
    return 0;
}

void pt_phases_headers_free(pt_add_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    free(h);
}

long pt_phases_expand(const char *t, const pt_phase_vars *v, char *out, size_t cap)
{
    size_t at = 0;
    while (*t) {
        const char *s = t;
        size_t n = 1, l = *t == '$' ? var_len(t) : 0;
        if (l == 4) {
            s = v->uri;
            n = v->uri_len;
        } else if (l) {
            s = v->query ? v->query : "";
            n = v->query ? v->query_len : 0;
        }
        if (at + n >= cap)
            return -1;
        memcpy(out + at, s, n);
        at += n;
        t += l ? l : 1;
    }
    out[at] = '\0';
    return (long)at;
}
