/* cgi.c: the CGI gateway (RFC 3875). A request's script is found by walking
 * the path (the first regular file is the script, the rest PATH_INFO),
 * spawned (cgi_spawn.c) in its own process group with a clean signal
 * state, fed the collected body through a non-blocking pipe while its
 * stdout is read at the same time (no deadlock for scripts that echo while
 * reading), and its header block goes through cgi_resp.c. */
#include "first.h"
#include "cgi.h"
#include "handler.h"
#include "cgi_env.h"
#include "cgi_resp.h"
#include "cgi_spawn.h"
#include "errlines.h"
#include "conn.h"
#include "gw.h"
#include "resp.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PT_CGI_READ 65536
#define PT_CGI_PATH "/usr/local/bin:/usr/bin:/bin"

/* A worker's CGI state (w->cgi). */
struct pt_cgi_state {
    pt_cgi *all;      /* spawned, not yet freed */
    unsigned running; /* spawned, not yet reaped */
    pt_gw_queue q;    /* waiting for a slot (cgi_max_procs) */
    pt_tlist t_queue, t_kill;
};

struct pt_cgi {
    pt_gw gw; /* first: the response side (gw.c) */
    pt_worker *w;
    pt_cgi *next, *prev;
    pid_t pid;
    bool reaped;
    int wstatus;
    int fd_in, fd_out, fd_err;
    pt_io io_in, io_out, io_err;
    uint64_t in_off;
    bool killed;
    pt_timer timer;
    pt_tlist *tl_timeout;
    int kill_stage;
    /* boot-time clock ticks (the unit of /proc/PID/stat's start time) at
     * the spawn and at the reap: a process the worker adopted (it is the
     * child subreaper) that started in between may be this program's */
    unsigned long long born, died;
    char *script;
    char client[64];
    pt_errlines err;
};

static void on_out(pt_loop *l, pt_io *io, uint32_t ev);
static void on_in(pt_loop *l, pt_io *io, uint32_t ev);
static void on_err(pt_loop *l, pt_io *io, uint32_t ev);
static void on_timer(pt_loop *l, pt_timer *t);
static void finish_output(pt_cgi *g);
static void gw_drain(pt_gw *gw);
static void gw_detach(pt_gw *gw);
static void gw_abort(pt_gw *gw);

static const pt_gw_ops cgi_ops = {gw_drain, gw_detach, gw_abort};

/* ---- resolution --------------------------------------------------------- */

static const char *interpreter_for(const pt_location *loc, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < loc->ninterpreters; i++) {
        size_t el = strlen(loc->interpreters[i]);
        if (nl > el && strcmp(name + nl - el, loc->interpreters[i]) == 0)
            return loc->interp_paths[i];
    }
    return NULL;
}

/* ---- process bookkeeping ------------------------------------------------ */

static void close_io(pt_cgi *g, pt_io *io, int *fd)
{
    if (*fd < 0)
        return;
    pt_io_remove(&g->w->loop, io);
    close(*fd);
    *fd = -1;
}

static void maybe_free(pt_cgi *g)
{
    if (g->gw.r || !g->reaped || g->fd_out >= 0 || g->fd_err >= 0 || g->fd_in >= 0)
        return;
    pt_timer_stop(&g->timer);
    if (g->prev)
        g->prev->next = g->next;
    else
        g->w->cgi->all = g->next;
    if (g->next)
        g->next->prev = g->prev;
    pt_gw_release(&g->gw);
    free(g->script);
    free(g);
}

static unsigned long long boot_ticks(void)
{
    static long hz;
    struct timespec ts;
    if (!hz && (hz = sysconf(_SC_CLK_TCK)) <= 0)
        hz = 100;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
           (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)hz);
}

/* ---- descendants that left the process group ---------------------------- */

typedef struct proc_ent {
    pid_t pid, ppid;
    unsigned long long start;
    bool mark;
} proc_ent;

/* Every process's parent and start time, from /proc (the per-task
 * "children" lists are a kernel option, so not relied on). Only at the
 * end of a kill grace, which is rare: never on a request's normal path. */
