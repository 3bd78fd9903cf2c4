// Hidden tabs stay live (issue 15, point 3). Playwright keeps every page visible, so these
// tabs are made over raw CDP (cdp.js): the app's tab, then another tab in front of it, which
// hides it (visibilityState 'hidden', with Chrome's background timer throttling). The hidden
// tab keeps its connection, hears a hint within 100 ms of the publish (the socket is not
// throttled), and its TanStack query still refetches on the hint (the adapter's debounce is a
// timer, and timers in a hidden tab wait for Chrome's 1 s wake-ups); after being hidden for a
// while it is still the same live connection.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch } from './cdp.js';
import { sleep, world } from './browser.js';
import { hiddenApp, keyName } from './social.js';

let w, chrome;
before(async () => {
  // --ws-ping 2: the broker checks every 2 s that the hidden tab's connection answers.
  w = await world({ brokerArgs: ['--public', 'post:*', '--anonymous', 'feed:public', '--anonymous', 'leaderboard', '--ws-ping', '2'] });
  chrome = await launch();
});
after(async () => {
  if (chrome) await chrome.close();
  if (w) await w.close();
});

/** How long three chained 10 ms timers take in `tab` (~30 ms visible; ~1 s each when throttled). */
const timerChain = (tab) =>
  tab.evaluate(`new Promise((r) => { const t0 = performance.now(); let n = 0;
    const f = () => (++n < 3 ? setTimeout(f, 10) : r(Math.round(performance.now() - t0))); setTimeout(f, 10); })`);

/**
 * Publish to `topic` with the publish time in data; resolves to {latency: publish → the hint in
 * the page, refetch: hint → the query's fetch began} in ms, waiting up to 5 s for both.
 */
async function publishAndMeasure(tab, topic, key) {
  const before = await tab.evaluate(`({ hints: app.hints.length, fetches: app.fetchLog.length })`);
  const t = Date.now();
  await w.demo.publish([topic], { data: { t } });
  const end = Date.now() + 5000;
  for (;;) {
    const r = await tab.evaluate(`(() => {
      const h = app.hints.slice(${before.hints}).find((x) => x.topic === ${JSON.stringify(topic)} && x.data && x.data.t === ${t});
      const f = app.fetchLog.slice(${before.fetches}).find((x) => x.key === ${JSON.stringify(keyName(key))});
      return h && f ? { latency: h.at - ${t}, refetch: f.at - h.at, vis: h.vis } : null; })()`);
    if (r) return r;
    if (Date.now() > end) throw new Error(`no hint and refetch of ${topic} in the hidden tab within 5 s`);
    await sleep(20);
  }
}

test('a hidden tab keeps its connection, hears a hint within 100 ms and its query refetches on it', { timeout: 60000 }, async () => {
  const { tab, cover } = await hiddenApp(chrome, w.demo.url, 'bob');
  assert.equal(await tab.evaluate('document.visibilityState'), 'hidden');
  const chain = await timerChain(tab);
  console.log(`hidden tab: three chained 10 ms timers took ${chain} ms (visible: ${await timerChain(cover)} ms)`);
  assert.ok(chain > 500, "the hidden tab's timers are throttled (Chrome's 1 s wake-ups)");
  const conn = await tab.evaluate('app.client.connId');
  assert.ok(conn);

  const runs = [];
  for (let i = 0; i < 5; i++) {
    runs.push(await publishAndMeasure(tab, 'user:bob:dm', ['me', 'dm']));
    await sleep(100);
  }
  console.log('hidden tab, publish → hint (ms):', runs.map((r) => r.latency).join(' '), '| hint → refetch (ms):', runs.map((r) => r.refetch).join(' '));
  for (const r of runs) assert.equal(r.vis, 'hidden', 'the hint arrived while the tab was hidden');
  // Within 100 ms; one scheduling outlier allowed on this shared machine (a hint waiting for a
  // throttled timer would take 0-1000 ms).
  const late = runs.map((r) => r.latency).filter((ms) => ms >= 100);
  assert.ok(late.length <= 1, `hints within 100 ms of their publish, all but one at most (late: ${late.join(' ')})`);
  // Throttled timers: the debounce waits for a 1 s wake-up; allow 3 s under load.
  assert.ok(Math.max(...runs.map((r) => r.refetch)) < 3000, 'each refetch within 3 s of its hint');
  const s = await tab.evaluate('({ state: app.client.state, conn: app.client.connId, states: app.states, n: app.fetches[\'["me","dm"]\'] })');
  assert.deepEqual([s.state, s.conn], ['live', conn], 'the same connection throughout');
  assert.equal(s.n, 1 + runs.length, 'one refetch per hint (they were spaced)');
  await tab.close();
  await cover.close();
});

test('a tab hidden for a while is still the same live connection, and a hint still arrives at once', { timeout: 60000 }, async () => {
  // A short ping interval: the client's own pings and their pong timeouts run on throttled
  // timers (the broker's pings, every 2 s here, are answered by the browser's network stack).
  const { tab, cover } = await hiddenApp(chrome, w.demo.url, 'ann', { pingInterval: 1500 });
  const conn = await tab.evaluate('app.client.connId');
  const states = await tab.evaluate('app.states.length');
  await sleep(6000);
  assert.equal(await tab.evaluate('document.visibilityState'), 'hidden');
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await publishAndMeasure(tab, 'user:ann:notifications', ['me', 'notifications']));
  console.log('after 6 s hidden: publish → hint (ms):', runs.map((r) => r.latency).join(' '), '| hint → refetch (ms):', runs.map((r) => r.refetch).join(' '));
  const late = runs.map((r) => r.latency).filter((ms) => ms >= 100);
  assert.ok(late.length <= 1, `hints within 100 ms of their publish, all but one at most (late: ${late.join(' ')})`);
  assert.ok(Math.max(...runs.map((r) => r.refetch)) < 3000, 'each refetch within 3 s of its hint');
  const s = await tab.evaluate(`({ state: app.client.state, conn: app.client.connId, states: app.states.slice(${states}) })`);
  assert.deepEqual(s, { state: 'live', conn, states: [] }, 'never lost its connection while hidden');
  await tab.close();
  await cover.close();
});
