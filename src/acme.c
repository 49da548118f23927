/* acme.c: an ACME client (RFC 8555) in a process of its own. The master
 * forks it (again after each reload); it runs as root because it writes
 * the state directory, and does nothing but file writes there and
 * outbound HTTPS to the ACME server. Blocking I/O with timeouts is fine
 * here: no client waits on this process. Workers only read the challenge
 * files it writes (pt_acme_challenge).
 *
 * State directory (acme_state_dir, root's):
 *   0711 .                    traversable, not listable, by the workers
 *   0600 account.key          the account's P-256 key (PEM)
 *   0755 challenges/          http-01 key authorizations, one file a token
 *   0700 certs/NAME/          cert.pem (chain, 0644) and key.pem (0600) */
#include "first.h"
#include "acme.h"
#include "acme_json.h"
#include "log.h"
#include "rootfile.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define IO_TIMEOUT_S 30
#define RESP_MAX (1u << 20) /* a certificate chain is a few KiB */
#define POLL_TRIES 60
#define CHECK_PERIOD_S 86400 /* "check daily" */
#define BACKOFF_FIRST_S 60
#define BACKOFF_MAX_S 86400
/* A certificate younger than this is not renewed, whatever renew_before
 * says: one longer than the lifetime would otherwise renew in a loop. */
#define MIN_AGE_S 3600

static bool json_member_str(const char *body, const char *key, char *out, size_t cap)
{
    const char *e = body + strlen(body);
    return pt_acme_json_str(pt_acme_json_get(body, e, key), e, out, cap);
}

/* ---------------------------------------------------------------- HTTPS */

typedef struct resp {
    int status;
    char *head; /* the whole response; body points into it */
    char *body;
    char location[2048];
} resp;

typedef struct acme {
    const pt_config *cfg;
    const pt_vhost *v;
    const pt_acme_cfg *a;
    SSL_CTX *ctx;
    EVP_PKEY *account;
    char *jwk;       /* {"crv":"P-256","kty":"EC","x":..,"y":..} (RFC 7638 order) */
    char thumb[64];  /* base64url SHA-256 of jwk */
    char kid[2048];  /* the account URL */
    char nonce[256]; /* the last Replay-Nonce */
    char new_nonce[2048], new_account[2048], new_order[2048];
    char why[512];   /* why it failed */
    uint64_t end_ms; /* the attempt's deadline (acme.order_timeout), pt_now_ms */
} acme;

static void resp_free(resp *r)
{
    free(r->head);
    memset(r, 0, sizeof(*r));
}

