/** The raw baseline server (bench/baseline-server.ts) as a child process, for the benchmarks that compare against it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../server/src/db/embedded.js';
import { PROBE_MODULE, probeFileFor } from './process-stats.js';
import { REPO_ROOT } from './server-process.js';

export interface BaselineProcess {
  url: string;
  pid: number;
  probeFile: string;
  stop(): Promise<void>;
}

/** The raw baseline as a child process (with the probe); resolves once it listens. */
export async function startBaseline(env: Record<string, string>): Promise<BaselineProcess> {
  const port = await freePort();
  const probeFile = probeFileFor('baseline');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', PROBE_MODULE, join(REPO_ROOT, 'bench/baseline-server.ts')],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env, PORT: String(port), KEEL_BENCH_PROBE: probeFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the baseline server did not start within 30 s:\n${output}`)), 30_000);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('baseline ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code) => reject(new Error(`the baseline server exited (${code}):\n${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid as number,
    probeFile,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}
