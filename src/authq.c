/* authq.c: the helper thread that verifies passwords for a worker. The
 * thread touches nothing but the jobs (copies of user, password and hash)
 * and libcrypt/libcrypto, which are thread-safe; the loop's thread does
 * everything else. It never changes credentials nor is cancelled, so
 * cgi_spawn's vfork child still meets no glibc-internal signals. */
#include "first.h"
#include "authq.h"
#include "htpasswd.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

static struct {
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pt_authq_job *todo, **todo_tail; /* FIFO: first come, first verified */
    pt_authq_job *done;
    int efd;
    pt_io io;
    unsigned pending;
} Q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .efd = -1};

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

pt_authq_job *pt_authq_job_new(const char *user, size_t ulen, const char *pw, size_t pwlen,
                               const char *hash, pt_authq_cb done, void *owner)
{
    pt_authq_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->user = dup_n(user, ulen);
    j->pw = dup_n(pw, pwlen);
    j->hash = dup_n(hash, strlen(hash));
    j->ulen = ulen;
    j->pwlen = pwlen;
    j->done = done;
    j->owner = owner;
    if (!j->user || !j->pw || !j->hash) {
        pt_authq_job_free(j);
        return NULL;
    }
    return j;
}

void pt_authq_job_free(pt_authq_job *j)
{
    if (!j)
        return;
    if (j->pw)
        OPENSSL_cleanse(j->pw, j->pwlen);
    free(j->user);
    free(j->pw);
    free(j->hash);
    free(j);
}

static void *run(void *arg)
{
    (void)arg;
    /* The loop comes first: when both want the CPU (one worker per core),
     * verifications get what it leaves, so a password guesser slows
     * logins, not the worker's other clients. Linux's nice is per thread;
     * SCHED_BATCH keeps the thread from preempting the loop on wake-up. */
    struct sched_param sp = {.sched_priority = 0};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    id_t tid = (id_t)gettid();
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && setpriority(PRIO_PROCESS, tid, PT_MIN(prio + 10, 19)) < 0) {
        /* not fatal: the thread only competes as an equal */
    }
    for (;;) {
        pthread_mutex_lock(&Q.mu);
        while (!Q.todo)
            pthread_cond_wait(&Q.cv, &Q.mu);
        pt_authq_job *j = Q.todo;
        Q.todo = j->next;
        if (!Q.todo)
            Q.todo_tail = &Q.todo;
        pthread_mutex_unlock(&Q.mu);

        j->rc = pt_htpasswd_verify(j->hash, j->pw, j->pwlen);

        pthread_mutex_lock(&Q.mu);
        j->next = Q.done;
        Q.done = j;
        pthread_mutex_unlock(&Q.mu);
        uint64_t one = 1;
        ssize_t w = write(Q.efd, &one, sizeof(one));
        (void)w; /* the counter cannot overflow: the loop reads it */
    }
    return NULL;
}

static void on_done(pt_loop *l, pt_io *io, uint32_t events)
{
    (void)l;
    (void)events;
    uint64_t n;
    ssize_t r = read(io->fd, &n, sizeof(n));
    (void)r;
    pthread_mutex_lock(&Q.mu);
    pt_authq_job *list = Q.done;
    Q.done = NULL;
    pthread_mutex_unlock(&Q.mu);
    /* the list is newest first: answer in the order asked */
    pt_authq_job *rev = NULL;
    while (list) {
        pt_authq_job *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        pt_authq_job *next = rev->next;
        Q.pending--;
        rev->done(rev);
        rev = next;
    }
}

static int start(pt_loop *l)
{
    Q.todo_tail = &Q.todo;
    Q.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (Q.efd < 0)
        return -1;
    pthread_attr_t a;
    pthread_t t;
    sigset_t all, old;
    /* the thread takes no signals: the worker's signalfd wants them all */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &a, run, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(Q.efd);
        Q.efd = -1;
        errno = rc;
        return -1;
    }
    pt_io_init(&Q.io, Q.efd, on_done, NULL);
    if (pt_io_set(l, &Q.io, EPOLLIN) < 0)
        return -1; /* the thread waits for jobs that never come: harmless */
    Q.started = true;
    return 0;
}

int pt_authq_submit(pt_loop *l, pt_authq_job *j)
{
    if (!Q.started && (Q.efd >= 0 || start(l) < 0))
        return -1;
    j->next = NULL;
    pthread_mutex_lock(&Q.mu);
    *Q.todo_tail = j;
    Q.todo_tail = &j->next;
    Q.pending++;
    pthread_cond_signal(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
    return 0;
}

unsigned pt_authq_pending(void)
{
    return Q.pending;
}
