/* SPDX-License-Identifier: MIT */
/* zmqfloor: what one request/reply round trip between two processes costs on this machine,
 * through ZeroMQ (a DEALER and a ROUTER over loopback TCP, as a gateway and a node) and through
 * a plain TCP connection the two threads own (no I/O threads), one message in flight. This is
 * the floor under a cluster's cost per batch (docs/profile-cluster.md §9): whatever a batch
 * carries, a gateway and a node cannot pay less per round trip than the transport does here.
 *
 *   cc -O2 -o zmqfloor tests/bench/profile/zmqfloor.c -lzmq && taskset -c 0 ./zmqfloor [N [BYTES]]
 *
 * N round trips (default 20000, at most 10000000), BYTES per message each way (default 6000,
 * about a batch of 65 announces; 1..1000000). ZeroMQ is measured over tcp:// and over ipc://
 * (a Unix socket in /tmp). Prints, per transport, µs of wall time and of CPU
 * (both processes, user + system) per round trip. Pinned to one core (taskset) the two are about
 * equal and the figure is the CPU a shared core spends per round trip. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Reap the echo child and print what one round trip cost since (t0, c0 of this process, ch0 of
 * its children). The child's CPU includes its 100 warm-up round trips: prorated. Returns 0 if
 * the child ended well. */
static int report(const char *what, pid_t child, long n, double t0, double c0, double ch0)
{
    double wall = now() - t0, cpu = cpu_s(RUSAGE_SELF) - c0;
    int status = 0;
    waitpid(child, &status, 0);
    cpu += (cpu_s(RUSAGE_CHILDREN) - ch0) * (double)n / (double)(n + 100);
    printf("%s: %.1f us wall, %.1f us CPU per round trip\n", what, wall / (double)n * 1e6,
           cpu / (double)n * 1e6);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int die(const char *what)
{
    fprintf(stderr, "zmqfloor: %s: %s\n", what, zmq_strerror(zmq_errno()));
    return 1;
}

/* The echo side of the ZeroMQ run: a ROUTER answers n messages, then exits. */
static int zmq_echo(const char *endpoint, long n, size_t bytes)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_connect(s, endpoint) != 0)
        return die("connect");
    char *buf = malloc(bytes);
    uint8_t id[256];
    for (long i = 0; i < n; i++) {
        int idn = zmq_recv(s, id, sizeof(id), 0);
        if (idn < 0 || zmq_recv(s, buf, bytes, 0) < 0)
            return die("echo recv");
        if (zmq_send(s, id, (size_t)idn, ZMQ_SNDMORE) < 0 || zmq_send(s, buf, bytes, 0) < 0)
            return die("echo send");
    }
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

static int run_zmq(long n, size_t bytes, const char *bind_to)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    char endpoint[256];
    size_t len = sizeof(endpoint);
    if (zmq_bind(s, bind_to) != 0 || zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0)
        return die("bind");
    pid_t pid = fork();
    if (pid == 0)
        _exit(zmq_echo(endpoint, n + 100, bytes));
    char *buf = calloc(1, bytes);
    double t0 = 0, c0 = 0, ch0 = cpu_s(RUSAGE_CHILDREN);
    for (long i = 0; i < n + 100; i++) {
        if (i == 100) { /* after a warm-up, with the connection up */
            t0 = now();
            c0 = cpu_s(RUSAGE_SELF);
        }
        if (zmq_send(s, buf, bytes, 0) < 0 || zmq_recv(s, buf, bytes, 0) < 0)
            return die("send/recv");
    }
    char what[64];
    snprintf(what, sizeof(what), "zeromq (DEALER/ROUTER over %.3s, I/O threads)", bind_to);
    int rc = report(what, pid, n, t0, c0, ch0);
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}

static int full_io(int fd, char *buf, size_t bytes, int writing)
{
    for (size_t done = 0; done < bytes;) {
        ssize_t k =
            writing ? write(fd, buf + done, bytes - done) : read(fd, buf + done, bytes - done);
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static int run_tcp(long n, size_t bytes)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("zmqfloor: listen");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        char *b = malloc(bytes);
        if (connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
            _exit(1);
        for (long i = 0; i < n + 100; i++)
            if (full_io(c, b, bytes, 0) != 0 || full_io(c, b, bytes, 1) != 0)
                _exit(1);
        _exit(0);
    }
    int s = accept(ls, NULL, NULL), one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char *buf = calloc(1, bytes);
    double t0 = 0, c0 = 0, ch0 = cpu_s(RUSAGE_CHILDREN);
    for (long i = 0; i < n + 100; i++) {
        if (i == 100) {
            t0 = now();
            c0 = cpu_s(RUSAGE_SELF);
        }
        if (full_io(s, buf, bytes, 1) != 0 || full_io(s, buf, bytes, 0) != 0) {
            perror("zmqfloor: tcp");
            return 1;
        }
    }
    int rc = report("plain TCP (the two threads own the connection)", pid, n, t0, c0, ch0);
    free(buf);
    close(s);
    close(ls);
    return rc;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    long bytes = argc > 2 ? strtol(argv[2], NULL, 10) : 6000;
    if (n < 1 || n > 10000000 || bytes < 1 || bytes > 1000000) {
        fprintf(stderr, "usage: zmqfloor [N [BYTES]], 1 <= N <= 10000000, 1 <= BYTES <= 1000000\n");
        return 2;
    }
    printf("%ld round trips of %ld bytes each way\n", n, bytes);
    fflush(stdout);
    char ipc[64];
    snprintf(ipc, sizeof(ipc), "ipc:///tmp/zmqfloor-%ld.sock", (long)getpid());
    int rc = run_zmq(n, (size_t)bytes, "tcp://127.0.0.1:*") | run_zmq(n, (size_t)bytes, ipc) |
             run_tcp(n, (size_t)bytes);
    unlink(ipc + strlen("ipc://"));
    return rc;
}
