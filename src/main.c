/* main.c: the command line (a contract: see portico(8)), configuration
 * test (-t), version (-V), then start-up: logs, MIME table, document roots,
 * listeners, optional daemon mode, and the master. */
#include "first.h"
#include "conf.h"
#include "h1_head.h"
#include "listen.h"
#include "tls.h"
#include "log.h"
#include "rootfile.h"
#include "master.h"
#include "mime.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: portico [-c FILE] [-t] [-V] [-h] [--daemon] [-w N]\n"
    "               [-l ADDR:PORT]... [-p PORT] [-r DOCROOT]\n"
    "               [--tls ADDR:PORT]... [--cert FILE] [--key FILE]\n"
    "               [--cgi PREFIX=PATH]... [--fastcgi PATTERN=ADDRESS[,ADDRESS...]]...\n"
    "               [--scgi PATTERN=ADDRESS[,ADDRESS...]]...\n"
    "               [--uwsgi PATTERN=ADDRESS[,ADDRESS...]]...\n"
    "               [--proxy PREFIX=ADDRESS[,ADDRESS...]]...\n"
    "               [--auth PREFIX=HTPASSWD]...\n"
    "               [--max-body SIZE] [--error-log FILE|stderr] [--access-log FILE|off]\n"
    "               [--status PATH] [--compress] [--cache DIR]\n"
    "               [-o SETTING=VALUE]...\n"
    "\n"
    "  -c FILE              load the configuration file FILE (libconfig syntax)\n"
    "  -t                   test the configuration and exit (0 ok, 1 error)\n"
    "  -V, --version        print the version and the library versions\n"
    "  -h, --help           print this help\n"
    "  -D                   stay in the foreground (the default)\n"
    "  --daemon             detach and run in the background\n"
    "  -w N                 worker processes (0 = one per CPU)\n"
    "  -l ADDR:PORT         listen on this address (repeatable): 127.0.0.1:8080, [::1]:8080\n"
    "  -p PORT              listen on PORT on every interface\n"
    "  --tls ADDR:PORT      listen with TLS on this address (repeatable); needs --cert, --key\n"
    "  --cert FILE          TLS certificate (PEM, full chain); twice: ECDSA and RSA\n"
    "  --key FILE           TLS private key (PEM)\n"
    "  -r DOCROOT           document root (default: the current directory)\n"
    "  --cgi PREFIX=PATH    run CGI programs: /prefix/=DIR (scripts in DIR), /prefix=PROGRAM\n"
    "                       (one program), .ext=INTERPRETER or .ext= (scripts in the root)\n"
    "  --fastcgi PATTERN=ADDRESS[,ADDRESS...]\n"
    "                       forward PATTERN (.php or /prefix/) to FastCGI servers\n"
    "  --scgi PATTERN=ADDRESS[,ADDRESS...]\n"
    "                       forward PATTERN to SCGI servers\n"
    "  --uwsgi PATTERN=ADDRESS[,ADDRESS...]\n"
    "                       forward PATTERN to uwsgi-protocol servers (uWSGI)\n"
    "  --proxy PREFIX=ADDRESS[,ADDRESS...]\n"
    "                       forward /prefix/ to HTTP servers (a reverse proxy)\n"
    "  --auth PREFIX=HTPASSWD\n"
    "                       HTTP Basic authentication (realm \"Restricted\") for /prefix/\n"
    "                       against an htpasswd file\n"
    "  --max-body SIZE      largest request body (e.g. 100M)\n"
    "  --error-log FILE     error log file, or stderr\n"
    "  --access-log FILE    access log file, or off\n"
    "  --status PATH        serve the status page and metrics at PATH (loopback clients)\n"
    "  --compress           compress text responses on the fly (gzip, br)\n"
    "  --cache DIR          cache gateway responses under DIR, as their Cache-Control says\n"
    "  -o SETTING=VALUE     set any configuration setting, e.g. -o limits.keepalive_timeout=65s\n";

