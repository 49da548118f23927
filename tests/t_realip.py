#!/usr/bin/python3
"""t_realip.py: the real client address behind a load balancer, over real
sockets.

Covered: the PROXY protocol v1 (TCP4, TCP6, UNKNOWN) and v2 (TCP4 with TLVs,
TCP6, LOCAL) on a proxy_protocol listener, the header split across writes
and followed by the request in one segment; malformed headers (no header,
too long, bad v2 signature, bad family, truncated TLV, bad address) closed
without an answer and logged; a header that never ends (slowloris) closed by
header_timeout. The address taken is REMOTE_ADDR / REMOTE_PORT for CGI
(env.cgi), the access log's, what access rules deny and what limit_req
counts by. X-Forwarded-For from a trusted peer (127.0.0.1): the rightmost
untrusted address, trusted hops skipped, the leftmost when all are trusted,
IPv6 with a port; $proxy_addr in the access log is the balancer; from an untrusted peer (127.0.0.2) ignored; garbage
ignored (and logged); a keep-alive connection's next request without the
header is the peer again; real_ip_header per vhost; RFC 7239 Forwarded
(real_ip_header = "Forwarded": for=, bracketed IPv6, ports, unknown and
obfuscated nodes stop at the peer); PROXY headers only from peers in
proxy_protocol_from (by default the top-level real_ip_from); configuration
errors.
Nothing asserts on timings."""

import http.client
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
V2SIG = b'\r\n\r\n\x00\r\nQUIT\n'


def parse_env(body):
    out = {}
    for item in body.split(b'\0'):
        if b'=' in item:
            k, v = item.split(b'=', 1)
            out[k.decode()] = v.decode('latin-1')
    return out


def v2(cmd, fam, addrs, tlvs=b''):
    """A PROXY v2 header: cmd 0 LOCAL / 1 PROXY, fam byte (0x11 TCP4...)."""
    body = addrs + tlvs
    return V2SIG + bytes([0x20 | cmd, fam]) + struct.pack('!H', len(body)) + body


def v2_tcp4(src, dst, sport, dport, tlvs=b''):
    return v2(1, 0x11, socket.inet_aton(src) + socket.inet_aton(dst) +
              struct.pack('!HH', sport, dport), tlvs)


def v2_tcp6(src, dst, sport, dport):
    return v2(1, 0x21, socket.inet_pton(socket.AF_INET6, src) +
              socket.inet_pton(socket.AF_INET6, dst) + struct.pack('!HH', sport, dport))


