#include "first.h"
#include "mime.h"
#include "tap.h"

/* test_mime.c: extension lookup, mime.types overrides, text detection. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *type_of(const char *name)
{
    return pt_mime_type(name, strlen(name));
}

static bool is(const char *got, const char *want)
{
    return got && strcmp(got, want) == 0;
}

static void test_builtin(void)
{
    static const struct {
        const char *ext, *type;
    } want[] = {
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
    size_t bad = 0;
    char name[64];
    for (size_t i = 0; i < PT_ARRAY_LEN(want); i++) {
        snprintf(name, sizeof(name), "file.%s", want[i].ext);
        if (!is(type_of(name), want[i].type)) {
            bad++;
            printf("# .%s -> %s, want %s\n", want[i].ext, type_of(name), want[i].type);
        }
    }
    ok(bad == 0, "built-in table finds all %zu extensions (it is sorted for bsearch)",
       PT_ARRAY_LEN(want));
    ok(PT_ARRAY_LEN(want) >= 60, "built-in table has at least 60 types");

    ok(is(type_of("index.html"), "text/html"), "index.html is text/html");
    ok(is(type_of("INDEX.HTML"), "text/html"), "extension match is case-insensitive (HTML)");
    ok(is(type_of("Photo.JpG"), "image/jpeg"), "extension match is case-insensitive (JpG)");
    ok(is(type_of("archive.tar.gz"), "application/gzip"), "only the last extension counts");
    ok(is(type_of("a/b/style.css"), "text/css"), "a path's last component is used");
    ok(is(type_of("file.unknownext"), "application/octet-stream"), "unknown extension");
    ok(is(type_of("README"), "application/octet-stream"), "no extension");
    ok(is(type_of("file."), "application/octet-stream"), "name ending in '.'");
    ok(is(type_of("."), "application/octet-stream"), "name '.'");
    ok(is(type_of(""), "application/octet-stream"), "empty name");
    ok(is(type_of(".bashrc"), "application/octet-stream"), "dot-file has no extension");
    ok(is(type_of(".html"), "application/octet-stream"), "'.html' is a dot-file, not html");
    ok(is(type_of("..html"), "application/octet-stream"), "only leading dots: no extension");
    ok(is(type_of("dir/.html"), "application/octet-stream"), "dot-file inside a directory");
    ok(is(type_of(".config.json"), "application/json"), "dot-file with an extension");
    ok(is(type_of("site.d/README"), "application/octet-stream"),
       "a dot in a directory name is not an extension");
    ok(is(type_of("a/"), "application/octet-stream"), "trailing slash: no name");
    ok(is(pt_mime_type("x.html.png", 6), "text/html"), "len bounds the name");
    ok(is(pt_mime_type("x.ht\0ml", 7), "application/octet-stream"), "NUL in extension: unknown");
    ok(is(type_of("x.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
          "application/octet-stream"),
       "overlong extension: unknown");
    ok(is(type_of("x.JS"), "text/javascript"), ".JS upper case");
}

static char tmpdir[] = "/tmp/pt-test-mime-XXXXXX";

static char *write_tmp(const char *name, const char *content)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(content, f);
    fclose(f);
    return path;
}

static void test_load(void)
{
    ok(pt_mime_load(NULL) == 0, "load(NULL) keeps the built-in table");
    ok(is(type_of("a.png"), "image/png"), "built-in after load(NULL)");
    ok(pt_mime_load("/nonexistent/mime.types") == 0, "missing file is not an error");
    ok(is(type_of("a.css"), "text/css"), "built-in after a missing file");
    errno = 0;
    ok(pt_mime_load(tmpdir) == -1, "a directory is not a readable mime.types");

    const char *p = write_tmp("mime.types", "# comment line\n"
                                            "text/x-custom\thtml htm  # override, comment after\n"
                                            "application/x-foo foo FOO2\n"
                                            "application/x-first dup\n"
                                            "application/x-second dup\n"
                                            "bad<type bad\n"
                                            "notype nt\n"
                                            "  image/x-indented   ind \r\n"
                                            "application/x-noexts\n"
                                            "\n"
                                            "#image/x-commented cmt\n"
                                            "text/x-last last");
    ok(p && pt_mime_load(p) == 0, "load a temp mime.types");
    ok(is(type_of("a.html"), "text/x-custom"), "file entry overrides built-in .html");
    ok(is(type_of("a.HTM"), "text/x-custom"), "override applies case-insensitively");
    ok(is(type_of("a.foo"), "application/x-foo"), "new extension from file");
    ok(is(type_of("a.foo2"), "application/x-foo"), "upper-case extension in file is folded");
    ok(is(type_of("a.dup"), "application/x-first"), "first mention of an extension wins");
    ok(is(type_of("a.bad"), "application/octet-stream"), "type with invalid characters skipped");
    ok(is(type_of("a.nt"), "application/octet-stream"), "type without '/' skipped");
    ok(is(type_of("a.ind"), "image/x-indented"), "indentation and CRLF tolerated");
    ok(is(type_of("a.cmt"), "application/octet-stream"), "commented-out line ignored");
    ok(is(type_of("a.last"), "text/x-last"), "last line without newline");
    ok(is(type_of("a.wasm"), "application/wasm"), "built-in still used for other extensions");
    ok(is(type_of("a.x-noexts"), "application/octet-stream"), "type alone adds nothing");

    p = write_tmp("mime2.types", "text/x-other foo\n");
    ok(p && pt_mime_load(p) == 0, "reload another file");
    ok(is(type_of("a.foo"), "text/x-other"), "reload replaces previous entries");
    ok(is(type_of("a.html"), "text/html"), "reload drops previous overrides");

    p = write_tmp("empty.types", "");
    ok(p && pt_mime_load(p) == 0, "empty file loads");
    ok(is(type_of("a.foo"), "application/octet-stream"), "empty file clears overrides");

    pt_mime_free();
    ok(is(type_of("a.gif"), "image/gif"), "after free the built-in table works");

    if (access("/etc/mime.types", R_OK) == 0) {
        ok(pt_mime_load("/etc/mime.types") == 0, "load the system /etc/mime.types");
        ok(is(type_of("a.html"), "text/html"), "system file: .html");
        ok(is(type_of("a.png"), "image/png"), "system file: .png");
        ok(is(type_of("a.PDF"), "application/pdf"), "system file: .PDF");
        pt_mime_free();
    }
}

static void test_is_text(void)
{
    ok(pt_mime_is_text("text/plain"), "text/plain is text");
    ok(pt_mime_is_text("text/html"), "text/html is text");
    ok(pt_mime_is_text("TEXT/CSS"), "type comparison is case-insensitive");
    ok(pt_mime_is_text("application/javascript"), "application/javascript is text");
    ok(pt_mime_is_text("application/json"), "application/json is text");
    ok(pt_mime_is_text("image/svg+xml"), "image/svg+xml is text");
    ok(pt_mime_is_text("application/xml"), "application/xml is text");
    ok(pt_mime_is_text("application/json; x=y"), "parameters are ignored");
    ok(!pt_mime_is_text("image/png"), "image/png is not text");
    ok(!pt_mime_is_text("application/octet-stream"), "octet-stream is not text");
    ok(!pt_mime_is_text("application/jsonx"), "prefix of a text type is not enough");
    ok(!pt_mime_is_text("application/js"), "truncated type is not text");
    ok(!pt_mime_is_text("text/"), "'text/' without subtype is not text");
    ok(!pt_mime_is_text("textual/plain"), "'textual/' is not 'text/'");
    ok(!pt_mime_is_text(""), "empty type is not text");
    ok(!pt_mime_is_text(NULL), "NULL is not text");
    ok(pt_mime_is_text(type_of("a.js")), "built-in .js type is text");
    ok(!pt_mime_is_text(type_of("a.woff2")), "built-in .woff2 type is not text");
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    test_builtin();
    test_load();
    test_is_text();
    pt_mime_free();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    return tap_done();
}
