/* conf_tls.c: the tls { } groups (top level and per vhost) and ACME: key
 * tables and readers; the per-vhost SNI contexts. */
#include "first.h"
#include "tls.h"
#include "acme.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "conf_int.h"

#define TLS_EXTRA_KEYS                                                                             \
    {"ocsp_response", K_STRS, NULL}, {"client_ca", K_STR, NULL}, {"verify_client", K_STR, NULL},   \
        {"verify_depth", K_INT, NULL},
const key_spec vhost_tls_keys[] = {
    {"certificate", K_STRS, NULL},
    {"key", K_STRS, NULL},
    TLS_EXTRA_KEYS{NULL, K_INT, NULL},
};

const key_spec vhost_acme_keys[] = {
    {"directory", K_STR, NULL},    {"email", K_STR, NULL},     {"ca_file", K_STR, NULL},
    {"renew_before", K_DUR, NULL}, {"challenge", K_STR, NULL}, {"order_timeout", K_DUR, NULL},
    {NULL, K_INT, NULL},
};

const key_spec tls_keys[] = {
    {"certificate", K_STRS, NULL},      {"key", K_STRS, NULL},
    {"protocols", K_STRS, NULL},        {"ciphers", K_STR, NULL},
    {"ciphersuites", K_STR, NULL},      {"groups", K_STR, NULL},
    {"ticket_key_rotate", K_DUR, NULL}, {"tickets", K_INT, NULL},
    TLS_EXTRA_KEYS{NULL, K_INT, NULL},
};

/* tls = { ... }: read here, the certificate and key loaded by tls.c (in
 * the master, as root, before the workers fork; a reload loads them anew).
 * Only when a listener uses TLS: a tls group alone is not an error. */
/* certificate and key: one file or a list, paths made absolute, as many
 * keys as certificates. */
int get_pairs(load_ctx *x, const config_setting_t *g, char ***cert, char ***key, size_t *n)
{
    const config_setting_t *sc = member(g, "certificate"), *sk = member(g, "key");
    size_t nc = 0, nk = 0;
    if (sc && get_strs(x, sc, cert, &nc) < 0)
        return -1;
    *n = nc;
    if (sk && get_strs(x, sk, key, &nk) < 0)
        return -1;
    if (nc != nk) {
        free_strv(*cert, nc);
        free_strv(*key, nk);
        *cert = *key = NULL;
        *n = 0;
        return fail_at(x, sc ? sc : sk,
                       "tls: %zu certificate(s) but %zu key(s): each certificate needs its key", nc,
                       nk);
    }
    for (size_t i = 0; i < nc; i++) {
        char *c = resolve_path(x, sc, (*cert)[i]), *k = c ? resolve_path(x, sk, (*key)[i]) : NULL;
        if (!c || !k) {
            free(c);
            return -1;
        }
        free((*cert)[i]);
        free((*key)[i]);
        (*cert)[i] = c;
        (*key)[i] = k;
    }
    return 0;
}

/* ocsp_response (one per certificate, in order; "" for none), client_ca,
 * verify_client, verify_depth: the same at the top level and per vhost.
 * *verify and *depth are left alone when unset. */
