/* SPDX-License-Identifier: MIT */
/* rconn: where a Redis server is (a parsed redis:// or redis-sentinel:// URL) and how to open a
 * synchronous hiredis connection to it with bounded waits. Shared by membership (heartbeats,
 * member reads), keeper (snapshots) and the access list, which each keep their own connection on
 * their own thread.
 *
 * Sentinel. With redis-sentinel://, every rconn_open() asks the sentinels in turn for the master
 * (SENTINEL get-master-addr-by-name), connects to it and checks with ROLE that it is one; a
 * caller that meets a connection error or a reply rconn_moved() recognises drops its connection
 * and opens again, which asks again. sentinelwatch (sentinelwatch.h) follows +switch-master and
 * moves rconn_generation(): a connection opened at an older generation is dropped by its owner
 * before its next command (rconn_outdated()).
 *
 * State: the generation and the sentinels' password file are process-wide (one Redis per
 * process); the sentinel that answered last is remembered (atomics). No threads. */
#ifndef SHOAL_RCONN_H
#define SHOAL_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redisContext;
struct redisReply;

#define RCONN_URL_MAX       255  /* longest URL rconn_parse() takes, in bytes */
#define RCONN_PATH_MAX      1024 /* longest --redis-password-file path */
#define RCONN_PASS_MAX      128  /* room for a password and its NUL (URL or file) */
#define RCONN_SENTINELS_MAX 8    /* sentinels one redis-sentinel:// URL may list */
#define RCONN_NAME_MAX      64   /* room for a master name and its NUL */
#define RCONN_ID_MAX        96   /* room for a server identity (rconn_info_t.id) */
#define RCONN_SENTINEL_PORT 26379

/* rconn_check()'s answers besides 0 (Redis answered and took the credentials). */
#define RCONN_DOWN    (-1) /* no answer: not running, unreachable or too slow; worth a retry */
#define RCONN_REFUSED (-2) /* Redis refused the credentials or the DB: a configuration error */

typedef struct {
    char host[256];
    int port;
} rconn_addr_t;

/* "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", HOST may be [v6], or
 * "redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]" (sentinels, port
 * 26379 if not given; MASTER is 1..63 of [A-Za-z0-9_.-]); the credentials are the Redis servers'
 * (master and replicas), the sentinels' password is rconn_set_sentinel_password_file()'s. The
 * password is only in `password`: print `redacted`, never the URL as given. */
typedef struct {
    char redacted[RCONN_URL_MAX + 4]; /* the URL with the password as "***" (rconn_redact()) */
    char host[256];                   /* redis:// only */
    int port;                         /* 6379 if not given */
    char user[128];
    char password[RCONN_PASS_MAX];
    char password_file[RCONN_PATH_MAX]; /* "" or where the password is: read at each connect */
    int db;
    /* redis-sentinel:// only (n_sentinels is 0 for redis://) */
    size_t n_sentinels;
    rconn_addr_t sentinels[RCONN_SENTINELS_MAX];
    char master[RCONN_NAME_MAX];
    char sentinel_password_file[RCONN_PATH_MAX]; /* "" or the sentinels' password */
} rconn_url_t;

/* What rconn_open_info() found about the server it connected to. */
typedef struct {
    char addr[300];        /* "HOST:PORT" of the server (with Sentinel: the master found) */
    char id[RCONN_ID_MAX]; /* "RUN_ID/MASTER_REPLID" from INFO: another server, a restart or a
                            * promotion all change it; "" when INFO is not allowed */
    int replicas;          /* connected replicas (INFO connected_slaves), 0 if unknown */
    uint64_t generation;   /* rconn_generation() when it was opened */
} rconn_info_t;

/* Parse url into *out. 0, or -1 and why in err (when errlen > 0); the reason never contains the
 * password, even of a URL that does not parse. */
int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen);

/* rconn_parse(), then the password from password_file (NULL or "" for none) instead of the URL:
 * a URL that holds a password too is refused ("give the password once"), and "USER@" (no ':')
 * names the ACL user. The file is read by every rconn_open() (so a password rotated in the file
 * is used from the next connection on), not here. */
int rconn_parse_auth(const char *url, const char *password_file, rconn_url_t *out, char *err,
                     size_t errlen);

