/* SPDX-License-Identifier: MIT */
/* fe_udp: the UDP (BEP 15) path of a front-end worker.
 *
 * A wake-up reads up to UDP_ROUNDS batches of UDP_BATCH datagrams with recvmmsg. Each datagram is
 * parsed (proto/bep15); connects and errors are answered at once, announces and scrapes with a
 * valid connection id and an info-hash the access list allows (every one, for a scrape) get a
 * pending slot and go to the backend, all of a batch in one submit().
 * Replies are encoded into the worker's out_buf slots (proto/bep15) and sent in one sendmmsg per
 * batch and socket.
 *
 * Invariant: out_msgs[0..n_out) are replies ready to send on out_fd, each naming its own
 * destination; nothing is queued for another socket until they are flushed. Every function a
 * datagram goes through lives here or is static inline in fe_internal.h: no call leaves this
 * file per packet but the codec's, the connection-id check and the backend's. */
#include "fe_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

void fe_udp_flush(worker_t *w)
{
    size_t sent = 0;
    /* Bounded: each round sends at least one message or gives up. */
    while (sent < w->n_out) {
        int r = sendmmsg(w->out_fd, w->out_msgs + sent, (unsigned)(w->n_out - sent), MSG_DONTWAIT);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            /* The socket buffer is full or the destination is unreachable: UDP clients
             * retry, so the rest of the batch is dropped rather than waited for. */
            w->c[C_UDP_DROPPED] += w->n_out - sent;
            break;
        }
        sent += (size_t)r;
    }
    w->n_out = 0;
}

/* The next reply buffer toward addr on fd; flushes first if the batch is full or the socket
 * changes. */
static uint8_t *udp_slot(worker_t *w, int fd, const void *addr, socklen_t addr_len)
{
    if (w->n_out == UDP_BATCH || (w->n_out > 0 && w->out_fd != fd))
        fe_udp_flush(w);
    w->out_fd = fd;
    struct msghdr *h = &w->out_msgs[w->n_out].msg_hdr;
    h->msg_name = (void *)addr;
    h->msg_namelen = addr_len;
    return w->out_buf[w->n_out];
}

static void udp_commit(worker_t *w, size_t len)
{
    if (len == 0)
        return;
    w->out_iov[w->n_out].iov_len = len;
    w->n_out++;
}

/* An error reply to a request of req_len bytes: never longer than the request, so a forged source
 * (one without a valid connection id yet) gets no more bytes than were sent in its name (no
 * amplification); the message is cut short if need be. */
static void udp_error(worker_t *w, int fd, const void *addr, socklen_t addr_len, uint32_t tid,
                      const char *msg, size_t req_len)
{
    char cut[BEP15_MAX_REPLY - BEP15_ERROR_HDR];
    size_t room = req_len - BEP15_ERROR_HDR; /* req_len >= 16: shorter ones are dropped */
    if (strlen(msg) > room && room < sizeof(cut)) {
        memcpy(cut, msg, room);
        cut[room] = '\0';
        msg = cut;
    }
    uint8_t *out = udp_slot(w, fd, addr, addr_len);
    udp_commit(w, bep15_write_error(out, BEP15_MAX_REPLY, tid, msg));
    w->c[C_UDP_ERRORS]++;
}

/* Inline into udp_done, the per-packet path; fe_udp_answer is the same for fe_dispatch_done. */
static inline void udp_answer(worker_t *w, const pending_t *p, const backend_reply_t *r)
{
    uint8_t *out = udp_slot(w, p->fd, &p->addr, p->addr_len);
    if (r->failure) {
        udp_commit(w, bep15_write_error(out, BEP15_MAX_REPLY, p->tid, r->failure));
        w->c[C_UDP_ERRORS]++;
        fe_failed(w, FRONTEND_UDP, p->kind, FRONTEND_ERR_BACKEND);
        return;
    }
    if (p->kind == BACKEND_SCRAPE) {
        udp_commit(w, bep15_write_scrape(out, BEP15_MAX_REPLY, p->tid, r->scrape, r->n_scrape));
        w->c[C_UDP_SCRAPE_OK]++;
        return;
    }
    w->c[C_UDP_ANNOUNCE_OK]++;
    w->c[C_UDP_PEERS] += r->n_peers;
    bep15_announce_reply_t a = {.transaction_id = p->tid,
                                .interval = jittered_interval(w),
                                .stats = r->stats,
                                .family = p->family,
                                .peers = r->peers,
                                .n_peers = r->n_peers};
    udp_commit(w, bep15_write_announce(out, BEP15_MAX_REPLY, &a));
}

void fe_udp_answer(worker_t *w, const pending_t *p, const backend_reply_t *r)
{
    udp_answer(w, p, r);
}

/* The done() a batch is submitted with: fe_dispatch_done with the UDP answer inline, since an
 * in-process backend answers every request of the batch during submit. A backend that answers
 * later answers through fe_dispatch_done instead, with the same result. */
static void udp_done(void *arg, uint32_t tag, const backend_reply_t *reply)
{
    worker_t *w = arg;
    pending_t *p = &w->pending[tag & (PENDING_MAX - 1)];
    if (p->transport != PEND_UDP) {
        fe_dispatch_done(arg, tag, reply);
        return;
    }
    udp_answer(w, p, reply);
    p->transport = PEND_FREE;
}

/* Datagram i of the batch just read from fd: answered at once, dropped, or added to reqs for the
 * backend (with its pending slot). */
