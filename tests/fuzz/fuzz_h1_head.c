/* fuzz_h1_head.c: request heads as conn.c handles them: find the end of the
 * head, parse it (portico's pre-scan + http-parser), then the path normaliser
 * and, for a chunked request, the body decoder over the bytes that follow.
 * The first byte selects the limits (as lighttpd's OSS-Fuzz target does). */
#include "fuzz.h"

#include "chunked.h"
#include "h1_head.h"
#include "util.h"

static const size_t max_headers_tab[] = {1, 4, 16, 100};
static const size_t limit_tab[] = {16, 256, 1024, 8192};

static void check_slice(const char *buf, size_t len, pt_str s)
{
    FZ_CHECK(s.len == 0 || fz_inside(buf, len, s.p, s.len));
}

/* find_head_end over a prefix must agree with the whole buffer: a head found
 * early is the same head, an error early stays an error: the whole buffer's,
 * or its head's parse (a bare CR is refused early only in an incomplete
 * head; a complete one leaves it to the parse). */
static void check_prefix(const char *buf, size_t limit, int whole, bool whole_ok, size_t k)
{
    int r = pt_h1_find_head_end(buf, k, limit);
    if (r > 0)
        FZ_CHECK(r == whole);
    else if (r < 0)
        FZ_CHECK(whole < 0 || !whole_ok);
    if (whole > 0 && k >= (size_t)whole)
        FZ_CHECK(r == whole);
}

/* the same bytes arriving in pieces, when the option byte asks */
static void pieces(const uint8_t *data, size_t size, const char *buf, size_t len, size_t limit,
                   int whole, bool whole_ok)
{
    if (!(data[0] & 0x10))
        return;
    uint32_t s = fz_seed(data, size);
    for (size_t k = 0; k < len; k += 1 + fz_next(&s) % 64)
        check_prefix(buf, limit, whole, whole_ok, k);
}

