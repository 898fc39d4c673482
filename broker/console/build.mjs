/**
 * The web console's bundle: broker/console/web/ → dist/console/, which the hub
 * serves at `/` and `/console/` (broker/http/console.ts). `npm run build`
 * (build.mjs) calls it, and so do the browser tests before they start
 * (test/e2e/console/), so a checkout's edits are what they test.
 *
 *   dist/console/index.html          names the hashed entry files
 *   dist/console/assets/NAME-HASH.*  scripts, styles and lazily loaded chunks
 *
 * Hashed names let the hub serve every asset as immutable and only
 * index.html uncached. Code splitting keeps what one view needs (xterm.js for
 * the terminal, uPlot for charts) out of the first page load.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { build } from 'esbuild';

const ENTRY = new URL('./web/main.tsx', import.meta.url).pathname;
/** Where index.html says the assets are: absolute, so the page works from `/` and from `/console/`. */
export const ASSET_PREFIX = '/console/assets/';

/** Builds into `outDir`; returns the files it wrote (relative to it). */
export async function buildConsole({ outDir = 'dist/console', minify = true } = {}) {
  const assets = join(outDir, 'assets');
  const result = await build({
    entryPoints: { main: ENTRY },
    outdir: assets,
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    loader: { '.woff2': 'file', '.svg': 'file' },
    minify,
    sourcemap: false,
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs);
  const script = outputs.find((path) => result.metafile.outputs[path].entryPoint !== undefined && path.endsWith('.js'));
  const style = outputs.find((path) => /[\\/]main-[^\\/]+\.css$/.test(path));
  if (!script) throw new Error('the console build wrote no entry script');
  await writeFile(join(outDir, 'index.html'), indexHtml(basename(script), style && basename(style)));
  // Earlier builds' hashed files are removed only once the new ones are written.
  const written = new Set(outputs.map((path) => relative(assets, path)));
  for (const name of await readdir(assets)) if (!written.has(name)) await rm(join(assets, name), { force: true });
  return ['index.html', ...[...written].map((name) => `assets/${name}`)];
}

function indexHtml(script, style) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Flotilla</title>
<link rel="icon" href="data:,">
${style ? `<link rel="stylesheet" href="${ASSET_PREFIX}${style}">\n` : ''}<script type="module" src="${ASSET_PREFIX}${script}"></script>
</head>
<body>
<div id="app"><noscript>The Flotilla console needs JavaScript.</noscript></div>
</body>
</html>
`;
}
