/* log.h: the error log (levels, context, escaping of client bytes) and the
 * access log (combined format + request time). One write(2) per line on an
 * O_APPEND fd; pt_log_reopen() on SIGUSR1. */
#ifndef PT_LOG_H
#define PT_LOG_H

#include "first.h"

#include <sys/types.h>

enum { PT_LOG_ERROR = 0, PT_LOG_WARN = 1, PT_LOG_INFO = 2, PT_LOG_DEBUG = 3 };

/* path: "stderr" or a file. Returns 0 or -1 with errno. */
int pt_log_open(const char *path, int level);
/* The default access log: NULL/"off" = none, "stderr", "stdout" or a path.
 * Returns 0 or -1 with errno. */
int pt_access_log_open(const char *path);
/* A handle for another access log (per vhost), shared by path; -1 for "off"
 * or NULL, -2 on error (errno). */
int pt_access_log_handle(const char *path);
/* Handle of the default access log, -1 when off. */
int pt_access_log_default(void);
void pt_log_close_all(void);
/* Reopen both (logrotate). A file that cannot be reopened is logged (path
 * and reason) and the old one kept. Returns 0 or -1. */
int pt_log_reopen(void);
/* Log files created from now on are handed to uid (the workers' user) so
 * they can reopen them; (uid_t)-1: left as created. */
void pt_log_set_owner(uid_t uid);
/* After a failed open of a log: why, in words ("is a symbolic link, not a
 * regular file ...", or strerror(errno)). */
const char *pt_log_why(void);
int pt_log_level(void);
int pt_log_parse_level(const char *s);
/* Tag written after the pid, e.g. "master", "worker 1". */
void pt_log_set_role(const char *role);

void pt_log(int level, const char *fmt, ...) PT_PRINTF(2, 3);
#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_info(...)                                                                           \
    do {                                                                                           \
        if (pt_log_level() >= PT_LOG_INFO)                                                         \
            pt_log(PT_LOG_INFO, __VA_ARGS__);                                                      \
    } while (0)
#define pt_log_debug(...)                                                                          \
    do {                                                                                           \
        if (pt_log_level() >= PT_LOG_DEBUG)                                                        \
            pt_log(PT_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

/* Append a raw, already formatted line (with '\n') to an access log. */
void pt_access_log_write(int handle, const char *line, size_t len);

#endif
