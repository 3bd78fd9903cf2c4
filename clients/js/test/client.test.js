// The core client against the real nudged: delivery, reference counting, states, reconnect and
// resume across broker restarts, epochs, patterns, msgpack.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { publisher, recorder, sleep, startBroker, tempDir, until } from './support.js';

const stops = [];
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of stops) await s();
});
async function broker(opts) {
  const b = await startBroker(opts);
  stops.push(() => b.stop());
  return b;
}
function rec(opts) {
  const r = recorder(opts);
  clients.push(r.c);
  return r;
}
const subsSent = (r, type) => r.sent.filter((m) => m.type === type).flatMap((m) => m.topics);

test('a hint reaches the subscriber with its seq, data and own flag', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const r = rec({ url: b.url });
  const got = [];
  r.c.subscribe('project:17', (h) => got.push(h));
  await r.live();
  await until(() => r.sent.some((m) => m.type === 'sub'), 2000, 'sub');
  await sleep(100); // the subscription is confirmed before the publish
  await p.pub('project:17', { data: { by: 'zoë' } });
  await p.pub('project:17', { origin: r.c.connId });
  await until(() => got.length === 2, 5000, 'two hints');
  assert.deepEqual(got[0], { type: 'hint', topic: 'project:17', seq: 1, data: { by: 'zoë' } });
  assert.equal(got[1].seq, 2);
  assert.equal(got[1].own, true);
  assert.deepEqual(r.c.positions().seqs, { 'project:17': 2 });
  p.close();
});

test('two subscribers of one topic share one broker subscription until the last leaves', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const r = rec({ url: b.url });
  const a = [], bb = [];
  const offA = r.c.subscribe('doc:1', (h) => a.push(h.seq));
  const offB = r.c.subscribe('doc:1', (h) => bb.push(h.seq));
  await r.live();
  await sleep(100);
  assert.deepEqual(subsSent(r, 'sub'), ['doc:1']);
  await p.pub('doc:1');
  await until(() => a.length === 1 && bb.length === 1, 5000, 'both callbacks');
  offA();
  offA(); // a second call is harmless
  await sleep(100);
  assert.deepEqual(subsSent(r, 'unsub'), [], 'no unsub while one subscriber is left');
  await p.pub('doc:1');
  await until(() => bb.length === 2, 5000, 'the remaining callback');
  assert.deepEqual(a, [1]);
  offB();
  await until(() => subsSent(r, 'unsub').length === 1, 2000, 'unsub');
  assert.deepEqual(subsSent(r, 'unsub'), ['doc:1']);
  await sleep(100);
  await p.pub('doc:1');
  await sleep(200);
  assert.deepEqual(bb, [1, 2]);
  assert.equal(r.hints.length, 2, 'no hint after the unsub');
  // subscribe + unsubscribe + subscribe in one tick: one sub, no unsub
  const before = r.sent.length;
  const off1 = r.c.subscribe('doc:2', () => {});
  off1();
  r.c.subscribe('doc:2', () => {});
  await sleep(100);
  assert.deepEqual(r.sent.slice(before).map((m) => m.type + ' ' + m.topics), ['sub doc:2']);
  p.close();
});

