// nudge JavaScript client: one WebSocket to the broker, reference-counted subscriptions,
// reconnect with exponential backoff and full jitter, resume from positions, token refresh.
//
// Design (wire rules: docs/protocol.md, resume rules: docs/guarantees.md):
// - `subs` maps a topic or pattern to its callbacks; the broker sees one `sub` per name however
//   many callbacks share it, and `unsub` when the last one leaves. Changes are batched per tick.
// - Positions: `pos` maps an exact topic to the last seq known for it and a pattern to its global
//   position (its `subscribed` seq, then the `g` of each `pong`), all in epoch `epoch`. A resumed
//   topic keeps its old position until its catch-up hint or reset arrives, so a connection lost
//   in between resumes from the same place again. When the broker's epoch differs, the old
//   positions are sent once (the broker answers `reset` "epoch") and then forgotten.
// - Every connection attempt asks the token provider; a token is refreshed on the live
//   connection before its `exp` (read from the JWT, not verified: the broker verifies).
// - A refused token (16 at hello, close 4003) or a revoked one (close 4010) parks the client in
//   `unauthorized`: it asks the provider again with backoff and connects only once it returns a
//   different token.
// - Close 1012 (the broker drains for a restart and already spread its closes over a window):
//   reconnect at once, after a jitter of at most RESTART_JITTER ms, with the backoff reset.

const V = 1;
const NAME = 'nudge-js/0.1';
const RESTART_JITTER = 250; // ms: close 1012 (protocol.md §WebSocket close codes)

/** Does `pattern` (with `*` / final `**` segments) match `topic`? protocol.md §Wildcard patterns */
export function matches(pattern, topic) {
  const p = pattern.split(':'), t = topic.split(':');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '**' && i === p.length - 1) return t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

/** The `exp` claim of a JWT in ms, or 0. Not verified: only to know when to refresh. */
function expOf(token) {
  try {
    const b = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(b + '==='.slice((b.length + 3) % 4))).exp * 1000 || 0;
  } catch (e) {
    return 0;
  }
}

/**
 * The waiting behind `seen()`, shared with the shared client (shared.js): wait(seqs, ms, has)
 * resolves true once heard(done) has settled every topic that has(topic, seq) did not, false
 * after ms. Not part of the API.
 */
export function seenWaits() {
  const waits = new Set();
  return {
    wait(seqs, ms, has) {
      const need = new Map(Object.entries(seqs).filter(([t, q]) => !has(t, q)));
      if (!need.size) return Promise.resolve(true);
      return new Promise((res) => {
        const w = { need, res: (v) => (clearTimeout(w.t), waits.delete(w), res(v)) };
        w.t = setTimeout(() => w.res(false), ms);
        waits.add(w);
      });
    },
    heard(done) {
      for (const w of waits) {
        for (const [t, q] of w.need) if (done(t, q)) w.need.delete(t);
        if (!w.need.size) w.res(true);
      }
    },
  };
}

/** A `store` over localStorage / sessionStorage (or anything with getItem/setItem). */
export function webStorage(storage, key = 'nudge') {
  return {
    load: () => JSON.parse(storage.getItem(key) || 'null'),
    save: (s) => storage.setItem(key, JSON.stringify(s)),
  };
}

