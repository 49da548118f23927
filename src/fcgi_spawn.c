/* fcgi_spawn.c: local FastCGI applications supervised by the master. Each
 * spawn backend gets one listening Unix socket shared by its processes
 * (they accept on fd 0, the FastCGI convention); a process that exits is
 * restarted, with a growing delay when it keeps dying right after start. */
#include "first.h"
#include "fcgi_spawn.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PT_SPAWN_PATH "PATH=/usr/local/bin:/usr/bin:/bin"
#define PT_SPAWN_QUICK_MS 2000 /* dying sooner than this counts as a crash loop */
#define PT_SPAWN_MAX_DELAY 30  /* seconds */

typedef struct app_proc {
    pid_t pid;
    uint64_t started;
    unsigned delay;      /* seconds before the next start */
    unsigned wait_ticks; /* 1 s ticks left before it starts again */
    pt_timer timer;
    struct app *app;
} app_proc;

typedef struct app {
    const pt_backend *b;
    int fd;
    dev_t dev; /* the socket's inode, removed at stop only while still there */
    ino_t ino;
    app_proc *procs;
    char **argv, **envp;
} app;

static struct {
    app *apps;
    size_t napps;
    pt_loop *loop;
    pt_tlist tick;
    bool stopping;
    pt_creds creds;    /* who the apps run as: cgi_user, else the workers' user */
    bool no_new_privs; /* apps start with PR_SET_NO_NEW_PRIVS */
    char *dir;         /* the private directory of made-up sockets, or NULL */
    int dir_fd;
} S;

static void start_proc(app_proc *p);

static void on_tick(pt_loop *l, pt_timer *t)
{
    (void)l;
    app_proc *p = t->data;
    if (S.stopping)
        return;
    if (p->wait_ticks > 1) {
        p->wait_ticks--;
        pt_timer_arm(S.loop, &p->timer, &S.tick);
        return;
    }
    p->wait_ticks = 0;
    start_proc(p);
}

/* Close every fd from lo up: close_range(2) (Linux 5.9), else one by one
 * up to the fd limit. 0, or -1 when neither is possible. */
static int close_from(int lo)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0U, 0U) == 0)
        return 0;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0)
        return -1;
    for (long fd = lo; fd < max; fd++)
        close((int)fd);
    return 0;
}