def exchange(port, header, target='/cgi-bin/env.cgi', pieces=1, src=None, timeout=30):
    """Send header (in `pieces` writes) then a request; everything the
    server sent until it closed (b'' when it closed without answering)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src:
            s.bind((src, 0))
        s.connect(('127.0.0.1', port))
        req = ('GET %s HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n' %
               target).encode()
        if pieces > 1:
            step = max(1, len(header) // pieces)
            for i in range(0, len(header), step):
                s.sendall(header[i:i + step])
                time.sleep(0.05)
            s.sendall(req)
        else:
            s.sendall(header + req)  # the request in the same segment
        data, _closed = harness.recv_until_close(s, timeout)
    except ConnectionResetError:
        data = b''
    finally:
        s.close()
    return data


def status_of(data):
    return harness.read_response(data).status if data else None


class ProxyProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-realip-')
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cls.cgi)
        shutil.copyfile(os.path.join(HERE, 'cgi', 'env.cgi'), os.path.join(cls.cgi, 'env.cgi'))
        os.chmod(os.path.join(cls.cgi, 'env.cgi'), 0o755)
        conf = '''
log_level = "info";
access_log_format = "$remote_addr $proxy_addr \\"$request\\" $status";
proxy_protocol = [ "127.0.0.1:@PORT@" ];
proxy_protocol_from = [ "127.0.0.1", "10.0.0.0/8" ];
limits = { header_timeout = "2s"; };
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%(cgi)s"; },
  { prefix = "/deny/"; access = [ "deny 192.0.2.66", "allow all" ]; },
  { prefix = "/r/"; limit_req = "1r/m"; }
);
''' % {'cgi': cls.cgi}
        harness.start_class_server(cls, conf=conf, access_log=True)
        cls.srv.write_file('deny/f.txt', 'f\n')
        cls.srv.write_file('r/f.txt', 'r\n')
        cls.srv.write_file('f.txt', 'top\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)
        shutil.rmtree(cls.base, True)

    def env(self, header, pieces=1):
        data = exchange(self.port, header, pieces=pieces)
        self.assertTrue(data, 'no answer for %r' % header)
        r = harness.read_response(data)
        self.assertEqual(r.status, 200, data[:300])
        return parse_env(r.body)

    def assert_closed(self, header, why):
        data = exchange(self.port, header)
        self.assertEqual(data, b'', 'a bad header gets no answer: %r' % header)
        self.assertTrue(self.srv.wait_for_log(r'\[info\] [^\n]*closing connection: %s' % why),
                        self.srv.stderr_text()[-2000:])

    def test_v1_tcp4_is_remote_addr_and_port(self):
        e = self.env(b'PROXY TCP4 192.0.2.10 192.0.2.1 4711 80\r\n')
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('192.0.2.10', '4711'))

    def test_untrusted_peer_is_refused(self):
        # 127.0.0.2 is not in proxy_protocol_from: whatever it claims, the
        # connection is closed before a byte is read, and logged
        for hdr in (b'PROXY TCP4 192.0.2.10 192.0.2.1 4711 80\r\n',
                    v2_tcp4('192.0.2.11', '192.0.2.1', 1, 80)):
            data = exchange(self.port, hdr, src='127.0.0.2')
            self.assertEqual(data, b'', 'an untrusted peer gets no answer')
        self.assertTrue(self.srv.wait_for_log(
            r'\[info\] [^\n]*closing connection: PROXY protocol header expected from a peer '
            r'not in proxy_protocol_from, client: 127\.0\.0\.2:'), self.srv.stderr_text()[-2000:])
        self.assertNotIn('192.0.2.10', self.srv.access_log_text())
        # the trusted balancer still gets through
        e = self.env(b'PROXY TCP4 192.0.2.12 192.0.2.1 4712 80\r\n')
        self.assertEqual(e['REMOTE_ADDR'], '192.0.2.12')

    def test_v1_tcp6(self):
        e = self.env(b'PROXY TCP6 2001:db8::7 2001:db8::1 5000 443\r\n')
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('2001:db8::7', '5000'))

    def test_v1_unknown_keeps_the_peer(self):
        e = self.env(b'PROXY UNKNOWN\r\n')
        self.assertEqual(e['REMOTE_ADDR'], '127.0.0.1')
        e = self.env(b'PROXY UNKNOWN ff:ff::1 whatever 1 2\r\n')
        self.assertEqual(e['REMOTE_ADDR'], '127.0.0.1')

    def test_v1_split_across_writes(self):
        e = self.env(b'PROXY TCP4 198.51.100.9 192.0.2.1 1234 80\r\n', pieces=6)
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('198.51.100.9', '1234'))

    def test_v2_tcp4_with_tlvs(self):
        tlvs = b'\x01\x00\x02h2' + b'\x04\x00\x00' + b'\xee\x00\x05hello'
        e = self.env(v2_tcp4('203.0.113.20', '192.0.2.1', 40000, 80, tlvs))
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('203.0.113.20', '40000'))
        e = self.env(v2_tcp4('203.0.113.21', '192.0.2.1', 40001, 80, tlvs), pieces=5)
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('203.0.113.21', '40001'))

    def test_v2_tcp6(self):
        e = self.env(v2_tcp6('2001:db8::20', '2001:db8::1', 1, 80))
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('2001:db8::20', '1'))
        # an IPv4-mapped source is the IPv4 client
        e = self.env(v2_tcp6('::ffff:192.0.2.44', '::1', 2, 80))
        self.assertEqual(e['REMOTE_ADDR'], '192.0.2.44')

    def test_v2_local_keeps_the_peer(self):
        e = self.env(v2(0, 0x00, b''))
        self.assertEqual(e['REMOTE_ADDR'], '127.0.0.1')
        # LOCAL with addresses: still the peer (a balancer's health check)
        e = self.env(v2(0, 0x11, socket.inet_aton('192.0.2.99') * 2 + b'\0\1\0\2'))
        self.assertEqual(e['REMOTE_ADDR'], '127.0.0.1')

    def test_no_header_is_closed(self):
        self.assert_closed(b'', 'not a PROXY protocol header')

    def test_v1_too_long(self):
        self.assert_closed(b'PROXY TCP4 ' + b'1' * 120 + b'\r\n', 'PROXY v1 header longer')

    def test_v1_bad_address_and_fields(self):
        self.assert_closed(b'PROXY TCP4 192.0.2.300 192.0.2.1 1 2\r\n',
                           'PROXY v1 header: bad address')
        self.assert_closed(b'PROXY TCP4 192.0.2.3 192.0.2.1 1 2 3\r\n',
                           'PROXY v1 header needs 6 fields')
        self.assert_closed(b'PROXY TCP4 192.0.2.3 192.0.2.1 01 2\r\n', 'PROXY v1 header: bad port')
        self.assert_closed(b'PROXY TCP4 192.0.2.3 192.0.2.1 1 2\n', 'PROXY v1 header not ended')

    def test_v2_bad_signature(self):
        self.assert_closed(b'\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c' + b'\0' * 12,
                           'not a PROXY protocol header')

    def test_v2_bad_family_and_version(self):
        self.assert_closed(V2SIG + b'\x21\x41\x00\x00', 'PROXY v2 header: bad family')
        self.assert_closed(V2SIG + b'\x31\x11\x00\x0c' + b'\0' * 12, 'PROXY v2 header: bad version')

    def test_v2_truncated(self):
        # an address block too short for TCP4
        self.assert_closed(V2SIG + b'\x21\x11\x00\x04' + b'\0' * 4,
                           'PROXY v2 header: address block too short')
        # a TLV running past the end
        self.assert_closed(v2_tcp4('192.0.2.1', '192.0.2.2', 1, 2, b'\x01\x00\x09ab'),
                           'PROXY v2 header: truncated TLV')
        # the client closes halfway
        s = harness.connect(self.port)
        s.sendall(v2_tcp4('192.0.2.1', '192.0.2.2', 1, 2)[:20])
        s.shutdown(socket.SHUT_WR)
        data, _ = harness.recv_until_close(s, 30)
        s.close()
        self.assertEqual(data, b'')
        self.assertTrue(self.srv.wait_for_log(r'closed before the PROXY protocol header ended'))

    def test_slowloris_header_meets_header_timeout(self):
        s = harness.connect(self.port, timeout=60)
        s.sendall(b'PROXY TCP4 1')
        data, closed = harness.recv_until_close(s, 60)
        s.close()
        self.assertEqual(data, b'')
        self.assertTrue(self.srv.wait_for_log(r'no PROXY protocol header in time'),
                        self.srv.stderr_text()[-2000:])

    def test_access_log_has_the_real_address(self):
        hdr = b'PROXY TCP4 192.0.2.77 192.0.2.1 1 80\r\n'
        self.assertEqual(status_of(exchange(self.port, hdr, '/f.txt?alog')), 200)
        self.assertTrue(harness.Server.wait_for(
            lambda: any(l.startswith('192.0.2.77 127.0.0.1 ') and 'alog' in l
                        for l in self.srv.access_log_text().splitlines()), 20),
            self.srv.access_log_text()[-2000:])

    def test_access_rules_see_the_real_address(self):
        deny = b'PROXY TCP4 192.0.2.66 192.0.2.1 1 80\r\n'
        other = b'PROXY TCP4 192.0.2.67 192.0.2.1 1 80\r\n'
        self.assertEqual(status_of(exchange(self.port, deny, '/deny/f.txt')), 403)
        self.assertEqual(status_of(exchange(self.port, other, '/deny/f.txt')), 200)
        self.assertTrue(self.srv.wait_for_log(r'access forbidden by rule "deny 192\.0\.2\.66"'
                                              r'[^\n]*client: 192\.0\.2\.66:1,'))

    def test_limit_req_counts_per_real_address(self):
        a = b'PROXY TCP4 198.51.100.1 192.0.2.1 1 80\r\n'
        b = b'PROXY TCP4 198.51.100.2 192.0.2.1 1 80\r\n'
        self.assertEqual(status_of(exchange(self.port, a, '/r/f.txt')), 200)
        self.assertEqual(status_of(exchange(self.port, a, '/r/f.txt')), 429)
        # the same balancer, another client: its own bucket
        self.assertEqual(status_of(exchange(self.port, b, '/r/f.txt')), 200)


class TlsProxyProtocol(unittest.TestCase):
    """A tls_listen address with the PROXY protocol: the header first, then
    the TLS handshake."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-realip-')
        crt, key = os.path.join(cls.base, 'c.crt'), os.path.join(cls.base, 'c.key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-days', '30', '-subj', '/CN=localhost'],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cls.cgi)
        shutil.copyfile(os.path.join(HERE, 'cgi', 'env.cgi'), os.path.join(cls.cgi, 'env.cgi'))
        os.chmod(os.path.join(cls.cgi, 'env.cgi'), 0o755)
        conf = '''
log_level = "info";
tls_listen = [ "127.0.0.1:@PORT@" ];
proxy_protocol = [ "127.0.0.1:@PORT@" ];
tls = { certificate = "%(crt)s"; key = "%(key)s"; };
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%(cgi)s"; },
  { prefix = "/status"; handler = "status"; }
);
''' % {'cgi': cls.cgi, 'crt': crt, 'key': key}
        harness.start_class_server(cls, conf=conf, listen=[])

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)
        shutil.rmtree(cls.base, True)

    def get(self, header, target, src=None):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(('127.0.0.1', self.port), timeout=30,
                                       source_address=(src, 0) if src else None)
        raw.sendall(header)
        s = ctx.wrap_socket(raw, server_hostname='localhost')
        try:
            s.sendall(('GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
                       % target).encode())
            data = b''
            while True:
                try:
                    b = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not b:
                    break
                data += b
        finally:
            s.close()
        return harness.read_response(data)

    def test_any_peer_without_proxy_protocol_from(self):
        # no proxy_protocol_from and no real_ip_from: any peer, as before
        r = self.get(b'PROXY TCP4 192.0.2.32 192.0.2.1 1 443\r\n', '/cgi-bin/env.cgi',
                     src='127.0.0.2')
        self.assertEqual(parse_env(r.body)['REMOTE_ADDR'], '192.0.2.32')

    def test_header_before_the_handshake(self):
        r = self.get(b'PROXY TCP4 192.0.2.30 192.0.2.1 5555 443\r\n', '/cgi-bin/env.cgi')
        self.assertEqual(r.status, 200)
        e = parse_env(r.body)
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT'], e.get('HTTPS')),
                         ('192.0.2.30', '5555', 'on'))
        r = self.get(v2_tcp4('192.0.2.31', '192.0.2.1', 5556, 443, b'\x01\x00\x02h2'),
                     '/cgi-bin/env.cgi')
        self.assertEqual(parse_env(r.body)['REMOTE_ADDR'], '192.0.2.31')

    def test_status_page_loopback_check_sees_the_client(self):
        self.assertEqual(self.get(b'PROXY TCP4 192.0.2.30 192.0.2.1 1 443\r\n', '/status').status,
                         403)
        self.assertEqual(self.get(b'PROXY TCP4 127.0.0.5 192.0.2.1 1 443\r\n', '/status').status,
                         200)


