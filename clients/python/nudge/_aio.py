"""nudge.AsyncPublisher: the asyncio publisher (FastAPI, Starlette, aiohttp), no threads.

One task per publisher owns the connection (connect, TLS, hello, reconnect with backoff) and,
while connected, a writer task and a reader task. publish() buffers its frame, sets the
writer's event and awaits a future settled by the ack, a refusal, an outage or its timer. The
writer wakes once per loop iteration at most, so publishes made together (asyncio.gather, many
requests) go out in one write while earlier ones are in flight; writer.drain() keeps what a
stalled broker does not read in our buffer (where the bound applies), not in the transport's.
"""

import asyncio
import collections
import socket
import time

from . import _core, _wire
from ._core import CLOSED, DOWN, TIMEOUT, Core, Options, check_topics, result


class AsyncPublisher:
    """Publish hints to nudged from asyncio code: `await pub.publish([...])`. Bound to the
    event loop of its first use; see docs/clients.md §Python publisher."""

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
        self._core = Core(self._o, _settle)
        self._task = None
        self._closing = False
        # (deadline, future) of the waiting publishes, oldest first (one ack_timeout for all,
        # so deadlines come in order): one timer for all of them instead of one each
        self._deadlines = collections.deque()
        self._sweeper = None

    def _ensure(self):
        if self._task is not None and self._loop is not asyncio.get_running_loop():
            raise RuntimeError("this AsyncPublisher is bound to the event loop it was first used on")
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._wake = None  # the writer's future while it waits (no asyncio.Event + wait_for:
            self._stop = self._loop.create_future()  # 3.11's wait_for can swallow a cancel)
            self._task = self._loop.create_task(self._run())

    async def start(self):
        """Connect now instead of at the first publish (optional)."""
        self._ensure()

    async def publish(self, topics, data=None, origin=None, skip_origin=False, wait=False):
        """Publish that topics changed. Returns {topic: seq} once acked within ack_timeout,
        else None (the publish stays buffered); with wait=True raises NudgeError instead."""
        topics = check_topics(topics)
        core = self._core
        item = core.new_item(topics, data, origin, skip_origin)
        if self._closing:
            return result(item, (CLOSED, None), wait)
        self._ensure()
        fut = item.waiter = self._loop.create_future()
        core.add(item)
        if core.down:
            core.tell(item, (DOWN, (core.down_code, core.down_reason)))
        else:
            self._kick()
        if not fut.done():
            deadline = self._loop.time() + self._o.ack_timeout
            self._deadlines.append((deadline, fut))
            if self._sweeper is None:
                self._sweeper = self._loop.call_at(deadline, self._sweep)
            await fut
        return result(item, fut.result(), wait)

    def _sweep(self):
        """Time out the publishes whose deadline passed; the timer moves to the next one."""
        q, now = self._deadlines, self._loop.time()
        while q and (q[0][0] <= now or q[0][1].done()):
            _expire(q.popleft()[1])
        self._sweeper = self._loop.call_at(q[0][0], self._sweep) if q else None

    def stats(self):
        """{sent, acked, buffered, dropped, refused, reconnects, outages}"""
        return self._core.stats()

    async def aclose(self):
        """Flush what is buffered for up to ack_timeout, then close the connection."""
        if self._closing:
            return
        self._closing = True
        if self._task is None:
            return
        if not self._stop.done():
            self._stop.set_result(None)
        self._kick()
        end = time.monotonic() + self._o.ack_timeout
        while self._core.up and not self._core.idle() and time.monotonic() < end:
            await asyncio.sleep(0.01)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._core.on_close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def __aenter__(self):
        self._ensure()
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    # ---- the connection task ----
    async def _run(self):
        while not self._closing:
            try:
                await self._loop_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: say it, and go on (else publishes would only time out)
                o = self._o
                o.logger.exception("nudge: unexpected error in the connection task for %s", o.name)
                await self._sleep(1.0)

    async def _loop_once(self):
        """Connect, serve, reconnect with backoff, until aclose()."""
        core, attempt = self._core, 0
        while not self._closing:
            try:
                reader, writer, welcome, rest, frames = await self._connect_within()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure to connect is an outage, never a crash
                core.on_down(_core.reason_of(e), getattr(e, "code", 0))
                await self._sleep(_core.backoff(attempt))
                attempt += 1
                continue
            started = time.monotonic()
            try:
                core.on_welcome(welcome)
                for m in rest:
                    core.on_message(m, started)
                await self._serve(reader, writer, frames)
            finally:
                writer.close()
                core.on_lost()
            if time.monotonic() - started < 1.0:
                await self._sleep(_core.backoff(attempt))  # a connection that keeps failing
                attempt += 1
            else:
                attempt = 0  # the first retry after a loss is at once

    async def _sleep(self, delay):
        """delay seconds, or less when closing."""
        await asyncio.wait((self._stop,), timeout=delay)

    def _kick(self):
        """Wake the writer (it runs once the callers of this loop iteration are done)."""
        w = self._wake
        if w is not None and not w.done():
            w.set_result(None)

    async def _doze(self, timeout):
        """Until _kick() or timeout seconds."""
        w = self._wake = self._loop.create_future()
        timer = self._loop.call_later(timeout, _expire, w)
        try:
            await w
        finally:
            timer.cancel()
            self._wake = None

    async def _connect_within(self):
        """_connect() bounded by connect_timeout (not with wait_for: see _ensure)."""
        t = self._loop.create_task(self._connect())
        try:
            done, _ = await asyncio.wait((t,), timeout=self._o.connect_timeout)
        finally:
            if not t.done():
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)
        if not done:
            raise TimeoutError("timed out")
        return t.result()

    async def _connect(self):
        o = self._o
        reader, writer = await asyncio.open_connection(
            o.host, o.port, ssl=o.ssl, server_hostname=o.server_hostname if o.ssl else None
        )
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            writer.write(_wire.hello(o.client, o.key))
            frames, msgs = _wire.FrameReader(), []
            while not msgs:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the broker before welcome")
                msgs = frames.feed(data)
            return reader, writer, _core.check_welcome(msgs), msgs[1:], frames
        except BaseException:
            writer.close()
            raise

    async def _serve(self, reader, writer, frames):
        tasks = {
            self._loop.create_task(self._write_loop(writer)),
            self._loop.create_task(self._read_loop(reader, frames)),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                e = None if t.cancelled() else t.exception()
                if e is not None and not isinstance(e, (OSError, EOFError, _wire.ProtocolError)):
                    self._o.logger.error(  # a bug: say it, then reconnect as for a lost connection
                        "nudge: unexpected error on the connection to %s; reconnecting",
                        self._o.name,
                        exc_info=e,
                    )
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _write_loop(self, writer):
        core = self._core
        last_tx = core.last_rx = time.monotonic()
        while True:
            data = core.take_batch()
            if data:
                writer.write(data)
                core.writes += 1
                last_tx = time.monotonic()
                await writer.drain()
                continue
            now = time.monotonic()
            if core.ping_id is not None:
                if now - core.last_rx > 2 * _core.PING_INTERVAL:
                    return  # no pong: a dead connection
                due = core.last_rx + 2 * _core.PING_INTERVAL
            elif now - last_tx >= _core.PING_INTERVAL:
                core.replies.append(core.ping_frame())
                continue
            else:
                due = last_tx + _core.PING_INTERVAL
            await self._doze(max(0.0, due - now))

    async def _read_loop(self, reader, frames):
        core = self._core
        while True:
            data = await reader.read(262144)
            if not data:
                return
            now = time.monotonic()
            for m in frames.feed(data):
                if core.on_message(m, now):
                    return  # an error not tied to a publish: the broker closes
            if core.replies:
                self._kick()


def _settle(item):
    if not item.waiter.done():
        item.waiter.set_result(item.outcome)


def _expire(fut):
    if not fut.done():
        fut.set_result((TIMEOUT, None))
