/* conf_phases.c: the router phase settings (access, auth_basic, real_ip_*,
 * return, rewrite, try_files, error_page, add_header) and the objects they own. */
#include "first.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "realip.h"
#include "router.h"
#include "conf_int.h"

/* ------------------------------------------------- router phase settings */

/* An object pt_phases points to: kept by the config, freed with it. */
typedef enum {
    PH_ACCESS,
    PH_AUTH,
    PH_RETURN,
    PH_REALIP,
    PH_TRY,
    PH_ERRP,
    PH_HDR,
    PH_REWRITE
} phase_kind;
struct pt_phase_obj {
    phase_kind kind;
    void *p;
};

static void *phase_obj(load_ctx *x, phase_kind kind, size_t size)
{
    pt_config *c = x->c;
    struct pt_phase_obj *v = realloc(c->phase_objs, (c->nphase_objs + 1) * sizeof(*v));
    if (!v)
        return oom(x), NULL;
    c->phase_objs = v;
    void *p = xcalloc(x, 1, size);
    if (!p)
        return NULL;
    v[c->nphase_objs++] = (struct pt_phase_obj){kind, p};
    return p;
}

void free_phase_objs(pt_config *c)
{
    for (size_t i = 0; i < c->nphase_objs; i++) {
        struct pt_phase_obj *o = &c->phase_objs[i];
        if (o->kind == PH_ACCESS) {
            pt_access_list_free(o->p);
        } else if (o->kind == PH_REALIP) {
            pt_realip_cfg *r = o->p;
            for (size_t j = 0; j < r->from.n; j++) {
                free(r->from.rules[j].text);
                free(r->from.rules[j].where);
            }
            free(r->from.rules);
            free(r->header);
            free(r);
        } else if (o->kind == PH_AUTH) {
            pt_auth_cfg *a = o->p;
            free(a->realm);
            free(a->user_file);
            free(a);
        } else if (o->kind == PH_TRY) {
            pt_phases_try_free(o->p);
        } else if (o->kind == PH_ERRP) {
            pt_phases_errpage_free(o->p);
        } else if (o->kind == PH_HDR) {
            pt_phases_headers_free(o->p);
        } else if (o->kind == PH_REWRITE) {
            pt_rewrites_free(o->p);
        } else {
            pt_return_cfg *r = o->p;
            free(r->text);
            free(r);
        }
    }
    free(c->phase_objs);
}

