// Bundle the UI into the Python package (src/chaintrace/api/static): app.js (with Cytoscape.js), app.css,
// index.html. Deterministic output, committed; `.ci/run` rebuilds it with `npm ci && npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const out = new URL('../src/chaintrace/api/static/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ['src/main.js'], bundle: true, minify: true, format: 'esm', target: 'es2020',
  outfile: out + 'app.js', legalComments: 'eof', logLevel: 'info',
});
copyFileSync('src/app.css', out + 'app.css');
copyFileSync('index.html', out + 'index.html');
