#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.curve: CURVE between gateways and nodes, with real redis-server, shoal-node,
shoal-gateway and shoal-keygen processes on loopback.

  keygen      shoal-keygen writes czmq's pair (PATH, PATH_secret 0600), never overwrites, exit 2
              on bad arguments;
  options     bad --curve-cert / --curve-trust combinations stop both daemons at start (exit 2);
  cluster     2 CURVE nodes (their keys advertised in Redis) and a gateway with a trusted key:
              announces served;
  refusals    a gateway with an untrusted key, and one without CURVE (refusing CURVE nodes, or
              told by a static list that a node is plaintext), get nothing from the nodes
              (retryable failures), and the nodes or the gateway count and log why; a gateway
              trusting only one node serves that node's partitions only; a plaintext DEALER
              (shoal-node-client) and a raw TCP client get no data from a CURVE node, while the
              same from a plaintext node does;
  rotation    a gateway's key and a node's key replaced while announces keep flowing through
              the gateway: add the new public key, SIGHUP, swap the certificate, remove the old.

Invariant: every process is started on ports found free just before, dies with this script
(PR_SET_PDEATHSIG) and is stopped by its PID; every wait is a bounded poll.

    /usr/bin/python3 tests/integration/test_curve.py --gateway build/cmd/shoal-gateway \\
        --node build/cmd/shoal-node --keygen build/cmd/shoal-keygen \\
        --client build/tests/shoal-node-client [-k NAME]
Exit code 77 (skipped) if redis-server is not installed.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import Node, Redis, wait_until  # noqa: E402
from trackerclient import (check, eq, Daemon, HttpConn, announce_target, free_port,  # noqa: E402
                           get_request, http_get)

SECRET = secrets.token_hex(32)
NODE_TIMEOUT_MS = 400
FAIL_TIMEOUT = "tracker node not answering, retry later"


class Env:
    def __init__(self, args):
        self.gateway_bin = os.path.abspath(args.gateway)
        self.node_bin = os.path.abspath(args.node)
        self.keygen = os.path.abspath(args.keygen)
        self.client = os.path.abspath(args.client)
        self.dir = tempfile.mkdtemp(prefix="shoal-test-curve-")
        self.redis = None
        self.nodes = {}
        self.gateways = {}
        self.procs = []
        self.keys = {}  # name -> public key

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def newkey(self, name):
        r = subprocess.run([self.keygen, self.path("keys", name)], capture_output=True, text=True,
                           timeout=10)
        eq(r.returncode, 0, "shoal-keygen %s: %s" % (name, r.stderr))
        self.keys[name] = r.stdout.strip()
        return self.path("keys", name)

    def trust(self, dirname, *names):
        d = self.path(dirname)
        os.makedirs(d, exist_ok=True)
        for n in names:
            shutil.copy(self.path("keys", n), os.path.join(d, n))
        return d

    def node(self, node_id, cert, trust, extra=()):
        admin = free_port()
        n = Node(self.node_bin, node_id, ("redis", self.redis.url),
                 extra=["--heartbeat-interval", "200", "--member-ttl", "2000", "--snapshot-interval",
                        "0", "--admin", "127.0.0.1:%d" % admin, "--curve-cert", cert,
                        "--curve-trust", trust] + list(extra))
        n.admin = admin
        self.nodes[node_id] = n.start()
        return n

    def gateway(self, name, curve=None, membership=None):
        admin = free_port()
        kind, value = membership or ("redis", self.redis.url)
        extra = ["--curve-cert", curve[0], "--curve-trust", curve[1]] if curve else []
        argv = lambda port: [  # noqa: E731
            self.gateway_bin, "--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
            "--" + kind, value, "--secret", SECRET, "--workers", "2",
            "--membership-interval", "100", "--node-timeout", str(NODE_TIMEOUT_MS),
            "--interval", "600", "--log-level", "info", "--admin", "127.0.0.1:%d" % admin] + extra
        d = Daemon(name, argv, preexec_fn=clusterlib.die_with_parent)
        d.start()
        d.admin = admin
        self.gateways[name] = d
        return d

    def stop_all(self):
        for d in self.gateways.values():
            d.stop()
        for n in self.nodes.values():
            n.cleanup()
        for p in self.procs:
            p.cleanup()
        if self.redis:
            self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = []
        for name, d in self.gateways.items():
            out.append(clusterlib.stderr_tail(name, d.proc and d.proc.pid, d.stderr_text()))
        for n in self.nodes.values():
            if n.proc:
                out.append(clusterlib.stderr_tail("node " + n.id, n.proc.pid, n.stderr_text(), 15))
        return "\n".join(out)


