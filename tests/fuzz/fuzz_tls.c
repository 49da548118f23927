/* fuzz_tls.c: a client's bytes as they reach a TLS port: through portico's
 * TLS socket layer (tls.c: the first-byte check, plain HTTP on a TLS port,
 * the handshake and record reads, pending input, shutdown) with the
 * context portico builds (pt_tls_ctx_load: protocols, ciphers, groups,
 * ALPN and session-ticket callbacks), over a socketpair; bytes the layer
 * delivers go to the head parser as conn.c hands them over.
 *
 * OpenSSL is not instrumented, so libFuzzer cannot steer through its
 * parsers, and a random input never finishes a handshake (the server's key
 * share is random, so no Finished can be right): the first byte picks a
 * real ClientHello made at start by an OpenSSL client (TLS 1.3, or 1.2
 * only) to put before the rest, or to corrupt with it, so that every run
 * reaches the server's flight and the states after it. Decrypted
 * application data stays out of reach; plain HTTP on the TLS port is how
 * bytes get to the head parser here. No seed files: the ClientHellos are
 * made at run time. */
#include "fuzz.h"
#include "fuzz_tls_ctx.h"

#include "h1_head.h"
#include "log.h"
#include "tls.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static struct ssl_ctx_st *server_ctx;
static unsigned char hello13[2048], hello12[2048];
static size_t hello13_len, hello12_len;

static void make_server_ctx(void)
{
    server_ctx = fz_tls_server_ctx("fuzz-tls", 1);
}

/* The first flight of an OpenSSL client (SNI, ALPN http/1.1), as a
 * browser's would reach the port. */
static size_t make_hello(int max_version, unsigned char *out, size_t cap)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    FZ_CHECK(cctx != NULL);
    SSL_CTX_set_max_proto_version(cctx, max_version);
    SSL *c = SSL_new(cctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    FZ_CHECK(c && rb && wb);
    SSL_set_bio(c, rb, wb);
    SSL_set_connect_state(c);
    SSL_set_tlsext_host_name(c, "localhost");
    SSL_set_alpn_protos(c, (const unsigned char *)"\x08http/1.1", 9);
    FZ_CHECK(SSL_do_handshake(c) <= 0); /* waits for the ServerHello */
    int n = BIO_read(wb, out, (int)cap);
    FZ_CHECK(n > 5 && out[0] == 0x16);
    SSL_free(c);
    SSL_CTX_free(cctx);
    ERR_clear_error();
    return (size_t)n;
}

static void init(void)
{
    pt_log_open("stderr", PT_LOG_ERROR); /* a failed handshake logs at info: once per input */
    make_server_ctx();
    hello13_len = make_hello(TLS1_3_VERSION, hello13, sizeof(hello13));
    hello12_len = make_hello(TLS1_2_VERSION, hello12, sizeof(hello12));
}

/* What arrived so far, as conn.c parses it: the end of the head, then the
 * head itself; nothing may point outside the buffer. */
static void parse(const char *buf, size_t len)
{
    int r = pt_h1_find_head_end(buf, len, 4096);
    if (r <= 0)
        return;
    FZ_CHECK((size_t)r <= len);
    pt_header hdrs[32];
    pt_head h;
    memset(&h, 0, sizeof(h));
    if (pt_h1_parse_head(buf, (size_t)r, hdrs, 32, &h) == 0)
        FZ_CHECK(h.target.len > 0 && fz_inside(buf, (size_t)r, h.target.p, h.target.len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned char stream[8192];
    if (!server_ctx)
        init();
    if (size == 0)
        return 0;
    /* mode: 0 the bytes alone; 1, 2 after a TLS 1.3 / 1.2 ClientHello;
     * 3 XOR-ed into a TLS 1.3 ClientHello from the offset the next byte
     * says (a hello's fields corrupted), the rest after it */
    unsigned mode = data[0] % 4;
    const unsigned char *rest = data + 1;
    size_t n = size - 1, len = 0;
    if (mode == 1 || mode == 3) {
        memcpy(stream, hello13, hello13_len);
        len = hello13_len;
    } else if (mode == 2) {
        memcpy(stream, hello12, hello12_len);
        len = hello12_len;
    }
    if (mode == 3 && n > 0) {
        size_t off = 5 + rest[0] % (hello13_len - 5); /* the record header stays */
        rest++, n--;
        size_t k = PT_MIN(n, hello13_len - off);
        for (size_t i = 0; i < k; i++)
            stream[off + i] ^= rest[i];
        rest += k, n -= k;
    }
    n = PT_MIN(n, sizeof(stream) - len);
    memcpy(stream + len, rest, n);
    len += n;

    /* the client's bytes, then its FIN: the server reads until it ends */
    int sv[2];
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int big = 1 << 20;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    FZ_CHECK(len == 0 || write(sv[0], stream, len) == (ssize_t)len);
    shutdown(sv[0], SHUT_WR);

    pt_sock s;
    pt_sock_init_plain(&s, sv[1]);
    FZ_CHECK(pt_tls_sock_init(&s, server_ctx, sv[1]) == 0);
    static char in[8192];
    size_t got = 0;
    for (int turn = 0; turn < 64 && got < sizeof(in); turn++) {
        ssize_t r = pt_sock_read(&s, in + got, sizeof(in) - got);
        if (r > 0) {
            FZ_CHECK((size_t)r <= sizeof(in) - got);
            got += (size_t)r;
            parse(in, got);
            continue;
        }
        /* the end, an error, or a would-block (the client's FIN is
         * queued, so nothing more comes): what an idle check would see */
        if (r < 0 && errno == EAGAIN)
            (void)pt_sock_pending(&s);
        break;
    }
    /* only plain HTTP on the TLS port gets bytes through: no handshake
     * can finish (see above) */
    FZ_CHECK(got == 0 || (s.flags & PT_SOCK_PLAIN_ON_TLS));
    /* plain HTTP on the TLS port (a method's capital first): handed over
     * whole and unchanged, for the 400 conn.c answers in plain HTTP */
    if (mode == 0 && n > 0 && stream[0] >= 'A' && stream[0] <= 'Z')
        FZ_CHECK(got == n && memcmp(in, stream, n) == 0);
    /* an untouched ClientHello alone is answered with the server's flight
     * (a handshake record, RFC 8446 §5.1): the seam reaches past it */
    if ((mode == 1 || mode == 2) && n == 0) {
        unsigned char b = 0;
        FZ_CHECK(recv(sv[0], &b, 1, MSG_PEEK) == 1 && b == 0x16);
    }
    pt_tls_info info;
    (void)pt_tls_info_get(&s, &info);
    pt_sock_shutdown(&s);
    pt_sock_close(&s);
    close(sv[0]);
    ERR_clear_error();
    return 0;
}
