"""nudge.Publisher (threads) and nudge.AsyncPublisher (asyncio) against the real nudged.

Every scenario runs twice: SyncPublisherTest drives nudge.Publisher from the test thread;
AsyncPublisherTest drives nudge.AsyncPublisher on an event loop in a helper thread (the library
itself starts no thread), so the scenarios read the same. Delivery is checked through a second
channel: the broker's seqs (a later publish's seq proves how many earlier ones landed, the data
directory keeps them across a restart) and its /stats counters."""

import asyncio
import logging
import os
import shutil
import ssl
import tempfile
import threading
import time
import unittest

from support import Broker, FakeBroker, self_signed, wait_for, write_file

import nudge
import nudge._core

KEY = "0123456789abcdef-app"
# the lines of the scenarios that do not check them stay out of the output
logging.getLogger("nudge").addHandler(logging.NullHandler())
os.environ.pop("NUDGE_API_KEY", None)


class SyncAPI:
    def __init__(self, **kw):
        self.p = nudge.Publisher(**kw)

    def publish(self, *a, **kw):
        return self.p.publish(*a, **kw)

    def stats(self):
        return self.p.stats()

    def writes(self):
        return self.p._core.writes

    def close(self):
        self.p.close()

    def burst(self, n, topics):
        """n publishes from 8 threads; their results in order of topic index."""
        out = [None] * n

        def work(k):
            for i in range(k, n, 8):
                out[i] = self.p.publish([topics[i % len(topics)]])

        ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        return out


class AsyncAPI:
    loop = None

    def __init__(self, **kw):
        self.p = nudge.AsyncPublisher(**kw)
        self._run(self.p.start())

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def publish(self, *a, **kw):
        return self._run(self.p.publish(*a, **kw))

    def stats(self):
        async def get():
            return self.p.stats()

        return self._run(get())

    def writes(self):
        return self.p._core.writes

    def close(self):
        self._run(self.p.aclose())

    def burst(self, n, topics):
        """n publishes at once with asyncio.gather."""

        async def go():
            return await asyncio.gather(*[self.p.publish([topics[i % len(topics)]]) for i in range(n)])

        return self._run(go())


