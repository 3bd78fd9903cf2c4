// Bundle and minify the core (src/index.js, @msgpack/msgpack left out: it is loaded only for the
// msgpack subprotocol) and print its gzip size; exit 1 over the 6 KiB target (docs/clients.md).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const LIMIT = 6144;
const out = await build({
  entryPoints: [new URL('../src/index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  external: ['@msgpack/msgpack'],
  write: false,
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`size: core ${code.length} bytes minified, ${gz} bytes min+gzip (limit ${LIMIT})`);
if (gz > LIMIT) {
  console.error(`size: over the limit by ${gz - LIMIT} bytes`);
  process.exit(1);
}
