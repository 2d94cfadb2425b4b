/**
 * The last log lines of a process that ends (the server's "stopped", a fatal reason) reach its
 * reader even when that reader is slow: the logger writes asynchronously, and exiting while a
 * write was in flight lost them (the lifecycle test saw "stopped" missing once in CI).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/process.js';

const FIXTURE = join(REPO_ROOT, 'tests/e2e/fixtures/log-then-exit.ts');

describe('exit after logging', () => {
  it('writes every line before the process ends, the last included, when stdout is read slowly', async () => {
    // `sleep` before `cat`: the pipe (64 KiB) fills, so a write is still in flight when the
    // fixture asks to exit.
    const child = spawn('sh', ['-c', `"${process.execPath}" --import tsx "${FIXTURE}" | (sleep 1; cat)`], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    const parse = (line: string): { msg: string; i?: number } | string => {
      try {
        return JSON.parse(line) as { msg: string; i?: number };
      } catch {
        return line.slice(0, 80);
      }
    };
    const all = out
      .split('\n')
      .filter((line) => line !== '')
      .map(parse);
    // A write cut short by the exit leaves a torn line (and loses the rest of its chunk).
    expect(all.filter((line) => typeof line === 'string')).toEqual([]);
    const lines = all as { msg: string; i?: number }[];
    expect(lines).toHaveLength(3_001);
    expect(lines.at(-1)?.msg).toBe('last line');
    expect(lines.filter((l) => l.msg === 'filler').map((l) => l.i)).toEqual(Array.from({ length: 3_000 }, (_, i) => i));
  });
});
