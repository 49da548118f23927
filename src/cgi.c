/* cgi.c: the CGI gateway (RFC 3875). A request's script is found by walking
 * the path (the first regular file is the script, the rest PATH_INFO),
 * spawned with posix_spawn in its own process group with a clean signal
 * state, fed the collected body through a non-blocking pipe while its
 * stdout is read at the same time (no deadlock for scripts that echo while
 * reading), and its header block goes through cgi_resp.c. */
#include "first.h"
#include "cgi.h"
#include "cgi_env.h"
#include "cgi_resp.h"
#include "conn.h"
#include "h1_resp.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PT_CGI_READ 65536
#define PT_CGI_STREAM_HIGH (64u * 1024u) /* unbuffered: stop reading above this */
#define PT_CGI_ERR_LINE 1024
#define PT_CGI_ERR_PER_SEC 50
#define PT_CGI_PATH "/usr/local/bin:/usr/bin:/bin"

struct pt_cgi {
    pt_worker *w;
    pt_conn *c; /* NULL once detached */
    pt_cgi *next, *prev;
    pid_t pid;
    bool reaped;
    int wstatus;
    int fd_in, fd_out, fd_err;
    pt_io io_in, io_out, io_err;
    uint64_t in_off;
    pt_cgi_resp resp;
    bool nph, headers_done, buffering, killed;
    int64_t cl;    /* Content-Length the script declared, -1 none */
    uint64_t sent; /* body bytes passed on */
    pt_timer timer;
    pt_tlist *tl_timeout;
    int kill_stage;
    char *script;
    char client[64];
    char errline[PT_CGI_ERR_LINE];
    size_t errlen;
    uint64_t err_window;
    unsigned err_count, err_dropped;
    int spill_fd;
    uint64_t spill_off;
};

typedef struct resolved {
    char filename[PATH_MAX]; /* SCRIPT_FILENAME */
    char dir[PATH_MAX];      /* working directory */
    const char *interp;      /* NULL: execute the file itself */
    size_t script_name_len;  /* SCRIPT_NAME = c->path[0..script_name_len) */
    size_t path_info_off;    /* PATH_INFO = c->path + path_info_off */
    const char *doc_root;
} resolved;

static void on_out(pt_loop *l, pt_io *io, uint32_t ev);
static void on_in(pt_loop *l, pt_io *io, uint32_t ev);
static void on_err(pt_loop *l, pt_io *io, uint32_t ev);
static void on_timer(pt_loop *l, pt_timer *t);
static void finish_output(pt_cgi *g);

/* ---- resolution --------------------------------------------------------- */

static const char *interpreter_for(const pt_location *loc, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < loc->ninterpreters; i++) {
        size_t el = strlen(loc->interpreters[i]);
        if (nl > el && strcmp(name + nl - el, loc->interpreters[i]) == 0)
            return loc->interp_paths[i];
    }
    return NULL;
}

static bool is_hidden_seg(const char *p, size_t len)
{
    return len > 0 && p[0] == '.';
}

/* Walk rel (normalised, no leading '/') below base: the first regular file
 * is the script. Returns 0, or an HTTP status. *script_len = bytes of rel
 * that name the script. For extension locations the script segment must end
 * in the extension. */
static int walk(const char *base, const char *rel, size_t rlen, const pt_location *loc,
                bool allow_dot, size_t *script_len)
{
    char buf[PATH_MAX];
    size_t bl = strlen(base);
    if (bl + 1 + rlen >= sizeof(buf))
        return 404;
    memcpy(buf, base, bl);
    buf[bl] = '/';
    size_t i = 0;
    while (i < rlen) {
        size_t j = i;
        while (j < rlen && rel[j] != '/')
            j++;
        if (j == i)
            return 403; /* "dir/" itself: no script named */
        if (!allow_dot && is_hidden_seg(rel + i, j - i))
            return 404;
        memcpy(buf + bl + 1, rel, j);
        buf[bl + 1 + j] = '\0';
        struct stat st;
        if (stat(buf, &st) < 0)
            return errno == EACCES ? 403 : 404;
        if (S_ISREG(st.st_mode)) {
            if (loc->match == PT_MATCH_EXT &&
                (j - i <= loc->pattern_len ||
                 memcmp(rel + j - loc->pattern_len, loc->pattern, loc->pattern_len) != 0))
                return 404; /* an extension rule names only files with it */
            *script_len = j;
            return 0;
        }
        if (!S_ISDIR(st.st_mode))
            return 403;
        i = j + 1;
    }
    return 403; /* only directories: nothing to run */
}

