// wait: true, refusals, API keys (--pub-keys) and TLS (--tls-cert) against the real nudged.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NudgeError } from '../src/index.js';
import { broker, pub, sleep, tempDir, until } from './support.js';

const KEY = 'projects-key-0123456789abcdef';
function keysFile() {
  const f = join(tempDir(), 'pub-keys');
  writeFileSync(f, `app ${KEY} project:*\n`);
  return f;
}

/** A self-signed P-256 certificate for 127.0.0.1 and localhost: {cert, key} paths. */
function selfSigned() {
  const d = tempDir();
  execFileSync('openssl', ['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', join(d, 'key.pem'), '-out', join(d, 'cert.pem')], { stdio: 'ignore' });
  return { cert: join(d, 'cert.pem'), key: join(d, 'key.pem') };
}

test('a refusal answers null and counts; with wait it rejects with the broker code', { timeout: 20000 }, async () => {
  const b = await broker({ args: ['--pub-keys', keysFile()] });
  const nudge = pub(b.pub, { key: KEY });
  assert.deepEqual(await nudge.publish(['project:1']), { 'project:1': 1 });
  assert.equal(await nudge.publish(['user:1']), null);
  await assert.rejects(nudge.publish(['user:1'], null, { wait: true }), (e) => e instanceof NudgeError && e.code === 17);
  assert.deepEqual(await nudge.publish(['project:1'], null, { wait: true }), { 'project:1': 2 });
  const s = nudge.stats();
  assert.deepEqual([s.refused, s.acked, s.buffered, s.outages, s.reconnects], [2, 2, 0, 0, 0]);
  // Refusals are logged, at most a line per 10 s.
  assert.equal(nudge.lines.length, 1, nudge.lines.join('\n'));
  assert.match(nudge.lines[0], /^nudge: publish to user:1 refused: 17 /);
});

test('a publish over the broker max_frame is refused here, and the connection stays', { timeout: 20000 }, async () => {
  const b = await broker({ args: ['--max-frame', '256'] });
  const nudge = pub(b.pub);
  assert.deepEqual(await nudge.publish(['a']), { a: 1 });
  await assert.rejects(nudge.publish(['a'], 'x'.repeat(300), { wait: true }), (e) => e instanceof NudgeError && e.code === 4);
  assert.deepEqual(await nudge.publish(['a'], 'small'), { a: 2 });
  const s = nudge.stats();
  assert.deepEqual([s.refused, s.reconnects, s.outages, s.buffered], [1, 0, 0, 0]);
});

test('wait: true rejects when the broker is down or does not ack in time', { timeout: 20000 }, async () => {
  const first = await broker();
  await first.stop();
  const down = pub(first.pub);
  await assert.rejects(down.publish(['a'], null, { wait: true }), (e) => e instanceof NudgeError && e.code === 0 &&
    /unreachable/.test(e.message));
  const b = await broker();
  const nudge = pub(b.pub, { ackTimeoutMs: 300 });
  await nudge.publish(['a'], null, { wait: true });
  process.kill(b.pid, 'SIGSTOP');
  try {
    await assert.rejects(nudge.publish(['a'], null, { wait: true }), (e) => e instanceof NudgeError && e.code === 0 &&
      /no ack in 300 ms/.test(e.message));
  } finally {
    process.kill(b.pid, 'SIGCONT');
  }
});

test('an API key is sent in hello; without it the broker is unreachable, with it publishes go through', { timeout: 20000 }, async () => {
  const b = await broker({ args: ['--pub-keys', keysFile()] });
  const none = pub(b.pub, { key: null });
  assert.equal(await none.publish(['project:1']), null);
  await assert.rejects(none.publish(['project:1'], null, { wait: true }), NudgeError);
  assert.equal(none.lines.length, 1);
  assert.match(none.lines[0], /unreachable \(hello refused: 16 .*\); buffering/);
  process.env.NUDGE_API_KEY = KEY;
  try {
    const env = pub(b.pub);
    assert.deepEqual(await env.publish(['project:1']), { 'project:1': 1 });
  } finally {
    delete process.env.NUDGE_API_KEY;
  }
});

test('TLS: the broker certificate is verified against the CA and the name', { timeout: 20000 }, async () => {
  const c = selfSigned();
  const b = await broker({ args: ['--tls-cert', c.cert, '--tls-key', c.key, '--tls-listeners', 'pub'] });
  const ca = readFileSync(c.cert);
  const ok = pub(b.pub, { tls: { ca } });
  assert.deepEqual(await ok.publish(['a'], { x: 1 }), { a: 1 });
  const byName = pub(b.pub, { tls: { ca, servername: 'localhost' } });
  assert.deepEqual(await byName.publish(['a']), { a: 2 });

  const plain = pub(b.pub); // plain text on a TLS port
  const otherCa = pub(b.pub, { tls: { ca: readFileSync(selfSigned().cert) } });
  const systemCa = pub(b.pub, { tls: true });
  const wrongName = pub(b.pub, { tls: { ca, servername: 'nudge.example' } });
  for (const p of [plain, otherCa, systemCa, wrongName]) assert.equal(await p.publish(['a']), null);
  await until(() => [otherCa, systemCa, wrongName].every((p) => p.lines.length), 3000, 'the log lines');
  assert.match(otherCa.lines[0], /unreachable \(self[- ]signed certificate\)/);
  assert.match(systemCa.lines[0], /unreachable \(self[- ]signed certificate\)/);
  assert.match(wrongName.lines[0], /unreachable \(Hostname\/IP does not match certificate's altnames/);
  await sleep(200);
  assert.deepEqual(await ok.publish(['a'], null, { wait: true }), { a: 3 }, 'none of the refused ones got through');
});
