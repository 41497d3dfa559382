/* SPDX-License-Identifier: MIT */
/* sweeper: a pthread waiting on a condition variable (monotonic clock) between sweeps, so a stop
 * request wakes it at once. */
#include "sweeper.h"

#include "mono.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct sweeper {
    repo_t *repo;
    uint32_t period_s;
    sweeper_report_fn on_expired;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    pthread_t thread;
};

static void *sweeper_main(void *arg)
{
    sweeper_t *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += s->period_s;
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->wake, &s->lock, &deadline);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->lock);
        size_t removed = repo_expire(s->repo, mono_s());
        if (removed > 0 && s->on_expired)
            s->on_expired(s->arg, removed);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

sweeper_t *sweeper_start(repo_t *repo, uint32_t peer_timeout_s, sweeper_report_fn on_expired,
                         void *arg)
{
    sweeper_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->repo = repo;
    s->period_s = peer_timeout_s / 10;
    if (s->period_s < 1)
        s->period_s = 1;
    if (s->period_s > 60)
        s->period_s = 60;
    s->on_expired = on_expired;
    s->arg = arg;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

void sweeper_stop(sweeper_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sweeper_t *s = *self_p;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *self_p = NULL;
}
