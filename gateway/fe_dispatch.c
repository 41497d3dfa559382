/* SPDX-License-Identifier: MIT */
/* fe_dispatch: requests of the HTTP front end to the backend, and every backend answer back to
 * the transport its request came by.
 *
 * An HTTP request for /announce or /scrape is parsed (proto/query), its client address settled
 * (the socket's peer, or X-Forwarded-For / X-Real-IP from a trusted proxy), checked against the
 * access list (a refusal is a failure reason and never reaches the backend), and submitted with a
 * pending slot that says how to answer it; anything else is answered at once with an error. The
 * UDP path builds its backend requests itself (fe_udp.c), per batch.
 *
 * Invariant: every pending slot taken is freed by exactly one fe_dispatch_done() call (the
 * backend calls done() once per request); an answer for an HTTP connection closed or reused
 * meanwhile (its generation moved on) is dropped. */
#include "fe_internal.h"
#include "query.h"

#include <string.h>

/* Turn the backend's reply into the response to request p->seq of c. */
static void http_answer_now(worker_t *w, conn_t *c, const pending_t *p, const backend_reply_t *r)
{
    if (r->failure) {
        fe_failed(w, FRONTEND_HTTP, p->kind, FRONTEND_ERR_BACKEND);
        fe_http_failure(w, c, p->seq, r->failure, r->retry_in, p->keep_alive);
        return;
    }
    size_t n;
    if (p->kind == BACKEND_SCRAPE) {
        n = httpresp_scrape(w->scratch, sizeof(w->scratch),
                            (const uint8_t(*)[SHOAL_HASH_LEN])r->hashes, r->scrape, r->n_scrape,
                            p->keep_alive);
    } else {
        httpresp_announce_t a = {
            .interval = jittered_interval(w),
            .min_interval = w->fe->cfg.min_interval,
            .stats = r->stats,
            .peers = r->peers,
            .n_peers = r->n_peers,
            .family = p->family,
            .compact = p->compact,
            .keep_alive = p->keep_alive,
        };
        n = httpresp_announce(w->scratch, sizeof(w->scratch), &a);
    }
    if (n == 0) {
        fe_failed(w, FRONTEND_HTTP, p->kind, FRONTEND_ERR_TOO_LARGE);
        fe_http_status(w, c, p->seq, 500, "response too large", false);
        return;
    }
    if (p->kind == BACKEND_SCRAPE) {
        w->c[C_HTTP_SCRAPE_OK]++;
    } else {
        w->c[C_HTTP_ANNOUNCE_OK]++;
        w->c[C_HTTP_PEERS] += r->n_peers;
    }
    fe_http_put(w, c, p->seq, w->scratch, n, !p->keep_alive);
}

static void http_answer(worker_t *w, const pending_t *p, const backend_reply_t *r)
{
    conn_t *c = &w->conns[p->conn];
    if (!c->open || c->gen != p->conn_gen)
        return; /* the client went away meanwhile */
    http_answer_now(w, c, p, r);
    /* A late answer frees a place in the pipeline window: serve what the client pipelined
     * meanwhile, after this poll's answers have been gathered (fe_http_settle). */
    if (c != w->processing && c->open)
        fe_http_mark(w, c);
}

/* The client's address: the socket's peer, or what a trusted proxy says it is. */
static int http_client(worker_t *w, const conn_t *c, const httpreq_t *req, endpoint_t *ep)
{
    *ep = c->peer;
    const netaddr_list_t *trusted = &w->fe->cfg.trusted_proxies;
    if (!req->forwarded_for || trusted->n == 0 || !netaddr_list_contains(trusted, &c->peer))
        return 0;
    return netaddr_forwarded_client(req->forwarded_for, req->forwarded_for_len, trusted, ep);
}

static bool path_is(const httpreq_t *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

/* Whether the access list lets worker w serve all n hashes (one for an announce); a refusal is
 * counted. A scrape is refused whole if any of its hashes is: answering the others alone would
 * need a reply the client cannot tell from a partial one. */
static bool acl_allows(worker_t *w, int kind, const uint8_t *hashes, size_t n)
{
    access_t *acl = w->fe->cfg.access;
    if (!acl || access_allows_all(acl, w->index, hashes, n))
        return true;
    w->c[C_HTTP_ACCESS_REFUSED]++;
    fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_ACCESS);
    return false;
}