static void check_head(const char *head, size_t hl, const pt_head *h, size_t max_headers)
{
    FZ_CHECK(h->http_major == 1 && (h->http_minor == 0 || h->http_minor == 1));
    FZ_CHECK(h->nheaders <= max_headers);
    FZ_CHECK(h->method_str.len > 0);
    check_slice(head, hl, h->method_str);
    for (size_t i = 0; i < h->method_str.len; i++)
        FZ_CHECK(fz_is_tchar((unsigned char)h->method_str.p[i]));
    check_slice(head, hl, h->target);
    FZ_CHECK(h->target.len > 0);
    for (size_t i = 0; i < h->target.len; i++)
        FZ_CHECK((unsigned char)h->target.p[i] > 0x20 && h->target.p[i] != 0x7f);
    /* RFC 9112 §3.2.3: authority-form (host:port, no path) with CONNECT and
     * only there; every other form has a path, which may be the static "/"
     * of an absolute-form target without one */
    FZ_CHECK(h->authority_form == (h->method == PT_M_CONNECT));
    FZ_CHECK(!(h->authority_form && h->absolute_form));
    if (h->authority_form) {
        FZ_CHECK(h->path.len == 0 && !h->has_query);
        FZ_CHECK(memchr(h->target.p, ':', h->target.len) != NULL);
    } else {
        FZ_CHECK(h->path.len > 0);
    }
    /* RFC 9112 §3.2.4: asterisk-form with OPTIONS only */
    if (h->target.len == 1 && h->target.p[0] == '*')
        FZ_CHECK(h->method == PT_M_OPTIONS && h->path.len == 1);
    else if (!h->authority_form)
        FZ_CHECK(h->path.p[0] == '/');
    FZ_CHECK(!memchr(h->path.p, '?', h->path.len));
    FZ_CHECK(h->has_query == (h->query.p != NULL));
    if (h->has_query)
        check_slice(head, hl, h->query);
    check_slice(head, hl, h->host);
    /* RFC 9112 §3.2: HTTP/1.1 needs a Host */
    if (h->http_minor == 1)
        FZ_CHECK(h->host.len > 0);
    FZ_CHECK(h->content_length >= -1);
    FZ_CHECK(!(h->is_chunked && h->content_length >= 0));
    FZ_CHECK(!(h->is_chunked && h->http_minor == 0));
    FZ_CHECK(!h->expect_continue || h->http_minor == 1);
    for (size_t i = 0; i < h->nheaders; i++) {
        const pt_header *f = &h->headers[i];
        FZ_CHECK(f->name_len > 0 && fz_inside(head, hl, f->name, f->name_len));
        for (size_t j = 0; j < f->name_len; j++)
            FZ_CHECK(fz_is_tchar((unsigned char)f->name[j]));
        FZ_CHECK(f->value_len == 0 || fz_inside(head, hl, f->value, f->value_len));
        for (size_t j = 0; j < f->value_len; j++) {
            unsigned char c = (unsigned char)f->value[j];
            FZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (f->value_len)
            FZ_CHECK(f->value[0] != ' ' && f->value[0] != '\t' &&
                     f->value[f->value_len - 1] != ' ' && f->value[f->value_len - 1] != '\t');
        /* lookup returns the first match */
        const pt_header *g = NULL;
        char name[64];
        if (f->name_len < sizeof(name)) {
            memcpy(name, f->name, f->name_len);
            name[f->name_len] = '\0';
            g = pt_head_get(h, name);
            FZ_CHECK(g != NULL && g <= f);
        }
    }
    if (!h->absolute_form && h->host.len) {
        const pt_header *hh = pt_head_get(h, "Host");
        FZ_CHECK(hh && hh->value == h->host.p && hh->value_len == h->host.len);
    }
}

static void run_body(const char *p, size_t len)
{
    pt_chunked c;
    size_t consumed = 0, outlen = 0;
    char *in = fz_dup(p, len);
    pt_chunked_init(&c, 1 << 20, 1024);
    pt_chunk_rc rc = pt_chunked_decode(&c, in, len, &consumed, in, &outlen);
    FZ_CHECK(rc <= PT_CHUNK_TOO_LARGE && consumed <= len && outlen <= consumed);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    size_t max_headers = max_headers_tab[opt & 3];
    size_t limit = limit_tab[(opt >> 2) & 3];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    pt_h1_global_init((uint32_t)limit);
    int r = pt_h1_find_head_end(buf, len, limit);
    FZ_CHECK(r == 0 || r == -400 || r == -414 || r == -431 || r > 0);
    if (r > 0) {
        FZ_CHECK((size_t)r <= len && (size_t)r <= limit && r >= 4);
        FZ_CHECK(memcmp(buf + r - 4, "\r\n\r\n", 4) == 0);
    }
    if (r == 0)
        FZ_CHECK(len < limit);
    if (r <= 0) {
        pieces(data, size, buf, len, limit, r, false);
        return 0;
    }

    /* exactly the head in its own allocation: a read past it is an ASan report */
    size_t hl = (size_t)r;
    char *head = fz_dup(buf, hl);
    pt_header *hdrs = calloc(max_headers, sizeof(*hdrs));
    pt_head h;
    FZ_CHECK(hdrs != NULL);
    memset(&h, 0, sizeof(h));
    int st = pt_h1_parse_head(head, hl, hdrs, max_headers, &h);
    FZ_CHECK(st == 0 || st == 400 || st == 431 || st == 501 || st == 505);
    if (st != 0) {
        FZ_CHECK(h.error != NULL);
        check_slice(head, hl, h.method_str);
        check_slice(head, hl, h.target);
    } else {
        check_head(head, hl, &h, max_headers);
        /* conn.c normalises the path of every form but these two */
        if (!h.authority_form && !(h.target.len == 1 && h.target.p[0] == '*')) {
            char *norm = malloc(h.path.len + 1);
            FZ_CHECK(norm != NULL);
            ssize_t n = pt_path_normalize(h.path.p, h.path.len, norm);
            FZ_CHECK(n < 0 || (n > 0 && (size_t)n <= h.path.len && norm[0] == '/'));
            free(norm);
        }
        if (h.is_chunked && (opt & 0x20))
            run_body(buf + hl, len - hl);
    }
    pieces(data, size, buf, len, limit, r, st == 0);
    free(hdrs);
    free(head);
    return 0;
}
