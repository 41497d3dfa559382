/* SPDX-License-Identifier: MIT */
/* sentinelwatch: one thread per process that follows a redis-sentinel:// URL's sentinels and
 * tells the process's Redis connections when the master moves.
 *
 * It subscribes to +switch-master on one sentinel at a time (the next one when that one stops
 * answering, after a second) and, for a message naming the URL's master, calls
 * rconn_note_switch(): every connection opened before is reopened by its owner before its next
 * command, through the sentinels (rconn.h). A connection error or a READONLY reply does the same
 * without it; this is for the cases where the old master still answers (a network partition, a
 * manual failover). Logged: each switch (old and new address), the first failure to subscribe
 * and every recovery.
 *
 * Ownership: the caller owns the watcher; sentinelwatch_destroy() stops the thread (within about
 * 250 ms) and frees it. */
#ifndef SHOAL_SENTINELWATCH_H
#define SHOAL_SENTINELWATCH_H

#include "rconn.h"
#include "slog.h"

#include <stdint.h>

typedef struct sentinelwatch sentinelwatch_t;

/* Start watching url (copied; a redis-sentinel:// URL). NULL and why in err if the thread cannot
 * start; a sentinel that does not answer is no error (retried). */
sentinelwatch_t *sentinelwatch_new(const rconn_url_t *url, slog_fn log, void *log_arg, char *err,
                                   size_t errlen);

/* +switch-master messages for our master seen so far. */
uint64_t sentinelwatch_switches(const sentinelwatch_t *self);

void sentinelwatch_destroy(sentinelwatch_t **self_p);

#endif
