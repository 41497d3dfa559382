/* SPDX-License-Identifier: MIT */
/* frontend: UDP and HTTP tracker servers over a backend (contract in frontend.h); this file holds
 * the public API, the construction of the workers and each worker's event loop. The pieces the
 * loop drives are listed in fe_internal.h.
 *
 * Invariant: a frontend_t returned by frontend_new() is whole: every worker has its connection
 * table, connection-id checker, epoll set, sockets and backend; any failure on the way frees
 * what was built and returns NULL with the reason. A worker thread touches only its own worker_t,
 * the immutable configuration and the shared open-connection counter; its counters reach
 * frontend_stats() through relaxed atomic copies made once a second and when it stops. */
#include "fe_internal.h"
#include "slog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

frontend_alloc_t frontend_alloc = {.malloc_fn = malloc, .calloc_fn = calloc, .free_fn = free};

/* Copy the worker's counters out for frontend_stats(). */
static void publish_counters(worker_t *w)
{
    for (size_t i = 0; i < C_COUNT; i++)
        atomic_store_explicit(&w->published[i], w->c[i], memory_order_relaxed);
    for (size_t p = 0; p < 2; p++) {
        for (size_t r = 0; r < FRONTEND_ERR_COUNT; r++)
            atomic_store_explicit(&w->published_errs[p][r], w->errs[p][r], memory_order_relaxed);
    }
}

/* One worker thread: wait on its epoll set, hand each ready descriptor to its piece (UDP, an HTTP
 * listener or connection, the backend), then let the backend send and expire, send the UDP
 * replies and settle the HTTP connections that got late answers. Once a second: idle timeouts
 * and counters. */
static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event events[EPOLL_BATCH];
    update_clocks(w);
    uint32_t last_sweep = w->now_mono;
    const backend_ops_t *ops = w->backend.ops;
    int timeout = ops->tick && ops->tick_ms ? (int)ops->tick_ms : 1000;
    for (;;) {
        /* The heartbeat: one relaxed store per turn of the loop, none per request. */
        atomic_store_explicit(&w->turned_ms, mono_coarse_ms(), memory_order_relaxed);
        int n = epoll_wait(w->epfd, events, EPOLL_BATCH, timeout);
        if (n < 0 && errno != EINTR) {
            slog_msg(SLOG_ERROR, "worker %u: epoll_wait: %s", w->index, strerror(errno));
            break;
        }
        update_clocks(w);
        bool stop = false;
        for (int i = 0; i < n; i++) {
            uint32_t kind = (uint32_t)(events[i].data.u64 >> 32);
            uint32_t idx = (uint32_t)events[i].data.u64;
            switch (kind) {
            case EV_STOP:
                stop = true;
                break;
            case EV_UDP:
                fe_udp_readable(w, w->udp_fds[idx]);
                break;
            case EV_LISTEN:
                fe_http_accept(w, w->tcp_fds[idx]);
                break;
            case EV_BACKEND:
                /* Its UDP replies go out with the others at the end of the turn: one sendmmsg
                 * per turn, not one per event. */
                ops->poll(w->backend.self, fe_dispatch_done, w);
                fe_http_settle(w);
                break;
            case EV_CONN: {
                conn_t *c = &w->conns[idx];
                if (c->open)
                    fe_http_event(w, c, events[i].events);
                break;
            }
            }
        }
        if (stop)
            break;
        if (ops->flush) {
            ops->flush(w->backend.self);
            /* Sending may have made replies ready without the descriptor changing. */
            if (ops->poll)
                ops->poll(w->backend.self, fe_dispatch_done, w);
        }
        if (ops->tick)
            ops->tick(w->backend.self, fe_dispatch_done, w);
        fe_udp_flush(w);
        fe_http_settle(w);
        if (w->now_mono != last_sweep) {
            last_sweep = w->now_mono;
            fe_http_sweep(w);
            publish_counters(w);
        }
    }
    publish_counters(w);
    atomic_store_explicit(&w->turned_ms, 0, memory_order_relaxed); /* no loop to watch now */
    return NULL;
}

int frontend_check_listen(const char *udp, const char *http, char *err, size_t errlen)
{
    frontend_t probe;
    memset(&probe, 0, sizeof(probe));
    if (fe_listen_parse(probe.addrs, &probe.n_addrs, udp, true, err, errlen) != 0 ||
        fe_listen_parse(probe.addrs, &probe.n_addrs, http, false, err, errlen) != 0)
        return -1;
    if (probe.n_addrs == 0) {
        snprintf(err, errlen, "both --udp and --http are off: nothing to serve");
        return -1;
    }
    return 0;
}

