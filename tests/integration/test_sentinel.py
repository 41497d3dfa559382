#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.sentinel: shoal follows a Redis Sentinel failover (issue 14), real processes on
loopback: the cluster roles, then the standalone tracker across a second failover.

The setup: a redis-server master and one replica (`replicaof`), both with a password
(requirepass, masterauth); three sentinels (`sentinel monitor NAME 127.0.0.1 PORT 2`,
down-after 1000 ms, failover-timeout 5000 ms), each with its own config file, a password of its
own (requirepass, sentinel-pass) and the data password (auth-pass); 3 shoal-node and 1
shoal-gateway with `--redis redis-sentinel://S1,S2,S3/NAME`, --redis-password-file and
--redis-sentinel-password-file; snapshots every 200 ms, heartbeats every 200 ms, member ttl
3000 ms. The steps, in order, each building on the last:
  start        Redis, the sentinels (until the replica is in sync and every sentinel knows the
               other two and the replica), the nodes and the gateway (until /readyz says ready
               and every partition is held); then N_SWARMS swarms announced through the gateway
               over UDP, each swarm's peers kept in a model, until the master's snapshots hold
               them all;
  master-kill  with UDP load running through the gateway, the master is SIGKILLed. The
               sentinels' +switch-master is timestamped (PSUBSCRIBE on every sentinel). Every
               shoal process must write to the new master within 1 s (down-after) + the failover
               time (kill -> +switch-master) + 2 s (the slack is scaled in a sanitizer build):
               "writing" is what MONITOR on the new master shows, each command's client
               address mapped to its process by its socket (/proc/net/tcp and /proc/PID/fd),
               a script's inner writes credited to the client that sent the script; a node
               must have written both its member key and snapshot keys. Requests unanswered
               from just before the kill until a member ttl after the last process came back
               may be at most LOAD_WINDOW: the load keeps at most that many requests in flight,
               so that is what one process dropping everything it holds at one instant loses;
               a serving path that waited on Redis would lose requests for as long as Redis was
               gone (~3 s at LOAD_RATE requests/s), far more. Membership must not flap: every
               node's shoal_partition_changes_total{change="acquired"} and its held/owned
               partitions, and every process's table epoch (shoal_cluster_table_info), are the
               same a member ttl after the switch as before the kill. Every process counts the
               move (shoal_redis_master_changes_total: membership, and a node's keeper) and
               logs the new master's address. The snapshots the replica had at the kill are
               read before it is promoted: their age is printed, and every peer announced in
               `start` must be in them (each snapshot cycle waits for the replica with WAIT);
  node-kill    new peers are announced to every swarm after the switch and reach the new
               master's snapshots; then a node is SIGKILLed: its partitions are taken over by
               the survivors and 100 % of its swarms come back with exactly the model's peers
               (a new peer announces and checks the list it gets);
  old-master   the old master restarts (same port, same config, same directory): the sentinels
               make it a replica of the new master (polled with ROLE); while the load goes on,
               no shoal process has a connection on it (CLIENT LIST, addresses mapped to our
               processes), MONITOR shows no write on it but the replication link's, every
               shoal process keeps writing to the new master, and every request is answered;
  summary      one line starting `sentinel:` with the numbers measured (quoted by the docs);
  stop         every shoal process exits 0 on SIGTERM, no sanitizer report in any stderr;
  standalone   the standalone tracker across a second failover (after `stop`: a standalone
               refuses a Redis where a cluster of its --cluster name is live). `shoal --redis
               redis-sentinel://S1,S2,S3/NAME` (the same password files, snapshots every 200 ms,
               UDP+HTTP and --admin on free ports); N_STANDALONE swarms, a peer each (HTTP for
               every 4th, UDP the others), until the master's and the replica's snapshots
               (keys under `shoal:standalone:`) hold them. The old master, restarted in
               `old-master`, must be a replica in sync of the new one and known so by every
               sentinel (bounded poll); then, with UDP load on half of the swarms, the master
               promoted in `master-kill` is SIGKILLed, the sentinels promote the old one
               (+switch-master, naming both). Within 1 s (down-after) + the failover time + 2 s:
               the standalone's shoal_redis_master_changes_total{component="keeper"} and
               shoal_redis_sentinel_switches_total each moved, MONITOR on the new master shows
               it writing `shoal:standalone:` keys, and every partition of its swarms has a
               snapshot there written after the kill with every peer (the partitions the load
               does not touch, only by the keeper's full rewrite on a new server); 1 s later
               both counters moved by exactly 1 and every load request was answered. New peers
               are announced to every swarm and reach the new master's snapshots; the
               standalone exits 0 on SIGTERM and is started again: it restores exactly the
               2 * N_STANDALONE peers in N_STANDALONE swarms, and every swarm answers with
               exactly the peers announced before and after the switch. One line starting
               `sentinel standalone:` with its numbers and the step's time.

Invariant: every process is started on ports found free just before, dies with this script
(PR_SET_PDEATHSIG) and is stopped by its PID; every wait is a bounded poll.

    /usr/bin/python3 tests/integration/test_sentinel.py --gateway build/cmd/shoal-gateway \\
        --node build/cmd/shoal-node --shoal build/cmd/shoal [-k NAME]
(The steps build on each other: -k runs the steps whose name contains NAME, so only a first
step, or a name all steps up to one share, makes sense alone.)
Exit code 77 (skipped) if redis-server is not installed. redis-sentinel is used when installed
(Debian's redis-sentinel package), else `redis-server CONF --sentinel`, the same program.
"""

import argparse
import itertools
import os
import re
import secrets
import select
import shutil
import signal
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import (Proc, RespConn, RespError, sanitized, sanitizer_report,  # noqa: E402
                        wait_until)
from test_failover import UdpBatch, decode_snapshot, partition_of  # noqa: E402
from trackerclient import (ACT_ANNOUNCE, ACT_CONNECT, ACT_ERROR, EV_STARTED, Daemon,  # noqa: E402
                           HttpConn, UdpTracker, announce_target, check, eq, get_request,
                           pack_announce, pack_connect, parse_error, random_hash)

MASTER = "shoalmaster"
PREFIX = "shoal"
PARTITIONS = 4096
SNAP_MS = 200
HEARTBEAT_MS = 200
TTL_MS = 3000  # >= 3 s: a failover shorter than this must move no partition
GW_POLL_MS = 100
NODE_TIMEOUT_MS = 500
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000
N_SWARMS = 400
N_STANDALONE = 200  # swarms announced to the standalone tracker
LOAD_WINDOW = 8  # requests the load keeps in flight at most
LOAD_RATE = 200  # requests per second
LOAD_TIMEOUT = 1.0  # a request unanswered this long counts as failed
DATA_PW = "data-" + secrets.token_hex(12)
SENT_PW = "sent-" + secrets.token_hex(12)
SECRET = secrets.token_hex(32)
ADMIN_LINE = re.compile(r"admin (127\.0\.0\.1:\d+)")
ROLES = {"A": 10000, "B": 20000, "X": 30000}  # peer roles: base port; a peer's port names it
NODES = ("n1", "n2", "n3")
SCRIPT_CMDS = {b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro"}


def peer_id(role, i):
    return b"-SN0001-" + (b"%c%011d" % (ord(role), i))


def peer_port(role, i):
    return ROLES[role] + i


def dec(v):
    """Bulk strings decoded, in arrays too."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return [dec(x) for x in v] if isinstance(v, list) else v


def pairs(flat):
    """A flat [k1, v1, k2, v2...] reply as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


def rcall(port, password, *args, timeout=2.0):
    """One command on a fresh connection after AUTH; the decoded reply."""
    with RespConn(port, timeout) as c:
        if password:
            c.call("AUTH", password)
        return dec(c.call(*args))


def tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- Redis and the sentinels -------------------------------------------------------------------


class DataRedis:
    """A redis-server with a config file in its own directory under the test's temp dir (the
    sentinels rewrite it on a failover), a password, no persistence. Restarted on its port with
    the same file and directory."""

    def __init__(self, name, replicaof=None):
        self.name = name
        self.port = clusterlib.free_port()
        self.dir = os.path.join(ENV.tmp, name)
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "redis.conf")
        self.logfile = os.path.join(self.dir, "redis.log")
        lines = ["port %d" % self.port, "bind 127.0.0.1", "protected-mode no",
                 "dir %s" % self.dir, 'save ""', "appendonly no", "requirepass %s" % DATA_PW,
                 "masterauth %s" % DATA_PW, "repl-diskless-sync yes",
                 "repl-diskless-sync-delay 0", "logfile %s" % self.logfile, "loglevel notice"]
        if replicaof:
            lines.append("replicaof 127.0.0.1 %d" % replicaof.port)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o600)
        self.proc = None

    def start(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc:
                self.proc.cleanup()
            self.proc = Proc("redis-" + self.name, [ENV.redis_server, self.conf])
            if wait_until(lambda: not self.proc.alive() or self.ping(), 2.0, 0.02) and \
                    self.proc.alive():
                return self
            # The port may still be held for a moment by the old process's sockets.
            check(time.monotonic() < deadline, "redis %s did not start on port %d: %s" % (
                self.name, self.port, tail(self.logfile)))
            time.sleep(0.1)

    def ping(self):
        try:
            return rcall(self.port, DATA_PW, "PING", timeout=0.5) == "PONG"
        except (OSError, EOFError, RespError):
            return False

    def call(self, *args, timeout=2.0):
        return rcall(self.port, DATA_PW, *args, timeout=timeout)

    def info(self, section):
        out = {}
        for line in self.call("INFO", section).splitlines():
            k, sep, v = line.partition(":")
            if sep:
                out[k] = v
        return out

    def kill(self):
        self.proc.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.alive()


class Sentinel:
    """One sentinel process with its own config file (it rewrites it) and password."""

    def __init__(self, k, master):
        self.name = "s%d" % k
        self.port = clusterlib.free_port()
        self.dir = os.path.join(ENV.tmp, self.name)
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "sentinel.conf")
        self.logfile = os.path.join(self.dir, "sentinel.log")
        lines = ["port %d" % self.port, "bind 127.0.0.1", "protected-mode no",
                 "dir %s" % self.dir, "logfile %s" % self.logfile,
                 "requirepass %s" % SENT_PW, "sentinel sentinel-pass %s" % SENT_PW,
                 "sentinel monitor %s 127.0.0.1 %d 2" % (MASTER, master.port),
                 "sentinel down-after-milliseconds %s %d" % (MASTER, DOWN_AFTER_MS),
                 "sentinel failover-timeout %s %d" % (MASTER, FAILOVER_TIMEOUT_MS),
                 "sentinel parallel-syncs %s 1" % MASTER,
                 "sentinel auth-pass %s %s" % (MASTER, DATA_PW)]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o600)
        self.proc = None

    def start(self, timeout=10.0):
        if ENV.redis_sentinel:
            argv = [ENV.redis_sentinel, self.conf]
        else:
            argv = [ENV.redis_server, self.conf, "--sentinel"]
        self.proc = Proc("sentinel-" + self.name, argv)
        check(wait_until(lambda: not self.proc.alive() or self.ping(), timeout, 0.05) and
              self.proc.alive(), "sentinel %s did not start: %s" % (self.name,
                                                                    tail(self.logfile)))
        return self

    def ping(self):
        try:
            return self.call("PING", timeout=0.5) == "PONG"
        except (OSError, EOFError, RespError):
            return False

    def call(self, *args, timeout=2.0):
        return rcall(self.port, SENT_PW, *args, timeout=timeout)

    def master(self):
        return pairs(self.call("SENTINEL", "MASTER", MASTER))

    def replicas(self):
        return [pairs(r) for r in self.call("SENTINEL", "REPLICAS", MASTER)]

    def master_addr(self):
        host, port = self.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return host, int(port)


class SentinelEvents(clusterlib.Background):
    """PSUBSCRIBE * on one sentinel: every event (+sdown, +odown, +switch-master, ...) kept as
    (wall time received, sentinel name, channel, message)."""

    what = "sentinel event reader"

    def __init__(self, sentinel, events, lock):
        super().__init__()
        self.sentinel = sentinel
        self.events = events
        self.lock = lock
        self.ready = threading.Event()

    def loop(self):
        with RespConn(self.sentinel.port, 2.0) as c:
            c.call("AUTH", SENT_PW)
            c.sock.sendall(RespConn.encode(["PSUBSCRIBE", "*"]))
            c._reply()  # the subscription's confirmation
            self.ready.set()
            while not self.stop_flag.is_set():
                if not c.buf:
                    r, _, _ = select.select([c.sock], [], [], 0.2)
                    if not r:
                        continue
                msg = dec(c._reply())
                if isinstance(msg, list) and msg and msg[0] == "pmessage":
                    with self.lock:
                        self.events.append((time.time(), self.sentinel.name, msg[2], msg[3]))


# ---- who is a client: a loopback address mapped to a process -----------------------------------


def _hexaddr(port):
    return "0100007F:%04X" % port


def socket_inode(local_port, remote_port):
    """The inode of the TCP socket 127.0.0.1:local_port -> 127.0.0.1:remote_port, or None."""
    want = (_hexaddr(local_port), _hexaddr(remote_port))
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if (parts[1], parts[2]) == want:
                    return parts[9]
    except OSError:
        pass
    return None


def socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def client_name(addr, server_port):
    """Who holds the client end of a connection to the Redis on server_port whose address Redis
    shows as addr ("127.0.0.1:PORT"): a shoal process's name, a sentinel's, "test", "link:PORT"
    (the client is another Redis: a replication link), or "?" (closed, or not ours)."""
    host, _, port = addr.rpartition(":")
    try:
        port = int(port)
    except ValueError:
        return "?"
    if host != "127.0.0.1":
        return "?"
    if port in ENV.redis_ports():
        return "link:%d" % port
    inode = socket_inode(port, server_port)
    if inode is None:
        return "?"
    for pid, name in ENV.pids().items():
        if inode in socket_inodes(pid):
            return name
    return "?"


class Monitor(clusterlib.Background):
    """MONITOR on one Redis: every command as (server time, client name, command, first keys).
    Commands a script runs (client "lua") are credited to the client that sent the script."""

    what = "MONITOR reader"
    LINE = re.compile(rb'^\+(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$')
    ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')

    def __init__(self, redis):
        super().__init__()
        self.redis = redis
        self.rows = []
        self.names = {}  # addr -> client name, resolved when first seen
        self.ready = threading.Event()
        self.connects = 0

    def loop(self):
        while not self.stop_flag.is_set():
            try:
                self._session()
            except (OSError, EOFError):
                # The server went away (the old master converted, or killed): reconnect.
                if not wait_until(lambda: self.stop_flag.is_set() or self.redis.ping(), 10, 0.05):
                    raise
            if not self.redis.alive():
                return

    def _session(self):
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=2.0) as s:
            s.sendall(RespConn.encode(["AUTH", DATA_PW]) + RespConn.encode(["MONITOR"]))
            buf = b""
            oks = 0
            last_script = "?"
            while not self.stop_flag.is_set():
                r, _, _ = select.select([s], [], [], 0.2)
                if not r:
                    continue
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise EOFError("monitor connection closed")
                buf += chunk
                lines = buf.split(b"\r\n")
                buf = lines.pop()
                for line in lines:
                    if oks < 2:  # +OK (AUTH), +OK (MONITOR)
                        check(line == b"+OK", "MONITOR on %s: %r" % (self.redis.name, line))
                        oks += 1
                        if oks == 2:
                            self.connects += 1
                            self.ready.set()
                        continue
                    m = self.LINE.match(line)
                    if not m:
                        continue
                    ts, addr, rest = float(m.group(1)), m.group(2).decode(), m.group(3)
                    args = [a.group(1) for a in itertools.islice(self.ARG.finditer(rest), 6)]
                    if not args:
                        continue
                    cmd = args[0].lower()
                    if addr == "lua":
                        name = last_script
                    else:
                        name = self.names.get(addr)
                        if name is None or name == "?":
                            name = self.names[addr] = client_name(addr, self.redis.port)
                        if cmd in SCRIPT_CMDS:
                            last_script = name
                    if cmd in SCRIPT_CMDS:
                        try:
                            n = int(args[2])
                        except (IndexError, ValueError):
                            n = 0
                        keys = args[3:3 + min(n, 3)]
                    else:
                        keys = args[1:3]
                    self.rows.append((ts, name, cmd.decode(), addr == "lua",
                                      [k.decode("utf-8", "replace") for k in keys]))

    def since(self, t):
        return [r for r in list(self.rows) if r[0] >= t]


def is_write(row):
    _, _, cmd, _, _ = row
    return cmd in ENV.write_cmds


def first_writes(rows):
    """{client name: (first command, first write, first member-key write, first snapshot-key
    write)} (server times; None where there is none)."""
    out = {}
    for ts, name, cmd, inner, keys in rows:
        first = out.setdefault(name, [ts, None, None, None])
        if cmd in ENV.write_cmds:
            if first[1] is None:
                first[1] = ts
            if first[2] is None and any(":member:" in k or ":gateway:" in k for k in keys):
                first[2] = ts
            if first[3] is None and any(":{p" in k for k in keys):
                first[3] = ts
    return out


# ---- shoal processes -----------------------------------------------------------------------------


def fetch(admin, path, timeout=3.0):
    try:
        with urllib.request.urlopen("http://%s%s" % (admin, path), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def metrics(admin):
    """{'name{labels}': value} of a process's /metrics."""
    code, body = fetch(admin, "/metrics")
    eq(code, 200, "GET /metrics on %s" % admin)
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def table_epoch(m):
    eps = [k for k in m if k.startswith("shoal_cluster_table_info{")]
    return eps[0] if len(eps) == 1 else tuple(eps)


class ShoalProc:
    """A node or the gateway: its process, stderr, admin address."""

    def __init__(self, name, proc=None, daemon=None):
        self.name = name
        self.proc = proc  # clusterlib.Proc (a node)
        self.daemon = daemon  # trackerclient.Daemon (the gateway)
        self.admin = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else self.daemon.proc.pid

    def alive(self):
        return self.proc.alive() if self.proc else self.daemon.alive()

    def log(self):
        return self.proc.log() if self.proc else self.daemon.stderr_text()

    def wait_admin(self, timeout=15):
        found = wait_until(lambda: not self.alive() or ADMIN_LINE.search(self.log()), timeout)
        check(self.alive() and found, "%s did not start: %s" % (self.name, self.log()[-2000:]))
        self.admin = ADMIN_LINE.search(self.log()).group(1)

    def ready(self):
        try:
            return fetch(self.admin, "/readyz", 1.0)[0] == 200
        except OSError:
            return False

    def metrics(self):
        return metrics(self.admin)


def redis_flags():
    return ["--redis", ENV.url, "--redis-password-file", ENV.data_pw_file,
            "--redis-sentinel-password-file", ENV.sent_pw_file]


def start_node(node_id):
    port = clusterlib.free_port()
    argv = [ENV.node_bin, "--id", node_id, "--bind", "tcp://127.0.0.1:%d" % port] + \
        redis_flags() + ["--workers", "1", "--snapshot-interval", str(SNAP_MS),
                         "--heartbeat-interval", str(HEARTBEAT_MS), "--member-ttl", str(TTL_MS),
                         "--admin", "127.0.0.1:0", "--log-level", "info"]
    p = ShoalProc(node_id, proc=Proc("node-" + node_id, argv))
    ENV.shoal[node_id] = p
    p.wait_admin()
    return p


def start_gateway():
    def argv(port):
        return [ENV.gateway_bin, "--udp", "127.0.0.1:%d" % port, "--http",
                "127.0.0.1:%d" % port] + redis_flags() + [
            "--secret", SECRET, "--workers", "1", "--membership-interval", str(GW_POLL_MS),
            "--node-timeout", str(NODE_TIMEOUT_MS), "--admin", "127.0.0.1:0",
            "--log-level", "info"]
    d = Daemon("gw", argv, preexec_fn=clusterlib.die_with_parent)
    p = ShoalProc("gw", daemon=d)
    ENV.shoal["gw"] = p
    d.start(ready_timeout=15)
    p.wait_admin()
    return p


# ---- Redis views ---------------------------------------------------------------------------------


def key(p, what):
    return "%s:{p%d}:%s" % (PREFIX, p, what)


def mget_raw(redis, keys):
    out = []
    with RespConn(redis.port, 5.0) as c:
        c.call("AUTH", DATA_PW)
        for k in range(0, len(keys), 512):
            out.extend(c.call("MGET", *keys[k:k + 512]))
    return out


def owners(redis, ps=range(PARTITIONS)):
    ps = list(ps)
    return {p: (None if v is None else v.decode())
            for p, v in zip(ps, mget_raw(redis, [key(p, "owner") for p in ps]))}


def snapshots(redis, ps):
    ps = list(ps)
    return {p: (None if v is None else decode_snapshot(v))
            for p, v in zip(ps, mget_raw(redis, [key(p, "snap") for p in ps]))}


def expected_peers(i, exclude=None):
    return {("127.0.0.1", peer_port(r, j)) for (r, j) in ENV.model[i] if (r, j) != exclude}


def snapshot_gaps(redis, idx, roles=None):
    """Swarm indices whose model peers (of roles, or all) are not all in their partition's
    snapshot on redis."""
    snaps = snapshots(redis, sorted({partition_of(ENV.hashes[i]) for i in idx}))
    missing = []
    for i in idx:
        s = snaps[partition_of(ENV.hashes[i])]
        want = {("127.0.0.1", peer_port(r, j)) for (r, j) in ENV.model[i]
                if roles is None or r in roles}
        if s is None or not want <= s["swarms"].get(ENV.hashes[i], set()):
            missing.append(i)
    return missing


# ---- clients -------------------------------------------------------------------------------------


def announce_peers(role, idx, deadline_s=15):
    """Announce peer (role, i) to swarm i for every i in idx through the gateway over UDP,
    retrying what is not answered (bounded); the answered ones join the model."""
    todo = list(idx)
    deadline = time.monotonic() + deadline_s
    b = UdpBatch(ENV.gw.daemon.port, tries=1)
    failures = 0
    try:
        while todo:
            check(time.monotonic() < deadline, "%d announces of role %s still unanswered after "
                  "%d s" % (len(todo), role, deadline_s))
            items = [(ENV.hashes[i], peer_id(role, i), peer_port(role, i), 100, EV_STARTED, 0)
                     for i in todo]
            res, _ = b.run(items)
            again = []
            for i, r in zip(todo, res):
                if r is None or "error" in r:
                    failures += 1
                    again.append(i)
                else:
                    ENV.model[i][(role, i)] = 100
            todo = again
    finally:
        b.close()
    return failures


def check_swarms(idx, deadline_s=0.0):
    """Announce the checker peer X to every swarm in idx and compare the peers it gets back with
    the model, exactly; retried until deadline_s for the ones that differ. Returns (seconds,
    [(i, got, want)])."""
    t0 = time.monotonic()
    todo = list(idx)
    b = UdpBatch(ENV.gw.daemon.port, tries=3)
    try:
        while True:
            items = [(ENV.hashes[i], peer_id("X", i), peer_port("X", i), 100, 0, 200)
                     for i in todo]
            res, _ = b.run(items)
            bad = []
            for i, r in zip(todo, res):
                if r is not None and "error" not in r:
                    ENV.model[i][("X", i)] = 100
                want = sorted(expected_peers(i, exclude=("X", i)))
                got = r if r is None or "error" in r else sorted(r["peers"])
                if got != want:
                    bad.append((i, got, want))
            if not bad or time.monotonic() - t0 >= deadline_s:
                return time.monotonic() - t0, bad
            todo = [i for i, _, _ in bad]
            time.sleep(0.1)
    finally:
        b.close()


class Load(clusterlib.Background):
    """UDP announces through the gateway (peers A again: idempotent), LOAD_RATE a second, at most
    LOAD_WINDOW in flight, each unanswered after LOAD_TIMEOUT counted as failed (no resend).
    Every request is kept as (wall time sent, wall time done, outcome: "ok", "timeout" or the
    error text). hashes: the swarms (ENV.hashes unless given; the standalone's own)."""

    what = "load"

    def __init__(self, port, hashes=None):
        super().__init__()
        self.port = port
        self.hashes = hashes if hashes is not None else ENV.hashes
        self.log = []
        self.local = None  # the client's address, for a diagnosis

    def loop(self):
        with UdpTracker("127.0.0.1", self.port, timeout=LOAD_TIMEOUT) as u:
            self.local = u.sock.getsockname()
            cid, cid_at, cid_tid = u.connect(), time.monotonic(), None
            inflight = {}  # tid -> (wall sent, monotonic deadline, swarm)
            k = 0
            next_send = time.monotonic()
            while not self.stop_flag.is_set() or inflight:
                now = time.monotonic()
                if now - cid_at > 30:  # connection ids expire: a fresh one now and then
                    cid_tid, cid_at = u.new_tid(), now
                    u.send(pack_connect(cid_tid))
                while (not self.stop_flag.is_set() and len(inflight) < LOAD_WINDOW and
                       now >= next_send):
                    i = k % len(self.hashes)
                    k += 1
                    tid = u.new_tid()
                    u.send(pack_announce(cid, tid, self.hashes[i], peer_id("A", i),
                                         peer_port("A", i), left=100, numwant=0))
                    inflight[tid] = (time.time(), now + LOAD_TIMEOUT, i)
                    next_send += 1.0 / LOAD_RATE
                    if next_send < now - 1.0:
                        next_send = now  # do not burst after a stall of this thread
                # Wait for a reply until the next send is due (if the window has room) or a
                # deadline passes; never for 0 s, which would not read at all.
                wake = min([d for _, d, _ in inflight.values()] +
                           ([next_send] if len(inflight) < LOAD_WINDOW else []))
                data = u.recv(min(max(wake - time.monotonic(), 0.001), 0.05))
                while data:  # then every reply already here (this thread may have been late)
                    if len(data) >= 8:
                        action, tid = struct.unpack(">II", data[:8])
                        if tid == cid_tid and action == ACT_CONNECT and len(data) == 16:
                            cid, cid_tid = struct.unpack(">Q", data[8:16])[0], None
                        elif tid in inflight:
                            sent, _, i = inflight.pop(tid)
                            outcome = "ok" if action == ACT_ANNOUNCE else (
                                parse_error(data)[1] if action == ACT_ERROR else
                                "action %d" % action)
                            self.log.append((sent, time.time(), outcome, i))
                    data = u.recv(0.0001)
                now = time.monotonic()
                for tid, (sent, deadline, i) in list(inflight.items()):
                    if deadline <= now:
                        del inflight[tid]
                        self.log.append((sent, time.time(), "timeout", i))

    def failures(self, t0, since, redis=None):
        """The failed requests sent since `since`: when (seconds after t0), and with redis, the
        partition's owner there (for a diagnosis)."""
        bad = [r for r in list(self.log) if r[0] >= since and r[2] != "ok"]
        own = owners(redis, {partition_of(ENV.hashes[r[3]]) for r in bad}) if redis else {}
        return ", ".join("%.2f%s" % (r[0] - t0, (" " + str(own.get(partition_of(
            ENV.hashes[r[3]])))) if redis else "") for r in bad[:3 * LOAD_WINDOW])

    def between(self, t0, t1):
        """(requests sent in [t0, t1), failed ones, {outcome: count} of the failed)."""
        rows = [r for r in list(self.log) if t0 <= r[0] < t1]
        bad = {}
        for _, _, o, _ in rows:
            if o != "ok":
                bad[o] = bad.get(o, 0) + 1
        return len(rows), sum(bad.values()), bad


# ---- the environment -----------------------------------------------------------------------------


class Env:
    def __init__(self, gateway, node, shoal, factor):
        self.gateway_bin = gateway
        self.node_bin = node
        self.shoal_bin = shoal
        self.factor = factor
        self.redis_server = shutil.which("redis-server")
        self.redis_sentinel = shutil.which("redis-sentinel")
        self.tmp = tempfile.mkdtemp(prefix="shoal-sentinel-")
        self.data_pw_file = os.path.join(self.tmp, "data.pass")
        self.sent_pw_file = os.path.join(self.tmp, "sentinel.pass")
        for path, pw in ((self.data_pw_file, DATA_PW), (self.sent_pw_file, SENT_PW)):
            with open(path, "w") as f:
                f.write(pw + "\n")
            os.chmod(path, 0o600)
        self.master = self.replica = None
        self.sentinels = []
        self.events = []
        self.events_lock = threading.Lock()
        self.watchers = []
        self.monitors = []
        self.load = None
        self.url = None
        self.shoal = {}  # name -> ShoalProc
        self.dead = []
        self.write_cmds = set()
        self.hashes = [random_hash() for _ in range(N_SWARMS)]
        self.model = [dict() for _ in range(N_SWARMS)]
        self.sa_hashes = [random_hash() for _ in range(N_STANDALONE)]  # the standalone's swarms
        self.sa_model = [dict() for _ in range(N_STANDALONE)]
        self.numbers = {}  # what the summary line prints
        self.log_marks = {}  # shoal process -> length of its stderr at the master's kill

    @property
    def gw(self):
        return self.shoal["gw"]

    def redis_ports(self):
        return {r.port for r in (self.master, self.replica) if r}

    def pids(self):
        out = {os.getpid(): "test"}
        for name, p in list(self.shoal.items()):
            if p.alive():
                out[p.pid] = name
        for s in self.sentinels:
            if s.proc and s.proc.alive():
                out[s.proc.pid] = "sentinel"
        return out

    def switch_events(self, t0):
        with self.events_lock:
            return [e for e in self.events if e[2] == "+switch-master" and e[0] >= t0]

    def stop_all(self):
        for b in [self.load] + self.monitors + self.watchers:
            if b:
                b.stop_flag.set()
        for b in [self.load] + self.monitors + self.watchers:
            if b:
                b.join(2)
        for p in list(self.shoal.values()) + self.dead:
            if p.proc:
                p.proc.cleanup()
            else:
                p.daemon.stop()
        for s in self.sentinels:
            if s.proc:
                s.proc.cleanup()
        for r in (self.master, self.replica):
            if r and r.proc:
                r.proc.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self):
        out = []
        for p in list(self.shoal.values()) + self.dead:
            out.append(clusterlib.stderr_tail(p.name, p.pid, p.log(),
                                              note="" if p.alive() else ", exited"))
        for r in (self.master, self.replica):
            if r:
                out.append("---- log of redis %s (port %d) ----\n%s" % (r.name, r.port,
                                                                       tail(r.logfile)))
        for s in self.sentinels:
            out.append("---- log of sentinel %s (port %d) ----\n%s" % (s.name, s.port,
                                                                      tail(s.logfile)))
        with self.events_lock:
            out.append("---- sentinel events ----\n%s" % "\n".join(
                "%.3f %s %s %s" % e for e in self.events[-30:]))
        return "\n".join(out)


ENV = None
TESTS, test = clusterlib.step_list()


def sentinels_ready():
    """Every sentinel knows the other two and the replica (link ok), and the replica is in
    sync with the master."""
    try:
        rep = ENV.replica.info("replication")
        if rep.get("master_link_status") != "up" or rep.get("master_sync_in_progress") != "0":
            return False
        if "state=online" not in ENV.master.info("replication").get("slave0", ""):
            return False
        for s in ENV.sentinels:
            m = s.master()
            if m.get("num-other-sentinels") != "2" or m.get("num-slaves") != "1" or \
                    m.get("flags") != "master":
                return False
            if not any(r.get("port") == str(ENV.replica.port) and r.get("flags") == "slave" and
                       r.get("master-link-status") == "ok" for r in s.replicas()):
                return False
        return True
    except (OSError, EOFError, RespError):
        return False


def node_state():
    """{node: (acquired, held, owned)} from each live node's /metrics."""
    out = {}
    for n in NODES:
        p = ENV.shoal.get(n)
        if p and p.alive():
            m = p.metrics()
            out[n] = (m.get('shoal_partition_changes_total{change="acquired"}'),
                      m.get('shoal_partitions{state="held"}'),
                      m.get('shoal_partitions{state="owned"}'))
    return out


def epochs():
    return {name: table_epoch(p.metrics()) for name, p in ENV.shoal.items() if p.alive()}


# ---- steps ---------------------------------------------------------------------------------------


@test
def start():
    ENV.master = DataRedis("master").start()
    ENV.replica = DataRedis("replica", replicaof=ENV.master).start()
    ENV.sentinels = [Sentinel(k, ENV.master).start() for k in (1, 2, 3)]
    t0 = time.monotonic()
    check(wait_until(sentinels_ready, 30, 0.1), "the replica in sync and every sentinel knowing "
          "the other two and the replica within 30 s: %s" % [
              (s.name, {k: v for k, v in s.master().items() if k in (
                  "flags", "num-slaves", "num-other-sentinels")}) for s in ENV.sentinels])
    print("     master :%d, replica :%d, sentinels %s (%s): ready in %.2f s" % (
        ENV.master.port, ENV.replica.port, ",".join(":%d" % s.port for s in ENV.sentinels),
        "redis-sentinel" if ENV.redis_sentinel else "redis-server --sentinel",
        time.monotonic() - t0))
    for s in ENV.sentinels:
        eq(s.master_addr(), ("127.0.0.1", ENV.master.port), "%s: the master's address" % s.name)
    # Which commands write, as this Redis says (COMMAND's "write" flag).
    with RespConn(ENV.master.port) as c:
        c.call("AUTH", DATA_PW)
        ENV.write_cmds = {dec(e[0]) for e in c.call("COMMAND") if "write" in dec(e[2])}
    check({"set", "pexpire", "del"} <= ENV.write_cmds, "COMMAND's write flags: %s" %
          sorted(ENV.write_cmds)[:20])
    for s in ENV.sentinels:
        w = SentinelEvents(s, ENV.events, ENV.events_lock)
        w.start()
        ENV.watchers.append(w)
    check(all(w.ready.wait(5) for w in ENV.watchers), "subscribed to every sentinel's events")

    ENV.url = "redis-sentinel://%s/%s" % (",".join("127.0.0.1:%d" % s.port
                                                   for s in ENV.sentinels), MASTER)
    t0 = time.monotonic()
    for n in NODES:
        start_node(n)
    start_gateway()
    procs = list(ENV.shoal.values())
    check(wait_until(lambda: all(p.ready() for p in procs), 15 * ENV.factor, 0.05),
          "every process ready within %g s: %s" % (15 * ENV.factor,
                                                   [p.name for p in procs if not p.ready()]))

    def settled():
        s = node_state()
        return len(s) == 3 and sum(v[1] or 0 for v in s.values()) == PARTITIONS and \
            all(v[1] == v[2] for v in s.values())
    check(wait_until(settled, 20 * ENV.factor, 0.1), "every partition held by its owner "
          "within %g s: %s" % (20 * ENV.factor, node_state()))
    own = owners(ENV.master)
    check(all(own[p] in NODES for p in range(PARTITIONS)), "owner keys on the master: %s" % {
        o: sum(1 for v in own.values() if v == o) for o in set(own.values())})
    print("     3 nodes and the gateway ready, every partition held, in %.2f s: %s" % (
        time.monotonic() - t0, {n: int(v[1]) for n, v in node_state().items()}))

    t1 = time.monotonic()
    eq(announce_peers("A", range(N_SWARMS)), 0, "announces that failed on a healthy cluster")
    ok = wait_until(lambda: not snapshot_gaps(ENV.master, range(N_SWARMS)), 5, 0.05)
    print("     %d swarms announced (UDP) and in the master's snapshots after %.2f s" % (
        N_SWARMS, time.monotonic() - t1))
    check(ok, "%d swarms missing from the master's snapshots after 5 s" % len(
        snapshot_gaps(ENV.master, range(N_SWARMS))))


@test
def master_kill():
    ENV.load = Load(ENV.gw.daemon.port)
    ENV.load.start()
    mon = Monitor(ENV.replica)
    mon.start()
    ENV.monitors.append(mon)
    check(mon.ready.wait(5), "MONITOR on the replica")
    check(wait_until(lambda: ENV.load.between(0, time.time())[0] >= 50, 5, 0.05),
          "the load runs")
    before_state = node_state()
    before_epochs = epochs()
    before_members = {n: p.metrics().get("shoal_membership_changes_total")
                      for n, p in ENV.shoal.items()}
    print("     before: %s; table epochs %s" % (before_state, before_epochs))

    ENV.log_marks = {n: len(p.log()) for n, p in ENV.shoal.items()}
    t_kill = time.time()
    ENV.master.kill()
    # The replica's data as it is promoted: nothing of shoal can write to it before it is.
    snaps = snapshots(ENV.replica, sorted({partition_of(h) for h in ENV.hashes}))
    check(ENV.replica.info("replication").get("role") == "slave", "still a replica when read")
    ages = sorted(t_kill * 1000 - s["wall_ms"] for s in snaps.values() if s)
    missing_a = [i for i in range(N_SWARMS)
                 if snaps[partition_of(ENV.hashes[i])] is None or not
                 {("127.0.0.1", peer_port("A", i))} <=
                 snaps[partition_of(ENV.hashes[i])]["swarms"].get(ENV.hashes[i], set())]
    check(ages, "the replica has snapshots")
    ENV.numbers["age"] = (ages[0], statistics.median(ages), ages[-1])
    print("     the replica's snapshots at the kill: %d partitions, written %.0f ms (newest), "
          "%.0f ms (median), %.0f ms (oldest) before it; %d of %d swarms lack their peer "
          "announced before the load" % ((len(ages),) + ENV.numbers["age"] + (
              len(missing_a), N_SWARMS)))
    eq(missing_a, [], "swarms whose peer A (announced and snapshotted before) the replica lacks")

    check(wait_until(lambda: ENV.switch_events(t_kill), 30, 0.02),
          "+switch-master within 30 s of the kill")
    ev = ENV.switch_events(t_kill)
    t_switch = ev[0][0]
    words = ev[0][3].split()
    eq((words[0], int(words[4])), (MASTER, ENV.replica.port), "+switch-master names the replica")
    ENV.numbers["switch"] = t_switch - t_kill
    bound = DOWN_AFTER_MS / 1000 + (t_switch - t_kill) + 2.0 * ENV.factor
    shoal_names = set(ENV.shoal)

    def all_writing():
        fw = first_writes(mon.since(t_kill))
        return all(n in fw and fw[n][1] is not None and
                   (n == "gw" or (fw[n][2] is not None and fw[n][3] is not None))
                   for n in shoal_names)
    wait_until(all_writing, 30, 0.05)
    fw = first_writes(mon.since(t_kill))
    late = {}
    per = {}
    for n in sorted(shoal_names):
        f = fw.get(n)
        times = [None if (f is None or x is None) else x - t_kill for x in (f or [None] * 4)]
        per[n] = times
        need = times[1:2] if n == "gw" else times[1:4]
        if any(x is None or x > bound for x in need):
            late[n] = times
    ENV.numbers["writing"] = {n: per[n][1] for n in per}
    print("     kill -> +switch-master %.2f s (from %s); bound for writing %.2f s" % (
        t_switch - t_kill, ev[0][1], bound))
    for n in sorted(per):
        print("     %s: kill -> first command %s, first write %s, member key %s, snapshot %s" %
              tuple([n] + ["%.2f s" % x if x is not None else "none" for x in per[n]]))
    others = sorted({r[1] for r in mon.since(t_kill)} - shoal_names)
    print("     other clients of the new master: %s" % others)
    check(not late, "processes not writing to the new master within %.2f s of the kill "
          "(first command, write, member key, snapshot): %s" % (bound, late))
    t_all = t_kill + max(per[n][1] for n in per)

    # A member ttl after the last process came back: membership has had the time to flap.
    settle = t_all + TTL_MS / 1000 + 1.0
    wait_until(lambda: time.time() >= settle, TTL_MS / 1000 + 2, 0.1)  # a window to watch
    after_state = node_state()
    after_epochs = epochs()
    after_members = {n: p.metrics().get("shoal_membership_changes_total")
                     for n, p in ENV.shoal.items()}
    changes = {n: {k: v for k, v in p.metrics().items()
                   if k.startswith("shoal_redis_master_changes_total") or
                   k.startswith("shoal_snapshot_unreplicated_total")}
               for n, p in ENV.shoal.items()}
    sent, failed, bad = ENV.load.between(t_kill - LOAD_TIMEOUT, time.time())
    ENV.numbers["switch_load"] = (failed, sent)
    print("     load from just before the kill until a member ttl after: %d sent, %d "
          "unanswered %s (bound %d, the requests in flight at once)%s" % (
              sent, failed, bad, LOAD_WINDOW, "" if not failed else
              ", sent at (s after the kill, owner) " +
              ENV.load.failures(t_kill, t_kill - LOAD_TIMEOUT, ENV.replica)))
    print("     member tables published (before -> after): %s -> %s" % (before_members,
                                                                          after_members))
    print("     master changes and unreplicated snapshot cycles: %s" % changes)
    eq(after_state, before_state, "nodes' (acquired, held, owned) partitions across the switch")
    for n in changes:
        for comp in ("membership",) if n == "gw" else ("membership", "keeper"):
            check(changes[n].get('shoal_redis_master_changes_total{component="%s"}' % comp,
                                 0) >= 1, "%s counts its %s connection's move to another "
                  "server: %s" % (n, comp, changes[n]))
    new_addr = "127.0.0.1:%d" % ENV.replica.port
    for n, p in ENV.shoal.items():
        check(new_addr in p.log()[ENV.log_marks[n]:], "%s logs the new master's address %s: %s" %
              (n, new_addr, p.log()[ENV.log_marks[n]:][-1500:]))
    eq(after_epochs, before_epochs, "table epochs across the switch")
    eq(after_members, before_members, "member tables published across the switch")
    check(failed <= LOAD_WINDOW, "%d requests unanswered across the switch (of %d; %s): more "
          "than the %d in flight at once" % (failed, sent, bad, LOAD_WINDOW))
    eq(set(dec(ENV.replica.call("SMEMBERS", PREFIX + ":members"))), set(NODES),
       "the member set on the new master")


@test
def node_kill():
    """Peers announced after the switch reach the new master's snapshots; a node SIGKILLed then
    loses none of its swarms."""
    new = ENV.replica
    idx = list(range(N_SWARMS))
    t0 = time.monotonic()
    eq(announce_peers("B", idx), 0, "announces of new peers after the switch that failed")
    ok = wait_until(lambda: not snapshot_gaps(new, idx), 5, 0.05)
    print("     %d new peers announced after the switch, in the new master's snapshots after "
          "%.2f s" % (N_SWARMS, time.monotonic() - t0))
    check(ok, "%d swarms not in the new master's snapshots after 5 s" %
          len(snapshot_gaps(new, idx)))
    own = owners(new)
    victim = "n2"
    vparts = [p for p in range(PARTITIONS) if own[p] == victim]
    vidx = [i for i in idx if own[partition_of(ENV.hashes[i])] == victim]
    check(vidx, "%s owns some swarms" % victim)
    t_kill = time.time()
    p = ENV.shoal.pop(victim)
    ENV.dead.append(p)
    p.proc.stop(signal.SIGKILL)
    survivors = [n for n in NODES if n != victim]

    def taken():
        return all(v in survivors for v in owners(new, vparts).values())
    ok = wait_until(taken, TTL_MS / 1000 + 6 * ENV.factor, 0.05)
    t_owned = time.time() - t_kill
    check(ok, "the partitions of %s owned by %s within %.1f s: %s" % (
        victim, survivors, TTL_MS / 1000 + 6 * ENV.factor,
        {o: sum(1 for v in owners(new, vparts).values() if v == o) for o in survivors + [victim]}))
    took, bad = check_swarms(vidx, 5 * ENV.factor)
    share = 100.0 * (len(vidx) - len(bad)) / len(vidx)
    ENV.numbers["node_kill"] = (len(vidx) - len(bad), len(vidx), t_owned)
    sent, failed, why = ENV.load.between(t_kill - LOAD_TIMEOUT, time.time())
    print("     %s SIGKILLed: its %d partitions owned by %s after %.2f s; %d/%d of its swarms "
          "(%.1f %%) with every peer, checked in %.2f s; load meanwhile %d sent, %d unanswered "
          "%s" % (victim, len(vparts), "/".join(survivors), t_owned, len(vidx) - len(bad),
                  len(vidx), share, took, sent, failed, why))
    check(not bad, "%d of %d swarms of %s differ from the model, e.g. (hash, got, want) %s" % (
        len(bad), len(vidx), victim, [(ENV.hashes[i].hex()[:8], g, w) for i, g, w in bad[:3]]))


@test
def old_master():
    """The old master restarted on its port with its config and directory: the sentinels make
    it a replica of the new master, and nothing of shoal connects to it or writes to it."""
    old, new = ENV.master, ENV.replica
    shoal_names = set(ENV.shoal)
    seen = {}  # shoal client name -> CLIENT LIST line, any time it was seen on the old master

    def clients():
        try:
            lines = old.call("CLIENT", "LIST").splitlines()
        except (OSError, EOFError, RespError):
            return
        for line in lines:
            f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            name = client_name(f.get("addr", ""), old.port)
            if name in shoal_names:
                seen.setdefault(name, line)

    t_restart = time.time()
    old.start()
    mon = Monitor(old)
    mon.start()
    ENV.monitors.append(mon)
    check(mon.ready.wait(5), "MONITOR on the old master")

    def converted():
        clients()
        try:
            role = old.call("ROLE")
            link = old.info("replication")
        except (OSError, EOFError, RespError):
            return False
        return role[0] == "slave" and int(role[2]) == new.port and role[3] == "connected" and \
            link.get("master_link_status") == "up"
    ok = wait_until(converted, 60, 0.1)
    t_conv = time.time() - t_restart
    check(ok, "the old master a replica of :%d within 60 s: ROLE %s" % (new.port,
                                                                      old.call("ROLE")))
    ENV.numbers["rejoin"] = t_conv
    # A window with the load going on: shoal keeps writing to the new master, not to the old.
    t_window = time.time()
    end = t_window + 3.0
    while time.time() < end:
        clients()
        time.sleep(0.1)
    rows = mon.since(t_restart)
    by = {}
    for r in rows:
        by.setdefault(r[1], set()).add(r[2])
    new_mon = ENV.monitors[0]
    fw = first_writes(new_mon.since(t_window))
    print("     old master a replica of :%d %.2f s after its restart; its commands since, by "
          "client: %s; MONITOR (re)connected %d times" % (
              new.port, t_conv, {k: sorted(v)[:8] for k, v in by.items()}, mon.connects))
    eq(seen, {}, "shoal connections on the old master")
    eq(sorted(set(by) & shoal_names), [], "shoal clients in the old master's MONITOR")
    writes = [r for r in rows if is_write(r) and r[1] != "link:%d" % new.port]
    eq(writes[:5], [], "writes to the old master by others than its replication link")
    check(any(is_write(r) for r in rows if r[1] == "link:%d" % new.port),
          "the old master's keys change through replication (MONITOR shows none)")
    eq(sorted(n for n in shoal_names if fw.get(n, [None, None])[1] is None), [],
       "shoal processes not writing to the new master in the window")
    eq(dec(new.call("ROLE"))[0], "master", "the new master's role")
    sent, failed, why = ENV.load.between(t_restart, end)
    print("     load since the restart: %d sent, %d unanswered %s%s" % (
        sent, failed, why, "" if not failed else ", sent at (s after the restart, owner) " +
        ENV.load.failures(t_restart, t_restart, new)))
    eq((failed, why), (0, {}), "requests unanswered while the old master came back")


@test
def summary():
    n = ENV.numbers
    check(ENV.load, "no load ran")
    ENV.load.finish()
    total_sent, total_failed, why = ENV.load.between(0, time.time())
    w = n.get("writing") or {}
    parts = ["sentinel: kill -> +switch-master %s" % (
        "%.2f s" % n["switch"] if "switch" in n else "n/a")]
    parts.append("kill -> writing to the new master %s" % (
        ", ".join("%s %.2f s" % (k, v) for k, v in sorted(w.items()) if v is not None)
        or "n/a"))
    if "switch_load" in n:
        parts.append("requests failed across the switch %d/%d" % n["switch_load"])
    parts.append("in all %d/%d" % (total_failed, total_sent))
    if n.get("age"):
        parts.append("snapshot age at the switch %.0f ms newest, %.0f ms median, %.0f ms "
                     "oldest" % n["age"])
    if "node_kill" in n:
        parts.append("node kill: %d/%d swarms back, partitions taken in %.2f s" % n["node_kill"])
    if "rejoin" in n:
        parts.append("old master a replica after %.2f s" % n["rejoin"])
    print("; ".join(parts))


@test
def stop():
    for b in ENV.monitors + ENV.watchers:
        b.finish()
    for name, p in sorted(ENV.shoal.items()):
        if p.proc:
            rc = p.proc.stop(signal.SIGTERM, 15)
        else:
            rc = p.daemon.terminate(15)
        eq(rc, 0, "%s exit code on SIGTERM" % name)
    for p in list(ENV.shoal.values()) + ENV.dead:
        eq(sanitizer_report(p.log()), None, "sanitizer report of %s" % p.name)


# ---- the standalone tracker ----------------------------------------------------------------------


def sa_key(p):
    return "%s:standalone:{p%d}:snap" % (PREFIX, p)


def sa_snapshots(redis, ps):
    ps = list(ps)
    return {p: (None if v is None else decode_snapshot(v))
            for p, v in zip(ps, mget_raw(redis, [sa_key(p) for p in ps]))}


def sa_want(i, exclude=None):
    return {("127.0.0.1", peer_port(r, j)) for (r, j) in ENV.sa_model[i] if (r, j) != exclude}


def sa_gaps(redis, idx, since_ms=None):
    """The standalone's swarm indices whose model peers are not all in their partition's snapshot
    on redis (or whose snapshot was written before since_ms, wall time)."""
    snaps = sa_snapshots(redis, sorted({partition_of(ENV.sa_hashes[i]) for i in idx}))
    out = []
    for i in idx:
        s = snaps[partition_of(ENV.sa_hashes[i])]
        if s is None or not sa_want(i) <= s["swarms"].get(ENV.sa_hashes[i], set()) or \
                (since_ms is not None and s["wall_ms"] < since_ms):
            out.append(i)
    return out


def start_standalone():
    """`shoal --redis redis-sentinel://...` on a free UDP+HTTP port and a free admin port, as
    ENV.shoal["shoal"] (so MONITOR names its connections); returns its ShoalProc once /readyz
    says ready."""
    admin = "127.0.0.1:%d" % clusterlib.free_port()

    def argv(port):
        return [ENV.shoal_bin, "--udp", "127.0.0.1:%d" % port, "--http",
                "127.0.0.1:%d" % port] + redis_flags() + [
            "--snapshot-interval", str(SNAP_MS), "--secret", SECRET, "--workers", "1",
            "--admin", admin, "--log-level", "info"]
    d = Daemon("shoal", argv, preexec_fn=clusterlib.die_with_parent)
    p = ShoalProc("shoal", daemon=d)
    ENV.shoal["shoal"] = p
    d.start(ready_timeout=15 * ENV.factor)
    p.wait_admin()
    eq(p.admin, admin, "the standalone's admin address")
    check(wait_until(p.ready, 10 * ENV.factor, 0.05), "the standalone ready: %s" %
          p.log()[-1500:])
    return p


def sa_announce(port, role, idx, http_every=0):
    """Peer (role, i) announced to the standalone's swarm i for every i in idx, over HTTP for
    every http_every-th, UDP for the rest (resent after 1 s, 3 tries); the answered ones join the
    model. Returns the indices not answered (or answered with an error)."""
    http_idx = [i for i in idx if http_every and i % http_every == 0]
    udp_idx = [i for i in idx if i not in set(http_idx)]
    bad = []
    b = UdpBatch(port, tries=3)
    try:
        res, _ = b.run([(ENV.sa_hashes[i], peer_id(role, i), peer_port(role, i), 100,
                         EV_STARTED, 0) for i in udp_idx])
    finally:
        b.close()
    for i, r in zip(udp_idx, res):
        if r is None or "error" in r:
            bad.append(i)
        else:
            ENV.sa_model[i][(role, i)] = 100
    with HttpConn("127.0.0.1", port, timeout=3) as c:
        for i in http_idx:
            c.send(get_request(announce_target(ENV.sa_hashes[i], peer_id(role, i),
                                               peer_port(role, i), left=100, event="started",
                                               compact=1, numwant=0)))
            r = c.read_response()
            if r.status == 200 and b"failure reason" not in r.bencoded():
                ENV.sa_model[i][(role, i)] = 100
            else:
                bad.append(i)
    return bad


def sa_probe(port, idx):
    """Peer X announces to every swarm in idx (numwant 200): [(i, got, want)] of the swarms whose
    peers differ from the model (X itself left out)."""
    b = UdpBatch(port, tries=3)
    try:
        res, _ = b.run([(ENV.sa_hashes[i], peer_id("X", i), peer_port("X", i), 100, EV_STARTED,
                         200) for i in idx])
    finally:
        b.close()
    bad = []
    for i, r in zip(idx, res):
        want = sorted(sa_want(i, exclude=("X", i)))
        got = r if r is None or "error" in r else sorted(r["peers"])
        if got != want:
            bad.append((i, got, want))
        elif r is not None:
            ENV.sa_model[i][("X", i)] = 100
    return bad


def replica_known(master, replica):
    """replica is in sync with master (link up, no sync going on, online on the master) and every
    sentinel names master and knows replica as its replica with its link ok."""
    try:
        rep = replica.info("replication")
        if rep.get("role") != "slave" or rep.get("master_port") != str(master.port) or \
                rep.get("master_link_status") != "up" or rep.get("master_sync_in_progress") != "0":
            return False
        if not any("port=%d," % replica.port in v and "state=online" in v
                   for k, v in master.info("replication").items() if k.startswith("slave")):
            return False
        for s in ENV.sentinels:
            if s.master_addr() != ("127.0.0.1", master.port):
                return False
            m = s.master()
            if m.get("flags") != "master" or m.get("num-other-sentinels") != "2":
                return False
            if not any(r.get("port") == str(replica.port) and r.get("flags") == "slave" and
                       r.get("master-link-status") == "ok" and
                       r.get("master-port") == str(master.port) for r in s.replicas()):
                return False
        return True
    except (OSError, EOFError, RespError, ValueError):
        return False


@test
def standalone():
    """`shoal --redis redis-sentinel://...` (the cluster stopped: a standalone refuses a Redis
    with a live cluster in its namespace) across a second failover: the master the first one
    promoted is SIGKILLed, the old master (its replica now) promoted."""
    t_step = time.monotonic()
    cur, nxt = ENV.replica, ENV.master  # the master now, and its replica (the old master)
    check(not [n for n in ENV.shoal if ENV.shoal[n].alive()], "the cluster is stopped")
    p = start_standalone()
    t_up = time.monotonic() - t_step
    idx = list(range(N_STANDALONE))
    eq(sa_announce(p.daemon.port, "A", idx, http_every=4), [], "announces (HTTP every 4th, UDP "
       "the others) to the standalone that failed")
    t0 = time.monotonic()
    ok = wait_until(lambda: not sa_gaps(cur, idx) and not sa_gaps(nxt, idx), 5 * ENV.factor,
                    0.05)
    print("     standalone up in %.2f s; %d swarms announced, in the master's and the replica's "
          "snapshots (%s:standalone:) after %.2f s" % (t_up, N_STANDALONE, PREFIX,
                                                     time.monotonic() - t0))
    check(ok, "swarms missing from the snapshots after %g s: master %d, replica %d" % (
        5 * ENV.factor, len(sa_gaps(cur, idx)), len(sa_gaps(nxt, idx))))
    snap_owner = sa_snapshots(cur, [partition_of(ENV.sa_hashes[0])])
    eq(dec(list(snap_owner.values())[0]["owner"]), "standalone", "the snapshots' owner")
    t0 = time.monotonic()
    ok = wait_until(lambda: replica_known(cur, nxt), 20 * ENV.factor, 0.1)
    print("     the old master :%d known by every sentinel as the replica (in sync) of :%d after "
          "%.2f s" % (nxt.port, cur.port, time.monotonic() - t0))
    check(ok, "the old master :%d a replica in sync of :%d, known so by every sentinel, within "
          "%g s: ROLE %s; %s" % (nxt.port, cur.port, 20 * ENV.factor, nxt.call("ROLE"), [
              (s.name, s.master_addr(), [(r.get("port"), r.get("flags"),
                                          r.get("master-link-status")) for r in s.replicas()])
              for s in ENV.sentinels]))

    watchers = [SentinelEvents(s, ENV.events, ENV.events_lock) for s in ENV.sentinels]
    for w in watchers:
        w.start()
        ENV.watchers.append(w)
    check(all(w.ready.wait(5) for w in watchers), "subscribed to every sentinel's events")
    mon = Monitor(nxt)
    mon.start()
    ENV.monitors.append(mon)
    check(mon.ready.wait(5), "MONITOR on the replica")
    # The load: the first half of the swarms; partitions only the other half has are rewritten
    # after the switch only by the keeper's full rewrite on a new server.
    load_idx = idx[:N_STANDALONE // 2]
    load = Load(p.daemon.port, [ENV.sa_hashes[i] for i in load_idx])
    load.start()
    check(wait_until(lambda: load.between(0, time.time())[0] >= 50, 5, 0.05), "the load runs")
    m0 = p.metrics()
    keeper_m = 'shoal_redis_master_changes_total{component="keeper"}'
    switch_m = "shoal_redis_sentinel_switches_total"
    check(keeper_m in m0 and switch_m in m0, "the standalone's metrics have %s and %s: %s" % (
        keeper_m, switch_m, sorted(k for k in m0 if k.startswith("shoal_redis"))))
    mark = len(p.log())
    idle = sorted({partition_of(ENV.sa_hashes[i]) for i in idx} -
                  {partition_of(ENV.sa_hashes[i]) for i in load_idx})
    idle_idx = [i for i in idx if partition_of(ENV.sa_hashes[i]) in idle]
    idle_walls = [s["wall_ms"] for s in sa_snapshots(nxt, idle).values() if s]

    t_kill = time.time()
    cur.kill()
    check(wait_until(lambda: ENV.switch_events(t_kill), 30, 0.02),
          "+switch-master within 30 s of the kill")
    ev = ENV.switch_events(t_kill)
    t_switch = ev[0][0]
    words = ev[0][3].split()
    eq((words[0], int(words[2]), int(words[4])), (MASTER, cur.port, nxt.port),
       "+switch-master from the killed master to the old one")
    since_ms = t_kill * 1000
    check(idle_walls, "partitions the load does not touch")
    print("     the %d partitions the load does not touch were last written %.2f s (newest) "
          "before the kill" % (len(idle), t_kill - max(idle_walls) / 1000))

    def sa_writes():
        return [r for r in mon.since(t_kill) if r[1] == "shoal" and is_write(r) and
                any(k.startswith(PREFIX + ":standalone:") for k in r[4])]

    def moved():
        m = p.metrics()
        return m.get(keeper_m, 0) >= m0[keeper_m] + 1 and m.get(switch_m, 0) >= \
            m0[switch_m] + 1 and sa_writes() and not sa_gaps(nxt, idx, since_ms)
    bound = DOWN_AFTER_MS / 1000 + (t_switch - t_kill) + 2.0 * ENV.factor
    ok = wait_until(moved, max(bound - (time.time() - t_kill), 0.5), 0.05)
    t_written = time.time() - t_kill
    w = sa_writes()
    m1 = p.metrics()
    late = sa_gaps(nxt, idx, since_ms)
    print("     kill -> +switch-master %.2f s (from %s); the standalone's first write to the new "
          "master (%s:standalone:) %s; every partition of its swarms rewritten there (%d only "
          "by the full rewrite) %s" % (
              t_switch - t_kill, ev[0][1], PREFIX,
              "%.2f s" % (w[0][0] - t_kill) if w else "none", len(idle),
              "within %.2f s" % t_written if not late else "NOT (%d swarms)" % len(late)))
    check(ok, "within %.2f s of the kill (down-after + failover + 2 s): keeper master changes "
          "%s -> %s, sentinel switches %s -> %s, writes to %s:standalone: keys on the new "
          "master %d, swarms whose snapshot there is not rewritten since the kill with every "
          "peer %d (of them only in partitions the load does not touch: %d of %d)" % (
              bound, m0[keeper_m], m1.get(keeper_m), m0[switch_m], m1.get(switch_m), PREFIX,
              len(w), len(late), len(set(late) & set(idle_idx)), len(idle_idx)))
    # A little more under load: the counters must stay at one move.
    wait_until(lambda: time.time() >= t_kill + t_written + 1.0, 2, 0.1)
    load.finish()
    sent, failed, why = load.between(t_kill - LOAD_TIMEOUT, time.time())
    m2 = p.metrics()
    print("     load on the standalone from just before the kill until 1 s after its rewrite: "
          "%d sent, %d unanswered %s; master changes (keeper) %g -> %g, sentinel switches %g "
          "-> %g" % (sent, failed, why, m0[keeper_m], m2[keeper_m], m0[switch_m], m2[switch_m]))
    eq((failed, why), (0, {}), "requests the standalone left unanswered across the switch")
    eq((m2[keeper_m] - m0[keeper_m], m2[switch_m] - m0[switch_m]), (1, 1),
       "the moves of the standalone's keeper connection and the switches it saw")
    new_addr = "127.0.0.1:%d" % nxt.port
    check(new_addr in p.log()[mark:], "the standalone logs the new master's address %s: %s" % (
        new_addr, p.log()[mark:][-1500:]))

    t0 = time.monotonic()
    eq(sa_announce(p.daemon.port, "B", idx), [], "announces of new peers after the switch that "
       "failed")
    ok = wait_until(lambda: not sa_gaps(nxt, idx), 5 * ENV.factor, 0.05)
    print("     %d new peers announced after the switch, in the new master's snapshots after "
          "%.2f s" % (N_STANDALONE, time.monotonic() - t0))
    check(ok, "%d swarms not in the new master's snapshots" % len(sa_gaps(nxt, idx)))
    rc = p.daemon.terminate(10 * ENV.factor)
    text = p.log()
    eq(rc, 0, "the standalone's exit code on SIGTERM")
    eq(sanitizer_report(text), None, "sanitizer report of shoal")
    last = re.search(r"snapshots: (\d+) partition writes.*", text)
    p.daemon.stop()
    del ENV.shoal["shoal"]

    t0 = time.monotonic()
    p = start_standalone()
    t_restart = time.monotonic() - t0
    text = p.log()
    restored = re.search(r"restored (\d+) peers in (\d+) swarms", text)
    bad = sa_probe(p.daemon.port, idx)
    n_peers = sum(len(sa_want(i, exclude=("X", i))) for i in idx)
    print("     SIGTERM (%s), restarted and answering in %.2f s (%s): %d/%d swarms with every "
          "peer (%d peers, before and after the switch)" % (
              last.group(0) if last else "no shutdown line", t_restart,
              restored.group(0) if restored else "no restore line", N_STANDALONE - len(bad),
              N_STANDALONE, n_peers))
    check(not bad, "%d of %d swarms differ from the model after the restart, e.g. (hash, got, "
          "want) %s" % (len(bad), N_STANDALONE, [(ENV.sa_hashes[i].hex()[:8], g, w)
                                                 for i, g, w in bad[:3]]))
    check(restored, "the restart logs its restore: %s" % text[-1500:])
    eq((int(restored.group(1)), int(restored.group(2))), (2 * N_STANDALONE, N_STANDALONE),
       "peers and swarms restored (peers A and B of every swarm)")
    rc = p.daemon.terminate(10 * ENV.factor)
    eq(rc, 0, "the restarted standalone's exit code on SIGTERM")
    eq(sanitizer_report(p.log()), None, "sanitizer report of the restarted shoal")
    for b in [mon] + watchers:
        b.finish()
    print("sentinel standalone: kill -> +switch-master %.2f s; -> rewritten on the new master "
          "%.2f s; %d/%d requests answered across the switch; %d/%d swarms back after a restart; "
          "step %.2f s" % (t_switch - t_kill, t_written, sent - failed, sent,
                           N_STANDALONE - len(bad), N_STANDALONE, time.monotonic() - t_step))


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", required=True, help="path to shoal-gateway")
    ap.add_argument("--node", required=True, help="path to shoal-node")
    ap.add_argument("--shoal", required=True, help="path to shoal (the standalone tracker)")
    ap.add_argument("-k", default="", help="run only steps whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.gateway, args.node, args.shoal])
    if rc is not None:
        return rc
    env_factor = os.environ.get("SHOAL_TEST_TIME_FACTOR", "")
    slow = any(sanitized(p) for p in (args.gateway, args.node, args.shoal))
    factor = float(env_factor) if env_factor else (3.0 if slow else 1.0)
    print("time factor %g%s" % (factor, " (sanitizer build)" if slow and not env_factor else ""),
          flush=True)
    ENV = Env(os.path.abspath(args.gateway), os.path.abspath(args.node),
              os.path.abspath(args.shoal), factor)
    return clusterlib.run_steps(TESTS, args.k, ENV.logs, ENV.stop_all)


if __name__ == "__main__":
    sys.exit(main())
