#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""e2e.clients: real BitTorrent clients that can meet only through the tracker under test.

Each scenario makes a private v1 torrent with mktorrent whose only peer source is the tracker
(DHT, LSD, PEX, UPnP and NAT-PMP are off in every client), runs a seeder and a leecher on
loopback, then checks that the leecher's copy has the original SHA-256 and that the tracker's
scrape (HTTP BEP 48 or UDP BEP 15, decoded here) counts what the clients announced. A negative
scenario shows the same clients never meet when the seeder announces to a dead tracker, and meet
as soon as it announces to the live one.

The libtorrent peers are sessions inside this process; aria2c, transmission-cli and the tracker
are child processes. Invariant: every child is stopped by its PID (terminate or interrupt, then
kill after a bound), every session is closed and the temp dir removed, whatever fails (SIGTERM
included); every wait is a deadline loop that polls a condition, never a bare sleep used as
synchronisation.

Runs with the system interpreter only (python3-libtorrent lives there):
    /usr/bin/python3 tests/e2e/test_clients.py --shoal build/cmd/shoal
    /usr/bin/python3 tests/e2e/test_clients.py --opentracker     (harness check, Debian package)
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import trackerclient  # noqa: E402  (shared with the integration tests)
from clusterlib import wait_until  # noqa: E402

try:
    import libtorrent as lt
except ImportError as e:  # reported as a setup failure that names the interpreter
    lt = None
    LT_IMPORT_ERROR = str(e)

PAYLOAD_SIZE = 3 * 1024 * 1024 + 12345  # odd size: the last piece is short
PIECE_LEN_LOG2 = 16  # 64 KiB pieces, ~49 of them
COUNT_KEYS = ("complete", "downloaded", "incomplete")
SETUP_HINT = "deploy/install-deps.sh installs the e2e clients"
T0 = time.monotonic()


class CheckFailed(Exception):
    """A scenario's expectation did not hold; the message says which."""


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    # transmission-cli redraws its status line with \r: one line per redraw reads better.
    text = data.decode("utf-8", "replace").replace("\r", "\n")
    out = [ln for ln in text.split("\n") if ln.strip()]
    return "\n".join("    | " + ln for ln in out[-lines:]) or "    | <empty>"


