#!/usr/bin/env python3
"""Hostile-client measurements against a running nudged (docs/bench.md, issue #14 point 8).

  hostile.py patterns WS_PORT PID [CONNS]   RSS cost of 1,024 distinct 254-byte patterns per
                                            connection, and RSS after the connections close
  hostile.py replay WS_PORT PUB_PORT        bytes the broker writes for a stream of sub/unsub
                                            with resume + replay all, per byte sent
  hostile.py fanin WS_PORT PUB_PORT N CONNS publish latency with N patterns matching one
                                            16-segment topic, spread over CONNS connections
Only loopback; plain sockets, JSON subprotocol."""
import base64, json, os, socket, struct, sys, time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class WS:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.s.recv(4096)
            if not d:
                raise IOError("closed in handshake")
            buf += d
        self.status = int(buf.split(b" ")[1])
        self.buf = buf.split(b"\r\n\r\n", 1)[1]
        self.rx_bytes = 0

    def send(self, obj):
        p = json.dumps(obj, separators=(",", ":")).encode()
        hdr = bytes([0x81])
        n = len(p)
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = b"\0\0\0\0"
        self.s.sendall(hdr + mask + p)
        return len(hdr) + 4 + n

    def recv(self, timeout=5.0):
        self.s.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                off = 2
                if n == 126:
                    if len(self.buf) < 4: n = None
                    else: n = struct.unpack(">H", self.buf[2:4])[0]; off = 4
                elif n == 127:
                    if len(self.buf) < 10: n = None
                    else: n = struct.unpack(">Q", self.buf[2:10])[0]; off = 10
                if n is not None and len(self.buf) >= off + n:
                    op = self.buf[0] & 0x0F
                    p = self.buf[off:off + n]
                    self.buf = self.buf[off + n:]
                    if op == 8:
                        return {"type": "close", "code": struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005}
                    if op in (1, 2):
                        return json.loads(p)
                    continue
            d = self.s.recv(1 << 16)
            if not d:
                return None
            self.rx_bytes += len(d)
            self.buf += d

    def drain(self, secs):
        """Count bytes arriving for secs seconds."""
        end = time.time() + secs
        self.s.settimeout(0.05)
        while time.time() < end:
            try:
                d = self.s.recv(1 << 20)
                if not d:
                    break
                self.rx_bytes += len(d)
            except socket.timeout:
                pass

    def hello(self):
        self.send({"type": "hello", "v": 1})
        return self.recv()


def pat(i):
    # 127 one-byte segments, the first distinct per pattern: no sharing in the trie.
    first = format(i, "x")
    segs = [first] + ["a"] * 125 + ["*"]
    s = ":".join(segs)
    return s[:254 - 2] + ":*" if len(s) > 254 else s


def patterns(port, pid, conns):
    before = rss_kib(pid)
    ws = []
    t0 = time.time()
    refused = 0
    for c in range(conns):
        w = WS(port)
        w.hello()
        for k in range(0, 1024, 64):
            w.send({"type": "sub", "id": k, "topics": [f"{c}x" + pat(i)[1:] if False else pat(c * 1024 + i) for i in range(k, k + 64)]})
        got = 0
        while got < 1024:
            m = w.recv()
            if m is None: break
            if m.get("type") == "error": refused += 1
            if m.get("type") in ("subscribed", "error"): got += 1
        ws.append(w)
    t1 = time.time()
    held = rss_kib(pid)
    for w in ws:
        w.s.close()
    time.sleep(1.0)
    after = rss_kib(pid)
    print(json.dumps({"conns": conns, "patterns_per_conn": 1024, "pattern_bytes": len(pat(0)),
                      "refused": refused, "secs": round(t1 - t0, 2), "rss_before_kib": before,
                      "rss_held_kib": held, "rss_after_close_kib": after,
                      "mib_per_conn": round((held - before) / 1024 / conns, 2)}))


def mp(o):
    """A minimal msgpack encoder (maps, arrays, str, non-negative int): no extra package."""
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(mp(k) + mp(v) for k, v in o.items())
    if isinstance(o, list):
        return bytes([0x90 | len(o)]) + b"".join(mp(v) for v in o)
    if isinstance(o, str):
        b = o.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else bytes([0xD9, len(b)]) if len(b) < 256
                else b"\xda" + struct.pack(">H", len(b))) + b
    if isinstance(o, int):
        return bytes([o]) if o < 128 else b"\xcf" + struct.pack(">Q", o)
    raise TypeError(o)


