#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.access: the real `shoal` binary with --access-mode and --access-list, driven over
UDP (BEP 15) and HTTP: listed and unlisted info-hashes are served or refused as the mode says, a
refusal is the protocol's error (BEP 15 action 3 / HTTP `failure reason`) with the text
"torrent not allowed on this tracker", a scrape naming any refused hash is refused whole, and a
refused announce creates no swarm (the torrent count in the "served" line at SIGTERM). Bad options
and bad list files stop the start with exit 2 and the file's line number.

Processes: allow (list file of two hashes, one in upper case, with comments), deny (the same
list), empty (allow without a list); each started on free ports, polled until it answers, and
stopped by its PID whatever happens; every wait has a deadline.

    /usr/bin/python3 tests/integration/test_access.py --shoal build/cmd/shoal [-k NAME]
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from trackerclient import (check, eq, Daemon, HttpConn, UdpTracker, announce_target,  # noqa: E402
                           bencode, free_port, get_request, parse_error, random_hash,
                           scrape_target)

REFUSED = "torrent not allowed on this tracker"
RNG = random.Random(int.from_bytes(os.urandom(8), "big"))
LISTED = [random_hash(RNG) for _ in range(2)]
UNLISTED = [random_hash(RNG) for _ in range(2)]
TORRENTS_RE = re.compile(r"(\d+) torrents, (\d+) peers")


def pid(n):
    return ("-SH0001-%012d" % n).encode()


class Env:
    def __init__(self, shoal):
        self.shoal = shoal
        self.tmp = tempfile.mkdtemp(prefix="shoal-access-")
        self.list_file = os.path.join(self.tmp, "allowed.txt")
        with open(self.list_file, "w") as f:
            f.write("# test list\n\n%s\n  %s  # upper case, spaces and a comment\r\n" %
                    (LISTED[0].hex(), LISTED[1].hex().upper()))
        self.daemons = {}
        # Several trackers run at once: none may take the default admin port, where there is one.
        helptext = subprocess.run([shoal, "--help"], capture_output=True, text=True,
                                  timeout=30).stdout
        self.common = ["--admin", "off"] if "--admin " in helptext else []

    def argv(self, extra):
        return lambda port: [self.shoal, "--udp", "127.0.0.1:%d" % port, "--http",
                             "127.0.0.1:%d" % port, "--workers", "2", "--log-level", "info"] + \
            self.common + extra

    def add(self, name, extra):
        d = Daemon(name, self.argv(extra))
        self.daemons[name] = d
        d.start()
        return d

    def start_all(self):
        self.add("allow", ["--access-mode", "allow", "--access-list", self.list_file])
        self.add("deny", ["--access-mode", "deny", "--access-list", self.list_file])
        self.add("empty", ["--access-mode", "allow"])

    def stop_all(self):
        for d in self.daemons.values():
            d.stop()
        for name in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, name))
        os.rmdir(self.tmp)


ENV = None
USED = set()
TESTS, test = clusterlib.step_list()


def srv(name):
    USED.add(name)
    return ENV.daemons[name]


def udp(name):
    return UdpTracker("127.0.0.1", srv(name).port)


def http_req(name, target):
    with HttpConn("127.0.0.1", srv(name).port) as c:
        c.send(get_request(target))
        r = c.read_response()
    eq(r.status, 200, "HTTP status of %s" % target[:40])
    return r


def udp_refused(u, tid, reply, what):
    rtid, msg = parse_error(reply)
    eq(rtid, tid, "%s: transaction id of the error" % what)
    eq(msg, REFUSED, "%s: error text" % what)


def udp_announce_ok(name, info_hash, n):
    with udp(name) as u:
        r = u.announce(info_hash, pid(n), 7000 + n, left=10)
        check(r["interval"] > 0, "interval %d" % r["interval"])
        return r


def udp_announce_refused(name, info_hash, n):
    with udp(name) as u:
        tid, reply = u.announce_raw(info_hash, pid(n), 7000 + n, left=10)
        udp_refused(u, tid, reply, "UDP announce %s" % info_hash.hex()[:8])


def http_announce(name, info_hash, n):
    return http_req(name, announce_target(info_hash=info_hash, peer_id=pid(n), port=7100 + n,
                                          left=10, compact=1))


def http_ok(r, what):
    d = r.bencoded()
    check(b"failure reason" not in d, "%s: failure %r" % (what, d.get(b"failure reason")))
    return d


def http_refused(r, what):
    eq(r.body, bencode({"failure reason": REFUSED}), "%s: body" % what)


def served_torrents(name):
    d = srv(name)
    eq(d.terminate(10), 0, "%s exit code after SIGTERM" % name)
    m = TORRENTS_RE.search(d.stderr_text())
    check(m, "%s logged no torrent count: %s" % (name, d.stderr_text()[-500:]))
    return int(m.group(1))


@test
def allow_serves_listed_over_udp_and_http():
    r = udp_announce_ok("allow", LISTED[0], 1)
    eq((r["leechers"], r["seeders"]), (1, 0), "UDP swarm counts after the first announce")
    d = http_ok(http_announce("allow", LISTED[0], 2), "HTTP announce of a listed hash")
    eq(d[b"incomplete"], 2, "HTTP: leechers of the listed swarm")
    http_ok(http_announce("allow", LISTED[1], 3), "HTTP announce of the upper-case listed hash")
    with udp("allow") as u:
        eq(u.scrape(LISTED), [(0, 0, 2), (0, 0, 1)], "UDP scrape of both listed hashes")
    d = http_ok(http_req("allow", scrape_target([LISTED[1]])), "HTTP scrape")
    eq(d[b"files"][LISTED[1]][b"incomplete"], 1, "HTTP scrape: leechers")


