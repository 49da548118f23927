/* hello-fcgi: portico's sample FastCGI application (libfcgi's fcgiapp.h API).
 * By default it serves on fd 0 (FCGI_LISTENSOCK_FILENO), the way portico's
 * `spawn` and spawn-fcgi start it; `-s ADDR` opens its own socket instead.
 *
 * What it answers, by PATH_INFO:
 *   /env     text/plain, one NAME=VALUE line per FastCGI param, sorted
 *   /echo    the request body back (application/octet-stream)
 *   /status  "Status: 418 I'm a teapot"
 *   /stderr  a line on FCGI_STDERR (the server's error log), then 200
 *   /sleep   answers after QUERY_STRING milliseconds (at most 60000), so a
 *            test can keep one process busy and reach the next one
 *   other    "Hello from FastCGI: pid P, request N"
 *
 * SIGTERM: exit at once when idle, after the current request otherwise. */
#include <errno.h>
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t in_request;
static volatile sig_atomic_t stop_requested;

static void on_sigterm(int sig)
{
    (void)sig;
    /* Idle means blocked in accept() or waiting on a kept-alive connection:
     * nothing to lose, and _exit is async-signal-safe. */
    if (!in_request)
        _exit(0);
    stop_requested = 1;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-s ADDRESS]\n"
            "  without -s: serve on the listening socket passed as fd 0\n"
            "  -s :9000, -s 127.0.0.1:9000 or -s /path/to.sock: open that socket\n",
            argv0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void reply_env(FCGX_Request *rq)
{
    size_t n = 0;
    while (rq->envp[n])
        n++;
    char **v = malloc((n ? n : 1) * sizeof(*v));
    if (!v) {
        FCGX_FPrintF(rq->out, "Status: 500 Internal Server Error\r\n\r\n");
        return;
    }
    memcpy(v, rq->envp, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_str);
    FCGX_FPrintF(rq->out, "Content-Type: text/plain\r\n\r\n");
    for (size_t i = 0; i < n; i++)
        FCGX_FPrintF(rq->out, "%s\n", v[i]);
    free(v);
}

static void reply_echo(FCGX_Request *rq)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
    long want = cl ? strtol(cl, NULL, 10) : 0;
    char buf[16384];
    int n;

    /* The body is FCGI_STDIN; the header goes first and the body follows in
     * pieces, so any size works without holding it in memory. */
    FCGX_FPrintF(rq->out, "Content-Type: application/octet-stream\r\n");
    if (want > 0)
        FCGX_FPrintF(rq->out, "Content-Length: %ld\r\n", want);
    FCGX_FPrintF(rq->out, "\r\n");
    while (want > 0 && (n = FCGX_GetStr(buf, (int)sizeof(buf), rq->in)) > 0) {
        if (n > want)
            n = (int)want;
        FCGX_PutStr(buf, n, rq->out);
        want -= n;
    }
}

static void reply_sleep(FCGX_Request *rq, unsigned long count)
{
    const char *q = FCGX_GetParam("QUERY_STRING", rq->envp);
    long ms = q ? strtol(q, NULL, 10) : 0;
    if (ms < 0)
        ms = 0;
    if (ms > 60000)
        ms = 60000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    FCGX_FPrintF(rq->out,
                 "Content-Type: text/plain\r\n\r\n"
                 "Hello from FastCGI: pid %ld, request %lu\n",
                 (long)getpid(), count);
}

int main(int argc, char **argv)
{
    const char *addr = NULL;
    int opt, sock = 0; /* FCGI_LISTENSOCK_FILENO */
    unsigned long count = 0;
    FCGX_Request rq;

    while ((opt = getopt(argc, argv, "s:h")) != -1) {
        if (opt == 's') {
            addr = optarg;
        } else {
            usage(argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage(argv[0]);
        return 2;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "hello-fcgi: FCGX_Init failed\n");
        return 1;
    }
    if (addr) {
        sock = FCGX_OpenSocket(addr, 128);
        if (sock < 0) {
            fprintf(stderr, "hello-fcgi: cannot listen on %s\n", addr);
            return 1;
        }
    }

    /* No SA_RESTART, and FCGI_FAIL_ACCEPT_ON_INTR: a signal must get us out
     * of a blocking accept() instead of being retried by libfcgi. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a vanished server is a write error, not death */

    if (FCGX_InitRequest(&rq, sock, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        fprintf(stderr, "hello-fcgi: FCGX_InitRequest failed\n");
        return 1;
    }
    while (!stop_requested && FCGX_Accept_r(&rq) >= 0) {
        in_request = 1;
        count++;
        const char *pi = FCGX_GetParam("PATH_INFO", rq.envp);
        if (!pi)
            pi = "";
        if (strcmp(pi, "/env") == 0) {
            reply_env(&rq);
        } else if (strcmp(pi, "/echo") == 0) {
            reply_echo(&rq);
        } else if (strcmp(pi, "/status") == 0) {
            FCGX_FPrintF(rq.out, "Status: 418 I'm a teapot\r\n"
                                 "Content-Type: text/plain\r\n\r\n"
                                 "I'm a teapot\n");
        } else if (strcmp(pi, "/stderr") == 0) {
            FCGX_FPrintF(rq.err, "hello-fcgi: a line on stderr from pid %ld\n", (long)getpid());
            FCGX_FPrintF(rq.out, "Content-Type: text/plain\r\n\r\nstderr written\n");
        } else if (strcmp(pi, "/sleep") == 0) {
            reply_sleep(&rq, count);
        } else {
            FCGX_FPrintF(rq.out,
                         "Content-Type: text/plain\r\n\r\n"
                         "Hello from FastCGI: pid %ld, request %lu\n",
                         (long)getpid(), count);
        }
        FCGX_Finish_r(&rq);
        in_request = 0;
    }
    FCGX_Free(&rq, 1);
    return 0;
}
