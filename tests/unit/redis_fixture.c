/* SPDX-License-Identifier: MIT */
/* redis_fixture: a private redis-server for unit tests (contract in redis_fixture.h). Every
 * wait is bounded; nothing here asserts, so a fixture failure is the calling setup's -1. */
#include "redis_fixture.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t redis_fixture_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void redis_fixture_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool redis_fixture_find(redis_fixture_t *rf)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/sbin:/usr/local/bin", path ? path : "");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(rf->bin, sizeof(rf->bin), "%s/redis-server", dir);
        if (access(rf->bin, X_OK) == 0)
            return true;
    }
    return false;
}

int redis_fixture_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int redis_fixture_setup(redis_fixture_t *rf)
{
    rf->pid = -1;
    rf->port = redis_fixture_free_port();
    if (rf->port <= 0)
        return -1;
    snprintf(rf->url, sizeof(rf->url), "redis://127.0.0.1:%d", rf->port);
    return redis_fixture_start(rf);
}

redisContext *redis_fixture_connect(const redis_fixture_t *rf)
{
    struct timeval ct = {.tv_sec = rf->connect_ms / 1000, .tv_usec = rf->connect_ms % 1000 * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", rf->port, ct);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c && rf->command_ms > 0) {
        struct timeval t = {.tv_sec = rf->command_ms / 1000,
                            .tv_usec = rf->command_ms % 1000 * 1000};
        redisSetTimeout(c, t);
    }
    return c;
}

int redis_fixture_start(redis_fixture_t *rf)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", rf->port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(rf->bin, rf->bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
              "no", "--protected-mode", "no", (char *)NULL);
        _exit(127);
    }
    rf->pid = pid;
    for (int64_t end = redis_fixture_now_ms() + rf->start_ms; redis_fixture_now_ms() < end;
         redis_fixture_sleep_ms(20)) {
        redisContext *c = redis_fixture_connect(rf);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
    }
    return -1;
}

void redis_fixture_stop(redis_fixture_t *rf)
{
    if (rf->pid > 0) {
        kill(rf->pid, SIGKILL);
        waitpid(rf->pid, NULL, 0);
        rf->pid = -1;
    }
}

int redis_fixture_flush(redis_fixture_t *rf)
{
    if (rf->pid < 0 && redis_fixture_start(rf) != 0)
        return -1;
    redisReply *r = redis_fixture_command(rf, "FLUSHALL");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

redisReply *redis_fixture_vcommand(const redis_fixture_t *rf, const char *fmt, va_list ap)
{
    redisContext *c = redis_fixture_connect(rf);
    if (!c)
        return NULL;
    redisReply *r = redisvCommand(c, fmt, ap);
    redisFree(c);
    return r;
}

redisReply *redis_fixture_command(const redis_fixture_t *rf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redis_fixture_vcommand(rf, fmt, ap);
    va_end(ap);
    return r;
}
