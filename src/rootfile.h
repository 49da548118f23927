/* rootfile.h: the files the master writes while it is root (logs, the pid
 * file) and the check of the directories they live in. None follows a
 * symbolic link, none accepts anything but a regular file with one link,
 * and only a file created here is handed to another user. */
#ifndef PT_ROOTFILE_H
#define PT_ROOTFILE_H

#include "first.h"
#include "priv.h"

#include <stddef.h>
#include <sys/types.h>

/* Open (or create, mode 0640) path for appending. A file created by this
 * call is given to owner unless that is (uid_t)-1; an existing one keeps
 * its owner. Never blocks (a FIFO is refused, not waited on). Returns the
 * fd, or -1 with errno and a reason in why ("is a symbolic link", ...). */
int pt_rootfile_open_append(const char *path, uid_t owner, char *why, size_t whylen);
/* Write the pid into path: created afresh, or an existing regular file of
 * ours rewritten; a symbolic link or someone else's file is refused. 0, or
 * -1 with errno and a reason in why. */
int pt_rootfile_write_pid(const char *path, char *why, size_t whylen);
/* Remove the pid file written last by pt_rootfile_write_pid() for path,
 * only while it is still that file. */
void pt_rootfile_remove_pid(const char *path);
/* Could the user in cr change what the name path points to, i.e. can it
 * write the directory holding path (owner, group or other write bits;
 * ACLs are not looked at)? 1 with a reason in why naming that user as who
 * ("the workers' user"), 0 when not, -1 when the directory cannot be
 * examined (errno, why). */
int pt_rootfile_dir_writable(const char *path, const pt_creds *cr, const char *who, char *why,
                             size_t whylen);

#endif
