// The example app (index.html + src/app.jsx: React, TanStack Query, useNudge) in headless
// Chromium against the real nudged and the demo backend: two windows update each other without
// a reload, the window that made a change does not refetch it, a failed change rolls back to
// the server's truth, a private message reaches only its user, and a component's topics are
// followed exactly while it is mounted.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep, until, world } from './browser.js';

let w, b;
before(async () => {
  w = await world();
  b = await w.browser();
});
after(async () => w && w.close());

async function open(ctx, user) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${w.demo.url}/?user=${user}`);
  await page.waitForFunction(() => document.getElementById('state')?.textContent === 'live', null, { timeout: 15000 });
  return page;
}
const notes = (page, id = '#notes') => page.$$eval(`${id} li`, (l) => l.map((x) => x.textContent));

test('two windows of the example app update each other; the one that made the change does not refetch it; a failure rolls back', { timeout: 60000 }, async () => {
  const ctx = await b.newContext();
  const one = await open(ctx, 'ann');
  const two = await open(ctx, 'ann');
  await until(() => (w.demo.fetches.get('board:main') || 0) === 2, 5000, 'the first fetches');
  await sleep(200);

  await one.fill('#note', 'hello from one');
  await one.press('#note', 'Enter');
  await two.waitForFunction(() => [...document.querySelectorAll('#notes li')].some((l) => l.textContent === 'hello from one'), null, { timeout: 5000 });
  await sleep(300); // room for a wrong refetch in window one
  // Window two refetched once; window one applied its change optimistically and skipped its own hint.
  assert.equal(w.demo.fetches.get('board:main'), 3);
  assert.deepEqual(await notes(one), ['hello from one']);

  await two.fill('#note', 'fail');
  await two.press('#note', 'Enter');
  // Optimistic first, then the backend refuses and the adapter's invalidateOnError refetches.
  await two.waitForFunction(() => document.querySelectorAll('#notes li').length === 1, null, { timeout: 5000 });
  assert.deepEqual(await notes(two), ['hello from one']);
  assert.deepEqual(w.demo.docs.get('board:main'), ['hello from one']);
  await ctx.close();
});

test('a private message reaches only its user, and a component follows its topic only while mounted', { timeout: 60000 }, async () => {
  const annCtx = await b.newContext();
  const bobCtx = await b.newContext();
  const ann = await open(annCtx, 'ann');
  const bob = await open(bobCtx, 'bob');
  await until(async () => (await w.stats()).subscriptions === 4, 5000, 'four subscriptions');
  const annInbox = w.demo.fetches.get('inbox:ann');

  await ann.fill('#to', 'bob');
  await ann.fill('#dm', 'hi bob');
  await ann.press('#dm', 'Enter');
  await bob.waitForFunction(() => document.querySelector('#inbox li')?.textContent === 'ann: hi bob', null, { timeout: 5000 });
  await sleep(300);
  assert.equal(w.demo.fetches.get('inbox:ann'), annInbox, "ann's inbox was not refetched");
  assert.deepEqual(await notes(ann, '#inbox'), []);

  // Switching boards unmounts <Board id="main">: its topic is unsubscribed, the other's subscribed.
  await ann.click('#board-side');
  await sleep(300);
  const s = await w.stats();
  assert.equal(s.subscriptions, 4, 'board:main left when its component unmounted');
  await w.demo.publish(['board:side']);
  await until(() => (w.demo.fetches.get('board:side') || 0) === 2, 5000, 'the side board refetched on its hint');
  await annCtx.close();
  await bobCtx.close();
});
