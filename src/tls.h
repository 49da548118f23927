/* tls.h: TLS over the socket layer (OpenSSL 3): the server context built
 * from tls = {...} by the master, and the per-connection operations that
 * drive the handshake from the event loop and encrypt files a bounded
 * amount at a time. */
#ifndef PT_TLS_H
#define PT_TLS_H

#include "first.h"
#include "conf.h"
#include "sock.h"

#define PT_TLS_V12 0x0303 /* TLS1_2_VERSION */
#define PT_TLS_V13 0x0304 /* TLS1_3_VERSION */

/* Build t->ctx: certificate chain, key (checked to match), protocols,
 * ciphers, groups, ALPN. 0, or -1 with err; a certificate that expired or
 * expires within 30 days leaves a line in warn (not an error). */
int pt_tls_ctx_load(pt_tls_cfg *t, char *err, size_t errlen, char *warn, size_t warnlen);
void pt_tls_ctx_free(pt_tls_cfg *t);
void pt_tls_ctx_release(struct ssl_ctx_st *ctx);
/* Clients naming a vhost with a certificate of its own get that one (SNI);
 * the others get the top-level certificate. */
void pt_tls_sni_setup(pt_config *c);
/* Where tls-alpn-01 challenge certificates are (acme.c): the state
 * directory, or NULL when no vhost has acme. */
void pt_tls_acme_dir(const char *state_dir);
/* Session ticket keys (master): a new one now, the previous one still
 * accepted, the one before wiped. Called every tls.ticket_key_rotate. */
void pt_tls_tickets_rotate(void);
/* In a worker after the fork: the shared ticket keys become read-only. */
void pt_tls_tickets_readonly(void);
/* In a process that serves no client (ACME) after the fork: the keys are
 * unmapped, so that process never holds them. */
void pt_tls_tickets_forget(void);
/* One line at start: kernel TLS for files, or the read-and-encrypt path. */
void pt_tls_log_start(const pt_config *c);

/* Turn an accepted socket into a TLS server socket (handshake on the
 * first read). 0, or -1 (out of memory). */
int pt_tls_sock_init(pt_sock *s, struct ssl_ctx_st *ctx, int fd);

/* What CGI and FastCGI programs see (mod_ssl's names). false: not TLS. */
typedef struct pt_tls_info {
    const char *protocol; /* SSL_PROTOCOL, "TLSv1.3" */
    const char *cipher;   /* SSL_CIPHER, OpenSSL's name */
    const char *sni;      /* SSL_TLS_SNI, NULL when the client sent none */
    bool resumed;         /* SSL_SESSION_RESUMED: "Resumed" / "Initial" */
    /* with verify_client on (else NULL): SSL_CLIENT_VERIFY "SUCCESS",
     * "NONE", "FAILED:reason"; with a certificate, SSL_CLIENT_S_DN and
     * SSL_CLIENT_I_DN (RFC 4514), SSL_CLIENT_SERIAL (hex), SSL_CLIENT_CERT
     * (PEM). They live as long as the connection. */
    const char *client_verify, *client_s_dn, *client_i_dn, *client_serial, *client_cert;
} pt_tls_info;
bool pt_tls_info_get(const pt_sock *s, pt_tls_info *out);

/* The request's Host names vhost v, whose certificate settings ask for
 * client certificates, but the handshake (by SNI, or without it) ran
 * under another context: its rules were never applied (RFC 9110 §15.5.20,
 * 421, as Apache's mod_ssl answers). */
bool pt_tls_misdirected(const pt_sock *s, const pt_vhost *v);
/* The handshake chose HTTP/2 (ALPN "h2"): the connection speaks it. */
bool pt_tls_alpn_h2(pt_sock *s);
/* An HTTP/2 connection's record buffers: kept from one record to the next
 * while it is busy (hold: each read and write round would allocate and
 * free both), given back when it has been idle a while (release). Not
 * TLS: nothing. */
void pt_tls_buffers_hold(pt_sock *s);
void pt_tls_buffers_release(pt_sock *s);
/* Response bytes on s are encrypted in user space (TLS without kernel
 * TLS): a file's content passes through memory anyway, no sendfile. */
bool pt_tls_copies(const pt_sock *s);

#endif
