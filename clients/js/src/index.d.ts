// Types of the nudge JavaScript client (src/index.js). Wire messages: docs/protocol.md;
// what a client may rely on: docs/guarantees.md; usage: docs/clients.md §JavaScript client.

/** A topic changed (protocol.md §hint). */
export interface Hint {
  type: 'hint';
  /** The concrete topic, also when it came through a pattern. */
  topic: string;
  /** The topic's seq after the change (the newest one when `n` > 1). */
  seq: number;
  /** The publish's data, when it had one (the newest one's when coalesced). */
  data?: unknown;
  /** Present (> 1) when this hint stands for several changes: refetch rather than apply. */
  n?: number;
  /** True when this connection (`client.connId`) was the publish's origin. */
  own?: true;
}

/** The client cannot be brought up to date with hints for this topic or pattern: refetch it. */
export interface Reset {
  type: 'reset';
  /** The topic or pattern as subscribed. */
  topic: string;
  /** Hints after the reset continue from this seq (a global position for a pattern). */
  seq: number;
  /**
   * For logs only; act the same on every reason. `epoch`, `ahead`, `horizon`, `evicted` come from
   * the broker; `resubscribed` from the client (a subscription that lost its position).
   */
  reason: string;
}

/** An `error` from the broker (protocol.md §Errors), or code 0 for a local failure. */
export interface NudgeError {
  type?: 'error';
  code: number;
  msg: string;
  /** The topic or pattern, for per-topic errors (e.g. 17 forbidden, 5 bad_topic). */
  topic?: string;
  id?: number;
}

/**
 * connecting: the first connection is being made; live: connected, subscriptions confirmed or
 * on their way; reconnecting: the connection was lost and the client is retrying (backoff);
 * offline: paused, closed, or the device is offline; unauthorized: the token was refused and the
 * client waits for the provider to return a different one.
 */
export type State = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'unauthorized';

/** Positions to resume from: the epoch and the last seq per topic (a global position per pattern). */
export interface Positions {
  epoch: string | null;
  seqs: Record<string, number>;
}

export interface Store {
  /** Positions saved by an earlier page load or app start, or null. */
  load(): Positions | null | undefined | Promise<Positions | null | undefined>;
  /** Called with the positions after they change (at most every 100 ms), on pause() and close(). */
  save(p: Positions): void;
}

/**
 * The constructor the client needs: the browser's, React Native's, or the `ws` package's. The
 * client sets `binaryType` and the `onopen`/`onmessage`/`onclose`/`onerror` handlers.
 */
export type WebSocketLike = new (url: string, protocol: string) => {
  binaryType: any;
  readonly readyState: number;
  send(data: any): void;
  close(code?: number): void;
};

export interface ClientOptions {
  /** The broker's WebSocket URL, e.g. `wss://nudge.example.com/`. */
  url: string;
  /**
   * Returns a JWT for `hello` (or null: anonymous). Called at every connection attempt, before
   * the token's `exp` to refresh the live connection, and after close 4002 (expired).
   */
  token?: () => string | null | Promise<string | null>;
  /** A WebSocket constructor; default `globalThis.WebSocket` (pass `ws`'s in Node < 22). */
  WebSocket?: WebSocketLike;
  /** Wire encoding; 'msgpack' loads the optional peer dependency @msgpack/msgpack. Default 'json'. */
  format?: 'json' | 'msgpack';
  /** Persist positions across page loads / app starts (see `webStorage`). */
  store?: Store;
  /** Reconnect delays in ms: random in [0, min(max, min·2^attempt)]. Default {min: 500, max: 30000}. */
  backoff?: { min?: number; max?: number };
  /** App-level ping interval in ms (keeps pattern positions fresh, detects dead sockets). Default 25000. */
  pingInterval?: number;
  /** ms allowed from opening the socket to `welcome`. Default 10000. */
  connectTimeout?: number;
  /** Client name sent in `hello`, for the broker's logs. Default 'nudge-js/0.1'. */
  client?: string;
}

export type Message = Hint | Reset | (NudgeError & { type: 'error' });

export interface Client {
  /** Current connection state. */
  readonly state: State;
  /** This connection's id (welcome.conn), for the backend's publish `origin`; null when not live. */
  readonly connId: string | null;
  /** The broker's epoch of the current or last connection. */
  readonly epoch: string | null;
  /**
   * Follow a topic or a wildcard pattern (`project:*`, `org:3:**`). Callbacks of one name share
   * one broker subscription; the returned function removes this callback, and the last one
   * removed unsubscribes. The callback gets hints (of the concrete topics a pattern matches),
   * resets and per-topic errors of this subscription.
   */
  subscribe(topicOrPattern: string, fn: (m: Message) => void): () => void;
  on(ev: 'hint', fn: (h: Hint) => void): () => void;
  on(ev: 'reset', fn: (r: Reset) => void): () => void;
  on(ev: 'state', fn: (state: State, prev: State) => void): () => void;
  on(ev: 'error', fn: (e: NudgeError) => void): () => void;
  /** The positions the next resume will use (what `store.save` gets). */
  positions(): Positions;
  /**
   * Read your writes: resolves true once the client has seen, for every topic of `seqs` (a
   * publish's ack as {topic: seq}, handed back by the backend), that seq or a later one (a hint,
   * a catch-up hint, or a reset of the topic); false after `ms` (default 10000).
   */
  seen(seqs: Record<string, number>, ms?: number): Promise<boolean>;
  /**
   * Close the socket and keep every position (an app going to the background). Asks the broker
   * for a fresh pattern position first when there are patterns (up to 2 s).
   */
  pause(): Promise<void>;
  /** Connect again after pause(), or at once instead of waiting for a backoff or a new token. */
  resume(): void;
  /** Close for good. */
  close(): void;
}

export function createClient(opts: ClientOptions): Client;
/** Does `pattern` match `topic` (protocol.md §Wildcard patterns)? */
export function matches(pattern: string, topic: string): boolean;
/** A Store over localStorage/sessionStorage (anything with getItem/setItem) under `key`. */
export function webStorage(
  storage: { getItem(k: string): string | null; setItem(k: string, v: string): void },
  key?: string,
): Store;
