#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""container.compose: deploy/compose.yaml brought up with rootful podman and real clients.

Steps (each timed; the total is printed at the end):
  1. base     deploy/container-base.sh: the local debian:bookworm-slim (mmdebstrap + podman
              import; the tarball is cached in build/container-cache, the image kept).
  2. build    podman-compose build: the shoal image (all three roles), the Redis and the
              Prometheus images; checked with `podman image exists` (podman-compose 1.0.3 exits
              0 when a build fails).
  3. up       podman-compose up -d on ports picked free here (the compose file's variables), a
              fresh connection-id secret file; `podman ps` must show all 7 containers running;
              every role's /readyz (and Prometheus's /-/ready) polled with a deadline.
  4. clients  tests/e2e/test_clients.py's scenarios (libtorrent over UDP, aria2 and transmission
              over HTTP, the negative case): real files download between real clients that meet
              only through the compose gateways (UDP through gw1, HTTP through gw2).
  5. failover peers announced through gw1; the owning node of some written to Redis
              (its snapshot counter), `podman kill -s KILL` on it; every one of its swarms must be
              served again by the other nodes, seen through gw2's admin API and a UDP scrape.
  6. metrics  Prometheus's /api/v1/targets: every shoal target up before the kill, the killed
              node's target down after it.
  7. down     podman-compose down -t 30 (SIGTERM, compose order); the surviving nodes must log,
              after the SIGTERM line, a planned handover ("snapshots: handed over N partitions")
              and their clean stop line.
  8. docker-compose  the same file with Debian's docker-compose 1.29 against podman's Docker
              API (`podman system service` on a socket in the temp dir): up on other free ports,
              every /readyz, a UDP peer and an HTTP peer meeting through gw1 and gw2, down with
              every node's planned handover. (No Docker engine runs here; this is Docker's own
              compose implementation reading the file.)
Cleanup, whatever fails: the project's containers (by id), its network and volumes, and the
temp dir. Kept as a cache: the images localhost/shoal:test, localhost/shoal-redis:bookworm,
localhost/shoal-prometheus:bookworm and debian:bookworm-slim (--remove-images removes the first
three), and build/container-cache/bookworm-minbase.tar.

Exit 0 = passed, 1 = failed, 77 = podman cannot run on this machine (the reason is printed).
Every podman command runs with CONTAINERS_CONF=deploy/containers.conf (runc, cgroupfs,
netavark, ulimits this machine allows); podman-compose runs podman through
tests/container/podman-hostnet (1.0.3 cannot start network_mode: host services without it).
    /usr/bin/python3 tests/container/test_compose.py [--keep-up] [--remove-images]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import trackerclient  # noqa: E402
from clusterlib import wait_until  # noqa: E402

COMPOSE = os.path.join(ROOT, "deploy", "compose.yaml")
CONF = os.path.join(ROOT, "deploy", "containers.conf")
SHIM = os.path.join(HERE, "podman-hostnet")
TAG = "test"
IMAGES = ["localhost/shoal:" + TAG, "localhost/shoal-redis:bookworm",
          "localhost/shoal-prometheus:bookworm"]
SERVICES = ["redis", "n1", "n2", "n3", "gw1", "gw2", "prometheus"]
NODES = ["n1", "n2", "n3"]
IMAGE_UID = 10001  # deploy/Dockerfile's user
T0 = time.monotonic()
TIMES = []


class Failed(Exception):
    pass


class Skip(Exception):
    pass


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def run(argv, env=None, timeout=600, check=True, quiet=False):
    """Run argv; returns CompletedProcess with text output. Raises Failed on a non-zero exit
    if check."""
    if not quiet:
        log("$ " + " ".join(argv))
    try:
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Failed(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} timed out after {timeout}s: "
                     f"{(e.stdout or '')[-2000:] if isinstance(e.stdout, str) else ''}")
    if check and r.returncode != 0:
        raise Failed(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-4000:]}")
    return r


