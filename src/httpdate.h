/* httpdate.h: HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, all three
 * formats in, and a once-per-second cache of the current Date header. */
#ifndef PT_HTTPDATE_H
#define PT_HTTPDATE_H

#include "first.h"
#include <time.h>

#define PT_HTTPDATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Writes exactly 29 bytes + NUL into out[30]. */
void pt_httpdate_format(time_t t, char out[PT_HTTPDATE_LEN + 1]);
/* Parses IMF-fixdate, RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
 * ("Sun Nov  6 08:49:37 1994"). Returns 0 or -1. */
int pt_httpdate_parse(const char *s, size_t len, time_t *out);
/* pt_httpdate_parse with an explicit "now", which anchors RFC 850's
 * two-digit years (RFC 9110 §5.6.7: more than 50 years ahead means the
 * previous century). For tests. */
int pt_httpdate_parse_at(const char *s, size_t len, time_t now, time_t *out);
/* Current time as IMF-fixdate, recomputed at most once per second. */
const char *pt_httpdate_now(void);

#endif
