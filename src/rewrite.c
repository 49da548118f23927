/* rewrite.c: nginx-style rewrites of a location, run by the router after
 * authentication: the first matching rules change the request's URI (the
 * query string is kept unless the replacement sets one), then the request
 * is routed again ("last" or no flag), stays in its location ("break") or
 * is redirected ("redirect", "permanent", or a replacement that is an
 * absolute URL). Also the one expander of capture references. */
#include "first.h"
#include "rewrite.h"
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pt_rewrite_parse(const char *text, pt_rewrite_rule *r, char *why, size_t whylen)
{
    static const char *const flags[] = {"", "last", "break", "redirect", "permanent"};
    char *copy = strdup(text), *save = NULL;
    char *tok[4] = {NULL, NULL, NULL, NULL};
    int n = 0;
    memset(r, 0, sizeof(*r));
    if (!copy) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        tok[n < 4 ? n++ : 3] = t;
    if (n < 2 || n > 3) {
        snprintf(why, whylen, "rewrite '%s': REGEX REPLACEMENT [last|break|redirect|permanent]",
                 text);
        goto fail;
    }
    r->flag = -1;
    for (int i = 1; i < (int)PT_ARRAY_LEN(flags) && n == 3; i++)
        if (strcmp(tok[2], flags[i]) == 0)
            r->flag = i;
    if (n == 2)
        r->flag = PT_RW_NEXT;
    if (r->flag < 0) {
        snprintf(why, whylen, "rewrite '%s': unknown flag '%s' (last, break, redirect, permanent)",
                 text, tok[2]);
        goto fail;
    }
    char err[512];
    if (!(r->rx = pt_regex_compile(tok[0], false, err, sizeof(err)))) {
        snprintf(why, whylen, "rewrite: %s", err);
        goto fail;
    }
    if (pt_rewrite_check_refs(tok[1], r->rx, err, sizeof(err)) < 0) {
        snprintf(why, whylen, "rewrite '%s': %s", text, err);
        goto fail;
    }
    bool absolute = strncmp(tok[1], "http://", 7) == 0 || strncmp(tok[1], "https://", 8) == 0;
    if (tok[1][0] != '/' && !absolute) {
        snprintf(why, whylen,
                 "rewrite '%s': the replacement must start with '/' or be an "
                 "http:// or https:// URL",
                 text);
        goto fail;
    }
    if (!(r->repl = strdup(tok[1]))) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    free(copy);
    return 0;
fail:
    pt_regex_free(r->rx);
    r->rx = NULL;
    free(copy);
    return -1;
}

void pt_rewrites_free(pt_rewrites *rw)
{
    if (!rw)
        return;
    for (size_t i = 0; i < rw->n; i++) {
        pt_regex_free(rw->rules[i].rx);
        free(rw->rules[i].repl);
    }
    free(rw->rules);
    free(rw);
}

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

size_t pt_rewrite_ref_len(const char *t)
{
    if (t[0] != '$')
        return 0;
    if (t[1] >= '0' && t[1] <= '9')
        return 2;
    if (t[1] != '{')
        return 0;
    size_t i = 2;
    while (is_name_char(t[i]))
        i++;
    return t[i] == '}' && i > 2 ? i + 1 : 0;
}

/* The group number a reference names, -1 when rx has no such group. */
static int ref_group(const pt_regex *rx, const char *t, size_t rlen)
{
    if (!rx)
        return -1;
    int g = rlen == 2 ? t[1] - '0' : pt_regex_group(rx, t + 2, rlen - 3);
    return g <= pt_regex_ngroups(rx) && g < PT_REGEX_NCAPS ? g : -1;
}

