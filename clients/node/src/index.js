// nudge Node publisher: a backend tells the broker "these topics changed" over one TCP (or TLS)
// connection, pipelined, and never fails the app's request because nudge is down.
//
// Design (wire: docs/protocol.md §Publisher protocol; contract: docs/clients.md §Node publisher):
// - A publish is a record {body, settle}: `body` is its msgpack map without `id`, encoded once in
//   publish() (so bad data throws there, in the caller); the id is spliced in when it is written,
//   because ids belong to a connection and a record may be written on several.
// - `queue` holds records not yet written, `inflight[iHead..]` those written and unanswered, in
//   write order (acks come in order: the next answer is the oldest's). A lost connection puts
//   them back at the head of `queue`, so everything is written again in order after the
//   reconnect (at-least-once: a publish whose ack was lost may be applied twice, which costs
//   subscribers one extra refetch).
// - publish() only queues; one setImmediate flush writes all that a turn of the event loop queued
//   as ONE socket write, so a burst of publishes costs one syscall, not one each.
// - The caller's promise is apart from delivery: it settles with the ack, or with null at the
//   ack timeout, or with null at once while an outage is known; the record stays until acked,
//   refused or dropped. Only bad arguments throw: nudge down must never fail a request.
// - An outage runs from a failed connection attempt (refused, timeout, TLS, unauthorized) or an
//   ack timeout on a live connection (a stalled broker) to the next welcome or answer: one log
//   line at each end, nothing written, `queue` bounded by bufferMax (the oldest dropped).
// - A stalled connection is kept, so a broker that was only paused answers everything without
//   duplicates; one silent for STALL_CLOSE_MS is closed and opened again.
// - The socket and the reconnect timer are unref'd: a pending publish (its ack timer) keeps the
//   process alive, an idle publisher does not. close() flushes what is in flight.
import net from 'node:net';
import tls from 'node:tls';
import { Decoder, Encoder } from '@msgpack/msgpack';

// One of each for the process: msgpack's encode()/decode() build a new one per call, which costs
// more than the publish itself (they are not re-entrant, and every call here is synchronous).
const encoder = new Encoder(), decoder = new Decoder();
const encode = (v) => encoder.encode(v), decode = (b) => decoder.decode(b);

const NAME = '@nudge/node/0.1.0';
const BACKOFF_MIN = 100, BACKOFF_MAX = 5000;
const LIVE_MS = 1000; // a connection up this long, once lost, is retried at once
const STALL_CLOSE_MS = 10000; // a live connection silent this long with publishes waiting is dead
const PING_MS = 30000; // below the broker's --pub-idle (120 s), so a quiet connection is kept
const MAX_FRAME = 16 << 20; // the protocol's largest max_frame: past it the stream is garbage
const LOG_REFUSALS_MS = 10000; // at most one line per this for refused publishes

/** A broker refusal (code from docs/protocol.md §Errors) or, code 0, a local failure. */
export class NudgeError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'NudgeError';
    this.code = code;
  }
}

/** Length prefix + body; `body` is a msgpack map. */
function framed(body) {
  const f = Buffer.allocUnsafe(4 + body.length);
  f.writeUInt32BE(body.length, 0);
  f.set(body, 4);
  return f;
}

function parseAddress(a) {
  if (a && typeof a === 'object') return { host: a.host || '127.0.0.1', port: +a.port || 7400 };
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(a || '127.0.0.1:7400');
  if (!m || !m[1]) throw new TypeError('nudge: address wants "host:port", got ' + a);
  return { host: m[1], port: m[2] ? +m[2] : 7400 };
}

