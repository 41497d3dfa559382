/* SPDX-License-Identifier: MIT */
/* pidcache: getpid() answered from memory in the cluster daemons (shoal-gateway, shoal-node).
 *
 * Why. libzmq checks getpid() against the pid it saw at start on every signal between its
 * threads (its fork detection: a forked child must not touch the parent's sockets), several
 * times per batch and side. glibc stopped caching the pid (2.25), so each check is a syscall,
 * and on a VM with page-table isolation and no PCID a syscall costs over a microsecond: 11-17
 * getpid calls per batch round trip were 5-10 % of the cluster's CPU per request
 * (docs/profile-cluster.md). Defining getpid() in the executable interposes it for every shared
 * library (the link exports this one symbol, see cmd/CMakeLists.txt); glibc's own internal
 * callers keep the real syscall.
 *
 * Fork detection still works: the cache is read once before main() and refreshed in the child
 * of every fork() (pthread_atfork), which is how a process gets a new pid short of a raw clone()
 * that nothing here makes. Nothing else in these daemons forks. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic pid_t cached;

static void refresh(void)
{
    atomic_store_explicit(&cached, (pid_t)syscall(SYS_getpid), memory_order_relaxed);
}

__attribute__((constructor)) static void pidcache_init(void)
{
    refresh();
    pthread_atfork(NULL, NULL, refresh);
}

pid_t getpid(void)
{
    pid_t p = atomic_load_explicit(&cached, memory_order_relaxed);
    return p ? p : (pid_t)syscall(SYS_getpid);
}
