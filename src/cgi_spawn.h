/* cgi_spawn.h: start a CGI program with its pipes on 0-2, in its own process
 * group, default signal dispositions, an empty signal mask, nothing else
 * open, and its resource limits set before it runs. */
#ifndef PT_CGI_SPAWN_H
#define PT_CGI_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct pt_cgi_spawn_req {
    const char *path; /* execve's: no PATH search */
    bool exec_by_fd;  /* run exec_fd (the checked program), not path */
    int exec_fd;
    char *const *argv;
    char *const *envp;
    int fd[3];        /* become the program's stdin, stdout, stderr */
    const char *dir;  /* working directory, or NULL */
    bool chdir_by_fd; /* enter dir_fd (the checked directory), not dir */
    int dir_fd;
    unsigned long long rlimit[3]; /* CPU seconds, address space bytes,
                                     processes; soft = hard, 0 = unchanged */
    bool change_id;               /* take uid and gid (cgi_user) before the directory */
    uid_t uid;
    gid_t gid;
    const gid_t *groups; /* supplementary groups to set too (a root worker), or NULL */
    size_t ngroups;
    bool no_new_privs; /* PR_SET_NO_NEW_PRIVS: set-user-ID bits and file capabilities
                          give nothing */
} pt_cgi_spawn_req;

/* The child's pid, or -1 with errno when it could not be set up or execve
 * failed (the child is reaped then); *what names the step for the log
 * ("cannot execute", "cannot enter the directory of", ...). */
pid_t pt_cgi_spawn(const pt_cgi_spawn_req *rq, const char **what);

#endif
