/* master.c: the master forks N workers that inherit the listeners, then
 * only supervises: SIGCHLD -> reap and respawn (with back-off when a worker
 * keeps dying), QUIT/TERM/INT/USR1 forwarded, HUP reloads the configuration
 * (validated first; new workers start, the old ones finish their requests
 * and exit; listening sockets are kept). Signals arrive through a signalfd
 * in a small event loop. The master alone tells systemd READY=1 /
 * RELOADING=1 / STOPPING=1 (notify.c). Each generation of workers gets its
 * own client-limit table (limit.c), mapped here before they fork; the
 * status counters (stats.c) are mapped once and outlive every generation. */
#include "first.h"
#include "master.h"
#include "ev.h"
#include "upstream_conn.h"
#include "cache.h"
#include "fcgi_spawn.h"
#include "limit.h"
#include "log.h"
#include "mime.h"
#include "notify.h"
#include "priv.h"
#include "rootfile.h"
#include "acme.h"
#include "stats.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct slot {
    pid_t pid;
    uint64_t started;
    unsigned quick_deaths;
    bool retired; /* an old generation's worker: finishing, not respawned */
    int id;
    uint64_t *beat;    /* shared with the worker: its loop's last wakeup (pt_now_ms) */
    uint64_t stall_ms; /* its configuration's worker_stall_timeout; 0: not watched */
    bool stall_killed; /* the watchdog sent SIGKILL: once */
    int stats_slot;    /* the worker's counters (stats.c), -1 none */
    pt_timer respawn;
} slot;

static struct {
    pt_loop loop;
    pt_config *cfg;
    const pt_cli *cli; /* to load the configuration again on HUP */
    pt_config **kept;  /* older configurations spawned apps still point into */
    size_t nkept;
    pt_listener *ls;
    size_t nls;
    slot **slots; /* current workers first (ids 0..workers-1), retired ones after */
    int nslots;
    int stopping; /* 0, SIGQUIT or SIGTERM */
    int sigfd;
    pt_io sigio;
    pt_tlist t_respawn, t_kill, t_watch, t_tickets;
    pt_timer kill_timer, watch_timer, tickets_timer;
    sigset_t sigs;
    pid_t acme; /* the ACME process (acme.c), 0 none */
} M;

/* The ACME process of the current configuration: a new one after each
 * reload (it reads its settings from the configuration it forks with). */
