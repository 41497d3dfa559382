/* SPDX-License-Identifier: MIT */
/* repoopts: shared repository options (repoopts.h). */
#include "repoopts.h"

void repoopts_defaults(repoopts_t *o)
{
    const repo_limits_t *d = &repo_default_limits;
    *o = (repoopts_t){
        .peer_timeout = d->peer_timeout_s,
        .max_torrents = d->max_torrents,
        .max_peers = d->max_peers_per_swarm,
        .memory_mib = (uint32_t)(d->memory_budget >> 20),
        .stripe_bits = REPO_STRIPE_BITS_DEFAULT,
    };
}

#define SPEC(...) OPTS_SPEC(repoopts_t, __VA_ARGS__)

static const opts_spec_t specs[] = {
    SPEC("peer-timeout", "S", OPTS_UINT, peer_timeout, 1, 604800,
         "forget a peer not heard from for this long"),
    SPEC("max-torrents", "N", OPTS_UINT, max_torrents, 1, 0xffffffffu,
         "most swarms kept; announces for new ones are refused beyond it"),
    SPEC("max-peers", "N", OPTS_UINT, max_peers, 1, 0xffffffffu,
         "most peers kept per swarm and address family"),
    SPEC("memory", "MIB", OPTS_UINT, memory_mib, 16, 1048576,
         "memory budget for swarms and peers, MiB"),
    SPEC("stripes", "BITS", OPTS_UINT, stripe_bits, 0, 16,
         "the repository has 2^BITS independently locked stripes"),
};

opts_table_t repoopts_spec(void)
{
    return OPTS_TABLE(specs);
}

repo_limits_t repoopts_limits(const repoopts_t *o)
{
    return (repo_limits_t){
        .max_torrents = o->max_torrents,
        .max_peers_per_swarm = o->max_peers,
        .memory_budget = (uint64_t)o->memory_mib << 20,
        .peer_timeout_s = o->peer_timeout,
    };
}

repo_t *repoopts_new_repo(const repoopts_t *o)
{
    repo_limits_t limits = repoopts_limits(o);
    return repo_new(o->stripe_bits, &limits);
}
