#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""integration.standalone: the real `shoal` binary on free loopback ports, driven over UDP (BEP 15)
and HTTP (BEP 3/23/7/48), every reply checked byte for byte where the wire format is fixed.

Several shoal processes run side by side, each with the flags one group of tests needs:
  main    2 workers, --http-max-request 1024, secret A, IPv4 (+ IPv6 if ::1 exists)
  twin    secret A too, --peer-timeout 2, --http-idle-timeout 1 (expiry, idle close, shared ids)
  proxy   secret B, --trust-proxy 127.0.0.0/8
  small   --max-peers 3
  limits  1 worker (so the connection cap is exact), --http-max-conns 4, --max-torrents 2
  mapped  secret A, listening on ::ffff:127.0.0.1 only (IPv4 clients on a dual-stack socket;
          started only where IPv6 exists)
and, started by their own tests: term (exact counters in the "served" line after SIGTERM),
envcfg/envflag (SHOAL_* environment), nofile (RLIMIT_NOFILE 48, accept() failing with EMFILE).
Each test uses its own random info-hashes, so tests do not see each other's swarms.

Invariant: every process is started on ports found free just before, polled until it answers
(never a sleep), and stopped by its PID in teardown whatever happened; every wait is a deadline.
A failing test prints its traceback and the stderr of the processes it used.

    /usr/bin/python3 tests/integration/test_standalone.py --shoal build/cmd/shoal [-k NAME]
