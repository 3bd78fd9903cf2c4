// App story (b), "Social app" (issue 15): votes, comments, intro requests, direct messages and
// read receipts, and badges publish to the entity's topic, the feed, the leaderboard and the
// affected users. Three browsers: ann, bob and a logged-out visitor on the public feed, each
// the social app (social.js: the real client, the TanStack adapter and one query per route).
// Each sees exactly the updates meant for it; bob's browser, offline for some of them, catches
// up on reconnect with one refetch per query key; a DM reaches bob's hidden tab within 100 ms.
//
// What the backend publishes (the broker: posts are public to users, the feed and the
// leaderboard to everyone, `user:<sub>:...` to its user only):
//   vote on post 7       → post:7, feed:public, leaderboard
//   comment on post 7    → post:7, user:<author>:notifications   (bob wrote post 7)
//   intro request a → b  → user:b:intros, user:a:intros
//   DM a → b             → user:b:dm;  read receipt b → a: user:a:dm
//   badge for b          → user:b:badges, leaderboard           (by the backend: no origin)
// A change made in a page carries its connId as origin: that page applied it already and does
// not refetch it (the adapter's skipOwn).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launch } from './cdp.js';
import { sleep, world } from './browser.js';
import { hiddenApp, routesFor, startApp } from './social.js';

const BROKER = ['--public', 'post:*', '--anonymous', 'feed:public', '--anonymous', 'leaderboard'];
let w;
const who = {}; // name → {ctx, page, user, topics: its routes' topics, probes}

before(async () => {
  w = await world({ brokerArgs: BROKER });
  const users = { ann: 'ann', bob: 'bob', visitor: null };
  // Topics each page also tries to follow and must be refused (error 17).
  const probes = { ann: ['user:bob:dm', 'user:bob:**'], bob: ['user:ann:dm'], visitor: ['post:7', 'user:ann:dm', 'user:bob:badges'] };
  for (const [name, user] of Object.entries(users)) {
    const ctx = await (await w.browser()).newContext();
    const page = await w.lab(ctx);
    await page.evaluate(startApp, { user, routes: routesFor(user), probes: probes[name] });
    who[name] = { ctx, page, user, topics: routesFor(user).map(([t]) => t), probes: probes[name] };
  }
});
after(async () => w && w.close());

/** Bounded wait for an async predicate. */
async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// A query key by its short name: ['post', '7'] → post, ['me', 'dm'] → dm.
const short = (name) => {
  const k = JSON.parse(name);
  return k[0] === 'me' ? k[1] : k[0];
};
const fetchesOf = async (name) => {
  const f = await who[name].page.evaluate(() => app.fetches);
  return Object.fromEntries(Object.entries(f).map(([k, n]) => [short(k), n]));
};
const counts = async () => Object.fromEntries(await Promise.all(Object.keys(who).map(async (n) => [n, await fetchesOf(n)])));
const diff = (a, b) => Object.fromEntries(Object.keys(b).filter((k) => b[k] !== a[k]).map((k) => [k, b[k] - a[k]]));

/**
 * Run `action`, then wait until every browser refetched what `expected` says ({browser: [short
 * keys]}), leave room for wrong refetches, and check that each refetched exactly those, once.
 */
async function step(what, action, expected) {
  const before = await counts();
  await action();
  const want = (n) => Object.fromEntries((expected[n] || []).map((k) => [k, 1]));
  await waitFor(async () => {
    const now = await counts();
    return Object.keys(who).every((n) => Object.keys(want(n)).every((k) => now[n][k] > before[n][k]));
  }, 5000, `the refetches after: ${what}`);
  await sleep(400); // the adapter debounces 50 ms: a wrong refetch would show by now
  const now = await counts();
  for (const n of Object.keys(who)) assert.deepEqual(diff(before[n], now[n]), want(n), `${n}'s refetches after: ${what}`);
}

