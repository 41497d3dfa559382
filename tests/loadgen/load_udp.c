/* SPDX-License-Identifier: MIT */
/* load_udp: shoal-load's BEP 15 worker. Each socket connects (BEP 15 connect), keeps its
 * connection id (refreshed every LOAD_CONNID_REFRESH_NS, or at once after a connection-id error),
 * and keeps up to `inflight` requests outstanding in a slot table. A transaction id is
 * (16 random bits << 16 | slot), so a reply finds its request in O(1) and a reply to a request
 * that already timed out is told apart from a forged or mangled one.
 *
 * Invariant: a slot is busy from its send until its reply, its timeout, or a failed send;
 * n_free + busy slots == inflight; connects_inflight counts the busy connect slots. */
#include "lgudp.h"
#include "load.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RX_LEN                 4096 /* > 20 + 18 * 200, the largest reply we ask for */
#define LOAD_CONNID_REFRESH_NS (60ULL * 1000000000ULL)
#define SCAN_EVERY_NS          (5ULL * 1000000ULL)
#define RECV_ROUNDS            4 /* recvmmsg batches per socket per loop turn */
/* Poll without sleeping this long before blocking: a wake-up costs more than a few empty
 * recvmmsg calls, and the generator has a core of its own. */
#define SPIN_NS 200000ULL

typedef struct {
    uint32_t tid;
    uint32_t stale_tid; /* the last request of this slot that timed out */
    uint64_t sent_ns;
    uint8_t busy;
    uint8_t kind;
    uint8_t n_scrape;
} slot_t;

typedef struct {
    int fd;
    unsigned g; /* global socket index: source address and peer slice */
    uint64_t conn_id;
    bool have_conn;
    unsigned connects_inflight;
    uint64_t conn_at_ns;
    slot_t *slots;
    uint32_t *free_idx;
    uint32_t n_free;
} usock_t;

typedef struct {
    load_worker_t *w;
    const load_config_t *cfg;
    lgwork_rng_t rng;
    usock_t *socks;
    struct pollfd *pfds;
    unsigned n;
    uint64_t sent_total; /* for pacing, warm-up included */
    uint8_t (*txbuf)[LGUDP_MAX_REQUEST];
    uint8_t (*rxbuf)[RX_LEN];
    struct mmsghdr tx[LOAD_BATCH];
    struct iovec txiov[LOAD_BATCH];
    uint32_t txslot[LOAD_BATCH];
    struct mmsghdr rx[LOAD_BATCH];
    struct iovec rxiov[LOAD_BATCH];
} udp_t;

static void fail(load_worker_t *w, const char *what)
{
    w->failed = 1;
    snprintf(w->fail_msg, sizeof(w->fail_msg), "%s: %s", what, strerror(errno));
}

static int open_socket(udp_t *u, usock_t *s)
{
    const load_config_t *cfg = u->cfg;
    s->fd = socket(cfg->target.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        fail(u->w, "socket");
        return -1;
    }
    int size = 4 << 20; /* the kernel caps it at rmem_max/wmem_max; best effort */
    (void)setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    (void)setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    struct sockaddr_storage src;
    socklen_t src_len;
    load_source_addr(cfg, s->g, &src, &src_len);
    if (bind(s->fd, (struct sockaddr *)&src, src_len) != 0) {
        fail(u->w, "bind");
        return -1;
    }
    if (connect(s->fd, (const struct sockaddr *)&cfg->target.addr, cfg->target.addr_len) != 0) {
        fail(u->w, "connect");
        return -1;
    }
    return 0;
}

static void free_slot(usock_t *s, uint32_t i)
{
    if (s->slots[i].busy && s->slots[i].kind == LGWORK_CONNECT && s->connects_inflight > 0)
        s->connects_inflight--;
    s->slots[i].busy = 0;
    s->free_idx[s->n_free++] = i;
}

/* Fill up to LOAD_BATCH free slots of s (at most budget) and send them in one sendmmsg.
 * Returns the number sent. */