static int fail(acme *m, const char *fmt, ...) PT_PRINTF(2, 3);
static int fail(acme *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->why, sizeof(m->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* Seconds left of the attempt, at most IO_TIMEOUT_S (and at least 1,
 * so that a timeout is never "none"); 0 once it passed. */
static int left_s(const acme *m)
{
    uint64_t now = pt_now_ms();
    if (now >= m->end_ms)
        return 0;
    uint64_t s = (m->end_ms - now + 999) / 1000;
    return s < IO_TIMEOUT_S ? (int)s : IO_TIMEOUT_S;
}

static int deadline_passed(acme *m)
{
    return fail(m, "the attempt took longer than acme.order_timeout (%llus)",
                (unsigned long long)(m->a->order_timeout_ms / 1000));
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* a TCP connection with a connect timeout, then blocking with timeouts
 * (each at most what is left of the attempt) */
static int dial(const char *host, const char *port, int timeout_s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *p;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (p = ai; p; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, p->ai_addr, p->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t el = sizeof(err);
            if (poll(&pf, 1, timeout_s * 1000) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
                break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        struct timeval tv = {.tv_sec = timeout_s};
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

static bool header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1, *ve = strstr(v, "\r\n");
            while (*v == ' ' || *v == '\t')
                v++;
            size_t n = ve ? (size_t)(ve - v) : strlen(v);
            if (n >= cap)
                return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* One HTTP/1.0 exchange (no chunked framing to read: the server closes)
 * over TLS checked against ca_file or the system's CAs. */
/* A URL or header value from the ACME server, fit to stand in a request
 * line and in the JSON of a JWS: visible ASCII, no quote, no backslash. */
static bool clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

static int https(acme *m, const char *method, const char *url, const char *body, resp *r)
{
    char host[256], port[8] = "443", req[4096];
    const char *path;
    memset(r, 0, sizeof(*r));
    if (!clean(url))
        return fail(m, "refusing a URL with control characters, quotes or spaces");
    if (strncmp(url, "https://", 8) != 0)
        return fail(m, "not an https URL: %.200s", url);
    const char *h = url + 8, *he = h + strcspn(h, ":/");
    if ((size_t)(he - h) >= sizeof(host) || he == h)
        return fail(m, "bad URL %.200s", url);
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    path = strchr(he, '/');
    if (*he == ':') {
        size_t pl = strcspn(he + 1, "/");
        if (pl == 0 || pl >= sizeof(port))
            return fail(m, "bad URL %.200s", url);
        memcpy(port, he + 1, pl);
        port[pl] = '\0';
    }
    if (!path)
        path = "/";
    if (left_s(m) == 0)
        return deadline_passed(m);
    int fd = dial(host, port, left_s(m));
    if (fd < 0)
        return fail(m, "cannot connect to %s:%s: %s", host, port, strerror(errno));
    SSL *s = SSL_new(m->ctx);
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(
        req, sizeof(req),
        "%s %s HTTP/1.0\r\nHost: %s%s%s\r\nUser-Agent: portico/" PACKAGE_VERSION
        "\r\nAccept: */*\r\n%s%zu\r\n\r\n",
        method, path, host, strcmp(port, "443") ? ":" : "", strcmp(port, "443") ? port : "",
        body ? "Content-Type: application/jose+json\r\nContent-Length: " : "Content-Length: ",
        blen);
    int rc = -1;
    if (!s || n < 0 || (size_t)n >= sizeof(req)) {
        fail(m, "request too long");
        goto out;
    }
    SSL_set_fd(s, fd);
    SSL_set_tlsext_host_name(s, host);
    SSL_set1_host(s, host);
    if (SSL_connect(s) != 1) {
        char e[256] = "";
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        fail(m, "TLS with %s:%s failed: %s", host, port, e);
        goto out;
    }
    if (SSL_write(s, req, n) != n || (blen && SSL_write(s, body, (int)blen) != (int)blen)) {
        fail(m, "cannot send to %s:%s", host, port);
        goto out;
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fail(m, "out of memory");
            goto out;
        }
        if (len + 1 >= cap) {
            if (cap >= RESP_MAX) {
                free(buf);
                fail(m, "response too large");
                goto out;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        /* a server that trickles its answer never trips the socket
         * timeouts: the attempt's deadline ends it */
        if (left_s(m) == 0) {
            free(buf);
            deadline_passed(m);
            goto out;
        }
        int got = SSL_read(s, buf + len, (int)(cap - 1 - len));
        if (got <= 0)
            break; /* EOF (or a close without close_notify: the body is framed by it) */
        len += (size_t)got;
    }
    buf[len] = '\0';
    r->head = buf;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/%*d.%*d %d", &r->status) != 1) {
        fail(m, "%s %s: no HTTP response", method, url);
        free(buf);
        r->head = NULL;
        goto out;
    }
    *sep = '\0';
    r->body = sep + 4;
    char nonce[sizeof(m->nonce)];
    if (header_value(buf, "Replay-Nonce", nonce, sizeof(nonce)) && clean(nonce))
        memcpy(m->nonce, nonce, sizeof(nonce));
    /* it becomes the kid or a URL fetched next: only a clean one */
    if (header_value(buf, "Location", r->location, sizeof(r->location)) && !clean(r->location))
        r->location[0] = '\0';
    rc = 0;
out:
    if (s) {
        SSL_shutdown(s);
        SSL_free(s);
    }
    ERR_clear_error();
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ JWS, keys */

static char *b64url_str(const char *s)
{
    return pt_acme_b64url((const unsigned char *)s, strlen(s));
}

/* ES256 (RFC 7518 §3.4): the signature is r || s, 32 bytes each, not DER */
static char *es256(EVP_PKEY *k, const char *data)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128], raw[64];
    size_t dl = sizeof(der);
    char *out = NULL;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
        EVP_DigestSign(md, der, &dl, (const unsigned char *)data, strlen(data)) == 1) {
        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
        if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32)
            out = pt_acme_b64url(raw, 64);
        ECDSA_SIG_free(sig);
    }
    EVP_MD_CTX_free(md);
    return out;
}

/* A flattened JWS (RFC 8555 §6.2) of payload (NULL: POST-as-GET, the
 * empty payload) for url, with the account's kid once there is one. */
static char *jws(acme *m, const char *url, const char *payload)
{
    char *prot = NULL, *p64 = NULL, *pl64 = NULL, *sig = NULL, *signing = NULL, *out = NULL;
    size_t n = strlen(m->jwk) + strlen(url) + strlen(m->kid) + strlen(m->nonce) + 128;
    if (!(prot = malloc(n)))
        goto out;
    if (m->kid[0])
        snprintf(prot, n, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}",
                 m->kid, m->nonce, url);
    else
        snprintf(prot, n, "{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"%s\"}", m->jwk,
                 m->nonce, url);
    if (!(p64 = b64url_str(prot)) || !(pl64 = b64url_str(payload ? payload : "")))
        goto out;
    n = strlen(p64) + strlen(pl64) + 2;
    if (!(signing = malloc(n)))
        goto out;
    snprintf(signing, n, "%s.%s", p64, pl64);
    if (!(sig = es256(m->account, signing)))
        goto out;
    n += strlen(sig) + 64;
    if ((out = malloc(n)))
        snprintf(out, n, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p64,
                 pl64, sig);
out:
    free(prot);
    free(p64);
    free(pl64);
    free(signing);
    free(sig);
    return out;
}

static int fresh_nonce(acme *m)
{
    resp r;
    if (https(m, "HEAD", m->new_nonce, NULL, &r) < 0)
        return -1;
    resp_free(&r);
    return m->nonce[0] ? 0 : fail(m, "newNonce gave no Replay-Nonce");
}

/* A signed POST; a badNonce (RFC 8555 §6.5) is retried with the nonce it
 * came with. Statuses >= 400 are failures with the problem's detail. */
static int post(acme *m, const char *url, const char *payload, resp *r)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        if (!m->nonce[0] && fresh_nonce(m) < 0)
            return -1;
        char *body = jws(m, url, payload);
        if (!body)
            return fail(m, "cannot sign a request (out of memory?)");
        m->nonce[0] = '\0';
        int rc = https(m, "POST", url, body, r);
        free(body);
        if (rc < 0)
            return -1;
        if (r->status < 400)
            return 0;
        char type[256] = "", detail[512] = "";
        json_member_str(r->body, "type", type, sizeof(type));
        json_member_str(r->body, "detail", detail, sizeof(detail));
        if (strcmp(type, "urn:ietf:params:acme:error:badNonce") != 0) {
            fail(m, "POST %.200s: %d %s %s", url, r->status, type, detail);
            resp_free(r);
            return -1;
        }
        resp_free(r);
    }
    return fail(m, "POST %.200s: badNonce three times", url);
}

