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
 *   heapUsedBytes   the live heap at the end of the window (soak runs watch it drift)
 *
 * With KEEL_BENCH_HEAP_PROFILE set, the window also runs V8's sampling heap profiler, counting
 * objects that were collected (what a request allocates, not what survives), and writes its
 * profile there (bench/profile.ts --heap reads it).
 *
 * Plain JavaScript so that `node server/dist/main.js` loads it without a TypeScript loader.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { GCProfiler, getHeapStatistics } from 'node:v8';

const heapProfileFile = process.env.KEEL_BENCH_HEAP_PROFILE;
let session;
const inspector = (method, params = {}) =>
  new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

const file = process.env.KEEL_BENCH_PROBE;
if (file) {
  let profiler;
  let usedAtStart = 0;
  process.on('SIGUSR2', () => {
    if (!profiler) {
      profiler = new GCProfiler();
      usedAtStart = getHeapStatistics().used_heap_size;
      profiler.start();
      if (heapProfileFile) {
        session = new Session();
        session.connect();
        void inspector('HeapProfiler.startSampling', {
          samplingInterval: 4096,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
      }
      return;
    }
    if (heapProfileFile && session) {
      void inspector('HeapProfiler.stopSampling').then(({ profile }) => {
        writeFileSync(heapProfileFile, JSON.stringify(profile));
        session.disconnect();
      });
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
    const heap = getHeapStatistics();
    const allocatedBytes = freed + (heap.used_heap_size - usedAtStart);
    writeFileSync(file, JSON.stringify({ allocatedBytes, scavenges, markCompacts, gcMicros, heapUsedBytes: heap.used_heap_size }));
  });
}
