#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.ops: the admin listener of every role, used as an operator would (issue 11).

Real processes on loopback: shoal, shoal-node, shoal-gateway, redis-server. Each admin listener
runs on a port the kernel picks (--admin 127.0.0.1:0), read back from the process's start line.
Checked:
  - /metrics of each role passes `promtool check metrics`, and counters move by exactly what the
    test sent (UDP and HTTP announces and scrapes, refusals, peers handed out);
  - /api/v1/stats holds the same numbers; /healthz and /readyz; 404/405/400 answers are JSON;
  - torrents/{hash} on the standalone, on a node, and through a gateway (routed over ZeroMQ);
  - a gateway's readiness flips as a node joins, a node's once it holds its partitions;
  - write endpoints: refused without --admin-token-file (403), with a wrong token (401);
  - an allow-list edit through gateway A's API is enforced by gateway B within 2 s, and a
    gateway started later picks the list up;
  - SIGHUP re-reads the config file: the access list and the log level apply live, a
    restart-only option is reported as such;
  - a bad config line is refused with FILE:LINE; --print-config reads back unchanged;
  - --log-format json writes one JSON object per line.

    /usr/bin/python3 tests/integration/test_ops.py --shoal B/shoal --node B/shoal-node \\
        --gateway B/shoal-gateway [-k NAME]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import Proc, Redis, wait_until  # noqa: E402
from trackerclient import (ACT_ERROR, Skip, UdpTracker, announce_target, bdecode, check, eq,  # noqa: E402
                           free_port, http_get, random_hash, scrape_target)

RNG = random.Random(int.from_bytes(os.urandom(8), "big"))
SECRET = "3c" * 32
TOKEN = "t0ken-" + os.urandom(8).hex()
ADMIN_LINE = re.compile(r"admin (127\.0\.0\.1:\d+)")
EXE = {}
PROCS = []
TMP = tempfile.mkdtemp(prefix="shoal-ops-")
REDIS = None


def h():
    return random_hash(RNG)


def peer_id(i):
    return ("-OP0001-%012d" % i).encode()


# ---- processes and the admin client --------------------------------------------------------


class Role:
    """A started process with its tracker port (shoal, gateway) and its admin address."""

    def __init__(self, name, argv, port=None):
        self.name = name
        self.port = port
        self.proc = Proc(name, argv)
        PROCS.append(self.proc)
        found = wait_until(lambda: not self.proc.alive() or ADMIN_LINE.search(self.proc.log()), 15)
        check(self.proc.alive() and found, "%s did not start: %s" % (name, self.proc.log()[-2000:]))
        self.admin = ADMIN_LINE.search(self.proc.log()).group(1)

    def get(self, path, token=None, method="GET", body=None):
        """(status, headers, body bytes) of one admin request."""
        req = urllib.request.Request("http://%s%s" % (self.admin, path), method=method, data=body)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, path, status=200, **kw):
        code, headers, body = self.get(path, **kw)
        eq(code, status, "%s %s: %s" % (self.name, path, body[:300]))
        check(headers.get("Content-Type", "").startswith("application/json"),
              "%s %s: content type %r" % (self.name, path, headers.get("Content-Type")))
        return json.loads(body)

    def metrics_text(self):
        code, _, body = self.get("/metrics")
        eq(code, 200, "%s /metrics" % self.name)
        return body.decode()

    def stop(self):
        return self.proc.terminate(15)


def shoal(name, extra=(), port=None):
    port = port or free_port()
    addr = "127.0.0.1:%d" % port
    return Role(name, [EXE["shoal"], "--udp", addr, "--http", addr, "--workers", "2",
                       "--secret", SECRET, "--admin", "127.0.0.1:0", *extra], port)


def node(name, node_id, extra=()):
    return Role(name, [EXE["node"], "--id", node_id, "--bind", "tcp://127.0.0.1:%d" % free_port(),
                       "--redis", REDIS.url, "--workers", "1", "--heartbeat-interval", "200",
                       "--member-ttl", "1000", "--admin", "127.0.0.1:0", *extra])


def gateway(name, extra=()):
    port = free_port()
    addr = "127.0.0.1:%d" % port
    return Role(name, [EXE["gateway"], "--udp", addr, "--http", addr, "--workers", "2",
                       "--secret", SECRET, "--redis", REDIS.url, "--membership-interval", "200",
                       "--admin", "127.0.0.1:0", *extra], port)


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- metrics --------------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "unparsable sample line %r" % line)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def promtool(text, what):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, "promtool check metrics on %s: %s%s" % (what, r.stdout, r.stderr))