static void start_proc(app_proc *p)
{
    app *a = p->app;
    pid_t pid = fork();
    if (pid < 0) {
        pt_log_error("fastcgi %s: fork failed: %s", a->b->name, strerror(errno));
        p->wait_ticks = 1;
        pt_timer_arm(S.loop, &p->timer, &S.tick);
        return;
    }
    if (pid == 0) {
        /* the app: socket on 0, stdout to /dev/null, portico's stderr, a
         * clean signal state and its own process group */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        setpgid(0, 0);
        int null = open("/dev/null", O_RDWR);
        if (dup2(a->fd, 0) < 0 || (null >= 0 && dup2(null, 1) < 0))
            _exit(127);
        /* every fd above 2, however high: a descriptor the master
         * inherited without close-on-exec (from whoever started it) sits
         * anywhere below RLIMIT_NOFILE, and an app must get none of them */
        if (close_from(3) < 0)
            _exit(127);
        if (S.no_new_privs && S.creds.drop)
            pt_priv_clear_bounding_set();
        if (pt_priv_drop(&S.creds) < 0) {
            dprintf(2, "portico: fastcgi %s: cannot change to its user: %s\n", a->b->name,
                    strerror(errno));
            _exit(127);
        }
        if (S.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            _exit(127);
        execve(a->argv[0], a->argv, a->envp);
        dprintf(2, "portico: fastcgi %s: cannot execute %s: %s\n", a->b->name, a->argv[0],
                strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    p->started = pt_now_ms();
    pt_log_info("fastcgi %s: started %s (pid %d)", a->b->name, a->argv[0], (int)pid);
}

/* The private directory for the sockets portico makes up: created here
 * (mkdir refuses a name someone made first), checked through an fd, then
 * root's with the workers' group, 0710: they may reach a socket in it, not
 * list, add or swap anything. Nothing is changed by path. */
static int make_dir(const char *sock, char *err, size_t errlen)
{
    const char *slash = strrchr(sock, '/');
    char *dir = slash ? strndup(sock, (size_t)(slash - sock)) : NULL;
    struct stat st;
    if (!dir) {
        snprintf(err, errlen, "fastcgi: out of memory");
        return -1;
    }
    if (S.dir) {
        /* one directory per configuration load */
        bool same = strcmp(S.dir, dir) == 0;
        free(dir);
        if (!same)
            snprintf(err, errlen, "fastcgi: two private socket directories: %s and %s", S.dir,
                     sock);
        return same ? 0 : -1;
    }
    mode_t old = umask(077);
    int rc = mkdir(dir, 0700);
    umask(old);
    if (rc < 0) {
        snprintf(err, errlen, "fastcgi: cannot create the socket directory %s: %s", dir,
                 errno == EEXIST ? "it exists already, made by someone else" : strerror(errno));
        free(dir);
        return -1;
    }
    S.dir = dir;
    S.dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (S.dir_fd < 0 || fstat(S.dir_fd, &st) < 0) {
        snprintf(err, errlen, "fastcgi: cannot open the socket directory %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    /* a name swapped between mkdir and open is not ours: refuse it */
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "fastcgi: the socket directory %s was replaced by uid %u's", dir,
                 (unsigned)st.st_uid);
        return -1;
    }
    if (S.creds.drop &&
        (fchown(S.dir_fd, (uid_t)-1, S.creds.gid) < 0 || fchmod(S.dir_fd, 0710) < 0)) {
        snprintf(err, errlen, "fastcgi: cannot open the socket directory %s to the workers: %s",
                 dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* The socket's inode, for pt_spawn_stop(): in the private directory through
 * its fd, elsewhere by name. */
static int sock_stat(const app *a, struct stat *st)
{
    const char *path = a->b->spawn->socket;
    if (a->b->spawn->socket_auto && S.dir_fd >= 0)
        return fstatat(S.dir_fd, strrchr(path, '/') + 1, st, AT_SYMLINK_NOFOLLOW);
    return lstat(path, st);
}

static int bind_socket(app *a, char *err, size_t errlen)
{
    const char *path = a->b->spawn->socket;
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "fastcgi %s: socket path too long: %s", a->b->name, path);
        return -1;
    }
    strcpy(sun.sun_path, path);
    struct stat st;
    if (a->b->spawn->socket_auto) {
        if (make_dir(path, err, errlen) < 0)
            return -1;
    } else if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "fastcgi %s: %s exists and is not a socket", a->b->name, path);
            return -1;
        }
        unlink(path); /* left by an earlier run */
    }
    a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a->fd < 0) {
        snprintf(err, errlen, "fastcgi %s: cannot listen on %s: %s", a->b->name, path,
                 strerror(errno));
        return -1;
    }
    /* the socket is born 0660 and in the workers' group: no chmod or chown
     * by name afterwards, which a swapped name would redirect. The apps get
     * the fd itself; only the workers connect by name. */
    mode_t old = umask(0117);
    gid_t fsgid = S.creds.drop ? (gid_t)setfsgid(S.creds.gid) : 0;
    int rc = bind(a->fd, (struct sockaddr *)&sun, sizeof(sun));
    int e = errno;
    if (S.creds.drop)
        setfsgid(fsgid);
    umask(old);
    errno = e;
    if (rc < 0 || listen(a->fd, 1024) < 0) {
        snprintf(err, errlen, "fastcgi %s: cannot listen on %s: %s", a->b->name, path,
                 strerror(errno));
        return -1;
    }
    if (sock_stat(a, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "fastcgi %s: %s is not the socket just bound", a->b->name, path);
        return -1;
    }
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    return 0;
}

static char **make_argv(const pt_fcgi_spawn *sp)
{
    char **v = calloc(sp->nargs + 2, sizeof(*v));
    if (!v)
        return NULL;
    v[0] = sp->program;
    for (size_t i = 0; i < sp->nargs; i++)
        v[i + 1] = sp->args[i];
    return v;
}

static char **make_envp(const pt_fcgi_spawn *sp)
{
    char **v = calloc(sp->nenv + 2, sizeof(*v));
    if (!v)
        return NULL;
    bool has_path = false;
    for (size_t i = 0; i < sp->nenv; i++) {
        v[i] = sp->env[i];
        has_path |= strncmp(sp->env[i], "PATH=", 5) == 0;
    }
    if (!has_path)
        v[sp->nenv] = (char *)PT_SPAWN_PATH;
    return v;
}