def http_get(url, timeout=2.0):
    """(status, body bytes); status 0 when the connection fails."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


class Phase:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.t = time.monotonic()
        log(f"=== {self.name}")

    def __exit__(self, *exc):
        dt = time.monotonic() - self.t
        TIMES.append((self.name, dt, exc[0] is None))
        log(f"=== {self.name}: {'done' if exc[0] is None else 'FAILED'} in {dt:.1f}s")


class Cluster:
    """The compose project: its environment (ports, secret, Prometheus config) and podman.
    tool: "podman-compose" (through the shim), or "docker-compose" (Debian's 1.29) talking to
    podman's Docker API at docker_host."""

    def __init__(self, work, tool="podman-compose", docker_host=None):
        self.work = work
        self.tool = tool
        self.project = f"{'shoaltest' if tool == 'podman-compose' else 'shoaldc'}{os.getpid()}"
        # The label each tool puts on its containers (both set com.docker.compose.service).
        self.label = ("io.podman.compose.project" if tool == "podman-compose"
                      else "com.docker.compose.project")
        self.last_output = ""
        taken = set()

        def port(k):
            # A node's workers (SHOAL_NODE_WORKERS, 2 in compose.yaml) take PORT and PORT + 1.
            span = 2 if re.fullmatch(r"N\d_PORT", k) else 1
            for _ in range(100):
                p = trackerclient.free_port(count=span)
                if not taken & set(range(p, p + span)):
                    taken.update(range(p, p + span))
                    return p
            raise Failed("no free loopback port")

        self.ports = {k: port(k) for k in (
            "REDIS_PORT", "N1_PORT", "N2_PORT", "N3_PORT", "N1_ADMIN", "N2_ADMIN", "N3_ADMIN",
            "GW1", "GW2", "GW1_ADMIN", "GW2_ADMIN", "PROMETHEUS_PORT")}
        self.secret = os.path.join(work, "connid.hex")
        with open(self.secret, "w") as f:
            f.write("%064x\n" % random.SystemRandom().getrandbits(256))
        os.chown(self.secret, IMAGE_UID, IMAGE_UID)
        os.chmod(self.secret, 0o400)
        self.prom_yml = os.path.join(work, "prometheus.yml")
        self.write_prometheus_yml()
        env = dict(os.environ)
        env.update({
            "CONTAINERS_CONF": CONF,
            "SHOAL_VERSION": TAG,
            "SHOAL_CONNID_FILE": self.secret,
            "SHOAL_PROMETHEUS_CONFIG": self.prom_yml,
            "SHOAL_GW1_LISTEN": "127.0.0.1:%d" % self.ports["GW1"],
            "SHOAL_GW2_LISTEN": "127.0.0.1:%d" % self.ports["GW2"],
        })
        for k, v in self.ports.items():
            if k not in ("GW1", "GW2"):
                env["SHOAL_" + k] = str(v)
        if docker_host:
            env["DOCKER_HOST"] = docker_host
        self.env = env
        self.admin = {"n1": self.ports["N1_ADMIN"], "n2": self.ports["N2_ADMIN"],
                      "n3": self.ports["N3_ADMIN"], "gw1": self.ports["GW1_ADMIN"],
                      "gw2": self.ports["GW2_ADMIN"]}

    def write_prometheus_yml(self):
        """deploy/prometheus/prometheus.yml with its default admin ports replaced by ours."""
        with open(os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")) as f:
            text = f.read()
        defaults = {8001: "N1_ADMIN", 8002: "N2_ADMIN", 8003: "N3_ADMIN", 6971: "GW1_ADMIN",
                    6972: "GW2_ADMIN", 9090: "PROMETHEUS_PORT"}
        for port, key in defaults.items():
            needle = f"127.0.0.1:{port}"
            if needle not in text:
                raise Failed(f"prometheus.yml no longer names {needle}: update this test")
            text = text.replace(needle, f"127.0.0.1:{self.ports[key]}")
        with open(self.prom_yml, "w") as f:
            f.write(text)
        os.chmod(self.prom_yml, 0o644)
        os.chmod(self.work, 0o755)

    def compose(self, *args, timeout=900, check=True):
        if self.tool == "podman-compose":
            # --podman-path: podman-compose 1.0.3 cannot start network_mode: host without it.
            argv = ["podman-compose", "--podman-path", SHIM, "-p", self.project, "-f", COMPOSE]
        else:
            argv = ["docker-compose", "--ansi", "never", "-p", self.project, "-f", COMPOSE]
        r = run(argv + list(args), env=self.env, timeout=timeout, check=check)
        self.last_output = r.stdout
        return r

    def podman(self, *args, timeout=120, check=True, quiet=False):
        return run(["podman"] + list(args), env=self.env, timeout=timeout, check=check,
                   quiet=quiet)

    def containers(self, all_=True):
        """{service: (id, state)} of this project's containers."""
        r = self.podman("ps", *(["-a"] if all_ else []), "--format", "json", "--filter",
                        f"label={self.label}={self.project}", quiet=True)
        out = {}
        for c in json.loads(r.stdout or "[]"):
            svc = (c.get("Labels") or {}).get("com.docker.compose.service", "?")
            out[svc] = (c["Id"], c["State"])
        return out

    def logs(self, svc, tail=40):
        cs = self.containers()
        if svc not in cs:
            return "    | <no container>"
        r = self.podman("logs", "--tail", str(tail), cs[svc][0], check=False, quiet=True)
        return "\n".join("    | " + ln for ln in r.stdout.splitlines()) or "    | <empty>"

    def cleanup(self):
        """Remove this project's containers (by id), network and volumes, whatever state."""
        cs = self.containers()
        ids = [cid for cid, _ in cs.values()]
        if ids:
            self.podman("rm", "-f", "-t", "2", *ids, check=False)
        r = self.podman("network", "ls", "--format", "{{.Name}}", check=False, quiet=True)
        for net in r.stdout.split():
            if net.startswith(self.project + "_"):
                self.podman("network", "rm", "-f", net, check=False)
        r = self.podman("volume", "ls", "--format", "{{.Name}}", "--filter",
                        f"label={self.label}={self.project}", check=False,
                        quiet=True)
        vols = r.stdout.split()
        if vols:
            self.podman("volume", "rm", "-f", *vols, check=False)


def preflight():
    """Skip (77) only when podman truly cannot run here; the reason goes to stdout."""
    for tool in ("podman", "podman-compose", "mmdebstrap"):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not installed (deploy/install-deps.sh test installs it)")
    if os.geteuid() != 0:
        raise Skip("rootful podman is what works here (NOTES: containers); run as root")
    env = dict(os.environ, CONTAINERS_CONF=CONF)
    r = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    if r.returncode != 0:
        raise Skip(f"podman info fails here: {r.stdout.strip()[-500:]}")
    log(f"podman runtime: {r.stdout.strip()}")


def wait_ready(cl, deadline_s=90):
    """Every role's /readyz 200 and Prometheus ready, within the deadline."""
    pending = dict(cl.admin)
    pending["prometheus"] = None

    def check():
        cs = cl.containers()
        dead = [s for s in SERVICES if cs.get(s, ("", "missing"))[1] != "running"]
        if dead:
            raise Failed(f"not running: {dead}:\n" + "\n".join(
                f"  {s}:\n{cl.logs(s)}" for s in dead) + f"\n  {cl.tool} up said:\n" +
                "\n".join("    | " + ln for ln in cl.last_output.splitlines()[-40:]))
        for svc in list(pending):
            if svc == "prometheus":
                url = f"http://127.0.0.1:{cl.ports['PROMETHEUS_PORT']}/-/ready"
            else:
                url = f"http://127.0.0.1:{pending[svc]}/readyz"
            if http_get(url)[0] == 200:
                log(f"{svc} ready")
                del pending[svc]
        return not pending

    if not wait_until(check, deadline_s, 0.5):
        raise Failed(f"not ready within {deadline_s}s: {sorted(pending)}:\n" + "\n".join(
            f"  {s}:\n{cl.logs(s)}" for s in pending))


def run_clients(cl):
    """test_clients.py's scenarios against the compose gateways (UDP: gw1, HTTP: gw2)."""
    import test_clients as tc  # the system interpreter's libtorrent is imported here

    if tc.lt is None:
        raise Failed(f"no libtorrent ({tc.LT_IMPORT_ERROR}); run with /usr/bin/python3")
    for b in ("mktorrent", "aria2c", "transmission-cli"):
        if not shutil.which(b):
            raise Failed(f"{b} not found ({tc.SETUP_HINT})")

    class ComposeGateways(tc.Tracker):
        """The tracker the scenarios see: no process of ours, two compose gateways."""

        def __init__(self, work, hashes):
            super().__init__(argparse.Namespace(opentracker=False, shoal="compose"), work,
                             cl.ports["GW1"], cl.ports["GW2"], hashes)
            self.name = "compose gateways"

        def log_tail(self, lines=30):
            return "\n".join(f"  {s}:\n{cl.logs(s, lines)}" for s in ("gw1", "gw2"))

    root = tempfile.mkdtemp(prefix="shoal-compose-e2e-", dir=cl.work)
    ports = set(cl.ports.values())
    dead_port = tc.free_port(ports)
    urls = {
        "udp": f"udp://127.0.0.1:{cl.ports['GW1']}/announce",
        "http": f"http://127.0.0.1:{cl.ports['GW2']}/announce",
        "dead": f"http://127.0.0.1:{dead_port}/announce",
    }
    swarms = {name: tc.Swarm(root, key, {tag: urls[u] for tag, u in tags.items()})
              for name, key, _, tags in tc.SCENARIOS}
    tracker = ComposeGateways(root, [sw.info_hash for sw in swarms.values()])
    failed = []
    for name, _, fn, _ in tc.SCENARIOS:
        err = tc.run_scenario(name, fn, tracker, ports, swarms[name])
        if err:
            failed.append(name)
    if failed:
        raise Failed(f"real-client scenarios failed through the compose gateways: {failed}")
    return len(tc.SCENARIOS)


def metric(port, name):
    """Sum of a metric's samples at an admin listener (None if unreachable)."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return None
    total = 0.0
    for ln in body.decode().splitlines():
        if ln.startswith(name + " ") or ln.startswith(name + "{"):
            total += float(ln.rsplit(" ", 1)[1])
    return total


def owner_of(cl, h):
    """The node whose admin API holds swarm h, or None."""
    for n in NODES:
        if http_get(f"http://127.0.0.1:{cl.admin[n]}/api/v1/torrents/{h.hex()}")[0] == 200:
            return n
    return None


def prometheus_targets(cl):
    """{admin port: health} of Prometheus's active shoal targets."""
    status, body = http_get(f"http://127.0.0.1:{cl.ports['PROMETHEUS_PORT']}/api/v1/targets")
    if status != 200:
        return {}
    out = {}
    for t in json.loads(body)["data"]["activeTargets"]:
        if t["labels"].get("job", "").startswith("shoal-"):
            out[int(t["labels"]["instance"].rsplit(":", 1)[1])] = t["health"]
    return out


def failover_and_metrics(cl):
    # Every shoal target up in Prometheus (scrape interval 5 s).
    want = set(cl.admin.values())
    if not wait_until(lambda: {p for p, h in prometheus_targets(cl).items() if h == "up"}
                      == want, 30, 0.5):
        raise Failed(f"Prometheus targets not all up within 30s: {prometheus_targets(cl)}")
    log(f"Prometheus: all {len(want)} shoal targets up")

    # Announce 96 swarms, one seeder each, through gw1 (UDP).
    peers0 = {n: metric(cl.admin[n], "shoal_snapshot_peers_total") or 0 for n in NODES}
    rng = random.Random(12)
    hashes = [bytes(rng.getrandbits(8) for _ in range(20)) for _ in range(96)]
    with trackerclient.UdpTracker("127.0.0.1", cl.ports["GW1"]) as udp:
        for i, h in enumerate(hashes):
            udp.announce(h, b"-SC0001-%012d" % i, 20000 + i, left=0)
    owners = {h: owner_of(cl, h) for h in hashes}
    if None in owners.values():
        raise Failed(f"{list(owners.values()).count(None)} swarms held by no node")
    by_node = {n: [h for h in hashes if owners[h] == n] for n in NODES}
    log("swarms per node: " + ", ".join(f"{n}={len(v)}" for n, v in by_node.items()))
    victim = max(NODES, key=lambda n: len(by_node[n]))
    lost = by_node[victim]
    survivors = [n for n in NODES if n != victim]
    # Its snapshots in Redis hold them once its snapshot-peers counter has grown by as many.
    if not wait_until(lambda: (metric(cl.admin[victim], "shoal_snapshot_peers_total") or 0)
                      >= peers0[victim] + len(lost), 10, 0.1):
        raise Failed(f"{victim} did not snapshot its {len(lost)} new peers within 10s")
    restored0 = {n: metric(cl.admin[n], "shoal_restored_swarms_total") or 0 for n in survivors}

    cid = cl.containers()[victim][0]
    t_kill = time.monotonic()
    cl.podman("kill", "-s", "KILL", cid)
    state = cl.containers().get(victim, ("", "gone"))[1]
    if state == "running":
        raise Failed(f"{victim} still running after SIGKILL")
    log(f"killed {victim} ({cid[:12]}), holding {len(lost)} swarms; state {state}")

    def all_back():
        for h in lost:
            status, body = http_get(f"http://127.0.0.1:{cl.admin['gw2']}/api/v1/torrents/{h.hex()}")
            if status != 200 or json.loads(body).get("seeders") != 1:
                return False
        return True

    if not wait_until(all_back, 30, 0.2):
        missing = [h.hex() for h in lost if
                   http_get(f"http://127.0.0.1:{cl.admin['gw2']}/api/v1/torrents/{h.hex()}")[0]
                   != 200]
        raise Failed(f"{len(missing)}/{len(lost)} of {victim}'s swarms not back within 30s "
                     f"(e.g. {missing[:3]}):\n" + "\n".join(
                         f"  {s}:\n{cl.logs(s)}" for s in survivors + ["gw2"]))
    log(f"all {len(lost)} swarms of {victim} served again through gw2's admin API "
        f"{time.monotonic() - t_kill:.1f}s after the kill")
    new_owners = {owner_of(cl, h) for h in lost}
    if not new_owners <= set(survivors):
        raise Failed(f"{victim}'s swarms now held by {new_owners}")
    restored = {n: (metric(cl.admin[n], "shoal_restored_swarms_total") or 0) - restored0[n]
                for n in survivors}
    if sum(restored.values()) < len(lost):
        raise Failed(f"survivors restored only {restored} swarms from Redis, {len(lost)} lost")
    log(f"restored from Redis: {restored}; now held by {sorted(new_owners)}")
    # And a client sees them: a UDP scrape through gw1 counts one seeder each.
    with trackerclient.UdpTracker("127.0.0.1", cl.ports["GW1"]) as udp:
        for i in range(0, len(lost), 70):
            got = udp.scrape(lost[i:i + 70])  # [(seeders, completed, leechers)]
            if any(g[0] != 1 for g in got):
                raise Failed(f"UDP scrape through gw1 after the kill: {got}")
    log("UDP scrape through gw1: one seeder in each")

    # Prometheus sees the killed node go down and the others stay up.
    vport = cl.admin[victim]
    if not wait_until(lambda: prometheus_targets(cl).get(vport) == "down", 20, 0.5):
        raise Failed(f"Prometheus did not mark {victim} down: {prometheus_targets(cl)}")
    t = prometheus_targets(cl)
    if any(h != "up" for p, h in t.items() if p != vport):
        raise Failed(f"Prometheus targets after the kill: {t}")
    log(f"Prometheus: {victim} down, the other {len(t) - 1} targets up")
    return victim, survivors


def down_with_handover(cl, survivors):
    """podman-compose down; the survivors' logs (followed until their containers go) must show
    a planned handover and the clean stop line."""
    cs = cl.containers()
    followers = {}
    # "handed over N partitions" follows the SIGTERM line; joins log "handing over" instead.
    for n in survivors:
        path = os.path.join(cl.work, f"{n}.log")
        f = open(path, "w")
        followers[n] = (subprocess.Popen(["podman", "logs", "-f", cs[n][0]], env=cl.env,
                                         stdout=f, stderr=subprocess.STDOUT), f, path)
    try:
        t = time.monotonic()
        cl.compose("down", "-t", "30")
        dt = time.monotonic() - t
        left = cl.containers()
        if left:
            raise Failed(f"containers left after down: {left}")
        log(f"down in {dt:.1f}s; no container left")
        for n, (p, f, path) in followers.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    finally:
        for n, (p, f, path) in followers.items():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=5)
            f.close()
    for n, (p, f, path) in followers.items():
        with open(path) as f:
            text = f.read()
        tail = "\n".join("    | " + ln for ln in text.splitlines()[-15:])
        after = text.split("(SIGTERM): shutting down", 1)
        if len(after) != 2 or "handed over" not in after[1] or "served " not in after[1]:
            raise Failed(f"{n} logged no planned handover and clean stop on down:\n{tail}")
        line = [ln for ln in after[1].splitlines() if "handed over" in ln][0]
        log(f"{n}: {line.strip()}")


def ping_docker_api(sock):
    """True if the Docker API at the unix socket sock answers /_ping with OK."""
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(2)
            c.connect(sock)
            c.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            data = b""
            while len(data) < 4096:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"HTTP/1.1 200") and data.rstrip().endswith(b"OK")
    except OSError:
        return False


