/* SPDX-License-Identifier: MIT */
/* admin: the admin HTTP listener every role runs beside its tracker port (/metrics, /healthz,
 * /readyz, /api/v1/...), on libmicrohttpd with one internal polling thread (epoll where there is
 * one). The role registers routes, then starts it; the listener answers every error itself, always
 * with a JSON body {"error":"..."}:
 *   400  a path with "..", a %00, not starting with '/', or over ADMIN_MAX_PATH bytes
 *   404  no route for the path
 *   405  a route for the path but not for this method (Allow lists the methods it has)
 *   403  a write route when no token file was given ("writes disabled: no --admin-token-file")
 *   401  a write route without "Authorization: Bearer <token>" or with a wrong one
 *        (WWW-Authenticate: Bearer)
 *   413  a request body over ADMIN_MAX_BODY bytes
 *   500  a handler that filled no status
 * (libmicrohttpd's own protocol errors, such as a malformed request line or headers beyond its
 * per-connection memory, come with its own short HTML body.)
 *
 * Threads: handlers run on the listener's thread, one at a time (a single internal thread, no
 * thread per connection), so handler code needs no lock against other admin handlers; it does
 * need one (or atomics) for data it shares with the role's other threads. */
#ifndef SHOAL_ADMIN_H
#define SHOAL_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_MAX_ROUTES      64
#define ADMIN_MAX_PATH        1024       /* bytes in a request path, as sent and decoded */
#define ADMIN_MAX_BODY        (1u << 20) /* bytes in a request body */
#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_TIMEOUT_S       10 /* an idle connection is closed after this */
#define ADMIN_MAX_TOKEN       1024

typedef struct admin admin_t;
typedef struct admin_req admin_req_t; /* opaque: one request */

typedef struct {
    int status;               /* HTTP status; 0 = not filled (admin then answers 500) */
    const char *content_type; /* NULL: "application/json"; must outlive the handler (a literal) */
    char *body;               /* malloc'ed; admin frees it */
    size_t len;
} admin_reply_t;

/* Fill *reply (which starts zeroed). req and everything it returns is valid only during the
 * call. */
typedef void (*admin_handler_fn)(void *arg, const admin_req_t *req, admin_reply_t *reply);

typedef struct {
    const char *listen;     /* "ADDR:PORT", "[V6]:PORT", or "off" (ADDR a numeric address) */
    const char *token_file; /* NULL or "": write routes answer 403 "writes disabled: no
                               --admin-token-file" */
    const char *role;       /* "shoal", "shoal-gateway", "shoal-node": the Server header */
} admin_config_t;

#define ADMIN_PREFIX                                                                               \
    1u /* the route matches path == p or path starting with p followed by '/';                     \
          admin_req_rest() gives what follows the '/' */
#define ADMIN_WRITE                                                                                \
    2u /* needs "Authorization: Bearer <token>" equal to the file's token                          \
          (compared in constant time; 401 with WWW-Authenticate: Bearer when                       \
          missing or wrong) */

/* Check the address and read the token file (first line, trimmed; an empty or unreadable file is
 * an error naming the file; the token never appears in any text); binds nothing. listen "off":
 * a valid admin_t that admin_start() does not open (admin_enabled() false). Returns NULL and why
 * in err. cfg's strings are copied. */
admin_t *admin_new(const admin_config_t *cfg, char *err, size_t errlen);
/* False when the listener is "off". */
bool admin_enabled(const admin_t *a);
/* Add a route before admin_start: method "GET" (which also serves HEAD, without a body), "PUT",
 * "POST" or "DELETE"; path starts with '/'; fn runs with arg on the listener's thread. Returns 0,
 * or -1 if the table (ADMIN_MAX_ROUTES) is full, the arguments are bad, the same method and path
 * are already routed, or the listener was started. */
int admin_route(admin_t *a, const char *method, const char *path, unsigned flags,
                admin_handler_fn fn, void *arg);
/* Bind and start the thread; errors such as "--admin 127.0.0.1:6970: address in use" in err,
 * -1. Must be called after the caller blocked signals (its thread inherits the mask). No-op
 * returning 0 when off. */
int admin_start(admin_t *a, char *err, size_t errlen);
/* "127.0.0.1:6970", "[::1]:6970" or "off" (the bound port once started, if PORT was 0). */
void admin_describe(const admin_t *a, char *out, size_t outlen);
/* The bound port, 0 if off or not started. */
uint16_t admin_port(const admin_t *a);
/* Re-read token_file (SIGHUP); keeps the old token on error (-1 and why in err). Safe while the
 * listener runs. 0 and nothing done when no token file was configured. */
int admin_reload_token(admin_t *a, char *err, size_t errlen);
/* Stop the thread (waits for a running handler), close the socket, free, set *a_p = NULL.
 * NULL-safe. */
void admin_destroy(admin_t **a_p);

/* For handlers. Method: the request's ("HEAD" for a HEAD served by a GET route). Path: as
 * libmicrohttpd decoded it (each %XX of the request path replaced by its byte; '+' stays '+'; a
 * %00 never reaches a handler), without the query string. */
const char *admin_req_method(const admin_req_t *r);
const char *admin_req_path(const admin_req_t *r);
/* For an ADMIN_PREFIX route, what follows "p/" in the path ("" if none, also for exact routes). */
const char *admin_req_rest(const admin_req_t *r);
/* A query argument (decoded by libmicrohttpd, '+' as a space), NULL if absent, "" when given
 * without '='. The first one when repeated. */
const char *admin_req_query(const admin_req_t *r, const char *key);
/* The request body, never NULL ("" when none); NUL-terminated after *len bytes (len may be
 * NULL). */
const char *admin_req_body(const admin_req_t *r, size_t *len);

/* Fill a reply with a copy of text (a previous body is freed). On out of memory the status stays
 * and the body is empty. content_type NULL: application/json. */
void admin_reply_text(admin_reply_t *out, int status, const char *content_type, const char *text);
/* Fill a reply with a malloc'ed body of len bytes, taking ownership (a previous body is freed). */
void admin_reply_take(admin_reply_t *out, int status, const char *content_type, char *body,
                      size_t len);
/* {"error":"..."} via jansson (invalid UTF-8 in the message is replaced by '?'), with
 * application/json. */
void admin_reply_error(admin_reply_t *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
