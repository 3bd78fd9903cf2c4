// Liveness against a scripted WebSocket server (the `ws` package), for what the real broker
// does not do on demand: a silent peer, a server-side application ping, no welcome.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { recorder, until } from './support.js';

const servers = [];
const clients = [];
after(() => {
  for (const c of clients) c.close();
  for (const s of servers) s.close();
});

/** A server that answers hello with welcome (unless `mute`) and records every message. */
async function fake({ mute = false } = {}) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(wss);
  await new Promise((r) => wss.once('listening', r));
  const f = { conns: 0, got: [], socks: [], url: `ws://127.0.0.1:${wss.address().port}/` };
  wss.on('connection', (ws) => {
    const n = ++f.conns;
    f.socks.push(ws);
    ws.on('message', (d) => {
      const m = JSON.parse(d);
      f.got.push(m);
      if (m.type === 'hello' && !mute)
        ws.send(JSON.stringify({ type: 'welcome', v: 1, conn: 'c' + n, epoch: '0123456789abcdef', server: 'fake' }));
    });
  });
  return f;
}
function rec(opts) {
  const r = recorder(opts);
  clients.push(r.c);
  return r;
}

test('a connection whose pings go unanswered is closed and made again', { timeout: 10000 }, async () => {
  const f = await fake();
  const r = rec({ url: f.url, pingInterval: 100 });
  await r.live();
  await until(() => f.conns >= 2, 3000, 'a second connection');
  assert.ok(f.got.some((m) => m.type === 'ping'));
  await r.live();
  assert.deepEqual(r.states.slice(0, 4), ['connecting', 'live', 'reconnecting', 'live']);
});

test('an application-level ping from the server is answered with a pong carrying its id', { timeout: 10000 }, async () => {
  const f = await fake();
  const r = rec({ url: f.url });
  await r.live();
  f.socks[0].send(JSON.stringify({ type: 'ping', id: 7 }));
  f.socks[0].send(JSON.stringify({ type: 'ping' }));
  await until(() => f.got.filter((m) => m.type === 'pong').length === 2, 3000, 'two pongs');
  assert.deepEqual(f.got.filter((m) => m.type === 'pong'), [{ type: 'pong', id: 7 }, { type: 'pong' }]);
});

test('a server that never sends welcome is left after connectTimeout and tried again', { timeout: 10000 }, async () => {
  const f = await fake({ mute: true });
  const r = rec({ url: f.url, connectTimeout: 200 });
  await until(() => f.conns >= 2, 3000, 'a second attempt');
  assert.equal(r.c.state === 'live', false);
  assert.ok(r.states.includes('reconnecting'));
});
