// Types of `@nudge/client/shared` (src/shared.js): one WebSocket for all tabs of an origin.
// Usage, modes and limits: docs/clients.md §One socket for all tabs.
import type { Client, ClientOptions } from './index.js';

/**
 * worker: the socket lives in a SharedWorker (src/worker.js); leader: in one tab, elected with a
 * Web Lock, the others talk to it over BroadcastChannel; alone: a plain createClient in this tab.
 */
export type SharedMode = 'worker' | 'leader' | 'alone';

export interface SharedClientOptions extends ClientOptions {
  /** Namespace of the channel and locks (`nudge:<name>`), so that two apps of an origin stay apart. Default 'nudge'. */
  name?: string;
  /** Makes the SharedWorker that runs src/worker.js, e.g. `() => new SharedWorker(url, {type: 'module', name})`. */
  worker?: () => SharedWorker;
  /**
   * 'auto' (default): worker when `worker` is given and SharedWorker exists, else leader when
   * BroadcastChannel and navigator.locks exist, else alone.
   */
  mode?: 'auto' | SharedMode;
  /** The Web Locks manager; default navigator.locks (for tests and hosts without one). */
  locks?: LockManager;
}

/**
 * The Client interface; the socket's state, connId and epoch are the shared connection's.
 * `pause()` tells the hub this tab no longer needs the socket: it is closed (positions kept) once
 * every attached tab has paused. `close()` detaches this tab; the socket closes with the last tab.
 * Hints arrive with `own: true` only while the shared socket serves this tab alone.
 */
export interface SharedClient extends Client {
  /** The mode chosen (from 'auto' or the option). */
  readonly mode: SharedMode;
}

export function createSharedClient(opts: SharedClientOptions): SharedClient;

/**
 * Run the hub in a SharedWorker script: `serveTabs(self)`. env (tests, other hosts): a WebSocket
 * constructor and a LockManager instead of the scope's.
 */
export function serveTabs(
  scope: { addEventListener(type: 'connect', fn: (e: MessageEvent) => void): void; navigator?: { locks?: LockManager } },
  env?: { WebSocket?: ClientOptions['WebSocket']; locks?: LockManager },
): void;
