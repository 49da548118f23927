/* tlsconn.c - a TLS load client that makes a new connection per request,
 * with a full handshake every time (wrk resumes from its last session, so
 * it cannot measure full handshakes).  Each of -c threads runs one blocking
 * connection at a time: connect, handshake (no session offered, tickets
 * refused, no client session cache), GET with "Connection: close", read
 * the whole response (Content-Length), close_notify, close.  -r resumes
 * from the thread's last session instead, as wrk does, so that resumed and
 * full handshakes can be compared with the same client.
 *
 * Prints one "WRKRESULT ..." line in the format of wrk-report.lua, so
 * peers.sh reads it like a wrk run.  Build:
 *   cc -O2 -pthread -o tlsconn tlsconn.c -lssl -lcrypto */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1", *path = "/", *tls_ver = "";
static int port, threads = 1, resume;
static uint64_t max_req; /* -n: requests per thread, then stop (0: -d only) */
static double duration = 10, timeout_s = 10;
static SSL_CTX *ctx;
static atomic_int stop, finished;
static char request[1024];

enum { E_CONNECT, E_READ, E_WRITE, E_STATUS, E_TIMEOUT, E_N };

typedef struct worker {
    pthread_t tid;
    uint64_t requests, bytes, resumed, err[E_N];
    uint32_t *lat; /* microseconds, one per completed request */
    size_t nlat, caplat;
} worker;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void add_lat(worker *w, uint64_t us)
{
    if (w->nlat == w->caplat) {
        size_t n = w->caplat ? 2 * w->caplat : 4096;
        uint32_t *p = realloc(w->lat, n * sizeof(*p));
        if (!p)
            return;
        w->lat = p;
        w->caplat = n;
    }
    w->lat[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int io_error(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    if ((e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) && (errno == EAGAIN || errno == EWOULDBLOCK))
        return E_TIMEOUT;
    return -1;
}

/* One request on a new connection: -1 done, else the error class. */
static int one(worker *w, SSL_SESSION **last)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return E_CONNECT;
    struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one_ = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_, sizeof(one_));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return errno == EINPROGRESS || errno == EAGAIN ? E_TIMEOUT : E_CONNECT;
    }
    SSL *ssl = SSL_new(ctx);
    int rc = E_CONNECT;
    if (!ssl)
        goto out;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (resume && *last)
        SSL_set_session(ssl, *last);
    int r = SSL_connect(ssl);
    if (r != 1) {
        int e = io_error(ssl, r);
        rc = e >= 0 ? e : E_CONNECT;
        goto out;
    }
    size_t qlen = strlen(request);
    r = SSL_write(ssl, request, (int)qlen);
    if (r != (int)qlen) {
        int e = io_error(ssl, r);
        rc = e >= 0 ? e : E_WRITE;
        goto out;
    }
    /* the head, then Content-Length bytes of body (or up to EOF) */
    char buf[16384], head[4096];
    size_t hlen = 0, got = 0;
    long long clen = -1, body = 0;
    int status = 0;
    for (;;) {
        r = SSL_read(ssl, buf, sizeof(buf));
        if (r <= 0) {
            int e = SSL_get_error(ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ||
                (e == SSL_ERROR_SSL &&
                 ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
                rc = status && clen < 0 ? -1 : E_READ; /* EOF-delimited body */
            } else {
                int t = io_error(ssl, r);
                rc = t >= 0 ? t : E_READ;
            }
            goto done;
        }
        got += (size_t)r;
        if (!status) {
            size_t take = (size_t)r < sizeof(head) - 1 - hlen ? (size_t)r : sizeof(head) - 1 - hlen;
            memcpy(head + hlen, buf, take);
            hlen += take;
            head[hlen] = 0;
            char *end = strstr(head, "\r\n\r\n");
            if (!end) {
                if (hlen == sizeof(head) - 1) {
                    rc = E_READ;
                    goto done;
                }
                continue;
            }
            if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
                rc = E_READ;
                goto done;
            }
            for (char *h = strstr(head, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
                if (!strncasecmp(h + 2, "content-length:", 15))
                    clen = atoll(h + 17);
            body = (long long)(got - (size_t)(end + 4 - head));
        } else {
            body += r;
        }
        if (clen >= 0 && body >= clen) {
            rc = -1;
            break;
        }
    }
done:
    w->bytes += got;
    w->resumed += (uint64_t)SSL_session_reused(ssl);
    if (rc < 0 && status > 399)
        rc = E_STATUS;
    if (resume) {
        SSL_SESSION *s = SSL_get1_session(ssl);
        if (s) {
            if (*last)
                SSL_SESSION_free(*last);
            *last = s;
        }
    }
    if (rc < 0)
        SSL_shutdown(ssl); /* as wrk does: close_notify, then close */
out:
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return rc;
}

static void *run(void *arg)
{
    worker *w = arg;
    SSL_SESSION *last = NULL;
    while (!atomic_load(&stop)) {
        uint64_t t0 = now_us();
        int e = one(w, &last);
        if (atomic_load(&stop))
            break; /* cut short by the end of the run: not counted */
        if (e >= 0 && e != E_STATUS) {
            w->err[e]++;
            if (e == E_CONNECT)
                usleep(10000); /* no busy loop against a closed port */
            continue;
        }
        if (e == E_STATUS)
            w->err[E_STATUS]++;
        w->requests++;
        add_lat(w, now_us() - t0);
        if (max_req && w->requests >= max_req)
            break;
    }
    if (last)
        SSL_SESSION_free(last);
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    return v[i < n ? i : n - 1];
}

static void usage(void)
{
    fprintf(stderr, "usage: tlsconn -p PORT [-H HOST] [-u PATH] [-c THREADS] [-d SECONDS] "
                    "[-n REQUESTS] [-T TIMEOUT_S] [-V 1.2|1.3] [-r]\n"
                    "  a new TLS connection (full handshake; -r: resume) per request;\n"
                    "  -n: each thread stops after that many (profiling a fixed count)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "H:p:u:c:d:n:T:V:r")) != -1) {
        switch (o) {
        case 'H':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'u':
            path = optarg;
            break;
        case 'c':
            threads = atoi(optarg);
            break;
        case 'd':
            duration = atof(optarg);
            break;
        case 'n':
            max_req = strtoull(optarg, NULL, 10);
            break;
        case 'T':
            timeout_s = atof(optarg);
            break;
        case 'V':
            tls_ver = optarg;
            break;
        case 'r':
            resume = 1;
            break;
        default:
            usage();
        }
    }
    if (port <= 0 || threads <= 0 || duration <= 0 || timeout_s <= 0)
        usage();
    snprintf(request, sizeof(request),
             "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return 1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | (resume ? 0 : SSL_OP_NO_TICKET));
    /* sessions only through -r's explicit SSL_set_session, never a cache */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!strcmp(tls_ver, "1.2"))
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    else if (!strcmp(tls_ver, "1.3"))
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);

    worker *w = calloc((size_t)threads, sizeof(*w));
    if (!w)
        return 1;
    uint64_t t0 = now_us();
    for (int i = 0; i < threads; i++)
        if (pthread_create(&w[i].tid, NULL, run, &w[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    if (max_req) { /* a fixed count: -d is only the limit */
        uint64_t end = t0 + (uint64_t)(duration * 1e6);
        while (atomic_load(&finished) < threads && now_us() < end)
            usleep(10000);
    } else {
        struct timespec d = {(time_t)duration, (long)((duration - (time_t)duration) * 1e9)};
        nanosleep(&d, NULL);
    }
    atomic_store(&stop, 1);
    uint64_t t1 = now_us();
    /* a thread inside a request finishes it (or times out) before joining */
    uint64_t req = 0, bytes = 0, resumed_n = 0, err[E_N] = {0};
    size_t n = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].tid, NULL);
        req += w[i].requests;
        bytes += w[i].bytes;
        resumed_n += w[i].resumed;
        for (int e = 0; e < E_N; e++)
            err[e] += w[i].err[e];
        n += w[i].nlat;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof(*all));
    size_t k = 0;
    double sum = 0;
    for (int i = 0; i < threads && all; i++)
        for (size_t j = 0; j < w[i].nlat; j++) {
            all[k++] = w[i].lat[j];
            sum += w[i].lat[j];
        }
    if (all)
        qsort(all, k, sizeof(*all), cmp_u32);
    printf("%llu requests in %.2fs, %llu bytes, %llu resumed handshakes, errors: connect %llu read "
           "%llu write %llu "
           "timeout %llu, status>399 %llu\n",
           (unsigned long long)req, (double)(t1 - t0) / 1e6, (unsigned long long)bytes,
           (unsigned long long)resumed_n, (unsigned long long)err[E_CONNECT],
           (unsigned long long)err[E_READ], (unsigned long long)err[E_WRITE],
           (unsigned long long)err[E_TIMEOUT], (unsigned long long)err[E_STATUS]);
    printf("WRKRESULT requests=%llu duration_us=%llu bytes=%llu connect=%llu read=%llu write=%llu "
           "status=%llu timeout=%llu lat_mean_us=%.1f lat_max_us=%u p50_us=%u p90_us=%u "
           "p99_us=%u p999_us=%u\n",
           (unsigned long long)req, (unsigned long long)(t1 - t0), (unsigned long long)bytes,
           (unsigned long long)err[E_CONNECT], (unsigned long long)err[E_READ],
           (unsigned long long)err[E_WRITE], (unsigned long long)err[E_STATUS],
           (unsigned long long)err[E_TIMEOUT], k ? sum / (double)k : 0.0, k ? all[k - 1] : 0,
           all ? pct(all, k, 50) : 0, all ? pct(all, k, 90) : 0, all ? pct(all, k, 99) : 0,
           all ? pct(all, k, 99.9) : 0);
    return 0;
}
