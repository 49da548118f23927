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
    ok(pt_fcache_new(0, 1000, 1000, 0, 0, 1 << 20, true) == NULL, "max 0: no cache");
    ok(pt_fcache_new(10, 0, 1000, 0, 0, 1 << 20, true) == NULL, "valid 0: no cache");
    /* without a cache an entry is private and freed by its release */
    pt_fent *e = put_file(NULL, "a", 0);
    ok(e && e->refs == 1 && !e->linked, "a private entry without a cache");
    pt_fcache_release(NULL, e);
}

static void test_valid(void)
{
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 0, 0, 1 << 20, true);
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
    pt_fcache *fc = pt_fcache_new(3, 1000, 60000, 0, 0, 1 << 20, true);
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
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 0, 0, 1 << 20, true);
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
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 0, 0, 1 << 20, true);
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
    fc = pt_fcache_new(10, 1000, 60000, 0, 0, 1 << 20, false);
    e = pt_fcache_put(fc, "nf", 2, 0, ENOENT, -1, NULL, false);
    ok(!e->linked, "errors = false: ENOENT is not remembered");
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
}

static void test_sweep_and_trim(void)
{
    pt_fcache *fc = pt_fcache_new(10, 100000, 500, 0, 0, 1 << 20, true);
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
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 16, 0, 1 << 20, true);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    fstat(fd, &st);
    pt_fent *e = pt_fcache_put(fc, "f", 1, 0, 0, fd, &st, false);
    pt_fcache_load(fc, e, false, true);
    ok(e->data && memcmp(e->data, "0123456789", 10) == 0, "a small file's content is kept");
    pt_fcache_release(fc, e);
    /* a stat that does not match the file any more: not kept, not cached */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    fstat(fd, &st);
    st.st_size = 9;
    e = pt_fcache_put(fc, "g", 1, 0, 0, fd, &st, false);
    pt_fcache_load(fc, e, false, true);
    ok(!e->data && !e->linked, "changed since its fstat: served uncached");
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
    close(w);
    unlink(path);
}

/* A file of n bytes (each its index's low byte), open, and its fstat. */
static int tmp_file(size_t n, struct stat *st)
{
    char path[] = "/tmp/pt-fcache-XXXXXX";
    int w = mkstemp(path);
    if (w < 0)
        return -1;
    unlink(path);
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)i;
        if (write(w, &b, 1) != 1)
            break;
    }
    fstat(w, st);
    return w;
}

static pt_fent *put_loaded(pt_fcache *fc, const char *key, size_t n, bool copies)
{
    struct stat st;
    int fd = tmp_file(n, &st);
    pt_fent *e = pt_fcache_put(fc, key, strlen(key), 0, 0, fd, &st, false);
    pt_fcache_load(fc, e, copies, true);
    return e;
}

static void test_content_limits_and_memory(void)
{
    /* content_max 16, content_max_tls 100, content_memory 250 */
    pt_fcache *fc = pt_fcache_new(10, 1000, 60000, 16, 100, 250, true);
    pt_fent *a = put_loaded(fc, "a", 80, false);
    ok(!a->data && a->linked, "above content_max, for a response that can send the file: not kept");
    pt_fcache_load(fc, a, true, true);
    ok(a->data && a->data[79] == 79 && pt_fcache_content_bytes(fc) == 80,
       "the same entry for a copying response (TLS, HTTP/2): kept up to content_max_tls");
    pt_fcache_release(fc, a);
    pt_fent *b = put_loaded(fc, "b", 101, true);
    ok(!b->data && b->linked, "above content_max_tls: not kept");
    pt_fcache_release(fc, b);
    pt_fent *c = put_loaded(fc, "c", 90, true);
    pt_fent *d = put_loaded(fc, "d", 90, true);
    a = get(fc, "a", 1);
    ok(c->data && d->data && a && a->linked && !a->data && pt_fcache_content_bytes(fc) == 180,
       "over content_memory: the least recently used content goes, its entry stays");
    pt_fcache_release(fc, a);
    pt_fcache_release(fc, c);
    pt_fent *e = put_loaded(fc, "e", 90, true);
    c = get(fc, "c", 1);
    ok(e->data && d->data && c && !c->data && pt_fcache_content_bytes(fc) == 180,
       "then the next least recent that no response sends (d is being sent)");
    pt_fcache_release(fc, c);
    struct stat st;
    int fd = tmp_file(90, &st);
    pt_fent *f = pt_fcache_put(fc, "f", 1, 0, 0, fd, &st, false);
    pt_fcache_load(fc, f, true, false);
    ok(!f->data && f->linked, "no eviction asked and no free room: not kept");
    pt_fcache_load(fc, f, true, true);
    ok(!f->data && f->linked && pt_fcache_content_bytes(fc) == 180,
       "all content in use: not kept either, the entry stays (its file is sent)");
    pt_fcache_release(fc, f);
    /* an entry replaced while a response sends it counts until released */
    pt_fent *d2 = put_loaded(fc, "d", 10, false);
    ok(d2->data && d->data && !d->linked && pt_fcache_content_bytes(fc) == 190,
       "replaced but still sent: its content still counts");
    pt_fcache_release(fc, d);
    ok(pt_fcache_content_bytes(fc) == 100, "released: its bytes are given back");
    pt_fcache_release(fc, d2);
    pt_fcache_release(fc, e);
    pt_fcache_free(fc);
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
    test_content_limits_and_memory();
    return tap_done();
}
