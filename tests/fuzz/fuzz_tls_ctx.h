/* fuzz_tls_ctx.h: the TLS server context of the TLS fuzz targets: a
 * self-signed ECDSA P-256 certificate for localhost (serial number serial)
 * written to two temporary PEM files named after tag, loaded through
 * pt_tls_ctx_load as an operator's would be (TLS 1.2 and 1.3, tickets),
 * then removed. Aborts when anything fails. */
#ifndef PT_FUZZ_TLS_CTX_H
#define PT_FUZZ_TLS_CTX_H

struct ssl_ctx_st;

struct ssl_ctx_st *fz_tls_server_ctx(const char *tag, long serial);

#endif