def quick_clients(cl):
    """Two peers meet through the two gateways (one over UDP via gw1, one over HTTP via gw2),
    each handed the other's real address; a scrape through gw1 counts both."""
    h = trackerclient.random_hash()
    with trackerclient.UdpTracker("127.0.0.1", cl.ports["GW1"], timeout=2.0) as u:
        a = u.announce(h, b"-DC0001-aaaaaaaaaaaa", 40001, left=100)
        r = trackerclient.http_get("127.0.0.1", cl.ports["GW2"], trackerclient.announce_target(
            h, b"-DC0001-bbbbbbbbbbbb", 40002, left=0, compact=1))
        if r.status != 200:
            raise Failed(f"HTTP announce through gw2: {r!r}")
        b = trackerclient.bdecode(r.body)
        peers = trackerclient.parse_peers(b.get(b"peers", b""), 4)
        if ("127.0.0.1", 40001) not in peers:
            raise Failed(f"gw2 handed {peers}, not the UDP peer 127.0.0.1:40001 ({b!r})")
        a = u.announce(h, b"-DC0001-aaaaaaaaaaaa", 40001, left=100)
        if ("127.0.0.1", 40002) not in a["peers"]:
            raise Failed(f"gw1 handed {a['peers']}, not the HTTP peer 127.0.0.1:40002")
        sc = u.scrape([h])[0]
        if (sc[0], sc[2]) != (1, 1):
            raise Failed(f"scrape through gw1: seeders, completed, leechers = {sc}")
    log("a UDP peer and an HTTP peer met through gw1 and gw2; scrape 1 seeder, 1 leecher")


