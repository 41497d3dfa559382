#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.abuse: per-address rate limits, connection-id bans and UDP reflection, with the real
`shoal` binary (and a gateway in front of a node) on loopback.

  - rate limit: 127.0.0.2 floods UDP and HTTP at 10x its limit while 127.0.0.3 keeps its normal
    rate; 127.0.0.3 is answered every time, with a median latency within a bound of a run without
    the flood; 127.0.0.2 gets its share (burst + rate x time) and no more: its UDP requests over
    it get no reply, its HTTP ones a `failure reason` with `retry in`; shoal_errors_total
    {reason="rate_limited"} moves by exactly what was refused.
  - IPv6 (::1, if the host has it): the same limit per address; in a private network namespace
    (root, unshare), two addresses of one /64 share a bucket and the next /64 has its own.
  - connection-id ban: 127.0.0.4 sends N invalid connection ids and is then not answered at all
    (not even a connect) while 127.0.0.5 is; the ban is counted, logged once, and ends after
    --connid-ban-time.
  - reflection: from a source that never connected, a connect gets exactly 16 bytes, and any
    other request an error no longer than itself (never data without a valid connection id).
  - the gateway (static node list) enforces the same limit in front of a node.
  - bad option combinations stop the start with exit 2.

Every process is started on free ports, polled until it answers and stopped by its PID; every wait
has a deadline.

    /usr/bin/python3 tests/integration/test_abuse.py --shoal build/cmd/shoal \\
        --gateway build/cmd/shoal-gateway --node build/cmd/shoal-node [-k NAME]
