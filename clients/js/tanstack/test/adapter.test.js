// The TanStack Query adapter against the real nudged and a real @tanstack/query-core
// QueryClient whose queryFns count their runs: routing with captures, debounced bursts, one
// refetch per key after a catch-up, jittered resets, own changes, failed mutations.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MutationObserver } from '@tanstack/query-core';
import { connectQueryClient, invalidateOnError } from '../src/index.js';
import { nudgeClient, publisher, queries, sleep, startBroker, tempDir, until } from './support.js';

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});
async function broker(opts) {
  const b = await startBroker(opts);
  cleanups.push(() => b.stop());
  return b;
}
function client(opts) {
  const c = nudgeClient(opts);
  cleanups.push(() => c.close());
  return c;
}
async function queryClient(keys) {
  const q = await queries(keys);
  cleanups.push(() => q.close());
  return q;
}
const settle = () => sleep(250); // > debounce (50 ms) + a fetch (20 ms), with room
const h = (key) => JSON.stringify(key);

test('a hint invalidates exactly the key its route maps the topic to, captures included', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const c = client({ url: b.url });
  const keys = [['project', '1'], ['project', '2'], ['inbox', 'ann'], ['inbox', 'bob'], ['feed'],
    ['org', '3', 'board:9'], ['org', '4', 'board:9'], ['other']];
  const q = await queryClient(keys);
  const stop = connectQueryClient(c, q.qc, {
    routes: {
      'project:*': (id) => ['project', id],
      'user:*:inbox': (u) => ['inbox', u],
      'feed:**': ['feed'],
      'org:*:**': (org, rest) => ['org', org, rest],
    },
  });
  cleanups.push(stop);
  await c.live();
  await sleep(150);
  const zero = Object.fromEntries(keys.map((k) => [h(k), 0]));
  const expect = async (topic, key) => {
    const n = c.hints.length;
    await p.pub(topic);
    await until(() => c.hints.length === n + 1, 5000, 'the hint of ' + topic);
    await settle();
    assert.deepEqual(q.counts(), key ? { ...zero, [h(key)]: 1 } : zero, topic);
    for (const k of keys) q.times(k).length = 0;
  };
  await expect('project:2', ['project', '2']);
  await expect('user:bob:inbox', ['inbox', 'bob']);
  await expect('feed:top:week', ['feed']);
  await expect('org:3:board:9', ['org', '3', 'board:9']);
  // Routed to a key no query has: ['project', '7'] is no prefix of ['project', '1'].
  await expect('project:7', null);
  stop();
  await p.pub('project:1');
  await settle();
  assert.deepEqual(q.counts(), zero, 'nothing after the disposer');
  p.close();
});

test('a burst of 20 hints for one key refetches it once', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const c = client({ url: b.url });
  const q = await queryClient([['project', '1'], ['project', '2']]);
  cleanups.push(connectQueryClient(c, q.qc, { routes: { 'project:*': (id) => ['project', id] } }));
  await c.live();
  await sleep(150);
  await Promise.all(Array.from({ length: 20 }, () => p.pub('project:1')));
  await until(() => c.hints.at(-1)?.seq === 20, 5000, 'the 20th hint');
  await settle();
  assert.ok(c.hints.length >= 5, `the broker delivered the burst as hints (${c.hints.length})`);
  assert.equal(q.fetches(['project', '1']), 1);
  assert.equal(q.fetches(['project', '2']), 0);
  p.close();
});

test('a steady stream of hints still refetches while it lasts, every 4 × debounceMs at most', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const c = client({ url: b.url });
  const q = await queryClient([['project', '1']]);
  cleanups.push(connectQueryClient(c, q.qc, { routes: { 'project:*': (id) => ['project', id] }, debounceMs: 100 }));
  await c.live();
  await sleep(150);
  // A hint every 20 ms for 1 s: never 100 ms apart, so only the cap (400 ms) lets it refetch.
  const end = Date.now() + 1000;
  while (Date.now() < end) await Promise.all([p.pub('project:1'), sleep(20)]);
  const during = q.fetches(['project', '1']);
  await settle();
  assert.ok(during >= 1, 'refetched during the stream');
  assert.ok(q.fetches(['project', '1']) <= 5, 'not once per hint: ' + q.fetches(['project', '1']));
  p.close();
});

