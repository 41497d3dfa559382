#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""cluster_tracker: a one-command shoal cluster that looks like the standalone `shoal` binary.

It takes shoal's command line (--udp, --http, --workers, --interval, --log-level, ...), starts a
private redis-server, one shoal-node registered in it and one shoal-gateway given those flags,
and runs until SIGTERM or SIGINT, then stops them by PID (gateway first) and exits with the
gateway's exit code (or the first non-zero one). So tests written against `shoal --udp --http`,
such as tests/e2e/test_clients.py, run unchanged through a gateway and a node:

    CLUSTER_GATEWAY_BIN=build/cmd/shoal-gateway CLUSTER_NODE_BIN=build/cmd/shoal-node \\
        /usr/bin/python3 tests/e2e/test_clients.py --shoal tests/integration/cluster_tracker.py

CLUSTER_MODE=static uses `--nodes` instead of Redis (so does a machine without redis-server).
If a child dies on its own, the others are stopped and the exit code is 1. Every child dies with
this process (PR_SET_PDEATHSIG).
"""

import os
import secrets
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402


def main():
    gateway_bin = os.environ.get("CLUSTER_GATEWAY_BIN")
    node_bin = os.environ.get("CLUSTER_NODE_BIN")
    if not gateway_bin or not node_bin:
        print("cluster_tracker: set CLUSTER_GATEWAY_BIN and CLUSTER_NODE_BIN", file=sys.stderr)
        return 2
    mode = os.environ.get("CLUSTER_MODE", "redis")
    if mode == "redis" and not shutil.which("redis-server"):
        print("cluster_tracker: no redis-server: static membership instead", file=sys.stderr)
        mode = "static"
    if sys.argv[1:2] in (["--help"], ["--version"]):
        os.execv(gateway_bin, [gateway_bin] + sys.argv[1:2])
    sigs = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    redis, node, gateway = None, None, None
    rc = 1
    try:
        if mode == "static":
            port = clusterlib.free_port()
            membership = ("nodes", "n1=tcp://127.0.0.1:%d" % port)
        else:
            redis = clusterlib.Redis().start()
            membership, port = ("redis", redis.url), None
        node = clusterlib.Node(node_bin, "n1", membership, port=port,
                               extra=["--heartbeat-interval", "200"],
                               inherit_stderr=True).start()
        if redis and not clusterlib.wait_until(
                lambda: b"n1" in redis.command("SMEMBERS", "shoal:members"), 10):
            raise RuntimeError("the node did not register in Redis")
        argv = [gateway_bin, "--" + membership[0], membership[1],
                "--secret", secrets.token_hex(32)] + sys.argv[1:]
        # The children's stderr is ours, so the caller's log shows it.
        gateway = clusterlib.Proc("gateway", argv, inherit_stderr=True)
        print("cluster_tracker: redis %s, node pid %d, gateway pid %d" %
              (redis.url if redis else "off", node.proc.pid, gateway.pid), file=sys.stderr,
              flush=True)
        while True:
            info = signal.sigtimedwait(sigs, 0.5)
            if info and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                break
            dead = [p for p in (gateway, node.proc, redis.proc if redis else None)
                    if p and not p.alive()]
            if dead:
                print("cluster_tracker: %s exited on its own (%s)" %
                      (dead[0].name, dead[0].proc.returncode), file=sys.stderr, flush=True)
                rc = 1
                return rc
        rc = gateway.stop()
        node_rc = node.stop()
        rc = rc if rc != 0 else node_rc
        return rc
    finally:
        for p in (gateway, node.proc if node else None):
            if p:
                p.cleanup()
        if redis:
            redis.stop()
        sys.stderr.flush()

if __name__ == "__main__":
    sys.exit(main())
