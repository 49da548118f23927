/* proxyproto.h: the PROXY protocol header a load balancer sends before
 * the client's first byte (HAProxy's proxy-protocol.txt, versions 1 and
 * 2). A leaf: parsing only; realip.c reads the socket. */
#ifndef PT_PROXYPROTO_H
#define PT_PROXYPROTO_H

#include "first.h"

/* v1: "PROXY TCP6 " + 2 * 39 + 2 * 5 + 3 spaces + CRLF */
#define PT_PROXY_V1_MAX 107
/* v2: 16 bytes, then at most this many (addresses and TLVs) */
#define PT_PROXY_V2_MAX_LEN 2048
#define PT_PROXY_MAX (16 + PT_PROXY_V2_MAX_LEN)

typedef struct pt_proxy_hdr {
    int version;   /* 1 or 2 */
    bool has_addr; /* false: UNKNOWN (v1), LOCAL or UNSPEC/UNIX (v2): keep the peer */
    int af;        /* AF_INET or AF_INET6 when has_addr */
    unsigned char src[16], dst[16];
    uint16_t src_port, dst_port;
} pt_proxy_hdr;

/* Parse the header at the start of buf[0..len). Returns its length (> 0)
 * with out filled, 0 when buf is a proper prefix of a header that may
 * still be valid (every byte of buf belongs to the header then), or -1
 * with a short reason in *why when it can never be valid. */
int pt_proxyproto_parse(const unsigned char *buf, size_t len, pt_proxy_hdr *out, const char **why);

#endif
