#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Classify perf samples (perf record -g, cpu-clock) by thread and component.

  classify.py BUILD PERF_DATA [REQUESTS]

Prints, per thread class (worker, ZMQbg/IO, admin), the share of the process's samples in each
component and, given REQUESTS (e.g. ana.py's "without connects"), ns per request. Kernel samples
go to the syscall on their kernel call chain (or the libc wrapper above it), with sub-parts:
loopback receive softirq run in the sender's context, scheduler, eventfd, TCP. User samples go by
DSO and leaf symbol; shoal's own symbols go to their source file, found with nm in BUILD's object
files (a RelWithDebInfo build keeps static functions visible). agg.py imports this module.
"""
import collections
import glob
import os
import re
import subprocess
import sys

LAYERS = ("proto", "runtime", "node", "gateway", "cmd")


def funcmap(build):
    """{symbol: [source paths]} for every function defined in shoal's own object files."""
    fm = {}
    for layer in LAYERS:
        for obj in sorted(glob.glob(os.path.join(build, layer, "CMakeFiles", "*.dir", "**",
                                                 "*.c.o"), recursive=True)):
            rel = obj.split(".dir" + os.sep, 1)[1][:-2]  # "repo.c.o" -> "repo.c"
            src = layer + "/" + rel
            out = subprocess.run(["nm", "--defined-only", obj], capture_output=True,
                                 text=True).stdout
            for line in out.splitlines():
                p = line.split()
                if len(p) == 3 and p[1] in "tT":
                    fm.setdefault(p[2], [])
                    if src not in fm[p[2]]:
                        fm[p[2]].append(src)
    return fm


def src_of(fm, sym, dso):
    """The source file of a shoal symbol; a name in several files is resolved by the binary."""
    fs = fm.get(sym, [])
    if "shoal-node" in dso:
        fs = [f for f in fs if not f.startswith("gateway/")] or fs
        fs = sorted(fs, key=lambda f: not f.startswith("node/"))
    elif "shoal-gateway" in dso:
        fs = [f for f in fs if not f.startswith("node/")] or fs
        fs = sorted(fs, key=lambda f: not f.startswith("gateway/"))
    return fs[0] if fs else None


MALLOC = re.compile(r"^(malloc|free|cfree|_int_malloc|_int_free|__libc_malloc|__libc_free|"
                    r"malloc_consolidate|tcache_|_int_realloc|realloc|calloc|__libc_calloc|"
                    r"unlink_chunk|_int_free_merge_chunk|_int_free_create_chunk|"
                    r"_int_free_maybe_consolidate|arena_get2|sysmalloc|__default_morecore|"
                    r"operator new|operator delete|_Znwm|_ZdlPv)")
MEMCPY = re.compile(r"(memcpy|memmove|__memmove|__memcpy|mempcpy)")
MEMSET = re.compile(r"memset")
LOCK = re.compile(r"(pthread_mutex|__lll_lock|__lll_unlock|pthread_cond|futex|pthread_spin|sem_)")
SYSC = re.compile(r"(?:__x64_sys_|__do_sys_|__se_sys_)(\w+)")


def thread_class(comm):
    if comm.startswith("ZMQbg/IO"):
        return "zmq-io"
    if comm.startswith("ZMQbg"):
        return "zmq-other"
    if comm.startswith("MHD"):
        return "admin"
    return "worker:" + comm


def zmq_sub(sym):
    """libzmq is stripped on Debian: most of it is addresses and lands in zmq:other."""
    if re.search(r"(mailbox|signaler|ypipe|command|send_activate|process_command|yqueue|"
                 r"activate_read|activate_write|object_t::send|object_t::process)", sym):
        return "zmq:pipes/mailbox/signal"
    if re.search(r"(encoder|decoder|v2_|raw_|msg_t|shared_message|content|metadata|allocator)",
                 sym):
        return "zmq:msg/codec"
    if re.search(r"(stream_engine|tcp|epoll|poller|io_thread|in_event|out_event|zmtp)", sym):
        return "zmq:engine/poller"
    if re.search(r"(socket_base|router|dealer|fq_t|lb_t|pipe_t|zmq_msg|zmq_send|zmq_recv|"
                 r"zmq_poll|getsockopt)", sym):
        return "zmq:socket/pipe"
    return "zmq:other"


def user_comp(fm, sym, dso):
    if "libzmq" in dso or "libczmq" in dso:
        return zmq_sub(sym)
    if "libsodium" in dso:
        return "connid (libsodium)"
    if "libc.so" in dso or "ld-linux" in dso:
        if MALLOC.search(sym):
            return "malloc/free"
        if MEMCPY.search(sym):
            return "memcpy"
        if MEMSET.search(sym):
            return "memset"
        if LOCK.search(sym):
            return "locks/futex (user)"
        return "libc other (" + sym + ")"
    if "libmsgpack" in dso:
        return "msgpack (lib)"
    if "vdso" in dso:
        return "vdso (clock)"
    if "libstdc++" in dso:
        return "libstdc++"
    f = src_of(fm, sym, dso)
    if f:
        layer, name = f.split("/", 1)
        return layer + "/" + name[:-2]
    return "user other (" + sym + " " + dso.split("/")[-1] + ")"


def kernel_comp(chain):
    syms = [s for s, _ in chain]
    joined = " ".join(syms)
    sc = None
    for s in syms:
        m = SYSC.match(s)
        if m:
            sc = m.group(1)
            break
    if sc is None:
        for s, d in chain:  # the first user-space frame: the libc wrapper that entered
            if "kernel" not in d and s != "[unknown]":
                sc = re.sub(r"^(__GI___libc_|__libc_|__GI___|__)", "", s).split("@")[0]
                sc += "(via wrapper)"
                break
    if sc is None:
        if "do_syscall_64" in joined:
            sc = "syscall entry/exit"
        elif "asm_sysvec" in joined or "irq" in joined:
            sc = "irq"
        else:
            sc = "other"
    sub = ""
    if "net_rx_action" in joined or "process_backlog" in joined:
        sub = " [loopback rx softirq: receiver's work]"
    elif "eventfd" in joined:
        sub = " [eventfd]"
    elif any(k in joined for k in ("__schedule", "schedule_hrtimeout", "finish_task_switch")):
        sub = " [scheduler/context switch]"
    elif "tcp_" in joined and sc in ("sendto", "write", "writev", "sendmsg"):
        sub = " [tcp send]"
    elif "tcp_" in joined and sc in ("recvfrom", "read", "readv", "recvmsg"):
        sub = " [tcp recv]"
    return "kernel:" + sc + sub


def parse(path):
    """Yield (comm, tid, period, [(symbol, dso), ...] leaf first) for each sample."""
    p = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,period,ip,sym,dso"],
                       capture_output=True, text=True)
    for block in p.stdout.split("\n\n"):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        head = lines[0].split()
        if len(head) < 3:
            continue
        comm, tid, period = " ".join(head[:-2]), head[-2], int(head[-1])
        chain = []
        for line in lines[1:]:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line)
            if m:
                chain.append((m.group(1), m.group(2)))
        yield comm, tid, period, chain


