/* dirlist.h: HTML directory listings for the static handler (optional,
 * off by default); every client-visible name is escaped. */
#ifndef PT_DIRLIST_H
#define PT_DIRLIST_H

#include "first.h"

/* Build an HTML directory listing of dirfd (caller-owned, opened O_RDONLY|O_DIRECTORY) for the
 * decoded URL path url_path (ends in '/'). Entries sorted by name (directories first), "." omitted,
 * ".." shown as a parent link except at "/", dot-files hidden unless show_dot; names HTML-escaped
 * in text and percent-encoded in hrefs; directories get a trailing '/'; size and modification time
 * columns. At most max_entries entries (rest summarised in one line). On success *out is a malloc'd
 * buffer the caller frees. Returns 0 or -1 with errno. */
int pt_dirlist_html(int dirfd, const char *url_path, bool show_dot, size_t max_entries, char **out,
                    size_t *outlen);

#endif
