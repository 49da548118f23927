/* htpasswd.c: Basic credentials against htpasswd files. Apache's htpasswd
 * writes APR1-MD5 by default, which libxcrypt does not know: it is done
 * here on libcrypto's MD5 after the algorithm's description (Poul-Henning
 * Kamp's MD5-crypt with the magic "$apr1$"). {SHA} is base64(SHA-1);
 * everything else goes to libcrypt's crypt_rn. */
#include "first.h"
#include "htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- base64 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(char ch)
{
    const char *p = ch ? strchr(b64, ch) : NULL;
    return p ? (int)(p - b64) : -1;
}

ssize_t pt_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    size_t n = 0;
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = b64_val(in[i + k])) < 0)
                return -1; /* data after padding, or not the alphabet */
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = 3 - (size_t)pad;
        if (n + take > cap)
            return -1;
        for (size_t k = 0; k < take; k++)
            out[n++] = (unsigned char)(w >> (16 - 8 * k));
    }
    return (ssize_t)n;
}

static size_t base64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            w |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            w |= in[i + 2];
        out[n++] = b64[w >> 18 & 63];
        out[n++] = b64[w >> 12 & 63];
        out[n++] = i + 1 < len ? b64[w >> 6 & 63] : '=';
        out[n++] = i + 2 < len ? b64[w & 63] : '=';
    }
    out[n] = '\0';
    return n;
}

/* ------------------------------------------------------------ APR1-MD5 */

static void md5_add(EVP_MD_CTX *m, const void *p, size_t n)
{
    EVP_DigestUpdate(m, p, n);
}

/* crypt's own base64 order, least significant 6 bits first */
static char *to64(char *s, uint32_t v, int n)
{
    static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    while (n-- > 0) {
        *s++ = itoa64[v & 0x3f];
        v >>= 6;
    }
    return s;
}

void pt_htpasswd_apr1(const char *pw, size_t pwlen, const char *salt, size_t saltlen, char out[64])
{
    static const char magic[] = "$apr1$";
    unsigned char fin[16];
    unsigned int fl = 0;
    const EVP_MD *md5 = EVP_md5();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new(), *alt = EVP_MD_CTX_new();
    out[0] = '\0';
    if (!ctx || !alt || !md5)
        goto out;
    const char *dollar = memchr(salt, '$', saltlen);
    if (dollar)
        saltlen = (size_t)(dollar - salt);
    saltlen = PT_MIN(saltlen, (size_t)8);

    /* the alternate sum: password, salt, password */
    EVP_DigestInit_ex(alt, md5, NULL);
    md5_add(alt, pw, pwlen);
    md5_add(alt, salt, saltlen);
    md5_add(alt, pw, pwlen);
    EVP_DigestFinal_ex(alt, fin, &fl);

    EVP_DigestInit_ex(ctx, md5, NULL);
    md5_add(ctx, pw, pwlen);
    md5_add(ctx, magic, PT_SLEN(magic));
    md5_add(ctx, salt, saltlen);
    for (size_t left = pwlen; left > 0; left -= PT_MIN(left, (size_t)16))
        md5_add(ctx, fin, PT_MIN(left, (size_t)16));
    /* the original's quirk: a NUL byte for each set bit of the length,
     * else the password's first byte */
    for (size_t i = pwlen; i; i >>= 1)
        md5_add(ctx, (i & 1) ? "" : pw, 1);
    EVP_DigestFinal_ex(ctx, fin, &fl);

    /* 1000 rounds that mix password, salt and the sum, so that a guess
     * costs more than one MD5 */
    for (int i = 0; i < 1000; i++) {
        EVP_DigestInit_ex(ctx, md5, NULL);
        if (i & 1)
            md5_add(ctx, pw, pwlen);
        else
            md5_add(ctx, fin, 16);
        if (i % 3)
            md5_add(ctx, salt, saltlen);
        if (i % 7)
            md5_add(ctx, pw, pwlen);
        if (i & 1)
            md5_add(ctx, fin, 16);
        else
            md5_add(ctx, pw, pwlen);
        EVP_DigestFinal_ex(ctx, fin, &fl);
    }

    char *p = out;
    memcpy(p, magic, PT_SLEN(magic));
    p += PT_SLEN(magic);
    memcpy(p, salt, saltlen);
    p += saltlen;
    *p++ = '$';
    static const unsigned char order[5][3] = {
        {0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}};
    for (int k = 0; k < 5; k++)
        p = to64(p,
                 (uint32_t)fin[order[k][0]] << 16 | (uint32_t)fin[order[k][1]] << 8 |
                     fin[order[k][2]],
                 4);
    p = to64(p, fin[11], 2);
    *p = '\0';
out:
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(alt);
    OPENSSL_cleanse(fin, sizeof(fin));
}

/* ---------------------------------------------------------- verification */

static bool same(const char *computed, const char *stored)
{
    size_t a = strlen(computed), b = strlen(stored);
    /* the length of a hash of a given format is no secret */
    return a == b && a > 0 && CRYPTO_memcmp(computed, stored, a) == 0;
}

