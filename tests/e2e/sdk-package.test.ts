/**
 * The SDK as it is published: `pnpm sdk:pack` builds the tarball and prints the `pnpm add` an app
 * runs; a separate consumer project (outside the workspace) runs exactly that command, which
 * installs only that tarball, its dependencies and its peers, from the pnpm store (the registry is
 * asked only for metadata the store lacks, as on a fresh machine). The repository's tsc
 * type-checks two consumers: an ES module app (tests/e2e/fixtures/consumer) and a CommonJS one
 * (tests/e2e/fixtures/consumer-cjs, also with the older `module: commonjs` resolution); both then
 * run with Node against a live server, each loading its own build (dist/esm, dist/cjs). The
 * tarball's declarations must mention nothing of the server and its JavaScript must contain none
 * of it; the bundle must fit its size budget.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/database.js';
import { startTestServer } from '../support/http.js';
import { REPO_ROOT } from '../support/process.js';

const run = promisify(execFile);
const SDK_DIR = join(REPO_ROOT, 'client-sdk');
const FIXTURE_DIR = join(REPO_ROOT, 'tests/e2e/fixtures/consumer');
const CJS_FIXTURE_DIR = join(REPO_ROOT, 'tests/e2e/fixtures/consumer-cjs');
const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
const TSX = join(REPO_ROOT, 'node_modules/tsx/dist/cli.mjs');
const STEP_TIMEOUT_MS = 180_000;

/** The environment of a command run outside the workspace: without the npm_* variables of a parent `pnpm run`. */
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));