static int resolve(pt_conn *c, resolved *r)
{
    const pt_location *loc = c->loc;
    const char *path = c->path;
    size_t plen = c->path_len;
    memset(r, 0, sizeof(*r));
    r->doc_root = loc->root ? loc->root : c->vhost->root;
    size_t pfx = loc->match == PT_MATCH_PREFIX ? loc->pattern_len : 0;
    if (pfx > 0 && loc->pattern[pfx - 1] == '/')
        pfx--; /* keep the '/' in the remainder */

    if (loc->cgi_program) {
        /* one program for the whole prefix: SCRIPT_NAME is the prefix */
        snprintf(r->filename, sizeof(r->filename), "%s", loc->cgi_program);
        r->script_name_len = pfx;
        r->path_info_off = pfx;
    } else {
        const char *base = loc->cgi_dir ? loc->cgi_dir : r->doc_root;
        size_t skip = loc->cgi_dir ? pfx : 0; /* URL part that maps onto base */
        const char *rel = path + skip;
        size_t rlen = plen - skip;
        while (rlen > 0 && *rel == '/') {
            rel++;
            rlen--;
        }
        size_t slen = 0;
        bool allow_dot = c->vhost->allow_dotfiles;
        if (loc->allow_dotfiles >= 0)
            allow_dot = loc->allow_dotfiles;
        int st = walk(base, rel, rlen, loc, allow_dot, &slen);
        if (st)
            return st;
        if ((size_t)snprintf(r->filename, sizeof(r->filename), "%s/%.*s", base, (int)slen, rel) >=
            sizeof(r->filename))
            return 404;
        size_t consumed = (size_t)(rel - path) + slen;
        r->script_name_len = consumed;
        r->path_info_off = consumed;
    }
    const char *slash = strrchr(r->filename, '/');
    snprintf(r->dir, sizeof(r->dir), "%.*s", slash ? (int)(slash - r->filename) : 1,
             slash && slash != r->filename ? r->filename : "/");
    const char *base = slash ? slash + 1 : r->filename;
    r->interp = interpreter_for(loc, base);
    if (!r->interp && access(r->filename, X_OK) < 0)
        return 403; /* not executable and no interpreter: never its source */
    return 0;
}

/* ---- process bookkeeping ------------------------------------------------ */

static void close_io(pt_cgi *g, pt_io *io, int *fd)
{
    if (*fd < 0)
        return;
    pt_io_remove(&g->w->loop, io);
    close(*fd);
    *fd = -1;
}

static void maybe_free(pt_cgi *g)
{
    if (g->c || !g->reaped || g->fd_out >= 0 || g->fd_err >= 0 || g->fd_in >= 0)
        return;
    pt_timer_stop(&g->timer);
    if (g->prev)
        g->prev->next = g->next;
    else
        g->w->cgis = g->next;
    if (g->next)
        g->next->prev = g->prev;
    pt_cgi_resp_free(&g->resp);
    if (g->spill_fd >= 0)
        close(g->spill_fd);
    free(g->script);
    free(g);
}

static void kill_group(pt_cgi *g, int sig)
{
    /* the whole process group (setpgid(0) at spawn), also after the leader
     * was reaped: Linux does not reuse a pid while it names a live group */
    if (g->pid > 0)
        kill(-g->pid, sig);
}

