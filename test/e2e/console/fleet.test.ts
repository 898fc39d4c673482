/**
 * The console's fleet page in Chromium against a hub that requires keys and
 * registered simulated devices: logging in, the devices as the hub knows
 * them, filtering, a bulk label edit, and a device whose link dies turning
 * offline on the page without a reload.
 */
import { expect, it } from 'vitest';
import { describeBrowser, logIn, PHONE, sidewaysOverflowPx } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { deviceRow, deviceStatus, openConsole, shownDevices } from './console-page.js';
import { startConsoleHub, startSimDevice } from './fixture.js';

const KEEPALIVE_S = 2;

describeBrowser('web console: the fleet', () => {
  const suite = useBrowser({ servesConsole: true });
  const { cleanup } = suite;

  it('asks for a key, shows every device live, and a device whose link dies turns offline within the keepalive window', async () => {
    const hub = await startConsoleHub(cleanup);
    const roof = await startSimDevice(cleanup, hub, 'roof', { labels: { site: 'roof' } });
    const yard = await startSimDevice(cleanup, hub, 'yard', { labels: { site: 'yard' } });
    const dock = await startSimDevice(cleanup, hub, 'dock', { labels: { site: 'roof' }, proxied: true, keepaliveSeconds: KEEPALIVE_S });
    const watched = await suite.open(hub.hub.httpUrl);
    const { page } = watched;

    await page.goto('/');
    // The login form's refusal of a wrong key is the hub's 401 on whoami, provoked here on purpose.
    watched.allow(/(response 401: GET|status of 401).*\/api\/v1\/whoami/);
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').waitFor();
    await logIn(page, hub.adminKey, /admin · admin/);
    expect(await page.evaluate("sessionStorage.getItem('flotilla.apiKey')")).toBe(hub.adminKey);
    await page.getByRole('link', { name: 'Admin' }).waitFor();

    const ids = [roof.id, yard.id, dock.id].sort();
    await expect.poll(async () => (await shownDevices(page)).sort(), { timeout: 15_000 }).toEqual(ids);
    for (const id of ids) {
      await deviceStatus(page, id, 'online').waitFor({ timeout: 15_000 });
      expect(await deviceRow(page, id).getByRole('link', { name: id }).getAttribute('href')).toBe(`#/devices/${id}`);
    }
    await watched.screenshot('fleet');

    // Filters: a label selector, then text.
    await page.getByLabel('Label selector').fill('site=roof');
    await expect.poll(async () => (await shownDevices(page)).sort(), { timeout: 10_000 }).toEqual([dock.id, roof.id].sort());
    await page.getByLabel('Label selector').fill('');
    await page.getByLabel('Search').fill('yard');
    await expect.poll(() => shownDevices(page), { timeout: 10_000 }).toEqual([yard.id]);
    await page.getByLabel('Search').fill('');
    await expect.poll(async () => (await shownDevices(page)).length, { timeout: 10_000 }).toBe(3);

    // A bulk label edit: two devices selected, one label set; the hub's devices carry it, the rows show it.
    const editLabels = page.getByRole('button', { name: 'Edit labels' });
    expect(await editLabels.isDisabled()).toBe(true);
    await page.getByLabel(`Select ${roof.id}`).check();
    await page.getByLabel(`Select ${yard.id}`).check();
    await editLabels.click();
    await page.getByLabel('Set labels').fill('zone=north');
    await page.getByRole('button', { name: 'Apply labels' }).click();
    for (const id of [roof.id, yard.id]) {
      await deviceRow(page, id).getByText('zone=north').waitFor({ timeout: 10_000 });
      const device = await hub.api('GET', `/api/v1/devices/${id}`);
      expect(device.body.labels).toMatchObject({ zone: 'north' });
    }
    expect(await deviceRow(page, dock.id).getByText('zone=north').count()).toBe(0);

    // The link of one device dies half-open: only the hub's keepalive can tell. No reload may happen meanwhile.
    await page.evaluate('window.sameDocument = true');
    const stalledAt = Date.now();
    dock.proxy?.stall();
    await deviceStatus(page, dock.id, 'offline').waitFor({ timeout: (KEEPALIVE_S * 1.5 + 8) * 1000 });
    const noticedMs = Date.now() - stalledAt;
    expect(await page.evaluate('window.sameDocument')).toBe(true);
    expect(await deviceStatus(page, roof.id, 'online').count()).toBe(1);
    console.info(`[console] ${dock.id} offline on the page ${noticedMs} ms after its link stalled (keepalive ${KEEPALIVE_S} s)`);

    // And back: the link resumes, the agent reconnects, the row is online again.
    dock.proxy?.resume();
    await deviceStatus(page, dock.id, 'online').waitFor({ timeout: 30_000 });
    watched.expectClean();
  });

  it('fits a phone’s width', async () => {
    const hub = await startConsoleHub(cleanup);
    const devices = [];
    for (const name of ['pump', 'gate']) devices.push(await startSimDevice(cleanup, hub, name, { labels: { site: 'plant' } }));
    const watched = await openConsole(suite, hub, { viewport: PHONE });
    const { page } = watched;
    for (const { id } of devices) await deviceStatus(page, id, 'online').waitFor({ timeout: 15_000 });
    // Wide tables scroll inside their own box: the page itself never scrolls sideways.
    expect(await sidewaysOverflowPx(page)).toBeLessThanOrEqual(0);
    await watched.screenshot('fleet-phone');
    watched.expectClean();
  });
});
