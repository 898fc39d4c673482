/**
 * The lifecycle a browser test file shares across its tests: one Chromium for
 * the file (launching costs a second or more on two cores), a Cleanup run
 * after each test for what the test started (hubs, devices, pages), and the
 * browser closed after the last test. Call `useBrowser()` at the top of a
 * `describeBrowser` body; it registers the hooks.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { expectConsoleBuilt, launchBrowser, openPage, type Viewport, type WatchedPage } from './browser.js';
import { Cleanup } from './cleanup.js';

export interface BrowserSuite {
  /** The file's browser, launched before the first test. */
  readonly browser: Browser;
  /** Teardown steps of the running test, run after it. */
  readonly cleanup: Cleanup;
  /** A watched page (openPage) on `baseURL`, closed after the test. */
  open(baseURL: string, viewport?: Viewport): Promise<WatchedPage>;
}

/**
 * `servesConsole`: the file's pages are the web console, so a console that
 * did not build fails the file up front with esbuild's message rather than
 * as a blank page in every test.
 */
export function useBrowser({ servesConsole }: { servesConsole: boolean }): BrowserSuite {
  let launched: Browser | undefined;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    if (servesConsole) expectConsoleBuilt();
    launched = await launchBrowser();
  });
  afterAll(() => launched?.close());
  afterEach(() => cleanup.run());

  const suite: BrowserSuite = {
    get browser() {
      if (!launched) throw new Error('the browser is launched in beforeAll: use it inside a test');
      return launched;
    },
    cleanup,
    async open(baseURL, viewport) {
      const watched = await openPage(suite.browser, viewport ? { baseURL, viewport } : { baseURL });
      cleanup.add('page', () => watched.close());
      return watched;
    },
  };
  return suite;
}
