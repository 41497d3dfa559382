#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Side-by-side tracker benchmark: shoal against opentracker on the same machine.

Each tracker runs pinned to the tracker core set, the load generator (shoal-load) to the load core
set; the trackers alternate over several rounds and the report gives medians and shoal/opentracker
ratios for UDP, HTTP keep-alive and HTTP with a new connection per request: valid responses per
second, valid responses per tracker CPU-second (robust when the generator is the limit), the
tracker's CPU utilisation and peak RSS, latency at half of peak load, and the generator's own
ceiling against shoal-echo. --memory fills both trackers with the same population and reports
bytes per peer. --cluster adds 1 shoal-gateway + 1 shoal-node sharing the tracker cores beside
standalone shoal; --roles measures each cluster role alone (the gateway with its node on the load
cores; the node driven by shoal-node-bench) and what that predicts for the shared core. Modes
http-pipe (16 connections x 8 pipelined) and http-conns (256 connections x 1) load HTTP with more
requests in flight than the default keep-alive mode (16 x 1). Only loopback addresses are used;
every run is bounded in time.

  tests/bench/bench.py --build build/release           # the full comparison (~15 min)
  tests/bench/bench.py --build build/test --smoke      # a few seconds, for CI: checks it runs
  tests/bench/bench.py --build build/release --cluster --roles --no-opentracker --no-ceiling \
      --no-latency --modes udp,http,http-pipe,http-conns   # the cluster against standalone
  tests/bench/bench.py --build build/release --modes udp --no-opentracker --no-ceiling \
      --no-latency --access-list-size 1000000   # allow list of 1M (the load's pool) vs access off
  tests/bench/bench.py --build build/release --modes udp,http --no-opentracker --no-ceiling \
      --no-latency --rate-limit 1000000   # rate limit and connid ban on (refusing nothing) vs off
  tests/bench/bench.py --build build/release --cluster --curve --no-opentracker --no-ceiling \
      --no-latency --modes udp,http   # the cluster with CURVE on and off, same rounds
  tests/bench/bench.py --build build/release --cluster --no-opentracker --no-ceiling \
      --no-latency --modes udp,udp-deep --open-loop 0.6,0.75   # does the cluster keep up with
      # 60 % and 75 % of standalone's UDP peak, offered open loop?

