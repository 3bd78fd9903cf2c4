// The browser stories' page (lab.html): the real client, the TanStack adapter and query-core
// bundled for the browser and put on `window.lab`, for tests to drive with page.evaluate. The
// helpers are what an app's own code does: fetch a token, read and change the backend's data.
import { MutationObserver, QueryClient, QueryObserver } from '@tanstack/query-core';
import { createClient, matches, webStorage } from '../../src/index.js';
import { connectQueryClient, invalidateOnError } from '../../tanstack/src/index.js';
import { createSharedClient } from '../../src/shared.js';

async function api(path, init) {
  const r = await fetch(path, init && { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(init) });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.status);
  return j;
}

window.lab = {
  createClient,
  createSharedClient,
  matches,
  webStorage,
  connectQueryClient,
  invalidateOnError,
  QueryClient,
  QueryObserver,
  MutationObserver,
  /** GET (no body) or PUT (body) an /api path, resolving to its JSON. */
  api,
  /** A token provider for `user` (null: anonymous). */
  tokenFor: (user) => async () => (await api('/api/token' + (user ? '?user=' + encodeURIComponent(user) : ''))).token,
  /** The broker URL the backend tells pages. */
  config: () => api('/api/config'),
};

/**
 * An app in this page, as a story needs it: a client for `user` (null: logged out; `topics`:
 * the token's group topics; `follow`: topics subscribed as components would, the routes then only
 * mapping), a QueryClient wired with connectQueryClient(routes, adapter) (a
 * route's key may hold '$1'…'$9' for the pattern's captures), and
 * one active query per entry of `queries` ({name: [queryKey, docKey]}) whose queryFn GETs the
 * document. Everything a test checks is on the returned object (window.app): `data[name]`,
 * `fetches[name]`, `hints`, `state`. `change(docKey, body, name)` is a mutation as an app writes
 * it: optimistic (body.value into query `name`), then PUT with this connection as the origin,
 * rolled back to the server's truth by invalidateOnError when the backend refuses it.
 */
window.lab.start = function start({ user, topics, routes, queries, adapter, client, follow }) {
  // Routes cross from the test as data: '$1', '$2' in a key stand for the pattern's captures.
  const fill = (key) => (...caps) => key.map((e) => (/^\$\d$/.test(e) ? caps[e[1] - 1] : e));
  routes = Object.fromEntries(Object.entries(routes).map(([p, k]) => [p, fill(k)]));
  const q = topics ? '&topics=' + encodeURIComponent(topics.join(',')) : '';
  const token = async () => (user ? (await api('/api/token?user=' + encodeURIComponent(user) + q)).token : null);
  const app = { data: {}, seen: {}, fetches: {}, hints: [], resets: [], errors: [], states: [] };
  app.ready = (async () => {
    const { url } = await api('/api/config');
    const c = (app.client = createClient({ url, token, backoff: { min: 20, max: 300 }, ...client }));
    c.on('hint', (h) => app.hints.push({ ...h, at: Date.now() }));
    c.on('reset', (r) => app.resets.push(r));
    c.on('error', (e) => app.errors.push(e));
    c.on('state', (s) => ((app.state = s), app.states.push(s)));
    app.state = c.state;
    const qc = (app.qc = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: Infinity } } }));
    // follow: the topics the app's components follow (useNudge); the routes then only map.
    app.stop = connectQueryClient(c, qc, { routes, resetJitterMs: 0, subscribe: !follow, ...adapter });
    for (const t of follow || []) c.subscribe(t, () => {});
    app.keys = {};
    for (const [name, [queryKey, doc]] of Object.entries(queries || {})) {
      app.keys[name] = queryKey;
      app.fetches[name] = 0;
      app.seen[name] = []; // every value the query showed, in order
      const queryFn = async () => {
        app.fetches[name]++;
        return (await api('/api/doc/' + encodeURIComponent(doc))).value;
      };
      new QueryObserver(qc, { queryKey, queryFn }).subscribe((r) => {
        if (r.data !== undefined && r.data !== app.data[name]) app.seen[name].push((app.data[name] = r.data));
      });
    }
  })();
  app.change = async (doc, body, name) => {
    const key = app.keys[name];
    const m = new MutationObserver(app.qc, {
      mutationFn: (b) => api('/api/doc/' + encodeURIComponent(doc), { origin: app.client.connId, ...b }),
      onMutate: async (b) => {
        if (!key) return;
        await app.qc.cancelQueries({ queryKey: key });
        app.qc.setQueryData(key, b.value);
      },
      onError: key ? invalidateOnError(app.qc, key) : undefined,
    });
    return m.mutate(body).then((r) => r.seqs, (e) => ({ error: String(e.message || e) }));
  };
  window.app = app;
  return app.ready;
};