static uint32_t send_batch(udp_t *u, usock_t *s, uint64_t now, uint32_t budget)
{
    const load_config_t *cfg = u->cfg;
    const lgwork_t *wl = &cfg->wl;
    unsigned n = 0;
    while (n < LOAD_BATCH && s->n_free > 0 && budget > 0) {
        lgwork_kind_t kind;
        if (!s->have_conn) {
            if (s->connects_inflight > 0)
                break; /* nothing to send until the connection id arrives */
            kind = LGWORK_CONNECT;
        } else if (s->connects_inflight == 0 && now > s->conn_at_ns &&
                   now - s->conn_at_ns > LOAD_CONNID_REFRESH_NS) {
            /* conn_at_ns is a receive time and may be later than this turn's now. */
            kind = LGWORK_CONNECT; /* BEP 15 ids live about 2 minutes: refresh at 1 */
        } else {
            kind = lgwork_pick_kind(wl, &u->rng);
        }
        uint32_t i = s->free_idx[--s->n_free];
        slot_t *sl = &s->slots[i];
        uint32_t tid = (uint32_t)(lgwork_rng_next(&u->rng) >> 48) << 16 | i;
        size_t len;
        uint8_t *buf = u->txbuf[n];
        sl->n_scrape = 0;
        if (kind == LGWORK_CONNECT) {
            len = lgudp_connect(buf, LGUDP_MAX_REQUEST, tid);
            s->connects_inflight++;
        } else if (kind == LGWORK_ANNOUNCE) {
            lgwork_announce_t a;
            uint32_t p = lgwork_pick_peer(wl, &u->rng, s->g, cfg->workers * cfg->sockets);
            lgwork_make_announce(wl, &u->rng, p, &a);
            len = lgudp_announce(buf, LGUDP_MAX_REQUEST, s->conn_id, tid, &a);
        } else {
            lgwork_scrape_t sc;
            lgwork_make_scrape(wl, &u->rng, &sc);
            len = lgudp_scrape(buf, LGUDP_MAX_REQUEST, s->conn_id, tid, &sc);
            sl->n_scrape = (uint8_t)sc.n;
        }
        sl->busy = 1;
        sl->kind = (uint8_t)kind;
        sl->tid = tid;
        sl->sent_ns = now;
        u->txiov[n].iov_base = buf;
        u->txiov[n].iov_len = len;
        u->txslot[n] = i;
        n++;
        budget--;
    }
    if (n == 0)
        return 0;
    int r = sendmmsg(s->fd, u->tx, n, MSG_DONTWAIT);
    load_stats_t *st = load_stats_at(u->w, now);
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
            st->send_fail += n;
        r = 0;
    }
    for (unsigned k = 0; k < (unsigned)r; k++)
        st->sent[s->slots[u->txslot[k]].kind]++;
    for (unsigned k = (unsigned)r; k < n; k++)
        free_slot(s, u->txslot[k]);
    return (uint32_t)r;
}

static void invalid(load_stats_t *st, const char *why, const uint8_t *pkt, size_t len)
{
    st->invalid++;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s (%zu bytes): ", why, len);
    load_sample(st->invalid_samples, &st->n_invalid_samples, prefix, pkt, len < 24 ? len : 24);
}

