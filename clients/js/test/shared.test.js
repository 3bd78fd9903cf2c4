// One socket for all tabs (src/shared.js) in Node, against the real nudged: "tabs" are clients in
// this process, the SharedWorker is serveTabs on a fake scope handing out MessageChannel ports,
// the leader's BroadcastChannel is Node's, and the Web Locks are test/locks.js (Node 20 has none).
// The browser story (real tabs, real SharedWorker, a leader page closed) is in
// clients/js/example/test/story-tabs.test.js.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { createSharedClient, serveTabs } from '../src/shared.js';
import { fakeLocks } from './locks.js';
import { mint, publisher, sleep, startBroker, tokenSecret, until } from './support.js';

const stops = [];
const tabs = [];
after(async () => {
  for (const t of tabs) t.c.close();
  for (const s of stops) await s();
});
async function broker(opts) {
  const b = await startBroker(opts);
  stops.push(() => b.stop());
  b.stats = async () => (await fetch(`http://127.0.0.1:${b.admin}/stats`)).json();
  return b;
}
/** A SharedWorker stand-in: serveTabs on an EventTarget; each call connects a new port. */
function fakeWorker(locks) {
  const scope = new EventTarget();
  serveTabs(scope, { WebSocket, locks });
  return () => {
    const mc = new MessageChannel();
    scope.dispatchEvent(Object.assign(new Event('connect'), { ports: [mc.port2] }));
    return { port: mc.port1 };
  };
}
/** A tab: a shared client recording its hints (topic@seq, n, own) and its callbacks' messages. */
function tab(opts) {
  const c = createSharedClient({ WebSocket, backoff: { min: 20, max: 200 }, ...opts });
  const t = { c, hints: [], got: {}, states: [c.state] };
  c.on('hint', (h) => t.hints.push(h));
  c.on('state', (s) => t.states.push(s));
  t.sub = (name) => c.subscribe(name, (m) => (t.got[name] = t.got[name] || []).push(m));
  tabs.push(t);
  return t;
}
const live = (ts, ms = 5000) => until(() => ts.every((t) => t.c.state === 'live'), ms, 'every tab live');
const topicsOf = (t) => t.hints.map((h) => h.topic + '@' + h.seq);

test('tabs of one worker share one socket and each gets the hints of its own subscriptions', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const locks = fakeLocks();
  const worker = fakeWorker(locks);
  const [t1, t2, t3] = [0, 1, 2].map(() => tab({ url: b.url, mode: 'worker', worker, locks }));
  t1.sub('doc:1');
  t2.sub('doc:1');
  t2.sub('proj:*');
  t2.sub('proj:7'); // a topic its own pattern also matches: one on('hint'), both callbacks
  t3.sub('doc:3');
  await live([t1, t2, t3]);
  assert.equal(t1.c.mode, 'worker');
  await until(async () => (await b.stats()).subscriptions === 4, 3000, '4 subscriptions');
  const s = await b.stats();
  assert.equal(s.connections.ws, 1, 'one WebSocket for the three tabs');
  assert.ok(t1.c.connId && t1.c.connId === t2.c.connId && t2.c.connId === t3.c.connId, 'one connId');

  const ack = await p.pub(['doc:1', 'proj:7', 'doc:3', 'other:1'], { origin: t1.c.connId });
  // Read your writes, as with createClient: resolves once the tab has the acked seqs.
  assert.equal(await t2.c.seen({ 'doc:1': ack[0], 'proj:7': ack[1] }), true);
  assert.ok(t2.hints.length === 2, 'seen() resolved after the two hints');
  assert.equal(await t3.c.seen({ 'doc:3': 99 }, 200), false, 'never: false after its timeout');
  await until(() => t1.hints.length + t2.hints.length + t3.hints.length === 4, 5000, 'the hints');
  await sleep(100);
  assert.deepEqual(topicsOf(t1), ['doc:1@1']);
  assert.deepEqual(topicsOf(t2), ['doc:1@1', 'proj:7@1']);
  assert.deepEqual(topicsOf(t3), ['doc:3@1']);
  assert.equal(t2.got['proj:*'].length, 1);
  assert.equal(t2.got['proj:7'].length, 1);
  assert.ok(t1.hints.concat(t2.hints, t3.hints).every((h) => !h.own), 'own stripped while three tabs share it');
  assert.equal(t1.c.positions().seqs['doc:3'], 1, 'every tab keeps the positions of all');

  // A tab that closes: its topic is unsubscribed, the shared one stays.
  t3.c.close();
  await until(async () => (await b.stats()).subscriptions === 3, 3000, 'doc:3 unsubscribed');
  t2.c.close();
  await until(async () => (await b.stats()).subscriptions === 1, 3000, 'proj:* and proj:7 unsubscribed');
  // One tab left: its own change is `own` again.
  await p.pub('doc:1', { origin: t1.c.connId });
  await until(() => t1.hints.length === 2, 5000, 'a second hint');
  assert.equal(t1.hints[1].own, true);
  // The last tab leaves: the socket closes.
  t1.c.close();
  await until(async () => (await b.stats()).connections.ws === 0, 3000, 'the socket closed');
  p.close();
});

