/* xsend.h: X-Sendfile (lighttpd, Apache mod_xsendfile) and X-Accel-Redirect
 * (nginx): a gateway's answer names a file, or a local URI, and portico
 * serves that with the static-file path instead of the backend's body. */
#ifndef PT_XSEND_H
#define PT_XSEND_H

#include "first.h"

struct pt_gw;
struct pt_req;

/* Called once the header block is parsed (gw.c): when it names a file or
 * URI and the location honours it, the gateway is detached (the transport
 * drains and drops the program's body) and the file or URI is served;
 * returns true. false: answer with the backend's response as usual (the
 * header itself is never passed on). */
bool pt_xsend_take(struct pt_gw *g);

/* The backend's headers to add to the file's 200/206/304 head (raw lines,
 * Content-Type apart), freed with the request. */
void pt_xsend_release(struct pt_req *r);

#endif
