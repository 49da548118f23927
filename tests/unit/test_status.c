/* test_status.c: the status page's pure parts and the shared counters: who
 * counts as loopback, how the format is chosen, sums over worker slots
 * written by separate processes (gauges dropped, sums kept when a slot is
 * given back), latency buckets, and label/string escaping in the output. */
#include "first.h"
#include "stats.h"
#include "status.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static bool lo4(const char *s)
{
    unsigned char a[16] = {0};
    inet_pton(AF_INET, s, a);
    return pt_status_is_loopback(AF_INET, a);
}

static bool lo6(const char *s)
{
    unsigned char a[16] = {0};
    inet_pton(AF_INET6, s, a);
    return pt_status_is_loopback(AF_INET6, a);
}

static void test_loopback_is_127_8_and_v6_1_and_unix(void)
{
    ok(lo4("127.0.0.1"), "127.0.0.1 is loopback");
    ok(lo4("127.255.3.9"), "all of 127/8 is loopback");
    ok(!lo4("128.0.0.1"), "128.0.0.1 is not");
    ok(!lo4("10.0.0.1"), "10.0.0.1 is not");
    ok(!lo4("192.0.2.2"), "192.0.2.2 is not");
    ok(lo6("::1"), "::1 is loopback");
    ok(!lo6("::2"), "::2 is not");
    ok(!lo6("fe80::1"), "fe80::1 is not");
    ok(!lo6("::"), ":: is not");
    ok(pt_status_is_loopback(AF_UNIX, NULL), "a Unix socket client is local");
}

static pt_status_fmt fmt(const char *path, const char *query, const char *accept)
{
    return pt_status_format(path, strlen(path), query, query ? strlen(query) : 0, accept,
                            accept ? strlen(accept) : 0);
}

static void test_format_query_then_path_then_accept(void)
{
    ok(fmt("/status", NULL, NULL) == PT_STATUS_TEXT, "text by default");
    ok(fmt("/status", "format=json", NULL) == PT_STATUS_JSON, "?format=json");
    ok(fmt("/status", "a=1&format=prometheus&b", NULL) == PT_STATUS_PROMETHEUS,
       "format= among other parameters");
    ok(fmt("/status", "format=json&format=text", "application/json") == PT_STATUS_TEXT,
       "the last format= wins, over Accept");
    ok(fmt("/status", "format=xml", NULL) == PT_STATUS_BAD, "an unknown format is an error");
    ok(fmt("/status", "format=", NULL) == PT_STATUS_BAD, "an empty format is an error");
    ok(fmt("/status", "formats=json", NULL) == PT_STATUS_TEXT, "another parameter is ignored");
    ok(fmt("/metrics", NULL, NULL) == PT_STATUS_PROMETHEUS, "/metrics is Prometheus");
    ok(fmt("/x/metrics", NULL, "application/json") == PT_STATUS_PROMETHEUS,
       "a path ending in /metrics wins over Accept");
    ok(fmt("/status", NULL, "text/html, Application/JSON;q=0.9") == PT_STATUS_JSON,
       "Accept: application/json, any case");
    ok(fmt("/status", NULL, "text/plain;version=0.0.4;q=0.3,*/*;q=0.1") == PT_STATUS_PROMETHEUS,
       "Accept: the exposition format 0.0.4");
    ok(fmt("/status", NULL, "application/openmetrics-text;version=1.0.0") == PT_STATUS_PROMETHEUS,
       "Accept: OpenMetrics gets 0.0.4");
    ok(fmt("/status", NULL, "text/plain") == PT_STATUS_TEXT, "Accept: text/plain is text");
}