ENV = None
TESTS, test = clusterlib.step_list()
HASHES = [bytes([i]) + secrets.token_bytes(19) for i in range(64)]


def metric(admin, name, labels=""):
    """The value of name{labels} on the admin listener at port admin (None if absent)."""
    r = http_get("127.0.0.1", admin, "/metrics")
    eq(r.status, 200, "/metrics")
    want = name + ("{%s}" % labels if labels else "")
    for line in r.body.decode().splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def announce(gw, info_hash, i, timeout=3.0):
    """One HTTP announce through gateway gw: 'ok' or the failure reason."""
    with HttpConn("127.0.0.1", gw.port, timeout=timeout) as c:
        c.send(get_request(announce_target(info_hash, b"-CV0001-%012d" % i, 20000 + i % 40000,
                                           left=0, event="started", compact=1)))
        r = c.read_response()
    eq(r.status, 200, "HTTP status")
    d = r.bencoded()
    return d[b"failure reason"].decode() if b"failure reason" in d else "ok"


def owner_of(info_hash):
    """The node (n1 or n2) holding info_hash's swarm, from the nodes' admin API."""
    for n in ("n1", "n2"):
        r = http_get("127.0.0.1", ENV.nodes[n].admin, "/api/v1/torrents/" + info_hash.hex())
        if r.status == 200:
            return n
    return None


def served(gw, hashes):
    return [announce(gw, h, i) for i, h in enumerate(hashes)]


def run(argv, timeout=15):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=clusterlib.die_with_parent)


# ---- shoal-keygen and the start-time checks ---------------------------------------------------


@test
def keygen_writes_a_pair_and_never_overwrites():
    os.makedirs(ENV.path("keys"))
    p = ENV.newkey("probe")
    check(re.fullmatch(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}", ENV.keys["probe"]),
          "a 40-character Z85 public key printed: %r" % ENV.keys["probe"])
    pub, sec = open(p).read(), open(p + "_secret").read()
    check('public-key = "%s"' % ENV.keys["probe"] in pub, "public part: %s" % pub)
    check("secret-key" not in pub and "secret-key" in sec, "secret key only in PATH_secret")
    eq(stat.S_IMODE(os.stat(p + "_secret").st_mode), 0o600, "mode of the secret part")
    before = open(p + "_secret").read()
    r = run([ENV.keygen, p])
    eq(r.returncode, 1, "shoal-keygen over an existing pair")
    check("not overwritten" in r.stderr, r.stderr)
    eq(open(p + "_secret").read(), before, "the existing secret part")
    for argv in ([], ["a", "b"], ["--bogus"]):
        r = run([ENV.keygen] + argv)
        eq(r.returncode, 2, "shoal-keygen %s" % argv)
        check("usage: shoal-keygen PATH" in r.stderr, r.stderr)


@test
def bad_curve_options_stop_both_daemons_at_start():
    for name in ("n1", "n2", "g1", "gbad"):
        ENV.newkey(name)
    ENV.trust("node-trust", "g1")
    ENV.trust("gw-trust", "n1", "n2")
    os.makedirs(ENV.path("empty"))
    unreadable = ENV.path("keys", "nope_secret")
    cases = [
        (["--curve-trust", ENV.path("node-trust")], "--curve-trust needs --curve-cert"),
        (["--curve-cert", ENV.path("keys", "n1_secret")], "--curve-cert needs --curve-trust"),
        (["--curve-cert", ENV.path("node-trust", "g1"), "--curve-trust", ENV.path("node-trust")],
         "only a public key"),
        (["--curve-cert", unreadable, "--curve-trust", ENV.path("node-trust")],
         "No such file"),
        (["--curve-cert", ENV.path("keys", "n1_secret"), "--curve-trust", ENV.path("empty")],
         "no public certificate"),
        (["--curve-cert", ENV.path("keys", "n1_secret"), "--curve-trust", ENV.path("missing")],
         "No such file"),
    ]
    port = free_port()
    for extra, why in cases:
        for role, argv in (
                ("node", [ENV.node_bin, "--id", "x", "--bind", "tcp://127.0.0.1:%d" % port,
                          "--nodes", "x=tcp://127.0.0.1:%d" % port, "--admin", "off"]),
                ("gateway", [ENV.gateway_bin, "--udp", "127.0.0.1:%d" % port, "--http",
                             "127.0.0.1:%d" % port, "--nodes", "x=tcp://127.0.0.1:1",
                             "--admin", "off"])):
            r = run(argv + extra)
            eq(r.returncode, 2, "%s %s: %s" % (role, extra, r.stderr))
            check(why in r.stderr, "%s %s says %r: %s" % (role, extra, why, r.stderr))