int pt_spawn_start(const pt_config *cfg, pt_loop *loop, char *err, size_t errlen)
{
    memset(&S, 0, sizeof(S));
    S.dir_fd = -1;
    S.loop = loop;
    const pt_creds *cr = cfg->cgi_creds.drop ? &cfg->cgi_creds : &cfg->creds;
    S.creds = *cr;
    S.creds.groups = NULL;
    S.no_new_privs = cfg->no_new_privs;
    if (cr->ngroups && !(S.creds.groups = malloc(cr->ngroups * sizeof(*S.creds.groups)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (S.creds.groups)
        memcpy(S.creds.groups, cr->groups, cr->ngroups * sizeof(*S.creds.groups));
    pt_tlist_init(loop, &S.tick, 1000);
    size_t n = 0;
    for (size_t i = 0; i < cfg->nbackends; i++)
        n += cfg->backends[i].spawn != NULL;
    if (n == 0)
        return 0;
    if (!(S.apps = calloc(n, sizeof(*S.apps)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->nbackends; i++) {
        const pt_backend *b = &cfg->backends[i];
        if (!b->spawn)
            continue;
        char **argv = make_argv(b->spawn), **envp = make_envp(b->spawn);
        app_proc *procs = calloc(b->spawn->processes, sizeof(*procs));
        if (!argv || !envp || !procs) {
            free(argv);
            free(envp);
            free(procs);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        /* counted only when complete: pt_spawn_stop walks every counted app */
        app *a = &S.apps[S.napps++];
        a->b = b;
        a->fd = -1;
        a->argv = argv;
        a->envp = envp;
        a->procs = procs;
        if (bind_socket(a, err, errlen) < 0)
            return -1;
        for (uint32_t k = 0; k < b->spawn->processes; k++) {
            app_proc *p = &a->procs[k];
            p->app = a;
            pt_timer_init(&p->timer, on_tick, p);
            start_proc(p);
        }
    }
    return 0;
}

static bool same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

bool pt_spawn_rebind(pt_config *c)
{
    bool all = true;
    const pt_creds *cr = c->cgi_creds.drop ? &c->cgi_creds : &c->creds;
    if (S.napps && (cr->drop != S.creds.drop || cr->uid != S.creds.uid || cr->gid != S.creds.gid))
        pt_log_warn("fastcgi: user/group changed; spawned applications change when portico "
                    "restarts");
    for (size_t i = 0; i < S.napps; i++) {
        app *a = &S.apps[i];
        const pt_fcgi_spawn *o = a->b->spawn;
        pt_backend *nb = NULL;
        for (size_t k = 0; k < c->nbackends; k++)
            if (strcmp(c->backends[k].name, a->b->name) == 0 && c->backends[k].spawn)
                nb = &c->backends[k];
        if (!nb) {
            pt_log_warn("fastcgi %s: gone from the configuration; its processes keep running "
                        "until portico restarts",
                        a->b->name);
            all = false;
            continue;
        }
        pt_fcgi_spawn *n = nb->spawn;
        if (o->socket_auto && n->socket_auto && strcmp(o->socket, n->socket) != 0) {
            /* a made-up path differs only by the pid of the process that
             * read the file: the running socket stays the backend's */
            char *sock = strdup(o->socket), *addr = NULL;
            struct sockaddr_un *sun = (struct sockaddr_un *)&nb->servers[0].addr;
            if (!sock || strlen(sock) >= sizeof(sun->sun_path) ||
                asprintf(&addr, "unix:%s", sock) < 0) {
                free(sock);
                all = false;
                continue;
            }
            free(n->socket);
            n->socket = sock;
            free(nb->servers[0].address);
            nb->servers[0].address = addr;
            strcpy(sun->sun_path, sock);
        }
        if (strcmp(o->program, n->program) != 0 || o->processes != n->processes ||
            strcmp(o->socket, n->socket) != 0 || !same_strv(o->args, o->nargs, n->args, n->nargs) ||
            !same_strv(o->env, o->nenv, n->env, n->nenv)) {
            pt_log_warn("fastcgi %s: spawn settings changed; they take effect when portico "
                        "restarts",
                        a->b->name);
            all = false;
            continue;
        }
        char **argv = make_argv(n), **envp = make_envp(n);
        if (!argv || !envp) {
            free(argv);
            free(envp);
            all = false;
            continue;
        }
        free(a->argv);
        free(a->envp);
        a->argv = argv;
        a->envp = envp;
        a->b = nb;
    }
    for (size_t k = 0; k < c->nbackends; k++) {
        bool running = false;
        for (size_t i = 0; i < S.napps; i++)
            running |= strcmp(S.apps[i].b->name, c->backends[k].name) == 0;
        if (c->backends[k].spawn && !running)
            pt_log_warn("fastcgi %s: a new spawn backend starts when portico restarts",
                        c->backends[k].name);
    }
    return all;
}

bool pt_spawn_uses(const pt_config *c)
{
    for (size_t i = 0; i < S.napps; i++)
        if (S.apps[i].b >= c->backends && S.apps[i].b < c->backends + c->nbackends)
            return true;
    return false;
}

void pt_spawn_close_fds(void)
{
    for (size_t i = 0; i < S.napps; i++)
        if (S.apps[i].fd >= 0)
            close(S.apps[i].fd);
    if (S.dir_fd >= 0)
        close(S.dir_fd);
}

bool pt_spawn_reaped(pid_t pid, int status)
{
    for (size_t i = 0; i < S.napps; i++) {
        app *a = &S.apps[i];
        for (uint32_t k = 0; k < a->b->spawn->processes; k++) {
            app_proc *p = &a->procs[k];
            if (p->pid != pid)
                continue;
            p->pid = 0;
            if (S.stopping)
                return true;
            char how[64];
            if (WIFSIGNALED(status))
                snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
            else
                snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
            /* back-off for a crash loop: 1, 2, 4 ... 30 s; a process that
             * ran a while restarts at once */
            if (pt_now_ms() - p->started < PT_SPAWN_QUICK_MS)
                p->delay = p->delay ? PT_MIN(p->delay * 2, (unsigned)PT_SPAWN_MAX_DELAY) : 1;
            else
                p->delay = 0;
            pt_log_warn("fastcgi %s: %s (pid %d) %s; restarting%s", a->b->name, a->argv[0],
                        (int)pid, how, p->delay ? " after a delay" : "");
            if (p->delay) {
                p->wait_ticks = p->delay;
                pt_timer_arm(S.loop, &p->timer, &S.tick);
            } else {
                start_proc(p);
            }
            return true;
        }
    }
    return false;
}

static size_t live(void)
{
    size_t n = 0;
    for (size_t i = 0; i < S.napps; i++)
        for (uint32_t k = 0; k < S.apps[i].b->spawn->processes; k++)
            n += S.apps[i].procs[k].pid > 0;
    return n;
}

static void signal_all(int sig)
{
    for (size_t i = 0; i < S.napps; i++)
        for (uint32_t k = 0; k < S.apps[i].b->spawn->processes; k++)
            if (S.apps[i].procs[k].pid > 0)
                kill(-S.apps[i].procs[k].pid, sig);
}

static void reap_some(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        pt_spawn_reaped(pid, status);
}

void pt_spawn_quiesce(void)
{
    S.stopping = true;
}

void pt_spawn_stop(uint64_t grace_ms)
{
    S.stopping = true;
    signal_all(SIGTERM);
    uint64_t until = pt_now_ms() + grace_ms;
    while (live() > 0 && pt_now_ms() < until) {
        reap_some();
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (live() > 0) {
        pt_log_warn("fastcgi: applications did not stop in time; killing them");
        signal_all(SIGKILL);
        while (live() > 0) {
            int status;
            pid_t pid = waitpid(-1, &status, 0);
            if (pid < 0)
                break;
            pt_spawn_reaped(pid, status);
        }
    }
    for (size_t i = 0; i < S.napps; i++) {
        app *a = &S.apps[i];
        for (uint32_t k = 0; k < a->b->spawn->processes; k++)
            pt_timer_stop(&a->procs[k].timer);
        struct stat st;
        if (a->fd >= 0) {
            close(a->fd);
            /* only the socket bound here: a name swapped since stays */
            if (sock_stat(a, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == a->dev &&
                st.st_ino == a->ino) {
                if (a->b->spawn->socket_auto && S.dir_fd >= 0)
                    unlinkat(S.dir_fd, strrchr(a->b->spawn->socket, '/') + 1, 0);
                else
                    unlink(a->b->spawn->socket);
            }
        }
        free(a->procs);
        free(a->argv);
        free(a->envp);
    }
    free(S.apps);
    S.apps = NULL;
    S.napps = 0;
    if (S.dir_fd >= 0)
        close(S.dir_fd);
    S.dir_fd = -1;
    if (S.dir)
        rmdir(S.dir); /* empty now; a directory only removes when empty */
    free(S.dir);
    S.dir = NULL;
    pt_priv_free(&S.creds);
}