static void test_slots_sum_across_processes(void)
{
    pt_fcgi_server srv[2] = {{.address = "unix:/run/a.sock"}, {.address = "127.0.0.1:9000"}};
    pt_backend be = {.name = "php", .servers = srv, .nservers = 2};
    pt_config cfg = {.backends = &be, .nbackends = 1};
    ok(pt_stats_init() == 0, "the area maps");
    pt_stats_bind(&cfg);
    int slots[2] = {pt_stats_slot_take(), pt_stats_slot_take()};
    ok(slots[0] >= 0 && slots[1] >= 0 && slots[0] != slots[1], "two slots");
    for (int k = 0; k < 2; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            pt_stats_attach(slots[k]);
            for (int i = 0; i < 10 * (k + 1); i++)
                pt_stats_request(i % 2 ? 404 : 200, 100, 1000);
            PT_STATS_ADD(pt_stats_my->active, 3);
            pt_stats_srv *s = pt_stats_server("php", "127.0.0.1:9000");
            PT_STATS_ADD(s->requests, 5);
            PT_STATS_SET(s->active, 1);
            pt_stats_latency(s, 5);     /* le 5 ms */
            pt_stats_latency(s, 6);     /* le 10 ms */
            pt_stats_latency(s, 20000); /* +Inf */
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
    }
    pt_stats_snap *s = calloc(1, sizeof(*s));
    ok(pt_stats_snapshot(s) == 0, "a snapshot");
    ok(s->c.requests == 30 && s->c.status[2] == 15 && s->c.status[4] == 15,
       "requests of both slots summed by class");
    ok(s->c.bytes_in == 3000 && s->c.bytes_out == 30000, "bytes summed");
    ok(s->c.active == 6 && s->workers == 2, "gauges summed, two workers");
    ok(s->nsrv == 3 && strcmp(s->srv[0].backend, "php") == 0 && s->srv[0].server[0] == '\0',
       "the backend's own entry, then its servers");
    ok(s->srv[2].sum.requests == 10 && s->srv[2].sum.active == 2, "a server's counts summed");
    ok(s->srv[1].sum.requests == 0, "the other server untouched");
    ok(s->srv[2].sum.lat[0] == 2 && s->srv[2].sum.lat[1] == 2 &&
           s->srv[2].sum.lat[PT_STATS_NBUCKETS - 1] == 2 && s->srv[2].sum.lat_count == 6,
       "latency buckets: le is inclusive, beyond 10 s is +Inf");

    pt_stats_slot_put(slots[0]);
    pt_stats_snapshot(s);
    ok(s->c.requests == 30 && s->c.active == 3 && s->srv[2].sum.active == 1 && s->workers == 1,
       "a slot given back: its sums stay, its gauges go");
    ok(pt_stats_slot_take() == slots[0], "the slot is taken again");

    /* a reload that drops a server: it leaves the page, and comes back with its sums */
    be.nservers = 1;
    pt_stats_bind(&cfg);
    pt_stats_snapshot(s);
    ok(s->nsrv == 2, "a server gone from the configuration is not shown");
    be.nservers = 2;
    pt_stats_bind(&cfg);
    pt_stats_snapshot(s);
    ok(s->nsrv == 3 && s->srv[2].sum.requests == 10, "back again, with its sums");
    free(s);
    pt_stats_free();
}

/* A reload that renames servers again and again: an entry whose name
 * left the configuration and whose workers are gone takes a new name, with
 * counters from zero; one an old worker may still write is never taken. */
static void test_names_are_reused_after_renames(void)
{
    char addr[32];
    pt_fcgi_server srv = {.address = addr};
    pt_backend be = {.name = "app", .servers = &srv, .nservers = 1};
    pt_config cfg = {.backends = &be, .nbackends = 1};
    ok(pt_stats_init() == 0, "the area maps");
    int slot = -1;
    bool all = true;
    pt_stats_snap *s = calloc(1, sizeof(*s));
    for (int gen = 0; gen < 3 * PT_STATS_SERVERS; gen++) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 10000 + gen);
        pt_stats_bind(&cfg); /* the reload: new workers after, old ones leave */
        int old = slot;
        slot = pt_stats_slot_take();
        pt_stats_attach(slot);
        PT_STATS_ADD(pt_stats_server("app", addr)->requests, 1);
        pt_stats_attach(-1);
        pt_stats_slot_put(old);
        pt_stats_snapshot(s);
        all = all && s->nsrv == 2 && strcmp(s->srv[1].server, addr) == 0 &&
              s->srv[1].sum.requests == 1;
    }
    ok(all, "%d renames: every generation's server is counted, from zero", 3 * PT_STATS_SERVERS);
    /* a worker of the first name still running keeps its entry */
    snprintf(addr, sizeof(addr), "10.0.0.1:1");
    pt_stats_bind(&cfg);
    int keep = pt_stats_slot_take();
    pt_stats_attach(keep);
    pt_stats_srv *mine = pt_stats_server("app", "10.0.0.1:1");
    pt_stats_attach(-1);
    PT_STATS_ADD(mine->requests, 7);
    for (int gen = 0; gen < 2 * PT_STATS_SERVERS; gen++) {
        snprintf(addr, sizeof(addr), "10.0.1.%d:1", gen);
        pt_stats_bind(&cfg);
        pt_stats_slot_put(slot);
        slot = pt_stats_slot_take();
    }
    ok(mine->requests == 7, "the counters of a live old worker are never handed on");
    pt_stats_slot_put(keep);
    pt_stats_slot_put(slot);
    free(s);
    pt_stats_free();
}

