#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.redis_acl: shoal against a Redis that lets it do only what docs/security.md says.

One private redis-server; the default user gets a password (`requirepass`, the test's admin), and
the ACL users are made from the `ACL SETUSER` lines of docs/security.md, read from the file, for
cluster "acl1":
  documented   the documented users exist with only the documented rights (no +@all);
  cluster      3 shoal-node and a shoal-gateway as ACL user "shoal" (password in
               --redis-password-file), real UDP and HTTP announces; membership and snapshots work;
  access       an access-list edit through the gateway's admin API is stored in Redis under the
               ACL user and reaches the front ends;
  failover     a node SIGKILLed: its swarms come back from the snapshots on the survivors;
  rotation     the user's password changed in Redis and its connections killed: errors are logged
               (rate-limited), and the roles recover once the file holds the new password;
  noperm       a user without +incr: a node logs Redis's NOPERM reason naming 'incr', rate-limited;
  wrongpass    every role with a wrong password (URL or file) exits 2 with WRONGPASS and the URL
               redacted; URL password + file, an empty file, a file without --redis: exit 2;
  standalone   `shoal --redis` as ACL user "shoal-standalone": it refuses to start while the
               cluster is live (its read-only rights on the member keys), then snapshots and
               restores after a restart;
  requirepass  `shoal --redis redis://:PASSWORD@...` as the default user;
  tunnel       a standalone through a spiped pair (encrypting end, decrypting end before Redis),
               in DB 3 (the documented SELECT right);
  no-leak      (also: no sanitizer report in any process's stderr) no password byte string appears in any process's stderr (debug level), in
               --print-config and --help of every role (URL and file), in /api/v1/cluster,
               /api/v1/stats and /metrics, nor in /proc/PID/cmdline or environ with the file.

Invariant: every process is started on ports found free just before, dies with this script
(PR_SET_PDEATHSIG) and is stopped by its PID; every wait is a bounded poll.

    /usr/bin/python3 tests/integration/test_redis_acl.py --gateway build/cmd/shoal-gateway \\
        --node build/cmd/shoal-node --shoal build/cmd/shoal [-k NAME]
Exit code 77 (skipped) if redis-server or spiped is not installed.
"""

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import Proc, Redis, RespConn, RespError, wait_until  # noqa: E402
from trackerclient import (Skip, UdpTracker, check, eq, free_port, http_get,  # noqa: E402
                           announce_target, parse_peers, random_hash)

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "security.md")
CLUSTER = "acl1"
RNG = random.Random(int.from_bytes(os.urandom(8), "big"))
# Every password this test gives out; none may ever be shown.
PW = {k: "pw-%s-%s" % (k, secrets.token_hex(12)) for k in
      ("admin", "shoal", "shoal2", "standalone", "noincr", "wrong")}
SECRET = secrets.token_hex(32)
TOKEN = secrets.token_hex(16)
ADMIN_LINE = re.compile(r"admin (127\.0\.0\.1:\d+)")
EXE = {}
TMP = tempfile.mkdtemp(prefix="shoal-acl-")
STATE = {"procs": [], "seen": []}  # every process started; (what, text) of everything shown
steps, test = clusterlib.step_list()


def write(name, text, mode=0o600):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def seen(what, text):
    """Keep text for the no-leak step, and check it now (the earlier a leak shows, the better)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    STATE["seen"].append((what, text))
    for k, pw in PW.items():
        check(pw not in text, "the %s password appears in %s" % (k, what))
    if what.endswith("stderr"):  # an ASan/UBSan/LSan report fails the step
        bad = [ln for ln in text.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
        eq(bad[:1], [], "sanitizer report in %s" % what)


# ---- Redis as the test's admin ----------------------------------------------------------------

class AdminRedis(Redis):
    """clusterlib's Redis with the default user's password set once it runs (requirepass)."""

    def __init__(self):
        super().__init__()
        self.password = None

    def ping(self):
        try:
            with RespConn(self.port, 0.5) as c:
                if self.password:
                    c.call("AUTH", self.password)
                return c.call("PING") == "PONG"
        except (OSError, EOFError, RespError):
            return False

    def call(self, *args, timeout=2.0):
        with RespConn(self.port, timeout) as c:
            if self.password:
                c.call("AUTH", self.password)
            return c.call(*args)

    def url_for(self, user="", password=None, port=None):
        cred = ""
        if user or password is not None:
            cred = user + (":" + password if password is not None else "") + "@"
        return "redis://%s127.0.0.1:%d" % (cred, port or self.port)


def documented_rules():
    """{user: [rule, ...]} of the ACL SETUSER lines in docs/security.md."""
    rules = {}
    with open(DOC) as f:
        for line in f:
            if line.startswith("ACL SETUSER "):
                words = line.split()
                rules[words[2]] = words[3:]
    check("shoal" in rules and "shoal-standalone" in rules,
          "docs/security.md has no ACL SETUSER lines for shoal and shoal-standalone: %r" % rules)
    return rules


def make_user(name, rules, password, cluster=CLUSTER, drop=()):
    """The documented rules of user `rules`, for `cluster`, as user name (without `drop`)."""
    out = []
    for r in documented_rules()[rules]:
        if r in drop:
            continue
        if r == ">PASSWORD":
            r = ">" + password
        r = r.replace("~shoal:", "~%s:" % cluster)
        out.append(r)
    STATE["redis"].call("ACL", "SETUSER", name, *out)
    return out


# ---- processes ---------------------------------------------------------------------------------

class Role:
    """A started process (stderr in a file) with its tracker port and admin address."""

    def __init__(self, name, argv, port=None, wait=True):
        self.name, self.port, self.argv = name, port, argv
        self.proc = Proc(name, argv)
        STATE["procs"].append(self)
        self.admin = None
        if wait:
            found = wait_until(lambda: not self.proc.alive() or ADMIN_LINE.search(self.log()), 15)
            check(self.proc.alive() and found, "%s did not start: %s" % (name, self.log()[-2000:]))
            self.admin = ADMIN_LINE.search(self.log()).group(1)

    def log(self):
        return self.proc.log()

    def get(self, path, token=None, method="GET", body=None):
        req = urllib.request.Request("http://%s%s" % (self.admin, path), method=method, data=body)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                code, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, data = e.code, e.read()
        seen("%s %s %s" % (self.name, method, path), data)
        return code, data

    def json(self, path, status=200, **kw):
        code, body = self.get(path, **kw)
        eq(code, status, "%s %s: %s" % (self.name, path, body[:300]))
        return json.loads(body)

    def proc_files(self):
        """/proc/PID/cmdline and environ, kept for the no-leak check."""
        for f in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (self.proc.pid, f), "rb") as fh:
                seen("%s /proc/%s" % (self.name, f), fh.read().replace(b"\0", b" "))

    def finish(self, sig=signal.SIGTERM):
        """Stop it (by PID) and keep its whole log. Returns the exit code."""
        rc = self.proc.stop(sig, 15)
        seen("%s stderr" % self.name, self.log())
        return rc

    def exit_code(self, timeout=10.0):
        """The exit code of a process expected to exit by itself, its log kept."""
        try:
            rc = self.proc.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        seen("%s stderr" % self.name, self.log())
        return rc


def node_argv(node_id, url, pwfile, cluster=CLUSTER):
    return [EXE["node"], "--id", node_id, "--bind", "tcp://127.0.0.1:%d" % free_port(),
            "--redis", url] + (["--redis-password-file", pwfile] if pwfile else []) + [
            "--cluster", cluster, "--workers", "1", "--heartbeat-interval", "200",
            "--member-ttl", "1000", "--snapshot-interval", "200", "--admin", "127.0.0.1:0",
            "--log-level", "debug"]


def gateway_argv(port, url, pwfile, extra=()):
    addr = "127.0.0.1:%d" % port
    return [EXE["gateway"], "--udp", addr, "--http", addr, "--workers", "1", "--secret", SECRET,
            "--redis", url] + (["--redis-password-file", pwfile] if pwfile else []) + [
            "--cluster", CLUSTER, "--membership-interval", "100", "--node-timeout", "500",
            "--admin", "127.0.0.1:0", "--admin-token-file", STATE["token"],
            "--access-mode", "deny", "--log-level", "debug"] + list(extra)


def shoal_argv(port, url, pwfile, cluster=CLUSTER, extra=()):
    addr = "127.0.0.1:%d" % port
    return [EXE["shoal"], "--udp", addr, "--http", addr, "--workers", "1", "--secret", SECRET,
            "--redis", url] + (["--redis-password-file", pwfile] if pwfile else []) + [
            "--cluster", cluster, "--snapshot-interval", "200", "--admin", "127.0.0.1:0",
            "--log-level", "debug"] + list(extra)


def peer(i):
    return ("-AC0001-%012d" % i).encode()


def announce(port, h, i, numwant=50):
    """A UDP announce of peer i (port 10000 + i, a leecher); the peers returned."""
    with UdpTracker("127.0.0.1", port, timeout=2.0) as u:
        return set(u.announce(h, peer(i), 10000 + i, left=1, numwant=numwant)["peers"])


def restored(port, h, timeout=10.0):
    """Whether peer 1 of swarm h comes back to peer 2 within timeout: a standalone whose Redis
    was slow to answer (a sanitizer build) serves first and merges the snapshots when they come."""
    return wait_until(lambda: announce(port, h, 2) == {("127.0.0.1", 10001)}, timeout, 0.1)


def http_announce(port, h, i):
    r = http_get("127.0.0.1", port, announce_target(h, peer(i), 10000 + i, left=1))
    eq(r.status, 200, "HTTP announce")
    return set(parse_peers(r.bencoded()[b"peers"], 4))


def metric(role, name, **labels):
    code, body = role.get("/metrics")
    eq(code, 200, "%s /metrics" % role.name)
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
                   if labels else "")
    for line in body.decode().splitlines():
        if line.split(" ")[0] == want:
            return float(line.split(" ")[1])
    return None


def cluster_nodes(role):
    return sorted(n["id"] for n in role.json("/api/v1/cluster").get("members", []))


# ---- steps -------------------------------------------------------------------------------------

@test
def documented():
    r = STATE["redis"] = AdminRedis().start()
    r.call("CONFIG", "SET", "requirepass", PW["admin"])
    r.password = PW["admin"]
    check(r.ping(), "the admin password works")
    with RespConn(r.port) as c:
        try:
            c.call("GET", "x")
            raise AssertionError("the default user still gets in without a password")
        except RespError as e:
            check("NOAUTH" in str(e), "unauthenticated: %s" % e)
    make_user("shoal", "shoal", PW["shoal"])
    make_user("shoal-standalone", "shoal-standalone", PW["standalone"])
    make_user("shoal-noincr", "shoal", PW["noincr"], cluster="acl2", drop=("+incr",))
    desc = " ".join(x.decode() if isinstance(x, bytes) else str(x)
                    for x in r.call("ACL", "LIST"))
    seen("ACL LIST (hashes only)", desc)
    for line in r.call("ACL", "LIST"):
        line = line.decode() if isinstance(line, bytes) else line
        if line.startswith("user shoal"):
            check("+@all" not in line and "~*" not in line and "&*" not in line,
                  "a shoal user has broad rights: %s" % line)
    STATE["token"] = write("token", TOKEN + "\n")
    STATE["pwfile"] = write("shoal.pass", PW["shoal"] + "\n")


@test
def cluster():
    r = STATE["redis"]
    url = r.url_for("shoal")
    nodes = STATE["nodes"] = {}
    for i in (1, 2, 3):
        nodes["n%d" % i] = Role("n%d" % i, node_argv("n%d" % i, url, STATE["pwfile"]))
    port = free_port()
    g = STATE["gw"] = Role("gw", gateway_argv(port, url, STATE["pwfile"]), port)
    check(wait_until(lambda: cluster_nodes(g) == ["n1", "n2", "n3"], 10),
          "the gateway sees 3 nodes: %r" % cluster_nodes(g))
    # Swarms over UDP and HTTP, two peers each.
    hashes = STATE["hashes"] = [random_hash(RNG) for _ in range(120)]
    for k, h in enumerate(hashes):
        if k % 4 == 0:
            http_announce(port, h, 1)
        else:
            announce(port, h, 1)
        got = announce(port, h, 2)
        eq(got, {("127.0.0.1", 10001)}, "the second peer gets the first")
    # Every node writes snapshots, no Redis call fails.
    check(wait_until(lambda: all((metric(n, "shoal_snapshot_writes_total") or 0) > 0
                                 for n in nodes.values()), 10), "every node wrote snapshots")
    for n in list(nodes.values()) + [g]:
        eq(metric(n, "shoal_redis_errors_total", component="membership"), 0.0,
           "%s membership errors" % n.name)
        n.proc_files()
    eq(metric(g, "shoal_redis_connected", component="access"), 1.0, "access poller connected")
    keys = r.call("KEYS", "*")
    check(keys and all(k.startswith(CLUSTER.encode() + b":") for k in keys),
          "every key is under the cluster's prefix: %r" % keys[:5])
    for n in list(nodes.values()) + [g]:
        for path in ("/api/v1/cluster", "/api/v1/stats"):
            n.get(path)
    print("   %d keys in Redis, all under %s:" % (len(keys), CLUSTER))


@test
def access():
    g = STATE["gw"]
    x = random_hash(RNG)
    eq(announce(g.port, x, 1), set(), "an unlisted torrent is served (deny mode)")
    j = g.json("/api/v1/access/" + x.hex(), method="PUT", body=b"", token=TOKEN)
    check(j.get("changed"), "the PUT changed the list: %r" % j)
    check(STATE["redis"].call("SISMEMBER", CLUSTER + ":access:set", x) == 1,
          "the hash is in the cluster's set in Redis")

    def refused():
        try:
            announce(g.port, x, 2)
            return False
        except Exception as e:  # the tracker's error reply
            return "not allowed" in str(e)
    check(wait_until(refused, 3.0, 0.1), "the denied torrent is refused within 3 s")
    g.json("/api/v1/access/" + x.hex(), method="DELETE", token=TOKEN)
    check(wait_until(lambda: not refused(), 3.0, 0.1), "served again after the DELETE")
    eq(g.json("/api/v1/access")["store"], "redis", "the list is the cluster's")


@test
def failover():
    g, nodes = STATE["gw"], STATE["nodes"]
    victim = nodes["n2"]
    held = [h for h in STATE["hashes"] if victim.get("/api/v1/torrents/%s" % h.hex())[0] == 200]
    check(held, "n2 holds some of the swarms")
    # Its snapshots hold their peers (written every 200 ms; two peers a swarm).
    check(wait_until(lambda: (metric(victim, "shoal_snapshot_peers_total") or 0) >=
                     2 * len(held), 5), "n2's snapshots hold its swarms' peers")
    victim.finish(signal.SIGKILL)
    check(wait_until(lambda: cluster_nodes(g) == ["n1", "n3"], 10), "n2 left the table")
    lost = []
    for h in held:
        got = wait_until(lambda: announce(g.port, h, 3), 5, 0.2)
        if {("127.0.0.1", 10001), ("127.0.0.1", 10002)} - got:
            lost.append(h.hex())
    eq(lost, [], "swarms of the killed node restored from Redis (of %d)" % len(held))
    print("   %d swarms of n2 came back from the snapshots" % len(held))


@test
def rotation():
    r, g, nodes = STATE["redis"], STATE["gw"], STATE["nodes"]
    live = [nodes["n1"], nodes["n3"], g]
    new = PW["shoal2"]
    r.call("ACL", "SETUSER", "shoal", "resetpass", ">" + new)
    r.call("CLIENT", "KILL", "USER", "shoal")
    mark = {n.name: len(n.log()) for n in live}
    check(wait_until(lambda: all("WRONGPASS" in n.log()[mark[n.name]:] for n in live), 10),
          "every role logs WRONGPASS after the rotation")
    time.sleep(3)  # a window to count lines in, not a synchronisation
    for n in live:
        k = n.log()[mark[n.name]:].count("WRONGPASS")
        check(k <= 12, "%s: %d WRONGPASS lines in ~3 s: not rate-limited" % (n.name, k))
    eq(metric(nodes["n1"], "shoal_redis_connected", component="membership"), 0.0,
       "n1 not connected while the password is wrong")
    write("shoal.pass", new + "\n")
    check(wait_until(lambda: all(metric(n, "shoal_redis_connected", component="membership")
                                 == 1.0 for n in live), 10),
          "every role connected again with the file's new password")
    x = random_hash(RNG)
    announce(g.port, x, 1)
    eq(announce(g.port, x, 2), {("127.0.0.1", 10001)}, "served after the rotation")
    for n in live:
        seen("%s stderr" % n.name, n.log())


@test
def noperm():
    r = STATE["redis"]
    pw = write("noincr.pass", PW["noincr"])
    n = Role("noincr", node_argv("x1", r.url_for("shoal-noincr"), pw, cluster="acl2"))
    # Redis 7.0 says NOPERM for a command sent directly; for one a script calls, "The user
    # executing the script can't run this command or subcommand" (it does not name it).
    reason = re.compile(r"NOPERM|can't run this command")
    check(wait_until(lambda: reason.search(n.log()), 10), "the node logs Redis's reason: %s" %
          n.log()[-800:])
    line = next(x for x in n.log().splitlines() if reason.search(x))
    check("acquir" in line, "the line says what failed: %s" % line)
    print("   " + line[-200:])
    time.sleep(2)  # a window to count lines in
    k = len(reason.findall(n.log()))
    check(k <= 8, "%d permission errors in ~2 s: not rate-limited" % k)
    n.finish()


@test
def wrongpass():
    r = STATE["redis"]
    bad = write("wrong.pass", PW["wrong"] + "\n")
    port = free_port()
    cases = [
        ("node-url", node_argv("w1", r.url_for("shoal", PW["wrong"]), None)),
        ("node-file", node_argv("w2", r.url_for("shoal"), bad)),
        ("gw-file", gateway_argv(port, r.url_for("shoal"), bad)),
        ("gw-url", gateway_argv(port, r.url_for("shoal", PW["wrong"]), None)),
        ("shoal-file", shoal_argv(port, r.url_for("shoal-standalone"), bad)),
        ("shoal-requirepass", shoal_argv(port, r.url_for("", PW["wrong"]), None)),
    ]
    for name, argv in cases:
        p = Role(name, argv, wait=False)
        rc = p.exit_code(10)
        eq(rc, 2, "%s exit code (log: %s)" % (name, p.log()[-500:]))
        last = [x for x in p.log().splitlines() if x.strip()][-1]
        check("WRONGPASS" in last and "redis://" in last and "127.0.0.1:%d" % r.port in last,
              "%s: one clear line: %s" % (name, last))
    print("   " + last[-170:])
    empty = write("empty.pass", "")
    for name, argv, want in [
            ("twice", node_argv("w3", r.url_for("shoal", PW["shoal2"]), STATE["pwfile"]),
             "give the password once"),
            ("empty", node_argv("w4", r.url_for("shoal"), empty), "empty"),
            ("no-redis", [EXE["shoal"], "--redis-password-file", STATE["pwfile"]],
             "needs --redis")]:
        p = Role(name, argv, wait=False)
        eq(p.exit_code(10), 2, "%s exit code" % name)
        check(want in p.log(), "%s: %s" % (name, p.log()[-300:]))
    # Redis down at start: retried, not refused; a loose password file is a warning.
    dead = free_port()
    loose = write("loose.pass", PW["wrong"] + "\n", 0o644)
    p = Role("down", node_argv("w5", "redis://shoal@127.0.0.1:%d" % dead, loose))
    check(wait_until(lambda: "retrying" in p.log(), 5), "Redis down is retried")
    check(p.proc.alive(), "a node whose Redis is down keeps running")
    check("chmod o-r" in p.log(), "a loose file is warned about")
    p.finish()


@test
def standalone():
    r, nodes, g = STATE["redis"], STATE["nodes"], STATE["gw"]
    pw = write("standalone.pass", PW["standalone"] + "\n")
    url = r.url_for("shoal-standalone")
    port = free_port()
    p = Role("solo-refused", shoal_argv(port, url, pw), wait=False)
    eq(p.exit_code(10), 2, "a standalone refuses a live cluster's namespace")
    check("live nodes" in p.log(), "it says why: %s" % p.log()[-300:])
    # Stop the cluster; its member keys expire within the ttl (1 s).
    for n in [nodes["n1"], nodes["n3"], g]:
        n.finish()
    check(wait_until(lambda: r.call("EXISTS", CLUSTER + ":member:n1") == 0, 5),
          "the member keys expired")
    s = Role("solo", shoal_argv(port, url, pw), port)
    check("cannot check for a live cluster" not in s.log(), "the live-cluster check ran")
    hs = [random_hash(RNG) for _ in range(40)]
    for h in hs:
        announce(port, h, 1)
    check(wait_until(lambda: (metric(s, "shoal_snapshot_writes_total") or 0) > 0, 5),
          "the standalone wrote snapshots")
    s.get("/api/v1/stats")
    s.proc_files()
    eq(s.finish(), 0, "clean stop")
    s = Role("solo2", shoal_argv(port, url, pw), port)
    lost = [h.hex() for h in hs if not restored(port, h)]
    eq(lost, [], "every swarm restored after the restart (of %d)" % len(hs))
    keys = r.call("KEYS", CLUSTER + ":standalone:*")
    check(keys, "its keys are under %s:standalone:" % CLUSTER)
    s.finish()


@test
def requirepass():
    r = STATE["redis"]
    port = free_port()
    url = r.url_for("", PW["admin"])
    s = Role("rp", shoal_argv(port, url, None, cluster="rp"), port)
    h = random_hash(RNG)
    announce(port, h, 1)
    check(wait_until(lambda: (metric(s, "shoal_snapshot_writes_total") or 0) > 0, 5),
          "snapshots written as the default user")
    s.get("/metrics")
    s.finish()
    s = Role("rp2", shoal_argv(port, url, None, cluster="rp"), port)
    check(restored(port, h), "restored as the default user")
    s.finish()


@test
def tunnel():
    exe = shutil.which("spiped")
    if not exe:
        raise Skip("spiped is not installed (apt-get install spiped)")
    r = STATE["redis"]
    key = os.path.join(TMP, "spiped.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    mid, front = free_port(), free_port()
    dec = Proc("spiped-d", [exe, "-F", "-d", "-s", "[127.0.0.1]:%d" % mid,
                            "-t", "[127.0.0.1]:%d" % r.port, "-k", key])
    enc = Proc("spiped-e", [exe, "-F", "-e", "-s", "[127.0.0.1]:%d" % front,
                            "-t", "[127.0.0.1]:%d" % mid, "-k", key])
    STATE["spiped"] = [dec, enc]
    check(wait_until(lambda: clusterlib.tcp_open(front) and clusterlib.tcp_open(mid), 5),
          "spiped listens")
    # The encrypted hop does not carry the RESP text: a plain client there gets no answer.
    pw = write("standalone.pass", PW["standalone"] + "\n")
    port = free_port()
    url = "redis://shoal-standalone@127.0.0.1:%d/3" % front  # a DB: SELECT is granted
    s = Role("tun", shoal_argv(port, url, pw), port)
    h = random_hash(RNG)
    announce(port, h, 1)
    check(wait_until(lambda: (metric(s, "shoal_snapshot_writes_total") or 0) > 0, 5),
          "snapshots written through the tunnel")
    eq(metric(s, "shoal_redis_errors_total", component="access"), 0.0, "no Redis errors")
    s.finish()
    s = Role("tun2", shoal_argv(port, url, pw), port)
    check(restored(port, h), "restored through the tunnel")
    s.finish()
    check(b"db3:keys=" in r.call("INFO", "keyspace"), "its keys are in DB 3")
    try:
        with RespConn(mid, 1.0) as c:
            c.call("PING")
        raise AssertionError("the tunnel's encrypted port answered plain RESP")
    except (OSError, EOFError, RespError):
        pass


@test
def no_leak():
    r = STATE["redis"]
    pwf = STATE["pwfile"]
    for exe in ("node", "gateway", "shoal"):
        for argv in ([EXE[exe], "--redis", r.url_for("shoal", PW["shoal2"]), "--print-config"],
                     [EXE[exe], "--redis", r.url_for("shoal"), "--redis-password-file", pwf,
                      "--print-config"], [EXE[exe], "--help"]):
            env = dict(os.environ, SHOAL_REDIS=r.url_for("u", PW["shoal2"]))
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                 env=env if argv[-1] == "--help" else None)
            seen("%s %s" % (exe, " ".join(argv[1:])), out.stdout + out.stderr)
            if "--print-config" in argv and "--redis-password-file" not in argv:
                check("redis = redis://shoal:***@" in out.stdout, "the URL is shown redacted")
    whole = "\n".join(t for _, t in STATE["seen"])
    for k, pw in PW.items():
        check(pw not in whole, "the %s password appears somewhere" % k)
    procs = sum(1 for what, _ in STATE["seen"] if what.endswith("stderr"))
    print("   %d texts checked (%d process logs), %d KiB: no password in any" %
          (len(STATE["seen"]), procs, len(whole) // 1024))


def stop_all():
    for p in STATE["procs"]:
        p.proc.cleanup()
    for p in STATE.get("spiped", []):
        p.cleanup()
    if STATE.get("redis"):
        STATE["redis"].stop()
    shutil.rmtree(TMP, ignore_errors=True)


def logs():
    return "\n".join(clusterlib.stderr_tail(p.name, p.proc.pid, p.log()) for p in STATE["procs"]
                     if p.proc.errfile)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--shoal", required=True)
    ap.add_argument("-k", default="")
    a = ap.parse_args()
    EXE.update(gateway=a.gateway, node=a.node, shoal=a.shoal)
    rc = clusterlib.preflight([a.gateway, a.node, a.shoal])
    if rc is not None:
        return rc
    return clusterlib.run_steps(steps, a.k, logs, stop_all)


if __name__ == "__main__":
    sys.exit(main())