/* TERM now, KILL after the grace period. */
static void terminate(pt_cgi *g)
{
    if (g->kill_stage > 0 || (g->reaped && g->fd_out < 0 && g->fd_err < 0))
        return;
    g->killed = true;
    g->kill_stage = 1;
    kill_group(g, SIGTERM);
    pt_timer_arm(&g->w->loop, &g->timer, &g->w->t_cgi_kill);
}

static void start_queued(pt_worker *w)
{
    while (w->cgi_qhead && w->cgi_running < w->cfg->limits.cgi_max_procs) {
        pt_conn *c = w->cgi_qhead;
        pt_cgi_dequeue(c);
        pt_timer_stop(&c->timer);
        pt_cgi_start(c);
        pt_conn_kick(c);
    }
}

void pt_cgi_reap(pt_worker *w)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        pt_cgi *g = w->cgis;
        while (g && g->pid != pid)
            g = g->next;
        if (!g)
            continue;
        g->reaped = true;
        g->wstatus = status;
        w->cgi_running--;
        if (WIFSIGNALED(status) && !g->killed)
            pt_log_warn("cgi %s [pid %d] killed by signal %d, client: %s", g->script, (int)pid,
                        WTERMSIG(status), g->client);
        maybe_free(g);
    }
    start_queued(w);
}

/* ---- output to the client ----------------------------------------------- */

static void fail(pt_cgi *g, int status, const char *why)
{
    pt_conn *c = g->c;
    pt_log_error("cgi %s [pid %d]: %s, client: %s", g->script, (int)g->pid, why, g->client);
    terminate(g);
    if (!c)
        return;
    if (g->headers_done) {
        /* the status line is out: the only honest signal left is to cut
         * the connection, so the client sees a truncated response */
        c->close_after = true;
        c->gw_done = true;
        pt_conn_close(c);
        return;
    }
    g->headers_done = true;
    pt_conn_reject(c, status, why, false);
    c->gw_done = true;
    pt_conn_kick(c);
}

static void emit_head(pt_cgi *g)
{
    pt_conn *c = g->c;
    pt_cgi_resp *r = &g->resp;
    g->headers_done = true;
    if (r->local_redirect) {
        /* RFC 3875 §6.2.2: serve the local URI instead; the script's
         * remaining output (there should be none) is drained and dropped */
        pt_cgi_detach(g);
        pt_conn_local_redirect(c, r->location.p, r->location.len);
        return;
    }
    pt_resp_begin_reason(c, r->status, r->reason);
    for (size_t i = 0; i < r->nhdrs; i++) {
        pt_str n = pt_cgi_hdr_name(r, i), v = pt_cgi_hdr_value(r, i);
        pt_resp_header_n(c, n.p, n.len, v.p, v.len);
    }
    g->cl = r->content_length;
    if (r->no_buffering)
        g->buffering = false;
    pt_resp_end_stream(c, g->cl);
}

/* Hand body bytes to the client: memory while the queue is small, a spill
 * file beyond gw_buffer_memory (only when buffering). */
static void body_out(pt_cgi *g, const char *p, size_t n)
{
    pt_conn *c = g->c;
    if (g->cl >= 0) {
        /* the script's Content-Length is a promise to the client: never
         * more than that */
        uint64_t room = (uint64_t)g->cl - g->sent;
        if (n > room) {
            pt_log_warn("cgi %s [pid %d] wrote more than its Content-Length; truncated, client: %s",
                        g->script, (int)g->pid, g->client);
            n = (size_t)room;
            c->close_after = true;
        }
    }
    g->sent += n;
    if (n == 0)
        return;
    if (g->buffering && c->out.bytes >= c->w->cfg->limits.gw_buffer_memory) {
        if (g->spill_fd < 0)
            g->spill_fd = pt_body_tmpfile(c->w->cfg->tmp_dir);
        if (g->spill_fd >= 0) {
            ssize_t wr = pwrite(g->spill_fd, p, n, (off_t)g->spill_off);
            if (wr == (ssize_t)n) {
                pt_resp_body_file(c, g->spill_fd, (off_t)g->spill_off, n);
                g->spill_off += n;
                return;
            }
        }
        /* no spill file (disk full...): keep it in memory, reading pauses */
    }
    pt_resp_body(c, p, n);
}

