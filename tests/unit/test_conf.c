/* test_conf.c: the configuration loader: schema checks with file:line,
 * flags and -o overrides, listen addresses, vhost and location lookup, path
 * resolution, the shipped configuration files. */
#include "first.h"
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static char err[1024];
static char tmp[256];         /* scratch directory, canonical */
static char www[300];         /* tmp/www */
static char other[300];       /* tmp/other */
static char srcdir[PATH_MAX]; /* the source tree */

static pt_cli cli0(void)
{
    pt_cli c;
    memset(&c, 0, sizeof(c));
    c.workers = -1;
    return c;
}

/* Load text as if it were the file "<tmp>/t.conf". */
static pt_config *ld(const char *text, const pt_cli *cli)
{
    char name[PATH_MAX + 16];
    snprintf(name, sizeof(name), "%s/t.conf", tmp);
    return pt_config_load_string(text, name, cli, err, sizeof(err));
}

/* The error message with "<tmp>/" removed, for exact comparisons. */
static const char *msg(void)
{
    static char out[1024];
    size_t n = strlen(tmp);
    const char *p = err;
    size_t o = 0;
    while (*p && o + 1 < sizeof(out)) {
        if (strncmp(p, tmp, n) == 0 && p[n] == '/') {
            p += n + 1;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    return out;
}

static bool fails_with(const char *text, const pt_cli *cli, const char *want)
{
    pt_config *c = ld(text, cli);
    bool ok = c == NULL && strstr(msg(), want) != NULL;
    if (!ok)
        printf("#   got: %s\n", c ? "(loaded)" : msg());
    pt_config_free(c);
    return ok;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(99);
    }
    fputs(text, f);
    fclose(f);
}

static uint16_t port_of(const pt_listen_cfg *l)
{
    if (l->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
}

static const pt_vhost *vh(const pt_config *c, const char *host)
{
    return pt_config_vhost(c, host, host ? strlen(host) : 0);
}

static const char *loc(const pt_vhost *v, const char *path)
{
    const pt_location *l = pt_config_location(v, path, strlen(path));
    return l ? l->pattern : "(none)";
}

static uint16_t ss_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Is the server the Unix socket path, with the exact sockaddr_un length? */
static bool is_unix(const pt_fcgi_server *sv, const char *path)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&sv->addr;
    return un->sun_family == AF_UNIX && strcmp(un->sun_path, path) == 0 &&
           sv->addrlen == offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

static bool is_inet(const pt_fcgi_server *sv, const char *ip, uint16_t port)
{
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&sv->addr;
    struct in_addr want;
    return inet_pton(AF_INET, ip, &want) == 1 && a4->sin_family == AF_INET &&
           a4->sin_addr.s_addr == want.s_addr && ss_port(&sv->addr) == port &&
           sv->addrlen == sizeof(*a4);
}

static bool is_inet6(const pt_fcgi_server *sv, const char *ip, uint16_t port)
{
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&sv->addr;
    struct in6_addr want;
    return inet_pton(AF_INET6, ip, &want) == 1 && a6->sin6_family == AF_INET6 &&
           memcmp(&a6->sin6_addr, &want, sizeof(want)) == 0 && ss_port(&sv->addr) == port &&
           sv->addrlen == sizeof(*a6);
}

/* conf/portico.conf with its commented-out "#limit_..." lines switched on;
 * returns how many. */
static int write_limit_example(const char *src, const char *dst)
{
    FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
    char line[1024];
    int n = 0;
    while (in && out && fgets(line, sizeof(line), in)) {
        bool on = strncmp(line, "#limit_", 7) == 0;
        n += on;
        fputs(on ? line + 1 : line, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return n;
}

static void test_shipped_files(void)
{
    char path[PATH_MAX + 64], want[PATH_MAX + 64], ov[PATH_MAX + 16], real[PATH_MAX];
    const char *ovs[1] = {ov};
    pt_cli cli = cli0();
    pt_config *c, *d;

    snprintf(path, sizeof(path), "%s/conf/portico.conf", srcdir);
    cli.conf_file = path;
    c = pt_config_load(&cli, err, sizeof(err));
    /* the package's root may be missing on a build machine: only that may fail */
    ok(c || strstr(err, "root '/var/www/html'"), "portico.conf loads or only lacks /var/www/html");
    pt_config_free(c);

    snprintf(ov, sizeof(ov), "root=%s", www);
    cli.overrides = ovs;
    cli.noverrides = 1;
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c != NULL, "portico.conf loads with -o root (%s)", c ? "ok" : err);
    d = ld("", NULL);
    if (c && d) {
        ok(c->nlisten == 1 && c->listen[0].any_dual && port_of(&c->listen[0]) == 80,
           "portico.conf listens on *:80");
        ok(strcmp(c->access_log, "/var/log/portico/access.log") == 0 &&
               strcmp(c->error_log, "/var/log/portico/error.log") == 0,
           "portico.conf logs under /var/log/portico");
        ok(memcmp(&c->limits, &d->limits, sizeof(c->limits)) == 0,
           "portico.conf writes out exactly the default limits");
        ok(memcmp(&c->open_file_cache, &d->open_file_cache, sizeof(c->open_file_cache)) == 0,
           "portico.conf writes out exactly the default open_file_cache");
        ok(c->nvhosts == 1 && c->vhosts[0].is_default && strcmp(c->vhosts[0].root, www) == 0,
           "portico.conf: one implicit default vhost with the -o root");
        /* the Debian package's default page after an index.html of the admin's */
        ok(c->vhosts[0].nindex == 2 && strcmp(c->vhosts[0].index[0], "index.html") == 0 &&
               strcmp(c->vhosts[0].index[1], "index.portico-debian.html") == 0 &&
               c->vhosts[0].nlocs == 3 && strcmp(c->vhosts[0].locs[2].pattern, "/") == 0 &&
               c->vhosts[0].locs[2].handler == PT_H_STATIC,
           "portico.conf: index.html, index.portico-debian.html, /cgi-bin/, .php and a static / "
           "location");
        ok(c->user && strcmp(c->user, "www-data") == 0 && !c->group && c->creds.uid == 33 &&
               c->creds.gid == 33,
           "portico.conf: user www-data");
        ok(c->pid_file && strcmp(c->pid_file, "/run/portico.pid") == 0,
           "portico.conf: pid file /run/portico.pid");
        ok(c->nbackends == 1 && strcmp(c->backends[0].name, "php") == 0 &&
               c->backends[0].nservers == 1 &&
               is_unix(&c->backends[0].servers[0], "/run/php/php-fpm.sock") &&
               !c->backends[0].spawn,
           "portico.conf: backend 'php' is PHP-FPM's Unix socket");
        const pt_location *l = &c->vhosts[0].locs[1];
        ok(l->match == PT_MATCH_EXT && strcmp(l->pattern, ".php") == 0 &&
               l->handler == PT_H_FASTCGI && l->backend == &c->backends[0],
           "portico.conf: .php scripts go to it");
        ok(c->vhosts[0].locs[0].handler == PT_H_CGI &&
               strcmp(c->vhosts[0].locs[0].pattern, "/cgi-bin/") == 0 &&
               strcmp(c->vhosts[0].locs[0].cgi_dir, "/usr/lib/cgi-bin") == 0 &&
               c->vhosts[0].locs[0].timeout_ms == d->vhosts[0].locs[0].timeout_ms &&
               c->vhosts[0].locs[0].ninterpreters == 0,
           "portico.conf: /cgi-bin/ runs /usr/lib/cgi-bin, default timeout");
        ok(access("/usr/lib/cgi-bin", F_OK) == 0
               ? c->nwarnings == 0
               : c->nwarnings == 1 &&
                     strstr(c->warnings[0], "warning: cgi dir '/usr/lib/cgi-bin' does not exist"),
           "portico.conf: a missing /usr/lib/cgi-bin is only a warning");
        ok(c->server_tokens && c->log_level == PT_LOG_INFO &&
               strcmp(c->mime_types, "/etc/mime.types") == 0,
           "portico.conf: server_tokens, info, /etc/mime.types");
        ok(strcmp(c->file, path) == 0, "pt_config.file names the file");
    }
    pt_config_free(c);
    pt_config_free(d);

    /* the commented-out client limits are valid once uncommented */
    snprintf(path, sizeof(path), "%s/conf/portico.conf", srcdir);
    snprintf(want, sizeof(want), "%s/limit-example.conf", tmp);
    ok(write_limit_example(path, want) == 2, "portico.conf has limit_conn and limit_req examples");
    cli.conf_file = want;
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c != NULL, "portico.conf with the limits switched on loads (%s)", c ? "ok" : err);
    if (c) {
        const pt_location *l = &c->vhosts[0].locs[1];
        ok(c->nzones == 2 && l->limit_conn >= 0 && c->zones[l->limit_conn].conn == 20 &&
               l->limit_req >= 0 && c->zones[l->limit_req].burst == 20 &&
               c->zones[l->limit_req].interval_ns == 100000000ULL,
           "the example limits: 20 at once, 10r/s burst 20");
    }
    pt_config_free(c);

    cli = cli0();
    snprintf(path, sizeof(path), "%s/conf/demo.conf", srcdir);
    cli.conf_file = path;
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c != NULL, "demo.conf loads (%s)", c ? "ok" : err);
    if (c) {
        snprintf(want, sizeof(want), "%s/conf/demo/www", srcdir);
        ok(realpath(want, real) && strcmp(c->vhosts[0].root, real) == 0,
           "demo.conf root is relative to the file's directory");
        ok(c->nlisten == 1 && strcmp(c->listen[0].text, "127.0.0.1:8080") == 0 &&
               !c->listen[0].any_dual && c->listen[0].addr.ss_family == AF_INET,
           "demo.conf listens on 127.0.0.1:8080 only");
        ok(strcmp(c->access_log, "stderr") == 0, "demo.conf logs access to stderr");
        ok(c->vhosts[0].nlocs == 3 && c->vhosts[0].locs[0].dir_listing == 1 &&
               c->vhosts[0].locs[0].handler == PT_H_STATIC &&
               strcmp(loc(&c->vhosts[0], "/files/x"), "/files/") == 0,
           "demo.conf lists /files/");
        snprintf(want, sizeof(want), "%s/conf/demo/www/cgi-bin", srcdir);
        ok(strcmp(loc(&c->vhosts[0], "/cgi-bin/hello.cgi"), "/cgi-bin/") == 0 &&
               c->vhosts[0].locs[1].handler == PT_H_CGI && c->vhosts[0].locs[1].cgi_dir &&
               c->vhosts[0].locs[1].cgi_dir[0] == '/' && realpath(want, real) &&
               realpath(c->vhosts[0].locs[1].cgi_dir, path) && strcmp(path, real) == 0,
           "demo.conf runs /cgi-bin/ from demo/www/cgi-bin, relative to the file");
        snprintf(want, sizeof(want), "%s/hello.cgi", c->vhosts[0].locs[1].cgi_dir);
        ok(access(want, X_OK) == 0 && c->nwarnings == 0,
           "demo.conf: hello.cgi is executable, no warnings");
    }
    pt_config_free(c);
}

static void test_defaults(void)
{
    pt_config *c;
    char cwd[PATH_MAX];
    pt_cli cli = cli0();
    setenv("TMPDIR", other, 1);
    c = ld("", NULL);
    ok(c != NULL, "empty file loads");
    if (!c)
        return;
    ok(c->nlisten == 1 && strcmp(c->listen[0].text, "*:8080") == 0 && c->listen[0].any_dual,
       "default listen is *:8080 dual-stack");
    ok(c->workers == (int)PT_MAX(1, PT_MIN(sysconf(_SC_NPROCESSORS_ONLN), 1024)),
       "workers 0 resolves to the online CPU count");
    ok(strcmp(c->error_log, "stderr") == 0 && c->access_log == NULL && c->pid_file == NULL,
       "defaults: error_log stderr, access_log off, no pid file");
    ok(strcmp(c->tmp_dir, other) == 0, "tmp_dir defaults to $TMPDIR");
    ok(strcmp(c->server_name, "portico") == 0 && c->server_tokens, "server_name portico, tokens");
    ok(c->limits.header_buffer == 8192 && c->limits.max_body == 100ULL << 20 &&
           c->limits.keepalive_timeout_ms == 65000 && c->limits.max_headers == 100,
       "default limits");
    ok(getcwd(cwd, sizeof(cwd)) && c->nvhosts == 1 && strcmp(c->vhosts[0].root, cwd) == 0,
       "default root is the current directory");
    pt_config_free(c);
    unsetenv("TMPDIR");
    c = ld("", NULL);
    ok(c && strcmp(c->tmp_dir, "/tmp") == 0, "tmp_dir is /tmp without $TMPDIR");
    pt_config_free(c);

    cli.port = "9000";
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c && c->file == NULL && c->nlisten == 1 && c->listen[0].any_dual &&
           port_of(&c->listen[0]) == 9000 && strcmp(c->vhosts[0].root, cwd) == 0,
       "-p alone: no file, *:9000, the current directory");
    pt_config_free(c);
}

static void test_schema_errors(void)
{
    ok(fails_with("workers = 1;\nlimits: {\n  keepalive_timout = \"5s\";\n};\n", NULL,
                  "t.conf:3: unknown setting 'limits.keepalive_timout'") &&
           strcmp(msg(), "t.conf:3: unknown setting 'limits.keepalive_timout'") == 0,
       "unknown key reported with file:line and path");
    ok(fails_with("\nvhosts = ( { names = [ \"a\" ]; rooot = \"/\"; } );\n", NULL,
                  "t.conf:2: unknown setting 'vhosts.[0].rooot'"),
       "unknown key inside a list element");
    ok(fails_with("workers = \"2\";\n", NULL, "t.conf:1: 'workers' must be an integer"),
       "wrong type: string for integer");
    ok(fails_with("dir_listing = 1;\n", NULL, "'dir_listing' must be true or false"),
       "wrong type: integer for boolean");
    ok(fails_with("index = 3;\n", NULL, "'index' must be an array of strings"),
       "wrong type: integer for a string array");
    ok(fails_with("limits = ( );\n", NULL, "'limits' must be a group"), "wrong type: limits");
    ok(fails_with("vhosts = ( \"x\" );\n", NULL, "'vhosts.[0]' must be a group"),
       "vhosts elements must be groups");
    ok(fails_with("workers = 1;\nroot = ;\n", NULL, "t.conf:2: syntax error"),
       "parse errors carry file:line");
    ok(fails_with("workers = 1;\nworkers = 2;\n", NULL, "t.conf:2: duplicate setting name"),
       "duplicate settings are an error");
    ok(fails_with("workers = 1025;", NULL, "'workers' must be between 0 and 1024"),
       "workers above 1024 rejected");
    ok(fails_with("workers = -1;", NULL, "'workers' must be between 0 and 1024"),
       "negative workers rejected");
    ok(fails_with("log_level = \"verbose\";", NULL, "log_level 'verbose'"),
       "unknown log level rejected");
    ok(fails_with("error_log = \"off\";", NULL, "error_log must be"), "error_log cannot be off");
}