/* {"crv":"P-256","kty":"EC","x":"...","y":"..."}: members in the order
 * RFC 7638 §3.2 hashes them, so the thumbprint is SHA-256 of this text */
static int make_jwk(acme *m)
{
    unsigned char pt[65], dg[32];
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(m->account, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n) !=
            1 ||
        n != 65 || pt[0] != 4)
        return fail(m, "the account key is not an uncompressed P-256 point");
    char *x = pt_acme_b64url(pt + 1, 32), *y = pt_acme_b64url(pt + 33, 32);
    if (x && y && (m->jwk = malloc(160)))
        snprintf(m->jwk, 160, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    free(x);
    free(y);
    if (!m->jwk)
        return fail(m, "out of memory");
    unsigned int dl = sizeof(dg);
    EVP_Digest(m->jwk, strlen(m->jwk), dg, &dl, EVP_sha256(), NULL);
    char *t = pt_acme_b64url(dg, 32);
    if (!t)
        return fail(m, "out of memory");
    snprintf(m->thumb, sizeof(m->thumb), "%s", t);
    free(t);
    return 0;
}

/* ----------------------------------------------------------------- files
 * Written as root in a directory of root's: never through a symbolic link
 * (O_NOFOLLOW, lstat), always a new temporary file renamed over the old
 * name, so a reader sees the old file or the new one, whole. */

