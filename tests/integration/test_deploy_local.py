#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""e2e.deploy_local: the deployment shapes of docs/deploy.md, on loopback, with real clients.

  - anycast: one address (127.0.0.10) whose flows the kernel spreads between two gateways, each
    on an address of its own (127.0.0.2, 127.0.0.3), the way ECMP spreads flows between anycast
    sites: a NAT rule picks a gateway for a flow's first packet at random and conntrack keeps the
    flow there. With a shared --secret a UDP connection id from one gateway is accepted by the
    other (each gateway's /metrics shows it served); aria2, libtorrent and the BEP 15 scrape work
    through the one address; with different secrets, ids are refused (errors by reason
    connection_id). This runs in a private network namespace (the test re-executes itself under
    `unshare --net` when it may), so the rule touches nothing outside it.
  - one port, one process: a second gateway on an address and port another holds is refused,
    which is why a host runs one gateway with --workers (SO_REUSEPORT between its own workers)
    and the anycast demonstration uses an address per gateway;
  - DNS round robin: clients given different addresses (127.0.0.2, 127.0.0.3) meet, because
    both gateways route to the same nodes; a connection id from one is valid at the other;
  - draining: the route is withdrawn (new flows go to the other gateway), then SIGTERM: the
    gateway's /readyz goes off, it exits 0, and the other served every request meanwhile;
  - deploy/cluster.sh up / status / up again / a killed gateway restarted / down, in a temporary
    state dir, with real clients (libtorrent, transmission-cli) downloading through it.

The real clients are tests/e2e/test_clients.py's (its LtClient, Swarm, Tracker scrapes and its
scenarios, imported). Invariant: every process is stopped by its PID, every wait is a bounded
poll, all traffic stays on loopback.

    /usr/bin/python3 tests/integration/test_deploy_local.py --gateway B/cmd/shoal-gateway \\
        --node B/cmd/shoal-node
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import clusterlib  # noqa: E402
import test_clients as e2e  # noqa: E402  (the real-client machinery)
import trackerclient  # noqa: E402
from clusterlib import wait_until  # noqa: E402
from trackerclient import Skip, check, eq  # noqa: E402

NETNS_MARK = "DEPLOY_LOCAL_IN_NETNS"  # not SHOAL_*: the daemons warn about unknown SHOAL_ variables
VIP = "127.0.0.10"  # the anycast address (shared secret)
VIP_BAD = "127.0.0.11"  # the anycast address of two gateways with different secrets
SHARED = "127.0.0.6"  # the address two --share-port gateways bind together
ADMIN_LINE = re.compile(r"admin (127\.0\.0\.1:\d+)")
METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

steps, test = clusterlib.step_list()