@test
def allow_refuses_unlisted_over_udp_and_http():
    for k in range(3):
        udp_announce_refused("allow", UNLISTED[0], 10 + k)
        http_refused(http_announce("allow", UNLISTED[0], 20 + k), "HTTP announce of unlisted")
    with udp("allow") as u:
        tid, reply = u.scrape_raw([UNLISTED[0]])
        udp_refused(u, tid, reply, "UDP scrape of an unlisted hash")
    http_refused(http_req("allow", scrape_target([UNLISTED[0]])), "HTTP scrape of unlisted")
    # The connection id stays good after a refusal: the next request on it is served.
    with udp("allow") as u:
        tid, reply = u.announce_raw(UNLISTED[1], pid(30), 7030, left=1)
        udp_refused(u, tid, reply, "UDP announce")
        r = u.announce(LISTED[0], pid(31), 7031, left=0)
        check(r["seeders"] >= 1, "listed announce after a refusal on the same connection id")


@test
def a_scrape_with_one_refused_hash_is_refused_whole():
    with udp("allow") as u:
        tid, reply = u.scrape_raw([LISTED[0], UNLISTED[0], LISTED[1]])
        udp_refused(u, tid, reply, "UDP scrape of listed + unlisted")
    http_refused(http_req("allow", scrape_target([LISTED[0], UNLISTED[1]])),
                 "HTTP scrape of listed + unlisted")


@test
def deny_is_the_reverse():
    r = udp_announce_ok("deny", UNLISTED[0], 40)
    eq(r["leechers"], 1, "UDP announce of an unlisted hash in deny mode")
    http_ok(http_announce("deny", UNLISTED[1], 41), "HTTP announce of an unlisted hash (deny)")
    for k, hsh in enumerate(LISTED):
        udp_announce_refused("deny", hsh, 42 + k)
        http_refused(http_announce("deny", hsh, 44 + k), "HTTP announce of a denied hash")
    with udp("deny") as u:
        eq(u.scrape([UNLISTED[0]]), [(0, 0, 1)], "UDP scrape of an allowed hash (deny)")
        tid, reply = u.scrape_raw([UNLISTED[0], LISTED[1]])
        udp_refused(u, tid, reply, "UDP scrape with a denied hash")
    http_refused(http_req("deny", scrape_target([LISTED[0]])), "HTTP scrape of a denied hash")


@test
def allow_without_a_list_refuses_everything():
    udp_announce_refused("empty", LISTED[0], 50)
    http_refused(http_announce("empty", UNLISTED[0], 51), "HTTP announce with an empty list")
    check("every torrent is refused" in srv("empty").stderr_text(),
          "no warning about allow without a list")


@test
def refused_announces_create_no_swarm():
    # allow: the two listed swarms only (three unlisted announces per protocol were refused);
    # deny: the two unlisted ones; empty: none.
    check("access list: mode allow, 2 info-hashes from %s" % ENV.list_file in
          srv("allow").stderr_text(), "allow logged no list summary")
    eq(served_torrents("allow"), 2, "torrents in allow mode")
    eq(served_torrents("deny"), 2, "torrents in deny mode")
    eq(served_torrents("empty"), 0, "torrents with an empty allow list")


def start_fails(extra, want):
    with tempfile.TemporaryFile() as err:
        port = free_port()
        p = subprocess.run([ENV.shoal, "--udp", "127.0.0.1:%d" % port, "--http", "off"] +
                           ENV.common + extra,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=30)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    eq(p.returncode, 2, "exit code with %s (stderr %r)" % (extra, text[-300:]))
    check(want in text, "stderr %r lacks %r" % (text[-300:], want))


@test
def bad_options_and_lists_stop_the_start():
    bad = os.path.join(ENV.tmp, "bad.txt")
    with open(bad, "w") as f:
        f.write("%s\n# fine\nnot-a-hash\n" % LISTED[0].hex())
    start_fails(["--access-mode", "allow", "--access-list", bad],
                "--access-list %s: line 3: expected an info-hash" % bad)
    start_fails(["--access-mode", "allow", "--access-list", bad + ".missing"],
                "--access-list %s.missing: No such file or directory" % bad)
    start_fails(["--access-mode", "maybe"], "--access-mode must be off, allow or deny")


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", required=True, help="path to the shoal binary")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.shoal], redis=False)
    if rc is not None:
        return rc
    ENV = Env(os.path.abspath(args.shoal))
    t_start = time.monotonic()
    try:
        ENV.start_all()
    except Exception as e:
        print("could not start: %s" % e)
        for d in ENV.daemons.values():
            print("---- %s stderr ----\n%s" % (d.name, d.stderr_text()[-3000:]))
        ENV.stop_all()
        return 1

    def logs():
        return "\n".join(clusterlib.stderr_tail(n, d.proc and d.proc.pid, d.stderr_text(), 30)
                         for n, d in sorted(ENV.daemons.items()) if n in USED)

    def step(name, fn):
        def run():
            USED.clear()
            fn()
        return name, run

    # The last step stops the daemons: with -k it runs only if named.
    steps = [step(name, fn) for name, fn in TESTS]
    return clusterlib.run_steps(steps, args.k, logs, ENV.stop_all, t_start)


if __name__ == "__main__":
    sys.exit(main())
