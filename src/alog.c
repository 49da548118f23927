/* alog.c: access-log lines. A template is parsed once into literal pieces
 * and field numbers; a line is rendered into the caller's buffer with every
 * client-supplied byte escaped, so a request can never forge a line. JSON
 * lines carry every field by name. */
#include "first.h"
#include "alog.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    V_REMOTE_ADDR,
    V_REMOTE_PORT,
    V_TIME_LOCAL,
    V_TIME_ISO8601,
    V_REQUEST,
    V_METHOD,
    V_URI,
    V_PROTOCOL,
    V_STATUS,
    V_BODY_BYTES,
    V_BYTES_SENT,
    V_BYTES_RECEIVED,
    V_REQUEST_TIME,
    V_GATEWAY_TIME,
    V_REQUEST_ID,
    V_HOST,
    V_HTTP,         /* $http_NAME: a request header */
    V_PROXY_ADDR,   /* the connection's TCP peer: the balancer (realip.c) */
    V_CACHE_STATUS, /* what the response cache did (cache.c): HIT, MISS... */
};

static const struct {
    const char *name;
    int var;
} fields[] = {
    {"remote_addr", V_REMOTE_ADDR},
    {"remote_port", V_REMOTE_PORT},
    {"time_local", V_TIME_LOCAL},
    {"time_iso8601", V_TIME_ISO8601},
    {"request", V_REQUEST},
    {"request_method", V_METHOD},
    {"request_uri", V_URI},
    {"server_protocol", V_PROTOCOL},
    {"status", V_STATUS},
    {"body_bytes_sent", V_BODY_BYTES},
    {"bytes_sent", V_BYTES_SENT},
    {"bytes_received", V_BYTES_RECEIVED},
    {"request_time", V_REQUEST_TIME},
    {"gateway_time", V_GATEWAY_TIME},
    {"request_id", V_REQUEST_ID},
    {"host", V_HOST},
    {"proxy_addr", V_PROXY_ADDR},
    {"upstream_cache_status", V_CACHE_STATUS},
};

/* the line portico always wrote: combined + request time + gateway time */
static const char combined[] = "$remote_addr - - [$time_local] \"$request\" $status "
                               "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" "
                               "$request_time $gateway_time";

/* JSON lines: key, field (header name for V_HTTP) */
static const struct {
    const char *key;
    int var;
    const char *header;
} json_fields[] = {
    {"time", V_TIME_ISO8601, NULL},
    {"remote_addr", V_REMOTE_ADDR, NULL},
    {"remote_port", V_REMOTE_PORT, NULL},
    {"host", V_HOST, NULL},
    {"request", V_REQUEST, NULL},
    {"method", V_METHOD, NULL},
    {"uri", V_URI, NULL},
    {"protocol", V_PROTOCOL, NULL},
    {"status", V_STATUS, NULL},
    {"body_bytes_sent", V_BODY_BYTES, NULL},
    {"bytes_sent", V_BYTES_SENT, NULL},
    {"bytes_received", V_BYTES_RECEIVED, NULL},
    {"request_time", V_REQUEST_TIME, NULL},
    {"gateway_time", V_GATEWAY_TIME, NULL},
    {"request_id", V_REQUEST_ID, NULL},
    {"referer", V_HTTP, "Referer"},
    {"user_agent", V_HTTP, "User-Agent"},
};

static int add_item(pt_alog_fmt *f, int var, const char *text, size_t len)
{
    pt_alog_item *n = realloc(f->items, (f->n + 1) * sizeof(*n));
    if (!n)
        return -1;
    f->items = n;
    pt_alog_item *it = &f->items[f->n];
    it->var = var;
    it->len = len;
    it->text = NULL;
    if (text && !(it->text = strndup(text, len)))
        return -1;
    f->n++;
    if (var == V_REQUEST_ID)
        f->uses_request_id = true;
    return 0;
}

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}