def sha256_file(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


# ---- bencode (decoder only; the info-hash is the SHA-1 of the raw bytes of the info value) ----


def bdecode(data, i=0):
    """Decode one bencoded value at data[i:]; return (value, index after it). Raises ValueError."""
    c = data[i : i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i : i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i : i + 1] != b"e":
            k, i = bdecode(data, i)
            if not isinstance(k, bytes):
                raise ValueError("dict key is not a string")
            out[k], i = bdecode(data, i)
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        start = colon + 1
        if start + n > len(data):
            raise ValueError("string runs past the end")
        return data[start : start + n], start + n
    raise ValueError(f"bad bencode byte {c!r} at {i}")


def bdecode_all(data):
    v, end = bdecode(data, 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} trailing bytes after bencoded value")
    return v


def info_hash_of(torrent_path):
    with open(torrent_path, "rb") as f:
        data = f.read()
    if data[:1] != b"d":
        raise ValueError("torrent is not a dict")
    i = 1
    while data[i : i + 1] != b"e":
        k, i = bdecode(data, i)
        start = i
        _, i = bdecode(data, i)
        if k == b"info":
            return hashlib.sha1(data[start:i]).digest()
    raise ValueError("torrent has no info dict")


# ---- processes ----


class Proc:
    """A child process whose stdout+stderr go to a log file; stop() ends it by PID."""

    def __init__(self, name, argv, logpath):
        self.name = name
        self.logpath = logpath
        self.logf = open(logpath, "wb")
        self.p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT
        )
        log(f"started {name} pid {self.p.pid}: {' '.join(argv)}")

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, grace=5.0):
        """Send sig, wait up to grace seconds, then SIGKILL and reap. Returns the exit code."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
            except ProcessLookupError:
                pass
            if wait_until(lambda: self.p.poll() is not None, grace, 0.1) is False:
                log(f"{self.name} pid {self.p.pid} ignored {sig.name} for {grace}s: SIGKILL")
                self.p.kill()
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log(f"{self.name} pid {self.p.pid} did not die after SIGKILL")
        self.logf.close()
        return self.p.returncode


def free_port(taken):
    """A loopback port free for both TCP and UDP right now (libtorrent and transmission use
    uTP on their TCP port), not handed out before in this run."""
    for _ in range(200):
        port = trackerclient.free_port()
        if port not in taken:
            taken.add(port)
            return port
    raise RuntimeError("no free loopback port")


# ---- the tracker ----


class Tracker:
    """The tracker under test: shoal, or opentracker (whitelist mode) as the harness baseline."""

    def __init__(self, args, workdir, udp_port, http_port, info_hashes):
        self.udp = ("127.0.0.1", udp_port)
        self.http = ("127.0.0.1", http_port)
        self.udp_url = f"udp://127.0.0.1:{udp_port}/announce"
        self.http_url = f"http://127.0.0.1:{http_port}/announce"
        self.scrape_url = f"http://127.0.0.1:{http_port}/scrape"
        self.workdir = workdir
        self.info_hashes = info_hashes
        self.proc = None
        self.rc = None
        if args.opentracker:
            self.name = "opentracker"
            self.argv = self._opentracker_argv()
        else:
            self.name = "shoal"
            self.argv = [
                args.shoal,
                "--udp", f"127.0.0.1:{udp_port}",
                "--http", f"127.0.0.1:{http_port}",
                "--workers", "2",
                "--interval", "30",
                "--log-level", "info",
            ]  # fmt: skip

    def _opentracker_argv(self):
        exe = shutil.which("opentracker")
        if not exe:
            raise CheckFailed(f"opentracker not found on PATH ({SETUP_HINT})")
        wl = os.path.join(self.workdir, "whitelist")
        with open(wl, "w") as f:
            f.write("".join(h.hex() + "\n" for h in self.info_hashes))
        conf = os.path.join(self.workdir, "opentracker.conf")
        with open(conf, "w") as f:
            f.write(f"listen.udp {self.udp[0]}:{self.udp[1]}\n")
            f.write(f"listen.tcp {self.http[0]}:{self.http[1]}\n")
            f.write(f"access.whitelist {wl}\n")
            f.write(f"tracker.rootdir {self.workdir}\n")
        argv = [exe, "-f", conf]
        if os.geteuid() == 0:
            # As root it would chroot into its rootdir and setuid: run it as nobody instead.
            for p in (self.workdir, wl, conf):
                os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
            argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + argv
        return argv

    def start(self):
        self.proc = Proc(self.name, self.argv, os.path.join(self.workdir, "tracker.log"))
        probe = self.info_hashes[0]

        def ready():
            if not self.proc.alive():
                raise CheckFailed(
                    f"{self.name} exited with {self.proc.p.returncode} at startup:\n"
                    + tail(self.proc.logpath)
                )
            return self.scrape_http([probe], quiet=True) is not None and (
                self.scrape_udp([probe], quiet=True) is not None
            )

        if not wait_until(ready, 10, 0.1):
            raise CheckFailed(
                f"{self.name} did not answer HTTP and UDP scrapes within 10 s:\n"
                + tail(self.proc.logpath)
            )
        log(f"{self.name} ready: {self.udp_url} {self.http_url}")

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s; returns the exit code (None if never started)."""
        if not self.proc:
            return None
        if self.rc is None:  # idempotent: main's finally calls it again
            self.rc = self.proc.stop(signal.SIGTERM, 5)
            log(f"{self.name} stopped, exit code {self.rc}")
        return self.rc

    def log_tail(self, lines=30):
        return tail(self.proc.logpath, lines) if self.proc else "    | <not started>"

    def scrape_http(self, hashes, quiet=False):
        """BEP 48 scrape; {info_hash: {complete, downloaded, incomplete}} (missing ones are all
        zero), or None on failure (raised unless quiet)."""
        q = "&".join("info_hash=" + urllib.parse.quote_from_bytes(h, safe="") for h in hashes)
        try:
            with urllib.request.urlopen(f"{self.scrape_url}?{q}", timeout=2) as r:
                body = r.read()
            d = bdecode_all(body)
            if b"failure reason" in d:
                reason = d[b"failure reason"].decode("utf-8", "replace")
                raise ValueError("failure reason: " + reason)
            files = d[b"files"]
            out = {}
            for h in hashes:
                e = files.get(h, {})
                out[h] = {k: int(e.get(k.encode(), 0)) for k in COUNT_KEYS}
            return out
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            if quiet:
                return None
            raise CheckFailed(f"HTTP scrape failed: {e!r}")

    def scrape_udp(self, hashes, quiet=False):
        """BEP 15 connect + scrape, each tried up to 3 times with a 1 s timeout; same result
        shape as scrape_http."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(self.udp)

            def rpc(req, tid, action, minlen):
                for _ in range(3):
                    s.send(req)
                    deadline = time.monotonic() + 1.0
                    while (left := deadline - time.monotonic()) > 0:
                        s.settimeout(left)
                        try:
                            resp = s.recv(65536)
                        except socket.timeout:
                            break
                        if len(resp) < 8 or struct.unpack_from(">I", resp, 4)[0] != tid:
                            continue  # a late reply to an earlier request of this socket
                        (ra,) = struct.unpack_from(">I", resp)
                        if ra == 3:
                            msg = resp[8:].decode("utf-8", "replace")
                            raise ValueError("tracker error: " + msg)
                        if ra != action or len(resp) < minlen:
                            raise ValueError(f"unexpected UDP reply {resp[:32].hex()}")
                        return resp
                raise ValueError("no UDP reply after 3 tries")

            tid = random.getrandbits(32)
            resp = rpc(struct.pack(">QII", 0x41727101980, 0, tid), tid, 0, 16)
            (cid,) = struct.unpack_from(">Q", resp, 8)
            tid = random.getrandbits(32)
            req = struct.pack(">QII", cid, 2, tid) + b"".join(hashes)
            resp = rpc(req, tid, 2, 8 + 12 * len(hashes))
            out = {}
            for n, h in enumerate(hashes):
                seeders, completed, leechers = struct.unpack_from(">III", resp, 8 + 12 * n)
                out[h] = {"complete": seeders, "downloaded": completed, "incomplete": leechers}
            return out
        except (OSError, ValueError) as e:
            if quiet:
                return None
            raise CheckFailed(f"UDP scrape failed: {e!r}")
        finally:
            s.close()

    def counts(self, h, proto):
        return (self.scrape_udp if proto == "udp" else self.scrape_http)([h])[h]

    def wait_counts(self, h, proto, pred, what, timeout):
        """Poll the scrape until pred(counts) holds; raise CheckFailed naming what otherwise."""
        last = {}

        def ok():
            last["c"] = self.counts(h, proto)
            return pred(last["c"])

        if not wait_until(ok, timeout, 0.25):
            raise CheckFailed(
                f"{proto} scrape never showed {what} within {timeout}s: last {last.get('c')}"
            )
        log(f"{proto} scrape shows {what}: {last['c']}")
        return last["c"]


# ---- libtorrent, in process: one session per client ----


class LtClient:
    """A libtorrent session with one torrent; DHT/LSD/PEX/UPnP/NAT-PMP off from creation."""

    def __init__(self, name, port, torrent_path, save_path):
        self.name = name
        self.port = port
        self.events = []
        mask = (
            lt.alert_category.error
            | lt.alert_category.tracker
            | lt.alert_category.status
            | lt.alert_category.peer
            | lt.alert_category.connect
        )
        self.ses = lt.session(
            {
                "listen_interfaces": f"127.0.0.1:{port}",
                "outgoing_interfaces": "127.0.0.1",
                "enable_dht": False,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "allow_multiple_connections_per_ip": True,
                "alert_mask": int(mask),
                "stop_tracker_timeout": 1,
                "peer_connect_timeout": 3,
                "min_reconnect_time": 1,
                "user_agent": f"shoal-e2e-{name}",
            }
        )
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent_path)
        atp.save_path = save_path
        atp.flags = (
            # Not auto-managed, so not paused either: the queue would only add delay here.
            lt.torrent_flags.default_flags
            & ~lt.torrent_flags.auto_managed
            & ~lt.torrent_flags.paused
            | lt.torrent_flags.disable_dht
            | lt.torrent_flags.disable_lsd
            | lt.torrent_flags.disable_pex
        )
        self.h = self.ses.add_torrent(atp)
        log(f"started libtorrent {name} on 127.0.0.1:{port}")

    def drain(self):
        for a in self.ses.pop_alerts():
            # Stamped when drained (alerts carry no time in these bindings): within a poll step.
            self.events.append(f"{time.monotonic() - T0:6.1f}s {type(a).__name__}: {a.message()}")
        del self.events[:-200]

    def status(self):
        self.drain()
        return self.h.status()

    def wait_seeding(self, timeout):
        return wait_until(lambda: self.status().is_seeding, timeout, 0.1)

    def log_tail(self, lines=25):
        self.drain()
        return "\n".join("    | " + e for e in self.events[-lines:]) or "    | <no alerts>"

    def close(self):
        """Remove the torrent (a stopped announce, bounded by stop_tracker_timeout) and end the
        session."""
        try:
            self.drain()
            self.ses.remove_torrent(self.h)
        except Exception as e:  # cleanup must go on for the other clients
            log(f"closing libtorrent {self.name}: {e!r}")
        self.h = None
        self.ses = None  # the last reference: the destructor joins the session's threads


# ---- scenarios ----


class Swarm:
    """One scenario's torrent: a random payload and a private v1 .torrent per tracker URL."""

    def __init__(self, root, key, urls):
        self.dir = os.path.join(root, key)
        self.src = os.path.join(self.dir, "seed")
        self.dl = os.path.join(self.dir, "dl")
        os.makedirs(self.src)
        os.makedirs(self.dl)
        self.name = f"payload-{key}.bin"
        path = os.path.join(self.src, self.name)
        with open(path, "wb") as f:
            f.write(os.urandom(PAYLOAD_SIZE))
        self.sha256 = sha256_file(path)
        self.torrents = {}
        for tag, url in urls.items():
            out = os.path.join(self.dir, f"{key}-{tag}.torrent")
            r = subprocess.run(
                ["mktorrent", "-p", "-l", str(PIECE_LEN_LOG2), "-a", url, "-o", out, path],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
            )  # fmt: skip
            if r.returncode != 0:
                raise CheckFailed(f"mktorrent failed ({r.returncode}): {r.stdout.decode()[-500:]}")
            self.torrents[tag] = out
        hashes = {info_hash_of(t) for t in self.torrents.values()}
        if len(hashes) != 1:
            raise CheckFailed("torrents of one payload have different info-hashes")
        self.info_hash = hashes.pop()

    def leecher_file(self):
        return os.path.join(self.dl, self.name)

    def check_copy(self, timeout=10):
        """The leecher's file reaches the original SHA-256 within timeout (a client may still be
        flushing its last piece when it reports completion)."""
        got = wait_until(lambda: sha256_file(self.leecher_file()) == self.sha256, timeout, 0.2)
        if not got:
            got = sha256_file(self.leecher_file())
            raise CheckFailed(f"leecher's copy SHA-256 {got} != original {self.sha256}")
        log(f"leecher's copy matches SHA-256 {self.sha256[:16]}...")