/** A change made in `name`'s page (its connId as origin), as its mutation would. */
const inPage = (name, doc, body) => () => who[name].page.evaluate(([d, b]) => app.change(d, b), [doc, body]);
/** A change the backend makes by itself (no origin). */
const byBackend = (doc, body) => async () => {
  const r = await fetch(`${w.demo.url}/api/doc/${encodeURIComponent(doc)}`, { method: 'PUT', body: JSON.stringify(body) });
  assert.equal(r.status, 200);
};
const vote = (name, votes) => inPage(name, 'post:7', { value: { votes }, topics: ['post:7', 'feed:public', 'leaderboard'] });
const comment = (name, text) => inPage(name, 'post:7:comments', { append: `${name}: ${text}`, topics: ['post:7', 'user:bob:notifications'] });
const dm = (from, to, text) => inPage(from, `user:${to}:dm`, { append: `${from}: ${text}`, topics: [`user:${to}:dm`], stamp: true });
const badge = (user, name) => byBackend(`user:${user}:badges`, { append: name, topics: [`user:${user}:badges`, 'leaderboard'] });

test('three browsers see exactly the updates meant for them: ann, bob and a logged-out visitor', { timeout: 60000 }, async () => {
  // The private topics of another user, and anything beyond the public ones for the visitor, were refused.
  for (const n of Object.keys(who)) {
    const errs = await who[n].page.evaluate(() => app.errors);
    assert.deepEqual(errs.map((e) => [e.code, e.topic]).sort(), who[n].probes.map((t) => [17, t]).sort(), `${n}'s refused subscriptions`);
  }

  await step('ann votes on post 7', vote('ann', 1), { bob: ['post', 'feed', 'leaderboard'], visitor: ['feed', 'leaderboard'] });
  await step('ann comments on bob\'s post 7', comment('ann', 'nice post'), { bob: ['post', 'notifications'] });
  await step('ann asks bob for an intro', inPage('ann', 'intro:ann:bob', { value: 'pending', topics: ['user:bob:intros', 'user:ann:intros'] }), { bob: ['intros'] });
  await step('bob accepts it', inPage('bob', 'intro:ann:bob', { value: 'accepted', topics: ['user:bob:intros', 'user:ann:intros'] }), { ann: ['intros'] });
  await step('ann sends bob a DM', dm('ann', 'bob', 'hi bob'), { bob: ['dm'] });
  await step('bob\'s read receipt', inPage('bob', 'user:ann:dm', { append: 'bob read: hi bob', topics: ['user:ann:dm'] }), { ann: ['dm'] });
  await step('the backend awards bob a badge', badge('bob', 'first post'), { bob: ['badges', 'leaderboard'], ann: ['leaderboard'], visitor: ['leaderboard'] });
  await step('bob votes on post 7', vote('bob', 2), { ann: ['post', 'feed', 'leaderboard'], visitor: ['feed', 'leaderboard'] });

  // What the refetches brought, and that no page ever heard a topic outside its own routes.
  assert.deepEqual(await who.bob.page.evaluate(() => app.data['["me","dm"]']), ['ann: hi bob']);
  assert.deepEqual(await who.ann.page.evaluate(() => app.data['["me","dm"]']), ['bob read: hi bob']);
  assert.deepEqual(await who.ann.page.evaluate(() => app.data['["post","7"]']), { votes: 2 });
  for (const n of Object.keys(who)) {
    const heard = new Set(await who[n].page.evaluate(() => app.hints.map((h) => h.topic)));
    for (const t of heard) assert.ok(who[n].topics.includes(t), `${n} heard only its own routes' topics (heard ${t})`);
  }
});

