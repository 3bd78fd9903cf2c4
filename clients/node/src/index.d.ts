// @nudge/node: the Node.js publisher for nudge (docs/clients.md §Node publisher).

/** The new seq of each topic of a publish (a topic named twice keeps the last). */
export type Seqs = Record<string, number>;

export interface PublisherOptions {
  /** "host:port" ("[::1]:7400" for IPv6) or {host, port}; default "127.0.0.1:7400". */
  address?: string | { host: string; port: number };
  /** API key sent in `hello` (broker --pub-keys); default process.env.NUDGE_API_KEY. */
  key?: string | null;
  /**
   * TLS (broker --tls-cert): true for the system CAs and the host name, or node:tls connect
   * options such as {ca, servername}. The certificate and name are always verified.
   */
  tls?:
    | boolean
    | { ca?: string | Uint8Array | Array<string | Uint8Array>; servername?: string; [option: string]: unknown };
  /** Client name sent in `hello`, for the broker's logs; default "@nudge/node/0.1.0". */
  client?: string;
  /** Connect, TLS handshake and `welcome`, in ms; default 1000. */
  connectTimeoutMs?: number;
  /** How long publish() waits for its ack before it answers null, in ms; default 2000. */
  ackTimeoutMs?: number;
  /** Publishes held while the broker is unreachable; past it the oldest is dropped. Default 10000. */
  bufferMax?: number;
  /** Where the outage and refusal lines go: a function, or an object with warn(); default console.warn. */
  logger?: ((line: string) => void) | { warn(line: string): void };
}

export interface PublishOptions {
  /** The subscriber connection (its client's `connId`) that caused the change: its hint says own. */
  origin?: string | null;
  /** With `origin`: that connection gets no hint at all. */
  skipOrigin?: boolean;
  /** Reject with NudgeError instead of answering null (timeout, broker down, refusal). */
  wait?: boolean;
}

export interface PublisherStats {
  /** Publishes written to a connection (one written again after a reconnect counts again). */
  sent: number;
  acked: number;
  /** Held now: not yet written, or written and not yet acked. */
  buffered: number;
  /** Dropped past bufferMax, or still held at close(). */
  dropped: number;
  /** Refused by the broker (forbidden, bad topic, rate limited, …). */
  refused: number;
  /** Connections made after the first. */
  reconnects: number;
  outages: number;
}

/** A broker refusal (`code` from docs/protocol.md §Errors) or, with code 0, a local failure. */
export class NudgeError extends Error {
  constructor(code: number, message: string);
  readonly code: number;
}

export class Publisher {
  constructor(opts?: PublisherOptions);
  /** The broker's epoch from the last `welcome` (seqs compare only within one); null before. */
  readonly epoch: string | null;
  /**
   * Publish a change to `topics`. Resolves to {topic: seq} once acked; to null when the broker
   * is down, stalled, slow (after ackTimeoutMs at most) or refuses it. Throws only for bad
   * arguments. The publish stays buffered and is sent once the broker is back.
   */
  publish(
    topics: readonly string[], data?: unknown, opts?: PublishOptions & { wait?: false },
  ): Promise<Seqs | null>;
  publish(topics: readonly string[], data: unknown, opts: PublishOptions & { wait: true }): Promise<Seqs>;
  publish(topics: readonly string[], data?: unknown, opts?: PublishOptions): Promise<Seqs | null>;
  stats(): PublisherStats;
  /** Flush what is queued or in flight for up to ackTimeoutMs, then close for good. */
  close(): Promise<void>;
}

export function createPublisher(opts?: PublisherOptions): Publisher;
