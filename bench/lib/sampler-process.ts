/**
 * The latency sampler in a process of its own. Sampling in the process that also drives a flood
 * would time the load generator's own event loop: with hundreds of connections answered in a few
 * milliseconds each, the sampler's callbacks wait behind theirs, and the figure would blame the
 * server for the client's queue.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type LatencySample, type SamplerOptions, sampleLatency } from './load.js';

const SELF = fileURLToPath(import.meta.url);

/** Runs `sampleLatency(options)` in a child process (bounded: its duration plus 30 s). */
export function sampleLatencyInChild(options: SamplerOptions): Promise<LatencySample> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the latency sampler did not finish in time'));
    }, options.durationMs + 30_000);
    child.once('message', (sample) => {
      clearTimeout(guard);
      resolve(sample as LatencySample);
      child.disconnect();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(guard);
      if (code !== 0) reject(new Error(`the latency sampler exited with ${code}`));
    });
    child.send(options);
  });
}

// As the child: one sampling run, its result sent back to the parent.
if (process.send && process.argv[1] === SELF) {
  process.once('message', (options) => {
    void sampleLatency(options as SamplerOptions).then((sample) => process.send?.(sample, () => process.exit(0)));
  });
}
