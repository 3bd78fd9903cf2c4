// Bundle and minify each entry (@msgpack/msgpack left out: it is loaded only for the msgpack
// subprotocol) and print its gzip size; exit 1 over its target (docs/clients.md). The core is
// src/index.js; the shared entry (one socket for all tabs) is measured with the core it imports.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const entries = [
  ['core', '../src/index.js', 6144],
  ['shared (core included)', '../src/shared.js', 8192],
];
let over = false;
for (const [name, file, limit] of entries) {
  const out = await build({
    entryPoints: [new URL(file, import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: 'esm',
    external: ['@msgpack/msgpack'],
    write: false,
  });
  const code = out.outputFiles[0].contents;
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`size: ${name} ${code.length} bytes minified, ${gz} bytes min+gzip (limit ${limit})`);
  if (gz > limit) {
    console.error(`size: ${name} over the limit by ${gz - limit} bytes`);
    over = true;
  }
}
if (over) process.exit(1);