/* Should reading the script pause until the client takes some output? */
static bool backlogged(const pt_cgi *g)
{
    const pt_conn *c = g->c;
    if (!c)
        return false;
    if (!g->buffering)
        return c->out.bytes >= PT_CGI_STREAM_HIGH;
    if (c->out.bytes >= PT_MAX(c->w->cfg->limits.gw_buffer_max, (uint64_t)PT_CGI_STREAM_HIGH))
        return true;
    /* buffering, but the spill file is unusable: memory bound */
    return g->spill_fd < 0 && c->out.bytes >= c->w->cfg->limits.gw_buffer_memory &&
           g->spill_off > 0;
}

static void nph_status(pt_cgi *g, const char *p, size_t n)
{
    /* "HTTP/1.1 200 OK": the status for the access log */
    if (n >= 12 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', n);
        if (sp && (size_t)(sp - p) + 4 <= n)
            g->c->status = atoi(sp + 1);
    }
    if (g->c->status == 0)
        g->c->status = 200;
}

static void handle_output(pt_cgi *g, const char *p, size_t n)
{
    pt_conn *c = g->c;
    if (!c)
        return; /* detached: drain and drop */
    if (g->nph) {
        if (!g->headers_done) {
            g->headers_done = true;
            c->close_after = true; /* the script frames its own response */
            nph_status(g, p, n);
        }
        pt_cq_append(&c->out, p, n); /* verbatim, HEAD included */
        return;
    }
    if (!g->headers_done) {
        size_t used = 0;
        int rc = pt_cgi_resp_feed(&g->resp, p, n, &used);
        if (rc == PT_CGI_RESP_MORE)
            return;
        if (rc == PT_CGI_RESP_ERROR) {
            char why[160];
            snprintf(why, sizeof(why), "invalid response header: %s", g->resp.error);
            fail(g, 502, why);
            return;
        }
        if (g->resp.status < 200) {
            /* a script cannot send an interim response: 1xx is not final */
            fail(g, 502, "invalid response header: 1xx status from a script");
            return;
        }
        emit_head(g);
        if (!g->c)
            return; /* local redirect: the rest is dropped */
        p += used;
        n -= used;
    }
    body_out(g, p, n);
}

static void on_out(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    pt_cgi *g = io->data;
    char buf[PT_CGI_READ];
    ssize_t n = read(g->fd_out, buf, sizeof(buf));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        n = 0;
    }
    if (n == 0) {
        close_io(g, &g->io_out, &g->fd_out);
        if (g->c)
            finish_output(g); /* may complete the response, detach and free g */
        else
            maybe_free(g);
        return;
    }
    if (g->c && g->kill_stage == 0) /* output resets the no-output timeout */
        pt_timer_arm(&g->w->loop, &g->timer, g->tl_timeout);
    pt_conn *c = g->c;
    handle_output(g, buf, (size_t)n);
    if (g->c && g->c == c) {
        if (backlogged(g)) {
            /* the client is slow, not the script: no output timeout while
             * the script waits for us (the client has its write timeout) */
            pt_io_set(&g->w->loop, &g->io_out, 0);
            if (g->kill_stage == 0)
                pt_timer_stop(&g->timer);
        }
        pt_conn_kick(c);
    }
}