int get_tls_extra(load_ctx *x, const config_setting_t *g, size_t ncert, char ***ocsp, size_t *nocsp,
                  char **ca, int *verify, int *depth)
{
    const config_setting_t *s;
    if ((s = member(g, "ocsp_response"))) {
        if (get_strs(x, s, ocsp, nocsp) < 0)
            return -1;
        if (*nocsp > ncert)
            return fail_at(x, s, "tls.ocsp_response: %zu response(s) for %zu certificate(s)",
                           *nocsp, ncert);
        for (size_t i = 0; i < *nocsp; i++) {
            if (!(*ocsp)[i][0])
                continue;
            char *a = resolve_path(x, s, (*ocsp)[i]);
            if (!a)
                return -1;
            free((*ocsp)[i]);
            (*ocsp)[i] = a;
        }
    }
    if ((s = member(g, "client_ca")) && !(*ca = resolve_path(x, s, config_setting_get_string(s))))
        return -1;
    if ((s = member(g, "verify_client"))) {
        const char *v = config_setting_get_string(s);
        *verify = strcmp(v, "off") == 0        ? PT_VERIFY_OFF
                  : strcmp(v, "optional") == 0 ? PT_VERIFY_OPTIONAL
                  : strcmp(v, "required") == 0 ? PT_VERIFY_REQUIRED
                                               : -1;
        if (*verify < 0)
            return fail_at(x, s, "tls.verify_client: '%s' is not one of off, optional, required",
                           v);
    }
    if ((s = member(g, "verify_depth"))) {
        *depth = config_setting_get_int(s);
        if (*depth < 1 || *depth > 100)
            return fail_at(x, s, "tls.verify_depth: %d is not within 1..100", *depth);
    }
    return 0;
}

int build_tls(load_ctx *x, const config_setting_t *root)
{
    pt_config *c = x->c;
    pt_tls_cfg *t = &c->tls;
    const config_setting_t *g = member(root, "tls"), *s;
    bool any = false;
    for (size_t i = 0; i < c->nlisten; i++)
        any |= c->listen[i].tls;
    t->min_version = PT_TLS_V12;
    t->max_version = PT_TLS_V13;
    t->verify_depth = 1;
    /* an hour: a key that leaks opens at most two hours of tickets, and a
     * client resumes at least once an hour (nginx never rotates; Caddy's
     * 12 h suits keys shared over a cluster, ours never leave the host) */
    t->ticket_rotate_ms = 3600 * SEC;
    /* one ticket per handshake, as Go, Caddy and H2O send (OpenSSL and
     * nginx send two): each costs about 160,000 instructions, some 6% of
     * a full handshake, and a resumption brings a fresh one (tls.c) */
    t->tickets = 1;
    if (g && (s = member(g, "tickets"))) {
        t->tickets = config_setting_get_int(s);
        if (t->tickets < 0 || t->tickets > 8)
            return fail_at(x, s, "tls.tickets: %d is not within 0..8", t->tickets);
    }
    /* HTTP/2 over TLS: off by default until it has been measured and the
     * attack limits are tested (the lead turns it on) */
    t->http2 = false;
    opt_bool(root, "http2", &t->http2);
    if (g && (s = member(g, "ticket_key_rotate"))) {
        const char *str = config_setting_get_string(s);
        uint64_t ms = 0;
        if (!str)
            ms = (uint64_t)config_setting_get_int64(s) * 1000;
        else if (pt_parse_duration_ms(str, &ms) < 0)
            return fail_at(x, s, "tls.ticket_key_rotate: not a duration");
        if (ms < SEC || ms > 7 * DAY)
            return fail_at(x, s, "tls.ticket_key_rotate: not within 1s..7d");
        t->ticket_rotate_ms = ms;
    }
    if (g) {
        if (get_pairs(x, g, &t->certificate, &t->key, &t->ncert) < 0 ||
            get_tls_extra(x, g, t->ncert, &t->ocsp, &t->nocsp, &t->client_ca, &t->verify_client,
                          &t->verify_depth) < 0)
            return -1;
        if ((s = member(g, "ciphers")) && !(t->ciphers = xstrdup(x, config_setting_get_string(s))))
            return -1;
        if ((s = member(g, "ciphersuites")) &&
            !(t->ciphersuites = xstrdup(x, config_setting_get_string(s))))
            return -1;
        if ((s = member(g, "groups")) && !(t->groups = xstrdup(x, config_setting_get_string(s))))
            return -1;
        if ((s = member(g, "protocols"))) {
            int lo = 0, hi = 0;
            for (int i = 0; i < config_setting_length(s); i++) {
                const char *p = config_setting_get_string_elem(s, i);
                int ver = strcmp(p, "TLSv1.2") == 0   ? PT_TLS_V12
                          : strcmp(p, "TLSv1.3") == 0 ? PT_TLS_V13
                                                      : 0;
                if (!ver)
                    return fail_at(x, s, "tls.protocols: '%s' is not one of TLSv1.2, TLSv1.3", p);
                lo = lo && lo < ver ? lo : ver;
                hi = hi > ver ? hi : ver;
            }
            if (!lo)
                return fail_at(x, s, "tls.protocols: at least one protocol is needed");
            t->min_version = lo;
            t->max_version = hi;
        }
    }
    if (!any)
        return 0;
    /* ACME vhosts alone: a placeholder until their certificates come */
    bool acme = false;
    const config_setting_t *vl = member(root, "vhosts");
    for (int i = 0; vl && i < config_setting_length(vl); i++)
        acme = acme || member(config_setting_get_elem(vl, (unsigned)i), "acme");
    if (t->ncert == 0 && !acme)
        return fail_at(x, member(root, "tls_listen"),
                       "a TLS listener needs tls.certificate and tls.key (--cert FILE --key FILE)");
    char err[512], warn[512];
    warn[0] = '\0';
    if (pt_tls_ctx_load(t, err, sizeof(err), warn, sizeof(warn)) < 0)
        return fail_at(x, g ? g : member(root, "tls_listen"), "%s", err);
    if (warn[0] && warn_at(x, member(g, "certificate"), "%s", warn) < 0)
        return -1;
    return 0;
}

