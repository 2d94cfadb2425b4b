/**
 * `pnpm dev` as a developer meets it, run exactly so (`pnpm dev`, in a process group of its own
 * like a terminal's foreground job, Ctrl-C being SIGINT to that group): the embedded PostgreSQL
 * outside that group, the same cluster and port across a watch restart, the development inbox, and
 * two Ctrl-C that stop everything with shutdown lines and no error.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/src/db/embedded.js';
import {
  groupAlive,
  postmasterPid,
  REPO_ROOT,
  spawnCommand,
  stopAllProcesses,
  stopOrphanedPostgres,
  waitForGroupGone,
  waitForPidsGone,
} from '../support/process.js';

const root = mkdtempSync(join(tmpdir(), 'keel-dev-'));
// The embedded PostgreSQL runs as the `postgres` user (we are root here): it must be able to enter.
chmodSync(root, 0o755);
const dataDir = join(root, 'postgres');
/** A source file "saved" again (its mtime only: the content, and git, see no change). */
const touched = join(REPO_ROOT, 'server/src/version.ts');
/** pnpm's process group (pnpm and the supervisor); the supervisor stops the rest. */
let devGroup: number | undefined;
afterAll(async () => {
  // pnpm does not pass signals on: a failed test stops the supervisor the way a terminal would.
  if (devGroup !== undefined && groupAlive(devGroup)) process.kill(-devGroup, 'SIGINT');
  await stopAllProcesses();
  await stopOrphanedPostgres(dataDir);
  rmSync(root, { recursive: true, force: true });
});

/** The pgid of a live process, from procfs. */
function pgidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which is in parentheses): state, ppid, pgrp.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

describe('pnpm dev', () => {
  it('keeps PostgreSQL and its port across a restart, serves the inbox, and stops cleanly on two Ctrl-C', async () => {
    const port = await freePort();
    const dev = spawnCommand(['pnpm', 'dev'], {
      name: 'pnpm dev',
      env: {
        PORT: String(port),
        EMBEDDED_PG_DIR: dataDir,
        JWT_KEYS_FILE: join(root, 'jwt-keys.json'),
        LOG_PRETTY: 'false',
        SEED_DEMO_DATA: 'false',
        SHUTDOWN_TIMEOUT_MS: '120000',
      },
    });
    devGroup = dev.pid;
    const listening = (n: number) => () => dev.logs().filter((l) => l.msg.startsWith('listening on ')).length >= n || undefined;
    const waitListening = (n: number) => dev.waitForLine(listening(n) as (line: string) => boolean, 150_000);
    await waitListening(1);
    const url = `http://127.0.0.1:${port}`;
    const databaseLines = () =>
      dev
        .logs()
        .filter((l) => /^database: postgresql:/.test(l.msg))
        .map((l) => l.msg);
    const postmaster = postmasterPid(dataDir) as number;
    expect(postmaster).toBeDefined();
    // Not in pnpm's (the terminal job's) process group: Ctrl-C does not reach it.
    expect(pgidOf(postmaster)).not.toBe(dev.pid);
    const port1 = /:(\d+)\/keel/.exec(databaseLines()[0] ?? '')?.[1];
    expect(port1).toBeDefined();
    expect(readFileSync(`${dataDir}.port`, 'utf8').trim()).toBe(port1);

    // A source change restarts the server; PostgreSQL (same process, same port) stays.
    const now = new Date();
    utimesSync(touched, now, now);
    await waitListening(2);
    expect(postmasterPid(dataDir)).toBe(postmaster);
    expect(new Set(databaseLines().map((line) => /:(\d+)\/keel/.exec(line)?.[1]))).toEqual(new Set([port1]));

    // The inbox lists the verification mail of a registration, its link clickable.
    const register = await fetch(`${url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'dev-loop@example.test', password: 'a sturdy dev passphrase', name: 'Dev' }),
    });
    expect(register.status).toBeLessThan(300);
    await dev.waitForLog((l) => l.msg.startsWith('mail (log transport'));
    const inbox = await (await fetch(`${url}/dev/inbox`)).text();
    expect(inbox).toContain('dev-loop@example.test');
    expect(inbox).toMatch(/<a href="http:\/\/localhost:5173\/verify-email\?token=[^"]+">/);

    // Ctrl-C while a request is in flight (its headers not finished), so the server is surely
    // still stopping when the second Ctrl-C comes; then the request completes and everything stops.
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolveConnect) => socket.once('connect', () => resolveConnect()));
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    process.kill(-dev.pid, 'SIGINT');
    await dev.waitForLog((l) => l.msg.startsWith('SIGINT: stopping (waiting up to'));
    process.kill(-dev.pid, 'SIGINT');
    await dev.waitForLog((l) => l.msg.startsWith('SIGINT again: already stopping'));
    socket.end('\r\n');
    await dev.exited;
    // Answered (Fastify's 503 "closing"), not cut off.
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    const messages = dev.logs().map((l) => l.msg);
    expect(messages).toContain('SIGINT again: already stopping (in-flight requests finish first)');
    expect(messages).toContain('SIGINT again: still stopping (the server first, then PostgreSQL)');
    expect(messages).toContain('stopped');
    expect(messages).toContain('embedded PostgreSQL stopped');
    expect(messages).toContain('dev: stopped');
    // No error, no stack trace, no "terminating connection due to administrator command" (57P01).
    expect(dev.logs().filter((l) => l.level !== 'info')).toEqual([]);
    expect(dev.output()).not.toMatch(/ERROR|57P01|\n\s+at /);
    // Stopped (pg_ctl stop waited for it); its exit is reaped by init, so wait for the pid to go.
    expect(postmasterPid(dataDir)).toBeUndefined();
    await waitForPidsGone([postmaster]);
    await waitForGroupGone(dev.pid);
  }, 180_000);
});
