/* SPDX-License-Identifier: MIT */
/* fe_http: the HTTP connections of a front-end worker: accept, read, parse, write, the unsent
 * backlog of a slow reader, answers put back in request order, idle timeouts.
 *
 * Reading: a connection's requests are parsed from its input buffer and handed to
 * fe_dispatch_http() while its pipeline window (fe_order.h) has room; reading pauses while the
 * buffer is full of requests waiting for the window, while a backlog is unsent, and once no
 * further request will be served. Writing: responses are gathered in the worker's wbuf, one
 * connection at a time, so what a connection gets from one read or one backend poll leaves with
 * one send; what the socket does not take becomes the connection's backlog, and EPOLLOUT replaces
 * EPOLLIN until the client has read it.
 *
 * Invariant: answers leave in request order. An answer whose turn has come is written at once
 * (always the case with an in-process backend, which answers during submit); one that overtook
 * an earlier answer waits in the connection's order store, allocated only then. The unsent
 * backlog and the held answers of a connection together never exceed CONN_BACKLOG_MAX: a client
 * that would pass it is cut. */
#include "fe_internal.h"
#include "slog.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

void fe_http_close(worker_t *w, conn_t *c)
{
    if (!c->open)
        return;
    close(c->fd); /* also removes it from the epoll set */
    atomic_fetch_sub_explicit(&w->fe->open_conns, 1, memory_order_relaxed);
    fe_free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    fe_order_clear(&c->order);
    if (w->batch_conn == c) {
        w->batch_conn = NULL;
        w->wlen = 0;
    }
    c->open = false;
    c->gen++; /* answers still at the backend are dropped */
    c->in_len = 0;
    /* c->dirty stays: the slot may be on the settle list, which checks c->open. */
    w->free_conns[w->n_free++] = (uint32_t)(c - w->conns);
}

/* Arm the events the connection's state asks for; one epoll_ctl only when they change. Reading
 * stops while a backlog is unsent (the client is not reading), once no further request will be
 * served (closing, end of input), and while the input buffer is full of requests waiting for a
 * free place in the pipeline window. */
static void conn_update_events(worker_t *w, conn_t *c)
{
    uint32_t want = EPOLLIN;
    if (c->want_write)
        want = EPOLLOUT;
    else if (c->closing || c->eof || c->in_len == w->fe->cfg.http_max_request)
        want = 0;
    if (want == c->events)
        return;
    c->events = want;
    struct epoll_event ev = {.events = want,
                             .data.u64 = ev_data(EV_CONN, (uint32_t)(c - w->conns))};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Queue bytes the socket would not take; the client must read them before we read more. */
static void conn_backlog(worker_t *w, conn_t *c, const char *data, size_t len)
{
    size_t pending = c->out_len - c->out_off;
    if (pending + fe_order_held(&c->order) + len > CONN_BACKLOG_MAX) {
        fe_http_close(w, c);
        return;
    }
    char *buf = fe_malloc(pending + len);
    if (!buf) {
        fe_http_close(w, c);
        return;
    }
    if (pending)
        memcpy(buf, c->out + c->out_off, pending);
    memcpy(buf + pending, data, len);
    fe_free(c->out);
    c->out = buf;
    c->out_len = pending + len;
    c->out_off = 0;
    if (!c->want_write) {
        c->want_write = true;
        conn_update_events(w, c);
    }
}

static void conn_write(worker_t *w, conn_t *c, const char *data, size_t len)
{
    if (!c->open || len == 0)
        return;
    if (c->out_len > c->out_off) {
        conn_backlog(w, c, data, len);
        return;
    }
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            fe_http_close(w, c);
            return;
        }
        n = 0;
    }
    if ((size_t)n < len)
        conn_backlog(w, c, data + n, len - (size_t)n);
}

/* Write what wbuf gathered for w->batch_conn. */
static void wbuf_flush(worker_t *w)
{
    conn_t *c = w->batch_conn;
    size_t len = w->wlen;
    w->batch_conn = NULL;
    w->wlen = 0;
    if (c && len > 0)
        conn_write(w, c, w->wbuf, len);
}

/* Send response bytes: gathered in wbuf, one connection at a time, so the responses a
 * connection gets from one read or one backend poll leave with one send. Switching to another
 * connection writes the previous one's first. data may live in c's order store: nothing here
 * frees it unless c is closed, which the caller checks. */
static void conn_respond(worker_t *w, conn_t *c, const char *data, size_t len)
{
    if (c != w->batch_conn || w->wlen + len > WBUF_CAP) {
        wbuf_flush(w);
        if (!c->open)
            return;
        if (len > WBUF_CAP) {
            conn_write(w, c, data, len);
            return;
        }
        w->batch_conn = c;
    }
    memcpy(w->wbuf + w->wlen, data, len);
    w->wlen += len;
}