static proc_ent *proc_table(size_t *n)
{
    DIR *d = opendir("/proc");
    proc_ent *t = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        /* after the command name, which may hold anything: "S ppid ..."
         * and the start time as the 20th field after it */
        char *p = strrchr(buf, ')');
        int ppid;
        unsigned long long start;
        if (!p || sscanf(p + 2,
                         "%*c %d %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                         "%*s %*s %*s %llu",
                         &ppid, &start) != 2)
            continue;
        if (*n == cap) {
            proc_ent *nt = realloc(t, (cap = cap ? cap * 2 : 256) * sizeof(*t));
            if (!nt)
                break;
            t = nt;
        }
        t[(*n)++] = (proc_ent){(pid_t)atoi(de->d_name), (pid_t)ppid, start, false};
    }
    closedir(d);
    return t;
}

/* Which came first: clock ticks are coarse (10 ms), so within one tick
 * the pid decides (pids are handed out in increasing order, and a pid
 * wrap within one tick is not a concern). */
static bool before(unsigned long long ta, pid_t pa, unsigned long long tb, pid_t pb)
{
    return ta < tb || (ta == tb && pa < pb);
}

/* When the recent programs of this worker started: an orphan that started
 * after a later program is taken for that one's, not for an earlier one's.
 * Older spawns than the ring holds are unknown. */
#define PT_CGI_BORN_RING 256
static struct {
    unsigned long long born;
    pid_t pid;
} born_ring[PT_CGI_BORN_RING];
static unsigned long born_count;

static bool spawned_between(const pt_cgi *g, const proc_ent *e)
{
    unsigned long n = PT_MIN(born_count, (unsigned long)PT_CGI_BORN_RING);
    for (unsigned long i = 0; i < n; i++)
        if (before(g->born, g->pid, born_ring[i].born, born_ring[i].pid) &&
            before(born_ring[i].born, born_ring[i].pid, e->start, e->pid))
            return true;
    return false;
}

static bool is_program(pt_worker *w, pid_t pid)
{
    for (pt_cgi *o = w->cgi->all; o; o = o->next)
        if (o->pid == pid && !o->reaped)
            return true;
    return false;
}

/* Marks g's program (while not reaped), the processes the worker adopted
 * that started during g's life and before the next program (its orphans,
 * setsid or not; nothing labels an orphan with its program, so one of a
 * program started in the same clock tick, or of one still running that
 * started before g, is taken too) and all their descendants; signals the
 * newly marked; returns how many. */
