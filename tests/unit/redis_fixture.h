/* SPDX-License-Identifier: MIT */
/* redis_fixture: a private redis-server for the unit tests that need a real one (test_keeper,
 * test_membership). The server is found on PATH (then /usr/bin, /usr/sbin, /usr/local/bin),
 * started on a loopback port nobody listened on a moment before, without persistence (so a
 * restart comes back empty), polled with PING until it answers or a bound runs out, and killed
 * by its PID with SIGKILL (an abrupt loss, as a crash would be). Also the monotonic clock the
 * tests bound their own polls with.
 *
 * Invariant: pid is the running server this fixture started, or -1; port and url name the same
 * port from redis_fixture_setup() on, across restarts. */
#ifndef SHOAL_REDIS_FIXTURE_H
#define SHOAL_REDIS_FIXTURE_H

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    /* Set by the test before redis_fixture_setup(). */
    int connect_ms; /* connect timeout of every connection the fixture opens */
    int command_ms; /* command timeout on them; 0 for none */
    int start_ms;   /* how long redis_fixture_start() waits for PING to answer */
    /* Filled by the fixture. */
    char bin[256]; /* the redis-server redis_fixture_find() found */
    int port;
    char url[64]; /* "redis://127.0.0.1:<port>" */
    pid_t pid;    /* the running server, or -1 */
} redis_fixture_t;

/* Milliseconds on the monotonic clock. */
int64_t redis_fixture_now_ms(void);

/* Sleep ms milliseconds, resuming after signals. */
void redis_fixture_sleep_ms(int ms);

/* Look for an executable redis-server and keep its path in rf->bin. False if it is not
 * installed: the caller's test is then skipped (exit 77). */
bool redis_fixture_find(redis_fixture_t *rf);

/* A loopback TCP port nobody listens on (just now), or -1. */
int redis_fixture_free_port(void);

/* Once, before the other calls below: pick a free port, fill rf->port and rf->url, and start
 * the server there. 0 once it answers PING, -1 otherwise (rf->pid is then whatever
 * redis_fixture_start() left). */
int redis_fixture_setup(redis_fixture_t *rf);

/* Start redis-server on rf->port, bound to 127.0.0.1, with no snapshots, no AOF and protected
 * mode off; poll PING every 20 ms for up to rf->start_ms. 0 once it answers; -1 if fork failed
 * or it did not answer in time (the process, if started, stays in rf->pid for
 * redis_fixture_stop()). */
int redis_fixture_start(redis_fixture_t *rf);

/* SIGKILL the server and reap it; rf->pid becomes -1. Does nothing if none is running. */
void redis_fixture_stop(redis_fixture_t *rf);

/* Start the server if a test stopped it, then FLUSHALL. 0 on success, -1 otherwise. */
int redis_fixture_flush(redis_fixture_t *rf);

/* A new connection to the server with rf's timeouts (the caller frees it with redisFree), or
 * NULL if it cannot connect. */
redisContext *redis_fixture_connect(const redis_fixture_t *rf);

/* One command on a fresh connection: its reply (the caller frees it with freeReplyObject), or
 * NULL if the connection or the command failed. */
redisReply *redis_fixture_command(const redis_fixture_t *rf, const char *fmt, ...);
redisReply *redis_fixture_vcommand(const redis_fixture_t *rf, const char *fmt, va_list ap);

#endif
