"""t_http.py: HTTP/1.1 framing and connection handling over raw sockets:
the request-smuggling matrix (RFC 9112 §6.1, §6.3, §5), limits (414, 431,
413), keep-alive and pipelining, Expect: 100-continue, methods, timeouts
(408) and isolation of slow or stalled clients."""

import os
import shutil
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

A_BODY = b'AAAA'
B_BODY = b'SECOND'
FILES = {'a.txt': A_BODY, 'b.txt': B_BODY, '1.txt': b'one', '2.txt': b'two',
         '3.txt': b'three', '4.txt': b'four'}

# A valid request appended after every rejected vector: it must never be answered.
FOLLOW = b'GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n'

REASONS = {
    400: ('Bad Request',), 404: ('Not Found',), 405: ('Method Not Allowed',),
    408: ('Request Timeout',), 413: ('Content Too Large', 'Payload Too Large'),
    414: ('URI Too Long',), 431: ('Request Header Fields Too Large',),
    501: ('Not Implemented',), 505: ('HTTP Version Not Supported',),
}


def exchange(port, data, timeout=15, until=None):
    """Send data in one write; read until close/timeout, or (until=N) until N
    complete responses arrived. Returns (bytes, closed, local_port)."""
    s = harness.connect(port, timeout)
    lport = s.getsockname()[1]
    chunks = []
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            chunks.append(b)
            if until is not None:
                try:
                    rs = harness.parse_responses(b''.join(chunks))
                except ValueError:
                    continue
                if len(rs) >= until and all(r.complete for r in rs):
                    break
    finally:
        s.close()
    return b''.join(chunks), closed, lport


def log_regex(status, lport):
    return r'^(?=.*\b%d\b)(?=.*client: 127\.0\.0\.1:%d(?!\d)).*$' % (status, lport)


class Base(unittest.TestCase):
    maxDiff = None

    def server(self, *args, **kw):
        kw.setdefault('files', FILES)
        s = harness.Server(*args, **kw)
        s.start()
        self.addCleanup(s.__exit__, None, None, None)
        return s

    def assert_error_page(self, r, status):
        """RFC 9110 §15 status with the standard reason, small HTML body,
        Date and Server headers, framing by Content-Length."""
        self.assertEqual(r.status, status, r)
        self.assertIn(r.reason, REASONS[status])
        self.assertEqual(r.header('Content-Type'), 'text/html; charset=utf-8')
        title = '%d %s' % (status, r.reason)
        # a trailing newline is tolerated; the markup is the contract
        self.assertEqual(r.body.decode('latin-1').rstrip('\n'),
                         '<html><head><title>%s</title></head><body><h1>%s</h1></body></html>' %
                         (title, title))
        self.assertEqual(r.header('Content-Length'), str(len(r.body)))
        self.assertIsNotNone(r.header('Date'))
        self.assertEqual(r.header('Server'), 'portico/0.1.0')

    def assert_rejected(self, srv, data, status, timeout=15):
        """One response with status, Connection: close, connection closed,
        nothing else answered, one log line with status + client address."""
        out, closed, lport = exchange(srv.port, data, timeout)
        rs = harness.parse_responses(out)
        self.assertEqual(len(rs), 1, 'expected exactly one response, got %r' % out[:2000])
        r = rs[0]
        self.assertEqual(r.status, status, 'got %r' % out[:500])
        self.assertTrue(closed, 'connection left open after %d' % status)
        self.assertIn('close', (r.header('Connection') or '').lower())
        self.assertNotIn(B_BODY, out)
        self.assert_error_page(r, status)
        self.assertTrue(srv.wait_for_log(log_regex(status, lport)),
                        'no log line with %d and client: 127.0.0.1:%d\n%s' %
                        (status, lport, srv.stderr_text()[-3000:]))
        return r


# ---------------------------------------------------------------------------
# The framing / smuggling matrix. Every vector is followed by FOLLOW in the
# same write; a server that resyncs after the bad request would answer it.

def _req(headers, body=b'', line=b'GET /a.txt HTTP/1.1'):
    return line + b'\r\n' + b''.join(h + b'\r\n' for h in headers) + b'\r\n' + body


CHUNKED5 = b'5\r\nhello\r\n0\r\n\r\n'
H = b'Host: x'