static int epoll_add(int epfd, int fd, uint32_t kind, uint32_t index)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ev_data(kind, index)};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void worker_destroy(worker_t *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; w->conns && i < w->max_conns; i++) {
        fe_http_close(w, &w->conns[i]);
        fe_free(w->conns[i].in);
    }
    for (size_t i = 0; i < MAX_ADDRS; i++) {
        if (w->udp_fds[i] >= 0)
            close(w->udp_fds[i]);
        if (w->tcp_fds[i] >= 0)
            close(w->tcp_fds[i]);
    }
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    if (w->has_backend)
        w->backend.ops->destroy(w->backend.self);
    connid_destroy(&w->connid);
    fe_free(w->conns);
    fe_free(w->free_conns);
    fe_free(w);
}

/* A worker with its tables, connection-id checker and epoll set, or NULL with the reason in err
 * and nothing left allocated. Sockets and the backend come later (frontend_new). */
static worker_t *worker_new(frontend_t *fe, unsigned index, char *err, size_t errlen)
{
    worker_t *w = fe_calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        return NULL;
    }
    w->fe = fe;
    w->index = index;
    w->epfd = -1;
    w->spare_fd = -1;
    w->dirty_head = NO_CONN;
    for (size_t i = 0; i < MAX_ADDRS; i++)
        w->udp_fds[i] = w->tcp_fds[i] = -1;
    w->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)index + 1) * 0xBF58476D1CE4E5B9ULL ^
             (uint64_t)time(NULL);
    for (unsigned i = 0; i < UDP_BATCH; i++) {
        w->in_iov[i] = (struct iovec){.iov_base = w->in_buf[i], .iov_len = UDP_BUF};
        w->in_msgs[i].msg_hdr = (struct msghdr){.msg_name = &w->in_addr[i],
                                                .msg_namelen = sizeof(w->in_addr[i]),
                                                .msg_iov = &w->in_iov[i],
                                                .msg_iovlen = 1};
        w->out_iov[i] = (struct iovec){.iov_base = w->out_buf[i], .iov_len = 0};
        w->out_msgs[i].msg_hdr = (struct msghdr){.msg_iov = &w->out_iov[i], .msg_iovlen = 1};
    }
    const frontend_config_t *cfg = &fe->cfg;
    /* Any worker may get any share of the connections: each table can hold them all; the limit
     * itself is the shared counter. Slots cost ~100 bytes until a connection uses them. */
    w->max_conns = cfg->http_max_conns;
    w->conns = fe_calloc(w->max_conns, sizeof(*w->conns));
    w->free_conns = fe_calloc(w->max_conns, sizeof(*w->free_conns));
    if (!w->conns || !w->free_conns) {
        snprintf(err, errlen, "worker %u: out of memory", index);
        goto fail;
    }
    w->connid = connid_new(cfg->secret, &cfg->connid);
    if (!w->connid) {
        snprintf(err, errlen, "worker %u: cannot set up connection ids (out of memory?)", index);
        goto fail;
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        snprintf(err, errlen, "worker %u: epoll_create1: %s", index, strerror(errno));
        goto fail;
    }
    /* Best effort, as before: without it, a worker out of descriptors cannot accept-and-close
     * (fe_http.c) and leaves new connections in the listen backlog. */
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    for (uint32_t i = 0; i < w->max_conns; i++)
        w->free_conns[w->n_free++] = w->max_conns - 1 - i;
    return w;
fail:
    worker_destroy(w);
    return NULL;
}

