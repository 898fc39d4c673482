/**
 * The console's first render of a fleet, as a user waits for it: from
 * navigation start (performance.timeOrigin) to the first frame in which the
 * fleet table counts every device (its aria-rowcount; beyond what fits, rows
 * are windowed) and rows are drawn. A fresh browser context each time, so
 * nothing is cached. For a hub that lets the page in without a key (loopback,
 * anonymous allowed). Needs no test runner: bench/console.ts uses it too.
 */
import type { Browser } from 'playwright-core';

/** What the page function uses of the page's globals (this code is compiled without the DOM's types). */
interface PageElement {
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
interface PageGlobals {
  document: { querySelector(selector: string): PageElement | null };
  performance: { now(): number };
}

/** Milliseconds from navigation start to the first frame with all `count` devices in the table at `url`. */
export async function firstFleetRenderMs(browser: Browser, url: string, count: number): Promise<number> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'commit' });
    // A function, not a string: the console's Content-Security-Policy forbids eval.
    const handle = await page.waitForFunction(
      (rowCount: string) => {
        const { document, performance } = globalThis as unknown as PageGlobals;
        const table = document.querySelector('table[aria-label="Devices"]');
        if (!table || table.getAttribute('aria-rowcount') !== rowCount) return false;
        return table.querySelector('tr[data-device]') ? performance.now() : false;
      },
      String(count + 1),
      { polling: 'raf', timeout: 60_000 },
    );
    return (await handle.jsonValue()) as number;
  } finally {
    await context.close();
  }
}