/* RFC 3629: the whole text is well-formed UTF-8 */
static bool utf8_ok(const unsigned char *p)
{
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xe0) == 0xc0 ? 2
                   : (*p & 0xf0) == 0xe0 ? 3
                   : (*p & 0xf8) == 0xf0 ? 4
                                         : 0;
        if (n == 0 || (n == 2 && *p < 0xc2))
            return false;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

static void test_render_keeps_utf8_valid(void)
{
    pt_stats_snap *s = calloc(1, sizeof(*s));
    s->nsrv = 2;
    /* Latin-1 bytes, a lone continuation byte, an overlong slash, a cut
     * sequence, then good UTF-8 (e acute, a snowman) */
    snprintf(s->srv[0].backend, sizeof(s->srv[0].backend), "caf\xe9\x80\xc0\xaf\xe2\x98");
    snprintf(s->srv[1].backend, sizeof(s->srv[1].backend), "%s", s->srv[0].backend);
    snprintf(s->srv[1].server, sizeof(s->srv[1].server), "caf\xc3\xa9 \xe2\x98\x83\xff");
    char *out = NULL;
    size_t len = 0;
    for (int f = 0; f < 3; f++) {
        pt_status_fmt fmt = f == 0   ? PT_STATUS_JSON
                            : f == 1 ? PT_STATUS_PROMETHEUS
                                     : PT_STATUS_TEXT;
        ok(pt_status_render(s, fmt, &out, &len) == 0 && utf8_ok((const unsigned char *)out),
           "format %d: the output is well-formed UTF-8", f);
        ok(strstr(out, "caf\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") &&
               strstr(out, "caf\xc3\xa9 \xe2\x98\x83\xef\xbf\xbd"),
           "format %d: bad bytes are U+FFFD, good sequences stay", f);
        free(out);
    }
    free(s);
}

static void test_render_escapes_names(void)
{
    pt_stats_snap *s = calloc(1, sizeof(*s));
    s->nsrv = 2;
    snprintf(s->srv[0].backend, sizeof(s->srv[0].backend), "a\"b\\c");
    snprintf(s->srv[1].backend, sizeof(s->srv[1].backend), "a\"b\\c");
    snprintf(s->srv[1].server, sizeof(s->srv[1].server), "unix:/x\ny");
    s->srv[1].sum.lat[0] = 1;
    s->srv[1].sum.lat[3] = 2;
    s->srv[1].sum.lat_count = 3;
    s->srv[1].down = 1;
    char *out = NULL;
    size_t len = 0;
    ok(pt_status_render(s, PT_STATUS_PROMETHEUS, &out, &len) == 0 && strlen(out) == len,
       "Prometheus renders");
    ok(strstr(out, "portico_backend_up{backend=\"a\\\"b\\\\c\",server=\"unix:/x\\ny\"} 0\n") !=
           NULL,
       "label values escape quote, backslash and newline; a down server is 0");
    ok(strstr(out, "le=\"0.005\"} 1\n") && strstr(out, "le=\"0.05\"} 3\n") &&
           strstr(out, "le=\"+Inf\"} 3\n"),
       "buckets are cumulative, le in seconds");
    ok(strstr(out, "# TYPE portico_backend_response_seconds histogram\n") != NULL,
       "the histogram is typed");
    free(out);
    ok(pt_status_render(s, PT_STATUS_JSON, &out, &len) == 0, "JSON renders");
    ok(strstr(out, "\"name\":\"a\\\"b\\\\c\"") && strstr(out, "\"address\":\"unix:/x\\ny\"") &&
           strstr(out, "\"up\":false"),
       "JSON strings escaped");
    free(out);
    ok(pt_status_render(s, PT_STATUS_TEXT, &out, &len) == 0 && strstr(out, "DOWN"),
       "text renders, a down server says so");
    free(out);
    free(s);
}

int main(void)
{
    test_loopback_is_127_8_and_v6_1_and_unix();
    test_format_query_then_path_then_accept();
    test_slots_sum_across_processes();
    test_names_are_reused_after_renames();
    test_render_escapes_names();
    test_render_keeps_utf8_valid();
    return tap_done();
}
