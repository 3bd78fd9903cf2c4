// Type-checked (tsc --noEmit, `npm run types`), never run: the declarations fit typical use.
import { createClient, webStorage, type Hint, type State } from '../src/index.js';
import { createSharedClient, serveTabs, type SharedClient } from '../src/shared.js';

declare const WS: new (url: string, protocol: string) => WebSocket;
const c = createClient({
  url: 'wss://nudge.example.com/',
  token: async () => 'jwt',
  WebSocket: WS,
  format: 'msgpack',
  store: webStorage(localStorage),
  backoff: { min: 100, max: 10000 },
});
const off = c.subscribe('project:*', (m) => {
  if (m.type === 'hint') {
    const seq: number = m.seq;
    const n: number = m.n ?? 1;
    void [seq, n, m.own === true];
  } else if (m.type === 'reset') {
    const why: string = m.reason;
    void why;
  } else {
    const code: number = m.code;
    void code;
  }
});
c.on('state', (s: State, prev: State) => void [s, prev]);
c.on('hint', (h: Hint) => void h.topic);
const id: string | null = c.connId;
void id;
off();
void c.pause().then(() => c.resume());
c.close();

// The shared entry (src/shared.d.ts): the same Client, plus the mode.
const sc: SharedClient = createSharedClient({
  url: 'wss://nudge.example.com/',
  token: () => 'jwt',
  name: 'app',
  mode: 'auto',
  worker: () => new SharedWorker('/nudge-worker.js', { type: 'module', name: 'app' }),
});
const client: import('../src/index.js').Client = sc;
void client;
const mode: 'worker' | 'leader' | 'alone' = sc.mode;
void mode;
sc.subscribe('doc:1', (m) => void m.type);
declare const scope: { addEventListener(type: 'connect', fn: (e: MessageEvent) => void): void };
serveTabs(scope);

// React bindings (src/react.d.ts), as a component uses them.
import { NudgeProvider, useNudge, useNudgeClient, useNudgeState } from '../src/react.js';
function Project(id: string) {
  useNudge(`project:${id}`);
  useNudge(['a', 'b'], (m) => void (m.type === 'hint' && m.seq));
  const live: boolean = useNudgeState() === 'live';
  const conn: string | null = useNudgeClient().connId;
  return NudgeProvider({ client: c, children: [live, conn] });
}
void Project;