export class Publisher {
  constructor(opts = {}) {
    const { host, port } = parseAddress(opts.address);
    this.host = host;
    this.port = port;
    this.where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.key = opts.key ?? process.env.NUDGE_API_KEY ?? null;
    this.tls = opts.tls ? (opts.tls === true ? {} : opts.tls) : null;
    this.client = opts.client || NAME;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 2000;
    this.bufferMax = opts.bufferMax ?? 10000;
    const lg = opts.logger ?? console.warn;
    this.log = (line) => {
      try {
        typeof lg === 'function' ? lg(line) : lg.warn(line);
      } catch (e) {} // a throwing logger must not break a socket handler (and crash the app)
    };

    this.queue = [];
    this.inflight = [];
    this.iHead = 0;
    // Callers waiting for an ack, in deadline order (one ack timeout for all), under ONE timer:
    // a Timeout per publish costs more than the publish in a burst.
    this.waiting = [];
    this.wHead = 0;
    this.unsettled = 0; // of `waiting`: at 0 the timer goes, so a script can exit once acked
    this.ackTimer = null;
    this.counts = { sent: 0, acked: 0, dropped: 0, refused: 0, reconnects: 0, outages: 0 };
    this.sock = null;
    this.ready = false; // welcome received on `sock`
    this.epoch = null;
    this.maxFrame = 65536;
    this.nextId = 1;
    this.attempt = 0; // for the backoff: reset by a connection that stayed up LIVE_MS
    this.everUp = false;
    this.outage = null; // {since, dropped} while one is known
    this.flushing = false;
    this.closed = false; // close() called: publishes are refused
    this.done = false; // close() finished: no more connections
    this.refusalLog = { at: 0, quiet: 0 };
    this.retry = setTimeout(() => this.connect(), 0);
    this.retry.unref();
    this.pinger = setInterval(() => this.ping(), PING_MS);
    this.pinger.unref();
    this.lastWrite = 0;
  }

  /**
   * Publish a change to `topics`; resolves to {topic: seq}, or null when the broker does not
   * ack in time (the publish stays buffered). With `wait: true` rejects with NudgeError instead.
   */
  publish(topics, data, { origin, skipOrigin = false, wait = false } = {}) {
    if (!Array.isArray(topics) || topics.length === 0)
      throw new TypeError('nudge: publish wants a non-empty array of topic names');
    for (const t of topics)
      if (typeof t !== 'string' || t === '') throw new TypeError('nudge: a topic must be a non-empty string');
    if (origin != null && typeof origin !== 'string') throw new TypeError('nudge: origin must be a string');
    const m = { type: 'pub', topics };
    if (data !== undefined && data !== null) m.data = data;
    if (origin) m.origin = origin;
    if (skipOrigin) m.skip_origin = true;
    const body = encode(m); // throws on data msgpack cannot carry (functions, BigInt, symbols)
    return new Promise((resolve, reject) => {
      const p = { topics: topics.slice(), body, id: 0, deadline: 0, settled: false, resolve, reject, wait };
      if (this.closed) return this.drop(p, 'publisher closed');
      this.queue.push(p);
      if (this.outage || !this.ready) this.trim();
      if (this.outage) this.settle(p, null, this.downError());
      else {
        p.deadline = Date.now() + this.ackTimeoutMs;
        this.waiting.push(p);
        this.unsettled++;
        if (!this.ackTimer) this.armAckTimer();
      }
      this.schedule();
    });
  }

  /** Counters; `buffered` is what is held now, unsent or unacked. */
  stats() {
    return { ...this.counts, buffered: this.queue.length + this.flying() };
  }

  /** Flush what is queued or in flight for up to the ack timeout, then close for good. */
  close() {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = new Promise((done) => {
      const finish = () => {
        this.done = true;
        clearTimeout(t);
        clearTimeout(this.ackTimer);
        clearTimeout(this.retry);
        clearInterval(this.pinger);
        this.drained = null;
        const sock = this.sock;
        this.sock = null;
        this.ready = false;
        if (sock) sock.destroy();
        for (const p of [...this.unacked(), ...this.queue]) this.drop(p, 'publisher closed');
        this.queue = [];
        done();
      };
      const t = setTimeout(finish, this.ackTimeoutMs);
      this.drained = () => !this.queue.length && !this.flying() && finish();
      this.flush();
      this.drained();
    });
    return this.closing;
  }

