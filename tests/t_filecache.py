"""t_filecache.py: the open-file cache (open_file_cache) against a changing
document root. A file changed in place, replaced by rename, deleted,
created, chmod-ed or re-pointed (symlinks) is served as it is now once the
cached entry is older than open_file_cache.valid; until then every answer is
the old file or the new one, never a mix; with the cache off (max = 0 or
valid = 0) every request sees the change at once. No timing is asserted:
the tests wait (up to 10 s) for the change to show and check every answer
seen meanwhile. The symlink and dot-file policies hold whatever the cache
holds, and the cache keeps at most max files open."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

OLD_SMALL = b'old small file\n' * 60            # 900 bytes: content kept in memory
NEW_SMALL = b'NEW small file, longer\n' * 70    # 1610 bytes
OLD_BIG = b'o' * (64 * 1024)                    # above content_max: sent from the fd
NEW_BIG = b'N' * (96 * 1024)
SECRET = b'SECRET outside the root\n'
INSIDE = b'inside the root\n'


def get(port, path, host='localhost', headers=()):
    r = harness.fetch(port, 'GET', path, headers=headers, host=host, timeout=20)
    # the body is exactly Content-Length bytes and nothing follows it
    if r.status == 200:
        assert r.rest == r.body, (len(r.rest), len(r.body))
        assert int(r.header('Content-Length')) == len(r.body)
    return r


def answer(r):
    return (r.status, r.body if r.status == 200 else None)


class CacheCase(unittest.TestCase):
    """A root with a file and a secret outside it; subclasses set CONF (the
    open_file_cache group) and run the scenarios."""
    CONF = ''

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix='portico-fcache-')
        self.addCleanup(shutil.rmtree, self.base, True)
        self.www = os.path.join(self.base, 'www')
        os.mkdir(self.www)
        with open(os.path.join(self.base, 'secret'), 'wb') as f:
            f.write(SECRET)
        conf = 'root = "%s";\n%s\n' % (self.www, self.CONF)
        self.srv = harness.Server(conf=conf, docroot=False)
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def path(self, rel):
        return os.path.join(self.www, rel)

    def write(self, rel, data, mtime=None):
        with open(self.path(rel), 'wb') as f:
            f.write(data)
        if mtime is not None:
            os.utime(self.path(rel), (mtime, mtime))

    def wait_change(self, path, old, new, host='localhost'):
        """Request path until it answers new (status, body); every answer
        before that must be old. Returns the number of requests."""
        seen = []

        def done():
            a = answer(get(self.srv.port, path, host=host))
            seen.append(a)
            self.assertIn(a, (old, new), 'neither the old nor the new answer')
            return a == new

        self.assertTrue(harness.Server.wait_for(done, timeout=10, interval=0.02),
                        'still %r after 10 s' % (seen[-1:],))
        return len(seen)

    def warm(self, path, want, host='localhost'):
        # twice: the second answer comes from the cache when there is one
        for _ in range(2):
            self.assertEqual(answer(get(self.srv.port, path, host=host)), want)


class Cached(CacheCase):
    CONF = 'open_file_cache = { max = 100; valid = "200ms"; };'

    def test_small_file_changed_in_place(self):
        self.write('f.txt', OLD_SMALL, 1600000000)
        self.warm('/f.txt', (200, OLD_SMALL))
        self.write('f.txt', NEW_SMALL, 1600000100)
        self.wait_change('/f.txt', (200, OLD_SMALL), (200, NEW_SMALL))

    def test_small_file_same_size_same_mtime_still_refreshed(self):
        # nothing in stat() changes: only re-reading after valid finds it
        self.write('same.txt', b'A' * 500, 1600000000)
        self.warm('/same.txt', (200, b'A' * 500))
        self.write('same.txt', b'B' * 500, 1600000000)
        self.wait_change('/same.txt', (200, b'A' * 500), (200, b'B' * 500))

    def test_big_file_changed_in_place_is_never_mixed(self):
        self.write('big.bin', OLD_BIG, 1600000000)
        self.warm('/big.bin', (200, OLD_BIG))
        self.write('big.bin', NEW_BIG, 1600000100)
        # get() checks Content-Length against the bytes that came
        self.wait_change('/big.bin', (200, OLD_BIG), (200, NEW_BIG))

    def test_replaced_by_rename(self):
        for name, old, new in (('r.txt', OLD_SMALL, NEW_SMALL), ('r.bin', OLD_BIG, NEW_BIG)):
            self.write(name, old)
            self.warm('/' + name, (200, old))
            self.write(name + '.tmp', new)
            os.rename(self.path(name + '.tmp'), self.path(name))
            self.wait_change('/' + name, (200, old), (200, new))

    def test_deleted_becomes_404(self):
        self.write('gone.txt', OLD_SMALL)
        self.warm('/gone.txt', (200, OLD_SMALL))
        os.unlink(self.path('gone.txt'))
        self.wait_change('/gone.txt', (200, OLD_SMALL), (404, None))

    def test_created_after_a_404(self):
        self.warm('/later.txt', (404, None))
        self.write('later.txt', NEW_SMALL)
        self.wait_change('/later.txt', (404, None), (200, NEW_SMALL))

    def test_chmod_is_seen_like_without_cache(self):
        # as root the read bit does not matter (200 either way); as another
        # user 000 means 403: the cached server must end up answering what
        # a fresh open says
        self.write('perm.txt', OLD_SMALL)
        self.warm('/perm.txt', (200, OLD_SMALL))
        os.chmod(self.path('perm.txt'), 0)
        fresh = (200, OLD_SMALL) if os.geteuid() == 0 else (403, None)
        self.wait_change('/perm.txt', (200, OLD_SMALL), fresh)
        os.chmod(self.path('perm.txt'), 0o644)
        self.wait_change('/perm.txt', fresh, (200, OLD_SMALL))

    def test_symlink_repointed_outside_is_refused(self):
        self.write('inside.txt', INSIDE)
        os.symlink('inside.txt', self.path('link'))
        self.warm('/link', (200, INSIDE))
        # an atomic swap of the link to a target outside the root
        os.symlink(os.path.join(self.base, 'secret'), self.path('link.new'))
        os.rename(self.path('link.new'), self.path('link'))
        self.wait_change('/link', (200, INSIDE), (404, None))
        for _ in range(5):
            r = get(self.srv.port, '/link')
            self.assertEqual(r.status, 404)
            self.assertNotIn(b'SECRET', r.raw)

    def test_symlink_outside_refused_before_and_after_repointing_inside(self):
        os.symlink(os.path.join(self.base, 'secret'), self.path('out'))
        self.warm('/out', (404, None))
        self.write('in.txt', INSIDE)
        os.symlink('in.txt', self.path('out.new'))
        os.rename(self.path('out.new'), self.path('out'))
        self.wait_change('/out', (404, None), (200, INSIDE))

    def test_directory_index_appears_and_goes(self):
        os.mkdir(self.path('d'))
        self.warm('/d/', (403, None))
        self.write('d/index.html', NEW_SMALL)
        self.wait_change('/d/', (403, None), (200, NEW_SMALL))
        os.unlink(self.path('d/index.html'))
        self.wait_change('/d/', (200, NEW_SMALL), (403, None))

    def test_conditional_requests_follow_the_new_file(self):
        self.write('c.txt', OLD_SMALL, 1600000000)
        r = get(self.srv.port, '/c.txt')
        etag, lm = r.header('ETag'), r.header('Last-Modified')
        self.assertEqual(get(self.srv.port, '/c.txt', headers={'If-None-Match': etag}).status,
                         304)
        self.assertEqual(get(self.srv.port, '/c.txt', headers={'If-Modified-Since': lm}).status,
                         304)
        r = get(self.srv.port, '/c.txt', headers={'Range': 'bytes=0-2'})
        self.assertEqual((r.status, r.body), (206, OLD_SMALL[:3]))
        self.write('c.txt', NEW_SMALL, 1600000100)
        self.assertTrue(harness.Server.wait_for(
            lambda: get(self.srv.port, '/c.txt', headers={'If-None-Match': etag}).status == 200,
            timeout=10))
        r = get(self.srv.port, '/c.txt', headers={'If-None-Match': etag})
        self.assertEqual(r.body, NEW_SMALL)
        self.assertNotEqual(r.header('ETag'), etag)
        self.assertEqual(get(self.srv.port, '/c.txt', headers={'If-Modified-Since': lm}).status,
                         200)
        r = get(self.srv.port, '/c.txt', headers={'Range': 'bytes=0-2', 'If-Range': etag})
        self.assertEqual((r.status, r.body), (200, NEW_SMALL), 'a stale If-Range gets it all')

    def test_dotfiles_stay_hidden(self):
        self.write('.secret', OLD_SMALL)
        for _ in range(3):
            self.assertEqual(get(self.srv.port, '/.secret').status, 404)


class Off(CacheCase):
    """Without the cache every request opens the file again."""
    CONF = 'open_file_cache = { max = 0; };'

    def immediate(self, path, want):
        self.assertEqual(answer(get(self.srv.port, path)), want)

    def test_every_change_shows_at_once(self):
        self.write('f.txt', OLD_SMALL, 1600000000)
        self.warm('/f.txt', (200, OLD_SMALL))
        self.write('f.txt', b'X' * len(OLD_SMALL), 1600000000)
        self.immediate('/f.txt', (200, b'X' * len(OLD_SMALL)))
        self.write('f.tmp', NEW_SMALL)
        os.rename(self.path('f.tmp'), self.path('f.txt'))
        self.immediate('/f.txt', (200, NEW_SMALL))
        os.unlink(self.path('f.txt'))
        self.immediate('/f.txt', (404, None))
        self.write('f.txt', OLD_BIG)
        self.immediate('/f.txt', (200, OLD_BIG))
        os.symlink('f.txt', self.path('l'))
        self.immediate('/l', (200, OLD_BIG))
        os.unlink(self.path('l'))
        os.symlink(os.path.join(self.base, 'secret'), self.path('l'))
        self.immediate('/l', (404, None))


class ValidZero(Off):
    """valid = 0 is off too."""
    CONF = 'open_file_cache = { valid = "0"; };'


class NoErrors(CacheCase):
    """errors = false: a 404 is not remembered, a found file is."""
    CONF = 'open_file_cache = { valid = "1h"; errors = false; };'

    def test_created_file_shows_at_once(self):
        self.warm('/new.txt', (404, None))
        self.write('new.txt', NEW_SMALL)
        self.assertEqual(answer(get(self.srv.port, '/new.txt')), (200, NEW_SMALL))


class LongValid(CacheCase):
    """valid = 1h: a hit really is served from the cache (the deleted file
    is still answered), which shows the tests above wait for something."""
    CONF = 'open_file_cache = { valid = "1h"; };'

    def test_a_hit_does_not_touch_the_file_system(self):
        self.write('kept.txt', OLD_SMALL)
        self.warm('/kept.txt', (200, OLD_SMALL))
        os.unlink(self.path('kept.txt'))
        self.assertEqual(answer(get(self.srv.port, '/kept.txt')), (200, OLD_SMALL))


def open_files_under(pid, root):
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith(root + '/'):
            n += 1
    return n


class Bounded(CacheCase):
    """max bounds the open files; inactive closes unused ones."""
    CONF = 'open_file_cache = { max = 8; valid = "1h"; inactive = "300ms"; };'

    def test_at_most_max_files_open_and_all_answers_right(self):
        for i in range(40):
            self.write('f%d.txt' % i, b'file %d\n' % i)
        for rnd in range(3):
            for i in range(40):
                self.assertEqual(answer(get(self.srv.port, '/f%d.txt' % i)),
                                 (200, b'file %d\n' % i))
        (pid,) = self.srv.worker_pids()
        self.assertLessEqual(open_files_under(pid, self.www), 8)

    def test_unused_entries_are_closed(self):
        for i in range(5):
            self.write('u%d.txt' % i, b'x')
            get(self.srv.port, '/u%d.txt' % i)
        (pid,) = self.srv.worker_pids()
        self.assertGreater(open_files_under(pid, self.www), 0)
        # deleted files must not stay open forever either
        for i in range(5):
            os.unlink(self.path('u%d.txt' % i))
        self.assertTrue(harness.Server.wait_for(lambda: open_files_under(pid, self.www) == 0,
                                                timeout=10))


class TwoVhostsOneRoot(unittest.TestCase):
    """Two vhosts share a root but not the symlink policy: what one may open
    is not handed to the other from the cache."""

    def test_follow_symlinks_is_part_of_the_key(self):
        base = tempfile.mkdtemp(prefix='portico-fcache-')
        self.addCleanup(shutil.rmtree, base, True)
        www = os.path.join(base, 'www')
        os.mkdir(www)
        with open(os.path.join(base, 'secret'), 'wb') as f:
            f.write(SECRET)
        os.symlink(os.path.join(base, 'secret'), os.path.join(www, 'out'))
        conf = '''
root = "%s";
open_file_cache = { valid = "1h"; };
vhosts = (
  { names = [ "open.test" ]; root = "%s"; follow_symlinks = true; },
  { names = [ "strict.test" ]; root = "%s"; follow_symlinks = false; }
);
''' % (www, www, www)
        srv = harness.Server(conf=conf, docroot=False)
        srv.start()
        self.addCleanup(srv.stop)
        for _ in range(2):
            self.assertEqual(answer(get(srv.port, '/out', host='open.test')), (200, SECRET))
            r = get(srv.port, '/out', host='strict.test')
            self.assertEqual(r.status, 404)
            self.assertNotIn(b'SECRET', r.raw)
            r = get(srv.port, '/out', host='localhost')
            self.assertEqual(r.status, 404)


if __name__ == '__main__':
    harness.main()
