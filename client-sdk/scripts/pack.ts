/**
 * `pnpm sdk:pack`: the SDK as a versioned tarball, client-sdk/dist-pack/keel-client-sdk-<version>.tgz,
 * for an app elsewhere on disk that has no registry to install from. `pnpm pack` runs `prepack`,
 * which builds dist/ first, so the tarball is what the sources (and the server's router) make now.
 * Prints the exact `pnpm add` to run in the app.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const destination = join(root, 'dist-pack');

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  devDependencies: Record<string, string>;
};
// pnpm's name for the tarball: the scope's @ dropped and its / made a dash.
const tarball = join(destination, `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`);

mkdirSync(destination, { recursive: true });
// A tarball of the same version from an earlier run would otherwise be reported as this one.
rmSync(tarball, { force: true });
// No npm_* variables of a parent `pnpm run`: they would make pnpm pack this as the root package.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
execFileSync('pnpm', ['pack', '--pack-destination', destination], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
const size = statSync(tarball, { throwIfNoEntry: false })?.size;
if (size === undefined) {
  process.stderr.write(`[client-sdk pack] pnpm pack did not write ${tarball}\n`);
  process.exit(1);
}

// The @trpc versions the SDK is built and tested with (the peer range allows any 11.x from 11.22.1).
const trpc = ['@trpc/client', '@trpc/server'].map((name) => `${name}@${manifest.devDependencies[name]}`).join(' ');
process.stdout.write(
  [
    `[client-sdk pack] ${manifest.name}@${manifest.version}: ${tarball} (${(size / 1024).toFixed(1)} KB)`,
    '',
    'In the app (any directory outside this repository), run:',
    '',
    `  pnpm add ${tarball} ${trpc}`,
    '',
    'npm and yarn take the same arguments (npm install ..., yarn add ...). After a router change, run',
    'pnpm sdk:pack again and the same pnpm add, or bump "version" in client-sdk/package.json first',
    'so the app can tell the two tarballs apart.',
    '',
  ].join('\n'),
);
