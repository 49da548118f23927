/* test_spawn.c: fcgi_spawn.c's start-up failures, which must leave a state
 * pt_spawn_stop can clean up. Linked with -Wl,--wrap=calloc so a test can
 * make the allocations inside libportico.a fail. */
#include "first.h"
#include "conf.h"
#include "ev.h"
#include "fcgi_spawn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

/* -1: every calloc works; k >= 0: k more work, then all fail */
static int calloc_budget = -1;

void *__wrap_calloc(size_t n, size_t size)
{
    if (calloc_budget == 0)
        return NULL;
    if (calloc_budget > 0)
        calloc_budget--;
    return __real_calloc(n, size);
}

/* Run pt_spawn_stop in a child: true when it returns normally. */
static bool stop_survives(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        pt_spawn_stop(0);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return false;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        printf("#   pt_spawn_stop: %s %d\n", WIFSIGNALED(status) ? "signal" : "exit status",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static pt_config *spawn_conf(const char *socket)
{
    char text[1024], err[1024];
    snprintf(text, sizeof(text),
             "workers = 1;\nbackends = ( { name = \"app\";\n"
             "  spawn = { program = \"/bin/sh\"; processes = 2; socket = \"%s\"; }; } );",
             socket);
    pt_config *c = pt_config_load_string(text, "/nonexistent/t.conf", NULL, err, sizeof(err));
    if (!c)
        printf("#   config: %s\n", err);
    return c;
}

static void test_spawn_start_oom_leaves_stoppable_state(const char *dir)
{
    char sock[512], err[512] = "";
    pt_loop loop;
    snprintf(sock, sizeof(sock), "%s/app.sock", dir);
    pt_config *c = spawn_conf(sock);
    if (!c || pt_loop_init(&loop) < 0) {
        ok(0, "set-up");
        pt_config_free(c);
        return;
    }
    /* the app table itself is allocated, the app's argv/envp/procs are not */
    calloc_budget = 1;
    int rc = pt_spawn_start(c, &loop, err, sizeof(err));
    calloc_budget = -1;
    ok(rc < 0 && strcmp(err, "out of memory") == 0, "start without memory fails (%s)", err);
    ok(access(sock, F_OK) < 0, "no socket bound for an app that could not be set up");
    bool survived = stop_survives();
    ok(survived, "pt_spawn_stop after an out-of-memory start does not crash");
    if (survived) /* the child showed it is safe here too */
        pt_spawn_stop(0);
    pt_loop_free(&loop);
    pt_config_free(c);
}

static void test_spawn_start_bind_failure_is_stoppable(const char *dir)
{
    char sock[512], err[512] = "";
    pt_loop loop;
    snprintf(sock, sizeof(sock), "%s/missing/app.sock", dir);
    pt_config *c = spawn_conf(sock);
    if (!c || pt_loop_init(&loop) < 0) {
        ok(0, "set-up");
        pt_config_free(c);
        return;
    }
    int rc = pt_spawn_start(c, &loop, err, sizeof(err));
    ok(rc < 0 && strstr(err, "cannot listen") != NULL, "socket in a missing directory (%s)", err);
    bool survived = stop_survives();
    ok(survived, "pt_spawn_stop after a bind failure does not crash");
    if (survived)
        pt_spawn_stop(0);
    pt_loop_free(&loop);
    pt_config_free(c);
}

int main(void)
{
    char dir[] = "/tmp/pt-spawn-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 99;
    }
    test_spawn_start_oom_leaves_stoppable_state(dir);
    test_spawn_start_bind_failure_is_stoppable(dir);
    rmdir(dir);
    return tap_done();
}
