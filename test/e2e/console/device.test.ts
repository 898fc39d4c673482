/**
 * A device's page in Chromium with a real agent on the real Docker Engine:
 * `flotilla server` requiring keys, the agent registered with a token and
 * sending metrics every second, an app whose container prints a line every
 * half second. The page shows the lines as they arrive, charts that grow,
 * and a terminal into the container.
 */
import { hostname } from 'node:os';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBrowser, expectConsoleBuilt, launchBrowser, logIn, openPage, type WatchedPage } from '../../support/browser.js';
import { stopAll } from '../../support/processes.js';
import { removeContainersAndVolumes } from '../support/docker-cli.js';
import { engineProblem } from '../support/engine.js';
import { ensureTestImages } from '../support/images.js';
import { deployApp, type RemoteHub, startRegisteredAgent, startRemoteHub } from '../support/remote-fleet.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-console-${suffix}`;
const deviceId = `e2e-console-${suffix}`;
const TICKER = 'i=0; while :; do i=$((i+1)); echo "tick-$i"; sleep 0.5; done';

const describeWithEngine = engineProblem ? (name: string, body: () => void) => describe.skip(name, body) : describeBrowser;

describeWithEngine('web console: a device with a real agent and container', () => {
  let browser: Browser;
  let remote: RemoteHub;
  let watched: WatchedPage;
  let page: Page;

  beforeAll(async () => {
    expectConsoleBuilt();
    const images = await ensureTestImages();
    remote = await startRemoteHub();
    await startRegisteredAgent(remote, deviceId, { labels: { site: 'lab' }, extraArgs: ['--metrics-interval', '1s'] });
    await deployApp(remote, deviceId, app, { image: images.v1, command: ['/bin/sh', '-c', TICKER] });
    browser = await launchBrowser();
    watched = await openPage(browser, { baseURL: remote.hub.url });
    page = watched.page;
    await page.goto(`/#/devices/${deviceId}`);
    await logIn(page, remote.adminKey, /admin · admin/);
  }, 180_000);

  /** A tab of the device page (the header's navigation has an Events link too). */
  const tab = (name: string) => page.getByRole('main').getByRole('link', { name, exact: true });

  afterAll(async () => {
    await watched?.close();
    await browser?.close();
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('shows the device’s facts and its app on the overview', async () => {
    await page.getByRole('heading', { level: 1, name: deviceId }).waitFor();
    for (const tabName of ['Overview', 'Logs', 'Metrics', 'Events', 'Terminal']) await tab(tabName).waitFor();
    await page.getByText(app).first().waitFor({ timeout: 15_000 });
    // Host facts as the agent reported them: it runs on this machine.
    await page.getByText(hostname(), { exact: true }).first().waitFor();
    await watched.screenshot('device-overview');
    watched.expectClean();
  });

  it('shows live log lines as the container prints them', async () => {
    await tab('Logs').click();
    const lines = page.getByRole('region', { name: 'Log lines' }).locator('[data-log-id]');
    expect(await page.getByLabel('Live').isChecked()).toBe(true);
    await expect.poll(() => lines.count(), { timeout: 20_000 }).toBeGreaterThan(2);
    const before = await lines.count();
    const lastBefore = await lines.last().textContent();
    // New lines arrive without a reload: more of them, and a later tick last.
    await expect.poll(() => lines.count(), { timeout: 15_000 }).toBeGreaterThan(before);
    expect(await lines.last().textContent()).not.toBe(lastBefore);
    expect(await lines.last().textContent()).toMatch(/tick-\d+/);
    await watched.screenshot('device-logs');

    // Search keeps only the matching lines (tick-1, tick-10…19, tick-100…), and clearing it brings the rest back.
    await page.getByLabel('Search').fill('tick-1');
    await expect.poll(async () => (await lines.allTextContents()).every((text) => text.includes('tick-1')), { timeout: 10_000 }).toBe(true);
    const matching = await lines.count();
    expect(matching).toBeGreaterThan(0);
    await page.getByLabel('Search').fill('');
    await expect.poll(() => lines.count(), { timeout: 10_000 }).toBeGreaterThan(matching);

    // An Until ends the range: Live goes off, only lines stamped at or before it show, and no new one arrives.
    // Just after a line already shown (1 ms; lines are half a second apart): lines exist on both sides of it,
    // however long the container has been printing.
    const shown = await lines.locator('time').evaluateAll((els) => els.map((el) => el.getAttribute('datetime') ?? ''));
    const until = new Date(Date.parse(shown[Math.floor(shown.length / 2)]!) + 1).toISOString();
    const live = page.getByLabel('Live');
    await page.getByLabel('Until').fill(until);
    await page.getByLabel('Until').press('Tab');
    await expect.poll(() => live.isChecked()).toBe(false);
    expect(await live.isDisabled()).toBe(true);
    const stamps = lines.locator('time');
    await expect
      .poll(
        async () => {
          const times = await stamps.evaluateAll((els) => els.map((el) => el.getAttribute('datetime') ?? ''));
          return times.length > 0 && times.every((ts) => Date.parse(ts) <= Date.parse(until));
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    const bounded = await lines.count();
    // The container prints twice a second: a followed range would have grown by now.
    await page.waitForTimeout(2000);
    expect(await lines.count()).toBe(bounded);
    // Cleared, the range reaches now again and Live follows.
    await page.getByLabel('Until').fill('');
    await page.getByLabel('Until').press('Tab');
    await expect.poll(() => live.isChecked()).toBe(true);
    await expect.poll(() => lines.count(), { timeout: 15_000 }).toBeGreaterThan(bounded);
    watched.expectClean();
  });

  it('draws metrics charts whose samples grow', async () => {
    await tab('Metrics').click();
    const cpu = page.locator('figure[data-chart="cpu"]');
    await cpu.waitFor({ timeout: 15_000 });
    expect(await cpu.locator('figcaption').textContent()).toMatch(/cpu/i);
    for (const name of ['memory', 'disk', 'network', 'temperature']) await page.locator(`figure[data-chart="${name}"]`).waitFor();
    await page.locator(`figure[data-chart^="container:"]`).first().waitFor({ timeout: 15_000 });
    const points = async () => Number(await cpu.getAttribute('data-points'));
    await expect.poll(points, { timeout: 15_000 }).toBeGreaterThan(0);
    const first = await points();
    await expect.poll(points, { timeout: 15_000 }).toBeGreaterThan(first + 1);
    await watched.screenshot('device-metrics');
    watched.expectClean();
  });

  it('lists the device’s events', async () => {
    await tab('Events').click();
    const events = page.getByRole('table', { name: 'Events' });
    await events.waitFor();
    await expect.poll(() => events.locator('tbody tr').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    watched.expectClean();
  });

  it('opens a shell in the app’s container in the browser terminal', async () => {
    await tab('Terminal').click();
    const container = page.getByLabel('Container');
    await container.waitFor();
    const options = await container.locator('option').evaluateAll((els) => els.map((el) => (el as unknown as { value: string }).value));
    const ours = options.find((value) => value.includes(app)) ?? options.find((value) => value.includes('web'));
    expect(ours, `a Container option for ${app} among ${JSON.stringify(options)}`).toBeDefined();
    await container.selectOption(ours as string);
    await page.getByLabel('Command').fill('sh');
    await page.getByRole('button', { name: 'Exec' }).click();
    const terminal = page.getByRole('region', { name: 'Terminal' });
    await terminal.locator('.xterm').waitFor({ timeout: 15_000 });
    /** The terminal's screen, a line per row as xterm.js draws them. */
    const screen = async () => (await terminal.locator('.xterm-rows > div').allTextContents()).join('\n');
    // The shell's prompt: the session is open.
    await expect.poll(screen, { timeout: 30_000 }).toMatch(/[#$]\s*$/m);
    await terminal.locator('.xterm').click();
    await page.keyboard.type('echo hello-$((6*7))');
    await page.keyboard.press('Enter');
    await expect.poll(screen, { timeout: 15_000 }).toMatch(/^hello-42\s*$/m);
    await page.getByRole('status').first().waitFor();
    await watched.screenshot('device-terminal');
    watched.expectClean();
  });
});