def docker_compose_cycle(work):
    """The same compose file with Debian's docker-compose (1.29) against podman's Docker API
    (`podman system service`): up, ready, clients, down with handovers."""
    if not shutil.which("docker-compose"):
        raise Failed("docker-compose is not installed (deploy/install-deps.sh test installs it)")
    sock = os.path.join(work, "podman.sock")
    svc_log = open(os.path.join(work, "podman-service.log"), "w")
    svc = subprocess.Popen(["podman", "system", "service", "--time=0", "unix://" + sock],
                           env=dict(os.environ, CONTAINERS_CONF=CONF), stdout=svc_log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    cl = None
    try:
        if not wait_until(lambda: ping_docker_api(sock), 30, 0.2):
            raise Failed("podman system service did not answer /_ping within 30 s")
        cwork = tempfile.mkdtemp(prefix="docker-compose-", dir=work)
        os.chmod(cwork, 0o755)
        cl = Cluster(cwork, tool="docker-compose", docker_host="unix://" + sock)
        log(f"docker-compose project {cl.project}")
        with Phase("docker-compose up"):
            cl.compose("up", "-d", timeout=300)
            wait_ready(cl)
        with Phase("docker-compose clients"):
            quick_clients(cl)
        with Phase("docker-compose down"):
            down_with_handover(cl, NODES)
    finally:
        if cl:
            cl.cleanup()
        try:
            os.killpg(svc.pid, signal.SIGTERM)
            svc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(svc.pid, signal.SIGKILL)
            svc.wait(timeout=5)
        svc_log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep-up", action="store_true",
                    help="leave the cluster running after the checks (no down, no cleanup)")
    ap.add_argument("--remove-images", action="store_true",
                    help="also remove the three images built (the base image stays)")
    args = ap.parse_args()
    # ctest and people stop runs with SIGTERM: unwind through the cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        preflight()
    except Skip as e:
        print(f"SKIP container.compose: {e}", flush=True)
        return 77

    work = tempfile.mkdtemp(prefix="shoal-compose-")
    cl = None
    ok = False
    try:
        cl = Cluster(work)
        log(f"project {cl.project}, ports {cl.ports}")
        with Phase("base"):
            base = os.path.join(ROOT, "deploy", "container-base.sh")
            # The package cache the base and the image builds share (seeded with the host's
            # .debs; podman-hostnet mounts it into every build).
            r = run([base, "--seed-apt-cache"], env=dict(os.environ, CONTAINERS_CONF=CONF))
            cl.env["SHOAL_APT_CACHE"] = r.stdout.strip().splitlines()[-1]
            run([base], env=dict(os.environ, CONTAINERS_CONF=CONF), timeout=600)
        with Phase("build"):
            # The three images are independent: build them at once (one `build SERVICE` each;
            # their apt steps wait on the network and dpkg, the compile on the CPUs), which is
            # what `build` does one after the other.
            import concurrent.futures
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                done = [pool.submit(cl.compose, "build", svc, timeout=900)
                        for svc in ("n1", "redis", "prometheus")]
                for f in done:
                    f.result()
            for img in IMAGES:
                if cl.podman("image", "exists", img, check=False, quiet=True).returncode:
                    raise Failed(f"podman-compose build did not make {img}")
            r = cl.podman("run", "--rm", IMAGES[0], "shoal-node", "--version")
            log(f"image: {r.stdout.strip()}")
        with Phase("up"):
            cl.compose("up", "-d", timeout=300)
            wait_ready(cl)
        with Phase("clients"):
            n = run_clients(cl)
            log(f"{n} real-client scenarios passed through the compose gateways")
        with Phase("failover+prometheus"):
            victim, survivors = failover_and_metrics(cl)
        if args.keep_up:
            log(f"--keep-up: project {cl.project} left running; env in {work}")
            ok = True
            return 0
        with Phase("down"):
            down_with_handover(cl, survivors)
        docker_compose_cycle(work)
        ok = True
    except Failed as e:
        print(f"FAIL: {e}", flush=True)
    except Exception as e:  # a harness error is a failure too, with its traceback
        import traceback
        traceback.print_exc()
        print(f"FAIL: harness error {e!r}", flush=True)
    finally:
        if cl and not (args.keep_up and ok):
            cl.cleanup()
            if args.remove_images:
                cl.podman("rmi", "-f", *IMAGES, check=False)
        if not (args.keep_up and ok):
            shutil.rmtree(work, ignore_errors=True)
        for name, dt, good in TIMES:
            print(f"  {name:22s} {dt:7.1f}s{'' if good else '  (failed)'}", flush=True)
        print(f"container.compose: {'PASS' if ok else 'FAIL'} in {time.monotonic() - T0:.1f}s",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
