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
    if (!cr || !cr->drop)
        return 0;
    if (setgroups(cr->ngroups, cr->groups) < 0 || setresgid(cr->gid, cr->gid, cr->gid) < 0 ||
        setresuid(cr->uid, cr->uid, cr->uid) < 0)
        return -1;
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0)
        return -1;
    if (r != cr->uid || e != cr->uid || s != cr->uid || gr != cr->gid || ge != cr->gid ||
        gs != cr->gid) {
        errno = EPERM;
        return -1;
    }
    /* the change must be final: root must not be reachable again */
    if (cr->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

void pt_priv_free(pt_creds *cr)
{
    free(cr->groups);
    cr->groups = NULL;
    cr->ngroups = 0;
}
