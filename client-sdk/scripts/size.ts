/**
 * What the SDK costs a browser app: src/index.ts bundled with everything it imports (@trpc/client,
 * @trpc/server's client parts, superjson), minified and gzipped, as an app's bundler would ship it.
 * Prints the size by package and fails above the budget. `--json` prints the numbers only.
 * The subscription transport (`@keel/client-sdk/live`) is measured apart, as what it adds to an app
 * that imports both entries: reported, outside the budget (an app without live updates never pays it).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const BUDGET_BYTES = 20 * 1024;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** An app importing both entries, bundled the same way: its size minus the SDK's alone is the live transport's cost. */
const withLive = await build({
  stdin: {
    contents: "export * from './src/index.ts'; export * from './src/live.ts';",
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  legalComments: 'none',
  logLevel: 'error',
});

const result = await build({
  entryPoints: [join(root, 'src/index.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  metafile: true,
  legalComments: 'none',
  logLevel: 'error',
});

const output = result.outputFiles[0];
if (!output) throw new Error('esbuild produced no output');
const minified = output.contents.byteLength;
const gzipped = gzipSync(output.contents, { level: 9 }).byteLength;
const liveOutput = withLive.outputFiles[0];
if (!liveOutput) throw new Error('esbuild produced no output for the live entry');
const liveGzipped = gzipSync(liveOutput.contents, { level: 9 }).byteLength - gzipped;
const liveMinified = liveOutput.contents.byteLength - minified;

/** Minified bytes by package, from esbuild's metafile. */
const byPackage = new Map<string, number>();
for (const meta of Object.values(result.metafile.outputs)) {
  for (const [file, { bytesInOutput }] of Object.entries(meta.inputs)) {
    const match = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(file);
    const name = match?.[1] ?? '@keel/client-sdk';
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
if (process.argv.includes('--json')) {
  process.stdout.write(
    `${JSON.stringify({ minified, gzipped, budget: BUDGET_BYTES, byPackage: Object.fromEntries(byPackage), live: { minified: liveMinified, gzipped: liveGzipped } })}\n`,
  );
} else {
  const lines = [...byPackage].sort((a, b) => b[1] - a[1]).map(([name, bytes]) => `  ${name.padEnd(20)} ${kb(bytes).padStart(9)} minified`);
  process.stdout.write(
    [
      '@keel/client-sdk with its dependencies, bundled for the browser (esbuild, ES2022):',
      ...lines,
      `  ${'total'.padEnd(20)} ${kb(minified).padStart(9)} minified, ${kb(gzipped)} minified+gzipped (budget ${kb(BUDGET_BYTES)})`,
      `  ${'+ @keel/client-sdk/live'.padEnd(20)} ${kb(liveMinified).padStart(9)} minified, ${kb(liveGzipped)} minified+gzipped more (subscriptions; outside the budget)`,
      '',
    ].join('\n'),
  );
}
if (gzipped > BUDGET_BYTES) {
  process.stderr.write(`the SDK is ${kb(gzipped)} minified+gzipped, over the ${kb(BUDGET_BYTES)} budget\n`);
  process.exit(1);
}