class Ctx:
    """What a scenario shares with the run (the tracker, the port pool) and its own diagnostics,
    printed if it fails."""

    def __init__(self, tracker, ports):
        self.tracker = tracker
        self.ports = ports
        self.diag = []  # (label, callable returning text) printed if the scenario fails

    def free_port(self):
        return free_port(self.ports)


def need_binary(name):
    exe = shutil.which(name)
    if not exe:
        raise CheckFailed(f"{name} not found on PATH ({SETUP_HINT})")
    return exe


def scenario_http_aria2(ctx, sw, cleanup):
    """libtorrent seeder + aria2c leecher over the HTTP tracker."""
    tr = ctx.tracker
    aria2 = need_binary("aria2c")
    seeder = LtClient("seeder", ctx.free_port(), sw.torrents["http"], sw.src)
    cleanup.append(seeder.close)
    ctx.diag.append(("libtorrent seeder alerts", seeder.log_tail))
    if not seeder.wait_seeding(15):
        raise CheckFailed(f"seeder never reached seeding: {seeder.status().state}")
    tr.wait_counts(sw.info_hash, "http", lambda c: c["complete"] >= 1, "complete >= 1 (seeder)", 15)

    logpath = os.path.join(sw.dir, "aria2.log")
    # aria2c binds its listen port itself, after free_port() let it go: a test running beside
    # this one may take the port in between (an outgoing connection's source port). It then
    # exits at once saying so, and gets another port, at most three times.
    for attempt in range(3):
        port = ctx.free_port()
        argv = [
            aria2, "--no-conf=true", "--dir", sw.dl, "--listen-port", str(port),
            "--enable-dht=false", "--enable-dht6=false", "--enable-peer-exchange=false",
            "--bt-enable-lpd=false", "--disable-ipv6=true", "--seed-time=0.1",
            "--follow-torrent=false", "--bt-save-metadata=false", "--bt-stop-timeout=60",
            "--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
            "--summary-interval=0", "--console-log-level=notice", "--enable-color=false",
            f"--log={logpath}", "--log-level=info", "--torrent-file", sw.torrents["http"],
        ]  # fmt: skip
        aria = Proc("aria2c", argv, os.path.join(sw.dir, f"aria2-{attempt}.out"))
        cleanup.append(lambda a=aria: a.stop(signal.SIGINT, 5))
        wait_until(lambda: not aria.alive() or "listening on TCP port" in tail(aria.logpath), 10,
                   0.05)
        if aria.alive() or "failed to bind TCP port" not in tail(aria.logpath):
            break
        log(f"aria2c could not bind port {port} (taken since it was free): another port")
    ctx.diag.append(("aria2c output", lambda: tail(aria.logpath)))
    ctx.diag.append(("aria2c log", lambda: tail(logpath, 40)))
    # aria2c sends `completed` only if it seeds at all (with --seed-time=0 it goes straight to
    # `stopped`), so it seeds for 6 s: long enough for the scrape to see it as a seed.
    seen = {}

    def seeding_or_gone():
        if not aria.alive():
            return True
        c = tr.counts(sw.info_hash, "http")
        if c["downloaded"] >= 1 and c["complete"] >= 2:
            seen["c"] = c
            return True
        return False

    if not wait_until(seeding_or_gone, 60, 0.2):
        raise CheckFailed("aria2c neither completed nor exited within 60 s")
    if aria.alive():
        log(f"http scrape shows aria2c's completed while it seeds: {seen['c']}")
    if not wait_until(lambda: not aria.alive(), 30, 0.2):
        raise CheckFailed("aria2c did not exit within 30 s of completing")
    rc = aria.p.returncode
    log(f"aria2c exited with {rc}")
    if rc != 0:
        raise CheckFailed(f"aria2c exited with {rc}")
    sw.check_copy()
    if "c" not in seen:
        raise CheckFailed("aria2c exited before a scrape saw it as a seed that completed")
    tr.wait_counts(
        sw.info_hash, "http",
        lambda c: c["downloaded"] >= 1 and c["complete"] == 1 and c["incomplete"] == 0,
        "complete == 1, downloaded >= 1 (aria2c's stopped removed it)", 10,
    )  # fmt: skip


