/* SPDX-License-Identifier: MIT */
/* test_rconn: redis:// URLs (runtime/rconn.h) and keeping their passwords out of every text
 * rconn hands back: the redacted form of good and bad URLs, parse errors, connection errors (a
 * port nobody listens on, and an AUTH a real redis-server refuses, when one is installed). */
#include "rconn.h"
#include "redis_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>

#include <cmocka.h>

#define SECRET "s3cretpass"

static redis_fixture_t redis = {.connect_ms = 300, .command_ms = 1000, .start_ms = 5000, .pid = -1};

/* The redacted form of url, by both ways: rconn_redact() and rconn_parse()'s field. */
static void redacts_to(const char *url, const char *want)
{
    char out[RCONN_URL_MAX + 4];
    assert_string_equal(rconn_redact(url, out, sizeof(out)), want);
    rconn_url_t u;
    char err[256] = "";
    if (rconn_parse(url, &u, err, sizeof(err)) != 0)
        fail_msg("'%s' does not parse: %s", url, err);
    assert_string_equal(u.redacted, want);
}

static void user_and_password(void **state)
{
    (void)state;
    const char *url = "redis://someuser:" SECRET "@127.0.0.1:6380/2";
    redacts_to(url, "redis://someuser:***@127.0.0.1:6380/2");
    rconn_url_t u;
    assert_int_equal(rconn_parse(url, &u, NULL, 0), 0);
    assert_string_equal(u.user, "someuser");
    assert_string_equal(u.password, SECRET);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
}

static void password_only(void **state)
{
    (void)state;
    redacts_to("redis://:" SECRET "@h", "redis://:***@h");
    rconn_url_t u;
    assert_int_equal(rconn_parse("redis://:" SECRET "@h", &u, NULL, 0), 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, SECRET);
    assert_int_equal(u.port, 6379);
    /* An empty password is still shown as one. */
    redacts_to("redis://u:@h", "redis://u:***@h");
}

static void no_credentials_unchanged(void **state)
{
    (void)state;
    redacts_to("redis://h", "redis://h");
    redacts_to("redis://127.0.0.1:6379/3", "redis://127.0.0.1:6379/3");
    redacts_to("redis://h/", "redis://h/");
}

static void ipv6_host(void **state)
{
    (void)state;
    redacts_to("redis://[::1]:6379", "redis://[::1]:6379");
    redacts_to("redis://u:" SECRET "@[fe80::1:2]:7000/1", "redis://u:***@[fe80::1:2]:7000/1");
    rconn_url_t u;
    assert_int_equal(rconn_parse("redis://u:" SECRET "@[fe80::1:2]:7000/1", &u, NULL, 0), 0);
    assert_string_equal(u.host, "fe80::1:2");
    assert_int_equal(u.port, 7000);
}

static void odd_characters(void **state)
{
    (void)state;
    /* '@', ':', '/', '%' in the password: the credentials end at the last '@'. */
    const char *url = "redis://u:p@ss:w%rd/x@h:1";
    redacts_to(url, "redis://u:***@h:1");
    rconn_url_t u;
    assert_int_equal(rconn_parse(url, &u, NULL, 0), 0);
    assert_string_equal(u.password, "p@ss:w%rd/x");
    assert_string_equal(u.host, "h");
    /* Conversions in the user name are text; control characters cannot split a log line. */
    redacts_to("redis://%s%n:" SECRET "@h", "redis://%s%n:***@h");
    redacts_to("redis://a\nb:" SECRET "\r@h\t", "redis://a?b:***@h?");
    char out[64];
    assert_string_equal(rconn_redact("redis://\x7f:" SECRET "@h", out, sizeof(out)),
                        "redis://?:***@h");
}

/* Whatever the buffer size, the output is a prefix of the whole redacted text. */
static void truncation_keeps_a_prefix(void **state)
{
    (void)state;
    const char *url = "redis://someuser:" SECRET "@127.0.0.1:6380";
    char full[128], out[128];
    rconn_redact(url, full, sizeof(full));
    for (size_t n = 1; n <= strlen(full) + 1; n++) {
        memset(out, 'x', sizeof(out));
        rconn_redact(url, out, n);
        assert_int_equal(strlen(out), n - 1);
        assert_memory_equal(out, full, n - 1);
    }
    assert_string_equal(rconn_redact(NULL, out, sizeof(out)), "");
    assert_ptr_equal(rconn_redact(url, out, 0), out); /* writes nothing */
}

