/* regex.c: PCRE2 behind a small interface (regex.h). Patterns compile once,
 * at configuration load, with JIT when it is available; every match runs
 * under a match and depth limit from one match context per process, so a
 * pathological pattern ("(a+)+$") against a long path costs a bounded
 * amount of work and answers "no match". Workers are single-threaded: the
 * match context and match data are per process, made on first use. */
#include "first.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"
#include "log.h"
#include "util.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pt_regex {
    pcre2_code *code;
    char *pattern;
    int ngroups;
    bool jit; /* JIT code exists: pcre2_jit_match, without pcre2_match's checks */
    /* literals every match starts or ends with ("^/app/", "\\.php$"), found
     * at load time: a path without them is no match without calling PCRE2,
     * which is most of the cost of fifty locations */
    char pre[32], suf[32];
    size_t npre, nsuf;
    bool fold; /* compare them ignoring ASCII case */
};

static pcre2_match_context *mctx;
static uint32_t match_limit = PT_REGEX_MATCH_LIMIT, depth_limit = PT_REGEX_DEPTH_LIMIT;
static pcre2_match_data *mdata;
static unsigned long limit_hits;
static uint64_t limit_logged_ms;
static unsigned long limit_unlogged;

static bool is_meta(char ch)
{
    return ch && strchr("\\^$.[]|()?*+{}", ch) != NULL;
}

static bool is_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* Can the literals of p be trusted? Not with a top-level alternative (each
 * branch anchors on its own), option settings other than a leading "(?i)"
 * ((?x) ignores spaces, (?m) moves ^ and $), verbs or \Q..\E quoting. */
static bool plain_enough(const char *p)
{
    int depth = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '\\') {
            if (q[1] == 'Q' || q[1] == 'E')
                return false;
            if (q[1])
                q++;
        } else if (*q == '[') {
            /* a class: up to its closing ']' ("[]a]" and "[^]a]" hold one) */
            q++;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q += *q == '\\' && q[1] ? 2 : 1;
            if (!*q)
                return false;
        } else if (*q == '(') {
            bool option = q[1] == '?' && (is_alnum(q[2]) || q[2] == '-' || q[2] == '^');
            if ((option && !(q == p && strncmp(q, "(?i)", 4) == 0)) || q[1] == '*')
                return false; /* also (*CR) and other verbs: they move '$' */
            depth++;
        } else if (*q == ')') {
            depth--;
        } else if (*q == '|' && depth == 0) {
            return false;
        }
    }
    return true;
}

/* The literal run after a leading '^' into out (cap bytes): a literal
 * followed by '?', '*' or '{' may be absent, so it ends the run unused. */
static size_t literal_prefix(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    if (*p++ != '^')
        return 0;
    while (*p && n < cap) {
        char ch;
        const char *next;
        if (p[0] == '\\' && p[1] && !is_alnum(p[1])) {
            ch = p[1];
            next = p + 2;
        } else if (!is_meta(p[0])) {
            ch = p[0];
            next = p + 1;
        } else {
            break;
        }
        if (*next == '?' || *next == '*' || *next == '{')
            break;
        out[n++] = ch;
        if (*next == '+')
            break;
        p = next;
    }
    return n;
}

/* The literal run before a final '$' (not "\\$"), read backwards, into out. */
static size_t literal_suffix(const char *p, char *out, size_t cap)
{
    size_t len = strlen(p), n = 0;
    char tmp[32];
    if (len < 2 || p[len - 1] != '$')
        return 0;
    size_t bs = 0;
    for (size_t k = len - 1; k > 0 && p[k - 1] == '\\'; k--)
        bs++;
    if (bs % 2)
        return 0;       /* an escaped '$' */
    size_t k = len - 1; /* one past the atom being read */
    while (k > 0 && n < cap && n < sizeof(tmp)) {
        char ch = p[k - 1];
        size_t esc = 0;
        for (size_t j = k - 1; j > 0 && p[j - 1] == '\\'; j--)
            esc++;
        if (esc % 2) {
            if (is_alnum(ch))
                break; /* \d, \w, \x41: not one literal */
            tmp[n++] = ch;
            k -= 2;
        } else if (!is_meta(ch)) {
            tmp[n++] = ch;
            k--;
        } else {
            break;
        }
    }
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static bool same(const char *a, const char *b, size_t n, bool fold)
{
    if (!fold)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

pt_regex *pt_regex_compile(const char *pattern, bool caseless, char *err, size_t errlen)
{
    size_t len = strlen(pattern);
    if (len > PT_REGEX_MAX_LEN) {
        snprintf(err, errlen, "regex is %zu characters long, at most %d are allowed", len,
                 PT_REGEX_MAX_LEN);
        return NULL;
    }
    int ec;
    PCRE2_SIZE off;
    /* bytes, not UTF-8: a path may hold any octet after percent-decoding */
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, len, caseless ? PCRE2_CASELESS : 0, &ec, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "regex '%s': %s at offset %zu", pattern, (const char *)msg,
                 (size_t)off);
        return NULL;
    }
    /* no JIT (an architecture without it, or W^X policies): the
     * interpreter matches the same, under the same limits */
    bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    pt_regex *rx = calloc(1, sizeof(*rx));
    if (!rx || !(rx->pattern = strdup(pattern))) {
        free(rx);
        pcre2_code_free(code);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uint32_t n = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &n);
    rx->code = code;
    rx->ngroups = (int)n;
    rx->jit = jit;
    if (plain_enough(pattern)) {
        bool lead_i = strncmp(pattern, "(?i)", 4) == 0;
        const char *body = lead_i ? pattern + 4 : pattern;
        rx->fold = caseless || lead_i;
        rx->npre = literal_prefix(body, rx->pre, sizeof(rx->pre));
        rx->nsuf = literal_suffix(body, rx->suf, sizeof(rx->suf));
    }
    return rx;
}

