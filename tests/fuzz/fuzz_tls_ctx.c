/* fuzz_tls_ctx.c: the server context fuzz_tls and fuzz_tls_rec run
 * portico's TLS layer with, made the way portico makes it. */
#include "fuzz_tls_ctx.h"

#include "fuzz.h"
#include "tls.h"

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* A self-signed ECDSA P-256 certificate in two temporary PEM files, the
 * way an operator hands them over; removed once loaded. */
struct ssl_ctx_st *fz_tls_server_ctx(const char *tag, long serial)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char crt[512], key[512];
    snprintf(crt, sizeof(crt), "%s/%s-crt.XXXXXX", tmp, tag);
    snprintf(key, sizeof(key), "%s/%s-key.XXXXXX", tmp, tag);
    int cfd = mkstemp(crt), kfd = mkstemp(key);
    FZ_CHECK(cfd >= 0 && kfd >= 0);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    FZ_CHECK(k && x);
    FZ_CHECK(X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) && X509_set_pubkey(x, k) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)"localhost", -1, -1, 0) &&
             X509_set_issuer_name(x, X509_get_subject_name(x)) && X509_sign(x, k, EVP_sha256()));
    FILE *cf = fdopen(cfd, "w"), *kf = fdopen(kfd, "w");
    FZ_CHECK(cf && kf && PEM_write_X509(cf, x) && PEM_write_PrivateKey(kf, k, NULL, NULL, 0, 0, 0));
    fclose(cf);
    fclose(kf);
    X509_free(x);
    EVP_PKEY_free(k);

    char *crts[] = {crt}, *keys[] = {key};
    pt_tls_cfg t = {
        .certificate = crts,
        .key = keys,
        .ncert = 1,
        .min_version = PT_TLS_V12,
        .max_version = PT_TLS_V13,
        .verify_depth = 1,
        .ticket_rotate_ms = 3600 * 1000,
        .tickets = 1, /* tls.tickets' default: the configuration sets it */
    };
    char err[512] = "", warn[512] = "";
    if (pt_tls_ctx_load(&t, err, sizeof(err), warn, sizeof(warn)) < 0) {
        fprintf(stderr, "%s: %s\n", tag, err);
        FZ_CHECK(!"the TLS context loads");
    }
    unlink(crt);
    unlink(key);
    return t.ctx;
}
