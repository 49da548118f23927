/* tls.c: the TLS implementation of the socket layer (OpenSSL 3). The
 * master builds the SSL_CTX before the workers fork, so they inherit it
 * (and its session ticket keys: a client resumes on any worker); a reload
 * builds a new one for the new workers. */
#include "first.h"
#include "tls.h"
#include "conn.h"
#include "log.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Mozilla's "intermediate" TLS 1.2 list (server-side-tls, version 5.7) */
#define PT_TLS_CIPHERS                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define PT_TLS_GROUPS "X25519:P-256"
/* one TLS record's worth of file per write: what a stalled reader pins */
#define PT_TLS_FILE_CHUNK 16384u
#define PT_TLS_COALESCE 16384u

/* socket-layer flags private to TLS */
enum {
    TLS_STARTED = 1u << 8, /* the first byte was a handshake record */
    TLS_LOGGED = 1u << 9,  /* a failure of this client is logged already */
    TLS_UP = 1u << 10,     /* the handshake finished (OpenSSL forgets after an error) */
};

/* ALPN protocols we speak, in preference order (RFC 7301): h2 first where
 * http2 is on (RFC 9113 §3.2), as the client's order is only a hint */
static const unsigned char alpn_protos[] = "\x08http/1.1";
static const unsigned char alpn_protos_h2[] = "\x02h2\x08http/1.1";

static int ktls_probe(void);
static int ktls_errno;

/* Probed once per process (the master, before the workers fork). */
static bool ktls_available(void)
{
    static int known = -1;
#ifdef OPENSSL_NO_KTLS
    known = 0;
#endif
    if (known < 0) {
        known = ktls_probe() == 0;
        ktls_errno = known ? 0 : errno;
    }
    return known == 1;
}

static void ssl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "unknown error");
    ERR_clear_error();
}

/* ---- session tickets ----------------------------------------------------
 * The keys that encrypt tickets (RFC 5077 §4's recommended layout: a key
 * name, AES-256-CBC, HMAC-SHA256) are random, made by the master alone and
 * kept in a shared page that it maps before the first workers fork and
 * keeps across reloads: every worker of every generation sees the same
 * keys, so a client resumes on any worker and after a HUP. The master
 * makes a new key every tls.ticket_key_rotate and wipes the one before the
 * previous: tickets are issued with the current key, the previous one is
 * still accepted (and its tickets renewed), anything older is gone from
 * memory, so a key stolen later cannot open an old ticket (what a key
 * derived from one long-lived secret could not promise). The page is
 * never written to disk (locked, left out of core dumps); workers cannot
 * be ptraced by the programs they run (priv.c). */
#define PT_TICKET_RING 4 /* slots: the current key, the previous, spares */

typedef struct ticket_key {
    uint64_t gen; /* 0 while the master writes the slot (a seqlock) */
    unsigned char name[16], aes[32], mac[32];
} ticket_key;

static struct ticket_ring {
    uint64_t current; /* generation of the key new tickets use */
    ticket_key k[PT_TICKET_RING];
} * ring;

/* The key of generation gen, copied out, or false when it is not (or no
 * longer) there: the master may overwrite a slot while a worker reads. */
static bool ticket_key_get(uint64_t gen, ticket_key *out)
{
    ticket_key *k = &ring->k[gen % PT_TICKET_RING];
    if (gen == 0 || __atomic_load_n(&k->gen, __ATOMIC_ACQUIRE) != gen)
        return false;
    memcpy(out, k, sizeof(*out));
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&k->gen, __ATOMIC_RELAXED) != gen) {
        OPENSSL_cleanse(out, sizeof(*out));
        return false;
    }
    return true;
}