/* acme = { directory; email; ca_file; renew_before; } (acme.c). The names
 * are the vhost's; http-01 cannot prove a wildcard, so none may be one. */
int get_acme(load_ctx *x, const config_setting_t *g, pt_vhost *v)
{
    const config_setting_t *s;
    pt_acme_cfg *a = xcalloc(x, 1, sizeof(*a));
    if (!a)
        return -1;
    v->acme = a;
    a->renew_before_ms = 30 * DAY;
    x->c->acme_any = true;
    if (v->nnames == 0)
        return fail_at(x, g, "acme needs the vhost's names");
    for (size_t i = 0; i < v->nnames; i++)
        if (strchr(v->names[i], '*'))
            return fail_at(x, g, "acme: '%s' is a wildcard (http-01 proves single names only)",
                           v->names[i]);
    if (!(s = member(g, "directory")))
        return fail_at(x, g, "acme needs directory (the ACME server's URL)");
    if (strncmp(config_setting_get_string(s), "https://", 8) != 0)
        return fail_at(x, s, "acme.directory must be an https:// URL");
    if (!(a->directory = xstrdup(x, config_setting_get_string(s))))
        return -1;
    if ((s = member(g, "email")) && !(a->email = xstrdup(x, config_setting_get_string(s))))
        return -1;
    if ((s = member(g, "ca_file")) &&
        !(a->ca_file = resolve_path(x, s, config_setting_get_string(s))))
        return -1;
    if ((s = member(g, "renew_before"))) {
        const char *str = config_setting_get_string(s);
        uint64_t ms;
        if (!str)
            ms = (uint64_t)config_setting_get_int64(s) * 1000;
        else if (pt_parse_duration_ms(str, &ms) < 0)
            return fail_at(x, s, "acme.renew_before: not a duration");
        a->renew_before_ms = ms;
    }
    /* ten minutes: pebble and Let's Encrypt finish in seconds; a server
     * that answers a byte at a time or keeps an order pending would
     * otherwise hold every renewal of this process */
    a->order_timeout_ms = 600 * SEC;
    if ((s = member(g, "order_timeout"))) {
        const char *str = config_setting_get_string(s);
        uint64_t ms;
        if (!str)
            ms = (uint64_t)config_setting_get_int64(s) * 1000;
        else if (pt_parse_duration_ms(str, &ms) < 0)
            return fail_at(x, s, "acme.order_timeout: not a duration");
        if (ms < SEC || ms > DAY)
            return fail_at(x, s, "acme.order_timeout: not within 1s..1d");
        a->order_timeout_ms = ms;
    }
    if ((s = member(g, "challenge"))) {
        const char *ch = config_setting_get_string(s);
        if (strcmp(ch, "tls-alpn-01") == 0)
            a->tls_alpn = true;
        else if (strcmp(ch, "http-01") != 0)
            return fail_at(x, s, "acme.challenge: '%s' is not http-01 or tls-alpn-01", ch);
    }
    const char *dir = x->c->acme_state_dir ? x->c->acme_state_dir : PT_ACME_STATE_DIR;
    size_t n = strlen(dir) + strlen(v->names[0]) + 32;
    a->cert_file = xcalloc(x, n, 1);
    a->key_file = xcalloc(x, n, 1);
    if (!a->cert_file || !a->key_file)
        return -1;
    snprintf(a->cert_file, n, "%s/certs/%s/cert.pem", dir, v->names[0]);
    snprintf(a->key_file, n, "%s/certs/%s/key.pem", dir, v->names[0]);
    return 0;
}

