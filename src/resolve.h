/* resolve.h: the one path resolver. Every path that comes from a request
 * (static file, index file, CGI or FastCGI script, local redirect target) is
 * opened here, beneath a root directory fd, under the symlink policy; the
 * caller decides on fstat of what was opened and keeps using that fd. */
#ifndef PT_RESOLVE_H
#define PT_RESOLVE_H

#include "first.h"

#include <stdbool.h>
#include <sys/stat.h>

struct pt_vhost;
struct pt_location;

/* The symlink policy of a location (or of the vhost when l is NULL or does
 * not set it): true follows symlinks anywhere. */
bool pt_resolve_follow(const struct pt_vhost *v, const struct pt_location *l);

/* Open rel (relative, normalised) below rootfd, whose path is root, with
 * open flags (O_PATH | O_CLOEXEC, or O_RDONLY ... ). Without follow nothing
 * leads out of root: not "..", not a symlink, not a rename racing the
 * lookup (openat2 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS); an absolute
 * symlink is allowed only when what it opens is still inside root. -1 with
 * errno (EXDEV: it leads outside). */
int pt_resolve_open(int rootfd, const char *root, const char *rel, int flags, bool follow);

/* pt_resolve_open with flags and the fstat of the result in *st: the fd,
 * or -1 with errno. */
int pt_resolve_stat(int rootfd, const char *root, const char *rel, int flags, bool follow,
                    struct stat *st);

/* The HTTP status for a failed resolve's errno: 404 for what is not there
 * or leads outside (ENOENT, ENOTDIR, EXDEV, ELOOP, ENAMETOOLONG), 403 for
 * EACCES/EPERM, else 500. */
int pt_resolve_status(int err);

#endif