void pt_regex_free(pt_regex *rx)
{
    if (!rx)
        return;
    pcre2_code_free(rx->code);
    free(rx->pattern);
    free(rx);
}

static bool ensure_ctx(void)
{
    if (mdata)
        return true;
    if (!mctx && !(mctx = pcre2_match_context_create(NULL)))
        return false;
    pcre2_set_match_limit(mctx, match_limit);
    pcre2_set_depth_limit(mctx, depth_limit);
    /* more pairs than $0..$9: named groups past the ninth still match */
    mdata = pcre2_match_data_create(32, NULL);
    return mdata != NULL;
}

void pt_regex_set_limits(uint32_t match, uint32_t depth)
{
    match_limit = match ? match : PT_REGEX_MATCH_LIMIT; /* 0: a config made by hand */
    depth_limit = depth ? depth : PT_REGEX_DEPTH_LIMIT;
    if (mctx) {
        pcre2_set_match_limit(mctx, match_limit);
        pcre2_set_depth_limit(mctx, depth_limit);
    }
}

static void limit_hit(const pt_regex *rx, int rc, size_t len)
{
    limit_hits++;
    uint64_t now = pt_now_ms();
    if (limit_logged_ms && now - limit_logged_ms < 1000) {
        limit_unlogged++;
        return;
    }
    char msg[128];
    pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof(msg));
    pt_log_warn("regex '%s' gave up on a path of %zu bytes (%s): treated as no match%s",
                rx->pattern, len, msg, limit_unlogged ? ", and more since the last line" : "");
    limit_logged_ms = now;
    limit_unlogged = 0;
}

int pt_regex_match(const pt_regex *rx, const char *s, size_t len, long *ov, int ncaps)
{
    if (rx->npre && (len < rx->npre || !same(s, rx->pre, rx->npre, rx->fold)))
        return 0;
    /* '$' matches before a final newline too: PCRE2 decides that one */
    if (rx->nsuf && (len < rx->nsuf || (s[len - 1] != '\n' &&
                                        !same(s + len - rx->nsuf, rx->suf, rx->nsuf, rx->fold))))
        return 0;
    if (!ensure_ctx())
        return 0;
    int rc = rx->jit ? pcre2_jit_match(rx->code, (PCRE2_SPTR)s, len, 0, 0, mdata, mctx)
                     : pcre2_match(rx->code, (PCRE2_SPTR)s, len, 0, 0, mdata, mctx);
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        limit_hit(rx, rc, len);
        return 0;
    }
    if (rc < 0)
        return 0;
    if (ov) {
        const PCRE2_SIZE *v = pcre2_get_ovector_pointer(mdata);
        uint32_t pairs = pcre2_get_ovector_count(mdata);
        for (int i = 0; i < ncaps; i++) {
            bool set = (uint32_t)i < pairs && (i < rc || rc == 0) && v[2 * i] != PCRE2_UNSET;
            ov[2 * i] = set ? (long)v[2 * i] : -1;
            ov[2 * i + 1] = set ? (long)v[2 * i + 1] : -1;
        }
    }
    return 1;
}

int pt_regex_group(const pt_regex *rx, const char *name, size_t nlen)
{
    char buf[64];
    if (nlen == 0 || nlen >= sizeof(buf))
        return -1;
    memcpy(buf, name, nlen);
    buf[nlen] = '\0';
    int n = pcre2_substring_number_from_name(rx->code, (PCRE2_SPTR)buf);
    return n > 0 ? n : -1;
}

int pt_regex_ngroups(const pt_regex *rx)
{
    return rx->ngroups;
}

const char *pt_regex_pattern(const pt_regex *rx)
{
    return rx->pattern;
}

unsigned long pt_regex_limit_hits(void)
{
    return limit_hits;
}
