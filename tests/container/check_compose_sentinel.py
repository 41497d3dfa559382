#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""lint.compose_sentinel: deploy/compose.sentinel.yaml over deploy/compose.yaml, as the two
compose implementations read them, without starting anything (a few seconds).

1. docker-compose (Debian's 1.29): `config` of the two files; podman-compose (1.0.3, which has
   no `config`): `--dry-run up -d` with a podman that only echoes, whose output holds the merged
   file and the `podman run` lines it would run. Each merged file must give:
   - a master `redis`, `redis-replica` and `redis-replica2` that replicate it (the last
     --replicaof wins, as in Redis: podman-compose 1.0.3 appends an override's `command` list to
     the base's), all three with min-replicas-to-write 1, min-replicas-max-lag 10 and a writable
     --dir; three Sentinels, each monitoring that master's port with quorum 2, on ports of their
     own;
   - every shoal service's SHOAL_REDIS = redis-sentinel:// naming exactly the three Sentinels and
     the monitored master name, and depends_on every Sentinel (so `down` stops shoal first).
   Both tools are run again with every port variable moved, so a port written as a constant
   instead of its variable fails.
2. With --bin: every shoal service's environment (and PATH only) through the built binary's
   --print-config: it must exit 0, print the URL as `redis`, and know every SHOAL_* variable.
3. Self-test: broken copies of the override (a gateway left on redis://, quorum 1, a replica
   without min-replicas-to-write, a replica without --dir) must each fail with the expected
   message.
Exit 0 = passed, 1 = failed, 77 = neither docker-compose nor podman-compose is installed."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SHOAL_BINARIES = {"shoal", "shoal-node", "shoal-gateway"}
SENTINELS = ["sentinel1", "sentinel2", "sentinel3"]
REPLICAS = ["redis-replica", "redis-replica2"]
MOVED = {"SHOAL_REDIS_PORT": "16379", "SHOAL_REDIS_REPLICA_PORT": "16380",
         "SHOAL_REDIS_REPLICA2_PORT": "16381", "SHOAL_SENTINEL1_PORT": "36379",
         "SHOAL_SENTINEL2_PORT": "36380", "SHOAL_SENTINEL3_PORT": "36381"}
DEFAULTS = {"SHOAL_REDIS_PORT": "6379", "SHOAL_REDIS_REPLICA_PORT": "6380",
            "SHOAL_REDIS_REPLICA2_PORT": "6381", "SHOAL_SENTINEL1_PORT": "26379",
            "SHOAL_SENTINEL2_PORT": "26380", "SHOAL_SENTINEL3_PORT": "26381"}


def last(args, opt, n=1):
    """The n values after the last occurrence of opt in args (Redis keeps the last), or None."""
    idx = [i for i, a in enumerate(args) if a == opt]
    if not idx or idx[-1] + n >= len(args):
        return None
    i = idx[-1]
    return args[i + 1:i + 1 + n] if n > 1 else args[i + 1]


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else str(v).split()


def check_merged(services, want_ports):
    """Problems (strings) of one merged compose file's services."""
    bad = []
    for s in ["redis"] + REPLICAS + SENTINELS:
        if s not in services:
            bad.append(f"no service {s}")
    if bad:
        return bad
    master = as_list(services["redis"].get("command"))
    mport = last(master, "--port")
    if mport != want_ports["SHOAL_REDIS_PORT"]:
        bad.append(f"redis: --port {mport}, not {want_ports['SHOAL_REDIS_PORT']}")
    servers = [("redis", master)]
    rports = []
    for r in REPLICAS:
        replica = as_list(services[r].get("command"))
        servers.append((r, replica))
        rport = last(replica, "--port")
        rports.append(rport)
        want = want_ports[f"SHOAL_{r.upper().replace('-', '_')}_PORT"]
        if rport != want:
            bad.append(f"{r}: --port {rport}, not {want}")
        if last(replica, "--replicaof", 2) != ["127.0.0.1", mport]:
            bad.append(f"{r}: --replicaof {last(replica, '--replicaof', 2)}, not the "
                       f"master 127.0.0.1 {mport}")
    # Every server may become the master. A replica writes what it syncs into --dir: the image's
    # working directory (/) is not writable by its user, so a replica there never syncs.
    for name, args in servers:
        for opt, val in (("--min-replicas-to-write", "1"), ("--min-replicas-max-lag", "10"),
                         ("--dir", "/tmp")):
            if last(args, opt) != val:
                bad.append(f"{name}: {opt} is {last(args, opt)}, not {val}")
    # Sentinels: port and master port are the arguments of the entrypoint's script.
    sent_ports, names = [], set()
    for s in SENTINELS:
        svc = services[s]
        script = " ".join(as_list(svc.get("entrypoint"))).replace("$$", "$")
        cmd = [str(a) for a in as_list(svc.get("command"))]
        if len(cmd) != 2:
            bad.append(f"{s}: command {cmd}: want [port, master port]")
            continue
        port, master_port = cmd
        want = want_ports[f"SHOAL_SENTINEL{s[-1]}_PORT"]
        if port != want:
            bad.append(f"{s}: port {port}, not {want}")
        if master_port != mport:
            bad.append(f"{s}: watches port {master_port}, not the master's {mport}")
        m = re.search(r"sentinel monitor (\S+) 127\.0\.0\.1 \$2 (\d+)", script)
        if not m:
            bad.append(f"{s}: no 'sentinel monitor NAME 127.0.0.1 $2 QUORUM' in its entrypoint")
            continue
        names.add(m.group(1))
        if m.group(2) != "2":
            bad.append(f"{s}: quorum {m.group(2)}, not 2")
        for line in ("port $1", "sentinel announce-port $1", "--sentinel"):
            if line not in script:
                bad.append(f"{s}: its entrypoint lacks {line!r}")
        sent_ports.append(port)
    if len(names) != 1:
        bad.append(f"the Sentinels monitor different names: {sorted(names)}")
    all_ports = [mport] + rports + sent_ports
    if len(set(all_ports)) != len(all_ports):
        bad.append(f"Redis and Sentinel ports clash: {all_ports}")
    want_hosts = {f"127.0.0.1:{p}" for p in sent_ports}
    name = next(iter(names), "?")
    shoal = [s for s, svc in services.items()
             if as_list(svc.get("command"))[:1] and as_list(svc["command"])[0] in SHOAL_BINARIES]
    if not shoal:
        bad.append("no shoal service")
    for s in shoal:
        env = services[s].get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        url = str(env.get("SHOAL_REDIS", ""))
        m = re.fullmatch(r"redis-sentinel://([^/]+)/([^/]+)", url)
        if not m:
            bad.append(f"{s}: SHOAL_REDIS is {url!r}, not a redis-sentinel:// URL")
            continue
        if set(m.group(1).split(",")) != want_hosts or m.group(2) != name:
            bad.append(f"{s}: SHOAL_REDIS {url} does not name the Sentinels {sorted(want_hosts)} "
                       f"and master {name}")
        deps = services[s].get("depends_on") or []
        missing = [x for x in SENTINELS if x not in deps]
        if missing:
            bad.append(f"{s}: does not depend on {missing}")
    return bad


def docker_compose(files, env):
    r = subprocess.run(["docker-compose", "-p", "shoal"] + sum((["-f", f] for f in files), []) +
                       ["config"], env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"docker-compose config exited {r.returncode}: {r.stderr.strip()}")
    return yaml.safe_load(r.stdout)["services"]


def podman_compose(files, env):
    """The merged services podman-compose 1.0.3 prints with --dry-run (podman is /bin/echo, so
    nothing runs), checked to have a `run` line each."""
    r = subprocess.run(["podman-compose", "--dry-run", "--podman-path", shutil.which("echo"),
                        "-p", "shoallint"] + sum((["-f", f] for f in files), []) + ["up", "-d"],
                       env=env, capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    m = re.search(r"\*\* merged:\n(.*?)\n\*\* excluding", out, re.S)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"podman-compose --dry-run up exited {r.returncode} without its merged "
                           f"file (another podman-compose version?):\n{out[-2000:]}")
    services = json.loads(m.group(1))["services"]
    for s in services:
        if f"run --name=shoallint_{s}_1 " not in out:
            raise RuntimeError(f"podman-compose would not run service {s}")
    return services


def print_config(services, bindir):
    bad = []
    for s, svc in sorted(services.items()):
        cmd = as_list(svc.get("command"))
        if not cmd or cmd[0] not in SHOAL_BINARIES:
            continue
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        r = subprocess.run([os.path.join(bindir, cmd[0])] + cmd[1:] + ["--print-config"],
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            bad.append(f"{s}: {cmd[0]} --print-config with its environment: exit {r.returncode}: "
                       f"{r.stderr.strip()}")
            continue
        keys = set(re.findall(r"^([a-z0-9-]+) = ", r.stdout, re.M))
        if f"redis = {env['SHOAL_REDIS']}\n" not in r.stdout:
            bad.append(f"{s}: {cmd[0]} --print-config does not print redis = {env['SHOAL_REDIS']}")
        # The binaries ignore SHOAL_* variables they do not know: each must be an option.
        for k in env:
            if k.startswith("SHOAL_") and k[6:].lower().replace("_", "-") not in keys:
                bad.append(f"{s}: env {k}: {cmd[0]} has no option --{k[6:].lower().replace('_', '-')}")
    return bad


# (what is broken, text of the override, replacement, what a failure must say)
BREAKS = [
    ("a gateway left on redis://", "  gw2:\n    depends_on: [redis, sentinel1, sentinel2, "
     "sentinel3, n1, n2, n3]\n    environment:\n      <<: *shoal-redis\n", "",
     "gw2: SHOAL_REDIS is 'redis://127.0.0.1:6379'"),
    ("quorum 1", "127.0.0.1 $$2 2", "127.0.0.1 $$2 1", "quorum 1, not 2"),
    ("a replica without min-replicas-to-write",
     '"--appendonly", "no",\n              "--min-replicas-to-write", "1", "--min-replicas-max-lag", '
     '"10"]\n\n  sentinel1:', '"--appendonly", "no"]\n\n  sentinel1:',
     "redis-replica2: --min-replicas-to-write is None, not 1"),
    ("a replica in an unwritable directory", '"${SHOAL_REDIS_REPLICA_PORT:-6380}", "--dir", "/tmp",',
     '"${SHOAL_REDIS_REPLICA_PORT:-6380}",', "redis-replica: --dir is None, not /tmp"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(HERE)))
    ap.add_argument("--bin", help="directory of the built binaries (runs --print-config)")
    args = ap.parse_args()
    base = os.path.join(args.root, "deploy", "compose.yaml")
    override = os.path.join(args.root, "deploy", "compose.sentinel.yaml")
    tools = [(n, f) for n, f in (("docker-compose", docker_compose),
                                 ("podman-compose", podman_compose)) if shutil.which(n)]
    if not tools:
        print("skipped: neither docker-compose nor podman-compose is installed")
        return 77
    for n in ("docker-compose", "podman-compose"):
        if not shutil.which(n):
            print(f"note: {n} not installed: not checked with it")
    env0 = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env0["SHOAL_CONNID_FILE"] = "/dev/null"
    failed = 0
    for tool, read in tools:
        for label, ports in (("default ports", DEFAULTS), ("ports moved", MOVED)):
            try:
                services = read([base, override], {**env0, **(ports if ports is MOVED else {})})
                bad = check_merged(services, ports)
                if args.bin and ports is DEFAULTS:
                    bad += print_config(services, args.bin)
            except RuntimeError as e:
                bad = [str(e)]
            print(f"{tool}, {label}: {'ok' if not bad else 'FAILED'}")
            for b in bad:
                print(f"    {b}")
            failed += bool(bad)
    # Self-test with the first tool: each broken override must fail, saying why.
    tool, read = tools[0]
    text = open(override).read()
    with tempfile.TemporaryDirectory(prefix="shoal-compose-lint-") as tmp:
        for what, old, new, expect in BREAKS:
            if text.count(old) != 1:
                print(f"self-test '{what}': the override does not hold {old!r} exactly once; "
                      "update BREAKS")
                failed += 1
                continue
            broken = os.path.join(tmp, "compose.sentinel.yaml")
            open(broken, "w").write(text.replace(old, new))
            try:
                bad = check_merged(read([base, broken], env0), DEFAULTS)
            except RuntimeError as e:
                bad = [str(e)]
            hit = [b for b in bad if expect in b]
            if hit:
                print(f"self-test: broken copy fails as it must: {what}\n    {hit[0]}")
            else:
                print(f"self-test '{what}': not refused with {expect!r}: {bad}")
                failed += 1
    print(f"lint.compose_sentinel: {'FAILED' if failed else 'ok'} ({failed} problem(s))")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
