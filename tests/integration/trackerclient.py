# SPDX-License-Identifier: MIT
"""trackerclient: a small, strict tracker client for shoal's integration tests.

What is here, standard library only, so any test (standalone, cluster, e2e) can reuse it:
  - bdecode(): a strict bencode decoder (canonical integers, sorted unique dict keys, the whole
    input consumed), so a test fails on any non-canonical byte a tracker sends;
  - UdpTracker: BEP 15 packets built and parsed byte for byte (connect, announce, scrape, error),
    over IPv4 or IPv6;
  - HttpConn: a raw HTTP/1.1 connection (keep-alive, pipelining, EOF detection) and helpers that
    build announce/scrape queries with percent-encoded binary info-hashes;
  - Daemon: start a tracker process on free loopback ports, poll until it answers, stop it by PID.

Invariant: every wait is bounded by an explicit deadline; nothing here sleeps to synchronise.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse

PROTOCOL_ID = 0x41727101980
ACT_CONNECT, ACT_ANNOUNCE, ACT_SCRAPE, ACT_ERROR = 0, 1, 2, 3
EV_NONE, EV_COMPLETED, EV_STARTED, EV_STOPPED = 0, 1, 2, 3


class ProtocolError(Exception):
    """The tracker answered with something the protocol does not allow."""


# ---- bencode ---------------------------------------------------------------------------------


def _bdecode_at(data, i):
    if i >= len(data):
        raise ValueError("bencode: truncated at %d" % i)
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        text = data[i + 1:end]
        if (not text or text == b"-0" or (text[:1] == b"0" and len(text) > 1)
                or (text[:2] == b"-0")):
            raise ValueError("bencode: non-canonical integer %r" % text)
        return int(text), end + 1
    if c == b"l":
        out, i = [], i + 1
        while data[i:i + 1] != b"e":
            v, i = _bdecode_at(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        out, i, last = {}, i + 1, None
        while data[i:i + 1] != b"e":
            k, i = _bdecode_at(data, i)
            if not isinstance(k, bytes):
                raise ValueError("bencode: dict key is not a string")
            if last is not None and k <= last:
                raise ValueError("bencode: dict keys not sorted/unique: %r after %r" % (k, last))
            last = k
            out[k], i = _bdecode_at(data, i)
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        text = data[i:colon]
        if text[:1] == b"0" and len(text) > 1:
            raise ValueError("bencode: non-canonical length %r" % text)
        n = int(text)
        start = colon + 1
        if start + n > len(data):
            raise ValueError("bencode: string runs past the end")
        return data[start:start + n], start + n
    raise ValueError("bencode: unexpected byte %r at %d" % (c, i))


def bdecode(data):
    """Decode one bencoded value that must span all of data (bytes keys, bytes strings)."""
    v, end = _bdecode_at(bytes(data), 0)
    if end != len(data):
        raise ValueError("bencode: %d trailing bytes" % (len(data) - end))
    return v


def bencode(v):
    """Encode ints, bytes, str, lists and dicts (keys sorted): for building expected bodies."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in items) + b"e"
    raise TypeError(type(v))


# ---- compact peers ---------------------------------------------------------------------------


def parse_peers(blob, family):
    """Compact peers (6-byte IPv4 or 18-byte IPv6 records) -> list of (ip text, port)."""
    rec = 6 if family == 4 else 18
    if len(blob) % rec:
        raise ProtocolError("peer blob of %d bytes is not a multiple of %d" % (len(blob), rec))
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    out = []
    for off in range(0, len(blob), rec):
        ip = socket.inet_ntop(af, blob[off:off + rec - 2])
        (port,) = struct.unpack(">H", blob[off + rec - 2:off + rec])
        out.append((ip, port))
    return out


def random_hash(rng=random):
    return bytes(rng.getrandbits(8) for _ in range(20))


# ---- UDP (BEP 15) ----------------------------------------------------------------------------


def pack_connect(tid, magic=PROTOCOL_ID):
    return struct.pack(">QII", magic, ACT_CONNECT, tid)


def pack_announce(conn_id, tid, info_hash, peer_id, port, left=0, event=EV_NONE, numwant=-1,
                  downloaded=0, uploaded=0, key=0, ip=0, action=ACT_ANNOUNCE):
    return struct.pack(">QII20s20sQQQIIIiH", conn_id, action, tid, info_hash, peer_id,
                       downloaded, left, uploaded, event, ip, key, numwant, port)


