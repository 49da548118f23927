/* acme_json.h: the JSON reader and base64url encoder of the ACME client.
 * Malformed input, a missing member and an element past the end are all
 * NULL/false: the caller treats them as "the server said nothing usable". */
#ifndef PT_ACME_JSON_H
#define PT_ACME_JSON_H

#include "first.h"

#include <stdbool.h>
#include <stddef.h>

#define PT_ACME_JSON_DEPTH 16

/* base64url without padding of in[0..n), malloc'ed (NULL: out of memory) */
char *pt_acme_b64url(const unsigned char *in, size_t n);
/* The value of member key of the object starting at p (whitespace
 * allowed) within [p, e), or NULL. p may be NULL. */
const char *pt_acme_json_get(const char *p, const char *e, const char *key);
/* Element i of the array at p, or NULL. Each call walks from the start:
 * to visit every element, take element 0 and then pt_acme_json_next. */
const char *pt_acme_json_elem(const char *p, const char *e, size_t i);
/* The element after the one at p (an element of an array), or NULL after
 * the last one or on malformed input: a walk over n elements is linear. */
const char *pt_acme_json_next(const char *p, const char *e);
/* Values stepped over so far (tests count the work of a walk). */
extern unsigned long pt_acme_json_skipped;
/* The string at p, unescaped, into out (ASCII escapes only); false when p
 * is not a well-formed string or it does not fit. */
bool pt_acme_json_str(const char *p, const char *e, char *out, size_t cap);

#endif
