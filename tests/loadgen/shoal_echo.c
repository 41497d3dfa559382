/* SPDX-License-Identifier: MIT */
/* shoal-echo: the most trivial tracker that passes shoal-load's checks, to measure the load
 * generator's own ceiling. UDP (BEP 15): connect -> a fixed connection id, announce -> the
 * header plus min(numwant, --peers) fixed peers, scrape -> zeros; with recvmmsg/sendmmsg.
 * HTTP: keep-alive (pipelining allowed), a fixed bencoded announce body with the same peers,
 * "d5:filesdee" for a scrape. One thread, one epoll set; loopback addresses only.
 *
 * Invariant: runs at most --duration seconds; every buffer is fixed at start, a connection
 * whose reply does not fit its write buffer stops reading until the buffer drains. */
#include "lgtarget.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH         64
#define PKT_LEN       2048
#define REPLY_LEN     (20 + 18 * 200)
#define MAX_CONNS     4096
#define CONN_RBUF     16384
#define CONN_WBUF     65536
#define MAX_DURATION  86400
#define TAG_UDP       0xffffffffu
#define TAG_LISTEN    0xfffffffeu
#define CONNECTION_ID 0x5348304c4543484fULL /* fixed: the echo does not check ids */

typedef struct {
    int fd;
    bool closing;
    size_t rlen, wlen, woff;
    uint8_t *rbuf;
    uint8_t *wbuf;
} conn_t;

typedef struct {
    int ep;
    int udp_fd;
    int udp_family;
    int listen_fd;
    unsigned peers;
    conn_t *conns;
    uint64_t udp_replies, http_replies;
    uint8_t rx[BATCH][PKT_LEN];
    uint8_t tx[BATCH][REPLY_LEN];
    struct sockaddr_storage names[BATCH];
    struct mmsghdr rmsg[BATCH], smsg[BATCH];
    struct iovec riov[BATCH], siov[BATCH];
} echo_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Build the reply to one datagram into out; returns its length (0: no reply). */
static size_t udp_reply(const echo_t *e, const uint8_t *pkt, size_t len, bool v6, uint8_t *out)
{
    if (len < 16)
        return 0;
    uint32_t action = get32(pkt + 8);
    memcpy(out + 4, pkt + 12, 4); /* transaction id */
    if (action == 0 && get32(pkt) == 0x417 && get32(pkt + 4) == 0x27101980) {
        put32(out, 0);
        put32(out + 8, (uint32_t)(CONNECTION_ID >> 32));
        put32(out + 12, (uint32_t)CONNECTION_ID);
        return 16;
    }
    if (action == 1 && len >= 98) {
        int32_t numwant = (int32_t)get32(pkt + 92);
        unsigned n = e->peers;
        if (numwant >= 0 && (unsigned)numwant < n)
            n = (unsigned)numwant;
        size_t plen = v6 ? 18 : 6;
        put32(out, 1);
        put32(out + 8, 1800);
        put32(out + 12, 0);
        put32(out + 16, e->peers);
        for (unsigned i = 0; i < n; i++) {
            uint8_t *p = out + 20 + plen * i;
            memset(p, 0, plen);
            if (v6) {
                p[15] = 1;
            } else {
                p[0] = 127;
                p[3] = 1;
            }
            p[plen - 2] = (uint8_t)((10000 + i) >> 8);
            p[plen - 1] = (uint8_t)(10000 + i);
        }
        return 20 + plen * n;
    }
    if (action == 2 && len >= 36) {
        size_t n = (len - 16) / 20;
        if (n > 74)
            n = 74;
        put32(out, 2);
        memset(out + 8, 0, 12 * n);
        return 8 + 12 * n;
    }
    static const char msg[] = "echo: unknown request";
    put32(out, 3);
    memcpy(out + 8, msg, sizeof(msg) - 1);
    return 8 + sizeof(msg) - 1;
}