static void test_sizes(void)
{
    pt_config *c = ld("limits: {\n header_buffer = \"16k\"; max_body = \"2G\";"
                      " body_memory = 0; max_pipelined = 4096;\n header_timeout = \"500ms\";"
                      " body_timeout = 30; keepalive_timeout = \"5m\"; write_timeout = \"1h\";"
                      " max_ranges = 1; max_connections = 10;\n};",
                      NULL);
    ok(c != NULL, "size and duration strings load (%s)", c ? "ok" : err);
    if (c) {
        ok(c->limits.header_buffer == 16384, "\"16k\" is 16384 bytes");
        ok(c->limits.max_body == 2ULL << 30, "\"2G\" is 2^31 bytes");
        ok(c->limits.body_memory == 0 && c->limits.max_pipelined == 4096,
           "plain integers are bytes");
        ok(c->limits.header_timeout_ms == 500, "\"500ms\" is 500 ms");
        ok(c->limits.body_timeout_ms == 30000, "plain integer durations are seconds");
        ok(c->limits.keepalive_timeout_ms == 300000 && c->limits.write_timeout_ms == 3600000,
           "\"5m\" and \"1h\"");
        ok(c->limits.max_ranges == 1 && c->limits.max_connections == 10, "counts");
    }
    pt_config_free(c);
    ok(fails_with("limits: { max_body = \"12q\"; };", NULL, "invalid size '12q'"),
       "junk size rejected");
    ok(fails_with("limits: { header_timeout = \"5M\"; };", NULL, "invalid duration '5M'"),
       "upper-case M is not a duration unit");
    ok(fails_with("limits: { header_buffer = \"2M\"; };", NULL,
                  "'limits.header_buffer' must be between 1k and 1M"),
       "header_buffer above 1M rejected");
    ok(fails_with("limits: { header_buffer = 512; };", NULL, "between 1k and 1M"),
       "header_buffer below 1k rejected");
    ok(fails_with("limits: { max_headers = 0; };", NULL, "between 1 and 10000"),
       "max_headers 0 rejected");
    ok(fails_with("limits: { max_body = -5; };", NULL, "cannot be negative"),
       "negative size rejected");
    ok(fails_with("limits: { keepalive_timeout = 0; };", NULL, "between 1ms and 1d"),
       "zero timeout rejected");
    c = ld("workers = 1;", NULL);
    ok(c && c->limits.tcp_notsent_lowat == 128 * 1024, "tcp_notsent_lowat defaults to 128k");
    pt_config_free(c);
    c = ld("limits: { tcp_notsent_lowat = \"64k\"; };", NULL);
    ok(c && c->limits.tcp_notsent_lowat == 64 * 1024, "tcp_notsent_lowat = \"64k\"");
    pt_config_free(c);
    c = ld("limits: { tcp_notsent_lowat = 0; };", NULL);
    ok(c && c->limits.tcp_notsent_lowat == 0, "tcp_notsent_lowat = 0 (the system's default)");
    pt_config_free(c);
    ok(fails_with("limits: { tcp_notsent_lowat = \"1G\"; };", NULL,
                  "'limits.tcp_notsent_lowat' must be between 0 and 256M"),
       "tcp_notsent_lowat above 256M rejected");
    /* libconfig 1.5 would read these as -1294967296 and 705032704 */
    ok(fails_with("workers = 1;\nlimits: {\n max_body = 3000000000;\n};", NULL,
                  "t.conf:3: integer 3000000000 is out of range"),
       "integer literal that wraps negative is reported with its line");
    ok(fails_with("limits: { max_body = 5000000000; };", NULL,
                  "integer 5000000000 is out of range"),
       "integer literal that wraps to a positive value is reported");
    c = ld("# 9999999999 in a comment\nroot = \".\"; /* 8888888888 */ index = [ \"9999999999\" ];"
           "\nlimits: { max_body = \"5G\"; body_memory = 5000000L; };",
           NULL);
    ok(c && c->limits.max_body == 5ULL << 30 && c->limits.body_memory == 5000000,
       "big values as strings or with L, and digits in comments/strings, are fine");
    pt_config_free(c);
    c = ld("limits: { max_body = 6000000000L; };", NULL);
    ok(c && c->limits.max_body == 6000000000ULL, "64-bit integer literal (L) is exact");
    pt_config_free(c);
}

static void test_overrides(void)
{
    pt_cli cli = cli0();
    const char *ovs[4];
    const char *ls[2];
    char text[PATH_MAX * 2], o1[PATH_MAX + 16];
    pt_config *c;

    snprintf(text, sizeof(text),
             "workers = 2;\nroot = \"%s\";\nlisten = [ \"127.0.0.1:81\" ];\n"
             "limits: { max_body = \"1M\"; };\nerror_log = \"e.log\";\n",
             www);
    cli.workers = 3;
    cli.root = other;
    cli.max_body = "2M";
    cli.error_log = "stderr";
    cli.access_log = "stdout";
    ls[0] = "127.0.0.1:82";
    ls[1] = "[::1]:83";
    cli.listen = ls;
    cli.nlisten = 2;
    c = ld(text, &cli);
    ok(c != NULL, "flags apply (%s)", c ? "ok" : err);
    if (c) {
        ok(c->workers == 3, "-w overrides workers");
        ok(strcmp(c->vhosts[0].root, other) == 0, "-r overrides root");
        ok(c->limits.max_body == 2ULL << 20, "--max-body overrides limits.max_body");
        ok(strcmp(c->error_log, "stderr") == 0 && strcmp(c->access_log, "stdout") == 0,
           "--error-log and --access-log override");
        ok(c->nlisten == 2 && port_of(&c->listen[0]) == 82 &&
               c->listen[1].addr.ss_family == AF_INET6 && port_of(&c->listen[1]) == 83,
           "-l replaces the file's listen");
    }
    pt_config_free(c);

    snprintf(o1, sizeof(o1), "root=%s", www);
    ovs[0] = "workers=4";
    ovs[1] = o1;
    ovs[2] = "limits.keepalive_timeout=7s";
    ovs[3] = "index=index.htm, index.html";
    cli.overrides = ovs;
    cli.noverrides = 4;
    c = ld(text, &cli);
    ok(c != NULL, "-o applies (%s)", c ? "ok" : err);
    if (c) {
        ok(c->workers == 4, "-o workers overrides -w");
        ok(strcmp(c->vhosts[0].root, www) == 0, "-o root overrides -r");
        ok(c->limits.keepalive_timeout_ms == 7000 && c->limits.max_body == 2ULL << 20,
           "-o sets one limit, keeps the others");
        ok(c->vhosts[0].nindex == 2 && strcmp(c->vhosts[0].index[0], "index.htm") == 0 &&
               strcmp(c->vhosts[0].index[1], "index.html") == 0,
           "-o string array is split on commas, blanks trimmed");
    }
    pt_config_free(c);

    cli = cli0();
    cli.noverrides = 1;
    cli.overrides = ovs;
    ovs[0] = "foo.bar=1";
    ok(fails_with("", &cli, "-o foo.bar: unknown setting") &&
           strcmp(msg(), "-o foo.bar: unknown setting") == 0,
       "-o unknown path");
    ovs[0] = "limits.nope=1";
    ok(fails_with("", &cli, "-o limits.nope: unknown setting"), "-o unknown limit");
    ovs[0] = "workers.x=1";
    ok(fails_with("", &cli, "-o workers.x: unknown setting"), "-o path below a scalar");
    ovs[0] = "limits=5";
    ok(fails_with("", &cli, "-o limits: 'limits' is a group"), "-o on a group");
    ovs[0] = "workers";
    ok(fails_with("", &cli, "expected SETTING=VALUE"), "-o without =");
    ovs[0] = "workers=abc";
    ok(fails_with("", &cli, "-o workers: 'abc' is not an integer"), "-o integer conversion");
    ovs[0] = "dir_listing=maybe";
    ok(fails_with("", &cli, "-o dir_listing: 'maybe' is not a boolean"), "-o boolean conversion");
    ovs[0] = "limits.max_body=lots";
    ok(fails_with("", &cli, "-o limits.max_body: 'limits.max_body': invalid size 'lots'"),
       "-o values meet the same validation, blamed on -o");
    ovs[0] = "vhosts.[0].root=/";
    ok(fails_with("", &cli, "-o vhosts.[0].root: no element [0] in 'vhosts'"),
       "-o into a missing list element");

    ovs[0] = "dir_listing=yes";
    ovs[1] = "server_tokens=off";
    ovs[2] = "follow_symlinks=1";
    ovs[3] = "allow_dotfiles=FALSE";
    cli.noverrides = 4;
    c = ld("allow_dotfiles = true;", &cli);
    ok(c && c->vhosts[0].dir_listing && !c->server_tokens && c->vhosts[0].follow_symlinks &&
           !c->vhosts[0].allow_dotfiles,
       "-o booleans: yes/off/1/FALSE");
    pt_config_free(c);

    snprintf(text, sizeof(text),
             "vhosts = ( { names = [ \"a.test\" ]; root = \"%s\";\n"
             "  locations = ( { prefix = \"/x/\"; } ); } );\n",
             www);
    snprintf(o1, sizeof(o1), "vhosts.[0].root=%s", other);
    ovs[0] = o1;
    ovs[1] = "vhosts.[0].locations.[0].dir_listing=on";
    ovs[2] = "vhosts.[0].names=b.test,C.test";
    cli.noverrides = 3;
    c = ld(text, &cli);
    ok(c && strcmp(c->vhosts[0].root, other) == 0, "-o vhosts.[0].root sets a vhost's root");
    ok(c && c->vhosts[0].locs[0].dir_listing == 1, "-o reaches a location inside a vhost");
    ok(c && c->vhosts[0].nnames == 2 && strcmp(c->vhosts[0].names[1], "c.test") == 0,
       "-o replaces a vhost's names");
    pt_config_free(c);

    cli = cli0();
    cli.port = "http";
    ok(fails_with("", &cli, "-p: 'http': port must be"), "-p needs a numeric port");
    cli.port = NULL;
    ls[0] = "localhost:80";
    cli.listen = ls;
    cli.nlisten = 1;
    ok(fails_with("", &cli, "-l: listen 'localhost:80': not a numeric IPv4 address"),
       "-l errors are blamed on -l");
    cli.nlisten = 0;
    cli.workers = 5000;
    ok(fails_with("", &cli, "-w: 'workers' must be between 0 and 1024"), "-w range checked");
}

static void test_listen(void)
{
    pt_config *c = ld("listen = [ \"127.0.0.1:8080\", \"[::1]:8080\", \"*:81\", \"82\" ];", NULL);
    ok(c != NULL, "listen forms load (%s)", c ? "ok" : err);
    if (c && c->nlisten == 4) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&c->listen[0].addr;
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&c->listen[1].addr;
        const struct sockaddr_in6 *any = (const struct sockaddr_in6 *)&c->listen[2].addr;
        ok(a4->sin_family == AF_INET && a4->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
               c->listen[0].addrlen == sizeof(*a4) && port_of(&c->listen[0]) == 8080,
           "IPv4:PORT");
        ok(a6->sin6_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr) &&
               c->listen[1].addrlen == sizeof(*a6) && !c->listen[1].any_dual,
           "[IPv6]:PORT");
        ok(c->listen[2].any_dual && any->sin6_family == AF_INET6 &&
               IN6_IS_ADDR_UNSPECIFIED(&any->sin6_addr) && port_of(&c->listen[2]) == 81,
           "*:PORT is [::] dual-stack");
        ok(c->listen[3].any_dual && port_of(&c->listen[3]) == 82, "bare PORT is dual-stack");
    }
    pt_config_free(c);
    c = ld("listen = \"127.0.0.2:90\";", NULL);
    ok(c && c->nlisten == 1 && port_of(&c->listen[0]) == 90, "a single string is accepted");
    pt_config_free(c);
    ok(fails_with("listen = [ \"localhost:80\" ];", NULL, "not a numeric IPv4 address (no DNS"),
       "host names are refused (no DNS)");
    ok(fails_with("listen = [ \"127.0.0.1:0\" ];", NULL, "port must be a number from 1 to 65535"),
       "port 0 rejected");
    ok(fails_with("listen = [ \"127.0.0.1:65536\" ];", NULL, "port must be"),
       "port 65536 rejected");
    ok(fails_with("listen = [ \"::1:80\" ];", NULL, "IPv6 addresses need brackets"),
       "unbracketed IPv6 rejected");
    ok(fails_with("listen = [ \"[::1]80\" ];", NULL, "expected [IPv6]:PORT"),
       "bracket without :PORT rejected");
    ok(fails_with("listen = [ \"1.2.3.4:80\", \"1.2.3.4:80\" ];", NULL,
                  "listen '1.2.3.4:80': duplicate of '1.2.3.4:80'"),
       "duplicate listen rejected");
    ok(fails_with("listen = [ \"*:80\", \"80\" ];", NULL, "duplicate of '*:80'"),
       "*:80 and 80 are the same");
    ok(fails_with("listen = [ \"*:80\", \"127.0.0.1:80\" ];", NULL, "overlaps '*:80'"),
       "address already covered by the wildcard rejected");
    ok(fails_with("listen = [ ];", NULL, "at least one address"), "empty listen rejected");
}

static void test_vhosts(void)
{
    char text[PATH_MAX * 3];
    pt_config *c;
    snprintf(text, sizeof(text),
             "root = \"%s\";\nindex = [ \"home.html\" ];\ndir_listing = true;\n"
             "vhosts = (\n"
             "  { names = [ \"Example.ORG\", \"*.example.org\", \"www.example.org.\" ];"
             " root = \"%s\"; },\n"
             "  { names = [ \"*.a.example.org\" ]; dir_listing = false; access_log = \"off\"; },\n"
             "  { names = [ \"[::1]\", \"127.0.0.1\" ]; }\n"
             ");\n",
             www, other);
    c = ld(text, NULL);
    ok(c != NULL, "vhosts load (%s)", c ? "ok" : err);
    if (!c)
        return;
    ok(c->nvhosts == 4 && c->vhosts[3].is_default && c->vhosts[3].nnames == 0,
       "an implicit default vhost is appended");
    ok(strcmp(c->vhosts[3].root, www) == 0 && c->vhosts[3].dir_listing,
       "the implicit default uses the top-level settings");
    ok(strcmp(c->vhosts[0].names[0], "example.org") == 0 &&
           strcmp(c->vhosts[0].names[2], "www.example.org") == 0,
       "names are lower-cased, trailing dot removed");
    ok(strcmp(c->vhosts[1].root, www) == 0 && c->vhosts[1].nindex == 1 &&
           strcmp(c->vhosts[1].index[0], "home.html") == 0 && !c->vhosts[1].dir_listing,
       "vhosts inherit root/index, override dir_listing");
    ok(strcmp(c->vhosts[1].access_log, "off") == 0 && c->vhosts[0].access_log == NULL,
       "vhost access_log \"off\" kept, unset is NULL");
    ok(vh(c, "example.org") == &c->vhosts[0], "exact name");
    ok(vh(c, "EXAMPLE.org:8080") == &c->vhosts[0], "port stripped, case ignored");
    ok(vh(c, "example.org.") == &c->vhosts[0], "trailing dot ignored");
    ok(vh(c, "foo.example.org") == &c->vhosts[0], "wildcard suffix");
    ok(vh(c, "x.a.example.org") == &c->vhosts[1], "the longest wildcard wins");
    ok(vh(c, "a.example.org") == &c->vhosts[0], "*.a.example.org does not match a.example.org");
    ok(vh(c, "example.org.evil") == &c->vhosts[3], "no substring match");
    ok(vh(c, "xexample.org") == &c->vhosts[3], "wildcard needs the dot");
    ok(vh(c, "[::1]:8080") == &c->vhosts[2] && vh(c, "127.0.0.1:80") == &c->vhosts[2],
       "IP literal hosts, with port");
    ok(vh(c, "other.net") == &c->vhosts[3] && vh(c, NULL) == &c->vhosts[3] &&
           vh(c, "") == &c->vhosts[3],
       "unknown, missing and empty Host go to the default");
    pt_config_free(c);

    c = ld("vhosts = ( { names = [ \"a.test\" ]; }, { names = [ \"b.test\" ]; default = true; } );",
           NULL);
    ok(c && c->nvhosts == 2 && c->vhosts[1].is_default && vh(c, "zzz") == &c->vhosts[1],
       "an explicit default: no implicit vhost");
    pt_config_free(c);
    c = ld("vhosts = ( { names = [ \"*\" ]; } );", NULL);
    ok(c && c->nvhosts == 1 && c->vhosts[0].is_default, "names [\"*\"] is the default");
    pt_config_free(c);
    ok(fails_with(
           "vhosts = (\n { names = [ \"a.test\" ]; },\n { names = [ \"b.test\", \"A.test\" ]; }"
           " );",
           NULL, "t.conf:3: vhost name 'a.test' is already used by the vhost at line 2"),
       "duplicate vhost names across vhosts rejected");
    ok(fails_with("vhosts = ( { names = [ \"a.test\"]; default = true; },\n"
                  "  { names = [ \"b.test\" ]; default = true; } );",
                  NULL, "only one vhost may be the default"),
       "two defaults rejected");
    ok(fails_with("vhosts = ( { root = \"/\"; }, { names = [ \"*\" ]; } );", NULL,
                  "only one vhost may be the default"),
       "a nameless vhost and '*' are both defaults");
    ok(fails_with("vhosts = ( { names = [ \"example.org:80\" ]; } );", NULL,
                  "invalid character ':'"),
       "vhost names have no port");
    {
        static const char *const empty[] = {"a..b", ".a", "a..", "*..a", "test--....."};
        for (size_t i = 0; i < PT_ARRAY_LEN(empty); i++) {
            char t[256];
            snprintf(t, sizeof(t), "vhosts = ( { names = [ \"%s\" ]; } );", empty[i]);
            ok(fails_with(t, NULL, "empty label"), "vhost name '%s': empty label", empty[i]);
        }
        pt_config *cv = ld("vhosts = ( { names = [ \"A.Test.\" ]; root = \"/\"; } );", NULL);
        ok(cv && strcmp(cv->vhosts[0].names[0], "a.test") == 0 &&
               pt_config_vhost(cv, "a.test.", 7) == &cv->vhosts[0],
           "one trailing dot is stripped on both sides");
        pt_config_free(cv);
    }
    ok(fails_with("vhosts = ( { names = [ \"*example.org\" ]; } );", NULL,
                  "a wildcard must look like '*.example.org'"),
       "a wildcard is '*.' then a suffix");
    ok(fails_with("vhosts = ( { names = [ \"a*.test\" ]; } );", NULL, "invalid character '*'"),
       "'*' only at the start of a name");
}