/* URLs that do not parse: neither the error nor the redacted text holds the password. */
static void bad_urls_keep_the_password_out_of_errors(void **state)
{
    (void)state;
    char longpw[200], longurl[400];
    memset(longpw, 'z', sizeof(longpw));
    longpw[sizeof(longpw) - 1] = '\0';
    snprintf(longurl, sizeof(longurl), "redis://u:%s%s@h", SECRET, longpw);
    char longer[RCONN_URL_MAX + 64];
    snprintf(longer, sizeof(longer), "redis://u:" SECRET "@h/%0*d", RCONN_URL_MAX, 0);
    const char *bad[] = {
        "rediss://u:" SECRET "@h:6379", /* another scheme */
        "http://u:" SECRET "@h",        /* another scheme */
        "u:" SECRET "@h:6379",          /* no scheme */
        "redis://" SECRET "@h",         /* credentials without ':' */
        "redis://u:" SECRET "@h:99999", /* bad port */
        "redis://u:" SECRET "@h:1x",    /* bad port */
        "redis://u:" SECRET "@[::1",    /* unterminated IPv6 */
        "redis://u:" SECRET "@h/x",     /* bad database */
        "redis://u:" SECRET "@",        /* no host */
        longurl,                        /* password too long */
        longer,                         /* URL too long */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rconn_url_t u;
        char err[512] = "";
        assert_int_equal(rconn_parse(bad[i], &u, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        if (strstr(err, SECRET))
            fail_msg("the error for '%s' shows the password: %s", bad[i], err);
        char out[RCONN_URL_MAX + 4];
        if (strstr(rconn_redact(bad[i], out, sizeof(out)), SECRET))
            fail_msg("redacting '%s' kept the password: %s", bad[i], out);
    }
    /* A scheme other than redis:// is named in the error, redacted; so is a bad tail. */
    rconn_url_t u;
    char err[256];
    assert_int_equal(rconn_parse("rediss://u:" SECRET "@h", &u, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'rediss://u:***@h'"));
    assert_int_equal(rconn_parse("redis://u:" SECRET "@[::1]?x\n", &u, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unexpected '?x?'"));
}

/* A loopback port that refuses connections: bound, not listening. Returns the socket (close it
 * after use) and the port in *port. */
static int refusing_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void connect_error_has_no_password(void **state)
{
    (void)state;
    int port = 0;
    int fd = refusing_port(&port);
    assert_true(fd >= 0);
    char url[128];
    snprintf(url, sizeof(url), "redis://someuser:" SECRET "@127.0.0.1:%d", port);
    rconn_url_t u;
    assert_int_equal(rconn_parse(url, &u, NULL, 0), 0);
    char err[512] = "";
    assert_null(rconn_open(&u, 300, err, sizeof(err)));
    close(fd);
    assert_non_null(strstr(err, "connect 127.0.0.1:"));
    assert_null(strstr(err, SECRET));
    /* The start-up check names the URL, redacted. */
    assert_int_equal(rconn_check(url, NULL, 300, err, sizeof(err)), RCONN_DOWN);
    assert_non_null(strstr(err, "redis redis://someuser:***@127.0.0.1:"));
    assert_null(strstr(err, SECRET));
}

/* A real server that has no such user refuses the AUTH; the reason names no password. */
static void refused_auth_has_no_password(void **state)
{
    (void)state;
    if (!redis_fixture_find(&redis))
        skip();
    if (redis.pid < 0)
        assert_int_equal(redis_fixture_setup(&redis), 0);
    char url[128];
    const char *forms[] = {"redis://someuser:" SECRET "@127.0.0.1:%d",
                           "redis://:" SECRET "@127.0.0.1:%d"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), forms[i], redis.port);
        rconn_url_t u;
        assert_int_equal(rconn_parse(url, &u, NULL, 0), 0);
        char err[512] = "";
        redisContext *c = rconn_open(&u, 1000, err, sizeof(err));
        if (c)
            redisFree(c);
        assert_null(c);
        assert_non_null(strstr(err, "AUTH"));
        assert_null(strstr(err, SECRET));
    }
}

/* A password file for the tests below: path in out[64]. */
static void write_password_file(char *out, const char *content)
{
    static int seq;
    snprintf(out, 64, "/tmp/test_rconn_pw_%ld_%d", (long)getpid(), seq++);
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* --redis-password-file: the URL names the user (or nobody), the file holds the password; a URL
 * with a password as well is refused, and rconn_check() tells refused from down. */
static void password_file(void **state)
{
    (void)state;
    char path[64], err[512] = "";
    write_password_file(path, SECRET "\n");
    rconn_url_t u;
    assert_int_equal(rconn_parse_auth("redis://someuser@127.0.0.1:7", path, &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.user, "someuser");
    assert_string_equal(u.password, "");
    assert_string_equal(u.password_file, path);
    assert_int_equal(rconn_parse_auth("redis://:@127.0.0.1:7", path, &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "");
    /* "USER@" without a file stays an error: it could be a password written without ':'. */
    assert_int_equal(rconn_parse_auth("redis://someuser@h", NULL, &u, err, sizeof(err)), -1);
    assert_int_equal(rconn_parse_auth("redis://someuser@h", "", &u, err, sizeof(err)), -1);
    assert_int_equal(rconn_parse_auth("redis://someuser:" SECRET "@h", path, &u, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "give the password once"));
    assert_null(strstr(err, SECRET));

    int port = 0;
    int fd = refusing_port(&port);
    assert_true(fd >= 0);
    char url[128];
    snprintf(url, sizeof(url), "redis://someuser@127.0.0.1:%d", port);
    assert_int_equal(rconn_check(url, path, 300, err, sizeof(err)), RCONN_DOWN);
    assert_null(strstr(err, SECRET));
    close(fd);
    assert_int_equal(rconn_check("redis://a:b@h", path, 300, err, sizeof(err)), RCONN_REFUSED);
    unlink(path);
    /* A file gone by the time of a connection: refused, naming the path. */
    assert_int_equal(rconn_check(url, path, 300, err, sizeof(err)), RCONN_REFUSED);
    assert_non_null(strstr(err, path));
}

/* A real server with a password: the file's password is used (read again at each connection),
 * a wrong one is refused with Redis's WRONGPASS and no password in the text. */
static void password_file_against_redis(void **state)
{
    (void)state;
    if (!redis_fixture_find(&redis))
        skip();
    if (redis.pid < 0)
        assert_int_equal(redis_fixture_setup(&redis), 0);
    redisReply *r = redis_fixture_command(&redis, "ACL SETUSER fileuser on >%s ~* +ping", SECRET);
    assert_non_null(r);
    freeReplyObject(r);
    char path[64], url[128], err[512] = "";
    snprintf(url, sizeof(url), "redis://fileuser@127.0.0.1:%d", redis.port);
    write_password_file(path, "wrong-" SECRET "\n");
    assert_int_equal(rconn_check(url, path, 1000, err, sizeof(err)), RCONN_REFUSED);
    assert_non_null(strstr(err, "WRONGPASS"));
    assert_non_null(strstr(err, "fileuser"));
    assert_null(strstr(err, SECRET));
    write_password_file(path, SECRET "\n");
    assert_int_equal(rconn_check(url, path, 1000, err, sizeof(err)), 0);
    /* A passing error is not a refusal: a Redis at its client limit answers the AUTH with "ERR
     * max number of clients reached" (the one client allowed is ours here). */
    redisContext *admin = redis_fixture_connect(&redis);
    assert_non_null(admin);
    r = redisCommand(admin, "CONFIG SET maxclients 1");
    assert_non_null(r);
    freeReplyObject(r);
    int rc = rconn_check(url, path, 1000, err, sizeof(err));
    r = redisCommand(admin, "CONFIG SET maxclients 10000");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(admin);
    assert_int_equal(rc, RCONN_DOWN);
    assert_non_null(strstr(err, "max number of clients"));
    unlink(path);
    r = redis_fixture_command(&redis, "ACL DELUSER fileuser");
    if (r)
        freeReplyObject(r);
}

static int group_teardown(void **state)
{
    (void)state;
    redis_fixture_stop(&redis);
    return 0;
}

/* ---- redis-sentinel:// ------------------------------------------------------------------- */

static void sentinel_urls(void **state)
{
    (void)state;
    const char *url = "redis-sentinel://u:" SECRET "@10.0.0.1:26380,[::1],s3/mymaster/3";
    redacts_to(url, "redis-sentinel://u:***@10.0.0.1:26380,[::1],s3/mymaster/3");
    rconn_url_t u;
    char err[256] = "";
    assert_int_equal(rconn_parse(url, &u, err, sizeof(err)), 0);
    assert_int_equal(u.n_sentinels, 3);
    assert_string_equal(u.sentinels[0].host, "10.0.0.1");
    assert_int_equal(u.sentinels[0].port, 26380);
    assert_string_equal(u.sentinels[1].host, "::1");
    assert_int_equal(u.sentinels[1].port, RCONN_SENTINEL_PORT);
    assert_string_equal(u.sentinels[2].host, "s3");
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.user, "u");
    assert_string_equal(u.password, SECRET);
    assert_int_equal(rconn_parse("redis-sentinel://h/m", &u, NULL, 0), 0);
    assert_int_equal(u.n_sentinels, 1);
    assert_int_equal(u.db, 0);
    /* A plain URL has no sentinels. */
    assert_int_equal(rconn_parse("redis://h:1/2", &u, NULL, 0), 0);
    assert_int_equal(u.n_sentinels, 0);
    static const char *const bad[] = {
        "redis-sentinel://h1,h2",               /* no master */
        "redis-sentinel://h1/",                 /* empty master */
        "redis-sentinel://h1/a b",              /* a space in it */
        "redis-sentinel://h1/m/x",              /* a bad DB */
        "redis-sentinel://h1,,h2/m",            /* an empty sentinel */
        "redis-sentinel://h1:0/m",              /* a bad port */
        "redis-sentinel://h1:26379x/m",         /* junk after the port */
        "redis-sentinel://a,b,c,d,e,f,g,h,i/m", /* 9 sentinels */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (rconn_parse(bad[i], &u, err, sizeof(err)) == 0)
            fail_msg("'%s' parsed", bad[i]);
        assert_true(err[0] != '\0');
    }
    /* The sentinels' password file is the process's, taken at parse time. */
    rconn_set_sentinel_password_file("/run/secrets/sentinel");
    assert_int_equal(rconn_parse("redis-sentinel://h/m", &u, NULL, 0), 0);
    assert_string_equal(u.sentinel_password_file, "/run/secrets/sentinel");
    assert_int_equal(rconn_parse("redis://h", &u, NULL, 0), 0);
    assert_string_equal(u.sentinel_password_file, "");
    rconn_set_sentinel_password_file(NULL);
    assert_int_equal(rconn_parse("redis-sentinel://h/m", &u, NULL, 0), 0);
    assert_string_equal(u.sentinel_password_file, "");
}

static void moved_replies(void **state)
{
    (void)state;
    assert_true(
        rconn_moved("write snapshot: READONLY You can't write against a read only replica."));
    assert_true(rconn_moved("NOREPLICAS Not enough good replicas to write."));
    assert_true(rconn_moved("MASTERDOWN Link with MASTER is down"));
    assert_false(rconn_moved("ERR unknown command"));
    assert_false(rconn_moved(NULL));
    uint64_t g = rconn_generation();
    assert_false(rconn_outdated(g));
    rconn_note_switch();
    assert_true(rconn_outdated(g));
}

/* Poll (every 20 ms, at most 5 s) until 127.0.0.1:port takes a connection. */
static void wait_listening(int port)
{
    int64_t deadline = redis_fixture_now_ms() + 5000;
    for (;;) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        bool up = c && !c->err;
        if (c)
            redisFree(c);
        if (up)
            return;
        assert_true(redis_fixture_now_ms() < deadline);
        redis_fixture_sleep_ms(20);
    }
}

/* A sentinel (redis-server --sentinel) on a free port watching MASTER at the fixture's port, with
 * requirepass `pass` when not NULL; killed by its pid. */
typedef struct {
    pid_t pid;
    int port;
    char dir[64];
} sentinel_t;

static void sentinel_start(sentinel_t *s, const char *const *monitors, size_t n, const char *pass)
{
    snprintf(s->dir, sizeof(s->dir), "/tmp/shoal-rconn-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    s->port = redis_fixture_free_port();
    assert_true(s->port > 0);
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/sentinel.conf", s->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\n", s->port, s->dir);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", monitors[i]);
    if (pass)
        fprintf(f, "requirepass %s\n", pass);
    fclose(f);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(redis.bin, redis.bin, conf, "--sentinel", (char *)NULL);
        _exit(127);
    }
    wait_listening(s->port); /* up when it takes a connection (its answer may be NOAUTH) */
}

static void sentinel_stop(sentinel_t *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
    assert_int_equal(system(cmd), 0);
}

static void through_a_sentinel(void **state)
{
    (void)state;
    if (!redis_fixture_find(&redis))
        skip();
    if (redis.pid < 0)
        assert_int_equal(redis_fixture_setup(&redis), 0);
    /* "rep" names a replica of the fixture: the sentinel reports it as that master's address
     * until it finds out otherwise, and ROLE must refuse it. */
    int rport = redis_fixture_free_port();
    char rport_s[16], mport_s[16];
    snprintf(rport_s, sizeof(rport_s), "%d", rport);
    snprintf(mport_s, sizeof(mport_s), "%d", redis.port);
    pid_t replica = fork();
    assert_true(replica >= 0);
    if (replica == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(redis.bin, redis.bin, "--port", rport_s, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--replicaof", "127.0.0.1", mport_s, (char *)NULL);
        _exit(127);
    }
    char m1[128], m2[128];
    snprintf(m1, sizeof(m1), "sentinel monitor main 127.0.0.1 %d 1", redis.port);
    snprintf(m2, sizeof(m2), "sentinel monitor rep 127.0.0.1 %d 1", rport);
    const char *mons[] = {m1, m2};
    sentinel_t s;
    sentinel_start(&s, mons, 2, "sentinelpw");

    char pwfile[64], badfile[64];
    write_password_file(pwfile, "sentinelpw\n");
    write_password_file(badfile, "wrong\n");
    char url[128], err[1024];
    rconn_url_t u;
    rconn_info_t info;
    bool refused = true;
    /* A dead first sentinel is skipped; the right password finds the fixture as master. */
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/main",
             redis_fixture_free_port(), s.port);
    rconn_set_sentinel_password_file(pwfile);
    assert_int_equal(rconn_parse(url, &u, err, sizeof(err)), 0);
    redisContext *c = rconn_open_info(&u, 500, &info, &refused, err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_false(refused);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", redis.port);
    assert_string_equal(info.addr, want);
    assert_true(strlen(info.id) > 40); /* RUN_ID/REPLID */
    redisFree(c);
    assert_int_equal(rconn_check(url, NULL, 500, err, sizeof(err)), 0);

    /* A master the sentinel does not know, or its password refused: configuration errors. */
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/nosuch", s.port);
    assert_int_equal(rconn_check(url, NULL, 500, err, sizeof(err)), RCONN_REFUSED);
    assert_non_null(strstr(err, "does not know a master named nosuch"));
    rconn_set_sentinel_password_file(badfile);
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/main", s.port);
    assert_int_equal(rconn_check(url, NULL, 500, err, sizeof(err)), RCONN_REFUSED);
    assert_null(strstr(err, "wrong"));
    rconn_set_sentinel_password_file(pwfile);

    /* A replica named as master: ROLE refuses it, and that is worth a retry, not a refusal. */
    wait_listening(rport); /* the replica must be up first */
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/rep", s.port);
    assert_int_equal(rconn_check(url, NULL, 500, err, sizeof(err)), RCONN_DOWN);
    assert_non_null(strstr(err, "is not a master"));

    /* No sentinel answers: down, each named in the reason. */
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/main",
             redis_fixture_free_port(), redis_fixture_free_port());
    assert_int_equal(rconn_check(url, NULL, 300, err, sizeof(err)), RCONN_DOWN);
    assert_non_null(strstr(err, "no master main"));

    rconn_set_sentinel_password_file(NULL);
    unlink(pwfile);
    unlink(badfile);
    sentinel_stop(&s);
    kill(replica, SIGKILL);
    waitpid(replica, NULL, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(user_and_password),
        cmocka_unit_test(password_only),
        cmocka_unit_test(no_credentials_unchanged),
        cmocka_unit_test(ipv6_host),
        cmocka_unit_test(odd_characters),
        cmocka_unit_test(truncation_keeps_a_prefix),
        cmocka_unit_test(bad_urls_keep_the_password_out_of_errors),
        cmocka_unit_test(connect_error_has_no_password),
        cmocka_unit_test(password_file),
        cmocka_unit_test(password_file_against_redis),
        cmocka_unit_test(refused_auth_has_no_password),
        cmocka_unit_test(sentinel_urls),
        cmocka_unit_test(moved_replies),
        cmocka_unit_test(through_a_sentinel),
    };
    return cmocka_run_group_tests_name("rconn", tests, NULL, group_teardown);
}
