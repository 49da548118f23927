/* test_handler.c: the handler table (handler.h): every location's handler
 * is found by name when the configuration loads, and what the connection
 * asks of a handler (PT_HF_*) is what it asked by handler kind before. */
#include "first.h"
#include "conf.h"
#include "handler.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"

static const struct {
    const char *name;
    pt_handler_kind kind;
    unsigned flags;
} want[] = {
    {"static", PT_H_STATIC, PT_HF_FILES},
    {"cgi", PT_H_CGI, PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR},
    /* request_buffering = false streams a body with a length to every pooled
     * transport, a chunked one to HTTP alone */
    {"fastcgi", PT_H_FASTCGI,
     PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_INDEX_EXT | PT_HF_STREAM_BODY},
    {"scgi", PT_H_SCGI, PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY},
    {"uwsgi", PT_H_UWSGI, PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY},
    {"proxy", PT_H_PROXY,
     PT_HF_BODY | PT_HF_METHODS | PT_HF_SCRIPT_DIR | PT_HF_STREAM_BODY | PT_HF_STREAM_CHUNKED},
    {"status", PT_H_STATUS, PT_HF_BODY | PT_HF_METHODS},
};

static void test_every_handler_is_found_by_its_name(void)
{
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const pt_handler *h = pt_handler_find(want[i].name);
        ok(h && strcmp(h->name, want[i].name) == 0 && h->kind == (int)want[i].kind && h->start,
           "handler \"%s\" is found, with its kind and a start", want[i].name);
        ok(h && h->flags == want[i].flags, "handler \"%s\": the flags conn.c used to derive",
           want[i].name);
    }
    ok(pt_handler_find("tunnel") == NULL && pt_handler_find("") == NULL,
       "an unknown name finds nothing");
    ok(strcmp(pt_handler_names(), "static, cgi, fastcgi, scgi, uwsgi, proxy or status") == 0,
       "the names list for error messages: %s", pt_handler_names());
    ok(pt_handler_of(NULL) == pt_handler_find("static"),
       "no location (OPTIONS *) is the static handler's");
}

static void test_the_gateways_sharing_the_upstream_module_share_its_worker_hooks(void)
{
    const pt_handler *f = pt_handler_find("fastcgi");
    const char *same[] = {"scgi", "uwsgi", "proxy"};
    for (size_t i = 0; i < 3; i++)
        ok(f && f->worker && pt_handler_find(same[i])->worker == f->worker,
           "\"%s\" has FastCGI's worker hooks (run once per worker)", same[i]);
    ok(pt_handler_find("cgi")->worker != f->worker && pt_handler_find("cgi")->worker->child,
       "CGI has its own, with a SIGCHLD hook");
    ok(pt_handler_find("static")->worker == NULL, "static files keep no worker state");
}

static void test_every_location_gets_its_handler_at_load(void)
{
    char err[512];
    pt_config *c = pt_config_load_string(
        "backends = ( { name = \"b\"; servers = [ \"127.0.0.1:9\" ]; } );\n"
        "locations = ( { extension = \".php\"; handler = \"fastcgi\"; backend = \"b\"; },\n"
        "  { prefix = \"/s/\"; handler = \"scgi\"; backend = \"b\"; },\n"
        "  { prefix = \"/u/\"; handler = \"uwsgi\"; backend = \"b\"; },\n"
        "  { prefix = \"/p/\"; handler = \"proxy\"; backend = \"b\"; },\n"
        "  { prefix = \"/cgi-bin/\"; handler = \"cgi\"; },\n"
        "  { exact = \"/status\"; handler = \"status\"; },\n"
        "  { prefix = \"/files/\"; } );\n",
        "/nonexistent/t.conf", NULL, err, sizeof(err));
    ok(c != NULL, "a configuration with every handler loads (%s)", c ? "ok" : err);
    if (!c)
        return;
    size_t n = 0, good = 0;
    for (size_t v = 0; v < c->nvhosts; v++)
        for (size_t k = 0; k < c->vhosts[v].nlocs; k++) {
            const pt_location *l = &c->vhosts[v].locs[k];
            n++;
            good += l->h && l->h->kind == (int)l->handler;
        }
    ok(n >= 8 && good == n, "every location (%zu, the implicit / too) has its handler", n);
    const pt_vhost *vh = &c->vhosts[0];
    const pt_location *root = pt_config_location(vh, "/x", 2);
    ok(root && root->h == pt_handler_find("static"), "the implicit / location is static");
    pt_config_free(c);
}

int main(void)
{
    test_every_handler_is_found_by_its_name();
    test_the_gateways_sharing_the_upstream_module_share_its_worker_hooks();
    test_every_location_gets_its_handler_at_load();
    return tap_done();
}
