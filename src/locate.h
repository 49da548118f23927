/* locate.h: which location of a vhost takes a request, in the order nginx
 * users expect (portico.conf(5), LOCATION PRECEDENCE). */
#ifndef PT_LOCATE_H
#define PT_LOCATE_H

#include "first.h"
#include "conf.h"

/* The location for a normalised path (len bytes):
 *   1. an exact location;
 *   2. the longest matching prefix, when it has stop = true;
 *   3. regex and extension locations in configuration order, the first that
 *      matches (an extension location matches when it is the longest
 *      extension of the last segment, or, when no extension location
 *      matches the last segment, the first one ending an earlier segment:
 *      "/index.php/extra" with PATH_INFO);
 *   4. the longest matching prefix.
 * NULL when none matches (a vhost always has "/"). */
const pt_location *pt_locate(const pt_vhost *v, const char *path, size_t len);

#endif
