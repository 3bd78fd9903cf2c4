// Bundle and minify the adapter (src/index.js; it imports nothing: the core client and the
// QueryClient are passed in) and print its gzip size (docs/clients.md §TanStack Query).
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';

const out = await build({
  entryPoints: [new URL('../src/index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  write: false,
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`size: tanstack adapter ${code.length} bytes minified, ${gz} bytes min+gzip`);