def scenario_udp_libtorrent(ctx, sw, cleanup):
    """libtorrent seeder + libtorrent leecher over the UDP tracker, with a BEP 15 scrape."""
    tr = ctx.tracker
    seeder = LtClient("seeder", ctx.free_port(), sw.torrents["udp"], sw.src)
    cleanup.append(seeder.close)
    ctx.diag.append(("libtorrent seeder alerts", seeder.log_tail))
    if not seeder.wait_seeding(15):
        raise CheckFailed(f"seeder never reached seeding: {seeder.status().state}")
    tr.wait_counts(sw.info_hash, "udp", lambda c: c["complete"] >= 1, "complete >= 1 (seeder)", 15)

    leecher = LtClient("leecher", ctx.free_port(), sw.torrents["udp"], sw.dl)
    cleanup.append(leecher.close)
    ctx.diag.append(("libtorrent leecher alerts", leecher.log_tail))
    if not leecher.wait_seeding(60):
        st = leecher.status()
        raise CheckFailed(
            f"leecher did not complete within 60 s: progress {st.progress:.2f}, "
            f"peers {st.num_peers}"
        )
    log("libtorrent leecher completed")
    sw.check_copy()
    tr.wait_counts(
        sw.info_hash, "udp", lambda c: c["downloaded"] >= 1 and c["complete"] >= 2,
        "downloaded >= 1 and complete >= 2 (leecher sent completed)", 10,
    )  # fmt: skip