static void udp_ready(echo_t *e)
{
    for (unsigned round = 0; round < 16; round++) {
        for (unsigned k = 0; k < BATCH; k++) {
            e->rmsg[k].msg_hdr.msg_name = &e->names[k];
            e->rmsg[k].msg_hdr.msg_namelen = sizeof(e->names[k]);
        }
        int r = recvmmsg(e->udp_fd, e->rmsg, BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0)
            return;
        unsigned n = 0;
        for (int k = 0; k < r; k++) {
            const struct sockaddr_in6 *src = (const struct sockaddr_in6 *)&e->names[k];
            bool v6 = e->udp_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&src->sin6_addr);
            size_t len = udp_reply(e, e->rx[k], e->rmsg[k].msg_len, v6, e->tx[n]);
            if (len == 0)
                continue;
            e->siov[n].iov_base = e->tx[n];
            e->siov[n].iov_len = len;
            e->smsg[n].msg_hdr.msg_name = &e->names[k];
            e->smsg[n].msg_hdr.msg_namelen = e->rmsg[k].msg_hdr.msg_namelen;
            n++;
        }
        if (n > 0) {
            int s = sendmmsg(e->udp_fd, e->smsg, n, MSG_DONTWAIT);
            if (s > 0)
                e->udp_replies += (uint64_t)s;
        }
        if (r < BATCH)
            return;
    }
}

/* numwant=N in the request line, or -1. */
static long query_numwant(const uint8_t *req, size_t len)
{
    static const char key[] = "numwant=";
    for (size_t i = 0; i + sizeof(key) - 1 < len && req[i] != '\r'; i++) {
        if ((i == 0 || req[i - 1] == '?' || req[i - 1] == '&') &&
            memcmp(req + i, key, sizeof(key) - 1) == 0) {
            long v = 0;
            for (size_t k = i + sizeof(key) - 1; k < len && req[k] >= '0' && req[k] <= '9'; k++)
                if (v < 100000)
                    v = v * 10 + (req[k] - '0');
            return v;
        }
    }
    return -1;
}

static bool has_close(const uint8_t *req, size_t len)
{
    static const char h[] = "\r\nConnection: close";
    for (size_t i = 0; i + sizeof(h) - 1 <= len; i++)
        if (memcmp(req + i, h, sizeof(h) - 1) == 0)
            return true;
    return false;
}

/* Append the reply to the request req[0..len) to c's write buffer; false if it does not fit. */
static bool http_reply(echo_t *e, conn_t *c, const uint8_t *req, size_t len)
{
    char body[64 + 6 * 200];
    size_t blen;
    int status = 200;
    if (len > 14 && memcmp(req, "GET /announce?", 14) == 0) {
        long nw = query_numwant(req, len);
        unsigned n = e->peers;
        if (nw >= 0 && (unsigned long)nw < n)
            n = (unsigned)nw;
        blen = (size_t)snprintf(
            body, sizeof(body),
            "d8:completei%ue10:incompletei0e8:intervali1800e5:peers%u:", e->peers, 6 * n);
        for (unsigned i = 0; i < n; i++) {
            uint8_t p[6] = {127, 0, 0, 1, (uint8_t)((10000 + i) >> 8), (uint8_t)(10000 + i)};
            memcpy(body + blen, p, 6);
            blen += 6;
        }
        body[blen++] = 'e';
    } else if (len > 12 && memcmp(req, "GET /scrape?", 12) == 0) {
        blen = (size_t)snprintf(body, sizeof(body), "d5:filesdee");
    } else {
        status = 404;
        blen = (size_t)snprintf(body, sizeof(body), "not found");
    }
    bool close = has_close(req, len);
    char head[160];
    size_t hlen = (size_t)snprintf(head, sizeof(head),
                                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: %zu\r\n%s\r\n",
                                   status, status == 200 ? "OK" : "Not Found", blen,
                                   close ? "Connection: close\r\n" : "");
    if (c->wlen + hlen + blen > CONN_WBUF)
        return false;
    memcpy(c->wbuf + c->wlen, head, hlen);
    memcpy(c->wbuf + c->wlen + hlen, body, blen);
    c->wlen += hlen + blen;
    c->closing |= close;
    e->http_replies++;
    return true;
}

static void conn_drop(conn_t *c)
{
    close(c->fd);
    c->fd = -1;
}