static void acme_restart(void)
{
    if (M.acme > 0)
        kill(M.acme, SIGTERM);
    M.acme = 0;
    if (M.stopping || !pt_acme_wanted(M.cfg))
        return;
    pid_t master = getpid(), pid = fork();
    if (pid < 0) {
        pt_log_error("fork() of the ACME process failed: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        pt_notify_forget();
        close(M.sigfd);
        close(M.loop.epfd);
        pt_spawn_close_fds();
        pt_tls_tickets_forget();
        for (size_t i = 0; i < M.nls; i++)
            if (M.ls[i].fd >= 0)
                close(M.ls[i].fd);
        pt_acme_main(M.cfg, master);
    }
    M.acme = pid;
}

static int live_workers(void)
{
    int n = 0;
    for (int i = 0; i < M.nslots; i++)
        n += M.slots[i]->pid > 0;
    return n;
}

static int current_workers(void)
{
    int n = 0;
    for (int i = 0; i < M.nslots; i++)
        n += !M.slots[i]->retired;
    return n;
}

static void spawn(int i)
{
    slot *sl = M.slots[i];
    /* fresh before the fork: a worker is not stale before its first wakeup */
    __atomic_store_n(sl->beat, pt_now_ms(), __ATOMIC_RELAXED);
    sl->stall_ms = M.cfg->limits.worker_stall_timeout_ms;
    sl->stall_killed = false;
    if (sl->stats_slot < 0 && (sl->stats_slot = pt_stats_slot_take()) < 0)
        pt_log_warn("worker %d: no status counter slot free (%d workers at once); its "
                    "requests are not counted",
                    sl->id, PT_STATS_SLOTS);
    pid_t pid = fork();
    if (pid < 0) {
        pt_stats_slot_put(sl->stats_slot);
        sl->stats_slot = -1;
        pt_log_error("fork() of worker %d failed: %s", sl->id, strerror(errno));
        pt_timer_arm(&M.loop, &sl->respawn, &M.t_respawn);
        return;
    }
    if (pid == 0) {
        pt_notify_forget(); /* only the master's messages are the service's */
        close(M.sigfd);
        close(M.loop.epfd);
        pt_spawn_close_fds();
        pt_stats_attach(sl->stats_slot);
        pt_tls_tickets_readonly();
        /* before the first request is read: the worker and every CGI
         * program it starts run as "user" from here on (programs as
         * cgi_user when set, and the worker with it as effective uid) */
        const pt_config *cf = M.cfg;
        if (cf->no_new_privs && cf->creds.drop)
            pt_priv_clear_bounding_set();
        if (pt_priv_drop_split(&cf->creds, cf->cgi_creds.drop ? &cf->cgi_creds : NULL) < 0) {
            pt_log_error("worker %d: cannot change to user %s: %s; exiting", sl->id, M.cfg->user,
                         strerror(errno));
            _exit(1);
        }
        pt_worker_heartbeat_at(sl->beat);
        int rc = pt_worker_main(M.cfg, M.ls, M.nls, sl->id);
        /* the ids of "user" again, all three: LeakSanitizer's tracer
         * (a child with our real ids) may attach only then */
        if (cf->cgi_creds.drop && cf->creds.drop &&
            (setegid(getgid()) < 0 || seteuid(getuid()) < 0))
            pt_log_warn("worker %d: cannot reset the effective ids: %s", sl->id, strerror(errno));
        pt_listen_close(M.ls, M.nls);
        pt_config_free(M.cfg);
        pt_log_close_all();
        pt_mime_free();
        /* exit, not _exit: LeakSanitizer checks at exit, and the worker's
         * stdio holds nothing of the master's */
        exit(rc);
    }
    sl->pid = pid;
    sl->started = pt_now_ms();
}

static void on_respawn(pt_loop *l, pt_timer *t)
{
    (void)l;
    slot *sl = t->data;
    if (M.stopping || sl->retired)
        return;
    for (int i = 0; i < M.nslots; i++)
        if (M.slots[i] == sl)
            spawn(i);
}

static void signal_workers(int sig)
{
    for (int i = 0; i < M.nslots; i++)
        if (M.slots[i]->pid > 0)
            kill(M.slots[i]->pid, sig);
}

static void free_slot(slot *sl)
{
    if (sl->beat)
        munmap(sl->beat, sizeof(*sl->beat));
    free(sl);
}

/* Drop retired slots whose worker has exited. */
static void prune(void)
{
    int j = 0;
    for (int i = 0; i < M.nslots; i++) {
        slot *sl = M.slots[i];
        if (sl->retired && sl->pid == 0) {
            pt_timer_stop(&sl->respawn);
            free_slot(sl);
            continue;
        }
        M.slots[j++] = sl;
    }
    M.nslots = j;
}

static void stopped(slot *sl, int sig)
{
    if (!sl->stall_ms) {
        pt_log_warn("worker %d (pid %d) stopped by signal %d; worker_stall_timeout is off, so "
                    "it stays stopped",
                    sl->id, (int)sl->pid, sig);
        return;
    }
    pt_log_error("worker %d (pid %d) stopped by signal %d; killing it", sl->id, (int)sl->pid, sig);
    sl->stall_killed = true;
    kill(sl->pid, SIGKILL); /* a stopped process dies of SIGKILL too */
}

static void reap(void)
{
    int status;
    pid_t pid;
    /* WUNTRACED: a stopped worker (SIGSTOP from anyone allowed to send
     * it) would hold its share of the connections without a word */
    while ((pid = waitpid(-1, &status, WNOHANG | WUNTRACED)) > 0) {
        int i;
        for (i = 0; i < M.nslots && M.slots[i]->pid != pid; i++)
            ;
        if (WIFSTOPPED(status)) {
            if (i < M.nslots)
                stopped(M.slots[i], WSTOPSIG(status));
            continue; /* a spawned FastCGI app's stop is its own business */
        }
        if (i == M.nslots && pid == M.acme) {
            M.acme = 0;
            pt_log_warn("the ACME process (pid %d) ended (status 0x%x)", (int)pid, status);
            continue;
        }
        if (i == M.nslots) {
            pt_spawn_reaped(pid, status); /* a FastCGI app portico runs */
            continue;
        }
        slot *s = M.slots[i];
        s->pid = 0;
        pt_stats_slot_put(s->stats_slot);
        s->stats_slot = -1;
        if (s->retired) {
            if (WIFSIGNALED(status))
                pt_log_warn("old worker %d (pid %d) killed by signal %d after a reload", s->id,
                            (int)pid, WTERMSIG(status));
            continue;
        }
        if (M.stopping) {
            if (WIFSIGNALED(status))
                pt_log_warn("worker %d (pid %d) killed by signal %d during stop", s->id, (int)pid,
                            WTERMSIG(status));
            continue;
        }
        if (WIFSIGNALED(status))
            pt_log_error("worker %d (pid %d) exited on signal %d; respawning", s->id, (int)pid,
                         WTERMSIG(status));
        else
            pt_log_error("worker %d (pid %d) exited with status %d; respawning", s->id, (int)pid,
                         WEXITSTATUS(status));
        /* the counts it held would never be given back */
        pt_upstream_conn_worker_lost(s->id);
        if (pt_limit_table_current()) {
            pt_limit_conn_reset(pt_limit_table_current());
            pt_log_warn("limit_conn counts reset after the loss of worker %d", s->id);
        }
        /* back-off: a worker that dies right after start would otherwise
         * make the master fork in a tight loop */
        pt_stats_worker_restarted();
        if (pt_now_ms() - s->started < 2000)
            s->quick_deaths++;
        else
            s->quick_deaths = 0;
        if (s->quick_deaths >= 3)
            pt_timer_arm(&M.loop, &s->respawn, &M.t_respawn);
        else
            spawn(i);
    }
    prune();
    if (M.stopping && live_workers() == 0)
        M.loop.stop = true;
}

/* The watchdog: a worker whose loop has not woken for worker_stall_timeout
 * (it wakes at least every quarter of it) is stuck, in a loop or a system
 * call that does not return; it is killed and, when reaped, replaced. A
 * worker in a graceful stop keeps its heartbeat, so it is left alone. */
static void on_watch(pt_loop *l, pt_timer *t)
{
    uint64_t now = pt_now_ms();
    for (int i = 0; i < M.nslots; i++) {
        slot *sl = M.slots[i];
        if (sl->pid <= 0 || !sl->stall_ms || sl->stall_killed)
            continue;
        uint64_t beat = __atomic_load_n(sl->beat, __ATOMIC_RELAXED);
        if (now <= beat || now - beat <= sl->stall_ms)
            continue;
        pt_log_error("worker %d (pid %d) made no progress for %llu ms (worker_stall_timeout); "
                     "killing it",
                     sl->id, (int)sl->pid, (unsigned long long)(now - beat));
        sl->stall_killed = true;
        kill(sl->pid, SIGKILL);
    }
    pt_timer_arm(l, t, &M.t_watch);
}

/* Session ticket keys: a new one every tls.ticket_key_rotate (tls.c);
 * a reload that changes the period starts it anew. */
static void on_tickets(pt_loop *l, pt_timer *t)
{
    pt_tls_tickets_rotate();
    pt_timer_arm(l, t, &M.t_tickets);
}

static void tickets_schedule(const pt_config *c)
{
    if (!c->tls.ctx) {
        pt_timer_stop(&M.tickets_timer);
        return;
    }
    if (pt_timer_armed(&M.tickets_timer) && M.t_tickets.duration_ms == c->tls.ticket_rotate_ms)
        return;
    pt_timer_stop(&M.tickets_timer);
    M.t_tickets.duration_ms = c->tls.ticket_rotate_ms;
    pt_timer_arm(&M.loop, &M.tickets_timer, &M.t_tickets);
}

static uint64_t watch_period(const pt_config *c)
{
    uint64_t ms = c->limits.worker_stall_timeout_ms / 4;
    return PT_MAX(PT_MIN(ms, (uint64_t)5000), (uint64_t)100);
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
    pt_notify_stopping(sig == SIGQUIT ? "stopping gracefully" : "stopping");
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
    if (M.acme > 0)
        kill(M.acme, SIGTERM);
    uint64_t grace = sig == SIGQUIT ? M.cfg->limits.shutdown_timeout_ms + 5000 : 10000;
    M.t_kill.duration_ms = grace;
    pt_timer_arm(&M.loop, &M.kill_timer, &M.t_kill);
    if (live_workers() == 0)
        M.loop.stop = true;
}

static void notify_ready(void);

static int add_slot(int id)
{
    slot **ns = realloc(M.slots, (size_t)(M.nslots + 1) * sizeof(*ns));
    if (!ns)
        return -1;
    M.slots = ns;
    slot *sl = calloc(1, sizeof(*sl));
    if (!sl)
        return -1;
    sl->id = id;
    sl->beat =
        mmap(NULL, sizeof(*sl->beat), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sl->beat == MAP_FAILED) {
        free(sl);
        return -1;
    }
    sl->stats_slot = -1;
    pt_timer_init(&sl->respawn, on_respawn, sl);
    M.slots[M.nslots++] = sl;
    return 0;
}

/* The configurations spawned apps still point into, freed once none does. */
static void keep_or_free(pt_config *c)
{
    if (!pt_spawn_uses(c)) {
        pt_config_free(c);
        return;
    }
    pt_config **nk = realloc(M.kept, (M.nkept + 1) * sizeof(*nk));
    if (!nk) {
        pt_log_error("out of memory keeping an old configuration");
        return; /* leaked rather than freed under a running app */
    }
    M.kept = nk;
    M.kept[M.nkept++] = c;
}

static void open_logs(const pt_config *c)
{
    pt_log_set_owner(c->creds.drop ? c->creds.uid : (uid_t)-1);
    if (pt_log_open(c->error_log, c->log_level) < 0)
        pt_log_error("reload: cannot open error log %s: %s; keeping the old one", c->error_log,
                     pt_log_why());
    if (pt_access_log_open(c->access_log) < 0)
        pt_log_error("reload: cannot open access log %s: %s", c->access_log, pt_log_why());
    for (size_t i = 0; i < c->nvhosts; i++)
        if (c->vhosts[i].access_log && pt_access_log_handle(c->vhosts[i].access_log) == -2)
            pt_log_error("reload: cannot open access log %s: %s", c->vhosts[i].access_log,
                         pt_log_why());
}

/* A pid_file changed by a reload: the new one is written, the old one
 * removed (main() removes the current one at exit). */
static void update_pid_file(const char *old, const char *now)
{
    if ((!old && !now) || (old && now && strcmp(old, now) == 0))
        return;
    char why[256];
    if (now && pt_rootfile_write_pid(now, why, sizeof(why)) < 0)
        pt_log_error("reload: cannot write pid file %s: %s", now, why);
    if (old)
        pt_rootfile_remove_pid(old);
}

/* SIGHUP (nginx semantics): the new configuration is loaded and checked
 * first and an error keeps the old one. Then the listeners are carried
 * over (reused where the address stays), new workers start with the new
 * configuration and the old ones get QUIT: they finish what they are doing
 * (CGI scripts and FastCGI exchanges included) and exit. */
static void reload(void)
{
    if (M.stopping)
        return;
    pt_log_info("SIGHUP: reloading the configuration");
    pt_notify_reloading();
    char err[1024] = "";
    pt_config *nc = pt_config_load(M.cli, err, sizeof(err));
    if (nc && pt_config_open_roots(nc, err, sizeof(err)) < 0) {
        pt_config_free(nc);
        nc = NULL;
    }
    /* a new table: zone numbers are the new configuration's */
    pt_limit_table *nt = NULL;
    if (nc && nc->nzones && !(nt = pt_limit_table_new(nc->limits.limit_entries))) {
        snprintf(err, sizeof(err), "cannot map the client limit table: %s", strerror(errno));
        pt_config_free(nc);
        nc = NULL;
    }
    pt_listener *nls = NULL;
    size_t nn = 0;
    if (nc && pt_listen_reload(nc, M.ls, M.nls, &nls, &nn, err, sizeof(err)) < 0) {
        pt_config_free(nc);
        nc = NULL;
        pt_limit_table_free(nt);
    }
    if (!nc) {
        pt_log_error("reload failed: %s; the current configuration stays", err);
        notify_ready();
        return;
    }
    for (size_t i = 0; i < nc->nwarnings; i++)
        pt_log_warn("%s", nc->warnings[i]);
    open_logs(nc);
    const char *om = M.cfg->mime_types, *nm = nc->mime_types;
    if ((om == NULL) != (nm == NULL) || (om && strcmp(om, nm) != 0))
        if (pt_mime_load(nm) < 0)
            pt_log_error("reload: cannot read %s: %s; built-in types only", nm, strerror(errno));
    if (pt_upstream_conn_shared_init(nc) < 0)
        pt_log_error("reload: cannot map shared memory: %s", strerror(errno));
    if (pt_cache_shared_init(nc, err, sizeof(err)) < 0)
        pt_log_error("reload: %s", err);
    pt_limit_table_set_current(nt);
    pt_stats_bind(nc);
    pt_stats_reloaded();
    pt_spawn_rebind(nc);
    update_pid_file(M.cfg->pid_file, nc->pid_file);
    for (size_t i = 0; i < nn; i++)
        if (nls[i].fd >= 0)
            pt_log_info("listening on %s", nls[i].text);

    pt_config *old = M.cfg;
    M.cfg = nc;
    M.ls = nls;
    M.nls = nn;
    /* the old generation finishes and leaves; the new one starts now */
    int nold = M.nslots;
    for (int i = 0; i < nold; i++) {
        slot *sl = M.slots[i];
        if (sl->retired)
            continue;
        sl->retired = true;
        pt_timer_stop(&sl->respawn);
        if (sl->pid > 0)
            kill(sl->pid, SIGQUIT);
    }
    for (int id = 0; id < nc->workers; id++) {
        if (add_slot(id) < 0) {
            pt_log_error("reload: out of memory starting workers");
            break;
        }
        spawn(M.nslots - 1);
    }
    keep_or_free(old);
    size_t k = 0;
    for (size_t i = 0; i < M.nkept; i++) {
        if (pt_spawn_uses(M.kept[i]))
            M.kept[k++] = M.kept[i];
        else
            pt_config_free(M.kept[i]);
    }
    M.nkept = k;
    prune();
    M.t_watch.duration_ms = watch_period(nc);
    tickets_schedule(nc);
    acme_restart();
    pt_log_info("configuration reloaded: %d worker(s)", current_workers());
    notify_ready();
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
            reload();
            break;
        default:
            break;
        }
    }
}