async function sh(command: string, args: string[], cwd: string) {
  try {
    return await run(command, args, { cwd, env: cleanEnv, timeout: STEP_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`);
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** Module specifiers of `import ... from '...'`, `export ... from '...'`, `import('...')` and `require('...')`. */
function importsOf(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1] ?? '');
}

const rootManifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const sdkManifest = JSON.parse(readFileSync(join(SDK_DIR, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};

const db = await useTestDatabase();
const server = await startTestServer(db.deps());

const work = mkdtempSync(join(tmpdir(), 'keel-sdk-package-'));
const unpacked = join(work, 'unpacked');
const consumer = join(work, 'consumer');
const cjsConsumer = join(consumer, 'cjs');
let tarball = '';
let addCommand: string[] = [];
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(async () => {
  // `pnpm sdk:pack`: `prepack` builds dist/ first, so the tarball is what the sources make now.
  const { stdout } = await sh(process.execPath, [TSX, join(SDK_DIR, 'scripts/pack.ts')], SDK_DIR);
  const printed = /^ {2}(pnpm add .+)$/m.exec(stdout)?.[1];
  if (!printed) throw new Error(`pnpm sdk:pack printed no pnpm add command:\n${stdout}`);
  addCommand = printed.split(' ');
  tarball = addCommand[2] ?? '';
  mkdirSync(unpacked);
  await sh('tar', ['-xzf', tarball, '-C', unpacked], work);

  mkdirSync(join(consumer, 'src'), { recursive: true });
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify(
      {
        name: 'keel-sdk-consumer',
        private: true,
        type: 'module',
        // Node's types for `process`; the repository's TypeScript, so peers resolve to the version that checks it.
        devDependencies: {
          '@types/node': rootManifest.devDependencies['@types/node'],
          typescript: rootManifest.devDependencies.typescript,
        },
      },
      null,
      2,
    ),
  );
  cpSync(join(FIXTURE_DIR, 'tsconfig.json'), join(consumer, 'tsconfig.json'));
  cpSync(join(FIXTURE_DIR, 'main.ts.txt'), join(consumer, 'src/main.ts'));
  // A CommonJS app beside it, sharing its node_modules: a package.json without "type", as `pnpm init` writes.
  mkdirSync(join(cjsConsumer, 'src'), { recursive: true });
  writeFileSync(
    join(cjsConsumer, 'package.json'),
    JSON.stringify({ name: 'keel-sdk-cjs-consumer', version: '1.0.0', private: true }, null, 2),
  );
  for (const file of ['tsconfig.json', 'tsconfig.node10.json']) cpSync(join(CJS_FIXTURE_DIR, file), join(cjsConsumer, file));
  cpSync(join(CJS_FIXTURE_DIR, 'main.ts.txt'), join(cjsConsumer, 'src/main.ts'));
  mkdirSync(join(cjsConsumer, 'node10'));
  cpSync(join(CJS_FIXTURE_DIR, 'named-imports.ts.txt'), join(cjsConsumer, 'node10/named-imports.ts'));

  // Exactly what `pnpm sdk:pack` told the app to run (offline-first, as the rest of this test).
  await sh('pnpm', [...addCommand.slice(1), '--prefer-offline', '--config.confirmModulesPurge=false'], consumer);
}, STEP_TIMEOUT_MS * 3);

describe('the packed @keel/client-sdk', () => {
  it('is written by pnpm sdk:pack as client-sdk/dist-pack/keel-client-sdk-<version>.tgz, with the pnpm add that installs it and its peers', () => {
    expect(tarball).toBe(join(SDK_DIR, 'dist-pack', `keel-client-sdk-${sdkManifest.version}.tgz`));
    expect(addCommand).toEqual([
      'pnpm',
      'add',
      tarball,
      `@trpc/client@${rootManifest.devDependencies['@trpc/client']}`,
      `@trpc/server@${rootManifest.devDependencies['@trpc/server']}`,
    ]);
  });

  it("ships dist/ (ESM and CommonJS), README and manifest; needs superjson and, as peers, the app's own @trpc/client and @trpc/server", () => {
    const files = filesUnder(join(unpacked, 'package')).map((f) => relative(join(unpacked, 'package'), f));
    expect(files.filter((f) => !f.startsWith('dist/')).sort()).toEqual(['README.md', 'package.json']);
    for (const file of ['dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/cjs/package.json']) {
      expect(files).toContain(file);
    }
    // The ESM and CommonJS builds have the same modules.
    const modules = (format: string) =>
      files
        .filter((f) => f.startsWith(`dist/${format}/`) && f.endsWith('.js'))
        .map((f) => f.slice(`dist/${format}/`.length))
        .sort();
    expect(modules('cjs')).toEqual(modules('esm'));
    expect(JSON.parse(readFileSync(join(unpacked, 'package/dist/cjs/package.json'), 'utf8'))).toEqual({ type: 'commonjs' });
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package/package.json'), 'utf8')) as Record<string, unknown>;
    // jose serves only the `./verifier` entry point (Node services); the main entry never imports it.
    expect(manifest.dependencies).toEqual({ superjson: sdkManifest.dependencies.superjson, jose: sdkManifest.dependencies.jose });
    expect(Object.keys(manifest.peerDependencies as object).sort()).toEqual(['@trpc/client', '@trpc/server']);
    expect(JSON.stringify(manifest)).not.toMatch(/workspace:|@keel\/server/);
  });

  it('has a publishable manifest: version, license, files, exports with types for import and require, restricted publishing', () => {
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package/package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      name: '@keel/client-sdk',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      license: expect.any(String),
      type: 'module',
      main: './dist/cjs/index.js',
      types: './dist/cjs/index.d.ts',
      files: ['dist', 'README.md'],
      publishConfig: { access: 'restricted' },
      exports: {
        '.': {
          import: { types: './dist/esm/index.d.ts', default: './dist/esm/index.js' },
          require: { types: './dist/cjs/index.d.ts', default: './dist/cjs/index.js' },
        },
        './package.json': './package.json',
      },
    });
    expect(manifest).not.toHaveProperty('private');
  });

  it('has declarations that mention no @prisma/* and no server path, importing only its dependencies', () => {
    const declarations = filesUnder(join(unpacked, 'package/dist')).filter((f) => f.endsWith('.d.ts'));
    expect(declarations.length).toBeGreaterThan(0);
    for (const file of declarations) {
      const text = readFileSync(file, 'utf8');
      const name = relative(unpacked, file);
      expect(text, name).not.toMatch(/@prisma|prisma\/|server\/src|@keel\/server|generated\//i);
      for (const specifier of importsOf(text)) {
        expect(
          specifier.startsWith('./') ||
            ['@trpc/client', '@trpc/server', 'superjson'].includes(specifier) ||
            (specifier === 'jose' && /verifier\.d\.ts$/.test(name)),
          `${name} imports ${specifier}`,
        ).toBe(true);
      }
    }
  });

  it('has JavaScript with no server code: only the client runtime is imported', () => {
    const scripts = filesUnder(join(unpacked, 'package/dist')).filter((f) => f.endsWith('.js'));
    expect(scripts.length).toBeGreaterThan(0);
    for (const file of scripts) {
      const text = readFileSync(file, 'utf8');
      const name = relative(unpacked, file);
      for (const specifier of importsOf(text)) {
        expect(
          specifier.startsWith('./') ||
            ['@trpc/client', '@trpc/server/observable', 'superjson'].includes(specifier) ||
            (specifier === 'jose' && /verifier\.js$/.test(name)),
          `${name} imports ${specifier}`,
        ).toBe(true);
      }
      expect(text, name).not.toMatch(/\binitTRPC\b|\bappRouter\b|createContext|fastify|prisma|argon2|node:|process\.env/i);
    }
  });

  it(
    'type-checks the ES module consumer with the repository tsc: right calls compile, wrong ones are errors',
    async () => {
      // skipLibCheck is off in the fixture: the SDK's declarations are checked too.
      const { stdout } = await sh(process.execPath, [TSC, '-p', join(consumer, 'tsconfig.json')], consumer);
      expect(stdout).toBe('');
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'runs the ES module consumer with Node against a live server, on the ESM build',
    async () => {
      const { stdout } = await sh(process.execPath, [join(consumer, 'dist/main.js'), server.url], consumer);
      expect(JSON.parse(stdout)).toEqual({
        entry: 'dist/esm/index.js',
        registeredIsMe: true,
        email: true,
        createdAtIsDate: true,
        project: 'From the tarball',
        task: 'IN_PROGRESS',
        tasks: 1,
        fieldErrors: { name: ['must not be empty'] },
        requestId: 'string',
        health: 'ok',
        afterLogout: 'UNAUTHORIZED',
        sessionsExpired: 0,
      });
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'type-checks the CommonJS consumer as `tsc --init` sets it up (nodenext), and ES imports with the older module: commonjs',
    async () => {
      const nodenext = await sh(process.execPath, [TSC, '-p', join(cjsConsumer, 'tsconfig.json')], cjsConsumer);
      expect(nodenext.stdout).toBe('');
      const node10 = await sh(process.execPath, [TSC, '-p', join(cjsConsumer, 'tsconfig.node10.json')], cjsConsumer);
      expect(node10.stdout).toBe('');
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'runs the CommonJS consumer with Node against a live server, on the CommonJS build',
    async () => {
      const { stdout } = await sh(process.execPath, [join(cjsConsumer, 'dist/main.js'), server.url], cjsConsumer);
      expect(JSON.parse(stdout)).toEqual({
        entry: 'dist/cjs/index.js',
        email: true,
        createdAtIsDate: true,
        project: 'From CommonJS',
        fieldErrors: { name: ['must not be empty'] },
        sessionsExpired: 0,
      });
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'fits the size budget with @trpc/client and superjson: at most 20 KB minified and gzipped',
    async () => {
      const { stdout } = await sh(process.execPath, [TSX, join(SDK_DIR, 'scripts/size.ts'), '--json'], SDK_DIR);
      const size = JSON.parse(stdout) as { gzipped: number; budget: number; byPackage: Record<string, number> };
      expect(size.budget).toBe(20 * 1024);
      expect(size.gzipped).toBeLessThanOrEqual(20 * 1024);
      expect(Object.keys(size.byPackage)).toEqual(expect.arrayContaining(['@keel/client-sdk', '@trpc/client', 'superjson']));
    },
    STEP_TIMEOUT_MS,
  );
});
