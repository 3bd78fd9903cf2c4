// Test support for the publisher: the core's broker starter and subscriber recorder
// (clients/js/test/support.js, whose imports resolve from clients/js/node_modules), brokers
// stopped after each file, and a logger that keeps its lines.
import { after } from 'node:test';
import { startBroker, recorder } from '../../js/test/support.js';
import { createPublisher } from '../src/index.js';

export { recorder, sleep, tempDir, until } from '../../js/test/support.js';

// Clients close first, at once (a publisher's close() may wait out its ack timeout), then brokers.
const clients = [], brokers = [];
after(async () => {
  await Promise.all(clients.map((f) => f()));
  for (const f of brokers) await f();
});

/** A broker stopped when the file's tests end. */
export async function broker(opts) {
  const b = await startBroker(opts);
  brokers.push(() => b.stop());
  return b;
}

/** A publisher on `port` whose log lines are kept in `.lines`; closed when the file ends. */
export function pub(port, opts = {}) {
  const lines = [];
  const p = createPublisher({ address: `127.0.0.1:${port}`, logger: (l) => lines.push(l), ...opts });
  p.lines = lines;
  clients.push(() => p.close());
  return p;
}

/** A subscriber client on `url`; closed when the file ends. */
export function sub(url, opts = {}) {
  const r = recorder({ url, ...opts });
  clients.push(() => r.c.close());
  return r;
}