def pub_frame(obj):
    b = mp(obj)
    return struct.pack(">I", len(b)) + b


def publisher(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(pub_frame({"type": "hello", "v": 1}))
    s.recv(4096)
    return s


def wait_ack(s):
    """Read until a frame holding an ack arrives (the frames are tiny: no decoding needed)."""
    buf = b""
    while True:
        buf += s.recv(4096)
        while len(buf) >= 4:
            n = struct.unpack(">I", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            body, buf = buf[4:4 + n], buf[4 + n:]
            if b"ack" in body:
                return


def publish(s, topic, i, data=None):
    m = {"type": "pub", "id": i, "topics": [topic]}
    if data is not None:
        m["data"] = data
    s.sendall(pub_frame(m))


def replay(ws_port, pub_port, seconds=2.0):
    p = publisher(pub_port)
    for i in range(64):
        publish(p, "r:t", i + 1, "x" * 900)
    time.sleep(0.3)
    w = WS(ws_port)
    hello = w.hello()
    epoch = hello["epoch"]
    sent = 0
    rx0 = w.rx_bytes
    t0 = time.time()
    n = 0
    while time.time() - t0 < seconds:
        sent += w.send({"type": "sub", "id": n, "topics": ["r:t"],
                        "resume": {"epoch": epoch, "seqs": {"r:t": 0}, "replay": "all"}})
        sent += w.send({"type": "unsub", "id": n, "topics": ["r:t"]})
        n += 1
        w.drain(0.0)
        if sent > 6 * 1024:
            break
    w.drain(1.5)
    got = w.rx_bytes - rx0
    print(json.dumps({"requests": n, "sent_bytes": sent, "received_bytes": got,
                      "amplification": round(got / max(sent, 1), 1)}))


def fanin(ws_port, pub_port, npat, conns, pubs=200):
    topic = ":".join(["s"] * 16)
    # distinct patterns matching s:s:...:s (16 segments): each segment s or *; with MAXSTARS set,
    # every pattern of at most that many '*' (and the "prefix:**" ones), repeated over the
    # connections to reach npat (the worst a broker with --max-pattern-stars allows)
    maxstars = int(os.environ.get("MAXSTARS", "0"))
    distinct = []
    if maxstars:
        for i in range(1 << 16):
            if bin(i).count("1") <= maxstars:
                distinct.append(":".join("*" if b == "1" else "s" for b in format(i, "016b")))
        for L in range(1, 16):
            for i in range(1 << L):
                if bin(i).count("1") <= maxstars:
                    distinct.append(":".join(["*" if b == "1" else "s" for b in format(i, f"0{L}b")] + ["**"]))
    else:
        distinct = [":".join("*" if b == "1" else "s" for b in format(i, "016b")) for i in range(npat)]
    per = (npat + conns - 1) // conns
    pats = [distinct[(c * per + k) % len(distinct)] for c in range(conns) for k in range(per)]
    ws = []
    refused = 0
    for c in range(conns):
        w = WS(ws_port)
        w.hello()
        mine = pats[c * per:(c + 1) * per]
        for k in range(0, len(mine), 64):
            w.send({"type": "sub", "id": k, "topics": mine[k:k + 64]})
        got = 0
        while got < len(mine):
            m = w.recv(10)
            if m is None: break
            if m.get("type") == "error": refused += 1
            if m.get("type") in ("subscribed", "error"): got += 1
        ws.append(w)
    p = publisher(pub_port)
    lat = []
    for i in range(pubs):
        t = time.perf_counter()
        publish(p, topic, i + 1)
        wait_ack(p)
        # the hint at the last connection: the whole fan-out is done
        while True:
            m = ws[-1].recv(10)
            if m is None or m.get("type") == "hint": break
        lat.append((time.perf_counter() - t) * 1000)
        for w in ws[:-1]:
            w.drain(0)
    lat.sort()
    print(json.dumps({"patterns": npat, "conns": conns, "refused": refused,
                      "ack_ms_p50": round(lat[len(lat) // 2], 3), "ack_ms_p99": round(lat[int(len(lat) * .99)], 3)}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "patterns":
        patterns(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    elif cmd == "replay":
        replay(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "fanin":
        fanin(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