static void test_locations(void)
{
    char text[PATH_MAX * 3];
    const pt_vhost *v;
    pt_config *c;
    snprintf(text, sizeof(text),
             "locations = (\n"
             "  { prefix = \"/downloads/\"; dir_listing = true; },\n"
             "  { exact = \"/robots.txt\"; root = \"other\"; },\n"
             "  { extension = \".txt\"; allow_dotfiles = false; },\n"
             "  { extension = \".tar.gz\"; },\n"
             "  { extension = \".gz\"; },\n"
             "  { prefix = \"/downloads/deep/\"; handler = \"static\"; }\n"
             ");\n");
    c = ld(text, NULL);
    ok(c != NULL, "locations load (%s)", c ? "ok" : err);
    if (!c)
        return;
    v = &c->vhosts[0];
    ok(v->nlocs == 7 && strcmp(v->locs[6].pattern, "/") == 0 &&
           v->locs[6].match == PT_MATCH_PREFIX && v->locs[6].handler == PT_H_STATIC,
       "an implicit / prefix location is appended");
    ok(strcmp(loc(v, "/robots.txt"), "/robots.txt") == 0, "exact beats extension");
    ok(strcmp(loc(v, "/downloads/a.txt"), ".txt") == 0, "extension beats prefix");
    ok(strcmp(loc(v, "/downloads/deep/x"), "/downloads/deep/") == 0, "longest prefix wins");
    ok(strcmp(loc(v, "/downloads/x"), "/downloads/") == 0, "prefix match");
    ok(strcmp(loc(v, "/downloads"), "/") == 0, "prefix is a plain string prefix");
    ok(strcmp(loc(v, "/a.tar.gz"), ".tar.gz") == 0 && strcmp(loc(v, "/a.gz"), ".gz") == 0,
       "the longest extension wins");
    ok(strcmp(loc(v, "/a.txt/b"), "/") == 0, "extension of the last segment only");
    ok(strcmp(loc(v, "/.txt"), "/") == 0, "a dotfile name is not an extension");
    ok(strcmp(loc(v, "/nothing/here"), "/") == 0, "everything else falls to /");
    ok(strcmp(v->locs[1].root, other) == 0, "location root relative to the config file");
    ok(v->locs[0].dir_listing && v->locs[0].own_opts == PT_OWN_DIR_LISTING &&
           !v->locs[0].follow_symlinks && !v->locs[2].allow_dotfiles &&
           v->locs[2].own_opts == PT_OWN_ALLOW_DOTFILES && v->locs[1].root && !v->locs[0].root,
       "location options: own ones marked, the rest the vhost's");
    pt_config_free(c);

    /* inheritance is resolved at load time: location <- vhost <- top */
    c = ld("dir_listing = true;\nallow_dotfiles = true;\nprecompressed = true;\n"
           "locations = ( { prefix = \"/a/\"; },\n"
           "  { prefix = \"/b/\"; dir_listing = false; follow_symlinks = true; } );\n"
           "vhosts = ( { names = [ \"v.test\" ]; allow_dotfiles = false; },\n"
           "  { names = [ \"w.test\" ]; } );",
           NULL);
    ok(c != NULL, "inheritance config loads (%s)", c ? "ok" : err);
    if (c) {
        const pt_location *a = &c->vhosts[0].locs[0], *b = &c->vhosts[0].locs[1];
        const pt_location *root = &c->vhosts[0].locs[2], *w = &c->vhosts[1].locs[0];
        ok(a->dir_listing && a->precompressed && !a->allow_dotfiles && !a->follow_symlinks &&
               a->own_opts == 0,
           "a silent location holds its vhost's values (the vhost's own, else the top's)");
        ok(!b->dir_listing && b->follow_symlinks && !b->allow_dotfiles && b->precompressed &&
               b->own_opts == (PT_OWN_DIR_LISTING | PT_OWN_FOLLOW_SYMLINKS),
           "a location's own values win; the others are inherited");
        ok(root->dir_listing && !root->allow_dotfiles && root->own_opts == 0,
           "the implicit / location inherits too");
        ok(w->dir_listing && w->allow_dotfiles && w->precompressed,
           "a vhost that sets nothing passes the top level's on");
    }
    pt_config_free(c);

    c = ld("locations = ( { prefix = \"/\"; dir_listing = true; } );", NULL);
    ok(c && c->vhosts[0].nlocs == 1, "no implicit / when one is configured");
    pt_config_free(c);
    c = ld("locations = ( { prefix = \"/x/\"; } );\nvhosts = ( { names = [ \"a.test\" ]; } );",
           NULL);
    ok(c && c->vhosts[0].nlocs == 2 && strcmp(c->vhosts[0].locs[0].pattern, "/x/") == 0,
       "vhosts without locations inherit the top-level ones");
    pt_config_free(c);
    ok(fails_with("locations = (\n { prefix = \"/a/\"; exact = \"/b\"; } );", NULL,
                  "t.conf:2: a location needs exactly one of prefix, exact, extension, regex or "
                  "iregex"),
       "two match kinds rejected");
    ok(fails_with("locations = ( { handler = \"static\"; } );", NULL, "exactly one of"),
       "no match kind rejected");
    ok(fails_with("locations = ( { prefix = \"a/\"; } );", NULL, "must start with '/'"),
       "prefix must start with /");
    ok(fails_with("locations = ( { extension = \"txt\"; } );", NULL, "must start with '.'"),
       "extension must start with .");
    ok(fails_with("locations = ( { exact = \"/a\"; },\n { exact = \"/a\"; } );", NULL,
                  "duplicate location exact '/a'"),
       "duplicate location rejected");
    ok(fails_with("locations = ( { prefix = \"/\"; handler = \"tunnel\"; } );", NULL,
                  "unknown handler 'tunnel'"),
       "unknown handler rejected");
    ok(fails_with("locations = ( { prefix = \"/\"; handler = \"proxy\"; } );", NULL,
                  "a proxy location needs a backend"),
       "a proxy location needs a backend");
    ok(fails_with("locations = ( { prefix = \"/\"; handler = \"proxy\"; program = \"/x\"; } );",
                  NULL,
                  "'program' only applies to handler \"cgi\", \"fastcgi\", \"scgi\" or \"uwsgi\""),
       "a proxy location has no program");
    c = ld("workers = 1;\nlocations = ( { prefix = \"/cgi-bin/\"; handler = \"cgi\"; } );", NULL);
    ok(c && c->vhosts[0].locs[0].handler == PT_H_CGI && !c->vhosts[0].locs[0].cgi_dir &&
           !c->vhosts[0].locs[0].cgi_program,
       "handler cgi without dir/program: scripts under the root");
    pt_config_free(c);
    ok(fails_with("locations = ( { extension = \".php\"; handler = \"fastcgi\"; } );", NULL,
                  "t.conf:1: a fastcgi location needs a backend (backend = \"name\";)"),
       "handler fastcgi is accepted but needs a backend");
}

/* user/group: resolved at load; who the children run as depends on the
 * master's uid, so a real file load is tested under both. */
static pt_config *ld_file(const char *text, pt_cli *cli)
{
    static char path[PATH_MAX + 32];
    write_file(tmp, "id.conf", text);
    snprintf(path, sizeof(path), "%s/id.conf", tmp);
    cli->conf_file = path;
    return pt_config_load(cli, err, sizeof(err));
}

static bool has_warning(const pt_config *c, const char *want)
{
    for (size_t i = 0; c && i < c->nwarnings; i++)
        if (strstr(c->warnings[i], want))
            return true;
    return false;
}

static void test_identity(void)
{
    pt_cli cli = cli0();
    pt_config *c;
    bool root = geteuid() == 0;

    c = ld("user = \"nobody\";\n", NULL);
    ok(c && c->creds.uid == 65534 && c->creds.ngroups >= 1, "user nobody resolves");
    ok(c && !c->creds.drop, "a string load never drops");
    pt_config_free(c);
    c = ld("user = \"nobody\"; group = \"daemon\";\n", NULL);
    ok(c && c->creds.gid == 1, "group by name");
    pt_config_free(c);
    c = ld("user = \"65534\"; group = \"4242\";\n", NULL);
    ok(c && c->creds.uid == 65534 && c->creds.gid == 4242, "numeric user and group");
    pt_config_free(c);
    ok(fails_with("user = \"4243\";\n", NULL, "has no entry in the user database: set group"),
       "a numeric user without an entry needs a group");
    ok(fails_with("\nuser = \"no-such-user-x\";\n", NULL,
                  "t.conf:2: unknown user 'no-such-user-x'"),
       "unknown user: file:line");
    ok(fails_with("user = \"nobody\";\ngroup = \"no-such-group-x\";\n", NULL,
                  "t.conf:2: unknown group 'no-such-group-x'"),
       "unknown group: file:line");
    ok(fails_with("group = \"daemon\";\n", NULL, "'group' needs 'user'"), "group alone");
    ok(fails_with("user = 7;\n", NULL, "user"), "user must be a string");

    c = ld_file("workers = 1;\n", &cli);
    if (root)
        ok(!c && strstr(err, "portico runs as root and 'user' is not set"),
           "as root, a file without user is refused (%s)", c ? "loaded" : err);
    else
        ok(c && !c->creds.drop, "not root: a file without user loads");
    pt_config_free(c);
    c = ld_file("user = \"root\";\n", &cli);
    ok(c && !c->creds.drop, "user = root: allowed, nothing dropped");
    pt_config_free(c);
    c = ld_file("user = \"nobody\";\n", &cli);
    if (root)
        ok(c && c->creds.drop && c->creds.uid == 65534, "as root, user nobody: children drop");
    else
        ok(c && !c->creds.drop && has_warning(c, "user 'nobody' is not applied"),
           "not root: user nobody is a warning, nothing dropped");
    pt_config_free(c);
    cli = cli0();
    cli.root = tmp;
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c && (!root || has_warning(c, "running as root without 'user'")),
       "flags only: loads (as root, with a warning)");
    pt_config_free(c);
}

static void test_paths(void)
{
    char text[PATH_MAX * 2], path[PATH_MAX + 32], cwd[PATH_MAX], want[PATH_MAX + 32];
    pt_cli cli = cli0();
    const char *ovs[1];
    pt_config *c;

    write_file(tmp, "sub/rel.conf",
               "root = \"../www\";\naccess_log = \"logs/a.log\";\npid_file = \"p.pid\";\n"
               "@include \"inc.conf\"\n");
    write_file(tmp, "sub/inc.conf", "workers = 3;\nuser = \"root\";\n");
    snprintf(path, sizeof(path), "%s/sub/rel.conf", tmp);
    cli.conf_file = path;
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c != NULL, "relative paths load (%s)", c ? "ok" : err);
    if (c) {
        ok(strcmp(c->vhosts[0].root, www) == 0, "relative root resolves against the file's dir");
        snprintf(want, sizeof(want), "%s/sub/logs/a.log", tmp);
        ok(strcmp(c->access_log, want) == 0, "relative access_log resolves against the file's dir");
        snprintf(want, sizeof(want), "%s/sub/p.pid", tmp);
        ok(strcmp(c->pid_file, want) == 0, "relative pid_file too");
        ok(c->workers == 3, "@include is relative to the file's dir");
    }
    pt_config_free(c);

    /* flags and -o resolve against the current directory */
    ok(getcwd(cwd, sizeof(cwd)) != NULL && chdir(tmp) == 0, "chdir to the scratch dir");
    cli.root = "other";
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c && strcmp(c->vhosts[0].root, other) == 0, "-r resolves against the CWD");
    pt_config_free(c);
    cli.root = NULL;
    ovs[0] = "root=./www/../other/";
    cli.overrides = ovs;
    cli.noverrides = 1;
    c = pt_config_load(&cli, err, sizeof(err));
    ok(c && strcmp(c->vhosts[0].root, other) == 0, "-o root resolves against the CWD, normalised");
    pt_config_free(c);
    ok(chdir(cwd) == 0, "chdir back");

    cli = cli0();
    cli.conf_file = "/nonexistent/portico.conf";
    c = pt_config_load(&cli, err, sizeof(err));
    ok(!c && strcmp(err, "/nonexistent/portico.conf: cannot read: No such file or directory") == 0,
       "unreadable file reported");
    pt_config_free(c);

    ok(fails_with("workers = 1;\nroot = \"nope\";\n", NULL,
                  "t.conf:2: root 'nope': No such file or directory") ||
           strcmp(msg(), "t.conf:2: root 'nope': No such file or directory") == 0,
       "missing root reported with file:line");
    snprintf(text, sizeof(text), "root = \"%s/afile\";", tmp);
    ok(fails_with(text, NULL, "root 'afile': Not a directory"), "root must be a directory");
    ok(fails_with("vhosts = ( { names = [ \"x.test\" ]; root = \"nope2\"; } );", NULL,
                  "root 'nope2': No such file or directory"),
       "missing vhost root reported");
    ok(fails_with("tmp_dir = \"nope3\";", NULL, "tmp_dir 'nope3'"), "missing tmp_dir reported");
    ok(fails_with("index = [ \"a/b.html\" ];", NULL, "invalid index file name"),
       "index names contain no /");

    snprintf(text, sizeof(text), "root = \"%s\";", www);
    c = ld(text, NULL);
    ok(c && pt_config_open_roots(c, err, sizeof(err)) == 0 && c->vhosts[0].root_fd >= 0,
       "pt_config_open_roots opens the roots");
    if (c && c->vhosts[0].root_fd >= 0) {
        struct stat st;
        int fd = c->vhosts[0].root_fd;
        ok(fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && (fcntl(fd, F_GETFD) & FD_CLOEXEC),
           "root fd is a close-on-exec directory fd");
        pt_config_free(c);
        ok(fcntl(fd, F_GETFD) < 0 && errno == EBADF, "pt_config_free closes the root fds");
    } else {
        pt_config_free(c);
    }
    c = ld("", NULL);
    ok(c && c->vhosts[0].root_fd == -1, "root_fd is -1 before opening");
    pt_config_free(c);
}

/* A file in the scratch directory with the given mode. */
static void make_file(const char *name, mode_t mode)
{
    char path[PATH_MAX + 64];
    write_file(tmp, name, "#!/bin/sh\n");
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    if (chmod(path, mode) < 0) {
        perror(path);
        exit(99);
    }
}

