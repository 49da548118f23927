/* test_cgi_spawn.c: cgi_spawn.c starts programs with exactly the state a
 * CGI program must get (fds 0-2, own process group, default signals, empty
 * mask, limits, working directory), reports failures with errno and leaves
 * no child behind, and leaves the caller's own signal state as it was. */
#include "first.h"
#include "cgi_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

/* Everything fd gives until end of file, as a string in out. */
static void slurp(int fd, char *out, size_t outlen)
{
    size_t n = 0;
    ssize_t r;
    while (n + 1 < outlen && (r = read(fd, out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
}

/* Run "/bin/sh -c script" with stdin from in_fd (-1: /dev/null); the
 * output (stdout and stderr) in out, the exit status in *status. */
static int run(const char *script, int in_fd, const char *dir, const unsigned long long lim[3],
               char *out, size_t outlen, int *status, const char **what)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    pt_cgi_spawn_req rq = {.path = "/bin/sh",
                           .argv = argv,
                           .envp = envp,
                           .fd = {in_fd >= 0 ? in_fd : null, p[1], p[1]},
                           .dir = dir};
    if (lim)
        memcpy(rq.rlimit, lim, sizeof(rq.rlimit));
    const char *w;
    pid_t pid = pt_cgi_spawn(&rq, what ? what : &w);
    int e = errno;
    close(p[1]);
    close(null);
    if (pid > 0)
        slurp(p[0], out, outlen);
    else
        out[0] = 0;
    close(p[0]);
    if (pid < 0) {
        errno = e;
        return -1;
    }
    if (waitpid(pid, status, 0) != pid)
        return -1;
    return 0;
}

/* the hexadecimal mask after "Name:\t" in /proc/self/status output */
static unsigned long long status_mask(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? strtoull(p + strlen(name) + 1, NULL, 16) : ~0ULL;
}

/* Spawn rq with stdout and stderr into a pipe, stdin /dev/null; the output
 * in out. 0 when it ran and exited 0. */
static int run_rq(pt_cgi_spawn_req *rq, char *out, size_t outlen)
{
    int p[2], st;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    rq->fd[0] = null;
    rq->fd[1] = rq->fd[2] = p[1];
    const char *w;
    pid_t pid = pt_cgi_spawn(rq, &w);
    close(p[1]);
    close(null);
    out[0] = 0;
    if (pid > 0)
        slurp(p[0], out, outlen);
    close(p[0]);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static bool no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

int main(void)
{
    char out[8192];
    int st;

    /* the caller's state: SIGPIPE ignored (as in a worker), SIGUSR1
     * caught, SIGHUP and SIGTERM blocked (taken through a signalfd) */
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = (void (*)(int))abort}; /* never delivered */
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t blocked, before, after;
    /* sigprocmask fills only the kernel's 8 bytes of glibc's 128 */
    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGHUP);
    sigaddset(&blocked, SIGTERM);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    sigprocmask(SIG_BLOCK, NULL, &before);

    /* 1-4: signals and process group */
    ok(run("exec cat /proc/self/status", -1, NULL, NULL, out, sizeof(out), &st, NULL) == 0 &&
           WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "a program runs and its output arrives");
    ok(status_mask(out, "SigIgn:") == 0,
       "no signal is ignored in the program (SIGPIPE was here): %llx", status_mask(out, "SigIgn:"));
    ok(status_mask(out, "SigBlk:") == 0, "the program's signal mask is empty");
    ok(run("read -r pid comm state ppid pgrp rest </proc/$$/stat; echo $pgrp $$", -1, NULL, NULL,
           out, sizeof(out), &st, NULL) == 0 &&
           ({
               long a = 0, b = -1;
               sscanf(out, "%ld %ld", &a, &b) == 2 && a == b;
           }),
       "the program leads its own process group (%s)", out);

    /* 5-6: the caller's signal state is untouched */
    sigprocmask(SIG_BLOCK, NULL, &after);
    ok(memcmp(&before, &after, sizeof(before)) == 0, "the caller's signal mask is as it was");
    struct sigaction now;
    sigaction(SIGPIPE, NULL, &now);
    ok(now.sa_handler == SIG_IGN, "SIGPIPE is still ignored in the caller");

    /* 7: fds: exactly 0-2 open in the program, stdin from the given fd */
    int in[2];
    ok(pipe2(in, O_CLOEXEC) == 0 && write(in[1], "input\n", 6) == 6 && close(in[1]) == 0 &&
           run("read l; echo \"$l\"; ls /proc/self/fd | sort -n | tr '\\n' ' '", in[0], NULL, NULL,
               out, sizeof(out), &st, NULL) == 0 &&
           strcmp(out, "input\n0 1 2 3 ") == 0,
       "stdin is the given fd and only 0-2 are open (3 is ls's own): %s", out);
    close(in[0]);

    /* 8: a source fd on 0-2 of the caller does not clobber another */
    int saved0 = dup(0);
    close(0);
    int q[2];
    bool got = pipe2(q, O_CLOEXEC) == 0 && q[0] == 0; /* the pipe's read end is fd 0 */
    if (got) {
        got = write(q[1], "zero\n", 5) == 5 && close(q[1]) == 0;
        got = got && run("cat", q[0], NULL, NULL, out, sizeof(out), &st, NULL) == 0 &&
              strcmp(out, "zero\n") == 0;
        close(q[0]);
    }
    dup2(saved0, 0);
    close(saved0);
    ok(got, "a stdin source that is the caller's fd 0 works (%s)", out);

    /* 9: sources on 0-2 that are not their own target move up first: the
     * write end of the output pipe as the caller's fd 0, for 1 and 2 */
    int o[2], null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    saved0 = dup(0);
    got = pipe2(o, O_CLOEXEC) == 0 && dup2(o[1], 0) == 0 && close(o[1]) == 0 &&
          fcntl(0, F_SETFD, FD_CLOEXEC) == 0;
    if (got) {
        char *sh[] = {"/bin/sh", "-c", "echo out; echo err >&2; cat", NULL};
        char *env[] = {NULL};
        pt_cgi_spawn_req rq = {.path = "/bin/sh", .argv = sh, .envp = env, .fd = {null, 0, 0}};
        const char *w;
        pid_t pid = pt_cgi_spawn(&rq, &w);
        dup2(saved0, 0); /* our last copy of the write end goes */
        if (pid > 0)
            slurp(o[0], out, sizeof(out));
        else
            out[0] = 0;
        got = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
              strcmp(out, "out\nerr\n") == 0;
        close(o[0]);
    }
    dup2(saved0, 0);
    close(saved0);
    close(null);
    ok(got, "stdout and stderr from the caller's fd 0, stdin from another fd (%s)", out);

    /* 10-11: working directory and limits (lowered only: a process without
     * CAP_SYS_RESOURCE cannot raise a hard limit) */
    ok(run("pwd", -1, "/usr", NULL, out, sizeof(out), &st, NULL) == 0 && strcmp(out, "/usr\n") == 0,
       "the program starts in its directory (%s)", out);
    struct rlimit np;
    getrlimit(RLIMIT_NPROC, &np);
    unsigned long long nproc = np.rlim_max < 4321 ? (unsigned long long)np.rlim_max : 4321;
    const unsigned long long lim[3] = {7, 512ULL << 20, nproc};
    char want[64];
    snprintf(want, sizeof(want), "7\n7\n524288\n%llu\n", nproc);
    ok(run("ulimit -Ht; ulimit -St; ulimit -Hv; ulimit -p", -1, NULL, lim, out, sizeof(out), &st,
           NULL) == 0 &&
           strcmp(out, want) == 0,
       "limits are set, soft = hard, before the program runs (%s)", out);

    /* 12-15: failures carry errno and the step, and leave nothing behind */
    char *argv[] = {"/nonexistent/prog", NULL};
    char *envp[] = {NULL};
    pt_cgi_spawn_req bad = {
        .path = "/nonexistent/prog", .argv = argv, .envp = envp, .fd = {0, 1, 2}};
    const char *what = NULL;
    errno = 0;
    ok(pt_cgi_spawn(&bad, &what) == -1 && errno == ENOENT && strcmp(what, "cannot execute") == 0,
       "a missing program: -1, ENOENT, \"%s\"", what);
    ok(no_children(), "and no child is left, not even a zombie");
    errno = 0;
    what = NULL;
    ok(run("true", -1, "/nonexistent-dir", NULL, out, sizeof(out), &st, &what) == -1 &&
           errno == ENOENT && what && strcmp(what, "cannot enter the directory of") == 0,
       "a missing directory: -1, ENOENT, \"%s\"", what ? what : "");
    ok(no_children(), "and no child is left");

    /* 16-18: a program run from the fd that was checked (exec_by_fd), not
     * from its path, with nothing but 0-2 open; a "#!" script, which cannot
     * run from a close-on-exec fd, falls back to its path */
    char *echo[] = {"echo", "by fd", NULL}, *env0[] = {NULL};
    int efd = open("/bin/echo", O_PATH | O_CLOEXEC);
    int high = fcntl(efd, F_DUPFD_CLOEXEC, 50); /* moved down to 3 in the child */
    pt_cgi_spawn_req byfd = {.path = "/nonexistent/prog",
                             .argv = echo,
                             .envp = env0,
                             .exec_by_fd = true,
                             .exec_fd = high};
    ok(efd >= 0 && high >= 50 && run_rq(&byfd, out, sizeof(out)) == 0 &&
           strcmp(out, "by fd\n") == 0,
       "exec_by_fd runs the fd's program, not the path (%s)", out);
    close(high);
    close(efd);
    char *ls[] = {"ls", "/proc/self/fd", NULL};
    int lfd = open("/bin/ls", O_PATH | O_CLOEXEC);
    pt_cgi_spawn_req lsq = {
        .path = "/nonexistent/prog", .argv = ls, .envp = env0, .exec_by_fd = true, .exec_fd = lfd};
    ok(lfd >= 0 && run_rq(&lsq, out, sizeof(out)) == 0 && strcmp(out, "0\n1\n2\n3\n") == 0,
       "run from its fd, the program has only 0-2 open (3 is ls's own): %s", out);
    close(lfd);
    char script[] = "/tmp/pt-test-cgi-spawn-XXXXXX";
    int sfd = mkstemp(script);
    static const char text[] = "#!/bin/sh\necho \"script $0\"\n";
    bool made = sfd >= 0 && write(sfd, text, strlen(text)) == (ssize_t)strlen(text) &&
                fchmod(sfd, 0700) == 0 && close(sfd) == 0;
    int xfd = made ? open(script, O_PATH | O_CLOEXEC) : -1;
    char *sargv[] = {script, NULL};
    pt_cgi_spawn_req sq = {
        .path = script, .argv = sargv, .envp = env0, .exec_by_fd = true, .exec_fd = xfd};
    char want_s[128];
    snprintf(want_s, sizeof(want_s), "script %s\n", script);
    ok(xfd >= 0 && run_rq(&sq, out, sizeof(out)) == 0 && strcmp(out, want_s) == 0,
       "a \"#!\" script falls back to its path and sees it as $0 (%s)", out);
    if (xfd >= 0)
        close(xfd);
    if (made)
        unlink(script);

    /* 19: the working directory entered by the checked directory's fd,
     * not by the path; an fd on 0-2 survives the moves of 0-2 */
    char *pwd[] = {"/bin/sh", "-c", "pwd", NULL};
    int saved = dup(0);
    close(0);
    int dfd = open("/usr", O_PATH | O_DIRECTORY | O_CLOEXEC); /* fd 0 */
    pt_cgi_spawn_req dq = {.path = "/bin/sh",
                           .argv = pwd,
                           .envp = env0,
                           .dir = "/nonexistent-dir",
                           .chdir_by_fd = true,
                           .dir_fd = dfd};
    got = dfd == 0 && run_rq(&dq, out, sizeof(out)) == 0 && strcmp(out, "/usr\n") == 0;
    close(dfd);
    dup2(saved, 0);
    close(saved);
    ok(got, "chdir_by_fd enters the fd's directory, not the path (%s)", out);
    return tap_done();
}