"""

import argparse
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from trackerclient import (Daemon, HttpConn, Skip, announce_target, check, eq,  # noqa: E402
                           free_port, get_request, have_ipv6_loopback, pack_announce,
                           pack_connect, pack_scrape, parse_error)

RATE = 100  # --rate-limit
BURST = 100  # --rate-limit-burst
BAN_N = 5  # --connid-ban
BAN_TIME = 3  # --connid-ban-time
PHASE_S = 4.0  # seconds of each traffic phase
HASH = bytes(range(20))
ADMIN_LINE = re.compile(r"admin (127\.0\.0\.1:\d+)")

EXE = {}
STATE = {}
TESTS, test = clusterlib.step_list()


# ---- processes and metrics ------------------------------------------------------------------

def abuse_flags():
    return ["--rate-limit", str(RATE), "--rate-limit-burst", str(BURST), "--rate-limit-table",
            "4096", "--connid-ban", str(BAN_N), "--connid-ban-window", "30", "--connid-ban-time",
            str(BAN_TIME), "--connid-ban-table", "1024"]


def start_shoal():
    v6 = have_ipv6_loopback()

    def argv(port):
        udp = "127.0.0.1:%d" % port + (",[::1]:%d" % port if v6 else "")
        return [EXE["shoal"], "--udp", udp, "--http", "127.0.0.1:%d" % port, "--workers", "2",
                "--admin", "127.0.0.1:0", "--log-level", "info"] + abuse_flags()
    d = Daemon("shoal", argv, ipv6=v6)
    d.start()
    d.v6 = v6
    return d


def admin_of(d):
    m = clusterlib.wait_until(lambda: ADMIN_LINE.search(d.stderr_text()), 5)
    check(m, "%s logged no admin address" % d.name)
    return m.group(1)


def metric(d, name, **labels):
    with urllib.request.urlopen("http://%s/metrics" % admin_of(d), timeout=5) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        if key.split("{")[0] != name:
            continue
        got = key[len(name) + 1:-1] if "{" in key else ""
        if ",".join(sorted(got.split(","))) == want:
            return int(float(val))
    return 0


def wait_metric(d, name, want, timeout=6.0, **labels):
    """Poll until the counter is want (counters are published once a second)."""
    clusterlib.wait_until(lambda: metric(d, name, **labels) == want, timeout, 0.1)
    eq(metric(d, name, **labels), want, "%s%r" % (name, labels))


def errors(d, proto, reason):
    return metric(d, "shoal_errors_total", protocol=proto, reason=reason)


# ---- clients from a chosen source address ---------------------------------------------------

def udp_from(src, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.setblocking(False)
    return s


def drain(s, until):
    """Datagrams s receives until the monotonic time until (their lengths)."""
    got = []
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return got
        s.settimeout(left)
        try:
            got.append(len(s.recv(65536)))
        except (socket.timeout, BlockingIOError):
            return got


def ask(s, dest, pkt, timeout=1.0):
    """One request, one reply (bytes) or None within timeout."""
    s.sendto(pkt, dest)
    s.settimeout(timeout)
    try:
        return s.recv(65536)
    except socket.timeout:
        return None


def connect_id(s, dest):
    r = ask(s, dest, pack_connect(7), 2.0)
    check(r is not None and len(r) == 16, "connect from %s answered: %r" % (s.getsockname(), r))
    return struct.unpack(">IIQ", r)[2]


class Flood(threading.Thread):
    """127.0.0.2 at per_s UDP connects a second (sent in 10 ms batches), counting replies."""

    def __init__(self, dest, src, per_s, seconds, family=socket.AF_INET):
        super().__init__(daemon=True)
        self.dest, self.per_s, self.seconds = dest, per_s, seconds
        self.sock = udp_from(src, family)
        self.sent = self.replies = 0

    def run(self):
        t0 = time.monotonic()
        pkt = pack_connect(1)
        tick = 0
        while time.monotonic() - t0 < self.seconds:
            tick += 1
            while self.sent < self.per_s * tick / 100:
                try:
                    self.sock.sendto(pkt, self.dest)
                    self.sent += 1
                except BlockingIOError:
                    break
            self.replies += len(drain(self.sock, t0 + tick / 100))
        self.replies += len(drain(self.sock, time.monotonic() + 0.5))
        self.sock.close()


class HttpFlood(threading.Thread):
    """127.0.0.2 at per_s HTTP announces a second on one keep-alive connection."""

    def __init__(self, port, src, per_s, seconds):
        super().__init__(daemon=True)
        self.port, self.src, self.per_s, self.seconds = port, src, per_s, seconds
        self.ok = self.limited = 0
        self.bodies = set()

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=3, source_address=(
            self.src, 0))
        c = HttpConn.__new__(HttpConn)
        c.sock, c.buf, c.timeout = s, b"", 3.0
        t0 = time.monotonic()
        n = 0
        target = announce_target(info_hash=HASH, peer_id=b"-FL0001-000000000000", port=6881,
                                 left=0, compact=1)
        while time.monotonic() - t0 < self.seconds:
            n += 1
            c.send(get_request(target))
            r = c.read_response()
            d = r.bencoded()
            if b"failure reason" in d:
                self.limited += 1
                self.bodies.add(r.body)
            else:
                self.ok += 1
            pause = t0 + n / self.per_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        s.close()


def steady(dest, port, src, seconds, udp_per_s=20, http_per_s=5):
    """A well-behaved client at src: UDP announces and HTTP announces at a normal rate. Returns
    (answered, asked, latencies in ms)."""
    s = udp_from(src)
    cid = connect_id(s, dest)
    lat, ok, asked = [], 0, 0
    h = socket.create_connection(("127.0.0.1", port), timeout=3, source_address=(src, 0))
    c = HttpConn.__new__(HttpConn)
    c.sock, c.buf, c.timeout = h, b"", 3.0
    target = announce_target(info_hash=HASH, peer_id=b"-ST0001-000000000000", port=6882,
                             left=0, compact=1)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        n += 1
        asked += 1
        t = time.monotonic()
        if n % (udp_per_s // http_per_s + 1) == 0:
            c.send(get_request(target))
            d = c.read_response().bencoded()
            good = b"failure reason" not in d
        else:
            r = ask(s, dest, pack_announce(cid, n, HASH, b"-ST0001-000000000000", 6882), 1.0)
            good = r is not None and len(r) >= 20 and struct.unpack(">I", r[:4])[0] == 1
        if good:
            ok += 1
            lat.append((time.monotonic() - t) * 1000)
        pause = t0 + n / (udp_per_s + http_per_s) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    s.close()
    h.close()
    return ok, asked, lat


# ---- steps ----------------------------------------------------------------------------------

@test
def bad_option_combinations_stop_the_start():
    for extra, want in ((["--rate-limit-burst", "5"], "--rate-limit-burst needs --rate-limit"),
                        (["--rate-limit", "2000000"], "rate-limit"),
                        (["--connid-ban", "5", "--connid-ban-time", "0"], "connid-ban-time")):
        p = subprocess.run([EXE["shoal"], "--udp", "127.0.0.1:%d" % free_port(), "--http", "off",
                            "--admin", "off"] + extra, capture_output=True, text=True, timeout=30)
        eq(p.returncode, 2, "exit code with %s (stderr %r)" % (extra, p.stderr[-300:]))
        check(want in p.stderr, "stderr %r lacks %r" % (p.stderr[-300:], want))
    p = subprocess.run([EXE["shoal"], "--print-config"] + abuse_flags(), capture_output=True,
                       text=True, timeout=30)
    eq(p.returncode, 0, "--print-config: %s" % p.stderr)
    for key in ("rate-limit", "rate-limit-burst", "rate-limit-table", "connid-ban",
                "connid-ban-window", "connid-ban-time", "connid-ban-table"):
        check(re.search(r"^%s\b" % key, p.stdout, re.M), "--print-config lacks %s" % key)


def shoal():
    """The standalone tracker, started by the first step that needs it (so -k works)."""
    if "shoal" not in STATE:
        STATE["shoal"] = start_shoal()
    return STATE["shoal"]


@test
def shoal_starts():
    check(shoal().alive(), "shoal runs")


@test
def a_flooding_address_does_not_slow_the_others():
    d = shoal()
    dest = ("127.0.0.1", d.port)
    # Without the flood: 127.0.0.3 alone.
    ok0, asked0, lat0 = steady(dest, d.port, "127.0.0.3", PHASE_S)
    eq(ok0, asked0, "127.0.0.3 answered without the flood")
    udp_before, http_before = errors(d, "udp", "rate_limited"), errors(d, "http", "rate_limited")
    # With it: 127.0.0.2 at 10x the limit (9x over UDP, 1x over HTTP), same time.
    flood = Flood(dest, "127.0.0.2", 9 * RATE, PHASE_S)
    hflood = HttpFlood(d.port, "127.0.0.2", RATE, PHASE_S)
    flood.start()
    hflood.start()
    t0 = time.monotonic()
    ok1, asked1, lat1 = steady(dest, d.port, "127.0.0.3", PHASE_S)
    flood.join(PHASE_S + 10)
    hflood.join(PHASE_S + 10)
    elapsed = time.monotonic() - t0
    check(not flood.is_alive() and not hflood.is_alive(), "the flood threads ended")
    m0, m1 = statistics.median(lat0), statistics.median(lat1)
    print("  127.0.0.3: %d/%d answered alone (median %.2f ms), %d/%d under the flood (median "
          "%.2f ms); 127.0.0.2: %d of %d UDP and %d of %d HTTP answered in %.1f s" %
          (ok0, asked0, m0, ok1, asked1, m1, flood.replies, flood.sent, hflood.ok,
           hflood.ok + hflood.limited, elapsed))
    eq(ok1, asked1, "127.0.0.3 answered under the flood")
    check(m1 <= max(3 * m0, m0 + 5.0), "127.0.0.3's median latency %.2f ms under the flood, "
          "%.2f ms without" % (m1, m0))
    check(flood.sent >= 0.8 * 9 * RATE * PHASE_S, "the flood sent %d datagrams" % flood.sent)
    # Its share: the burst, then RATE a second, over both protocols together.
    served = flood.replies + hflood.ok
    check(served <= BURST + RATE * elapsed + 10,
          "127.0.0.2 served %d times in %.1f s (limit %d/s, burst %d)" %
          (served, elapsed, RATE, BURST))
    check(served >= 0.8 * RATE * PHASE_S, "127.0.0.2 got its share: %d" % served)
    check(hflood.limited > 0, "some HTTP requests of 127.0.0.2 were refused")
    for body in hflood.bodies:
        check(b"14:failure reason12:rate limited" in body and b"8:retry ini1e" in body,
              "a retryable failure reason: %r" % body)
    # The counters moved by exactly what was refused (127.0.0.3 was never refused).
    # Every datagram that got no reply was refused, unless the kernel dropped it before shoal
    # read it (a full socket buffer on a starved machine): allow 1 % for that, never more.
    unanswered = flood.sent - flood.replies
    clusterlib.wait_until(lambda: errors(d, "udp", "rate_limited") - udp_before == unanswered, 6,
                          0.1)
    refused = errors(d, "udp", "rate_limited") - udp_before
    check(unanswered - flood.sent // 100 <= refused <= unanswered,
          "UDP rate_limited moved by %d for %d unanswered datagrams" % (refused, unanswered))
    wait_metric(d, "shoal_errors_total", http_before + hflood.limited, protocol="http",
                reason="rate_limited")


@test
def ipv6_addresses_are_limited_too():
    d = shoal()
    if not d.v6:
        raise Skip("no IPv6 loopback")
    s = udp_from("::1", socket.AF_INET6)
    t0 = time.monotonic()
    for i in range(3 * BURST):
        s.sendto(pack_connect(i), ("::1", d.port))
    got = drain(s, time.monotonic() + 1.0)
    elapsed = time.monotonic() - t0
    s.close()
    check(BURST <= len(got) <= BURST + RATE * elapsed + 5,
          "::1 sent %d connects at once: %d answered in %.2f s (burst %d, %d/s)" %
          (3 * BURST, len(got), elapsed, BURST, RATE))


# The /64 step runs in a private network namespace (root and unshare needed), where loopback can
# be given documentation addresses of two /64s without touching the host.
NET64 = ["2001:db8::a", "2001:db8::b", "2001:db8:0:1::a"]  # two of one /64, one of the next


def inner_64(shoal_bin):
    """Inside the namespace: shoal on [::1], bursts from each NET64 address in turn; prints the
    replies each got and exits 0 (the outer step checks them)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    for a in NET64:
        subprocess.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"], check=True,
                       timeout=10)
    d = Daemon("shoal64", lambda port: [
        shoal_bin, "--udp", "127.0.0.1:%d,[::1]:%d" % (port, port), "--http", "127.0.0.1:%d" % port,
        "--workers", "2", "--admin", "off"] + abuse_flags(), ipv6=True)
    d.start()
    try:
        # The two addresses of one /64 at once, interleaved; then the next /64 alone. Each line:
        # replies, and the seconds the sending took (tokens refill meanwhile).
        same = [udp_from(a, socket.AF_INET6) for a in NET64[:2]]
        t0 = time.monotonic()
        for i in range(3 * BURST):
            for s in same:
                s.sendto(pack_connect(i), ("::1", d.port))
        sent_s = time.monotonic() - t0
        n_same = sum(len(drain(s, time.monotonic() + 0.5)) for s in same)
        other = udp_from(NET64[2], socket.AF_INET6)
        t0 = time.monotonic()
        for i in range(3 * BURST):
            other.sendto(pack_connect(i), ("::1", d.port))
        other_s = time.monotonic() - t0
        n_other = len(drain(other, time.monotonic() + 0.5))
        for s in same + [other]:
            s.close()
        print("NET64 %d:%.3f %d:%.3f" % (n_same, sent_s, n_other, other_s), flush=True)
    finally:
        d.stop()
    return 0