static void test_cgi_settings(void)
{
    char text[PATH_MAX * 4], want[PATH_MAX + 64];
    const pt_location *l;
    pt_config *c;

    make_file("perl", 0755);
    snprintf(text, sizeof(text),
             "cgi_interpreters = [ \".py=%s/py\", \".pl=%s/perl\" ];\n"
             "locations = (\n"
             "  { prefix = \"/git\"; handler = \"cgi\"; program = \"prog\";\n"
             "    env = [ \"GIT_PROJECT_ROOT=/srv/git\", \"GIT_HTTP_EXPORT_ALL=\" ];\n"
             "    pass_env = [ \"LANG\", \"TZ\", \"_x9\" ]; pass_authorization = true;\n"
             "    buffering = false; timeout = \"5s\"; rlimit_cpu = 10; rlimit_as = \"512M\";\n"
             "    rlimit_nproc = 20; },\n"
             "  { prefix = \"/cgi-bin/\"; handler = \"cgi\"; dir = \"www\"; },\n"
             "  { extension = \".rb\"; handler = \"cgi\"; interpreters = [ \".rb=%s/perl\" ]; },\n"
             "  { extension = \".cgi\"; handler = \"cgi\"; interpreters = [ ]; },\n"
             "  { prefix = \"/static/\"; }\n"
             ");\n",
             tmp, tmp, tmp);
    c = ld(text, NULL);
    ok(c != NULL, "cgi locations load (%s)", c ? "ok" : err);
    if (!c)
        return;
    l = &c->vhosts[0].locs[0];
    snprintf(want, sizeof(want), "%s/prog", tmp);
    ok(l->handler == PT_H_CGI && l->cgi_program && strcmp(l->cgi_program, want) == 0 && !l->cgi_dir,
       "program is made absolute against the file's directory");
    ok(l->nenv == 2 && strcmp(l->env[0], "GIT_PROJECT_ROOT=/srv/git") == 0 &&
           strcmp(l->env[1], "GIT_HTTP_EXPORT_ALL=") == 0,
       "env entries kept as NAME=VALUE (empty VALUE allowed)");
    ok(l->npass_env == 3 && strcmp(l->pass_env[1], "TZ") == 0 && l->pass_authorization,
       "pass_env names and pass_authorization");
    ok(!l->buffering && l->timeout_ms == 5000, "buffering off, timeout 5s");
    ok(l->rlimit_cpu == 10 && l->rlimit_as == 512ULL << 20 && l->rlimit_nproc == 20,
       "rlimit_cpu in seconds, rlimit_as in bytes, rlimit_nproc");
    ok(l->ninterpreters == 2 && strcmp(l->interpreters[0], ".py") == 0 &&
           strncmp(l->interp_paths[0], tmp, strlen(tmp)) == 0 &&
           strcmp(l->interp_paths[0] + strlen(tmp), "/py") == 0 &&
           strcmp(l->interpreters[1], ".pl") == 0,
       "a cgi location without interpreters inherits cgi_interpreters, split at '='");
    l = &c->vhosts[0].locs[1];
    ok(l->handler == PT_H_CGI && l->cgi_dir && strcmp(l->cgi_dir, www) == 0 && !l->cgi_program,
       "dir is made absolute against the file's directory");
    ok(l->buffering && !l->pass_authorization && l->timeout_ms == 60000 && l->nenv == 0 &&
           l->npass_env == 0 && l->rlimit_cpu == 0 && l->rlimit_as == 0 && l->rlimit_nproc == 0,
       "cgi defaults: buffering on, no Authorization, 60s, no env, no rlimits");
    l = &c->vhosts[0].locs[2];
    ok(l->match == PT_MATCH_EXT && l->ninterpreters == 1 && strcmp(l->interpreters[0], ".rb") == 0,
       "a location's own interpreters replace cgi_interpreters");
    ok(c->vhosts[0].locs[3].ninterpreters == 0, "interpreters = [ ] means none");
    l = &c->vhosts[0].locs[4];
    ok(l->handler == PT_H_STATIC && l->ninterpreters == 0 && !l->cgi_dir && !l->cgi_program &&
           l->buffering && l->timeout_ms == 60000 && !l->pass_authorization && !l->env,
       "static locations: no cgi settings, buffering true, timeout = cgi_timeout");
    ok(c->nwarnings == 2 && strstr(c->warnings[0], "cgi interpreter") &&
           strstr(c->warnings[0], "/py' does not exist") && strstr(c->warnings[1], "cgi program") &&
           strstr(c->warnings[1], "does not exist"),
       "missing interpreter and program are warnings (%zu)", c->nwarnings);
    pt_config_free(c);

    /* limits */
    c = ld("", NULL);
    ok(c && c->limits.cgi_max_procs == 64 && c->limits.cgi_queue == 64 &&
           c->limits.cgi_queue_timeout_ms == 10000 && c->limits.cgi_kill_grace_ms == 5000,
       "default CGI limits: 64 procs, 64 queued, 10s queue, 5s kill grace");
    ok(c && c->limits.gw_header_max == 64 * 1024 && c->limits.gw_buffer_memory == 256 * 1024 &&
           c->limits.gw_buffer_max == 1ULL << 30,
       "default gateway limits: 64k header, 256k memory, 1G buffered");
    ok(c && c->vhosts[0].locs[0].timeout_ms == 60000 && c->nwarnings == 0,
       "implicit / location gets the cgi_timeout default; no warnings");
    pt_config_free(c);
    c = ld("limits: { cgi_timeout = \"90s\"; cgi_max_procs = 1; cgi_queue = 0;"
           " cgi_queue_timeout = \"250ms\"; cgi_kill_grace = 1; gw_header_max = \"1k\";"
           " gw_buffer_memory = 0; gw_buffer_max = \"5G\"; };\n"
           "locations = ( { prefix = \"/c/\"; handler = \"cgi\"; } );",
           NULL);
    ok(c && c->limits.cgi_max_procs == 1 && c->limits.cgi_queue == 0 &&
           c->limits.cgi_queue_timeout_ms == 250 && c->limits.cgi_kill_grace_ms == 1000 &&
           c->limits.gw_header_max == 1024 && c->limits.gw_buffer_memory == 0 &&
           c->limits.gw_buffer_max == 5ULL << 30,
       "CGI limits set (%s)", c ? "ok" : err);
    ok(c && c->vhosts[0].locs[0].timeout_ms == 90000 && c->vhosts[0].locs[1].timeout_ms == 90000,
       "limits.cgi_timeout is every location's default timeout");
    pt_config_free(c);
    ok(fails_with("limits: { cgi_max_procs = 0; };", NULL,
                  "'limits.cgi_max_procs' must be between 1 and 100000"),
       "cgi_max_procs 0 rejected");
    ok(fails_with("limits: { cgi_queue = 100001; };", NULL, "between 0 and 100000"),
       "cgi_queue above 100000 rejected");
    ok(fails_with("limits: { gw_header_max = 512; };", NULL,
                  "'limits.gw_header_max' must be between 1k and 16M"),
       "gw_header_max below 1k rejected");
    ok(fails_with("limits: { gw_header_max = \"17M\"; };", NULL, "between 1k and 16M"),
       "gw_header_max above 16M rejected");
    ok(fails_with("limits: { cgi_kill_grace = \"2h\"; };", NULL, "between 1ms and 3600s"),
       "cgi_kill_grace above 1h rejected");
    ok(fails_with("limits: { cgi_timeout = 0; };", NULL,
                  "'limits.cgi_timeout' must be between 1ms and 1d"),
       "cgi_timeout 0 rejected");

    /* cgi-only keys elsewhere */
    ok(fails_with("workers = 1;\nlocations = ( { prefix = \"/x/\"; handler = \"static\";\n"
                  "  program = \"/bin/true\"; } );",
                  NULL, "only applies") &&
           strcmp(msg(), "t.conf:3: 'program' only applies to handler \"cgi\", \"fastcgi\", "
                         "\"scgi\" or \"uwsgi\"") == 0,
       "program on a static location: file:line error");
    ok(fails_with("locations = ( { prefix = \"/x/\"; env = [ \"A=1\" ]; } );", NULL,
                  "'env' only applies to handler \"cgi\", \"fastcgi\", \"scgi\" or \"uwsgi\""),
       "env on a location with the default handler rejected");
    ok(fails_with(
           "locations = ( { exact = \"/x\"; buffering = false; } );", NULL,
           "'buffering' only applies to handler \"cgi\", \"fastcgi\", \"scgi\", \"uwsgi\" or "
           "\"proxy\""),
       "buffering on a static location rejected");
    ok(fails_with("locations = ( { exact = \"/x\"; x_sendfile = true; } );", NULL,
                  "'x_sendfile' only applies to handler \"cgi\", \"fastcgi\", \"scgi\" or "
                  "\"uwsgi\""),
       "x_sendfile on a static location rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; x_sendfile = true;\n"
                  "  sendfile_dirs = [ \"/nonexistent-pt-dir\" ]; } );",
                  NULL, "sendfile_dirs '/nonexistent-pt-dir': No such file or directory"),
       "a missing sendfile_dirs entry rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; rlimit_nproc = 5; } );", NULL,
                  "'rlimit_nproc' only applies to handler \"cgi\""),
       "rlimit_nproc on a static location rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; dir = \"www\";"
                  " program = \"/bin/sh\"; } );",
                  NULL, "a cgi location takes 'dir' or 'program', not both"),
       "dir and program together rejected");
    ok(fails_with("locations = ( { extension = \".cgi\"; handler = \"cgi\"; dir = \"www\"; } );",
                  NULL, "'dir' only applies to prefix locations"),
       "dir on an extension location rejected");
    ok(fails_with("locations = ( { exact = \"/x\"; handler = \"cgi\"; program = \"/bin/sh\"; } );",
                  NULL, "'program' only applies to prefix locations"),
       "program on an exact location rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; dir = \"\"; } );", NULL,
                  "dir must not be empty"),
       "empty dir rejected");

    /* interpreters, env, pass_env syntax */
    {
        static const char *const bad[] = {"pl=/usr/bin/perl", ".pl=perl", ".pl",         ".=/x",
                                          ".a/b=/x",          ".pl=/",    "=/usr/bin/x", ""};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(text, sizeof(text),
                     "locations = ( { extension = \".pl\"; handler = \"cgi\";"
                     " interpreters = [ \"%s\" ]; } );",
                     bad[i]);
            snprintf(want, sizeof(want), "invalid entry '%s' (expected \".ext=/absolute/", bad[i]);
            ok(fails_with(text, NULL, want), "interpreters entry '%s' rejected", bad[i]);
        }
    }
    ok(fails_with("locations = ( { extension = \".pl\"; handler = \"cgi\";"
                  " interpreters = [ \".pl=/a\", \".pl=/b\" ]; } );",
                  NULL, "extension '.pl' is listed twice"),
       "an extension listed twice in interpreters rejected");
    ok(fails_with("workers = 1;\ncgi_interpreters = [ \".pl=perl\" ];", NULL,
                  "t.conf:2: 'cgi_interpreters': invalid entry '.pl=perl'"),
       "cgi_interpreters checked even without cgi locations");
    {
        static const char *const bad[] = {"1X=a", "NOEQ", "A-B=1", "=x", "A B=1", "\xc3\xa9=1"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(text, sizeof(text),
                     "locations = ( { prefix = \"/x/\"; handler = \"cgi\"; env = [ \"%s\" ]; } );",
                     bad[i]);
            ok(fails_with(text, NULL, "expected \"NAME=VALUE\""), "env entry '%s' rejected",
               bad[i]);
        }
    }
    {
        pt_config *ce = ld("locations = ( { prefix = \"/x/\"; handler = \"cgi\";"
                           " env = [ \"OK=1\", \"DB-PASS=hunter2\", \"hunter3\" ]; } );",
                           NULL);
        ok(!ce && strstr(err, "entry 2: invalid name 'DB-PASS'") && !strstr(err, "hunter2"),
           "an env error names the entry, never its value (%s)", err);
        pt_config_free(ce);
        ce = ld("locations = ( { prefix = \"/x/\"; handler = \"cgi\";"
                " env = [ \"OK=1\", \"hunter3\" ]; } );",
                NULL);
        ok(!ce && strstr(err, "entry 2 has no '='") && !strstr(err, "hunter3"),
           "an entry without '=' is not echoed either (%s)", err);
        pt_config_free(ce);
    }
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\";"
                  " env = [ \"A=1\", \"B=2\", \"A=3\" ]; } );",
                  NULL, "'A' is set twice"),
       "env setting a name twice rejected");
    c = ld("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; env = [ \"A=1\", \"AB=2\","
           " \"X=a=b\" ]; } );",
           NULL);
    ok(c && c->vhosts[0].locs[0].nenv == 3 && strcmp(c->vhosts[0].locs[0].env[2], "X=a=b") == 0,
       "env: A and AB are different names; VALUE may contain '='");
    pt_config_free(c);
    {
        static const char *const bad[] = {"A=B", "", "9A", "A-B"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(text, sizeof(text),
                     "locations = ( { prefix = \"/x/\"; handler = \"cgi\";"
                     " pass_env = [ \"%s\" ]; } );",
                     bad[i]);
            snprintf(want, sizeof(want), "invalid name '%s'", bad[i]);
            ok(fails_with(text, NULL, want), "pass_env name '%s' rejected", bad[i]);
        }
    }

    /* resource limits */
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; rlimit_cpu = \"1500ms\";"
                  " } );",
                  NULL, "'rlimit_cpu' must be a whole number of seconds"),
       "rlimit_cpu in whole seconds");
    c = ld("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; rlimit_cpu = \"2m\";"
           " rlimit_as = 0; rlimit_nproc = 0; timeout = \"1h\"; } );",
           NULL);
    ok(c && c->vhosts[0].locs[0].rlimit_cpu == 120 && c->vhosts[0].locs[0].rlimit_as == 0 &&
           c->vhosts[0].locs[0].timeout_ms == 3600000,
       "rlimit_cpu \"2m\" is 120 s; 0 means no limit; timeout 1h");
    pt_config_free(c);
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; rlimit_as = \"512k\"; } );",
                  NULL, "'rlimit_as' must be 0 (no limit) or at least 1M"),
       "rlimit_as below 1M rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; rlimit_nproc = -1; } );",
                  NULL, "must be between 0 and 1000000"),
       "negative rlimit_nproc rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; timeout = 0; } );", NULL,
                  "'locations.[0].timeout' must be between 1ms and 1d"),
       "timeout 0 rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; timeout = \"soon\"; } );",
                  NULL, "invalid duration 'soon'"),
       "timeout syntax checked");

    /* existence: wrong kinds are errors, missing ones warnings */
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; dir = \"afile\"; } );",
                  NULL, "dir 'afile': Not a directory"),
       "dir that is a file rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; program = \"www\"; } );",
                  NULL, "program 'www': Is a directory"),
       "program that is a directory rejected");
    ok(fails_with("locations = ( { prefix = \"/x/\"; handler = \"cgi\";"
                  " program = \"/dev/null\"; } );",
                  NULL, "program '/dev/null': not a regular file"),
       "program that is a device rejected");
    c = ld("workers = 1;\nlocations = ( { prefix = \"/x/\"; handler = \"cgi\"; dir = \"nodir\";"
           " } );\nvhosts = ( { names = [ \"a.test\" ]; } );",
           NULL);
    ok(c && c->nvhosts == 2 && c->vhosts[0].locs[0].cgi_dir && c->vhosts[1].locs[0].cgi_dir &&
           c->nwarnings == 1,
       "missing dir loads with one warning though two vhosts use the location");
    snprintf(want, sizeof(want), "%s/t.conf:2: warning: cgi dir '%s/nodir' does not exist", tmp,
             tmp);
    ok(c && c->nwarnings == 1 && strcmp(c->warnings[0], want) == 0,
       "warning text: file:line: warning: cgi dir '...' does not exist");
    pt_config_free(c);
    make_file("noexec", 0644);
    make_file("prog", 0755);
    c = ld("locations = ( { prefix = \"/x/\"; handler = \"cgi\"; program = \"noexec\"; },\n"
           "  { prefix = \"/y/\"; handler = \"cgi\"; program = \"prog\"; } );",
           NULL);
    ok(c && c->nwarnings == 1 && strstr(c->warnings[0], "t.conf:1: warning: cgi program '") &&
           strstr(c->warnings[0], "/noexec' is not executable"),
       "a program without the executable bit is a warning");
    pt_config_free(c);
}

static void test_cgi_overrides(void)
{
    pt_cli cli = cli0();
    const char *ovs[6];
    pt_config *c;
    cli.overrides = ovs;
    ovs[0] = "limits.cgi_max_procs=2";
    ovs[1] = "cgi_interpreters=.pl=/usr/bin/perl,.py=/usr/bin/python3";
    ovs[2] = "locations.[0].env=A=1,B=x=y";
    ovs[3] = "locations.[0].timeout=2s";
    ovs[4] = "locations.[0].buffering=off";
    ovs[5] = "limits.cgi_timeout=7s";
    cli.noverrides = 6;
    c = ld("locations = ( { prefix = \"/c/\"; handler = \"cgi\"; } );", &cli);
    ok(c != NULL, "-o on CGI settings (%s)", c ? "ok" : err);
    if (c) {
        const pt_location *l = &c->vhosts[0].locs[0];
        ok(c->limits.cgi_max_procs == 2, "-o limits.cgi_max_procs=2");
        ok(l->ninterpreters == 2 && strcmp(l->interpreters[1], ".py") == 0 &&
               strcmp(l->interp_paths[1], "/usr/bin/python3") == 0 &&
               strcmp(l->interp_paths[0], "/usr/bin/perl") == 0,
           "-o cgi_interpreters=.pl=...,.py=... (split on commas, then the first '=')");
        ok(l->nenv == 2 && strcmp(l->env[0], "A=1") == 0 && strcmp(l->env[1], "B=x=y") == 0,
           "-o locations.[0].env=A=1,B=x=y");
        ok(l->timeout_ms == 2000 && !l->buffering && c->vhosts[0].locs[1].timeout_ms == 7000,
           "-o location timeout and buffering; -o limits.cgi_timeout for the others");
    }
    pt_config_free(c);
    ovs[0] = "locations.[0].rlimit_as=5k";
    cli.noverrides = 1;
    ok(fails_with("locations = ( { prefix = \"/c/\"; handler = \"cgi\"; } );", &cli,
                  "-o locations.[0].rlimit_as: 'rlimit_as' must be 0 (no limit) or at least 1M"),
       "-o rlimit_as error blamed on -o");
    ovs[0] = "locations.[0].program=/bin/sh";
    ok(fails_with("locations = ( { prefix = \"/s/\"; } );", &cli,
                  "-o locations.[0].program: 'program' only applies to handler \"cgi\", "
                  "\"fastcgi\", \"scgi\" or \"uwsgi\""),
       "-o program on a static location blamed on -o");
    ovs[0] = "locations.[0].pass_authorization=yes";
    c = ld("locations = ( { prefix = \"/c/\"; handler = \"cgi\"; } );", &cli);
    ok(c && c->vhosts[0].locs[0].pass_authorization, "-o pass_authorization=yes");
    pt_config_free(c);
    ovs[0] = "cgi_interpreters=.pl=perl";
    ok(fails_with("", &cli, "-o cgi_interpreters: 'cgi_interpreters': invalid entry '.pl=perl'"),
       "-o cgi_interpreters checked");
}