export function createClient(opts) {
  const WS = opts.WebSocket || globalThis.WebSocket;
  if (!WS) throw new Error('nudge: no WebSocket: pass opts.WebSocket (e.g. the ws package in Node)');
  const fmt = opts.format === 'msgpack' ? 'msgpack' : 'json';
  const bmin = (opts.backoff && opts.backoff.min) || 500;
  const bmax = (opts.backoff && opts.backoff.max) || 30000;
  const pingMs = opts.pingInterval || 25000;
  const listeners = {};
  // name -> {fns, sent: sub sent on this connection, ok: subscribed on it, resumed: the sub
  // carried a position, known: subscribed on some connection}
  const subs = new Map();
  const unsubs = new Set(); // names to unsub on the current connection
  const stale = new Set(); // stored positions of another epoch, not subscribed yet
  const waits = seenWaits(); // seen() calls
  const heard = new Map(); // topic → seq of hints that came through a pattern since the last pong
  let pos = new Map(); // name -> seq (topic) or global position (pattern), in `epoch`
  let epoch = null;
  let ws = null; // the current socket, null when none
  let live = false;
  let want = true; // false after pause() / close()
  let closed = false;
  let attempt = 0;
  let timer = null; // reconnect, refresh or unauthorized retry
  let pinger = null, pongWait = null, pongCb = null;
  let token = null, badToken; // the token of this connection; the last refused one
  let reqId = 0, flushQueued = false, saveQueued = false, liveSince = 0;
  let codec = null; // {encode, decode} when msgpack
  let gen = 0; // connection attempts: a later one makes an earlier one's awaits moot
  const ready = Promise.resolve().then(() => opts.store && opts.store.load()).then((s) => {
    if (s && s.epoch && s.seqs) {
      epoch = s.epoch;
      for (const k in s.seqs) if (!pos.has(k)) pos.set(k, s.seqs[k]);
    }
  }, () => {});

  const c = {
    state: 'connecting',
    connId: null,
    epoch: null,
    on(ev, fn) {
      (listeners[ev] || (listeners[ev] = new Set())).add(fn);
      return () => listeners[ev].delete(fn);
    },
    subscribe(name, fn) {
      let s = subs.get(name);
      if (!s) {
        subs.set(name, (s = { fns: new Set(), sent: unsubs.delete(name), known: false }));
        queueFlush();
      }
      const entry = { fn };
      s.fns.add(entry);
      return () => {
        if (!s.fns.delete(entry) || s.fns.size) return;
        subs.delete(name);
        if (s.sent) unsubs.add(name);
        queueFlush();
      };
    },
    /** Positions now: {epoch, seqs}; what `store.save` gets. */
    positions() {
      const seqs = {};
      for (const [k, v] of pos) seqs[k] = v;
      return { epoch, seqs };
    },
    /**
     * Resolves true once this client has seen, for every topic of `seqs` ({topic: seq}, e.g. a
     * publish's ack handed back by the backend), that seq or a later one (a hint, a catch-up
     * hint or a reset of the topic), or false after `ms`: read your writes.
     */
    seen(seqs, ms = 10000) {
      return waits.wait(seqs, ms, (t, q) => pos.get(t) >= q);
    },
    /** Close the socket and keep every position (an app going to the background). */
    pause() {
      if (!want) return Promise.resolve();
      want = false;
      const done = () => {
        drop(1000);
        setState('offline');
        save();
      };
      // Patterns resume from the last pong's `g`: ask for a fresh one first (guarantees.md).
      if (!live || ![...subs.keys()].some(isPattern)) return Promise.resolve(done());
      return new Promise((res) => {
        const t = setTimeout(() => res(), 2000);
        pongCb = () => (clearTimeout(t), res());
        send({ type: 'ping' });
      }).then(done);
    },
    /** Connect again after pause() (or now, skipping a backoff or an unauthorized wait). */
    resume() {
      if (closed) return;
      want = true;
      attempt = 0;
      badToken = undefined;
      if (!ws) connect();
    },
    close() {
      if (closed) return;
      closed = true;
      want = false;
      if (net) net(rm);
      drop(1000);
      setState('offline');
      save();
    },
  };

  function emit(ev, a, b) {
    if (ev === 'hint' || ev === 'reset') waits.heard((t, q) => a.topic === t && (ev === 'reset' || a.seq >= q));
    if (listeners[ev]) for (const fn of [...listeners[ev]]) fn(a, b);
  }
  function setState(st) {
    const prev = c.state;
    if (st !== prev) {
      c.state = st;
      emit('state', st, prev);
    }
  }
  function isPattern(name) {
    return name.includes('*');
  }
  function send(m, noId) {
    if (!noId) m.id = ++reqId;
    if (ws && ws.readyState === 1) ws.send(codec ? codec.encode(m) : JSON.stringify(m));
  }
  function save() {
    if (opts.store) opts.store.save(c.positions());
  }
  function queueSave() {
    if (opts.store && !saveQueued) {
      saveQueued = true;
      setTimeout(() => ((saveQueued = false), save()), 100);
    }
  }
  function queueFlush() {
    if (!flushQueued) {
      flushQueued = true;
      Promise.resolve().then(flush);
    }
  }

  // Send the unsubs and subs the callbacks asked for since the last flush, 64 topics a message
  // (max_topics' default), exact topics first (guarantees.md §Client checklist).
  function flush() {
    flushQueued = false;
    if (!live) return;
    const gone = [...unsubs];
    unsubs.clear();
    for (const n of gone) pos.delete(n);
    for (let i = 0; i < gone.length; i += 64) send({ type: 'unsub', topics: gone.slice(i, i + 64) });
    const names = [...subs.keys()].filter((n) => !subs.get(n).sent);
    names.sort((a, b) => isPattern(a) - isPattern(b));
    for (let i = 0; i < names.length; i += 64) {
      const topics = names.slice(i, i + 64), seqs = {};
      let resumed = false;
      for (const n of topics) {
        const s = subs.get(n);
        s.sent = true;
        s.resumed = pos.has(n) && epoch !== null;
        if (s.resumed) (seqs[n] = pos.get(n)), (resumed = true);
      }
      send(resumed ? { type: 'sub', topics, resume: { epoch, seqs } } : { type: 'sub', topics });
    }
    if (gone.length) queueSave();
  }

  async function connect() {
    clearTimeout(timer);
    const my = ++gen;
    await ready;
    let tok = null;
    try {
      tok = opts.token ? await opts.token() : null;
      if (fmt === 'msgpack' && !codec) {
        const m = await import('@msgpack/msgpack');
        codec = { encode: m.encode, decode: (d) => m.decode(new Uint8Array(d)) };
      }
    } catch (e) {
      if (my !== gen) return;
      emit('error', { code: 0, msg: 'token provider or codec failed: ' + e });
      return retry();
    }
    if (!want || my !== gen) return;
    if (badToken !== undefined && tok === badToken) return retry('unauthorized');
    badToken = undefined;
    token = tok;
    setState(liveSince ? 'reconnecting' : 'connecting');
    const sock = (ws = new WS(opts.url, 'nudge.' + fmt + '.v1'));
    sock.binaryType = 'arraybuffer';
    const helloTimer = setTimeout(() => sock === ws && sock.close(), opts.connectTimeout || 10000);
    sock.onopen = () => {
      const h = { type: 'hello', v: V, client: opts.client || NAME };
      if (token) h.token = token;
      sock.send(codec ? codec.encode(h) : JSON.stringify(h));
    };
    sock.onmessage = (e) => {
      if (sock !== ws) return;
      let m;
      try {
        m = codec ? codec.decode(e.data) : JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (m.type === 'welcome') clearTimeout(helloTimer);
      onMessage(m);
    };
    sock.onerror = () => {};
    sock.onclose = (e) => {
      clearTimeout(helloTimer);
      if (sock === ws) lost(e.code);
    };
  }

  function onMessage(m) {
    const t = m.topic, s = t !== undefined && subs.get(t);
    switch (m.type) {
      case 'welcome': {
        live = true;
        liveSince = Date.now();
        c.connId = m.conn;
        c.epoch = m.epoch;
        for (const x of subs.values()) x.sent = x.ok = false;
        for (const n of unsubs) pos.delete(n); // left while disconnected
        unsubs.clear();
        const old = epoch;
        flush(); // resumes with the positions of `epoch`
        if (old !== m.epoch) {
          // Another epoch: the broker answers each resumed topic with a reset. Positions kept
          // from the old epoch would be wrong in this one, so forget them; a stored one not
          // subscribed yet gets its reset from the client when it is.
          for (const n of pos.keys()) if (!subs.has(n)) stale.add(n);
          pos = new Map();
          heard.clear();
          epoch = m.epoch;
        }
        if ([...subs.keys()].some(isPattern)) send({ type: 'ping' }); // fresh `g` after catch-up
        pinger = setInterval(ping, pingMs);
        scheduleRefresh();
        setState('live');
        break;
      }
      case 'subscribed':
        if (!s) break;
        if (!s.resumed && !pos.has(t)) {
          pos.set(t, m.seq);
          // Subscribed again without a position (lost with an epoch change): the changes
          // in between are unknown, so say so as a reset (guarantees.md §Client checklist).
          if (s.known || stale.delete(t)) {
            const r = { type: 'reset', topic: t, seq: m.seq, reason: s.known ? 'resubscribed' : 'epoch' };
            emit('reset', r);
            deliver(s, r);
          }
        }
        s.known = s.ok = true;
        s.tries = 0;
        queueSave();
        break;
      case 'hint': {
        // Heard through a pattern since the last pong: a resume from the pattern's position
        // (that pong's `g`) sends it again. Not new: drop it.
        if (!s && heard.get(t) >= m.seq) break;
        let any = false;
        if (s) pos.set(t, m.seq);
        else heard.set(t, m.seq);
        for (const [n, x] of subs) {
          if (n === t || (isPattern(n) && matches(n, t))) {
            if (!any) emit('hint', m), (any = true);
            deliver(x, m);
          }
        }
        queueSave();
        break;
      }
      case 'reset':
        if (!s) break;
        pos.set(t, m.seq);
        emit('reset', m);
        deliver(s, m);
        queueSave();
        break;
      case 'pong':
        clearTimeout(pongWait);
        pongWait = null;
        if (m.g !== undefined) {
          for (const [n, x] of subs) if (isPattern(n) && x.ok) pos.set(n, m.g);
          heard.clear(); // all older than `g`: a resume from it cannot repeat them
        }
        if (pongCb) pongCb(), (pongCb = null);
        queueSave();
        break;
      case 'ping':
        send(m.id === undefined ? { type: 'pong' } : { type: 'pong', id: m.id }, true);
        break;
      case 'refreshed':
        scheduleRefresh(m.exp * 1000);
        break;
      case 'unsubscribed':
        // After `refresh`: the new token no longer covers this subscription.
        if (s && m.id === refreshId) {
          s.sent = false;
          emit('error', { code: 17, topic: t, msg: 'no longer allowed by the refreshed token' });
        }
        break;
      case 'error':
        if (m.code === 16 && !live) {
          // Refused at hello: wait for a different token.
          emit('error', m);
          badToken = token;
          drop(1000);
          return retry('unauthorized');
        }
        if ((m.code === 19 || m.code === 20) && s) {
          // Rate or replay budget: subscribe (resume) again a second later (protocol.md §Limits),
          // then later and later while refused.
          s.sent = false;
          s.tries = (s.tries || 0) + 1;
          setTimeout(queueFlush, Math.min(30000, 500 * 2 ** s.tries) * (1 + Math.random()));
        }
        emit('error', m);
        if (s) deliver(s, m);
        break;
    }
  }

  function deliver(s, m) {
    for (const e of [...s.fns]) e.fn(m);
  }

  // Counted from the oldest unanswered ping: no pong for that long, the socket is dead.
  function ping() {
    send({ type: 'ping' });
    pongWait = pongWait || setTimeout(() => ws && ws.close(), Math.min(10000, pingMs));
  }

  // Refresh the token ~30 s or 10% of its lifetime (whichever is less) before `exp`; while
  // the provider still returns the current token, ask it again a quarter of the time left.
  let refreshId = -1;
  function scheduleRefresh(exp) {
    clearTimeout(timer);
    exp = exp || (token && expOf(token));
    if (!exp || !live || !opts.token) return;
    const left = exp - Date.now();
    const at = async () => {
      let t;
      try {
        t = await opts.token();
      } catch (e) {}
      if (!live) return;
      if (!t || t === token) return (timer = setTimeout(at, Math.max(1000, (exp - Date.now()) / 4)));
      token = t;
      send({ type: 'refresh', token: t });
      refreshId = reqId;
    };
    timer = setTimeout(at, Math.max(0, left - Math.min(30000, left / 10)));
  }

  function drop(code) {
    gen++;
    live = false;
    c.connId = null;
    clearInterval(pinger);
    clearTimeout(pongWait);
    clearTimeout(timer);
    pongWait = null;
    const s = ws;
    ws = null;
    if (s) {
      s.onclose = s.onmessage = null;
      try {
        s.close(code);
      } catch (e) {}
    }
  }

  function lost(code) {
    const wasLive = live;
    if (wasLive && Date.now() - liveSince > 10000) attempt = 0;
    drop(1000);
    save();
    if (!want) return;
    if (code === 4003 || code === 4010) return (badToken = token), retry('unauthorized');
    if (code === 4002 && wasLive) return setState('reconnecting'), connect(); // expired: a new token, at once
    if (code === 1012 && wasLive) {
      // Restart: the broker spread the closes; a failed attempt backs off from the start.
      attempt = 0;
      setState('reconnecting');
      timer = setTimeout(connect, Math.random() * RESTART_JITTER);
      return;
    }
    retry();
  }

  function retry(st) {
    if (!want) return;
    setState(st || 'reconnecting');
    const d = Math.random() * Math.min(bmax, bmin * 2 ** attempt++);
    timer = setTimeout(connect, d);
  }

  // Browsers: no reconnect attempts while the device says it is offline.
  const g = globalThis;
  const onOnline = () => want && !ws && ((attempt = 0), connect());
  const onOffline = () => want && (drop(1000), setState('offline'));
  const add = g.addEventListener, rm = g.removeEventListener;
  const net = add && rm && g.navigator && 'onLine' in g.navigator
    ? (f) => (f.call(g, 'online', onOnline), f.call(g, 'offline', onOffline))
    : null;
  if (net) net(add);

  Promise.resolve().then(connect);
  return c;
}
