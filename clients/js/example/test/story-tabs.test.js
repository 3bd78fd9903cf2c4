// App story (e) "Many tabs" (issue #15): the tabs of one origin share one WebSocket
// (@nudge/client/shared, docs/clients.md §One socket for all tabs), in headless Chromium against
// the real nudged and the demo backend. Each page is the lab page running createSharedClient with
// a token from the backend; the SharedWorker is the backend's bundle of src/worker.js.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep, until, world } from './browser.js';
import { launch } from './cdp.js';

let w, b;
before(async () => {
  w = await world();
  b = await w.browser();
});
after(async () => w && w.close());

/**
 * A tab of `ctx` following `topics` with createSharedClient in `mode`; window.t records its hints
 * ({topic, seq, n, own}) and states. `strip` removes SharedWorker and Web Locks first (an old
 * browser). Resolves once its state is live.
 */
async function tab(ctx, mode, topics, strip = false) {
  const page = await w.lab(ctx);
  await page.evaluate(
    async ({ mode, topics, strip }) => {
      if (strip) {
        delete window.SharedWorker;
        Object.defineProperty(Navigator.prototype, 'locks', { value: undefined });
      }
      const { url } = await lab.config();
      const c = lab.createSharedClient({
        url,
        mode,
        token: lab.tokenFor('ann'),
        worker: () => new SharedWorker('/worker.js', { type: 'module', name: 'nudge' }),
        backoff: { min: 50, max: 500 },
      });
      const t = (window.t = { c, hints: [], states: [c.state], calls: {} });
      c.on('hint', (h) => t.hints.push({ topic: h.topic, seq: h.seq, n: h.n || 1, own: !!h.own }));
      c.on('state', (s) => (t.states.push(s), s === 'live' && (t.liveAt = Date.now())));
      for (const n of topics) c.subscribe(n, () => (t.calls[n] = (t.calls[n] || 0) + 1));
    },
    { mode, topics, strip },
  );
  await page.waitForFunction(() => window.t.c.state === 'live', null, { timeout: 10000 });
  return page;
}
const hintsOf = (page) => page.evaluate(() => window.t.hints);
const statsUntil = (pred, what) => until(async () => pred(await w.stats()), 5000, what);
/** A browser context (the tabs of one origin) closed after test `t`, once no socket is left from an earlier test. */
async function context(t) {
  await statsUntil((s) => s.connections.ws === 0, 'no socket left from the test before');
  const ctx = await b.newContext();
  t.after(() => ctx.close().catch(() => {}));
  return ctx;
}

test('eight tabs of one origin hold one WebSocket and each gets the hints of its own subscriptions', { timeout: 30000 }, async (t) => {
  const ctx = await context(t);
  // Tabs 0-3 follow board:shared, every tab its own board:own:i, tabs 6 and 7 the pattern board:p:*.
  const follow = (i) => [...(i < 4 ? ['board:shared'] : []), `board:own:${i}`, ...(i >= 6 ? ['board:p:*'] : [])];
  const pages = await Promise.all([...Array(8).keys()].map((i) => tab(ctx, 'worker', follow(i))));
  assert.equal(await pages[0].evaluate(() => window.t.c.mode), 'worker');
  await statsUntil((s) => s.subscriptions === 10, '10 subscriptions (board:shared, 8 own, the pattern)');
  const s = await w.stats();
  assert.equal(s.connections.ws, 1, 'one WebSocket for eight tabs');
  const conns = await Promise.all(pages.map((p) => p.evaluate(() => window.t.c.connId)));
  assert.equal(new Set(conns).size, 1, 'every tab has the shared connection id');

  const own = [...Array(8).keys()].map((i) => `board:own:${i}`);
  await w.demo.publish(['board:shared', ...own, 'board:p:x', 'board:nobody'], { origin: conns[0] });
  const want = (i) => [...(i < 4 ? ['board:shared'] : []), `board:own:${i}`, ...(i >= 6 ? ['board:p:x'] : [])];
  await until(async () => {
    const n = await Promise.all(pages.map(async (p) => (await hintsOf(p)).length));
    return n.every((x, i) => x >= want(i).length);
  }, 5000, 'every tab its hints');
  await sleep(300); // room for a hint a tab should not get
  for (let i = 0; i < 8; i++) {
    const h = await hintsOf(pages[i]);
    assert.deepEqual(h.map((x) => x.topic).sort(), want(i).sort(), `tab ${i} gets exactly its own topics`);
    assert.ok(h.every((x) => !x.own), `tab ${i}: no own hint while eight tabs share the connection`);
  }
});