"""

import argparse
import os
import random
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from trackerclient import (Skip, check, eq, poll, ACT_ANNOUNCE, ACT_CONNECT, ACT_ERROR, ACT_SCRAPE,  # noqa: E402
                           EV_COMPLETED, EV_STARTED, EV_STOPPED, PROTOCOL_ID, Daemon, HttpConn,
                           UdpTracker, announce_target, bencode, get_request, have_ipv6_loopback,
                           http_get, pack_announce, pack_connect, pack_scrape, parse_peers,
                           random_hash, scrape_target)

INTERVAL = 60
SECRET_A = "5e" * 32
SECRET_B = "a7" * 32
MAX_REQUEST = 1024
LOCAL4 = "127.0.0.1"
LOCAL6 = "::1"
RNG = random.Random(int.from_bytes(os.urandom(8), "big"))
HEAD_200 = ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            "Connection: %s\r\n\r\n")


def h():
    return random_hash(RNG)


def pid(n):
    """A 20-byte peer id that says which test peer it is."""
    return ("-SH0001-%012d" % n).encode()


# ---- the processes ---------------------------------------------------------------------------


class Env:
    def __init__(self, shoal):
        self.shoal = shoal
        self.v6 = have_ipv6_loopback()
        self.daemons = {}

    def argv(self, extra):
        def fn(port):
            udp = "%s:%d" % (LOCAL4, port)
            http = udp
            if self.v6:
                udp += ",[%s]:%d" % (LOCAL6, port)
                http += ",[%s]:%d" % (LOCAL6, port)
            return [self.shoal, "--udp", udp, "--http", http, "--interval", str(INTERVAL),
                    "--log-level", "debug"] + extra
        return fn

    def add(self, name, extra):
        d = Daemon(name, self.argv(extra), ipv6=self.v6)
        self.daemons[name] = d
        d.start()
        return d

    def start_all(self):
        self.add("main", ["--workers", "2", "--peer-timeout", "300", "--secret", SECRET_A,
                          "--http-max-request", str(MAX_REQUEST), "--connid-grace", "180"])
        self.add("twin", ["--workers", "2", "--peer-timeout", "2", "--http-idle-timeout", "1",
                          "--secret", SECRET_A])
        self.add("proxy", ["--workers", "2", "--trust-proxy", "127.0.0.0/8", "--secret",
                           SECRET_B])
        self.add("small", ["--workers", "2", "--max-peers", "3"])
        self.add("limits", ["--workers", "1", "--http-max-conns", "4", "--max-torrents", "2"])
        if self.v6:
            mapped = Daemon("mapped", lambda port: [
                self.shoal, "--udp", "[::ffff:127.0.0.1]:%d" % port, "--http",
                "[::ffff:127.0.0.1]:%d" % port, "--workers", "2", "--secret", SECRET_A])
            self.daemons["mapped"] = mapped
            mapped.start()

    def stop_all(self):
        for d in self.daemons.values():
            d.stop()


ENV = None
USED = set()  # daemons the running test used: their stderr is shown if it fails
RAN = set()  # tests that ran, passed or not


def srv(name):
    USED.add(name)
    return ENV.daemons[name]


def udp(name, family=4):
    d = srv(name)
    return UdpTracker(LOCAL4 if family == 4 else LOCAL6, d.port, family)


def http(name, family=4, timeout=3.0):
    d = srv(name)
    return HttpConn(LOCAL4 if family == 4 else LOCAL6, d.port, timeout)


def need_v6():
    if not ENV.v6:
        raise Skip("no IPv6 loopback (::1) on this machine")


TESTS, test = clusterlib.step_list()


# ---- UDP (BEP 15) ----------------------------------------------------------------------------


@test
def udp_connect_reply_layout():
    with udp("main") as u:
        tid = 0xDEADBEEF
        _, reply = u.connect_raw(tid)
        eq(len(reply), 16, "connect reply length")
        action, rtid, cid = struct.unpack(">IIQ", reply)
        eq(action, ACT_CONNECT, "action")
        eq(rtid, tid, "transaction id echoed")
        check(cid != 0 and cid != PROTOCOL_ID, "connection id looks unissued: %#x" % cid)
        # Bytes after the 16 are ignored, as the codec promises.
        u.send(pack_connect(7) + b"extra")
        r2 = u.request(pack_connect(8) + b"\0" * 4, 8)
        eq(struct.unpack(">II", r2[:8]), (ACT_CONNECT, 8), "connect with trailing bytes")
        # The id works for an announce.
        a = u.announce(h(), pid(1), 6881, conn_id=cid, left=10, event=EV_STARTED)
        eq(a["leechers"], 1, "announce with the issued id")


@test
def udp_announce_fresh_swarm():
    with udp("main") as u:
        ih = h()
        tid, reply = u.announce_raw(ih, pid(1), 6881, left=1000, event=EV_STARTED)
        eq(len(reply), 20, "reply length with no other peer")
        action, rtid, interval, leechers, seeders = struct.unpack(">IIIII", reply)
        eq((action, rtid), (ACT_ANNOUNCE, tid), "action, transaction id")
        check(INTERVAL * 0.95 <= interval <= INTERVAL * 1.05,
              "interval %d not within 5 %% of %d" % (interval, INTERVAL))
        eq((leechers, seeders), (1, 0), "leechers, seeders")
        # Many replies: all intervals inside the jitter band.
        ivs = [u.announce(ih, pid(1), 6881, left=1000)["interval"] for _ in range(20)]
        check(all(INTERVAL * 0.95 <= i <= INTERVAL * 1.05 for i in ivs), "intervals %r" % ivs)
        # A seeder joins: counts follow, its peer record is 6 bytes, 127.0.0.1 and its port.
        a = u.announce(ih, pid(2), 6882, left=0, event=EV_STARTED)
        eq((a["leechers"], a["seeders"]), (1, 1), "counts after a seeder joined")
        eq(len(a["raw"]), 26, "reply with one peer")
        eq(a["raw"][20:], socket.inet_aton(LOCAL4) + struct.pack(">H", 6881), "peer bytes")


@test
def udp_second_peer_sees_first_never_itself():
    with udp("main") as u:
        ih = h()
        a = u.announce(ih, pid(1), 7001, left=5, event=EV_STARTED)
        eq(a["peers"], [], "first peer's list")
        b = u.announce(ih, pid(2), 7002, left=5, event=EV_STARTED)
        eq(b["peers"], [(LOCAL4, 7001)], "second peer's list")
        eq((b["leechers"], b["seeders"]), (2, 0), "counts")
        a2 = u.announce(ih, pid(1), 7001, left=5)
        eq(a2["peers"], [(LOCAL4, 7002)], "first peer again: the other one only")
        for _ in range(10):
            r = u.announce(ih, pid(3), 7003, left=5)
            check((LOCAL4, 7003) not in r["peers"], "peer handed itself: %r" % r["peers"])
            eq(sorted(r["peers"]), [(LOCAL4, 7001), (LOCAL4, 7002)], "third peer's list")


@test
def udp_seeder_gets_only_leechers():
    with udp("main") as u:
        ih = h()
        for port in (7101, 7102):
            u.announce(ih, pid(port), port, left=0, event=EV_STARTED)
        for port in (7201, 7202, 7203):
            u.announce(ih, pid(port), port, left=9, event=EV_STARTED)
        for _ in range(5):
            s = u.announce(ih, pid(7101), 7101, left=0)
            eq((s["seeders"], s["leechers"]), (2, 3), "counts")
            eq(sorted(s["peers"]), [(LOCAL4, p) for p in (7201, 7202, 7203)],
               "a seeder's peers (leechers only)")
        le = u.announce(ih, pid(7201), 7201, left=9)
        eq(sorted(le["peers"]), [(LOCAL4, p) for p in (7101, 7102, 7202, 7203)],
           "a leecher's peers (seeders and leechers, not itself)")


@test
def udp_stopped_removes_peer():
    with udp("main") as u:
        ih = h()
        u.announce(ih, pid(1), 7301, left=3, event=EV_STARTED)
        u.announce(ih, pid(2), 7302, left=0, event=EV_STARTED)
        eq(u.scrape([ih]), [(1, 0, 1)], "scrape before stop")
        s = u.announce(ih, pid(1), 7301, left=3, event=EV_STOPPED)
        eq((s["leechers"], s["seeders"]), (0, 1), "counts in the stopped reply")
        eq(s["peers"], [], "a stopped peer gets no peers")
        eq(u.scrape([ih]), [(1, 0, 0)], "scrape after the leecher stopped")
        r = u.announce(ih, pid(3), 7303, left=3, event=EV_STARTED)
        eq(r["peers"], [(LOCAL4, 7302)], "the stopped peer is no longer handed out")
        u.announce(ih, pid(2), 7302, left=0, event=EV_STOPPED)
        eq(u.scrape([ih]), [(0, 0, 1)], "scrape after the seeder stopped")


@test
def udp_completed_counted_once_per_peer():
    with udp("main") as u:
        ih = h()
        u.announce(ih, pid(1), 7401, left=50, event=EV_STARTED)
        u.announce(ih, pid(2), 7402, left=50, event=EV_STARTED)
        eq(u.scrape([ih]), [(0, 0, 2)], "before completion")
        c = u.announce(ih, pid(1), 7401, left=0, event=EV_COMPLETED)
        eq((c["seeders"], c["leechers"]), (1, 1), "counts in the completed reply")
        eq(u.scrape([ih]), [(1, 1, 1)], "after one completed")
        u.announce(ih, pid(1), 7401, left=0, event=EV_COMPLETED)
        u.announce(ih, pid(1), 7401, left=0, event=EV_COMPLETED)
        eq(u.scrape([ih]), [(1, 1, 1)], "the same peer completing again counts once")
        u.announce(ih, pid(2), 7402, left=0, event=EV_COMPLETED)
        eq(u.scrape([ih]), [(2, 2, 0)], "a second peer completing")


@test
def udp_scrape_many_in_request_order():
    with udp("main") as u:
        hashes = [h() for _ in range(5)]
        # hashes[i] gets i leechers and (i % 2) seeders; hashes[2] stays unknown.
        want = []
        for i, ih in enumerate(hashes):
            if i == 2:
                want.append((0, 0, 0))
                continue
            for k in range(i):
                u.announce(ih, pid(k), 7500 + k, left=1, event=EV_STARTED)
            if i % 2:
                u.announce(ih, pid(99), 7599, left=0, event=EV_STARTED)
            want.append((i % 2, 0, i))
        unknown = h()
        order = [hashes[4], unknown, hashes[0], hashes[3], hashes[1], hashes[2], hashes[4]]
        tid, reply = u.scrape_raw(order)
        eq(len(reply), 8 + 12 * len(order), "scrape reply length")
        eq(struct.unpack(">II", reply[:8]), (ACT_SCRAPE, tid), "scrape head")
        expect = b"".join(struct.pack(">III", *s) for s in
                          [want[4], (0, 0, 0), want[0], want[3], want[1], want[2], want[4]])
        eq(reply[8:], expect, "scrape entries (seeders, completed, leechers) in request order")
        # The BEP 15 maximum of 74 hashes in one request is served.
        many = [h() for _ in range(73)] + [hashes[3]]
        res = u.scrape(many)
        eq(res[-1], want[3], "74th entry")
        eq(res[:-1], [(0, 0, 0)] * 73, "unknown hashes are zeros")


def udp_expect_error(u, pkt, tid, message, what):
    """An error reply with message, cut to the request's length if longer (a request that did
    not prove its source address gets no more bytes back than it sent: no amplification)."""
    reply = u.request(pkt, tid)
    eq(reply, (struct.pack(">II", ACT_ERROR, tid) + message.encode())[:max(len(pkt), 16)], what)


@test
def udp_invalid_connection_id():
    with udp("main") as u:
        u.connect()
        bad = u.conn_id ^ 0x1
        tid = 0x01020304
        pkt = pack_announce(bad, tid, h(), pid(1), 6881, left=1)
        udp_expect_error(u, pkt, tid, "invalid connection id", "announce with a wrong id")
        tid = 0x05060708
        udp_expect_error(u, pack_scrape(bad, tid, [h()]), tid, "invalid connection id",
                         "scrape with a wrong id")
        tid = 9
        udp_expect_error(u, pack_scrape(PROTOCOL_ID, tid, [h()]), tid, "invalid connection id",
                         "scrape with the protocol id as connection id")


@test
def udp_connect_bad_magic():
    with udp("main") as u:
        tid = 0x11223344
        udp_expect_error(u, pack_connect(tid, magic=0x41727101981), tid, "invalid protocol id",
                         "connect with a wrong protocol id")


@test
def udp_unknown_action():
    with udp("main") as u:
        u.connect()
        for action in (3, 4, 7, 0xFFFFFFFF):
            tid = 0x100 + (action & 0xFF)
            pkt = struct.pack(">QII", u.conn_id, action, tid) + b"\0" * 84
            udp_expect_error(u, pkt, tid, "unknown action", "action %d" % action)


@test
def udp_short_packet_dropped():
    with udp("main") as u:
        for n in (0, 1, 8, 15):
            u.send(pack_connect(0x77)[:n])
        eq(u.recv(0.4), None, "reply to a datagram shorter than 16 bytes")
        u.connect()  # still serving


@test
def udp_announce_97_bytes():
    with udp("main") as u:
        u.connect()
        tid = 0xA97
        pkt = pack_announce(u.conn_id, tid, h(), pid(1), 6881, left=1)[:97]
        udp_expect_error(u, pkt, tid, "invalid packet length", "97-byte announce")
        # Header-only announce too.
        tid = 0xA16
        udp_expect_error(u, pkt[:12] + struct.pack(">I", tid), tid, "invalid packet length",
                         "16-byte announce")


@test
def udp_announce_bep41_options_tolerated():
    with udp("main") as u:
        ih = h()
        # BEP 41: URLData option (2) with "/ann", then NOP (1) and EndOfOptions (0).
        opts = b"\x02\x04/ann\x01\x00"
        a = u.announce(ih, pid(1), 7601, left=1, event=EV_STARTED, extra=opts)
        eq((a["leechers"], a["seeders"]), (1, 0), "counts")
        b = u.announce(ih, pid(2), 7602, left=1, event=EV_STARTED, extra=b"\x02\xff" + b"x" * 255)
        eq(b["peers"], [(LOCAL4, 7601)], "peers after announces with options")


@test
def udp_event_out_of_range():
    with udp("main") as u:
        u.connect()
        for ev in (4, 7, 0xFFFFFFFF):
            tid = 0xE00 + (ev & 0xFF)
            pkt = pack_announce(u.conn_id, tid, h(), pid(1), 6881, left=1, event=ev)
            udp_expect_error(u, pkt, tid, "invalid event", "event %d" % ev)


@test
def udp_port_zero():
    with udp("main") as u:
        u.connect()
        ih = h()
        tid = 0x9090
        udp_expect_error(u, pack_announce(u.conn_id, tid, ih, pid(1), 0, left=1), tid,
                         "invalid port", "announce with port 0")
        eq(u.scrape([ih]), [(0, 0, 0)], "the refused announce stored nothing")


@test
def udp_scrape_limits():
    with udp("main") as u:
        u.connect()
        tid = 0x75
        udp_expect_error(u, pack_scrape(u.conn_id, tid, [h() for _ in range(75)]), tid,
                         "too many info_hashes in scrape (max 74)", "scrape of 75 hashes")
        tid = 0x00
        udp_expect_error(u, pack_scrape(u.conn_id, tid, []), tid, "no info_hash in scrape",
                         "scrape of no hash")
        tid = 0x19
        udp_expect_error(u, pack_scrape(u.conn_id, tid, [h()])[:-1], tid,
                         "invalid packet length", "scrape with a 19-byte hash")


@test
def udp_numwant_default_and_cap():
    with udp("main") as u:
        ih = h()
        for k in range(205):
            u.announce(ih, pid(k), 10000 + k, left=1, event=EV_STARTED)
        me = (LOCAL4, 20000)

        def ask(numwant):
            r = u.announce(ih, pid(9999), 20000, left=1, numwant=numwant)
            check(me not in r["peers"], "peer handed itself")
            eq(len(set(r["peers"])), len(r["peers"]), "peers are distinct")
            check(all(ip == LOCAL4 and 10000 <= p < 10205 for ip, p in r["peers"]),
                  "unknown peers in %r" % r["peers"][:5])
            return r

        r = ask(-1)
        eq(len(r["peers"]), 50, "numwant -1: the default")
        eq(len(r["raw"]), 20 + 50 * 6, "reply length")
        eq(len(ask(-7)["peers"]), 50, "other negative numwant: the default")
        eq(len(ask(7)["peers"]), 7, "numwant 7")
        eq(len(ask(0)["peers"]), 0, "numwant 0")
        r = ask(1000)
        eq(len(r["peers"]), 200, "numwant 1000 capped at 200")
        eq(len(r["raw"]), 20 + 200 * 6, "reply length at the cap")
        eq(r["leechers"], 206, "counts")
        # HTTP: the same default and the same cap of 200.
        port = srv("main").port
        for numwant, want in ((None, 50), (1000, 200), (3, 3), (-1, 50)):
            d = announce_ok(http_get(LOCAL4, port, announce_target(ih, pid(9998), 20001, left=1,
                                                                  numwant=numwant)),
                            "HTTP numwant=%s" % numwant)
            peers = parse_peers(d[b"peers"], 4)
            eq(len(peers), want, "HTTP peers for numwant=%s" % numwant)
            check((LOCAL4, 20001) not in peers, "HTTP peer handed itself")


@test
def udp_ipv6_peers_and_families_apart():
    need_v6()
    with udp("main", 4) as u4, udp("main", 6) as u6:
        ih = h()
        u4.announce(ih, pid(1), 7701, left=1, event=EV_STARTED)
        u4.announce(ih, pid(2), 7702, left=0, event=EV_STARTED)
        c = u6.announce(ih, pid(3), 7703, left=1, event=EV_STARTED)
        eq(c["peers"], [], "v6 client gets no v4 peers")
        eq(len(c["raw"]), 20, "v6 reply length with no v6 peer")
        eq((c["leechers"], c["seeders"]), (2, 1), "counts over both families")
        d = u6.announce(ih, pid(4), 7704, left=1, event=EV_STARTED)
        eq(len(d["raw"]), 20 + 18, "v6 reply with one 18-byte peer")
        eq(d["raw"][20:], socket.inet_pton(socket.AF_INET6, LOCAL6) + struct.pack(">H", 7703),
           "v6 peer bytes")
        a = u4.announce(ih, pid(1), 7701, left=1)
        eq(a["peers"], [(LOCAL4, 7702)], "v4 client gets v4 peers only")
        eq(len(a["raw"]), 26, "v4 reply length")
        eq((a["leechers"], a["seeders"]), (3, 1), "counts seen by v4")
        # A v6 seeder gets v6 leechers only.
        s = u6.announce(ih, pid(5), 7705, left=0, event=EV_STARTED)
        eq(sorted(s["peers"]), [(LOCAL6, 7703), (LOCAL6, 7704)], "v6 seeder's peers")
        eq(u6.scrape([ih]), [(2, 0, 3)], "scrape over v6 counts both families")
        # The connection id is bound to the address: a v4 id is refused from ::1.
        tid = 0x6
        udp_expect_error(u6, pack_announce(u4.conn_id, tid, ih, pid(6), 7706, left=1), tid,
                         "invalid connection id", "v4 client's id used from ::1")


@test
def udp_connid_shared_across_same_secret():
    with udp("main") as ua, udp("twin") as ut, udp("proxy") as up:
        cid = ua.connect()
        ih = h()
        r = ut.announce(ih, pid(1), 7801, conn_id=cid, left=1, event=EV_STARTED)
        eq(r["leechers"], 1, "id from main accepted by twin (same secret)")
        eq(ut.scrape([ih], conn_id=cid), [(0, 0, 1)], "scrape on twin with main's id")
        cid2 = ut.connect()
        eq(ua.scrape([ih], conn_id=cid2), [(0, 0, 0)], "twin's id accepted by main")
        tid = 0x5EC
        udp_expect_error(up, pack_announce(cid, tid, ih, pid(1), 7801, left=1), tid,
                         "invalid connection id", "id from main at proxy (other secret)")


@test
def udp_connid_reused_across_source_ports():
    with udp("main") as a, udp("main") as b:
        cid = a.connect()
        ih = h()
        r = b.announce(ih, pid(1), 7851, conn_id=cid, left=1, event=EV_STARTED)
        eq(r["leechers"], 1, "id from another source port of the same address")
        eq(b.scrape([ih], conn_id=cid), [(0, 0, 1)], "scrape with it")


@test
def udp_peer_identity_is_address_and_port():
    with udp("main") as u:
        ih = h()
        # The ip field (offset 84) is ignored: the datagram's source address is stored.
        u.announce(ih, pid(1), 7861, left=4, event=EV_STARTED,
                   ip=struct.unpack(">I", socket.inet_aton("192.0.2.33"))[0])
        r = u.announce(ih, pid(2), 7862, left=4, event=EV_STARTED)
        eq(r["peers"], [(LOCAL4, 7861)], "the ip field is not used")
        # Same address and port with another peer id and key: the same peer, refreshed.
        r = u.announce(ih, pid(3), 7861, left=4, key=12345)
        eq((r["leechers"], r["seeders"]), (2, 0), "re-announce with a new peer id")
        # Reaching left=0 without a completed event: a seeder, but no download counted.
        r = u.announce(ih, pid(3), 7861, left=0)
        eq((r["leechers"], r["seeders"]), (1, 1), "leecher became a seeder")
        eq(u.scrape([ih]), [(1, 0, 1)], "no completed event, no download counted")
        r = u.announce(ih, pid(2), 7862, left=0)
        eq(r["peers"], [], "two seeders: a seeder gets no seeders")


@test
def udp_ipv6_numwant_cap_66():
    need_v6()
    with udp("main", 6) as u:
        ih = h()
        for k in range(70):
            u.announce(ih, pid(k), 11000 + k, left=1, event=EV_STARTED)
        r = u.announce(ih, pid(99), 12000, left=1, event=EV_STARTED, numwant=1000)
        eq(len(r["peers"]), 66, "v6 reply capped at 66 peers")
        eq(len(r["raw"]), 20 + 66 * 18, "v6 reply length (no fragmentation)")
        eq(len(set(r["peers"])), 66, "distinct")
        eq(len(u.announce(ih, pid(99), 12000, left=1)["peers"]), 50, "v6 default numwant")


@test
def udp_ipv4_mapped_dual_stack():
    # A v6 socket bound to ::ffff:127.0.0.1 sees IPv4 clients as mapped addresses: they must
    # still be IPv4 peers (6-byte records) with the same connection ids as on an IPv4 socket.
    need_v6()
    d = srv("mapped")
    with udp("main") as um, UdpTracker(LOCAL4, d.port) as u:
        cid = um.connect()
        ih = h()
        u.announce(ih, pid(1), 7871, conn_id=cid, left=1, event=EV_STARTED)
        r = u.announce(ih, pid(2), 7872, conn_id=cid, left=1, event=EV_STARTED)
        eq(r["raw"][20:], socket.inet_aton(LOCAL4) + struct.pack(">H", 7871),
           "6-byte IPv4 record from a dual-stack socket")
        eq(um.scrape([ih], conn_id=u.connect()), [(0, 0, 0)],
           "the dual-stack socket's id is accepted on an IPv4 socket (same secret)")
    r = http_get(LOCAL4, d.port, announce_target(ih, pid(3), 7873, left=1))
    d2 = announce_ok(r, "HTTP over the dual-stack socket")
    eq(sorted(parse_peers(d2[b"peers"], 4)), [(LOCAL4, 7871), (LOCAL4, 7872)], "HTTP peers")
    eq(d2[b"peers6"], b"", "no peers6")


# ---- HTTP ------------------------------------------------------------------------------------


def announce_ok(resp, what):
    eq(resp.status, 200, what + ": status")
    d = resp.bencoded()
    check(b"failure reason" not in d, "%s: failure %r" % (what, d.get(b"failure reason")))
    return d


def check_200_head(resp, keep_alive, what):
    eq(resp.head.decode("latin-1"),
       HEAD_200 % (len(resp.body), "keep-alive" if keep_alive else "close"), what + ": head")


@test
def http_announce_compact():
    ih = h()
    with http("main") as c:
        c.send(get_request(announce_target(ih, pid(1), 8001, left=10, event="started")))
        r = c.read_response()
        check_200_head(r, True, "first announce")
        d = r.bencoded()
        iv = d.get(b"interval", -1)
        check(INTERVAL * 0.95 <= iv <= INTERVAL * 1.05, "interval %r" % iv)
        eq(r.body, bencode({"complete": 0, "downloaded": 0, "incomplete": 1, "interval": iv,
                            "min interval": INTERVAL // 2, "peers": b"", "peers6": b""}),
           "first announce body")
        c.send(get_request(announce_target(ih, pid(2), 8002, left=0, event="started",
                                           compact=1)))
        r = c.read_response()
        d = announce_ok(r, "second announce")
        eq(r.body, bencode({"complete": 1, "downloaded": 0, "incomplete": 1,
                            "interval": d[b"interval"], "min interval": INTERVAL // 2,
                            "peers": socket.inet_aton(LOCAL4) + struct.pack(">H", 8001),
                            "peers6": b""}), "second announce body")


@test
def http_announce_dictionary_model():
    ih = h()
    with http("main") as c:
        c.send(get_request(announce_target(ih, pid(1), 8101, left=10, event="started")))
        announce_ok(c.read_response(), "first")
        c.send(get_request(announce_target(ih, pid(2), 8102, left=10, compact=0)))
        r = c.read_response()
        d = announce_ok(r, "compact=0")
        eq(d[b"peers"], [{b"ip": LOCAL4.encode(), b"port": 8101}], "peers as dictionaries")
        check(b"peers6" not in d, "no peers6 key in the dictionary model")
        eq(r.body, bencode({"complete": 0, "downloaded": 0, "incomplete": 2,
                            "interval": d[b"interval"], "min interval": INTERVAL // 2,
                            "peers": [{"ip": LOCAL4, "port": 8101}]}), "body")


@test
def http_announce_ipv6_peers6():
    need_v6()
    ih = h()
    with http("main", 4) as c4, http("main", 6) as c6:
        c4.send(get_request(announce_target(ih, pid(1), 8201, left=1, event="started")))
        announce_ok(c4.read_response(), "v4 announce")
        c6.send(get_request(announce_target(ih, pid(2), 8202, left=1, event="started")))
        d = announce_ok(c6.read_response(), "first v6 announce")
        eq((d[b"peers"], d[b"peers6"]), (b"", b""), "v6 client gets no v4 peer")
        eq(d[b"incomplete"], 2, "counts over both families")
        c6.send(get_request(announce_target(ih, pid(3), 8203, left=1, event="started")))
        d = announce_ok(c6.read_response(), "second v6 announce")
        eq(d[b"peers"], b"", "peers (v4) empty for a v6 client")
        eq(d[b"peers6"], socket.inet_pton(socket.AF_INET6, LOCAL6) + struct.pack(">H", 8202),
           "peers6")
        c6.send(get_request(announce_target(ih, pid(3), 8203, left=1, compact=0)))
        d = announce_ok(c6.read_response(), "v6 compact=0")
        eq(d[b"peers"], [{b"ip": b"::1", b"port": 8202}], "v6 dictionary model")
        c4.send(get_request(announce_target(ih, pid(1), 8201, left=1)))
        d = announce_ok(c4.read_response(), "v4 again")
        eq((d[b"peers"], d[b"peers6"]), (b"", b""), "v4 client gets no v6 peers")


FAILURES = [
    ("missing_info_hash", dict(info_hash=None), "missing info_hash"),
    ("info_hash_19_bytes", dict(info_hash=b"\x01" * 19), "invalid info_hash: must be 20 bytes"),
    ("info_hash_21_bytes", dict(info_hash=b"\x01" * 21), "invalid info_hash: must be 20 bytes"),
    ("bad_percent_escape", dict(extra=["ip=%zz"]), "invalid percent-encoding in query"),
    ("truncated_percent_escape", dict(extra=["x=%4"]), "invalid percent-encoding in query"),
    ("missing_peer_id", dict(peer_id=None), "missing peer_id"),
    ("missing_port", dict(port=None), "missing port"),
    ("port_zero", dict(port=0), "invalid port: must be 1-65535"),
    ("port_65536", dict(port=65536), "invalid port: must be 1-65535"),
    ("bad_event", dict(event="finished"),
     "invalid event: must be started, stopped, completed or empty"),
    ("compact_2", dict(compact=2), "invalid compact: must be 0 or 1"),
    ("missing_left", dict(left=None), "missing left"),
    ("negative_left", dict(left=-1), "invalid left: must be a non-negative integer"),
]


def make_failure_test(name, overrides, reason):
    def fn():
        args = dict(info_hash=h(), peer_id=pid(1), port=8301, left=5)
        args.update(overrides)
        with http("main") as c:
            c.send(get_request(announce_target(**args)))
            r = c.read_response()
            eq(r.status, 200, "status (BEP 3: failures are 200)")
            want = bencode({"failure reason": reason})
            eq(r.body, want, "body")
            check_200_head(r, True, "head")
            # The connection stays usable after a failure.
            c.send(get_request("/nope"))
            eq(c.read_response().status, 404, "next request on the same connection")
    fn.__name__ = "http_failure_" + name
    return fn


for _n, _o, _r in FAILURES:
    test(make_failure_test(_n, _o, _r))


NOT_FOUND = b"not found: this tracker serves /announce and /scrape"


@test
def http_other_path_404():
    with http("main") as c:
        for target in ("/", "/announce/x?info_hash=a", "/scrapes", "/favicon.ico"):
            c.send(get_request(target))
            r = c.read_response()
            eq(r.head, ("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %d\r\nConnection: keep-alive\r\n\r\n"
                        % len(NOT_FOUND)).encode(), "404 head for " + target)
            eq(r.body, NOT_FOUND, "404 body")


@test
def http_post_405():
    with http("main") as c:
        c.send(b"POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        r = c.read_response()
        body = b"only GET is served"
        eq(r.head, ("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Type: text/plain"
                    "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode(),
           "405 head")
        eq(r.body, body, "405 body")
        check(c.wait_eof(3), "connection not closed after 405")


@test
def http_keep_alive_many_requests():
    ih = h()
    with http("main") as c:
        for k in range(5):
            c.send(get_request(announce_target(ih, pid(k), 8400 + k, left=1, event="started")))
            r = c.read_response()
            d = announce_ok(r, "request %d" % k)
            eq(d[b"incomplete"], k + 1, "count after request %d" % k)
            eq(r.headers.get("connection"), "keep-alive", "Connection header")
        c.send(get_request(scrape_target([ih])))
        d = c.read_response().bencoded()
        eq(d[b"files"][ih][b"incomplete"], 5, "scrape on the same connection")


@test
def http_pipelining_in_order():
    ih = h()
    with http("main") as c:
        reqs = (get_request(announce_target(ih, pid(1), 8501, left=1, event="started")) +
                get_request(scrape_target([ih])) + get_request("/nope") +
                get_request(announce_target(ih, pid(2), 8502, left=0, event="started")))
        c.send(reqs)
        r1 = c.read_response()
        eq(announce_ok(r1, "first")[b"incomplete"], 1, "first is the announce")
        r2 = c.read_response()
        eq(r2.bencoded(), {b"files": {ih: {b"complete": 0, b"downloaded": 0,
                                           b"incomplete": 1}}}, "second is the scrape")
        r3 = c.read_response()
        eq(r3.status, 404, "third is the 404")
        r4 = c.read_response()
        d = announce_ok(r4, "fourth")
        eq(d[b"peers"], socket.inet_aton(LOCAL4) + struct.pack(">H", 8501), "fourth's peers")
        check(not c.wait_eof(0.3), "connection closed after pipelined requests")
        eq(c.buf, b"", "unexpected extra bytes")
    # Requests split at every byte boundary still parse (one byte per send).
    with http("main") as c:
        for byte in get_request(scrape_target([ih])):
            c.send(bytes([byte]))
        eq(c.read_response().status, 200, "request sent a byte at a time")


def deep_pipeline(ih, n, close_at, tag):
    """n pipelined requests on one swarm: announces (a new leecher each), a scrape every 4th,
    a 404 every 7th; request close_at carries Connection: close. Returns (bytes, checks), where
    checks[k](response) verifies the k-th answer."""
    reqs, checks, leechers = [], [], 0
    for k in range(n):
        headers = ["Connection: close"] if k == close_at else []
        last = k == close_at
        if k % 7 == 6:
            reqs.append(get_request("/nope%d" % k, headers=headers))
            checks.append(lambda r, k=k: eq(r.status, 404, "answer %d is the 404" % k))
        elif k % 4 == 3:
            reqs.append(get_request(scrape_target([ih]), headers=headers))
            checks.append(lambda r, k=k, want=leechers: eq(
                r.bencoded()[b"files"][ih][b"incomplete"], want, "answer %d is the scrape" % k))
        else:
            leechers += 1
            reqs.append(get_request(announce_target(ih, pid(tag + k), 9000 + k, left=1,
                                                    event="started"), headers=headers))
            checks.append(lambda r, k=k, want=leechers: eq(
                announce_ok(r, "answer %d" % k)[b"incomplete"], want, "answer %d's count" % k))
        checks[-1] = (lambda f, k=k, last=last: lambda r: (
            f(r), eq(r.headers.get("connection"), "close" if last else "keep-alive",
                     "Connection header of answer %d" % k)))(checks[-1])
    return b"".join(reqs), checks


@test
def http_deep_pipelining_in_order_until_close():
    # 20 requests in one write, over several reads (--http-max-request 1024): every answer in
    # order, the connection closed after the Connection: close one, the rest never answered.
    reqs, checks = deep_pipeline(h(), 20, 12, 100)
    with http("main") as c:
        c.pipelined_until_eof(reqs, checks, 13)


@test
def http_pipelined_then_half_close_all_answered():
    # A client that writes its requests and shuts its side still gets every answer, then EOF.
    reqs, checks = deep_pipeline(h(), 10, -1, 200)
    with http("main") as c:
        c.pipelined_until_eof(reqs, checks, 10, half_close=True)


@test
def http_connection_close_honoured():
    with http("main") as c:
        c.send(get_request(scrape_target([h()]), headers=["Connection: close"]))
        r = c.read_response()
        check_200_head(r, False, "response to Connection: close")
        check(c.wait_eof(3), "server kept the connection open")


@test
def http_10_closes_by_default():
    with http("main") as c:
        c.send(get_request(scrape_target([h()]), version="1.0"))
        r = c.read_response()
        check_200_head(r, False, "HTTP/1.0 response")
        check(c.wait_eof(3), "server kept an HTTP/1.0 connection open")
    with http("main") as c:
        c.send(get_request(scrape_target([h()]), version="1.0", headers=["Connection: keep-alive"]))
        check_200_head(c.read_response(), True, "HTTP/1.0 with keep-alive")
        c.send(get_request(scrape_target([h()]), version="1.0", headers=["Connection: keep-alive"]))
        eq(c.read_response().status, 200, "second HTTP/1.0 keep-alive request")


@test
def http_bad_requests_answered_and_closed():
    cases = [
        (b"GET /scrape HTTP/2.0\r\n\r\n", 505, b"only HTTP/1.0 and HTTP/1.1 are served"),
        (b"GET  /scrape HTTP/1.1\r\n\r\n", 400, b"malformed request"),
        (b"GET /scrape HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, b"malformed request"),
        (b"GET /scrape HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400,
         b"request bodies are not accepted"),
        (b"GET /scrape HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
         b"request bodies are not accepted"),
        (b"HEAD /announce HTTP/1.1\r\n\r\n", 405, b"only GET is served"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", 400, b"malformed request"),
    ]
    for raw, status, body in cases:
        with http("main") as c:
            c.send(raw)
            r = c.read_response()
            eq((r.status, r.body), (status, body), "answer to %r" % raw[:40])
            eq(r.headers.get("connection"), "close", "Connection header for %d" % status)
            check(c.wait_eof(3), "connection left open after %d" % status)


@test
def http_slow_reader_gets_every_pipelined_response():
    # Thousands of pipelined scrapes from a client that does not read at first: the server
    # must stop reading while its replies back up, then resume, and lose or reorder nothing.
    n = 3000
    hashes = [struct.pack(">I", k) + b"\x5a" * 16 for k in range(n)]
    reqs = b"".join(get_request(scrape_target([x])) for x in hashes)
    with http("main", timeout=20) as c:
        sender = threading.Thread(target=c.send, args=(reqs,), daemon=True)
        sender.start()
        sender.join(1.0)  # bounded: the replies pile up meanwhile
        for k in range(n):
            r = c.read_response(timeout=20)
            eq(list(r.bencoded()[b"files"].keys()), [hashes[k]], "response %d in order" % k)
        sender.join(10)
        check(not sender.is_alive(), "the requests were not all taken")
        served(c, "the connection still works")


@test
def http_scrape_max():
    # Default --scrape-max 128 (twin). Letter-only hashes need no escapes, so 129 fit 8 KiB.
    port = srv("twin").port
    hashes = [("%020d" % k).encode().translate(bytes.maketrans(b"0123456789", b"ABCDEFGHIJ"))
              for k in range(129)]
    r = http_get(LOCAL4, port, scrape_target(hashes[:128]))
    files = r.bencoded()[b"files"]
    eq(sorted(files), sorted(hashes[:128]), "128 hashes answered")
    r = http_get(LOCAL4, port, scrape_target(hashes))
    eq(r.body, bencode({"failure reason": "too many info_hash values in one scrape"}),
       "129 hashes")


def oversize_head(total):
    """A well-formed GET head of exactly total bytes (a padding header fills it)."""
    base = get_request(scrape_target([b"\x02" * 20]), headers=["X-Pad: "])
    pad = total - len(base)
    assert pad >= 0
    return base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * pad)


@test
def http_oversized_head_431():
    body = b"request head too large"
    want = ("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode() + body
    # A head of exactly the limit is served.
    with http("main") as c:
        c.send(oversize_head(MAX_REQUEST))
        eq(c.read_response().status, 200, "head of exactly --http-max-request bytes")
    # No end of head within the limit: 431, then close. Exactly MAX_REQUEST bytes are sent, so
    # the server has read everything and closes cleanly (no reset racing the answer).
    with http("main") as c:
        c.send(oversize_head(MAX_REQUEST + 200)[:MAX_REQUEST])
        r = c.read_response()
        eq(r.head + r.body, want, "431 response")
        check(c.wait_eof(3), "connection left open after 431")
    # Much more than the limit in one send: still a 431 (Linux delivers it before the reset
    # that closing with unread bytes causes).
    with http("main") as c:
        c.send(oversize_head(4 * MAX_REQUEST))
        r = c.read_response()
        eq(r.head + r.body, want, "431 response to a 4 KiB head")
    with http("main") as c:
        c.send(get_request("/nope"))
        eq(c.read_response().status, 404, "still serving after oversized heads")


@test
def http_scrape_several():
    a, b, unknown = h(), h(), h()
    with udp("main") as u:
        u.announce(a, pid(1), 8601, left=0, event=EV_STARTED)
        u.announce(a, pid(2), 8602, left=7, event=EV_STARTED)
        u.announce(a, pid(3), 8603, left=7, event=EV_STARTED)
        u.announce(a, pid(2), 8602, left=0, event=EV_COMPLETED)
        u.announce(b, pid(4), 8604, left=7, event=EV_STARTED)
    r = http_get(LOCAL4, srv("main").port, scrape_target([b, unknown, a, b]))
    eq(r.status, 200, "status")
    files = {a: {"complete": 2, "downloaded": 1, "incomplete": 1},
             b: {"complete": 0, "downloaded": 0, "incomplete": 1},
             unknown: {"complete": 0, "downloaded": 0, "incomplete": 0}}
    eq(r.body, bencode({"files": files}), "scrape body (sorted keys, duplicate once)")
    check_200_head(r, True, "scrape head")


@test
def http_scrape_without_info_hash():
    for target in ("/scrape", "/scrape?", "/scrape?foo=bar"):
        r = http_get(LOCAL4, srv("main").port, target)
        eq(r.body, bencode({"failure reason":
                            "full scrape is not supported: give one or more info_hash"}),
           "body for " + target)
    r = http_get(LOCAL4, srv("main").port, "/scrape?info_hash=" + "%01" * 19)
    eq(r.body, bencode({"failure reason": "invalid info_hash: must be 20 bytes"}),
       "19-byte hash in a scrape")


def xff_announce(name, ih, port, header):
    r = http_get(LOCAL4, srv(name).port, announce_target(ih, pid(port), port, left=1,
                                                         event="started"), headers=[header])
    return announce_ok(r, "announce with " + header)


@test
def http_xff_ignored_from_untrusted():
    ih = h()
    xff_announce("main", ih, 8701, "X-Forwarded-For: 203.0.113.9")
    xff_announce("main", ih, 8702, "X-Real-IP: 198.51.100.4")
    d = xff_announce("main", ih, 8703, "X-Forwarded-For: garbage")
    got = sorted(parse_peers(d[b"peers"], 4))
    eq(got, [(LOCAL4, 8701), (LOCAL4, 8702)], "peers stored with the socket's address")


@test
def http_xff_honoured_from_trusted_proxy():
    ih = h()
    xff_announce("proxy", ih, 8801, "X-Forwarded-For: 203.0.113.9")
    xff_announce("proxy", ih, 8802, "X-Real-IP: 198.51.100.4")
    # Walking from the right, the first address outside the trusted 127.0.0.0/8.
    xff_announce("proxy", ih, 8803, "X-Forwarded-For: 192.0.2.1, 192.0.2.77, 127.0.0.9")
    r = http_get(LOCAL4, srv("proxy").port, announce_target(ih, pid(8804), 8804, left=1))
    d = announce_ok(r, "plain announce")
    got = sorted(parse_peers(d[b"peers"], 4))
    eq(got, sorted([("203.0.113.9", 8801), ("198.51.100.4", 8802), ("192.0.2.77", 8803)]),
       "peers at their forwarded addresses")
    # A forwarded IPv6 address makes an IPv6 peer: not handed to IPv4 clients; a forwarded
    # IPv4-mapped address is an IPv4 peer.
    xff_announce("proxy", ih, 8806, "X-Forwarded-For: 2001:db8::6")
    xff_announce("proxy", ih, 8807, "X-Forwarded-For: ::ffff:192.0.2.7")
    d = announce_ok(http_get(LOCAL4, srv("proxy").port, announce_target(ih, pid(8804), 8804,
                                                                      left=1)), "v4 again")
    eq(sorted(parse_peers(d[b"peers"], 4)),
       sorted([("203.0.113.9", 8801), ("198.51.100.4", 8802), ("192.0.2.77", 8803),
               ("192.0.2.7", 8807)]), "v4 peers")
    eq(d[b"peers6"], b"", "no v6 peers for a v4 client")
    if ENV.v6:
        with http("proxy", 6) as c6:
            c6.send(get_request(announce_target(ih, pid(8808), 8808, left=1)))
            d = announce_ok(c6.read_response(), "v6 client")
            eq(parse_peers(d[b"peers6"], 6), [("2001:db8::6", 8806)], "the forwarded v6 peer")
    r = http_get(LOCAL4, srv("proxy").port, announce_target(h(), pid(1), 8805, left=1),
                 headers=["X-Forwarded-For: not-an-ip"])
    eq(r.body, bencode({"failure reason": "invalid X-Forwarded-For or X-Real-IP from proxy"}),
       "unparsable forwarded address from a trusted proxy")


def served(c, what):
    c.send(get_request("/nope"))
    eq(c.read_response(timeout=3).status, 404, what)


def refused(c):
    """True if the server closes this connection without answering a request."""
    try:
        c.send(get_request("/nope"))
    except (BrokenPipeError, ConnectionResetError):
        return True
    got = c.wait_eof(3)
    return got and c.buf == b""


@test
def http_max_conns_honoured():
    port = srv("limits").port
    conns = []
    try:
        for k in range(4):
            c = HttpConn(LOCAL4, port)
            conns.append(c)
            served(c, "connection %d of 4" % (k + 1))
        for k in range(2):
            extra = HttpConn(LOCAL4, port)
            conns.append(extra)
            check(refused(extra), "connection %d beyond --http-max-conns 4 was served" % (5 + k))
        for c in conns[:4]:
            served(c, "an admitted connection after the refusals")
        conns[0].close()
        poll(lambda: fresh_served(port), 5, what="a new connection to be served after one closed")
    finally:
        for c in conns:
            c.close()
    # Later tests use this instance: wait until its slots are free again.
    poll(lambda: fresh_served(port), 5, what="a connection to be served after all closed")


@test
def http_idle_connection_closed():
    with http("twin") as c:
        served(c, "first request")
        t0 = time.monotonic()
        check(c.wait_eof(6), "idle connection not closed within 6 s (--http-idle-timeout 1)")
        check(time.monotonic() - t0 < 6, "too slow")
    # A connection that never sends anything is closed too.
    with http("twin") as c:
        check(c.wait_eof(6), "silent connection not closed within 6 s")


# ---- limits ----------------------------------------------------------------------------------


FULL = "tracker is full: no new torrents accepted now"


@test
def limits_max_torrents():
    with udp("limits") as u:
        h1, h2, h3 = h(), h(), h()
        u.announce(h1, pid(1), 9001, left=1, event=EV_STARTED)
        u.announce(h2, pid(2), 9002, left=1, event=EV_STARTED)
        u.connect()
        tid = 0xF011
        udp_expect_error(u, pack_announce(u.conn_id, tid, h3, pid(3), 9003, left=1), tid, FULL,
                         "third torrent with --max-torrents 2 (UDP)")
        r = http_get(LOCAL4, srv("limits").port, announce_target(h3, pid(3), 9003, left=1))
        eq(r.body, bencode({"failure reason": FULL, "retry in": 10}), "HTTP refusal")
        a = u.announce(h1, pid(4), 9004, left=1, event=EV_STARTED)
        eq(a["peers"], [(LOCAL4, 9001)], "existing torrents keep working")
        s = u.announce(h3, pid(3), 9003, left=1, event=EV_STOPPED)
        eq((s["leechers"], s["seeders"]), (0, 0), "stopped for a new torrent is not refused")
        eq(u.scrape([h1, h2, h3]), [(0, 0, 2), (0, 0, 1), (0, 0, 0)], "scrape")


@test
def limits_max_peers_per_family():
    with udp("small") as u:
        ih = h()
        for k in range(3):
            u.announce(ih, pid(k), 9100 + k, left=1, event=EV_STARTED)
        r = u.announce(ih, pid(3), 9103, left=1, event=EV_STARTED)
        eq(sorted(r["peers"]), [(LOCAL4, 9100 + k) for k in range(3)],
           "the fourth peer is served")
        eq(r["leechers"], 3, "but not stored (--max-peers 3)")
        eq(u.scrape([ih]), [(0, 0, 3)], "scrape")
        if ENV.v6:
            with udp("small", 6) as u6:
                u6.announce(ih, pid(4), 9104, left=1, event=EV_STARTED)
                eq(u6.scrape([ih]), [(0, 0, 4)], "the bound is per address family")


# ---- robustness ------------------------------------------------------------------------------


def garbage_datagram(rng, cid):
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 120)))
    if kind == 1:  # a real header, a random action and tail
        return struct.pack(">QII", cid, rng.choice([0, 1, 2, 3, 4, rng.getrandbits(32)]),
                           rng.getrandbits(32)) + os.urandom(rng.randrange(0, 200))
    if kind == 2:  # announces with random fields, some of them valid
        pkt = pack_announce(cid, rng.getrandbits(32), os.urandom(20), os.urandom(20),
                            rng.randrange(0, 65536), left=rng.getrandbits(64),
                            event=rng.choice([0, 1, 2, 3, 4, rng.getrandbits(32)]),
                            numwant=rng.randrange(-2**31, 2**31),
                            downloaded=rng.getrandbits(64), uploaded=rng.getrandbits(64))
        return pkt[:rng.choice([98, 98, 98, 97, 60, 120])] + os.urandom(rng.randrange(0, 30))
    if kind == 3:  # scrapes of random lengths
        return struct.pack(">QII", cid, 2, rng.getrandbits(32)) + os.urandom(
            rng.randrange(0, 1600))
    if kind == 4:  # oversized datagrams (truncated by the server's buffer)
        return pack_announce(cid, 1, os.urandom(20), os.urandom(20), 1) + os.urandom(
            rng.randrange(1500, 3000))
    if kind == 5:  # connects with flipped bits
        b = bytearray(pack_connect(rng.getrandbits(32)))
        b[rng.randrange(16)] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 6:  # a wrong connection id
        return pack_announce(rng.getrandbits(64), rng.getrandbits(32), os.urandom(20),
                             os.urandom(20), 1)
    return pack_connect(rng.getrandbits(32))


@test
def robust_udp_garbage_flood():
    rng = random.Random(RNG.getrandbits(64))
    port = srv("main").port
    replies = []
    with udp("main") as u:
        cid = u.connect()
        u.sock.setblocking(False)
        # Bursts of 32, each followed by draining the replies until a short lull, so neither
        # side's socket buffer overflows on a slow (sanitizer, loaded) machine.
        for i in range(4000):
            try:
                u.sock.sendto(garbage_datagram(rng, cid), (LOCAL4, port))
            except BlockingIOError:
                pass
            if i % 32 == 31:
                while select.select([u.sock], [], [], 0.005)[0]:
                    replies.append(u.sock.recv(65536))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and select.select([u.sock], [], [], 0.2)[0]:
            replies.append(u.sock.recv(65536))
    check(len(replies) > 1000, "only %d replies to 4000 datagrams" % len(replies))
    for r in replies:
        check(len(r) >= 8 and struct.unpack(">I", r[:4])[0] in (0, 1, 2, 3),
              "malformed reply %r" % r[:40])
        action = struct.unpack(">I", r[:4])[0]
        if action == ACT_CONNECT:
            eq(len(r), 16, "connect reply length")
        if action == ACT_SCRAPE:
            eq((len(r) - 8) % 12, 0, "scrape reply length")
        if action == ACT_ANNOUNCE:
            eq((len(r) - 20) % 6, 0, "announce reply length")
    with udp("main") as u:
        ih = h()
        u.announce(ih, pid(1), 9201, left=1, event=EV_STARTED)
        r = u.announce(ih, pid(2), 9202, left=1, event=EV_STARTED)
        eq(r["peers"], [(LOCAL4, 9201)], "correct answers after the flood")
    check(srv("main").alive(), "shoal died")


def http_garbage_payload(rng):
    kind = rng.randrange(6)
    if kind == 0:
        return os.urandom(rng.randrange(1, 3000))
    if kind == 1:
        return b"GET /announce?" + os.urandom(rng.randrange(1, 500)) + b" HTTP/1.1\r\n\r\n"
    if kind == 2:
        return get_request("/scrape?info_hash=" + "%41" * 20) + os.urandom(rng.randrange(1, 300))
    if kind == 3:
        return b"GET / HTTP/1.1\r\n" + b"X: " + os.urandom(rng.randrange(1, 200)) + b"\r\n\r\n"
    if kind == 4:
        return b"GET /announce HTTP/9.9\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    return (b"\r\n" * rng.randrange(0, 5) + b"GET /announce?info_hash=%" +
            bytes([rng.randrange(256)]) + b" HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")


@test
def robust_http_garbage():
    rng = random.Random(RNG.getrandbits(64))
    port = srv("main").port
    for _ in range(120):
        with HttpConn(LOCAL4, port) as c:
            try:
                c.send(http_garbage_payload(rng))
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:  # the server may already have answered and closed
                continue
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    if c.wait_eof(deadline - time.monotonic()):
                        break
                except OSError:
                    break
            check(c.buf == b"" or c.buf.startswith(b"HTTP/1.1 "), "reply %r" % c.buf[:80])
    ih = h()
    http_get(LOCAL4, port, announce_target(ih, pid(1), 9301, left=1, event="started"))
    d = announce_ok(http_get(LOCAL4, port, announce_target(ih, pid(2), 9302, left=1)),
                    "after the garbage")
    eq(d[b"peers"], socket.inet_aton(LOCAL4) + struct.pack(">H", 9301), "peers")
    check(srv("main").alive(), "shoal died")


@test
def robust_peers_expire():
    with udp("twin") as u:
        ih = h()
        u.announce(ih, pid(1), 9401, left=1, event=EV_STARTED)
        u.announce(ih, pid(2), 9402, left=0, event=EV_COMPLETED)
        t0 = time.monotonic()
        eq(u.scrape([ih]), [(1, 1, 1)], "right after the announces")
        poll(lambda: u.scrape([ih]) == [(0, 0, 0)], 15, step=0.2,
             what="the swarm to expire (--peer-timeout 2)")
        dt = time.monotonic() - t0
        check(dt >= 0.9, "peers expired after only %.2f s with --peer-timeout 2" % dt)
    check("expired" in srv("twin").stderr_text(), "no 'expired' debug line logged")


def run_shoal(args, timeout=5, env=None):
    """Run shoal to completion (bounded); returns (exit code, stdout, stderr)."""
    p = subprocess.run([ENV.shoal] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@test
def cli_help_version_and_bad_options():
    rc, out, _ = run_shoal(["--help"])
    eq(rc, 0, "--help exit code")
    check("usage: shoal" in out and "--peer-timeout" in out and "SHOAL_PEER_TIMEOUT" in out,
          "--help text: %r" % out[:300])
    rc, out, _ = run_shoal(["--version"])
    eq(rc, 0, "--version exit code")
    check(re.fullmatch(r"shoal \d+\.\d+\.\d+\n", out), "--version output %r" % out)
    bad = [
        (["--bogus"], 2, "unknown option"),
        (["--workers", "0"], 2, "out of range"),
        (["--interval"], 2, "needs a value"),
        (["--interval", "ten"], 2, "not a number"),
        (["--secret", "abcd"], 2, "64 hex digits"),
        (["--trust-proxy", "10.0.0.1/8"], 2, "trust-proxy"),
        (["--log-level", "loud"], 2, "log-level"),
        (["--udp", "off", "--http", "off"], 2, "nothing to serve"),
        (["--udp", "127.0.0.1:0"], 2, "port"),
        (["--udp", "localhost:6969"], 2, "udp"),
    ]
    for args, code, text in bad:
        rc, _, err = run_shoal(([] if "--http" in args else ["--http", "off"]) + args)
        eq(rc, code, "exit code for %r (stderr %r)" % (args, err))
        check(text in err, "stderr for %r should mention %r: %r" % (args, text, err))


@test
def cli_environment_and_flag_precedence():
    env = dict(os.environ, SHOAL_INTERVAL="100", SHOAL_WORKERS="1")
    d = Daemon("envcfg", lambda port: [ENV.shoal, "--udp", "%s:%d" % (LOCAL4, port),
                                       "--http", "%s:%d" % (LOCAL4, port)], env=env)
    ENV.daemons["envcfg"] = d
    USED.add("envcfg")
    d.start()
    with UdpTracker(LOCAL4, d.port) as u:
        iv = u.announce(h(), pid(1), 9601, left=1)["interval"]
        check(95 <= iv <= 105, "SHOAL_INTERVAL=100 gave interval %d" % iv)
    eq(d.terminate(10), 0, "exit code")
    check("with 1 workers" in d.stderr_text(), "SHOAL_WORKERS=1 not applied")
    d2 = Daemon("envflag", lambda port: [ENV.shoal, "--udp", "%s:%d" % (LOCAL4, port),
                                         "--http", "%s:%d" % (LOCAL4, port), "--interval",
                                         "200"], env=env)
    ENV.daemons["envflag"] = d2
    USED.add("envflag")
    d2.start()
    with UdpTracker(LOCAL4, d2.port) as u:
        iv = u.announce(h(), pid(1), 9602, left=1)["interval"]
        check(190 <= iv <= 210, "--interval 200 over SHOAL_INTERVAL=100 gave %d" % iv)


@test
def cli_port_in_use_refused():
    # frontend.h: "a bad address or a port in use is reported before anything runs". With
    # SO_REUSEPORT on every socket, a second shoal of the same user could silently join the
    # first one's ports and take part of its traffic (and half of its clients' ids would be
    # refused there): it must exit with an error instead.
    port = srv("main").port
    args = ["--udp", "%s:%d" % (LOCAL4, port), "--http", "%s:%d" % (LOCAL4, port)]
    p = subprocess.Popen([ENV.shoal] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            rc = p.wait(3)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc is not None, "a second shoal started on ports already in use by another one")
        err = p.stderr.read().decode(errors="replace")
        eq(rc, 1, "exit code (stderr %r)" % err)
        check("bind" in err or "in use" in err, "stderr does not name the problem: %r" % err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stderr.close()


@test
def robust_fd_exhaustion_no_spin():
    # More connections than the process may open files (RLIMIT_NOFILE 48, --http-max-conns
    # left at 10000): accept() fails with EMFILE while connections wait in the backlog. The
    # worker must neither spin on the still-readable listener nor flood the log, and must
    # serve again once connections close.
    def low_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    d = Daemon("nofile", lambda port: [ENV.shoal, "--udp", "%s:%d" % (LOCAL4, port), "--http",
                                       "%s:%d" % (LOCAL4, port), "--workers", "1"],
               preexec_fn=low_nofile)
    ENV.daemons["nofile"] = d
    USED.add("nofile")
    d.start()
    conns = []
    try:
        for _ in range(64):
            conns.append(socket.create_connection((LOCAL4, d.port), timeout=2))
        served(conns_wrap(conns[0]), "the first connection is served")
        lines0 = d.stderr_text().count("\n")
        cpu0 = d.cpu_seconds()
        t0 = time.monotonic()
        time.sleep(1.0)  # measuring what an idle second costs, not synchronising
        cpu = d.cpu_seconds() - cpu0
        lines = d.stderr_text().count("\n") - lines0
        dt = time.monotonic() - t0
        check(lines < 20, "%d log lines in %.1f s while out of file descriptors" % (lines, dt))
        check(cpu < 0.25, "%.2f CPU s used in %.1f s while out of file descriptors" % (cpu, dt))
        for c in conns:
            c.close()
        poll(lambda: fresh_served(d.port), 5, what="serving again after the connections closed")
        check(d.alive(), "shoal died")
    finally:
        for c in conns:
            c.close()
        # Stop it now: if it spins, it must not slow the tests that follow. The log stays
        # until teardown, for the failure report.
        if d.terminate(5) is None:
            d.proc.kill()
            d.proc.wait(5)


def conns_wrap(sock):
    c = HttpConn.__new__(HttpConn)
    c.sock, c.timeout, c.buf = sock, 3.0, b""
    return c


def fresh_served(port):
    try:
        with HttpConn(LOCAL4, port) as c:
            served(c, "new connection")
            return True
    except (OSError, EOFError, TimeoutError):
        return False


SERVED_RE = re.compile(
    r"served udp connect=(\d+) announce=(\d+) scrape=(\d+) errors=(\d+) dropped=(\d+), "
    r"http announce=(\d+) scrape=(\d+) errors=(\d+) connections=(\d+) refused=(\d+); "
    r"(\d+) torrents, (\d+) peers")


@test
def robust_sigterm_exact_counters():
    d = Daemon("term", ENV.argv(["--workers", "2"]), ipv6=ENV.v6)
    ENV.daemons["term"] = d
    USED.add("term")
    d.start()  # readiness: one TCP connection and one UDP connect
    ih = h()
    with UdpTracker(LOCAL4, d.port) as u:
        u.connect()
        u.announce(ih, pid(1), 9501, left=1, event=EV_STARTED)
        u.scrape([ih])
        tid = 1
        udp_expect_error(u, pack_announce(u.conn_id ^ 1, tid, ih, pid(1), 9501), tid,
                         "invalid connection id", "wrong id")
        u.send(b"short")  # dropped
        eq(u.recv(0.2), None, "reply to a short datagram")
    announce_ok(http_get(LOCAL4, d.port, announce_target(ih, pid(2), 9502, left=0)), "http")
    with HttpConn(LOCAL4, d.port) as c:
        c.send(get_request(scrape_target([ih])) + get_request("/nope"))
        eq(c.read_response().status, 200, "scrape")
        eq(c.read_response().status, 404, "404")
    t0 = time.monotonic()
    rc = d.terminate(10)
    check(rc is not None, "shoal did not exit within 10 s of SIGTERM")
    eq(rc, 0, "exit code after SIGTERM")
    check(time.monotonic() - t0 < 10, "slow exit")
    err = d.stderr_text()
    check(re.search(r"serving udp 127\.0\.0\.1:%d.*http 127\.0\.0\.1:%d" % (d.port, d.port), err),
          "no 'serving' line naming the ports")
    m = SERVED_RE.search(err)
    check(m, "no 'served' summary line")
    got = tuple(int(x) for x in m.groups())
    eq(got, (2, 1, 1, 1, 1, 1, 1, 1, 3, 0, 1, 2), "served counters "
       "(udp connect announce scrape errors dropped, http announce scrape errors connections "
       "refused, torrents peers)")


@test
def robust_all_exit_cleanly_on_sigterm():
    names = [n for n in ("main", "twin", "proxy", "small", "limits", "mapped")
             if n in ENV.daemons]
    for name in names:
        d = srv(name)
        check(d.alive(), "%s is no longer running (exit %r)" % (name, d.proc.poll()))
    for name in names:
        d = srv(name)
        sig = signal.SIGINT if name == "small" else signal.SIGTERM
        rc = d.terminate(10, sig)
        eq(rc, 0, "%s exit code after %s" % (name, sig.name))
        check(SERVED_RE.search(d.stderr_text()), "%s logged no 'served' line" % name)
    if "http_max_conns_honoured" in RAN:
        m = SERVED_RE.search(srv("limits").stderr_text())
        check(int(m.group(10)) >= 2, "limits counted %s refused connections" % m.group(10))


# ---- runner ----------------------------------------------------------------------------------


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", required=True, help="path to the shoal binary")
    ap.add_argument("-k", default="", help="run only tests whose name contains this")
    ap.add_argument("--no-ipv6", action="store_true",
                    help="behave as on a machine without IPv6 loopback (IPv6 tests skip; so "
                         "does SHOAL_TEST_NO_IPV6=1)")
    args = ap.parse_args()
    rc = clusterlib.preflight([args.shoal], redis=False)
    if rc is not None:
        return rc
    ENV = Env(os.path.abspath(args.shoal))
    ENV.v6 = ENV.v6 and not args.no_ipv6
    t_start = time.monotonic()
    try:
        ENV.start_all()
    except Exception:
        traceback.print_exc()
        for d in ENV.daemons.values():
            print("---- %s stderr ----\n%s" % (d.name, d.stderr_text()[-3000:]))
        ENV.stop_all()
        print("0 passed, %d failed" % len(TESTS))
        return 1
    print("shoal under test: %s (IPv6 loopback: %s)" % (args.shoal, ENV.v6))

    def step(name, fn):
        def run():
            USED.clear()
            RAN.add(name)
            fn()
        return name, run

    def logs():
        return "\n".join(clusterlib.stderr_tail(n, d.proc and d.proc.pid, d.stderr_text(), 30)
                         for n, d in sorted(ENV.daemons.items()) if n in USED)

    # -k keeps the robust_all_* steps: they check every daemon the others used.
    steps = [step(name, fn) for name, fn in TESTS
             if not args.k or args.k in name or name.startswith("robust_all")]
    return clusterlib.run_steps(steps, "", logs, ENV.stop_all, t_start)


if __name__ == "__main__":
    sys.exit(main())