static void udp_packet(worker_t *w, int fd, unsigned i, backend_req_t *reqs, size_t *n_reqs)
{
    const struct mmsghdr *m = &w->in_msgs[i];
    const void *addr = &w->in_addr[i];
    socklen_t addr_len = m->msg_hdr.msg_namelen;
    const uint8_t *pkt = w->in_buf[i];
    size_t len = m->msg_len;
    endpoint_t src;
    uint8_t addr16[16];
    sockaddr_to_endpoint(addr, &src);
    /* From a --proxy-protocol balancer, src becomes the client it relays for. */
    if (!fe_proxy_udp(w, &pkt, &len, &src))
        return;
    announce_endpoint_to16(&src, addr16);
    frontend_err_t refused = fe_abuse_check(w, FRONTEND_UDP, addr16);
    if (refused != FRONTEND_ERR_COUNT) {
        fe_failed(w, FRONTEND_UDP, FE_NO_KIND, refused); /* no reply: it could be reflected */
        return;
    }

    bep15_request_t req;
    bep15_err_t err = bep15_parse(pkt, len, &req);
    if (err == BEP15_OK && (m->msg_hdr.msg_flags & MSG_TRUNC))
        err = BEP15_ERR_LENGTH;
    if (err == BEP15_ERR_SHORT) {
        w->c[C_UDP_DROPPED]++;
        fe_failed(w, FRONTEND_UDP, FE_NO_KIND, FRONTEND_ERR_BAD_REQUEST);
        return;
    }
    if (err != BEP15_OK) {
        udp_error(w, fd, addr, addr_len, req.transaction_id, bep15_strerror(err), len);
        fe_failed(w, FRONTEND_UDP, FE_NO_KIND, FRONTEND_ERR_BAD_REQUEST);
        return;
    }
    if (req.action == BEP15_CONNECT) {
        uint8_t *out = udp_slot(w, fd, addr, addr_len);
        uint64_t id = connid_issue(w->connid, addr16, w->now_wall);
        udp_commit(w, bep15_write_connect(out, BEP15_MAX_REPLY, req.transaction_id, id));
        w->c[C_UDP_CONNECT]++;
        return;
    }
    int kind = req.action == BEP15_ANNOUNCE ? BACKEND_ANNOUNCE : BACKEND_SCRAPE;
    if (!connid_check(w->connid, req.connection_id, addr16, w->now_wall)) {
        udp_error(w, fd, addr, addr_len, req.transaction_id, "invalid connection id", len);
        fe_connid_strike(w, addr16);
        fe_failed(w, FRONTEND_UDP, kind, FRONTEND_ERR_CONNECTION_ID);
        return;
    }
    /* The access list, before a pending slot: a refused request never reaches the backend, so it
     * creates no swarm. A scrape is refused whole if any of its hashes is. */
    access_t *acl = w->fe->cfg.access;
    if (acl && !(req.action == BEP15_ANNOUNCE
                     ? access_allows(acl, w->index, req.announce.info_hash)
                     : access_allows_all(acl, w->index, req.scrape.hashes, req.scrape.n))) {
        /* The connection id proved the source: the whole message, whatever the request's size. */
        udp_error(w, fd, addr, addr_len, req.transaction_id, ACCESS_REFUSED_MSG, UDP_BUF);
        w->c[C_UDP_ACCESS_REFUSED]++;
        fe_failed(w, FRONTEND_UDP, kind, FRONTEND_ERR_ACCESS);
        return;
    }
    uint32_t tag;
    pending_t *p = pending_alloc(w, &tag);
    if (!p) {
        w->c[C_UDP_DROPPED]++;
        fe_failed(w, FRONTEND_UDP, kind, FRONTEND_ERR_BUSY);
        return;
    }
    p->transport = PEND_UDP;
    p->family = src.family;
    p->tid = req.transaction_id;
    p->fd = fd;
    p->addr_len = addr_len;
    memcpy(&p->addr, addr, addr_len < sizeof(p->addr) ? addr_len : sizeof(p->addr));
    backend_req_t *b = &reqs[(*n_reqs)++];
    b->tag = tag;
    if (req.action == BEP15_ANNOUNCE) {
        announce_t *a = &w->in_announce[i];
        *a = req.announce;
        a->peer.family = src.family;
        memcpy(a->peer.addr, src.addr, sizeof(a->peer.addr));
        p->kind = BACKEND_ANNOUNCE;
        b->kind = BACKEND_ANNOUNCE;
        b->announce = a;
        b->numwant = cap_numwant(&w->fe->cfg, a->numwant,
                                 src.family == 4 ? SHOAL_UDP_PEERS4 : SHOAL_UDP_PEERS6);
        b->hashes = NULL;
        b->n_hashes = 0;
        w->c[C_UDP_ANNOUNCE]++;
    } else {
        p->kind = BACKEND_SCRAPE;
        b->kind = BACKEND_SCRAPE;
        b->announce = NULL;
        b->numwant = 0;
        b->hashes = req.scrape.hashes;
        b->n_hashes = req.scrape.n;
        w->c[C_UDP_SCRAPE]++;
    }
}

void fe_udp_readable(worker_t *w, int fd)
{
    backend_req_t reqs[UDP_BATCH];
    for (int round = 0; round < UDP_ROUNDS; round++) {
        for (unsigned i = 0; i < UDP_BATCH; i++) {
            w->in_msgs[i].msg_hdr.msg_namelen = sizeof(w->in_addr[i]);
            w->in_msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(fd, w->in_msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        update_clocks(w);
        size_t n_reqs = 0;
        for (unsigned i = 0; i < (unsigned)n; i++)
            udp_packet(w, fd, i, reqs, &n_reqs);
        if (n_reqs > 0)
            w->backend.ops->submit(w->backend.self, reqs, n_reqs, udp_done, w);
        fe_udp_flush(w);
        if (n < UDP_BATCH)
            return;
    }
}