test('closing the leader tab loses no hint for the other seven, and one socket serves them again', { timeout: 40000 }, async (t) => {
  const ctx = await context(t);
  const topics = ['board:a', 'board:b', 'board:c'];
  const follow = (i) => [topics[i % 3], ...(i % 2 ? [topics[(i + 1) % 3]] : [])];
  // The first tab, alone, takes the leader lock; the seven others open together.
  const pages = [await tab(ctx, 'leader', follow(0))];
  pages.push(...(await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => tab(ctx, 'leader', follow(i))))));
  assert.equal(await pages[0].evaluate(() => window.t.c.mode), 'leader');
  await statsUntil((s) => s.subscriptions === 3 && s.connections.ws === 1, 'one socket, 3 subscriptions');
  const accepted = (await w.stats()).accepted.ws;

  // Close the leader while publishing.
  const last = {};
  let closedAt;
  for (let k = 0; k < 120; k++) {
    if (k === 40) (closedAt = Date.now()), await pages[0].close();
    const seqs = await w.demo.publish(topics);
    topics.forEach((tp, j) => (last[tp] = seqs[j]));
    await sleep(10);
  }
  const covered = (hints, tp) => {
    const seen = new Set();
    for (const h of hints) if (h.topic === tp) for (let s = h.seq - h.n + 1; s <= h.seq; s++) seen.add(s);
    return seen;
  };
  const rest = pages.slice(1);
  await until(async () => {
    for (let i = 1; i < 8; i++) {
      const h = await hintsOf(pages[i]);
      if (!follow(i).every((tp) => covered(h, tp).has(last[tp]))) return false;
    }
    return true;
  }, 10000, 'every tab the last seq of each of its topics');
  for (let i = 1; i < 8; i++) {
    const h = await hintsOf(pages[i]);
    for (const tp of follow(i)) {
      const seen = covered(h, tp);
      const missing = [];
      for (let s = 1; s <= last[tp]; s++) if (!seen.has(s)) missing.push(s);
      assert.deepEqual(missing, [], `tab ${i} ${tp}: every seq covered by a hint`);
    }
    assert.equal(h.filter((x) => !follow(i).includes(x.topic)).length, 0, `tab ${i}: only its topics`);
  }
  const states = await rest[0].evaluate(() => window.t.states);
  assert.deepEqual(states.slice(-2), ['reconnecting', 'live'], 'the tabs saw the hand-over');
  t.diagnostic(`hand-over: live again ${(await rest[0].evaluate(() => window.t.liveAt)) - closedAt} ms after the leader's close`);
  await statsUntil((s) => s.connections.ws === 1 && s.subscriptions === 3, 'one socket again, 3 subscriptions');
  assert.equal((await w.stats()).accepted.ws, accepted + 1, 'the new leader opened one new socket');
});

test('a leader tab that crashes (no pagehide, no bye) hands over too, without losing a hint', { timeout: 30000 }, async (t) => {
  const ctx = await context(t);
  const lead = await tab(ctx, 'leader', ['board:k']);
  const others = await Promise.all([0, 1].map(() => tab(ctx, 'leader', ['board:k'])));
  await statsUntil((s) => s.connections.ws === 1 && s.subscriptions === 1, 'one socket');
  const cdp = await ctx.newCDPSession(lead);
  cdp.send('Page.crash').catch(() => {}); // answers only by the target going away
  let last = 0;
  for (let k = 0; k < 30; k++) {
    [last] = await w.demo.publish(['board:k']);
    await sleep(10);
  }
  const covers = (h) => {
    const seen = new Set();
    for (const x of h) for (let s = x.seq - x.n + 1; s <= x.seq; s++) seen.add(s);
    return [...Array(last).keys()].every((i) => seen.has(i + 1));
  };
  for (const p of others) await until(async () => covers(await hintsOf(p)), 8000, 'every seq in the other tabs');
  await statsUntil((s) => s.connections.ws === 1, 'one socket again');
});

test('a tab that closes or crashes drops its subscriptions from the hub; the socket stays for the others', { timeout: 30000 }, async (t) => {
  const ctx = await context(t);
  const x = await tab(ctx, 'worker', ['board:x']);
  const xy = await tab(ctx, 'worker', ['board:x', 'board:y']);
  const z = await tab(ctx, 'worker', ['board:z']);
  const v = await tab(ctx, 'worker', ['board:v']);
  await statsUntil((s) => s.subscriptions === 4 && s.connections.ws === 1, '4 subscriptions on one socket');
  // A crashed tab says nothing: the worker learns it from the tab's Web Lock, released.
  const cdp = await ctx.newCDPSession(v);
  cdp.send('Page.crash').catch(() => {});
  await statsUntil((s) => s.subscriptions === 3, 'board:v unsubscribed');
  await z.close(); // the only tab on board:z
  await statsUntil((s) => s.subscriptions === 2, 'board:z unsubscribed');
  await x.close(); // board:x is still followed by the other tab
  await sleep(300);
  let s = await w.stats();
  assert.equal(s.subscriptions, 2, 'board:x stays for the tab still following it');
  assert.equal(s.connections.ws, 1);
  await w.demo.publish(['board:x', 'board:y', 'board:z']);
  await xy.waitForFunction(() => window.t.hints.length === 2, null, { timeout: 5000 });
  s = await w.stats();
  assert.equal(s.connections.ws, 1, 'one socket all along');
});