static int state_dir(const char *path, mode_t mode, char *why, size_t whylen)
{
    struct stat st;
    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        snprintf(why, whylen, "%s is not a directory of ours (a symbolic link?)", path);
        return -1;
    }
    if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0) {
        snprintf(why, whylen, "chmod %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_file(const char *path, mode_t mode, const void *data, size_t len, char *why,
                      size_t whylen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(why, whylen, "cannot create %.300s: %s", tmp, strerror(errno));
        return -1;
    }
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    bool closed = false;
    if (off < len || fchmod(fd, mode) < 0 || fsync(fd) < 0 || (closed = true, close(fd) < 0) ||
        rename(tmp, path) < 0) {
        int e = errno;
        if (!closed)
            close(fd);
        snprintf(why, whylen, "cannot write %s: %s", path, strerror(e));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static char *pem_of_key(EVP_PKEY *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *p;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        long n = BIO_get_mem_data(b, &p);
        if (n > 0 && (out = malloc((size_t)n))) {
            memcpy(out, p, (size_t)n);
            *len = (size_t)n;
        }
    }
    BIO_free(b);
    return out;
}

static EVP_PKEY *read_key(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static int account_key(acme *m, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/account.key", dir);
    if ((m->account = read_key(path)))
        return make_jwk(m);
    if (errno != ENOENT && access(path, F_OK) == 0)
        return fail(m, "%s: not a P-256 key in PEM", path);
    size_t n;
    char *pem;
    if (!(m->account = EVP_EC_gen("P-256")) || !(pem = pem_of_key(m->account, &n)))
        return fail(m, "cannot make an account key");
    int rc = write_file(path, 0600, pem, n, m->why, sizeof(m->why));
    OPENSSL_clear_free(pem, n);
    if (rc < 0)
        return -1;
    pt_log_info("acme: new account key %s", path);
    return make_jwk(m);
}

/* ------------------------------------------------------------- the order */

static int poll_status(acme *m, const char *url, const char *want, resp *r)
{
    char st[32] = "";
    for (int i = 0; i < POLL_TRIES; i++) {
        if (post(m, url, NULL, r) < 0)
            return -1;
        json_member_str(r->body, "status", st, sizeof(st));
        if (strcmp(st, want) == 0)
            return 0;
        if (strcmp(st, "invalid") == 0) {
            char detail[512] = "";
            const char *e = r->body + strlen(r->body);
            const char *ch = pt_acme_json_get(r->body, e, "challenges");
            for (const char *c = pt_acme_json_elem(ch, e, 0); c && !detail[0];
                 c = pt_acme_json_next(c, e))
                pt_acme_json_str(pt_acme_json_get(pt_acme_json_get(c, e, "error"), e, "detail"), e,
                                 detail, sizeof(detail));
            fail(m, "%.200s is invalid %s", url, detail);
            resp_free(r);
            return -1;
        }
        resp_free(r);
        sleep(1);
    }
    return fail(m, "%.200s stays %s", url, st);
}

/* tls-alpn-01 (RFC 8737 §3): a self-signed certificate for ident alone,
 * with the critical acmeIdentifier extension holding SHA-256 of the key
 * authorization, and its key, in one PEM file the workers read (the key
 * is thrown away with the file, so 0644 costs nothing). */
static char *alpn_pem(const char *ident, const char *ka, size_t *len)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    X509_EXTENSION *ext = NULL;
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *p;
    unsigned char inner[34] = {0x04, 0x20}; /* DER: OCTET STRING of 32 bytes */
    unsigned int dl = 32;
    if (!k || !x || !gens || !g || !dns || !os || !oid || !b ||
        !EVP_Digest(ka, strlen(ka), inner + 2, &dl, EVP_sha256(), NULL) ||
        !ASN1_STRING_set(dns, ident, -1))
        goto out;
    GENERAL_NAME_set0_value(g, GEN_DNS, dns);
    dns = NULL;
    if (!sk_GENERAL_NAME_push(gens, g))
        goto out;
    g = NULL;
    if (!ASN1_OCTET_STRING_set(os, inner, sizeof(inner)) ||
        !(ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, os)))
        goto out;
    if (X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) &&
        X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
        X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400) && X509_set_pubkey(x, k) &&
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)ident, -1, -1, 0) &&
        X509_set_issuer_name(x, X509_get_subject_name(x)) &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1 && X509_add_ext(x, ext, -1) &&
        X509_sign(x, k, EVP_sha256()) > 0 && PEM_write_bio_X509(b, x) == 1 &&
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        long n = BIO_get_mem_data(b, &p);
        if (n > 0 && (out = malloc((size_t)n))) {
            memcpy(out, p, (size_t)n);
            *len = (size_t)n;
        }
    }
out:
    X509_EXTENSION_free(ext);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(os);
    ASN1_IA5STRING_free(dns);
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(gens);
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b);
    return out;
}

/* http-01 (RFC 8555 §8.3): the key authorization in challenges/TOKEN;
 * tls-alpn-01 (RFC 8737): a certificate in challenges/alpn-IDENT.pem */
