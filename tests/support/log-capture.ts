/**
 * The server's logs as data: a stream for `createLogger(config, stream)` that parses each JSON line
 * and lets a test await a line instead of sleeping until it was probably written.
 */
import { Writable } from 'node:stream';
import type { Config } from '../../server/src/config.js';
import type { AppDeps } from '../../server/src/deps.js';
import { createLogger } from '../../server/src/logger.js';

export interface LogLine {
  level: string;
  msg: string;
  reqId?: string;
  [key: string]: unknown;
}

export interface LogCapture {
  stream: Writable;
  /** Every raw byte written, for "this secret appears nowhere" assertions. */
  text(): string;
  lines(): LogLine[];
  /** Resolves with the first line (already written or still to come) that matches; rejects after `timeoutMs`. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export function captureLogs(): LogCapture {
  let raw = '';
  let pending = '';
  const lines: LogLine[] = [];
  const waiters = new Set<(line: LogLine) => void>();
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const text = chunk.toString();
      raw += text;
      pending += text;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
        if (line.trim() === '') continue;
        const parsed = JSON.parse(line) as LogLine;
        lines.push(parsed);
        for (const waiter of [...waiters]) waiter(parsed);
      }
      callback();
    },
  });
  return {
    stream,
    text: () => raw,
    lines: () => [...lines],
    waitFor(predicate, timeoutMs = 5_000) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = (line: LogLine) => {
          if (!predicate(line)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          resolve(line);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching log line within ${timeoutMs} ms; got:\n${raw.split('\n').slice(-20).join('\n')}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
  };
}

/** `deps` with its logger replaced by one that writes JSON to a capture (level from `deps.config`). */
export function withCapturedLogs(deps: AppDeps): { deps: AppDeps; logs: LogCapture } {
  const logs = captureLogs();
  const config: Config = deps.config;
  return { deps: { ...deps, logger: createLogger(config, logs.stream) }, logs };
}