static void finish_output(pt_cgi *g)
{
    pt_conn *c = g->c;
    if (!c)
        return;
    if (!g->headers_done && !g->nph) {
        char why[160];
        pt_cgi_resp_eof(&g->resp);
        if (WIFSIGNALED(g->wstatus) && g->reaped)
            snprintf(why, sizeof(why), "killed by signal %d before its header block",
                     WTERMSIG(g->wstatus));
        else
            snprintf(why, sizeof(why), "invalid response header: %s",
                     g->resp.error ? g->resp.error : "no output");
        fail(g, 502, why);
        return;
    }
    if (g->cl >= 0 && g->sent < (uint64_t)g->cl) {
        pt_log_warn("cgi %s [pid %d] ended before its Content-Length, client: %s", g->script,
                    (int)g->pid, g->client);
        c->close_after = true;
        c->gw_done = true;
        pt_conn_kick(c);
        return;
    }
    if (!g->nph)
        pt_resp_body_end(c);
    c->gw_done = true;
    pt_timer_stop(&g->timer);
    pt_conn_kick(c);
}

/* ---- stdin and stderr --------------------------------------------------- */

static void on_in(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    pt_cgi *g = io->data;
    pt_conn *c = g->c;
    if (!c) {
        close_io(g, &g->io_in, &g->fd_in);
        maybe_free(g);
        return;
    }
    char buf[PT_CGI_READ];
    uint64_t left = c->body.len - g->in_off;
    size_t want = (size_t)PT_MIN(left, (uint64_t)sizeof(buf));
    ssize_t got = pt_body_read(&c->body, g->in_off, buf, want);
    ssize_t wr = got > 0 ? write(g->fd_in, buf, (size_t)got) : -1;
    if (wr < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (wr > 0)
        g->in_off += (uint64_t)wr;
    /* EPIPE means the script stopped reading its input: fine (RFC 3875
     * does not oblige it to read everything) */
    if (wr < 0 || g->in_off >= c->body.len)
        close_io(g, &g->io_in, &g->fd_in);
}

static void log_err_line(pt_cgi *g)
{
    uint64_t now = g->w->loop.now;
    if (now - g->err_window >= 1000) {
        if (g->err_dropped)
            pt_log_warn("cgi %s [pid %d]: %u stderr lines dropped (rate limit), client: %s",
                        g->script, (int)g->pid, g->err_dropped, g->client);
        g->err_window = now;
        g->err_count = 0;
        g->err_dropped = 0;
    }
    if (++g->err_count > PT_CGI_ERR_PER_SEC) {
        g->err_dropped++;
        return;
    }
    char esc[PT_CGI_ERR_LINE * 4 + 8];
    pt_escape_log(g->errline, g->errlen, esc, sizeof(esc));
    pt_log_warn("cgi %s [pid %d]: %s, client: %s", g->script, (int)g->pid, esc, g->client);
}

static void on_err(pt_loop *l, pt_io *io, uint32_t ev)
{
    (void)l;
    (void)ev;
    pt_cgi *g = io->data;
    char buf[4096];
    ssize_t n = read(g->fd_err, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (g->errlen)
            log_err_line(g);
        g->errlen = 0;
        close_io(g, &g->io_err, &g->fd_err);
        maybe_free(g);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (g->errlen && g->errline[g->errlen - 1] == '\r')
                g->errlen--;
            log_err_line(g);
            g->errlen = 0;
        } else if (g->errlen < sizeof(g->errline)) {
            g->errline[g->errlen++] = ch;
        } else {
            log_err_line(g); /* an overlong line goes out in pieces */
            g->errline[0] = ch;
            g->errlen = 1;
        }
    }
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(pt_loop *l, pt_timer *t)
{
    (void)l;
    pt_cgi *g = t->data;
    if (g->kill_stage == 1) {
        g->kill_stage = 2;
        kill_group(g, SIGKILL);
        return;
    }
    if (g->kill_stage == 2)
        return;
    if (g->c) {
        fail(g, 504, "no output within the timeout; killed");
        return;
    }
    /* detached and still running past its timeout */
    pt_log_warn("cgi %s [pid %d] still running after its response; killed", g->script, (int)g->pid);
    terminate(g);
}

/* ---- spawning ----------------------------------------------------------- */

typedef struct envctx {
    char local_ip[64], local_port[8], remote_port[8];
} envctx;

static int spawn(pt_cgi *g, pt_conn *c, const resolved *r)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    char **envp = NULL;
    int rc = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        goto out;

    envctx ec;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    snprintf(ec.local_ip, sizeof(ec.local_ip), "127.0.0.1");
    snprintf(ec.local_port, sizeof(ec.local_port), "0");
    if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ec.local_ip, sizeof(ec.local_ip));
            snprintf(ec.local_port, sizeof(ec.local_port), "%u", ntohs(s4->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
                inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ec.local_ip, sizeof(ec.local_ip));
            else
                inet_ntop(AF_INET6, &s6->sin6_addr, ec.local_ip, sizeof(ec.local_ip));
            snprintf(ec.local_port, sizeof(ec.local_port), "%u", ntohs(s6->sin6_port));
        }
    }
    snprintf(ec.remote_port, sizeof(ec.remote_port), "%u", c->peer_port);

    const pt_head *h = &c->head;
    pt_str host = h->host;
    /* SERVER_NAME: the Host without its port (or the local address) */
    if (host.len) {
        if (host.p[0] == '[') {
            const char *e = memchr(host.p, ']', host.len);
            if (e)
                host.len = (size_t)(e - host.p) + 1;
        } else {
            const char *colon = memchr(host.p, ':', host.len);
            if (colon)
                host.len = (size_t)(colon - host.p);
        }
    } else {
        host.p = ec.local_ip;
        host.len = strlen(ec.local_ip);
    }
    const pt_location *loc = c->loc;
    pt_cgi_req req = {
        .method = h->method_str,
        .request_uri = h->absolute_form ? h->path : h->target,
        .query = {h->has_query ? h->query.p : "", h->has_query ? h->query.len : 0},
        .script_name = {c->path, r->script_name_len},
        .path_info = {c->path + r->path_info_off, c->path_len - r->path_info_off},
        .script_filename = {r->filename, strlen(r->filename)},
        .document_root = {r->doc_root, strlen(r->doc_root)},
        .server_name = host,
        .server_port = {ec.local_port, strlen(ec.local_port)},
        .server_addr = {ec.local_ip, strlen(ec.local_ip)},
        .remote_addr = {c->peer_ip, strlen(c->peer_ip)},
        .remote_port = {ec.remote_port, strlen(ec.remote_port)},
        .http_major = h->http_major,
        .http_minor = h->http_minor,
        .https = false,
        .content_length = (h->is_chunked || h->content_length >= 0) ? (int64_t)c->body.len : -1,
        .headers = h->headers,
        .nheaders = h->nheaders,
        .pass_authorization = loc->pass_authorization,
        .redirect_status = 200,
        .server_software = c->w->server_header,
        .env = loc->env,
        .nenv = loc->nenv,
        .pass_env = loc->pass_env,
        .npass_env = loc->npass_env,
        .path = PT_CGI_PATH,
    };
    if (h->absolute_form) {
        /* REQUEST_URI is the origin-form part of an absolute-form target */
        const char *end = h->target.p + h->target.len;
        if (h->path.p >= h->target.p && h->path.p <= end) {
            req.request_uri.p = h->path.p;
            req.request_uri.len = (size_t)(end - h->path.p);
        }
    }
    envp = pt_cgi_envp(&req);
    if (!envp)
        goto out;

    /* the child: pipes on 0-1-2, the script's directory, nothing else open
     * (O_CLOEXEC everywhere, closefrom as a belt), default signal
     * dispositions and an empty mask (ignored signals survive exec: the
     * worker ignores SIGPIPE), its own process group so a timeout can kill
     * everything it started */
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCHDIR_NP
    posix_spawn_file_actions_addchdir_np(&fa, r->dir);
