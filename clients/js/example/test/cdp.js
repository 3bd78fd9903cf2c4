// A tiny raw Chrome DevTools Protocol driver, for what playwright cannot do: a hidden tab.
// Playwright keeps every page it attaches "visible" (focus emulation, and it launches Chromium
// with --disable-background-timer-throttling, --disable-renderer-backgrounding and
// --disable-backgrounding-occluded-windows). Here Chromium is launched with none of that, and
// tabs are made with Target.createTarget: a second tab opened in the window of the first
// (newWindow: false) hides the first, which gets `visibilitychange` to 'hidden' and Chrome's
// real background throttling (timers aligned to 1 s wake-ups). One WebSocket to the browser,
// flat sessions (one per tab). Only the Chromium started here is signalled, by its PID; its
// temporary profile is removed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15000; // every CDP command and every wait here is bounded

/**
 * Launch headless Chromium with a fresh profile. Resolves to {newTab(url), close()}. newTab
 * resolves to {targetId, evaluate(expr), waitFor(expr, ms), close(), cdp(method, params)}: evaluate runs `expr` in
 * the page (awaiting a promise) and resolves to its value (JSON-able), or rejects with the
 * page's exception.
 */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'nudge-cdp-'));
  const ch = spawn(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--remote-debugging-port=0', `--user-data-dir=${profile}`, '--no-first-run', 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise((r) => ch.once('exit', r));
  const reap = () => ch.kill('SIGKILL'); // the test process ends: no orphan Chromium
  process.on('exit', reap);
  exited.then(() => process.off('exit', reap));
  let sock;
  try {
    const wsUrl = await new Promise((res, rej) => {
      let err = '';
      const t = setTimeout(() => rej(new Error('chromium: no DevTools address in 20 s: ' + err)), 20000);
      ch.once('exit', (code) => (clearTimeout(t), rej(new Error(`chromium exited ${code}: ${err}`))));
      ch.stderr.on('data', (d) => {
        err += d;
        const m = /DevTools listening on (ws:\S+)/.exec(err);
        if (!m) return;
        clearTimeout(t);
        ch.stderr.removeAllListeners('data');
        ch.stderr.resume(); // drained, not kept
        res(m[1]);
      });
    });
    sock = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 256 << 20, handshakeTimeout: TIMEOUT });
    await new Promise((res, rej) => (sock.once('open', res), sock.once('error', rej)));
    sock.on('error', () => {}); // a lost connection rejects what is pending (on 'close')
  } catch (e) {
    ch.kill('SIGKILL');
    await exited;
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }

  let id = 0;
  const pending = new Map(); // id → {res, rej, timer}
  sock.on('message', (d) => {
    const m = JSON.parse(d);
    if (m.method === 'Runtime.exceptionThrown') {
      const x = m.params.exceptionDetails;
      console.error('page error:', (x.exception && x.exception.description) || x.text);
    }
    const p = m.id !== undefined && pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.rej(new Error(`${p.method}: ${m.error.message}`));
    else p.res(m.result);
  });
  sock.on('close', () => {
    for (const p of pending.values()) clearTimeout(p.timer), p.rej(new Error('CDP connection closed'));
    pending.clear();
  });
  const send = (method, params = {}, sessionId) =>
    new Promise((res, rej) => {
      const i = ++id;
      const timer = setTimeout(() => (pending.delete(i), rej(new Error(`${method}: no answer in ${TIMEOUT} ms`))), TIMEOUT);
      pending.set(i, { res, rej, timer, method });
      sock.send(JSON.stringify({ id: i, method, params, sessionId }));
    });

  let first = true;
  return {
    /** A new tab on `url`: the first in a new window, the next ones in that window (hiding it). */
    async newTab(url) {
      const { targetId } = await send('Target.createTarget', first ? { url } : { url, newWindow: false });
      first = false;
      const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
      await send('Runtime.enable', {}, sessionId); // page exceptions are printed
      const evaluate = async (expression) => {
        const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
        if (r.exceptionDetails) {
          const x = r.exceptionDetails;
          throw new Error('in the page: ' + ((x.exception && x.exception.description) || x.text));
        }
        return r.result.value;
      };
      return {
        targetId,
        evaluate,
        /** Poll `expr` until it is truthy (every 50 ms, at most `ms`); resolves to its value. */
        async waitFor(expr, ms = 10000) {
          const end = Date.now() + ms;
          for (;;) {
            const v = await evaluate(expr).catch(() => undefined); // the page may be loading
            if (v) return v;
            if (Date.now() > end) throw new Error(`not true in ${ms} ms: ${expr}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        close: () => send('Target.closeTarget', { targetId }),
        /** Any CDP command on this tab's session (e.g. Page.setWebLifecycleState). */
        cdp: (method, params) => send(method, params, sessionId),
      };
    },
    /** Close the browser (Browser.close, then SIGKILL by PID after 5 s) and remove its profile. */
    async close() {
      if (ch.exitCode === null && ch.signalCode === null) {
        const k = setTimeout(() => ch.kill('SIGKILL'), 5000);
        send('Browser.close').catch(() => ch.kill('SIGKILL'));
        await exited;
        clearTimeout(k);
      }
      sock.terminate();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
