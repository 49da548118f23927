/*
 * ceiling.c - the fastest "server" wrk can meet on this host, to measure
 * the client's own limit in the same run as the real servers.
 *
 * When wrk (one thread on one CPU) is the bottleneck, every server reaches
 * about the same rate and the rate says nothing about the server.  This
 * program answers the static scenarios with the least work possible: it
 * finds the end of each request head, picks a response prepared at start
 * (the docroot's file in memory, or a fixed 404), and writes it with one
 * writev (sendfile for the body of large files).  The heads carry what a
 * static file server sends (Date, Server, Content-Type, Last-Modified,
 * ETag, Accept-Ranges, Content-Length; dated at start), since wrk's work
 * per response grows with its size.  It parses nothing else, so a real
 * server's rate through the same client stays near or below its rate: the
 * ceiling of what wrk can measure here.  The php and CGI scenarios are
 * answered with 404, so peers.sh's sanity check skips them.
 *
 *   ceiling PORT DOCROOT      (127.0.0.1, single thread, epoll)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#define INBUF 8192
#define INLINE_MAX (64 * 1024) /* bodies up to this size are sent from memory */

struct file {
    const char *path; /* request path */
    char head[512], head_close[512]; /* the second with Connection: close */
    size_t head_len, head_close_len;
    char *body; /* in memory, or NULL: sendfile from fd */
    int fd;
    off_t size;
};

struct conn {
    int fd;
    size_t in_len;
    char in[INBUF];
    /* the response being written */
    const struct file *f;
    const char *head;
    size_t head_len, head_off;
    off_t body_off;
    int close_after;
};

static struct file files[8];
static int nfiles;
static struct file notfound;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static char date[64]; /* the time of start, in every head */

static void add_file(const char *docroot, const char *name)
{
    char p[4096];
    struct stat st;
    struct file *f = &files[nfiles];

    snprintf(p, sizeof p, "%s/%s", docroot, name);
    f->fd = open(p, O_RDONLY);
    if (f->fd < 0 || fstat(f->fd, &st) < 0)
        return; /* not in this docroot: requests for it get the 404 */
    f->size = st.st_size;
    f->path = strdup(name);
    char lm[64];
    strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&st.st_mtime));
    for (int close_after = 0; close_after < 2; close_after++) {
        char *h = close_after ? f->head_close : f->head;
        size_t n = (size_t)snprintf(
            h, sizeof f->head,
            "HTTP/1.1 200 OK\r\nDate: %s\r\nServer: ceiling\r\n"
            "Content-Type: %s\r\nLast-Modified: %s\r\n"
            "ETag: \"%llx-%llx\"\r\nAccept-Ranges: bytes\r\n"
            "Content-Length: %lld\r\n%s\r\n",
            date, strstr(name, ".html") ? "text/html" : "application/octet-stream", lm,
            (unsigned long long)st.st_mtime, (unsigned long long)st.st_size, (long long)st.st_size,
            close_after ? "Connection: close\r\n" : "");
        *(close_after ? &f->head_close_len : &f->head_len) = n;
    }
    if (st.st_size <= INLINE_MAX) {
        f->body = malloc((size_t)st.st_size + 1);
        if (!f->body || pread(f->fd, f->body, (size_t)st.st_size, 0) != st.st_size)
            die("read");
    }
    nfiles++;
}

/* the path of the request line "GET /path HTTP/1.1" */
static const struct file *route(const char *req, size_t len)
{
    const char *sp = memchr(req, ' ', len), *end;
    if (!sp)
        return &notfound;
    sp += 2; /* skip " /" */
    end = memchr(sp, ' ', len - (size_t)(sp - req));
    if (!end)
        return &notfound;
    for (int i = 0; i < nfiles; i++)
        if (strlen(files[i].path) == (size_t)(end - sp) && !memcmp(files[i].path, sp, (size_t)(end - sp)))
            return &files[i];
    return &notfound;
}