frontend_t *frontend_new(const frontend_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->workers < 1 || cfg->workers > 1024) {
        snprintf(err, errlen, "--workers must be 1-1024");
        return NULL;
    }
    if (cfg->http_max_request < 256 || cfg->http_max_conns < 1 || !cfg->backend_open) {
        snprintf(err, errlen, "invalid HTTP limits");
        return NULL;
    }
    if (cfg->access && access_workers(cfg->access) < cfg->workers) {
        snprintf(err, errlen, "the access list has %u worker slots for %u workers",
                 access_workers(cfg->access), cfg->workers);
        return NULL;
    }
    frontend_t *fe = fe_calloc(1, sizeof(*fe));
    if (!fe) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fe->cfg = *cfg;
    if (fe->cfg.scrape_max > SHOAL_SCRAPE_MAX)
        fe->cfg.scrape_max = SHOAL_SCRAPE_MAX;
    if (fe->cfg.numwant_max > SHOAL_NUMWANT_MAX)
        fe->cfg.numwant_max = SHOAL_NUMWANT_MAX;
    fe->stop_fd = -1;
    fe->n_workers = cfg->workers;
    if (fe_listen_parse(fe->addrs, &fe->n_addrs, cfg->udp, true, err, errlen) != 0 ||
        fe_listen_parse(fe->addrs, &fe->n_addrs, cfg->http, false, err, errlen) != 0)
        goto fail;
    if (fe->n_addrs == 0) {
        snprintf(err, errlen, "both --udp and --http are off: nothing to serve");
        goto fail;
    }
    for (size_t a = 0; a < fe->n_addrs && !cfg->share_port; a++) {
        if (fe_listen_probe(&fe->addrs[a], err, errlen) != 0)
            goto fail;
    }
    fe->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fe->stop_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (cfg->rate_limit) {
        ratelimit_config_t rc = {.rate = cfg->rate_limit,
                                 .burst = cfg->rate_limit_burst,
                                 .slots = cfg->rate_limit_table};
        fe->rl = ratelimit_new(&rc, (uint64_t)mono_us());
        if (!fe->rl) {
            snprintf(err, errlen, "cannot set up the rate limit (out of range or out of memory)");
            goto fail;
        }
    }
    if (cfg->connid_ban) {
        connban_config_t bc = {.strikes = cfg->connid_ban,
                               .window_s = cfg->connid_ban_window,
                               .ban_s = cfg->connid_ban_time,
                               .slots = cfg->connid_ban_table};
        fe->ban = connban_new(&bc, mono_s());
        if (!fe->ban) {
            snprintf(err, errlen,
                     "cannot set up connection-id bans (out of range or out of memory)");
            goto fail;
        }
    }
    fe->workers = fe_calloc(fe->n_workers, sizeof(*fe->workers));
    if (!fe->workers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < fe->n_workers; i++) {
        worker_t *w = worker_new(fe, i, err, errlen);
        if (!w)
            goto fail;
        fe->workers[i] = w;
        if (epoll_add(w->epfd, fe->stop_fd, EV_STOP, 0) != 0) {
            snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
            goto fail;
        }
        uint32_t n_udp = 0, n_tcp = 0;
        for (size_t a = 0; a < fe->n_addrs; a++) {
            int fd = fe_listen_open(&fe->addrs[a], err, errlen);
            if (fd < 0)
                goto fail;
            bool udp = fe->addrs[a].udp;
            uint32_t idx = udp ? n_udp++ : n_tcp++;
            (udp ? w->udp_fds : w->tcp_fds)[idx] = fd;
            if (epoll_add(w->epfd, fd, udp ? EV_UDP : EV_LISTEN, idx) != 0) {
                snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
                goto fail;
            }
        }
        if (cfg->backend_open(cfg->backend_arg, i, &w->backend) != 0) {
            snprintf(err, errlen, "worker %u: could not open the backend", i);
            goto fail;
        }
        w->has_backend = true;
        const backend_ops_t *ops = w->backend.ops;
        if (ops->fd) {
            if (!ops->poll || epoll_add(w->epfd, ops->fd(w->backend.self), EV_BACKEND, 0) != 0) {
                snprintf(err, errlen, "worker %u: cannot watch the backend", i);
                goto fail;
            }
        }
    }
    return fe;
fail:
    frontend_destroy(&fe);
    return NULL;
}

int frontend_start(frontend_t *self, char *err, size_t errlen)
{
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = self->workers[i];
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            frontend_stop(self);
            return -1;
        }
        w->started = true;
    }
    return 0;
}

void frontend_stop(frontend_t *self)
{
    uint64_t one = 1;
    /* The eventfd stays readable (nobody reads it), so every worker sees it. */
    ssize_t r = write(self->stop_fd, &one, sizeof(one));
    (void)r;
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = self->workers[i];
        if (w && w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        }
    }
}

