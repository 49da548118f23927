/* fuzz_tls_rec.c: the decrypted-record path. fuzz_tls cannot get there
 * (no random input finishes a handshake), so the seam here is a real
 * OpenSSL client in the same process: every run it makes a handshake with
 * portico's TLS socket layer (tls.c, the context pt_tls_ctx_load builds)
 * over a socketpair, full or resumed, TLS 1.3 or 1.2, then the input
 * becomes application data: chunks the client encrypts one record each,
 * records corrupted on the way (a byte XOR-ed) or raw bytes put between
 * them, and at the end a close_notify or a bare FIN. What the layer
 * delivers goes to the head parser as conn.c hands it over.
 *
 * Invariants: what the server reads is always a prefix of what the client
 * encrypted (AEAD: a corrupted record ends the stream, never alters it),
 * and all of it when nothing was corrupted; the head parser's slices stay
 * inside the bytes read.
 *
 * Input: byte 0 picks the protocol (bit 0: TLS 1.2), resumption (bit 1)
 * and the ending (bit 2: close_notify); then chunks of [op][len][bytes]:
 * op bit 7 = the bytes go out raw, unencrypted; op bits 0-6, when not 0,
 * XOR byte (op % record length) of the chunk's record with 0x5a. */
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
static SSL_CTX *client_ctx[2]; /* [0] TLS 1.3, [1] TLS 1.2 */
static SSL_SESSION *session[2];

static void make_server_ctx(void)
{
    server_ctx = fz_tls_server_ctx("fuzz-tlsrec", 2);
}

/* One connection: the client SSL talks through memory BIOs, so that its
 * records can be corrupted between it and the socket. */
typedef struct conn_link {
    int sv[2]; /* [0] the client's end, [1] the server's */
    SSL *c;
    BIO *crd, *cwr;
    pt_sock s;
} conn_link;

/* The client's pending output onto the socket (flip: XOR one byte of it). */
static void client_out(conn_link *l, unsigned flip)
{
    static unsigned char buf[1 << 16];
    int n;
    while ((n = BIO_read(l->cwr, buf, sizeof(buf))) > 0) {
        if (flip)
            buf[flip % (unsigned)n] ^= 0x5a;
        flip = 0;
        FZ_CHECK(write(l->sv[0], buf, (size_t)n) == n);
    }
}

/* What the server sent, into the client's read BIO. */
static void client_in(conn_link *l)
{
    static unsigned char buf[1 << 16];
    ssize_t n;
    while ((n = read(l->sv[0], buf, sizeof(buf))) > 0)
        FZ_CHECK(BIO_write(l->crd, buf, (int)n) == (int)n);
}

