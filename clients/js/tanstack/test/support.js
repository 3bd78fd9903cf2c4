// Test support for the adapter: the real nudged on ephemeral loopback ports, a publisher over its
// TCP protocol, bounded waits (a trimmed copy of clients/js/test/support.js, so that this package
// needs only its own node_modules), a core client over `ws`, and a QueryClient whose queries count
// their fetches. Only processes started here are signalled, by PID.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encode, decode } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { QueryClient, QueryObserver } from '@tanstack/query-core';
import { createClient } from '../../src/index.js';

const root = resolve(import.meta.dirname, '../../../..');
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
  const d = mkdtempSync(join(tmpdir(), 'nudge-tanstack-'));
  tmpdirs.push(d);
  return d;
}
process.on('exit', () => {
  for (const ch of children) ch.kill('SIGKILL');
  for (const d of tmpdirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Start nudged; resolves once it printed its ready line. opts.args: extra flags; opts.ws: a
 * WebSocket port to reuse (a restart keeps the client's URL); default --memory unless args
 * name --data-dir.
 */
export function startBroker(opts = {}) {
  const args = [
    '--pub', '127.0.0.1:0', '--ws', `127.0.0.1:${opts.ws || 0}`, '--admin', '127.0.0.1:0',
    '--workers', '1', '--log-level', 'warn', ...(opts.args || []),
  ];
  if (!args.includes('--data-dir')) args.push('--memory');
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

/** Resolve when pred() is true (checked every 10 ms), reject after ms. */
export async function until(pred, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


/** A core client on `url` over `ws`, with small backoffs so that tests are quick. */
export function nudgeClient(opts) {
  const c = createClient({ WebSocket, backoff: { min: 20, max: 300 }, ...opts });
  c.hints = [];
  c.on('hint', (h) => c.hints.push(h));
  c.live = (ms = 5000) => until(() => c.state === 'live', ms, 'state live (now ' + c.state + ')');
  return c;
}

/**
 * A QueryClient with one active query (an observer) per key in `keys`; `fetches(key)` is how
 * many times that key's queryFn ran (restarts of a cancelled fetch included), `times(key)` when.
 * Each fetch takes `ms` so that a second invalidation finds it in flight.
 */
export async function queries(keys, ms = 20) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: Infinity } } });
  const log = new Map();
  const offs = keys.map((key) => {
    const h = JSON.stringify(key);
    log.set(h, []);
    const queryFn = async ({ signal }) => {
      log.get(h).push(Date.now());
      await sleep(ms);
      return signal.aborted ? null : h;
    };
    return new QueryObserver(qc, { queryKey: key, queryFn }).subscribe(() => {});
  });
  await until(() => [...log.values()].every((l) => l.length === 1), 5000, 'the first fetches');
  await until(() => qc.isFetching() === 0, 5000, 'the first fetches to settle');
  for (const l of log.values()) l.length = 0;
  return {
    qc,
    fetches: (key) => log.get(JSON.stringify(key)).length,
    times: (key) => log.get(JSON.stringify(key)),
    /** Fetch counts of every key, as {hash: n} for deepEqual. */
    counts: () => Object.fromEntries([...log].map(([h, l]) => [h, l.length])),
    close: () => (offs.forEach((f) => f()), qc.clear()),
  };
}