udp-deep is UDP with 1,024 requests outstanding instead of 128. --open-loop F,... offers standalone
and the cluster F x standalone's median UDP peak (the highest of its udp and udp-deep medians) at a
fixed rate, open loop, as many clients do; a tracker keeps up when it answers >= 99 % of what is
offered with no timeouts.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import trackerclient  # noqa: E402
# A port free for UDP and TCP on 127.0.0.1 (the trackers serve both on one port).
from trackerclient import free_port  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def udp_connect_ok(port, timeout=0.2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(struct.pack(">QII", 0x41727101980, 0, 7), ("127.0.0.1", port))
        data, _ = s.recvfrom(64)
        return len(data) >= 16 and struct.unpack(">II", data[:8]) == (0, 7)
    except OSError:
        return False
    finally:
        s.close()


class Tracker:
    """One tracker process, started pinned, measured through /proc, stopped by PID."""

    def __init__(self, name, argv, port, workdir):
        self.name, self.argv, self.port, self.workdir = name, argv, port, workdir
        self.proc = None
        self.errlog = open(os.path.join(workdir, f"{name}.stderr"), "ab")

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.errlog)
        deadline = time.monotonic() + 60  # opentracker reads a 1M-line whitelist first
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.errlog.name}")
            if udp_connect_ok(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer on port {self.port} within 60 s")

    def cpu_seconds(self):
        return trackerclient.cpu_seconds(self.proc.pid)  # utime + stime, all threads

    def status_kib(self, key):
        return trackerclient.status_kib(self.proc.pid, key)

    def reset_peak(self):
        """Start VmHWM afresh (after a whitelist load, so it is not counted as working memory)."""
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.errlog.close()


class Cluster:
    """1 shoal-gateway + 1 shoal-node sharing the tracker cores, static membership (no Redis):
    measured as one tracker (CPU and RSS summed over both processes). With node_cores the node
    runs there instead (--roles: the gateway alone on the tracker cores)."""

    def __init__(self, args, port, workdir, cores, node_cores=None, curve=False):
        self.name, self.port = "cluster-curve" if curve else "cluster", port
        zport = free_port(count=cores)  # a node worker per tracker core, a port each
        nodes = node_advert(zport, cores)
        node_extra, gw_extra = [], []
        if curve:  # CURVE between the two: a key pair each, each trusting the other's
            node_key, gw_key = curve_keys(args, workdir)
            nodes += "|curve=" + node_key[2]
            node_extra = ["--curve-cert", node_key[0], "--curve-trust", gw_key[1]]
            gw_extra = ["--curve-cert", gw_key[0], "--curve-trust", node_key[1]]
        pin = ["taskset", "-c", args.tracker_cores]
        self.node = make_node(args, zport, node_cores or args.tracker_cores, cores, workdir,
                              node_extra)
        self.gateway = Tracker(self.name + "-gateway", pin + [
            args.gateway, "--udp", f"127.0.0.1:{port}", "--http", f"127.0.0.1:{port}",
            "--nodes", nodes, "--workers", str(cores), "--secret", "ab" * 32,
            "--log-level", "warn"] + gw_extra, port, workdir)

    def start(self):
        self.node.proc = subprocess.Popen(self.node.argv, stdout=subprocess.DEVNULL,
                                          stderr=self.node.errlog)
        self.gateway.start()
        # The gateway answers connects at once; wait until announces reach the node.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if udp_announce_ok(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError("cluster: announces not answered within 30 s")

    def cpu_seconds(self):
        return self.node.cpu_seconds() + self.gateway.cpu_seconds()

    def status_kib(self, key):
        return self.node.status_kib(key) + self.gateway.status_kib(key)

    def reset_peak(self):
        self.node.reset_peak()
        self.gateway.reset_peak()

    def stop(self):
        self.gateway.stop()
        self.node.stop()


def node_advert(zport, workers):
    """The static member list of a one-node cluster whose workers listen on zport and up."""
    return f"n1=tcp://127.0.0.1:{zport}" + (f"|workers={workers}" if workers > 1 else "")


def make_node(args, zport, core_list, workers, workdir, extra=()):
    """A shoal-node owning every partition, on ZeroMQ ports zport..zport+workers-1, pinned to
    core_list."""
    nodes = node_advert(zport, workers)
    return Tracker("node", ["taskset", "-c", core_list, args.node, "--id", "n1", "--bind",
                            f"tcp://127.0.0.1:{zport}", "--nodes", nodes, "--workers",
                            str(workers), "--log-level", "warn"] + list(extra), zport, workdir)


def curve_keys(args, workdir):
    """Certificates for a CURVE cluster (made once per run): for the node and the gateway each
    (secret part, a trust dir holding the public part, the public key)."""
    out = []
    for who in ("node", "gateway"):
        d = os.path.join(workdir, "curve-" + who)
        path = os.path.join(d, "cert")
        if not os.path.exists(path):
            os.makedirs(os.path.join(d, "trust"))
            subprocess.run([args.keygen, path], check=True, capture_output=True)
            shutil.copy(path, os.path.join(d, "trust", who))
        with open(path) as f:
            key = re.search(r'public-key = "(.{40})"', f.read()).group(1)
        out.append((path + "_secret", os.path.join(d, "trust"), key))
    return out


def tcp_listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def udp_announce_ok(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.3)
    try:
        s.sendto(struct.pack(">QII", 0x41727101980, 0, 1), ("127.0.0.1", port))
        data, _ = s.recvfrom(64)
        cid = struct.unpack(">IIQ", data[:16])[2]
        s.sendto(struct.pack(">QII", cid, 1, 2) + b"\x01" * 20 + b"-SH0100-probeprobe12" +
                 struct.pack(">QQQIIIiH", 0, 0, 0, 3, 0, 0, 0, 6881), ("127.0.0.1", port))
        data, _ = s.recvfrom(2048)
        return len(data) >= 20 and struct.unpack(">I", data[:4])[0] == 1
    except OSError:
        return False
    finally:
        s.close()


def make_tracker(args, name, port, workdir, cores, whitelist):
    if name == "shoal":
        return make_shoal(args, port, workdir, cores)
    if name == "shoal-acl":
        return make_shoal(args, port, workdir, cores, args.acl_file)
    if name == "shoal-rl":
        return make_shoal(args, port, workdir, cores, rate_limit=args.rate_limit)
    if name == "cluster":
        return Cluster(args, port, workdir, cores)
    if name == "cluster-curve":
        return Cluster(args, port, workdir, cores, curve=True)
    return make_opentracker(args, port, workdir, whitelist)


def make_shoal(args, port, workdir, cores, acl_file=None, rate_limit=0):
    argv = ["taskset", "-c", args.tracker_cores, args.shoal, "--udp", f"127.0.0.1:{port}",
            "--http", f"127.0.0.1:{port}", "--workers", str(cores), "--log-level", "warn"]
    name = "shoal"
    if acl_file:
        argv += ["--access-mode", "allow", "--access-list", acl_file]
        name = "shoal-acl"
    if rate_limit:
        # Both abuse controls on, neither refusing anything: the cost of the checks themselves
        # (a token taken per request; the ban list looked up per UDP datagram).
        argv += ["--rate-limit", str(rate_limit), "--connid-ban", "100"]
        name = "shoal-rl"
    return Tracker(name, argv, port, workdir)


def make_opentracker(args, port, workdir, whitelist):
    conf = os.path.join(workdir, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"listen.udp 127.0.0.1:{port}\nlisten.tcp 127.0.0.1:{port}\n"
                f"access.whitelist {whitelist}\ntracker.rootdir {workdir}\n")
    os.chmod(conf, 0o644)
    argv = ["taskset", "-c", args.tracker_cores]
    if os.getuid() == 0:  # as root it would chroot and drop privileges itself
        argv += ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv += [args.opentracker, "-f", conf]
    return Tracker("opentracker", argv, port, workdir)


def make_echo(args, port, workdir):
    argv = ["taskset", "-c", args.tracker_cores, args.echo, "--udp", f"127.0.0.1:{port}",
            "--http", f"127.0.0.1:{port}", "--duration", "3600"]
    return Tracker("shoal-echo", argv, port, workdir)


MODES = {
    "udp": ["--mode", "udp"],
    # 4 sockets x 256 outstanding: a closed loop of 128 (udp) caps the requests a tracker can
    # hold, so it cannot show a cluster's capacity (its batches cannot exceed half the window).
    "udp-deep": ["--mode", "udp", "--inflight", "256"],
    "http": ["--mode", "http"],  # keep-alive: 16 connections, 1 request in flight each
    "http-pipe": ["--mode", "http", "--inflight", "8"],  # 16 connections x 8 pipelined
    "http-conns": ["--mode", "http", "--sockets", "256"],  # 256 connections x 1
    "http-newconn": ["--mode", "http", "--http-new-conn"],
}


# A new TCP connection per request leaves one connection-tracking entry per request for two
# minutes (TIME_WAIT) where the kernel tracks connections (netfilter NAT loaded, e.g. by podman or
# docker). At full speed a smoke fills the table (262,144 here) and the kernel then refuses every
# new flow on loopback, later runs' datagrams included (EPERM). The smoke measures nothing: it
# runs that mode at this rate.
SMOKE_NEWCONN_RATE = 2000


def run_load(args, mode, port, rate=0):
    if args.smoke and mode == "http-newconn" and not rate:
        rate = SMOKE_NEWCONN_RATE
    argv = ["taskset", "-c", args.load_cores, args.load, "--target", f"127.0.0.1:{port}",
            "--workers", str(args.load_workers), "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--torrents", str(args.torrents),
            "--peers", str(args.peers), "--seed", "1"] + MODES[mode]
    if rate:
        argv += ["--rate", str(int(rate))]
    out = subprocess.run(argv, capture_output=True, text=True,
                         timeout=args.duration + args.warmup + 120)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"shoal-load {mode} failed ({out.returncode}): {out.stderr[-2000:]}")
    result = {}
    for kv in line[-1].split()[1:]:
        k, _, v = kv.partition("=")
        try:
            result[k] = float(v)
        except ValueError:
            result[k] = v
    return result