class Scenarios:
    API = None

    def broker(self, *args, memory=False):
        b = Broker(args, memory=memory)
        self.addCleanup(b.close)
        return b

    def pub(self, broker, **kw):
        p = self.API(address=broker.address, **kw)
        self.addCleanup(p.close)
        return p

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="nudge-py-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_publish_returns_the_seq_of_each_topic_with_data_and_origin_accepted(self):
        b = self.broker(memory=True)
        p = self.pub(b)
        self.assertEqual(
            p.publish(["project:17", "user:42"], data={"by": "zoë", "rev": 12, "score": 0.5}),
            {"project:17": 1, "user:42": 1},
        )
        self.assertEqual(p.publish(["project:17"], origin="1f"), {"project:17": 2})
        # a topic named twice is published twice; the dict keeps the last seq
        self.assertEqual(p.publish(("doc:9", "doc:9"), origin="1f", skip_origin=True), {"doc:9": 2})
        self.assertEqual(p.publish(["project:17"]), {"project:17": 3})
        st = b.stats()
        self.assertEqual((st["publishes"], st["hints"]), (4, 6))
        s = p.stats()
        self.assertEqual((s["sent"], s["acked"], s["buffered"], s["refused"]), (4, 4, 0, 0))
        # programmer errors are raised at once
        self.assertRaises(TypeError, p.publish, "project:17")
        self.assertRaises(ValueError, p.publish, [])
        self.assertRaises(TypeError, p.publish, ["a", 7])
        self.assertRaises(TypeError, p.publish, ["a"], data=object())

    def test_a_burst_is_pipelined_every_publish_acked_in_far_fewer_writes(self):
        b = self.broker(memory=True)
        p = self.pub(b)
        topics = ["burst:%d" % i for i in range(10)]
        p.publish(["warm"])
        w0, t0 = p.writes(), time.monotonic()
        out = p.burst(2000, topics)
        dt, writes = time.monotonic() - t0, p.writes() - w0
        self.assertTrue(all(r is not None for r in out), "every publish acked")
        seqs = {t: sorted(r[t] for r in out if t in r) for t in topics}
        for t in topics:
            self.assertEqual(seqs[t], list(range(1, 201)), t)
        self.assertEqual(b.stats()["publishes"], 2001)
        self.assertLess(writes, 1000, "pipelined: several publishes per write")
        print("\n  %s burst: 2000 publishes in %.3f s (%.0f/s), %d writes" % (self.API.__name__, dt, 2000 / dt, writes))

    def test_publishes_during_a_restart_return_none_and_are_flushed_after_it(self):
        b = self.broker()
        p = self.pub(b, ack_timeout=1.0)
        self.assertEqual(p.publish(["r"]), {"r": 1})
        b.stop()
        t0 = time.monotonic()
        out = [p.publish(["r"]) for _ in range(3)]
        self.assertEqual(out, [None, None, None])
        self.assertLess(time.monotonic() - t0, 1.0, "within the ack timeout")
        b.start()  # the same port and data directory: seqs continue
        wait_for(lambda: p.stats()["acked"] == 4, what="the buffered publishes acked")
        self.assertEqual(p.publish(["r"]), {"r": 5})
        s = p.stats()
        self.assertEqual((s["reconnects"], s["outages"], s["buffered"], s["dropped"]), (1, 1, 0, 0))

    def test_a_stopped_broker_returns_none_at_once_drops_the_oldest_and_logs_twice(self):
        b = self.broker()
        p = self.pub(b, buffer_max=5, ack_timeout=1.0)
        self.assertEqual(p.publish(["warm"]), {"warm": 1})
        with self.assertLogs("nudge", logging.INFO) as logs:
            b.stop()
            wait_for(lambda: p.stats()["outages"] == 1, what="the outage")
            slowest = 0.0
            for i in range(20):
                t0 = time.monotonic()
                self.assertIsNone(p.publish(["d%d" % i], data={"i": i}))
                slowest = max(slowest, time.monotonic() - t0)
            self.assertLess(slowest, 0.05, "at once while the broker is known down")
            s = p.stats()
            self.assertEqual((s["dropped"], s["buffered"]), (15, 5))
            time.sleep(0.6)  # several reconnect attempts fail meanwhile: still one line
            b.start()
            wait_for(lambda: p.stats()["buffered"] == 0, what="the buffer flushed")
        lines = [r.getMessage() for r in logs.records]
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("nudge: broker %s unreachable (connection refused); buffering up to 5 publishes" % b.address, lines[0])
        self.assertRegex(lines[1], r"^nudge: broker %s back after \d+\.\d s; 5 publishes flushed, 15 dropped$" % b.address)
        # the newest five landed (seq 1 now, 2 after this), the oldest fifteen never did
        again = p.publish(["d%d" % i for i in range(20)])
        self.assertEqual(again, {"d%d" % i: (2 if i >= 15 else 1) for i in range(20)})

    def test_a_stalled_broker_returns_none_after_the_ack_timeout_and_gets_them_later(self):
        b = self.broker()
        p = self.pub(b, ack_timeout=0.5)
        self.assertEqual(p.publish(["s"]), {"s": 1})
        b.stall()
        try:
            t0 = time.monotonic()
            self.assertIsNone(p.publish(["s"]))
            took = time.monotonic() - t0
            self.assertGreaterEqual(took, 0.45)
            self.assertLess(took, 1.0)
            with self.assertRaises(nudge.NudgeError) as cm:
                p.publish(["s"], wait=True)
            self.assertEqual(cm.exception.code, 0)
            self.assertIn("ack timeout", str(cm.exception))
            self.assertEqual(p.stats()["buffered"], 2)
        finally:
            b.resume()
        wait_for(lambda: p.stats()["acked"] == 3, what="the stalled publishes acked")
        self.assertEqual(p.publish(["s"]), {"s": 4})
        self.assertEqual(p.stats()["outages"], 0)

    def test_close_waits_for_the_acks_of_what_is_in_flight(self):
        b = self.broker(memory=True)
        p = self.pub(b, ack_timeout=0.5)
        self.assertEqual(p.publish(["c"]), {"c": 1})
        b.stall()
        try:
            self.assertIsNone(p.publish(["c"]))
            threading.Timer(0.1, b.resume).start()
            with self.assertNoLogs("nudge", logging.WARNING):
                p.close()  # waits until the broker, continued, acks
        finally:
            b.resume()
        self.assertEqual(p.stats()["acked"], 2)
        self.assertEqual(b.stats()["publishes"], 2)

    def test_a_refusal_returns_none_or_raises_with_wait_and_is_counted(self):
        keys = write_file(self.tmpdir(), "keys", "app %s proj:*\n" % KEY)
        b = self.broker("--pub-keys", keys, memory=True)
        p = self.pub(b, key=KEY)
        self.assertEqual(p.publish(["proj:1"]), {"proj:1": 1})
        with self.assertLogs("nudge", logging.INFO) as logs:
            self.assertIsNone(p.publish(["other:1"]))
            with self.assertRaises(nudge.NudgeError) as cm:
                p.publish(["other:1"], wait=True)
        self.assertEqual(cm.exception.code, 17)
        self.assertEqual(p.stats()["refused"], 2)
        self.assertEqual(len(logs.records), 1, "refusals are logged at most once per 10 s")
        self.assertIn("forbidden (17)", logs.records[0].getMessage())
        self.assertEqual(p.publish(["proj:1"]), {"proj:1": 2})
        self.assertEqual(p.stats()["outages"], 0)

    def test_a_frame_over_max_frame_is_refused_here_and_the_connection_stays(self):
        b = self.broker("--max-frame", "256", memory=True)
        p = self.pub(b)
        self.assertEqual(p.publish(["f"]), {"f": 1})  # welcome said max_frame 256
        with self.assertLogs("nudge", logging.INFO):
            self.assertIsNone(p.publish(["f"], data="x" * 300))
            with self.assertRaises(nudge.NudgeError) as cm:
                p.publish(["f"], data="x" * 300, wait=True)
        self.assertEqual(cm.exception.code, 4)
        self.assertEqual(p.publish(["f"]), {"f": 2})
        s = p.stats()
        self.assertEqual((s["refused"], s["reconnects"], s["outages"]), (2, 0, 0))
        self.assertEqual(b.stats()["errors"], 0, "never sent: the broker would close the connection")

    def test_a_broker_speaking_nonsense_is_an_outage_not_a_crash(self):
        fake = FakeBroker([
            b"\x00\x00\x00\x00",  # a zero length prefix
            FakeBroker.frame({"type": "welcome", "max_frame": "big"}),
            b"\x00\x00\x00\x01\xc1",  # a body that is not msgpack
        ])
        self.addCleanup(fake.close)
        with self.assertLogs("nudge", logging.INFO) as logs:
            p = self.pub(fake, ack_timeout=3.0)  # its I/O thread may log before the publish
            # None once the first attempt failed, unless the fourth came first (jitter)
            self.assertIn(p.publish(["a"]), (None, {"a": 4}))
            wait_for(lambda: p.stats()["acked"] == 1, what="the fourth connection")
        self.assertEqual(p.publish(["a"]), {"a": 4})
        self.assertIn("protocol: bad frame length 0", logs.records[0].getMessage())
        self.assertEqual(len(logs.records), 2, [r.getMessage() for r in logs.records])

    def test_the_api_key_is_sent_in_hello_and_required_when_configured(self):
        keys = write_file(self.tmpdir(), "keys", "app %s\n" % KEY)
        b = self.broker("--pub-keys", keys, memory=True)
        with self.assertLogs("nudge", logging.INFO) as logs:
            anon = self.pub(b)  # its I/O thread may log before the first publish
            self.assertIsNone(anon.publish(["t"]))
            with self.assertRaises(nudge.NudgeError) as cm:
                anon.publish(["t"], wait=True)
        self.assertEqual(cm.exception.code, 16)
        self.assertIn("unauthorized (16)", logs.records[0].getMessage())
        wrong = self.pub(b, key="not-the-key-0123456789")
        self.assertRaises(nudge.NudgeError, wrong.publish, ["t"], wait=True)
        good = self.pub(b, key=KEY)
        self.assertEqual(good.publish(["t"]), {"t": 1})

    def test_tls_verifies_the_broker_certificate(self):
        d = self.tmpdir()
        cert, key = self_signed(d)
        other, _ = self_signed(d, "other")
        b = self.broker("--tls-cert", cert, "--tls-key", key, "--tls-listeners", "pub", memory=True)
        p = self.pub(b, tls={"ca": cert})
        self.assertEqual(p.publish(["t"]), {"t": 1})
        ctx = ssl.create_default_context(cafile=cert)
        self.assertEqual(self.pub(b, tls=ctx).publish(["t"]), {"t": 2})
        with self.assertLogs("nudge", logging.INFO):
            wrong = self.pub(b, tls={"ca": other})
            with self.assertRaises(nudge.NudgeError) as cm:
                wrong.publish(["t"], wait=True)
            self.assertIn("certificate verify failed", str(cm.exception))
            plain = self.pub(b)
            self.assertIsNone(plain.publish(["t"]))
        wait_for(lambda: b.stats()["tls_handshake_failures"] >= 2, what="the failed handshakes counted")
        self.assertEqual(b.stats()["publishes"], 2)


