// Story (a), onboarding unlock (issue #15): a user completes 4 profile steps in one tab; each
// step publishes to the user's private topic; the dashboard, open in another tab and on a phone,
// unlocks without a reload when the 4th step lands and stays locked before it; another user's
// tabs see nothing. Headless Chromium (the phone: a second browser with a phone's viewport and
// touch), the real nudged with tokens, the demo backend.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep, world } from './browser.js';

let w;
before(async () => (w = await world()));
after(async () => w && w.close());

const routes = { 'user:*:onboarding': ['onboarding', '$1'] };
const onboarding = (user) => ({ routes, follow: [`user:${user}:onboarding`], queries: { steps: [['onboarding', user], 'onboarding:' + user] } });

// The dashboard's rule: unlocked once all 4 steps are done.
const unlocked = (page) => page.evaluate(() => (window.app.data.steps || 0) >= 4);
const steps = (page) => page.evaluate(() => window.app.data.steps || 0);

test('the dashboard in another tab and on a phone unlocks when the 4th step lands, not before; another user sees nothing', { timeout: 90000 }, async () => {
  const laptop = await (await w.browser()).newContext();
  const phone = await (await w.browser()).newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const other = await (await w.browser()).newContext();
  const profile = await w.lab(laptop);
  const dashboard = await w.lab(laptop);
  const mobile = await w.lab(phone);
  const bobs = await w.lab(other);
  w.demo.seed('onboarding:ann', 0);
  w.demo.seed('onboarding:bob', 1);
  for (const p of [profile, dashboard, mobile]) await p.evaluate((o) => window.lab.start({ user: 'ann', ...o }), onboarding('ann'));
  await bobs.evaluate((o) => window.lab.start({ user: 'bob', ...o }), onboarding('bob'));
  for (const p of [profile, dashboard, mobile, bobs])
    await p.waitForFunction(() => window.app.state === 'live' && window.app.fetches.steps === 1, null, { timeout: 10000 });
  await sleep(200); // the subscriptions confirmed

  for (let step = 1; step <= 4; step++) {
    // The profile tab saves a step; its backend publishes user:ann:onboarding.
    const seqs = await profile.evaluate((n) => window.app.change('onboarding:ann', { value: n, topics: ['user:ann:onboarding'] }, 'steps'), step);
    assert.equal(seqs['user:ann:onboarding'], step, 'published step ' + step + ': ' + JSON.stringify(seqs));
    for (const p of [dashboard, mobile]) {
      await p.waitForFunction((n) => window.app.data.steps === n, step, { timeout: 5000 });
      assert.equal(await unlocked(p), step === 4, `after step ${step} the dashboard is ${step === 4 ? 'unlocked' : 'locked'}`);
    }
  }
  assert.equal(await steps(profile), 4);
  // Each dashboard refetched once per step (the debounce does not lose one); the profile tab's
  // own changes were applied optimistically, not refetched.
  for (const p of [dashboard, mobile]) assert.equal(await p.evaluate(() => window.app.fetches.steps), 5);
  assert.equal(await profile.evaluate(() => window.app.fetches.steps), 1);

  // Bob's tab: no hint of ann's topic, no refetch, and his own data untouched.
  await sleep(300);
  assert.deepEqual(await bobs.evaluate(() => [window.app.hints.length, window.app.fetches.steps, window.app.data.steps]), [0, 1, 1]);
  // Nor can bob follow ann's topic by asking for it: refused with 17 forbidden.
  const err = await bobs.evaluate(() => new Promise((res) => {
    const off = window.app.client.subscribe('user:ann:onboarding', (m) => m.type === 'error' && (off(), res(m.code)));
  }));
  assert.equal(err, 17);
  for (const c of [laptop, phone, other]) await c.close();
});
