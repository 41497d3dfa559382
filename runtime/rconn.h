/* SPDX-License-Identifier: MIT */
/* rconn: where a Redis server is (a parsed redis:// URL) and how to open a synchronous hiredis
 * connection to it with bounded waits. Shared by membership (heartbeats, member reads) and keeper
 * (snapshots), which each keep their own connection on their own thread.
 *
 * Pure setup code: no state outside the caller's structs, no threads. */
#ifndef SHOAL_RCONN_H
#define SHOAL_RCONN_H

#include <stddef.h>
#include <stdint.h>

struct redisContext;
struct redisReply;

/* "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", HOST may be [v6]. */
typedef struct {
    char url[256]; /* as given, for messages (the password included: keep it out of logs) */
    char host[256];
    int port; /* 6379 if not given */
    char user[128];
    char password[128];
    int db;
} rconn_url_t;

/* Parse url into *out. 0, or -1 and why in err (when errlen > 0). */
int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen);

/* Connect with connect and command timeouts of timeout_ms, then AUTH and SELECT as the URL says.
 * Returns the connection (the caller frees it with redisFree()), or NULL and why in err. */
struct redisContext *rconn_open(const rconn_url_t *url, uint32_t timeout_ms, char *err,
                                size_t errlen);

/* True if r is missing (the connection failed: c->errstr says why) or a Redis error; then a
 * text "what: reason" goes into err. */
int rconn_failed(struct redisContext *c, struct redisReply *r, const char *what, char *err,
                 size_t errlen);

#endif