static int authorize(acme *m, const char *authz_url, const char *dir)
{
    resp r;
    const char *want = m->a->tls_alpn ? "tls-alpn-01" : "http-01";
    char token[256] = "", url[2048] = "", path[4096], ident[256] = "";
    if (post(m, authz_url, NULL, &r) < 0)
        return -1;
    const char *e = r.body + strlen(r.body), *ch = pt_acme_json_get(r.body, e, "challenges"), *c;
    char st[32] = "";
    json_member_str(r.body, "status", st, sizeof(st));
    pt_acme_json_str(pt_acme_json_get(pt_acme_json_get(r.body, e, "identifier"), e, "value"), e,
                     ident, sizeof(ident));
    if (strcmp(st, "valid") == 0) {
        resp_free(&r);
        return 0;
    }
    for (c = pt_acme_json_elem(ch, e, 0); c; c = pt_acme_json_next(c, e)) {
        char type[32];
        if (pt_acme_json_str(pt_acme_json_get(c, e, "type"), e, type, sizeof(type)) &&
            strcmp(type, want) == 0) {
            pt_acme_json_str(pt_acme_json_get(c, e, "token"), e, token, sizeof(token));
            pt_acme_json_str(pt_acme_json_get(c, e, "url"), e, url, sizeof(url));
            break;
        }
    }
    resp_free(&r);
    if (!token[0] || !url[0] ||
        strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789-_") != strlen(token) ||
        strspn(ident, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(ident) ||
        ident[0] == '.' || !ident[0])
        return fail(m, "%s: no usable %s challenge", ident, want);
    char ka[512];
    int kn = snprintf(ka, sizeof(ka), "%s.%s", token, m->thumb);
    int rc;
    if (m->a->tls_alpn) {
        size_t pl = 0;
        char *pem = alpn_pem(ident, ka, &pl);
        snprintf(path, sizeof(path), "%s/challenges/alpn-%s.pem", dir, ident);
        if (!pem)
            return fail(m, "cannot make the tls-alpn-01 certificate");
        rc = write_file(path, 0644, pem, pl, m->why, sizeof(m->why));
        free(pem);
    } else {
        snprintf(path, sizeof(path), "%s/challenges/%s", dir, token);
        rc = write_file(path, 0644, ka, (size_t)kn, m->why, sizeof(m->why));
    }
    if (rc < 0)
        return -1;
    rc = post(m, url, "{}", &r);
    if (rc == 0) {
        resp_free(&r);
        rc = poll_status(m, authz_url, "valid", &r);
        if (rc == 0)
            resp_free(&r);
    }
    unlink(path);
    if (rc == 0)
        pt_log_info("acme: %s proved by %s", ident, want);
    return rc;
}

/* A CSR (RFC 2986) for the vhost's names as dNSName SANs, DER, base64url */
static char *make_csr(acme *m, EVP_PKEY *k)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    char *out = NULL;
    unsigned char *der = NULL;
    if (!req || !exts || !gens)
        goto out;
    X509_NAME *nm = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)m->v->names[0], -1,
                               -1, 0);
    for (size_t i = 0; i < m->v->nnames; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!g || !s || !ASN1_STRING_set(s, m->v->names[i], -1)) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        sk_GENERAL_NAME_push(gens, g);
    }
    X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
    if (!ext || !sk_X509_EXTENSION_push(exts, ext)) {
        X509_EXTENSION_free(ext);
        goto out;
    }
    int n;
    if (X509_REQ_set_version(req, 0) && X509_REQ_set_pubkey(req, k) &&
        X509_REQ_add_extensions(req, exts) && X509_REQ_sign(req, k, EVP_sha256()) > 0 &&
        (n = i2d_X509_REQ(req, &der)) > 0)
        out = pt_acme_b64url(der, (size_t)n);
out:
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_REQ_free(req);
    return out;
}

static int store(acme *m, const char *dir, EVP_PKEY *k, const char *chain)
{
    char d[4096];
    size_t kn;
    snprintf(d, sizeof(d), "%s/certs/%s", dir, m->v->names[0]);
    if (state_dir(d, 0700, m->why, sizeof(m->why)) < 0)
        return -1;
    char *pem = pem_of_key(k, &kn);
    if (!pem)
        return fail(m, "cannot write the key out");
    /* the key first: a reader that finds the new chain finds its key too
     * (the chain is checked against the key when loaded) */
    int rc = write_file(m->a->key_file, 0600, pem, kn, m->why, sizeof(m->why));
    OPENSSL_clear_free(pem, kn);
    if (rc == 0)
        rc = write_file(m->a->cert_file, 0644, chain, strlen(chain), m->why, sizeof(m->why));
    return rc;
}

