// Fail-open against the real nudged: a restart, a stopped broker and a stalled one (SIGSTOP)
// never fail the caller; publishes are buffered (bounded, oldest dropped), flushed when the
// broker is back, and each outage is logged once at its start and once at its end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { broker, pub, sleep, sub, tempDir, until } from './support.js';

const timed = async (promise) => {
  const t0 = performance.now();
  const v = await promise;
  return { v, ms: performance.now() - t0 };
};

test('publishes during a restart answer null in time, then are flushed and reach the subscriber', { timeout: 30000 }, async () => {
  const dir = tempDir();
  let b = await broker({ args: ['--data-dir', dir] });
  const r = sub(b.url, { backoff: { min: 20, max: 200 } });
  const hints = [];
  r.c.subscribe('doc:1', (h) => hints.push(h));
  await r.live();
  await sleep(100);
  const nudge = pub(b.pub, { ackTimeoutMs: 1000 });
  assert.deepEqual(await nudge.publish(['doc:1'], 'before'), { 'doc:1': 1 });
  await b.stop();
  for (let i = 0; i < 5; i++) {
    const { v, ms } = await timed(nudge.publish(['doc:1'], `during ${i}`));
    assert.equal(v, null);
    assert.ok(ms < 1000, `publish ${i} answered in ${ms} ms, over the ack timeout`);
  }
  assert.equal(nudge.stats().buffered, 5);
  b = await broker({ args: ['--data-dir', dir], pub: b.pub, ws: b.ws });
  await until(() => nudge.stats().buffered === 0, 10000, 'the buffer flushed');
  // In order, after the one before: the next publish takes seq 7.
  assert.deepEqual(await nudge.publish(['doc:1'], 'after', { wait: true }), { 'doc:1': 7 });
  // The subscriber resumed: live hints or one catch-up hint, up to seq 7.
  await until(() => hints.length && hints.at(-1).seq === 7, 10000, 'the subscriber at seq 7');
  const s = nudge.stats();
  assert.deepEqual([s.acked, s.sent, s.dropped, s.outages, s.reconnects], [7, 7, 0, 1, 1]);
  assert.equal(nudge.lines.length, 2, nudge.lines.join('\n'));
  assert.match(nudge.lines[0], /^nudge: broker 127\.0\.0\.1:\d+ unreachable \(.+\); buffering up to 10000 publishes$/);
  assert.match(nudge.lines[1], /^nudge: broker 127\.0\.0\.1:\d+ back after \d+\.\d s; 5 publishes flushed, 0 dropped$/);
});

test('with the broker stopped, publish answers null at once and the buffer drops the oldest', { timeout: 30000 }, async (t) => {
  const first = await broker();
  const port = first.pub;
  await first.stop(); // nothing listens on `port` now
  const nudge = pub(port, { bufferMax: 5 });
  let worst = 0;
  for (let i = 0; i < 8; i++) {
    const { v, ms } = await timed(nudge.publish([`t:${i}`], { i }));
    assert.equal(v, null);
    worst = Math.max(worst, ms);
  }
  t.diagnostic(`slowest publish() with the broker stopped: ${worst.toFixed(1)} ms`);
  assert.ok(worst < 500, `${worst} ms: well within the 2000 ms ack timeout`);
  const s = nudge.stats();
  assert.deepEqual([s.buffered, s.dropped, s.sent, s.outages], [5, 3, 0, 1]);
  await sleep(1500); // several failed reconnects: still the one line
  assert.equal(nudge.lines.length, 1, nudge.lines.join('\n'));
  assert.match(nudge.lines[0], /unreachable \(ECONNREFUSED\); buffering up to 5 publishes$/);

  await broker({ pub: port });
  await until(() => nudge.stats().buffered === 0, 10000, 'the buffer flushed');
  assert.equal(nudge.lines.length, 2, nudge.lines.join('\n'));
  assert.match(nudge.lines[1], /back after \d+\.\d s; 5 publishes flushed, 3 dropped$/);
  // The newest five reached the broker, the three oldest did not.
  for (let i = 0; i < 8; i++)
    assert.deepEqual(await nudge.publish([`t:${i}`], null, { wait: true }), { [`t:${i}`]: i < 3 ? 1 : 2 }, `t:${i}`);
});