def pack_scrape(conn_id, tid, hashes):
    return struct.pack(">QII", conn_id, ACT_SCRAPE, tid) + b"".join(hashes)


def parse_error(reply):
    """(transaction id, message text) of an action-3 reply, or raise."""
    if len(reply) < 8:
        raise ProtocolError("reply of %d bytes" % len(reply))
    action, tid = struct.unpack(">II", reply[:8])
    if action != ACT_ERROR:
        raise ProtocolError("expected an error reply, got action %d: %r" % (action, reply[:64]))
    return tid, reply[8:].decode("utf-8", "replace")


class UdpTracker:
    """One client socket toward one BEP 15 tracker address. family is 4 or 6."""

    def __init__(self, host, port, family=4, timeout=2.0):
        self.addr = (host, port)
        self.family = family
        self.timeout = timeout
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.sock = socket.socket(af, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if family == 4 else "::1", 0))
        self.rng = random.Random()
        self.conn_id = None

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def new_tid(self):
        return self.rng.getrandbits(32)

    def send(self, pkt):
        self.sock.sendto(pkt, self.addr)

    def recv(self, timeout):
        """One datagram from the tracker, or None if none arrives within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            af = self.sock.family
            if socket.inet_pton(af, src[0]) == socket.inet_pton(af, self.addr[0]) \
                    and src[1] == self.addr[1]:
                return data

    def request(self, pkt, tid, tries=3):
        """Send pkt and return the first reply carrying tid (resent up to tries times)."""
        for _ in range(tries):
            self.send(pkt)
            deadline = time.monotonic() + self.timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                data = self.recv(left)
                if data is None:
                    break
                if len(data) >= 8 and struct.unpack(">I", data[4:8])[0] == tid:
                    return data
        raise TimeoutError("no reply from %s:%d to a %d-byte request" %
                           (self.addr[0], self.addr[1], len(pkt)))

    def connect_raw(self, tid=None, magic=PROTOCOL_ID):
        tid = self.new_tid() if tid is None else tid
        return tid, self.request(pack_connect(tid, magic), tid)

    def connect(self):
        """Get a connection id (kept as self.conn_id and returned)."""
        tid, reply = self.connect_raw()
        if len(reply) != 16:
            raise ProtocolError("connect reply of %d bytes: %r" % (len(reply), reply))
        action, rtid, cid = struct.unpack(">IIQ", reply)
        if action != ACT_CONNECT or rtid != tid:
            raise ProtocolError("connect reply action %d tid %#x: %r" % (action, rtid, reply))
        self.conn_id = cid
        return cid

    def announce_raw(self, info_hash, peer_id, port, conn_id=None, extra=b"", **kw):
        if conn_id is None:
            conn_id = self.conn_id if self.conn_id is not None else self.connect()
        tid = self.new_tid()
        pkt = pack_announce(conn_id, tid, info_hash, peer_id, port, **kw) + extra
        return tid, self.request(pkt, tid)

    def announce(self, info_hash, peer_id, port, **kw):
        """Announce; returns dict(interval, leechers, seeders, peers=[(ip, port)], raw)."""
        tid, reply = self.announce_raw(info_hash, peer_id, port, **kw)
        return self.parse_announce(reply, tid)

    def parse_announce(self, reply, tid):
        if len(reply) >= 8 and struct.unpack(">I", reply[:4])[0] == ACT_ERROR:
            raise ProtocolError("announce refused: %r" % parse_error(reply)[1])
        if len(reply) < 20:
            raise ProtocolError("announce reply of %d bytes" % len(reply))
        action, rtid, interval, leechers, seeders = struct.unpack(">IIIII", reply[:20])
        if action != ACT_ANNOUNCE or rtid != tid:
            raise ProtocolError("announce reply action %d tid %#x" % (action, rtid))
        return {"interval": interval, "leechers": leechers, "seeders": seeders,
                "peers": parse_peers(reply[20:], self.family), "raw": reply}

    def scrape_raw(self, hashes, conn_id=None):
        if conn_id is None:
            conn_id = self.conn_id if self.conn_id is not None else self.connect()
        tid = self.new_tid()
        return tid, self.request(pack_scrape(conn_id, tid, hashes), tid)

    def scrape(self, hashes, conn_id=None):
        """Scrape; returns [(seeders, completed, leechers)] in request order."""
        tid, reply = self.scrape_raw(hashes, conn_id)
        if len(reply) >= 8 and struct.unpack(">I", reply[:4])[0] == ACT_ERROR:
            raise ProtocolError("scrape refused: %r" % parse_error(reply)[1])
        if len(reply) != 8 + 12 * len(hashes):
            raise ProtocolError("scrape reply of %d bytes for %d hashes" %
                                (len(reply), len(hashes)))
        action, rtid = struct.unpack(">II", reply[:8])
        if action != ACT_SCRAPE or rtid != tid:
            raise ProtocolError("scrape reply action %d tid %#x" % (action, rtid))
        return [struct.unpack(">III", reply[8 + 12 * i:20 + 12 * i]) for i in range(len(hashes))]


# ---- HTTP ------------------------------------------------------------------------------------


def q(b):
    """Percent-encode bytes or text for a query value, every reserved byte escaped."""
    if isinstance(b, str):
        b = b.encode()
    return urllib.parse.quote_from_bytes(b, safe="")


def announce_target(info_hash=None, peer_id=None, port=None, left=None, event=None,
                    compact=None, numwant=None, extra=None, path="/announce"):
    """GET target for an announce; None leaves a parameter out. extra: list of raw k=v text."""
    parts = []
    if info_hash is not None:
        parts.append("info_hash=" + q(info_hash))
    if peer_id is not None:
        parts.append("peer_id=" + q(peer_id))
    if port is not None:
        parts.append("port=%s" % port)
    parts.append("uploaded=0")
    parts.append("downloaded=0")
    if left is not None:
        parts.append("left=%s" % left)
    if event is not None:
        parts.append("event=" + event)
    if compact is not None:
        parts.append("compact=%s" % compact)
    if numwant is not None:
        parts.append("numwant=%s" % numwant)
    parts.extend(extra or [])
    return path + "?" + "&".join(parts)


def scrape_target(hashes):
    return "/scrape?" + "&".join("info_hash=" + q(h) for h in hashes)


def get_request(target, host="tracker", version="1.1", headers=()):
    lines = ["GET %s HTTP/%s" % (target, version), "Host: %s" % host]
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpResponse:
    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.headers = headers  # {lower-case name: value}
        self.body = body
        self.head = head  # the raw head, up to and including the blank line

    def bencoded(self):
        return bdecode(self.body)

    def __repr__(self):
        return "<HTTP %d %r body=%r>" % (self.status, self.reason, self.body[:200])


class HttpConn:
    """A raw HTTP/1.x client connection: send bytes, read whole responses, detect EOF."""

    def __init__(self, host, port, timeout=3.0):
        af = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(af, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete HTTP response within the bound (have %r)" %
                               self.buf[:200])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete HTTP response within the bound (have %r)" %
                               self.buf[:200])
        if not chunk:
            raise EOFError("connection closed by the server (have %r)" % self.buf[:200])
        self.buf += chunk

    def read_response(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.index(b"\r\n\r\n") + 4
        head = self.buf[:end]
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, status, reason = lines[0].split(" ", 2)
        if version != "HTTP/1.1":
            raise ProtocolError("status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() in headers:
                raise ProtocolError("header %s twice" % name)
            headers[name.lower()] = value.strip()
        if "content-length" not in headers:
            raise ProtocolError("no Content-Length in %r" % head)
        n = int(headers["content-length"])
        while len(self.buf) < end + n:
            self._fill(deadline)
        body = self.buf[end:end + n]
        self.buf = self.buf[end + n:]
        return HttpResponse(int(status), reason, headers, body, head)

    def wait_eof(self, timeout):
        """True if the server closes (FIN or reset) within timeout with no further bytes;
        False on timeout. Bytes that do arrive are kept in self.buf and make it return False."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
            return False

    def pipelined_until_eof(self, reqs, checks, n, half_close=False):
        """Send reqs in one write (then shut our side if half_close); checks[k] verifies the
        k-th answer, for the first n in order; then the server must close with no byte after
        the last answer (after the Connection: close one, or after the half-close)."""
        self.send(reqs)
        if half_close:
            self.sock.shutdown(socket.SHUT_WR)
        for k in range(n):
            checks[k](self.read_response())
        after = "the half-close" if half_close else "the Connection: close answer"
        check(self.wait_eof(3), "connection not closed after %s" % after)
        eq(self.buf, b"", "bytes after %s" % after)


