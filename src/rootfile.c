/* rootfile.c: the files the root master writes by name: logs and the pid
 * file. A user who can write their directory could otherwise swap the name
 * for a symbolic or hard link to /etc/shadow and have root append to it or
 * hand it over (nginx's CVE-2016-1247 on Debian). So: O_NOFOLLOW, a
 * regular file with a single link, fchown only of what was created here. */
#include "first.h"
#include "rootfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void say(char *why, size_t len, const char *fmt, ...) PT_PRINTF(3, 4);
static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!why || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

static const char *kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISLNK(m))
        return "a symbolic link";
    return "not a regular file";
}

/* Why open(O_NOFOLLOW | O_NONBLOCK) failed, in words; errno is kept. */
static void open_failed(const char *path, char *why, size_t len)
{
    int e = errno;
    struct stat st;
    if ((e == ELOOP || e == ENXIO || e == EISDIR || e == EWOULDBLOCK) && lstat(path, &st) == 0 &&
        !S_ISREG(st.st_mode))
        say(why, len, "is %s, not a regular file%s", kind(st.st_mode),
            S_ISLNK(st.st_mode) ? " (symbolic links are not followed)" : "");
    else
        say(why, len, "%s", strerror(e));
    errno = e;
}

/* The checks every file the master writes passes, on the open fd. A
 * character device (a log sent to /dev/null) is accepted where allowed: only
 * root can make device nodes, so nobody can plant one, and it is never
 * handed over. */
static int check_fd(int fd, const struct stat *st, bool allow_chr, char *why, size_t len)
{
    if (allow_chr && S_ISCHR(st->st_mode))
        goto unblock;
    if (!S_ISREG(st->st_mode)) {
        say(why, len, "is %s, not a regular file", kind(st->st_mode));
        errno = EINVAL;
        return -1;
    }
    /* another name for the same inode may be a file that must not be
     * touched (a hard link to /etc/shadow made in a writable directory) */
    if (st->st_nlink > 1) {
        say(why, len, "has %ju hard links: refusing a file that has other names",
            (uintmax_t)st->st_nlink);
        errno = EMLINK;
        return -1;
    }
unblock:;
    /* O_NONBLOCK only kept a FIFO's open from hanging */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        say(why, len, "%s", strerror(errno));
        return -1;
    }
    return 0;
}

int pt_rootfile_open_append(const char *path, uid_t owner, char *why, size_t whylen)
{
    const int fl = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    struct stat st;
    bool created = true;
    /* O_EXCL first: it tells a file made now from one found there */
    int fd = open(path, fl | O_CREAT | O_EXCL, 0640);
    if (fd < 0 && errno == EEXIST) {
        created = false;
        fd = open(path, fl);
    }
    if (fd < 0) {
        open_failed(path, why, whylen);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        say(why, whylen, "%s", strerror(errno));
        goto fail;
    }
    if (check_fd(fd, &st, true, why, whylen) < 0)
        goto fail;
    /* only a file created here goes to the workers' user (who reopens it
     * on SIGUSR1); one found there keeps its owner, nginx-like */
    if (created && owner != (uid_t)-1 && st.st_uid != owner && fchown(fd, owner, (gid_t)-1) < 0) {
        say(why, whylen, "cannot hand it to uid %u: %s", (unsigned)owner, strerror(errno));
        goto fail;
    }
    return fd;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int pt_rootfile_write_pid(const char *path, char *why, size_t whylen)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        /* left by an earlier run: rewritten in place only when it is ours,
         * never unlinked and recreated by a name someone else could swap */
        fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0) {
            if (fstat(fd, &st) < 0) {
                say(why, whylen, "%s", strerror(errno));
                goto fail;
            }
            if (check_fd(fd, &st, false, why, whylen) < 0)
                goto fail;
            if (st.st_uid != geteuid()) {
                say(why, whylen, "exists and belongs to uid %u, not to portico's uid %u",
                    (unsigned)st.st_uid, (unsigned)geteuid());
                errno = EPERM;
                goto fail;
            }
            if (ftruncate(fd, 0) < 0) {
                say(why, whylen, "%s", strerror(errno));
                goto fail;
            }
        }
    }
    if (fd < 0) {
        open_failed(path, why, whylen);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    ssize_t w = write(fd, buf, (size_t)n);
    if (w != n) {
        if (w >= 0)
            errno = EIO;
        say(why, whylen, "%s", strerror(errno));
        goto fail;
    }
    close(fd);
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

void pt_rootfile_remove_pid(const char *path)
{
    /* only the file this process wrote: a regular file of ours holding our
     * pid (a name swapped in the meantime stays) */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    char buf[32], want[32];
    if (fd < 0)
        return;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()
                    ? read(fd, buf, sizeof(buf) - 1)
                    : -1;
    close(fd);
    snprintf(want, sizeof(want), "%d\n", (int)getpid());
    if (n > 0) {
        buf[n] = '\0';
        if (strcmp(buf, want) == 0)
            unlink(path);
    }
}

int pt_rootfile_dir_writable(const char *path, const pt_creds *cr, const char *who, char *why,
                             size_t whylen)
{
    char dir[PATH_MAX];
    struct stat st;
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        say(why, whylen, "path too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        slash[slash == dir ? 1 : 0] = '\0';
    if (stat(dir, &st) < 0) {
        say(why, whylen, "cannot examine the directory %s: %s", dir, strerror(errno));
        return -1;
    }
    /* root's own user: nothing to defend against */
    if (cr->uid == 0)
        return 0;
    /* its owner may chmod it even while the write bit is off */
    if (st.st_uid == cr->uid) {
        say(why, whylen, "the directory %s belongs to %s (uid %u)", dir, who, (unsigned)cr->uid);
        return 1;
    }
    bool in_group = st.st_gid == cr->gid;
    for (size_t i = 0; i < cr->ngroups && !in_group; i++)
        in_group = cr->groups[i] == st.st_gid;
    if ((st.st_mode & S_IWGRP) && in_group) {
        say(why, whylen, "the directory %s is writable by group %u, a group of %s", dir,
            (unsigned)st.st_gid, who);
        return 1;
    }
    if (st.st_mode & S_IWOTH) {
        say(why, whylen, "the directory %s is writable by every user%s", dir,
            (st.st_mode & S_ISVTX) ? " (sticky)" : "");
        return 1;
    }
    return 0;
}
