# SPDX-License-Identifier: MIT
"""clusterlib: start and stop the processes of a shoal cluster on loopback, for tests.

  - Redis: a private redis-server on a free loopback port, no persistence, in a temp dir; it
    can be paused (SIGSTOP/SIGCONT) and restarted empty on the same port, and RespConn talks
    RESP to it (whole replies parsed: bulk strings, arrays, integers, errors);
  - Node: one shoal-node (ZeroMQ ROUTER on a free loopback port), with --redis or --nodes;
  - a gateway is a trackerclient.Daemon (it has UDP and HTTP ports a client can probe);
  - wait_until(), wait_for_log(): bounded polls of a condition, of a process's stderr file;
  - Background: a thread beside the steps (load, probes) whose exception fails the test;
  - the runner every integration suite shares: step_list() (the @test decorator),
    preflight() (binaries, redis-server, SIGTERM), run_steps() (one line per step, a
    summary, exit 0 / 1 / 77 when a step skipped), stderr_tail() (a process's log on failure).

Invariant: every process is started with PR_SET_PDEATHSIG (it dies with the test), stopped by
its own PID (SIGTERM with a bound, then SIGKILL), and every wait is a bounded poll.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from trackerclient import Skip, check, cpu_seconds, free_port

PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the process that started it exits, and starts
    with no signal blocked (a caller waiting in sigtimedwait() blocks some; exec keeps masks)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def wait_until(cond, timeout, step=0.02):
    """Poll cond() until it is truthy or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def tcp_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Proc:
    """A child process with stderr in a temp file (or, with inherit_stderr, ours); stop() ends
    it by PID."""

    def __init__(self, name, argv, env=None, inherit_stderr=False):
        self.name = name
        self.argv = argv
        self.errfile = None if inherit_stderr else tempfile.NamedTemporaryFile(
            prefix="shoal-%s-" % name, suffix=".log", delete=False)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.errfile, env=env, preexec_fn=die_with_parent)
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        if not self.errfile:
            return ""
        with open(self.errfile.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def send(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def terminate(self, timeout=10.0):
        """SIGTERM and its exit code; if it has not exited within timeout seconds, SIGKILL it
        and raise AssertionError (a clean stop is what the caller is testing)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
            return self.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("%s did not exit within %g s of SIGTERM" % (self.name, timeout))

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """sig, wait up to timeout, then SIGKILL. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        return self.returncode

    def cleanup(self):
        self.stop()
        if not self.errfile:
            return
        self.errfile.close()
        try:
            os.unlink(self.errfile.name)
        except OSError:
            pass


def wait_for_log(proc, text, timeout, count=1):
    """True once text occurs at least count times in proc's stderr within timeout seconds."""
    return bool(wait_until(lambda: proc.log().count(text) >= count, timeout, 0.05))


class Redis:
    """A private redis-server: loopback only, no snapshots, no AOF. wrap is a command it runs
    under (e.g. taskset -c CORES, for the benchmarks)."""

    def __init__(self, exe=None, wrap=()):
        self.exe = exe or shutil.which("redis-server")
        if not self.exe:
            raise RuntimeError("redis-server is not installed (deploy/install-deps.sh test)")
        self.wrap = list(wrap)
        self.dir = None
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0, port=None):
        """Start on a free port (three tries), or on port (one try: e.g. a port a process under
        test was already given while nothing listened there)."""
        self.dir = tempfile.mkdtemp(prefix="shoal-redis-")
        for _ in range(1 if port else 3):
            self.port = port or free_port()
            self.proc = self._spawn()
            if wait_until(lambda: not self.proc.alive() or self.ping(), timeout, 0.05) and \
                    self.proc.alive():
                return self
            self.proc.cleanup()
        raise RuntimeError("redis-server did not start: %s" % self.proc.log()[-1000:])

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args, timeout=5.0):
        """One command on a fresh connection; the raw reply bytes, read until they end a line
        (enough for tests that look at a short reply)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(RespConn.encode(args))
            data = b""
            deadline = time.monotonic() + timeout
            while not data.endswith(b"\r\n") and time.monotonic() < deadline:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
            return data

    def text(self, *args):
        """call() with bulk strings decoded, in arrays too."""
        def dec(v):
            if isinstance(v, bytes):
                return v.decode()
            return [dec(x) for x in v] if isinstance(v, list) else v
        return dec(self.call(*args))

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def _spawn(self):
        return Proc("redis", self.wrap + [
            self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no", "--loglevel",
            "warning"])

    def call(self, *args, timeout=2.0):
        """One command on a fresh connection; the parsed reply (RespError on an error reply)."""
        with RespConn(self.port, timeout) as c:
            return c.call(*args)

    def conn(self, timeout=2.0):
        """A RespConn to this server (the caller closes it)."""
        return RespConn(self.port, timeout)

    def pause(self):
        """SIGSTOP the server: connections are accepted by the kernel, nothing is answered."""
        self.proc.send(signal.SIGSTOP)

    def resume(self):
        self.proc.send(signal.SIGCONT)

    def restart(self, timeout=10.0):
        """SIGKILL the server and start a new, empty one on the same port (it keeps no data)."""
        self.proc.stop(signal.SIGKILL)
        self.proc.cleanup()
        deadline = time.monotonic() + timeout
        while True:
            self.proc = self._spawn()
            if wait_until(lambda: not self.proc.alive() or self.ping(), 2.0, 0.02) and \
                    self.proc.alive():
                return self
            # The port may still be held for a moment by the old process's sockets.
            log = self.proc.log()
            self.proc.cleanup()
            if time.monotonic() >= deadline:
                raise RuntimeError("redis-server did not restart on port %d: %s" %
                                   (self.port, log[-1000:]))
            time.sleep(0.1)

    def stop(self):
        if self.proc:
            self.proc.cleanup()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class RespError(Exception):
    """An error reply from Redis."""


class RespConn:
    """A blocking RESP2 connection to 127.0.0.1:port: call() sends one command and parses its
    whole reply; pipeline() sends several and returns their replies in order (an error reply is
    returned as a RespError instance there, not raised)."""

    def __init__(self, port, timeout=2.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(args):
        parts = [x.encode() if isinstance(x, str) else (b"%d" % x if isinstance(x, int) else x)
                 for x in args]
        return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a)
                                                  for a in parts)

    def _line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _more(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("redis closed the connection")
        self.buf += chunk

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._more()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError("unexpected reply line %r" % line[:80])

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self.encode(c) for c in commands))
        return [self._reply() for _ in commands]

    def call(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RespError):
            raise r
        return r


class Node:
    """One shoal-node. membership is ("redis", url) or ("nodes", "ID=tcp://...,...")."""

    def __init__(self, exe, node_id, membership, port=None, extra=(), inherit_stderr=False,
                 workers=1, log_level="info"):
        self.exe = exe
        self.id = node_id
        self.membership = membership
        self.port = port or free_port(count=workers)  # worker i listens on port + i
        self.extra = list(extra)
        self.inherit_stderr = inherit_stderr
        self.workers = workers
        self.log_level = log_level
        self.proc = None

    @property
    def endpoint(self):
        return "tcp://127.0.0.1:%d" % self.port

    @property
    def advert(self):
        """What the node publishes as its endpoint: with several workers, their count too."""
        return self.endpoint + ("|workers=%d" % self.workers if self.workers > 1 else "")

    def argv(self):
        kind, value = self.membership
        return [self.exe, "--id", self.id, "--bind", self.endpoint, "--" + kind, value,
                "--workers", str(self.workers), "--log-level", self.log_level] + self.extra

    def start(self, timeout=10.0):
        """Start (again, after a stop: same id and port) and wait until it listens."""
        if self.proc:
            self.proc.cleanup()
        self.proc = Proc("node-" + self.id, self.argv(), inherit_stderr=self.inherit_stderr)
        if not wait_until(lambda: not self.proc.alive() or tcp_open(self.port), timeout):
            raise RuntimeError("node %s did not listen: %s" % (self.id, self.proc.log()[-2000:]))
        if not self.proc.alive():
            raise RuntimeError("node %s exited %s: %s" % (self.id, self.proc.proc.returncode,
                                                         self.proc.log()[-2000:]))
        return self

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def stderr_text(self):
        return self.proc.log() if self.proc else ""

    def terminate(self, timeout=10.0):
        """SIGTERM: the exit code, or AssertionError if it takes longer than timeout."""
        return self.proc.terminate(timeout)

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig) if self.proc else None

    def cleanup(self):
        if self.proc:
            self.proc.cleanup()


class Background(threading.Thread):
    """A daemon thread a test runs beside its steps (load, probes, samplers): loop() runs until
    stop_flag is set; an exception in it is printed and kept, and finish() stops the thread and
    fails the test with it, naming the thread by `what`."""

    what = "background thread"

    def __init__(self):
        super().__init__(daemon=True)
        self.stop_flag = threading.Event()
        self.exc = None

    def loop(self):
        raise NotImplementedError

    def run(self):
        try:
            self.loop()
        except Exception as e:
            self.exc = e  # for finish()
            raise  # and printed now, by threading.excepthook

    def finish(self):
        self.stop_flag.set()
        self.join(10)
        check(self.exc is None, "%s failed: %r" % (self.what, self.exc))


# ---- the runner the integration suites share ------------------------------------------------

SKIPPED = 77  # the exit code ctest's SKIP_RETURN_CODE takes for "skipped"


def sanitized(path):
    """True if the binary at path was built with ASan/UBSan (its runtime's symbols are in it)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__ubsan_handle" in data


def sanitizer_report(text):
    """The first line of an ASan/UBSan/LSan report in a process's stderr, or None."""
    for line in text.splitlines():
        if "Sanitizer" in line or "runtime error:" in line:
            return line
    return None


def step_list():
    """(steps, test): an empty list of (name, fn) steps and a decorator that appends a function
    to it under its own name, so the steps run in the order the file defines them."""
    steps = []

    def test(fn):
        steps.append((fn.__name__, fn))
        return fn
    return steps, test


def preflight(binaries, redis=True):
    """What a suite's main() checks before any step: returns 2 if a binary is not executable,
    SKIPPED if redis is wanted and redis-server is not installed (printed; the suite is skipped,
    which tests/run.sh does not count as a pass), else None, after making SIGTERM (ctest's
    timeout) unwind through the finally blocks that stop the processes."""
    for p in binaries:
        if not os.access(p, os.X_OK):
            print("not executable: %s" % p)
            return 2
    if redis and not shutil.which("redis-server"):
        print("SKIP: redis-server is not installed (apt-get install redis-server)")
        return SKIPPED
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return None


def stderr_tail(name, pid, text, lines=25, note=""):
    """A process's stderr for a failure report: a title line, then its last lines."""
    return "---- stderr of %s (pid %s%s) ----\n%s" % (name, pid, note,
                                                     "\n".join(text.splitlines()[-lines:]))


def run_steps(tests, only, logs, stop_all, t_start=None):
    """Run the ordered (name, fn) steps whose name contains `only` (all if empty); a step that
    raises Skip is skipped, any other exception fails it and prints logs(). stop_all() runs at the
    end whatever happens. Prints one line per step and a summary; returns the exit code: 1 if any
    step failed, else SKIPPED (77) if any step was skipped (every other step still ran), else 0.
    A skip is never a pass: ctest shows the suite as skipped and tests/run.sh fails on it unless
    the suite is in SHOAL_ALLOW_SKIP."""
    t_start = time.monotonic() if t_start is None else t_start
    passed = failed = skipped = 0
    try:
        for name, fn in tests:
            if only and only not in name:
                continue
            t0 = time.monotonic()
            try:
                fn()
            except Skip as e:
                skipped += 1
                print("SKIP %s: %s" % (name, e), flush=True)
                continue
            except Exception:
                failed += 1
                print("FAIL %s (%.2f s)" % (name, time.monotonic() - t0))
                traceback.print_exc(file=sys.stdout)
                print(logs())
                continue
            passed += 1
            print("ok   %s (%.2f s)" % (name, time.monotonic() - t0), flush=True)
    finally:
        stop_all()
    print("%.1f s" % (time.monotonic() - t_start))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if failed:
        return 1
    if skipped:
        print("exit %d: %d step%s skipped (a skip is not a pass)" % (
            SKIPPED, skipped, "" if skipped == 1 else "s"))
        return SKIPPED
    return 0
