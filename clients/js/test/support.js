// Test support: the real nudged on ephemeral loopback ports, a publisher over its TCP protocol,
// HS256 tokens, and bounded waits. Only processes started here are signalled, by PID.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encode, decode } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { createClient } from '../src/index.js';

const root = resolve(import.meta.dirname, '../../..');
function binDir() {
  if (process.env.NUDGE_BIN) return resolve(root, process.env.NUDGE_BIN);
  if (existsSync(join(root, 'build/asan/nudged'))) return join(root, 'build/asan');
  return '/tmp/nudge-prebuilt';
}
export const BIN = binDir();

const children = new Set();
const tmpdirs = [];

/** A temporary directory, removed at exit. */
export function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'nudge-js-'));
  tmpdirs.push(d);
  return d;
}
process.on('exit', () => {
  for (const ch of children) ch.kill('SIGKILL');
  for (const d of tmpdirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Start nudged; resolves once it printed its ready line. opts.args: extra flags; opts.ws and
 * opts.pub: a WebSocket or publisher port to reuse (a restart keeps the clients' addresses);
 * default --memory unless args name --data-dir, and --drain-window 0 unless args name it.
 */
export function startBroker(opts = {}) {
  const args = [
    '--pub', `127.0.0.1:${opts.pub || 0}`, '--ws', `127.0.0.1:${opts.ws || 0}`, '--admin', '127.0.0.1:0',
    '--http', '127.0.0.1:0', '--workers', '1', '--log-level', 'warn', ...(opts.args || []),
  ];
  if (!args.includes('--data-dir')) args.push('--memory');
  // A stop closes the WebSockets at once unless a test asks for a drain window.
  if (!args.includes('--drain-window')) args.push('--drain-window', '0');
  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' };
  const ch = spawn(join(BIN, 'nudged'), args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.add(ch);
  let err = '';
  ch.stderr.on('data', (d) => (err += d));
  return new Promise((res, rej) => {
    let out = '';
    const t = setTimeout(() => fail(new Error('nudged not ready in 15 s: ' + err)), 15000);
    const fail = (e) => (clearTimeout(t), ch.kill('SIGKILL'), rej(e));
    ch.on('exit', (code) => (children.delete(ch), fail(new Error(`nudged exited ${code}: ${err}`))));
    ch.stdout.on('data', (d) => {
      out += d;
      const m = /nudged ready pub=(\S+):(\d+) ws=(\S+):(\d+) admin=(\S+):(\d+)/.exec(out);
      if (!m) return;
      clearTimeout(t);
      ch.removeAllListeners('exit');
      ch.on('exit', () => children.delete(ch));
      res({
        pid: ch.pid,
        pub: +m[2],
        ws: +m[4],
        admin: +m[6],
        url: `ws://127.0.0.1:${m[4]}/`,
        stderr: () => err,
        /** Stop it (SIGTERM, SIGKILL after 5 s) and wait for the exit. */
        stop(sig = 'SIGTERM') {
          if (ch.exitCode !== null || ch.signalCode !== null) return Promise.resolve();
          return new Promise((r) => {
            const k = setTimeout(() => ch.kill('SIGKILL'), 5000);
            ch.once('exit', () => (clearTimeout(k), r()));
            ch.kill(sig);
          });
        },
      });
    });
  });
}

/** A publisher connection (docs/protocol.md §Publisher protocol): length-prefixed msgpack. */
export async function publisher(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((res, rej) => (sock.once('connect', res), sock.once('error', rej)));
  let buf = Buffer.alloc(0);
  const waiting = [];
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const n = buf.readUInt32BE(0);
      const m = decode(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
      const w = waiting.shift();
      if (w) w(m);
    }
  });
  let id = 0;
  const request = (m) =>
    new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('no answer in 5 s to ' + JSON.stringify(m))), 5000);
      waiting.push((a) => (clearTimeout(t), res(a)));
      const body = encode(m);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      sock.write(Buffer.concat([head, body]));
    });
  const welcome = await request({ type: 'hello', v: 1, client: 'js-test' });
  if (welcome.type !== 'welcome') throw new Error('publisher hello: ' + JSON.stringify(welcome));
  return {
    epoch: welcome.epoch,
    /** Publish; resolves to the ack's seqs. extra: {data, origin, skip_origin}. */
    async pub(topics, extra = {}) {
      const a = await request({ type: 'pub', id: ++id, topics: [].concat(topics), ...extra });
      if (a.type !== 'ack') throw new Error('publish refused: ' + JSON.stringify(a));
      return a.seqs;
    },
    close: () => sock.destroy(),
  };
}

/** A token secret file for --token-secret-file; returns {secret, file}. */
export function tokenSecret() {
  const secret = randomBytes(32).toString('hex');
  const file = join(tempDir(), 'secret');
  writeFileSync(file, secret);
  return { secret, file };
}

const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
/** An HS256 JWT for user `sub`, valid for `ttl` seconds. */
export function mint(secret, sub, ttl = 600, extra = {}) {
  const body = b64u({ alg: 'HS256', typ: 'JWT' }) + '.' +
    b64u({ sub, exp: Math.floor(Date.now() / 1000) + ttl, iat: Math.floor(Date.now() / 1000), ...extra });
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}

/** Resolve when pred() (which may be async) is true (checked every 10 ms), reject after ms. */
export async function until(pred, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A client on `url` with `ws`, recording what it sends (`sent`), its states, hints and resets,
 * with small backoffs so that tests are quick.
 */
export function recorder(opts) {
  const sent = [];
  class SpyWS extends WebSocket {
    send(d, ...rest) {
      sent.push(typeof d === 'string' ? JSON.parse(d) : decode(d));
      return super.send(d, ...rest);
    }
  }
  const c = createClient({ WebSocket: SpyWS, backoff: { min: 20, max: 300 }, ...opts });
  const r = { c, sent, states: [c.state], hints: [], resets: [], errors: [] };
  c.on('state', (s) => r.states.push(s));
  c.on('hint', (h) => r.hints.push(h));
  c.on('reset', (x) => r.resets.push(x));
  c.on('error', (e) => r.errors.push(e));
  r.live = (ms = 5000) => until(() => c.state === 'live', ms, 'state live (now ' + c.state + ')');
  return r;
}