class Gateway:
    """One shoal-gateway on ADDR:PORT (UDP and HTTP) with its admin listener on a port the kernel
    picks (read from its start line)."""

    def __init__(self, name, addr, port, secret, extra=()):
        self.name = name
        self.addr = addr
        self.port = port
        argv = [ENV.gateway_bin, "--redis", ENV.redis.url, "--udp", "%s:%d" % (addr, port),
                "--http", "%s:%d" % (addr, port), "--workers", "1", "--membership-interval",
                "200", "--admin", "127.0.0.1:0"] + (["--secret", secret] if secret else [])
        self.proc = clusterlib.Proc(name, argv + list(extra))
        ENV.procs.append(self.proc)
        wait_until(lambda: not self.proc.alive() or ADMIN_LINE.search(self.proc.log()), 15)
        m = ADMIN_LINE.search(self.proc.log())
        self.admin = m.group(1) if m else None

    def started(self):
        return self.proc.alive() and self.admin is not None

    def get(self, path):
        """(status, body) of GET path on the admin listener; (0, b"") if nothing answers."""
        try:
            with urllib.request.urlopen("http://%s%s" % (self.admin, path), timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def ready(self):
        return self.get("/readyz")[0] == 200

    def metric(self, name, **labels):
        """The sum of the samples of metric name whose labels include labels."""
        status, body = self.get("/metrics")
        check(status == 200, "%s /metrics: %d" % (self.name, status))
        total = 0.0
        for line in body.decode().splitlines():
            m = METRIC_LINE.match(line)
            if not m or m.group(1) != name:
                continue
            have = dict(LABEL.findall(m.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(m.group(3))
        return total

    def tracker(self):
        return At(self.name, self.addr, self.port, self)


class At(e2e.Tracker):
    """test_clients' Tracker (its BEP 48 / BEP 15 scrapes and wait_counts) aimed at an address
    whose processes this test started, not one it starts itself."""

    def __init__(self, name, host, port, gateway=None):  # noqa: super().__init__ starts nothing
        self.name = name
        self.udp = (host, port)
        self.http = (host, port)
        self.udp_url = "udp://%s:%d/announce" % (host, port)
        self.http_url = "http://%s:%d/announce" % (host, port)
        self.scrape_url = "http://%s:%d/scrape" % (host, port)
        self.workdir = None
        self.info_hashes = []
        self.proc = None
        self.rc = None
        self.gateways = [gateway] if gateway else []

    def log_tail(self, lines=30):
        return "\n".join(clusterlib.stderr_tail(g.name, g.proc.pid, g.proc.log(), lines)
                         for g in self.gateways) or "    | <processes of another test step>"


class Env:
    def __init__(self, gateway_bin, node_bin, netns):
        self.gateway_bin = gateway_bin
        self.node_bin = node_bin
        self.build_dir = os.path.dirname(os.path.dirname(gateway_bin))
        self.netns = netns
        self.redis = None
        self.nodes = []
        self.procs = []
        self.gw = {}
        self.secret = secrets.token_hex(32)
        self.port = None
        self.root = tempfile.mkdtemp(prefix="shoal-deploy-")
        self.ports = set()
        self.cluster_state = None
        self.vips = {}  # anycast address -> (port, [site addresses]) in the NAT rules

    def logs(self):
        out = []
        for p in self.procs + [n.proc for n in self.nodes if n.proc]:
            out.append(clusterlib.stderr_tail(p.name, p.pid, p.log(), 15))
        if self.cluster_state and os.path.isdir(self.cluster_state):
            for f in sorted(os.listdir(self.cluster_state)):
                if f.endswith(".log"):
                    with open(os.path.join(self.cluster_state, f), "rb") as fh:
                        text = fh.read().decode("utf-8", "replace")
                    out.append(clusterlib.stderr_tail("cluster.sh " + f, "-", text, 15))
        return "\n".join(out)

    def stop_all(self):
        for p in reversed(self.procs):
            p.cleanup()
        for n in self.nodes:
            n.cleanup()
        if self.redis:
            self.redis.stop()
        if self.cluster_state:
            kill_pid_files(self.cluster_state)
        if self.netns:
            iptables_flush()
        shutil.rmtree(self.root, ignore_errors=True)


ENV = None


def kill_pid_files(state_dir):
    """What deploy/cluster.sh left running if a step failed before its `down`: each PID in a pid
    file there, if it still runs one of our binaries or redis-server, SIGTERM then SIGKILL."""
    if not os.path.isdir(state_dir):
        return
    for f in os.listdir(state_dir):
        if not f.endswith(".pid"):
            continue
        try:
            with open(os.path.join(state_dir, f)) as fh:
                pid = int(fh.read().strip())
            exe = os.readlink("/proc/%d/exe" % pid)
        except (OSError, ValueError):
            continue
        if not re.search(r"/(shoal-gateway|shoal-node|redis-server|redis-check-rdb)$", exe):
            continue
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not os.path.exists("/proc/%d" % pid), 10, 0.05):
            os.kill(pid, signal.SIGKILL)


# ---- the anycast address: ECMP-like spreading by the kernel (private network namespace) ----


def iptables(*args):
    subprocess.run(["iptables", "-w", "-t", "nat"] + list(args), check=True, timeout=10,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def iptables_flush():
    if shutil.which("iptables"):
        subprocess.run(["iptables", "-w", "-t", "nat", "-F", "OUTPUT"], timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def announce_vip(vip, port, sites):
    """Flows to vip:port (UDP and TCP) go to one of sites (addresses serving port), chosen per flow
    at its first packet with equal odds; conntrack keeps the rest of the flow on that choice.
    Replaces the rules vip had (so a shorter list withdraws a site for new flows)."""
    # The namespace's OUTPUT chain holds only these rules: rebuild it from every VIP's list.
    ENV.vips[vip] = (port, list(sites))
    iptables("-F", "OUTPUT")
    for v, (p, addrs) in ENV.vips.items():
        for proto in ("udp", "tcp"):
            for i, site in enumerate(addrs):
                rule = ["-A", "OUTPUT", "-d", v, "-p", proto, "--dport", str(p)]
                left = len(addrs) - i
                if left > 1:  # 1/left of what reaches this rule: equal odds overall
                    rule += ["-m", "statistic", "--mode", "random", "--probability",
                             "%.6f" % (1.0 / left)]
                iptables(*(rule + ["-j", "DNAT", "--to-destination", "%s:%d" % (site, p)]))


def need_anycast():
    if not ENV.netns:
        raise Skip("not in a private network namespace (needs root and unshare): the NAT rule "
                   "that stands in for ECMP would touch the host")
    if not shutil.which("iptables"):
        raise Skip("iptables is not installed (apt-get install iptables)")


# ---- UDP by hand: a new source port per request, as flows that ECMP hashes apart ----


USED_SOURCE_PORTS = set()


def new_flow(host, port):
    """A UdpTracker on a source port this test has not used before: a new flow, so the NAT rule
    decides afresh (conntrack remembers a 5-tuple's first choice for 30 s after its last packet,
    which would keep a reused port on a gateway whose route was withdrawn)."""
    for _ in range(100):
        c = trackerclient.UdpTracker(host, port, timeout=1.0)
        sport = c.sock.getsockname()[1]
        if sport not in USED_SOURCE_PORTS:
            USED_SOURCE_PORTS.add(sport)
            return c
        c.close()
    raise RuntimeError("no unused source port in 100 tries")


def udp_connect(host, port):
    with new_flow(host, port) as c:
        return c.connect()


def udp_announce(host, port, cid, info_hash, peer_port):
    """Announce with connection id cid from a fresh source port: ("ok", reply dict) or
    ("error", message)."""
    with new_flow(host, port) as c:
        tid, reply = c.announce_raw(info_hash, b"-SD0001-" + os.urandom(6).hex()[:12].encode(),
                                    peer_port, conn_id=cid, left=100)
        if struct.unpack(">I", reply[:4])[0] == trackerclient.ACT_ERROR:
            return "error", trackerclient.parse_error(reply)[1]
        return "ok", c.parse_announce(reply, tid)


def counters(gws):
    """{gateway name: (udp connects ok, udp announces ok, connection_id errors)}."""
    out = {}
    for g in gws:
        out[g.name] = (g.metric("shoal_requests_total", protocol="udp", action="connect",
                                result="ok"),
                       g.metric("shoal_requests_total", protocol="udp", action="announce",
                                result="ok"),
                       g.metric("shoal_errors_total", protocol="udp", reason="connection_id"))
    return out


def moved_gateway(gws, before, index, timeout=3.0):
    """The name of the one gateway whose counter `index` moved since before (metrics are
    published once a second), or None."""
    got = {}

    def one():
        now = counters(gws)
        got["m"] = [n for n in now if now[n][index] > before[n][index]]
        return len(got["m"]) == 1
    wait_until(one, timeout, 0.1)
    return got["m"][0] if len(got.get("m", [])) == 1 else None


def run_e2e(name, fn, tracker, sw):
    """One test_clients scenario (or one written like them) against tracker; fail on its error."""
    err = e2e.run_scenario(name, fn, tracker, ENV.ports, sw)
    check(err is None, "%s: %s" % (name, err))


def scenario_across(ctx, sw, cleanup):
    """libtorrent seeder announcing to one address, libtorrent leecher to another (UDP and HTTP
    crossed): they can meet only if both gateways reach the same swarm."""
    tr = ctx.tracker  # the leecher's address: it must already count the seeder
    seeder = e2e.LtClient("seeder", ctx.free_port(), sw.torrents["a"], sw.src)
    cleanup.append(seeder.close)
    ctx.diag.append(("libtorrent seeder alerts", seeder.log_tail))
    if not seeder.wait_seeding(15):
        raise e2e.CheckFailed("seeder never reached seeding: %s" % seeder.status().state)
    tr.wait_counts(sw.info_hash, "udp", lambda c: c["complete"] >= 1,
                   "complete >= 1 at the other address (the seeder announced elsewhere)", 15)
    leecher = e2e.LtClient("leecher", ctx.free_port(), sw.torrents["b"], sw.dl)
    cleanup.append(leecher.close)
    ctx.diag.append(("libtorrent leecher alerts", leecher.log_tail))
    if not leecher.wait_seeding(60):
        st = leecher.status()
        raise e2e.CheckFailed("leecher did not complete within 60 s: progress %.2f, peers %d"
                              % (st.progress, st.num_peers))
    sw.check_copy()
    tr.wait_counts(sw.info_hash, "http", lambda c: c["downloaded"] >= 1 and c["complete"] >= 2,
                   "downloaded >= 1 and complete >= 2", 10)


def swarm(key, urls):
    return e2e.Swarm(ENV.root, key, urls)


# ---- steps ----


@test
def cluster_of_two_nodes_starts():
    if e2e.lt is None:
        raise RuntimeError("no libtorrent (%s): run with /usr/bin/python3" % e2e.LT_IMPORT_ERROR)
    e2e.need_binary("mktorrent")
    ENV.redis = clusterlib.Redis().start()
    for i in (1, 2):
        ENV.nodes.append(clusterlib.Node(ENV.node_bin, "n%d" % i, ("redis", ENV.redis.url),
                                         extra=["--heartbeat-interval", "200", "--member-ttl",
                                                "1000", "--admin", "127.0.0.1:0"]).start())
    ENV.port = trackerclient.free_port()
    ENV.ports.add(ENV.port)
    for name, addr in (("gw-a", "127.0.0.2"), ("gw-b", "127.0.0.3")):
        g = ENV.gw[name] = Gateway(name, addr, ENV.port, ENV.secret)
        check(g.started(), "%s did not start: %s" % (name, g.proc.log()[-1500:]))

    def all_ready():
        ok = all(g.ready() for g in ENV.gw.values())
        return ok and all(b"n1" in g.get("/api/v1/cluster")[1] and b"n2" in
                          g.get("/api/v1/cluster")[1] for g in ENV.gw.values())
    check(wait_until(all_ready, 20, 0.1), "gateways not ready with both nodes")
    print("     redis %s, nodes n1 n2, gw-a 127.0.0.2:%d, gw-b 127.0.0.3:%d, one secret" %
          (ENV.redis.url, ENV.port, ENV.port))


@test
def one_address_and_port_is_one_process():
    # SO_REUSEPORT spreads a port between one gateway's workers; another process asking for the
    # same address and port is refused, so a second tracker started by mistake cannot take half
    # the traffic. Hence one gateway (with --workers) per address on a host.
    g = Gateway("gw-dup", "127.0.0.2", ENV.port, ENV.secret)
    check(wait_until(lambda: not g.proc.alive(), 10), "a second gateway shared 127.0.0.2:%d"
          % ENV.port)
    check(g.proc.proc.returncode != 0 and "address already in use" in g.proc.log(),
          "exit %s: %s" % (g.proc.proc.returncode, g.proc.log()[-500:]))
    print("     refused: %s" % [ln for ln in g.proc.log().splitlines() if "in use" in ln][0])


@test
def shared_port_spreads_flows_over_two_gateways():
    # With --share-port, two gateway processes bind one address and port; the kernel spreads
    # flows over every socket of the port (SO_REUSEPORT), as ECMP spreads them over anycast
    # sites, and with one --secret an id issued by either is good at the other.
    gws = [Gateway("gw-share%d" % i, SHARED, ENV.port, ENV.secret, ["--share-port"])
           for i in (1, 2)]
    try:
        check(all(g.started() for g in gws), "both started: %s" % [g.proc.log()[-300:]
                                                                    for g in gws])
        check(wait_until(lambda: all(g.ready() for g in gws), 10, 0.05), "both ready")
        before = counters(gws)
        flows = 32  # each lands on either process: all on one has odds 2^-31
        cid = None
        for _ in range(flows):
            cid = udp_connect(SHARED, ENV.port)
        check(wait_until(lambda: sum(c[0] - before[n][0] for n, c in counters(gws).items())
                         >= flows, 3, 0.1), "the gateways counted the %d connects" % flows)
        now = counters(gws)
        check(all(now[g.name][0] > before[g.name][0] for g in gws),
              "connects from %d source ports all went to one process: %r" % (flows, now))
        h = trackerclient.random_hash()
        before = counters(gws)
        for i in range(flows):  # one id, many flows: both processes must accept it
            res, what = udp_announce(SHARED, ENV.port, cid, h, 41000 + i)
            check(res == "ok", "announce with the shared-secret id refused: %r" % (what,))
        check(wait_until(lambda: all(counters(gws)[g.name][1] > before[g.name][1] for g in gws),
                         3, 0.1), "both processes served announces: %r" % counters(gws))
        check(all(c[2] == 0 for c in counters(gws).values()), "no connection_id errors")
        tr = At("shared port %s:%d" % (SHARED, ENV.port), SHARED, ENV.port)
        tr.gateways = gws
        run_e2e("shared-port-udp-libtorrent", e2e.scenario_udp_libtorrent, tr,
                swarm("share-lt", {"udp": tr.udp_url}))
        run_e2e("shared-port-http-aria2", e2e.scenario_http_aria2, tr,
                swarm("share-aria2", {"http": tr.http_url}))
        now = counters(gws)
        print("     %s:%d served by two processes (connects, announces): %s" % (
            SHARED, ENV.port, ", ".join("%s %d/%d" % (n, c[0], c[1]) for n, c in now.items())))
    finally:
        for g in gws:
            eq(g.proc.terminate(10), 0, "%s exit code" % g.name)


@test
def anycast_connection_id_from_one_site_accepted_at_the_other():
    need_anycast()
    gws = [ENV.gw["gw-a"], ENV.gw["gw-b"]]
    announce_vip(VIP, ENV.port, [g.addr for g in gws])
    h = trackerclient.random_hash()
    # Connect through the anycast address until one flow has landed; note which gateway
    # issued the id (its connect counter moved), then announce with that id from new source
    # ports until the OTHER gateway has served one: it accepted an id it never issued.
    before = counters(gws)
    cid = udp_connect(VIP, ENV.port)
    issuer = moved_gateway(gws, before, 0)
    check(issuer, "no single gateway counted the connect: %r" % counters(gws))
    other = [g for g in gws if g.name != issuer][0]
    flows = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and flows < 64:
        before = counters(gws)
        batch = 4
        for _ in range(batch):
            res, what = udp_announce(VIP, ENV.port, cid, h, 40000 + flows)
            check(res == "ok", "announce with a shared-secret id refused: %r" % (what,))
            flows += 1
        now = wait_until(lambda: sum(c[1] for c in counters(gws).values()) >=
                         sum(c[1] for c in before.values()) + batch, 3, 0.1)
        check(now, "the gateways did not count %d announces" % batch)
        now = counters(gws)
        if now[other.name][1] > before[other.name][1]:
            break
    now = counters(gws)
    check(now[other.name][1] > 0, "no flow reached %s in %d tries" % (other.name, flows))
    check(all(c[2] == 0 for c in now.values()), "connection_id errors: %r" % now)
    print("     id issued by %s; %d announces from %d source ports, %s served %d of them, "
          "0 refused" % (issuer, flows, flows, other.name, now[other.name][1]))


@test
def anycast_real_clients():
    need_anycast()
    tr = At("anycast %s:%d" % (VIP, ENV.port), VIP, ENV.port)
    tr.gateways = [ENV.gw["gw-a"], ENV.gw["gw-b"]]
    before = counters(tr.gateways)
    run_e2e("anycast-udp-libtorrent", e2e.scenario_udp_libtorrent, tr,
            swarm("any-lt", {"udp": tr.udp_url}))
    run_e2e("anycast-http-aria2", e2e.scenario_http_aria2, tr,
            swarm("any-aria2", {"http": tr.http_url}))
    now = counters(tr.gateways)
    print("     served by each (connects, announces): %s" % ", ".join(
        "%s %d/%d" % (n, now[n][0] - before[n][0], now[n][1] - before[n][1]) for n in now))


@test
def anycast_without_a_shared_secret_refuses_ids():
    need_anycast()
    gws = [Gateway("gw-c", "127.0.0.4", ENV.port, None), Gateway("gw-d", "127.0.0.5", ENV.port,
                                                                 None)]
    for g in gws:
        check(g.started(), "%s did not start: %s" % (g.name, g.proc.log()[-1000:]))
    check(wait_until(lambda: all(g.ready() for g in gws), 15, 0.1), "gw-c/gw-d not ready")
    announce_vip(VIP_BAD, ENV.port, [g.addr for g in gws])
    h = trackerclient.random_hash()
    refused = ok = 0
    base = sum(c[2] for c in counters(gws).values())
    for i in range(64):
        cid = udp_connect(VIP_BAD, ENV.port)
        res, what = udp_announce(VIP_BAD, ENV.port, cid, h, 41000 + i)
        if res == "error":
            check("connection id" in what, "unexpected error %r" % what)
            refused += 1
        else:
            ok += 1
        if refused >= 3 and ok >= 3:
            break
    check(refused >= 1, "no id was refused in %d tries (flows all on one gateway?)" % (i + 1))
    check(wait_until(lambda: sum(c[2] for c in counters(gws).values()) - base == refused, 5, 0.1),
          "connection_id errors in /metrics %r, refused replies seen %d" % (counters(gws),
                                                                            refused))
    # Each gateway also tells: another gateway with another secret is registered.
    check(wait_until(lambda: all(g.metric("shoal_gateways", secret="other") >= 1 for g in gws),
                     10, 0.2), "shoal_gateways{secret=\"other\"} stayed 0")
    check(any("secret" in g.proc.log() and "error" in g.proc.log() for g in gws),
          "no gateway logged the secret mismatch")
    print("     %d of %d announces refused with 'invalid connection id', counted by reason "
          "connection_id in /metrics" % (refused, refused + ok))
    for g in gws:
        check(g.proc.terminate(10) == 0, "%s exit code" % g.name)


@test
def dns_round_robin_id_valid_at_either_address():
    a, b = ENV.gw["gw-a"], ENV.gw["gw-b"]
    h = trackerclient.random_hash()
    before = counters([a, b])
    n = 5
    for i in range(n):
        cid = udp_connect(a.addr, ENV.port)  # the id comes from 127.0.0.2 ...
        res, what = udp_announce(b.addr, ENV.port, cid, h, 42000 + i)  # ... and 127.0.0.3 takes it
        check(res == "ok", "127.0.0.3 refused an id from 127.0.0.2: %r" % (what,))
    check(wait_until(lambda: counters([a, b])["gw-b"][1] - before["gw-b"][1] == n, 5, 0.1),
          "gw-b counted %r announces, sent %d" % (counters([a, b])["gw-b"], n))
    check(counters([a, b])["gw-b"][2] == before["gw-b"][2], "gw-b counted connection_id errors")
    print("     %d ids from 127.0.0.2 accepted by 127.0.0.3 (its /metrics: +%d announces, +0 "
          "connection_id errors)" % (n, n))


@test
def dns_round_robin_real_clients():
    a, b = ENV.gw["gw-a"], ENV.gw["gw-b"]
    tr_b = b.tracker()
    tr_b.gateways = [a, b]
    run_e2e("dns-rr-libtorrent-udp-.2-to-http-.3", scenario_across, tr_b,
            swarm("rr", {"a": a.tracker().udp_url, "b": tr_b.http_url}))


@test
def draining_a_gateway():
    a, b = ENV.gw["gw-a"], ENV.gw["gw-b"]
    h = trackerclient.random_hash()
    cid = udp_connect(a.addr, ENV.port)
    # 1. withdraw the route (anycast: new flows go to gw-b only) or the DNS record (clients are
    #    no longer given 127.0.0.2); 2. SIGTERM; readiness goes off, the process exits 0;
    #    3. the other gateway serves throughout, the ids gw-a issued included.
    if ENV.netns and shutil.which("iptables"):
        announce_vip(VIP, ENV.port, [b.addr])
        for i in range(8):
            res, what = udp_announce(VIP, ENV.port, cid, h, 43000 + i)
            check(res == "ok", "anycast announce after the withdrawal: %r" % (what,))
    check(a.ready(), "gw-a not ready before the drain")
    a.proc.send(signal.SIGTERM)
    t0 = time.monotonic()
    served = failed = 0
    readiness_off = None
    while time.monotonic() - t0 < 10:
        if readiness_off is None and a.get("/readyz")[0] != 200:
            readiness_off = time.monotonic() - t0
        for host in ([VIP] if ENV.netns and shutil.which("iptables") else []) + [b.addr]:
            res, _ = udp_announce(host, ENV.port, cid, h, 43100 + served % 100)
            served, failed = served + (res == "ok"), failed + (res != "ok")
        if readiness_off is not None and not a.proc.alive():
            break
    check(readiness_off is not None, "gw-a's /readyz stayed 200 after SIGTERM")
    check(wait_until(lambda: not a.proc.alive(), 10), "gw-a still running 10 s after SIGTERM")
    rc = a.proc.proc.returncode
    check(rc == 0, "gw-a exit code %s: %s" % (rc, a.proc.log()[-800:]))
    check(failed == 0 and served > 0, "gw-b: %d served, %d failed meanwhile" % (served, failed))
    check(b.ready(), "gw-b not ready after gw-a left")
    print("     gw-a: /readyz off %.2f s after SIGTERM, exit 0 after %.2f s; gw-b answered all "
          "%d announces meanwhile (gw-a's ids too)" % (readiness_off, time.monotonic() - t0,
                                                       served))


@test
def cluster_script_up_status_down():
    script = os.path.join(ROOT, "deploy", "cluster.sh")
    state = ENV.cluster_state = os.path.join(ENV.root, "cluster-state")
    if ENV.netns:
        # A fresh network namespace: the defaults, as the README shows them.
        ports = []
    else:
        port = trackerclient.free_port()
        base = free_range(2)
        ports = ["--port", str(port), "--node-port", str(base), "--admin-port",
                 str(trackerclient.free_port()), "--redis-port", str(trackerclient.free_port())]
    args = ["--state-dir", state, "--build-dir", ENV.build_dir, "--nodes", "2", "--gateways",
            "2", "--timeout", "30"] + ports

    def run(*a, ok=(0,)):
        t = time.monotonic()
        r = subprocess.run([script] + list(a), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        out = r.stdout.decode("utf-8", "replace")
        check(r.returncode in ok, "cluster.sh %s: exit %d:\n%s" % (" ".join(a), r.returncode, out))
        print("     cluster.sh %s: exit %d in %.1f s" % (a[0], r.returncode, time.monotonic() - t))
        return out

    out = run("up", *args)
    urls = re.findall(r"udp://([\d.]+):(\d+)/announce\s+http://[\d.]+:\d+/announce", out)
    check(len(urls) == 2, "up printed no tracker URLs:\n" + out)
    pids = read_pids(state)
    check(sorted(pids) == ["gateway-1", "gateway-2", "node-n1", "node-n2", "redis"],
          "pid files: %r" % pids)
    status = run("status", "--state-dir", state)
    check(status.count(" ready ") == 5, "status:\n" + status)
    # up again: nothing new starts.
    again = run("up", "--state-dir", state)
    check("started" not in again and read_pids(state) == pids, "second up:\n" + again)
    # A gateway that died (its pid file now stale) is noticed by status and restarted by up.
    os.kill(pids["gateway-2"], signal.SIGKILL)
    check(wait_until(lambda: not os.path.exists("/proc/%d/exe" % pids["gateway-2"]) or
                     zombie(pids["gateway-2"]), 5, 0.05), "gateway-2 did not die")
    status = run("status", "--state-dir", state, ok=(1,))
    check(re.search(r"gateway-2 +- +NOT RUNNING", status), "status after the kill:\n" + status)
    again = run("up", "--state-dir", state)
    new = read_pids(state)
    check("started gateway-2" in again and new["gateway-2"] != pids["gateway-2"] and
          all(new[k] == pids[k] for k in pids if k != "gateway-2"), "restart:\n" + again)
    # A node upgraded in place (docs/deploy.md): SIGTERM by PID hands its partitions over, the
    # gateways' member table drops it, `up` starts it again (the new binary) and waits for it.
    admin = re.search(r"gateway-1 +http://([\d.:]+)/", out).group(1)

    def members():
        with urllib.request.urlopen("http://%s/api/v1/cluster" % admin, timeout=2) as r:
            return sorted(m["id"] for m in json.loads(r.read())["members"])
    os.kill(new["node-n1"], signal.SIGTERM)
    check(wait_until(lambda: not alive(new["node-n1"]), 15, 0.05), "node-n1 ignored SIGTERM")
    check(wait_until(lambda: members() == ["n2"], 10, 0.1), "members after n1 left: %r"
          % members())
    check("handed over" in open(os.path.join(state, "node-n1.log")).read(), "no handover logged")
    again = run("up", "--state-dir", state)
    # `up` waits for the node's own readiness; the gateway's table follows at its next member
    # poll (every second), so its view is polled, not read once.
    check("started node-n1" in again and wait_until(lambda: members() == ["n1", "n2"], 5, 0.05),
          "n1 back (gateway-1 sees %r):\n%s" % (members(), again))
    new = read_pids(state)
    # Real clients through it: libtorrent across the two gateways, transmission through one.
    (h1, p1), (h2, p2) = urls
    t1, t2 = At("gateway-1", h1, int(p1)), At("gateway-2", h2, int(p2))
    run_e2e("cluster.sh-libtorrent-across-gateways", scenario_across, t2,
            swarm("cl", {"a": t1.udp_url, "b": t2.http_url}))
    run_e2e("cluster.sh-transmission", e2e.scenario_transmission, t1,
            swarm("cl-tr", {"udp": t1.udp_url}))
    run("down", "--state-dir", state)
    check(all(not alive(p) for p in new.values()), "processes left after down: %r" % new)
    check(not [f for f in os.listdir(state) if f.endswith(".pid")], "pid files left")
    status = run("status", "--state-dir", state, ok=(1,))
    check(status.count("NOT RUNNING") == 5, "status after down:\n" + status)
    run("down", "--state-dir", state)  # again: nothing to do, exit 0


def read_pids(state):
    out = {}
    for f in os.listdir(state):
        if f.endswith(".pid"):
            with open(os.path.join(state, f)) as fh:
                out[f[:-4]] = int(fh.read().strip())
    return out


def zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def alive(pid):
    return os.path.exists("/proc/%d" % pid) and not zombie(pid)


def free_range(n):
    """A port p with p..p+n-1 and p+1000..p+1000+n-1 free on 127.0.0.1 (nodes and their admin)."""
    for base in range(21000, 29000, 37):
        try:
            socks = []
            for p in list(range(base, base + n)) + list(range(base + 1000, base + 1000 + n)):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def enter_netns(argv):
    """Re-execute this test in a private network namespace (root and unshare needed): the NAT
    rules of the anycast steps and every port stay in it. Returns only if that is not possible."""
    if os.environ.get(NETNS_MARK) is not None or os.geteuid() != 0 or not shutil.which("unshare"):
        return
    probe = subprocess.run(["unshare", "--net", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
    if probe.returncode != 0:
        return
    os.environ[NETNS_MARK] = "1"
    sys.stdout.flush()
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable] + argv)


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", required=True, help="path to shoal-gateway")
    ap.add_argument("--node", required=True, help="path to shoal-node")
    ap.add_argument("--no-netns", action="store_true", help="stay in this network namespace "
                    "(the anycast steps are skipped)")
    ap.add_argument("-k", default="", help="run only steps whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.gateway, args.node])
    if rc is not None:
        return rc
    if not args.no_netns:
        enter_netns([os.path.abspath(sys.argv[0])] + sys.argv[1:])
    netns = os.environ.get(NETNS_MARK) == "1"
    if netns:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    print("network namespace: %s" % ("private (unshare --net)" if netns else "the host's"))
    ENV = Env(os.path.abspath(args.gateway), os.path.abspath(args.node), netns)
    return clusterlib.run_steps(steps, args.k, ENV.logs, ENV.stop_all)


if __name__ == "__main__":
    sys.exit(main())