def measure(args, tracker, mode, rate=0):
    """One load run: the generator's RESULT plus the tracker's CPU use over the run."""
    cpu0, t0 = tracker.cpu_seconds(), time.monotonic()
    r = run_load(args, mode, tracker.port, rate)
    cpu, wall = tracker.cpu_seconds() - cpu0, time.monotonic() - t0
    r["cpu_util"] = cpu / wall if wall > 0 else 0.0
    # Valid responses per CPU-second of the tracker: rps over the measured window divided by
    # the utilisation over the whole run (warm-up included, where load is the same).
    r["rps_per_cpu"] = r["rps"] / r["cpu_util"] if r["cpu_util"] > 0 else 0.0
    r["peak_rss_kib"] = tracker.status_kib("VmHWM")
    return r


def whitelist_file(args, workdir):
    path = os.path.join(workdir, "whitelist")
    with open(path, "w") as f:
        subprocess.run([args.load, "--print-hashes", "--torrents", str(args.torrents), "--seed",
                        "1"], stdout=f, check=True, timeout=300)
    os.chmod(path, 0o644)
    return path


def acl_file(args, workdir):
    """An allow list for shoal-acl: the load generator's whole info-hash pool (so every request is
    allowed and served as without a list), padded with other hashes to --access-list-size lines."""
    path = os.path.join(workdir, "access-list")
    with open(path, "w") as f:
        out = subprocess.run([args.load, "--print-hashes", "--torrents", str(args.torrents),
                              "--seed", "1"], stdout=subprocess.PIPE, text=True, check=True,
                             timeout=300).stdout
        f.write("# shoal-load --torrents %d --seed 1, padded to %d\n" %
                (args.torrents, args.access_list_size))
        f.write(out)
        for i in range(max(0, args.access_list_size - out.count("\n"))):
            f.write(hashlib.sha1(b"shoal-acl-pad-%d" % i).hexdigest() + "\n")
    return path


def med(xs):
    return statistics.median(xs) if xs else 0.0


def fmt_int(x):
    return f"{x:,.0f}"


# ---- memory: the same population in both trackers -------------------------------------------

def mem_hash(i):
    return hashlib.sha1(b"shoal-memory-%d" % i).digest()


def fill(port, torrents, peers_per):
    """Announce peers_per distinct peers (one source address each) to every torrent over UDP,
    pipelined, and check every reply. Returns the number of valid replies."""
    socks = []
    for k in range(peers_per):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((f"127.0.2.{k + 1}", 0))
        s.settimeout(2.0)
        s.sendto(struct.pack(">QII", 0x41727101980, 0, k), ("127.0.0.1", port))
        data, _ = s.recvfrom(64)
        cid = struct.unpack(">IIQ", data[:16])[2]
        socks.append((s, cid))
    ok = 0
    window = 256
    for base in range(0, torrents, window):
        n = min(window, torrents - base)
        for k, (s, cid) in enumerate(socks):
            for i in range(base, base + n):
                pkt = struct.pack(">QII", cid, 1, i) + mem_hash(i) + \
                    struct.pack(">20sQQQIIIiH", b"-SH0100-%012d" % i, 0, 0 if k % 4 == 0 else 1,
                                0, 2, 0, k, 0, 6881 + k)
                s.sendto(pkt, ("127.0.0.1", port))
            for _ in range(n):
                try:
                    data, _ = s.recvfrom(2048)
                except socket.timeout:
                    break
                if len(data) >= 20 and struct.unpack(">I", data[:4])[0] == 1:
                    ok += 1
    for s, _ in socks:
        s.close()
    return ok


