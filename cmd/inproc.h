/* SPDX-License-Identifier: MIT */
/* inproc: the standalone tracker's backend: the gateway's front ends (backend.h) answered from
 * the node's swarm repository in the calling worker's thread, during submit(). No ZeroMQ, no
 * copy beyond the reply. It is the one module that speaks both the gateway's and the node's
 * interfaces, so it lives with the binary that composes both. */
#ifndef SHOAL_INPROC_H
#define SHOAL_INPROC_H

#include "backend.h"
#include "repo.h"

/* A backend_open_fn: arg is the repo_t (borrowed; it outlives every worker). One instance per
 * worker holds that worker's reply buffers. */
int inproc_open(void *arg, unsigned worker, backend_t *out);

#endif
