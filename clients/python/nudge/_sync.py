"""nudge.Publisher: the threaded publisher for WSGI apps (Flask, Django).

One background thread owns the socket: it connects (TLS, hello, welcome), reconnects with
backoff, writes what callers buffered and reads acks. Callers (request threads) only encode
their frame, append it to the shared buffer under one lock, wake the I/O thread through a
socketpair (one byte per batch, not per publish) and wait on their item's own lock for up to
ack_timeout. Pipelining comes from the I/O thread taking everything buffered in one write
while earlier publishes are still in flight; acks are matched by id (docs/protocol.md: they
come in order).
"""

import os
import selectors
import socket
import ssl
import threading
import time
import weakref

from . import _core, _wire
from ._core import CLOSED, DOWN, TIMEOUT, Core, Options, check_topics, result


class Publisher:
    """Publish hints to nudged from any thread. publish() never raises for a broker problem
    (it returns None) unless wait=True; see docs/clients.md §Python publisher."""

    def __init__(
        self,
        address="127.0.0.1:7400",
        *,
        key=None,
        tls=None,
        client=None,
        connect_timeout=1.0,
        ack_timeout=2.0,
        buffer_max=10000,
        logger=None,
    ):
        self._o = Options(address, key, tls, client, connect_timeout, ack_timeout, buffer_max, logger)
        self._fork_lock = threading.Lock()
        self._start()
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forked(ref))

    def _start(self):
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._core = Core(self._o, _release)
        self._closing = False
        self._stop = threading.Event()
        self._woken = False
        self._sock = None  # the connection, for the fork path
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="nudge-publisher", daemon=True)
        self._thread.start()

    # ---- callers ----
    def publish(self, topics, data=None, origin=None, skip_origin=False, wait=False):
        """Publish that topics changed. Returns {topic: seq} once acked within ack_timeout,
        else None (the publish stays buffered); with wait=True raises NudgeError instead."""
        topics = check_topics(topics)
        if self._pid != os.getpid():
            with self._fork_lock:  # forked (gunicorn --preload): the parent's thread is not here
                if self._pid != os.getpid():
                    # the parent's sockets: closing our copies leaves the parent's open
                    for s in (self._wake_r, self._wake_w, self._sock):
                        if s is not None:
                            s.close()
                    self._start()  # a fresh buffer: the parent's publishes are the parent's
        core = self._core
        item = core.new_item(topics, data, origin, skip_origin)
        waiter = threading.Lock()
        waiter.acquire()
        item.waiter = waiter
        with self._lock:
            if self._closing:
                return result(item, (CLOSED, None), wait)
            core.add(item)
            if core.down:
                core.tell(item, (DOWN, (core.down_code, core.down_reason)))
            wake = not self._woken
            self._woken = True
        if wake:
            self._wake()
        if not waiter.acquire(timeout=self._o.ack_timeout):
            return result(item, (TIMEOUT, None), wait)
        return result(item, item.outcome, wait)

    def stats(self):
        """{sent, acked, buffered, dropped, refused, reconnects, outages}"""
        with self._lock:
            return self._core.stats()

    def close(self):
        """Flush what is buffered for up to ack_timeout, then close the connection."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._stop.set()
        self._wake()
        self._thread.join(self._o.ack_timeout + self._o.connect_timeout + 1.0)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # full (the thread is already woken) or closed

    # ---- the I/O thread ----
    def _run(self):
        while not self._closing:
            try:
                self._loop()
            except Exception:  # a bug: say it, and go on (else publishes would only time out)
                o = self._o
                o.logger.exception("nudge: unexpected error in the I/O thread for %s", o.name)
                self._stop.wait(1.0)
        with self._lock:
            self._core.on_close()

    def _loop(self):
        """Connect, serve, reconnect with backoff, until close()."""
        attempt = 0
        core, lock = self._core, self._lock
        while not self._closing:
            try:
                sock, reader, welcome, rest = self._connect()
            except Exception as e:  # any failure to connect is an outage, never a crash
                with lock:
                    core.on_down(_core.reason_of(e), getattr(e, "code", 0))
                self._stop.wait(_core.backoff(attempt))
                attempt += 1
                continue
            started = time.monotonic()
            self._sock = sock
            try:
                with lock:
                    core.on_welcome(welcome)
                    for m in rest:
                        core.on_message(m, started)
                self._serve(sock, reader)
            finally:
                self._sock = None
                sock.close()
                with lock:
                    core.on_lost()
            if time.monotonic() - started < 1.0:
                self._stop.wait(_core.backoff(attempt))  # a connection that keeps failing
                attempt += 1
            else:
                attempt = 0  # the first retry after a loss is at once

    def _connect(self):
        o = self._o
        deadline = time.monotonic() + o.connect_timeout
        sock = socket.create_connection((o.host, o.port), timeout=o.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if o.ssl:
                sock = o.ssl.wrap_socket(sock, server_hostname=o.server_hostname)
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(_wire.hello(o.client, o.key))
            reader, msgs = _wire.FrameReader(), []
            while not msgs:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by the broker before welcome")
                msgs = reader.feed(data)
            return sock, reader, _core.check_welcome(msgs), msgs[1:]
        except BaseException:
            sock.close()
            raise

    def _serve(self, sock, reader):
        """Until the connection is lost (or closed): write what is buffered, read acks."""
        core, lock, o = self._core, self._lock, self._o
        sock.setblocking(False)
        is_ssl = isinstance(sock, ssl.SSLSocket)
        R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
        sel = selectors.DefaultSelector()
        sel.register(sock, R)
        sel.register(self._wake_r, R)
        out = memoryview(b"")
        mask = R
        now = last_tx = core.last_rx = time.monotonic()
        close_by = None
        try:
            while True:
                while True:  # write until the socket would block or nothing is left
                    if not out:
                        with lock:
                            self._woken = False
                            out = memoryview(core.take_batch())
                        if not out:
                            break
                    try:
                        n = sock.send(out)
                    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        break
                    core.writes += 1
                    out = out[n:]
                    last_tx = time.monotonic()
                want = R | W if out else R
                if want != mask:
                    sel.modify(sock, want)
                    mask = want
                now = time.monotonic()
                if self._closing:
                    if close_by is None:
                        close_by = now + o.ack_timeout
                    with lock:
                        if core.idle() or now >= close_by:
                            return
                timeout = self._timers(now, last_tx, close_by)
                if timeout is None:
                    return  # no pong for PING_INTERVAL: a dead connection
                for key, ev in sel.select(timeout):
                    if key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                    elif not self._read(sock, reader, is_ssl):
                        return
                if is_ssl and sock.pending() and not self._read(sock, reader, is_ssl):
                    return
        except (OSError, _wire.ProtocolError):
            return  # lost: the next connection attempt names the reason if it fails too
        finally:
            sel.close()

    def _timers(self, now, last_tx, close_by):
        """Seconds until something is due; sends a ping when quiet; None when a ping went
        unanswered for PING_INTERVAL."""
        core = self._core
        with self._lock:
            if core.ping_id is not None:
                if now - core.last_rx > 2 * _core.PING_INTERVAL:
                    return None
                due = core.last_rx + 2 * _core.PING_INTERVAL
            elif now - last_tx >= _core.PING_INTERVAL:
                core.replies.append(core.ping_frame())
                due = now
            else:
                due = last_tx + _core.PING_INTERVAL
        if close_by is not None:
            due = min(due, close_by)
        return max(0.0, due - now)

    def _read(self, sock, reader, is_ssl):
        """Read what is there; False when the connection is lost."""
        core, lock = self._core, self._lock
        while True:
            try:
                data = sock.recv(262144)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return True
            if not data:
                return False
            msgs = reader.feed(data)
            now = time.monotonic()
            with lock:
                for m in msgs:
                    if core.on_message(m, now):
                        return False  # an error not tied to a publish: the broker closes
            if not is_ssl and len(data) < 262144:
                return True


def _forked(ref):
    p = ref()
    if p is not None:
        p._fork_lock = threading.Lock()  # it may have been held at the fork


def _release(item):
    item.waiter.release()