static int obtain(acme *m, const char *dir)
{
    resp r;
    char payload[8192], finalize[2048] = "", order[2048], cert_url[2048] = "";
    int rc = -1;
    EVP_PKEY *k = NULL;
    char *csr = NULL;

    /* the directory (RFC 8555 §7.1.1) */
    if (https(m, "GET", m->a->directory, NULL, &r) < 0)
        return -1;
    if (r.status != 200 ||
        !json_member_str(r.body, "newNonce", m->new_nonce, sizeof(m->new_nonce)) ||
        !json_member_str(r.body, "newAccount", m->new_account, sizeof(m->new_account)) ||
        !json_member_str(r.body, "newOrder", m->new_order, sizeof(m->new_order))) {
        fail(m, "%s: not an ACME directory (status %d)", m->a->directory, r.status);
        resp_free(&r);
        return -1;
    }
    resp_free(&r);
    /* the account: the same key finds the same account (§7.3.1) */
    m->kid[0] = '\0';
    if (m->a->email)
        snprintf(payload, sizeof(payload),
                 "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:%s\"]}", m->a->email);
    else
        snprintf(payload, sizeof(payload), "{\"termsOfServiceAgreed\":true}");
    if (post(m, m->new_account, payload, &r) < 0)
        return -1;
    snprintf(m->kid, sizeof(m->kid), "%s", r.location);
    resp_free(&r);
    if (!m->kid[0])
        return fail(m, "newAccount gave no account URL");
    /* the order (§7.4) */
    size_t off = (size_t)snprintf(payload, sizeof(payload), "{\"identifiers\":[");
    for (size_t i = 0; i < m->v->nnames && off < sizeof(payload); i++)
        off +=
            (size_t)snprintf(payload + off, sizeof(payload) - off,
                             "%s{\"type\":\"dns\",\"value\":\"%s\"}", i ? "," : "", m->v->names[i]);
    if (off >= sizeof(payload) - 4)
        return fail(m, "too many names");
    snprintf(payload + off, sizeof(payload) - off, "]}");
    if (post(m, m->new_order, payload, &r) < 0)
        return -1;
    snprintf(order, sizeof(order), "%s", r.location);
    const char *e = r.body + strlen(r.body), *az = pt_acme_json_get(r.body, e, "authorizations"),
               *a;
    json_member_str(r.body, "finalize", finalize, sizeof(finalize));
    char **authz = calloc(m->v->nnames + 1, sizeof(*authz));
    size_t na = 0;
    a = pt_acme_json_elem(az, e, 0);
    for (; authz && na < m->v->nnames && a; na++, a = pt_acme_json_next(a, e)) {
        char u[2048];
        if (!pt_acme_json_str(a, e, u, sizeof(u)) || !(authz[na] = strdup(u)))
            break;
    }
    resp_free(&r);
    if (!order[0] || !finalize[0] || na == 0) {
        fail(m, "newOrder: no order URL, finalize or authorizations");
        goto out_authz;
    }
    for (size_t i = 0; i < na; i++)
        if (authorize(m, authz[i], dir) < 0)
            goto out_authz;
    /* finalize with a CSR for a new key (§7.4) */
    if (!(k = EVP_EC_gen("P-256")) || !(csr = make_csr(m, k))) {
        fail(m, "cannot make a key and a CSR");
        goto out_authz;
    }
    snprintf(payload, sizeof(payload), "{\"csr\":\"%s\"}", csr);
    if (post(m, finalize, payload, &r) < 0)
        goto out_authz;
    resp_free(&r);
    if (poll_status(m, order, "valid", &r) < 0)
        goto out_authz;
    json_member_str(r.body, "certificate", cert_url, sizeof(cert_url));
    resp_free(&r);
    if (!cert_url[0]) {
        fail(m, "a valid order without a certificate URL");
        goto out_authz;
    }
    if (post(m, cert_url, NULL, &r) < 0)
        goto out_authz;
    if (strncmp(r.body, "-----BEGIN CERTIFICATE-----", 27) != 0)
        fail(m, "the certificate download is not PEM");
    else
        rc = store(m, dir, k, r.body);
    resp_free(&r);
out_authz:
    for (size_t i = 0; authz && i < na; i++)
        free(authz[i]);
    free(authz);
    free(csr);
    EVP_PKEY_free(k);
    return rc;
}

/* ---------------------------------------------------------- the process */