#endif
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_USEVFORK);
    char *argv[3];
    if (r->interp) {
        argv[0] = (char *)r->interp;
        argv[1] = (char *)r->filename;
        argv[2] = NULL;
    } else {
        argv[0] = (char *)r->filename;
        argv[1] = NULL;
    }
    int e = posix_spawn(&g->pid, argv[0], &fa, &at, argv, envp);
    if (e != 0) {
        errno = e;
        goto out;
    }
    if (loc->rlimit_cpu || loc->rlimit_as || loc->rlimit_nproc) {
        /* posix_spawn cannot set limits; the child has only just exec'd */
        struct rlimit rl;
        if (loc->rlimit_cpu) {
            rl.rlim_cur = rl.rlim_max = loc->rlimit_cpu;
            prlimit(g->pid, RLIMIT_CPU, &rl, NULL);
        }
        if (loc->rlimit_as) {
            rl.rlim_cur = rl.rlim_max = loc->rlimit_as;
            prlimit(g->pid, RLIMIT_AS, &rl, NULL);
        }
        if (loc->rlimit_nproc) {
            rl.rlim_cur = rl.rlim_max = loc->rlimit_nproc;
            prlimit(g->pid, RLIMIT_NPROC, &rl, NULL);
        }
    }
    rc = 0;
