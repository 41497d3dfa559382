#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""CPU per thread per request and requests per batch for prof.py run directories.

  ana.py RUN...

Requests are the front end's answered announces and scrapes over the window (the difference of
shoal_requests_total{result="ok"} between metrics-ROLE-0.txt and -1.txt, connects left out: they
are about 1 % of responses and the gateway answers them alone). CPU comes from threads.json; per
request means per announce or scrape.
Batches: shoal_router_batches_total{result="sent"} (gateway) and shoal_node_batches_total.
"""
import json
import sys


def read_metrics(path):
    d = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            k, v = line.rsplit(" ", 1)
            try:
                d[k] = float(v)
            except ValueError:
                pass
    return d


def delta(run, who):
    a = read_metrics(f"{run}/metrics-{who}-0.txt")
    b = read_metrics(f"{run}/metrics-{who}-1.txt")
    return {k: b[k] - a.get(k, 0) for k in b}


def summary(run):
    """A dict: wall, answered (with connects), requests (without), batches, node_batches, ..."""
    with open(f"{run}/threads.json") as f:
        r = json.load(f)
    who = "gateway" if "gateway" in r["threads"] else "shoal"
    g = delta(run, who)
    ok = {k: v for k, v in g.items()
          if k.startswith("shoal_requests_total{") and 'result="ok"' in k}
    s = {"run": run, "wall": r["wall"], "threads": r["threads"],
         "answered": sum(ok.values()),
         "requests": sum(v for k, v in ok.items() if "connect" not in k),
         "batches": 0, "routed": 0, "node_batches": 0, "node_requests": 0}
    if who == "gateway":
        s["batches"] = g.get('shoal_router_batches_total{result="sent"}', 0)
        s["routed"] = g.get('shoal_router_requests_total{outcome="answered"}', 0)
        n = delta(run, "node")
        s["node_batches"] = n.get("shoal_node_batches_total", 0)
        s["node_requests"] = sum(v for k, v in n.items()
                                 if k.startswith("shoal_node_requests_total{"))
    return s


def report(run):
    s = summary(run)
    # Per request: announces and scrapes only, as agg.py and sysc.py count them.
    fe, wall = s["requests"], s["wall"]
    if fe <= 0:
        print(f"== {run}: no request answered in the window")
        return
    print(f"== {run}  wall {wall:.2f}s  front end answered {s['answered']:.0f} "
          f"({s['answered'] / wall:.0f}/s), without connects {fe:.0f} ({fe / wall:.0f}/s)")
    if s["batches"]:
        print(f"   router: {s['routed']:.0f} answered in {s['batches']:.0f} batches = "
              f"{s['routed'] / s['batches']:.1f}/batch; node: {s['node_requests']:.0f} in "
              f"{s['node_batches']:.0f} batches = "
              f"{s['node_requests'] / max(s['node_batches'], 1):.1f}/batch")
    tot = 0
    for proc, ths in s["threads"].items():
        ps = 0
        for t in ths:
            c = t["user_s"] + t["sys_s"]
            ps += c
            if c > 0.005:
                print(f"   {proc:8s} {t['comm']:14s} tid {t['tid']:>7s} user {t['user_s']:6.2f} "
                      f"sys {t['sys_s']:6.2f}  {1e6 * c / fe:6.2f} us/req  util {c / wall:.2f}")
        tot += ps
        if ps > 0:
            print(f"   {proc:8s} TOTAL {ps:6.2f} CPU-s  {1e6 * ps / fe:6.2f} us/req  "
                  f"util {ps / wall:.2f}  -> {fe / ps:,.0f} req per CPU-s")
    if tot > 0:
        print(f"   ALL {tot:.2f} CPU-s {1e6 * tot / fe:.2f} us/req -> {fe / tot:,.0f} req per CPU-s")


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    for run in sys.argv[1:]:
        report(run.rstrip("/"))


if __name__ == "__main__":
    main()