int build_acme(load_ctx *x, const config_setting_t *root)
{
    const config_setting_t *s = member(root, "acme_state_dir");
    if (!s)
        return 0;
    const char *v = config_setting_get_string(s);
    if (v[0] != '/')
        return fail_at(x, s, "acme_state_dir must be an absolute path");
    x->c->acme_state_dir = xstrdup(x, v);
    return x->c->acme_state_dir ? 0 : -1;
}

/* Per-vhost certificates, chosen by SNI: a context each, with the
 * top-level protocol settings; only when a listener uses TLS. */
int build_tls_vhosts(load_ctx *x, const config_setting_t *root)
{
    pt_config *c = x->c;
    const config_setting_t *list = member(root, "vhosts");
    if (!c->tls.ctx)
        return 0;
    for (size_t i = 0; i < c->nvhosts; i++) {
        pt_vhost *v = &c->vhosts[i];
        /* the certificate ACME obtained, once there is one (acme.c); until
         * then the vhost's clients get the default certificate */
        if (v->acme && v->tls_ncert == 0 && access(v->acme->cert_file, R_OK) == 0 &&
            access(v->acme->key_file, R_OK) == 0) {
            if (!(v->tls_certificate = xcalloc(x, 1, sizeof(char *))) ||
                !(v->tls_key = xcalloc(x, 1, sizeof(char *))) ||
                !(v->tls_certificate[0] = xstrdup(x, v->acme->cert_file)) ||
                !(v->tls_key[0] = xstrdup(x, v->acme->key_file)))
                return -1;
            v->tls_ncert = 1;
        }
        if (v->tls_ncert == 0)
            continue;
        const config_setting_t *g = list ? config_setting_get_elem(list, (unsigned)i) : NULL;
        pt_tls_cfg t = c->tls;
        char err[512], warn[512];
        t.certificate = v->tls_certificate;
        t.key = v->tls_key;
        t.ncert = v->tls_ncert;
        t.ocsp = v->tls_ocsp;
        t.nocsp = v->tls_nocsp;
        if (v->tls_client_ca)
            t.client_ca = v->tls_client_ca;
        if (v->tls_verify_client >= 0)
            t.verify_client = v->tls_verify_client;
        if (v->tls_verify_depth >= 0)
            t.verify_depth = v->tls_verify_depth;
        t.ctx = NULL;
        opt_bool(g, "http2", &t.http2);
        warn[0] = '\0';
        if (pt_tls_ctx_load(&t, err, sizeof(err), warn, sizeof(warn)) < 0)
            return fail_at(x, member(g, "tls"), "%s", err);
        v->tls_ctx = t.ctx;
        if (warn[0] && warn_at(x, member(g, "tls"), "%s", warn) < 0)
            return -1;
    }
    pt_tls_sni_setup(c);
    pt_tls_acme_dir(c->acme_any ? (c->acme_state_dir ? c->acme_state_dir : PT_ACME_STATE_DIR)
                                : NULL);
    return 0;
}
