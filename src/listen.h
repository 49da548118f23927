/* listen.h: listening sockets: bound by the master, inherited by workers. */
#ifndef PT_LISTEN_H
#define PT_LISTEN_H

#include "first.h"
#include "conf.h"

typedef struct pt_listener {
    int fd;
    char text[64]; /* printable address */
    const pt_listen_cfg *cfg;
} pt_listener;

/* Bind and listen every configured address. Returns 0, or -1 with err. */
int pt_listen_open(const pt_config *c, pt_listener **out, size_t *n, char *err, size_t errlen);
void pt_listen_close(pt_listener *ls, size_t n);

#endif