int pt_alog_parse(const char *spec, pt_alog_fmt *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    if (strcmp(spec, "json") == 0) {
        f->json = true;
        f->uses_request_id = true;
        return 0;
    }
    if (strcmp(spec, "combined") == 0)
        spec = combined;
    const char *p = spec, *lit = spec;
    while (*p) {
        if (*p != '$') {
            p++;
            continue;
        }
        if (p > lit && add_item(f, -1, lit, (size_t)(p - lit)) < 0)
            goto oom;
        if (p[1] == '$') { /* "$$": one '$' */
            if (add_item(f, -1, "$", 1) < 0)
                goto oom;
            p += 2;
            lit = p;
            continue;
        }
        bool brace = p[1] == '{';
        const char *n = p + 1 + brace, *e = n;
        while (name_char(*e))
            e++;
        size_t nl = (size_t)(e - n);
        if (nl == 0 || (brace && *e != '}')) {
            snprintf(err, errlen, "'$' must start a field name such as $status (use $$ for '$')");
            goto fail;
        }
        int var = -2;
        for (size_t i = 0; i < PT_ARRAY_LEN(fields); i++)
            if (strlen(fields[i].name) == nl && memcmp(fields[i].name, n, nl) == 0)
                var = fields[i].var;
        if (var == -2 && nl > 5 && memcmp(n, "http_", 5) == 0) {
            /* $http_user_agent: the header User-Agent (RFC 9110 §5.1: names are
             * case-insensitive) */
            if (add_item(f, V_HTTP, n + 5, nl - 5) < 0)
                goto oom;
            for (size_t i = 0; i < nl - 5; i++)
                if (f->items[f->n - 1].text[i] == '_')
                    f->items[f->n - 1].text[i] = '-';
        } else if (var == -2) {
            snprintf(err, errlen, "unknown field $%.*s", (int)PT_MIN(nl, (size_t)64), n);
            goto fail;
        } else if (add_item(f, var, NULL, 0) < 0) {
            goto oom;
        }
        p = e + brace;
        lit = p;
    }
    if (p > lit && add_item(f, -1, lit, (size_t)(p - lit)) < 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    pt_alog_free(f);
    return -1;
}

void pt_alog_free(pt_alog_fmt *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].text);
    free(f->items);
    memset(f, 0, sizeof(*f));
}

/* ---- rendering ---------------------------------------------------------- */

typedef struct wbuf {
    char *p;
    size_t len, cap; /* cap excludes the room kept for "\n\0" */
    bool full;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if (w->full || w->len + n > w->cap) {
        w->full = true; /* a piece that does not fit is left out whole */
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void puts_(wbuf *w, const char *s)
{
    put(w, s, strlen(s));
}

/* bytes one field may take in a line: a long header is cut, with "...",
 * rather than pushing the fields after it out of the line */
#define PT_ALOG_FIELD_MAX 1024

/* Client bytes: \" \\ and \xNN for the rest outside printable ASCII (text),
 * or a JSON string body (bytes >= 0x80 as \u00XX: always valid JSON). */
static void put_esc(wbuf *w, const char *s, size_t n, bool json)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = w->len;
    for (size_t i = 0; i < n && !w->full; i++) {
        if (w->len - start > PT_ALOG_FIELD_MAX) {
            put(w, "...", 3);
            return;
        }
        unsigned char ch = (unsigned char)s[i];
        char u[8];
        size_t ul = 0;
        if (ch == '"' || ch == '\\') {
            u[ul++] = '\\';
            u[ul++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            u[ul++] = (char)ch;
        } else if (json) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[ch >> 4];
            u[5] = hex[ch & 15];
            ul = 6;
        } else {
            u[0] = '\\';
            u[1] = 'x';
            u[2] = (char)(hex[ch >> 4] - (ch >> 4 >= 10 ? 32 : 0));
            u[3] = (char)(hex[ch & 15] - ((ch & 15) >= 10 ? 32 : 0));
            ul = 4;
        }
        put(w, u, ul);
    }
}

static void put_u64(wbuf *w, uint64_t v)
{
    char b[24];
    put(w, b, pt_u64_dec(b, v));
}

static void put_ms(wbuf *w, uint64_t ms)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%llu.%03llu", (unsigned long long)(ms / 1000),
                     (unsigned long long)(ms % 1000));
    put(w, b, (size_t)PT_MAX(n, 0));
}

static const pt_header *header(const pt_alog_rec *r, const char *name, size_t nl)
{
    if (!r->head)
        return NULL;
    for (size_t i = 0; i < r->head->nheaders; i++) {
        const pt_header *h = &r->head->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0)
            return h;
    }
    return NULL;
}

/* One field's value. Strings are escaped, "-" when absent (text) or null
 * (JSON); numbers bare. */