/* libconfig 1.5 leaks inside the library on some syntax errors; nothing of
 * portico's own is hidden by this (used only by LeakSanitizer builds) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

enum {
    OPT_DAEMON = 256,
    OPT_CGI,
    OPT_FASTCGI,
    OPT_MAX_BODY,
    OPT_ERROR_LOG,
    OPT_ACCESS_LOG,
    OPT_SCGI,
    OPT_UWSGI,
    OPT_PROXY,
    OPT_STATUS,
    OPT_TLS,
    OPT_CERT,
    OPT_KEY,
    OPT_AUTH,
    OPT_COMPRESS,
    OPT_CACHE
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"daemon", no_argument, NULL, OPT_DAEMON},
    {"cgi", required_argument, NULL, OPT_CGI},
    {"fastcgi", required_argument, NULL, OPT_FASTCGI},
    {"scgi", required_argument, NULL, OPT_SCGI},
    {"uwsgi", required_argument, NULL, OPT_UWSGI},
    {"proxy", required_argument, NULL, OPT_PROXY},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"status", required_argument, NULL, OPT_STATUS},
    {"tls", required_argument, NULL, OPT_TLS},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"compress", no_argument, NULL, OPT_COMPRESS},
    {"cache", required_argument, NULL, OPT_CACHE},
    {NULL, 0, NULL, 0},
};

static int push(const char ***arr, size_t *n, const char *v)
{
    const char **a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (!a)
        return -1;
    a[(*n)++] = v;
    *arr = a;
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        /* a daemon keeps none of its launcher's stdio: a pipe held open
         * here would keep `portico --daemon | cat` from ever finishing */
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    pt_cli cli;
    memset(&cli, 0, sizeof(cli));
    cli.workers = -1;
    bool test_only = false, daemon_mode = false, no_mem = false;
    int rc = 1;
    char *end;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tVhDw:l:p:r:o:", long_opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cli.conf_file = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'V':
            printf("portico %s\nhttp-parser %s\nlibconfig %d.%d.%d\n", PACKAGE_VERSION,
                   pt_h1_parser_version(), LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
                   LIBCONFIG_VER_REVISION);
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'D':
            break;
        case 'w':
            errno = 0;
            cli.workers = (int)strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || cli.workers < 0 || cli.workers > 1024) {
                fprintf(stderr, "portico: -w: invalid worker count '%s'\n", optarg);
                return 2;
            }
            break;
        case 'l':
            no_mem |= push(&cli.listen, &cli.nlisten, optarg) < 0;
            break;
        case 'p':
            cli.port = optarg;
            break;
        case 'r':
            cli.root = optarg;
            break;
        case 'o':
            no_mem |= push(&cli.overrides, &cli.noverrides, optarg) < 0;
            break;
        case OPT_DAEMON:
            daemon_mode = true;
            break;
        case OPT_CGI:
            no_mem |= push(&cli.cgi, &cli.ncgi, optarg) < 0;
            break;
        case OPT_FASTCGI:
            no_mem |= push(&cli.fastcgi, &cli.nfastcgi, optarg) < 0;
            break;
        case OPT_SCGI:
            no_mem |= push(&cli.scgi, &cli.nscgi, optarg) < 0;
            break;
        case OPT_UWSGI:
            no_mem |= push(&cli.uwsgi, &cli.nuwsgi, optarg) < 0;
            break;
        case OPT_PROXY:
            no_mem |= push(&cli.proxy, &cli.nproxy, optarg) < 0;
            break;
        case OPT_AUTH:
            no_mem |= push(&cli.auth, &cli.nauth, optarg) < 0;
            break;
        case OPT_MAX_BODY:
            cli.max_body = optarg;
            break;
        case OPT_ERROR_LOG:
            cli.error_log = optarg;
            break;
        case OPT_ACCESS_LOG:
            cli.access_log = optarg;
            break;
        case OPT_STATUS:
            cli.status = optarg;
            break;
        case OPT_TLS:
            no_mem |= push(&cli.tls_listen, &cli.ntls_listen, optarg) < 0;
            break;
        case OPT_CERT:
            no_mem |= push(&cli.tls_cert, &cli.ntls_cert, optarg) < 0;
            break;
        case OPT_KEY:
            no_mem |= push(&cli.tls_key, &cli.ntls_key, optarg) < 0;
            break;
        case OPT_COMPRESS:
            cli.compress = true;
            break;
        case OPT_CACHE:
            cli.cache = optarg;
            break;
        default:
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if (no_mem) {
        /* a dropped -l/-o/--cgi/--fastcgi would start a different server */
        fprintf(stderr, "portico: out of memory reading the command line\n");
        return 1;
    }
    if (optind < argc) {
        fprintf(stderr, "portico: unexpected argument '%s'\n", argv[optind]);
        fputs(usage_text, stderr);
        return 2;
    }

    char err[1024] = "";
    pt_config *cfg = pt_config_load(&cli, err, sizeof(err));
    pt_listener *ls = NULL;
    size_t nls = 0;
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (pt_config_open_roots(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (pt_mime_load(cfg->mime_types) < 0) {
        fprintf(stderr, "portico: cannot read %s: %s\n", cfg->mime_types, strerror(errno));
        goto out;
    }
    if (test_only) {
        for (size_t i = 0; i < cfg->nwarnings; i++)
            fprintf(stderr, "%s\n", cfg->warnings[i]);
        fprintf(stderr, "portico: configuration ok\n");
        rc = 0;
        goto out;
    }
    pt_log_set_owner(cfg->creds.drop ? cfg->creds.uid : (uid_t)-1);
    if (pt_log_open(cfg->error_log, cfg->log_level) < 0) {
        fprintf(stderr, "portico: cannot open error log %s: %s\n", cfg->error_log, pt_log_why());
        goto out;
    }
    for (size_t i = 0; i < cfg->nwarnings; i++)
        pt_log_warn("%s", cfg->warnings[i]);
    if (pt_access_log_open(cfg->access_log) < 0) {
        fprintf(stderr, "portico: cannot open access log %s: %s\n", cfg->access_log, pt_log_why());
        goto out;
    }
    for (size_t i = 0; i < cfg->nvhosts; i++) {
        if (cfg->vhosts[i].access_log && pt_access_log_handle(cfg->vhosts[i].access_log) == -2) {
            fprintf(stderr, "portico: cannot open access log %s: %s\n", cfg->vhosts[i].access_log,
                    pt_log_why());
            goto out;
        }
    }
    if (pt_listen_open(cfg, &ls, &nls, err, sizeof(err)) < 0) {
        fprintf(stderr, "portico: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < nls && daemon_mode; i++)
        if (ls[i].activated) {
            /* the manager that passed the sockets supervises this process:
             * detaching would only make it lose track of the server */
            fprintf(stderr, "portico: warning: --daemon ignored: socket activation implies "
                            "the foreground\n");
            daemon_mode = false;
        }
    if (daemon_mode && strcmp(cfg->error_log, "stderr") == 0)
        fprintf(stderr, "portico: warning: --daemon with the error log on stderr: errors are "
                        "discarded; use --error-log FILE\n");
    if (daemon_mode && daemonize() < 0) {
        fprintf(stderr, "portico: cannot daemonize: %s\n", strerror(errno));
        goto out;
    }
    if (cfg->pid_file && pt_rootfile_write_pid(cfg->pid_file, err, sizeof(err)) < 0) {
        pt_log_error("cannot write pid file %s: %s", cfg->pid_file, err);
        goto out;
    }
    for (size_t i = 0; i < nls; i++)
        pt_log_info("listening on %s%s%s", ls[i].text, ls[i].cfg->tls ? " (TLS)" : "",
                    ls[i].activated ? " (socket passed by the service manager)" : "");
    pt_tls_log_start(cfg);
    rc = pt_master_run(&cfg, &ls, &nls, &cli);
    if (cfg->pid_file)
        pt_rootfile_remove_pid(cfg->pid_file);
out:
    pt_listen_close(ls, nls);
    pt_config_free(cfg);
    pt_mime_free();
    pt_log_close_all();
    free(cli.listen);
    free(cli.tls_listen);
    free(cli.tls_cert);
    free(cli.tls_key);
    free(cli.overrides);
    free(cli.cgi);
    free(cli.fastcgi);
    free(cli.scgi);
    free(cli.uwsgi);
    free(cli.proxy);
    free(cli.auth);
    return rc;
}