def component(fm, chain):
    sym, dso = chain[0]
    if "kernel" in dso:
        return kernel_comp(chain)
    return user_comp(fm, re.sub(r"\+0x[0-9a-f]+$", "", sym), dso)


def main():
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    fm = funcmap(sys.argv[1])
    path = sys.argv[2]
    reqs = float(sys.argv[3]) if len(sys.argv) > 3 else 0
    by, per_thread, tot = collections.Counter(), collections.Counter(), 0
    for comm, _, period, chain in parse(path):
        if not chain:
            continue
        t = thread_class(comm)
        by[(t, component(fm, chain))] += period
        per_thread[t] += period
        tot += period
    if not tot:
        print(f"{path}: no samples")
        return

    def ns(c):
        return f"{c / reqs:7.0f} ns/req" if reqs else ""
    print(f"CPU sampled {tot / 1e9:.3f} s" +
          (f", requests {reqs:.0f}, {tot / reqs:.0f} ns/req" if reqs else ""))
    for t, n in per_thread.most_common():
        print(f"\n### thread {t}: {100 * n / tot:.1f}% of process {ns(n)}")
        for c, k in sorted(((c, k) for (tt, k), c in by.items() if tt == t), reverse=True):
            if 100 * c / tot >= 0.2:
                print(f"  {100 * c / tot:5.1f}%  {ns(c)}  {k}")


if __name__ == "__main__":
    main()
