# SPDX-License-Identifier: MIT
"""The failover part of bench.py (--failover): what snapshots to Redis cost and what a node's
death costs. Three measurements, each with its exact setup in the report:

  snapshots   standalone shoal with and without --redis (snapshots every 1000 ms), UDP load,
              alternating rounds; the tracker and redis-server both pinned to the tracker cores,
              so the snapshot's whole cost (keeper thread and Redis) is on the same core budget.
              Reported: responses/s on and off, their ratio, CPU of shoal and of Redis.
  size        shoal-bench-snapshot on the tracker cores: the time to snapshot N peers (walk,
              encode, fenced writes) and to restore them into an empty repository (fence, load,
              merge), and the bytes per peer in Redis.
  window      3 nodes + 1 gateway + redis (default membership timings: heartbeat 1000 ms,
              member ttl 3000 ms, gateway poll 1000 ms): a probe announces to hashes owned by one
              node every 10 ms; that node is SIGKILLed; the unanswered window is the time from the
              kill to the first answer for its partitions, and the restore completeness is the
              share of its swarms (announced > 1 interval before the kill) returned afterwards.

Every process is started on loopback ports found free, pinned with taskset, and stopped by its
PID; every wait is bounded."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import clusterlib  # noqa: E402
from trackerclient import ProtocolError, UdpTracker, pack_announce  # noqa: E402

import bench  # noqa: E402


def pinned_redis(cores):
    """A private redis-server (clusterlib.Redis: loopback, no persistence) pinned to cores."""
    return clusterlib.Redis(wrap=["taskset", "-c", cores]).start()


def snapshots_on_off(args, workdir, cores):
    """Alternating rounds of standalone shoal without and with --redis, UDP load."""
    redis = pinned_redis(args.tracker_cores)
    res = {"off": [], "on": [], "redis_cpu": [], "shoal_cpu_on": [], "shoal_cpu_off": []}
    try:
        for rnd in range(args.rounds):
            for mode in ("off", "on"):
                port = bench.free_port()
                t = bench.make_shoal(args, port, workdir, cores)
                if mode == "on":
                    t.argv += ["--redis", redis.url, "--snapshot-interval", "1000"]
                t.start()
                try:
                    rc0 = redis.cpu_seconds()
                    r = bench.measure(args, t, "udp")
                    if r.get("errors", 0) or r.get("invalid", 0):
                        raise RuntimeError(f"shoal ({mode}) gave errors or invalid replies: {r}")
                    res[mode].append(r["rps"])
                    res["shoal_cpu_" + mode].append(r["cpu_util"])
                    if mode == "on":
                        wall = args.duration + args.warmup
                        res["redis_cpu"].append((redis.cpu_seconds() - rc0) / wall)
                    bench.log(f"  snapshots {mode} round {rnd + 1}: {bench.fmt_int(r['rps'])} "
                              f"responses/s, shoal cpu {r['cpu_util']:.2f}")
                finally:
                    t.stop()
                redis.command("FLUSHALL")
    finally:
        redis.stop()
    on, off = bench.med(res["on"]), bench.med(res["off"])
    return {"on_rps": on, "off_rps": off, "ratio": on / off if off else 0.0,
            "redis_cpu": bench.med(res["redis_cpu"]),
            "shoal_cpu_on": bench.med(res["shoal_cpu_on"]),
            "shoal_cpu_off": bench.med(res["shoal_cpu_off"]), "rounds": res}


def snapshot_size(args, workdir, swarms, peers_per):
    """shoal-bench-snapshot pinned to the tracker cores with its redis there too."""
    redis = pinned_redis(args.tracker_cores)
    try:
        argv = ["taskset", "-c", args.tracker_cores, args.bench_snapshot, "--redis", redis.url,
                "--swarms", str(swarms), "--peers-per", str(peers_per)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"shoal-bench-snapshot failed ({out.returncode}): "
                               f"{out.stderr[-2000:]}")
    finally:
        redis.stop()
    result = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            parts = line.split()
            for kv in parts[2:]:
                k, _, v = kv.partition("=")
                result[parts[1] + "_" + k] = float(v)
    return result


def partition_of(h):
    return (h[0] << 4) | (h[1] >> 4)


def kill_window(args, workdir, n_hashes):
    """3 nodes + 1 gateway + redis on the tracker cores; SIGKILL the owner of a known set."""
    redis = pinned_redis(args.tracker_cores)
    nodes, procs = {}, []
    logs = []

    def spawn(name, argv):
        log = open(os.path.join(workdir, f"{name}.stderr"), "ab")
        logs.append(log)
        p = subprocess.Popen(["taskset", "-c", args.tracker_cores] + argv,
                             stdout=subprocess.DEVNULL, stderr=log)
        procs.append(p)
        return p

    try:
        for i in range(3):
            zport = bench.free_port()
            nid = f"n{i}"
            nodes[nid] = spawn(nid, [args.node, "--id", nid, "--bind",
                                     f"tcp://127.0.0.1:{zport}", "--redis", redis.url,
                                     "--workers", "1", "--log-level", "info"])
        port = bench.free_port()
        spawn("gateway", [args.gateway, "--udp", f"127.0.0.1:{port}", "--http", "off",
                          "--redis", redis.url, "--workers", "1", "--log-level", "warn"])
        deadline = time.monotonic() + 20
        while not bench.udp_announce_ok(port):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not answer within 20 s")
            time.sleep(0.1)
        rng = random.Random(7)
        hashes = [bytes(rng.getrandbits(8) for _ in range(20)) for _ in range(n_hashes)]
        def read_owners():
            out = {}
            for h in hashes:
                p = partition_of(h)
                if p not in out:
                    out[p] = redis.command("GET", f"shoal:{{p{p}}}:owner")
            return out

        # Wait until the three nodes have shared the partitions out and the owners stay put
        # (nodes that start together hand partitions to each other for a moment).
        deadline = time.monotonic() + 30
        owners = read_owners()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = read_owners()
            names = {v for v in now.values()}
            if now == owners and len(names) == 3 and all(v.startswith(b"$2\r\nn")
                                                         for v in names):
                break
            owners = now
        with UdpTracker("127.0.0.1", port, timeout=1.0) as u:
            cid = u.connect()
            for i, h in enumerate(hashes):
                u.announce(h, b"A" * 20, 1000 + i, left=10, conn_id=cid)
        # Until every announced swarm's partition has a snapshot in Redis (bounded): a node
        # that was still taking a partition over writes it once it holds it.
        parts = sorted({partition_of(h) for h in hashes})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(redis.command("EXISTS", f"shoal:{{p{p}}}:snap") == b":1\r\n" for p in parts):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the announced swarms did not reach the snapshots within 20 s")
        # Two more snapshot intervals (1000 ms): announces that came after a partition's first
        # write reach its next one.
        time.sleep(2.5)
        owners = read_owners()
        mine = [h for h in hashes if owners[partition_of(h)] == b"$2\r\nn1\r\n"]
        if not mine:
            raise RuntimeError("no probe hash is owned by n1")
        probe_ok = []
        stop = threading.Event()

        def probe():
            with UdpTracker("127.0.0.1", port, timeout=0.1) as u:
                cid = u.connect()
                k = 0
                while not stop.is_set():
                    h = mine[k % len(mine)]
                    k += 1
                    t = time.monotonic()
                    tid = u.new_tid()
                    try:
                        reply = u.request(pack_announce(cid, tid, h, b"P" * 20, 40000, left=10),
                                          tid, tries=1)
                        u.parse_announce(reply, tid)  # an error reply raises
                        probe_ok.append(t)
                    except (TimeoutError, ProtocolError):
                        pass
                    time.sleep(0.01)

        th = threading.Thread(target=probe, daemon=True)
        th.start()
        time.sleep(1.0)
        t_kill = time.monotonic()
        nodes["n1"].send_signal(signal.SIGKILL)
        deadline = t_kill + 30
        while time.monotonic() < deadline and not any(t > t_kill for t in probe_ok):
            time.sleep(0.02)
        time.sleep(0.5)
        stop.set()
        th.join(timeout=5)
        after = [t for t in probe_ok if t > t_kill]
        before = [t for t in probe_ok if t <= t_kill]
        window = (after[0] - t_kill) if after else float("inf")
        # Restore completeness: every victim hash still returns peer A.
        found = 0
        all_ok = None
        with UdpTracker("127.0.0.1", port, timeout=1.0) as u:
            cid = u.connect()
            for i, h in enumerate(mine):
                deadline = time.monotonic() + 15
                while True:  # until the partition's new owner answers (bounded)
                    try:
                        r = u.announce(h, b"C" * 20, 50000 + i, left=10, conn_id=cid,
                                       numwant=200)
                        break
                    except (TimeoutError, ProtocolError):
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                if any(p[1] == 1000 + hashes.index(h) for p in r["peers"]):
                    found += 1
            all_ok = time.monotonic() - t_kill
        return {"window_s": window, "all_answered_by_s": all_ok, "last_ok_before_kill_s": (t_kill - before[-1]) if before
                else None, "victim_hashes": len(mine), "restored": found,
                "completeness": found / len(mine)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        for log in logs:
            log.close()
        redis.stop()


def failover_bench(args, workdir, cores):
    """All three; returns a dict for the report and the JSON."""
    out = {}
    bench.log("failover: snapshots on vs off (standalone, UDP)")
    out["snapshots"] = snapshots_on_off(args, workdir, cores)
    swarms = 2000 if args.smoke else 100000
    bench.log(f"failover: snapshot and restore of {swarms * 10} peers")
    out["size"] = snapshot_size(args, workdir, swarms, 10)
    bench.log("failover: unanswered window after a SIGKILL")
    out["window"] = kill_window(args, workdir, 300 if args.smoke else 2000)
    return out


def print_failover(fo):
    s, z, w = fo["snapshots"], fo["size"], fo["window"]
    print("\n## Failover\n")
    print("| measurement | result |\n| --- | --- |")
    print(f"| UDP responses/s, snapshots off / on (1000 ms) | {bench.fmt_int(s['off_rps'])} / "
          f"{bench.fmt_int(s['on_rps'])} = **{s['ratio']:.2f}x** |")
    print(f"| CPU with snapshots on: shoal / redis-server | {s['shoal_cpu_on']:.2f} / "
          f"{s['redis_cpu']:.2f} core (off: shoal {s['shoal_cpu_off']:.2f}) |")
    print(f"| snapshot of {int(z.get('snapshot_peers', 0)):,} peers (walk + encode + fenced "
          f"writes) | {z.get('snapshot_cycle_ms', 0):.0f} ms (walk + encode "
          f"{z.get('snapshot_export_ms', 0):.0f} ms), {z.get('snapshot_bytes_per_peer', 0):.1f} "
          f"bytes/peer |")
    print(f"| restore of {int(z.get('restore_peers', 0)):,} peers into an empty node | "
          f"{z.get('restore_restore_ms', 0):.0f} ms |")
    print(f"| unanswered window after SIGKILL (member ttl 3000 ms): first answer for the killed "
          f"node's partitions | {w['window_s']:.2f} s (every one of its swarms answered by "
          f"{w['all_answered_by_s']:.2f} s) |")
    print(f"| restore completeness (swarms of the killed node) | {w['restored']}/"
          f"{w['victim_hashes']} = {100 * w['completeness']:.1f} % |")
