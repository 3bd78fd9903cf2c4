// nudge: one WebSocket for all tabs of an origin (entry `@nudge/client/shared`; usage and limits:
// docs/clients.md §One socket for all tabs).
//
// Design:
// - A hub owns the socket: one core client (index.js) whose subscriptions are the union of the
//   tabs' ones (one core subscription per name, held while a tab follows it). The hub runs in a
//   SharedWorker (serveTabs) or, without one, in the tab holding the Web Lock
//   `nudge:<name>:leader`, which talks to the tabs over BroadcastChannel `nudge:<name>`.
// - A tab keeps its own callbacks and reference counts and tells the hub only the names it starts
//   or stops following; the hub forwards a hint to the tabs following a name that matches it, so
//   a tab sees what a createClient of its own would see.
// - The hub has no token provider: it asks a tab (5 s, then the next one).
// - Hand-over: the hub broadcasts its positions after every message of the socket; each tab keeps
//   them (and the seq of the exact-topic hints it gets). A new leader's core resumes from them, and
//   the broker's catch-up covers what happened while no tab held the socket: a duplicate is
//   possible (a position a little old), a loss is not (a position is never ahead of the hints sent).
// - A tab holds the Web Lock `nudge:<name>:tab:<id>` while it lives; the hub asks for that lock and
//   gets it when the tab is gone, closed or crashed: the only end a SharedWorker can see.
// Messages: tab -> hub carry `tab` (its id); hub -> tab carry `to` (ids) on a BroadcastChannel.
import { createClient, matches, seenWaits } from './index.js';

const TOKEN_WAIT = 5000;
const DATA_OPTS = ['url', 'format', 'backoff', 'pingInterval', 'connectTimeout', 'client'];
const isPattern = (n) => n.includes('*');
const follows = (n, topic) => n === topic || (isPattern(n) && matches(n, topic));

