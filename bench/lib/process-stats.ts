/**
 * What a server process spent during a measurement window, read from outside it: CPU time of its
 * main thread and of all its threads (Linux /proc schedstat, nanosecond resolution), and, through
 * bench/lib/probe.mjs loaded into it, the bytes its JavaScript heap allocated and the collections
 * that cost. Per request these move far less than req/s on a machine whose other work comes and
 * goes, so they are the figures to compare between two builds.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROBE_MODULE = fileURLToPath(new URL('./probe.mjs', import.meta.url));

export interface WindowStats {
  /** CPU time of the event-loop thread, µs. */
  mainCpuUs: number;
  /** CPU time of every thread (GC helpers, libuv pool, ...), µs. */
  allCpuUs: number;
  allocatedBytes: number;
  scavenges: number;
  markCompacts: number;
  gcMicros: number;
  /** The JavaScript heap in use at the end of the window. */
  heapUsedBytes: number;
}

/** CPU nanoseconds per thread id, from /proc/<pid>/task/<tid>/schedstat (first field). */
function threadCpuNs(pid: number): Map<number, number> {
  const result = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return result;
  }
  for (const tid of tids) {
    try {
      result.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return result;
}

/** A file for the probe of process `pid` to write into. */
export const probeFileFor = (name: string): string => join(tmpdir(), `keel-bench-probe-${process.pid}-${name}.json`);

async function waitForFile(file: string, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      if (text.endsWith('}')) return text;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/**
 * Runs `work` while measuring process `pid`. `probeFile` is the KEEL_BENCH_PROBE of that process
 * (undefined when it runs without the probe: allocation figures are then NaN).
 */
export async function measureProcess<T>(
  pid: number,
  probeFile: string | undefined,
  work: () => Promise<T>,
): Promise<{ result: T; stats: WindowStats }> {
  if (probeFile) {
    rmSync(probeFile, { force: true });
    process.kill(pid, 'SIGUSR2');
  }
  const before = threadCpuNs(pid);
  const result = await work();
  const after = threadCpuNs(pid);
  let allNs = 0;
  for (const [tid, ns] of after) allNs += ns - (before.get(tid) ?? 0);
  const mainNs = (after.get(pid) ?? Number.NaN) - (before.get(pid) ?? Number.NaN);
  let heap = {
    allocatedBytes: Number.NaN,
    scavenges: Number.NaN,
    markCompacts: Number.NaN,
    gcMicros: Number.NaN,
    heapUsedBytes: Number.NaN,
  };
  if (probeFile) {
    process.kill(pid, 'SIGUSR2');
    const text = await waitForFile(probeFile, 5_000);
    if (text) heap = JSON.parse(text) as typeof heap;
    rmSync(probeFile, { force: true });
  }
  return { result, stats: { mainCpuUs: mainNs / 1000, allCpuUs: allNs / 1000, ...heap } };
}

/** Resident set size and its peak (MiB) of a process, from /proc. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** The median of some numbers (NaN when there are none). */
export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
