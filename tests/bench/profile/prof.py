#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""One profiled run: the cluster (1 shoal-gateway + 1 shoal-node) or standalone shoal under
bench.py's workload, with perf sampling (--perf) or syscall/context-switch counts (--sysc).

  prof.py BUILD OUT SCEN MODE [--perf] [--sysc] [--window S]
    BUILD  a build directory (RelWithDebInfo for symbols), e.g. build/prof
    OUT    the run directory to write (created)
    SCEN   cluster | standalone
    MODE   udp | udp-deep | http | http-pipe (udp-deep: 1,024 requests outstanding, not 128)

The tracker processes run with --workers 1 pinned to core 0, shoal-load with one worker on core 1
(1 M torrents, 2 M peers, seed 1, as bench.py). Every process listens on 127.0.0.1 only, each
admin listener on a free port. 5 s into the load, /proc/PID/task/*/stat and /metrics are read, perf
runs on core 1 for the window, and both are read again at the end. Every tracker process is
stopped by its PID (SIGTERM, then SIGKILL after 10 s); the load generator ends by itself.

Writes OUT/threads.json (CPU per thread over the window), OUT/metrics-ROLE-{0,1}.txt,
OUT/load.txt (shoal-load's output), OUT/stderr.txt, and per process OUT/perf-ROLE.data (--perf)
or OUT/sysc-ROLE.csv (--sysc). Read them with ana.py, agg.py and sysc.py.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from bench import udp_announce_ok  # noqa: E402
from trackerclient import free_port  # noqa: E402

MODES = {"udp": ["--mode", "udp"], "udp-deep": ["--mode", "udp", "--inflight", "256"],
         "http": ["--mode", "http"],
         "http-pipe": ["--mode", "http", "--inflight", "8"]}
# The syscalls the report counts (§5 of docs/profile-cluster.md), plus the two software events.
SYSCALLS = ("recvmmsg sendmmsg epoll_wait epoll_pwait epoll_ctl poll ppoll read write sendto "
            "recvfrom getpid futex mprotect brk madvise munmap mmap").split()
TRACKER_CORE, LOAD_CORE = "0", "1"


def threads(pid):
    """{tid: (comm, utime ticks, stime ticks)} for every thread of pid."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read()
        except OSError:
            continue  # the thread ended
        fields = st[st.rindex(")") + 2:].split()
        out[tid] = (comm, int(fields[11]), int(fields[12]))
    return out


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError as e:
        return f"# error {e}\n"


def start(build, scen, port, admin, err):
    pin = ["taskset", "-c", TRACKER_CORE]
    procs = {}
    if scen == "cluster":
        z = free_port()
        admin["node"], admin["gateway"] = free_port(), free_port()
        nodes = f"n1=tcp://127.0.0.1:{z}"
        procs["node"] = subprocess.Popen(pin + [
            os.path.join(build, "cmd", "shoal-node"), "--id", "n1", "--bind",
            f"tcp://127.0.0.1:{z}", "--nodes", nodes, "--workers", "1", "--log-level", "warn",
            "--admin", f"127.0.0.1:{admin['node']}"], stdout=subprocess.DEVNULL, stderr=err)
        procs["gateway"] = subprocess.Popen(pin + [
            os.path.join(build, "cmd", "shoal-gateway"), "--udp", f"127.0.0.1:{port}",
            "--http", f"127.0.0.1:{port}", "--nodes", nodes, "--workers", "1",
            "--secret", "ab" * 32, "--log-level", "warn",
            "--admin", f"127.0.0.1:{admin['gateway']}"], stdout=subprocess.DEVNULL, stderr=err)
    else:
        admin["shoal"] = free_port()
        procs["shoal"] = subprocess.Popen(pin + [
            os.path.join(build, "cmd", "shoal"), "--udp", f"127.0.0.1:{port}",
            "--http", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warn",
            "--admin", f"127.0.0.1:{admin['shoal']}"], stdout=subprocess.DEVNULL, stderr=err)
    return procs


def stop(procs):
    for name in ("gateway", "node", "shoal"):  # the gateway first, as bench.py does
        p = procs.get(name)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


def observers(args, procs, out, err):
    """perf processes for the window, one per tracker process, pinned beside the load."""
    pin = ["taskset", "-c", LOAD_CORE]
    obs = []
    for name, p in procs.items():
        if args.perf:
            cmd = ["perf", "record", "-q", "-F", "1999", "-g", "-p", str(p.pid),
                   "-o", os.path.join(out, f"perf-{name}.data")]
        else:
            ev = ",".join("syscalls:sys_enter_" + s for s in SYSCALLS)
            cmd = ["perf", "stat", "-e", ev + ",context-switches,page-faults", "--per-thread",
                   "-x,", "-p", str(p.pid), "-o", os.path.join(out, f"sysc-{name}.csv")]
        obs.append(subprocess.Popen(pin + cmd + ["--", "sleep", str(args.window)],
                                    stdout=subprocess.DEVNULL, stderr=err))
    return obs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build")
    ap.add_argument("out")
    ap.add_argument("scen", choices=["cluster", "standalone"])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--perf", action="store_true", help="perf record -g (cpu-clock) per process")
    ap.add_argument("--sysc", action="store_true", help="perf stat: syscalls per thread")
    ap.add_argument("--window", type=int, default=10, help="measured seconds (default 10)")
    args = ap.parse_args()
    if args.perf == args.sysc:
        ap.error("give one of --perf and --sysc")
    if not 1 <= args.window <= 60:
        ap.error("--window: 1 to 60 s")
    build = os.path.abspath(args.build)
    load_bin = os.path.join(build, "tests", "loadgen", "shoal-load")
    os.makedirs(args.out, exist_ok=True)
    port, admin, procs, load = free_port(), {}, {}, None
    with open(os.path.join(args.out, "stderr.txt"), "ab") as err:
        try:
            procs = start(build, args.scen, port, admin, err)
            deadline = time.monotonic() + 30
            while not udp_announce_ok(port):
                if time.monotonic() > deadline or any(p.poll() is not None
                                                      for p in procs.values()):
                    raise RuntimeError("tracker not answering announces within 30 s "
                                       f"(see {args.out}/stderr.txt)")
                time.sleep(0.1)
            dur = args.window + 8
            load = subprocess.Popen(
                ["taskset", "-c", LOAD_CORE, load_bin, "--target", f"127.0.0.1:{port}",
                 "--workers", "1", "--duration", str(dur), "--warmup", "1",
                 "--torrents", "1000000", "--peers", "2000000", "--seed", "1"] + MODES[args.mode],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(5)
            t0 = time.monotonic()
            th0 = {k: threads(p.pid) for k, p in procs.items()}
            m0 = {k: metrics(a) for k, a in admin.items()}
            obs = observers(args, procs, args.out, err)
            time.sleep(args.window)
            t1 = time.monotonic()
            th1 = {k: threads(p.pid) for k, p in procs.items()}
            m1 = {k: metrics(a) for k, a in admin.items()}
            for o in obs:
                o.wait(timeout=120)
            lo, _ = load.communicate(timeout=dur + 60)
        finally:
            if load is not None and load.poll() is None:  # only on an error: it ends by itself
                load.kill()
                load.wait(timeout=10)
            stop(procs)
    with open(os.path.join(args.out, "load.txt"), "w") as f:
        f.write(lo)
    for k in admin:
        for i, m in ((0, m0), (1, m1)):
            with open(os.path.join(args.out, f"metrics-{k}-{i}.txt"), "w") as f:
                f.write(m[k])
    hz = os.sysconf("SC_CLK_TCK")
    res = {"scen": args.scen, "mode": args.mode, "wall": t1 - t0,
           "pids": {k: p.pid for k, p in procs.items()}, "threads": {}}
    for k in procs:
        for tid, (comm, u1, s1) in th1[k].items():
            _, u0, s0 = th0[k].get(tid, (comm, 0, 0))
            res["threads"].setdefault(k, []).append(
                {"tid": tid, "comm": comm, "user_s": (u1 - u0) / hz, "sys_s": (s1 - s0) / hz})
    with open(os.path.join(args.out, "threads.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"{args.out}: " + " ".join(l for l in lo.splitlines() if l.startswith("RESULT")))


if __name__ == "__main__":
    main()
