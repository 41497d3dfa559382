#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.node: real `shoal-node` processes with a real redis-server on free loopback ports,
driven by `shoal-node-client` (a DEALER client encoding with proto/cmsg, one JSON line per reply).

Processes:
  redis     redis-server, no persistence
  a, b      shoal-node --redis, heartbeat 200 ms, ttl 1000 ms (a: 2 workers, one ROUTER each on
            consecutive ports; b: 1 worker), so both server shapes are covered
  static    shoal-node --nodes s1=...,s2=... (s2 never runs), started by its own test
Checks: both nodes converge on the epoch computed here independently (SipHash-2-4 in Python over
the sorted member set); an announce is served by the partition's owner and "moved" (with that
epoch) by the other node; a second announcer gets the first peer; scrape counts; a scrape
spanning owners is "moved"; admin lookups (lookup_remote) show the exact counts and peers, page,
and are "moved" by the non-owner; garbage frames and payloads do not kill a node and are logged; a
clean SIGTERM exits 0 and removes the member from Redis, after which the other node takes over
the partitions; a restart with the same id restores the same epoch; CLI errors.

Exits 77 (skipped) only when redis-server is not installed. Every wait is a bounded poll.

    /usr/bin/python3 tests/integration/test_node.py --node build/cmd/shoal-node \
        --client build/tests/shoal-node-client [-k NAME]
