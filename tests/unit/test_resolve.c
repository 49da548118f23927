/* test_resolve.c: the one path resolver (resolve.c) keeps every lookup
 * beneath its root under follow_symlinks = false, whatever the kind of
 * symlink, allows absolute symlinks that stay inside, and follows anything
 * under follow_symlinks = true. */
#include "first.h"
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

static char base[PATH_MAX], root[PATH_MAX + 8];

static void mk(const char *rel, const char *text)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void ln(const char *target, const char *rel)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    if (symlink(target, p) < 0)
        perror(p);
}

/* Resolve rel below the root: the errno (0 when it opened a regular file
 * that starts with want). */
static int try(int rootfd, const char *rel, bool follow, const char *want)
{
    struct stat st;
    int fd = pt_resolve_stat(rootfd, root, rel, O_RDONLY | O_CLOEXEC, follow, &st);
    if (fd < 0)
        return errno;
    char buf[64] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    if (n < 0 || !S_ISREG(st.st_mode) || strncmp(buf, want, strlen(want)) != 0)
        return -1;
    return 0;
}

int main(void)
{
    char tmpl[] = "/tmp/pt-test-resolve-XXXXXX";
    if (!mkdtemp(tmpl) || !realpath(tmpl, base))
        return 1;
    snprintf(root, sizeof(root), "%s/www", base);
    char p[PATH_MAX + 64];
    mkdir(root, 0755);
    snprintf(p, sizeof(p), "%s/out", base);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/www/sub", base);
    mkdir(p, 0755);
    mk("out/secret", "SECRET");
    mk("www/real", "REAL");
    snprintf(p, sizeof(p), "%s/out/secret", base);
    ln(p, "www/of"); /* absolute, outside */
    ln("../out/secret", "www/ofr");
    ln("../out", "www/od");
    snprintf(p, sizeof(p), "%s/nothing", base);
    ln(p, "www/dg");
    ln("lp", "www/lp");
    snprintf(p, sizeof(p), "%s/www/real", base);
    ln(p, "www/in"); /* absolute, inside */
    ln("../real", "www/sub/inr");

    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ok(rfd >= 0, "the root opens");
    /* follow_symlinks = false */
    ok(try(rfd, "real", false, "REAL") == 0, "a plain file is found");
    ok(try(rfd, "of", false, "") == EXDEV, "an absolute symlink out is EXDEV");
    ok(try(rfd, "ofr", false, "") == EXDEV, "a relative symlink out is EXDEV");
    ok(try(rfd, "od/secret", false, "") == EXDEV, "a directory symlink out is EXDEV");
    ok(try(rfd, "../out/secret", false, "") == EXDEV, "\"..\" out is EXDEV");
    ok(try(rfd, "dg", false, "") == ENOENT, "a dangling symlink is ENOENT");
    ok(try(rfd, "lp", false, "") == ELOOP, "a loop is ELOOP");
    ok(try(rfd, "in", false, "REAL") == 0, "an absolute symlink that stays inside is followed");
    ok(try(rfd, "sub/inr", false, "REAL") == 0, "a relative symlink inside is followed");
    /* follow_symlinks = true */
    ok(try(rfd, "of", true, "SECRET") == 0, "following: an absolute symlink out is followed");
    ok(try(rfd, "od/secret", true, "SECRET") == 0, "following: a directory symlink out too");
    ok(try(rfd, "dg", true, "") == ENOENT, "following: dangling is ENOENT");
    ok(try(rfd, "lp", true, "") == ELOOP, "following: a loop is ELOOP");
    /* the statuses the handlers answer */
    ok(pt_resolve_status(EXDEV) == 404 && pt_resolve_status(ELOOP) == 404 &&
           pt_resolve_status(ENOENT) == 404 && pt_resolve_status(EACCES) == 403 &&
           pt_resolve_status(EIO) == 500,
       "outside, loops and nothing are 404; EACCES 403; the rest 500");
    close(rfd);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", base);
    return tap_done();
}
