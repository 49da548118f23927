/* fuzz_proxy_head.c: the HTTP proxy's reading of an upstream's response
 * head (proxy.c: one scan finds the lines, splits and checks them). Fed
 * whole and in pieces, the same bytes give the same answer; a head that
 * passes hands on only valid fields (a token name, a value without CTLs
 * but HT) and none of the hop-by-hop ones; the decoder never consumes
 * more than it was given. The first byte selects the split pattern, the
 * header cap and the request's flags (Upgrade allowed, 1xx passed on). */
#include "fuzz.h"

#include "conf.h"
#include "conn.h"
#include "gw.h"
#include "proxy.h"
#include "worker.h"

static const char *const never_kept[] = {
    "Connection", "Keep-Alive",       "Transfer-Encoding", "TE",   "Trailer",
    "Upgrade",    "Proxy-Connection", "Content-Length",    "Date", "Server",
};

typedef struct outcome {
    char *text; /* 1xx heads, then "FAIL why", "MORE", or the head as the gateway got it */
    size_t used;
    bool head; /* it ended with a head (the final one or a 101) */
} outcome;

static void append(char **t, size_t *n, const char *p, size_t k)
{
    *t = realloc(*t, *n + k + 1);
    if (!*t)
        abort();
    memcpy(*t + *n, p, k);
    *n += k;
    (*t)[*n] = '\0';
}

static outcome run(const char *in, size_t len, uint8_t opt, uint32_t seed, unsigned cap)
{
    static pt_config cfg;
    static pt_worker w;
    static pt_conn c;
    static pt_header rh[] = {{"Host", "example.org", 4, 11},
                             {"Connection", "upgrade", 10, 7},
                             {"Upgrade", "websocket", 7, 9}};
    pt_req r;
    pt_gw g;
    pt_location loc;
    pt_fcgi_server sv;
    pt_backend bk;
    memset(&r, 0, sizeof(r));
    memset(&g, 0, sizeof(g));
    memset(&loc, 0, sizeof(loc));
    memset(&sv, 0, sizeof(sv));
    memset(&bk, 0, sizeof(bk));
    cfg.limits.gw_header_max = (opt & 1) ? 256 : 4096;
    w.cfg = &cfg;
    c.w = &w;
    loc.upgrade = (opt & 2) != 0;
    loc.interim_responses = (opt & 4) != 0;
    r.loc = &loc;
    r.conn = &c;
    r.gw = &g;
    r.head.headers = rh;
    r.head.nheaders = PT_ARRAY_LEN(rh);
    r.head.http_major = r.head.http_minor = 1;
    pt_cgi_resp_init(&g.resp, cfg.limits.gw_header_max, (opt & 8) ? 4 : 100);
    g.resp.status_line = true;
    sv.address = "127.0.0.1:8000";
    bk.servers = &sv;
    bk.nservers = 1;
    bk.via = (opt & 0x80) != 0;
    void *d = calloc(1, pt_proxy_codec.dec_size);
    FZ_CHECK(d != NULL);
    pt_proxy_codec.dec_init(d);
    pt_proxy_codec.bind(d, &r, &bk, 0);
    outcome o = {NULL, 0, false};
    size_t tl = 0;
    bool done = false;
    while (o.used < len && !done) {
        size_t piece = cap ? fz_piece(&seed, cap, len - o.used) : len - o.used;
        const char *p = in + o.used;
        while (piece > 0 && !done) {
            pt_upstream_ev ev;
            memset(&ev, 0, sizeof(ev));
            size_t used = pt_proxy_codec.feed(d, p, piece, &ev);
            FZ_CHECK(used <= piece);
            p += used;
            piece -= used;
            o.used += used;
            if (ev.type == PT_UEV_FAIL) {
                append(&o.text, &tl, "FAIL ", 5);
                append(&o.text, &tl, ev.why, strlen(ev.why));
                done = true;
            } else if (ev.type == PT_UEV_INTERIM || ev.type == PT_UEV_TUNNEL) {
                append(&o.text, &tl, "1xx ", 4);
                append(&o.text, &tl, ev.data, ev.len);
                done = o.head = ev.type == PT_UEV_TUNNEL;
            } else if (ev.type == PT_UEV_OUT && ev.head) {
                const pt_cgi_resp *rs = &g.resp;
                char st[64];
                append(&o.text, &tl, st,
                       (size_t)snprintf(st, sizeof(st), "%d %lld:", rs->status,
                                        (long long)rs->content_length));
                FZ_CHECK(rs->content_length >= -1);
                for (size_t i = 0; i < rs->nhdrs; i++) {
                    pt_str n = pt_cgi_hdr_name(rs, i), v = pt_cgi_hdr_value(rs, i);
                    FZ_CHECK(n.len > 0);
                    for (size_t j = 0; j < n.len; j++)
                        FZ_CHECK(fz_is_tchar((unsigned char)n.p[j]));
                    for (size_t j = 0; j < v.len; j++) {
                        unsigned char ch = (unsigned char)v.p[j];
                        FZ_CHECK(ch == '\t' || (ch >= 0x20 && ch != 0x7f));
                    }
                    for (size_t k = 0; k < PT_ARRAY_LEN(never_kept); k++)
                        FZ_CHECK(!fz_ieq(n.p, n.len, never_kept[k]));
                    FZ_CHECK(n.len < 6 || !fz_ieq(n.p, 6, "proxy-"));
                    append(&o.text, &tl, " ", 1);
                    append(&o.text, &tl, n.p, n.len);
                    append(&o.text, &tl, "=", 1);
                    append(&o.text, &tl, v.p, v.len);
                }
                done = o.head = true;
            } else if (used == 0) {
                break;
            }
        }
    }
    if (!done)
        append(&o.text, &tl, "MORE", 4);
    pt_proxy_codec.dec_free(d);
    free(d);
    pt_cgi_resp_free(&g.resp);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    char *in = fz_dup(data + 1, size - 1);
    size_t len = size - 1;
    uint32_t s = fz_seed(data, size);
    outcome a = run(in, len, opt, s, 0);
    outcome b = run(in, len, opt, s, (opt & 0x10) ? 2 : (opt & 0x20) ? 13 : 200);
    /* a head in pieces is collected and read as the whole one: the same
     * answer; what follows it is left where the whole read left it */
    FZ_CHECK(strcmp(a.text, b.text) == 0);
    FZ_CHECK(a.head == b.head);
    if (a.head)
        FZ_CHECK(a.used == b.used);
    free(a.text);
    free(b.text);
    free(in);
    return 0;
}