def wait_value(role, name, want, timeout=5.0, **labels):
    """Poll /metrics until name{labels} == want (counters are published once a second)."""
    got = wait_until(lambda: value(role.metrics_text(), name, **labels) == want, timeout, 0.1)
    if not got:
        eq(value(role.metrics_text(), name, **labels), want, "%s %s%r" % (role.name, name, labels))


# ---- tracker clients ------------------------------------------------------------------------


def udp_announce(port, info_hash, i, left=0, conn_id=None):
    """(action, the reply after action and transaction id) of one UDP announce."""
    with UdpTracker("127.0.0.1", port) as u:
        _, reply = u.announce_raw(info_hash, peer_id(i), 40000 + i, conn_id=conn_id, left=left)
        return struct.unpack(">I", reply[:4])[0], reply[8:]


def http_announce(port, info_hash, i, left=0):
    r = http_get("127.0.0.1", port, announce_target(info_hash, peer_id(i), 41000 + i, left=left))
    eq(r.status, 200, "HTTP announce")
    return bdecode(r.body)


def http_scrape(port, hashes):
    r = http_get("127.0.0.1", port, scrape_target(hashes))
    eq(r.status, 200, "HTTP scrape")
    return bdecode(r.body)


# ---- the steps ------------------------------------------------------------------------------

steps, test = clusterlib.step_list()
STATE = {}


@test
def standalone_metrics_move_exactly():
    s = STATE["s"] = shoal("shoal")
    before = s.metrics_text()
    promtool(before, "shoal")
    eq(value(before, "shoal_build_info", version=value_label(before, "shoal_build_info", "version"),
             role="shoal"), 1.0, "build info")
    a, b = h(), h()
    for i in range(3):  # 3 UDP announces (one seeder), 2 HTTP announces, 1 HTTP scrape
        udp_announce(s.port, a, i, left=0 if i == 0 else 100)
    for i in range(2):
        http_announce(s.port, b, 10 + i, left=100)
    http_scrape(s.port, [a, b])
    wait_value(s, "shoal_requests_total", 3, protocol="udp", action="announce", result="ok")
    wait_value(s, "shoal_requests_total", 2, protocol="http", action="announce", result="ok")
    wait_value(s, "shoal_requests_total", 1, protocol="http", action="scrape", result="ok")
    now = s.metrics_text()
    promtool(now, "shoal after traffic")
    eq(value(now, "shoal_swarms"), 2.0, "swarms")
    eq(value(now, "shoal_peers", family="ipv4"), 5.0, "IPv4 peers")
    eq(value(now, "shoal_seeders"), 1.0, "seeders")
    eq(value(now, "shoal_leechers"), 4.0, "leechers")
    # Peers handed out: the UDP announces got 0, 1 and 2 others; the HTTP ones 0 and 1.
    eq(value(now, "shoal_reply_peers_total", protocol="udp"), 3.0, "UDP peers handed out")
    eq(value(now, "shoal_reply_peers_total", protocol="http"), 1.0, "HTTP peers handed out")
    check(value(now, "shoal_repository_bytes") > 0, "repository bytes")
    # A bad connection id is counted by reason.
    eq(udp_announce(s.port, a, 99, conn_id=12345)[0], ACT_ERROR, "a made-up connection id")
    wait_value(s, "shoal_errors_total", 1, protocol="udp", reason="connection_id")
    stats = s.json("/api/v1/stats")
    got = [x["value"] for x in stats["shoal_requests_total"]["samples"]
           if x["labels"] == {"protocol": "udp", "action": "announce", "result": "ok"}]
    eq(got, [3], "the JSON stats agree with /metrics")
    eq(stats["shoal_requests_total"]["type"], "counter", "type in the JSON stats")


def value_label(text, name, label):
    for (n, labels), _ in samples(text).items():
        if n == name:
            return dict(labels).get(label)
    return None


