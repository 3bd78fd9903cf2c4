// An in-process stand-in for the Web Locks API (navigator.locks), which Node 20 lacks: exclusive
// locks granted in request order, held until the callback's promise settles, a waiting request
// cancelled by its AbortSignal. Only what src/shared.js uses.
export function fakeLocks() {
  const queues = new Map(); // name -> requests; the first one holds the lock
  const abortError = () => Object.assign(new Error('aborted'), { name: 'AbortError' });
  function grant(name) {
    const q = queues.get(name);
    if (!q.length) return queues.delete(name);
    const w = q[0];
    Promise.resolve()
      .then(() => w.cb({ name, mode: 'exclusive' }))
      .then(w.res, w.rej)
      .finally(() => (q.shift(), grant(name)));
  }
  return {
    request(name, opts, cb) {
      if (typeof opts === 'function') (cb = opts), (opts = {});
      return new Promise((res, rej) => {
        if (opts.signal && opts.signal.aborted) return rej(abortError());
        if (!queues.has(name)) queues.set(name, []);
        const q = queues.get(name), w = { cb, res, rej };
        q.push(w);
        if (opts.signal) {
          opts.signal.addEventListener('abort', () => {
            const i = q.indexOf(w);
            if (i > 0) q.splice(i, 1), rej(abortError()); // a granted lock stays held, as in browsers
          });
        }
        if (q.length === 1) grant(name);
      });
    },
    /** Names held now (the test's view of navigator.locks.query()). */
    held: () => [...queues.keys()],
  };
}
