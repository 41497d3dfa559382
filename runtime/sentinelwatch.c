/* SPDX-License-Identifier: MIT */
/* sentinelwatch: +switch-master to rconn_note_switch() (sentinelwatch.h).
 *
 * The subscription is read with hiredis's reader fed by hand (poll, redisBufferRead,
 * redisGetReply from the buffer): a blocking read with a timeout would leave the context in
 * error after every quiet interval. */
#include "sentinelwatch.h"

#include "backoff.h"
#include "err.h"
#include "mono.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define TIMEOUT_MS 500  /* connect and command timeout toward a sentinel */
#define RETRY_MS   1000 /* wait before trying the next sentinel */
#define PING_MS    5000 /* silence after which the sentinel is pinged */

struct sentinelwatch {
    rconn_url_t url;
    slog_fn log;
    void *log_arg;
    int stop_fd; /* eventfd: written by sentinelwatch_destroy() */
    pthread_t thread;
    _Atomic uint64_t switches;
};

#define say(self, level, ...) slog_to((self)->log, (self)->log_arg, (level), __VA_ARGS__)

/* Sleeps up to ms, false if asked to stop meanwhile. */
static bool rest(sentinelwatch_t *self, int ms)
{
    struct pollfd p = {.fd = self->stop_fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

/* Connect to sentinel s and subscribe. NULL and why in err. */
static redisContext *subscribe(sentinelwatch_t *self, const rconn_addr_t *s, char *err,
                               size_t errlen)
{
    bool refused;
    redisContext *c = rconn_sentinel_connect(&self->url, s, TIMEOUT_MS, &refused, err, errlen);
    if (!c)
        return NULL;
    redisReply *r = redisCommand(c, "SUBSCRIBE +switch-master");
    if (rconn_failed(c, r, "SUBSCRIBE", err, errlen)) {
        if (r)
            freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

/* A published message: "MASTER OLDIP OLDPORT NEWIP NEWPORT" on +switch-master. */
static void on_message(sentinelwatch_t *self, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *m = r->element[2]->str;
    size_t n = strlen(self->url.master);
    if (strncmp(m, self->url.master, n) != 0 || m[n] != ' ')
        return;
    char oldh[256] = "", newh[256] = "";
    int oldp = 0, newp = 0;
    if (sscanf(m + n + 1, "%255s %d %255s %d", oldh, &oldp, newh, &newp) != 4)
        return;
    rconn_note_switch();
    atomic_fetch_add_explicit(&self->switches, 1, memory_order_relaxed);
    say(self, SLOG_WARN,
        "redis: the sentinels moved master %s from %s:%d to %s:%d; reconnecting every Redis "
        "connection",
        self->url.master, oldh, oldp, newh, newp);
}

/* Read messages from c until it fails or we are asked to stop. false: stop. A sentinel that
 * answers nothing (not even a PING, sent every PING_MS of silence) for 2 * PING_MS is left. */
static bool follow(sentinelwatch_t *self, redisContext *c)
{
    int64_t heard = mono_ms();
    for (;;) {
        struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                              {.fd = self->stop_fd, .events = POLLIN}};
        int rc = poll(p, 2, PING_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 || (p[1].revents & POLLIN))
            return false;
        if (rc == 0) {
            if (mono_ms() - heard > 2 * PING_MS)
                return true;
            int done = 0;
            if (redisAppendCommand(c, "PING") != REDIS_OK || redisBufferWrite(c, &done) != REDIS_OK)
                return true;
            continue;
        }
        heard = mono_ms();
        if (redisBufferRead(c) != REDIS_OK)
            return true;
        for (;;) {
            void *reply = NULL;
            if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
                return true;
            if (!reply)
                break;
            on_message(self, reply);
            freeReplyObject(reply);
        }
    }
}

static void *watch_main(void *arg)
{
    sentinelwatch_t *self = arg;
    backoff_t failing = {.first_ms = 1000, .max_ms = 60000};
    size_t i = 0;
    for (;;) {
        const rconn_addr_t *s = &self->url.sentinels[i];
        char why[300];
        redisContext *c = subscribe(self, s, why, sizeof(why));
        if (c) {
            uint64_t failed = failing.count;
            if (backoff_ok(&failing))
                say(self, SLOG_INFO,
                    "redis: following master %s's switches on sentinel %s:%d again after %llu "
                    "failed tries",
                    self->url.master, s->host, s->port, (unsigned long long)failed);
            bool go_on = follow(self, c);
            redisFree(c);
            if (!go_on)
                return NULL;
        } else if (backoff_due(&failing, mono_ms())) {
            say(self, SLOG_WARN, "redis: cannot follow master %s's switches on sentinel %s:%d: %s",
                self->url.master, s->host, s->port, why);
        }
        i = (i + 1) % self->url.n_sentinels;
        if (!rest(self, RETRY_MS))
            return NULL;
    }
}

sentinelwatch_t *sentinelwatch_new(const rconn_url_t *url, slog_fn log, void *log_arg, char *err,
                                   size_t errlen)
{
    if (url->n_sentinels == 0) {
        err_set(err, errlen, "sentinelwatch: not a redis-sentinel:// url");
        return NULL;
    }
    sentinelwatch_t *self = calloc(1, sizeof(*self));
    if (!self) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    self->url = *url;
    explicit_bzero(self->url.password, sizeof(self->url.password)); /* only sentinels here */
    self->log = log;
    self->log_arg = log_arg;
    self->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (self->stop_fd < 0 || pthread_create(&self->thread, NULL, watch_main, self) != 0) {
        err_set(err, errlen, "sentinelwatch: %s", strerror(errno));
        if (self->stop_fd >= 0)
            close(self->stop_fd);
        free(self);
        return NULL;
    }
    return self;
}

uint64_t sentinelwatch_switches(const sentinelwatch_t *self)
{
    return atomic_load_explicit(&self->switches, memory_order_relaxed);
}

void sentinelwatch_destroy(sentinelwatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sentinelwatch_t *self = *self_p;
    uint64_t one = 1;
    ssize_t w = write(self->stop_fd, &one, sizeof(one));
    (void)w;
    pthread_join(self->thread, NULL);
    close(self->stop_fd);
    free(self);
    *self_p = NULL;
}
