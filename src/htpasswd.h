/* htpasswd.h: HTTP Basic credentials against Apache htpasswd files:
 * bcrypt ($2y$), APR1-MD5 ($apr1$), SHA-crypt ($5$, $6$), yescrypt ($y$)
 * and the rest libcrypt knows, and {SHA}. Files are re-read when they
 * change; verified credentials are remembered briefly (per worker), so a
 * slow hash costs its time once, not on every request. */
#ifndef PT_HTPASSWD_H
#define PT_HTPASSWD_H

#include "first.h"

/* Verified credentials are remembered this long (and at most
 * PT_HTPASSWD_CACHE of them per process). */
#define PT_HTPASSWD_TTL_MS 60000u
#define PT_HTPASSWD_CACHE 256u

/* Compute the APR1-MD5 hash ("$apr1$SALT$HASH", at most 37 bytes + NUL)
 * of pw with salt (up to 8 bytes used) into out (64 bytes). */
void pt_htpasswd_apr1(const char *pw, size_t pwlen, const char *salt, size_t saltlen, char out[64]);
/* Does pw match the stored hash? 1 yes, 0 no, -1 the format is not one
 * portico can check (logged by the caller). Constant time in the
 * comparison (CRYPTO_memcmp). */
int pt_htpasswd_verify(const char *hash, const char *pw, size_t pwlen);
/* The same, through the per-process cache of verified credentials (keyed
 * by a SHA-256 of user, password and stored hash). */
int pt_htpasswd_check(const char *user, size_t ulen, const char *pw, size_t pwlen, const char *hash,
                      uint64_t now_ms);

/* The two halves of pt_htpasswd_check, for a verification made elsewhere
 * (authq.c): was it verified lately? remember that it was. */
bool pt_htpasswd_cached(const char *user, size_t ulen, const char *pw, size_t pwlen,
                        const char *hash, uint64_t now_ms);
void pt_htpasswd_remember(const char *user, size_t ulen, const char *pw, size_t pwlen,
                          const char *hash, uint64_t now_ms);
/* Is hash in a format made to be slow (a helper thread should verify it)? */
bool pt_htpasswd_is_slow(const char *hash);

/* The stored hash of user in the htpasswd file path (NUL-terminated, valid
 * until the next call), or NULL when the user is not there. The file is
 * looked at (stat) at most once a second and re-read when its inode, size
 * or modification time changed. Returns -1 (with a reason in err) when
 * the file cannot be read: the caller fails closed. */
int pt_htpasswd_lookup(const char *path, const char *user, size_t ulen, uint64_t now_ms,
                       const char **hash, char *err, size_t errlen);

/* Strict base64 (RFC 4648 §4, padding required) into out (cap bytes):
 * the decoded length, or -1. */
ssize_t pt_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
