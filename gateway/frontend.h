/* SPDX-License-Identifier: MIT */
/* frontend: the client-facing UDP (BEP 15) and HTTP (BEP 3/23/7/48) servers.
 *
 * N worker threads share nothing: each has its own SO_REUSEPORT UDP and TCP sockets on every
 * listen address (the kernel spreads datagrams and connections over them), its own epoll loop,
 * connection-id checker, HTTP connection table and backend instance. UDP is read and answered
 * in batches (recvmmsg/sendmmsg). HTTP requests pipelined on one connection go to the backend
 * together (up to 32 at once) and are answered in request order. Nothing on the request path
 * allocates, except an HTTP connection's receive buffer (at accept), the send backlog of a client
 * that reads slowly, and the store of answers that overtook an earlier one of their connection
 * (only with a backend that answers later).
 *
 * Bounds: HTTP connections (per process, a counter shared by the workers), request head size, idle
 * time, pipelined requests of a connection at the backend, a connection's unsent backlog and
 * held answers together, scrape hashes per request, peers per reply. */
#ifndef SHOAL_FRONTEND_H
#define SHOAL_FRONTEND_H

#include "access.h"
#include "backend.h"
#include "connid.h"
#include "netaddr.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct frontend frontend_t;

typedef struct {
    const char *udp;       /* comma-separated listen addresses, or "off" */
    const char *http;      /* likewise */
    uint32_t workers;      /* >= 1 */
    uint32_t interval;     /* announce interval, seconds; replies add up to +-5 % jitter */
    uint32_t min_interval; /* seconds */
    uint32_t numwant_default;
    uint32_t numwant_max;           /* HTTP cap; UDP is further capped so a reply never fragments */
    uint32_t scrape_max;            /* info-hashes per HTTP scrape (<= SHOAL_SCRAPE_MAX) */
    uint32_t http_max_conns;        /* whole process */
    uint32_t http_max_request;      /* bytes of request head */
    uint32_t http_idle_timeout;     /* seconds */
    netaddr_list_t trusted_proxies; /* X-Forwarded-For / X-Real-IP honoured only from these */
    /* PROXY protocol v2: from these sources a header is required at the start of each HTTP
     * connection and each UDP datagram, and its address is the client's; from any other source a
     * header is refused. Empty: off (a header from anyone is refused, plain traffic is served). */
    netaddr_list_t proxy_protocol;
    uint8_t secret[CONNID_SECRET_LEN];
    connid_config_t connid;
    backend_open_fn backend_open;
    void *backend_arg;
    /* Access list (allow/deny by info-hash), consulted before a request reaches the backend;
     * NULL: off. Borrowed: must outlive the front end and have at least `workers` worker slots. */
    access_t *access;
    /* Let other processes (of the same user) bind the same addresses: the kernel then spreads
     * flows over all their sockets (SO_REUSEPORT), as ECMP spreads them over anycast sites, and a
     * new process can start before the old one stops. false: an address another process holds
     * is refused at start (a second tracker started by mistake would take half the traffic). */
    bool share_port;
    /* Abuse control, per client address (IPv6 by /64), in fixed tables all workers share
     * (ratelimit.h, connban.h); 0: off. rate_limit requests a second with bursts of
     * rate_limit_burst, over UDP and HTTP; connid_ban invalid UDP connection ids within
     * connid_ban_window seconds ban the address from UDP for connid_ban_time seconds. */
    uint32_t rate_limit, rate_limit_burst, rate_limit_table;
    uint32_t connid_ban, connid_ban_window, connid_ban_time, connid_ban_table;
} frontend_config_t;

/* Counters summed over the workers. */
typedef struct {
    uint64_t udp_connect, udp_announce, udp_scrape, udp_errors, udp_dropped;
    uint64_t http_announce, http_scrape, http_errors, http_accepted, http_refused;
    /* Announces and scrapes refused by the access list (also counted in udp_errors /
     * http_errors); http_refused counts connections refused at accept. */
    uint64_t udp_access_refused, http_access_refused;
    /* Well-formed announces and scrapes answered, by result (udp_announce etc. count those handed
     * to the backend): failed is a backend failure or a refusal by the front end (invalid
     * connection id, busy, bad query; a UDP request refused as busy is dropped, yet counted). A
     * UDP connect always succeeds (udp_connect). _peers: peers handed out in announce replies. */
    uint64_t udp_announce_ok, udp_announce_failed, udp_scrape_ok, udp_scrape_failed;
    uint64_t http_announce_ok, http_announce_failed, http_scrape_ok, http_scrape_failed;
    uint64_t udp_peers, http_peers;
    /* PROXY v2 headers accepted (refusals: reason FRONTEND_ERR_PROXY_PROTOCOL). */
    uint64_t udp_proxy_accepted, http_proxy_accepted;
    /* Addresses banned for invalid connection ids (bans started; connban.h). */
    uint64_t udp_bans;
} frontend_stats_t;

