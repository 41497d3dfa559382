#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Syscalls and context switches per thread, per request and per batch, from prof.py --sysc runs.

  sysc.py RUN...

Reads RUN/sysc-ROLE.csv (perf stat --per-thread -x,) and divides each count by the run's
requests (announces and scrapes, ana.py) and, for a cluster run, by the gateway's batches sent
("/b"). Threads are named by comm (the per-thread suffix dropped); the admin (MHD) threads and
threads with fewer than 100 events are left out.
"""
import collections
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ana  # noqa: E402


def counts(path):
    """{thread comm: {event: count}} from one perf stat CSV."""
    c = collections.defaultdict(dict)
    with open(path) as f:
        for line in f:
            p = line.strip().split(",")
            if len(p) < 4 or p[1].startswith("<"):  # <not counted>, <not supported>
                continue
            try:
                v = float(p[1])
            except ValueError:
                continue
            if v == 0:
                continue
            th = re.sub(r"-\d+$", "", p[0])
            ev = p[3].replace("syscalls:sys_enter_", "")
            c[th][ev] = c[th].get(ev, 0) + v
    return c


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    for run in (r.rstrip("/") for r in sys.argv[1:]):
        s = ana.summary(run)
        nreq, nb = s["requests"], s["batches"]
        if nreq <= 0:
            print(f"== {run}: no request answered in the window")
            continue
        print(f"== {run}: {nreq:.0f} requests (no connects)" +
              (f", {nb:.0f} batches ({nreq / nb:.1f} req/batch)" if nb else ""))
        for path in sorted(glob.glob(run + "/sysc-*.csv")):
            who = os.path.basename(path)[5:-4]
            for th, evs in counts(path).items():
                if th.startswith("MHD") or sum(evs.values()) < 100:
                    continue
                per = "  ".join(f"{e} {v / nreq:.3f}" + (f" ({v / nb:.2f}/b)" if nb else "")
                                for e, v in sorted(evs.items(), key=lambda x: -x[1]))
                print(f"  {who}/{th}: per request: {per}")


if __name__ == "__main__":
    main()