# ---- a CURVE cluster --------------------------------------------------------------------------


@test
def curve_cluster_serves_a_trusted_gateway():
    ENV.redis = Redis().start()
    for n in ("n1", "n2"):
        ENV.node(n, ENV.path("keys", n + "_secret"), ENV.path("node-trust"))
    for n in ("n1", "n2"):  # registered at start, after the socket is bound: poll
        want = "%s|curve=%s" % (ENV.nodes[n].endpoint, ENV.keys[n])
        check(wait_until(lambda: ENV.redis.text("GET", "shoal:member:" + n) == want, 5),
              "%s's record in Redis: %r, want %r" % (
                  n, ENV.redis.text("GET", "shoal:member:" + n), want))
    gw = ENV.gateway("g1", (ENV.path("keys", "g1_secret"), ENV.path("gw-trust")))
    check(wait_until(lambda: "table: 2 nodes" in gw.stderr_text(), 10), "g1 sees 2 nodes")
    # Connections are up once both nodes answered once (a handshake may outlast a first try).
    check(wait_until(lambda: set(served(gw, HASHES[:8])) == {"ok"}, 5), "g1 reaches the nodes")
    eq(served(gw, HASHES), ["ok"] * len(HASHES), "announces through the trusted gateway")
    # The gateway's admin lookups go to the owner over CURVE too, each on a new connection (its
    # handshake within --node-timeout; a slow machine may need a second try: 503 is "retry").
    for h in HASHES[:16]:
        check(wait_until(lambda: http_get("127.0.0.1", gw.admin, "/api/v1/torrents/" + h.hex())
                         .status == 200, 5), "lookup of %s through g1" % h.hex())
    eq({owner_of(h) for h in HASHES}, {"n1", "n2"}, "both nodes hold swarms")
    for n in ENV.nodes.values():
        eq(metric(n.admin, "shoal_curve_refused_total", 'reason="key"'), 0, "refusals on " + n.id)
        eq(metric(n.admin, "shoal_curve_trusted_keys"), 1, "trusted keys on " + n.id)
    eq(metric(gw.admin, "shoal_curve_refused_total", 'reason="untrusted"'), 0, "g1 refusals")


@test
def gateway_with_an_untrusted_key_gets_nothing():
    gw = ENV.gateway("gbad", (ENV.path("keys", "gbad_secret"), ENV.path("gw-trust")))
    check(wait_until(lambda: "table: 2 nodes" in gw.stderr_text(), 10), "gbad sees 2 nodes")
    eq(set(served(gw, HASHES[:16])), {FAIL_TIMEOUT}, "announces through the untrusted gateway")
    for n in ENV.nodes.values():
        check(wait_until(lambda: metric(n.admin, "shoal_curve_refused_total",
                                        'reason="key"') >= 1, 5),
              "%s counts the untrusted key" % n.id)
        check(wait_until(lambda: "last untrusted key %s from 127.0.0.1" % ENV.keys["gbad"]
                         in n.stderr_text(), 5), "%s logs the refused key and address" % n.id)
    gw.stop()
    del ENV.gateways["gbad"]


