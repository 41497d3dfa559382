#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Instructions (Ir) per request and per batch in a cg.sh run, per thread and per function.

  cgsum.py RUN [FUNCTIONS] [TOP]
    RUN        a cg.sh output directory
    FUNCTIONS  comma-separated function names whose inclusive Ir to print, e.g.
               cmsg_encode_requests,cmsg_decode_replies,repo_announce,zmq_send
    TOP        how many functions to list by self Ir (default 25)

Requests and batches over the window come from RUN's /metrics snapshots: for a cluster run,
shoal_router_requests_total{outcome="answered"} and shoal_router_batches_total{result="sent"}
(node batches match them 1:1); for standalone, the answered announces and scrapes (a batch is
then one request). Each thread's dump of the window (cg.PID.1-NN) with at least 1 M Ir is read
with callgrind_annotate: total Ir, the chosen functions' inclusive Ir, self Ir grouped (ZeroMQ,
malloc/free, memcpy, locks), and the top functions by self Ir.
"""
import glob
import os
import re
import subprocess
import sys


def metric_sum(path, pattern):
    rx, total = re.compile(pattern), 0.0
    with open(path) as f:
        for line in f:
            if not line.startswith("#") and rx.search(line):
                total += float(line.rsplit(" ", 1)[1])
    return total


def window(run):
    """(requests, batches) between m-gw-0.txt and m-gw-1.txt."""
    def d(pattern):
        return (metric_sum(f"{run}/m-gw-1.txt", pattern) -
                metric_sum(f"{run}/m-gw-0.txt", pattern))
    if os.path.exists(f"{run}/m-node-0.txt"):
        return (d(r'^shoal_router_requests_total\{outcome="answered"'),
                d(r'^shoal_router_batches_total\{result="sent"'))
    n = d(r'^shoal_requests_total\{.*(announce|scrape).*result="ok"')
    return n, n


def table(dump, inclusive):
    out = subprocess.run(["callgrind_annotate", "--threshold=100",
                          f"--inclusive={'yes' if inclusive else 'no'}", dump],
                         capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?):(\S+)(?: \[(.*)\])?$", line)
        if not m:
            continue
        ir, fn, obj = int(m.group(1).replace(",", "")), m.group(3), m.group(4) or ""
        key = fn if not fn.startswith("0x") else obj.split("/")[-1] + ":" + fn
        d[key] = max(d.get(key, 0), ir) if inclusive else d.get(key, 0) + ir
    return d


def group(fn):
    if fn.startswith(("libzmq", "zmq_", "libczmq", "zsock")):
        return "zmq (self, all)"
    if re.match(r"(_int_malloc|_int_free|malloc|free|cfree|realloc|calloc|malloc_consolidate|"
                r"unlink_chunk|tcache|_int_realloc|sysmalloc|alloc_perturb|__libc_)", fn):
        return "malloc/free (self)"
    if "memcpy" in fn or "memmove" in fn:
        return "memcpy (self)"
    if "mutex" in fn or "lll_" in fn:
        return "locks (self)"
    return None


def summarise(dump, nreq, nbat, want, top):
    inc, slf = table(dump, True), table(dump, False)
    if not inc:
        print(f"{dump}: callgrind_annotate gave nothing")
        return
    tot = max(inc.values())
    # Thread entry points carry the whole thread as "self" when symbols are missing.
    slf = {k: v for k, v in slf.items()
           if k not in ("clone", "start_thread") and v < tot * 0.99}
    print(f"{dump}: total {tot:,} Ir = {tot / nreq:,.0f} Ir/request, {tot / nbat:,.0f} Ir/batch "
          f"({nreq / nbat:.2f} req/batch)")
    for w in want:
        v = inc.get(w, 0)
        print(f"  incl {w:32s} {v:>12,}  {v / nreq:8.0f}/req  {v / nbat:8.0f}/batch  "
              f"{100 * v / tot:5.1f}%")
    groups = {}
    for k, v in slf.items():
        g = group(k)
        if g:
            groups[g] = groups.get(g, 0) + v
    for g, v in sorted(groups.items(), key=lambda x: -x[1]):
        print(f"  self {g:32s} {v:>12,}  {v / nreq:8.0f}/req  {v / nbat:8.0f}/batch  "
              f"{100 * v / tot:5.1f}%")
    print("  top self:")
    for k, v in sorted(slf.items(), key=lambda x: -x[1])[:top]:
        print(f"    {v:>12,}  {v / nreq:7.0f}/req {v / nbat:7.0f}/b  {k}")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    run = sys.argv[1].rstrip("/")
    want = [w for w in sys.argv[2].split(",") if w] if len(sys.argv) > 2 else []
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    nreq, nbat = window(run)
    print(f"== {run}: requests {nreq:.0f}, batches {nbat:.0f}")
    if nreq <= 0 or nbat <= 0:
        sys.exit(f"{run}: no request answered in the window")
    for dump in sorted(glob.glob(f"{run}/cg.*.1-*")):
        with open(dump, errors="replace") as f:
            m = re.search(r"^summary: (\d+)", f.read(), re.M)
        if m and int(m.group(1)) >= 1_000_000:
            summarise(dump, nreq, nbat, want, top)


if __name__ == "__main__":
    main()
