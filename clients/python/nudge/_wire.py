"""The publisher protocol's framing (docs/protocol.md §Publisher protocol), with no I/O.

A frame is a 4-byte big-endian body length and one msgpack map. FrameReader takes bytes as
they arrive (a read may hold part of a frame or several) and hands back whole messages.
"""

import struct

import msgpack

HEADER = struct.Struct(">I")

# docs/protocol.md §Errors: numbers and names are stable.
ERROR_NAMES = {
    1: "bad_frame",
    2: "unknown_type",
    3: "bad_field",
    4: "too_large",
    5: "bad_topic",
    6: "bad_data",
    7: "too_many_topics",
    8: "bad_version",
    9: "hello_required",
    10: "too_many_subs",
    11: "not_subscribed",
    12: "unexpected",
    13: "internal",
    14: "limit",
    15: "storage",
    16: "unauthorized",
    17: "forbidden",
    18: "token_expired",
    19: "rate_limited",
    20: "over_budget",
}
UNAUTHORIZED = 16
TOO_LARGE = 4


def error_name(code):
    return ERROR_NAMES.get(code, "error")


def encode(msg):
    """One frame: the length prefix and the msgpack body of the map msg."""
    body = msgpack.packb(msg, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def hello(client, key):
    msg = {"type": "hello", "v": 1, "client": client}
    if key:
        msg["auth"] = key
    return encode(msg)


class ProtocolError(Exception):
    """The broker sent something that is not a frame of this protocol."""


class FrameReader:
    """Bytes in, decoded messages out; keeps an incomplete frame for the next feed."""

    MAX_FRAME = 16 << 20  # the broker's largest max_frame

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data):
        """Append data; return the list of whole messages it completes (maps)."""
        buf = self._buf
        buf += data
        out = []
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = HEADER.unpack_from(buf, pos)
            if n == 0 or n > self.MAX_FRAME:
                raise ProtocolError("bad frame length %d" % n)
            if end - pos - 4 < n:
                break
            try:
                msg = msgpack.unpackb(bytes(buf[pos + 4 : pos + 4 + n]), raw=False)
            except Exception as e:  # msgpack raises several types for bad input
                raise ProtocolError("bad msgpack body: %s" % e) from None
            if not isinstance(msg, dict):
                raise ProtocolError("frame body is not a map")
            out.append(msg)
            pos += 4 + n
        if pos:
            del buf[:pos]
        return out