def http_get(host, port, target, headers=(), timeout=3.0):
    """One GET on a fresh connection; returns the HttpResponse."""
    with HttpConn(host, port, timeout) as c:
        c.send(get_request(target, headers=headers))
        return c.read_response()


# ---- processes -------------------------------------------------------------------------------


def have_ipv6_loopback():
    """True if ::1 can be bound; SHOAL_TEST_NO_IPV6=1 says no (to see a machine without it)."""
    if os.environ.get("SHOAL_TEST_NO_IPV6", "") not in ("", "0"):
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(ipv6=False, count=1):
    """A port number free for UDP and TCP on 127.0.0.1 (and ::1 if ipv6) right now; with count > 1
    the count - 1 ports after it are free for TCP too (a shoal-node's workers: one port each)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            if port + count - 1 > 65535:
                continue
            socks = []
            try:
                for af, host in [(socket.AF_INET, "127.0.0.1")] + (
                        [(socket.AF_INET6, "::1")] if ipv6 else []):
                    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                        if af == socket.AF_INET and kind == socket.SOCK_STREAM:
                            continue
                        s = socket.socket(af, kind)
                        socks.append(s)
                        s.bind((host, port))
                for k in range(1, count):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.bind(("127.0.0.1", port + k))
                return port
            except OSError:
                continue
            finally:
                for s in socks:
                    s.close()
    raise RuntimeError("no free port found")


def cpu_seconds(pid):
    """User + system CPU time process pid has used so far, all its threads (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid, key):
    """A kB field of /proc/pid/status (VmRSS, VmHWM, ...); 0 if it is not there."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Daemon:
    """A tracker process on loopback: started by start(), stopped by stop() (its own PID only).

    argv_fn(port) gives the command line for a chosen port; stderr goes to a temp file that
    stderr_text() reads (shown by tests on failure)."""

    def __init__(self, name, argv_fn, ipv6=False, env=None, preexec_fn=None):
        self.name = name
        self.argv_fn = argv_fn
        self.ipv6 = ipv6
        self.env = env
        self.preexec_fn = preexec_fn
        self.proc = None
        self.port = None
        self.errfile = None
        self.returncode = None

    def start(self, ready_timeout=10.0, attempts=3):
        last = ""
        for _ in range(attempts):
            self.port = free_port(self.ipv6)
            self.errfile = tempfile.NamedTemporaryFile(prefix="shoal-%s-" % self.name,
                                                       suffix=".log", delete=False)
            self.proc = subprocess.Popen(self.argv_fn(self.port), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self.errfile,
                                         env=self.env, preexec_fn=self.preexec_fn)
            if self._wait_ready(ready_timeout):
                return self
            last = self.stderr_text()
            self.stop(kill_only=True)
        raise RuntimeError("%s did not start: %s" % (self.name, last[-2000:]))

    def _wait_ready(self, timeout):
        """Poll until a TCP connect succeeds, then one UDP connect is answered (the sockets are
        all bound before the listener accepts, so a single UDP connect suffices)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        with UdpTracker("127.0.0.1", self.port, timeout=max(0.5, deadline - time.monotonic())) \
                as u:
            try:
                # One try, one long wait: a datagram queued before the workers run is still
                # answered, and a second one would be counted twice by the tracker.
                u.request(pack_connect(1), 1, tries=1)
            except TimeoutError:
                return False
        return self.proc.poll() is None

    def stderr_text(self):
        if not self.errfile:
            return ""
        with open(self.errfile.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=10.0, sig=signal.SIGTERM):
        """Send sig, then wait up to timeout; returns the exit code (None if it did not exit)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, kill_only=False):
        """Stop by PID: SIGTERM with a bound, then SIGKILL. Removes the log file."""
        if self.proc is not None:
            if self.proc.poll() is None and not kill_only:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.returncode = self.proc.returncode
        if self.errfile:
            self.errfile.close()
            try:
                os.unlink(self.errfile.name)
            except OSError:
                pass
            self.errfile = None


# ---- assertions shared by the integration tests ----------------------------------------------

class Skip(Exception):
    """Raised by a test that cannot run on this machine (e.g. no IPv6 loopback)."""


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def poll(cond, timeout, step=0.05, what="condition"):
    """Call cond() until it returns a true value (returned) or timeout seconds pass (raise)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(step)
