import { defineConfig } from 'vitest/config';

/** The tests that need the machine to themselves, one file at a time (see vitest.config.ts). */
export default defineConfig({
  test: {
    include: ['test/**/*.solo.test.ts'],
    // The browser tests serve the console this checkout builds (test/support/console-build.ts).
    globalSetup: ['test/support/console-build.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
