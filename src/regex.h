/* regex.h: PCRE2 patterns for regex locations and rewrites: compiled once
 * when the configuration loads (JIT where the platform has it), matched
 * against the decoded, normalised path with limits, so that no pattern can
 * become a CPU sink. */
#ifndef PT_REGEX_H
#define PT_REGEX_H

#include "first.h"
#include <stdbool.h>
#include <stddef.h>

/* longer patterns are refused at load time (portico -t) */
#define PT_REGEX_MAX_LEN 1000
/* pcre2_set_match_limit and pcre2_set_depth_limit for every match, unless
 * regex_match_limit / regex_depth_limit say otherwise: a match that needs
 * more is a non-match (with a throttled log line) */
#define PT_REGEX_MATCH_LIMIT 100000
#define PT_REGEX_DEPTH_LIMIT 5000
/* $0 .. $9, and named groups up to the 31st */
#define PT_REGEX_NCAPS 32

typedef struct pt_regex pt_regex;

/* Compile pattern (caseless: like nginx's "~*"). NULL with "message at
 * offset N" in err when PCRE2 refuses it or it is too long. */
pt_regex *pt_regex_compile(const char *pattern, bool caseless, char *err, size_t errlen);
void pt_regex_free(pt_regex *rx);

/* Match s (len bytes). 1: a match, ov[2i], ov[2i+1] = start and end of
 * capture i (i < ncaps <= PT_REGEX_NCAPS, both -1 when unset); 0: no match,
 * also when the match limit was hit (logged at most once a second, with
 * what). ov may be NULL. */
int pt_regex_match(const pt_regex *rx, const char *s, size_t len, long *ov, int ncaps);

/* The number of the named group (name, nlen bytes), -1 when rx has none so
 * named; pt_regex_ngroups: its capture count. */
int pt_regex_group(const pt_regex *rx, const char *name, size_t nlen);
int pt_regex_ngroups(const pt_regex *rx);
const char *pt_regex_pattern(const pt_regex *rx);
/* The limits of this process's matches from now on (a worker sets its
 * configuration's at start). */
void pt_regex_set_limits(uint32_t match_limit, uint32_t depth_limit);
/* Matches that hit the limit in this process (tests, metrics). */
unsigned long pt_regex_limit_hits(void);

#endif
