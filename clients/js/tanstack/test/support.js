// Test support for the adapter: the broker, publisher and bounded waits of the core client's tests
// (clients/js/test/support.js, whose packages `make test-js` installs first), a core client over
// `ws`, and a QueryClient whose queries count their fetches. Only processes started there are
// signalled, by PID.
import WebSocket from 'ws';
import { QueryClient, QueryObserver } from '@tanstack/query-core';
import { createClient } from '../../src/index.js';
import { sleep, until } from '../../test/support.js';

export { BIN, publisher, sleep, startBroker, tempDir, until } from '../../test/support.js';

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
