"""What the threaded Publisher and the AsyncPublisher share: options, the buffer, ack matching,
stats and the outage log, with no I/O and no locking (the callers hold their lock or run on
their event loop).

Every publish is an _Item holding its encoded frame. It waits in `pending` (not written yet),
then in `inflight` (written on the current connection, ack not read yet; an insertion-ordered
dict by id, because acks come in order but a dropped item leaves a hole). A lost connection
puts `inflight` back in front of `pending`, so the buffer is flushed in order on the next one
(a publish whose ack was lost may reach the broker twice: a hint is an invalidation, so a
duplicate costs a refetch, a loss a stale cache). The bound counts both; past it the oldest
is dropped. An item's caller is told its outcome once (`notify`): the ack, a refusal, "down",
"dropped"; the item itself may stay buffered after its caller stopped waiting.
"""

import collections
import itertools
import logging
import os
import random
import ssl
import time

from . import _wire

__version__ = "0.1.0"

BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
PING_INTERVAL = 30.0  # well under the broker's --pub-idle (120 s)
BATCH_BYTES = 256 << 10  # bytes of frames taken for one write
REFUSAL_LOG_INTERVAL = 10.0


class NudgeError(Exception):
    """A publish with wait=True that did not get its ack: code is the broker's error code
    (docs/protocol.md §Errors), or 0 for a local cause (timeout, broker down, dropped, closed)."""

    def __init__(self, code, msg):
        super().__init__("%s (%d): %s" % (_wire.error_name(code) if code else "nudge", code, msg))
        self.code = code
        self.msg = msg


def parse_address(address):
    if isinstance(address, (tuple, list)):
        host, port = address
        return str(host), int(port)
    address = str(address)
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or 7400)
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, 7400
    return host, int(port)


def tls_context(tls, host):
    """(SSLContext or None, server_hostname) from the tls option: None/False, True, a dict
    {ca, servername}, or an ssl.SSLContext."""
    if not tls:
        return None, None
    if isinstance(tls, ssl.SSLContext):
        return tls, host
    if tls is True:
        return ssl.create_default_context(), host
    if isinstance(tls, dict):
        ctx = ssl.create_default_context(cafile=tls.get("ca"))
        return ctx, tls.get("servername") or host
    raise TypeError("tls must be True, a dict {ca, servername} or an ssl.SSLContext")


def check_topics(topics):
    if isinstance(topics, (str, bytes)) or not isinstance(topics, (list, tuple)):
        raise TypeError("topics must be a list of strings, e.g. ['project:17']")
    if not topics:
        raise ValueError("topics must name at least one topic")
    for t in topics:
        if not isinstance(t, str):
            raise TypeError("topics must be a list of strings, got %r" % (t,))
    return list(topics)


class Options:
    def __init__(self, address, key, tls, client, connect_timeout, ack_timeout, buffer_max, logger):
        self.host, self.port = parse_address(address)
        self.key = key if key is not None else os.environ.get("NUDGE_API_KEY")
        self.ssl, self.server_hostname = tls_context(tls, self.host)
        self.client = client or "nudge-python/" + __version__
        self.connect_timeout = float(connect_timeout)
        self.ack_timeout = float(ack_timeout)
        if int(buffer_max) < 1:
            raise ValueError("buffer_max must be at least 1")
        self.buffer_max = int(buffer_max)
        self.logger = logger or logging.getLogger("nudge")
        fmt = "[%s]:%d" if ":" in self.host else "%s:%d"
        self.name = fmt % (self.host, self.port)  # as in the log lines


class Item:
    __slots__ = ("id", "topics", "frame", "waiter", "outcome", "notified")

    def __init__(self, id_, topics, frame):
        self.id = id_
        self.topics = topics
        self.frame = frame
        self.waiter = None
        self.outcome = None
        self.notified = False


# Outcomes handed to a waiting caller.
OK, REFUSED, DOWN, DROPPED, CLOSED, TIMEOUT = "ok", "refused", "down", "dropped", "closed", "timeout"


