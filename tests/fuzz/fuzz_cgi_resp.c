/* fuzz_cgi_resp.c: the CGI/FastCGI response-header parser. consumed never
 * exceeds what was fed, every offset stays inside the copied block, nothing
 * that would split the response reaches a kept value, and any split of the
 * same output gives the same result. The first byte selects the caps, the
 * split pattern and the status-line mode (uwsgi). */
#include "fuzz.h"

#include "cgi_resp.h"

static const size_t max_size_tab[] = {64, 1024, 8192, 65536};
static const size_t max_hdrs_tab[] = {1, 3, 16, 100};

/* Headers the parser consumes itself or never forwards. */
static const char *const never_kept[] = {
    "Status",
    "Content-Length",
    "X-Accel-Buffering",
    "Connection",
    "Keep-Alive",
    "Transfer-Encoding",
    "TE",
    "Trailer",
    "Upgrade",
    "Proxy-Connection",
    "Date",
    "Server",
};

static void check_done(const pt_cgi_resp *r)
{
    FZ_CHECK(r->len <= r->max_size && r->len <= r->cap);
    FZ_CHECK(r->status >= 100 && r->status <= 599);
    FZ_CHECK(memchr(r->reason, '\0', sizeof(r->reason)) != NULL);
    if (!r->has_status)
        FZ_CHECK(r->status == (r->location.p ? 302 : 200) && r->reason[0] == '\0');
    FZ_CHECK(r->content_length >= -1);
    FZ_CHECK(r->nhdrs <= r->max_hdrs && r->nhdrs <= r->nlines);
    if (r->location.p) {
        FZ_CHECK(r->location.len > 0 && fz_inside(r->buf, r->len, r->location.p, r->location.len));
    }
    if (r->local_redirect)
        FZ_CHECK(r->location.p && r->location.p[0] == '/' && !r->has_status &&
                 !r->has_content_type);
    for (size_t i = 0; i < r->nhdrs; i++) {
        pt_str n = pt_cgi_hdr_name(r, i), v = pt_cgi_hdr_value(r, i);
        FZ_CHECK((size_t)r->hdrs[i].name_off + r->hdrs[i].name_len <= r->len);
        FZ_CHECK((size_t)r->hdrs[i].value_off + r->hdrs[i].value_len <= r->len);
        FZ_CHECK(n.len > 0);
        for (size_t j = 0; j < n.len; j++)
            FZ_CHECK(fz_is_tchar((unsigned char)n.p[j]));
        for (size_t j = 0; j < v.len; j++) {
            unsigned char c = (unsigned char)v.p[j];
            FZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f)); /* no response splitting */
        }
        if (v.len)
            FZ_CHECK(v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.len - 1] != ' ' &&
                     v.p[v.len - 1] != '\t');
        for (size_t k = 0; k < PT_ARRAY_LEN(never_kept); k++)
            FZ_CHECK(!fz_ieq(n.p, n.len, never_kept[k]));
    }
}

static bool same_str(pt_str a, pt_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    size_t max_size = max_size_tab[opt & 3], max_hdrs = max_hdrs_tab[(opt >> 2) & 3];
    char *in = fz_dup(data + 1, size - 1);
    size_t len = size - 1, consumed = 0;
    pt_cgi_resp a, b;

    /* all at once */
    pt_cgi_resp_init(&a, max_size, max_hdrs);
    a.status_line = (opt & 0x40) != 0;
    int rc = pt_cgi_resp_feed(&a, in, len, &consumed);
    FZ_CHECK(rc == PT_CGI_RESP_MORE || rc == PT_CGI_RESP_DONE || rc == PT_CGI_RESP_ERROR);
    FZ_CHECK(consumed <= len);
    if (rc == PT_CGI_RESP_MORE) {
        FZ_CHECK(consumed == len);
        rc = pt_cgi_resp_eof(&a);
        FZ_CHECK(rc == PT_CGI_RESP_ERROR);
    }
    if (rc == PT_CGI_RESP_ERROR)
        FZ_CHECK(a.error != NULL);
    if (rc == PT_CGI_RESP_DONE) {
        /* the block ends with its empty line: LF or CRLF */
        FZ_CHECK(consumed >= 2 && in[consumed - 1] == '\n');
        check_done(&a);
        /* feeding more after DONE changes nothing */
        size_t more = 1;
        FZ_CHECK(pt_cgi_resp_feed(&a, "x\n", 2, &more) == PT_CGI_RESP_DONE && more == 0);
    }

    /* the same bytes in pieces */
    {
        uint32_t s = fz_seed(data, size);
        unsigned cap = (opt & 0x10) ? 2 : (opt & 0x20) ? 13 : 200;
        size_t pos = 0;
        int rb = PT_CGI_RESP_MORE;
        pt_cgi_resp_init(&b, max_size, max_hdrs);
        b.status_line = a.status_line;
        while (pos < len && rb == PT_CGI_RESP_MORE) {
            size_t piece = fz_piece(&s, cap, len - pos), used = 0;
            rb = pt_cgi_resp_feed(&b, in + pos, piece, &used);
            FZ_CHECK(used <= piece);
            if (rb == PT_CGI_RESP_MORE)
                FZ_CHECK(used == piece);
            pos += used;
        }
        if (rb == PT_CGI_RESP_MORE)
            rb = pt_cgi_resp_eof(&b);
        FZ_CHECK(rb == rc);
        if (rc == PT_CGI_RESP_ERROR)
            FZ_CHECK(strcmp(a.error, b.error) == 0);
        if (rc == PT_CGI_RESP_DONE) {
            FZ_CHECK(pos == consumed);
            FZ_CHECK(a.status == b.status && a.has_status == b.has_status &&
                     strcmp(a.reason, b.reason) == 0 && a.local_redirect == b.local_redirect &&
                     a.has_content_type == b.has_content_type &&
                     a.content_length == b.content_length && a.no_buffering == b.no_buffering &&
                     a.nhdrs == b.nhdrs);
            FZ_CHECK((a.location.p == NULL) == (b.location.p == NULL) &&
                     same_str(a.location, b.location));
            for (size_t i = 0; i < a.nhdrs; i++)
                FZ_CHECK(same_str(pt_cgi_hdr_name(&a, i), pt_cgi_hdr_name(&b, i)) &&
                         same_str(pt_cgi_hdr_value(&a, i), pt_cgi_hdr_value(&b, i)));
        }
        pt_cgi_resp_free(&b);
    }
    pt_cgi_resp_free(&a);
    free(in);
    return 0;
}
