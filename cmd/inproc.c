/* SPDX-License-Identifier: MIT */
/* inproc: the repository as an in-process backend (inproc.h). */
#include "inproc.h"

#include "mono.h"

#include <stdlib.h>

typedef struct {
    repo_t *repo;
    uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    swarm_stats_t stats[SHOAL_SCRAPE_MAX];
} local_t;

static void local_submit(void *self, const backend_req_t *reqs, size_t n, backend_done_fn done,
                         void *arg)
{
    local_t *l = self;
    uint32_t now = mono_s();
    for (size_t i = 0; i < n; i++) {
        const backend_req_t *r = &reqs[i];
        backend_reply_t reply = {0};
        if (r->kind == BACKEND_ANNOUNCE) {
            repo_result_t res;
            size_t numwant = r->numwant > SHOAL_NUMWANT_MAX ? SHOAL_NUMWANT_MAX : r->numwant;
            if (repo_announce(l->repo, r->announce, now, numwant, l->peers, &res) != REPO_OK) {
                reply.failure = "tracker is full: no new torrents accepted now";
                reply.retry_in = 10;
            } else {
                reply.stats = res.stats;
                reply.peers = l->peers;
                reply.n_peers = res.n_peers;
            }
        } else {
            size_t k = r->n_hashes > SHOAL_SCRAPE_MAX ? SHOAL_SCRAPE_MAX : r->n_hashes;
            for (size_t h = 0; h < k; h++)
                repo_scrape(l->repo, r->hashes + h * SHOAL_HASH_LEN, &l->stats[h]);
            reply.scrape = l->stats;
            reply.hashes = r->hashes;
            reply.n_scrape = k;
        }
        done(arg, r->tag, &reply);
    }
}

static void local_destroy(void *self)
{
    free(self);
}

static const backend_ops_t local_ops = {.submit = local_submit, .destroy = local_destroy};

int inproc_open(void *arg, unsigned worker, backend_t *out)
{
    (void)worker;
    local_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->repo = arg;
    out->ops = &local_ops;
    out->self = l;
    return 0;
}
