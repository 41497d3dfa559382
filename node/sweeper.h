/* SPDX-License-Identifier: MIT */
/* sweeper: the background thread that expires peers of a repository.
 *
 * Every period it walks the repository one stripe lock at a time (repo_expire), so requests to
 * the other stripes go on meanwhile. The period is a tenth of the peer timeout, kept within
 * 1..60 s, so a peer outlives its timeout by at most about 10 %. Started and stopped
 * synchronously by its owner; it never logs (the count of expired peers goes to on_expired). */
#ifndef SHOAL_SWEEPER_H
#define SHOAL_SWEEPER_H

#include "repo.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sweeper sweeper_t;

/* Called from the sweeper thread after a sweep that removed peers. */
typedef void (*sweeper_report_fn)(void *arg, size_t removed);

/* Start sweeping repo (borrowed: it must outlive the sweeper) for a peer timeout of
 * peer_timeout_s. on_expired may be NULL. Returns NULL if the thread cannot start. */
sweeper_t *sweeper_start(repo_t *repo, uint32_t peer_timeout_s, sweeper_report_fn on_expired,
                         void *arg);

/* Stop the thread, wait for it, free, and set *self_p to NULL. NULL-safe. */
void sweeper_stop(sweeper_t **self_p);

#endif