/* Seconds until the vhost's certificate is due; 0: now. */
static long due_in(const pt_vhost *v)
{
    const pt_acme_cfg *a = v->acme;
    struct stat st;
    int fd = open(a->cert_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    FILE *f = fdopen(fd, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    bool young = fstat(fd, &st) == 0 && time(NULL) - st.st_mtime < MIN_AGE_S;
    long left = 0;
    if (f)
        fclose(f);
    else
        close(fd);
    if (!x || access(a->key_file, R_OK) != 0)
        goto out;
    /* names added to the vhost need a new certificate */
    for (size_t i = 0; i < v->nnames; i++)
        if (X509_check_host(x, v->names[i], 0, 0, NULL) != 1)
            goto out;
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        goto out;
    long rem = (long)days * 86400 + secs - (long)(a->renew_before_ms / 1000);
    left = rem > 0 ? rem : 0;
    if (left == 0 && young)
        left = MIN_AGE_S - (long)(time(NULL) - st.st_mtime);
out:
    X509_free(x);
    return left;
}

/* The back-off outlives the process (a reload starts a new one):
 * <state>/retry-NAME holds "failures next-attempt-epoch directory"; a
 * changed directory (a fixed configuration) starts afresh. */
static void retry_path(const char *dir, const pt_vhost *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/retry-%s", dir, v->names[0]);
}

static void retry_load(const char *dir, const pt_vhost *v, unsigned *fails, time_t *next)
{
    char path[4200], buf[4200], url[4100];
    retry_path(dir, v, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    unsigned f;
    long long t;
    if (n <= 0)
        return;
    buf[n] = '\0';
    if (sscanf(buf, "%u %lld %4095s", &f, &t, url) != 3 || f > 1000 ||
        strcmp(url, v->acme->directory) != 0)
        return;
    *fails = f;
    *next = (time_t)t;
    long wait = (long)(*next - time(NULL));
    if (wait > 0)
        pt_log_info("acme: certificate for %s: after %u failure(s), next attempt in %lds",
                    v->names[0], f, wait);
}

static void retry_save(const char *dir, const pt_vhost *v, unsigned fails, time_t next)
{
    char path[4200], buf[4200], why[256];
    retry_path(dir, v, path, sizeof(path));
    if (!fails) {
        unlink(path);
        return;
    }
    int n =
        snprintf(buf, sizeof(buf), "%u %lld %.4000s\n", fails, (long long)next, v->acme->directory);
    if (write_file(path, 0600, buf, (size_t)n, why, sizeof(why)) < 0)
        pt_log_warn("acme: %s", why);
}

bool pt_acme_wanted(const pt_config *c)
{
    for (size_t i = 0; i < c->nvhosts; i++)
        if (c->vhosts[i].acme)
            return true;
    return false;
}

static SSL_CTX *client_ctx(const pt_acme_cfg *a, char *why, size_t whylen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (a->ca_file ? SSL_CTX_load_verify_locations(ctx, a->ca_file, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(why, whylen, "cannot load CA certificates %s", a->ca_file ? a->ca_file : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

_Noreturn void pt_acme_main(const pt_config *c, pid_t master)
{
    const char *dir = c->acme_state_dir ? c->acme_state_dir : PT_ACME_STATE_DIR;
    char why[512], sub[4096];
    pt_log_set_role("acme");
    /* a master gone (SIGKILL) takes this process with it: an orphan's
     * parent is init, which must never get our SIGHUP */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        _exit(0);
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* SIGALRM past an attempt's deadline, every second until it ends: it
     * interrupts a read that a trickling server keeps alive (no
     * SA_RESTART), which socket timeouts never would */
    struct sigaction alrm = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &alrm, NULL);
    umask(077);
    /* the parents as mkdir -p would (root's, 0755); the one holding the
     * state directory must not be writable by the workers' user or the
     * programs' (cgi_user), who could otherwise put a directory of their
     * own in its place */
    snprintf(sub, sizeof(sub), "%s", dir);
    for (char *sl = strchr(sub + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
        *sl = '\0';
        if (mkdir(sub, 0755) < 0 && errno != EEXIST)
            break;
        *sl = '/';
    }
    if ((c->creds.drop &&
         pt_rootfile_dir_writable(dir, &c->creds, "the workers' user", why, sizeof(why)) != 0) ||
        (c->cgi_creds.drop &&
         pt_rootfile_dir_writable(dir, &c->cgi_creds, "the programs' user (cgi_user)", why,
                                  sizeof(why)) != 0)) {
        pt_log_error("acme: state directory %s: %s; no certificates will be obtained", dir, why);
        _exit(1);
    }
    snprintf(sub, sizeof(sub), "%s/challenges", dir);
    /* 0711: the workers reach challenges/ without listing the rest */
    if (state_dir(dir, 0711, why, sizeof(why)) < 0 || state_dir(sub, 0755, why, sizeof(why)) < 0) {
        pt_log_error("acme: state directory: %s; no certificates will be obtained", why);
        _exit(1);
    }
    snprintf(sub, sizeof(sub), "%s/certs", dir);
    if (state_dir(sub, 0700, why, sizeof(why)) < 0) {
        pt_log_error("acme: state directory: %s; no certificates will be obtained", why);
        _exit(1);
    }
    size_t n = c->nvhosts;
    time_t *next = calloc(n, sizeof(*next));
    unsigned *fails = calloc(n, sizeof(*fails));
    if (!next || !fails)
        _exit(1);
    for (size_t i = 0; i < n; i++)
        if (c->vhosts[i].acme)
            retry_load(dir, &c->vhosts[i], &fails[i], &next[i]);
    for (;;) {
        time_t now = time(NULL), wake = now + CHECK_PERIOD_S;
        bool got = false;
        for (size_t i = 0; i < n; i++) {
            const pt_vhost *v = &c->vhosts[i];
            if (!v->acme || next[i] > now)
                goto schedule;
            long left = due_in(v);
            if (left > 0) {
                next[i] = now + (left < CHECK_PERIOD_S ? left : CHECK_PERIOD_S);
                goto schedule;
            }
            /* one deadline for the whole attempt: polls, retries and a
             * server that answers a byte at a time all fit in it */
            acme m = {
                .cfg = c, .v = v, .a = v->acme, .end_ms = pt_now_ms() + v->acme->order_timeout_ms};
            pt_log_info("acme: requesting a certificate for %s from %s", v->names[0],
                        v->acme->directory);
            struct itimerval it = {.it_interval = {.tv_sec = 1},
                                   .it_value = {.tv_sec = (time_t)(m.a->order_timeout_ms / 1000),
                                                .tv_usec = 1000 * (m.a->order_timeout_ms % 1000)}};
            setitimer(ITIMER_REAL, &it, NULL);
            int rc =
                (m.ctx = client_ctx(v->acme, m.why, sizeof(m.why))) ? account_key(&m, dir) : -1;
            if (rc == 0)
                rc = obtain(&m, dir);
            memset(&it, 0, sizeof(it));
            setitimer(ITIMER_REAL, &it, NULL);
            if (rc < 0 && left_s(&m) == 0)
                deadline_passed(&m); /* the cause, whatever failed at that moment */
            if (rc == 0) {
                pt_log_info("acme: certificate for %s obtained, stored in %s", v->names[0],
                            v->acme->cert_file);
                fails[i] = 0;
                retry_save(dir, v, 0, 0);
                got = true;
                next[i] = now + MIN_AGE_S;
            } else {
                /* exponential back-off, capped: a CA that is down or
                 * refuses is not hammered */
                unsigned sh = fails[i] < 11 ? fails[i] : 11;
                long delay = (long)BACKOFF_FIRST_S << sh;
                if (delay > BACKOFF_MAX_S)
                    delay = BACKOFF_MAX_S;
                fails[i]++;
                next[i] = time(NULL) + delay;
                retry_save(dir, v, fails[i], next[i]);
                pt_log_error("acme: certificate for %s failed (attempt %u): %s; retrying in %lds",
                             v->names[0], fails[i], m.why[0] ? m.why : "unknown error", delay);
            }
            EVP_PKEY_free(m.account);
            free(m.jwk);
            SSL_CTX_free(m.ctx);
        schedule:
            if (v->acme && next[i] < wake)
                wake = next[i];
        }
        if (got) {
            /* the master loads the new certificates as on any reload (a
             * new ACME process comes with it) */
            pt_log_info("acme: asking the master to reload");
            if (getppid() == master)
                kill(master, SIGHUP);
        }
        now = time(NULL);
        if (wake > now)
            sleep((unsigned)(wake - now));
    }
}

/* ------------------------------------------------------------ the workers */

ssize_t pt_acme_challenge(const pt_config *c, const char *path, size_t len, char *out, size_t cap)
{
    size_t pl = sizeof(PT_ACME_CHALLENGE_PREFIX) - 1;
    const char *tok = path + pl;
    size_t tl = len - pl;
    char file[4200];
    if (len <= pl || tl > 200 || memcmp(path, PT_ACME_CHALLENGE_PREFIX, pl) != 0)
        return -1;
    for (size_t i = 0; i < tl; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[i]) ||
            !tok[i])
            return -1;
    snprintf(file, sizeof(file), "%s/challenges/%.*s",
             c->acme_state_dir ? c->acme_state_dir : PT_ACME_STATE_DIR, (int)tl, tok);
    int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size < cap)
        n = read(fd, out, cap);
    close(fd);
    return n;
}