test('after a broker restart on the same data directory the catch-up refetches each changed key once', { timeout: 30000 }, async () => {
  const dir = tempDir();
  let b = await broker({ args: ['--data-dir', dir] });
  let p = await publisher(b.pub);
  // The token provider (ignored by a broker without token keys) holds the reconnect until the
  // test has published, so that the changes are caught up, not delivered live.
  let gate = Promise.resolve(null), open;
  const c = client({ url: b.url, token: () => gate });
  const keys = [['project', '1'], ['project', '2'], ['project', '3'], ['feed']];
  const q = await queryClient(keys);
  cleanups.push(connectQueryClient(c, q.qc, {
    routes: { 'project:1': ['project', '1'], 'project:2': ['project', '2'], 'project:3': ['project', '3'], 'feed:*': ['feed'] },
    resetJitterMs: 0,
  }));
  await c.live();
  await sleep(150);
  await p.pub(['project:1', 'project:2', 'project:3', 'feed:a']);
  await until(() => c.hints.length === 4, 5000, 'four live hints');
  await settle();
  gate = new Promise((res) => (open = res));
  p.close();
  await c.pause(); // a fresh global position for the feed:* pattern
  await b.stop();
  c.resume();
  b = await broker({ args: ['--data-dir', dir], ws: b.ws });
  p = await publisher(b.pub);
  for (const k of keys) q.times(k).length = 0;
  // While the client is away: project:1 three times, project:2 once, project:3 not, and three
  // topics under feed:* (three catch-up hints, one key).
  await p.pub('project:1');
  await p.pub(['project:1', 'project:2']);
  await p.pub('project:1');
  await p.pub(['feed:a', 'feed:b', 'feed:c']);
  const n = c.hints.length;
  open(null);
  await c.live(10000);
  await until(() => c.hints.length === n + 5, 5000, 'five catch-up hints');
  await settle();
  const catchup = c.hints.slice(n).map((x) => x.topic).sort();
  assert.deepEqual(catchup, ['feed:a', 'feed:b', 'feed:c', 'project:1', 'project:2']);
  assert.deepEqual(q.counts(), { [h(['project', '1'])]: 1, [h(['project', '2'])]: 1, [h(['project', '3'])]: 0, [h(['feed'])]: 1 });
  p.close();
});

test('a reset invalidates the whole route after a delay spread over the jitter window', { timeout: 30000 }, async () => {
  let b = await broker();
  const JITTER = 300;
  // Five clients with two routes each: ten resets when the broker comes back with a new epoch.
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const c = client({ url: b.url });
    const q = await queryClient([['project', '1'], ['project', '2'], ['inbox', 'ann']]);
    const resetAt = {};
    c.on('reset', (r) => (resetAt[r.topic] = Date.now()));
    cleanups.push(connectQueryClient(c, q.qc, {
      routes: { 'project:*': (id) => ['project', id], 'user:*:inbox': (u) => ['inbox', u] },
      resetJitterMs: JITTER,
    }));
    runs.push({ c, q, resetAt });
  }
  for (const { c } of runs) await c.live();
  await sleep(150);
  await b.stop();
  b = await broker({ ws: b.ws }); // --memory: a new epoch, a reset per subscription
  await until(() => runs.every(({ resetAt }) => Object.keys(resetAt).length === 2), 10000, 'ten resets');
  await until(() => runs.every(({ q }) => q.fetches(['inbox', 'ann']) === 1 && q.fetches(['project', '2']) === 1), 5000, 'the refetches');
  await settle();
  const delays = [];
  for (const { q, resetAt } of runs) {
    // The reset of project:* covers every project query: the same delay for both.
    assert.deepEqual(q.counts(), { [h(['project', '1'])]: 1, [h(['project', '2'])]: 1, [h(['inbox', 'ann'])]: 1 });
    assert.ok(Math.abs(q.times(['project', '1'])[0] - q.times(['project', '2'])[0]) <= 5, 'one invalidation for both');
    delays.push(q.times(['project', '1'])[0] - resetAt['project:*'], q.times(['inbox', 'ann'])[0] - resetAt['user:*:inbox']);
  }
  delays.sort((x, y) => x - y);
  console.log('reset → refetch delays (ms):', delays.join(' '));
  assert.ok(delays[0] >= 0 && delays.at(-1) <= JITTER + 200, 'within the window (and a late timer)');
  // Ten uniform draws over 300 ms all within 100 ms of each other: p ≈ 0.0004.
  assert.ok(delays.at(-1) - delays[0] >= 100, 'spread over the window: ' + delays.join(' '));
});