def transmission_settings(cfgdir, port, dl):
    # The private flag already keeps DHT/PEX/LSD off for the torrent; these keep the session quiet.
    os.makedirs(cfgdir)
    with open(os.path.join(cfgdir, "settings.json"), "w") as f:
        json.dump(
            {
                "dht-enabled": False,
                "lpd-enabled": False,
                "pex-enabled": False,
                "port-forwarding-enabled": False,
                "blocklist-enabled": False,
                "rpc-enabled": False,
                "peer-port": port,
                "peer-port-random-on-start": False,
                "bind-address-ipv4": "127.0.0.1",
                "download-dir": dl,
                "incomplete-dir-enabled": False,
                "rename-partial-files": True,
                "ratio-limit-enabled": False,
                "speed-limit-up-enabled": False,
                "speed-limit-down-enabled": False,
                "message-level": 2,
            },
            f,
        )


def scenario_transmission(ctx, sw, cleanup):
    """transmission-cli leecher (started first) dialled by a libtorrent seeder, over UDP."""
    tr = ctx.tracker
    exe = need_binary("transmission-cli")
    port = ctx.free_port()
    cfg = os.path.join(sw.dir, "transmission-config")
    transmission_settings(cfg, port, sw.dl)
    # transmission drops 127.x peers from tracker replies: it must be found and dialled.
    argv = [exe, "-g", cfg, "-w", sw.dl, "-p", str(port), "-M", sw.torrents["udp"]]
    tcli = Proc("transmission-cli", argv, os.path.join(sw.dir, "transmission.out"))
    cleanup.append(lambda: tcli.stop(signal.SIGINT, 5))
    ctx.diag.append(("transmission-cli output", lambda: tail(tcli.logpath, 40)))
    tr.wait_counts(
        sw.info_hash, "udp", lambda c: c["incomplete"] >= 1, "incomplete >= 1 (transmission)", 20
    )
    seeder = LtClient("seeder", ctx.free_port(), sw.torrents["udp"], sw.src)
    cleanup.append(seeder.close)
    ctx.diag.append(("libtorrent seeder alerts", seeder.log_tail))

    def done():
        if not tcli.alive():
            raise CheckFailed(f"transmission-cli exited early with {tcli.p.returncode}")
        seeder.drain()
        return sha256_file(sw.leecher_file()) == sw.sha256

    if not wait_until(done, 60, 0.25):
        raise CheckFailed("transmission-cli did not complete the file within 60 s")
    log("transmission-cli completed")
    sw.check_copy()
    tr.wait_counts(
        sw.info_hash, "udp", lambda c: c["downloaded"] >= 1 and c["complete"] >= 2,
        "downloaded >= 1 and complete >= 2 (transmission sent completed)", 15,
    )  # fmt: skip
    # Both front ends must see one swarm.
    tr.wait_counts(
        sw.info_hash, "http", lambda c: c["downloaded"] >= 1 and c["complete"] >= 2,
        "the same counts over HTTP", 5,
    )  # fmt: skip