static void link_open(conn_link *l, int v12, int resume)
{
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, l->sv) == 0);
    int big = 1 << 20;
    (void)setsockopt(l->sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    (void)setsockopt(l->sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    pt_sock_init_plain(&l->s, l->sv[1]);
    FZ_CHECK(pt_tls_sock_init(&l->s, server_ctx, l->sv[1]) == 0);
    l->c = SSL_new(client_ctx[v12]);
    l->crd = BIO_new(BIO_s_mem());
    l->cwr = BIO_new(BIO_s_mem());
    FZ_CHECK(l->c && l->crd && l->cwr);
    SSL_set_bio(l->c, l->crd, l->cwr);
    SSL_set_connect_state(l->c);
    SSL_set_tlsext_host_name(l->c, "localhost");
    SSL_set_alpn_protos(l->c, (const unsigned char *)"\x08http/1.1", 9);
    if (resume && session[v12])
        SSL_set_session(l->c, session[v12]);
    /* each side moves until the client is done; the server finishes on
     * the client's last flight, with the first read of application data */
    char tmp[64];
    for (int turn = 0; turn < 16; turn++) {
        int r = SSL_do_handshake(l->c);
        client_out(l, 0);
        if (r == 1)
            return;
        FZ_CHECK(SSL_get_error(l->c, r) == SSL_ERROR_WANT_READ);
        FZ_CHECK(pt_sock_read(&l->s, tmp, sizeof(tmp)) < 0 && errno == EAGAIN);
        client_in(l);
    }
    FZ_CHECK(!"the handshake finishes");
}

static void link_close(conn_link *l)
{
    pt_sock_shutdown(&l->s);
    pt_sock_close(&l->s);
    /* a client SSL freed without a shutdown marks its session not
     * resumable (TLS 1.2): the one make_session keeps must stay so */
    SSL_set_shutdown(l->c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(l->c);
    close(l->sv[0]);
    ERR_clear_error();
}

/* A session per protocol to resume from: a handshake, a response (which
 * brings the TLS 1.3 tickets along), and the client reads it. */
static void make_session(int v12)
{
    conn_link l;
    link_open(&l, v12, 0);
    static const char resp[] = "HTTP/1.1 204 No Content\r\n\r\n";
    struct iovec iov = {(void *)(uintptr_t)resp, sizeof(resp) - 1};
    FZ_CHECK(pt_sock_writev(&l.s, &iov, 1) == (ssize_t)iov.iov_len);
    client_in(&l);
    char buf[256];
    FZ_CHECK(SSL_read(l.c, buf, sizeof(buf)) == (int)iov.iov_len);
    session[v12] = SSL_get1_session(l.c);
    FZ_CHECK(session[v12] && SSL_SESSION_is_resumable(session[v12]));
    link_close(&l);
}

static void init(void)
{
    pt_log_open("stderr", PT_LOG_ERROR);
    make_server_ctx();
    for (int v12 = 0; v12 < 2; v12++) {
        client_ctx[v12] = SSL_CTX_new(TLS_client_method());
        FZ_CHECK(client_ctx[v12] != NULL);
        SSL_CTX_set_max_proto_version(client_ctx[v12], v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
        SSL_CTX_set_min_proto_version(client_ctx[v12], v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
        SSL_CTX_set_verify(client_ctx[v12], SSL_VERIFY_NONE, NULL);
        make_session(v12);
    }
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
    static char plain[8192], in[8192];
    if (!server_ctx)
        init();
    if (size == 0)
        return 0;
    int v12 = data[0] & 1, resume = (data[0] >> 1) & 1, notify = (data[0] >> 2) & 1;
    conn_link l;
    link_open(&l, v12, resume);
    FZ_CHECK(!resume || SSL_session_reused(l.c) == 1);

    /* the chunks, as records (or raw), all on the socket before the
     * server reads: it sees them as a client's burst */
    size_t plen = 0, i = 1;
    bool clean = true;
    while (i + 2 <= size) {
        unsigned op = data[i], len = data[i + 1];
        i += 2;
        len = (unsigned)PT_MIN((size_t)len, size - i);
        if (op & 0x80) {
            FZ_CHECK(write(l.sv[0], data + i, len) == (ssize_t)len);
            clean &= len == 0;
        } else if (len > 0) {
            len = (unsigned)PT_MIN((size_t)len, sizeof(plain) - plen);
            if (len == 0)
                break;
            FZ_CHECK(SSL_write(l.c, data + i, (int)len) == (int)len);
            memcpy(plain + plen, data + i, len);
            plen += len;
            client_out(&l, op & 0x7f);
            clean &= (op & 0x7f) == 0;
        }
        i += len;
    }
    if (notify) {
        (void)SSL_shutdown(l.c);
        client_out(&l, 0);
    }
    shutdown(l.sv[0], SHUT_WR);

    size_t got = 0;
    for (int turn = 0; turn < 256 && got < sizeof(in); turn++) {
        ssize_t r = pt_sock_read(&l.s, in + got, sizeof(in) - got);
        if (r > 0) {
            FZ_CHECK((size_t)r <= sizeof(in) - got);
            got += (size_t)r;
            /* AEAD: never a byte the client did not encrypt */
            FZ_CHECK(got <= plen && memcmp(in, plain, got) == 0);
            parse(in, got);
            continue;
        }
        if (r < 0 && errno == EAGAIN)
            (void)pt_sock_pending(&l.s);
        break;
    }
    /* nothing corrupted: every byte comes through */
    if (clean)
        FZ_CHECK(got == plen);
    pt_tls_info info;
    FZ_CHECK(pt_tls_info_get(&l.s, &info));
    FZ_CHECK(info.resumed == (bool)resume);
    link_close(&l);
    return 0;
}
