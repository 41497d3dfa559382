#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.workers: a shoal-node with several workers, one ZeroMQ socket each (issue 15).

Processes (loopback, static member lists, no Redis):
  n3        shoal-node --workers 3: worker i's ROUTER at port P + i
  gw        shoal-gateway --workers 2 with "n3=tcp://127.0.0.1:P|workers=3"
  c2, cgw   shoal-node --workers 2 and a gateway, both with CURVE (shoal-keygen certificates)
Checks: the node listens on P, P+1 and P+2; announces from a real UDP client through the gateway
are answered and meet; every worker's socket served batches (the node's
shoal_node_worker_batches_total by worker); pipelined HTTP over swarms of every worker is
answered in order with each swarm's counts in order; a node whose neighbour port is taken exits 2
naming the ports; with an ephemeral port ("*") the workers get the ports after worker 0's (and a
static list that gives the node no worker count is warned about); CURVE with two workers serves
through the gateway.

Every process is stopped by its PID; every wait is a bounded poll.

    /usr/bin/python3 tests/integration/test_workers.py --gateway build/cmd/shoal-gateway \\
        --node build/cmd/shoal-node --keygen build/cmd/shoal-keygen [-k NAME]
"""

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import Node, tcp_open, wait_until  # noqa: E402
from test_cluster import peer_id, pipeline, udp_announce  # noqa: E402
from trackerclient import (check, eq, EV_STARTED, Daemon, HttpConn, free_port,  # noqa: E402
                           http_get)

SECRET = secrets.token_hex(32)
TESTS, test = clusterlib.step_list()


class Env:
    def __init__(self, args):
        self.gateway_bin = os.path.abspath(args.gateway)
        self.node_bin = os.path.abspath(args.node)
        self.keygen = os.path.abspath(args.keygen)
        self.dir = tempfile.mkdtemp(prefix="shoal-test-workers-")
        self.nodes = {}
        self.gateways = {}
        self.partition = None

    def node(self, node_id, workers, advert_extra="", extra=()):
        port = free_port(count=workers)
        admin = free_port()
        members = "%s=tcp://127.0.0.1:%d|workers=%d%s" % (node_id, port, workers, advert_extra)
        n = Node(self.node_bin, node_id, ("nodes", members), port=port, workers=workers,
                 extra=["--admin", "127.0.0.1:%d" % admin] + list(extra))
        n.admin = admin
        n.members = members
        self.nodes[node_id] = n.start()
        return n

    def gateway(self, name, members, extra=()):
        argv = lambda port: [  # noqa: E731
            self.gateway_bin, "--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
            "--nodes", members, "--secret", SECRET, "--workers", "2", "--admin", "off",
            "--log-level", "info"] + list(extra)
        d = Daemon(name, argv, preexec_fn=clusterlib.die_with_parent)
        self.gateways[name] = d
        d.start()
        return d

    def logs(self):
        out = [clusterlib.stderr_tail(name, d.proc and d.proc.pid, d.stderr_text())
               for name, d in self.gateways.items()]
        for n in self.nodes.values():
            if n.proc:
                out.append(clusterlib.stderr_tail("node " + n.id, n.proc.pid, n.stderr_text(),
                                                  15))
        return "\n".join(out)

    def stop_all(self):
        for d in self.gateways.values():
            d.stop()
        for n in self.nodes.values():
            n.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


ENV = None


def worker_batches(node):
    """shoal_node_worker_batches_total by worker, from the node's /metrics."""
    text = http_get("127.0.0.1", node.admin, "/metrics").body.decode()
    return {int(w): int(v) for w, v in
            re.findall(r'^shoal_node_worker_batches_total\{worker="(\d+)"\} (\d+)$', text, re.M)}


def announce_all(port, hashes, tag, peer_base, left):
    out = []
    for i, h in enumerate(hashes):
        r = udp_announce(port, h, peer_id(i, tag), peer_base + i, left=left, event=EV_STARTED)
        check("error" not in r, "announce %d: %r" % (i, r))
        out.append(r)
    return out


@test
def node_listens_on_consecutive_ports():
    n = ENV.node("n3", 3)
    for i in range(3):
        # Polled (bounded): one connect with a 0.2 s timeout missed once on a loaded CI machine.
        check(wait_until(lambda: tcp_open(n.port + i), 5, 0.05),
              "worker %d listens on %d" % (i, n.port + i))
    # The start line comes once every part runs, a little after the ports listen.
    check(wait_until(lambda: "with 3 workers (one port each)" in n.stderr_text(), 5),
          "the start line says so")
    ENV.gateway("gw", n.members)


@test
def udp_announces_are_answered_and_meet():
    port = ENV.gateways["gw"].port
    hashes = [secrets.token_bytes(20) for _ in range(120)]
    # The gateway connects to the sockets asynchronously: the first may fail retryably.
    wait_until(lambda: "error" not in udp_announce(port, hashes[0], peer_id(0, ord("z")), 9,
                                                   left=0), 5)
    announce_all(port, hashes, ord("a"), 20000, left=0)
    second = announce_all(port, hashes, ord("b"), 30000, left=5)
    for i, r in enumerate(second):
        check(("127.0.0.1", 20000 + i) in r["peers"], "swarm %d: the first peer is handed out" % i)
    ENV.hashes = hashes


