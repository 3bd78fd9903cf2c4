// Browser test support: the real nudged (the core client's test support), the demo backend
// (server.js) as the app's backend, and headless Chromium (Debian's /usr/bin/chromium, or
// $CHROMIUM) driven by playwright-core. A story is browsers (one per user or device, each its own
// cookies and storage) with pages on the demo backend's lab page (src/lab.js on window.lab) or
// on the example app. Everything started here is stopped by `close()`, processes by PID.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startBroker, tempDir, until, sleep } from '../../test/support.js';
import { startDemo } from '../server.js';

export { sleep, until };

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Start a story's world. opts.brokerArgs: extra nudged flags (default: tokens required, every
 * token may read `board:**`); opts.fetchDelayMs: the backend's delay per document GET.
 * Resolves to {broker, demo, secret, browser(): the Chromium (contexts are the users), stats(): the broker's /stats,
 * close()}.
 */
export async function world(opts = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: make test-js installs Debian's chromium (as root)`);
  const secret = 'nudge-example-secret-' + Math.random().toString(16).slice(2).padEnd(16, '0');
  const file = join(tempDir(), 'secret');
  writeFileSync(file, secret);
  const broker = await startBroker({
    args: ['--token-secret-file', file, ...(opts.brokerArgs || ['--public', 'board:**'])],
  });
  const demo = await startDemo({
    wsUrl: broker.url,
    pubPort: broker.pub,
    secret,
    fetchDelayMs: opts.fetchDelayMs,
  });
  const browsers = [];
  return {
    broker,
    demo,
    secret,
    /**
     * The headless Chromium of this world, launched on first use. Each user or device of a story
     * is a context of it (`newContext()`): its own storage, cookies, workers and connections, as
     * a separate browser would have, at a fraction of a launch's cost.
     */
    async browser() {
      if (!browsers.length)
        browsers.push(chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 30000 }));
      return browsers[0];
    },
    /** A page of `ctx` (a browser or a context) on the lab page, ready: window.lab is set. */
    async lab(ctx) {
      const page = await ctx.newPage();
      page.on('pageerror', (e) => console.error('page error:', e.message));
      await page.goto(demo.url + '/lab');
      await page.waitForFunction(() => window.lab !== undefined, null, { timeout: 15000 });
      return page;
    },
    /** The broker's /stats as an object. */
    async stats() {
      const r = await fetch(`http://127.0.0.1:${broker.admin}/stats`);
      return r.json();
    },
    async close() {
      for (const b of browsers) await (await b).close().catch(() => {});
      await demo.close();
      await broker.stop();
    },
  };
}