static void conn_ready(echo_t *e, conn_t *c, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (unsigned k = 0; k < 8 && c->rlen < CONN_RBUF; k++) {
            ssize_t r = recv(c->fd, c->rbuf + c->rlen, CONN_RBUF - c->rlen, 0);
            if (r > 0) {
                c->rlen += (size_t)r;
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                conn_drop(c);
                return;
            }
            break;
        }
    }
    /* Answer every complete request that fits the write buffer. */
    size_t off = 0;
    while (!c->closing) {
        const uint8_t *start = c->rbuf + off;
        size_t avail = c->rlen - off, end = 0;
        for (size_t i = 0; i + 4 <= avail; i++) {
            if (memcmp(start + i, "\r\n\r\n", 4) == 0) {
                end = i + 4;
                break;
            }
        }
        if (end == 0 || !http_reply(e, c, start, end))
            break;
        off += end;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    if (c->rlen == CONN_RBUF && c->wlen == 0) {
        conn_drop(c); /* a request head larger than the buffer */
        return;
    }
    while (c->woff < c->wlen) {
        ssize_t r = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_drop(c);
            return;
        }
        c->woff += (size_t)r;
    }
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        if (c->closing) {
            conn_drop(c);
            return;
        }
    }
    struct epoll_event ev2 = {.events = EPOLLIN | (c->wlen ? EPOLLOUT : 0),
                              .data.u32 = (uint32_t)(c - e->conns)};
    (void)epoll_ctl(e->ep, EPOLL_CTL_MOD, c->fd, &ev2);
}

