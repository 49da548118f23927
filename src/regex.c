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
};

static pcre2_match_context *mctx;
static pcre2_match_data *mdata;
static unsigned long limit_hits;
static uint64_t limit_logged_ms;
static unsigned long limit_unlogged;

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
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
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
    pcre2_set_match_limit(mctx, PT_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, PT_REGEX_DEPTH_LIMIT);
    /* more pairs than $0..$9: named groups past the ninth still match */
    mdata = pcre2_match_data_create(32, NULL);
    return mdata != NULL;
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
    if (!ensure_ctx())
        return 0;
    int rc = pcre2_match(rx->code, (PCRE2_SPTR)s, len, 0, 0, mdata, mctx);
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