test('a tab gone without a word (its lock released) drops its subscriptions from the hub', { timeout: 20000 }, async () => {
  const b = await broker();
  const locks = fakeLocks();
  const worker = fakeWorker(locks);
  const t1 = tab({ url: b.url, mode: 'worker', worker, locks });
  t1.sub('doc:1');
  await live([t1]);
  // A tab speaking the protocol by hand, so that it can "crash": it holds its lock, says hello
  // with a subscription, then only releases the lock (no bye, no port close).
  let release;
  await new Promise((res) => locks.request('nudge:nudge:tab:raw', () => (res(), new Promise((r) => (release = r)))));
  const { port } = worker();
  port.postMessage({ t: 'hello', tab: 'raw', o: {}, p: null, subs: ['doc:raw'], lk: 'nudge:nudge:tab:raw' });
  await until(async () => (await b.stats()).subscriptions === 2, 3000, 'doc:raw subscribed');
  release();
  await until(async () => (await b.stats()).subscriptions === 1, 3000, 'doc:raw unsubscribed');
  assert.equal((await b.stats()).connections.ws, 1, 'the socket stays for the other tab');
  port.close();
});

test('the hub asks another tab for a token when the first does not answer in 5 s', { timeout: 20000 }, async () => {
  const ts = tokenSecret();
  const b = await broker({ args: ['--token-secret-file', ts.file] });
  const locks = fakeLocks();
  const worker = fakeWorker(locks);
  let asked1 = 0, asked2 = 0;
  const t1 = tab({ url: b.url, mode: 'worker', worker, locks, token: () => (asked1++, new Promise(() => {})) });
  await sleep(50); // t1 says hello first: the hub asks it first
  const t2 = tab({ url: b.url, mode: 'worker', worker, locks, token: async () => (asked2++, mint(ts.secret, 'u1')) });
  t1.sub('user:u1:inbox');
  const start = Date.now();
  await live([t1, t2], 9000);
  const took = Date.now() - start;
  assert.equal(asked1, 1);
  assert.equal(asked2, 1);
  assert.ok(took >= 4500 && took < 8000, `connected after the 5 s wait (${took} ms)`);
});

test('closing the leader tab hands the socket over without losing a hint', { timeout: 30000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const locks = fakeLocks();
  const ts = [0, 1, 2, 3].map(() => tab({ url: b.url, mode: 'leader', locks }));
  ts[0].sub('a:1');
  ts[1].sub('a:1');
  ts[1].sub('b:1');
  ts[2].sub('b:1');
  ts[3].sub('c:*');
  await live(ts);
  assert.equal(ts[1].c.mode, 'leader');
  await until(async () => (await b.stats()).subscriptions === 3, 3000, '3 subscriptions');
  assert.equal((await b.stats()).connections.ws, 1);
  const last = {};
  for (let i = 0; i < 150; i++) {
    if (i === 50) ts[0].c.close(); // the leader (first to ask for the lock) leaves
    const seqs = await p.pub(['a:1', 'b:1', 'c:1']);
    Object.assign(last, { 'a:1': seqs[0], 'b:1': seqs[1], 'c:1': seqs[2] });
    await sleep(5);
  }
  const want = { 1: ['a:1', 'b:1'], 2: ['b:1'], 3: ['c:1'] };
  const covered = (t, topic) => {
    const seen = new Set();
    for (const h of t.hints.filter((x) => x.topic === topic)) for (let s = h.seq - (h.n || 1) + 1; s <= h.seq; s++) seen.add(s);
    return seen;
  };
  await until(() => [1, 2, 3].every((i) => want[i].every((tp) => covered(ts[i], tp).has(last[tp]))), 8000, 'the last seqs');
  for (const i of [1, 2, 3]) {
    for (const tp of want[i]) {
      const seen = covered(ts[i], tp);
      const missing = [];
      for (let s = 1; s <= last[tp]; s++) if (!seen.has(s)) missing.push(s);
      assert.deepEqual(missing, [], `tab ${i} ${tp}: every seq covered by a hint`);
    }
    assert.deepEqual(ts[i].states.slice(-2), ['reconnecting', 'live']);
  }
  assert.equal((await b.stats()).connections.ws, 1, 'one socket after the hand-over');
  p.close();
});

test('the shared socket pauses when every tab paused, and a tab resuming brings it back', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const locks = fakeLocks();
  const worker = fakeWorker(locks);
  const [t1, t2] = [0, 1].map(() => tab({ url: b.url, mode: 'worker', worker, locks }));
  t1.sub('doc:1');
  t2.sub('doc:2');
  await live([t1, t2]);
  await t1.c.pause();
  await sleep(100);
  assert.equal(t1.c.state, 'live', 'another tab still needs the socket');
  await t2.c.pause();
  await until(() => t1.c.state === 'offline' && t2.c.state === 'offline', 3000, 'offline');
  assert.equal((await b.stats()).connections.ws, 0);
  await p.pub(['doc:1', 'doc:1', 'doc:2']);
  t1.c.resume();
  await live([t1, t2]);
  await until(() => t1.hints.length === 1 && t2.hints.length === 1, 5000, 'the catch-up hints');
  assert.equal(t1.hints[0].topic, 'doc:1');
  assert.equal(t2.hints[0].topic, 'doc:2');
  p.close();
});

test("'alone' (and 'auto' with neither SharedWorker nor Web Locks) is a plain client in this tab", { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const a = tab({ url: b.url, mode: 'alone' });
  const auto = tab({ url: b.url, worker: () => assert.fail('no SharedWorker here') });
  assert.equal(a.c.mode, 'alone');
  assert.equal(auto.c.mode, 'alone');
  a.sub('doc:1');
  auto.sub('doc:1');
  await live([a, auto]);
  assert.equal((await b.stats()).connections.ws, 2, 'a socket each');
  await sleep(100);
  await p.pub('doc:1', { origin: a.c.connId });
  await until(() => a.hints.length === 1 && auto.hints.length === 1, 5000, 'hints');
  assert.equal(a.hints[0].own, true);
  p.close();
});
