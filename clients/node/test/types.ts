// Type-checked (tsc --noEmit, `npm run types`), never run: the declarations fit typical use.
import { createPublisher, NudgeError, Publisher, type Seqs } from '../src/index.js';

const nudge = createPublisher({
  address: '127.0.0.1:7400',
  key: 'k',
  tls: { ca: 'PEM', servername: 'nudge.internal' },
  ackTimeoutMs: 500,
  logger: { warn: (line: string) => void line },
});
const other = new Publisher({ address: { host: '::1', port: 7400 }, tls: true, logger: (l) => void l });

async function handler(conn: string | null) {
  const maybe: Seqs | null = await nudge.publish(['project:17'], { by: 1 }, { origin: conn });
  const sure: Seqs = await nudge.publish(['project:17'], null, { wait: true, skipOrigin: true });
  const seq: number | undefined = sure['project:17'];
  try {
    await other.publish(['a'], undefined, { wait: true });
  } catch (e) {
    if (e instanceof NudgeError) void (e.code + 1);
  }
  const s = nudge.stats();
  const n: number = s.sent + s.acked + s.buffered + s.dropped + s.refused + s.reconnects + s.outages;
  const epoch: string | null = nudge.epoch;
  void [maybe, seq, n, epoch];
  await nudge.close();
}
void handler;

// @ts-expect-error topics is a list of names
nudge.publish('project:17');