/* READY=1 once every worker is forked: the listeners were bound (or
 * adopted) before, so connections already queue; STATUS= says where. */
static void notify_ready(void)
{
    char status[512];
    size_t off = (size_t)snprintf(status, sizeof(status), "serving on");
    for (size_t i = 0; i < M.nls && off < sizeof(status); i++)
        off += (size_t)snprintf(status + off, sizeof(status) - off, "%s %s", i ? "," : "",
                                M.ls[i].text);
    if (off < sizeof(status))
        snprintf(status + off, sizeof(status) - off, "; %d worker%s", current_workers(),
                 current_workers() == 1 ? "" : "s");
    pt_notify_ready(status);
}

int pt_master_run(pt_config **cfgp, pt_listener **lsp, size_t *nlsp, const pt_cli *cli)
{
    memset(&M, 0, sizeof(M));
    pt_config *cfg = *cfgp;
    M.cfg = cfg;
    M.cli = cli;
    M.ls = *lsp;
    M.nls = *nlsp;
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
    pt_tlist_init(&M.loop, &M.t_watch, watch_period(cfg));
    pt_timer_init(&M.watch_timer, on_watch, NULL);
    pt_timer_arm(&M.loop, &M.watch_timer, &M.t_watch);
    pt_tlist_init(&M.loop, &M.t_tickets, cfg->tls.ticket_rotate_ms);
    pt_timer_init(&M.tickets_timer, on_tickets, NULL);
    tickets_schedule(cfg);
    pt_io_init(&M.sigio, M.sigfd, on_signal, NULL);
    pt_io_set(&M.loop, &M.sigio, EPOLLIN);

    if (pt_upstream_conn_shared_init(cfg) < 0 || pt_stats_init() < 0) {
        pt_log_error("cannot map shared memory: %s", strerror(errno));
        return 1;
    }
    char cerr[512];
    if (pt_cache_shared_init(cfg, cerr, sizeof(cerr)) < 0) {
        pt_log_error("%s", cerr);
        return 1;
    }
    pt_stats_bind(cfg);
    if (cfg->nzones) {
        pt_limit_table *t = pt_limit_table_new(cfg->limits.limit_entries);
        if (!t) {
            pt_log_error("cannot map the client limit table (%u entries): %s",
                         cfg->limits.limit_entries, strerror(errno));
            return 1;
        }
        pt_limit_table_set_current(t);
    }
    char err[512];
    if (pt_spawn_start(cfg, &M.loop, err, sizeof(err)) < 0) {
        pt_log_error("%s", err);
        pt_spawn_stop(1000);
        return 1;
    }
    for (int i = 0; i < cfg->workers; i++) {
        if (add_slot(i) < 0)
            return 1;
        spawn(i);
    }
    acme_restart();
    pt_log_info("portico %s started, %d worker(s)", PACKAGE_VERSION, M.nslots);
    notify_ready();
    pt_loop_run(&M.loop);
    /* reap anything left (the kill timer guarantees they go) */
    while (live_workers() > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0)
            break;
        bool worker = false;
        for (int i = 0; i < M.nslots; i++)
            if (M.slots[i]->pid == pid) {
                M.slots[i]->pid = 0;
                worker = true;
            }
        if (!worker)
            pt_spawn_reaped(pid, status);
    }
    /* the apps go last: in-flight requests of a graceful stop needed them */
    pt_spawn_stop(5000);
    pt_log_info("stopped");
    for (int i = 0; i < M.nslots; i++) {
        pt_timer_stop(&M.slots[i]->respawn);
        free_slot(M.slots[i]);
    }
    pt_timer_stop(&M.watch_timer);
    pt_timer_stop(&M.tickets_timer);
    free(M.slots);
    for (size_t i = 0; i < M.nkept; i++)
        pt_config_free(M.kept[i]);
    free(M.kept);
    /* the caller frees what is current now */
    *cfgp = M.cfg;
    *lsp = M.ls;
    *nlsp = M.nls;
    pt_limit_table_set_current(NULL);
    pt_stats_free();
    close(M.sigfd);
    pt_loop_free(&M.loop);
    return 0;
}
