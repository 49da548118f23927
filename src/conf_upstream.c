/* conf_upstream.c: the gateway locations (cgi, fastcgi, scgi, uwsgi, proxy)
 * and the backends { } they reach: key tables, defaults and readers. */
#include "first.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"
#include "conf_int.h"

/* Location keys that only some handlers take; the others are generic. */
static const struct {
    const char *key;
    unsigned handlers;
} handler_keys[] = {
    {"dir", H_CGI | H_UP},
    {"program", H_CGI | H_UP},
    {"env", H_CGI | H_UP},
    {"pass_env", H_CGI | H_UP},
    {"pass_authorization", H_CGI | H_UP | H_PROXY},
    {"buffering", H_CGI | H_UP | H_PROXY},
    {"interpreters", H_CGI},
    {"timeout", H_CGI},
    {"rlimit_cpu", H_CGI},
    {"rlimit_as", H_CGI},
    {"rlimit_nproc", H_CGI},
    {"backend", H_UP | H_PROXY},
    {"require_file", H_UP},
    {"status_allow_remote", H_STATUS},
    {"x_sendfile", H_CGI | H_UP},
    {"sendfile_dirs", H_CGI | H_UP},
    {"upgrade", H_PROXY},
    {"request_buffering", H_PROXY | H_UP},
    {"interim_responses", H_PROXY},
};

static const key_spec server_keys[] = {
    {"address", K_STR, NULL}, {"weight", K_INT, NULL}, {"max_conns", K_INT, NULL},
    {"backup", K_BOOL, NULL}, {NULL, K_INT, NULL},
};

static const key_spec spawn_keys[] = {
    {"program", K_STR, NULL},   {"args", K_STRS, NULL},  {"env", K_STRS, NULL},
    {"processes", K_INT, NULL}, {"socket", K_STR, NULL}, {NULL, K_INT, NULL},
};

/* key, pt_backend field, kind, default, min, max (ms or a count) */
#define BACKEND_AMOUNTS(X)                                                                         \
    X(connect_timeout, connect_timeout_ms, K_DUR, 5 * SEC, 1, DAY)                                 \
    X(send_timeout, send_timeout_ms, K_DUR, 60 * SEC, 1, DAY)                                      \
    X(read_timeout, read_timeout_ms, K_DUR, 60 * SEC, 1, DAY)                                      \
    X(keepalive_max, keepalive_max, K_INT, 16, 0, 10000)                                           \
    X(keepalive_timeout, keepalive_timeout_ms, K_DUR, 60 * SEC, 1, DAY)                            \
    X(max_fails, max_fails, K_INT, 1, 0, 1000)                                                     \
    X(fail_timeout, fail_timeout_ms, K_DUR, 10 * SEC, 1, DAY)                                      \
    X(queue, queue, K_INT, 64, 0, 100000)                                                          \
    X(queue_timeout, queue_timeout_ms, K_DUR, 10 * SEC, 1, DAY)                                    \
    X(tunnel_timeout, tunnel_timeout_ms, K_DUR, 60 * SEC, 1, DAY)                                  \
    X(response_timeout, response_timeout_ms, K_DUR, 0, 0, DAY)

