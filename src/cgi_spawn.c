/* cgi_spawn.c: start a CGI program. vfork + execve with only the system calls
 * the child needs: glibc's posix_spawn (2.36) resets every one of the 64
 * signals in the child one sigaction at a time, maps and unmaps a stack and
 * checks each fd against the fd limit; on a VM where every system call
 * costs a trip through the hypervisor that was a fifth of portico's own CPU
 * per CGI request. The child here shares our memory until execve: it only
 * makes system calls, writes nothing of ours but the error word (and
 * errno, which the caller reads only after a failure), and runs with every
 * signal blocked that the C library lets us block (not its own 32 and 33,
 * sent only by thread cancellation and set*id calls: the worker's one helper
 * thread, authq.c, is never cancelled and nobody changes ids after start)
 * until it empties the mask just before execve. */
#include "first.h"
#include "cgi_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The signals whose disposition is not the default in this process: SIG_IGN
 * survives execve, and a handler must not run in a child that shares our
 * memory. One look per process is enough because dispositions are set at
 * start-up only (portico takes its signals through a signalfd): a handler
 * installed later in a worker would have to be added here. */
static uint64_t changed; /* bit s-1 for signal s (sigset_t refuses 32, 33) */
static bool changed_known;

/* glibc keeps signals 32 and 33 for itself and its sigaction refuses them,
 * but whoever started portico may have left them ignored, and that would
 * pass on to every program: those two go to the kernel directly, on the
 * architectures whose struct sigaction is known here. */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) ||        \
    defined(__powerpc__) || defined(__s390__) || defined(__riscv)
#define PT_RAW_SIGACTION 1
struct pt_ksigaction {
    void (*handler)(int);
    unsigned long flags;
#if !defined(__riscv)
    void (*restorer)(void);
#endif
    unsigned long mask[64 / (8 * sizeof(unsigned long))];
};

static int raw_sigaction(int sig, const struct pt_ksigaction *act, struct pt_ksigaction *old)
{
    return (int)syscall(SYS_rt_sigaction, sig, act, old, (size_t)8);
}
#endif

static void learn_dispositions(void)
{
    changed = 0;
    for (int s = 1; s < NSIG && s <= 64; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP)
            continue;
        if (sigaction(s, NULL, &sa) == 0) {
            if (sa.sa_handler != SIG_DFL)
                changed |= 1ULL << (s - 1);
            continue;
        }
#ifdef PT_RAW_SIGACTION
        struct pt_ksigaction k;
        if (raw_sigaction(s, NULL, &k) == 0 && k.handler != SIG_DFL)
            changed |= 1ULL << (s - 1);
#endif
    }
    changed_known = true;
}

/* What the error word says beside errno: the step that failed. */
enum { STEP_SETUP = 1, STEP_DIR, STEP_LIMITS, STEP_EXEC, STEP_ID };

/* Never inlined, so that its frame lies below every live frame of ours;
 * neither it nor its caller is instrumented by AddressSanitizer, whose
 * clean-up before a call that does not return would unpoison our whole
 * stack from inside the child. */
