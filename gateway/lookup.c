/* SPDX-License-Identifier: MIT */
/* lookup: one-shot admin lookups toward the owning node (see lookup.h).
 *
 * Invariant: every socket lookup_remote() opens is closed before it returns, whatever happened;
 * with linger 0 a request still queued (node unreachable) is dropped with it. */
#include "lookup.h"

#include "err.h"
#include "mono.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <zmq.h>

/* Request ids, shared by every caller in the process. Each call has its own socket, so an id
 * only has to tell this call's answer from a late one to an earlier call, and wrapping after
 * 2^32 calls is harmless. */
static _Atomic uint32_t next_id = 1;

int lookup_owner(const partition_table_t *t, const uint8_t hash[SHOAL_HASH_LEN], char *endpoint,
                 size_t len, char *id, size_t idlen)
{
    if (!t || !endpoint)
        return -1;
    const partition_member_t *m = partition_table_member(t, partition_owner(t, partition_of(hash)));
    const size_t elen = strnlen(m->endpoint, sizeof(m->endpoint));
    const size_t ilen = strnlen(m->id, sizeof(m->id));
    if (elen >= len || (id && ilen >= idlen))
        return -1;
    memcpy(endpoint, m->endpoint, elen + 1);
    if (id)
        memcpy(id, m->id, ilen + 1);
    return 0;
}

static int set_int(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

/* Wait for and decode the answer to request id until deadline (mono_ms). */
static lookup_status_t await_reply(void *sock, const char *endpoint, uint32_t id, int64_t deadline,
                                   cmsg_lookup_reply_t *out, char *err, size_t errlen)
{
    /* Each pass either returns or takes one message; the deadline bounds the passes. */
    for (;;) {
        const int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            err_set(err, errlen, "lookup at %s: poll: %s", endpoint, zmq_strerror(zmq_errno()));
            return LOOKUP_FAILED;
        }
        if (rc == 0)
            break;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        /* A DEALER sees the ROUTER's reply as the payload frame alone. */
        bool multi = zmq_msg_more(&msg);
        cmsg_err_t e = CMSG_ERR_SHAPE;
        if (!multi)
            e = cmsg_decode_lookup_reply(zmq_msg_data(&msg), zmq_msg_size(&msg), out);
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
            ;
        zmq_msg_close(&msg);
        if (multi || e != CMSG_OK) {
            err_set(err, errlen, "lookup at %s: bad answer: %s", endpoint,
                    multi ? "more than one frame" : cmsg_strerror(e));
            return LOOKUP_FAILED;
        }
        if (out->id != id)
            continue; /* a late answer to someone else's request: not ours */
        switch (out->status) {
        case CMSG_STATUS_OK:
            return LOOKUP_OK;
        case CMSG_STATUS_MOVED:
            err_set(err, errlen, "node %s does not own this torrent's partition (epoch %llu)",
                    endpoint, (unsigned long long)out->epoch);
            return LOOKUP_MOVED;
        case CMSG_STATUS_ERROR:
            err_set(err, errlen, "node %s: %s", endpoint, out->error);
            return LOOKUP_NODE_ERROR;
        }
        err_set(err, errlen, "lookup at %s: bad answer status", endpoint);
        return LOOKUP_FAILED;
    }
    return LOOKUP_TIMEOUT;
}

lookup_status_t lookup_remote(void *zmq_ctx, curve_t *curve, const char *advert,
                              const uint8_t info_hash[SHOAL_HASH_LEN], uint32_t offset,
                              uint32_t max_peers, uint32_t timeout_ms, cmsg_lookup_reply_t *out,
                              char *err, size_t errlen)
{
    const int64_t deadline = mono_ms() + timeout_ms;
    cmsg_lookup_request_t q = {
        .id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed),
        .offset = offset,
        .max_peers = max_peers < CMSG_LOOKUP_PEERS_MAX ? max_peers : CMSG_LOOKUP_PEERS_MAX,
    };
    memcpy(q.info_hash, info_hash, SHOAL_HASH_LEN);
    memset(out, 0, offsetof(cmsg_lookup_reply_t, result.peers));
    memset(out->error, 0, sizeof(out->error));
    uint8_t msg[CMSG_LOOKUP_REQUEST_BOUND];
    const ssize_t n = cmsg_encode_lookup_request(&q, msg, sizeof(msg));
    if (!zmq_ctx || !advert || n < 0) {
        err_set(err, errlen, "lookup: invalid arguments");
        return LOOKUP_FAILED;
    }
    /* A node with several workers answers lookups on each of its sockets: worker 0's will do. */
    members_advert_t a;
    curve_node_t verdict = curve_check_node(curve, advert, &a);
    const char *endpoint = a.endpoint, *key = a.key;
    if (verdict != CURVE_NODE_OK) {
        err_set(err, errlen, "node %s refused: %s", endpoint, curve_node_strerror(verdict));
        return LOOKUP_FAILED;
    }
    void *sock = zmq_socket(zmq_ctx, ZMQ_DEALER);
    if (!sock) {
        err_set(err, errlen, "lookup: cannot create a socket: %s", zmq_strerror(zmq_errno()));
        return LOOKUP_FAILED;
    }
    lookup_status_t st;
    const int64_t max_msg = CMSG_LOOKUP_REPLY_MAX; /* an int64_t option */
    /* No valid answer is larger: a peer sending more is dropped, not buffered. */
    if (set_int(sock, ZMQ_LINGER, 0) != 0 || set_int(sock, ZMQ_IPV6, 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg)) != 0 ||
        (curve && curve_client_socket(curve, sock, key) != 0) || zmq_connect(sock, endpoint) != 0) {
        err_set(err, errlen, "lookup: cannot connect to %s: %s", endpoint,
                zmq_strerror(zmq_errno()));
        st = LOOKUP_FAILED;
    } else if (zmq_send(sock, msg, (size_t)n, ZMQ_DONTWAIT) != n) {
        /* A fresh DEALER queues until connected; failing here means it cannot even queue. */
        err_set(err, errlen, "lookup: cannot send to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        st = LOOKUP_FAILED;
    } else {
        st = await_reply(sock, endpoint, q.id, deadline, out, err, errlen);
        if (st == LOOKUP_TIMEOUT)
            err_set(err, errlen, "node %s did not answer within %u ms", endpoint,
                    (unsigned)timeout_ms);
    }
    zmq_close(sock);
    return st;
}
