/* test_htpasswd.c: passwords against hashes made by Apache's htpasswd
 * (apache2-utils), mkpasswd (whois) and openssl passwd in every format
 * portico supports, APR1 computed here, strict base64, and an htpasswd
 * file re-read when it changes. */
#include "first.h"
#include "htpasswd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

static int verify(const char *hash, const char *pw)
{
    return pt_htpasswd_verify(hash, pw, strlen(pw));
}

static void test_apr1_matches_openssl_and_htpasswd(void)
{
    char out[64];
    /* openssl passwd -apr1 -salt abcdefgh 'hello world' */
    pt_htpasswd_apr1("hello world", 11, "abcdefgh", 8, out);
    ok(strcmp(out, "$apr1$abcdefgh$CZx3qOBL3IJw7t4yUwt4J.") == 0, "openssl's vector: %s", out);
    /* htpasswd -nbm u pw */
    ok(verify("$apr1$NCuXDLR7$t8A7/thkS8aEh77CixrsB1", "pw") == 1, "htpasswd -m: right password");
    ok(verify("$apr1$NCuXDLR7$t8A7/thkS8aEh77CixrsB1", "pW") == 0, "htpasswd -m: wrong password");
    /* a password longer than 16 bytes takes the loop over the alternate sum twice */
    pt_htpasswd_apr1("a much longer password than sixteen", 35, "xy", 2, out);
    ok(strncmp(out, "$apr1$xy$", 9) == 0 && strlen(out) == 9 + 22, "short salt: %s", out);
}

static void test_every_format_from_the_tools(void)
{
    static const struct {
        const char *tool, *hash;
    } v[] = {
        {"htpasswd -B -C 4", "$2y$04$XyxrBJhEidiB9qTahg3HsO6K.Qz0Xq7lFphgVMneQQb2/vg8TjkZu"},
        {"htpasswd -s", "{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM="},
        {"htpasswd -2", "$5$/rYaZQjI4WEhnm0w$aeXsIr//o7rCOAUtvY6VjXgLnlWqPaJG7sg686j36M8"},
        {"htpasswd -5", "$6$UUEHIGqTHTmqfpJa$7Q.4xJOIRoX4eGnjpAWs2iCGxoiB2imhUbpVazcaGR/"
                        "iRWK0vVwI.xgrOZYz/kOtMsKc49Li.403Ay0s/u59O."},
        {"mkpasswd -m yescrypt",
         "$y$j9T$Sj1ykdeH72F7KpNLu3KSU1$w6H1MReagss49HN20AQL9LgpZ4ZQDxBipfDoSg47kl4"},
        {"htpasswd -d", "arsKNnylWEtLw"},
    };
    for (size_t i = 0; i < PT_ARRAY_LEN(v); i++) {
        int good = verify(v[i].hash, "pw"), bad = verify(v[i].hash, "pw ");
        /* DES crypt may be compiled out of libxcrypt: -1 is then honest */
        if (strcmp(v[i].tool, "htpasswd -d") == 0 && good == -1) {
            ok(bad == -1, "%s: not supported by this libcrypt, and said so", v[i].tool);
            continue;
        }
        ok(good == 1 && bad == 0, "%s: right 1 (%d), wrong 0 (%d)", v[i].tool, good, bad);
    }
}

static void test_nul_and_unknown_formats_never_match(void)
{
    ok(pt_htpasswd_verify("{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=", "pw\0x", 4) == 0,
       "a NUL in the password never matches");
    ok(verify("{SSHA}abc", "pw") == -1, "{SSHA}: not a format portico checks");
    ok(verify("plaintext", "plaintext") == -1, "plain text is refused, not compared");
    ok(verify("$apr1$NCuXDLR7$t8A7/thkS8aEh77CixrsB", "pw") == 0, "a cut APR1 hash never matches");
}

