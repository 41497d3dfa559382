/* SPDX-License-Identifier: MIT */
/* rconn: where a Redis server is (a parsed redis:// URL) and how to open a synchronous hiredis
 * connection to it with bounded waits. Shared by membership (heartbeats, member reads) and keeper
 * (snapshots), which each keep their own connection on their own thread.
 *
 * Pure setup code: no state outside the caller's structs, no threads. */
#ifndef SHOAL_RCONN_H
#define SHOAL_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redisContext;
struct redisReply;

#define RCONN_URL_MAX  255  /* longest URL rconn_parse() takes, in bytes */
#define RCONN_PATH_MAX 1024 /* longest --redis-password-file path */
#define RCONN_PASS_MAX 128  /* room for a password and its NUL (URL or file) */

/* rconn_check()'s answers besides 0 (Redis answered and took the credentials). */
#define RCONN_DOWN    (-1) /* no answer: not running, unreachable or too slow; worth a retry */
#define RCONN_REFUSED (-2) /* Redis refused the credentials or the DB: a configuration error */

/* "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", HOST may be [v6]. The password is only in
 * `password`: print `redacted`, never the URL as given. */
typedef struct {
    char redacted[RCONN_URL_MAX + 4]; /* the URL with the password as "***" (rconn_redact()) */
    char host[256];
    int port; /* 6379 if not given */
    char user[128];
    char password[RCONN_PASS_MAX];
    char password_file[RCONN_PATH_MAX]; /* "" or where the password is: read at each connect */
    int db;
} rconn_url_t;

/* Parse url into *out. 0, or -1 and why in err (when errlen > 0); the reason never contains the
 * password, even of a URL that does not parse. */
int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen);

/* rconn_parse(), then the password from password_file (NULL or "" for none) instead of the URL:
 * a URL that holds a password too is refused ("give the password once"), and "USER@" (no ':')
 * names the ACL user. The file is read by every rconn_open() (so a password rotated in the file
 * is used from the next connection on), not here. */
int rconn_parse_auth(const char *url, const char *password_file, rconn_url_t *out, char *err,
                     size_t errlen);

/* url as it may be logged: redact_url() (redact.h), the same split as rconn_parse(). */
char *rconn_redact(const char *url, char *out, size_t outlen);

/* Connect with connect and command timeouts of timeout_ms, then AUTH (as the URL's user, with the
 * URL's password or the password file's) and SELECT as the URL says. Returns the connection (the
 * caller frees it with redisFree()), or NULL and why in err ("connect HOST:PORT: ...", "AUTH:
 * WRONGPASS ... (as user 'U')", "SELECT: ...": Redis's own reason, never the password; the caller
 * names the URL, as rconn_check() does with url->redacted). *refused (may be NULL) tells
 * a refusal (AUTH or SELECT answered WRONGPASS, NOPERM, NOAUTH, "ERR AUTH ..." or a bad DB index;
 * an unreadable password file) from no answer or a passing error (LOADING, too many clients). */
struct redisContext *rconn_open_why(const rconn_url_t *url, uint32_t timeout_ms, bool *refused,
                                    char *err, size_t errlen);

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
