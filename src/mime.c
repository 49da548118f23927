#include "first.h"
#include "mime.h"

/* mime.c: owns the extension -> media type map: a sorted built-in table,
 * overridden by a mime.types file parsed into one buffer; both go into one
 * open-addressing hash table when loaded, so a request's lookup is one hash
 * and one compare (a binary search over Debian's 1,900 extensions took a
 * dozen strcmp calls, whose cost also moved with where the request's text
 * happened to sit in memory). */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PT_MIME_DEFAULT "application/octet-stream"
/* Longer extensions exist in no sane mime.types; they are simply unknown. */
#define PT_MIME_EXT_MAX 32
/* Debian's file is ~75 KiB; anything far bigger is not a mime.types. */
#define PT_MIME_FILE_MAX (4u << 20)

typedef struct pt_mime_ent {
    const char *ext; /* lower case */
    const char *type;
} pt_mime_ent;

/* Kept sorted by ext (strcmp order): looked up with bsearch. */
static const pt_mime_ent builtin[] = {
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"atom", "application/atom+xml"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"deb", "application/vnd.debian.binary-package"},
    {"diff", "text/x-diff"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"heic", "image/heic"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"ico", "image/vnd.microsoft.icon"},
    {"ics", "text/calendar"},
    {"iso", "application/x-iso9660-image"},
    {"jar", "application/java-archive"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"jxl", "image/jxl"},
    {"log", "text/plain"},
    {"m4a", "audio/mp4"},
    {"m4v", "video/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown"},
    {"mjs", "text/javascript"},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"patch", "text/x-diff"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"ps", "application/postscript"},
    {"rss", "application/rss+xml"},
    {"rtf", "application/rtf"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tgz", "application/gzip"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"toml", "application/toml"},
    {"tsv", "text/tab-separated-values"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

static char *file_buf; /* the loaded file, tokens NUL-terminated in place */

/* The map after pt_mime_load: the file's entries (the first mention of an
 * ext wins), then the built-in ones it does not name; NULL before (or if
 * it could not be allocated: the built-in table is searched). */
typedef struct mime_slot {
    const char *ext; /* NULL: an empty slot */
    const char *type;
    size_t len;
} mime_slot;
static mime_slot *slots;
static size_t slot_mask;

/* ASCII only: the C library's tolower/isalnum depend on the locale. */
static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool ascii_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const pt_mime_ent *)a)->ext, ((const pt_mime_ent *)b)->ext);
}

/* A media type lands in a response header verbatim, so accept only
 * token "/" token (RFC 9110 §8.3.1, §5.6.2). */
static bool type_ok(const char *t)
{
    static const char tchar_punct[] = "!#$%&'*+-.^_`|~";
    size_t slashes = 0, i;
    for (i = 0; t[i]; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '/') {
            if (i == 0 || t[i + 1] == '\0' || ++slashes > 1)
                return false;
        } else if (!ascii_alnum(c) && !strchr(tchar_punct, c)) {
            return false;
        }
    }
    return slashes == 1;
}

/* FNV-1a over the lower-cased ext */
static uint32_t ext_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Add ext unless it is there already (the earlier one wins). */
static void slot_put(const char *ext, const char *type)
{
    size_t len = strlen(ext), i = ext_hash(ext, len) & slot_mask;
    for (; slots[i].ext; i = (i + 1) & slot_mask)
        if (slots[i].len == len && memcmp(slots[i].ext, ext, len) == 0)
            return;
    slots[i] = (mime_slot){ext, type, len};
}

/* The table for the file's n entries and the built-in ones, at most half
 * full so probes stay short. */
static void build_slots(const pt_mime_ent *ents, size_t n)
{
    size_t need = 2 * (n + PT_ARRAY_LEN(builtin)), cap = 64;
    while (cap < need)
        cap *= 2;
    if (!(slots = calloc(cap, sizeof(*slots))))
        return;
    slot_mask = cap - 1;
    for (size_t i = 0; i < n; i++)
        slot_put(ents[i].ext, ents[i].type);
    for (size_t i = 0; i < PT_ARRAY_LEN(builtin); i++)
        slot_put(builtin[i].ext, builtin[i].type);
}

void pt_mime_free(void)
{
    free(slots);
    free(file_buf);
    slots = NULL;
    slot_mask = 0;
    file_buf = NULL;
}

static int read_all(int fd, char **out, size_t *outlen)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > PT_MIME_FILE_MAX) {
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return -1;
        }
        len += (size_t)r;
        /* a file that grows while we read is cut at its stat size */
        if (r == 0 || len == cap - 1)
            break;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