/* Master only: key generation gen into its slot, then published. */
static int ticket_key_make(uint64_t gen)
{
    ticket_key *k = &ring->k[gen % PT_TICKET_RING], fresh;
    if (RAND_priv_bytes((unsigned char *)&fresh, sizeof(fresh)) != 1)
        return -1;
    fresh.gen = gen;
    __atomic_store_n(&k->gen, 0, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    memcpy(k->name, fresh.name, sizeof(k->name));
    memcpy(k->aes, fresh.aes, sizeof(k->aes));
    memcpy(k->mac, fresh.mac, sizeof(k->mac));
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    __atomic_store_n(&k->gen, gen, __ATOMIC_RELEASE);
    __atomic_store_n(&ring->current, gen, __ATOMIC_RELEASE);
    return 0;
}

/* Master only: the shared page and the first key, once per process. */
static int ticket_ring_init(void)
{
    if (ring)
        return 0;
    void *p = mmap(NULL, sizeof(*ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    /* best effort: without CAP_IPC_LOCK a small RLIMIT_MEMLOCK may refuse */
    (void)mlock(p, sizeof(*ring));
    (void)madvise(p, sizeof(*ring), MADV_DONTDUMP);
    ring = p;
    if (ticket_key_make(1) < 0) {
        munmap(p, sizeof(*ring));
        ring = NULL;
        return -1;
    }
    return 0;
}

void pt_tls_tickets_rotate(void)
{
    if (!ring)
        return;
    uint64_t gen = ring->current + 1;
    if (ticket_key_make(gen) < 0) {
        char why[256];
        ssl_reason(why, sizeof(why));
        pt_log_error("TLS: cannot make a session ticket key (%s); the current one stays", why);
        return;
    }
    /* the key before the previous one is no longer accepted: wipe it */
    ticket_key *old = &ring->k[(gen - 2) % PT_TICKET_RING];
    if (gen > 2 && __atomic_load_n(&old->gen, __ATOMIC_RELAXED) == gen - 2) {
        __atomic_store_n(&old->gen, 0, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        OPENSSL_cleanse(old->name, sizeof(*old) - offsetof(ticket_key, name));
    }
    pt_log_debug("TLS: session ticket key %llu made, %llu still accepted", (unsigned long long)gen,
                 (unsigned long long)(gen - 1));
}

void pt_tls_tickets_readonly(void)
{
    if (ring)
        (void)mprotect(ring, sizeof(*ring), PROT_READ);
}

void pt_tls_tickets_forget(void)
{
    if (ring)
        (void)munmap(ring, sizeof(*ring));
    ring = NULL;
}

/* The tickets' cipher, fetched once per process: EVP_aes_256_cbc() is a
 * legacy handle that OpenSSL 3 looks up by name again at every
 * EVP_*Init_ex (a provider fetch: thousands of instructions, twice per
 * resumed handshake). */
static const EVP_CIPHER *ticket_cipher(void)
{
    static EVP_CIPHER *aes;
    if (!aes && !(aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL))) {
        ERR_clear_error();
        return EVP_aes_256_cbc();
    }
    return aes;
}

/* Random bytes for what OpenSSL lets us choose, a new ticket's IV (RFC
 * 5077 §4: random) and a new session's ID, from a block of the DRBG's
 * output drawn once per 4 KiB (some 80 full handshakes): each RAND_bytes
 * call costs thousands of instructions and, for OpenSSL's fork check, a
 * getpid(2). Used bytes are wiped; a forked child starts with an empty
 * block (rnd_forget), so no two processes hand out the same bytes. */
static unsigned char rnd_pool[4096];
static size_t rnd_left;

static void rnd_forget(void)
{
    OPENSSL_cleanse(rnd_pool, sizeof(rnd_pool));
    rnd_left = 0;
}

static int rnd_bytes(unsigned char *out, size_t n)
{
    if (n > sizeof(rnd_pool))
        return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
    if (rnd_left < n) {
        if (RAND_bytes(rnd_pool, sizeof(rnd_pool)) != 1)
            return -1;
        rnd_left = sizeof(rnd_pool);
    }
    rnd_left -= n;
    memcpy(out, rnd_pool + rnd_left, n);
    OPENSSL_cleanse(rnd_pool + rnd_left, n);
    return 0;
}

static int ticket_iv(unsigned char *iv)
{
    return rnd_bytes(iv, EVP_MAX_IV_LENGTH);
}

/* A new session's ID (RFC 5246 §7.4.1.3; in TLS 1.3 only the key of a
 * session cache we do not use): as random as OpenSSL's own, which draws
 * it with a RAND_bytes call of its own per handshake. 256 random bits
 * need no check for a collision beyond the one OpenSSL makes. */
static int on_session_id(SSL *ssl, unsigned char *id, unsigned int *len)
{
    (void)ssl;
    return rnd_bytes(id, *len) == 0;
}

static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    if (!ring)
        return 0; /* a process without the keys issues no ticket and takes none */
    uint64_t now = __atomic_load_n(&ring->current, __ATOMIC_ACQUIRE);
    ticket_key k;
    int rc = 1;
    if (enc) {
        if (!ticket_key_get(now, &k))
            return 0; /* the master is rotating right now: no ticket this time */
        memcpy(name, k.name, 16);
        if (ticket_iv(iv) < 0) {
            OPENSSL_cleanse(&k, sizeof(k));
            return -1;
        }
    } else {
        if (ticket_key_get(now, &k) && CRYPTO_memcmp(k.name, name, 16) == 0)
            /* TLS 1.3 clients use a ticket once (RFC 8446 §C.4): without a
             * new one after each resumption every other handshake is full */
            rc = SSL_version(ssl) == TLS1_3_VERSION ? 2 : 1;
        else if (ticket_key_get(now - 1, &k) && CRYPTO_memcmp(k.name, name, 16) == 0)
            rc = 2; /* accepted, and a fresh ticket issued with the current key */
        else {
            OPENSSL_cleanse(&k, sizeof(k));
            return 0; /* unknown or aged out: a full handshake */
        }
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.mac, sizeof(k.mac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    const EVP_CIPHER *aes = ticket_cipher();
    int ok = (enc ? EVP_EncryptInit_ex(cctx, aes, NULL, k.aes, iv)
                  : EVP_DecryptInit_ex(cctx, aes, NULL, k.aes, iv)) == 1 &&
             EVP_MAC_CTX_set_params(hctx, params) == 1;
    OPENSSL_cleanse(&k, sizeof(k));
    return ok ? rc : -1;
}

/* tls-alpn-01 (RFC 8737): <acme_state_dir>/challenges, "" when no vhost
 * has acme. A client offering only acme-tls/1 for a name with a challenge
 * certificate there (acme.c writes it) gets that certificate and that
 * protocol; the handshake is all it wants. */
static char acme_alpn_dir[4096];

static bool acme_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                      const unsigned char *in, unsigned inlen)
{
    static const unsigned char proto[] = "\x0a"
                                         "acme-tls/1";
    const unsigned char *p = in, *end = in + inlen, *hit = NULL;
    for (; p < end && p + 1 + *p <= end; p += 1 + *p)
        if (*p == 10 && memcmp(p, proto, 11) == 0)
            hit = p;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char path[sizeof(acme_alpn_dir) + 300];
    if (!hit || !name || strlen(name) > 253 ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(name) || name[0] == '.')
        return false;
    snprintf(path, sizeof(path), "%s/alpn-%s.pem", acme_alpn_dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    EVP_PKEY *k = x ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    fclose(f);
    bool ok = k && SSL_use_certificate(ssl, x) == 1 && SSL_use_PrivateKey(ssl, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (ok) {
        *out = hit + 1;
        *outlen = 10;
    }
    return ok;
}

void pt_tls_acme_dir(const char *state_dir)
{
    if (state_dir)
        snprintf(acme_alpn_dir, sizeof(acme_alpn_dir), "%s/challenges", state_dir);
    else
        acme_alpn_dir[0] = '\0';
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    if (acme_alpn_dir[0] && acme_alpn(ssl, out, outlen, in, inlen))
        return SSL_TLSEXT_ERR_OK;
    unsigned char *o = NULL;
    /* arg: the context's http2 (the vhost's after SNI switched contexts) */
    bool h2 = arg != NULL;
    if (SSL_select_next_proto(&o, outlen, h2 ? alpn_protos_h2 : alpn_protos,
                              h2 ? sizeof(alpn_protos_h2) - 1 : sizeof(alpn_protos) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* go on without ALPN, as nginx does */
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static void expiry_warning(X509 *x, const char *path, char *warn, size_t warnlen)
{
    const ASN1_TIME *na = X509_get0_notAfter(x);
    time_t soon = time(NULL) + 30 * 86400;
    struct tm tm;
    char when[40] = "?";
    if (ASN1_TIME_to_tm(na, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (X509_cmp_time(na, NULL) < 0)
        snprintf(warn, warnlen, "certificate %s expired on %s", path, when);
    else if (X509_cmp_time(na, &soon) < 0)
        snprintf(warn, warnlen, "certificate %s expires within 30 days, on %s", path, when);
}

/* One certificate chain and its key. The key is read apart from the
 * context, so that a key for another certificate gets a message saying so
 * (X509_check_private_key). */
static int load_pair(SSL_CTX *ctx, const char *crt, const char *key, char *err, size_t errlen)
{
    char why[256];
    if (!SSL_CTX_use_certificate_chain_file(ctx, crt)) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.certificate %s: cannot load (PEM, full chain): %s", crt, why);
        return -1;
    }
    EVP_PKEY *pk = NULL;
    BIO *kb = BIO_new_file(key, "r");
    if (kb)
        pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    BIO_free(kb);
    if (!pk) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.key %s: cannot load a PEM private key: %s", key, why);
        return -1;
    }
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (!cert || X509_check_private_key(cert, pk) != 1) {
        ERR_clear_error();
        EVP_PKEY_free(pk);
        snprintf(err, errlen, "tls.key %s does not match the certificate %s", key, crt);
        return -1;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pk);
    if (!ok) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.key %s does not match the certificate %s: %s", key, crt, why);
        return -1;
    }
    return 0;
}

/* ---- OCSP stapling (RFC 6066 §8) -----------------------------------------
 * A response per certificate, from a DER file that something else (a
 * cron job running openssl ocsp, an ACME client) keeps fresh. The master
 * reads it at load (so -t and a reload check it); each worker then looks
 * at the file's identity at most every PT_OCSP_RECHECK seconds, from the
 * handshake that needs it, and reads it again when it changed: a stat(2)
 * costs nothing next to a handshake, and the responder's update shows
 * up without a reload. A file that turns bad keeps the last good one. A
 * response is only good for the certificate it names (its CertID, RFC
 * 6960 §4.1.1) and until its nextUpdate: a client that gets one for
 * another certificate or an expired one may fail the handshake (Firefox
 * does), so such a response is never stapled. Each change is logged once,
 * never per handshake. */
#define PT_OCSP_RECHECK 5
#define PT_OCSP_MAX (64 * 1024)

typedef struct ocsp_file {
    char *path;
    X509 *cert;   /* the certificate it is stapled to */
    X509 *issuer; /* its issuer, from the chain (NULL: not there) */
    unsigned char *der;
    long len;
    time_t next_update; /* of der; 0: none given */
    time_t checked;
    struct stat seen; /* the file last looked at, good or not */
    int seen_errno;   /* the stat(2) error last logged, 0 none */
    bool expiry_logged;
} ocsp_file;

typedef struct ctx_extra {
    size_t n;
    ocsp_file o[8];
} ctx_extra;

static int ctx_extra_index = -1, ssl_client_index = -1;

static void ctx_extra_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    ctx_extra *e = ptr;
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++) {
        free(e->o[i].path);
        X509_free(e->o[i].cert);
        X509_free(e->o[i].issuer);
        OPENSSL_free(e->o[i].der);
    }
    free(e);
}

/* Does id name f's certificate? Its serial and the hash of its issuer's
 * name, and with the issuer at hand the hash of its key too (RFC 6960
 * §4.1.1), in whatever digest the responder chose. */
static bool ocsp_id_is_ours(const ocsp_file *f, OCSP_CERTID *id)
{
    ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
    ASN1_OBJECT *alg = NULL;
    ASN1_INTEGER *serial = NULL;
    if (OCSP_id_get0_info(&name_hash, &alg, &key_hash, &serial, id) != 1 ||
        ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(f->cert)) != 0)
        return false;
    const EVP_MD *md = EVP_get_digestbyobj(alg);
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!md || X509_NAME_digest(X509_get_issuer_name(f->cert), md, h, &n) != 1 ||
        (int)n != ASN1_STRING_length(name_hash) ||
        memcmp(h, ASN1_STRING_get0_data(name_hash), n) != 0)
        return false;
    if (f->issuer &&
        (X509_pubkey_digest(f->issuer, md, h, &n) != 1 || (int)n != ASN1_STRING_length(key_hash) ||
         memcmp(h, ASN1_STRING_get0_data(key_hash), n) != 0))
        return false;
    return true;
}

/* The single response of r for f's certificate: 1 with its nextUpdate
 * in *next (0: none); 0 when it is another certificate's, -1 out of date
 * (with why). */
static int ocsp_for_us(const ocsp_file *f, OCSP_RESPONSE *r, time_t *next, char *why, size_t whylen)
{
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(r);
    OCSP_SINGLERESP *sr = NULL;
    for (int i = 0; bs && i < OCSP_resp_count(bs) && !sr; i++) {
        OCSP_SINGLERESP *one = OCSP_resp_get0(bs, i);
        if (ocsp_id_is_ours(f, (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(one)))
            sr = one;
    }
    int ok = 0;
    ASN1_GENERALIZEDTIME *this_upd = NULL, *next_upd = NULL;
    struct tm tm;
    if (!sr)
        snprintf(why, whylen, "not a response for the certificate it goes with");
    else if (OCSP_single_get0_status(sr, NULL, NULL, &this_upd, &next_upd) < 0)
        snprintf(why, whylen, "no certificate status");
    /* five minutes of clock skew either way, as OpenSSL's clients allow */
    else if (OCSP_check_validity(this_upd, next_upd, 300, -1) != 1) {
        snprintf(why, whylen, "%s",
                 next_upd && X509_cmp_current_time(next_upd) < 0
                     ? "expired (its nextUpdate has passed)"
                     : "not valid yet (its thisUpdate is ahead)");
        ok = -1;
    } else {
        *next = next_upd && ASN1_TIME_to_tm(next_upd, &tm) == 1 ? timegm(&tm) : 0;
        ok = 1;
    }
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
    return ok;
}

/* Read and check one response: a successful OCSPResponse (RFC 6960
 * §4.2.1) for our certificate and in date; a "try later", another
 * certificate's, an expired one or garbage would make clients fail.
 * -2: a good response but out of date, -1 any other fault. */
static int ocsp_read(ocsp_file *f, char *why, size_t whylen)
{
    struct stat st;
    /* O_NONBLOCK: a FIFO put there must not stop a worker mid-handshake */
    int fd = open(f->path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!fp) {
        snprintf(why, whylen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    unsigned char *buf = NULL;
    long n = 0;
    if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > PT_OCSP_MAX) {
        snprintf(why, whylen, "not a regular file of 1 byte to %d KiB", PT_OCSP_MAX / 1024);
        goto bad;
    }
    f->seen = st;
    if (!(buf = OPENSSL_malloc((size_t)st.st_size))) {
        snprintf(why, whylen, "out of memory");
        goto bad;
    }
    n = (long)fread(buf, 1, (size_t)st.st_size, fp);
    const unsigned char *p = buf;
    OCSP_RESPONSE *r = n == st.st_size ? d2i_OCSP_RESPONSE(NULL, &p, n) : NULL;
    int status = r ? OCSP_response_status(r) : -1;
    time_t next = 0;
    int ours =
        r && status == OCSP_RESPONSE_STATUS_SUCCESSFUL ? ocsp_for_us(f, r, &next, why, whylen) : 0;
    OCSP_RESPONSE_free(r);
    ERR_clear_error();
    if (!r || p != buf + n) {
        snprintf(why, whylen, "not a DER OCSP response");
        goto bad;
    }
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(why, whylen, "response status %s", OCSP_response_status_str(status));
        goto bad;
    }
    if (ours <= 0) {
        OPENSSL_free(buf);
        fclose(fp);
        return ours < 0 ? -2 : -1;
    }
    fclose(fp);
    OPENSSL_free(f->der);
    f->der = buf;
    f->len = n;
    f->next_update = next;
    f->expiry_logged = false;
    return 0;
bad:
    OPENSSL_free(buf);
    fclose(fp);
    return -1;
}

static void ocsp_refresh(ocsp_file *f)
{
    time_t now = time(NULL);
    struct stat st;
    if (now - f->checked < PT_OCSP_RECHECK && now >= f->checked)
        return;
    f->checked = now;
    if (stat(f->path, &st) < 0) {
        if (errno != f->seen_errno)
            pt_log_warn("tls.ocsp_response %s: %s; stapling the last one read while in date",
                        f->path, strerror(errno));
        f->seen_errno = errno;
        return;
    }
    f->seen_errno = 0;
    /* a new file renamed into place, or one rewritten in place; the same
     * bad file is not read (nor logged) again */
    if (st.st_ino == f->seen.st_ino && st.st_dev == f->seen.st_dev &&
        st.st_size == f->seen.st_size && st.st_mtim.tv_sec == f->seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == f->seen.st_mtim.tv_nsec)
        return;
    char why[128];
    if (ocsp_read(f, why, sizeof(why)) < 0) {
        f->seen = st;
        pt_log_warn("tls.ocsp_response %s: %s; stapling the last one read while in date", f->path,
                    why);
    } else {
        pt_log_info("tls.ocsp_response %s: read again (%ld bytes)", f->path, f->len);
    }
}

/* The response may be stapled now: there is one, and its nextUpdate has
 * not passed (with the skew allowed when it was read). */
static bool ocsp_in_date(ocsp_file *f)
{
    if (!f->der)
        return false;
    if (!f->next_update || time(NULL) <= f->next_update + 300)
        return true;
    if (!f->expiry_logged)
        pt_log_warn("tls.ocsp_response %s: the response expired (nextUpdate passed); nothing "
                    "stapled until the file is renewed",
                    f->path);
    f->expiry_logged = true;
    return false;
}

/* The client asked for a status (status_request): staple the response of
 * the certificate OpenSSL picked for it. */
static int on_status(SSL *ssl, void *arg)
{
    (void)arg;
    ctx_extra *e = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_extra_index);
    X509 *x = SSL_get_certificate(ssl);
    for (size_t i = 0; e && x && i < e->n; i++) {
        ocsp_file *f = &e->o[i];
        if (X509_cmp(f->cert, x) != 0)
            continue;
        ocsp_refresh(f);
        unsigned char *copy = ocsp_in_date(f) ? OPENSSL_memdup(f->der, (size_t)f->len) : NULL;
        if (!copy)
            return SSL_TLSEXT_ERR_NOACK;
        SSL_set_tlsext_status_ocsp_resp(ssl, copy, f->len);
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int ocsp_add(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    if (ctx_extra_index < 0 &&
        (ctx_extra_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_extra_free)) < 0) {
        snprintf(err, errlen, "tls.ocsp_response: out of memory");
        return -1;
    }
    ctx_extra *e = SSL_CTX_get_ex_data(ctx, ctx_extra_index);
    if (!e) {
        if (!(e = calloc(1, sizeof(*e))) || !SSL_CTX_set_ex_data(ctx, ctx_extra_index, e)) {
            free(e);
            snprintf(err, errlen, "tls.ocsp_response: out of memory");
            return -1;
        }
        SSL_CTX_set_tlsext_status_cb(ctx, on_status);
    }
    ocsp_file *f = &e->o[e->n];
    char why[128];
    if (e->n >= PT_ARRAY_LEN(e->o) || !(f->path = strdup(path))) {
        snprintf(err, errlen, "tls.ocsp_response: out of memory");
        return -1;
    }
    e->n++;
    f->cert = SSL_CTX_get0_certificate(ctx);
    X509_up_ref(f->cert);
    /* the issuer: in the chain given with the certificate (or the
     * certificate itself when self-signed) */
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    for (int i = -1; !f->issuer && i < sk_X509_num(chain); i++) {
        X509 *c = i < 0 ? f->cert : sk_X509_value(chain, i);
        if (X509_check_issued(c, f->cert) == X509_V_OK && X509_up_ref(c) == 1)
            f->issuer = c;
    }
    f->checked = time(NULL);
    int rc = ocsp_read(f, why, sizeof(why));
    if (rc < 0) {
        /* time passes: a response out of date is not a configuration
         * error (a reload must not fail while the job that renews it is
         * late); it is not stapled until a good one comes */
        if (rc == -2) {
            pt_log_warn("tls.ocsp_response %s: %s; not stapled until the file is renewed", path,
                        why);
            return 0;
        }
        snprintf(err, errlen, "tls.ocsp_response %s: %s", path, why);
        return -1;
    }
    return 0;
}

/* ---- client certificates ------------------------------------------------
 * optional: a client may send a certificate, which must then verify
 * against client_ca; required: a client that sends none fails the
 * handshake. Both as mod_ssl's "optional" and "require": a certificate
 * that does not verify ends the handshake with an alert (RFC 8446 §4.4.2.4)
 * rather than reaching a program that might forget to look. */
static int client_ca_setup(SSL_CTX *ctx, const pt_tls_cfg *t, char *err, size_t errlen)
{
    char why[256];
    if (t->verify_client == PT_VERIFY_OFF)
        return 0;
    if (!t->client_ca) {
        snprintf(err, errlen, "tls.verify_client needs tls.client_ca (a PEM file of CAs)");
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
    if (!names || SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.client_ca %s: cannot load PEM certificates: %s", t->client_ca,
                 why);
        return -1;
    }
    /* the CAs we accept go in the CertificateRequest (RFC 8446 §4.2.4) */
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(
        ctx,
        SSL_VERIFY_PEER |
            (t->verify_client == PT_VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
    SSL_CTX_set_verify_depth(ctx, t->verify_depth);
    /* a session verified against these CAs resumes only where the same
     * CAs are asked for: the context id says which */
    unsigned char id[SSL_MAX_SID_CTX_LENGTH];
    unsigned int n = sizeof(id);
    char what[PATH_MAX + 32];
    int len = snprintf(what, sizeof(what), "portico %d %d %s", t->verify_client, t->verify_depth,
                       t->client_ca);
    if (EVP_Digest(what, (size_t)len, id, &n, EVP_sha256(), NULL) == 1)
        SSL_CTX_set_session_id_context(ctx, id, PT_MIN(n, (unsigned)SSL_MAX_SID_CTX_LENGTH));
    return 0;
}

/* No certificate of the operator's (only ACME vhosts, whose certificates
 * have not come yet): a self-signed one made now, so that handshakes work
 * and clients see a certificate no one trusts, as Caddy does */
static int use_placeholder(SSL_CTX *ctx)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = 0;
    if (k && x && X509_set_version(x, 2) &&
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) &&
        X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
        X509_gmtime_adj(X509_getm_notAfter(x), 90L * 86400) && X509_set_pubkey(x, k) &&
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"portico placeholder", -1, -1, 0) &&
        X509_set_issuer_name(x, X509_get_subject_name(x)) && X509_sign(x, k, EVP_sha256()) > 0)
        ok = SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

int pt_tls_ctx_load(pt_tls_cfg *t, char *err, size_t errlen, char *warn, size_t warnlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ERR_clear_error();
    if (!ctx) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot make a TLS context: %s", why);
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, t->min_version);
    SSL_CTX_set_max_proto_version(ctx, t->max_version);
    /* renegotiation is a DoS lever and useless to HTTP/1.1 servers; no
     * compression (CRIME); the client's cipher order (Mozilla
     * intermediate: every listed cipher is good) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* without the kernel's "tls" module every handshake would try (and
     * fail) to switch it on */
    if (ktls_available())
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    /* read ahead: a record's header and body in one read(2), not two */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* IGNORE_UNEXPECTED_EOF: a client closing without close_notify has
     * ended its requests, not attacked them (a truncated request body is
     * caught by its framing) */
    /* 0-RTT data can be replayed (RFC 8446 §8): off */
    SSL_CTX_set_max_early_data(ctx, 0);
    /* RELEASE_BUFFERS: an idle connection keeps no 34 KiB of record
     * buffers; partial and moving writes: the output queue hands over
     * whatever it has, and may have more (or it elsewhere) next time */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"portico", 7);
    SSL_CTX_set_generate_session_id(ctx, on_session_id);
    static bool atfork;
    if (!atfork && pthread_atfork(NULL, NULL, rnd_forget) == 0)
        atfork = true;
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, t->http2 ? (void *)alpn_protos_h2 : NULL);
    if (ticket_ring_init() < 0) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot make the session ticket keys: %s (%s)", why, strerror(errno));
        goto fail;
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    /* TLS 1.3 (RFC 8446 §4.6.1): tickets sent after a full handshake and
     * after each resumption; a client uses one per connection (§C.4), so
     * more only help one that opens several connections at once */
    SSL_CTX_set_num_tickets(ctx, (size_t)t->tickets);
    (void)ticket_cipher(); /* here, so that the workers inherit it */
    /* a ticket lives as long as its key is accepted: at most two periods
     * (RFC 8446 §4.6.1's ticket_lifetime comes from this too) */
    SSL_CTX_set_timeout(ctx, (long)(2 * t->ticket_rotate_ms / 1000));
    const char *ciphers = t->ciphers ? t->ciphers : PT_TLS_CIPHERS;
    if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.ciphers '%s': %s", ciphers, why);
        goto fail;
    }
    if (t->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites)) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.ciphersuites '%s': %s", t->ciphersuites, why);
        goto fail;
    }
    const char *groups = t->groups ? t->groups : PT_TLS_GROUPS;
    if (!SSL_CTX_set1_groups_list(ctx, groups)) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "tls.groups '%s': %s", groups, why);
        goto fail;
    }
    int types[8];
    if (t->ncert > PT_ARRAY_LEN(types)) {
        snprintf(err, errlen, "tls.certificate: %zu certificates, at most %zu", t->ncert,
                 PT_ARRAY_LEN(types));
        goto fail;
    }
    if (t->ncert == 0 && use_placeholder(ctx) < 0) {
        ssl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot make a placeholder certificate: %s", why);
        goto fail;
    }
    for (size_t i = 0; i < t->ncert; i++) {
        if (load_pair(ctx, t->certificate[i], t->key[i], err, errlen) < 0)
            goto fail;
        X509 *x = SSL_CTX_get0_certificate(ctx);
        /* OpenSSL keeps one certificate per key type: a second of the
         * same type would silently replace the first */
        types[i] = EVP_PKEY_get_base_id(X509_get0_pubkey(x));
        for (size_t j = 0; j < i; j++)
            if (types[j] == types[i]) {
                snprintf(err, errlen,
                         "tls.certificate %s: a second certificate of the key type of %s (one "
                         "each of ECDSA and RSA is possible)",
                         t->certificate[i], t->certificate[j]);
                goto fail;
            }
        if (i < t->nocsp && t->ocsp[i][0] && ocsp_add(ctx, t->ocsp[i], err, errlen) < 0)
            goto fail;
        char one[PATH_MAX + 80] = "";
        expiry_warning(x, t->certificate[i], one, sizeof(one));
        if (one[0] && warn && warnlen) {
            size_t used = strlen(warn);
            snprintf(warn + used, warnlen - used, "%s%s", used ? "; " : "", one);
        }
    }
    if (client_ca_setup(ctx, t, err, errlen) < 0)
        goto fail;
    pt_tls_ctx_free(t);
    t->ctx = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