test("'alone' works: a tab forced alone, and one without SharedWorker or Web Locks, each hold their own socket", { timeout: 30000 }, async (t) => {
  const ctx = await context(t);
  const forced = await tab(ctx, 'alone', ['board:solo']);
  const old = await tab(ctx, 'auto', ['board:solo'], true);
  assert.equal(await forced.evaluate(() => window.t.c.mode), 'alone');
  assert.equal(await old.evaluate(() => window.t.c.mode), 'alone');
  await statsUntil((s) => s.connections.ws === 2, 'a socket each');
  const conn = await forced.evaluate(() => window.t.c.connId);
  await w.demo.publish(['board:solo'], { origin: conn });
  for (const p of [forced, old]) await p.waitForFunction(() => window.t.hints.length === 1, null, { timeout: 5000 });
  assert.equal((await hintsOf(forced))[0].own, true, 'alone, its own change is own');
  assert.equal((await hintsOf(old))[0].own, false);
});

test('a background leader tab that Chrome freezes steps down: the running tabs get every hint, and it catches up on resume', { timeout: 40000 }, async () => {
  // Raw CDP (cdp.js): Playwright keeps every page visible, and Chrome freezes only hidden ones.
  // Each tab opens in the window of the first, hiding the one before: the leader is hidden.
  await statsUntil((s) => s.connections.ws === 0, 'no socket left from the test before');
  const chrome = await launch();
  try {
    const open = async (topics) => {
      const tb = await chrome.newTab(w.demo.url + '/lab');
      await tb.waitFor('window.lab !== undefined');
      await tb.evaluate(`(async () => {
        const { url } = await lab.config();
        const c = lab.createSharedClient({ url, mode: 'leader', token: lab.tokenFor('ann'), backoff: { min: 50, max: 500 } });
        window.t = { c, hints: [] };
        c.on('hint', (h) => t.hints.push({ topic: h.topic, seq: h.seq, n: h.n || 1 }));
        for (const n of ${JSON.stringify(topics)}) c.subscribe(n, () => {});
      })()`);
      await tb.waitFor("window.t.c.state === 'live'");
      return tb;
    };
    const lead = await open(['board:f']);
    const others = [await open(['board:f', 'board:g']), await open(['board:g'])];
    assert.equal(await lead.evaluate('document.visibilityState'), 'hidden');
    await statsUntil((s) => s.connections.ws === 1 && s.subscriptions === 2, 'one socket');
    const accepted = (await w.stats()).accepted.ws;
    await lead.cdp('Page.setWebLifecycleState', { state: 'frozen' });
    const last = {};
    for (let k = 0; k < 20; k++) {
      const [f, g] = await w.demo.publish(['board:f', 'board:g']);
      Object.assign(last, { 'board:f': f, 'board:g': g });
      await sleep(10);
    }
    const covers = async (tb, tp) => {
      const seen = new Set();
      for (const x of await tb.evaluate('window.t.hints')) if (x.topic === tp) for (let s = x.seq - x.n + 1; s <= x.seq; s++) seen.add(s);
      return [...Array(last[tp]).keys()].every((i) => seen.has(i + 1));
    };
    await until(async () => (await covers(others[0], 'board:f')) && (await covers(others[0], 'board:g')), 8000, 'tab 2: every seq');
    await until(() => covers(others[1], 'board:g'), 8000, 'tab 3: every seq');
    await statsUntil((s) => s.connections.ws === 1 && s.accepted.ws === accepted + 1, 'one socket, opened by a running tab');
    await lead.cdp('Page.setWebLifecycleState', { state: 'active' });
    await until(() => covers(lead, 'board:f'), 8000, 'the resumed tab catches up');
    // Back, it queues for the lock again: with the other tabs closed, it leads.
    await others[0].close();
    await others[1].close();
    await statsUntil((s) => s.connections.ws === 1 && s.accepted.ws === accepted + 2 && s.subscriptions === 1, 'the resumed tab leads');
    [last['board:f']] = await w.demo.publish(['board:f']);
    await until(() => covers(lead, 'board:f'), 5000, 'its hints');
  } finally {
    await chrome.close();
  }
});