static void test_gateways(void)
{
    pt_cli cli = cli0();
    const char *a[3], *ovs[1];
    char arg[3][PATH_MAX + 32], want[PATH_MAX + 64], cwd[PATH_MAX];
    const pt_vhost *v;
    pt_config *c;

    make_file("prog", 0755);
    make_file("perl", 0755);
    cli.cgi = a;
    /* PATH a directory: dir; a regular file: program */
    snprintf(arg[0], sizeof(arg[0]), "/cgi-bin/=%s", www);
    snprintf(arg[1], sizeof(arg[1]), "/git=%s/prog", tmp);
    a[0] = arg[0];
    a[1] = arg[1];
    cli.ncgi = 2;
    c = ld("", &cli);
    ok(c != NULL, "--cgi directory and program (%s)", c ? "ok" : err);
    if (c) {
        v = &c->vhosts[0];
        ok(v->nlocs == 3 && v->locs[0].match == PT_MATCH_PREFIX && v->locs[0].handler == PT_H_CGI &&
               strcmp(v->locs[0].pattern, "/cgi-bin/") == 0 && v->locs[0].cgi_dir &&
               strcmp(v->locs[0].cgi_dir, www) == 0 && !v->locs[0].cgi_program,
           "--cgi PREFIX=DIRECTORY: a prefix location with dir");
        snprintf(want, sizeof(want), "%s/prog", tmp);
        ok(v->locs[1].handler == PT_H_CGI && strcmp(v->locs[1].pattern, "/git") == 0 &&
               v->locs[1].cgi_program && strcmp(v->locs[1].cgi_program, want) == 0 &&
               !v->locs[1].cgi_dir,
           "--cgi PREFIX=PROGRAM: a prefix location with program");
        ok(strcmp(v->locs[2].pattern, "/") == 0 && v->locs[2].handler == PT_H_STATIC,
           "flag locations come before the implicit /");
        ok(strcmp(loc(v, "/git/info/refs"), "/git") == 0 &&
               strcmp(loc(v, "/cgi-bin/x.cgi"), "/cgi-bin/") == 0,
           "flag locations are matched");
        ok(c->ncgi_routes == 2 && strcmp(c->cgi_routes[1], arg[1]) == 0,
           "cgi_routes keeps the flags as given");
        ok(v->locs[0].buffering && v->locs[0].timeout_ms == 60000 && c->nwarnings == 0,
           "flag locations get the cgi defaults, no warnings");
    }
    pt_config_free(c);

    /* with a file: appended after its locations, in order; vhosts inherit */
    c = ld("locations = ( { prefix = \"/files/\"; } );\n"
           "vhosts = ( { names = [ \"a.test\" ]; },\n"
           "  { names = [ \"b.test\" ]; locations = ( { prefix = \"/b/\"; } ); } );",
           &cli);
    ok(c && c->nvhosts == 3 && c->vhosts[0].nlocs == 4 &&
           strcmp(c->vhosts[0].locs[0].pattern, "/files/") == 0 &&
           strcmp(c->vhosts[0].locs[1].pattern, "/cgi-bin/") == 0 &&
           strcmp(c->vhosts[0].locs[2].pattern, "/git") == 0 &&
           strcmp(c->vhosts[0].locs[3].pattern, "/") == 0,
       "--cgi appends to the file's top-level locations, in order");
    ok(c && c->vhosts[2].nlocs == 4 && c->vhosts[2].locs[2].handler == PT_H_CGI &&
           c->vhosts[1].nlocs == 2 && c->vhosts[1].locs[0].handler == PT_H_STATIC,
       "vhosts without locations (and the implicit default) get them; others do not");
    pt_config_free(c);
    c = ld("locations = [ ];", &cli);
    ok(c && c->vhosts[0].nlocs == 3, "--cgi with an empty 'locations = [ ];'");
    pt_config_free(c);

    /* -o applies after --cgi and can reach its locations */
    ovs[0] = "locations.[0].timeout=3s";
    cli.overrides = ovs;
    cli.noverrides = 1;
    c = ld("", &cli);
    ok(c && c->vhosts[0].locs[0].timeout_ms == 3000, "-o reaches a --cgi location");
    pt_config_free(c);
    cli.noverrides = 0;

    /* extensions: an interpreter, or the script itself */
    snprintf(arg[0], sizeof(arg[0]), ".pl=%s/perl", tmp);
    a[1] = ".cgi=";
    c = ld("cgi_interpreters = [ \".cgi=/bin/sh\" ];", &cli);
    ok(c != NULL, "--cgi extensions (%s)", c ? "ok" : err);
    if (c) {
        v = &c->vhosts[0];
        snprintf(want, sizeof(want), "%s/perl", tmp);
        ok(v->nlocs == 3 && v->locs[0].match == PT_MATCH_EXT &&
               strcmp(v->locs[0].pattern, ".pl") == 0 && v->locs[0].handler == PT_H_CGI &&
               v->locs[0].ninterpreters == 1 && strcmp(v->locs[0].interpreters[0], ".pl") == 0 &&
               strcmp(v->locs[0].interp_paths[0], want) == 0,
           "--cgi .pl=INTERPRETER: an extension location with that interpreter");
        ok(v->locs[1].match == PT_MATCH_EXT && strcmp(v->locs[1].pattern, ".cgi") == 0 &&
               v->locs[1].ninterpreters == 0 && !v->locs[1].cgi_dir,
           "--cgi .cgi= runs the file itself, ignoring cgi_interpreters");
        ok(strcmp(loc(v, "/a/b.pl"), ".pl") == 0, "--cgi extension is matched");
    }
    pt_config_free(c);

    /* relative PATHs resolve against the CWD; no config file at all */
    ok(getcwd(cwd, sizeof(cwd)) != NULL && chdir(tmp) == 0, "chdir to the scratch dir");
    a[0] = "/x/=www/../www/";
    a[1] = ".pl=./perl";
    cli.conf_file = NULL;
    cli.root = ".";
    c = pt_config_load(&cli, err, sizeof(err));
    snprintf(want, sizeof(want), "%s/perl", tmp);
    ok(c && c->vhosts[0].locs[0].cgi_dir && strcmp(c->vhosts[0].locs[0].cgi_dir, www) == 0 &&
           strcmp(c->vhosts[0].locs[1].interp_paths[0], want) == 0,
       "relative --cgi paths are made absolute against the CWD (%s)", c ? "ok" : err);
    pt_config_free(c);
    ok(chdir(cwd) == 0, "chdir back");
    cli.root = NULL;

    /* errors */
    cli.ncgi = 1;
    a[0] = "/x=/nope";
    c = ld("", &cli);
    ok(!c && strcmp(err, "--cgi /x=/nope: No such file or directory") == 0,
       "--cgi with a missing PATH: '--cgi /x=/nope: No such file or directory'");
    pt_config_free(c);
    a[0] = ".pl=/nope/perl";
    ok(fails_with("", &cli, "--cgi .pl=/nope/perl: No such file or directory"),
       "--cgi with a missing interpreter");
    snprintf(arg[0], sizeof(arg[0]), "/x=%s/afile", tmp);
    a[0] = arg[0];
    ok(fails_with("", &cli, "afile' is not executable"), "--cgi program must be executable");
    a[0] = "/x=/dev/null";
    ok(fails_with("", &cli, "--cgi /x=/dev/null: not a directory or a regular file"),
       "--cgi PATH must be a directory or a regular file");
    snprintf(arg[0], sizeof(arg[0]), ".pl=%s", www);
    a[0] = arg[0];
    ok(fails_with("", &cli, "the interpreter is not a regular file"),
       "--cgi interpreter must be a file");
    snprintf(arg[0], sizeof(arg[0]), ".a/b=%s/perl", tmp);
    ok(fails_with("", &cli, "must start with '.' and contain no '/'") &&
           strncmp(err, "--cgi .a/b=", 11) == 0,
       "--cgi extension rules, blamed on the flag");
    {
        static const char *const bad[] = {"cgi-bin", "/x=", "x=/tmp", "=/tmp"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            a[0] = bad[i];
            snprintf(want, sizeof(want), "--cgi: '%s': expected PREFIX=PATH", bad[i]);
            ok(fails_with("", &cli, want), "--cgi syntax: '%s' rejected", bad[i]);
        }
    }
    snprintf(arg[0], sizeof(arg[0]), "/cgi-bin/=%s", www);
    a[0] = arg[0];
    a[1] = arg[0];
    ok(fails_with("workers = 1;\nlocations = ( { prefix = \"/cgi-bin/\"; } );", &cli,
                  "duplicate") &&
           strncmp(msg(), "--cgi /cgi-bin/=", 16) == 0 &&
           strstr(msg(), ": duplicate location prefix '/cgi-bin/' (first at line 2)"),
       "--cgi duplicating a file's location is an error naming the flag");
    cli.ncgi = 2;
    ok(fails_with("", &cli, "duplicate location prefix '/cgi-bin/' (given twice)"),
       "the same --cgi prefix twice is an error");

    cli.ncgi = 1;
    cli.fastcgi = a + 1;
    cli.nfastcgi = 1;
    a[1] = "/cgi-bin/=127.0.0.1:9000";
    ok(fails_with("", &cli,
                  "--fastcgi /cgi-bin/=127.0.0.1:9000: duplicate location prefix "
                  "'/cgi-bin/' (given twice)"),
       "--cgi and --fastcgi on the same prefix is an error naming the --fastcgi flag");
}

static void test_backends(void)
{
    const pt_backend *b;
    pt_config *c;
    c = ld(
        "backends = (\n"
        "  { name = \"php\";\n"
        "    servers = ( \"unix:/run/php/php8.2-fpm.sock\",\n"
        "      { address = \"127.0.0.1:9000\"; weight = 2; max_conns = 8; backup = false; },\n"
        "      { address = \"[::1]:9001\"; backup = true; },\n"
        "      \"/run/other.sock\" );\n"
        "    balance = \"least_conn\"; connect_timeout = \"2s\"; send_timeout = 30;\n"
        "    read_timeout = \"90s\"; keepalive = false; keepalive_max = 0;\n"
        "    keepalive_timeout = \"5m\"; max_fails = 0; fail_timeout = \"1m\"; queue = 0;\n"
        "    queue_timeout = \"500ms\"; get_values = true; },\n"
        "  { name = \"app-1.x_Y\"; servers = [ \"127.0.0.1:9002\", \"[2001:db8::7]:65535\" ]; },\n"
        "  { name = \"one\"; servers = \"10.0.0.1:1\"; }\n"
        ");\n"
        "locations = ( { extension = \".php\"; handler = \"fastcgi\"; backend = \"php\"; },\n"
        "  { prefix = \"/app/\"; handler = \"fastcgi\"; backend = \"app-1.x_Y\"; },\n"
        "  { exact = \"/status\"; handler = \"fastcgi\"; backend = \"one\"; } );\n",
        NULL);
    ok(c != NULL, "backends load (%s)", c ? "ok" : err);
    if (!c)
        return;
    ok(c->nbackends == 3 && strcmp(c->backends[0].name, "php") == 0 &&
           strcmp(c->backends[1].name, "app-1.x_Y") == 0 && c->backends[0].line == 2 &&
           c->backends[1].line == 11,
       "backends in file order, with names and lines");
    b = &c->backends[0];
    ok(b->nservers == 4, "four servers");
    ok(b->nservers == 4 && is_unix(&b->servers[0], "/run/php/php8.2-fpm.sock") &&
           strcmp(b->servers[0].address, "unix:/run/php/php8.2-fpm.sock") == 0,
       "unix:/path: an AF_UNIX sockaddr_un of the exact length, address as written");
    ok(b->nservers == 4 && b->servers[0].weight == 1 && b->servers[0].max_conns == 0 &&
           !b->servers[0].backup,
       "a string server: weight 1, no cap, not a backup");
    ok(b->nservers == 4 && is_inet(&b->servers[1], "127.0.0.1", 9000) &&
           b->servers[1].weight == 2 && b->servers[1].max_conns == 8 && !b->servers[1].backup,
       "a server group: IPv4 sockaddr_in, weight 2, max_conns 8");
    ok(b->nservers == 4 && is_inet6(&b->servers[2], "::1", 9001) && b->servers[2].backup &&
           b->servers[2].weight == 1 && strcmp(b->servers[2].address, "[::1]:9001") == 0,
       "[IPv6]:PORT: sockaddr_in6; backup = true");
    ok(b->nservers == 4 && is_unix(&b->servers[3], "/run/other.sock") &&
           strcmp(b->servers[3].address, "/run/other.sock") == 0,
       "a bare /path is a Unix socket too");
    ok(b->balance == PT_BAL_LEAST_CONN && b->connect_timeout_ms == 2000 &&
           b->send_timeout_ms == 30000 && b->read_timeout_ms == 90000,
       "balance least_conn; timeouts as strings or seconds");
    ok(!b->keepalive && b->keepalive_max == 0 && b->keepalive_timeout_ms == 300000 &&
           b->max_fails == 0 && b->fail_timeout_ms == 60000 && b->queue == 0 &&
           b->queue_timeout_ms == 500 && b->get_values && !b->spawn,
       "keepalive, max_fails, queue and get_values settings");
    b = &c->backends[1];
    ok(b->nservers == 2 && is_inet(&b->servers[0], "127.0.0.1", 9002) &&
           is_inet6(&b->servers[1], "2001:db8::7", 65535),
       "servers as an array of strings");
    ok(b->balance == PT_BAL_ROUND_ROBIN && b->connect_timeout_ms == 5000 &&
           b->send_timeout_ms == 60000 && b->read_timeout_ms == 60000 && b->keepalive &&
           b->keepalive_max == 16 && b->keepalive_timeout_ms == 60000 && b->max_fails == 1 &&
           b->fail_timeout_ms == 10000 && b->queue == 64 && b->queue_timeout_ms == 10000 &&
           !b->get_values && !b->spawn,
       "backend defaults: round_robin, 5s/60s/60s, keepalive 16 for 60s, 1 fail in 10s, "
       "queue 64 for 10s");
    b = &c->backends[2];
    ok(b->nservers == 1 && is_inet(&b->servers[0], "10.0.0.1", 1), "servers as one string");
    ok(c->vhosts[0].nlocs == 4 && c->vhosts[0].locs[0].backend == &c->backends[0] &&
           c->vhosts[0].locs[1].backend == &c->backends[1] &&
           c->vhosts[0].locs[2].backend == &c->backends[2] && !c->vhosts[0].locs[3].backend,
       "locations point at their backends in c->backends");
    ok(c->vhosts[0].locs[2].match == PT_MATCH_EXACT && c->vhosts[0].locs[2].handler == PT_H_FASTCGI,
       "an exact location may use handler fastcgi");
    ok(c->nwarnings == 0, "no warnings");
    pt_config_free(c);

    /* 107 bytes fit in sun_path with the NUL */
    {
        char text[512], path[120];
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[107] = '\0';
        snprintf(text, sizeof(text),
                 "backends = ( { name = \"p\"; servers = [ \"unix:%s\" ]; } );\n"
                 "locations = ( { prefix = \"/\"; handler = \"fastcgi\"; backend = \"p\"; } );",
                 path);
        c = ld(text, NULL);
        ok(c && is_unix(&c->backends[0].servers[0], path),
           "a 107-byte Unix socket path is accepted");
        pt_config_free(c);
        path[107] = 'a';
        path[108] = '\0';
        snprintf(text, sizeof(text),
                 "backends = ( { name = \"p\";\n servers = [ \"unix:%s\" ]; } );\n", path);
        ok(fails_with(text, NULL, "t.conf:2: server 'unix:/aaa") &&
               strstr(msg(), "': Unix socket path too long (108 bytes, at most 107)"),
           "a 108-byte Unix socket path is an error");
    }

    /* used by a vhost's own locations; several vhosts share one backend */
    c = ld("backends = ( { name = \"a\"; servers = [ \"127.0.0.1:1\" ]; },\n"
           "  { name = \"b\"; servers = [ \"127.0.0.1:2\" ]; } );\n"
           "locations = ( { extension = \".php\"; handler = \"fastcgi\"; backend = \"b\"; } );\n"
           "vhosts = ( { names = [ \"x.test\" ]; locations = ( { prefix = \"/\";"
           " handler = \"fastcgi\"; backend = \"a\"; } ); },\n"
           "  { names = [ \"y.test\" ]; } );",
           NULL);
    ok(c && c->nvhosts == 3 && c->vhosts[0].locs[0].backend == &c->backends[0] &&
           c->vhosts[1].locs[0].backend == &c->backends[1] &&
           c->vhosts[2].locs[0].backend == &c->backends[1] && c->nwarnings == 0,
       "vhost locations name top-level backends; one backend serves several vhosts (%s)",
       c ? "ok" : err);
    pt_config_free(c);

    /* an unused backend is only a warning */
    c = ld("workers = 1;\nbackends = ( { name = \"spare\"; servers = [ \"127.0.0.1:9\" ]; } );",
           NULL);
    ok(c && c->nwarnings == 1 &&
           strcmp(c->warnings[0] + strlen(tmp) + 1,
                  "t.conf:2: warning: backend 'spare' is not used by any location") == 0,
       "a backend no location uses: 't.conf:2: warning: backend 'spare' is not used by any "
       "location'");
    pt_config_free(c);
    c = ld("backends = [ ];", NULL);
    ok(c && c->nbackends == 0 && !c->backends, "backends = [ ] is no backends");
    pt_config_free(c);
}