void pt_tls_ctx_free(pt_tls_cfg *t)
{
    SSL_CTX_free(t->ctx);
    t->ctx = NULL;
}

void pt_tls_ctx_release(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

/* RFC 6066 §3: the name picks the vhost (as a Host field would) and so
 * the certificate; the session and ticket keys stay the listener's */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const pt_config *c = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK;
    const pt_vhost *v = pt_config_vhost(c, name, strlen(name));
    if (!v || !v->tls_ctx)
        return SSL_TLSEXT_ERR_OK;
    if (!SSL_set_SSL_CTX(ssl, v->tls_ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    /* SSL_set_SSL_CTX takes the certificate and the CA store, not the
     * verify mode: the vhost's client certificate rules */
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(v->tls_ctx), NULL);
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(v->tls_ctx));
    return SSL_TLSEXT_ERR_OK;
}

void pt_tls_sni_setup(pt_config *c)
{
    bool any = false;
    for (size_t i = 0; i < c->nvhosts; i++)
        any |= c->vhosts[i].tls_ctx != NULL;
    if (!any || !c->tls.ctx)
        return;
    SSL_CTX_set_tlsext_servername_callback(c->tls.ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(c->tls.ctx, c);
}

/* Can this kernel do TLS (the "tls" upper-layer protocol, RFC-less Linux
 * kTLS)? Asked on a loopback TCP connection made for the purpose. */
static int ktls_probe(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, a = -1, rc = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
        goto out;
    if ((c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (a = accept(l, NULL, NULL)) < 0)
        goto out;
    rc = setsockopt(a, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
out:
    if (rc < 0 && errno == 0)
        errno = EINVAL;
    int e = errno;
    if (a >= 0)
        close(a);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    errno = e;
    return rc;
}

void pt_tls_log_start(const pt_config *c)
{
    if (!c->tls.ctx)
        return;
#ifdef OPENSSL_NO_KTLS
    pt_log_info("TLS: %s has no kernel TLS: files over TLS are read and encrypted %u KiB at a "
                "time",
                OpenSSL_version(OPENSSL_VERSION), PT_TLS_FILE_CHUNK / 1024);
#else
    if (ktls_available())
        pt_log_info("TLS: kernel TLS available: files over TLS go out with SSL_sendfile "
                    "when the cipher allows");
    else
        pt_log_info("TLS: kernel TLS not available (%s): files over TLS are read and encrypted "
                    "%u KiB at a time",
                    strerror(ktls_errno), PT_TLS_FILE_CHUNK / 1024);
#endif
}

/* ---- the socket operations ---------------------------------------------- */

/* Each caller is a handshake that will not finish: one line and one
 * count (the status page's failed handshakes) per connection. */
static void log_once(pt_sock *s, const char *what, const char *why)
{
    if (s->flags & TLS_LOGGED)
        return;
    s->flags |= TLS_LOGGED;
    PT_STATS_ADD(pt_stats_my->tls_failed, 1);
    pt_conn *c = s->owner;
    pt_log_info("%s%s%s, client: %s:%u", what, why ? ": " : "", why ? why : "",
                c ? pt_conn_peer_ip(c) : "-", c ? pt_conn_peer_port(c) : 0);
}

/* The handshake finished: counted once, as new or resumed. */
static void set_up(pt_sock *s)
{
    if (s->flags & TLS_UP)
        return;
    s->flags |= TLS_UP;
    if (SSL_session_reused((SSL *)s->tls) == 1)
        PT_STATS_ADD(pt_stats_my->tls_resumed, 1);
    else
        PT_STATS_ADD(pt_stats_my->tls_full, 1);
}

static bool is_up(pt_sock *s)
{
    if (!(s->flags & TLS_UP) && SSL_is_init_finished((SSL *)s->tls))
        set_up(s);
    return s->flags & TLS_UP;
}

/* Map an OpenSSL result to the system-call convention. */
static ssize_t io_result(pt_sock *s, int n, const char *doing)
{
    SSL *ssl = s->tls;
    int e = SSL_get_error(ssl, n);
    int saved = errno;
    /* the call may have finished the handshake and then found no data */
    is_up(s);
    s->flags &= ~(unsigned)(PT_SOCK_WANT_READ | PT_SOCK_WANT_WRITE);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        s->flags |= PT_SOCK_WANT_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        s->flags |= PT_SOCK_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify: the end of the stream */
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (!(s->flags & TLS_UP))
            log_once(s, "connection closed during the TLS handshake",
                     saved ? strerror(saved) : NULL);
        if (saved == 0 || saved == ECONNRESET)
            return 0; /* an EOF without close_notify ends the stream too */
        errno = saved;
        return -1;
    default: {
        char why[256];
        ssl_reason(why, sizeof(why));
        if (!(s->flags & TLS_UP))
            log_once(s, "TLS handshake failed", why);
        else
            pt_log_debug("TLS error while %s: %s", doing, why);
        errno = EPROTO;
        return -1;
    }
    }
}

typedef struct tls_bio tls_bio;
static tls_bio *own_bio(SSL *ssl);
static bool bio_prefill(tls_bio *t, const void *p, size_t n);
/* what the first read takes: a ClientHello's first record, or the start
 * of a plain request (the rest follows in later reads) */
#define TLS_FIRST_READ 4096u

/* Before the handshake: the first byte says what the client speaks. A TLS
 * record of type handshake is 0x16 (RFC 8446 §5.1); an HTTP method starts
 * with a letter: that one gets a plain 400 (as nginx does). With our BIO
 * the first bytes are read for real into buf and handed to OpenSSL through
 * it, rather than peeked at and read again: one system call fewer per
 * connection. 1: TLS; 2: plain HTTP, *got bytes of it in buf; 0 EOF; -1. */
static int first_byte(pt_sock *s, void *buf, size_t len, ssize_t *got)
{
    tls_bio *t = len ? own_bio(s->tls) : NULL;
    unsigned char b;
    ssize_t n =
        t ? recv(s->fd, buf, PT_MIN(len, (size_t)TLS_FIRST_READ), 0) : recv(s->fd, &b, 1, MSG_PEEK);
    if (n <= 0)
        return n == 0 ? 0 : -1;
    if (t)
        b = *(const unsigned char *)buf;
    if (b == 0x16) {
        if (t && !bio_prefill(t, buf, (size_t)n)) {
            errno = ENOMEM;
            return -1;
        }
        s->flags |= TLS_STARTED;
        return 1;
    }
    if (b >= 'A' && b <= 'Z') {
        SSL_free(s->tls);
        s->tls = NULL;
        s->ops = &pt_sock_plain;
        s->flags |= PT_SOCK_PLAIN_ON_TLS;
        *got = t ? n : pt_sock_read(s, buf, len);
        return 2;
    }
    char why[64];
    snprintf(why, sizeof(why), "first byte 0x%02x", b);
    log_once(s, "not a TLS ClientHello on a TLS port", why);
    errno = EPROTO;
    return -1;
}

/* An empty error queue before an SSL call, so that SSL_get_error reads
 * this call's error: ERR_clear_error walks all 16 slots of the thread's
 * queue (about 300 instructions), twice a round trip of reads and writes
 * for nothing, as the queue is empty but after a failure. */
static inline void err_reset(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static ssize_t tls_read(pt_sock *s, void *buf, size_t len)
{
    if (!(s->flags & TLS_STARTED)) {
        ssize_t got = 0;
        int r = first_byte(s, buf, len, &got);
        if (r <= 0)
            return r;
        if (r == 2)
            return got;
    }
    is_up(s);
    err_reset();
    errno = 0;
    int n = SSL_read(s->tls, buf, (int)PT_MIN(len, (size_t)INT_MAX));
    s->flags &= ~(unsigned)PT_SOCK_BUFFERED;
    if (n > 0) {
        s->flags &= ~(unsigned)(PT_SOCK_WANT_READ | PT_SOCK_WANT_WRITE);
        set_up(s);
        /* the rest of a record longer than buf, or records read ahead,
         * stay inside OpenSSL */
        if (SSL_has_pending(s->tls))
            s->flags |= PT_SOCK_BUFFERED;
        return n;
    }
    return io_result(s, n, "reading");
}

static void bio_more(SSL *ssl, bool more);

static void bio_cork(tls_bio *t, bool on);
static int bio_send_held(tls_bio *t);

static ssize_t write_result(pt_sock *s, int n)
{
    if (n > 0) {
        s->flags &= ~(unsigned)(PT_SOCK_WANT_READ | PT_SOCK_WANT_WRITE);
        return n;
    }
    ssize_t r = io_result(s, n, "writing");
    if (r == 0) {
        errno = EPIPE;
        r = -1;
    }
    return r;
}

/* The connection's last write, of at most one record: the record is held
 * with the close_notify that follows it (RFC 8446 §6.1) and both leave in
 * one sendmsg(2), not one each. All or nothing: a retry (the same bytes,
 * as OpenSSL asks anyway) sends what is still held. */
static ssize_t write_last(pt_sock *s, tls_bio *t, const void *p, size_t len)
{
    SSL *ssl = s->tls;
    if (!(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
        bio_cork(t, true);
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(ssl, p, (int)len);
        if (n == (int)len) {
            (void)SSL_shutdown(ssl);
            ERR_clear_error();
        }
        bio_cork(t, false);
        if (n != (int)len) {
            /* records smaller than asked for (max_fragment_length): what
             * is held goes now, or before the next record */
            if (n > 0)
                (void)bio_send_held(t);
            return write_result(s, n);
        }
    }
    if (bio_send_held(t) < 0) {
        if (errno == EAGAIN)
            s->flags |= PT_SOCK_WANT_WRITE;
        return -1;
    }
    s->flags &= ~(unsigned)(PT_SOCK_WANT_READ | PT_SOCK_WANT_WRITE);
    return (ssize_t)len;
}

/* whole: p[0..len) is all the caller handed over (with PT_SOCK_TAIL, the
 * end of the output queue), not the first record's worth of it */
static ssize_t do_write(pt_sock *s, const void *p, size_t len, bool whole)
{
    tls_bio *t;
    if (whole && (s->flags & (PT_SOCK_LAST | PT_SOCK_TAIL)) == (PT_SOCK_LAST | PT_SOCK_TAIL) &&
        len <= PT_TLS_COALESCE && is_up(s) && (t = own_bio(s->tls)))
        return write_last(s, t, p, len);
    err_reset();
    errno = 0;
    return write_result(s, SSL_write(s->tls, p, (int)PT_MIN(len, (size_t)INT_MAX)));
}

/* One process, one thread: a buffer shared by every connection. OpenSSL
 * keeps what it encrypted but could not send in the connection's own
 * write buffer; a retry hands over the same bytes again. */
static unsigned char
    scratch[PT_TLS_COALESCE > PT_TLS_FILE_CHUNK ? PT_TLS_COALESCE : PT_TLS_FILE_CHUNK];

static ssize_t tls_writev(pt_sock *s, const struct iovec *iov, int n)
{
    if (n == 1 || iov[0].iov_len >= PT_TLS_COALESCE) {
        /* more than a record (a cached file's content, encrypted from
         * where it lies): OpenSSL writes one record a call (partial
         * writes) and keeps its write buffer for the next; the kernel may
         * join the record with the next one, as a file's (tls_sendfile) */
        if (iov[0].iov_len <= PT_TLS_FILE_CHUNK)
            return do_write(s, iov[0].iov_base, iov[0].iov_len, n == 1);
        bio_more(s->tls, true);
        ssize_t w = do_write(s, iov[0].iov_base, iov[0].iov_len, false);
        bio_more(s->tls, false);
        return w;
    }
    /* head and body in one record rather than one record each */
    size_t len = 0, all = 0;
    for (int i = 0; i < n; i++) {
        size_t k = PT_MIN(iov[i].iov_len, PT_TLS_COALESCE - len);
        memcpy(scratch + len, iov[i].iov_base, k);
        len += k;
        all += iov[i].iov_len;
    }
    if (len == all)
        return do_write(s, scratch, len, true);
    bio_more(s->tls, true);
    ssize_t w = do_write(s, scratch, len, false);
    bio_more(s->tls, false);
    return w;
}

static ssize_t tls_sendfile(pt_sock *s, int fd, off_t *off, size_t len)
{
    SSL *ssl = s->tls;
#ifndef OPENSSL_NO_KTLS
    if (BIO_get_ktls_send(SSL_get_wbio(ssl))) {
        ERR_clear_error();
        errno = 0;
        ossl_ssize_t n = SSL_sendfile(ssl, fd, *off, len, 0);
        if (n > 0) {
            *off += n;
            return n;
        }
        if (errno == EAGAIN)
            return -1;
        return io_result(s, (int)n, "sending a file");
    }
#endif
    /* bounded read-and-encrypt: one record's worth at a time, the same
     * bytes again after a would-block (same offset, at least as long) */
    size_t want = PT_MIN(len, (size_t)PT_TLS_FILE_CHUNK);
    ssize_t got = pread(fd, scratch, want, *off);
    if (got <= 0)
        return got;
    /* more of the file follows: the kernel may fill a segment with this
     * record and the next, as lighttpd's TCP_CORK, without its two
     * setsockopt(2) calls; the last record goes without and pushes all */
    bio_more(ssl, (size_t)got < len);
    ssize_t w = do_write(s, scratch, (size_t)got, (size_t)got == len);
    bio_more(ssl, false);
    if (w > 0)
        *off += w;
    return w;
}

/* A response head and the first bytes of its file in one record (RFC 8446
 * §5.1 lets a record carry any bytes of the stream): a short head alone
 * would cost a record, a sendmsg(2) and a segment of its own. A retry
 * after a would-block builds the same bytes again from the same queue. */
static ssize_t tls_headfile(pt_sock *s, const struct iovec *iov, int n, int fd, off_t off,
                            size_t len)
{
    size_t hlen = 0;
    for (int i = 0; i < n; i++)
        hlen += iov[i].iov_len;
    if (hlen > PT_TLS_COALESCE / 4 || BIO_get_ktls_send(SSL_get_wbio(s->tls)))
        return tls_writev(s, iov, n);
    for (int i = 0, at = 0; i < n; at += (int)iov[i].iov_len, i++)
        memcpy(scratch + at, iov[i].iov_base, iov[i].iov_len);
    size_t want = PT_MIN(len, (size_t)PT_TLS_FILE_CHUNK - hlen);
    ssize_t got = pread(fd, scratch + hlen, want, off);
    if (got < 0)
        return -1;
    /* a file that shrank: the head alone, the sendfile reports it */
    bio_more(s->tls, (size_t)got < len);
    ssize_t w = do_write(s, scratch, hlen + (size_t)got, (size_t)got == len);
    bio_more(s->tls, false);
    return w;
}

/* Is a request's byte waiting? Raw bytes may be a partial record or a
 * post-handshake message, no request at all (a client trickling record
 * bytes would otherwise keep an idle connection forever): decrypt what is
 * there and look. */
static int tls_pending(pt_sock *s)
{
    SSL *ssl = s->tls;
    if (!is_up(s)) {
        int r = pt_sock_plain.pending(s);
        return r > 0 ? 0 : r;
    }
    char ch;
    ERR_clear_error();
    int n = SSL_peek(ssl, &ch, 1);
    if (n > 0) {
        /* decrypted now, so epoll will not report it */
        s->flags |= PT_SOCK_BUFFERED;
        return 1;
    }
    int e = SSL_get_error(ssl, n);
    ERR_clear_error();
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return -1;
    /* a record split across segments: its first bytes were read ahead
     * into OpenSSL, where neither epoll nor a peek at the socket sees them */
    return SSL_has_pending(ssl) ? 2 : 0;
}

static void tls_shutdown(pt_sock *s)
{
    /* close_notify (RFC 8446 §6.1), then the FIN; no waiting for the
     * peer's own close_notify (nor sending ours twice: write_last) */
    if (is_up(s) && !(SSL_get_shutdown((SSL *)s->tls) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        (void)SSL_shutdown(s->tls);
        ERR_clear_error();
    }
    if (!(s->flags & PT_SOCK_CLOSING))
        shutdown(s->fd, SHUT_WR);
}

static void tls_close(pt_sock *s)
{
    if ((s->flags & TLS_STARTED) && !is_up(s))
        log_once(s, "closed before the TLS handshake finished", NULL);
    SSL_free(s->tls);
    s->tls = NULL;
    close(s->fd);
    s->fd = -1;
}

/* ---- the connection's BIO ------------------------------------------------ */

/* A socket BIO of our own, for what OpenSSL's cannot do: hold the TLS 1.3
 * NewSessionTicket records (RFC 8446 §4.6.1) written after the client's
 * Finished, which OpenSSL writes and flushes one by one, and send them
 * with the next record, the response, in one sendmsg(2): two system calls
 * and two segments (and two wake-ups of the client) fewer per full
 * handshake, one per resumed one. A client has no use for a ticket before
 * its response anyway; one that leaves before a response gets none, as it
 * would not have read them either. */
#define TLS_HOLD_MAX 2048u
/* corked (write_last): the tickets, one full record, the close_notify */
#define TLS_HOLD_LAST (TLS_HOLD_MAX + PT_TLS_COALESCE + 512u)

struct tls_bio {
    SSL *ssl;
    int fd;
    bool eof;
    bool more; /* the response goes on after this write: MSG_MORE */
    bool cork; /* hold every record (write_last) */
    /* a handshake flight just left: the peer's answer cannot be here yet */
    bool flight;
    uint16_t held_len, held_cap;
    uint16_t pre_len, pre_off; /* first_byte's bytes, given to OpenSSL first */
    unsigned char *held;       /* held_cap bytes while something is held */
    unsigned char *pre;
};

static int bio_type; /* of bio_method(): tells our BIO from OpenSSL's */

static tls_bio *own_bio(SSL *ssl)
{
    BIO *b = SSL_get_rbio(ssl);
    return b && bio_type && BIO_method_type(b) == bio_type ? BIO_get_data(b) : NULL;
}

static bool bio_prefill(tls_bio *t, const void *p, size_t n)
{
    if (!(t->pre = malloc(n)))
        return false;
    memcpy(t->pre, p, n);
    t->pre_len = (uint16_t)n;
    t->pre_off = 0;
    return true;
}

static void bio_more(SSL *ssl, bool more)
{
    tls_bio *t = own_bio(ssl);
    if (t)
        t->more = more;
}

static void bio_cork(tls_bio *t, bool on)
{
    t->cork = on;
}

/* Hold these len bytes? Then there is room for them in t->held. */
static bool bio_holds(tls_bio *t, size_t len)
{
    size_t cap = t->cork ? TLS_HOLD_LAST : TLS_HOLD_MAX;
    if (!t->cork && !(SSL_get_state(t->ssl) == TLS_ST_SW_SESSION_TICKET &&
                      SSL_version(t->ssl) == TLS1_3_VERSION))
        return false;
    if (t->held_len + len > cap)
        return false;
    if (t->held_cap < cap) {
        unsigned char *p = realloc(t->held, cap);
        if (!p)
            return false;
        t->held = p;
        t->held_cap = (uint16_t)cap;
    }
    return true;
}

static void bio_release_held(tls_bio *t)
{
    t->held_len = t->held_cap = 0;
    free(t->held);
    t->held = NULL;
}

/* What is held, in one send(2): 0 all of it gone, else -1 (EAGAIN: some
 * is still held, for the next call or the next record). */
static int bio_send_held(tls_bio *t)
{
    if (!t->held_len)
        return 0;
    ssize_t w = send(t->fd, t->held, t->held_len, MSG_NOSIGNAL);
    if (w < 0)
        return -1;
    if ((size_t)w < t->held_len) {
        memmove(t->held, t->held + w, t->held_len - (size_t)w);
        t->held_len = (uint16_t)(t->held_len - w);
        errno = EAGAIN;
        return -1;
    }
    bio_release_held(t);
    return 0;
}

static bool bio_retry(BIO *b, bool wr)
{
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return false;
    if (wr)
        BIO_set_retry_write(b);
    else
        BIO_set_retry_read(b);
    return true;
}

static int bio_write(BIO *b, const char *in, int inl)
{
    tls_bio *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (inl <= 0)
        return 0;
    if (bio_holds(t, (size_t)inl)) {
        memcpy(t->held + t->held_len, in, (size_t)inl);
        t->held_len = (uint16_t)(t->held_len + inl);
        return inl;
    }
    struct iovec iov[2];
    int n = 0;
    if (t->held_len)
        iov[n++] = (struct iovec){t->held, t->held_len};
    iov[n++] = (struct iovec){(void *)(uintptr_t)in, (size_t)inl};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(t->fd, &mh, MSG_NOSIGNAL | (t->more ? MSG_MORE : 0));
    if (w < 0) {
        bio_retry(b, true);
        return -1;
    }
    if ((size_t)w <= t->held_len) {
        /* the held records first: this one is offered again on the retry */
        memmove(t->held, t->held + w, t->held_len - (size_t)w);
        t->held_len = (uint16_t)(t->held_len - w);
        BIO_set_retry_write(b);
        errno = EAGAIN;
        return -1;
    }
    w -= t->held_len;
    bio_release_held(t);
    t->flight = !SSL_is_init_finished(t->ssl);
    return (int)w;
}

static int bio_read(BIO *b, char *out, int outl)
{
    tls_bio *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (outl <= 0)
        return 0;
    if (t->pre) {
        /* OpenSSL reads ahead a whole buffer: all of it at the first call */
        size_t k = PT_MIN((size_t)outl, (size_t)(t->pre_len - t->pre_off));
        memcpy(out, t->pre + t->pre_off, k);
        t->pre_off = (uint16_t)(t->pre_off + k);
        if (t->pre_off == t->pre_len) {
            free(t->pre);
            t->pre = NULL;
        }
        return (int)k;
    }
    if (t->flight) {
        /* The client answers our flight only after its own key exchange
         * and signature check (a Finished, a key exchange): a read now
         * finds nothing, one system call for an EAGAIN; wait for epoll
         * instead (level-triggered: an answer already here wakes it) */
        t->flight = false;
        BIO_set_retry_read(b);
        errno = EAGAIN;
        return -1;
    }
    ssize_t n = recv(t->fd, out, (size_t)outl, 0);
    if (n == 0)
        t->eof = true; /* BIO_eof: what SSL_OP_IGNORE_UNEXPECTED_EOF asks */
    else if (n < 0)
        bio_retry(b, false);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    tls_bio *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_EOF:
        return t->eof;
    case BIO_CTRL_FLUSH:
        return 1; /* what is held waits for the next record by design */
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = t->fd;
        return t->fd;
    default:
        return 0;
    }
}

static int bio_destroy(BIO *b)
{
    tls_bio *t = BIO_get_data(b);
    if (t) {
        free(t->held);
        free(t->pre);
        free(t);
        BIO_set_data(b, NULL);
    }
    return 1;
}

static BIO_METHOD *bio_method(void)
{
    static BIO_METHOD *m;
    if (m)
        return m;
    int type = BIO_get_new_index();
    type = type > 0 ? type | BIO_TYPE_SOURCE_SINK : 0;
    BIO_METHOD *nm = type ? BIO_meth_new(type, "portico socket") : NULL;
    if (!nm || !BIO_meth_set_write(nm, bio_write) || !BIO_meth_set_read(nm, bio_read) ||
        !BIO_meth_set_ctrl(nm, bio_ctrl) || !BIO_meth_set_destroy(nm, bio_destroy)) {
        BIO_meth_free(nm);
        return NULL;
    }
    bio_type = type;
    return m = nm;
}

/* ssl's BIO: ours, or with kernel TLS OpenSSL's socket BIO, which
 * SSL_sendfile needs */
static bool bio_attach(SSL *ssl, int fd)
{
    if (ktls_available())
        return SSL_set_fd(ssl, fd) == 1;
    BIO_METHOD *m = bio_method();
    BIO *b = m ? BIO_new(m) : NULL;
    tls_bio *t = b ? calloc(1, sizeof(*t)) : NULL;
    if (!t) {
        BIO_free(b);
        return false;
    }
    t->ssl = ssl;
    t->fd = fd;
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b); /* one reference, taken by ssl */
    return true;
}

static const pt_sock_ops tls_ops = {
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .headfile = tls_headfile,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .close = tls_close,
};

bool pt_tls_copies(const pt_sock *s)
{
    if (s->ops != &tls_ops || !s->tls || (s->flags & PT_SOCK_PLAIN_ON_TLS))
        return false;
#ifndef OPENSSL_NO_KTLS
    if (BIO_get_ktls_send(SSL_get_wbio(s->tls)))
        return false;
#endif
    return true;
}

int pt_tls_sock_init(pt_sock *s, struct ssl_ctx_st *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !bio_attach(ssl, fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        return -1;
    }
    SSL_set_accept_state(ssl);
    s->ops = &tls_ops;
    s->fd = fd;
    s->tls = ssl;
    return 0;
}

/* mod_ssl's SSL_CLIENT_* strings, made once per connection and kept
 * with it (a keep-alive connection's requests all see them) */
typedef struct client_info {
    char *verify, *s_dn, *i_dn, *serial, *pem;
} client_info;

static void client_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    client_info *ci = ptr;
    if (!ci)
        return;
    free(ci->verify);
    free(ci->s_dn);
    free(ci->i_dn);
    free(ci->serial);
    free(ci->pem);
    free(ci);
}

static char *bio_string(BIO *b)
{
    char *p = NULL, *out = NULL;
    long n = b ? BIO_get_mem_data(b, &p) : 0;
    if (n >= 0 && (out = malloc((size_t)n + 1))) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

/* RFC 4514 (mod_ssl's default since 2.3): "CN=alice,O=Example" */
static char *dn_string(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
        BIO_free(b);
        return NULL;
    }
    return bio_string(b);
}

static void client_info_make(SSL *ssl, client_info *ci)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    long v = SSL_get_verify_result(ssl);
    if (!x) {
        ci->verify = strdup("NONE");
        return;
    }
    if (v == X509_V_OK) {
        ci->verify = strdup("SUCCESS");
    } else {
        const char *why = X509_verify_cert_error_string(v);
        size_t n = strlen("FAILED:") + strlen(why) + 1;
        if ((ci->verify = malloc(n)))
            snprintf(ci->verify, n, "FAILED:%s", why);
    }
    ci->s_dn = dn_string(X509_get_subject_name(x));
    ci->i_dn = dn_string(X509_get_issuer_name(x));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    ci->serial = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
    BN_free(bn);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && !PEM_write_bio_X509(b, x)) {
        BIO_free(b);
        b = NULL;
    }
    ci->pem = b ? bio_string(b) : NULL;
    ERR_clear_error();
}

