/* master.c: the master forks N workers that inherit the listeners, then
 * only supervises: SIGCHLD -> reap and respawn (with back-off when a worker
 * keeps dying), QUIT/TERM/INT/USR1 forwarded, HUP reported as not yet
 * supported. Signals arrive through a signalfd in a small event loop. */
#include "first.h"
#include "master.h"
#include "ev.h"
#include "fcgi.h"
#include "fcgi_spawn.h"
#include "log.h"
#include "mime.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct slot {
    pid_t pid;
    uint64_t started;
    unsigned quick_deaths;
    pt_timer respawn;
} slot;

static struct {
    pt_loop loop;
    pt_config *cfg;
    pt_listener *ls;
    size_t nls;
    slot *slots;
    int nslots;
    int stopping; /* 0, SIGQUIT or SIGTERM */
    int sigfd;
    pt_io sigio;
    pt_tlist t_respawn, t_kill;
    pt_timer kill_timer;
    sigset_t sigs;
} M;

static int live_workers(void)
{
    int n = 0;
    for (int i = 0; i < M.nslots; i++)
        n += M.slots[i].pid > 0;
    return n;
}

static void spawn(int i)
{
    pid_t pid = fork();
    if (pid < 0) {
        pt_log_error("fork() of worker %d failed: %s", i, strerror(errno));
        pt_timer_arm(&M.loop, &M.slots[i].respawn, &M.t_respawn);
        return;
    }
    if (pid == 0) {
        close(M.sigfd);
        close(M.loop.epfd);
        pt_spawn_close_fds();
        int rc = pt_worker_main(M.cfg, M.ls, M.nls, i);
        pt_listen_close(M.ls, M.nls);
        pt_config_free(M.cfg);
        pt_log_close_all();
        pt_mime_free();
        /* exit, not _exit: LeakSanitizer checks at exit, and the worker's
         * stdio holds nothing of the master's */
        exit(rc);
    }
    M.slots[i].pid = pid;
    M.slots[i].started = pt_now_ms();
}

static void on_respawn(pt_loop *l, pt_timer *t)
{
    (void)l;
    if (!M.stopping)
        spawn((int)(intptr_t)t->data);
}

static void signal_workers(int sig)
{
    for (int i = 0; i < M.nslots; i++)
        if (M.slots[i].pid > 0)
            kill(M.slots[i].pid, sig);
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i;
        for (i = 0; i < M.nslots && M.slots[i].pid != pid; i++)
            ;
        if (i == M.nslots) {
            pt_spawn_reaped(pid, status); /* a FastCGI app portico runs */
            continue;
        }
        slot *s = &M.slots[i];
        s->pid = 0;
        if (M.stopping) {
            if (WIFSIGNALED(status))
                pt_log_warn("worker %d (pid %d) killed by signal %d during stop", i, (int)pid,
                            WTERMSIG(status));
            continue;
        }
        if (WIFSIGNALED(status))
            pt_log_error("worker %d (pid %d) exited on signal %d; respawning", i, (int)pid,
                         WTERMSIG(status));
        else
            pt_log_error("worker %d (pid %d) exited with status %d; respawning", i, (int)pid,
                         WEXITSTATUS(status));
        /* back-off: a worker that dies right after start would otherwise
         * make the master fork in a tight loop */
        if (pt_now_ms() - s->started < 2000)
            s->quick_deaths++;
        else
            s->quick_deaths = 0;
        if (s->quick_deaths >= 3)
            pt_timer_arm(&M.loop, &s->respawn, &M.t_respawn);
        else
            spawn(i);
    }
    if (M.stopping && live_workers() == 0)
        M.loop.stop = true;
}

static void on_kill_timeout(pt_loop *l, pt_timer *t)
{
    (void)l;
    (void)t;
    pt_log_warn("workers did not stop in time; killing them");
    signal_workers(SIGKILL);
}

