// The social app of story (b), page side and its route tables, shared by story-social.test.js
// and hidden.test.js. `startApp` runs in a lab page (window.lab): what the app's own start-up
// code does, a nudge client, a QueryClient connected to it by a route table, and one active
// query per route whose queryFn GETs the backend's document. It records what the tests look
// at on `window.app`: hints (with the page's Date.now() at arrival and the page's visibility),
// resets, errors, states and fetches per query key (with their times).

/**
 * The routes of a page: [topic, query key, document key]. A user follows the public post 7,
 * the public feed and leaderboard, and four private topics of its own; a logged-out visitor
 * the feed and the leaderboard.
 */
export function routesFor(user) {
  const pub = [
    ['post:7', ['post', '7'], 'post:7'],
    ['feed:public', ['feed'], 'feed:public'],
    ['leaderboard', ['leaderboard'], 'leaderboard'],
  ];
  if (!user) return pub.slice(1);
  const mine = ['notifications', 'intros', 'dm', 'badges'].map((t) => [`user:${user}:${t}`, ['me', t], `user:${user}:${t}`]);
  return [...pub, ...mine];
}

/** The key of a route as the page's counters name it. */
export const keyName = (key) => JSON.stringify(key);

/**
 * Runs in the page. o: {user (null: a logged-out visitor), routes (routesFor), probes: topics
 * the page also tries to follow (another user's, or private ones for a visitor: refused),
 * clientOpts}. Resolves once live, every route and probe answered (subscribed or refused) and
 * every query fetched once.
 */
export async function startApp(o) {
  const { createClient, connectQueryClient, QueryClient, QueryObserver, api, tokenFor, config } = window.lab;
  const { url } = await config();
  const app = (window.app = { hints: [], resets: [], errors: [], states: [], fetches: {}, fetchLog: [], data: {}, visibility: [] });
  document.addEventListener('visibilitychange', () => app.visibility.push(document.visibilityState));
  const client = (app.client = createClient({ url, token: tokenFor(o.user), ...(o.clientOpts || {}) }));
  client.on('hint', (m) => app.hints.push({ topic: m.topic, n: m.n || 1, own: !!m.own, data: m.data, at: Date.now(), vis: document.visibilityState }));
  client.on('reset', (m) => app.resets.push({ topic: m.topic, reason: m.reason }));
  client.on('error', (e) => app.errors.push({ code: e.code, topic: e.topic }));
  client.on('state', (s) => app.states.push(s));
  // nudge says when data changed: nothing is stale by time, and TanStack's own refetch on
  // focus or reconnect has nothing to do (the catch-up hints say what changed meanwhile).
  const qc = (app.qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity, retry: false } } }));
  qc.mount();
  connectQueryClient(client, qc, { routes: Object.fromEntries(o.routes.map(([t, k]) => [t, k])), resetJitterMs: 0 });
  for (const probe of o.probes || []) client.subscribe(probe, () => {});
  for (const [, key, doc] of o.routes) {
    const name = JSON.stringify(key);
    app.fetches[name] = 0;
    const obs = new QueryObserver(qc, {
      queryKey: key,
      queryFn: async () => {
        app.fetches[name]++;
        app.fetchLog.push({ key: name, at: Date.now() });
        return (await api('/api/doc/' + encodeURIComponent(doc))).value;
      },
    });
    obs.subscribe((r) => r.status === 'success' && (app.data[name] = r.data));
  }
  /**
   * PUT a change the way this page's mutation does: with its connId as the origin. stamp: the
   * hint's data says when the page sent it (`sent`) and when the backend published it (`t`).
   */
  app.change = (doc, body) =>
    api('/api/doc/' + encodeURIComponent(doc), { ...body, origin: client.connId, ...(body.stamp ? { data: { sent: Date.now() } } : {}) });
  const topics = [...o.routes.map(([t]) => t), ...(o.probes || [])];
  const end = Date.now() + 15000;
  for (;;) {
    const seqs = client.positions().seqs;
    const answered = topics.every((t) => t in seqs || app.errors.some((e) => e.topic === t));
    const fetched = Object.values(app.fetches).every((n) => n > 0) && !qc.isFetching();
    if (client.state === 'live' && answered && fetched) return true;
    if (Date.now() > end) throw new Error(`app not ready in 15 s: ${client.state} ${JSON.stringify(seqs)} ${JSON.stringify(app.errors)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `startApp(o)` as an expression, for a raw CDP evaluate. */
export const startAppExpr = (o) => `(${startApp})(${JSON.stringify(o)})`;

/**
 * `user`'s app in a new tab of `chrome` (cdp.js launch()) on the lab page of `base`, then another
 * tab opened in front of it, which hides it. Resolves to {tab, cover} once the app's tab says
 * 'hidden' (and had its visibilitychange) and the cover tab 'visible'.
 */
export async function hiddenApp(chrome, base, user, clientOpts) {
  const tab = await chrome.newTab(base + '/lab');
  await tab.waitFor('window.lab !== undefined', 15000);
  await tab.evaluate(startAppExpr({ user, routes: routesFor(user), clientOpts }));
  const cover = await chrome.newTab(base + '/lab');
  await tab.waitFor("document.visibilityState === 'hidden' && app.visibility.includes('hidden')", 5000);
  await cover.waitFor("document.visibilityState === 'visible'", 5000);
  return { tab, cover };
}