@test
def standalone_probes_and_errors():
    s = STATE["s"]
    eq(s.json("/healthz"), {"status": "ok"}, "healthz")
    eq(s.json("/readyz"), {"status": "ready"}, "readyz")
    check("error" in s.json("/no/such/thing", status=404), "404 has a JSON error")
    check("error" in s.json("/metrics", status=405, method="POST", body=b""), "405 is JSON")
    check("error" in s.json("/api/v1/torrents/xyz", status=400), "bad hash: 400")
    check("error" in s.json("/api/v1/torrents/" + "ab" * 20, status=404), "no swarm: 404")
    # Writes without --admin-token-file: refused, whatever the token.
    check("error" in s.json("/api/v1/access/" + "ab" * 20, status=403, method="PUT",
                            token="anything", body=b""), "write without a token file")


@test
def standalone_torrent_lookup():
    s = STATE["s"]
    x = h()
    for i in range(5):
        udp_announce(s.port, x, 50 + i, left=0 if i < 2 else 7)
    j = s.json("/api/v1/torrents/%s?peers=3&offset=1" % x.hex().upper())
    eq((j["seeders"], j["leechers"], j["peers_total"], j["offset"]), (2, 3, 5, 1), "counts")
    eq(len(j["peers"]), 3, "a page of 3 peers")
    for p in j["peers"]:
        eq(p["ip"], "127.0.0.1", "peer address")
        check(40050 <= p["port"] <= 40054, "peer port %r" % p)
    eq(s.json("/api/v1/torrents/%s" % x.hex())["peers"], [], "no peers unless asked")
    check("error" in s.json("/api/v1/torrents/%s?peers=5000" % x.hex(), status=400), "peers cap")


@test
def token_and_local_access_list():
    tok = write("token", TOKEN + "\n")
    listed = h()
    lst = write("allow.list", "# the one torrent\n%s\n" % listed.hex())
    s = STATE["a"] = shoal("allow", ["--admin-token-file", tok, "--access-mode", "allow",
                                     "--access-list", lst])
    other = h()
    eq(udp_announce(s.port, listed, 1)[0], 1, "a listed torrent is served")
    action, payload = udp_announce(s.port, other, 2)
    eq(action, ACT_ERROR, "an unlisted torrent is refused")
    check(b"not allowed" in payload, "refusal text %r" % payload)
    path = "/api/v1/access/" + other.hex()
    check("error" in s.json(path, status=401, method="PUT", body=b""), "no token: 401")
    check("error" in s.json(path, status=401, method="PUT", body=b"", token="wrong"),
          "wrong token: 401")
    j = s.json(path, method="PUT", body=b"", token=TOKEN)
    eq((j["listed"], j["changed"]), (True, True), "PUT lists it")
    eq(udp_announce(s.port, other, 3)[0], 1, "served once listed")
    eq(s.json(path)["allowed"], True, "GET says allowed")
    eq(s.json("/api/v1/access")["entries"], 2, "two entries")
    s.json(path, method="DELETE", token=TOKEN)
    eq(udp_announce(s.port, other, 4)[0], ACT_ERROR, "refused again once unlisted")
    # A SIGHUP for nothing (the file unchanged) keeps the API's edits; a changed file replaces
    # the list.
    s.json(path, method="PUT", body=b"", token=TOKEN)
    s.proc.send(signal.SIGHUP)
    check(clusterlib.wait_for_log(s.proc, "reload: nothing changed", 5), "first reload logged")
    eq(udp_announce(s.port, other, 5)[0], 1, "an API edit survives a reload of an unchanged file")
    third = h()
    write("allow.list", "%s\n%s\n" % (listed.hex(), third.hex()))
    s.proc.send(signal.SIGHUP)
    check(clusterlib.wait_for_log(s.proc, "access list read again: 2 entries", 5),
          "the changed file is read: %s" % s.proc.log()[-800:])
    eq(udp_announce(s.port, third, 6)[0], 1, "listed in the new file")
    eq(udp_announce(s.port, other, 7)[0], ACT_ERROR, "the new file replaced the API's edit")
    m = s.metrics_text()
    promtool(m, "shoal with an access list")
    check(value(m, "shoal_access_checks_total", result="refused") >= 3, "refusals counted")
    wait_value(s, "shoal_errors_total", 3, protocol="udp", reason="access_list")
    wait_value(s, "shoal_requests_total", 3, protocol="udp", action="announce", result="failed")
    wait_value(s, "shoal_requests_total", 4, protocol="udp", action="announce", result="ok")
    eq(value(m, "shoal_access_mode", mode="allow"), 1.0, "mode gauge")


