/* log.c: the error log (levels, role, one write(2) per line on an O_APPEND
 * fd) and the access logs, with reopening for logrotate (SIGUSR1). */
#include "first.h"
#include "log.h"
#include "rootfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PT_MAX_ACCESS_LOGS 64

static struct {
    int fd;
    int level;
    char *path; /* NULL = stderr */
    char role[32];
} g_err = {2, PT_LOG_INFO, NULL, "main"};

static struct {
    int fd;
    char *path; /* NULL for stderr/stdout */
} g_acc[PT_MAX_ACCESS_LOGS];
static int g_nacc;
static int g_default_acc = -1;

static uid_t g_owner = (uid_t)-1;

void pt_log_set_owner(uid_t uid)
{
    g_owner = uid;
}

/* Why the last open failed ("is a symbolic link, ..."), for the caller's
 * message. */
static char g_why[256];

/* With privileges dropped the workers reopen their logs on SIGUSR1 as
 * "user": a file the master creates is handed to that user, as it would
 * be had the workers created it (rootfile.c: never a file found there). */
static int open_append(const char *path)
{
    g_why[0] = '\0';
    return pt_rootfile_open_append(path, g_owner, g_why, sizeof(g_why));
}

const char *pt_log_why(void)
{
    return g_why[0] ? g_why : strerror(errno);
}

int pt_log_parse_level(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int pt_log_open(const char *path, int level)
{
    g_err.level = level;
    if (path == NULL || strcmp(path, "stderr") == 0) {
        g_err.fd = 2;
        return 0;
    }
    int fd = open_append(path);
    if (fd < 0)
        return -1;
    free(g_err.path);
    g_err.path = strdup(path);
    if (g_err.fd > 2)
        close(g_err.fd);
    g_err.fd = fd;
    return 0;
}

int pt_log_level(void)
{
    return g_err.level;
}

void pt_log_set_role(const char *role)
{
    snprintf(g_err.role, sizeof(g_err.role), "%s", role);
}

void pt_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    if (level > g_err.level)
        return;
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s] %d#%s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), names[level], (int)getpid(), g_err.role);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : PT_MIN((size_t)m, sizeof(line) - (size_t)n - 2));
    line[len++] = '\n';
    ssize_t w = write(g_err.fd, line, len);
    (void)w;
}

int pt_access_log_open(const char *path)
{
    int h = pt_access_log_handle(path);
    g_default_acc = h;
    return h == -2 ? -1 : 0;
}

int pt_access_log_handle(const char *path)
{
    if (path == NULL || strcmp(path, "off") == 0)
        return -1;
    for (int i = 0; i < g_nacc; i++)
        if ((g_acc[i].path == NULL && g_acc[i].fd == (strcmp(path, "stdout") == 0 ? 1 : 2) &&
             (strcmp(path, "stderr") == 0 || strcmp(path, "stdout") == 0)) ||
            (g_acc[i].path && strcmp(g_acc[i].path, path) == 0))
            return i;
    if (g_nacc == PT_MAX_ACCESS_LOGS) {
        g_why[0] = '\0';
        errno = EMFILE;
        return -2;
    }
    int fd;
    char *p = NULL;
    if (strcmp(path, "stderr") == 0) {
        fd = 2;
    } else if (strcmp(path, "stdout") == 0) {
        fd = 1;
    } else {
        fd = open_append(path);
        if (fd < 0)
            return -2;
        p = strdup(path);
    }
    g_acc[g_nacc].fd = fd;
    g_acc[g_nacc].path = p;
    return g_nacc++;
}

int pt_access_log_default(void)
{
    return g_default_acc;
}

int pt_log_reopen(void)
{
    int rc = 0;
    if (g_err.path) {
        int fd = open_append(g_err.path);
        if (fd < 0) {
            /* the old file stays in use: a refused name never stops logging */
            pt_log_error("cannot reopen error log %s: %s; still writing to the old file",
                         g_err.path, pt_log_why());
            rc = -1;
        } else {
            /* dup3, not dup2: the fd number keeps close-on-exec, which
             * dup2 would clear (programs and spawned apps get none) */
            dup3(fd, g_err.fd, O_CLOEXEC);
            close(fd);
        }
    }
    for (int i = 0; i < g_nacc; i++) {
        if (!g_acc[i].path)
            continue;
        int fd = open_append(g_acc[i].path);
        if (fd < 0) {
            pt_log_error("cannot reopen access log %s: %s; still writing to the old file",
                         g_acc[i].path, pt_log_why());
            rc = -1;
            continue;
        }
        dup3(fd, g_acc[i].fd, O_CLOEXEC);
        close(fd);
    }
    return rc;
}

void pt_access_log_write(int handle, const char *line, size_t len)
{
    if (handle < 0 || handle >= g_nacc)
        return;
    ssize_t w = write(g_acc[handle].fd, line, len);
    (void)w;
}

void pt_log_close_all(void)
{
    for (int i = 0; i < g_nacc; i++) {
        if (g_acc[i].path) {
            close(g_acc[i].fd);
            free(g_acc[i].path);
        }
    }
    g_nacc = 0;
    g_default_acc = -1;
    free(g_err.path);
    g_err.path = NULL;
}