@test
def gateway_without_curve_refuses_curve_nodes():
    gw = ENV.gateway("gplain")
    check(wait_until(lambda: "table: 2 nodes" in gw.stderr_text(), 10), "gplain sees 2 nodes")
    eq(set(served(gw, HASHES[:8])), {FAIL_TIMEOUT}, "announces through the plaintext gateway")
    text = gw.stderr_text()
    for n in ("n1", "n2"):
        check("not connecting to node %s" % n in text and "requires CURVE" in text,
              "gplain says why it refuses %s" % n)
    eq(text.count("not connecting to node n1"), 1, "logged once per node")
    eq(metric(gw.admin, "shoal_curve_refused_total", 'reason="curve_required"'), 2,
       "refused nodes counted")
    gw.stop()
    del ENV.gateways["gplain"]
    # A plaintext gateway told (by a static list without the key) that n1 is plaintext tries:
    # n1 refuses its handshake and serves it nothing.
    n1 = ENV.nodes["n1"]
    before = metric(n1.admin, "shoal_curve_refused_total", 'reason="handshake"')
    gw = ENV.gateway("gblind", membership=("nodes", "n1=" + n1.endpoint))
    eq(set(served(gw, HASHES[:8])), {FAIL_TIMEOUT}, "announces through the blind gateway")
    check(wait_until(lambda: metric(n1.admin, "shoal_curve_refused_total", 'reason="handshake"')
                     > before, 5), "n1 counts the plaintext gateway's failed handshakes")
    gw.stop()
    del ENV.gateways["gblind"]


@test
def gateway_trusting_one_node_serves_only_its_partitions():
    ENV.trust("gw-trust-n1", "n1")
    gw = ENV.gateway("gone", (ENV.path("keys", "g1_secret"), ENV.path("gw-trust-n1")))
    check(wait_until(lambda: "table: 2 nodes" in gw.stderr_text(), 10), "gone sees 2 nodes")
    owners = {h: owner_of(h) for h in HASHES}
    n1_hashes = [h for h in HASHES if owners[h] == "n1"][:4]
    check(wait_until(lambda: set(served(gw, n1_hashes)) == {"ok"}, 5), "gone reaches n1")
    got = dict(zip(HASHES, served(gw, HASHES)))
    for h in HASHES:
        eq(got[h], "ok" if owners[h] == "n1" else FAIL_TIMEOUT, "hash owned by %s" % owners[h])
    check("not connecting to node n2" in gw.stderr_text() and
          "not in --curve-trust" in gw.stderr_text(), "gone logs why n2 is refused")
    eq(metric(gw.admin, "shoal_curve_refused_total", 'reason="untrusted"'), 1, "one refused node")
    # The operator adds n2's key and reloads: n2's partitions are served too.
    ENV.trust("gw-trust-n1", "n2")
    gw.proc.send_signal(signal.SIGHUP)
    check(wait_until(lambda: "CURVE reload: 2 trusted keys" in gw.stderr_text(), 5),
          "gone reloads its trust dir")
    check(wait_until(lambda: set(served(gw, HASHES)) == {"ok"}, 5),
          "every partition served after the reload")
    gw.stop()
    del ENV.gateways["gone"]


# ---- raw peers ----------------------------------------------------------------------------------

BATCH = "send 1 a 1 %s %s 127.0.0.1 6881 2 0 10" % (HASHES[0].hex(), ("%040x" % 7))

# A ZMTP 3.0 greeting offering the NULL mechanism (RFC 23), then READY with a DEALER's socket type.
GREETING = (b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" +
            b"\0" * 31)
READY = b"\x04\x1c\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER"


def client_batch(endpoint):
    """One request batch through shoal-node-client (a plaintext DEALER): its output line."""
    r = subprocess.run([ENV.client, endpoint, "1500"], input=BATCH + "\n", capture_output=True,
                       text=True, timeout=10, preexec_fn=clusterlib.die_with_parent)
    return r.stdout.strip()


