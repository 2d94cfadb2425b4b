import type { TestProjectInlineConfiguration } from 'vitest/config';

/**
 * The test projects. Vitest 4 reads no workspace file by itself: vitest.config.ts imports this
 * list as `test.projects`. Run one alone with `pnpm vitest run --project <name>`.
 */
const databaseSetup = ['tests/support/global-setup.ts'];

export const projects: TestProjectInlineConfiguration[] = [
  {
    extends: true,
    test: {
      name: 'unit',
      include: ['server/src/**/*.test.ts', 'client-sdk/src/**/*.test.ts', 'tools/*/src/**/*.test.ts'],
    },
  },
  {
    extends: true,
    test: {
      name: 'integration',
      include: ['tests/**/*.test.ts'],
      exclude: ['tests/e2e/**'],
      globalSetup: databaseSetup,
    },
  },
  {
    extends: true,
    test: {
      name: 'e2e',
      include: ['tests/e2e/**/*.test.ts'],
      exclude: ['tests/e2e/long/**'],
      globalSetup: databaseSetup,
    },
  },
  {
    extends: true,
    test: {
      // Scenarios of minutes (clusters, soaks, whole-project type-checks): `pnpm test:long`, which CI
      // runs once, beside the twice-run `pnpm test`.
      name: 'long',
      include: ['tests/e2e/long/**/*.test.ts'],
      globalSetup: databaseSetup,
      testTimeout: 600_000,
    },
  },
];