@test
def ipv6_addresses_of_one_64_share_a_limit():
    if os.geteuid() != 0 or not have_ipv6_loopback():
        raise Skip("needs root (a private network namespace) and IPv6")
    p = subprocess.run(["unshare", "--net", "--", sys.executable, os.path.abspath(__file__),
                        "--inner-64", "--shoal", EXE["shoal"], "--gateway", EXE["gateway"],
                        "--node", EXE["node"]], capture_output=True, text=True, timeout=60)
    m = re.search(r"^NET64 (\S+) (\S+)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        if "unshare failed" in p.stderr or "Operation not permitted" in p.stderr:
            raise Skip("no private network namespace here: %s" % p.stderr.strip()[-200:])
        raise AssertionError("the namespace run failed (%d): %s %s" % (p.returncode, p.stdout,
                                                                     p.stderr[-2000:]))
    (same, ts), (other, to) = [tuple(float(x) for x in g.split(":")) for g in m.groups()]
    print("  %s and %s (one /64) together: %d of %d answered in %.3f s; %s (the next /64): %d" %
          (NET64[0], NET64[1], same, 6 * BURST, ts, NET64[2], other))
    # One bucket for both (two would answer 2 x BURST); the refill while sending, and 0.5 s more
    # for the datagrams still queued when the sending ended, at most.
    check(BURST <= same <= BURST + RATE * (ts + 0.5) + 5,
          "two addresses of one /64 share one bucket: %d answered" % same)
    check(same < 2 * BURST, "not a bucket each: %d" % same)
    check(BURST <= other <= BURST + RATE * (to + 0.5) + 5,
          "an address of the next /64 has its own bucket: %d answered" % other)


@test
def invalid_connection_ids_ban_the_address():
    d = shoal()
    dest = ("127.0.0.1", d.port)
    bans = metric(d, "shoal_udp_bans_total")
    banned = errors(d, "udp", "banned")
    s = udp_from("127.0.0.4")
    cid = connect_id(s, dest)
    for i in range(BAN_N):
        r = ask(s, dest, pack_announce(cid ^ (i + 1), 100 + i, HASH, b"-BN0001-000000000000",
                                       6883), 2.0)
        check(r is not None, "invalid id %d answered before the ban" % (i + 1))
        eq(parse_error(r)[1], "invalid connection id", "error text")
    t_ban = time.monotonic()
    # Banned: nothing at all, not even a connect or a valid id; others are still served.
    eq(ask(s, dest, pack_connect(9), 1.0), None, "a connect from the banned address")
    eq(ask(s, dest, pack_announce(cid, 9, HASH, b"-BN0001-000000000000", 6883), 0.5), None,
       "an announce with a valid id from the banned address")
    other = udp_from("127.0.0.5")
    connect_id(other, dest)
    other.close()
    wait_metric(d, "shoal_udp_bans_total", bans + 1)
    wait_metric(d, "shoal_errors_total", banned + 2, protocol="udp", reason="banned")
    log = d.stderr_text()
    eq(len(re.findall(r"banned 127\.0\.0\.4 from UDP for %d s" % BAN_TIME, log)), 1,
       "one log line for the ban")
    # The ban ends after --connid-ban-time (whole seconds of a coarse clock: allow one more).
    r = clusterlib.wait_until(lambda: ask(s, dest, pack_connect(10), 0.3), BAN_TIME + 4, 0.2)
    waited = time.monotonic() - t_ban
    check(r is not None and len(r) == 16, "served again after the ban")
    check(BAN_TIME - 1.0 <= waited <= BAN_TIME + 3.0,
          "the ban lasted %.1f s (--connid-ban-time %d)" % (waited, BAN_TIME))
    s.close()


@test
def unconnected_sources_get_no_more_bytes_than_they_sent():
    d = shoal()
    dest = ("127.0.0.1", d.port)
    s = udp_from("127.0.0.6")
    r = ask(s, dest, pack_connect(1), 2.0)
    eq(len(r), 16, "connect reply length")
    bogus = 0x0123456789abcdef
    reqs = [pack_announce(bogus, 2, HASH, b"-RF0001-000000000000", 6884),
            pack_scrape(bogus, 3, [HASH]),
            pack_scrape(bogus, 4, [HASH] * 74),
            pack_scrape(bogus, 5, []),              # no hashes: a parse error
            struct.pack(">QII", bogus, 0, 6) + b"x",  # connect of 17 bytes, wrong magic
            struct.pack(">QII", bogus, 9, 7)]       # unknown action
    for pkt in reqs:
        r = ask(s, dest, pkt, 2.0)
        check(r is not None, "a %d-byte request answered" % len(pkt))
        eq(struct.unpack(">I", r[:4])[0], 3, "an error to a %d-byte request" % len(pkt))
        check(len(r) <= len(pkt), "a %d-byte reply to a %d-byte request" % (len(r), len(pkt)))
    s.close()


@test
def shoal_stops_cleanly():
    d = shoal()
    STATE.pop("shoal")
    eq(d.terminate(10), 0, "exit code after SIGTERM")
    d.stop()


@test
def the_gateway_limits_in_front_of_a_node():
    node_port = free_port()
    node = clusterlib.Proc("node", [EXE["node"], "--id", "n1", "--bind",
                                    "tcp://127.0.0.1:%d" % node_port, "--nodes",
                                    "n1=tcp://127.0.0.1:%d" % node_port, "--workers", "1",
                                    "--admin", "off"])
    STATE["node"] = node
    gw = Daemon("gateway", lambda port: [
        EXE["gateway"], "--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
        "--nodes", "n1=tcp://127.0.0.1:%d" % node_port, "--workers", "2", "--admin",
        "127.0.0.1:0"] + abuse_flags())
    STATE["gateway"] = gw
    gw.start()
    dest = ("127.0.0.1", gw.port)
    s = udp_from("127.0.0.7")
    cid = connect_id(s, dest)
    r = ask(s, dest, pack_announce(cid, 1, HASH, b"-GW0001-000000000000", 6885), 3.0)
    check(r is not None and struct.unpack(">I", r[:4])[0] == 1, "an announce via the node: %r"
          % r)
    before = errors(gw, "udp", "rate_limited")
    for i in range(3 * BURST):
        s.sendto(pack_connect(i), dest)
    got = len(drain(s, time.monotonic() + 1.0))
    s.close()
    check(BURST - 2 - RATE <= got <= BURST + RATE * 2,
          "gateway: %d of %d connects at once answered (burst %d)" % (got, 3 * BURST, BURST))
    wait_metric(gw, "shoal_errors_total", before + 3 * BURST - got, protocol="udp",
                reason="rate_limited")


def stop_all():
    for name in ("shoal", "gateway"):
        d = STATE.pop(name, None)
        if d:
            d.stop()
    n = STATE.pop("node", None)
    if n:
        n.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("-k", default="", help="run only steps whose name contains this")
    ap.add_argument("--inner-64", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner_64:
        return inner_64(os.path.abspath(args.shoal))
    rc = clusterlib.preflight([args.shoal, args.gateway, args.node], redis=False)
    if rc is not None:
        return rc
    EXE.update(shoal=os.path.abspath(args.shoal), gateway=os.path.abspath(args.gateway),
               node=os.path.abspath(args.node))

    def logs():
        out = []
        for name in ("shoal", "gateway"):
            d = STATE.get(name)
            if d:
                out.append(clusterlib.stderr_tail(name, d.proc and d.proc.pid, d.stderr_text()))
        return "\n".join(out)
    return clusterlib.run_steps(TESTS, args.k, logs, stop_all)


if __name__ == "__main__":
    sys.exit(main())
