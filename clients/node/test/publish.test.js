// Publishing against the real nudged: acks as {topic: seq}, data and origin reaching a
// subscriber, and a pipelined burst written in a handful of socket writes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { broker, pub, sleep, sub, until } from './support.js';

test('publish resolves to the seq of each topic, and data and origin reach the subscriber', { timeout: 20000 }, async () => {
  const b = await broker();
  const r = sub(b.url);
  const hints = [];
  r.c.subscribe('project:17', (h) => hints.push(h));
  await r.live();
  await sleep(100); // the subscription is confirmed before the publishes
  const nudge = pub(b.pub);
  assert.deepEqual(await nudge.publish(['project:17', 'user:42'], { by: 'zoë' }), { 'project:17': 1, 'user:42': 1 });
  // A topic named twice is published twice and keeps its last seq.
  assert.deepEqual(await nudge.publish(['user:42', 'project:17', 'user:42']), { 'user:42': 3, 'project:17': 2 });
  assert.deepEqual(await nudge.publish(['project:17'], null, { origin: r.c.connId }), { 'project:17': 3 });
  await until(() => hints.length === 3, 5000, 'three hints');
  assert.deepEqual(hints[0], { type: 'hint', topic: 'project:17', seq: 1, data: { by: 'zoë' } });
  assert.equal(hints[1].own, undefined);
  assert.equal(hints[2].own, true);
  assert.equal(nudge.epoch, r.c.epoch);
  // skipOrigin: the origin's connection gets nothing for it, the next publish arrives.
  await nudge.publish(['project:17'], null, { origin: r.c.connId, skipOrigin: true });
  await nudge.publish(['project:17'], 'after');
  await until(() => hints.length === 4, 5000, 'the hint after the skipped one');
  assert.deepEqual([hints[3].seq, hints[3].data], [5, 'after']);
  const s = nudge.stats();
  assert.deepEqual(s, { sent: 5, acked: 5, buffered: 0, dropped: 0, refused: 0, reconnects: 0, outages: 0 });
  assert.deepEqual(nudge.lines, []);
});

test('bad arguments throw at once, in the caller', { timeout: 10000 }, async () => {
  const b = await broker();
  const nudge = pub(b.pub);
  for (const topics of [undefined, 'project:17', [], [''], [17]])
    assert.throws(() => nudge.publish(topics), TypeError, JSON.stringify(topics));
  assert.throws(() => nudge.publish(['a'], () => 1), /Unrecognized object/);
  assert.throws(() => nudge.publish(['a'], null, { origin: 7 }), TypeError);
  assert.deepEqual(await nudge.publish(['a']), { a: 1 });
});

test('a pipelined burst is acked in order in far fewer socket writes than publishes', { timeout: 30000 }, async (t) => {
  const b = await broker();
  const nudge = pub(b.pub, { ackTimeoutMs: 10000 });
  await nudge.publish(['warm']);
  // Count the writes on the publisher's socket (its remote port is the broker's pub port).
  let writes = 0;
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (...a) {
    if (this.remotePort === b.pub) writes++;
    return write.apply(this, a);
  };
  const N = 2000;
  const t0 = performance.now();
  let all;
  try {
    const ps = [];
    for (let i = 0; i < N; i++) ps.push(nudge.publish([`burst:${i % 10}`, 'burst:all'], { i }));
    all = await Promise.all(ps);
  } finally {
    net.Socket.prototype.write = write;
  }
  const ms = performance.now() - t0;
  t.diagnostic(`${N} publishes acked in ${ms.toFixed(0)} ms (${Math.round(N / ms * 1000)}/s), ${writes} socket writes`);
  for (let i = 0; i < N; i++)
    assert.deepEqual(all[i], { [`burst:${i % 10}`]: Math.floor(i / 10) + 1, 'burst:all': i + 1 }, `publish ${i}`);
  assert.ok(writes <= 5, `${writes} socket writes for ${N} publishes`);
  assert.equal(nudge.stats().acked, N + 1);
});

test('close() flushes what is queued and in flight, and returns within the ack timeout', { timeout: 20000 }, async () => {
  const b = await broker();
  const nudge = pub(b.pub, { ackTimeoutMs: 3000 });
  const ps = [];
  for (let i = 0; i < 100; i++) ps.push(nudge.publish(['closing'], { i }));
  await nudge.close();
  assert.equal(nudge.stats().acked, 100);
  assert.deepEqual(await ps[99], { closing: 100 });
  assert.equal(await nudge.publish(['closing']), null, 'a publish after close() is dropped, not thrown');

  const stopped = await broker();
  await stopped.stop();
  const down = pub(stopped.pub, { ackTimeoutMs: 400 });
  assert.equal(await down.publish(['x']), null);
  const t0 = performance.now();
  await down.close();
  const ms = performance.now() - t0;
  assert.ok(ms >= 350 && ms < 1000, `close() with the broker down took ${ms} ms`);
  assert.deepEqual([down.stats().buffered, down.stats().dropped], [0, 1]);
});

test('a script exits once its publishes are acked, without close()', { timeout: 20000 }, async () => {
  const b = await broker();
  const script = `import { createPublisher } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
    const nudge = createPublisher({ address: '127.0.0.1:${b.pub}', ackTimeoutMs: 8000 });
    console.log(JSON.stringify(await nudge.publish(['script:1'])));`;
  const t0 = performance.now();
  const out = await new Promise((res, rej) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 10000 }, (e, o) => (e ? rej(e) : res(o))));
  const ms = performance.now() - t0;
  assert.equal(out.trim(), '{"script:1":1}');
  assert.ok(ms < 4000, `the script took ${ms} ms: held by an ack timer or the socket`);
});
