/**
 * `pnpm sdk:watch` (client-sdk/scripts/watch.ts) with a scripted build over a temporary directory:
 * it builds at start, rebuilds after a relevant change, collects the changes made during a build
 * into exactly one build after it, ignores tests and other files, and keeps watching after a failed
 * build. The real build is covered by tests/e2e/sdk-package.test.ts. Waits on events, never on time.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSdkInput, type Watcher, watchAndRebuild } from '../../client-sdk/scripts/watch.js';
import { REPO_ROOT } from '../support/process.js';

interface BuildCall {
  changed: string[];
  finish(ok: boolean | Error): void;
}

/** A build the test finishes by hand; `next()` resolves with the next build started. */
function scriptedBuild() {
  const started: BuildCall[] = [];
  const waiters: ((call: BuildCall) => void)[] = [];
  let taken = 0;
  const build = (changed: string[]) =>
    new Promise<boolean>((resolve, reject) => {
      const call: BuildCall = { changed, finish: (ok) => (ok instanceof Error ? reject(ok) : resolve(ok)) };
      started.push(call);
      waiters.shift()?.(call);
    });
  const next = () =>
    new Promise<BuildCall>((resolve) => {
      const call = started[taken];
      if (call) resolve(call);
      else waiters.push(resolve);
      taken += 1;
    });
  return { build, next, started };
}

let dir = '';
let watcher: Watcher | undefined;
afterEach(async () => {
  await watcher?.close();
  rmSync(dir, { recursive: true, force: true });
});

function start() {
  dir = mkdtempSync(join(tmpdir(), 'keel-sdk-watch-'));
  mkdirSync(join(dir, 'server/modules/widgets'), { recursive: true });
  const builds = scriptedBuild();
  const log: string[] = [];
  watcher = watchAndRebuild({
    dirs: [dir],
    relevant: (file) => file.endsWith('.ts') && !file.endsWith('.test.ts'),
    build: builds.build,
    log: (line) => log.push(line),
    debounceMs: 20,
  });
  const write = (name: string) => writeFileSync(join(dir, name), `export const at = ${Date.now()};\n`);
  return { ...builds, log, write, file: (name: string) => join(dir, name) };
}

describe('sdk:watch', () => {
  it('builds once at start, then after a change to a TypeScript file, saying which', async () => {
    const w = start();
    const first = await w.next();
    expect(first.changed).toEqual([]);
    first.finish(true);

    w.write('server/modules/widgets/router.ts');
    const second = await w.next();
    expect(second.changed).toEqual([w.file('server/modules/widgets/router.ts')]);
    second.finish(true);
  });

  it('collects changes made during a build into one build right after it', async () => {
    const w = start();
    const first = await w.next();
    // Saved while the first build runs: no second build may start before it ends.
    w.write('a.ts');
    w.write('server/modules/widgets/schemas.ts');
    const second = w.next();
    await new Promise((resolve) => setImmediate(resolve));
    expect(w.started).toHaveLength(1);
    first.finish(true);
    const call = await second;
    // Both files end up in the builds after the first (one or two, depending on when the events arrive).
    const seen = new Set(call.changed);
    call.finish(true);
    if (!seen.has(w.file('a.ts')) || !seen.has(w.file('server/modules/widgets/schemas.ts'))) {
      const third = await w.next();
      for (const file of third.changed) seen.add(file);
      third.finish(true);
    }
    expect([...seen].sort()).toEqual([w.file('a.ts'), w.file('server/modules/widgets/schemas.ts')].sort());
  });

  it('ignores what the build does not read: tests and other files', async () => {
    const w = start();
    (await w.next()).finish(true);
    w.write('server/modules/widgets/widgets.test.ts');
    w.write('notes.md');
    w.write('server/modules/widgets/service.ts');
    const call = await w.next();
    expect(call.changed).toEqual([w.file('server/modules/widgets/service.ts')]);
    call.finish(true);
  });

  it('keeps watching after a failed or crashed build, and says the previous dist/ is kept', async () => {
    const w = start();
    (await w.next()).finish(false);
    w.write('b.ts');
    // A build starts only after the previous one has ended, and been reported.
    (await w.next()).finish(new Error('spawn failed'));
    w.write('c.ts');
    const call = await w.next();
    expect(call.changed).toContain(w.file('c.ts'));
    call.finish(true);
    expect(w.log).toEqual(['build failed: dist/ keeps the previous build; fix the error above, and save', 'build failed: spawn failed']);
  });
});

describe('what the real watch rebuilds for', () => {
  it("the server's and the SDK's TypeScript sources, not tests or the build's own scratch files", () => {
    expect(isSdkInput(join(REPO_ROOT, 'server/src/modules/projects/router.ts'))).toBe(true);
    expect(isSdkInput(join(REPO_ROOT, 'server/src/generated/prisma/models/Project.ts'))).toBe(true);
    expect(isSdkInput(join(REPO_ROOT, 'client-sdk/src/client.ts'))).toBe(true);
    expect(isSdkInput(join(REPO_ROOT, 'client-sdk/src/client.test.ts'))).toBe(false);
    expect(isSdkInput(join(REPO_ROOT, 'client-sdk/src/__printed-router.ts'))).toBe(false);
    expect(isSdkInput(join(REPO_ROOT, 'prisma/schema.prisma'))).toBe(false);
  });
});