NEGATIVE_WINDOW = 8.0


def scenario_negative(ctx, sw, cleanup):
    """A seeder announcing only to a dead tracker is never found by a leecher on the live one;
    once the seeder switches to the live tracker they meet (so the clients were able to)."""
    tr = ctx.tracker
    leecher = LtClient("leecher", ctx.free_port(), sw.torrents["live"], sw.dl)
    cleanup.append(leecher.close)
    ctx.diag.append(("libtorrent leecher alerts", leecher.log_tail))
    seeder = LtClient("seeder", ctx.free_port(), sw.torrents["dead"], sw.src)
    cleanup.append(seeder.close)
    ctx.diag.append(("libtorrent seeder alerts", seeder.log_tail))

    def no_contact():
        ls, ss = leecher.status(), seeder.status()
        if ls.num_peers or ss.num_peers or ls.total_wanted_done:
            raise CheckFailed(
                f"clients met without the tracker: leecher peers {ls.num_peers}, seeder peers "
                f"{ss.num_peers}, leecher has {ls.total_wanted_done} bytes"
            )
        return ss

    if not wait_until(lambda: no_contact().is_seeding, 15, 0.1):
        raise CheckFailed(f"seeder never reached seeding: {seeder.status().state}")
    tr.wait_counts(
        sw.info_hash, "http", lambda c: no_contact() and c["incomplete"] >= 1,
        "incomplete >= 1 (the leecher reached the tracker)", 15,
    )  # fmt: skip
    deadline = time.monotonic() + NEGATIVE_WINDOW
    while time.monotonic() < deadline:
        no_contact()
        time.sleep(0.2)
    c = tr.counts(sw.info_hash, "http")
    if c["complete"] != 0:
        raise CheckFailed(f"the tracker counts a seeder that never reached it: {c}")
    log(f"no contact in {NEGATIVE_WINDOW:.0f}s without the tracker; scrape {c}")

    # Control: the same seeder, now announcing to the live tracker, learns the leecher and dials it.
    seeder.h.replace_trackers([lt.announce_entry(tr.http_url)])
    seeder.h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    if not leecher.wait_seeding(60):
        st = leecher.status()
        raise CheckFailed(
            f"control failed: leecher did not complete within 60 s once the seeder used the "
            f"tracker: progress {st.progress:.2f}, peers {st.num_peers}"
        )
    log("control: leecher completed once the seeder announced to the tracker")
    sw.check_copy()


