/* master.h: the master process: forks and supervises the workers, forwards
 * signals, respawns crashed workers. */
#ifndef PT_MASTER_H
#define PT_MASTER_H

#include "first.h"
#include "conf.h"
#include "listen.h"

/* Runs until the server stops; returns the process exit code. */
int pt_master_run(pt_config *cfg, pt_listener *ls, size_t nls);

#endif