def result(item, outcome, wait):
    """What publish() returns (or raises) for an outcome (kind, payload)."""
    kind, payload = outcome
    if kind == OK:
        return {t: s for t, s in zip(item.topics, payload)}
    if not wait:
        return None
    if kind == REFUSED:
        raise NudgeError(payload[0], payload[1])
    if kind == DOWN:
        raise NudgeError(payload[0], "broker unreachable: %s" % (payload[1],))
    msg = {
        DROPPED: "dropped from the buffer (buffer_max reached)",
        CLOSED: "publisher closed",
        TIMEOUT: "no ack within the ack timeout",
    }[kind]
    raise NudgeError(0, msg)


def build_frame(id_, topics, data, origin, skip_origin):
    msg = {"type": "pub", "id": id_, "topics": topics}
    if data is not None:
        msg["data"] = data
    if origin is not None:
        if not isinstance(origin, str):
            raise TypeError("origin must be a string (a subscriber's conn id)")
        msg["origin"] = origin
    if skip_origin:
        msg["skip_origin"] = True
    return _wire.encode(msg)  # TypeError for data msgpack cannot encode: a programmer error


class Core:
    """The buffer and the connection's protocol state. notify(item) wakes item's caller."""

    def __init__(self, opts, notify):
        self.o = opts
        self._notify = notify
        self.pending = collections.deque()
        self.inflight = collections.OrderedDict()
        self.ids = itertools.count(1)  # next() is atomic under the GIL: callers need no lock
        self.up = False  # welcome received on the current connection
        self.down = False  # in an outage: publishes return at once
        self.down_reason = None
        self.down_code = 0
        self.outage_start = 0.0
        self.outage_dropped = 0
        self.max_frame = 65536
        self.ping_id = None
        self.replies = []  # pongs to write
        self.last_rx = 0.0
        self.connected_once = False
        self.refusals_unlogged = 0
        self.refusal_logged_at = -1e9
        self.writes = 0  # socket writes (tests check pipelining with it)
        self.st = dict(sent=0, acked=0, dropped=0, refused=0, reconnects=0, outages=0)

    # ---- callers' side ----
    def new_item(self, topics, data, origin, skip_origin):
        """Encoded in the caller's thread, outside any lock."""
        id_ = next(self.ids)
        return Item(id_, topics, build_frame(id_, topics, data, origin, skip_origin))

    def add(self, item):
        """Buffer item, dropping the oldest past the bound."""
        while len(self.pending) + len(self.inflight) >= self.o.buffer_max:
            if self.inflight:
                _, old = self.inflight.popitem(last=False)
            else:
                old = self.pending.popleft()
            self.st["dropped"] += 1
            self.outage_dropped += 1
            self.tell(old, (DROPPED, None))
        self.pending.append(item)

    def stats(self):
        s = dict(self.st)
        s["buffered"] = len(self.pending) + len(self.inflight)
        return s

    def tell(self, item, outcome):
        if not item.notified:
            item.notified = True
            item.outcome = outcome
            self._notify(item)

    # ---- the I/O side ----
    def take_batch(self):
        """Frames of pending items up to BATCH_BYTES, moved to inflight; b'' when none."""
        if not self.up or not (self.pending or self.replies):
            return b""
        parts, size = self.replies, 0
        self.replies = []
        replies = len(parts)
        while self.pending and size < BATCH_BYTES:
            item = self.pending.popleft()
            if len(item.frame) - 4 > self.max_frame:
                size_ = len(item.frame) - 4
                why = "frame of %d bytes over max_frame %d" % (size_, self.max_frame)
                self.refuse(item, _wire.TOO_LARGE, why)  # sent, it would close the connection
                continue
            parts.append(item.frame)
            size += len(item.frame)
            self.inflight[item.id] = item
        self.st["sent"] += len(parts) - replies
        return b"".join(parts)

    def idle(self):
        return not self.pending and not self.inflight

    def on_welcome(self, msg):
        self.up = True
        self.max_frame = msg["max_frame"]  # checked by check_welcome
        if self.connected_once:
            self.st["reconnects"] += 1
        self.connected_once = True
        if self.down:
            self.o.logger.warning(
                "nudge: broker %s back after %.1f s; %d publishes flushed, %d dropped",
                self.o.name,
                time.monotonic() - self.outage_start,
                len(self.pending),
                self.outage_dropped,
            )
        self.down = False
        self.down_reason = None

    def on_message(self, msg, now):
        """Handle one message after welcome. Returns an error string when the connection must
        be dropped."""
        self.last_rx = now
        kind = msg.get("type")
        if kind == "ack":
            item = self.inflight.pop(msg.get("id"), None)
            if item is not None:
                self.st["acked"] += 1
                self.tell(item, (OK, msg.get("seqs") or []))
        elif kind == "error":
            code, text = msg.get("code", 0), msg.get("msg", "")
            if not msg.get("id"):  # not tied to a publish (bad_frame, too_large): closing
                return "%s (%s): %s" % (_wire.error_name(code), code, text)
            item = self.inflight.pop(msg.get("id"), None)
            if item is not None:  # else dropped from the buffer meanwhile
                self.refuse(item, code, text)
        elif kind == "pong":
            if msg.get("id") == self.ping_id:
                self.ping_id = None
        elif kind == "ping":
            self.replies.append(_wire.encode({"type": "pong", "id": msg.get("id", 0)}))
        return None

    def refuse(self, item, code, text):
        self.st["refused"] += 1
        self.tell(item, (REFUSED, (code, text)))
        now = time.monotonic()
        if now - self.refusal_logged_at >= REFUSAL_LOG_INTERVAL:
            more = ""
            if self.refusals_unlogged:
                more = " (%d more refused since the last line)" % self.refusals_unlogged
            self.o.logger.warning(
                "nudge: publish to %s refused by broker %s: %s (%d): %s%s",
                item.topics,
                self.o.name,
                _wire.error_name(code),
                code,
                text,
                more,
            )
            self.refusal_logged_at = now
            self.refusals_unlogged = 0
        else:
            self.refusals_unlogged += 1

    def on_lost(self):
        """The connection is gone: what it had in flight goes back in front of pending."""
        self.up = False
        self.ping_id = None
        self.replies = []
        if self.inflight:
            self.pending.extendleft(reversed(list(self.inflight.values())))
            self.inflight.clear()

    def on_down(self, reason, code=0):
        """A connection attempt failed: an outage starts (logged once), waiting callers are
        told at once; their publishes stay buffered. code: the broker's refusal (16)."""
        self.up = False
        self.down_reason = reason
        self.down_code = code
        if not self.down:
            self.down = True
            self.outage_start = time.monotonic()
            self.outage_dropped = 0
            self.st["outages"] += 1
            self.o.logger.warning(
                "nudge: broker %s unreachable (%s); buffering up to %d publishes",
                self.o.name,
                reason,
                self.o.buffer_max,
            )
        for item in self.pending:
            self.tell(item, (DOWN, (code, reason)))

    def on_close(self):
        """Closing: whoever still waits is told; what was never acked is said once."""
        left = len(self.inflight) + len(self.pending)
        if left:
            self.o.logger.warning("nudge: closed with %d publishes to %s not acked", left, self.o.name)
        for item in list(self.inflight.values()) + list(self.pending):
            self.tell(item, (CLOSED, None))

    def ping_frame(self):
        self.ping_id = next(self.ids)
        return _wire.encode({"type": "ping", "id": self.ping_id})