test('a stalled broker (SIGSTOP) costs the request the ack timeout once, and nothing is lost', { timeout: 30000 }, async (t) => {
  const b = await broker();
  const r = sub(b.url);
  const hints = [];
  r.c.subscribe('doc:2', (h) => hints.push(h));
  await r.live();
  await sleep(100);
  const nudge = pub(b.pub, { ackTimeoutMs: 500 });
  // The app's request handler: a change, then the publish, answering within its own budget.
  const request = (i) => timed(Promise.race([
    nudge.publish(['doc:2'], { i }).then((seqs) => ({ ok: true, seqs })),
    sleep(1500).then(() => ({ ok: false })),
  ]));
  assert.deepEqual((await request(0)).v, { ok: true, seqs: { 'doc:2': 1 } });
  process.kill(b.pid, 'SIGSTOP');
  let stalled, next;
  try {
    stalled = await request(1);
    next = await request(2);
    await assert.rejects(nudge.publish(['doc:2'], { i: 3 }, { wait: true }), { name: 'NudgeError', code: 0 });
  } finally {
    process.kill(b.pid, 'SIGCONT');
  }
  t.diagnostic(`publish() during the stall: first ${stalled.ms.toFixed(0)} ms, then ${next.ms.toFixed(1)} ms`);
  assert.deepEqual(stalled.v, { ok: true, seqs: null });
  assert.ok(stalled.ms >= 450 && stalled.ms < 1000, `${stalled.ms} ms for the first publish of the stall`);
  assert.deepEqual(next.v, { ok: true, seqs: null });
  assert.ok(next.ms < 100, `${next.ms} ms once the stall is known`);
  await until(() => hints.length === 4, 5000, 'the three publishes of the stall');
  assert.deepEqual(hints.map((h) => [h.seq, h.data.i]), [[1, 0], [2, 1], [3, 2], [4, 3]]);
  await until(() => nudge.lines.length === 2, 2000, 'the back line');
  assert.match(nudge.lines[0], /unreachable \(no ack in 500 ms\); buffering/);
  assert.match(nudge.lines[1], /back after \d+\.\d s; \d publishes flushed, 0 dropped$/);
  assert.deepEqual(await nudge.publish(['doc:2']), { 'doc:2': 5 });
  assert.equal(nudge.stats().reconnects, 0, 'the stalled connection was kept');
});

test('publishes in flight when the connection is lost are written again on the next one', { timeout: 30000 }, async () => {
  const dir = tempDir();
  let b = await broker({ args: ['--data-dir', dir] });
  const nudge = pub(b.pub, { ackTimeoutMs: 300 });
  assert.deepEqual(await nudge.publish(['doc:3']), { 'doc:3': 1 });
  process.kill(b.pid, 'SIGSTOP');
  assert.equal(await nudge.publish(['doc:3'], 'in flight'), null); // written, never read
  assert.equal(nudge.stats().sent, 2);
  await b.stop('SIGKILL'); // the bytes in its socket die with it
  b = await broker({ args: ['--data-dir', dir], pub: b.pub });
  await until(() => nudge.stats().buffered === 0, 10000, 'the buffer flushed');
  assert.deepEqual(await nudge.publish(['doc:3'], null, { wait: true }), { 'doc:3': 3 });
  const s = nudge.stats();
  assert.deepEqual([s.sent, s.acked, s.dropped], [4, 3, 0], 'the one in flight was sent twice');
});

test('a live connection the broker closes (--pub-idle) is opened again at once, without an outage', { timeout: 20000 }, async () => {
  const b = await broker({ args: ['--pub-idle', '1200'] });
  const nudge = pub(b.pub);
  assert.deepEqual(await nudge.publish(['idle']), { idle: 1 });
  await sleep(1700); // closed by the broker after 1.2 s, and reconnected
  const { v, ms } = await timed(nudge.publish(['idle']));
  assert.deepEqual(v, { idle: 2 });
  assert.ok(ms < 500, `${ms} ms`);
  const s = nudge.stats();
  assert.ok(s.reconnects >= 1, 'the broker closed the idle connection');
  assert.deepEqual([s.outages, nudge.lines], [0, []]);
});
