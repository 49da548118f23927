#include "first.h"
#include "h1_head.h"
/* test_h1_head.c: request-head framing and validation, including every
 * smuggling vector of notes/architecture.md §3.3 (Debian's non-strict
 * http-parser 2.9.4) and the RFC 9112/9110 rules portico adds itself. */

#include <string.h>

#include "tap.h"

#define MAXH 32
static pt_header hs[MAXH];
static pt_head H;

/* parse a NUL-free request; head_len = whole string */
static int parse(const char *r)
{
    return pt_h1_parse_head(r, strlen(r), hs, MAXH, &H);
}

/* parse with an explicit length (for embedded NUL) */
static int parse_n(const char *r, size_t n)
{
    return pt_h1_parse_head(r, n, hs, MAXH, &H);
}

static int find(const char *r, size_t limit)
{
    return pt_h1_find_head_end(r, strlen(r), limit);
}

static bool slice_is(pt_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#define REQ(method_line, fields) method_line "\r\nHost: a.example\r\n" fields "\r\n"
#define POST11(fields) REQ("POST /up HTTP/1.1", fields)

static void test_smuggling_table(void)
{
    /* CL + TE, both orders: RFC 9112 §6.1 */
    ok(parse(POST11("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n")) == 400,
       "CL then TE: chunked is rejected with 400");
    ok(parse(POST11("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n")) == 400,
       "TE: chunked then CL is rejected with 400");
    ok(parse(POST11("Transfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n")) == 400,
       "CL with a 501-worthy TE list is still 400");
    ok(parse(POST11("Content-Length: 3\r\nContent-Length: 3\r\n")) == 400,
       "two identical Content-Length lines are rejected");
    ok(parse(POST11("Content-Length: 3\r\nContent-Length: 4\r\n")) == 400,
       "two different Content-Length lines are rejected");
    ok(parse(POST11("Content-Length: 3, 3\r\n")) == 400, "Content-Length list '3, 3' rejected");
    ok(parse(POST11("Content-Length: +3\r\n")) == 400, "Content-Length '+3' rejected");
    ok(parse(POST11("Content-Length: 1 2\r\n")) == 400, "Content-Length '1 2' rejected");
    ok(parse(POST11("Content-Length: 3 3\r\n")) == 400, "Content-Length '3 3' rejected");
    ok(parse(POST11("Content-Length: -1\r\n")) == 400, "negative Content-Length rejected");
    ok(parse(POST11("Content-Length: 3\t\r\n")) == 0 && H.content_length == 3,
       "trailing HTAB after Content-Length is OWS (RFC 9112 §5)");
    ok(parse(POST11("Transfer-Encoding: chunked \t\r\n")) == 0 && H.is_chunked,
       "trailing SP HTAB after Transfer-Encoding is OWS");
    ok(parse("GET / HTTP/1.1\r\nHost: a\t\r\nX-A: b\t\r\n\r\n") == 0 && slice_is(H.host, "a") &&
           H.headers[1].value_len == 1 && H.headers[1].value[0] == 'b',
       "trailing HTAB trimmed, slices point into the caller's buffer");
    ok(parse(POST11("Content-Length: 3  \r\n")) == 0 && H.content_length == 3,
       "Content-Length with trailing OWS accepted as 3");
    ok(parse(POST11("Content-Length:   3\r\n")) == 0 && H.content_length == 3,
       "Content-Length with leading OWS accepted as 3");
    ok(parse(POST11("Content-Length: 03\r\n")) == 0 && H.content_length == 3,
       "Content-Length with leading zero accepted as 3");
    ok(parse(POST11("Content-Length: 99999999999999999999\r\n")) == 400,
       "Content-Length beyond 2^64 rejected");
    ok(parse(POST11("Content-Length: 18446744073709551615\r\n")) == 400,
       "Content-Length 2^64-1 (beyond int64) rejected");
    ok(parse(POST11("Content-Length: 9223372036854775808\r\n")) == 400,
       "Content-Length 2^63 (int64 overflow) rejected");
    ok(parse(POST11("Content-Length: 9223372036854775807\r\n")) == 0 &&
           H.content_length == INT64_MAX,
       "Content-Length INT64_MAX parses exactly");
    ok(parse(POST11("Content-Length:\r\n")) == 400, "empty Content-Length rejected");
    ok(parse(POST11("Content-Length: 0x10\r\n")) == 400, "hex Content-Length rejected");

    /* TE where chunked is not final: RFC 9112 §6.3 MUST 400 */
    ok(parse(POST11("Transfer-Encoding: gzip\r\n")) == 400, "TE gzip alone is 400 (not final)");
    ok(parse(POST11("Transfer-Encoding: chunked, gzip\r\n")) == 400,
       "TE 'chunked, gzip' is 400 (chunked not final)");
    ok(parse(POST11("Transfer-Encoding: xchunked\r\n")) == 400, "TE 'xchunked' is 400");
    ok(parse(POST11("Transfer-Encoding: chunkedx\r\n")) == 400, "TE 'chunkedx' is 400");
    ok(parse(POST11("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n")) == 400,
       "TE chunked then identity on two lines is 400");
    ok(parse(POST11("Transfer-Encoding: chunked, identity\r\n")) == 400,
       "TE 'chunked, identity' is 400");
    ok(parse(POST11("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")) == 400,
       "duplicate TE chunked lines are 400 (chunked applied twice)");
    ok(parse(POST11("Transfer-Encoding: chunked, chunked\r\n")) == 400,
       "TE 'chunked, chunked' is 400");
    ok(parse(POST11("Transfer-Encoding: gzip, chunked\r\n")) == 501,
       "TE 'gzip, chunked' is 501 (coding not understood)");
    ok(parse(POST11("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n")) == 501,
       "TE gzip then chunked on two lines is 501");
    ok(parse(POST11("Transfer-Encoding: g(zip, chunked\r\n")) == 400,
       "TE list with a non-token element is 400, not 501");
    ok(parse(POST11("Transfer-Encoding: , chunked\r\n")) == 400,
       "TE list with an empty element is 400");
    ok(parse(POST11("Transfer-Encoding:\r\n")) == 400, "empty TE is 400");
    ok(parse(POST11("Transfer-Encoding: CHUNKED\r\n")) == 0 && H.is_chunked,
       "TE 'CHUNKED' is chunked (case-insensitive)");
    ok(parse(POST11("Transfer-Encoding: chunked\r\n")) == 0 && H.is_chunked &&
           H.content_length == -1,
       "TE chunked is chunked, content_length stays -1");
    ok(parse(POST11("Transfer-Encoding: \tchunked \r\n")) == 0 && H.is_chunked,
       "TE with SP/HT OWS around chunked is chunked");
    ok(parse(POST11("Transfer-Encoding:\x0b"
                    "chunked\r\n")) == 400,
       "TE with VT before chunked is 400");
    ok(parse(POST11("Transfer-Encoding:\rchunked\r\n")) == 400,
       "TE with bare CR before chunked is 400");
    ok(parse(POST11("Transfer-Encoding: chunked\x0c\r\n")) == 400,
       "TE with trailing form feed is 400");

    /* obs-fold: RFC 9112 §5.2 */
    ok(parse(POST11("X-A: one\r\n two\r\n")) == 400, "obs-fold (SP) in a field is 400");
    ok(parse(POST11("X-A: one\r\n\ttwo\r\n")) == 400, "obs-fold (HT) in a field is 400");
    ok(parse(POST11("Transfer-Encoding:\r\n chunked\r\n")) == 400,
       "obs-fold Transfer-Encoding is 400 (http-parser would take it as chunked)");
    ok(parse(POST11("Content-Length: 1\r\n 2\r\n")) == 400,
       "obs-fold inside Content-Length digits is 400");
    ok(parse("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == 400,
       "first field line starting with SP is 400");

    /* line endings: RFC 9112 §2.2 */
    ok(parse("GET / HTTP/1.1\nHost: x\n\n") == 400, "bare LF line endings are 400");
    ok(parse("GET / HTTP/1.1\r\nHost: x\n\r\n") == 400, "bare LF after a field is 400");
    ok(parse(POST11("X-A: a\rb\r\n")) == 400, "bare CR inside a value is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: x\r\n\rX") == 400,
       "CR followed by non-LF at the end of the head is 400");
    ok(find("GET / HTTP/1.1\r\nHost: x\r\n\rX", 1024) == -400,
       "find_head_end: CR followed by non-LF is -400");

    /* whitespace and junk in field names: RFC 9112 §5.1 */
    ok(parse(POST11("Content-Length : 3\r\n")) == 400, "'Content-Length : 3' is 400");
    ok(parse(POST11("Transfer-Encoding : chunked\r\n")) == 400,
       "'Transfer-Encoding : chunked' is 400");
    ok(parse(POST11("Content-Length\t: 3\r\n")) == 400, "HT before colon is 400");
    ok(parse(POST11("Foo Bar: y\r\n")) == 400, "space inside a field name is 400");
    ok(parse(POST11("Foo\"Bar: y\r\n")) == 400, "non-token character in a field name is 400");
    ok(parse(POST11(": y\r\n")) == 400, "empty field name is 400");
    ok(parse(POST11("NoColonHere\r\n")) == 400, "field line without colon is 400");

    /* CTLs in values: RFC 9110 §5.5 */
    {
        static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n";
        ok(parse_n(r, sizeof(r) - 1) == 400, "NUL in a field value is 400");
    }
    ok(parse(POST11("X-A: a\x01z\r\n")) == 400, "SOH in a field value is 400");
    ok(parse(POST11("X-A: a\x7fz\r\n")) == 400, "DEL in a field value is 400");
    ok(parse(POST11("X-A: a\tb\r\n")) == 0, "HT inside a field value is fine");
    ok(parse(POST11("X-A: caf\xc3\xa9\r\n")) == 0, "obs-text in a field value is accepted");
    ok(parse("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n") == 400,
       "obs-text in the request-target is 400");
    ok(parse("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "DEL in the request-target is 400");

    /* versions */
    ok(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505, "HTTP/2.0 request line is 505");
    ok(parse("GET / HTTP/3.0\r\nHost: a\r\n\r\n") == 505, "HTTP/3.0 request line is 505");
    ok(parse("PRI * HTTP/2.0\r\n\r\n") == 505, "h2 prior-knowledge preface head is 505");
    ok(parse("GET /\r\n\r\n") == 400, "HTTP/0.9 request line (no version) is 400");
    ok(parse("GET / HTTP/1.10\r\nHost: a\r\n\r\n") == 400, "HTTP/1.10 is 400");
    ok(parse("GET / HTXP/1.1\r\nHost: a\r\n\r\n") == 400, "HTXP/1.1 is 400");
    ok(parse("GET / http/1.1\r\nHost: a\r\n\r\n") == 400, "lower-case http/1.1 is 400");
    ok(parse("GET / HTTP/1\r\nHost: a\r\n\r\n") == 400, "HTTP/1 without minor is 400");
    ok(parse("GET / HTTP/1.5\r\nHost: a\r\n\r\n") == 0 && H.http_major == 1 && H.http_minor == 1 &&
           H.keep_alive,
       "HTTP/1.5 is answered as HTTP/1.1 (RFC 9110 §6.2)");

    /* methods: RFC 9110 §9.1 */
    ok(parse("get / HTTP/1.1\r\nHost: a\r\n\r\n") == 501,
       "lower-case 'get' is an unknown method token: 501");
    ok(parse("FOO / HTTP/1.1\r\nHost: a\r\n\r\n") == 501, "unknown method token FOO is 501");
    ok(parse("G(T / HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "non-token method is 400");
    ok(parse("PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_OTHER,
       "PROPFIND is known to http-parser: PT_M_OTHER");
    ok(parse("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n") == 0 &&
           H.method == PT_M_CONNECT,
       "CONNECT authority-form parses, left to the caller as PT_M_CONNECT");
    ok(parse("CONNECT a.example:443 HTTP/1.0\r\n\r\n") == 0 && H.authority_form &&
           !H.absolute_form && H.path.len == 0 && !H.has_query &&
           slice_is(H.target, "a.example:443"),
       "authority-form (RFC 9112 §3.2.3) is flagged and has an empty path");
    ok(parse("CONNECT [::1]:5 HTTP/1.1\r\nHost: [::1]:5\r\n\r\n") == 0 && H.authority_form,
       "authority-form with an IPv6 literal");
    ok(parse("GET a.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400,
       "authority-form with GET is 400 (CONNECT only)");
    ok(parse("OPTIONS a.example:443 HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400,
       "authority-form with OPTIONS is 400 (CONNECT only)");
    ok(parse("CONNECT * HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400,
       "asterisk-form with CONNECT is 400 (OPTIONS only)");
    ok(parse("CONNECT http://a.example:80/ HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400,
       "absolute-form with CONNECT is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n") == 0 && !H.authority_form &&
           H.path.len == 1,
       "origin-form is not authority-form");
    ok(parse("CONNECT a.example HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400,
       "CONNECT without a port is 400");
    ok(parse("CONNECT / HTTP/1.1\r\nHost: a.example\r\n\r\n") == 400,
       "CONNECT with origin-form is 400");

    /* Host: RFC 9112 §3.2 */
    ok(parse("GET / HTTP/1.1\r\n\r\n") == 400, "missing Host on HTTP/1.1 is 400");
    ok(parse("GET / HTTP/1.0\r\n\r\n") == 0 && H.host.len == 0,
       "missing Host on HTTP/1.0 is fine (empty host)");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == 400, "duplicate Host is 400");
    ok(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == 400,
       "duplicate Host is 400 on HTTP/1.0 too");

    /* empty lines before the request line: RFC 9112 §2.2 */
    ok(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_GET,
       "leading empty lines are ignored");

    /* Upgrade is ignored, the head still parses completely */
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n") == 0,
       "Upgrade: websocket parses as a plain GET");
}

static void test_request_line(void)
{
    ok(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "double SP after method is 400");
    ok(parse("GET /  HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "double SP after target is 400");
    ok(parse("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "HT as request-line separator is 400");
    ok(parse("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "HT inside the target is 400");
    ok(parse(" GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "leading SP before method is 400");
    ok(parse("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == 400, "trailing SP after version is 400");
    ok(parse("GET foo HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "relative target is 400");
    ok(parse("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "fragment in target is 400");
    ok(parse("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "asterisk-form with GET is 400");
    ok(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_OPTIONS &&
           H.path.len == 1 && H.path.p[0] == '*' && !H.has_query && !H.authority_form &&
           !H.absolute_form,
       "OPTIONS * is accepted with path '*' (RFC 9112 §3.2.4)");
    ok(parse("OPTIONS *?x HTTP/1.1\r\nHost: a\r\n\r\n") == 400,
       "asterisk-form is exactly '*': '*?x' is 400");
    ok(parse("GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n") == 400,
       "absolute-form with scheme ftp is 400");
    ok(parse("GET http://u@a.example/ HTTP/1.1\r\nHost: a\r\n\r\n") == 400,
       "absolute-form with userinfo is 400");
    ok(parse("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n") == 400,
       "absolute-form with empty authority is 400");
    ok(parse("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n") == 400, "'http:/x' is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\nX") == 400,
       "bytes after the empty line inside head_len are 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\n") == 400, "head without the empty line is 400");
}

static void test_absolute_form(void)
{
    ok(parse("GET http://a.example/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n") == 0,
       "absolute-form request parses");
    ok(H.absolute_form, "absolute_form is set");
    ok_mem(H.host.p, H.host.len, "a.example", "authority wins over a different Host");
    ok_mem(H.path.p, H.path.len, "/x", "absolute-form path is the part after the authority");
    ok(H.has_query, "absolute-form query present");
    ok_mem(H.query.p, H.query.len, "y", "absolute-form query split at '?'");
    ok_mem(H.target.p, H.target.len, "http://a.example/x?y", "target is raw");

    ok(parse("GET HTTPS://a.example:8443 HTTP/1.1\r\nHost: a\r\n\r\n") == 0,
       "scheme is case-insensitive, https accepted");
    ok_mem(H.host.p, H.host.len, "a.example:8443", "authority keeps its port");
    ok_mem(H.path.p, H.path.len, "/", "empty absolute-form path becomes '/'");
    ok(!H.has_query && H.query.p == NULL, "no '?' means no query");

    ok(parse("GET http://a.example?q=1 HTTP/1.1\r\nHost: a\r\n\r\n") == 0 &&
           slice_is(H.path, "/") && H.has_query,
       "absolute-form with query but no path: path '/', query present");
}

static void test_host_syntax(void)
{
    ok(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n") == 400, "empty Host on HTTP/1.1 is 400");
    ok(parse("GET / HTTP/1.0\r\nHost:\r\n\r\n") == 0 && H.host.len == 0,
       "empty Host on HTTP/1.0 is accepted");
    ok(parse("GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n") == 0, "Host with port accepted");
    ok(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") == 0 && slice_is(H.host, "[::1]:8080"),
       "Host IPv6 literal with port accepted");
    ok(parse("GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n") == 0, "Host IPv4 accepted");
    ok(parse("GET / HTTP/1.1\r\nHost: a..b\r\n\r\n") == 400, "Host with empty label is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: ..\r\n\r\n") == 400, "Host '..' is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == 400, "Host with '/' is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == 400, "Host with SP is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n") == 400, "Host with userinfo is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n") == 400, "Host port > 65535 is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a:\r\n\r\n") == 400, "Host with empty port is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n") == 400, "Host with non-digit port is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: [v1.x]\r\n\r\n") == 400, "Host IPvFuture is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n") == 400, "Host unclosed '[' is 400");
    ok(parse("GET / HTTP/1.1\r\nHost: a.example.\r\n\r\n") == 0,
       "Host with trailing dot (FQDN) accepted");
}

static void test_fields_of_head(void)
{
    static const char r[] = "\r\nPOST /cgi-bin/x.cgi?a=1&b HTTP/1.1\r\n"
                            "Host:  a.example \r\n"
                            "content-length: 12\r\n"
                            "X-Empty:\r\n"
                            "Expect: 100-Continue\r\n"
                            "\r\n";
    const pt_header *h;

    ok(parse(r) == 0, "full request parses");
    ok(H.error == NULL, "no error reason on success");
    ok(H.method == PT_M_POST, "method POST");
    ok_mem(H.method_str.p, H.method_str.len, "POST", "method_str");
    ok_mem(H.target.p, H.target.len, "/cgi-bin/x.cgi?a=1&b", "raw target");
    ok_mem(H.path.p, H.path.len, "/cgi-bin/x.cgi", "path without query");
    ok(H.has_query, "has_query");
    ok_mem(H.query.p, H.query.len, "a=1&b", "query without '?'");
    ok_mem(H.host.p, H.host.len, "a.example", "host from Host with OWS trimmed");
    ok(!H.absolute_form, "origin-form is not absolute_form");
    ok(H.http_major == 1 && H.http_minor == 1, "version 1.1");
    ok(H.headers == hs && H.nheaders == 4, "4 header slices in caller space");
    ok(H.headers[0].name >= r && H.headers[0].name < r + sizeof(r), "slices point into input");
    ok_mem(H.headers[0].name, H.headers[0].name_len, "Host", "header 0 name");
    ok_mem(H.headers[0].value, H.headers[0].value_len, "a.example", "header 0 value trimmed");
    ok_mem(H.headers[1].name, H.headers[1].name_len, "content-length", "header 1 name as sent");
    ok_mem(H.headers[1].value, H.headers[1].value_len, "12", "header 1 value");
    ok_mem(H.headers[2].name, H.headers[2].name_len, "X-Empty", "header 2 name");
    ok(H.headers[2].value_len == 0 && H.headers[2].value != NULL, "empty value is non-NULL, 0");
    ok(H.content_length == 12, "content_length 12");
    ok(!H.is_chunked, "not chunked");
    ok(H.keep_alive, "HTTP/1.1 keeps alive by default");
    ok(H.expect_continue, "Expect: 100-Continue (any case) sets expect_continue");
    h = pt_head_get(&H, "CONTENT-LENGTH");
    ok(h == &H.headers[1], "pt_head_get is case-insensitive");
    ok(pt_head_get(&H, "Content-Type") == NULL, "pt_head_get returns NULL when absent");
    ok(pt_head_get(&H, "Content-Lengt") == NULL, "pt_head_get does not match prefixes");

    ok(parse("GET /? HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.has_query && H.query.p != NULL &&
           H.query.len == 0 && slice_is(H.path, "/"),
       "'/?' has an empty query with has_query true");
    ok(parse("GET /x HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && !H.has_query && H.query.p == NULL &&
           H.content_length == -1 && !H.expect_continue,
       "no query, no Content-Length (-1), no Expect");
    ok(parse("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_HEAD, "HEAD maps");
    ok(parse("PUT / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_PUT, "PUT maps");
    ok(parse("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_DELETE,
       "DELETE maps");
    ok(parse("PATCH / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_PATCH, "PATCH maps");
    ok(parse("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.method == PT_M_TRACE, "TRACE maps");
}

static void test_keep_alive_and_expect(void)
{
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") == 0 && !H.keep_alive,
       "HTTP/1.1 Connection: close disables keep-alive");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n") == 0 && !H.keep_alive,
       "Connection: Close is case-insensitive");
    ok(parse("GET / HTTP/1.0\r\n\r\n") == 0 && !H.keep_alive && H.http_minor == 0,
       "HTTP/1.0 closes by default");
    ok(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0 && H.keep_alive,
       "HTTP/1.0 with Connection: keep-alive keeps alive");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n") == 0 && H.keep_alive,
       "HTTP/1.1 with Connection: keep-alive keeps alive");
    ok(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n") == 0 &&
           !H.expect_continue,
       "Expect: 100-continue ignored on HTTP/1.0");
    ok(parse(POST11("Expect: something-else\r\nContent-Length: 1\r\n")) == 0 && !H.expect_continue,
       "other Expect values are ignored");
    ok(parse(POST11("Expect:  100-continue \r\nContent-Length: 1\r\n")) == 0 && H.expect_continue,
       "Expect value has OWS trimmed");
    ok(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400,
       "Transfer-Encoding on HTTP/1.0 is 400");
    ok(parse("POST / HTTP/1.0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 400,
       "any Transfer-Encoding list on HTTP/1.0 is 400");
}

static void test_header_count(void)
{
    static const char r[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    pt_header small[4];

    ok(pt_h1_parse_head(r, sizeof(r) - 1, small, 4, &H) == 0 && H.nheaders == 4,
       "exactly max_headers fields are accepted");
    ok(pt_h1_parse_head(r, sizeof(r) - 1, small, 3, &H) == 431, "max_headers + 1 fields: 431");
    ok(H.error != NULL, "431 carries a reason");
    ok(pt_h1_parse_head(r, sizeof(r) - 1, NULL, 0, &H) == 431, "max_headers 0 with fields: 431");
    ok(pt_h1_parse_head("GET / HTTP/1.0\r\n\r\n", 18, NULL, 0, &H) == 0,
       "max_headers 0 without fields is fine");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == 0 && H.error == NULL,
       "error is reset by a later success");
    ok(parse("GET / HTTP/1.1\r\n\r\n") == 400 && H.error != NULL && slice_is(H.method_str, "GET") &&
           slice_is(H.target, "/"),
       "failure keeps method and target for the log");
}

static void test_parser_cap(void)
{
    static char r[12000];
    size_t n;

    /* http-parser's process-global cap is a backstop behind our own limits */
    pt_h1_global_init(4096);
    n = (size_t)snprintf(r, sizeof(r), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(r + n, 'v', 9000);
    n += 9000;
    memcpy(r + n, "\r\n\r\n", 4);
    n += 4;
    ok(pt_h1_parse_head(r, n, hs, MAXH, &H) == 431, "head above the parser cap is 431");
    pt_h1_global_init(65536);
    ok(pt_h1_parse_head(r, n, hs, MAXH, &H) == 0 && H.headers[1].value_len == 9000,
       "same head passes with a larger cap");
    ok(strcmp(pt_h1_parser_version(), "2.9.4") == 0, "parser version is 2.9.4");
}

static void test_find_head_end(void)
{
    static const char full[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    char big[300];

    ok(find(full, 1024) == (int)strlen(full), "complete head returns its length");
    ok(find("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n", 1024) == (int)strlen(full),
       "pipelined bytes after the head are not included");
    ok(find("GET / HTTP/1.1\r\nHost: a\r\n", 1024) == 0, "incomplete head returns 0");
    ok(find("GET / HTTP/1.1\r\nHost: a\r\n\r", 1024) == 0, "head cut after final CR returns 0");
    ok(find("", 1024) == 0, "empty buffer returns 0");
    ok(find("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1024) == (int)strlen(full) + 4,
       "leading CRLFs are part of the returned head");
    ok(find("\r\n\r\n", 1024) == 0, "only empty lines so far: wait");
    ok(find("\r", 1024) == 0, "lone CR so far: wait");
    ok(find("\n", 1024) == -400, "leading bare LF is -400");
    ok(find("GET / HTTP/1.1\nHost: a\n\n", 1024) == -400, "bare LF is -400 right away");
    ok(find("\x16\x03\x01", 1024) == -400, "TLS ClientHello is -400");
    ok(find("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 16) == -414,
       "limit reached inside the request line: 414");
    ok(find("GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaa", 24) == -431,
       "limit reached after the request line: 431");
    ok(find(full, strlen(full)) == (int)strlen(full), "head exactly at the limit is accepted");
    ok(find(full, strlen(full) - 1) == -431, "head one byte over the limit is 431");
    memset(big, '\r', sizeof(big));
    for (size_t i = 1; i < sizeof(big); i += 2)
        big[i] = '\n';
    ok(pt_h1_find_head_end(big, sizeof(big), 64) == -400,
       "nothing but empty lines up to the limit is -400");
    ok(find("GET / HTTP/1.1\r\nHost: a\r\n\n", 1024) == -400,
       "bare LF as the final empty line is -400");
    static const char cr_inside[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n";
    ok(find(cr_inside, 1024) == (int)strlen(cr_inside),
       "a complete head is found whole, bare CR and all (the LF hops never look at CR)");
    ok(parse(cr_inside) == 400 && strcmp(H.error, "bare CR") == 0,
       "and the parse refuses its bare CR (400)");
    ok(find("GET / HTTP/1.1\r\nX-A: a\rb\r\n", 1024) == -400,
       "an incomplete head with a bare CR is -400 at once");
    ok(parse("\r\n\r\n") == 400, "empty lines alone are no head (400)");
    ok(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\nX") == 400 &&
           strcmp(H.error, "head not terminated by an empty line") == 0,
       "a head must end in CRLF CRLF, whatever it holds before");
    ok(parse_n("GET /a", 6) == 400 && parse_n("GET / HTTP/1.1\r\nHost", 20) == 400,
       "heads cut inside the target or a field name are 400");
}

/* A field name is exactly a token (RFC 9110 §5.1, §5.6.2): every byte
 * value, alone between two letters. */
static void test_field_name_bytes(void)
{
    const char *tchars = "!#$%&'*+-.^_`|~";
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        char req[64];
        if (c == ':')
            continue; /* "X:Y: v" is the field X */
        int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX%cY: v\r\n\r\n", 'A');
        req[26] = (char)c; /* the 'A' */
        bool is_t = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (c != 0 && strchr(tchars, c) != NULL);
        int st = parse_n(req, (size_t)n);
        if ((st == 0) != is_t) {
            printf("# byte 0x%02x: status %d\n", c, st);
            bad++;
        }
    }
    ok(bad == 0, "a field name byte is accepted exactly when it is a tchar");
}

/* A field value holds VCHAR, obs-text, SP and HT only (RFC 9110 §5.5):
 * every byte value at every offset of a 20-byte value, whose bytes the
 * pre-scan checks eight at a time. */
static void test_field_value_bytes(void)
{
    int bad = 0;
    for (int at = 0; at < 20; at++) {
        for (int c = 0; c < 256; c++) {
            char req[96];
            int n =
                snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX-V: %s\r\nX-W: w\r\n\r\n",
                         "abcdefghijklmnopqrst");
            req[30 + at] = (char)c;
            bool good = c == '\t' || (c >= 0x20 && c != 0x7f);
            pt_header fs[8];
            pt_head h;
            int st = pt_h1_parse_head(req, (size_t)n, fs, 8, &h);
            if ((st == 0) != good || (st != 0 && st != 400) ||
                (st == 0 && (h.nheaders != 3 || h.headers[2].value_len != 1))) {
                printf("# byte 0x%02x at %d: status %d\n", c, at, st);
                bad++;
            }
        }
    }
    ok(bad == 0, "a field value byte is accepted exactly when it is HT, SP, VCHAR or obs-text");
}

int main(void)
{
    test_field_name_bytes();
    test_field_value_bytes();
    test_smuggling_table();
    test_request_line();
    test_absolute_form();
    test_host_syntax();
    test_fields_of_head();
    test_keep_alive_and_expect();
    test_header_count();
    test_parser_cap();
    test_find_head_end();
    return tap_done();
}