/* Why a request was refused or failed, per protocol (frontend_errors()). */
typedef enum {
    FRONTEND_ERR_BAD_REQUEST = 0, /* malformed datagram, request head, query or forwarded-for */
    FRONTEND_ERR_NOT_FOUND,       /* HTTP: a path other than /announce and /scrape */
    FRONTEND_ERR_CONNECTION_ID,   /* UDP: an invalid or expired connection id */
    FRONTEND_ERR_BUSY,            /* no pending slot free (the backend holds them all) */
    FRONTEND_ERR_BACKEND,         /* the backend's failure: node unavailable, timeout, full... */
    FRONTEND_ERR_TOO_LARGE,       /* HTTP: request head over the limit (431), reply too large */
    FRONTEND_ERR_ACCESS,          /* refused by the access list (also udp/http_access_refused) */
    FRONTEND_ERR_PROXY_PROTOCOL,  /* PROXY v2 header missing or invalid from a --proxy-protocol
                                     source, or sent by another: datagram dropped / conn. closed */
    FRONTEND_ERR_RATE_LIMITED,    /* over the address's rate limit (UDP: dropped unanswered) */
    FRONTEND_ERR_BANNED,          /* UDP: from an address banned for invalid connection ids */
    FRONTEND_ERR_COUNT
} frontend_err_t;

enum { FRONTEND_UDP = 0, FRONTEND_HTTP = 1 };

typedef struct {
    uint64_t n[2][FRONTEND_ERR_COUNT]; /* [FRONTEND_UDP or FRONTEND_HTTP][reason] */
} frontend_errors_t;

/* Check that the two listen lists (as in frontend_config_t) parse and are not both off,
 * without opening anything. Returns 0, or -1 with a reason in err. */
int frontend_check_listen(const char *udp, const char *http, char *err, size_t errlen);

/* Check the configuration and open and bind every socket, so that a bad address or a port in
 * use is reported before anything runs. Returns NULL with a reason in err. cfg is copied. */
frontend_t *frontend_new(const frontend_config_t *cfg, char *err, size_t errlen);

/* Start the worker threads. Returns 0, or -1 with a reason in err (then nothing runs). */
int frontend_start(frontend_t *self, char *err, size_t errlen);

/* Tell the workers to stop and wait for them. Safe to call once after frontend_start. */
void frontend_stop(frontend_t *self);

/* The listen addresses, as text, comma-separated (after the IPv4 fallback, if it applied). */
void frontend_describe(const frontend_t *self, char *out, size_t outlen);

/* Counters; exact after frontend_stop, approximate while running (each worker publishes its own
 * once a second: the request path writes only its worker's memory and takes no lock). */
void frontend_stats(const frontend_t *self, frontend_stats_t *out);

/* Refused and failed requests by protocol and reason, summed over the workers; published with
 * the counters of frontend_stats() (same freshness). */
void frontend_errors(const frontend_t *self, frontend_errors_t *out);

/* A short lower-case name for a reason ("bad_request", "not_found", "connection_id", "busy",
 * "backend", "too_large", "access_list", "proxy_protocol", "rate_limited", "banned"), e.g. a
 * metric label; "unknown" for any other value. */
const char *frontend_err_name(frontend_err_t why);

/* HTTP connections open now, over all workers (a gauge). */
uint32_t frontend_http_open(const frontend_t *self);

/* Milliseconds since the slowest worker last went round its event loop (a gauge; 0 before
 * frontend_start() and after frontend_stop()). A worker turns at least once a second when idle
 * (its epoll wait is at most 1 s, or the backend's tick), so an age of a few seconds means a
 * worker is stuck. Any thread: a clock read and one relaxed load per worker. */
uint32_t frontend_loop_age_ms(const frontend_t *self);

/* Close every socket and free everything; the workers must be stopped. NULL-safe. */
void frontend_destroy(frontend_t **self_p);

#endif
