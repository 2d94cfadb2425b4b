/**
 * `pnpm cluster` as a user runs it: one line per step, the URL, every process gone after Ctrl-C
 * (SIGINT), and a usage message for a bad flag.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../server/src/db/embedded.js';
import { createScratchDatabase } from '../../support/database.js';
import { childPids, spawnTsx, stopAllProcesses, waitForPidsGone } from '../../support/process.js';

const SCRIPT = 'server/src/scripts/cluster.ts';
const scratch = await createScratchDatabase({ migrated: true });
const dir = mkdtempSync(join(tmpdir(), 'keel-cluster-command-'));
// PgBouncer runs as the postgres user and must reach its files below.
chmodSync(dir, 0o755);

afterAll(async () => {
  await stopAllProcesses();
  await scratch.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('pnpm cluster', () => {
  it('reaches PostgreSQL, starts PgBouncer, the instances and HAProxy, one logged step each, and stops them all on Ctrl-C', async () => {
    const port = await freePort();
    const run = spawnTsx(SCRIPT, ['--instances', '2', '--port', String(port), '--dir', dir], {
      name: 'cluster',
      env: { DATABASE_URL: scratch.url },
    });
    const ready = await run.waitForLine(/\[keel\] cluster: ready: /, 180_000);
    expect(ready).toContain(`http://127.0.0.1:${port}`);
    const steps = run.stdout().trim().split('\n');
    expect(steps.every((line) => line.startsWith('[keel] cluster: '))).toBe(true);
    expect(steps.map((line) => line.replace('[keel] cluster: ', '').split(/[: ]/)[0])).toEqual([
      'PostgreSQL',
      'PgBouncer',
      'Keel',
      'HAProxy',
      'ready',
    ]);
    const password = decodeURIComponent(new URL(scratch.url).password);
    if (password) expect(run.output()).not.toContain(password);

    const answer = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-keel-server')).toMatch(/^keel[12]$/);

    const children = childPids(run.pid);
    expect(children.length).toBe(4); // PgBouncer, two instances, HAProxy
    run.kill('SIGINT');
    expect(await run.waitForExit(60_000)).toEqual({ code: 0, signal: null });
    expect(run.stdout()).toContain('[keel] cluster: stopped');
    await waitForPidsGone(children);
  });

  it('refuses a bad --instances with what to type instead', async () => {
    const run = spawnTsx(SCRIPT, ['--instances', '0'], { name: 'cluster-bad' });
    expect((await run.waitForExit()).code).toBe(1);
    expect(run.stderr()).toMatch(/--instances: expected 1 to 16, got 0\nusage: pnpm cluster \[--instances 3\]/);
  });
});
