/* zresp.h: compression on the fly for responses (static files and
 * gateways): which responses, in which coding (Accept-Encoding with
 * weights), the header changes (Content-Encoding, Vary, weak ETag, no
 * Content-Length), and the streaming of a static file through a coder in
 * bounded rounds. The coders themselves are compress.c's. */
#ifndef PT_ZRESP_H
#define PT_ZRESP_H

#include "first.h"
#include "compress.h"
#include "conf.h"
#include "resp.h"

struct pt_req;
struct pt_cgi_resp;

/* What decides whether a response may be compressed. */
typedef struct pt_zinfo {
    int status;
    const char *ctype; /* Content-Type value (parameters ignored), NULL none */
    size_t ctype_len;
    bool has_ce;       /* a Content-Encoding is set already (precompressed, backend) */
    bool no_transform; /* Cache-Control: no-transform (RFC 9111 §5.2.2.6) */
    int64_t length;    /* the identity length, -1 unknown */
} pt_zinfo;

/* The settings that apply to c's request (its location's). */
const pt_compress_cfg *pt_zresp_cfg(const struct pt_req *r);
/* The coding for this response, PT_ZC_NONE to leave it alone. *vary: the
 * response depends on Accept-Encoding (the type and size qualify), so
 * "Vary: Accept-Encoding" belongs on it whatever was chosen. */
pt_zcoding pt_zresp_choose(const struct pt_req *r, const pt_zinfo *i, bool *vary);
/* A coder for zc at the location's level, for length input bytes (-1
 * unknown); NULL for HEAD (no body) or when out of memory. */
pt_compress *pt_zresp_coder(const struct pt_req *r, pt_zcoding zc, int64_t length);

/* ---- gateways (gw.c) ---- */
/* Decide for a gateway's parsed header block. */
pt_zcoding pt_zresp_gw_choose(const struct pt_req *r, const struct pt_cgi_resp *cr, bool *vary);
/* One header of the program's block to the client; with compressing set,
 * a strong ETag goes out weak (RFC 9110 §8.8.1: the coded bytes differ).
 * Inline: most answers are not coded here, and a call per field only to
 * test the flag cost about as much as the test. */
void pt_zresp_gw_header_coded(struct pt_req *r, const char *n, size_t nl, const char *v, size_t vl);
static inline void pt_zresp_gw_header(struct pt_req *r, const char *n, size_t nl, const char *v,
                                      size_t vl, bool compressing)
{
    if (compressing)
        pt_zresp_gw_header_coded(r, n, nl, v, vl);
    else
        pt_resp_header_n(r, n, nl, v, vl);
}
/* Content-Encoding (when zc) and Vary (when vary). */
void pt_zresp_coding_headers(struct pt_req *r, pt_zcoding zc, bool vary);

/* ---- static files (static.c) ---- */
/* Stream the entity of c->file_ent (size bytes) through z (taken) as the
 * chunked body: a round of input per output drain, so a slow reader holds
 * at most one round of output. Returns 0, or -1 (z freed). */
int pt_zresp_file(struct pt_req *r, pt_compress *z, uint64_t size);

#endif
