/* fcgi_rec.h: the FastCGI record codec (FastCGI 1.0 specification §3, §5)
 * on libfcgi's <fastcgi.h> protocol definitions: encoders for the records
 * portico sends and a resumable decoder for the records a backend sends. */
#ifndef PT_FCGI_REC_H
#define PT_FCGI_REC_H

#include "first.h"
#include <fastcgi.h>

/* ---- encoding ----------------------------------------------------------- */

/* An 8-byte record header (§3.3). */
void pt_fcgi_header(unsigned char out[FCGI_HEADER_LEN], unsigned type, uint16_t id,
                    uint16_t content_len, uint8_t padding_len);
/* A whole FCGI_BEGIN_REQUEST record (16 bytes, §5.1). */
void pt_fcgi_begin_request(unsigned char out[16], uint16_t id, uint16_t role, bool keep_conn);
/* A whole FCGI_ABORT_REQUEST record (8 bytes). */
void pt_fcgi_abort_request(unsigned char out[FCGI_HEADER_LEN], uint16_t id);

/* FCGI_PARAMS stream builder: name-value pairs (§3.4: 1- or 4-byte
 * lengths) packed into PARAMS records of at most 65535 content bytes,
 * padded to a multiple of 8, in one growing malloc'd buffer. A pair never
 * straddles two records (PHP-FPM decodes each record on its own), so a
 * pair longer than one record can hold is refused. */
typedef struct pt_fcgi_params {
    char *buf;
    size_t len, cap;
    size_t rec; /* offset of the open record's header, or SIZE_MAX when none */
    uint16_t id;
    bool failed; /* an add failed (ENOMEM/E2BIG): finish reports it */
    int err;
} pt_fcgi_params;

void pt_fcgi_params_init(pt_fcgi_params *p, uint16_t id);
/* 0, or -1 with errno ENOMEM, or E2BIG when the encoded pair exceeds
 * FCGI_MAX_LENGTH. */
int pt_fcgi_params_add(pt_fcgi_params *p, const char *name, size_t nlen, const char *value,
                       size_t vlen);
/* Close the open record and append the empty PARAMS record that ends the
 * stream. 0, or -1 with errno (the first failure of any add). */
int pt_fcgi_params_finish(pt_fcgi_params *p);
void pt_fcgi_params_free(pt_fcgi_params *p);

/* An FCGI_GET_VALUES record (request id 0) asking for FCGI_MAX_CONNS,
 * FCGI_MAX_REQS and FCGI_MPXS_CONNS. Returns its length (<= 128) written
 * into out. */
size_t pt_fcgi_get_values(unsigned char out[128]);

/* Walk name-value pairs (§3.4) in p[0..len): cb for each; returns 0, or -1
 * when a length runs past the end (checked first: cb is then not called at
 * all). */
int pt_fcgi_pairs(const char *p, size_t len,
                  void (*cb)(void *ctx, const char *name, size_t nlen, const char *value,
                             size_t vlen),
                  void *ctx);

/* ---- decoding ----------------------------------------------------------- */

typedef enum pt_fcgi_ev_type {
    PT_FCGI_EV_NONE = 0, /* all input consumed, nothing to report */
    PT_FCGI_EV_STDOUT,   /* data/len: a slice of FCGI_STDOUT content (len 0: the stream's end) */
    PT_FCGI_EV_STDERR,   /* data/len: a slice of FCGI_STDERR content (len 0: the stream's end) */
    PT_FCGI_EV_END,      /* FCGI_END_REQUEST: app_status, protocol_status */
    PT_FCGI_EV_VALUES,   /* FCGI_GET_VALUES_RESULT: data/len = the whole content (pairs) */
    PT_FCGI_EV_ERROR,    /* protocol violation: error says which; the decoder is dead */
} pt_fcgi_ev_type;

typedef struct pt_fcgi_event {
    pt_fcgi_ev_type type;
    const char *data; /* points into the fed bytes (STDOUT/STDERR) or the decoder (VALUES) */
    size_t len;
    uint32_t app_status;
    uint8_t protocol_status; /* FCGI_REQUEST_COMPLETE, FCGI_CANT_MPX_CONN, ... */
    const char *error;       /* static text */
} pt_fcgi_event;

typedef struct pt_fcgi_dec {
    uint16_t id; /* the request id expected (management records use 0) */
    /* private */
    int state;
    unsigned char hdr[FCGI_HEADER_LEN];
    size_t hlen;
    unsigned type;
    uint16_t rid;
    size_t content_left, padding_left;
    unsigned char small[8]; /* END_REQUEST body */
    size_t small_len;
    char *values; /* GET_VALUES_RESULT content (malloc'd, <= 65535) */
    size_t values_len;
    bool dead;
} pt_fcgi_dec;

void pt_fcgi_dec_init(pt_fcgi_dec *d, uint16_t id);
void pt_fcgi_dec_free(pt_fcgi_dec *d);
/* Decode from p[0..len): returns the bytes consumed and fills *ev. It
 * stops after each event, so call it in a loop: while (len) { n =
 * feed(...); p += n; len -= n; handle(ev); }. Records may be split at any
 * byte (headers included); padding is skipped. STDOUT/STDERR slices point
 * into p (zero copy). Errors (EV_ERROR, then every later call errors too):
 * version != FCGI_VERSION_1; a request id other than d->id (or 0 for
 * GET_VALUES_RESULT / UNKNOWN_TYPE); a type a responder's backend must not
 * send (BEGIN_REQUEST, ABORT_REQUEST, PARAMS, STDIN, DATA, GET_VALUES,
 * unknown types); END_REQUEST with content length != 8; FCGI_UNKNOWN_TYPE
 * from the backend (it did not understand us); a GET_VALUES_RESULT record
 * with a non-zero id. Everything after an END_REQUEST is left for the caller
 * (the return value stops at the record's end, padding included).
 * END and VALUES are reported once their padding is consumed; the VALUES
 * data lasts until the next GET_VALUES_RESULT or pt_fcgi_dec_free. A data
 * slice is never empty, so len 0 always means the stream's end. After an
 * error the whole input counts as consumed. */
size_t pt_fcgi_dec_feed(pt_fcgi_dec *d, const char *p, size_t len, pt_fcgi_event *ev);
/* True between records (nothing half-read): a clean place for the stream
 * to end. */
bool pt_fcgi_dec_idle(const pt_fcgi_dec *d);

#endif