static void test_backend_errors(void)
{
    static const struct {
        const char *servers, *want;
    } bad_addr[] = {
        {"\"localhost:9000\"",
         "server 'localhost:9000': not a numeric IPv4 address (no DNS "
         "lookups: use e.g. 127.0.0.1:9000, [::1]:9000 or unix:/run/app.sock)"},
        {"\"9000\"", "server '9000': expected unix:/path, /path, IPv4:PORT or [IPv6]:PORT"},
        {"\"unix:run/php.sock\"", "server 'unix:run/php.sock': expected unix:/absolute/path"},
        {"\"unix:\"", "server 'unix:': expected unix:/absolute/path"},
        {"\"127.0.0.1:0\"", "server '127.0.0.1:0': port must be a number from 1 to 65535"},
        {"\"127.0.0.1:http\"", "server '127.0.0.1:http': port must be a number from 1 to 65535"},
        {"\"::1:9000\"", "server '::1:9000': IPv6 addresses need brackets"},
        {"\"[::1]9000\"", "server '[::1]9000': expected [IPv6]:PORT"},
        {"\"[zz::q]:9000\"", "server '[zz::q]:9000': not a numeric IPv6 address"},
        {"\"*:9000\"", "server '*:9000': not a numeric IPv4 address"},
        {"( { address = \"1.2.3.4\"; } )", "server '1.2.3.4': expected unix:/path"},
    };
    char text[1024], want[512];
    for (size_t i = 0; i < PT_ARRAY_LEN(bad_addr); i++) {
        snprintf(text, sizeof(text),
                 "workers = 1;\nbackends = ( { name = \"p\";\n servers = %s; } );",
                 bad_addr[i].servers);
        snprintf(want, sizeof(want), "t.conf:3: %s", bad_addr[i].want);
        ok(fails_with(text, NULL, want), "server address %s rejected with file:line",
           bad_addr[i].servers);
    }
#define B(body) "workers = 1;\nbackends = ( { name = \"p\";\n" body " } );"
#define S "servers = [ \"127.0.0.1:9000\" ]; "
    /* schema */
    ok(fails_with(B(S "wieght = 2;"), NULL, "t.conf:3: unknown setting 'backends.[0].wieght'"),
       "unknown backend key reported with file:line");
    ok(fails_with(B("servers = ( { address = \"127.0.0.1:1\"; wieght = 2; } );"), NULL,
                  "t.conf:3: unknown setting 'backends.[0].servers.[0].wieght'"),
       "unknown server key reported");
    ok(fails_with(B("spawn = { program = \"/bin/sh\"; procs = 2; };"), NULL,
                  "unknown setting 'backends.[0].spawn.procs'"),
       "unknown spawn key reported");
    ok(fails_with(B("servers = 5;"), NULL,
                  "t.conf:3: 'backends.[0].servers' must be an array of addresses [ \"...\", ... ]"
                  " or a list ( \"...\", { address = ...; } )"),
       "servers of the wrong type");
    ok(fails_with(B("servers = ( \"127.0.0.1:1\", 5 );"), NULL,
                  "'backends.[0].servers.[1]' must be an address or a group { address = ...; }"),
       "a server that is neither a string nor a group");
    ok(fails_with(B("servers = ( { address = 5; } );"), NULL,
                  "'backends.[0].servers.[0].address' must be a string"),
       "address must be a string");
    ok(fails_with("backends = { name = \"p\"; };", NULL, "'backends' must be a list"),
       "backends must be a list");
    ok(fails_with("backends = ( \"p\" );", NULL, "'backends.[0]' must be a group"),
       "backends elements must be groups");
    ok(fails_with(B(S "keepalive = 1;"), NULL, "'backends.[0].keepalive' must be true or false"),
       "keepalive is a boolean");
    ok(fails_with(B(S "spawn = \"x\";"), NULL, "'backends.[0].spawn' must be a group"),
       "spawn is a group");
    /* names */
    ok(fails_with("workers = 1;\nbackends = ( { servers = [ \"127.0.0.1:1\" ]; } );", NULL,
                  "t.conf:2: a backend needs a name"),
       "a backend needs a name");
    {
        static const char *const bad[] = {"p h", "", "/app/", "a:b", "\xc3\xa9"};
        for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
            snprintf(text, sizeof(text), "backends = ( { name = \"%s\"; " S "} );", bad[i]);
            snprintf(want, sizeof(want),
                     "t.conf:1: backend name '%s': use letters, digits, '_', '.' and '-' (at "
                     "least one)",
                     bad[i]);
            ok(fails_with(text, NULL, want), "backend name '%s' rejected", bad[i]);
        }
    }
    ok(fails_with("backends = (\n { name = \"p\"; " S "},\n { name = \"p\"; " S "} );", NULL,
                  "t.conf:3: duplicate backend 'p' (first at line 2)"),
       "duplicate backend names rejected");
    /* servers */
    ok(fails_with(B(""), NULL, "t.conf:2: backend 'p' needs servers (or spawn)"),
       "a backend without servers or spawn");
    ok(fails_with(B("servers = [ ];"), NULL, "t.conf:3: a backend needs at least one server"),
       "empty servers array");
    ok(fails_with(B("servers = ( );"), NULL, "a backend needs at least one server"),
       "empty servers list");
    ok(fails_with(B("servers = ( { address = \"127.0.0.1:1\"; backup = true; },\n"
                    " { address = \"127.0.0.1:2\"; backup = true; } );"),
                  NULL, "t.conf:3: a backend needs at least one server that is not a backup"),
       "only backup servers rejected");
    ok(fails_with(B("servers = ( { weight = 2; } );"), NULL, "t.conf:3: a server needs an address"),
       "a server group needs an address");
    ok(fails_with(B("servers = [ \"unix:/run/a.sock\", \"/run/a.sock\" ];"), NULL,
                  "server '/run/a.sock': duplicate of 'unix:/run/a.sock'"),
       "the same Unix socket twice rejected");
    ok(fails_with(B("servers = ( \"127.0.0.1:9000\", { address = \"127.0.0.1:9000\"; } );"), NULL,
                  "server '127.0.0.1:9000': duplicate of '127.0.0.1:9000'"),
       "the same TCP server twice rejected");
    ok(fails_with(B(S "spawn = { program = \"/bin/sh\"; };"), NULL,
                  "t.conf:3: a backend takes 'servers' or 'spawn', not both"),
       "servers and spawn together rejected");
    /* ranges */
    {
        static const struct {
            const char *body, *want;
        } bad[] = {
            {"servers = ( { address = \"127.0.0.1:1\"; weight = 0; } );",
             "'backends.[0].servers.[0].weight' must be between 1 and 1000"},
            {"servers = ( { address = \"127.0.0.1:1\"; weight = 1001; } );", "between 1 and 1000"},
            {"servers = ( { address = \"127.0.0.1:1\"; max_conns = -1; } );",
             "'backends.[0].servers.[0].max_conns' must be between 0 and 100000"},
            {"servers = ( { address = \"127.0.0.1:1\"; max_conns = 100001; } );",
             "between 0 and 100000"},
            {S "balance = \"random\";", "balance 'random': must be round_robin or least_conn"},
            {S "connect_timeout = \"soon\";", "'backends.[0].connect_timeout': invalid duration"},
            {S "connect_timeout = 0;", "'backends.[0].connect_timeout' must be between 1ms and 1d"},
            {S "send_timeout = \"2d\";", "'backends.[0].send_timeout' must be between 1ms and 1d"},
            {S "read_timeout = -1;", "'backends.[0].read_timeout': a duration cannot be negative"},
            {S "keepalive_max = 10001;",
             "'backends.[0].keepalive_max' must be between 0 and 10000"},
            {S "keepalive_max = -1;", "between 0 and 10000"},
            {S "keepalive_timeout = \"0s\";", "'backends.[0].keepalive_timeout' must be between"},
            {S "max_fails = 1001;", "'backends.[0].max_fails' must be between 0 and 1000"},
            {S "fail_timeout = 0;", "'backends.[0].fail_timeout' must be between 1ms and 1d"},
            {S "queue = 100001;", "'backends.[0].queue' must be between 0 and 100000"},
            {S "queue_timeout = \"1x\";", "'backends.[0].queue_timeout': invalid duration '1x'"},
        };
        for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
            snprintf(text, sizeof(text), "workers = 1;\nbackends = ( { name = \"p\";\n %s } );",
                     bad[i].body);
            ok(fails_with(text, NULL, bad[i].want) && strncmp(msg(), "t.conf:3: ", 10) == 0,
               "backend range/syntax: %s", bad[i].want);
        }
    }
}
#undef B
#undef S

