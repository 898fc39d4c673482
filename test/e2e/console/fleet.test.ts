/**
 * The console's fleet page in Chromium against a hub that requires keys and
 * registered simulated devices: logging in, the devices as the hub knows
 * them, filtering, a bulk label edit, and a device whose link dies turning
 * offline on the page without a reload.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeBrowser, expectConsoleBuilt, launchBrowser, logIn, openPage, PHONE } from '../../support/browser.js';
import { Cleanup } from '../../support/cleanup.js';
import { ANONYMOUS_PROBE, deviceRow, shownDevices, startConsoleHub, startSimDevice } from './fixture.js';

const KEEPALIVE_S = 2;

describeBrowser('web console: the fleet', () => {
  let browser: Browser;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    expectConsoleBuilt();
    browser = await launchBrowser();
  });
  afterAll(() => browser?.close());
  afterEach(() => cleanup.run());

  it('asks for a key, shows every device live, and a device whose link dies turns offline within the keepalive window', async () => {
    const hub = await startConsoleHub(cleanup);
    const roof = await startSimDevice(cleanup, hub, 'roof', { labels: { site: 'roof' } });
    const yard = await startSimDevice(cleanup, hub, 'yard', { labels: { site: 'yard' } });
    const dock = await startSimDevice(cleanup, hub, 'dock', { labels: { site: 'roof' }, proxied: true, keepaliveSeconds: KEEPALIVE_S });
    const watched = await openPage(browser, { baseURL: hub.hub.httpUrl });
    cleanup.add('page', () => watched.close());
    const { page } = watched;

    await page.goto('/');
    // The login form's refusal of a wrong key is the hub's 401 too, provoked here on purpose.
    watched.allow(ANONYMOUS_PROBE);
    await page.getByLabel('API key').fill('not-a-key');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').waitFor();
    await logIn(page, hub.adminKey, /admin · admin/);
    expect(await page.evaluate("sessionStorage.getItem('flotilla.apiKey')")).toBe(hub.adminKey);
    await page.getByRole('link', { name: 'Admin' }).waitFor();

    const ids = [roof.id, yard.id, dock.id].sort();
    await expect.poll(async () => (await shownDevices(page)).sort(), { timeout: 15_000 }).toEqual(ids);
    for (const id of ids) {
      await deviceRow(page, id).getByText('online', { exact: true }).waitFor({ timeout: 15_000 });
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
    await deviceRow(page, dock.id)
      .getByText('offline', { exact: true })
      .waitFor({ timeout: (KEEPALIVE_S * 1.5 + 8) * 1000 });
    const noticedMs = Date.now() - stalledAt;
    expect(await page.evaluate('window.sameDocument')).toBe(true);
    expect(await deviceRow(page, roof.id).getByText('online', { exact: true }).count()).toBe(1);
    console.info(`[console] ${dock.id} offline on the page ${noticedMs} ms after its link stalled (keepalive ${KEEPALIVE_S} s)`);

    // And back: the link resumes, the agent reconnects, the row is online again.
    dock.proxy?.resume();
    await deviceRow(page, dock.id).getByText('online', { exact: true }).waitFor({ timeout: 30_000 });
    watched.expectClean();
  });

  it('fits a phone’s width', async () => {
    const hub = await startConsoleHub(cleanup);
    const devices = [];
    for (const name of ['pump', 'gate']) devices.push(await startSimDevice(cleanup, hub, name, { labels: { site: 'plant' } }));
    const watched = await openPage(browser, { baseURL: hub.hub.httpUrl, viewport: PHONE });
    cleanup.add('page', () => watched.close());
    const { page } = watched;
    watched.allow(ANONYMOUS_PROBE);
    await page.goto('/');
    await logIn(page, hub.adminKey, /admin · admin/);
    for (const { id } of devices) await deviceRow(page, id).getByText('online', { exact: true }).waitFor({ timeout: 15_000 });
    // Wide tables scroll inside their own box: the page itself never scrolls sideways.
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await watched.screenshot('fleet-phone');
    watched.expectClean();
  });
});
