// App story (d), "Mobile approval" (issue #15): a child's upload puts an item in the parent's
// approval queue; the parent's app is in the background (socket closed) during several uploads
// and on return sees all of them, by one catch-up hint or by a reset and a refetch; the parent's
// approval then reaches the child. Tokens on: each user reads only its own `user:` namespace.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mint, publisher, recorder, sleep, startBroker, tokenSecret, until } from './support.js';

const stops = [];
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of stops) await s();
});

/** The app's backend: its database, its publisher, and token minting. */
async function backend(b, secret) {
  const db = { uploads: [] };
  let pub = await publisher(b.pub);
  return {
    db,
    token: (user) => async () => mint(secret, user, 600),
    reconnect: async (nb) => (pub.close(), (pub = await publisher(nb.pub))),
    async upload(child, parent, name) {
      const u = { id: db.uploads.length + 1, child, parent, name, status: 'pending' };
      db.uploads.push(u);
      await pub.pub(`user:${parent}:approvals`, { data: { upload: u.id } });
      return u;
    },
    async approve(id, origin) {
      const u = db.uploads[id - 1];
      u.status = 'approved';
      await pub.pub([`user:${u.child}:uploads`, `user:${u.parent}:approvals`], { data: { upload: id }, origin });
    },
    pending: (parent) => db.uploads.filter((u) => u.parent === parent && u.status === 'pending').map((u) => u.name),
    mine: (child) => db.uploads.filter((u) => u.child === child).map((u) => `${u.name}:${u.status}`),
    close: () => pub.close(),
  };
}

/** A screen: a query refetched from the backend on every hint (except own) and reset. */
function screen(client, topic, fetch, cached) {
  const s = { rows: cached || fetch(), fetches: cached ? 0 : 1, messages: [] };
  client.subscribe(topic, (m) => {
    s.messages.push(m);
    if (m.type === 'hint' && m.own) return; // my own change: already on screen
    s.rows = fetch();
    s.fetches++;
  });
  return s;
}

function app(url, tokenFn, opts = {}) {
  const r = recorder({ url, token: tokenFn, ...opts });
  clients.push(r.c);
  return r;
}

test('mobile approval: the backgrounded parent catches up on every upload with one hint, and the approval reaches the child', { timeout: 30000 }, async () => {
  const ts = tokenSecret();
  const b = await startBroker({ args: ['--token-secret-file', ts.file] });
  stops.push(() => b.stop());
  const be = await backend(b, ts.secret);
  const parent = app(b.url, be.token('mum'), { format: 'msgpack' });
  const child = app(b.url, be.token('kid'));
  const queue = screen(parent.c, 'user:mum:approvals', () => be.pending('mum'));
  const mine = screen(child.c, 'user:kid:uploads', () => be.mine('kid'));
  await parent.live();
  await child.live();
  await sleep(100);

  await be.upload('kid', 'mum', 'drawing.png');
  await until(() => queue.rows.length === 1, 5000, 'the first upload in the queue');

  await parent.c.pause(); // the OS backgrounds the app
  assert.equal(parent.c.state, 'offline');
  for (const n of ['cat.jpg', 'song.mp3', 'essay.pdf']) await be.upload('kid', 'mum', n);
  await sleep(200);
  assert.deepEqual(queue.rows, ['drawing.png'], 'nothing reaches a backgrounded app');

  parent.c.resume(); // back in the foreground
  await until(() => queue.rows.length === 4, 5000, 'every upload in the queue');
  assert.deepEqual(queue.rows, ['drawing.png', 'cat.jpg', 'song.mp3', 'essay.pdf']);
  const back = queue.messages.slice(1);
  assert.equal(back.length, 1, 'one catch-up hint for the three uploads');
  assert.deepEqual(back[0], { type: 'hint', topic: 'user:mum:approvals', seq: 4, n: 3, data: { upload: 4 } });
  assert.equal(queue.fetches, 3, 'one refetch for the three uploads');
  assert.deepEqual(parent.resets, []);

  queue.rows = queue.rows.filter((n) => n !== 'song.mp3'); // approved: an optimistic update
  await be.approve(3, parent.c.connId);
  await until(() => mine.rows.includes('song.mp3:approved'), 5000, 'the approval on the child');
  await until(() => queue.messages.length === 3, 5000, 'the hint of the approval on the parent');
  assert.equal(queue.messages.at(-1).own, true, 'the parent knows it made that change');
  assert.equal(queue.fetches, 3, 'and skipped the refetch');
  // Each user heard only its own namespace.
  assert.ok(parent.hints.every((h) => h.topic.startsWith('user:mum:')));
  assert.ok(child.hints.every((h) => h.topic.startsWith('user:kid:')));
  assert.deepEqual(parent.states, ['connecting', 'live', 'offline', 'reconnecting', 'live']);
  be.close();
});

test('mobile approval: an app killed in the background restarts from its stored positions and refetches on a reset', { timeout: 30000 }, async () => {
  const ts = tokenSecret();
  let b = await startBroker({ args: ['--token-secret-file', ts.file] });
  stops.push(() => b.stop());
  const be = await backend(b, ts.secret);
  let saved = null; // the phone's storage (AsyncStorage, localStorage, …)
  const store = { load: async () => saved, save: (p) => (saved = JSON.parse(JSON.stringify(p))) };
  const parent = app(b.url, be.token('mum'), { store });
  const child = app(b.url, be.token('kid'));
  const mine = screen(child.c, 'user:kid:uploads', () => be.mine('kid'));
  screen(parent.c, 'user:mum:approvals', () => be.pending('mum'));
  await parent.live();
  await child.live();
  await sleep(100);
  await be.upload('kid', 'mum', 'drawing.png');
  await until(() => parent.hints.length === 1, 5000, 'the first upload');
  parent.c.close(); // the OS kills the app
  assert.deepEqual(saved, { epoch: parent.c.epoch, seqs: { 'user:mum:approvals': 1 } });

  // Meanwhile the broker is replaced (--memory: its positions are gone, a new epoch) and the
  // child uploads twice more; the child's app reconnects by itself.
  await b.stop();
  const nb = await startBroker({ args: ['--token-secret-file', ts.file], ws: b.ws });
  stops.push(() => nb.stop());
  b = nb;
  await be.reconnect(b);
  await child.live(10000);
  await sleep(100);
  await be.upload('kid', 'mum', 'cat.jpg');
  await be.upload('kid', 'mum', 'song.mp3');

  // The app starts again: a new client, the same storage.
  const again = app(b.url, be.token('mum'), { store });
  const queue = screen(again.c, 'user:mum:approvals', () => be.pending('mum'), ['drawing.png']); // cached on the phone
  await again.live();
  await until(() => queue.rows.length === 3, 5000, 'the queue refetched after the reset');
  const m = queue.messages[0];
  assert.equal(m.type, 'reset');
  assert.equal(m.reason, 'epoch');
  assert.equal(m.seq, 2);
  assert.deepEqual(queue.rows, ['drawing.png', 'cat.jpg', 'song.mp3']);
  assert.deepEqual(again.sent.find((x) => x.type === 'sub').resume.seqs, { 'user:mum:approvals': 1 });

  await be.approve(1, again.c.connId);
  await until(() => mine.rows.includes('drawing.png:approved'), 5000, 'the approval on the child');
  be.close();
});
