// The example app: a board of notes shared by everyone, and a private inbox per user, in React
// with TanStack Query. Wiring nudge into it is the block marked "nudge" (docs/clients.md
// §React): a client with a token provider, the adapter's routes, a provider, and useNudge in the
// components that show a topic's data. Open it in two windows: a note added in one appears in
// the other without a reload; a message sent to a user appears in that user's windows only.
import { QueryClient, QueryClientProvider, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient } from '../../src/index.js';
import { NudgeProvider, useNudge, useNudgeClient, useNudgeState } from '../../src/react.js';
import { connectQueryClient, invalidateOnError } from '../../tanstack/src/index.js';

const params = new URLSearchParams(location.search);
const me = params.get('user') || 'ann';
const get = (key) => fetch('/api/doc/' + encodeURIComponent(key)).then((r) => r.json()).then((j) => j.value || []);
const put = async (key, body) => {
  const r = await fetch('/api/doc/' + encodeURIComponent(key), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error((await r.json()).error);
  return r.json();
};

// ---- nudge ---------------------------------------------------------------------------------
const { url } = await fetch('/api/config').then((r) => r.json());
const nudge = createClient({
  url,
  token: () => fetch('/api/token?user=' + encodeURIComponent(me)).then((r) => r.json()).then((j) => j.token),
});
// Fresh until nudge says otherwise: no refetch on focus or reconnect (the client's catch-up
// covers what changed meanwhile), polling only while the socket is down (Board).
const queryClient = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
connectQueryClient(nudge, queryClient, {
  routes: { 'board:*': (id) => ['board', id], 'user:*:inbox': (u) => ['inbox', u] },
  subscribe: false, // components follow what they show, with useNudge
});
// ---------------------------------------------------------------------------------------------

function Board({ id }) {
  useNudge('board:' + id);
  const state = useNudgeState();
  const qc = useQueryClient();
  const key = ['board', id];
  // Poll only while the socket is down; live, nudge says when to refetch.
  const notes = useQuery({ queryKey: key, queryFn: () => get('board:' + id), refetchInterval: state === 'live' ? false : 10000 });
  const add = useMutation({
    mutationFn: (text) => put('board:' + id, { append: text, topics: ['board:' + id], origin: nudge.connId, fail: text === 'fail' }),
    onMutate: async (text) => {
      await qc.cancelQueries({ queryKey: key });
      qc.setQueryData(key, (old = []) => [...old, text]); // optimistic: the own hint skips the refetch
    },
    onError: invalidateOnError(qc, key), // rolled back to the server's truth
  });
  return (
    <section>
      <h2>Board {id}</h2>
      <ul id="notes">{(notes.data || []).map((n, i) => <li key={i}>{n}</li>)}</ul>
      <NoteForm onAdd={(t) => add.mutate(t)} placeholder="a note for everyone (type fail to see a rollback)" />
    </section>
  );
}

function Inbox() {
  useNudge('user:' + me + ':inbox');
  const inbox = useQuery({ queryKey: ['inbox', me], queryFn: () => get('inbox:' + me) });
  const [to, setTo] = useState(me === 'ann' ? 'bob' : 'ann');
  const send = (text) => put('inbox:' + to, { append: me + ': ' + text, topics: ['user:' + to + ':inbox'] });
  return (
    <section>
      <h2>{me}'s inbox</h2>
      <ul id="inbox">{(inbox.data || []).map((n, i) => <li key={i}>{n}</li>)}</ul>
      <label>to <input id="to" value={to} onChange={(e) => setTo(e.target.value)} /></label>
      <NoteForm onAdd={send} placeholder="a private message" id="dm" />
    </section>
  );
}

function NoteForm({ onAdd, placeholder, id = 'note' }) {
  const [text, setText] = useState('');
  const submit = (e) => {
    e.preventDefault();
    if (text) onAdd(text), setText('');
  };
  return (
    <form onSubmit={submit}>
      <input id={id} value={text} placeholder={placeholder} onChange={(e) => setText(e.target.value)} />
      <button>add</button>
    </form>
  );
}

function App() {
  const state = useNudgeState();
  const client = useNudgeClient();
  const [board, setBoard] = useState('main');
  return (
    <>
      <span className={'state ' + state} id="state" title={client.connId || ''}>{state}</span>
      <h1>nudge example</h1>
      <p>Signed in as <b>{me}</b> (<a href={'?user=' + (me === 'ann' ? 'bob' : 'ann')}>switch user</a>). Open this page in a second window.</p>
      <p>
        {['main', 'side'].map((b) => (
          <button key={b} id={'board-' + b} disabled={b === board} onClick={() => setBoard(b)}>board {b}</button>
        ))}
      </p>
      <Board id={board} key={board} />
      <Inbox />
    </>
  );
}

createRoot(document.getElementById('root')).render(
  <QueryClientProvider client={queryClient}>
    <NudgeProvider client={nudge}>
      <App />
    </NudgeProvider>
  </QueryClientProvider>,
);