test('bob\'s browser, offline for some changes, catches up on reconnect with one refetch per query key', { timeout: 60000 }, async () => {
  const bob = who.bob;
  const conns = (await w.stats()).connections.ws;
  await bob.ctx.setOffline(true);
  // The client drops its socket on the browser's `offline` event: the broker sees it go.
  await waitFor(() => bob.page.evaluate(() => app.client.state === 'offline' && app.client.connId === null), 5000, 'bob offline');
  await waitFor(async () => (await w.stats()).connections.ws === conns - 1, 5000, "the broker to see bob's socket close");
  const before = await fetchesOf('bob');
  const hintsBefore = await bob.page.evaluate(() => app.hints.length);

  // Meanwhile: three DMs, two comments and a vote on bob's post, a badge; no intro.
  for (const text of ['one', 'two', 'three']) await dm('ann', 'bob', text)();
  await comment('ann', 'still there?')();
  await vote('ann', 3)();
  await comment('ann', 'hello?')();
  await badge('bob', 'night owl')();
  await sleep(300);
  assert.deepEqual(await fetchesOf('bob'), before, 'nothing reached bob while offline');

  await bob.ctx.setOffline(false);
  await waitFor(() => bob.page.evaluate(() => app.client.state === 'live'), 10000, 'bob live again');
  const want = { post: 1, feed: 1, leaderboard: 1, notifications: 1, dm: 1, badges: 1 };
  await waitFor(async () => {
    const now = await fetchesOf('bob');
    return Object.keys(want).every((k) => now[k] > before[k]);
  }, 5000, "bob's catch-up refetches");
  await sleep(500);
  assert.deepEqual(diff(before, await fetchesOf('bob')), want, 'one refetch per changed key, none for the unchanged (intros)');
  // One catch-up hint per changed topic, n = its number of changes; no reset.
  const hints = await bob.page.evaluate((i) => app.hints.slice(i).map((h) => [h.topic, h.n]), hintsBefore);
  assert.deepEqual(Object.fromEntries(hints), {
    'post:7': 3, 'feed:public': 1, leaderboard: 2, 'user:bob:notifications': 2, 'user:bob:dm': 3, 'user:bob:badges': 1,
  });
  assert.equal(hints.length, 6);
  assert.deepEqual(await bob.page.evaluate(() => app.resets), []);
  assert.deepEqual((await bob.page.evaluate(() => app.data['["me","dm"]'])).slice(-3), ['ann: one', 'ann: two', 'ann: three']);
});

test('a DM reaches the recipient\'s hidden tab within 100 ms on loopback', { timeout: 60000 }, async () => {
  const chrome = await launch();
  try {
    // Bob's other device: the app in a tab that another tab hides.
    const { tab } = await hiddenApp(chrome, w.demo.url, 'bob');
    assert.equal(await tab.evaluate('document.visibilityState'), 'hidden');
    const seen = await tab.evaluate('app.hints.length');
    const seenVisible = await who.bob.page.evaluate(() => app.hints.length);
    const N = 10;
    for (let i = 0; i < N; i++) {
      // data: sent = Date.now() in ann's page as she sends it, t = in the backend as it publishes.
      await dm('ann', 'bob', `ping ${i}`)();
      await sleep(50);
    }
    await tab.waitFor(`app.hints.filter((h) => h.topic === 'user:bob:dm').length >= ${seen + N}`, 5000);
    const times = (hs) => hs.filter((h) => h.topic === 'user:bob:dm').map((h) => ({ pub: h.at - h.data.t, sent: h.at - h.data.sent, vis: h.vis }));
    const hidden = times(await tab.evaluate(`app.hints.slice(${seen})`));
    const visible = times(await who.bob.page.evaluate((i) => app.hints.slice(i), seenVisible));
    const fig = (l, k) => l.map((x) => x[k]).join(' ');
    console.log(`DM to bob's hidden tab (ms): publish → hint ${fig(hidden, 'pub')}; ann's send → hint ${fig(hidden, 'sent')}`);
    console.log(`DM to bob's visible page (ms): publish → hint ${fig(visible, 'pub')}; ann's send → hint ${fig(visible, 'sent')}`);
    assert.equal(hidden.length, N);
    assert.ok(hidden.every((x) => x.vis === 'hidden'));
    // Within 100 ms of the publish; on this shared 2-core machine one scheduling outlier is
    // allowed (the visible page has them too). A hint waiting for a throttled timer in the hidden
    // tab would take 0-1000 ms (half of them over 500).
    const late = hidden.map((x) => x.pub).filter((ms) => ms >= 100);
    assert.ok(late.length <= 1, `DMs within 100 ms of their publish, all but one at most (late: ${late.join(' ')})`);
  } finally {
    await chrome.close();
  }
});