void frontend_describe(const frontend_t *self, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < self->n_addrs && used < outlen; i++) {
        char name[80];
        netaddr_format((const struct sockaddr *)&self->addrs[i].addr, name, sizeof(name));
        int n = snprintf(out + used, outlen - used, "%s%s %s", i ? ", " : "",
                         self->addrs[i].udp ? "udp" : "http", name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

void frontend_stats(const frontend_t *self, frontend_stats_t *out)
{
    uint64_t sum[C_COUNT] = {0};
    for (unsigned i = 0; i < self->n_workers; i++) {
        for (size_t k = 0; k < C_COUNT; k++)
            sum[k] += atomic_load_explicit(&self->workers[i]->published[k], memory_order_relaxed);
    }
#define STAT_FIELD(id, field) out->field = sum[id];
    FE_COUNTERS(STAT_FIELD)
#undef STAT_FIELD
}

void frontend_errors(const frontend_t *self, frontend_errors_t *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < self->n_workers; i++) {
        for (size_t p = 0; p < 2; p++) {
            for (size_t r = 0; r < FRONTEND_ERR_COUNT; r++)
                out->n[p][r] += atomic_load_explicit(&self->workers[i]->published_errs[p][r],
                                                     memory_order_relaxed);
        }
    }
}

void fe_connid_strike(worker_t *w, const uint8_t addr16[16])
{
    if (!w->fe->ban || !connban_strike(w->fe->ban, addrtab_key(addr16), w->now_mono))
        return;
    w->c[C_UDP_BANS]++;
    if (w->ban_logged && w->now_mono - w->ban_logged < BAN_LOG_S) {
        w->bans_unlogged++;
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    bool v4 = addrtab_key(addr16) >> 48 == 0xffff;
    inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr16 + 12 : addr16, ip, sizeof(ip));
    const frontend_config_t *cfg = &w->fe->cfg;
    slog_msg(SLOG_WARN,
             "banned %s%s from UDP for %u s: %u invalid connection ids within %u s (%u more "
             "bans by worker %u in the last %u s not logged)",
             ip, v4 ? "" : " (its /64)", cfg->connid_ban_time, cfg->connid_ban,
             cfg->connid_ban_window, w->bans_unlogged, w->index, BAN_LOG_S);
    w->ban_logged = w->now_mono ? w->now_mono : 1;
    w->bans_unlogged = 0;
}

const char *frontend_err_name(frontend_err_t why)
{
    switch (why) {
    case FRONTEND_ERR_BAD_REQUEST:
        return "bad_request";
    case FRONTEND_ERR_NOT_FOUND:
        return "not_found";
    case FRONTEND_ERR_CONNECTION_ID:
        return "connection_id";
    case FRONTEND_ERR_BUSY:
        return "busy";
    case FRONTEND_ERR_BACKEND:
        return "backend";
    case FRONTEND_ERR_TOO_LARGE:
        return "too_large";
    case FRONTEND_ERR_ACCESS:
        return "access_list";
    case FRONTEND_ERR_PROXY_PROTOCOL:
        return "proxy_protocol";
    case FRONTEND_ERR_RATE_LIMITED:
        return "rate_limited";
    case FRONTEND_ERR_BANNED:
        return "banned";
    case FRONTEND_ERR_COUNT:
        break;
    }
    return "unknown";
}

uint32_t frontend_http_open(const frontend_t *self)
{
    return atomic_load_explicit(&self->open_conns, memory_order_relaxed);
}

uint32_t frontend_loop_age_ms(const frontend_t *self)
{
    uint64_t now = mono_coarse_ms();
    uint32_t age = 0;
    for (unsigned i = 0; i < self->n_workers; i++) {
        uint64_t t = atomic_load_explicit(&self->workers[i]->turned_ms, memory_order_relaxed);
        if (t == 0 || now <= t)
            continue;
        uint64_t a = now - t;
        if (a > age)
            age = a > UINT32_MAX ? UINT32_MAX : (uint32_t)a;
    }
    return age;
}

void frontend_destroy(frontend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    frontend_t *fe = *self_p;
    for (unsigned i = 0; fe->workers && i < fe->n_workers; i++)
        worker_destroy(fe->workers[i]);
    fe_free(fe->workers);
    if (fe->stop_fd >= 0)
        close(fe->stop_fd);
    ratelimit_destroy(&fe->rl);
    connban_destroy(&fe->ban);
    fe_free(fe);
    *self_p = NULL;
}