@test
def every_worker_socket_serves_batches():
    b = worker_batches(ENV.nodes["n3"])
    eq(sorted(b), [0, 1, 2], "one counter per worker")
    check(all(v > 0 for v in b.values()), "every worker served batches: %r" % b)


@test
def pipelined_swarms_on_every_worker_keep_their_order():
    # Swarms whose partitions land on different workers (all 120 hashes span the three); the
    # counts each answer must see follow request order.
    port = ENV.gateways["gw"].port
    hashes = [secrets.token_bytes(20) for _ in range(6)]
    reqs, checks = pipeline(hashes, 40, 36, ord("p"))
    with HttpConn("127.0.0.1", port, timeout=5) as c:
        c.pipelined_until_eof(reqs, checks, 37)


@test
def taken_neighbour_port_is_a_clear_error():
    busy = ENV.nodes["n3"].port  # worker 0's port of the running node
    low = busy - 2
    ep = "tcp://127.0.0.1:%d" % low
    r = subprocess.run([ENV.node_bin, "--id", "x", "--nodes", "x=" + ep, "--bind", ep,
                        "--workers", "3", "--admin", "off"], capture_output=True, text=True,
                       timeout=10)
    eq(r.returncode, 2, "exit 2 when a worker's port is taken")
    check("--workers 3 needs ports %d-%d: cannot bind" % (low, busy) in r.stderr,
          "names the ports: %s" % r.stderr)


@test
def ephemeral_port_gets_consecutive_neighbours():
    # "tcp://H:*": worker 0 takes a free port below the system's range for outgoing connections,
    # the others the ones after it.
    p = subprocess.Popen([ENV.node_bin, "--id", "e", "--nodes", "e=tcp://127.0.0.1:1", "--bind",
                          "tcp://127.0.0.1:*", "--workers", "3", "--admin", "off"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, preexec_fn=clusterlib.die_with_parent)
    try:
        # The list gives e no worker count: a warning first (bounded by the process), then the
        # start line.
        warning = p.stderr.readline()
        check("--nodes gives e 1 worker but it runs --workers 3" in warning, warning)
        line = p.stderr.readline()
        m = re.search(r"serving tcp://127\.0\.0\.1:(\d+) ", line)
        check(m is not None, "start line: %s" % line)
        base = int(m.group(1))
        for i in range(3):
            check(wait_until(lambda: tcp_open(base + i), 5, 0.05),
                  "worker %d listens on %d" % (i, base + i))
    finally:
        p.terminate()
        p.wait(timeout=10)
        p.stderr.close()


@test
def curve_with_two_workers_serves():
    keys = {}
    for who in ("node", "gw"):
        path = os.path.join(ENV.dir, who)
        r = subprocess.run([ENV.keygen, path], capture_output=True, text=True, timeout=10)
        eq(r.returncode, 0, "shoal-keygen %s: %s" % (who, r.stderr))
        keys[who] = r.stdout.strip()
        os.makedirs(os.path.join(ENV.dir, who + "-trusts"))
    shutil.copy(os.path.join(ENV.dir, "gw"), os.path.join(ENV.dir, "node-trusts", "gw"))
    shutil.copy(os.path.join(ENV.dir, "node"), os.path.join(ENV.dir, "gw-trusts", "node"))
    n = ENV.node("c2", 2, "|curve=" + keys["node"],
                 ["--curve-cert", os.path.join(ENV.dir, "node_secret"),
                  "--curve-trust", os.path.join(ENV.dir, "node-trusts")])
    gw = ENV.gateway("cgw", n.members, ["--curve-cert", os.path.join(ENV.dir, "gw_secret"),
                                        "--curve-trust", os.path.join(ENV.dir, "gw-trusts")])
    hashes = [secrets.token_bytes(20) for _ in range(60)]
    wait_until(lambda: "error" not in udp_announce(gw.port, hashes[0], peer_id(0, ord("y")), 9,
                                                   left=0), 5)
    announce_all(gw.port, hashes, ord("c"), 40000, left=0)
    b = worker_batches(n)
    eq(sorted(b), [0, 1], "one counter per worker")
    check(all(v > 0 for v in b.values()), "both CURVE sockets served batches: %r" % b)


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", required=True, help="path to shoal-gateway")
    ap.add_argument("--node", required=True, help="path to shoal-node")
    ap.add_argument("--keygen", required=True, help="path to shoal-keygen")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.gateway, args.node, args.keygen], redis=False)
    if rc is not None:
        return rc
    ENV = Env(args)
    return clusterlib.run_steps(TESTS, args.k, ENV.logs, ENV.stop_all)


if __name__ == "__main__":
    sys.exit(main())
