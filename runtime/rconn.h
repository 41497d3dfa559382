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

#define RCONN_URL_MAX 255 /* longest URL rconn_parse() takes, in bytes */

/* "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", HOST may be [v6]. The password is only in
 * `password`: print `redacted`, never the URL as given. */
typedef struct {
    char redacted[RCONN_URL_MAX + 4]; /* the URL with the password as "***" (rconn_redact()) */
    char host[256];
    int port; /* 6379 if not given */
    char user[128];
    char password[128];
    int db;
} rconn_url_t;

/* Parse url into *out. 0, or -1 and why in err (when errlen > 0); the reason never contains the
 * password, even of a URL that does not parse. */
int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen);

/* url as it may be logged, into out[0..outlen) (truncated, always terminated when outlen > 0).
 * The credentials run from after "://" (or the start) to the last '@'; what follows their first
 * ':' (all of them if there is no ':') becomes "***", and control characters become '?'. Takes
 * any text, a URL that rconn_parse() refuses included, and never copies a byte of the password.
 * Returns out. */
char *rconn_redact(const char *url, char *out, size_t outlen);

/* Connect with connect and command timeouts of timeout_ms, then AUTH and SELECT as the URL says.
 * Returns the connection (the caller frees it with redisFree()), or NULL and why in err. */
struct redisContext *rconn_open(const rconn_url_t *url, uint32_t timeout_ms, char *err,
                                size_t errlen);

/* True if r is missing (the connection failed: c->errstr says why) or a Redis error; then a
 * text "what: reason" goes into err. Neither hiredis nor Redis put the command's arguments in
 * their reasons, so an AUTH that failed does not show the password. */
int rconn_failed(struct redisContext *c, struct redisReply *r, const char *what, char *err,
                 size_t errlen);

#endif