int pt_mime_load(const char *path)
{
    char *buf = NULL;
    size_t len, n = 0, cap = 0, i;
    pt_mime_ent *ents = NULL;

    pt_mime_free();
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        int e = errno;
        build_slots(NULL, 0);
        errno = e;
        return !path || e == ENOENT ? 0 : -1;
    }
    int rc = read_all(fd, &buf, &len);
    close(fd);
    if (rc < 0) {
        int e = errno;
        build_slots(NULL, 0);
        errno = e;
        return -1;
    }

    /* Lines are "type ext1 ext2 ..."; '#' starts a comment. Tokens are
     * NUL-terminated in place and entries point into buf. */
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        *eol = '\0';
        char *hash = strchr(p, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        const char *type = strtok_r(p, " \t\r\f\v", &save);
        if (type && type_ok(type)) {
            char *ext;
            while ((ext = strtok_r(NULL, " \t\r\f\v", &save))) {
                size_t el = strlen(ext);
                if (el >= PT_MIME_EXT_MAX)
                    continue;
                for (i = 0; i < el; i++)
                    ext[i] = ascii_lower(ext[i]);
                if (n == cap) {
                    size_t ncap = cap ? cap * 2 : 1024;
                    pt_mime_ent *ne = realloc(ents, ncap * sizeof(*ents));
                    if (!ne)
                        goto fail;
                    ents = ne;
                    cap = ncap;
                }
                ents[n].ext = ext;
                ents[n].type = type;
                n++;
            }
        }
        p = eol + 1;
    }

    /* in file order: the first mention of an ext wins */
    build_slots(ents, n);
    free(ents);
    file_buf = buf;
    return 0;
fail:
    free(ents);
    free(buf);
    build_slots(NULL, 0);
    errno = ENOMEM;
    return -1;
}

static const char *lookup(const pt_mime_ent *tab, size_t n, const char *ext)
{
    pt_mime_ent key = {ext, NULL};
    const pt_mime_ent *e = bsearch(&key, tab, n, sizeof(*tab), ent_cmp);
    return e ? e->type : NULL;
}

const char *pt_mime_type(const char *name, size_t len)
{
    size_t base = len, dot = len, i;
    while (base > 0 && name[base - 1] != '/')
        base--;
    for (i = len; i > base; i--) {
        if (name[i - 1] == '.') {
            dot = i - 1;
            break;
        }
    }
    /* No dot, a trailing dot, or only leading dots (".bashrc", "..x"):
     * no extension. */
    if (dot == len || dot + 1 == len)
        return PT_MIME_DEFAULT;
    for (i = base; i < dot && name[i] == '.'; i++)
        ;
    if (i == dot)
        return PT_MIME_DEFAULT;

    size_t el = len - dot - 1;
    char ext[PT_MIME_EXT_MAX];
    if (el >= sizeof(ext))
        return PT_MIME_DEFAULT;
    uint32_t h = 2166136261u; /* ext_hash's, as the letters are lowered */
    for (i = 0; i < el; i++) {
        char c = name[dot + 1 + i];
        if (c == '\0')
            return PT_MIME_DEFAULT;
        ext[i] = ascii_lower(c);
        h = (h ^ (unsigned char)ext[i]) * 16777619u;
    }
    ext[el] = '\0';

    if (!slots) {
        const char *t = lookup(builtin, PT_ARRAY_LEN(builtin), ext);
        return t ? t : PT_MIME_DEFAULT;
    }
    for (i = h & slot_mask; slots[i].ext; i = (i + 1) & slot_mask)
        if (slots[i].len == el && memcmp(slots[i].ext, ext, el) == 0)
            return slots[i].type;
    return PT_MIME_DEFAULT;
}

/* Compare the type part only, so "text/html; charset=x" also qualifies. */
static bool type_is(const char *type, size_t tl, const char *lit)
{
    return tl == strlen(lit) && strncasecmp(type, lit, tl) == 0;
}

bool pt_mime_is_text(const char *type)
{
    if (!type)
        return false;
    size_t tl = strcspn(type, "; \t");
    if (tl > 5 && strncasecmp(type, "text/", 5) == 0)
        return true;
    return type_is(type, tl, "application/javascript") || type_is(type, tl, "application/json") ||
           type_is(type, tl, "image/svg+xml") || type_is(type, tl, "application/xml");
}
