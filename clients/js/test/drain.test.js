// A broker draining for a restart (SIGTERM with --drain-window) closes the client with 1012: it
// reconnects at once, without its backoff, and resumes on the restarted broker with nothing
// lost (docs/operations.md §Stop, docs/protocol.md §WebSocket close codes).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { publisher, recorder, sleep, startBroker, tempDir, until } from './support.js';

const stops = [];
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of stops) await s();
});

test('close 1012 of a drain: the client reconnects at once (no backoff) and resumes with every seq covered', { timeout: 30000 }, async () => {
  const dir = tempDir();
  const args = ['--data-dir', dir, '--drain-window', '600', '--drain-deadline', '5000'];
  let b = await startBroker({ args });
  stops.push(() => b.stop());
  // A backoff of ten minutes: a reconnect through it would never come within the test. The
  // token provider (ignored by the broker) marks each connection attempt, and holds the first
  // one after the drain until the next broker is up.
  let gate = Promise.resolve(null), open;
  const attempts = [];
  const r = recorder({ url: b.url, backoff: { min: 600000, max: 600000 }, token: () => (attempts.push(Date.now()), gate) });
  clients.push(r.c);
  let closedAt = 0;
  r.c.on('state', (s) => s === 'reconnecting' && !closedAt && (closedAt = Date.now()));
  const seqs = [];
  r.c.subscribe('doc:1', (h) => h.type === 'hint' && seqs.push([h.seq, h.n || 1]));
  await r.live();
  await sleep(100);
  gate = new Promise((res) => (open = res));
  // Publish while the broker drains, until it closes the publisher; every ack is kept.
  let p = await publisher(b.pub);
  let acked = 0;
  const stopped = b.stop();
  for (;;) {
    try {
      acked = (await p.pub('doc:1'))[0];
    } catch (e) {
      break; // the drain closed the publisher (its in-flight publishes were acked first)
    }
    await sleep(10);
  }
  await stopped;
  assert.ok(acked > 0, 'publishes acked during the drain');
  await until(() => closedAt, 5000, 'the close');
  const first = attempts.length;
  b = await startBroker({ args, ws: b.ws });
  stops.push(() => b.stop());
  p = await publisher(b.pub);
  const last = (await p.pub('doc:1'))[0];
  open(null);
  await r.live(5000);
  await until(() => seqs.length && seqs[seqs.length - 1][0] === last, 5000, 'the last seq');
  // The first attempt after the close came without the backoff.
  assert.ok(first >= 2, 'an attempt after the close');
  assert.ok(attempts[1] - closedAt < 1000, `reconnect attempt ${attempts[1] - closedAt} ms after the close`);
  // Every seq is covered by a hint (a catch-up hint covers n of them), none reset.
  const covered = new Set();
  for (const [seq, n] of seqs) for (let q = seq - n + 1; q <= seq; q++) covered.add(q);
  for (let q = 1; q <= last; q++) assert.ok(covered.has(q), `seq ${q} of ${last} not covered`);
  assert.deepEqual(r.resets, []);
  assert.deepEqual(r.states, ['connecting', 'live', 'reconnecting', 'live']);
  p.close();
});