test('after a restart on the same data directory the client resumes: one catch-up hint per changed topic, no reset', { timeout: 30000 }, async () => {
  const dir = tempDir();
  let b = await broker({ args: ['--data-dir', dir] });
  let p = await publisher(b.pub);
  // The token provider (ignored by a broker without token keys) holds every reconnect attempt
  // until the test has published, so that the changes are missed, not delivered live.
  let gate = Promise.resolve(null), open;
  const r = rec({ url: b.url, token: () => gate });
  for (const t of ['a:1', 'a:2', 'a:3']) r.c.subscribe(t, () => {});
  await r.live();
  await sleep(100);
  await p.pub(['a:1', 'a:2']);
  await until(() => r.hints.length === 2, 5000, 'two live hints');
  gate = new Promise((res) => (open = res));
  p.close();
  await b.stop();
  await until(() => r.c.state === 'reconnecting', 5000, 'reconnecting');
  const conn1 = r.sent.length;
  b = await broker({ args: ['--data-dir', dir], ws: b.ws });
  p = await publisher(b.pub);
  // While the client is away: three changes of a:1, one of a:3, none of a:2.
  await p.pub('a:1');
  await p.pub(['a:1', 'a:3']);
  await p.pub('a:1');
  open(null);
  await r.live(10000);
  await until(() => r.hints.length === 4, 5000, 'two catch-up hints');
  await sleep(200);
  const resumed = r.sent.slice(conn1).find((m) => m.type === 'sub');
  assert.deepEqual(resumed.resume.seqs, { 'a:1': 1, 'a:2': 1, 'a:3': 0 });
  const catchup = r.hints.slice(2).map(({ topic, seq, n }) => ({ topic, seq, n }));
  catchup.sort((x, y) => (x.topic < y.topic ? -1 : 1));
  assert.deepEqual(catchup, [{ topic: 'a:1', seq: 4, n: 3 }, { topic: 'a:3', seq: 1, n: undefined }]);
  assert.deepEqual(r.resets, []);
  assert.deepEqual(r.c.positions().seqs, { 'a:1': 4, 'a:2': 1, 'a:3': 1 });
  assert.deepEqual(r.states, ['connecting', 'live', 'reconnecting', 'live']);
  p.close();
});

test('a new epoch (the broker lost its data) resets every topic, and hints go on from the new seqs', { timeout: 30000 }, async () => {
  let b = await broker();
  let p = await publisher(b.pub);
  const r = rec({ url: b.url });
  const got = [];
  r.c.subscribe('x:1', (m) => got.push(m));
  r.c.subscribe('x:2', (m) => got.push(m));
  await r.live();
  await sleep(100);
  await p.pub(['x:1', 'x:1', 'x:2']);
  await until(() => r.hints.length === 3, 5000, 'live hints');
  const epoch1 = r.c.epoch;
  p.close();
  await b.stop();
  b = await broker({ ws: b.ws }); // --memory: a new epoch
  await r.live(10000);
  await until(() => r.resets.length === 2, 5000, 'two resets');
  assert.notEqual(r.c.epoch, epoch1);
  assert.deepEqual(r.resets.map((x) => [x.topic, x.seq, x.reason]).sort(), [['x:1', 0, 'epoch'], ['x:2', 0, 'epoch']]);
  assert.equal(got.filter((m) => m.type === 'reset').length, 2, 'each subscription callback saw its reset');
  assert.deepEqual(r.c.positions(), { epoch: r.c.epoch, seqs: { 'x:1': 0, 'x:2': 0 } });
  p = await publisher(b.pub);
  await p.pub('x:1');
  await until(() => r.hints.length === 4, 5000, 'a live hint');
  assert.equal(r.hints[3].seq, 1);
  // The next resume carries the new epoch and the positions learnt in it.
  const n = r.sent.length;
  await r.c.pause();
  r.c.resume();
  await r.live();
  await sleep(100);
  const sub = r.sent.slice(n).find((m) => m.type === 'sub');
  assert.deepEqual(sub.resume, { epoch: r.c.epoch, seqs: { 'x:1': 1, 'x:2': 0 } });
  assert.equal(r.resets.length, 2, 'no reset within one epoch');
  p.close();
});

