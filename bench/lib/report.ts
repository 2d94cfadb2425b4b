/** Benchmark output: an aligned table on stdout, and the figures as JSON under bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './server-process.js';

export interface Row {
  measure: string;
  value: string;
  goal?: string;
  /** 'met', 'missed', or '' when there is no goal. */
  verdict?: string;
  note?: string;
}

export function printTable(rows: Row[], write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): void {
  const columns: (keyof Row)[] = ['measure', 'value', 'goal', 'verdict', 'note'];
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] as number)).join(' | ')} |`;
  write(line(columns));
  write(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) write(line(columns.map((c) => row[c] ?? '')));
}

/** What the figures depend on besides the code. */
export function machine() {
  const list = cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    /** 1, 5 and 15 minute load averages when this was called: other work on the machine skews every figure. */
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** Writes bench/results/<name>.json and returns its path. */
export function writeResults(name: string, data: unknown): string {
  const dir = join(REPO_ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

/** A number for a table: `digits` decimals, no trailing noise. */
export const fmt = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
