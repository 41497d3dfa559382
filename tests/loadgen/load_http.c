/* SPDX-License-Identifier: MIT */
/* load_http: shoal-load's HTTP worker. Each of `sockets` connections keeps up to `inflight`
 * pipelined requests (keep-alive), or with --http-new-conn opens one connection per request
 * and closes it after the reply (opentracker closes after every reply anyway). Replies are
 * framed by lghttp and their bodies checked by lgbenc, in request order.
 *
 * Invariant: a connection's queue holds exactly the requests written (or waiting to be
 * written) on it and not yet answered, oldest first; when a connection closes, every queued
 * request is counted once (timeout, invalid or closed) and the queue is empty. */
#include "lgbenc.h"
#include "lghttp.h"
#include "load.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_LEN        (LGHTTP_MAX_HEAD + 64 * 1024)
#define SCAN_EVERY_NS   (5ULL * 1000000ULL)
#define MAX_EVENTS      256
#define READS_PER_EVENT 8

typedef struct {
    uint8_t kind;
    uint8_t n_scrape;
    uint64_t sent_ns;
} hreq_t;

typedef enum { HC_CLOSED, HC_CONNECTING, HC_OPEN } hstate_t;

typedef struct {
    int fd;
    hstate_t state;
    unsigned g;
    uint32_t events; /* epoll interest currently registered */
    bool closing;    /* the server said Connection: close: no more requests here */
    uint64_t retry_at_ns;
    uint8_t *rbuf;
    size_t rlen;
    char *wbuf;
    size_t wcap, wlen, woff;
    hreq_t *q;
    unsigned qhead, qcount;
} hconn_t;

typedef struct {
    load_worker_t *w;
    const load_config_t *cfg;
    lgwork_rng_t rng;
    int ep;
    hconn_t *c;
    unsigned n;
    unsigned qcap;
    uint64_t sent_total;
} http_t;

static void fail(load_worker_t *w, const char *what)
{
    w->failed = 1;
    snprintf(w->fail_msg, sizeof(w->fail_msg), "%s: %s", what, strerror(errno));
}

static void sample_invalid(load_stats_t *st, const char *why, const uint8_t *b, size_t len)
{
    st->invalid++;
    char prefix[80];
    snprintf(prefix, sizeof(prefix), "http %s: ", why);
    load_sample(st->invalid_samples, &st->n_invalid_samples, prefix, b, len < 40 ? len : 40);
}

/* Close c; its queued requests are counted as `how` (a pointer into the stats). */
static void conn_close(http_t *h, hconn_t *c, uint64_t *how)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->state = HC_CLOSED;
    c->events = 0;
    c->closing = false;
    if (how != NULL)
        *how += c->qcount;
    c->qhead = c->qcount = 0;
    c->rlen = c->wlen = c->woff = 0;
    (void)h;
}

static int set_events(http_t *h, hconn_t *c, uint32_t ev)
{
    if (c->events == ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)(c - h->c)};
    int op = c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(h->ep, op, c->fd, &e) != 0)
        return -1;
    c->events = ev;
    return 0;
}

