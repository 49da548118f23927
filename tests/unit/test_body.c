#include "first.h"
#include "body.h"

/* test_body.c: request-body storage: memory below the threshold, an
 * unnamed temp file above it (nothing left in tmp_dir), identical read-back,
 * fd closed on free, and error paths. */

#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

/* The fd's /proc link must say the file has no name any more: "(deleted)"
 * (mkostemp + unlink, and O_TMPFILE's "/dir/#ino (deleted)"). */
static bool fd_is_unnamed(int fd)
{
    char link[64], target[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return false;
    target[n] = '\0';
    printf("# fd %d -> %s\n", fd, target);
    return strstr(target, "(deleted)") != NULL;
}

static bool fd_is_closed(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static void fill_random(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        p[i] = (char)(seed >> 3);
    }
}

static void test_memory(void)
{
    pt_body b;
    char buf[16];

    pt_body_init(&b, 100, tmpdir);
    ok(pt_body_in_memory(&b) && b.len == 0 && b.fd == -1, "body starts empty, in memory");
    ok(pt_body_append(&b, "hello ", 6) == 0 && pt_body_append(&b, "world", 5) == 0,
       "body small appends succeed");
    ok(pt_body_in_memory(&b) && b.len == 11, "body small body stays in memory");
    ok(b.mem_cap <= b.mem_limit, "body memory never grows past mem_limit");
    ok(pt_body_read(&b, 0, buf, sizeof(buf)) == 11 && memcmp(buf, "hello world", 11) == 0,
       "body memory read-back, clipped to length");
    ok(pt_body_read(&b, 6, buf, 3) == 3 && memcmp(buf, "wor", 3) == 0,
       "body memory read at offset");
    ok(pt_body_read(&b, 11, buf, 4) == 0 && pt_body_read(&b, 1000, buf, 4) == 0,
       "body read at or past the end is 0");
    ok(pt_body_append(&b, "x", 0) == 0 && b.len == 11, "body empty append is a no-op");
    ok(dir_entries(tmpdir) == 0, "body in memory creates no file");
    pt_body_free(&b);
    ok(b.mem == NULL && b.len == 0 && b.fd == -1 && b.mem_limit == 100,
       "body free resets but keeps settings");
    pt_body_free(&b);
    ok(b.mem == NULL, "body double free is harmless");

    char big[100];
    memset(big, 'm', sizeof(big));
    pt_body_init(&b, 100, tmpdir);
    ok(pt_body_append(&b, big, 60) == 0 && pt_body_append(&b, big, 40) == 0 &&
           pt_body_in_memory(&b) && b.len == 100,
       "body exactly mem_limit stays in memory");
    ok(pt_body_append(&b, "z", 1) == 0 && !pt_body_in_memory(&b) && b.len == 101,
       "body one byte past mem_limit spills");
    ok(b.mem == NULL && b.mem_len == 0, "body spill frees the memory part");
    ok(pt_body_read(&b, 95, buf, 10) == 6 && memcmp(buf, "mmmmmz", 6) == 0,
       "body memory part copied to the file before the new bytes");
    pt_body_free(&b);
}

static void test_spill(void)
{
    enum { SIZE = 5 * 1024 * 1024 + 123 };
    char *data = malloc(SIZE), *back = malloc(SIZE);
    pt_body b;
    size_t off = 0;
    unsigned seed = 7;
    bool fine = true;

    fill_random(data, SIZE, 0x9e3779b9u);
    pt_body_init(&b, 64 * 1024, tmpdir);
    while (off < SIZE && fine) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % 70000;
        if (n > SIZE - off)
            n = SIZE - off;
        fine = pt_body_append(&b, data + off, n) == 0;
        off += n;
    }
    ok(fine && b.len == SIZE, "body 5 MiB in uneven appends all succeed");
    ok(!pt_body_in_memory(&b) && b.fd >= 0, "body above threshold lives in a file");
    ok(fd_is_unnamed(b.fd), "body temp file has no name (/proc link says deleted)");
    ok(dir_entries(tmpdir) == 0, "body tmp dir has no entries after spill");

    struct stat st;
    ok(fstat(b.fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 &&
           (uint64_t)st.st_size == SIZE,
       "body temp file is regular, mode 0600, full size");
    ok(fcntl(b.fd, F_GETFD) & FD_CLOEXEC, "body temp file is close-on-exec");

    memset(back, 0, SIZE);
    ok(pt_body_read(&b, 0, back, SIZE) == SIZE && memcmp(back, data, SIZE) == 0,
       "body file read-back identical");
    ok(pt_body_read(&b, SIZE - 10, back, 100) == 10 && memcmp(back, data + SIZE - 10, 10) == 0,
       "body file read clipped at the end");
    ok(pt_body_read(&b, 1234567, back, 777) == 777 && memcmp(back, data + 1234567, 777) == 0,
       "body file read at an offset (pread)");
    /* a moved file offset must not matter: reads and appends use pread/pwrite */
    lseek(b.fd, 0, SEEK_SET);
    ok(pt_body_append(&b, "TAIL", 4) == 0 && pt_body_read(&b, SIZE, back, 10) == 4 &&
           memcmp(back, "TAIL", 4) == 0 && pt_body_read(&b, 0, back, 4) == 4 &&
           memcmp(back, data, 4) == 0,
       "body appends after spill go to the end regardless of file offset");

    int fd = b.fd;
    pt_body_free(&b);
    ok(fd_is_closed(fd), "body free closes the temp file fd");
    ok(b.fd == -1 && b.len == 0 && pt_body_in_memory(&b), "body free resets to memory");

    ok(pt_body_append(&b, "again", 5) == 0 && pt_body_in_memory(&b) && b.len == 5,
       "body reusable after free");
    pt_body_free(&b);

    pt_body_init(&b, 0, tmpdir);
    ok(pt_body_append(&b, "a", 1) == 0 && !pt_body_in_memory(&b),
       "body mem_limit 0 spills at once");
    fd = b.fd;
    pt_body_free(&b);
    ok(fd_is_closed(fd), "body free closes the fd of an immediate spill");
    ok(dir_entries(tmpdir) == 0, "body tmp dir still empty");
    free(data);
    free(back);
}

static void test_tmpfile(void)
{
    int fd = pt_body_tmpfile(tmpdir);

    ok(fd >= 0 && fd_is_unnamed(fd) && dir_entries(tmpdir) == 0, "tmpfile is unnamed");
    ok(fd >= 0 && write(fd, "abc", 3) == 3, "tmpfile is writable");
    close(fd);

    fd = pt_body_tmpfile_fallback(tmpdir);
    ok(fd >= 0, "tmpfile fallback (mkostemp) opens");
    ok(fd >= 0 && fd_is_unnamed(fd), "tmpfile fallback file is unlinked at once");
    ok(dir_entries(tmpdir) == 0, "tmpfile fallback leaves no entry in tmp dir");
    struct stat st;
    ok(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600 &&
           (fcntl(fd, F_GETFD) & FD_CLOEXEC),
       "tmpfile fallback is 0600 and close-on-exec");
    if (fd >= 0)
        close(fd);

    fd = pt_body_tmpfile(NULL);
    ok(fd >= 0 && fd_is_unnamed(fd), "tmpfile with NULL dir uses /tmp");
    if (fd >= 0)
        close(fd);
}

static void test_errors(void)
{
    char missing[96];
    pt_body b;
    char buf[8];

    snprintf(missing, sizeof(missing), "%s/does-not-exist", tmpdir);
    errno = 0;
    ok(pt_body_tmpfile(missing) == -1 && errno == ENOENT, "tmpfile in missing dir fails ENOENT");
    ok(pt_body_tmpfile_fallback(missing) == -1, "tmpfile fallback in missing dir fails");

    pt_body_init(&b, 4, missing);
    ok(pt_body_append(&b, "abcd", 4) == 0, "body in memory works without tmp dir");
    ok(pt_body_append(&b, "e", 1) == -1, "body spill to missing tmp dir returns -1");
    ok(pt_body_in_memory(&b) && b.len == 4 && pt_body_read(&b, 0, buf, 8) == 4 &&
           memcmp(buf, "abcd", 4) == 0,
       "body failed spill leaves the stored bytes intact");
    pt_body_free(&b);

    /* a regular file as tmp_dir: neither O_TMPFILE nor mkostemp can work */
    char file[96];
    snprintf(file, sizeof(file), "%s/plain", tmpdir);
    int f = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(f);
    pt_body_init(&b, 0, file);
    ok(pt_body_append(&b, "x", 1) == -1 && b.len == 0, "body tmp_dir that is a file fails");
    pt_body_free(&b);
    unlink(file);

    char longdir[PATH_MAX + 10];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    errno = 0;
    ok(pt_body_tmpfile_fallback(longdir) == -1 && errno == ENAMETOOLONG,
       "tmpfile fallback rejects an over-long dir name");
}

int main(void)
{
    strcpy(tmpdir, "/tmp/pt-test-body-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_memory();
    test_spill();
    test_tmpfile();
    test_errors();
    ok(dir_entries(tmpdir) == 0, "tmp dir empty at the end");
    ok(rmdir(tmpdir) == 0, "tmp dir removable");
    return tap_done();
}