static void test_spawn(void)
{
    char text[2048], want[PATH_MAX + 64], first[PATH_MAX + 64], name[100];
    const pt_fcgi_spawn *sp;
    pt_config *c;

    make_file("app", 0755);
    make_file("noexec", 0644);
    unsetenv("RUNTIME_DIRECTORY"); /* tmp_dir below, not systemd's directory */
    c = ld(
        "tmp_dir = \"other\";\n"
        "backends = ( { name = \"hello\";\n"
        "  spawn = { program = \"app\"; args = [ \"-x\", \"y z\" ]; env = [ \"APP_ENV=prod\" ];\n"
        "    processes = 2; }; },\n"
        "  { name = \"given\"; spawn = { program = \"./sub/../app\"; socket = \"run/g.sock\"; };"
        " read_timeout = \"5s\"; } );\n"
        "locations = ( { prefix = \"/hello\"; handler = \"fastcgi\"; backend = \"hello\"; },\n"
        "  { prefix = \"/g/\"; handler = \"fastcgi\"; backend = \"given\"; } );",
        NULL);
    ok(c != NULL, "spawn backends load (%s)", c ? "ok" : err);
    if (!c)
        return;
    sp = c->backends[0].spawn;
    snprintf(want, sizeof(want), "%s/app", tmp);
    ok(sp && strcmp(sp->program, want) == 0,
       "spawn.program is made absolute against the file's directory");
    ok(sp && sp->nargs == 2 && strcmp(sp->args[0], "-x") == 0 && strcmp(sp->args[1], "y z") == 0 &&
           sp->nenv == 1 && strcmp(sp->env[0], "APP_ENV=prod") == 0 && sp->processes == 2,
       "spawn args, env and processes");
    /* <tmp_dir>/portico-<pid>-<16 hex>/<name>.sock: a private directory
     * the master creates with mkdir, its name not guessable */
    snprintf(want, sizeof(want), "%s/portico-%ld-", other, (long)getpid());
    size_t pre = strlen(want);
    ok(sp && sp->socket_auto && strncmp(sp->socket, want, pre) == 0 &&
           strlen(sp->socket) == pre + 16 + strlen("/hello.sock") &&
           strspn(sp->socket + pre, "0123456789abcdef") == 16 &&
           strcmp(sp->socket + pre + 16, "/hello.sock") == 0,
       "default socket: <tmp_dir>/portico-<pid>-<random>/<name>.sock, socket_auto (%s)",
       sp ? sp->socket : "");
    snprintf(first, sizeof(first), "%s", sp ? sp->socket : "");
    ok(sp && c->backends[0].nservers == 1 && is_unix(&c->backends[0].servers[0], first) &&
           strncmp(c->backends[0].servers[0].address, "unix:", 5) == 0 &&
           strcmp(c->backends[0].servers[0].address + 5, first) == 0 &&
           c->backends[0].servers[0].weight == 1 && c->backends[0].servers[0].max_conns == 2 &&
           !c->backends[0].servers[0].backup,
       "the spawn socket is the backend's one server (\"unix:<socket>\"), max_conns = processes");
    sp = c->backends[1].spawn;
    snprintf(want, sizeof(want), "%s/run/g.sock", tmp);
    ok(sp && strcmp(sp->socket, want) == 0 && !sp->socket_auto &&
           is_unix(&c->backends[1].servers[0], want),
       "a given socket is resolved against the file's directory, not auto");
    ok(sp && sp->processes == 1 && sp->nargs == 0 && sp->nenv == 0 &&
           c->backends[1].read_timeout_ms == 5000 && c->backends[1].keepalive,
       "spawn defaults: 1 process, no args, no env; backend settings still apply");
    snprintf(want, sizeof(want), "%s/app", tmp);
    ok(sp && strcmp(sp->program, want) == 0, "spawn.program is normalised");
    pt_config_free(c);

    /* systemd's RuntimeDirectory= (the first of several) before tmp_dir;
     * the same private directory for every load of this process (reload) */
    setenv("RUNTIME_DIRECTORY", "/run/pt-a:/run/pt-b", 1);
    c = ld("backends = ( { name = \"hello\"; spawn = { program = \"app\"; }; } );\n"
           "locations = ( { prefix = \"/h\"; handler = \"fastcgi\"; backend = \"hello\"; } );",
           NULL);
    unsetenv("RUNTIME_DIRECTORY");
    sp = c ? c->backends[0].spawn : NULL;
    ok(sp && strncmp(sp->socket, "/run/pt-a/portico-", 18) == 0 &&
           strcmp(strchr(sp->socket + 18, '/'), "/hello.sock") == 0 &&
           strcmp(strrchr(sp->socket, '/') - 16 - 1, strrchr(first, '/') - 16 - 1) == 0,
       "default socket under $RUNTIME_DIRECTORY, same private name as before (%s)",
       sp ? sp->socket : err);
    pt_config_free(c);

    /* errors */
#define SP(body) "workers = 1;\nbackends = ( { name = \"p\";\n spawn = { " body " }; } );"
    ok(fails_with(SP("processes = 2;"), NULL, "t.conf:3: spawn needs a program"),
       "spawn without program");
    ok(fails_with(SP("program = \"\";"), NULL, "t.conf:3: spawn program must not be empty"),
       "empty spawn program");
    ok(fails_with(SP("program = \"nope\";"), NULL,
                  "t.conf:3: spawn program 'nope': No such file or directory"),
       "missing spawn program is an error, relative to the file");
    ok(fails_with(SP("program = \"www\";"), NULL, "spawn program 'www': not a regular file"),
       "spawn program that is a directory");
    ok(fails_with(SP("program = \"noexec\";"), NULL,
                  "t.conf:3: spawn program 'noexec' is not executable"),
       "spawn program without the executable bit");
    ok(fails_with(SP("program = \"app\"; processes = 0;"), NULL,
                  "'backends.[0].spawn.processes' must be between 1 and 256"),
       "processes 0 rejected");
    ok(fails_with(SP("program = \"app\"; processes = 257;"), NULL, "between 1 and 256"),
       "processes 257 rejected");
    ok(fails_with(SP("program = \"app\"; env = [ \"NOEQ\" ];"), NULL,
                  "'backends.[0].spawn.env': entry 1 has no '=' (expected \"NAME=VALUE\")"),
       "spawn env entries checked");
    ok(fails_with(SP("program = \"app\"; env = [ \"A=1\", \"A=2\" ];"), NULL, "'A' is set twice"),
       "spawn env sets a name once");
    ok(fails_with(SP("program = \"app\"; args = [ 1 ];"), NULL,
                  "'backends.[0].spawn.args' must be an array of strings"),
       "spawn args are strings");
    ok(fails_with(SP("program = \"app\"; socket = \"\";"), NULL, "spawn socket must not be empty"),
       "empty spawn socket");
    memset(name, 's', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(text, sizeof(text),
             "workers = 1;\nbackends = ( { name = \"%s\";\n spawn = {\n"
             " program = \"app\"; }; } );",
             name);
    ok(fails_with(text, NULL, "t.conf:3: spawn socket '") &&
           strstr(msg(), "': Unix socket path too long ("),
       "a default socket path too long for sun_path is an error at spawn");
    snprintf(text, sizeof(text), SP("program = \"app\";\n socket = \"/%s%s\";"), name, name);
    ok(fails_with(text, NULL, "t.conf:4: spawn socket '/sss") &&
           strstr(msg(), "': Unix socket path too long (199 bytes, at most 107)"),
       "a given socket path too long for sun_path is an error");
#undef SP
}

static void test_fastcgi_locations(void)
{
    char want[PATH_MAX + 64];
    const pt_location *l;
    pt_config *c;

    make_file("noexec", 0644);
    c = ld("backends = ( { name = \"php\"; servers = [ \"127.0.0.1:9000\" ]; } );\n"
           "locations = (\n"
           "  { extension = \".php\"; handler = \"fastcgi\"; backend = \"php\"; },\n"
           "  { prefix = \"/blog/\"; handler = \"fastcgi\"; backend = \"php\"; dir = \"www\";\n"
           "    root = \"other\"; require_file = false; },\n"
           "  { prefix = \"/front/\"; handler = \"fastcgi\"; backend = \"php\";"
           " program = \"noexec\";\n"
           "    env = [ \"APP_ENV=prod\" ]; pass_env = [ \"TZ\" ]; pass_authorization = false;"
           " buffering = false; },\n"
           "  { prefix = \"/gone/\"; handler = \"fastcgi\"; backend = \"php\";"
           " program = \"front.php\"; },\n"
           "  { prefix = \"/nodir/\"; handler = \"fastcgi\"; backend = \"php\";"
           " dir = \"nodir\"; },\n"
           "  { prefix = \"/cgi/\"; handler = \"cgi\"; }\n"
           ");",
           NULL);
    ok(c != NULL, "fastcgi locations load (%s)", c ? "ok" : err);
    if (!c)
        return;
    l = &c->vhosts[0].locs[0];
    ok(l->handler == PT_H_FASTCGI && l->backend == &c->backends[0] && l->require_file &&
           l->pass_authorization && l->buffering && !l->cgi_dir && !l->cgi_program &&
           l->nenv == 0 && l->ninterpreters == 0,
       "fastcgi defaults: require_file, pass_authorization and buffering true");
    l = &c->vhosts[0].locs[1];
    ok(l->cgi_dir && strcmp(l->cgi_dir, www) == 0 && !l->require_file && l->root &&
           strcmp(l->root, other) == 0,
       "fastcgi dir (relative to the file), root, require_file = false");
    l = &c->vhosts[0].locs[2];
    snprintf(want, sizeof(want), "%s/noexec", tmp);
    ok(l->cgi_program && strcmp(l->cgi_program, want) == 0 && l->nenv == 1 &&
           strcmp(l->env[0], "APP_ENV=prod") == 0 && l->npass_env == 1 && !l->pass_authorization &&
           !l->buffering,
       "fastcgi program (need not be executable), env, pass_env, pass_authorization, buffering");
    l = &c->vhosts[0].locs[5];
    ok(l->handler == PT_H_CGI && !l->pass_authorization && !l->require_file && !l->backend,
       "cgi locations keep pass_authorization false; no backend or require_file");
    ok(!c->vhosts[0].locs[6].require_file && !c->vhosts[0].locs[6].backend,
       "the implicit static / has no backend");
    ok(c->nwarnings == 2, "two warnings (%zu)", c->nwarnings);
    snprintf(want, sizeof(want),
             "%s/t.conf:8: warning: fastcgi program '%s/front.php' does not exist", tmp, tmp);
    ok(c->nwarnings == 2 && strcmp(c->warnings[0], want) == 0,
       "a missing fastcgi program is a warning: '%s'", c->nwarnings ? c->warnings[0] : "");
    snprintf(want, sizeof(want), "%s/t.conf:9: warning: fastcgi dir '%s/nodir' does not exist", tmp,
             tmp);
    ok(c->nwarnings == 2 && strcmp(c->warnings[1], want) == 0,
       "a missing fastcgi dir is a warning");
    pt_config_free(c);

    /* errors */
#define FL(body)                                                                                   \
    "workers = 1;\nbackends = ( { name = \"php\"; servers = [ \"127.0.0.1:9000\" ]; } );\n"        \
    "locations = ( {" body " } );"
#define FC " prefix = \"/x/\"; handler = \"fastcgi\"; backend = \"php\";"
    ok(fails_with(FL(" prefix = \"/x/\"; handler = \"fastcgi\";"), NULL,
                  "t.conf:3: a fastcgi location needs a backend (backend = \"name\";)"),
       "a fastcgi location without backend");
    ok(fails_with(FL(" prefix = \"/x/\"; handler = \"fastcgi\";\n backend = \"nope\";"), NULL,
                  "t.conf:4: unknown backend 'nope'"),
       "unknown backend: 't.conf:4: unknown backend 'nope''");
    ok(fails_with(FL(" prefix = \"/x/\"; handler = \"fastcgi\"; backend = \"PHP\";"), NULL,
                  "unknown backend 'PHP'"),
       "backend names are case-sensitive");
    {
        static const char *const cgi_only[] = {"interpreters = [ \".php=/usr/bin/php\" ];",
                                               "timeout = \"5s\";", "rlimit_cpu = 10;",
                                               "rlimit_as = \"1G\";", "rlimit_nproc = 5;"};
        char text[1024], key[32];
        for (size_t i = 0; i < PT_ARRAY_LEN(cgi_only); i++) {
            snprintf(text, sizeof(text), FL(FC "\n %s"), cgi_only[i]);
            snprintf(key, sizeof(key), "%.*s", (int)strcspn(cgi_only[i], " "), cgi_only[i]);
            snprintf(want, sizeof(want), "t.conf:4: '%s' only applies to handler \"cgi\"", key);
            ok(fails_with(text, NULL, want) && strcmp(msg(), want) == 0,
               "%s in a fastcgi location: '%s'", key, want);
        }
    }
    ok(fails_with(FL(" prefix = \"/x/\"; handler = \"cgi\";\n backend = \"php\";"), NULL,
                  "t.conf:4: 'backend' only applies to handler \"fastcgi\", \"scgi\", \"uwsgi\" or "
                  "\"proxy\""),
       "backend in a cgi location");
    ok(fails_with(
           FL(" prefix = \"/x/\"; backend = \"php\";"), NULL,
           "'backend' only applies to handler \"fastcgi\", \"scgi\", \"uwsgi\" or \"proxy\""),
       "backend in a static location");
    ok(fails_with(FL(" extension = \".x\"; handler = \"cgi\"; require_file = true;"), NULL,
                  "'require_file' only applies to handler \"fastcgi\", \"scgi\" or \"uwsgi\""),
       "require_file in a cgi location");
    ok(fails_with(FL(" prefix = \"/x/\"; require_file = false;"), NULL,
                  "'require_file' only applies to handler \"fastcgi\", \"scgi\" or \"uwsgi\""),
       "require_file in a static location");
    ok(fails_with(FL(FC " dir = \"www\"; program = \"app\";"), NULL,
                  "a fastcgi location takes 'dir' or 'program', not both"),
       "dir and program together");
    ok(fails_with(FL(" extension = \".php\"; handler = \"fastcgi\"; backend = \"php\";"
                     " dir = \"www\";"),
                  NULL, "'dir' only applies to prefix locations"),
       "dir on an extension location");
    ok(fails_with(FL(" exact = \"/x\"; handler = \"fastcgi\"; backend = \"php\";"
                     " program = \"app\";"),
                  NULL, "'program' only applies to prefix locations"),
       "program on an exact location");
    ok(fails_with(FL(FC " program = \"www\";"), NULL, "program 'www': Is a directory"),
       "a fastcgi program that is a directory");
    ok(fails_with(FL(FC " dir = \"afile\";"), NULL, "dir 'afile': Not a directory"),
       "a fastcgi dir that is a file");
    ok(fails_with(FL(FC " env = [ \"1X=a\" ];"), NULL, "entry 1: invalid name '1X'"),
       "fastcgi env entries checked");
    ok(fails_with(FL(FC " pass_env = [ \"A-B\" ];"), NULL, "invalid name 'A-B'"),
       "fastcgi pass_env names checked");
    ok(fails_with(FL(FC " require_file = \"yes\";"), NULL,
                  "'locations.[0].require_file' must be true or false"),
       "require_file is a boolean");
    ok(fails_with(FL(FC " root = \"nope\";"), NULL, "root 'nope': No such file or directory"),
       "a fastcgi location's root must exist");
    ok(fails_with(FL(" prefix = \"/x/\"; handler = \"static\"; timeout = \"5s\";"), NULL,
                  "'timeout' only applies to handler \"cgi\""),
       "timeout in a static location");
#undef FL
#undef FC
}

static void test_fastcgi_flag(void)
{
    pt_cli cli = cli0();
    const char *a[3], *ovs[2];
    char want[256];
    const pt_vhost *v;
    const pt_backend *b;
    pt_config *c;

    cli.fastcgi = a;
    a[0] = ".php=unix:/run/php/php-fpm.sock,127.0.0.1:9000";
    a[1] = "/app/=[::1]:9001";
    cli.nfastcgi = 2;
    c = ld("", &cli);
    ok(c != NULL, "--fastcgi loads (%s)", c ? "ok" : err);
    if (c) {
        b = &c->backends[0];
        ok(c->nbackends == 2 && strcmp(b->name, ".php") == 0 && b->nservers == 2 &&
               is_unix(&b->servers[0], "/run/php/php-fpm.sock") &&
               is_inet(&b->servers[1], "127.0.0.1", 9000) && b->line == 0,
           "--fastcgi .php=A,B: a backend named '.php' with both servers");
        ok(c->nbackends == 2 && strcmp(c->backends[1].name, "/app/") == 0 &&
               c->backends[1].nservers == 1 && is_inet6(&c->backends[1].servers[0], "::1", 9001),
           "--fastcgi /app/=[::1]:9001: a backend named '/app/'");
        ok(b->balance == PT_BAL_ROUND_ROBIN && b->connect_timeout_ms == 5000 &&
               b->read_timeout_ms == 60000 && b->keepalive && b->keepalive_max == 16 &&
               b->max_fails == 1 && b->queue == 64 && !b->spawn && b->servers[0].weight == 1 &&
               !b->servers[1].backup,
           "flag backends get every default");
        v = &c->vhosts[0];
        ok(v->nlocs == 3 && v->locs[0].match == PT_MATCH_EXT &&
               strcmp(v->locs[0].pattern, ".php") == 0 && v->locs[0].handler == PT_H_FASTCGI &&
               v->locs[0].backend == &c->backends[0] && v->locs[0].require_file &&
               v->locs[0].pass_authorization && v->locs[0].buffering,
           "--fastcgi .php: an extension location with that backend");
        ok(v->nlocs == 3 && v->locs[1].match == PT_MATCH_PREFIX &&
               strcmp(v->locs[1].pattern, "/app/") == 0 && v->locs[1].handler == PT_H_FASTCGI &&
               v->locs[1].backend == &c->backends[1] && !v->locs[1].cgi_dir &&
               !v->locs[1].cgi_program,
           "--fastcgi /app/: a plain prefix location with that backend");
        ok(strcmp(loc(v, "/x/index.php"), ".php") == 0 && strcmp(loc(v, "/app/x"), "/app/") == 0 &&
               strcmp(v->locs[2].pattern, "/") == 0,
           "flag locations are matched; the implicit / stays last");
        ok(c->nfastcgi_routes == 2 && strcmp(c->fastcgi_routes[0], a[0]) == 0 &&
               strcmp(c->fastcgi_routes[1], a[1]) == 0,
           "fastcgi_routes keeps the flags as given");
        ok(c->nwarnings == 0, "no warnings");
    }
    pt_config_free(c);

    /* with a file: its backends first, the flags' appended */
    cli.nfastcgi = 1;
    c = ld("backends = ( { name = \"php\"; servers = [ \"127.0.0.1:9\" ]; } );\n"
           "locations = ( { prefix = \"/p/\"; handler = \"fastcgi\"; backend = \"php\"; } );",
           &cli);
    ok(c && c->nbackends == 2 && strcmp(c->backends[0].name, "php") == 0 &&
           strcmp(c->backends[1].name, ".php") == 0 && c->vhosts[0].nlocs == 3 &&
           c->vhosts[0].locs[0].backend == &c->backends[0] &&
           c->vhosts[0].locs[1].backend == &c->backends[1],
       "--fastcgi appends to the file's backends and locations (%s)", c ? "ok" : err);
    pt_config_free(c);
    c = ld("backends = [ ];\nlocations = [ ];", &cli);
    ok(c && c->nbackends == 1 && c->vhosts[0].nlocs == 2,
       "--fastcgi with empty 'backends = [ ];' and 'locations = [ ];'");
    pt_config_free(c);

    /* -o reaches what the flag made */
    cli.overrides = ovs;
    ovs[0] = "backends.[0].read_timeout=5s";
    ovs[1] = "locations.[0].require_file=false";
    cli.noverrides = 2;
    c = ld("", &cli);
    ok(c && c->backends[0].read_timeout_ms == 5000 && !c->vhosts[0].locs[0].require_file,
       "-o backends.[0].read_timeout and locations.[0].require_file reach a --fastcgi");
    pt_config_free(c);
    ovs[0] = "backends.[0].max_fails=2000";
    cli.noverrides = 1;
    ok(fails_with("", &cli,
                  "-o backends.[0].max_fails: 'backends.[0].max_fails' must be between 0 and 1000"),
       "-o on a flag backend is checked and blamed on -o");
    ovs[0] = "backends.[0].servers=127.0.0.1:1, [::1]:2";
    c = ld("", &cli);
    ok(c && c->backends[0].nservers == 2 && is_inet(&c->backends[0].servers[0], "127.0.0.1", 1) &&
           is_inet6(&c->backends[0].servers[1], "::1", 2),
       "-o backends.[0].servers replaces the servers (comma-separated)");
    pt_config_free(c);
    ovs[0] = "backends.[0].spawn.processes=2";
    ok(fails_with("", &cli,
                  "--fastcgi .php=unix:/run/php/php-fpm.sock,127.0.0.1:9000: a backend takes "
                  "'servers' or 'spawn', not both"),
       "-o adding a spawn group to a flag backend is checked too");
    cli.noverrides = 0;

    /* errors, blamed on the flag */
    ok(fails_with(
           "workers = 1;\nbackends = ( { name = \".php\"; servers = [ \"127.0.0.1:9\" ]; } );",
           &cli, "duplicate backend") &&
           strcmp(msg(), "--fastcgi .php=unix:/run/php/php-fpm.sock,127.0.0.1:9000: duplicate "
                         "backend '.php' (first at line 2)") == 0,
       "a file backend named like a --fastcgi pattern is an error naming the flag");
    a[1] = a[0];
    cli.nfastcgi = 2;
    ok(fails_with("", &cli, "duplicate backend '.php' (given twice)"),
       "the same --fastcgi pattern twice is an error");
    cli.nfastcgi = 1;
    ok(fails_with("locations = ( { extension = \".php\"; } );", &cli,
                  "--fastcgi .php=unix:/run/php/php-fpm.sock,127.0.0.1:9000: duplicate location "
                  "extension '.php' (first at line 1)"),
       "a --fastcgi pattern that duplicates a file location");
    a[0] = ".php=localhost:9000";
    ok(fails_with("", &cli,
                  "--fastcgi .php=localhost:9000: server 'localhost:9000': not a numeric "
                  "IPv4 address (no DNS lookups"),
       "--fastcgi addresses meet the file's checks, blamed on the flag");
    a[0] = ".php=127.0.0.1:9000,unix:relative.sock";
    ok(fails_with("", &cli,
                  "--fastcgi .php=127.0.0.1:9000,unix:relative.sock: server "
                  "'unix:relative.sock': expected unix:/absolute/path"),
       "--fastcgi unix: paths must be absolute");
    a[0] = ".php=127.0.0.1:9000,127.0.0.1:9000";
    ok(fails_with("", &cli, "server '127.0.0.1:9000': duplicate of '127.0.0.1:9000'"),
       "--fastcgi with the same address twice");
    a[0] = ".a/b=127.0.0.1:9000";
    ok(fails_with("", &cli,
                  "--fastcgi .a/b=127.0.0.1:9000: extension '.a/b' must start with '.' "
                  "and contain no '/'"),
       "--fastcgi extension rules, blamed on the flag");
    {
        static const char *const bad[] = {".php=",
                                          "php=127.0.0.1:9000",
                                          "=127.0.0.1:9000",
                                          ".php",
                                          ".php=127.0.0.1:1,,127.0.0.1:2",
                                          ".php=a:1,",
                                          ",=127.0.0.1:1"};
        for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
            a[0] = bad[i];
            snprintf(want, sizeof(want),
                     "--fastcgi: '%s': expected PATTERN=ADDRESS[,ADDRESS...], e.g. "
                     ".php=unix:/run/php/php-fpm.sock or /app/=127.0.0.1:9000",
                     bad[i]);
            ok(fails_with("", &cli, want) && strcmp(msg(), want) == 0,
               "--fastcgi syntax: '%s' rejected", bad[i]);
        }
    }
    a[0] = "/app/=127.0.0.1:9000";
    ok(fails_with("backends = 5;", &cli, "'backends' must be a list"),
       "--fastcgi over a wrongly typed backends: the schema error");
}

/* limit_conn / limit_req: where they are set, what inherits them, which
 * settings share one zone, off, errors and -o. */