VECTORS = [
    # RFC 9112 §6.1: CL together with TE is a smuggling signal: reject, close.
    ('cl_then_te_is_400', _req([H, b'Content-Length: 5', b'Transfer-Encoding: chunked'],
                               CHUNKED5), 400),
    ('te_then_cl_is_400', _req([H, b'Transfer-Encoding: chunked', b'Content-Length: 5'],
                               CHUNKED5), 400),
    ('cl_zero_and_te_is_400', _req([H, b'Content-Length: 0', b'Transfer-Encoding: chunked'],
                                   CHUNKED5), 400),
    # RFC 9112 §5.1: no whitespace between field name and colon.
    ('te_space_before_colon_is_400', _req([H, b'Transfer-Encoding : chunked'], CHUNKED5), 400),
    ('cl_space_before_colon_is_400', _req([H, b'Content-Length : 5'], b'hello'), 400),
    ('te_tab_before_colon_is_400', _req([H, b'Transfer-Encoding\t: chunked'], CHUNKED5), 400),
    ('host_space_before_colon_is_400', _req([b'Host : x']), 400),
    # RFC 9110 §5.5: CTLs other than HTAB in field values.
    ('te_vtab_before_value_is_400', _req([H, b'Transfer-Encoding:\x0bchunked'], CHUNKED5), 400),
    ('te_vtab_after_value_is_400', _req([H, b'Transfer-Encoding: chunked\x0b'], CHUNKED5), 400),
    ('te_formfeed_in_value_is_400', _req([H, b'Transfer-Encoding: \x0cchunked'], CHUNKED5),
     400),
    ('te_bare_cr_in_value_is_400', _req([H, b'Transfer-Encoding: chunked\r'], CHUNKED5), 400),
    ('nul_in_header_value_is_400', _req([H, b'X-Foo: a\x00b']), 400),
    ('del_ctl_in_header_value_is_400', _req([H, b'X-Foo: a\x01b']), 400),
    # RFC 9112 §6.1 / §7: transfer codings.
    # §6.3 item 4: chunked not the final coding -> 400 (length undeterminable);
    # chunked final after another valid coding -> 501 (coding not implemented).
    ('te_xchunked_is_400', _req([H, b'Transfer-Encoding: xchunked'], CHUNKED5), 400),
    ('te_gzip_alone_is_400', _req([H, b'Transfer-Encoding: gzip'], CHUNKED5), 400),
    ('te_identity_alone_is_400', _req([H, b'Transfer-Encoding: identity'], CHUNKED5), 400),
    ('te_gzip_chunked_is_501', _req([H, b'Transfer-Encoding: gzip, chunked'], CHUNKED5), 501),
    ('te_identity_chunked_is_501', _req([H, b'Transfer-Encoding: identity, chunked'],
                                        CHUNKED5), 501),
    ('te_unknown_token_chunked_is_501', _req([H, b'Transfer-Encoding: x-foo,chunked'],
                                             CHUNKED5), 501),
    ('te_gzip_header_then_chunked_header_is_501', _req([H, b'Transfer-Encoding: gzip',
                                                        b'Transfer-Encoding: chunked'],
                                                       CHUNKED5), 501),
    ('te_bad_token_in_list_is_400', _req([H, b'Transfer-Encoding: g@zip, chunked'], CHUNKED5),
     400),
    ('te_chunked_identity_is_400', _req([H, b'Transfer-Encoding: chunked, identity'],
                                        CHUNKED5), 400),
    ('te_chunked_gzip_is_400', _req([H, b'Transfer-Encoding: chunked, gzip'], CHUNKED5), 400),
    ('te_duplicate_chunked_is_400', _req([H, b'Transfer-Encoding: chunked',
                                          b'Transfer-Encoding: chunked'], CHUNKED5), 400),
    ('te_chunked_twice_in_list_is_400', _req([H, b'Transfer-Encoding: chunked, chunked'],
                                             CHUNKED5), 400),
    ('te_on_http10_is_400', _req([H, b'Transfer-Encoding: chunked'], CHUNKED5,
                                 line=b'GET /a.txt HTTP/1.0'), 400),
    # RFC 9110 §8.6: Content-Length = 1*DIGIT.
    ('cl_plus_sign_is_400', _req([H, b'Content-Length: +3'], b'abc'), 400),
    ('cl_negative_is_400', _req([H, b'Content-Length: -1'], b'abc'), 400),
    ('cl_overflow_is_400', _req([H, b'Content-Length: 99999999999999999999999'], b'abc'), 400),
    ('cl_list_same_values_is_400', _req([H, b'Content-Length: 3, 3'], b'abc'), 400),
    ('cl_duplicate_header_is_400', _req([H, b'Content-Length: 3', b'Content-Length: 3'],
                                        b'abc'), 400),
    ('cl_duplicate_different_is_400', _req([H, b'Content-Length: 3', b'Content-Length: 4'],
                                           b'abcd'), 400),
    ('cl_hex_is_400', _req([H, b'Content-Length: 0x3'], b'abc'), 400),
    ('cl_empty_is_400', _req([H, b'Content-Length: '], b''), 400),
    ('cl_decimal_point_is_400', _req([H, b'Content-Length: 3.0'], b'abc'), 400),
    ('cl_huge_valid_is_413', _req([H, b'Content-Length: 1000000000000'], b'abc'), 413),
    # RFC 9112 §2.2: CRLF line endings only in portico; bare CR never.
    ('bare_lf_line_endings_is_400', b'GET /a.txt HTTP/1.1\nHost: x\n\n', 400),
    ('bare_lf_in_one_header_is_400', b'GET /a.txt HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n', 400),
    ('bare_cr_between_headers_is_400', b'GET /a.txt HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n', 400),
    ('bare_cr_in_request_line_is_400', b'GET /a.txt\rHTTP/1.1\r\nHost: x\r\n\r\n', 400),
    # RFC 9112 §5.2: obs-fold rejected.
    ('obs_fold_space_is_400', _req([H, b'X-A: a', b' b']), 400),
    ('obs_fold_tab_is_400', _req([H, b'X-A: a', b'\tb']), 400),
    ('first_header_line_indented_is_400', _req([b' Host: x']), 400),
    ('header_line_without_colon_is_400', _req([H, b'X-No-Colon']), 400),
    ('header_empty_name_is_400', _req([H, b': value']), 400),
    ('header_name_with_space_is_400', _req([H, b'X Foo: bar']), 400),
    ('header_name_non_token_is_400', _req([H, b'X-Fo@o: bar']), 400),
    # RFC 9112 §3.2: Host.
    ('missing_host_on_http11_is_400', _req([b'X-A: b']), 400),
    ('duplicate_host_is_400', _req([H, b'Host: y']), 400),
    ('empty_host_on_http11_is_400', _req([b'Host:']), 400),
    ('host_with_space_is_400', _req([b'Host: a b']), 400),
    ('host_with_slash_is_400', _req([b'Host: a/b']), 400),
    # RFC 9112 §3: request line.
    ('http09_request_line_is_400', b'GET /a.txt\r\n\r\n', 400),
    ('http2_version_is_505', _req([H], line=b'GET /a.txt HTTP/2.0'), 505),
    ('http3_version_is_505', _req([H], line=b'GET /a.txt HTTP/3.0'), 505),
    ('http_1_10_version_is_400', _req([H], line=b'GET /a.txt HTTP/1.10'), 400),
    ('lowercase_http_name_is_400', _req([H], line=b'GET /a.txt http/1.1'), 400),
    ('version_without_minor_is_400', _req([H], line=b'GET /a.txt HTTP/1'), 400),
    # RFC 9110 §9.1: methods are case-sensitive, so "get" is an unknown method.
    ('lowercase_method_is_501', _req([H], line=b'get /a.txt HTTP/1.1'), 501),
    ('unknown_method_brew_is_501', _req([H], line=b'BREW /a.txt HTTP/1.1'), 501),
    ('method_non_token_is_400', _req([H], line=b'G(T /a.txt HTTP/1.1'), 400),
    ('double_space_after_method_is_400', _req([H], line=b'GET  /a.txt HTTP/1.1'), 400),
    ('double_space_before_version_is_400', _req([H], line=b'GET /a.txt  HTTP/1.1'), 400),
    ('trailing_space_after_version_is_400', _req([H], line=b'GET /a.txt HTTP/1.1 '), 400),
    ('tab_separator_is_400', _req([H], line=b'GET\t/a.txt HTTP/1.1'), 400),
    ('leading_space_before_method_is_400', _req([H], line=b' GET /a.txt HTTP/1.1'), 400),
    ('space_inside_target_is_400', _req([H], line=b'GET /a b HTTP/1.1'), 400),
    ('fragment_in_target_is_400', _req([H], line=b'GET /a.txt#frag HTTP/1.1'), 400),
    ('ctl_in_target_is_400', _req([H], line=b'GET /a\x01.txt HTTP/1.1'), 400),
    ('pct_nul_in_target_is_400', _req([H], line=b'GET /a%00.txt HTTP/1.1'), 400),
    ('bad_pct_encoding_is_400', _req([H], line=b'GET /a%zz.txt HTTP/1.1'), 400),
    ('truncated_pct_encoding_is_400', _req([H], line=b'GET /a.txt%4 HTTP/1.1'), 400),
    ('relative_target_is_400', _req([H], line=b'GET a.txt HTTP/1.1'), 400),
    ('absolute_form_ftp_scheme_is_400', _req([H], line=b'GET ftp://x/a.txt HTTP/1.1'), 400),
    # RFC 9112 §7.1: strict chunked framing (the body is read for GET too).
    ('chunk_data_bare_lf_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                       b'5\r\nhello\n0\r\n\r\n'), 400),
    ('chunk_size_bare_lf_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                       b'5\nhello\r\n0\r\n\r\n'), 400),
    ('chunk_data_too_long_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                        b'5\r\nhelloXX\r\n0\r\n\r\n'), 400),
    ('chunk_size_negative_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                        b'-5\r\nhello\r\n0\r\n\r\n'), 400),
    ('chunk_size_0x_prefix_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                         b'0x5\r\nhello\r\n0\r\n\r\n'), 400),
    ('chunk_size_leading_space_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                             b' 5\r\nhello\r\n0\r\n\r\n'), 400),
    ('chunk_size_not_hex_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                       b'g\r\nhello\r\n0\r\n\r\n'), 400),
    ('chunk_size_overflow_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                        b'1ffffffffffffffff\r\nhello\r\n0\r\n\r\n'), 400),
    ('chunk_size_missing_is_400', _req([H, b'Transfer-Encoding: chunked'],
                                       b'\r\nhello\r\n0\r\n\r\n'), 400),
]


class FramingMatrix(Base):
    """Each vector: exact status, Connection: close, connection closed, the
    pipelined valid request after it NOT answered, a log line naming the
    status and client."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(files=FILES)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_control_valid_request_then_pipelined_follow_up_both_answered(self):
        out, closed, _ = exchange(self.srv.port, _req([H]) + FOLLOW, until=2)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200, 200])
        self.assertEqual([r.body for r in rs], [A_BODY, B_BODY])
        self.assertFalse(closed, 'HTTP/1.1 connection closed without reason')

    def test_control_te_chunked_case_insensitive_and_ows_accepted(self):
        for te in (b'Transfer-Encoding: Chunked', b'Transfer-Encoding:\tchunked ',
                   b'transfer-encoding: CHUNKED'):
            with self.subTest(te=te):
                out, _, _ = exchange(self.srv.port, _req([H, te], CHUNKED5) + FOLLOW, until=2)
                rs = harness.parse_responses(out)
                self.assertEqual([r.status for r in rs], [200, 200], out[:1000])
                self.assertEqual(rs[1].body, B_BODY)

    def test_control_http10_without_host_accepted(self):
        out, closed, _ = exchange(self.srv.port, b'GET /a.txt HTTP/1.0\r\n\r\n')
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200])
        self.assertTrue(closed)

    def test_control_leading_empty_line_before_request_line_accepted(self):
        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line first.
        out, _, _ = exchange(self.srv.port, b'\r\n' + _req([H]) + FOLLOW, until=2)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200, 200])

    def test_control_content_length_with_ows_accepted(self):
        out, _, _ = exchange(self.srv.port, _req([H, b'Content-Length:  3 '], b'abc') + FOLLOW,
                             until=2)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200, 200])
        self.assertEqual(rs[1].body, B_BODY)


def _make_vector_test(data, status):
    def t(self):
        self.assert_rejected(self.srv, data + FOLLOW, status)
    return t


for _name, _data, _status in VECTORS:
    setattr(FramingMatrix, 'test_' + _name, _make_vector_test(_data, _status))


# ---------------------------------------------------------------------------

class Limits(Base):
    def test_request_line_longer_than_header_buffer_is_414(self):
        srv = self.server()
        line = b'GET /' + b'a' * 9000 + b' HTTP/1.1'
        self.assert_rejected(srv, _req([H], line=line) + FOLLOW, 414)

    def test_one_huge_header_is_431(self):
        srv = self.server()
        self.assert_rejected(srv, _req([H, b'X-Big: ' + b'a' * 9000]) + FOLLOW, 431)

    def test_many_headers_summing_past_header_buffer_is_431(self):
        srv = self.server()
        hs = [H] + [b'X-H%d: %s' % (i, b'v' * 90) for i in range(95)]
        self.assert_rejected(srv, _req(hs) + FOLLOW, 431)

    def test_more_than_max_headers_is_431(self):
        srv = self.server('-o', 'limits.max_headers=10')
        hs = [H] + [b'X-H%d: v' % i for i in range(10)]  # 11 fields
        self.assert_rejected(srv, _req(hs) + FOLLOW, 431)

    def test_exactly_max_headers_is_accepted(self):
        srv = self.server('-o', 'limits.max_headers=10')
        hs = [H] + [b'X-H%d: v' % i for i in range(9)]  # 10 fields
        out, _, _ = exchange(srv.port, _req(hs), until=1)
        self.assertEqual([r.status for r in harness.parse_responses(out)], [200])

    def test_content_length_over_max_body_is_413_before_body_is_sent(self):
        srv = self.server('-o', 'limits.max_body=100')
        s = srv.connect(15)
        lport = s.getsockname()[1]
        s.sendall(_req([H, b'Content-Length: 1000']))  # head only: the body never comes
        out, closed = harness.recv_until_close(s, 15)
        s.close()
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [413], out[:500])
        self.assertTrue(closed)
        self.assert_error_page(rs[0], 413)
        self.assertTrue(srv.wait_for_log(log_regex(413, lport)), srv.stderr_text())

    def test_content_length_over_max_body_with_expect_is_413_without_100(self):
        srv = self.server('-o', 'limits.max_body=100')
        s = srv.connect(15)
        s.sendall(_req([H, b'Content-Length: 1000', b'Expect: 100-continue']))
        out, closed = harness.recv_until_close(s, 15)
        s.close()
        self.assertNotIn(b'100 Continue', out)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [413], out[:500])
        self.assertTrue(closed)

    def test_content_length_equal_to_max_body_is_accepted(self):
        srv = self.server('-o', 'limits.max_body=100')
        out, _, _ = exchange(srv.port, _req([H, b'Content-Length: 100'], b'x' * 100) + FOLLOW,
                             until=2)
        self.assertEqual([r.status for r in harness.parse_responses(out)], [200, 200])

    def test_chunked_body_growing_past_max_body_is_413(self):
        srv = self.server('-o', 'limits.max_body=100')
        body = b''.join(b'32\r\n' + b'x' * 50 + b'\r\n' for _ in range(3)) + b'0\r\n\r\n'
        self.assert_rejected(srv, _req([H, b'Transfer-Encoding: chunked'], body) + FOLLOW, 413)

    def test_max_body_flag_sets_limit(self):
        srv = self.server('--max-body', '10')
        self.assert_rejected(srv, _req([H, b'Content-Length: 11'], b'x' * 11) + FOLLOW, 413)


class KeepAlive(Base):
    def test_http11_keeps_connection_open_for_second_request(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(_req([H]))
        r1 = harness.read_response(s)
        s.sendall(FOLLOW)
        r2 = harness.read_response(s)
        s.close()
        self.assertEqual((r1.status, r1.body), (200, A_BODY))
        self.assertEqual((r2.status, r2.body), (200, B_BODY))
        self.assertNotIn('close', (r1.header('Connection') or '').lower())

    def test_every_response_has_date_server_and_content_length(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(_req([H]))
        r = harness.read_response(s)
        s.close()
        self.assertRegex(r.header('Date') or '',
                         r'^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$')
        self.assertEqual(r.header('Server'), 'portico/0.1.0')
        self.assertEqual(r.header('Content-Length'), '4')
        self.assertEqual(r.version, 'HTTP/1.1')

    def test_not_found_error_page_does_not_reflect_request(self):
        srv = self.server()
        out, _, _ = exchange(srv.port, _req([H], line=b'GET /%3Cscript%3Ex HTTP/1.1'), until=1)
        r = harness.parse_responses(out)[0]
        self.assert_error_page(r, 404)
        self.assertNotIn(b'script', r.body.lower())

    def test_http10_closes_by_default(self):
        srv = self.server()
        out, closed, _ = exchange(srv.port, b'GET /a.txt HTTP/1.0\r\n\r\n' + FOLLOW)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200])
        self.assertEqual(rs[0].body, A_BODY)
        self.assertTrue(closed)

    def test_http10_keep_alive_header_keeps_connection(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(b'GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
        r1 = harness.read_response(s)
        self.assertEqual(r1.status, 200)
        self.assertEqual((r1.header('Connection') or '').lower(), 'keep-alive')
        self.assertEqual(r1.header('Content-Length'), '4')
        s.sendall(b'GET /b.txt HTTP/1.0\r\n\r\n')
        r2 = harness.read_response(s)
        self.assertEqual((r2.status, r2.body), (200, B_BODY))
        out, closed = harness.recv_until_close(s, 15)
        s.close()
        self.assertEqual(out, b'')
        self.assertTrue(closed, 'HTTP/1.0 request without keep-alive left the connection open')

    def test_connection_close_is_honoured(self):
        srv = self.server()
        out, closed, _ = exchange(srv.port, _req([H, b'Connection: close']) + FOLLOW)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200])
        self.assertIn('close', (rs[0].header('Connection') or '').lower())
        self.assertTrue(closed)

    def test_keepalive_requests_closes_after_the_nth(self):
        srv = self.server('-o', 'limits.keepalive_requests=3')
        reqs = b''.join(_req([H], line=b'GET /%d.txt HTTP/1.1' % i) for i in (1, 2, 3, 4))
        out, closed, _ = exchange(srv.port, reqs)
        rs = harness.parse_responses(out)
        self.assertEqual([r.body for r in rs], [b'one', b'two', b'three'])
        self.assertIn('close', (rs[2].header('Connection') or '').lower())
        self.assertTrue(closed)

    def test_pipelined_requests_answered_in_order(self):
        srv = self.server()
        reqs = b''.join(_req([H], line=b'GET /%d.txt HTTP/1.1' % i) for i in (3, 1, 4, 2))
        s = srv.connect()
        s.sendall(reqs)
        rs = harness.send_recv_responses(s, 4)
        s.close()
        self.assertEqual([r.body for r in rs], [b'three', b'one', b'four', b'two'])

    def test_pipelined_head_then_get(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(_req([H], line=b'HEAD /a.txt HTTP/1.1') + FOLLOW)
        rs = harness.send_recv_responses(s, 2, ['HEAD', 'GET'])
        s.sendall(_req([b'Host: x', b'Connection: close'], line=b'GET /1.txt HTTP/1.1'))
        rest, closed = harness.recv_until_close(s, 15)
        s.close()
        self.assertEqual(rs[0].status, 200)
        self.assertEqual(rs[0].header('Content-Length'), '4')
        self.assertEqual(rs[0].body, b'')
        self.assertEqual((rs[1].status, rs[1].body), (200, B_BODY))
        # HEAD must not have sent a body: the next bytes are exactly one response
        self.assertEqual([r.body for r in harness.parse_responses(rest)], [b'one'])

    def test_chunked_body_on_get_is_discarded_and_pipeline_continues(self):
        srv = self.server()
        body = b'5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'
        out, _, _ = exchange(srv.port, _req([H, b'Transfer-Encoding: chunked'], body) + FOLLOW,
                             until=2)
        rs = harness.parse_responses(out)
        self.assertEqual([(r.status, r.body) for r in rs], [(200, A_BODY), (200, B_BODY)])

    def test_content_length_body_on_get_is_discarded_and_pipeline_continues(self):
        srv = self.server()
        out, _, _ = exchange(srv.port, _req([H, b'Content-Length: 5'], b'hello') + FOLLOW,
                             until=2)
        rs = harness.parse_responses(out)
        self.assertEqual([(r.status, r.body) for r in rs], [(200, A_BODY), (200, B_BODY)])

    def test_body_sent_in_pieces_is_discarded(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(_req([H, b'Transfer-Encoding: chunked']) + b'5\r\nhe')
        time.sleep(0.2)
        s.sendall(b'llo\r\n0\r')
        time.sleep(0.2)
        s.sendall(b'\n\r\n' + FOLLOW)
        rs = harness.send_recv_responses(s, 2)
        s.close()
        self.assertEqual([r.body for r in rs], [A_BODY, B_BODY])


class ExpectAndMethods(Base):
    def test_expect_100_continue_on_get_sends_100_then_response(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(_req([H, b'Content-Length: 5', b'Expect: 100-continue']))
        r1 = harness.read_response(s)
        self.assertEqual((r1.version, r1.status), ('HTTP/1.1', 100))
        s.sendall(b'hello')
        r2 = harness.read_response(s)
        s.close()
        self.assertEqual((r2.status, r2.body), (200, A_BODY))

    def test_options_star_is_200_with_allow(self):
        srv = self.server()
        out, _, _ = exchange(srv.port, _req([H], line=b'OPTIONS * HTTP/1.1'), until=1)
        r = harness.parse_responses(out)[0]
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header('Allow'), 'GET, HEAD, OPTIONS')
        self.assertEqual(r.header('Content-Length'), '0')

    def test_connect_is_405_with_allow_and_closes(self):
        # RFC 9110 §9.3.6: CONNECT asks a proxy for a tunnel; an origin server
        # refuses it, and closes: what follows may be tunnel bytes sent ahead
        # (here a TLS record), never a next request
        srv = self.server()
        for line in (b'CONNECT host:5 HTTP/1.1\r\nHost: host:5', b'CONNECT host:5 HTTP/1.0',
                     b'CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443'):
            with self.subTest(line=line):
                s = srv.connect(30)
                lport = s.getsockname()[1]
                s.sendall(line + b'\r\n\r\n\x16\x03\x01\x00\x05hello' + FOLLOW)
                out, closed = harness.recv_until_close(s, timeout=30)
                s.close()
                rs = harness.parse_responses(out)
                self.assertEqual([r.status for r in rs], [405], out[:300])
                self.assert_error_page(rs[0], 405)
                self.assertEqual(rs[0].header('Allow'), 'GET, HEAD, OPTIONS')
                self.assertTrue(closed)
                self.assertTrue(srv.wait_for_log(
                    r'405 .*\(CONNECT: not a proxy\), client: 127\.0\.0\.1:%d(?!\d)' % lport),
                    srv.stderr_text())

    def test_options_path_is_200_with_allow(self):
        srv = self.server()
        out, _, _ = exchange(srv.port, _req([H], line=b'OPTIONS /a.txt HTTP/1.1') + FOLLOW,
                             until=2)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [200, 200])
        self.assertEqual(rs[0].header('Allow'), 'GET, HEAD, OPTIONS')
        self.assertEqual(rs[0].header('Content-Length'), '0')
        self.assertEqual(rs[0].body, b'')

    def test_post_with_body_is_405_with_allow_and_closes(self):
        srv = self.server()
        out, closed, _ = exchange(srv.port, _req([H, b'Content-Length: 5'], b'hello',
                                                 line=b'POST /a.txt HTTP/1.1') + FOLLOW)
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [405])
        self.assertEqual(rs[0].header('Allow'), 'GET, HEAD, OPTIONS')
        self.assert_error_page(rs[0], 405)
        self.assertTrue(closed)

    def test_post_without_body_is_405_with_allow(self):
        srv = self.server()
        r = harness.request(srv.port, 'POST', '/a.txt')
        self.assertEqual(r[0], 405)
        self.assertEqual(r[1].get('allow'), 'GET, HEAD, OPTIONS')

    def test_trace_put_delete_are_405(self):
        srv = self.server()
        for m in ('TRACE', 'PUT', 'DELETE', 'PATCH'):
            with self.subTest(method=m):
                out, _, _ = exchange(srv.port, _req([H], line=m.encode() + b' /a.txt HTTP/1.1'),
                                     until=1)
                rs = harness.parse_responses(out)
                self.assertEqual(rs[0].status, 405)
                self.assertEqual(rs[0].header('Allow'), 'GET, HEAD, OPTIONS')
                self.assertNotIn(b'Host: x', out)  # TRACE must not echo the request

    def test_head_has_get_headers_and_no_body(self):
        srv = self.server()
        s = srv.connect()
        s.sendall(_req([H], line=b'HEAD /a.txt HTTP/1.1') + _req([H]))
        h, g = harness.send_recv_responses(s, 2, ['HEAD', 'GET'])
        s.close()
        for name in ('Content-Length', 'Content-Type', 'ETag', 'Last-Modified',
                     'Accept-Ranges'):
            self.assertEqual(h.header(name), g.header(name), name)
        self.assertEqual(g.body, A_BODY)

    def test_absolute_form_target_selects_vhost_by_its_authority(self):
        top = tempfile.mkdtemp(prefix='portico-vh-')
        self.addCleanup(shutil.rmtree, top, True)
        other = os.path.join(top, 'other')
        os.mkdir(other)
        with open(os.path.join(other, 'a.txt'), 'wb') as f:
            f.write(b'OTHER')
        conf = 'vhosts = ( { names = [ "other.example" ]; root = "%s"; } );\n' % other
        srv = self.server(conf=conf)
        out, _, _ = exchange(srv.port, b'GET http://other.example/a.txt HTTP/1.1\r\n'
                             b'Host: default.example\r\n\r\n'
                             b'GET /a.txt HTTP/1.1\r\nHost: default.example\r\n\r\n'
                             b'GET /a.txt HTTP/1.1\r\nHost: Other.Example:8080\r\n\r\n',
                             until=3)
        rs = harness.parse_responses(out)
        self.assertEqual([(r.status, r.body) for r in rs],
                         [(200, b'OTHER'), (200, A_BODY), (200, b'OTHER')])


class Timeouts(Base):
    def test_header_timeout_sends_408_and_closes(self):
        srv = self.server('-o', 'limits.header_timeout=1s')
        s = srv.connect(30)
        lport = s.getsockname()[1]
        s.sendall(b'GET /a.txt HTTP/1.1\r\nHost: x\r\n')
        out, closed = harness.recv_until_close(s, timeout=30)
        s.close()
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [408], out[:300])
        self.assert_error_page(rs[0], 408)
        self.assertIn('close', (rs[0].header('Connection') or '').lower())
        self.assertTrue(closed)
        self.assertTrue(srv.wait_for_log(log_regex(408, lport)), srv.stderr_text())

    def test_body_timeout_sends_408_and_closes(self):
        srv = self.server('-o', 'limits.body_timeout=1s')
        s = srv.connect(30)
        s.sendall(_req([H, b'Content-Length: 10'], b'abc'))
        out, closed = harness.recv_until_close(s, timeout=30)
        s.close()
        rs = harness.parse_responses(out)
        self.assertEqual([r.status for r in rs], [408], out[:300])
        self.assertTrue(closed)

    def test_keepalive_timeout_closes_idle_connection_silently(self):
        srv = self.server('-o', 'limits.keepalive_timeout=1s')
        s = srv.connect(30)
        s.sendall(_req([H]))
        r = harness.read_response(s)
        self.assertEqual(r.status, 200)
        out, closed = harness.recv_until_close(s, timeout=30)
        s.close()
        self.assertTrue(closed, 'idle keep-alive connection not closed')
        self.assertEqual(out, b'', 'an idle close must not send a response')

    def test_stalled_clients_do_not_block_others(self):
        srv = self.server('-w', '1', files=dict(FILES))
        stalled = []
        try:
            for _ in range(20):
                c = srv.connect()
                c.sendall(b'GET /a.txt HTTP/1.1\r\nHo')
                stalled.append(c)
            ok = 0
            for i in range(50):
                st, _, body = harness.request(srv.port, 'GET', '/%d.txt' % (i % 4 + 1))
                ok += st == 200 and body == [b'one', b'two', b'three', b'four'][i % 4]
            self.assertEqual(ok, 50)
        finally:
            for c in stalled:
                c.close()

    def test_slow_reader_does_not_block_others_and_is_cut_after_write_timeout(self):
        size = 10 * 1024 * 1024
        srv = self.server('-w', '1', '-o', 'limits.write_timeout=2s',
                          files=dict(FILES, **{'big.bin': b'z' * size}))
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        slow.settimeout(10)
        slow.connect(('127.0.0.1', srv.port))
        slow_port = slow.getsockname()[1]
        try:
            slow.sendall(_req([H], line=b'GET /big.bin HTTP/1.1'))
            for i in range(20):
                st, _, body = harness.request(srv.port, 'GET', '/b.txt')
                self.assertEqual((st, body), (200, B_BODY))
            # The server cuts the non-reading client on its own clock; bound the wait.
            srv.wait_for_log(r'(?i)time(d)? ?out.*client: 127\.0\.0\.1:%d(?!\d)' % slow_port,
                             timeout=20)
            got, closed = harness.recv_until_close(slow, timeout=60)
        finally:
            slow.close()
        self.assertTrue(got.startswith(b'HTTP/1.1 200 '), got[:100])
        self.assertTrue(closed, 'slow reader never cut off')
        self.assertLess(len(got), size, 'whole file delivered: the write timeout never fired')


if __name__ == '__main__':
    harness.main()
