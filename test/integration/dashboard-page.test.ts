/**
 * The example page (examples/dashboard/: dashboard.js with the browser build
 * of mqtt.js, as the hub serves them at /dashboard/) in Chromium: it connects
 * over MQTT/WebSocket with read-only credentials from the URL fragment and
 * shows what a device publishes, live.
 */
import { expect, it } from 'vitest';
import { describeBrowser, type WatchedPage } from '../support/browser.js';
import { useBrowser } from '../support/browser-suite.js';
import { deviceState, metricsSample } from '../support/fixtures.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';

describeBrowser('examples/dashboard page in Chromium', () => {
  const suite = useBrowser({ servesConsole: false });
  const { cleanup } = suite;

  async function dashboard(pass: string): Promise<{ hub: TestHub; watched: WatchedPage }> {
    const hub = await startTestHub({ config: { readOnlyUsers: [{ username: 'wall', password: 's3cret' }] } });
    cleanup.add('hub', () => hub.close());
    const watched = await suite.open(hub.httpUrl);
    await watched.page.goto(`/dashboard/#user=wall&pass=${pass}`);
    return { hub, watched };
  }

  /** The text of the first device row's cells, as the page shows them. */
  const cells = (watched: WatchedPage) => watched.page.locator('#devices tr').first().locator('td');

  it('logs in read-only from the URL fragment and shows a device’s status, state and metrics as they arrive', async () => {
    const { hub, watched } = await dashboard('s3cret');
    const { page } = watched;
    await expect.poll(() => page.locator('#status').getAttribute('class'), { timeout: 10_000 }).toBe('connected');
    expect(await page.locator('#status').textContent()).toBe('connected as wall');
    expect(await page.locator('#ws').inputValue()).toBe(`ws://127.0.0.1:${hub.hub.ports.ws}`);

    const device = await connectClient(hub.mqttUrl, { clientId: 'dev-roof' });
    cleanup.add('device', () => closeClient(device));
    const status = (online: boolean) => JSON.stringify({ online, at: new Date().toISOString() });
    await device.publishAsync('flotilla/v1/devices/dev-roof/status', status(true), { qos: 1, retain: true });
    const state = deviceState('dev-roof', { apps: [{ name: 'thermo', revision: 2, phase: 'running', containers: [] }] });
    await device.publishAsync('flotilla/v1/devices/dev-roof/state', JSON.stringify(state), { qos: 1, retain: true });
    await device.publishAsync('flotilla/v1/devices/dev-roof/metrics', JSON.stringify(metricsSample(1)), { qos: 0 });

    await expect.poll(() => cells(watched).nth(2).textContent(), { timeout: 10_000 }).toBe('12.5 %');
    expect((await cells(watched).allTextContents()).slice(0, 6)).toEqual([
      'dev-roof',
      'online',
      '12.5 %',
      '1.0 GiB / 4.0 GiB',
      '10.0 GiB / 30.0 GiB',
      'thermo r2 running',
    ]);

    // Live: the next sample replaces the numbers; the link dropping turns the device offline.
    const next = metricsSample(2);
    next.host.cpuPercent = 87;
    await device.publishAsync('flotilla/v1/devices/dev-roof/metrics', JSON.stringify(next), { qos: 0 });
    await expect.poll(() => cells(watched).nth(2).textContent(), { timeout: 10_000 }).toBe('87.0 %');
    await device.publishAsync('flotilla/v1/devices/dev-roof/status', status(false), { qos: 1, retain: true });
    await expect.poll(() => cells(watched).nth(1).textContent(), { timeout: 10_000 }).toBe('offline');
    expect(await page.locator('#devices tr').count()).toBe(1);
    await watched.screenshot('dashboard');
    watched.expectClean();
  });

  it('says so when the password is wrong, and does not keep retrying', async () => {
    const { watched } = await dashboard('nope');
    const status = watched.page.locator('#status');
    await expect.poll(() => status.getAttribute('class'), { timeout: 10_000 }).toBe('error');
    expect(await status.textContent()).toMatch(/Bad username or password/i);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await status.textContent()).toMatch(/Bad username or password/i);
    expect(await watched.page.locator('#devices tr').count()).toBe(0);
  });
});
