/**
 * The server process from the outside: what an operator sees on a bad environment, on SIGTERM
 * while a client is mid-request, during the drain a load balancer needs, and on a crash. Each
 * server is a real `node main.ts` child.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../server/src/db/embedded.js';
import { createScratchDatabase } from '../support/database.js';
import { spawnServer, stopAllProcesses, waitUntilListening, waitUntilReady } from '../support/process.js';

const scratch = await createScratchDatabase({ migrated: true });
const workDir = mkdtempSync(join(tmpdir(), 'keel-lifecycle-'));
afterAll(async () => {
  await stopAllProcesses();
  await scratch.drop();
  rmSync(workDir, { recursive: true, force: true });
});

/** A server on the scratch database, JSON logs at info, on a port we know before it logs. */
async function startServer(env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const port = await freePort();
  const server = spawnServer(
    {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_URL: scratch.url,
      PORT: String(port),
      JWT_KEYS_FILE: join(workDir, 'jwt-keys.json'),
      ...env,
    },
    { nodeArgs },
  );
  await waitUntilListening(server);
  return { server, port };
}

/**
 * How long a wait below gives before it fails naming what never came: a backstop for a busy
 * machine (the e2e project's own timeout is 180 s), never a figure the test checks.
 */
const BACKSTOP_MS = 60_000;

/** A raw HTTP/1.1 client connection whose bytes we control, collecting everything the server sends. */
function openConnection(
  port: number,
): Promise<{ socket: Socket; received: () => string; waitFor: (text: string) => Promise<void>; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const listeners = new Set<() => void>();
    const socket = connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      for (const l of [...listeners]) l();
    });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        closed,
        waitFor: (text) =>
          new Promise<void>((ok, fail) => {
            const timer = setTimeout(
              () => fail(new Error(`no "${JSON.stringify(text)}" from the server within ${BACKSTOP_MS} ms; got ${JSON.stringify(data)}`)),
              BACKSTOP_MS,
            );
            const check = () => {
              if (!data.includes(text)) return;
              clearTimeout(timer);
              listeners.delete(check);
              ok();
            };
            listeners.add(check);
            check();
          }),
      }),
    );
  });
}

/** Resolves when `promise` does, or rejects after `ms` (for waits with no deadline of their own). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The body of a response, checked to be complete: exactly Content-Length bytes, or chunks up to and
 * including the terminating zero-length chunk. Throws on a truncated body.
 */
function completeBody(head: string, payload: string): string {
  const length = /\r\ncontent-length: (\d+)/i.exec(head)?.[1];
  if (length !== undefined) {
    expect(Buffer.byteLength(payload)).toBe(Number(length));
    return payload;
  }
  expect(head).toMatch(/\r\ntransfer-encoding: chunked/i);
  const bytes = Buffer.from(payload);
  const chunks: Buffer[] = [];
  let offset = 0;
  while (true) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd < 0) throw new Error(`truncated chunked body: ${JSON.stringify(payload)}`);
    const size = Number.parseInt(bytes.subarray(offset, lineEnd).toString(), 16);
    if (size === 0) {
      expect(bytes.subarray(lineEnd).toString()).toBe('\r\n\r\n');
      return Buffer.concat(chunks).toString();
    }
    if (lineEnd + 2 + size + 2 > bytes.length) throw new Error(`truncated chunk: ${JSON.stringify(payload)}`);
    chunks.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
}

describe('invalid configuration', () => {
  it('exits with code 1 and names every invalid variable (PORT, LOG_LEVEL) on stderr', async () => {
    const server = spawnServer({ PORT: 'abc', LOG_LEVEL: 'loud', DATABASE_URL: scratch.url });
    const exit = await server.waitForExit();
    expect(exit).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toMatch(/Invalid configuration/);
    expect(server.stderr()).toMatch(/PORT: expected an integer from 0 to 65535 \(got "abc"\)/);
    expect(server.stderr()).toMatch(/LOG_LEVEL: .*\(got "loud"\)/);
    expect(server.stdout()).not.toMatch(/listening on/);
  });
});