static void accept_ready(echo_t *e)
{
    for (unsigned k = 0; k < 64; k++) {
        int fd = accept4(e->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        unsigned slot = MAX_CONNS;
        for (unsigned i = 0; i < MAX_CONNS; i++) {
            if (e->conns[i].fd < 0) {
                slot = i;
                break;
            }
        }
        if (slot == MAX_CONNS) {
            close(fd);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = &e->conns[slot];
        if (c->rbuf == NULL)
            c->rbuf = malloc(CONN_RBUF); /* once per slot, kept for the next connection */
        if (c->wbuf == NULL)
            c->wbuf = malloc(CONN_WBUF);
        if (c->rbuf == NULL || c->wbuf == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->closing = false;
        c->rlen = c->wlen = c->woff = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = slot};
        if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            conn_drop(c);
    }
}

static int open_bound(const lgtarget_t *t, int type)
{
    int fd = socket(t->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, size = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (type == SOCK_DGRAM) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    if (bind(fd, (const struct sockaddr *)&t->addr, t->addr_len) != 0 ||
        (type == SOCK_STREAM && listen(fd, 1024) != 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: shoal-echo [--udp ADDR:PORT] [--http ADDR:PORT] [--duration S] "
               "[--peers N] [--busy-poll]\n"
               "A trivial BEP 15 / HTTP tracker stand-in to measure shoal-load's ceiling.\n"
               "  --udp ADDR:PORT   answer BEP 15 here (loopback only)\n"
               "  --http ADDR:PORT  answer HTTP announce/scrape here, keep-alive\n"
               "  --duration S      exit after S seconds (default 60, max 86400)\n"
               "  --peers N         peers per announce reply, at most numwant (default 30, "
               "max 200)\n"
               "  --busy-poll       never sleep in epoll_wait (uses a whole core)\n");
}

int main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"udp", required_argument, NULL, 'u'},
        {"http", required_argument, NULL, 'h'},
        {"duration", required_argument, NULL, 'd'},
        {"peers", required_argument, NULL, 'p'},
        {"busy-poll", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    static echo_t e;
    lgtarget_t udp_addr, http_addr;
    bool want_udp = false, want_http = false, busy_poll = false;
    unsigned long duration = 60, peers = 30;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'u':
        case 'h': {
            lgtarget_t *t = c == 'u' ? &udp_addr : &http_addr;
            lgtarget_err_t err = lgtarget_parse(optarg, t);
            if (err != LGTARGET_OK) {
                fprintf(stderr, "shoal-echo: %s: %s\n", optarg, lgtarget_strerror(err));
                return 2;
            }
            *(c == 'u' ? &want_udp : &want_http) = true;
            break;
        }
        case 'd':
            duration = strtoul(optarg, &end, 10);
            if (*end != '\0' || duration < 1 || duration > MAX_DURATION) {
                fprintf(stderr, "shoal-echo: bad --duration\n");
                return 2;
            }
            break;
        case 'p':
            peers = strtoul(optarg, &end, 10);
            if (*end != '\0' || peers > 200) {
                fprintf(stderr, "shoal-echo: bad --peers\n");
                return 2;
            }
            break;
        case 'b':
            busy_poll = true;
            break;
        case 'H':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((!want_udp && !want_http) || optind < argc) {
        usage(stderr);
        return 2;
    }
    e.peers = (unsigned)peers;
    e.udp_fd = e.listen_fd = -1;
    e.ep = epoll_create1(EPOLL_CLOEXEC);
    e.conns = calloc(MAX_CONNS, sizeof(*e.conns));
    if (e.ep < 0 || e.conns == NULL)
        return 1;
    for (unsigned i = 0; i < MAX_CONNS; i++)
        e.conns[i].fd = -1;
    for (unsigned k = 0; k < BATCH; k++) {
        e.riov[k].iov_base = e.rx[k];
        e.riov[k].iov_len = PKT_LEN;
        e.rmsg[k].msg_hdr.msg_iov = &e.riov[k];
        e.rmsg[k].msg_hdr.msg_iovlen = 1;
        e.smsg[k].msg_hdr.msg_iov = &e.siov[k];
        e.smsg[k].msg_hdr.msg_iovlen = 1;
    }
    if (want_udp) {
        e.udp_fd = open_bound(&udp_addr, SOCK_DGRAM);
        e.udp_family = udp_addr.family;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_UDP};
        if (e.udp_fd < 0 || epoll_ctl(e.ep, EPOLL_CTL_ADD, e.udp_fd, &ev) != 0) {
            fprintf(stderr, "shoal-echo: udp %s: %s\n", udp_addr.host_port, strerror(errno));
            return 1;
        }
    }
    if (want_http) {
        e.listen_fd = open_bound(&http_addr, SOCK_STREAM);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TAG_LISTEN};
        if (e.listen_fd < 0 || epoll_ctl(e.ep, EPOLL_CTL_ADD, e.listen_fd, &ev) != 0) {
            fprintf(stderr, "shoal-echo: http %s: %s\n", http_addr.host_port, strerror(errno));
            return 1;
        }
    }
    fprintf(stderr, "shoal-echo: ready%s%s%s%s for %lus\n", want_udp ? " udp " : "",
            want_udp ? udp_addr.host_port : "", want_http ? " http " : "",
            want_http ? http_addr.host_port : "", duration);
    uint64_t end = now_ns() + duration * 1000000000ULL;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end)
            break;
        uint64_t left_ms = (end - now) / 1000000 + 1;
        /* Busy polling never sleeps, so no reply waits for a wake-up: on a shared machine that
         * keeps the measured ceiling the generator's, not the scheduler's. */
        int wait_ms = busy_poll ? 0 : left_ms < 100 ? (int)left_ms : 100;
        int n = epoll_wait(e.ep, evs, 256, wait_ms);
        for (int i = 0; i < n; i++) {
            uint32_t tag = evs[i].data.u32;
            if (tag == TAG_UDP)
                udp_ready(&e);
            else if (tag == TAG_LISTEN)
                accept_ready(&e);
            else if (tag < MAX_CONNS && e.conns[tag].fd >= 0)
                conn_ready(&e, &e.conns[tag], evs[i].events);
        }
    }
    for (unsigned i = 0; i < MAX_CONNS; i++)
        if (e.conns[i].fd >= 0)
            close(e.conns[i].fd);
    fprintf(stderr, "shoal-echo: done, %llu udp replies, %llu http replies\n",
            (unsigned long long)e.udp_replies, (unsigned long long)e.http_replies);
    return 0;
}
