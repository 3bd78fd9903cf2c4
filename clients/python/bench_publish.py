"""Publishes per second of a pipelined burst, and how long publish() takes to return with the
broker stopped and stalled (the figures in docs/clients.md §Python publisher).

    NUDGE_BIN=build /usr/bin/python3 clients/python/bench_publish.py [N]

Starts its own nudged (--memory --workers 1) from $NUDGE_BIN, signals only that one by PID.
"""

import asyncio
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests"))
from support import Broker  # noqa: E402

import nudge  # noqa: E402


def sync_burst(addr, n, threads):
    p = nudge.Publisher(addr)
    p.publish(["warm"])
    w0 = p._core.writes
    ok = [0] * threads

    def work(k):
        for i in range(k, n, threads):
            ok[k] += p.publish(["bench:%d" % (i % 100)]) is not None

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    writes = p._core.writes - w0
    p.close()
    return sum(ok), dt, writes


async def async_burst(addr, n):
    p = nudge.AsyncPublisher(addr, buffer_max=n)  # all n are buffered at once
    await p.publish(["warm"])
    w0 = p._core.writes
    t0 = time.perf_counter()
    out = await asyncio.gather(*[p.publish(["bench:%d" % (i % 100)]) for i in range(n)])
    dt = time.perf_counter() - t0
    writes = p._core.writes - w0
    await p.aclose()
    return sum(r is not None for r in out), dt, writes


def timed(f, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), max(ts)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    b = Broker(memory=True)
    try:
        for threads in (1, 8, 32):
            ok, dt, w = sync_burst(b.address, n, threads)
            print("Publisher, %2d threads: %d/%d acked in %.2f s = %.0f publishes/s, %d writes" % (threads, ok, n, dt, n / dt, w))
        ok, dt, w = asyncio.run(async_burst(b.address, n))
        print("AsyncPublisher, gather: %d/%d acked in %.2f s = %.0f publishes/s, %d writes" % (ok, n, dt, n / dt, w))

        p = nudge.Publisher(b.address, ack_timeout=0.5)
        p.publish(["warm"])
        b.stall()
        try:
            med, mx = timed(lambda: p.publish(["x"]), 5)
            print("stalled (SIGSTOP), ack_timeout 0.5 s: publish() returns None in %.3f s (max %.3f)" % (med, mx))
        finally:
            b.resume()
        b.stop()
        p.publish(["x"])  # the outage is noticed
        med, mx = timed(lambda: p.publish(["x"]), 1000)
        print("stopped: publish() returns None in %.1f us median (max %.1f us) over 1000" % (med * 1e6, mx * 1e6))
        p.close()
    finally:
        b.close()


if __name__ == "__main__":
    main()