// The hub. post(msg, ids): send to these tabs, or to all when ids is null. env: {locks,
// WebSocket, gone(id), and in leader mode self: this tab's id (asked first for tokens) and
// load(): this tab's positions}.
function hub(post, env) {
  const tabs = new Map(); // id -> {subs: Set of names, paused}
  const names = new Map(); // name -> the core subscription's off()
  const asks = new Map(); // token request id -> {tab, done}
  const watch = new AbortController(); // pending tab-lock requests, cancelled by stop()
  let core = null, posTimer = null, paused = false, stopped = false, askId = 0;
  let sent = null; // the positions last sent to the tabs
  const send = (m, to) => stopped || (to && !to.length) || post(m, to || null);
  const holders = (topic) => [...tabs].filter(([, t]) => t.subs.has(topic)).map(([id]) => id);
  const snap = () => ({ t: 'st', state: core.state, connId: core.connId, epoch: core.epoch });

  // Coalesced per tick; a timeout, not a microtask, so that it runs after the core handled the
  // message that scheduled it (the tap's listener runs before the core's onmessage).
  function queuePos() {
    if (!posTimer) posTimer = setTimeout(sendPos, 0);
  }
  function sendPos() {
    posTimer = null;
    if (!core || core.epoch === null) return; // not connected yet: its positions are not loaded
    const p = core.positions();
    // A new epoch: the core dropped the old positions and waits for the broker's resets. Until
    // each followed name has its new position the tabs keep the old ones, so that a hub gone
    // meanwhile is followed by one that resumes from them and gets those resets too.
    const waiting = (n) => names.has(n) && !(n in p.seqs);
    if (p.epoch !== sent.epoch && Object.keys(sent.seqs).some(waiting)) return;
    send({ t: 'pos', p: (sent = p) });
  }

  // p: the positions of the first hello; a leader uses its own tab's instead (the oldest tab
  // waits first for the lock, so it has heard the last leader; a tab opened meanwhile has not).
  function start(o, p, tk) {
    if (env.load) p = env.load();
    const WS = env.WebSocket || globalThis.WebSocket;
    class Tap extends WS {
      constructor(u, proto) {
        super(u, proto);
        this.addEventListener('message', queuePos);
      }
    }
    sent = p && p.seqs ? p : { epoch: null, seqs: {} };
    const opts = { WebSocket: Tap, store: { load: () => p, save: queuePos } };
    for (const k of DATA_OPTS) if (o[k] !== undefined) opts[k] = o[k];
    if (tk) opts.token = askToken;
    core = createClient(opts);
    core.on('state', () => send(snap()));
    core.on('hint', (m) => {
      const to = [];
      for (const [id, t] of tabs) if ([...t.subs].some((n) => follows(n, m.topic))) to.push(id);
      // The broker marks `own` for the whole shared connection: with several tabs it cannot say
      // which one made the change, so none is told (each refetches: safe).
      if (m.own && tabs.size > 1) (m = { ...m }), delete m.own;
      send({ t: 'm', m }, to);
    });
    core.on('reset', (m) => send({ t: 'm', m }, holders(m.topic)));
    core.on('error', (m) => send({ t: 'm', m }, m.topic === undefined ? null : holders(m.topic)));
  }

  // The tab of this context first (leader mode), tabs that kept the hub waiting last.
  const rank = (id) => (id === env.self ? 0 : tabs.get(id).slow ? 2 : 1);
  function askToken() {
    const tried = new Set();
    return new Promise((res, rej) => {
      const next = () => {
        const id = [...tabs.keys()].filter((x) => !tried.has(x)).sort((a, b) => rank(a) - rank(b))[0];
        if (id === undefined) return rej(new Error('no tab answered the token request'));
        tried.add(id);
        const k = ++askId;
        const timer = setTimeout(() => (tabs.has(id) && (tabs.get(id).slow = true), done()), TOKEN_WAIT);
        const done = (a) => {
          clearTimeout(timer);
          asks.delete(k);
          if (a && tabs.has(id)) tabs.get(id).slow = false;
          if (!a) next();
          else if (a.err !== undefined) rej(new Error(a.err));
          else res(a.token);
        };
        asks.set(k, { tab: id, done });
        send({ t: 'tok', id: k }, [id]);
      };
      next();
    });
  }

  function follow(id, n) {
    tabs.get(id).subs.add(n);
    if (!names.has(n)) names.set(n, core.subscribe(n, () => {}));
  }
  function unfollow(id, n) {
    tabs.get(id).subs.delete(n);
    if (names.has(n) && !holders(n).length) names.get(n)(), names.delete(n);
  }

  function gone(id) {
    const t = tabs.get(id);
    if (!t) return;
    for (const n of t.subs) unfollow(id, n);
    tabs.delete(id);
    if (env.gone) env.gone(id);
    for (const a of [...asks.values()]) if (a.tab === id) a.done();
    if (!tabs.size && core) core.close(), (core = null), (paused = false);
    else if (core) checkPause();
  }

  // The shared socket is paused while every tab attached has paused (docs/clients.md).
  function checkPause() {
    const all = [...tabs.values()].every((t) => t.paused);
    if (all && !paused) return (paused = true), core.pause();
    if (!all && paused) (paused = false), core.resume();
    return Promise.resolve();
  }

  return {
    receive(m) {
      const id = m.tab;
      let t = tabs.get(id);
      if (m.t === 'hello') {
        if (!t) {
          tabs.set(id, (t = { subs: new Set(), paused: false }));
          const w = { signal: watch.signal };
          if (env.locks && m.lk) env.locks.request(m.lk, w, () => gone(id)).catch(() => {});
        }
        if (!core) start(m.o, m.p, m.tk);
        t.paused = !!m.pz;
        const now = new Set(m.subs);
        for (const n of [...t.subs]) if (!now.has(n)) unfollow(id, n);
        for (const n of now) follow(id, n);
        send(snap(), [id]);
        queuePos();
        return void checkPause();
      }
      if (!t) return m.t === 'bye' || send({ t: 'who' }, [id]); // a hub that does not know it yet
      if (m.t === 'subs') {
        for (const n of m.del) unfollow(id, n);
        for (const n of m.add) follow(id, n);
      } else if (m.t === 'tok') {
        const a = asks.get(m.id);
        if (a && a.tab === id) a.done(m);
      } else if (m.t === 'pause' || m.t === 'resume') {
        t.paused = m.t === 'pause';
        checkPause().then(() => send({ t: 'paused', id: m.id }, [id]));
        if (m.t === 'resume') core.resume();
      } else if (m.t === 'bye') gone(id);
    },
    /** Leave without a word to the tabs: the next hub takes over from their positions. */
    stop() {
      stopped = true;
      watch.abort();
      clearTimeout(posTimer);
      if (core) core.close();
    },
  };
}

/** The hub of a SharedWorker script: `serveTabs(self)` (src/worker.js does just that). */
export function serveTabs(scope, env = {}) {
  const ports = new Map(); // tab id -> MessagePort
  const nav = scope.navigator || globalThis.navigator;
  const h = hub(
    (m, to) => {
      for (const id of to || ports.keys()) if (ports.has(id)) ports.get(id).postMessage(m);
    },
    { locks: env.locks || (nav && nav.locks), WebSocket: env.WebSocket, gone: (id) => ports.delete(id) },
  );
  scope.addEventListener('connect', (e) => {
    const port = e.ports[0];
    port.onmessage = (ev) => {
      if (ev.data.t !== 'bye') ports.set(ev.data.tab, port);
      h.receive(ev.data);
    };
  });
}