describe('graceful shutdown', () => {
  it('on SIGTERM finishes the request still in flight with a complete response, then exits 0', async () => {
    const { server, port } = await startServer({ SHUTDOWN_TIMEOUT_MS: '20000' });
    const body = JSON.stringify({ json: { note: 'x'.repeat(2_000) } });
    const half = Math.floor(body.length / 2);
    const client = await openConnection(port);
    client.socket.write(
      [
        'POST /trpc/system.health HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        // The interim 100 tells us the server has parsed the headers and dispatched the request.
        'Expect: 100-continue',
        'Connection: close',
        'x-request-id: slow-request-0001',
        '',
        '',
      ].join('\r\n'),
    );
    await client.waitFor('HTTP/1.1 100 Continue\r\n\r\n');
    client.socket.write(body.slice(0, half));

    server.kill('SIGTERM');
    await server.waitForLog((l) => l.msg.startsWith('SIGTERM: stopping'));
    // Still waiting for the rest of the body: nothing but the interim response so far, and still running.
    expect(client.received()).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    expect(server.hasExited()).toBe(false);

    client.socket.end(body.slice(half));
    await within(client.closed, BACKSTOP_MS, 'the response to the in-flight request');
    const response = client.received().slice('HTTP/1.1 100 Continue\r\n\r\n'.length);
    const split = response.indexOf('\r\n\r\n');
    const head = response.slice(0, split);
    const payload = response.slice(split + 4);
    // A complete response from the tRPC handler (a query does not take POST: 405), not a 503 or a reset.
    expect(head).toMatch(/^HTTP\/1\.1 405 /);
    expect(head).toMatch(/\r\nx-request-id: slow-request-0001/i);
    expect(JSON.parse(completeBody(head, payload))).toMatchObject({
      error: { json: { data: { code: 'METHOD_NOT_SUPPORTED', path: 'system.health' } } },
    });

    const exit = await server.waitForExit();
    expect(exit).toEqual({ code: 0, signal: null });
    const messages = server.logs().map((l) => (l.msg === 'request' ? `request ${l.reqId}` : l.msg));
    expect(messages.indexOf('request slow-request-0001')).toBeGreaterThan(messages.findIndex((m) => m.startsWith('SIGTERM: stopping')));
    expect(messages.at(-1)).toBe('stopped');
  });

  it('on SIGTERM with no request in flight exits 0 promptly', async () => {
    const { server } = await startServer();
    server.kill('SIGTERM');
    expect(await server.waitForExit()).toEqual({ code: 0, signal: null });
    expect(server.logs().at(-1)?.msg).toBe('stopped');
  });
});

/**
 * One request on a connection of its own (no keep-alive reuse): what a balancer's new connection
 * meets. Resolves with the status and body; rejects if the connection is refused or reset.
 */
function onNewConnection(port: number, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: {
          connection: 'close',
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        timeout: BACKSTOP_MS,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path} within ${BACKSTOP_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

describe('drain behind a load balancer', () => {
  it('on SIGTERM, /readyz answers 503 during the drain while /healthz and tRPC calls (database included) answer 200 on new connections; a second SIGTERM ends it; exit 0', async () => {
    // A drain far longer than any test: only the second SIGTERM ends it, so nothing here races a clock.
    const { server, port } = await startServer({ SHUTDOWN_DRAIN_MS: '600000', RATE_LIMIT_ENABLED: 'false' });
    await waitUntilReady(`http://127.0.0.1:${port}`);

    server.kill('SIGTERM');
    await server.waitForLog((l) => l.msg === 'draining for 600000 ms: /readyz answers 503, requests are still served');
    const ready = await onNewConnection(port, 'GET', '/readyz');
    expect(ready).toEqual({ status: 503, body: JSON.stringify({ status: 'draining' }) });
    expect((await onNewConnection(port, 'GET', '/healthz')).status).toBe(200);
    expect((await onNewConnection(port, 'GET', '/trpc/system.health')).status).toBe(200);
    const registered = await onNewConnection(port, 'POST', '/trpc/auth.register', {
      json: { email: 'late-arrival@example.test', password: 'a sturdy passphrase' },
    });
    expect(registered.status, registered.body).toBe(200);
    expect(server.hasExited()).toBe(false);

    server.kill('SIGTERM');
    expect(await server.waitForExit()).toEqual({ code: 0, signal: null });
    const messages = server.logs().map((l) => l.msg);
    expect(messages).toContain('SIGTERM: stopping (draining 600000 ms, then waiting up to 10000 ms for in-flight requests)');
    expect(messages).toContain('SIGTERM again: not waiting for the rest of the drain');
    // Stopped after the drain was skipped (a request's own log line may still come after it).
    expect(messages.indexOf('stopped')).toBeGreaterThan(messages.indexOf('SIGTERM again: not waiting for the rest of the drain'));
  });

  it('a second SIGTERM ends the drain early; the server still stops cleanly with exit 0', async () => {
    // Ten minutes of drain, beyond the test's own timeout: only the skip can make this exit.
    const { server, port } = await startServer({ SHUTDOWN_DRAIN_MS: '600000' });
    server.kill('SIGTERM');
    await server.waitForLog((l) => l.msg.startsWith('draining for 600000 ms'));
    expect((await onNewConnection(port, 'GET', '/readyz')).status).toBe(503);
    server.kill('SIGTERM');
    expect(await server.waitForExit()).toEqual({ code: 0, signal: null });
    expect(server.logs().map((l) => l.msg)).toContain('SIGTERM again: not waiting for the rest of the drain');
  });
});

describe('crashes', () => {
  it('exits non-zero after logging an unhandled promise rejection', async () => {
    // There is no request that makes the server reject a promise unhandled, and production code has
    // no test hooks: a preloaded module (not part of the server) rejects one when sent SIGUSR2.
    const preload = `data:text/javascript,process.on('SIGUSR2', () => { Promise.reject(new Error('injected rejection')); });`;
    const { server } = await startServer({}, ['--import', preload]);
    server.kill('SIGUSR2');
    const exit = await server.waitForExit();
    expect(exit.code).toBe(1);
    const fatal = server.logs().find((l) => l.level === 'fatal');
    expect(fatal?.msg).toBe('unhandled promise rejection: exiting');
    expect((fatal?.err as { message?: string } | undefined)?.message).toBe('injected rejection');
  });
});