test('an own hint does not refetch by default, does with skipOwn: false, and a foreign one does', { timeout: 20000 }, async () => {
  const b = await broker();
  const p = await publisher(b.pub);
  const c = client({ url: b.url });
  const skip = await queryClient([['project', '1']]);
  const keep = await queryClient([['project', '1']]);
  const owned = [];
  const routes = { 'project:*': (id) => ['project', id] };
  cleanups.push(connectQueryClient(c, skip.qc, { routes, onOwn: (hint, key) => owned.push([hint.topic, key]) }));
  cleanups.push(connectQueryClient(c, keep.qc, { routes, skipOwn: false }));
  await c.live();
  await sleep(150);
  await p.pub('project:1', { origin: c.connId });
  await until(() => c.hints.length === 1, 5000, 'the own hint');
  assert.equal(c.hints[0].own, true);
  await settle();
  assert.equal(skip.fetches(['project', '1']), 0, 'own change: no refetch');
  assert.deepEqual(owned, [['project:1', ['project', '1']]], 'marked: onOwn got it');
  assert.equal(keep.fetches(['project', '1']), 1, 'skipOwn: false refetches');
  // Another client's change, even right after an own one, refetches.
  await p.pub('project:1', { origin: c.connId });
  await p.pub('project:1');
  await until(() => c.hints.length === 3, 5000, 'two more hints');
  await settle();
  assert.equal(skip.fetches(['project', '1']), 1);
  p.close();
});

test('invalidateOnError refetches the key of a failed optimistic mutation, showing server truth', { timeout: 20000 }, async () => {
  const q = await queryClient([['project', '1'], ['project', '2']]);
  const before = q.qc.getQueryData(['project', '1']);
  const m = new MutationObserver(q.qc, {
    mutationFn: async () => {
      await sleep(10);
      throw new Error('refused by the backend');
    },
    onMutate: (v) => q.qc.setQueryData(['project', v.id], 'optimistic'),
    onError: invalidateOnError(q.qc, (v) => ['project', v.id]),
  });
  await assert.rejects(m.mutate({ id: '1' }));
  await until(() => q.fetches(['project', '1']) === 1, 2000, 'the refetch');
  await until(() => q.qc.isFetching() === 0, 2000, 'the refetch to settle');
  assert.equal(q.qc.getQueryData(['project', '1']), before, 'server truth again');
  assert.equal(q.fetches(['project', '2']), 0);
});

test('with subscribe: false the routes map only what the app follows, and a topic reset invalidates its own key', { timeout: 30000 }, async () => {
  let b = await broker();
  const p = await publisher(b.pub);
  const c = client({ url: b.url });
  const keys = [['project', '1'], ['project', '2'], ['feed']];
  const q = await queryClient(keys);
  cleanups.push(connectQueryClient(c, q.qc, {
    routes: { 'project:*': (id) => ['project', id], 'feed:**': ['feed'] },
    subscribe: false,
    resetJitterMs: 0,
  }));
  const off = c.subscribe('project:1', () => {}); // what a mounted component follows
  await c.live();
  await until(() => c.positions().seqs['project:1'] !== undefined, 5000, 'project:1 subscribed');
  await p.pub(['project:1', 'project:2', 'feed:x']);
  await until(() => q.fetches(['project', '1']) === 1, 5000, 'the refetch of project 1');
  await settle();
  // Not followed: no hint, no refetch (the routes did not subscribe project:* or feed:**).
  assert.deepEqual(q.counts(), { [h(['project', '1'])]: 1, [h(['project', '2'])]: 0, [h(['feed'])]: 0 });
  p.close();
  await b.stop();
  b = await broker({ ws: b.ws }); // a new epoch: the followed topic's reset
  await until(() => q.fetches(['project', '1']) === 2, 10000, 'the reset refetch of project 1');
  await settle();
  assert.deepEqual(q.counts(), { [h(['project', '1'])]: 2, [h(['project', '2'])]: 0, [h(['feed'])]: 0 });
  off();
});