export function createSharedClient(opts) {
  const g = globalThis;
  const locks = opts.locks || (g.navigator && g.navigator.locks);
  let mode = opts.mode || 'auto';
  if (mode === 'auto') {
    mode = opts.worker && g.SharedWorker ? 'worker' : g.BroadcastChannel && locks ? 'leader' : 'alone';
  }
  if (mode === 'alone') return Object.assign(createClient(opts), { mode });
  if (mode === 'leader' && !locks) throw new Error('nudge: leader mode needs Web Locks (navigator.locks)');

  const chan = 'nudge:' + (opts.name || 'nudge');
  const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const listeners = {};
  const subs = new Map(); // name -> Set of {fn}
  const told = new Set(); // names the hub knows this tab follows
  const pauses = new Map(); // pause request id -> resolve
  const waits = seenWaits(); // seen() calls
  let kept = { epoch: null, seqs: {} }; // the hub's last positions (what a new hub resumes from)
  let started = false, closed = false, paused = false, everLive = false;
  let flushQueued = false, saveQueued = false, reqId = 0;
  let unlockTab = () => {}, leader = null, leaderWait = null, port = null, bc = null, post;

  const c = {
    mode,
    state: 'connecting',
    connId: null,
    epoch: null,
    on(ev, fn) {
      (listeners[ev] || (listeners[ev] = new Set())).add(fn);
      return () => listeners[ev].delete(fn);
    },
    subscribe(name, fn) {
      let s = subs.get(name);
      if (!s) subs.set(name, (s = new Set()));
      const entry = { fn };
      s.add(entry);
      queueFlush();
      return () => {
        if (!s.delete(entry) || s.size) return;
        subs.delete(name);
        queueFlush();
      };
    },
    positions() {
      return { epoch: kept.epoch, seqs: { ...kept.seqs } };
    },
    /** As the core's: the hints and resets this tab got, and the positions the hub sent. */
    seen(seqs, ms = 10000) {
      return waits.wait(seqs, ms, (t, q) => kept.seqs[t] >= q);
    },
    /**
     * This tab no longer needs the socket; the hub closes it (keeping positions) once every tab
     * attached has paused, so a paused tab may still get hints while another tab keeps it open.
     */
    pause() {
      if (closed || paused) return Promise.resolve();
      paused = true;
      const k = ++reqId;
      return new Promise((res) => {
        pauses.set(k, res);
        setTimeout(res, 3000); // no hub answering (a hand-over): the next one hears `pz`
        send({ t: 'pause', id: k });
      });
    },
    resume() {
      if (closed) return;
      paused = false;
      send({ t: 'resume' });
    },
    /** Detach this tab; the socket stays for the other tabs (closed when the last one leaves). */
    close() {
      if (closed) return;
      closed = true;
      send({ t: 'bye' });
      unlockTab();
      stepDown();
      if (bc) bc.close();
      if (port) port.close();
      setState('offline');
      if (opts.store) opts.store.save(c.positions());
    },
  };

  function emit(ev, a, b) {
    if (ev === 'hint' || ev === 'reset') heard((t, q) => a.topic === t && (ev === 'reset' || a.seq >= q));
    if (listeners[ev]) for (const fn of [...listeners[ev]]) fn(a, b);
  }
  const heard = waits.heard; // settles the seen() calls: done(topic, seq) holds for their topic
  function setState(st) {
    const prev = c.state;
    if (st === 'connecting' && everLive) st = 'reconnecting'; // a new hub's first connection
    if (st === 'live') everLive = true;
    if (st !== prev) (c.state = st), emit('state', st, prev);
  }
  function send(m) {
    if (!closed || m.t === 'bye') post({ ...m, tab: id });
  }
  function deliver(name, m) {
    if (subs.has(name)) for (const e of [...subs.get(name)]) e.fn(m);
  }
  function queueFlush() {
    if (!flushQueued) (flushQueued = true), Promise.resolve().then(flush);
  }
  function flush() {
    flushQueued = false;
    if (!started || closed) return;
    const add = [...subs.keys()].filter((n) => !told.has(n));
    const del = [...told].filter((n) => !subs.has(n));
    for (const n of add) told.add(n);
    for (const n of del) told.delete(n);
    if (add.length || del.length) send({ t: 'subs', add, del });
  }
  function announce() {
    if (!started || closed) return;
    const o = {};
    for (const k of DATA_OPTS) if (opts[k] !== undefined) o[k] = opts[k];
    told.clear();
    for (const n of subs.keys()) told.add(n);
    const lk = chan + ':tab:' + id;
    send({ t: 'hello', o, p: c.positions(), subs: [...told], lk, tk: !!opts.token, pz: paused });
  }
  function queueSave() {
    if (opts.store && !saveQueued) {
      saveQueued = true;
      setTimeout(() => ((saveQueued = false), closed || opts.store.save(c.positions())), 100);
    }
  }

  function receive(m) {
    if (closed) return;
    if (m.t === 'who') announce();
    else if (m.t === 'st') (c.connId = m.connId), (c.epoch = m.epoch), setState(m.state);
    else if (m.t === 'pos') (kept = m.p), queueSave(), heard((t, q) => kept.seqs[t] >= q);
    else if (m.t === 'paused') pauses.has(m.id) && (pauses.get(m.id)(), pauses.delete(m.id));
    else if (m.t === 'tok') {
      Promise.resolve()
        .then(() => (opts.token ? opts.token() : null))
        .then(
          (token) => send({ t: 'tok', id: m.id, token }),
          (e) => send({ t: 'tok', id: m.id, err: String(e) }),
        );
    } else if (m.t === 'm') {
      const x = m.m, t = x.topic;
      if (x.type === 'hint') {
        // Kept until the next positions arrive: a hub gone in between leaves this the freshest.
        if (subs.has(t) && kept.epoch === c.epoch && !(kept.seqs[t] >= x.seq)) kept.seqs[t] = x.seq;
        let any = false;
        for (const n of subs.keys()) {
          if (!follows(n, t)) continue;
          if (!any) emit('hint', x), (any = true);
          deliver(n, x);
        }
      } else if (x.type === 'reset') {
        if (subs.has(t)) emit('reset', x), deliver(t, x);
      } else {
        emit('error', x);
        if (x.type === 'error') deliver(t, x); // as the core: local errors go to on('error') only
      }
    }
  }

  if (mode === 'worker') {
    const w = opts.worker();
    port = w.port;
    port.onmessage = (e) => receive(e.data);
    post = (m) => port.postMessage(m);
    const fail = () => emit('error', { code: 0, msg: 'the SharedWorker failed' });
    if (w.addEventListener) w.addEventListener('error', fail);
  } else {
    bc = new BroadcastChannel(chan);
    const mine = (m) => m.tab === undefined && (!m.to || m.to.includes(id)); // from the hub, to me
    bc.onmessage = (e) => mine(e.data) && receive(e.data);
    post = (m) => bc.postMessage(m);
  }

  // Hold this tab's lock before saying hello: the hub watches it to learn that the tab is gone.
  const held = !locks
    ? null
    : new Promise((res) => {
        locks.request(chan + ':tab:' + id, () => (res(), new Promise((r) => (unlockTab = r))));
      });
  Promise.all([opts.store && opts.store.load(), held])
    .catch(() => [])
    .then(([s]) => {
      if (s && s.epoch && s.seqs) kept = { epoch: s.epoch, seqs: { ...s.seqs } };
      started = true;
      announce();
      if (mode === 'leader') elect();
    });

  // The leader holds the lock for the tab's life; the next waiting tab gets it when it goes.
  function elect() {
    if (closed) return;
    const wait = (leaderWait = new AbortController());
    locks
      .request(chan + ':leader', { signal: wait.signal }, () => {
        if (closed || wait.signal.aborted) return;
        const hb = new BroadcastChannel(chan);
        const h = hub((m, to) => hb.postMessage(to ? { ...m, to } : m), {
          locks,
          WebSocket: opts.WebSocket,
          self: id,
          load: c.positions,
        });
        hb.onmessage = (e) => e.data.tab !== undefined && h.receive(e.data);
        return new Promise((release) => {
          leader = { stop: () => (h.stop(), hb.close()), release };
          hb.postMessage({ t: 'who' }); // every tab (this one too) says hello with its names
        });
      })
      .catch(() => {});
  }
  function stepDown() {
    if (leaderWait) leaderWait.abort();
    if (leader) leader.stop(), leader.release(), (leader = null);
  }

  // A page that stops running, frozen (Chrome freezes background tabs, always on Android, which
  // has no SharedWorker) or kept in the back-forward cache, must not own the socket: a leader
  // steps down and leaves the queue, so that a running tab owns it. A frozen tab keeps its names
  // (what is sent to it waits in its queue); a cached one leaves the hub. Back, it says hello
  // again (answering a new leader's `who`, queued meanwhile) and queues for the lock again.
  function back() {
    announce();
    if (mode === 'leader' && leaderWait && leaderWait.signal.aborted) elect();
  }
  if (g.addEventListener) {
    g.addEventListener('pagehide', (e) => (e.persisted ? (stepDown(), send({ t: 'bye' })) : c.close()));
    g.addEventListener('pageshow', (e) => e.persisted && !closed && back());
  }
  if (g.document) {
    g.document.addEventListener('freeze', stepDown);
    g.document.addEventListener('resume', () => started && !closed && back());
  }
  return c;
}