static void test_base64_is_strict(void)
{
    unsigned char out[64];
    ok(pt_base64_decode("dTpwdw==", 8, out, sizeof(out)) == 4 && memcmp(out, "u:pw", 4) == 0,
       "u:pw");
    ok(pt_base64_decode("dTpwdw", 6, out, sizeof(out)) < 0, "missing padding");
    ok(pt_base64_decode("dT=wdw==", 8, out, sizeof(out)) < 0, "padding in the middle");
    ok(pt_base64_decode("dTpw!w==", 8, out, sizeof(out)) < 0, "not the alphabet");
    ok(pt_base64_decode("dTpwdw==", 8, out, 3) < 0, "over the output cap");
    ok(pt_base64_decode("", 0, out, sizeof(out)) == 0, "empty");
}

static void test_cache_remembers_only_successes(void)
{
    const char *h = "$2y$04$XyxrBJhEidiB9qTahg3HsO6K.Qz0Xq7lFphgVMneQQb2/vg8TjkZu";
    ok(pt_htpasswd_check("u", 1, "pw", 2, h, 1000) == 1, "first check verifies");
    ok(pt_htpasswd_check("u", 1, "pw", 2, h, 2000) == 1, "second check (cached)");
    ok(pt_htpasswd_check("u", 1, "px", 2, h, 2000) == 0, "a wrong password is not cached as good");
    ok(pt_htpasswd_check("v", 1, "pw", 2, h, 2000) == 1, "another user name, same hash: verified");
    ok(pt_htpasswd_check("u", 1, "pw", 2, "{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=", 2000) == 1,
       "the stored hash is part of the key");
}

static void test_file_reread_when_changed(void)
{
    char path[] = "/tmp/pt_htpasswd_XXXXXX";
    int fd = mkstemp(path);
    ok(fd >= 0, "temp file");
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n\nalice:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\r\nbob:$apr1$x$y\nnocolon\n", f);
    fclose(f);
    const char *h;
    char err[200];
    ok(pt_htpasswd_lookup(path, "alice", 5, 10000, &h, err, sizeof(err)) == 0 && h &&
           strcmp(h, "{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=") == 0,
       "alice found, CR dropped");
    ok(pt_htpasswd_lookup(path, "bob", 3, 10000, &h, err, sizeof(err)) == 0 && h &&
           strcmp(h, "$apr1$x$y") == 0,
       "bob found");
    ok(pt_htpasswd_lookup(path, "nocolon", 7, 10000, &h, err, sizeof(err)) == 0 && !h,
       "a line without ':' is no user");
    ok(pt_htpasswd_lookup(path, "al", 2, 10000, &h, err, sizeof(err)) == 0 && !h,
       "no prefix match");
    f = fopen(path, "w");
    fputs("carol:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n", f);
    fclose(f);
    ok(pt_htpasswd_lookup(path, "carol", 5, 10500, &h, err, sizeof(err)) == 0 && !h,
       "within a second of the last look: not looked at again");
    ok(pt_htpasswd_lookup(path, "carol", 5, 11000, &h, err, sizeof(err)) == 0 && h,
       "a second later: re-read, carol found");
    ok(pt_htpasswd_lookup(path, "alice", 5, 11000, &h, err, sizeof(err)) == 0 && !h, "alice gone");
    unlink(path);
    ok(pt_htpasswd_lookup(path, "carol", 5, 12000, &h, err, sizeof(err)) < 0,
       "file gone: an error (fail closed): %s", err);
    ok(pt_htpasswd_lookup("/nonexistent/ht", "x", 1, 12000, &h, err, sizeof(err)) < 0,
       "never there: an error");
}

int main(void)
{
    test_apr1_matches_openssl_and_htpasswd();
    test_every_format_from_the_tools();
    test_nul_and_unknown_formats_never_match();
    test_base64_is_strict();
    test_cache_remembers_only_successes();
    test_file_reread_when_changed();
    return tap_done();
}
