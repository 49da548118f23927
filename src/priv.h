/* priv.h: the user and group workers, CGI programs and spawned FastCGI
 * apps run as when the master was started as root. */
#ifndef PT_PRIV_H
#define PT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct pt_creds {
    bool drop; /* change identity in the child (master is root, user is set) */
    uid_t uid;
    gid_t gid;
    gid_t *groups; /* supplementary groups (the user's, from the group database) */
    size_t ngroups;
} pt_creds;

/* Resolve user (a name, or a number) and group (a name or number; NULL:
 * the user's primary group) into cr. 0, or -1 with a message in err. */
int pt_priv_resolve(const char *user, const char *group, pt_creds *cr, char *err, size_t errlen);
/* In a freshly forked child: setgroups, setgid, setuid, then check that
 * none of it can be undone. 0, or -1 with errno set (nothing to do: 0). */
int pt_priv_drop(const pt_creds *cr);
/* A worker's drop when programs run as prog (cgi_user; NULL: as cr):
 * real and saved uid and gid cr's, effective ones prog's, file-system ids
 * cr's, supplementary groups prog's. */
int pt_priv_drop_split(const pt_creds *cr, const pt_creds *prog);
/* Empty the capability bounding set (needs CAP_SETPCAP; errors ignored):
 * a set-user-ID-root program started later gains no capability. */
void pt_priv_clear_bounding_set(void);
void pt_priv_free(pt_creds *cr);

#endif
