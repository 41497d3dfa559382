/* SPDX-License-Identifier: MIT */
/* repoopts: the repository options every binary that holds swarms shares (shoal, shoal-node),
 * so they are spelled, checked and documented once, with the repository's own defaults
 * (repo_default_limits).
 *
 * A binary embeds a repoopts_t in its config struct, adds repoopts_spec() to its option table
 * (daemon_options(), offsets relative to the repoopts_t), and after parsing calls repoopts_limits()
 * and repoopts_new_repo(). */
#ifndef SHOAL_REPOOPTS_H
#define SHOAL_REPOOPTS_H

#include "opts.h"
#include "repo.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t peer_timeout; /* seconds */
    uint32_t max_torrents;
    uint32_t max_peers;
    uint32_t memory_mib;
    uint32_t stripe_bits;
} repoopts_t;

/* The defaults: repo_default_limits and REPO_STRIPE_BITS_DEFAULT. */
void repoopts_defaults(repoopts_t *o);

/* The option specs, offsets relative to a repoopts_t. Static storage. */
opts_table_t repoopts_spec(void);

/* The limits the options say. */
repo_limits_t repoopts_limits(const repoopts_t *o);

/* A repository as the options say; NULL if memory runs out. The caller destroys it. */
repo_t *repoopts_new_repo(const repoopts_t *o);

#endif