static void handle_reply(udp_t *u, usock_t *s, uint64_t now, const uint8_t *pkt, size_t len,
                         bool truncated)
{
    load_stats_t *st = load_stats_at(u->w, now);
    uint32_t tid;
    if (truncated) {
        invalid(st, "datagram larger than any reply", pkt, len);
        return;
    }
    if (!lgudp_peek_tid(pkt, len, &tid)) {
        invalid(st, "truncated", pkt, len);
        return;
    }
    uint32_t i = tid & 0xffff;
    if (i >= u->cfg->inflight) {
        invalid(st, "unknown transaction id", pkt, len);
        return;
    }
    slot_t *sl = &s->slots[i];
    if (!sl->busy || sl->tid != tid) {
        if (sl->stale_tid == tid && tid != 0)
            st->late++;
        else
            invalid(st, "unknown transaction id", pkt, len);
        return;
    }
    static const uint32_t actions[] = {LGUDP_ACTION_CONNECT, LGUDP_ACTION_ANNOUNCE,
                                       LGUDP_ACTION_SCRAPE};
    lgudp_expect_t exp = {
        .action = actions[sl->kind],
        .tid = tid,
        .n_scrape = sl->n_scrape,
        .numwant = u->cfg->wl.cfg.numwant,
        .ipv6 = u->cfg->target.family != AF_INET,
    };
    lgudp_reply_t rep;
    lgudp_verdict_t v = lgudp_check(pkt, len, &exp, &rep);
    unsigned kind = sl->kind;
    uint64_t sent_ns = sl->sent_ns;
    free_slot(s, i);
    if (v == LGUDP_OK) {
        st->ok[kind]++;
        lglat_record(&st->lat, now - sent_ns);
        if (kind == LGWORK_ANNOUNCE) {
            st->peers += rep.n_peers;
        } else if (kind == LGWORK_CONNECT) {
            s->conn_id = rep.connection_id;
            s->have_conn = true;
            s->conn_at_ns = now;
        }
    } else if (v == LGUDP_ERROR_REPLY) {
        st->errors++;
        load_sample(st->error_samples, &st->n_error_samples, "udp error: ", rep.message,
                    rep.message_len);
        if (kind != LGWORK_CONNECT && s->have_conn &&
            lgudp_is_connid_error(rep.message, rep.message_len)) {
            s->have_conn = false;
            st->reconnects++;
        }
    } else {
        invalid(st, lgudp_strverdict(v), pkt, len);
    }
}

/* Drain up to RECV_ROUNDS batches from s. Returns the number of datagrams read. */
static unsigned recv_batch(udp_t *u, usock_t *s)
{
    unsigned total = 0;
    for (unsigned round = 0; round < RECV_ROUNDS; round++) {
        for (unsigned k = 0; k < LOAD_BATCH; k++) {
            u->rx[k].msg_hdr.msg_flags = 0;
            u->rx[k].msg_len = 0;
        }
        int r = recvmmsg(s->fd, u->rx, LOAD_BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0)
            break; /* EAGAIN, or ECONNREFUSED from a closed port: requests will time out */
        uint64_t now = load_now_ns();
        for (int k = 0; k < r; k++)
            handle_reply(u, s, now, u->rxbuf[k], u->rx[k].msg_len,
                         (u->rx[k].msg_hdr.msg_flags & MSG_TRUNC) != 0);
        total += (unsigned)r;
        if (r < LOAD_BATCH)
            break;
    }
    return total;
}

static void scan_timeouts(udp_t *u, uint64_t now)
{
    uint64_t limit = (uint64_t)u->cfg->timeout_ms * 1000000ULL;
    load_stats_t *st = load_stats_at(u->w, now);
    for (unsigned j = 0; j < u->n; j++) {
        usock_t *s = &u->socks[j];
        for (uint32_t i = 0; i < u->cfg->inflight; i++) {
            slot_t *sl = &s->slots[i];
            if (sl->busy && now - sl->sent_ns > limit) {
                st->timeouts++;
                sl->stale_tid = sl->tid;
                free_slot(s, i);
            }
        }
    }
}

static int setup(udp_t *u)
{
    const load_config_t *cfg = u->cfg;
    u->n = cfg->sockets;
    u->socks = calloc(u->n, sizeof(*u->socks));
    u->pfds = calloc(u->n, sizeof(*u->pfds));
    u->txbuf = calloc(LOAD_BATCH, sizeof(*u->txbuf));
    u->rxbuf = calloc(LOAD_BATCH, sizeof(*u->rxbuf));
    if (!u->socks || !u->pfds || !u->txbuf || !u->rxbuf) {
        fail(u->w, "calloc");
        return -1;
    }
    for (unsigned k = 0; k < LOAD_BATCH; k++) {
        u->tx[k].msg_hdr.msg_iov = &u->txiov[k];
        u->tx[k].msg_hdr.msg_iovlen = 1;
        u->rxiov[k].iov_base = u->rxbuf[k];
        u->rxiov[k].iov_len = RX_LEN;
        u->rx[k].msg_hdr.msg_iov = &u->rxiov[k];
        u->rx[k].msg_hdr.msg_iovlen = 1;
    }
    for (unsigned j = 0; j < u->n; j++) {
        usock_t *s = &u->socks[j];
        s->fd = -1;
        s->g = u->w->index * cfg->sockets + j;
        s->slots = calloc(cfg->inflight, sizeof(*s->slots));
        s->free_idx = calloc(cfg->inflight, sizeof(*s->free_idx));
        if (!s->slots || !s->free_idx) {
            fail(u->w, "calloc");
            return -1;
        }
        for (uint32_t i = 0; i < cfg->inflight; i++)
            s->free_idx[i] = cfg->inflight - 1 - i;
        s->n_free = cfg->inflight;
        if (open_socket(u, s) != 0)
            return -1;
        u->pfds[j].fd = s->fd;
        u->pfds[j].events = POLLIN;
    }
    return 0;
}

