import { defineConfig } from 'vitest/config';
import { projects } from './vitest.workspace.js';

export default defineConfig({
  test: {
    projects,
    testTimeout: 20_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Two cores: more workers than that only adds contention (and databases).
    maxWorkers: 2,
    coverage: {
      provider: 'v8',
      include: ['server/src/**/*.ts', 'client-sdk/src/**/*.ts', 'tools/*/src/**/*.ts'],
      exclude: [
        '**/generated/**',
        '**/*.test.ts',
        // Process entry points: exercised as child processes (tests/e2e), which v8 coverage does not see.
        'server/src/main.ts',
        'server/src/scripts/**',
        'tools/migrate/src/{db,generate,studio}.ts',
      ],
      reporter: ['text-summary', 'text'],
      thresholds: { lines: 80, branches: 75 },
    },
  },
});
