#include "first.h"
#include "dirlist.h"
#include "tap.h"

/* test_dirlist.c: HTML directory listings: escaping, hidden files, order, caps. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/pt-test-dirlist-XXXXXX";

static char *write_tmp(const char *name, const char *content)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(content, f);
    fclose(f);
    return path;
}

static char *listing(int dfd, const char *url, bool show_dot, size_t max, size_t *len)
{
    char *out = NULL;
    if (pt_dirlist_html(dfd, url, show_dot, max, &out, len) < 0)
        return NULL;
    return out;
}

static const char *after(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    return p ? p : hay + strlen(hay) + 1;
}

static void test_dirlist(void)
{
    char d[300];
    snprintf(d, sizeof(d), "%s/list", tmpdir);
    mkdir(d, 0755);
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok(dfd >= 0, "open listing directory");
    write_tmp("list/<script>&\"'.txt", "x");
    write_tmp("list/b.txt", "hello");
    write_tmp("list/a.txt", "");
    write_tmp("list/.hidden", "secret");
    write_tmp("list/a:b", "colon");
    write_tmp("list/sp ace.txt", "s");
    char sub[320];
    snprintf(sub, sizeof(sub), "%s/list/zdir", tmpdir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/list/.hdir", tmpdir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/list/link", tmpdir);
    if (symlink("zdir", sub) != 0)
        perror(sub);

    size_t len = 0;
    char *h = listing(dfd, "/pub/", false, 100, &len);
    ok(h != NULL, "listing succeeds");
    if (!h)
        return;
    ok(len == strlen(h), "outlen matches the NUL-terminated buffer");
    ok(strstr(h, "<script>") == NULL, "raw <script> never appears");
    ok(strstr(h, "&lt;script&gt;&amp;&quot;") != NULL, "name is HTML-escaped in text");
    ok(strstr(h, "'.txt</a>") == NULL, "single quote is HTML-escaped in text");
    ok(strstr(h, "href=\"%3Cscript%3E%26%22%27.txt\"") != NULL, "name is percent-encoded in href");
    ok(strstr(h, ".hidden") == NULL, "dot-file hidden by default");
    ok(strstr(h, ".hdir") == NULL, "dot-directory hidden by default");
    ok(strstr(h, "href=\"./\"") == NULL && strstr(h, ">./<") == NULL, "'.' is omitted");
    ok(strstr(h, "<a href=\"../\">../</a>") != NULL, "parent link below the root");
    ok(strstr(h, "href=\"zdir/\">zdir/</a>") != NULL, "directory gets a trailing slash");
    ok(strstr(h, "href=\"link\">link</a>") != NULL, "symlink to a directory is not followed");
    ok(strstr(h, "href=\"a%3Ab\"") != NULL, "':' is encoded so a name cannot become a scheme");
    ok(strstr(h, "href=\"sp%20ace.txt\"") != NULL, "space is percent-encoded in href");
    ok(strstr(h, ">sp ace.txt</a>") != NULL, "space kept in text");
    ok(strstr(h, "<td>5</td>") != NULL, "file size column");
    ok(strstr(h, "Index of /pub/") != NULL, "title names the path");
    ok(strstr(h, "not shown") == NULL, "no summary when everything fits");
    ok(after(h, "../") < after(h, "zdir/") && after(h, "zdir/") < after(h, ">a.txt<") &&
           after(h, ">a.txt<") < after(h, ">a:b<") && after(h, ">a:b<") < after(h, ">b.txt<") &&
           after(h, ">b.txt<") < after(h, ">link<"),
       "parent first, then directories, then files by name");
    char *h2 = listing(dfd, "/pub/", false, 100, &len);
    ok(h2 && strcmp(h, h2) == 0, "second listing of the same fd is identical");
    free(h2);
    free(h);

    h = listing(dfd, "/pub/", true, 100, &len);
    ok(h && strstr(h, ">.hidden<") && strstr(h, ">.hdir/<"), "show_dot lists dot-files");
    ok(h && strstr(h, ">./<") == NULL, "show_dot still omits '.'");
    free(h);

    h = listing(dfd, "/", false, 100, &len);
    ok(h && strstr(h, "../") == NULL, "no parent link at /");
    free(h);

    h = listing(dfd, "/<b>&\"/", false, 100, &len);
    ok(h && strstr(h, "<b>") == NULL && strstr(h, "/&lt;b&gt;&amp;&quot;/"),
       "url path is HTML-escaped in title and heading");
    free(h);

    h = listing(dfd, "/pub/", false, 2, &len);
    ok(h && strstr(h, ">zdir/<") && strstr(h, "&lt;script&gt;"), "max_entries keeps the first two");
    ok(h && strstr(h, ">a.txt<") == NULL && strstr(h, ">b.txt<") == NULL,
       "max_entries drops the rest");
    ok(h && strstr(h, "5 more entries not shown") != NULL, "summary counts omitted entries");
    free(h);

    h = listing(dfd, "/pub/", false, 0, &len);
    ok(h && strstr(h, "<a href=\"../\"") && strstr(h, "7 more entries not shown") &&
           strstr(h, ">zdir/<") == NULL,
       "max_entries 0 lists nothing but the parent and the summary");
    free(h);

    /* many entries, created in scrambled order: the bounded selection must
     * keep exactly the first ones in sort order */
    char big[300];
    snprintf(big, sizeof(big), "%s/big", tmpdir);
    mkdir(big, 0755);
    for (int i = 0; i < 200; i++) {
        char f[64];
        snprintf(f, sizeof(f), "big/f%03d", (i * 77) % 200);
        write_tmp(f, "");
    }
    write_tmp("big/.dot", "");
    int bfd = open(big, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    h = listing(bfd, "/big/", false, 10, &len);
    bool first_ten = h != NULL;
    for (int i = 0; h && i < 200; i++) {
        char f[32];
        snprintf(f, sizeof(f), ">f%03d<", i);
        if ((strstr(h, f) != NULL) != (i < 10))
            first_ten = false;
    }
    ok(first_ten, "200 entries, max 10: exactly f000..f009 are listed");
    ok(h && strstr(h, "190 more entries not shown"), "190 omitted entries are summarised");
    ok(h && after(h, ">f000<") < after(h, ">f009<"), "kept entries are sorted");
    free(h);
    h = listing(bfd, "/big/", false, 1000, &len);
    ok(h && strstr(h, ">f199<") && strstr(h, "not shown") == NULL,
       "max above the count lists everything");
    free(h);
    h = listing(bfd, "/big/", false, 1, &len);
    ok(h && strstr(h, ">f000<") && strstr(h, ">f001<") == NULL &&
           strstr(h, "199 more entries not shown"),
       "max 1 keeps the smallest name");
    free(h);
    close(bfd);

    char *out = NULL;
    errno = 0;
    ok(pt_dirlist_html(-1, "/", false, 10, &out, &len) == -1 && errno == EBADF,
       "bad dirfd fails with EBADF");
    close(dfd);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    test_dirlist();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    return tap_done();
}
