/* test_alog.c: access-log formats: the template parser's errors, the
 * combined line byte for byte, escaping (text and JSON), a line cut at the
 * buffer whole, and request ids (client ones checked, made ones unique). */
#include "first.h"
#include "alog.h"

#include <string.h>

#include "tap.h"

static pt_alog_rec rec(void)
{
    pt_alog_rec r = {
        .remote_addr = "192.0.2.1",
        .remote_port = 5555,
        .t_wall = 1796570964, /* 2026-12-06 15:29:24 UTC */
        .request_line = "GET /a\"b HTTP/1.1",
        .request_line_len = 17,
        .status = 200,
        .body_bytes = 6,
        .bytes_sent = 150,
        .bytes_received = 80,
        .request_ms = 1234,
        .gateway_ms = -1,
        .request_id = "abc",
    };
    return r;
}

static void test_template_errors_name_the_field(void)
{
    pt_alog_fmt f;
    char err[160];
    ok(pt_alog_parse("$status $nope", &f, err, sizeof(err)) < 0 &&
           strcmp(err, "unknown field $nope") == 0,
       "an unknown field is an error naming it");
    ok(pt_alog_parse("cost: $", &f, err, sizeof(err)) < 0, "a lone $ is an error");
    ok(pt_alog_parse("${status", &f, err, sizeof(err)) < 0, "an open brace is an error");
    ok(pt_alog_parse("$$ ${status}x $http_x_a", &f, err, sizeof(err)) == 0 && f.n == 5,
       "$$, ${name} and $http_ parse");
    pt_alog_free(&f);
}

static void test_combined_line_and_escaping(void)
{
    pt_alog_fmt f;
    char err[160], out[512];
    pt_alog_rec r = rec();
    ok(pt_alog_parse("combined", &f, err, sizeof(err)) == 0 && !f.uses_request_id,
       "combined parses");
    size_t n = pt_alog_format(&f, &r, out, sizeof(out));
    ok(n == strlen(out) && strcmp(out, "192.0.2.1 - - [06/Dec/2026:15:29:24 +0000] \"GET "
                                       "/a\\\"b HTTP/1.1\" 200 6 \"-\" \"-\" 1.234 -\n") == 0,
       "the combined line as before: %s", out);
    r.gateway_ms = 12;
    pt_alog_format(&f, &r, out, sizeof(out));
    ok(strstr(out, " 1.234 0.012\n") != NULL, "gateway time in seconds");
    char small[40];
    n = pt_alog_format(&f, &r, small, sizeof(small));
    ok(n == strlen(small) && small[n - 1] == '\n' && n < sizeof(small) &&
           strncmp(small, "192.0.2.1 - - ", 14) == 0,
       "a line too long is cut between pieces and still ends in a newline");
    char ua[3000], line[4096];
    memset(ua, 'u', sizeof(ua));
    pt_header uh[] = {{"User-Agent", ua, 10, sizeof(ua)}};
    pt_head hd = {.headers = uh, .nheaders = 1};
    r.head = &hd;
    n = pt_alog_format(&f, &r, line, sizeof(line));
    ok(n < 1200 && strstr(line, "uuu...\" 1.234 0.012\n") != NULL,
       "a long header is cut with \"...\"; the fields after it stay");
    r.head = NULL;
    pt_alog_free(&f);

    ok(pt_alog_parse("[$request]", &f, err, sizeof(err)) == 0, "a template");
    r.request_line = "GET /\x01\xff";
    r.request_line_len = 7;
    pt_alog_format(&f, &r, out, sizeof(out));
    ok(strcmp(out, "[GET /\\x01\\xFF]\n") == 0, "control and high bytes as \\xNN: %s", out);
    pt_alog_free(&f);

    ok(pt_alog_parse("json", &f, err, sizeof(err)) == 0 && f.json && f.uses_request_id,
       "json parses");
    pt_alog_format(&f, &r, out, sizeof(out));
    ok(strstr(out, "\"request\":\"GET /\\u0001\\u00ff\"") && strstr(out, "\"status\":200,") &&
           strstr(out, "\"referer\":null") && strstr(out, "\"request_time\":1.234") &&
           strstr(out, "\"time\":\"2026-12-06T15:29:24Z\"") && out[0] == '{' &&
           strcmp(out + strlen(out) - 2, "}\n") == 0,
       "JSON: escaped strings, numbers, null: %s", out);
    n = pt_alog_format(&f, &r, small, sizeof(small));
    ok(strcmp(small, "{\"error\":\"line too long\",\"status\":200}\n") == 0,
       "a JSON line too long is replaced by one that parses: %s", small);
    pt_alog_free(&f);
}

static void test_request_ids(void)
{
    ok(pt_alog_request_id_ok("a-B_1.2:3+/=", 12), "a token is a usable id");
    ok(!pt_alog_request_id_ok("a b", 3) && !pt_alog_request_id_ok("a\"", 2) &&
           !pt_alog_request_id_ok("", 0),
       "spaces, quotes and empty ids are not");
    char big[130];
    memset(big, 'a', 129);
    ok(pt_alog_request_id_ok(big, 128) && !pt_alog_request_id_ok(big, 129), "at most 128 bytes");
    pt_header hs[] = {{"x-request-id", "client-1", 12, 8}};
    pt_head h = {.headers = hs, .nheaders = 1};
    char a[129], b[129];
    pt_alog_request_id(&h, true, a);
    ok(strcmp(a, "client-1") == 0, "trusted: the client's id");
    pt_alog_request_id(&h, false, a);
    pt_alog_request_id(NULL, false, b);
    ok(strlen(a) == 32 && strlen(b) == 32 && strcmp(a, b) != 0 &&
           strspn(a, "0123456789abcdef") == 32,
       "made ids: 32 hex digits, each different");
}

int main(void)
{
    test_template_errors_name_the_field();
    test_combined_line_and_escaping();
    test_request_ids();
    return tap_done();
}
