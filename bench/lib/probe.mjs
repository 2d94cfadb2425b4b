/**
 * Loaded into a benchmarked server with `node --import bench/lib/probe.mjs` (benchmarks only; the
 * server itself knows nothing of it). SIGUSR2 starts a measurement window, the next SIGUSR2 ends
 * it and writes what V8's GC profiler saw to the file named by KEEL_BENCH_PROBE:
 *
 *   allocatedBytes  bytes freed by every GC in the window plus the growth of the live heap, i.e.
 *                   everything the JavaScript heap handed out (the allocation figure per request)
 *   scavenges       young-generation collections
 *   markCompacts    full collections
 *   gcMicros        time spent in GC pauses on the main thread
 *
 * Plain JavaScript so that `node server/dist/main.js` loads it without a TypeScript loader.
 */
import { writeFileSync } from 'node:fs';
import { GCProfiler, getHeapStatistics } from 'node:v8';

const file = process.env.KEEL_BENCH_PROBE;
if (file) {
  let profiler;
  let usedAtStart = 0;
  process.on('SIGUSR2', () => {
    if (!profiler) {
      profiler = new GCProfiler();
      usedAtStart = getHeapStatistics().used_heap_size;
      profiler.start();
      return;
    }
    const { statistics } = profiler.stop();
    profiler = undefined;
    let freed = 0;
    let scavenges = 0;
    let markCompacts = 0;
    let gcMicros = 0;
    for (const gc of statistics) {
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
      gcMicros += gc.cost;
      if (gc.gcType === 'Scavenge') scavenges += 1;
      else if (gc.gcType === 'MarkSweepCompact') markCompacts += 1;
    }
    const allocatedBytes = freed + (getHeapStatistics().used_heap_size - usedAtStart);
    writeFileSync(file, JSON.stringify({ allocatedBytes, scavenges, markCompacts, gcMicros }));
  });
}