test('a paused client resumes a pattern from the pong position: one catch-up hint per changed topic under it', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const r = rec({ url: b.url });
  const got = [];
  r.c.subscribe('project:*', (h) => got.push(h));
  await r.live();
  await sleep(100);
  await p.pub(['project:1', 'other:1']);
  await until(() => got.length === 1, 5000, 'a hint through the pattern');
  await r.c.pause();
  assert.equal(r.c.state, 'offline');
  assert.ok(r.sent.some((m) => m.type === 'ping'), 'pause asked for a fresh g');
  assert.equal(r.c.positions().seqs['project:*'], 2, 'the pong g covers both publishes');
  await p.pub('project:1');
  await p.pub('project:2');
  await p.pub('project:1');
  await p.pub('other:2');
  r.c.resume();
  await r.live();
  await until(() => got.length === 3, 5000, 'two catch-up hints');
  await sleep(200);
  assert.equal(got.length, 3);
  const c = got.slice(1).map((h) => [h.topic, h.seq]).sort();
  assert.deepEqual(c, [['project:1', 3], ['project:2', 1]]);
  assert.deepEqual(r.resets, []);
  assert.deepEqual(r.states, ['connecting', 'live', 'offline', 'reconnecting', 'live']);
  p.close();
});

test('the msgpack subprotocol carries the same hints', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const r = rec({ url: b.url, format: 'msgpack' });
  const got = [];
  r.c.subscribe('m:1', (h) => got.push(h));
  await r.live();
  await sleep(100);
  await p.pub('m:1', { data: { rev: 12, score: 0.5, tags: ['a'] } });
  await until(() => got.length === 1, 5000, 'a hint');
  assert.deepEqual(got[0], { type: 'hint', topic: 'm:1', seq: 1, data: { rev: 12, score: 0.5, tags: ['a'] } });
  p.close();
});

test('the client state goes connecting, reconnecting while the broker is down, live, offline after close', { timeout: 20000 }, async () => {
  let b = await broker();
  const r = rec({ url: b.url });
  await r.live();
  await b.stop();
  await until(() => r.c.state === 'reconnecting', 5000, 'reconnecting');
  await sleep(300); // several failed attempts
  b = await broker({ ws: b.ws });
  await r.live(10000);
  r.c.close();
  assert.deepEqual(r.states, ['connecting', 'live', 'reconnecting', 'live', 'offline']);
  assert.equal(r.c.connId, null);
});

test('stored positions of another epoch: a topic subscribed later gets a reset, not a resume in the new epoch', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  await p.pub(['s:a', 's:b']);
  const stored = { epoch: '0123456789abcdef', seqs: { 's:a': 1, 's:b': 1 } };
  const r = rec({ url: b.url, store: { load: () => stored, save() {} } });
  const a = [], bb = [];
  r.c.subscribe('s:a', (m) => a.push(m));
  await r.live();
  await until(() => a.length === 1, 5000, 'the reset of s:a');
  assert.deepEqual(a[0], { type: 'reset', topic: 's:a', seq: 1, reason: 'epoch' });
  const n = r.sent.length;
  r.c.subscribe('s:b', (m) => bb.push(m));
  await until(() => bb.length === 1, 5000, 'the reset of s:b');
  assert.deepEqual(bb[0], { type: 'reset', topic: 's:b', seq: 1, reason: 'epoch' });
  assert.equal(r.sent.slice(n).find((m) => m.type === 'sub').resume, undefined);
  assert.equal(r.resets.length, 2);
  p.close();
});

test('a topic left while disconnected is neither resubscribed nor kept in the positions', { timeout: 20000 }, async () => {
  const b = await broker();
  const r = rec({ url: b.url });
  const off = r.c.subscribe('gone:1', () => {});
  r.c.subscribe('kept:1', () => {});
  await r.live();
  await until(() => Object.keys(r.c.positions().seqs).length === 2, 5000, 'both subscribed');
  await r.c.pause();
  off();
  const n = r.sent.length;
  r.c.resume();
  await r.live();
  await sleep(100);
  assert.deepEqual(r.sent.slice(n).filter((m) => m.type !== 'hello').map((m) => [m.type, m.topics]), [['sub', ['kept:1']]]);
  assert.deepEqual(r.c.positions().seqs, { 'kept:1': 0 });
});

