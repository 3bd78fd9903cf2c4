// The demo backend of nudge's example app, and the app backend of the browser stories
// (test/*.test.js). It plays the part a real backend plays (docs/clients.md §Example app):
// - mints HS256 tokens for a user (GET /api/token?user=ann[&topics=a,b]; no user: anonymous);
// - keeps documents in memory (GET /api/doc/KEY) and, on a change (PUT /api/doc/KEY with
//   {value | append, topics, origin}), stores it (append: pushes onto a list) and then publishes the topics to nudge with the origin,
//   answering the seqs; {fail: true} answers 500 and changes nothing (a failed mutation);
// - counts the GETs of each document (GET /api/fetches), so a test sees refetches server-side;
// - serves the page (index.html, with src/app.jsx bundled by esbuild at start) and the test
//   page (lab.html with src/lab.js: the client, the adapter and query-core on `window.lab`).
// Run as a program (`npm start`, or `make example` at the top), it also starts nudged.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createPublisher } from '@nudge/node';

const here = dirname(fileURLToPath(import.meta.url));

/** HS256 JWT for `sub` valid `ttl` s (what a backend's jsonwebtoken.sign does). */
export function mintToken(secret, sub, ttl = 600, extra = {}) {
  const b64u = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = b64u({ alg: 'HS256', typ: 'JWT' }) + '.' + b64u({ sub, iat: now, exp: now + ttl, ...extra });
  return body + '.' + createHmac('sha256', secret).update(body).digest('base64url');
}

/** The page bundles, built once per process. The worker entry exists once shared tabs do. */
let bundles;
async function bundle() {
  if (bundles) return bundles;
  const entries = { app: 'src/app.jsx', lab: 'src/lab.js', worker: '../src/worker.js' };
  const points = Object.fromEntries(
    Object.entries(entries)
      .map(([k, v]) => [k, join(here, v)])
      .filter(([, v]) => existsSync(v)),
  );
  const out = await build({
    entryPoints: points,
    bundle: true,
    format: 'esm',
    write: false,
    outdir: '/',
    jsx: 'automatic',
    nodePaths: [join(here, 'node_modules')], // ../src and ../tanstack/src import from here
    define: { 'process.env.NODE_ENV': '"development"' },
    logLevel: 'error',
  });
  bundles = new Map(out.outputFiles.map((f) => [f.path, f.contents]));
  return bundles;
}

/**
 * Start the backend. opts: {wsUrl: the broker's WebSocket URL the page connects to, pubPort:
 * its publisher port, secret: the token secret (null: no tokens), port (0: ephemeral), key: a
 * publisher API key}. Resolves to {url, port, docs, fetches, close()}.
 */