def memory_bench(args, workdir):
    torrents, per = args.mem_torrents, args.mem_peers_per
    wl = os.path.join(workdir, "mem-whitelist")
    with open(wl, "w") as f:
        for i in range(torrents):
            f.write(mem_hash(i).hex() + "\n")
    os.chmod(wl, 0o644)
    rows = []
    for name in ("shoal", "opentracker"):
        if name == "opentracker" and not args.opentracker:
            continue
        port = free_port()
        t = (make_shoal(args, port, workdir, 1) if name == "shoal"
             else make_opentracker(args, port, workdir, wl))
        t.start()
        try:
            before = t.status_kib("VmRSS")
            t.reset_peak()
            t0 = time.monotonic()
            ok = fill(port, torrents, per)
            took = time.monotonic() - t0
            after = t.status_kib("VmRSS")
            peak = t.status_kib("VmHWM")
            peers = torrents * per
            rows.append({"tracker": name, "replies": ok, "peers": peers,
                         "rss_before_kib": before, "rss_after_kib": after, "peak_kib": peak,
                         "bytes_per_peer": (after - before) * 1024 / peers, "fill_s": took})
            log(f"memory {name}: {ok}/{peers} replies, RSS {before} -> {after} KiB")
        finally:
            t.stop()
    return rows


# ---- open loop: does a tracker keep up with a given rate? ------------------------------------

KEEPS_UP = 0.99  # answered share of the offered rate


def open_loop_bench(args, report, names, workdir, cores, whitelist):
    """Offer each tracker F x standalone's UDP peak at a fixed rate and record what it answers.
    The generator has udp-deep's 1,024 slots: they cap what is sent only once a tracker falls
    behind (then it sends as replies come back, and sent/s drops below the offered rate)."""
    peaks = [med([r["rps"] for r in report["runs"] if r["tracker"] == "shoal" and r["mode"] == m])
             for m in ("udp", "udp-deep")]
    peak = max(peaks)
    rows = []
    if not peak:
        return rows
    for frac in args.open_loop:
        for name in names:
            port = free_port()
            t = make_tracker(args, name, port, workdir, cores, whitelist)
            t.start()
            try:
                r = measure(args, t, "udp-deep", rate=peak * frac)
            finally:
                t.stop()
            r.update({"tracker": name, "fraction": frac, "offered": peak * frac, "peak": peak})
            r["answered"] = r["rps"] / r["offered"]
            r["keeps_up"] = r["answered"] >= KEEPS_UP and r["timeouts"] == 0
            rows.append(r)
            log(f"open loop {name:11s} at {frac:.2f} x {fmt_int(peak)} = {fmt_int(peak * frac)}/s: "
                f"{fmt_int(r['rps'])} rps ({r['answered']:.3f}), timeouts {int(r['timeouts'])}, "
                f"p99 {r['p99_us']:.0f} us, cpu {r['cpu_util']:.2f}")
    return rows


def print_open_loop(report):
    rows = report["open_loop"]
    print(f"\nopen loop (UDP, fixed rate, standalone's peak {fmt_int(rows[0]['peak'])} rps):")
    print("| tracker | fraction of peak | offered/s | sent/s | answered rps | answered share | "
          "timeouts | p50 us | p99 us | CPU util | keeps up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tracker']} | {r['fraction']:.2f} | {fmt_int(r['offered'])} | "
              f"{fmt_int(r['sent_rps'])} | {fmt_int(r['rps'])} | {r['answered']:.3f} | "
              f"{int(r['timeouts'])} | "
              f"{r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['cpu_util']:.2f} | "
              f"{'yes' if r['keeps_up'] else 'no'} |")


# ---- each cluster role alone -----------------------------------------------------------------

def roles_bench(args, workdir, cores, modes):
    """Per-role throughput. gateway: shoal-gateway alone on the tracker cores, its node on the
    load cores beside the generator; the node's CPU per request is measured too, at the batch
    sizes this load gives. node: shoal-node alone on the tracker cores, driven by
    shoal-node-bench (batches of announces, a window of batches in flight) from the load cores."""
    runs = []
    for rnd in range(args.rounds):
        port = free_port()
        c = Cluster(args, port, workdir, cores, node_cores=args.load_cores)
        c.start()
        try:
            for m in modes:
                n0, t0 = c.node.cpu_seconds(), time.monotonic()
                r = measure(args, c.gateway, m)
                node_util = (c.node.cpu_seconds() - n0) / (time.monotonic() - t0)
                r.update({"role": "gateway", "mode": m, "round": rnd, "node_cpu_util": node_util,
                          "node_rps_per_cpu": r["rps"] / node_util if node_util > 0 else 0.0})
                runs.append(r)
                log(f"roles {rnd} gateway {m:12s} {fmt_int(r['rps']):>10s} rps, gateway cpu "
                    f"{r['cpu_util']:.2f}, node cpu {node_util:.2f} (on the load cores)")
        finally:
            c.stop()
        for batch in args.node_batches:
            runs.append(node_alone(args, workdir, cores, batch, rnd))
    return runs


