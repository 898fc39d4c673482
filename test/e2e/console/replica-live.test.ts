/**
 * The console's live logs on hub replicas, in Chromium: two `flotilla server --redis …
 * --database …` processes on a private Redis and PostgreSQL, a device (a plain MQTT client on
 * the agent's topics) connected to replica 0 printing a line every 300 ms, and the console
 * served by replica 1: its device page follows the device's lines live, as they are stored
 * through replica 0.
 */
import type { MqttClient } from 'mqtt';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Topics } from '../../../shared/index.js';
import { describeBrowser, expectConsoleBuilt, launchBrowser, openPage, type WatchedPage } from '../../support/browser.js';
import { Cleanup } from '../../support/cleanup.js';
import { deviceState, logLine } from '../../support/fixtures.js';
import { http } from '../../support/http.js';
import { closeClient, connectClient } from '../../support/mqtt-client.js';
import type { HubProcess } from '../../support/processes.js';
import { startReplicaHubs } from '../../support/replica-hubs.js';
import { waitFor } from '../../support/wait.js';

const DEVICE = 'console-replica-1';
const topics = new Topics();

describeBrowser('web console on hub replicas', () => {
  const cleanup = new Cleanup();
  let replicas: HubProcess[];
  let device: MqttClient;
  let browser: Browser;
  let watched: WatchedPage;

  beforeAll(async () => {
    expectConsoleBuilt();
    ({ replicas } = await startReplicaHubs(cleanup, { count: 2, name: 'console-replica' }));
    // Each replica has heard the other's broker heartbeat (every 5 s), so a follow waits for it.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    device = await connectClient(replicas[0]!.mqttUrl, { clientId: DEVICE });
    cleanup.add('device', () => closeClient(device));
    await device.publishAsync(topics.device(DEVICE, 'state'), JSON.stringify(deviceState(DEVICE)), { qos: 1, retain: true });
    await waitFor(
      'the device known to replica 1',
      async () => (await http(replicas[1]!.url, 'GET', `/api/v1/devices/${DEVICE}`)).status === 200,
    );
    let seq = 0;
    const printing = setInterval(() => {
      seq += 1;
      device.publish(topics.device(DEVICE, 'logs'), JSON.stringify({ seq, lines: [logLine(`tick-${seq}`)] }), { qos: 1 });
    }, 300);
    cleanup.add('printing', () => clearInterval(printing));
    browser = await launchBrowser();
    cleanup.add('browser', () => browser.close());
    watched = await openPage(browser, { baseURL: replicas[1]!.url });
    cleanup.add('page', () => watched.close());
  }, 120_000);
  afterAll(() => cleanup.run());

  it('shows the live lines of a device connected to another replica', async () => {
    const { page } = watched;
    await page.goto(`/#/devices/${DEVICE}`);
    await page.getByRole('main').getByRole('link', { name: 'Logs', exact: true }).click();
    const lines = page.getByRole('region', { name: 'Log lines' }).locator('[data-log-id]');
    expect(await page.getByLabel('Live').isChecked()).toBe(true);
    await expect.poll(() => lines.count(), { timeout: 20_000 }).toBeGreaterThan(2);
    const before = await lines.count();
    const lastBefore = await lines.last().textContent();
    // New lines arrive without a reload, each once: more of them, a later tick last, no tick twice.
    await expect.poll(() => lines.count(), { timeout: 15_000 }).toBeGreaterThan(before + 3);
    expect(await lines.last().textContent()).not.toBe(lastBefore);
    const ticks = (await lines.allTextContents()).map((text) => /tick-\d+/.exec(text)?.[0]);
    expect(new Set(ticks).size).toBe(ticks.length);
    watched.expectClean();
  });
});
