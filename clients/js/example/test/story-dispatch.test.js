// Story (c), dispatch dashboards (issue #15): a therapist accepts an appointment, an operator
// starts it and verifies payment, a driver confirms pickup and starts the journey. Each role is a
// separate browser whose dashboard follows the appointment's topic (a group topic its token
// names); each action updates the other two dashboards; an optimistic update rolls back when the
// backend call fails; the tab that made a change does not fetch it again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep, world } from './browser.js';

let w;
before(async () => (w = await world({ brokerArgs: [] }))); // no public topics: tokens name them
after(async () => w && w.close());

const dashboard = (user, topics) => ({
  user,
  topics,
  routes: { 'appt:*': ['appt', '$1'] },
  follow: ['appt:5'],
  queries: { appt: [['appt', '5'], 'appt:5'] },
});

test('each role\'s action updates the other two dashboards; a failed one rolls back; the actor does not refetch its own change', { timeout: 90000 }, async () => {
  let appt = { status: 'requested', paid: false };
  w.demo.seed('appt:5', appt);
  const roles = {};
  const setups = {
    therapist: dashboard('tina', ['appt:5']),
    operator: dashboard('olga', ['appt:**']),
    driver: dashboard('dan', ['appt:5']),
  };
  for (const [role, setup] of Object.entries(setups)) {
    const page = await w.lab(await (await w.browser()).newContext());
    await page.evaluate((s) => window.lab.start(s), setup);
    roles[role] = page;
  }
  for (const p of Object.values(roles))
    await p.waitForFunction(() => window.app.state === 'live' && window.app.data.appt?.status === 'requested', null, { timeout: 10000 });
  await sleep(200);
  const fetches = async () => {
    const f = {};
    for (const [r, p] of Object.entries(roles)) f[r] = await p.evaluate(() => window.app.fetches.appt);
    return f;
  };
  const expected = { therapist: 1, operator: 1, driver: 1 };
  assert.deepEqual(await fetches(), expected);

  async function act(role, change) {
    appt = { ...appt, ...change };
    const seqs = await roles[role].evaluate((v) => window.app.change('appt:5', { value: v, topics: ['appt:5'] }, 'appt'), appt);
    assert.ok(seqs['appt:5'] > 0, `${role}'s change was published: ${JSON.stringify(seqs)}`);
    for (const [r, p] of Object.entries(roles)) {
      await p.waitForFunction((v) => JSON.stringify(window.app.data.appt) === JSON.stringify(v), appt, { timeout: 5000 });
      if (r !== role) expected[r]++; // the others refetch once; the actor applied it optimistically
    }
    await sleep(250); // room for a refetch that should not happen (debounce 50 ms)
    assert.deepEqual(await fetches(), expected, `after the ${role}'s ${JSON.stringify(change)}`);
  }

  await act('therapist', { status: 'accepted' });
  await act('operator', { status: 'started' });

  // The payment check fails at the backend: the operator's dashboard shows "paid" at once
  // (optimistic), then the server's truth again; nothing was published, so the others stay.
  const failed = await roles.operator.evaluate(() =>
    window.app.change('appt:5', { value: { ...window.app.data.appt, paid: true }, topics: ['appt:5'], fail: true }, 'appt'));
  assert.match(failed.error, /refused/);
  await roles.operator.waitForFunction(() => window.app.data.appt.paid === false, null, { timeout: 5000 });
  const shown = await roles.operator.evaluate(() => window.app.seen.appt.map((v) => v.paid));
  assert.deepEqual(shown.slice(-2), [true, false], 'paid at once, then rolled back');
  expected.operator++; // the rollback's refetch (invalidateOnError)
  await sleep(250);
  assert.deepEqual(await fetches(), expected, 'after the failed payment check');
  assert.deepEqual(w.demo.docs.get('appt:5'), appt, 'the backend kept the old state');

  await act('operator', { paid: true });
  await act('driver', { status: 'picked_up' });
  await act('driver', { status: 'en_route' });
  assert.deepEqual(expected, { therapist: 5, operator: 5, driver: 4 });
});