static void client_info_get(SSL *ssl, pt_tls_info *out)
{
    client_info *ci = NULL;
    if (!(SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
        return; /* no client certificates asked for: no SSL_CLIENT_* */
    if (ssl_client_index < 0)
        ssl_client_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, client_info_free);
    if (ssl_client_index < 0)
        return;
    if (!(ci = SSL_get_ex_data(ssl, ssl_client_index))) {
        if (!(ci = calloc(1, sizeof(*ci))))
            return;
        if (!SSL_set_ex_data(ssl, ssl_client_index, ci)) {
            free(ci);
            return;
        }
        client_info_make(ssl, ci);
    }
    out->client_verify = ci->verify;
    out->client_s_dn = ci->s_dn;
    out->client_i_dn = ci->i_dn;
    out->client_serial = ci->serial;
    out->client_cert = ci->pem;
}

bool pt_tls_info_get(const pt_sock *s, pt_tls_info *out)
{
    SSL *ssl = s->tls;
    if (!ssl || s->ops != &tls_ops)
        return false;
    out->protocol = SSL_get_version(ssl);
    out->cipher = SSL_get_cipher_name(ssl);
    out->sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    out->resumed = SSL_session_reused(ssl) == 1;
    out->client_verify = out->client_s_dn = out->client_i_dn = NULL;
    out->client_serial = out->client_cert = NULL;
    client_info_get(ssl, out);
    return true;
}

bool pt_tls_misdirected(const pt_sock *s, const pt_vhost *v)
{
    if (!s->tls || !v || !v->tls_ctx)
        return false;
    int mode = SSL_CTX_get_verify_mode(v->tls_ctx);
    if (!(mode & SSL_VERIFY_PEER))
        return false;
    SSL *ssl = s->tls;
    if (SSL_get_SSL_CTX(ssl) != v->tls_ctx)
        return true;
    /* a session resumed from a handshake under other rules brings no
     * certificate: "required" must still see one */
    return (mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) && !SSL_get0_peer_certificate(ssl);
}

void pt_tls_buffers_hold(pt_sock *s)
{
    if (s->tls)
        SSL_clear_mode(s->tls, SSL_MODE_RELEASE_BUFFERS);
}

void pt_tls_buffers_release(pt_sock *s)
{
    /* not with bytes read ahead or a record half sent (SSL_free_buffers
     * refuses the latter itself; the former, a partial record, is the
     * case of CVE-2024-4741 in OpenSSL before 3.0.14) */
    if (s->tls && !SSL_has_pending(s->tls))
        (void)!SSL_free_buffers(s->tls);
}

bool pt_tls_alpn_h2(pt_sock *s)
{
    if (!s->tls)
        return false;
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(s->tls, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}