test('a subscription refused for its rate (19) is sent again later until it is accepted', { timeout: 20000 }, async () => {
  const b = await broker({ args: ['--max-subs', '2', '--sub-rate', '1'] });
  const p = await publisher(b.pub);
  const r = rec({ url: b.url });
  const offs = [r.c.subscribe('r:1', () => {}), r.c.subscribe('r:2', () => {})];
  await r.live();
  await until(() => Object.keys(r.c.positions().seqs).length === 2, 5000, 'the burst subscribed');
  offs.forEach((off) => off());
  const got = [];
  r.c.subscribe('r:3', (m) => got.push(m));
  await until(() => got.length === 1, 5000, 'the refusal');
  assert.equal(got[0].code, 19);
  await until(() => r.c.positions().seqs['r:3'] === 0, 10000, 'subscribed by a later try');
  await p.pub('r:3');
  await until(() => got.some((m) => m.type === 'hint'), 5000, 'a hint');
  assert.equal(r.c.state, 'live');
  p.close();
});

test('the browser going offline closes the socket; back online it reconnects at once', { timeout: 20000 }, async () => {
  const b = await broker();
  const target = new EventTarget();
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  const hadNavigator = 'navigator' in globalThis;
  if (!hadNavigator) globalThis.navigator = { onLine: true };
  try {
    const r = rec({ url: b.url, backoff: { min: 60000, max: 60000 } });
    await r.live();
    target.dispatchEvent(new Event('offline'));
    assert.equal(r.c.state, 'offline');
    assert.equal(r.c.connId, null);
    target.dispatchEvent(new Event('online'));
    await r.live(3000); // no 60 s backoff
    assert.deepEqual(r.states, ['connecting', 'live', 'offline', 'reconnecting', 'live']);
    r.c.close();
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
    if (!hadNavigator) delete globalThis.navigator;
  }
});

test('seen(seqs) resolves once the client has the acked seqs (through a pattern too), at once when it has them, false after its timeout', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const r = rec({ url: b.url });
  r.c.subscribe('doc:1', () => {});
  r.c.subscribe('team:*', () => {});
  await r.live();
  await until(() => r.c.positions().seqs['doc:1'] !== undefined, 5000, 'doc:1 subscribed');
  await sleep(100);
  // The backend's ack, before the hints reach the client: not seen yet.
  const seqs = await p.pub(['doc:1', 'team:7']);
  const ack = { 'doc:1': seqs[0], 'team:7': seqs[1] };
  const order = [];
  const done = r.c.seen(ack).then((v) => order.push(['seen', v, r.hints.length]));
  await done;
  assert.deepEqual(order, [['seen', true, 2]], 'resolved after both hints arrived');
  assert.equal(await r.c.seen({ 'doc:1': 1 }), true, 'already seen: at once');
  const t0 = Date.now();
  assert.equal(await r.c.seen({ 'doc:1': 99 }, 200), false, 'never seen: false after the timeout');
  assert.ok(Date.now() - t0 < 1000);
});

test('a hint heard through a pattern is not delivered again by the resume after a lost connection', { timeout: 30000 }, async () => {
  const dir = tempDir();
  let b = await broker({ args: ['--data-dir', dir] });
  let p = await publisher(b.pub);
  const r = rec({ url: b.url });
  const got = [];
  r.c.subscribe('post:*', (m) => m.type === 'hint' && got.push(`${m.topic}@${m.seq}`));
  await r.live();
  await until(() => r.c.positions().seqs['post:*'] !== undefined, 5000, 'the pattern position');
  await sleep(100); // the fresh-position pong after welcome has come
  await p.pub('post:8');
  await until(() => got.length === 1, 5000, 'the live hint');
  // The connection is lost before the next pong: the pattern still resumes from before post:8.
  p.close();
  await b.stop();
  b = await broker({ args: ['--data-dir', dir], ws: b.ws });
  p = await publisher(b.pub);
  await until(() => r.c.state === 'live', 10000, 'live again');
  await sleep(300); // the resume's catch-up, if any, has come
  await p.pub('post:9');
  await until(() => got.length >= 2, 5000, 'the next live hint');
  await sleep(100);
  assert.deepEqual(got, ['post:8@1', 'post:9@1'], 'post:8 once, not again from the resume');
  p.close();
});
