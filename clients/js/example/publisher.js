// The demo backend's publisher: nudge's TCP protocol (docs/protocol.md §Publisher protocol:
// 4-byte big-endian length, then msgpack), one request at a time in order. A stand-in until the
// Node publisher library (clients/node) exists; a real backend wants reconnect and fail-open.
import net from 'node:net';
import { decode, encode } from '@msgpack/msgpack';

/** Connect and say hello; resolves to {epoch, pub(topics, extra) → seqs, close()}. */
export async function connectPublisher({ port, host = '127.0.0.1', key } = {}) {
  const sock = net.connect(port, host);
  await new Promise((res, rej) => (sock.once('connect', res), sock.once('error', rej)));
  let buf = Buffer.alloc(0);
  const waiting = [];
  const failAll = (e) => {
    for (const w of waiting.splice(0)) w.rej(e);
  };
  sock.on('error', failAll);
  sock.on('close', () => failAll(new Error('publisher connection closed')));
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      const m = decode(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
      const w = waiting.shift();
      if (w) w.res(m);
    }
  });
  const request = (m) =>
    new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('nudge: no answer in 5 s')), 5000);
      waiting.push({ res: (a) => (clearTimeout(t), res(a)), rej: (e) => (clearTimeout(t), rej(e)) });
      const body = encode(m);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      sock.write(Buffer.concat([head, body]));
    });
  const hello = { type: 'hello', v: 1, client: 'nudge-example' };
  if (key) hello.auth = key;
  const welcome = await request(hello);
  if (welcome.type !== 'welcome') throw new Error('nudge hello refused: ' + JSON.stringify(welcome));
  let id = 0;
  return {
    epoch: welcome.epoch,
    /** Publish `topics`; extra: {data, origin, skip_origin}. Resolves to the ack's {topic: seq}. */
    async pub(topics, extra = {}) {
      const a = await request({ type: 'pub', id: ++id, topics: [].concat(topics), ...extra });
      if (a.type !== 'ack') throw new Error('nudge publish refused: ' + JSON.stringify(a));
      return a.seqs;
    },
    close: () => sock.destroy(),
  };
}