int pt_rewrite_check_refs(const char *t, const pt_regex *rx, char *why, size_t whylen)
{
    for (const char *p = t; (p = strchr(p, '$')); p++) {
        size_t n = pt_rewrite_ref_len(p);
        if (n == 0)
            continue; /* a variable, not a capture: the caller's business */
        if (!rx) {
            snprintf(why, whylen, "'%.*s': captures need a regex location", (int)n, p);
            return -1;
        }
        if (ref_group(rx, p, n) < 0) {
            snprintf(why, whylen, "'%.*s': regex '%s' has no such group", (int)n, p,
                     pt_regex_pattern(rx));
            return -1;
        }
    }
    return 0;
}

void pt_rewrite_loc_caps(const pt_req *r, pt_rewrite_caps *k)
{
    k->rx = NULL;
    k->s = r->path;
    const pt_location *l = r->loc;
    if (l && l->rx && pt_regex_match(l->rx, r->path, r->path_len, k->ov, PT_REGEX_NCAPS))
        k->rx = l->rx;
}

size_t pt_rewrite_put_ref(const pt_rewrite_caps *k, const char *t, size_t rlen, char *out,
                          size_t at, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    int g = k->rx ? ref_group(k->rx, t, rlen) : -1;
    if (g < 0 || k->ov[2 * g] < 0)
        return at;
    for (long i = k->ov[2 * g]; i < k->ov[2 * g + 1]; i++) {
        unsigned char ch = (unsigned char)k->s[i];
        /* the capture is decoded text: re-encoded, it means itself again
         * when the URI is parsed (RFC 3986 §2.4) */
        if (ch <= 0x20 || ch >= 0x7f || ch == '%' || ch == '?' || ch == '#') {
            if (at + 3 < cap) {
                out[at++] = '%';
                out[at++] = hex[ch >> 4];
                out[at++] = hex[ch & 15];
            }
        } else if (at + 1 < cap) {
            out[at++] = (char)ch;
        }
    }
    return at;
}

long pt_rewrite_alias_rel(const pt_location *l, const char *path, size_t len, char *buf, size_t cap)
{
    long ov[2 * PT_REGEX_NCAPS];
    if (!l->rx || !l->alias_tmpl || !pt_regex_match(l->rx, path, len, ov, PT_REGEX_NCAPS))
        return -1;
    size_t at = 0;
    for (const char *t = l->alias_tmpl; *t;) {
        size_t n = pt_rewrite_ref_len(t);
        int g = n ? (n == 2 ? t[1] - '0' : pt_regex_group(l->rx, t + 2, n - 3)) : -1;
        const char *v = t;
        size_t vlen = 1;
        if (n) {
            /* a file name, not a URI: the capture's bytes as they are */
            bool set = g >= 0 && g < PT_REGEX_NCAPS && ov[2 * g] >= 0;
            v = set ? path + ov[2 * g] : "";
            vlen = set ? (size_t)(ov[2 * g + 1] - ov[2 * g]) : 0;
        }
        if (at + vlen + 2 > cap)
            return -1;
        memcpy(buf + at, v, vlen);
        at += vlen;
        t += n ? n : 1;
    }
    buf[at] = '\0';
    /* captures of a normalised path may still join into ".." ("$1$1" of
     * "."): no segment climbs, and dotfiles stay hidden as in the root */
    bool allow_dot = l->allow_dotfiles;
    size_t i = 0;
    while (i < at && buf[i] == '/')
        i++;
    memmove(buf, buf + i, at - i + 1);
    at -= i;
    for (size_t s = 0; s < at;) {
        size_t e = s;
        while (e < at && buf[e] != '/')
            e++;
        if (e > s && buf[s] == '.' &&
            (!allow_dot || e - s == 1 || (e - s == 2 && buf[s + 1] == '.')))
            return -1;
        s = e + 1;
    }
    if (at == 0) {
        buf[at++] = '.';
        buf[at] = '\0';
    }
    return (long)at;
}

/* The replacement of rule r with the captures k, plus the request's query
 * when the replacement sets none ("?" at its end: no query). -1: too long. */