  // ---- connection ----------------------------------------------------------------------------

  connect() {
    if (this.done) return; // closed and flushed (while close() flushes, connecting still helps)
    const t = this.tls;
    const { host, port } = this;
    const sock = t
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...t })
      : net.connect(port, host);
    this.sock = sock;
    this.ready = false;
    this.rx = Buffer.alloc(0);
    sock.unref();
    sock.setNoDelay(true);
    const ms = this.connectTimeoutMs;
    sock.timer = setTimeout(() => this.lost(sock, `no welcome in ${ms} ms`), ms);
    sock.timer.unref();
    sock.once(t ? 'secureConnect' : 'connect', () => {
      const hello = { type: 'hello', v: 1, client: this.client };
      if (this.key) hello.auth = this.key;
      this.nextId = 1;
      sock.write(framed(encode(hello)));
    });
    sock.on('data', (d) => this.receive(sock, d));
    // A system error by its code (ECONNREFUSED), a TLS one by its message (names the check).
    sock.on('error', (e) => this.lost(sock, (e.syscall && e.code) || e.message));
    sock.on('close', () => this.lost(sock, 'connection closed'));
  }

  /** `sock` is gone: requeue what it carried, then reconnect (at once if it was live). */
  lost(sock, reason) {
    if (sock !== this.sock) return;
    this.sock = null;
    clearTimeout(sock.timer);
    clearTimeout(this.stall);
    sock.destroy();
    const wasReady = this.ready; // (a failed attempt starts an outage; a lost connection, not yet)
    const wasLive = wasReady && !this.outage && Date.now() - sock.upAt >= LIVE_MS;
    this.ready = false;
    if (this.flying()) {
      const back = this.unacked();
      for (const p of back) p.id = 0;
      this.queue = back.concat(this.queue);
    }
    if (this.done) return;
    if (!wasReady) this.down(sock.why || reason);
    this.trim();
    // A live connection lost (the broker's idle close, a restart) is retried at once, and only a
    // failed retry is an outage; then exponential backoff with full jitter. One that dies soon
    // after its welcome backs off too, so a broker that accepts and drops is not hammered.
    if (wasLive) this.attempt = 0;
    const delay = wasLive ? 0 : Math.random() * Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.attempt++);
    this.retry = setTimeout(() => this.connect(), delay);
    this.retry.unref();
  }

  receive(sock, d) {
    if (sock !== this.sock) return;
    this.rx = this.rx.length ? Buffer.concat([this.rx, d]) : d;
    while (this.rx.length >= 4) {
      const n = this.rx.readUInt32BE(0);
      if (n > MAX_FRAME) return this.lost(sock, `a ${n}-byte frame from the broker`);
      if (this.rx.length < 4 + n) break;
      let m;
      try {
        m = decode(this.rx.subarray(4, 4 + n));
      } catch (e) {}
      if (!m || typeof m !== 'object') return this.lost(sock, 'undecodable frame from the broker');
      this.rx = this.rx.subarray(4 + n);
      this.frame(sock, m);
      if (sock !== this.sock) return;
    }
  }

  frame(sock, m) {
    if (!this.ready) {
      if (m.type === 'welcome') return this.welcome(sock, m);
      if (m.type === 'error') sock.why = `hello refused: ${m.code} ${m.msg}`; // 16 unauthorized: closed next
      return;
    }
    if (this.outage) this.up(); // a stalled broker answers again
    if (m.type === 'ack' && !Array.isArray(m.seqs)) return this.lost(sock, 'an ack without seqs');
    const p = m.id && (m.type === 'ack' || m.type === 'error') ? this.answered(m.id) : undefined;
    if (m.type === 'ack' && p) {
      this.counts.acked++;
      const seqs = {};
      p.topics.forEach((t, i) => (seqs[t] = m.seqs[i]));
      this.settle(p, seqs);
    } else if (m.type === 'error' && p) {
      this.refused(p, m.code, m.msg);
    } else if (m.type === 'error') {
      this.logRefusal(`broker error ${m.code}: ${m.msg}`);
    } else if (m.type === 'ping') {
      this.write(framed(encode({ type: 'pong', id: m.id })));
    }
    if (this.drained) this.drained();
  }

  welcome(sock, m) {
    clearTimeout(sock.timer);
    sock.upAt = Date.now();
    this.ready = true;
    this.epoch = m.epoch;
    this.maxFrame = m.max_frame || this.maxFrame;
    if (this.everUp) this.counts.reconnects++;
    this.everUp = true;
    this.up();
    this.flush();
  }

  /** An outage starts: say so once, and answer every waiting caller now. */
  down(reason) {
    if (this.outage) return;
    this.outage = { since: Date.now(), dropped: this.counts.dropped };
    this.counts.outages++;
    this.log(`nudge: broker ${this.where} unreachable (${reason}); ` +
      `buffering up to ${this.bufferMax} publishes`);
    const err = this.downError(reason);
    for (let i = this.iHead; i < this.inflight.length; i++) this.settle(this.inflight[i], null, err);
    for (const p of this.queue) this.settle(p, null, err);
  }

  up() {
    if (!this.outage) return;
    clearTimeout(this.stall);
    const s = ((Date.now() - this.outage.since) / 1000).toFixed(1);
    const n = this.queue.length + this.flying();
    this.log(`nudge: broker ${this.where} back after ${s} s; ${n} publishes flushed, ` +
      `${this.counts.dropped - this.outage.dropped} dropped`);
    this.outage = null;
    this.schedule();
  }

  downError(reason = 'known down') {
    return new NudgeError(0, `nudge: broker ${this.where} unreachable (${reason})`);
  }

  // ---- publishes -----------------------------------------------------------------------------

  schedule() {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => ((this.flushing = false), this.flush()));
  }

  /** Write everything queued as one socket write (not during an outage: a stall holds it). */
  flush() {
    if (!this.ready || this.outage || !this.queue.length) return;
    const q = this.queue;
    this.queue = [];
    let size = 0, n = 0;
    for (const p of q) {
      if (p.body.length + 8 > this.maxFrame) {
        // It would make the broker close the connection (too_large), and then again after each
        // reconnect: refuse it here instead.
        const what = `publish of ${p.body.length} bytes over the broker's max_frame (${this.maxFrame})`;
        this.refused(p, 4, what);
        p.body = null;
      } else size += 12 + p.body.length;
    }
    const buf = Buffer.allocUnsafe(size);
    for (const p of q) {
      if (!p.body) continue;
      p.id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      this.inflight.push(p);
      // {type, topics, ...} with `id` spliced in as the first key: the fixmap header (encode()
      // wrote one: at most 5 keys) counts one entry more, then "id" and a uint32.
      buf.writeUInt32BE(8 + p.body.length, n);
      buf[n + 4] = p.body[0] + 1;
      buf[n + 5] = 0xa2, buf[n + 6] = 0x69, buf[n + 7] = 0x64, buf[n + 8] = 0xce;
      buf.writeUInt32BE(p.id, n + 9);
      const b = p.body; // (a loop: TypedArray.set and subarray cost more for ~30 bytes)
      for (let j = 1, o = n + 12; j < b.length; j++) buf[o + j] = b[j];
      n += 12 + p.body.length;
      this.counts.sent++;
    }
    if (n) this.write(buf);
  }

  write(buf) {
    this.lastWrite = Date.now();
    this.sock.write(buf);
  }

  ping() {
    if (this.ready && !this.outage && Date.now() - this.lastWrite >= PING_MS) {
      this.write(framed(encode({ type: 'ping', id: this.nextId })));
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    }
  }

  /** The ack timer for the first caller still waiting (it keeps the process alive). */
  armAckTimer() {
    const w = this.waiting;
    while (w[this.wHead].settled) this.wHead++; // there is an unsettled one: called only then
    if (this.wHead > 1024 && this.wHead * 2 > w.length) w.splice(0, this.wHead), (this.wHead = 0);
    this.ackTimer = setTimeout(() => this.expire(), Math.max(0, w[this.wHead].deadline - Date.now()));
  }

  expire() {
    this.ackTimer = null;
    const now = Date.now(), w = this.waiting;
    // (settling the last unsettled one empties `waiting`, which ends the loop)
    while (this.wHead < w.length && w[this.wHead].deadline <= now) this.ackTimeout(w[this.wHead++]);
    if (this.unsettled) this.armAckTimer();
  }

  ackTimeout(p) {
    if (p.settled) return;
    const written = p.id !== 0; // (0 until written, and again once put back in `queue`)
    this.settle(p, null, new NudgeError(0, `nudge: no ack in ${this.ackTimeoutMs} ms from ${this.where}`));
    if (written && this.ready && !this.outage) {
      // The broker took the bytes and says nothing: stalled or overloaded. Stop writing, answer
      // the others now, and give the connection STALL_CLOSE_MS to wake up.
      const sock = this.sock;
      this.down(`no ack in ${this.ackTimeoutMs} ms`);
      this.stall = setTimeout(() => this.lost(sock, 'stalled'), STALL_CLOSE_MS);
      this.stall.unref();
    }
  }

  refused(p, code, msg) {
    this.counts.refused++;
    this.logRefusal(`publish to ${p.topics.join(' ')} refused: ${code} ${msg}`);
    this.settle(p, null, new NudgeError(code, `nudge: ${msg}`));
  }

  flying() {
    return this.inflight.length - this.iHead;
  }

  /** Written and unanswered, oldest first; empties `inflight`. */
  unacked() {
    const l = this.inflight.slice(this.iHead);
    this.inflight = [];
    this.iHead = 0;
    return l;
  }

  /** The record answer `id` is for, taken out of `inflight` (the oldest, unless the order broke). */
  answered(id) {
    const f = this.inflight;
    let p = f[this.iHead];
    if (p && p.id === id) f[this.iHead++] = undefined;
    else {
      const i = f.findIndex((q, k) => k >= this.iHead && q.id === id);
      if (i < 0) return undefined;
      p = f.splice(i, 1)[0];
    }
    if (this.iHead === f.length) (f.length = 0), (this.iHead = 0);
    else if (this.iHead > 1024 && this.iHead * 2 > f.length) f.splice(0, this.iHead), (this.iHead = 0);
    return p;
  }

  /** Drop the oldest unsent publishes past bufferMax. */
  trim() {
    const over = this.queue.length + this.flying() - this.bufferMax;
    if (over <= 0) return;
    const oldest = this.queue.splice(0, Math.min(over, this.queue.length));
    for (const p of oldest) this.drop(p, 'dropped: buffer full');
  }

  drop(p, why) {
    this.counts.dropped++;
    this.settle(p, null, new NudgeError(0, `nudge: publish ${why}`));
  }

  settle(p, value, err) {
    if (p.settled) return;
    p.settled = true;
    if (p.deadline && --this.unsettled === 0) {
      clearTimeout(this.ackTimer);
      this.ackTimer = null;
      this.waiting.length = this.wHead = 0;
    }
    if (err && p.wait) p.reject(err);
    else p.resolve(err ? null : value);
  }

  logRefusal(line) {
    const r = this.refusalLog, now = Date.now();
    if (now - r.at < LOG_REFUSALS_MS) return void r.quiet++;
    this.log(`nudge: ${line}` + (r.quiet ? ` (and ${r.quiet} more not logged)` : ''));
    r.at = now;
    r.quiet = 0;
  }
}

/** A publisher for `opts` (see Publisher); it connects at once and keeps reconnecting. */
export function createPublisher(opts) {
  return new Publisher(opts);
}
