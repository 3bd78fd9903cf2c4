// React bindings of the nudge client (docs/clients.md §React): a provider that hands the client
// to components, a hook that subscribes topics for as long as a component is mounted, and a hook
// for the connection state (to poll only while the socket is down). The client's reference
// counting makes two mounted components on one topic one broker subscription, and the last
// unmount one `unsub`.
import { createContext, createElement, useContext, useEffect, useRef, useSyncExternalStore } from 'react';

const Ctx = createContext(null);

/** <NudgeProvider client={nudge}>…</NudgeProvider> */
export function NudgeProvider({ client, children }) {
  return createElement(Ctx.Provider, { value: client }, children);
}

/** The client of the nearest NudgeProvider. */
export function useNudgeClient() {
  const c = useContext(Ctx);
  if (!c) throw new Error('nudge: useNudge outside <NudgeProvider client={…}>');
  return c;
}

/**
 * Follow `topics` (a topic, a pattern or a list) while the component is mounted; `onMessage`
 * (optional, the latest one is called) gets their hints, resets and errors. With
 * connectQueryClient(…, {subscribe: false}) the routes turn these hints into invalidations.
 */
export function useNudge(topics, onMessage) {
  const client = useNudgeClient();
  const cb = useRef(onMessage);
  cb.current = onMessage;
  const names = [].concat(topics || []).join('\n'); // a stable dependency for a fresh array
  useEffect(() => {
    if (!names) return undefined;
    const offs = names.split('\n').map((n) => client.subscribe(n, (m) => cb.current && cb.current(m)));
    return () => offs.forEach((off) => off());
  }, [client, names]);
}

/** The connection state ('connecting', 'live', 'reconnecting', 'offline', 'unauthorized'). */
export function useNudgeState() {
  const client = useNudgeClient();
  return useSyncExternalStore(
    (fn) => client.on('state', fn),
    () => client.state,
  );
}