out:
    e = errno;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(envp);
    /* the child's ends are the child's now */
    if (in[0] >= 0)
        close(in[0]);
    if (out[1] >= 0)
        close(out[1]);
    if (err[1] >= 0)
        close(err[1]);
    if (rc < 0) {
        if (in[1] >= 0)
            close(in[1]);
        if (out[0] >= 0)
            close(out[0]);
        if (err[0] >= 0)
            close(err[0]);
        errno = e;
        return -1;
    }
    g->fd_in = in[1];
    g->fd_out = out[0];
    g->fd_err = err[0];
    pt_fd_nonblock(g->fd_in);
    pt_fd_nonblock(g->fd_out);
    pt_fd_nonblock(g->fd_err);
    return 0;
}

void pt_cgi_dequeue(pt_conn *c)
{
    pt_worker *w = c->w;
    if (!c->gw_queued)
        return;
    pt_conn **pp = &w->cgi_qhead;
    while (*pp && *pp != c)
        pp = &(*pp)->gw_qnext;
    if (*pp)
        *pp = c->gw_qnext;
    if (w->cgi_qtail == c) {
        w->cgi_qtail = NULL;
        for (pt_conn *q = w->cgi_qhead; q; q = q->gw_qnext)
            w->cgi_qtail = q;
    }
    c->gw_qnext = NULL;
    c->gw_queued = false;
    w->cgi_qlen--;
}

