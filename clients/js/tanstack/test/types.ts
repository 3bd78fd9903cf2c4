// Type-checked (tsc --noEmit, `npm run types`), never run: the declarations fit typical use.
import { QueryClient, MutationObserver } from '@tanstack/query-core';
import { createClient } from '../../src/index.js';
import { connectQueryClient, invalidateOnError } from '../src/index.js';

const nudge = createClient({ url: 'wss://nudge.example.com/' });
const queryClient = new QueryClient();
const stop: () => void = connectQueryClient(nudge, queryClient, {
  routes: {
    'project:*': (id) => ['project', id],
    'user:*:inbox': (u) => ['inbox', u],
    'org:*:**': (org, rest) => ['org', org, { rest }],
    'feed:**': ['feed'],
  },
  debounceMs: 100,
  resetJitterMs: 2000,
  skipOwn: true,
  onOwn: (hint, key) => void [hint.seq, hint.data, key.length],
});
new MutationObserver(queryClient, {
  mutationFn: async (v: { id: string; title: string }) => v.title,
  onError: invalidateOnError(queryClient, (v: { id: string }) => ['project', v.id]),
});
new MutationObserver(queryClient, {
  mutationFn: async () => 1,
  onError: invalidateOnError(queryClient, ['feed']),
});
stop();

// The shims of the SWR and RTK Query recipes.
declare function mutate(filter: (key: unknown) => boolean): Promise<unknown[]>;
connectQueryClient(nudge, {
  invalidateQueries: ({ queryKey }) =>
    mutate((k) => Array.isArray(k) && queryKey.every((e, i) => k[i] === e)),
}, { routes: { 'project:*': (id) => ['project', id] } });
declare const store: { dispatch(action: unknown): unknown };
declare const api: { util: { invalidateTags(tags: (string | { type: string; id: string })[]): unknown } };
connectQueryClient(nudge, {
  invalidateQueries: ({ queryKey: [type, id] }) =>
    store.dispatch(api.util.invalidateTags([id === undefined ? String(type) : { type: String(type), id: String(id) }])),
}, { routes: { 'project:*': (id) => ['Project', id] } });
