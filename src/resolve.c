/* resolve.c: the one path resolver (see resolve.h). Static files, index
 * files, CGI and FastCGI scripts all come through pt_resolve_open, so the
 * symlink policy cannot differ between handlers, and nobody looks a
 * request path up a second time by its string. */
#include "first.h"
#include "resolve.h"
#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool pt_resolve_follow(const pt_vhost *v, const pt_location *l)
{
    /* a location holds its vhost's value unless it sets its own (conf.c) */
    return l ? l->follow_symlinks : v->follow_symlinks;
}

/* Is the opened fd's real path inside root? (for absolute symlinks that
 * stay inside, which RESOLVE_BENEATH refuses) */
static bool fd_is_beneath(int fd, const char *root)
{
    char proc[64], real[PATH_MAX], rootreal[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, real, sizeof(real) - 1);
    if (n < 0)
        return false;
    real[n] = '\0';
    if (!realpath(root, rootreal))
        return false;
    size_t rl = strlen(rootreal);
    if (rl == 1)
        return true;
    return strncmp(real, rootreal, rl) == 0 && (real[rl] == '/' || real[rl] == '\0');
}

int pt_resolve_open(int rootfd, const char *root, const char *rel, int flags, bool follow)
{
    if (follow)
        return openat(rootfd, rel, flags);
    struct open_how how = {.flags = (uint64_t)flags,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    if (fd >= 0 || (errno != EXDEV && errno != ENOSYS && errno != ELOOP))
        return fd;
    /* RESOLVE_BENEATH refuses every absolute symlink (EXDEV), and a
     * symlink loop is ELOOP either way: allow an absolute symlink whose
     * target is still inside the root, judged on what was opened */
    fd = openat(rootfd, rel, flags);
    if (fd < 0)
        return -1;
    if (!fd_is_beneath(fd, root)) {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

int pt_resolve_stat(int rootfd, const char *root, const char *rel, int flags, bool follow,
                    struct stat *st)
{
    int fd = pt_resolve_open(rootfd, root, rel, flags, follow);
    if (fd >= 0 && fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int pt_resolve_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:
    case ELOOP:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    default:
        return 500;
    }
}
