// Against scripted TCP servers (not nudged): brokers that misbehave must not hang, crash or
// hammer the app.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { decode, encode } from '@msgpack/msgpack';
import { pub, sleep, until } from './support.js';

const servers = [];
after(() => servers.forEach((s) => s.close()));

/** A server on an ephemeral port; onFrame(sock, msg) for each frame it receives. */
async function fake(onConn, onFrame = () => {}) {
  const srv = net.createServer((sock) => {
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const m = decode(buf.subarray(4, 4 + buf.readUInt32BE(0)));
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        onFrame(sock, m);
      }
    });
    onConn(sock);
  });
  servers.push(srv);
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return srv.address().port;
}
const send = (sock, m) => {
  const b = encode(m), f = Buffer.alloc(4 + b.length);
  f.writeUInt32BE(b.length);
  f.set(b, 4);
  sock.write(f);
};
const welcome = { type: 'welcome', v: 1, epoch: '0123456789abcdef', server: 'fake', max_frame: 65536, max_topics: 64, max_data: 1024 };

test('a server that never says welcome is an outage after connectTimeoutMs; a throwing logger is harmless', { timeout: 10000 }, async () => {
  const port = await fake(() => {});
  const lines = [];
  const logger = (l) => {
    lines.push(l);
    throw new Error('logger down');
  };
  const nudge = pub(port, { connectTimeoutMs: 200, logger });
  const t0 = performance.now();
  assert.equal(await nudge.publish(['a']), null);
  const ms = performance.now() - t0;
  assert.ok(ms >= 150 && ms < 1000, `${ms} ms`);
  assert.match(lines[0], /unreachable \(no welcome in 200 ms\)/);
  assert.equal(await nudge.publish(['a']), null);
});

test('garbage from the server crashes nothing: the connection is dropped and opened again', { timeout: 10000 }, async () => {
  let conns = 0;
  const port = await fake(() => conns++, (sock, m) => {
    if (m.type === 'hello') send(sock, welcome);
    // a msgpack nil as a frame on the first connection, an ack without seqs on the next
    if (m.type === 'pub' && conns === 1) sock.write(Buffer.from([0, 0, 0, 1, 0xc0]));
    if (m.type === 'pub' && conns > 1) send(sock, { type: 'ack', id: m.id });
  });
  const nudge = pub(port, { ackTimeoutMs: 1500 });
  assert.equal(await nudge.publish(['a']), null);
  assert.ok(conns >= 3, `${conns} connections`);
});

test('a server that welcomes and drops at once is retried with backoff, not in a loop', { timeout: 10000 }, async () => {
  let conns = 0;
  const port = await fake(() => conns++, (sock, m) => m.type === 'hello' && (send(sock, welcome), sock.destroy()));
  const nudge = pub(port);
  await sleep(1500);
  assert.ok(conns >= 3 && conns < 25, `${conns} connections in 1.5 s`);
  assert.equal(nudge.stats().outages, 0, 'every attempt got its welcome');
});