static void test_client_limits(void)
{
    pt_cli cli = cli0();
    const char *ovs[4];
    const pt_vhost *v;
    pt_config *c = ld("", NULL);
    ok(c && c->nzones == 0 && c->vhosts[0].locs[0].limit_conn == -1 &&
           c->vhosts[0].locs[0].limit_req == -1 && c->limits.limit_entries == 16384,
       "no limits by default; limit_entries 16384");
    pt_config_free(c);

    c = ld("limit_conn = 10;\n"
           "locations = (\n"
           "  { prefix = \"/api/\"; limit_req = { rate = \"10r/s\"; burst = 20; }; },\n"
           "  { prefix = \"/dl/\"; limit_conn = 2; },\n"
           "  { prefix = \"/free/\"; limit_conn = 0; limit_req = \"off\"; },\n"
           "  { extension = \".php\"; limit_req = \"30r/m\"; }\n"
           ");\n"
           "vhosts = (\n"
           "  { names = [ \"a.test\" ]; limit_req = \"1r/s\"; },\n"
           "  { names = [ \"b.test\" ]; limit_conn = 3;\n"
           "    locations = ( { prefix = \"/x/\"; limit_req = \"5r/s\"; } ); }\n"
           ");\n",
           NULL);
    ok(c != NULL, "limits load (%s)", c ? "ok" : err);
    if (!c)
        return;
    ok(c->nzones == 7, "one zone per setting in use: 7 (got %zu)", c->nzones);
    v = &c->vhosts[0]; /* a.test: the top-level locations, its own limit_req */
    const pt_location *api = pt_config_location(v, "/api/x", 6);
    const pt_location *dl = pt_config_location(v, "/dl/x", 5);
    const pt_location *fr = pt_config_location(v, "/free/x", 7);
    const pt_location *php = pt_config_location(v, "/a.php", 6);
    const pt_location *root = pt_config_location(v, "/", 1);
    ok(api->limit_conn >= 0 && c->zones[api->limit_conn].conn == 10 &&
           !c->zones[api->limit_conn].is_req,
       "a top-level limit_conn reaches every location");
    ok(strcmp(c->zones[api->limit_conn].where + strlen(tmp), "/t.conf:1") == 0,
       "the zone knows where it was set (%s)", c->zones[api->limit_conn].where);
    ok(api->limit_req >= 0 && c->zones[api->limit_req].is_req &&
           c->zones[api->limit_req].interval_ns == 100000000ULL &&
           c->zones[api->limit_req].burst == 20 &&
           strcmp(c->zones[api->limit_req].rate, "10r/s") == 0,
       "limit_req group: rate and burst");
    ok(dl->limit_conn >= 0 && c->zones[dl->limit_conn].conn == 2 &&
           dl->limit_conn != api->limit_conn,
       "a location's limit_conn replaces the inherited one");
    ok(dl->limit_req >= 0 && strcmp(c->zones[dl->limit_req].rate, "1r/s") == 0,
       "the vhost's limit_req reaches the top-level locations it uses");
    ok(fr->limit_conn == -1 && fr->limit_req == -1, "0 and \"off\" turn inherited limits off");
    ok(php->limit_req >= 0 && c->zones[php->limit_req].interval_ns == 2000000000ULL &&
           c->zones[php->limit_req].burst == 0,
       "limit_req as a string: the rate, burst 0");
    ok(root->limit_conn == api->limit_conn && root->limit_req == dl->limit_req,
       "the implicit / location inherits too");
    v = &c->vhosts[1]; /* b.test */
    const pt_location *x = pt_config_location(v, "/x/y", 4);
    root = pt_config_location(v, "/", 1);
    ok(x->limit_conn >= 0 && c->zones[x->limit_conn].conn == 3 && x->limit_req >= 0 &&
           strcmp(c->zones[x->limit_req].rate, "5r/s") == 0,
       "a vhost's own limit_conn over the top-level one");
    ok(root->limit_req == -1 && root->limit_conn == x->limit_conn,
       "the vhost's limit_conn reaches its implicit /; no limit_req there");
    v = &c->vhosts[2]; /* implicit default: top-level settings */
    const pt_location *api2 = pt_config_location(v, "/api/x", 6);
    ok(api2->limit_req == api->limit_req && api2->limit_conn == api->limit_conn,
       "a top-level location in two vhosts is one zone");
    ok(pt_config_location(v, "/dl/", 4)->limit_req == -1,
       "without a vhost limit_req there is none");
    pt_config_free(c);

    static const struct {
        const char *text, *want, *name;
    } bad[] = {
        {"limit_conn = -1;", "t.conf:1: 'limit_conn' must be between 0 and 1000000",
         "negative limit_conn"},
        {"limit_conn = \"5\";", "'limit_conn' must be an integer", "limit_conn must be an integer"},
        {"\nlimit_req = \"10r/h\";",
         "t.conf:2: 'limit_req': invalid rate '10r/h' (\"10r/s\" or \"30r/m\"",
         "a rate per hour is not a rate"},
        {"limit_req = \"0r/s\";", "invalid rate '0r/s'", "0r/s rejected"},
        {"limit_req = 10;", "'limit_req' must be a rate (\"10r/s\"), \"off\" or a group",
         "limit_req of the wrong type"},
        {"locations = ( { prefix = \"/\";\n limit_req = { burst = 5; }; } );",
         "t.conf:2: 'locations.[0].limit_req' needs a rate", "a limit_req group needs a rate"},
        {"limit_req = { rate = \"1r/s\"; burst = -1; };",
         "'limit_req.burst' must be between 0 and 1000000", "negative burst"},
        {"limit_req = { rate = \"1r/s\"; brust = 1; };", "unknown setting 'limit_req.brust'",
         "typo in the limit_req group"},
        {"vhosts = ( { names = [ \"a\" ];\n limit_conn = 2000000; } );",
         "t.conf:2: 'vhosts.[0].limit_conn' must be between 0 and 1000000",
         "vhost limit_conn range"},
        {"limits: { limit_entries = 8; };", "'limits.limit_entries' must be between 16 and 4194304",
         "limit_entries range"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++)
        ok(fails_with(bad[i].text, NULL, bad[i].want), "%s", bad[i].name);

    cli.overrides = ovs;
    ovs[0] = "limit_conn=4";
    ovs[1] = "locations.[0].limit_req=2r/s";
    ovs[2] = "limits.limit_entries=32";
    cli.noverrides = 3;
    c = ld("locations = ( { prefix = \"/a/\"; limit_req = { rate = \"1r/s\"; burst = 9; }; } );",
           &cli);
    ok(c != NULL, "-o limits (%s)", c ? "ok" : err);
    if (c) {
        const pt_location *a = pt_config_location(&c->vhosts[0], "/a/", 3);
        ok(a->limit_conn >= 0 && c->zones[a->limit_conn].conn == 4 &&
               strcmp(c->zones[a->limit_conn].where, "-o limit_conn") == 0,
           "-o limit_conn, blamed on -o");
        ok(a->limit_req >= 0 && strcmp(c->zones[a->limit_req].rate, "2r/s") == 0 &&
               c->zones[a->limit_req].burst == 0,
           "-o limit_req=RATE replaces the group");
        ok(c->limits.limit_entries == 32, "-o limits.limit_entries");
    }
    pt_config_free(c);
    ovs[0] = "limit_req.rate=3r/m";
    ovs[1] = "limit_req.burst=7";
    cli.noverrides = 2;
    c = ld("limit_req = \"1r/s\";", &cli);
    ok(c && c->nzones == 1 && c->zones[0].burst == 7 && strcmp(c->zones[0].rate, "3r/m") == 0,
       "-o limit_req.rate and .burst build a group (%s)", c ? "ok" : err);
    pt_config_free(c);
    ovs[0] = "limit_req=fast";
    cli.noverrides = 1;
    ok(fails_with("", &cli, "-o limit_req: 'limit_req': invalid rate 'fast'"),
       "-o limit_req is validated");
    ovs[0] = "limit_req=off";
    c = ld("limit_req = \"1r/s\";", &cli);
    ok(c && c->nzones == 0 && c->vhosts[0].locs[0].limit_req == -1, "-o limit_req=off");
    pt_config_free(c);
}

static void test_open_file_cache(void)
{
    pt_config *c = ld("", NULL);
    ok(c && c->open_file_cache.max == 1000 && c->open_file_cache.valid_ms == 1000 &&
           c->open_file_cache.inactive_ms == 60000 && c->open_file_cache.content_max == 16384 &&
           c->open_file_cache.errors,
       "open_file_cache defaults: max 1000, valid 1s, inactive 60s, content_max 16k, errors");
    pt_config_free(c);
    c = ld("open_file_cache = { max = 5; valid = \"250ms\"; inactive = \"2m\";"
           " content_max = \"1k\"; errors = false; };",
           NULL);
    ok(c && c->open_file_cache.max == 5 && c->open_file_cache.valid_ms == 250 &&
           c->open_file_cache.inactive_ms == 120000 && c->open_file_cache.content_max == 1024 &&
           !c->open_file_cache.errors,
       "open_file_cache settings stored");
    pt_config_free(c);
    c = ld("open_file_cache = { max = 0; valid = 0; content_max = 0; };", NULL);
    ok(c && c->open_file_cache.max == 0 && c->open_file_cache.valid_ms == 0 &&
           c->open_file_cache.content_max == 0,
       "max, valid and content_max may be 0 (off)");
    pt_config_free(c);
    ok(fails_with("open_file_cache = { max = -1; };", NULL, "open_file_cache.max"),
       "negative max refused");
    ok(fails_with("open_file_cache = { content_max = \"2M\"; };", NULL, "between"),
       "content_max above 1M refused");
    ok(fails_with("open_file_cache = { inactive = 0; };", NULL, "between 1ms and 1d"),
       "inactive 0 refused");
    ok(fails_with("open_file_cache = { size = 1; };", NULL, "unknown setting"),
       "unknown member refused");
    const char *ovs[1] = {"open_file_cache.valid=0"};
    pt_cli cli = cli0();
    cli.overrides = ovs;
    cli.noverrides = 1;
    c = ld("", &cli);
    ok(c && c->open_file_cache.valid_ms == 0, "-o open_file_cache.valid=0");
    pt_config_free(c);
}

/* compress_*: defaults, inheritance top -> vhost -> location (the implicit
 * "/" one too), the flag, -o, and the checks. */
static void test_compress(void)
{
    pt_cli cli = cli0();
    pt_config *c = ld("", &cli);
    ok(c && !c->vhosts[0].compress.on && c->vhosts[0].compress.gzip_level == 6 &&
           c->vhosts[0].compress.brotli_level == 5 && c->vhosts[0].compress.min_length == 256 &&
           strcmp(c->vhosts[0].compress.types, "text/*") == 0,
       "compress: off by default, levels 6 and 5, 256 bytes, text/* first");
    pt_config_free(c);
    cli.compress = true;
    c = ld("", &cli);
    const pt_location *l = c ? pt_config_location(&c->vhosts[0], "/x.html", 7) : NULL;
    ok(l && l->compress.on && c->vhosts[0].compress.on, "--compress: on in the implicit location");
    pt_config_free(c);
    cli = cli0();
    c = ld("compress = true; compress_gzip_level = 2;\n"
           "vhosts = ( { names = [\"a.test\"]; compress_brotli_level = 3;\n"
           "  compress_types = [\"Text/HTML\", \"image/*\"]; compress_min_length = \"1k\";\n"
           "  locations = ( { prefix = \"/off/\"; compress = false; },\n"
           "                { prefix = \"/nine/\"; compress_gzip_level = 9; } ); },\n"
           "  { names = [\"b.test\"]; compress = false; } );\n",
           &cli);
    const pt_vhost *a = c ? vh(c, "a.test") : NULL, *b = c ? vh(c, "b.test") : NULL;
    const pt_location *off = a ? pt_config_location(a, "/off/x", 6) : NULL;
    const pt_location *nine = a ? pt_config_location(a, "/nine/x", 7) : NULL;
    const pt_location *root = a ? pt_config_location(a, "/x", 2) : NULL;
    ok(a && b && off && nine && root, "compress: the configuration loads (%s)", err);
    if (a && b && off && nine && root) {
        ok(a->compress.on && a->compress.gzip_level == 2 && a->compress.brotli_level == 3 &&
               a->compress.min_length == 1024,
           "compress: a vhost takes the top level's and its own");
        ok(strcmp(a->compress.types, "text/html") == 0 &&
               strcmp(a->compress.types + 10, "image/*") == 0 && a->compress.types[18] == '\0',
           "compress_types: lower-cased, replacing the default list");
        ok(!off->compress.on && off->compress.gzip_level == 2 && off->compress.min_length == 1024,
           "compress = false in a location, the rest inherited");
        ok(nine->compress.on && nine->compress.gzip_level == 9 && nine->compress.brotli_level == 3,
           "a location's own level");
        ok(root->compress.on && root->compress.brotli_level == 3,
           "the implicit / location inherits the vhost's");
        ok(!b->compress.on && b->compress.gzip_level == 2, "compress = false in a vhost");
    }
    pt_config_free(c);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"compress_gzip_level = 0;", "between 1 and 9"},
        {"compress_gzip_level = 10;", "between 1 and 9"},
        {"compress_brotli_level = 12;", "between 0 and 11"},
        {"compress_min_length = \"big\";", "invalid size"},
        {"compress_types = [\"html\"];", "not a media type"},
        {"compress_types = [\"text/html; charset=utf-8\"];", "not a media type"},
        {"compress = \"yes\";", "t.conf:1"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(bad); i++) {
        c = ld(bad[i].text, &cli);
        ok(!c && strstr(err, bad[i].want), "compress: '%s' refused: %s", bad[i].text, msg());
        pt_config_free(c);
    }
    const char *ov[] = {"compress_types=text/html,application/json"};
    cli.overrides = ov;
    cli.noverrides = 1;
    c = ld("", &cli);
    ok(c && strcmp(c->vhosts[0].compress.types, "text/html") == 0 &&
           strcmp(c->vhosts[0].compress.types + 10, "application/json") == 0,
       "-o compress_types=a,b");
    pt_config_free(c);
}

static void test_misc(void)
{
    pt_config *c = ld("workers = 2;\nuser = \"www-data\";\ngroup = \"www-data\";\n"
                      "log_level = \"debug\";\naccess_log = \"off\";\nserver_tokens = false;\n"
                      "mime_types = \"/usr/share/mime.types\";\nindex = \"start.html\";\n",
                      NULL);
    ok(c != NULL, "misc settings load (%s)", c ? "ok" : err);
    if (c) {
        ok(c->workers == 2 && strcmp(c->user, "www-data") == 0 && strcmp(c->group, "www-data") == 0,
           "workers, user, group stored");
        ok(c->log_level == PT_LOG_DEBUG && c->access_log == NULL && !c->server_tokens,
           "log_level debug, access_log off is NULL, server_tokens false");
        ok(strcmp(c->mime_types, "/usr/share/mime.types") == 0, "mime_types");
        ok(c->vhosts[0].nindex == 1 && strcmp(c->vhosts[0].index[0], "start.html") == 0,
           "index as a single string");
    }
    pt_config_free(c);
    c = pt_config_load_string("workers = ;", NULL, NULL, err, sizeof(err));
    ok(!c && strncmp(err, "(string):1: ", 12) == 0, "string loads without a name or cli");
    pt_config_free(c);
}

int main(void)
{
    char t[] = "/tmp/pt-conf-XXXXXX";
    char cmd[PATH_MAX + 16];
    const char *env = getenv("PT_SRCDIR");
    if (env) {
        snprintf(srcdir, sizeof(srcdir), "%s", env);
    } else {
        /* __FILE__ is .../tests/unit/test_conf.c */
        snprintf(srcdir, sizeof(srcdir), "%s", __FILE__);
        for (int i = 0; i < 3; i++) {
            char *s = strrchr(srcdir, '/');
            if (s)
                *s = '\0';
            else
                snprintf(srcdir, sizeof(srcdir), "%s", i == 2 ? "." : "..");
        }
    }
    if (!mkdtemp(t) || !realpath(t, cmd) || strlen(cmd) >= sizeof(tmp)) {
        perror("mkdtemp");
        return 99;
    }
    memcpy(tmp, cmd, strlen(cmd) + 1);
    snprintf(www, sizeof(www), "%s/www", tmp);
    snprintf(other, sizeof(other), "%s/other", tmp);
    snprintf(cmd, sizeof(cmd), "%s/sub", tmp);
    if (mkdir(www, 0700) < 0 || mkdir(other, 0700) < 0 || mkdir(cmd, 0700) < 0) {
        perror("mkdir");
        return 99;
    }
    write_file(tmp, "afile", "x");

    test_shipped_files();
    test_defaults();
    test_schema_errors();
    test_sizes();
    test_overrides();
    test_listen();
    test_vhosts();
    test_locations();
    test_paths();
    test_identity();
    test_cgi_settings();
    test_cgi_overrides();
    test_gateways();
    test_backends();
    test_backend_errors();
    test_spawn();
    test_fastcgi_locations();
    test_fastcgi_flag();
    test_client_limits();
    test_open_file_cache();
    test_misc();
    test_compress();

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmp);
    return tap_done();
}
