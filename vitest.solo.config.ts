import { defineConfig } from 'vitest/config';

/** The tests that need the machine to themselves, one file at a time (see vitest.config.ts). */
export default defineConfig({
  test: {
    include: ['test/**/*.solo.test.ts'],
    // The browser tests serve the console this checkout builds (test/support/console-build.ts).
    globalSetup: ['test/support/console-build.ts'],
    testTimeout: 30_000,
    // One retry, so one timing fluke on a loaded 2-core machine does not fail a 30-minute run;
    // every test that needed it is listed by name at the end (test/support/flaky-reporter.ts).
    retry: 1,
    reporters: ['default', './test/support/flaky-reporter.ts'],
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