def backoff(attempt):
    """Full jitter: a random delay in [0, min(max, min * 2^attempt)]."""
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_MIN * (2 ** min(attempt, 16))))


def reason_of(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (TimeoutError,)) or type(exc).__name__ == "timeout":
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: certificate verify failed: %s" % (exc.verify_message or exc.reason)
    if isinstance(exc, ssl.SSLError):
        return "TLS: %s" % (exc.reason or exc)
    if isinstance(exc, _wire.ProtocolError):
        return "protocol: %s" % exc
    if isinstance(exc, Refused):
        return str(exc)
    return str(exc) or type(exc).__name__


class Refused(Exception):
    """hello answered with an error (e.g. 16 unauthorized)."""

    def __init__(self, code, text):
        super().__init__("%s (%d): %s" % (_wire.error_name(code), code, text))
        self.code = code


def check_welcome(msgs):
    """The first message after hello: welcome, or Refused."""
    msg = msgs[0]
    if msg.get("type") == "welcome":
        mf = msg.get("max_frame")
        if not isinstance(mf, int) or isinstance(mf, bool) or mf < 1:
            raise _wire.ProtocolError("welcome without a valid max_frame")
        return msg
    if msg.get("type") == "error":
        raise Refused(msg.get("code", 0), msg.get("msg", ""))
    raise _wire.ProtocolError("expected welcome, got %r" % (msg.get("type"),))
