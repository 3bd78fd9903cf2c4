// Types of the nudge React bindings (src/react.js); usage: docs/clients.md §React.
import type { Client, Message, State } from './index.js';

/** Hands `client` to the hooks below it. Returns a React element. */
export function NudgeProvider(props: { client: Client; children?: unknown }): any;
/** The client of the nearest NudgeProvider (throws outside one). */
export function useNudgeClient(): Client;
/**
 * Follow a topic, pattern or list while the component is mounted (one broker subscription per
 * name however many components follow it); `onMessage` gets their hints, resets and errors.
 */
export function useNudge(topics: string | string[] | null | undefined, onMessage?: (m: Message) => void): void;
/** The connection state, re-rendering on change: e.g. poll only while it is not 'live'. */
export function useNudgeState(): State;
