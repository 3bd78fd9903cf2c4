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
