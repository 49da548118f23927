/* acme.h: certificates that renew themselves (ACME, RFC 8555). A process
 * of its own, forked by the master, obtains and renews the certificates of
 * the vhosts with acme = {...}, stores them under acme_state_dir and asks
 * the master to reload (SIGHUP); the workers answer the http-01 challenges
 * (RFC 8555 §8.3) from files that process writes. */
#ifndef PT_ACME_H
#define PT_ACME_H

#include "first.h"
#include "conf.h"

#include <stddef.h>
#include <sys/types.h>

#define PT_ACME_STATE_DIR "/var/lib/portico/acme"
#define PT_ACME_CHALLENGE_PREFIX "/.well-known/acme-challenge/"

/* Does any vhost of c want ACME? */
bool pt_acme_wanted(const pt_config *c);
/* The ACME process's body (in the child the master forked; never returns).
 * It signals master, and only while master is still its parent. */
_Noreturn void pt_acme_main(const pt_config *c, pid_t master);
/* For a worker: the key authorization for path (a normalised request path
 * under PT_ACME_CHALLENGE_PREFIX) into out. Its length, or -1: not one of
 * ours (404). */
ssize_t pt_acme_challenge(const pt_config *c, const char *path, size_t len, char *out, size_t cap);

#endif
