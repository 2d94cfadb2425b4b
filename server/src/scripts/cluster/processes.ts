/**
 * The cluster's child processes: output kept in a file and, for the last lines, in memory; waits
 * on a line of output or on the exit event, each bounded by a deadline (never a sleep).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Managed {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once, when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  running(): boolean;
  /** How many lines it has written so far: a starting point for `waitForLine`. */
  lineCount(): number;
  /** The first line matching `pattern` at index `from` or later; rejects on timeout or exit. */
  waitForLine(pattern: RegExp, options?: { from?: number; timeoutMs?: number }): Promise<string>;
  /** The last lines, for error messages. */
  tail(lines?: number): string;
  signal(signal: NodeJS.Signals): void;
  /** `signal` (SIGTERM by default), then SIGKILL after `graceMs`; resolves on exit. */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<ExitInfo>;
}

const KEPT_LINES = 5_000;
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: { env: Record<string, string>; cwd: string; logFile: string },
): Managed {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${command} (is it installed?)`);
  children.add(child);
  const file: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  const lines: string[] = [];
  let first = 0;
  let exit: ExitInfo | undefined;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of [...listeners]) listener();
  };
  const reader = () => {
    let partial = '';
    return (chunk: string) => {
      file.write(chunk);
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > KEPT_LINES) {
          lines.shift();
          first++;
        }
      }
      if (parts.length > 0) notify();
    };
  };
  child.stdout?.setEncoding('utf8').on('data', reader());
  child.stderr?.setEncoding('utf8').on('data', reader());
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (error) => {
      lines.push(`${name}: ${error.message}`);
      exit = { code: null, signal: null };
      children.delete(child);
      resolve(exit);
      notify();
    });
    child.once('close', (code, signal) => {
      exit = { code, signal };
      children.delete(child);
      file.end();
      resolve(exit);
      notify();
    });
  });
  const tail = (count = 30) => lines.slice(-count).join('\n');

  const managed: Managed = {
    name,
    pid,
    logFile: options.logFile,
    exited,
    running: () => exit === undefined,
    lineCount: () => first + lines.length,
    tail,
    waitForLine(pattern, { from = 0, timeoutMs = 60_000 } = {}) {
      return new Promise<string>((resolve, reject) => {
        let checked = Math.max(from, first);
        const finish = (error?: Error, line?: string) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve(line as string);
        };
        const check = () => {
          for (let i = Math.max(checked, first); i < first + lines.length; i++) {
            const line = lines[i - first] as string;
            if (pattern.test(line)) return finish(undefined, line);
          }
          checked = first + lines.length;
          if (exit) finish(new Error(`${name} exited (code ${exit.code}, signal ${exit.signal}) before ${pattern}:\n${tail()}`));
        };
        const timer = setTimeout(() => finish(new Error(`${name}: no ${pattern} within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
        listeners.add(check);
        check();
      });
    },
    signal(signal) {
      if (exit === undefined) child.kill(signal);
    },
    async stop({ signal = 'SIGTERM', graceMs = 20_000 } = {}) {
      if (exit) return exit;
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), graceMs);
      });
      const result = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (result !== 'late') return result;
      child.kill('SIGKILL');
      return exited;
    },
  };
  return managed;
}
