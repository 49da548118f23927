/* mime.h: file extension -> media type. A built-in table, extended by a
 * mime.types file (Debian: /etc/mime.types) loaded once before the workers
 * fork. */
#ifndef PT_MIME_H
#define PT_MIME_H

#include "first.h"

/* Load path (may be NULL or missing: then only the built-in table). Entries
 * from the file override built-in ones. Returns 0, or -1 if the file exists
 * but cannot be read. Call once; not thread-safe. */
int pt_mime_load(const char *path);
/* Media type for a file name, matched by its last extension
 * (case-insensitive); "application/octet-stream" when unknown. Returns the
 * bare type; the caller adds a charset where pt_mime_is_text says so. */
const char *pt_mime_type(const char *name, size_t len);
/* true for text/..., application/javascript, application/json, image/svg+xml,
 * application/xml: types worth a charset parameter. */
bool pt_mime_is_text(const char *type);
void pt_mime_free(void);

#endif
