/* priv.c: resolving "user"/"group" and dropping privileges in workers and
 * spawned FastCGI apps. The master keeps root (it binds new listeners on
 * reload, reopens logs and starts workers); every process that reads a
 * request or runs a program gives it up for good before doing anything:
 * supplementary groups first, then the gid, then the uid, and a worker
 * that could get root back refuses to go on. */
#include "first.h"
#include "priv.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <unistd.h>

static bool parse_id(const char *s, unsigned long *out)
{
    char *end;
    if (!s[0] || s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v >= (unsigned long)(uid_t)-1)
        return false;
    *out = v;
    return true;
}

int pt_priv_resolve(const char *user, const char *group, pt_creds *cr, char *err, size_t errlen)
{
    struct passwd *pw;
    unsigned long id;
    memset(cr, 0, sizeof(*cr));
    errno = 0;
    if ((pw = getpwnam(user))) {
        cr->uid = pw->pw_uid;
        cr->gid = pw->pw_gid;
    } else if (parse_id(user, &id)) {
        cr->uid = (uid_t)id;
        if ((pw = getpwuid(cr->uid)))
            cr->gid = pw->pw_gid;
        else if (!group) {
            snprintf(err, errlen, "user %s has no entry in the user database: set group too", user);
            return -1;
        }
    } else {
        snprintf(err, errlen, "unknown user '%s'", user);
        return -1;
    }
    if (group) {
        struct group *gr = getgrnam(group);
        if (gr)
            cr->gid = gr->gr_gid;
        else if (parse_id(group, &id))
            cr->gid = (gid_t)id;
        else {
            snprintf(err, errlen, "unknown group '%s'", group);
            return -1;
        }
    }
    /* the user's supplementary groups (as login would set them), with the
     * primary group; a numeric user without an entry gets only the gid */
    int n = 16;
    for (;;) {
        gid_t *g = realloc(cr->groups, (size_t)n * sizeof(*g));
        if (!g) {
            snprintf(err, errlen, "out of memory");
            pt_priv_free(cr);
            return -1;
        }
        cr->groups = g;
        if (!pw) {
            g[0] = cr->gid;
            n = 1;
            break;
        }
        int want = n;
        if (getgrouplist(pw->pw_name, cr->gid, g, &want) >= 0) {
            n = want;
            break;
        }
        if (want <= n || want > NGROUPS_MAX) {
            snprintf(err, errlen, "cannot list the groups of user '%s'", user);
            pt_priv_free(cr);
            return -1;
        }
        n = want;
    }
    cr->ngroups = (size_t)n;
    return 0;
}

int pt_priv_drop(const pt_creds *cr)
{
    return pt_priv_drop_split(cr, NULL);
}

/* With prog (cgi_user): real and saved ids stay cr's, the effective ones
 * become prog's and the file-system ids cr's again. kill(2) lets a process
 * signal another when its real or effective uid is the target's real or
 * saved uid: the worker (effective = prog) may signal its programs, a
 * program (all ids prog's) may not signal the worker, and the worker's
 * child may take prog's ids without any privilege (a process may set any
 * id to one of its real, effective or saved ones). The worker reads and
 * creates files as cr; prog's supplementary groups are the worker's too,
 * since an unprivileged child cannot change them. */
int pt_priv_drop_split(const pt_creds *cr, const pt_creds *prog)
{
    if (!cr || !cr->drop)
        return 0;
    uid_t eu = prog ? prog->uid : cr->uid;
    gid_t eg = prog ? prog->gid : cr->gid;
    const pt_creds *grp = prog ? prog : cr;
    if (setgroups(grp->ngroups, grp->groups) < 0 || setresgid(cr->gid, eg, cr->gid) < 0 ||
        setresuid(cr->uid, eu, cr->uid) < 0)
        return -1;
    if (prog) {
        setfsgid(cr->gid);
        setfsuid(cr->uid);
        /* both return the previous value: asking again tells the current */
        if ((uid_t)setfsuid((uid_t)-1) != cr->uid || (gid_t)setfsgid((gid_t)-1) != cr->gid) {
            errno = EPERM;
            return -1;
        }
    }
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0)
        return -1;
    if (r != cr->uid || e != eu || s != cr->uid || gr != cr->gid || ge != eg || gs != cr->gid) {
        errno = EPERM;
        return -1;
    }
    /* the change must be final: root must not be reachable again */
    if (cr->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        return -1;
    }
    /* not dumpable: a program of the same user may not ptrace the worker
     * or read its /proc/PID/mem, environ or fds, whatever fs.suid_dumpable
     * says (an execve resets it for the programs themselves) */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return -1;
    return 0;
}

void pt_priv_free(pt_creds *cr)
{
    free(cr->groups);
    cr->groups = NULL;
    cr->ngroups = 0;
}

void pt_priv_clear_bounding_set(void)
{
    /* CAP_SETPCAP is needed: only a root process gets this far */
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
}