def node_workload_args(args):
    """shoal-node-bench's requests: shoal-load's workload (popular, as the standalone and cluster
    runs get) or its own uniform one (100 k torrents, 1 M peers, numwant 50)."""
    if args.node_workload == "uniform":
        return []
    return ["--popular", "1", "--torrents", str(args.torrents), "--peers", str(args.peers),
            "--numwant", "30"]


def node_alone(args, workdir, cores, batch, rnd):
    zport = free_port(count=cores)
    node = make_node(args, zport, args.tracker_cores, cores, workdir)
    node.proc = subprocess.Popen(node.argv, stdout=subprocess.DEVNULL, stderr=node.errlog)
    try:
        deadline = time.monotonic() + 30
        while not tcp_listening(zport):
            if node.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shoal-node did not listen on {zport}; see {node.errlog.name}")
            time.sleep(0.05)
        cpu0, t0 = node.cpu_seconds(), time.monotonic()
        out = subprocess.run(["taskset", "-c", args.load_cores, args.node_bench, "--endpoint",
                              f"tcp://127.0.0.1:{zport}", "--batch", str(batch), "--duration",
                              str(args.duration), "--warmup", str(max(args.warmup, 1)),
                              "--workers", str(cores)] + node_workload_args(args),
                             capture_output=True, text=True,
                             timeout=args.duration + args.warmup + 60)
        cpu, wall = node.cpu_seconds() - cpu0, time.monotonic() - t0
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"shoal-node-bench failed ({out.returncode}): {out.stderr[-2000:]}")
        j = json.loads(lines[-1])
        util = cpu / wall if wall > 0 else 0.0
        r = {"role": "node", "mode": f"batch {batch}", "batch": batch, "round": rnd,
             "workload": args.node_workload,
             "rps": float(j["requests_per_s"]), "cpu_util": util,
             "rps_per_cpu": j["requests_per_s"] / util if util > 0 else 0.0,
             "errors": j["errors"] + j["moved"] + j["undecodable"], "invalid": 0}
        log(f"roles {rnd} node    batch {batch:<6d} {fmt_int(r['rps']):>10s} rps, node cpu "
            f"{util:.2f}")
        return r
    finally:
        node.stop()