@test
def gateway_ready_flips_as_a_node_joins():
    g = STATE["g"] = gateway("gw-a")
    j = g.json("/readyz", status=503)
    eq(j["status"], "not ready", "a gateway without nodes is not ready")
    n = STATE["n1"] = node("node-1", "n1")
    check(wait_until(lambda: g.get("/readyz")[0] == 200, 10, 0.05), "gateway ready after a join")
    check(wait_until(lambda: n.get("/readyz")[0] == 200, 10, 0.05), "node ready once it holds")
    c = g.json("/api/v1/cluster")
    eq([m["id"] for m in c["members"]], ["n1"], "members")
    eq(c["members"][0]["partitions"], 4096, "one node owns every partition")
    check(re.fullmatch(r"[0-9a-f]{16}", c["epoch"] or ""), "epoch %r" % c["epoch"])
    nc = n.json("/api/v1/cluster")
    eq(nc["view"]["partitions"]["held"], 4096, "the node holds every partition")


@test
def gateway_metrics_and_routed_lookup():
    g, n = STATE["g"], STATE["n1"]
    x = h()
    for i in range(4):
        udp_announce(g.port, x, 70 + i, left=9)
    j = g.json("/api/v1/torrents/%s?peers=10" % x.hex())
    eq((j["leechers"], j["peers_total"], len(j["peers"])), (4, 4, 4), "lookup through the gateway")
    eq(n.json("/api/v1/torrents/%s" % x.hex())["leechers"], 4, "the same on the node")
    wait_value(g, "shoal_requests_total", 4, protocol="udp", action="announce", result="ok")
    # The router and the node publish their counters on their own clocks, not with the front
    # end's: each is polled for (bounded) rather than read once.
    check(wait_until(lambda: value(g.metrics_text(), "shoal_node_forwarded_total",
                                   node="n1") >= 4, 5, 0.05), "forwarded to n1")
    check(wait_until(lambda: value(n.metrics_text(), "shoal_node_requests_total",
                                   kind="announce", result="ok") >= 4, 5, 0.05), "node served")
    gm, nm = g.metrics_text(), n.metrics_text()
    promtool(gm, "gateway")
    promtool(nm, "node")
    eq(value(gm, "shoal_cluster_nodes"), 1.0, "table size")
    eq(value(nm, "shoal_partitions", state="held"), 4096.0, "node partitions held")


@test
def allow_list_edit_reaches_the_other_gateway():
    tok = write("token", TOKEN + "\n")
    a = STATE["ga"] = gateway("gw-allow-a", ["--access-mode", "allow", "--admin-token-file", tok])
    b = STATE["gb"] = gateway("gw-allow-b", ["--access-mode", "allow"])
    x = h()
    eq(udp_announce(b.port, x, 1)[0], ACT_ERROR, "B refuses an unlisted torrent")
    t0 = time.monotonic()
    a.json("/api/v1/access/" + x.hex(), method="PUT", body=b"", token=TOKEN)
    check(wait_until(lambda: udp_announce(b.port, x, 2)[0] == 1, 2.0, 0.05),
          "B serves the torrent within 2 s of the edit on A")
    print("   allowed on B %.0f ms after the PUT on A" % ((time.monotonic() - t0) * 1000))
    c = STATE["gc"] = gateway("gw-allow-c", ["--access-mode", "allow"])
    check(wait_until(lambda: udp_announce(c.port, x, 3)[0] == 1, 2.0, 0.05),
          "a gateway started later serves it")
    t0 = time.monotonic()
    a.json("/api/v1/access/" + x.hex(), method="DELETE", token=TOKEN)
    check(wait_until(lambda: udp_announce(b.port, x, 4)[0] == ACT_ERROR, 2.0, 0.05),
          "B refuses it within 2 s of the removal")
    eq(a.json("/api/v1/access")["store"], "redis", "the list is the cluster's")


@test
def sighup_reloads_the_config_file():
    lst = write("reload.list", "")
    x = h()
    conf = write("reload.conf", "access-mode = allow\naccess-list = %s\nlog-level = info\n" % lst)
    s = STATE["r"] = shoal("reload", ["--config", conf])
    eq(udp_announce(s.port, x, 1)[0], ACT_ERROR, "empty allow list refuses")
    write("reload.list", x.hex() + "\n")
    # --workers is also a flag here: flags win, so its change in the file changes nothing.
    write("reload.conf", "access-mode = allow\naccess-list = %s\nlog-level = debug\n"
          "interval = 1200\nworkers = 3\n" % lst)
    s.proc.send(signal.SIGHUP)
    check(wait_until(lambda: udp_announce(s.port, x, 2)[0] == 1, 5, 0.1),
          "the list re-read on SIGHUP")
    check(clusterlib.wait_for_log(s.proc, "--interval changed; it needs a restart", 5),
          "a restart-only change is reported: %s" % s.proc.log()[-1500:])
    log = s.proc.log()
    check("--log-level is now debug" in log, "the log level applies live")
    check("--workers" not in log, "a flag the file cannot override is not reported")
    check(s.proc.alive(), "SIGHUP never stops the process")


