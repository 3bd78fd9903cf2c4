// nudge → TanStack Query: hints invalidate query keys (docs/clients.md §TanStack Query).
// Design:
// - A route table maps topic patterns (nudge wildcards: `*` one segment, final `**` the rest)
//   to query keys or to functions of the captures; each pattern is one subscription of the core
//   client (shared with any other subscriber of the same name by its reference count).
// - invalidateQueries cancels and restarts an in-flight fetch, so hints are debounced per key:
//   a key waits until no hint came for it for debounceMs (at most 4 × debounceMs in all). The
//   catch-up hints of a resume arrive together and so invalidate each key once.
// - A reset covers the whole route: its key with no capture in it (the elements before the
//   first one that depends on a capture), invalidated after a uniform random delay in
//   [0, resetJitterMs], so that many clients reset at once (an epoch change) spread their
//   refetches.
// - A hint that says `own` (this tab's change, published with its connId as origin) changes
//   nothing by default: the tab already applied it optimistically. It goes to onOwn. A hint
//   with n > 1 may include other changes and always invalidates.

const HOLE = '\ue000nudge-capture\ue000'; // no JSON escape: found in JSON.stringify(key)

function compile(pattern, to) {
  const segs = pattern.split(':');
  const keyOf = typeof to === 'function' ? to : () => to;
  const n = segs.filter((s) => s === '*' || s === '**').length;
  let whole = [];
  try {
    const k = keyOf(...Array(n).fill(HOLE));
    const i = k.findIndex((e) => JSON.stringify(e).includes(HOLE));
    whole = i < 0 ? k : k.slice(0, i);
  } catch (e) {}
  return { segs, keyOf, whole };
}

/** The captures of `topic` under the pattern's segments (`**`: the rest, joined), or null. */
function captures(segs, topic) {
  const t = topic.split(':');
  const caps = [];
  for (let i = 0; i < segs.length; i++) {
    if (segs[i] === '**' && i === segs.length - 1) {
      if (t.length <= i) return null;
      caps.push(t.slice(i).join(':'));
      return caps;
    }
    if (i >= t.length) return null;
    if (segs[i] === '*') caps.push(t[i]);
    else if (segs[i] !== t[i]) return null;
  }
  return t.length === segs.length ? caps : null;
}

export function connectQueryClient(nudge, queryClient, opts) {
  const { routes, debounceMs = 50, resetJitterMs = 5000, skipOwn = true, onOwn } = opts;
  const timers = new Set();
  const pending = new Map(); // key hash → {timer, first}
  const resetting = new Set();
  let stopped = false;
  const later = (ms, f) => {
    const t = setTimeout(() => (timers.delete(t), stopped || f()), ms);
    timers.add(t);
    return t;
  };
  // A refetch's failure is the query's (TanStack keeps it in the query's state); a shim's
  // rejection must not become an unhandled one.
  const invalidate = (queryKey) =>
    Promise.resolve(queryClient.invalidateQueries({ queryKey })).catch(() => {});

  function soon(key) {
    const h = JSON.stringify(key);
    const now = Date.now();
    let p = pending.get(h);
    if (p) clearTimeout(p.timer), timers.delete(p.timer);
    else pending.set(h, (p = { first: now }));
    const wait = Math.max(0, Math.min(debounceMs, p.first + 4 * debounceMs - now));
    p.timer = later(wait, () => (pending.delete(h), invalidate(key)));
  }

  function hint(r, m) {
    const caps = captures(r.segs, m.topic);
    if (!caps) return false;
    let key;
    try {
      key = r.keyOf(...caps);
    } catch (e) {
      // A route's bug: report it without breaking the client's delivery to other callbacks.
      setTimeout(() => {
        throw e;
      });
      return true;
    }
    if (m.own && !(m.n > 1) && skipOwn) onOwn && onOwn(m, key);
    else soon(key);
    return true;
  }
  // A reset of the route's own pattern covers all of it; of one topic, that topic's key.
  function reset(r, name, m) {
    const caps = name === m.topic && captures(r.segs, m.topic);
    if (caps && name !== r.pattern) {
      try {
        return void soon(r.keyOf(...caps));
      } catch (e) {}
    }
    if (resetting.has(name)) return;
    resetting.add(name);
    later(Math.random() * resetJitterMs, () => (resetting.delete(name), invalidate(r.whole)));
  }

  const table = Object.entries(routes).map(([pattern, to]) => ({ pattern, ...compile(pattern, to) }));
  // subscribe: false: the routes only map; what is followed comes from elsewhere (useNudge,
  // client.subscribe), and the first route that matches a hint's topic takes it.
  const offs = opts.subscribe === false
    ? [
        nudge.on('hint', (m) => table.some((r) => hint(r, m))),
        nudge.on('reset', (m) => {
          const r = table.find((x) => x.pattern === m.topic || captures(x.segs, m.topic));
          if (r) reset(r, m.topic, m);
        }),
      ]
    : table.map((r) =>
        nudge.subscribe(r.pattern, (m) => {
          if (m.type === 'hint') hint(r, m);
          else if (m.type === 'reset') reset(r, r.pattern, m);
        }),
      );

  return () => {
    stopped = true;
    for (const off of offs) off();
    for (const t of timers) clearTimeout(t);
    timers.clear();
    pending.clear();
    resetting.clear();
  };
}

/**
 * For a mutation's onError: invalidate `key` (or `key(variables)`) so that the rolled-back
 * optimistic update shows the server's truth (the failed change published no hint).
 */
export function invalidateOnError(queryClient, key) {
  return (error, variables) =>
    queryClient.invalidateQueries({ queryKey: typeof key === 'function' ? key(variables) : key });
}
