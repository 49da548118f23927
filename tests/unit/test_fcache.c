#include "first.h"
#include "fcache.h"
#include "tap.h"

/* test_fcache.c: the open-file cache's bookkeeping: freshness (valid),
 * LRU eviction at max, replacement of an entry a response still uses,
 * which failures are remembered, the inactive sweep and trimming. Entries
 * hold real descriptors (of /dev/null), so leaks show under ASan/valgrind. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pt_fent *put_file(pt_fcache *fc, const char *key, uint64_t now)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct stat st;
    fstat(fd, &st);
    return pt_fcache_put(fc, key, strlen(key), now, 0, fd, &st, false);
}

static pt_fent *get(pt_fcache *fc, const char *key, uint64_t now)
{
    return pt_fcache_get(fc, key, strlen(key), now);
}

static void test_off(void)
{
    ok(pt_fcache_new(0, 1000, 1000, 0, true) == NULL, "max 0: no cache");
    ok(pt_fcache_new(10, 0, 1000, 0, true) == NULL, "valid 0: no cache");
    /* without a cache an entry is private and freed by its release */
    pt_fent *e = put_file(NULL, "a", 0);
    ok(e && e->refs == 1 && !e->linked, "a private entry without a cache");
    pt_fcache_release(NULL, e);
}

static void test_valid(void)
{
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 0, true);
    pt_fent *e = put_file(fc, "a", 5000);
    pt_fcache_release(fc, e);
    pt_fent *h = get(fc, "a", 5999);
    ok(h == e, "fresh before valid has passed");
    pt_fcache_release(fc, h);
    ok(get(fc, "a", 6000) == NULL, "stale once valid has passed");
    ok(get(fc, "b", 5000) == NULL, "unknown key: miss");
    ok(get(fc, "aa", 5000) == NULL, "a longer key is another key");
    pt_fcache_free(fc);
}

static void test_lru(void)
{
    pt_fcache *fc = pt_fcache_new(3, 1000, 60000, 0, true);
    const char *k[] = {"k1", "k2", "k3", "k4"};
    for (int i = 0; i < 3; i++)
        pt_fcache_release(fc, put_file(fc, k[i], 0));
    pt_fcache_release(fc, get(fc, "k1", 1)); /* k1 is now the most recent */
    pt_fcache_release(fc, put_file(fc, k[3], 2));
    ok(pt_fcache_count(fc) == 3, "never more than max entries");
    pt_fent *e;
    ok((e = get(fc, "k2", 3)) == NULL, "the least recently used one went");
    ok((e = get(fc, "k1", 3)) != NULL, "a recently used one stayed");
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
}

static void test_replace_in_use(void)
{
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 0, true);
    pt_fent *old = put_file(fc, "a", 0); /* a response holds it */
    pt_fent *neu = put_file(fc, "a", 2000);
    ok(!old->linked && old->fd >= 0, "the replaced entry lives on for its user");
    pt_fent *h = get(fc, "a", 2001);
    ok(h == neu, "lookups find the new entry");
    pt_fcache_release(fc, h);
    pt_fcache_release(fc, old); /* freed here (ASan: no leak, no double free) */
    pt_fcache_release(fc, neu);
    ok(pt_fcache_count(fc) == 1, "one entry in the table");
    pt_fcache_free(fc);
}

static void test_errors(void)
{
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 0, true);
    pt_fent *e = pt_fcache_put(fc, "nf", 2, 0, ENOENT, -1, NULL, false);
    ok(e->linked, "ENOENT is remembered");
    pt_fcache_release(fc, e);
    e = pt_fcache_put(fc, "mf", 2, 0, EMFILE, -1, NULL, false);
    ok(!e->linked, "EMFILE is not");
    pt_fcache_release(fc, e);
    e = pt_fcache_put(fc, "sf", 2, 0, EIO, -1, NULL, true);
    ok(!e->linked, "a failed fstat is not");
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
    fc = pt_fcache_new(10, 1000, 60000, 0, false);
    e = pt_fcache_put(fc, "nf", 2, 0, ENOENT, -1, NULL, false);
    ok(!e->linked, "errors = false: ENOENT is not remembered");
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
}

static void test_sweep_and_trim(void)
{
    pt_fcache *fc = pt_fcache_new(10, 100000, 500, 0, true);
    pt_fcache_release(fc, put_file(fc, "a", 0));
    pt_fcache_release(fc, put_file(fc, "b", 400));
    pt_fcache_sweep(fc, 600);
    ok(pt_fcache_count(fc) == 1, "the entry unused for inactive is closed");
    pt_fent *held = get(fc, "b", 601);
    pt_fcache_release(fc, put_file(fc, "c", 602));
    pt_fcache_trim(fc);
    ok(pt_fcache_count(fc) == 1 && held->fd >= 0, "trim closes every entry nobody holds");
    pt_fcache_release(fc, held);
    pt_fcache_free(fc);
}

static void test_load(void)
{
    char path[] = "/tmp/pt-fcache-XXXXXX";
    int w = mkstemp(path);
    ok(w >= 0 && write(w, "0123456789", 10) == 10, "a test file");
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 16, true);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    fstat(fd, &st);
    pt_fent *e = pt_fcache_put(fc, "f", 1, 0, 0, fd, &st, false);
    pt_fcache_load(fc, e);
    ok(e->data && memcmp(e->data, "0123456789", 10) == 0, "a small file's content is kept");
    pt_fcache_release(fc, e);
    /* a stat that does not match the file any more: not kept, not cached */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    fstat(fd, &st);
    st.st_size = 9;
    e = pt_fcache_put(fc, "g", 1, 0, 0, fd, &st, false);
    pt_fcache_load(fc, e);
    ok(!e->data && !e->linked, "changed since its fstat: served uncached");
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
    close(w);
    unlink(path);
}

int main(void)
{
    test_off();
    test_valid();
    test_lru();
    test_replace_in_use();
    test_errors();
    test_sweep_and_trim();
    test_load();
    return tap_done();
}