static int get_access(load_ctx *x, const config_setting_t *s, const pt_access_list **out)
{
    pt_access_list *l = phase_obj(x, PH_ACCESS, sizeof(*l));
    size_t n = (size_t)config_setting_length(s);
    char where[PATH_MAX + 64], why[256];
    if (!l || !(l->rules = xcalloc(x, n + 1, sizeof(*l->rules))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *t = config_setting_get_string(e);
        pt_access_rule *r = &l->rules[l->n];
        if (pt_access_parse(t, r, why, sizeof(why)) < 0)
            return fail_at(x, e, "%s", why);
        l->n++;
        origin(x, e, where, sizeof(where));
        if (!(r->text = xstrdup(x, t)) || !(r->where = xstrdup(x, where)))
            return -1;
    }
    *out = l;
    return 0;
}

static int get_auth(load_ctx *x, const config_setting_t *g, bool is_loc, pt_phases *ph)
{
    const config_setting_t *rs = member(g, "auth_basic"), *fs = member(g, "auth_basic_user_file");
    if (!rs && !fs)
        return 0;
    if (!rs)
        return fail_at(x, fs, "auth_basic_user_file needs auth_basic (the realm)");
    const char *realm = config_setting_get_string(rs);
    pt_auth_cfg *a = phase_obj(x, PH_AUTH, sizeof(*a));
    if (!a)
        return -1;
    ph->auth = a;
    ph->auth_own = is_loc;
    if (strcmp(realm, "off") == 0) {
        if (fs)
            return fail_at(x, fs, "auth_basic is \"off\": no auth_basic_user_file");
        return 0;
    }
    /* the realm goes into a quoted-string (RFC 7617 §2): no quote, no
     * backslash, no control characters */
    if (!realm[0] || strlen(realm) > 200 || strpbrk(realm, "\"\\"))
        return fail_at(x, rs, "auth_basic realm must be 1-200 characters without '\"' or '\\'");
    for (const char *p = realm; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail_at(x, rs, "auth_basic realm must not contain control characters");
    if (!fs)
        return fail_at(x, rs, "auth_basic needs auth_basic_user_file (an htpasswd file)");
    const char *f = config_setting_get_string(fs);
    if (!f[0])
        return fail_at(x, fs, "auth_basic_user_file must not be empty");
    if (!(a->realm = xstrdup(x, realm)) || !(a->user_file = resolve_path(x, fs, f)))
        return -1;
    /* workers read it (as their user) on the first request: say it now */
    if (access(a->user_file, R_OK) < 0 &&
        warn_at(x, fs, "auth_basic_user_file '%s': %s (requests will get 500)", a->user_file,
                strerror(errno)) < 0)
        return -1;
    return 0;
}

/* A list of trusted peers (addresses, CIDR blocks) from fs, else a copy of
 * up's, into out. */
static int get_from_list(load_ctx *x, const char *name, const config_setting_t *fs,
                         const pt_access_list *up, pt_access_list *out)
{
    /* one string is a list of one, as for every array of strings */
    bool scalar = fs && config_setting_type(fs) == CONFIG_TYPE_STRING;
    size_t n = !fs ? (up ? up->n : 0) : scalar ? 1 : (size_t)config_setting_length(fs);
    char where[PATH_MAX + 64], why[256];
    if (!(out->rules = xcalloc(x, n + 1, sizeof(*out->rules))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        pt_access_rule *e = &out->rules[out->n];
        const config_setting_t *el = !fs      ? NULL
                                     : scalar ? fs
                                              : config_setting_get_elem(fs, (unsigned)i);
        const char *t = fs ? config_setting_get_string(el) : up->rules[i].text;
        if (pt_realip_parse_from(t, e, why, sizeof(why)) < 0)
            return fail_at(x, el, "%s %s", name, why);
        out->n++;
        if (fs)
            origin(x, el, where, sizeof(where));
        else
            snprintf(where, sizeof(where), "%s", up->rules[i].where);
        if (!(e->text = xstrdup(x, t)) || !(e->where = xstrdup(x, where)))
            return -1;
    }
    return 0;
}

/* real_ip_from and real_ip_header of g (the top level or a vhost) over
 * what ph inherited; a header without trusted peers is an error, since it
 * would do nothing */
int get_realip(load_ctx *x, const config_setting_t *g, pt_phases *ph)
{
    const config_setting_t *fs = member(g, "real_ip_from"), *hs = member(g, "real_ip_header");
    if (!fs && !hs)
        return 0;
    if (!fs && !ph->realip)
        return fail_at(x, hs, "real_ip_header needs real_ip_from (the trusted peers)");
    pt_realip_cfg *r = phase_obj(x, PH_REALIP, sizeof(*r));
    if (!r)
        return -1;
    const pt_realip_cfg *up = ph->realip;
    const char *h = hs ? config_setting_get_string(hs) : up ? up->header : "X-Forwarded-For";
    for (const char *p = h; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return fail_at(x, hs, "real_ip_header '%s' is not a header field name", h);
    if (!h[0])
        return fail_at(x, hs, "real_ip_header must not be empty");
    if (!(r->header = xstrdup(x, h)))
        return -1;
    r->header_len = strlen(h);
    /* RFC 7239's list of parameters, not a list of addresses */
    r->is_forwarded = strcasecmp(h, "Forwarded") == 0;
    if (get_from_list(x, "real_ip_from", fs, up ? &up->from : NULL, &r->from) < 0)
        return -1;
    ph->realip = r;
    return 0;
}

/* proxy_protocol_from: the peers whose PROXY headers are believed; by
 * default the top level's real_ip_from (the balancers trusted to name the
 * client in a header are the ones to trust in a PROXY header), else any. */
int get_proxy_from(load_ctx *x, const config_setting_t *root, const pt_phases *top)
{
    const config_setting_t *fs = member(root, "proxy_protocol_from");
    if (!fs) {
        x->c->proxy_from = top->realip ? &top->realip->from : NULL;
        return 0;
    }
    if (!member(root, "proxy_protocol"))
        return fail_at(x, fs, "proxy_protocol_from needs proxy_protocol (the listeners)");
    if (config_setting_type(fs) != CONFIG_TYPE_STRING && config_setting_length(fs) == 0)
        return fail_at(x, fs,
                       "proxy_protocol_from must not be empty (it would refuse every "
                       "connection)");
    pt_realip_cfg *r = phase_obj(x, PH_REALIP, sizeof(*r));
    if (!r || get_from_list(x, "proxy_protocol_from", fs, NULL, &r->from) < 0)
        return -1;
    x->c->proxy_from = &r->from;
    return 0;
}

/* access, auth_basic(_user_file) and return of g over what ph inherited */
/* try_files, error_page, add_header (phases.c parses each entry). */
static int get_later_phases(load_ctx *x, const config_setting_t *g, pt_phases *ph)
{
    const config_setting_t *s;
    char why[300];
    if ((s = member(g, "try_files"))) {
        pt_try_files *t = phase_obj(x, PH_TRY, sizeof(*t));
        size_t n = (size_t)config_setting_length(s);
        if (!t)
            return -1;
        if (n < 2)
            return fail_at(x, s,
                           "try_files needs a path to look for and a last entry (a URI or "
                           "\"=CODE\")");
        for (size_t i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (pt_phases_try_add(t, config_setting_get_string(e), i + 1 == n, why, sizeof(why)) <
                0)
                return fail_at(x, e, "%s", why);
        }
        ph->try_files = t;
    }
    if ((s = member(g, "error_page"))) {
        pt_error_pages *e = phase_obj(x, PH_ERRP, sizeof(*e));
        if (!e)
            return -1;
        for (int i = 0; i < config_setting_length(s); i++) {
            const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
            if (pt_phases_errpage_add(e, config_setting_get_string(el), why, sizeof(why)) < 0)
                return fail_at(x, el, "%s", why);
        }
        ph->error_pages = e;
    }
    const config_setting_t *al = member(g, "add_header_always");
    if ((s = member(g, "add_header"))) {
        pt_add_headers *h = phase_obj(x, PH_HDR, sizeof(*h));
        if (!h)
            return -1;
        for (int i = 0; i < config_setting_length(s); i++) {
            const config_setting_t *el = config_setting_get_elem(s, (unsigned)i);
            if (pt_phases_header_add(h, config_setting_get_string(el), why, sizeof(why)) < 0)
                return fail_at(x, el, "%s", why);
        }
        h->always = al && config_setting_get_bool(al);
        ph->add_headers = h;
    } else if (al) {
        return fail_at(x, al, "add_header_always needs add_header in the same place");
    }
    return 0;
}

int get_phases(load_ctx *x, const config_setting_t *g, bool is_loc, pt_phases *ph)
{
    const config_setting_t *s;
    char why[256];
    ph->auth_own = ph->ret_own = false;
    if ((s = member(g, "access")) && get_access(x, s, &ph->access) < 0)
        return -1;
    if (get_auth(x, g, is_loc, ph) < 0)
        return -1;
    /* return_http: the same, for requests over plain HTTP only (the
     * redirect to https; HTTPS requests go on to the handler) */
    const config_setting_t *sh = member(g, "return_http");
    if ((s = member(g, "return")) && sh)
        return fail_at(x, sh, "return and return_http: one of them");
    if ((s = s ? s : sh)) {
        pt_return_cfg *r = phase_obj(x, PH_RETURN, sizeof(*r));
        if (!r)
            return -1;
        if (pt_router_parse_return(config_setting_get_string(s), r, why, sizeof(why)) < 0)
            return fail_at(x, s, "%s", why);
        /* captures belong to a regex location (checked there) */
        if (!is_loc && r->text && pt_rewrite_check_refs(r->text, NULL, why, sizeof(why)) < 0)
            return fail_at(x, s, "return: %s", why);
        r->http_only = s == sh;
        ph->ret = r;
        ph->ret_own = is_loc;
    }
    return get_later_phases(x, g, ph);
}

/* The rules of a "rewrite" list (one string: one rule) into rw. */
int get_rewrite_rules(load_ctx *x, const config_setting_t *s, pt_rewrites *rw)
{
    bool scalar = config_setting_type(s) == CONFIG_TYPE_STRING;
    unsigned n = scalar ? 1 : (unsigned)config_setting_length(s);
    char why[700];
    if (!(rw->rules = xcalloc(x, n ? n : 1, sizeof(*rw->rules))))
        return -1;
    for (unsigned i = 0; i < n; i++) {
        const config_setting_t *el = scalar ? s : config_setting_get_elem(s, i);
        if (pt_rewrite_parse(config_setting_get_string(el), &rw->rules[i], why, sizeof(why)) < 0)
            return fail_at(x, el, "%s", why);
        rw->n++;
    }
    return 0;
}

/* Server-level rewrites of g (the top level or a vhost) over what ph
 * inherited: run before the location is chosen (router.c). */
int get_server_rewrites(load_ctx *x, const config_setting_t *g, pt_phases *ph)
{
    const config_setting_t *s = member(g, "rewrite");
    if (!s)
        return 0;
    pt_rewrites *rw = phase_obj(x, PH_REWRITE, sizeof(*rw));
    if (!rw || get_rewrite_rules(x, s, rw) < 0)
        return -1;
    ph->srv_rewrites = rw->n ? rw : NULL; /* "rewrite = []" turns inherited ones off */
    return 0;
}