@test
def bad_config_lines_are_refused_with_file_and_line():
    for text, line, what in [("interval = 600\nno-such-key = 1\n", 2, "unknown"),
                             ("interval = 600\n\ninterval = 700\n", 3, "duplicate"),
                             ("# c\ninterval = soon\n", 2, "interval")]:
        conf = write("bad.conf", text)
        r = subprocess.run([EXE["shoal"], "--config", conf, "--udp", "127.0.0.1:0", "--http",
                            "off"], capture_output=True, text=True, timeout=30)
        eq(r.returncode, 2, "exit code for a bad %s line: %s" % (what, r.stderr))
        check("%s:%d" % (conf, line) in r.stderr and what in r.stderr,
              "names %s:%d and says %s: %r" % (conf, line, what, r.stderr))


@test
def a_misspelt_environment_variable_is_named():
    env = dict(os.environ, SHOAL_PEER_TIMOUT="600", SHOAL_INTERVAL="900")
    addr = "127.0.0.1:%d" % free_port()
    p = Proc("envtypo", [EXE["shoal"], "--udp", addr, "--http", "off", "--admin", "off"], env=env)
    PROCS.append(p)
    check(clusterlib.wait_for_log(p, "serving", 10), "started: %s" % p.log()[-500:])
    line = [ln for ln in p.log().splitlines() if "environment:" in ln]
    check(line and " warn " in line[0] and "SHOAL_PEER_TIMOUT" in line[0]
          and "SHOAL_INTERVAL" not in line[0], "a warning names the unknown variable only: %r"
          % line)
    eq(p.terminate(10), 0, "exit code")


@test
def print_config_round_trip():
    for exe, args in [(EXE["shoal"], ["--interval", "900", "--access-mode", "deny"]),
                      (EXE["gateway"], ["--nodes", "n1=tcp://127.0.0.1:7001"]),
                      (EXE["node"], ["--id", "n9"])]:
        first = subprocess.run([exe, *args, "--print-config"], capture_output=True, text=True,
                               timeout=30)
        eq(first.returncode, 0, "%s --print-config: %s" % (exe, first.stderr))
        conf = write("printed.conf", first.stdout)
        again = subprocess.run([exe, "--config", conf, "--print-config"], capture_output=True,
                               text=True, timeout=30)
        eq(again.returncode, 0, "%s --config printed: %s" % (exe, again.stderr))
        eq(again.stdout, first.stdout, "%s: the printed config reads back unchanged" % exe)
    check("interval = 900" in first.stdout or "interval" in first.stdout, "values printed")


@test
def json_logs():
    s = shoal("jsonlog", ["--log-format", "json"])
    s.stop()
    lines = [l for l in s.proc.log().splitlines() if l.strip()]
    check(len(lines) >= 2, "some lines")
    for line in lines:
        obj = json.loads(line)
        check({"time", "level", "role", "msg"} <= set(obj), "keys of %r" % obj)
        eq(obj["role"], "shoal", "role")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("-k", default="")
    args = ap.parse_args()
    EXE.update(shoal=args.shoal, node=args.node, gateway=args.gateway)
    rc = clusterlib.preflight([args.shoal, args.node, args.gateway])
    if rc is not None:
        return rc
    if not shutil.which("promtool"):
        print("SKIP: promtool is not installed (apt-get install prometheus)")
        return clusterlib.SKIPPED
    global REDIS
    REDIS = Redis().start()

    def logs():
        return "\n".join(clusterlib.stderr_tail(p.name, p.pid, p.log()) for p in PROCS)

    def stop_all():
        for p in PROCS:
            p.cleanup()
        REDIS.stop()
        shutil.rmtree(TMP, ignore_errors=True)

    return clusterlib.run_steps(steps, args.k, logs, stop_all)


if __name__ == "__main__":
    sys.exit(main())
