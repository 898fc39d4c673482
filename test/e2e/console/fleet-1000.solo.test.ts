/**
 * The bar for the fleet page: a fleet of 1,000 devices renders within
 * a second on this machine. A `flotilla server` process, 1,000 simulated
 * devices (real agents over an in-memory engine, in this process), and the
 * console in Chromium; solo, so the timing is not another file's load.
 * bench/console.ts measures the same against baselines.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBrowser, expectConsoleBuilt, launchBrowser, openPage } from '../../support/browser.js';
import { firstFleetRenderMs } from '../../support/fleet-render.js';
import { type HubProcess, startHubProcess, stopAll } from '../../support/processes.js';
import { type Fleet, startFleet } from '../../support/sim/fleet.js';
import { waitFor } from '../../support/wait.js';

const COUNT = 1_000;
const GOAL_MS = 1_000;

describeBrowser(`web console: the first render of ${COUNT} devices`, () => {
  let browser: Browser;
  let hub: HubProcess;
  let fleet: Fleet | undefined;

  beforeAll(async () => {
    expectConsoleBuilt();
    // Every agent connects from 127.0.0.1: the per-address limit is not what this measures.
    hub = await startHubProcess(undefined, ['--max-connect-rate-per-address', '0']);
    fleet = await startFleet({
      hubUrl: hub.mqttUrl,
      count: COUNT,
      idPrefix: 'wide',
      labels: (i) => ({ site: `site-${i % 10}` }),
      startConcurrency: 100,
      resyncIntervalMs: 60_000,
      agent: { outboxPath: 'memory' },
    });
    await waitFor(
      `${COUNT} devices online`,
      async () => {
        const items = ((await (await fetch(`${hub.url}/api/v1/devices`)).json()) as { items: { online: boolean }[] }).items;
        return items.filter((d) => d.online).length === COUNT;
      },
      { timeoutMs: 240_000, intervalMs: 1_000 },
    );
    browser = await launchBrowser();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await fleet?.close();
    await stopAll();
  }, 120_000);

  it(`shows all ${COUNT} within ${GOAL_MS} ms of navigation (median of 3 cold loads), without errors`, async () => {
    const samples: number[] = [];
    for (let i = 0; i < 3; i++) samples.push(await firstFleetRenderMs(browser, `${hub.url}/`, COUNT));
    const median = [...samples].sort((a, b) => a - b)[1]!;
    console.info(`[console] first render of ${COUNT} devices: ${samples.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    expect(median, `samples ${samples.join(', ')}`).toBeLessThanOrEqual(GOAL_MS);

    const watched = await openPage(browser, { baseURL: hub.url });
    await watched.page.goto('/');
    await watched.page.getByText(`${COUNT} devices, ${COUNT} online`).waitFor({ timeout: 15_000 });
    await watched.screenshot('fleet-1000');
    watched.expectClean();
    await watched.close();
  });
});