# ---- main -------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release", help="CMake build dir with shoal, "
                    "shoal-load and shoal-echo (built with tests on)")
    ap.add_argument("--tracker-cores", default="0", help="taskset list for the trackers")
    ap.add_argument("--load-cores", default="1", help="taskset list for the load generator")
    ap.add_argument("--load-workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--torrents", type=int, default=1000000)
    ap.add_argument("--peers", type=int, default=2000000)
    ap.add_argument("--modes", default="udp,http,http-newconn")
    ap.add_argument("--no-opentracker", action="store_true")
    ap.add_argument("--no-ceiling", action="store_true", help="skip the shoal-echo ceiling")
    ap.add_argument("--no-latency", action="store_true", help="skip latency at half load")
    ap.add_argument("--open-loop", default="",
                    help="fractions of standalone's UDP peak to offer open loop (e.g. 0.6,0.75)")
    ap.add_argument("--memory", action="store_true", help="also run the memory benchmark")
    ap.add_argument("--cluster", action="store_true",
                    help="also run 1 shoal-gateway + 1 shoal-node sharing the tracker cores")
    ap.add_argument("--curve", action="store_true",
                    help="with --cluster: also run the cluster with CURVE between gateway and "
                         "node, in the same rounds, and print CURVE on / off")
    ap.add_argument("--roles", action="store_true",
                    help="also measure each cluster role alone: the gateway on the tracker cores "
                    "with its node on the load cores, and the node driven by shoal-node-bench")
    ap.add_argument("--node-batches", default="256,64,16",
                    help="--roles: shoal-node-bench batch sizes (requests per message)")
    ap.add_argument("--node-workload", choices=["popular", "uniform"], default="popular",
                    help="--roles: shoal-node-bench's requests: shoal-load's workload (popular "
                    "torrents, as the other runs) or uniform over 100 k torrents")
    ap.add_argument("--failover", action="store_true",
                    help="also measure failover (failover_bench.py): UDP with snapshots to Redis "
                    "on vs off, snapshot and restore time of 1M peers, the unanswered window "
                    "after a node is SIGKILLed")
    ap.add_argument("--access-list-size", type=int, default=0,
                    help="also run shoal with --access-mode allow and a list of this many "
                    "info-hashes (the load generator's whole pool, padded) beside plain shoal")
    ap.add_argument("--rate-limit", type=int, default=0,
                    help="also run shoal with --rate-limit N (and --connid-ban) beside plain "
                    "shoal; N above any one load address's rate (1000000: never refuses) "
                    "measures the cost of the checks")
    ap.add_argument("--mem-torrents", type=int, default=100000)
    ap.add_argument("--mem-peers-per", type=int, default=10)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny and short: checks the machinery, measures nothing")
    ap.add_argument("--json", help="write all results here as JSON")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.warmup = 1, 2, 1
        args.torrents, args.peers = 2000, 4000
        args.mem_torrents, args.mem_peers_per = 200, 3
        args.no_latency = True
    if not (1 <= args.rounds <= 20 and 1 <= args.duration <= 600 and 0 <= args.warmup <= 60):
        ap.error("rounds 1..20, duration 1..600, warmup 0..60")
    args.shoal = os.path.join(args.build, "cmd", "shoal")
    args.load = os.path.join(args.build, "tests", "loadgen", "shoal-load")
    args.echo = os.path.join(args.build, "tests", "loadgen", "shoal-echo")
    args.gateway = os.path.join(args.build, "cmd", "shoal-gateway")
    args.node = os.path.join(args.build, "cmd", "shoal-node")
    args.keygen = os.path.join(args.build, "cmd", "shoal-keygen")
    if args.curve and not args.cluster:
        ap.error("--curve needs --cluster (it measures the cluster with CURVE on and off)")
    args.node_bench = os.path.join(args.build, "tests", "shoal-node-bench")
    args.bench_snapshot = os.path.join(args.build, "tests", "bench", "shoal-bench-snapshot")
    args.node_batches = [int(b) for b in args.node_batches.split(",") if b]
    try:
        args.open_loop = [float(f) for f in args.open_loop.split(",") if f]
    except ValueError:
        ap.error(f"--open-loop wants fractions like 0.6,0.75, not {args.open_loop!r}")
    if any(not 0.0 < f <= 2.0 for f in args.open_loop):
        ap.error("--open-loop fractions must be in (0, 2]")
    if args.open_loop and not any(m in ("udp", "udp-deep") for m in args.modes.split(",")):
        ap.error("--open-loop needs udp or udp-deep in --modes (its peak sets the rates)")
    if args.smoke:
        args.node_batches = args.node_batches[:1]
    need = (args.gateway, args.node) if args.cluster or args.roles else ()
    need += (args.keygen,) if args.curve else ()
    need += (args.node_bench,) if args.roles else ()
    need += (args.gateway, args.node, args.bench_snapshot) if args.failover else ()
    for p in (args.shoal, args.load, args.echo) + need:
        if not os.access(p, os.X_OK):
            sys.exit(f"bench: {p} is missing: build with cmake (tests on) into {args.build}")
    args.opentracker = None if args.no_opentracker else shutil.which("opentracker")
    if not args.no_opentracker and not args.opentracker:
        sys.exit("bench: opentracker not found: deploy/install-deps.sh test installs it")
    cores = int(subprocess.run(["taskset", "-c", args.tracker_cores, "nproc"],
                               capture_output=True, text=True, check=True).stdout)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}")

    workdir = tempfile.mkdtemp(prefix="shoal-bench-")
    os.chmod(workdir, 0o755)  # opentracker runs as nobody and reads its files here
    report = {"machine": os.uname().release, "cpu": cpu_model(), "tracker_cores":
              args.tracker_cores, "load_cores": args.load_cores, "tracker_core_count": cores,
              "config": {k: v for k, v in vars(args).items() if isinstance(v, (int, str))},
              "runs": [], "ceiling": {}, "latency": {}, "memory": [], "roles": [],
              "failover": {}, "open_loop": []}
    bad = []
    try:
        whitelist = whitelist_file(args, workdir) if args.opentracker else None
        args.acl_file = acl_file(args, workdir) if args.access_list_size > 0 else None
        if not args.no_ceiling:
            port = free_port()
            echo = make_echo(args, port, workdir)
            echo.start()
            try:
                for m in modes:
                    report["ceiling"][m] = measure(args, echo, m)
                    log(f"ceiling {m}: {fmt_int(report['ceiling'][m]['rps'])} rps")
            finally:
                echo.stop()
        names = ["shoal"] + (["shoal-acl"] if args.acl_file else []) + \
            (["shoal-rl"] if args.rate_limit else []) + \
            (["opentracker"] if args.opentracker else []) + (["cluster"] if args.cluster else []) + \
            (["cluster-curve"] if args.curve else [])
        for rnd in range(args.rounds):
            order = names if rnd % 2 == 0 else names[::-1]  # alternate who goes first
            for name in order:
                port = free_port()
                t = make_tracker(args, name, port, workdir, cores, whitelist)
                t.start()
                t.reset_peak()
                try:
                    for m in modes:
                        r = measure(args, t, m)
                        r.update({"tracker": name, "mode": m, "round": rnd})
                        report["runs"].append(r)
                        log(f"round {rnd} {name:11s} {m:12s} {fmt_int(r['rps']):>10s} rps "
                            f"cpu {r['cpu_util']:.2f} errors {int(r['errors'])} "
                            f"invalid {int(r['invalid'])}")
                        if r["errors"] or r["invalid"]:
                            bad.append(f"{name} {m} round {rnd}: errors={int(r['errors'])} "
                                       f"invalid={int(r['invalid'])}")
                finally:
                    t.stop()
        if not args.no_latency:
            for name in names:
                for m in ("udp",):
                    peak = med([r["rps"] for r in report["runs"]
                                if r["tracker"] == name and r["mode"] == m])
                    if not peak:
                        continue
                    port = free_port()
                    t = make_tracker(args, name, port, workdir, cores, whitelist)
                    t.start()
                    try:
                        r = measure(args, t, m, rate=peak / 2)
                        r["rate"] = peak / 2
                        report["latency"][f"{name}/{m}"] = r
                        log(f"latency {name} {m} at {fmt_int(peak / 2)}/s: p50 {r['p50_us']} us "
                            f"p99 {r['p99_us']} us p99.9 {r['p999_us']} us")
                    finally:
                        t.stop()
        if args.open_loop:
            report["open_loop"] = open_loop_bench(args, report, names, workdir, cores, whitelist)
            for r in report["open_loop"]:
                if r["errors"] or r["invalid"]:
                    bad.append(f"open loop {r['tracker']} at {r['fraction']}: "
                               f"errors={int(r['errors'])} invalid={int(r['invalid'])}")
        if args.roles:
            report["roles"] = roles_bench(args, workdir, cores, modes)
            # With --roles the node shares the load cores with the generator, and a node starved
            # past --node-timeout gives retryable failures: noted, not a failed run. An invalid
            # response is always a failure.
            for r in report["roles"]:
                what = f"{r['role']} {r['mode']} round {r['round']}: errors={int(r['errors'])} " \
                       f"invalid={int(r['invalid'])}"
                if r["invalid"] or (r["errors"] and r["role"] == "node"):
                    bad.append(what)
                elif r["errors"]:
                    log(f"note: {what} (the node shares the load cores with the generator)")
        if args.memory:
            report["memory"] = memory_bench(args, workdir)
        if args.failover:
            import failover_bench
            report["failover"] = failover_bench.failover_bench(args, workdir, cores)
            w = report["failover"]["window"]
            if w["completeness"] < 1.0:
                bad.append(f"failover: only {w['restored']} of {w['victim_hashes']} swarms of "
                           "the killed node were restored")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print_report(args, report, modes, cores)
    if report["failover"]:
        import failover_bench
        failover_bench.print_failover(report["failover"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if bad:
        print("\nFAILED: error or invalid responses (errors are not answers):")
        for b in bad:
            print("  " + b)
        sys.exit(1)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def ratio_table(args, runs, summary, modes, a_name, b_name, title):
    """Tracker a_name against b_name, measured in the same rounds: median ratios and each
    round's."""
    print(f"\n| mode | {title} | rps per CPU-s | per-round rps ratios |")
    print("| --- | --- | --- | --- |")
    for m in modes:
        a, b = summary.get((a_name, m)), summary.get((b_name, m))
        per_round = []
        for rnd in range(args.rounds):
            x = [r["rps"] for r in runs if r["tracker"] == a_name and r["mode"] == m
                 and r["round"] == rnd]
            y = [r["rps"] for r in runs if r["tracker"] == b_name and r["mode"] == m
                 and r["round"] == rnd]
            if x and y and y[0]:
                per_round.append(f"{x[0] / y[0]:.3f}")
        if a and b and b["rps"] and b["per_cpu"]:
            print(f"| {m} | {a['rps'] / b['rps']:.3f} | {a['per_cpu'] / b['per_cpu']:.3f} | "
                  f"{', '.join(per_round)} |")


def print_report(args, report, modes, cores):
    runs = report["runs"]
    print(f"\n# shoal vs opentracker: tracker cores {args.tracker_cores} ({cores}), load cores "
          f"{args.load_cores} ({args.load_workers} load workers), {args.rounds} rounds x "
          f"{args.duration} s, {args.torrents} torrents / {args.peers} peers")
    print(f"# cpu: {report['cpu']}\n")
    if report["ceiling"]:
        print("generator ceiling (shoal-echo): " + ", ".join(
            f"{m} {fmt_int(r['rps'])} rps" for m, r in report["ceiling"].items()))
    print(f"\n| mode | tracker | median rps | median rps per tracker CPU-s | CPU util | "
          f"peak RSS MiB | p99 us |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    summary = {}
    for m in modes:
        for name in ("shoal", "shoal-acl", "shoal-rl", "opentracker", "cluster", "cluster-curve"):
            rs = [r for r in runs if r["tracker"] == name and r["mode"] == m]
            if not rs:
                continue
            s = {"rps": med([r["rps"] for r in rs]),
                 "per_cpu": med([r["rps_per_cpu"] for r in rs]),
                 "cpu": med([r["cpu_util"] for r in rs]),
                 "rss": max(r["peak_rss_kib"] for r in rs) / 1024,
                 "p99": med([r["p99_us"] for r in rs])}
            summary[(name, m)] = s
            print(f"| {m} | {name} | {fmt_int(s['rps'])} | {fmt_int(s['per_cpu'])} | "
                  f"{s['cpu']:.2f} | {s['rss']:.1f} | {s['p99']:.0f} |")
    if any(n == "opentracker" for n, _ in summary):
        print("\n| mode | shoal/opentracker rps | shoal/opentracker rps per CPU-s |")
        print("| --- | --- | --- |")
        for m in modes:
            a, b = summary.get(("shoal", m)), summary.get(("opentracker", m))
            if a and b and b["rps"] and b["per_cpu"]:
                print(f"| {m} | {a['rps'] / b['rps']:.2f} | {a['per_cpu'] / b['per_cpu']:.2f} |")
    for name, title in (
            ("shoal-acl", f"shoal allow-list ({args.access_list_size} entries) / shoal access off rps"),
            ("shoal-rl", f"shoal --rate-limit {args.rate_limit} --connid-ban 100 / shoal without rps")):
        if any(n == name for n, _ in summary):
            ratio_table(args, runs, summary, modes, name, "shoal", title)
    if any(n == "cluster" for n, _ in summary):
        print("\n| mode | cluster/standalone rps | cluster/standalone rps per CPU-s |")
        print("| --- | --- | --- |")
        for m in modes:
            a, b = summary.get(("cluster", m)), summary.get(("shoal", m))
            if a and b and b["rps"] and b["per_cpu"]:
                print(f"| {m} | {a['rps'] / b['rps']:.2f} | {a['per_cpu'] / b['per_cpu']:.2f} |")
    if any(n == "cluster-curve" for n, _ in summary):
        ratio_table(args, runs, summary, modes, "cluster-curve", "cluster",
                    "cluster CURVE on / off rps")
    print("\nbencher-style (per tracker and core count):")
    print(f"| tracker | cores | mode | avg rps | CPU util | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (name, m), s in summary.items():
        avg = statistics.mean([r["rps"] for r in runs if r["tracker"] == name and r["mode"] == m])
        print(f"| {name} | {cores} | {m} | {fmt_int(avg)} | {s['cpu']:.2f} | {s['rss']:.1f} |")
    if report["roles"]:
        print_roles(report, modes, summary)
    if report["open_loop"]:
        print_open_loop(report)
    if report["latency"]:
        print("\nlatency at half of peak load:")
        for k, r in report["latency"].items():
            print(f"  {k}: {fmt_int(r['rate'])}/s offered, {fmt_int(r['rps'])} rps, p50 "
                  f"{r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, p99.9 {r['p999_us']:.0f} us")
    if report["memory"]:
        print("\nmemory (same population in both):")
        print("| tracker | peers | valid replies | RSS before MiB | RSS after MiB | bytes/peer |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in report["memory"]:
            print(f"| {r['tracker']} | {r['peers']} | {r['replies']} | "
                  f"{r['rss_before_kib'] / 1024:.1f} | {r['rss_after_kib'] / 1024:.1f} | "
                  f"{r['bytes_per_peer']:.1f} |")
        sh = [r for r in report["memory"] if r["tracker"] == "shoal"]
        ot = [r for r in report["memory"] if r["tracker"] == "opentracker"]
        if sh and ot and ot[0]["bytes_per_peer"] > 0:
            print(f"\nshoal/opentracker bytes per peer: "
                  f"{sh[0]['bytes_per_peer'] / ot[0]['bytes_per_peer']:.2f}")


def print_roles(report, modes, summary):
    """Per-role medians, and what they predict for 1 gateway + 1 node sharing one core."""
    rs = report["roles"]
    print("\nper-role throughput (each role alone on the tracker cores; medians):")
    print("| role | load | rps | rps per role CPU-s | role CPU util | node rps per node CPU-s "
          "(node on the load cores) |")
    print("| --- | --- | --- | --- | --- | --- |")
    model = {}
    for role, loads in (("gateway", modes),
                        ("node", sorted({r["mode"] for r in rs if r["role"] == "node"},
                                        key=lambda x: -int(x.split()[1])))):
        for m in loads:
            sel = [r for r in rs if r["role"] == role and r["mode"] == m]
            if not sel:
                continue
            s = {"rps": med([r["rps"] for r in sel]), "per_cpu": med([r["rps_per_cpu"]
                                                                   for r in sel]),
                 "cpu": med([r["cpu_util"] for r in sel])}
            node = med([r["node_rps_per_cpu"] for r in sel]) if role == "gateway" else 0
            print(f"| {role} | {m} | {fmt_int(s['rps'])} | {fmt_int(s['per_cpu'])} | "
                  f"{s['cpu']:.2f} | {fmt_int(node) if node else '-'} |")
            if role == "gateway" and s["per_cpu"] and node:
                model[m] = 1 / (1 / s["per_cpu"] + 1 / node)
    if model:
        print("\n1 gateway + 1 node sharing one core, predicted from the gateway-alone run as "
              "1 / (1/G + 1/N) (G, N: responses per CPU-s of each role at that load):")
        for m, v in model.items():
            got = summary.get(("cluster", m))
            print(f"  {m}: predicted {fmt_int(v)} rps" +
                  (f", measured {fmt_int(got['rps'])} ({got['rps'] / v:.2f} of predicted)"
                   if got else ""))
    report["roles_model"] = model


if __name__ == "__main__":
    main()