/* The sentinels' password file for every redis-sentinel:// URL parsed after this call (NULL or ""
 * for none): the process's --redis-sentinel-password-file, set once at start before any thread
 * parses a URL. Read at every connection to a sentinel. */
void rconn_set_sentinel_password_file(const char *path);

/* The process's sentinel generation: moved by rconn_note_switch() (a sentinel announced a new
 * master). rconn_outdated(gen) is true when a connection opened at gen should be reopened. */
uint64_t rconn_generation(void);
void rconn_note_switch(void);
bool rconn_outdated(uint64_t gen);

/* Whether a Redis error reply says this server is not (or no longer) the master to write to:
 * READONLY (a replica), NOREPLICAS (min-replicas-to-write not met: an isolated old master),
 * MASTERDOWN, LOADING. Such a connection is dropped and opened again. NULL is false. */
bool rconn_moved(const char *reason);

/* url as it may be logged: redact_url() (redact.h), the same split as rconn_parse(). */
char *rconn_redact(const char *url, char *out, size_t outlen);

/* Connect with connect and command timeouts of timeout_ms, then AUTH (as the URL's user, with the
 * URL's password or the password file's) and SELECT as the URL says. With Sentinel: the master
 * the sentinels name, checked with ROLE, all within about 2 * timeout_ms. Returns the connection
 * (the caller frees it with redisFree()), or NULL and why in err ("connect HOST:PORT: ...", "AUTH:
 * WRONGPASS ... (as user 'U')", "SELECT: ...": Redis's own reason, never the password; the caller
 * names the URL, as rconn_check() does with url->redacted). *refused (may be NULL) tells
 * a refusal (AUTH or SELECT answered WRONGPASS, NOPERM, NOAUTH, "ERR AUTH ..." or a bad DB index;
 * an unreadable password file; with Sentinel: the sentinels' refusal of their password, or every
 * sentinel that answered not knowing the master) from no answer or a passing error (LOADING, too
 * many clients, a sentinel naming a server that is not a master yet). */
struct redisContext *rconn_open_why(const rconn_url_t *url, uint32_t timeout_ms, bool *refused,
                                    char *err, size_t errlen);

/* rconn_open_why(), and what the server is into *info (INFO is one more command per connection:
 * only callers that watch for a server change pay for it). */
struct redisContext *rconn_open_info(const rconn_url_t *url, uint32_t timeout_ms,
                                     rconn_info_t *info, bool *refused, char *err, size_t errlen);

/* The connected replicas of the server behind c (INFO replication's connected_slaves) into
 * *replicas (0 when INFO is not allowed). 0, or -1 when the connection failed (why in c). */
int rconn_replicas(struct redisContext *c, int *replicas);

/* A connection to the sentinel s of url (a redis-sentinel:// URL), authenticated with the
 * sentinels' password file when there is one, with connect and command timeouts of timeout_ms.
 * NULL and why in err; *refused when the password file cannot be used or the sentinel refused
 * it. Shared by the master lookup here and sentinelwatch's subscription. */
struct redisContext *rconn_sentinel_connect(const rconn_url_t *url, const rconn_addr_t *s,
                                            uint32_t timeout_ms, bool *refused, char *err,
                                            size_t errlen);

/* rconn_open_why() without the distinction. */
struct redisContext *rconn_open(const rconn_url_t *url, uint32_t timeout_ms, char *err,
                                size_t errlen);

/* A start-up check: parse url with password_file (rconn_parse_auth()), connect, AUTH, SELECT and
 * close. 0, RCONN_DOWN or RCONN_REFUSED (a URL or file that cannot be used included), why in
 * err as "redis REDACTED-URL: reason". */
int rconn_check(const char *url, const char *password_file, uint32_t timeout_ms, char *err,
                size_t errlen);

/* True if r is missing (the connection failed: c->errstr says why) or a Redis error; then a
 * text "what: reason" goes into err. Neither hiredis nor Redis put the command's arguments in
 * their reasons, so an AUTH that failed does not show the password. */
int rconn_failed(struct redisContext *c, struct redisReply *r, const char *what, char *err,
                 size_t errlen);

#endif