void pt_cgi_start(pt_conn *c)
{
    pt_worker *w = c->w;
    const pt_limits *lim = &w->cfg->limits;
    resolved r;
    int st = resolve(c, &r);
    if (st) {
        pt_conn_reject(c, st, st == 403 ? "not an executable CGI script" : "no such CGI script",
                       false);
        return;
    }
    if (w->cgi_running >= lim->cgi_max_procs) {
        if (w->cgi_qlen >= lim->cgi_queue) {
            pt_conn_reject(c, 503, "CGI process limit reached and the queue is full", false);
            return;
        }
        /* wait for a slot, bounded in count and time */
        c->gw_queued = true;
        c->gw_qnext = NULL;
        if (w->cgi_qtail)
            w->cgi_qtail->gw_qnext = c;
        else
            w->cgi_qhead = c;
        w->cgi_qtail = c;
        w->cgi_qlen++;
        pt_timer_arm(&w->loop, &c->timer, &w->t_cgi_queue);
        c->state = PT_CS_WRITE;
        return;
    }
    pt_cgi *g = calloc(1, sizeof(*g));
    if (!g || !(g->script = strdup(r.filename))) {
        free(g);
        pt_conn_reject(c, 500, "out of memory", true);
        return;
    }
    g->w = w;
    g->fd_in = g->fd_out = g->fd_err = g->spill_fd = -1;
    g->cl = -1;
    g->buffering = c->loc->buffering;
    snprintf(g->client, sizeof(g->client), "%s:%u", c->peer_ip, c->peer_port);
    const char *base = strrchr(r.filename, '/');
    g->nph = strncmp(base ? base + 1 : r.filename, "nph-", 4) == 0;
    pt_cgi_resp_init(&g->resp, (size_t)lim->gw_header_max, lim->max_headers);
    if (spawn(g, c, &r) < 0) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "cannot execute %s: %s", r.interp ? r.interp : r.filename,
                 strerror(errno));
        pt_log_error("cgi %s: %s, client: %s", r.filename, why, g->client);
        pt_cgi_resp_free(&g->resp);
        free(g->script);
        free(g);
        pt_conn_reject(c, 502, why, false);
        return;
    }
    w->cgi_running++;
    g->c = c;
    c->gw = g;
    c->gw_done = false;
    g->next = w->cgis;
    if (w->cgis)
        w->cgis->prev = g;
    w->cgis = g;
    pt_io_init(&g->io_in, g->fd_in, on_in, g);
    pt_io_init(&g->io_out, g->fd_out, on_out, g);
    pt_io_init(&g->io_err, g->fd_err, on_err, g);
    if (c->body.len > 0)
        pt_io_set(&w->loop, &g->io_in, EPOLLOUT);
    else
        close_io(g, &g->io_in, &g->fd_in);
    pt_io_set(&w->loop, &g->io_out, EPOLLIN);
    pt_io_set(&w->loop, &g->io_err, EPOLLIN);
    pt_timer_init(&g->timer, on_timer, g);
    g->tl_timeout = pt_worker_tlist(w, c->loc->timeout_ms);
    pt_timer_arm(&w->loop, &g->timer, g->tl_timeout);
    c->state = PT_CS_WRITE;
}

void pt_cgi_on_drain(pt_cgi *g)
{
    if (g->fd_out >= 0 && !(g->io_out.events & EPOLLIN) && !backlogged(g)) {
        pt_io_set(&g->w->loop, &g->io_out, EPOLLIN);
        if (g->kill_stage == 0)
            pt_timer_arm(&g->w->loop, &g->timer, g->tl_timeout);
    }
}

void pt_cgi_detach(pt_cgi *g)
{
    pt_conn *c = g->c;
    g->c = NULL;
    if (c && c->gw == g)
        c->gw = NULL;
    if (!g->reaped && g->kill_stage == 0) /* bounded: it must exit within its timeout */
        pt_timer_arm(&g->w->loop, &g->timer, g->tl_timeout);
    /* keep draining stdout/stderr so the script never blocks on a full pipe */
    if (g->fd_out >= 0)
        pt_io_set(&g->w->loop, &g->io_out, EPOLLIN);
    if (g->fd_in >= 0)
        close_io(g, &g->io_in, &g->fd_in);
    maybe_free(g);
}

void pt_cgi_abort(pt_cgi *g)
{
    terminate(g);
    pt_cgi_detach(g);
}

void pt_cgi_shutdown(pt_worker *w)
{
    for (pt_cgi *g = w->cgis; g; g = g->next)
        kill_group(g, SIGKILL);
    while (w->cgis) {
        pt_cgi *g = w->cgis;
        g->c = NULL;
        close_io(g, &g->io_in, &g->fd_in);
        close_io(g, &g->io_out, &g->fd_out);
        close_io(g, &g->io_err, &g->fd_err);
        if (!g->reaped && g->pid > 0 && waitpid(g->pid, NULL, 0) == g->pid)
            w->cgi_running--;
        g->reaped = true;
        maybe_free(g);
    }
}
