// Precompress the build (gzip and brotli, maximum quality) so the server sends the smaller
// copy the browser accepts. Deterministic: no timestamps, files in a fixed order.
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const dist = process.env.ORCA_DIST ?? new URL('../dist/', import.meta.url).pathname;
const compressible = /\.(js|css|html|svg|json|txt|webmanifest)$/;

function walk(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}

// Initial JavaScript: the scripts index.html loads (entry and preloads).
const index = readFileSync(join(dist, 'index.html'), 'utf8');
const initialFiles = new Set(
  [...index.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => join(dist, m[1])),
);
let initial = 0;
for (const file of walk(dist)) {
  if (!compressible.test(file)) continue;
  const body = readFileSync(file);
  const gz = gzipSync(body, { level: 9 });
  // Byte 9 of a gzip header names the OS: fix it so builds match across platforms.
  gz[9] = 3;
  writeFileSync(`${file}.gz`, gz);
  const br = brotliCompressSync(body, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
    },
  });
  writeFileSync(`${file}.br`, br);
  if (initialFiles.has(file)) initial += gz.length;
}
console.log(`initial JavaScript: ${(initial / 1024).toFixed(1)} KiB gzip`);
