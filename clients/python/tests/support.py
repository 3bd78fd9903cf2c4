"""Test support: the real nudged on ephemeral loopback ports, restarted on the same port,
stopped (SIGSTOP) and continued; its /stats; bounded waits. Only the processes started here
are signalled, by PID. The binary comes from $NUDGE_BIN (a build directory), else the repo's
build/asan or build."""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import nudge._core  # noqa: E402

# Reconnects come within 0.3 s instead of up to 5 s, so an outage test takes a second, not
# ten. The backoff's shape is checked on its own (test_backoff).
nudge._core.BACKOFF_MAX = 0.3


def bin_dir():
    if os.environ.get("NUDGE_BIN"):
        return os.path.join(ROOT, os.environ["NUDGE_BIN"])
    for d in ("build/asan", "build"):
        if os.path.exists(os.path.join(ROOT, d, "nudged")):
            return os.path.join(ROOT, d)
    raise RuntimeError("no nudged: build it (make asan) or set NUDGE_BIN")


READY = re.compile(rb"nudged ready pub=(\S+):(\d+) ws=(\S+):(\d+) admin=(\S+):(\d+)")


class Broker:
    """nudged with --workers 1; persistent (--data-dir in a temp dir) so that seqs continue
    across a restart, unless memory=True. args: extra flags."""

    def __init__(self, args=(), memory=False):
        self.args = list(args)
        self.tmp = tempfile.mkdtemp(prefix="nudge-py-")
        self.memory = memory
        self.proc = None
        self.pub_port = 0
        self.start()

    def start(self):
        args = [
            os.path.join(bin_dir(), "nudged"),
            "--pub", "127.0.0.1:%d" % self.pub_port,
            "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--http", "127.0.0.1:0",
            "--workers", "1", "--log-level", "warn",
        ] + (["--memory"] if self.memory else ["--data-dir", os.path.join(self.tmp, "data")]) + self.args
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        self.err = open(os.path.join(self.tmp, "stderr"), "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, env=env)
        out, end = b"", time.monotonic() + 15
        while True:
            m = READY.search(out)
            if m:
                break
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError("nudged not ready: %s" % self.stderr())
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                out += chunk
        self.pub_port = int(m.group(2))
        self.admin_port = int(m.group(6))
        self.address = "127.0.0.1:%d" % self.pub_port

    def stderr(self):
        with open(os.path.join(self.tmp, "stderr"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM and wait (SIGKILL after 5 s)."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGCONT)  # in case it was stalled
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.err.close()
        self.proc = None

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc.stdout.close()
            self.err.close()
            self.proc = None

    def restart(self):
        """Stopped and started again on the same publisher port (and data directory)."""
        self.stop()
        self.start()

    def stall(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def stats(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.admin_port, timeout=5) as r:
            return json.load(r)

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(pred, timeout=10.0, what="condition"):
    """Poll pred every 10 ms until true; AssertionError after timeout."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.01)


def write_file(dirname, name, text):
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def self_signed(dirname, name="cert"):
    """A P-256 self-signed certificate for 127.0.0.1 and localhost: (cert, key) paths."""
    cert, key = os.path.join(dirname, name + ".pem"), os.path.join(dirname, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-keyout", key, "-out", cert, "-subj", "/CN=nudge-test",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


class FakeBroker:
    """A scripted publisher port: connection n (from 1) answers hello with welcomes[n-1] (raw
    bytes, or None for a good welcome), then acks every pub with seq n."""

    def __init__(self, welcomes):
        import socket
        import struct
        import threading

        import msgpack

        self._msgpack, self._struct = msgpack, struct
        self.welcomes = list(welcomes)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.address = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def frame(msg):
        import struct

        import msgpack

        body = msgpack.packb(msg)
        return struct.pack(">I", len(body)) + body

    def _accept(self):
        import threading

        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, len(self.conns)), daemon=True).start()

    def _serve(self, c, n):
        buf = b""
        good = {"type": "welcome", "v": 1, "epoch": "0" * 16, "server": "fake", "max_frame": 65536,
                "max_topics": 64, "max_data": 1024}
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
                while len(buf) >= 4:
                    (size,) = self._struct.unpack(">I", buf[:4])
                    if len(buf) < 4 + size:
                        break
                    m = self._msgpack.unpackb(buf[4 : 4 + size])
                    buf = buf[4 + size :]
                    if m["type"] == "hello":
                        w = self.welcomes[n - 1] if n <= len(self.welcomes) else None
                        c.sendall(w if w is not None else self.frame(good))
                    elif m["type"] == "pub":
                        c.sendall(self.frame({"type": "ack", "id": m["id"], "seqs": [n] * len(m["topics"])}))
        except OSError:
            return

    def close(self):
        self.srv.close()
        for c in self.conns:
            c.close()