__attribute__((noinline, no_sanitize_address)) static _Noreturn void
child(const pt_cgi_spawn_req *rq, volatile int *err)
{
    int step = STEP_SETUP;
    static const int res[3] = {RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC};
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    int fd[3] = {rq->fd[0], rq->fd[1], rq->fd[2]};
    int xfd = rq->exec_by_fd ? rq->exec_fd : -1;

    for (int s = 1; s < NSIG && s <= 64; s++) {
        if (!(changed & (1ULL << (s - 1))) || sigaction(s, &dfl, NULL) == 0)
            continue;
#ifdef PT_RAW_SIGACTION
        struct pt_ksigaction k = {.handler = SIG_DFL};
        raw_sigaction(s, &k, NULL);
#endif
    }
    if (setpgid(0, 0) < 0)
        goto fail;
    /* cgi_user: before the directory, so that the program's own rights
     * decide what it may enter; raw system calls, because glibc's wrappers
     * would signal the other threads of a multi-threaded parent, whose
     * memory this child shares. Gid first: it needs the uid's privilege. */
    step = STEP_ID;
    if (rq->change_id && ((rq->groups && syscall(SYS_setgroups, rq->ngroups, rq->groups) < 0) ||
                          syscall(SYS_setresgid, rq->gid, rq->gid, rq->gid) < 0 ||
                          syscall(SYS_setresuid, rq->uid, rq->uid, rq->uid) < 0))
        goto fail;
    /* the program dies with its worker (a stall kill, a crash) instead of
     * running on unobserved; set after the id change, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* before the fds move: dir_fd may be one of 0-2 */
    step = STEP_DIR;
    if (rq->chdir_by_fd ? fchdir(rq->dir_fd) < 0 : rq->dir && chdir(rq->dir) < 0)
        goto fail;
    step = STEP_SETUP;
    /* a source on 0-2 (a worker started with a closed stdin, say) moves up
     * first, so that no dup2 below overwrites another's source (or the
     * program's fd) */
    if (xfd >= 0 && xfd < 3 && (xfd = fcntl(xfd, F_DUPFD_CLOEXEC, 3)) < 0)
        goto fail;
    for (int i = 0; i < 3; i++)
        if (fd[i] < 3 && fd[i] != i && (fd[i] = fcntl(fd[i], F_DUPFD_CLOEXEC, 3)) < 0)
            goto fail;
    for (int i = 0; i < 3; i++)
        if (fd[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(fd[i], i) < 0)
            goto fail;
    step = STEP_LIMITS;
    /* set before execve: the program never runs an instruction without them */
    for (int i = 0; i < 3; i++) {
        struct rlimit rl = {(rlim_t)rq->rlimit[i], (rlim_t)rq->rlimit[i]};
        if (rq->rlimit[i] && setrlimit(res[i], &rl) < 0)
            goto fail;
    }
    /* the checked program's fd waits on 3, close-on-exec */
    if (xfd > 3 && (xfd = dup3(xfd, 3, O_CLOEXEC)) < 0)
        goto fail;
    /* set-user-ID programs and file capabilities give nothing from here
     * on, for the program and everything it starts (no_new_privs) */
    step = STEP_SETUP;
    if (rq->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        goto fail;
#ifdef SYS_close_range
    /* every fd is O_CLOEXEC already; this is the belt (fails harmlessly
     * with ENOSYS before Linux 5.9) */
    syscall(SYS_close_range, xfd >= 0 ? 4U : 3U, ~0U, 0U);
#endif
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    step = STEP_EXEC;
    /* run what the resolver checked, not what its name may lead to now.
     * A "#!" script cannot run from a close-on-exec fd (the kernel would
     * hand its interpreter /dev/fd/3, closed by then: ENOENT), and a
     * script must see its real name in argv: those go by the path */
    if (xfd >= 0 &&
        (syscall(SYS_execveat, xfd, "", rq->argv, rq->envp, AT_EMPTY_PATH) == 0 || errno != ENOENT))
        goto fail;
    execve(rq->path, rq->argv, rq->envp);
fail:
    *err = step << 16 | (errno > 0 && errno < 0xffff ? errno : EINVAL);
    _exit(127);
}

__attribute__((no_sanitize_address)) pid_t pt_cgi_spawn(const pt_cgi_spawn_req *rq,
                                                        const char **what)
{
    static const char *const steps[] = {"cannot execute",
                                        "cannot set up the process of",
                                        "cannot enter the directory of",
                                        "cannot set the resource limits of",
                                        "cannot execute",
                                        "cannot change to cgi_user for"};
    volatile int err = 0; /* written by the child, which shares our memory */
    *what = steps[0];
    sigset_t all, old;
    if (!changed_known)
        learn_dispositions();
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = vfork();
    if (pid == 0)
        child(rq, &err);
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        errno = e;
        return -1;
    }
    if (err) {
        /* the child has gone through _exit: reap it here, it was never
         * anybody's (a tool turning vfork into fork, valgrind, cannot share
         * the error word: there the program's exit status 127 tells) */
        e = err & 0xffff;
        int st = err >> 16;
        *what = steps[st >= 0 && st <= STEP_ID ? st : 0];
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = e;
        return -1;
    }
    return pid;
}
