/**
 * The SDK as it is published: `pnpm pack` builds the tarball; a separate consumer project (outside
 * the workspace) installs only that tarball, its dependencies and its peers, from the pnpm store
 * (the registry is asked only for metadata the store lacks, as on a fresh machine); the
 * repository's tsc type-checks the consumer fixture (tests/e2e/fixtures/consumer), which then runs
 * with Node against a live server. The tarball's declarations must mention nothing of
 * the server and its JavaScript must contain none of it; the bundle must fit its size budget.
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

/** Bare module specifiers of `import ... from '...'`, `export ... from '...'` and `import('...')`. */
function importsOf(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)].map((m) => m[1] ?? '');
}

const rootManifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const sdkManifest = JSON.parse(readFileSync(join(SDK_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

const db = await useTestDatabase();
const server = await startTestServer(db.deps());

const work = mkdtempSync(join(tmpdir(), 'keel-sdk-package-'));
const unpacked = join(work, 'unpacked');
const consumer = join(work, 'consumer');
let tarball = '';
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(async () => {
  // `prepack` builds dist/ first, so the tarball is what the sources make now.
  const { stdout } = await sh('pnpm', ['pack', '--pack-destination', work], SDK_DIR);
  const name = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!name) throw new Error(`pnpm pack produced no tarball:\n${stdout}`);
  tarball = join(work, name);
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
        // The SDK and its peers, as an app installs them: `pnpm add @keel/client-sdk @trpc/client @trpc/server`.
        dependencies: {
          '@keel/client-sdk': `file:${tarball}`,
          '@trpc/client': rootManifest.devDependencies['@trpc/client'],
          '@trpc/server': rootManifest.devDependencies['@trpc/server'],
        },
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
  await sh('pnpm', ['install', '--prefer-offline', '--config.confirmModulesPurge=false'], consumer);
}, STEP_TIMEOUT_MS * 2);

describe('the packed @keel/client-sdk', () => {
  it("ships dist/, README and manifest; needs superjson and, as peers, the app's own @trpc/client and @trpc/server", () => {
    const files = filesUnder(join(unpacked, 'package')).map((f) => relative(join(unpacked, 'package'), f));
    expect(files.filter((f) => !f.startsWith('dist/')).sort()).toEqual(['README.md', 'package.json']);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    const manifest = JSON.parse(readFileSync(join(unpacked, 'package/package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.dependencies).toEqual({ superjson: sdkManifest.dependencies.superjson });
    expect(Object.keys(manifest.peerDependencies as object).sort()).toEqual(['@trpc/client', '@trpc/server']);
    expect(JSON.stringify(manifest)).not.toMatch(/workspace:|@keel\/server/);
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
          specifier.startsWith('./') || ['@trpc/client', '@trpc/server', 'superjson'].includes(specifier),
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
          specifier.startsWith('./') || ['@trpc/client', '@trpc/server/observable', 'superjson'].includes(specifier),
          `${name} imports ${specifier}`,
        ).toBe(true);
      }
      expect(text, name).not.toMatch(/\binitTRPC\b|\bappRouter\b|createContext|fastify|prisma|argon2|node:|process\.env/i);
    }
  });

  it(
    'type-checks the consumer fixture with the repository tsc: right calls compile, wrong ones are errors',
    async () => {
      // skipLibCheck is off in the fixture: the SDK's declarations are checked too.
      const { stdout } = await sh(process.execPath, [TSC, '-p', join(consumer, 'tsconfig.json')], consumer);
      expect(stdout).toBe('');
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'runs the consumer with Node against a live server',
    async () => {
      const { stdout } = await sh(process.execPath, [join(consumer, 'dist/main.js'), server.url], consumer);
      expect(JSON.parse(stdout)).toEqual({
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