static void teardown(udp_t *u)
{
    for (unsigned j = 0; u->socks && j < u->n; j++) {
        if (u->socks[j].fd >= 0)
            close(u->socks[j].fd);
        free(u->socks[j].slots);
        free(u->socks[j].free_idx);
    }
    free(u->socks);
    free(u->pfds);
    free(u->txbuf);
    free(u->rxbuf);
}

void *load_udp_worker(void *arg)
{
    load_worker_t *w = arg;
    const load_config_t *cfg = w->cfg;
    udp_t *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        fail(w, "calloc");
        return NULL;
    }
    u->w = w;
    u->cfg = cfg;
    lgwork_rng_seed(&u->rng, cfg->wl.cfg.seed * 1000003u + w->index + 1);
    (void)prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: paced sends wake on time */
    if (setup(u) != 0) {
        teardown(u);
        free(u);
        return NULL;
    }
    double per_worker = cfg->rate / cfg->workers;
    uint64_t max_debt =
        per_worker * 0.005 > LOAD_BATCH ? (uint64_t)(per_worker * 0.005) : LOAD_BATCH;
    uint64_t last_scan = load_now_ns();
    uint64_t idle_since = 0;
    load_cpu_t cpu = {0};
    unsigned rr = 0;
    for (;;) {
        uint64_t now = load_now_ns();
        if (now >= cfg->end_ns)
            break;
        unsigned progress = 0;
        for (unsigned j = 0; j < u->n; j++)
            progress += recv_batch(u, &u->socks[j]);
        uint32_t budget = load_budget(cfg, now, u->sent_total);
        if (budget != UINT32_MAX && budget > max_debt) {
            /* Open loop that cannot keep up: drop what is owed beyond a short backlog rather
             * than send it later in one burst. */
            load_stats_at(w, now)->behind += budget - max_debt;
            u->sent_total += budget - max_debt;
            budget = (uint32_t)max_debt;
        }
        for (unsigned k = 0; k < u->n && budget > 0; k++) {
            usock_t *s = &u->socks[(rr + k) % u->n];
            uint32_t sent = send_batch(u, s, now, budget);
            budget -= sent;
            u->sent_total += sent;
            progress += sent;
        }
        rr++;
        if (now - last_scan >= SCAN_EVERY_NS) {
            scan_timeouts(u, now);
            last_scan = now;
        }
        load_cpu_tick(&cpu, w, now, progress > 0);
        if (progress > 0) {
            idle_since = 0;
        } else if (idle_since == 0) {
            idle_since = now;
        } else if (now - idle_since >= SPIN_NS) {
            uint64_t wait = 1000000; /* 1 ms: bounds the reaction to timeouts and the end */
            /* A due of 0 means sends are owed but no slot is free: wait for replies. */
            uint64_t due = load_next_due(cfg, now, u->sent_total);
            if (due > 0 && due < wait)
                wait = due;
            if (cfg->end_ns - now < wait)
                wait = cfg->end_ns - now;
            struct timespec ts = {0, (long)wait};
            (void)ppoll(u->pfds, u->n, &ts, NULL);
        }
    }
    load_cpu_finish(&cpu, w);
    teardown(u);
    free(u);
    return NULL;
}
