"""t_h2_rules.py: what makes an HTTP/2 request malformed (RFC 9113 §8),
one test per rule, with a raw client (tests/lib/h2raw.py) on an h2c
prior-knowledge listener. A malformed request gets RST_STREAM
PROTOCOL_ERROR (§8.1.1) and never reaches a handler; the connection goes
on and the next stream is answered: a field whose name or value holds a
byte no field may hold makes the request malformed, regular or not, as
nghttp2's own checks did. Also the content-length against the DATA
received and the trailers' rules."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402
import h2raw  # noqa: E402
from h2raw import literal  # noqa: E402

INDEX = b'hello over h2\n'
# the request's X- fields and its body length, as a CGI sees them
ENV_CGI = b'''#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env | grep '^HTTP_X_' | sort
echo "CONTENT_LENGTH=$CONTENT_LENGTH"
'''


def req(*fields):
    """A header block of literal fields, in the order given."""
    return b''.join(literal(n, v) for n, v in fields)


GOOD = ((':method', 'GET'), (':scheme', 'http'), (':path', '/index.html'),
        (':authority', 'localhost'))


def good(*extra, drop=(), method=None, path=None):
    f = [(n, v) for n, v in GOOD if n not in drop]
    if method:
        f = [(n, method if n == ':method' else v) for n, v in f]
    if path is not None:
        f = [(n, path if n == ':path' else v) for n, v in f]
    return req(*(f + list(extra)))


@unittest.skipIf(h2raw.hpack is None, 'python3-hpack is not installed')
class H2Rules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        srv = harness.Server('-o', 'http2_cleartext=true', '--cgi', '/cgi-bin/=@CGI@')
        cgi = os.path.join(srv.tmpdir, 'cgi')
        os.mkdir(cgi)
        with open(os.path.join(cgi, 'env.cgi'), 'wb') as f:
            f.write(ENV_CGI)
        os.chmod(os.path.join(cgi, 'env.cgi'), 0o755)
        srv.args = [a.replace('@CGI@', cgi) for a in srv.args]
        srv.write_file('index.html', INDEX)
        srv.start()
        cls.srv = srv

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def setUp(self):
        self.c = h2raw.Conn(self.srv.port)
        self.addCleanup(self.c.close)
        self.sid = 1

    def send(self, *frames):
        """frames for the next stream id (a function of the id each)"""
        sid = self.sid
        self.sid += 2
        self.c.send(b''.join(f(sid) for f in frames))
        return sid

    def reset_code(self, sid):
        f, seen = self.c.until(lambda f: f[2] == sid and f[0] in (h2raw.RST_STREAM, h2raw.HEADERS))
        self.assertIsNotNone(f, 'nothing on stream %d: %r' % (sid, seen))
        self.assertEqual(f[0], h2raw.RST_STREAM, 'stream %d was answered: %r' %
                         (sid, self.c.fields.get(sid)))
        return int.from_bytes(f[3][:4], 'big')

    def assert_malformed(self, block, *more, end_stream=True):
        """the request is reset with PROTOCOL_ERROR, and the connection
        still answers the next one"""
        sid = self.send(lambda s: h2raw.headers(s, block, end_stream=end_stream),
                        *[(lambda s, m=m: m(s)) for m in more])
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()

    def assert_served(self, block=None, path_body=INDEX):
        sid = self.send(lambda s: h2raw.headers(s, block or good()))
        r = self.c.response(sid)
        self.assertIsNotNone(r, 'stream %d not answered: %s' % (sid, self.srv.stderr_text()[-2000:]))
        if path_body is not None:
            self.assertEqual(r, (200, path_body))
        return r

    def cgi(self, *extra, body=None):
        """the env CGI's answer to a request with extra fields"""
        block = good(*extra, path='/cgi-bin/env.cgi',
                     method='POST' if body is not None else None)
        frames = [lambda s: h2raw.headers(s, block, end_stream=body is None)]
        if body is not None:
            frames.append(lambda s: h2raw.frame(h2raw.DATA, h2raw.END_STREAM, s, body))
        sid = self.send(*frames)
        r = self.c.response(sid)
        self.assertIsNotNone(r, 'stream %d reset' % sid)
        self.assertEqual(r[0], 200)
        return r[1].decode('latin-1')

    # ---- field names (§8.2, §8.2.1) ----------------------------------------

    def test_uppercase_name_is_malformed(self):
        self.assert_malformed(good(('X-Upper', 'a')))

    def test_pseudo_name_with_a_bad_byte_is_malformed(self):
        self.assert_malformed(good(drop=(':path',)) + literal(':pa th', '/index.html'))

    def test_regular_name_with_a_bad_byte_is_malformed(self):
        for name in ('x a', 'x:a', 'x"a', 'x\x7fa', 'x\xe9a', 'x{a'):
            with self.subTest(name=name):
                self.assert_malformed(good((name.encode('latin-1'), '1')))

    def test_empty_name_is_malformed(self):
        self.assert_malformed(good(('', 'v')))
        self.assert_malformed(good((':', 'v')))

    def test_name_with_every_tchar_is_kept(self):
        out = self.cgi(("x-!#$%&'*+.^_`|~09az", '1'), ('x-ok', '2'))
        self.assertIn('HTTP_X_OK=2', out)

    # ---- field values (§8.2.1) ---------------------------------------------

    def test_value_with_a_control_byte_is_malformed(self):
        for bad in ('a\x01b', 'a\x7fb', 'a\rb', 'a\nb', 'a\x00b', ' lead', 'trail\t', '\t'):
            with self.subTest(value=bad):
                self.assert_malformed(good(('x-bad', bad)))

    def test_value_with_inner_space_tab_and_high_bytes_is_kept(self):
        out = self.cgi(('x-v', 'a b\tc\xe9'.encode('latin-1')), ('x-e', ''))
        self.assertIn('HTTP_X_V=a b', out)
        self.assertIn('HTTP_X_E=\n', out)

    def test_pseudo_value_with_a_bad_byte_is_malformed(self):
        for name, value in ((':path', '/a b'), (':path', '/a\x7f'), (':authority', 'a b'),
                            (':authority', 'a"b'), (':method', 'G T'), (':method', 'G\x00'),
                            (':scheme', '1http'), (':scheme', 'ht_tp')):
            with self.subTest(name=name, value=value):
                self.assert_malformed(good(drop=(name,)) + literal(name, value))

    def test_bad_host_value_is_malformed(self):
        self.assert_malformed(good(('host', 'a b'), drop=(':authority',)))

    # ---- pseudo-header fields (§8.3) ---------------------------------------

    def test_pseudo_after_regular_is_malformed(self):
        self.assert_malformed(req((':method', 'GET'), (':scheme', 'http'), ('x-a', '1'),
                                  (':path', '/index.html'), (':authority', 'localhost')))

    def test_unknown_pseudo_is_malformed(self):
        self.assert_malformed(good((':foo', 'bar')))

    def test_response_pseudo_in_a_request_is_malformed(self):
        self.assert_malformed(req((':status', '200')) + good())

    def test_protocol_pseudo_is_malformed(self):
        # no SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §4)
        self.assert_malformed(good((':protocol', 'websocket'), method='CONNECT'))

    def test_repeated_pseudo_is_malformed(self):
        for name in (':method', ':scheme', ':path', ':authority'):
            with self.subTest(name=name):
                self.assert_malformed(req(*(GOOD + ((name, dict(GOOD)[name]),))))

    def test_missing_pseudo_is_malformed(self):
        for name in (':method', ':scheme', ':path'):
            with self.subTest(name=name):
                self.assert_malformed(good(drop=(name,)))

    def test_empty_pseudo_is_malformed(self):
        for name in (':method', ':scheme', ':path', ':authority'):
            with self.subTest(name=name):
                self.assert_malformed(good(drop=(name,)) + literal(name, ''))

    def test_no_authority_nor_host_is_malformed(self):
        self.assert_malformed(good(drop=(':authority',)))

    def test_host_alone_is_enough(self):
        self.assert_served(good(('host', 'localhost'), drop=(':authority',)))

    def test_repeated_or_empty_host_is_malformed(self):
        self.assert_malformed(good(('host', 'a'), ('host', 'a')))
        self.assert_malformed(good(('host', '')))

    def test_path_not_starting_with_slash_is_malformed(self):
        self.assert_malformed(good(path='index.html'))
        self.assert_malformed(good(path='*'))  # * is OPTIONS' alone

    def test_options_asterisk_is_a_request(self):
        sid = self.send(lambda s: h2raw.headers(s, good(method='OPTIONS', path='*')))
        f, seen = self.c.until(lambda f: f[2] == sid and f[0] in (h2raw.RST_STREAM, h2raw.HEADERS))
        self.assertEqual(f and f[0], h2raw.HEADERS, seen)

    def test_connect_rules(self):
        # §8.5: :method and :authority only
        self.assert_malformed(req((':method', 'CONNECT'), (':authority', 'a:1'),
                                  (':path', '/')))
        self.assert_malformed(req((':method', 'CONNECT'), (':authority', 'a:1'),
                                  (':scheme', 'http')))
        self.assert_malformed(req((':method', 'CONNECT')))
        sid = self.send(lambda s: h2raw.headers(s, req((':method', 'CONNECT'),
                                                       (':authority', 'a:1'))))
        f, seen = self.c.until(lambda f: f[2] == sid and f[0] in (h2raw.RST_STREAM, h2raw.HEADERS))
        self.assertEqual(f and f[0], h2raw.HEADERS, seen)  # answered (an error status)

    # ---- connection-specific fields (§8.2.2) -------------------------------

    def test_connection_specific_fields_are_malformed(self):
        for name in ('connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
                     'upgrade'):
            with self.subTest(name=name):
                self.assert_malformed(good((name, 'x')))

    def test_te_other_than_trailers_is_malformed(self):
        self.assert_malformed(good(('te', 'gzip')))
        self.assert_malformed(good(('te', 'trailers, gzip')))
        self.assert_served(good(('te', 'trailers')))
        self.assert_served(good(('te', 'Trailers')))

    # ---- content-length (§8.1.1) -------------------------------------------

    def post(self, cl, chunks, trailers=None):
        block = good(('content-length', cl), path='/cgi-bin/env.cgi', method='POST')
        frames = [lambda s: h2raw.headers(s, block, end_stream=False)]
        for i, ch in enumerate(chunks):
            last = i == len(chunks) - 1 and trailers is None
            frames.append(lambda s, ch=ch, last=last:
                          h2raw.frame(h2raw.DATA, h2raw.END_STREAM if last else 0, s, ch))
        if trailers is not None:
            frames.append(lambda s: trailers(s))
        return frames

    def test_content_length_matching_the_data_is_served(self):
        sid = self.send(*self.post('5', [b'ab', b'cde']))
        r = self.c.response(sid)
        self.assertIsNotNone(r)
        self.assertIn('CONTENT_LENGTH=5', r[1].decode())

    def test_fewer_bytes_than_content_length_is_malformed(self):
        sid = self.send(*self.post('5', [b'ab', b'c']))
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()

    def test_more_bytes_than_content_length_is_malformed(self):
        sid = self.send(*self.post('5', [b'abc', b'defg']))
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()

    def test_content_length_with_no_data_is_malformed(self):
        self.assert_malformed(good(('content-length', '5')))
        self.assert_served(good(('content-length', '0')))

    def test_bad_or_repeated_content_length_is_malformed(self):
        for cls in (['abc'], ['-1'], [''], ['1 '], ['99999999999999999999'], ['0', '0']):
            with self.subTest(cl=cls):
                self.assert_malformed(good(*[('content-length', v) for v in cls]))

    # ---- trailers (§8.1) ---------------------------------------------------

    def test_trailers_are_served(self):
        tr = lambda s: h2raw.headers(s, req(('x-trailer', '1')))
        sid = self.send(*self.post('3', [b'abc'], trailers=tr))
        r = self.c.response(sid)
        self.assertIsNotNone(r)
        self.assertIn('CONTENT_LENGTH=3', r[1].decode())

    def test_trailers_without_end_stream_are_malformed(self):
        tr = lambda s: h2raw.headers(s, req(('x-trailer', '1')), end_stream=False)
        sid = self.send(*self.post('3', [b'abc'], trailers=tr))
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()

    def test_pseudo_in_trailers_is_malformed(self):
        tr = lambda s: h2raw.headers(s, req((':path', '/x')))
        sid = self.send(*self.post('3', [b'abc'], trailers=tr))
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()

    def test_connection_field_in_trailers_is_malformed(self):
        tr = lambda s: h2raw.headers(s, req(('connection', 'close')))
        sid = self.send(*self.post('3', [b'abc'], trailers=tr))
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()

    def test_uppercase_in_trailers_is_malformed(self):
        tr = lambda s: h2raw.headers(s, req(('X-T', '1')))
        sid = self.send(*self.post('3', [b'abc'], trailers=tr))
        self.assertEqual(self.reset_code(sid), h2raw.PROTOCOL_ERROR)
        self.assert_served()


if __name__ == '__main__':
    harness.main()