/* Write an answer whose turn has come. One that ends the connection (Connection: close, or an
 * error that closes) stops reading. */
static void conn_emit(worker_t *w, conn_t *c, const char *data, size_t len, bool last)
{
    if (last)
        c->closing = true;
    conn_respond(w, c, data, len);
}

/* The answer to request seq of c: written now if every earlier one is out, held otherwise
 * (bounded together with the unsent backlog by CONN_BACKLOG_MAX). */
void fe_http_put(worker_t *w, conn_t *c, uint32_t seq, const char *data, size_t len, bool last)
{
    size_t room = CONN_BACKLOG_MAX - (c->out_len - c->out_off);
    switch (fe_order_put(&c->order, seq, data, len, last, room)) {
    case FE_ORDER_NOW:
        conn_emit(w, c, data, len, last);
        break;
    case FE_ORDER_HELD:
    case FE_ORDER_DROP:
        return;
    case FE_ORDER_FULL:
    case FE_ORDER_NOMEM:
        fe_http_close(w, c);
        return;
    }
    /* Held answers now next in line; their bytes live in the store until the next fe_order_
     * call, and conn_emit copies them (wbuf or backlog) or closes c, which clears the store. */
    const char *held;
    size_t n;
    while (c->open && c->order.store && fe_order_next(&c->order, &held, &n, &last))
        conn_emit(w, c, held, n, last);
}

void fe_http_status(worker_t *w, conn_t *c, uint32_t seq, int status, const char *body,
                    bool keep_alive)
{
    size_t n = httpresp_status(w->scratch, sizeof(w->scratch), status, body, keep_alive);
    w->c[C_HTTP_ERRORS]++;
    fe_http_put(w, c, seq, w->scratch, n, !keep_alive);
}

void fe_http_failure(worker_t *w, conn_t *c, uint32_t seq, const char *reason, uint32_t retry_in,
                     bool keep_alive)
{
    size_t n = httpresp_failure(w->scratch, sizeof(w->scratch), reason, retry_in, keep_alive);
    if (n == 0) {
        fe_http_status(w, c, seq, 500, "response too large", false);
        return;
    }
    w->c[C_HTTP_ERRORS]++;
    fe_http_put(w, c, seq, w->scratch, n, !keep_alive);
}

/* Push c on the list of connections to settle once the backend's answers are handled. */
void fe_http_mark(worker_t *w, conn_t *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = w->dirty_head;
    w->dirty_head = (uint32_t)(c - w->conns);
}

/* Serve every complete request in the connection's buffer while the pipeline window has room
 * (an in-process backend answers each at once, so its window never fills), write the gathered
 * responses with one send, then close the connection if it is done, or arm its events. */
static void conn_process(worker_t *w, conn_t *c)
{
    size_t off = 0;
    uint32_t max_head = w->fe->cfg.http_max_request;
    w->processing = c;
    while (off < c->in_len && !c->closing && c->open && !fe_order_full(&c->order)) {
        httpreq_t req;
        httpreq_err_t err = httpreq_parse(c->in + off, c->in_len - off, max_head, &req);
        if (err == HTTPREQ_INCOMPLETE)
            break;
        if (err != HTTPREQ_OK) {
            c->closing = true;
            fe_failed(w, FRONTEND_HTTP, FE_NO_KIND,
                      err == HTTPREQ_ERR_TOO_LARGE ? FRONTEND_ERR_TOO_LARGE
                                                   : FRONTEND_ERR_BAD_REQUEST);
            fe_http_status(w, c, fe_order_take(&c->order), httpreq_status(err),
                           httpreq_strerror(err), false);
            break;
        }
        if (!req.keep_alive)
            c->closing = true;
        fe_dispatch_http(w, c, fe_order_take(&c->order), &req);
        off += req.head_len;
    }
    w->processing = NULL;
    if (!c->open)
        return;
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= (uint32_t)off;
    }
    /* The client has shut its side: once nothing complete is left to read, the requests it
     * sent are all that will be answered. */
    if (c->eof && !fe_order_full(&c->order))
        c->closing = true;
    if (w->batch_conn == c)
        wbuf_flush(w);
    if (!c->open || c->want_write)
        return; /* conn_writable goes on once the client has read the backlog */
    if (c->order.finished || (c->closing && fe_order_in_flight(&c->order) == 0)) {
        fe_http_close(w, c);
        return;
    }
    conn_update_events(w, c);
}

/* Write what late answers gathered, then go on with each connection they came for: serve
 * requests that waited for the pipeline window, or close it once its last answer is out. */
