/* authq.h: password verifications off the event loop. A bcrypt of cost 10
 * takes tens of milliseconds: done in the worker's loop it would stall
 * every other client of the worker. One helper thread per worker process
 * takes the jobs; an eventfd in the loop brings the results back. */
#ifndef PT_AUTHQ_H
#define PT_AUTHQ_H

#include "first.h"
#include "ev.h"

typedef struct pt_authq_job pt_authq_job;
typedef void (*pt_authq_cb)(pt_authq_job *j);

struct pt_authq_job {
    pt_authq_job *next;
    void *owner; /* the waiting request; NULL once it has gone (the result is dropped) */
    char *user, *pw, *hash;
    size_t ulen, pwlen;
    int rc; /* pt_htpasswd_verify's answer, filled in by the thread */
    pt_authq_cb done;
};

/* A job for user:pw against hash (copied), its result to done(job) in the
 * loop's thread, which then frees it (pt_authq_job_free). NULL when out of
 * memory. */
pt_authq_job *pt_authq_job_new(const char *user, size_t ulen, const char *pw, size_t pwlen,
                               const char *hash, pt_authq_cb done, void *owner);
/* Hand a job to the helper thread (started on first use). -1 when the
 * thread or its eventfd cannot be made: the caller verifies inline. */
int pt_authq_submit(pt_loop *l, pt_authq_job *j);
void pt_authq_job_free(pt_authq_job *j);
/* Jobs handed out and not yet back (for tests and metrics). */
unsigned pt_authq_pending(void);

#endif
