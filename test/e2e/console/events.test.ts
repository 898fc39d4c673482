/**
 * The console's events page (#/events) in Chromium against a hub that
 * requires keys and a registered simulated device: the events the device
 * reported before the page opened, newest first, then new ones arriving
 * without a reload, and the device and type filters kept in the address.
 */
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeBrowser } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { openConsole } from './console-page.js';
import { type ConsoleHub, startConsoleHub, startSimDevice } from './fixture.js';

function appSpec(name: string, image: string) {
  return { name, scheduling: { selectors: { site: 'roof' } }, spec: { containers: [{ name: 'main', image }] } };
}

/** The events the page shows, top to bottom. */
async function shownEvents(page: Page): Promise<{ id: number; device: string; type: string }[]> {
  const rows = page.getByRole('table', { name: 'Events' }).locator('tr[data-event-id]');
  return rows.evaluateAll((trs) =>
    trs.map((tr) => {
      const cells = tr.querySelectorAll('td');
      return { id: Number(tr.getAttribute('data-event-id')), device: cells[1]?.textContent ?? '', type: cells[2]?.textContent ?? '' };
    }),
  );
}

async function hubEvents(hub: ConsoleHub): Promise<{ id: number; device: string; type: string }[]> {
  const res = await hub.api('GET', '/api/v1/events?tail=200');
  expect(res.status).toBe(200);
  return res.body.events;
}

describeBrowser('web console: the fleet’s events', () => {
  const suite = useBrowser({ servesConsole: true });
  const { cleanup } = suite;

  it('shows the stored events newest first, new ones without a reload, and filters by device and type', async () => {
    const hub = await startConsoleHub(cleanup);
    const roof = await startSimDevice(cleanup, hub, 'roof', { labels: { site: 'roof' } });
    await startSimDevice(cleanup, hub, 'yard', { labels: { site: 'yard' } });
    expect((await hub.api('POST', '/api/v1/apps', appSpec('thermo', 'registry.local/thermo:1'))).status).toBe(200);
    await expect.poll(async () => (await hubEvents(hub)).length, { timeout: 15_000 }).toBeGreaterThan(0);

    const watched = await openConsole(suite, hub, { path: '/#/events' });
    const { page } = watched;

    // What the hub stored, newest first (more may have come since the hub was asked).
    const stored = await hubEvents(hub);
    await expect.poll(async () => (await shownEvents(page)).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(stored.length);
    const shown = await shownEvents(page);
    expect(shown.map((e) => e.id)).toEqual([...shown.map((e) => e.id)].sort((a, b) => b - a));
    expect(shown.map((e) => e.id)).toEqual(expect.arrayContaining(stored.map((e) => e.id)));
    const link = page.getByRole('table', { name: 'Events' }).getByRole('link', { name: roof.id }).first();
    expect(await link.getAttribute('href')).toBe(`#/devices/${roof.id}`);
    await watched.screenshot('events');

    // A new revision makes the device report again: the rows arrive on top, no reload.
    const newestBefore = shown[0]?.id ?? 0;
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => navigations.push(frame.url()));
    expect((await hub.api('POST', '/api/v1/apps', appSpec('thermo', 'registry.local/thermo:2'))).status).toBe(200);
    await expect.poll(async () => (await shownEvents(page))[0]?.id ?? 0, { timeout: 15_000 }).toBeGreaterThan(newestBefore);
    expect(navigations).toEqual([]);

    // Filters, and the address keeps them.
    const type = shown[0]?.type as string;
    await page.getByLabel('Type').selectOption(type);
    await expect.poll(async () => new Set((await shownEvents(page)).map((e) => e.type))).toEqual(new Set([type]));
    await page.getByLabel('Device', { exact: true }).fill('yard');
    await expect.poll(async () => (await shownEvents(page)).length).toBe(0);
    await page.getByRole('cell', { name: 'No events match the filter.' }).waitFor();
    await page.getByLabel('Device', { exact: true }).fill('roof');
    await expect.poll(async () => new Set((await shownEvents(page)).map((e) => e.device))).toEqual(new Set([roof.id]));
    const address = new URL(page.url());
    expect(address.hash).toBe(`#/events?device=roof&type=${encodeURIComponent(type)}`);

    // The same address opened afresh shows the same filtered view.
    await page.reload();
    await page.getByText(/admin · admin/).waitFor();
    expect(await page.getByLabel('Device', { exact: true }).inputValue()).toBe('roof');
    expect(await page.getByLabel('Type').inputValue()).toBe(type);
    await expect
      .poll(async () => new Set((await shownEvents(page)).map((e) => `${e.device} ${e.type}`)))
      .toEqual(new Set([`${roof.id} ${type}`]));
    watched.expectClean();
  });
});