def raw_tcp(port):
    """What a raw TCP client that speaks plaintext ZMTP gets back before EOF or 1.5 s."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=1.5) as s:
        s.sendall(GREETING + READY)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                b = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            got += b
    return got


@test
def raw_dealer_and_tcp_get_no_data_from_a_curve_node():
    # The control: a plaintext node answers the same client and bytes.
    plain_port = free_port()
    plain = Node(ENV.node_bin, "p1", ("nodes", "p1=tcp://127.0.0.1:%d" % plain_port),
                 port=plain_port, extra=["--admin", "off"])
    ENV.nodes["p1"] = plain.start()
    out = client_batch(plain.endpoint)
    check('"replies"' in out or '"batch"' in out, "plaintext node answers the client: %s" % out)
    check(len(raw_tcp(plain_port)) > 64, "plaintext node sends READY after its greeting")

    n1 = ENV.nodes["n1"]
    before = metric(n1.admin, "shoal_curve_refused_total", 'reason="handshake"')
    eq(json.loads(client_batch(n1.endpoint)), {"timeout": True}, "plaintext DEALER to n1")
    got = raw_tcp(n1.port)
    check(len(got) <= 64, "raw TCP gets the greeting at most: %d bytes" % len(got))
    check(b"READY" not in got, "no READY (the handshake never completes): %r" % got)
    check(wait_until(lambda: metric(n1.admin, "shoal_curve_refused_total", 'reason="handshake"')
                     >= before + 2, 5), "n1 counts both failed handshakes")
    plain.cleanup()
    del ENV.nodes["p1"]


class Relay(clusterlib.Background):
    """A TCP relay from a free port to 127.0.0.1:target that keeps every byte it passes."""

    what = "TCP relay"

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.seen = bytearray()
        self.lock = threading.Lock()

    def pump(self, a, b):
        while not self.stop_flag.is_set():
            try:
                data = a.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            with self.lock:
                self.seen += data
            try:
                b.sendall(data)
            except OSError:
                break
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def loop(self):
        while not self.stop_flag.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            for x in (c, u):
                x.settimeout(0.1)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()
        self.lsock.close()

    def bytes_seen(self):
        with self.lock:
            return bytes(self.seen)


def through_relay(curve):
    """A node and a gateway (static list) with a relay between them, CURVE on or off: one
    announce through the gateway; returns (its outcome, every byte the relay carried, the
    announce's info-hash and peer id)."""
    node_port = free_port()
    relay = Relay(node_port)
    relay.start()
    name = "w%d" % int(curve)
    ep = "tcp://127.0.0.1:%d" % relay.port
    gw_curve = None
    node_extra = ["--admin", "off"]
    if curve:
        ENV.newkey(name)
        ENV.trust("wire-trust", name)
        ep += "|curve=" + ENV.keys[name]
        node_extra += ["--curve-cert", ENV.path("keys", name + "_secret"), "--curve-trust",
                       ENV.path("node-trust")]
        gw_curve = (ENV.path("keys", "g1_secret"), ENV.path("wire-trust"))
    members = "%s=%s" % (name, ep)
    node = Node(ENV.node_bin, name, ("nodes", members), port=node_port, extra=node_extra)
    ENV.nodes[name] = node.start()
    gw = ENV.gateway("gw-" + name, gw_curve, membership=("nodes", members))
    info_hash, pid = secrets.token_bytes(20), b"-CV0001-" + secrets.token_bytes(12)
    def one():
        with HttpConn("127.0.0.1", gw.port, timeout=3) as c:
            c.send(get_request(announce_target(info_hash, pid, 31337, left=0, event="started",
                                               compact=1)))
            d = c.read_response().bencoded()
        return d[b"failure reason"].decode() if b"failure reason" in d else "ok"
    try:
        # The first may beat the connection's handshake (a retryable failure): poll.
        outcome = wait_until(lambda: one() == "ok", 5) and "ok" or one()
    finally:
        gw.stop()
        del ENV.gateways["gw-" + name]
        node.cleanup()
        del ENV.nodes[name]
        relay.finish()
    return outcome, relay.bytes_seen(), info_hash, pid


@test
def traffic_between_gateway_and_node_is_encrypted():
    outcome, seen, info_hash, pid = through_relay(curve=False)
    eq(outcome, "ok", "announce through the plaintext relay")
    check(info_hash in seen and pid in seen, "the control: plaintext carries the announce as is")
    outcome, seen, info_hash, pid = through_relay(curve=True)
    eq(outcome, "ok", "announce through the relay with CURVE")
    check(len(seen) > 200, "the relay carried the CURVE handshake and the batch: %d bytes"
          % len(seen))
    check(info_hash not in seen and pid not in seen and b"CURVE" in seen,
          "with CURVE the info-hash and peer id never cross in clear")


# ---- rotation ---------------------------------------------------------------------------------


class Load(clusterlib.Background):
    """Announces through a gateway in a loop; counts the outcomes."""

    what = "announce load"

    def __init__(self, gw):
        super().__init__()
        self.gw = gw
        self.ok = self.failed = 0
        self.lock = threading.Lock()

    def loop(self):
        i = 0
        while not self.stop_flag.is_set():
            r = announce(self.gw, HASHES[i % len(HASHES)], i)
            with self.lock:
                if r == "ok":
                    self.ok += 1
                else:
                    self.failed += 1
            i += 1

    def counts(self):
        with self.lock:
            return self.ok, self.failed


@test
def keys_rotate_without_downtime():
    gw = ENV.gateways["g1"]
    load = Load(gw)
    load.start()
    try:
        check(wait_until(lambda: load.counts()[0] >= 20, 10), "load flows")
        # Gateway key: add the new public key to the nodes' trust dir and reload them ...
        ENV.newkey("g1new")
        ENV.trust("node-trust", "g1new")
        for n in ENV.nodes.values():
            n.proc.send(signal.SIGHUP)
            check(wait_until(lambda: "CURVE reload: 2 trusted keys" in n.stderr_text(), 5),
                  "%s takes the new gateway key" % n.id)
        # ... swap the gateway's certificate (same paths) and reload it: it reconnects ...
        for suffix in ("", "_secret"):
            shutil.copy(ENV.path("keys", "g1" + suffix), ENV.path("keys", "g1old" + suffix))
            os.replace(ENV.path("keys", "g1new" + suffix), ENV.path("keys", "g1" + suffix))
        gw.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: "new certificate " + ENV.keys["g1new"] in gw.stderr_text(), 5),
              "g1 takes its new certificate")
        # ... and remove the old key from the nodes.
        os.unlink(ENV.path("node-trust", "g1"))
        for n in ENV.nodes.values():
            n.proc.send(signal.SIGHUP)
            check(wait_until(lambda: n.stderr_text().count("CURVE reload: 1 trusted keys") >= 1,
                             5), "%s drops the old gateway key" % n.id)
        mark = load.counts()
        check(wait_until(lambda: load.counts()[0] >= mark[0] + 50, 10),
              "announces flow with the new gateway key")

        # Node key (n1): the gateway trusts the new key first, then n1 restarts with it (its
        # new key is advertised in Redis; the gateway connects with it).
        ENV.newkey("n1new")
        ENV.trust("gw-trust", "n1new")
        gw.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: "CURVE reload: 3 trusted keys" in gw.stderr_text(), 5),
              "g1 trusts n1's new key")
        n1 = ENV.nodes["n1"]
        n1.stop()
        for suffix in ("", "_secret"):
            os.replace(ENV.path("keys", "n1new" + suffix), ENV.path("keys", "n1" + suffix))
        n1.start()
        check(wait_until(lambda: ENV.redis.text("GET", "shoal:member:n1") ==
                         "%s|curve=%s" % (n1.endpoint, ENV.keys["n1new"]), 10),
              "n1 advertises its new key")
        os.unlink(ENV.path("gw-trust", "n1"))
        gw.proc.send_signal(signal.SIGHUP)
        check(wait_until(lambda: set(served(gw, HASHES)) == {"ok"}, 10),
              "every partition served after n1's new key")
        ok, failed = load.counts()
    finally:
        load.finish()
    # Only n1's restart may cost requests (its partitions wait for it): the key swaps none.
    check(failed <= ok // 4, "requests failed during the rotation: %d of %d" % (failed, ok + failed))
    # The old gateway key is refused now.
    old = ENV.gateway("gold", (ENV.path("keys", "g1old_secret"), ENV.path("gw-trust")))
    check(wait_until(lambda: "table: 2 nodes" in old.stderr_text(), 10), "gold sees 2 nodes")
    eq(set(served(old, HASHES[:8])), {FAIL_TIMEOUT}, "the old gateway key")
    old.stop()
    del ENV.gateways["gold"]


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", required=True, help="path to shoal-gateway")
    ap.add_argument("--node", required=True, help="path to shoal-node")
    ap.add_argument("--keygen", required=True, help="path to shoal-keygen")
    ap.add_argument("--client", required=True, help="path to shoal-node-client")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.gateway, args.node, args.keygen, args.client])
    if rc is not None:
        return rc
    ENV = Env(args)
    return clusterlib.run_steps(TESTS, args.k, ENV.logs, ENV.stop_all)


if __name__ == "__main__":
    sys.exit(main())
