/* h1_resp.h: the HTTP/1.1 framer (resp.h): status line, Date, Server,
 * Content-Length or chunked framing and Connection, into the connection's
 * output queue. */
#ifndef PT_H1_RESP_H
#define PT_H1_RESP_H

#include "first.h"
#include "resp.h"

extern const pt_framer pt_h1_framer;

#endif