class ProxyProtocolFromRealIpFrom(unittest.TestCase):
    """Without proxy_protocol_from, the top level's real_ip_from are the
    peers allowed to send a PROXY header."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-realip-')
        conf = '''
log_level = "info";
proxy_protocol = [ "127.0.0.1:@PORT@" ];
real_ip_from = [ "127.0.0.1" ];
'''
        harness.start_class_server(cls, conf=conf)
        cls.srv.write_file('f.txt', 'top\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)
        shutil.rmtree(cls.base, True)

    def test_real_ip_from_is_the_default(self):
        hdr = b'PROXY TCP4 192.0.2.40 192.0.2.1 1 80\r\n'
        self.assertEqual(exchange(self.port, hdr, '/f.txt', src='127.0.0.2'), b'')
        self.assertTrue(self.srv.wait_for_log(
            r'not in proxy_protocol_from, client: 127\.0\.0\.2:'), self.srv.stderr_text()[-2000:])
        self.assertEqual(status_of(exchange(self.port, hdr, '/f.txt')), 200)


class ForwardedFor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix='portico-realip-')
        cls.cgi = os.path.join(cls.base, 'cgi')
        os.mkdir(cls.cgi)
        shutil.copyfile(os.path.join(HERE, 'cgi', 'env.cgi'), os.path.join(cls.cgi, 'env.cgi'))
        os.chmod(os.path.join(cls.cgi, 'env.cgi'), 0o755)
        conf = '''
log_level = "info";
access_log_format = "$remote_addr $proxy_addr \\"$request\\" $status";
real_ip_from = [ "127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48" ];
locations = (
  { prefix = "/cgi-bin/"; handler = "cgi"; dir = "%(cgi)s"; },
  { prefix = "/deny/"; access = [ "deny 192.0.2.66", "allow all" ]; }
);
vhosts = (
  { names = [ "xri.test" ]; root = "%(base)s"; real_ip_header = "X-Real-IP"; },
  { names = [ "fwd.test" ]; root = "%(base)s"; real_ip_header = "Forwarded"; },
  { names = [ "*" ]; }
);
''' % {'cgi': cls.cgi, 'base': cls.base}
        harness.start_class_server(cls, conf=conf, access_log=True)
        cls.srv.write_file('deny/f.txt', 'f\n')

    @classmethod
    def tearDownClass(cls):
        harness.stop_class_server(cls)
        shutil.rmtree(cls.base, True)

    def env(self, xff=None, src=None, host='example.test', name='X-Forwarded-For'):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(30)
        if src:
            s.bind((src, 0))
        s.connect(('127.0.0.1', self.port))
        extra = '%s: %s\r\n' % (name, xff) if xff is not None else ''
        s.sendall(('GET /cgi-bin/env.cgi HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n'
                   % (host, extra)).encode())
        data, _ = harness.recv_until_close(s, 30)
        s.close()
        r = harness.read_response(data)
        self.assertEqual(r.status, 200, data[:300])
        return parse_env(r.body)

    def addr(self, xff, **kw):
        return self.env(xff, **kw)['REMOTE_ADDR']

    def test_rightmost_untrusted_wins(self):
        self.assertEqual(self.addr('203.0.113.5'), '203.0.113.5')
        self.assertEqual(self.addr('203.0.113.5, 10.1.2.3'), '203.0.113.5',
                         'a trusted hop (10.0.0.0/8) is skipped')
        self.assertEqual(self.addr('6.6.6.6, 203.0.113.5, 10.1.2.3 ,10.9.9.9'), '203.0.113.5',
                         'what the client wrote to the left is not believed')
        self.assertEqual(self.addr('10.0.0.1, 10.0.0.2'), '10.0.0.1',
                         'all trusted: the leftmost')

    def test_port_and_ipv6(self):
        e = self.env('[2001:db8::5]:1234')
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('2001:db8::5', '1234'))
        self.assertEqual(self.addr('2001:db8::6, 2001:db8:ffff::1'), '2001:db8::6')
        e = self.env('192.0.2.8:8080')
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('192.0.2.8', '8080'))
        self.assertEqual(self.addr('::ffff:192.0.2.9'), '192.0.2.9')

    def test_several_fields_are_one_list(self):
        s = harness.connect(self.port)
        s.sendall(b'GET /cgi-bin/env.cgi HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.1\r\n'
                  b'X-Forwarded-For: 10.0.0.3\r\nConnection: close\r\n\r\n')
        data, _ = harness.recv_until_close(s, 30)
        s.close()
        self.assertEqual(parse_env(harness.read_response(data).body)['REMOTE_ADDR'],
                         '203.0.113.1')

    def test_untrusted_peer_is_ignored(self):
        self.assertEqual(self.addr('203.0.113.5', src='127.0.0.2'), '127.0.0.2')

    def test_garbage_is_ignored_and_logged(self):
        self.assertEqual(self.addr('203.0.113.5, bogus'), '127.0.0.1')
        self.assertEqual(self.addr('203.0.113.5:99999'), '127.0.0.1')
        self.assertEqual(self.addr('1.2.3'), '127.0.0.1')
        self.assertTrue(self.srv.wait_for_log(
            r'\[info\] [^\n]*X-Forwarded-For from trusted peer 127\.0\.0\.1 holds something not '
            r'an address'), self.srv.stderr_text()[-2000:])
        # garbage left of the client is never looked at
        self.assertEqual(self.addr('bogus, 203.0.113.6'), '203.0.113.6')

    def test_per_request_on_keep_alive(self):
        c = http.client.HTTPConnection('127.0.0.1', self.port, timeout=30)
        try:
            got = []
            for h in ({'X-Forwarded-For': '203.0.113.50'}, {},
                      {'X-Forwarded-For': '203.0.113.51'}):
                c.request('GET', '/cgi-bin/env.cgi', headers=h)
                r = c.getresponse()
                got.append(parse_env(r.read())['REMOTE_ADDR'])
        finally:
            c.close()
        self.assertEqual(got, ['203.0.113.50', '127.0.0.1', '203.0.113.51'])

    def test_access_rules_and_log(self):
        s = harness.connect(self.port)
        s.sendall(b'GET /deny/f.txt?xff HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.66\r\n'
                  b'Connection: close\r\n\r\n')
        data, _ = harness.recv_until_close(s, 30)
        s.close()
        self.assertEqual(status_of(data), 403)
        self.assertTrue(harness.Server.wait_for(
            lambda: any(l.startswith('192.0.2.66 127.0.0.1 "') and '?xff' in l
                        for l in self.srv.access_log_text().splitlines()), 20))

    def test_real_ip_header_per_vhost(self):
        self.assertEqual(self.addr('203.0.113.70', host='xri.test', name='X-Real-IP'),
                         '203.0.113.70')
        self.assertEqual(self.addr('203.0.113.71', host='xri.test'), '127.0.0.1',
                         'that vhost does not read X-Forwarded-For')


    def test_rfc7239_forwarded(self):
        def fwd(value, **kw):
            return self.env(value, host='fwd.test', name='Forwarded', **kw)
        e = fwd('for="[2001:db8:cafe::17]:4711";proto=https')
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('2001:db8:cafe::17', '4711'))
        self.assertEqual(fwd('for=6.6.6.6, for=203.0.113.80;by=10.0.0.1, for=10.1.2.3')
                         ['REMOTE_ADDR'], '203.0.113.80', 'the rightmost untrusted for=')
        e = fwd('for="203.0.113.81:_obf"')
        self.assertEqual((e['REMOTE_ADDR'], e['REMOTE_PORT']), ('203.0.113.81', '0'),
                         'an obfuscated port is none')
        # a hop that hides its client: stop there, the peer is kept
        self.assertEqual(fwd('for=203.0.113.82, for=unknown')['REMOTE_ADDR'], '127.0.0.1')
        self.assertEqual(fwd('for=203.0.113.83, for=_hidden')['REMOTE_ADDR'], '127.0.0.1')
        self.assertEqual(fwd('for=2001:db8::1')['REMOTE_ADDR'], '127.0.0.1',
                         'IPv6 must be bracketed and quoted')
        # only from a trusted peer, and only the configured field
        self.assertEqual(fwd('for=203.0.113.84', src='127.0.0.2')['REMOTE_ADDR'], '127.0.0.2')
        self.assertEqual(self.addr('203.0.113.85', host='fwd.test'), '127.0.0.1',
                         'that vhost does not read X-Forwarded-For')


class ConfigErrors(unittest.TestCase):
    def check(self, conf, needle):
        d = tempfile.mkdtemp(prefix='portico-realip-')
        self.addCleanup(shutil.rmtree, d, True)
        p = os.path.join(d, 'p.conf')
        with open(p, 'w') as f:
            f.write(harness.root_user('root = "%s";\n%s' % (d, conf)))
        r = subprocess.run([harness.PORTICO, '-t', '-c', p], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(needle, r.stdout.decode())

    def test_errors_name_the_line(self):
        self.check('real_ip_from = [ "10.0.0.0/33" ];\n',
                   "p.conf:2: real_ip_from '10.0.0.0/33'")
        self.check('real_ip_from = [ "all" ];\n', "p.conf:2: real_ip_from 'all'")
        self.check('real_ip_header = "X-Real-IP";\n', 'p.conf:2: real_ip_header needs real_ip_from')
        self.check('real_ip_from = [ "::1" ];\nreal_ip_header = "X Real";\n',
                   "p.conf:3: real_ip_header 'X Real'")
        self.check('listen = [ "127.0.0.1:1" ];\nproxy_protocol = [ "127.0.0.1:2" ];\n',
                   "p.conf:3: proxy_protocol '127.0.0.1:2': not an address of listen")
        self.check('listen = [ "127.0.0.1:1" ];\nproxy_protocol = [ "127.0.0.1:1" ];\n'
                   'proxy_protocol_from = [ "10.0.0.0/40" ];\n',
                   "p.conf:4: proxy_protocol_from '10.0.0.0/40'")
        self.check('listen = [ "127.0.0.1:1" ];\nproxy_protocol = [ "127.0.0.1:1" ];\n'
                   'proxy_protocol_from = [ ];\n', 'p.conf:4: proxy_protocol_from must not be empty')
        self.check('proxy_protocol_from = [ "10.0.0.1" ];\n',
                   'p.conf:2: proxy_protocol_from needs proxy_protocol')


if __name__ == '__main__':
    harness.main()
