/* master.h: the master process: forks and supervises the workers, forwards
 * signals, respawns crashed workers. */
#ifndef PT_MASTER_H
#define PT_MASTER_H

#include "first.h"
#include "conf.h"
#include "listen.h"

/* Runs until the server stops; returns the process exit code. cli is kept
 * to load the configuration again on SIGHUP; *cfg and *ls are replaced by
 * the configuration and listeners current at exit (the caller frees them). */
int pt_master_run(pt_config **cfg, pt_listener **ls, size_t *nls, const pt_cli *cli);

#endif
