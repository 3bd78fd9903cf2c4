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

  const offs = Object.entries(routes).map(([pattern, to]) => {
    const r = compile(pattern, to);
    return nudge.subscribe(pattern, (m) => {
      if (m.type === 'hint') {
        const caps = captures(r.segs, m.topic);
        if (!caps) return;
        let key;
        try {
          key = r.keyOf(...caps);
        } catch (e) {
          // A route's bug: report it without breaking the client's delivery to other callbacks.
          return void setTimeout(() => {
            throw e;
          });
        }
        if (m.own && !(m.n > 1) && skipOwn) return onOwn && onOwn(m, key);
        soon(key);
      } else if (m.type === 'reset' && !resetting.has(pattern)) {
        resetting.add(pattern);
        const run = () => (resetting.delete(pattern), invalidate(r.whole));
        later(Math.random() * resetJitterMs, run);
      }
    });
  });

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
