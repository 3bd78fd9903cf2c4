// The SharedWorker script of createSharedClient's 'worker' mode: bundle and serve it from the
// app's origin, then pass `worker: () => new SharedWorker(url, { type: 'module', name: 'nudge' })`.
// It runs the hub: the one WebSocket of every tab that connects to this worker.
import { serveTabs } from './shared.js';

serveTabs(self);