static void begin_stop(int sig)
{
    if (M.stopping == SIGTERM || (M.stopping && sig == SIGQUIT))
        return;
    M.stopping = sig;
    pt_spawn_quiesce();
    pt_log_info("%s: stopping %s", sig == SIGQUIT ? "SIGQUIT" : "SIGTERM",
                sig == SIGQUIT ? "gracefully" : "now");
    /* the master's copies of the listeners go too, so that once the workers
     * closed theirs new connections are refused instead of queued */
    for (size_t i = 0; i < M.nls; i++) {
        if (M.ls[i].fd >= 0)
            close(M.ls[i].fd);
        M.ls[i].fd = -1;
    }
    signal_workers(sig);
    uint64_t grace = sig == SIGQUIT ? M.cfg->limits.shutdown_timeout_ms + 5000 : 10000;
    M.t_kill.duration_ms = grace;
    pt_timer_arm(&M.loop, &M.kill_timer, &M.t_kill);
    if (live_workers() == 0)
        M.loop.stop = true;
}

static void on_signal(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            reap();
            break;
        case SIGQUIT:
            begin_stop(SIGQUIT);
            break;
        case SIGTERM:
        case SIGINT:
            begin_stop(SIGTERM);
            break;
        case SIGUSR1:
            pt_log_info("SIGUSR1: reopening logs");
            if (pt_log_reopen() < 0)
                pt_log_error("reopening logs failed: %s", strerror(errno));
            signal_workers(SIGUSR1);
            break;
        case SIGHUP:
            pt_log_warn("SIGHUP: configuration reload is not supported yet; ignored");
            break;
        default:
            break;
        }
    }
}

int pt_master_run(pt_config *cfg, pt_listener *ls, size_t nls)
{
    memset(&M, 0, sizeof(M));
    M.cfg = cfg;
    M.ls = ls;
    M.nls = nls;
    pt_log_set_role("master");
    sigemptyset(&M.sigs);
    int sigs[] = {SIGCHLD, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGHUP};
    for (size_t i = 0; i < PT_ARRAY_LEN(sigs); i++)
        sigaddset(&M.sigs, sigs[i]);
    sigprocmask(SIG_BLOCK, &M.sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    M.sigfd = signalfd(-1, &M.sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (M.sigfd < 0 || pt_loop_init(&M.loop) < 0) {
        pt_log_error("master start-up failed: %s", strerror(errno));
        return 1;
    }
    pt_tlist_init(&M.loop, &M.t_respawn, 1000);
    pt_tlist_init(&M.loop, &M.t_kill, 10000);
    pt_timer_init(&M.kill_timer, on_kill_timeout, NULL);
    pt_io_init(&M.sigio, M.sigfd, on_signal, NULL);
    pt_io_set(&M.loop, &M.sigio, EPOLLIN);

    if (pt_fcgi_shared_init(cfg) < 0) {
        pt_log_error("cannot map shared memory: %s", strerror(errno));
        return 1;
    }
    char err[512];
    if (pt_spawn_start(cfg, &M.loop, err, sizeof(err)) < 0) {
        pt_log_error("%s", err);
        pt_spawn_stop(1000);
        return 1;
    }
    M.nslots = cfg->workers;
    M.slots = calloc((size_t)M.nslots, sizeof(slot));
    if (!M.slots)
        return 1;
    for (int i = 0; i < M.nslots; i++) {
        pt_timer_init(&M.slots[i].respawn, on_respawn, (void *)(intptr_t)i);
        spawn(i);
    }
    pt_log_info("portico %s started, %d worker(s)", PACKAGE_VERSION, M.nslots);
    pt_loop_run(&M.loop);
    /* reap anything left (the kill timer guarantees they go) */
    while (live_workers() > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0)
            break;
        bool worker = false;
        for (int i = 0; i < M.nslots; i++)
            if (M.slots[i].pid == pid) {
                M.slots[i].pid = 0;
                worker = true;
            }
        if (!worker)
            pt_spawn_reaped(pid, status);
    }
    /* the apps go last: in-flight requests of a graceful stop needed them */
    pt_spawn_stop(5000);
    pt_log_info("stopped");
    free(M.slots);
    close(M.sigfd);
    pt_loop_free(&M.loop);
    return 0;
}