static void put_var(wbuf *w, const pt_alog_rec *r, int var, const char *hname, size_t hlen,
                    bool json)
{
    const char *s = NULL;
    size_t sl = 0;
    char tb[64];
    struct tm tm;
    switch (var) {
    case V_REMOTE_PORT:
        put_u64(w, r->remote_port);
        return;
    case V_STATUS:
        put_u64(w, (uint64_t)PT_MAX(r->status, 0));
        return;
    case V_BODY_BYTES:
        put_u64(w, r->body_bytes);
        return;
    case V_BYTES_SENT:
        put_u64(w, r->bytes_sent);
        return;
    case V_BYTES_RECEIVED:
        put_u64(w, r->bytes_received);
        return;
    case V_REQUEST_TIME:
        put_ms(w, r->request_ms);
        return;
    case V_GATEWAY_TIME:
        if (r->gateway_ms >= 0)
            put_ms(w, (uint64_t)r->gateway_ms);
        else
            puts_(w, json ? "null" : "-");
        return;
    case V_TIME_LOCAL:
    case V_TIME_ISO8601:
        gmtime_r(&r->t_wall, &tm);
        sl = strftime(tb, sizeof(tb),
                      var == V_TIME_LOCAL ? "%d/%b/%Y:%H:%M:%S +0000" : "%Y-%m-%dT%H:%M:%SZ", &tm);
        s = tb;
        break;
    case V_REMOTE_ADDR:
        s = r->remote_addr;
        sl = s ? strlen(s) : 0;
        break;
    case V_PROXY_ADDR:
        /* made here, so lines that do not show it pay nothing */
        if (r->proxy_af == AF_INET || r->proxy_af == AF_INET6)
            s = inet_ntop(r->proxy_af, r->proxy_addr, tb, sizeof(tb));
        else if (r->proxy_addr)
            s = "unix";
        sl = s ? strlen(s) : 0;
        break;
    case V_REQUEST:
        s = r->request_line;
        sl = r->request_line_len;
        break;
    case V_METHOD:
        if (r->head)
            s = r->head->method_str.p, sl = r->head->method_str.len;
        break;
    case V_URI:
        if (r->head)
            s = r->head->target.p, sl = r->head->target.len;
        break;
    case V_PROTOCOL:
        if (r->head && r->head->http_major > 0) {
            sl = (size_t)snprintf(tb, sizeof(tb), "HTTP/%d.%d", r->head->http_major,
                                  r->head->http_minor);
            s = tb;
        }
        break;
    case V_REQUEST_ID:
        s = r->request_id;
        sl = s ? strlen(s) : 0;
        break;
    case V_HOST:
        s = r->host;
        sl = s ? strlen(s) : 0;
        break;
    case V_CACHE_STATUS:
        s = r->cache_status;
        sl = s ? strlen(s) : 0;
        break;
    case V_HTTP: {
        const pt_header *h = header(r, hname, hlen);
        if (h)
            s = h->value, sl = h->value_len;
        break;
    }
    default:
        break;
    }
    /* a header sent empty is "" (as the combined format always wrote) */
    if (!s || (sl == 0 && var != V_HTTP)) {
        puts_(w, json ? "null" : "-");
        return;
    }
    if (json)
        put(w, "\"", 1);
    put_esc(w, s, sl, json);
    if (json)
        put(w, "\"", 1);
}

size_t pt_alog_format(const pt_alog_fmt *f, const pt_alog_rec *r, char *out, size_t cap)
{
    if (cap < 2)
        return 0;
    wbuf w = {out, 0, cap - 2, false};
    if (f->json) {
        put(&w, "{", 1);
        for (size_t i = 0; i < PT_ARRAY_LEN(json_fields); i++) {
            put(&w, i ? ",\"" : "\"", i ? 2 : 1);
            puts_(&w, json_fields[i].key);
            put(&w, "\":", 2);
            const char *h = json_fields[i].header;
            put_var(&w, r, json_fields[i].var, h, h ? strlen(h) : 0, true);
        }
        if (w.full) {
            /* a line cut short would not parse: say so in one that does */
            w.full = false;
            w.len = 0;
            puts_(&w, "{\"error\":\"line too long\",\"status\":");
            put_u64(&w, (uint64_t)PT_MAX(r->status, 0));
        }
        put(&w, "}", 1);
    } else {
        for (size_t i = 0; i < f->n; i++) {
            const pt_alog_item *it = &f->items[i];
            if (it->var < 0)
                put(&w, it->text, it->len);
            else
                put_var(&w, r, it->var, it->text, it->len, false);
        }
    }
    out[w.len++] = '\n';
    out[w.len] = '\0';
    return w.len;
}

/* ---- request ids -------------------------------------------------------- */

bool pt_alog_request_id_ok(const char *v, size_t len)
{
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._:+/=-", ch)))
            return false;
    }
    return true;
}

void pt_alog_request_id(const pt_head *h, bool from_client, char *out)
{
    static uint64_t prefix, counter;
    static pid_t owner;
    if (from_client && h) {
        for (size_t i = 0; i < h->nheaders; i++) {
            const pt_header *x = &h->headers[i];
            if (x->name_len == 12 && strncasecmp(x->name, "X-Request-ID", 12) == 0 &&
                pt_alog_request_id_ok(x->value, x->value_len)) {
                memcpy(out, x->value, x->value_len);
                out[x->value_len] = '\0';
                return;
            }
        }
    }
    /* a random prefix per process (made again after a fork), then a count:
     * unique without a system call per request */
    if (owner != getpid()) {
        owner = getpid();
        if (getrandom(&prefix, sizeof(prefix), GRND_NONBLOCK) != (ssize_t)sizeof(prefix))
            prefix = pt_now_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)owner;
        counter = 0;
    }
    snprintf(out, 129, "%016llx%016llx", (unsigned long long)prefix, (unsigned long long)++counter);
}
