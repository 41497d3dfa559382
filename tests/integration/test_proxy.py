#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.proxy: PROXY protocol v2 (--proxy-protocol) with the real `shoal` binary and a
real HAProxy (Debian's package, `server ... send-proxy-v2`) in front of its HTTP port.

Addresses on loopback: HAProxy listens on 127.0.0.1 and connects to shoal from 127.0.0.2 (its
`source`); 127.0.0.3 plays a UDP load balancer that prefixes each datagram with a header. shoal
trusts exactly those two (--proxy-protocol 127.0.0.2/32,127.0.0.3/32) and trusts X-Forwarded-For
from 127.0.0.7 only (--trust-proxy). Clients bind other 127.0.0.x sources, so the address shoal
hands to other peers tells whether the header was used.

Checked: peers announcing through HAProxy are handed out under their own address (not HAProxy's);
a header sent directly from an unlisted source closes the connection unanswered, as does a listed
source without a header; a LOCAL header keeps the socket's address; X-Forwarded-For counts only
when the PROXY address is itself in --trust-proxy; UDP datagrams with a header from the listed
balancer are answered to the balancer, and the connection id and peer address are the header's;
a header from an unlisted UDP source and a bare datagram from the balancer are dropped; IPv6
inside a header over IPv4 (HTTP and UDP); with --rate-limit, two clients behind one balancer
have a bucket each (the limit keys on the header's address); the counters in /metrics; a bad --proxy-protocol stops
the start with exit 2. HAProxy runs from a generated config on free ports and is stopped by its
PID. Exit 77 (skipped) only if haproxy is not installed.

    /usr/bin/python3 tests/integration/test_proxy.py --shoal build/cmd/shoal [-k NAME]
"""

import argparse
import ipaddress
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from trackerclient import (check, eq, poll, Daemon, HttpConn, UdpTracker,  # noqa: E402
                           announce_target, bdecode, free_port, get_request, pack_announce,
                           pack_connect, parse_error, parse_peers, random_hash)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
HAPROXY_SRC = "127.0.0.2"
UDP_LB = "127.0.0.3"
XFF_PROXY = "127.0.0.7"
RNG = random.Random(int.from_bytes(os.urandom(8), "big"))


def header(src, sport, dst="127.0.0.1", dport=6969, dgram=False, local=False):
    """A PROXY v2 header for a client at src:sport (IPv4 or IPv6 text)."""
    ip = ipaddress.ip_address(src)
    if local:
        return SIG + bytes([0x20, 0x00]) + struct.pack(">H", 0)
    tr = 0x02 if dgram else 0x01
    if ip.version == 4:
        body = ip.packed + ipaddress.ip_address(dst).packed + struct.pack(">HH", sport, dport)
        fam = 0x10
    else:
        body = ip.packed + ipaddress.ip_address("::1").packed + struct.pack(">HH", sport, dport)
        fam = 0x20
    return SIG + bytes([0x21, fam | tr]) + struct.pack(">H", len(body)) + body


def pid(n):
    return ("-SH0001-%012d" % n).encode()


class Env:
    def __init__(self, shoal):
        self.shoal = shoal
        self.tmp = tempfile.mkdtemp(prefix="shoal-proxy-")
        self.admin_port = free_port()
        self.shoal_d = None
        self.haproxy = None
        self.haproxy_log = None
        self.hp_port = None

    def start(self):
        def argv(port):
            return [self.shoal, "--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                    "--workers", "2", "--log-level", "info",
                    "--admin", "127.0.0.1:%d" % self.admin_port,
                    "--proxy-protocol", "%s/32,%s/32" % (HAPROXY_SRC, UDP_LB),
                    "--trust-proxy", "%s/32" % XFF_PROXY]
        self.shoal_d = Daemon("shoal", argv)
        self.shoal_d.start()
        self.start_haproxy()

    def start_haproxy(self):
        for _ in range(3):
            self.hp_port = free_port()
            cfg = os.path.join(self.tmp, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write("global\n  maxconn 200\n"
                        "defaults\n  mode tcp\n  timeout connect 3s\n  timeout client 20s\n"
                        "  timeout server 20s\n"
                        "frontend fe\n  bind 127.0.0.1:%d\n  default_backend be\n"
                        "backend be\n  server tracker 127.0.0.1:%d send-proxy-v2 source %s\n"
                        % (self.hp_port, self.shoal_d.port, HAPROXY_SRC))
            self.haproxy_log = open(os.path.join(self.tmp, "haproxy.log"), "wb")
            # -db: stay in the foreground, so the PID we hold is HAProxy's.
            self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg],
                                            stdin=subprocess.DEVNULL, stdout=self.haproxy_log,
                                            stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while self.haproxy.poll() is None and time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", self.hp_port), timeout=0.5):
                        return
                except OSError:
                    time.sleep(0.02)
            self.stop_haproxy()
        raise RuntimeError("haproxy did not start: %s" % self.haproxy_text())

    def haproxy_text(self):
        try:
            with open(os.path.join(self.tmp, "haproxy.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def stop_haproxy(self):
        if self.haproxy is not None:
            if self.haproxy.poll() is None:
                self.haproxy.terminate()
                try:
                    self.haproxy.wait(5)
                except subprocess.TimeoutExpired:
                    self.haproxy.kill()
                    self.haproxy.wait(5)
            self.haproxy = None
        if self.haproxy_log:
            self.haproxy_log.close()
            self.haproxy_log = None

    def stop_all(self):
        self.stop_haproxy()
        if self.shoal_d:
            self.shoal_d.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port,
                                    timeout=3) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#") or " " not in line:
                continue
            key, value = line.rsplit(" ", 1)
            mname, _, rest = key.partition("{")
            if mname != name:
                continue
            got = ",".join(sorted(p for p in rest.rstrip("}").split(",") if p))
            if got == want:
                return float(value)
        return None


ENV = None
TESTS, test = clusterlib.step_list()


def count(name, **labels):
    return ENV.metric(name, **labels) or 0


def counted(at_least, name, **labels):
    """Wait (the front ends publish once a second) until metric name{labels} >= at_least."""
    poll(lambda: count(name, **labels) >= at_least, 5,
         what="%s%r >= %d" % (name, labels, at_least))


def tcp_from(src, port, host="127.0.0.1", timeout=3.0):
    """An HttpConn whose socket is bound to source address src."""
    c = HttpConn.__new__(HttpConn)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.bind((src, 0))
    c.sock.settimeout(timeout)
    c.sock.connect((host, port))
    c.timeout = timeout
    c.buf = b""
    return c


def http_announce(conn, info_hash, n, port, prefix=b"", headers=()):
    """One announce on conn (prefixed with raw bytes); returns the decoded reply dict."""
    conn.send(prefix + get_request(announce_target(info_hash, pid(n), port, left=10, compact=1),
                                   headers=headers))
    r = conn.read_response()
    eq(r.status, 200, "HTTP status")
    d = bdecode(r.body)
    check(b"failure reason" not in d, "announce refused: %r" % d)
    return d


def peers_of(d):
    return parse_peers(d.get(b"peers", b""), 4) + parse_peers(d.get(b"peers6", b""), 6)


def via_haproxy(src, info_hash, n, port):
    with tcp_from(src, ENV.hp_port) as c:
        return http_announce(c, info_hash, n, port)


def refused_unanswered(conn, data, what):
    conn.send(data)
    check(conn.wait_eof(5), "%s: connection not closed" % what)
    eq(conn.buf, b"", "%s: bytes sent back" % what)


@test
def haproxy_gives_peers_the_real_address():
    h = random_hash(RNG)
    before = count("shoal_proxy_headers_total", protocol="http", result="accepted")
    via_haproxy("127.0.0.5", h, 1, 7001)
    d = via_haproxy("127.0.0.6", h, 2, 7002)
    peers = peers_of(d)
    eq(peers, [("127.0.0.5", 7001)], "peers the second client got through HAProxy")
    counted(before + 2, "shoal_proxy_headers_total", protocol="http", result="accepted")


@test
def header_from_unlisted_source_is_refused():
    h = random_hash(RNG)
    before = count("shoal_errors_total", protocol="http", reason="proxy_protocol")
    req = get_request(announce_target(h, pid(3), 7003, left=10, compact=1))
    with tcp_from("127.0.0.1", ENV.shoal_d.port) as c:
        refused_unanswered(c, header("10.9.9.9", 1234) + req, "header from 127.0.0.1")
    # Even a bare prefix of the signature (5 bytes, a NUL included) is refused at once.
    with tcp_from("127.0.0.8", ENV.shoal_d.port) as c:
        refused_unanswered(c, SIG[:5], "signature prefix from 127.0.0.8")
    # The claimed address never reached the swarm: a plain client sees no peer.
    with tcp_from("127.0.0.1", ENV.shoal_d.port) as c:
        d = http_announce(c, h, 4, 7004)
    eq(peers_of(d), [], "peers after refused headers")
    counted(before + 2, "shoal_errors_total", protocol="http", reason="proxy_protocol")


@test
def listed_source_without_header_is_refused():
    h = random_hash(RNG)
    req = get_request(announce_target(h, pid(5), 7005, left=10, compact=1))
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:
        refused_unanswered(c, req, "plain HTTP from the listed balancer")
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:
        bad = bytearray(header("127.0.0.9", 1))
        bad[12] = 0x11  # version 1 in a v2 header
        refused_unanswered(c, bytes(bad) + req, "bad version from the listed balancer")


@test
def header_split_over_writes_and_pipelined():
    h = random_hash(RNG)
    hdr = header("127.0.0.11", 40000)
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(hdr[:7])
        c.send(hdr[7:20])
        d = http_announce(c, h, 6, 7006, prefix=hdr[20:])
        d = http_announce(c, h, 7, 7007)  # keep-alive: one header per connection only
    with tcp_from("127.0.0.1", ENV.shoal_d.port) as c:
        d = http_announce(c, h, 8, 7008)
    eq(sorted(peers_of(d)), [("127.0.0.11", 7006), ("127.0.0.11", 7007)], "peers")


@test
def local_header_keeps_socket_address():
    h = random_hash(RNG)
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:
        http_announce(c, h, 9, 7009, prefix=header("0.0.0.0", 0, local=True))
    with tcp_from("127.0.0.1", ENV.shoal_d.port) as c:
        d = http_announce(c, h, 10, 7010)
    eq(peers_of(d), [(HAPROXY_SRC, 7009)], "peer behind a LOCAL header")


@test
def forwarded_for_only_from_trusted_proxy_address():
    h = random_hash(RNG)
    xff = ["X-Forwarded-For: 10.1.2.3"]
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:  # PROXY says 127.0.0.7: trusted
        http_announce(c, h, 11, 7011, prefix=header(XFF_PROXY, 1), headers=xff)
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:  # PROXY says 127.0.0.12: not trusted
        http_announce(c, h, 12, 7012, prefix=header("127.0.0.12", 1), headers=xff)
    with tcp_from("127.0.0.1", ENV.shoal_d.port) as c:
        d = http_announce(c, h, 13, 7013)
    eq(sorted(peers_of(d)), [("10.1.2.3", 7011), ("127.0.0.12", 7012)], "peers")


@test
def ipv6_inside_a_header_http():
    h = random_hash(RNG)
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:
        http_announce(c, h, 14, 7014, prefix=header("2001:db8::14", 5))
    with tcp_from(HAPROXY_SRC, ENV.shoal_d.port) as c:
        d = http_announce(c, h, 15, 7015, prefix=header("2001:db8::15", 5))
    eq(peers_of(d), [("2001:db8::14", 7014)], "IPv6 peer through an IPv4 balancer")


class UdpLb:
    """A UDP socket on src that prefixes each datagram with a header for client (ip, port)."""

    def __init__(self, src, client, family=4):
        self.t = UdpTracker("127.0.0.1", ENV.shoal_d.port, family=family, timeout=1.0)
        self.t.sock.close()
        self.t.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.t.sock.bind((src, 0))
        self.client = client
        self.t.family = family  # how announce replies' peers are parsed
        real_send = self.t.sock.sendto
        self.t.send = lambda pkt: real_send(self.prefix() + pkt, self.t.addr)

    def prefix(self):
        return header(self.client[0], self.client[1], dgram=True) if self.client else b""

    def __enter__(self):
        return self.t

    def __exit__(self, *exc):
        self.t.close()


@test
def udp_header_from_listed_balancer():
    h = random_hash(RNG)
    before = count("shoal_proxy_headers_total", protocol="udp", result="accepted")
    with UdpLb(UDP_LB, ("127.0.0.21", 6881)) as a:
        a.announce(h, pid(21), 7021, left=10)  # connect + announce, both through the header
        cid_21 = a.conn_id
    with UdpLb(UDP_LB, ("127.0.0.22", 6881)) as b:
        r = b.announce(h, pid(22), 7022, left=10)
        eq(r["peers"], [("127.0.0.21", 7021)], "peers of a UDP client behind the balancer")
        # The connection id is keyed on the header's address: 127.0.0.21's is not 127.0.0.22's.
        tid = b.new_tid()
        reply = b.request(pack_announce(cid_21, tid, h, pid(22), 7022, left=10), tid)
        eq(parse_error(reply), (tid, "invalid connection id"), "another client's id")
    counted(before + 5, "shoal_proxy_headers_total", protocol="udp", result="accepted")


@test
def udp_header_refused_and_bare_datagram_dropped():
    before = count("shoal_errors_total", protocol="udp", reason="proxy_protocol")
    with UdpLb("127.0.0.1", ("127.0.0.23", 6881)) as u:  # a header from an unlisted source
        u.send(pack_connect(77))
        eq(u.recv(1.0), None, "reply to a header from an unlisted source")
    with UdpLb(UDP_LB, None) as u:  # the balancer without a header
        u.send(pack_connect(78))
        eq(u.recv(1.0), None, "reply to a bare datagram from the balancer")
    with UdpTracker("127.0.0.1", ENV.shoal_d.port) as u:  # plain clients are served as before
        u.connect()
    counted(before + 2, "shoal_errors_total", protocol="udp", reason="proxy_protocol")


@test
def ipv6_inside_a_header_udp():
    h = random_hash(RNG)
    with UdpLb(UDP_LB, ("2001:db8::31", 6881), family=6) as a:
        a.announce(h, pid(31), 7031, left=10)
    with UdpLb(UDP_LB, ("2001:db8::32", 6881), family=6) as b:
        r = b.announce(h, pid(32), 7032, left=10)
    eq(r["peers"], [("2001:db8::31", 7031)], "IPv6 peers (18-byte records) over an IPv4 balancer")


@test
def rate_limit_keys_on_the_header_address():
    """With --rate-limit, two clients behind one balancer have a bucket each: one flooding
    through the balancer does not cost the other its answers (the limit keys on the address
    inside the header, not the balancer's)."""
    def argv(port):
        return [ENV.shoal, "--udp", "127.0.0.1:%d" % port, "--http", "127.0.0.1:%d" % port,
                "--workers", "2",
                "--admin", "127.0.0.1:0", "--proxy-protocol", "%s/32" % UDP_LB,
                "--rate-limit", "1", "--rate-limit-burst", "10"]
    d = Daemon("shoal-rl", argv)
    d.start()
    try:
        with UdpLb(UDP_LB, ("127.0.0.41", 6881)) as a:
            a.addr = ("127.0.0.1", d.port)
            for i in range(100):  # 10x the burst at once, each connect sent once
                a.send(pack_connect(1000 + i))
            got = 0
            while got < 100 and a.recv(0.5) is not None:
                got += 1
        check(1 <= got <= 15, "flooding client behind the balancer got %d of 100 answers "
              "(burst 10)" % got)
        with UdpLb(UDP_LB, ("127.0.0.42", 6881)) as b:
            b.addr = ("127.0.0.1", d.port)
            # Each sent once: keyed on the balancer, its bucket (empty after the flood, 1 token
            # a second) would answer at most one of them.
            for i in range(5):
                tid = 2000 + i
                eq(len(b.request(pack_connect(tid), tid, tries=1)), 16,
                   "connect %d of the other client behind the balancer" % i)
    finally:
        d.stop()


@test
def bad_option_stops_the_start():
    r = subprocess.run([ENV.shoal, "--proxy-protocol", "10.0.0.1/8", "--udp", "off", "--http",
                        "127.0.0.1:%d" % free_port()], capture_output=True, text=True, timeout=30)
    eq(r.returncode, 2, "exit code of a bad --proxy-protocol")
    check("--proxy-protocol" in r.stderr, "reason names the option: %r" % r.stderr[-300:])


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", required=True, help="path to the shoal binary")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.shoal], redis=False)
    if rc is not None:
        return rc
    if not shutil.which("haproxy"):
        print("SKIP: haproxy is not installed (apt-get install haproxy)")
        return 77
    ENV = Env(os.path.abspath(args.shoal))
    t_start = time.monotonic()
    try:
        ENV.start()
    except Exception as e:
        print("could not start: %s" % e)
        if ENV.shoal_d:
            print(ENV.shoal_d.stderr_text()[-3000:])
        ENV.stop_all()
        return 1

    def logs():
        d = ENV.shoal_d
        return clusterlib.stderr_tail("shoal", d.proc and d.proc.pid, d.stderr_text(), 30) + \
            "\n---- haproxy ----\n" + ENV.haproxy_text()

    return clusterlib.run_steps(TESTS, args.k, logs, ENV.stop_all, t_start)


if __name__ == "__main__":
    sys.exit(main())