"""

import argparse
import json
import os
import random
import select
import struct
import subprocess
import sys
import time
import clusterlib  # noqa: E402
from clusterlib import Node, Redis  # noqa: E402
from trackerclient import check, eq, free_port, poll  # noqa: E402

LOCAL = "127.0.0.1"
HB_MS = 200
TTL_MS = 1000
RNG = random.Random(int.from_bytes(os.urandom(8), "big"))


def rhash():
    return bytes(RNG.getrandbits(8) for _ in range(20)).hex()


def peer_id(n):
    return ("-SN0001-%012d" % n).encode().hex()


# ---- the epoch, computed independently of the C code ------------------------------------------

M64 = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24(key, msg):
    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261,
         k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & M64
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M64
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M64
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M64
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    n = len(msg) // 8
    for i in range(n):
        m, = struct.unpack_from("<Q", msg, 8 * i)
        v[3] ^= m
        rnd()
        rnd()
        v[0] ^= m
    last = msg[8 * n:] + bytes(7 - len(msg) % 8) + bytes([len(msg) & 0xFF])
    m, = struct.unpack("<Q", last)
    v[3] ^= m
    rnd()
    rnd()
    v[0] ^= m
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


assert siphash24(bytes(range(16)), b"") == 0x726FDB47DD0E0E31  # the SipHash paper's vector


def epoch_of(members):
    """membership.h: SipHash-2-4("shoal/epoch/v1..", id\\0endpoint\\0 ... in id order), 0 -> 1."""
    buf = b"".join(i.encode() + b"\0" + e.encode() + b"\0" for i, e in sorted(members.items()))
    return siphash24(b"shoal/epoch/v1..", buf) or 1


# ---- nodes and the client ---------------------------------------------------------------------


class Client:
    """One shoal-node-client process (one DEALER socket) connected to one node."""

    def __init__(self, binary, endpoint, timeout_ms=2000):
        self.proc = subprocess.Popen([binary, endpoint, str(timeout_ms)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, bufsize=0)
        self.buf = b""
        self.timeout = timeout_ms / 1000 + 5
        self.next_batch = 1

    def _line(self):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("shoal-node-client gave no answer")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("shoal-node-client exited")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        return self._line()

    def batch(self, reqs):
        """Send one request batch (list of request strings); return the decoded reply batch."""
        bid = self.next_batch
        self.next_batch += 1
        r = self.command(("send %d " % bid) + ";".join(reqs))
        check("batch_id" in r, "no reply batch: %r" % r)
        eq(r["batch_id"], bid, "batch id echoed")
        eq(len(r["replies"]), len(reqs), "one reply per request")
        for q, rep in zip(reqs, r["replies"]):
            eq(rep["id"], int(q.split()[1]), "reply ids in request order")
        return r

    def one(self, req):
        return self.batch([req])["replies"][0]

    def epoch(self):
        return self.batch([])["epoch"]

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def announce(rid, ih, pid, ip, port, event=2, left=100, numwant=50):
    return "a %d %s %s %s %d %d %d %d" % (rid, ih, pid, ip, port, event, left, numwant)


def scrape(rid, hashes):
    return "s %d %s" % (rid, ",".join(hashes))


# ---- the environment ------------------------------------------------------------------------


class Env:
    def __init__(self, node_bin, client_bin):
        self.node_bin = node_bin
        self.client_bin = client_bin
        self.redis = None
        self.nodes = {}
        self.clients = []

    def node(self, node_id, membership, workers, port=None, extra=()):
        n = Node(self.node_bin, node_id, membership, port=port, extra=extra, workers=workers,
                 log_level="debug")
        self.nodes[node_id] = n
        return n.start()

    def redis_node(self, node_id, workers, port=None):
        return self.node(node_id, ("redis", self.redis.url), workers, port,
                         ["--heartbeat-interval", str(HB_MS), "--member-ttl", str(TTL_MS)])

    def client(self, node):
        c = Client(self.client_bin, node.endpoint)
        self.clients.append(c)
        return c

    def members(self, *ids):
        return {i: self.nodes[i].advert for i in ids}

    def stop_all(self):
        for c in self.clients:
            c.close()
        for n in self.nodes.values():
            n.cleanup()
        if self.redis:
            self.redis.stop()


ENV = None
TESTS, test = clusterlib.step_list()


def converge(clients, members, timeout=10):
    want = epoch_of(members)
    for c in clients:
        poll(lambda: c.epoch() == want, timeout, what="epoch %d of %s" % (want, sorted(members)))
    return want


def owned_hash(owner, other):
    """A random info-hash the node behind `owner` owns (probed with a side-effect-free scrape)."""
    for _ in range(200):
        ih = rhash()
        if owner.one(scrape(1, [ih]))["status"] == "ok":
            eq(other.one(scrape(1, [ih]))["status"], "moved", "exactly one owner")
            return ih
    raise AssertionError("no hash owned by this node in 200 tries")


# ---- tests: the two-node cluster ------------------------------------------------------------


@test
def nodes_converge_on_the_same_epoch():
    ca, cb = ENV.client(ENV.nodes["a"]), ENV.client(ENV.nodes["b"])
    want = converge([ca, cb], ENV.members("a", "b"))
    eq(ca.epoch(), cb.epoch(), "same epoch on both nodes")
    eq(ca.epoch(), want, "epoch = SipHash of the member set")
    eq(sorted(ENV.redis.text("SMEMBERS", "shoal:members")), ["a", "b"], "member set in Redis")
    eq(ENV.redis.text("GET", "shoal:member:a"), ENV.nodes["a"].advert, "a's advert (2 workers)")
    ttl = ENV.redis.text("PTTL", "shoal:member:b")
    check(0 < ttl <= TTL_MS, "member key expires within the ttl: %r" % ttl)


@test
def announce_served_by_owner_and_peers_returned():
    ca, cb = ENV.client(ENV.nodes["a"]), ENV.client(ENV.nodes["b"])
    converge([ca, cb], ENV.members("a", "b"))
    for owner, other in ((ca, cb), (cb, ca)):
        ih = owned_hash(owner, other)
        r1 = owner.one(announce(7, ih, peer_id(1), "10.1.2.3", 6881, left=500))
        eq(r1["status"], "ok", "first announce")
        eq((r1["seeders"], r1["leechers"], r1["peers"]), (0, 1, []), "first announcer alone")
        r2 = owner.one(announce(8, ih, peer_id(2), "10.4.5.6", 6882, left=0))
        eq((r2["seeders"], r2["leechers"]), (1, 1), "counts after the seeder")
        eq(r2["peers"], ["10.1.2.3:6881"], "the second announcer gets the first peer")
        eq(r2["family"], 4, "IPv4 records")
        # completed bumps downloaded; scrape agrees.
        owner.one(announce(9, ih, peer_id(1), "10.1.2.3", 6881, event=1, left=0))
        s = owner.one(scrape(10, [ih]))
        eq(s["stats"], [[2, 0, 1]], "scrape: 2 seeders, 0 leechers, 1 completed")


@test
def ipv6_peers_kept_apart():
    ca, cb = ENV.client(ENV.nodes["a"]), ENV.client(ENV.nodes["b"])
    converge([ca, cb], ENV.members("a", "b"))
    ih = owned_hash(ca, cb)
    ca.one(announce(1, ih, peer_id(1), "10.0.0.1", 1000))
    ca.one(announce(2, ih, peer_id(2), "2001:db8::1", 2000))
    r = ca.one(announce(3, ih, peer_id(3), "2001:db8::2", 3000))
    eq(r["family"], 6, "IPv6 records for an IPv6 announcer")
    eq(r["peers"], ["[2001:db8::1]:2000"], "only the IPv6 peer")
    eq(r["leechers"], 3, "counts span both families")


@test
def non_owner_answers_moved_with_its_epoch():
    ca, cb = ENV.client(ENV.nodes["a"]), ENV.client(ENV.nodes["b"])
    want = converge([ca, cb], ENV.members("a", "b"))
    ih_a = owned_hash(ca, cb)
    ih_b = owned_hash(cb, ca)
    r = cb.one(announce(5, ih_a, peer_id(1), "10.0.0.9", 9000))
    eq(r, {"id": 5, "status": "moved", "epoch": want}, "moved from the non-owner")
    eq(ca.one(scrape(1, [ih_a]))["stats"], [[0, 0, 0]], "a moved announce stores nothing")
    # A scrape whose hashes span owners is moved as a whole, on both nodes.
    for c in (ca, cb):
        eq(c.one(scrape(6, [ih_a, ih_b]))["status"], "moved", "scrape spanning owners")
    # A mixed batch: each request on its own, in order.
    r = ca.batch([announce(1, ih_a, peer_id(1), "10.0.0.1", 1), announce(2, ih_b, peer_id(2),
                  "10.0.0.2", 2), scrape(3, [ih_a])])
    eq([x["status"] for x in r["replies"]], ["ok", "moved", "ok"], "mixed batch statuses")
    eq(r["replies"][2]["stats"], [[0, 1, 0]], "scrape after the announce in the same batch")
    eq(r["epoch"], want, "the batch carries the node's epoch")


@test
def lookup_shows_counts_peers_and_pages():
    ca, cb = ENV.client(ENV.nodes["a"]), ENV.client(ENV.nodes["b"])
    want = converge([ca, cb], ENV.members("a", "b"))
    for owner, other in ((ca, cb), (cb, ca)):  # behind the proxy, and the worker's own ROUTER
        ih = owned_hash(owner, other)
        r = owner.command("lookup " + ih)
        check("status" in r, "a lookup answer: %r" % r)
        eq((r["status"], r["found"], r["total"], r["peers"]), ("ok", False, 0, []),
           "a swarm nobody announced")
        eq(r["epoch"], want, "the node's epoch")
        # 7 IPv4 peers (3 and 6 seed) and 2 IPv6 ones (the second seeds); then peer 1 completes.
        peers = [("10.9.0.%d" % i, 7000 + i, i % 3 == 0) for i in range(1, 8)]
        peers += [("2001:db8::%d" % i, 8000 + i, i == 2) for i in (1, 2)]
        for n, (ip, port, seeds) in enumerate(peers):
            owner.one(announce(n + 1, ih, peer_id(n + 1), ip, port, left=0 if seeds else 9,
                               numwant=0))
        owner.one(announce(99, ih, peer_id(1), "10.9.0.1", 7001, event=1, left=0, numwant=0))
        peers[0] = ("10.9.0.1", 7001, True)
        r = owner.command("lookup %s 0 100" % ih)
        eq((r["status"], r["found"]), ("ok", True), "the swarm is found")
        eq((r["seeders"], r["leechers"], r["downloaded"], r["total"], r["offset"]),
           (4, 5, 1, 9, 0), "counts")
        eq(owner.one(scrape(5, [ih]))["stats"], [[4, 5, 1]], "the same numbers as a scrape")
        fmt = lambda ip, port: ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port)  # noqa: E731
        eq(sorted((p["addr"], p["seeder"]) for p in r["peers"]),
           sorted((fmt(ip, port), seeds) for ip, port, seeds in peers), "every peer, once")
        order = [(p["addr"].startswith("["), p["seeder"]) for p in r["peers"]]
        eq(order, sorted(order), "IPv4 before IPv6, leechers before seeders in each")
        check(all(0 <= p["age"] <= 60 for p in r["peers"]), "ages in seconds: %r" % r["peers"])
        # Pages of 2 make up the same list; past the end a page is empty, counts still there.
        paged = []
        for off in range(0, 9, 2):
            pg = owner.command("lookup %s %d 2" % (ih, off))
            eq((pg["offset"], pg["total"], len(pg["peers"])), (off, 9, min(2, 9 - off)),
               "page at %d" % off)
            paged += pg["peers"]
        eq([p["addr"] for p in paged], [p["addr"] for p in r["peers"]], "pages concatenate")
        for off in (9, 1000):
            pg = owner.command("lookup %s %d 10" % (ih, off))
            eq((pg["found"], pg["total"], pg["seeders"], pg["peers"]), (True, 9, 4, []),
               "a page past the end at %d" % off)
        eq(len(owner.command("lookup %s 0 0" % ih)["peers"]), 0, "max 0: counts only")
        # The node that does not own the partition answers moved, with its epoch.
        eq(other.command("lookup " + ih), {"status": "moved", "epoch": want}, "moved")
        # Malformed lookups are garbage: no answer, the node lives and keeps serving.
        eq(owner.command("raw 970103000000"), {"sent": True}, "a truncated lookup sent")
        eq(owner.command("raw 9701030000000101"), {"sent": True}, "a lookup with a bad hash")
        eq(owner.command("wait 300"), {"timeout": True}, "no answer to a bad lookup")
        eq(owner.command("lookup %s 0 1" % ih)["total"], 9, "still serving lookups")
    # Nobody at the endpoint: the lookup gives up at its timeout.
    nobody = Client(ENV.client_bin, "tcp://%s:%d" % (LOCAL, free_port()), timeout_ms=300)
    ENV.clients.append(nobody)
    t0 = time.monotonic()
    eq(nobody.command("lookup " + rhash()), {"timeout": True}, "no node, no answer")
    check(0.25 <= time.monotonic() - t0 < 5, "gave up at the timeout")


@test
def every_worker_socket_serves():
    node = ENV.nodes["a"]  # 2 workers: worker 1's ROUTER is at the next port
    c = Client(ENV.client_bin, "tcp://%s:%d" % (LOCAL, node.port + 1))
    ENV.clients.append(c)
    eq(c.batch([])["replies"], [], "worker 1's socket answers a batch")
    eq(c.command("wait 100"), {"timeout": True}, "and nothing else")


@test
def garbage_does_not_kill_a_node():
    for name in ("a", "b"):  # a with 2 workers (a socket each), b with 1
        node = ENV.nodes[name]
        c = ENV.client(node)
        valid_empty = "950101000090"  # [1, 1, 0, 0, []]: an empty request batch
        garbage = [
            "raw deadbeef",
            "raw -",                                   # an empty frame
            "raw 950201000090",                        # version 2
            "raw 950102000090",                        # a reply batch sent as a request
            "raw 9501010000",                          # truncated
            "raw 950101000090ff",                      # a trailing byte
            "raw 95010100dd7fffffff",                  # an array claiming 2^31 requests
            "raw " + "c1" * 1000,                      # never-used msgpack byte
            "frames %s %s" % (valid_empty, valid_empty),  # two payload frames
            "frames - - -",
            "raw " + os.urandom(4000).hex(),
        ]
        for g in garbage:
            eq(c.command(g), {"sent": True}, "client sent %s" % g[:20])
        eq(c.command("wait 300"), {"timeout": True}, "no reply to garbage")
        check(node.alive(), "node %s survived garbage" % name)
        eq(c.batch([])["replies"], [], "still serving after garbage")
        # A frame beyond any valid batch (1313304 bytes): libzmq drops that connection rather
        # than buffer it; the node lives and the client's socket reconnects.
        eq(c.command("zeros 4000000"), {"sent": True}, "client sent an oversized frame")
        check(node.alive(), "node %s survived an oversized frame" % name)
        c2 = ENV.client(node)
        eq(c2.batch([])["replies"], [], "serving others after an oversized frame")
        poll(lambda: c.command("send 999").get("batch_id") == 999, 10, step=0.2,
             what="the dropped client to be served again")
        poll(lambda: "garbage messages" in node.stderr_text(), 5, what="a garbage log line")


@test
def clean_sigterm_leaves_redis_and_owner_takes_over():
    ca, cb = ENV.client(ENV.nodes["a"]), ENV.client(ENV.nodes["b"])
    converge([ca, cb], ENV.members("a", "b"))
    ih_b = owned_hash(cb, ca)
    b = ENV.nodes["b"]
    eq(b.terminate(), 0, "exit status after SIGTERM")
    check("served" in b.stderr_text(), "final counters logged")
    eq(ENV.redis.text("SISMEMBER", "shoal:members", "b"), 0, "b left the member set")
    eq(ENV.redis.text("EXISTS", "shoal:member:b"), 0, "b's key is gone")
    # a rebuilds its table for {a} well before b's key could have expired, and serves b's part.
    want = epoch_of(ENV.members("a"))
    t0 = time.monotonic()
    poll(lambda: ca.epoch() == want, 5, what="a's epoch for {a}")
    check(time.monotonic() - t0 < TTL_MS / 1000 + 1, "the change is seen within a poll or two")
    eq(ca.one(announce(1, ih_b, peer_id(1), "10.0.0.1", 1))["status"], "ok", "a serves b's part")
    # b restarts with the same id and port: the same member set, hence the same epoch.
    b.start()
    cb2 = ENV.client(b)
    converge([ca, cb2], ENV.members("a", "b"))
    eq(cb2.one(scrape(1, [ih_b]))["status"], "ok", "b owns its partitions again")


@test
def static_member_list_without_redis():
    s1_port, s2_port = free_port(), free_port()
    nodes = "s1=tcp://%s:%d,s2=tcp://%s:%d" % (LOCAL, s1_port, LOCAL, s2_port)
    s1 = ENV.node("s1", ("nodes", nodes), 1, s1_port)
    c = ENV.client(s1)
    want = epoch_of({"s1": "tcp://%s:%d" % (LOCAL, s1_port),
                     "s2": "tcp://%s:%d" % (LOCAL, s2_port)})
    poll(lambda: c.epoch() == want, 10, what="the static node to answer")
    statuses = set()
    for _ in range(64):
        statuses.add(c.one(announce(1, rhash(), peer_id(1), "10.0.0.1", 1))["status"])
    eq(statuses, {"ok", "moved"}, "s1 serves its half and moves s2's")
    eq(s1.terminate(), 0, "static node exit status")


@test
def cli_errors():
    nb = ENV.node_bin

    def run(args, env=None):
        p = subprocess.run([nb] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10, env=env)
        return p.returncode, (p.stdout + p.stderr).decode()

    rc, out = run(["--help"])
    eq(rc, 0, "--help")
    for flag in ("--id", "--bind", "--advertise", "--redis", "--nodes", "--workers",
                 "--heartbeat-interval", "--member-ttl", "--peer-timeout", "--max-torrents",
                 "--max-peers", "--memory", "--stripes", "--log-level", "SHOAL_MEMBER_TTL"):
        check(flag in out, "--help mentions %s" % flag)
    rc, out = run(["--version"])
    eq((rc, out.startswith("shoal-node ")), (0, True), "--version")
    eq(run(["--redis", ENV.redis.url])[0], 2, "missing --id")
    eq(run(["--id", "x"])[0], 2, "neither --redis nor --nodes")
    eq(run(["--id", "x", "--redis", ENV.redis.url, "--nodes", "x=tcp://h:1"])[0], 2, "both")
    eq(run(["--id", "x", "--redis", ENV.redis.url, "--bind", "tcp://0.0.0.0:1"])[0], 2,
       "a wildcard bind needs --advertise")
    eq(run(["--id", "x", "--redis", "http://h", "--bind", "tcp://127.0.0.1:1"])[0], 2,
       "bad redis url")
    eq(run(["--id", "x", "--nodes", "y=tcp://h:1", "--bind", "tcp://127.0.0.1:1"])[0], 2,
       "id not in the static list")
    eq(run(["--id", "x", "--redis", ENV.redis.url, "--heartbeat-interval", "1000",
            "--member-ttl", "500", "--bind", "tcp://127.0.0.1:1"])[0], 2, "ttl below heartbeat")
    eq(run(["--id", "x", "--workers", "0", "--nodes", "x=tcp://h:1"])[0], 2, "workers 0")
    busy = ENV.nodes["a"].endpoint
    rc, out = run(["--id", "x", "--nodes", "x=" + busy, "--bind", busy])
    eq(rc, 2, "port in use (an operator mistake)")
    check("cannot bind" in out, "says why: %s" % out)
    # Worker i binds port + i: a taken neighbour (a's worker 0) is named, exit 2.
    low = ENV.nodes["a"].port - 1
    ep = "tcp://127.0.0.1:%d" % low
    rc, out = run(["--id", "x", "--nodes", "x=" + ep, "--bind", ep, "--workers", "2"])
    eq(rc, 2, "a worker's port in use")
    check("--workers 2 needs ports %d-%d: cannot bind" % (low, low + 1) in out, "says which: %s" % out)
    rc, out = run(["--id", "x", "--nodes", "x=tcp://127.0.0.1:65535", "--bind",
                   "tcp://127.0.0.1:65535", "--workers", "2"])
    eq(rc, 2, "workers past port 65535")
    check("65535" in out and "worker i is at P + i" in out, "says why: %s" % out)
    # The advert, count included, must fit 127 bytes (here 121 + "|workers=1000").
    long_ep = "tcp://" + "a" * 110 + ":7000"
    rc, out = run(["--id", "x", "--nodes", "x=tcp://h:1", "--bind", "tcp://127.0.0.1:1",
                   "--advertise", long_ep, "--workers", "1000"])
    eq(rc, 2, "an advert too long for its worker count")
    check("|workers=1000: too long (127 bytes at most)" in out, "says why: %s" % out)
    env = dict(os.environ, SHOAL_ID="envnode", SHOAL_NODES="envnode=tcp://h:1",
               SHOAL_WORKERS="0")
    eq(run([], env)[0], 2, "SHOAL_* environment is read (SHOAL_WORKERS=0 refused)")


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--node", required=True, help="path to shoal-node")
    ap.add_argument("--client", required=True, help="path to shoal-node-client")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.node, args.client])
    if rc is not None:
        return rc
    ENV = Env(os.path.abspath(args.node), os.path.abspath(args.client))
    try:
        ENV.redis = Redis().start()
        ENV.redis_node("a", 2)
        ENV.redis_node("b", 1)
    except Exception:
        ENV.stop_all()
        raise

    def logs():
        return "\n".join(clusterlib.stderr_tail("node " + n.id, n.proc and n.proc.pid,
                                                 n.stderr_text(), 40)
                         for n in ENV.nodes.values())

    return clusterlib.run_steps(TESTS, args.k, logs, ENV.stop_all)


if __name__ == "__main__":
    sys.exit(main())