static long expand(const pt_req *r, const pt_rewrite_rule *rule, const pt_rewrite_caps *k,
                   char *out, size_t cap)
{
    size_t at = 0;
    bool has_q = false;
    for (const char *t = rule->repl; *t;) {
        size_t n = pt_rewrite_ref_len(t);
        if (n) {
            at = pt_rewrite_put_ref(k, t, n, out, at, cap);
            t += n;
            continue;
        }
        has_q |= *t == '?';
        if (at + 1 >= cap)
            return -1;
        out[at++] = *t++;
    }
    const pt_head *h = &r->head;
    size_t rl = strlen(rule->repl);
    if (has_q && strchr(rule->repl, '?') == rule->repl + rl - 1)
        at--; /* nginx's trailing "?": no query at all, the old one dropped */
    else if (!has_q && h->has_query) {
        if (at + 1 + h->query.len >= cap)
            return -1;
        out[at++] = '?';
        memcpy(out + at, h->query.p, h->query.len);
        at += h->query.len;
    }
    if (at + 1 >= cap)
        return -1;
    out[at] = '\0';
    return (long)at;
}

/* One rule against the request's path: PT_RWR_NONE when it does not
 * match, PT_RWR_REDIRECT (status set), PT_RWR_REROUTE when the path was
 * rewritten (decoded and normalised again, REQUEST_URI stays what the
 * client sent), PT_RWR_ERROR. */
static pt_rewrite_rc apply(pt_req *r, const pt_rewrite_rule *rule, char *out, size_t cap,
                           int *status)
{
    pt_rewrite_caps k = {.rx = rule->rx, .s = r->path};
    if (!pt_regex_match(rule->rx, r->path, r->path_len, k.ov, PT_REGEX_NCAPS))
        return PT_RWR_NONE;
    long n = expand(r, rule, &k, out, cap);
    if (n < 0)
        return PT_RWR_ERROR;
    if (rule->flag == PT_RW_REDIRECT || rule->flag == PT_RW_PERMANENT || out[0] != '/') {
        /* RFC 9110 §15.4.2 / §15.4.3 */
        *status = rule->flag == PT_RW_PERMANENT ? 301 : 302;
        return PT_RWR_REDIRECT;
    }
    return pt_conn_reroute(r, out, (size_t)n) < 0 ? PT_RWR_ERROR : PT_RWR_REROUTE;
}

pt_rewrite_rc pt_rewrite_run(pt_req *r, char *out, size_t cap, int *status)
{
    const pt_location *here = r->loc, *moved = NULL;
    const pt_rewrites *rw = here->rewrites;
    for (size_t i = 0; rw && i < rw->n; i++) {
        const pt_rewrite_rule *rule = &rw->rules[i];
        pt_rewrite_rc rc = apply(r, rule, out, cap, status);
        if (rc == PT_RWR_NONE)
            continue;
        if (rc != PT_RWR_REROUTE)
            return rc;
        if (rule->flag == PT_RW_LAST)
            return PT_RWR_REROUTE;
        /* the next rules see the new path in this same location */
        moved = r->loc;
        r->loc = here;
        if (rule->flag == PT_RW_BREAK)
            return PT_RWR_BREAK;
    }
    if (!moved)
        return PT_RWR_NONE;
    r->loc = moved;
    return PT_RWR_REROUTE;
}

pt_rewrite_rc pt_rewrite_server(pt_req *r, const pt_rewrites *rw, char *out, size_t cap,
                                int *status)
{
    bool changed = false;
    for (size_t i = 0; rw && i < rw->n; i++) {
        const pt_rewrite_rule *rule = &rw->rules[i];
        pt_rewrite_rc rc = apply(r, rule, out, cap, status);
        if (rc == PT_RWR_NONE)
            continue;
        if (rc != PT_RWR_REROUTE)
            return rc;
        changed = true;
        /* at server level both end the rewrites; the location is looked up */
        if (rule->flag == PT_RW_LAST || rule->flag == PT_RW_BREAK)
            break;
    }
    return changed ? PT_RWR_REROUTE : PT_RWR_NONE;
}