static int has_close(const char *req, size_t len)
{
    static const char k[] = "\nconnection: close";
    for (size_t i = 0; i + sizeof k - 1 <= len; i++)
        if (!strncasecmp(req + i, k, sizeof k - 1))
            return 1;
    return 0;
}

/* 1: response written, 0: blocked (wait for EPOLLOUT), -1: connection gone */
static int flush(struct conn *c)
{
    const struct file *f = c->f;
    while (c->head_off < c->head_len) {
        struct iovec iov[2] = {{(char *)c->head + c->head_off, c->head_len - c->head_off},
                               {f->body, f->body ? (size_t)f->size : 0}};
        ssize_t n = writev(c->fd, iov, f->body ? 2 : 1);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if ((size_t)n >= c->head_len - c->head_off) {
            c->body_off += (off_t)((size_t)n - (c->head_len - c->head_off));
            c->head_off = c->head_len;
        } else {
            c->head_off += (size_t)n;
        }
    }
    while (c->body_off < f->size) {
        ssize_t n;
        if (f->body) {
            n = write(c->fd, f->body + c->body_off, (size_t)(f->size - c->body_off));
        } else {
            off_t o = c->body_off;
            n = sendfile(c->fd, f->fd, &o, (size_t)(f->size - c->body_off));
        }
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->body_off += n;
    }
    c->f = NULL;
    return 1;
}

/* answer every complete request in the input; -1 closes the connection */
static int serve(int ep, struct conn *c)
{
    for (;;) {
        char *e;
        size_t used;
        int r;
        if (c->f) {
            r = flush(c);
            if (r < 0)
                return -1;
            if (r == 0) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return 0;
            }
            if (c->close_after)
                return -1;
        }
        e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!e)
            return c->in_len == INBUF ? -1 : 0;
        used = (size_t)(e + 4 - c->in);
        c->f = route(c->in, used);
        c->close_after = has_close(c->in, used);
        c->head = c->close_after ? c->f->head_close : c->f->head;
        c->head_len = c->close_after ? c->f->head_close_len : c->f->head_len;
        c->head_off = 0;
        c->body_off = 0;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
}

int main(int argc, char **argv)
{
    int one = 1, ls, ep;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    time_t now = time(NULL);

    if (argc != 3) {
        fprintf(stderr, "usage: ceiling PORT DOCROOT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&now));
    notfound.head_len = (size_t)snprintf(notfound.head, sizeof notfound.head,
                                         "HTTP/1.1 404 Not Found\r\nDate: %s\r\nServer: ceiling\r\n"
                                         "Content-Type: text/html; charset=utf-8\r\n"
                                         "Content-Length: 90\r\n\r\n"
                                         "<html><head><title>404 Not Found</title></head>"
                                         "<body><h1>404 Not Found</h1></body></html>\n",
                                         date);
    /* keep-alive scenarios only */
    memcpy(notfound.head_close, notfound.head, notfound.head_len);
    notfound.head_close_len = notfound.head_len;
    add_file(argv[2], "1k.bin");
    add_file(argv[2], "100k.bin");
    add_file(argv[2], "10m.bin");
    add_file(argv[2], "index.html");

    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (ls < 0)
        die("socket");
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* as portico's default: the transmit work of large files stays on this
     * CPU instead of running in the client's ACK processing (on wrk's CPU),
     * which gives wrk the most room */
    setsockopt(ls, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &(int){128 * 1024}, sizeof(int));
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0)
        die("bind/listen");
    ep = epoll_create1(0);
    if (ep < 0)
        die("epoll");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);

    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *nc = calloc(1, sizeof *nc);
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    if (!nc)
                        die("calloc");
                    nc->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->f) { /* writable again */
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            } else {
                ssize_t r = read(c->fd, c->in + c->in_len, INBUF - c->in_len);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN)
                        continue;
                    close(c->fd);
                    free(c);
                    continue;
                }
                c->in_len += (size_t)r;
            }
            if (serve(ep, c) < 0) {
                close(c->fd);
                free(c);
            }
        }
    }
}
