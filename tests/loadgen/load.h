/* SPDX-License-Identifier: MIT */
/* load: the internals of shoal-load shared by its main program and its UDP and HTTP workers.
 * Each worker thread owns its sockets, its random stream and its load_stats_t; the main thread
 * reads a worker's stats only after joining it, so nothing here is shared while it changes.
 *
 * Invariant: a worker returns by itself at cfg->end_ns; every loop inside it is bounded. */
#ifndef SHOAL_LOAD_H
#define SHOAL_LOAD_H

#include "lglat.h"
#include "lgtarget.h"
#include "lgwork.h"

#include <stdbool.h>
#include <stdint.h>

#define LOAD_SAMPLES     4 /* error / invalid messages kept for the report */
#define LOAD_SAMPLE_LEN  120
#define LOAD_BATCH       64 /* datagrams per sendmmsg / recvmmsg */
#define LOAD_MAX_WORKERS 64

typedef enum { LOAD_UDP, LOAD_HTTP } load_mode_t;

typedef struct {
    load_mode_t mode;
    lgtarget_t target;
    lgwork_t wl;
    unsigned workers;
    unsigned sockets;  /* per worker: UDP sockets or HTTP connections */
    unsigned inflight; /* per socket */
    unsigned timeout_ms;
    double rate; /* requests/s over all workers; 0 = closed loop */
    bool http_new_conn;
    bool spread_ips;     /* bind socket g to its own 127.0.x.y source address */
    uint64_t start_ns;   /* CLOCK_MONOTONIC */
    uint64_t measure_ns; /* start + warmup: counting begins */
    uint64_t end_ns;     /* measure + duration: workers stop */
} load_config_t;

typedef struct {
    uint64_t sent[3]; /* by lgwork_kind_t */
    uint64_t ok[3];   /* valid replies by kind */
    uint64_t errors;  /* BEP 15 error action, HTTP failure reason or non-200 status */
    uint64_t invalid; /* anything else that is not a correct reply */
    uint64_t timeouts;
    uint64_t late;   /* a reply to a request already counted as timed out */
    uint64_t closed; /* HTTP: connection closed with requests outstanding */
    uint64_t send_fail;
    uint64_t reconnects; /* UDP: connects forced by a connection-id error */
    uint64_t peers;      /* peers in valid announce replies */
    uint64_t behind;     /* --rate: sends dropped from the schedule (generator fell behind) */
    uint64_t unsorted;   /* HTTP scrape replies with "files" keys out of order (tolerated) */
    uint64_t cpu_ns;     /* worker thread CPU time in the measured window, idle spin excluded */
    unsigned n_error_samples;
    unsigned n_invalid_samples;
    char error_samples[LOAD_SAMPLES][LOAD_SAMPLE_LEN];
    char invalid_samples[LOAD_SAMPLES][LOAD_SAMPLE_LEN];
    lglat_t lat;
} load_stats_t;

typedef struct {
    const load_config_t *cfg;
    unsigned index;
    load_stats_t stats;   /* the measured window */
    load_stats_t scratch; /* warm-up: counted, then discarded */
    int failed;           /* setup failed: message in fail_msg */
    char fail_msg[160];
} load_worker_t;

/* Thread bodies: run until cfg->end_ns. */
void *load_udp_worker(void *arg);
void *load_http_worker(void *arg);

/* Shared helpers (load_common.c). */
uint64_t load_now_ns(void);
/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID); a system call, use sparingly. */
uint64_t load_thread_cpu_ns(void);

/* The worker's own CPU use over the measured window, minus the time it spent polling idle:
 * call load_cpu_tick every loop turn with whether the turn did work. */
typedef struct {
    bool measuring;
    bool idle;
    uint64_t start_cpu;
    uint64_t idle_start_cpu;
    uint64_t idle_cpu;
} load_cpu_t;
void load_cpu_tick(load_cpu_t *c, const load_worker_t *w, uint64_t now, bool progress);
/* Store the window's busy CPU time in w->stats.cpu_ns (call once, at the end). */
void load_cpu_finish(load_cpu_t *c, load_worker_t *w);
/* The stats a measurement at time now belongs to. */
load_stats_t *load_stats_at(load_worker_t *w, uint64_t now);
/* Keep the first LOAD_SAMPLES messages; bytes are made printable. */
void load_sample(char (*samples)[LOAD_SAMPLE_LEN], unsigned *n, const char *prefix,
                 const uint8_t *msg, size_t len);
/* Source address for global socket index g (127.0.x.y, or ::1 / 127.0.0.1 without spread). */
void load_source_addr(const load_config_t *cfg, unsigned g, struct sockaddr_storage *out,
                      socklen_t *len);
/* Send pacing: how many requests may go now (closed loop: UINT32_MAX). */
uint32_t load_budget(const load_config_t *cfg, uint64_t now, uint64_t sent_so_far);
/* Nanoseconds until the next paced send is due (closed loop: UINT64_MAX). */
uint64_t load_next_due(const load_config_t *cfg, uint64_t now, uint64_t sent_so_far);

#endif