int pt_htpasswd_verify(const char *hash, const char *pw, size_t pwlen)
{
    char buf[64];
    int rc = 0;
    if (memchr(pw, '\0', pwlen))
        return 0; /* no scheme here can take a NUL byte */
    if (strncmp(hash, "$apr1$", 6) == 0) {
        pt_htpasswd_apr1(pw, pwlen, hash + 6, strlen(hash + 6), buf);
        rc = same(buf, hash);
    } else if (strncmp(hash, "{SHA}", 5) == 0) {
        unsigned char d[20];
        unsigned int dl = 0;
        if (!EVP_Digest(pw, pwlen, d, &dl, EVP_sha1(), NULL) || dl != 20)
            return -1;
        memcpy(buf, "{SHA}", 5);
        base64_encode(d, 20, buf + 5);
        rc = same(buf, hash);
    } else if (hash[0] == '$' || strlen(hash) == 13) {
        /* modular crypt formats ($2y$, $5$, $6$, $y$, $1$...) and old DES
         * crypt (htpasswd -d); crypt_rn wants the password NUL-terminated */
        /* 32 KiB of state: not on the stack, and one per call, since the
         * helper thread (authq.c) and the loop may both verify */
        struct crypt_data *cd = calloc(1, sizeof(*cd));
        char *p = malloc(pwlen + 1);
        if (!p || !cd) {
            free(p);
            free(cd);
            return -1;
        }
        memcpy(p, pw, pwlen);
        p[pwlen] = '\0';
        const char *out = crypt_rn(p, hash, cd, (int)sizeof(*cd));
        OPENSSL_cleanse(p, pwlen);
        free(p);
        /* libxcrypt fails with NULL or a "*" string for what it cannot do */
        rc = !out || out[0] == '*' ? -1 : same(out, hash);
        OPENSSL_cleanse(cd, sizeof(*cd));
        free(cd);
        return rc;
    } else {
        return -1;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

typedef struct cred_slot {
    unsigned char key[32];
    uint64_t expires;
} cred_slot;

static cred_slot creds[PT_HTPASSWD_CACHE];

/* Keys are made per request, by the loop's thread alone (authq's thread
 * only verifies): the digest is fetched once and the context reused, since
 * OpenSSL 3's implicit fetch and a fresh context cost more than the
 * SHA-256 itself (about 2/3 of the credentials' cost per request). */
static EVP_MD *key_md;
static EVP_MD_CTX *key_ctx;

static bool cred_key(const char *user, size_t ulen, const char *pw, size_t pwlen, const char *hash,
                     unsigned char key[32])
{
    if (!key_md && !(key_md = EVP_MD_fetch(NULL, "SHA2-256", NULL)))
        return false;
    if (!key_ctx && !(key_ctx = EVP_MD_CTX_new()))
        return false;
    /* "user\0password\0hash" in one update: each EVP call costs */
    char buf[1536];
    size_t hl = strlen(hash), n = ulen + 1 + pwlen + 1 + hl;
    if (n > sizeof(buf))
        return false; /* never remembered: verified each time */
    memcpy(buf, user, ulen);
    buf[ulen] = '\0';
    memcpy(buf + ulen + 1, pw, pwlen);
    buf[ulen + 1 + pwlen] = '\0';
    memcpy(buf + ulen + pwlen + 2, hash, hl);
    unsigned int kl = 0;
    bool ok = EVP_DigestInit_ex2(key_ctx, key_md, NULL) && EVP_DigestUpdate(key_ctx, buf, n) &&
              EVP_DigestFinal_ex(key_ctx, key, &kl) && kl == 32;
    OPENSSL_cleanse(buf, n);
    return ok;
}

/* direct-mapped: a collision only costs one more verification */
static cred_slot *cred_slot_of(const unsigned char key[32])
{
    return &creds[(key[0] | (unsigned)key[1] << 8) % PT_HTPASSWD_CACHE];
}

bool pt_htpasswd_cached(const char *user, size_t ulen, const char *pw, size_t pwlen,
                        const char *hash, uint64_t now_ms)
{
    unsigned char key[32];
    if (!cred_key(user, ulen, pw, pwlen, hash, key))
        return false;
    const cred_slot *s = cred_slot_of(key);
    return s->expires > now_ms && CRYPTO_memcmp(s->key, key, 32) == 0;
}

void pt_htpasswd_remember(const char *user, size_t ulen, const char *pw, size_t pwlen,
                          const char *hash, uint64_t now_ms)
{
    unsigned char key[32];
    if (!cred_key(user, ulen, pw, pwlen, hash, key))
        return;
    cred_slot *s = cred_slot_of(key);
    memcpy(s->key, key, 32);
    s->expires = now_ms + PT_HTPASSWD_TTL_MS;
}

bool pt_htpasswd_is_slow(const char *hash)
{
    /* APR1 (1000 MD5) and {SHA} take microseconds; crypt_rn's formats are
     * made to be slow (bcrypt, SHA-crypt, yescrypt) */
    return hash[0] == '$' && strncmp(hash, "$apr1$", 6) != 0;
}

int pt_htpasswd_check(const char *user, size_t ulen, const char *pw, size_t pwlen, const char *hash,
                      uint64_t now_ms)
{
    if (pt_htpasswd_cached(user, ulen, pw, pwlen, hash, now_ms))
        return 1;
    int rc = pt_htpasswd_verify(hash, pw, pwlen);
    if (rc == 1)
        pt_htpasswd_remember(user, ulen, pw, pwlen, hash, now_ms);
    return rc;
}

/* ------------------------------------------------------------ the files */

#define MAX_FILES 64
#define MAX_FILE_SIZE (16u * 1024u * 1024u)

typedef struct user_ent {
    const char *user; /* into data, NUL-terminated */
    size_t ulen;
    const char *hash;
} user_ent;

typedef struct pw_file {
    char *path;
    uint64_t checked_ms; /* last stat() */
    bool known;          /* the stat fields below describe data */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char *data;
    user_ent *users;
    size_t nusers;
    char err[160]; /* non-empty: the file could not be read */
} pw_file;

static pw_file files[MAX_FILES];
static size_t nfiles;

static void parse_users(pw_file *f, size_t len)
{
    size_t cap = 0;
    char *p = f->data, *end = f->data + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        *le = '\0';
        if (le > p && le[-1] == '\r')
            le[-1] = '\0';
        char *colon = strchr(p, ':');
        /* Apache skips blank lines and comments; a line without ':' is no user */
        if (p[0] != '#' && colon && colon > p) {
            *colon = '\0';
            char *h = colon + 1;
            char *more = strchr(h, ':'); /* htdigest-like extra fields: ignored */
            if (more)
                *more = '\0';
            if (f->nusers == cap) {
                cap = cap ? cap * 2 : 16;
                user_ent *u = realloc(f->users, cap * sizeof(*u));
                if (!u)
                    return;
                f->users = u;
            }
            f->users[f->nusers++] = (user_ent){p, (size_t)(colon - p), h};
        }
        p = le + 1;
    }
}

static void load_file(pw_file *f)
{
    free(f->data);
    free(f->users);
    f->data = NULL;
    f->users = NULL;
    f->nusers = 0;
    f->known = false;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat fst;
    if (fd < 0 || fstat(fd, &fst) < 0) {
        snprintf(f->err, sizeof(f->err), "cannot open: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(fst.st_mode) || fst.st_size > (off_t)MAX_FILE_SIZE) {
        snprintf(f->err, sizeof(f->err), "not a regular file of at most 16 MiB");
        goto out;
    }
    f->data = malloc((size_t)fst.st_size + 1);
    if (!f->data) {
        snprintf(f->err, sizeof(f->err), "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)fst.st_size) {
        ssize_t n = read(fd, f->data + got, (size_t)fst.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(f->err, sizeof(f->err), "cannot read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    f->data[got] = '\0';
    parse_users(f, got);
    f->err[0] = '\0';
    /* what was read is described by the opened file's identity, so a
     * replacement during the read is seen at the next look */
    f->known = true;
    f->dev = fst.st_dev;
    f->ino = fst.st_ino;
    f->size = fst.st_size;
    f->mtime = fst.st_mtim;
out:
    if (fd >= 0)
        close(fd);
}

static pw_file *get_file(const char *path, uint64_t now_ms)
{
    pw_file *f = NULL;
    for (size_t i = 0; i < nfiles && !f; i++)
        if (strcmp(files[i].path, path) == 0)
            f = &files[i];
    if (!f) {
        char *copy = strdup(path);
        if (!copy)
            return NULL;
        if (nfiles == MAX_FILES) {
            /* more files than slots (many vhosts): reuse the oldest look */
            f = &files[0];
            for (size_t i = 1; i < nfiles; i++)
                if (files[i].checked_ms < f->checked_ms)
                    f = &files[i];
            free(f->path);
            free(f->data);
            free(f->users);
            memset(f, 0, sizeof(*f));
        } else {
            f = &files[nfiles++];
        }
        f->path = copy;
        f->checked_ms = now_ms;
        load_file(f);
        return f;
    }
    if (now_ms - f->checked_ms < 1000 && f->checked_ms <= now_ms)
        return f;
    f->checked_ms = now_ms;
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(f->err, sizeof(f->err), "cannot open: %s", strerror(errno));
        f->known = false;
        return f;
    }
    if (!f->known || st.st_dev != f->dev || st.st_ino != f->ino || st.st_size != f->size ||
        st.st_mtim.tv_sec != f->mtime.tv_sec || st.st_mtim.tv_nsec != f->mtime.tv_nsec)
        load_file(f);
    return f;
}

int pt_htpasswd_lookup(const char *path, const char *user, size_t ulen, uint64_t now_ms,
                       const char **hash, char *err, size_t errlen)
{
    *hash = NULL;
    pw_file *f = get_file(path, now_ms);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (f->err[0]) {
        snprintf(err, errlen, "%s", f->err);
        return -1;
    }
    for (size_t i = 0; i < f->nusers; i++)
        if (f->users[i].ulen == ulen && memcmp(f->users[i].user, user, ulen) == 0) {
            *hash = f->users[i].hash;
            break;
        }
    return 0;
}