void fe_http_settle(worker_t *w)
{
    wbuf_flush(w);
    while (w->dirty_head != NO_CONN) {
        conn_t *c = &w->conns[w->dirty_head];
        w->dirty_head = c->next_dirty;
        c->dirty = false;
        if (c->open && !c->want_write)
            conn_process(w, c);
    }
}

static void conn_readable(worker_t *w, conn_t *c)
{
    uint32_t cap = w->fe->cfg.http_max_request;
    if (c->in_len == cap) {
        conn_update_events(w, c); /* full of requests waiting for the window: pause */
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, cap - c->in_len, 0);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        fe_http_close(w, c);
        return;
    }
    if (n < 0)
        return;
    if (n == 0) {
        if (fe_order_in_flight(&c->order) == 0) {
            fe_http_close(w, c);
            return;
        }
        c->eof = true; /* answer what is at the backend, then close */
    }
    c->in_len += (uint32_t)n;
    c->last_active = w->now_mono;
    if (c->proxy != FE_PROXY_DONE) {
        int r = fe_proxy_http(w, c); /* a PROXY v2 header first: c->peer is then the client */
        if (r != 0) {
            if (r < 0 || c->eof)
                fe_http_close(w, c);
            return;
        }
    }
    conn_process(w, c);
}

static void conn_writable(worker_t *w, conn_t *c)
{
    size_t left = c->out_len - c->out_off;
    ssize_t n = send(c->fd, c->out + c->out_off, left, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fe_http_close(w, c);
        return;
    }
    c->last_active = w->now_mono;
    c->out_off += (size_t)n;
    if (c->out_off < c->out_len)
        return;
    fe_free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->want_write = false;
    conn_process(w, c); /* requests that arrived while we waited; closes if done */
}

/* Handle epoll events on an open connection: error, writable (backlog) or readable. */
void fe_http_event(worker_t *w, conn_t *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP))
        fe_http_close(w, c);
    else if (c->want_write)
        conn_writable(w, c);
    else
        conn_readable(w, c);
}

/* Out of file descriptors: the pending connection would keep the listener readable and the
 * loop spinning, so it is accepted with the spare descriptor and closed at once. */
static void refuse_without_fd(worker_t *w, int lfd)
{
    int err = errno;
    if (w->spare_fd >= 0) {
        close(w->spare_fd);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    w->c[C_HTTP_REFUSED]++;
    if (w->now_mono != w->last_fd_warning) {
        w->last_fd_warning = w->now_mono;
        slog_msg(SLOG_WARN, "worker %u: accept: %s: refusing HTTP connections (raise ulimit -n)",
                 w->index, strerror(err));
    }
}

void fe_http_accept(worker_t *w, int lfd)
{
    frontend_t *fe = w->fe;
    for (int i = 0; i < ACCEPT_ROUNDS; i++) {
        struct sockaddr_in6 sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                refuse_without_fd(w, lfd);
                continue;
            }
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return;
        }
        uint32_t open_now = atomic_fetch_add_explicit(&fe->open_conns, 1, memory_order_relaxed);
        if (open_now >= fe->cfg.http_max_conns || w->n_free == 0) {
            atomic_fetch_sub_explicit(&fe->open_conns, 1, memory_order_relaxed);
            w->c[C_HTTP_REFUSED]++;
            close(fd);
            continue;
        }
        conn_t *c = &w->conns[w->free_conns[--w->n_free]];
        if (!c->in)
            c->in = fe_malloc(w->fe->cfg.http_max_request);
        if (!c->in) {
            w->free_conns[w->n_free++] = (uint32_t)(c - w->conns);
            atomic_fetch_sub_explicit(&fe->open_conns, 1, memory_order_relaxed);
            w->c[C_HTTP_REFUSED]++;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->open = true;
        c->closing = c->eof = false;
        c->want_write = false;
        c->events = EPOLLIN;
        fe_order_init(&c->order);
        c->in_len = 0;
        c->last_active = w->now_mono;
        sockaddr_to_endpoint((struct sockaddr *)&sa, &c->peer);
        fe_proxy_accept(w, c);
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u64 = ev_data(EV_CONN, (uint32_t)(c - w->conns))};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            fe_http_close(w, c);
            continue;
        }
        w->c[C_HTTP_ACCEPTED]++;
        /* The request usually follows the handshake at once: read it now rather than after
         * another trip through epoll (a connection per request, as opentracker forces on its
         * clients, then costs one wake-up instead of two). */
        conn_readable(w, c);
    }
}

void fe_http_sweep(worker_t *w)
{
    uint32_t idle = w->fe->cfg.http_idle_timeout;
    for (uint32_t i = 0; i < w->max_conns; i++) {
        conn_t *c = &w->conns[i];
        if (c->open && w->now_mono - c->last_active >= idle)
            fe_http_close(w, c);
    }
}