SCENARIOS = [
    # name, directory key, function, {torrent tag: tracker url key}
    ("http-libtorrent-seeder-aria2c-leecher", "aria2", scenario_http_aria2, {"http": "http"}),
    ("udp-libtorrent-seeder-libtorrent-leecher", "lt", scenario_udp_libtorrent, {"udp": "udp"}),
    ("udp-transmission-leecher-libtorrent-seeder", "tr", scenario_transmission, {"udp": "udp"}),
    ("negative-seeder-without-tracker-is-never-found", "neg", scenario_negative,
     {"live": "http", "dead": "dead"}),
]


def run_scenario(name, fn, tracker, ports, sw):
    """Run one scenario; print PASS/FAIL with its time, and diagnostics before its clients are
    stopped. Returns the error text or None."""
    ctx = Ctx(tracker, ports)
    cleanup = []
    log(f"--- {name}: {fn.__doc__.splitlines()[0]}")
    t = time.monotonic()
    err = None
    try:
        try:
            fn(ctx, sw, cleanup)
        except CheckFailed as e:
            err = str(e)
        except Exception:
            err = "harness error:\n" + traceback.format_exc()
        if err:
            print(f"--- diagnostics for {name}", flush=True)
            for label, text in ctx.diag:
                try:
                    print(f"  {label}:\n{text()}", flush=True)
                except Exception as e:
                    print(f"  {label}: <{e!r}>", flush=True)
            print(f"  tracker ({tracker.name}) output:\n{tracker.log_tail()}", flush=True)
    finally:
        for stop in reversed(cleanup):
            try:
                stop()
            except Exception as e:
                log(f"cleanup in {name}: {e!r}")
    dt = time.monotonic() - t
    if err:
        print(f"FAIL {name} ({dt:.1f}s): {err}", flush=True)
    else:
        print(f"PASS {name} ({dt:.1f}s)", flush=True)
    return err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shoal", help="path to the shoal binary")
    # Harness checks: run against opentracker instead; run only scenarios whose name contains
    # a word; keep the temp dir.
    ap.add_argument("--opentracker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.opentracker and not args.shoal:
        ap.error("--shoal PATH is required")
    # ctest and people stop runs with SIGTERM: unwind through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    scenarios = [s for s in SCENARIOS if not args.only or any(o in s[0] for o in args.only)]
    results = []
    root = tempfile.mkdtemp(prefix="shoal-e2e-")
    tracker = None
    try:
        try:
            if not args.opentracker and not os.access(args.shoal, os.X_OK):
                raise CheckFailed(f"{args.shoal} is not an executable file")
            if lt is None:
                raise CheckFailed(f"no libtorrent ({LT_IMPORT_ERROR}); use /usr/bin/python3")
            need_binary("mktorrent")
            ports = set()
            udp_port, http_port, dead_port = free_port(ports), free_port(ports), free_port(ports)
            urls = {
                "udp": f"udp://127.0.0.1:{udp_port}/announce",
                "http": f"http://127.0.0.1:{http_port}/announce",
                "dead": f"http://127.0.0.1:{dead_port}/announce",  # nothing ever listens there
            }
            swarms = {
                name: Swarm(root, key, {tag: urls[u] for tag, u in tags.items()})
                for name, key, _, tags in scenarios
            }
            tdir = os.path.join(root, "tracker")
            os.makedirs(tdir)
            os.chmod(root, 0o755)  # opentracker runs as nobody and reads its files here
            hashes = [sw.info_hash for sw in swarms.values()]
            tracker = Tracker(args, tdir, udp_port, http_port, hashes)
            tracker.start()
        except CheckFailed as e:
            print(f"FAIL setup: {e}", flush=True)
            return 1

        for name, _, fn, _ in scenarios:
            err = run_scenario(name, fn, tracker, ports, swarms[name])
            results.append((name, err))
            if not tracker.proc.alive():
                print(
                    f"FAIL {tracker.name} died (exit {tracker.proc.p.returncode}):\n"
                    + tracker.log_tail(),
                    flush=True,
                )
                results.append(("tracker-alive", "tracker died"))
                break
        # shoal exits 0 on SIGTERM; a sanitizer report at exit would show up here.
        stopping = results and results[-1][0] != "tracker-alive"
        rc = tracker.stop()
        if stopping and tracker.name == "shoal":
            name = "shoal-exits-0-on-sigterm"
            err = None if rc == 0 else f"exit code {rc}:\n{tracker.log_tail()}"
            results.append((name, err))
            print(f"PASS {name}" if rc == 0 else f"FAIL {name}: {err}", flush=True)
    finally:
        if tracker:
            tracker.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    failed = [n for n, err in results if err]
    print(
        f"{len(results) - len(failed)}/{len(results)} passed against {tracker.name} in "
        f"{time.monotonic() - T0:.1f}s" + (f"; failed: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