#define BACKEND_SPEC(key, field, kind, def, lo, hi)                                                \
    {#key, kind, def, lo, hi, offsetof(pt_backend, field), sizeof(((pt_backend *)0)->field)},

const key_spec backend_keys[] = {
    {"name", K_STR, NULL},
    {"servers", K_SERVERS, server_keys},
    {"balance", K_STR, NULL},
    BACKEND_AMOUNTS(LIMIT_KEY){"keepalive", K_BOOL, NULL},
    {"get_values", K_BOOL, NULL},
    {"spawn", K_GROUP, spawn_keys},
    {"via", K_BOOL, NULL},
    {"forwarded", K_BOOL, NULL},
    {"minimal_variables", K_BOOL, NULL},
    {NULL, K_INT, NULL},
};
static const limit_spec backend_specs[] = {BACKEND_AMOUNTS(BACKEND_SPEC)};

/* RFC 3875 §4.1 meta-variables, and anything a script may read, are
 * shell-style names; anything else would not survive the environment. */
static bool is_env_name(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
            return false;
    return true;
}

/* Does the interpreter exist? Only a warning: the server may start before
 * a package that provides it is installed. */
static int check_interp(load_ctx *x, const config_setting_t *s, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return errno == ENOENT ? warn_at(x, s, "cgi interpreter '%s' does not exist", path)
                               : warn_at(x, s, "cgi interpreter '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
        return warn_at(x, s, "cgi interpreter '%s' is not an executable file", path);
    return 0;
}

/* [ ".pl=/usr/bin/perl", ... ] split at the first '=' into extensions
 * (keeping their '.') and absolute interpreter paths. */
int get_interps(load_ctx *x, const config_setting_t *s, char ***exts, char ***paths, size_t *n)
{
    char p[256], **v = NULL;
    size_t nv = 0;
    int rc = -1;
    if (get_strs(x, s, &v, &nv) < 0)
        return -1;
    if (!(*exts = xcalloc(x, nv + 1, sizeof(char *))) ||
        !(*paths = xcalloc(x, nv + 1, sizeof(char *))))
        goto out;
    *n = nv;
    spath(s, p, sizeof(p));
    for (size_t i = 0; i < nv; i++) {
        const char *e = v[i], *eq = strchr(e, '=');
        size_t elen = eq ? (size_t)(eq - e) : 0;
        /* ^\.[^=/]+=/.+ : an extension, then an absolute interpreter path */
        if (!eq || e[0] != '.' || elen < 2 || memchr(e, '/', elen) || eq[1] != '/' || !eq[2]) {
            fail_at(x, s,
                    "'%s': invalid entry '%s' (expected \".ext=/absolute/interpreter\", e.g. "
                    "\".pl=/usr/bin/perl\")",
                    p, e);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strlen((*exts)[j]) == elen && memcmp((*exts)[j], e, elen) == 0) {
                fail_at(x, s, "'%s': extension '%.*s' is listed twice", p, (int)elen, e);
                goto out;
            }
        if (!((*exts)[i] = strndup(e, elen)) || !((*paths)[i] = xstrdup(x, eq + 1))) {
            oom(x);
            goto out;
        }
        if (check_interp(x, s, eq + 1) < 0)
            goto out;
    }
    rc = 0;
out:
    free_strv(v, nv);
    return rc;
}

static int copy_strv(load_ctx *x, char *const *src, size_t n, char ***out)
{
    if (!(*out = xcalloc(x, n + 1, sizeof(char *))))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((*out)[i] = xstrdup(x, src[i])))
            return -1;
    return 0;
}

/* [ "NAME=VALUE", ... ]: shell-style names, each set once. */
static int check_env(load_ctx *x, const config_setting_t *s, char *const *v, size_t n)
{
    char p[256];
    spath(s, p, sizeof(p));
    for (size_t i = 0; i < n; i++) {
        const char *e = v[i], *eq = strchr(e, '=');
        size_t len = eq ? (size_t)(eq - e) : 0;
        /* values may be secrets: a message names the entry, never its value */
        if (!eq)
            return fail_at(x, s, "'%s': entry %zu has no '=' (expected \"NAME=VALUE\")", p, i + 1);
        if (!is_env_name(e, len))
            return fail_at(x, s,
                           "'%s': entry %zu: invalid name '%.*s' (expected \"NAME=VALUE\", "
                           "NAME made of letters, digits and '_', not starting with a digit)",
                           p, i + 1, (int)PT_MIN(len, 64), e);
        for (size_t j = 0; j < i; j++)
            if (strncmp(v[j], e, len + 1) == 0)
                return fail_at(x, s, "'%s': '%.*s' is set twice", p, (int)len, e);
    }
    return 0;
}

static int get_env(load_ctx *x, const config_setting_t *s, pt_location *l)
{
    if (get_strs(x, s, &l->env, &l->nenv) < 0)
        return -1;
    return check_env(x, s, l->env, l->nenv);
}

static int get_pass_env(load_ctx *x, const config_setting_t *s, pt_location *l)
{
    char p[256];
    if (get_strs(x, s, &l->pass_env, &l->npass_env) < 0)
        return -1;
    for (size_t i = 0; i < l->npass_env; i++)
        if (!is_env_name(l->pass_env[i], strlen(l->pass_env[i])))
            return fail_at(x, s,
                           "'%s': invalid name '%s' (letters, digits and '_', not starting with "
                           "a digit)",
                           spath(s, p, sizeof(p)), l->pass_env[i]);
    return 0;
}

static const char *handler_name(pt_handler_kind h)
{
    static const char *const names[] = {"static", "cgi",    "fastcgi", "scgi",
                                        "uwsgi",  "status", "proxy"};
    return names[h];
}

/* dir / program: made absolute, not required to exist yet (a missing one
 * is a 404 / 500 at request time, as with Apache's ScriptAlias); -t warns.
 * A fastcgi program is only a SCRIPT_FILENAME: it need not be executable. */
static int gw_path(load_ctx *x, const config_setting_t *s, pt_handler_kind h, bool is_dir,
                   char **out)
{
    const char *what = is_dir ? "dir" : "program", *v = config_setting_get_string(s);
    const char *hn = handler_name(h);
    struct stat st;
    if (!v[0])
        return fail_at(x, s, "%s must not be empty", what);
    if (!(*out = resolve_path(x, s, v)))
        return -1;
    if (stat(*out, &st) < 0)
        return errno == ENOENT ? warn_at(x, s, "%s %s '%s' does not exist", hn, what, *out)
                               : warn_at(x, s, "%s %s '%s': %s", hn, what, *out, strerror(errno));
    if (is_dir && !S_ISDIR(st.st_mode))
        return fail_at(x, s, "dir '%s': %s", *out, strerror(ENOTDIR));
    if (!is_dir && S_ISDIR(st.st_mode))
        return fail_at(x, s, "program '%s': %s", *out, strerror(EISDIR));
    if (!is_dir && !S_ISREG(st.st_mode))
        return fail_at(x, s, "program '%s': not a regular file", *out);
    if (!is_dir && h == PT_H_CGI && access(*out, X_OK) < 0)
        return warn_at(x, s, "cgi program '%s' is not executable", *out);
    return 0;
}

/* The settings cgi and fastcgi locations share (see portico.conf(5)). */
int build_gateway(load_ctx *x, const config_setting_t *g, pt_location *l)
{
    const config_setting_t *dir = member(g, "dir"), *prog = member(g, "program"), *s;
    const char *hn = handler_name(l->handler);
    if (dir && prog)
        return fail_at(x, prog, "a %s location takes 'dir' or 'program', not both", hn);
    if ((s = dir ? dir : prog) && l->match != PT_MATCH_PREFIX)
        return fail_at(x, s, "'%s' only applies to prefix locations", dir ? "dir" : "program");
    if (dir && gw_path(x, dir, l->handler, true, &l->cgi_dir) < 0)
        return -1;
    if (prog && gw_path(x, prog, l->handler, false, &l->cgi_program) < 0)
        return -1;
    if ((s = member(g, "env")) && get_env(x, s, l) < 0)
        return -1;
    if ((s = member(g, "pass_env")) && get_pass_env(x, s, l) < 0)
        return -1;
    opt_bool(g, "pass_authorization", &l->pass_authorization);
    opt_bool(g, "buffering", &l->buffering);
    opt_bool(g, "upgrade", &l->upgrade);
    opt_bool(g, "request_buffering", &l->request_buffering);
    opt_bool(g, "interim_responses", &l->interim_responses);
    opt_bool(g, "x_sendfile", &l->x_sendfile);
    if ((s = member(g, "sendfile_dirs"))) {
        /* each an existing directory, resolved once here: the file named by
         * a backend is then opened beneath it (resolve.c) */
        int n = config_setting_length(s);
        if (n > 0 && !(l->sendfile_dirs = xcalloc(x, (size_t)n, sizeof(char *))))
            return -1;
        for (int i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (resolve_dir(x, e, "sendfile_dirs", config_setting_get_string(e),
                            &l->sendfile_dirs[l->nsendfile_dirs]) < 0)
                return -1;
            l->nsendfile_dirs++;
        }
    }
    return 0;
}

/* The settings only a handler = "cgi" location takes. */
int build_cgi(load_ctx *x, const config_setting_t *g, const defaults *d, pt_location *l)
{
    const config_setting_t *s;
    uint64_t v;
    long long n;
    if ((s = member(g, "interpreters"))) {
        if (get_interps(x, s, &l->interpreters, &l->interp_paths, &l->ninterpreters) < 0)
            return -1;
    } else if (d->ninterp) {
        /* the top-level cgi_interpreters, unless the location names its own */
        l->ninterpreters = d->ninterp;
        if (copy_strv(x, d->interp_exts, d->ninterp, &l->interpreters) < 0 ||
            copy_strv(x, d->interp_paths, d->ninterp, &l->interp_paths) < 0)
            return -1;
    }
    if ((s = member(g, "timeout")) && get_amount(x, s, K_DUR, 1, DAY, &l->timeout_ms) < 0)
        return -1;
    if ((s = member(g, "rlimit_cpu"))) {
        /* RLIMIT_CPU counts whole seconds */
        if (get_amount(x, s, K_DUR, 0, DAY, &v) < 0)
            return -1;
        if (v % SEC)
            return fail_at(x, s, "'rlimit_cpu' must be a whole number of seconds");
        l->rlimit_cpu = v / SEC;
    }
    if ((s = member(g, "rlimit_as"))) {
        if (get_amount(x, s, K_SIZE, 0, 1ULL << 62, &v) < 0)
            return -1;
        /* below this not even a dynamically linked shell can start */
        if (v && v < MB)
            return fail_at(x, s, "'rlimit_as' must be 0 (no limit) or at least 1M");
        l->rlimit_as = v;
    }
    if ((s = member(g, "rlimit_nproc"))) {
        if (get_int(x, s, 0, 1000000, &n) < 0)
            return -1;
        l->rlimit_nproc = (uint64_t)n;
    }
    return 0;
}

static const pt_backend *find_backend(const pt_config *c, const char *name)
{
    for (size_t i = 0; i < c->nbackends; i++)
        if (strcmp(c->backends[i].name, name) == 0)
            return &c->backends[i];
    return NULL;
}

/* The settings only a location reaching a backend (fastcgi, scgi, uwsgi)
 * takes. */
int build_fastcgi(load_ctx *x, const config_setting_t *g, pt_location *l)
{
    const config_setting_t *s = member(g, "backend");
    const char *name;
    if (!s)
        return fail_at(x, g, "a %s location needs a backend (backend = \"name\";)",
                       handler_name(l->handler));
    name = config_setting_get_string(s);
    /* backends are built before the vhosts and never move afterwards */
    if (!(l->backend = find_backend(x->c, name)))
        return fail_at(x, s, "unknown backend '%s'", name);
    opt_bool(g, "require_file", &l->require_file);
    return 0;
}

/* A key some other handler takes: "'timeout' only applies to handler \"cgi\"". */
int check_handler_keys(load_ctx *x, const config_setting_t *g, pt_handler_kind h)
{
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(s);
        for (size_t j = 0; j < PT_ARRAY_LEN(handler_keys); j++) {
            unsigned m = handler_keys[j].handlers;
            if (strcmp(handler_keys[j].key, k) != 0 || (m & (1u << h)))
                continue;
            /* "cgi", "fastcgi" or "uwsgi": the handlers of the mask, in order */
            char list[160] = "";
            size_t len = 0, left = (size_t)__builtin_popcount(m);
            for (unsigned b = 0; b <= PT_H_PROXY && len < sizeof(list); b++) {
                if (!(m & (1u << b)))
                    continue;
                left--;
                len += (size_t)snprintf(list + len, sizeof(list) - len, "\"%s\"%s",
                                        handler_name((pt_handler_kind)b),
                                        left > 1    ? ", "
                                        : left == 1 ? " or "
                                                    : "");
            }
            return fail_at(x, s, "'%s' only applies to handler %s", k, list);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ backends */

/* One element of "servers": an address string, or a group with address,
 * weight, max_conns and backup. */
static int build_server(load_ctx *x, const config_setting_t *e, pt_fcgi_server *sv)
{
    const config_setting_t *a = e, *s;
    const char *text;
    char why[160];
    long long n;
    sv->weight = 1;
    if (config_setting_is_group(e)) {
        if (!(a = member(e, "address")))
            return fail_at(x, e, "a server needs an address");
        if ((s = member(e, "weight"))) {
            if (get_int(x, s, 1, 1000, &n) < 0)
                return -1;
            sv->weight = (uint32_t)n;
        }
        if ((s = member(e, "max_conns"))) {
            if (get_int(x, s, 0, 100000, &n) < 0)
                return -1;
            sv->max_conns = (uint32_t)n;
        }
        opt_bool(e, "backup", &sv->backup);
    }
    text = config_setting_get_string(a);
    if (fcgi_addr(text, &sv->addr, &sv->addrlen, why, sizeof(why)) < 0)
        return fail_at(x, a, "server '%s': %s", text, why);
    return (sv->address = xstrdup(x, text)) ? 0 : -1;
}

static int build_servers(load_ctx *x, const config_setting_t *g, pt_backend *b)
{
    const config_setting_t *list = member(g, "servers");
    bool is_one = config_setting_type(list) == CONFIG_TYPE_STRING, primary = false;
    size_t n = is_one ? 1 : (size_t)config_setting_length(list);
    if (n == 0)
        return fail_at(x, list, "a backend needs at least one server");
    if (!(b->servers = xcalloc(x, n, sizeof(*b->servers))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *e = is_one ? list : config_setting_get_elem(list, (unsigned)i);
        pt_fcgi_server *sv = &b->servers[b->nservers++];
        if (build_server(x, e, sv) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (b->servers[j].addrlen == sv->addrlen &&
                memcmp(&b->servers[j].addr, &sv->addr, sv->addrlen) == 0)
                return fail_at(x, e, "server '%s': duplicate of '%s'", sv->address,
                               b->servers[j].address);
        primary |= !sv->backup;
    }
    /* backups stand in for primaries that are down: someone must be first */
    if (!primary)
        return fail_at(x, list, "a backend needs at least one server that is not a backup");
    return 0;
}

/* The name of the private directory of the spawn sockets portico makes
 * up: the pid keeps two servers apart, the random part makes it
 * unguessable, so that nobody can create it first (it is made with
 * mkdir, never reused). The same for every load in this process: a reload
 * finds its running sockets where they are. */
static const char *spawn_dir_name(void)
{
    static char name[64];
    if (!name[0]) {
        unsigned char r[8] = {0};
        if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
            /* no entropy (very early boot): mkdir still refuses one made by
             * someone else */
            uint64_t t = pt_now_ms();
            memcpy(r, &t, sizeof(t));
        }
        int n = snprintf(name, sizeof(name), "portico-%ld-", (long)getpid());
        for (size_t i = 0; i < sizeof(r); i++)
            n += snprintf(name + n, sizeof(name) - (size_t)n, "%02x", r[i]);
    }
    return name;
}

/* spawn = { program; args; env; processes; socket; }: the master runs the
 * program with a listening Unix socket on fd 0, which is the backend's one
 * server. */
static int build_spawn(load_ctx *x, const config_setting_t *g, pt_backend *b)
{
    const config_setting_t *s = member(g, "program");
    pt_fcgi_spawn *sp;
    pt_fcgi_server *sv;
    struct stat st;
    long long n;
    if (!(sp = b->spawn = xcalloc(x, 1, sizeof(*sp))))
        return -1;
    if (!s)
        return fail_at(x, g, "spawn needs a program");
    if (!config_setting_get_string(s)[0])
        return fail_at(x, s, "spawn program must not be empty");
    if (!(sp->program = resolve_path(x, s, config_setting_get_string(s))))
        return -1;
    /* unlike a cgi program, started at once by the master: it must be there */
    if (stat(sp->program, &st) < 0)
        return fail_at(x, s, "spawn program '%s': %s", sp->program, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail_at(x, s, "spawn program '%s': not a regular file", sp->program);
    if (access(sp->program, X_OK) < 0)
        return fail_at(x, s, "spawn program '%s' is not executable", sp->program);
    if ((s = member(g, "args")) && get_strs(x, s, &sp->args, &sp->nargs) < 0)
        return -1;
    if ((s = member(g, "env")) &&
        (get_strs(x, s, &sp->env, &sp->nenv) < 0 || check_env(x, s, sp->env, sp->nenv) < 0))
        return -1;
    sp->processes = 1;
    if ((s = member(g, "processes"))) {
        if (get_int(x, s, 1, 256, &n) < 0)
            return -1;
        sp->processes = (uint32_t)n;
    }
    if ((s = member(g, "socket"))) {
        if (!config_setting_get_string(s)[0])
            return fail_at(x, s, "spawn socket must not be empty");
        if (!(sp->socket = resolve_path(x, s, config_setting_get_string(s))))
            return -1;
    } else {
        /* in a directory of its own that the master creates (fcgi_spawn.c):
         * under systemd's RuntimeDirectory= when there is one, else tmp_dir */
        const char *rt = getenv("RUNTIME_DIRECTORY");
        char base[PATH_MAX];
        snprintf(base, sizeof(base), "%s", rt && rt[0] == '/' ? rt : x->c->tmp_dir);
        base[strcspn(base, ":")] = '\0'; /* several directories: the first */
        if (asprintf(&sp->socket, "%s/%s/%s.sock", base, spawn_dir_name(), b->name) < 0) {
            sp->socket = NULL;
            return oom(x);
        }
        sp->socket_auto = true;
        s = g;
    }
    if (!(b->servers = xcalloc(x, 1, sizeof(*b->servers))))
        return -1;
    sv = &b->servers[0];
    sv->weight = 1;
    /* a libfcgi-style app process serves one connection at a time: more
     * connections than processes would wait in the listen backlog */
    sv->max_conns = sp->processes;
    if (unix_addr(sp->socket, &sv->addr, &sv->addrlen) < 0)
        return fail_at(
            x, s, "spawn socket '%s': Unix socket path too long (%zu bytes, at most %zu)",
            sp->socket, strlen(sp->socket), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    if (asprintf(&sv->address, "unix:%s", sp->socket) < 0) {
        sv->address = NULL;
        return oom(x);
    }
    b->nservers = 1;
    return 0;
}

static bool is_backend_name(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

static int build_backend(load_ctx *x, const config_setting_t *g, pt_backend *b)
{
    const config_setting_t *s, *sp = member(g, "spawn"), *sv = member(g, "servers");
    const char *name;
    b->line = (int)config_setting_source_line(g);
    if (!(s = member(g, "name")))
        return fail_at(x, g, "a backend needs a name");
    name = config_setting_get_string(s);
    /* a --fastcgi backend is named after its pattern ("/app/"): only file
     * names are restricted, so they can appear in socket paths and logs */
    if (!config_setting_get_hook(g) && !is_backend_name(name))
        return fail_at(
            x, s, "backend name '%s': use letters, digits, '_', '.' and '-' (at least one)", name);
    if (!(b->name = xstrdup(x, name)))
        return -1;
    b->balance = PT_BAL_ROUND_ROBIN;
    if ((s = member(g, "balance"))) {
        const char *v = config_setting_get_string(s);
        if (strcmp(v, "least_conn") == 0)
            b->balance = PT_BAL_LEAST_CONN;
        else if (strcmp(v, "round_robin") != 0)
            return fail_at(x, s, "balance '%s': must be round_robin or least_conn", v);
    }
    b->keepalive = true;
    opt_bool(g, "keepalive", &b->keepalive);
    opt_bool(g, "get_values", &b->get_values);
    opt_bool(g, "via", &b->via);
    bool fwd = true;
    opt_bool(g, "forwarded", &fwd);
    b->xff_only = !fwd;
    opt_bool(g, "minimal_variables", &b->minimal_variables);
    if (get_amounts(x, g, backend_specs, PT_ARRAY_LEN(backend_specs), b) < 0)
        return -1;
    if (sp && sv)
        return fail_at(x, sv, "a backend takes 'servers' or 'spawn', not both");
    if (!sp && !sv)
        return fail_at(x, g, "backend '%s' needs servers (or spawn)", b->name);
    return sp ? build_spawn(x, sp, b) : build_servers(x, g, b);
}

/* Before the vhosts: locations point into c->backends, which is never
 * reallocated. */
int build_backends(load_ctx *x, const config_setting_t *root)
{
    pt_config *c = x->c;
    const config_setting_t *list = member(root, "backends");
    size_t n = list ? (size_t)config_setting_length(list) : 0;
    if (!n)
        return 0;
    if (!(c->backends = xcalloc(x, n, sizeof(*c->backends))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        pt_backend *b = &c->backends[c->nbackends++];
        if (build_backend(x, g, b) < 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->backends[j].name, b->name) != 0)
                continue;
            if (c->backends[j].line == 0) /* made by an earlier --fastcgi */
                return fail_at(x, g, "duplicate backend '%s' (given twice)", b->name);
            return fail_at(x, g, "duplicate backend '%s' (first at line %d)", b->name,
                           c->backends[j].line);
        }
    }
    return 0;
}

/* A backend no location names is most likely a typo (and a spawned one
 * would run for nothing). */
int warn_unused_backends(load_ctx *x, const config_setting_t *root)
{
    const pt_config *c = x->c;
    for (size_t i = 0; i < c->nbackends; i++) {
        bool used = false;
        for (size_t v = 0; v < c->nvhosts && !used; v++)
            for (size_t j = 0; j < c->vhosts[v].nlocs && !used; j++)
                used = c->vhosts[v].locs[j].backend == &c->backends[i];
        if (!used && warn_at(x, config_setting_get_elem(member(root, "backends"), (unsigned)i),
                             "backend '%s' is not used by any location", c->backends[i].name) < 0)
            return -1;
    }
    return 0;
}
