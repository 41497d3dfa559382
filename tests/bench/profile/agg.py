#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Per-thread component table, ns per request, over prof.py --perf runs of one mode.

  agg.py BUILD MODE RUN...

RUNs are run directories of the same mode (cluster runs, standalone runs, or both: a standalone
run adds a shoal/worker column). Each run's samples are divided by its own requests (ana.py:
announces and scrapes) and the runs are averaged. Components are classify.py's, folded into the
coarse rows of docs/profile-cluster.md §3 (K = kernel, U = user space). Prints a Markdown table.
"""
import collections
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ana  # noqa: E402
import classify  # noqa: E402

CLIENT = re.compile(r"^(gateway/(fe_|frontend|access|netaddr|connban|ratelimit|addrtab)|"
                    r"proto/(bep15|httpreq|httpresp|query|bencode|connid|announce|hex|proxyv2|"
                    r"accesslist)|cmd/)")
WRAPPED = ("getpid", "poll", "write", "read", "epoll_ctl", "recvmmsg", "sendmmsg", "send",
           "recv", "sendto", "recvfrom", "epoll_wait")


def kernel_row(thread, k):
    sc = k.replace("(via wrapper)", "").split(" ")[0]
    if sc in ("recvmmsg", "sendmmsg"):
        return "K client UDP I/O: recvmmsg+sendmmsg (incl. loopback delivery)"
    if sc in ("sendto", "recvfrom", "send", "recv", "sendmsg", "recvmsg"):
        if thread == "zmq-io":
            return "K ZeroMQ TCP send/recv (incl. loopback delivery)"
        return "K client TCP I/O: send/recv (incl. loopback delivery)"
    if "[scheduler" in k or sc in ("epoll_wait", "epoll_pwait"):
        return "K waiting: epoll_wait/poll + context switches"
    if sc in ("getpid", "write", "read", "poll", "epoll_ctl") or "[eventfd]" in k:
        return "K ZeroMQ signalling: eventfd write/read, poll, getpid, epoll_ctl"
    if sc in ("mprotect", "brk", "munmap", "madvise", "mmap") or (
            "(via wrapper)" in k and sc != "syscall"):
        return "K memory: page faults, mprotect"
    if sc.startswith("syscall entry"):
        return "K syscall entry/exit (unattributed)"
    return "K irq/other"


def coarse(thread, comp):
    if comp.startswith("libc other ("):
        w = re.sub(r"^(__GI___libc_|__libc_|__GI___|__)", "", comp[12:-1]).split("@")[0]
        if w in WRAPPED:
            comp = "kernel:" + w + " [user side]"
        elif "asynccancel" in w:
            return "U libc syscall wrappers/other"
    if comp.startswith("kernel:"):
        return kernel_row(thread, comp[7:])
    if comp.startswith("zmq:"):
        return "U ZeroMQ (libzmq, libczmq)"
    if comp.startswith(("proto/cmsg", "msgpack", "proto/mpread")):
        return "U msgpack encode/decode (proto/cmsg)"
    if comp.startswith("gateway/router"):
        return "U router bookkeeping (gateway/router)"
    if comp.startswith("node/nodesrv"):
        return "U nodesrv (serve, handle_one)"
    if comp.startswith(("node/", "proto/partition")):
        return "U repository (node/repo) + partition"
    if comp.startswith("connid (libsodium)"):
        return "U siphash (connid check; repo keys)"
    if CLIENT.match(comp):
        return "U client protocol + front end"
    if comp == "malloc/free":
        return "U malloc/free"
    if comp in ("memcpy", "memset"):
        return "U memcpy/memset"
    if comp.startswith("locks"):
        return "U locks (pthread mutex)"
    if comp.startswith("libc other"):
        return "U libc syscall wrappers/other"
    return "U other"


def main():
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    fm = classify.funcmap(sys.argv[1])
    mode, runs = sys.argv[2], [r.rstrip("/") for r in sys.argv[3:]]
    # Standalone and cluster runs are averaged separately (each column over its own runs).
    nruns = collections.Counter("shoal" if glob.glob(r + "/perf-shoal.data") else "cluster"
                                for r in runs)
    cols = collections.OrderedDict()
    for run in runs:
        n = ana.summary(run)["requests"]
        if n <= 0:
            sys.exit(f"{run}: no request answered in the window")
        for path in sorted(glob.glob(run + "/perf-*.data")):
            proc = os.path.basename(path)[5:-5]
            share = nruns["shoal" if proc == "shoal" else "cluster"]
            for comm, _, period, chain in classify.parse(path):
                if not chain:
                    continue
                t = classify.thread_class(comm)
                if t == "admin":
                    continue
                t = "worker" if t.startswith("worker") else t
                col = cols.setdefault(proc + "/" + t, collections.Counter())
                col[coarse(t, classify.component(fm, chain))] += period / n / share
    order = [c for c in ("gateway/worker", "gateway/zmq-io", "node/worker", "node/zmq-io",
                         "shoal/worker") if c in cols]
    clus = [c for c in order if not c.startswith("shoal")]
    rows = sorted({k for c in cols.values() for k in c},
                  key=lambda k: -sum(cols[c][k] for c in order))
    print(f"| {mode}: ns per request | " + " | ".join(order) + " | cluster sum |")
    print("|---" * (len(order) + 2) + "|")
    for k in rows:
        print(f"| {k} | " + " | ".join(f"{cols[c][k]:,.0f}" for c in order) +
              f" | {sum(cols[c][k] for c in clus):,.0f} |")
    print("| **total** | " + " | ".join(f"**{sum(cols[c].values()):,.0f}**" for c in order) +
          f" | **{sum(sum(cols[c].values()) for c in clus):,.0f}** |")


if __name__ == "__main__":
    main()