static int conn_open(http_t *h, hconn_t *c, uint64_t now)
{
    const load_config_t *cfg = h->cfg;
    load_stats_t *st = load_stats_at(h->w, now);
    c->fd = socket(cfg->target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto failed;
    int one = 1;
    if (!cfg->http_new_conn) /* pipelined small writes; a one-shot connection writes once */
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (cfg->target.family == AF_INET) {
        /* Pick the port at connect time, per 4-tuple: many connections per source address. */
        (void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_storage src;
        socklen_t src_len;
        load_source_addr(cfg, c->g, &src, &src_len);
        if (bind(c->fd, (struct sockaddr *)&src, src_len) != 0)
            goto failed;
    }
    if (connect(c->fd, (const struct sockaddr *)&cfg->target.addr, cfg->target.addr_len) == 0) {
        c->state = HC_OPEN;
    } else if (errno == EINPROGRESS) {
        c->state = HC_CONNECTING;
    } else {
        goto failed;
    }
    /* Not in the epoll set yet: flush registers it, usually after a first write that succeeds
     * at once, because a loopback handshake completes inside connect(). */
    return 0;
failed:
    st->send_fail++;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = HC_CLOSED;
    c->events = 0;
    c->retry_at_ns = now + 1000000; /* 1 ms: a refused or exhausted connect is not retried hot */
    return -1;
}

/* Queue up to budget requests on c (opening it if needed). Returns the number queued. */
static uint32_t fill(http_t *h, hconn_t *c, uint64_t now, uint32_t budget)
{
    const load_config_t *cfg = h->cfg;
    const lgwork_t *wl = &cfg->wl;
    unsigned cap = cfg->http_new_conn ? 1 : h->qcap;
    if (c->closing || budget == 0 || c->qcount >= cap)
        return 0;
    if (c->state == HC_CLOSED) {
        if (now < c->retry_at_ns || conn_open(h, c, now) != 0)
            return 0;
    }
    load_stats_t *st = load_stats_at(h->w, now);
    uint32_t n = 0;
    while (c->qcount < cap && n < budget) {
        lgwork_kind_t kind = lgwork_pick_kind(wl, &h->rng);
        size_t len;
        uint8_t n_scrape = 0;
        char *out = c->wbuf + c->wlen;
        size_t room = c->wcap - c->wlen;
        if (kind == LGWORK_SCRAPE) {
            lgwork_scrape_t sc;
            lgwork_make_scrape(wl, &h->rng, &sc);
            len = lghttp_scrape(out, room, &sc, cfg->target.host_port, cfg->http_new_conn);
            n_scrape = (uint8_t)sc.n;
        } else {
            kind = LGWORK_ANNOUNCE; /* HTTP has no connect; main zeroes its weight */
            lgwork_announce_t a;
            uint32_t p = lgwork_pick_peer(wl, &h->rng, c->g, cfg->workers * cfg->sockets);
            lgwork_make_announce(wl, &h->rng, p, &a);
            len = lghttp_announce(out, room, &a, cfg->target.host_port, cfg->http_new_conn);
        }
        if (len == 0)
            break; /* write buffer full: sized for qcap requests, so only if flush lags */
        c->wlen += len;
        hreq_t *r = &c->q[(c->qhead + c->qcount) % h->qcap];
        r->kind = (uint8_t)kind;
        r->n_scrape = n_scrape;
        r->sent_ns = now;
        c->qcount++;
        st->sent[kind]++;
        n++;
    }
    return n;
}

/* Write what is pending; keep EPOLLOUT only while bytes remain. -1: connection is dead. */
static int flush(http_t *h, hconn_t *c)
{
    if (c->state == HC_CLOSED)
        return 0;
    /* A connecting socket is tried too: send fails with EAGAIN until the handshake is done,
     * and then EPOLLOUT tells when it is. */
    while (c->woff < c->wlen) {
        ssize_t r = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)
                break;
            return -1;
        }
        c->state = HC_OPEN;
        c->woff += (size_t)r;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
    return set_events(h, c, c->wlen || c->state == HC_CONNECTING ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Count the reply framed at frame[0..resp->total_len) to request r. */
static void judge(http_t *h, const uint8_t *frame, uint64_t now, const hreq_t *r,
                  const lghttp_response_t *resp)
{
    load_stats_t *st = load_stats_at(h->w, now);
    const uint8_t *body = frame + resp->body_off;
    if (resp->status != 200) {
        st->errors++;
        char prefix[40];
        snprintf(prefix, sizeof(prefix), "http status %d: ", resp->status);
        load_sample(st->error_samples, &st->n_error_samples, prefix, body, resp->body_len);
        return;
    }
    lgbenc_info_t info;
    lgbenc_verdict_t v =
        r->kind == LGWORK_SCRAPE
            ? lgbenc_check_scrape(body, resp->body_len, r->n_scrape, &info)
            : lgbenc_check_announce(body, resp->body_len, h->cfg->wl.cfg.numwant, &info);
    if (v == LGBENC_OK) {
        st->ok[r->kind]++;
        st->unsorted += info.files_unsorted;
        st->peers += r->kind == LGWORK_ANNOUNCE ? info.n_peers + info.n_peers6 : 0;
        lglat_record(&st->lat, now - r->sent_ns);
    } else if (v == LGBENC_FAILURE) {
        st->errors++;
        load_sample(st->error_samples, &st->n_error_samples, "http failure reason: ", info.failure,
                    info.failure_len);
    } else {
        sample_invalid(st, lgbenc_strverdict(v), body, resp->body_len);
    }
}

/* Frame and judge every complete reply in c->rbuf. -1: the stream is broken (c closed). */
static int consume(http_t *h, hconn_t *c, uint64_t now, bool eof)
{
    load_stats_t *st = load_stats_at(h->w, now);
    size_t off = 0;
    while (c->qcount > 0 && off < c->rlen) {
        lghttp_response_t resp;
        lghttp_frame_t f = lghttp_frame(c->rbuf + off, c->rlen - off, eof, &resp);
        if (f == LGHTTP_NEED_MORE)
            break;
        if (f != LGHTTP_COMPLETE) {
            sample_invalid(st, lghttp_strframe(f), c->rbuf + off, c->rlen - off);
            c->qhead = (c->qhead + 1) % h->qcap;
            c->qcount--;
            conn_close(h, c, &st->closed);
            return -1;
        }
        hreq_t r = c->q[c->qhead];
        c->qhead = (c->qhead + 1) % h->qcap;
        c->qcount--;
        judge(h, c->rbuf + off, now, &r, &resp);
        off += resp.total_len;
        if (resp.conn_close)
            c->closing = true;
    }
    if (c->qcount == 0 && off < c->rlen) {
        sample_invalid(st, "bytes with no request outstanding", c->rbuf + off, c->rlen - off);
        conn_close(h, c, &st->closed);
        return -1;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (c->rlen == RBUF_LEN) {
        sample_invalid(st, "reply larger than the read buffer", c->rbuf, 40);
        c->qcount = c->qcount > 0 ? c->qcount - 1 : 0;
        conn_close(h, c, &st->closed);
        return -1;
    }
    return 0;
}

static void on_event(http_t *h, hconn_t *c, uint32_t ev, uint64_t now)
{
    load_stats_t *st = load_stats_at(h->w, now);
    if (c->fd < 0)
        return; /* closed earlier in this batch of events */
    if (c->state == HC_CONNECTING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            st->send_fail++;
            conn_close(h, c, &st->closed);
            c->retry_at_ns = now + 1000000;
            return;
        }
        c->state = HC_OPEN;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        bool eof = false;
        for (unsigned k = 0; k < READS_PER_EVENT && c->rlen < RBUF_LEN; k++) {
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, RBUF_LEN - c->rlen, 0);
            if (r > 0) {
                c->rlen += (size_t)r;
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                eof = true;
            break;
        }
        if (consume(h, c, now, eof) != 0)
            return;
        if (eof) {
            /* A reset or close with requests unanswered: counted as closed, not invalid. */
            conn_close(h, c, &st->closed);
            return;
        }
    }
    if (c->qcount == 0 && (c->closing || h->cfg->http_new_conn)) {
        conn_close(h, c, NULL);
        return;
    }
    if (flush(h, c) != 0)
        conn_close(h, c, &st->closed);
}

static void scan_timeouts(http_t *h, uint64_t now)
{
    uint64_t limit = (uint64_t)h->cfg->timeout_ms * 1000000ULL;
    load_stats_t *st = load_stats_at(h->w, now);
    for (unsigned j = 0; j < h->n; j++) {
        hconn_t *c = &h->c[j];
        if (c->qcount > 0 && now - c->q[c->qhead].sent_ns > limit)
            conn_close(h, c, &st->timeouts); /* the stream cannot be resynchronised */
    }
}

static int setup(http_t *h)
{
    const load_config_t *cfg = h->cfg;
    h->n = cfg->sockets;
    h->qcap = cfg->inflight;
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    h->c = calloc(h->n, sizeof(*h->c));
    if (h->ep < 0 || h->c == NULL) {
        fail(h->w, "epoll/calloc");
        return -1;
    }
    for (unsigned j = 0; j < h->n; j++) {
        hconn_t *c = &h->c[j];
        c->fd = -1;
        c->g = h->w->index * cfg->sockets + j;
        c->wcap = (size_t)h->qcap * LGHTTP_MAX_REQUEST;
        c->rbuf = malloc(RBUF_LEN);
        c->wbuf = malloc(c->wcap);
        c->q = calloc(h->qcap, sizeof(*c->q));
        if (!c->rbuf || !c->wbuf || !c->q) {
            fail(h->w, "malloc");
            return -1;
        }
    }
    return 0;
}

static void teardown(http_t *h)
{
    for (unsigned j = 0; h->c && j < h->n; j++) {
        if (h->c[j].fd >= 0)
            close(h->c[j].fd);
        free(h->c[j].rbuf);
        free(h->c[j].wbuf);
        free(h->c[j].q);
    }
    free(h->c);
    if (h->ep >= 0)
        close(h->ep);
}

void *load_http_worker(void *arg)
{
    load_worker_t *w = arg;
    const load_config_t *cfg = w->cfg;
    http_t h = {.w = w, .cfg = cfg, .ep = -1};
    lgwork_rng_seed(&h.rng, cfg->wl.cfg.seed * 1000003u + w->index + 1);
    (void)prctl(PR_SET_TIMERSLACK, 1000UL);
    if (setup(&h) != 0) {
        teardown(&h);
        return NULL;
    }
    double per_worker = cfg->rate / cfg->workers;
    uint64_t max_debt = per_worker * 0.005 > 16 ? (uint64_t)(per_worker * 0.005) : 16;
    uint64_t last_scan = load_now_ns();
    unsigned rr = 0;
    load_cpu_t cpu = {0};
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        uint64_t now = load_now_ns();
        if (now >= cfg->end_ns)
            break;
        uint32_t budget = load_budget(cfg, now, h.sent_total);
        if (budget != UINT32_MAX && budget > max_debt) {
            load_stats_at(w, now)->behind += budget - max_debt;
            h.sent_total += budget - max_debt;
            budget = (uint32_t)max_debt;
        }
        for (unsigned k = 0; k < h.n && budget > 0; k++) {
            hconn_t *c = &h.c[(rr + k) % h.n];
            uint32_t q = fill(&h, c, now, budget);
            budget -= q;
            h.sent_total += q;
            if (q > 0 && flush(&h, c) != 0) {
                load_stats_t *st = load_stats_at(w, now);
                st->send_fail++;
                conn_close(&h, c, &st->closed);
                c->retry_at_ns = now + 1000000;
            }
        }
        rr++;
        if (now - last_scan >= SCAN_EVERY_NS) {
            scan_timeouts(&h, now);
            last_scan = now;
        }
        uint64_t wait = 1000000;
        uint64_t due = load_next_due(cfg, now, h.sent_total);
        if (due > 0 && due < wait)
            wait = due;
        if (cfg->end_ns - now < wait)
            wait = cfg->end_ns - now;
        struct timespec ts = {0, (long)wait};
        load_cpu_tick(&cpu, w, now, true); /* idle time blocks in epoll: nothing to subtract */
        int n = epoll_pwait2(h.ep, evs, MAX_EVENTS, &ts, NULL);
        if (n <= 0)
            continue;
        now = load_now_ns();
        for (int i = 0; i < n; i++)
            on_event(&h, &h.c[evs[i].data.u32], evs[i].events, now);
    }
    load_cpu_finish(&cpu, w);
    teardown(&h);
    return NULL;
}