/* Serve request seq of c: answered at once, or handed to the backend. */
void fe_dispatch_http(worker_t *w, conn_t *c, uint32_t seq, const httpreq_t *req)
{
    bool announce = path_is(req, "/announce");
    if (!announce && !path_is(req, "/scrape")) {
        fe_failed(w, FRONTEND_HTTP, FE_NO_KIND, FRONTEND_ERR_NOT_FOUND);
        fe_http_status(w, c, seq, 404, "not found: this tracker serves /announce and /scrape",
                       req->keep_alive);
        return;
    }
    endpoint_t client;
    int kind = announce ? BACKEND_ANNOUNCE : BACKEND_SCRAPE;
    if (http_client(w, c, req, &client) != 0) {
        fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_BAD_REQUEST);
        fe_http_failure(w, c, seq, "invalid X-Forwarded-For or X-Real-IP from proxy", 0,
                        req->keep_alive);
        return;
    }
    uint8_t addr16[16];
    announce_endpoint_to16(&client, addr16);
    if (fe_abuse_check(w, FRONTEND_HTTP, addr16) != FRONTEND_ERR_COUNT) {
        fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_RATE_LIMITED);
        fe_http_failure(w, c, seq, "rate limited", 1, req->keep_alive); /* retry in 1 minute */
        return;
    }
    uint32_t tag;
    backend_req_t b = {0};
    if (announce) {
        query_announce_t q;
        query_err_t err = query_parse_announce(req->query, req->query_len, &q);
        if (err != QUERY_OK) {
            fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_BAD_REQUEST);
            fe_http_failure(w, c, seq, query_strerror(err), 0, req->keep_alive);
            return;
        }
        if (!acl_allows(w, kind, q.announce.info_hash, 1)) {
            fe_http_failure(w, c, seq, ACCESS_REFUSED_MSG, 0, req->keep_alive);
            return;
        }
        q.announce.peer.family = client.family;
        memcpy(q.announce.peer.addr, client.addr, sizeof(client.addr));
        pending_t *p = pending_alloc(w, &tag);
        if (!p) {
            fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_BUSY);
            fe_http_failure(w, c, seq, "tracker busy, retry later", 1, req->keep_alive);
            return;
        }
        *p = (pending_t){.transport = PEND_HTTP,
                         .kind = BACKEND_ANNOUNCE,
                         .family = client.family,
                         .compact = q.compact,
                         .keep_alive = req->keep_alive,
                         .conn = (uint32_t)(c - w->conns),
                         .conn_gen = c->gen,
                         .seq = seq};
        b.kind = BACKEND_ANNOUNCE;
        b.tag = tag;
        b.announce = &q.announce;
        b.numwant = cap_numwant(&w->fe->cfg, q.announce.numwant, SHOAL_NUMWANT_MAX);
        w->c[C_HTTP_ANNOUNCE]++;
        w->backend.ops->submit(w->backend.self, &b, 1, fe_dispatch_done, w);
        return;
    }
    uint8_t hashes[SHOAL_SCRAPE_MAX][SHOAL_HASH_LEN];
    size_t n = 0;
    query_err_t err =
        query_parse_scrape(req->query, req->query_len, hashes, w->fe->cfg.scrape_max, &n);
    if (err != QUERY_OK) {
        fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_BAD_REQUEST);
        fe_http_failure(w, c, seq, query_strerror(err), 0, req->keep_alive);
        return;
    }
    if (n == 0) {
        fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_BAD_REQUEST);
        fe_http_failure(w, c, seq, "full scrape is not supported: give one or more info_hash", 0,
                        req->keep_alive);
        return;
    }
    if (!acl_allows(w, kind, &hashes[0][0], n)) {
        fe_http_failure(w, c, seq, ACCESS_REFUSED_MSG, 0, req->keep_alive);
        return;
    }
    pending_t *p = pending_alloc(w, &tag);
    if (!p) {
        fe_failed(w, FRONTEND_HTTP, kind, FRONTEND_ERR_BUSY);
        fe_http_failure(w, c, seq, "tracker busy, retry later", 1, req->keep_alive);
        return;
    }
    *p = (pending_t){.transport = PEND_HTTP,
                     .kind = BACKEND_SCRAPE,
                     .family = client.family,
                     .keep_alive = req->keep_alive,
                     .conn = (uint32_t)(c - w->conns),
                     .conn_gen = c->gen,
                     .seq = seq};
    b.kind = BACKEND_SCRAPE;
    b.tag = tag;
    b.hashes = &hashes[0][0];
    b.n_hashes = n;
    w->c[C_HTTP_SCRAPE]++;
    w->backend.ops->submit(w->backend.self, &b, 1, fe_dispatch_done, w);
}

void fe_dispatch_done(void *arg, uint32_t tag, const backend_reply_t *reply)
{
    worker_t *w = arg;
    pending_t *p = &w->pending[tag & (PENDING_MAX - 1)];
    if (p->transport == PEND_UDP)
        fe_udp_answer(w, p, reply);
    else if (p->transport == PEND_HTTP)
        http_answer(w, p, reply);
    p->transport = PEND_FREE;
}
