// Types of the nudge TanStack Query adapter (src/index.js).
// Usage: docs/clients.md §TanStack Query.
import type { QueryKey } from '@tanstack/query-core';
import type { Client, Hint } from '../../src/index.js';

/**
 * Where a topic pattern's hints go: a query key, or a function of the pattern's captures (one
 * string per `*`, then the rest of the topic for a final `**`) returning one. Invalidation is
 * by prefix: `['project', id]` also refetches `['project', id, 'tasks']`.
 */
export type Route = QueryKey | ((...captures: string[]) => QueryKey);

/**
 * What the adapter calls: a TanStack QueryClient, or a shim that maps the key to another cache
 * (SWR's `mutate`, RTK Query's `invalidateTags`: docs/clients.md §TanStack Query).
 */
export interface QueryClientLike {
  invalidateQueries(filters: { queryKey: QueryKey }): unknown;
}

export interface ConnectOptions {
  /**
   * Topic or pattern → query key, e.g. `{ 'project:*': (id) => ['project', id],
   * 'user:*:inbox': (u) => ['inbox', u], 'feed:**': ['feed'] }`. Each entry is one subscription.
   */
  routes: Record<string, Route>;
  /**
   * false: do not subscribe the routes; they only map the hints and resets of whatever the app
   * follows (`useNudge` in components, `client.subscribe`), the first matching route taking each.
   * A reset of one topic then invalidates that topic's key. Default true.
   */
  subscribe?: boolean;
  /**
   * Hints for one key that come less than this apart invalidate once (at most 4× this after the
   * first). Default 50 ms.
   */
  debounceMs?: number;
  /**
   * A reset invalidates the route's key up to its first capture (`project:*` → `['project']`)
   * after a random delay in [0, resetJitterMs], so that clients reset together refetch apart.
   * Default 5000 ms.
   */
  resetJitterMs?: number;
  /** Skip the refetch for hints of this tab's own changes (`hint.own`, n = 1). Default true. */
  skipOwn?: boolean;
  /** Called with each skipped own hint and its key (e.g. to apply `hint.data`). */
  onOwn?: (hint: Hint, queryKey: QueryKey) => void;
}

/**
 * Subscribe the routes through `nudge` and invalidate `queryClient`'s queries on their hints and
 * resets. Returns a function that unsubscribes them and drops pending invalidations.
 */
export function connectQueryClient(
  nudge: Client,
  queryClient: QueryClientLike,
  opts: ConnectOptions,
): () => void;

/**
 * A mutation `onError` that invalidates `key` (or `key(variables)`), so a rolled-back
 * optimistic update shows the server's truth.
 */
export function invalidateOnError<V = unknown>(
  queryClient: QueryClientLike,
  key: QueryKey | ((variables: V) => QueryKey),
): (error: unknown, variables: V, ...rest: unknown[]) => unknown;
