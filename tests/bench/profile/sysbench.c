/* SPDX-License-Identifier: MIT */
/* sysbench: what one kernel entry costs on this machine, for reading the syscall counts of
 * docs/profile-cluster.md in time. Times N getpid() calls (the syscall libzmq makes for its fork
 * check), N poll() calls on an eventfd with a zero timeout, and N eventfd write+read pairs (one
 * ZeroMQ mailbox signal and its receipt), and prints ns per call or pair.
 *
 *   cc -O2 -o sysbench tests/bench/profile/sysbench.c && taskset -c 0 ./sysbench [N]
 *
 * N defaults to 300000 (well under a second each here); at most 100000000. */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 300000;
    if (n < 1 || n > 100000000) {
        fprintf(stderr, "usage: sysbench [N], 1 <= N <= 100000000\n");
        return 2;
    }
    int fd = eventfd(0, EFD_NONBLOCK);
    if (fd < 0) {
        perror("eventfd");
        return 1;
    }
    double t0 = now();
    for (long i = 0; i < n; i++)
        syscall(SYS_getpid); /* the raw syscall: glibc may cache getpid() */
    double t1 = now();
    struct pollfd p = {fd, POLLIN, 0};
    for (long i = 0; i < n; i++)
        poll(&p, 1, 0);
    double t2 = now();
    uint64_t v = 1;
    for (long i = 0; i < n; i++) {
        if (write(fd, &v, sizeof v) != sizeof v || read(fd, &v, sizeof v) != sizeof v) {
            perror("eventfd write/read");
            return 1;
        }
        v = 1;
    }
    double t3 = now();
    close(fd);
    printf("getpid %.0f ns, poll(eventfd, 0) %.0f ns, eventfd write+read %.0f ns per pair "
           "(%ld iterations)\n",
           (t1 - t0) / (double)n * 1e9, (t2 - t1) / (double)n * 1e9, (t3 - t2) / (double)n * 1e9,
           n);
    return 0;
}