static size_t mark_and_signal(pt_cgi *g, proc_ent *t, size_t n, int sig)
{
    pid_t me = getpid();
    size_t hit = 0;
    for (size_t i = 0; i < n; i++) {
        proc_ent *e = &t[i];
        if (e->mark || e->pid == me)
            continue;
        if ((!g->reaped && e->pid == g->pid) ||
            (e->ppid == me && before(g->born, g->pid, e->start, e->pid) &&
             (!g->reaped || e->start <= g->died) && !spawned_between(g, e) &&
             !is_program(g->w, e->pid))) {
            e->mark = true;
            hit++;
        }
    }
    for (bool more = hit > 0; more;) {
        more = false;
        for (size_t i = 0; i < n; i++) {
            if (t[i].mark)
                continue;
            for (size_t k = 0; k < n; k++)
                if (t[k].mark && t[k].pid == t[i].ppid) {
                    t[i].mark = more = true;
                    hit++;
                    break;
                }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (t[i].mark && t[i].pid > 1)
            kill(t[i].pid, sig);
    return hit;
}

/* SIGKILL for everything g left behind, wherever it moved (setsid, double
 * fork): stopped first, so that none forks a child this walk misses, then
 * a second look for children forked before the stop, then killed. */
static void kill_descendants(pt_cgi *g)
{
    size_t n;
    proc_ent *t = proc_table(&n);
    if (!t)
        return;
    if (mark_and_signal(g, t, n, SIGSTOP) > 0) {
        size_t n2;
        proc_ent *t2 = proc_table(&n2);
        if (t2) {
            /* the same marks in the new table (same pid and start time:
             * a pid freed and taken again in between is someone else's,
             * stopped by mistake and continued), then the children found
             * now; only processes of the second look are killed */
            for (size_t k = 0; k < n; k++) {
                if (!t[k].mark)
                    continue;
                for (size_t i = 0; i < n2; i++) {
                    if (t2[i].pid != t[k].pid)
                        continue;
                    if (t2[i].start == t[k].start)
                        t2[i].mark = true;
                    else
                        kill(t2[i].pid, SIGCONT);
                }
            }
            mark_and_signal(g, t2, n2, SIGSTOP);
            for (size_t i = 0; i < n2; i++)
                if (t2[i].mark && t2[i].pid > 1)
                    kill(t2[i].pid, SIGKILL);
            free(t2);
        } else {
            for (size_t i = 0; i < n; i++)
                if (t[i].mark && t[i].pid > 1)
                    kill(t[i].pid, SIGKILL);
        }
    }
    free(t);
}

static void kill_group(pt_cgi *g, int sig)
{
    /* the whole process group (setpgid(0) at spawn), also after the leader
     * was reaped: Linux does not reuse a pid while it names a live group */
    if (g->pid > 0)
        kill(-g->pid, sig);
}

/* TERM now, KILL after the grace period. */
static void terminate(pt_cgi *g)
{
    if (g->kill_stage > 0 || (g->reaped && g->fd_out < 0 && g->fd_err < 0))
        return;
    g->killed = true;
    g->kill_stage = 1;
    kill_group(g, SIGTERM);
    pt_timer_arm(&g->w->loop, &g->timer, &g->w->cgi->t_kill);
}

static void start_queued(pt_worker *w)
{
    while (w->cgi->q.head && w->cgi->running < w->cfg->limits.cgi_max_procs) {
        pt_req *r = pt_gw_queue_pop(&w->cgi->q);
        pt_cgi_start(r);
        pt_resp_kick(r);
    }
}

unsigned pt_cgi_running(const pt_worker *w)
{
    return w->cgi ? w->cgi->running : 0;
}

void pt_cgi_reap(pt_worker *w)
{
    int status;
    pid_t pid;
    if (!w->cgi)
        return;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        pt_cgi *g = w->cgi->all;
        while (g && g->pid != pid)
            g = g->next;
        if (!g)
            continue;
        g->reaped = true;
        g->died = boot_ticks(); /* an orphan of g started before: not after */
        g->wstatus = status;
        w->cgi->running--;
        if (WIFSIGNALED(status) && !g->killed)
            pt_log_warn("cgi %s [pid %d] killed by signal %d, client: %s", g->script, (int)pid,
                        WTERMSIG(status), g->client);
        maybe_free(g);
    }
    start_queued(w);
}

/* ---- output to the client ----------------------------------------------- */

static void fail(pt_cgi *g, int status, const char *why)
{
    pt_log_error("cgi %s [pid %d]: %s, client: %s", g->script, (int)g->pid, why, g->client);
    terminate(g);
    pt_gw_fail(&g->gw, status, why);
}

static void on_out(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    pt_cgi *g = io->data;
    pt_req *kick = NULL; /* output queued for it, not yet kicked */
    for (;;) {
        char buf[PT_CGI_READ];
        ssize_t n = read(g->fd_out, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            n = 0;
        }
        if (n == 0) {
            close_io(g, &g->io_out, &g->fd_out);
            if (g->gw.r)
                finish_output(g); /* completes (and kicks) the response, may free g */
            else
                maybe_free(g);
            return;
        }
        if (g->gw.r && g->kill_stage == 0) /* output resets the no-output timeout */
            pt_timer_arm(&g->w->loop, &g->timer, g->tl_timeout);
        pt_req *r = g->gw.r;
        if (!r)
            return; /* detached: drain and drop */
        char why[200];
        int rc = pt_gw_output(&g->gw, buf, (size_t)n, why, sizeof(why));
        if (rc == PT_GW_BAD) {
            fail(g, 502, why);
            return;
        }
        if (rc != PT_GW_OK || g->gw.r != r)
            return;
        if (pt_gw_backlogged(&g->gw)) {
            /* the client is slow, not the script: no output timeout while
             * the script waits for us (the client has its write timeout) */
            pt_io_set(&g->w->loop, &g->io_out, 0);
            if (g->kill_stage == 0)
                pt_timer_stop(&g->timer);
            pt_resp_kick(r);
            return;
        }
        if (!(ev & EPOLLHUP)) {
            pt_resp_kick(r);
            return;
        }
        /* the program closed its stdout: read on to the end of file, so
         * that the end of the response leaves in the same write */
        kick = r;
    }
    if (kick && g->gw.r == kick)
        pt_resp_kick(kick);
}

static void finish_output(pt_cgi *g)
{
    char why[200];
    /* before pt_gw_end: completing the response may detach and free g */
    pt_timer_stop(&g->timer);
    if (pt_gw_end(&g->gw, why, sizeof(why)) == PT_GW_BAD) {
        if (WIFSIGNALED(g->wstatus) && g->reaped)
            snprintf(why, sizeof(why), "killed by signal %d before its header block",
                     WTERMSIG(g->wstatus));
        fail(g, 502, why);
    }
}

/* ---- stdin and stderr --------------------------------------------------- */

static void on_in(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    pt_cgi *g = io->data;
    pt_req *r = g->gw.r;
    if (!r) {
        close_io(g, &g->io_in, &g->fd_in);
        maybe_free(g);
        return;
    }
    char buf[PT_CGI_READ];
    uint64_t left = r->body.len - g->in_off;
    size_t want = (size_t)PT_MIN(left, (uint64_t)sizeof(buf));
    ssize_t got = pt_body_read(&r->body, g->in_off, buf, want);
    ssize_t wr = got > 0 ? write(g->fd_in, buf, (size_t)got) : -1;
    if (wr < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (wr > 0)
        g->in_off += (uint64_t)wr;
    /* EPIPE means the script stopped reading its input: fine (RFC 3875
     * does not oblige it to read everything) */
    if (wr < 0 || g->in_off >= r->body.len)
        close_io(g, &g->io_in, &g->fd_in);
}

static void emit_err(void *ctx, const char *text, unsigned dropped)
{
    pt_cgi *g = ctx;
    if (text)
        pt_log_warn("cgi %s [pid %d]: %s, client: %s", g->script, (int)g->pid, text, g->client);
    else
        pt_log_warn("cgi %s [pid %d]: %u stderr lines dropped (rate limit), client: %s", g->script,
                    (int)g->pid, dropped, g->client);
}

static void on_err(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    pt_cgi *g = io->data;
    char buf[4096];
    ssize_t n = read(g->fd_err, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pt_errlines_flush(&g->err, g->w->loop.now, emit_err, g);
        close_io(g, &g->io_err, &g->fd_err);
        maybe_free(g);
        return;
    }
    pt_errlines_feed(&g->err, g->w->loop.now, buf, (size_t)n, emit_err, g);
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(pt_loop *l, pt_timer *t)
{
    (void)l;
    pt_cgi *g = t->data;
    if (g->kill_stage == 1) {
        g->kill_stage = 2;
        kill_group(g, SIGKILL);
        kill_descendants(g);
        /* the worker's ends of the pipes go now, whatever still holds the
         * others: nothing it writes would be read any more */
        if (!g->gw.r) {
            close_io(g, &g->io_in, &g->fd_in);
            close_io(g, &g->io_out, &g->fd_out);
            close_io(g, &g->io_err, &g->fd_err);
            maybe_free(g);
        }
        return;
    }
    if (g->kill_stage == 2)
        return;
    if (g->gw.r) {
        fail(g, 504, "no output within the timeout; killed");
        return;
    }
    /* detached and still running past its timeout */
    pt_log_warn("cgi %s [pid %d] still running after its response; killed", g->script, (int)g->pid);
    terminate(g);
}

/* ---- spawning ----------------------------------------------------------- */

/* The stdin of programs answering a request without a body: end of file
 * at once, as from a pipe closed at our end, without the pipe (one per
 * worker, opened at the first such request). */
static int null_fd = -1;

/* Our ends of the pipes: fresh, so no F_GETFL to learn their flags. */
static void nonblock(int fd)
{
    if (fd >= 0)
        fcntl(fd, F_SETFL, O_NONBLOCK);
}

/* Does the checked file start with "#!"? Such a script cannot be run from
 * its fd and keep its name (cgi_spawn.c): it goes by its path, and failing
 * an execveat first would cost a whole exec set-up per request. */
static bool is_script(int fd)
{
    char m[2];
    return fd >= 0 && pread(fd, m, 2, 0) == 2 && m[0] == '#' && m[1] == '!';
}

/* May we execute the file fd refers to? faccessat2 (Linux 5.8) asks of the
 * fd itself; before it, the kernel's own link to the fd in /proc does. */
/* Executable by the effective uid (cgi_user when set, which is who will
 * run it), asked of the file that was checked. */
static bool fd_executable(int fd)
{
    if (faccessat(fd, "", X_OK, AT_EMPTY_PATH | AT_EACCESS) == 0)
        return true;
    if (errno != ENOSYS && errno != EINVAL)
        return false;
    char proc[32];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    return faccessat(AT_FDCWD, proc, X_OK, AT_EACCESS) == 0;
}

static int spawn(pt_cgi *g, pt_req *r, const pt_gw_script *scr, const char *interp,
                 const char **what)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    char **envp = NULL;
    int rc = -1;
    bool body = r->body.len > 0;
    if (!body && null_fd < 0)
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (((body || null_fd < 0) && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
        pipe2(err, O_CLOEXEC) < 0)
        goto out;

    pt_gw_env ge;
    pt_gw_env_init(&ge, r, scr, PT_CGI_PATH);
    const pt_location *loc = r->loc;
    envp = pt_cgi_envp(&ge.req);
    if (!envp)
        goto out;

    /* the child (cgi_spawn.c): pipes on 0-1-2, the script's directory, nothing
     * else open, default signal dispositions and an empty mask, its own
     * process group so a timeout can kill everything it started, and the
     * location's resource limits */
    char *argv[3];
    if (interp) {
        argv[0] = (char *)interp;
        argv[1] = (char *)scr->filename;
        argv[2] = NULL;
    } else {
        argv[0] = (char *)scr->filename;
        argv[1] = NULL;
    }
    pt_cgi_spawn_req sr = {
        .path = argv[0],
        .argv = argv,
        .envp = envp,
        .fd = {in[0] >= 0 ? in[0] : null_fd, out[1], err[1]},
        .exec_by_fd = !interp && scr->fd >= 0 && !is_script(scr->fd),
        .exec_fd = scr->fd,
        .dir = scr->dir,
        .chdir_by_fd = scr->dir_fd >= 0,
        .dir_fd = scr->dir_fd,
        .rlimit = {loc->rlimit_cpu, loc->rlimit_as, loc->rlimit_nproc},
        .no_new_privs = r->conn->w->cfg->no_new_privs,
    };
    const pt_creds *pc = &r->conn->w->cfg->cgi_creds;
    if (pc->drop) {
        /* a worker that dropped root holds cgi_user's groups already */
        sr.change_id = true;
        sr.uid = pc->uid;
        sr.gid = pc->gid;
        if (!r->conn->w->cfg->creds.drop) {
            sr.groups = pc->groups;
            sr.ngroups = pc->ngroups;
        }
    }
    g->born = boot_ticks();
    g->pid = pt_cgi_spawn(&sr, what);
    if (g->pid < 0)
        goto out;
    born_ring[born_count % PT_CGI_BORN_RING].born = g->born;
    born_ring[born_count++ % PT_CGI_BORN_RING].pid = g->pid;
    rc = 0;
out:;
    int e = errno;
    free(envp);
    /* the child's ends are the child's now */
    if (in[0] >= 0)
        close(in[0]);
    if (out[1] >= 0)
        close(out[1]);
    if (err[1] >= 0)
        close(err[1]);
    if (rc < 0) {
        if (in[1] >= 0)
            close(in[1]);
        if (out[0] >= 0)
            close(out[0]);
        if (err[0] >= 0)
            close(err[0]);
        errno = e;
        return -1;
    }
    g->fd_in = in[1];
    g->fd_out = out[0];
    g->fd_err = err[0];
    nonblock(g->fd_in);
    nonblock(g->fd_out);
    nonblock(g->fd_err);
    return 0;
}

void pt_cgi_start(pt_req *r)
{
    pt_worker *w = r->conn->w;
    const pt_limits *lim = &w->cfg->limits;
    pt_gw_script scr;
    int st = pt_gw_resolve(r, &scr, true);
    const char *interp = NULL;
    if (!st) {
        const char *base = strrchr(scr.filename, '/');
        interp = interpreter_for(r->loc, base ? base + 1 : scr.filename);
        /* not executable (by cgi_user, the effective uid) and no
         * interpreter: never its source (asked of the file that was
         * checked; a location's program is configured) */
        if (!interp && (scr.fd >= 0 ? !fd_executable(scr.fd)
                                    : faccessat(AT_FDCWD, scr.filename, X_OK, AT_EACCESS) < 0))
            st = 403;
    }
    if (st) {
        pt_gw_script_close(&scr);
        pt_gw_reject(r, st, st == 403 ? "not an executable CGI script" : "no such CGI script");
        return;
    }
    if (w->cgi->running >= lim->cgi_max_procs) {
        pt_gw_script_close(&scr); /* resolved again when its turn comes */
        if (w->cgi->q.len >= lim->cgi_queue) {
            pt_conn_reject(r, 503, "CGI process limit reached and the queue is full", false);
            return;
        }
        /* wait for a slot, bounded in count and time */
        pt_gw_queue_push(&w->cgi->q, r, &w->cgi->t_queue,
                         "no CGI slot free within cgi_queue_timeout");
        return;
    }
    const char *base = strrchr(scr.filename, '/');
    bool nph = strncmp(base ? base + 1 : scr.filename, "nph-", 4) == 0;
    if (nph && pt_resp_raw(r, NULL, 0) < 0) {
        /* RFC 3875 §5: an NPH script writes the HTTP/1.1 response itself,
         * which an HTTP/2 stream cannot carry: refused before it runs */
        pt_gw_script_close(&scr);
        pt_conn_reject(r, 502, "an nph- script cannot answer over HTTP/2", false);
        return;
    }
    pt_cgi *g = calloc(1, sizeof(*g));
    if (!g || !(g->script = strdup(scr.filename))) {
        pt_gw_script_close(&scr);
        free(g);
        pt_conn_reject(r, 500, "out of memory", true);
        return;
    }
    g->w = w;
    g->fd_in = g->fd_out = g->fd_err = -1;
    snprintf(g->client, sizeof(g->client), "%s:%u", pt_conn_req_ip(r), r->peer_port);
    pt_gw_init(&g->gw, &cgi_ops, r, r->loc->buffering, nph);
    const char *what = "cannot execute";
    int sprc = spawn(g, r, &scr, interp, &what);
    pt_gw_script_close(&scr);
    if (sprc < 0) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "%s %s: %s", what, interp ? interp : scr.filename,
                 strerror(errno));
        pt_log_error("cgi %s: %s, client: %s", scr.filename, why, g->client);
        pt_gw_release(&g->gw);
        free(g->script);
        free(g);
        pt_conn_reject(r, 502, why, false);
        return;
    }
    w->cgi->running++;
    PT_STATS_ADD(pt_stats_my->cgi_started, 1);
    pt_gw_attach(&g->gw, r);
    g->next = w->cgi->all;
    if (w->cgi->all)
        w->cgi->all->prev = g;
    w->cgi->all = g;
    pt_io_init(&g->io_in, g->fd_in, on_in, g);
    pt_io_init(&g->io_out, g->fd_out, on_out, g);
    pt_io_init(&g->io_err, g->fd_err, on_err, g);
    if (r->body.len > 0)
        pt_io_set(&w->loop, &g->io_in, EPOLLOUT);
    else
        close_io(g, &g->io_in, &g->fd_in);
    pt_io_set(&w->loop, &g->io_out, EPOLLIN);
    pt_io_set(&w->loop, &g->io_err, EPOLLIN);
    pt_timer_init(&g->timer, on_timer, g);
    g->tl_timeout = pt_worker_tlist(w, r->loc->timeout_ms);
    pt_timer_arm(&w->loop, &g->timer, g->tl_timeout);
    r->conn->state = PT_CS_WRITE;
}

static void gw_drain(pt_gw *gw)
{
    pt_cgi *g = (pt_cgi *)gw;
    if (g->fd_out >= 0 && !(g->io_out.events & EPOLLIN) && !pt_gw_backlogged(gw)) {
        pt_io_set(&g->w->loop, &g->io_out, EPOLLIN);
        if (g->kill_stage == 0)
            pt_timer_arm(&g->w->loop, &g->timer, g->tl_timeout);
    }
}

static void gw_detach(pt_gw *gw)
{
    pt_cgi *g = (pt_cgi *)gw;
    pt_gw_unlink(gw);
    if (!g->reaped && g->kill_stage == 0) /* bounded: it must exit within its timeout */
        pt_timer_arm(&g->w->loop, &g->timer, g->tl_timeout);
    /* keep draining stdout/stderr so the script never blocks on a full pipe */
    if (g->fd_out >= 0)
        pt_io_set(&g->w->loop, &g->io_out, EPOLLIN);
    if (g->fd_in >= 0)
        close_io(g, &g->io_in, &g->fd_in);
    maybe_free(g);
}

static void gw_abort(pt_gw *gw)
{
    terminate((pt_cgi *)gw);
    gw_detach(gw);
}

void pt_cgi_shutdown(pt_worker *w)
{
    if (!w->cgi)
        return;
    for (pt_cgi *g = w->cgi->all; g; g = g->next)
        kill_group(g, SIGKILL);
    while (w->cgi->all) {
        pt_cgi *g = w->cgi->all;
        pt_gw_unlink(&g->gw);
        close_io(g, &g->io_in, &g->fd_in);
        close_io(g, &g->io_out, &g->fd_out);
        close_io(g, &g->io_err, &g->fd_err);
        if (!g->reaped && g->pid > 0 && waitpid(g->pid, NULL, 0) == g->pid)
            w->cgi->running--;
        g->reaped = true;
        maybe_free(g);
    }
    free(w->cgi);
    w->cgi = NULL;
}

static int cgi_worker_init(pt_worker *w)
{
    const pt_limits *lim = &w->cfg->limits;
    if (!(w->cgi = calloc(1, sizeof(*w->cgi))))
        return -1;
    pt_tlist_init(&w->loop, &w->cgi->t_queue, lim->cgi_queue_timeout_ms);
    pt_tlist_init(&w->loop, &w->cgi->t_kill, lim->cgi_kill_grace_ms);
    w->cgi->q.gauge = &pt_stats_my->cgi_queued;
    return 0;
}

static const pt_handler_worker cgi_worker = {
    .init = cgi_worker_init,
    .child = pt_cgi_reap,
    .stop = pt_cgi_shutdown,
};

const pt_handler pt_cgi_handler = {
    .name = "cgi",
    .kind = PT_H_CGI,
    .flags = PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR,
    .start = pt_cgi_start,
    .worker = &cgi_worker,
};
