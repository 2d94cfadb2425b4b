/**
 * `pnpm sdk:watch`: rebuilds dist/ (JavaScript and declarations, ESM and CommonJS) whenever the
 * server's TypeScript (the router, its schemas, anything they reach) or the SDK's own source
 * changes. For apps that install the SDK with `link:`: they see each new build at once, with no
 * reinstall. A build that fails leaves the previous dist/ in place (scripts/build.ts), and the
 * watch goes on.
 *
 * Each build runs scripts/build.ts in a child process: the build stops its process on an error,
 * and a fresh TypeScript program per build keeps the watcher's memory flat.
 */
import { spawn } from 'node:child_process';
import { type FSWatcher, watch } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface WatchOptions {
  /** Directories watched recursively. */
  dirs: string[];
  /** Whether a changed file (absolute path) is one a build depends on. */
  relevant: (file: string) => boolean;
  /** One build; resolves true when dist/ was replaced. `changed` is empty for the first build. */
  build: (changed: string[]) => Promise<boolean>;
  log: (line: string) => void;
  /** Changes this close together make one build (an editor saving several files, `pnpm db:generate`). */
  debounceMs?: number;
}

export interface Watcher {
  /** Stops watching; resolves once a running build has finished. */
  close(): Promise<void>;
}

/**
 * Builds once, then again after every burst of relevant changes. Never two builds at once: changes
 * made during a build are collected and built right after it, so dist/ always ends up matching the
 * sources as they were last saved.
 */
export function watchAndRebuild(options: WatchOptions): Watcher {
  const debounceMs = options.debounceMs ?? 150;
  const pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const runBuild = async (changed: string[]) => {
    try {
      if (!(await options.build(changed))) options.log('build failed: dist/ keeps the previous build; fix the error above, and save');
    } catch (error) {
      options.log(`build failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  const next = () => {
    if (closed || running || pending.size === 0) return;
    const changed = [...pending].sort();
    pending.clear();
    running = runBuild(changed).finally(() => {
      running = undefined;
      next();
    });
  };

  const watchers: FSWatcher[] = options.dirs.map((dir) =>
    watch(dir, { recursive: true }, (_event, name) => {
      if (closed || !name) return;
      const file = resolve(dir, name.toString());
      if (!options.relevant(file)) return;
      pending.add(file);
      clearTimeout(timer);
      timer = setTimeout(next, debounceMs);
    }),
  );

  running = runBuild([]).finally(() => {
    running = undefined;
    next();
  });

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
      await running;
    },
  };
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(root, '..');

/** What the SDK's build reads: TypeScript sources of the server and of the SDK, not tests. */
export function isSdkInput(file: string): boolean {
  return file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.includes(`${join(root, 'src')}/__printed`);
}

/** scripts/build.ts in a child process; its errors go to this terminal. */
function buildOnce(changed: string[], log: (line: string) => void): Promise<boolean> {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const shown = changed.slice(0, 3).map((file) => relative(repo, file));
  log(
    changed.length === 0
      ? 'building ...'
      : `${shown.join(', ')}${changed.length > 3 ? ` and ${changed.length - 3} more` : ''} changed: rebuilding ...`,
  );
  return new Promise((done) => {
    const child = spawn(process.execPath, [tsx, join(root, 'scripts/build.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('close', (code) => {
      if (code === 0) log(`${output.trim().replace(/^\[client-sdk build\] /, '')}: linked apps see it now`);
      done(code === 0);
    });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const log = (line: string) => process.stdout.write(`[sdk:watch] ${line}\n`);
  const dirs = [join(repo, 'server/src'), join(root, 'src')];
  log(`watching ${dirs.map((dir) => relative(repo, dir)).join(' and ')}; Ctrl-C stops`);
  const watcher = watchAndRebuild({ dirs, relevant: isSdkInput, build: (changed) => buildOnce(changed, log), log });
  const stop = () => {
    void watcher.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
