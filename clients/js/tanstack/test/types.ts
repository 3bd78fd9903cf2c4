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
