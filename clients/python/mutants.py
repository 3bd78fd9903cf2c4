"""Each test must fail without the behaviour it checks: this breaks one behaviour at a time in
the library (a one-line mutant), runs the tests that should catch it, and restores the file.

    NUDGE_BIN=build/asan /usr/bin/python3 clients/python/mutants.py [NAME ...]

Every line should say rc=1 (FAIL). Not part of make test (about a minute).
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__)) + "/"
BIN = os.path.join(os.path.dirname(os.path.dirname(ROOT[:-1])), os.environ.get("NUDGE_BIN", "build/asan"))

# (name, file, text, mutant, tests to run: a unittest -k pattern)
M = [
 ("pipelining", "nudge/_core.py", 'BATCH_BYTES = 256 << 10', 'BATCH_BYTES = 1', "burst"),
 ("flush after restart", "nudge/_core.py", '        self.up = True\n        self.max_frame', '        self.up = True\n        self.pending.clear()\n        self.max_frame', "restart"),
 ("at once when down (sync)", "nudge/_sync.py", '            if core.down:\n', '            if False:\n', "SyncPublisherTest.test_a_stopped"),
 ("at once when down (async)", "nudge/_aio.py", '        if core.down:\n', '        if False:\n', "AsyncPublisherTest.test_a_stopped"),
 ("drop oldest", "nudge/_core.py", '                old = self.pending.popleft()', '                old = self.pending.pop()', "stopped"),
 ("one outage line", "nudge/_core.py", '        if not self.down:\n            self.down = True', '        if True:\n            self.down = True', "stopped"),
 ("ack timeout (sync)", "nudge/_sync.py", 'waiter.acquire(timeout=self._o.ack_timeout)', 'waiter.acquire(timeout=3 * self._o.ack_timeout)', "SyncPublisherTest.test_a_stalled"),
 ("ack timeout (async)", "nudge/_aio.py", 'deadline = self._loop.time() + self._o.ack_timeout', 'deadline = self._loop.time() + 3 * self._o.ack_timeout', "AsyncPublisherTest.test_a_stalled"),
 ("wait raises", "nudge/_core.py", '    if not wait:\n        return None', '    if True:\n        return None', "refusal"),
 ("refusal log rate limit", "nudge/_core.py", 'REFUSAL_LOG_INTERVAL = 10.0', 'REFUSAL_LOG_INTERVAL = 0.0', "refusal"),
 ("api key in hello", "nudge/_wire.py", '        msg["auth"] = key', '        pass', "api_key"),
 ("fork", "nudge/_sync.py", '        if self._pid != os.getpid():\n            with', '        if False:\n            with', "fork"),
 ("close flush (sync)", "nudge/_sync.py", 'close_by = now + o.ack_timeout', 'close_by = now', "SyncPublisherTest.test_close"),
 ("close flush (async)", "nudge/_aio.py", 'while self._core.up and not self._core.idle()', 'while False', "AsyncPublisherTest.test_close"),
 ("max_frame checked here", "nudge/_core.py", 'if len(item.frame) - 4 > self.max_frame:', 'if False:', "max_frame"),
 ("welcome checked", "nudge/_core.py", 'if not isinstance(mf, int) or isinstance(mf, bool) or mf < 1:', 'if False:', "nonsense"),
 ("tls ca", "nudge/_core.py", 'ctx = ssl.create_default_context(cafile=tls.get("ca"))', 'ctx = ssl._create_unverified_context(cafile=tls.get("ca"))', "tls"),
]
only = sys.argv[1:]
for name, f, a, b, sel in M:
    if only and name not in only: continue
    p = ROOT + f
    src = open(p).read()
    assert src.count(a) >= 1, (name, a)
    open(p, 'w').write(src.replace(a, b))
    try:
        r = subprocess.run(['timeout', '120', '/usr/bin/python3', '-m', 'unittest', '-k', sel, 'test_publisher'],
                           cwd=ROOT + 'tests', capture_output=True, text=True, env=dict(os.environ, NUDGE_BIN=BIN))
        last = [l for l in r.stderr.splitlines() if l.startswith(('FAILED', 'OK', 'Ran', 'FAIL:', 'ERROR:'))]
        print("%-28s rc=%d %s" % (name, r.returncode, ' | '.join(last)))
    finally:
        open(p, 'w').write(src)
