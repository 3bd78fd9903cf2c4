// Tokens (docs/security.md): the provider at connect, refresh before exp on the live connection,
// a new token and a resume after close 4002, and the unauthorized state (error 16, close 4003,
// close 4010 after the operator revoked the user).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mint, publisher, recorder, sleep, startBroker, tokenSecret, until } from './support.js';

const stops = [];
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of stops) await s();
});
async function secured() {
  const ts = tokenSecret();
  const b = await startBroker({ args: ['--token-secret-file', ts.file, '--token-leeway', '0'] });
  stops.push(() => b.stop());
  return { b, secret: ts.secret };
}
function rec(opts) {
  const r = recorder(opts);
  clients.push(r.c);
  return r;
}
const hellos = (r) => r.sent.filter((m) => m.type === 'hello');

test('the token is refreshed before it expires and the connection and its subscriptions stay', { timeout: 20000 }, async () => {
  const { b, secret } = await secured();
  const p = await publisher(b.pub);
  const issued = [];
  const r = rec({ url: b.url, token: async () => (issued.push(mint(secret, 'u1', 3)), issued.at(-1)) });
  const got = [];
  r.c.subscribe('user:u1:inbox', (h) => got.push(h));
  await r.live();
  const conn = r.c.connId;
  assert.equal(hellos(r)[0].token, issued[0]);
  await sleep(100);
  await p.pub('user:u1:inbox');
  await until(() => got.length === 1, 5000, 'a hint');
  await sleep(4500); // past the first token's exp: only a refresh keeps the connection
  const refreshes = r.sent.filter((m) => m.type === 'refresh');
  assert.ok(refreshes.length >= 1, 'a refresh was sent');
  assert.equal(refreshes[0].token, issued[1]);
  await p.pub('user:u1:inbox');
  await until(() => got.length === 2, 5000, 'a hint after the first exp');
  assert.equal(r.c.connId, conn, 'same connection');
  assert.deepEqual(r.states, ['connecting', 'live']);
  assert.deepEqual(r.errors, []);
  p.close();
});

test('an expired token (4002) makes the client fetch a new one, reconnect and catch up', { timeout: 20000 }, async () => {
  const { b, secret } = await secured();
  const p = await publisher(b.pub);
  // A provider whose cached token stays the same until the broker said it expired; the new one
  // is held back until the test has published during the gap.
  const first = mint(secret, 'u1', 2);
  let expired = false, open;
  const gate = new Promise((res) => (open = res));
  const r = rec({ url: b.url, token: () => (expired ? gate.then(() => mint(secret, 'u1', 600)) : first) });
  r.c.on('error', (e) => e.code === 18 && (expired = true));
  r.c.subscribe('user:u1:inbox', () => {});
  await r.live();
  const conn = r.c.connId;
  await sleep(100);
  await p.pub('user:u1:inbox');
  await until(() => r.hints.length === 1, 5000, 'a live hint');
  assert.ok(!r.sent.some((m) => m.type === 'refresh'), 'the provider had nothing new: no refresh');
  await until(() => r.c.state === 'reconnecting', 6000, 'reconnecting after the expiry');
  assert.equal(r.errors.at(-1).code, 18);
  await p.pub('user:u1:inbox');
  open();
  await r.live();
  await until(() => r.hints.length === 2, 5000, 'the catch-up hint');
  assert.notEqual(r.c.connId, conn);
  assert.deepEqual(r.hints[1], { type: 'hint', topic: 'user:u1:inbox', seq: 2 });
  assert.deepEqual(r.states, ['connecting', 'live', 'reconnecting', 'live']);
  assert.deepEqual(r.resets, []);
  p.close();
});

test('a refused token parks the client in unauthorized until the provider returns another one', { timeout: 20000 }, async () => {
  const { b, secret } = await secured();
  const forged = mint('not-the-broker-secret-not-the-broker-secret', 'u1', 600);
  let good = null, calls = 0;
  const r = rec({ url: b.url, token: async () => (calls++, good || forged) });
  r.c.subscribe('user:u1:inbox', () => {});
  await until(() => r.c.state === 'unauthorized', 5000, 'unauthorized');
  assert.equal(r.errors[0].code, 16);
  await until(() => calls >= 4, 5000, 'the provider asked again');
  assert.equal(hellos(r).length, 1, 'the same refused token is not sent again');
  assert.equal(r.c.state, 'unauthorized');
  good = mint(secret, 'u1', 600);
  await r.live(5000);
  assert.equal(hellos(r).at(-1).token, good);
  assert.deepEqual(r.states, ['connecting', 'unauthorized', 'connecting', 'live']);
});

test('a refresh refused by the broker (another user: close 4003) is unauthorized too', { timeout: 20000 }, async () => {
  const { b, secret } = await secured();
  let next = () => mint(secret, 'u1', 2);
  const r = rec({ url: b.url, token: async () => next() });
  r.c.subscribe('user:u1:inbox', () => {});
  await r.live();
  const other = mint(secret, 'u2', 600);
  next = () => other;
  await until(() => r.c.state === 'unauthorized', 5000, 'unauthorized after the refresh');
  assert.equal(r.sent.filter((m) => m.type === 'refresh').at(-1).token, other);
  await sleep(400);
  assert.equal(hellos(r).length, 1, 'the refused token is not tried in a hello');
  next = () => mint(secret, 'u1', 600);
  await r.live(5000);
  assert.deepEqual(r.states, ['connecting', 'live', 'unauthorized', 'reconnecting', 'live']);
});

test('a revoked user (close 4010) is unauthorized until the provider returns a new token; the revoked one is not sent again', { timeout: 20000 }, async () => {
  const { b, secret } = await secured();
  let tok = mint(secret, 'u1', 600, { iat: Math.floor(Date.now() / 1000) - 10 });
  const r = rec({ url: b.url, token: async () => tok });
  r.c.subscribe('user:u1:inbox', () => {});
  await r.live();
  const res = await fetch(`http://127.0.0.1:${b.admin}/users/u1/disconnect`, { method: 'POST' });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).closed, 1);
  await until(() => r.c.state === 'unauthorized', 5000, 'unauthorized after the revocation');
  assert.equal(r.errors.at(-1).code, 16);
  await sleep(400);
  assert.equal(hellos(r).length, 1, 'the revoked token is not sent again');
  tok = mint(secret, 'u1', 600); // issued now: after the revocation
  await r.live(5000);
  assert.equal(hellos(r).at(-1).token, tok);
  assert.deepEqual(r.states, ['connecting', 'live', 'unauthorized', 'reconnecting', 'live']);
});

test('a forbidden subscription reaches its callback and the error event; the others work', { timeout: 20000 }, async () => {
  const { b, secret } = await secured();
  const p = await publisher(b.pub);
  const r = rec({ url: b.url, token: async () => mint(secret, 'u1', 600) });
  const theirs = [], mine = [];
  r.c.subscribe('user:u2:inbox', (m) => theirs.push(m));
  r.c.subscribe('user:u1:inbox', (m) => mine.push(m));
  await r.live();
  await until(() => theirs.length === 1, 5000, 'the refusal');
  assert.equal(theirs[0].type, 'error');
  assert.equal(theirs[0].code, 17);
  assert.equal(r.errors[0].topic, 'user:u2:inbox');
  await p.pub(['user:u2:inbox', 'user:u1:inbox']);
  await until(() => mine.length === 1, 5000, 'my hint');
  await sleep(100);
  assert.equal(theirs.length, 1);
  assert.equal(r.c.state, 'live');
  p.close();
});