export async function startDemo(opts) {
  const files = await bundle();
  // The Node publisher (clients/node); wait: an error answers the request instead of null.
  const pub = createPublisher({ address: { host: '127.0.0.1', port: opts.pubPort }, key: opts.key });
  const docs = new Map(); // key → value
  const fetches = new Map(); // key → GET count
  const page = (f) => readFileSync(join(here, f));
  const publish = (topics, { data, origin, skip_origin: skipOrigin } = {}) =>
    pub.publish(topics, data, { origin, skipOrigin, wait: true });

  async function body(req) {
    let s = '';
    for await (const d of req) {
      s += d;
      if (s.length > 1 << 20) throw new Error('body too large');
    }
    return s ? JSON.parse(s) : {};
  }
  const send = (res, code, type, data) => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(data);
  };
  const json = (res, code, o) => send(res, code, 'application/json', JSON.stringify(o));

  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x');
    const p = u.pathname;
    try {
      if (p === '/' || p === '/index.html') return send(res, 200, 'text/html', page('index.html'));
      if (p === '/lab') return send(res, 200, 'text/html', page('lab.html'));
      if (p.endsWith('.js') && files.has(p)) return send(res, 200, 'text/javascript', files.get(p));
      if (p === '/api/config') return json(res, 200, { url: opts.wsUrl });
      if (p === '/api/token') {
        const user = u.searchParams.get('user');
        if (!user || !opts.secret) return json(res, 200, { token: null });
        const ttl = +(u.searchParams.get('ttl') || 600);
        const topics = u.searchParams.get('topics'); // group topics, comma-separated
        const extra = topics ? { topics: topics.split(',') } : {};
        return json(res, 200, { token: mintToken(opts.secret, user, ttl, extra) });
      }
      if (p === '/api/fetches') return json(res, 200, Object.fromEntries(fetches));
      if (p.startsWith('/api/doc/')) {
        const key = decodeURIComponent(p.slice(9));
        if (req.method === 'GET') {
          fetches.set(key, (fetches.get(key) || 0) + 1);
          if (opts.fetchDelayMs) await new Promise((r) => setTimeout(r, opts.fetchDelayMs));
          return json(res, 200, { value: docs.has(key) ? docs.get(key) : null });
        }
        if (req.method === 'PUT') {
          const b = await body(req);
          if (b.fail) return json(res, 500, { error: 'the change was refused (demo: fail)' });
          if (b.append !== undefined) docs.set(key, [...(docs.get(key) || []), b.append]);
          else docs.set(key, b.value);
          const extra = b.origin ? { origin: b.origin } : {};
          if (b.data !== undefined) extra.data = b.data;
          // stamp: the publish time in data.t (a test times publish → hint in a page).
          if (b.stamp) extra.data = { ...extra.data, t: Date.now() };
          // {topic: seq}: the position the client that made the change can wait for (seen()).
          const seqs = b.topics && b.topics.length ? await publish(b.topics, extra) : {};
          return json(res, 200, { seqs });
        }
      }
      json(res, 404, { error: 'no such path' });
    } catch (e) {
      json(res, 400, { error: String(e.message || e) });
    }
  });
  await new Promise((r) => server.listen(opts.port || 0, opts.host || '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    docs,
    fetches,
    /** Set a document without publishing (a test's starting data). */
    seed: (key, value) => docs.set(key, value),
    /** Publish as the backend; resolves to the seqs in the order of `topics`. */
    publish: async (topics, extra) => {
      const seqs = await publish(topics, extra);
      return topics.map((t) => seqs[t]);
    },
    close: () =>
      new Promise((r) => {
        pub.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---- `npm start` / `make example`: nudged and the demo backend together ----------------------

async function main() {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  if (process.argv.includes('--help')) {
    console.log(`usage: node server.js [--nudged PATH] [--port N]
Starts nudged (loopback, ephemeral ports, tokens required) and the demo backend on --port
(default 8080); open the printed address in two windows.`);
    return;
  }
  const root = resolve(here, '../../..');
  const bin = arg('--nudged', process.env.NUDGED || join(root, 'build/nudged'));
  if (!existsSync(bin)) throw new Error(`no nudged at ${bin}: run \`make\` at the top first`);
  const dir = mkdtempSync(join(tmpdir(), 'nudge-example-'));
  const secret = randomBytes(32).toString('hex');
  writeFileSync(join(dir, 'secret'), secret, { mode: 0o600 });
  const args = ['--pub', '127.0.0.1:0', '--ws', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--http', '127.0.0.1:0',
    '--token-secret-file', join(dir, 'secret'), '--public', 'board:**', '--data-dir', join(dir, 'data')];
  const nudged = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => {
    nudged.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => (stop(), process.exit(0)));
  process.on('SIGTERM', () => (stop(), process.exit(0)));
  nudged.on('exit', (code) => (console.error(`nudged exited (${code})`), process.exit(1)));
  const ready = await new Promise((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error('nudged not ready in 15 s')), 15000);
    nudged.stdout.on('data', (d) => {
      out += d;
      const m = /nudged ready pub=(\S+):(\d+) ws=(\S+):(\d+)/.exec(out);
      if (m) clearTimeout(t), res({ pub: +m[2], ws: +m[4] });
    });
  });
  const demo = await startDemo({
    wsUrl: `ws://127.0.0.1:${ready.ws}/`,
    pubPort: ready.pub,
    secret,
    port: +arg('--port', 8080),
  });
  console.log(`nudge example: open ${demo.url}/ in two windows (Ctrl-C stops it and nudged)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error('nudge example:', e.message || e);
    process.exit(1);
  });
}
