import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // `*.solo.test.ts` load the whole machine (thousands of simulated agents):
    // they run after the rest, alone (vitest.solo.config.ts), so they cannot
    // starve the timing of e2e tests running beside them.
    exclude: [...configDefaults.exclude, 'test/**/*.solo.test.ts'],
    // The browser tests serve the console this checkout builds (test/support/console-build.ts).
    globalSetup: ['test/support/console-build.ts'],
    testTimeout: 30_000,
    // One retry, so one timing fluke on a loaded 2-core machine does not fail a 30-minute run;
    // every test that needed it is listed by name at the end (test/support/flaky-reporter.ts).
    retry: 1,
    reporters: ['default', './test/support/flaky-reporter.ts'],
    hookTimeout: 60_000,
    // Two cores: e2e files drive one Docker Engine, so keep file-level parallelism modest.
    maxWorkers: 2,
  },
});