class SyncPublisherTest(Scenarios, unittest.TestCase):
    API = SyncAPI

    @unittest.skipUnless(hasattr(os, "fork"), "needs fork")
    def test_a_forked_child_publishes_on_its_own_connection(self):
        b = self.broker(memory=True)
        p = self.pub(b)
        self.assertEqual(p.publish(["f"]), {"f": 1})
        pid = os.fork()
        if pid == 0:  # the child (gunicorn --preload): the parent's I/O thread is not here
            try:
                os._exit(0 if p.publish(["f"]) == {"f": 2} else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(p.publish(["f"]), {"f": 3})
        self.assertEqual(b.stats()["accepted"]["pub"], 2)


class AsyncPublisherTest(Scenarios, unittest.TestCase):
    API = AsyncAPI

    @classmethod
    def setUpClass(cls):
        AsyncAPI.loop = asyncio.new_event_loop()
        cls.thread = threading.Thread(target=AsyncAPI.loop.run_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        AsyncAPI.loop.call_soon_threadsafe(AsyncAPI.loop.stop)
        cls.thread.join(5)
        AsyncAPI.loop.close()

    def test_no_thread_is_started(self):
        b = self.broker(memory=True)
        before = threading.active_count()
        p = self.pub(b)
        self.assertEqual(p.publish(["t"]), {"t": 1})
        self.assertEqual(threading.active_count(), before)


class BackoffTest(unittest.TestCase):
    def test_backoff_is_full_jitter_from_100_ms_doubling_to_5_s(self):
        saved = nudge._core.BACKOFF_MAX
        nudge._core.BACKOFF_MAX = 5.0
        try:
            first = [nudge._core.backoff(0) for _ in range(1000)]
            late = [nudge._core.backoff(30) for _ in range(1000)]
        finally:
            nudge._core.BACKOFF_MAX = saved
        self.assertTrue(0 <= min(first) and max(first) <= 0.1)
        self.assertGreater(max(first) - min(first), 0.05, "jittered")
        self.assertTrue(max(late) <= 5.0 and max(late) > 4.0)


if __name__ == "__main__":
    unittest.main()
